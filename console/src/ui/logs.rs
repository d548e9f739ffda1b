//! Logs: the live tail merged across runners, newest at the bottom,
//! coloured by level, other fields folded into `key=value`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::app::{App, TableHit};
use crate::model::{Level, LogRecord, Snapshot};
use crate::text::{clean, clock};
use crate::ui::widgets::{centered, Theme};

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
    let pad = h.saturating_sub(end - start);
    let mut lines: Vec<Line> = vec![Line::raw(""); pad];
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
    if let Some(rec) = &app.logs.detail {
        detail(frame, area, t, rec);
    }
    // The rows drawn, below the padding: a click finds its line.
    let pad = u16::try_from(pad).unwrap_or(body.height).min(body.height);
    Some(TableHit {
        body: Rect {
            y: body.y + pad,
            height: body.height - pad,
            ..body
        },
        offset: start,
        len: rows.len(),
    })
}

/// Enter (or a click) on a line: all of it, wrapped, and every field on
/// its own line, so that nothing cut at the screen's width is lost.
fn detail(frame: &mut Frame, area: Rect, t: Theme, r: &LogRecord) {
    let width = (area.width.saturating_sub(4)).max(area.width * 9 / 10);
    let height = (area.height.saturating_sub(2)).max(area.height * 8 / 10);
    let rect = centered(area, width, height);
    let time = r.time.map_or("no time in the line".to_string(), |tm| {
        chrono::DateTime::<chrono::Utc>::from(tm)
            .format("%Y-%m-%d %H:%M:%S%.3f UTC")
            .to_string()
    });
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!("{} ", level_label(r.level).trim_end()),
                t.level(r.level),
            ),
            Span::styled("· runner ", t.dim()),
            Span::styled(clean(&r.runner), t.accent()),
            Span::styled(" · ", t.dim()),
            Span::raw(time),
        ]),
        Line::raw(""),
        Line::styled("message", t.title()),
        Line::raw(clean(&r.msg)),
    ];
    if !r.fields.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!("{} fields", r.fields.len()),
            t.title(),
        ));
        let key_w = r
            .fields
            .iter()
            .map(|(k, _)| k.width())
            .max()
            .unwrap_or(0)
            .min(24);
        for (k, v) in &r.fields {
            lines.push(Line::from(vec![
                Span::styled(format!("{:<key_w$} ", clean(k)), t.dim()),
                Span::raw(clean(v)),
            ]));
        }
    }
    let block = Block::bordered()
        .title(Line::styled(" log line ", t.title()))
        .title_bottom(Line::styled(" ↑↓ previous/next line · Esc close ", t.dim()))
        .border_style(t.accent());
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
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

    /// Issue 19: a line longer than the screen can be read whole: Enter
    /// opens the newest line in view, ↑ the one before, a click the one
    /// under the cursor.
    #[test]
    fn logs_detail_shows_the_whole_line() {
        let mut snap = fixed_snapshot();
        let long = "Job failed (system failure): prepare environment: Error response from daemon: \
                    failed to create task for container: failed to create shim task: OCI runtime \
                    create failed: runc create failed: unable to start container process: exec: \
                    \"/usr/bin/dumb-init\": stat /usr/bin/dumb-init: no such file or directory";
        if let Some(r) = snap
            .logs
            .iter_mut()
            .find(|r| r.msg.starts_with("Job failed"))
        {
            r.msg = long.into();
            r.fields.push((
                "image".into(),
                "registry.example.net/acme/build-image:2025.05.06-a1b2c3d4".into(),
            ));
        }
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('5'), &snap);
        app.handle(Event::key(KeyCode::Enter), &snap);
        assert_eq!(
            app.logs.detail.as_ref().map(|r| r.msg.as_str()),
            Some("Checking for jobs... nothing"),
            "the newest line in view"
        );
        for _ in 0..5 {
            app.handle(Event::key(KeyCode::Up), &snap);
        }
        assert_eq!(app.logs.detail.as_ref().map(|r| r.msg.as_str()), Some(long));
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
        // Esc closes it; a click on a line opens that one.
        app.handle(Event::key(KeyCode::Esc), &snap);
        assert!(app.logs.detail.is_none());
        let (_, hits) = draw(&app, &snap, 80, 24);
        app.drawn(hits);
        let body = app.hits.table.unwrap().body;
        app.handle(Event::click(3, body.y), &snap);
        assert_eq!(
            app.logs.detail.as_ref().map(|r| r.msg.as_str()),
            Some("Checking for jobs... received"),
            "the first row drawn (the oldest line, below the padding)"
        );
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
