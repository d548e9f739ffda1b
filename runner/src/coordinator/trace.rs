//! Streams a [`JobTrace`] to the coordinator with `PATCH /jobs/:id/trace`
//! (≤ 1 MiB per patch), follows the coordinator's idea of the stored size on
//! every reply (so a 416, a 5xx or a coordinator restart loses and duplicates
//! nothing), keeps the job alive, notices cancellation, and sends the final
//! `PUT /jobs/:id` with checksum and size.

use std::time::Duration;

use termgate::api::{JobState, JobTraceOutput, UpdateJobRequest, VersionInfo};
use termgate::logschema::{self as schema, msg};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::client::{Client, PatchOutcome, UpdateOutcome};
use crate::trace::JobTrace;

/// Largest body of one trace patch.
pub const MAX_PATCH: usize = 1024 * 1024;
/// Default update interval until the coordinator says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3);

/// How the job ended, for the final update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalState {
    pub state: JobState,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i32>,
}

pub struct TraceUploader {
    client: Client,
    job_id: u64,
    job_token: String,
    trace: JobTrace,
    info: Option<VersionInfo>,
    sent: u64,
    interval: Duration,
    /// Cancelled when the coordinator says the job is canceled/failed or gone.
    job_aborted: CancellationToken,
    /// The coordinator's `Job-Status` that caused the abort, if any.
    abort_status: Option<String>,
}

impl TraceUploader {
    pub fn new(
        client: Client,
        job_id: u64,
        job_token: String,
        trace: JobTrace,
        job_aborted: CancellationToken,
    ) -> Self {
        TraceUploader {
            client,
            job_id,
            job_token,
            trace,
            info: None,
            sent: 0,
            interval: DEFAULT_INTERVAL,
            job_aborted,
            abort_status: None,
        }
    }

    pub fn with_info(mut self, info: VersionInfo) -> Self {
        self.info = Some(info);
        self
    }

