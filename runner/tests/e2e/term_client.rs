//! A real WebSocket terminal client for tests: through the coordinator's
//! Workhorse path (`ws://…/admin/jobs/:id/terminal.ws`) or straight to the
//! runner's `wss://…/session/<id>/exec` with its certificate pinned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use termgate::terminal::{FrameKind, Incoming, Protocol, ServerCodec};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::scaled;

pub struct Term {
    rt: tokio::runtime::Runtime,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Protocol,
    /// Decoded terminal output so far.
    pub output: Vec<u8>,
    pub closed: Option<(u16, String)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The HTTP status of a refused upgrade, or the connected terminal.
pub type Connect = Result<Term, u16>;

fn status_of(e: tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("connect failed without an HTTP status: {other}"),
    }
}

impl Term {
    /// Through the coordinator, as a browser through Workhorse.
    pub fn workhorse(coord_url: &str, job: u64, subprotocol: &str) -> Connect {
        let rt = runtime();
        let url = format!(
            "{}/admin/jobs/{job}/terminal.ws",
            coord_url.replacen("http://", "ws://", 1)
        );
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", subprotocol.parse().unwrap());
        let res = rt.block_on(tokio_tungstenite::connect_async(req));
        let (ws, _) = res.map_err(status_of)?;
        Ok(Term {
            rt,
            ws,
            protocol: Protocol::from_name(subprotocol).unwrap(),
            output: Vec::new(),
            closed: None,
        })
    }

    /// Straight to the runner, pinning `cert_pem`.
    pub fn direct(
        session: &serde_json::Value,
        subprotocol: Option<&str>,
        authorization: Option<&str>,
    ) -> Connect {
        Self::direct_url(
            &format!("{}/exec", session["url"].as_str().unwrap()),
            session["certificate"].as_str().unwrap(),
            authorization.or(session["authorization"].as_str()),
            subprotocol,
        )
    }

    pub fn direct_url(
        url: &str,
        cert_pem: &str,
        authorization: Option<&str>,
        subprotocol: Option<&str>,
    ) -> Connect {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        Self::direct_headers(url, cert_pem, &headers, subprotocol)
    }

