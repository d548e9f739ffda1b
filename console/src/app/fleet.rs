//! The Fleet screen's state: sort column and direction, selection, filter,
//! and the rows it shows.

use std::cmp::Ordering;
use std::time::SystemTime;

use crossterm::event::KeyCode;

use super::{App, Outcome, Screen};
use crate::model::{Health, RunnerState, Snapshot};

/// Fleet sort columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetSort {
    Name,
    State,
    Jobs,
    Avail,
    Active,
    Ws,
    Errors,
    Cpu,
    Rss,
    Age,
}

impl FleetSort {
    const ALL: [FleetSort; 10] = [
        FleetSort::Name,
        FleetSort::State,
        FleetSort::Jobs,
        FleetSort::Avail,
        FleetSort::Active,
        FleetSort::Ws,
        FleetSort::Errors,
        FleetSort::Cpu,
        FleetSort::Rss,
        FleetSort::Age,
    ];
    pub fn label(self) -> &'static str {
        match self {
            FleetSort::Name => "runner",
            FleetSort::State => "state",
            FleetSort::Jobs => "jobs",
            FleetSort::Avail => "avail",
            FleetSort::Active => "active",
            FleetSort::Ws => "ws",
            FleetSort::Errors => "err/min",
            FleetSort::Cpu => "cpu",
            FleetSort::Rss => "rss",
            FleetSort::Age => "age",
        }
    }
    fn next(self) -> FleetSort {
        let i = FleetSort::ALL.iter().position(|s| *s == self).unwrap_or(0);
        FleetSort::ALL[(i + 1) % FleetSort::ALL.len()]
    }
    /// Sorting by a figure starts with the worst: fewest terminals
    /// available, most of everything else.
    fn default_descending(self) -> bool {
        !matches!(self, FleetSort::Name | FleetSort::Avail)
    }
}

/// Fleet screen state.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetView {
    pub selected: usize,
    pub offset: usize,
    pub sort: FleetSort,
    pub descending: bool,
    pub filter: String,
}

impl App {
    /// Fleet rows: filtered by name, sorted by the sort column (ties by name).
    pub fn fleet_rows<'a>(&self, snap: &'a Snapshot) -> Vec<&'a RunnerState> {
        let f = self.fleet.filter.to_lowercase();
        let mut rows: Vec<&RunnerState> = snap
            .runners
            .iter()
            .filter(|r| f.is_empty() || r.source.name.to_lowercase().contains(&f))
            .collect();
        let sort = self.fleet.sort;
        rows.sort_by(|a, b| {
            let o = match sort {
                FleetSort::Name => Ordering::Equal,
                FleetSort::State => state_rank(a).cmp(&state_rank(b)),
                _ => cmp_opt(sort_value(a, sort), sort_value(b, sort)),
            };
            let o = if self.fleet.descending {
                o.reverse()
            } else {
                o
            };
            let by_name = a.source.name.cmp(&b.source.name);
            if sort == FleetSort::Name && self.fleet.descending {
                by_name.reverse()
            } else {
                o.then(by_name)
            }
        });
        rows
    }

    /// Fleet keys: `s`/`S` sort, Enter opens the runner, `t` its live
    /// sessions, Esc clears the filter.
    pub(super) fn fleet_key(&mut self, code: KeyCode, snap: &Snapshot) -> Outcome {
        match code {
            KeyCode::Char('s') => {
                self.fleet.sort = self.fleet.sort.next();
                self.fleet.descending = self.fleet.sort.default_descending();
            }
            KeyCode::Char('S') => self.fleet.descending = !self.fleet.descending,
            KeyCode::Enter => self.open_selected_runner(snap),
            KeyCode::Char('t') => self.open_runner_sessions(snap),
            KeyCode::Esc if !self.fleet.filter.is_empty() => {
                self.set_filter(String::new());
            }
            _ => return Outcome::None,
        }
        Outcome::Redraw
    }

    pub(super) fn open_selected_runner(&mut self, snap: &Snapshot) {
        if let Some(r) = self.fleet_rows(snap).get(self.fleet.selected) {
            self.runner = Some(r.source.name.clone());
            self.screen = Screen::Runner;
        }
    }
}

/// Worst first: down, not scraped yet, up with `[[runners]]` disabled
/// (more of them disabled ranks worse), up.
fn state_rank(r: &RunnerState) -> (u8, usize) {
    match r.health {
        Health::Down { .. } => (0, 0),
        Health::Unknown => (1, 0),
        Health::Up => match r.latest.as_ref().map(|l| l.disabled_of()) {
            Some((n, of)) if n > 0 => (2, of - n),
            _ => (3, 0),
        },
    }
}

fn sort_value(r: &RunnerState, s: FleetSort) -> Option<f64> {
    let l = r.latest.as_ref();
    match s {
        FleetSort::Name | FleetSort::State => None,
        FleetSort::Jobs => l.and_then(|l| l.jobs),
        FleetSort::Avail => l.and_then(|l| l.terminals_available),
        FleetSort::Active => l.and_then(|l| l.terminals_active),
        FleetSort::Ws => l.and_then(|l| l.ws_total()),
        FleetSort::Errors => r.errors_per_minute,
        FleetSort::Cpu => r.cpu_percent,
        FleetSort::Rss => l.and_then(|l| l.rss_bytes),
        // Oldest scrape first when descending: never scraped is oldest.
        FleetSort::Age => Some(
            r.last_ok
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(f64::MAX, |d| -d.as_secs_f64()),
        ),
    }
}

/// Missing figures sort after present ones whichever the direction is
/// not: they compare as the smallest.
fn cmp_opt(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}
