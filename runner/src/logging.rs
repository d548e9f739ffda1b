//! Process logging in upstream gitlab-runner's formats (`log_format`):
//! `runner` (default), `text` and `json`; all to stderr.
//!
//! - Event fields and the fields of every enclosing span are printed, so the
//!   job loop's span (`job`, `project`, `runner`, `runner_name`) tags every
//!   line of that job.
//! - tracing has no fatal or panic level: log at `error!` with the field
//!   `fatal = true` or `panic = true` ([`FATAL_FIELD`], [`PANIC_FIELD`]); the
//!   line is rendered and counted at that level and the field is not printed.
//!   `trace!` renders as `debug` (upstream's schema has no trace level).
//! - [`redact`] registers a secret (a token) and [`redact_while`] one for as
//!   long as a job runs; every formatter, and the Sentry reporter
//!   (`crate::sentry_report`), prints it as `[MASKED]`. This registry is
//!   process-wide on purpose: any code that learns a token must be able to
//!   mask it without plumbing.

mod format;
mod layer;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt;
use std::io::IsTerminal as _;
use std::str::FromStr;
use std::sync::RwLock;

use anyhow::Context as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

pub use format::rfc3339_nano;
pub(crate) use layer::{current_span_fields, event_fields};
pub use layer::{Clock, ErrorCounter, FormatLayer, FATAL_FIELD, PANIC_FIELD};

/// `log_format` in config.toml / `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    Json,
    Text,
    /// Upstream's default.
    #[default]
    Runner,
}

impl LogFormat {
    pub const ALL: [LogFormat; 3] = [LogFormat::Runner, LogFormat::Text, LogFormat::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
            LogFormat::Runner => "runner",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown log format {0:?}: expected one of runner, text, json")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            "runner" => Ok(LogFormat::Runner),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown log level {0:?}: expected one of debug, info, warn, error, fatal, panic")]
pub struct UnknownLogLevel(pub String);

/// Parse upstream's `log_level` (`debug|info|warn|warning|error|fatal|panic`).
/// `fatal` and `panic` map to `ERROR`, the closest tracing level.
pub fn parse_level(s: &str) -> Result<tracing::Level, UnknownLogLevel> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Ok(tracing::Level::TRACE),
        "debug" => Ok(tracing::Level::DEBUG),
        "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" | "fatal" | "panic" => Ok(tracing::Level::ERROR),
        _ => Err(UnknownLogLevel(s.to_owned())),
    }
}

/// How the process logs.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub format: LogFormat,
    /// Minimum level of termgate's own events.
    pub level: tracing::Level,
    /// Colours (and logrus' `INFO[0000]` layout for `text`). Upstream always
    /// colours the `runner` format; we colour only when asked, normally when
    /// stderr is a terminal ([`LogOptions::stderr_is_tty`]).
    pub ansi: bool,
    /// Extra `EnvFilter` directives, e.g. `"hyper=warn"`.
    pub directives: Option<String>,
}

impl LogOptions {
    pub fn stderr_is_tty() -> bool {
        std::io::stderr().is_terminal()
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            format: LogFormat::Runner,
            level: tracing::Level::INFO,
            ansi: false,
            directives: None,
        }
    }
}

/// Keeps the global subscriber's resources; flushes stderr on drop.
#[derive(Debug)]
#[must_use = "dropping the guard flushes and ends logging setup"]
pub struct LogGuard {
    _private: (),
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        use std::io::Write as _;
        let _ = std::io::stderr().flush();
    }
}

/// Install the global subscriber: filter, formatter to stderr and, when
/// given, the `gitlab_runner_errors_total` counter. Fails if a global
/// subscriber is already set or the directives do not parse.
pub fn init(opts: &LogOptions, errors: Option<ErrorCounter>) -> anyhow::Result<LogGuard> {
    init_with_layer(opts, errors, None)
}

/// One more layer under the formatter, seeing what it sees (the Sentry
/// reporter's, `crate::sentry_report`).
pub type ExtraLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static>;

