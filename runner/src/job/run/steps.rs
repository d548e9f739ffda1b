//! A job inside its executor: prepare, run the steps by `when` within the
//! job's deadline, hold for a connected terminal, clean up.

use std::time::{Duration, Instant};

use termgate::api::Step;
use termgate::metrics::{executor_stage, stage};
use tokio_util::sync::CancellationToken;

use super::{JobRun, DEFAULT_JOB_TIMEOUT};
use crate::executor::{self, Executor, JobContext, StepScript};
use crate::job::outcome::{Outcome, StepStops, AFTER_SCRIPT};

/// `after_script`'s own budget: it runs even after the job timed out.
const AFTER_SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// One job's steps in its executor.
pub(super) struct Steps<'a> {
    pub run: &'a JobRun,
    pub ctx: &'a JobContext,
    /// Stops the running step: coordinator cancel or forceful shutdown.
    pub cancel: &'a CancellationToken,
    /// The coordinator canceled the job.
    pub aborted: &'a CancellationToken,
}

/// The job's timeout and the instant it runs out.
struct Deadline {
    job_timeout: Duration,
    at: Instant,
}

impl Steps<'_> {
    /// Prepare, run the steps, hold for a terminal, clean up.
    pub async fn execute(&self) -> Outcome {
        let mut exec = match self.prepare_executor().await {
            Ok(e) => e,
            Err(outcome) => return outcome,
        };
        let job_timeout = self
            .ctx
            .job
            .timeout_secs()
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_JOB_TIMEOUT);
        let deadline = Deadline {
            job_timeout,
            at: Instant::now() + job_timeout,
        };
        let mut outcome = Outcome::Success;
        for step in &self.ctx.job.steps {
            if !outcome.runs(step.when) || step.script.is_empty() {
                continue;
            }
            let this = self.run_step(exec.as_ref(), step, &deadline).await;
            outcome = outcome.then(step, this);
        }
        self.hold_for_terminal(&deadline).await;
        self.run.env.builds.update(self.ctx.job.id, |b| {
            b.executor_stage = executor_stage::CLEANUP.into();
            b.stage = stage::CLEANUP_FILE_VARIABLES.into();
        });
        exec.cleanup(self.ctx).await;
        outcome
    }

    /// The runner's executor, prepared; its terminal goes to the session.
    async fn prepare_executor(&self) -> Result<Box<dyn Executor>, Outcome> {
        let mut exec = executor::for_runner(&self.ctx.runner).map_err(Outcome::System)?;
        if let Err(e) = exec.prepare(self.ctx).await {
            exec.cleanup(self.ctx).await;
            return Err(Outcome::System(e));
        }
        if let (Some(s), Some(t)) = (&self.run.session, exec.terminal()) {
            s.set_terminal(t);
        }
        Ok(exec)
    }

    /// Run one step and say how it ended. Only cancel and shutdown stop
    /// `after_script`, never the job's own failure.
    async fn run_step(&self, exec: &dyn Executor, step: &Step, deadline: &Deadline) -> Outcome {
        let after_script = step.name == AFTER_SCRIPT;
        let stage_name = if after_script {
            stage::AFTER_SCRIPT.to_string()
        } else {
            format!("step_{}", step.name)
        };
        self.run.env.builds.update(self.ctx.job.id, |b| {
            b.stage = stage_name.clone();
            b.executor_stage = if self.ctx.runner.executor == "docker" {
                executor_stage::DOCKER_RUN.into()
            } else {
                executor_stage::SHELL_RUN.into()
            };
        });
        if after_script {
            self.ctx.trace.green("Running after_script");
        } else {
            self.ctx.trace.green(&format!(
                "Executing \"{stage_name}\" stage of the job script"
            ));
        }
        let remaining = deadline.at.saturating_duration_since(Instant::now());
        let step_timeout = step
            .timeout
            .map(Duration::from_secs)
            .filter(|d| !d.is_zero())
            .unwrap_or(remaining);
        let timeout = if after_script {
            step_timeout.min(AFTER_SCRIPT_TIMEOUT)
        } else {
            step_timeout.min(remaining)
        };
        let script = StepScript {
            name: step.name.clone(),
            lines: step.script.clone(),
            timeout,
        };
        let result = exec.run_step(self.ctx, &script, self.cancel).await;
        let this = Outcome::of_step(
            result,
            StepStops {
                timeout,
                job_timeout: (timeout == remaining && !after_script)
                    .then_some(deadline.job_timeout),
                forced: self.run.force.is_cancelled(),
                canceled: self.aborted.is_cancelled(),
            },
        );
        if let (true, Outcome::ScriptFailure(code)) = (after_script, &this) {
            self.ctx.trace.warning(&format!(
                "after_script failed, but job will continue unaffected: exit code {code}"
            ));
        }
        this
    }

    /// A connected terminal holds the job after its steps (not after a
    /// cancel), up to `session_timeout` within the job's deadline.
    async fn hold_for_terminal(&self, deadline: &Deadline) {
        let Some(s) = &self.run.session else {
            return;
        };
        if self.cancel.is_cancelled() {
            return;
        }
        self.run
            .env
            .builds
            .update(self.ctx.job.id, |b| b.stage = stage::TERMINAL_HOLD.into());
        let left = deadline.at.saturating_duration_since(Instant::now());
        crate::job::hold::hold_for_terminal(
            s,
            &self.ctx.trace,
            self.run.env.session_timeout.min(left),
            self.cancel,
            &self.run.force,
        )
        .await;
    }
}
