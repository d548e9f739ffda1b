//! Interactive shells on a pseudo-terminal: the shell executor's web
//! terminal (upstream: `session/terminal` + `kr/pty`).
//!
//! [`spawn`] opens a PTY pair, starts the program in its own session with the
//! slave as controlling terminal and stdin/stdout/stderr ([`sys`]), and hands
//! back the master as an async read half and write half ([`async_io`]) and a
//! [`PtyControl`].
//!
//! Stopping ([`PtyControl::close`], or dropping every part) hangs up and then
//! kills every process of the shell's session, not only its process group:
//! an interactive shell with job control puts each job in its own group.
//! The `/proc` scans that find them run on one signalling thread
//! ([`signaller`]) through the OS effects of [`session`].

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::pty::PtyMaster;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::process::Child;

use crate::executor::terminal::{TermSize, TerminalControl, TerminalHandle};
use crate::job_user::JobUser;
use termgate::logschema::{self as schema, msg};

mod async_io;
mod factory;
mod session;
mod signaller;
mod sys;
#[cfg(test)]
pub(crate) mod tests;

pub use async_io::{PtyReader, PtyWriter};
pub use factory::{PtyTerminalFactory, SpawnError};
pub use signaller::flush_signals;
use signaller::Signaller;

/// Grace between SIGHUP and SIGKILL when closing a terminal.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// `TERM` for the shell when the job does not set one (what xterm.js speaks).
pub const DEFAULT_TERM: &str = "xterm-256color";

/// What to run on a new PTY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyCommand {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Set on top of the runner's own environment, or, with `clear_env`,
    /// the whole environment. `TERM` defaults to [`DEFAULT_TERM`]; `PWD` is
    /// `cwd`.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment rather than the runner's (the shell
    /// executor's terminals: `env` is the job's whole environment).
    pub clear_env: bool,
    /// Run as this user (its uid, gid and groups; the PTY is handed to it).
    pub user: Option<JobUser>,
    /// The initial window size.
    pub size: TermSize,
}

impl PtyCommand {
    /// An interactive shell without login or rc files: `bash --noprofile
    /// --norc -i` or `<shell> -i`, with a `PS1` unless `env` has one.
    pub fn shell(shell: &str, cwd: &Path, env: &[(String, String)], size: TermSize) -> Self {
        let is_bash = Path::new(shell).file_name().is_some_and(|n| n == "bash");
        let mut args = Vec::new();
        if is_bash {
            args.push("--noprofile".to_string());
            args.push("--norc".to_string());
        }
        args.push("-i".to_string());
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| k == "PS1") {
            let ps1 = if is_bash { r"\u@\h:\w\$ " } else { "$ " };
            env.push(("PS1".to_string(), ps1.to_string()));
        }
        PtyCommand {
            program: shell.to_string(),
            args,
            cwd: cwd.to_path_buf(),
            env,
            clear_env: false,
            user: None,
            size,
        }
    }
}

/// A program running on a PTY. Split it with [`PtyProcess::split`] or turn
/// it into a [`TerminalHandle`]. Dropping every part kills the session.
#[derive(Debug)]
pub struct PtyProcess {
    pub reader: PtyReader,
    pub writer: PtyWriter,
    pub control: PtyControl,
}

impl PtyProcess {
    /// The child's pid (also its process group and session id).
    pub fn pid(&self) -> u32 {
        self.control.pid()
    }

    pub fn split(self) -> (PtyReader, PtyWriter, PtyControl) {
        (self.reader, self.writer, self.control)
    }

    pub fn into_handle(self) -> TerminalHandle {
        TerminalHandle {
            output: Box::pin(self.reader),
            input: Box::pin(self.writer),
            control: Box::new(self.control),
        }
    }
}

/// Start `cmd` on a new PTY. Must run inside a tokio runtime (with I/O
/// enabled); panics otherwise, as tokio's own spawn does.
pub fn spawn(cmd: PtyCommand) -> io::Result<PtyProcess> {
    spawn_with(cmd, Signaller::global().clone())
}

