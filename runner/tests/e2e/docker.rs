//! The Docker executor end to end on the real engine: a local image built
//! from Debian's static busybox (`scripts/build-test-image.sh`), no registry.
//! Without a reachable engine these fail, unless `TERMGATE_SKIP_DOCKER=1`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;
use crate::term_client::Term;

const SECS: Duration = Duration::from_secs(1);
const IMAGE: &str = "termgate-test/busybox:latest";

/// Is the engine there (and the test image built)? `false` means skip.
fn docker_ready() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("TERMGATE_SKIP_DOCKER").as_deref() == Ok("1") {
            eprintln!("skipping: Docker engine not reachable and TERMGATE_SKIP_DOCKER=1");
            return false;
        }
        panic!("Docker engine not reachable (`docker info` failed): start it, or set TERMGATE_SKIP_DOCKER=1 to skip the Docker e2e tests");
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/build-test-image.sh"
    );
    let out = Command::new("bash").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "building the test image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The short token (`runner` label) of the first runner in the config.
fn runner_short(setup: &RunnerSetup) -> String {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token = \""))
        .unwrap()
        .trim_end_matches('"');
    termgate::api::short_token(token)
}

/// The short tokens of every runner in the config.
fn all_shorts(config: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("token = \""))
        .map(|t| termgate::api::short_token(t.trim_end_matches('"')))
        .collect()
}

/// Ids of containers / networks / volumes labelled for the runner.
fn labelled(short: &str) -> Vec<String> {
    let f = format!("label=com.termgate.runner={short}");
    let mut all = Vec::new();
    for kind in [
        vec!["ps", "-aq", "--filter", &f],
        vec!["network", "ls", "-q", "--filter", &f],
        vec!["volume", "ls", "-q", "--filter", &f],
    ] {
        all.extend(docker(&kind).lines().map(str::to_owned));
    }
    all
}

/// Removes whatever a failed test left labelled for a runner, so the suite
/// leaves nothing behind even when an assertion fails mid-job.
struct Sweep(Vec<String>);

