//! `/admin/…`: a JSON API to queue and inspect jobs and runners, for tests,
//! the demo and the console. No authentication: bind it to loopback.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_norway::{Mapping, Value as Yaml};

use super::ci_yaml::{job_from_spec, parse_ci_yaml, JobDef};
use super::records::{Phase, RunnerRecord};
use super::Shared;
use termgate::admin::{AdminError, CreatedJobs, CreatedRunner, JobView, NewRunner};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/admin/jobs", post(create_jobs).get(list_jobs))
        .route("/admin/jobs/raw", post(create_raw_job))
        .route("/admin/jobs/{id}", get(get_job))
        .route("/admin/jobs/{id}/trace", get(get_trace))
        .route("/admin/jobs/{id}/cancel", post(cancel_job))
        .route("/admin/jobs/{id}/session", axum::routing::put(set_session))
        .route(
            "/admin/jobs/{id}/terminal.ws",
            get(super::workhorse::terminal_ws),
        )
        .route("/admin/runners", post(create_runner).get(list_runners))
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    let body = AdminError {
        error: msg.to_string(),
    };
    (status, Json(body)).into_response()
}

/// The jobs described by an admin request body: either
/// `{"ci_yaml": "...", "job": "name"?}` or one job spec
/// `{name, stage?, tags, image?, script, after_script?, variables, timeout?}`.
pub fn jobs_from_request(body: &[u8]) -> Result<Vec<JobDef>, String> {
    let v: Yaml = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Yaml::Mapping(mut m) = v else {
        return Err("expected a JSON object".into());
    };
    if let Some(text) = m.get("ci_yaml") {
        let text = text.as_str().ok_or("ci_yaml must be a string")?;
        let only = m.get("job").and_then(Yaml::as_str);
        return parse_ci_yaml(text, only).map_err(|e| e.to_string());
    }
    let name = m
        .remove("name")
        .and_then(|n| n.as_str().map(str::to_owned))
        .ok_or("a job spec needs a name")?;
    let spec: Mapping = m;
    Ok(vec![job_from_spec(&name, &spec).map_err(|e| e.to_string())?])
}

