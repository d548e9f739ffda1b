//! The session server: HTTPS (HTTP/1.1 with upgrades) on
//! `[session_server] listen_address`, serving `GET /session/{id}/exec` the
//! way gitlab-runner does (`session/server.go`, `session/session.go`), so
//! GitLab Workhorse connects unchanged.
//!
//! `/exec` handling order, each refusal logged with upstream's line, a
//! `terminal_rejected` event and `gitlab_runner_session_rejections_total`:
//! 1. no routable session for the URL, or another path → 404
//!    (`Failed to find session by URL` + `Mux handler not found`);
//! 2. `Authorization` is not the raw session token → 401 (before anything
//!    about the upgrade is looked at);
//! 3. not a WebSocket upgrade → 405;
//! 4. (termgate) a malformed handshake is refused now rather than after a
//!    terminal was opened for it: not `GET` → 405, bad
//!    `Sec-WebSocket-Version`/`-Key` → 400, `Origin` ≠ `Host` → 403
//!    (gorilla's default `CheckOrigin`);
//! 5. wait up to 60 s for the executor's terminal → 503;
//! 6. the interactive seat is taken → 423 (the first client keeps working);
//! 7. opening the terminal fails → 500;
//! 8. 101 with the negotiated subprotocol, then [`bridge::run`].
//!
//! [`accept`] takes connections (limits, `TCP_USER_TIMEOUT`, TLS); [`exec`]
//! answers requests, each refusal a [`rejection::Rejection`].
//!
//! Port 0: with `listen_address = "127.0.0.1:0"` and no advertise address
//! (or an advertise address with port 0) the advertised URL uses the port
//! actually bound, so session URLs work in tests and demos.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use termgate::logschema::{self as schema, msg};
use termgate::metrics::cert_source;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config;
use crate::metrics::Metrics;
use crate::session::operators::Authenticator;
use crate::session::recording::{Recorder, RecordingSettings};
use crate::session::tls::{self, split_host_port};
use crate::session::SessionRegistry;
use quiet::Quiet;

mod accept;
mod exec;
mod operator;
mod quiet;
mod rejection;

#[cfg(test)]
use exec::{is_websocket_upgrade, origin_allowed, route};

/// Upstream waits a minute for the executor's terminal.
pub const DEFAULT_TERMINAL_WAIT: Duration = Duration::from_secs(60);
/// Upstream pings every 30 s.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Data sent to a client that stays unacknowledged this long ends the
/// connection (`TCP_USER_TIMEOUT`). With the 30 s Ping always in flight, a
/// client whose network vanished (no FIN, no RST) gives the interactive seat
/// back within ping interval + this, instead of after Linux's ~15 min of
/// retransmissions while a returning user is refused with 423. Since Linux
/// 5.11 the timeout also covers a zero window: a live client that takes no
/// byte for this long while output waits is dropped the same way (as
/// nginx's `send_timeout` does); shorter pauses just pause the terminal.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections still in their TLS handshake or HTTP request (not yet a
/// terminal) at once, per listener (`[session_server] max_pending`), so a
/// flood of idle or half-open connections from the internet cannot exhaust
/// the runner's memory and descriptors (which its jobs and the terminals
/// already open need). Workhorse opens one connection per terminal. The
/// places are shared fairly: one address holds at most
/// `max_pending_per_peer` (`default_per_peer` in `accept/pending.rs`: 256
/// of 4096), and
/// when all are taken a new connection replaces the oldest unfinished one
/// (see `accept/pending.rs`).
pub const DEFAULT_MAX_PENDING: usize = 4096;
/// At most one warning about refused connections per this long.
const REFUSED_WARN_EVERY: Duration = Duration::from_secs(10);
/// A TLS client gets this long to finish its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Overrides [`DEFAULT_TERMINAL_WAIT`] (seconds), for tests.
pub const ENV_TERMINAL_WAIT: &str = "TERMGATE_TERMINAL_WAIT_SECS";
/// Overrides [`DEFAULT_PING_INTERVAL`] (seconds), for tests.
pub const ENV_PING: &str = "TERMGATE_PING_SECS";
/// Overrides [`DEFAULT_PEER_TIMEOUT`] (seconds; 0 = the kernel's default).
pub const ENV_PEER_TIMEOUT: &str = "TERMGATE_PEER_TIMEOUT_SECS";

