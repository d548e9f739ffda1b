//! A fake session server's operator API over TLS (an rcgen certificate for
//! 127.0.0.1): `GET /sessions` and a WebSocket echo at
//! `/session/{id}/{mode}` with the subprotocol `v4.channel.k8s.io`.
//!
//! Tokens: [`CONTROL`] and [`OBSERVE`] (roles), [`BUSY`] (always 429,
//! `Retry-After: 7`), [`BROKEN`] (always 500); anything else is 401.
//! Sessions: `x` (someone at the terminal) and `idle` (nobody: join is
//! 409); any other id is 404.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use termgate::operator::{ClientSummary, Mode, Role, SessionList, SessionSummary, REASON_HEADER};

pub const CONTROL: &str = "tgo_control_5f0e0c0ffee";
pub const OBSERVE: &str = "tgo_observe_5f0e0c0ffee";
pub const BUSY: &str = "tgo_busy_5f0e0c0ffee";
pub const BROKEN: &str = "tgo_broken_5f0e0c0ffee";

#[derive(Default)]
pub struct Seen {
    /// `X-Termgate-Reason` of every attach that got that far.
    pub reasons: Vec<Option<String>>,
    /// The `Sec-WebSocket-Protocol` offers.
    pub protocols: Vec<String>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// SHA-256 of its certificate.
    pub fingerprint: [u8; 32],
    pub seen: Arc<Mutex<Seen>>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

pub fn sessions_fixture() -> SessionList {
    let started = (chrono::Utc::now() - chrono::Duration::minutes(12)).to_rfc3339();
    SessionList {
        sessions: vec![
            SessionSummary {
                id: "9f1c2d3e4f5a6b7c8d9e0e0".into(),
                job_id: 4711,
                project: "acme/webapp".into(),
                job_name: "deploy".into(),
                executor: "shell".into(),
                state: "active".into(),
                started_at: started,
                clients: vec![
                    ClientSummary {
                        role: "interactive".into(),
                        name: None,
                        peer: "127.0.0.1:40000".into(),
                        since: String::new(),
                    },
                    ClientSummary {
                        role: "observer".into(),
                        name: Some("alice".into()),
                        peer: "127.0.0.1:40001".into(),
                        since: String::new(),
                    },
                ],
                bytes_in: 3 * 1024,
                bytes_out: 1_258_291,
            },
            SessionSummary {
                id: "c3d4".into(),
                job_id: 4715,
                project: "tools/runbook".into(),
                state: "waiting".into(),
                started_at: chrono::Utc::now().to_rfc3339(),
                ..Default::default()
            },
        ],
    }
}

#[derive(Clone)]
struct AppState {
    seen: Arc<Mutex<Seen>>,
}

/// The token's role, or the refusal to answer with.
fn role(headers: &HeaderMap) -> Result<Role, Box<Response>> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let refused = match auth.strip_prefix("Bearer ") {
        Some(CONTROL) => return Ok(Role::Control),
        Some(OBSERVE) => return Ok(Role::Observe),
        Some(BUSY) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            "slow down\n",
        )
            .into_response(),
        Some(BROKEN) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "\ndatabase on fire\nsecond line\n",
        )
            .into_response(),
        _ => (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response(),
    };
    Err(Box::new(refused))
}

async fn sessions(headers: HeaderMap) -> Response {
    match role(&headers) {
        Ok(_) => axum::Json(sessions_fixture()).into_response(),
        Err(r) => *r,
    }
}

async fn attach(
    State(st): State<AppState>,
    Path((id, mode)): Path<(String, String)>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let role = match role(&headers) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some(mode) = Mode::parse(&mode) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if id != "x" && id != "idle" {
        return (StatusCode::NOT_FOUND, "no such session\n").into_response();
    }
    if !role.allows(mode) {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    let reason = headers
        .get(REASON_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    {
        let mut seen = st.seen.lock().unwrap();
        seen.reasons.push(reason.clone());
        if let Some(p) = headers.get("sec-websocket-protocol") {
            seen.protocols
                .push(p.to_str().unwrap_or_default().to_string());
        }
    }
    if mode.needs_reason() && reason.is_none() {
        return (StatusCode::BAD_REQUEST, "reason required\n").into_response();
    }
    if id == "idle" && mode == Mode::Join {
        return (StatusCode::CONFLICT, "nobody at the terminal\n").into_response();
    }
    ws.protocols([termgate::terminal::V4_CHANNEL_K8S])
        .on_upgrade(echo)
}

async fn echo(ws: WebSocket) {
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(m)) = rx.next().await {
        let done = matches!(m, Message::Close(_));
        if tx.send(m).await.is_err() || done {
            break;
        }
    }
}

/// Start on `127.0.0.1:0` with a fresh certificate; runs until the
/// runtime ends.
pub async fn start() -> TestServer {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let fingerprint: [u8; 32] = Sha256::digest(cert.der()).into();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
    );
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new()
        .route(
            termgate::operator::SESSIONS_PATH,
            axum::routing::get(sessions),
        )
        .route("/session/{id}/{mode}", axum::routing::get(attach))
        .with_state(AppState { seen: seen.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    TestServer {
        addr,
        fingerprint,
        seen,
    }
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
