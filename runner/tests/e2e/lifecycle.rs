use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use crate::support::*;

fn runner(coord: &Coord, name: &str) -> RunnerSetup {
    let setup = RunnerSetup::register(coord, name, &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 3");
    setup.set_global("shutdown_timeout = 10");
    setup.set_runner("unhealthy_interval = \"2s\"");
    setup
}

#[test]
fn coordinator_killed_and_restarted_mid_job_loses_no_trace_byte() {
    let state = tempfile::tempdir().unwrap();
    let mut coord = Coord::start(Some(state.path()));
    let setup = runner(&coord, "restart");
    let r = setup.start();
    // 400 numbered lines over ~8 s.
    let id = coord.enqueue(job(
        "steady",
        &["for i in $(seq 1 400); do echo line-$i; sleep 0.02; done"],
    ));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    wait_until("some trace stored", Duration::from_secs(20), || {
        (coord.job(id)["trace_size"].as_u64().unwrap_or(0) > 500).then_some(())
    });
    let listen = coord.listen.clone();
    coord.kill();
    // Down long enough for several failed patches.
    r.wait_log(
        "Appending trace to coordinator... client error",
        Duration::from_secs(10),
    );
    let coord = Coord::start_on(&listen, Some(state.path()));
    let j = coord.wait_finished(id, Duration::from_secs(60));
    assert_eq!(j["state"], "success", "{j}");
    let trace = coord.trace(id);
    let cmd = "for i in $(seq 1 400); do echo line-$i; sleep 0.02; done";
    let want: String = (1..=400).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(command_output(&trace, cmd)), want);
    assert_eq!(j["checksum"].as_str().unwrap().len(), "crc32:".len() + 8);
}

#[test]
fn sigquit_lets_the_running_job_finish_and_takes_no_new_job() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "graceful");
    let mut r = setup.start();
    let id = coord.enqueue(job("finishing", &["sleep 2", "echo finished-ok"]));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    r.signal(Signal::SIGQUIT);
    r.wait_log("Starting graceful shutdown", Duration::from_secs(5));
    let later = coord.enqueue(job("later", &["echo too-late"]));
    let j = coord.wait_finished(id, Duration::from_secs(30));
    assert_eq!(j["state"], "success", "{j}");
    let status = r.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert_eq!(coord.job(later)["state"], "pending");
    assert!(r.log_text().contains("All workers stopped."));
}

#[test]
fn sigterm_aborts_running_jobs_and_exits_within_shutdown_timeout() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "forceful");
    let mut r = setup.start();
    let pids = setup.dir.path().join("pids");
    // A job that ignores SIGTERM and leaves a background child.
    let script = format!(
        "trap '' TERM; sleep 600 & echo $! > {p}; echo $$ >> {p}; sleep 600",
        p = pids.display()
    );
    let id = coord.enqueue(job("forever", &[&script]));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    let pid_list: Vec<i32> = wait_until("pids written", Duration::from_secs(10), || {
        let v: Vec<i32> = std::fs::read_to_string(&pids)
            .ok()?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        (v.len() == 2).then_some(v)
    });
    r.signal(Signal::SIGTERM);
    let status = r.wait_exit(Duration::from_secs(12));
    assert!(status.success(), "{status:?}");
    // Nothing the job started outlives the runner (zombies, reaped by nobody
    // in a container without an init, count as gone).
    let alive = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| {
                !s.split(") ")
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with('Z'))
            })
            .unwrap_or(false)
    };
    wait_until("job processes gone", Duration::from_secs(5), || {
        pid_list.iter().all(|p| !alive(*p)).then_some(())
    });
    let j = coord.wait_finished(id, Duration::from_secs(5));
    assert_eq!(j["state"], "failed");
    assert_eq!(j["failure_reason"], "runner_system_failure", "{j}");
    assert!(r.log_text().contains("Starting forceful shutdown"));
}

