//! Contract: every JSON log line a real termgate runner writes is understood
//! by the console's parser. The runner runs a succeeding and a failing job,
//! serves a terminal through the coordinator (as Workhorse), rejects a
//! connection with a wrong token and shuts down; then each line must be a
//! recognised record (never `Unparsed`) with the same level and message, use
//! only field names from `termgate::logschema`, and fingerprint as the
//! console groups errors: the same message with other ids falls together.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use termgate::logschema::{self as ls, msg, Level};
use termgate_console::logs::fingerprint;
use termgate_console::logs::parse::{classify, parse_line, LineKind};
use termgate_test_support::procs::{job, Coord, RunnerSetup};
use termgate_test_support::wait_until;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const SECS: Duration = Duration::from_secs(1);

#[test]
fn every_runner_log_line_parses_in_the_console() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "contract", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 2");
    setup.edit(|t| {
        format!(
            "{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = 5\n"
        )
    });
    let mut runner = setup.start();

    // A job that fails with a user's exit code, and one that succeeds.
    let failed = coord.enqueue(job("fails", &["echo about to fail", "exit 3"]));
    coord.wait_finished(failed, 60 * SECS);

    // A terminal job: a client through the coordinator's Workhorse proxy
    // runs a command, then a client with a wrong token is turned away.
    let term = coord.enqueue(job("terminal", &["sleep 4"]));
    let session = wait_until("the terminal job runs with a session", 30 * SECS, || {
        let j = coord.job(term);
        (j["state"] == "running" && j["session"]["url"].is_string()).then(|| j["session"].clone())
    });
    terminal_echo(&coord.url, term);
    rejected_with_a_wrong_token(session["url"].as_str().expect("session url"));
    coord.wait_finished(term, 60 * SECS);

    // A graceful stop logs the shutdown lines too.
    runner.signal(nix::sys::signal::Signal::SIGQUIT);
    runner.wait_exit(30 * SECS);

    let text = runner.log_text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 20, "too few log lines:\n{text}");
    let fields: BTreeSet<&str> = ls::FIELDS.iter().copied().collect();
    let mut by_msg: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unknown: BTreeMap<String, &str> = BTreeMap::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let obj = v.as_object().expect("a JSON object");
        let level = Level::parse(obj[ls::LEVEL].as_str().expect("level")).expect("a level");
        assert_eq!(classify(line), LineKind::Record(level), "{line}");
        let rec = parse_line("contract", line).unwrap_or_else(|| panic!("unparsed: {line}"));
        assert_eq!(rec.level, level, "{line}");
        assert_eq!(rec.msg, obj[ls::MSG].as_str().expect("msg"), "{line}");
        assert!(rec.time.is_some(), "no time: {line}");
        for key in obj.keys().filter(|k| !fields.contains(k.as_str())) {
            unknown.entry(key.clone()).or_insert(line);
        }
        by_msg
            .entry(fingerprint(&rec.msg))
            .or_default()
            .insert(rec.msg.clone());
    }

    assert!(
        unknown.is_empty(),
        "fields not in termgate::logschema::FIELDS (with an example line): {unknown:#?}"
    );

    // What the run must have logged, each recognised by its fingerprint.
    let seen = |m: &str| by_msg.contains_key(&fingerprint(m));
    for m in [
        msg::CONFIGURATION_LOADED,
        msg::METRICS_SERVER_LISTENING,
        msg::SESSION_SERVER_LISTENING,
        msg::CHECKING_FOR_JOBS_RECEIVED,
        msg::JOB_SUCCEEDED,
        msg::TERMINAL_CONNECTED,
        msg::TERMINAL_DISCONNECTED,
        msg::TERMINAL_REJECTED,
        msg::AUTHORIZATION_NOT_VALID,
        msg::GRACEFUL_SHUTDOWN,
    ] {
        assert!(seen(m), "no line fingerprinted as {m:?}; saw {by_msg:#?}");
    }
    assert!(
        seen(&format!("{}exit code 3", msg::JOB_FAILED_PREFIX)),
        "no failed-job line; saw {by_msg:#?}"
    );
    // Ids fall together: one fingerprint for every job's "received" line.
    let received = &by_msg[&fingerprint(msg::CHECKING_FOR_JOBS_RECEIVED)];
    assert_eq!(received.len(), 1, "{received:?}");

    weekly_report_reads_the_run(&text);
}

/// The weekly report finds this run in the runner's own lines: one start
/// and a clean stop, both jobs, the terminal session and the rejection.
fn weekly_report_reads_the_run(text: &str) {
    use termgate_console::report::{build, scan, unix_ms, Window};
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("contract.log");
    std::fs::write(&path, text).unwrap();
    let now = std::time::SystemTime::now();
    let window = Window::new(now - Duration::from_secs(3600), now + 60 * SECS).unwrap();
    let files = [termgate_console::tally_cmd::LogFile {
        runner: "contract".into(),
        named: false,
        path,
    }];
    let scanned = scan::scan(&files, window, 1, scan::Progress::hidden()).unwrap();
    let r = build::build(
        &scanned,
        &build::Options {
            window,
            top: 20,
            now,
        },
        None,
        None,
    );
    assert!(window.from < unix_ms(now));
    assert_eq!(r.inputs.unparsed_lines, 0);
    assert_eq!(r.totals.starts.current, 1, "{:#?}", r.lifecycle);
    assert_eq!(r.totals.unclean_shutdowns.current, 0);
    let result = |k: &str| {
        r.jobs
            .by_result
            .iter()
            .find(|x| x.reason == k)
            .unwrap()
            .current
    };
    assert_eq!(result("success"), 1, "{:#?}", r.jobs);
    assert_eq!(result("failed"), 1, "{:#?}", r.jobs);
    assert_eq!(r.jobs.failure_reasons[0].reason, "script_failure");
    assert!(r.sessions.events_seen);
    assert!(r.totals.sessions.current >= 1, "{:#?}", r.sessions);
    assert!(r.totals.rejections.current >= 1, "{:#?}", r.sessions);
    assert!(r.sessions.duration_p50_s.is_some());
    assert_eq!(r.sessions.peak_active.as_ref().map(|p| p.count), Some(1));
}

/// A terminal through `ws://<coordinator>/admin/jobs/<id>/terminal.ws`, as
/// a GitLab user's browser reaches it through Workhorse.
fn terminal_echo(coord_url: &str, job: u64) {
    let url = format!(
        "{}/admin/jobs/{job}/terminal.ws",
        coord_url.replacen("http://", "ws://", 1)
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "terminal.gitlab.com".parse().expect("header"),
    );
    let (mut ws, _) = tungstenite::connect(req).expect("terminal connects");
    ws.send(Message::binary(b"echo contract-$((6*7))\n".to_vec()))
        .expect("send");
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("contract-42") {
        match ws.read().expect("terminal output") {
            Message::Binary(b) => out.extend_from_slice(&b),
            Message::Text(t) => out.extend_from_slice(t.as_bytes()),
            Message::Close(c) => panic!("closed early: {c:?}"),
            _ => {}
        }
    }
    ws.close(None).expect("close");
    while ws.read().is_ok() {}
}

/// The session's `/exec` with a wrong token: 401 before any upgrade.
fn rejected_with_a_wrong_token(session_url: &str) {
    let client = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let resp = client
        .get(format!("{session_url}/exec"))
        .header("Authorization", "not-the-token")
        .send()
        .expect("the session server answers");
    assert_eq!(resp.status().as_u16(), 401);
}
