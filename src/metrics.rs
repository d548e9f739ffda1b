//! Metric names and label values shared by the runner (which exports them)
//! and the console (which reads them). Upstream gitlab-runner names are kept
//! where they exist; the `gitlab_runner_session_*` family is termgate's own.

pub const JOBS: &str = "gitlab_runner_jobs";
pub const JOBS_TOTAL: &str = "gitlab_runner_jobs_total";
pub const CONCURRENT: &str = "gitlab_runner_concurrent";
pub const LIMIT: &str = "gitlab_runner_limit";
pub const ERRORS_TOTAL: &str = "gitlab_runner_errors_total";
pub const FAILED_JOBS_TOTAL: &str = "gitlab_runner_failed_jobs_total";
pub const API_REQUEST_STATUSES_TOTAL: &str = "gitlab_runner_api_request_statuses_total";
pub const API_REQUEST_DURATION_SECONDS: &str = "gitlab_runner_api_request_duration_seconds";
pub const JOB_DURATION_SECONDS: &str = "gitlab_runner_job_duration_seconds";
pub const VERSION_INFO: &str = "gitlab_runner_version_info";
pub const PROCESS_STATE_INFO: &str = "gitlab_runner_process_state_info";
pub const REQUEST_CONCURRENCY: &str = "gitlab_runner_request_concurrency";
pub const WORKER_FEEDS_TOTAL: &str = "gitlab_runner_worker_feeds_total";
pub const WORKER_FEED_FAILURES_TOTAL: &str = "gitlab_runner_worker_feed_failures_total";
pub const CONFIGURATION_LOADED_TOTAL: &str = "gitlab_runner_configuration_loaded_total";
pub const CONFIGURATION_LOADING_ERROR_TOTAL: &str =
    "gitlab_runner_configuration_loading_error_total";
/// termgate: 1 while a runner is disabled after `unhealthy_requests_limit`
/// failed job requests in a row (for `unhealthy_interval`), else 0.
pub const UNHEALTHY: &str = "gitlab_runner_unhealthy";
/// termgate: when a disabled runner requests jobs again (Unix seconds);
/// 0 while it is not disabled.
pub const UNHEALTHY_UNTIL_TIMESTAMP_SECONDS: &str =
    "gitlab_runner_unhealthy_until_timestamp_seconds";

pub const SESSION_TERMINALS_AVAILABLE: &str = "gitlab_runner_session_terminals_available";
pub const SESSION_TERMINALS_ACTIVE: &str = "gitlab_runner_session_terminals_active";
pub const SESSION_TERMINALS_IDLE: &str = "gitlab_runner_session_terminals_idle";
pub const SESSION_WEBSOCKET_CONNECTIONS: &str = "gitlab_runner_session_websocket_connections";
pub const SESSION_WEBSOCKET_CONNECTIONS_TOTAL: &str =
    "gitlab_runner_session_websocket_connections_total";
pub const SESSION_REJECTIONS_TOTAL: &str = "gitlab_runner_session_rejections_total";
pub const SESSION_CLOSES_TOTAL: &str = "gitlab_runner_session_closes_total";
pub const SESSION_BYTES_TOTAL: &str = "gitlab_runner_session_bytes_total";
pub const SESSION_DURATION_SECONDS: &str = "gitlab_runner_session_duration_seconds";
pub const SESSION_CONNECT_SECONDS: &str = "gitlab_runner_session_connect_seconds";
/// Operator connections by `mode` (observe, join, shell).
pub const SESSION_OPERATOR_CONNECTIONS_TOTAL: &str =
    "gitlab_runner_session_operator_connections_total";
/// Recordings started, and recordings that lost data or failed, by `mode`
/// (`interactive` for the user's seat).
pub const SESSION_RECORDINGS_TOTAL: &str = "gitlab_runner_session_recordings_total";
pub const SESSION_RECORDING_ERRORS_TOTAL: &str = "gitlab_runner_session_recording_errors_total";
/// Connections not yet serving a terminal (TLS handshake or HTTP request
/// pending), over every listener of the session server.
pub const SESSION_PENDING_CONNECTIONS: &str = "gitlab_runner_session_pending_connections";
/// `[session_server] max_pending`: pending connections per listener.
pub const SESSION_MAX_PENDING: &str = "gitlab_runner_session_max_pending";
/// `[session_server] max_pending_per_peer`: pending connections of one peer
/// address (IPv6: one /64) per listener.
pub const SESSION_MAX_PENDING_PER_PEER: &str = "gitlab_runner_session_max_pending_per_peer";
/// When the session server's certificate expires (its `notAfter`, Unix
/// seconds), by `source` ([`cert_source`]); absent without a session server.
pub const SESSION_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS: &str =
    "gitlab_runner_session_certificate_expiry_timestamp_seconds";

pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";
/// Open file descriptors (Linux; upstream exports it too).
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// The soft open-files limit (Linux; upstream exports it too).
pub const PROCESS_MAX_FDS: &str = "process_max_fds";

