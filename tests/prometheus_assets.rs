//! Issue 21, items 1 and 2: the Grafana dashboard and the Prometheus alert
//! rules in `assets/` use only metric names that exist, are shaped as
//! Grafana and Prometheus expect, and the rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`), with a firing and a
//! not-firing case for every alert. README's "Alert rules" configuration
//! passes `promtool check config`.
//!
//! The promtool checks need `promtool` on PATH (Debian's `prometheus`,
//! `scripts/setup-test-deps.sh`); without it they are skipped, unless
//! `TERMGATE_REQUIRE_PROMTOOL=1` (CI). The live check of every dashboard
//! query is `runner/tests/e2e/dashboard.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const RULES: &str = "assets/prometheus/termgate-rules.yml";
const RULE_TESTS: &str = "assets/prometheus/termgate-rules.test.yml";
const DASHBOARD: &str = "assets/grafana/termgate.json";

/// Every alert of the rules file: name → the rule.
fn alerts() -> BTreeMap<String, serde_norway::Value> {
    let text = std::fs::read_to_string(root().join(RULES)).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("only alerting rules");
            assert!(
                out.insert(name.to_string(), rule.clone()).is_none(),
                "{name} twice"
            );
        }
    }
    out
}

/// The dashboard's PromQL: every target's `expr`, rows' nested panels too.
fn dashboard_exprs(dash: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let title = p["title"].as_str().unwrap_or_default().to_string();
                out.push((title, t["expr"].as_str().unwrap_or_default().to_string()));
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(DASHBOARD)).unwrap()).unwrap()
}

/// The metric names `src/metrics.rs` defines (`pub const X: &str = "…"`).
fn known_metric_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("src/metrics.rs")).unwrap();
    let mut names = BTreeSet::new();
    let mut pending = false;
    for line in text.lines() {
        let l = line.trim();
        // Only top-level constants: label names and values live in modules.
        if line.starts_with("pub const ") && line.contains(": &str") {
            pending = true;
        }
        if pending {
            if let Some(q) = l.split('"').nth(1) {
                names.insert(q.to_string());
                pending = false;
            }
        }
    }
    assert!(names.len() > 30, "only {} metric names found", names.len());
    names
}

/// The metric names an expression reads (identifiers starting with
/// `gitlab_runner_` or `process_`, histogram suffixes removed), and `up`.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            let w = &expr[start..i];
            // No label name starts so (they are `instance`, `state`, …).
            if w.starts_with("gitlab_runner_") || w.starts_with("process_") || w == "up" {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| w.strip_suffix(s))
                    .unwrap_or(w);
                out.insert(base.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn metric_names_in_the_dashboard_and_the_rules_exist() {
    let known = known_metric_names();
    let mut exprs: Vec<(String, String)> = dashboard_exprs(&dashboard());
    for (name, rule) in alerts() {
        exprs.push((name, rule["expr"].as_str().unwrap().to_string()));
    }
    let mut used = BTreeSet::new();
    for (what, expr) in &exprs {
        let names = metrics_in(expr);
        assert!(!names.is_empty(), "{what}: no metric in {expr:?}");
        for n in names {
            assert!(
                n == "up" || known.contains(&n),
                "{what}: {n} is not a metric src/metrics.rs defines ({expr})"
            );
            used.insert(n);
        }
    }
    // What the issue asks the dashboard and the rules to show.
    for wanted in [
        "gitlab_runner_session_terminals_available",
        "gitlab_runner_session_terminals_active",
        "gitlab_runner_session_terminals_idle",
        "gitlab_runner_session_websocket_connections",
        "gitlab_runner_session_rejections_total",
        "gitlab_runner_session_closes_total",
        "gitlab_runner_session_duration_seconds",
        "gitlab_runner_jobs",
        "gitlab_runner_failed_jobs_total",
        "gitlab_runner_errors_total",
        "gitlab_runner_api_request_statuses_total",
        "gitlab_runner_session_certificate_expiry_timestamp_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "up",
    ] {
        assert!(used.contains(wanted), "nothing reads {wanted}");
    }
}

#[test]
fn metrics_in_finds_metrics_not_labels() {
    assert_eq!(
        metrics_in(
            "histogram_quantile(0.5, sum by (instance, le) (rate(gitlab_runner_session_duration_seconds_bucket{instance=~\"$runner\"}[5m])))"
        ),
        BTreeSet::from(["gitlab_runner_session_duration_seconds".to_string()])
    );
    assert_eq!(
        metrics_in(
            "up == 0 and on (job, instance) present_over_time(gitlab_runner_version_info[1d])"
        ),
        BTreeSet::from(["up".to_string(), "gitlab_runner_version_info".to_string()])
    );
    assert_eq!(
        metrics_in("max by (job) (process_open_fds) / on (job) process_max_fds > 0.8"),
        BTreeSet::from([
            "process_open_fds".to_string(),
            "process_max_fds".to_string()
        ])
    );
    assert!(metrics_in("sum by (state, upstream) (x{up_to=\"1\"})").is_empty());
}

#[test]
fn dashboard_is_an_importable_grafana_model_with_variables() {
    let d = dashboard();
    let schema = d["schemaVersion"].as_u64().unwrap();
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(d["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty() && u.len() <= 40));
    assert!(
        d["id"].is_null(),
        "an exported dashboard has no database id"
    );
    let inputs = d["__inputs"].as_array().unwrap();
    assert!(
        inputs
            .iter()
            .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let runner = var("runner");
    assert_eq!(runner["type"], "query");
    assert_eq!(runner["datasource"]["uid"], "${datasource}");
    assert_eq!(
        runner["definition"],
        "label_values(gitlab_runner_version_info, instance)"
    );
    assert_eq!(runner["query"]["query"], runner["definition"]);
    assert_eq!(runner["multi"], true);
    assert_eq!(runner["includeAll"], true);
    // "All" must expand to the runners' instances, never `.*` (process_*
    // and up of every other target would join the graphs).
    assert!(runner["allValue"].is_null(), "{runner}");

    let mut ids = BTreeSet::new();
    let mut panels = 0;
    for p in d["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "panel id twice");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && g["h"].as_u64().unwrap() > 0,
            "{}",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        panels += 1;
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap();
            // Every query follows the runner variable.
            assert!(expr.contains("instance=~\"$runner\""), "{title}: {expr}");
            // termgate-only panels say so (gitlab-runner leaves them empty).
            if expr.contains("gitlab_runner_session_") {
                assert!(
                    p["description"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("termgate only")),
                    "{title}"
                );
            }
        }
    }
    assert!(panels >= 20, "{panels} panels");
}

#[test]
fn every_alert_is_documented_and_has_a_firing_and_a_quiet_test() {
    let alerts = alerts();
    assert_eq!(
        alerts.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "GitLabRunnerDown",
            "GitLabRunnerErrorRateRising",
            "GitLabRunnerJobFailureRatioHigh",
            "GitLabRunnerTraceUploadsFailing",
            "TermgateSessionCertificateExpiringSoon",
            "TermgateTerminalAuthFailuresSpiking",
            "TermgateTerminalCapacityLow",
            "TermgateTerminalsExhausted",
        ]
    );
    for (name, rule) in &alerts {
        for key in ["summary", "description", "runbook"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| s.len() > 10),
                "{name}: no {key}"
            );
        }
        assert!(rule["labels"]["severity"].as_str().is_some(), "{name}");
        assert!(rule["for"].as_str().is_some(), "{name}: no `for`");
    }
    let text = std::fs::read_to_string(root().join(RULE_TESTS)).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["rule_files"][0], "termgate-rules.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in doc["tests"].as_sequence().unwrap() {
        for case in test["alert_rule_test"].as_sequence().unwrap() {
            let name = case["alertname"].as_str().unwrap().to_string();
            assert!(alerts.contains_key(&name), "a test of no rule: {name}");
            if case["exp_alerts"].as_sequence().unwrap().is_empty() {
                quiet.insert(name);
            } else {
                firing.insert(name);
            }
        }
    }
    for name in alerts.keys() {
        assert!(firing.contains(name), "no test where {name} fires");
        assert!(quiet.contains(name), "no test where {name} stays quiet");
    }
}

