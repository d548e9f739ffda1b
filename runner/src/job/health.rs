//! A runner's health, as upstream's `healthHelper`: after
//! `unhealthy_requests_limit` failed job requests in a row the runner is
//! disabled for `unhealthy_interval` (upstream's default 1 h), then asks
//! again. Shared by the runner's feeders (`request_concurrency`), so the
//! runner as a whole pauses and resumes.
//!
//! Upstream only logs `Runner "…" is unhealthy and will be disabled for …`;
//! termgate also says when it resumes: a warning with `resumes_at` (RFC
//! 3339), `gitlab_runner_unhealthy` 1 and
//! `gitlab_runner_unhealthy_until_timestamp_seconds` while disabled, and
//! `Runner resumed requesting jobs` when the pause is over.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::time::Instant;
use termgate::logschema::{self as schema, msg};

use crate::metrics::Metrics;

/// Who the runner is, for log fields and metric labels.
#[derive(Debug, Clone)]
pub struct RunnerId {
    pub short: String,
    pub name: String,
    pub url: String,
    pub system_id: String,
}

/// One runner's failed requests in a row and its pause, if disabled.
pub struct Health {
    id: RunnerId,
    limit: usize,
    interval: Duration,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: usize,
    /// Disabled until then.
    until: Option<Instant>,
}

