//! The user shell-executor jobs run as: gitlab-runner's global `user` (and
//! `run --user`), and termgate's per-runner `[[runners]] user` override.
//!
//! A name is resolved once per job ([`lookup`]): uid, primary gid, the
//! supplementary groups of `getgrouplist(3)`, home and login shell. Steps and
//! terminal shells drop to it in the forked child ([`JobUser::drop_privileges_in_child`]);
//! the build directories are chowned to it. Switching needs root: [`check`]
//! is what the daemon runs at start and on reload.

use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

use crate::config::{Config, RunnerConfig};

/// A resolved job user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUser {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups, the primary group among them.
    pub groups: Vec<Gid>,
    pub home: PathBuf,
    /// The login shell in the passwd entry.
    pub shell: PathBuf,
}

/// A user name that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("user {0:?}: no such user")]
    NoSuchUser(String),
    #[error("user {name:?}: {error}")]
    Failed { name: String, error: String },
}

/// Look a user up by name in the system's user database.
pub fn lookup(name: &str) -> Result<JobUser, LookupError> {
    let failed = |error: String| LookupError::Failed {
        name: name.to_string(),
        error,
    };
    let user = User::from_name(name)
        .map_err(|e| failed(e.desc().to_string()))?
        .ok_or_else(|| LookupError::NoSuchUser(name.to_string()))?;
    let cname = CString::new(name).map_err(|e| failed(e.to_string()))?;
    let mut groups = nix::unistd::getgrouplist(&cname, user.gid)
        .map_err(|e| failed(format!("listing its groups: {}", e.desc())))?;
    if !groups.contains(&user.gid) {
        groups.push(user.gid);
    }
    Ok(JobUser {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        groups,
        home: user.dir,
        shell: user.shell,
    })
}

/// The passwd entry of the runner's own effective user, if it has one.
pub fn current() -> Option<JobUser> {
    let user = User::from_uid(nix::unistd::geteuid()).ok().flatten()?;
    Some(JobUser {
        groups: vec![user.gid],
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
        shell: user.shell,
    })
}

impl JobUser {
    /// Is this someone else than the runner's effective user?
    pub fn is_switch(&self) -> bool {
        self.uid != nix::unistd::geteuid()
    }

    /// Make `cmd`'s process drop to this user before `exec`: supplementary
    /// groups, then gid, then uid (in that order: each needs the privilege
    /// the next one gives up). Nothing to do when it is the runner's own user.
    #[allow(unsafe_code)]
    pub fn drop_privileges_in_child(&self, cmd: &mut tokio::process::Command) {
        if !self.is_switch() {
            return;
        }
        let groups: Vec<libc::gid_t> = self.groups.iter().map(|g| g.as_raw()).collect();
        let gid = self.gid.as_raw();
        let uid = self.uid.as_raw();
        // SAFETY: the hook runs in the forked child before exec and only
        // calls setgroups(2), setgid(2) and setuid(2), which are
        // async-signal-safe; `groups` was allocated before the fork and is
        // only read.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len() as _, groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Where a runner's job user comes from, for messages and precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[[runners]] user` (termgate's extension).
    Runner,
    /// `run --user`.
    Cli,
    /// The global `user` key.
    Global,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Runner => "[[runners]] user",
            Origin::Cli => "run --user",
            Origin::Global => "user",
        })
    }
}

/// The user a runner's shell jobs run as, and where that came from:
/// `[[runners]] user`, else `run --user` (already folded into
/// [`Config::user`] by the daemon as [`Origin::Cli`]), else the global
/// `user`; `None` for the runner's own user.
pub fn effective<'a>(cfg: &'a Config, runner: &'a RunnerConfig) -> Option<(&'a str, Origin)> {
    if let Some(u) = runner.user.as_deref() {
        return Some((u, Origin::Runner));
    }
    cfg.user.as_deref().map(|u| {
        (
            u,
            if cfg.user_from_cli {
                Origin::Cli
            } else {
                Origin::Global
            },
        )
    })
}

