//! Operator access per runner: the operator API endpoint console.toml gives
//! a runner (`session_url`, token, pinned fingerprint), or why there is
//! none. The Sessions poller and the attach both start from this.

use std::sync::Arc;

use crate::config::{ConsoleConfig, RunnerEntry};
use crate::model::RunnerSource;
use crate::operator_client::OperatorEndpoint;

/// The hint a runner without operator access shows on the Sessions screen.
pub const NO_ACCESS_HINT: &str = "no session_url/operator token: see README";

/// One runner's operator access.
#[derive(Debug, Clone)]
pub struct OperatorAccess {
    pub runner: String,
    /// The endpoint, or why there is none (a hint or a config error).
    pub endpoint: Result<Arc<OperatorEndpoint>, String>,
}

impl OperatorAccess {
    /// From a console.toml entry: no `session_url` → the hint; else the
    /// endpoint, or the reason the entry is not enough (no token, no
    /// fingerprint without `insecure`, an unreadable token file).
    pub fn from_entry(entry: &RunnerEntry, insecure: bool) -> OperatorAccess {
        let endpoint = match entry.session_url {
            None => Err(NO_ACCESS_HINT.to_string()),
            Some(_) => OperatorEndpoint::from_entry(entry, insecure)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        };
        OperatorAccess {
            runner: entry.name.clone(),
            endpoint,
        }
    }

    /// No access: `why`.
    pub fn none(runner: &str, why: &str) -> OperatorAccess {
        OperatorAccess {
            runner: runner.to_string(),
            endpoint: Err(why.to_string()),
        }
    }
}

/// One access per source, in order: console.toml's entry of the same name
/// when there is one, else the hint (a `--runner` flag carries no token).
pub fn for_sources(
    sources: &[RunnerSource],
    cfg: Option<&ConsoleConfig>,
    insecure: bool,
) -> Vec<OperatorAccess> {
    sources
        .iter()
        .map(
            |s| match cfg.and_then(|c| c.runners.iter().find(|r| r.name == s.name)) {
                Some(entry) => OperatorAccess::from_entry(entry, insecure),
                None => OperatorAccess::none(&s.name, NO_ACCESS_HINT),
            },
        )
        .collect()
}

/// The endpoints of the runners that have one.
pub fn endpoints(access: &[OperatorAccess]) -> Vec<Arc<OperatorEndpoint>> {
    access
        .iter()
        .filter_map(|a| a.endpoint.as_ref().ok().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_without_a_session_url_get_the_hint() {
        let text = r#"
[[runners]]
name = "a"
metrics_url = "a:9252"
[[runners]]
name = "b"
metrics_url = "b:9252"
session_url = "https://b:8093"
operator_token = "tgo_x"
[[runners]]
name = "c"
metrics_url = "c:9252"
session_url = "https://c:8093"
"#;
        let cfg = ConsoleConfig::parse(text, "t").unwrap();
        let mut sources = cfg.sources();
        sources.push(crate::config::parse_runner_flag("d=d:9252").unwrap());
        let a = for_sources(&sources, Some(&cfg), true);
        let names: Vec<&str> = a.iter().map(|a| a.runner.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(a[0].endpoint.as_ref().unwrap_err(), NO_ACCESS_HINT);
        let b = a[1].endpoint.as_ref().unwrap();
        assert_eq!(b.base_url, "https://b:8093");
        let c = a[2].endpoint.as_ref().unwrap_err();
        assert!(c.contains("token"), "{c}");
        assert_eq!(a[3].endpoint.as_ref().unwrap_err(), NO_ACCESS_HINT);
        assert_eq!(endpoints(&a).len(), 1);
    }
}
