//! The operator API (`termgate::operator`): `GET /sessions` and the three
//! ways into a session (`observe`, `join`, `shell`), each behind an
//! operator's Bearer token (`session::operators`).
//!
//! Order of checks, each refusal a [`Rejection`] (`terminal_rejected`
//! event, `session_rejections_total{reason}`):
//! 1. the token: missing or unknown → 401; a peer that failed too often →
//!    429 with `Retry-After` (before the session is even looked up, so an
//!    unauthenticated client learns nothing about sessions);
//! 2. no open session with that id → 404;
//! 3. the operator's role does not allow the mode → 403;
//! 4. join or shell without `X-Termgate-Reason` → 400;
//! 5. not a (well-formed) WebSocket upgrade → 405/400/403 as `/exec`;
//! 6. observe/join: `max_observers` watching already → 503; join with
//!    nobody at the user's terminal → 409; shell: no terminal within the
//!    wait → 503, opening it fails → 500;
//! 7. `101`, an `operator_attached` audit line, the connection, then an
//!    `operator_detached` line with bytes, duration and the close reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use termgate::logschema::{self as schema, event, msg};
use termgate::metrics::rejection_reason;
use termgate::operator::{
    ClientSummary, Mode, SessionList, SessionSummary, MAX_REASON_CHARS, REASON_HEADER,
    SESSIONS_PATH,
};
use termgate::terminal::{negotiate, Protocol, ServerCodec};

use super::accept::PendingSlot;
use super::exec::{
    check_handshake, header_tokens, is_websocket_upgrade, start_recording, switching_protocols,
    upgraded,
};
use super::rejection::Rejection;
use super::State;
use crate::executor::terminal::TermSize;
use crate::session::bridge::{self, mirror, BridgeContext, Ended};
use crate::session::operators::{AuthError, Operator};
use crate::session::share::SubscribeError;
use crate::session::Session;

/// An operator API path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route<'a> {
    Sessions,
    Attach { id: &'a str, mode: Mode },
}

/// The operator route `path` names, if it is one.
pub(super) fn route(path: &str) -> Option<Route<'_>> {
    if path == SESSIONS_PATH {
        return Some(Route::Sessions);
    }
    let (id, mode) = super::exec::route(path)?;
    Some(Route::Attach {
        id,
        mode: Mode::parse(mode)?,
    })
}

/// Answer one operator API request.
pub(super) async fn handle(
    req: Request<Incoming>,
    st: &Arc<State>,
    peer: SocketAddr,
    route: Route<'_>,
    requested_at: Instant,
    slot: &PendingSlot,
) -> Result<Response<String>, Rejection> {
    let operator = authenticate(st, req.headers(), peer)?;
    slot.protect();
    match route {
        Route::Sessions if req.method() == Method::GET || req.method() == Method::HEAD => {
            Ok(sessions(st))
        }
        Route::Sessions => Err(Rejection::operator(
            StatusCode::METHOD_NOT_ALLOWED,
            rejection_reason::NOT_WEBSOCKET,
            "405 Method Not Allowed: GET /sessions",
            None,
        )),
        Route::Attach { id, mode } => attach(req, st, peer, operator, id, mode, requested_at).await,
    }
}

