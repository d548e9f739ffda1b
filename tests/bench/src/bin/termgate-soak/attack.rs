//! The attacks of issue 20, from their own loopback addresses: half-open
//! TLS handshakes renewed every 10 s, and upgrades with a wrong token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};

use crate::conn::{SessionTarget, SUBPROTOCOL};
use crate::stats::Stats;

/// Where the half-open sockets come from.
pub const SLOWLORIS_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// Where the bad-token upgrades come from.
pub const BAD_AUTH_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
/// A TLS record header announcing a 512-byte handshake message: the first
/// 5 bytes of a ClientHello, and nothing after.
const CLIENT_HELLO_START: [u8; 5] = [0x16, 0x03, 0x01, 0x02, 0x00];
/// Each half-open socket is replaced this often (under the server's 10 s
/// handshake timeout).
const RENEW: Duration = Duration::from_millis(9_500);

/// `host:port` of a `wss://host:port/...` URL.
pub fn server_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or_default();
    rest.parse()
        .with_context(|| format!("no host:port in {url}"))
}

async fn dial_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from, 0))?;
    // Reset on close instead of TIME_WAIT: 400 renewals a second would
    // otherwise run the source address out of ports. (A zero linger never
    // blocks the closing thread.)
    socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO))?;
    timeout(Duration::from_secs(5), sock.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// `n` half-open sockets until `end`, started over one renewal period.
pub fn slowloris(to: SocketAddr, n: usize, stats: Arc<Stats>, end: Instant) {
    for i in 0..n {
        let stats = stats.clone();
        let start = Instant::now() + RENEW * (i as u32) / (n.max(1) as u32);
        tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            while Instant::now() < end {
                let mut s = match dial_from(SLOWLORIS_FROM, to).await {
                    Ok(s) => s,
                    Err(_) => {
                        stats.n.slowloris_connect_failed.fetch_add(1, Relaxed);
                        sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if s.write_all(&CLIENT_HELLO_START).await.is_err() {
                    stats.n.slowloris_closed_by_server.fetch_add(1, Relaxed);
                    continue;
                }
                stats.n.slowloris_opened.fetch_add(1, Relaxed);
                let mut b = [0u8; 64];
                let renew_at = Instant::now() + RENEW;
                tokio::select! {
                    _ = tokio::time::sleep_until(renew_at.min(end)) => {}
                    _ = s.read(&mut b) => {
                        stats.n.slowloris_closed_by_server.fetch_add(1, Relaxed);
                        tokio::time::sleep_until(renew_at.min(end)).await;
                    }
                }
            }
        });
    }
}

/// `per_sec` upgrades a second to `target`'s URL with a wrong token, until
/// `end`; each must get 401.
pub fn bad_auth(target: SessionTarget, per_sec: u32, stats: Arc<Stats>, end: Instant) {
    if per_sec == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec);
        while Instant::now() < end {
            tick.tick().await;
            let (t, stats) = (target.clone(), stats.clone());
            tokio::spawn(async move {
                match timeout(Duration::from_secs(10), bad_upgrade(&t)).await {
                    Ok(Ok(401)) => stats.n.bad_auth_401.fetch_add(1, Relaxed),
                    Ok(Ok(code)) => {
                        stats.example("bad auth not 401", code);
                        stats.n.bad_auth_other.fetch_add(1, Relaxed)
                    }
                    Ok(Err(e)) => {
                        stats.example("bad auth not 401", e);
                        stats.n.bad_auth_other.fetch_add(1, Relaxed)
                    }
                    Err(_) => {
                        stats.example("bad auth not 401", "no answer within 10 s");
                        stats.n.bad_auth_other.fetch_add(1, Relaxed)
                    }
                };
            });
        }
    });
}

/// One upgrade with a wrong token: the HTTP status it got (101 if it
/// was let in).
async fn bad_upgrade(t: &SessionTarget) -> anyhow::Result<u16> {
    let to = server_addr(&t.url)?;
    let tcp = dial_from(BAD_AUTH_FROM, to).await?;
    let name = rustls::pki_types::ServerName::try_from(to.ip().to_string())?;
    let tls = tokio_rustls::TlsConnector::from(t.tls.clone())
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let mut req = t.url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Authorization", "wrong-token-soak".parse()?);
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", SUBPROTOCOL.parse()?);
    match tokio_tungstenite::client_async(req, tls).await {
        Ok(_) => Ok(101),
        Err(tungstenite::Error::Http(r)) => Ok(r.status().as_u16()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_address_of_a_session_url() {
        let a = server_addr("wss://127.0.0.1:8093/session/ab/exec").unwrap();
        assert_eq!(a, "127.0.0.1:8093".parse().unwrap());
        assert!(server_addr("wss://localhost/session").is_err());
    }
}