/// During a forceful shutdown that waits (here on a coordinator that stopped
/// answering), a second stop signal exits at once, as gitlab-runner's does.
#[test]
fn second_stop_signal_during_a_forceful_shutdown_exits_at_once() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "second-signal");
    setup.set_global("shutdown_timeout = 60");
    let mut r = setup.start();
    let id = coord.enqueue(job("long", &["sleep 300"]));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    let coord_pid = nix::unistd::Pid::from_raw(coord.child.id() as i32);
    nix::sys::signal::kill(coord_pid, Signal::SIGSTOP).unwrap();
    r.signal(Signal::SIGTERM);
    r.wait_log("Starting forceful shutdown", Duration::from_secs(10));
    // The aborted job's final update now waits on the stopped coordinator.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        r.child.try_wait().unwrap().is_none(),
        "the shutdown did not wait; this test needs it to"
    );
    let t0 = std::time::Instant::now();
    r.signal(Signal::SIGINT);
    r.wait_exit(Duration::from_secs(10));
    nix::sys::signal::kill(coord_pid, Signal::SIGCONT).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let line = r.wait_log(
        "Forced exit with a second stop signal",
        Duration::from_secs(1),
    );
    assert_eq!(line["signal"], "interrupt", "{line}");
}

#[test]
fn sighup_reloads_config_and_bad_reload_keeps_the_old_one() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "reload");
    let r = setup.start();
    let m = r.metrics();
    assert!(m.contains("gitlab_runner_concurrent 3"), "{m}");
    setup.set_global("concurrent = 7");
    r.signal(Signal::SIGHUP);
    wait_until("concurrent 7", Duration::from_secs(10), || {
        r.metrics()
            .contains("gitlab_runner_concurrent 7")
            .then_some(())
    });
    setup.set_global("concurrent = \"lots\"");
    r.signal(Signal::SIGHUP);
    r.wait_log("Failed to load config", Duration::from_secs(10));
    assert!(r.metrics().contains("gitlab_runner_concurrent 7"));
    let id = coord.enqueue(job("after-reload", &["echo alive"]));
    assert_eq!(
        coord.wait_finished(id, Duration::from_secs(30))["state"],
        "success"
    );
    // A reload to a file without runners (truncated): applied, and said.
    std::fs::write(&setup.config, "concurrent = 7\n").unwrap();
    r.signal(Signal::SIGHUP);
    let line = r.wait_log(
        termgate::logschema::msg::CONFIG_WITHOUT_RUNNERS,
        Duration::from_secs(10),
    );
    assert_eq!(line["level"], "warning", "{line}");
}

/// A SIGHUP while the runner is still starting (a `systemctl reload` right
/// after a start) is applied once it runs; it does not kill it. Startup is
/// held at a known point: the stale-resource cleanup of a Docker runner,
/// whose engine here is a socket that accepts and does not answer.
#[test]
fn sighup_while_starting_reloads_instead_of_killing() {
    use std::os::unix::net::UnixListener;
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(
        &coord,
        "hup-at-start",
        &[
            "--executor",
            "docker",
            "--docker-image",
            "none",
            "--run-untagged",
        ],
    );
    let sock = setup.dir.path().join("slow-docker.sock");
    let engine = UnixListener::bind(&sock).unwrap();
    setup.edit(|t| {
        t.replace(
            "[runners.docker]\n",
            &format!("[runners.docker]\n  host = \"unix://{}\"\n", sock.display()),
        )
    });
    let config = setup.config.clone();
    // The setup owns the runner's directory: it comes back with the runner.
    let starting = std::thread::spawn(move || {
        let r = setup.start();
        (setup, r)
    });
    // The runner is in its startup once it dials the engine.
    let (held, _) = engine.accept().unwrap();
    let needle = config.to_string_lossy().into_owned();
    let pid = wait_until("the runner's pid", Duration::from_secs(5), || {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmd)
                .contains(&needle)
                .then_some(pid)
        })
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    drop(engine);
    // `start` panics if the runner exited while starting.
    let (_setup, r) = starting
        .join()
        .expect("the runner survived a SIGHUP while starting");
    // Once at start, once for the reload.
    r.wait_config_loaded(2, Duration::from_secs(10));
}

/// `shutdown_timeout` is read from the config in force when the stop signal
/// comes, so a reload changes it, as in gitlab-runner.
#[test]
fn shutdown_timeout_follows_a_reload() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "reload-shutdown");
    let mut r = setup.start();
    setup.set_global("shutdown_timeout = 7");
    r.signal(Signal::SIGHUP);
    // Once at start, once for the reload.
    r.wait_config_loaded(2, Duration::from_secs(10));
    r.signal(Signal::SIGTERM);
    r.wait_exit(Duration::from_secs(15));
    let line = r.wait_log("Starting forceful shutdown", Duration::from_secs(1));
    assert_eq!(line["shutdown_timeout_s"], 7, "{line}");
    assert_eq!(line["signal"], "terminated", "{line}");
}