/// As [`init`], with `extra` (when given) behind the same filter.
pub fn init_with_layer(
    opts: &LogOptions,
    errors: Option<ErrorCounter>,
    extra: Option<ExtraLayer>,
) -> anyhow::Result<LogGuard> {
    let filter = env_filter(opts.level, opts.directives.as_deref())?;
    let fmt = layer_for(opts.format, std::io::stderr).with_ansi(opts.ansi);
    tracing_subscriber::registry()
        .with(extra)
        .with(filter)
        .with(fmt)
        .with(errors)
        .try_init()
        .context("installing the global log subscriber")?;
    Ok(LogGuard { _private: () })
}

/// Libraries stay quiet unless something is wrong: the runner's default
/// extra directives. At debug level tungstenite's client handshake, for
/// one, would print the request with its `Authorization` header.
pub const QUIET_LIBRARIES: &str = "hyper=warn,hyper_util=warn,reqwest=warn,h2=warn,rustls=warn,tungstenite=warn,tokio_tungstenite=warn,axum=warn,tower=warn,tower_http=warn,bollard=warn,mio=warn";

/// `level` for everything, then the comma-separated `directives`.
pub fn env_filter(level: tracing::Level, directives: Option<&str>) -> anyhow::Result<EnvFilter> {
    let mut filter = EnvFilter::new(level.as_str());
    for part in directives
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let directive = part
            .parse()
            .with_context(|| format!("invalid log directive {part:?}"))?;
        filter = filter.add_directive(directive);
    }
    Ok(filter)
}

/// Log format/level from flags/env; the config file fills what they leave.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    pub format: Option<String>,
    pub level: Option<String>,
}

impl LogSettings {
    pub fn init(&self, cfg: Option<&crate::config::Config>) -> anyhow::Result<LogGuard> {
        self.init_with(cfg, None, None)
    }

    /// As [`LogSettings::init`], counting warnings and errors in `errors`
    /// and adding `extra` (see [`init_with_layer`]).
    pub fn init_with(
        &self,
        cfg: Option<&crate::config::Config>,
        errors: Option<ErrorCounter>,
        extra: Option<ExtraLayer>,
    ) -> anyhow::Result<LogGuard> {
        let format = self
            .format
            .clone()
            .or_else(|| cfg.and_then(|c| c.log_format.clone()))
            .unwrap_or_else(|| "runner".into());
        let level = self
            .level
            .clone()
            .or_else(|| cfg.and_then(|c| c.log_level.clone()))
            .unwrap_or_else(|| "info".into());
        let opts = LogOptions {
            format: format
                .parse()
                .with_context(|| format!("log format {format:?}"))?,
            level: parse_level(&level).with_context(|| format!("log level {level:?}"))?,
            ansi: LogOptions::stderr_is_tty(),
            directives: Some(QUIET_LIBRARIES.into()),
        };
        init_with_layer(&opts, errors, extra)
    }
}

/// A formatting layer writing to `writer` (tests capture into a buffer).
/// Colours off; see [`FormatLayer::with_ansi`] and [`FormatLayer::with_clock`].
pub fn layer_for<W>(format: LogFormat, writer: W) -> FormatLayer<W>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    FormatLayer::new(format, writer)
}

/// What a registered secret is printed as.
pub const MASK: &str = "[MASKED]";

/// A secret to mask: for the process' lifetime ([`redact`]) and/or while
/// `holds` guards ([`redact_while`]) live.
struct Secret {
    value: String,
    permanent: bool,
    holds: usize,
}

/// Secrets to mask, longest first so a secret containing another is masked
/// whole.
static SECRETS: RwLock<Vec<Secret>> = RwLock::new(Vec::new());

fn secrets_mut() -> std::sync::RwLockWriteGuard<'static, Vec<Secret>> {
    SECRETS.write().unwrap_or_else(|e| e.into_inner())
}

