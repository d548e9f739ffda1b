//! Interactive shells on a pseudo-terminal: the shell executor's web
//! terminal (upstream: `session/terminal` + `kr/pty`).
//!
//! [`spawn`] opens a PTY pair, starts the program in its own session with the
//! slave as controlling terminal and stdin/stdout/stderr, and hands back the
//! master as an async read half, an async write half and a [`PtyControl`].
//! Nothing is buffered here: the master is only read when the consumer polls
//! [`PtyReader`], so a consumer that stops reading fills the kernel's PTY
//! buffer and the shell blocks in `write` (back-pressure, bounded memory).
//!
//! Stopping ([`PtyControl::close`], or dropping every part) hangs up and then
//! kills every process of the shell's session, not only its process group:
//! an interactive shell with job control puts each job in its own group.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use nix::fcntl::OFlag;
use nix::pty::PtyMaster;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::Child;

use crate::executor::terminal::{TermSize, TerminalControl, TerminalHandle};

mod factory;
mod session;

pub use factory::PtyTerminalFactory;
use session::signal_session;
#[cfg(test)]
use session::{parse_stat, session_members, ProcStat};

/// Grace between SIGHUP and SIGKILL when closing a terminal.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A read of at most this many bytes that did not fill the buffer leaves
/// the master not readable until the next wakeup (see [`PtyReader`]).
const SMALL_READ: usize = 256;
/// `TERM` for the shell when the job does not set one (what xterm.js speaks).
pub const DEFAULT_TERM: &str = "xterm-256color";

/// What to run on a new PTY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyCommand {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Set on top of the runner's own environment (as the shell executor's
    /// steps get it). `TERM` defaults to [`DEFAULT_TERM`]; `PWD` is `cwd`.
    pub env: Vec<(String, String)>,
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
    // Both ends close-on-exec from the start, so a concurrent spawn on
    // another thread (a job step) cannot inherit them: a leaked slave would
    // keep the master from ever seeing EOF.
    let master = nix::pty::posix_openpt(
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
    )?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let slave_name = slave_path(&master)?;
    set_winsize(&master, cmd.size)?;
    // std opens with O_CLOEXEC.
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_name)?;

    let mut command = tokio::process::Command::new(&cmd.program);
    crate::rlimit::restore_in_child(&mut command);
    command
        .args(&cmd.args)
        .current_dir(&cmd.cwd)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .env("PWD", &cmd.cwd)
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true);
    if !cmd.env.iter().any(|(k, _)| k == "TERM") {
        command.env("TERM", DEFAULT_TERM);
    }
    set_controlling_terminal(&mut command);
    let child = command.spawn()?;
    // `command` still holds the slave's copies; drop them now or reading
    // the master never returns EOF.
    drop(command);
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child exited before it had a pid"))?;

    let shared = Arc::new(Shared {
        master: register(master)?,
        pid: Pid::from_raw(pid as i32),
        child: tokio::sync::Mutex::new(ChildState::Running(child)),
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

#[cfg(target_os = "linux")]
fn slave_path(master: &PtyMaster) -> io::Result<String> {
    Ok(nix::pty::ptsname_r(master)?)
}

#[cfg(not(target_os = "linux"))]
fn slave_path(master: &PtyMaster) -> io::Result<String> {
    use std::sync::Mutex;
    // ptsname(3) uses a static buffer: serialize our calls.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().map_err(|_| io::Error::other("ptsname lock"))?;
    #[allow(unsafe_code)]
    // SAFETY: calls are serialized by LOCK and the result is copied out.
    let name = unsafe { nix::pty::ptsname(master) }?;
    Ok(name)
}

/// Make the child a session leader with the PTY slave (its stdin, already
/// dup'ed to fd 0 when the hook runs) as controlling terminal.
#[allow(unsafe_code)]
fn set_controlling_terminal(command: &mut tokio::process::Command) {
    // SAFETY: the hook runs in the forked child before exec and only calls
    // setsid(2) and ioctl(2), which are async-signal-safe; it allocates
    // nothing and touches no locks.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Hand the master to tokio's reactor, for reading only.
///
/// Write readiness is not watched here: the master turns writable again
/// each time the shell reads its input, i.e. at every keystroke, and with
/// write interest each of those would wake the reactor for nothing (one
/// extra wakeup per echo). [`PtyWriter`] writes directly and registers for
/// writability only while the terminal's input is full.
#[allow(unsafe_code)]
fn register(master: PtyMaster) -> io::Result<AsyncFd<PtyMaster>> {
    // SAFETY: `PtyMaster` owns its fd (an `OwnedFd`) and always returns that
    // same fd from `as_raw_fd`; the `AsyncFd` owns the `PtyMaster`, so the fd
    // stays open until the registration is gone.
    Ok(unsafe { AsyncFd::register_with_interest(master, tokio::io::Interest::READABLE) }?)
}

/// Register `fd` (a duplicate of the master) for write readiness.
#[allow(unsafe_code)]
fn register_writable(fd: std::os::fd::OwnedFd) -> io::Result<AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: as in `register`: the `AsyncFd` owns the `OwnedFd`, which
    // keeps that one fd open until the registration is gone.
    Ok(unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::WRITABLE) }?)
}

