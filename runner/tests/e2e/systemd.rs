//! `assets/systemd/termgate-runner.service`: systemd accepts it, its command
//! line is one the runner takes, and what it sends drives a real runner as
//! its comments say: `ExecReload` reloads, `KillSignal` stops gracefully
//! (the running job goes on), `WatchdogSignal` (sent after `TimeoutStopSec`)
//! aborts the jobs, and the runner is gone within `TimeoutAbortSec`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use clap::Parser as _;
use nix::sys::signal::Signal;
use termgate::logschema::msg;
use termgate_runner::config::DEFAULT_SHUTDOWN_TIMEOUT;
use termgate_runner::job::run::{DEFAULT_JOB_TIMEOUT, FINAL_UPDATE_DEADLINE};

use crate::support::*;

const UNIT: &str = "termgate-runner.service";
const INSTALLED_BIN: &str = "/usr/bin/termgate-runner";

/// How long the runner may take to exit once `shutdown_timeout` is over:
/// the session server's close (5 s), the metrics server's (2 s), the last
/// terminal sweep (5 s) and Sentry's queue (2 s), rounded up.
const EXIT_AFTER_SHUTDOWN_TIMEOUT: u64 = 30;

fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/systemd")
        .join(UNIT);
    std::fs::read_to_string(path).unwrap()
}

/// The value of the one `key=` line (a key set twice is an error here).
fn setting(unit: &str, key: &str) -> String {
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .collect();
    assert_eq!(values.len(), 1, "{key}= set {} times", values.len());
    values[0].to_owned()
}

/// A time span given in plain seconds, as this unit writes them.
fn seconds(unit: &str, key: &str) -> u64 {
    let v = setting(unit, key);
    v.parse()
        .unwrap_or_else(|_| panic!("{key}={v}: write plain seconds"))
}

fn signal(unit: &str, key: &str) -> Signal {
    let v = setting(unit, key);
    Signal::from_str(&v).unwrap_or_else(|_| panic!("{key}={v}: not a signal"))
}

/// `systemd-analyze verify`: no error and nothing printed (it exits 0 on
/// settings it ignores, saying so). Verify checks that `ExecStart`'s
/// program exists: the unit is checked with this build's binary in place
/// of `/usr/bin/termgate-runner`. Skipped without systemd-analyze unless
/// `TERMGATE_REQUIRE_SYSTEMD_ANALYZE=1` (CI).
#[test]
fn systemd_analyze_verifies_the_runner_unit() {
    let dir = tempfile::tempdir().unwrap();
    let copy: PathBuf = dir.path().join(UNIT);
    std::fs::write(&copy, unit().replace(INSTALLED_BIN, BIN)).unwrap();
    termgate_test_support::systemd::verify(
        &[&copy],
        &[("termgate-runner", std::path::Path::new(BIN))],
    );
}

