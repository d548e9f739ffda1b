//! `termgate-runner doctor`: load the config and check what would stop
//! GitLab's terminals from working or weaken the runner, as a list of
//! [`Check`]s (a name, `pass`/`warn`/`fail`, what was found, a hint),
//! printed as a table or, with `--json`, as a [`Report`].
//!
//! `fail` is for what cannot work as configured (GitLab's Workhorse cannot
//! reach or verify the session server, the runner would refuse to start);
//! `warn` for what works but is risky or may be wrong (weakened Docker
//! hardening, shell jobs as root, the operator API on the public port,
//! nothing listening because the runner is stopped). The exit status is 1
//! when a check fails, else 0.
//!
//! The checks: the config loads ([`config`](crate::config)); per Docker
//! runner the container hardening defaults ([`runners`]); per shell runner
//! which user its jobs run as; for the session server the advertise
//! address against where the coordinator is and the listen/advertise ports
//! ([`address`]), the certificate, its SAN and expiry ([`certificate`]), a
//! TLS handshake with the listen address ([`probe`]); the operator API's
//! listener and file ([`operators`]); `concurrent` against the open-files
//! limit ([`limits`]).

mod address;
mod certificate;
mod limits;
mod operators;
mod probe;
mod runners;

pub use certificate::CertInfo;
pub use limits::{FDS_MARGIN, FDS_PER_TERMINAL_JOB};
pub use operators::OperatorsFileState;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::config;

/// The version of [`Report`]'s JSON shape (bumped on incompatible changes).
pub const SCHEMA_VERSION: u32 = 1;

/// How long the TLS probe waits for the connection and the handshake.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// As the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier (`advertise_address`, `certificate_expiry`, …).
    pub name: &'static str,
    /// What it is about when a config has several (a `[[runners]]` entry).
    pub subject: Option<String>,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about a `warn` or `fail`.
    pub hint: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            subject: None,
            status: Status::Pass,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            hint: Some(hint.into()),
            ..Check::pass(name, detail)
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            hint: Some(hint.into()),
            ..Check::pass(name, detail)
        }
    }

    pub fn about(mut self, subject: impl Into<String>) -> Check {
        self.subject = Some(subject.into());
        self
    }
}

/// A check that did not apply, and why (never counted as passed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub name: &'static str,
    pub reason: String,
}

/// How many checks ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
}

/// What `doctor --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// The config file examined.
    pub config: String,
    /// No check failed (warnings allowed): the exit status is 0.
    pub ok: bool,
    pub counts: Counts,
    pub checks: Vec<Check>,
    pub skipped: Vec<Skipped>,
}

impl Report {
    fn new(config: &Path, checks: Vec<Check>, skipped: Vec<Skipped>) -> Report {
        let mut counts = Counts::default();
        for c in &checks {
            match c.status {
                Status::Pass => counts.pass += 1,
                Status::Warn => counts.warn += 1,
                Status::Fail => counts.fail += 1,
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            config: config.display().to_string(),
            ok: counts.fail == 0,
            counts,
            checks,
            skipped,
        }
    }

    /// The table: a row per check, its hint under it, what was skipped,
    /// and the counts.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "termgate-runner doctor: {}", self.config);
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .chain(["CHECK".len()])
            .max()
            .unwrap_or(5);
        let _ = writeln!(out, "{:<width$}  STATUS  DETAIL", "CHECK");
        for c in &self.checks {
            let detail = match &c.subject {
                Some(s) => format!("{s}: {}", c.detail),
                None => c.detail.clone(),
            };
            let _ = writeln!(out, "{:<width$}  {:<6}  {detail}", c.name, c.status.label());
            if let Some(h) = &c.hint {
                let _ = writeln!(out, "{:<width$}          hint: {h}", "");
            }
        }
        for s in &self.skipped {
            let _ = writeln!(out, "skipped: {} ({})", s.name, s.reason);
        }
        let _ = writeln!(
            out,
            "doctor: {} pass, {} warn, {} fail{}",
            self.counts.pass,
            self.counts.warn,
            self.counts.fail,
            if self.ok { "" } else { " (exit status 1)" }
        );
        out
    }
}

/// Facts about the machine the checks judge against (tests set their own).
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: chrono::DateTime<chrono::Utc>,
    /// Whether the runner would run as root (judged by doctor's own uid).
    pub runner_is_root: bool,
    /// `RLIMIT_NOFILE` (soft, hard) of this process, as the runner would
    /// start with it.
    pub nofile: Option<(u64, u64)>,
    pub probe_timeout: Duration,
}

