//! From the scan's aggregates (and capacity) to a [`Report`]: every figure
//! and the summary sentences.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use super::fmt;
use super::model::*;
use super::redact::redact;
use super::scan::{better_example, days_of, min_opt, Agg, Life, Scanned};
use super::Window;

pub struct Options {
    pub window: Window,
    /// Fingerprints listed.
    pub top: usize,
    pub now: SystemTime,
}

/// Longest example shown, in characters.
pub const EXAMPLE_CHARS: usize = 300;
/// Starts listed per runner.
pub const MAX_EVENTS: usize = 50;

pub fn rfc3339_ms(t: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn pair(a: [u64; 2]) -> Pair {
    Pair {
        current: a[0],
        previous: a[1],
    }
}

fn reasons(maps: [&HashMap<String, u64>; 2]) -> Vec<Reason> {
    let mut all: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
    for (p, m) in maps.iter().enumerate() {
        for (k, v) in m.iter() {
            all.entry(k.as_str()).or_default()[p] += v;
        }
    }
    let mut v: Vec<Reason> = all
        .into_iter()
        .map(|(k, [c, p])| Reason {
            reason: k.to_owned(),
            current: c,
            previous: p,
        })
        .collect();
    v.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then(b.previous.cmp(&a.previous))
            .then(a.reason.cmp(&b.reason))
    });
    v
}

/// Nearest-rank percentile of a tenths-of-a-second histogram.
pub fn percentile(h: &BTreeMap<u64, u64>, q: f64) -> Option<f64> {
    let n: u64 = h.values().sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (v, c) in h {
        seen += c;
        if seen >= rank {
            return Some(*v as f64 / 10.0);
        }
    }
    None
}

