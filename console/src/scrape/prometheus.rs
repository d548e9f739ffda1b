//! `--prometheus URL`: the fleet as a Prometheus server sees it.
//!
//! Runners are discovered from the `up` series (one per `job`/`instance`);
//! their latest values come from one instant query over the metric names a
//! [`Sample`] needs, grouped by `job`/`instance` and folded by the same
//! [`SampleBuilder`] as a direct scrape, so both paths show the same numbers.
//! A target with `up == 0` is `Down` with the reason Prometheus saw
//! (`/api/v1/targets` `lastError`, shortened).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{ScrapeClient, ScrapeError};
use super::link::{Link, Tracker};
use super::options::PollOptions;
use super::parse::SampleBuilder;
use crate::model::{Health, RunnerSource, RunnerState, Sample};

/// `(job, instance)`.
pub type TargetKey = (String, String);

/// One scrape target of the Prometheus server.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub job: String,
    pub instance: String,
    pub up: bool,
    /// Short reason when down (`refused`, `timeout`, `HTTP 500`, `down`).
    pub reason: Option<String>,
}

/// What one round of queries returned.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub targets: Vec<Target>,
    pub samples: BTreeMap<TargetKey, Sample>,
}

/// `BASE/api/v1/PATH?params`.
pub(crate) fn api_url(
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Result<String, ScrapeError> {
    let url = format!("{}/api/v1/{path}", base.trim_end_matches('/'));
    reqwest::Url::parse_with_params(&url, params)
        .map(String::from)
        .map_err(|e| ScrapeError::Client(format!("{url}: {e}")))
}

/// A series' labels, `__name__` included.
pub type Labels = Vec<(String, String)>;

/// A range query's answer: per series, its labels and `(Unix ms, value)`
/// points, oldest first.
pub type Matrix = Vec<(Labels, Vec<(i64, f64)>)>;

/// Why an HTTP API answer is not usable. The parsing below is shared by the
/// console's instant queries and `termgate report`'s range queries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Not JSON at all (a login page, a proxy's error page, …).
    #[error("not Prometheus API JSON")]
    NotJson,
    /// `"status": "error"`: `errorType: error` as Prometheus wrote them.
    #[error("{0}")]
    Failed(String),
    /// JSON, but not the shape of a query answer.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

impl From<ApiError> for ScrapeError {
    /// Short, for a table cell.
    fn from(e: ApiError) -> ScrapeError {
        let text = match e {
            ApiError::Failed(m) if m.is_empty() => "API error".to_owned(),
            e => e.to_string(),
        };
        garbage(&text.chars().take(60).collect::<String>())
    }
}

fn garbage(what: &str) -> ScrapeError {
    ScrapeError::Parse(super::ParseError::Garbage(what.to_string()))
}

/// The body of an API answer, checked for `"status": "success"`.
pub fn parse_answer(text: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_str(text).map_err(|_| ApiError::NotJson)?;
    if !v.is_object() {
        return Err(ApiError::NotJson);
    }
    if v["status"] != "success" {
        let kind = v["errorType"].as_str().unwrap_or_default();
        let msg = v["error"].as_str().unwrap_or_default();
        return Err(ApiError::Failed(match (kind, msg) {
            ("", "") => String::new(),
            ("", m) => m.to_owned(),
            (k, "") => k.to_owned(),
            (k, m) => format!("{k}: {m}"),
        }));
    }
    Ok(v)
}

/// A sample value as the API writes it (a string: `"3"`, `"NaN"`, `"+Inf"`).
pub fn parse_value(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

fn labels_of(series: &Value) -> Option<Labels> {
    Some(
        series["metric"]
            .as_object()?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

/// `data.result` of an answer whose `data.resultType` is `want`.
fn result_of<'a>(answer: &'a Value, want: &str) -> Result<&'a [Value], ApiError> {
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some(t) if t == want => {}
        Some(t) => return Err(ApiError::Shape(format!("a {t}, not a {want}"))),
        None => return Err(ApiError::Shape("no data.resultType".into())),
    }
    data["result"]
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| ApiError::Shape("no data.result".into()))
}

/// An instant query's vector: `(labels, value)` per series (series without
/// labels or with an unreadable value are left out).
pub fn parse_vector(answer: &Value) -> Result<Vec<(Labels, f64)>, ApiError> {
    Ok(result_of(answer, "vector")?
        .iter()
        .filter_map(|r| Some((labels_of(r)?, parse_value(r["value"].get(1)?)?)))
        .collect())
}

