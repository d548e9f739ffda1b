//! HTML: terminal usage, jobs, runner restarts, capacity and inputs.

use super::*;
use chrono::{Duration, NaiveTime};

fn peak(p: &Option<Peak>) -> String {
    match p {
        Some(p) => format!("{} at {}", f::int(p.count), esc(&f::time_short(&p.at))),
        None => NONE.to_owned(),
    }
}

pub(super) fn sessions(o: &mut String, r: &Report) {
    let s = &r.sessions;
    o.push_str("<section>\n<h2>Terminal usage</h2>\n");
    if !s.events_seen {
        p(
            o,
            "The logs have no terminal session events, so there is no terminal usage to report from them: termgate runners log <code>terminal_connected</code>, <code>terminal_disconnected</code> and <code>terminal_rejected</code>; upstream gitlab-runner does not log sessions.",
        );
        o.push_str("</section>\n");
        return;
    }
    pair_table(
        o,
        r,
        "Terminal sessions",
        &[
            ("Sessions started", r.totals.sessions),
            ("Connections refused", r.totals.rejections),
        ],
    );
    o.push_str("<ul>\n");
    match &s.peak_active {
        Some(pk) => put!(
            o,
            "<li>Most terminals connected at once, all runners, this period: <strong>{}</strong>, first at {}.</li>\n",
            f::int(pk.count),
            esc(&f::time_long(&pk.at))
        ),
        None => o.push_str(
            "<li>Most terminals connected at once: not known (no session start with a timestamp).</li>\n",
        ),
    }
    if s.ended > 0 {
        put!(
            o,
            "<li>Duration of the {} sessions that ended this period: p50 {}, p95 {}.</li>\n",
            f::int(s.ended),
            esc(&f::duration_s(s.duration_p50_s)),
            esc(&f::duration_s(s.duration_p95_s))
        );
    } else {
        o.push_str("<li>No session ended this period, so there are no durations.</li>\n");
    }
    o.push_str("</ul>\n");
    o.push_str("<div class=\"part\">\n<h3>Sessions started per day (UTC)</h3>\n");
    if r.days.is_empty() {
        p(o, "No days in the period.");
    } else {
        figure(
            o,
            &svg::bar_chart(&BarChart {
                title: "Terminal sessions started per day, all runners",
                x_title: "Day (UTC)",
                y_title: "Sessions per day",
                categories: day_labels(r),
                series: vec![BarSeries {
                    name: "Sessions started",
                    colour: SESSIONS,
                    values: r.days.iter().map(|d| d.total.sessions).collect(),
                }],
            }),
            &format!(
                "Sessions started per UTC day, all runners.{}",
                partial_note(r)
            ),
        );
        per_day_table(o, r, &[("Sessions started", |c| c.sessions)]);
    }
    o.push_str("</div>\n<div class=\"part\">\n<h3>Per runner, this period</h3>\n");
    if s.runners.is_empty() {
        p(o, "No runner logged a session.");
    } else {
        let head = [
            h("Runner", L),
            h("Sessions started", R),
            h("Most at once (UTC)", D),
            h("Duration p50", R),
            h("Duration p95", R),
            h("Connections refused", R),
        ];
        let rows: Vec<Vec<String>> = s
            .runners
            .iter()
            .map(|x| {
                vec![
                    runner(&x.runner),
                    f::int(x.started),
                    peak(&x.peak_active),
                    esc(&f::duration_s(x.duration_p50_s)),
                    esc(&f::duration_s(x.duration_p95_s)),
                    f::int(x.rejections),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    o.push_str("</div>\n<div class=\"part\">\n<h3>Sessions ended, by reason</h3>\n");
    reason_table(
        o,
        r,
        "Reason",
        &s.closes,
        "No session ended in either period.",
    );
    o.push_str("</div>\n<div class=\"part\">\n<h3>Connections refused, by reason</h3>\n");
    reason_table(
        o,
        r,
        "Reason",
        &s.rejections,
        "No connection was refused in either period.",
    );
    o.push_str("</div>\n<div class=\"part\">\n<h3>Operator attaches (audit events)</h3>\n");
    if s.operator_attaches.is_empty() && s.operators.is_empty() {
        p(o, "No operator attached to a session in either period.");
    } else {
        reason_table(o, r, "Mode", &s.operator_attaches, "No attach with a mode.");
        reason_table(
            o,
            r,
            "Operator",
            &s.operators,
            "No attach with an operator name.",
        );
    }
    o.push_str("</div>\n</section>\n");
}

pub(super) fn jobs(o: &mut String, r: &Report) {
    let j = &r.jobs;
    o.push_str("<section>\n<h2>Jobs</h2>\n");
    if j.by_result.is_empty() {
        p(o, "No job finished in the logs, in either period.");
        o.push_str("</section>\n");
        return;
    }
    let head = [
        h("Jobs finished", L),
        h(THIS_PERIOD, R),
        (f::previous_header(r), R),
        h("Change", R),
    ];
    let mut rows: Vec<Vec<String>> = j
        .by_result
        .iter()
        .map(|x| {
            let pair = Pair {
                current: x.current,
                previous: x.previous,
            };
            vec![
                f::job_result(&x.reason).map_or_else(|| code(&x.reason), str::to_owned),
                f::int(x.current),
                f::int(x.previous),
                esc(&f::change(pair)),
            ]
        })
        .collect();
    rows.push(vec![
        "<strong>All finished</strong>".to_owned(),
        format!("<strong>{}</strong>", f::int(r.totals.jobs.current)),
        format!("<strong>{}</strong>", f::int(r.totals.jobs.previous)),
        esc(&f::change(r.totals.jobs)),
    ]);
    table(o, &head, &rows);
    o.push_str("<div class=\"part\">\n<h3>Per day (UTC)</h3>\n");
    if r.days.is_empty() {
        p(o, "No days in the period.");
    } else {
        figure(
            o,
            &svg::bar_chart(&BarChart {
                title: "Jobs finished per day, all runners",
                x_title: "Day (UTC)",
                y_title: "Jobs per day",
                categories: day_labels(r),
                series: vec![
                    BarSeries {
                        name: "Finished",
                        colour: JOBS,
                        values: r.days.iter().map(|d| d.total.jobs).collect(),
                    },
                    BarSeries {
                        name: "Of which failed (incl. system failures)",
                        colour: FAILED,
                        values: r.days.iter().map(|d| d.total.job_failures).collect(),
                    },
                ],
            }),
            &format!("Jobs finished per UTC day, all runners.{}", partial_note(r)),
        );
        let head = [
            h("Day (UTC)", D),
            h("Jobs finished", R),
            h("Of which failed (incl. system failures)", R),
        ];
        let rows: Vec<Vec<String>> = r
            .days
            .iter()
            .map(|d| {
                vec![
                    esc(&f::day_label(r, &d.date)),
                    f::int(d.total.jobs),
                    f::int(d.total.job_failures),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    o.push_str("</div>\n<div class=\"part\">\n<h3>Failure reasons</h3>\n");
    reason_table(
        o,
        r,
        "Failure reason",
        &j.failure_reasons,
        "No job failed in either period.",
    );
    o.push_str("</div>\n<div class=\"part\">\n<h3>Per runner, this period</h3>\n");
    if j.runners.is_empty() {
        p(o, "No runner finished a job this period.");
    } else {
        let head = [
            h("Runner", L),
            h("Succeeded", R),
            h("Failed", R),
            h("System failures", R),
        ];
        let rows: Vec<Vec<String>> = j
            .runners
            .iter()
            .map(|x| {
                vec![
                    runner(&x.runner),
                    f::int(x.succeeded),
                    f::int(x.failed),
                    f::int(x.system_failures),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    o.push_str("</div>\n</section>\n");
}

pub(super) fn lifecycle(o: &mut String, r: &Report) {
    o.push_str("<section class=\"block\">\n<h2>Runner restarts and unclean shutdowns</h2>\n");
    pair_table(
        o,
        r,
        "Runner processes",
        &[
            ("Starts", r.totals.starts),
            ("Starts after an unclean stop", r.totals.unclean_shutdowns),
        ],
    );
    let runners: Vec<&RunnerLifecycle> = r
        .lifecycle
        .runners
        .iter()
        .filter(|x| x.starts + x.unclean_shutdowns + x.fatal > 0 || !x.events.is_empty())
        .collect();
    if runners.is_empty() {
        p(
            o,
            "No runner started, stopped uncleanly or logged a fatal error this period.",
        );
        o.push_str("</section>\n");
        return;
    }
    let head = [
        h("Runner", L),
        h("Starts", R),
        h("After an unclean stop", R),
        h("Fatal or panic records", R),
        h("Starts (UTC)", L),
    ];
    let rows: Vec<Vec<String>> = runners
        .iter()
        .map(|x| {
            let events: Vec<String> = x
                .events
                .iter()
                .map(|e| match f::start_kind(&e.kind) {
                    Some(k) => esc(&format!("{}{k}", f::time_short(&e.at))),
                    None => format!("{} {}", esc(&f::time_short(&e.at)), code(&e.kind)),
                })
                .collect();
            vec![
                runner(&x.runner),
                f::int(x.starts),
                f::int(x.unclean_shutdowns),
                f::int(x.fatal),
                if events.is_empty() {
                    NONE.to_owned()
                } else {
                    events.join(", ")
                },
            ]
        })
        .collect();
    table(o, &head, &rows);
    note(
        o,
        "An unclean stop: the run before the start did not end with <code>All workers stopped.</code> or <code>Can exit now!</code> in these logs. Runners not listed had no start, unclean stop or fatal record this period.",
    );
    o.push_str("</section>\n");
}

fn instance_name(x: &RunnerCapacity) -> String {
    match &x.runner {
        Some(n) => format!("{} ({})", runner(n), runner(&x.instance)),
        None => runner(&x.instance),
    }
}

pub(super) fn capacity(o: &mut String, r: &Report) {
    o.push_str("<section>\n<h2>Capacity</h2>\n");
    let c = match (&r.capacity, &r.capacity_error) {
        (Some(c), _) => c,
        (None, Some(e)) => {
            p(
                o,
                &format!(
                    "The capacity history could not be read from Prometheus: {}",
                    code(e)
                ),
            );
            o.push_str("</section>\n");
            return;
        }
        (None, None) => {
            p(
                o,
                "Capacity needs metric history: run <code>termgate report</code> with <code>--prometheus URL</code> (or set a <code>[prometheus]</code> url in console.toml) to show the lowest available terminals, time with none available, and peak active terminals vs <code>concurrent</code>.",
            );
            o.push_str("</section>\n");
            return;
        }
    };
    p(
        o,
        &format!(
            "From Prometheus {} (<code>query_range</code>, one sample every {}), this period.",
            code(&c.source),
            esc(&f::secs(c.step_s))
        ),
    );
    if c.runners.is_empty() {
        p(o, "Prometheus had no runner targets for this period.");
        o.push_str("</section>\n");
        return;
    }
    let head = [
        h("Runner (instance)", L),
        h("Lowest available (UTC)", L),
        h("Time with none available", R),
        h("Stretches at zero", R),
        h("Peak active (UTC)", L),
        h("Concurrent (configured)", R),
        h("Peak WebSocket connections", R),
        h("Peak jobs", R),
    ];
    let rows: Vec<Vec<String>> = c
        .runners
        .iter()
        .map(|x| {
            let at = |v: Option<f64>, t: &Option<String>| match (v, t) {
                (Some(v), Some(t)) => {
                    esc(&format!("{} at {}", f::gauge(Some(v)), f::time_short(t)))
                }
                (v, _) => esc(&f::gauge(v)),
            };
            let has_terminals = x.lowest_available.is_some();
            vec![
                instance_name(x),
                at(x.lowest_available, &x.lowest_available_at),
                if has_terminals {
                    esc(&f::secs(x.seconds_at_zero))
                } else {
                    NONE.to_owned()
                },
                if has_terminals {
                    f::int(x.zero_stretches)
                } else {
                    NONE.to_owned()
                },
                at(x.peak_active, &x.peak_active_at),
                esc(&f::gauge(x.concurrent)),
                esc(&f::gauge(x.peak_websocket_connections)),
                esc(&f::gauge(x.peak_jobs)),
            ]
        })
        .collect();
    table(o, &head, &rows);
    if c.runners.iter().any(|x| x.lowest_available.is_none()) {
        note(
            o,
            &format!(
                "{NONE}: the target exported no such series (upstream gitlab-runner has no terminal metrics)."
            ),
        );
    }
    for x in &c.runners {
        capacity_chart(o, r, x);
    }
    o.push_str("</section>\n");
}

/// Ticks at each UTC midnight in the period, as hours since its start.
pub(super) fn midnight_ticks(r: &Report) -> Vec<(f64, String)> {
    let (Some(from), Some(to)) = (f::parse(&r.period.from), f::parse(&r.period.to)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut day = from.date_naive();
    if from.time() != NaiveTime::MIN {
        day += Duration::days(1);
    }
    while let Some(t) = day.and_hms_opt(0, 0, 0).map(|d| d.and_utc()) {
        if t > to || out.len() > 400 {
            break;
        }
        out.push((
            (t - from).num_seconds() as f64 / 3600.0,
            f::day_short(r, &day.to_string()),
        ));
        day += Duration::days(1);
    }
    out
}

fn capacity_chart(o: &mut String, r: &Report, x: &RunnerCapacity) {
    put!(
        o,
        "<div class=\"part\">\n<h4>Terminals over time: {}</h4>\n",
        instance_name(x)
    );
    let has_data = x
        .series
        .iter()
        .any(|p| p.available.is_some() || p.active.is_some());
    let x_max = f::hours_since_start(r, &r.period.to);
    match (has_data, x_max) {
        (false, _) => p(o, "No samples of terminal metrics for this target."),
        (true, None) => p(o, "No chart: the period's times could not be read."),
        (true, Some(x_max)) => {
            let points = |v: fn(&CapacityPoint) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
                x.series
                    .iter()
                    .filter_map(|p| f::hours_since_start(r, &p.at).map(|h| (h, v(p))))
                    .collect()
            };
            let mut series = vec![
                LineSeries {
                    name: "Available",
                    colour: AVAILABLE,
                    dashed: false,
                    points: points(|p| p.available),
                },
                LineSeries {
                    name: "Active",
                    colour: ACTIVE,
                    dashed: false,
                    points: points(|p| p.active),
                },
            ];
            if let Some(c) = x.concurrent {
                series.push(LineSeries {
                    name: "Concurrent (configured)",
                    colour: CONCURRENT,
                    dashed: true,
                    points: vec![(0.0, Some(c)), (x_max, Some(c))],
                });
            }
            let missing = x
                .series
                .iter()
                .filter(|p| p.available.is_none() || p.active.is_none())
                .count();
            let gaps = if missing > 0 {
                format!(
                    " {missing} of the {} samples have no data: the lines break there.",
                    x.series.len()
                )
            } else {
                String::new()
            };
            figure(
                o,
                &svg::line_chart(&LineChart {
                    title: "Terminals available and active",
                    x_title: "Day (UTC; ticks at midnight)",
                    y_title: "Terminals",
                    x_min: 0.0,
                    x_max,
                    x_ticks: midnight_ticks(r),
                    series,
                }),
                &format!(
                    "{} samples, {} apart; the table's figures use every sample at the {} step.{gaps}",
                    x.series.len(),
                    f::secs(sample_spacing(x)),
                    f::secs(c_step(r))
                ),
            );
        }
    }
    o.push_str("</div>\n");
}

/// The `query_range` step.
fn c_step(r: &Report) -> u64 {
    r.capacity.as_ref().map_or(0, |c| c.step_s)
}

/// Seconds between the first two samples (the series is evenly spaced).
fn sample_spacing(x: &RunnerCapacity) -> u64 {
    match (x.series.first(), x.series.get(1)) {
        (Some(a), Some(b)) => match (f::parse(&a.at), f::parse(&b.at)) {
            (Some(a), Some(b)) => u64::try_from((b - a).num_seconds()).unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    }
}

pub(super) fn inputs(o: &mut String, r: &Report) {
    let i = &r.inputs;
    o.push_str("<section class=\"block\">\n<h2>Inputs</h2>\n<ul>\n");
    put!(
        o,
        "<li>Read {} ({} gzip-compressed): {} of log text, {} lines.</li>\n",
        f::count_of(i.files, "file", "files"),
        f::int(i.gzip_files),
        esc(&f::bytes(i.bytes)),
        f::int(i.lines)
    );
    put!(
        o,
        "<li>{} lines of no known log format (counted, otherwise ignored).</li>\n",
        f::int(i.unparsed_lines)
    );
    put!(
        o,
        "<li>{} records without a timestamp (and none before them in their file): counted in this period's totals and fingerprints, in no day.</li>\n",
        f::int(i.untimed_records)
    );
    put!(
        o,
        "<li>{} records outside both periods, left out.</li>\n",
        f::int(i.outside_records)
    );
    if i.read_errors.is_empty() {
        o.push_str("<li>Every file was read to the end.</li>\n");
    } else {
        put!(
            o,
            "<li>{} could not be read to the end:<ul>\n",
            match i.read_errors.len() {
                1 => "1 file".to_owned(),
                n => format!("{} files", f::int(n as u64)),
            }
        );
        for e in &i.read_errors {
            put!(o, "<li>{}</li>\n", code(e));
        }
        o.push_str("</ul></li>\n");
    }
    o.push_str("</ul>\n");
    if !i.sources.is_empty() {
        let head = [
            h("Runner", L),
            h("Files", R),
            h("Bytes", R),
            h("Lines", R),
            h("Unparsed lines", R),
        ];
        let rows: Vec<Vec<String>> = i
            .sources
            .iter()
            .map(|s| {
                vec![
                    runner(&s.runner),
                    f::int(s.files),
                    f::int(s.bytes),
                    f::int(s.lines),
                    f::int(s.unparsed_lines),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    o.push_str("</section>\n");
}
