//! The real `termgate` TUI in tmux against a runner log that already
//! holds the last hour's warnings: the Errors screen lists them within 2 s
//! of the console's first frame (read back at start, not only tailed from
//! the end), and the Logs screen shows the lines already there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_screen(session: &str, what: &str, until: Instant, pred: impl Fn(&str) -> bool) -> String {
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if pred(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A termgate JSON log line `secs` ago.
fn line(secs: u64, level: &str, msg: &str, extra: &str) -> String {
    let t: chrono::DateTime<chrono::Utc> = (SystemTime::now() - Duration::from_secs(secs)).into();
    format!(
        "{{\"level\":\"{level}\",\"msg\":\"{msg}\",\"time\":\"{}\"{extra}}}\n",
        t.to_rfc3339()
    )
}

#[test]
fn errors_screen_lists_the_last_hours_warnings_already_in_the_log() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required in CI (scripts/setup-test-deps.sh installs it)"
        );
        eprintln!("tmux missing: skipped");
        return;
    }
    let me = std::path::PathBuf::from(env!("CARGO_BIN_EXE_termgate"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runner.log");
    let mut text = String::new();
    for i in 0..30 {
        text += &line(3500 - i * 100, "info", "Checking for jobs... received", "");
        text += &line(
            3450 - i * 100,
            "warning",
            &format!("Job failed: exit code {}", 1 + i % 3),
            ",\"failure_reason\":\"script_failure\"",
        );
    }
    for i in 0..4 {
        text += &line(
            1800 - i * 60,
            "error",
            "Checking for jobs... forbidden",
            ",\"status\":\"403 Forbidden\"",
        );
    }
    text += &line(5, "info", "Job succeeded", ",\"job\":4242");
    std::fs::write(&log, text).unwrap();

    let session = format!("tgb{}", std::process::id());
    let cmd = format!(
        "TERMGATE_CONSOLE_LOG_FILE={} {} --runner r1=http://127.0.0.1:9/metrics --logs r1={}; sleep 30",
        dir.path().join("console.log").display(),
        me.display(),
        log.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "30",
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

    wait_screen(
        &session,
        "the first frame",
        Instant::now() + Duration::from_secs(20),
        |s| s.contains("[1]Fleet"),
    );
    let started = Instant::now();
    tmux(&["send-keys", "-t", &session, "4"]);
    let screen = wait_screen(
        &session,
        "the warnings already in the log",
        started + Duration::from_secs(2),
        |s| s.contains("exit code N") && s.contains("forbidden"),
    );
    // COUNT first (after the selection marker), then whose it is.
    let cells = |what: &str| -> Vec<String> {
        let row = screen.lines().find(|l| l.contains(what)).unwrap();
        let row = row.trim_start_matches(['>', ' ']);
        row.split_whitespace().take(3).map(String::from).collect()
    };
    assert_eq!(cells("exit code N"), ["30", "warning", "job"], "{screen}");
    assert_eq!(cells("forbidden"), ["4", "error", "runner"], "{screen}");

    tmux(&["send-keys", "-t", &session, "5"]);
    wait_screen(
        &session,
        "the lines already in the log",
        Instant::now() + Duration::from_secs(5),
        |s| s.contains("Job succeeded") && s.contains("job=4242"),
    );
    tmux(&["send-keys", "-t", &session, "q"]);
}
