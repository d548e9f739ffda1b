//! The log event schema: field names and event names of termgate's JSON log
//! lines, and the upstream gitlab-runner messages the console recognises.
//! Keys of a JSON line are sorted; `level` is one of [`LEVELS`].

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
pub const JOB_STATUS: &str = "job-status";
pub const BUILDS: &str = "builds";
pub const MAX_BUILDS: &str = "max_builds";

/// Levels as they appear in JSON logs (upstream spells `warning`).
pub const LEVELS: [&str; 6] = ["debug", "info", "warning", "error", "fatal", "panic"];

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
    /// logrus `Level.String()`: one of [`LEVELS`].
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
        for name in LEVELS {
            assert_eq!(Level::parse(name).map(Level::as_str), Some(name));
        }
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert!(Level::Warning < Level::Error && Level::Error < Level::Panic);
        assert_eq!(Level::parse("loud"), None);
    }
}

/// `event` values of session lifecycle lines.
pub mod event {
    pub const SESSION_CREATED: &str = "session_created";
    pub const TERMINAL_CONNECTED: &str = "terminal_connected";
    pub const TERMINAL_DISCONNECTED: &str = "terminal_disconnected";
    pub const TERMINAL_REJECTED: &str = "terminal_rejected";
    pub const OPERATOR_ATTACHED: &str = "operator_attached";
}

/// Upstream wording of messages termgate logs too.
pub mod msg {
    pub const CHECKING_FOR_JOBS_RECEIVED: &str = "Checking for jobs... received";
    pub const CHECKING_FOR_JOBS_NO_CONTENT: &str = "Checking for jobs...no content";
    pub const CHECKING_FOR_JOBS_FORBIDDEN: &str = "Checking for jobs... forbidden";
    pub const CHECKING_FOR_JOBS_CLIENT_ERROR: &str = "Checking for jobs... client error";
    pub const CHECKING_FOR_JOBS_FAILED: &str = "Checking for jobs... failed";
    pub const CHECKING_FOR_JOBS_UNAVAILABLE: &str =
        "Checking for jobs... GitLab instance currently unavailable";
    pub const JOB_SUCCEEDED: &str = "Job succeeded";
    pub const JOB_FAILED_PREFIX: &str = "Job failed: ";
    pub const JOB_FAILED_SYSTEM_PREFIX: &str = "Job failed (system failure): ";
    pub const SUBMITTING_JOB_OK: &str = "Submitting job to coordinator...ok";
    pub const APPENDING_TRACE_OK: &str = "Appending trace to coordinator...ok";
    pub const APPENDING_TRACE_RANGE_MISMATCH: &str =
        "Appending trace to coordinator... range mismatch";
    pub const CONFIGURATION_LOADED: &str = "Configuration loaded";
    pub const METRICS_SERVER_LISTENING: &str = "Metrics server listening";
    pub const SESSION_SERVER_LISTENING: &str = "Session server listening";
    pub const SESSION_SERVER_DISABLED: &str =
        "[session_server].listen_address not defined, session endpoints disabled";
    pub const METRICS_DISABLED: &str =
        "listen_address not defined, metrics & debug endpoints disabled";
    pub const GRACEFUL_SHUTDOWN: &str = "Starting graceful shutdown, waiting for builds to finish";
    pub const FORCEFUL_SHUTDOWN: &str = "Starting forceful shutdown";
    pub const ALL_WORKERS_STOPPED: &str = "All workers stopped.";
    pub const CAN_EXIT_NOW: &str = "Can exit now!";
    pub const AUTHORIZATION_NOT_VALID: &str = "Authorization header is not valid";
    pub const NOT_WEBSOCKET: &str = "Request is not a web socket connection";
    pub const TERMINAL_NOT_SET: &str = "Interactive terminal not set";
    pub const CONNECT_FAILED: &str = "Failed to connect to terminal";
    pub const ALREADY_CONNECTED: &str = "Terminal already connected, revoking connection";
    pub const CLOSED_ACTIVE: &str = "Closed active terminal connection";
    pub const SESSION_NOT_FOUND: &str = "Failed to find session by URL";
    pub const MUX_NOT_FOUND: &str = "Mux handler not found";
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