impl Facts {
    /// This machine, now.
    pub fn here() -> Facts {
        Facts {
            now: chrono::Utc::now(),
            runner_is_root: nix::unistd::geteuid().is_root(),
            nofile: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok(),
            probe_timeout: PROBE_TIMEOUT,
        }
    }
}

/// Collects checks and skips in order.
#[derive(Debug, Default)]
pub struct Findings {
    pub checks: Vec<Check>,
    pub skipped: Vec<Skipped>,
}

impl Findings {
    pub fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    pub fn skip(&mut self, name: &'static str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            name,
            reason: reason.into(),
        });
    }
}

/// Every check for the config at `path`, with `cli_user` applied as
/// `run --user` applies it.
pub async fn examine(path: &Path, cli_user: Option<&str>, facts: &Facts) -> Report {
    let mut f = Findings::default();
    let loaded = match config::load(path) {
        Ok(mut l) => {
            l.config.apply_cli_user(cli_user);
            l
        }
        Err(e) => {
            f.push(Check::fail(
                "config",
                e.to_string(),
                "fix config.toml: the runner refuses to start with it",
            ));
            return Report::new(path, f.checks, f.skipped);
        }
    };
    let cfg = &loaded.config;
    f.push(Check::pass(
        "config",
        format!(
            "loads: {} [[runners]], concurrent = {}",
            cfg.runners.len(),
            cfg.concurrent
        ),
    ));
    for w in &loaded.warnings {
        f.push(Check::warn(
            "config",
            w.clone(),
            "edit config.toml as the warning says",
        ));
    }
    runners::docker_hardening(cfg, &mut f);
    runners::job_users(cfg, facts.runner_is_root, &mut f);
    match cfg.enabled_session_server() {
        Some(ss) => {
            f.push(address::advertise(ss, &cfg.runners));
            f.push(address::ports(ss));
            let cert = certificate::checks(ss, path, facts.now, &mut f);
            probe::reachable(ss, cert.as_ref(), facts.probe_timeout, &mut f).await;
        }
        None => f.skip(
            "session_server",
            "no [session_server] listen_address: interactive web terminals are off",
        ),
    }
    let ss = cfg.session_server.as_ref();
    let file = ss
        .and_then(|s| s.operators_file.as_deref())
        .map(OperatorsFileState::inspect);
    operators::checks(ss, file.as_ref(), &mut f);
    f.push(limits::open_files(cfg.concurrent, facts.nofile));
    Report::new(path, f.checks, f.skipped)
}

