//! `termgate tally` on the real-log fixtures and on a generated termgate log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use termgate::logschema as ls;

/// The repo's `tests/fixtures/logs`.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/logs")
}

/// `termgate tally ARGS`, its own log in a temp dir (never the
/// developer's `~/.local/state/termgate/console.log`), where a successful
/// run logged its start.
fn tally(args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    let console_log = state.path().join("console.log");
    let out = Command::new(env!("CARGO_BIN_EXE_termgate"))
        .env("TERMGATE_CONSOLE_LOG_FILE", &console_log)
        .arg("tally")
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        let log = std::fs::read_to_string(&console_log).unwrap();
        assert!(log.contains("termgate console started"), "{log}");
    }
    out
}

fn ok_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = tally(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn by_fp<'a>(v: &'a [serde_json::Value], fp: &str) -> &'a serde_json::Value {
    v.iter()
        .find(|e| e["fingerprint"] == fp)
        .unwrap_or_else(|| panic!("no {fp:?} in {v:#?}"))
}

#[test]
fn table_on_the_fixtures() {
    let g = fixtures().join("*.log").to_string_lossy().into_owned();
    let j = fixtures().join("*.jsonl").to_string_lossy().into_owned();
    let out = tally(&["--logs", &g, &j]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let first = s.lines().next().unwrap();
    for col in [
        "COUNT",
        "LEVEL",
        "FIRST-SEEN",
        "LAST-SEEN",
        "RUNNERS",
        "FINGERPRINT/SAMPLE",
    ] {
        assert!(first.contains(col), "{first}");
    }
    let failed = s
        .lines()
        .find(|l| l.ends_with("Checking for jobs... failed"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(failed.trim_start().starts_with("8 "), "{failed}");
    assert!(failed.contains("gitlab-runner-real,"), "{failed}");
    assert!(s.contains("Runner \"…\" is unhealthy and will be disabled for NhNmNs seconds!"));
    assert!(s.contains(" 0 unparsed"), "{s}");
}

#[test]
fn json_on_the_fixtures() {
    let f = fixtures();
    let real = format!("upstream={}", f.join("gitlab-runner-real.log").display());
    let wrapped = f
        .join("gitlab-runner-real-wrapped.log")
        .to_string_lossy()
        .into_owned();
    let v = ok_json(&["--logs", &real, &wrapped, "--json", "--top", "0"]);
    let forbidden = by_fp(&v, "Checking for jobs... forbidden");
    assert_eq!(forbidden["count"], 7);
    assert_eq!(forbidden["level"], "error");
    assert_eq!(
        forbidden["runners"],
        serde_json::json!(["gitlab-runner-real-wrapped", "upstream"])
    );
    assert!(forbidden["examples"].as_array().unwrap().len() <= 5);
    let unhealthy = by_fp(
        &v,
        "Runner \"…\" is unhealthy and will be disabled for NhNmNs seconds!",
    );
    assert_eq!(unhealthy["count"], 3);
    // Sorted by count.
    let counts: Vec<u64> = v.iter().map(|e| e["count"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    for e in &v {
        for k in [
            "fingerprint",
            "level",
            "count",
            "first_seen",
            "last_seen",
            "runners",
            "sample",
            "examples",
            "per_minute",
        ] {
            assert!(e.get(k).is_some(), "{k} missing in {e}");
        }
    }
    let top2 = ok_json(&["--logs", &real, "--json", "--top", "2"]);
    assert_eq!(top2.len(), 2);
}

#[test]
fn generated_termgate_log_with_since() {
    let d = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let mut text = String::new();
    let line = |ago_min: i64, level: &str, msg: &str, job: u64| {
        let mut m = serde_json::Map::new();
        m.insert(ls::JOB.into(), job.into());
        m.insert(ls::LEVEL.into(), level.into());
        m.insert(ls::MSG.into(), msg.into());
        m.insert(ls::RUNNER.into(), "abc".into());
        m.insert(ls::RUNNER_NAME.into(), "r1".into());
        let t = now - chrono::Duration::minutes(ago_min);
        m.insert(
            ls::TIME.into(),
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
                .into(),
        );
        serde_json::Value::Object(m).to_string() + "\n"
    };
    for i in 0..10u64 {
        // Two days old, then the last hour.
        text += &line(
            2 * 24 * 60 + i as i64,
            "warning",
            &format!("Job failed: exit code {i}"),
            i,
        );
        text += &line(
            i as i64,
            "warning",
            &format!("Job failed: exit code {}", i + 1),
            100 + i,
        );
        text += &line(i as i64, "info", ls::msg::JOB_SUCCEEDED, 200 + i);
    }
    text += &line(1, "error", ls::msg::CHECKING_FOR_JOBS_FORBIDDEN, 0);
    text += "garbage that is not \u{1} a log line\n";
    let p = d.path().join("prm-5.log");
    std::fs::write(&p, text).unwrap();
    let g = p.to_string_lossy().into_owned();

    let all = ok_json(&["--logs", &g, "--json"]);
    assert_eq!(by_fp(&all, "Job failed: exit code N")["count"], 20);
    assert_eq!(
        by_fp(&all, "Job failed: exit code N")["runners"],
        serde_json::json!(["prm-5"])
    );
    let recent = ok_json(&["--logs", &g, "--json", "--since", "24h"]);
    let jf = by_fp(&recent, "Job failed: exit code N");
    assert_eq!(jf["count"], 10);
    assert_eq!(jf["sample"], "Job failed: exit code 10");
    assert_eq!(
        by_fp(&recent, "Checking for jobs... forbidden")["level"],
        "error"
    );
    assert_eq!(recent.len(), 2);

    let out = tally(&["--logs", &g]);
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("1 unparsed"), "{s}");
    assert!(s.contains("e.g. Job failed: exit code"), "{s}");
}

/// Issue 20: a line over the reader's 1 MiB limit is counted as
/// oversized (and an error among them still tallied), never dropped
/// silently; text and JSON say so.
#[test]
fn oversized_lines_are_counted() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("r1.log");
    let mut text = String::from("ERROR: before\n");
    text += "level=error msg=\"Job failed: huge\" payload=";
    text += &"p".repeat(3 << 20);
    text += "\n";
    text += &"q".repeat((1 << 20) + 1);
    text += "\nERROR: after\n";
    std::fs::write(&p, text).unwrap();
    let g = p.to_string_lossy().into_owned();
    let out = tally(&["--logs", &g]);
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{s}");
    assert!(
        s.contains(
            "in 4 lines of 1 files, 0 unparsed, 2 oversized (over 1 MiB: only their start read)"
        ),
        "{s}"
    );
    let out = tally(&["--logs", &g, "--json"]);
    assert!(out.status.success());
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(by_fp(&v, "Job failed: huge")["count"], 1);
    assert_eq!(v.len(), 3, "{v:#?}");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("lines: 2 oversized (over 1 MiB: only their start read);"),
        "{e}"
    );
}

#[test]
fn a_glob_matching_nothing_is_a_clear_error() {
    let out = tally(&["--logs", "/nonexistent/dir/*.log"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no log file matches \"/nonexistent/dir/*.log\""),
        "{e}"
    );
    let out = tally(&[]);
    assert!(!out.status.success());
}

/// Issue 19: a user's failing job is a job failure, the runner's own
/// problems (API, system failures) are runner errors, in text and JSON.
#[test]
fn runner_errors_and_job_failures_apart() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("r1.log");
    let t = "2026-11-27T19:00:00Z";
    let line = |level: &str, msg: &str, reason: Option<&str>| {
        let mut m = serde_json::json!({ "level": level, "msg": msg, "time": t });
        if let Some(r) = reason {
            m[ls::FAILURE_REASON] = r.into();
        }
        m.to_string() + "\n"
    };
    let mut text = String::new();
    for i in 1..=5 {
        text += &line(
            "warning",
            &format!("Job failed: exit code {i}"),
            Some("script_failure"),
        );
    }
    text += &line(
        "error",
        "Job failed (system failure): Cannot connect to the Docker daemon",
        Some("runner_system_failure"),
    );
    text += &line("error", ls::msg::CHECKING_FOR_JOBS_FORBIDDEN, None);
    text += &line("error", ls::msg::CHECKING_FOR_JOBS_FORBIDDEN, None);
    // Upstream's text format, no reason: by its wording.
    text += "WARNING: Job failed: execution took longer than 1h0m0s seconds  job=9\n";
    std::fs::write(&p, text).unwrap();
    let g = p.to_string_lossy().into_owned();

    let v = ok_json(&["--logs", &g, "--json"]);
    assert_eq!(by_fp(&v, "Job failed: exit code N")["origin"], "job");
    assert_eq!(
        by_fp(&v, "Job failed: execution took longer than NhNmNs seconds")["origin"],
        "job"
    );
    assert_eq!(
        by_fp(
            &v,
            "Job failed (system failure): Cannot connect to the Docker daemon"
        )["origin"],
        "runner"
    );
    assert_eq!(
        by_fp(&v, ls::msg::CHECKING_FOR_JOBS_FORBIDDEN)["origin"],
        "runner"
    );

    let out = tally(&["--logs", &g]);
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.lines().next().unwrap().contains("FROM"), "{s}");
    let row = s
        .lines()
        .find(|l| l.ends_with("Job failed: exit code N"))
        .unwrap();
    assert!(row.contains(" job "), "{row}");
    let row = s
        .lines()
        .find(|l| l.ends_with(ls::msg::CHECKING_FOR_JOBS_FORBIDDEN))
        .unwrap();
    assert!(row.contains(" runner "), "{row}");
    assert!(s.contains("FROM: 3 runner errors"), "{s}");
    assert!(s.contains("6 job failures"), "{s}");
}
