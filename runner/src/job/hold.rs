//! After the script: if a terminal is connected, the job stays open until the
//! client leaves, `session_timeout` (capped by the job's deadline) passes,
//! the job is cancelled, or the runner is stopped — with upstream's job-log
//! lines for each.

use std::time::Duration;

use termgate::metrics::close_reason;
use tokio_util::sync::CancellationToken;

use crate::metrics::go_duration;
use crate::session::Session;
use crate::trace::JobTrace;

/// How the hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    NoTerminal,
    ClientLeft,
    TimedOut,
    Cancelled,
    Shutdown,
}

pub async fn hold_for_terminal(
    session: &Session,
    trace: &JobTrace,
    limit: Duration,
    cancel: &CancellationToken,
    force: &CancellationToken,
) -> HoldEnd {
    if !session.has_client() {
        return HoldEnd::NoTerminal;
    }
    let limit = Duration::from_secs(limit.as_secs());
    let d = go_duration(limit);
    trace.line(&format!("Terminal is connected, will time out in {d}..."));
    tokio::select! {
        _ = session.wait_no_client() => {
            trace.line("Terminal disconnected");
            HoldEnd::ClientLeft
        }
        _ = tokio::time::sleep(limit) => {
            trace.line(&format!("terminal session timed out (maximum time allowed - {d})"));
            session.close(close_reason::SESSION_TIMEOUT);
            HoldEnd::TimedOut
        }
        _ = cancel.cancelled() => {
            if force.is_cancelled() {
                trace.line("terminal disconnected by system signal: terminated");
                session.close(close_reason::RUNNER_SHUTDOWN);
                HoldEnd::Shutdown
            } else {
                trace.line("build cancelled, killing session");
                session.close(close_reason::JOB_CANCELLED);
                HoldEnd::Cancelled
            }
        }
    }
}