/// TIOCSWINSZ on the master; the kernel sends SIGWINCH to the terminal's
/// foreground process group.
#[allow(unsafe_code)]
fn set_winsize(master: &PtyMaster, size: TermSize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the fd is open for the duration of the call (borrowed from
    // `master`) and `ws` is a valid winsize the kernel only reads.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ as _, &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
        signal_session_detached(self.pid, &[Signal::SIGKILL]);
        // A still running `Child` is killed on drop (kill_on_drop) and tokio
        // reaps it in the background.
    }
}

/// The shell's output. EOF once the shell and everything that holds the
/// terminal have exited (Linux reports that as EIO on the master).
#[derive(Debug)]
pub struct PtyReader {
    shared: Arc<Shared>,
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
    shared: Arc<Shared>,
    /// Write interest while the input is full (see [`PtyWriter`]).
    blocked: Option<AsyncFd<std::os::fd::OwnedFd>>,
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

    /// A PTY has no half-close; closing the terminal is [`PtyControl::close`].
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
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
        set_winsize(self.shared.master.get_ref(), size)
    }

    /// SIGHUP (and SIGCONT, for stopped jobs) to every process of the
    /// session, SIGKILL after [`CLOSE_GRACE`], reap the child.
    async fn close(&self) {
        let pid = self.shared.pid;
        let mut state = self.shared.child.lock().await;
        if let ChildState::Running(child) = &mut *state {
            signal_session_off_runtime(pid, &[Signal::SIGHUP, Signal::SIGCONT]).await;
            let status = match tokio::time::timeout(CLOSE_GRACE, child.wait()).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, pid = pid.as_raw(), "{}", termgate::logschema::msg::SHELL_WAIT_FAILED);
                    ExitStatus::from_raw(0)
                }
                Err(_) => {
                    signal_session_off_runtime(pid, &[Signal::SIGKILL]).await;
                    let _ = child.start_kill();
                    match child.wait().await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, pid = pid.as_raw(), "{}", termgate::logschema::msg::SHELL_REAP_FAILED);
                            ExitStatus::from_raw(libc::SIGKILL)
                        }
                    }
                }
            };
            *state = ChildState::Exited(status);
        }
        // Whatever outlived the shell (jobs ignoring SIGHUP) goes too.
        signal_session_off_runtime(pid, &[Signal::SIGKILL]).await;
    }
}

