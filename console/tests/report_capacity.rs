//! Issue 18: `termgate report --prometheus` shows capacity figures from
//! Debian's `prometheus` scraping a live runner. The runner has one job
//! slot (`concurrent = 1`) taken by a terminal job with a client connected,
//! so no terminal is available while Prometheus scrapes it every second;
//! the real `termgate` binary then reports on that period. A Prometheus
//! that is down leaves the capacity out with the reason, never the report.
//!
//! Needs `prometheus` on PATH (`scripts/setup-test-deps.sh`). Without it the
//! test is skipped, unless `TERMGATE_REQUIRE_PROMETHEUS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use termgate::admin::JobSpec;
use termgate::metrics as names;
use termgate_console::scrape::prometheus::{parse_answer, parse_vector};
use termgate_test_support::procs::{Coord, CoordOptions, RunnerSetup};
use termgate_test_support::prom::{free_port, prometheus_or_skip, start_prometheus, CancelOnDrop};
use termgate_test_support::{http, wait_until};
use tokio_tungstenite::tungstenite::stream::MaybeTlsStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const RUNNER: &str = "cap-runner";
const SECS: Duration = Duration::from_secs(1);

/// A terminal client held open (answering pings) until dropped.
struct Terminal {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect to the job's terminal through the coordinator (as GitLab's
/// Workhorse would), check it runs a command, and keep it open.
fn open_terminal(coord_url: &str, job: u64) -> Terminal {
    let url = format!(
        "{}/admin/jobs/{job}/terminal.ws",
        coord_url.replacen("http://", "ws://", 1)
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "terminal.gitlab.com".parse().unwrap(),
    );
    let (mut ws, _) = tungstenite::connect(req).expect("the terminal connects");
    ws.send(Message::binary(b"echo capacity-$((6*7))\n".to_vec()))
        .unwrap();
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("capacity-42") {
        match ws.read().expect("terminal output") {
            Message::Binary(b) => out.extend_from_slice(&b),
            Message::Text(t) => out.extend_from_slice(t.as_bytes()),
            Message::Close(c) => panic!("the terminal closed early: {c:?}"),
            _ => {}
        }
    }
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        let _ = ws.close(None);
        let _ = ws.flush();
    });
    Terminal {
        stop,
        thread: Some(thread),
    }
}

/// The value Prometheus has now for `metric` of `instance` (one series).
fn latest(prom: &str, metric: &str, instance: &str) -> Option<f64> {
    let q = format!("{metric}{{instance=\"{instance}\"}}");
    let url =
        reqwest::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", &q)]).unwrap();
    let text = http().get(url).send().ok()?.text().ok()?;
    let v = parse_vector(&parse_answer(&text).ok()?).ok()?;
    match v.as_slice() {
        [(_, x)] => Some(*x),
        _ => None,
    }
}

