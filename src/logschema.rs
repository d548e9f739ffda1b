//! The log event schema: field names and event names of termgate's JSON log
//! lines, and the messages the runner logs (upstream gitlab-runner's wording
//! where upstream has the message; the console recognises those).
//! Keys of a JSON line are sorted; `level` is a [`Level`] as logrus spells it.

pub const LEVEL: &str = "level";
pub const MSG: &str = "msg";
pub const TIME: &str = "time";
pub const ERROR: &str = "error";
pub const RUNNER: &str = "runner";
pub const RUNNER_NAME: &str = "runner_name";
pub const JOB: &str = "job";
pub const PROJECT: &str = "project";
pub const CORRELATION_ID: &str = "correlation_id";
pub const EVENT: &str = "event";
pub const REASON: &str = "reason";
pub const ROLE: &str = "role";
pub const PEER: &str = "peer";
pub const DURATION_S: &str = "duration_s";
pub const BYTES_IN: &str = "bytes_in";
pub const BYTES_OUT: &str = "bytes_out";
pub const FAILURE_REASON: &str = "failure_reason";
pub const EXIT_CODE: &str = "exit_code";
pub const JOB_STATUS: &str = "job_status";
pub const BUILDS: &str = "builds";
pub const MAX_BUILDS: &str = "max_builds";
/// HTTP status of a coordinator answer.
pub const STATUS: &str = "status";
pub const REPO_URL: &str = "repo_url";
pub const HEADER_VALUE: &str = "header_value";
/// Trace bytes the coordinator has, and the trace's size.
pub const SENT: &str = "sent";
pub const SIZE: &str = "size";
/// Why the coordinator did not take a job's acknowledgement.
pub const OUTCOME: &str = "outcome";
pub const ADDRESS: &str = "address";
pub const SIGNAL: &str = "signal";
pub const SHUTDOWN_TIMEOUT_S: &str = "shutdown_timeout_s";
/// The open-files limit before and after raising it.
pub const FROM: &str = "from";
pub const TO: &str = "to";
/// Session server and terminal shells.
pub const ADVERTISE_ADDRESS: &str = "advertise_address";
pub const COLS: &str = "cols";
pub const ROWS: &str = "rows";
pub const CONTAINERS: &str = "containers";
pub const NETWORKS: &str = "networks";
pub const VOLUMES: &str = "volumes";
pub const CWD: &str = "cwd";
pub const PID: &str = "pid";
pub const SHELL: &str = "shell";
pub const PROTOCOL: &str = "protocol";
pub const MAX_PENDING: &str = "max_pending";
pub const REFUSED: &str = "refused";
/// `[session_server] max_pending_per_peer` (on pending-limit warnings).
pub const MAX_PENDING_PER_PEER: &str = "max_pending_per_peer";
pub const URI: &str = "uri";
// operator access
pub const OPERATOR: &str = "operator";
pub const MODE: &str = "mode";
pub const SESSION: &str = "session";
pub const FINGERPRINT: &str = "fingerprint";
pub const RECORDING: &str = "recording";
pub const PATH: &str = "path";
/// Why an operator's connection closed (`reason` is the operator's own).
pub const CLOSE_REASON: &str = "close_reason";
/// How many files (recordings deleted by the pruner).
pub const FILES: &str = "files";
/// A runner's failed job requests in a row, and its `unhealthy_requests_limit`
/// (upstream's fields on its "is unhealthy" line).
pub const UNHEALTHY_REQUESTS: &str = "unhealthy_requests";
pub const UNHEALTHY_REQUESTS_LIMIT: &str = "unhealthy_requests_limit";
/// When a disabled runner requests jobs again (RFC 3339, UTC).
pub const RESUMES_AT: &str = "resumes_at";

