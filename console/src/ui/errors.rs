//! Errors: the log tally by fingerprint over a window, most frequent
//! first; Enter opens the examples of one.

use std::time::SystemTime;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::{App, ErrWindow, ErrorRow, TableHit};
use crate::model::{Origin, Snapshot};
use crate::text::{age_at, hhmm};
use crate::ui::rows::selectable_rows;
use crate::ui::widgets::{centered, spark, Cell, Col, Columns, Theme};

pub fn render(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    snap: &Snapshot,
    now: SystemTime,
) -> Option<TableHit> {
    let t = app.theme;
    let rows = app.error_rows(snap, now);
    let [title, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(title_line(app, snap, rows.len())), title);
    let trend_w = if area.width >= 120 { 30 } else { 10 };
    let cells: Vec<Vec<Cell>> = rows.iter().map(|r| cells(r, app, now, trend_w)).collect();
    let cols = Columns::fit(
        vec![
            Col::right("COUNT", 5, 8).keep(),
            Col::left("LEVEL", 7, 7).keep(),
            // Whose: the runner's error or the user's job failure.
            Col::left("FROM", 6, 6).keep(),
            Col::left("RUNNERS", 7, 20),
            Col::right("FIRST", 5, 6),
            Col::right("LAST", 5, 6),
            Col::left("TREND", trend_w, trend_w),
            Col::left("FINGERPRINT", 10, 300).keep().flex(),
        ],
        &cells,
        usize::from(table.width).saturating_sub(1),
    );
    let [head, body] =
        Layout::vertical([Constraint::Length(1.min(table.height)), Constraint::Min(0)])
            .areas(table);
    let header: Vec<Line> = cols
        .header(t.title())
        .into_iter()
        .map(|l| Line::from(format!(" {}", l)).style(t.title()))
        .collect();
    frame.render_widget(Paragraph::new(header), head);
    let empty = if app.errors.filter.is_empty() {
        format!(
            " no warnings or errors in the last {}",
            app.errors.window.label()
        )
    } else {
        format!(
            " no match for {:?} in the last {} (Esc clears the filter)",
            app.errors.filter,
            app.errors.window.label()
        )
    };
    let lines = cells.iter().map(|c| cols.row(c)).collect();
    let sel = (app.errors.offset, app.errors.selected);
    let hit = selectable_rows(frame, body, lines, &empty, sel, t);
    if let Some(fp) = &app.errors.popup {
        if let Some(r) = rows.iter().find(|r| &r.entry.fingerprint == fp) {
            popup(frame, area, t, r, app.errors.window, now);
        }
    }
    Some(hit)
}

fn title_line(app: &App, snap: &Snapshot, n: usize) -> Line<'static> {
    let t = app.theme;
    let mut spans = vec![Span::styled(" window ", t.dim())];
    for w in ErrWindow::ALL {
        let style = if w == app.errors.window {
            t.selected()
        } else {
            t.dim()
        };
        spans.push(Span::styled(w.label(), style));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled(
        format!(
            "· {n} fingerprint{} · {} lines, {} unparsed{} · !new: <1h",
            if n == 1 { "" } else { "s" },
            snap.tally.lines,
            snap.tally.unparsed,
            if snap.tally.oversized > 0 {
                format!(", {} oversized", snap.tally.oversized)
            } else {
                String::new()
            }
        ),
        t.dim(),
    ));
    if !app.errors.filter.is_empty() {
        spans.push(Span::styled(
            format!(" · filter {:?}", app.errors.filter),
            t.accent(),
        ));
    }
    Line::from(spans)
}

fn cells(r: &ErrorRow, app: &App, now: SystemTime, trend_w: usize) -> Vec<Cell> {
    let t = app.theme;
    let e = r.entry;
    let first = e.first_seen.map_or("-".into(), |f| age_at(now, f));
    let first = if r.new {
        Cell::new(format!("!{first}"), t.bad())
    } else {
        Cell::plain(first)
    };
    let runners = e.runners.iter().cloned().collect::<Vec<_>>().join(",");
    vec![
        Cell::plain(r.count.to_string()),
        Cell::new(e.level.as_str(), t.level(e.level)),
        origin_cell(e.origin, t),
        Cell::plain(runners),
        first,
        Cell::plain(e.last_seen.map_or("-".into(), |l| age_at(now, l))),
        Cell::new(
            spark(&e.trend_buckets(now, app.errors.window.duration(), trend_w)),
            t.level(e.level),
        ),
        // The normalised form: one row stands for every message it groups.
        Cell::plain(e.fingerprint.clone()),
    ]
}