/// Timings of the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub terminal_wait: Duration,
    pub ping_interval: Duration,
    pub handshake_timeout: Duration,
    /// `TCP_USER_TIMEOUT` of every accepted connection; zero leaves the
    /// kernel's default.
    pub peer_timeout: Duration,
    /// See [`DEFAULT_MAX_PENDING`].
    pub max_pending: usize,
    /// One peer's share of `max_pending`; `None`: `max(64, max_pending /
    /// 16)`.
    pub max_pending_per_peer: Option<usize>,
    /// Close a terminal after this long without input or output; `None`
    /// takes `[session_server] idle_timeout` (0 there = off).
    pub idle_timeout: Option<Duration>,
    /// Where the generated certificate is kept between starts (the config
    /// file's directory); `None` makes a new one in memory at every start.
    pub cert_dir: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            terminal_wait: DEFAULT_TERMINAL_WAIT,
            ping_interval: DEFAULT_PING_INTERVAL,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            peer_timeout: DEFAULT_PEER_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_per_peer: None,
            idle_timeout: None,
            cert_dir: None,
        }
    }
}

impl ServerOptions {
    /// Defaults, with [`ENV_TERMINAL_WAIT`], [`ENV_PING`] and
    /// [`ENV_PEER_TIMEOUT`] applied.
    pub fn from_env() -> Self {
        let secs = |name: &str| parse_secs(std::env::var(name).ok().as_deref());
        let d = ServerOptions::default();
        ServerOptions {
            terminal_wait: secs(ENV_TERMINAL_WAIT).unwrap_or(d.terminal_wait),
            ping_interval: secs(ENV_PING).unwrap_or(d.ping_interval),
            handshake_timeout: d.handshake_timeout,
            peer_timeout: secs(ENV_PEER_TIMEOUT).unwrap_or(d.peer_timeout),
            max_pending: d.max_pending,
            max_pending_per_peer: d.max_pending_per_peer,
            idle_timeout: None,
            cert_dir: None,
        }
    }
}

