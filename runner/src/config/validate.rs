//! The rules `sections` reads keys with, beyond `Ctx`'s general ones:
//! gitlab-runner's checks and termgate's, every problem with its line and key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ctx::{did_you_mean, Ctx, Sec};
use super::doc::Step;
use super::model::{Map, Raw, Section, Timestamp};
use super::schema::{has, IMPLEMENTED_EXECUTORS, IMPLEMENTED_FEATURE_FLAGS, UPSTREAM_EXECUTORS};
use super::sections::{RawConfig, RawDocker, RawRunner, RawSessionServer};
use super::{Config, DockerConfig, RunnerConfig, Secret, SessionServer};

pub(crate) fn config(ctx: &mut Ctx<'_>, raw: RawConfig) -> Config {
    let root = Sec {
        label: String::new(),
        scope: String::new(),
        dotted: "",
        path: Vec::new(),
        line: None,
    };
    raw.read(ctx, &root)
}

impl Ctx<'_> {
    /// `concurrent`: 0 would never run a job.
    pub(super) fn at_least_one(&mut self, s: &Sec, key: &str, v: Raw<i64>) -> Option<usize> {
        let n = self.usize(s, key, v)?;
        if n == 0 {
            let line = self.line(s, key);
            self.problem(line, s, key, "must be at least 1 (0 would never run a job)");
            return None;
        }
        Some(n)
    }

    /// `[session_server] max_pending`, `max_pending_per_peer`: 0 would
    /// refuse every connection.
    pub(super) fn pending_limit(&mut self, s: &Sec, key: &str, v: Raw<i64>) -> Option<usize> {
        let n = self.usize(s, key, v)?;
        if n == 0 {
            let line = self.line(s, key);
            self.problem(
                line,
                s,
                key,
                "must be at least 1 (0 would refuse every connection; leave the key out for the default)",
            );
            return None;
        }
        Some(n)
    }

    /// `[session_server] max_input_frame`: bytes, 1 ..= 64 MiB (a session
    /// may hold one such frame in memory).
    pub(super) fn frame_limit(&mut self, s: &Sec, key: &str, v: Raw<i64>) -> Option<usize> {
        let n = self.usize(s, key, v)?;
        if n == 0 || n > super::MAX_MAX_INPUT_FRAME {
            let line = self.line(s, key);
            self.problem(
                line,
                s,
                key,
                format!(
                    "must be between 1 and {} bytes (the largest paste one terminal frame may carry), found {n}",
                    super::MAX_MAX_INPUT_FRAME
                ),
            );
            return None;
        }
        Some(n)
    }

    /// `listen_address`, or the pre-2019 `metrics_server` alias with a warning.
    pub(super) fn listen_address(
        &mut self,
        root: &Sec,
        key: &str,
        current: Raw<String>,
        old: Raw<String>,
    ) -> Option<String> {
        let current = self.string(root, key, current);
        let old = self.string(root, "metrics_server", old);
        let old_line = self.doc.key_line(&[], "metrics_server");
        match (current, old) {
            (Some(_), Some(_)) => {
                self.problem(
                    old_line,
                    root,
                    "metrics_server",
                    "both listen_address and its deprecated alias metrics_server are set; remove metrics_server",
                );
                None
            }
            (None, Some(old)) => {
                let at = old_line.map(|l| format!(":{l}")).unwrap_or_default();
                self.warnings.push(format!(
                    "{}{at}: metrics_server is deprecated (removed from gitlab-runner in 2019); \
                     using it as listen_address = {old:?}, rename the key",
                    self.origin
                ));
                Some(old)
            }
            (current, None) => current,
        }
    }

    pub(super) fn session_server(
        &mut self,
        root: &Sec,
        key: &'static str,
        v: Option<Section<RawSessionServer>>,
    ) -> Option<SessionServer> {
        let raw = self.section(root, key, v)?;
        let s = Sec {
            label: format!("[{key}]"),
            scope: format!("[{key}]"),
            dotted: key,
            path: vec![Step::Key(key)],
            line: self.doc.header_line(&[], key),
        };
        Some(raw.read(self, &s))
    }

    /// `host:port`: the runner always adds `https://`.
    pub(super) fn advertise_address(
        &mut self,
        s: &Sec,
        key: &str,
        v: Raw<String>,
    ) -> Option<String> {
        let adv = self.string(s, key, v)?;
        if adv.to_ascii_lowercase().contains("://") {
            let line = self.line(s, key);
            let message = format!(
                "url not valid, scheme defined ({adv:?}); use host:port, \
                 the runner always adds https://"
            );
            self.problem(line, s, key, message);
            return None;
        }
        Some(adv)
    }

    /// `key_file`, which needs `cert_file` and the other way round.
    pub(super) fn key_file(
        &mut self,
        s: &Sec,
        key: &str,
        v: Raw<String>,
        cert_file: bool,
    ) -> Option<PathBuf> {
        let key_file = self.path(s, key, v);
        if cert_file != key_file.is_some() {
            let missing = if cert_file { "key_file" } else { "cert_file" };
            self.problem(
                s.line,
                s,
                missing,
                "cert_file and key_file must be set together",
            );
        }
        key_file
    }

    /// `[[runners]]` (or an inline array of tables).
    pub(super) fn runners(
        &mut self,
        root: &Sec,
        key: &'static str,
        v: Option<Section<Vec<Section<RawRunner>>>>,
    ) -> Vec<RunnerConfig> {
        let Some(v) = v else {
            return Vec::new();
        };
        let entries = match v {
            Section::Ok(entries) if self.doc.is_table_list(&[], key) => entries,
            _ => {
                self.type_error(root, key, "an array of tables ([[runners]])");
                return Vec::new();
            }
        };
        let Some(tables) = entries
            .into_iter()
            .map(Section::ok)
            .collect::<Option<Vec<_>>>()
        else {
            self.type_error(root, key, "an array of tables");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(tables.len());
        for (i, raw) in tables.into_iter().enumerate() {
            let label = format!("[[runners]] #{}", i + 1);
            let s = Sec {
                scope: label.clone(),
                label,
                dotted: key,
                path: vec![Step::Key(key), Step::Index(i)],
                line: self.doc.entry_line(key, i),
            };
            out.push(raw.read(self, &s));
        }
        out
    }

    pub(super) fn url(&mut self, s: &Sec, key: &str, v: Raw<String>) -> String {
        let Some(url) = self.string(s, key, v) else {
            self.problem(s.line, s, key, "missing (the GitLab instance URL)");
            return String::new();
        };
        let lower = url.to_ascii_lowercase();
        let http = lower.starts_with("http://") || lower.starts_with("https://");
        if !http && !url.contains('$') {
            let line = self.line(s, key);
            let message = format!("{url:?} is not an http:// or https:// URL");
            self.problem(line, s, key, message);
        }
        url
    }

    pub(super) fn token(&mut self, s: &Sec, key: &str, v: Raw<String>) -> Secret {
        let token = self.string(s, key, v);
        if token.is_none() {
            self.problem(s.line, s, key, "missing (the runner authentication token)");
        }
        Secret::new(token.unwrap_or_default())
    }

    /// A timestamp; Go's zero time (year 1), which gitlab-runner writes for
    /// "never", is `None`.
    pub(super) fn timestamp(
        &mut self,
        s: &Sec,
        key: &str,
        v: Raw<Timestamp>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::Datelike;
        self.take(s, key, v).map(|t| t.0).filter(|t| t.year() > 1)
    }

    pub(super) fn executor(&mut self, s: &Sec, key: &str, v: Raw<String>) -> Option<String> {
        let exec = self.string(s, key, v)?;
        if IMPLEMENTED_EXECUTORS.contains(&exec.as_str()) {
            return Some(exec);
        }
        let line = self.line(s, key);
        if has(UPSTREAM_EXECUTORS, &exec) {
            // A real gitlab-runner config loads; this runner just idles.
            self.warnings.push(format!(
                "{}:{}: {}: the {exec:?} executor is not implemented \
                 (termgate implements shell and docker); this runner will not request jobs",
                self.origin,
                line.unwrap_or(0),
                s.label
            ));
            return Some(exec);
        }
        let all = IMPLEMENTED_EXECUTORS.iter().copied();
        let hint = did_you_mean(&exec, all.chain(UPSTREAM_EXECUTORS.split_whitespace()));
        let message =
            format!("unknown executor {exec:?}; termgate implements shell and docker{hint}");
        self.problem(line, s, key, message);
        None
    }

    /// Feature flags: all kept, those termgate does not act on reported.
    pub(super) fn feature_flags(
        &mut self,
        s: &Sec,
        key: &'static str,
        v: Map<bool>,
    ) -> BTreeMap<String, bool> {
        let flags = self.map(s, key, "a boolean", v).unwrap_or_default();
        for flag in flags.keys() {
            if !IMPLEMENTED_FEATURE_FLAGS.contains(&flag.as_str()) {
                let line = self.line(s, key);
                self.ignored
                    .push((line, format!("{} {key}.{flag}", s.label)));
            }
        }
        flags
    }

    pub(super) fn docker(
        &mut self,
        s: &Sec,
        key: &'static str,
        v: Option<Section<RawDocker>>,
    ) -> Option<DockerConfig> {
        let raw = self.section(s, key, v)?;
        let mut path = s.path.clone();
        path.push(Step::Key(key));
        let d = Sec {
            label: format!("{} [runners.docker]", s.label),
            scope: s.label.clone(),
            dotted: "runners.docker",
            line: self.doc.header_line(&s.path, key),
            path,
        };
        Some(raw.read(self, &d))
    }
}