/// Register a secret (for example a runner token): from now on every log
/// line, and every event sent to Sentry, prints it as `[MASKED]`. Empty
/// strings are ignored.
pub fn redact(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let mut secrets = secrets_mut();
    match secrets.iter_mut().find(|s| s.value == secret) {
        Some(s) => s.permanent = true,
        None => insert(
            &mut secrets,
            Secret {
                value: secret.to_owned(),
                permanent: true,
                holds: 0,
            },
        ),
    }
}

fn insert(secrets: &mut Vec<Secret>, secret: Secret) {
    secrets.push(secret);
    secrets.sort_by(|a, b| {
        b.value
            .len()
            .cmp(&a.value.len())
            .then_with(|| a.value.cmp(&b.value))
    });
}

/// Secrets masked while this guard lives: a job's token, its session token
/// and its masked variables, for as long as the job runs. Two guards may
/// hold the same value; it stays masked until both are gone.
#[derive(Debug)]
#[must_use = "the secrets are masked only while the guard lives"]
pub struct SecretsGuard {
    values: Vec<String>,
}

/// Mask `secrets` (empty ones are skipped) until the guard is dropped.
pub fn redact_while(secrets: impl IntoIterator<Item = String>) -> SecretsGuard {
    let values: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    let mut all = secrets_mut();
    for v in &values {
        match all.iter_mut().find(|s| &s.value == v) {
            Some(s) => s.holds += 1,
            None => insert(
                &mut all,
                Secret {
                    value: v.clone(),
                    permanent: false,
                    holds: 1,
                },
            ),
        }
    }
    SecretsGuard { values }
}

impl Drop for SecretsGuard {
    fn drop(&mut self) {
        let mut all = secrets_mut();
        for v in &self.values {
            if let Some(s) = all.iter_mut().find(|s| &s.value == v) {
                s.holds = s.holds.saturating_sub(1);
            }
        }
        all.retain(|s| s.permanent || s.holds > 0);
    }
}

