//! The weekly report as data: what `--format json` prints (schema version
//! [`SCHEMA_VERSION`], documented in `docs/report-schema.md`) and what the
//! Markdown and HTML writers render. Every figure is computed once, in
//! [`super::build`]; the writers only lay it out.
//!
//! Conventions:
//! - times are RFC 3339 in UTC (`2026-11-30T00:00:00Z`), days are UTC dates
//!   (`2026-11-30`);
//! - "errors" are records at level error, fatal or panic; "warnings" at
//!   level warning;
//! - a [`Pair`] is a figure for the report's period and for the period of
//!   the same length just before it;
//! - lists are sorted: by count descending, then by name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped on any change that is not a pure addition.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// When the report was written.
    pub generated_at: String,
    /// The period reported on: `[from, to)`.
    pub period: Period,
    /// The period of the same length just before it (for comparisons).
    pub previous: Period,
    /// "State of things": a few sentences written from the numbers below,
    /// most important first. Inline code is in backticks (Markdown).
    pub summary: Vec<String>,
    pub inputs: Inputs,
    /// Runner names (from `NAME=GLOB`, the logs' `runner_name`, or the file
    /// name), sorted.
    pub runners: Vec<String>,
    pub totals: Totals,
    /// One entry per UTC day touching the period, oldest first (the first
    /// and last may be partial days).
    pub days: Vec<Day>,
    pub errors: Errors,
    pub sessions: Sessions,
    pub jobs: Jobs,
    pub lifecycle: Lifecycle,
    /// Only with `--prometheus` (or a `[prometheus]` url in console.toml).
    pub capacity: Option<Capacity>,
    /// Why the capacity history could not be read, when it was asked for.
    pub capacity_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: String,
    pub to: String,
    pub seconds: u64,
}

/// A count in the period and in the previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub current: u64,
    pub previous: u64,
}

impl Pair {
    /// Change in percent vs the previous period; `None` when it was 0.
    pub fn change_pct(&self) -> Option<f64> {
        (self.previous > 0)
            .then(|| (self.current as f64 - self.previous as f64) * 100.0 / self.previous as f64)
    }
}

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    pub files: u64,
    /// Of which gzip-compressed.
    pub gzip_files: u64,
    /// Bytes of log text read (after decompression).
    pub bytes: u64,
    pub lines: u64,
    /// Lines of no known log format (counted, otherwise ignored).
    pub unparsed_lines: u64,
    /// Records without a timestamp (and none before them in their file):
    /// counted in the period's totals and fingerprints, in no day.
    pub untimed_records: u64,
    /// Records the report reads in full (warnings and above; session, job,
    /// start and stop lines) that fall before the previous period or at/after
    /// the period's end.
    pub outside_records: u64,
    /// Files that could not be read to the end: `path: error`.
    pub read_errors: Vec<String>,
    /// Per runner: its files, bytes and lines.
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub runner: String,
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub unparsed_lines: u64,
}

/// Fleet totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub errors: Pair,
    pub warnings: Pair,
    /// Terminal sessions started (`terminal_connected`).
    pub sessions: Pair,
    /// Terminal connections refused (`terminal_rejected`, over-limit lines
    /// counted by their `refused` field).
    pub rejections: Pair,
    /// Jobs finished (succeeded or failed).
    pub jobs: Pair,
    pub job_failures: Pair,
    /// Runner process starts (`Starting multi-runner from …`).
    pub starts: Pair,
    pub unclean_shutdowns: Pair,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    pub warnings: u64,
    pub errors: u64,
    pub sessions: u64,
    pub jobs: u64,
    pub job_failures: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    /// UTC date, `2026-11-30`.
    pub date: String,
    pub total: DayCounts,
    /// Every runner of [`Report::runners`], also with zero counts.
    pub runners: BTreeMap<String, DayCounts>,
}

/// Warnings and above grouped by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// Distinct fingerprints in the period.
    pub distinct: u64,
    /// The most frequent fingerprints of the period (`--top`).
    pub top: Vec<Fingerprint>,
    /// Occurrences of the period's fingerprints not in `top`.
    pub not_shown: u64,
    /// Fingerprints of the previous period not seen in this one, most
    /// frequent first (at most `--top`).
    pub gone: Vec<Fingerprint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Not seen in the previous period.
    New,
    /// Seen in the previous period, not in this one.
    Gone,
    Up,
    Down,
    Same,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub fingerprint: String,
    /// The highest level seen (`warning`, `error`, `fatal`, `panic`).
    pub level: String,
    pub count: u64,
    pub previous_count: u64,
    pub trend: Trend,
    /// First and last occurrence in the period (in the previous period for
    /// a gone fingerprint); `None` when its records had no timestamp.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub runners: Vec<String>,
    /// Occurrences per day, aligned with [`Report::days`].
    pub per_day: Vec<u64>,
    /// One raw line, tokens and secrets masked, on one line, clipped.
    pub example: String,
}

