//! `termgate-coordinator`: a small local server speaking the subset
//! of GitLab's runner API a runner needs, plus an admin API. Used by the
//! demo and as the fake GitLab of end-to-end tests.
//!
//! - Runner API (`/api/v4/…`, see [`runner_api`]): legacy registration,
//!   verify, unregister, job request (tags, two-phase commit, sessions), job
//!   update (checksum → 412), trace patches (`Content-Range`, 416, reset).
//! - Admin API (`/admin/…`, see [`admin`]): queue jobs from a job spec or a
//!   `.gitlab-ci.yml`, inspect jobs and traces, cancel, add runners.
//! - `--state-dir`: everything survives a `kill -9`, trace bytes included
//!   (see [`store`]).
//!
//! Every reply carries an `X-Request-Id`.

pub mod admin;
pub mod ci_yaml;
pub mod payload;
pub mod records;
pub mod runner_api;
pub mod state;
pub mod store;
pub mod workhorse;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Router;
use tokio_util::sync::CancellationToken;

use records::RunnerRecord;
use state::{random_hex, Inner, Settings};
use store::Store;

/// The state every handler shares.
pub type Shared = Arc<tokio::sync::Mutex<Inner>>;

/// Largest request body accepted (trace patches are ≤ 1 MiB from runners).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// `termgate-coordinator` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordinatorArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Registration token for `POST /api/v4/runners` (default: the persisted
    /// one, else random; printed at start).
    #[arg(long)]
    pub registration_token: Option<String>,
    /// Keep runners, jobs and traces in DIR, surviving restarts.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// `.gitlab-ci.yml`-style files (or `.gitlab-webide.yml`) whose jobs are
    /// queued at start (again at every start).
    #[arg(long = "jobs", value_name = "FILE", num_args = 1..)]
    pub jobs: Vec<PathBuf>,
    /// Pre-create a runner with this token (`glrt-…`), as GitLab's UI does.
    #[arg(long)]
    pub runner_token: Option<String>,
    /// Tags of the pre-created runner.
    #[arg(long, value_delimiter = ',', requires = "runner_token")]
    pub runner_tags: Vec<String>,
    /// The pre-created runner also picks untagged jobs (always true without
    /// tags).
    #[arg(long, requires = "runner_token")]
    pub run_untagged: bool,
    /// Project path the jobs belong to.
    #[arg(long, default_value = "termgate/demo")]
    pub project: String,
    /// `X-GitLab-Trace-Update-Interval` sent on trace patches (seconds).
    #[arg(long, default_value_t = 3)]
    pub trace_update_interval: u64,
    /// URL runners and jobs see (`CI_SERVER_URL`, repo URLs); default
    /// `http://<listen address>`.
    #[arg(long)]
    pub public_url: Option<String>,
}

/// A runner to create at start if no runner has its token yet.
#[derive(Debug, Clone, Default)]
pub struct PresetRunner {
    pub token: String,
    pub description: String,
    pub tags: Vec<String>,
    pub run_untagged: bool,
}

/// How to start a [`Coordinator`].
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    pub listen: SocketAddr,
    pub registration_token: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub job_files: Vec<PathBuf>,
    pub runners: Vec<PresetRunner>,
    pub project: String,
    pub trace_update_interval: u64,
    pub public_url: Option<String>,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            registration_token: None,
            state_dir: None,
            job_files: Vec::new(),
            runners: Vec::new(),
            project: "termgate/demo".into(),
            trace_update_interval: 3,
            public_url: None,
        }
    }
}

impl From<CoordinatorArgs> for CoordinatorOptions {
    fn from(a: CoordinatorArgs) -> Self {
        let runners = a
            .runner_token
            .map(|token| PresetRunner {
                token,
                description: "termgate coordinator preset runner".into(),
                run_untagged: a.run_untagged || a.runner_tags.is_empty(),
                tags: a.runner_tags,
            })
            .into_iter()
            .collect();
        CoordinatorOptions {
            listen: a.listen,
            registration_token: a.registration_token,
            state_dir: a.state_dir,
            job_files: a.jobs,
            runners,
            project: a.project,
            trace_update_interval: a.trace_update_interval,
            public_url: a.public_url,
        }
    }
}