/// `runner` (a runner error: its level's colour is earned) or `job` (a
/// user's job failed: dim).
pub fn origin_cell(o: Origin, t: Theme) -> Cell {
    match o {
        Origin::Runner => Cell::plain(o.as_str()),
        Origin::Job => Cell::new(o.as_str(), t.dim()),
    }
}

fn popup(frame: &mut Frame, area: Rect, t: Theme, r: &ErrorRow, w: ErrWindow, now: SystemTime) {
    let e = r.entry;
    let width = (area.width.saturating_sub(4)).max(area.width * 9 / 10);
    let height = (area.height.saturating_sub(2)).max(area.height * 8 / 10);
    let rect = centered(area, width, height);
    let seen = |s: Option<SystemTime>| {
        s.map_or("-".into(), |s| {
            format!("{} ({} ago)", hhmm(s), age_at(now, s))
        })
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", e.level.as_str()), t.level(e.level)),
            Span::raw(format!(
                "· {} · {} in {} ({} counted) · runners {}",
                match e.origin {
                    Origin::Runner => "runner error",
                    Origin::Job => "job failure (the user's)",
                },
                r.count,
                w.label(),
                e.count,
                e.runners.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
        ]),
        Line::from(vec![
            Span::styled("first ", t.dim()),
            Span::styled(seen(e.first_seen), if r.new { t.bad() } else { t.dim() }),
            Span::styled(if r.new { " !new" } else { "" }, t.bad()),
            Span::styled("  last ", t.dim()),
            Span::raw(seen(e.last_seen)),
        ]),
        Line::from(vec![
            Span::styled("latest ", t.dim()),
            Span::raw(e.sample.clone()),
        ]),
        Line::raw(""),
        Line::styled(
            format!("latest {} examples, oldest first:", e.examples.len()),
            t.title(),
        ),
    ];
    for ex in &e.examples {
        lines.push(Line::raw(ex.clone()));
    }
    let block = Block::bordered()
        .title(Line::styled(format!(" {} ", e.fingerprint), t.title()))
        .title_bottom(Line::styled(" Esc close ", t.dim()))
        .border_style(t.accent());
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use crate::app::Screen;
    use crate::event::Event;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use crate::ui::widgets::Theme;
    use crossterm::event::KeyCode;
    use insta::assert_snapshot;

    #[test]
    fn errors_80x24() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('4'), &snap);
        assert_eq!(app.screen, Screen::Errors);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn errors_7d_window() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('4'), &snap);
        app.handle(Event::char('w'), &snap);
        app.handle(Event::char('w'), &snap);
        assert_eq!(app.errors.window, crate::app::ErrWindow::D7);
        assert_eq!(app.error_rows(&snap, app.now).len(), 5);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    /// Issue 19: the filter matches the kept example lines too (the
    /// fixture's examples carry `"runner":"a1b2c3"`, no fingerprint does),
    /// and a filter that matches nothing says so.
    #[test]
    fn errors_filter_matches_examples_and_says_no_match() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('4'), &snap);
        for c in "/A1B2C3".chars() {
            app.handle(Event::char(c), &snap);
        }
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(app.error_rows(&snap, app.now).len(), 4, "every row in 1h");
        app.handle(Event::key(KeyCode::Esc), &snap);
        for c in "/exit code N".chars() {
            app.handle(Event::char(c), &snap);
        }
        app.handle(Event::key(KeyCode::Enter), &snap);
        let rows = app.error_rows(&snap, app.now);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].entry.fingerprint, "Job failed: exit code N");
        // Only an example has `status`.
        app.handle(Event::key(KeyCode::Esc), &snap);
        for c in "/\"status\":\"409\"".chars() {
            app.handle(Event::char(c), &snap);
        }
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(app.error_rows(&snap, app.now).len(), 4);
        app.handle(Event::key(KeyCode::Esc), &snap);
        for c in "/nothing like it".chars() {
            app.handle(Event::char(c), &snap);
        }
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert!(app.error_rows(&snap, app.now).is_empty());
        let (term, _) = draw(&app, &snap, 80, 8);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn errors_examples_popup() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('4'), &snap);
        app.handle(Event::char('j'), &snap);
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(
            app.errors.popup.as_deref(),
            Some("Terminal already connected, revoking connection")
        );
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }
}
