//! The per-runner primitives of the pollers: the reconnect state machine
//! ([`Link`], on the shared retry schedule [`Backoff`]), counter rates over
//! a sliding window ([`CounterWindow`]), and the [`Tracker`] that applies a
//! scrape's outcome to a [`RunnerState`] (health, rates, history).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// Retry delays of a runner that is down: the shared schedule, 1 s doubling
/// to 30 s by default.
pub use termgate::backoff::Backoff;

use super::options::PollOptions;
use crate::model::{Health, RunnerState, Sample, Series};

/// The connection state of one runner: the reconnect state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not tried yet: due at once.
    Fresh,
    /// Last scrape worked: due on the next tick.
    Up,
    /// `failures` in a row; the next try is at `retry_at`.
    Backoff {
        failures: u32,
        delay: Duration,
        retry_at: Instant,
    },
}

impl Link {
    pub fn succeeded(&mut self) {
        *self = Link::Up;
    }

    /// Record a failure at `now`; returns the delay until the next try.
    pub fn failed(&mut self, now: Instant, backoff: &Backoff) -> Duration {
        let failures = match *self {
            Link::Backoff { failures, .. } => failures.saturating_add(1),
            Link::Fresh | Link::Up => 1,
        };
        let delay = backoff.delay(failures);
        *self = Link::Backoff {
            failures,
            delay,
            retry_at: now + delay,
        };
        delay
    }

    /// When the next scrape is due; `tick` is the next shared tick.
    pub fn due_at(&self, now: Instant, tick: Instant) -> Instant {
        match *self {
            Link::Fresh => now,
            Link::Up => tick,
            Link::Backoff { retry_at, .. } => retry_at,
        }
    }
}

/// Increase of a counter over a sliding window, resets handled (a drop is
/// a restart: the new value is the increase since).
#[derive(Debug, Clone)]
pub struct CounterWindow {
    window: Duration,
    points: VecDeque<(SystemTime, f64)>,
}

impl CounterWindow {
    pub fn new(window: Duration) -> Self {
        CounterWindow {
            window,
            points: VecDeque::new(),
        }
    }

    /// Add a reading; returns the rate per second over the window (from the
    /// newest reading at or before the window's start), if there are two.
    pub fn push(&mut self, at: SystemTime, v: f64) -> Option<f64> {
        if let Some(&(last, _)) = self.points.back() {
            if at <= last {
                // Clock went back or a duplicate: start over.
                self.points.clear();
            }
        }
        self.points.push_back((at, v));
        let start = at
            .checked_sub(self.window)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        while self.points.len() > 2 && self.points.get(1).is_some_and(|(t, _)| *t <= start) {
            self.points.pop_front();
        }
        let (t0, _) = *self.points.front()?;
        let span = at.duration_since(t0).ok()?.as_secs_f64();
        if self.points.len() < 2 || span <= 0.0 {
            return None;
        }
        let increase: f64 = self
            .points
            .iter()
            .zip(self.points.iter().skip(1))
            .map(|((_, a), (_, b))| if b >= a { b - a } else { *b })
            .sum();
        Some(increase / span)
    }

    pub fn clear(&mut self) {
        self.points.clear();
    }
}

/// What a poller keeps per runner besides the published state and the
/// [`Link`] (the poll loop's).
#[derive(Debug, Clone)]
pub struct Tracker {
    errors: CounterWindow,
    /// Failed jobs for the job's own reasons.
    job_failures: CounterWindow,
    cpu: CounterWindow,
}

impl Tracker {
    pub fn new(opts: &PollOptions) -> Self {
        Tracker {
            errors: CounterWindow::new(opts.rate_window),
            job_failures: CounterWindow::new(opts.rate_window),
            // The last two readings only.
            cpu: CounterWindow::new(Duration::ZERO),
        }
    }

