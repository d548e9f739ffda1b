//! Runner: one runner over the last hour — terminals available, active
//! and idle, WebSocket connections, jobs, error rate, CPU and RSS — under a
//! header with its addresses, version, uptime and `concurrent`.

use std::time::{Duration, SystemTime};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::App;
use crate::model::{Health, RunnerState, Series, Snapshot};
use crate::text::{age_at, bytes, num, truncate, uptime};
use crate::ui::widgets::Theme;

const HOUR: f64 = 3600.0;

pub fn render(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let t = app.theme;
    let Some(r) = app.current_runner(snap) else {
        let why = if app.fleet.filter.is_empty() {
            " no runner to show".to_string()
        } else {
            format!(
                " no runner matches {:?}  (Esc on the Fleet clears the filter)",
                app.fleet.filter
            )
        };
        frame.render_widget(Paragraph::new(Span::styled(why, t.dim())), area);
        return;
    };
    let info = info_lines(r, t, now);
    // Wrapped, not cut: the addresses are read whole.
    let info_h = crate::ui::wrapped_height(&info, area.width);
    let [head, charts] = Layout::vertical([
        Constraint::Length(info_h.min(area.height)),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(info).wrap(Wrap { trim: false }), head);
    let cols = if area.width >= 150 { 3 } else { 2 };
    let rows = if charts.height >= 8 { 2 } else { 1 };
    let all = chart_specs(r);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows); rows as usize]).split(charts);
    let mut specs = all.into_iter();
    for row in row_areas.iter() {
        let cells = Layout::horizontal(vec![Constraint::Ratio(1, cols); cols as usize]).split(*row);
        for cell in cells.iter() {
            if let Some(spec) = specs.next() {
                chart(frame, *cell, t, r, &spec, now);
            }
        }
    }
}

fn info_lines(r: &RunnerState, t: Theme, now: SystemTime) -> Vec<Line<'static>> {
    let l = r.latest.clone().unwrap_or_default();
    let mut first = vec![
        Span::styled(format!(" {}", r.source.name), t.title()),
        Span::raw("  "),
    ];
    match &r.health {
        Health::Up => match crate::ui::fleet::disabled_detail(&l, now) {
            Some(d) => first.push(Span::styled(format!("up, !{d}"), t.bad())),
            None => first.push(Span::styled("up", t.good())),
        },
        Health::Unknown => first.push(Span::styled("not scraped yet", t.dim())),
        Health::Down { reason, retry_at } => {
            let retry = retry_at.duration_since(now).map_or("retrying".into(), |d| {
                format!("retry {}s", d.as_secs_f64().ceil())
            });
            first.push(Span::styled(format!("!DOWN {reason}, {retry}"), t.bad()));
        }
    }
    if let Some(v) = &l.version {
        first.push(Span::raw(format!("  {} {}", v.name, v.version)));
    }
    if let Some(start) = l.start_time_seconds.filter(|s| s.is_finite() && *s > 0.0) {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(start);
        let up = now.duration_since(started).unwrap_or_default();
        first.push(Span::raw(format!("  uptime {}", uptime(up))));
    }
    if let Some(c) = l.concurrent {
        first.push(Span::raw(format!("  concurrent {}", num(Some(c)))));
    }
    let mut second = vec![
        Span::styled(" metrics ", t.dim()),
        Span::raw(r.source.metrics_url.clone()),
    ];
    if let Some(s) = &r.source.session_url {
        second.push(Span::styled("  session ", t.dim()));
        second.push(Span::raw(s.clone()));
    }
    if let Some(ok) = r.last_ok {
        second.push(Span::styled(
            format!("  scraped {} ago", age_at(now, ok)),
            t.dim(),
        ));
    }
    vec![Line::from(first), Line::from(second)]
}

