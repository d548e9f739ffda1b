//! Interactive terminals end to end: a real runner with its session server,
//! the coordinator as Workhorse, real WebSocket clients.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::support::*;
use crate::term_client::Term;

const SECS: Duration = Duration::from_secs(1);

fn terminal_runner(
    coord: &Coord,
    name: &str,
    session_timeout: u64,
    concurrent: usize,
) -> (RunnerSetup, RunnerProc) {
    let setup = RunnerSetup::register(coord, name, &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global(&format!("concurrent = {concurrent}"));
    setup.set_global("shutdown_timeout = 10");
    setup.edit(|t| {
        format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = {session_timeout}\n")
    });
    let r = setup.start();
    (setup, r)
}

/// Enqueue a job and wait until it runs with a session.
fn running_job(coord: &Coord, name: &str, script: &[&str]) -> (u64, Value) {
    crate::operators::running(coord, job(name, script))
}

fn trace_text(coord: &Coord, id: u64) -> String {
    String::from_utf8_lossy(&coord.trace(id)).into_owned()
}

fn metric(r: &RunnerProc, line_prefix: &str) -> Option<f64> {
    r.metrics()
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn workhorse_terminal_shows_job_id_and_session_timeout_holds_then_releases() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "hold-timeout", 4, 2);
    let (id, session) = running_job(&coord, "terminal", &["sleep 2"]);
    let url = session["url"].as_str().unwrap();
    let sid = url.rsplit_once("/session/").unwrap().1;
    assert!(
        url.starts_with("https://127.0.0.1:") && sid.len() == 64,
        "{url}"
    );
    assert_eq!(session["authorization"].as_str().unwrap().len(), 64);
    assert!(session["certificate"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    let out = t.run("echo \"job=$CI_JOB_ID\"", 10 * SECS);
    assert!(out.contains(&format!("job={id}")), "{out:?}");
    assert_eq!(
        metric(&r, "gitlab_runner_session_terminals_active"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &r,
            "gitlab_runner_session_websocket_connections{role=\"interactive\"}"
        ),
        Some(1.0)
    );
    // The script ends; the connected terminal holds the job.
    wait_until("hold message", 15 * SECS, || {
        trace_text(&coord, id)
            .contains("Terminal is connected, will time out in 4s...")
            .then_some(())
    });
    assert_eq!(coord.job(id)["state"], "running");
    let t0 = Instant::now();
    let (_code, reason) = t.wait_close(10 * SECS);
    assert_eq!(reason, "session_timeout");
    assert!(t0.elapsed() <= 6 * SECS, "held {:?}", t0.elapsed());
    assert!(
        String::from_utf8_lossy(&t.output).contains("terminal closed"),
        "banner before the close"
    );
    let j = coord.wait_finished(id, 15 * SECS);
    assert_eq!(j["state"], "success");
    assert!(
        trace_text(&coord, id).contains("terminal session timed out (maximum time allowed - 4s)")
    );
    wait_until("closes counted", 5 * SECS, || {
        (metric(
            &r,
            "gitlab_runner_session_closes_total{reason=\"session_timeout\"}",
        ) == Some(1.0))
        .then_some(())
    });
    wait_until("active 0 after the close", 5 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_active") == Some(0.0)).then_some(())
    });
}

/// gitlab-runner hands each build the config of the moment it starts, so a
/// SIGHUP that changes `session_timeout` applies to the jobs after it; a job
/// already running keeps the timeout it started with.
#[test]
fn session_timeout_follows_a_reload() {
    let coord = Coord::start(None);
    let (setup, r) = terminal_runner(&coord, "hold-reload", 1800, 2);
    let (before, _) = running_job(&coord, "before", &["sleep 3"]);
    let mut t1 = Term::workhorse(&coord.url, before, "terminal.gitlab.com").expect("terminal");
    t1.run("true", 10 * SECS);
    setup.edit(|t| t.replace("session_timeout = 1800", "session_timeout = 3"));
    r.signal(Signal::SIGHUP);
    // Once at start, once for the reload.
    r.wait_config_loaded(2, 10 * SECS);
    let (after, _) = running_job(&coord, "after", &["sleep 3"]);
    let mut t2 = Term::workhorse(&coord.url, after, "terminal.gitlab.com").expect("terminal");
    t2.run("true", 10 * SECS);
    for (id, hold) in [(before, "30m0s"), (after, "3s")] {
        wait_until(&format!("job {id} held for {hold}"), 15 * SECS, || {
            trace_text(&coord, id)
                .contains(&format!(
                    "Terminal is connected, will time out in {hold}..."
                ))
                .then_some(())
        });
    }
    let (_code, reason) = t2.wait_close(10 * SECS);
    assert_eq!(reason, "session_timeout");
    assert_eq!(coord.wait_finished(after, 15 * SECS)["state"], "success");
    // The earlier job is still held by its terminal, under its own timeout.
    assert_eq!(coord.job(before)["state"], "running");
    t1.run("true", 10 * SECS);
    drop(t1);
    assert_eq!(coord.wait_finished(before, 15 * SECS)["state"], "success");
}

#[test]
fn client_leaving_releases_the_held_job() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "hold-leave", 1800, 2);
    let (id, _) = running_job(&coord, "terminal", &["sleep 1"]);
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    t.run("true", 10 * SECS);
    wait_until("hold", 15 * SECS, || {
        trace_text(&coord, id)
            .contains("Terminal is connected, will time out in 30m0s...")
            .then_some(())
    });
    t.close();
    let j = coord.wait_finished(id, 10 * SECS);
    assert_eq!(j["state"], "success");
    assert!(trace_text(&coord, id).contains("Terminal disconnected"));
    r.wait_log("Closed active terminal connection", 5 * SECS);
}

