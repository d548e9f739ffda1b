//! The runner's `config.toml`: gitlab-runner's keys and defaults, plus
//! termgate's `[session_server]` additions.
//!
//! [`parse`] parses the text once, deserializes it into a serde-derived
//! model of gitlab-runner's sections and reads that into [`Config`]. Each
//! key is declared once, in `sections` (its type, rule and default; the
//! lenient types are in `model`, the rules in `ctx` and `validate`, the
//! accepted values in `schema`): unknown keys are
//! errors with a line and a "did you mean"; keys gitlab-runner knows but
//! termgate does not implement load with one warning and are kept verbatim,
//! so [`save`] does not drop them. Every problem is reported at once, each
//! with file, line and key ([`ConfigError`]). [`load`] returns a complete
//! [`Config`] or an error, never something half-configured.

mod ctx;
mod doc;
mod docker;
mod error;
mod load;
mod model;
mod save;
mod schema;
mod sections;
#[cfg(test)]
mod testdata;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use docker::DockerConfig;
pub use error::{ConfigError, Problem};
pub use load::{load, parse, LoadedConfig};
pub use save::{save, save_text, write_atomic};
pub use schema::{IMPLEMENTED_EXECUTORS, SHELLS};
use termgate::duration::parse_go as parse_go_duration;

/// Default `concurrent`.
pub const DEFAULT_CONCURRENT: usize = 1;
/// Default `check_interval`, seconds.
pub const DEFAULT_CHECK_INTERVAL: u64 = 3;
/// Default `shutdown_timeout`, seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: u64 = 30;
/// Default `connection_max_age`.
pub const DEFAULT_CONNECTION_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Default `[session_server] session_timeout`, seconds.
pub const DEFAULT_SESSION_TIMEOUT: u64 = 1800;
/// Default `[session_server] max_observers`.
pub const DEFAULT_MAX_OBSERVERS: usize = 8;
/// Default `[session_server] max_input_frame`, bytes (1 MiB).
pub const DEFAULT_MAX_INPUT_FRAME: usize = termgate::terminal::DEFAULT_MAX_INPUT_FRAME;
/// Largest `[session_server] max_input_frame` accepted, bytes (64 MiB):
/// each connection may hold one such frame in memory.
pub const MAX_MAX_INPUT_FRAME: usize = 64 * 1024 * 1024;
/// Default `[[runners]] output_limit`, kilobytes.
pub const DEFAULT_OUTPUT_LIMIT_KB: u64 = 4096;
/// Default `[[runners]] unhealthy_requests_limit`.
pub const DEFAULT_UNHEALTHY_REQUESTS_LIMIT: usize = 3;
/// Default `[[runners]] unhealthy_interval`.
pub const DEFAULT_UNHEALTHY_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Port appended to `listen_address` when it has none.
pub const DEFAULT_METRICS_PORT: u16 = 9252;

/// The whole `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Jobs running at once across all runners (>= 1).
    pub concurrent: usize,
    /// Seconds between job requests (values <= 0 in the file mean 3).
    pub check_interval: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// Metrics/debug server; the old key `metrics_server` is read as an alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentry_dsn: Option<String>,
    /// Seconds allowed for a forceful shutdown.
    pub shutdown_timeout: u64,
    /// Go duration string (`"15m"`), validated on load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_max_age: Option<String>,
    /// The user shell-executor jobs run as (gitlab-runner's `user`); the
    /// runner must run as root to switch. `None`: the runner's own user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `user` came from `run --user`, not from the file (messages say so;
    /// never saved).
    #[serde(skip)]
    pub user_from_cli: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_server: Option<SessionServer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runners: Vec<RunnerConfig>,
    /// Global gitlab-runner keys termgate ignores (e.g. `[machine]`).
    #[serde(flatten)]
    pub ignored: Ignored,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrent: DEFAULT_CONCURRENT,
            check_interval: DEFAULT_CHECK_INTERVAL,
            log_level: None,
            log_format: None,
            listen_address: None,
            sentry_dsn: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            connection_max_age: None,
            user: None,
            user_from_cli: false,
            session_server: None,
            runners: Vec::new(),
            ignored: Ignored::default(),
        }
    }
}

impl Config {
    /// `run --user` (and `doctor --user`) overrides the file's global `user`.
    pub fn apply_cli_user(&mut self, user: Option<&str>) {
        if let Some(u) = user {
            self.user = Some(u.to_string());
            self.user_from_cli = true;
        }
    }

    /// The metrics/debug listen address with `:9252` added when no port is given.
    pub fn metrics_listen_address(&self) -> Option<String> {
        self.listen_address
            .as_deref()
            .map(|a| with_default_port(a, DEFAULT_METRICS_PORT))
    }

    pub fn check_interval_duration(&self) -> Duration {
        Duration::from_secs(self.check_interval.max(1))
    }

