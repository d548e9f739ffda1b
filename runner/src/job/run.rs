//! One job, start to finish: acknowledge, prepare, steps, final update.

use std::sync::Arc;
use std::time::{Duration, Instant};

use termgate::api::{failure_reason, JobResponse, JobState, StepWhen, VersionInfo};
use termgate::metrics::{executor_stage, stage};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::builds::{BuildInfo, Builds};
use crate::config::RunnerConfig;
use crate::coordinator::client::{Client, UpdateOutcome};
use crate::coordinator::trace::{FinalState, TraceUploader};
use crate::executor::{self, ExecError, JobContext, StepResult, StepScript};
use crate::metrics::Metrics;
use crate::session::{Session, SessionRegistry};
use crate::trace::JobTrace;
use termgate::metrics::close_reason;

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

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Script failed: exit code.
    ScriptFailure(i32),
    Timeout(Duration),
    /// The coordinator canceled it.
    Canceled,
    /// Runner shutdown aborted it.
    Aborted,
    System(ExecError),
}

impl Outcome {
    fn final_state(&self, supported: &[String]) -> FinalState {
        let failed = |reason: &str, exit_code| FinalState {
            state: JobState::Failed,
            failure_reason: Some(failure_reason::compatible(reason, supported).to_string()),
            exit_code,
        };
        match self {
            Outcome::Success => FinalState {
                state: JobState::Success,
                failure_reason: None,
                exit_code: Some(0),
            },
            Outcome::ScriptFailure(code) => failed(failure_reason::SCRIPT_FAILURE, Some(*code)),
            Outcome::Timeout(_) => failed(failure_reason::JOB_EXECUTION_TIMEOUT, None),
            Outcome::Canceled => FinalState {
                state: JobState::Failed,
                failure_reason: None,
                exit_code: None,
            },
            Outcome::Aborted => failed(failure_reason::RUNNER_SYSTEM_FAILURE, None),
            Outcome::System(e) => failed(e.reason, None),
        }
    }

    /// The text after `Job failed: ` (upstream wording).
    fn error_text(&self) -> Option<String> {
        match self {
            Outcome::Success => None,
            Outcome::ScriptFailure(code) => Some(format!("exit code {code}")),
            Outcome::Timeout(d) => Some(format!(
                "execution took longer than {} seconds",
                crate::metrics::go_duration(*d)
            )),
            Outcome::Canceled => Some("canceled".into()),
            Outcome::Aborted => Some("aborted: terminated".into()),
            Outcome::System(e) => Some(e.message.clone()),
        }
    }

    fn is_system(&self) -> bool {
        matches!(self, Outcome::System(_) | Outcome::Aborted)
    }
}

/// Run `job` for `runner` in slot `slot`. `force` aborts it (forceful shutdown).
pub async fn run_job(
    env: JobEnv,
    runner: Arc<RunnerConfig>,
    runner_short: String,
    job: JobResponse,
    slot: usize,
    force: CancellationToken,
    session: Option<(Arc<SessionRegistry>, Arc<Session>)>,
) {
    let span = tracing::info_span!(
        "job",
        job = job.id,
        project = job.job_info.project_id,
        runner = %runner_short,
        runner_name = %runner.name,
    );
    let registry = session.as_ref().map(|(r, _)| r.clone());
    let session = session.map(|(_, s)| s);
    let id = session.as_ref().map(|s| s.id.clone());
    run_job_inner(env, runner, runner_short, job, slot, force, session.clone())
        .instrument(span)
        .await;
    // The job is over: its terminals close and its URL stops resolving.
    if let (Some(reg), Some(id)) = (registry, id) {
        reg.remove(&id, close_reason::JOB_FINISHED);
    }
}

