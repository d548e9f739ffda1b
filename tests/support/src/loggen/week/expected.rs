//! What the report must show, computed from what each generated record
//! means (see [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use termgate::logschema::Level;

use super::records::{render, Gen, Kind, Sess};
use super::runners::{RUNNERS, SECRETS, SEC_MS};
use crate::loggen::{date, report_time, DAY_MS};

/// A count in the period (`[0]`) and in the previous one (`[1]`).
pub type PairCounts = [u64; 2];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub warnings: u64,
    pub errors: u64,
    pub sessions: u64,
    pub jobs: u64,
    pub job_failures: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    pub files: u64,
    pub gzip_files: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
    pub lines: u64,
    pub unparsed_lines: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub errors: PairCounts,
    pub warnings: PairCounts,
    pub sessions: PairCounts,
    pub rejections: PairCounts,
    pub jobs: PairCounts,
    pub job_failures: PairCounts,
    pub starts: PairCounts,
    pub unclean_shutdowns: PairCounts,
}

/// A fingerprint as the report must show it (in `top` when seen in the
/// period, in `gone` when only in the previous one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fp {
    pub level: String,
    pub count: u64,
    pub previous_count: u64,
    /// `new`, `gone`, `up`, `down`, `same`.
    pub trend: String,
    /// In the period (in the previous period for a gone one).
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Runner stems (`runner-a`) with occurrences in that period.
    pub runners: Vec<String>,
    /// The period's occurrences per day.
    pub per_day: Vec<u64>,
    /// The raw line of the latest occurrence (in that period).
    pub example_line: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunnerSessions {
    pub started: u64,
    /// Most sessions active at once in the period and the first second.
    pub peak: Option<(u64, String)>,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub rejections: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sessions {
    pub started: PairCounts,
    /// Sessions that ended in the period.
    pub ended: u64,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub peak: Option<(u64, String)>,
    pub closes: BTreeMap<String, PairCounts>,
    pub rejections: BTreeMap<String, PairCounts>,
    pub attaches: BTreeMap<String, PairCounts>,
    pub operators: BTreeMap<String, PairCounts>,
    /// By runner stem.
    pub runners: BTreeMap<String, RunnerSessions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Jobs {
    /// `success`, `failed`, `system_failure`.
    pub by_result: BTreeMap<String, PairCounts>,
    pub failure_reasons: BTreeMap<String, PairCounts>,
    /// By runner stem: `[succeeded, failed, system_failures]` in the period.
    pub runners: BTreeMap<String, [u64; 3]>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    pub starts: u64,
    pub unclean_shutdowns: u64,
    pub fatal: u64,
    /// The period's starts: `(at, "start" | "start_after_unclean_stop")`.
    pub events: Vec<(String, String)>,
}

/// Every figure of the report for the generated logs. Runners are keyed by
/// their file stem (`runner-a`); [`Expected::names`] says what the report
/// calls them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Expected {
    /// RFC 3339, UTC.
    pub from: String,
    pub to: String,
    pub previous_from: String,
    /// `(stem, runner_name)` of each runner.
    pub runners: Vec<(String, String)>,
    /// Whether the logs carry `runner_name`.
    pub runner_names: bool,
    /// Every file written.
    pub files: Vec<PathBuf>,
    pub gzip_files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub unparsed_lines: u64,
    /// Records of interest (warnings and above, session, job, start and
    /// stop lines) before the previous period or at/after `to`.
    pub outside_records: u64,
    pub sources: BTreeMap<String, Source>,
    /// The period's UTC days.
    pub days: Vec<String>,
    pub day_totals: Vec<Counts>,
    pub day_runners: BTreeMap<String, Vec<Counts>>,
    pub totals: Totals,
    /// Every fingerprint of either period.
    pub fingerprints: BTreeMap<String, Fp>,
    pub sessions: Sessions,
    pub jobs: Jobs,
    pub lifecycle: BTreeMap<String, Lifecycle>,
    /// Tokens written into the logs.
    pub secrets: Vec<String>,
}

impl Expected {
    /// What the report calls each runner (stem → name) when they are named
    /// by their logs (`runner_name`, else the file name).
    pub fn names(&self) -> BTreeMap<String, String> {
        self.runners
            .iter()
            .map(|(stem, name)| {
                let shown = if self.runner_names { name } else { stem };
                (stem.clone(), shown.clone())
            })
            .collect()
    }
}

/// Nearest-rank percentile `q` (in percent) of tenths of a second.
fn percentile(sorted: &[u64], q: u64) -> Option<f64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (q * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize] as f64 / 10.0)
}

