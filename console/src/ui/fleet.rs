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
        terminals(frame, spark_area, app, snap, &rows, now);
    }
    if errs > 0 {
        top_errors(frame, err_area, app, snap, now);
    }
    hit
}

fn columns(app: &App) -> Vec<Col> {
    let mut cols = vec![
        Col::left("RUNNER", 6, 24).keep(),
        Col::left("STATE", 5, 9).keep(),
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
            let state = match (health, l.disabled_of()) {
                (Health::Up, (0, _)) => Cell::new("up", t.good()),
                (Health::Up, (n, of)) if n == of => Cell::new("!DISABLED", t.bad()),
                (Health::Up, (n, of)) => Cell::new(format!("!DIS {n}/{of}"), t.bad()),
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
        " no runners: add some to console.toml or pass --runner NAME=URL".to_string()
    } else {
        format!(" no runner matches {:?}", app.fleet.filter)
    };
    // Runners with `[[runners]]` disabled: one line each at the foot of
    // the table, when there is room below the rows.
    let notes: Vec<Line> = rows
        .iter()
        .filter(|r| r.health == Health::Up)
        .filter_map(|r| {
            let d = disabled_detail(r.latest.as_ref()?, now)?;
            let text = format!(" !{}: {d}", r.source.name);
            let text = crate::text::truncate(&text, usize::from(body.width));
            Some(Line::styled(text, t.bad()))
        })
        .collect();
    let body = if !notes.is_empty() && body.height as usize > rows.len() + notes.len() {
        let [rows_area, notes_area] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(notes.len() as u16)])
                .areas(body);
        frame.render_widget(Paragraph::new(notes), notes_area);
        rows_area
    } else {
        body
    };
    let lines = all.iter().map(|c| cols.row(c)).collect();
    let sel = (app.fleet.offset, app.fleet.selected);
    Some(selectable_rows(frame, body, lines, &empty, sel, t))
}

/// `1 of 3 [[runners]] disabled until 15:42 UTC (in 40 min): r2`, when a
/// runner process has `[[runners]]` entries disabled after
/// `unhealthy_requests_limit` failed job requests (issue 20, item 5):
/// how many, when the first resumes, and which (last, so a narrow screen
/// cuts the names first).
pub fn disabled_detail(s: &crate::model::Sample, now: SystemTime) -> Option<String> {
    let (n, of) = s.disabled_of();
    if n == 0 {
        return None;
    }
    let what = if of == 1 {
        "disabled".to_string()
    } else {
        format!("{n} of {of} [[runners]] disabled")
    };
    let when = match s.resumes_at() {
        None => "resume time unknown".to_string(),
        Some(at) => {
            let clock = format!("{} UTC", crate::text::hhmm(at));
            let first = if n > 1 { "the first " } else { "" };
            match at.duration_since(now) {
                Ok(d) if !d.is_zero() => format!("until {first}{clock} (in {})", stretch(d)),
                _ => format!("{first}due back {clock}"),
            }
        }
    };
    let names: Vec<&str> = s.disabled().map(|(name, _)| name).collect();
    Some(format!("{what} {when}: {}", names.join(", ")))
}

/// `─ title ─────…`
pub fn rule(title: &str, width: u16, t: Theme) -> Line<'static> {
    // Cut with `…` rather than by the screen's edge.
    let title = crate::text::truncate(title, usize::from(width).saturating_sub(3));
    let head = format!("─ {title} ");
    let fill = usize::from(width).saturating_sub(head.width());
    Line::from(vec![
        Span::styled("─ ", t.dim()),
        Span::styled(format!("{title} "), t.title()),
        Span::styled("─".repeat(fill), t.dim()),
    ])
}

