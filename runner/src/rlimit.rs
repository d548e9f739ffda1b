//! The open-files limit, handled as Go programs (gitlab-runner among them)
//! handle it since Go 1.19: at start the soft `RLIMIT_NOFILE` is raised to
//! the hard limit, and every process the runner starts gets the original
//! soft limit back.
//!
//! Each connected terminal costs the runner a socket and a PTY master (plus
//! a pipe per running step), so with systemd's default soft limit of 1024 a
//! runner would start failing with `Too many open files` at a few hundred
//! sessions, while the hard limit (524288 there) allows far more. Job
//! processes keep the usual 1024: programs that use `select(2)` break on
//! descriptors above 1023.

use std::sync::OnceLock;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The limits the process started with, if [`raise_nofile`] raised them.
static ORIGINAL: OnceLock<Option<libc::rlimit>> = OnceLock::new();

/// The soft limit before and after [`raise_nofile`] (equal when it
/// already was at the hard limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub from: u64,
    pub to: u64,
}

/// Raise the soft open-files limit to the hard limit (once per process).
pub fn raise_nofile() -> std::io::Result<Raised> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let original = (soft < hard).then_some(libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    });
    let _ = ORIGINAL.set(original);
    Ok(Raised {
        from: soft,
        to: soft.max(hard),
    })
}

/// Make `cmd`'s process start with the soft open-files limit this process
/// started with, if [`raise_nofile`] raised it.
pub fn restore_in_child(cmd: &mut tokio::process::Command) {
    if let Some(Some(original)) = ORIGINAL.get() {
        set_in_child(cmd, *original);
    }
}

/// `cmd`'s process starts with `lim` as its `RLIMIT_NOFILE`.
#[allow(unsafe_code)]
fn set_in_child(cmd: &mut tokio::process::Command, lim: libc::rlimit) {
    // SAFETY: the hook runs in the forked child before exec and only calls
    // setrlimit(2), which is async-signal-safe; it allocates nothing and
    // touches no locks (`lim` is a copy).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_gets_the_given_soft_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "ulimit -Sn; ulimit -Hn"]);
        set_in_child(
            &mut cmd,
            libc::rlimit {
                rlim_cur: 200,
                rlim_max: hard,
            },
        );
        let out = cmd.output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("200"), "{text}");
        let hard_text = if hard == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            hard.to_string()
        };
        assert_eq!(lines.next(), Some(hard_text.as_str()), "{text}");
    }
}
