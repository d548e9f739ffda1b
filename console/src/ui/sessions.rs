//! Sessions: every runner's live sessions from its operator API, one row
//! each; a runner without sessions to show gets one note row (its error,
//! the hint that it has no operator access, or that it has none live).

use std::time::SystemTime;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, Note, SessionRow, SessionSort, TableHit};
use crate::model::Snapshot;
use crate::session_text::{clients, in_out, session_age, short_id};
use crate::ui::rows::selectable_rows;
use crate::ui::widgets::{Cell, Col, Columns, Theme};

pub fn render(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    snap: &Snapshot,
    now: SystemTime,
) -> Option<TableHit> {
    let t = app.theme;
    let rows = app.session_rows(snap);
    let mut area = area;
    let filtered = !app.sessions.filter.is_empty() || app.sessions.runner.is_some();
    if filtered && area.height > 3 {
        let mut note = vec![Span::styled(" filter", t.dim())];
        if let Some(r) = &app.sessions.runner {
            note.push(Span::styled(" runner ", t.dim()));
            note.push(Span::styled(r.clone(), t.accent()));
        }
        if !app.sessions.filter.is_empty() {
            note.push(Span::raw(" "));
            note.push(Span::styled(
                format!("{:?}", app.sessions.filter),
                t.accent(),
            ));
        }
        note.push(Span::styled(
            format!("  {} rows  (Esc clears)", rows.len()),
            t.dim(),
        ));
        frame.render_widget(Paragraph::new(Line::from(note)), Rect { height: 1, ..area });
        area.y += 1;
        area.height -= 1;
    }
    // The keys under the table, when there is room.
    let keys_h = u16::from(area.height > 4);
    let [table, keys] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(keys_h)]).areas(area);
    if keys_h > 0 {
        frame.render_widget(
            Paragraph::new(Line::styled(
                " Enter/o: observe   j: join   x: shell   (join and shell ask a reason; audited)",
                t.dim(),
            )),
            keys,
        );
    }
    let cells: Vec<Vec<Cell>> = rows.iter().map(|r| cells(r, t, now)).collect();
    let cols = Columns::fit(
        columns(app),
        &cells,
        usize::from(table.width).saturating_sub(1),
    );
    let [head, body] =
        Layout::vertical([Constraint::Length(1.min(table.height)), Constraint::Min(0)])
            .areas(table);
    let header: Vec<Line> = cols
        .header(t.title())
        .into_iter()
        .map(|l| Line::from(format!(" {l}")).style(t.title()))
        .collect();
    frame.render_widget(Paragraph::new(header), head);
    let empty = if snap.sessions.is_empty() {
        " no runners with a session_url in console.toml (see README)"
    } else {
        " no session matches the filter"
    };
    let lines = cells.iter().map(|c| cols.row(c)).collect();
    let sel = (app.sessions.offset, app.sessions.selected);
    Some(selectable_rows(frame, body, lines, empty, sel, t))
}

fn columns(app: &App) -> Vec<Col> {
    let mut cols = vec![
        Col::left("RUNNER", 6, 20).keep(),
        Col::left("SESSION", 7, 8).keep(),
        Col::right("JOB", 3, 10).keep(),
        Col::left("PROJECT", 7, 30),
        Col::left("STATE", 7, 7),
        Col::left("CLIENTS", 7, 30),
        Col::right("AGE", 3, 5),
        Col::right("IN/OUT", 6, 13),
    ];
    let at = match app.sessions.sort {
        SessionSort::Runner => 0,
        SessionSort::Job => 2,
        SessionSort::Project => 3,
        SessionSort::State => 4,
        SessionSort::Clients => 5,
        SessionSort::Age => 6,
        SessionSort::Out => 7,
    };
    let arrow = if app.sessions.descending {
        "↓"
    } else {
        "↑"
    };
    if let Some(c) = cols.get_mut(at) {
        c.title.push_str(arrow);
    }
    cols
}

