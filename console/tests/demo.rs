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
        .find(|l| {
            l.trim_start_matches(['>', ' ']).starts_with("demo-runner ") && l.contains("termgate")
        })
        .unwrap_or_else(|| panic!("{stdout}"));
    let cols: Vec<&str> = fleet.split_whitespace().collect();
    assert_eq!(cols[1], "up", "{fleet}");
    let active: u32 = cols[6].parse().unwrap_or_else(|_| panic!("{fleet}"));
    assert!(active >= 1, "terminals attached by the demo: {fleet}");
    // One moment: the figures printed are those of the scrape the Fleet
    // screen shows, not a later one taken after the terminals closed.
    let metric = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name}: {stdout}"))
            .to_string()
    };
    assert_eq!(
        metric("gitlab_runner_session_terminals_active"),
        active.to_string(),
        "{stdout}"
    );
    let jobs_now: f64 = stdout
        .lines()
        .filter(|l| l.starts_with("gitlab_runner_jobs{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(jobs_now.to_string(), cols[4], "JOBS: {stdout}");
    assert!(
        metric("gitlab_runner_jobs_total").parse::<u64>().is_ok(),
        "{stdout}"
    );
    // The jobs are listed while the demo ran; what comes after the stop
    // lists none as running.
    let (before, after) = stdout
        .split_once("\nstopped at ")
        .unwrap_or_else(|| panic!("no stop line: {stdout}"));
    assert!(before.contains("while the demo ran, at "), "{stdout}");
    assert!(
        !after
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("running")),
        "{after}"
    );
    assert!(
        after.contains(&format!("its files are in {}", dir.path().display())),
        "{after}"
    );
    // The way in, printed before the demo's output, with a job id.
    let attach = stdout
        .lines()
        .find_map(|l| l.strip_prefix("attach while it runs: "))
        .unwrap_or_else(|| panic!("no attach line: {stdout}"));
    let console_toml = dir.path().join("console.toml");
    assert!(
        attach.contains(&format!(
            " attach -c {} demo-runner ",
            console_toml.display()
        )) && attach.ends_with(" --observe"),
        "{attach}"
    );
    let job = attach.split_whitespace().rev().nth(1).unwrap();
    assert!(job.parse::<u64>().is_ok(), "a job id: {attach}");
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

/// Without `--dir` the demo's files are in a temporary folder it removes
/// when it stops: the output after the stop does not name it as if it
/// were still there.
#[test]
fn headless_demo_does_not_name_the_temporary_folder_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = demo_env(
        &mut Command::new(env!("CARGO_BIN_EXE_termgate")),
        dir.path(),
    )
    .env("TMPDIR", &tmp)
    .args(["demo", "--headless", "--duration", "3s"])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, after) = stdout
        .split_once("\nstopped at ")
        .unwrap_or_else(|| panic!("no stop line: {stdout}"));
    assert!(after.contains("temporary folder, now removed"), "{after}");
    assert!(!after.contains(&*tmp.to_string_lossy()), "{after}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the temporary folder is gone"
    );
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
