//! Test support for the session server: fake terminals, a server on
//! 127.0.0.1:0 and a WebSocket client that trusts only its certificate.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};

use tokio_tungstenite::WebSocketStream;

use super::super::*;
use crate::builds::{Builds, ProcessStateCell};
use crate::executor::docker::terminal::DockerTerminalError;
use crate::executor::terminal::TermSize;
use crate::executor::terminal::{OpenError, TerminalControl, TerminalFactory, TerminalHandle};
use crate::session::Session;
use crate::session::SessionJob;

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// Captured log output (a `MakeWriter`).
#[derive(Clone, Default)]
pub struct LogBuf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// JSON log lines of this thread, captured until the guard is dropped.
pub fn json_logs() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let logs = LogBuf::default();
    // The runner's own library filter: this thread also runs the test's
    // clients, and with `log` records bridged (once any test installed the
    // global subscriber) tungstenite's client handshake would log the
    // request, token included, at debug level.
    let filter =
        crate::logging::env_filter(tracing::Level::TRACE, Some(crate::logging::QUIET_LIBRARIES))
            .unwrap();
    let sub = tracing_subscriber::registry()
        .with(filter)
        .with(crate::logging::layer_for(
            crate::logging::LogFormat::Json,
            logs.clone(),
        ));
    (logs, tracing::subscriber::set_default(sub))
}

/// Test timeout: 20 s times `TERMGATE_TEST_TIMEOUT_SCALE` (the one knob of
/// every suite, see `termgate-test-support`).
pub fn timeout() -> Duration {
    termgate_test_support::scaled(Duration::from_secs(20))
}

/// Poll `pred` until it holds ([`termgate_test_support::wait_until_async`]).
pub async fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    termgate_test_support::wait_until_async(what, Duration::from_secs(20), || {
        std::future::ready(pred().then_some(()))
    })
    .await
}

// ---- fake terminals -------------------------------------------------------

#[derive(Default)]
pub struct Calls {
    pub resizes: Mutex<Vec<TermSize>>,
    /// `close` calls started, and finished.
    pub closes: AtomicUsize,
    pub closes_done: AtomicUsize,
    pub opens: AtomicUsize,
    /// How long `close` takes (a shell that is slow to die), ms.
    pub close_delay_ms: AtomicU64,
}

struct Control {
    calls: Arc<Calls>,
    stop: CancellationToken,
}

#[async_trait]
impl TerminalControl for Control {
    async fn resize(&self, size: TermSize) -> std::io::Result<()> {
        self.calls
            .resizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(size);
        Ok(())
    }
    async fn close(&self) {
        self.calls.closes.fetch_add(1, Ordering::SeqCst);
        let delay = self.calls.close_delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.stop.cancel();
        self.calls.closes_done.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the fake terminal does.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Echo input back as output.
    Echo,
    /// Endless output; input discarded.
    Flood,
    /// `open` fails.
    Fail,
}

pub struct Fake {
    pub kind: Kind,
    pub calls: Arc<Calls>,
    /// Bytes the flood terminal has handed to the bridge.
    pub produced: Arc<AtomicU64>,
}

impl Fake {
    pub fn new(kind: Kind) -> Arc<Self> {
        Arc::new(Fake {
            kind,
            calls: Arc::default(),
            produced: Arc::default(),
        })
    }
}

/// Endless `x` bytes, counted.
struct Flood(Arc<AtomicU64>);

impl AsyncRead for Flood {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining();
        buf.put_slice(&vec![b'x'; n]);
        self.0.fetch_add(n as u64, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl TerminalFactory for Fake {
    async fn open(&self, _size: TermSize) -> Result<TerminalHandle, OpenError> {
        self.calls.opens.fetch_add(1, Ordering::SeqCst);
        let stop = CancellationToken::new();
        let control = Box::new(Control {
            calls: self.calls.clone(),
            stop: stop.clone(),
        });
        match self.kind {
            Kind::Fail => Err(DockerTerminalError::AttachTty.into()),
            Kind::Echo => {
                let (ours, theirs) = tokio::io::duplex(4096);
                let (out, inp) = tokio::io::split(ours);
                let (mut rd, mut wr) = tokio::io::split(theirs);
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy(&mut rd, &mut wr) => {}
                        _ = stop.cancelled() => {}
                    }
                });
                Ok(TerminalHandle {
                    output: Box::pin(out),
                    input: Box::pin(inp),
                    control,
                })
            }
            Kind::Flood => Ok(TerminalHandle {
                output: Box::pin(Flood(self.produced.clone())),
                input: Box::pin(tokio::io::sink()),
                control,
            }),
        }
    }
}

// ---- server and client ----------------------------------------------------

pub struct Fixture {
    pub handle: SessionServerHandle,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
}

pub struct TestSession {
    pub session: Arc<Session>,
    pub token: String,
}

pub async fn fixture_with(opts: ServerOptions) -> Fixture {
    fixture_with_config(opts, config::SessionServer::default()).await
}

