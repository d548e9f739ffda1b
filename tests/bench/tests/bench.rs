//! The session-server benchmark's smoke run: real coordinator, runner,
//! bare PTYs and pinned-TLS WebSocket clients, every figure printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// Run the bench with `args` and `--echo-log <log>`, its working files in
/// the log's directory (`TMPDIR`); its stdout and stderr, after checking it
/// succeeded.
fn run_bench(args: &[&str], log: &std::path::Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_termgate-bench"))
        .args(args)
        .env("TMPDIR", log.parent().unwrap())
        .arg("--echo-log")
        .arg(log)
        .output()
        .expect("spawn termgate-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "termgate-bench failed: {stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn bench_quick_run_prints_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echoes.csv");
    let (stdout, _) = run_bench(
        &["--quick", "--secs", "2", "--hold", "10", "--hold-secs", "2"],
        &log,
    );
    for needle in [
        "Keystroke echo round trip",
        "Bulk output, 10 MB through one session",
        "runner/bare:",
        "steal % b/r",
        "Hold: 10/10 sessions connected",
        " 0 failed,",
        "per connected session",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // Both levels measured on both sides, without failed echoes; each
    // side's echo count (all timed, none failed) for the echo log below.
    let mut sent = std::collections::HashMap::new();
    for n in ["1", "10"] {
        let row = stdout
            .lines()
            .find(|l| l.split('|').next().map(str::trim) == Some(n))
            .unwrap_or_else(|| panic!("no row for {n} sessions:\n{stdout}"));
        let cols: Vec<&str> = row.split('|').collect();
        assert!(cols[1].trim().ends_with(" 0"), "bare failures: {row}");
        assert!(cols[2].trim().ends_with(" 0"), "runner failures: {row}");
        for (side, col) in [("bare", cols[1]), ("runner", cols[2])] {
            let count: usize = col.split_whitespace().next().unwrap().parse().unwrap();
            sent.insert(("level", n, side), count);
        }
    }
    let hold: usize = stdout
        .split("sessions connected, ")
        .nth(1)
        .and_then(|rest| rest.split(" echoes").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no hold echo count in:\n{stdout}"));
    sent.insert(("hold", "10", "runner"), hold);
    // The echo log has one row per timed echo, for the hold and both sides
    // of each level, with sending times in order per side.
    let csv = std::fs::read_to_string(&log).expect("the echo log was written");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("phase,sessions,side,sent_ms,rtt_us"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), sent.values().sum::<usize>(), "rows in:\n{csv}");
    for (&(phase, n, side), &count) in &sent {
        let times: Vec<f64> = rows
            .iter()
            .filter(|r| r[0] == phase && r[1] == n && r[2] == side)
            .map(|r| {
                assert!(r[4].parse::<u32>().is_ok(), "bad rtt in {r:?}");
                r[3].parse().unwrap()
            })
            .collect();
        assert_eq!(times.len(), count, "{phase}/{n}/{side} rows in:\n{csv}");
        assert!(count > 0, "no {phase}/{n}/{side} echoes");
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{phase}/{n}/{side} out of order"
        );
    }
}

/// `--observers` at a tiny size: one observer (and the stalled one) on the
/// user's session, paired with a run without; the table, the per-round
/// line and both verdicts are printed and every timed echo is logged.
#[test]
fn bench_observer_phase_runs_and_prints_its_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echoes.csv");
    let (stdout, stderr) = run_bench(
        &["--observers", "1", "--secs", "1", "--observer-rounds", "1"],
        &log,
    );
    assert!(!stderr.contains("outlived"), "{stderr}");
    for needle in [
        "User's keystroke echo (ms) while operators watch",
        "stalled dropped",
        "median ratio",
        "] user echo p99 with 1 observer ",
        "] 1 observer kept up with the user in every run, and the stalled one was dropped",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // Not the other phases.
    assert!(!stdout.contains("Bulk output"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.split('|').next().map(str::trim) == Some("1"))
        .unwrap_or_else(|| panic!("no row for 1 observer:\n{stdout}"));
    // Timed echoes per side: sent minus failed (the first and last numbers
    // of its column), one echo-log row each.
    let timed = |col: &str| -> usize {
        let nums: Vec<usize> = col
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap() as usize)
            .collect();
        nums[0] - nums[nums.len() - 1]
    };
    let cols: Vec<&str> = row.split('|').collect();
    let csv = std::fs::read_to_string(&log).expect("the echo log was written");
    for (side, col) in [("without", cols[1]), ("with", cols[2])] {
        let rows = csv
            .lines()
            .filter(|l| l.starts_with(&format!("observers,1,{side},")))
            .count();
        assert!(rows > 0, "no echoes {side} observers: {row}");
        assert_eq!(rows, timed(col), "{side} rows in:\n{csv}");
    }
}

/// `--relay` times a third side (a plain TCP relay process in front of a
/// PTY) in the same turns, logs its echoes, and leaves no relay behind.
#[test]
fn bench_relay_side_is_timed_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echoes.csv");
    let (stdout, stderr) = run_bench(
        &[
            "--quick",
            "--sessions",
            "3",
            "--secs",
            "2",
            "--hold",
            "0",
            "--bulk-mb",
            "1",
            "--relay",
        ],
        &log,
    );
    // The relay is not mistaken for a job process the runner left behind.
    assert!(!stderr.contains("outlived"), "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("3 | relay n "))
        .unwrap_or_else(|| panic!("no relay row in:\n{stdout}"));
    // 3 sessions typing 10 keys/s for 2 s, none failed.
    let sent: usize = row
        .split("relay n ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no relay count in {row}"));
    assert!(sent >= 30, "{row}");
    assert!(row.contains(" fail 0 "), "{row}");
    assert!(row.contains("x bare; runner "), "{row}");
    let csv = std::fs::read_to_string(&log).expect("the echo log was written");
    let relayed = csv
        .lines()
        .filter(|l| l.starts_with("level,3,relay,"))
        .count();
    assert_eq!(relayed, sent, "relay rows in:\n{csv}");
    let left = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        // This run's relay only: its shells' directory is under ours.
        let pattern = format!("--relay-serve {}", dir.path().display());
        let running = Command::new("pgrep")
            .args(["-f", "--", &pattern])
            .output()
            .unwrap();
        if running.stdout.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < left,
            "relay still running: {}",
            String::from_utf8_lossy(&running.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The relay process lives as long as its parent's end of its stdin: when
/// the bench goes away, however it goes, the relay and its shells follow.
#[test]
fn relay_exits_with_its_parent_and_takes_its_shells() {
    use std::io::{BufRead as _, Read as _, Write as _};
    /// Killed if the test fails, so no relay outlives it.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut guard = Guard(
        Command::new(env!("CARGO_BIN_EXE_termgate-bench"))
            .arg("--relay-serve")
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the relay"),
    );
    let relay = &mut guard.0;
    let mut port = String::new();
    std::io::BufReader::new(relay.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port.trim().parse().expect("the relay printed its port");
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    tcp.write_all(b"echo relay-$((6*7))\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("relay-42") {
        let n = tcp.read(&mut buf).expect("the shell answered");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let shells_in_dir = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == dir.path()))
            .count()
    };
    assert_eq!(shells_in_dir(), 1, "one shell behind the connection");
    drop(relay.stdin.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while relay.try_wait().unwrap().is_none() || shells_in_dir() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "relay or its shell still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The report bench on a small week: every row, the checks against the
/// generator, the week reused by a second run.
#[test]
fn report_bench_small_week_prints_every_row_and_checks_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let week = dir.path().join("week");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_termgate-report-bench"))
            .args(["--gb", "0.004", "--dir"])
            .arg(&week)
            .output()
            .expect("spawn termgate-report-bench");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "termgate-report-bench failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = run();
    for needle in [
        "writing the week into",
        "4 runners, 12 files (8 gzip)",
        "page cache: nothing dropped",
        "termgate report --format json --out /dev/null",
        "termgate report, --threads 1",
        "grep -c '\"level\":\"error\"'",
        "checked: the report's errors, warnings, bytes and lines",
    ] {
        assert!(first.contains(needle), "no {needle:?} in:\n{first}");
    }
    assert!(
        first.contains("| sort | uniq -c") || first.contains("jq: NOT INSTALLED"),
        "{first}"
    );
    let second = run();
    assert!(second.contains("reusing the week in"), "{second}");
}