/// A running coordinator.
pub struct Coordinator {
    addr: SocketAddr,
    url: String,
    shared: Shared,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Coordinator {
    /// Load state, bind, serve in a background task.
    pub async fn start(opts: CoordinatorOptions) -> anyhow::Result<Coordinator> {
        let (store, loaded) = match &opts.state_dir {
            Some(dir) => {
                let (s, l) = Store::open(dir).await?;
                (Some(s), l)
            }
            None => (None, store::Loaded::default()),
        };
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("binding {}", opts.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let url = match &opts.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
            None => format!("http://{addr}"),
        };

        let meta = loaded.meta.unwrap_or_default();
        let mut jobs = BTreeMap::new();
        for j in loaded.jobs {
            jobs.insert(j.rec.id, j);
        }
        let max_job = jobs.keys().next_back().copied().unwrap_or(0);
        let registration_token = opts
            .registration_token
            .clone()
            .filter(|t| !t.is_empty())
            .or(Some(meta.registration_token.clone()).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| format!("GR1348941{}", random_hex(10)));
        let mut inner = Inner {
            settings: Settings {
                project: opts.project.clone(),
                server_url: url.clone(),
                trace_update_interval: opts.trace_update_interval,
            },
            registration_token,
            next_runner_id: meta.next_runner_id.max(1),
            next_job_id: meta.next_job_id.max(max_job + 1),
            next_pipeline_id: meta.next_pipeline_id.max(1),
            runners: meta.runners.into_iter().map(|r| (r.id, r)).collect(),
            jobs,
            last_update: random_hex(16),
            store,
        };
        if let Some(max_runner) = inner.runners.keys().next_back() {
            inner.next_runner_id = inner.next_runner_id.max(max_runner + 1);
        }
        inner.save_meta().await?;
        for p in &opts.runners {
            if inner.runner_by_token(&p.token).is_none() {
                inner
                    .add_runner(RunnerRecord {
                        token: p.token.clone(),
                        description: p.description.clone(),
                        tags: p.tags.clone(),
                        run_untagged: p.run_untagged || p.tags.is_empty(),
                        ..RunnerRecord::default()
                    })
                    .await?;
            }
        }
        for f in &opts.job_files {
            let text = tokio::fs::read_to_string(f)
                .await
                .with_context(|| format!("reading {}", f.display()))?;
            let defs = ci_yaml::parse_ci_yaml(&text, None)
                .with_context(|| format!("parsing {}", f.display()))?;
            inner.enqueue(defs).await?;
        }

        let shared: Shared = Arc::new(tokio::sync::Mutex::new(inner));
        let app = router(shared.clone());
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let res = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
            if let Err(e) = res {
                tracing::error!(error = %e, "local coordinator server failed");
            }
        });
        Ok(Coordinator {
            addr,
            url,
            shared,
            cancel,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `--public-url`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub async fn registration_token(&self) -> String {
        self.shared.lock().await.registration_token.clone()
    }

    /// Stop accepting, let open requests finish (at most 5 s), return.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// Stop at once, as a `kill -9` would (for tests of persistence).
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn add_request_id(mut res: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&random_hex(16)) {
        res.headers_mut()
            .insert(termgate::api::headers::REQUEST_ID, v);
    }
    res
}

fn router(shared: Shared) -> Router {
    Router::new()
        .merge(runner_api::router())
        .merge(admin::router())
        .layer(axum::middleware::map_response(add_request_id))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// The CLI entry point: start, print one line, serve until `shutdown`.
pub async fn run(args: CoordinatorArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Coordinator::start(args.into()).await?;
    println!(
        "coordinator listening on {}  registration token: {}",
        c.url(),
        c.registration_token().await
    );
    shutdown.cancelled().await;
    c.shutdown().await;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use super::testkit::{header, start_with};
    use super::*;
    use reqwest::StatusCode;
    use serde_json::json;

    fn opts(dir: &std::path::Path) -> CoordinatorOptions {
        CoordinatorOptions {
            state_dir: Some(dir.to_path_buf()),
            trace_update_interval: 1,
            ..CoordinatorOptions::default()
        }
    }

    /// Kill the server mid-job (no graceful anything) and start it again on
    /// the same state dir: the trace continues at the right offset.
    #[tokio::test]
    async fn survives_abort_mid_job() {
        let dir = tempfile::tempdir().unwrap();
        let k = start_with(opts(dir.path())).await;
        let reg = k.c.registration_token().await;
        let r = k
            .post("/api/v4/runners", json!({"token": reg, "tag_list": "t"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let rt = r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        k.post(
            "/admin/jobs",
            json!({"name": "j", "tags": ["t"], "script": ["echo 1"]}),
        )
        .await;
        k.post(
            "/admin/jobs",
            json!({"name": "queued", "tags": ["t"], "script": ["echo 2"]}),
        )
        .await;
        let r = k
            .request(
                &rt,
                json!({"session": {"url": "https://r/session/1", "authorization": "a"}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: serde_json::Value = r.json().await.unwrap();
        let (id, jt) = (
            v["id"].as_u64().unwrap(),
            v["token"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            k.put(id, json!({"token": jt, "state": "running"}))
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            k.patch(id, &jt, Some("0-5"), b"hello ").await.status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            k.patch(id, &jt, Some("6-11"), b"world\n").await.status(),
            StatusCode::ACCEPTED
        );
        k.c.abort().await;

        let k = start_with(opts(dir.path())).await;
        assert_eq!(k.c.registration_token().await, reg);
        let r = k.patch(id, &jt, Some("0-5"), b"hello ").await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&r, "range"), "0-12");
        let r = k.patch(id, &jt, Some("12-16"), b"more\n").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), "0-17");
        let job = k.get_json(&format!("/admin/jobs/{id}")).await;
        assert_eq!(job["state"], json!("running"));
        assert_eq!(job["trace"], json!("hello world\nmore\n"));
        assert_eq!(job["session"]["url"], json!("https://r/session/1"));
        // the runner and the other queued job are still there; ids go on
        let (id2, _) = k.take(&rt).await;
        assert_eq!(id2, id + 1);
        let new = k.job("after-restart", &["t"]).await;
        assert_eq!(new, id + 2);
        let sum = termgate::api::trace_checksum(crc32fast::hash(b"hello world\nmore\n"));
        let r = k
            .put(
                id,
                json!({"token": jt, "state": "success", "output": {"checksum": sum, "bytesize": 17}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        k.c.shutdown().await;

        let k = start_with(opts(dir.path())).await;
        let job = k.get_json(&format!("/admin/jobs/{id}")).await;
        assert_eq!(job["state"], json!("success"));
        assert_eq!(job["trace_size"], json!(17));
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn jobs_files_and_preset_runner() {
        let dir = tempfile::tempdir().unwrap();
        let webide = dir.path().join(".gitlab-webide.yml");
        std::fs::write(
            &webide,
            "terminal:\n  image: alpine:3.19\n  before_script: [ls]\n  tags: [webide]\n",
        )
        .unwrap();
        let ci = dir.path().join("ci.yml");
        std::fs::write(
            &ci,
            "a: {script: [true]}\nb: {script: [false], tags: [webide]}\n",
        )
        .unwrap();
        let args = CoordinatorArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            registration_token: None,
            state_dir: None,
            jobs: vec![webide, ci],
            runner_token: Some("glrt-preset".into()),
            runner_tags: vec!["webide".into()],
            run_untagged: false,
            project: "acme/webapp".into(),
            trace_update_interval: 1,
            public_url: None,
        };
        let k = start_with(args.into()).await;
        assert!(k.c.registration_token().await.starts_with("GR1348941"));
        assert!(k.url.starts_with("http://127.0.0.1:"));
        let r = k.request("glrt-preset", json!({})).await;
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["job_info"]["name"], json!("terminal"));
        assert_eq!(v["job_info"]["project_full_path"], json!("acme/webapp"));
        assert_eq!(v["steps"][0]["script"], json!(["ls", "sleep 60"]));
        let repo = v["git_info"]["repo_url"].as_str().unwrap();
        let tok = v["token"].as_str().unwrap();
        assert_eq!(
            repo,
            format!(
                "http://gitlab-ci-token:{tok}@{}/acme/webapp.git",
                k.c.addr()
            )
        );
        // `a` is untagged and the preset runner does not run untagged jobs
        let (_, _) = k.take("glrt-preset").await;
        let r = k.request("glrt-preset", json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let jobs = k.get_json("/admin/jobs").await;
        assert_eq!(jobs.as_array().unwrap().len(), 3);
        k.c.shutdown().await;
    }
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: CoordinatorArgs,
    }

    #[test]
    fn cli_flags() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["x"]).unwrap().args;
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.project, "termgate/demo");
        assert_eq!(c.trace_update_interval, 3);
        let c = Cli::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--jobs",
            "a.yml",
            "b.yml",
            "--runner-token",
            "glrt-x",
            "--runner-tags",
            "a,b",
            "--run-untagged",
            "--state-dir",
            "/tmp/s",
        ])
        .unwrap()
        .args;
        assert_eq!(c.jobs.len(), 2);
        let o = CoordinatorOptions::from(c);
        assert_eq!(o.runners[0].tags, vec!["a", "b"]);
        assert!(o.runners[0].run_untagged);
        assert!(Cli::try_parse_from(["x", "--runner-tags", "a"]).is_err());
    }

    #[tokio::test]
    async fn run_stops_on_cancel() {
        use clap::Parser;
        let args = Cli::try_parse_from(["x", "--listen", "127.0.0.1:0"])
            .unwrap()
            .args;
        let stop = CancellationToken::new();
        stop.cancel();
        run(args, stop).await.unwrap();
    }
}
