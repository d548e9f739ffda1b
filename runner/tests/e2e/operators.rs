//! On-call access end to end: a real runner whose session server has
//! operators (`termgate-runner operator add`), real WebSocket clients for the
//! user (`/exec`) and the operators (`/observe`, `/join`, `/shell`,
//! `/sessions`).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;
use crate::term_client::{pinned_tls, Connect, Term};

const SECS: Duration = Duration::from_secs(1);

/// A runner with a session server and two operators: `alice` (control) and
/// `bob` (observe).
pub struct OpRunner {
    pub setup: RunnerSetup,
    pub runner: RunnerProc,
    pub control: String,
    pub observe: String,
}

pub fn operator_add(config: &Path, name: &str, role: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args(["operator", "add", name, "--role", role, "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "operator add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("tgo_"), "{token:?}");
    token
}

pub fn op_runner(coord: &Coord, name: &str, session_extra: &str) -> OpRunner {
    let setup = RunnerSetup::register(coord, name, &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 4");
    setup.set_global("shutdown_timeout = 10");
    let ops = setup.dir.path().join("operators.toml");
    setup.edit(|t| {
        format!(
            "{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = 5\n  operators_file = \"{}\"\n{session_extra}\n",
            ops.display()
        )
    });
    let control = operator_add(&setup.config, "alice", "control");
    let observe = operator_add(&setup.config, "bob", "observe");
    let runner = setup.start();
    OpRunner {
        setup,
        runner,
        control,
        observe,
    }
}

/// Enqueue a job and wait until it runs with a session.
pub fn running(coord: &Coord, spec: Value) -> (u64, Value) {
    let id = coord.enqueue(spec);
    let j = wait_until(
        &format!("job {id} running with a session"),
        30 * SECS,
        || {
            let j = coord.job(id);
            (j["state"] == "running" && j["session"]["url"].is_string()).then_some(j)
        },
    );
    (id, j["session"].clone())
}

/// `https://127.0.0.1:PORT` of a session URL.
fn base_of(session: &Value) -> String {
    let url = session["url"].as_str().unwrap();
    url.split("/session/").next().unwrap().to_string()
}

/// `GET /sessions` from `local` (a loopback address of the client's), with
/// `token`: (status, body).
fn get_sessions(session: &Value, token: Option<&str>, local: IpAddr) -> (u16, String) {
    let pem = session["certificate"].as_str().unwrap();
    let client = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(pinned_tls(pem))
        .local_address(local)
        .timeout(10 * SECS)
        .build()
        .unwrap();
    let mut req = client.get(format!("{}/sessions", base_of(session)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    (status, r.text().unwrap())
}

fn lo(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

fn refused(c: Connect) -> u16 {
    match c {
        Ok(_) => panic!("connected, expected a refusal"),
        Err(s) => s,
    }
}

/// Read until `needle` shows up in both outputs.
fn both_see(a: &mut Term, b: &mut Term, needle: &str) {
    a.wait_for(needle, 10 * SECS);
    b.wait_for(needle, 10 * SECS);
}

#[test]
fn an_observer_sees_exactly_what_the_user_sees_and_cannot_type() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "observe", "");
    let (_, session) = running(&coord, job("terminal", &["sleep 120"]));
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    user.send(b"echo first-$((40+2))\n");
    user.wait_for("first-42", 10 * SECS);
    // A late observer gets the screen so far, then live output.
    let mut obs = Term::operator(&session, &r.observe, "observe", None, None).expect("observer");
    obs.wait_for("first-42", 10 * SECS);
    // It cannot type: nothing it sends reaches the shell.
    obs.send(b"echo obs-$((20+22))\n");
    user.send(b"echo second-$((1+1))\n");
    both_see(&mut user, &mut obs, "second-2");
    user.send(b"echo third-$((1+2))\n");
    both_see(&mut user, &mut obs, "third-3");
    assert_eq!(
        String::from_utf8_lossy(&obs.output),
        String::from_utf8_lossy(&user.output),
        "the observer got exactly the user's bytes"
    );
    assert!(!String::from_utf8_lossy(&user.output).contains("obs-42"));
    // Listed with its role and name.
    let (status, body) = get_sessions(&session, Some(&r.observe), lo(1));
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let s = &list["sessions"][0];
    assert_eq!(s["state"], "active");
    let roles: Vec<(String, Value)> = s["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["role"].as_str().unwrap().to_string(), c["name"].clone()))
        .collect();
    assert!(
        roles.contains(&("interactive".into(), Value::Null)),
        "{roles:?}"
    );
    assert!(
        roles.contains(&("observer".into(), json!("bob"))),
        "{roles:?}"
    );
    obs.close();
    user.close();
}

#[test]
fn a_joined_operator_types_into_the_users_terminal_and_the_user_sees_the_banner() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "join", "");
    let (_, session) = running(&coord, job("terminal", &["sleep 120"]));
    // Nobody at the terminal: nothing to join.
    assert_eq!(
        refused(Term::operator(
            &session,
            &r.control,
            "join",
            Some("INC-7"),
            None
        )),
        409
    );
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    user.send(b"echo ready-$((0+1))\n");
    user.wait_for("ready-1", 10 * SECS);
    let mut op = Term::operator(
        &session,
        &r.control,
        "join",
        Some("INC-7 stuck deploy"),
        None,
    )
    .expect("joined");
    user.wait_for(
        "[termgate] operator alice joined this terminal: INC-7 stuck deploy",
        10 * SECS,
    );
    op.send(b"echo joined-$((40+2))\n");
    user.wait_for("joined-42", 10 * SECS);
    op.wait_for("joined-42", 10 * SECS);
    op.close();
    user.wait_for("[termgate] operator alice left this terminal", 10 * SECS);
    user.close();
}

#[test]
fn a_shell_enters_a_plain_ci_job_without_taking_the_users_seat() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "shell", "");
    let (id, session) = running(
        &coord,
        json!({"name": "stuck", "script": ["sleep 600"], "variables": {"PROBE": "p-123"}}),
    );
    let mut sh = Term::operator(
        &session,
        &r.control,
        "shell",
        Some("INC-9 job hangs"),
        Some("v4.channel.k8s.io"),
    )
    .expect("operator shell");
    assert_eq!(sh.run("echo $CI_JOB_ID", 10 * SECS).trim(), id.to_string());
    assert_eq!(sh.run("echo $PROBE", 10 * SECS).trim(), "p-123");
    let pwd = sh.run("pwd", 10 * SECS);
    assert!(
        pwd.trim()
            .starts_with(r.setup.builds_dir().to_str().unwrap()),
        "{pwd}"
    );
    sh.resize(100, 30);
    assert_eq!(sh.run("stty size", 10 * SECS).trim(), "30 100");
    // The user's seat is still free.
    let mut user = Term::direct(&session, None, None).expect("user terminal beside the shell");
    assert!(user.run("echo u-$((2+3))", 10 * SECS).contains("u-5"));
    user.close();
    sh.close();
    let lines = r.runner.log_lines();
    assert!(lines
        .iter()
        .any(|l| l["event"] == "operator_attached" && l["mode"] == "shell"));
}