    /// An operator's way into a session (`mode`: observe, join, shell),
    /// with `Bearer <token>` and `X-Termgate-Reason` when given.
    pub fn operator(
        session: &serde_json::Value,
        token: &str,
        mode: &str,
        reason: Option<&str>,
        subprotocol: Option<&str>,
    ) -> Connect {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("Authorization", bearer.as_str())];
        if let Some(r) = reason {
            headers.push(("X-Termgate-Reason", r));
        }
        Self::direct_headers(
            &format!("{}/{mode}", session["url"].as_str().unwrap()),
            session["certificate"].as_str().unwrap(),
            &headers,
            subprotocol,
        )
    }

    pub fn direct_headers(
        url: &str,
        cert_pem: &str,
        headers: &[(&str, &str)],
        subprotocol: Option<&str>,
    ) -> Connect {
        let rt = runtime();
        let url = url.replacen("https://", "wss://", 1);
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        if let Some(p) = subprotocol {
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        let connector = tokio_tungstenite::Connector::Rustls(Arc::new(pinned_tls(cert_pem)));
        let res = rt.block_on(tokio_tungstenite::connect_async_tls_with_config(
            req,
            None,
            false,
            Some(connector),
        ));
        let (ws, _) = res.map_err(status_of)?;
        Ok(Term {
            rt,
            ws,
            protocol: subprotocol
                .and_then(Protocol::from_name)
                .unwrap_or(Protocol::Terminal),
            output: Vec::new(),
            closed: None,
        })
    }

    fn codec(&self) -> ServerCodec {
        ServerCodec::new(self.protocol)
    }

    /// Type `bytes` into the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        let msg = match self.protocol {
            Protocol::Terminal => Message::Binary(bytes.to_vec().into()),
            Protocol::Base64Terminal => {
                use base64::Engine as _;
                Message::Text(
                    base64::engine::general_purpose::STANDARD
                        .encode(bytes)
                        .into(),
                )
            }
            Protocol::K8sChannel => {
                let f = termgate::terminal::k8s_stdin_frame(bytes);
                Message::Binary(f.payload.into())
            }
        };
        self.rt.block_on(self.ws.send(msg)).unwrap();
    }

    pub fn send_raw(&mut self, msg: Message) -> Result<(), String> {
        self.rt
            .block_on(self.ws.send(msg))
            .map_err(|e| e.to_string())
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let f = termgate::terminal::k8s_resize_frame(cols, rows);
        self.rt
            .block_on(self.ws.send(Message::Binary(f.payload.into())))
            .unwrap();
    }

    /// Read one message; false when the connection ended.
    fn pump(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        let ws = &mut self.ws;
        let next = self
            .rt
            .block_on(async move { tokio::time::timeout(left, ws.next()).await });
        match next {
            Err(_) => true,
            Ok(None) => {
                self.closed.get_or_insert((1006, String::new()));
                false
            }
            Ok(Some(Err(_))) => {
                self.closed.get_or_insert((1006, String::new()));
                false
            }
            Ok(Some(Ok(msg))) => {
                match msg {
                    Message::Binary(b) => self.take(FrameKind::Binary, &b),
                    Message::Text(t) => self.take(FrameKind::Text, t.as_bytes()),
                    Message::Close(c) => {
                        let c = c
                            .map(|c| (u16::from(c.code), c.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        self.closed = Some(c);
                        return false;
                    }
                    _ => {}
                }
                true
            }
        }
    }

    fn take(&mut self, kind: FrameKind, payload: &[u8]) {
        // Output frames decode like input frames but for the k8s channel
        // byte (1 = stdout, 3 = status).
        match self.protocol {
            Protocol::K8sChannel => {
                if let Some((_, rest)) = payload.split_first() {
                    self.output.extend_from_slice(rest);
                }
            }
            _ => match self.codec().decode(kind, payload) {
                Ok(Incoming::Input(b)) => self.output.extend(b),
                other => panic!("undecodable output frame: {other:?}"),
            },
        }
    }

    /// Read until the output contains `needle` (after `from`); panics on timeout.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let until = Instant::now() + scaled(timeout);
        loop {
            if let Some(p) = find(&self.output, needle.as_bytes()) {
                return String::from_utf8_lossy(&self.output[..p + needle.len()]).into_owned();
            }
            if Instant::now() >= until || !self.pump(until) {
                if let Some(p) = find(&self.output, needle.as_bytes()) {
                    return String::from_utf8_lossy(&self.output[..p + needle.len()]).into_owned();
                }
                panic!(
                    "no {needle:?} in terminal output (closed: {:?}): {:?}",
                    self.closed,
                    String::from_utf8_lossy(&self.output[self.output.len().saturating_sub(2000)..])
                );
            }
        }
    }

    /// Run a command and return its output, without `\r` and
    /// bracketed-paste switches. The shell prints computed start and end
    /// markers around it, so the echo of the typed (and maybe wrapped) line
    /// never matches them.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> String {
        let n = rand_u32();
        let (start, end) = (format!("__start_{n}__"), format!("__done_{n}__"));
        self.output.clear();
        self.send(
            format!("echo __start_$((0+{n}))__; {cmd}; echo __done_$((0+{n}))__\n").as_bytes(),
        );
        let text = self.wait_for(&end, timeout);
        let clean = text
            .replace("\x1b[?2004h", "")
            .replace("\x1b[?2004l", "")
            .replace('\r', "");
        let body = clean.strip_suffix(&end).unwrap_or(&clean);
        let body = body.rsplit_once(&start).map(|(_, b)| b).unwrap_or(body);
        body.trim_start_matches('\n')
            .trim_end_matches('\n')
            .to_string()
    }

    /// Read `1\r\n2\r\n…` up to `last` without keeping it: returns the next
    /// number expected (last + 1 when all arrived in order) and the bytes read.
    pub fn check_sequence(&mut self, last: u64, timeout: Duration) -> (u64, u64) {
        let until = Instant::now() + scaled(timeout);
        let mut next = 1u64;
        let mut line = Vec::new();
        let mut bytes = 0u64;
        self.output.clear();
        while next <= last && Instant::now() < until {
            if !self.pump(until) {
                break;
            }
            bytes += self.output.len() as u64;
            for b in std::mem::take(&mut self.output) {
                if b == b'\n' {
                    let s = String::from_utf8_lossy(&line);
                    let s = s.trim_end_matches('\r');
                    if s == next.to_string() {
                        next += 1;
                    } else if next > 1 || !s.is_empty() && s.parse::<u64>().is_ok() {
                        // A number out of order ends the check.
                        if s.parse::<u64>().is_ok() {
                            return (next, bytes);
                        }
                    }
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
        (next, bytes)
    }

    /// Read until `needle` arrives, keeping only a short tail of the output
    /// (for floods); returns the bytes read. Panics on timeout.
    pub fn drain_until(&mut self, needle: &str, timeout: Duration) -> u64 {
        let until = Instant::now() + scaled(timeout);
        let keep = needle.len() * 2 + 64;
        let mut bytes = 0u64;
        self.output.clear();
        loop {
            let before = self.output.len();
            let open = self.pump(until);
            bytes += (self.output.len() - before) as u64;
            if find(&self.output, needle.as_bytes()).is_some() {
                return bytes;
            }
            if self.output.len() > keep {
                self.output.drain(..self.output.len() - keep);
            }
            assert!(
                open && Instant::now() < until,
                "no {needle:?} after {bytes} bytes (closed: {:?})",
                self.closed
            );
        }
    }

    /// Wait for the close; returns (code, reason).
    pub fn wait_close(&mut self, timeout: Duration) -> (u16, String) {
        let until = Instant::now() + scaled(timeout);
        while self.closed.is_none() {
            assert!(
                Instant::now() < until,
                "terminal not closed within {timeout:?}"
            );
            self.pump(until);
        }
        self.closed.clone().unwrap()
    }

    pub fn close(mut self) {
        let _ = self.rt.block_on(self.ws.close(None));
        let until = Instant::now() + Duration::from_secs(2);
        while self.closed.is_none() && Instant::now() < until {
            if !self.pump(until) {
                break;
            }
        }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// rustls client config trusting only `pem`.
pub fn pinned_tls(pem: &str) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}
