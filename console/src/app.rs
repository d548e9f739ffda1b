//! The TUI's state and its reaction to input: the screens' shared keys,
//! mouse and scrolling here, each screen's state, rows and keys in
//! [`fleet`], [`runner`], [`sessions`], [`errors`] and [`logs`]. No I/O: the loop in
//! [`crate::tui`] feeds events and the clock in, turns the [`Outcome`] into
//! effects, and draws with [`crate::ui::render`].

use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::attach::AttachRequest;
use crate::event::Event;
use crate::model::Snapshot;
use crate::ui::widgets::Theme;

mod errors;
mod fleet;
mod logs;
mod runner;
mod sessions;

pub use errors::{ErrWindow, ErrorRow, ErrorsView};
pub use fleet::{FleetSort, FleetView};
pub use logs::LogsView;
pub use sessions::{Note, ReasonPrompt, SessionRow, SessionSort, SessionsView};

/// The screens, in tab order (`1`-`5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Fleet,
    Runner,
    Sessions,
    Errors,
    Logs,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Fleet,
        Screen::Runner,
        Screen::Sessions,
        Screen::Errors,
        Screen::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Fleet => "Fleet",
            Screen::Runner => "Runner",
            Screen::Sessions => "Sessions",
            Screen::Errors => "Errors",
            Screen::Logs => "Logs",
        }
    }
    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
    fn next(self) -> Screen {
        Screen::ALL[(self.index() + 1) % Screen::ALL.len()]
    }
    fn prev(self) -> Screen {
        Screen::ALL[(self.index() + Screen::ALL.len() - 1) % Screen::ALL.len()]
    }
    /// Screens with a `/` text filter.
    fn filters(self) -> bool {
        self != Screen::Runner
    }
}

/// What the loop should do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed.
    None,
    Redraw,
    Quit,
    /// Suspend the TUI, run this attach, resume where it was.
    Attach(AttachRequest),
}

/// Where the last frame drew things the mouse can hit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    /// The rows of the current screen's table or log view.
    pub table: Option<TableHit>,
    /// The screen tabs of the footer.
    pub tabs: Vec<(Rect, Screen)>,
}

/// A drawn list: its body (rows only, no header), the index of its first
/// visible row, and how many rows it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableHit {
    pub body: Rect,
    pub offset: usize,
    pub len: usize,
}

/// The TUI's state.
#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub theme: Theme,
    /// The clock, set by the loop before each event and draw.
    pub now: SystemTime,
    pub help: bool,
    /// Typing a `/` filter: the text so far.
    pub input: Option<String>,
    pub fleet: FleetView,
    /// The runner shown on the Runner screen (source name); the first
    /// runner when unset.
    pub runner: Option<String>,
    pub sessions: SessionsView,
    /// Typing the reason of a join or shell.
    pub prompt: Option<ReasonPrompt>,
    /// A one-off message for the footer (how the last attach ended),
    /// cleared by the next key.
    pub status: Option<String>,
    pub errors: ErrorsView,
    pub logs: LogsView,
    pub hits: Hits,
    /// In `termgate demo`: the way in, shown on the Fleet screen and in
    /// the help overlay.
    pub way_in: Option<WayIn>,
}

/// What the demo tells its user on screen while it runs: its
/// coordinator's URL and a command, ready to paste, that attaches to one
/// of its terminal jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WayIn {
    pub coordinator: String,
    pub attach: String,
}

const PAGE: usize = 10;

impl App {
    pub fn new(theme: Theme, now: SystemTime) -> App {
        App {
            screen: Screen::Fleet,
            theme,
            now,
            help: false,
            input: None,
            fleet: FleetView {
                selected: 0,
                offset: 0,
                sort: FleetSort::Name,
                descending: false,
                filter: String::new(),
            },
            runner: None,
            sessions: SessionsView::default(),
            prompt: None,
            status: None,
            errors: ErrorsView {
                selected: 0,
                offset: 0,
                window: ErrWindow::H1,
                popup: None,
                filter: String::new(),
            },
            logs: LogsView {
                follow: true,
                scroll: 0,
                filter: String::new(),
                min_level: None,
                runner: None,
                detail: None,
            },
            hits: Hits::default(),
            way_in: None,
        }
    }