    /// Compute `cpu_percent` over `window` instead of the last two readings
    /// (for sources that repeat a value until the next scrape).
    pub fn with_cpu_window(mut self, window: Duration) -> Self {
        self.cpu = CounterWindow::new(window);
        self
    }

    /// A successful scrape taken at `at`: health, rates, history.
    pub fn apply_ok(&mut self, st: &mut RunnerState, mut sample: Sample, at: SystemTime) {
        sample.at = Some(at);
        st.health = Health::Up;
        st.last_ok = Some(at);
        st.last_attempt = Some(at);
        // Every job that fails for its own reasons logs one `Job failed`
        // warning, which `gitlab_runner_errors_total` counts: take those
        // out, so that ERR/min is the runner's own errors.
        let job_failed: f64 = sample
            .failed_jobs_total
            .iter()
            .filter(|(r, _)| crate::logs::origin::of_reason(r) == crate::model::Origin::Job)
            .map(|(_, v)| v)
            .sum();
        let logged = match sample.errors_sum() {
            Some(v) => self.errors.push(at, v).map(|r| r * 60.0),
            None => None,
        };
        let jobs = self.job_failures.push(at, job_failed).map(|r| r * 60.0);
        st.job_failures_per_minute = logged.and(jobs);
        st.errors_per_minute = logged.map(|l| (l - jobs.unwrap_or(0.0)).max(0.0));
        st.cpu_percent = match sample.cpu_seconds_total {
            Some(v) => self.cpu.push(at, v).map(|r| r * 100.0),
            None => None,
        };
        let h = &mut st.history;
        let points = [
            (Series::Jobs, sample.jobs),
            (Series::TerminalsAvailable, sample.terminals_available),
            (Series::TerminalsActive, sample.terminals_active),
            (Series::TerminalsIdle, sample.terminals_idle),
            (Series::WsConnections, sample.ws_total()),
            (Series::ErrorsPerMinute, st.errors_per_minute),
            (Series::JobFailuresPerMinute, st.job_failures_per_minute),
            (Series::CpuPercent, st.cpu_percent),
            (Series::RssBytes, sample.rss_bytes),
        ];
        for (s, v) in points {
            if let Some(v) = v {
                h.push(s, at, v);
            }
        }
        st.latest = Some(sample);
    }

