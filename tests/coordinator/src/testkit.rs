//! Helpers for the coordinator's in-process HTTP tests.

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

use super::{Coordinator, CoordinatorOptions};

pub struct Kit {
    pub c: Coordinator,
    pub http: Client,
    pub url: String,
}

pub async fn start() -> Kit {
    start_with(CoordinatorOptions {
        registration_token: Some("reg-token".into()),
        trace_update_interval: 1,
        ..CoordinatorOptions::default()
    })
    .await
}

pub async fn start_with(opts: CoordinatorOptions) -> Kit {
    let c = Coordinator::start(opts).await.unwrap();
    let url = c.url();
    Kit {
        c,
        http: Client::new(),
        url,
    }
}

impl Kit {
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.unwrap()
    }

    /// Create a runner through the admin API; returns its token.
    pub async fn runner(&self, tags: &[&str], run_untagged: bool) -> String {
        let r = self
            .post(
                "/admin/runners",
                json!({"description": "t", "tags": tags, "run_untagged": run_untagged}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// Queue one job; returns its id.
    pub async fn job(&self, name: &str, tags: &[&str]) -> u64 {
        let r = self
            .post(
                "/admin/jobs",
                json!({"name": name, "tags": tags, "script": ["echo hi"]}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["ids"][0].as_u64().unwrap()
    }

    pub async fn request(&self, token: &str, extra: Value) -> Response {
        let mut body = json!({"token": token, "system_id": "s_0123456789ab",
            "info": {"name": "termgate-runner", "version": "0.1.0", "features": {"session": true}}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/api/v4/jobs/request", body).await
    }

    /// Request a job that must be there; returns (id, job token).
    pub async fn take(&self, token: &str) -> (u64, String) {
        let r = self.request(token, json!({})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        (
            v["id"].as_u64().unwrap(),
            v["token"].as_str().unwrap().into(),
        )
    }

    pub async fn put(&self, id: u64, body: Value) -> Response {
        self.http
            .put(format!("{}/api/v4/jobs/{id}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, id: u64, token: &str, range: Option<&str>, body: &[u8]) -> Response {
        let mut rb = self
            .http
            .patch(format!("{}/api/v4/jobs/{id}/trace", self.url))
            .header("JOB-TOKEN", token)
            .header("Content-Type", "text/plain")
            .body(body.to_vec());
        if let Some(r) = range {
            rb = rb.header("Content-Range", r);
        }
        rb.send().await.unwrap()
    }

    /// Take a job and acknowledge it; returns (id, job token).
    pub async fn running(&self, token: &str) -> (u64, String) {
        let (id, jt) = self.take(token).await;
        let r = self.put(id, json!({"token": jt, "state": "running"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        (id, jt)
    }
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
