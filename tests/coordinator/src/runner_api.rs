//! `/api/v4/…`: the runner API, behaving like GitLab's
//! (`lib/api/ci/runner.rb`, `app/services/ci/update_build_state_service.rb`,
//! `app/services/ci/append_build_trace_service.rb`).
//!
//! Status rules for job calls (GitLab's, except where noted):
//! - unknown job id → 404 (GitLab ≥ 13 says 403; both abort the runner);
//!   job token wrong → 403.
//! - `PUT jobs/:id` on a job waiting for its ack (two-phase commit):
//!   `pending` → 200 keep-alive, `running` → 200 and the job runs, a final
//!   state → 400.
//! - on a running job: `pending` → 409 (already taken), `running` → 200,
//!   `success`/`failed` → 412 if `output.checksum`/`output.bytesize` (or the
//!   old top-level `checksum`) disagree with the stored trace, else 200.
//! - on a job canceled while a runner had it: 200 with `Job-Status: canceled`
//!   (a final state records exit code and reason; the state stays canceled).
//! - on a finished job: 403 `Job is not running` with `Job-Status`.
//! - `PATCH jobs/:id/trace`: 403 unless running (or canceled while a runner
//!   still has it: 202 with `Job-Status: canceled`); 400 without a parsable
//!   `Content-Range`; 416 with `Range: 0-<size>` unless it starts at the
//!   stored size (start 0 restarts the trace only after a 412). Patches over
//!   1 MiB are accepted (GitLab does not check either), up to the 16 MiB
//!   body limit of the server.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, patch, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use termgate::api::{headers, parse_content_range, JobRequest, UpdateJobRequest};

use super::payload::{build_response, BuildContext};
use super::records::{ManagerRecord, Phase};
use super::state::{new_token, now};
use super::Shared;

mod registration;
use registration::{register, unregister, unregister_manager, verify};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v4/runners", post(register).delete(unregister))
        .route("/api/v4/runners/verify", post(verify))
        .route("/api/v4/runners/managers", delete(unregister_manager))
        .route("/api/v4/jobs/request", post(request_job))
        .route("/api/v4/jobs/{id}", put(update_job))
        .route("/api/v4/jobs/{id}/trace", patch(patch_trace))
}

pub(crate) fn message(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "message": msg }))).into_response()
}

pub(crate) fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "local coordinator: persisting state failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error",
    )
}

#[allow(clippy::result_large_err)] // a ready reply, built once per request
pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| message(StatusCode::BAD_REQUEST, &format!("400 Bad request - {e}")))
}

pub(crate) fn forbidden() -> Response {
    message(StatusCode::FORBIDDEN, "403 Forbidden")
}

pub(crate) fn with_header(mut r: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

// ---------------------------------------------------------------- jobs

async fn request_job(State(s): State<Shared>, body: Bytes) -> Response {
    let req: JobRequest = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut g = s.lock().await;
    let Some(runner_id) = g.runner_by_token(&req.token).map(|r| r.id) else {
        return forbidden();
    };
    let Some(runner) = g.runners.get_mut(&runner_id) else {
        return forbidden();
    };
    let new_manager = !runner.managers.contains_key(&req.system_id);
    runner.managers.insert(
        req.system_id.clone(),
        ManagerRecord {
            info: Some(req.info.clone()),
            last_update: req.last_update.clone(),
            contacted_at: now(),
        },
    );
    let runner = runner.clone();
    if new_manager {
        if let Err(e) = g.save_meta().await {
            return internal(e);
        }
    }
    let picked = g
        .jobs
        .values()
        .find(|j| j.rec.phase == Phase::Queued && runner.can_pick(&j.rec.def.tags))
        .map(|j| j.rec.id);
    let Some(job_id) = picked else {
        let lu = g.last_update.clone();
        return with_header(
            StatusCode::NO_CONTENT.into_response(),
            headers::LAST_UPDATE,
            &lu,
        );
    };
    let token = new_token("glcbt-");
    let session = req.session.filter(|s| *s != Default::default());
    let settings = g.settings.clone();
    let Some(job) = g.jobs.get_mut(&job_id) else {
        return forbidden();
    };
    let ctx = BuildContext {
        job_id,
        token: token.clone(),
        pipeline_id: job.rec.pipeline_id,
        project_path: settings.project.clone(),
        server_url: settings.server_url.clone(),
        max_timeout: runner.maximum_timeout,
        session_url: session
            .as_ref()
            .map(|s| s.url.clone())
            .filter(|u| !u.is_empty()),
    };
    let raw = job.rec.def.raw_payload.clone().map(|mut v| {
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), json!(job_id));
            o.insert("token".into(), json!(token));
        }
        v
    });
    let response = build_response(&job.rec.def, &ctx);
    job.rec.phase = Phase::Assigned;
    job.rec.runner_id = Some(runner_id);
    job.rec.system_id = Some(req.system_id.clone());
    job.rec.token = Some(token);
    job.rec.session = session;
    job.rec.response = Some(response.clone());
    g.queue_changed();
    if let Err(e) = g.save_job(job_id).await {
        return internal(e);
    }
    match raw {
        Some(raw) => (StatusCode::CREATED, Json(raw)).into_response(),
        None => (StatusCode::CREATED, Json(response)).into_response(),
    }
}

