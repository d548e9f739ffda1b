//! What a shell job's environment starts from. The runner's own
//! environment stays out (its tokens, `CONFIG_FILE`, whatever systemd or a
//! wrapper set), except the few variables in [`PASSED`] and
//! [`PASSED_PREFIXES`]; the job user's identity is set as `su` sets it. The
//! job's variables (runner `environment`, predefined `CI_*`, the job's own)
//! go on top.
//!
//! Upstream's shell executor passes the runner's whole environment
//! (`os.Environ()`, `executors/shell/shell.go`), and with `user` runs `su -s
//! /bin/bash USER -c 'bash -l'`, which keeps it but for `HOME`, `SHELL`,
//! `USER` and `LOGNAME`. termgate passes only this list (docs/design-notes.md,
//! "Shell jobs: user and environment").

use std::ffi::OsString;

use crate::job_user::JobUser;

/// Variables of the runner's environment a job gets, when set: the search
/// path, the locale, the time zone and the proxies (operators set these for
/// the runner and expect its jobs to use them).
pub const PASSED: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Prefixes of variables passed the same way: the locale categories.
pub const PASSED_PREFIXES: &[&str] = &["LC_"];

/// `PATH` when the runner has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn passed(key: &str) -> bool {
    PASSED.contains(&key) || PASSED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The job's base environment: the [`PASSED`] part of `runner_env` (the
/// runner's environment; variables that are not UTF-8 are left out), then
/// `HOME`, `USER`, `LOGNAME` and `SHELL` of `user` (the job user, else the
/// runner's own passwd entry), `SHELL` being `shell` (the program the job
/// runs, as `su -s` sets it). Without a passwd entry the runner's own
/// `HOME`, `USER` and `LOGNAME` are kept.
pub fn base_environment(
    runner_env: impl IntoIterator<Item = (OsString, OsString)>,
    user: Option<&JobUser>,
    shell: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut identity_from_runner = Vec::new();
    for (k, v) in runner_env {
        let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) else {
            continue;
        };
        if passed(&k) {
            env.push((k, v));
        } else if matches!(k.as_str(), "HOME" | "USER" | "LOGNAME") {
            identity_from_runner.push((k, v));
        }
    }
    env.sort();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    match user {
        Some(u) => {
            env.push(("HOME".into(), u.home.to_string_lossy().into_owned()));
            env.push(("USER".into(), u.name.clone()));
            env.push(("LOGNAME".into(), u.name.clone()));
        }
        None => {
            identity_from_runner.sort();
            env.extend(identity_from_runner);
        }
    }
    env.push(("SHELL".into(), shell.to_string()));
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn only_the_passed_list_and_the_identity_go_through() {
        let user = JobUser {
            name: "job".into(),
            uid: nix::unistd::Uid::from_raw(1234),
            gid: nix::unistd::Gid::from_raw(1234),
            groups: vec![],
            home: PathBuf::from("/home/job"),
            shell: PathBuf::from("/bin/sh"),
        };
        let env = base_environment(
            os(&[
                ("PATH", "/usr/bin:/bin"),
                ("TERMGATE_SECRET_CANARY", "s3cret"),
                ("CONFIG_FILE", "/etc/gitlab-runner/config.toml"),
                ("HOME", "/root"),
                ("USER", "root"),
                ("LC_ALL", "C.UTF-8"),
                ("https_proxy", "http://proxy:3128"),
                ("TERM", "xterm"),
                ("SSH_AUTH_SOCK", "/tmp/agent"),
            ]),
            Some(&user),
            "/usr/bin/bash",
        );
        let want: Vec<(String, String)> = [
            ("LC_ALL", "C.UTF-8"),
            ("PATH", "/usr/bin:/bin"),
            ("https_proxy", "http://proxy:3128"),
            ("HOME", "/home/job"),
            ("USER", "job"),
            ("LOGNAME", "job"),
            ("SHELL", "/usr/bin/bash"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, want);
    }

    #[test]
    fn without_a_user_or_path_the_runners_identity_and_a_default_path() {
        let env = base_environment(os(&[("HOME", "/srv/r"), ("X", "y")]), None, "sh");
        assert_eq!(
            env,
            vec![
                ("PATH".to_string(), DEFAULT_PATH.to_string()),
                ("HOME".to_string(), "/srv/r".to_string()),
                ("SHELL".to_string(), "sh".to_string()),
            ]
        );
    }
}
