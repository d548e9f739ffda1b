//! `termgate demo --headless` against the real runner binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use termgate_test_support::procs::processes_under;
use termgate_test_support::workspace_bin;

/// The demo's binaries: this workspace's runner and coordinator; the
/// console's own log in `dir` (never the developer's
/// `~/.local/state/termgate/console.log`).
fn demo_env<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    cmd.env("TERMGATE_RUNNER_BIN", workspace_bin("termgate-runner"))
        .env(
            "TERMGATE_COORDINATOR_BIN",
            workspace_bin("termgate-coordinator"),
        )
        .env("TERMGATE_CONSOLE_LOG_FILE", console_log(dir))
}

/// Where `demo_env` points the console's log.
fn console_log(dir: &Path) -> PathBuf {
    dir.join("console.log")
}

/// The console logged its start to `console_log(dir)`.
fn assert_console_log_started(dir: &Path) {
    let path = console_log(dir);
    let log = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("console log {}: {e}", path.display()));
    assert!(log.contains("termgate console started"), "{log}");
}

#[test]
fn headless_demo_runs_jobs_and_prints_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo_env(
        &mut Command::new(env!("CARGO_BIN_EXE_termgate")),
        dir.path(),
    )
    .args(["demo", "--headless", "--duration", "8s", "--dir"])
    .arg(dir.path())
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} row: {stdout}"))
            .to_string()
    };
    assert!(row("build").contains("success"), "{stdout}");
    assert!(
        row("unit-tests").contains("failed") && row("unit-tests").contains("script_failure"),
        "{stdout}"
    );
    assert!(row("terminal").contains("running"), "{stdout}");
    // The Fleet screen, as text: the runner is up with terminals attached.
    let fleet = stdout
        .lines()
        .find(|l| l.contains("demo-runner") && l.contains("termgate"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let cols: Vec<&str> = fleet.split_whitespace().collect();
    assert_eq!(cols[1], "up", "{fleet}");
    let active: u32 = cols[6].parse().unwrap_or_else(|_| panic!("{fleet}"));
    assert!(active >= 1, "terminals attached by the demo: {fleet}");
    assert!(stdout.contains("gitlab_runner_jobs_total{"), "{stdout}");
    // The Sessions screen, as text: the terminal jobs, through the runner's
    // operator API with its certificate pinned.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("demo-runner") && l.contains("termgate/demo")),
        "no session rows: {stdout}"
    );
    let cfg = termgate_console::config::ConsoleConfig::load(&dir.path().join("console.toml"))
        .unwrap_or_else(|e| panic!("the demo's console.toml: {e}"));
    let entry = &cfg.runners[0];
    assert!(entry.fingerprint.is_some(), "{entry:?}");
    assert!(
        entry
            .operator_token
            .as_deref()
            .is_some_and(|t| t.starts_with(termgate::operator::TOKEN_PREFIX)),
        "{entry:?}"
    );
    // Everything it started is gone.
    let log = std::fs::read_to_string(dir.path().join("runner.log")).unwrap();
    assert!(
        log.contains("Can exit now!"),
        "runner stopped cleanly: {log}"
    );
    // Log fields are values, never Rust's debug text (`peer=Some(…)`).
    let coord = std::fs::read_to_string(dir.path().join("coordinator.log")).unwrap();
    assert!(coord.contains("Terminal: started proxying"), "{coord}");
    for (name, text) in [("runner.log", &log), ("coordinator.log", &coord)] {
        assert!(!text.contains("Some("), "{name}: {text}");
    }
    assert_console_log_started(dir.path());
}

#[test]
fn closing_the_demos_terminal_stops_everything_it_started() {
    use std::time::{Duration, Instant};
    for sig in [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut demo = demo_env(
            &mut Command::new(env!("CARGO_BIN_EXE_termgate")),
            dir.path(),
        )
        .args(["demo", "--headless", "--duration", "120s", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        // Wait until the runner runs jobs (their scripts live under `dir`).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !processes_under(dir.path())
            .iter()
            .any(|p| p.contains("script.sh"))
        {
            assert!(Instant::now() < deadline, "no job started: {sig}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = nix::unistd::Pid::from_raw(demo.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = demo.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the demo did not exit on {sig}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(demo.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "{sig}: {status:?}\n{stderr}");
        assert!(stderr.contains(sig.as_str()), "{stderr}");
        // The coordinator, the runner and every job are gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_under(dir.path());
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left running after {sig}: {left:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_console_log_started(dir.path());
    }
}
