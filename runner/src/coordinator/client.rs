//! HTTP client for GitLab's runner API (`<url>/api/v4/...`).
//!
//! Each call returns an outcome enum that says what the caller should do,
//! mirroring gitlab-runner's `network/gitlab.go`, and logs upstream's wording.
//! Tokens are sent in headers and bodies only; they never reach a log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use termgate::api::{
    self, headers, JobRequest, JobResponse, RegisterRunnerRequest, RegisterRunnerResponse,
    UnregisterRunnerRequest, UpdateJobRequest, VerifyRunnerRequest,
};
use termgate::logschema::{self as schema, msg};
use termgate::metrics::endpoint;

/// Called after every API call: endpoint label, method, HTTP status (0 on a
/// transport error), elapsed time. Feeds the `api_request_*` metrics.
pub type ApiObserver = Arc<dyn Fn(&'static str, &'static str, u16, Duration) + Send + Sync>;

pub use super::outcome::{PatchOutcome, RequestJobOutcome, UpdateOutcome};

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    observer: Option<ApiObserver>,
    user_agent: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

pub fn user_agent() -> String {
    format!(
        "termgate-runner {} ({}; rust; {}/{})",
        env!("CARGO_PKG_VERSION"),
        "main",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Maximum time for a single API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    /// `url` is the GitLab base URL (`https://gitlab.example.com`);
    /// `ca_file` an optional PEM bundle to trust (`tls-ca-file`).
    pub fn new(url: &str, ca_file: Option<&std::path::Path>) -> Result<Self> {
        let url = url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("url {url:?} is not valid: only http and https are supported");
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent())
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .use_rustls_tls();
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading tls-ca-file {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("parsing tls-ca-file {}", ca.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Client {
            http: builder.build().context("building HTTP client")?,
            base: format!("{url}/api/v4"),
            observer: None,
            user_agent: user_agent(),
        })
    }

    pub fn with_observer(mut self, observer: ApiObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    fn observe(&self, ep: &'static str, method: &'static str, status: u16, started: Instant) {
        if let Some(o) = &self.observer {
            o(ep, method, status, started.elapsed());
        }
    }

    fn request_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        h
    }

    async fn send_json<T: serde::Serialize>(
        &self,
        ep: &'static str,
        method: reqwest::Method,
        path: &str,
        token_header: (&'static str, &str),
        body: &T,
    ) -> std::result::Result<reqwest::Response, reqwest::Error> {
        let started = Instant::now();
        let m: &'static str = match method {
            reqwest::Method::POST => "post",
            reqwest::Method::PUT => "put",
            reqwest::Method::DELETE => "delete",
            reqwest::Method::PATCH => "patch",
            _ => "get",
        };
        let res = self
            .http
            .request(method, format!("{}/{}", self.base, path))
            .headers(Self::json_headers())
            .header(token_header.0, token_header.1)
            .header(headers::REQUEST_ID, Self::request_id())
            .json(body)
            .send()
            .await;
        self.observe(
            ep,
            m,
            res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
            started,
        );
        res
    }

    /// `POST /runners` with a registration token.
    pub async fn register_runner(
        &self,
        req: &RegisterRunnerRequest,
    ) -> Result<RegisterRunnerResponse> {
        let res = self
            .send_json(
                endpoint::REGISTER_RUNNER,
                reqwest::Method::POST,
                "runners",
                (headers::RUNNER_TOKEN, &req.token),
                req,
            )
            .await
            .context("Registering runner... failed")?;
        match res.status() {
            StatusCode::CREATED => {
                tracing::info!("{}", msg::REGISTERING_RUNNER_SUCCEEDED);
                res.json()
                    .await
                    .context("Registering runner... failed: invalid reply")
            }
            StatusCode::FORBIDDEN => {
                anyhow::bail!("Registering runner... forbidden (check registration token)")
            }
            s => anyhow::bail!("Registering runner... failed: {s}"),
        }
    }

    /// `POST /runners/verify`. `Ok(Some)` valid, `Ok(None)` not valid (403).
    pub async fn verify_runner(
        &self,
        req: &VerifyRunnerRequest,
    ) -> Result<Option<RegisterRunnerResponse>> {
        let res = self
            .send_json(
                endpoint::VERIFY_RUNNER,
                reqwest::Method::POST,
                "runners/verify",
                (headers::RUNNER_TOKEN, &req.token),
                req,
            )
            .await
            .context("Verifying runner... failed")?;
        match res.status() {
            StatusCode::OK | StatusCode::CREATED => {
                // Legacy GitLab answers a bare 200 without a body.
                let body = res.bytes().await.unwrap_or_default();
                Ok(Some(serde_json::from_slice(&body).unwrap_or_default()))
            }
            StatusCode::FORBIDDEN => Ok(None),
            s => anyhow::bail!("Verifying runner... failed: {s}"),
        }
    }

    /// `DELETE /runners` (or `/runners/managers` when `system_id` is set).
    pub async fn unregister_runner(&self, req: &UnregisterRunnerRequest) -> Result<bool> {
        let path = if req.system_id.is_empty() {
            "runners"
        } else {
            "runners/managers"
        };
        let res = self
            .send_json(
                endpoint::UNREGISTER_RUNNER,
                reqwest::Method::DELETE,
                path,
                (headers::RUNNER_TOKEN, &req.token),
                req,
            )
            .await
            .context("Unregistering runner... failed")?;
        match res.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(true),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(false),
            s => anyhow::bail!("Unregistering runner... failed: {s}"),
        }
    }

    /// `POST /jobs/request`.
    pub async fn request_job(&self, req: &JobRequest) -> RequestJobOutcome {
        let res = match self
            .send_json(
                endpoint::REQUEST_JOB,
                reqwest::Method::POST,
                "jobs/request",
                (headers::RUNNER_TOKEN, &req.token),
                req,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    { schema::ERROR } = %ErrChain(&e),
                    "{}",
                    msg::CHECKING_FOR_JOBS_CLIENT_ERROR
                );
                return RequestJobOutcome::Failed(ErrChain(&e).to_string());
            }
        };
        let correlation = res
            .headers()
            .get(headers::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        match res.status() {
            StatusCode::CREATED => {
                let body = match res.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(
                            { schema::ERROR } = %ErrChain(&e),
                            "{}",
                            msg::CHECKING_FOR_JOBS_CLIENT_ERROR
                        );
                        return RequestJobOutcome::Failed(e.to_string());
                    }
                };
                parse_job(&body, correlation)
            }
            StatusCode::NO_CONTENT => {
                tracing::debug!("{}", msg::CHECKING_FOR_JOBS_NO_CONTENT);
                RequestJobOutcome::NoJob(
                    res.headers()
                        .get(headers::LAST_UPDATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                )
            }
            StatusCode::FORBIDDEN => {
                tracing::error!(
                    { schema::STATUS } = "403 Forbidden",
                    { schema::CORRELATION_ID } = %correlation,
                    "{}",
                    msg::CHECKING_FOR_JOBS_FORBIDDEN
                );
                RequestJobOutcome::Forbidden
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(
                    { schema::CORRELATION_ID } = %correlation,
                    "{}",
                    msg::CHECKING_FOR_JOBS_UNAVAILABLE
                );
                RequestJobOutcome::Failed("503 Service Unavailable".into())
            }
            s => {
                tracing::warn!(
                    { schema::STATUS } = %s,
                    { schema::CORRELATION_ID } = %correlation,
                    "{}",
                    msg::CHECKING_FOR_JOBS_FAILED
                );
                RequestJobOutcome::Failed(s.to_string())
            }
        }
    }

    /// `PUT /jobs/:id`.
    pub async fn update_job(&self, id: u64, req: &UpdateJobRequest) -> UpdateOutcome {
        let res = match self
            .send_json(
                endpoint::UPDATE_JOB,
                reqwest::Method::PUT,
                &format!("jobs/{id}"),
                (headers::JOB_TOKEN, &req.token),
                req,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    { schema::JOB } = id,
                    { schema::ERROR } = %ErrChain(&e),
                    "{}",
                    msg::SUBMITTING_JOB_CLIENT_ERROR
                );
                return UpdateOutcome::Failed(ErrChain(&e).to_string());
            }
        };
        let job_status = header_str(res.headers(), headers::JOB_STATUS);
        let status = res.status();
        match status {
            StatusCode::OK => {
                tracing::debug!({ schema::JOB } = id, "{}", msg::SUBMITTING_JOB_OK);
                UpdateOutcome::Ok { job_status }
            }
            StatusCode::ACCEPTED => {
                tracing::debug!({ schema::JOB } = id, "{}", msg::SUBMITTING_JOB_ACCEPTED);
                UpdateOutcome::Accepted {
                    retry_after: parse_interval(res.headers()),
                }
            }
            StatusCode::PRECONDITION_FAILED => {
                tracing::warn!(
                    { schema::JOB } = id,
                    "{}",
                    msg::SUBMITTING_JOB_TRACE_VALIDATION_FAILED
                );
                UpdateOutcome::TraceValidationFailed
            }
            StatusCode::NOT_FOUND => {
                tracing::warn!({ schema::JOB } = id, "{}", msg::SUBMITTING_JOB_NOT_FOUND);
                UpdateOutcome::NotFound
            }
            StatusCode::FORBIDDEN => {
                tracing::error!({ schema::JOB } = id, "{}", msg::SUBMITTING_JOB_FORBIDDEN);
                UpdateOutcome::Forbidden
            }
            StatusCode::CONFLICT => {
                tracing::warn!({ schema::JOB } = id, "{}", msg::SUBMITTING_JOB_JOB_FAILED);
                UpdateOutcome::Conflict
            }
            s => {
                tracing::warn!(
                    { schema::JOB } = id,
                    { schema::STATUS } = %s,
                    "{}",
                    msg::SUBMITTING_JOB_FAILED
                );
                UpdateOutcome::Failed(s.to_string())
            }
        }
    }

    /// `PATCH /jobs/:id/trace` with `data` starting at `offset`.
    pub async fn patch_trace(
        &self,
        id: u64,
        job_token: &str,
        offset: u64,
        data: Vec<u8>,
    ) -> PatchOutcome {
        let started = Instant::now();
        let len = data.len() as u64;
        let res = self
            .http
            .patch(format!("{}/jobs/{id}/trace", self.base))
            .header(headers::JOB_TOKEN, job_token)
            .header(CONTENT_TYPE, "text/plain")
            .header(
                headers::CONTENT_RANGE,
                api::format_content_range(offset, len),
            )
            .header(headers::REQUEST_ID, Self::request_id())
            .body(data)
            .send()
            .await;
        self.observe(
            endpoint::PATCH_TRACE,
            "patch",
            res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
            started,
        );
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    { schema::JOB } = id,
                    { schema::ERROR } = %ErrChain(&e),
                    "{}",
                    msg::APPENDING_TRACE_CLIENT_ERROR
                );
                return PatchOutcome::Failed(ErrChain(&e).to_string());
            }
        };
        let h = res.headers();
        let job_status = header_str(h, headers::JOB_STATUS);
        let size = header_str(h, headers::RANGE).and_then(|r| api::parse_range_size(&r));
        let aborting = matches!(
            job_status.as_deref(),
            Some("canceled" | "canceling" | "failed")
        );
        match res.status() {
            StatusCode::ACCEPTED | StatusCode::OK if aborting => {
                tracing::warn!(
                    { schema::JOB } = id,
                    { schema::JOB_STATUS } = job_status.as_deref().unwrap_or(""),
                    "{}",
                    msg::APPENDING_TRACE_JOB_FAILED
                );
                PatchOutcome::Abort { job_status }
            }
            StatusCode::ACCEPTED | StatusCode::OK => {
                tracing::debug!({ schema::JOB } = id, "{}", msg::APPENDING_TRACE_OK);
                PatchOutcome::Ok {
                    size,
                    job_status,
                    interval: parse_interval(h),
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                tracing::warn!(
                    { schema::JOB } = id,
                    "{}",
                    msg::APPENDING_TRACE_RANGE_MISMATCH
                );
                PatchOutcome::RangeMismatch { size }
            }
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                tracing::warn!(
                    { schema::JOB } = id,
                    { schema::STATUS } = %res.status(),
                    "{}",
                    msg::APPENDING_TRACE_JOB_FAILED
                );
                PatchOutcome::Abort { job_status }
            }
            s => {
                tracing::warn!(
                    { schema::JOB } = id,
                    { schema::STATUS } = %s,
                    "{}",
                    msg::APPENDING_TRACE_FAILED
                );
                PatchOutcome::Failed(s.to_string())
            }
        }
    }
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// `X-GitLab-Trace-Update-Interval`, capped at 15 minutes as upstream does.
fn parse_interval(h: &HeaderMap) -> Option<Duration> {
    let v = header_str(h, headers::TRACE_UPDATE_INTERVAL)?;
    match v.trim().parse::<i64>() {
        Ok(s) if s > 0 => Some(Duration::from_secs((s as u64).min(15 * 60))),
        _ => {
            tracing::warn!({ schema::HEADER_VALUE } = %v, "{}", msg::TRACE_UPDATE_INTERVAL_INVALID);
            None
        }
    }
}

