//! The console's client for a runner's operator API (`GET /sessions` and
//! the `/session/{id}/{observe|join|shell}` WebSockets), over TLS with the
//! session server's self-signed certificate **pinned by its SHA-256**: the
//! leaf whose digest equals the pin is accepted whatever its name or chain
//! (the runner makes it for its advertise address, which the console may
//! not dial by), and the handshake signatures are still verified with the
//! ring provider's algorithms, so only the holder of that key can answer
//! (zellij-org/zellij: `zellij-client/src/remote_attach/websockets.rs`).
//!
//! The operator token goes only into the `Authorization` header: never into
//! an error, a log line or `Debug`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};
use termgate::operator::{
    format_fingerprint, parse_fingerprint, session_path, Mode, SessionList, REASON_HEADER,
    SESSIONS_PATH,
};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};

use crate::config::RunnerEntry;

/// How long a request (`GET /sessions`, a WebSocket handshake, the TLS
/// handshake of [`fetch_fingerprint`]) may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `/sessions` answer read (a runner lists tens of sessions).
const MAX_BODY: usize = 8 << 20;

/// How the runner's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Accept exactly the leaf certificate with this SHA-256.
    Fingerprint([u8; 32]),
    /// Accept any certificate (`--insecure`); signatures are still checked.
    Insecure,
}

/// One runner's operator API, from its `[[runners]]` entry.
#[derive(Clone)]
pub struct OperatorEndpoint {
    pub runner: String,
    /// `https://host:port`, no trailing slash.
    pub base_url: String,
    token: String,
    pub pin: Pin,
}

impl std::fmt::Debug for OperatorEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorEndpoint")
            .field("runner", &self.runner)
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("pin", &self.pin)
            .finish()
    }
}

/// A WebSocket to a session (`v4.channel.k8s.io` framing).
pub type OperatorSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// console.toml lacks something or holds a bad value; the message says
    /// which key and how to fix it.
    #[error("runner {runner}: {message}")]
    Config { runner: String, message: String },
    #[error(
        "the certificate of {runner} is not pinned: run `termgate trust {runner}` to pin it \
         (or pass --insecure to skip the check this once)"
    )]
    NotPinned { runner: String },
    #[error("{url:?} is not a session server URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to {address}: {cause}")]
    Connect { address: String, cause: String },
    #[error("{address} did not answer within {} s", TIMEOUT.as_secs())]
    Timeout { address: String },
    #[error(
        "the certificate of {runner} changed: pinned {pinned}, presented {presented}; \
         if this is expected run `termgate trust {runner}` again"
    )]
    CertificateChanged {
        runner: String,
        pinned: String,
        presented: String,
    },
    #[error(
        "{runner} refused the operator token (401): check operator_token_file or \
         operator_token of runner {runner} in console.toml"
    )]
    Unauthorized { runner: String },
    #[error("{runner} is throttling this operator (429): {}", retry_text(*retry_after_secs))]
    Throttled {
        runner: String,
        retry_after_secs: Option<u64>,
    },
    #[error(
        "{runner}: your operator role does not allow {what} (403); \
         observe needs an observe or control token, join and shell a control token"
    )]
    Forbidden { runner: String, what: String },
    #[error(
        "{runner}: {what} needs a reason (400): say why, e.g. --reason \"INC-123 stuck deploy\""
    )]
    ReasonRequired { runner: String, what: String },
    #[error(
        "{runner} has no session {session} (404): it ended or the id is wrong; \
         `termgate sessions {runner}` lists the live ones"
    )]
    NoSession { runner: String, session: String },
    #[error(
        "{session:?} is not a session id (letters, digits, - and _); \
         `termgate sessions` lists them"
    )]
    BadSessionId { session: String },
    #[error(
        "{runner}: nobody is at the terminal of session {session} to join (409); \
         open a shell of your own in the job instead (--shell)"
    )]
    NoTerminal { runner: String, session: String },
    #[error("{runner} answered {status}: {first_line}")]
    Status {
        runner: String,
        status: u16,
        first_line: String,
    },
    #[error("{runner}: unexpected answer: {message}")]
    Protocol { runner: String, message: String },
}