    /// Remember where the last frame put things, and the scroll offsets
    /// the widgets settled on.
    pub fn drawn(&mut self, hits: Hits) {
        if let Some(t) = hits.table {
            match self.screen {
                Screen::Fleet => self.fleet.offset = t.offset,
                Screen::Sessions => self.sessions.offset = t.offset,
                Screen::Errors => self.errors.offset = t.offset,
                Screen::Runner | Screen::Logs => {}
            }
        }
        self.hits = hits;
    }

    /// The text filter of a screen.
    pub fn filter(&self, screen: Screen) -> &str {
        match screen {
            Screen::Fleet => &self.fleet.filter,
            Screen::Sessions => &self.sessions.filter,
            Screen::Errors => &self.errors.filter,
            Screen::Logs => &self.logs.filter,
            Screen::Runner => "",
        }
    }

    fn set_filter(&mut self, text: String) {
        match self.screen {
            Screen::Fleet => {
                self.fleet.filter = text;
                self.fleet.selected = 0;
            }
            Screen::Sessions => {
                self.sessions.filter = text;
                self.sessions.selected = 0;
            }
            Screen::Errors => {
                self.errors.filter = text;
                self.errors.selected = 0;
            }
            Screen::Logs => {
                self.logs.filter = text;
                self.logs.scroll = 0;
            }
            Screen::Runner => {}
        }
    }

    /// React to one input event.
    pub fn handle(&mut self, ev: Event, snap: &Snapshot) -> Outcome {
        // How the last attach ended shows until the next key or click.
        let had_status = match ev {
            Event::Key(_) | Event::Mouse(_) => self.status.take().is_some(),
            Event::Resize(..) => false,
        };
        match self.handle_input(ev, snap) {
            Outcome::None if had_status => Outcome::Redraw,
            o => o,
        }
    }

    fn handle_input(&mut self, ev: Event, snap: &Snapshot) -> Outcome {
        match ev {
            Event::Resize(..) => Outcome::Redraw,
            Event::Key(k) => self.key(k, snap),
            Event::Mouse(m) => match m.kind {
                MouseEventKind::ScrollDown => self.scroll(snap, 1),
                MouseEventKind::ScrollUp => self.scroll(snap, -1),
                MouseEventKind::Down(MouseButton::Left) => self.click(m.column, m.row, snap),
                _ => Outcome::None,
            },
        }
    }

    fn key(&mut self, k: KeyEvent, snap: &Snapshot) -> Outcome {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            return Outcome::Quit;
        }
        if self.prompt.is_some() {
            return self.prompt_key(k);
        }
        if let Some(text) = self.input.as_mut() {
            match k.code {
                KeyCode::Enter => {
                    let text = std::mem::take(text);
                    self.input = None;
                    self.set_filter(text);
                }
                KeyCode::Esc => self.input = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char('u') if ctrl => text.clear(),
                KeyCode::Char(c) if !ctrl => text.push(c),
                _ => return Outcome::None,
            }
            return Outcome::Redraw;
        }
        if self.help {
            return match k.code {
                KeyCode::Char('q') => Outcome::Quit,
                KeyCode::Esc | KeyCode::Char('?') => {
                    self.help = false;
                    Outcome::Redraw
                }
                _ => Outcome::None,
            };
        }
        if self.screen == Screen::Errors && self.errors.popup.is_some() {
            return match k.code {
                KeyCode::Char('q') => Outcome::Quit,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => {
                    self.errors.popup = None;
                    Outcome::Redraw
                }
                _ => Outcome::None,
            };
        }
        if self.screen == Screen::Logs && self.logs.detail.is_some() {
            if k.code == KeyCode::Char('q') {
                return Outcome::Quit;
            }
            return self.log_detail_key(k.code, snap);
        }
        if self.screen == Screen::Sessions && k.code == KeyCode::Char('j') {
            // `j` joins here (↑↓ move).
            return self.sessions_key(k.code, snap);
        }
        match k.code {
            KeyCode::Char('q') => return Outcome::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => self.switch(self.screen.next()),
            KeyCode::BackTab => self.switch(self.screen.prev()),
            KeyCode::Char(c @ '1'..='5') => {
                let i = c as usize - '1' as usize;
                self.switch(Screen::ALL[i]);
            }
            KeyCode::Char('/') if self.screen.filters() => {
                self.input = Some(self.filter(self.screen).to_string());
            }
            KeyCode::Up | KeyCode::Char('k') => return self.scroll(snap, -1),
            KeyCode::Down | KeyCode::Char('j') => return self.scroll(snap, 1),
            KeyCode::PageUp => return self.scroll(snap, -(PAGE as isize)),
            KeyCode::PageDown => return self.scroll(snap, PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => return self.scroll(snap, isize::MIN),
            KeyCode::End | KeyCode::Char('G') => return self.scroll(snap, isize::MAX),
            _ => return self.screen_key(k, snap),
        }
        Outcome::Redraw
    }

