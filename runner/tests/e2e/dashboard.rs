//! Issue 21, item 1: every PromQL query of `assets/grafana/termgate.json`
//! returns data from Debian's `prometheus` scraping a live termgate runner
//! (a failed job, a passed one, a terminal that left and one still
//! connected, a refused token), and every query that reads upstream's
//! names returns data for a gitlab-runner scrape too. The alert rules of
//! `assets/prometheus/termgate-rules.yml` load in that Prometheus and
//! evaluate without error against the live series.
//!
//! Needs `prometheus` on PATH (`scripts/setup-test-deps.sh`). Without it the
//! test is skipped, unless `TERMGATE_REQUIRE_PROMETHEUS=1` (CI).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use termgate_test_support::prom::{prometheus_or_skip, start_prometheus_with_rules, CancelOnDrop};

use crate::support::*;
use crate::term_client::Term;

const SECS: Duration = Duration::from_secs(1);
/// What the test puts for Grafana's `$__rate_interval`: the whole test, so
/// a counter that moved once since Prometheus' first scrape has a rate.
const RATE_INTERVAL: &str = "5m";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One query of the dashboard.
struct Query {
    panel: String,
    expr: String,
}

impl Query {
    /// Reads only termgate's own family (gitlab-runner has none of it).
    fn termgate_only(&self) -> bool {
        self.expr.contains("gitlab_runner_session_")
    }

    /// The expression as Grafana sends it with `$runner` = `instance`
    /// (one value of a multi-value variable: regex-escaped, as Grafana's
    /// Prometheus data source does) and `$__rate_interval` set.
    fn for_instance(&self, instance: &str) -> String {
        let escaped = instance.replace('.', "\\\\.");
        let e = self
            .expr
            .replace("${runner}", &escaped)
            .replace("$runner", &escaped)
            .replace("${__rate_interval}", RATE_INTERVAL)
            .replace("$__rate_interval", RATE_INTERVAL);
        assert!(
            !e.contains('$'),
            "{}: a variable the test does not know in {}",
            self.panel,
            self.expr
        );
        e
    }
}

fn queries(dash: &Value) -> Vec<Query> {
    fn walk(panels: &Value, out: &mut Vec<Query>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(Query {
                    panel: p["title"].as_str().unwrap_or_default().to_string(),
                    expr: t["expr"]
                        .as_str()
                        .expect("a target without expr")
                        .to_string(),
                });
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// Prometheus' HTTP API.
struct Api {
    url: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body: Value = res.json().unwrap();
        assert_eq!(body["status"], "success", "GET {path} {params:?}: {body}");
        body["data"].clone()
    }

    /// `up` once Prometheus answers.
    fn up(&self) -> Option<Vec<Value>> {
        let res = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", "up")])
            .send()
            .ok()?;
        let body: Value = res.json().ok()?;
        body["data"]["result"].as_array().cloned()
    }

    /// The instant vector (or scalar) of `q` now; panics if it does not
    /// parse or fails.
    fn query(&self, q: &str) -> Vec<Value> {
        let data = self.get("/api/v1/query", &[("query", q)]);
        match data["resultType"].as_str() {
            Some("vector") => data["result"].as_array().unwrap().clone(),
            Some("scalar") => vec![serde_json::json!({"metric": {}, "value": data["result"]})],
            other => panic!("{q}: result type {other:?}"),
        }
    }
}

/// At least one sample, and at least one finite (a histogram quantile of
/// nothing is NaN: that is no data).
fn has_data(result: &[Value]) -> bool {
    result.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    })
}