fn retry_text(secs: Option<u64>) -> String {
    match secs {
        Some(s) => format!("retry after {s} s"),
        None => "retry later".to_string(),
    }
}

impl OperatorEndpoint {
    /// From a console.toml runner entry (session_url, operator_token_file
    /// wins over operator_token, fingerprint). Errors name the runner and
    /// the missing key and say how to fix it.
    pub fn from_entry(entry: &RunnerEntry, insecure: bool) -> Result<Self, OperatorError> {
        let runner = entry.name.clone();
        let config = |message: String| OperatorError::Config {
            runner: runner.clone(),
            message,
        };
        let url = entry.session_url.as_deref().ok_or_else(|| {
            config(
                "no session_url in console.toml: add session_url = \"https://HOST:PORT\" \
                 (the runner's operator_listen_address, or its [session_server] listen_address) \
                 to its [[runners]] table"
                    .into(),
            )
        })?;
        let base_url = check_base_url(url).map_err(|reason| {
            config(format!(
                "session_url {url:?} {reason}; set it to https://HOST:PORT"
            ))
        })?;
        let token = match (&entry.operator_token_file, &entry.operator_token) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    config(format!(
                        "cannot read operator_token_file {}: {e}",
                        path.display()
                    ))
                })?;
                let token = text.trim().to_string();
                if token.is_empty() {
                    return Err(config(format!(
                        "operator_token_file {} is empty: put the token `termgate-runner \
                         operator add` printed in it",
                        path.display()
                    )));
                }
                token
            }
            (None, Some(t)) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                return Err(config(
                    "no operator token: set operator_token_file (or operator_token) in its \
                     [[runners]] table in console.toml; `termgate-runner operator add` on the \
                     runner prints one"
                        .into(),
                ))
            }
        };
        if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(config(
                "the operator token holds characters an HTTP header cannot carry: \
                 copy it again from `termgate-runner operator add`"
                    .into(),
            ));
        }
        let pin = if insecure {
            Pin::Insecure
        } else {
            match entry.fingerprint.as_deref() {
                None => return Err(OperatorError::NotPinned { runner }),
                Some(f) => Pin::Fingerprint(parse_fingerprint(f).ok_or_else(|| {
                    config(format!(
                        "fingerprint {f:?} in console.toml is not a SHA-256 fingerprint \
                         (sha256: and 32 hex pairs): run `termgate trust {}` to store it again",
                        entry.name
                    ))
                })?),
            }
        };
        Ok(OperatorEndpoint {
            runner,
            base_url,
            token,
            pin,
        })
    }

    /// `GET /sessions` with the operator token, within [`TIMEOUT`].
    pub async fn sessions(&self) -> Result<SessionList, OperatorError> {
        let verifier = PinVerifier::new(self.pin);
        let tls = client_config(verifier.clone()).map_err(|e| self.connect_error(&e))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| self.connect_error(&e))?;
        let url = format!("{}{SESSIONS_PATH}", self.base_url);
        let res = client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.request_error(&verifier, &e))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = read_body(res)
            .await
            .map_err(|e| self.request_error(&verifier, &e))?;
        if status != 200 {
            return Err(self.status_error(status, &headers, &body, "listing sessions", None));
        }
        serde_json::from_slice(&body).map_err(|e| OperatorError::Protocol {
            runner: self.runner.clone(),
            message: format!("GET {SESSIONS_PATH} is not a session list: {e}"),
        })
    }

    /// A WebSocket to `/session/{id}/{mode}` offering `v4.channel.k8s.io`
    /// (resize), with the operator token and `X-Termgate-Reason` when given.
    pub async fn connect(
        &self,
        session_id: &str,
        mode: Mode,
        reason: Option<&str>,
    ) -> Result<OperatorSocket, OperatorError> {
        if session_id.is_empty()
            || !session_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(OperatorError::BadSessionId {
                session: session_id.to_string(),
            });
        }
        let url = format!(
            "wss://{}{}",
            self.base_url.trim_start_matches("https://"),
            session_path(session_id, mode)
        );
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| OperatorError::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let headers = req.headers_mut();
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            v.set_sensitive(true);
            headers.insert("authorization", v);
        }
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(termgate::terminal::V4_CHANNEL_K8S),
        );
        if let Some(v) = reason.and_then(reason_header) {
            headers.insert(REASON_HEADER, v);
        }
        let verifier = PinVerifier::new(self.pin);
        let tls = client_config(verifier.clone()).map_err(|e| self.connect_error(&e))?;
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            req,
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(Arc::new(tls))),
        );
        let what = format!("{} on session {session_id}", mode.as_str());
        match tokio::time::timeout(TIMEOUT, connect).await {
            Err(_) => Err(OperatorError::Timeout {
                address: self.base_url.clone(),
            }),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(res))) => {
                let body = res.body().clone().unwrap_or_default();
                Err(self.status_error(
                    res.status().as_u16(),
                    res.headers(),
                    &body,
                    &what,
                    Some(session_id),
                ))
            }
            Ok(Err(tungstenite::Error::Protocol(e))) => Err(OperatorError::Protocol {
                runner: self.runner.clone(),
                message: format!("WebSocket handshake: {e}"),
            }),
            Ok(Err(e)) => Err(self
                .changed(&verifier)
                .unwrap_or_else(|| self.connect_error(&e))),
        }
    }

    fn connect_error(&self, e: &dyn std::error::Error) -> OperatorError {
        OperatorError::Connect {
            address: self.base_url.clone(),
            cause: error_chain(e),
        }
    }

    fn request_error(&self, verifier: &PinVerifier, e: &reqwest::Error) -> OperatorError {
        if let Some(changed) = self.changed(verifier) {
            return changed;
        }
        if e.is_timeout() {
            return OperatorError::Timeout {
                address: self.base_url.clone(),
            };
        }
        self.connect_error(e)
    }

    /// `CertificateChanged` when the handshake presented another leaf than
    /// the pinned one.
    fn changed(&self, verifier: &PinVerifier) -> Option<OperatorError> {
        let Pin::Fingerprint(pinned) = self.pin else {
            return None;
        };
        let presented = verifier.presented()?;
        (presented != pinned).then(|| OperatorError::CertificateChanged {
            runner: self.runner.clone(),
            pinned: format_fingerprint(&pinned),
            presented: format_fingerprint(&presented),
        })
    }

    /// The error for a refused request: what a status means on the
    /// operator API.
    fn status_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        what: &str,
        session: Option<&str>,
    ) -> OperatorError {
        let runner = self.runner.clone();
        let what = what.to_string();
        let session = session.unwrap_or_default().to_string();
        match status {
            401 => OperatorError::Unauthorized { runner },
            429 => OperatorError::Throttled {
                runner,
                retry_after_secs: headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
            },
            403 => OperatorError::Forbidden { runner, what },
            400 => OperatorError::ReasonRequired { runner, what },
            404 => OperatorError::NoSession { runner, session },
            409 => OperatorError::NoTerminal { runner, session },
            _ => OperatorError::Status {
                runner,
                status,
                first_line: first_line(body),
            },
        }
    }
}

