//! The local terminal for an attach: raw mode behind a guard (also
//! restored from a panic), the keyboard as a stream of reads, and window
//! size changes as a stream of sizes.
//!
//! Keys are read from a file description of our own (`/dev/tty` opened
//! non-blocking), not from stdin through a blocking thread: when the attach
//! ends, nothing is left waiting on the terminal to steal the first key the
//! TUI should get once it resumes.

use std::io::{self, IsTerminal};
use std::os::unix::fs::OpenOptionsExt;

use futures::stream::BoxStream;
use futures::StreamExt;

use crate::panic_hook::PanicRestore;

/// Raw mode while it lives; cooked mode again when dropped or on a panic.
pub struct RawGuard {
    _hook: PanicRestore,
}

fn restore_cooked() {
    let _ = crossterm::terminal::disable_raw_mode();
}

impl RawGuard {
    pub fn enter() -> io::Result<RawGuard> {
        let hook = PanicRestore::install(restore_cooked);
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawGuard { _hook: hook })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore_cooked();
    }
}

/// Whether the attach runs on a terminal (raw mode, resizes) or on pipes.
pub fn is_terminal() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// The current size of the terminal (columns, rows), if there is one.
pub fn size() -> Option<(u16, u16)> {
    crossterm::terminal::size()
        .ok()
        .filter(|(c, r)| *c > 0 && *r > 0)
}

/// What the keyboard sends, one item per read (a paste arrives whole).
/// On a terminal: `/dev/tty`, non-blocking; else stdin (a pipe).
pub fn keys(terminal: bool) -> io::Result<BoxStream<'static, io::Result<Vec<u8>>>> {
    if !terminal {
        let stdin = tokio_util::io::ReaderStream::new(tokio::io::stdin());
        return Ok(stdin.map(|r| r.map(|b| b.to_vec())).boxed());
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open("/dev/tty")?;
    // Tokio's pipe reader is a non-blocking fd on the reactor: it reads a
    // terminal as well as a FIFO (the check it skips is for FIFOs).
    let rx = tokio::net::unix::pipe::Receiver::from_file_unchecked(tty)?;
    let reads = tokio_util::io::ReaderStream::with_capacity(rx, 4096);
    Ok(reads.map(|r| r.map(|b| b.to_vec())).boxed())
}

/// New sizes of the terminal, on SIGWINCH. Empty when there is no
/// terminal or the signal cannot be caught.
pub fn resizes(terminal: bool) -> BoxStream<'static, (u16, u16)> {
    use tokio::signal::unix::{signal, SignalKind};
    let winch = match signal(SignalKind::window_change()) {
        Ok(s) if terminal => s,
        _ => return futures::stream::empty().boxed(),
    };
    futures::stream::unfold(winch, |mut winch| async move {
        loop {
            winch.recv().await?;
            if let Some(s) = size() {
                return Some((s, winch));
            }
        }
    })
    .boxed()
}