/// Most sessions active at once in `[from, to)` and the first second it
/// was reached; `None` when none was active. A session is active from its
/// connect's second up to, not including, its disconnect's.
fn peak(sessions: &[Sess], from: i64, to: i64) -> Option<(u64, String)> {
    let sec = |t: i64| t.div_euclid(SEC_MS);
    let (from_s, to_s) = (sec(from), sec(to));
    let mut candidates: Vec<i64> = vec![from_s];
    candidates.extend(
        sessions
            .iter()
            .map(|s| sec(s.c))
            .filter(|c| *c > from_s && *c < to_s),
    );
    candidates.sort_unstable();
    let mut best: Option<(u64, i64)> = None;
    for t in candidates {
        let n = sessions
            .iter()
            .filter(|s| sec(s.c) <= t && t < sec(s.d))
            .count() as u64;
        if n > 0 && best.is_none_or(|(b, _)| n > b) {
            best = Some((n, t));
        }
    }
    best.map(|(n, t)| (n, report_time(t * SEC_MS)))
}

#[derive(Default)]
struct FpAcc {
    level: Option<Level>,
    count: [u64; 2],
    first: [Option<i64>; 2],
    last: [Option<i64>; 2],
    runners: [BTreeSet<String>; 2],
    per_day: Vec<u64>,
    /// (time, runner, record index) of the latest occurrence per period.
    latest: [Option<(i64, usize, usize)>; 2],
}

