//! `POST/DELETE /api/v4/runners`, `POST runners/verify`,
//! `DELETE runners/managers`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use termgate::api::{RegisterRunnerResponse, UnregisterRunnerRequest, VerifyRunnerRequest};

use super::{forbidden, internal, message, parse};
use crate::records::RunnerRecord;
use crate::state::now;
use crate::Shared;

/// Legacy registration with the registration token. `tag_list` may be a
/// comma string (gitlab-runner) or an array; `run_untagged` defaults to
/// true; no tags with `run_untagged=false` is a 400, as in GitLab.
pub(super) async fn register(State(s): State<Shared>, body: Bytes) -> Response {
    let v: Value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut g = s.lock().await;
    let token = v.get("token").and_then(Value::as_str).unwrap_or("");
    if token.is_empty() || token != g.registration_token {
        return forbidden();
    }
    let tags: Vec<String> = match v.get("tag_list") {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let run_untagged = v
        .get("run_untagged")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if tags.is_empty() && !run_untagged {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - tags list can not be empty when runner is not allowed to pick untagged jobs",
        );
    }
    let str_of = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let bool_of = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let rec = RunnerRecord {
        description: str_of("description"),
        tags,
        run_untagged,
        locked: bool_of("locked"),
        paused: bool_of("paused"),
        maximum_timeout: v
            .get("maximum_timeout")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        access_level: str_of("access_level"),
        ..RunnerRecord::default()
    };
    match g.add_runner(rec).await {
        Ok((id, token)) => (
            StatusCode::CREATED,
            Json(RegisterRunnerResponse {
                id,
                token,
                token_expires_at: String::new(),
            }),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

pub(super) async fn verify(State(s): State<Shared>, body: Bytes) -> Response {
    let req: VerifyRunnerRequest = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut g = s.lock().await;
    let Some(id) = g.runner_by_token(&req.token).map(|r| r.id) else {
        return forbidden();
    };
    let Some(r) = g.runners.get_mut(&id) else {
        return forbidden();
    };
    let m = r.managers.entry(req.system_id.clone()).or_default();
    if req.info.is_some() {
        m.info = req.info;
    }
    m.contacted_at = now();
    let token = r.token.clone();
    if let Err(e) = g.save_meta().await {
        return internal(e);
    }
    (
        StatusCode::OK,
        Json(RegisterRunnerResponse {
            id,
            token,
            token_expires_at: String::new(),
        }),
    )
        .into_response()
}

pub(super) async fn unregister(State(s): State<Shared>, body: Bytes) -> Response {
    let req: UnregisterRunnerRequest = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut g = s.lock().await;
    let Some(id) = g.runner_by_token(&req.token).map(|r| r.id) else {
        return forbidden();
    };
    g.runners.remove(&id);
    if let Err(e) = g.save_meta().await {
        return internal(e);
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn unregister_manager(State(s): State<Shared>, body: Bytes) -> Response {
    let req: UnregisterRunnerRequest = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut g = s.lock().await;
    let Some(id) = g.runner_by_token(&req.token).map(|r| r.id) else {
        return forbidden();
    };
    if let Some(r) = g.runners.get_mut(&id) {
        r.managers.remove(&req.system_id);
    }
    if let Err(e) = g.save_meta().await {
        return internal(e);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use crate::testkit::{header, start};
    use reqwest::StatusCode;
    use serde_json::{json, Value};

    #[tokio::test]
    async fn registration_verify_unregister() {
        let k = start().await;
        let r = k
            .post(
                "/api/v4/runners",
                json!({"token": "wrong", "description": "x"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&r, "x-request-id").len(), 32);
        let r = k
            .post(
                "/api/v4/runners",
                json!({"token": "reg-token", "description": "d", "tag_list": "a, b",
                       "run_untagged": false, "maximum_timeout": 600}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        let token = v["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("glrt-"));
        let runners = k.get_json("/admin/runners").await;
        assert_eq!(runners[0]["tags"], json!(["a", "b"]));
        assert_eq!(runners[0]["run_untagged"], json!(false));
        assert_eq!(runners[0]["maximum_timeout"], json!(600));

        // no tags and run_untagged=false is invalid, as in GitLab
        let r = k
            .post(
                "/api/v4/runners",
                json!({"token": "reg-token", "run_untagged": false}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        // no run_untagged and no tags: defaults to true
        let r = k
            .post("/api/v4/runners", json!({"token": "reg-token"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let runners = k.get_json("/admin/runners").await;
        assert_eq!(runners[1]["run_untagged"], json!(true));

        let r = k
            .post(
                "/api/v4/runners/verify",
                json!({"token": token, "system_id": "s_1"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token"], json!(token));
        let r = k
            .post("/api/v4/runners/verify", json!({"token": "glrt-nope"}))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);

        // a runner created in the "UI" (admin API) verifies too
        let pre = k.runner(&[], true).await;
        let r = k
            .post("/api/v4/runners/verify", json!({"token": pre}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);

        let del = |body: Value, path: &'static str| {
            let k = &k;
            async move {
                k.http
                    .delete(format!("{}{path}", k.url))
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(
            del(
                json!({"token": token, "system_id": "s_1"}),
                "/api/v4/runners/managers"
            )
            .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            del(json!({"token": token}), "/api/v4/runners").await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            del(json!({"token": token}), "/api/v4/runners").await,
            StatusCode::FORBIDDEN
        );
        let r = k.request(&token, json!({})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        k.c.shutdown().await;
    }
}
