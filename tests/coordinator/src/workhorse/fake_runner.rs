//! A fake runner session server for tests: TLS with a fresh rcgen
//! certificate for 127.0.0.1, `/session/<id>/exec` checking the raw token
//! and the subprotocol, echoing input and reporting what it saw.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use futures::{SinkExt as _, StreamExt as _};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use termgate::terminal::TERMINAL_GITLAB;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self as ts};

/// The session token the fake runner accepts.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);

/// What the fake runner saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Handshake {
        path: String,
        auth: String,
        xff: String,
        protocols: String,
    },
    Binary(Vec<u8>),
    Text(String),
    Close,
    Gone,
}

#[derive(Clone, Copy)]
pub enum Mode {
    /// Echo data; on `bye\n` close with 4001 "build container exited",
    /// on `drop\n` end the connection without a close frame.
    Echo,
    /// Refuse the upgrade with this status.
    Reject(u16),
}

pub struct FakeRunner {
    /// `https://127.0.0.1:PORT/session/<64 hex>`
    pub url: String,
    pub cert_pem: String,
    pub events: mpsc::Receiver<Ev>,
}

impl FakeRunner {
    /// The next thing the runner saw (panics after 10 s).
    pub async fn next(&mut self) -> Ev {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("fake runner event in time")
            .expect("fake runner alive")
    }
}

/// A runner session server: TLS with a fresh rcgen certificate for
/// 127.0.0.1 (IP SAN), `/session/<id>/exec` checking the raw token and
/// the subprotocol.
pub async fn fake_runner(mode: Mode) -> FakeRunner {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                serve_exec(tls, mode, tx).await;
            });
        }
    });
    FakeRunner {
        url: format!("https://{addr}/session/{}", "ab".repeat(32)),
        cert_pem: ck.cert.pem(),
        events: rx,
    }
}

// tungstenite's `Callback` fixes the closure's error type.
#[allow(clippy::result_large_err)]
async fn serve_exec<S>(stream: S, mode: Mode, tx: mpsc::Sender<Ev>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let seen = tx.clone();
    let callback = move |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let get = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let _ = seen.try_send(Ev::Handshake {
            path: req.uri().path().to_owned(),
            auth: get("authorization"),
            xff: get("x-forwarded-for"),
            protocols: get("sec-websocket-protocol"),
        });
        let refuse = |code: u16, body: &str| {
            let mut r = ErrorResponse::new(Some(body.to_owned()));
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            r
        };
        if !req.uri().path().ends_with("/exec") {
            return Err(refuse(404, "Mux handler not found"));
        }
        if get("authorization") != TOKEN {
            return Err(refuse(401, "Authorization header is not valid"));
        }
        if let Mode::Reject(code) = mode {
            return Err(refuse(
                code,
                "Terminal already connected, revoking connection",
            ));
        }
        if !get("sec-websocket-protocol")
            .split(',')
            .any(|p| p.trim() == TERMINAL_GITLAB)
        {
            return Err(refuse(400, "no terminal.gitlab.com"));
        }
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(TERMINAL_GITLAB),
        );
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            ts::Message::Binary(b) => {
                let _ = tx.send(Ev::Binary(b.to_vec())).await;
                if &b[..] == b"drop\n" {
                    // Like gitlab-runner: no close handshake, just EOF.
                    break;
                }
                if &b[..] == b"bye\n" {
                    let close = CloseFrame {
                        code: CloseCode::from(4001),
                        reason: "build container exited".into(),
                    };
                    let _ = ws.send(ts::Message::Close(Some(close))).await;
                } else {
                    let _ = ws.send(ts::Message::Binary(b)).await;
                }
            }
            ts::Message::Text(t) => {
                let _ = tx.send(Ev::Text(t.as_str().to_owned())).await;
            }
            ts::Message::Close(_) => {
                let _ = tx.send(Ev::Close).await;
            }
            _ => {}
        }
    }
    let _ = tx.send(Ev::Gone).await;
}