/// [`spawn`], closing through `signaller`.
fn spawn_with(cmd: PtyCommand, signaller: Signaller) -> io::Result<PtyProcess> {
    let (master, child, pid) = sys::start(&cmd)?;
    let shared = Arc::new(Shared {
        master: async_io::register(master)?,
        pid,
        child: tokio::sync::Mutex::new(ChildState::Running(child)),
        signaller,
    });
    Ok(PtyProcess {
        reader: PtyReader {
            shared: shared.clone(),
        },
        writer: PtyWriter {
            shared: shared.clone(),
            blocked: None,
        },
        control: PtyControl { shared },
    })
}

#[derive(Debug)]
enum ChildState {
    Running(Child),
    Exited(ExitStatus),
}

/// What every part of a [`PtyProcess`] shares; the last one dropped kills
/// the session.
#[derive(Debug)]
struct Shared {
    master: AsyncFd<PtyMaster>,
    pid: Pid,
    child: tokio::sync::Mutex<ChildState>,
    /// Carries out the `/proc` sweeps of this session.
    signaller: Signaller,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self.child.get_mut();
        if let ChildState::Running(child) = state {
            if let Ok(Some(status)) = child.try_wait() {
                *state = ChildState::Exited(status);
            }
        }
        // Leftover jobs of an exited shell go too. The /proc scan runs on
        // the signalling thread, not on the (runtime) thread dropping this.
        self.signaller.signal_detached(self.pid, &[Signal::SIGKILL]);
        // A still running `Child` is killed on drop (kill_on_drop) and tokio
        // reaps it in the background.
    }
}

/// Resize and stop the program on the PTY.
#[derive(Debug)]
pub struct PtyControl {
    shared: Arc<Shared>,
}

impl PtyControl {
    pub fn pid(&self) -> u32 {
        self.shared.pid.as_raw() as u32
    }

    /// The exit status once the child has exited and was reaped, without
    /// waiting.
    pub async fn try_status(&self) -> io::Result<Option<ExitStatus>> {
        let mut state = self.shared.child.lock().await;
        match &mut *state {
            ChildState::Exited(s) => Ok(Some(*s)),
            ChildState::Running(child) => match child.try_wait()? {
                Some(s) => {
                    *state = ChildState::Exited(s);
                    Ok(Some(s))
                }
                None => Ok(None),
            },
        }
    }

    /// Wait for the child to exit (and reap it).
    pub async fn wait(&self) -> io::Result<ExitStatus> {
        let mut state = self.shared.child.lock().await;
        match &mut *state {
            ChildState::Exited(s) => Ok(*s),
            ChildState::Running(child) => {
                let s = child.wait().await?;
                *state = ChildState::Exited(s);
                Ok(s)
            }
        }
    }
}

#[async_trait]
impl TerminalControl for PtyControl {
    async fn resize(&self, size: TermSize) -> io::Result<()> {
        sys::set_winsize(self.shared.master.get_ref(), size)
    }

    /// SIGHUP (and SIGCONT, for stopped jobs) to every process of the
    /// session, SIGKILL after [`CLOSE_GRACE`], reap the child.
    async fn close(&self) {
        let pid = self.shared.pid;
        let mut state = self.shared.child.lock().await;
        if let ChildState::Running(child) = &mut *state {
            self.shared
                .signaller
                .signal(pid, &[Signal::SIGHUP, Signal::SIGCONT])
                .await;
            let status = match tokio::time::timeout(CLOSE_GRACE, child.wait()).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!({ schema::ERROR } = %e, { schema::PID } = pid.as_raw(), "{}", msg::SHELL_WAIT_FAILED);
                    ExitStatus::from_raw(0)
                }
                Err(_) => {
                    self.shared.signaller.signal(pid, &[Signal::SIGKILL]).await;
                    let _ = child.start_kill();
                    match child.wait().await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!({ schema::ERROR } = %e, { schema::PID } = pid.as_raw(), "{}", msg::SHELL_REAP_FAILED);
                            ExitStatus::from_raw(libc::SIGKILL)
                        }
                    }
                }
            };
            *state = ChildState::Exited(status);
        }
        // Whatever outlived the shell (jobs ignoring SIGHUP) goes too.
        self.shared.signaller.signal(pid, &[Signal::SIGKILL]).await;
    }
}
