//! The console's data model: what pollers and log tailers publish and what
//! the UI renders. Plain data, no I/O. Owned by nobody in particular; the
//! scrape side fills [`RunnerState`], the log side fills [`Tally`] and
//! [`LogRecord`]s, the UI reads a [`Snapshot`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

/// Where the console learned about a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSource {
    pub name: String,
    /// `http://host:9252/metrics` (direct) or the Prometheus `instance`.
    pub metrics_url: String,
    /// `https://host:8093` of the session server, when known.
    pub session_url: Option<String>,
    /// Log file globs of this runner.
    pub logs: Vec<String>,
}

/// Reachability of a runner's metrics endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    Up,
    /// Last scrape failed: a short reason (`connection refused`, `timeout`,
    /// `garbage: line 3: …`) and when the next try is.
    Down {
        reason: String,
        retry_at: SystemTime,
    },
}

/// What kind of runner answered (from `gitlab_runner_version_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunnerVersion {
    /// `termgate-runner` or `gitlab-runner`.
    pub name: String,
    pub version: String,
}

impl RunnerVersion {
    /// `termgate 0.3` / `gitlab 17.11`, for the Fleet column.
    pub fn short(&self) -> String {
        let who = if self.name.starts_with("termgate") {
            "termgate"
        } else {
            "gitlab"
        };
        let v: Vec<&str> = self.version.split('.').take(2).collect();
        format!("{who} {}", v.join("."))
    }
}

/// The figures of one successful scrape. `None` = the runner does not export
/// it (upstream gitlab-runner has no session metrics): shown as `-`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    pub at: Option<SystemTime>,
    pub version: Option<RunnerVersion>,
    /// Sum of `gitlab_runner_jobs` (all states).
    pub jobs: Option<f64>,
    /// `gitlab_runner_jobs` by `state`.
    pub jobs_by_state: BTreeMap<String, f64>,
    pub concurrent: Option<f64>,
    pub terminals_available: Option<f64>,
    pub terminals_active: Option<f64>,
    pub terminals_idle: Option<f64>,
    /// `gitlab_runner_session_websocket_connections` by `role`.
    pub ws_connections: BTreeMap<String, f64>,
    /// Counters (totals since the runner started).
    pub errors_total: BTreeMap<String, f64>,
    pub rejections_total: BTreeMap<String, f64>,
    pub closes_total: BTreeMap<String, f64>,
    pub jobs_total: Option<f64>,
    pub failed_jobs_total: BTreeMap<String, f64>,
    pub cpu_seconds_total: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
    /// termgate: each `[[runners]]` entry's `gitlab_runner_unhealthy` and
    /// `gitlab_runner_unhealthy_until_timestamp_seconds`, by `runner_name`
    /// (the `runner` label, a short token, when the name is empty). Every
    /// entry the runner requests jobs for is here, disabled or not, so the
    /// console can say `1 of 3`; empty for a runner that exports neither
    /// (upstream gitlab-runner).
    pub unhealthy: BTreeMap<String, Unhealthy>,
}

/// One `[[runners]]` entry's health gauges.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Unhealthy {
    /// `gitlab_runner_unhealthy` is 1: disabled after
    /// `unhealthy_requests_limit` failed job requests in a row.
    pub disabled: bool,
    /// When it requests jobs again (from the `until` gauge; `None` when
    /// the gauge is 0 or missing).
    pub until: Option<SystemTime>,
}

impl Sample {
    /// The disabled `[[runners]]` entries, by name, with their resume time.
    pub fn disabled(&self) -> impl Iterator<Item = (&str, Option<SystemTime>)> {
        self.unhealthy
            .iter()
            .filter(|(_, u)| u.disabled)
            .map(|(n, u)| (n.as_str(), u.until))
    }
    /// How many entries are disabled, and how many there are.
    pub fn disabled_of(&self) -> (usize, usize) {
        (self.disabled().count(), self.unhealthy.len())
    }
    /// The earliest resume time of the disabled entries.
    pub fn resumes_at(&self) -> Option<SystemTime> {
        self.disabled().filter_map(|(_, u)| u).min()
    }

    pub fn ws_total(&self) -> Option<f64> {
        (!self.ws_connections.is_empty()).then(|| self.ws_connections.values().sum())
    }
    pub fn errors_sum(&self) -> Option<f64> {
        (!self.errors_total.is_empty()).then(|| self.errors_total.values().sum())
    }
}