/// Every field name a termgate JSON log line may carry (the console's
/// contract test checks a real runner's lines against this list).
pub const FIELDS: &[&str] = &[
    LEVEL,
    MSG,
    TIME,
    ERROR,
    RUNNER,
    RUNNER_NAME,
    JOB,
    PROJECT,
    CORRELATION_ID,
    EVENT,
    REASON,
    ROLE,
    PEER,
    DURATION_S,
    BYTES_IN,
    BYTES_OUT,
    FAILURE_REASON,
    EXIT_CODE,
    JOB_STATUS,
    BUILDS,
    MAX_BUILDS,
    STATUS,
    REPO_URL,
    HEADER_VALUE,
    SENT,
    SIZE,
    OUTCOME,
    ADDRESS,
    SIGNAL,
    SHUTDOWN_TIMEOUT_S,
    FROM,
    TO,
    ADVERTISE_ADDRESS,
    COLS,
    ROWS,
    CONTAINERS,
    NETWORKS,
    VOLUMES,
    CWD,
    PID,
    SHELL,
    PROTOCOL,
    MAX_PENDING,
    REFUSED,
    MAX_PENDING_PER_PEER,
    URI,
    OPERATOR,
    MODE,
    SESSION,
    FINGERPRINT,
    RECORDING,
    PATH,
    CLOSE_REASON,
    FILES,
    UNHEALTHY_REQUESTS,
    UNHEALTHY_REQUESTS_LIMIT,
    RESUMES_AT,
];

/// A log level, ordered from least to most severe, spelled as logrus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
    Panic,
}

impl Level {
    /// logrus `Level.String()` (upstream spells `warning`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
            Level::Panic => "panic",
        }
    }

    /// Any spelling runners use (`warn`/`warning`, `err`, `trace`), any case.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warning,
            "error" | "err" => Level::Error,
            "fatal" => Level::Fatal,
            "panic" => Level::Panic,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_order() {
        for name in ["debug", "info", "warning", "error", "fatal", "panic"] {
            assert_eq!(Level::parse(name).map(Level::as_str), Some(name));
        }
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert!(Level::Warning < Level::Error && Level::Error < Level::Panic);
        assert_eq!(Level::parse("loud"), None);
    }
}

/// `event` values of session lifecycle lines.
pub mod event {
    pub const TERMINAL_CONNECTED: &str = "terminal_connected";
    pub const TERMINAL_DISCONNECTED: &str = "terminal_disconnected";
    pub const TERMINAL_REJECTED: &str = "terminal_rejected";
    pub const OPERATOR_ATTACHED: &str = "operator_attached";
    pub const OPERATOR_DETACHED: &str = "operator_detached";
}

/// Messages the runner logs: upstream's wording where upstream has the
/// message. A message with a variable part is logged as the constant
/// followed by that part (`…_PREFIX`), or through a function here.
pub mod msg {
    // Job requests.
    pub const CHECKING_FOR_JOBS_RECEIVED: &str = "Checking for jobs... received";
    pub const CHECKING_FOR_JOBS_NO_CONTENT: &str = "Checking for jobs...no content";
    pub const CHECKING_FOR_JOBS_FORBIDDEN: &str = "Checking for jobs... forbidden";
    pub const CHECKING_FOR_JOBS_CLIENT_ERROR: &str = "Checking for jobs... client error";
    pub const CHECKING_FOR_JOBS_FAILED: &str = "Checking for jobs... failed";
    pub const CHECKING_FOR_JOBS_UNAVAILABLE: &str =
        "Checking for jobs... GitLab instance currently unavailable";

    // Job updates and trace patches.
    pub const SUBMITTING_JOB_OK: &str = "Submitting job to coordinator...ok";
    pub const SUBMITTING_JOB_ACCEPTED: &str =
        "Submitting job to coordinator...accepted, but not yet completed";
    pub const SUBMITTING_JOB_TRACE_VALIDATION_FAILED: &str =
        "Submitting job to coordinator...trace validation failed";
    pub const SUBMITTING_JOB_CLIENT_ERROR: &str = "Submitting job to coordinator... client error";
    pub const SUBMITTING_JOB_NOT_FOUND: &str = "Submitting job to coordinator... not found";
    pub const SUBMITTING_JOB_FORBIDDEN: &str = "Submitting job to coordinator... forbidden";
    pub const SUBMITTING_JOB_JOB_FAILED: &str = "Submitting job to coordinator... job failed";
    pub const SUBMITTING_JOB_FAILED: &str = "Submitting job to coordinator... failed";
    pub const APPENDING_TRACE_OK: &str = "Appending trace to coordinator...ok";
    pub const APPENDING_TRACE_RANGE_MISMATCH: &str =
        "Appending trace to coordinator... range mismatch";
    pub const APPENDING_TRACE_CLIENT_ERROR: &str = "Appending trace to coordinator... client error";
    pub const APPENDING_TRACE_JOB_FAILED: &str = "Appending trace to coordinator... job failed";
    pub const APPENDING_TRACE_FAILED: &str = "Appending trace to coordinator... failed";
    pub const TRACE_UPDATE_INTERVAL_INVALID: &str =
        "Failed to parse \"X-GitLab-Trace-Update-Interval\" header";
    pub const UPDATING_JOB_OK: &str = "Updating job... ok";
    pub const FINAL_UPDATE_GAVE_UP: &str = "Job final update failed: gave up";

