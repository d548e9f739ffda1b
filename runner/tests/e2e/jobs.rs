use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

fn shell_runner(coord: &Coord, name: &str) -> (RunnerSetup, RunnerProc) {
    let setup = RunnerSetup::register(coord, name, &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 4");
    setup.set_runner("output_limit = 65536");
    let r = setup.start();
    (setup, r)
}

#[test]
fn trace_is_byte_exact_for_20mb_and_invalid_utf8() {
    let coord = Coord::start(None);
    let (_s, _r) = shell_runner(&coord, "bytes");
    // ~20.9 MB of numbers, then bytes that are not UTF-8.
    let big = coord.enqueue(job(
        "big",
        &["seq 1 3000000", "printf 'a\\377\\376\\200b\\n'"],
    ));
    let j = coord.wait_finished(big, Duration::from_secs(120));
    assert_eq!(j["state"], "success", "{j}");
    let trace = coord.trace(big);
    let mut want = Vec::new();
    for i in 1..=3_000_000u32 {
        want.extend_from_slice(format!("{i}\n").as_bytes());
    }
    assert!(want.len() > 20_000_000);
    let got = command_output(&trace, "seq 1 3000000");
    assert_eq!(got.len(), want.len(), "seq output length");
    assert!(got == want.as_slice(), "seq output differs");
    assert_eq!(
        command_output(&trace, "printf 'a\\377\\376\\200b\\n'"),
        b"a\xff\xfe\x80b\n"
    );
    // The coordinator's stored size and checksum are what the runner sent.
    assert_eq!(j["trace_size"].as_u64().unwrap() as usize, trace.len());
    assert_eq!(j["checksum"], format!("crc32:{:08x}", crc32(&trace)));
}

fn crc32(b: &[u8]) -> u32 {
    // Small local CRC-32 (IEEE) so the test does not share the runner's code.
    let mut crc = 0xffff_ffffu32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn exit_codes_failure_reasons_after_script_and_masking() {
    let coord = Coord::start(None);
    let (_s, r) = shell_runner(&coord, "results");
    let ok = coord.enqueue(json!({
        "name": "ok",
        "script": ["echo \"id=$CI_JOB_ID key=$MY_KEY\"", "echo \"secret=$SECRET_V\"", "cat \"$FILE_V\""],
        "variables": {
            "MY_KEY": "plain-value",
            "SECRET_V": {"value": "hunter2-very-secret", "masked": true},
            "FILE_V": {"value": "file-contents-here", "file": true}
        }
    }));
    let fail = coord.enqueue(json!({"name": "fail", "script": ["echo before", "exit 3", "echo never"], "after_script": ["echo after-ran"]}));
    let allowed =
        coord.enqueue(json!({"name": "allowed", "script": ["exit 4"], "allow_failure": true}));
    let timeout = coord.enqueue(json!({"name": "slow", "script": ["sleep 30"], "timeout": 2}));

    let j = coord.wait_finished(ok, Duration::from_secs(30));
    assert_eq!(j["state"], "success", "{j}");
    assert_eq!(j["exit_code"], 0);
    let t = String::from_utf8_lossy(&coord.trace(ok)).to_string();
    assert!(t.contains(&format!("id={ok} key=plain-value")), "{t}");
    assert!(
        t.contains("secret=[MASKED]") && !t.contains("hunter2-very-secret"),
        "{t}"
    );
    assert!(t.contains("file-contents-here"), "{t}");
    assert!(t.contains("Job succeeded"));

    let j = coord.wait_finished(fail, Duration::from_secs(30));
    assert_eq!(j["state"], "failed");
    assert_eq!(j["failure_reason"], "script_failure");
    assert_eq!(j["exit_code"], 3);
    let t = String::from_utf8_lossy(&coord.trace(fail)).to_string();
    assert!(
        t.contains("before") && !t.contains("\nnever\n") && t.contains("after-ran"),
        "{t}"
    );
    assert!(t.contains("ERROR: Job failed: exit code 3"), "{t}");

    // Job-level allow_failure is GitLab's (pipeline) business: the runner
    // still reports the failure and its exit code.
    let j = coord.wait_finished(allowed, Duration::from_secs(30));
    assert_eq!(j["state"], "failed", "{j}");
    assert_eq!(j["exit_code"], 4);

    let j = coord.wait_finished(timeout, Duration::from_secs(30));
    assert_eq!(j["state"], "failed");
    assert_eq!(j["failure_reason"], "job_execution_timeout", "{j}");
    assert!(String::from_utf8_lossy(&coord.trace(timeout))
        .contains("execution took longer than 2s seconds"));

    let warn = r.wait_log("Job failed: exit code 3", Duration::from_secs(5));
    assert_eq!(warn["level"], "warning");
    assert_eq!(warn["failure_reason"], "script_failure", "{warn}");
    assert_eq!(warn["job"], fail);
    assert_eq!(warn["runner_name"], "results");
    let received = r.wait_log("Checking for jobs... received", Duration::from_secs(5));
    assert_eq!(received["runner_name"], "results", "{received}");
    assert!(
        received["runner"].as_str().is_some_and(|s| s.len() == 9),
        "{received}"
    );
    r.wait_log("Job succeeded", Duration::from_secs(5));
}

#[test]
fn cancel_kills_the_whole_process_group_quickly() {
    let coord = Coord::start(None);
    let (setup, r) = shell_runner(&coord, "cancel");
    let pids = setup.dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! > {p}; sh -c 'echo $$ >> {p}; sleep 300'",
        p = pids.display()
    );
    let id = coord.enqueue(json!({"name": "long", "script": [script]}));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    let pid_list = wait_until("pids written", Duration::from_secs(10), || {
        let s = std::fs::read_to_string(&pids).ok()?;
        let v: Vec<i32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        (v.len() == 2).then_some(v)
    });
    let alive = |p: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok();
    assert!(pid_list.iter().all(|p| alive(*p)));
    let t0 = Instant::now();
    coord.cancel(id);
    // The runner learns of the cancel at its next trace update (interval 1 s
    // here), then has 2 s to kill everything.
    wait_until("processes killed", Duration::from_secs(4), || {
        pid_list.iter().all(|p| !alive(*p)).then_some(())
    });
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let line = r.wait_log("Job failed: canceled", Duration::from_secs(10));
    // GitLab has no failure reason for a cancel: no empty field either.
    assert!(line.get("failure_reason").is_none(), "{line}");
    assert_eq!(coord.job(id)["state"], "canceled");
    // The metric counts the cancel as the job's, not as an unknown (runner)
    // failure: the console's ERR/min runner must not rise (issue 19).
    let m = r.metrics();
    let failed: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("gitlab_runner_failed_jobs_total{"))
        .collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("failure_reason=\"job_canceled\"") && l.ends_with(" 1")),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|l| l.contains("unknown_failure")),
        "{failed:?}"
    );
}

#[test]
fn malformed_job_fails_as_system_failure_and_runner_keeps_serving() {
    let coord = Coord::start(None);
    let (_s, r) = shell_runner(&coord, "malformed");
    let bad = coord.enqueue_raw(json!({"steps": "this is not a list", "variables": 42}));
    let j = coord.wait_finished(bad, Duration::from_secs(30));
    assert_eq!(j["state"], "failed");
    assert_eq!(j["failure_reason"], "runner_system_failure", "{j}");
    let line = r.wait_log("Job failed (system failure)", Duration::from_secs(5));
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"]
            .as_str()
            .unwrap()
            .contains("invalid job payload"),
        "{line}"
    );
    let good = coord.enqueue(job("after", &["echo still-serving"]));
    assert_eq!(
        coord.wait_finished(good, Duration::from_secs(30))["state"],
        "success"
    );
}