#[test]
fn metrics_pass_promtool_and_job_gauge_follows_the_job() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "metrics");
    let r = setup.start();
    let gate = setup.dir.path().join("gate");
    let id = coord.enqueue(json!({"name": "gated", "script": [format!("while [ ! -e {} ]; do sleep 0.1; done", gate.display())]}));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    let running = wait_until("jobs gauge in step_script", Duration::from_secs(10), || {
        let m = r.metrics();
        m.lines()
            .find(|l| {
                l.starts_with("gitlab_runner_jobs{")
                    && l.contains("stage=\"step_script\"")
                    && l.contains("state=\"running\"")
                    && l.ends_with(" 1")
            })
            .map(str::to_owned)
    });
    assert!(running.contains("runner_name=\"metrics\""), "{running}");
    let list = http()
        .get(format!("{}/debug/jobs/list", r.metrics_url))
        .send()
        .unwrap();
    assert_eq!(list.headers()["x-list-version"], "2");
    let body = list.text().unwrap();
    assert!(
        body.contains(&format!("/-/jobs/{id} state=running stage=step_script")),
        "{body}"
    );
    std::fs::write(&gate, b"").unwrap();
    coord.wait_finished(id, Duration::from_secs(30));
    wait_until(
        "job gone from the gauge, counted in totals",
        Duration::from_secs(10),
        || {
            let m = r.metrics();
            (!m.lines()
                .any(|l| l.starts_with("gitlab_runner_jobs{") && !l.ends_with(" 0"))
                && m.lines()
                    .any(|l| l.starts_with("gitlab_runner_jobs_total{") && l.ends_with(" 1")))
            .then_some(())
        },
    );
    let text = r.metrics();
    for name in [
        "gitlab_runner_concurrent",
        "gitlab_runner_limit",
        "gitlab_runner_errors_total",
        "gitlab_runner_api_request_statuses_total",
        "gitlab_runner_api_request_duration_seconds_bucket",
        "gitlab_runner_job_duration_seconds_bucket",
        "gitlab_runner_version_info",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    promtool_check(&text);
    assert_eq!(
        http()
            .get(format!("{}/health/ready", r.metrics_url))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{}/debug/process/state", r.metrics_url))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "running"
    );
    assert_eq!(
        http()
            .post(format!("{}/metrics", r.metrics_url))
            .send()
            .unwrap()
            .status(),
        405
    );
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var("TERMGATE_REQUIRE_PROMTOOL").is_err(),
            "promtool is required but not installed"
        );
        eprintln!("promtool not installed: skipping the promtool check");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tokens_never_appear_in_logs() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "secrets");
    let r = setup.start();
    let id = coord.enqueue(job("tok", &["echo \"$CI_JOB_TOKEN\"", "exit 1"]));
    coord.wait_finished(id, Duration::from_secs(30));
    r.wait_log("Job failed", Duration::from_secs(10));
    let cfg = std::fs::read_to_string(&setup.config).unwrap();
    let runner_token = cfg
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("token = \"")
                .map(|t| t.trim_end_matches('"').to_string())
        })
        .unwrap();
    let job_token = coord.job(id)["token"].as_str().unwrap().to_string();
    let log = r.log_text();
    for (what, secret) in [
        ("registration", coord.registration_token.as_str()),
        ("runner", &runner_token),
        ("job", &job_token),
    ] {
        assert!(!secret.is_empty());
        assert!(!log.contains(secret), "{what} token leaked into the log");
    }
    let trace = String::from_utf8_lossy(&coord.trace(id)).to_string();
    assert!(!trace.contains(&job_token), "job token in trace");
}

/// `run -c config.toml -d DIR`: `-c` is relative to where the command was
/// started (issue 19), not to `-d`: the runner starts and runs a job there.
#[test]
fn a_relative_config_is_found_before_changing_to_the_working_directory() {
    let coord = Coord::start(None);
    let setup = runner(&coord, "relative");
    let workdir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(termgate_test_support::procs::runner_bin());
    cmd.current_dir(setup.dir.path());
    let mut r = RunnerProc::start_cmd(
        &mut cmd,
        std::path::Path::new("config.toml"),
        workdir.path(),
    );
    let id = coord.enqueue(job("rel", &["echo ok"]));
    let done = coord.wait_finished(id, Duration::from_secs(60));
    assert_eq!(done["state"], "success", "{done}");
    r.signal(Signal::SIGTERM);
    r.wait_exit(Duration::from_secs(30));
}