    /// How the last attach ended, for the footer.
    pub fn attached(&mut self, message: String) {
        self.status = Some(message);
    }

    fn screen_key(&mut self, k: KeyEvent, snap: &Snapshot) -> Outcome {
        match self.screen {
            Screen::Fleet => self.fleet_key(k.code, snap),
            Screen::Runner => self.runner_key(k.code, snap),
            Screen::Sessions => self.sessions_key(k.code, snap),
            Screen::Errors => self.errors_key(k.code, snap),
            Screen::Logs => self.logs_key(k.code, snap),
        }
    }

    fn switch(&mut self, s: Screen) {
        self.screen = s;
        self.errors.popup = None;
        self.logs.detail = None;
    }

    /// Move the selection (or scroll the log) by `by` rows; `isize::MIN` /
    /// `isize::MAX` go to the top / bottom.
    fn scroll(&mut self, snap: &Snapshot, by: isize) -> Outcome {
        match self.screen {
            Screen::Fleet => {
                let n = self.fleet_rows(snap).len();
                self.fleet.selected = step(self.fleet.selected, by, n);
            }
            Screen::Sessions => {
                let n = self.session_rows(snap).len();
                self.sessions.selected = step(self.sessions.selected, by, n);
            }
            Screen::Errors => {
                if self.errors.popup.is_some() {
                    return Outcome::None;
                }
                let n = self.error_rows(snap, self.now).len();
                self.errors.selected = step(self.errors.selected, by, n);
            }
            Screen::Runner => self.step_runner(snap, by.signum()),
            Screen::Logs if self.logs.detail.is_some() => self.step_log_detail(snap, by),
            Screen::Logs => self.scroll_logs(snap, by),
        }
        Outcome::Redraw
    }

    fn click(&mut self, column: u16, row: u16, snap: &Snapshot) -> Outcome {
        let pos = Position::new(column, row);
        if let Some((_, s)) = self.hits.tabs.iter().find(|(r, _)| r.contains(pos)) {
            self.help = false;
            self.switch(*s);
            return Outcome::Redraw;
        }
        if self.help
            || self.errors.popup.is_some() && self.screen == Screen::Errors
            || self.logs.detail.is_some() && self.screen == Screen::Logs
        {
            return Outcome::None;
        }
        let Some(t) = self.hits.table else {
            return Outcome::None;
        };
        if !t.body.contains(pos) {
            return Outcome::None;
        }
        let i = t.offset + usize::from(row - t.body.y);
        if i >= t.len {
            return Outcome::None;
        }
        match self.screen {
            Screen::Fleet => {
                if self.fleet.selected == i {
                    self.open_selected_runner(snap);
                } else {
                    self.fleet.selected = i;
                }
            }
            // A click only selects: attaching stays a deliberate key.
            Screen::Sessions => self.sessions.selected = i,
            Screen::Errors => {
                if self.errors.selected == i {
                    self.open_selected_error(snap);
                } else {
                    self.errors.selected = i;
                }
            }
            // A click opens the line in full.
            Screen::Logs => self.open_log_line(snap, i),
            Screen::Runner => return Outcome::None,
        }
        Outcome::Redraw
    }
}