/// One chart: a title, its series with a label and current value each,
/// and a breakdown for the title (`running 200 · pending 12`).
struct Spec {
    title: &'static str,
    series: Vec<(Series, &'static str, Option<f64>)>,
    /// The breakdown's pieces (`running 200`), dropped from the end when
    /// the title does not fit.
    detail: Vec<String>,
    fmt: fn(Option<f64>) -> String,
    /// What to say when the runner is up and exports none of it.
    missing: &'static str,
}

/// Why a chart has no points: the runner is down or not scraped yet (not
/// that it lacks the metric), or it answers without it — session metrics
/// are termgate's, upstream gitlab-runner exports none.
fn missing_text(r: &RunnerState, spec: &Spec) -> String {
    match &r.health {
        Health::Down { reason, .. } => format!("no data: the runner is down ({reason})"),
        Health::Unknown => "no data: not scraped yet".into(),
        Health::Up if spec.missing == NO_SESSION => {
            let upstream = r
                .latest
                .as_ref()
                .and_then(|l| l.version.as_ref())
                .is_some_and(|v| !v.name.starts_with("termgate"));
            if upstream {
                format!("{NO_SESSION} (upstream gitlab-runner exports none)")
            } else {
                format!("{NO_SESSION}: the runner answers without them")
            }
        }
        Health::Up => spec.missing.into(),
    }
}

const NO_SESSION: &str = "no session metrics";

fn breakdown(m: &std::collections::BTreeMap<String, f64>) -> Vec<String> {
    m.iter()
        .map(|(k, v)| format!("{k} {}", num(Some(*v))))
        .collect()
}

/// A chart title cut to `width` columns at a piece boundary: pieces
/// (breakdown, then series) go from the end, an `…` says some were left
/// out; a name alone too long is cut with `…`. Never a word cut by the
/// border (`observ┐`).
fn fit_title(mut spans: Vec<Span<'static>>, width: usize, t: Theme) -> Vec<Span<'static>> {
    // A trailing space may fall on the border.
    let total = |s: &[Span]| {
        let w = s.iter().map(Span::width).sum::<usize>();
        w - usize::from(s.last().is_some_and(|l| l.content.ends_with(' ')))
    };
    if total(&spans) <= width {
        return spans;
    }
    let mut cut = false;
    while spans.len() > 1 && total(&spans) + 2 > width {
        spans.pop();
        cut = true;
    }
    if cut {
        spans.push(Span::styled("… ", t.dim()));
    }
    if total(&spans) <= width {
        return spans;
    }
    // Still too wide: cut the text itself, keeping the styles.
    let mut out = Vec::new();
    let mut left = width;
    for s in spans {
        let w = s.width();
        if w <= left || (w == left + 1 && s.content.ends_with(' ')) {
            left = left.saturating_sub(w);
            out.push(s);
        } else {
            out.push(Span::styled(truncate(&s.content, left), s.style));
            break;
        }
    }
    out
}

fn chart_specs(r: &RunnerState) -> Vec<Spec> {
    let l = r.latest.clone().unwrap_or_default();
    let spec = |title, series, fmt, missing| Spec {
        title,
        series,
        detail: Vec::new(),
        fmt,
        missing,
    };
    let no_session = NO_SESSION;
    let mut out = vec![
        spec(
            "terminals",
            vec![
                (Series::TerminalsAvailable, "avail", l.terminals_available),
                (Series::TerminalsActive, "active", l.terminals_active),
                (Series::TerminalsIdle, "idle", l.terminals_idle),
            ],
            num,
            no_session,
        ),
        spec(
            "websockets",
            vec![(Series::WsConnections, "", l.ws_total())],
            num,
            no_session,
        ),
        spec(
            "jobs",
            vec![(Series::Jobs, "", l.jobs)],
            num,
            "no job metrics yet",
        ),
        spec(
            "errors/min",
            vec![
                (Series::ErrorsPerMinute, "runner", r.errors_per_minute),
                // Users' failed jobs: short, so both figures fit at 80×24.
                (
                    Series::JobFailuresPerMinute,
                    "jobs",
                    r.job_failures_per_minute,
                ),
            ],
            num,
            "no error counter yet",
        ),
        spec(
            "cpu %",
            vec![(Series::CpuPercent, "", r.cpu_percent)],
            num,
            "no process metrics",
        ),
        spec(
            "rss",
            vec![(Series::RssBytes, "", l.rss_bytes)],
            bytes,
            "no process metrics",
        ),
    ];
    out[1].detail = breakdown(&l.ws_connections);
    out[2].detail = breakdown(&l.jobs_by_state);
    out
}

const MONO_MARKERS: [(Marker, &str); 3] = [
    (Marker::Braille, "⣀"),
    (Marker::Dot, "•"),
    (Marker::Bar, "▄"),
];

fn chart(frame: &mut Frame, area: Rect, t: Theme, r: &RunnerState, spec: &Spec, now: SystemTime) {
    let since = now - Duration::from_secs_f64(HOUR);
    let data: Vec<Vec<(f64, f64)>> = spec
        .series
        .iter()
        .map(|(s, _, _)| {
            r.history
                .points_since(*s, since)
                .into_iter()
                .map(|(secs, v)| {
                    let at = r.history.origin + Duration::from_secs_f64(secs);
                    let x = match at.duration_since(now) {
                        Ok(d) => d.as_secs_f64(),
                        Err(e) => -e.duration().as_secs_f64(),
                    };
                    (x, v)
                })
                .filter(|(x, _)| *x >= -HOUR && *x <= 0.0)
                .collect()
        })
        .collect();
    let mut title = vec![Span::styled(format!(" {} ", spec.title), t.title())];
    for (i, (_, name, value)) in spec.series.iter().enumerate() {
        let mark = if t.color || spec.series.len() == 1 {
            ""
        } else {
            MONO_MARKERS[i % 3].1
        };
        let name = if name.is_empty() {
            String::new()
        } else {
            format!("{name} ")
        };
        title.push(Span::styled(
            format!("{mark}{name}{} ", (spec.fmt)(*value)),
            t.series(i),
        ));
    }
    for piece in &spec.detail {
        title.push(Span::styled(format!("· {piece} "), t.dim()));
    }
    let title = fit_title(title, usize::from(area.width.saturating_sub(2)), t);
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(t.dim());
    if data.iter().all(Vec::is_empty) {
        frame.render_widget(
            Paragraph::new(Span::styled(missing_text(r, spec), t.dim()))
                .block(block)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let max = data
        .iter()
        .flatten()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let datasets = spec
        .series
        .iter()
        .zip(&data)
        .enumerate()
        .map(|(i, ((_, name, _), pts))| {
            let marker = if t.color {
                Marker::Braille
            } else {
                MONO_MARKERS[i % 3].0
            };
            Dataset::default()
                .name(name.to_string())
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(t.series(i))
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(block)
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([-HOUR, 0.0])
                .labels(["-60m", "-30m", "now"])
                .style(t.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_string(), (spec.fmt)(Some(max))])
                .style(t.dim()),
        );
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use crate::app::Screen;
    use crate::event::Event;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use crate::ui::widgets::Theme;
    use insta::assert_snapshot;

    #[test]
    fn runner_80x24() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        // prm-5 is the last row but one sorted by name: open it from the Fleet.
        app.handle(Event::char('G'), &snap);
        app.handle(Event::char('k'), &snap);
        app.handle(Event::key(crossterm::event::KeyCode::Enter), &snap);
        assert_eq!(app.screen, Screen::Runner);
        assert_eq!(app.runner.as_deref(), Some("prm-5"));
        let (term, _) = draw(&app, &snap, 80, 24);
        // The addresses wrap rather than being cut at the edge.
        let text = format!("{}", term.backend());
        assert!(text.contains("https://prm-5.example.net:8093"), "{text}");
        assert_snapshot!(term.backend());
    }

    #[test]
    fn runner_upstream_shows_what_it_has() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.screen = Screen::Runner;
        app.runner = Some("prm-4".into());
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    /// At 80×24 every chart title fits its box: a breakdown that does not
    /// fit is shortened at a piece (`…`), never cut by the border
    /// (`observ┐`).
    #[test]
    fn runner_titles_fit_at_80x24() {
        let mut snap = fixed_snapshot();
        let prm5 = snap.runners.iter_mut().find(|r| r.source.name == "prm-5");
        let latest = prm5.and_then(|r| r.latest.as_mut()).unwrap();
        latest.ws_connections.insert("interactive".into(), 3.0);
        latest.ws_connections.insert("observer".into(), 23.0);
        let mut app = fixed_app(Theme::MONO);
        app.screen = Screen::Runner;
        app.runner = Some("prm-5".into());
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        for line in text.lines().filter(|l| l.contains('┌')) {
            for (i, _) in line.match_indices('┐') {
                let before = line[..i].chars().last().unwrap_or(' ');
                assert!(
                    matches!(before, '─' | ' ' | '…'),
                    "a title cut by the border: {line}"
                );
            }
        }
        assert!(text.contains("websockets 146 · interactive 3 … "), "{text}");
        assert_snapshot!(term.backend());
    }

    /// The Runner screen follows the Fleet's filter: with no match it says
    /// so instead of "no runner to show".
    #[test]
    fn runner_with_a_filter_without_a_match() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.fleet.filter = "zzz".into();
        app.screen = Screen::Runner;
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(text.contains(r#" no runner matches "zzz""#), "{text}");
    }

    /// The Runner screen's header says which `[[runners]]` are disabled
    /// and until when (issue 20, item 5).
    #[test]
    fn a_disabled_runner_says_so_in_its_header() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.screen = Screen::Runner;
        app.runner = Some("prm-6".into());
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(
            text.contains(" prm-6  up, !1 of 3 [[runners]] disabled until 14:42 UTC"),
            "{text}"
        );
        app.runner = Some("prm-5".into());
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(text.contains(" prm-5  up  "), "{text}");
        assert!(!text.contains("disabled"), "{text}");
    }

    /// A termgate runner that is down says so in its charts; it is not
    /// called an upstream runner without session metrics.
    #[test]
    fn a_down_runner_is_down_not_upstream() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.screen = Screen::Runner;
        app.runner = Some("prm-3".into());
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        assert!(text.contains("no data: the runner is down"), "{text}");
        assert!(!text.contains("upstream"), "{text}");
        assert_snapshot!(term.backend());
    }

    #[test]
    fn runner_wide_has_six_charts() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        app.screen = Screen::Runner;
        app.runner = Some("prm-5".into());
        let (term, _) = draw(&app, &snap, 160, 40);
        let text = format!("{}", term.backend());
        assert!(text.contains("cpu %"));
        assert!(text.contains("rss 142M"));
    }
}
