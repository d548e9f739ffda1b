//! One refused request: what the client gets, the metric's reason label and
//! what the log says.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use termgate::logschema::{self as schema, event, msg};
use termgate::metrics::rejection_reason;

use super::accept::peer_key;
use super::quiet::Say;
use super::State;
use crate::executor::terminal::OpenError;

/// A refusal of a `/session/...` request. [`Rejection::respond`] logs
/// upstream's line for it, counts it in
/// `gitlab_runner_session_rejections_total{reason}`, logs a
/// `terminal_rejected` event (never the token) and answers like Go's
/// `http.Error`.
#[derive(Debug)]
pub(super) struct Rejection {
    pub status: StatusCode,
    /// The metric's `reason` label ([`rejection_reason`]).
    pub reason: &'static str,
    pub body: Cow<'static, str>,
    /// The job of the session addressed, when there is one.
    pub job: Option<u64>,
    said: Said,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// Upstream's log line for a refusal, with its fields.
#[derive(Debug)]
enum Said {
    /// `Failed to find session by URL` + `Mux handler not found`.
    SessionNotFound {
        uri: String,
    },
    /// A service proxy (only upstream's Kubernetes executor has them).
    ProxyNotFound {
        uri: String,
    },
    AuthorizationNotValid,
    NotWebsocket,
    /// gorilla's refusal of a malformed handshake.
    BadHandshake,
    TerminalNotSet,
    AlreadyConnected,
    ConnectFailed(OpenError),
    /// The operator API's own refusals: the `terminal_rejected` event says
    /// it all.
    Operator,
}

impl Rejection {
    fn new(
        status: StatusCode,
        reason: &'static str,
        body: impl Into<Cow<'static, str>>,
        job: Option<u64>,
        said: Said,
    ) -> Self {
        Rejection {
            status,
            reason,
            body: body.into(),
            job,
            said,
            headers: Vec::new(),
        }
    }

    /// An operator API refusal with its own explanation.
    pub fn operator(
        status: StatusCode,
        reason: &'static str,
        body: impl Into<Cow<'static, str>>,
        job: Option<u64>,
    ) -> Self {
        Rejection::new(status, reason, body, job, Said::Operator)
    }

