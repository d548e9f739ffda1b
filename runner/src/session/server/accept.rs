//! The session server's connections: the accept loop, the fair limits on
//! connections not yet serving a terminal (TLS handshake or HTTP request
//! pending, see [`pending`]), `TCP_USER_TIMEOUT`, the TLS handshake, and
//! HTTP/1.1 with upgrades on top.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use termgate::logschema::{self as schema, event, msg};
use termgate::metrics::rejection_reason;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::quiet::{Quiet, Say};
use super::{exec, Endpoints, State, REFUSED_WARN_EVERY};

mod pending;

#[cfg(test)]
pub use pending::default_per_peer;
use pending::PendingLimits;
pub(super) use pending::{peer_key, PendingSlot};
use pending::{Admission, PendingTable};

pub(super) async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    endpoints: Endpoints,
) {
    let limits = PendingLimits::new(state.opts.max_pending, state.opts.max_pending_per_peer);
    state
        .metrics
        .session_max_pending
        .set(gauge_value(limits.max));
    state
        .metrics
        .session_max_pending_per_peer
        .set(gauge_value(limits.per_peer));
    let pending = PendingTable::new(
        limits,
        Some(state.metrics.session_pending_connections.clone()),
    );
    let mut crowded = Crowded::new(limits);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = state.shutdown.cancelled() => break,
            _ = tokio::time::sleep(REFUSED_WARN_EVERY), if crowded.quiet.has_untold() => {
                crowded.flush();
                continue;
            }
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
        let slot = match pending.admit(peer.ip()) {
            Admission::Admitted(slot) => slot,
            Admission::Evicted { slot, victim } => {
                crowded.note(&state, victim, rejection_reason::EVICTED);
                slot
            }
            Admission::PeerFull => {
                crowded.note(&state, peer.ip(), rejection_reason::PEER_OVER_LIMIT);
                drop(tcp);
                continue;
            }
            Admission::Full => {
                crowded.note(&state, peer.ip(), rejection_reason::OVER_LIMIT);
                drop(tcp);
                continue;
            }
        };
        configure_socket(&tcp, peer, state.opts.peer_timeout);
        let acceptor = acceptor.clone();
        let st = state.clone();
        state.tracker.spawn(async move {
            // Held until the connection ends or hands its socket to a
            // terminal bridge (that task is spawned on its own); evicted
            // (see `pending`), the connection is dropped at once.
            let slot = Arc::new(slot);
            let evicted = slot.cancelled().clone();
            let serve = async {
                if let Some(tls) = tls_accept(&acceptor, tcp, peer, st.opts.handshake_timeout).await
                {
                    serve_connection(tls, peer, st, endpoints, slot.clone()).await;
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = evicted.cancelled() => {}
            }
        });
    }
    state.tracker.close();
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

/// Connections refused or evicted because pending places ran out: each
/// is counted in `session_rejections_total{reason}` (`over_limit`,
/// `peer_over_limit`, `evicted`); a warning goes out for the first of each
/// reason and then at most every [`REFUSED_WARN_EVERY`], with how many
/// since (`refused`).
struct Crowded {
    limits: PendingLimits,
    quiet: Quiet,
}

impl Crowded {
    fn new(limits: PendingLimits) -> Self {
        Crowded {
            limits,
            quiet: Quiet::new(REFUSED_WARN_EVERY),
        }
    }

    /// `peer`'s connection was refused, or evicted, for `reason`.
    fn note(&mut self, st: &State, peer: IpAddr, reason: &'static str) {
        st.metrics
            .session_rejections_total
            .with_label_values(&[reason])
            .inc();
        if let Say::Line { count } = self.quiet.note((None, reason), Instant::now()) {
            self.warn(reason, Some(peer), count);
        }
    }

    /// Tell the counts whose interval is over.
    fn flush(&mut self) {
        for ((_, reason), count) in self.quiet.flush(Instant::now()) {
            self.warn(reason, None, count);
        }
    }

    fn warn(&self, reason: &'static str, peer: Option<IpAddr>, count: u64) {
        let message = match reason {
            rejection_reason::EVICTED => msg::SESSION_PENDING_EVICTED,
            rejection_reason::PEER_OVER_LIMIT => msg::SESSION_PEER_OVER_LIMIT,
            _ => msg::SESSION_OVER_LIMIT,
        };
        tracing::warn!(
            { schema::EVENT } = event::TERMINAL_REJECTED,
            { schema::REASON } = reason,
            { schema::PEER } = peer.map(tracing::field::display),
            { schema::REFUSED } = count,
            { schema::MAX_PENDING } = self.limits.max,
            { schema::MAX_PENDING_PER_PEER } = self.limits.per_peer,
            "{}",
            message
        );
    }
}

async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    st: Arc<State>,
    endpoints: Endpoints,
    slot: Arc<PendingSlot>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc_state = st.clone();
    let svc = hyper::service::service_fn(move |req| {
        let st = svc_state.clone();
        let slot = slot.clone();
        async move { Ok::<_, Infallible>(exec::handle(req, st, peer, endpoints, &slot).await) }
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
