//! The Logs screen's state: follow or scroll, level, runner and text
//! filters, and the lines it shows.

use crossterm::event::KeyCode;

use super::{App, Outcome, PAGE};
use crate::model::{Level, LogRecord, Snapshot};

/// Logs screen state.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsView {
    /// Keep the newest line in view.
    pub follow: bool,
    /// Lines scrolled up from the bottom when not following.
    pub scroll: usize,
    pub filter: String,
    /// Show this level and above; `None`: everything.
    pub min_level: Option<Level>,
    pub runner: Option<String>,
    /// The line whose detail is open (the whole message wrapped, every
    /// field on its own line): a copy, so that it stays put while new
    /// lines arrive.
    pub detail: Option<LogRecord>,
}

impl App {
    /// Log lines passing the level, runner and text filters, oldest first.
    pub fn log_rows<'a>(&self, snap: &'a Snapshot) -> Vec<&'a LogRecord> {
        let f = self.logs.filter.to_lowercase();
        snap.logs
            .iter()
            .filter(|l| self.logs.min_level.is_none_or(|m| l.level >= m))
            .filter(|l| self.logs.runner.as_ref().is_none_or(|r| *r == l.runner))
            .filter(|l| {
                f.is_empty()
                    || l.msg.to_lowercase().contains(&f)
                    || l.fields.iter().any(|(k, v)| {
                        k.to_lowercase().contains(&f) || v.to_lowercase().contains(&f)
                    })
            })
            .collect()
    }

    /// The index in [`Self::log_rows`] of the newest line in view.
    fn newest_in_view(&self, n: usize) -> Option<usize> {
        let end = if self.logs.follow {
            n
        } else {
            n.saturating_sub(self.logs.scroll)
        };
        end.checked_sub(1)
    }

    /// Opens the detail of row `i` of [`Self::log_rows`].
    pub(super) fn open_log_line(&mut self, snap: &Snapshot, i: usize) {
        self.logs.detail = self.log_rows(snap).get(i).map(|r| (*r).clone());
    }

    /// Keys while a line's detail is open: ↑↓ the line before or after
    /// (among the filtered rows), Esc/Enter/Backspace close.
    pub(super) fn log_detail_key(&mut self, code: KeyCode, snap: &Snapshot) -> Outcome {
        let by: isize = match code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => {
                self.logs.detail = None;
                return Outcome::Redraw;
            }
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::Down | KeyCode::Char('j') => 1,
            _ => return Outcome::None,
        };
        self.step_log_detail(snap, by);
        Outcome::Redraw
    }

    /// Moves the open detail `by` rows (a line no longer there: the newest).
    pub(super) fn step_log_detail(&mut self, snap: &Snapshot, by: isize) {
        let rows = self.log_rows(snap);
        let Some(cur) = &self.logs.detail else {
            return;
        };
        let at = rows.iter().rposition(|r| *r == cur);
        let next = match at {
            Some(i) => (i as isize + by.signum()).clamp(0, rows.len() as isize - 1) as usize,
            None => rows.len().saturating_sub(1),
        };
        if let Some(r) = rows.get(next) {
            self.logs.detail = Some((*r).clone());
        }
    }

    /// Logs keys: Enter the newest line in view in full, `f` follow, `l`
    /// level, `r` runner, `c`/Esc clear.
    pub(super) fn logs_key(&mut self, code: KeyCode, snap: &Snapshot) -> Outcome {
        match code {
            KeyCode::Enter => {
                let n = self.log_rows(snap).len();
                match self.newest_in_view(n) {
                    Some(i) => self.open_log_line(snap, i),
                    None => return Outcome::None,
                }
            }
            KeyCode::Char('f') => {
                self.logs.follow = !self.logs.follow;
                self.logs.scroll = 0;
            }
            KeyCode::Char('l') => {
                self.logs.min_level = match self.logs.min_level {
                    None => Some(Level::Info),
                    Some(Level::Debug | Level::Info) => Some(Level::Warning),
                    Some(Level::Warning) => Some(Level::Error),
                    Some(_) => None,
                };
                self.logs.scroll = 0;
            }
            KeyCode::Char('r') => {
                let mut names: Vec<&str> = snap
                    .runners
                    .iter()
                    .map(|r| r.source.name.as_str())
                    .collect();
                names.sort_unstable();
                self.logs.runner = match self.logs.runner.as_deref() {
                    None => names.first().map(|s| s.to_string()),
                    Some(cur) => names
                        .iter()
                        .position(|n| *n == cur)
                        .and_then(|i| names.get(i + 1))
                        .map(|s| s.to_string()),
                };
                self.logs.scroll = 0;
            }
            KeyCode::Char('c') | KeyCode::Esc => {
                self.logs.filter.clear();
                self.logs.min_level = None;
                self.logs.runner = None;
                self.logs.scroll = 0;
            }
            _ => return Outcome::None,
        }
        Outcome::Redraw
    }

    /// Scroll the log by `by` lines (arrows and the wheel: three at a time),
    /// counting up from the bottom; at the bottom it follows again.
    pub(super) fn scroll_logs(&mut self, snap: &Snapshot, by: isize) {
        let n = self.log_rows(snap).len();
        let page = self
            .hits
            .table
            .map_or(PAGE, |t| usize::from(t.body.height).max(1));
        let max = n.saturating_sub(page);
        // The wheel and arrows move three lines at a time in a log.
        let by = match by {
            isize::MIN | isize::MAX => by,
            1 | -1 => by * 3,
            _ => by,
        };
        // Scrolling counts up from the bottom.
        let up = if by == isize::MIN {
            max
        } else if by == isize::MAX {
            0
        } else {
            (self.logs.scroll as isize - by).clamp(0, max as isize) as usize
        };
        self.logs.scroll = up;
        self.logs.follow = up == 0 && (by > 0 || self.logs.follow);
    }
}