fn job_status(r: Response, phase: Phase) -> Response {
    with_header(r, headers::JOB_STATUS, phase.api_state())
}

async fn update_job(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    hdrs: HeaderMap,
    body: Bytes,
) -> Response {
    let req: UpdateJobRequest = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut g = s.lock().await;
    let Some(job) = g.jobs.get_mut(&id) else {
        return message(StatusCode::NOT_FOUND, "404 Not Found");
    };
    let header_token = hdrs
        .get(headers::JOB_TOKEN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = if req.token.is_empty() {
        header_token
    } else {
        req.token.as_str()
    };
    if job.rec.token.as_deref() != Some(token) || token.is_empty() {
        return forbidden();
    }
    use termgate::api::JobState as S;
    let status = match (job.rec.phase, req.state) {
        (Phase::Assigned, S::Pending) => StatusCode::OK,
        (Phase::Assigned, S::Running) => {
            job.rec.phase = Phase::Running;
            StatusCode::OK
        }
        (Phase::Assigned, _) => StatusCode::BAD_REQUEST,
        (Phase::Running, S::Pending) => StatusCode::CONFLICT,
        (Phase::Running, S::Running) => StatusCode::OK,
        (Phase::Running, S::Success | S::Failed) => {
            let checksum = if req.output.checksum.is_empty() {
                req.checksum.clone().unwrap_or_default()
            } else {
                req.output.checksum.clone()
            };
            let bad_sum = !checksum.is_empty() && checksum != job.checksum();
            let bad_size =
                req.output.bytesize != 0 && req.output.bytesize != job.trace.len() as u64;
            if bad_sum || bad_size {
                job.rec.trace_reset_allowed = true;
                StatusCode::PRECONDITION_FAILED
            } else {
                job.rec.phase = if req.state == S::Success {
                    Phase::Success
                } else {
                    Phase::Failed
                };
                job.rec.trace_reset_allowed = false;
                job.rec.exit_code = req.exit_code;
                job.rec.failure_reason = req.failure_reason.clone();
                StatusCode::OK
            }
        }
        (Phase::Running, S::Canceled) => StatusCode::BAD_REQUEST,
        (Phase::Canceled, _) if job.rec.runner_id.is_some() => {
            if req.state.is_final() {
                job.rec.runner_done = true;
                job.rec.exit_code = req.exit_code;
                job.rec.failure_reason = req.failure_reason.clone();
            }
            StatusCode::OK
        }
        _ => {
            let phase = job.rec.phase;
            return job_status(
                message(StatusCode::FORBIDDEN, "403 Forbidden - Job is not running"),
                phase,
            );
        }
    };
    let phase = job.rec.phase;
    if status == StatusCode::OK || status == StatusCode::PRECONDITION_FAILED {
        if let Err(e) = g.save_job(id).await {
            return internal(e);
        }
    }
    job_status((status, status.as_u16().to_string()).into_response(), phase)
}

async fn patch_trace(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    hdrs: HeaderMap,
    body: Bytes,
) -> Response {
    let mut g = s.lock().await;
    let interval = g.settings.trace_update_interval;
    let Some(job) = g.jobs.get_mut(&id) else {
        return message(StatusCode::NOT_FOUND, "404 Not Found");
    };
    let token = hdrs
        .get(headers::JOB_TOKEN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if token.is_empty() || job.rec.token.as_deref() != Some(token) {
        return forbidden();
    }
    let phase = job.rec.phase;
    let writable = phase == Phase::Running
        || (phase == Phase::Canceled && job.rec.runner_id.is_some() && !job.rec.runner_done);
    if !writable {
        return job_status(
            message(StatusCode::FORBIDDEN, "403 Forbidden - Job is not running"),
            phase,
        );
    }
    let Some(range) = hdrs.get(headers::CONTENT_RANGE) else {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - Missing header Content-Range",
        );
    };
    let Some((start, _end)) = range.to_str().ok().and_then(parse_content_range) else {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - Invalid Content-Range",
        );
    };
    let size = job.trace.len() as u64;
    let reset = start == 0 && size > 0 && job.rec.trace_reset_allowed;
    if start != size && !reset {
        return with_header(
            message(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "416 Range Not Satisfiable",
            ),
            headers::RANGE,
            &format!("0-{size}"),
        );
    }
    if reset {
        if let Some(store) = &g.store {
            if let Err(e) = store.replace_trace(id, &body).await {
                return internal(e);
            }
        }
        let Some(job) = g.jobs.get_mut(&id) else {
            return forbidden();
        };
        job.trace = body.to_vec();
        job.rec.trace_reset_allowed = false;
        if let Err(e) = g.save_job(id).await {
            return internal(e);
        }
    } else if !body.is_empty() {
        if let Some(store) = &g.store {
            if let Err(e) = store.append_trace(id, size, &body).await {
                return internal(e);
            }
        }
        if let Some(job) = g.jobs.get_mut(&id) {
            job.trace.extend_from_slice(&body);
        }
    }
    let new_size = g.jobs.get(&id).map_or(0, |j| j.trace.len());
    let r = job_status(StatusCode::ACCEPTED.into_response(), phase);
    let r = with_header(r, headers::RANGE, &format!("0-{new_size}"));
    with_header(r, headers::TRACE_UPDATE_INTERVAL, &interval.to_string())
}