/// An example on one line: ANSI removed, control characters as spaces, at
/// most [`EXAMPLE_CHARS`] characters (then `…`).
fn one_line(s: &str) -> String {
    let s = crate::logs::wrap::strip_ansi(s);
    let mut out: String = s
        .chars()
        .take(EXAMPLE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(EXAMPLE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Lifecycle of one runner: starts per period, unclean shutdowns per
/// period, and the current period's starts.
fn lifecycle(a: &Agg, w: &Window) -> ([u64; 2], [u64; 2], Vec<LifecycleEvent>) {
    let mut ev = a.lifecycle.clone();
    ev.sort();
    let (mut starts, mut unclean) = ([0u64; 2], [0u64; 2]);
    let mut events = Vec::new();
    let mut running = false;
    for (t, l) in ev {
        match l {
            Life::CleanStop => running = false,
            Life::Start => {
                let after_unclean = running;
                running = true;
                if let Some(p) = w.place(t) {
                    starts[p as usize] += 1;
                    if after_unclean {
                        unclean[p as usize] += 1;
                    }
                    if p == super::PeriodIx::Current && events.len() < MAX_EVENTS {
                        events.push(LifecycleEvent {
                            at: rfc3339_ms(t),
                            kind: if after_unclean {
                                "start_after_unclean_stop"
                            } else {
                                "start"
                            }
                            .to_owned(),
                        });
                    }
                }
            }
        }
    }
    starts[0] += a.untimed_starts;
    (starts, unclean, events)
}

/// "once", "twice", "3 times".
fn times(n: u64) -> String {
    match n {
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{} times", fmt::int(n)),
    }
}

/// "errors up 40% (1,204 → 1,690)".
fn change_phrase(what: &str, p: Pair) -> String {
    match p.change_pct() {
        None if p.current == 0 => format!("no {what}"),
        None => format!(
            "{what}: {} (none in the previous period)",
            fmt::int(p.current)
        ),
        Some(c) if c.abs() < 0.5 => format!("{what} flat ({})", fmt::int(p.current)),
        Some(c) => format!(
            "{what} {} {:.0}% ({} → {})",
            if c > 0.0 { "up" } else { "down" },
            c.abs(),
            fmt::int(p.previous),
            fmt::int(p.current)
        ),
    }
}

pub fn build(
    s: &Scanned,
    o: &Options,
    capacity: Option<Capacity>,
    capacity_error: Option<String>,
) -> Report {
    let w = o.window;
    let (day0, ndays) = days_of(&w);
    let names: Vec<String> = s.runners.keys().cloned().collect();
    // Inputs.
    let mut inputs = Inputs::default();
    for (name, a) in &s.runners {
        inputs.files += a.files;
        inputs.gzip_files += a.gzip_files;
        inputs.bytes += a.bytes;
        inputs.lines += a.lines;
        inputs.unparsed_lines += a.unparsed;
        inputs.untimed_records += a.untimed;
        inputs.outside_records += a.outside;
        inputs.read_errors.extend(a.read_errors.iter().cloned());
        inputs.sources.push(Source {
            runner: name.clone(),
            files: a.files,
            bytes: a.bytes,
            lines: a.lines,
            unparsed_lines: a.unparsed,
        });
    }
    inputs.read_errors.sort();
    // Days.
    let mut days: Vec<Day> = (0..ndays)
        .map(|i| Day {
            date: chrono::DateTime::from_timestamp_millis(day0 + i as i64 * 86_400_000)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            total: DayCounts::default(),
            runners: BTreeMap::new(),
        })
        .collect();
    for (name, a) in &s.runners {
        for (d, x) in days.iter_mut().zip(&a.days) {
            let c = DayCounts {
                warnings: x.warnings,
                errors: x.errors,
                sessions: x.sessions,
                jobs: x.jobs,
                job_failures: x.job_failures,
            };
            d.total.warnings += c.warnings;
            d.total.errors += c.errors;
            d.total.sessions += c.sessions;
            d.total.jobs += c.jobs;
            d.total.job_failures += c.job_failures;
            d.runners.insert(name.clone(), c);
        }
    }
    // Fingerprints across runners.
    struct Fp {
        level: crate::model::Level,
        count: [u64; 2],
        /// Sparse `(day, count)`: dense only for the fingerprints shown.
        per_day: BTreeMap<u32, u64>,
        first: [Option<i64>; 2],
        last: [Option<i64>; 2],
        runners: Vec<String>,
        /// Runners with occurrences in the previous period.
        previous_runners: Vec<String>,
        example: String,
        example_at: Option<(usize, i64)>,
    }
    // Keyed by the fingerprint with secrets masked: a token the
    // fingerprint kept (one without digits) is never shown, and
    // fingerprints that differ only by one fall together.
    let mut fps: HashMap<String, Fp> = HashMap::new();
    for (name, a) in &s.runners {
        for (k, f) in &a.fps {
            let e = fps.entry(redact(k)).or_insert_with(|| Fp {
                level: f.level,
                count: [0; 2],
                per_day: BTreeMap::new(),
                first: [None; 2],
                last: [None; 2],
                runners: Vec::new(),
                previous_runners: Vec::new(),
                example: String::new(),
                example_at: None,
            });
            e.level = e.level.max(f.level);
            for p in 0..2 {
                e.count[p] += f.count[p];
                e.first[p] = min_opt(e.first[p], f.first[p]);
                e.last[p] = e.last[p].max(f.last[p]);
            }
            for (d, n) in &f.per_day {
                *e.per_day.entry(*d).or_default() += n;
            }
            if f.count[0] > 0 && e.runners.last() != Some(name) {
                e.runners.push(name.clone());
            }
            if f.count[1] > 0 && e.previous_runners.last() != Some(name) {
                e.previous_runners.push(name.clone());
            }
            if better_example(f.example_at, e.example_at) {
                e.example = f.example.clone();
                e.example_at = f.example_at;
            }
        }
    }
    let to_fp = |k: &str, f: &Fp, gone: bool| {
        let p = usize::from(gone);
        Fingerprint {
            fingerprint: k.to_owned(),
            level: f.level.as_str().to_owned(),
            count: f.count[0],
            previous_count: f.count[1],
            trend: if gone {
                Trend::Gone
            } else if f.count[1] == 0 {
                Trend::New
            } else {
                match f.count[0].cmp(&f.count[1]) {
                    std::cmp::Ordering::Greater => Trend::Up,
                    std::cmp::Ordering::Less => Trend::Down,
                    std::cmp::Ordering::Equal => Trend::Same,
                }
            },
            first_seen: f.first[p].map(rfc3339_ms),
            last_seen: f.last[p].map(rfc3339_ms),
            runners: if gone {
                f.previous_runners.clone()
            } else {
                f.runners.clone()
            },
            per_day: {
                let mut v = vec![0; ndays];
                for (d, n) in &f.per_day {
                    if let Some(x) = v.get_mut(*d as usize) {
                        *x += n;
                    }
                }
                v
            },
            example: one_line(&redact(&f.example)),
        }
    };
    let mut current: Vec<(&str, &Fp)> = fps
        .iter()
        .filter(|(_, f)| f.count[0] > 0)
        .map(|(k, f)| (k.as_str(), f))
        .collect();
    current.sort_by(|a, b| b.1.count[0].cmp(&a.1.count[0]).then(a.0.cmp(b.0)));
    let distinct = current.len() as u64;
    let shown: Vec<Fingerprint> = current
        .iter()
        .take(o.top)
        .map(|(k, f)| to_fp(k, f, false))
        .collect();
    let not_shown: u64 = current.iter().skip(o.top).map(|(_, f)| f.count[0]).sum();
    let mut gone: Vec<(&str, &Fp)> = fps
        .iter()
        .filter(|(_, f)| f.count[0] == 0 && f.count[1] > 0)
        .map(|(k, f)| (k.as_str(), f))
        .collect();
    gone.sort_by(|a, b| b.1.count[1].cmp(&a.1.count[1]).then(a.0.cmp(b.0)));
    let gone: Vec<Fingerprint> = gone
        .iter()
        .take(o.top)
        .map(|(k, f)| to_fp(k, f, true))
        .collect();
    // Sessions, jobs, lifecycle.
    let mut all = Agg::default();
    let mut sessions = Sessions::default();
    let mut jobs = Jobs::default();
    let mut life = Lifecycle::default();
    let mut totals = Totals::default();
    for (name, a) in &s.runners {
        let peaks = a.sessions.concurrency.peaks(&w);
        let rej: u64 = a.sessions.rejections[0].values().sum();
        if a.sessions.events_seen {
            sessions.runners.push(RunnerSessions {
                runner: name.clone(),
                started: a.sessions.started[0],
                peak_active: peaks[0].map(|(c, t)| Peak {
                    count: c,
                    at: rfc3339_ms(t),
                }),
                duration_p50_s: percentile(&a.sessions.durations[0], 0.5),
                duration_p95_s: percentile(&a.sessions.durations[0], 0.95),
                rejections: rej,
            });
        }
        let r = a.jobs.results[0];
        if r.iter().chain(&a.jobs.results[1]).any(|n| *n > 0) {
            jobs.runners.push(RunnerJobs {
                runner: name.clone(),
                succeeded: r[0],
                failed: r[1],
                system_failures: r[2],
            });
        }
        let (starts, unclean, events) = lifecycle(a, &w);
        totals.starts.current += starts[0];
        totals.starts.previous += starts[1];
        totals.unclean_shutdowns.current += unclean[0];
        totals.unclean_shutdowns.previous += unclean[1];
        if starts
            .iter()
            .chain(&unclean)
            .chain(&a.fatal)
            .any(|n| *n > 0)
        {
            life.runners.push(RunnerLifecycle {
                runner: name.clone(),
                starts: starts[0],
                unclean_shutdowns: unclean[0],
                fatal: a.fatal[0],
                events,
            });
        }
        // Fleet-wide session and job figures: one merged aggregate (no fps).
        let mut part = Agg {
            sessions: a.sessions.clone(),
            jobs: a.jobs.clone(),
            ..Agg::default()
        };
        part.warnings = a.warnings;
        part.errors = a.errors;
        all.merge(part);
    }
    let fleet_peaks = all.sessions.concurrency.peaks(&w);
    sessions.events_seen = all.sessions.events_seen;
    sessions.started = pair(all.sessions.started);
    sessions.peak_active = fleet_peaks[0].map(|(c, t)| Peak {
        count: c,
        at: rfc3339_ms(t),
    });
    sessions.duration_p50_s = percentile(&all.sessions.durations[0], 0.5);
    sessions.duration_p95_s = percentile(&all.sessions.durations[0], 0.95);
    sessions.ended = all.sessions.ended[0];
    let s2 = &all.sessions;
    sessions.closes = reasons([&s2.closes[0], &s2.closes[1]]);
    sessions.rejections = reasons([&s2.rejections[0], &s2.rejections[1]]);
    sessions.operator_attaches = reasons([&s2.attaches[0], &s2.attaches[1]]);
    sessions.operators = reasons([&s2.operators[0], &s2.operators[1]]);
    let j = &all.jobs;
    jobs.by_result = ["success", "failed", "system_failure"]
        .iter()
        .enumerate()
        .map(|(i, k)| Reason {
            reason: (*k).to_owned(),
            current: j.results[0][i],
            previous: j.results[1][i],
        })
        .collect();
    jobs.failure_reasons = reasons([&j.failure_reasons[0], &j.failure_reasons[1]]);
    // A reason without `failure_reason` is a fingerprint of the message.
    for r in &mut jobs.failure_reasons {
        r.reason = redact(&r.reason);
    }
    totals.errors = pair(all.errors);
    totals.warnings = pair(all.warnings);
    totals.sessions = sessions.started;
    totals.rejections = Pair {
        current: sessions.rejections.iter().map(|r| r.current).sum(),
        previous: sessions.rejections.iter().map(|r| r.previous).sum(),
    };
    totals.jobs = Pair {
        current: j.results[0].iter().sum(),
        previous: j.results[1].iter().sum(),
    };
    totals.job_failures = Pair {
        current: j.results[0][1] + j.results[0][2],
        previous: j.results[1][1] + j.results[1][2],
    };
    let errors = Errors {
        distinct,
        top: shown,
        not_shown,
        gone,
    };
    let summary = summary(&totals, &errors, &sessions, &inputs, capacity.as_ref());
    Report {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339_ms(super::unix_ms(o.now)),
        period: Period {
            from: rfc3339_ms(w.from),
            to: rfc3339_ms(w.to),
            seconds: u64::try_from((w.to - w.from) / 1000).unwrap_or(0),
        },
        previous: Period {
            from: rfc3339_ms(w.prev_from),
            to: rfc3339_ms(w.from),
            seconds: u64::try_from((w.from - w.prev_from) / 1000).unwrap_or(0),
        },
        summary,
        inputs,
        runners: names,
        totals,
        days,
        errors,
        sessions,
        jobs,
        lifecycle: life,
        capacity,
        capacity_error,
    }
}

/// The "state of things": a few sentences from the numbers, most important
/// first. Without any record in the previous period there is nothing to
/// compare with: the figures are given plain, and that is said once.
fn summary(
    t: &Totals,
    e: &Errors,
    s: &Sessions,
    i: &Inputs,
    cap: Option<&Capacity>,
) -> Vec<String> {
    let compare = [
        t.errors,
        t.warnings,
        t.sessions,
        t.rejections,
        t.jobs,
        t.starts,
    ]
    .iter()
    .any(|p| p.previous > 0);
    let phrase = |what: &str, p: Pair| {
        if compare {
            change_phrase(what, p)
        } else if p.current == 0 {
            format!("no {what}")
        } else {
            format!("{what}: {}", fmt::int(p.current))
        }
    };
    let mut out = Vec::new();
    let mut first = vec![phrase("errors", t.errors), phrase("warnings", t.warnings)];
    let new: Vec<&Fingerprint> = e.top.iter().filter(|f| f.trend == Trend::New).collect();
    if let (true, Some(f)) = (compare, new.first()) {
        let more = if new.len() > 1 {
            format!(" and {} more new", new.len() - 1)
        } else {
            String::new()
        };
        first.push(format!(
            "new: `{}` ({}){more}",
            f.fingerprint.replace('`', "'"),
            fmt::int(f.count)
        ));
    }
    let mut head = capitalise(&first.join("; ")) + ".";
    if !compare {
        head.push_str(" The logs have no records of the previous period: nothing to compare with.");
    }
    out.push(head);
    if let Some(top) = e.top.first() {
        let trend = match top.trend {
            _ if !compare => String::new(),
            Trend::New => ", new".to_owned(),
            _ => format!(
                ", {}",
                change_phrase(
                    "",
                    Pair {
                        current: top.count,
                        previous: top.previous_count,
                    }
                )
                .trim()
            ),
        };
        out.push(format!(
            "Most frequent: `{}` ({}{trend}).",
            top.fingerprint.replace('`', "'"),
            times(top.count),
        ));
    }
    if s.events_seen {
        let mut parts = vec![phrase("terminal sessions", t.sessions)];
        if let Some(p) = &s.peak_active {
            parts.push(format!("peak {} at once", p.count));
        }
        if let (Some(p50), Some(p95)) = (s.duration_p50_s, s.duration_p95_s) {
            parts.push(format!("duration p50 {p50:.1} s, p95 {p95:.1} s"));
        }
        if t.rejections.current > 0 {
            parts.push(format!(
                "{} connections refused",
                fmt::int(t.rejections.current)
            ));
        }
        out.push(capitalise(&parts.join(", ")) + ".");
    }
    if t.jobs.current + t.jobs.previous > 0 {
        out.push(
            capitalise(&format!(
                "{}; {} failed",
                phrase("jobs", t.jobs),
                fmt::int(t.job_failures.current)
            )) + ".",
        );
    }
    if t.starts.current > 0 {
        let unclean = if t.unclean_shutdowns.current > 0 {
            format!(
                ", {} after an unclean stop",
                fmt::int(t.unclean_shutdowns.current)
            )
        } else {
            String::new()
        };
        out.push(format!(
            "Runners started {}{unclean}.",
            times(t.starts.current)
        ));
    }
    if let Some(c) = cap {
        let zero: Vec<&RunnerCapacity> =
            c.runners.iter().filter(|r| r.seconds_at_zero > 0).collect();
        let measured = c.runners.iter().any(|r| r.lowest_available.is_some());
        if !measured {
            out.push(
                "Prometheus had no terminal metrics for the period (upstream gitlab-runner has none)."
                    .to_owned(),
            );
        } else if zero.is_empty() {
            out.push("Terminals never ran out.".to_owned());
        } else {
            let stretches: u64 = zero.iter().map(|r| r.zero_stretches).sum();
            let secs: u64 = zero.iter().map(|r| r.seconds_at_zero).sum();
            out.push(format!(
                "Terminals ran out {}, {} in all.",
                times(stretches),
                fmt::secs(secs)
            ));
        }
    }
    if i.unparsed_lines > 0 || !i.read_errors.is_empty() {
        out.push(format!(
            "{} unparsed {}; {} could not be read to the end.",
            fmt::int(i.unparsed_lines),
            if i.unparsed_lines == 1 {
                "line"
            } else {
                "lines"
            },
            match i.read_errors.len() {
                1 => "1 file".to_owned(),
                n => format!("{n} files"),
            }
        ));
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut h = BTreeMap::new();
        assert_eq!(percentile(&h, 0.5), None);
        for v in 1..=20u64 {
            h.insert(v * 10, 1); // 1.0 s … 20.0 s
        }
        assert_eq!(percentile(&h, 0.5), Some(10.0));
        assert_eq!(percentile(&h, 0.95), Some(19.0));
        h.clear();
        h.insert(5, 3);
        assert_eq!(percentile(&h, 0.95), Some(0.5));
    }

    #[test]
    fn unclean_shutdowns_are_starts_without_a_clean_stop_before() {
        let w = Window {
            prev_from: 0,
            from: 100,
            to: 200,
        };
        let a = Agg {
            lifecycle: vec![
                (150, Life::Start), // after a clean stop: clean
                (10, Life::Start),
                (20, Life::Start), // previous run never stopped
                (90, Life::CleanStop),
                (160, Life::Start), // unclean
                (170, Life::CleanStop),
                (180, Life::Start),
            ],
            untimed_starts: 1,
            ..Agg::default()
        };
        let (starts, unclean, events) = lifecycle(&a, &w);
        assert_eq!(starts, [4, 2]);
        assert_eq!(unclean, [1, 1]);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["start", "start_after_unclean_stop", "start"]);
    }

    #[test]
    fn phrases() {
        let p = |c, p| Pair {
            current: c,
            previous: p,
        };
        assert_eq!(
            change_phrase("errors", p(1690, 1204)),
            "errors up 40% (1,204 → 1,690)"
        );
        assert_eq!(change_phrase("errors", p(0, 0)), "no errors");
        assert_eq!(change_phrase("errors", p(5, 5)), "errors flat (5)");
        assert_eq!(
            change_phrase("errors", p(3, 0)),
            "errors: 3 (none in the previous period)"
        );
        assert_eq!(fmt::secs(14 * 60), "14 min");
        assert_eq!(one_line("a\nb\x1b[31mc"), "a bc");
        assert_eq!(
            one_line(&"é".repeat(400)).chars().count(),
            EXAMPLE_CHARS + 1
        );
    }

    #[test]
    fn summary_sentences() {
        let p = |c, p| Pair {
            current: c,
            previous: p,
        };
        let t = Totals {
            errors: p(1690, 1204),
            warnings: p(10, 10),
            ..Totals::default()
        };
        let fp = Fingerprint {
            fingerprint: "Failed to find session by URL".into(),
            level: "error".into(),
            count: 312,
            previous_count: 0,
            trend: Trend::New,
            first_seen: None,
            last_seen: None,
            runners: vec![],
            per_day: vec![],
            example: String::new(),
        };
        let e = Errors {
            distinct: 1,
            top: vec![fp],
            not_shown: 0,
            gone: vec![],
        };
        let cap = Capacity {
            runners: vec![RunnerCapacity {
                lowest_available: Some(0.0),
                seconds_at_zero: 14 * 60,
                zero_stretches: 2,
                ..RunnerCapacity::default()
            }],
            ..Capacity::default()
        };
        let s = summary(&t, &e, &Sessions::default(), &Inputs::default(), Some(&cap));
        assert_eq!(
            s,
            [
                "Errors up 40% (1,204 → 1,690); warnings flat (10); new: `Failed to find session by URL` (312).",
                "Most frequent: `Failed to find session by URL` (312 times, new).",
                "Terminals ran out twice, 14 min in all.",
            ]
        );
        // Nothing in the previous period: plain figures, said once.
        let t = Totals {
            errors: p(3, 0),
            ..Totals::default()
        };
        let s = summary(&t, &e, &Sessions::default(), &Inputs::default(), None);
        assert_eq!(
            s[0],
            "Errors: 3; no warnings. The logs have no records of the previous period: nothing to compare with."
        );
        assert_eq!(
            s[1],
            "Most frequent: `Failed to find session by URL` (312 times)."
        );
    }
}