/// [`signal_session`] scans `/proc` with blocking reads, so it runs on one
/// dedicated thread: a burst of closing terminals (a shutdown, 1000
/// clients leaving) never stalls the runtime threads that carry other
/// sessions, takes at most one CPU, and every request that arrived while a
/// scan ran shares the next one. Without that thread, the blocking pool.
async fn signal_session_off_runtime(pid: Pid, sigs: &[Signal]) {
    match queue_signal(pid, sigs) {
        Ok(finished) => {
            let _ = finished.await;
        }
        Err((pid, sigs)) => {
            let res = tokio::task::spawn_blocking(move || signal_session(pid, &sigs)).await;
            if let Err(e) = res {
                tracing::warn!(error = %e, pid = pid.as_raw(), "{}", termgate::logschema::msg::SHELL_SIGNAL_FAILED);
            }
        }
    }
}

/// [`signal_session_off_runtime`] without waiting for it, for `Drop`: the
/// request joins the signalling thread's next scan. Only if that thread
/// could not be started does the scan run here.
fn signal_session_detached(pid: Pid, sigs: &[Signal]) {
    if let Err((pid, sigs)) = queue_signal(pid, sigs) {
        signal_session(pid, &sigs);
    }
}

/// Hand a request to the signalling thread; the receiver resolves once it
/// was carried out. The request comes back if there is no such thread.
fn queue_signal(
    pid: Pid,
    sigs: &[Signal],
) -> Result<tokio::sync::oneshot::Receiver<()>, (Pid, Vec<Signal>)> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let req = ((pid, sigs.to_vec()), done);
    match session_signaller() {
        Some(tx) => tx.send(req).map(|()| finished).map_err(|e| (e.0).0),
        None => Err(req.0),
    }
}

type SignalRequest = ((Pid, Vec<Signal>), tokio::sync::oneshot::Sender<()>);

/// The sending side of the thread behind [`signal_session_off_runtime`],
/// once started (`None` inside if it could not be).
static SIGNALLER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<SignalRequest>>> =
    std::sync::OnceLock::new();

