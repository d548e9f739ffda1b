//! The Errors screen's state: window, selection, the open examples, the
//! filter, and the rows it shows (figures from [`crate::logs::tally`]).

use std::time::{Duration, SystemTime};

use crossterm::event::KeyCode;

use super::{App, Outcome};
use crate::model::{ErrorEntry, Snapshot};

/// The Errors screen's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrWindow {
    M15,
    H1,
    H24,
    D7,
}

impl ErrWindow {
    pub const ALL: [ErrWindow; 4] = [ErrWindow::M15, ErrWindow::H1, ErrWindow::H24, ErrWindow::D7];
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            ErrWindow::M15 => 15 * 60,
            ErrWindow::H1 => 3600,
            ErrWindow::H24 => 24 * 3600,
            ErrWindow::D7 => 7 * 24 * 3600,
        })
    }
    pub fn label(self) -> &'static str {
        match self {
            ErrWindow::M15 => "15m",
            ErrWindow::H1 => "1h",
            ErrWindow::H24 => "24h",
            ErrWindow::D7 => "7d",
        }
    }
    fn next(self) -> ErrWindow {
        let i = ErrWindow::ALL.iter().position(|w| *w == self).unwrap_or(0);
        ErrWindow::ALL[(i + 1) % ErrWindow::ALL.len()]
    }
}

/// Errors screen state.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorsView {
    pub selected: usize,
    pub offset: usize,
    pub window: ErrWindow,
    /// The fingerprint whose examples are open.
    pub popup: Option<String>,
    pub filter: String,
}

/// One row of the Errors table: the entry and its figures in the window.
#[derive(Debug, Clone)]
pub struct ErrorRow<'a> {
    pub entry: &'a ErrorEntry,
    /// Occurrences in the window.
    pub count: u64,
    /// First seen within the last hour.
    pub new: bool,
}

impl App {
    /// Errors rows in the window, most frequent first, then latest first.
    /// The `/` filter matches the fingerprint, the latest message or any
    /// kept example line (case-insensitive).
    pub fn error_rows<'a>(&self, snap: &'a Snapshot, now: SystemTime) -> Vec<ErrorRow<'a>> {
        let since = now
            .checked_sub(self.errors.window.duration())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let f = self.errors.filter.to_lowercase();
        let mut rows: Vec<ErrorRow> = snap
            .tally
            .entries
            .values()
            .filter(|e| {
                f.is_empty()
                    || e.fingerprint.to_lowercase().contains(&f)
                    || e.sample.to_lowercase().contains(&f)
                    || e.examples.iter().any(|x| x.to_lowercase().contains(&f))
            })
            .filter_map(|e| {
                let count = e.count_in_window(since);
                (count > 0).then(|| ErrorRow {
                    entry: e,
                    count,
                    new: e.is_new(now),
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.entry.last_seen.cmp(&a.entry.last_seen))
                .then(a.entry.fingerprint.cmp(&b.entry.fingerprint))
        });
        rows
    }

    /// Errors keys: `w` cycles the window, Enter opens the examples, Esc
    /// clears the filter.
    pub(super) fn errors_key(&mut self, code: KeyCode, snap: &Snapshot) -> Outcome {
        match code {
            KeyCode::Char('w') => {
                self.errors.window = self.errors.window.next();
                self.errors.selected = 0;
            }
            KeyCode::Enter => self.open_selected_error(snap),
            KeyCode::Esc if !self.errors.filter.is_empty() => {
                self.set_filter(String::new());
            }
            _ => return Outcome::None,
        }
        Outcome::Redraw
    }

    pub(super) fn open_selected_error(&mut self, snap: &Snapshot) {
        if let Some(r) = self.error_rows(snap, self.now).get(self.errors.selected) {
            self.errors.popup = Some(r.entry.fingerprint.clone());
        }
    }
}
