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

impl Sig {
    /// The signal's name as logs give it.
    pub fn name(self) -> &'static str {
        match self {
            Sig::Graceful => "quit",
            Sig::Forceful(n) => n,
            Sig::Reload => "hangup",
        }
    }
}

pub struct Signals {
    quit: Signal,
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// SIGHUP caught from the very start of `run`: a reload asked for while the
/// runner is still starting (a `systemctl reload` right after a start) is
/// applied once it runs instead of killing it. SIGTERM, SIGINT and SIGQUIT
/// keep their default until [`Signals::install_with`], so a runner stuck
/// while starting still stops.
pub struct EarlyHangup(Signal);

impl EarlyHangup {
    pub fn catch() -> Result<Self> {
        Ok(EarlyHangup(
            signal(SignalKind::hangup()).context("installing SIGHUP handler")?,
        ))
    }
}

impl Signals {
    pub fn install() -> Result<Self> {
        Self::install_with(EarlyHangup::catch()?)
    }

    /// The other signals too, keeping a SIGHUP that `hup` already caught.
    pub fn install_with(hup: EarlyHangup) -> Result<Self> {
        Ok(Signals {
            quit: signal(SignalKind::quit()).context("installing SIGQUIT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            hup: hup.0,
        })
    }

    /// The next stop signal (SIGHUP is ignored): during a forceful
    /// shutdown a second one exits at once, as gitlab-runner's does.
    pub async fn next_stop(&mut self) -> Sig {
        loop {
            match self.next().await {
                Sig::Reload => continue,
                sig => return sig,
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIGHUP that arrives after `EarlyHangup::catch` but before the
    /// other handlers are installed does not kill the process (the test
    /// binary would die), and the loop then sees it as a reload. The
    /// daemon's use of it is checked end to end
    /// (`sighup_while_starting_reloads_instead_of_killing`).
    #[tokio::test]
    async fn hangup_while_starting_is_kept_for_the_loop() {
        let early = EarlyHangup::catch().unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
        let mut signals = Signals::install_with(early).unwrap();
        let sig = tokio::time::timeout(std::time::Duration::from_secs(5), signals.next())
            .await
            .expect("the early SIGHUP reached the loop");
        assert_eq!(sig, Sig::Reload);
        assert_eq!(sig.name(), "hangup");
    }
}