/// `promtool` on PATH, or `None` (the test is skipped) unless
/// `TERMGATE_REQUIRE_PROMTOOL=1`.
fn promtool() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("TERMGATE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "TERMGATE_REQUIRE_PROMTOOL=1 but promtool is not on PATH \
             (scripts/setup-test-deps.sh installs Debian's prometheus)"
        );
        eprintln!("SKIPPED: promtool not on PATH (scripts/setup-test-deps.sh installs it)");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_runs_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let n = alerts().len();
    let out = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(root().join(RULES)));
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");
    // The unit tests name the rules file relative to themselves.
    let out = run(Command::new(&promtool)
        .args(["test", "rules", "termgate-rules.test.yml"])
        .current_dir(root().join("assets/prometheus")));
    assert!(out.contains("SUCCESS"), "{out}");
}

/// README's "Alert rules": its `rule_files` block with the dashboard's
/// `scrape_configs` block, as `/etc/prometheus/prometheus.yml` with the
/// rules installed beside it, passes `promtool check config` (which loads
/// the rules).
#[test]
fn the_readme_prometheus_configuration_loads_the_rules() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let production = readme
        .split("\n## Running in production\n")
        .nth(1)
        .expect("README.md has \"## Running in production\"");
    let production = production.split("\n## ").next().unwrap();
    let subsection = |title: &str| {
        production
            .split(&format!("\n### {title}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no \"### {title}\" in \"## Running in production\""))
            .split("\n### ")
            .next()
            .unwrap()
            .to_string()
    };
    let section = subsection("Grafana dashboard") + &subsection("Alert rules");
    let yaml_blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let config = yaml_blocks.concat();
    assert!(config.contains("scrape_configs:") && config.contains("rule_files:"));
    assert!(
        section
            .contains("sudo install -m 0644 assets/prometheus/termgate-rules.yml /etc/prometheus/"),
        "the install step the test follows"
    );
    let Some(promtool) = promtool() else { return };
    let dir = tempfile_dir();
    std::fs::write(dir.join("prometheus.yml"), &config).unwrap();
    std::fs::copy(root().join(RULES), dir.join("termgate-rules.yml")).unwrap();
    let out = run(Command::new(&promtool)
        .args(["check", "config"])
        .arg(dir.join("prometheus.yml")));
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory under the target dir's tmp (the root crate has no
/// `tempfile`).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "termgate-prometheus-assets-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
