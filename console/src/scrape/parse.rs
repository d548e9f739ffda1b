//! Prometheus text exposition → [`Sample`].
//!
//! Lines are classified with `prometheus-parse`'s tokenizer; the families the
//! console shows are folded into a [`Sample`] by [`SampleBuilder`], which the
//! Prometheus HTTP API source feeds too, so both paths give the same numbers.
//! Anything that is not exposition text (an HTML login page, JSON, a
//! truncated line) is a [`ParseError`] with a short reason, never a panic.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use prometheus_parse::LineInfo;
use termgate::metrics as names;

use crate::model::{RunnerVersion, Sample};

/// Bodies above this are refused (the client stops reading there too).
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Pre-rename (gitlab-runner < 10) names of the same families.
const OLD_JOBS: &str = "ci_runner_builds";
const OLD_VERSION_INFO: &str = "ci_runner_version_info";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not Prometheus text: `HTML page`, `JSON`, `line 3: <excerpt>`.
    #[error("garbage: {0}")]
    Garbage(String),
    /// Valid but without a single sample.
    #[error("empty: no samples")]
    Empty,
    #[error("too large: over {} MiB", .0 >> 20)]
    TooLarge(usize),
}

/// Parse one scrape. `Sample::at` is left `None` (the caller stamps it).
pub fn parse_metrics(text: &str) -> Result<Sample, ParseError> {
    if text.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge(MAX_BODY_BYTES));
    }
    if let Some(first) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
        if first.starts_with('<') {
            return Err(ParseError::Garbage("HTML page".into()));
        }
        if first.starts_with('{') || first.starts_with('[') {
            return Err(ParseError::Garbage("JSON".into()));
        }
    }
    let mut b = SampleBuilder::default();
    let mut samples = 0usize;
    for (i, line) in text.lines().enumerate() {
        let bad = || ParseError::Garbage(format!("line {}: {}", i + 1, excerpt(line)));
        match LineInfo::parse(line) {
            LineInfo::Empty | LineInfo::Doc { .. } | LineInfo::Type { .. } => {}
            LineInfo::Ignored => {
                if !line.trim_start().starts_with('#') {
                    return Err(bad());
                }
            }
            LineInfo::Sample {
                metric_name,
                labels,
                value,
                ..
            } => {
                let v = parse_value(value).ok_or_else(bad)?;
                samples += 1;
                if !SampleBuilder::wants(metric_name) {
                    continue;
                }
                let labels = match labels {
                    Some(raw) => parse_labels(raw).ok_or_else(bad)?,
                    None => Vec::new(),
                };
                b.add(metric_name, &labels, v);
            }
        }
    }
    if samples == 0 {
        return Err(ParseError::Empty);
    }
    Ok(b.finish())
}

/// Go's float syntax as Prometheus writes it (`NaN`, `+Inf`, `1e+06`).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') =>
        {
            None
        }
        _ => s.parse().ok(),
    }
}

/// `a="x",b="y\"z"` → pairs; `None` if it is not a label set.
pub fn parse_labels(raw: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = raw.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let after = rest[eq + 1..].trim_start();
        let body = after.strip_prefix('"')?;
        let mut val = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            let (j, c) = chars.next()?;
            match c {
                '"' => break j,
                '\\' => match chars.next()?.1 {
                    'n' => val.push('\n'),
                    other => val.push(other),
                },
                c => val.push(c),
            }
        };
        out.push((key.to_string(), val));
        rest = body[end + 1..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return None,
        };
    }
    Some(out)
}

fn excerpt(line: &str) -> String {
    let clean: String = line
        .trim()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(41)
        .collect();
    if clean.chars().count() > 40 {
        format!("{}…", clean.chars().take(40).collect::<String>())
    } else {
        clean
    }
}

