//! The Sessions screen's state: sort, selection, filters, the rows it
//! shows (every runner's live sessions, and a note for a runner that has
//! none to show), the reason prompt of join and shell, and its keys.

use std::cmp::Ordering;
use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use termgate::operator::{Mode, SessionSummary};

use super::{App, Outcome, Screen};
use crate::attach::AttachRequest;
use crate::model::{SessionsState, Snapshot};

/// Sessions sort columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSort {
    Runner,
    Job,
    Project,
    State,
    Clients,
    Age,
    Out,
}

impl SessionSort {
    const ALL: [SessionSort; 7] = [
        SessionSort::Runner,
        SessionSort::Job,
        SessionSort::Project,
        SessionSort::State,
        SessionSort::Clients,
        SessionSort::Age,
        SessionSort::Out,
    ];
    pub fn label(self) -> &'static str {
        match self {
            SessionSort::Runner => "runner",
            SessionSort::Job => "job",
            SessionSort::Project => "project",
            SessionSort::State => "state",
            SessionSort::Clients => "clients",
            SessionSort::Age => "age",
            SessionSort::Out => "out",
        }
    }
    fn next(self) -> SessionSort {
        let i = SessionSort::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(0);
        SessionSort::ALL[(i + 1) % SessionSort::ALL.len()]
    }
    /// Figures start with the most (clients, oldest, busiest).
    fn default_descending(self) -> bool {
        matches!(
            self,
            SessionSort::Clients | SessionSort::Age | SessionSort::Out
        )
    }
}

/// Sessions screen state.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsView {
    pub selected: usize,
    pub offset: usize,
    pub sort: SessionSort,
    pub descending: bool,
    pub filter: String,
    /// Only this runner's sessions (the Fleet's `t`).
    pub runner: Option<String>,
}

impl Default for SessionsView {
    fn default() -> Self {
        SessionsView {
            selected: 0,
            offset: 0,
            sort: SessionSort::Runner,
            descending: false,
            filter: String::new(),
            runner: None,
        }
    }
}

/// Typing the reason of a join or a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonPrompt {
    /// The attach it is for (its `reason` still `None`).
    pub request: AttachRequest,
    pub text: String,
    /// Enter was pressed on an empty reason.
    pub refused: bool,
}

/// Why a runner has no session rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note<'a> {
    /// Not asked yet.
    Waiting,
    /// It answered: no live sessions.
    Empty,
    /// No operator access: the hint.
    NoAccess(&'a str),
    /// Its API failed.
    Failed {
        reason: &'a str,
        retry_at: SystemTime,
    },
}

/// One row of the Sessions table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SessionRow<'a> {
    Session {
        runner: &'a str,
        session: &'a SessionSummary,
    },
    Note {
        runner: &'a str,
        note: Note<'a>,
    },
}

impl SessionRow<'_> {
    pub fn runner(&self) -> &str {
        match self {
            SessionRow::Session { runner, .. } | SessionRow::Note { runner, .. } => runner,
        }
    }
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

fn session_matches(runner: &str, s: &SessionSummary, f: &str) -> bool {
    f.is_empty()
        || contains(runner, f)
        || contains(&s.id, f)
        || s.job_id.to_string().contains(f)
        || contains(&s.project, f)
        || contains(&s.job_name, f)
        || contains(&s.state, f)
        || s.clients
            .iter()
            .any(|c| contains(&c.role, f) || c.name.as_deref().is_some_and(|n| contains(n, f)))
}

/// `started_at` as a time, for sorting by age (unparsable: newest).
fn started(s: &SessionSummary) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(&s.started_at)
        .ok()
        .map(SystemTime::from)
}

fn state_rank(s: &SessionSummary) -> u8 {
    match s.state.as_str() {
        "active" => 0,
        "idle" => 1,
        "waiting" => 2,
        _ => 3,
    }
}