/// `s` with every registered secret masked.
pub fn redact_str(s: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = s.to_owned();
    for secret in secrets.iter() {
        if out.contains(secret.value.as_str()) {
            out = out.replace(secret.value.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::testing::{fixed_clock as clock, Buf};

    fn capture(format: LogFormat, ansi: bool, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let layer = layer_for(format, buf.clone())
            .with_ansi(ansi)
            .with_clock(clock());
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The nine events of upstream's `log_format` docs examples.
    fn docs_events() {
        tracing::info!(
            arch = "amd64",
            os = "darwin",
            pid = 38229u64,
            revision = "HEAD",
            version = "development version",
            "Runtime platform"
        );
        tracing::info!(
            builds = 0u64,
            "Starting multi-runner from /etc/gitlab-runner/config.toml..."
        );
        tracing::warn!("Running in user-mode.");
        tracing::warn!("Use sudo for system-mode:");
        tracing::warn!("$ sudo gitlab-runner...");
        tracing::info!("");
        tracing::info!(builds = 0u64, "Configuration loaded");
        tracing::info!(
            builds = 0u64,
            "listen_address not defined, metrics & debug endpoints disabled"
        );
        tracing::info!(
            builds = 0u64,
            "[session_server].listen_address not defined, session endpoints disabled"
        );
    }

    fn fixture(name: &str) -> String {
        let p = format!(
            "{}/../tests/fixtures/logs/docs-log-format-{name}.log",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&p).unwrap()
    }

    /// Docs strip trailing blanks and colour codes; pids differ per sample.
    fn normalise(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let end = tail.find('m').map_or(tail.len(), |e| e + 1);
            rest = &tail[end..];
        }
        out.push_str(rest);
        out.lines()
            .map(|l| {
                let l = l.trim_end();
                match l.find("pid=") {
                    Some(i) => {
                        let end = l[i..].find(' ').map_or(l.len(), |e| i + e);
                        format!("{}pid=N{}", &l[..i], &l[end..])
                    }
                    None => l.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn json_matches_docs_fixture_exactly() {
        let out = capture(LogFormat::Json, false, docs_events);
        assert_eq!(out.trim_end(), fixture("json").trim_end());
    }

    #[test]
    fn runner_matches_docs_fixture() {
        for ansi in [false, true] {
            let out = capture(LogFormat::Runner, ansi, docs_events);
            assert_eq!(
                normalise(&out),
                normalise(&fixture("runner")),
                "ansi={ansi}"
            );
            assert_eq!(out.contains('\x1b'), ansi);
        }
    }

    #[test]
    fn text_tty_matches_docs_fixture() {
        let out = capture(LogFormat::Text, true, docs_events);
        assert_eq!(normalise(&out), normalise(&fixture("text")));
    }

    #[test]
    fn text_plain_is_logfmt() {
        let out = capture(LogFormat::Text, false, docs_events);
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            "time=\"2025-06-05T15:57:35+02:00\" level=info msg=\"Runtime platform\" arch=amd64 \
             os=darwin pid=38229 revision=HEAD version=\"development version\""
        );
        assert!(out.contains("level=warning msg=\"Running in user-mode.\""));
    }

    #[test]
    fn registered_secret_never_appears() {
        let secret = "glrt-SECRETtoken-4f8a9c";
        redact(secret);
        redact("");
        for format in LogFormat::ALL {
            let out = capture(format, true, || {
                let span = tracing::info_span!("job", url = %format!("https://x/?t={secret}"));
                let _g = span.enter();
                tracing::info!(token = secret, "registering with {secret}");
                tracing::warn!(error = ?format!("bad token \"{secret}\" & <x>"), "failed");
            });
            assert!(!out.contains(secret), "{format}: {out}");
            assert!(!out.contains("SECRETtoken"), "{format}: {out}");
            assert!(out.contains(MASK), "{format}: {out}");
        }
    }

    #[test]
    fn scoped_secrets_are_masked_while_held() {
        let (a, b) = ("job-token-scoped-71c3e0", "masked-value-scoped-9d2f");
        let first = redact_while([a.to_owned(), b.to_owned(), String::new()]);
        let second = redact_while([a.to_owned()]);
        assert_eq!(redact_str(&format!("{a} {b}")), format!("{MASK} {MASK}"));
        drop(first);
        // `a` is still held by the second guard, `b` by none.
        assert_eq!(redact_str(&format!("{a} {b}")), format!("{MASK} {b}"));
        drop(second);
        assert_eq!(redact_str(a), a);
        // A permanent secret outlives the guards that also held it.
        let permanent = "glrt-permanent-and-scoped-5e1a";
        let guard = redact_while([permanent.to_owned()]);
        redact(permanent);
        drop(guard);
        assert_eq!(redact_str(permanent), MASK);
    }

    /// The only test that installs the global subscriber.
    #[test]
    fn init_validates_then_installs_once() {
        let bad = LogOptions {
            directives: Some("hyper=loud=x".into()),
            ..LogOptions::default()
        };
        let err = init(&bad, None).unwrap_err().to_string();
        assert!(err.contains("invalid log directive"), "{err}");
        let opts = LogOptions {
            format: LogFormat::Json,
            level: tracing::Level::WARN,
            ansi: false,
            directives: Some("hyper=error, h2=error".into()),
        };
        let guard = init(&opts, None).unwrap();
        assert!(init(&opts, None).is_err(), "second init must fail");
        drop(guard);
    }

    #[test]
    fn parse_format_and_level() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("runner".parse::<LogFormat>(), Ok(LogFormat::Runner));
        let err = "yaml".parse::<LogFormat>().unwrap_err().to_string();
        assert!(err.contains("runner, text, json"), "{err}");
        assert_eq!(parse_level("warning"), Ok(tracing::Level::WARN));
        assert_eq!(parse_level("panic"), Ok(tracing::Level::ERROR));
        assert!(parse_level("loud").is_err());
    }
}
