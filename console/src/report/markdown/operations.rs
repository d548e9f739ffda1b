//! Markdown: terminal usage, jobs, runner restarts, capacity and inputs.

use super::*;

fn peak(p: &Option<Peak>) -> String {
    match p {
        Some(p) => format!("{} at {}", f::int(p.count), f::time_short(&p.at)),
        None => NONE.to_owned(),
    }
}

pub(super) fn sessions(o: &mut String, r: &Report) {
    let s = &r.sessions;
    out!(o, "## Terminal usage");
    out!(o);
    if !s.events_seen {
        out!(
            o,
            "The logs have no terminal session events, so there is no terminal usage to report from them: termgate runners log `terminal_connected`, `terminal_disconnected` and `terminal_rejected`; upstream gitlab-runner does not log sessions."
        );
        out!(o);
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
    match &s.peak_active {
        Some(p) => out!(
            o,
            "- Most terminals connected at once, all runners, this period: **{}**, first at {}.",
            f::int(p.count),
            f::time_long(&p.at)
        ),
        None => out!(
            o,
            "- Most terminals connected at once: not known (no session start with a timestamp)."
        ),
    }
    if s.ended > 0 {
        out!(
            o,
            "- Duration of the {} sessions that ended this period: p50 {}, p95 {}.",
            f::int(s.ended),
            f::duration_s(s.duration_p50_s),
            f::duration_s(s.duration_p95_s)
        );
    } else {
        out!(
            o,
            "- No session ended this period, so there are no durations."
        );
    }
    out!(o);
    out!(o, "### Sessions started per day (UTC)");
    out!(o);
    if r.days.is_empty() {
        out!(o, "No days in the period.");
        out!(o);
    } else {
        per_day_table(o, r, &[("Sessions started", |c| c.sessions)]);
    }
    out!(o, "### Per runner, this period");
    out!(o);
    if s.runners.is_empty() {
        out!(o, "No runner logged a session.");
        out!(o);
    } else {
        let head = [
            h("Runner", L),
            h("Sessions started", R),
            h("Most at once (UTC)", L),
            h("Duration p50", R),
            h("Duration p95", R),
            h("Connections refused", R),
        ];
        let rows: Vec<Vec<String>> = s
            .runners
            .iter()
            .map(|x| {
                vec![
                    cell(&x.runner),
                    f::int(x.started),
                    peak(&x.peak_active),
                    f::duration_s(x.duration_p50_s),
                    f::duration_s(x.duration_p95_s),
                    f::int(x.rejections),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    out!(o, "### Sessions ended, by reason");
    out!(o);
    reason_table(
        o,
        r,
        "Reason",
        &s.closes,
        "No session ended in either period.",
    );
    out!(o, "### Connections refused, by reason");
    out!(o);
    reason_table(
        o,
        r,
        "Reason",
        &s.rejections,
        "No connection was refused in either period.",
    );
    out!(o, "### Operator attaches (audit events)");
    out!(o);
    if s.operator_attaches.is_empty() && s.operators.is_empty() {
        out!(o, "No operator attached to a session in either period.");
        out!(o);
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
}

pub(super) fn jobs(o: &mut String, r: &Report) {
    let j = &r.jobs;
    out!(o, "## Jobs");
    out!(o);
    if j.by_result.is_empty() {
        out!(o, "No job finished in the logs, in either period.");
        out!(o);
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
            let p = Pair {
                current: x.current,
                previous: x.previous,
            };
            vec![
                f::job_result(&x.reason).map_or_else(|| cell(&x.reason), str::to_owned),
                f::int(x.current),
                f::int(x.previous),
                f::change(p),
            ]
        })
        .collect();
    rows.push(vec![
        "**All finished**".to_owned(),
        format!("**{}**", f::int(r.totals.jobs.current)),
        format!("**{}**", f::int(r.totals.jobs.previous)),
        f::change(r.totals.jobs),
    ]);
    table(o, &head, &rows);
    out!(o, "### Per day (UTC)");
    out!(o);
    if r.days.is_empty() {
        out!(o, "No days in the period.");
        out!(o);
    } else {
        let head = [
            h("Day (UTC)", L),
            h("Jobs finished", R),
            h("Of which failed (incl. system failures)", R),
        ];
        let rows: Vec<Vec<String>> = r
            .days
            .iter()
            .map(|d| {
                vec![
                    f::day_label(r, &d.date),
                    f::int(d.total.jobs),
                    f::int(d.total.job_failures),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    out!(o, "### Failure reasons");
    out!(o);
    reason_table(
        o,
        r,
        "Failure reason",
        &j.failure_reasons,
        "No job failed in either period.",
    );
    out!(o, "### Per runner, this period");
    out!(o);
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
                cell(&x.runner),
                f::int(x.succeeded),
                f::int(x.failed),
                f::int(x.system_failures),
            ]
        })
        .collect();
    if rows.is_empty() {
        out!(o, "No runner finished a job this period.");
        out!(o);
    } else {
        table(o, &head, &rows);
    }
}

pub(super) fn lifecycle(o: &mut String, r: &Report) {
    out!(o, "## Runner restarts and unclean shutdowns");
    out!(o);
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
        out!(
            o,
            "No runner started, stopped uncleanly or logged a fatal error this period."
        );
        out!(o);
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
                    Some(k) => format!("{}{k}", f::time_short(&e.at)),
                    None => format!("{} {}", f::time_short(&e.at), cell(&e.kind)),
                })
                .collect();
            vec![
                cell(&x.runner),
                f::int(x.starts),
                f::int(x.unclean_shutdowns),
                f::int(x.fatal),
                if events.is_empty() {
                    NONE.to_owned()
                } else {
                    text(&events.join(", "))
                },
            ]
        })
        .collect();
    table(o, &head, &rows);
    out!(
        o,
        "An unclean stop: the run before the start did not end with `All workers stopped.` or `Can exit now!` in these logs. Runners not listed had no start, unclean stop or fatal record this period."
    );
    out!(o);
}

pub(super) fn capacity(o: &mut String, r: &Report) {
    out!(o, "## Capacity");
    out!(o);
    let c = match (&r.capacity, &r.capacity_error) {
        (Some(c), _) => c,
        (None, Some(e)) => {
            out!(
                o,
                "The capacity history could not be read from Prometheus: {}",
                code(e)
            );
            out!(o);
            return;
        }
        (None, None) => {
            out!(
                o,
                "Capacity needs metric history: run `termgate report` with `--prometheus URL` (or set a `[prometheus]` url in console.toml) to show the lowest available terminals, time with none available, and peak active terminals vs `concurrent`."
            );
            out!(o);
            return;
        }
    };
    out!(
        o,
        "From Prometheus {} (`query_range`, one sample every {}), this period.",
        code(&c.source),
        f::secs(c.step_s)
    );
    out!(o);
    if c.runners.is_empty() {
        out!(o, "Prometheus had no runner targets for this period.");
        out!(o);
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
                (Some(v), Some(t)) => format!("{} at {}", f::gauge(Some(v)), f::time_short(t)),
                (v, _) => f::gauge(v),
            };
            let has_terminals = x.lowest_available.is_some();
            vec![
                instance_name(x, cell),
                at(x.lowest_available, &x.lowest_available_at),
                if has_terminals {
                    f::secs(x.seconds_at_zero)
                } else {
                    NONE.to_owned()
                },
                if has_terminals {
                    f::int(x.zero_stretches)
                } else {
                    NONE.to_owned()
                },
                at(x.peak_active, &x.peak_active_at),
                f::gauge(x.concurrent),
                f::gauge(x.peak_websocket_connections),
                f::gauge(x.peak_jobs),
            ]
        })
        .collect();
    table(o, &head, &rows);
    if c.runners.iter().any(|x| x.lowest_available.is_none()) {
        out!(
            o,
            "{NONE}: the target exported no such series (upstream gitlab-runner has no terminal metrics)."
        );
        out!(o);
    }
    for x in &c.runners {
        capacity_chart(o, r, x);
    }
}

