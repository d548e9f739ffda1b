//! GitLab Workhorse's terminal proxy, for the local coordinator.
//!
//! `GET /admin/jobs/{id}/terminal.ws` plays Workhorse's
//! `/-/jobs/:id/terminal.ws`: a browser-like client speaking
//! `terminal.gitlab.com` (or `base64.terminal.gitlab.com`) is proxied to the
//! runner's session server at `<session url, https→wss>/exec`, which is
//! dialed the way Workhorse dials it (GL `workhorse/internal/channel/`):
//!
//! - the job's session certificate is the **only** trusted root (`CAPem`),
//!   so a runner presenting any other certificate is refused (502);
//! - `Authorization: <raw token>`, subprotocol `terminal.gitlab.com`,
//!   `X-Forwarded-For: <client ip>`;
//! - the runner's HTTP refusal (401, 404, 423, 500, 503, …) is answered to
//!   the client with the same status and a JSON `{"error": …}`;
//! - frames are translated with Workhorse's wrappers
//!   ([`termgate::terminal::wrap_read`]/[`wrap_write`]); pings are
//!   forwarded and the client gets an empty ping every 30 s
//!   (`TERMGATE_PING_SECS`);
//! - when the client leaves, one binary `0x04` goes upstream first, then the
//!   runner connection is closed; when the runner closes, its close code and
//!   reason are passed to the client.
//!
//! Bounded: each direction awaits every send, so at most one frame per
//! direction is in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use serde_json::json;
use termgate::api::SessionInfo;
use termgate::terminal::{
    wrap_read, wrap_write, Frame, FrameKind, BASE64_TERMINAL_GITLAB, EOT, TERMINAL_GITLAB,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self as ts};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::state::Phase;
use super::Shared;

/// Subprotocols a client may offer, in Workhorse's order of preference.
pub const CLIENT_SUBPROTOCOLS: [&str; 2] = [TERMINAL_GITLAB, BASE64_TERMINAL_GITLAB];
/// The subprotocol spoken towards the runner (Rails' channel settings).
pub const UPSTREAM_SUBPROTOCOL: &str = TERMINAL_GITLAB;
/// Overrides the 30 s keepalive ping towards the client (whole seconds).
pub const PING_ENV: &str = "TERMGATE_PING_SECS";
/// Workhorse pings the browser every 30 s.
pub const DEFAULT_PING: Duration = Duration::from_secs(30);
/// Giving up on a runner that does not complete the handshake.
const DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on each closing step (EOT, close frames).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message accepted from either side (the runner sends ≤ 32 KiB,
/// and refuses client frames over 64 KiB; base64 adds a third).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Longest close reason a close frame can carry.
const MAX_CLOSE_REASON: usize = 123;

type Upstream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why dialing the runner failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("the job's session url {0:?} is not an https:// (or wss://) url")]
    BadUrl(String),
    #[error("the job's session certificate is unusable: {0}")]
    BadCertificate(String),
    #[error("invalid header value for {0}")]
    BadHeader(&'static str),
    #[error("the runner refused the terminal with {status}{}", fmt_body(.body))]
    Refused { status: StatusCode, body: String },
    #[error("TLS with the runner failed (it must present the job's session certificate): {0}")]
    Tls(String),
    #[error("connecting to the runner's session server failed: {0}")]
    Connect(String),
    #[error("the runner's session server did not answer within {0:?}")]
    Timeout(Duration),
}