fn authenticate(st: &State, headers: &HeaderMap, peer: SocketAddr) -> Result<Operator, Rejection> {
    let Some(auth) = &st.operators else {
        return Err(Rejection::operator_unauthorized());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth.authenticate(given, peer.ip()).map_err(|e| match e {
        AuthError::Unauthorized => Rejection::operator_unauthorized(),
        AuthError::Throttled { retry_after } => {
            Rejection::throttled(retry_after.as_secs_f64().ceil() as u64)
        }
    })
}

/// `GET /sessions`: every open session, never a token.
fn sessions(st: &State) -> Response<String> {
    let list = SessionList {
        sessions: st
            .registry
            .list()
            .into_iter()
            .filter(|s| !s.is_closed())
            .map(|s| summary(&s))
            .collect(),
    };
    let body = serde_json::to_string(&list).unwrap_or_else(|_| "{\"sessions\":[]}".into());
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn summary(s: &Session) -> SessionSummary {
    use std::sync::atomic::Ordering;
    SessionSummary {
        id: s.id.clone(),
        job_id: s.job.job_id,
        project: s.job.project.clone(),
        job_name: s.job.job_name.clone(),
        executor: s.job.executor.clone(),
        state: s.state().to_string(),
        started_at: rfc3339(s.started_at),
        clients: s
            .clients()
            .into_iter()
            .map(|c| ClientSummary {
                role: c.role.to_string(),
                name: c.name,
                peer: c.peer.to_string(),
                since: rfc3339(c.since),
            })
            .collect(),
        bytes_in: s.bytes_in.load(Ordering::Relaxed),
        bytes_out: s.bytes_out.load(Ordering::Relaxed),
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `X-Termgate-Reason`, percent-decoded (clients send non-ASCII text as
/// `%C3%A9`), made one printable line of at most [`MAX_REASON_CHARS`];
/// `None` when missing or blank.
pub(super) fn reason_of(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(REASON_HEADER)?;
    let decoded = percent_decode(raw.as_bytes());
    let text = String::from_utf8_lossy(&decoded);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    let line = line.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// `%XX` sequences decoded; anything else kept as it is.
fn percent_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Who attached how, for the audit lines.
struct Audit {
    operator: Operator,
    mode: Mode,
    reason: Option<String>,
    peer: SocketAddr,
    session: Arc<Session>,
}

impl Audit {
    fn attached(&self) {
        self.log(event::OPERATOR_ATTACHED, msg::OPERATOR_ATTACHED, None);
    }

    fn detached(&self, ended: &Ended) {
        self.log(
            event::OPERATOR_DETACHED,
            msg::OPERATOR_DETACHED,
            Some(ended),
        );
    }

    /// One audit line; a detach also says how it ended, the bytes and how
    /// long it lasted.
    fn log(&self, event: &str, message: &str, ended: Option<&Ended>) {
        let s = &self.session;
        tracing::info!(
            { schema::EVENT } = event,
            { schema::OPERATOR } = %self.operator.name,
            { schema::ROLE } = self.operator.role.as_str(),
            { schema::MODE } = self.mode.as_str(),
            { schema::SESSION } = %s.id,
            { schema::JOB } = s.job.job_id,
            { schema::PROJECT } = %s.job.project,
            { schema::PEER } = %self.peer,
            { schema::REASON } = self.reason.as_deref(),
            { schema::CLOSE_REASON } = ended.map(|e| e.reason),
            { schema::BYTES_IN } = ended.map(|e| e.bytes_in),
            { schema::BYTES_OUT } = ended.map(|e| e.bytes_out),
            { schema::DURATION_S } = ended.map(|e| e.duration.as_secs_f64()),
            "{}", message
        );
    }

    /// The one-line notice the user sees when an operator joins or leaves.
    fn banner(&self, verb: &str) -> String {
        let why = self
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!(
            "\r\n[termgate] operator {} {verb} this terminal{why}\r\n",
            self.operator.name
        )
    }
}

/// What an accepted attach runs once upgraded.
enum Way {
    Watch(crate::session::share::Subscription),
    Shell(crate::executor::terminal::TerminalHandle),
}

#[allow(clippy::too_many_arguments)]
async fn attach(
    mut req: Request<Incoming>,
    st: &Arc<State>,
    peer: SocketAddr,
    operator: Operator,
    id: &str,
    mode: Mode,
    requested_at: Instant,
) -> Result<Response<String>, Rejection> {
    let uri = req.uri().path().to_string();
    let session = st
        .registry
        .get(id)
        .filter(|s| !s.is_closed())
        .ok_or_else(|| Rejection::session_not_found(&uri, None))?;
    let job = session.job.job_id;
    if !operator.role.allows(mode) {
        return Err(Rejection::operator(
            StatusCode::FORBIDDEN,
            rejection_reason::FORBIDDEN,
            format!(
                "403 Forbidden: operator {} has role {}, which may only observe",
                operator.name,
                operator.role.as_str()
            ),
            Some(job),
        ));
    }
    let reason = reason_of(req.headers());
    if mode.needs_reason() && reason.is_none() {
        return Err(Rejection::operator(
            StatusCode::BAD_REQUEST,
            rejection_reason::REASON_REQUIRED,
            format!(
                "400 Bad Request: {} needs a reason in the {REASON_HEADER} header (it goes to the audit log)",
                mode.as_str()
            ),
            Some(job),
        ));
    }
    if !is_websocket_upgrade(req.headers()) {
        return Err(Rejection::not_websocket(job));
    }
    let accept = check_handshake(&req, job)?;
    let way = match mode {
        Mode::Observe | Mode::Join => {
            if mode == Mode::Join && !session.share.has_writer() {
                return Err(Rejection::operator(
                    StatusCode::CONFLICT,
                    rejection_reason::NO_TERMINAL,
                    "409 Conflict: nobody is at this session's terminal to join; open a shell of your own instead",
                    Some(job),
                ));
            }
            let sub = session.share.subscribe(st.max_observers).map_err(|e| match e {
                SubscribeError::Full { max } => Rejection::operator(
                    StatusCode::SERVICE_UNAVAILABLE,
                    rejection_reason::OVER_LIMIT,
                    format!("503 Service Unavailable: {max} operators are watching this session already (max_observers)"),
                    Some(job),
                ),
            })?;
            Way::Watch(sub)
        }
        Mode::Shell => {
            let factory = tokio::select! {
                f = session.wait_terminal(st.opts.terminal_wait) => f,
                _ = st.shutdown.cancelled() => None,
            };
            let factory = factory.ok_or_else(|| Rejection::terminal_not_set(job))?;
            let term = factory
                .open(TermSize::default())
                .await
                .map_err(|e| Rejection::connect_failed(job, e))?;
            Way::Shell(term)
        }
    };

    let offered = header_tokens(req.headers(), &header::SEC_WEBSOCKET_PROTOCOL);
    let chosen = negotiate(offered.iter().copied());
    let protocol = chosen
        .and_then(Protocol::from_name)
        .unwrap_or(Protocol::Terminal);
    st.metrics
        .session_operator_connections_total
        .with_label_values(&[mode.as_str()])
        .inc();
    let audit = Audit {
        operator,
        mode,
        reason,
        peer,
        session: session.clone(),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let st2 = st.clone();
    st.tracker.spawn(async move {
        let Some(ws) = upgraded(on_upgrade, job, st2.max_input_frame).await else {
            if let Way::Shell(term) = way {
                term.control.close().await;
            }
            return;
        };
        audit.attached();
        let client =
            session.add_client(mode.client_role(), Some(audit.operator.name.clone()), peer);
        let codec = ServerCodec::new(protocol).with_max_input(st2.max_input_frame);
        let ended = match way {
            Way::Watch(subscription) => {
                if mode == Mode::Join {
                    session.share.banner(audit.banner("joined"));
                }
                let ended = mirror::run(
                    ws,
                    mirror::MirrorContext {
                        session: session.clone(),
                        subscription,
                        mode,
                        metrics: st2.metrics.clone(),
                        codec,
                        ping_interval: st2.opts.ping_interval,
                        shutdown: st2.shutdown.clone(),
                        client,
                    },
                )
                .await;
                if mode == Mode::Join {
                    session.share.banner(audit.banner("left"));
                }
                ended
            }
            Way::Shell(term) => {
                let recording = start_recording(
                    &st2,
                    &session,
                    termgate::operator::client_role::SHELL,
                    Some(audit.operator.name.clone()),
                );
                let ctx = BridgeContext {
                    session: session.clone(),
                    seat: None,
                    role: mode.client_role(),
                    client,
                    recording,
                    registry: st2.registry.clone(),
                    metrics: st2.metrics.clone(),
                    codec,
                    peer,
                    requested_at,
                    ping_interval: st2.opts.ping_interval,
                    idle_timeout: st2.opts.idle_timeout,
                    shutdown: st2.shutdown.clone(),
                };
                bridge::run(ws, term, ctx).await
            }
        };
        audit.detached(&ended);
    });
    Ok(switching_protocols(&accept, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/sessions"), Some(Route::Sessions));
        assert_eq!(
            route("/session/ab/observe"),
            Some(Route::Attach {
                id: "ab",
                mode: Mode::Observe
            })
        );
        assert_eq!(
            route("/session/ab/shell"),
            Some(Route::Attach {
                id: "ab",
                mode: Mode::Shell
            })
        );
        assert_eq!(route("/session/ab/exec"), None);
        assert_eq!(route("/sessions/x"), None);
    }

    #[test]
    fn reasons_become_one_short_printable_line() {
        let mut h = HeaderMap::new();
        assert_eq!(reason_of(&h), None);
        h.insert(REASON_HEADER, HeaderValue::from_static("   "));
        assert_eq!(reason_of(&h), None);
        h.insert(
            REASON_HEADER,
            HeaderValue::from_static("INC-42 stuck\tdeploy"),
        );
        assert_eq!(reason_of(&h).as_deref(), Some("INC-42 stuck deploy"));
        h.insert(
            REASON_HEADER,
            HeaderValue::from_static("caf%C3%A9 %ZZ 100%"),
        );
        assert_eq!(reason_of(&h).as_deref(), Some("café %ZZ 100%"));
        let long = "x".repeat(500);
        h.insert(REASON_HEADER, HeaderValue::from_str(&long).unwrap());
        assert_eq!(
            reason_of(&h).map(|r| r.chars().count()),
            Some(MAX_REASON_CHARS)
        );
    }
}