    /// `shutdown_timeout` (0, which the loader never produces, counts as
    /// the default, as gitlab-runner's `GetShutdownTimeout`).
    pub fn shutdown_timeout_duration(&self) -> Duration {
        Duration::from_secs(match self.shutdown_timeout {
            0 => DEFAULT_SHUTDOWN_TIMEOUT,
            n => n,
        })
    }

    /// `[session_server] session_timeout`, or its default without the
    /// section. Read when a job starts, from the config of that moment
    /// (as gitlab-runner passes its current config to each build), so a
    /// SIGHUP reload applies it to the jobs that start after.
    pub fn session_timeout_duration(&self) -> Duration {
        self.session_server
            .as_ref()
            .map(SessionServer::session_timeout_duration)
            .unwrap_or(Duration::from_secs(DEFAULT_SESSION_TIMEOUT))
    }

    pub fn connection_max_age_duration(&self) -> Duration {
        self.connection_max_age
            .as_deref()
            .and_then(|s| parse_go_duration(s).ok())
            .unwrap_or(DEFAULT_CONNECTION_MAX_AGE)
    }

    /// The session server, if configured with a `listen_address`.
    pub fn enabled_session_server(&self) -> Option<&SessionServer> {
        self.session_server.as_ref().filter(|s| s.is_enabled())
    }
}