/// A series summed over `rows` since `since`, as the sums the runners'
/// own samples give: at each sample time, each runner's latest value so
/// far added up. With no filter the publisher's fleet sums are used when
/// it keeps them (one series, whatever the fleet size).
fn summed_points(
    snap: &Snapshot,
    rows: &[&RunnerState],
    filtered: bool,
    s: Series,
    since: SystemTime,
) -> Vec<(SystemTime, f64)> {
    if !filtered && snap.fleet.series.get(&s).is_some_and(|q| !q.is_empty()) {
        let h = &snap.fleet;
        return h
            .points_since(s, since)
            .into_iter()
            .map(|(secs, v)| (h.origin + Duration::from_secs_f64(secs), v))
            .collect();
    }
    let mut pts: Vec<(SystemTime, usize, f64)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let h = &r.history;
            h.points_since(s, since)
                .into_iter()
                .map(move |(secs, v)| (h.origin + Duration::from_secs_f64(secs), i, v))
        })
        .collect();
    pts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut last: Vec<Option<f64>> = vec![None; rows.len()];
    let mut out: Vec<(SystemTime, f64)> = Vec::new();
    for (t, i, v) in pts {
        if let Some(l) = last.get_mut(i) {
            *l = Some(v);
        }
        let sum = last.iter().flatten().sum();
        match out.last_mut() {
            Some(p) if p.0 == t => p.1 = sum,
            _ => out.push((t, sum)),
        }
    }
    out
}

/// Points in `n` buckets over `[start, end)` for a sparkline, each
/// bucket the average of its points; a gauge holds its value between
/// points, so gaps narrower than the scrape interval are filled.
fn spark_values(
    pts: &[(SystemTime, f64)],
    start: SystemTime,
    end: SystemTime,
    n: usize,
) -> Vec<Option<f64>> {
    let mut b = crate::model::buckets(pts.iter().copied(), start, end, n);
    let last = b.iter().rposition(Option::is_some).unwrap_or(0);
    let mut prev = None;
    for v in b.iter_mut().take(last) {
        match v {
            Some(x) => prev = Some(*x),
            None => *v = prev,
        }
    }
    b
}

/// How long the series sat at zero, measured between the samples seen: a
/// sample at zero counts until the next sample (the last one counts
/// nothing, as nothing after it was seen). `None` when no sample was zero.
fn time_at_zero(pts: &[(SystemTime, f64)]) -> Option<Duration> {
    if !pts.iter().any(|(_, v)| *v == 0.0) {
        return None;
    }
    Some(
        pts.windows(2)
            .filter(|w| w[0].1 == 0.0)
            .map(|w| w[1].0.duration_since(w[0].0).unwrap_or_default())
            .sum(),
    )
}

/// `40s`, `14 min`.
fn stretch(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s}s")
    } else {
        format!("{} min", s / 60)
    }
}

/// Why there is no terminal figure for `rows`: down, not scraped yet,
/// upstream gitlab-runner (which exports none), or answering without them.
fn no_terminal_figures(rows: &[&RunnerState], filter: &str) -> String {
    if rows.is_empty() {
        return if filter.is_empty() {
            " no runners".into()
        } else {
            format!(" no runner matches {filter:?}")
        };
    }
    let (mut upstream, mut silent, mut down, mut waiting) = (0, 0, 0, 0);
    for r in rows {
        match r.health {
            Health::Down { .. } => down += 1,
            Health::Unknown => waiting += 1,
            Health::Up => {
                let v = r.latest.as_ref().and_then(|l| l.version.as_ref());
                if v.is_some_and(|v| !v.name.starts_with("termgate")) {
                    upstream += 1;
                } else {
                    silent += 1;
                }
            }
        }
    }
    let runners = |n: usize| if n == 1 { "runner" } else { "runners" };
    let mut why = Vec::new();
    if down > 0 {
        why.push(format!("{down} {} down", runners(down)));
    }
    if waiting > 0 {
        why.push(format!("{waiting} not scraped yet"));
    }
    if upstream > 0 {
        why.push(format!(
            "{upstream} upstream gitlab-{} (exports none)",
            runners(upstream)
        ));
    }
    if silent > 0 {
        why.push(format!(
            "{silent} {} up without terminal metrics",
            runners(silent)
        ));
    }
    format!(" no terminal metrics: {}", why.join(", "))
}