/// Every shell runner's job user resolves, and the runner can switch to it
/// (it runs as root, or the user is its own). One message per problem,
/// naming the runner and where the user was set. Docker runners are not
/// checked: their jobs run as the image's user.
pub fn check(cfg: &Config, runner_is_root: bool) -> Result<(), Vec<String>> {
    let euid = nix::unistd::geteuid();
    let mut problems = Vec::new();
    for (i, r) in cfg.runners.iter().enumerate() {
        if !matches!(r.executor.as_str(), "" | "shell") {
            continue;
        }
        let Some((name, origin)) = effective(cfg, r) else {
            continue;
        };
        let who = format!("[[runners]] #{} ({:?}): {origin} = {name:?}", i + 1, r.name);
        match lookup(name) {
            Err(e) => problems.push(format!("{who}: {e}")),
            Ok(u) if u.uid != euid && !runner_is_root => problems.push(format!(
                "{who}: running jobs as another user needs the runner to run as root \
                 (it runs as uid {euid}); remove the key or start the runner as root"
            )),
            Ok(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_with_its_groups() {
        let root = lookup("root").unwrap();
        assert_eq!(root.uid, Uid::from_raw(0));
        assert_eq!(root.gid, Gid::from_raw(0));
        assert!(root.groups.contains(&Gid::from_raw(0)));
        assert_eq!(root.home, PathBuf::from("/root"));
    }

    #[test]
    fn an_unknown_user_is_a_clear_error() {
        assert_eq!(
            lookup("no-such-user-termgate").unwrap_err().to_string(),
            "user \"no-such-user-termgate\": no such user"
        );
        assert!(matches!(
            lookup("nul\0byte"),
            Err(LookupError::Failed { .. } | LookupError::NoSuchUser(_))
        ));
    }

    fn cfg(global: Option<&str>, per_runner: &[(Option<&str>, &str)]) -> Config {
        Config {
            user: global.map(str::to_string),
            runners: per_runner
                .iter()
                .enumerate()
                .map(|(i, (u, executor))| RunnerConfig {
                    name: format!("r{i}"),
                    user: u.map(str::to_string),
                    executor: executor.to_string(),
                    ..RunnerConfig::default()
                })
                .collect(),
            ..Config::default()
        }
    }

    #[test]
    fn the_runner_key_wins_over_the_global_one() {
        let c = cfg(Some("root"), &[(None, "shell"), (Some("nobody"), "shell")]);
        assert_eq!(effective(&c, &c.runners[0]), Some(("root", Origin::Global)));
        assert_eq!(
            effective(&c, &c.runners[1]),
            Some(("nobody", Origin::Runner))
        );
        let mut cli = c.clone();
        cli.user_from_cli = true;
        assert_eq!(
            effective(&cli, &cli.runners[0]),
            Some(("root", Origin::Cli))
        );
        assert_eq!(effective(&cfg(None, &[]), &RunnerConfig::default()), None);
    }

    #[test]
    fn check_names_the_runner_and_the_key() {
        let c = cfg(
            Some("no-such-user-termgate"),
            &[(None, "shell"), (Some("root"), "shell"), (None, "docker")],
        );
        assert_eq!(
            check(&c, true).unwrap_err(),
            vec![
                "[[runners]] #1 (\"r0\"): user = \"no-such-user-termgate\": user \
                 \"no-such-user-termgate\": no such user"
                    .to_string()
            ]
        );
        assert!(check(&cfg(Some("root"), &[(None, "shell")]), true).is_ok());
    }

    #[test]
    fn another_user_needs_root() {
        // `nobody` is never the test's own user (tests run as root or as a
        // developer).
        let c = cfg(None, &[(Some("nobody"), "shell")]);
        let e = check(&c, false).unwrap_err();
        assert!(
            e[0].contains("[[runners]] user = \"nobody\": running jobs as another user needs the runner to run as root"),
            "{e:?}"
        );
        assert!(check(&c, true).is_ok());
    }
}
