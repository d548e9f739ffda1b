//! `termgate demo --headless` against the real runner binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The workspace's `termgate-runner`, built next to `termgate`.
fn runner_bin() -> std::path::PathBuf {
    let me = std::path::PathBuf::from(env!("CARGO_BIN_EXE_termgate"));
    let bin = me.with_file_name("termgate-runner");
    assert!(
        bin.is_file(),
        "{} is missing: run the suite from the workspace (cargo test --workspace)",
        bin.display()
    );
    bin
}

#[test]
fn headless_demo_runs_jobs_and_prints_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_termgate"))
        .args(["demo", "--headless", "--duration", "8s", "--dir"])
        .arg(dir.path())
        .env("TERMGATE_RUNNER_BIN", runner_bin())
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
    // Everything it started is gone.
    let log = std::fs::read_to_string(dir.path().join("runner.log")).unwrap();
    assert!(
        log.contains("Can exit now!"),
        "runner stopped cleanly: {log}"
    );
}
