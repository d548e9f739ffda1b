//! The metrics and debug HTTP server on `listen_address`
//! (gitlab-runner `commands/multi.go` `setupMetricsAndDebugServer`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{go_duration, Metrics};
use crate::builds::{Builds, ProcessStateCell};

/// Content type of `/metrics` (Prometheus text format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    builds: Builds,
    state: ProcessStateCell,
    ready: Arc<AtomicBool>,
}

/// The routes: `/metrics` (GET and HEAD, else 405), `/debug/jobs/list`,
/// `/health/ready`, `/debug/process/state`.
pub fn router(
    metrics: Arc<Metrics>,
    builds: Builds,
    state: ProcessStateCell,
    ready: Arc<AtomicBool>,
) -> Router {
    // axum's `get` also answers HEAD (body dropped); other methods get 405.
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/debug/jobs/list", get(jobs_list))
        .route("/health/ready", get(health_ready))
        .route("/debug/process/state", get(process_state))
        .with_state(AppState {
            metrics,
            builds,
            state,
            ready,
        })
}

/// Serve until `shutdown` is cancelled, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    builds: Builds,
    state: ProcessStateCell,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = router(metrics, builds, state, ready);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("metrics server")
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

async fn metrics_handler(State(s): State<AppState>) -> Response {
    text(StatusCode::OK, METRICS_CONTENT_TYPE, s.metrics.render())
}

/// v2 format whatever `v` says (upstream ignores it since 13.0).
async fn jobs_list(State(s): State<AppState>) -> Response {
    let mut body = String::new();
    for b in s.builds.list() {
        let _ = writeln!(
            body,
            "url={}/-/jobs/{} state={} stage={} executor_stage={} duration={}",
            b.project_url.trim_end_matches('/'),
            b.id,
            b.state,
            b.stage,
            b.executor_stage,
            go_duration(b.started.elapsed()),
        );
    }
    let mut resp = text(StatusCode::OK, TEXT_PLAIN, body);
    resp.headers_mut()
        .insert("X-List-Version", HeaderValue::from_static("2"));
    resp
}

async fn health_ready(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        text(StatusCode::OK, TEXT_PLAIN, "ready".into())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT_PLAIN,
            "boot-verify pending".into(),
        )
    }
}

async fn process_state(State(s): State<AppState>) -> Response {
    text(StatusCode::OK, TEXT_PLAIN, s.state.get().as_str().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builds::{BuildInfo, ProcessState};
    use std::time::{Duration, Instant};

    struct Running {
        base: String,
        builds: Builds,
        state: ProcessStateCell,
        ready: Arc<AtomicBool>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    async fn start() -> Running {
        let builds = Builds::default();
        let state = ProcessStateCell::default();
        let ready = Arc::new(AtomicBool::new(false));
        let metrics = Metrics::new(builds.clone(), state.clone(), "0.1.0", "abc").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            metrics,
            builds.clone(),
            state.clone(),
            ready.clone(),
            shutdown.clone(),
        ));
        Running {
            base,
            builds,
            state,
            ready,
            shutdown,
            task,
        }
    }

    #[tokio::test]
    async fn endpoints() {
        let r = start().await;
        let c = reqwest::Client::new();

        let resp = c.get(format!("{}/metrics", r.base)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert!(resp
            .text()
            .await
            .unwrap()
            .contains("gitlab_runner_version_info"));
        let resp = c.head(format!("{}/metrics", r.base)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().is_empty());
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let resp = c
                .request(method.clone(), format!("{}/metrics", r.base))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 405, "{method}");
        }

        let resp = c
            .get(format!("{}/health/ready", r.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.text().await.unwrap(), "boot-verify pending");
        r.ready.store(true, Ordering::Relaxed);
        let resp = c
            .get(format!("{}/health/ready", r.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "ready");

        let get_text = |path: &str| {
            let c = c.clone();
            let url = format!("{}{path}", r.base);
            async move { c.get(url).send().await.unwrap().text().await.unwrap() }
        };
        assert_eq!(get_text("/debug/process/state").await, "starting");
        r.state.set(ProcessState::ForcefulShutdown);
        assert_eq!(get_text("/debug/process/state").await, "forceful-shutdown");

        let resp = c.get(format!("{}/nope", r.base)).send().await.unwrap();
        assert_eq!(resp.status(), 404);

        r.shutdown.cancel();
        r.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn jobs_list_v2_ignores_v() {
        let r = start().await;
        r.builds.insert(BuildInfo {
            id: 4711,
            runner: "abcd1234".into(),
            runner_name: "r1".into(),
            system_id: "s_1".into(),
            project_url: "https://gitlab.example.com/acme/webapp".into(),
            state: "running",
            stage: "step_script".into(),
            executor_stage: "docker_run".into(),
            started: Instant::now().checked_sub(Duration::from_secs(62)).unwrap(),
        });
        let c = reqwest::Client::new();
        for query in ["", "?v=1", "?v=2", "?v=banana"] {
            let resp = c
                .get(format!("{}/debug/jobs/list{query}", r.base))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{query}");
            assert_eq!(resp.headers()["x-list-version"], "2");
            assert!(resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain"));
            let body = resp.text().await.unwrap();
            let prefix = "url=https://gitlab.example.com/acme/webapp/-/jobs/4711 state=running \
                          stage=step_script executor_stage=docker_run duration=1m2";
            assert!(body.starts_with(prefix), "{body}");
            assert!(body.ends_with("s\n"), "{body}");
            assert_eq!(body.lines().count(), 1);
        }
        r.shutdown.cancel();
        r.task.await.unwrap().unwrap();
    }
}
