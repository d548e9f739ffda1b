//! HTTP side of a scrape: one GET with a deadline and a body cap, and errors
//! short enough for a table cell (`refused`, `timeout`, `HTTP 500`, …).

use std::time::Duration;

use futures::StreamExt;

use super::parse::{parse_metrics, ParseError, MAX_BODY_BYTES};
use crate::model::Sample;

/// Bodies above this are parsed off the async threads.
const BLOCKING_PARSE_BYTES: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    #[error("refused")]
    Refused,
    #[error("timeout")]
    Timeout,
    #[error("HTTP {0}")]
    Status(u16),
    /// DNS, TLS, reset, … (short text).
    #[error("{0}")]
    Connect(String),
    #[error("too large: over {} MiB", .0 >> 20)]
    TooLarge(usize),
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// Could not build the HTTP client at all.
    #[error("client: {0}")]
    Client(String),
}

/// An HTTP client for `/metrics` and the Prometheus API.
#[derive(Debug, Clone)]
pub struct ScrapeClient {
    http: reqwest::Client,
    timeout: Duration,
    max_body: usize,
}

impl ScrapeClient {
    pub fn new(timeout: Duration) -> Result<ScrapeClient, ScrapeError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("termgate-console/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ScrapeError::Client(e.to_string()))?;
        Ok(ScrapeClient {
            http,
            timeout,
            max_body: MAX_BODY_BYTES,
        })
    }

    /// Lower the body cap (tests).
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GET `url` and return the body as text, within the timeout and cap.
    pub async fn get_text(&self, url: &str) -> Result<String, ScrapeError> {
        match tokio::time::timeout(self.timeout, self.get_text_inner(url)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout),
        }
    }

    async fn get_text_inner(&self, url: &str) -> Result<String, ScrapeError> {
        let resp = self
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "text/plain;version=0.0.4;q=0.9,*/*;q=0.1",
            )
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ScrapeError::Status(status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(ScrapeError::TooLarge(self.max_body));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            if body.len() + chunk.len() > self.max_body {
                return Err(ScrapeError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(match String::from_utf8(body) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Scrape and parse one `/metrics` endpoint.
    pub async fn scrape(&self, url: &str) -> Result<Sample, ScrapeError> {
        let text = self.get_text(url).await?;
        let sample = if text.len() > BLOCKING_PARSE_BYTES {
            tokio::task::spawn_blocking(move || parse_metrics(&text))
                .await
                .map_err(|e| ScrapeError::Client(e.to_string()))??
        } else {
            parse_metrics(&text)?
        };
        Ok(sample)
    }
}

/// A reqwest error (async or blocking) as a short reason.
/// The reason shown when an https metrics URL has an untrusted certificate:
/// most likely the runner's session server, not its metrics.
pub const SESSION_SERVER_HINT: &str = "untrusted TLS certificate: a session server URL? metrics are on the runner's listen_address (http)";

/// Every message of `e`'s source chain, lowercase.
fn chain_text(e: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        out.push_str(&s.to_string().to_ascii_lowercase());
        out.push('\n');
        src = s.source();
    }
    out
}

pub(crate) fn classify(e: reqwest::Error) -> ScrapeError {
    if e.is_timeout() {
        return ScrapeError::Timeout;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ScrapeError::Refused,
                std::io::ErrorKind::TimedOut => return ScrapeError::Timeout,
                std::io::ErrorKind::ConnectionReset => return ScrapeError::Connect("reset".into()),
                _ => {}
            }
        }
        src = s.source();
    }
    let text = std::error::Error::source(&e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    let lower = text.to_ascii_lowercase();
    let short = if lower.contains("dns") || lower.contains("resolve") {
        "unresolved".to_string()
    } else if chain_text(&e).contains("certificate")
        && e.url().is_some_and(|u| u.scheme() == "https")
    {
        // The runner's session server is the https endpoint with a
        // self-signed certificate; its metrics are plain http.
        SESSION_SERVER_HINT.to_string()
    } else if lower.contains("certificate") || lower.contains("tls") {
        "TLS error".to_string()
    } else if e.is_connect() {
        "unreachable".to_string()
    } else if e.is_body() || e.is_decode() {
        "broken body".to_string()
    } else {
        text.chars().take(40).collect()
    };
    ScrapeError::Connect(short)
}