impl App {
    /// The Sessions rows: failing runners first (something is wrong), then
    /// the sessions passing the filters, sorted (ties by runner, then job),
    /// then the notes of runners without sessions to show.
    pub fn session_rows<'a>(&self, snap: &'a Snapshot) -> Vec<SessionRow<'a>> {
        let f = self.sessions.filter.to_lowercase();
        let only = self.sessions.runner.as_deref();
        let mut failed = Vec::new();
        let mut sessions = Vec::new();
        let mut notes = Vec::new();
        for rs in &snap.sessions {
            let runner = rs.runner.as_str();
            if only.is_some_and(|o| o != runner) {
                continue;
            }
            let note = |note: Note<'a>, text: &str| {
                (f.is_empty() || contains(runner, &f) || contains(text, &f))
                    .then_some(SessionRow::Note { runner, note })
            };
            match &rs.state {
                SessionsState::Live { sessions: list, .. } => {
                    sessions.extend(
                        list.iter()
                            .filter(|s| session_matches(runner, s, &f))
                            .map(|session| SessionRow::Session { runner, session }),
                    );
                    if list.is_empty() {
                        notes.extend(note(Note::Empty, "no live sessions"));
                    }
                }
                SessionsState::Waiting => notes.extend(note(Note::Waiting, "")),
                SessionsState::NoAccess(hint) => notes.extend(note(Note::NoAccess(hint), hint)),
                SessionsState::Failed { reason, retry_at } => failed.extend(note(
                    Note::Failed {
                        reason,
                        retry_at: *retry_at,
                    },
                    reason,
                )),
            }
        }
        let sort = self.sessions.sort;
        let descending = self.sessions.descending;
        sessions.sort_by(|a, b| {
            let (
                SessionRow::Session {
                    runner: ra,
                    session: a,
                },
                SessionRow::Session {
                    runner: rb,
                    session: b,
                },
            ) = (a, b)
            else {
                return Ordering::Equal;
            };
            let o = match sort {
                SessionSort::Runner => ra.cmp(rb),
                SessionSort::Job => a.job_id.cmp(&b.job_id),
                SessionSort::Project => a.project.cmp(&b.project),
                SessionSort::State => state_rank(a).cmp(&state_rank(b)),
                SessionSort::Clients => a.clients.len().cmp(&b.clients.len()),
                // Oldest first when descending: earlier start, greater age.
                SessionSort::Age => started(b).cmp(&started(a)),
                SessionSort::Out => a.bytes_out.cmp(&b.bytes_out),
            };
            let o = if descending { o.reverse() } else { o };
            o.then(ra.cmp(rb)).then(a.job_id.cmp(&b.job_id))
        });
        failed.into_iter().chain(sessions).chain(notes).collect()
    }

    /// The session under the selection, if the row is one.
    pub fn selected_session<'a>(
        &self,
        snap: &'a Snapshot,
    ) -> Option<(&'a str, &'a SessionSummary)> {
        match self.session_rows(snap).get(self.sessions.selected)? {
            SessionRow::Session { runner, session } => Some((runner, session)),
            SessionRow::Note { .. } => None,
        }
    }

    /// Sessions keys: Enter/`o` observe, `j` join, `x` shell (both ask for
    /// a reason first), `s`/`S` sort, Esc clears the filters.
    pub(super) fn sessions_key(&mut self, code: KeyCode, snap: &Snapshot) -> Outcome {
        match code {
            KeyCode::Enter | KeyCode::Char('o') => {
                return self.attach_selected(snap, Mode::Observe)
            }
            KeyCode::Char('j') => return self.attach_selected(snap, Mode::Join),
            KeyCode::Char('x') => return self.attach_selected(snap, Mode::Shell),
            KeyCode::Char('s') => {
                self.sessions.sort = self.sessions.sort.next();
                self.sessions.descending = self.sessions.sort.default_descending();
            }
            KeyCode::Char('S') => self.sessions.descending = !self.sessions.descending,
            KeyCode::Esc if !self.sessions.filter.is_empty() || self.sessions.runner.is_some() => {
                self.sessions.runner = None;
                self.set_filter(String::new());
            }
            _ => return Outcome::None,
        }
        Outcome::Redraw
    }

    /// Observe at once; join and shell open the reason prompt.
    fn attach_selected(&mut self, snap: &Snapshot, mode: Mode) -> Outcome {
        let Some((runner, s)) = self.selected_session(snap) else {
            return Outcome::None;
        };
        let request = AttachRequest {
            runner: runner.to_string(),
            session: s.id.clone(),
            job_id: s.job_id,
            mode,
            reason: None,
        };
        if mode.needs_reason() {
            self.prompt = Some(ReasonPrompt {
                request,
                text: String::new(),
                refused: false,
            });
            Outcome::Redraw
        } else {
            Outcome::Attach(request)
        }
    }

    /// Keys while the reason prompt is open: Enter attaches (not with an
    /// empty reason), Esc cancels.
    pub(super) fn prompt_key(&mut self, k: KeyEvent) -> Outcome {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let Some(p) = self.prompt.as_mut() else {
            return Outcome::None;
        };
        match k.code {
            KeyCode::Enter => {
                let reason = p.text.trim().to_string();
                if reason.is_empty() {
                    p.refused = true;
                    return Outcome::Redraw;
                }
                let mut request = p.request.clone();
                request.reason = Some(reason);
                self.prompt = None;
                return Outcome::Attach(request);
            }
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                p.text.pop();
            }
            KeyCode::Char('u') if ctrl => p.text.clear(),
            KeyCode::Char(c) if !ctrl => {
                p.text.push(c);
                p.refused = false;
            }
            _ => return Outcome::None,
        }
        Outcome::Redraw
    }

    /// The Fleet's `t`: the selected runner's sessions.
    pub(super) fn open_runner_sessions(&mut self, snap: &Snapshot) {
        if let Some(r) = self.fleet_rows(snap).get(self.fleet.selected) {
            self.sessions.runner = Some(r.source.name.clone());
            self.sessions.selected = 0;
            self.screen = Screen::Sessions;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::ui::fixture::{fixed_app, fixed_snapshot};
    use crate::ui::widgets::Theme;

    fn keys(app: &mut App, snap: &Snapshot, s: &str) -> Outcome {
        let mut last = Outcome::None;
        for c in s.chars() {
            last = app.handle(Event::char(c), snap);
        }
        last
    }

    fn jobs(app: &App, snap: &Snapshot) -> Vec<String> {
        app.session_rows(snap)
            .iter()
            .map(|r| match r {
                SessionRow::Session { session, .. } => session.job_id.to_string(),
                SessionRow::Note { runner, .. } => format!("{runner}:note"),
            })
            .collect()
    }

    #[test]
    fn rows_put_failures_first_then_sessions_then_hints() {
        let snap = fixed_snapshot();
        let app = fixed_app(Theme::COLOR);
        assert_eq!(
            jobs(&app, &snap),
            ["prm-3:note", "4711", "4712", "4715", "90", "prm-4:note"]
        );
    }

    #[test]
    fn enter_observes_the_selected_session_at_once() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "3");
        // The error row: nothing to attach to.
        assert_eq!(app.handle(Event::key(KeyCode::Enter), &snap), Outcome::None);
        app.handle(Event::key(KeyCode::Down), &snap);
        let want = AttachRequest {
            runner: "prm-5".into(),
            session: "9f1c2b7d44e0".into(),
            job_id: 4711,
            mode: Mode::Observe,
            reason: None,
        };
        assert_eq!(
            app.handle(Event::key(KeyCode::Enter), &snap),
            Outcome::Attach(want.clone())
        );
        assert_eq!(keys(&mut app, &snap, "o"), Outcome::Attach(want));
        assert_eq!(app.prompt, None);
    }

    #[test]
    fn join_and_shell_ask_for_a_reason_and_refuse_an_empty_one() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "3");
        app.handle(Event::key(KeyCode::Down), &snap);
        app.handle(Event::key(KeyCode::Down), &snap);
        // `j` joins here, it does not move.
        assert_eq!(keys(&mut app, &snap, "j"), Outcome::Redraw);
        assert_eq!(app.sessions.selected, 2);
        let p = app.prompt.clone().unwrap();
        assert_eq!((p.request.job_id, p.request.mode), (4712, Mode::Join));
        // Empty (or blank): refused, the prompt stays.
        keys(&mut app, &snap, "  ");
        assert_eq!(
            app.handle(Event::key(KeyCode::Enter), &snap),
            Outcome::Redraw
        );
        assert!(app.prompt.as_ref().unwrap().refused);
        // Letters are the reason's, not keys: `q` does not quit.
        app.handle(Event::ctrl('u'), &snap);
        assert_eq!(keys(&mut app, &snap, "q: stuck"), Outcome::Redraw);
        app.handle(Event::key(KeyCode::Backspace), &snap);
        let out = app.handle(Event::key(KeyCode::Enter), &snap);
        let Outcome::Attach(req) = out else {
            panic!("{out:?}")
        };
        assert_eq!(req.reason.as_deref(), Some("q: stuc"));
        assert_eq!(req.mode, Mode::Join);
        assert_eq!(app.prompt, None);
        // Esc cancels a shell's prompt and nothing happens.
        keys(&mut app, &snap, "x");
        assert_eq!(
            app.prompt.as_ref().map(|p| p.request.mode),
            Some(Mode::Shell)
        );
        assert_eq!(app.handle(Event::key(KeyCode::Esc), &snap), Outcome::Redraw);
        assert_eq!(app.prompt, None);
        assert_eq!(app.screen, Screen::Sessions);
        // Ctrl-C still quits from the prompt.
        keys(&mut app, &snap, "x");
        assert_eq!(app.handle(Event::ctrl('c'), &snap), Outcome::Quit);
    }

    #[test]
    fn the_attach_result_stays_until_the_next_key_and_state_is_kept() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        keys(&mut app, &snap, "3/acme");
        app.handle(Event::key(KeyCode::Enter), &snap);
        app.handle(Event::key(KeyCode::Down), &snap);
        let before = (app.screen, app.sessions.clone());
        app.attached("[termgate] detached".into());
        assert_eq!((app.screen, app.sessions.clone()), before);
        assert_eq!(app.status.as_deref(), Some("[termgate] detached"));
        // A key nobody uses still redraws: the message goes.
        assert_eq!(keys(&mut app, &snap, "z"), Outcome::Redraw);
        assert_eq!(app.status, None);
        // So does a click.
        app.attached("[termgate] detached".into());
        app.handle(Event::click(0, 0), &snap);
        assert_eq!(app.status, None);
    }

    #[test]
    fn filter_sort_and_the_fleet_link() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        // Fleet: prm-5 is the third runner; `t` opens its sessions.
        keys(&mut app, &snap, "jjt");
        assert_eq!(app.screen, Screen::Sessions);
        assert_eq!(app.sessions.runner.as_deref(), Some("prm-5"));
        assert_eq!(jobs(&app, &snap), ["4711", "4712", "4715"]);
        // Sort by output, most first.
        keys(&mut app, &snap, "ssssss");
        assert_eq!(app.sessions.sort, SessionSort::Out);
        assert_eq!(jobs(&app, &snap), ["4711", "4712", "4715"]);
        keys(&mut app, &snap, "S");
        assert_eq!(jobs(&app, &snap), ["4715", "4712", "4711"]);
        // Esc clears the runner; a text filter matches projects, clients
        // and notes.
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert_eq!(app.sessions.runner, None);
        keys(&mut app, &snap, "/alice");
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(jobs(&app, &snap), ["4711"]);
        keys(&mut app, &snap, "/");
        app.handle(Event::ctrl('u'), &snap);
        keys(&mut app, &snap, "refused");
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(jobs(&app, &snap), ["prm-3:note"]);
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert_eq!(jobs(&app, &snap).len(), 6);
        // Sort by age: oldest first when descending (the default).
        keys(&mut app, &snap, "ssssss");
        assert_eq!(app.sessions.sort, SessionSort::Age);
        assert_eq!(jobs(&app, &snap)[1..5], ["4711", "4712", "90", "4715"]);
    }
}
