//! `GET /session/{id}/exec`, in upstream's order (see [`super`]): each
//! check either passes or is a [`Rejection`]; past them all, the terminal
//! is opened and the connection upgraded to a [`bridge`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use termgate::terminal::{negotiate, Protocol, ServerCodec};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::accept::PendingSlot;
use super::rejection::Rejection;
use super::{operator, Endpoints, State};
use crate::executor::terminal::{TermSize, TerminalHandle};
use crate::session::bridge::{self, BridgeContext};
use crate::session::recording::{Recording, RecordingMeta};
use crate::session::Session;
use termgate::logschema::{self as schema, msg};
use termgate::operator::client_role;

/// `/session/{id}/{rest}` → (id, rest).
pub(super) fn route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/session/")?;
    let (id, sub) = rest.split_once('/')?;
    (!id.is_empty()).then_some((id, sub))
}

/// Answer one request on the session server.
pub(super) async fn handle(
    req: Request<Incoming>,
    st: Arc<State>,
    peer: SocketAddr,
    endpoints: Endpoints,
    slot: &PendingSlot,
) -> Response<String> {
    let requested_at = Instant::now();
    let uri = req.uri().path().to_string();
    let operator_route = endpoints.operator.then(|| operator::route(&uri)).flatten();
    if let Some(r) = operator_route {
        return operator::handle(req, &st, peer, r, requested_at, slot)
            .await
            .unwrap_or_else(|rejection| rejection.respond(&st, peer));
    }
    if !endpoints.exec {
        return Rejection::session_not_found(&uri, None).respond(&st, peer);
    }
    let answer = match find_session(&st, &uri) {
        Err(rejection) => Err(rejection),
        Ok((session, "exec")) => exec(req, &st, peer, session, requested_at, slot).await,
        Ok((session, sub)) if sub.starts_with("proxy/") => check_auth(&session, req.headers())
            .and_then(|()| Err(Rejection::proxy_not_found(&uri, session.job.job_id))),
        Ok((session, _)) => Err(Rejection::session_not_found(&uri, Some(session.job.job_id))),
    };
    answer.unwrap_or_else(|rejection| rejection.respond(&st, peer))
}

/// The open session `uri` names, and the rest of the path; else 404.
fn find_session<'u>(st: &State, uri: &'u str) -> Result<(Arc<Session>, &'u str), Rejection> {
    route(uri)
        .and_then(|(id, sub)| {
            st.registry
                .get(id)
                .filter(|s| !s.is_closed())
                .map(|s| (s, sub))
        })
        .ok_or_else(|| Rejection::session_not_found(uri, None))
}

/// 401 unless `Authorization` is the raw token (constant-time compare).
pub(super) fn check_auth(session: &Session, headers: &HeaderMap) -> Result<(), Rejection> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session.token_matches(given) {
        Ok(())
    } else {
        Err(Rejection::unauthorized(session.job.job_id))
    }
}

