//! TEMPORARY SHIM (wt-con): the signatures of the operator client another
//! piece of issue 17 is writing, with minimal bodies so the Sessions screen,
//! `termgate attach` and the demo compile against them. When the real
//! module lands on `main`, `git merge main` and take theirs.

use termgate::operator::{Mode, SessionList};

use crate::config::RunnerEntry;

/// How the session server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    Fingerprint([u8; 32]),
    Insecure,
}

/// A runner's operator API.
#[derive(Debug, Clone)]
pub struct OperatorEndpoint {
    pub runner: String,
    pub base_url: String,
    #[allow(dead_code)]
    token: String,
    pub pin: Pin,
}

pub type OperatorSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("runner {0}: no session_url in console.toml")]
    NoSessionUrl(String),
    #[error("runner {0}: no operator_token or operator_token_file in console.toml")]
    NoToken(String),
    #[error("runner {runner}: reading {path}: {error}")]
    TokenFile {
        runner: String,
        path: String,
        error: std::io::Error,
    },
    #[error(
        "runner {0}: no fingerprint in console.toml (run `termgate trust {0}`, or pass --insecure)"
    )]
    NoFingerprint(String),
    #[error("runner {0}: the operator client is not available in this build yet")]
    NotYet(String),
}

impl OperatorEndpoint {
    pub fn from_entry(entry: &RunnerEntry, insecure: bool) -> Result<Self, OperatorError> {
        let runner = entry.name.clone();
        let base_url = entry
            .session_url
            .clone()
            .ok_or_else(|| OperatorError::NoSessionUrl(runner.clone()))?;
        let token = match (&entry.operator_token_file, &entry.operator_token) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|error| OperatorError::TokenFile {
                    runner: runner.clone(),
                    path: path.display().to_string(),
                    error,
                })?
                .trim()
                .to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => return Err(OperatorError::NoToken(runner)),
        };
        let pin = match entry
            .fingerprint
            .as_deref()
            .and_then(termgate::operator::parse_fingerprint)
        {
            _ if insecure => Pin::Insecure,
            Some(f) => Pin::Fingerprint(f),
            None => return Err(OperatorError::NoFingerprint(runner)),
        };
        Ok(OperatorEndpoint {
            runner,
            base_url,
            token,
            pin,
        })
    }

    pub async fn sessions(&self) -> Result<SessionList, OperatorError> {
        Err(OperatorError::NotYet(self.runner.clone()))
    }

    pub async fn connect(
        &self,
        _session_id: &str,
        _mode: Mode,
        _reason: Option<&str>,
    ) -> Result<OperatorSocket, OperatorError> {
        Err(OperatorError::NotYet(self.runner.clone()))
    }
}
