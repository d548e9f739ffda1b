//! `console.toml`: where the console finds runners and how often it polls.
//!
//! ```toml
//! interval = "2s"        # poll period
//! timeout = "2s"         # per request
//! concurrency = 32       # scrapes in flight at most
//! log_file = "/var/log/termgate/console.log"  # the console's own log
//! detach_key = "ctrl-]"  # ends an attach (`termgate attach`, Sessions)
//!
//! [[runners]]
//! name = "prm-5"
//! metrics_url = "http://10.0.0.5:9252/metrics"
//! session_url = "https://10.0.0.5:8094"   # operator API (observe, join, shell)
//! operator_token_file = "/etc/termgate/prm-5.token"
//! fingerprint = "sha256:3F:…"                # pinned by `termgate trust prm-5`
//! logs = ["/var/log/termgate/prm-5*.log"]
//!
//! [prometheus]
//! url = "http://prometheus:9090"
//! ```
//!
//! Runners may also come from `--runner NAME=URL` flags
//! ([`parse_runner_flag`]) or be discovered through Prometheus.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::detach_key::DetachKey;
use crate::duration_arg::parse_duration;
use crate::model::RunnerSource;
use crate::scrape::options::{PollOptions, DEFAULT_CONCURRENCY, DEFAULT_INTERVAL, DEFAULT_TIMEOUT};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS error is part of the message, not a separate source, so a
    /// chain printed with `{:#}` names it once.
    #[error("reading {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Syntax or schema error; `message` carries toml's line and column.
    #[error("{path}: {message}")]
    Toml { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("--runner {flag:?}: {message}")]
    Flag { flag: String, message: String },
    #[error("no runner named {name:?} in {path}; {}", known_runners(known))]
    UnknownRunner {
        name: String,
        path: String,
        known: Vec<String>,
    },
}

fn known_runners(known: &[String]) -> String {
    if known.is_empty() {
        "it has no [[runners]]".to_string()
    } else {
        format!("known runners: {}", known.join(", "))
    }
}

/// The parsed `console.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "default_interval", deserialize_with = "de_duration")]
    pub interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default)]
    pub runners: Vec<RunnerEntry>,
    #[serde(default)]
    pub prometheus: Option<PrometheusSection>,
    /// Where the console appends its own log (`--log-file` wins).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// The key that ends an attach (`--detach-key` wins).
    #[serde(default, deserialize_with = "de_detach_key")]
    pub detach_key: Option<DetachKey>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            runners: Vec::new(),
            prometheus: None,
            log_file: None,
            detach_key: None,
        }
    }
}

/// One `[[runners]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerEntry {
    pub name: String,
    pub metrics_url: String,
    /// The session server's operator API (`https://host:port`): its
    /// `operator_listen_address`, or its `listen_address` when operators
    /// share it.
    #[serde(default)]
    pub session_url: Option<String>,
    /// The operator token (`termgate-runner operator add` printed it).
    #[serde(default)]
    pub operator_token: Option<String>,
    /// A file holding the operator token (wins over `operator_token`).
    #[serde(default)]
    pub operator_token_file: Option<PathBuf>,
    /// The session server certificate's SHA-256 (`termgate trust` stores it).
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub logs: Vec<String>,
}

/// `[prometheus]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSection {
    #[serde(default)]
    pub url: Option<String>,
}

fn default_interval() -> Duration {
    DEFAULT_INTERVAL
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}

