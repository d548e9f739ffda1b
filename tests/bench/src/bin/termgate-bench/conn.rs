//! One terminal as the benchmark drives it: a WebSocket client on the
//! runner's `wss://…/exec` (certificate pinned), or a bare PTY opened here.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use termgate::operator::Mode;
use termgate_runner::executor::shell::pty::{self, PtyCommand, PtyControl, PtyReader, PtyWriter};
use termgate_runner::executor::terminal::TermSize;
use termgate_runner::session::bridge;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// Subprotocol spoken to the runner (raw binary frames both ways).
pub const SUBPROTOCOL: &str = "terminal.gitlab.com";

/// Where to connect: a job's session as the coordinator reports it
/// (`wss://…/session/<id>/exec` with the session's token), or the same
/// session's operator mirror ([`SessionTarget::observe`]).
#[derive(Debug, Clone)]
pub struct SessionTarget {
    pub url: String,
    pub authorization: String,
    pub tls: Arc<rustls::ClientConfig>,
}

impl SessionTarget {
    /// The same session's read-only mirror, `…/session/<id>/observe`, as
    /// the operator whose token is `token`.
    pub fn observe(&self, token: &str) -> anyhow::Result<SessionTarget> {
        let base = self
            .url
            .strip_suffix("/exec")
            .with_context(|| format!("not an /exec URL: {}", self.url))?;
        Ok(SessionTarget {
            url: format!("{base}/{}", Mode::Observe.as_str()),
            authorization: format!("Bearer {token}"),
            tls: self.tls.clone(),
        })
    }
}

type WsStream = WebSocketStream<tokio_rustls::client::TlsStream<BufReader<TcpStream>>>;

pub enum Conn {
    Ws {
        ws: Box<WsStream>,
        last: Bytes,
        /// Output bytes received so far ([`Conn::received`]).
        received: u64,
    },
    Pty {
        reader: PtyReader,
        writer: PtyWriter,
        control: PtyControl,
        buf: Vec<u8>,
        received: u64,
    },
    /// Plain TCP to the `--relay` yardstick (no TLS, no WebSocket).
    Tcp {
        stream: TcpStream,
        buf: Vec<u8>,
        received: u64,
    },
}

/// Why a connect attempt failed.
pub enum ConnectError {
    /// The session's seat is still held by a previous connection (423).
    Busy,
    Other(anyhow::Error),
}