    /// Override the starting update interval (tests).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn abort_status(&self) -> Option<&str> {
        self.abort_status.as_deref()
    }

    /// Upload while the job runs, until `finished` is cancelled. Then the
    /// caller runs [`TraceUploader::finish`].
    pub async fn run(&mut self, finished: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut idle_since = tokio::time::Instant::now();
        loop {
            if finished.is_cancelled() || self.job_aborted.is_cancelled() {
                return;
            }
            let len = self.trace.len();
            if len > self.sent {
                match self.send_once().await {
                    Step::Progress => {
                        backoff.reset();
                        idle_since = tokio::time::Instant::now();
                    }
                    Step::Retry => {
                        let d = backoff.next_delay();
                        tokio::select! {
                            _ = tokio::time::sleep(d) => {}
                            _ = finished.cancelled() => return,
                        }
                        continue;
                    }
                    Step::Aborted => return,
                }
                // Pace patches at the update interval; drain big backlogs at once.
                if self.trace.len().saturating_sub(self.sent) >= MAX_PATCH as u64 {
                    continue;
                }
            } else if idle_since.elapsed() >= self.interval {
                // Nothing to send: touch the job so a cancel is noticed.
                self.touch().await;
                idle_since = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = finished.cancelled() => return,
                _ = self.job_aborted.cancelled() => return,
            }
        }
    }

    /// Send one patch from `sent`. Updates `sent` from the reply.
    async fn send_once(&mut self) -> Step {
        let data = self.trace.read_at(self.sent, MAX_PATCH);
        if data.is_empty() {
            return Step::Progress;
        }
        let len = data.len() as u64;
        let local = self.trace.len();
        match self
            .client
            .patch_trace(self.job_id, &self.job_token, self.sent, data)
            .await
        {
            PatchOutcome::Ok { size, interval, .. } => {
                self.sent = size.unwrap_or(self.sent + len).min(local);
                if let Some(i) = interval {
                    self.interval = i;
                }
                Step::Progress
            }
            PatchOutcome::RangeMismatch { size } => {
                // The coordinator tells us what it has; resume from there.
                match size {
                    Some(s) => self.sent = s.min(local),
                    None => self.sent = 0,
                }
                Step::Progress
            }
            PatchOutcome::Abort { job_status } => {
                self.abort(job_status);
                Step::Aborted
            }
            PatchOutcome::Failed(_) => Step::Retry,
        }
    }

    fn abort(&mut self, job_status: Option<String>) {
        self.abort_status = Some(job_status.unwrap_or_else(|| "failed".to_string()));
        self.job_aborted.cancel();
    }

    async fn touch(&mut self) {
        let req = UpdateJobRequest {
            info: self.info.clone(),
            token: self.job_token.clone(),
            state: JobState::Running,
            failure_reason: None,
            checksum: None,
            output: JobTraceOutput {
                checksum: self.trace.checksum(),
                bytesize: self.trace.len(),
            },
            exit_code: None,
        };
        match self.client.update_job(self.job_id, &req).await {
            UpdateOutcome::Ok { job_status } => {
                if matches!(
                    job_status.as_deref(),
                    Some("canceled" | "canceling" | "failed")
                ) {
                    self.abort(job_status);
                }
            }
            UpdateOutcome::NotFound | UpdateOutcome::Forbidden => self.abort(None),
            _ => {}
        }
    }

    /// Flush the rest of the trace and send the final state. Retries through
    /// coordinator outages for up to `deadline`; returns whether the final
    /// update was accepted.
    pub async fn finish(
        &mut self,
        fin: &FinalState,
        deadline: Duration,
        force: CancellationToken,
    ) -> bool {
        self.trace.close();
        let until = tokio::time::Instant::now() + deadline;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut resets = 0;
        loop {
            if tokio::time::Instant::now() >= until || force.is_cancelled() {
                tracing::error!(
                    { schema::JOB } = self.job_id,
                    { schema::SENT } = self.sent,
                    { schema::SIZE } = self.trace.len(),
                    "{}",
                    msg::FINAL_UPDATE_GAVE_UP
                );
                return false;
            }
            // 1. everything written must be stored first.
            if self.abort_status.is_none() {
                while self.sent < self.trace.len() {
                    match self.send_once().await {
                        Step::Progress => backoff.reset(),
                        Step::Aborted => break,
                        Step::Retry => {
                            let d = backoff.next_delay();
                            tokio::select! {
                                _ = tokio::time::sleep(d) => {}
                                _ = force.cancelled() => return false,
                            }
                            if tokio::time::Instant::now() >= until {
                                break;
                            }
                        }
                    }
                }
            }
            // 2. the final state.
            let req = UpdateJobRequest {
                info: self.info.clone(),
                token: self.job_token.clone(),
                state: fin.state,
                failure_reason: fin.failure_reason.clone(),
                checksum: Some(self.trace.checksum()),
                output: JobTraceOutput {
                    checksum: self.trace.checksum(),
                    bytesize: self.trace.len(),
                },
                exit_code: fin.exit_code,
            };
            match self.client.update_job(self.job_id, &req).await {
                UpdateOutcome::Ok { .. } => {
                    tracing::info!({ schema::JOB } = self.job_id, "{}", msg::UPDATING_JOB_OK);
                    return true;
                }
                UpdateOutcome::Accepted { retry_after } => {
                    tokio::time::sleep(
                        retry_after
                            .unwrap_or(Duration::from_secs(1))
                            .min(Duration::from_secs(5)),
                    )
                    .await;
                }
                UpdateOutcome::TraceValidationFailed if resets < 3 => {
                    resets += 1;
                    self.sent = 0;
                    self.abort_status = None;
                }
                UpdateOutcome::TraceValidationFailed
                | UpdateOutcome::NotFound
                | UpdateOutcome::Forbidden
                | UpdateOutcome::Conflict => return false,
                UpdateOutcome::Failed(_) => {
                    let d = backoff.next_delay();
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = force.cancelled() => return false,
                    }
                }
            }
        }
    }
}