fn fmt_body(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl DialError {
    /// The status answered to the client: the runner's own 4xx/5xx passes
    /// through, everything else is a 502.
    pub fn status(&self) -> StatusCode {
        match self {
            DialError::Refused { status, .. }
                if status.is_client_error() || status.is_server_error() =>
            {
                *status
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": msg.to_string() }))).into_response()
}

/// `GET /admin/jobs/{id}/terminal.ws`.
pub async fn terminal_ws(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let session = match job_session(&s, id).await {
        Ok(sess) => sess,
        Err(r) => return r,
    };
    let upgrade = match upgrade {
        Ok(u) => u.protocols(CLIENT_SUBPROTOCOLS),
        Err(rej) => return rej.into_response(),
    };
    let Some(protocol) = upgrade
        .selected_protocol()
        .and_then(|p| CLIENT_SUBPROTOCOLS.iter().copied().find(|c| p == c))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "a terminal client must offer the subprotocol {TERMINAL_GITLAB} or {BASE64_TERMINAL_GITLAB}"
            ),
        );
    };
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let upstream = match dial(&session, forwarded_for(&headers, peer).as_deref()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(job = id, peer = ?peer, error = %e, "Terminal: connecting to server failed");
            return error(e.status(), &e);
        }
    };
    let ping = ping_interval(std::env::var(PING_ENV).ok().as_deref());
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_failed_upgrade(move |e| {
            tracing::warn!(job = id, error = %e, "Terminal: upgrading client to websocket failed");
        })
        .on_upgrade(move |client| async move {
            tracing::info!(job = id, peer = ?peer, subprotocol = protocol, "Terminal: started proxying");
            let end = proxy(client, upstream, protocol, ping).await;
            match &end {
                End::Error(e) => {
                    tracing::warn!(job = id, peer = ?peer, error = %e, "Terminal: error proxying")
                }
                _ => {
                    tracing::info!(job = id, peer = ?peer, reason = %end, "Terminal: finished proxying")
                }
            }
        })
}

/// The session of a running job, or the reply explaining why there is none.
async fn job_session(s: &Shared, id: u64) -> Result<SessionInfo, Response> {
    let g = s.lock().await;
    let Some(job) = g.jobs.get(&id) else {
        return Err(error(StatusCode::NOT_FOUND, "no such job"));
    };
    if job.rec.phase != Phase::Running {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "job {id} is {}, a terminal needs a running job",
                job.rec.phase.api_state()
            ),
        ));
    }
    match &job.rec.session {
        Some(sess) if !sess.url.is_empty() => Ok(sess.clone()),
        _ => Err(error(
            StatusCode::CONFLICT,
            format!("job {id} has no terminal session (its runner sent none)"),
        )),
    }
}

/// Workhorse's `SetForwardedFor`: the client's IP, appended to any
/// `X-Forwarded-For` it sent.
fn forwarded_for(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
    let ip = peer?.ip().to_string();
    let prior: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if prior.is_empty() {
        Some(ip)
    } else {
        Some(format!("{}, {ip}", prior.join(", ")))
    }
}

/// The keepalive period from `TERMGATE_PING_SECS` (positive whole seconds),
/// else 30 s.
pub fn ping_interval(env: Option<&str>) -> Duration {
    env.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_PING, Duration::from_secs)
}

/// Rails' `terminal_specification`: the session url with https → wss, plus
/// `/exec`. (`http`/`ws`/`wss` urls are taken too, as Workhorse takes any
/// ws or wss url.)
pub fn exec_url(session_url: &str) -> Result<String, DialError> {
    let url = session_url.trim().trim_end_matches('/');
    let lower = url.to_ascii_lowercase();
    let swap = |n: usize, scheme: &str| {
        url.get(n..)
            .filter(|rest| !rest.is_empty())
            .map(|rest| format!("{scheme}{rest}/exec"))
    };
    let out = if lower.starts_with("https://") {
        swap("https://".len(), "wss://")
    } else if lower.starts_with("http://") {
        swap("http://".len(), "ws://")
    } else if lower.starts_with("wss://") || lower.starts_with("ws://") {
        Some(format!("{url}/exec"))
    } else {
        None
    };
    out.ok_or_else(|| DialError::BadUrl(session_url.to_owned()))
}