/// A non-negative number of seconds (fractions allowed).
fn parse_secs(v: Option<&str>) -> Option<Duration> {
    v?.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// A running session server.
#[derive(Debug)]
pub struct SessionServerHandle {
    pub local_addr: SocketAddr,
    /// Where the operator API listens (`local_addr` when it shares the
    /// public port); `None` without an `operators_file`.
    pub operator_address: Option<SocketAddr>,
    pub registry: Arc<SessionRegistry>,
    /// `host:port` as advertised (the registry's base URL is
    /// `https://<advertise_address>`).
    pub advertise_address: String,
    /// Warnings of [`tls::validate_advertise`] (already logged).
    pub warnings: Vec<String>,
    /// The certificate's SHA-256 fingerprint (what the console pins).
    pub fingerprint: String,
    tracker: TaskTracker,
}

impl SessionServerHandle {
    /// Resolves once `shutdown` was cancelled and the accept loop and every
    /// connection (including terminal bridges) have ended.
    pub async fn wait(&self) {
        self.tracker.wait().await;
    }
}

/// Start the session server with [`ServerOptions::from_env`].
pub async fn start(
    cfg: &config::SessionServer,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<SessionServerHandle> {
    start_with(cfg, metrics, shutdown, ServerOptions::from_env()).await
}

/// Start the session server: bind, make or load the certificate, serve
/// until `shutdown` is cancelled.
pub async fn start_with(
    cfg: &config::SessionServer,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    mut opts: ServerOptions,
) -> anyhow::Result<SessionServerHandle> {
    opts.idle_timeout = opts.idle_timeout.or(cfg.idle_timeout_duration());
    if let Some(n) = cfg.max_pending {
        opts.max_pending = n;
    }
    opts.max_pending_per_peer = cfg.max_pending_per_peer.or(opts.max_pending_per_peer);
    let listen = cfg
        .listen_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .context("[session_server] listen_address is not set")?;
    let warnings = tls::validate_advertise(cfg)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let listener = bind(listen, "listen_address").await?;
    let local_addr = listener.local_addr().context("session server address")?;
    let advertise_address = advertised(cfg, listen, local_addr.port());
    let tls = tls::load_or_generate(cfg, opts.cert_dir.as_deref())
        .context("session server certificate")?;
    let source = match cfg.cert_file {
        Some(_) => cert_source::CERT_FILE,
        None => cert_source::GENERATED,
    };
    metrics.set_session_certificate_expiry(source, tls.not_after);
    let registry = SessionRegistry::new(
        format!("https://{advertise_address}"),
        tls.cert_pem.clone(),
        metrics.clone(),
    );
    tracing::info!(
        { schema::ADDRESS } = %local_addr,
        { schema::ADVERTISE_ADDRESS } = %advertise_address,
        "{}",
        msg::SESSION_SERVER_LISTENING
    );
    let operators = match &cfg.operators_file {
        Some(path) => {
            Some(Authenticator::new(path.clone()).context("[session_server] operators_file")?)
        }
        None => None,
    };
    let operator_listener = match (
        &operators,
        cfg.operator_listen_address
            .as_deref()
            .filter(|a| !a.is_empty()),
    ) {
        (Some(_), Some(addr)) => Some(bind(addr, "operator_listen_address").await?),
        (None, Some(_)) => {
            tracing::warn!("{}", msg::OPERATOR_API_WITHOUT_OPERATORS);
            None
        }
        _ => None,
    };
    let recorder = RecordingSettings::from_config(cfg).map(|s| Recorder::new(s, metrics.clone()));
    let state = Arc::new(State {
        registry: registry.clone(),
        metrics,
        opts,
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
        operators,
        recorder,
        max_observers: cfg.max_observers,
        auth_failures: Mutex::new(Quiet::new(REFUSED_WARN_EVERY)),
        max_input_frame: cfg.max_input_frame,
    });
    let tracker = state.tracker.clone();
    tracker.spawn(rejection::tell_auth_failures(
        state.clone(),
        REFUSED_WARN_EVERY,
    ));
    if let Some(rec) = &state.recorder {
        tracker.spawn(
            rec.clone()
                .run_pruner(crate::session::recording::PRUNE_INTERVAL, shutdown.clone()),
        );
    }
    let acceptor = TlsAcceptor::from(tls.server_config);
    let operator_address = match operator_listener {
        Some(l) => {
            let addr = l.local_addr().context("operator API address")?;
            tracing::info!({ schema::ADDRESS } = %addr, "{}", msg::OPERATOR_API_LISTENING);
            tracker.spawn(accept::accept_loop(
                l,
                acceptor.clone(),
                state.clone(),
                Endpoints::OPERATOR,
            ));
            Some(addr)
        }
        None => {
            if state.operators.is_some() {
                tracing::info!({ schema::ADDRESS } = %local_addr, "{}", msg::OPERATOR_API_LISTENING);
            }
            state.operators.as_ref().map(|_| local_addr)
        }
    };
    let public = Endpoints {
        exec: true,
        operator: state.operators.is_some() && operator_address == Some(local_addr),
    };
    tracker.spawn(accept::accept_loop(listener, acceptor, state, public));
    Ok(SessionServerHandle {
        local_addr,
        operator_address,
        registry,
        advertise_address,
        warnings,
        fingerprint: tls.fingerprint,
        tracker,
    })
}

/// Bind `addr` (`host:port`, from the config key `key`).
async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    let (host, port) = split_host_port(addr)
        .with_context(|| format!("[session_server] {key} {addr:?} is not host:port"))?;
    let port = port.with_context(|| {
        format!("[session_server] {key} {addr:?} has no port (e.g. \"127.0.0.1:8094\")")
    })?;
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding the session server's {key} {addr}"))
}

/// What one listener serves: `/session/{id}/exec` (GitLab's side) and the
/// operator API (`/sessions`, observe, join, shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Endpoints {
    pub exec: bool,
    pub operator: bool,
}

impl Endpoints {
    const OPERATOR: Endpoints = Endpoints {
        exec: false,
        operator: true,
    };
}

/// The address GitLab is told: `advertise_address`, else `listen_address`,
/// with port 0 (or the listen address's port) replaced by the bound port.
fn advertised(cfg: &config::SessionServer, listen: &str, bound: u16) -> String {
    let join = |h: &str| {
        if h.contains(':') {
            format!("[{h}]:{bound}")
        } else {
            format!("{h}:{bound}")
        }
    };
    match cfg.advertise_address.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => match split_host_port(a) {
            Some((h, Some(0))) => join(h),
            _ => a.to_string(),
        },
        None => match split_host_port(listen) {
            Some((h, _)) => join(h),
            None => listen.to_string(),
        },
    }
}

struct State {
    registry: Arc<SessionRegistry>,
    metrics: Arc<Metrics>,
    opts: ServerOptions,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The operator API is on with an `operators_file`.
    operators: Option<Arc<Authenticator>>,
    recorder: Option<Arc<Recorder>>,
    max_observers: usize,
    /// Authorization failures, one log line per peer and interval.
    auth_failures: Mutex<Quiet>,
    /// `[session_server] max_input_frame`: input bytes one client frame may
    /// carry.
    max_input_frame: usize,
}

#[cfg(test)]
mod tests;