/// The first whole second after `t`.
fn next_second(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs() + 1)
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `termgate report … --format json` over `log`; its JSON and stderr.
fn report(log: &Path, from: SystemTime, to: SystemTime, prometheus: &str) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_termgate"))
        .arg("report")
        .arg("--logs")
        .arg(log)
        .args(["--from", &rfc3339(from), "--to", &rfc3339(to)])
        .args(["--prometheus", prometheus, "--format", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "termgate report failed: {stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (json, stderr)
}

#[test]
fn report_shows_capacity_from_prometheus() {
    let Some(prom_bin) = prometheus_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Dropped in reverse: the terminal, the job, Prometheus, the runner
    // (which kills what is left of its jobs), the coordinator.
    let coord = Coord::start_with(&CoordOptions {
        quiet: true,
        ..CoordOptions::default()
    });
    let setup = RunnerSetup::register(&coord, RUNNER, &["--run-untagged"]);
    setup.set_global("concurrent = 1");
    setup.set_global("check_interval = 1");
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    let mut runner = setup.start();
    let instance = runner.metrics_url.trim_start_matches("http://").to_owned();
    let (mut prom, prom_url, prom_log) = start_prometheus(&prom_bin, dir.path(), &[&instance]);

    // The period starts at a whole second when Prometheus has seen the
    // runner idle, before any job: its first instant reads that state.
    let idle = wait_until("prometheus to see the runner idle", 30 * SECS, || {
        prom.check_alive(&prom_log);
        runner.check_alive();
        let available = latest(&prom_url, names::SESSION_TERMINALS_AVAILABLE, &instance)?;
        (available == 1.0).then(SystemTime::now)
    });
    let from = next_second(idle);
    wait_until("the period to begin", 10 * SECS, || {
        (SystemTime::now() > from).then_some(())
    });

    // The one slot taken by a terminal job with a client connected.
    let id = coord.enqueue(JobSpec::new("hold", &["sleep 120"]));
    let _job = CancelOnDrop(format!("{}/admin/jobs/{id}", coord.url));
    wait_until("the terminal job runs with a session", 30 * SECS, || {
        runner.check_alive();
        let j = coord.job(id);
        (j["state"] == "running" && j["session"]["url"].is_string()).then_some(())
    });
    let _terminal = open_terminal(&coord.url, id);

    // Prometheus has scraped it with no terminal available, one active.
    let seen = wait_until(
        "prometheus to see no terminal available and one active",
        30 * SECS,
        || {
            prom.check_alive(&prom_log);
            runner.check_alive();
            let available = latest(&prom_url, names::SESSION_TERMINALS_AVAILABLE, &instance)?;
            let active = latest(&prom_url, names::SESSION_TERMINALS_ACTIVE, &instance)?;
            (available == 0.0 && active == 1.0).then(SystemTime::now)
        },
    );
    // The first 15 s instant after that reads it (the state is held to the
    // end); wait until it has passed.
    let after = next_second(seen).duration_since(from).unwrap().as_secs();
    let zero_at = from + Duration::from_secs(after.div_ceil(15) * 15);
    wait_until("an instant with no terminal available", 30 * SECS, || {
        (SystemTime::now() > zero_at + SECS).then_some(())
    });
    // The period runs past now: Prometheus is asked up to now only.
    let to = SystemTime::now() + 60 * SECS;
    let (rep, stderr) = report(&runner.log, from, to, &prom_url);
    eprintln!("{stderr}");

    assert_eq!(
        rep["capacity_error"],
        Value::Null,
        "{}",
        rep["capacity_error"]
    );
    let cap = &rep["capacity"];
    eprintln!("{}", serde_json::to_string_pretty(cap).unwrap());
    assert_eq!(cap["source"], prom_url.as_str());
    assert_eq!(cap["step_s"], 15);
    let runners = cap["runners"].as_array().unwrap();
    assert_eq!(runners.len(), 1, "one target: {cap}");
    let r = &runners[0];
    assert_eq!(r["instance"], instance.as_str());
    assert_eq!(r["runner"], RUNNER, "the runner_name of its job series");
    assert_eq!(r["lowest_available"], 0.0);
    let (from_s, zero_s) = (rfc3339(from), rfc3339(zero_at));
    assert!(
        r["lowest_available_at"]
            .as_str()
            .is_some_and(|t| t > from_s.as_str() && t <= zero_s.as_str()),
        "{r}"
    );
    let at_zero = r["seconds_at_zero"].as_u64().unwrap();
    assert!(at_zero >= 15 && at_zero % 15 == 0, "instants × step: {r}");
    assert_eq!(r["zero_stretches"], 1, "held to the end: {r}");
    assert_eq!(r["peak_active"], 1.0);
    assert!(r["peak_active_at"].is_string(), "{r}");
    assert_eq!(r["concurrent"], 1.0);
    assert_eq!(r["peak_websocket_connections"], 1.0);
    assert_eq!(r["peak_jobs"], 1.0);
    let series = r["series"].as_array().unwrap();
    assert!(series.len() >= 2 && series.len() <= 200, "{r}");
    assert_eq!(series[0]["at"], from_s.as_str());
    assert_eq!(series[0]["available"], 1.0, "idle at the start: {r}");
    assert_eq!(series[0]["active"], 0.0, "{r}");
    assert!(
        series
            .iter()
            .any(|p| p["at"] == zero_s.as_str() && p["available"] == 0.0 && p["active"] == 1.0),
        "{r}"
    );
    assert_eq!(rep["inputs"]["files"], 1);

    // Prometheus down: the report still comes, without capacity, saying why.
    let down = format!("http://127.0.0.1:{}", free_port());
    let (rep, stderr) = report(&runner.log, from, to, &down);
    assert_eq!(rep["capacity"], Value::Null);
    let why = rep["capacity_error"].as_str().expect("capacity_error");
    assert!(why.starts_with(&format!("Prometheus at {down}: ")), "{why}");
    assert!(why.ends_with("refused"), "{why}");
    assert!(stderr.contains("capacity left out"), "{stderr}");
    assert_eq!(rep["inputs"]["files"], 1);
}