#[test]
fn operator_api_refusals_401_429_403_400_404() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "refusals", "");
    let (_, session) = running(&coord, job("terminal", &["sleep 120"]));
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    user.send(b"echo x\n");
    user.wait_for("x", 10 * SECS);
    assert_eq!(
        refused(Term::operator(&session, "nope", "observe", None, None)),
        401
    );
    assert_eq!(
        refused(Term::direct_headers(
            &format!("{}/observe", session["url"].as_str().unwrap()),
            session["certificate"].as_str().unwrap(),
            &[],
            None
        )),
        401
    );
    // The session token is not an operator token.
    let session_token = session["authorization"].as_str().unwrap();
    assert_eq!(
        refused(Term::operator(
            &session,
            session_token,
            "observe",
            None,
            None
        )),
        401
    );
    assert_eq!(get_sessions(&session, None, lo(1)).0, 401);
    // An observer may not join or open a shell.
    assert_eq!(
        refused(Term::operator(
            &session,
            &r.observe,
            "join",
            Some("r"),
            None
        )),
        403
    );
    assert_eq!(
        refused(Term::operator(
            &session,
            &r.observe,
            "shell",
            Some("r"),
            None
        )),
        403
    );
    // Join and shell need a reason.
    assert_eq!(
        refused(Term::operator(&session, &r.control, "join", None, None)),
        400
    );
    assert_eq!(
        refused(Term::operator(&session, &r.control, "shell", None, None)),
        400
    );
    // An unknown session, with a good token.
    let mut other = session.clone();
    other["url"] = json!(format!("{}/session/{}", base_of(&session), "0".repeat(64)));
    assert_eq!(
        refused(Term::operator(&other, &r.observe, "observe", None, None)),
        404
    );

    // A peer that keeps guessing is throttled, with a right token too; the
    // others are not slowed.
    let mut saw_429 = false;
    for _ in 0..30 {
        let (s, _) = get_sessions(&session, Some("tgo_wrong"), lo(2));
        if s == 429 {
            saw_429 = true;
            break;
        }
        assert_eq!(s, 401);
    }
    assert!(saw_429, "repeated failures are throttled");
    assert_eq!(get_sessions(&session, Some(&r.observe), lo(2)).0, 429);
    let t = Instant::now();
    let (s, body) = get_sessions(&session, Some(&r.observe), lo(1));
    assert_eq!(s, 200, "{body}");
    println!(
        "another peer's /sessions while one is throttled: {:?}",
        t.elapsed()
    );

    // Never a token in /sessions or the log.
    assert!(!body.contains(session_token));
    let log = r.runner.log_text();
    for secret in [session_token, r.control.as_str(), r.observe.as_str()] {
        assert!(!log.contains(secret), "a token in the runner's log");
    }
    let rejected: Vec<Value> = r
        .runner
        .log_lines()
        .into_iter()
        .filter(|l| l["event"] == "terminal_rejected")
        .collect();
    for reason in [
        "unauthorized",
        "throttled",
        "forbidden",
        "reason_required",
        "not_found",
    ] {
        assert!(
            rejected.iter().any(|l| l["reason"] == reason),
            "no {reason} rejection logged"
        );
    }
    let metrics = r.runner.metrics();
    assert!(
        metrics.contains("gitlab_runner_session_rejections_total{reason=\"throttled\"}"),
        "{metrics}"
    );
    user.close();
}