enum Step {
    Progress,
    Retry,
    Aborted,
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{patch, put};
    use axum::Router;

    use super::*;

    /// A coordinator that stores the trace by Content-Range, and fails on
    /// purpose: every 3rd patch gets a 502, and once it "forgets" its last
    /// 10 bytes (answering the next patch with 416 and a smaller Range).
    #[derive(Default)]
    struct Fake {
        stored: Vec<u8>,
        patches: usize,
        forgot: bool,
        final_state: Option<UpdateJobRequest>,
    }

    type Shared = Arc<Mutex<Fake>>;

    async fn patch_trace(
        State(s): State<Shared>,
        Path(_id): Path<u64>,
        h: HeaderMap,
        body: axum::body::Bytes,
    ) -> Response {
        let mut f = s.lock().unwrap();
        f.patches += 1;
        if f.patches % 3 == 0 {
            return StatusCode::BAD_GATEWAY.into_response();
        }
        if f.patches == 4 && !f.forgot && f.stored.len() > 10 {
            f.forgot = true;
            let n = f.stored.len() - 10;
            f.stored.truncate(n);
        }
        let range = h
            .get("Content-Range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (start, _) = termgate::api::parse_content_range(range).unwrap();
        if start as usize != f.stored.len() {
            let size = f.stored.len();
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [("Range", format!("0-{size}"))],
            )
                .into_response();
        }
        f.stored.extend_from_slice(&body);
        let size = f.stored.len();
        (
            StatusCode::ACCEPTED,
            [
                ("Range", format!("0-{size}")),
                ("Job-Status", "running".to_string()),
            ],
        )
            .into_response()
    }

    async fn update(
        State(s): State<Shared>,
        Path(_id): Path<u64>,
        axum::Json(req): axum::Json<UpdateJobRequest>,
    ) -> Response {
        let mut f = s.lock().unwrap();
        if req.state != JobState::Running {
            let crc = termgate::api::trace_checksum(crc32fast::hash(&f.stored));
            if req.output.checksum != crc || req.output.bytesize != f.stored.len() as u64 {
                return StatusCode::PRECONDITION_FAILED.into_response();
            }
            f.final_state = Some(req);
        }
        StatusCode::OK.into_response()
    }

    #[tokio::test]
    async fn survives_5xx_and_416_without_losing_or_duplicating_a_byte() {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/api/v4/jobs/{id}/trace", patch(patch_trace))
            .route("/api/v4/jobs/{id}", put(update))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let client = Client::new(&format!("http://{addr}"), None).unwrap();
        let trace = JobTrace::new(vec![], 64 << 20);
        let mut up = TraceUploader::new(
            client,
            1,
            "tok".into(),
            trace.clone(),
            CancellationToken::new(),
        )
        .with_interval(Duration::from_millis(20));
        let done = CancellationToken::new();
        let writer = {
            let trace = trace.clone();
            let done = done.clone();
            tokio::spawn(async move {
                for i in 0..300u32 {
                    trace.write(
                        format!("line {i:05} {}\n", "x".repeat((i % 7) as usize * 300)).as_bytes(),
                    );
                    if i % 50 == 0 {
                        // A big burst: more than one 1 MiB patch.
                        trace.write(&vec![b'b'; 1_500_000]);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                done.cancel();
            })
        };
        up.run(done.clone()).await;
        writer.await.unwrap();
        let fin = FinalState {
            state: JobState::Success,
            failure_reason: None,
            exit_code: Some(0),
        };
        assert!(
            up.finish(&fin, Duration::from_secs(30), CancellationToken::new())
                .await
        );
        let f = state.lock().unwrap();
        assert!(f.forgot, "the 416 path was exercised");
        assert!(f.patches >= 6, "{} patches", f.patches);
        assert_eq!(f.stored.len(), trace.contents().len());
        assert!(f.stored == trace.contents(), "stored trace differs");
        assert_eq!(f.final_state.as_ref().unwrap().output.bytesize, trace.len());
    }
}