/// The SHA-256 of the certificate `base_url` (`https://host:port`)
/// presents, after a TLS handshake that checks only its signatures (for
/// `termgate trust`).
pub async fn fetch_fingerprint(base_url: &str) -> Result<[u8; 32], OperatorError> {
    let base = check_base_url(base_url).map_err(|reason| OperatorError::BadUrl {
        url: base_url.to_string(),
        reason,
    })?;
    let bad = |reason: String| OperatorError::BadUrl {
        url: base_url.to_string(),
        reason,
    };
    let url = reqwest::Url::parse(&base).map_err(|e| bad(e.to_string()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = url.host_str().ok_or_else(|| bad("it has no host".into()))?;
    let addr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(addr.clone()).map_err(|e| bad(e.to_string()))?,
    };
    let connect_error = |e: &dyn std::error::Error| OperatorError::Connect {
        address: base.clone(),
        cause: error_chain(e),
    };
    let verifier = PinVerifier::new(Pin::Insecure);
    let tls = client_config(verifier.clone()).map_err(|e| connect_error(&e))?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((addr.as_str(), port))
            .await
            .map_err(|e| connect_error(&e))?;
        tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| connect_error(&e))
    };
    let stream = tokio::time::timeout(TIMEOUT, handshake)
        .await
        .map_err(|_| OperatorError::Timeout {
            address: base.clone(),
        })??;
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| OperatorError::Connect {
            address: base.clone(),
            cause: "the server presented no certificate".into(),
        })?;
    Ok(Sha256::digest(leaf).into())
}

