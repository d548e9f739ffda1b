use std::sync::{Arc, Mutex, RwLock};

use sentry::protocol::{Breadcrumb, Event, Exception, Map, Value};
use sentry::{ClientOptions, Envelope, Hub, Transport};
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::logging::testing::Buf;
use crate::logging::{redact, redact_while, FormatLayer, LogFormat};

/// What the client would have sent: each envelope as the bytes on the wire.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<Vec<u8>>>>);

impl Transport for Captured {
    fn send_envelope(&self, envelope: Envelope) {
        let mut body = Vec::new();
        envelope.to_writer(&mut body).unwrap();
        self.0.lock().unwrap().push(body);
    }
}

impl Captured {
    fn bodies(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8(b.clone()).unwrap())
            .collect()
    }

    fn events(&self) -> Vec<Event<'static>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| Envelope::from_slice(b).unwrap().event().cloned())
            .collect()
    }
}

fn config(runners: &[(&str, &str, &str)]) -> Config {
    let mut cfg = Config::default();
    for (name, token, executor) in runners {
        cfg.runners.push(crate::config::RunnerConfig {
            name: name.to_string(),
            token: crate::config::Secret::new(*token),
            executor: executor.to_string(),
            ..Default::default()
        });
    }
    cfg
}

/// A hub with the runner's own client options (hooks, default
/// integrations: panics among them), sending to `Captured`.
fn hub(cfg: &Config) -> (Arc<Hub>, Captured) {
    let captured = Captured::default();
    let executors = Arc::new(RwLock::new(Executors::of(cfg)));
    let mut opts = client_options("http://key@127.0.0.1:9/1", executors).unwrap();
    let transport = captured.clone();
    opts.transport = Some(Arc::new(move |_: &ClientOptions| {
        Arc::new(transport.clone()) as Arc<dyn Transport>
    }));
    let client = sentry::Client::from(sentry::apply_defaults(opts));
    let hub = Arc::new(Hub::new(Some(Arc::new(client)), Default::default()));
    (hub, captured)
}

/// Run `f` as the runner logs: the Sentry layer under the JSON formatter.
fn logged(hub: &Arc<Hub>, f: impl FnOnce()) {
    let sub = tracing_subscriber::registry()
        .with(layer())
        .with(FormatLayer::new(LogFormat::Json, Buf::default()));
    Hub::run(hub.clone(), || tracing::subscriber::with_default(sub, f));
}

#[test]
fn token_shapes_are_masked_and_prose_is_not() {
    let operator = format!("tgo_{}", "ab12".repeat(16));
    for (input, want) in [
        ("token glrt-AbC_123-xyzw9 end", "token [MASKED] end"),
        (
            "url=https://x/?t=glcbt-0123456789abcdef&a=1",
            "url=https://x/?t=[MASKED]&a=1",
        ),
        ("GR1348941aBcDeFgHiJkLmNoPqRsT", "[MASKED]"),
        (
            "a glrt- token, a glpat-short one",
            "a glrt- token, a glpat-short one",
        ),
        ("é→glptt-abcdefgh€", "é→[MASKED]€"),
        (operator.as_str(), "[MASKED]"),
    ] {
        assert_eq!(scrub_str(input), want, "{input}");
    }
}

