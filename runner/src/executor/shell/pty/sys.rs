//! Spawning on a PTY and the terminal ioctls: open the master, start the
//! program as a session leader with the slave as its controlling terminal
//! and stdin/stdout/stderr, set the window size.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;

use nix::fcntl::OFlag;
use nix::pty::PtyMaster;
use nix::unistd::Pid;
use tokio::process::Child;

use super::{PtyCommand, DEFAULT_TERM};
use crate::executor::terminal::TermSize;

/// Open a PTY and start `cmd` on it; the master is non-blocking and
/// close-on-exec, and the child is killed when dropped.
pub(super) fn start(cmd: &PtyCommand) -> io::Result<(PtyMaster, Child, Pid)> {
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
    if let Some(u) = cmd.user.as_ref().filter(|u| u.is_switch()) {
        // Its terminal is the job user's, as login(1) hands it over.
        std::os::unix::fs::fchown(&slave, Some(u.uid.as_raw()), None)?;
    }

    let mut command = tokio::process::Command::new(&cmd.program);
    crate::rlimit::restore_in_child(&mut command);
    if cmd.clear_env {
        command.env_clear();
    }
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
    // After setsid and TIOCSCTTY, which the hooks run in order.
    if let Some(u) = &cmd.user {
        u.drop_privileges_in_child(&mut command);
    }
    let child = command.spawn()?;
    // `command` still holds the slave's copies; drop them now or reading
    // the master never returns EOF.
    drop(command);
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child exited before it had a pid"))?;
    Ok((master, child, Pid::from_raw(pid as i32)))
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

/// TIOCSWINSZ on the master; the kernel sends SIGWINCH to the terminal's
/// foreground process group.
#[allow(unsafe_code)]
pub(super) fn set_winsize(master: &PtyMaster, size: TermSize) -> io::Result<()> {
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