impl Conn {
    pub async fn ws(target: &SessionTarget) -> Result<Conn, ConnectError> {
        let mut req = target
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Other(e.into()))?;
        let h = req.headers_mut();
        let auth = target.authorization.parse().map_err(
            |e: tungstenite::http::header::InvalidHeaderValue| ConnectError::Other(e.into()),
        )?;
        h.insert("Authorization", auth);
        h.insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
        );
        match Self::dial(target, req).await {
            Ok(ws) => Ok(Conn::Ws {
                ws: Box::new(ws),
                last: Bytes::new(),
                received: 0,
            }),
            Err(e) if is_busy(&e) => Err(ConnectError::Busy),
            Err(e) => Err(ConnectError::Other(
                e.context(format!("connecting to {}", target.url)),
            )),
        }
    }

    /// TCP (no Nagle), TLS with the pinned certificate, WebSocket. The TLS
    /// layer reads the socket through a 64 KiB buffer: rustls asks for at
    /// most 4 KiB a read, so unbuffered it would make four `read` calls per
    /// 16 KiB record, work a real client (Workhorse, another machine) does
    /// not take from the runner's cores.
    async fn dial(
        target: &SessionTarget,
        req: tungstenite::handshake::client::Request,
    ) -> anyhow::Result<WsStream> {
        let uri = req.uri().clone();
        let host = uri
            .host()
            .context("no host in the URL")?
            .trim_matches(['[', ']']);
        let port = uri.port_u16().unwrap_or(443);
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(target.tls.clone())
            .connect(name, BufReader::with_capacity(64 * 1024, tcp))
            .await
            .context("TLS handshake")?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            req,
            tls,
            Some(bridge::client_ws_config(1024 * 1024)),
        )
        .await?;
        Ok(ws)
    }

    /// The runner's terminal shell, started here on a PTY: `bash --noprofile
    /// --norc -i` in `cwd`.
    pub fn bare(cwd: &std::path::Path) -> anyhow::Result<Conn> {
        let cmd = PtyCommand::shell("bash", cwd, &[], TermSize::default());
        let p = pty::spawn(cmd).context("spawning bash on a PTY")?;
        let (reader, writer, control) = p.split();
        Ok(Conn::Pty {
            reader,
            writer,
            control,
            buf: vec![0; 64 * 1024],
            received: 0,
        })
    }

    /// A bash PTY behind the plain TCP relay at `addr`.
    pub async fn relayed(addr: std::net::SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the relay at {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn::Tcp {
            stream,
            buf: vec![0; 64 * 1024],
            received: 0,
        })
    }

    /// Type `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Conn::Ws { ws, .. } => ws
                .send(Message::Binary(Bytes::copy_from_slice(bytes)))
                .await
                .context("sending a key"),
            Conn::Pty { writer, .. } => writer.write_all(bytes).await.context("writing the PTY"),
            Conn::Tcp { stream, .. } => stream.write_all(bytes).await.context("writing the relay"),
        }
    }

    /// Output bytes received so far (every chunk [`Conn::recv`] returned).
    pub fn received(&self) -> u64 {
        match self {
            Conn::Ws { received, .. } | Conn::Pty { received, .. } | Conn::Tcp { received, .. } => {
                *received
            }
        }
    }

    /// The next output chunk; `None` when the terminal closed. Cancel safe.
    pub async fn recv(&mut self) -> anyhow::Result<Option<&[u8]>> {
        match self {
            Conn::Ws { ws, last, received } => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(None),
                    Some(Ok(Message::Binary(b))) => {
                        *last = b;
                        *received += last.len() as u64;
                        return Ok(Some(&last[..]));
                    }
                    Some(Ok(Message::Text(t))) => {
                        *last = Bytes::from(t);
                        *received += last.len() as u64;
                        return Ok(Some(&last[..]));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e).context("reading the WebSocket"),
                }
            },
            Conn::Pty {
                reader,
                buf,
                received,
                ..
            } => {
                let mut n = reader.read(buf).await.context("reading the PTY")?;
                if n == 0 {
                    return Ok(None);
                }
                // What the runner's bridge does under bulk output: after a
                // large read, take whatever more is ready without waiting.
                if n >= bridge::BURST_AFTER {
                    n = bridge::append_ready(reader, buf, n);
                }
                *received += n as u64;
                Ok(Some(&buf[..n]))
            }
            Conn::Tcp {
                stream,
                buf,
                received,
            } => {
                let n = stream.read(buf).await.context("reading the relay")?;
                *received += n as u64;
                Ok((n > 0).then_some(&buf[..n]))
            }
        }
    }

    pub async fn close(self) {
        match self {
            Conn::Ws { mut ws, .. } => {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), ws.close()).await;
            }
            Conn::Pty { control, .. } => {
                use termgate_runner::executor::terminal::TerminalControl as _;
                control.close().await;
            }
            // The relay closes its shell, then the socket: wait for that,
            // so the next phase does not share the CPUs with the closing.
            Conn::Tcp {
                mut stream,
                mut buf,
                ..
            } => {
                let _ = stream.shutdown().await;
                let drain = async { while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
            }
        }
    }
}

/// The runner refused the upgrade with 423: the seat is still taken.
fn is_busy(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Http(r)) if r.status().as_u16() == 423
    )
}

/// A rustls client trusting only `pem` (the session's certificate).
pub fn pinned_tls(pem: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
        roots
            .add(cert.context("parsing the session certificate")?)
            .context("adding the session certificate")?;
    }
    if roots.is_empty() {
        bail!("the session has no certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_observe_url_is_the_sessions_with_a_bearer_token() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let exec = SessionTarget {
            url: "wss://127.0.0.1:8093/session/ab12/exec".into(),
            authorization: "session-token".into(),
            tls: Arc::new(tls),
        };
        let obs = exec.observe("tgo_x").unwrap();
        assert_eq!(obs.url, "wss://127.0.0.1:8093/session/ab12/observe");
        assert_eq!(obs.authorization, "Bearer tgo_x");
        let err = obs.observe("tgo_x").unwrap_err();
        assert!(err.to_string().contains("not an /exec URL"), "{err}");
    }
}