    /// 401 from the operator API: no, or an unknown, Bearer token.
    pub fn operator_unauthorized() -> Self {
        let mut r = Rejection::operator(
            StatusCode::UNAUTHORIZED,
            rejection_reason::UNAUTHORIZED,
            "401 Unauthorized: an operator token is required (Authorization: Bearer <token>)",
            None,
        );
        r.headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"termgate operators\""),
        ));
        r
    }

    /// 429: this peer failed to log in too often; `retry_after` seconds.
    pub fn throttled(retry_after: u64) -> Self {
        let mut r = Rejection::operator(
            StatusCode::TOO_MANY_REQUESTS,
            rejection_reason::THROTTLED,
            format!("429 Too Many Requests: too many failed operator logins from this address; retry in {retry_after} s"),
            None,
        );
        r.headers
            .push((header::RETRY_AFTER, HeaderValue::from(retry_after.max(1))));
        r
    }

    /// 404: no routable session for the URL, or a path it does not serve.
    pub fn session_not_found(uri: &str, job: Option<u64>) -> Self {
        let uri = uri.to_string();
        let said = Said::SessionNotFound { uri };
        let (status, reason) = (StatusCode::NOT_FOUND, rejection_reason::NOT_FOUND);
        Rejection::new(status, reason, "404 page not found", job, said)
    }

    /// 404: `/session/<id>/proxy/...` (authorised, but there is none).
    pub fn proxy_not_found(uri: &str, job: u64) -> Self {
        let uri = uri.to_string();
        let said = Said::ProxyNotFound { uri };
        let (status, reason) = (StatusCode::NOT_FOUND, rejection_reason::NOT_FOUND);
        Rejection::new(status, reason, status_text(status), Some(job), said)
    }

    /// 401: `Authorization` is not the session's token.
    pub fn unauthorized(job: u64) -> Self {
        let status = StatusCode::UNAUTHORIZED;
        let said = Said::AuthorizationNotValid;
        Rejection::new(
            status,
            rejection_reason::UNAUTHORIZED,
            status_text(status),
            Some(job),
            said,
        )
    }

    /// 405: not a WebSocket upgrade.
    pub fn not_websocket(job: u64) -> Self {
        let status = StatusCode::METHOD_NOT_ALLOWED;
        let said = Said::NotWebsocket;
        Rejection::new(
            status,
            rejection_reason::NOT_WEBSOCKET,
            status_text(status),
            Some(job),
            said,
        )
    }

    /// 405/400/403: a malformed WebSocket handshake, with gorilla's text.
    pub fn bad_handshake(job: u64, status: StatusCode, why: &'static str) -> Self {
        let reason = if status == StatusCode::FORBIDDEN {
            rejection_reason::UNAUTHORIZED
        } else {
            rejection_reason::NOT_WEBSOCKET
        };
        Rejection::new(status, reason, why, Some(job), Said::BadHandshake)
    }

    /// 503: the executor set no terminal in time.
    pub fn terminal_not_set(job: u64) -> Self {
        let status = StatusCode::SERVICE_UNAVAILABLE;
        let said = Said::TerminalNotSet;
        Rejection::new(
            status,
            rejection_reason::UNAVAILABLE,
            status_text(status),
            Some(job),
            said,
        )
    }

    /// 423: another client has the interactive seat.
    pub fn seat_taken(job: u64) -> Self {
        let status = StatusCode::LOCKED;
        let said = Said::AlreadyConnected;
        Rejection::new(
            status,
            rejection_reason::LOCKED,
            status_text(status),
            Some(job),
            said,
        )
    }

    /// 500: the terminal could not be opened.
    pub fn connect_failed(job: u64, error: OpenError) -> Self {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        let said = Said::ConnectFailed(error);
        Rejection::new(
            status,
            rejection_reason::CONNECT_FAILED,
            status_text(status),
            Some(job),
            said,
        )
    }

    /// Log and count the refusal, and make its response. Authorization
    /// failures (401, 429, and 403 for a foreign `Origin`) are logged in
    /// full only for the first of a peer in an interval; the later ones are
    /// counted and told in one line (see [`quiet`](super::quiet)); the
    /// metric counts each.
    pub fn respond(self, st: &State, peer: SocketAddr) -> Response<String> {
        st.metrics
            .session_rejections_total
            .with_label_values(&[self.reason])
            .inc();
        let say = if self.is_auth_failure() {
            let key = (Some(peer_key(peer.ip())), self.reason);
            st.auth_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .note(key, Instant::now())
        } else {
            Say::Line { count: 1 }
        };
        match say {
            Say::Line { count: 1 } => self.log(peer),
            Say::Line { count } => tell_auth_failures_of(self.reason, Some(peer.ip()), count),
            Say::Quiet => {}
        }
        let Rejection {
            status,
            reason,
            body,
            headers,
            ..
        } = self;
        let mut r = plain(status, &body);
        for (name, value) in headers {
            r.headers_mut().insert(name, value);
        }
        if status == StatusCode::BAD_REQUEST && reason != rejection_reason::REASON_REQUIRED {
            // gorilla names the version it speaks.
            r.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        r
    }

    fn is_auth_failure(&self) -> bool {
        self.reason == rejection_reason::UNAUTHORIZED || self.reason == rejection_reason::THROTTLED
    }

    /// Upstream's line and the `terminal_rejected` event.
    fn log(&self, peer: SocketAddr) {
        self.log_upstream_line();
        tracing::info!(
            { schema::EVENT } = event::TERMINAL_REJECTED,
            { schema::REASON } = self.reason,
            { schema::PEER } = %peer,
            { schema::JOB } = self.job,
            { schema::STATUS } = self.status.as_u16(),
            "{}", msg::TERMINAL_REJECTED
        );
    }

    fn log_upstream_line(&self) {
        let job = self.job;
        match &self.said {
            Said::SessionNotFound { uri } => {
                tracing::warn!({ schema::JOB } = job, { schema::URI } = %uri, "{}", msg::SESSION_NOT_FOUND);
                tracing::error!({ schema::JOB } = job, { schema::URI } = %uri, "{}", msg::MUX_NOT_FOUND);
            }
            Said::ProxyNotFound { uri } => {
                tracing::warn!({ schema::JOB } = job, { schema::URI } = %uri, "{}", msg::PROXY_NOT_FOUND)
            }
            Said::AuthorizationNotValid => {
                tracing::error!({ schema::JOB } = job, "{}", msg::AUTHORIZATION_NOT_VALID);
            }
            Said::NotWebsocket => {
                tracing::error!({ schema::JOB } = job, "{}", msg::NOT_WEBSOCKET)
            }
            Said::BadHandshake => {
                tracing::error!(
                    { schema::JOB } = job,
                    { schema::STATUS } = self.status.as_u16(),
                    "{}",
                    self.body
                );
            }
            Said::TerminalNotSet => {
                tracing::error!({ schema::JOB } = job, "{}", msg::TERMINAL_NOT_SET)
            }
            Said::AlreadyConnected => {
                tracing::warn!({ schema::JOB } = job, "{}", msg::ALREADY_CONNECTED)
            }
            Said::ConnectFailed(e) => {
                tracing::error!({ schema::JOB } = job, { schema::ERROR } = %e, "{}", msg::CONNECT_FAILED)
            }
            Said::Operator => {}
        }
    }
}

/// One line for `count` authorization failures (`reason`) of a peer (`None`:
/// of the peers beyond [`super::quiet::MAX_KEYS`]): a `terminal_rejected`
/// event whose `refused` the console adds up.
fn tell_auth_failures_of(reason: &'static str, peer: Option<IpAddr>, count: u64) {
    tracing::warn!(
        { schema::EVENT } = event::TERMINAL_REJECTED,
        { schema::REASON } = reason,
        { schema::PEER } = peer.map(tracing::field::display),
        { schema::REFUSED } = count,
        "{}",
        msg::AUTHORIZATION_FAILURES_REPEATED
    );
}

/// Every `every`, tell the authorization failures counted but not told yet
/// (until the server shuts down).
pub(super) async fn tell_auth_failures(st: Arc<State>, every: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = st.shutdown.cancelled() => return,
        }
        let told = st
            .auth_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush(Instant::now());
        for ((peer, reason), count) in told {
            tell_auth_failures_of(reason, peer, count);
        }
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
