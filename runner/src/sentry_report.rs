//! `sentry_dsn`: the runner's errors and panics go to Sentry, as
//! gitlab-runner's do (the `sentry` crate; reqwest + rustls transport).
//!
//! - Unset or empty: nothing starts, nothing is ever sent (`SENTRY_DSN` in
//!   the environment is ignored too: the config decides).
//! - What goes: `error!` events of termgate's own code (every `level=error`
//!   line a runner logs, with its message and fields), and panics on any
//!   thread. termgate's `warn!`/`info!` events ride along as breadcrumbs
//!   (the last [`MAX_BREADCRUMBS`] lines before the error on that thread).
//!   Libraries' events stay out: the HTTP client that talks to Sentry must
//!   not report about itself.
//! - Tags: `version`, `runner_name`, `runner` (the short token, as in log
//!   lines), `executor` and `job` where known: from the event's fields and
//!   its spans' (a job's lines run in its span), for a panic from the span
//!   the panicking code was in; `executor` from the config's runner of that
//!   name, or the only executor the config uses.
//! - Scrubbing ([`scrub_event`], before an event leaves and when a
//!   breadcrumb is stored): in every string of the event (message,
//!   exceptions, fields, breadcrumbs, tags, keys), the secrets the log masks
//!   ([`crate::logging::redact`]: runner tokens; [`crate::logging::redact_while`]:
//!   a job's token, session token and masked variables while it runs) and
//!   anything shaped like a GitLab or operator token ([`TOKEN_PREFIXES`])
//!   become `[MASKED]`.
//! - The DSN is read at start: a SIGHUP reload that changes it keeps the
//!   one in use and says so ([`msg::SENTRY_DSN_NEEDS_RESTART`]); the runners'
//!   executors follow reloads.
//! - On exit, [`finish`] sends what is queued (up to 2 s).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use sentry::integrations::tracing::{breadcrumb_from_event, event_from_event, EventMapping};
use sentry::protocol::{Breadcrumb, Event};
use termgate::logschema::{self as schema, msg};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Registry;

use crate::config::Config;
use crate::logging::{self, ExtraLayer, MASK};

/// Breadcrumbs kept per thread.
pub const MAX_BREADCRUMBS: usize = 50;

/// Tag: termgate's version.
pub const TAG_VERSION: &str = "version";
/// Tag: the runner's executor (`shell`, `docker`).
pub const TAG_EXECUTOR: &str = "executor";
/// Tags named as the log fields they come from.
pub const TAGS_FROM_FIELDS: [&str; 3] = [schema::RUNNER_NAME, schema::RUNNER, schema::JOB];

/// Prefixes of tokens masked wherever they appear, registered or not:
/// GitLab's runner (`glrt-`, `glrtr-`), legacy registration (`GR1348941`),
/// CI job (`glcbt-`), personal/project/group access (`glpat-`), deploy
/// (`gldt-`), trigger (`glptt-`), OAuth (`gloas-`) tokens, and termgate's
/// operator tokens (`tgo_`).
pub const TOKEN_PREFIXES: [&str; 9] = [
    "glrt-",
    "glrtr-",
    "GR1348941",
    "glcbt-",
    "glpat-",
    "gldt-",
    "glptt-",
    "gloas-",
    termgate::operator::TOKEN_PREFIX,
];

/// Shortest tail after a prefix that counts as a token (so prose such as
/// "a glrt- token" is left alone).
const MIN_TOKEN_TAIL: usize = 8;

/// The client of this process, kept until [`finish`].
static ACTIVE: Mutex<Option<sentry::ClientInitGuard>> = Mutex::new(None);

/// Which executor each configured runner uses, for the `executor` tag.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Executors {
    by_name: HashMap<String, String>,
    by_short_token: HashMap<String, String>,
    /// Set when every runner uses the same executor.
    only: Option<String>,
}