/// Sessions the signalling thread has swept (tests check when).
#[cfg(test)]
static SWEPT: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());
/// Held by a test, keeps the signalling thread from starting its next batch.
#[cfg(test)]
static GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The thread behind [`signal_session_off_runtime`], started on first use.
/// A request without signals only marks a point in the queue (see
/// [`flush_signals`]).
fn session_signaller() -> Option<&'static std::sync::mpsc::Sender<SignalRequest>> {
    SIGNALLER
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<SignalRequest>();
            std::thread::Builder::new()
                .name("termgate-pty-signal".into())
                .spawn(move || {
                    while let Ok(first) = rx.recv() {
                        let batch: Vec<SignalRequest> =
                            std::iter::once(first).chain(rx.try_iter()).collect();
                        #[cfg(test)]
                        let _gate = GATE.lock().unwrap_or_else(|e| e.into_inner());
                        let reqs: Vec<(Pid, Vec<Signal>)> = batch
                            .iter()
                            .filter(|(r, _)| !r.1.is_empty())
                            .map(|(r, _)| r.clone())
                            .collect();
                        if !reqs.is_empty() {
                            session::signal_sessions(&reqs);
                            #[cfg(test)]
                            SWEPT
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .extend(reqs.iter().map(|(p, _)| p.as_raw()));
                        }
                        for (_, done) in batch {
                            let _ = done.send(());
                        }
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Wait, at most `limit`, until the signalling thread has carried out every
/// request queued so far. For the end of the process: a dropped terminal
/// queues its last sweep without waiting, and the process must not exit
/// before it ran.
pub fn flush_signals(limit: Duration) {
    let Some(Some(tx)) = SIGNALLER.get() else {
        return;
    };
    let (done, mut finished) = tokio::sync::oneshot::channel();
    if tx.send(((Pid::from_raw(0), Vec::new()), done)).is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match finished.try_recv() {
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => return,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Test timeout; override with `TERMGATE_TEST_TIMEOUT_SECS`.
    pub(crate) fn timeout() -> Duration {
        let secs = std::env::var("TERMGATE_TEST_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        Duration::from_secs(secs)
    }

    /// Poll `pred` until it holds or the timeout passes.
    pub(crate) async fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + timeout();
        while !pred() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Read until `marker` appears in everything read so far; returns it all.
    pub(crate) async fn read_until(
        r: &mut (impl AsyncRead + Unpin),
        acc: &mut Vec<u8>,
        marker: &[u8],
    ) {
        let deadline = tokio::time::Instant::now() + timeout();
        let mut buf = [0u8; 4096];
        while !contains(acc, marker) {
            let n = tokio::time::timeout_at(deadline, r.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {:?}; got {:?}",
                        String::from_utf8_lossy(marker),
                        String::from_utf8_lossy(acc)
                    )
                })
                .unwrap();
            assert!(
                n > 0,
                "EOF before {:?}; got {:?}",
                String::from_utf8_lossy(marker),
                String::from_utf8_lossy(acc)
            );
            acc.extend_from_slice(&buf[..n]);
        }
    }

    /// Read to EOF (within the timeout).
    async fn read_to_eof(r: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
        let mut out = Vec::new();
        tokio::time::timeout(timeout(), r.read_to_end(&mut out))
            .await
            .unwrap_or_else(|_| panic!("no EOF; got {:?}", String::from_utf8_lossy(&out)))
            .unwrap();
        out
    }

    pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn shells() -> Vec<&'static str> {
        let mut v = vec!["sh"];
        if crate::executor::shell::which("bash").is_some() {
            v.push("bash");
        }
        v
    }

    fn open(shell: &str, dir: &Path, env: &[(&str, &str)], size: TermSize) -> PtyProcess {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        spawn(PtyCommand::shell(shell, dir, &env, size)).unwrap()
    }

    /// Run `line` and return the output up to `marker`.
    async fn run(p: &mut PtyProcess, line: &str, marker: &str) -> String {
        p.writer
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut acc = Vec::new();
        read_until(&mut p.reader, &mut acc, marker.as_bytes()).await;
        String::from_utf8_lossy(&acc).into_owned()
    }

    fn stat_of(pid: i32) -> Option<ProcStat> {
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Gone or a zombie waiting for a parent other than us (an orphan
    /// reparented to a PID 1 that may not reap).
    fn dead(pid: i32) -> bool {
        stat_of(pid).is_none_or(|s| s.state == 'Z' || s.state == 'X')
    }

    fn children_named(sid: u32, name: &str) -> Vec<i32> {
        session_members(Pid::from_raw(sid as i32))
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.as_raw())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim_end() == name)
            })
            .collect()
    }

    #[test]
    fn shell_command_is_interactive_and_login_less() {
        let c = PtyCommand::shell("/usr/bin/bash", Path::new("/b"), &[], TermSize::default());
        assert_eq!(c.args, ["--noprofile", "--norc", "-i"]);
        assert!(c.env.iter().any(|(k, _)| k == "PS1"));
        let env = vec![("PS1".to_string(), "> ".to_string())];
        let c = PtyCommand::shell("sh", Path::new("/b"), &env, TermSize::default());
        assert_eq!(c.args, ["-i"]);
        assert_eq!(c.env, env);
    }

    #[tokio::test]
    async fn env_cwd_and_term() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        for shell in shells() {
            let mut p = open(shell, &dir, &[("CI_JOB_ID", "4242")], TermSize::default());
            let out = run(
                &mut p,
                "echo \"id=$CI_JOB_ID\"; echo END-$((6*7))",
                "END-42",
            )
            .await;
            assert!(out.contains("id=4242"), "{shell}: {out}");
            let out = run(&mut p, "pwd; echo END-$((6*8))", "END-48").await;
            assert!(out.contains(&dir.display().to_string()), "{shell}: {out}");
            let out = run(&mut p, "echo \"term=$TERM\"; echo END-$((6*9))", "END-54").await;
            assert!(out.contains("term=xterm-256color"), "{shell}: {out}");
            p.control.close().await;
        }
    }

    #[tokio::test]
    async fn small_outputs_after_pauses_each_wake_the_reader() {
        // Each small read clears the master's readiness (no EAGAIN read);
        // output written after that must still wake the reader.
        let dir = tempfile::tempdir().unwrap();
        let mut p = open("sh", dir.path(), &[], TermSize::default());
        let out = run(
            &mut p,
            "for i in 1 2 3 4 5; do sleep 0.05; printf \"t$i.\"; done; echo; echo END-$((6*7))",
            "END-42",
        )
        .await;
        assert!(out.contains("t1.t2.t3.t4.t5."), "{out}");
        p.control.close().await;
    }

    #[tokio::test]
    async fn size_default_and_resize() {
        let dir = tempfile::tempdir().unwrap();
        for shell in shells() {
            let mut p = open(shell, dir.path(), &[], TermSize::default());
            let out = run(&mut p, "stty size; echo END-$((6*7))", "END-42").await;
            assert!(out.contains("24 80"), "{shell}: {out}");
            p.control
                .resize(TermSize {
                    cols: 120,
                    rows: 40,
                })
                .await
                .unwrap();
            let out = run(&mut p, "stty size; echo END-$((6*8))", "END-48").await;
            assert!(out.contains("40 120"), "{shell}: {out}");
            p.control.close().await;
        }
    }

    #[tokio::test]
    async fn exit_gives_eof_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        for shell in shells() {
            let mut p = open(shell, dir.path(), &[], TermSize::default());
            p.writer.write_all(b"exit 3\n").await.unwrap();
            read_to_eof(&mut p.reader).await;
            let status = tokio::time::timeout(timeout(), p.control.wait())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(status.code(), Some(3), "{shell}");
            assert!(stat_of(p.pid() as i32).is_none(), "{shell}: not reaped");
        }
    }

    #[tokio::test]
    async fn ctrl_d_on_empty_line_ends_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        for shell in shells() {
            let mut p = open(
                shell,
                dir.path(),
                &[("PS1", "PROMPT> ")],
                TermSize::default(),
            );
            // Wait for the next prompt: the shell is reading its line (bash
            // has switched the terminal to readline's mode) before ^D.
            let out = run(&mut p, "echo END-$((6*7))", "END-42").await;
            let (_, after) = out.split_once("END-42").unwrap();
            if !after.contains("PROMPT> ") {
                let mut acc = after.as_bytes().to_vec();
                read_until(&mut p.reader, &mut acc, b"PROMPT> ").await;
            }
            p.writer.write_all(&[0x04]).await.unwrap();
            read_to_eof(&mut p.reader).await;
            tokio::time::timeout(timeout(), p.control.wait())
                .await
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn bytes_pass_through_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        for shell in shells() {
            let mut p = open(shell, dir.path(), &[], TermSize::default());
            // Output: invalid UTF-8 from the shell reaches the reader as is.
            p.writer
                .write_all(b"printf 'C\\377\\376\\200D\\n'; echo END-$((6*8))\n")
                .await
                .unwrap();
            let mut acc = Vec::new();
            read_until(&mut p.reader, &mut acc, b"END-48").await;
            assert!(contains(&acc, b"C\xff\xfe\x80D"), "{shell}: {acc:?}");
            // Input: raw bytes typed into the terminal reach the program.
            p.writer
                .write_all(b"head -c 3 | od -An -tx1; echo END-$((6*9))\n")
                .await
                .unwrap();
            p.writer.write_all(b"\xff\xfe\x80\n").await.unwrap();
            let mut acc = Vec::new();
            read_until(&mut p.reader, &mut acc, b"END-54").await;
            assert!(contains(&acc, b"ff fe 80"), "{shell}: {acc:?}");
            p.control.close().await;
        }
    }

    #[tokio::test]
    async fn close_kills_the_shell_and_its_jobs() {
        let dir = tempfile::tempdir().unwrap();
        for shell in shells() {
            let mut p = open(shell, dir.path(), &[], TermSize::default());
            let pid = p.pid();
            run(&mut p, "sleep 1000 & echo END-$((6*7))", "END-42").await;
            p.writer.write_all(b"sleep 1001\n").await.unwrap();
            wait_until("both sleeps run", || {
                children_named(pid, "sleep").len() == 2
            })
            .await;
            let sleeps = children_named(pid, "sleep");
            tokio::time::timeout(timeout(), p.control.close())
                .await
                .unwrap();
            // Reaped by us: gone, not a zombie.
            assert!(stat_of(pid as i32).is_none(), "{shell}: shell not reaped");
            for s in sleeps {
                wait_until("the sleeps are gone", || dead(s)).await;
            }
            read_to_eof(&mut p.reader).await;
            // Idempotent.
            p.control.close().await;
        }
    }

    #[tokio::test]
    async fn one_scan_signals_every_requested_session() {
        // What the signalling thread does with concurrent closes: one call
        // for several sessions. Each shell's background job is in its own
        // process group, so only the /proc scan finds it.
        let dir = tempfile::tempdir().unwrap();
        let mut shells = Vec::new();
        for _ in 0..3 {
            let mut p = open("sh", dir.path(), &[], TermSize::default());
            run(&mut p, "sleep 1000 & echo END-$((6*7))", "END-42").await;
            let pid = p.pid();
            wait_until("sleep runs", || children_named(pid, "sleep").len() == 1).await;
            shells.push(p);
        }
        let sleeps: Vec<i32> = shells
            .iter()
            .flat_map(|p| children_named(p.pid(), "sleep"))
            .collect();
        let reqs: Vec<(Pid, Vec<Signal>)> = shells
            .iter()
            .map(|p| (Pid::from_raw(p.pid() as i32), vec![Signal::SIGKILL]))
            .collect();
        tokio::task::spawn_blocking(move || session::signal_sessions(&reqs))
            .await
            .unwrap();
        for s in sleeps {
            wait_until("every session's sleep is gone", || dead(s)).await;
        }
        for p in &shells {
            tokio::time::timeout(timeout(), p.control.close())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn close_escalates_to_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let shell = shells().pop().unwrap();
        let mut p = open(shell, dir.path(), &[], TermSize::default());
        let pid = p.pid();
        run(&mut p, "trap '' HUP; echo END-$((6*7))", "END-42").await;
        p.writer
            .write_all(b"sh -c 'trap \"\" HUP; sleep 1002'\n")
            .await
            .unwrap();
        wait_until("sleep runs", || !children_named(pid, "sleep").is_empty()).await;
        let sleeps = children_named(pid, "sleep");
        p.control.close().await;
        assert!(stat_of(pid as i32).is_none(), "shell not reaped");
        for s in sleeps {
            wait_until("the sleep is gone", || dead(s)).await;
        }
    }

    /// `sh` on a PTY with a background `sleep` (its own process group, so
    /// only a session sweep finds it); returns the shell and the sleep's pid.
    async fn sh_with_background_sleep(dir: &Path) -> (PtyProcess, i32) {
        let mut p = open("sh", dir, &[], TermSize::default());
        let pid = p.pid();
        run(&mut p, "sleep 1003 & echo END-$((6*7))", "END-42").await;
        wait_until("sleep runs", || children_named(pid, "sleep").len() == 1).await;
        let sleep = children_named(pid, "sleep")[0];
        (p, sleep)
    }

    #[tokio::test]
    async fn flush_waits_for_the_sweeps_queued_by_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (p, sleep) = sh_with_background_sleep(dir.path()).await;
        let pid = p.pid();
        // The signalling thread is held back: Drop's sweep stays queued.
        let gate = GATE.lock().unwrap_or_else(|e| e.into_inner());
        drop(p.into_handle());
        // What the runner does last, after its runtime is gone.
        let flusher = std::thread::spawn(|| flush_signals(timeout()));
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !flusher.is_finished(),
            "flush returned while the sweep queued by Drop was still waiting"
        );
        drop(gate);
        flusher.join().unwrap();
        assert!(
            SWEPT.lock().unwrap().contains(&(pid as i32)),
            "the sweep queued by Drop had not run when flush returned"
        );
        wait_until("the sleep is gone", || dead(sleep)).await;
    }

    #[tokio::test]
    async fn drop_kills_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        let (p, sleep) = sh_with_background_sleep(dir.path()).await;
        let pid = p.pid();
        // The /proc scan must not run on the thread that drops the handle
        // (a runtime thread carrying other sessions).
        let scans_here = session::SCANS.with(|c| c.get());
        drop(p.into_handle());
        assert_eq!(
            session::SCANS.with(|c| c.get()),
            scans_here,
            "Drop scanned /proc on the dropping thread"
        );
        wait_until("the shell is reaped", || stat_of(pid as i32).is_none()).await;
        wait_until("the sleep is gone", || dead(sleep)).await;
    }

    #[tokio::test]
    async fn input_larger_than_the_terminal_buffer_waits_for_the_shell() {
        // The writer watches writability only while the input is full: a
        // write that hits EAGAIN must resume once the program reads again.
        let dir = tempfile::tempdir().unwrap();
        let mut p = open("sh", dir.path(), &[], TermSize::default());
        const N: usize = 1024 * 1024;
        p.writer
            .write_all(
                format!(
                    "stty raw -echo; echo READY-$((6*7)); sleep 1; head -c {N} | wc -c; echo END-$((6*8))\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut acc = Vec::new();
        read_until(&mut p.reader, &mut acc, b"READY-42").await;
        // The shell sleeps: the terminal's input fills after some KiB and
        // the writer has to wait for `head` to start reading.
        let input = vec![b'x'; N];
        let t0 = std::time::Instant::now();
        tokio::time::timeout(timeout(), p.writer.write_all(&input))
            .await
            .expect("the blocked write never resumed")
            .unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(500),
            "{N} bytes went in before anything read them: no back-pressure was exercised"
        );
        let mut acc = Vec::new();
        read_until(&mut p.reader, &mut acc, b"END-48").await;
        assert!(
            String::from_utf8_lossy(&acc).contains(&N.to_string()),
            "{}",
            String::from_utf8_lossy(&acc)
        );
        p.control.close().await;
    }

    #[tokio::test]
    async fn a_reader_that_stops_reading_blocks_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = open("sh", dir.path(), &[], TermSize::default());
        let pid = p.pid();
        p.writer.write_all(b"yes\n").await.unwrap();
        // Read a little, then stop.
        let mut got = 0usize;
        let mut buf = [0u8; 4096];
        while got < 64 * 1024 {
            let n = tokio::time::timeout(timeout(), p.reader.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0);
            got += n;
        }
        wait_until("yes runs", || !children_named(pid, "yes").is_empty()).await;
        let yes = children_named(pid, "yes")[0];
        let written = || -> Option<u64> {
            let io = std::fs::read_to_string(format!("/proc/{yes}/io")).ok()?;
            io.lines()
                .find_map(|l| l.strip_prefix("wchar: "))
                .and_then(|v| v.trim().parse().ok())
        };
        // Blocked in write: sleeping, and its output position stops moving
        // across a few consecutive samples.
        let mut last = None;
        let mut stable = 0;
        wait_until("yes blocks", || {
            let state = stat_of(yes).map(|s| s.state);
            let w = written();
            if state == Some('S') && w == last {
                stable += 1;
            } else {
                stable = 0;
            }
            last = w;
            stable >= 5
        })
        .await;
        // What it wrote is what we read plus the kernel's PTY buffers
        // (a few pages), not an ever growing amount.
        if let Some(w) = written() {
            let bound = (got + 1024 * 1024) as u64;
            assert!(w < bound, "yes wrote {w} bytes, we read {got}");
        }
        // Reading again lets it continue.
        let n = p.reader.read(&mut buf).await.unwrap();
        assert!(n > 0);
        p.control.close().await;
        assert!(stat_of(pid as i32).is_none());
    }
}
