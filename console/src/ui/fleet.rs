//! Fleet: one row per runner, the fleet's terminals over the last hour,
//! and the top error fingerprints of the last hour.

use std::time::{Duration, SystemTime};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::app::{App, ErrWindow, FleetSort, TableHit};
use crate::model::{Health, RunnerState, Series, Snapshot};
use crate::text::{age_at, bytes, num};
use crate::ui::rows::selectable_rows;
use crate::ui::widgets::{spark, Cell, Col, Columns, Theme};

const HOUR: Duration = Duration::from_secs(3600);

pub fn render(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    snap: &Snapshot,
    now: SystemTime,
) -> Option<TableHit> {
    let rows = app.fleet_rows(snap);
    // Below the table: sparklines (3 lines) and top errors (4), dropped
    // when the screen is short.
    let table_min = 2 + rows.len().clamp(1, 4) as u16;
    let sparks = if area.height >= table_min + 3 { 3 } else { 0 };
    let errs = if area.height >= table_min + sparks + 4 {
        4
    } else {
        0
    };
    let [table, spark_area, err_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(sparks),
        Constraint::Length(errs),
    ])
    .areas(area);
    let hit = fleet_table(frame, table, app, &rows, now);
    if sparks > 0 {
        terminals(frame, spark_area, app.theme, snap, now);
    }
    if errs > 0 {
        top_errors(frame, err_area, app, snap, now);
    }
    hit
}

fn columns(app: &App) -> Vec<Col> {
    let mut cols = vec![
        Col::left("RUNNER", 6, 24).keep(),
        Col::left("STATE", 5, 7).keep(),
        Col::left("VERSION", 7, 14),
        Col::right("JOBS", 4, 7),
        Col::right("TERMINALS", 5, 7).under("avail"),
        Col::right("TERMINALS", 6, 7).under("active"),
        Col::right("TERMINALS", 4, 7).under("idle"),
        Col::right("WS", 3, 6),
        // The runner's own errors, and its users' failed jobs apart
        // (RunnerState::errors_per_minute, job_failures_per_minute).
        Col::right("ERR/min", 7, 8).under("runner"),
        Col::right("FAIL/min", 8, 8).under("jobs"),
        Col::right("CPU", 4, 6),
        Col::right("RSS", 5, 6),
        Col::left("AGE", 4, 12),
    ];
    let at = match app.fleet.sort {
        FleetSort::Name => 0,
        FleetSort::State => 1,
        FleetSort::Jobs => 3,
        FleetSort::Avail => 4,
        FleetSort::Active => 5,
        FleetSort::Ws => 7,
        FleetSort::Errors => 8,
        FleetSort::Cpu => 10,
        FleetSort::Rss => 11,
        FleetSort::Age => 12,
    };
    let arrow = if app.fleet.descending { "↓" } else { "↑" };
    if let Some(c) = cols.get_mut(at) {
        if c.sub.is_empty() {
            c.title.push_str(arrow);
        } else {
            c.sub.push_str(arrow);
        }
    }
    cols
}

/// The cells of one runner's row.
fn cells(r: &RunnerState, t: Theme, now: SystemTime) -> Vec<Cell> {
    let name = Cell::plain(r.source.name.clone());
    match &r.health {
        Health::Down { reason, retry_at } => {
            let retry = match retry_at.duration_since(now) {
                Ok(d) if !d.is_zero() => format!("retry {}s", d.as_secs_f64().ceil()),
                _ => "retrying".into(),
            };
            let mut why = format!("{reason}, {retry}");
            if let Some(ok) = r.last_ok {
                why.push_str(&format!(" · last ok {} ago", age_at(now, ok)));
            }
            vec![
                Cell::new(r.source.name.clone(), t.bad()),
                Cell::new("!DOWN", t.bad()),
                Cell::spanning(why, t.bad()),
            ]
        }
        health => {
            let l = r.latest.clone().unwrap_or_default();
            let state = match health {
                Health::Up => Cell::new("up", t.good()),
                _ => Cell::new("…", t.dim()),
            };
            let avail = match l.terminals_available {
                Some(v) if v <= 0.0 => Cell::new("!0", t.bad()),
                v => Cell::plain(num(v)),
            };
            vec![
                name,
                state,
                Cell::plain(l.version.as_ref().map_or("-".into(), |v| v.short())),
                Cell::plain(num(l.jobs)),
                avail,
                Cell::plain(num(l.terminals_active)),
                Cell::plain(num(l.terminals_idle)),
                Cell::plain(num(l.ws_total())),
                Cell::plain(num(r.errors_per_minute)),
                Cell::plain(num(r.job_failures_per_minute)),
                Cell::plain(r.cpu_percent.map_or("-".into(), |c| format!("{c:.0}%"))),
                Cell::plain(bytes(l.rss_bytes)),
                Cell::plain(r.last_ok.map_or("-".into(), |ok| age_at(now, ok))),
            ]
        }
    }
}