/// `termgate-runner doctor [--json]`: prints the report; `Ok(false)` when
/// a check failed (exit status 1).
pub async fn run(args: DoctorArgs) -> Result<bool> {
    let path = args.config.path();
    let report = examine(&path, args.user.as_deref(), &Facts::here()).await;
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report).context("encoding the report")?;
        s.push('\n');
        s
    } else {
        report.table()
    };
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the report")?;
    Ok(report.ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            now: chrono::Utc::now(),
            runner_is_root: false,
            nofile: Some((1024, 524_288)),
            probe_timeout: Duration::from_secs(2),
        }
    }

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let p = dir.join("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_table_shows_rows_hints_skips_and_counts() {
        let report = Report::new(
            Path::new("/etc/c.toml"),
            vec![
                Check::pass("config", "loads"),
                Check::warn(
                    "advertise_address",
                    "10.0.0.5:8093 is private",
                    "use a public one",
                )
                .about("x"),
                Check::fail("certificate_expiry", "expired", "renew it"),
            ],
            vec![Skipped {
                name: "docker_hardening",
                reason: "no Docker runners".into(),
            }],
        );
        assert!(!report.ok);
        assert_eq!(
            report.table(),
            "termgate-runner doctor: /etc/c.toml\n\
             CHECK               STATUS  DETAIL\n\
             config              PASS    loads\n\
             advertise_address   WARN    x: 10.0.0.5:8093 is private\n\
             \x20                           hint: use a public one\n\
             certificate_expiry  FAIL    expired\n\
             \x20                           hint: renew it\n\
             skipped: docker_hardening (no Docker runners)\n\
             doctor: 1 pass, 1 warn, 1 fail (exit status 1)\n"
        );
    }

    fn keys(v: &serde_json::Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// The JSON shape: every key present on every check (null when
    /// absent), statuses in lower case, counts that add up.
    #[tokio::test]
    async fn json_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "concurrent = 4\n[session_server]\n  listen_address = \"127.0.0.1:1\"\n\
             [[runners]]\n  name = \"a\"\n  url = \"https://gitlab.example.com\"\n  token = \"glrt-x\"\n  executor = \"shell\"\n",
        );
        let report = examine(&path, None, &facts()).await;
        let v = serde_json::to_value(&report).unwrap();
        let top = keys(&v);
        assert_eq!(
            top,
            [
                "checks",
                "config",
                "counts",
                "ok",
                "schema_version",
                "skipped"
            ]
        );
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["config"], path.display().to_string());
        let checks = v["checks"].as_array().unwrap();
        assert!(checks.len() >= 7, "{v:#}");
        let mut n = [0u64; 3];
        for c in checks {
            assert_eq!(
                keys(c),
                ["detail", "hint", "name", "status", "subject"],
                "{c}"
            );
            assert!(c["name"].as_str().is_some_and(|s| !s.is_empty()), "{c}");
            assert!(c["detail"].is_string(), "{c}");
            assert!(c["subject"].is_string() || c["subject"].is_null(), "{c}");
            let status = c["status"].as_str().unwrap();
            let i = ["pass", "warn", "fail"]
                .iter()
                .position(|s| *s == status)
                .unwrap_or_else(|| panic!("status {status}"));
            n[i] += 1;
            // A problem always says what to do.
            assert_eq!(c["hint"].is_string(), status != "pass", "{c}");
        }
        assert_eq!(
            [
                v["counts"]["pass"].as_u64().unwrap(),
                v["counts"]["warn"].as_u64().unwrap(),
                v["counts"]["fail"].as_u64().unwrap()
            ],
            n
        );
        assert_eq!(v["ok"], n[2] == 0);
        for s in v["skipped"].as_array().unwrap() {
            assert_eq!(keys(s), ["name", "reason"]);
        }
        // The loopback advertise address with a remote coordinator fails.
        let adv = checks
            .iter()
            .find(|c| c["name"] == "advertise_address")
            .unwrap();
        assert_eq!(adv["status"], "fail", "{adv}");
        assert_eq!(v["ok"], false);
    }

    #[tokio::test]
    async fn a_config_that_does_not_load_is_one_failed_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "concurrent = \"many\"\n");
        let report = examine(&path, None, &facts()).await;
        assert_eq!(report.checks.len(), 1, "{report:?}");
        assert_eq!(report.checks[0].name, "config");
        assert_eq!(report.checks[0].status, Status::Fail);
        assert!(!report.ok);
        let missing = examine(&dir.path().join("none.toml"), None, &facts()).await;
        assert_eq!(missing.checks[0].status, Status::Fail);
    }

    /// `doctor --user` judges shell jobs' user as `run --user` sets it (the
    /// packaged unit passes it): no false "jobs run as root".
    #[tokio::test]
    async fn the_user_run_is_given_counts_as_the_job_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[[runners]]\n  name = \"s\"\n  url = \"https://gitlab.example.com\"\n  token = \"glrt-x\"\n  executor = \"shell\"\n",
        );
        let as_root = Facts {
            runner_is_root: true,
            ..facts()
        };
        let job_user = |r: &Report| {
            r.checks
                .iter()
                .find(|c| c.name == "job_user")
                .cloned()
                .unwrap()
        };
        let without = examine(&path, None, &as_root).await;
        assert_eq!(job_user(&without).status, Status::Warn, "{without:?}");
        let with = examine(&path, Some("nobody"), &as_root).await;
        let c = job_user(&with);
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.detail.contains("nobody"), "{c:?}");
        let unknown = examine(&path, Some("no-such-user-tg"), &as_root).await;
        let c = job_user(&unknown);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("--user"), "{c:?}");
    }

    #[tokio::test]
    async fn without_a_session_server_its_checks_are_skipped_not_passed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "concurrent = 1\n");
        let report = examine(&path, None, &facts()).await;
        assert!(report.ok, "{report:?}");
        let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["config", "open_files"]);
        let skipped: Vec<&str> = report.skipped.iter().map(|s| s.name).collect();
        assert_eq!(
            skipped,
            ["docker_hardening", "session_server", "operator_api"]
        );
    }
}
