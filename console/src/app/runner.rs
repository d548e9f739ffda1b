//! The Runner screen: which runner it shows and stepping through the fleet.

use crossterm::event::KeyCode;

use super::{App, Outcome, Screen};
use crate::model::{RunnerState, Snapshot};

impl App {
    /// The runner the Runner screen shows.
    pub fn current_runner<'a>(&self, snap: &'a Snapshot) -> Option<&'a RunnerState> {
        self.runner
            .as_deref()
            .and_then(|n| snap.runners.iter().find(|r| r.source.name == n))
            .or_else(|| self.fleet_rows(snap).first().copied())
    }

    /// Runner keys: left/right step through the fleet, Esc goes back.
    pub(super) fn runner_key(&mut self, code: KeyCode, snap: &Snapshot) -> Outcome {
        match code {
            KeyCode::Left | KeyCode::Char('h') => self.step_runner(snap, -1),
            KeyCode::Right | KeyCode::Char('l') => self.step_runner(snap, 1),
            KeyCode::Esc | KeyCode::Backspace => self.screen = Screen::Fleet,
            _ => return Outcome::None,
        }
        Outcome::Redraw
    }

    pub(super) fn step_runner(&mut self, snap: &Snapshot, by: isize) {
        let rows = self.fleet_rows(snap);
        if rows.is_empty() {
            return;
        }
        let cur = self
            .current_runner(snap)
            .and_then(|c| rows.iter().position(|r| r.source.name == c.source.name))
            .unwrap_or(0);
        let n = rows.len() as isize;
        let i = (cur as isize + by).rem_euclid(n) as usize;
        self.runner = rows.get(i).map(|r| r.source.name.clone());
        self.fleet.selected = i;
    }
}