#[test]
fn base64_and_k8s_resize_directly_over_pinned_tls() {
    let coord = Coord::start(None);
    let (_s, _r) = terminal_runner(&coord, "protocols", 1, 2);
    let (_, session) = running_job(&coord, "terminal", &["sleep 60"]);
    let mut b =
        Term::direct(&session, Some("base64.terminal.gitlab.com"), None).expect("base64 terminal");
    assert!(b.run("echo b64-$((6*7))", 10 * SECS).contains("b64-42"));
    b.close();
    let mut k = Term::direct(&session, Some("v4.channel.k8s.io"), None).expect("k8s terminal");
    assert_eq!(k.run("stty size", 10 * SECS).trim(), "24 80");
    k.resize(120, 40);
    assert_eq!(k.run("stty size", 10 * SECS).trim(), "40 120");
    k.close();
}

#[test]
fn rejections_have_upstream_status_codes_logs_and_metrics() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "rejects", 1, 2);
    let (_, session) = running_job(&coord, "terminal", &["sleep 60"]);
    let url = session["url"].as_str().unwrap();
    let pem = session["certificate"].as_str().unwrap();
    // 401: wrong token (raw token header; `Bearer x` is wrong too).
    assert_eq!(
        Term::direct(&session, Some("terminal.gitlab.com"), Some("nope")).err(),
        Some(401)
    );
    let bearer = format!("Bearer {}", session["authorization"].as_str().unwrap());
    assert_eq!(
        Term::direct(&session, Some("terminal.gitlab.com"), Some(&bearer)).err(),
        Some(401)
    );
    // 404: unknown session.
    let other = format!(
        "{}/session/{}/exec",
        url.rsplit_once("/session/").unwrap().0,
        "ab".repeat(32)
    );
    assert_eq!(
        Term::direct_url(
            &other,
            pem,
            session["authorization"].as_str(),
            Some("terminal.gitlab.com")
        )
        .err(),
        Some(404)
    );
    // 405: not a WebSocket.
    let https = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(crate::term_client::pinned_tls(pem))
        .build()
        .unwrap();
    let res = https
        .get(format!("{url}/exec"))
        .header("Authorization", session["authorization"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(res.status(), 405);
    // 423: a second interactive client; the first keeps working.
    let mut first = Term::direct(&session, Some("terminal.gitlab.com"), None).expect("first");
    assert_eq!(
        Term::direct(&session, Some("terminal.gitlab.com"), None).err(),
        Some(423)
    );
    assert!(first
        .run("echo still-mine", 10 * SECS)
        .contains("still-mine"));
    for (reason, n) in [
        ("unauthorized", 2.0),
        ("not_found", 1.0),
        ("not_websocket", 1.0),
        ("locked", 1.0),
    ] {
        assert_eq!(
            metric(
                &r,
                &format!("gitlab_runner_session_rejections_total{{reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}"
        );
    }
    for msg in [
        "Authorization header is not valid",
        "Request is not a web socket connection",
        "Terminal already connected, revoking connection",
        "Mux handler not found",
    ] {
        r.wait_log(msg, 5 * SECS);
    }
    let log = r.log_text();
    assert!(
        !log.contains(session["authorization"].as_str().unwrap()),
        "session token logged"
    );
    first.close();
}

#[test]
fn connect_failure_is_500() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "connect-fail", 1, 2);
    // The build directory disappears: a new shell cannot start there.
    let (_, session) = running_job(
        &coord,
        "broken",
        &["cd / && rm -rf \"$CI_PROJECT_DIR\" && sleep 60"],
    );
    let err = wait_until(
        "500 once the build dir is gone",
        10 * SECS,
        || match Term::direct(&session, Some("terminal.gitlab.com"), None) {
            Err(500) => Some(500),
            Ok(t) => {
                t.close();
                None
            }
            Err(other) => panic!("unexpected {other}"),
        },
    );
    assert_eq!(err, 500);
    r.wait_log("Failed to connect to terminal", 5 * SECS);
}

#[test]
fn hundred_megabytes_arrive_complete_and_in_order() {
    let coord = Coord::start(None);
    let (_s, _r) = terminal_runner(&coord, "bulk", 1, 2);
    let (_, session) = running_job(&coord, "terminal", &["sleep 120"]);
    let mut t = Term::direct(&session, Some("terminal.gitlab.com"), None).expect("terminal");
    t.run("stty -echo", 10 * SECS);
    let last: u64 = 12_500_000;
    t.send(format!("seq 1 {last}; echo END-OF-SEQ\n").as_bytes());
    let (next, bytes) = t.check_sequence(last, Duration::from_secs(120));
    assert_eq!(next, last + 1, "every number arrived, in order");
    assert!(bytes >= 100_000_000, "{bytes} bytes");
    t.close();
}

#[test]
fn frames_larger_than_the_proxy_read_buffer_cross_the_workhorse_path_whole() {
    // The coordinator's proxy reads both sides through a small buffer
    // (`session::bridge::CLIENT_READ_BUFFER`); frames bigger than it must
    // still pass whole: a 48 KiB paste in one frame, and output frames of up
    // to 24 KiB from the runner.
    let coord = Coord::start(None);
    let (_s, _r) = terminal_runner(&coord, "proxy-frames", 1, 2);
    let (id, _) = running_job(&coord, "terminal", &["sleep 120"]);
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    t.run("stty -echo", 10 * SECS);
    const PASTE: usize = 48 * 1024;
    const { assert!(PASTE > termgate_runner::session::bridge::CLIENT_READ_BUFFER) };
    // Numbers computed by the shell, so no echo of the typed line matches.
    t.send(b"echo READY-$((6*7)); head -c $((48*1024)) | wc -c; echo PASTED-$((6*8))\n");
    t.wait_for("READY-42", 10 * SECS);
    // 768 lines of 64 bytes (within the tty's line limit), one frame.
    let line = format!("{}\n", "x".repeat(63));
    t.send(line.repeat(PASTE / line.len()).as_bytes());
    let out = t.wait_for("PASTED-48", 20 * SECS);
    assert!(
        out.contains(&format!("{PASTE}\r\n")),
        "wc did not count the whole paste: {out:?}"
    );
    let last: u64 = 1_000_000;
    t.send(format!("seq 1 {last}; echo END-OF-SEQ\n").as_bytes());
    let (next, bytes) = t.check_sequence(last, Duration::from_secs(60));
    assert_eq!(
        next,
        last + 1,
        "every number arrived, in order ({bytes} bytes)"
    );
    t.close();
}

#[test]
fn cancel_closes_the_terminal_at_once() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "cancel-term", 1800, 2);
    let (id, _) = running_job(&coord, "terminal", &["sleep 600"]);
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    t.run("true", 10 * SECS);
    let t0 = Instant::now();
    coord.cancel(id);
    let (_, reason) = t.wait_close(6 * SECS);
    assert_eq!(reason, "job_cancelled");
    assert!(t0.elapsed() < 5 * SECS, "{:?}", t0.elapsed());
    let banner = String::from_utf8_lossy(&t.output).to_string();
    assert!(
        banner.contains("terminal closed") && banner.contains("cancelled"),
        "{banner:?}"
    );
    wait_until("cancel close counted", 5 * SECS, || {
        (metric(
            &r,
            "gitlab_runner_session_closes_total{reason=\"job_cancelled\"}",
        ) == Some(1.0))
        .then_some(())
    });
}