/// Folds `(metric, labels, value)` triples into a [`Sample`]. Used by the
/// text parser and by the Prometheus API source alike.
#[derive(Debug, Default)]
pub struct SampleBuilder {
    s: Sample,
    /// Saw a family that only a gitlab-runner-like process exports.
    is_runner: bool,
    version_new: Option<RunnerVersion>,
    version_old: Option<RunnerVersion>,
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn add_opt(slot: &mut Option<f64>, v: f64) {
    *slot = Some(slot.unwrap_or(0.0) + v);
}

fn add_map(map: &mut BTreeMap<String, f64>, key: &str, v: f64) {
    *map.entry(key.to_string()).or_insert(0.0) += v;
}

impl SampleBuilder {
    /// The metric names that feed a [`Sample`].
    pub const METRICS: &'static [&'static str] = &[
        names::JOBS,
        OLD_JOBS,
        names::JOBS_TOTAL,
        names::CONCURRENT,
        names::SESSION_TERMINALS_AVAILABLE,
        names::SESSION_TERMINALS_ACTIVE,
        names::SESSION_TERMINALS_IDLE,
        names::SESSION_WEBSOCKET_CONNECTIONS,
        names::ERRORS_TOTAL,
        names::SESSION_REJECTIONS_TOTAL,
        names::SESSION_CLOSES_TOTAL,
        names::FAILED_JOBS_TOTAL,
        names::VERSION_INFO,
        OLD_VERSION_INFO,
        names::PROCESS_CPU_SECONDS_TOTAL,
        names::PROCESS_RESIDENT_MEMORY_BYTES,
        names::PROCESS_START_TIME_SECONDS,
        names::UNHEALTHY,
        names::UNHEALTHY_UNTIL_TIMESTAMP_SECONDS,
    ];

    pub fn wants(metric: &str) -> bool {
        Self::METRICS.contains(&metric)
    }

    pub fn add(&mut self, metric: &str, labels: &[(String, String)], v: f64) {
        if v.is_nan() {
            return;
        }
        let s = &mut self.s;
        match metric {
            names::JOBS | OLD_JOBS => {
                add_opt(&mut s.jobs, v);
                add_map(&mut s.jobs_by_state, label(labels, names::label::STATE), v);
            }
            names::JOBS_TOTAL => add_opt(&mut s.jobs_total, v),
            names::CONCURRENT => add_opt(&mut s.concurrent, v),
            names::SESSION_TERMINALS_AVAILABLE => add_opt(&mut s.terminals_available, v),
            names::SESSION_TERMINALS_ACTIVE => add_opt(&mut s.terminals_active, v),
            names::SESSION_TERMINALS_IDLE => add_opt(&mut s.terminals_idle, v),
            names::SESSION_WEBSOCKET_CONNECTIONS => {
                add_map(&mut s.ws_connections, label(labels, names::label::ROLE), v)
            }
            names::ERRORS_TOTAL => {
                add_map(&mut s.errors_total, label(labels, names::label::LEVEL), v)
            }
            names::SESSION_REJECTIONS_TOTAL => add_map(
                &mut s.rejections_total,
                label(labels, names::label::REASON),
                v,
            ),
            names::SESSION_CLOSES_TOTAL => {
                add_map(&mut s.closes_total, label(labels, names::label::REASON), v)
            }
            names::FAILED_JOBS_TOTAL => add_map(
                &mut s.failed_jobs_total,
                label(labels, names::label::FAILURE_REASON),
                v,
            ),
            names::VERSION_INFO | OLD_VERSION_INFO => {
                let ver = RunnerVersion {
                    name: label(labels, "name").to_string(),
                    version: label(labels, "version").to_string(),
                };
                if metric == names::VERSION_INFO {
                    self.version_new.get_or_insert(ver);
                } else {
                    self.version_old.get_or_insert(ver);
                }
            }
            names::PROCESS_CPU_SECONDS_TOTAL => add_opt(&mut s.cpu_seconds_total, v),
            names::PROCESS_RESIDENT_MEMORY_BYTES => add_opt(&mut s.rss_bytes, v),
            names::PROCESS_START_TIME_SECONDS => add_opt(&mut s.start_time_seconds, v),
            names::UNHEALTHY | names::UNHEALTHY_UNTIL_TIMESTAMP_SECONDS => {
                let name = match label(labels, names::label::RUNNER_NAME) {
                    "" => label(labels, names::label::RUNNER),
                    n => n,
                };
                let u = s.unhealthy.entry(name.to_string()).or_default();
                if metric == names::UNHEALTHY {
                    u.disabled |= v > 0.0;
                } else if v > 0.0 && v.is_finite() && v < 1e12 {
                    let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(v);
                    u.until = Some(u.until.map_or(at, |t| t.max(at)));
                }
            }
            _ => return,
        }
        if !metric.starts_with("process_") {
            self.is_runner = true;
        }
    }