/// A range query's matrix: `(labels, [(Unix ms, value)])` per series,
/// oldest first as Prometheus sends them (unreadable points are left out).
pub fn parse_matrix(answer: &Value) -> Result<Matrix, ApiError> {
    Ok(result_of(answer, "matrix")?
        .iter()
        .filter_map(|r| {
            let points = r["values"]
                .as_array()?
                .iter()
                .filter_map(|p| {
                    let t = p.get(0)?.as_f64()? * 1000.0;
                    // `as` saturates; a time outside ±2^53 ms is garbage.
                    let t = (t.is_finite() && t.abs() < 9.0e15).then(|| t.round() as i64)?;
                    Some((t, parse_value(p.get(1)?)?))
                })
                .collect();
            Some((labels_of(r)?, points))
        })
        .collect())
}

async fn get_json(client: &ScrapeClient, url: &str) -> Result<Value, ScrapeError> {
    let text = client.get_text(url).await?;
    Ok(parse_answer(&text)?)
}

/// An instant query's vector: `(labels, value)` per series.
pub async fn query(
    client: &ScrapeClient,
    base: &str,
    promql: &str,
) -> Result<Vec<(Labels, f64)>, ScrapeError> {
    let v = get_json(client, &api_url(base, "query", &[("query", promql)])?).await?;
    Ok(parse_vector(&v)?)
}

