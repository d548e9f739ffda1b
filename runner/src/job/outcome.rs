//! How a job ends: each step's result, the job's outcome across steps (by
//! `when` and `allow_failure`), and what the coordinator and the job log are
//! told about it.

use std::time::Duration;

use termgate::api::{failure_reason, JobState, Step, StepWhen};

use crate::coordinator::trace::FinalState;
use crate::executor::{ExecError, StepResult};

/// The step that runs after the script whatever its outcome (within limits).
pub const AFTER_SCRIPT: &str = "after_script";

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

/// Why a step was stopped, for [`Outcome::of_step`].
#[derive(Debug, Clone, Copy)]
pub struct StepStops {
    /// The timeout the step ran with.
    pub timeout: Duration,
    /// The step's timeout was the job's remaining time: a timeout is the job's.
    pub job_timeout: Option<Duration>,
    /// Forceful shutdown was asked for.
    pub forced: bool,
    /// The coordinator canceled the job.
    pub canceled: bool,
}

impl Outcome {
    /// Whether a step with this `when` runs after the steps so far ended so.
    pub fn runs(&self, when: StepWhen) -> bool {
        let failed = *self != Outcome::Success;
        let stop = matches!(
            self,
            Outcome::Canceled | Outcome::Aborted | Outcome::Timeout(_)
        );
        match when {
            StepWhen::Always => !stop || matches!(self, Outcome::Timeout(_)),
            StepWhen::OnSuccess => !failed,
            StepWhen::OnFailure => failed && !stop,
        }
    }

    /// The outcome of one step from what the executor reported.
    pub fn of_step(result: Result<StepResult, ExecError>, stops: StepStops) -> Outcome {
        match result {
            Ok(StepResult::Exited(0)) => Outcome::Success,
            Ok(StepResult::Exited(code)) => Outcome::ScriptFailure(code),
            Ok(StepResult::TimedOut) => {
                Outcome::Timeout(stops.job_timeout.unwrap_or(stops.timeout))
            }
            Ok(StepResult::Cancelled) if stops.forced && !stops.canceled => Outcome::Aborted,
            Ok(StepResult::Cancelled) => Outcome::Canceled,
            Err(e) => Outcome::System(e),
        }
    }

    /// The job's outcome after `step` ended `this`: the first failure counts,
    /// unless the step may fail; `after_script` only passes on a cancel.
    pub fn then(self, step: &Step, this: Outcome) -> Outcome {
        if self != Outcome::Success {
            return self;
        }
        if step.name == AFTER_SCRIPT {
            return match this {
                Outcome::Canceled | Outcome::Aborted => this,
                _ => self,
            };
        }
        if this != Outcome::Success
            && !(step.allow_failure && matches!(this, Outcome::ScriptFailure(_)))
        {
            return this;
        }
        self
    }

    pub fn final_state(&self, supported: &[String]) -> FinalState {
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
    pub fn error_text(&self) -> Option<String> {
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

    pub fn is_system(&self) -> bool {
        matches!(self, Outcome::System(_) | Outcome::Aborted)
    }

    /// The job's state in `/debug/jobs/list`.
    pub fn build_state(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Timeout(_) => "timedout",
            Outcome::Canceled => "canceled",
            _ => "failed",
        }
    }
}