/// `"2s"`, `"500ms"`, `"1m"` or a plain number of seconds.
fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(f64),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Secs(n) => n.to_string(),
    };
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn de_detach_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DetachKey>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl ConsoleConfig {
    /// Read and validate a file.
    pub fn load(path: &Path) -> Result<ConsoleConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        ConsoleConfig::parse(&text, &path.display().to_string())
    }

    /// Parse and validate TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<ConsoleConfig, ConfigError> {
        let mut cfg: ConsoleConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: origin.to_string(),
            message,
        };
        if cfg.interval < Duration::from_millis(100) {
            return Err(invalid(format!(
                "interval {:?} is too short (at least 100ms)",
                cfg.interval
            )));
        }
        if cfg.timeout.is_zero() {
            return Err(invalid("timeout must be above zero".into()));
        }
        if cfg.concurrency == 0 {
            return Err(invalid("concurrency must be at least 1".into()));
        }
        let mut seen = BTreeSet::new();
        for (i, r) in cfg.runners.iter_mut().enumerate() {
            let at = format!("runners[{i}]");
            check_name(&r.name).map_err(|m| invalid(format!("{at}.name: {m}")))?;
            if !seen.insert(r.name.clone()) {
                return Err(invalid(format!("{at}: duplicate runner name {:?}", r.name)));
            }
            r.metrics_url = normalize_metrics_url(&r.metrics_url)
                .map_err(|m| invalid(format!("{at}.metrics_url: {m}")))?;
            if let Some(s) = &r.session_url {
                check_http_url(s).map_err(|m| invalid(format!("{at}.session_url: {m}")))?;
            }
        }
        if let Some(url) = cfg.prometheus.as_ref().and_then(|p| p.url.as_deref()) {
            check_http_url(url).map_err(|m| invalid(format!("prometheus.url: {m}")))?;
        }
        Ok(cfg)
    }

    /// The `[[runners]]` entry named `name`; the error lists the known
    /// ones (`path` names the file in it).
    pub fn runner(&self, name: &str, path: &Path) -> Result<&RunnerEntry, ConfigError> {
        self.runners
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| ConfigError::UnknownRunner {
                name: name.to_string(),
                path: path.display().to_string(),
                known: self.runners.iter().map(|r| r.name.clone()).collect(),
            })
    }

    /// The configured runners as sources for the poller.
    pub fn sources(&self) -> Vec<RunnerSource> {
        self.runners
            .iter()
            .map(|r| RunnerSource {
                name: r.name.clone(),
                metrics_url: r.metrics_url.clone(),
                session_url: r.session_url.clone(),
                logs: r.logs.clone(),
            })
            .collect()
    }

    /// Poller options from `interval`, `timeout` and `concurrency`.
    pub fn poll_options(&self) -> PollOptions {
        PollOptions {
            interval: self.interval,
            timeout: self.timeout,
            concurrency: self.concurrency,
            ..Default::default()
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("is empty".into());
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{name:?} contains whitespace or control characters"
        ));
    }
    Ok(())
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http(s) URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} has no host or contains whitespace"));
    }
    Ok(())
}

/// `host:9252` → `http://host:9252/metrics`; `http://host:9252` →
/// `http://host:9252/metrics`; a URL with a path is kept as it is.
pub fn normalize_metrics_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    check_http_url(&full)?;
    let after_scheme = full.split_once("://").map(|(_, r)| r).unwrap_or_default();
    Ok(match after_scheme.find('/') {
        None => format!("{full}/metrics"),
        Some(i) if after_scheme[i..] == *"/" => format!("{full}metrics"),
        Some(_) => full,
    })
}

