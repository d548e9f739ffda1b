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
//! Port 0: with `listen_address = "127.0.0.1:0"` and no advertise address
//! (or an advertise address with port 0) the advertised URL uses the port
//! actually bound, so session URLs work in tests and demos.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use termgate::logschema::{event, msg};
use termgate::metrics::rejection_reason;
use termgate::terminal::{negotiate, Protocol, ServerCodec};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config;
use crate::executor::terminal::TermSize;
use crate::metrics::Metrics;
use crate::session::bridge::{self, BridgeContext};
use crate::session::tls::{self, split_host_port};
use crate::session::{Session, SessionRegistry};

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
/// terminal) at once; more are closed as soon as they are accepted, so a
/// flood of idle or half-open connections from the internet cannot exhaust
/// the runner's memory and descriptors (which its jobs and the terminals
/// already open need). Workhorse opens one connection per terminal.
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
    /// Close a terminal after this long without input or output; `None`
    /// takes `[session_server] idle_timeout` (0 there = off).
    pub idle_timeout: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            terminal_wait: DEFAULT_TERMINAL_WAIT,
            ping_interval: DEFAULT_PING_INTERVAL,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            peer_timeout: DEFAULT_PEER_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING,
            idle_timeout: None,
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
            idle_timeout: None,
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
    pub registry: Arc<SessionRegistry>,
    /// `host:port` as advertised (the registry's base URL is
    /// `https://<advertise_address>`).
    pub advertise_address: String,
    /// Warnings of [`tls::validate_advertise`] (already logged).
    pub warnings: Vec<String>,
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
    let listen = cfg
        .listen_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .context("[session_server] listen_address is not set")?;
    let warnings = tls::validate_advertise(cfg)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let (host, port) = split_host_port(listen)
        .with_context(|| format!("[session_server] listen_address {listen:?} is not host:port"))?;
    let port = port.with_context(|| {
        format!("[session_server] listen_address {listen:?} has no port (e.g. \"[::]:8093\")")
    })?;
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding the session server to {listen}"))?;
    let local_addr = listener.local_addr().context("session server address")?;
    let advertise_address = advertised(cfg, listen, local_addr.port());
    let tls = tls::load_or_generate(cfg).context("session server certificate")?;
    let registry = SessionRegistry::new(
        format!("https://{advertise_address}"),
        tls.cert_pem.clone(),
        metrics.clone(),
    );
    tracing::info!(
        address = %local_addr,
        advertise_address = %advertise_address,
        "{}",
        msg::SESSION_SERVER_LISTENING
    );
    let state = Arc::new(State {
        registry: registry.clone(),
        metrics,
        opts,
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
    });
    let tracker = state.tracker.clone();
    tracker.spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls.server_config),
        state,
    ));
    Ok(SessionServerHandle {
        local_addr,
        registry,
        advertise_address,
        warnings,
        tracker,
    })
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
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let pending = Arc::new(tokio::sync::Semaphore::new(state.opts.max_pending.max(1)));
    let mut refused = Refused::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = state.shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: keep serving the others.
                tracing::warn!(error = %e, "{}", msg::SESSION_ACCEPT_FAILED);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = state.shutdown.cancelled() => break,
                }
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            refused.refuse(&state, peer);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        if !state.opts.peer_timeout.is_zero() {
            if let Err(e) =
                socket2::SockRef::from(&tcp).set_tcp_user_timeout(Some(state.opts.peer_timeout))
            {
                tracing::debug!(peer = %peer, error = %e, "{}", msg::SESSION_USER_TIMEOUT_FAILED);
            }
        }
        let acceptor = acceptor.clone();
        let st = state.clone();
        state.tracker.spawn(async move {
            // Held until the connection ends or hands its socket to a
            // terminal bridge (that task is spawned on its own).
            let _permit = permit;
            let tls = match tokio::time::timeout(st.opts.handshake_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer, error = %e, "{}", msg::SESSION_TLS_HANDSHAKE_FAILED);
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %peer, "{}", msg::SESSION_TLS_HANDSHAKE_TIMED_OUT);
                    return;
                }
            };
            serve_connection(tls, peer, st).await;
        });
    }
    state.tracker.close();
}

/// Connections refused because [`ServerOptions::max_pending`] were
/// pending: each is counted as an `over_limit` rejection; a warning goes
/// out for the first and then at most every [`REFUSED_WARN_EVERY`], with
/// how many were refused since.
#[derive(Default)]
struct Refused {
    last_warn: Option<Instant>,
    since_warn: u64,
}