#[cfg(test)]
mod tests {
    use crate::testkit::{header, start};
    use reqwest::StatusCode;
    use serde_json::{json, Value};

    #[tokio::test]
    async fn request_tags_last_update_and_session() {
        let k = start().await;
        let tagged = k.runner(&["docker", "linux"], false).await;
        let untagged_ok = k.runner(&["docker"], true).await;

        let r = k.request(&tagged, json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let lu1 = header(&r, "x-gitlab-last-update");
        assert_eq!(lu1.len(), 32);
        let r = k.request(&tagged, json!({"last_update": lu1})).await;
        assert_eq!(header(&r, "x-gitlab-last-update"), lu1);

        let plain = k.job("plain", &[]).await;
        let r = k.request(&tagged, json!({})).await;
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "untagged job, run_untagged=false"
        );
        let lu2 = header(&r, "x-gitlab-last-update");
        assert_ne!(lu1, lu2, "the queue changed");

        let linux = k.job("linux", &["linux"]).await;
        let _other = k.job("windows", &["windows"]).await;
        let r = k
            .request(
                &tagged,
                json!({"session": {"url": "https://runner:8093/session/abc",
                                   "certificate": "PEM", "authorization": "tok"}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["id"], json!(linux));
        assert!(v["token"].as_str().unwrap().starts_with("glcbt-"));
        assert_eq!(v["runner_info"]["timeout"], json!(3600));
        assert_eq!(
            v["runner_info"]["runner_session_url"],
            json!("https://runner:8093/session/abc")
        );
        assert_eq!(v["job_info"]["name"], json!("linux"));
        let job = k.get_json(&format!("/admin/jobs/{linux}")).await;
        assert_eq!(job["state"], json!("pending"));
        assert_eq!(
            job["session"],
            json!({"url": "https://runner:8093/session/abc", "certificate": "PEM", "authorization": "tok"})
        );
        let runners = k.get_json("/admin/runners").await;
        assert!(runners[0]["managers"]["s_0123456789ab"]["contacted_at"].is_string());

        // the untagged job goes to the runner that runs untagged jobs
        let (id, _) = k.take(&untagged_ok).await;
        assert_eq!(id, plain);
        // windows job matches nobody
        let r = k.request(&untagged_ok, json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);

        // paused runners get nothing
        let r = k
            .post(
                "/admin/runners",
                json!({"tags": ["windows"], "paused": true}),
            )
            .await;
        let v: Value = r.json().await.unwrap();
        let r = k.request(v["token"].as_str().unwrap(), json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn update_two_phase_checksum_and_conflicts() {
        let k = start().await;
        let rt = k.runner(&[], true).await;
        k.job("a", &[]).await;
        let (id, jt) = k.take(&rt).await;

        let r = k
            .put(id, json!({"token": "glcbt-wrong", "state": "running"}))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = k.put(9999, json!({"token": jt, "state": "running"})).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // not yet acknowledged: pending is a keep-alive, patches are refused
        let r = k.put(id, json!({"token": jt, "state": "pending"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "job-status"), "pending");
        let r = k.patch(id, &jt, Some("0-1"), b"hi").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&r, "job-status"), "pending");
        // ack
        let r = k.put(id, json!({"token": jt, "state": "running"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "job-status"), "running");
        // a second "pending" after the ack: already taken
        let r = k.put(id, json!({"token": jt, "state": "pending"})).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);

        let r = k.patch(id, &jt, Some("0-4"), b"hello").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let good = termgate::api::trace_checksum(crc32fast::hash(b"hello"));
        // wrong checksum → 412, trace reset allowed
        let r = k
            .put(
                id,
                json!({"token": jt, "state": "success", "output": {"checksum": "crc32:00000000", "bytesize": 5}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(header(&r, "job-status"), "running");
        // wrong size → 412
        let r = k
            .put(
                id,
                json!({"token": jt, "state": "success", "output": {"checksum": good, "bytesize": 6}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        // the runner resends from 0: the trace is replaced
        let r = k.patch(id, &jt, Some("0-4"), b"HELLO").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), "0-5");
        // …only once: another 0 start is a 416 again
        let r = k.patch(id, &jt, Some("0-4"), b"HELLO").await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let good = termgate::api::trace_checksum(crc32fast::hash(b"HELLO"));
        let r = k
            .put(
                id,
                json!({"token": jt, "state": "failed", "failure_reason": "script_failure",
                       "exit_code": 2, "output": {"checksum": good, "bytesize": 5}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "job-status"), "failed");
        let job = k.get_json(&format!("/admin/jobs/{id}")).await;
        assert_eq!(job["state"], json!("failed"));
        assert_eq!(job["exit_code"], json!(2));
        assert_eq!(job["failure_reason"], json!("script_failure"));
        assert_eq!(job["trace"], json!("HELLO"));
        assert_eq!(job["checksum"], json!(good));
        // finished: 403 Job is not running
        let r = k.put(id, json!({"token": jt, "state": "success"})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&r, "job-status"), "failed");
        let r = k.patch(id, &jt, Some("5-5"), b"x").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn patch_status_codes_and_headers() {
        let k = start().await;
        let rt = k.runner(&[], true).await;
        k.job("a", &[]).await;
        let (id, jt) = k.running(&rt).await;

        let r = k.patch(id, &jt, None, b"x").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = k.patch(id, &jt, Some("bytes=x"), b"x").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = k.patch(id, "glcbt-nope", Some("0-0"), b"x").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);

        let r = k.patch(id, &jt, Some("0-5"), b"line1\n").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), "0-6");
        assert_eq!(header(&r, "job-status"), "running");
        assert_eq!(header(&r, "x-gitlab-trace-update-interval"), "1");
        assert_eq!(header(&r, "x-request-id").len(), 32);

        // a gap and an overlap are both 416 with the stored size
        let r = k.patch(id, &jt, Some("10-12"), b"abc").await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&r, "range"), "0-6");
        let r = k.patch(id, &jt, Some("0-5"), b"line1\n").await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&r, "range"), "0-6");

        // binary-safe append; the end of Content-Range is ignored (Rails)
        let r = k.patch(id, &jt, Some("6-6"), &[0xff, 0x00, b'\n']).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), "0-9");
        let raw = k
            .http
            .get(format!("{}/admin/jobs/{id}/trace", k.url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&raw[..], b"line1\n\xff\x00\n");
        let job = k.get_json(&format!("/admin/jobs/{id}")).await;
        assert_eq!(job["trace_size"], json!(9));
        assert_eq!(job["trace_base64"], json!("bGluZTEK/wAK"));
        k.c.shutdown().await;
    }