async fn run_job_inner(
    env: JobEnv,
    runner: Arc<RunnerConfig>,
    runner_short: String,
    job: JobResponse,
    slot: usize,
    force: CancellationToken,
    session: Option<Arc<Session>>,
) {
    let started = Instant::now();
    let job = Arc::new(job);
    let id = job.id;

    if !acknowledge(&env, &job).await {
        return;
    }

    env.builds.insert(BuildInfo {
        id,
        runner: runner_short.clone(),
        runner_name: runner.name.clone(),
        system_id: env.system_id.clone(),
        project_url: job.project_web_url(),
        state: "running",
        stage: stage::PREPARE_EXECUTOR.into(),
        executor_stage: executor_stage::PREPARE.into(),
        started,
    });
    env.metrics
        .job_started(&runner_short, &runner.name, &env.system_id);

    let mut secrets: Vec<String> = job
        .variables
        .iter()
        .filter(|v| v.is_masked())
        .map(|v| v.value.clone())
        .collect();
    secrets.push(job.token.clone());
    let limit = (runner.output_limit.max(1) as usize).saturating_mul(1024);
    let trace = JobTrace::new(secrets, limit);

    let aborted = CancellationToken::new();
    let uploader_done = CancellationToken::new();
    let mut uploader = TraceUploader::new(
        env.client.clone(),
        id,
        job.token.clone(),
        trace.clone(),
        aborted.clone(),
    )
    .with_info(env.info.clone())
    .with_interval(env.update_interval);
    let upload_task = {
        let done = uploader_done.clone();
        tokio::spawn(async move {
            uploader.run(done).await;
            uploader
        })
    };

    trace.line(&format!(
        "Running with termgate-runner {} (rust)",
        env!("CARGO_PKG_VERSION")
    ));
    trace.line(&format!(
        "  on {} {}, system ID: {}",
        runner.name, runner_short, env.system_id
    ));

    // The job stops on cancel from the coordinator or forceful shutdown.
    let cancel = CancellationToken::new();
    let watcher = {
        let cancel = cancel.clone();
        let aborted = aborted.clone();
        let force = force.clone();
        let session = session.clone();
        tokio::spawn(async move {
            // A cancelled job's terminal closes at once (upstream kept it).
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

    let ctx = JobContext {
        job: job.clone(),
        runner: runner.clone(),
        runner_short: runner_short.clone(),
        slot,
        trace: trace.clone(),
        stage: {
            let builds = env.builds.clone();
            executor::StageHook(Some(Arc::new(move |s: &'static str| {
                builds.update(id, |b| b.executor_stage = s.into());
            })))
        },
    };
    let outcome = execute(&env, &ctx, &cancel, &force, &aborted, session.as_deref()).await;
    watcher.abort();

    match outcome.error_text() {
        None => trace.green("Job succeeded"),
        Some(t) if outcome.is_system() => {
            trace.red(&format!("ERROR: Job failed (system failure): {t}"))
        }
        Some(t) => trace.red(&format!("ERROR: Job failed: {t}")),
    }

    env.builds.update(id, |b| {
        b.executor_stage = executor_stage::FINISH.into();
        b.state = match &outcome {
            Outcome::Success => "success",
            Outcome::Timeout(_) => "timedout",
            Outcome::Canceled => "canceled",
            _ => "failed",
        };
    });

    uploader_done.cancel();
    let mut uploader = match upload_task.await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "trace uploader task failed");
            env.builds.remove(id);
            return;
        }
    };
    let fin = outcome.final_state(&job.features.failure_reasons);
    uploader
        .finish(&fin, FINAL_UPDATE_DEADLINE, CancellationToken::new())
        .await;

    let duration = started.elapsed();
    let reason = fin.failure_reason.clone();
    env.metrics.job_finished(
        &runner_short,
        &runner.name,
        &env.system_id,
        JOB_MODE,
        duration,
        if fin.state == JobState::Success {
            None
        } else {
            Some(reason.as_deref().unwrap_or("unknown_failure"))
        },
    );
    env.builds.remove(id);

    let duration_s = duration.as_secs_f64();
    match outcome.error_text() {
        None => tracing::info!(duration_s, job_status = "success", "Job succeeded"),
        Some(t) if outcome.is_system() => tracing::error!(
            duration_s,
            failure_reason = reason.as_deref(),
            "Job failed (system failure): {t}"
        ),
        Some(t) => tracing::warn!(
            duration_s,
            failure_reason = reason.as_deref(),
            exit_code = fin.exit_code,
            "Job failed: {t}"
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
                tracing::warn!(outcome = ?other, "Job was not acknowledged by the coordinator, dropping it");
                return false;
            }
        }
    }
    false
}