/// `https://host:port` without a trailing slash or path; why not otherwise.
fn check_base_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("is not https:// (the session server speaks only TLS)".into());
    };
    if rest.is_empty() || rest.contains(['/', '?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err("is not https://HOST:PORT (no path)".into());
    }
    reqwest::Url::parse(url).map_err(|e| format!("does not parse: {e}"))?;
    Ok(url.to_string())
}

/// `X-Termgate-Reason`: control characters become spaces, cut to
/// [`termgate::operator::MAX_REASON_CHARS`]; the bytes of a non-ASCII
/// character are percent-encoded (`é` → `%C3%A9`), since a header value is
/// visible ASCII on the WebSocket client's side.
fn reason_header(reason: &str) -> Option<HeaderValue> {
    let clean: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(termgate::operator::MAX_REASON_CHARS)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    HeaderValue::from_str(&out).ok()
}

async fn read_body(mut res: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room < chunk.len() {
            break;
        }
    }
    Ok(body)
}

/// The first non-empty line of a body, cut to 200 characters, for errors.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        Some(l) => crate::text::clean(&crate::text::fit_chars(l, 200)),
        None => "(no body)".to_string(),
    }
}

/// `e: its cause: its cause`, each message once, without the HTTP
/// client's generic wrappers (`error sending request for url (…)`,
/// `client error (Connect)`): what failed and why, not where.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let m = err.to_string();
        let generic = m.starts_with("error sending request") || m.starts_with("client error (");
        if !generic && !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        next = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// TLS 1.2 and 1.3 with the ring provider and `verifier`.
