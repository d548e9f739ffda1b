//! `sentry_dsn`: a runner's errors reach a Sentry endpoint (a fake one on
//! loopback that decodes envelopes as Sentry does), tagged and with no
//! token in them; without a DSN nothing is sent at all.

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::support::*;

/// One request the fake endpoint got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    auth: String,
    /// The body, gunzipped when it came compressed.
    body: String,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A fake Sentry: accepts any request on a loopback port, keeps it.
struct FakeSentry {
    port: u16,
    got: Log,
    _rt: tokio::runtime::Runtime,
}

async fn record(State(got): State<Log>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body = if header("content-encoding") == "gzip" {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .unwrap();
        out
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    got.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        auth: header("x-sentry-auth"),
        body,
    });
    StatusCode::OK
}

impl FakeSentry {
    fn start() -> FakeSentry {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Log::default();
        let app = axum::Router::new().fallback(record).with_state(got.clone());
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        FakeSentry { port, got, _rt: rt }
    }

    /// Project 1, public key `publickey`.
    fn dsn(&self) -> String {
        format!("http://publickey@127.0.0.1:{}/1", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The first event whose message contains `what`, with the request
    /// that carried it.
    fn wait_event(&self, what: &str, timeout: Duration) -> (Value, Received) {
        wait_until(&format!("a Sentry event {what:?}"), timeout, || {
            self.received().into_iter().find_map(|r| {
                envelope_events(&r.body)
                    .into_iter()
                    .find(|e| e["message"].as_str().is_some_and(|m| m.contains(what)))
                    .map(|e| (e, r.clone()))
            })
        })
    }
}

/// The `event` items of an envelope: a header line, then items, each an
/// item header line and a payload (`length` bytes, else up to the newline).
fn envelope_events(body: &str) -> Vec<Value> {
    let bytes = body.as_bytes();
    let line_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| from + i)
    };
    let mut events = Vec::new();
    let mut at = line_end(0) + 1;
    while at < bytes.len() {
        let end = line_end(at);
        let header: Value = serde_json::from_slice(&bytes[at..end]).unwrap();
        at = end + 1;
        let len = header["length"]
            .as_u64()
            .map_or_else(|| line_end(at) - at, |n| n as usize);
        let payload = &bytes[at..(at + len).min(bytes.len())];
        at += len + 1;
        if header["type"] == "event" {
            events.push(serde_json::from_slice(payload).unwrap());
        }
    }
    events
}

fn runner_token(setup: &RunnerSetup) -> String {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token ="))
        .unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

/// A job payload the runner cannot parse: its `steps` are a token-shaped
/// string, which the parse error quotes.
fn malformed(coord: &Coord, quoted: &str) -> u64 {
    coord.enqueue_raw(json!({"steps": quoted, "variables": 42}))
}

fn runner_setup(coord: &Coord, name: &str) -> RunnerSetup {
    let setup = RunnerSetup::register(coord, name, &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("shutdown_timeout = 10");
    setup
}

#[test]
fn runner_errors_reach_sentry_tagged_and_without_tokens() {
    let sentry = FakeSentry::start();
    let coord = Coord::start(None);
    let setup = runner_setup(&coord, "reported");
    setup.set_global(&format!("sentry_dsn = \"{}\"", sentry.dsn()));
    let token = runner_token(&setup);
    let mut r = setup.start();

    // 1. An error outside a job's span: a payload that does not parse.
    let quoted = "glcbt-quoted0token0in0the0error";
    let bad = malformed(&coord, quoted);
    let (event, req) = sentry.wait_event("Job failed (system failure)", Duration::from_secs(30));
    assert_eq!(req.path, "/api/1/envelope/", "{req:?}");
    assert!(req.auth.contains("sentry_key=publickey"), "{req:?}");
    // `error` is the default level, which the client leaves out.
    assert_eq!(
        event["level"].as_str().unwrap_or("error"),
        "error",
        "{event}"
    );
    assert!(
        event["message"].as_str().unwrap().contains("[MASKED]"),
        "{event}"
    );
    let tags = &event["tags"];
    assert_eq!(tags["job"], bad.to_string(), "{event}");
    assert_eq!(tags["runner_name"], "reported", "{event}");
    assert_eq!(tags["executor"], "shell", "{event}");
    assert_eq!(tags["version"], env!("CARGO_PKG_VERSION"), "{event}");
    assert_eq!(
        event["release"],
        concat!("termgate-runner@", env!("CARGO_PKG_VERSION"))
    );

    // 2. An error in a running job's span, sent as the runner exits: SIGTERM
    //    aborts the job (a system failure).
    let secret = "masked-variable-value-3f9c1a";
    let mut spec = job("aborted", &["echo started", "sleep 600"]);
    spec["variables"] = json!({"DEPLOY_KEY": {"value": secret, "masked": true}});
    let id = coord.enqueue(spec);
    coord.wait_state(id, &["running"], Duration::from_secs(30));
    r.signal(Signal::SIGTERM);
    let status = r.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {}", r.log_text());
    let (event, _) = sentry.wait_event("aborted: terminated", Duration::from_secs(10));
    assert_eq!(event["tags"]["job"], id.to_string(), "{event}");
    assert_eq!(event["tags"]["runner_name"], "reported", "{event}");
    assert_eq!(event["tags"]["executor"], "shell", "{event}");

    // No token of any kind, no masked value, anywhere in what was sent.
    let everything: String = sentry.received().iter().map(|r| r.body.clone()).collect();
    for needle in [token.as_str(), quoted, secret, "glrt-", "glcbt-", "tgo_"] {
        assert!(
            !everything.contains(needle),
            "{needle:?} sent to Sentry: {everything}"
        );
    }
}

#[test]
fn without_sentry_dsn_nothing_is_sent() {
    let sentry = FakeSentry::start();
    let coord = Coord::start(None);
    let setup = runner_setup(&coord, "silent");
    // Only the config decides: the environment's SENTRY_DSN is not used.
    let mut r = setup.start_with_env(&[("SENTRY_DSN", sentry.dsn())]);
    malformed(&coord, "glcbt-quoted0token0in0the0error");
    r.wait_log("Job failed (system failure)", Duration::from_secs(30));
    r.signal(Signal::SIGTERM);
    assert!(r.wait_exit(Duration::from_secs(30)).success());
    assert!(sentry.received().is_empty(), "{:?}", sentry.received());
}