/// The directory of the config file (`.` for a bare file name): the
/// session server keeps its generated certificate there.
pub fn config_dir(config: &Path) -> PathBuf {
    match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Appends `:port` to an address without one (`"0.0.0.0"`, `"[::]"`,
/// `"localhost"`); addresses with a port are returned unchanged.
pub fn with_default_port(address: &str, port: u16) -> String {
    let has_port = if let Some(rest) = address.strip_prefix('[') {
        rest.contains("]:")
    } else {
        match address.matches(':').count() {
            0 => false,
            1 => true,
            // A bare IPv6 address: bracket it.
            _ => return format!("[{address}]:{port}"),
        }
    };
    if has_port {
        address.to_string()
    } else {
        format!("{address}:{port}")
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `[session_server]`: gitlab-runner's three keys plus termgate's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionServer {
    /// Local bind address; without it sessions are disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    /// `host:port` GitLab uses to reach the runner (no scheme).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    /// Seconds a terminal may keep a finished job alive (<= 0 in the file: 1800).
    pub session_timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Observers per session at once (`/session/{id}/observe`).
    pub max_observers: usize,
    /// Operators and their hashed tokens; without it the operator API is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operators_file: Option<PathBuf>,
    /// A separate listener for the operator API (`/sessions`, observe, join,
    /// shell); the public `listen_address` then serves `/exec` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_listen_address: Option<String>,
    /// Every terminal is recorded here as asciicast v2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recordings_dir: Option<PathBuf>,
    /// Also record what is typed (`i` events); off by default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub record_input: bool,
    /// Recordings older than this (Go duration) are deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recordings_max_age: Option<String>,
    /// The oldest recordings are deleted while the directory holds more than
    /// this many MiB; 0 = no size limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub recordings_max_size_mb: u64,
    /// Seconds without input or output before a terminal is closed; 0 = off.
    pub idle_timeout: u64,
    /// Connections in their TLS handshake or HTTP request at once, per
    /// listener; `None`: `session::server::DEFAULT_MAX_PENDING` (4096).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<usize>,
    /// One peer address's (IPv6: /64's) share of `max_pending`; `None`:
    /// `max(64, max_pending / 16)`; more than `max_pending` counts as
    /// `max_pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_per_peer: Option<usize>,
    /// Input bytes one client frame may carry (a whole paste, as xterm.js
    /// sends it); larger closes with `1009 frame_too_large`.
    pub max_input_frame: usize,
}

impl Default for SessionServer {
    fn default() -> Self {
        Self {
            listen_address: None,
            advertise_address: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            cert_file: None,
            key_file: None,
            max_observers: DEFAULT_MAX_OBSERVERS,
            operators_file: None,
            operator_listen_address: None,
            recordings_dir: None,
            record_input: false,
            recordings_max_age: None,
            recordings_max_size_mb: 0,
            idle_timeout: 0,
            max_pending: None,
            max_pending_per_peer: None,
            max_input_frame: DEFAULT_MAX_INPUT_FRAME,
        }
    }
}

impl SessionServer {
    pub fn is_enabled(&self) -> bool {
        self.listen_address
            .as_deref()
            .is_some_and(|a| !a.is_empty())
    }

    /// `advertise_address`, else `listen_address`, verbatim (as gitlab-runner).
    pub fn effective_advertise_address(&self) -> Option<String> {
        self.advertise_address
            .clone()
            .or_else(|| self.listen_address.clone())
    }

    pub fn session_timeout_duration(&self) -> Duration {
        Duration::from_secs(if self.session_timeout == 0 {
            DEFAULT_SESSION_TIMEOUT
        } else {
            self.session_timeout
        })
    }

    /// `recordings_max_age` (an unparsable value was refused at load).
    pub fn recordings_max_age_duration(&self) -> Option<Duration> {
        self.recordings_max_age
            .as_deref()
            .and_then(|s| parse_go_duration(s).ok())
            .filter(|d| !d.is_zero())
    }

    /// `None` when idle closing is off.
    pub fn idle_timeout_duration(&self) -> Option<Duration> {
        (self.idle_timeout > 0).then(|| Duration::from_secs(self.idle_timeout))
    }
}

/// One `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerConfig {
    pub name: String,
    pub url: String,
    pub token: Secret,
    pub id: u64,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "save::datetime"
    )]
    pub token_obtained_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `None` for tokens that do not expire (Go's zero time in the file).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "save::datetime"
    )]
    pub token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(rename = "tls-ca-file", skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(rename = "tls-cert-file", skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(rename = "tls-key-file", skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// `shell` or `docker`.
    pub executor: String,
    /// One of [`SHELLS`]; `None` means the executor's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// termgate: the user this runner's shell jobs run as, over the global
    /// `user` and `run --user` (see `job_user::effective`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builds_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_url: Option<String>,
    /// `KEY=value` entries added to every job.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
    /// Jobs at once for this runner; 0 = unlimited.
    pub limit: usize,
    /// Concurrent job requests; see [`RunnerConfig::effective_request_concurrency`].
    pub request_concurrency: usize,
    /// Trace size limit in kilobytes.
    pub output_limit: u64,
    pub unhealthy_requests_limit: usize,
    /// Go duration string; see [`RunnerConfig::unhealthy_interval_duration`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_interval: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_flags: BTreeMap<String, bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerConfig>,
    /// gitlab-runner keys termgate ignores (`[runners.cache]`, …).
    #[serde(flatten)]
    pub ignored: Ignored,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            token: Secret::default(),
            id: 0,
            token_obtained_at: None,
            token_expires_at: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            executor: "shell".to_string(),
            shell: None,
            user: None,
            builds_dir: None,
            cache_dir: None,
            clone_url: None,
            environment: Vec::new(),
            limit: 0,
            request_concurrency: 1,
            output_limit: DEFAULT_OUTPUT_LIMIT_KB,
            unhealthy_requests_limit: DEFAULT_UNHEALTHY_REQUESTS_LIMIT,
            unhealthy_interval: None,
            feature_flags: BTreeMap::new(),
            docker: None,
            ignored: Ignored::default(),
        }
    }
}

impl RunnerConfig {
    /// `max(1, request_concurrency)`, as gitlab-runner.
    pub fn effective_request_concurrency(&self) -> usize {
        self.request_concurrency.max(1)
    }

    pub fn output_limit_bytes(&self) -> u64 {
        self.output_limit.saturating_mul(1024)
    }

    pub fn unhealthy_interval_duration(&self) -> Duration {
        self.unhealthy_interval
            .as_deref()
            .and_then(|s| parse_go_duration(s).ok())
            .unwrap_or(DEFAULT_UNHEALTHY_INTERVAL)
    }
}

/// A credential that must not reach logs: `Debug` prints `[REDACTED]`.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the few places that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// gitlab-runner keys termgate does not implement, kept verbatim so that
/// [`save`] writes them back. `Debug` lists only their names, since such
/// sections can hold credentials (e.g. `[runners.cache.s3] SecretKey`).
#[derive(Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Ignored(pub toml::Table);

impl fmt::Debug for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testdata::FULL_RUNNER;

    #[test]
    fn defaults_for_an_empty_file() {
        let loaded = parse("", "config.toml").unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.warnings.is_empty());
        assert_eq!(loaded.config.concurrent, 1);
        assert_eq!(loaded.config.check_interval, 3);
        assert_eq!(loaded.config.shutdown_timeout, 30);
        assert_eq!(
            loaded.config.connection_max_age_duration(),
            Duration::from_secs(900)
        );
        assert_eq!(loaded.config.metrics_listen_address(), None);
    }

    #[test]
    fn metrics_port_is_added_when_missing() {
        assert_eq!(with_default_port("0.0.0.0", 9252), "0.0.0.0:9252");
        assert_eq!(with_default_port("localhost", 9252), "localhost:9252");
        assert_eq!(with_default_port(":9402", 9252), ":9402");
        assert_eq!(with_default_port("[::]", 9252), "[::]:9252");
        assert_eq!(with_default_port("[::]:9000", 9252), "[::]:9000");
        assert_eq!(with_default_port("::1", 9252), "[::1]:9252");
        let c = parse("listen_address = \"127.0.0.1\"\n", "c")
            .unwrap()
            .config;
        assert_eq!(
            c.metrics_listen_address().as_deref(),
            Some("127.0.0.1:9252")
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let loaded = parse(FULL_RUNNER, "config.toml").unwrap();
        let dbg = format!("{loaded:?}");
        assert!(!dbg.contains("glrt-supersecret"), "{dbg}");
        assert!(!dbg.contains("s3-secret"), "{dbg}");
        assert!(dbg.contains("[REDACTED]"));
        assert_eq!(loaded.config.runners[0].token.expose(), "glrt-supersecret");
    }
}
