//! Input events the TUI reacts to: keys, mouse and resizes from the
//! terminal, read by [`Input`]. Snapshots and ticks are not events here:
//! the loop in [`crate::tui`] handles them by redrawing.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use tokio::sync::mpsc;

/// How long the reader waits for input before it looks whether it should
/// pause or stop: the most a pause or a stop waits.
const POLL: Duration = Duration::from_millis(25);

/// The terminal's input events, read on a thread that can be paused.
///
/// crossterm's `EventStream` reads on a thread of its own that cannot be
/// stopped for certain: it would take the keys meant for an attach. This
/// reader polls with a short timeout and [`Input::pause`] returns only once
/// it has stopped polling, so the attach owns the keyboard until
/// [`Input::resume`].
pub struct Input {
    rx: mpsc::Receiver<std::io::Result<TermEvent>>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<ReaderState>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ReaderState {
    /// Asked to pause (or to stop).
    pause: bool,
    stop: bool,
    /// The reader is between polls and waits for `pause` to go.
    parked: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ReaderState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Input {
    /// Start reading (raw mode should be on).
    pub fn start() -> Input {
        let (tx, rx) = mpsc::channel(256);
        let shared = Arc::new(Shared::default());
        let reader = shared.clone();
        std::thread::spawn(move || read_loop(&reader, &tx));
        Input { rx, shared }
    }

    /// The next event; `None` once the reader has stopped (after an error
    /// it sent).
    pub async fn next(&mut self) -> Option<std::io::Result<TermEvent>> {
        self.rx.recv().await
    }

    /// Stop reading the terminal; returns once the reader is parked (at
    /// most one [`POLL`] later).
    pub async fn pause(&self) {
        let shared = self.shared.clone();
        let parked = tokio::task::spawn_blocking(move || {
            let mut st = shared.lock();
            st.pause = true;
            while !st.parked && !st.stop {
                st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        });
        // Only a panic in that closure fails it; the reader is parked or
        // stopped either way.
        let _ = parked.await;
    }

    /// Read again. What was typed while paused and not read by anyone else
    /// (type-ahead after the key that started an attach) is dropped: it was
    /// not meant for the TUI.
    pub fn resume(&mut self) {
        while let Ok(true) = crossterm::event::poll(Duration::ZERO) {
            if crossterm::event::read().is_err() {
                break;
            }
        }
        while self.rx.try_recv().is_ok() {}
        let mut st = self.shared.lock();
        st.pause = false;
        self.shared.changed.notify_all();
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.stop = true;
        self.shared.changed.notify_all();
    }
}

fn read_loop(shared: &Shared, tx: &mpsc::Sender<std::io::Result<TermEvent>>) {
    loop {
        {
            let mut st = shared.lock();
            while st.pause && !st.stop {
                st.parked = true;
                shared.changed.notify_all();
                st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.parked = false;
            if st.stop {
                return;
            }
        }
        let ev = match crossterm::event::poll(POLL) {
            Ok(false) => continue,
            Ok(true) => crossterm::event::read(),
            Err(e) => Err(e),
        };
        let failed = ev.is_err();
        if tx.blocking_send(ev).is_err() || failed {
            // The TUI is gone, or the terminal failed (reported once).
            shared.lock().stop = true;
            shared.changed.notify_all();
            return;
        }
    }
}

/// One input event, already filtered (no key releases, no focus events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
}

impl Event {
    /// The events the app cares about; `None` for the rest (key releases
    /// and repeats on terminals that report them, focus, paste).
    pub fn from_terminal(ev: TermEvent) -> Option<Event> {
        match ev {
            TermEvent::Key(k) if k.kind == KeyEventKind::Press => Some(Event::Key(k)),
            TermEvent::Mouse(m) => Some(Event::Mouse(m)),
            TermEvent::Resize(w, h) => Some(Event::Resize(w, h)),
            _ => None,
        }
    }

    /// A key press without modifiers (tests and examples).
    pub fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    /// A plain character key.
    pub fn char(c: char) -> Event {
        Event::key(KeyCode::Char(c))
    }

    /// A key with Ctrl held.
    pub fn ctrl(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    /// A left click at a cell.
    pub fn click(column: u16, row: u16) -> Event {
        Event::mouse(MouseEventKind::Down(MouseButton::Left), column, row)
    }

    /// A mouse wheel step down (`true`) or up (`false`) at a cell.
    pub fn wheel(down: bool, column: u16, row: u16) -> Event {
        let kind = if down {
            MouseEventKind::ScrollDown
        } else {
            MouseEventKind::ScrollUp
        };
        Event::mouse(kind, column, row)
    }

    fn mouse(kind: MouseEventKind, column: u16, row: u16) -> Event {
        Event::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventState;

    #[test]
    fn releases_are_dropped() {
        let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(
            Event::from_terminal(TermEvent::Key(k)),
            Some(Event::char('q'))
        );
        k.kind = KeyEventKind::Release;
        k.state = KeyEventState::NONE;
        assert_eq!(Event::from_terminal(TermEvent::Key(k)), None);
        assert_eq!(Event::from_terminal(TermEvent::FocusGained), None);
        assert_eq!(
            Event::from_terminal(TermEvent::Resize(80, 24)),
            Some(Event::Resize(80, 24))
        );
    }
}