/// The `/exec` checks in upstream's order (401, 405, 400/403, 503, 423,
/// 500), then the upgrade: `101` now, the [`bridge`] once hyper hands over
/// the connection.
async fn exec(
    mut req: Request<Incoming>,
    st: &State,
    peer: SocketAddr,
    session: Arc<Session>,
    requested_at: Instant,
    slot: &PendingSlot,
) -> Result<Response<String>, Rejection> {
    let job = session.job.job_id;
    check_auth(&session, req.headers())?;
    // The token holder's connection waits for its terminal without fear
    // of being evicted by a flood of unauthenticated ones.
    slot.protect();
    if !is_websocket_upgrade(req.headers()) {
        return Err(Rejection::not_websocket(job));
    }
    let accept = check_handshake(&req, job)?;
    let factory = tokio::select! {
        f = session.wait_terminal(st.opts.terminal_wait) => f,
        _ = st.shutdown.cancelled() => None,
    };
    let factory = factory.ok_or_else(|| Rejection::terminal_not_set(job))?;
    let seat = session
        .try_take_seat()
        .ok_or_else(|| Rejection::seat_taken(job))?;
    let term = factory
        .open(TermSize::default())
        .await
        .map_err(|e| Rejection::connect_failed(job, e))?;

    let offered = header_tokens(req.headers(), &header::SEC_WEBSOCKET_PROTOCOL);
    let chosen = negotiate(offered.iter().copied());
    let protocol = chosen
        .and_then(Protocol::from_name)
        .unwrap_or(Protocol::Terminal);
    let recording = start_recording(st, &session, client_role::INTERACTIVE, None);
    let ctx = BridgeContext {
        client: session.add_client(client_role::INTERACTIVE, None, peer),
        recording,
        role: client_role::INTERACTIVE,
        session,
        seat: Some(seat),
        registry: st.registry.clone(),
        metrics: st.metrics.clone(),
        codec: ServerCodec::new(protocol).with_max_input(st.max_input_frame),
        peer,
        requested_at,
        ping_interval: st.opts.ping_interval,
        idle_timeout: st.opts.idle_timeout,
        shutdown: st.shutdown.clone(),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    st.tracker.spawn(bridge_after_upgrade(
        on_upgrade,
        term,
        ctx,
        st.max_input_frame,
    ));
    Ok(switching_protocols(&accept, chosen))
}

/// Start recording a terminal of `session` if recordings are on.
pub(super) fn start_recording(
    st: &State,
    session: &Session,
    mode: &'static str,
    operator: Option<String>,
) -> Option<Recording> {
    st.recorder.as_ref()?.start(RecordingMeta {
        job_id: session.job.job_id,
        mode,
        session_id: session.id.clone(),
        operator,
        size: TermSize::default(),
        masked: session.job.masked.clone(),
    })
}

/// Wait for hyper to hand over the upgraded connection, then pump it.
async fn bridge_after_upgrade(
    on_upgrade: hyper::upgrade::OnUpgrade,
    term: TerminalHandle,
    ctx: BridgeContext,
    max_input: usize,
) {
    let job = ctx.session.job.job_id;
    match upgraded(on_upgrade, job, max_input).await {
        Some(ws) => {
            bridge::run(ws, term, ctx).await;
        }
        None => term.control.close().await,
    }
}

/// The WebSocket hyper hands over after the `101` (frames sized for
/// `max_input` bytes of input, [`bridge::ws_config`]); `None` (logged) if
/// the upgrade failed.
pub(super) async fn upgraded(
    on_upgrade: hyper::upgrade::OnUpgrade,
    job: u64,
    max_input: usize,
) -> Option<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>> {
    match on_upgrade.await {
        Ok(upgraded) => Some(
            WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(bridge::ws_config(max_input)),
            )
            .await,
        ),
        Err(e) => {
            tracing::warn!({ schema::JOB } = job, { schema::ERROR } = %e, "{}", msg::WEBSOCKET_UPGRADE_FAILED);
            None
        }
    }
}

/// `101 Switching Protocols` with the accept key and the chosen protocol.
pub(super) fn switching_protocols(
    accept: &str,
    protocol: Option<&'static str>,
) -> Response<String> {
    let mut r = Response::new(String::new());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    r
}

/// gorilla's handshake checks, and (termgate) HTTP/1.1 at least as RFC
/// 6455 asks: an HTTP/1.0 connection ends with its response, so the
/// terminal opened for it would only be killed again; `Ok` is the accept
/// key.
pub(super) fn check_handshake<B>(req: &Request<B>, job: u64) -> Result<String, Rejection> {
    let refuse = |status, why| Rejection::bad_handshake(job, status, why);
    if req.version() < Version::HTTP_11 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "websocket: the client is not using the websocket protocol: HTTP/1.1 or later is required",
        ));
    }
    if req.method() != Method::GET {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "websocket: the client is not using the websocket protocol: request method is not GET",
        ));
    }
    let h = req.headers();
    if !has_token(h, &header::SEC_WEBSOCKET_VERSION, "13") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
        ));
    }
    if !origin_allowed(h) {
        return Err(refuse(
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
        .ok_or_else(|| refuse(
            StatusCode::BAD_REQUEST,
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte length",
        ))?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// Comma-separated tokens of every `name` header.
pub(super) fn header_tokens<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Vec<&'a str> {
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
pub(super) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &header::CONNECTION, "upgrade")
        && has_token(headers, &header::UPGRADE, "websocket")
}

/// gorilla's default `CheckOrigin`: no `Origin`, or its host equals `Host`.
pub(super) fn origin_allowed(headers: &HeaderMap) -> bool {
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