fn fleet_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    rows: &[&RunnerState],
    now: SystemTime,
) -> Option<TableHit> {
    let t = app.theme;
    let mut area = area;
    if !app.fleet.filter.is_empty() && area.height > 3 {
        let note = Line::from(vec![
            Span::styled(" filter ", t.dim()),
            Span::styled(format!("{:?}", app.fleet.filter), t.accent()),
            Span::styled(
                format!("  {} of the runners  (Esc clears)", rows.len()),
                t.dim(),
            ),
        ]);
        frame.render_widget(Paragraph::new(note), Rect { height: 1, ..area });
        area.y += 1;
        area.height -= 1;
    }
    let all: Vec<Vec<Cell>> = rows.iter().map(|r| cells(r, t, now)).collect();
    // One column for the selection marker.
    let cols = Columns::fit(
        columns(app),
        &all,
        usize::from(area.width).saturating_sub(1),
    );
    let header = cols.header(t.title());
    let head_h = (header.len() as u16).min(area.height);
    let [head, body] =
        Layout::vertical([Constraint::Length(head_h), Constraint::Min(0)]).areas(area);
    let header: Vec<Line> = header
        .into_iter()
        .map(|l| {
            let mut spans = vec![Span::raw(" ")];
            spans.extend(l.spans);
            Line::from(spans).style(l.style)
        })
        .collect();
    frame.render_widget(Paragraph::new(header), head);
    let empty = if app.fleet.filter.is_empty() {
        " no runners: add some to console.toml or pass --runner NAME=URL"
    } else {
        " no runner matches the filter"
    };
    let lines = all.iter().map(|c| cols.row(c)).collect();
    let sel = (app.fleet.offset, app.fleet.selected);
    Some(selectable_rows(frame, body, lines, empty, sel, t))
}

/// `─ title ─────…`
pub fn rule(title: &str, width: u16, t: Theme) -> Line<'static> {
    let head = format!("─ {title} ");
    let fill = usize::from(width).saturating_sub(head.width());
    Line::from(vec![
        Span::styled("─ ", t.dim()),
        Span::styled(format!("{title} "), t.title()),
        Span::styled("─".repeat(fill), t.dim()),
    ])
}

/// A series summed over the runners that have it, in `n` buckets over the
/// last hour; `None` where no runner has a point.
pub fn fleet_series(snap: &Snapshot, s: Series, now: SystemTime, n: usize) -> Vec<Option<f64>> {
    let start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    // The publisher keeps the fleet's sums: one series, whatever the fleet size.
    let precomputed = snap.fleet.series.get(&s).is_some_and(|q| !q.is_empty());
    let histories: Vec<&crate::model::History> = if precomputed {
        vec![&snap.fleet]
    } else {
        snap.runners.iter().map(|r| &r.history).collect()
    };
    let mut out: Vec<Option<f64>> = vec![None; n];
    for h in histories {
        let pts = h
            .points_since(s, start)
            .into_iter()
            .map(|(secs, v)| (h.origin + Duration::from_secs_f64(secs), v));
        let mut b = crate::model::buckets(pts, start, now, n);
        // A gauge holds its value between points: fill the gaps when
        // buckets are narrower than the scrape interval.
        let last = b.iter().rposition(Option::is_some).unwrap_or(0);
        let mut prev = None;
        for v in b.iter_mut().take(last) {
            match v {
                Some(x) => prev = Some(*x),
                None => *v = prev,
            }
        }
        for (o, v) in out.iter_mut().zip(b) {
            if let Some(v) = v {
                *o = Some(o.unwrap_or(0.0) + v);
            }
        }
    }
    out
}

