//! Input events the TUI reacts to: keys, mouse and resizes from the
//! terminal. Snapshots and ticks are not events here: the loop in
//! [`crate::tui`] handles them by redrawing.

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};

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
