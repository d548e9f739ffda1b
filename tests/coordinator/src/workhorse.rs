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
//!   ([`termgate::terminal::wrap_read`]/[`termgate::terminal::wrap_write`]); pings are
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
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use termgate::api::SessionInfo;
use termgate::terminal::{BASE64_TERMINAL_GITLAB, TERMINAL_GITLAB};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self as ts};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::records::Phase;
use super::Shared;
use relay::{proxy, End};

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
/// Largest message accepted from either side (the runner sends ≤ 32 KiB;
/// a browser's paste is one frame, and the runner takes up to
/// `max_input_frame` bytes of input, default 1 MiB, which base64 makes a
/// third larger). Workhorse itself sets no read limit.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

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
    // For the log: the address, or `unknown` (never Rust's `Some(…)`).
    let peer_text = peer.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let upstream = match dial(&session, forwarded_for(&headers, peer).as_deref()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(job = id, peer = %peer_text, error = %e, "Terminal: connecting to server failed");
            return error(e.status(), &e);
        }
    };
    let ping = ping_interval(std::env::var(PING_ENV).ok().as_deref());
    upgrade
        .read_buffer_size(termgate::terminal::CLIENT_READ_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_failed_upgrade(move |e| {
            tracing::warn!(job = id, error = %e, "Terminal: upgrading client to websocket failed");
        })
        .on_upgrade(move |client| async move {
            tracing::info!(job = id, peer = %peer_text, subprotocol = protocol, "Terminal: started proxying");
            let end = proxy(client, upstream, protocol, ping).await;
            match &end {
                End::Error(e) => {
                    tracing::warn!(job = id, peer = %peer_text, error = %e, "Terminal: error proxying")
                }
                _ => {
                    tracing::info!(job = id, peer = %peer_text, reason = %end, "Terminal: finished proxying")
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
    let config = client_ws_config(MAX_MESSAGE);
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

/// tungstenite settings for the upstream (runner) side:
/// [`termgate::terminal::CLIENT_READ_BUFFER`], frames written at once, and
/// messages up to `max_message` bytes.
fn client_ws_config(
    max_message: usize,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(termgate::terminal::CLIENT_READ_BUFFER)
        .write_buffer_size(0)
        .max_frame_size(Some(max_message))
        .max_message_size(Some(max_message))
}

#[cfg(test)]
pub(crate) mod fake_runner;
mod relay;

#[cfg(test)]
mod tests {
    use super::fake_runner::{fake_runner, Ev, FakeRunner, Mode, TOKEN};
    use super::*;
    use crate::testkit::{start, Kit};
    use bytes::Bytes;
    use futures::{SinkExt as _, StreamExt as _};
    use serde_json::Value;
    use termgate::terminal::EOT;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    const WAIT: Duration = Duration::from_secs(10);

    /// A running job whose runner sent `session`.
    async fn running_job(k: &Kit, session: Value) -> u64 {
        let rt = k.runner(&[], true).await;
        k.job("term", &[]).await;
        let r = k.request(&rt, json!({ "session": session })).await;
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        let (id, jt) = (v["id"].as_u64().unwrap(), v["token"].as_str().unwrap());
        let r = k.put(id, json!({"token": jt, "state": "running"})).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        id
    }

    fn session_of(r: &FakeRunner) -> Value {
        json!({"url": r.url, "certificate": r.cert_pem, "authorization": TOKEN})
    }

    type Client = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

    async fn connect(k: &Kit, id: u64, protocols: &str) -> Result<(Client, String), ts::Error> {
        let mut req = format!("ws://{}/admin/jobs/{id}/terminal.ws", k.c.addr())
            .into_client_request()
            .unwrap();
        if !protocols.is_empty() {
            req.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(protocols).unwrap(),
            );
        }
        let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect in time")?;
        let proto = resp
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Ok((ws, proto))
    }

    /// The status and JSON `error` of a refused connection.
    async fn refused(k: &Kit, id: u64, protocols: &str) -> (u16, String) {
        match connect(k, id, protocols).await {
            Err(ts::Error::Http(resp)) => {
                let body: Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
                (
                    resp.status().as_u16(),
                    body["error"].as_str().unwrap_or("").to_owned(),
                )
            }
            Err(e) => panic!("expected an HTTP refusal, got {e}"),
            Ok(_) => panic!("expected an HTTP refusal, got a websocket"),
        }
    }

    /// The next message that is not a ping or pong.
    async fn next_msg(c: &mut Client) -> Option<ts::Message> {
        loop {
            let m = tokio::time::timeout(WAIT, c.next())
                .await
                .expect("message in time");
            match m {
                Some(Ok(ts::Message::Ping(_) | ts::Message::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                _ => return None,
            }
        }
    }

    #[tokio::test]
    async fn echo_through_the_proxy() {
        let k = start().await;
        let mut r = fake_runner(Mode::Echo).await;
        let id = running_job(&k, session_of(&r)).await;
        let (mut c, proto) = connect(&k, id, TERMINAL_GITLAB).await.unwrap();
        assert_eq!(proto, TERMINAL_GITLAB);
        match r.next().await {
            Ev::Handshake {
                path,
                auth,
                xff,
                protocols,
            } => {
                assert!(path.ends_with("/exec"), "{path}");
                assert_eq!(auth, TOKEN, "raw token, no Bearer");
                assert_eq!(xff, "127.0.0.1");
                assert_eq!(protocols, TERMINAL_GITLAB);
            }
            e => panic!("{e:?}"),
        }
        c.send(ts::Message::Binary(Bytes::from_static(b"ls\n")))
            .await
            .unwrap();
        assert_eq!(
            next_msg(&mut c).await,
            Some(ts::Message::Binary(Bytes::from_static(b"ls\n")))
        );
        assert_eq!(r.next().await, Ev::Binary(b"ls\n".to_vec()));
        // A text frame is data too, and reaches the runner as binary.
        c.send(ts::Message::Text("pwd\n".into())).await.unwrap();
        assert_eq!(r.next().await, Ev::Binary(b"pwd\n".to_vec()));
        assert_eq!(
            next_msg(&mut c).await,
            Some(ts::Message::Binary(Bytes::from_static(b"pwd\n")))
        );
        // Pings are answered through the proxy.
        c.send(ts::Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        let pong = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(Ok(ts::Message::Pong(p))) = c.next().await {
                    return p;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(&pong[..], b"p");
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn base64_client_subprotocol() {
        let k = start().await;
        let mut r = fake_runner(Mode::Echo).await;
        let id = running_job(&k, session_of(&r)).await;
        let (mut c, proto) = connect(&k, id, BASE64_TERMINAL_GITLAB).await.unwrap();
        assert_eq!(proto, BASE64_TERMINAL_GITLAB);
        assert!(
            matches!(r.next().await, Ev::Handshake { protocols, .. } if protocols == TERMINAL_GITLAB)
        );
        c.send(ts::Message::Text("bHMK".into())).await.unwrap();
        assert_eq!(r.next().await, Ev::Binary(b"ls\n".to_vec()));
        assert_eq!(
            next_msg(&mut c).await,
            Some(ts::Message::Text("bHMK".into()))
        );
        // Offering both picks Workhorse's first choice.
        let (_c2, proto) = connect(&k, id, "base64.terminal.gitlab.com, terminal.gitlab.com")
            .await
            .unwrap();
        assert_eq!(proto, TERMINAL_GITLAB);
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn client_leaving_sends_eot_first() {
        let k = start().await;
        let mut r = fake_runner(Mode::Echo).await;
        let id = running_job(&k, session_of(&r)).await;
        // With a close frame.
        let (mut c, _) = connect(&k, id, TERMINAL_GITLAB).await.unwrap();
        assert!(matches!(r.next().await, Ev::Handshake { .. }));
        c.send(ts::Message::Binary(Bytes::from_static(b"a")))
            .await
            .unwrap();
        assert_eq!(r.next().await, Ev::Binary(b"a".to_vec()));
        c.close(None).await.unwrap();
        assert_eq!(r.next().await, Ev::Binary(vec![EOT]));
        let rest = [r.next().await, r.next().await];
        assert_eq!(rest, [Ev::Close, Ev::Gone]);
        // Without one (the TCP connection just ends).
        let (mut c, _) = connect(&k, id, TERMINAL_GITLAB).await.unwrap();
        assert!(matches!(r.next().await, Ev::Handshake { .. }));
        c.send(ts::Message::Binary(Bytes::from_static(b"b")))
            .await
            .unwrap();
        assert_eq!(r.next().await, Ev::Binary(b"b".to_vec()));
        drop(c);
        assert_eq!(r.next().await, Ev::Binary(vec![EOT]));
        assert_eq!(r.next().await, Ev::Close);
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn runner_close_reason_reaches_the_client() {
        let k = start().await;
        let mut r = fake_runner(Mode::Echo).await;
        let id = running_job(&k, session_of(&r)).await;
        let (mut c, _) = connect(&k, id, TERMINAL_GITLAB).await.unwrap();
        c.send(ts::Message::Binary(Bytes::from_static(b"bye\n")))
            .await
            .unwrap();
        match next_msg(&mut c).await {
            Some(ts::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 4001);
                assert_eq!(f.reason.as_str(), "build container exited");
            }
            m => panic!("expected the runner's close frame, got {m:?}"),
        }
        assert!(matches!(r.next().await, Ev::Handshake { .. }));
        assert_eq!(r.next().await, Ev::Binary(b"bye\n".to_vec()));
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn runner_eof_closes_the_client() {
        let k = start().await;
        let r = fake_runner(Mode::Echo).await;
        let id = running_job(&k, session_of(&r)).await;
        let (mut c, _) = connect(&k, id, TERMINAL_GITLAB).await.unwrap();
        c.send(ts::Message::Binary(Bytes::from_static(b"drop\n")))
            .await
            .unwrap();
        match next_msg(&mut c).await {
            Some(ts::Message::Close(Some(f))) => {
                assert_eq!(f.code, CloseCode::Normal, "{f:?}");
                assert!(f.reason.as_str().contains("runner closed"), "{f:?}");
            }
            m => panic!("expected a close frame, got {m:?}"),
        }
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn certificate_pinning() {
        let k = start().await;
        let mut r = fake_runner(Mode::Echo).await;
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let id = running_job(
            &k,
            json!({"url": r.url, "certificate": other.cert.pem(), "authorization": TOKEN}),
        )
        .await;
        let (status, msg) = refused(&k, id, TERMINAL_GITLAB).await;
        assert_eq!(status, 502);
        assert!(msg.contains("TLS") && msg.contains("certificate"), "{msg}");
        // The runner never saw a request.
        assert!(r.events.try_recv().is_err());
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn runner_refusals_pass_through() {
        let k = start().await;
        let r = fake_runner(Mode::Reject(423)).await;
        let id = running_job(&k, session_of(&r)).await;
        let (status, msg) = refused(&k, id, TERMINAL_GITLAB).await;
        assert_eq!(status, 423);
        assert!(msg.contains("Terminal already connected"), "{msg}");

        let k2 = start().await;
        let r = fake_runner(Mode::Echo).await;
        let id = running_job(
            &k2,
            json!({"url": r.url, "certificate": r.cert_pem, "authorization": "wrong"}),
        )
        .await;
        assert_eq!(refused(&k2, id, TERMINAL_GITLAB).await.0, 401);
        k.c.shutdown().await;
        k2.c.shutdown().await;
    }

    #[tokio::test]
    async fn refusals_before_dialing() {
        let k = start().await;
        let (status, msg) = refused(&k, 99, TERMINAL_GITLAB).await;
        assert_eq!((status, msg.as_str()), (404, "no such job"));
        // running, but its runner sent no session
        let id = running_job(&k, json!({})).await;
        let (status, msg) = refused(&k, id, TERMINAL_GITLAB).await;
        assert_eq!(status, 409);
        assert!(msg.contains("no terminal session"), "{msg}");
        // pending
        let r = fake_runner(Mode::Echo).await;
        let id = k.job("pending", &["nobody"]).await;
        let (status, msg) = refused(&k, id, TERMINAL_GITLAB).await;
        assert_eq!(status, 409);
        assert!(msg.contains("pending"), "{msg}");
        // no (known) subprotocol
        let id = running_job(&k, session_of(&r)).await;
        assert_eq!(refused(&k, id, "").await.0, 400);
        assert_eq!(refused(&k, id, "v4.channel.k8s.io").await.0, 400);
        k.c.shutdown().await;
    }

    #[test]
    fn exec_urls() {
        assert_eq!(
            exec_url("https://runner:8093/session/ab").unwrap(),
            "wss://runner:8093/session/ab/exec"
        );
        assert_eq!(
            exec_url("HTTPS://r/session/ab/").unwrap(),
            "wss://r/session/ab/exec"
        );
        assert_eq!(exec_url("http://r/s").unwrap(), "ws://r/s/exec");
        assert!(exec_url("runner:8093/session/ab").is_err());
        assert!(exec_url("https://").is_err());
        assert!(pinned_tls("not a pem").is_err());
    }

    #[test]
    fn ping_period() {
        assert_eq!(ping_interval(None), DEFAULT_PING);
        assert_eq!(ping_interval(Some("5")), Duration::from_secs(5));
        assert_eq!(ping_interval(Some("0")), DEFAULT_PING);
        assert_eq!(ping_interval(Some("x")), DEFAULT_PING);
    }

    #[test]
    fn forwarded_for_appends() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 5)));
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_for(&h, peer).as_deref(), Some("10.0.0.1"));
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        assert_eq!(
            forwarded_for(&h, peer).as_deref(),
            Some("1.2.3.4, 10.0.0.1")
        );
        assert_eq!(forwarded_for(&h, None), None);
    }
}
