//! Prometheus metrics of the runner (upstream `gitlab_runner_*` names and
//! labels, plus termgate's `gitlab_runner_session_*` family) in one explicit
//! [`prometheus::Registry`], and the metrics/debug HTTP server ([`serve`]).
//!
//! Label sets are fixed here; callers go through the helper methods so a
//! label is never misspelt or misordered.

mod go_duration;
mod scrape;
mod server;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use termgate::metrics::{self as names, close_reason, label, rejection_reason};
use termgate::operator::client_role;

use crate::builds::{Builds, ProcessStateCell};
use crate::logging::ErrorCounter;

pub use go_duration::go_duration;
pub use server::{router, serve, METRICS_CONTENT_TYPE};

/// Levels of `gitlab_runner_errors_total`, all exported from the start.
pub const ERROR_LEVELS: [&str; 4] = ["warning", "error", "fatal", "panic"];
/// `role` of the session WebSocket metrics.
pub const SESSION_ROLES: [&str; 4] = termgate::operator::client_role::ALL;
/// `direction` of `gitlab_runner_session_bytes_total`: `in` is to the terminal.
pub const SESSION_DIRECTIONS: [&str; 2] = ["in", "out"];
/// `mode` of the recording metrics: the user's terminal (joined operators
/// type into the same one) and an operator's own shell.
pub const RECORDING_MODES: [&str; 2] = [client_role::INTERACTIVE, client_role::SHELL];
/// Buckets of `gitlab_runner_session_duration_seconds` (connection lifetimes).
pub const SESSION_DURATION_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
/// Buckets of `gitlab_runner_session_connect_seconds` (upgrade to first byte).
pub const SESSION_CONNECT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const RUNNER_LABELS: [&str; 3] = [label::RUNNER, label::RUNNER_NAME, label::SYSTEM_ID];

/// Every metric family of the runner, registered in `registry`.
pub struct Metrics {
    pub registry: Registry,

    pub jobs_total: IntCounterVec,
    pub concurrent: IntGauge,
    pub limit: IntGaugeVec,
    pub errors_total: IntCounterVec,
    pub failed_jobs_total: IntCounterVec,
    pub api_request_statuses_total: IntCounterVec,
    pub api_request_duration_seconds: HistogramVec,
    pub job_duration_seconds: HistogramVec,
    pub version_info: IntGaugeVec,
    pub worker_feeds_total: IntCounterVec,
    pub worker_feed_failures_total: IntCounterVec,
    pub configuration_loaded_total: IntCounter,
    pub configuration_loading_error_total: IntCounter,
    /// 1 while a runner is disabled for failed job requests.
    pub unhealthy: IntGaugeVec,
    /// When a disabled runner resumes (Unix seconds), else 0.
    pub unhealthy_until: IntGaugeVec,