/// Label names.
pub mod label {
    pub const RUNNER: &str = "runner";
    pub const RUNNER_NAME: &str = "runner_name";
    pub const SYSTEM_ID: &str = "system_id";
    pub const STATE: &str = "state";
    pub const STAGE: &str = "stage";
    pub const EXECUTOR_STAGE: &str = "executor_stage";
    pub const LEVEL: &str = "level";
    pub const FAILURE_REASON: &str = "failure_reason";
    pub const MODE: &str = "mode";
    pub const ENDPOINT: &str = "endpoint";
    pub const STATUS: &str = "status";
    pub const STATUS_CLASS: &str = "status_class";
    pub const METHOD: &str = "method";
    pub const ROLE: &str = "role";
    pub const REASON: &str = "reason";
    pub const DIRECTION: &str = "direction";
    /// Where the session server's certificate comes from ([`super::cert_source`]).
    pub const SOURCE: &str = "source";
}

/// `source` of `gitlab_runner_session_certificate_expiry_timestamp_seconds`.
pub mod cert_source {
    /// `[session_server] cert_file`: the operator renews it.
    pub const CERT_FILE: &str = "cert_file";
    /// The runner's own self-signed certificate (kept beside `config.toml`,
    /// replaced at a start within `RENEW_WITHIN_DAYS` of its expiry).
    pub const GENERATED: &str = "generated";
}

/// Buckets of `gitlab_runner_job_duration_seconds` (upstream's).
pub const JOB_DURATION_BUCKETS: [f64; 10] = [
    30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 18000.0, 36000.0,
];
/// Buckets of `gitlab_runner_api_request_duration_seconds` (upstream's).
pub const API_REQUEST_DURATION_BUCKETS: [f64; 9] =
    [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// API endpoints as the `endpoint` label names them.
pub mod endpoint {
    pub const REQUEST_JOB: &str = "request_job";
    pub const UPDATE_JOB: &str = "update_job";
    pub const PATCH_TRACE: &str = "patch_trace";
    pub const REGISTER_RUNNER: &str = "register_runner";
    pub const VERIFY_RUNNER: &str = "verify_runner";
    pub const UNREGISTER_RUNNER: &str = "unregister_runner";
    pub const RESET_TOKEN: &str = "reset_token";
}

/// Job stages as the `stage` label names them (upstream's).
pub mod stage {
    pub const PREPARE_EXECUTOR: &str = "prepare_executor";
    pub const PREPARE_SCRIPT: &str = "prepare_script";
    pub const GET_SOURCES: &str = "get_sources";
    pub const STEP_SCRIPT: &str = "step_script";
    pub const AFTER_SCRIPT: &str = "after_script";
    pub const CLEANUP_FILE_VARIABLES: &str = "cleanup_file_variables";
    /// termgate: the job is held open because a terminal is connected.
    pub const TERMINAL_HOLD: &str = "terminal_hold";
}

/// Executor stages as the `executor_stage` label names them (upstream's).
pub mod executor_stage {
    pub const CREATED: &str = "created";
    pub const PREPARE: &str = "prepare";
    pub const FINISH: &str = "finish";
    pub const CLEANUP: &str = "cleanup";
    pub const SHELL_RUN: &str = "shell_run";
    pub const DOCKER_PREPARE: &str = "docker_prepare";
    pub const DOCKER_RUN: &str = "docker_run";
    pub const DOCKER_CLEANUP: &str = "docker_cleanup";
    pub const DOCKER_PULLING_IMAGE: &str = "docker_pulling_image";
}

/// Session close reasons (`gitlab_runner_session_closes_total{reason}`).
pub mod close_reason {
    pub const CLIENT_LEFT: &str = "client_left";
    pub const JOB_FINISHED: &str = "job_finished";
    pub const JOB_CANCELLED: &str = "job_cancelled";
    pub const SESSION_TIMEOUT: &str = "session_timeout";
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    pub const RUNNER_SHUTDOWN: &str = "runner_shutdown";
    pub const REPLACED: &str = "replaced";
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// The shell ended by itself (`exit`, Ctrl-D).
    pub const TERMINAL_EXITED: &str = "terminal_exited";
    /// An observer that stopped reading, dropped so the seat never waits.
    pub const TOO_SLOW: &str = "too_slow";
    pub const ERROR: &str = "error";
}

/// Session rejection reasons (`gitlab_runner_session_rejections_total{reason}`).
pub mod rejection_reason {
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NOT_FOUND: &str = "not_found";
    pub const NOT_WEBSOCKET: &str = "not_websocket";
    pub const LOCKED: &str = "locked";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const CONNECT_FAILED: &str = "connect_failed";
    /// Every pending place is taken (by authenticated connections only; the
    /// others are evicted instead), or operator API: `max_observers` (503).
    pub const OVER_LIMIT: &str = "over_limit";
    /// The peer holds its whole `max_pending_per_peer` share: its new
    /// connection is closed on accept.
    pub const PEER_OVER_LIMIT: &str = "peer_over_limit";
    /// The oldest unfinished connection, closed to make room for a new one
    /// when every pending place was taken.
    pub const EVICTED: &str = "evicted";
    /// Operator API: too many failed logins from this peer (429).
    pub const THROTTLED: &str = "throttled";
    /// Operator API: the operator's role does not allow the mode (403).
    pub const FORBIDDEN: &str = "forbidden";
    /// Operator API: join or shell without `X-Termgate-Reason` (400).
    pub const REASON_REQUIRED: &str = "reason_required";
    /// Operator API: join with nobody at the interactive seat (409).
    pub const NO_TERMINAL: &str = "no_terminal";
}
