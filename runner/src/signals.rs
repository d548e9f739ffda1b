//! Process signals as gitlab-runner handles them: SIGQUIT graceful (stop
//! requesting, wait for jobs), SIGTERM/SIGINT forceful (abort jobs, exit
//! within `shutdown_timeout`), SIGHUP reload.

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, Signal, SignalKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    Graceful,
    Forceful(&'static str),
    Reload,
}

pub struct Signals {
    quit: Signal,
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> Result<Self> {
        Ok(Signals {
            quit: signal(SignalKind::quit()).context("installing SIGQUIT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing SIGHUP handler")?,
        })
    }

    pub async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.quit.recv() => Sig::Graceful,
            _ = self.term.recv() => Sig::Forceful("terminated"),
            _ = self.int.recv() => Sig::Forceful("interrupt"),
            _ = self.hup.recv() => Sig::Reload,
        }
    }
}

/// Stop a child process the way a runner expects: SIGTERM (a runner then
/// aborts its jobs and kills their process groups), SIGKILL if it has not
/// exited after `grace`; reaps it either way. Used by the bench and the
/// end-to-end tests for the runners and coordinators they start.
pub fn stop_child(child: &mut std::process::Child, grace: std::time::Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