    pub session_terminals_available: IntGauge,
    pub session_terminals_active: IntGauge,
    pub session_terminals_idle: IntGauge,
    pub session_websocket_connections: IntGaugeVec,
    pub session_websocket_connections_total: IntCounterVec,
    pub session_rejections_total: IntCounterVec,
    pub session_closes_total: IntCounterVec,
    pub session_operator_connections_total: IntCounterVec,
    pub session_bytes_total: IntCounterVec,
    pub session_duration_seconds: Histogram,
    pub session_connect_seconds: Histogram,
    /// Recordings started, by `mode` ([`RECORDING_MODES`]).
    pub session_recordings_total: IntCounterVec,
    /// Recordings that lost data or failed, by `mode`.
    pub session_recording_errors_total: IntCounterVec,
    /// Connections in their TLS handshake or HTTP request, all listeners.
    pub session_pending_connections: IntGauge,
    /// `[session_server] max_pending` (per listener).
    pub session_max_pending: IntGauge,
    /// `[session_server] max_pending_per_peer` (per listener).
    pub session_max_pending_per_peer: IntGauge,
    /// The session server certificate's expiry (Unix seconds), by `source`;
    /// no sample until the session server has its certificate.
    pub session_certificate_expiry: IntGaugeVec,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: C,
) -> anyhow::Result<C> {
    registry
        .register(Box::new(c.clone()))
        .context("registering a metric")?;
    Ok(c)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> anyhow::Result<IntCounterVec> {
    reg(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> anyhow::Result<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    reg(r, HistogramVec::new(opts, labels)?)
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> anyhow::Result<Histogram> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    reg(r, Histogram::with_opts(opts)?)
}

/// Go's `GOARCH` spelling, so dashboards built for upstream keep working.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    }
}

impl Metrics {
    /// A fresh registry with every family registered. `builds` and `state`
    /// are read at scrape time (`gitlab_runner_jobs`,
    /// `gitlab_runner_process_state_info`).
    pub fn new(
        builds: Builds,
        state: ProcessStateCell,
        version: &str,
        revision: &str,
    ) -> anyhow::Result<Arc<Metrics>> {
        let r = Registry::new();
        r.register(Box::new(scrape::JobsCollector::new(builds)?))
            .context("registering gitlab_runner_jobs")?;
        r.register(Box::new(scrape::ProcessStateCollector::new(state)?))
            .context("registering gitlab_runner_process_state_info")?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .context("registering process metrics")?;

        let errors_total = counter_vec(
            &r,
            names::ERRORS_TOTAL,
            "The number of caught errors (log lines at warning and above).",
            &[label::LEVEL],
        )?;
        for level in ERROR_LEVELS {
            errors_total.with_label_values(&[level]);
        }

        let version_info = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    names::VERSION_INFO,
                    "A metric with a constant '1' value labeled by different build stats fields.",
                ),
                &[
                    "name",
                    "version",
                    "revision",
                    "branch",
                    "go_version",
                    "built_at",
                    "os",
                    "architecture",
                ],
            )?,
        )?;
        version_info
            .with_label_values(&[
                "termgate-runner",
                version,
                revision,
                "unknown",
                "rust",
                "unknown",
                std::env::consts::OS,
                go_arch(),
            ])
            .set(1);

        let session_websocket_connections = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    names::SESSION_WEBSOCKET_CONNECTIONS,
                    "Open terminal WebSocket connections, by role.",
                ),
                &[label::ROLE],
            )?,
        )?;
        let session_websocket_connections_total = counter_vec(
            &r,
            names::SESSION_WEBSOCKET_CONNECTIONS_TOTAL,
            "Accepted terminal WebSocket connections, by role.",
            &[label::ROLE],
        )?;
        for role in SESSION_ROLES {
            session_websocket_connections.with_label_values(&[role]);
            session_websocket_connections_total.with_label_values(&[role]);
        }
        let session_rejections_total = counter_vec(
            &r,
            names::SESSION_REJECTIONS_TOTAL,
            "Terminal connection attempts refused, by reason.",
            &[label::REASON],
        )?;
        for reason in [
            rejection_reason::UNAUTHORIZED,
            rejection_reason::NOT_FOUND,
            rejection_reason::NOT_WEBSOCKET,
            rejection_reason::LOCKED,
            rejection_reason::UNAVAILABLE,
            rejection_reason::CONNECT_FAILED,
            rejection_reason::OVER_LIMIT,
            rejection_reason::PEER_OVER_LIMIT,
            rejection_reason::EVICTED,
            rejection_reason::THROTTLED,
            rejection_reason::FORBIDDEN,
            rejection_reason::REASON_REQUIRED,
            rejection_reason::NO_TERMINAL,
        ] {
            session_rejections_total.with_label_values(&[reason]);
        }
        let session_closes_total = counter_vec(
            &r,
            names::SESSION_CLOSES_TOTAL,
            "Terminal connections closed, by reason.",
            &[label::REASON],
        )?;
        for reason in [
            close_reason::CLIENT_LEFT,
            close_reason::JOB_FINISHED,
            close_reason::JOB_CANCELLED,
            close_reason::SESSION_TIMEOUT,
            close_reason::IDLE_TIMEOUT,
            close_reason::RUNNER_SHUTDOWN,
            close_reason::REPLACED,
            close_reason::FRAME_TOO_LARGE,
            close_reason::TERMINAL_EXITED,
            close_reason::TOO_SLOW,
            close_reason::ERROR,
        ] {
            session_closes_total.with_label_values(&[reason]);
        }
        let session_operator_connections_total = counter_vec(
            &r,
            names::SESSION_OPERATOR_CONNECTIONS_TOTAL,
            "Operator connections accepted, by mode (observe, join, shell).",
            &[label::MODE],
        )?;
        for mode in termgate::operator::Mode::ALL {
            session_operator_connections_total.with_label_values(&[mode.as_str()]);
        }
        let session_bytes_total = counter_vec(
            &r,
            names::SESSION_BYTES_TOTAL,
            "Terminal bytes relayed, by direction (in: to the terminal, out: from it).",
            &[label::DIRECTION],
        )?;
        for direction in SESSION_DIRECTIONS {
            session_bytes_total.with_label_values(&[direction]);
        }

        let session_recordings_total = counter_vec(
            &r,
            names::SESSION_RECORDINGS_TOTAL,
            "Terminal recordings started, by mode.",
            &[label::MODE],
        )?;
        let session_recording_errors_total = counter_vec(
            &r,
            names::SESSION_RECORDING_ERRORS_TOTAL,
            "Terminal recordings that failed or lost data (the disk fell behind the terminal), by mode.",
            &[label::MODE],
        )?;
        for mode in RECORDING_MODES {
            session_recordings_total.with_label_values(&[mode]);
            session_recording_errors_total.with_label_values(&[mode]);
        }

        let m = Metrics {
            jobs_total: counter_vec(&r, names::JOBS_TOTAL, "Total number of handled jobs.", &RUNNER_LABELS)?,
            concurrent: reg(
                &r,
                IntGauge::new(names::CONCURRENT, "The current value of the concurrent setting.")?,
            )?,
            limit: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(names::LIMIT, "The current value of the limit setting of each runner."),
                    &RUNNER_LABELS,
                )?,
            )?,
            errors_total,
            unhealthy: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        names::UNHEALTHY,
                        "1 while the runner is disabled after unhealthy_requests_limit failed job requests in a row, else 0.",
                    ),
                    &RUNNER_LABELS,
                )?,
            )?,
            unhealthy_until: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        names::UNHEALTHY_UNTIL_TIMESTAMP_SECONDS,
                        "When a disabled runner requests jobs again (Unix seconds); 0 while it is not disabled.",
                    ),
                    &RUNNER_LABELS,
                )?,
            )?,
            failed_jobs_total: counter_vec(
                &r,
                names::FAILED_JOBS_TOTAL,
                "Total number of failed jobs, by failure reason.",
                &[label::RUNNER, label::RUNNER_NAME, label::FAILURE_REASON, label::MODE],
            )?,
            api_request_statuses_total: counter_vec(
                &r,
                names::API_REQUEST_STATUSES_TOTAL,
                "The total number of API requests, partitioned by runner, system_id, endpoint, status and method.",
                &[label::RUNNER, label::SYSTEM_ID, label::ENDPOINT, label::STATUS, label::METHOD],
            )?,
            api_request_duration_seconds: histogram_vec(
                &r,
                names::API_REQUEST_DURATION_SECONDS,
                "Latency histogram of API requests made by GitLab Runner.",
                &names::API_REQUEST_DURATION_BUCKETS,
                &[label::RUNNER, label::SYSTEM_ID, label::ENDPOINT, label::STATUS_CLASS, label::METHOD],
            )?,
            job_duration_seconds: histogram_vec(
                &r,
                names::JOB_DURATION_SECONDS,
                "Histogram of job durations.",
                &names::JOB_DURATION_BUCKETS,
                &[label::RUNNER, label::RUNNER_NAME, label::SYSTEM_ID, label::MODE],
            )?,
            version_info,
            worker_feeds_total: counter_vec(
                &r,
                names::WORKER_FEEDS_TOTAL,
                "Total number of times a runner was fed to the workers.",
                &RUNNER_LABELS,
            )?,
            worker_feed_failures_total: counter_vec(
                &r,
                names::WORKER_FEED_FAILURES_TOTAL,
                "Total number of times feeding a runner to the workers failed.",
                &RUNNER_LABELS,
            )?,
            configuration_loaded_total: reg(
                &r,
                IntCounter::new(names::CONFIGURATION_LOADED_TOTAL, "Total number of times the configuration file was loaded.")?,
            )?,
            configuration_loading_error_total: reg(
                &r,
                IntCounter::new(
                    names::CONFIGURATION_LOADING_ERROR_TOTAL,
                    "Total number of times loading the configuration file failed.",
                )?,
            )?,
            session_terminals_available: reg(
                &r,
                IntGauge::new(
                    names::SESSION_TERMINALS_AVAILABLE,
                    "Terminal jobs that could still start now: free job slots under concurrent and limit.",
                )?,
            )?,
            session_terminals_active: reg(
                &r,
                IntGauge::new(names::SESSION_TERMINALS_ACTIVE, "Sessions with an interactive client connected.")?,
            )?,
            session_terminals_idle: reg(
                &r,
                IntGauge::new(names::SESSION_TERMINALS_IDLE, "Sessions of running jobs with no client connected.")?,
            )?,
            session_websocket_connections,
            session_websocket_connections_total,
            session_rejections_total,
            session_closes_total,
            session_operator_connections_total,
            session_bytes_total,
            session_duration_seconds: histogram(
                &r,
                names::SESSION_DURATION_SECONDS,
                "Lifetimes of terminal WebSocket connections.",
                &SESSION_DURATION_BUCKETS,
            )?,
            session_connect_seconds: histogram(
                &r,
                names::SESSION_CONNECT_SECONDS,
                "Time from the terminal upgrade request to the first terminal byte.",
                &SESSION_CONNECT_BUCKETS,
            )?,
            session_recordings_total,
            session_recording_errors_total,
            session_pending_connections: reg(
                &r,
                IntGauge::new(
                    names::SESSION_PENDING_CONNECTIONS,
                    "Connections in their TLS handshake or HTTP request (not yet a terminal).",
                )?,
            )?,
            session_max_pending: reg(
                &r,
                IntGauge::new(
                    names::SESSION_MAX_PENDING,
                    "Pending connections allowed per listener (max_pending).",
                )?,
            )?,
            session_max_pending_per_peer: reg(
                &r,
                IntGauge::new(
                    names::SESSION_MAX_PENDING_PER_PEER,
                    "Pending connections allowed per peer address and listener (max_pending_per_peer).",
                )?,
            )?,
            session_certificate_expiry: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        names::SESSION_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
                        "When the session server's TLS certificate expires (notAfter, Unix seconds), by source (cert_file or generated).",
                    ),
                    &[label::SOURCE],
                )?,
            )?,
            registry: r,
        };
        Ok(Arc::new(m))
    }

    /// The registry in Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        // Encoding only fails on families with inconsistent metrics, which
        // the typed vectors above cannot produce; never panic a scrape.
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
    }

    /// A log layer counting warning-and-above lines in `errors_total`.
    pub fn error_counter(&self) -> ErrorCounter {
        ErrorCounter::new(self.errors_total.clone())
    }

    /// One coordinator API call answered with `status` after `elapsed`.
    pub fn observe_api(
        &self,
        endpoint: &str,
        method: &str,
        status: u16,
        runner: &str,
        system_id: &str,
        elapsed: Duration,
    ) {
        let method = method.to_ascii_lowercase();
        let status_str = status.to_string();
        self.api_request_statuses_total
            .with_label_values(&[runner, system_id, endpoint, &status_str, &method])
            .inc();
        let class = format!("{}xx", status / 100);
        self.api_request_duration_seconds
            .with_label_values(&[runner, system_id, endpoint, &class, &method])
            .observe(elapsed.as_secs_f64());
    }

    /// A job was received and starts.
    pub fn job_started(&self, runner: &str, runner_name: &str, system_id: &str) {
        self.jobs_total
            .with_label_values(&[runner, runner_name, system_id])
            .inc();
    }

    /// A job ended after `duration`; `failure_reason` is GitLab's
    /// (`script_failure`, `runner_system_failure`, ...) when it failed.
    /// `mode` is upstream's job execution mode label.
    pub fn job_finished(
        &self,
        runner: &str,
        runner_name: &str,
        system_id: &str,
        mode: &str,
        duration: Duration,
        failure_reason: Option<&str>,
    ) {
        self.job_duration_seconds
            .with_label_values(&[runner, runner_name, system_id, mode])
            .observe(duration.as_secs_f64());
        if let Some(reason) = failure_reason {
            self.failed_jobs_total
                .with_label_values(&[runner, runner_name, reason, mode])
                .inc();
        }
    }

    /// The `concurrent` setting.
    pub fn set_concurrent(&self, n: usize) {
        self.concurrent.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A runner's `limit` setting.
    pub fn set_limit(&self, runner: &str, runner_name: &str, system_id: &str, n: usize) {
        self.limit
            .with_label_values(&[runner, runner_name, system_id])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A runner was fed to the workers (`ok`) or feeding it failed.
    pub fn worker_feed(&self, runner: &str, runner_name: &str, system_id: &str, ok: bool) {
        let labels = [runner, runner_name, system_id];
        self.worker_feeds_total.with_label_values(&labels).inc();
        if !ok {
            self.worker_feed_failures_total
                .with_label_values(&labels)
                .inc();
        }
    }

    /// A runner is disabled until `until` (Unix seconds), or not (`None`).
    pub fn set_unhealthy(
        &self,
        runner: &str,
        runner_name: &str,
        system_id: &str,
        until: Option<i64>,
    ) {
        let labels = [runner, runner_name, system_id];
        self.unhealthy
            .with_label_values(&labels)
            .set(i64::from(until.is_some()));
        self.unhealthy_until
            .with_label_values(&labels)
            .set(until.unwrap_or(0));
    }

    /// The session server's certificate (from `source`, a
    /// [`termgate::metrics::cert_source`]) expires at `not_after` (Unix
    /// seconds). The only sample of the family: a restart is the only way
    /// to change the certificate.
    pub fn set_session_certificate_expiry(&self, source: &str, not_after: i64) {
        self.session_certificate_expiry.reset();
        self.session_certificate_expiry
            .with_label_values(&[source])
            .set(not_after);
    }

    /// The configuration file was (re)loaded, successfully or not.
    pub fn configuration_loaded(&self, ok: bool) {
        if ok {
            self.configuration_loaded_total.inc();
        } else {
            self.configuration_loading_error_total.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builds::{BuildInfo, ProcessState};
    use std::time::Instant;

    pub(crate) fn job(id: u64, state: &'static str, stage: &str, es: &str) -> BuildInfo {
        BuildInfo {
            id,
            runner: "abcd1234".into(),
            runner_name: "r1".into(),
            system_id: "s_0123456789ab".into(),
            project_url: "https://gitlab.example.com/acme/webapp".into(),
            state,
            stage: stage.into(),
            executor_stage: es.into(),
            started: Instant::now(),
        }
    }

    fn new() -> (Arc<Metrics>, Builds, ProcessStateCell) {
        let builds = Builds::default();
        let state = ProcessStateCell::default();
        let m = Metrics::new(builds.clone(), state.clone(), "0.1.0", "abc123").unwrap();
        (m, builds, state)
    }

    /// Exercise every labelled family once so each renders.
    fn touch_all(m: &Metrics) {
        m.observe_api(
            "request_job",
            "POST",
            201,
            "abcd1234",
            "s_1",
            Duration::from_millis(120),
        );
        m.job_started("abcd1234", "r1", "s_1");
        m.job_finished(
            "abcd1234",
            "r1",
            "s_1",
            "legacy",
            Duration::from_secs(42),
            Some("script_failure"),
        );
        m.set_concurrent(4);
        m.set_limit("abcd1234", "r1", "s_1", 2);
        m.worker_feed("abcd1234", "r1", "s_1", false);
        m.configuration_loaded(true);
    }

    fn sample_lines<'a>(out: &'a str, family: &str) -> Vec<&'a str> {
        out.lines()
            .filter(|l| {
                l.strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    }

    #[test]
    fn every_family_rendered_with_help_and_labels() {
        let (m, builds, _) = new();
        builds.insert(job(1, "running", "step_script", "shell_run"));
        touch_all(&m);
        let out = m.render();
        let families = [
            names::JOBS,
            names::JOBS_TOTAL,
            names::CONCURRENT,
            names::LIMIT,
            names::ERRORS_TOTAL,
            names::FAILED_JOBS_TOTAL,
            names::API_REQUEST_STATUSES_TOTAL,
            names::API_REQUEST_DURATION_SECONDS,
            names::JOB_DURATION_SECONDS,
            names::VERSION_INFO,
            names::PROCESS_STATE_INFO,
            names::WORKER_FEEDS_TOTAL,
            names::WORKER_FEED_FAILURES_TOTAL,
            names::CONFIGURATION_LOADED_TOTAL,
            names::CONFIGURATION_LOADING_ERROR_TOTAL,
            names::SESSION_TERMINALS_AVAILABLE,
            names::SESSION_TERMINALS_ACTIVE,
            names::SESSION_TERMINALS_IDLE,
            names::SESSION_WEBSOCKET_CONNECTIONS,
            names::SESSION_WEBSOCKET_CONNECTIONS_TOTAL,
            names::SESSION_REJECTIONS_TOTAL,
            names::SESSION_CLOSES_TOTAL,
            names::SESSION_BYTES_TOTAL,
            names::SESSION_DURATION_SECONDS,
            names::SESSION_CONNECT_SECONDS,
            names::SESSION_RECORDINGS_TOTAL,
            names::SESSION_RECORDING_ERRORS_TOTAL,
            names::SESSION_PENDING_CONNECTIONS,
            names::SESSION_MAX_PENDING,
            names::SESSION_MAX_PENDING_PER_PEER,
        ];
        for f in families {
            assert!(out.contains(&format!("# HELP {f} ")), "no HELP for {f}");
            assert!(out.contains(&format!("# TYPE {f} ")), "no TYPE for {f}");
        }
        #[cfg(target_os = "linux")]
        {
            assert!(out.contains(names::PROCESS_CPU_SECONDS_TOTAL));
            assert!(out.contains(names::PROCESS_RESIDENT_MEMORY_BYTES));
            assert!(out.contains(names::PROCESS_START_TIME_SECONDS));
            assert!(out.contains(names::PROCESS_OPEN_FDS));
            assert!(out.contains(names::PROCESS_MAX_FDS));
        }
        assert!(out.contains(
            "gitlab_runner_jobs{executor_stage=\"shell_run\",runner=\"abcd1234\",runner_name=\"r1\",\
             stage=\"step_script\",state=\"running\",system_id=\"s_0123456789ab\"} 1"
        ));
        assert!(out.contains(
            "gitlab_runner_api_request_statuses_total{endpoint=\"request_job\",method=\"post\",\
             runner=\"abcd1234\",status=\"201\",system_id=\"s_1\"} 1"
        ));
        assert!(out.contains(
            "gitlab_runner_api_request_duration_seconds_bucket{endpoint=\"request_job\",\
             method=\"post\",runner=\"abcd1234\",status_class=\"2xx\",system_id=\"s_1\",le=\"0.25\"} 1"
        ));
        assert!(out.contains(
            "gitlab_runner_failed_jobs_total{failure_reason=\"script_failure\",mode=\"legacy\",\
             runner=\"abcd1234\",runner_name=\"r1\"} 1"
        ));
        assert!(out.contains(
            "gitlab_runner_job_duration_seconds_bucket{mode=\"legacy\",runner=\"abcd1234\",\
             runner_name=\"r1\",system_id=\"s_1\",le=\"60\"} 1"
        ));
        assert!(out.contains("gitlab_runner_concurrent 4"));
        for level in ERROR_LEVELS {
            assert!(out.contains(&format!(
                "gitlab_runner_errors_total{{level=\"{level}\"}} 0"
            )));
        }
        assert_eq!(
            sample_lines(&out, names::SESSION_REJECTIONS_TOTAL).len(),
            13
        );
        assert_eq!(sample_lines(&out, names::SESSION_CLOSES_TOTAL).len(), 11);
        assert_eq!(
            sample_lines(&out, names::SESSION_OPERATOR_CONNECTIONS_TOTAL).len(),
            3
        );
        assert_eq!(sample_lines(&out, names::SESSION_RECORDINGS_TOTAL).len(), 2);
        assert_eq!(
            sample_lines(&out, names::SESSION_RECORDING_ERRORS_TOTAL).len(),
            2
        );
        let version = sample_lines(&out, names::VERSION_INFO);
        assert_eq!(version.len(), 1);
        assert!(version[0].contains("name=\"termgate-runner\""));
        assert!(version[0].contains("version=\"0.1.0\""));
        assert!(version[0].ends_with(" 1"));

        // Label names inside every sample come out sorted; a histogram's
        // `le` comes last, as with Go's client.
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let Some(start) = line.find('{') else {
                continue;
            };
            let Some(end) = line.rfind('}') else { continue };
            let keys: Vec<&str> = line[start + 1..end]
                .split("\",")
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
                .filter(|k| *k != "le")
                .collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(keys, sorted, "{line}");
        }
    }

    #[test]
    fn certificate_expiry_has_one_sample_once_set() {
        let (m, _, _) = new();
        let family = names::SESSION_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS;
        // No session server, no sample: an alert on `expiry - time()` must
        // not see a 0 (1970) for runners without one.
        assert!(sample_lines(&m.render(), family).is_empty());
        m.set_session_certificate_expiry("generated", 1_700_000_000);
        m.set_session_certificate_expiry("cert_file", 1_800_000_000);
        let out = m.render();
        assert_eq!(
            sample_lines(&out, family),
            [format!("{family}{{source=\"cert_file\"}} 1800000000")]
        );
    }

    #[test]
    fn jobs_gauge_follows_a_job_through_its_states() {
        let (m, builds, _) = new();
        assert!(sample_lines(&m.render(), names::JOBS).is_empty());
        builds.insert(job(7, "running", "prepare_executor", "prepare"));
        let out = m.render();
        let lines = sample_lines(&out, names::JOBS);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("stage=\"prepare_executor\""),
            "{}",
            lines[0]
        );
        builds.update(7, |b| {
            b.stage = "step_script".into();
            b.executor_stage = "shell_run".into();
        });
        builds.insert(job(8, "running", "step_script", "shell_run"));
        let out = m.render();
        let lines = sample_lines(&out, names::JOBS);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("stage=\"step_script\"") && lines[0].ends_with(" 2"));
        builds.update(7, |b| b.state = "success");
        let out = m.render();
        let lines = sample_lines(&out, names::JOBS);
        assert_eq!(lines.len(), 2);
        assert!(lines
            .iter()
            .any(|l| l.contains("state=\"success\"") && l.ends_with(" 1")));
        builds.remove(7);
        builds.remove(8);
        assert!(sample_lines(&m.render(), names::JOBS).is_empty());
    }

    #[test]
    fn process_state_info_at_scrape_time() {
        let (m, _, state) = new();
        let out = m.render();
        assert!(out.contains("gitlab_runner_process_state_info{state=\"starting\"} 1"));
        assert!(out.contains("gitlab_runner_process_state_info{state=\"running\"} 0"));
        state.set(ProcessState::GracefulShutdown);
        let out = m.render();
        assert!(out.contains("gitlab_runner_process_state_info{state=\"graceful-shutdown\"} 1"));
        assert!(out.contains("gitlab_runner_process_state_info{state=\"starting\"} 0"));
        assert_eq!(sample_lines(&out, names::PROCESS_STATE_INFO).len(), 4);
    }

    #[test]
    fn errors_counter_from_log_layer() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let (m, _, _) = new();
        let sub = tracing_subscriber::registry().with(m.error_counter());
        tracing::subscriber::with_default(sub, || {
            tracing::warn!("w");
            tracing::error!(fatal = true, "f");
        });
        let out = m.render();
        assert!(out.contains("gitlab_runner_errors_total{level=\"warning\"} 1"));
        assert!(out.contains("gitlab_runner_errors_total{level=\"fatal\"} 1"));
        assert!(out.contains("gitlab_runner_errors_total{level=\"error\"} 0"));
    }

    /// `promtool check metrics` must accept the output (termgate.md §5).
    /// Skipped when promtool is absent unless `TERMGATE_REQUIRE_PROMTOOL=1`.
    #[test]
    fn promtool_check_metrics() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let (m, builds, _) = new();
        builds.insert(job(1, "running", "step_script", "shell_run"));
        touch_all(&m);
        m.session_duration_seconds.observe(12.0);
        m.session_connect_seconds.observe(0.02);
        let text = m.render();
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let required = std::env::var("TERMGATE_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "TERMGATE_REQUIRE_PROMTOOL=1 but promtool is not on PATH"
                );
                eprintln!("promtool not on PATH: skipping");
                return;
            }
            Err(e) => panic!("spawning promtool: {e}"),
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "promtool failed:\n{report}\n---\n{text}"
        );
        assert!(report.trim().is_empty(), "promtool complained:\n{report}");
    }
}