/// A server with `cfg` (its `listen_address` replaced by `127.0.0.1:0`).
pub async fn fixture_with_config(opts: ServerOptions, cfg: config::SessionServer) -> Fixture {
    let metrics = Metrics::new(Builds::default(), ProcessStateCell::default(), "0", "x").unwrap();
    let cfg = config::SessionServer {
        listen_address: Some("127.0.0.1:0".into()),
        ..cfg
    };
    let shutdown = CancellationToken::new();
    let handle = start_with(&cfg, metrics.clone(), shutdown.clone(), opts)
        .await
        .unwrap();
    Fixture {
        handle,
        metrics,
        shutdown,
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(ServerOptions {
        terminal_wait: timeout(),
        ..Default::default()
    })
    .await
}

impl Fixture {
    pub fn session(&self, terminal: Option<Arc<Fake>>) -> TestSession {
        let r = &self.handle.registry;
        let p = r.create();
        let token = p.token.clone();
        let session = r.activate(
            p,
            SessionJob {
                job_id: 42,
                ..Default::default()
            },
        );
        if let Some(t) = terminal {
            session.set_terminal(t);
        }
        TestSession { session, token }
    }

    pub fn url(&self, s: &TestSession) -> String {
        format!(
            "{}/session/{}/exec",
            self.handle.registry.base_url(),
            s.session.id
        )
    }

    pub fn rejections(&self, reason: &str) -> u64 {
        self.metrics
            .session_rejections_total
            .with_label_values(&[reason])
            .get()
    }

    pub fn closes(&self, reason: &str) -> u64 {
        self.metrics
            .session_closes_total
            .with_label_values(&[reason])
            .get()
    }

    pub fn tls_client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut self.handle.registry.certificate_pem().as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    pub async fn tls(&self, recv_buffer: Option<u32>) -> TlsStream<TcpStream> {
        self.try_tls(recv_buffer).await.unwrap()
    }

    pub async fn try_tls(&self, recv_buffer: Option<u32>) -> std::io::Result<TlsStream<TcpStream>> {
        self.try_tls_from(None, recv_buffer).await
    }

    /// [`Fixture::try_tls`] from the local address `from` (another loopback
    /// address: another peer).
    pub async fn try_tls_from(
        &self,
        from: Option<std::net::IpAddr>,
        recv_buffer: Option<u32>,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        if let Some(ip) = from {
            sock.bind(SocketAddr::new(ip, 0))?;
        }
        if let Some(n) = recv_buffer {
            sock.set_recv_buffer_size(n)?;
        }
        let tcp = sock.connect(self.handle.local_addr).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(self.tls_client())
            .connect(name, tcp)
            .await
    }

    /// A WebSocket dial like Workhorse's: raw token, chosen subprotocols.
    pub async fn dial(
        &self,
        s: &TestSession,
        token: &str,
        protocols: &[&str],
        recv_buffer: Option<u32>,
    ) -> Result<(Ws, Option<String>), tungstenite::Error> {
        self.dial_from(None, s, token, protocols, recv_buffer).await
    }

    /// [`Fixture::dial`] from the local address `from`.
    pub async fn dial_from(
        &self,
        from: Option<std::net::IpAddr>,
        s: &TestSession,
        token: &str,
        protocols: &[&str],
        recv_buffer: Option<u32>,
    ) -> Result<(Ws, Option<String>), tungstenite::Error> {
        let mut req = self
            .url(s)
            .replace("https://", "wss://")
            .into_client_request()?;
        req.headers_mut()
            .insert("Authorization", token.parse().unwrap());
        if !protocols.is_empty() {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                protocols.join(", ").parse().unwrap(),
            );
        }
        let tls = self.try_tls_from(from, recv_buffer).await?;
        let (ws, resp) = tokio_tungstenite::client_async(req, tls).await?;
        let proto = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap().to_string());
        Ok((ws, proto))
    }

    pub async fn connect(&self, s: &TestSession, protocols: &[&str]) -> (Ws, Option<String>) {
        self.dial(s, &s.token, protocols, None).await.unwrap()
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.handle.registry.certificate_pem().as_bytes())
                    .unwrap(),
            )
            .tls_built_in_root_certs(false)
            .build()
            .unwrap()
    }
}

pub fn status_of(r: Result<(Ws, Option<String>), tungstenite::Error>) -> u16 {
    match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("unexpectedly upgraded"),
    }
}

/// The next non-ping/pong message.
pub async fn next_msg(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(timeout(), ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("stream ended")
            .expect("websocket error");
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

/// Send `data` as a binary frame and read the echo back (possibly in pieces).
pub async fn echo(ws: &mut Ws, data: &[u8]) {
    ws.send(Message::Binary(data.to_vec().into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        match next_msg(ws).await {
            Message::Binary(b) => got.extend_from_slice(&b),
            m => panic!("unexpected {m:?}"),
        }
    }
    assert_eq!(got, data);
}

/// Every packet from local TCP port `sport` to `dport` is dropped on
/// loopback (an iptables rule, removed on drop): the server's data to that
/// client is never acknowledged, as when the client's network vanished
/// without a FIN or RST.
pub struct Blackhole {
    args: Vec<String>,
}

impl Blackhole {
    /// `None` when iptables cannot be used here (not root, not installed);
    /// panics instead when `TERMGATE_REQUIRE_IPTABLES=1` (CI).
    pub fn new(sport: u16, dport: u16) -> Option<Self> {
        let args: Vec<String> = [
            "INPUT",
            "-i",
            "lo",
            "-p",
            "tcp",
            "--sport",
            &sport.to_string(),
            "--dport",
            &dport.to_string(),
            "-j",
            "DROP",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let run = |op: &str| {
            std::process::Command::new("iptables")
                .args(["-w", op])
                .args(&args)
                .output()
        };
        match run("-I") {
            Ok(o) if o.status.success() => Some(Blackhole { args }),
            r => {
                let why = match r {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("TERMGATE_REQUIRE_IPTABLES").as_deref() != Ok("1"),
                    "TERMGATE_REQUIRE_IPTABLES=1 but iptables failed: {why}"
                );
                eprintln!("skipped: iptables is not usable here ({why})");
                None
            }
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables")
            .args(["-w", "-D"])
            .args(&self.args)
            .output();
    }
}