impl Executors {
    pub fn of(cfg: &Config) -> Executors {
        let mut e = Executors::default();
        for r in &cfg.runners {
            e.by_name.insert(r.name.clone(), r.executor.clone());
            e.by_short_token.insert(
                termgate::api::short_token(r.token.expose()),
                r.executor.clone(),
            );
        }
        let mut kinds: Vec<&String> = cfg.runners.iter().map(|r| &r.executor).collect();
        kinds.sort();
        kinds.dedup();
        if let [only] = kinds.as_slice() {
            e.only = Some((*only).clone());
        }
        e
    }

    /// The executor of the runner named by `tags` (`runner`, then
    /// `runner_name`), else the only one.
    fn for_tags(&self, tags: &BTreeMap<String, String>) -> Option<String> {
        tags.get(schema::RUNNER)
            .and_then(|t| self.by_short_token.get(t))
            .or_else(|| {
                tags.get(schema::RUNNER_NAME)
                    .and_then(|n| self.by_name.get(n))
            })
            .or(self.only.as_ref())
            .cloned()
    }
}

/// A running reporter: the layer for the log subscriber is handed out by
/// [`start`]; this keeps what reloads update.
pub struct Reporter {
    executors: Arc<RwLock<Executors>>,
}

impl Reporter {
    /// A reloaded config: new runners' executors.
    pub fn reloaded(&self, cfg: &Config) {
        *self.executors.write().unwrap_or_else(|e| e.into_inner()) = Executors::of(cfg);
    }
}

/// The configured DSN, `None` when unset or blank.
pub fn configured_dsn(cfg: &Config) -> Option<&str> {
    cfg.sentry_dsn
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

/// Start reporting to `cfg`'s `sentry_dsn`; `Ok(None)` (and nothing
/// started) without one. The layer goes into the log subscriber
/// ([`crate::logging::LogSettings::init_with`]). Call on the main thread
/// before the runtime's other threads log anything, so they share the
/// client.
pub fn start(cfg: &Config) -> anyhow::Result<Option<(Reporter, ExtraLayer)>> {
    let Some(dsn) = configured_dsn(cfg) else {
        return Ok(None);
    };
    let executors = Arc::new(RwLock::new(Executors::of(cfg)));
    let opts = client_options(dsn, executors.clone())?;
    let guard = sentry::init(opts);
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    Ok(Some((Reporter { executors }, layer())))
}

/// Send what is queued (waiting up to the client's shutdown timeout, 2 s)
/// and stop. Nothing to do when reporting never started.
pub fn finish() {
    let guard = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(guard);
}

/// The client's options: DSN, release, scrubbing and tagging hooks. The
/// transport and the default integrations (panics, stack traces, OS and
/// Rust contexts) are added by `sentry::init`.
pub fn client_options(
    dsn: &str,
    executors: Arc<RwLock<Executors>>,
) -> anyhow::Result<sentry::ClientOptions> {
    // The DSN itself is not repeated: a legacy one carries a secret key.
    let dsn: sentry::types::Dsn = dsn
        .parse()
        .context("sentry_dsn is not a valid Sentry DSN (https://KEY@HOST/PROJECT_ID)")?;
    Ok(sentry::ClientOptions {
        dsn: Some(dsn),
        release: Some(format!("termgate-runner@{}", env!("CARGO_PKG_VERSION")).into()),
        send_default_pii: false,
        max_breadcrumbs: MAX_BREADCRUMBS,
        before_send: Some(Arc::new(move |mut event: Event<'static>| {
            let executors = executors.read().unwrap_or_else(|e| e.into_inner()).clone();
            tag(&mut event, &executors);
            scrub_event(event)
        })),
        before_breadcrumb: Some(Arc::new(scrub_breadcrumb)),
        ..Default::default()
    })
}

/// The tracing layer: termgate's errors become events, its warnings and
/// infos breadcrumbs; spans are not traced.
pub fn layer() -> ExtraLayer {
    Box::new(
        sentry::integrations::tracing::layer::<Registry>()
            .span_filter(|_| false)
            .event_mapper(map_event),
    )
}