    /// The sample. A runner that exports its families but has no job right
    /// now reports `jobs = 0` (upstream omits `gitlab_runner_jobs` then).
    pub fn finish(mut self) -> Sample {
        self.s.version = self.version_new.or(self.version_old);
        if self.s.jobs.is_none() && self.is_runner {
            self.s.jobs = Some(0.0);
        }
        self.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TERMGATE: &str = r#"# HELP gitlab_runner_jobs The current number of running builds.
# TYPE gitlab_runner_jobs gauge
gitlab_runner_jobs{executor_stage="shell_run",runner="abcd1234",runner_name="r1",stage="step_script",state="running",system_id="s_1"} 3
gitlab_runner_jobs{executor_stage="prepare",runner="abcd1234",runner_name="r1",stage="prepare_executor",state="running",system_id="s_1"} 1
gitlab_runner_jobs{executor_stage="shell_run",runner="abcd1234",runner_name="r1",stage="terminal_hold",state="terminal_hold",system_id="s_1"} 2
# TYPE gitlab_runner_concurrent gauge
gitlab_runner_concurrent 8
gitlab_runner_jobs_total{runner="abcd1234",runner_name="r1",system_id="s_1"} 40
gitlab_runner_errors_total{level="error"} 2
gitlab_runner_errors_total{level="warning"} 5
gitlab_runner_failed_jobs_total{failure_reason="script_failure",runner="abcd1234",runner_name="r1",system_id="s_1"} 3
gitlab_runner_session_terminals_available 2
gitlab_runner_session_terminals_active 1
gitlab_runner_session_terminals_idle 1
gitlab_runner_session_websocket_connections{role="interactive"} 1
gitlab_runner_session_websocket_connections{role="observer"} 2
gitlab_runner_session_rejections_total{reason="unauthorized"} 4
gitlab_runner_session_closes_total{reason="client_left"} 7
gitlab_runner_version_info{architecture="amd64",branch="unknown",built_at="unknown",go_version="rust",name="termgate-runner",os="linux",revision="abc123",version="0.1.0"} 1
gitlab_runner_session_duration_seconds_bucket{le="+Inf"} 3
process_cpu_seconds_total 1.25
process_resident_memory_bytes 1.2e+07
process_start_time_seconds 1.7e9
"#;

    #[test]
    fn termgate_body() {
        let s = parse_metrics(TERMGATE).unwrap();
        assert_eq!(s.jobs, Some(6.0));
        assert_eq!(s.jobs_by_state["running"], 4.0);
        assert_eq!(s.jobs_by_state["terminal_hold"], 2.0);
        assert_eq!(s.concurrent, Some(8.0));
        assert_eq!(s.jobs_total, Some(40.0));
        assert_eq!(s.errors_total["warning"], 5.0);
        assert_eq!(s.errors_sum(), Some(7.0));
        assert_eq!(s.failed_jobs_total["script_failure"], 3.0);
        assert_eq!(s.terminals_available, Some(2.0));
        assert_eq!(s.terminals_active, Some(1.0));
        assert_eq!(s.terminals_idle, Some(1.0));
        assert_eq!(s.ws_total(), Some(3.0));
        assert_eq!(s.rejections_total["unauthorized"], 4.0);
        assert_eq!(s.closes_total["client_left"], 7.0);
        let v = s.version.unwrap();
        assert_eq!(
            (v.name.as_str(), v.version.as_str()),
            ("termgate-runner", "0.1.0")
        );
        assert_eq!(s.cpu_seconds_total, Some(1.25));
        assert_eq!(s.rss_bytes, Some(12e6));
        assert_eq!(s.start_time_seconds, Some(1.7e9));
        assert_eq!(s.at, None);
    }

    /// The runner's health gauges (issue 20, item 5), as termgate-runner
    /// exports them: one series per `[[runners]]` entry, 0 while it
    /// requests jobs. `r2` is disabled until 1746542520 (15:42:00 UTC).
    const UNHEALTHY: &str = r#"# HELP gitlab_runner_unhealthy 1 while the runner is disabled after unhealthy_requests_limit failed job requests in a row, else 0.
# TYPE gitlab_runner_unhealthy gauge
gitlab_runner_unhealthy{runner="abcd1234",runner_name="r1",system_id="s_1"} 0
gitlab_runner_unhealthy{runner="efgh5678",runner_name="r2",system_id="s_1"} 1
gitlab_runner_unhealthy{runner="ijkl9012",runner_name="",system_id="s_1"} 0
# HELP gitlab_runner_unhealthy_until_timestamp_seconds When a disabled runner requests jobs again (Unix seconds); 0 while it is not disabled.
# TYPE gitlab_runner_unhealthy_until_timestamp_seconds gauge
gitlab_runner_unhealthy_until_timestamp_seconds{runner="abcd1234",runner_name="r1",system_id="s_1"} 0
gitlab_runner_unhealthy_until_timestamp_seconds{runner="efgh5678",runner_name="r2",system_id="s_1"} 1746542520
gitlab_runner_unhealthy_until_timestamp_seconds{runner="ijkl9012",runner_name="",system_id="s_1"} 0
"#;

    #[test]
    fn unhealthy_runners_and_when_they_resume() {
        use crate::model::Unhealthy;
        let s = parse_metrics(UNHEALTHY).unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_746_542_520);
        assert_eq!(
            s.unhealthy,
            BTreeMap::from([
                ("r1".to_string(), Unhealthy::default()),
                (
                    "r2".to_string(),
                    Unhealthy {
                        disabled: true,
                        until: Some(at)
                    }
                ),
                // No name: the short token.
                ("ijkl9012".to_string(), Unhealthy::default()),
            ])
        );
        assert_eq!(s.disabled().collect::<Vec<_>>(), [("r2", Some(at))]);
        assert_eq!(s.disabled_of(), (1, 3));
        assert_eq!(s.resumes_at(), Some(at));
        // A termgate runner: exporting them makes it a runner.
        assert_eq!(s.jobs, Some(0.0));
        // Upstream exports neither: nothing disabled, nothing to count.
        let s = parse_metrics(TERMGATE).unwrap();
        assert!(s.unhealthy.is_empty());
        assert_eq!(s.disabled_of(), (0, 0));
    }