async fn create_jobs(State(s): State<Shared>, body: Bytes) -> Response {
    let defs = match jobs_from_request(&body) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut g = s.lock().await;
    match g.enqueue(defs).await {
        Ok(ids) => (StatusCode::CREATED, Json(CreatedJobs { ids })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

/// `POST /admin/jobs/raw`: queue a job whose payload is the request body,
/// verbatim but for `id` and `token`.
async fn create_raw_job(State(s): State<Shared>, body: Bytes) -> Response {
    let raw: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the raw payload must be a JSON object".to_string(),
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let def = crate::ci_yaml::JobDef {
        name: "raw".into(),
        stage: "test".into(),
        raw_payload: Some(raw),
        ..Default::default()
    };
    let mut g = s.lock().await;
    match g.enqueue(vec![def]).await {
        Ok(ids) => (StatusCode::CREATED, Json(CreatedJobs { ids })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

async fn list_jobs(State(s): State<Shared>) -> Response {
    let g = s.lock().await;
    let jobs: Vec<JobView> = g
        .jobs
        .values()
        .map(|j| JobView {
            trace: None,
            trace_base64: None,
            ..j.view()
        })
        .collect();
    Json(jobs).into_response()
}

async fn get_job(State(s): State<Shared>, Path(id): Path<u64>) -> Response {
    let g = s.lock().await;
    match g.jobs.get(&id) {
        Some(j) => Json(j.view()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn get_trace(State(s): State<Shared>, Path(id): Path<u64>) -> Response {
    let g = s.lock().await;
    match g.jobs.get(&id) {
        Some(j) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            j.trace.clone(),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn cancel_job(State(s): State<Shared>, Path(id): Path<u64>) -> Response {
    let mut g = s.lock().await;
    let Some(job) = g.jobs.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    match job.rec.phase {
        Phase::Queued | Phase::Assigned | Phase::Running => {
            job.rec.phase = Phase::Canceled;
        }
        Phase::Canceled => {}
        Phase::Success | Phase::Failed => {
            return error(StatusCode::CONFLICT, "job already finished");
        }
    }
    g.queue_changed();
    if let Err(e) = g.save_job(id).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    }
    match g.jobs.get(&id) {
        Some(j) => Json(j.view()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such job"),
    }
}

/// `PUT /admin/jobs/{id}/session`: replace the session info stored for a
/// job (simulates a runner whose certificate changed; tests pinning).
async fn set_session(State(s): State<Shared>, Path(id): Path<u64>, body: Bytes) -> Response {
    let session: termgate::api::SessionInfo = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid session: {e}")),
    };
    let mut g = s.lock().await;
    let Some(job) = g.jobs.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    job.rec.session = Some(session);
    if let Err(e) = g.save_job(id).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    }
    match g.jobs.get(&id) {
        Some(j) => Json(j.view()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn create_runner(State(s): State<Shared>, body: Bytes) -> Response {
    let req: NewRunner = if body.is_empty() {
        NewRunner::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    };
    let mut g = s.lock().await;
    if !req.token.is_empty() && g.runner_by_token(&req.token).is_some() {
        return error(StatusCode::CONFLICT, "a runner with this token exists");
    }
    let run_untagged = req.run_untagged.unwrap_or(true) || req.tags.is_empty();
    let rec = RunnerRecord {
        token: req.token,
        description: req.description,
        tags: req.tags,
        run_untagged,
        paused: req.paused,
        locked: req.locked,
        maximum_timeout: req.maximum_timeout,
        ..RunnerRecord::default()
    };
    match g.add_runner(rec).await {
        Ok((id, token)) => (StatusCode::CREATED, Json(CreatedRunner { id, token })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

async fn list_runners(State(s): State<Shared>) -> Response {
    let g = s.lock().await;
    let v: Vec<&RunnerRecord> = g.runners.values().collect();
    Json(v).into_response()
}

#[cfg(test)]
mod tests {
    use crate::testkit::start;
    use reqwest::StatusCode;
    use serde_json::{json, Value};

    #[tokio::test]
    async fn admin_endpoints() {
        let k = start().await;
        let r = k
            .post(
                "/admin/jobs",
                json!({"ci_yaml": "build: {script: make}\ntest: {script: make test, stage: test}\n"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["ids"], json!([1, 2]));
        let r = k
            .post(
                "/admin/jobs",
                json!({"ci_yaml": "build: {script: make}\ntest: {script: make test}\n", "job": "test"}),
            )
            .await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["ids"], json!([3]));
        let r = k
            .post(
                "/admin/jobs",
                json!({"name": "spec", "stage": "deploy", "tags": ["x"], "image": "alpine",
                       "script": ["a", "b"], "after_script": ["c"], "timeout": 60,
                       "variables": {"PLAIN": "p", "SECRET": {"value": "s", "masked": true},
                                     "CFG": {"value": "f", "file": true}}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        for bad in [
            json!({"script": ["no name"]}),
            json!({"name": "no script"}),
            json!({"ci_yaml": "a: [unclosed"}),
            json!({"ci_yaml": "a: {script: x}", "job": "missing"}),
        ] {
            let r = k.post("/admin/jobs", bad.clone()).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let list = k.get_json("/admin/jobs").await;
        assert_eq!(list.as_array().unwrap().len(), 4);
        assert_eq!(list[3]["name"], json!("spec"));
        assert_eq!(list[3]["state"], json!("pending"));
        assert_eq!(list[3]["tags"], json!(["x"]));

        let rt = k.runner(&["x"], false).await;
        let r = k.request(&rt, json!({})).await;
        let job: Value = r.json().await.unwrap();
        assert_eq!(job["job_info"]["stage"], json!("deploy"));
        assert_eq!(job["image"]["name"], json!("alpine"));
        assert_eq!(job["steps"][0]["timeout"], json!(60));
        assert_eq!(job["steps"][1]["name"], json!("after_script"));
        let var = |k: &str| {
            job["variables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["key"] == json!(k))
                .cloned()
                .unwrap()
        };
        assert_eq!(var("SECRET")["masked"], json!(true));
        assert_eq!(var("SECRET")["public"], json!(false));
        assert_eq!(var("CFG")["file"], json!(true));
        assert_eq!(var("PLAIN")["value"], json!("p"));
        assert_eq!(var("CI_JOB_NAME")["value"], json!("spec"));

        let one = k.get_json("/admin/jobs/4").await;
        assert_eq!(one["runner_id"], json!(1));
        assert_eq!(one["state"], json!("pending"));
        assert_eq!(one["trace"], json!(""));
        assert_eq!(one["checksum"], json!("crc32:00000000"));
        let r = k
            .http
            .get(format!("{}/admin/jobs/99", k.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = k.post("/admin/jobs/99/cancel", json!({})).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let r = k
            .post("/admin/runners", json!({"token": "glrt-mine", "tags": []}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = k
            .post("/admin/runners", json!({"token": "glrt-mine"}))
            .await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let runners = k.get_json("/admin/runners").await;
        assert_eq!(runners.as_array().unwrap().len(), 2);
        assert_eq!(runners[1]["token"], json!("glrt-mine"));
        assert_eq!(runners[1]["run_untagged"], json!(true));
        k.c.shutdown().await;
    }
}