/// The settings the comments explain, against the runner's own defaults
/// and command line.
#[test]
fn the_units_settings_match_the_runner() {
    let u = unit();
    // The command line is one the runner's CLI takes, logging JSON lines.
    let exec = setting(&u, "ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], INSTALLED_BIN);
    let cli = termgate_runner::cli::Cli::try_parse_from(argv.clone()).unwrap();
    assert_eq!(cli.log_format.as_deref(), Some("json"));
    let termgate_runner::cli::Command::Run(run) = cli.command else {
        panic!("ExecStart does not `run`: {exec}");
    };
    assert_eq!(
        run.config.config.as_deref(),
        Some(Path::new("/etc/termgate-runner/config.toml"))
    );
    assert!(run.working_directory.is_some(), "{exec}");
    assert!(
        u.contains(&format!("ConditionFileIsExecutable={INSTALLED_BIN}\n")),
        "{u}"
    );

    // Stop: SIGQUIT to the runner alone, long enough for a job with GitLab's
    // default timeout and its final update; then SIGTERM, then SIGKILL
    // once shutdown_timeout (default) and the runner's exit are over.
    assert_eq!(setting(&u, "KillMode"), "mixed");
    assert_eq!(signal(&u, "KillSignal"), Signal::SIGQUIT);
    assert!(
        seconds(&u, "TimeoutStopSec") >= (DEFAULT_JOB_TIMEOUT + FINAL_UPDATE_DEADLINE).as_secs()
    );
    assert_eq!(setting(&u, "TimeoutStopFailureMode"), "abort");
    assert_eq!(signal(&u, "WatchdogSignal"), Signal::SIGTERM);
    assert!(
        seconds(&u, "TimeoutAbortSec") >= DEFAULT_SHUTDOWN_TIMEOUT + EXIT_AFTER_SHUTDOWN_TIMEOUT
    );
    assert!(
        !u.contains("WatchdogSec="),
        "a watchdog would send SIGTERM too"
    );

    // The shell's builtin kill: /bin/kill is not on minimal systems.
    assert_eq!(
        setting(&u, "ExecReload"),
        r#"/bin/sh -c 'kill -HUP "$$MAINPID"'"#
    );
    assert_eq!(setting(&u, "Restart"), "always");
    assert!(seconds(&u, "RestartSec") > 0);
    // Jobs keep 1024 (runner/src/rlimit.rs), the runner takes the hard limit.
    assert_eq!(setting(&u, "LimitNOFILE"), "1024:524288");

    // No hardening that breaks shell jobs (the comment says why each is off).
    for key in [
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectClock",
        "LockPersonality",
        "RestrictSUIDSGID",
        "MemoryDenyWriteExecute",
        "SystemCallFilter",
        "RestrictNamespaces",
        "User",
        "DynamicUser",
    ] {
        assert!(
            !u.lines().any(|l| l.starts_with(&format!("{key}="))),
            "{key}= is set: it breaks shell jobs or the switch to their user"
        );
    }
}

/// What systemd would do, done to a runner with a running job: the reload
/// command, then `KillSignal`, then `WatchdogSignal`.
#[test]
fn the_units_signals_reload_then_drain_then_abort_the_runner() {
    let u = unit();
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "systemd", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    // shutdown_timeout left at its default, which TimeoutAbortSec covers.
    let mut r = setup.start();
    let pid = r.child.id().to_string();

    // ExecReload, run as systemd runs it: `/bin/sh -c '…'` with `$$` as
    // `$` and the runner's PID in MAINPID.
    let reload = setting(&u, "ExecReload");
    let script = reload
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("ExecReload is not /bin/sh -c '…': {reload}"))
        .replace("$$", "$");
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .env("MAINPID", &pid)
        .status()
        .unwrap();
    assert!(status.success(), "{reload}");
    r.wait_config_loaded(2, Duration::from_secs(10));

    let id = coord.enqueue(job("long", &["echo started", "sleep 600"]));
    coord.wait_state(id, &["running"], Duration::from_secs(30));

    // `systemctl stop`: the job goes on, the runner stays.
    r.signal(signal(&u, "KillSignal"));
    r.wait_log(msg::GRACEFUL_SHUTDOWN, Duration::from_secs(10));
    r.check_alive();
    assert_eq!(coord.job(id)["state"], "running");

    // TimeoutStopSec is over: the forceful stop, then gone in time.
    r.signal(signal(&u, "WatchdogSignal"));
    let sent = Instant::now();
    let status = r.wait_exit(Duration::from_secs(seconds(&u, "TimeoutAbortSec")));
    assert!(status.success(), "{status:?}");
    assert!(sent.elapsed() < Duration::from_secs(seconds(&u, "TimeoutAbortSec")));
    assert!(r.log_text().contains(msg::FORCEFUL_SHUTDOWN));
    let j = coord.wait_finished(id, Duration::from_secs(5));
    assert_eq!(j["failure_reason"], "runner_system_failure", "{j}");
}