fn terminals(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    snap: &Snapshot,
    rows: &[&RunnerState],
    now: SystemTime,
) {
    let t = app.theme;
    let filter = &app.fleet.filter;
    let filtered = !filter.is_empty();
    let label = 8;
    let width = usize::from(area.width).saturating_sub(label + 1);
    let title = if filtered {
        format!("terminals, last hour, runners matching {filter:?}")
    } else {
        "terminals, last hour".to_string()
    };
    let mut lines = vec![rule(&title, area.width, t)];
    // Leave room for the summary after the sparkline.
    // `  min 12 at 13:41, !14 min at zero` fits in 36 columns.
    let spark_w = if width > 56 { width - 36 } else { width / 2 };
    let start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    let avail_pts = summed_points(snap, rows, filtered, Series::TerminalsAvailable, start);
    let active_pts = summed_points(snap, rows, filtered, Series::TerminalsActive, start);
    if avail_pts.is_empty() && active_pts.is_empty() {
        lines.push(Line::styled(no_terminal_figures(rows, filter), t.dim()));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let avail = spark_values(&avail_pts, start, now, spark_w);
    let active = spark_values(&active_pts, start, now, spark_w);
    // Minimum of the samples, at the sample's own time, and how long
    // they sat at zero.
    let min = avail_pts.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
    let mut avail_line = vec![
        Span::styled(format!(" {:<label$}", "avail"), t.title()),
        Span::styled(spark(&avail), t.series(0)),
    ];
    if let Some((at, v)) = min {
        let text = format!("  min {} at {}", num(Some(v)), crate::text::hhmm(at));
        match time_at_zero(&avail_pts) {
            Some(d) if d.is_zero() => {
                avail_line.push(Span::styled(format!("{text}, !at zero now"), t.bad()));
            }
            Some(d) => avail_line.push(Span::styled(
                format!("{text}, !{} at zero", stretch(d)),
                t.bad(),
            )),
            None => avail_line.push(Span::styled(text, t.dim())),
        }
    }
    lines.push(Line::from(avail_line));
    let peak = active_pts.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    // Now: the runners' latest samples, as their rows show them.
    let last = rows
        .iter()
        .filter(|r| r.health == Health::Up)
        .filter_map(|r| r.latest.as_ref().and_then(|l| l.terminals_active))
        .fold(None, |a: Option<f64>, v| Some(a.unwrap_or(0.0) + v));
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
    // Entries count every runner's lines (no per-runner count is kept):
    // under a filter the title says so rather than pass them off as the
    // filtered runners'.
    let title = if app.fleet.filter.is_empty() {
        "errors, last hour".to_owned()
    } else {
        "errors, last hour, all runners (the filter is for the rows)".to_owned()
    };
    let mut lines = vec![rule(&title, area.width, t)];
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

    /// The text of one line of a drawn screen that contains `what`.
    fn line_with(term: &ratatui::Terminal<ratatui::backend::TestBackend>, what: &str) -> String {
        let text = format!("{}", term.backend());
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {text}"))
            .to_string()
    }

    /// The sparklines' "now" is what the rows say (141 + 8), not a bucket
    /// average; the minimum is a sample's value at that sample's time.
    #[test]
    fn terminal_figures_agree_with_the_rows() {
        let app = fixed_app(Theme::MONO);
        let (term, _) = draw(&app, &fixed_snapshot(), 80, 24);
        let active = line_with(&term, " active  ");
        assert!(active.contains("now 149,"), "{active}");
        let avail = line_with(&term, " avail  ");
        // prm-5 and prm-6 both at zero in the samples 25 to 21 minutes ago
        // (13:37:30 .. 13:41:30), the next one (13:42:30) not: five minutes.
        assert!(avail.contains("min 0 at 13:37, !5 min at zero"), "{avail}");
    }

    /// A runner seen for three seconds, out of terminals: the minimum is
    /// at a sample's time (never before the first) and the time at zero is
    /// what the samples cover, not a minute.
    #[test]
    fn a_new_runner_at_zero_is_not_a_minute_at_zero() {
        use crate::model::{Health, RunnerState, Sample, Series};
        use crate::ui::fixture::ago;
        let mut snap = fixed_snapshot();
        let mut r = RunnerState::new(snap.runners[0].source.clone(), ago(3.0));
        r.health = Health::Up;
        r.last_ok = Some(ago(0.0));
        r.latest = Some(Sample {
            terminals_available: Some(0.0),
            terminals_active: Some(2.0),
            ..Sample::default()
        });
        for s in [3.0, 2.0, 1.0, 0.0] {
            r.history.push(Series::TerminalsAvailable, ago(s), 0.0);
            r.history.push(
                Series::TerminalsActive,
                ago(s),
                if s > 1.5 { 1.0 } else { 2.0 },
            );
        }
        snap.runners = vec![r];
        let app = fixed_app(Theme::MONO);
        let (term, _) = draw(&app, &snap, 80, 24);
        let avail = line_with(&term, " avail  ");
        let first = crate::text::hhmm(ago(3.0));
        assert!(
            avail.contains(&format!("min 0 at {first}, !3s at zero")),
            "{avail}"
        );
        assert!(!avail.contains("min at zero"), "{avail}");
        let active = line_with(&term, " active  ");
        assert!(active.contains("now 2, peak 2"), "{active}");
    }

    /// A filter that matches nothing says so, in the table and the charts.
    #[test]
    fn fleet_filter_without_a_match() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.fleet.filter = "zzz".into();
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(text.contains(r#" no runner matches "zzz""#), "{text}");
        assert_snapshot!(term.backend());
    }

    /// The charts sum the runners the filter shows, not the whole fleet.
    #[test]
    fn fleet_charts_follow_the_filter() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.fleet.filter = "prm-6".into();
        let (term, _) = draw(&app, &snap, 80, 24);
        let active = line_with(&term, " active  ");
        assert!(active.contains("now 8, peak 8"), "{active}");
        let rule = line_with(&term, "terminals, last hour");
        assert!(rule.contains(r#"matching "prm-6""#), "{rule}");
        assert_snapshot!(term.backend());
    }

    /// A termgate runner that is down is down, not an upstream runner
    /// without terminal metrics.
    #[test]
    fn a_down_runner_is_not_called_upstream() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.fleet.filter = "prm-3".into();
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(
            text.contains("no terminal metrics: 1 runner down"),
            "{text}"
        );
        assert!(!text.contains("upstream"), "{text}");
        app.fleet.filter = "prm-4".into();
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(
            text.contains("no terminal metrics: 1 upstream gitlab-runner (exports none)"),
            "{text}"
        );
    }

    /// A runner process with `[[runners]]` disabled after failed job
    /// requests (issue 20, item 5) says so in its row, how many and until
    /// when under the rows; all of them disabled is `!DISABLED`; a resume
    /// time already past is not passed off as a future one.
    #[test]
    fn a_disabled_runner_says_until_when() {
        use crate::model::Unhealthy;
        use crate::ui::fixture::ago;
        let mut snap = fixed_snapshot();
        let app = fixed_app(Theme::MONO);
        let (term, _) = draw(&app, &snap, 80, 24);
        let row = line_with(&term, " prm-6 ");
        assert!(row.contains(" !DIS 1/3 "), "{row}");
        let note = line_with(&term, " !prm-6: ");
        assert!(
            note.contains("1 of 3 [[runners]] disabled until 14:42 UTC (in 40 min): prm-6-b"),
            "{note}"
        );
        // The others are up and have no note.
        assert!(line_with(&term, " prm-5 ").contains(" up "));
        assert!(!format!("{}", term.backend()).contains("!prm-5"));

        let prm6 = snap.runners.iter_mut().find(|r| r.source.name == "prm-6");
        let l = prm6.and_then(|r| r.latest.as_mut()).unwrap();
        l.unhealthy = std::collections::BTreeMap::from([(
            "only".into(),
            Unhealthy {
                disabled: true,
                until: Some(ago(30.0)),
            },
        )]);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert!(line_with(&term, " prm-6 ").contains(" !DISABLED "));
        let note = line_with(&term, " !prm-6: ");
        assert!(note.contains("disabled due back 14:02 UTC: only"), "{note}");
        assert!(!note.contains("until"), "{note}");
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