/// Series kept for charts and sparklines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    Jobs,
    TerminalsAvailable,
    TerminalsActive,
    TerminalsIdle,
    WsConnections,
    /// Runner errors per minute: warnings and errors the runner logged
    /// (`gitlab_runner_errors_total`) less its users' failed jobs
    /// ([`RunnerState::errors_per_minute`]).
    ErrorsPerMinute,
    /// Jobs failed per minute for the user's reasons
    /// ([`RunnerState::job_failures_per_minute`]).
    JobFailuresPerMinute,
    /// CPU use in percent of one core.
    CpuPercent,
    RssBytes,
}

/// One hour (by default) of points per series, compact: seconds since the
/// history started and an `f32`. Old points fall off the front.
#[derive(Debug, Clone)]
pub struct History {
    pub origin: SystemTime,
    pub keep: Duration,
    pub series: BTreeMap<Series, VecDeque<(u32, f32)>>,
}

impl History {
    pub fn new(origin: SystemTime, keep: Duration) -> Self {
        History {
            origin,
            keep,
            series: BTreeMap::new(),
        }
    }

    pub fn push(&mut self, s: Series, at: SystemTime, v: f64) {
        let t = at.duration_since(self.origin).unwrap_or_default().as_secs() as u32;
        let q = self.series.entry(s).or_default();
        q.push_back((t, v as f32));
        let keep = self.keep.as_secs() as u32;
        while q
            .front()
            .is_some_and(|(t0, _)| t.saturating_sub(*t0) > keep)
        {
            q.pop_front();
        }
    }

    /// Values since `since`, oldest first.
    pub fn values_since(&self, s: Series, since: SystemTime) -> Vec<f64> {
        self.points_since(s, since)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Points since `since` as `(seconds since origin, value)`.
    pub fn points_since(&self, s: Series, since: SystemTime) -> Vec<(f64, f64)> {
        let t = since
            .duration_since(self.origin)
            .unwrap_or_default()
            .as_secs() as u32;
        self.series
            .get(&s)
            .map(|q| {
                q.iter()
                    .filter(|(ti, _)| *ti >= t)
                    .map(|(ti, v)| (f64::from(*ti), f64::from(*v)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Default for History {
    /// An empty hour-long history counted from the Unix epoch.
    fn default() -> Self {
        History::new(SystemTime::UNIX_EPOCH, Duration::from_secs(3600))
    }
}

impl History {
    /// The newest value of a series.
    pub fn last(&self, s: Series) -> Option<f64> {
        self.series
            .get(&s)
            .and_then(|q| q.back())
            .map(|(_, v)| f64::from(*v))
    }
}

/// Everything the console knows about one runner.
#[derive(Debug, Clone)]
pub struct RunnerState {
    pub source: RunnerSource,
    pub health: Health,
    pub last_ok: Option<SystemTime>,
    pub last_attempt: Option<SystemTime>,
    pub latest: Option<Sample>,
    /// Derived rates from the last two samples.
    /// Runner errors per minute: the rate of `gitlab_runner_errors_total`
    /// (every warning and error the runner logged) less
    /// [`Self::job_failures_per_minute`] (each such job logs one `Job
    /// failed` warning), never below zero.
    pub errors_per_minute: Option<f64>,
    /// Jobs failed per minute for the job's own reasons (`script_failure`,
    /// `job_execution_timeout`, …: [`crate::logs::origin::JOB_REASONS`]),
    /// the rate of `gitlab_runner_failed_jobs_total` with those reasons.
    pub job_failures_per_minute: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub history: History,
}

impl RunnerState {
    pub fn new(source: RunnerSource, now: SystemTime) -> Self {
        RunnerState {
            source,
            health: Health::Unknown,
            last_ok: None,
            last_attempt: None,
            latest: None,
            errors_per_minute: None,
            job_failures_per_minute: None,
            cpu_percent: None,
            history: History::new(now, Duration::from_secs(3600)),
        }
    }
}

/// Log levels: the shared log schema's.
pub use termgate::logschema::Level;

/// One parsed log line (any of the formats the console reads).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The runner (source name) whose file it came from.
    pub runner: String,
    pub time: Option<SystemTime>,
    pub level: Level,
    pub msg: String,
    /// Other fields, in the order they appeared, values as text.
    pub fields: Vec<(String, String)>,
}

/// Whose problem a warning or error is ([`crate::logs::origin`] decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Origin {
    /// The user's job: its script failed, it timed out, it was canceled.
    Job,
    /// The runner or the system around it (GitLab's API, Docker, the
    /// session server, its configuration).
    #[default]
    Runner,
}

impl Origin {
    /// `runner` or `job`, as the screens and `tally` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Job => "job",
            Origin::Runner => "runner",
        }
    }
}

/// One error fingerprint's tally.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEntry {
    pub fingerprint: String,
    /// The runner's or the job's; a fingerprint seen as both is the
    /// runner's (worth a look).
    pub origin: Origin,
    /// The highest level seen for it.
    pub level: Level,
    pub count: u64,
    pub first_seen: Option<SystemTime>,
    pub last_seen: Option<SystemTime>,
    pub runners: BTreeSet<String>,
    /// The latest example's message.
    pub sample: String,
    /// A few recent raw lines (bounded).
    pub examples: VecDeque<String>,
    /// Counts per minute over the window, oldest first (for the trend).
    pub per_minute: VecDeque<(u64, u32)>,
}

/// Errors (warning and above) grouped by fingerprint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub entries: BTreeMap<String, ErrorEntry>,
    pub lines: u64,
    /// Lines that were not log records (counted, never fatal).
    pub unparsed: u64,
    /// Lines over the reader's limit ([`crate::logs::read::MAX_READ_LINE`]):
    /// only their start was looked at (an error among them is still
    /// tallied); not also counted as unparsed.
    pub oversized: u64,
}

/// The live sessions of one runner, as the `/sessions` poller last saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerSessions {
    pub runner: String,
    pub state: SessionsState,
}

