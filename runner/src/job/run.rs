//! One job, start to finish: acknowledge, prepare, steps, final update.

mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use termgate::api::{failure_reason, JobResponse, JobState, VersionInfo};
use termgate::logschema::{self as schema, msg};
use termgate::metrics::{close_reason, executor_stage, stage};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::outcome::Outcome;
use crate::builds::{BuildInfo, Builds};
use crate::config::RunnerConfig;
use crate::coordinator::client::{Client, UpdateOutcome};
use crate::coordinator::trace::{FinalState, TraceUploader};
use crate::executor::{self, JobContext};
use crate::metrics::Metrics;
use crate::session::{Session, SessionRegistry};
use crate::trace::JobTrace;
use steps::Steps;

/// Default job timeout when GitLab sends none (1 h, as GitLab's default).
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the final update keeps retrying through coordinator outages.
pub const FINAL_UPDATE_DEADLINE: Duration = Duration::from_secs(300);

/// Upstream's `mode` label value for jobs run by the runner itself (not by
/// native step-runner integration).
pub const JOB_MODE: &str = "legacy";

/// What every job needs from the process.
#[derive(Clone)]
pub struct JobEnv {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub builds: Builds,
    pub system_id: String,
    pub info: VersionInfo,
    /// Trace update interval before the coordinator sets one.
    pub update_interval: Duration,
    /// `[session_server] session_timeout`: how long a connected terminal
    /// holds the job open after its script.
    pub session_timeout: Duration,
}

/// One job's context: what every phase of the run needs.
pub struct JobRun {
    pub env: JobEnv,
    pub runner: Arc<RunnerConfig>,
    /// Short token of the runner (`runner` label and log field).
    pub runner_short: String,
    pub job: Arc<JobResponse>,
    /// Slot index (`CI_CONCURRENT_ID`).
    pub slot: usize,
    /// Aborts the job (forceful shutdown).
    pub force: CancellationToken,
    /// The job's terminal session, when the session server runs.
    pub session: Option<Arc<Session>>,
}

/// The trace uploader while the job runs.
struct Upload {
    /// Fired by the uploader when the coordinator cancels the job.
    aborted: CancellationToken,
    /// Fired when the job is over: the uploader stops patching.
    done: CancellationToken,
    task: JoinHandle<TraceUploader>,
}

/// Run `run` in the job's span; then its session is removed from `registry`
/// (its terminals close and its URL stops resolving).
pub async fn run_job(run: JobRun, registry: Option<Arc<SessionRegistry>>) {
    let span = tracing::info_span!(
        "job",
        { schema::JOB } = run.job.id,
        { schema::PROJECT } = run.job.job_info.project_id,
        { schema::RUNNER } = %run.runner_short,
        { schema::RUNNER_NAME } = %run.runner.name,
    );
    let id = run.session.as_ref().map(|s| s.id.clone());
    run.run().instrument(span).await;
    if let (Some(reg), Some(id)) = (registry, id) {
        reg.remove(&id, close_reason::JOB_FINISHED);
    }
}

impl JobRun {
    async fn run(self) {
        let started = Instant::now();
        if !acknowledge(&self.env, &self.job).await {
            return;
        }
        self.register_build(started);
        let trace = self.new_trace();
        let upload = self.start_upload(&trace);
        self.write_header(&trace);
        let outcome = self.execute(&trace, &upload.aborted).await;
        self.finish(outcome, &trace, upload, started).await;
    }

    fn id(&self) -> u64 {
        self.job.id
    }

    /// The job enters `/debug/jobs/list` and the started-jobs counter.
    fn register_build(&self, started: Instant) {
        self.env.builds.insert(BuildInfo {
            id: self.id(),
            runner: self.runner_short.clone(),
            runner_name: self.runner.name.clone(),
            system_id: self.env.system_id.clone(),
            project_url: self.job.project_web_url(),
            state: "running",
            stage: stage::PREPARE_EXECUTOR.into(),
            executor_stage: executor_stage::PREPARE.into(),
            started,
        });
        self.env
            .metrics
            .job_started(&self.runner_short, &self.runner.name, &self.env.system_id);
    }

    /// The job log, masking the job's masked variables and its token.
    fn new_trace(&self) -> JobTrace {
        let mut secrets: Vec<String> = self
            .job
            .variables
            .iter()
            .filter(|v| v.is_masked())
            .map(|v| v.value.clone())
            .collect();
        secrets.push(self.job.token.clone());
        let limit = (self.runner.output_limit.max(1) as usize).saturating_mul(1024);
        JobTrace::new(secrets, limit)
    }