impl Refused {
    fn refuse(&mut self, st: &State, peer: SocketAddr) {
        st.metrics
            .session_rejections_total
            .with_label_values(&[rejection_reason::OVER_LIMIT])
            .inc();
        self.since_warn += 1;
        if self
            .last_warn
            .is_some_and(|t| t.elapsed() < REFUSED_WARN_EVERY)
        {
            return;
        }
        tracing::warn!(
            event = event::TERMINAL_REJECTED,
            reason = rejection_reason::OVER_LIMIT,
            peer = %peer,
            refused = self.since_warn,
            max_pending = st.opts.max_pending,
            "{}", msg::SESSION_OVER_LIMIT
        );
        self.last_warn = Some(Instant::now());
        self.since_warn = 0;
    }
}

async fn serve_connection<IO>(io: IO, peer: SocketAddr, st: Arc<State>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc_state = st.clone();
    let svc = hyper::service::service_fn(move |req| {
        let st = svc_state.clone();
        async move { Ok::<_, Infallible>(handle(req, st, peer).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(8 * 1024);
    let conn = builder
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        _ = st.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = r {
        tracing::debug!(peer = %peer, error = %e, "{}", msg::SESSION_CONNECTION_ERROR);
    }
}

/// A response like Go's `http.Error`.
fn plain(status: StatusCode, body: &str) -> Response<String> {
    let mut r = Response::new(format!("{body}\n"));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn status_text(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// Count and log a refusal (never the token), and answer `status`.
fn reject(
    st: &State,
    peer: SocketAddr,
    job: Option<u64>,
    status: StatusCode,
    reason: &'static str,
    body: &str,
) -> Response<String> {
    st.metrics
        .session_rejections_total
        .with_label_values(&[reason])
        .inc();
    tracing::info!(
        event = event::TERMINAL_REJECTED,
        reason,
        peer = %peer,
        job,
        status = status.as_u16(),
        "{}", msg::TERMINAL_REJECTED
    );
    plain(status, body)
}

/// `/session/{id}/{rest}` → (id, rest).
fn route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/session/")?;
    let (id, sub) = rest.split_once('/')?;
    (!id.is_empty()).then_some((id, sub))
}

async fn handle(req: Request<Incoming>, st: Arc<State>, peer: SocketAddr) -> Response<String> {
    let requested_at = Instant::now();
    let uri = req.uri().path().to_string();
    let session = route(&uri).and_then(|(id, sub)| {
        st.registry
            .get(id)
            .filter(|s| !s.is_closed())
            .map(|s| (s, sub))
    });
    let Some((session, sub)) = session else {
        tracing::warn!(uri = %uri, "{}", msg::SESSION_NOT_FOUND);
        tracing::error!(uri = %uri, "{}", msg::MUX_NOT_FOUND);
        return reject(
            &st,
            peer,
            None,
            StatusCode::NOT_FOUND,
            rejection_reason::NOT_FOUND,
            "404 page not found",
        );
    };
    let job = Some(session.job.job_id);
    match sub {
        "exec" => exec(req, st, peer, session, requested_at).await,
        p if p.starts_with("proxy/") => {
            if let Some(r) = check_auth(&st, peer, &session, req.headers()) {
                return r;
            }
            // Only upstream's Kubernetes executor has service proxies.
            tracing::warn!(job, uri = %uri, "{}", msg::PROXY_NOT_FOUND);
            reject(
                &st,
                peer,
                job,
                StatusCode::NOT_FOUND,
                rejection_reason::NOT_FOUND,
                status_text(StatusCode::NOT_FOUND),
            )
        }
        _ => {
            tracing::warn!(job, uri = %uri, "{}", msg::SESSION_NOT_FOUND);
            tracing::error!(job, uri = %uri, "{}", msg::MUX_NOT_FOUND);
            reject(
                &st,
                peer,
                job,
                StatusCode::NOT_FOUND,
                rejection_reason::NOT_FOUND,
                "404 page not found",
            )
        }
    }
}

/// 401 unless `Authorization` is the raw token (constant-time compare).
fn check_auth(
    st: &State,
    peer: SocketAddr,
    session: &Session,
    headers: &HeaderMap,
) -> Option<Response<String>> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session.token_matches(given) {
        return None;
    }
    let job = session.job.job_id;
    tracing::error!(job, "{}", msg::AUTHORIZATION_NOT_VALID);
    Some(reject(
        st,
        peer,
        Some(job),
        StatusCode::UNAUTHORIZED,
        rejection_reason::UNAUTHORIZED,
        status_text(StatusCode::UNAUTHORIZED),
    ))
}

/// Comma-separated tokens of every `name` header.
fn header_tokens<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    header_tokens(headers, name)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// gorilla's `IsWebSocketUpgrade`.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &header::CONNECTION, "upgrade")
        && has_token(headers, &header::UPGRADE, "websocket")
}

/// gorilla's default `CheckOrigin`: no `Origin`, or its host equals `Host`.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let origin_host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// gorilla's handshake checks; `Err` is the refusal, `Ok` the accept key.
fn check_handshake(req: &Request<Incoming>) -> Result<String, (StatusCode, &'static str)> {
    if req.method() != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "websocket: the client is not using the websocket protocol: request method is not GET",
        ));
    }
    let h = req.headers();
    if !has_token(h, &header::SEC_WEBSOCKET_VERSION, "13") {
        return Err((
            StatusCode::BAD_REQUEST,
            "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
        ));
    }
    if !origin_allowed(h) {
        return Err((
            StatusCode::FORBIDDEN,
            "websocket: request origin not allowed by Upgrader.CheckOrigin",
        ));
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
        .map(str::trim)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .is_ok_and(|b| b.len() == 16)
        })
        .ok_or((
            StatusCode::BAD_REQUEST,
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte length",
        ))?;
    Ok(derive_accept_key(key.as_bytes()))
}