    #[test]
    fn idle_runner_has_zero_jobs_but_plain_process_has_none() {
        let s = parse_metrics("gitlab_runner_concurrent 4\n").unwrap();
        assert_eq!(s.jobs, Some(0.0));
        let s = parse_metrics("process_cpu_seconds_total 1\n").unwrap();
        assert_eq!(s.jobs, None);
        assert_eq!(s.terminals_available, None);
    }

    #[test]
    fn not_prometheus_text() {
        let e = |t: &str| parse_metrics(t).unwrap_err().to_string();
        assert_eq!(
            e("<!DOCTYPE html>\n<html><body>Sign in</body></html>"),
            "garbage: HTML page"
        );
        assert_eq!(e("  <html>"), "garbage: HTML page");
        assert_eq!(e("{\"status\":\"ok\"}"), "garbage: JSON");
        assert_eq!(
            e("# HELP a b\na 1\nhello world\n"),
            "garbage: line 3: hello world"
        );
        assert_eq!(
            e("a 1\ngitlab_runner_jobs{state=\"runn"),
            "garbage: line 2: gitlab_runner_jobs{state=\"runn"
        );
        assert_eq!(e(""), "empty: no samples");
        assert_eq!(e("# only comments\n"), "empty: no samples");
        let long = format!("x{}", "y".repeat(100));
        assert!(e(&long).ends_with('…'), "{}", e(&long));
        let big = "a 1\n".repeat(MAX_BODY_BYTES / 4 + 1);
        assert_eq!(e(&big), "too large: over 8 MiB");
    }

