//! The real `termgate demo` TUI driven in tmux: it starts, shows the live
//! runner with attached terminals, switches screens on keys, and `q` stops
//! everything it started.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_screen(
    session: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let until = Instant::now() + timeout;
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if pred(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the `active` column in the demo-runner row.
fn active(screen: &str) -> Option<u32> {
    let row = screen
        .lines()
        .find(|l| l.trim_start_matches(['>', ' ']).starts_with("demo-runner "))?;
    row.split_whitespace().nth(6)?.parse().ok()
}

#[test]
fn demo_tui_in_tmux_shows_counts_switches_screens_and_quits_cleanly() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required in CI (scripts/setup-test-deps.sh installs it)"
        );
        eprintln!("tmux missing: skipped");
        return;
    }
    let me = std::path::PathBuf::from(env!("CARGO_BIN_EXE_termgate"));
    let runner = termgate_test_support::workspace_bin("termgate-runner");
    let coordinator = termgate_test_support::workspace_bin("termgate-coordinator");
    let dir = tempfile::tempdir().unwrap();
    let session = format!("tg{}", std::process::id());
    // The console's own log goes to `dir`, never the developer's
    // `~/.local/state/termgate/console.log`.
    let console_log = dir.path().join("console.log");
    let cmd = format!(
        "TERMGATE_CONSOLE_LOG_FILE={} TERMGATE_RUNNER_BIN={} TERMGATE_COORDINATOR_BIN={} {} demo --dir {}; echo DEMO-EXITED-$?; sleep 30",
        console_log.display(),
        runner.display(),
        coordinator.display(),
        me.display(),
        dir.path().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "35",
        &cmd,
    ]);
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .output();
        }
    }
    let _kill = Kill(session.clone());

    let first = wait_screen(&session, "the fleet row", Duration::from_secs(40), |s| {
        s.contains("demo-runner") && s.contains(" up ")
    });
    assert!(first.contains("[1]Fleet"), "{first}");
    // The way in, on screen while the demo runs: its coordinator and a
    // command that attaches to one of its terminal jobs.
    assert!(
        first.contains("demo coordinator http://127.0.0.1:"),
        "{first}"
    );
    let attach = format!(
        " attach -c {} demo-runner ",
        dir.path().join("console.toml").display()
    );
    assert!(first.contains(&attach), "{first}");
    // The demo attaches terminals: the active count rises to 2.
    let screen = wait_screen(
        &session,
        "two active terminals",
        Duration::from_secs(40),
        |s| active(s) == Some(2),
    );
    assert!(screen.contains("TERMINALS"), "{screen}");
    // Cancel one attached terminal job on the coordinator: the count drops.
    let cfg = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let url = cfg
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("url = \"")
                .map(|u| u.trim_end_matches('"').to_string())
        })
        .unwrap();
    let jobs: serde_json::Value = reqwest::blocking::get(format!("{url}/admin/jobs"))
        .unwrap()
        .json()
        .unwrap();
    let running: Vec<u64> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["name"] == "terminal" && j["state"] == "running")
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert!(running.len() >= 2, "{jobs}");
    for id in running {
        reqwest::blocking::Client::new()
            .post(format!("{url}/admin/jobs/{id}/cancel"))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    wait_screen(
        &session,
        "the active count to drop",
        Duration::from_secs(30),
        |s| active(s) == Some(0),
    );

    tmux(&["send-keys", "-t", &session, "3"]);
    // The demo runner's terminal jobs, through its operator API.
    wait_screen(
        &session,
        "the Sessions screen",
        Duration::from_secs(10),
        |s| s.contains("SESSION") && s.contains("CLIENTS"),
    );
    tmux(&["send-keys", "-t", &session, "4"]);
    wait_screen(
        &session,
        "the Errors screen",
        Duration::from_secs(10),
        |s| s.contains("COUNT") && s.contains("LEVEL"),
    );
    tmux(&["send-keys", "-t", &session, "5"]);
    wait_screen(&session, "the Logs screen", Duration::from_secs(10), |s| {
        s.contains("Checking for jobs") || s.contains("Job succeeded") || s.contains("Job failed")
    });
    tmux(&["send-keys", "-t", &session, "?"]);
    wait_screen(&session, "help", Duration::from_secs(10), |s| {
        s.to_lowercase().contains("help")
    });
    tmux(&["send-keys", "-t", &session, "Escape"]);
    tmux(&["send-keys", "-t", &session, "q"]);
    let end = wait_screen(&session, "the demo to exit", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED-")
    });
    assert!(end.contains("DEMO-EXITED-0"), "{end}");
    let log = std::fs::read_to_string(dir.path().join("runner.log")).unwrap();
    assert!(
        log.contains("Can exit now!"),
        "the runner was stopped: {log}"
    );
    let log = std::fs::read_to_string(&console_log).unwrap();
    assert!(log.contains("termgate console started"), "{log}");
}