#[test]
fn sigterm_closes_every_terminal_with_the_shutdown_reason() {
    let coord = Coord::start(None);
    let (_s, mut r) = terminal_runner(&coord, "shutdown-term", 1800, 3);
    let (a, _) = running_job(&coord, "t1", &["sleep 600"]);
    let (b, _) = running_job(&coord, "t2", &["sleep 600"]);
    let mut ta = Term::workhorse(&coord.url, a, "terminal.gitlab.com").expect("a");
    let mut tb = Term::workhorse(&coord.url, b, "terminal.gitlab.com").expect("b");
    ta.run("true", 10 * SECS);
    tb.run("true", 10 * SECS);
    r.signal(Signal::SIGTERM);
    assert_eq!(ta.wait_close(10 * SECS).1, "runner_shutdown");
    assert_eq!(tb.wait_close(10 * SECS).1, "runner_shutdown");
    assert!(r.wait_exit(15 * SECS).success());
}

#[test]
fn gauges_follow_sessions_and_available_drops_as_jobs_fill_concurrent() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "gauges", 1, 2);
    wait_until("available 2", 10 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_available") == Some(2.0)).then_some(())
    });
    let (a, _) = running_job(&coord, "t1", &["sleep 600"]);
    wait_until("available 1", 10 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_available") == Some(1.0)).then_some(())
    });
    // The slot is taken before the request; the session is idle once the
    // job arrived.
    wait_until("idle 1", 10 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_idle") == Some(1.0)).then_some(())
    });
    let (_b, _) = running_job(&coord, "t2", &["sleep 600"]);
    wait_until("available 0", 10 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_available") == Some(0.0)).then_some(())
    });
    let mut t = Term::workhorse(&coord.url, a, "terminal.gitlab.com").expect("terminal");
    t.run("true", 10 * SECS);
    assert_eq!(
        metric(&r, "gitlab_runner_session_terminals_active"),
        Some(1.0)
    );
    assert_eq!(
        metric(&r, "gitlab_runner_session_terminals_idle"),
        Some(1.0)
    );
    t.close();
    wait_until("active 0", 10 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_active") == Some(0.0)).then_some(())
    });
    coord.cancel(a);
    wait_until("available 1 again", 15 * SECS, || {
        (metric(&r, "gitlab_runner_session_terminals_available") == Some(1.0)).then_some(())
    });
    let text = r.metrics();
    assert!(
        text.contains("gitlab_runner_session_websocket_connections_total{role=\"interactive\"} 1"),
        "{text}"
    );
    assert!(text.contains("gitlab_runner_session_bytes_total{direction=\"in\"}"));
}