#[test]
fn five_observers_and_a_joined_writer_at_once_and_the_audit_trail() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "many", "");
    let (id, session) = running(&coord, job("terminal", &["sleep 120"]));
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    user.send(b"echo go\n");
    user.wait_for("go", 10 * SECS);
    let mut observers: Vec<Term> = (0..5)
        .map(|_| Term::operator(&session, &r.observe, "observe", None, None).expect("observer"))
        .collect();
    let mut op =
        Term::operator(&session, &r.control, "join", Some("INC-12 audit"), None).expect("joined");
    op.send(b"echo together-$((6*7))\n");
    user.wait_for("together-42", 10 * SECS);
    for o in &mut observers {
        o.wait_for("together-42", 10 * SECS);
    }
    for o in observers {
        o.close();
    }
    op.close();
    user.close();
    let detached = wait_until("six operator_detached lines", 10 * SECS, || {
        let d: Vec<Value> = r
            .runner
            .log_lines()
            .into_iter()
            .filter(|l| l["event"] == "operator_detached")
            .collect();
        (d.len() == 6).then_some(d)
    });
    let join = detached.iter().find(|l| l["mode"] == "join").unwrap();
    for field in [
        "operator",
        "role",
        "mode",
        "session",
        "job",
        "project",
        "peer",
        "reason",
        "close_reason",
        "bytes_in",
        "bytes_out",
        "duration_s",
    ] {
        assert!(
            !join[field].is_null(),
            "operator_detached lacks {field}: {join}"
        );
    }
    assert_eq!(join["operator"], "alice");
    assert_eq!(join["role"], "control");
    assert_eq!(join["reason"], "INC-12 audit");
    assert_eq!(join["job"], id);
    assert!(join["bytes_in"].as_u64().unwrap() > 0);
    let attached = r
        .runner
        .log_lines()
        .into_iter()
        .filter(|l| l["event"] == "operator_attached")
        .count();
    assert_eq!(attached, 6);
    let metrics = r.runner.metrics();
    assert!(
        metrics.contains("gitlab_runner_session_operator_connections_total{mode=\"observe\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("gitlab_runner_session_operator_connections_total{mode=\"join\"} 1"));
    let log = r.runner.log_text();
    assert!(!log.contains(&r.control) && !log.contains(&r.observe));
}

