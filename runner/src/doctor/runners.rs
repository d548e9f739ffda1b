//! Per `[[runners]]` entry: the Docker executor's hardening defaults, and
//! which user the shell executor's jobs run as.

use super::{Check, Findings};
use crate::config;
use crate::executor::docker::hardening;

fn who(i: usize, r: &config::RunnerConfig, executor: &str) -> String {
    format!("[[runners]] #{} {:?} ({executor})", i + 1, r.name)
}

/// A row per hardening check of each Docker runner: a setting that
/// weakens it is a warning (a deliberate choice some jobs need, e.g.
/// `privileged` for Docker-in-Docker, but the job can then reach the host).
pub fn docker_hardening(cfg: &config::Config, f: &mut Findings) {
    let mut any = false;
    for (i, r) in cfg.runners.iter().enumerate() {
        if r.executor != "docker" {
            continue;
        }
        any = true;
        for c in hardening::checks(&r.docker.clone().unwrap_or_default()) {
            let detail = format!("{}: {}", c.name, c.detail);
            let check = if c.pass {
                Check::pass("docker_hardening", detail)
            } else {
                Check::warn(
                    "docker_hardening",
                    detail,
                    format!(
                        "[runners.docker] weakens hardening ({}): a job can reach further into \
                         the host; remove the setting unless the jobs need it",
                        c.name
                    ),
                )
            };
            f.push(check.about(who(i, r, "docker")));
        }
    }
    if !any {
        f.skip("docker_hardening", "no Docker runners configured");
    }
}

/// Which user each shell runner's jobs run as ([`crate::job_user::effective`]):
/// root (no `user` while the runner runs as root, or `user = "root"`) is a
/// warning, a user that does not resolve a failure (the runner refuses to
/// start).
pub fn job_users(cfg: &config::Config, runner_is_root: bool, f: &mut Findings) {
    const ROOT: &str = "a job can read config.toml and its runner tokens, other jobs' build \
                        directories and environments, and signal the runner";
    for (i, r) in cfg.runners.iter().enumerate() {
        if !matches!(r.executor.as_str(), "" | "shell") {
            continue;
        }
        let check = match crate::job_user::effective(cfg, r) {
            None if runner_is_root => Check::warn(
                "job_user",
                format!("jobs run as root (no user): {ROOT}"),
                "set user (or [[runners]] user) to an unprivileged user; if `run` is started \
                 with --user, give doctor the same --user",
            ),
            None => Check::pass("job_user", "jobs run as the runner's own user"),
            Some((name, origin)) => match crate::job_user::lookup(name) {
                Err(e) => Check::fail(
                    "job_user",
                    format!("{origin} = {name:?}: {e} (the runner will refuse to start)"),
                    format!("create the user {name} or name an existing one"),
                ),
                Ok(u) if u.uid.is_root() => Check::warn(
                    "job_user",
                    format!("{origin} = {name:?} runs jobs as root: {ROOT}"),
                    "name an unprivileged user",
                ),
                Ok(u) => Check::pass(
                    "job_user",
                    format!("jobs run as user {name} (uid {})", u.uid),
                ),
            },
        };
        f.push(check.about(who(i, r, "shell")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DockerConfig, RunnerConfig};
    use crate::doctor::Status;

    #[test]
    fn table_marks_weakened_settings() {
        let mut cfg = config::Config::default();
        let mut f = Findings::default();
        docker_hardening(&cfg, &mut f);
        assert!(f.checks.is_empty());
        assert_eq!(f.skipped[0].name, "docker_hardening");

        cfg.runners.push(RunnerConfig {
            name: "weak".into(),
            executor: "docker".into(),
            docker: Some(DockerConfig {
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut f = Findings::default();
        docker_hardening(&cfg, &mut f);
        assert!(f.skipped.is_empty());
        let privileged = f
            .checks
            .iter()
            .find(|c| c.detail.starts_with("not privileged:"))
            .unwrap();
        assert_eq!(privileged.status, Status::Warn);
        assert_eq!(
            privileged.subject.as_deref(),
            Some("[[runners]] #1 \"weak\" (docker)")
        );
        assert!(privileged
            .hint
            .as_deref()
            .unwrap()
            .starts_with("[runners.docker] weakens hardening (not privileged)"));
        let pids = f
            .checks
            .iter()
            .find(|c| c.detail.starts_with("pids limit:"))
            .unwrap();
        assert_eq!(pids.status, Status::Pass);
        assert_eq!(
            f.checks.iter().filter(|c| c.status != Status::Pass).count(),
            1,
            "{:?}",
            f.checks
        );
    }

    #[test]
    fn shell_jobs_as_root_are_warned_about() {
        let mut cfg = config::Config::default();
        for (name, executor, user) in [
            ("as-root", "shell", None),
            ("as-nobody", "shell", Some("nobody")),
            ("explicit-root", "shell", Some("root")),
            ("containers", "docker", None),
            ("unknown", "shell", Some("no-such-user-termgate")),
        ] {
            cfg.runners.push(RunnerConfig {
                name: name.into(),
                executor: executor.into(),
                user: user.map(str::to_string),
                ..Default::default()
            });
        }
        let mut f = Findings::default();
        job_users(&cfg, true, &mut f);
        let rows: Vec<(Status, String)> = f
            .checks
            .iter()
            .map(|c| {
                (
                    c.status,
                    format!("{}: {}", c.subject.as_deref().unwrap(), c.detail),
                )
            })
            .collect();
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[0].0, Status::Warn);
        assert!(
            rows[0].1.starts_with(
                "[[runners]] #1 \"as-root\" (shell): jobs run as root (no user): a job can read config.toml"
            ),
            "{rows:?}"
        );
        assert_eq!(rows[1].0, Status::Pass);
        assert!(
            rows[1]
                .1
                .starts_with("[[runners]] #2 \"as-nobody\" (shell): jobs run as user nobody (uid "),
            "{rows:?}"
        );
        assert_eq!(rows[2].0, Status::Warn);
        assert!(
            rows[2].1.starts_with(
                "[[runners]] #3 \"explicit-root\" (shell): [[runners]] user = \"root\" runs jobs as root"
            ),
            "{rows:?}"
        );
        assert_eq!(rows[3].0, Status::Fail);
        assert!(
            rows[3]
                .1
                .contains("no such user (the runner will refuse to start)"),
            "{rows:?}"
        );

        // A global user covers every shell runner; a runner not run as root
        // runs jobs as itself.
        let mut one = config::Config {
            user: Some("nobody".into()),
            ..Default::default()
        };
        one.runners.push(cfg.runners[0].clone());
        let mut f = Findings::default();
        job_users(&one, true, &mut f);
        assert_eq!(f.checks[0].status, Status::Pass);
        assert!(f.checks[0]
            .detail
            .starts_with("jobs run as user nobody (uid "));
        one.user = None;
        let mut f = Findings::default();
        job_users(&one, false, &mut f);
        assert_eq!(f.checks[0].status, Status::Pass);
        assert_eq!(f.checks[0].detail, "jobs run as the runner's own user");
    }
}