async fn exec(
    mut req: Request<Incoming>,
    st: Arc<State>,
    peer: SocketAddr,
    session: Arc<Session>,
    requested_at: Instant,
) -> Response<String> {
    let job = session.job.job_id;
    if let Some(r) = check_auth(&st, peer, &session, req.headers()) {
        return r;
    }
    if !is_websocket_upgrade(req.headers()) {
        tracing::error!(job, "{}", msg::NOT_WEBSOCKET);
        return reject(
            &st,
            peer,
            Some(job),
            StatusCode::METHOD_NOT_ALLOWED,
            rejection_reason::NOT_WEBSOCKET,
            status_text(StatusCode::METHOD_NOT_ALLOWED),
        );
    }
    let accept = match check_handshake(&req) {
        Ok(a) => a,
        Err((status, why)) => {
            tracing::error!(job, status = status.as_u16(), "{why}");
            let reason = if status == StatusCode::FORBIDDEN {
                rejection_reason::UNAUTHORIZED
            } else {
                rejection_reason::NOT_WEBSOCKET
            };
            let mut r = reject(&st, peer, Some(job), status, reason, why);
            if status == StatusCode::BAD_REQUEST {
                r.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            return r;
        }
    };

    let factory = tokio::select! {
        f = session.wait_terminal(st.opts.terminal_wait) => f,
        _ = st.shutdown.cancelled() => None,
    };
    let Some(factory) = factory else {
        tracing::error!(job, "{}", msg::TERMINAL_NOT_SET);
        return reject(
            &st,
            peer,
            Some(job),
            StatusCode::SERVICE_UNAVAILABLE,
            rejection_reason::UNAVAILABLE,
            status_text(StatusCode::SERVICE_UNAVAILABLE),
        );
    };
    let Some(seat) = session.try_take_seat() else {
        tracing::warn!(job, "{}", msg::ALREADY_CONNECTED);
        return reject(
            &st,
            peer,
            Some(job),
            StatusCode::LOCKED,
            rejection_reason::LOCKED,
            status_text(StatusCode::LOCKED),
        );
    };
    let term = match factory.open(TermSize::default()).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(job, error = %e, "{}", msg::CONNECT_FAILED);
            return reject(
                &st,
                peer,
                Some(job),
                StatusCode::INTERNAL_SERVER_ERROR,
                rejection_reason::CONNECT_FAILED,
                status_text(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
    };

    let offered = header_tokens(req.headers(), &header::SEC_WEBSOCKET_PROTOCOL);
    let chosen = negotiate(offered.iter().copied());
    let protocol = chosen
        .and_then(Protocol::from_name)
        .unwrap_or(Protocol::Terminal);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ctx = BridgeContext {
        session,
        seat,
        registry: st.registry.clone(),
        metrics: st.metrics.clone(),
        codec: ServerCodec::new(protocol),
        peer,
        requested_at,
        ping_interval: st.opts.ping_interval,
        idle_timeout: st.opts.idle_timeout,
        shutdown: st.shutdown.clone(),
    };
    st.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(bridge::ws_config()),
                )
                .await;
                bridge::run(ws, term, ctx).await;
            }
            Err(e) => {
                tracing::warn!(job, error = %e, "{}", msg::WEBSOCKET_UPGRADE_FAILED);
                term.control.close().await;
            }
        }
    });

    let mut r = Response::new(String::new());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = chosen {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    r
}

#[cfg(test)]
mod tests;