fn cells(r: &SessionRow, t: Theme, now: SystemTime) -> Vec<Cell> {
    match r {
        SessionRow::Session { runner, session: s } => {
            let state = match s.state.as_str() {
                "active" => Cell::new("active", t.good()),
                "waiting" => Cell::new("waiting", t.dim()),
                other => Cell::plain(other),
            };
            let project = match (s.project.as_str(), s.job_name.as_str()) {
                ("", "") => "-".to_string(),
                ("", name) => name.to_string(),
                (p, _) => p.to_string(),
            };
            vec![
                Cell::plain(runner.to_string()),
                Cell::plain(short_id(&s.id)),
                Cell::plain(s.job_id.to_string()),
                Cell::plain(project),
                state,
                Cell::plain(clients(s)),
                Cell::plain(session_age(s, now)),
                Cell::plain(in_out(s)),
            ]
        }
        SessionRow::Note { runner, note } => {
            let (text, style) = match note {
                Note::Waiting => ("asking for sessions…".to_string(), t.dim()),
                Note::Empty => ("no live sessions".to_string(), t.dim()),
                Note::NoAccess(hint) => (hint.to_string(), t.dim()),
                Note::Failed { reason, retry_at } => {
                    let retry = match retry_at.duration_since(now) {
                        Ok(d) if !d.is_zero() => format!("retry {}s", d.as_secs_f64().ceil()),
                        _ => "retrying".into(),
                    };
                    (format!("!{reason}, {retry}"), t.bad())
                }
            };
            let name = match note {
                Note::Failed { .. } => Cell::new(runner.to_string(), t.bad()),
                _ => Cell::plain(runner.to_string()),
            };
            vec![name, Cell::spanning(text, style)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Screen;
    use crate::event::Event;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use insta::assert_snapshot;

    /// On the Sessions screen, the first session selected (the row under
    /// prm-3's error).
    fn on_sessions(theme: Theme) -> App {
        let mut app = fixed_app(theme);
        app.screen = Screen::Sessions;
        app.sessions.selected = 1;
        app
    }

    #[test]
    fn sessions_80x24() {
        let (term, _) = draw(&on_sessions(Theme::COLOR), &fixed_snapshot(), 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn sessions_160x40() {
        let (term, _) = draw(&on_sessions(Theme::COLOR), &fixed_snapshot(), 160, 40);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn sessions_60x20_collapses_columns() {
        let (term, _) = draw(&on_sessions(Theme::COLOR), &fixed_snapshot(), 60, 20);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn sessions_of_one_runner_sorted_by_output() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        // From the Fleet: prm-5 is the third row.
        for c in "jjt".chars() {
            app.handle(Event::char(c), &snap);
        }
        assert_eq!(app.screen, Screen::Sessions);
        for _ in 0..6 {
            app.handle(Event::char('s'), &snap);
        }
        assert_eq!(app.sessions.sort, SessionSort::Out);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn reason_prompt_in_the_footer() {
        let snap = fixed_snapshot();
        let mut app = on_sessions(Theme::MONO);
        app.handle(Event::char('x'), &snap);
        for c in "disk full".chars() {
            app.handle(Event::char(c), &snap);
        }
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        let footer = text.lines().last().unwrap_or_default();
        assert!(
            footer.starts_with("\"reason for a shell in job 4711 on prm-5: disk full▏"),
            "{footer}"
        );
        // An empty reason is refused with a word why.
        let mut app = on_sessions(Theme::MONO);
        app.handle(Event::char('j'), &snap);
        app.handle(Event::key(crossterm::event::KeyCode::Enter), &snap);
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(text.contains("a reason is required"), "{text}");
    }

    #[test]
    fn the_attach_result_shows_in_the_footer() {
        let snap = fixed_snapshot();
        let mut app = on_sessions(Theme::MONO);
        app.attached("[termgate] session closed: the job finished".into());
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        let footer = text.lines().last().unwrap_or_default();
        assert!(
            footer.starts_with("\"[termgate] session closed: the job finished  (any key)"),
            "{footer}"
        );
        // The next key brings the tabs back.
        app.handle(Event::key(crossterm::event::KeyCode::Down), &snap);
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(text
            .lines()
            .last()
            .unwrap_or_default()
            .contains("[3]Sessions"));
    }
}
