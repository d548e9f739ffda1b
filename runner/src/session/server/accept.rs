//! The session server's connections: the accept loop, the limit on
//! connections not yet serving a terminal (TLS handshake or HTTP request
//! pending), `TCP_USER_TIMEOUT`, the TLS handshake, and HTTP/1.1 with
//! upgrades on top.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use termgate::logschema::{self as schema, event, msg};
use termgate::metrics::rejection_reason;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::{exec, Endpoints, State, REFUSED_WARN_EVERY};

pub(super) async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    endpoints: Endpoints,
) {
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
                tracing::warn!({ schema::ERROR } = %e, "{}", msg::SESSION_ACCEPT_FAILED);
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
        configure_socket(&tcp, peer, state.opts.peer_timeout);
        let acceptor = acceptor.clone();
        let st = state.clone();
        state.tracker.spawn(async move {
            // Held until the connection ends or hands its socket to a
            // terminal bridge (that task is spawned on its own).
            let _permit = permit;
            if let Some(tls) = tls_accept(&acceptor, tcp, peer, st.opts.handshake_timeout).await {
                serve_connection(tls, peer, st, endpoints).await;
            }
        });
    }
    state.tracker.close();
}

/// No Nagle (keystrokes and echoes are tiny), and `TCP_USER_TIMEOUT` =
/// `peer_timeout` unless zero (see [`super::DEFAULT_PEER_TIMEOUT`]).
fn configure_socket(tcp: &TcpStream, peer: SocketAddr, peer_timeout: Duration) {
    let _ = tcp.set_nodelay(true);
    if !peer_timeout.is_zero() {
        if let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(peer_timeout)) {
            tracing::debug!({ schema::PEER } = %peer, { schema::ERROR } = %e, "{}", msg::SESSION_USER_TIMEOUT_FAILED);
        }
    }
}

/// The TLS handshake, within `timeout`; `None` (logged at debug) if it
/// failed or took too long.
async fn tls_accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!({ schema::PEER } = %peer, { schema::ERROR } = %e, "{}", msg::SESSION_TLS_HANDSHAKE_FAILED);
            None
        }
        Err(_) => {
            tracing::debug!({ schema::PEER } = %peer, "{}", msg::SESSION_TLS_HANDSHAKE_TIMED_OUT);
            None
        }
    }
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
            { schema::EVENT } = event::TERMINAL_REJECTED,
            { schema::REASON } = rejection_reason::OVER_LIMIT,
            { schema::PEER } = %peer,
            { schema::REFUSED } = self.since_warn,
            { schema::MAX_PENDING } = st.opts.max_pending,
            "{}", msg::SESSION_OVER_LIMIT
        );
        self.last_warn = Some(Instant::now());
        self.since_warn = 0;
    }
}

async fn serve_connection<IO>(io: IO, peer: SocketAddr, st: Arc<State>, endpoints: Endpoints)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc_state = st.clone();
    let svc = hyper::service::service_fn(move |req| {
        let st = svc_state.clone();
        async move { Ok::<_, Infallible>(exec::handle(req, st, peer, endpoints).await) }
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
        tracing::debug!({ schema::PEER } = %peer, { schema::ERROR } = %e, "{}", msg::SESSION_CONNECTION_ERROR);
    }
}