impl Drop for Sweep {
    fn drop(&mut self) {
        for short in &self.0 {
            let f = format!("label=com.termgate.runner={short}");
            let run = |args: &[&str]| {
                Command::new("docker")
                    .args(args)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            for id in run(&["ps", "-aq", "--filter", &f]).lines() {
                run(&["rm", "-f", "-v", id]);
            }
            for id in run(&["network", "ls", "-q", "--filter", &f]).lines() {
                run(&["network", "rm", id]);
            }
            for id in run(&["volume", "ls", "-q", "--filter", &f]).lines() {
                run(&["volume", "rm", "-f", id]);
            }
        }
    }
}

fn job_container(short: &str, job: u64) -> String {
    let f1 = format!("label=com.termgate.runner={short}");
    let f2 = format!("label=com.termgate.job.id={job}");
    wait_until("the job container", 30 * SECS, || {
        let out = docker(&["ps", "-q", "--filter", &f1, "--filter", &f2]);
        out.lines().next().map(str::to_owned)
    })
}

/// A registered Docker runner; `docker_keys` go into `[runners.docker]`.
fn docker_runner(coord: &Coord, name: &str, docker_keys: &str, extra: &[&str]) -> RunnerSetup {
    let mut args = vec!["--executor", "docker", "--docker-image", IMAGE];
    args.extend_from_slice(extra);
    if !extra.contains(&"--tag-list") {
        args.push("--run-untagged");
    }
    let setup = RunnerSetup::register(coord, name, &args);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 4");
    setup.set_global("shutdown_timeout = 10");
    setup.edit(|t| {
        t.replace(
            "[runners.docker]\n",
            &format!("[runners.docker]\n{docker_keys}\n"),
        )
    });
    setup
}

fn with_session(setup: &RunnerSetup, session_timeout: u64) {
    setup.edit(|t| {
        format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = {session_timeout}\n")
    });
}

fn trace_text(coord: &Coord, id: u64) -> String {
    String::from_utf8_lossy(&coord.trace(id)).into_owned()
}

fn image_job(name: &str, script: &[&str], pull_policy: &[&str]) -> Value {
    json!({"name": name, "script": script,
           "image": {"name": IMAGE, "pull_policy": pull_policy}})
}

#[test]
fn docker_job_output_exit_code_variables_masking_after_script() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(
        &coord,
        "docker-jobs",
        "  pull_policy = [\"if-not-present\"]",
        &[],
    );
    let short = runner_short(&setup);
    let _sweep = Sweep(vec![short.clone()]);
    let mut r = setup.start();
    let mut spec = image_job(
        "out",
        &[
            "echo hello from $(cat /etc/hostname | cut -c1-3)xx",
            "echo \"job=$CI_JOB_ID secret=$SECRET dir=$PWD\"",
            "cat \"$CONF\"",
            "exit 3",
        ],
        &["if-not-present"],
    );
    spec["variables"] = json!({"SECRET": {"value": "hunter2-topsecret", "masked": true},
                               "CONF": {"value": "file-content-42", "file": true}});
    spec["after_script"] = json!(["echo after-ran"]);
    let id = coord.enqueue(spec);
    let j = coord.wait_finished(id, 60 * SECS);
    let trace = trace_text(&coord, id);
    assert_eq!(j["state"], "failed", "{trace}");
    assert_eq!(j["failure_reason"], "script_failure", "{j}");
    assert_eq!(j["exit_code"], 3, "{j}");
    assert!(
        trace.contains("Using Docker executor with image termgate-test/busybox:latest"),
        "{trace}"
    );
    assert!(
        trace.contains("Using locally found image version"),
        "no pull: {trace}"
    );
    assert!(!trace.contains("Pulling docker image"), "{trace}");
    assert!(trace.contains("hello from "), "{trace}");
    assert!(
        trace.contains(&format!("job={id} secret=[MASKED] dir=/builds/")),
        "{trace}"
    );
    assert!(!trace.contains("hunter2-topsecret"), "{trace}");
    assert!(trace.contains("file-content-42"), "{trace}");
    assert!(trace.contains("after-ran"), "{trace}");
    assert!(trace.contains("ERROR: Job failed: exit code 3"), "{trace}");

    // A passing job on the same runner.
    let ok = coord.enqueue(image_job(
        "ok",
        &["test \"$(id -u)\" = 0", "echo fine"],
        &["if-not-present"],
    ));
    let j = coord.wait_finished(ok, 60 * SECS);
    assert_eq!(j["state"], "success", "{}", trace_text(&coord, ok));
    wait_until("job resources removed", 15 * SECS, || {
        labelled(&short).is_empty().then_some(())
    });
    r.signal(nix::sys::signal::Signal::SIGTERM);
    r.wait_exit(20 * SECS);
}