fn client_config(verifier: Arc<PinVerifier>) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Accepts the leaf whose SHA-256 is the pin (any leaf for
/// [`Pin::Insecure`]), ignoring names, chain and dates, and remembers the
/// digest presented; handshake signatures are verified as usual.
#[derive(Debug)]
struct PinVerifier {
    pin: Pin,
    presented: Mutex<Option<[u8; 32]>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    fn new(pin: Pin) -> Arc<PinVerifier> {
        Arc::new(PinVerifier {
            pin,
            presented: Mutex::new(None),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }

    fn presented(&self) -> Option<[u8; 32]> {
        *self.presented.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(digest);
        match self.pin {
            Pin::Insecure => Ok(ServerCertVerified::assertion()),
            Pin::Fingerprint(pin) if pin == digest => Ok(ServerCertVerified::assertion()),
            Pin::Fingerprint(_) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const TOKEN: &str = "tgo_0123456789abcdef";

    fn entry() -> RunnerEntry {
        RunnerEntry {
            name: "prm-5".into(),
            metrics_url: "http://127.0.0.1:9252/metrics".into(),
            session_url: Some("https://127.0.0.1:8093/".into()),
            operator_token: Some(TOKEN.into()),
            operator_token_file: None,
            fingerprint: Some(format_fingerprint(&[7u8; 32])),
            logs: Vec::new(),
        }
    }

    #[test]
    fn from_entry_takes_url_token_and_pin() {
        let e = OperatorEndpoint::from_entry(&entry(), false).unwrap();
        assert_eq!(e.base_url, "https://127.0.0.1:8093");
        assert_eq!(e.pin, Pin::Fingerprint([7u8; 32]));
        assert_eq!(e.token, TOKEN);
        let dbg = format!("{e:?}");
        assert!(!dbg.contains(TOKEN) && dbg.contains("redacted"), "{dbg}");
        let e = OperatorEndpoint::from_entry(&entry(), true).unwrap();
        assert_eq!(e.pin, Pin::Insecure);
    }

    #[test]
    fn token_file_wins_over_token() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prm-5.token");
        std::fs::write(&f, "tgo_fromfile\n").unwrap();
        let mut en = entry();
        en.operator_token_file = Some(f.clone());
        assert_eq!(
            OperatorEndpoint::from_entry(&en, false).unwrap().token,
            "tgo_fromfile"
        );
        std::fs::write(&f, "\n").unwrap();
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty") && err.contains("prm-5"), "{err}");
        en.operator_token_file = Some(PathBuf::from("/nonexistent/prm-5.token"));
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read operator_token_file"), "{err}");
    }

    #[test]
    fn missing_keys_name_the_runner_and_the_fix() {
        let mut en = entry();
        en.fingerprint = None;
        let err = OperatorEndpoint::from_entry(&en, false).unwrap_err();
        assert!(matches!(err, OperatorError::NotPinned { .. }));
        assert!(
            err.to_string().contains("run `termgate trust prm-5`"),
            "{err}"
        );

        let mut en = entry();
        en.fingerprint = Some("sha256:12:34".into());
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("termgate trust prm-5"), "{err}");

        let mut en = entry();
        en.session_url = None;
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prm-5") && err.contains("no session_url"),
            "{err}"
        );

        let mut en = entry();
        en.session_url = Some("http://127.0.0.1:8093".into());
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("https"), "{err}");

        let mut en = entry();
        en.operator_token = None;
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("operator_token_file"), "{err}");

        let mut en = entry();
        en.operator_token = Some("tgo_bad\nline".into());
        let err = OperatorEndpoint::from_entry(&en, false)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("tgo_bad"), "{err}");
    }

    #[test]
    fn statuses_become_errors_an_on_call_engineer_reads() {
        let e = OperatorEndpoint::from_entry(&entry(), false).unwrap();
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let msg = |s: u16, body: &[u8]| {
            e.status_error(s, &h, body, "join on session ab12", Some("ab12"))
                .to_string()
        };
        assert!(msg(401, b"").contains("401"));
        assert!(
            msg(429, b"").contains("retry after 7 s"),
            "{}",
            msg(429, b"")
        );
        assert!(msg(403, b"").contains("does not allow join"));
        assert!(msg(400, b"").contains("needs a reason"));
        assert!(msg(404, b"").contains("no session ab12"));
        assert!(msg(409, b"").contains("--shell"));
        assert_eq!(
            msg(500, b"\n  database on fire\nmore"),
            "prm-5 answered 500: database on fire"
        );
        let none = e.status_error(429, &HeaderMap::new(), b"", "x", None);
        assert!(none.to_string().contains("retry later"), "{none}");
    }

    #[test]
    fn reasons_are_cleaned_and_cut() {
        assert_eq!(reason_header("a\nb").unwrap(), "a b");
        assert!(reason_header("  \n").is_none());
        let long = "x".repeat(500);
        assert_eq!(
            reason_header(&long).unwrap().len(),
            termgate::operator::MAX_REASON_CHARS
        );
        assert_eq!(
            reason_header("déploiement bloqué").unwrap(),
            "d%C3%A9ploiement bloqu%C3%A9"
        );
    }

    #[test]
    fn base_urls() {
        assert_eq!(check_base_url("https://h:1/").unwrap(), "https://h:1");
        assert_eq!(
            check_base_url("https://[::1]:8093").unwrap(),
            "https://[::1]:8093"
        );
        assert!(check_base_url("https://h:1/x").is_err());
        assert!(check_base_url("http://h:1").is_err());
        assert!(check_base_url("https://").is_err());
    }

    #[test]
    fn verifier_accepts_exactly_the_pinned_leaf() {
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let digest: [u8; 32] = Sha256::digest([1u8, 2, 3]).into();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let check = |pin| {
            let v = PinVerifier::new(pin);
            let r = v.verify_server_cert(&cert, &[], &name, &[], UnixTime::now());
            (r.is_ok(), v.presented())
        };
        assert_eq!(check(Pin::Fingerprint(digest)), (true, Some(digest)));
        assert_eq!(check(Pin::Fingerprint([0; 32])), (false, Some(digest)));
        assert_eq!(check(Pin::Insecure), (true, Some(digest)));
    }
}