fn get<'a>(labels: &'a [(String, String)], key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// `Get "http://…": dial tcp …: connect: connection refused` → `refused`.
pub fn short_reason(last_error: &str) -> String {
    let e = last_error.to_ascii_lowercase();
    if e.contains("connection refused") {
        "refused".into()
    } else if e.contains("deadline") || e.contains("timeout") {
        "timeout".into()
    } else if let Some(i) = e.find("http status ") {
        let code: String = e[i + 12..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        format!("HTTP {code}")
    } else if e.is_empty() {
        "down".into()
    } else {
        format!("down: {}", last_error.chars().take(40).collect::<String>())
    }
}

/// Targets from `up`, with Prometheus' last error for those down.
pub async fn discover(client: &ScrapeClient, base: &str) -> Result<Vec<Target>, ScrapeError> {
    let up = query(client, base, "up").await?;
    let mut targets: Vec<Target> = up
        .iter()
        .map(|(l, v)| Target {
            job: get(l, "job").to_string(),
            instance: get(l, "instance").to_string(),
            up: *v >= 1.0,
            reason: None,
        })
        .collect();
    targets.sort_by(|a, b| (&a.instance, &a.job).cmp(&(&b.instance, &b.job)));
    if targets.iter().any(|t| !t.up) {
        // Best effort: the reason for the ones down.
        let mut errors: HashMap<TargetKey, String> = HashMap::new();
        if let Ok(v) = get_json(client, &api_url(base, "targets", &[("state", "active")])?).await {
            for t in v["data"]["activeTargets"].as_array().into_iter().flatten() {
                let key = (
                    t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                    t["labels"]["instance"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                errors.insert(key, t["lastError"].as_str().unwrap_or_default().to_string());
            }
        }
        for t in targets.iter_mut().filter(|t| !t.up) {
            let e = errors
                .get(&(t.job.clone(), t.instance.clone()))
                .map(String::as_str)
                .unwrap_or("");
            t.reason = Some(short_reason(e));
        }
    }
    Ok(targets)
}

/// The PromQL selecting every series a [`Sample`] is built from.
pub fn sample_selector() -> String {
    format!("{{__name__=~\"{}\"}}", SampleBuilder::METRICS.join("|"))
}

/// Latest values of every target, grouped by `job`/`instance`.
pub async fn read_samples(
    client: &ScrapeClient,
    base: &str,
) -> Result<BTreeMap<TargetKey, Sample>, ScrapeError> {
    let series = query(client, base, &sample_selector()).await?;
    let mut builders: BTreeMap<TargetKey, SampleBuilder> = BTreeMap::new();
    for (labels, v) in series {
        let key = (
            get(&labels, "job").to_string(),
            get(&labels, "instance").to_string(),
        );
        let name = get(&labels, "__name__").to_string();
        builders.entry(key).or_default().add(&name, &labels, v);
    }
    Ok(builders.into_iter().map(|(k, b)| (k, b.finish())).collect())
}

/// One round: targets and their samples.
pub async fn fetch(client: &ScrapeClient, base: &str) -> Result<Fleet, ScrapeError> {
    let targets = discover(client, base).await?;
    let samples = read_samples(client, base).await?;
    Ok(Fleet { targets, samples })
}

/// Display names: the instance, or `job/instance` when an instance is
/// scraped by several jobs.
fn names(targets: &[Target]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for t in targets {
        *count.entry(t.instance.as_str()).or_default() += 1;
    }
    targets
        .iter()
        .map(|t| {
            if count.get(t.instance.as_str()).copied().unwrap_or(0) > 1 {
                format!("{}/{}", t.job, t.instance)
            } else {
                t.instance.clone()
            }
        })
        .collect()
}

/// Poll `base` every interval until `shutdown`, like [`super::poller::spawn`].
/// If Prometheus itself fails, every known runner shows it as the reason (or,
/// before it ever answered, one row named `prometheus` does) and the server
/// is retried with backoff.
pub fn spawn(
    base: String,
    opts: PollOptions,
    shutdown: CancellationToken,
) -> watch::Receiver<Vec<RunnerState>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(run(base, opts, tx, shutdown));
    rx
}

async fn run(
    base: String,
    opts: PollOptions,
    tx: watch::Sender<Vec<RunnerState>>,
    shutdown: CancellationToken,
) {
    let mut trackers: HashMap<TargetKey, Tracker> = HashMap::new();
    let mut keys: Vec<TargetKey> = Vec::new();
    let mut server = Link::Fresh;
    let client = ScrapeClient::new(opts.timeout);
    let interval = opts.interval.max(Duration::from_millis(10));
    let mut next = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next.into()) => {}
        }
        let started = Instant::now();
        let result = match &client {
            Ok(c) => tokio::select! {
                _ = shutdown.cancelled() => return,
                r = fetch(c, &base) => r,
            },
            Err(e) => Err(e.clone()),
        };
        let at = SystemTime::now();
        let now = Instant::now();
        match result {
            Ok(fleet) => {
                server.succeeded();
                let names = names(&fleet.targets);
                let mut fresh_keys = Vec::new();
                tx.send_modify(|states| {
                    let mut old: HashMap<TargetKey, RunnerState> =
                        keys.drain(..).zip(states.drain(..)).collect();
                    for (t, name) in fleet.targets.iter().zip(names) {
                        let key = (t.job.clone(), t.instance.clone());
                        let mut st = old.remove(&key).unwrap_or_else(|| {
                            let src = RunnerSource {
                                name: name.clone(),
                                metrics_url: t.instance.clone(),
                                session_url: None,
                                logs: Vec::new(),
                            };
                            let mut st = RunnerState::new(src, at);
                            st.history.keep = opts.history;
                            st
                        });
                        st.source.name = name;
                        let tr = trackers.entry(key.clone()).or_insert_with(|| {
                            Tracker::new(&opts).with_cpu_window(Duration::from_secs(30))
                        });
                        // Prometheus scrapes on its own schedule: the
                        // next look is the next query.
                        match (t.up, fleet.samples.get(&key)) {
                            (true, Some(s)) => tr.apply_ok(&mut st, s.clone(), at),
                            (true, None) => tr.apply_err(&mut st, "no series".into(), at, interval),
                            (false, _) => {
                                let reason = t.reason.clone().unwrap_or_else(|| "down".into());
                                tr.apply_err(&mut st, reason, at, interval);
                            }
                        }
                        fresh_keys.push(key);
                        states.push(st);
                    }
                });
                trackers.retain(|k, _| fresh_keys.contains(k));
                keys = fresh_keys;
                next = started + interval;
            }
            Err(e) => {
                let first = !matches!(server, Link::Backoff { .. });
                let delay = server.failed(now, &opts.backoff).max(interval);
                let reason = format!("prometheus: {e}");
                if first {
                    tracing::warn!(%reason, url = %base, "prometheus query failed");
                }
                tx.send_modify(|states| {
                    // Before Prometheus ever answered there is no runner to
                    // carry the reason: a row for the server itself says it
                    // (not "0 runners"), replaced by the targets once it
                    // answers.
                    if states.is_empty() {
                        let src = RunnerSource {
                            name: "prometheus".into(),
                            metrics_url: base.clone(),
                            session_url: None,
                            logs: Vec::new(),
                        };
                        states.push(RunnerState::new(src, at));
                        keys = vec![(String::new(), base.clone())];
                    }
                    for st in states.iter_mut() {
                        st.health = Health::Down {
                            reason: reason.clone(),
                            retry_at: at + delay,
                        };
                        st.last_attempt = Some(at);
                    }
                });
                next = now + delay;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::test_server::{self, Reply, Routes};

    #[test]
    fn reasons_are_short() {
        let r = short_reason(
            "Get \"http://127.0.0.1:1/metrics\": dial tcp 127.0.0.1:1: connect: connection refused",
        );
        assert_eq!(r, "refused");
        assert_eq!(short_reason("context deadline exceeded"), "timeout");
        assert_eq!(
            short_reason("server returned HTTP status 500 Internal Server Error"),
            "HTTP 500"
        );
        assert_eq!(short_reason(""), "down");
    }

    #[test]
    fn names_disambiguate_instances() {
        let t = |job: &str, inst: &str| Target {
            job: job.into(),
            instance: inst.into(),
            up: true,
            reason: None,
        };
        let n = names(&[t("a", "h:1"), t("b", "h:1"), t("a", "h:2")]);
        assert_eq!(n, ["a/h:1", "b/h:1", "h:2"]);
    }

    #[test]
    fn selector_lists_every_family() {
        let s = sample_selector();
        assert!(s.starts_with("{__name__=~\""));
        assert!(s.contains("|gitlab_runner_jobs|") || s.contains("\"gitlab_runner_jobs|"));
        assert!(s.contains("process_cpu_seconds_total"));
    }

    #[test]
    fn answers_that_are_not_results() {
        assert_eq!(parse_answer("<html>"), Err(ApiError::NotJson));
        assert_eq!(parse_answer("[1, 2]"), Err(ApiError::NotJson));
        assert_eq!(parse_answer(""), Err(ApiError::NotJson));
        assert_eq!(
            parse_answer(r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#),
            Err(ApiError::Failed("bad_data: 1:5: parse error".into()))
        );
        assert_eq!(
            parse_answer(r#"{"status":"error"}"#),
            Err(ApiError::Failed(String::new()))
        );
        // As a table cell: short, "API error" when Prometheus said nothing.
        assert_eq!(
            ScrapeError::from(ApiError::Failed(String::new())).to_string(),
            "garbage: API error"
        );
        let ok = |t: &str| parse_answer(t).unwrap();
        let matrix = ok(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#);
        assert_eq!(
            parse_vector(&matrix),
            Err(ApiError::Shape("a matrix, not a vector".into()))
        );
        assert_eq!(
            parse_matrix(&ok(
                r#"{"status":"success","data":{"resultType":"matrix"}}"#
            )),
            Err(ApiError::Shape("no data.result".into()))
        );
        assert_eq!(
            parse_matrix(&ok(r#"{"status":"success"}"#)),
            Err(ApiError::Shape("no data.resultType".into()))
        );
    }

    #[test]
    fn a_matrix_in_unix_ms_with_unreadable_points_left_out() {
        let v = parse_answer(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"instance":"h:1"},"values":[[1700000000,"1"],[1700000015.5,"+Inf"],
                    [1700000030,"x"],["t","1"],[1700000045,"NaN"]]},
                {"values":[[1700000000,"1"]]}]}}"#,
        )
        .unwrap();
        let m = parse_matrix(&v).unwrap();
        assert_eq!(m.len(), 1, "a series without labels is left out");
        assert_eq!(m[0].0, [("instance".to_string(), "h:1".to_string())]);
        let pts = &m[0].1;
        assert_eq!(pts.len(), 3);
        assert_eq!(pts[0], (1_700_000_000_000, 1.0));
        assert_eq!(pts[1], (1_700_000_015_500, f64::INFINITY));
        assert_eq!(pts[2].0, 1_700_000_045_000);
        assert!(pts[2].1.is_nan());
    }

    fn api(result: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{result}]}}}}"#)
    }

    /// A fake Prometheus answering `up` and the selector query.
    async fn fake(up: &str, series: &str, targets: &str) -> String {
        let (up, series, targets) = (api(up), api(series), targets.to_string());
        let app = axum::Router::new()
            .route(
                "/api/v1/query",
                axum::routing::get(move |q: axum::extract::Query<HashMap<String, String>>| {
                    let (up, series) = (up.clone(), series.clone());
                    async move {
                        if q.get("query").map(String::as_str) == Some("up") {
                            up
                        } else {
                            series
                        }
                    }
                }),
            )
            .route(
                "/api/v1/targets",
                axum::routing::get(move || {
                    let t = targets.clone();
                    async move { t }
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    const UP: &str = r#"{"metric":{"__name__":"up","instance":"h:1","job":"runners"},"value":[1.7e9,"1"]},
        {"metric":{"__name__":"up","instance":"h:2","job":"runners"},"value":[1.7e9,"0"]}"#;
    const SERIES: &str = r#"{"metric":{"__name__":"gitlab_runner_jobs","instance":"h:1","job":"runners","state":"running"},"value":[1.7e9,"3"]},
        {"metric":{"__name__":"gitlab_runner_errors_total","instance":"h:1","job":"runners","level":"error"},"value":[1.7e9,"4"]},
        {"metric":{"__name__":"gitlab_runner_session_terminals_available","instance":"h:1","job":"runners"},"value":[1.7e9,"5"]},
        {"metric":{"__name__":"gitlab_runner_version_info","instance":"h:1","job":"runners","name":"termgate-runner","version":"0.1.0"},"value":[1.7e9,"1"]}"#;
    const TARGETS: &str = r#"{"status":"success","data":{"activeTargets":[
        {"labels":{"instance":"h:2","job":"runners"},"health":"down","lastError":"Get \"http://h:2/metrics\": dial tcp: connect: connection refused"}]}}"#;

    #[tokio::test]
    async fn fetch_groups_by_instance() {
        let base = fake(UP, SERIES, TARGETS).await;
        let c = ScrapeClient::new(Duration::from_secs(2)).unwrap();
        let f = fetch(&c, &base).await.unwrap();
        assert_eq!(f.targets.len(), 2);
        assert!(f.targets[0].up);
        assert_eq!(f.targets[1].reason.as_deref(), Some("refused"));
        let s = &f.samples[&("runners".to_string(), "h:1".to_string())];
        assert_eq!(s.jobs, Some(3.0));
        assert_eq!(s.errors_total["error"], 4.0);
        assert_eq!(s.terminals_available, Some(5.0));
        assert_eq!(s.version.as_ref().unwrap().name, "termgate-runner");
        // The same text scraped directly gives the same sample.
        let direct = crate::scrape::parse_metrics(
            "gitlab_runner_jobs{state=\"running\"} 3\ngitlab_runner_errors_total{level=\"error\"} 4\n\
             gitlab_runner_session_terminals_available 5\n\
             gitlab_runner_version_info{name=\"termgate-runner\",version=\"0.1.0\"} 1\n",
        )
        .unwrap();
        assert_eq!(&direct, s);
    }

    #[tokio::test]
    async fn poller_publishes_up_and_down_targets() {
        let base = fake(UP, SERIES, TARGETS).await;
        let stop = CancellationToken::new();
        let opts = PollOptions {
            interval: Duration::from_millis(100),
            ..Default::default()
        };
        let mut rx = spawn(base, opts, stop.clone());
        let v = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                rx.changed().await.unwrap();
                let v = rx.borrow_and_update().clone();
                if v.len() == 2 {
                    break v;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v[0].source.name, "h:1");
        assert_eq!(v[0].health, Health::Up);
        assert_eq!(v[0].latest.as_ref().unwrap().jobs, Some(3.0));
        assert!(matches!(&v[1].health, Health::Down { reason, .. } if reason == "refused"));
        stop.cancel();
    }

    #[tokio::test]
    async fn not_prometheus_is_a_clear_error() {
        let routes = Routes::default();
        routes.set(
            "api/v1/query",
            Reply::Text("<html>proxy login</html>".into()),
        );
        let addr = test_server::start(routes).await;
        let c = ScrapeClient::new(Duration::from_secs(2)).unwrap();
        let e = fetch(&c, &format!("http://{addr}")).await.unwrap_err();
        assert_eq!(e.to_string(), "garbage: not Prometheus API JSON");
        let port = test_server::free_port();
        let e = fetch(&c, &format!("http://{port}")).await.unwrap_err();
        assert_eq!(e.to_string(), "refused");
    }

    /// Issue 19: an unreachable Prometheus is a row on the Fleet screen with
    /// the reason, not "0 runners".
    #[tokio::test]
    async fn an_unreachable_prometheus_is_shown_as_a_down_row() {
        let port = test_server::free_port();
        let base = format!("http://{port}");
        let stop = CancellationToken::new();
        let opts = PollOptions {
            interval: Duration::from_millis(100),
            ..Default::default()
        };
        let mut rx = spawn(base.clone(), opts, stop.clone());
        let v = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                rx.changed().await.unwrap();
                let v = rx.borrow_and_update().clone();
                if !v.is_empty() {
                    break v;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].source.name, "prometheus");
        assert_eq!(v[0].source.metrics_url, base);
        assert!(
            matches!(&v[0].health, Health::Down { reason, .. } if reason == "prometheus: refused"),
            "{:?}",
            v[0].health
        );
        stop.cancel();
    }
}