fn map_event(event: &tracing::Event<'_>, ctx: Context<'_, Registry>) -> EventMapping {
    let meta = event.metadata();
    if !meta.target().starts_with("termgate") {
        return EventMapping::Ignore;
    }
    let none: Option<&Context<'_, Registry>> = None;
    match *meta.level() {
        tracing::Level::ERROR => {
            let mut e = event_from_event(event, none);
            let fields = logging::event_fields(event, &ctx);
            for key in TAGS_FROM_FIELDS {
                if let Some(v) = fields
                    .get(key)
                    .filter(|v| !v.is_empty() && v.as_str() != "0")
                {
                    e.tags.insert(key.to_owned(), v.clone());
                }
            }
            EventMapping::Event(e)
        }
        tracing::Level::WARN | tracing::Level::INFO => {
            EventMapping::Breadcrumb(breadcrumb_from_event(event, none))
        }
        _ => EventMapping::Ignore,
    }
}

/// Add the tags an event lacks: `version`; for a panic, the span it
/// happened in; `executor`.
fn tag(event: &mut Event<'static>, executors: &Executors) {
    event
        .tags
        .insert(TAG_VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned());
    if !TAGS_FROM_FIELDS.iter().any(|k| event.tags.contains_key(*k)) {
        let fields = logging::current_span_fields();
        for key in TAGS_FROM_FIELDS {
            if let Some(v) = fields
                .get(key)
                .filter(|v| !v.is_empty() && v.as_str() != "0")
            {
                event.tags.insert(key.to_owned(), v.clone());
            }
        }
    }
    if !event.tags.contains_key(TAG_EXECUTOR) {
        if let Some(x) = executors.for_tags(&event.tags) {
            event.tags.insert(TAG_EXECUTOR.to_owned(), x);
        }
    }
}

/// `event` with every secret masked in every string (and object key); an
/// event that does not survive the round trip is dropped, not sent as is.
pub fn scrub_event(event: Event<'static>) -> Option<Event<'static>> {
    scrub_serde(&event)
}

/// As [`scrub_event`], for a breadcrumb (scrubbed when stored, so a job's
/// secret is masked even if the event that carries it comes after the job).
pub fn scrub_breadcrumb(b: Breadcrumb) -> Option<Breadcrumb> {
    scrub_serde(&b)
}

fn scrub_serde<T: serde::Serialize + serde::de::DeserializeOwned>(x: &T) -> Option<T> {
    let mut v = serde_json::to_value(x).ok()?;
    scrub_value(&mut v);
    serde_json::from_value(v).ok()
}

fn scrub_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = scrub_str(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                scrub_value(&mut val);
                map.insert(scrub_str(&k), val);
            }
        }
        _ => {}
    }
}

/// `s` with registered secrets and token-shaped words masked.
pub fn scrub_str(s: &str) -> String {
    mask_token_shapes(&logging::redact_str(s))
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Every [`TOKEN_PREFIXES`] prefix followed by at least [`MIN_TOKEN_TAIL`]
/// token characters (`A-Za-z0-9_-`) becomes `[MASKED]`.
fn mask_token_shapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    'scan: while !rest.is_empty() {
        for p in TOKEN_PREFIXES {
            if let Some(tail) = rest.strip_prefix(p) {
                let len = tail.find(|c| !is_token_char(c)).unwrap_or(tail.len());
                if len >= MIN_TOKEN_TAIL {
                    out.push_str(MASK);
                    rest = &tail[len..];
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// `sentry_dsn` differs between the config in use and a reloaded one: the
/// reload keeps the client it has and says so.
pub fn warn_if_dsn_changed(running: &Config, reloaded: &Config) {
    if configured_dsn(running) != configured_dsn(reloaded) {
        tracing::warn!("{}", msg::SENTRY_DSN_NEEDS_RESTART);
    }
}

#[cfg(test)]
mod tests;