/// Round trips of a one-byte echo through the user's terminal, in ms.
fn echo_p99(user: &mut Term, n: usize) -> f64 {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let c = (b'a' + (i % 26) as u8) as char;
        user.output.clear();
        let t = Instant::now();
        user.send(c.to_string().as_bytes());
        user.wait_for(&c.to_string(), 10 * SECS);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    user.send(b"\x15"); // Ctrl-U: forget the typed line
    lat.sort_by(f64::total_cmp);
    lat[(lat.len() * 99 / 100).min(lat.len() - 1)]
}

#[test]
fn a_stalled_observer_is_dropped_and_the_user_keeps_going() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "stalled", "");
    let (_, session) = running(&coord, job("terminal", &["sleep 120"]));
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    user.send(b"stty -echoctl; echo ready\n");
    user.wait_for("ready", 10 * SECS);
    let before = echo_p99(&mut user, 200);
    // An observer that never reads: 200 echoes fit its queue, so it stays
    // attached (and stalled) while the user types.
    let stalled = Term::operator(&session, &r.observe, "observe", None, None).expect("observer");
    let stalled_p99 = echo_p99(&mut user, 200);
    // Far more output than its queue and the socket buffers hold.
    user.send(b"seq 1 2000000; echo flood-$((40+2))-done\n");
    let bytes = user.drain_until("flood-42-done", 120 * SECS);
    assert!(
        bytes > 14_000_000,
        "the user got the whole flood: {bytes} bytes"
    );
    wait_until("the stalled observer dropped", 10 * SECS, || {
        r.runner
            .metrics()
            .contains("gitlab_runner_session_closes_total{reason=\"too_slow\"} 1")
            .then_some(())
    });
    let with = echo_p99(&mut user, 200);
    println!(
        "user echo p99: {before:.3} ms without observers, {stalled_p99:.3} ms ({:.2}x) with a stalled observer attached, {with:.3} ms ({:.2}x) after it was dropped",
        stalled_p99 / before,
        with / before
    );
    let detached = r
        .runner
        .log_lines()
        .into_iter()
        .find(|l| l["event"] == "operator_detached" && l["close_reason"] == "too_slow");
    assert!(detached.is_some(), "the drop is audited");
    drop(stalled);
    user.close();
}

#[test]
fn operators_on_their_own_address_and_exec_alone_on_the_public_one() {
    let coord = Coord::start(None);
    let r = op_runner(
        &coord,
        "split",
        "  operator_listen_address = \"127.0.0.1:0\"\n",
    );
    let line = r.runner.wait_log("Operator API listening", 10 * SECS);
    let op_addr = line["address"].as_str().unwrap().to_string();
    let (_, session) = running(&coord, job("terminal", &["sleep 120"]));
    let public = base_of(&session);
    assert_ne!(public, format!("https://{op_addr}"));
    // The public port: /exec works, the operator API is not there.
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    user.send(b"echo pub-$((1+1))\n");
    user.wait_for("pub-2", 10 * SECS);
    assert_eq!(get_sessions(&session, Some(&r.observe), lo(1)).0, 404);
    assert_eq!(
        refused(Term::operator(&session, &r.observe, "observe", None, None)),
        404
    );
    // The operator address: the operator API, and no /exec.
    let mut internal = session.clone();
    let id = session["url"].as_str().unwrap().rsplit('/').next().unwrap();
    internal["url"] = json!(format!("https://{op_addr}/session/{id}"));
    let (status, body) = get_sessions(&internal, Some(&r.observe), lo(1));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(id));
    let mut obs = Term::operator(&internal, &r.observe, "observe", None, None).expect("observer");
    obs.wait_for("pub-2", 10 * SECS);
    assert_eq!(refused(Term::direct(&internal, None, None)), 404);
    obs.close();
    user.close();
}