#[test]
fn docker_inspect_shows_hardening_and_cancel_removes_the_container() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(
        &coord,
        "docker-hardened",
        "  pull_policy = [\"if-not-present\"]\n  memory = \"256m\"\n  cpus = \"0.5\"",
        &[],
    );
    let short = runner_short(&setup);
    let _sweep = Sweep(vec![short.clone()]);
    let r = setup.start();
    let id = coord.enqueue(job("long", &["echo started", "sleep 1800"]));
    coord.wait_state(id, &["running"], 30 * SECS);
    let cid = job_container(&short, id);
    wait_until("script started", 30 * SECS, || {
        trace_text(&coord, id).contains("started").then_some(())
    });
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &cid])).unwrap();
    let hc = &inspect[0]["HostConfig"];
    assert_eq!(hc["Privileged"], false, "{hc}");
    assert_eq!(hc["CapDrop"], json!(["ALL"]), "{hc}");
    let caps: Vec<&str> = hc["CapAdd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        caps,
        termgate_runner::executor::docker::hardening::MINIMAL_CAPS.to_vec(),
        "{hc}"
    );
    assert!(
        hc["SecurityOpt"]
            .as_array()
            .unwrap()
            .contains(&json!("no-new-privileges")),
        "{hc}"
    );
    assert_eq!(
        hc["PidsLimit"],
        termgate_runner::executor::docker::hardening::DEFAULT_PIDS_LIMIT,
        "{hc}"
    );
    assert_eq!(hc["Memory"], 256 * 1024 * 1024, "{hc}");
    assert_eq!(hc["NanoCpus"], 500_000_000, "{hc}");
    let net = hc["NetworkMode"].as_str().unwrap();
    assert!(net.starts_with("termgate-") && net != "host", "{net}");
    let mounts = inspect[0]["Mounts"].to_string();
    assert!(!mounts.contains("docker.sock"), "{mounts}");
    assert_eq!(
        inspect[0]["Config"]["Labels"]["com.termgate.job.id"],
        id.to_string()
    );
    // Inside: no effective capabilities beyond the minimal set, NoNewPrivs.
    let status = docker(&["exec", &cid, "cat", "/proc/self/status"]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')),
        "{status}"
    );

    // The job's executor stage while its script runs.
    let m = r.metrics();
    assert!(
        m.lines().any(|l| l.starts_with("gitlab_runner_jobs{")
            && l.contains("executor_stage=\"docker_run\"")
            && l.ends_with(" 1")),
        "{m}"
    );

    // Cancel: the container is stopped and removed within 5 s.
    let t0 = Instant::now();
    coord.cancel(id);
    wait_until("container removed after cancel", 5 * SECS, || {
        labelled(&short)
            .iter()
            .all(|x| x != &cid && !cid.starts_with(x.as_str()))
            .then_some(())
    });
    assert!(t0.elapsed() <= 5 * SECS);
    let j = coord.wait_finished(id, 15 * SECS);
    assert_eq!(j["state"], "canceled", "{j}");
    wait_until("all job resources removed", 10 * SECS, || {
        labelled(&short).is_empty().then_some(())
    });
    drop(r);
}

#[test]
fn docker_web_terminal_runs_as_root_resizes_and_holds_after_the_script() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(
        &coord,
        "docker-term",
        "  pull_policy = [\"if-not-present\"]",
        &[],
    );
    with_session(&setup, 8);
    let short = runner_short(&setup);
    let _sweep = Sweep(vec![short.clone()]);
    let r = setup.start();

    // A Web IDE style job: the terminal is the point.
    let id = coord.enqueue(job("webide", &["sleep 1800"]));
    coord.wait_state(id, &["running"], 30 * SECS);
    let mut t = wait_until("terminal attached", 30 * SECS, || {
        Term::workhorse(&coord.url, id, "terminal.gitlab.com").ok()
    });
    assert_eq!(t.run("id -u", 15 * SECS), "0");
    let pwd = t.run("echo \"$CI_JOB_ID $PWD\"", 10 * SECS);
    assert!(pwd.starts_with(&format!("{id} /builds/")), "{pwd}");
    t.close();
    // Resize: a v4.channel.k8s.io client straight to the session server.
    let session = coord.job(id)["session"].clone();
    let mut k = wait_until("k8s terminal attached", 10 * SECS, || {
        Term::direct(&session, Some("v4.channel.k8s.io"), None).ok()
    });
    assert_eq!(k.run("stty size", 10 * SECS), "24 80");
    k.resize(101, 37);
    assert_eq!(k.run("stty size", 10 * SECS), "37 101");
    k.resize(132, 50);
    assert_eq!(k.run("stty size", 10 * SECS), "50 132");
    coord.cancel(id);
    let j = coord.wait_finished(id, 15 * SECS);
    assert_eq!(j["state"], "canceled");

    // The container outlives the script: a connected terminal holds the job.
    let id = coord.enqueue(job("short", &["sleep 2"]));
    coord.wait_state(id, &["running"], 30 * SECS);
    let mut t = wait_until("terminal attached", 30 * SECS, || {
        Term::workhorse(&coord.url, id, "terminal.gitlab.com").ok()
    });
    assert_eq!(t.run("echo attached", 15 * SECS), "attached");
    wait_until("hold message", 20 * SECS, || {
        trace_text(&coord, id)
            .contains("Terminal is connected, will time out in")
            .then_some(())
    });
    assert_eq!(coord.job(id)["state"], "running");
    assert_eq!(
        t.run("echo still-here-$((40+2))", 10 * SECS),
        "still-here-42"
    );
    let (_code, reason) = t.wait_close(15 * SECS);
    assert_eq!(reason, "session_timeout");
    let j = coord.wait_finished(id, 15 * SECS);
    assert_eq!(j["state"], "success", "{}", trace_text(&coord, id));
    wait_until("job resources removed", 15 * SECS, || {
        labelled(&short).is_empty().then_some(())
    });
    drop(r);
}

