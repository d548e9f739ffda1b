//! The session-server benchmark's smoke run: real coordinator, runner,
//! bare PTYs and pinned-TLS WebSocket clients, every figure printed.

use std::process::Command;

#[test]
fn bench_quick_run_prints_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_termgate-bench"))
        .args(["--quick", "--secs", "2", "--hold", "10", "--hold-secs", "2"])
        .output()
        .expect("spawn termgate-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "termgate-bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
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
    // Both levels measured on both sides, without failed echoes.
    for n in ["1", "10"] {
        let row = stdout
            .lines()
            .find(|l| l.split('|').next().map(str::trim) == Some(n))
            .unwrap_or_else(|| panic!("no row for {n} sessions:\n{stdout}"));
        let cols: Vec<&str> = row.split('|').collect();
        assert!(cols[1].trim().ends_with(" 0"), "bare failures: {row}");
        assert!(cols[2].trim().ends_with(" 0"), "runner failures: {row}");
    }
}