/// `asciinema cat FILE` (Debian's reads its terminal, so it runs under
/// `script`, which gives it one); `None` when asciinema is missing and
/// `TERMGATE_REQUIRE_ASCIINEMA` is not set.
fn asciinema_cat(path: &Path) -> Option<String> {
    let have = std::process::Command::new("asciinema")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("TERMGATE_REQUIRE_ASCIINEMA").as_deref() != Ok("1"),
            "TERMGATE_REQUIRE_ASCIINEMA=1 but asciinema is not on PATH"
        );
        eprintln!("skipping the asciinema check: asciinema is not installed (scripts/setup-test-deps.sh installs it)");
        return None;
    }
    let out = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!("asciinema cat {}", path.display()))
        .arg("/dev/null")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "asciinema cat: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_terminal_is_recorded_without_masked_values_and_replays() {
    use std::os::unix::fs::PermissionsExt as _;
    const SECRET: &str = "hunter2-s3cr3t-value";
    let coord = Coord::start(None);
    let rec_dir = tempfile::tempdir().unwrap();
    let r = op_runner(
        &coord,
        "recorded",
        &format!("  recordings_dir = \"{}\"\n", rec_dir.path().display()),
    );
    let (id, session) = running(
        &coord,
        json!({"name": "terminal", "script": ["sleep 120"],
               "variables": {"SECRET": {"value": SECRET, "masked": true}}}),
    );
    let mut user = Term::direct(&session, None, None).expect("user terminal");
    // The user sees the value (it is their job); the recording must not.
    assert_eq!(user.run("echo \"$SECRET\"", 10 * SECS), SECRET);
    user.run("echo user-marker-$((40+2))", 10 * SECS);
    let mut sh = Term::operator(&session, &r.control, "shell", Some("INC-5 recorded"), None)
        .expect("operator shell");
    assert_eq!(sh.run("printf '%s\\n' \"$SECRET\"", 10 * SECS), SECRET);
    sh.run("echo shell-marker-$((40+2))", 10 * SECS);
    sh.close();
    user.close();
    let files = wait_until("two finished recordings", 20 * SECS, || {
        let mut v: Vec<_> = std::fs::read_dir(rec_dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        let done = v.len() == 2
            && v.iter()
                .all(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("marker-42")));
        done.then_some(v)
    });
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("job-{id}-interactive-"))),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("job-{id}-shell-"))),
        "{names:?}"
    );
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains(SECRET),
            "{} holds the masked value",
            f.display()
        );
        let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(header["version"], 2);
        if let Some(shown) = asciinema_cat(f) {
            assert!(shown.contains("marker-42"), "{shown}");
            assert!(shown.contains("[MASKED]"), "{shown}");
            assert!(!shown.contains(SECRET));
        }
    }
}

#[test]
fn watchers_beyond_max_observers_get_503_and_a_freed_place_is_taken_again() {
    let coord = Coord::start(None);
    let r = op_runner(&coord, "max-observers", "  max_observers = 1\n");
    let (_, session) = running(&coord, job("terminal", &["sleep 120"]));
    let first = Term::operator(&session, &r.observe, "observe", None, None).expect("observer");
    assert_eq!(
        refused(Term::operator(&session, &r.observe, "observe", None, None)),
        503
    );
    first.close();
    wait_until("the place freed", 10 * SECS, || {
        Term::operator(&session, &r.observe, "observe", None, None).ok()
    })
    .close();
    let rejected = r
        .runner
        .log_lines()
        .into_iter()
        .any(|l| l["event"] == "terminal_rejected" && l["reason"] == "over_limit");
    assert!(rejected, "the 503 is logged as over_limit");
}