/// A gitlab-runner 18.x `/metrics` as Prometheus scrapes it: the families
/// the dashboard shares with termgate, with upstream's label sets (spec
/// `gitlab-runner-protocol.md` §5; the process values and the
/// api_request_statuses line are from `tests/fixtures/metrics/`). Counters
/// and histograms move with each scrape `n`, as a working runner's do.
fn upstream_metrics(n: u64) -> String {
    let ids = "runner=\"6i2MzLuX\",runner_name=\"upstream\",system_id=\"r_HKflXh8gaYx3\"";
    let mut s = String::new();
    s.push_str("# TYPE gitlab_runner_version_info gauge\n");
    s.push_str("gitlab_runner_version_info{architecture=\"amd64\",branch=\"18-2-stable\",built_at=\"2025-07-17 14:09:52 +0000\",go_version=\"go1.24.4\",name=\"gitlab-runner\",os=\"linux\",revision=\"5a021a1c\",version=\"18.2.0\"} 1\n");
    s.push_str("# TYPE gitlab_runner_concurrent gauge\ngitlab_runner_concurrent 4\n");
    s.push_str("# TYPE gitlab_runner_jobs gauge\n");
    s.push_str(&format!("gitlab_runner_jobs{{executor_stage=\"docker_run\",{ids},stage=\"step_script\",state=\"running\"}} 1\n"));
    s.push_str("# TYPE gitlab_runner_jobs_total counter\n");
    s.push_str(&format!("gitlab_runner_jobs_total{{{ids}}} {}\n", 10 + n));
    s.push_str("# TYPE gitlab_runner_errors_total counter\n");
    for level in ["panic", "fatal", "error", "warning"] {
        s.push_str(&format!(
            "gitlab_runner_errors_total{{level=\"{level}\"}} {n}\n"
        ));
    }
    s.push_str("# TYPE gitlab_runner_failed_jobs_total counter\n");
    s.push_str(&format!("gitlab_runner_failed_jobs_total{{failure_reason=\"script_failure\",mode=\"legacy\",runner=\"6i2MzLuX\",runner_name=\"upstream\"}} {n}\n"));
    s.push_str("# TYPE gitlab_runner_api_request_statuses_total counter\n");
    s.push_str(&format!("gitlab_runner_api_request_statuses_total{{endpoint=\"request_job\",method=\"post\",runner=\"6i2MzLuX\",status=\"204\",system_id=\"r_HKflXh8gaYx3\"}} {}\n", 178 + n));
    let histogram = |s: &mut String, name: &str, labels: &str, buckets: &[f64]| {
        s.push_str(&format!("# TYPE {name} histogram\n"));
        for b in buckets {
            s.push_str(&format!("{name}_bucket{{{labels},le=\"{b}\"}} {n}\n"));
        }
        s.push_str(&format!("{name}_bucket{{{labels},le=\"+Inf\"}} {n}\n"));
        s.push_str(&format!("{name}_sum{{{labels}}} {}\n", n as f64 * 0.05));
        s.push_str(&format!("{name}_count{{{labels}}} {n}\n"));
    };
    histogram(
        &mut s,
        "gitlab_runner_api_request_duration_seconds",
        "endpoint=\"request_job\",method=\"post\",runner=\"6i2MzLuX\",status_class=\"2xx\",system_id=\"r_HKflXh8gaYx3\"",
        &termgate::metrics::API_REQUEST_DURATION_BUCKETS,
    );
    histogram(
        &mut s,
        "gitlab_runner_job_duration_seconds",
        format!("mode=\"legacy\",{ids}").as_str(),
        &termgate::metrics::JOB_DURATION_BUCKETS,
    );
    s.push_str("# TYPE process_cpu_seconds_total counter\n");
    s.push_str(&format!(
        "process_cpu_seconds_total {}\n",
        0.18 + n as f64 * 0.01
    ));
    s.push_str("# TYPE process_max_fds gauge\nprocess_max_fds 1024\n");
    s.push_str("# TYPE process_open_fds gauge\nprocess_open_fds 8\n");
    s.push_str(
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.3191552e+07\n",
    );
    s.push_str(
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1.47689813837e+09\n",
    );
    s
}