    #[test]
    fn labels() {
        let l = parse_labels(r#"a="x", b="y\"z\\",c="",d="1,2=3""#).unwrap();
        assert_eq!(l[0], ("a".into(), "x".into()));
        assert_eq!(l[1], ("b".into(), "y\"z\\".into()));
        assert_eq!(l[2], ("c".into(), "".into()));
        assert_eq!(l[3], ("d".into(), "1,2=3".into()));
        assert_eq!(parse_labels(r#"a="x",b="y","#).unwrap().len(), 2);
        for bad in [r#"a=x"#, r#"a="x"#, r#"="x""#, r#"a="x" b="y""#, "a"] {
            assert!(parse_labels(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn values() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("1.2e+07"), Some(1.2e7));
        assert_eq!(parse_value("infinity"), None);
        assert_eq!(parse_value("abc"), None);
        // NaN gauges do not poison sums.
        let s = parse_metrics("gitlab_runner_session_terminals_available NaN\n").unwrap();
        assert_eq!(s.terminals_available, None);
    }

    /// The repo's `tests/fixtures`.
    pub(crate) fn fixtures_dir() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
    }

    #[test]
    fn every_fixture_parses() {
        let dir = fixtures_dir().join("metrics");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "prom") {
                let text = std::fs::read_to_string(&p).unwrap();
                let s = parse_metrics(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                // Upstream runners export no session metrics.
                assert_eq!(s.terminals_available, None, "{}", p.display());
                assert!(s.ws_connections.is_empty());
                n += 1;
            }
        }
        assert!(n >= 4, "only {n} fixtures in {}", dir.display());
    }

    #[test]
    fn old_upstream_fixture() {
        let p = fixtures_dir().join("metrics/gitlab-runner-10.0.0-beta.28-docs.prom");
        let s = parse_metrics(&std::fs::read_to_string(p).unwrap()).unwrap();
        let v = s.version.clone().unwrap();
        assert_eq!(v.name, "gitlab-runner");
        assert_eq!(v.version, "10.0.0~beta.28.g35e724fa");
        assert_eq!(v.short(), "gitlab 10.0");
        assert_eq!(s.jobs, Some(1.0));
        assert_eq!(s.jobs_by_state["running"], 1.0);
        assert_eq!(s.cpu_seconds_total, Some(0.18));
        assert_eq!(s.rss_bytes, Some(2.3191552e7));
        assert_eq!(s.start_time_seconds, Some(1.47689813837e9));
        assert_eq!(s.concurrent, None);
        assert!(s.errors_total.is_empty());
    }

    #[test]
    fn modern_upstream_fixtures_are_runners_without_jobs() {
        let p = fixtures_dir().join("metrics/gitlab-runner-mr5558-request-concurrency.prom");
        let s = parse_metrics(&std::fs::read_to_string(p).unwrap()).unwrap();
        // Nothing the console shows, and nothing invented.
        assert_eq!(s, Sample::default());
        let p = fixtures_dir().join("metrics/gitlab-runner-blog-zh-partial.prom");
        let s = parse_metrics(&std::fs::read_to_string(p).unwrap()).unwrap();
        assert_eq!(s.version, None);
        assert_eq!(s.cpu_seconds_total, None);
    }

    /// Contract: what the real runner renders parses into the right sample.
    #[test]
    fn real_runner_metrics() {
        use termgate_runner::builds::{BuildInfo, Builds, ProcessStateCell};
        let builds = Builds::default();
        let m = termgate_runner::metrics::Metrics::new(
            builds.clone(),
            ProcessStateCell::default(),
            "0.3.1",
            "abc",
        )
        .unwrap();
        for (id, state) in [(1, "running"), (2, "running"), (3, "pending")] {
            builds.insert(BuildInfo {
                id,
                runner: "abcd1234".into(),
                runner_name: "r1".into(),
                system_id: "s_1".into(),
                project_url: "https://gitlab.example.com/a/b".into(),
                state,
                stage: "step_script".into(),
                executor_stage: "shell_run".into(),
                started: std::time::Instant::now(),
            });
        }
        m.set_concurrent(8);
        m.session_terminals_available.set(5);
        m.session_terminals_active.set(2);
        m.session_websocket_connections
            .with_label_values(&["observer"])
            .set(3);
        m.errors_total.with_label_values(&["error"]).inc_by(4);
        m.job_started("abcd1234", "r1", "s_1");
        let text = m.render();
        let s = parse_metrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(s.jobs, Some(3.0), "{text}");
        assert_eq!(s.jobs_by_state.get("running"), Some(&2.0));
        assert_eq!(s.concurrent, Some(8.0));
        assert_eq!(s.terminals_available, Some(5.0));
        assert_eq!(s.terminals_active, Some(2.0));
        assert_eq!(s.terminals_idle, Some(0.0));
        assert_eq!(s.ws_connections.get("observer"), Some(&3.0));
        assert_eq!(s.errors_total.get("error"), Some(&4.0));
        assert_eq!(
            s.errors_total.get("warning"),
            Some(&0.0),
            "levels pre-initialised"
        );
        assert_eq!(s.jobs_total, Some(1.0));
        assert_eq!(
            s.version.as_ref().map(|v| v.short()),
            Some("termgate 0.3".into())
        );
        if cfg!(target_os = "linux") {
            assert!(s.cpu_seconds_total.is_some() && s.rss_bytes.is_some());
            assert!(s.start_time_seconds.is_some());
        }
    }

    /// What a runner can export, rendered as text.
    #[derive(Debug, Clone)]
    struct Exported {
        jobs: Vec<(String, u32)>,
        errors: Vec<(String, u32)>,
        available: Option<u32>,
        cpu: Option<f64>,
    }

    fn exported() -> impl Strategy<Value = Exported> {
        let state = prop_oneof![Just("running"), Just("terminal_hold"), Just("x y,=\"z")];
        (
            proptest::collection::vec((state.prop_map(String::from), 0u32..1000), 0..5),
            proptest::collection::btree_map("[a-z]{1,8}", 0u32..100_000, 0..4),
            proptest::option::of(0u32..500),
            proptest::option::of(0.0f64..1e6),
        )
            .prop_map(|(jobs, errors, available, cpu)| Exported {
                jobs,
                errors: errors.into_iter().collect(),
                available,
                cpu,
            })
    }

    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    fn render(e: &Exported) -> String {
        let mut t = String::from("# HELP gitlab_runner_jobs x\n# TYPE gitlab_runner_jobs gauge\n");
        for (i, (state, n)) in e.jobs.iter().enumerate() {
            t += &format!(
                "gitlab_runner_jobs{{stage=\"s{i}\",state=\"{}\"}} {n}\n",
                escape(state)
            );
        }
        for (level, n) in &e.errors {
            t += &format!("gitlab_runner_errors_total{{level=\"{level}\"}} {n}\n");
        }
        if let Some(a) = e.available {
            t += &format!("gitlab_runner_session_terminals_available {a}\n");
        }
        if let Some(c) = e.cpu {
            t += &format!("process_cpu_seconds_total {c:e}\n");
        }
        t += "gitlab_runner_concurrent 10\n";
        t
    }

    proptest! {
        /// Label sets as an exporter escapes them parse back.
        #[test]
        fn fuzz_labels_round_trip(
            labels in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,10}", "\\PC{0,20}"), 0..5),
            space in any::<bool>(),
        ) {
            let sep = if space { ", " } else { "," };
            let text = labels
                .iter()
                .map(|(k, v)| {
                    let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect::<Vec<_>>()
                .join(sep);
            prop_assert_eq!(parse_labels(&text), Some(labels));
        }

        #[test]
        fn fuzz_labels_never_panic(s in "[a-z_=\",\\\\ ]{0,40}|\\PC{0,40}") {
            if let Some(pairs) = parse_labels(&s) {
                prop_assert!(pairs.iter().all(|(k, _)| !k.is_empty()));
            }
        }

        #[test]
        fn fuzz_never_panics_on_any_text(s in "\\PC*") {
            let _ = parse_metrics(&s);
        }

        #[test]
        fn fuzz_never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_metrics(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn fuzz_never_panics_on_mangled_exposition(cut in 0usize..4000, junk in "[ -~{}\"=,\\\\\n]{0,40}") {
            let mut t = TERMGATE.to_string();
            let cut = (0..=cut.min(t.len())).rev().find(|i| t.is_char_boundary(*i)).unwrap_or(0);
            t.truncate(cut);
            t.push_str(&junk);
            let _ = parse_metrics(&t);
        }

        #[test]
        fn fuzz_round_trips(e in exported()) {
            let s = parse_metrics(&render(&e)).unwrap();
            let jobs: u32 = e.jobs.iter().map(|(_, n)| n).sum();
            prop_assert_eq!(s.jobs, Some(f64::from(jobs)));
            for (state, _) in &e.jobs {
                let want: u32 = e.jobs.iter().filter(|(s, _)| s == state).map(|(_, n)| n).sum();
                prop_assert_eq!(s.jobs_by_state.get(state).copied(), Some(f64::from(want)));
            }
            let errs: BTreeMap<String, f64> =
                e.errors.iter().map(|(k, v)| (k.clone(), f64::from(*v))).collect();
            prop_assert_eq!(&s.errors_total, &errs);
            prop_assert_eq!(s.terminals_available, e.available.map(f64::from));
            prop_assert_eq!(s.cpu_seconds_total, e.cpu);
        }
    }
}

#[cfg(test)]
mod upstream_fleet_row {
    use std::time::SystemTime;

    use crate::model::{Health, RunnerSource, RunnerState};

    /// A real gitlab-runner scrape fills the Fleet row with what it has and
    /// `-` for termgate's session columns, never an error.
    #[test]
    fn upstream_scrape_populates_a_fleet_row() {
        let fixtures =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/metrics");
        let text = std::fs::read_to_string(fixtures.join("gitlab-runner-10.0.0-beta.28-docs.prom"))
            .unwrap();
        let sample = super::parse_metrics(&text).unwrap();
        assert!(
            sample.terminals_available.is_none(),
            "upstream has no session metrics"
        );
        let now = SystemTime::now();
        let mut st = RunnerState::new(
            RunnerSource {
                name: "prm-4".into(),
                metrics_url: "http://10.0.0.4:9252/metrics".into(),
                session_url: None,
                logs: vec![],
            },
            now,
        );
        st.health = Health::Up;
        st.last_ok = Some(now);
        st.latest = Some(sample);
        let snap = crate::model::Snapshot {
            runners: vec![st],
            ..Default::default()
        };
        let app = crate::app::App::new(crate::ui::widgets::Theme::MONO, now);
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 12)).unwrap();
        term.draw(|f| {
            crate::ui::render(f, &app, &snap, now);
        })
        .unwrap();
        let buf = term.backend().buffer();
        let row = (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .find(|l| l.contains("prm-4"))
            .unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1], "up", "{row}");
        assert!(
            cols[2] == "gitlab",
            "version column from ci_runner_version_info: {row}"
        );
        assert!(row.contains(" - "), "session columns show '-': {row}");
    }
}
