//! Streams a [`JobTrace`] to the coordinator with `PATCH /jobs/:id/trace`
//! (≤ 1 MiB per patch), follows the coordinator's idea of the stored size on
//! every reply (so a 416, a 5xx or a coordinator restart loses and duplicates
//! nothing), keeps the job alive, notices cancellation, and sends the final
//! `PUT /jobs/:id` with checksum and size.

use std::time::Duration;

use termgate::api::{JobState, JobTraceOutput, UpdateJobRequest, VersionInfo};
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
                    job = self.job_id,
                    sent = self.sent,
                    size = self.trace.len(),
                    "Job final update failed: gave up"
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
                    tracing::info!(job = self.job_id, "Updating job... ok");
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