    /// A failed scrape at `at`: `Down` with a short reason and the next
    /// try `retry_in` later.
    pub fn apply_err(
        &mut self,
        st: &mut RunnerState,
        reason: String,
        at: SystemTime,
        retry_in: Duration,
    ) {
        let delay = retry_in;
        st.health = Health::Down {
            reason,
            retry_at: at + delay,
        };
        st.last_attempt = Some(at);
        st.errors_per_minute = None;
        st.job_failures_per_minute = None;
        st.cpu_percent = None;
        // A rate across an outage would mix two processes.
        self.cpu.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::options::DEFAULT_BACKOFF;
    use crate::scrape::test_server::{good, src};

    fn reason(s: &RunnerState) -> Option<&str> {
        match &s.health {
            Health::Down { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = DEFAULT_BACKOFF;
        let d: Vec<u64> = (1..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
        let mut l = Link::Fresh;
        let now = Instant::now();
        assert_eq!(l.failed(now, &b), Duration::from_secs(1));
        assert_eq!(l.failed(now, &b), Duration::from_secs(2));
        assert!(matches!(l, Link::Backoff { failures: 2, .. }));
        assert_eq!(
            l.due_at(now, now + Duration::from_secs(9)),
            now + Duration::from_secs(2)
        );
        l.succeeded();
        assert_eq!(l, Link::Up);
    }

    #[test]
    fn counter_rate_over_a_window_with_resets() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s| t0 + Duration::from_secs(s);
        let mut w = CounterWindow::new(Duration::from_secs(60));
        assert_eq!(w.push(at(0), 100.0), None);
        assert_eq!(w.push(at(30), 130.0), Some(1.0));
        // Restart: 130 → 5 counts as +5.
        assert_eq!(w.push(at(60), 5.0), Some(35.0 / 60.0));
        // The window slides: [30..90] → (130→5: +5) + (5→65: +60).
        assert_eq!(w.push(at(90), 65.0), Some(65.0 / 60.0));
        // Flat counter → zero.
        let mut w = CounterWindow::new(Duration::from_secs(60));
        for s in 0..200 {
            w.push(at(s), 7.0);
        }
        assert_eq!(w.push(at(200), 7.0), Some(0.0));
        assert!(w.points.len() <= 62, "{}", w.points.len());
        // Last-two-readings mode.
        let mut w = CounterWindow::new(Duration::ZERO);
        w.push(at(0), 1.0);
        w.push(at(1), 1.5);
        assert_eq!(w.push(at(3), 2.5), Some(0.5));
    }

    /// Issue 19: users' failing jobs are job failures, not runner errors.
    #[test]
    fn users_failed_jobs_are_not_runner_errors() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut st = RunnerState::new(src("a", "x".into()), t0);
        let mut tr = Tracker::new(&PollOptions::default());
        // `errors` warnings and errors logged, `script` + `timeout` jobs
        // failed for their own reasons, `system` for the runner's.
        let s = |errors: u32, script: u32, timeout: u32, system: u32| {
            crate::scrape::parse_metrics(&format!(
                "gitlab_runner_errors_total{{level=\"warning\"}} {errors}\n\
                 gitlab_runner_failed_jobs_total{{failure_reason=\"script_failure\"}} {script}\n\
                 gitlab_runner_failed_jobs_total{{failure_reason=\"job_execution_timeout\"}} {timeout}\n\
                 gitlab_runner_failed_jobs_total{{failure_reason=\"runner_system_failure\"}} {system}\n"
            ))
            .unwrap()
        };
        tr.apply_ok(&mut st, s(0, 0, 0, 0), t0);
        // A minute of ten user failures (each logs one warning): no runner error.
        tr.apply_ok(&mut st, s(10, 8, 2, 0), t0 + Duration::from_secs(60));
        assert_eq!(st.errors_per_minute, Some(0.0));
        assert_eq!(st.job_failures_per_minute, Some(10.0));
        // Then three runner errors, one of them a system failure of a job.
        tr.apply_ok(&mut st, s(13, 8, 2, 1), t0 + Duration::from_secs(120));
        assert_eq!(st.errors_per_minute, Some(3.0));
        assert_eq!(st.job_failures_per_minute, Some(0.0));
    }

    #[test]
    fn apply_fills_rates_and_history() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = PollOptions::default();
        let mut st = RunnerState::new(src("a", "x".into()), t0);
        let mut tr = Tracker::new(&o);
        let s = |e: f64, c: f64| crate::scrape::parse_metrics(&good(e, c)).unwrap();
        tr.apply_ok(&mut st, s(10.0, 1.0), t0);
        assert_eq!(st.errors_per_minute, None);
        tr.apply_ok(&mut st, s(13.0, 1.5), t0 + Duration::from_secs(2));
        assert_eq!(st.errors_per_minute, Some(90.0));
        assert_eq!(st.cpu_percent, Some(25.0));
        assert_eq!(st.history.values_since(Series::Jobs, t0), [2.0, 2.0]);
        assert_eq!(st.history.values_since(Series::CpuPercent, t0), [25.0]);
        assert!(st
            .history
            .values_since(Series::TerminalsAvailable, t0)
            .is_empty());
        tr.apply_err(
            &mut st,
            "refused".into(),
            t0 + Duration::from_secs(4),
            Duration::from_secs(1),
        );
        assert_eq!(reason(&st), Some("refused"));
        assert!(
            matches!(st.health, Health::Down { retry_at, .. } if retry_at == t0 + Duration::from_secs(5))
        );
        assert!(
            st.latest.is_some(),
            "the last good sample stays for the Runner screen"
        );
        assert_eq!(st.cpu_percent, None);
    }
}
