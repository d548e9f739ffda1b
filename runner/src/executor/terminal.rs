//! The optional interactive-terminal capability of an executor: open a new
//! shell inside the job's environment (a PTY on the host, `docker exec` with
//! a TTY in the job's container) and hand back its I/O.

use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// Terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
}

impl Default for TermSize {
    /// 80×24, what a runner picks when the client says nothing.
    fn default() -> Self {
        TermSize { cols: 80, rows: 24 }
    }
}

/// Resize and stop an open terminal.
#[async_trait]
pub trait TerminalControl: Send + Sync {
    async fn resize(&self, size: TermSize) -> io::Result<()>;
    /// Stop the shell and everything it started. Idempotent.
    async fn close(&self);
}

/// An open terminal: its output, its input, and its control. Reading
/// `output` is the only thing that drains the terminal, so a consumer that
/// stops reading pauses the shell (back-pressure, bounded memory).
pub struct TerminalHandle {
    pub output: Pin<Box<dyn AsyncRead + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub control: Box<dyn TerminalControl>,
}

impl std::fmt::Debug for TerminalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TerminalHandle")
    }
}

/// Why a terminal could not be opened: the executor's own typed error
/// (`SpawnError` for the shell's PTY, `DockerTerminalError` for a Docker
/// exec), converted with `?`. The text is what the log gets next to
/// upstream's `Failed to connect to terminal`; the client gets a 500.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OpenError(Box<dyn std::error::Error + Send + Sync>);

impl OpenError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        OpenError(Box::new(e))
    }
}

/// Opens terminals for one job. Set on the job's session once the executor
/// is prepared.
#[async_trait]
pub trait TerminalFactory: Send + Sync {
    /// Open a new interactive shell.
    async fn open(&self, size: TermSize) -> Result<TerminalHandle, OpenError>;
}