fn terminals(frame: &mut Frame, area: Rect, t: Theme, snap: &Snapshot, now: SystemTime) {
    let label = 8;
    let width = usize::from(area.width).saturating_sub(label + 1);
    let mut lines = vec![rule("terminals, last hour", area.width, t)];
    // Leave room for the summary after the sparkline.
    // `  min 12 at 13:41, !14 min at zero` fits in 36 columns.
    let spark_w = if width > 56 { width - 36 } else { width / 2 };
    let avail = fleet_series(snap, Series::TerminalsAvailable, now, spark_w);
    let active = fleet_series(snap, Series::TerminalsActive, now, spark_w);
    if avail.iter().all(Option::is_none) && active.iter().all(Option::is_none) {
        lines.push(Line::styled(
            " no terminal metrics (upstream gitlab-runner exports none)",
            t.dim(),
        ));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    // Minimum and time at zero for the available terminals.
    let bucket = HOUR.as_secs_f64() / spark_w.max(1) as f64;
    let min = avail
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let zero = avail.iter().filter(|v| **v == Some(0.0)).count();
    let start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut avail_line = vec![
        Span::styled(format!(" {:<label$}", "avail"), t.title()),
        Span::styled(spark(&avail), t.series(0)),
    ];
    if let Some((i, v)) = min {
        let at = start + Duration::from_secs_f64(i as f64 * bucket);
        let text = format!("  min {} at {}", num(Some(v)), crate::text::hhmm(at));
        if zero > 0 {
            let mins = (zero as f64 * bucket / 60.0).round().max(1.0);
            avail_line.push(Span::styled(
                format!("{text}, !{mins} min at zero"),
                t.bad(),
            ));
        } else {
            avail_line.push(Span::styled(text, t.dim()));
        }
    }
    lines.push(Line::from(avail_line));
    let peak = active.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
    let last = active.iter().rev().flatten().next().copied();
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<label$}", "active"), t.title()),
        Span::styled(spark(&active), t.series(1)),
        Span::styled(
            format!("  now {}, peak {}", num(last), num(Some(peak))),
            t.dim(),
        ),
    ]));
    frame.render_widget(Paragraph::new(lines), area);
}

/// `↑`, `↓` or `→`: the last half hour against the one before.
fn trend_arrow(e: &crate::model::ErrorEntry, now: SystemTime) -> &'static str {
    let half = HOUR / 2;
    let mid = now.checked_sub(half).unwrap_or(SystemTime::UNIX_EPOCH);
    let start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    let recent = e.count_in_window(mid) as f64;
    let before = e.count_in_window(start) as f64 - recent;
    if recent > before * 1.2 {
        "↑"
    } else if recent < before * 0.8 {
        "↓"
    } else {
        "→"
    }
}

fn top_errors(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let t = app.theme;
    let mut hour = app.clone();
    hour.errors.window = ErrWindow::H1;
    hour.errors.filter.clear();
    let rows = hour.error_rows(snap, now);
    let mut lines = vec![rule("errors, last hour", area.width, t)];
    if rows.is_empty() {
        lines.push(Line::styled(" none", t.dim()));
    }
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .take(usize::from(area.height.saturating_sub(1)))
        .map(|r| {
            let e = r.entry;
            let arrow = trend_arrow(e, now);
            let (trend, ts) = if r.new {
                (format!("{arrow} new"), t.bad())
            } else {
                (arrow.to_string(), Style::default())
            };
            vec![
                Cell::plain(r.count.to_string()),
                Cell::new(e.level.as_str(), t.level(e.level)),
                crate::ui::errors::origin_cell(e.origin, t),
                Cell::plain(e.fingerprint.clone()),
                Cell::plain(e.runners.iter().cloned().collect::<Vec<_>>().join(",")),
                Cell::new(trend, ts),
            ]
        })
        .collect();
    let cols = Columns::fit(
        vec![
            Col::right("", 5, 7).keep(),
            Col::left("", 7, 7).keep(),
            Col::left("", 6, 6).keep(),
            Col::left("", 10, 200).keep().flex(),
            Col::left("", 5, 14),
            Col::left("", 5, 5),
        ],
        &cells,
        usize::from(area.width).saturating_sub(1),
    );
    for c in &cells {
        let mut spans = vec![Span::raw(" ")];
        spans.extend(cols.row(c).spans);
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use crate::app::Screen;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use crate::ui::widgets::Theme;
    use insta::assert_snapshot;

    #[test]
    fn fleet_80x24() {
        let app = fixed_app(Theme::COLOR);
        let (term, _) = draw(&app, &fixed_snapshot(), 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn fleet_160x40() {
        let app = fixed_app(Theme::COLOR);
        let (term, _) = draw(&app, &fixed_snapshot(), 160, 40);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn fleet_60x20_collapses_columns() {
        let app = fixed_app(Theme::COLOR);
        let (term, _) = draw(&app, &fixed_snapshot(), 60, 20);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn fleet_sorted_by_jobs() {
        let mut app = fixed_app(Theme::COLOR);
        let snap = fixed_snapshot();
        assert_eq!(app.screen, Screen::Fleet);
        app.handle(crate::event::Event::char('s'), &snap);
        app.handle(crate::event::Event::char('s'), &snap);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }
}