/// A rustls client config trusting only the certificate(s) in `pem`
/// (Workhorse's `CAPem`).
pub fn pinned_tls(pem: &str) -> Result<Arc<rustls::ClientConfig>, DialError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
        let cert = cert.map_err(|e| DialError::BadCertificate(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| DialError::BadCertificate(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(DialError::BadCertificate(
            "no PEM certificate found".to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DialError::BadCertificate(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Dial the runner's `/exec` as Workhorse does.
pub async fn dial(
    session: &SessionInfo,
    forwarded_for: Option<&str>,
) -> Result<Upstream, DialError> {
    let url = exec_url(&session.url)?;
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|_| DialError::BadUrl(session.url.clone()))?;
    let h = req.headers_mut();
    if !session.authorization.is_empty() {
        let v = HeaderValue::from_str(&session.authorization)
            .map_err(|_| DialError::BadHeader("Authorization"))?;
        h.insert(header::AUTHORIZATION, v);
    }
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(UPSTREAM_SUBPROTOCOL),
    );
    if let Some(xff) = forwarded_for {
        let v = HeaderValue::from_str(xff).map_err(|_| DialError::BadHeader("X-Forwarded-For"))?;
        h.insert("x-forwarded-for", v);
    }
    // An empty CAPem means the system roots to Workhorse; runners always
    // send their certificate.
    let connector = if session.certificate.trim().is_empty() {
        None
    } else {
        Some(Connector::Rustls(pinned_tls(&session.certificate)?))
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, connector);
    match tokio::time::timeout(DIAL_TIMEOUT, connect).await {
        Err(_) => Err(DialError::Timeout(DIAL_TIMEOUT)),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(classify(e)),
    }
}

fn classify(e: ts::Error) -> DialError {
    match e {
        ts::Error::Http(resp) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| truncate(String::from_utf8_lossy(b).trim(), 200).to_owned())
                .unwrap_or_default();
            DialError::Refused {
                status: resp.status(),
                body,
            }
        }
        ts::Error::Tls(e) => DialError::Tls(e.to_string()),
        ts::Error::Io(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
            DialError::Tls(e.to_string())
        }
        other => DialError::Connect(other.to_string()),
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// How a proxied session ended.
#[derive(Debug)]
enum End {
    /// The client sent a close frame or went away.
    ClientLeft(&'static str),
    /// The runner sent this close frame.
    RunnerClosed(Option<CloseFrame>),
    /// The runner's connection ended without a close frame.
    RunnerGone,
    /// Reading, writing or decoding failed.
    Error(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::ClientLeft(how) => write!(f, "client left ({how})"),
            End::RunnerClosed(Some(c)) => {
                write!(
                    f,
                    "runner closed ({} {:?})",
                    u16::from(c.code),
                    c.reason.as_str()
                )
            }
            End::RunnerClosed(None) => write!(f, "runner closed"),
            End::RunnerGone => write!(f, "runner connection ended"),
            End::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Relay until either side ends, then close both as Workhorse does.
async fn proxy(
    client: WebSocket,
    upstream: Upstream,
    protocol: &'static str,
    ping: Duration,
) -> End {
    let (mut c_tx, mut c_rx) = client.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    let end = tokio::select! {
        e = client_to_runner(&mut c_rx, &mut u_tx, protocol) => e,
        e = runner_to_client(&mut u_rx, &mut c_tx, protocol, ping) => e,
    };
    match &end {
        End::RunnerClosed(frame) => {
            let frame = frame.as_ref().map(|f| ws::CloseFrame {
                code: u16::from(f.code),
                reason: f.reason.as_str().into(),
            });
            bounded(c_tx.send(ws::Message::Close(frame))).await;
            bounded(c_tx.close()).await;
            // Completes the close handshake the runner started.
            bounded(u_tx.close()).await;
        }
        End::RunnerGone => {
            let frame = ws::CloseFrame {
                code: 1000,
                reason: "the runner closed the terminal connection".into(),
            };
            bounded(c_tx.send(ws::Message::Close(Some(frame)))).await;
            bounded(c_tx.close()).await;
        }
        End::ClientLeft(_) | End::Error(_) => {
            // Workhorse: `defer upstream.WriteMessage(BinaryMessage, eot)`.
            bounded(u_tx.send(ts::Message::Binary(Bytes::from_static(&[EOT])))).await;
            bounded(u_tx.close()).await;
            if let End::Error(e) = &end {
                let frame = ws::CloseFrame {
                    code: 1011,
                    reason: truncate(&format!("terminal proxy error: {e}"), MAX_CLOSE_REASON)
                        .into(),
                };
                bounded(c_tx.send(ws::Message::Close(Some(frame)))).await;
            }
            bounded(c_tx.close()).await;
        }
    }
    end
}

/// Run a closing step, ignoring its failure and bounding its time.
async fn bounded<F: std::future::Future>(step: F) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, step).await;
}

/// Client frames → raw bytes → the runner.
async fn client_to_runner<R, W>(c_rx: &mut R, u_tx: &mut W, protocol: &str) -> End
where
    R: Stream<Item = Result<ws::Message, axum::Error>> + Unpin,
    W: Sink<ts::Message, Error = ts::Error> + Unpin,
{
    loop {
        let frame = match c_rx.next().await {
            None => return End::ClientLeft("connection ended"),
            Some(Err(_)) => return End::ClientLeft("connection lost"),
            Some(Ok(msg)) => match msg {
                ws::Message::Binary(b) => Frame::binary(b.into()),
                ws::Message::Text(t) => Frame::text(t.as_str().as_bytes().to_vec()),
                ws::Message::Ping(p) => {
                    if let Err(e) = u_tx.send(ts::Message::Ping(p)).await {
                        return End::Error(format!("writing to the runner: {e}"));
                    }
                    continue;
                }
                ws::Message::Pong(_) => continue,
                ws::Message::Close(_) => return End::ClientLeft("close frame"),
            },
        };
        let raw = match wrap_read(protocol, frame) {
            Ok(f) => f.payload,
            Err(e) => return End::Error(format!("reading from the client: {e}")),
        };
        if let Err(e) = u_tx.send(ts::Message::Binary(raw.into())).await {
            return End::Error(format!("writing to the runner: {e}"));
        }
    }
}

/// Runner output → client frames, plus the keepalive ping.
async fn runner_to_client<R, W>(u_rx: &mut R, c_tx: &mut W, protocol: &str, ping: Duration) -> End
where
    R: Stream<Item = Result<ts::Message, ts::Error>> + Unpin,
    W: Sink<ws::Message, Error = axum::Error> + Unpin,
{
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            _ = tick.tick() => ws::Message::Ping(Bytes::new()),
            m = u_rx.next() => match m {
                None => return End::RunnerGone,
                Some(Err(
                    ts::Error::ConnectionClosed
                    | ts::Error::AlreadyClosed
                    | ts::Error::Protocol(ts::error::ProtocolError::ResetWithoutClosingHandshake),
                )) => return End::RunnerGone,
                Some(Err(e)) => return End::Error(format!("reading from the runner: {e}")),
                Some(Ok(msg)) => match msg {
                    ts::Message::Binary(b) => client_message(protocol, Frame::binary(b.into())),
                    ts::Message::Text(t) => {
                        client_message(protocol, Frame::text(t.as_str().as_bytes().to_vec()))
                    }
                    ts::Message::Ping(p) => ws::Message::Ping(p),
                    ts::Message::Pong(_) | ts::Message::Frame(_) => continue,
                    ts::Message::Close(f) => return End::RunnerClosed(f),
                },
            },
        };
        if let Err(e) = c_tx.send(msg).await {
            return End::Error(format!("writing to the client: {e}"));
        }
    }
}

/// Raw runner output as a frame of the client's subprotocol.
fn client_message(protocol: &str, frame: Frame) -> ws::Message {
    let out = wrap_write(protocol, frame);
    match out.kind {
        FrameKind::Text => {
            ws::Message::Text(String::from_utf8_lossy(&out.payload).into_owned().into())
        }
        _ => ws::Message::Binary(out.payload.into()),
    }
}