fn step(cur: usize, by: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let last = len - 1;
    match by {
        isize::MIN => 0,
        isize::MAX => last,
        _ => (cur as isize + by).clamp(0, last as isize) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};

    fn keys(app: &mut App, snap: &Snapshot, s: &str) {
        for c in s.chars() {
            app.handle(Event::char(c), snap);
        }
    }

    fn names(app: &App, snap: &Snapshot) -> Vec<String> {
        app.fleet_rows(snap)
            .iter()
            .map(|r| r.source.name.clone())
            .collect()
    }

    #[test]
    fn tabs_and_digits_switch_screens() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        assert_eq!(app.screen, Screen::Fleet);
        app.handle(Event::key(KeyCode::Tab), &snap);
        assert_eq!(app.screen, Screen::Runner);
        app.handle(Event::key(KeyCode::BackTab), &snap);
        app.handle(Event::key(KeyCode::BackTab), &snap);
        assert_eq!(app.screen, Screen::Logs);
        keys(&mut app, &snap, "3");
        assert_eq!(app.screen, Screen::Sessions);
        keys(&mut app, &snap, "4");
        assert_eq!(app.screen, Screen::Errors);
        keys(&mut app, &snap, "1");
        assert_eq!(app.screen, Screen::Fleet);
        // No sixth screen.
        assert_eq!(app.handle(Event::char('6'), &snap), Outcome::None);
        assert_eq!(app.screen, Screen::Fleet);
    }

    #[test]
    fn q_and_ctrl_c_quit() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        assert_eq!(app.handle(Event::char('q'), &snap), Outcome::Quit);
        assert_eq!(app.handle(Event::ctrl('c'), &snap), Outcome::Quit);
        // Typing a filter: q is a letter, Ctrl-C still quits.
        app.handle(Event::char('/'), &snap);
        assert_eq!(app.handle(Event::char('q'), &snap), Outcome::Redraw);
        assert_eq!(app.input.as_deref(), Some("q"));
        assert_eq!(app.handle(Event::ctrl('c'), &snap), Outcome::Quit);
    }

    #[test]
    fn sort_cycles_and_reverses() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        assert_eq!(names(&app, &snap), ["prm-3", "prm-4", "prm-5", "prm-6"]);
        keys(&mut app, &snap, "S");
        assert_eq!(names(&app, &snap), ["prm-6", "prm-5", "prm-4", "prm-3"]);
        keys(&mut app, &snap, "s");
        assert_eq!(app.fleet.sort, FleetSort::State);
        assert_eq!(names(&app, &snap)[3], "prm-3", "down last when descending");
        keys(&mut app, &snap, "S");
        assert_eq!(names(&app, &snap)[0], "prm-3", "down first");
        keys(&mut app, &snap, "s");
        assert_eq!(app.fleet.sort, FleetSort::Jobs);
        assert_eq!(names(&app, &snap), ["prm-4", "prm-5", "prm-6", "prm-3"]);
        keys(&mut app, &snap, "s");
        assert_eq!(app.fleet.sort, FleetSort::Avail);
        assert!(!app.fleet.descending, "fewest available first");
        // A runner without the figure sorts as the smallest.
        assert_eq!(names(&app, &snap), ["prm-3", "prm-4", "prm-6", "prm-5"]);
        for _ in 0..7 {
            keys(&mut app, &snap, "s");
        }
        assert_eq!(app.fleet.sort, FleetSort::Name);
    }

    #[test]
    fn filter_typing_applies_on_enter_and_cancels_on_esc() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "/prm-44");
        app.handle(Event::key(KeyCode::Backspace), &snap);
        assert_eq!(app.input.as_deref(), Some("prm-4"));
        assert!(app.fleet.filter.is_empty(), "not applied while typing");
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(app.input, None);
        assert_eq!(app.fleet.filter, "prm-4");
        assert_eq!(names(&app, &snap), ["prm-4"]);
        // `/` again starts from the current filter; Esc keeps it.
        keys(&mut app, &snap, "/x");
        assert_eq!(app.input.as_deref(), Some("prm-4x"));
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert_eq!(app.input, None);
        assert_eq!(app.fleet.filter, "prm-4");
        // Esc outside typing clears it.
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert_eq!(app.fleet.filter, "");
        // No filter on the Runner screen.
        keys(&mut app, &snap, "2/");
        assert_eq!(app.input, None);
    }

    #[test]
    fn moving_is_clamped() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "kkk");
        assert_eq!(app.fleet.selected, 0);
        app.handle(Event::key(KeyCode::PageDown), &snap);
        assert_eq!(app.fleet.selected, 3);
        app.handle(Event::key(KeyCode::Home), &snap);
        assert_eq!(app.fleet.selected, 0);
        app.handle(Event::key(KeyCode::Down), &snap);
        keys(&mut app, &snap, "j");
        assert_eq!(app.fleet.selected, 2);
        app.handle(Event::wheel(false, 10, 5), &snap);
        assert_eq!(app.fleet.selected, 1);
        // Nothing to move in an empty fleet.
        let empty = Snapshot::default();
        keys(&mut app, &empty, "jjG");
        assert_eq!(app.fleet.selected, 0);
    }

    #[test]
    fn click_selects_the_row_under_the_cursor_and_a_second_click_opens() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        let (_, hits) = draw(&app, &snap, 80, 24);
        app.drawn(hits);
        let body = app.hits.table.expect("fleet table drawn").body;
        // Header 1 line, table header 2 lines: rows start at y = 3.
        assert_eq!(body.y, 3);
        app.handle(Event::click(5, body.y + 2), &snap);
        assert_eq!(app.fleet.selected, 2);
        assert_eq!(app.screen, Screen::Fleet);
        // Below the last row: nothing.
        assert_eq!(
            app.handle(Event::click(5, body.y + 4), &snap),
            Outcome::None
        );
        app.handle(Event::click(5, body.y + 2), &snap);
        assert_eq!(app.screen, Screen::Runner);
        assert_eq!(app.runner.as_deref(), Some("prm-5"));
        assert_eq!(
            app.current_runner(&snap).map(|r| r.source.name.as_str()),
            Some("prm-5")
        );
    }

    #[test]
    fn clicking_a_tab_switches() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        let (_, hits) = draw(&app, &snap, 80, 24);
        app.drawn(hits);
        let (rect, screen) = app.hits.tabs[4];
        assert_eq!(screen, Screen::Logs);
        app.handle(Event::click(rect.x + 1, rect.y), &snap);
        assert_eq!(app.screen, Screen::Logs);
    }

    #[test]
    fn errors_popup_opens_on_enter_and_esc_closes_it_before_quitting() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "4");
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(
            app.errors.popup.as_deref(),
            Some("Checking for jobs... client error")
        );
        // Moving does nothing under the popup.
        keys(&mut app, &snap, "j");
        assert_eq!(app.errors.selected, 0);
        assert_eq!(app.handle(Event::key(KeyCode::Esc), &snap), Outcome::Redraw);
        assert_eq!(app.errors.popup, None);
        assert_eq!(app.screen, Screen::Errors);
        // Help closes with Esc too.
        keys(&mut app, &snap, "?");
        assert!(app.help);
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert!(!app.help);
    }

    #[test]
    fn error_window_cycles_and_counts_within_it() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "4");
        assert_eq!(app.errors.window, ErrWindow::H1);
        let counts: Vec<u64> = app
            .error_rows(&snap, app.now)
            .iter()
            .map(|r| r.count)
            .collect();
        assert_eq!(counts, [150, 17, 9, 3]);
        keys(&mut app, &snap, "w");
        assert_eq!(app.errors.window, ErrWindow::H24);
        keys(&mut app, &snap, "ww");
        assert_eq!(app.errors.window, ErrWindow::M15);
        let rows = app.error_rows(&snap, app.now);
        assert_eq!(rows.len(), 3);
        assert!(rows[0].new && !rows[1].new && rows[2].new);
    }

    #[test]
    fn logs_follow_and_scroll() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "5");
        let (_, hits) = draw(&app, &snap, 80, 8);
        app.drawn(hits);
        assert!(app.logs.follow);
        app.handle(Event::wheel(false, 0, 4), &snap);
        assert!(!app.logs.follow);
        assert_eq!(app.logs.scroll, 3);
        keys(&mut app, &snap, "g");
        // 11 lines, 5 visible: 6 up at most.
        assert_eq!(app.logs.scroll, 6);
        keys(&mut app, &snap, "G");
        assert!(app.logs.follow);
        assert_eq!(app.logs.scroll, 0);
        keys(&mut app, &snap, "f");
        assert!(!app.logs.follow);
        keys(&mut app, &snap, "f");
        assert!(app.logs.follow);
    }

    #[test]
    fn logs_runner_and_level_filters_cycle_back_to_all() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "5r");
        assert_eq!(app.logs.runner.as_deref(), Some("prm-3"));
        keys(&mut app, &snap, "rrrr");
        assert_eq!(app.logs.runner, None);
        keys(&mut app, &snap, "llll");
        assert_eq!(app.logs.min_level, None);
        keys(&mut app, &snap, "lr/x");
        app.handle(Event::key(KeyCode::Enter), &snap);
        keys(&mut app, &snap, "c");
        assert_eq!(
            (
                app.logs.min_level,
                app.logs.runner.as_deref(),
                app.logs.filter.as_str()
            ),
            (None, None, "")
        );
    }

    #[test]
    fn runner_screen_steps_through_runners() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "2");
        assert_eq!(
            app.current_runner(&snap).map(|r| r.source.name.as_str()),
            Some("prm-3")
        );
        keys(&mut app, &snap, "l");
        assert_eq!(app.runner.as_deref(), Some("prm-4"));
        keys(&mut app, &snap, "hh");
        assert_eq!(app.runner.as_deref(), Some("prm-6"), "wraps around");
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert_eq!(app.screen, Screen::Fleet);
        assert_eq!(app.fleet.selected, 3);
    }

    #[test]
    fn no_color_env() {
        use std::ffi::OsStr;
        assert_eq!(Theme::from_no_color(None), Theme::COLOR);
        assert_eq!(Theme::from_no_color(Some(OsStr::new(""))), Theme::COLOR);
        assert_eq!(Theme::from_no_color(Some(OsStr::new("1"))), Theme::MONO);
    }

    proptest::proptest! {
        /// Any key sequence keeps the selection inside the rows and never panics.
        #[test]
        fn random_input_keeps_state_valid(
            input in proptest::collection::vec((0u8..42, 0u16..90, 0u16..30), 0..60)
        ) {
            let snap = fixed_snapshot();
            let mut app = fixed_app(Theme::COLOR);
            let chars = b"jkhlsSwx/fr?q135\t";
            for (k, x, y) in input {
                let ev = match k {
                    0..=16 => Event::char(chars[usize::from(k)] as char),
                    17 => Event::key(KeyCode::Enter),
                    18 => Event::key(KeyCode::Esc),
                    19 => Event::key(KeyCode::Tab),
                    20 => Event::key(KeyCode::PageDown),
                    21 => Event::key(KeyCode::End),
                    22..=30 => Event::click(x, y),
                    _ => Event::wheel(k % 2 == 0, x, y),
                };
                app.handle(ev, &snap);
                let (_, hits) = draw(&app, &snap, 80, 24);
                app.drawn(hits);
                proptest::prop_assert!(app.fleet.selected < 4);
                proptest::prop_assert!(app.errors.selected < snap.tally.entries.len().max(1));
                proptest::prop_assert!(app.sessions.selected < 6);
            }
        }
    }
}