    // Jobs.
    pub const JOB_SUCCEEDED: &str = "Job succeeded";
    pub const JOB_FAILED_PREFIX: &str = "Job failed: ";
    pub const JOB_FAILED_SYSTEM_PREFIX: &str = "Job failed (system failure): ";
    pub const JOB_NOT_ACKNOWLEDGED: &str =
        "Job was not acknowledged by the coordinator, dropping it";
    pub const TRACE_UPLOADER_FAILED: &str = "trace uploader task failed";
    pub const JOB_TASK_PANICKED: &str = "job task panicked";
    pub const API_CLIENT_FAILED: &str = "Failed to create API client, runner skipped";

    /// Upstream's `Runner "<url><token>" is unhealthy and will be disabled for <pause> seconds!`.
    pub fn runner_unhealthy(url: &str, short_token: &str, pause: &str) -> String {
        format!(
            "Runner \"{url}{short_token}\" is unhealthy and will be disabled for {pause} seconds!"
        )
    }

    /// termgate: the warning beside upstream's [`runner_unhealthy`] line,
    /// with `runner`, `runner_name` and `resumes_at` as fields.
    pub const RUNNER_DISABLED: &str =
        "Runner disabled after failed job requests in a row, no job requests until resumes_at";
    /// The disabled runner's pause is over: it requests jobs again.
    pub const RUNNER_RESUMED: &str = "Runner resumed requesting jobs";

    // The process: start, reload, stop.
    /// Upstream's first line of a run: `Starting multi-runner from <config>...`.
    pub const STARTING_MULTI_RUNNER_PREFIX: &str = "Starting multi-runner from ";
    pub const CONFIGURATION_LOADED: &str = "Configuration loaded";
    pub const CONFIG_RELOAD_FAILED: &str = "Failed to load config, keeping the previous one";
    /// A reload to a config without `[[runners]]` (a truncated file, say):
    /// applied, as upstream does, but said.
    pub const CONFIG_WITHOUT_RUNNERS: &str =
        "Reloaded config has no [[runners]]: job pickup stops until runners are added";
    pub const OPEN_FILES_LIMIT_RAISED: &str = "Raised the open files limit";
    pub const OPEN_FILES_LIMIT_NOT_RAISED: &str = "Could not raise the open files limit";
    pub const METRICS_SERVER_LISTENING: &str = "Metrics server listening";
    pub const SESSION_SERVER_LISTENING: &str = "Session server listening";
    pub const SESSION_SERVER_DISABLED: &str =
        "[session_server].listen_address not defined, session endpoints disabled";
    pub const METRICS_DISABLED: &str =
        "listen_address not defined, metrics & debug endpoints disabled";
    pub const GRACEFUL_SHUTDOWN: &str = "Starting graceful shutdown, waiting for builds to finish";
    pub const FORCEFUL_SHUTDOWN: &str = "Starting forceful shutdown";
    pub const SHUTDOWN_TIMED_OUT: &str = "shutdown timed out";
    pub const GRACEFUL_SHUTDOWN_NOT_FINISHED: &str = "Graceful shutdown not finished properly. To gracefully clean up running plugins please use SIGQUIT (ctrl-\\) instead of SIGINT (ctrl-c)";
    pub const FORCED_EXIT: &str = "Forced exit with a second stop signal";
    pub const ALL_WORKERS_STOPPED: &str = "All workers stopped.";
    pub const CAN_EXIT_NOW: &str = "Can exit now!";
    pub const COMMAND_FAILED: &str = "command failed";
    /// A reload changed `sentry_dsn`: the runner keeps reporting to the DSN
    /// it started with (the Sentry client is set up once per process).
    pub const SENTRY_DSN_NEEDS_RESTART: &str =
        "sentry_dsn changed: still reporting to the previous one until the runner is restarted";