/// Prepare, run the steps, clean up.
async fn execute(
    env: &JobEnv,
    ctx: &JobContext,
    cancel: &CancellationToken,
    force: &CancellationToken,
    aborted: &CancellationToken,
    session: Option<&Session>,
) -> Outcome {
    let id = ctx.job.id;
    let mut exec = match executor::for_runner(&ctx.runner) {
        Ok(e) => e,
        Err(e) => return Outcome::System(e),
    };
    if let Err(e) = exec.prepare(ctx).await {
        exec.cleanup(ctx).await;
        return Outcome::System(e);
    }
    if let (Some(s), Some(t)) = (session, exec.terminal()) {
        s.set_terminal(t);
    }
    let job_timeout = ctx
        .job
        .timeout_secs()
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_JOB_TIMEOUT);
    let deadline = Instant::now() + job_timeout;

    let mut outcome = Outcome::Success;
    for step in &ctx.job.steps {
        let failed = outcome != Outcome::Success;
        let stop = matches!(
            outcome,
            Outcome::Canceled | Outcome::Aborted | Outcome::Timeout(_)
        );
        let run = match step.when {
            StepWhen::Always => !stop || matches!(outcome, Outcome::Timeout(_)),
            StepWhen::OnSuccess => !failed,
            StepWhen::OnFailure => failed && !stop,
        };
        if !run || step.script.is_empty() {
            continue;
        }
        let stage_name = if step.name == "after_script" {
            stage::AFTER_SCRIPT.to_string()
        } else {
            format!("step_{}", step.name)
        };
        env.builds.update(id, |b| {
            b.stage = stage_name.clone();
            b.executor_stage = if ctx.runner.executor == "docker" {
                executor_stage::DOCKER_RUN.into()
            } else {
                executor_stage::SHELL_RUN.into()
            };
        });
        if step.name == "after_script" {
            ctx.trace.green("Running after_script");
        } else {
            ctx.trace.green(&format!(
                "Executing \"{stage_name}\" stage of the job script"
            ));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let step_timeout = step
            .timeout
            .map(Duration::from_secs)
            .filter(|d| !d.is_zero())
            .unwrap_or(remaining);
        // after_script runs even after a timeout, with its own budget.
        let timeout = if step.name == "after_script" {
            step_timeout.min(Duration::from_secs(300))
        } else {
            step_timeout.min(remaining)
        };
        let timed_out_job = timeout == remaining && step.name != "after_script";
        let script = StepScript {
            name: step.name.clone(),
            lines: step.script.clone(),
            timeout,
        };
        // after_script must not be killed by the job's own failure, only by
        // cancel/shutdown.
        let result = exec.run_step(ctx, &script, cancel).await;
        let this = match result {
            Ok(StepResult::Exited(0)) => Outcome::Success,
            Ok(StepResult::Exited(code)) => Outcome::ScriptFailure(code),
            Ok(StepResult::TimedOut) => {
                Outcome::Timeout(if timed_out_job { job_timeout } else { timeout })
            }
            Ok(StepResult::Cancelled) if force.is_cancelled() && !aborted.is_cancelled() => {
                Outcome::Aborted
            }
            Ok(StepResult::Cancelled) => Outcome::Canceled,
            Err(e) => Outcome::System(e),
        };
        if step.name == "after_script" {
            if let Outcome::ScriptFailure(code) = this {
                ctx.trace.warning(&format!(
                    "after_script failed, but job will continue unaffected: exit code {code}"
                ));
            }
            if matches!(this, Outcome::Canceled | Outcome::Aborted) && outcome == Outcome::Success {
                outcome = this;
            }
            continue;
        }
        if this != Outcome::Success
            && !(step.allow_failure && matches!(this, Outcome::ScriptFailure(_)))
            && outcome == Outcome::Success
        {
            outcome = this;
        }
    }
    if let Some(s) = session {
        if !cancel.is_cancelled() {
            env.builds
                .update(id, |b| b.stage = stage::TERMINAL_HOLD.into());
            let left = deadline.saturating_duration_since(Instant::now());
            super::hold::hold_for_terminal(
                s,
                &ctx.trace,
                env.session_timeout.min(left),
                cancel,
                force,
            )
            .await;
        }
    }
    env.builds.update(id, |b| {
        b.executor_stage = executor_stage::CLEANUP.into();
        b.stage = stage::CLEANUP_FILE_VARIABLES.into();
    });
    exec.cleanup(ctx).await;
    outcome
}

/// A job whose payload could not be used: fail it properly when possible.
pub async fn fail_malformed(env: &JobEnv, id: Option<u64>, token: Option<String>, error: &str) {
    tracing::error!(
        job = id.unwrap_or(0),
        failure_reason = "runner_system_failure",
        "Job failed (system failure): {error}"
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