#[test]
fn scrubbing_reaches_every_string_of_an_event() {
    let runner_token = "glrt-registered-5b0e2c71d4";
    // Not token-shaped: only the registry knows it.
    let masked_var = "hunter2-but-longer-7f3a";
    redact(runner_token);
    let job = redact_while([masked_var.to_owned()]);
    let mut extra = Map::new();
    extra.insert(
        format!("key-{masked_var}"),
        Value::String(format!("value {runner_token}")),
    );
    let event = Event {
        message: Some(format!("failed with {runner_token} and {masked_var}")),
        exception: vec![Exception {
            ty: "panic".into(),
            value: Some(format!("boom {masked_var}")),
            ..Default::default()
        }]
        .into(),
        tags: [("t".to_owned(), masked_var.to_owned())].into(),
        extra,
        breadcrumbs: vec![Breadcrumb {
            message: Some(format!("earlier {runner_token}")),
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    };
    let scrubbed = serde_json::to_string(&scrub_event(event).unwrap()).unwrap();
    drop(job);
    for secret in [runner_token, masked_var] {
        assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
    }
    assert_eq!(scrubbed.matches(MASK).count(), 7, "{scrubbed}");
}

#[test]
fn errors_become_tagged_events_and_infos_breadcrumbs_without_secrets() {
    let token = "glrt-tagged-events-test-91c2";
    let job_token = "job-token-not-token-shaped-4d1e88";
    let cfg = config(&[
        ("r1", token, "shell"),
        ("r2", "glrt-other-runner-0000", "docker"),
    ]);
    let (hub, captured) = hub(&cfg);
    redact(token);
    logged(&hub, || {
        let span = tracing::info_span!(
            "job",
            { schema::JOB } = 4711u64,
            { schema::PROJECT } = 42u64,
            { schema::RUNNER } = %termgate::api::short_token(token),
            { schema::RUNNER_NAME } = "r1",
        );
        let _g = span.enter();
        let _secrets = redact_while([job_token.to_owned()]);
        tracing::info!("Checking for jobs... received with {job_token}");
        tracing::debug!("not sent");
        tracing::error!({ schema::ERROR } = %format!("401 for {token}"), "Job failed (system failure): {job_token}");
    });
    // Libraries' errors are not reported (nor their infos kept).
    logged(&hub, || {
        tracing::error!(target: "hyper::client", "connection reset");
    });
    let events = captured.events();
    assert_eq!(events.len(), 1, "{:?}", captured.bodies());
    let e = &events[0];
    assert_eq!(e.level, sentry::Level::Error);
    assert_eq!(
        e.message.as_deref(),
        Some("Job failed (system failure): [MASKED]")
    );
    let tag = |k: &str| e.tags.get(k).map(String::as_str);
    assert_eq!(tag(schema::JOB), Some("4711"));
    assert_eq!(tag(schema::RUNNER_NAME), Some("r1"));
    assert_eq!(tag(TAG_EXECUTOR), Some("shell"));
    assert_eq!(tag(TAG_VERSION), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        e.release.as_deref(),
        Some(concat!("termgate-runner@", env!("CARGO_PKG_VERSION")))
    );
    let crumbs: Vec<_> = e
        .breadcrumbs
        .iter()
        .filter_map(|b| b.message.clone())
        .collect();
    assert_eq!(crumbs, ["Checking for jobs... received with [MASKED]"]);
    let body = captured.bodies().concat();
    for secret in [token, job_token] {
        assert!(!body.contains(secret), "{secret} sent: {body}");
    }
}

#[test]
fn panics_are_reported_with_the_span_they_happened_in() {
    let secret = "glcbt-panicking-job-token-77aa";
    let cfg = config(&[("solo", "glrt-panic-test-runner-1234", "docker")]);
    let (hub, captured) = hub(&cfg);
    logged(&hub, || {
        let span = tracing::info_span!(
            "job",
            { schema::JOB } = 99u64,
            { schema::RUNNER_NAME } = "solo"
        );
        let _g = span.enter();
        let res = std::panic::catch_unwind(|| panic!("index out of bounds near {secret}"));
        assert!(res.is_err());
    });
    let events = captured.events();
    assert_eq!(events.len(), 1, "{:?}", captured.bodies());
    let e = &events[0];
    assert_eq!(e.level, sentry::Level::Fatal);
    let ex = &e.exception[0];
    assert_eq!(ex.ty, "panic");
    assert_eq!(
        ex.value.as_deref(),
        Some("index out of bounds near [MASKED]")
    );
    let tag = |k: &str| e.tags.get(k).map(String::as_str);
    assert_eq!(tag(schema::JOB), Some("99"));
    assert_eq!(tag(schema::RUNNER_NAME), Some("solo"));
    // The only executor of the config.
    assert_eq!(tag(TAG_EXECUTOR), Some("docker"));
    assert_eq!(tag(TAG_VERSION), Some(env!("CARGO_PKG_VERSION")));
    assert!(!captured.bodies().concat().contains(secret));
}

#[test]
fn executors_by_runner_then_the_only_one() {
    let cfg = config(&[
        ("a", "glrt-aaaaaaaaaaaa", "shell"),
        ("b", "glrt-bbbbbbbbbbbb", "docker"),
    ]);
    let x = Executors::of(&cfg);
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        x.for_tags(&tags(&[(schema::RUNNER_NAME, "b")])).as_deref(),
        Some("docker")
    );
    assert_eq!(
        x.for_tags(&tags(&[
            (schema::RUNNER, "aaaaaaaaa"),
            (schema::RUNNER_NAME, "b")
        ]))
        .as_deref(),
        Some("shell")
    );
    assert_eq!(x.for_tags(&tags(&[])), None);
    let one = Executors::of(&config(&[
        ("a", "glrt-aaaaaaaaaaaa", "shell"),
        ("c", "glrt-cccccccccccc", "shell"),
    ]));
    assert_eq!(one.for_tags(&tags(&[])).as_deref(), Some("shell"));
}

#[test]
fn no_dsn_starts_nothing_and_a_bad_one_is_a_clear_error() {
    let mut cfg = Config::default();
    assert!(start(&cfg).unwrap().is_none());
    cfg.sentry_dsn = Some("  ".into());
    assert!(start(&cfg).unwrap().is_none());
    assert!(Hub::main().client().is_none(), "nothing was initialised");
    let err = client_options("not a dsn with-secret", Default::default())
        .err()
        .unwrap();
    let text = format!("{err:#}");
    assert!(
        text.starts_with("sentry_dsn is not a valid Sentry DSN"),
        "{text}"
    );
    assert!(!text.contains("with-secret"), "{text}");
}

#[test]
fn a_reload_that_changes_the_dsn_says_it_needs_a_restart() {
    let buf = Buf::default();
    let sub = tracing_subscriber::registry().with(FormatLayer::new(LogFormat::Json, buf.clone()));
    let running = Config {
        sentry_dsn: Some("https://k@sentry.example.com/1".into()),
        ..Default::default()
    };
    let same = running.clone();
    let mut changed = running.clone();
    changed.sentry_dsn = None;
    tracing::subscriber::with_default(sub, || {
        warn_if_dsn_changed(&running, &same);
        warn_if_dsn_changed(&running, &changed);
    });
    let text = buf.text();
    assert_eq!(
        text.matches(msg::SENTRY_DSN_NEEDS_RESTART).count(),
        1,
        "{text}"
    );
}