/// A one-thread HTTP server on loopback answering every request with
/// [`upstream_metrics`]; stopped when dropped.
struct FakeUpstream {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = AtomicU64::new(0);
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
                    let _ = answer(&mut conn, &upstream_metrics(n));
                }
            }
        });
        FakeUpstream {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

fn answer(conn: &mut TcpStream, body: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(5 * SECS))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn metric_line(r: &RunnerProc, line: &str) -> bool {
    r.metrics().lines().any(|l| l == line)
}

/// Wait until every query in `pending` has data, printing the ones still
/// waiting whenever that list changes (so a timeout shows which).
fn wait_all_have_data(api: &Api, who: &str, mut pending: Vec<(String, String)>) {
    let mut shown = usize::MAX;
    wait_until(
        &format!("every dashboard query to return data for {who}"),
        60 * SECS,
        || {
            pending.retain(|(_, q)| !has_data(&api.query(q)));
            if pending.len() != shown {
                shown = pending.len();
                for (panel, q) in &pending {
                    eprintln!("{who}: still no data: [{panel}] {q}");
                }
            }
            pending.is_empty().then_some(())
        },
    );
}

#[test]
fn every_dashboard_query_returns_data_for_termgate_and_gitlab_runner() {
    let Some(prom_bin) = prometheus_or_skip() else {
        return;
    };
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("assets/grafana/termgate.json")).unwrap(),
    )
    .unwrap();
    let all = queries(&dash);
    assert!(all.len() >= 20, "{} queries", all.len());
    let runner_var = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "runner")
        .expect("a runner variable");
    let (var_metric, var_label) = runner_var["definition"]
        .as_str()
        .and_then(|d| d.strip_prefix("label_values(")?.strip_suffix(')'))
        .and_then(|d| d.split_once(", "))
        .expect("label_values(METRIC, LABEL)");

    // A termgate runner with a session server, and a gitlab-runner.
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "dashboard", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 3");
    setup.edit(|t| {
        format!(
            "{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = 1800\n"
        )
    });
    let mut r = setup.start();
    let termgate_instance = r.metrics_url.trim_start_matches("http://").to_owned();
    let upstream = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = repo().join("assets/prometheus/termgate-rules.yml");
    let (mut prom, prom_url, prom_log) = start_prometheus_with_rules(
        &prom_bin,
        dir.path(),
        &[&termgate_instance, &upstream.addr],
        &[&rules],
    );
    let api = Api {
        url: prom_url,
        http: http(),
    };
    wait_until("prometheus sees both targets up", 60 * SECS, || {
        prom.check_alive(&prom_log);
        r.check_alive();
        let up = api.up()?;
        (up.len() == 2 && up.iter().all(|s| s["value"][1] == "1")).then_some(())
    });

    // What the panels show, made to happen. A job that fails
    // (failed_jobs_total{failure_reason="script_failure"}, a job duration)...
    let failed = coord.enqueue(job("fails", &["exit 3"]));
    assert_eq!(coord.wait_finished(failed, 30 * SECS)["state"], "failed");
    // ... seen by Prometheus before the next job ends, so the job
    // duration histogram moves between two scrapes and has quantiles.
    wait_until("prometheus has the job duration", 30 * SECS, || {
        (!api
            .query("gitlab_runner_job_duration_seconds_count")
            .is_empty())
        .then_some(())
    });
    // A terminal job: a user types and leaves (a close, a connection
    // duration), then connects again and stays (active, a connection).
    let (id, session) = crate::operators::running(&coord, job("terminal", &["sleep 600"]));
    let _cancel = CancelOnDrop(format!("{}/admin/jobs/{id}", coord.url));
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    t.run("echo dashboard", 10 * SECS);
    t.close();
    wait_until("the first terminal gone", 10 * SECS, || {
        metric_line(&r, "gitlab_runner_session_terminals_active 0").then_some(())
    });
    let mut stays = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    stays.run("true", 10 * SECS);
    // A wrong token (rejections{reason="unauthorized"}).
    assert_eq!(
        Term::direct(&session, Some("terminal.gitlab.com"), Some("nope")).err(),
        Some(401)
    );
    // A job that passes while the terminal job runs.
    let passed = coord.enqueue(job("passes", &["true"]));
    assert_eq!(coord.wait_finished(passed, 30 * SECS)["state"], "success");

    // The runner variable lists both.
    let values = api.get(
        &format!("/api/v1/label/{var_label}/values"),
        &[("match[]", var_metric)],
    );
    for instance in [&termgate_instance, &upstream.addr] {
        assert!(
            values
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == instance.as_str()),
            "${{runner}} misses {instance}: {values}"
        );
    }

    // Every query parses (a parse error fails at once), then has data.
    let termgate: Vec<(String, String)> = all
        .iter()
        .map(|q| (q.panel.clone(), q.for_instance(&termgate_instance)))
        .collect();
    for (_, q) in &termgate {
        api.query(q);
    }
    wait_all_have_data(&api, "termgate-runner", termgate);
    let (shared, own): (Vec<&Query>, Vec<&Query>) = all.iter().partition(|q| !q.termgate_only());
    assert!(
        shared.len() >= 10,
        "{} queries shared with gitlab-runner",
        shared.len()
    );
    wait_all_have_data(
        &api,
        "gitlab-runner",
        shared
            .iter()
            .map(|q| (q.panel.clone(), q.for_instance(&upstream.addr)))
            .collect(),
    );
    // termgate's own panels are empty for gitlab-runner, not wrong.
    for q in own {
        let res = api.query(&q.for_instance(&upstream.addr));
        assert!(res.is_empty(), "[{}] for gitlab-runner: {res:?}", q.panel);
    }

    // The alert rules load and evaluate against these series.
    wait_until(
        "every alert rule evaluated without error",
        30 * SECS,
        || {
            let groups = api.get("/api/v1/rules", &[]);
            let rules: Vec<Value> = groups["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            for rule in &rules {
                assert_ne!(rule["health"], "err", "{rule}");
            }
            (rules.len() == 8 && rules.iter().all(|r| r["health"] == "ok")).then_some(())
        },
    );
    drop(stays);
}