pub(super) fn expected(g: &Gen, nd: i64) -> Expected {
    let (p0, from, to) = (g.prev_from, g.from, g.to);
    let place = |t: i64| {
        if t >= from && t < to {
            Some(0usize)
        } else if t >= p0 && t < from {
            Some(1)
        } else {
            None
        }
    };
    let ndays = nd as usize;
    let day = |t: i64| ((t - from) / DAY_MS) as usize;
    let mut e = Expected {
        from: report_time(from),
        to: report_time(to),
        previous_from: report_time(p0),
        runners: RUNNERS
            .iter()
            .map(|r| (r.stem.to_owned(), r.name.to_owned()))
            .collect(),
        runner_names: g.runner_names,
        days: (0..nd).map(|i| date(from + i * DAY_MS)).collect(),
        day_totals: vec![Counts::default(); ndays],
        secrets: SECRETS.iter().map(|s| (*s).to_owned()).collect(),
        ..Expected::default()
    };
    let mut fps: BTreeMap<String, FpAcc> = BTreeMap::new();
    let mut durations: [Vec<u64>; 2] = Default::default();
    for (r, spec) in RUNNERS.iter().enumerate() {
        let stem = spec.stem.to_owned();
        let mut days = vec![Counts::default(); ndays];
        let mut rs = RunnerSessions::default();
        let mut rdur: Vec<u64> = Vec::new();
        let mut jobs = [0u64; 3];
        let mut life = Lifecycle::default();
        let mut starts: Vec<i64> = Vec::new();
        let mut stops: Vec<i64> = Vec::new();
        for (i, rec) in g.recs[r].iter().enumerate() {
            if matches!(rec.kind, Kind::Garbage { .. }) {
                continue;
            }
            match rec.kind {
                Kind::Start => starts.push(rec.t),
                Kind::CleanStop => stops.push(rec.t),
                _ => {}
            }
            let of_interest = rec.level >= Level::Warning || !matches!(rec.kind, Kind::Noise);
            let Some(p) = place(rec.t) else {
                e.outside_records += u64::from(of_interest);
                continue;
            };
            let d = (p == 0).then(|| day(rec.t));
            if rec.level >= Level::Warning {
                let error = rec.level >= Level::Error;
                if error {
                    e.totals.errors[p] += 1;
                } else {
                    e.totals.warnings[p] += 1;
                }
                if let Some(d) = d {
                    if error {
                        days[d].errors += 1;
                    } else {
                        days[d].warnings += 1;
                    }
                }
                if rec.level >= Level::Fatal && p == 0 {
                    life.fatal += 1;
                }
                let key = rec.fp.clone().expect("a fingerprint for every warning");
                let a = fps.entry(key).or_insert_with(|| FpAcc {
                    per_day: vec![0; ndays],
                    ..FpAcc::default()
                });
                a.level = a.level.max(Some(rec.level));
                a.count[p] += 1;
                a.first[p] = Some(a.first[p].map_or(rec.t, |x| x.min(rec.t)));
                a.last[p] = Some(a.last[p].map_or(rec.t, |x| x.max(rec.t)));
                a.runners[p].insert(stem.clone());
                if let Some(d) = d {
                    a.per_day[d] += 1;
                }
                if a.latest[p].is_none_or(|(t, _, _)| rec.t > t) {
                    a.latest[p] = Some((rec.t, r, i));
                }
            }
            match &rec.kind {
                Kind::Connect => {
                    e.sessions.started[p] += 1;
                    if let Some(d) = d {
                        days[d].sessions += 1;
                        rs.started += 1;
                    }
                }
                Kind::Disconnect { reason, tenths } => {
                    e.sessions.closes.entry(reason.clone()).or_default()[p] += 1;
                    durations[p].push(*tenths);
                    if p == 0 {
                        e.sessions.ended += 1;
                        rdur.push(*tenths);
                    }
                }
                Kind::Reject { reason, refused } => {
                    e.sessions.rejections.entry(reason.clone()).or_default()[p] += refused;
                    e.totals.rejections[p] += refused;
                    if p == 0 {
                        rs.rejections += refused;
                    }
                }
                Kind::Attach { mode, operator } => {
                    e.sessions.attaches.entry(mode.clone()).or_default()[p] += 1;
                    e.sessions.operators.entry(operator.clone()).or_default()[p] += 1;
                }
                Kind::Job { result, reason } => {
                    let name = ["success", "failed", "system_failure"][*result];
                    e.jobs.by_result.entry(name.to_owned()).or_default()[p] += 1;
                    e.totals.jobs[p] += 1;
                    if *result > 0 {
                        e.totals.job_failures[p] += 1;
                        let reason = reason.clone().expect("a failed job's reason");
                        e.jobs.failure_reasons.entry(reason).or_default()[p] += 1;
                    }
                    if let Some(d) = d {
                        days[d].jobs += 1;
                        days[d].job_failures += u64::from(*result > 0);
                        jobs[*result] += 1;
                    }
                }
                _ => {}
            }
        }
        // Starts: unclean when no clean stop came since the start before.
        for (i, s) in starts.iter().enumerate() {
            let unclean = i > 0 && !stops.iter().any(|x| *x > starts[i - 1] && x < s);
            if let Some(p) = place(*s) {
                e.totals.starts[p] += 1;
                e.totals.unclean_shutdowns[p] += u64::from(unclean);
                if p == 0 {
                    life.starts += 1;
                    life.unclean_shutdowns += u64::from(unclean);
                    life.events.push((
                        report_time(*s),
                        if unclean {
                            "start_after_unclean_stop"
                        } else {
                            "start"
                        }
                        .to_owned(),
                    ));
                }
            }
        }
        rdur.sort_unstable();
        rs.p50_s = percentile(&rdur, 50);
        rs.p95_s = percentile(&rdur, 95);
        let mine: Vec<Sess> = g
            .sessions
            .iter()
            .filter(|s| s.runner == r)
            .copied()
            .collect();
        rs.peak = peak(&mine, from, to);
        for (t, d) in e.day_totals.iter_mut().zip(&days) {
            t.warnings += d.warnings;
            t.errors += d.errors;
            t.sessions += d.sessions;
            t.jobs += d.jobs;
            t.job_failures += d.job_failures;
        }
        e.day_runners.insert(stem.clone(), days);
        e.sessions.runners.insert(stem.clone(), rs);
        e.jobs.runners.insert(stem.clone(), jobs);
        e.lifecycle.insert(stem, life);
    }
    e.totals.sessions = e.sessions.started;
    durations[0].sort_unstable();
    e.sessions.p50_s = percentile(&durations[0], 50);
    e.sessions.p95_s = percentile(&durations[0], 95);
    e.sessions.peak = peak(&g.sessions, from, to);
    for (key, a) in fps {
        let gone = a.count[0] == 0;
        let p = usize::from(gone);
        let trend = if gone {
            "gone"
        } else if a.count[1] == 0 {
            "new"
        } else {
            match a.count[0].cmp(&a.count[1]) {
                std::cmp::Ordering::Greater => "up",
                std::cmp::Ordering::Less => "down",
                std::cmp::Ordering::Equal => "same",
            }
        };
        let example_line = a.latest[p].map_or_else(String::new, |(_, r, i)| {
            let mut b = Vec::new();
            render(r, &g.recs[r][i], &mut b);
            String::from_utf8_lossy(&b).into_owned()
        });
        e.fingerprints.insert(
            key,
            Fp {
                level: a.level.map_or("", Level::as_str).to_owned(),
                count: a.count[0],
                previous_count: a.count[1],
                trend: trend.to_owned(),
                first_seen: a.first[p].map(report_time),
                last_seen: a.last[p].map(report_time),
                runners: a.runners[p].iter().cloned().collect(),
                per_day: a.per_day,
                example_line,
            },
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=21).collect();
        assert_eq!(percentile(&v, 50), Some(1.1));
        assert_eq!(percentile(&v, 95), Some(2.0));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(0.7));
    }

    #[test]
    fn peaks_count_sessions_carried_in() {
        let s = |c: i64, d: i64| Sess {
            runner: 0,
            c: c * 1000,
            d: d * 1000,
        };
        // Two open at 100, one closing at 110, one opening at 120.
        let v = [s(50, 110), s(60, 200), s(120, 130)];
        assert_eq!(peak(&v, 100_000, 300_000), Some((2, report_time(100_000))));
        let v = [s(150, 160), s(155, 170), s(158, 159)];
        assert_eq!(peak(&v, 100_000, 300_000), Some((3, report_time(158_000))));
        assert_eq!(peak(&[s(10, 20)], 100_000, 300_000), None);
    }
}