    #[tokio::test]
    async fn cancel_running_and_pending() {
        let k = start().await;
        let rt = k.runner(&[], true).await;
        let first = k.job("a", &[]).await;
        let second = k.job("b", &[]).await;
        let (id, jt) = k.running(&rt).await;
        assert_eq!(id, first);

        let r = k
            .post(&format!("/admin/jobs/{second}/cancel"), json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = k.post(&format!("/admin/jobs/{id}/cancel"), json!({})).await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["state"], json!("canceled"));

        // the canceled pending job is never handed out
        let r = k.request(&rt, json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        // the running one learns it on its next patch and update
        let r = k.patch(id, &jt, Some("0-2"), b"bye").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "job-status"), "canceled");
        let r = k.put(id, json!({"token": jt, "state": "running"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "job-status"), "canceled");
        let r = k
            .put(
                id,
                json!({"token": jt, "state": "failed", "failure_reason": "script_failure", "exit_code": 137}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "job-status"), "canceled");
        let r = k.patch(id, &jt, Some("3-3"), b"x").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&r, "job-status"), "canceled");
        let job = k.get_json(&format!("/admin/jobs/{id}")).await;
        assert_eq!(job["state"], json!("canceled"));
        assert_eq!(job["trace"], json!("bye"));
        assert_eq!(job["exit_code"], json!(137));
        k.c.shutdown().await;
    }
}