/// What the console knows of a runner's sessions.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionsState {
    /// The console has no operator access to the runner: why, as a hint.
    NoAccess(String),
    /// Not asked yet.
    Waiting,
    /// The last answer.
    Live {
        sessions: Vec<termgate::operator::SessionSummary>,
        at: SystemTime,
    },
    /// The last request failed: a short reason and the next try.
    Failed {
        reason: String,
        retry_at: SystemTime,
    },
}

/// What the UI draws from: the pollers' and tailers' latest state.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub runners: Vec<RunnerState>,
    /// Live sessions per runner (the Sessions screen), in config order.
    pub sessions: Vec<RunnerSessions>,
    pub tally: Tally,
    /// The live tail, newest last, bounded.
    pub logs: VecDeque<LogRecord>,
    pub taken_at: Option<SystemTime>,
    /// Poll interval, for the header.
    pub interval: Duration,
    /// Fleet-wide sums of the runners' series (one point per update),
    /// kept by the publisher so a frame never walks every runner's history.
    pub fleet: History,
}

/// Points `(time, value)` averaged into `n` equal buckets over
/// `[start, end)`; buckets without a point are `None`.
pub fn buckets(
    points: impl IntoIterator<Item = (SystemTime, f64)>,
    start: SystemTime,
    end: SystemTime,
    n: usize,
) -> Vec<Option<f64>> {
    let span = end.duration_since(start).unwrap_or_default().as_secs_f64();
    let mut sums = vec![(0.0, 0u32); n];
    if n == 0 || span <= 0.0 {
        return vec![None; n];
    }
    for (t, v) in points {
        let Ok(d) = t.duration_since(start) else {
            continue;
        };
        let i = (d.as_secs_f64() / span * n as f64) as usize;
        if let Some(b) = sums.get_mut(i) {
            b.0 += v;
            b.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(s, c)| (c > 0).then(|| s / f64::from(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_window() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = History::new(t0, Duration::from_secs(10));
        for i in 0..30 {
            h.push(Series::Jobs, t0 + Duration::from_secs(i), i as f64);
        }
        let v = h.values_since(Series::Jobs, t0);
        assert_eq!(v.first(), Some(&19.0));
        assert_eq!(v.last(), Some(&29.0));
    }

    #[test]
    fn version_short() {
        let v = RunnerVersion {
            name: "gitlab-runner".into(),
            version: "17.11.0".into(),
        };
        assert_eq!(v.short(), "gitlab 17.11");
        let v = RunnerVersion {
            name: "termgate-runner".into(),
            version: "0.1.0".into(),
        };
        assert_eq!(v.short(), "termgate 0.1");
    }
}