/// Parse a 201 body. A body that is not a valid job still yields its id and
/// token when they can be found, so the job can be failed properly.
pub fn parse_job(body: &[u8], correlation: String) -> RequestJobOutcome {
    match serde_json::from_slice::<JobResponse>(body) {
        Ok(job) if job.id != 0 && !job.token.is_empty() => {
            tracing::info!(
                { schema::JOB } = job.id,
                { schema::REPO_URL } = %job.project_web_url(),
                { schema::CORRELATION_ID } = %correlation,
                "{}",
                msg::CHECKING_FOR_JOBS_RECEIVED
            );
            RequestJobOutcome::Job(Box::new(job), correlation)
        }
        Ok(job) => RequestJobOutcome::Malformed {
            id: (job.id != 0).then_some(job.id),
            token: (!job.token.is_empty()).then_some(job.token),
            error: "job payload has no id or token".into(),
        },
        Err(e) => {
            let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
            let id = v
                .as_ref()
                .and_then(|v| v.get("id"))
                .and_then(|x| x.as_u64());
            let token = v
                .as_ref()
                .and_then(|v| v.get("token"))
                .and_then(|x| x.as_str())
                .map(str::to_owned);
            RequestJobOutcome::Malformed {
                id,
                token,
                error: format!("invalid job payload: {e}"),
            }
        }
    }
}

/// Display an error with its sources, `a: b: c`.
pub struct ErrChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_job_keeps_id_and_token() {
        let out = parse_job(
            br#"{"id": 7, "token": "t", "steps": "not a list"}"#,
            String::new(),
        );
        match out {
            RequestJobOutcome::Malformed { id, token, error } => {
                assert_eq!(id, Some(7));
                assert_eq!(token.as_deref(), Some("t"));
                assert!(error.contains("invalid job payload"), "{error}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_job(b"garbage", String::new()),
            RequestJobOutcome::Malformed {
                id: None,
                token: None,
                ..
            }
        ));
    }

    #[test]
    fn good_job_parses() {
        let out = parse_job(br#"{"id": 7, "token": "t", "steps": []}"#, "c".into());
        assert!(matches!(out, RequestJobOutcome::Job(j, _) if j.id == 7));
    }

    #[test]
    fn rejects_non_http_urls() {
        assert!(Client::new("ftp://x", None).is_err());
        assert!(Client::new("http://127.0.0.1:1/", None).is_ok());
    }
}
