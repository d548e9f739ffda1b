//! The PTY master's async halves, registered with tokio's reactor:
//! [`PtyReader`] (the shell's output) and [`PtyWriter`] (its input).
//! Nothing is buffered here: the master is only read when the consumer
//! polls [`PtyReader`], so a consumer that stops reading fills the kernel's
//! PTY buffer and the shell blocks in `write` (back-pressure, bounded
//! memory).

use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use nix::pty::PtyMaster;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Shared;

/// A read of at most this many bytes that did not fill the buffer leaves
/// the master not readable until the next wakeup (see [`PtyReader`]).
const SMALL_READ: usize = 256;

/// Hand the master to tokio's reactor, for reading only.
///
/// Write readiness is not watched here: the master turns writable again
/// each time the shell reads its input, i.e. at every keystroke, and with
/// write interest each of those would wake the reactor for nothing (one
/// extra wakeup per echo). [`PtyWriter`] writes directly and registers for
/// writability only while the terminal's input is full.
#[allow(unsafe_code)]
pub(super) fn register(master: PtyMaster) -> io::Result<AsyncFd<PtyMaster>> {
    // SAFETY: `PtyMaster` owns its fd (an `OwnedFd`) and always returns that
    // same fd from `as_raw_fd`; the `AsyncFd` owns the `PtyMaster`, so the fd
    // stays open until the registration is gone.
    Ok(unsafe { AsyncFd::register_with_interest(master, tokio::io::Interest::READABLE) }?)
}

/// Register `fd` (a duplicate of the master) for write readiness.
#[allow(unsafe_code)]
fn register_writable(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: as in `register`: the `AsyncFd` owns the `OwnedFd`, which
    // keeps that one fd open until the registration is gone.
    Ok(unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::WRITABLE) }?)
}

/// The shell's output. EOF once the shell and everything that holds the
/// terminal have exited (Linux reports that as EIO on the master).
#[derive(Debug)]
pub struct PtyReader {
    pub(super) shared: Arc<Shared>,
}

impl AsyncRead for PtyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let mut guard = ready!(self.shared.master.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let wanted = unfilled.len();
            match guard.try_io(|fd| io::Read::read(&mut fd.get_ref(), unfilled)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < wanted && n <= SMALL_READ {
                        // A small read (an echo, a prompt) drained the line
                        // discipline: skip the next read, which would only
                        // say EAGAIN. Output written after it wakes the
                        // edge-triggered epoll again, and readiness seen
                        // since this guard was taken is not cleared. Bigger
                        // reads keep reading eagerly: under bulk output
                        // more has usually arrived by then.
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The shell's input (keystrokes, bytes passed through unchanged).
///
/// Writes go straight to the non-blocking master. Only when the terminal's
/// input buffer is full (the shell is not reading) does the writer register
/// a duplicate of the master for write readiness, and it drops that
/// registration after the next successful write.
#[derive(Debug)]
pub struct PtyWriter {
    pub(super) shared: Arc<Shared>,
    /// Write interest while the input is full (see [`PtyWriter`]).
    pub(super) blocked: Option<AsyncFd<OwnedFd>>,
}

impl AsyncWrite for PtyWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if let Some(blocked) = &this.blocked {
                let mut guard = ready!(blocked.poll_write_ready(cx))?;
                // Writable again; the write below decides. Nothing is read
                // through `blocked`, so clearing cannot lose a wakeup.
                guard.clear_ready();
            }
            match io::Write::write(&mut this.shared.master.get_ref(), data) {
                Ok(n) => {
                    this.blocked = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if this.blocked.is_none() {
                        use std::os::fd::AsFd as _;
                        let dup = this.shared.master.get_ref().as_fd().try_clone_to_owned()?;
                        // An edge between the write and the registration is
                        // not lost: registering polls the fd once.
                        this.blocked = Some(register_writable(dup)?);
                    }
                    // Loop: wait for writability at the top, then retry
                    // (EAGAIN again clears it and waits once more).
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// A PTY has no half-close; closing the terminal is [`PtyControl::close`](super::PtyControl).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