    fn start_upload(&self, trace: &JobTrace) -> Upload {
        let aborted = CancellationToken::new();
        let done = CancellationToken::new();
        let mut uploader = TraceUploader::new(
            self.env.client.clone(),
            self.id(),
            self.job.token.clone(),
            trace.clone(),
            aborted.clone(),
        )
        .with_info(self.env.info.clone())
        .with_interval(self.env.update_interval);
        let task = {
            let done = done.clone();
            tokio::spawn(async move {
                uploader.run(done).await;
                uploader
            })
        };
        Upload {
            aborted,
            done,
            task,
        }
    }

    /// Upstream's first two job-log lines.
    fn write_header(&self, trace: &JobTrace) {
        trace.line(&format!(
            "Running with termgate-runner {} (rust)",
            env!("CARGO_PKG_VERSION")
        ));
        trace.line(&format!(
            "  on {} {}, system ID: {}",
            self.runner.name, self.runner_short, self.env.system_id
        ));
    }

    /// Run the job in the executor. It stops on cancel from the coordinator
    /// (`aborted`) or forceful shutdown; either closes its terminal at once.
    async fn execute(&self, trace: &JobTrace, aborted: &CancellationToken) -> Outcome {
        let cancel = CancellationToken::new();
        let watcher = {
            let cancel = cancel.clone();
            let aborted = aborted.clone();
            let force = self.force.clone();
            let session = self.session.clone();
            tokio::spawn(async move {
                let reason = tokio::select! {
                    _ = aborted.cancelled() => close_reason::JOB_CANCELLED,
                    _ = force.cancelled() => close_reason::RUNNER_SHUTDOWN,
                };
                if let Some(s) = &session {
                    s.close(reason);
                }
                cancel.cancel();
            })
        };
        let ctx = self.context(trace);
        let steps = Steps {
            run: self,
            ctx: &ctx,
            cancel: &cancel,
            aborted,
        };
        let outcome = steps.execute().await;
        watcher.abort();
        outcome
    }

    /// What the executor sees of the job; its stage hook updates the build.
    fn context(&self, trace: &JobTrace) -> JobContext {
        let id = self.id();
        let builds = self.env.builds.clone();
        JobContext {
            job: self.job.clone(),
            runner: self.runner.clone(),
            runner_short: self.runner_short.clone(),
            slot: self.slot,
            trace: trace.clone(),
            stage: executor::StageHook(Some(Arc::new(move |s: &'static str| {
                builds.update(id, |b| b.executor_stage = s.into());
            }))),
        }
    }

    /// Tell the job log, the build list, the coordinator (final update with
    /// the trace flushed), the metrics and the process log how the job ended.
    async fn finish(&self, outcome: Outcome, trace: &JobTrace, upload: Upload, started: Instant) {
        match outcome.error_text() {
            None => trace.green("Job succeeded"),
            Some(t) if outcome.is_system() => {
                trace.red(&format!("ERROR: Job failed (system failure): {t}"))
            }
            Some(t) => trace.red(&format!("ERROR: Job failed: {t}")),
        }
        self.env.builds.update(self.id(), |b| {
            b.executor_stage = executor_stage::FINISH.into();
            b.state = outcome.build_state();
        });
        upload.done.cancel();
        let mut uploader = match upload.task.await {
            Ok(u) => u,
            Err(e) => {
                tracing::error!({ schema::ERROR } = %e, "{}", msg::TRACE_UPLOADER_FAILED);
                self.env.builds.remove(self.id());
                return;
            }
        };
        let fin = outcome.final_state(&self.job.features.failure_reasons);
        uploader
            .finish(&fin, FINAL_UPDATE_DEADLINE, CancellationToken::new())
            .await;
        let duration = started.elapsed();
        self.count_finished(&fin, duration, matches!(outcome, Outcome::Canceled));
        self.env.builds.remove(self.id());
        log_outcome(&outcome, &fin, duration);
    }

    fn count_finished(&self, fin: &FinalState, duration: Duration, canceled: bool) {
        self.env.metrics.job_finished(
            &self.runner_short,
            &self.runner.name,
            &self.env.system_id,
            JOB_MODE,
            duration,
            if fin.state == JobState::Success {
                None
            } else if canceled {
                Some(failure_reason::JOB_CANCELED)
            } else {
                Some(
                    fin.failure_reason
                        .as_deref()
                        .unwrap_or(failure_reason::UNKNOWN_FAILURE),
                )
            },
        );
    }
}

