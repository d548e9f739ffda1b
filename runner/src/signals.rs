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