/// `--runner NAME=URL` (URL as in [`normalize_metrics_url`]).
pub fn parse_runner_flag(flag: &str) -> Result<RunnerSource, ConfigError> {
    let err = |message: String| ConfigError::Flag {
        flag: flag.to_string(),
        message,
    };
    let (name, url) = flag
        .split_once('=')
        .ok_or_else(|| err("expected NAME=URL, e.g. prm-5=http://10.0.0.5:9252/metrics".into()))?;
    let name = name.trim();
    check_name(name).map_err(|m| err(format!("name {m}")))?;
    let metrics_url = normalize_metrics_url(url).map_err(err)?;
    Ok(RunnerSource {
        name: name.to_string(),
        metrics_url,
        session_url: None,
        logs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/console.example.toml")
    }

    #[test]
    fn example_config_loads() {
        let cfg = ConsoleConfig::load(&example_path()).unwrap();
        assert_eq!(cfg.interval, Duration::from_secs(2));
        assert_eq!(cfg.timeout, Duration::from_secs(2));
        assert_eq!(cfg.concurrency, 32);
        assert!(cfg.runners.len() >= 2);
        let s = cfg.sources();
        assert!(s[0].metrics_url.ends_with("/metrics"), "{:?}", s[0]);
        assert!(!s[0].logs.is_empty());
        assert!(cfg.prometheus.is_some());
        let o = cfg.poll_options();
        assert_eq!(o.concurrency, 32);
    }

    #[test]
    fn defaults_when_empty() {
        let cfg = ConsoleConfig::parse("", "t").unwrap();
        assert_eq!(cfg, ConsoleConfig::default());
    }

    #[test]
    fn log_file() {
        let cfg = ConsoleConfig::parse("log_file = \"/tmp/c/console.log\"\n", "t").unwrap();
        assert_eq!(cfg.log_file, Some(PathBuf::from("/tmp/c/console.log")));
    }

    #[test]
    fn detach_key() {
        let cfg = ConsoleConfig::parse("detach_key = \"ctrl-q\"\n", "t").unwrap();
        assert_eq!(cfg.detach_key.map(|k| k.byte()), Some(0x11));
        let e = ConsoleConfig::parse("detach_key = \"q\"\n", "console.toml").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("console.toml") && e.contains("line 1"), "{e}");
        assert!(e.contains("detach key \"q\""), "{e}");
    }

    #[test]
    fn durations_and_numbers() {
        let cfg = ConsoleConfig::parse("interval = \"500ms\"\ntimeout = 3\n", "t").unwrap();
        assert_eq!(cfg.interval, Duration::from_millis(500));
        assert_eq!(cfg.timeout, Duration::from_secs(3));
    }

    #[test]
    fn unknown_key_is_rejected_with_its_line() {
        let text = "interval = \"2s\"\n\n[[runners]]\nname = \"a\"\nmetrics_url = \"http://a:9252\"\nlog = []\n";
        let e = ConsoleConfig::parse(text, "console.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("console.toml"), "{e}");
        assert!(e.contains("line 6"), "{e}");
        assert!(e.contains("unknown field `log`"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        let e = ConsoleConfig::parse("interval = \"2 parsecs\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = ConsoleConfig::parse("concurrency = 0\n", "c").unwrap_err();
        assert!(e.to_string().contains("concurrency"), "{e}");
        let dup = "[[runners]]\nname=\"a\"\nmetrics_url=\"a:1\"\n[[runners]]\nname=\"a\"\nmetrics_url=\"b:1\"\n";
        let e = ConsoleConfig::parse(dup, "c").unwrap_err();
        assert!(e.to_string().contains("duplicate runner name"), "{e}");
        let e = ConsoleConfig::parse("[[runners]]\nname=\"a\"\nmetrics_url=\"ftp://x\"\n", "c")
            .unwrap_err();
        assert!(e.to_string().contains("runners[0].metrics_url"), "{e}");
        let e = ConsoleConfig::parse("[prometheus]\nurl = \"nope\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("prometheus.url"), "{e}");
    }

    #[test]
    fn runner_by_name() {
        let text = "[[runners]]\nname=\"a\"\nmetrics_url=\"a:1\"\n[[runners]]\nname=\"b\"\nmetrics_url=\"b:1\"\n";
        let cfg = ConsoleConfig::parse(text, "c").unwrap();
        let p = Path::new("console.toml");
        assert_eq!(cfg.runner("b", p).unwrap().name, "b");
        let e = cfg.runner("z", p).unwrap_err().to_string();
        assert_eq!(
            e,
            "no runner named \"z\" in console.toml; known runners: a, b"
        );
        let e = ConsoleConfig::default()
            .runner("z", p)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("it has no [[runners]]"), "{e}");
    }

    #[test]
    fn metrics_urls_are_normalized() {
        let n = |s| normalize_metrics_url(s).unwrap();
        assert_eq!(n("10.0.0.5:9252"), "http://10.0.0.5:9252/metrics");
        assert_eq!(n("http://h:9252"), "http://h:9252/metrics");
        assert_eq!(n("http://h:9252/"), "http://h:9252/metrics");
        assert_eq!(n("https://h/custom/path"), "https://h/custom/path");
        assert!(normalize_metrics_url("http://").is_err());
    }

    #[test]
    fn runner_flag() {
        let s = parse_runner_flag("prm-5=http://10.0.0.5:9252/metrics").unwrap();
        assert_eq!(s.name, "prm-5");
        assert_eq!(s.metrics_url, "http://10.0.0.5:9252/metrics");
        let s = parse_runner_flag("x=localhost:9252").unwrap();
        assert_eq!(s.metrics_url, "http://localhost:9252/metrics");
        for bad in ["nourl", "=http://h:1", "a b=http://h:1", "a=ftp://h"] {
            let e = parse_runner_flag(bad).unwrap_err().to_string();
            assert!(e.starts_with("--runner"), "{bad}: {e}");
        }
    }
}