#[test]
fn workhorse_path_pins_the_runner_certificate() {
    let coord = Coord::start(None);
    let (_s, _r) = terminal_runner(&coord, "pinning", 1, 2);
    let (id, session) = running_job(&coord, "terminal", &["sleep 600"]);
    let t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("pinned cert works");
    t.close();
    // A different certificate for the same URL: the proxy must refuse.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let mut forged = session.clone();
    forged["certificate"] = json!(other.cert.pem());
    let res = http()
        .put(format!("{}/admin/jobs/{id}/session", coord.url))
        .json(&forged)
        .send()
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        Term::workhorse(&coord.url, id, "terminal.gitlab.com").err(),
        Some(502)
    );
}

#[test]
fn oversized_frame_closes_only_that_connection() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "oversize", 1, 3);
    let (_, s1) = running_job(&coord, "t1", &["sleep 600"]);
    let (_, s2) = running_job(&coord, "t2", &["sleep 600"]);
    let mut bad = Term::direct(&s1, Some("terminal.gitlab.com"), None).expect("t1");
    let mut good = Term::direct(&s2, Some("terminal.gitlab.com"), None).expect("t2");
    good.run("true", 10 * SECS);
    let big = vec![b'x'; termgate::terminal::DEFAULT_MAX_INPUT_FRAME + 1];
    let _ = bad.send_raw(tokio_tungstenite::tungstenite::Message::Binary(big.into()));
    let (code, reason) = bad.wait_close(10 * SECS);
    assert_eq!(code, 1009, "{reason}");
    assert!(
        reason.contains("frame_too_large") || reason.contains("too large"),
        "{reason}"
    );
    assert!(good
        .run("echo unaffected", 10 * SECS)
        .contains("unaffected"));
    // The close is counted once the server side has finished with it.
    wait_until("frame_too_large counted", 5 * SECS, || {
        r.metrics()
            .contains("gitlab_runner_session_closes_total{reason=\"frame_too_large\"} 1")
            .then_some(())
    });
    good.close();
}