#[test]
fn engine_faults_fail_docker_jobs_while_a_shell_job_succeeds() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    // One process, three runners: an unreachable engine, a real one, shell.
    let setup = docker_runner(
        &coord,
        "dead-engine",
        "  host = \"unix:///nonexistent/docker.sock\"",
        &["--tag-list", "dead"],
    );
    setup.add_runner(
        &coord,
        "real-engine",
        &[
            "--executor",
            "docker",
            "--docker-image",
            IMAGE,
            "--tag-list",
            "docker",
        ],
    );
    setup.add_runner(
        &coord,
        "shell",
        &["--executor", "shell", "--tag-list", "shell"],
    );
    let _sweep = Sweep(all_shorts(&setup.config));
    let r = setup.start();

    let shell = coord.enqueue(
        json!({"name": "shell", "tags": ["shell"], "script": ["sleep 3", "echo shell-ok"]}),
    );
    let dead = coord.enqueue(json!({"name": "dead", "tags": ["dead"], "script": ["echo never"]}));
    let missing = coord.enqueue(
        json!({"name": "missing", "tags": ["docker"], "script": ["echo never"],
        "image": "termgate-test/does-not-exist:1"}),
    );

    let j = coord.wait_finished(dead, 60 * SECS);
    let trace = trace_text(&coord, dead);
    assert_eq!(j["state"], "failed", "{trace}");
    assert_eq!(j["failure_reason"], "runner_system_failure", "{j}");
    assert!(
        trace.contains("Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock"),
        "{trace}"
    );

    let j = coord.wait_finished(missing, 60 * SECS);
    let trace = trace_text(&coord, missing);
    assert_eq!(j["state"], "failed", "{trace}");
    assert_eq!(j["failure_reason"], "image_pull_failure", "{j}");
    assert!(
        trace.contains("Pulling docker image termgate-test/does-not-exist:1"),
        "{trace}"
    );
    assert!(trace.contains("failed to pull image \"termgate-test/does-not-exist:1\" with specified policies [\"always\"]"), "{trace}");

    let j = coord.wait_finished(shell, 60 * SECS);
    assert_eq!(j["state"], "success", "{}", trace_text(&coord, shell));
    assert!(trace_text(&coord, shell).contains("shell-ok"));
    r.wait_log("Cannot connect to the Docker daemon", 5 * SECS);
    let log = r.log_text();
    assert!(log.contains("image_pull_failure"), "{log}");
    // Nothing is left of any of the runners' jobs.
    for s in all_shorts(&setup.config) {
        assert!(labelled(&s).is_empty(), "left over for {s}");
    }
    drop(r);
}

#[test]
fn stale_labelled_containers_are_removed_at_start() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(&coord, "stale", "  pull_policy = [\"if-not-present\"]", &[]);
    let short = runner_short(&setup);
    let _sweep = Sweep(vec![short.clone()]);
    let l1 = "com.termgate.managed=true".to_string();
    let l2 = format!("com.termgate.runner={short}");
    docker(&[
        "create", "--label", &l1, "--label", &l2, IMAGE, "sleep", "60",
    ]);
    docker(&[
        "network",
        "create",
        "--label",
        &l1,
        "--label",
        &l2,
        &format!("termgate-stale-{short}"),
    ]);
    docker(&["volume", "create", "--label", &l1, "--label", &l2]);
    assert_eq!(labelled(&short).len(), 3);
    let r = setup.start();
    wait_until("stale resources removed", 30 * SECS, || {
        labelled(&short).is_empty().then_some(())
    });
    r.wait_log("Removed stale Docker resources", 5 * SECS);
    drop(r);
}

