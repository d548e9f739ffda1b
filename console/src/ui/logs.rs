//! Logs: the live tail merged across runners, newest at the bottom,
//! coloured by level, other fields folded into `key=value`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::app::{App, TableHit};
use crate::model::{Level, LogRecord, Snapshot};
use crate::text::{clean, clock};
use crate::ui::widgets::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) -> Option<TableHit> {
    let t = app.theme;
    let rows = app.log_rows(snap);
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new(title_line(app, rows.len(), snap.logs.len())),
        title,
    );
    let h = usize::from(body.height);
    let end = if app.logs.follow {
        rows.len()
    } else {
        rows.len().saturating_sub(app.logs.scroll)
    };
    let start = end.saturating_sub(h);
    let name_w = rows.iter().map(|r| r.runner.width()).max().unwrap_or(0);
    // Newest at the bottom, like a tail: pad the top when short.
    let mut lines: Vec<Line> = vec![Line::raw(""); h.saturating_sub(end - start)];
    lines.extend(rows[start..end].iter().map(|r| line(r, t, name_w)));
    if rows.is_empty() {
        let msg = if snap.logs.is_empty() {
            " no log lines yet (configure log files per runner)"
        } else {
            " no line matches the filters (c clears them)"
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, t.dim())), body);
    } else {
        frame.render_widget(Paragraph::new(lines), body);
    }
    Some(TableHit {
        body,
        offset: start,
        len: rows.len(),
    })
}

fn title_line(app: &App, shown: usize, total: usize) -> Line<'static> {
    let t = app.theme;
    let l = &app.logs;
    let mut spans = vec![if l.follow {
        Span::styled(" following", t.good())
    } else {
        Span::styled(" !paused (f follows)", t.warn())
    }];
    if let Some(m) = l.min_level {
        spans.push(Span::styled(
            format!(" · level ≥ {}", m.as_str()),
            t.accent(),
        ));
    }
    if let Some(r) = &l.runner {
        spans.push(Span::styled(format!(" · runner {r}"), t.accent()));
    }
    if !l.filter.is_empty() {
        spans.push(Span::styled(
            format!(" · filter {:?}", l.filter),
            t.accent(),
        ));
    }
    spans.push(Span::styled(
        format!(" · {shown} of {total} lines"),
        t.dim(),
    ));
    Line::from(spans)
}

fn level_label(l: Level) -> &'static str {
    match l {
        Level::Debug => "DEBUG",
        Level::Info => "INFO ",
        Level::Warning => "WARN ",
        Level::Error => "ERROR",
        Level::Fatal => "FATAL",
        Level::Panic => "PANIC",
    }
}

/// `key=value`, quoting values with spaces or quotes.
pub fn fold(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            if v.is_empty() || v.contains([' ', '"', '=']) {
                format!("{k}={v:?}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn line(r: &LogRecord, t: Theme, name_w: usize) -> Line<'static> {
    let time = r
        .time
        .map_or("--:--:--".to_string(), |tm| clock(tm).replace(" UTC", ""));
    let msg_style = match r.level {
        Level::Debug => t.dim(),
        Level::Info => ratatui::style::Style::new(),
        l => t.level(l),
    };
    let mut spans = vec![
        Span::styled(format!("{time} "), t.dim()),
        Span::styled(format!("{:<name_w$} ", clean(&r.runner)), t.accent()),
        Span::styled(format!("{} ", level_label(r.level)), t.level(r.level)),
        Span::styled(clean(&r.msg), msg_style),
    ];
    if !r.fields.is_empty() {
        spans.push(Span::styled(
            format!(" {}", clean(&fold(&r.fields))),
            t.dim(),
        ));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use crossterm::event::KeyCode;
    use insta::assert_snapshot;

    #[test]
    fn fields_fold() {
        let f = vec![
            ("job".to_string(), "4711".to_string()),
            ("reason".to_string(), "client left".to_string()),
        ];
        assert_eq!(fold(&f), r#"job=4711 reason="client left""#);
    }

    #[test]
    fn logs_80x24() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('5'), &snap);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn logs_with_filters() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('5'), &snap);
        for c in "/terminal".chars() {
            app.handle(Event::char(c), &snap);
        }
        app.handle(Event::key(KeyCode::Enter), &snap);
        app.handle(Event::char('r'), &snap);
        app.handle(Event::char('r'), &snap);
        app.handle(Event::char('r'), &snap);
        assert_eq!(app.logs.filter, "terminal");
        assert_eq!(app.logs.runner.as_deref(), Some("prm-5"));
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn logs_level_filter() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('5'), &snap);
        app.handle(Event::char('l'), &snap);
        app.handle(Event::char('l'), &snap);
        assert_eq!(app.logs.min_level, Some(Level::Warning));
        assert_eq!(app.log_rows(&snap).len(), 4);
    }
}