/// A forceful shutdown ends within `shutdown_timeout` even when the
/// coordinator is gone and the aborted job's final update keeps failing
/// (found by the README walkthrough: issue 19).
#[test]
fn sigterm_with_the_coordinator_gone_exits_within_shutdown_timeout() {
    let mut coord = Coord::start(None);
    let setup = runner(&coord, "coordinator-gone");
    setup.set_global("shutdown_timeout = 4");
    let mut r = setup.start();
    let id = coord.enqueue(job("long", &["sleep 300"]));
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    coord.kill();
    let t0 = std::time::Instant::now();
    r.signal(Signal::SIGTERM);
    let status = r.wait_exit(Duration::from_secs(15));
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "exited after {:?} with shutdown_timeout = 4: {status:?}\n{}",
        t0.elapsed(),
        r.log_text()
    );
}

/// The value of the sample `name{…runner="short"…}` in `/metrics`.
fn runner_gauge(r: &RunnerProc, name: &str, short: &str) -> Option<f64> {
    let needle = format!("runner=\"{short}\"");
    r.metrics()
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A runner whose job requests keep failing is disabled for
/// `unhealthy_interval` (upstream's line), and says until when: a warning
/// with `resumes_at` and two gauges; when the pause is over it says it
/// resumed and takes jobs again.
#[test]
fn a_disabled_runner_says_until_when_and_resumes() {
    use termgate::logschema::{self as schema, msg};
    use termgate::metrics::{UNHEALTHY, UNHEALTHY_UNTIL_TIMESTAMP_SECONDS};

    let state = tempfile::tempdir().unwrap();
    let mut coord = Coord::start(Some(state.path()));
    let setup = runner(&coord, "unhealthy");
    setup.set_runner("unhealthy_requests_limit = 2");
    setup.set_runner("unhealthy_interval = \"4s\"");
    let r = setup.start();
    let short = r.wait_log(msg::CHECKING_FOR_JOBS_NO_CONTENT, Duration::from_secs(20))
        [schema::RUNNER]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(runner_gauge(&r, UNHEALTHY, &short), Some(0.0));
    assert_eq!(
        runner_gauge(&r, UNHEALTHY_UNTIL_TIMESTAMP_SECONDS, &short),
        Some(0.0)
    );

    let listen = coord.listen.clone();
    coord.kill();
    let before = chrono::Utc::now();
    let line = r.wait_log(msg::RUNNER_DISABLED, Duration::from_secs(20));
    assert_eq!(line[schema::LEVEL], "warning", "{line}");
    assert_eq!(line[schema::RUNNER], short.as_str(), "{line}");
    assert_eq!(line[schema::RUNNER_NAME], "unhealthy", "{line}");
    let resumes_at =
        chrono::DateTime::parse_from_rfc3339(line[schema::RESUMES_AT].as_str().unwrap()).unwrap();
    let ahead = resumes_at.timestamp() - before.timestamp();
    assert!(
        (3..=7).contains(&ahead),
        "resumes {ahead}s after the kill: {line}"
    );
    let upstream = r.wait_log(
        "is unhealthy and will be disabled for 4s seconds!",
        Duration::from_secs(1),
    );
    assert_eq!(upstream[schema::UNHEALTHY_REQUESTS], 2, "{upstream}");
    assert_eq!(runner_gauge(&r, UNHEALTHY, &short), Some(1.0));
    assert_eq!(
        runner_gauge(&r, UNHEALTHY_UNTIL_TIMESTAMP_SECONDS, &short),
        Some(resumes_at.timestamp() as f64)
    );

    let coord = Coord::start_on(&listen, Some(state.path()));
    r.wait_log(msg::RUNNER_RESUMED, Duration::from_secs(20));
    assert_eq!(runner_gauge(&r, UNHEALTHY, &short), Some(0.0));
    let id = coord.enqueue(job("after-the-pause", &["echo resumed"]));
    let j = coord.wait_finished(id, Duration::from_secs(30));
    assert_eq!(j["state"], "success", "{j}");
}
