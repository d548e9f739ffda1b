//! The shell executor's [`TerminalFactory`]: a new login-less shell on a
//! PTY per web terminal.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{spawn, PtyCommand, PtyProcess};
use crate::executor::terminal::{OpenError, TermSize, TerminalFactory, TerminalHandle};
use crate::job_user::JobUser;
use termgate::logschema::{self as schema, msg};

/// The shell could not be started: `starting <shell> in <dir>: <why>`.
#[derive(Debug, thiserror::Error)]
#[error("starting {shell} in {}: {}", cwd.display(), describe(error))]
pub struct SpawnError {
    pub shell: String,
    pub cwd: PathBuf,
    /// Why (a missing directory or shell, ...); already in the message.
    pub error: io::Error,
}

impl From<SpawnError> for OpenError {
    fn from(e: SpawnError) -> Self {
        OpenError::new(e)
    }
}

/// Opens a new interactive shell per call in a job's build directory with
/// the job's environment: the shell executor's web terminal.
#[derive(Debug, Clone)]
pub struct PtyTerminalFactory {
    shell: String,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    clear_env: bool,
    user: Option<JobUser>,
}

impl PtyTerminalFactory {
    pub fn new(
        shell: impl Into<String>,
        cwd: impl Into<PathBuf>,
        env: Vec<(String, String)>,
    ) -> Self {
        PtyTerminalFactory {
            shell: shell.into(),
            cwd: cwd.into(),
            env,
            clear_env: false,
            user: None,
        }
    }

    /// `env` is the shells' whole environment, not additions to the
    /// runner's ([`PtyCommand::clear_env`]).
    pub fn with_clean_env(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// The shells run as `user` ([`PtyCommand::user`]).
    pub fn run_as(mut self, user: Option<JobUser>) -> Self {
        self.user = user;
        self
    }

    pub fn shell(&self) -> &str {
        &self.shell
    }

    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Like [`TerminalFactory::open`], keeping the concrete type. Must run
    /// inside a tokio runtime.
    pub fn spawn(&self, size: TermSize) -> Result<PtyProcess, SpawnError> {
        let fail = |error: io::Error| SpawnError {
            shell: self.shell.clone(),
            cwd: self.cwd.clone(),
            error,
        };
        // Spawn reports a missing cwd and a missing shell alike (ENOENT);
        // check the directory first so the message is unambiguous.
        if let Err(e) = std::fs::metadata(&self.cwd) {
            return Err(fail(e));
        }
        let cmd = PtyCommand {
            clear_env: self.clear_env,
            user: self.user.clone(),
            ..PtyCommand::shell(&self.shell, &self.cwd, &self.env, size)
        };
        spawn(cmd).map_err(fail)
    }
}

#[async_trait]
impl TerminalFactory for PtyTerminalFactory {
    async fn open(&self, size: TermSize) -> Result<TerminalHandle, OpenError> {
        let p = self.spawn(size)?;
        tracing::debug!({ schema::PID } = p.pid(), { schema::SHELL } = %self.shell, { schema::CWD } = %self.cwd.display(), "{}", msg::SHELL_STARTED);
        Ok(p.into_handle())
    }
}

/// `No such file or directory` rather than `... (os error 2)`.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_until;
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn factory_errors_are_clear() {
        let f = PtyTerminalFactory::new("sh", "/nonexistent/termgate", vec![]);
        let e = f.open(TermSize::default()).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent"), "{e:?}");
        assert_eq!(
            e.to_string(),
            "starting sh in /nonexistent/termgate: No such file or directory"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = PtyTerminalFactory::new("no-such-shell-termgate", dir.path(), vec![]);
        let e = f.open(TermSize::default()).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "starting no-such-shell-termgate in {}: No such file or directory",
                dir.path().display()
            )
        );
    }

    #[tokio::test]
    async fn factory_opens_independent_shells() {
        let dir = tempfile::tempdir().unwrap();
        let f = PtyTerminalFactory::new("sh", dir.path(), vec![("CI_JOB_ID".into(), "7".into())]);
        let mut a = f.open(TermSize::default()).await.unwrap();
        let mut b = f
            .open(TermSize {
                cols: 100,
                rows: 30,
            })
            .await
            .unwrap();
        for (h, want) in [(&mut a, "24 80"), (&mut b, "30 100")] {
            h.input
                .write_all(b"stty size; echo \"id=$CI_JOB_ID\"; echo END-$((6*7))\n")
                .await
                .unwrap();
            let mut acc = Vec::new();
            read_until(&mut h.output, &mut acc, b"END-42").await;
            let out = String::from_utf8_lossy(&acc);
            assert!(out.contains(want) && out.contains("id=7"), "{out}");
        }
        a.control.close().await;
        b.control.close().await;
    }
}