    // register, verify, unregister.
    pub const REGISTERING_RUNNER_SUCCEEDED: &str = "Registering runner... succeeded";
    pub const REGISTRATION_FLAGS_IGNORED: &str = "--tag-list, --run-untagged and --locked are ignored with an authentication token: set them where the runner was created";
    pub const RUNNER_REGISTERED: &str = "Runner registered successfully. Feel free to start it, but if it's running already the config should be automatically reloaded!";
    pub const VERIFYING_RUNNER_VALID: &str = "Verifying runner... is valid";
    pub const VERIFYING_RUNNER_NOT_VALID: &str = "Verifying runner... is not valid";
    pub const VERIFYING_RUNNER_FAILED: &str = "Verifying runner... failed";
    pub const UNREGISTERING_SUCCEEDED: &str = "Unregistering runner from GitLab succeeded";
    pub const UNREGISTERING_NOT_FOUND: &str =
        "Unregistering runner from GitLab: runner not found, removing it from the config";
    pub const UNREGISTERING_FAILED: &str = "Unregistering runner from GitLab failed";

    // Session server and terminals.
    pub const AUTHORIZATION_NOT_VALID: &str = "Authorization header is not valid";
    pub const NOT_WEBSOCKET: &str = "Request is not a web socket connection";
    pub const TERMINAL_NOT_SET: &str = "Interactive terminal not set";
    pub const CONNECT_FAILED: &str = "Failed to connect to terminal";
    pub const ALREADY_CONNECTED: &str = "Terminal already connected, revoking connection";
    pub const CLOSED_ACTIVE: &str = "Closed active terminal connection";
    pub const SESSION_NOT_FOUND: &str = "Failed to find session by URL";
    pub const MUX_NOT_FOUND: &str = "Mux handler not found";
    pub const PROXY_NOT_FOUND: &str = "Proxy not found";
    pub const WEBSOCKET_UPGRADE_FAILED: &str = "Terminal: upgrading client to websocket failed";
    pub const TERMINAL_CONNECTED: &str = "Terminal connected";
    pub const TERMINAL_DISCONNECTED: &str = "Terminal disconnected";
    pub const TERMINAL_REJECTED: &str = "Terminal connection rejected";
    pub const TERMINAL_RESIZE_FAILED: &str = "Terminal resize failed";
    pub const SESSION_ACCEPT_FAILED: &str = "Session server accept failed";
    pub const SESSION_USER_TIMEOUT_FAILED: &str = "Setting TCP_USER_TIMEOUT failed";
    pub const SESSION_TLS_HANDSHAKE_FAILED: &str = "Session server TLS handshake failed";
    pub const SESSION_TLS_HANDSHAKE_TIMED_OUT: &str = "Session server TLS handshake timed out";
    pub const SESSION_OVER_LIMIT: &str =
        "Session server: too many connections waiting, refusing new ones";
    /// Every pending place was taken: the oldest unfinished connections were
    /// closed to let new ones in (`refused` = how many since the last line).
    pub const SESSION_PENDING_EVICTED: &str =
        "Session server: too many connections waiting, closing the oldest unfinished ones";
    /// One peer's connections waiting exceed its `max_pending_per_peer`
    /// share: its new ones are refused (`refused` = since the last line).
    pub const SESSION_PEER_OVER_LIMIT: &str =
        "Session server: too many connections waiting from one address, refusing its new ones";
    /// Repeated authorization failures from one peer, told once per interval
    /// (`refused` = failures since the last line; the first is logged in full).
    pub const AUTHORIZATION_FAILURES_REPEATED: &str =
        "Repeated authorization failures from this address";
    pub const SESSION_CONNECTION_ERROR: &str = "Session server connection error";
    pub const SESSION_ADDRESS_INVALID: &str = "Failed to parse session address";

