//! Executors run a job's steps somewhere (the host shell, a Docker
//! container). The job loop drives them through [`Executor`]; interactive
//! terminals are an optional capability added by the session server.

pub mod docker;
pub mod script;
pub mod shell;
pub mod terminal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use termgate::api::{failure_reason, JobResponse};
use tokio_util::sync::CancellationToken;

use crate::config::RunnerConfig;
use crate::trace::JobTrace;

/// Everything an executor needs to know about the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: Arc<JobResponse>,
    pub runner: Arc<RunnerConfig>,
    /// Short token of the runner (`runner` label, path component).
    pub runner_short: String,
    /// A small number unique among this runner's running jobs
    /// (`CI_CONCURRENT_ID`), used in build paths.
    pub slot: usize,
    pub trace: JobTrace,
    /// Reports the executor stage (`executor_stage` label).
    pub stage: StageHook,
}

impl JobContext {
    /// Set the job's `executor_stage`.
    pub fn stage(&self, stage: &'static str) {
        if let Some(f) = &self.stage.0 {
            f(stage);
        }
    }
}

/// A callback setting the job's executor stage; the default does nothing.
#[derive(Clone, Default)]
pub struct StageHook(pub Option<Arc<dyn Fn(&'static str) + Send + Sync>>);

impl std::fmt::Debug for StageHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StageHook")
    }
}

/// One step to run: the lines of a `script`/`after_script`.
#[derive(Debug, Clone)]
pub struct StepScript {
    /// `script`, `after_script`, ... (upstream step names).
    pub name: String,
    pub lines: Vec<String>,
    pub timeout: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepResult {
    Exited(i32),
    TimedOut,
    Cancelled,
}

/// An executor failure that is not the script's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    /// A `failure_reason` value.
    pub reason: &'static str,
    pub message: String,
}

impl ExecError {
    pub fn system(message: impl Into<String>) -> Self {
        ExecError {
            reason: failure_reason::RUNNER_SYSTEM_FAILURE,
            message: message.into(),
        }
    }
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// Upstream executor name (`shell`, `docker`).
    fn name(&self) -> &'static str;

    /// Create the build environment (directories, container, ...).
    async fn prepare(&mut self, ctx: &JobContext) -> Result<(), ExecError>;

    /// Run one step, streaming its output to `ctx.trace`. Must stop (and kill
    /// everything it started) promptly when `cancel` fires or the step's
    /// timeout passes.
    async fn run_step(
        &self,
        ctx: &JobContext,
        step: &StepScript,
        cancel: &CancellationToken,
    ) -> Result<StepResult, ExecError>;

    /// Remove what `prepare` made. Never fails the job.
    async fn cleanup(&mut self, ctx: &JobContext);

    /// The job's build directory, once prepared.
    fn build_dir(&self) -> Option<PathBuf>;

    /// Interactive terminals into the job's environment, once prepared;
    /// `None` when the executor has no terminal support.
    fn terminal(&self) -> Option<Arc<dyn terminal::TerminalFactory>> {
        None
    }
}

/// Make the executor named in the runner's config.
pub fn for_runner(runner: &RunnerConfig) -> Result<Box<dyn Executor>, ExecError> {
    match runner.executor.as_str() {
        "" | "shell" => Ok(Box::new(shell::ShellExecutor::new(runner))),
        "docker" => Ok(Box::new(docker::DockerExecutor::new(runner))),
        other => Err(ExecError {
            reason: failure_reason::RUNNER_CONFIGURATION_ERROR,
            message: format!("executor {other:?} is not supported by termgate (shell, docker)"),
        }),
    }
}

/// A job's environment, as both executors build it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobEnvironment {
    /// Runner `environment`, predefined `CI_*` and job variables, in order
    /// (later wins); a file variable's value is its file's path.
    pub vars: Vec<(String, String)>,
    /// File variables to write: `(path, contents)`.
    pub files: Vec<(String, String)>,
}

/// The job's environment in `build_dir`, with builds under `builds_dir` and
/// file variables in `file_dir`; `extra` predefined variables go after the
/// common ones. Variables with invalid names are skipped with a trace warning.
pub fn job_environment(
    ctx: &JobContext,
    build_dir: &str,
    builds_dir: &str,
    file_dir: &str,
    extra: &[(&str, &str)],
) -> JobEnvironment {
    let mut env = JobEnvironment::default();
    for kv in &ctx.runner.environment {
        if let Some((k, v)) = kv.split_once('=') {
            env.vars.push((k.to_string(), v.to_string()));
        }
    }
    let predefined = [
        ("CI_PROJECT_DIR", build_dir.to_string()),
        ("CI_BUILDS_DIR", builds_dir.to_string()),
        ("CI_CONCURRENT_ID", ctx.slot.to_string()),
        ("CI_RUNNER_SHORT_TOKEN", ctx.runner_short.clone()),
        ("CI_RUNNER_VERSION", env!("CARGO_PKG_VERSION").to_string()),
        ("CI_SERVER", "yes".to_string()),
    ];
    env.vars
        .extend(predefined.into_iter().map(|(k, v)| (k.to_string(), v)));
    env.vars
        .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    for v in &ctx.job.variables {
        if !valid_env_key(&v.key) {
            ctx.trace
                .warning(&format!("skipping variable with invalid name {:?}", v.key));
            continue;
        }
        if v.is_file() {
            let path = format!("{}/{}", file_dir.trim_end_matches('/'), v.key);
            env.files.push((path.clone(), v.value.clone()));
            env.vars.push((v.key.clone(), path));
        } else {
            env.vars.push((v.key.clone(), v.value.clone()));
        }
    }
    env
}

/// Is `name` a valid environment variable name?
pub fn valid_env_key(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