/// `lines` lines of a pasted script, 72 bytes each.
fn pasted_script(lines: usize) -> Vec<u8> {
    let line = b"echo 'the quick brown fox jumps over the lazy dog 0123456789'; # pasted\n";
    assert_eq!(line.len(), 72);
    line.repeat(lines)
}

/// Paste `data` (one frame) into `cat > paste.txt` in the job's shell;
/// returns what `wc -c` and `sha256sum` say of the file.
fn paste_into_cat(t: &mut Term, data: &[u8]) -> String {
    // The computed marker says cat is about to read (the typed line only
    // shows `RE%s`); the paste then queues in the terminal until it does.
    t.send(b"printf 'RE%s\\n' ADY; cat > paste.txt\n");
    t.drain_until("READY", 30 * SECS);
    t.send(data);
    // EOF for cat (the paste ends a line), then a marker once it exited.
    t.send(b"\x04printf 'PA%s\\n' STED\n");
    t.drain_until("PASTED", 60 * SECS);
    t.run("wc -c < paste.txt; sha256sum < paste.txt", 30 * SECS)
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn big_pastes_reach_the_shell_whole_and_the_terminal_stays_open() {
    let coord = Coord::start(None);
    let (_s, r) = terminal_runner(&coord, "paste", 1, 3);
    let (id, s1) = running_job(&coord, "t1", &["sleep 600"]);
    let (_, s2) = running_job(&coord, "t2", &["sleep 600"]);
    let mut good = Term::direct(&s2, Some("terminal.gitlab.com"), None).expect("t2");
    good.run("true", 10 * SECS);

    // 70 KB (over the old 64 KiB frame limit) in one binary frame.
    let mut t = Term::direct(&s1, Some("terminal.gitlab.com"), None).expect("t1");
    let small = pasted_script(973);
    assert_eq!(small.len(), 70_056);
    let said = paste_into_cat(&mut t, &small);
    assert!(said.contains("70056"), "{said}");
    assert!(said.contains(&sha256_hex(&small)), "{said}");
    assert!(t.run("echo still-$((1+1))", 10 * SECS).contains("still-2"));
    t.close();

    // About 1 MiB through the Workhorse proxy as one base64 text frame
    // (~1.4 MB on the wire; the limit counts the decoded input).
    let mut w = Term::workhorse(&coord.url, id, "base64.terminal.gitlab.com").expect("workhorse");
    let big = pasted_script(termgate::terminal::DEFAULT_MAX_INPUT_FRAME / 72);
    assert!(big.len() > 1_040_000);
    let said = paste_into_cat(&mut w, &big);
    assert!(said.contains(&big.len().to_string()), "{said}");
    assert!(said.contains(&sha256_hex(&big)), "{said}");
    assert!(w.run("echo still-$((1+2))", 10 * SECS).contains("still-3"));

    assert!(good
        .run("echo unaffected", 10 * SECS)
        .contains("unaffected"));
    let refused = metric(
        &r,
        "gitlab_runner_session_closes_total{reason=\"frame_too_large\"}",
    );
    assert_eq!(refused.unwrap_or(0.0), 0.0);
    w.close();
    good.close();
}

#[test]
fn no_terminal_within_the_wait_is_503() {
    // A PowerShell shell executor has no interactive terminal (as upstream):
    // /exec waits for one, then answers 503. `pwsh` here is a stand-in that
    // runs the job's script with sh.
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(
        &coord,
        "no-terminal",
        &["--run-untagged", "--shell", "pwsh"],
    );
    setup.set_global("check_interval = 1");
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    let bin = setup.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pwsh = bin.join("pwsh");
    std::fs::write(&pwsh, "#!/bin/sh\nexec sh \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pwsh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = setup.start_with_env(&[("PATH", path), ("TERMGATE_TERMINAL_WAIT_SECS", "1".into())]);
    let (_, session) = running_job(&coord, "pwsh-job", &["sleep 60"]);
    let t0 = Instant::now();
    assert_eq!(
        Term::direct(&session, Some("terminal.gitlab.com"), None).err(),
        Some(503)
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "waited for the terminal first"
    );
    r.wait_log("Interactive terminal not set", 5 * SECS);
    assert_eq!(
        metric(
            &r,
            "gitlab_runner_session_rejections_total{reason=\"unavailable\"}"
        ),
        Some(1.0)
    );
}

/// The soft and hard "Max open files" of a process.
fn nofile_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut f = line["Max open files".len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[test]
fn runner_raises_its_open_files_limit_and_jobs_and_terminals_keep_the_original() {
    // systemd starts services with a soft limit of 1024: a few hundred
    // terminals would exhaust it. The runner raises it to the hard limit, as
    // Go (and so gitlab-runner) does; the processes it starts get 256 back.
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "nofile", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    let r = setup.start_with_soft_nofile(256);
    let (soft, hard) = nofile_limits(r.child.id());
    assert_eq!(soft, hard, "the runner's soft limit is its hard limit");
    assert_ne!(soft, "256");
    let raised = r.wait_log("Raised the open files limit", 5 * SECS);
    assert_eq!(raised["from"], 256, "{raised}");

    let (id, _) = running_job(
        &coord,
        "nofile",
        &["echo \"job-nofile=$(ulimit -Sn)\"", "sleep 60"],
    );
    wait_until("job's limit in the trace", 15 * SECS, || {
        trace_text(&coord, id)
            .contains("job-nofile=256")
            .then_some(())
    });
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    let out = t.run("echo \"term-nofile=$(ulimit -Sn)\"", 10 * SECS);
    assert!(out.contains("term-nofile=256"), "{out:?}");
}