impl Health {
    /// Healthy (the gauges say 0). `limit` and `interval` below 1 count as 1
    /// (a request and a second).
    pub fn new(id: RunnerId, limit: usize, interval: Duration, metrics: Arc<Metrics>) -> Self {
        metrics.set_unhealthy(&id.short, &id.name, &id.system_id, None);
        Health {
            id,
            limit: limit.max(1),
            interval: interval.max(Duration::from_secs(1)),
            metrics,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A job request got an answer (a job or none): the count starts over.
    pub fn succeeded(&self) {
        self.state().failures = 0;
    }

    /// A job request failed. Returns the pause when this failure disables
    /// the runner (logged, gauges set).
    pub fn failed(&self) -> Option<Duration> {
        self.failed_at(Instant::now())
    }

    fn failed_at(&self, now: Instant) -> Option<Duration> {
        let mut st = self.state();
        if st.until.is_some() {
            return None;
        }
        st.failures += 1;
        if st.failures < self.limit {
            return None;
        }
        let failures = std::mem::take(&mut st.failures);
        st.until = Some(now + self.interval);
        drop(st);
        let resumes_at = chrono::Utc::now()
            + chrono::Duration::from_std(self.interval).unwrap_or(chrono::Duration::MAX);
        let id = &self.id;
        tracing::error!(
            { schema::RUNNER } = %id.short,
            { schema::RUNNER_NAME } = %id.name,
            { schema::UNHEALTHY_REQUESTS } = failures,
            { schema::UNHEALTHY_REQUESTS_LIMIT } = self.limit,
            "{}",
            msg::runner_unhealthy(&id.url, &id.short, &crate::metrics::go_duration(self.interval))
        );
        tracing::warn!(
            { schema::RUNNER } = %id.short,
            { schema::RUNNER_NAME } = %id.name,
            { schema::RESUMES_AT } = %resumes_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "{}",
            msg::RUNNER_DISABLED
        );
        self.metrics.set_unhealthy(
            &id.short,
            &id.name,
            &id.system_id,
            Some(resumes_at.timestamp()),
        );
        Some(self.interval)
    }

    /// How long the runner stays disabled, or `None` when it may request
    /// jobs. The first call after the pause ends says it resumed.
    pub fn paused(&self) -> Option<Duration> {
        self.paused_at(Instant::now())
    }

    fn paused_at(&self, now: Instant) -> Option<Duration> {
        let mut st = self.state();
        let until = st.until?;
        if now < until {
            return Some(until - now);
        }
        st.until = None;
        drop(st);
        let id = &self.id;
        tracing::info!(
            { schema::RUNNER } = %id.short,
            { schema::RUNNER_NAME } = %id.name,
            "{}",
            msg::RUNNER_RESUMED
        );
        self.metrics
            .set_unhealthy(&id.short, &id.name, &id.system_id, None);
        None
    }
}

impl Drop for Health {
    /// The runner's feeders stopped (reload, shutdown): nothing is paused
    /// any more; a reload starts counting again, as a restart would.
    fn drop(&mut self) {
        let id = &self.id;
        self.metrics
            .set_unhealthy(&id.short, &id.name, &id.system_id, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::testing::capture;

    fn metrics() -> Arc<Metrics> {
        Metrics::new(Default::default(), Default::default(), "0.0.0", "test").unwrap()
    }

    fn gauge(m: &Metrics, name: &str) -> Option<String> {
        m.render()
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .map(str::to_string)
    }

    #[test]
    fn disabled_after_the_limit_with_when_it_resumes_then_resumed() {
        let m = metrics();
        let id = RunnerId {
            short: "abcd1234".into(),
            name: "r1".into(),
            url: "https://gitlab.example.com/".into(),
            system_id: "s_1".into(),
        };
        let t0 = Instant::now();
        let (lines, h) = capture(|| {
            let h = Health::new(id, 3, Duration::from_secs(3600), m.clone());
            assert_eq!(h.failed_at(t0), None);
            h.succeeded();
            assert_eq!(h.failed_at(t0), None);
            assert_eq!(h.failed_at(t0), None);
            assert_eq!(h.paused_at(t0), None);
            let before = chrono::Utc::now();
            assert_eq!(h.failed_at(t0), Some(Duration::from_secs(3600)));
            (h, before)
        });
        let (h, before) = h;
        let text = lines.join("\n");
        assert!(
            text.contains(
                "Runner \\\"https://gitlab.example.com/abcd1234\\\" is unhealthy and will be disabled for 1h0m0s seconds!"
            ),
            "{text}"
        );
        let warn: serde_json::Value = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l[schema::MSG] == msg::RUNNER_DISABLED)
            .unwrap_or_else(|| panic!("no {:?} in {text}", msg::RUNNER_DISABLED));
        assert_eq!(warn[schema::LEVEL], "warning");
        assert_eq!(warn[schema::RUNNER], "abcd1234");
        assert_eq!(warn[schema::RUNNER_NAME], "r1");
        let at = chrono::DateTime::parse_from_rfc3339(warn[schema::RESUMES_AT].as_str().unwrap())
            .unwrap();
        let ahead = at.timestamp() - before.timestamp();
        assert!((3599..=3601).contains(&ahead), "{at} vs {before}");
        let labels = "{runner=\"abcd1234\",runner_name=\"r1\",system_id=\"s_1\"}";
        assert_eq!(
            gauge(&m, termgate::metrics::UNHEALTHY).as_deref(),
            Some(format!("gitlab_runner_unhealthy{labels} 1").as_str())
        );
        assert_eq!(
            gauge(&m, termgate::metrics::UNHEALTHY_UNTIL_TIMESTAMP_SECONDS),
            Some(format!(
                "gitlab_runner_unhealthy_until_timestamp_seconds{labels} {}",
                at.timestamp()
            ))
        );

        // Failures while paused do not extend it; the pause ends on time.
        assert_eq!(h.failed_at(t0), None);
        assert_eq!(h.paused_at(t0), Some(Duration::from_secs(3600)));
        let later = |s| t0 + Duration::from_secs(s);
        assert_eq!(h.paused_at(later(3599)), Some(Duration::from_secs(1)));
        let (lines, resumed) = capture(|| h.paused_at(later(3600)));
        assert_eq!(resumed, None);
        assert!(
            lines.iter().any(|l| l.contains(msg::RUNNER_RESUMED)),
            "{lines:?}"
        );
        assert_eq!(
            gauge(&m, termgate::metrics::UNHEALTHY).as_deref(),
            Some(format!("gitlab_runner_unhealthy{labels} 0").as_str())
        );
        assert_eq!(
            gauge(&m, termgate::metrics::UNHEALTHY_UNTIL_TIMESTAMP_SECONDS),
            Some(format!(
                "gitlab_runner_unhealthy_until_timestamp_seconds{labels} 0"
            ))
        );
    }
}