    // Operator access (observe, join, shell), recordings, the certificate.
    pub const OPERATOR_ATTACHED: &str = "Operator attached";
    pub const OPERATOR_DETACHED: &str = "Operator detached";
    pub const OPERATOR_API_LISTENING: &str = "Operator API listening";
    pub const OPERATOR_API_WITHOUT_OPERATORS: &str =
        "[session_server] operator_listen_address is set but operators_file is not: the operator API stays off";
    pub const OPERATORS_LOADED: &str = "Operators loaded";
    pub const OPERATORS_FILE_MISSING: &str =
        "Operators file not found, no operator can authenticate";
    pub const OPERATORS_RELOAD_FAILED: &str =
        "Failed to load operators file, keeping the previous operators";
    pub const OPERATOR_THROTTLED: &str =
        "Too many failed operator authentications, throttling the peer";
    pub const RECORDING_STARTED: &str = "Recording terminal";
    pub const RECORDING_FAILED: &str = "Recording failed";
    pub const RECORDINGS_PRUNED: &str = "Old recordings deleted";
    pub const RECORDINGS_PRUNE_FAILED: &str = "Deleting old recordings failed";
    pub const SESSION_CERT_GENERATED: &str = "Session server certificate generated";
    pub const SESSION_CERT_REUSED: &str = "Session server certificate reused";
    pub const SESSION_CERT_LOADED: &str = "Session server certificate loaded from cert_file";
    pub const SESSION_CERT_UNUSABLE: &str =
        "Saved session server certificate unusable, generating a new one";
    pub const SESSION_CERT_NOT_SAVED: &str =
        "Session server certificate could not be saved, using it for this run only";

    // Terminal shells (shell executor) and the Docker executor.
    pub const SHELL_STARTED: &str = "terminal shell started";
    pub const SHELL_WAIT_FAILED: &str = "waiting for terminal shell";
    pub const SHELL_REAP_FAILED: &str = "reaping terminal shell";
    pub const SHELL_SIGNAL_FAILED: &str = "signalling a terminal's session";
    pub const DOCKER_PREPARE_FAILED_PREFIX: &str = "Preparing the Docker executor failed: ";
    pub const DOCKER_CLEANUP_FAILED_PREFIX: &str =
        "Docker cleanup failed (removed at the next runner start): ";
    pub const DOCKER_STALE_SKIPPED_PREFIX: &str = "Skipping stale Docker cleanup: ";
    pub const DOCKER_STALE_REMOVED: &str = "Removed stale Docker resources of an earlier run";
    pub const DOCKER_STALE_FAILED_PREFIX: &str = "Stale Docker cleanup failed: ";
    pub const DOCKER_TERMINAL_EXEC_FAILED: &str = "docker terminal exec failed";

    /// `Docker step <step> failed: <error>`.
    pub fn docker_step_failed(step: &str, error: &dyn std::fmt::Display) -> String {
        format!("Docker step {step} failed: {error}")
    }
}

// console parser
// What termgate-console's log parser (`logs::parse`) recognises besides the
// field names above ([`LEVEL`], [`MSG`], [`TIME`]): how upstream
// gitlab-runner and its libraries spell levels in their text formats.

/// Level prefixes of upstream's `runner` log format (`WARNING: msg  k=v`);
/// a line without one is info.
pub const RUNNER_FORMAT_LEVEL_PREFIXES: [(&str, Level); 4] = [
    ("WARNING: ", Level::Warning),
    ("ERROR: ", Level::Error),
    ("FATAL: ", Level::Fatal),
    ("PANIC: ", Level::Panic),
];

/// logrus' four-letter levels of its text format on a TTY (`INFO[0000] msg`).
pub const LOGRUS_TTY_LEVELS: [(&str, Level); 7] = [
    ("INFO", Level::Info),
    ("WARN", Level::Warning),
    ("ERRO", Level::Error),
    ("FATA", Level::Fatal),
    ("PANI", Level::Panic),
    ("DEBU", Level::Debug),
    ("TRAC", Level::Debug),
];

/// Level words of logrus (`level=warning`, JSON `"level"`) and hclog
/// (`[WARN]`, runner plugins), matched in any case.
pub const LEVEL_WORDS: [(&str, Level); 10] = [
    ("info", Level::Info),
    ("warning", Level::Warning),
    ("warn", Level::Warning),
    ("error", Level::Error),
    ("err", Level::Error),
    ("debug", Level::Debug),
    ("trace", Level::Debug),
    ("fatal", Level::Fatal),
    ("panic", Level::Panic),
    ("critical", Level::Fatal),
];