/// The process log's last line of a job.
fn log_outcome(outcome: &Outcome, fin: &FinalState, duration: Duration) {
    let duration_s = duration.as_secs_f64();
    let reason = fin.failure_reason.as_deref();
    match outcome.error_text() {
        None => tracing::info!(
            { schema::DURATION_S } = duration_s,
            { schema::JOB_STATUS } = "success",
            "{}",
            msg::JOB_SUCCEEDED
        ),
        Some(t) if outcome.is_system() => tracing::error!(
            { schema::DURATION_S } = duration_s,
            { schema::FAILURE_REASON } = reason,
            "{}{t}",
            msg::JOB_FAILED_SYSTEM_PREFIX
        ),
        Some(t) => tracing::warn!(
            { schema::DURATION_S } = duration_s,
            { schema::FAILURE_REASON } = reason,
            { schema::EXIT_CODE } = fin.exit_code,
            "{}{t}",
            msg::JOB_FAILED_PREFIX
        ),
    }
}

/// `PUT state=running` right after the job arrives (two-phase commit).
async fn acknowledge(env: &JobEnv, job: &JobResponse) -> bool {
    let req = termgate::api::UpdateJobRequest {
        info: Some(env.info.clone()),
        token: job.token.clone(),
        state: JobState::Running,
        failure_reason: None,
        checksum: None,
        output: Default::default(),
        exit_code: None,
    };
    let mut backoff = crate::coordinator::backoff::Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(5),
    );
    for _ in 0..5 {
        match env.client.update_job(job.id, &req).await {
            UpdateOutcome::Ok { .. } | UpdateOutcome::Accepted { .. } => return true,
            UpdateOutcome::Failed(_) => tokio::time::sleep(backoff.next_delay()).await,
            other => {
                tracing::warn!({ schema::OUTCOME } = ?other, "{}", msg::JOB_NOT_ACKNOWLEDGED);
                return false;
            }
        }
    }
    false
}

/// GitLab's shortest masked variable value. Shorter ones (which GitLab
/// refuses, a fake coordinator may not) are masked in the job log only: a
/// value such as `1` would mask half of every runner log line.
pub const MIN_PROCESS_WIDE_MASKED_LEN: usize = 8;

/// What the runner's own log and its Sentry reports mask while the job
/// runs (`crate::logging::redact_while`): the job's token, its terminal
/// session's token and its masked variables.
pub fn process_secrets(job: &JobResponse, session_token: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = job
        .variables
        .iter()
        .filter(|v| v.is_masked() && v.value.len() >= MIN_PROCESS_WIDE_MASKED_LEN)
        .map(|v| v.value.clone())
        .collect();
    out.push(job.token.clone());
    out.extend(session_token.map(str::to_owned));
    out
}

/// A job whose payload could not be used: fail it properly when possible.
pub async fn fail_malformed(env: &JobEnv, id: Option<u64>, token: Option<String>, error: &str) {
    // The error quotes the payload, which may quote the token.
    let _secrets = crate::logging::redact_while(token.clone());
    tracing::error!(
        { schema::JOB } = id.unwrap_or(0),
        { schema::FAILURE_REASON } = "runner_system_failure",
        "{}{error}",
        msg::JOB_FAILED_SYSTEM_PREFIX
    );
    let (Some(id), Some(token)) = (id, token) else {
        return;
    };
    let stub = JobResponse {
        id,
        token: token.clone(),
        ..Default::default()
    };
    if !acknowledge(env, &stub).await {
        return;
    }
    let trace = JobTrace::new(vec![token.clone()], 1 << 20);
    trace.red(&format!("ERROR: Job failed (system failure): {error}"));
    let mut up = TraceUploader::new(
        env.client.clone(),
        id,
        token,
        trace,
        CancellationToken::new(),
    )
    .with_info(env.info.clone());
    let fin = FinalState {
        state: JobState::Failed,
        failure_reason: Some(failure_reason::RUNNER_SYSTEM_FAILURE.into()),
        exit_code: None,
    };
    up.finish(&fin, Duration::from_secs(30), CancellationToken::new())
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_secrets_are_the_tokens_and_long_masked_values() {
        let job: JobResponse = serde_json::from_value(serde_json::json!({
            "id": 7,
            "token": "glcbt-job-token-0123",
            "variables": [
                {"key": "LONG", "value": "masked-and-long", "masked": true},
                {"key": "SHORT", "value": "1234567", "masked": true},
                {"key": "PLAIN", "value": "not-masked-value", "masked": false}
            ]
        }))
        .unwrap();
        assert_eq!(
            process_secrets(&job, Some("session-token-hex")),
            [
                "masked-and-long",
                "glcbt-job-token-0123",
                "session-token-hex"
            ]
        );
        assert_eq!(
            process_secrets(&job, None),
            ["masked-and-long", "glcbt-job-token-0123"]
        );
    }
}