/// A count by some reason, mode or result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub reason: String,
    pub current: u64,
    pub previous: u64,
}

/// Terminal usage, from the runner's session events (termgate logs only:
/// upstream gitlab-runner does not log them; `events_seen` says whether any
/// were found).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    pub events_seen: bool,
    pub started: Pair,
    /// Most terminals connected at once in the period, fleet-wide.
    pub peak_active: Option<Peak>,
    /// Of sessions that ended in the period (`terminal_disconnected`
    /// `duration_s`), nearest-rank percentiles, to 0.1 s.
    pub duration_p50_s: Option<f64>,
    pub duration_p95_s: Option<f64>,
    pub ended: u64,
    /// Why sessions ended (`terminal_disconnected` `reason`).
    pub closes: Vec<Reason>,
    /// Why connections were refused (`terminal_rejected` `reason`).
    pub rejections: Vec<Reason>,
    /// Operator attaches by mode (`operator_attached` `mode`).
    pub operator_attaches: Vec<Reason>,
    /// Operator attaches by operator name.
    pub operators: Vec<Reason>,
    pub runners: Vec<RunnerSessions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peak {
    pub count: u64,
    /// The first second it was reached.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerSessions {
    pub runner: String,
    pub started: u64,
    pub peak_active: Option<Peak>,
    pub duration_p50_s: Option<f64>,
    pub duration_p95_s: Option<f64>,
    pub rejections: u64,
}

/// Jobs finished, from `Job succeeded` / `Job failed: …` /
/// `Job failed (system failure): …` lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// `success`, `failed`, `system_failure`.
    pub by_result: Vec<Reason>,
    /// Failed jobs by `failure_reason` (or, where the line has none, the
    /// fingerprint of the message after `Job failed: `).
    pub failure_reasons: Vec<Reason>,
    pub runners: Vec<RunnerJobs>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerJobs {
    pub runner: String,
    pub succeeded: u64,
    pub failed: u64,
    pub system_failures: u64,
}

/// Runner process starts and how the runs before them ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub runners: Vec<RunnerLifecycle>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerLifecycle {
    pub runner: String,
    pub starts: u64,
    /// Starts whose previous run (in these logs) did not end with
    /// `All workers stopped.` / `Can exit now!`.
    pub unclean_shutdowns: u64,
    /// Fatal and panic records.
    pub fatal: u64,
    /// The period's starts, oldest first (at most 50).
    pub events: Vec<LifecycleEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub at: String,
    /// `start`, or `start_after_unclean_stop`.
    pub kind: String,
}

/// Terminal capacity from Prometheus' history (`query_range`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The Prometheus server asked.
    pub source: String,
    /// The `query_range` step, in seconds.
    pub step_s: u64,
    /// One per Prometheus target (`instance` label), sorted.
    pub runners: Vec<RunnerCapacity>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerCapacity {
    /// The target's `instance` label (`host:port`).
    pub instance: String,
    /// `runner_name` label(s) of its session metrics or `gitlab_runner_jobs`
    /// series (comma-separated when one process runs several runners);
    /// `None` when none has one (termgate's session metrics have none; its
    /// job series have one while a job runs).
    pub runner: Option<String>,
    /// Lowest `gitlab_runner_session_terminals_available` and when.
    pub lowest_available: Option<f64>,
    pub lowest_available_at: Option<String>,
    /// Time with no terminal available (samples at 0 × step), and how many
    /// separate stretches that was (a stretch ends at a sample above 0 or
    /// a missing one). 0 also when `lowest_available` is `None`.
    pub seconds_at_zero: u64,
    pub zero_stretches: u64,
    /// Highest `…_terminals_active` and when; the `gitlab_runner_concurrent`
    /// configured then (without session metrics: the highest in the
    /// period).
    pub peak_active: Option<f64>,
    pub peak_active_at: Option<String>,
    pub concurrent: Option<f64>,
    /// Highest `…_websocket_connections` and highest `gitlab_runner_jobs`.
    pub peak_websocket_connections: Option<f64>,
    pub peak_jobs: Option<f64>,
    /// For charts: at most 200 evenly spaced points over the period (up to
    /// now), each the worst case of the samples it stands for: the lowest
    /// `available`, the highest `active`, `idle` and connections, `at` the
    /// first sample's time. `null` where Prometheus had no sample; empty
    /// when the target has no session metrics (upstream gitlab-runner).
    pub series: Vec<CapacityPoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacityPoint {
    pub at: String,
    pub available: Option<f64>,
    pub active: Option<f64>,
    pub idle: Option<f64>,
    pub websocket_connections: Option<f64>,
}
