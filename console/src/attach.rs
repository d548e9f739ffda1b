//! On-call attach: observe, join or open a shell in a live job's terminal
//! through a runner's operator API, on this process's terminal.
//!
//! [`bridge`] is the core (socket ⇄ keys, output, resizes, detach key) over
//! any WebSocket stream; [`term`] gives it the real terminal (raw mode
//! behind a guard, `/dev/tty`, SIGWINCH); [`crate::detach_key`] parses the
//! detach key;
//! [`resolve`] finds the session `termgate attach` names. [`Attacher`] is
//! what the TUI and `termgate attach` call.

pub mod bridge;
pub mod resolve;
pub mod term;

use std::collections::BTreeMap;
use std::sync::Arc;

use termgate::logschema::{self as schema, msg};
use termgate::operator::Mode;

pub use crate::detach_key::{DetachKey, DetachKeyError, DEFAULT_DETACH_KEY};
pub use bridge::{AttachEnd, AttachError, BridgeOptions, DETACHED};

use crate::operator_client::{OperatorEndpoint, OperatorError};

/// One attach: which runner, session and job, how, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    pub runner: String,
    pub session: String,
    pub job_id: u64,
    pub mode: Mode,
    /// Required for join and shell (the runner audits it).
    pub reason: Option<String>,
}

impl AttachRequest {
    /// The status line at the start: `observing job 4711 on prm-5 — Ctrl-]
    /// to detach`.
    pub fn banner(&self, detach: DetachKey) -> String {
        let (job, runner) = (self.job_id, &self.runner);
        let what = match self.mode {
            Mode::Observe => format!("observing job {job} on {runner}"),
            Mode::Join => {
                format!("joined job {job} on {runner} (the user sees your keys)")
            }
            Mode::Shell => format!("shell in job {job} on {runner}"),
        };
        format!("[termgate] {what} — {detach} to detach")
    }
}

/// Why an attach could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("runner {0}: no operator access (session_url and operator token in console.toml; see README)")]
    NoAccess(String),
    #[error(transparent)]
    Connect(#[from] OperatorError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("setting up the terminal: {0}")]
    Terminal(std::io::Error),
}

/// The runners this console may attach to, and the detach key.
#[derive(Debug, Clone, Default)]
pub struct Attacher {
    endpoints: BTreeMap<String, Arc<OperatorEndpoint>>,
    pub detach: DetachKey,
}

impl Attacher {
    pub fn new(
        endpoints: impl IntoIterator<Item = Arc<OperatorEndpoint>>,
        detach: DetachKey,
    ) -> Self {
        Attacher {
            endpoints: endpoints
                .into_iter()
                .map(|e| (e.runner.clone(), e))
                .collect(),
            detach,
        }
    }

    /// Connect and run the attach on this process's terminal until the
    /// session closes or the detach key; the terminal is back in cooked
    /// mode when this returns (also on errors).
    pub async fn attach(&self, req: &AttachRequest) -> Result<AttachEnd, Error> {
        let endpoint = self
            .endpoints
            .get(&req.runner)
            .ok_or_else(|| Error::NoAccess(req.runner.clone()))?;
        attach(endpoint, req, self.detach).await
    }
}

/// [`Attacher::attach`] with one endpoint.
pub async fn attach(
    endpoint: &OperatorEndpoint,
    req: &AttachRequest,
    detach: DetachKey,
) -> Result<AttachEnd, Error> {
    let socket = endpoint
        .connect(&req.session, req.mode, req.reason.as_deref())
        .await?;
    tracing::info!(
        { schema::RUNNER } = %req.runner,
        { schema::SESSION } = %req.session,
        { schema::JOB } = req.job_id,
        { schema::MODE } = req.mode.as_str(),
        "{}",
        msg::OPERATOR_ATTACHED
    );
    let terminal = term::is_terminal();
    let raw = match terminal {
        true => Some(term::RawGuard::enter().map_err(Error::Terminal)?),
        false => None,
    };
    let keys = term::keys(terminal).map_err(Error::Terminal)?;
    let opts = BridgeOptions {
        mode: req.mode,
        detach,
        banner: Some(req.banner(detach)),
        size: if terminal { term::size() } else { None },
    };
    let mut out = tokio::io::stdout();
    if terminal {
        // Start on a clean screen: what the TUI or an earlier attach left
        // there is not the session's.
        use tokio::io::AsyncWriteExt as _;
        let _ = out.write_all(b"\x1b[H\x1b[2J").await;
    }
    let ended = bridge::run(socket, keys, term::resizes(terminal), &mut out, &opts).await;
    drop(raw);
    match &ended {
        Ok(end) => tracing::info!(
            { schema::RUNNER } = %req.runner,
            { schema::SESSION } = %req.session,
            { schema::JOB } = req.job_id,
            { schema::MODE } = req.mode.as_str(),
            { schema::REASON } = %end.reason,
            { schema::BYTES_IN } = end.bytes_in,
            { schema::BYTES_OUT } = end.bytes_out,
            "{}",
            msg::OPERATOR_DETACHED
        ),
        Err(e) => tracing::warn!(
            { schema::RUNNER } = %req.runner,
            { schema::SESSION } = %req.session,
            { schema::JOB } = req.job_id,
            { schema::MODE } = req.mode.as_str(),
            { schema::ERROR } = %e,
            "{}",
            msg::OPERATOR_DETACHED
        ),
    }
    Ok(ended?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_say_what_and_how_to_leave() {
        let mut r = AttachRequest {
            runner: "prm-5".into(),
            session: "9f1c".into(),
            job_id: 4711,
            mode: Mode::Observe,
            reason: None,
        };
        let k = DetachKey::default();
        assert_eq!(
            r.banner(k),
            "[termgate] observing job 4711 on prm-5 — Ctrl-] to detach"
        );
        r.mode = Mode::Shell;
        assert_eq!(
            r.banner("ctrl-q".parse().unwrap()),
            "[termgate] shell in job 4711 on prm-5 — Ctrl-Q to detach"
        );
        r.mode = Mode::Join;
        assert!(r.banner(k).contains("joined job 4711 on prm-5"));
    }

    #[tokio::test]
    async fn no_access_is_an_error_not_a_panic() {
        let a = Attacher::default();
        let r = AttachRequest {
            runner: "prm-4".into(),
            session: "x".into(),
            job_id: 1,
            mode: Mode::Observe,
            reason: None,
        };
        let e = a.attach(&r).await.unwrap_err().to_string();
        assert!(e.starts_with("runner prm-4: no operator access"), "{e}");
    }
}