#[test]
fn docker_step_timeout_kills_the_script_and_after_script_still_runs() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(
        &coord,
        "docker-timeout",
        "  pull_policy = [\"if-not-present\"]",
        &[],
    );
    let short = runner_short(&setup);
    let _sweep = Sweep(vec![short.clone()]);
    let r = setup.start();
    let id = coord.enqueue(json!({"name": "slow", "timeout": 3,
        "script": ["echo before", "sleep 600", "echo never-printed"],
        "after_script": ["echo after-timeout; ps | grep -c 'sleep 600' || true"]}));
    let j = coord.wait_finished(id, 60 * SECS);
    let trace = trace_text(&coord, id);
    assert_eq!(j["state"], "failed", "{trace}");
    assert_eq!(j["failure_reason"], "job_execution_timeout", "{j}");
    assert!(
        trace.contains("before") && !trace.contains("never-printed"),
        "{trace}"
    );
    assert!(trace.contains("after-timeout"), "{trace}");
    wait_until("job resources removed", 15 * SECS, || {
        labelled(&short).is_empty().then_some(())
    });
    drop(r);
}

#[test]
fn docker_host_from_the_environment_is_honoured() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(&coord, "docker-env-host", "", &[]);
    let _sweep = Sweep(vec![runner_short(&setup)]);
    let r = setup.start_with_env(&[(
        "DOCKER_HOST",
        "unix:///nonexistent/from-env.sock".to_string(),
    )]);
    let id = coord.enqueue(job("env-host", &["echo never"]));
    let j = coord.wait_finished(id, 60 * SECS);
    let trace = trace_text(&coord, id);
    assert_eq!(j["failure_reason"], "runner_system_failure", "{j}");
    assert!(
        trace.contains("unix:///nonexistent/from-env.sock"),
        "{trace}"
    );
    drop(r);
}

#[test]
fn an_operator_shell_enters_a_running_docker_job_beside_the_user() {
    if !docker_ready() {
        return;
    }
    let coord = Coord::start(None);
    let setup = docker_runner(
        &coord,
        "docker-op-shell",
        "  pull_policy = [\"if-not-present\"]",
        &[],
    );
    let ops = setup.dir.path().join("operators.toml");
    setup.edit(|t| {
        format!(
            "{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = 5\n  operators_file = \"{}\"\n",
            ops.display()
        )
    });
    let token = crate::operators::operator_add(&setup.config, "oncall", "control");
    let short = runner_short(&setup);
    let _sweep = Sweep(vec![short.clone()]);
    let _r = setup.start();

    // A plain CI job that hangs: no web terminal was asked for.
    let id = coord.enqueue(image_job("stuck", &["sleep 600"], &["if-not-present"]));
    coord.wait_state(id, &["running"], 30 * SECS);
    let container = job_container(&short, id);
    let session = wait_until("the job's session", 30 * SECS, || {
        let s = coord.job(id)["session"].clone();
        s["url"].is_string().then_some(s)
    });
    let mut sh = wait_until("operator shell", 30 * SECS, || {
        Term::operator(
            &session,
            &token,
            "shell",
            Some("INC-3 docker job hangs"),
            Some("v4.channel.k8s.io"),
        )
        .ok()
    });
    // Inside the job's container: its hostname is the container's id, and
    // the job's sleep is right there.
    let host = sh.run("hostname", 15 * SECS);
    assert!(container.starts_with(host.trim()), "{host} vs {container}");
    assert!(sh.run("ps", 10 * SECS).contains("sleep 600"));
    assert_eq!(sh.run("echo $CI_JOB_ID", 10 * SECS), id.to_string());
    // The user's /exec is not blocked by the operator's shell.
    let mut user = Term::direct(&session, None, None).expect("user terminal beside the shell");
    assert_eq!(user.run("echo user-$((3+4))", 15 * SECS), "user-7");
    user.close();
    sh.close();
    coord.cancel(id);
    coord.wait_finished(id, 15 * SECS);
}
