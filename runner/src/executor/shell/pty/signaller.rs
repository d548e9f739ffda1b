//! The signalling thread. [`signal_sessions`] scans `/proc` with blocking
//! reads, so it runs on one dedicated thread: a burst of closing terminals
//! (a shutdown, 1000 clients leaving) never stalls the runtime threads that
//! carry other sessions, takes at most one CPU, and every request that
//! arrived while a scan ran shares the next one. If the thread cannot be
//! started, the blocking pool does the work instead.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::session::{signal_sessions, ProcOs, SessionOs};
use termgate::logschema::{self as schema, msg};

/// A session to signal, and who waits for it. A request without signals
/// only marks a point in the queue (see [`Signaller::flush`]).
type SignalRequest = ((Pid, Vec<Signal>), oneshot::Sender<()>);

/// A handle on one signalling thread (cheap to clone). Every PTY holds the
/// one it was spawned with: [`Signaller::global`] in production.
#[derive(Debug, Clone)]
pub(crate) struct Signaller {
    os: Arc<dyn SessionOs>,
    /// `None` if the thread could not be started.
    tx: Option<mpsc::Sender<SignalRequest>>,
}

/// The process's signaller, started on first use.
static GLOBAL: OnceLock<Signaller> = OnceLock::new();

impl Signaller {
    /// The signaller on the real system, shared by every terminal.
    pub(crate) fn global() -> &'static Signaller {
        GLOBAL.get_or_init(|| Signaller::start(Arc::new(ProcOs)))
    }

    /// Start a signalling thread acting through `os`. The thread ends once
    /// every handle is gone.
    pub(crate) fn start(os: Arc<dyn SessionOs>) -> Signaller {
        let (tx, rx) = mpsc::channel::<SignalRequest>();
        let thread_os = os.clone();
        let started = std::thread::Builder::new()
            .name("termgate-pty-signal".into())
            .spawn(move || serve(thread_os.as_ref(), &rx))
            .is_ok();
        Signaller {
            os,
            tx: started.then_some(tx),
        }
    }

    /// Send `sigs` to every process of session `pid`, off the runtime, and
    /// wait until that was done.
    pub(crate) async fn signal(&self, pid: Pid, sigs: &[Signal]) {
        match self.queue(pid, sigs) {
            Ok(finished) => {
                let _ = finished.await;
            }
            Err((pid, sigs)) => {
                let os = self.os.clone();
                let res = tokio::task::spawn_blocking(move || {
                    signal_sessions(os.as_ref(), &[(pid, sigs)]);
                })
                .await;
                if let Err(e) = res {
                    tracing::warn!({ schema::ERROR } = %e, { schema::PID } = pid.as_raw(), "{}", msg::SHELL_SIGNAL_FAILED);
                }
            }
        }
    }

    /// [`Signaller::signal`] without waiting, for `Drop`: the request joins
    /// the thread's next scan. Only if there is no thread does the scan run
    /// here.
    pub(crate) fn signal_detached(&self, pid: Pid, sigs: &[Signal]) {
        if let Err((pid, sigs)) = self.queue(pid, sigs) {
            signal_sessions(self.os.as_ref(), &[(pid, sigs)]);
        }
    }

    /// Hand a request to the thread; the receiver resolves once it was
    /// carried out. The request comes back if there is no thread.
    fn queue(
        &self,
        pid: Pid,
        sigs: &[Signal],
    ) -> Result<oneshot::Receiver<()>, (Pid, Vec<Signal>)> {
        let (done, finished) = oneshot::channel();
        let req = ((pid, sigs.to_vec()), done);
        match &self.tx {
            Some(tx) => tx.send(req).map(|()| finished).map_err(|e| (e.0).0),
            None => Err(req.0),
        }
    }

    /// Wait, at most `limit`, until the thread has carried out every request
    /// queued so far.
    pub(crate) fn flush(&self, limit: Duration) {
        let Some(tx) = &self.tx else {
            return;
        };
        let (done, mut finished) = oneshot::channel();
        if tx.send(((Pid::from_raw(0), Vec::new()), done)).is_err() {
            return;
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match finished.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return,
            }
        }
    }
}

/// The thread: take every request queued, carry them out in one
/// [`signal_sessions`], tell their senders.
fn serve(os: &dyn SessionOs, rx: &mpsc::Receiver<SignalRequest>) {
    while let Ok(first) = rx.recv() {
        let batch: Vec<SignalRequest> = std::iter::once(first).chain(rx.try_iter()).collect();
        let reqs: Vec<(Pid, Vec<Signal>)> = batch
            .iter()
            .filter(|(r, _)| !r.1.is_empty())
            .map(|(r, _)| r.clone())
            .collect();
        if !reqs.is_empty() {
            signal_sessions(os, &reqs);
        }
        for (_, done) in batch {
            let _ = done.send(());
        }
    }
}

/// Wait, at most `limit`, until the signalling thread has carried out every
/// request queued so far. For the end of the process: a dropped terminal
/// queues its last sweep without waiting, and the process must not exit
/// before it ran.
pub fn flush_signals(limit: Duration) {
    if let Some(signaller) = GLOBAL.get() {
        signaller.flush(limit);
    }
}