/// `` `build-a` (`10.0.0.11:9252`) ``, or the instance alone.
fn instance_name(x: &RunnerCapacity, show: fn(&str) -> String) -> String {
    match &x.runner {
        Some(n) => format!("{} ({})", show(n), show(&x.instance)),
        None => show(&x.instance),
    }
}

/// Terminals available (line) and active (bars) over the period, against
/// hours since its start; Mermaid cannot show gaps, so a series with
/// missing samples gets a sentence instead.
fn capacity_chart(o: &mut String, r: &Report, x: &RunnerCapacity) {
    let name = instance_name(x, code);
    out!(o, "#### Terminals over time: {name}");
    out!(o);
    if x.series.is_empty() {
        out!(o, "No samples of terminal metrics for this target.");
        out!(o);
        return;
    }
    let missing = x
        .series
        .iter()
        .filter(|p| p.available.is_none() || p.active.is_none())
        .count();
    if missing == x.series.len() {
        out!(o, "No samples of terminal metrics for this target.");
        out!(o);
        return;
    }
    if missing > 0 {
        out!(
            o,
            "No chart: {missing} of its {} samples have no data, which a Mermaid chart cannot show (the HTML report draws the gaps).",
            x.series.len()
        );
        out!(o);
        return;
    }
    let (first, last) = match (x.series.first(), x.series.last()) {
        (Some(a), Some(b)) => (a, b),
        _ => return,
    };
    let (Some(x0), Some(x1)) = (
        f::hours_since_start(r, &first.at),
        f::hours_since_start(r, &last.at),
    ) else {
        out!(o, "No chart: the samples' times could not be read.");
        out!(o);
        return;
    };
    let nums = |v: &dyn Fn(&CapacityPoint) -> Option<f64>| {
        x.series
            .iter()
            .map(|p| f::gauge(v(p)).replace(',', ""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out!(o, "```mermaid");
    out!(o, "xychart-beta");
    out!(
        o,
        "    title \"Terminals active (bars) and available (line)\""
    );
    out!(
        o,
        "    x-axis \"Hours since {}\" {} --> {}",
        mermaid_label(&f::time_long(&r.period.from)),
        hours(x0),
        hours(x1)
    );
    let top = x
        .series
        .iter()
        .flat_map(|p| [p.active, p.available])
        .chain([x.concurrent])
        .flatten()
        .fold(0.0, f64::max);
    out!(o, "    y-axis \"Terminals\" 0 --> {}", f::axis_max(top));
    out!(o, "    bar [{}]", nums(&|p| p.active));
    out!(o, "    line [{}]", nums(&|p| p.available));
    out!(o, "```");
    out!(o);
    out!(
        o,
        "*Chart: {} samples from {} to {}; bars are terminals active, the line is terminals available.*",
        x.series.len(),
        f::time_long(&first.at),
        f::time_long(&last.at)
    );
    out!(o);
}

fn hours(h: f64) -> String {
    if h.fract() == 0.0 {
        format!("{h:.0}")
    } else {
        format!("{h:.1}")
    }
}

pub(super) fn inputs(o: &mut String, r: &Report) {
    let i = &r.inputs;
    out!(o, "## Inputs");
    out!(o);
    out!(
        o,
        "- Read {} ({} gzip-compressed): {} of log text, {} lines.",
        f::count_of(i.files, "file", "files"),
        f::int(i.gzip_files),
        f::bytes(i.bytes),
        f::int(i.lines)
    );
    out!(
        o,
        "- {} lines of no known log format (counted, otherwise ignored).",
        f::int(i.unparsed_lines)
    );
    out!(
        o,
        "- {} records without a timestamp (and none before them in their file): counted in this period's totals and fingerprints, in no day.",
        f::int(i.untimed_records)
    );
    out!(
        o,
        "- {} records outside both periods, left out.",
        f::int(i.outside_records)
    );
    if i.read_errors.is_empty() {
        out!(o, "- Every file was read to the end.");
    } else {
        out!(
            o,
            "- {} could not be read to the end:",
            match i.read_errors.len() {
                1 => "1 file".to_owned(),
                n => format!("{} files", f::int(n as u64)),
            }
        );
        for e in &i.read_errors {
            out!(o, "  - {}", code(e));
        }
    }
    out!(o);
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
                    cell(&s.runner),
                    f::int(s.files),
                    f::int(s.bytes),
                    f::int(s.lines),
                    f::int(s.unparsed_lines),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
}
