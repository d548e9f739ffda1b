//! The Docker executor: one hardened container per job (a long-lived init
//! process), every step an `exec` into it, interactive terminals as `exec`
//! with a TTY. Everything it creates carries the job's labels and goes away
//! in `cleanup`, or at the next runner start after a crash
//! ([`remove_stale`]).

pub mod container;
pub mod exec;
pub mod hardening;
pub mod terminal;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use termgate::metrics::executor_stage;
use tokio_util::sync::CancellationToken;

use self::container::{ContainerSpec, JobResources, BUILDS_DIR};
use self::exec::ExecSpec;
use super::script::{render_script, sh_quote};
use super::terminal::TerminalFactory;
use super::{ExecError, Executor, JobContext, StepResult, StepScript};
use crate::config::{DockerConfig, RunnerConfig};
use termgate::logschema::{self as schema, msg};

/// What `prepare` made.
#[derive(Debug, Clone)]
struct Prepared {
    container: String,
    network: Option<String>,
    volume: Option<String>,
}

pub struct DockerExecutor {
    cfg: DockerConfig,
    docker: Option<Docker>,
    made: Prepared,
    shell: String,
    build_dir: Option<String>,
    tmp_dir: Option<String>,
    env: Vec<String>,
}

impl std::fmt::Debug for DockerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerExecutor")
            .field("made", &self.made)
            .field("shell", &self.shell)
            .field("build_dir", &self.build_dir)
            .finish()
    }
}

impl DockerExecutor {
    pub fn new(runner: &RunnerConfig) -> Self {
        DockerExecutor {
            cfg: runner.docker.clone().unwrap_or_default(),
            docker: None,
            made: Prepared {
                container: String::new(),
                network: None,
                volume: None,
            },
            shell: "sh".into(),
            build_dir: None,
            tmp_dir: None,
            env: Vec::new(),
        }
    }

    /// The job container's id, once prepared (benchmarks and tests exec
    /// into it).
    pub fn container_id(&self) -> Option<&str> {
        (!self.made.container.is_empty()).then_some(self.made.container.as_str())
    }

    fn ready(&self) -> Result<(&Docker, &str, &str), ExecError> {
        match (&self.docker, &self.build_dir, &self.tmp_dir) {
            (Some(d), Some(b), Some(t)) if !self.made.container.is_empty() => {
                Ok((d, b.as_str(), t.as_str()))
            }
            _ => Err(ExecError::system("docker executor used before prepare")),
        }
    }

    fn spec(&self, cmd: Vec<String>, env: Vec<String>, dir: Option<String>) -> ExecSpec {
        ExecSpec {
            cmd,
            env,
            working_dir: dir,
            user: self.cfg.user.clone(),
        }
    }

    async fn run_helper(&self, script: &str, env: Vec<String>) -> Result<String, ExecError> {
        let docker = self
            .docker
            .as_ref()
            .ok_or_else(|| ExecError::system("docker executor used before prepare"))?;
        let spec = self.spec(vec!["sh".into(), "-c".into(), script.into()], env, None);
        let (code, out) = exec::capture(docker, &self.made.container, &spec).await?;
        if code != 0 {
            return Err(ExecError::system(format!(
                "preparing the build container failed (exit code {code}): {}",
                out.trim()
            )));
        }
        Ok(out)
    }

    async fn create(&mut self, ctx: &JobContext) -> Result<(), ExecError> {
        let job = &ctx.job;
        ctx.stage(executor_stage::DOCKER_PREPARE);
        ctx.trace.green("Preparing the \"docker\" executor");
        let docker = container::connect(&self.cfg).await?;
        self.docker = Some(docker.clone());
        let image = container::job_image(&self.cfg, job.image.as_ref())?;
        let policies = container::pull_policies(&self.cfg, job.image.as_ref(), &image)?;
        ctx.trace
            .line(&format!("Using Docker executor with image {image} ..."));
        ctx.stage(executor_stage::DOCKER_PULLING_IMAGE);
        container::ensure_image(&docker, &image, &policies, &ctx.trace).await?;
        ctx.stage(executor_stage::DOCKER_PREPARE);

        let res = JobResources::new(&ctx.runner_short, job.id, job.job_info.project_id);
        if self.cfg.network_mode.is_none() {
            self.made.network = Some(container::create_network(&docker, &res).await?);
        }
        let volume = container::create_volume(&docker, &res).await?;
        self.made.volume = Some(volume.clone());

        let project = if job.job_info.project_full_path.is_empty() {
            format!("project-{}", job.job_info.project_id)
        } else {
            job.job_info.project_full_path.clone()
        };
        let project: Vec<&str> = project
            .split('/')
            .filter(|c| !c.is_empty() && *c != "." && *c != "..")
            .collect();
        let build_dir = format!("{BUILDS_DIR}/{}", project.join("/"));
        let tmp_dir = format!("{build_dir}.tmp");
        let spec = ContainerSpec {
            cfg: &self.cfg,
            image: &image,
            entrypoint: job.image.as_ref().and_then(|i| i.entrypoint.clone()),
            working_dir: build_dir.clone(),
            network: self.made.network.clone(),
            volume,
        };
        self.made.container = container::create_container(&docker, &res, &spec).await?;
        ctx.trace.green("Preparing environment");
        ctx.trace.line(&format!(
            "Running on {} via termgate-runner...",
            &self.made.container[..self.made.container.len().min(12)]
        ));

        let detect = format!(
            "mkdir -p {b} {t} && chmod 1777 {t} && if command -v bash >/dev/null 2>&1; then echo bash; else echo sh; fi",
            b = sh_quote(&build_dir),
            t = sh_quote(&tmp_dir)
        );
        let out = self.run_helper(&detect, Vec::new()).await?;
        self.shell = if out.trim() == "bash" { "bash" } else { "sh" }.into();

        ctx.trace.green("Getting source from Git repository");
        ctx.trace
            .line("Skipping Git repository setup (termgate does not fetch sources)");
        ctx.trace.line(&format!("Build directory: {build_dir}"));

        let job_env = super::job_environment(
            ctx,
            &build_dir,
            BUILDS_DIR,
            &tmp_dir,
            &[("CI_DISPOSABLE_ENVIRONMENT", "true")],
        );
        for (path, contents) in &job_env.files {
            self.run_helper(
                "printf '%s' \"$TERMGATE_FILE_DATA\" > \"$TERMGATE_FILE_PATH\"",
                vec![
                    format!("TERMGATE_FILE_PATH={path}"),
                    format!("TERMGATE_FILE_DATA={contents}"),
                ],
            )
            .await
            .map_err(|e| ExecError::system(format!("writing file variable {path}: {e}")))?;
        }
        let env: Vec<String> = job_env
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.env = env;
        self.build_dir = Some(build_dir);
        self.tmp_dir = Some(tmp_dir);
        Ok(())
    }
}

#[async_trait]
impl Executor for DockerExecutor {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn prepare(&mut self, ctx: &JobContext) -> Result<(), ExecError> {
        let r = self.create(ctx).await;
        if let Err(e) = &r {
            tracing::error!(
                { schema::FAILURE_REASON } = e.reason,
                "{}{e}",
                msg::DOCKER_PREPARE_FAILED_PREFIX
            );
        }
        r
    }

    async fn run_step(
        &self,
        ctx: &JobContext,
        step: &StepScript,
        cancel: &CancellationToken,
    ) -> Result<StepResult, ExecError> {
        let (docker, build_dir, tmp_dir) = self.ready()?;
        let pidfile = format!("{tmp_dir}/.step-{}.pid", step.name.replace('/', "_"));
        let script = format!(
            "echo $$ > {}\n{}",
            sh_quote(&pidfile),
            render_script(&self.shell, std::path::Path::new(build_dir), &step.lines)
        );
        let mut cmd = vec![self.shell.clone()];
        if self.shell == "bash" {
            cmd.extend(["--noprofile".into(), "--norc".into()]);
        }
        cmd.extend(["-c".into(), script]);
        let spec = self.spec(cmd, self.env.clone(), Some(build_dir.to_string()));
        let r = exec::run_step(
            docker,
            &self.made.container,
            &spec,
            &pidfile,
            &ctx.trace,
            step.timeout,
            cancel,
        )
        .await;
        if let Err(e) = &r {
            tracing::error!("{}", msg::docker_step_failed(&step.name, e));
        }
        r
    }

    async fn cleanup(&mut self, ctx: &JobContext) {
        ctx.stage(executor_stage::DOCKER_CLEANUP);
        let Some(docker) = self.docker.clone() else {
            return;
        };
        let mut errors = Vec::new();
        if !self.made.container.is_empty() {
            if let Err(e) = container::remove_container(&docker, &self.made.container).await {
                errors.push(format!("container {}: {e}", self.made.container));
            }
        }
        if let Some(n) = self.made.network.take() {
            if let Err(e) = container::remove_network(&docker, &n).await {
                errors.push(format!("network {n}: {e}"));
            }
        }
        if let Some(v) = self.made.volume.take() {
            if let Err(e) = container::remove_volume(&docker, &v).await {
                errors.push(format!("volume {v}: {e}"));
            }
        }
        for e in errors {
            tracing::warn!("{}{e}", msg::DOCKER_CLEANUP_FAILED_PREFIX);
        }
    }

    fn build_dir(&self) -> Option<PathBuf> {
        self.build_dir.as_ref().map(PathBuf::from)
    }

    fn terminal(&self) -> Option<Arc<dyn TerminalFactory>> {
        let (docker, build_dir, tmp_dir) = self.ready().ok()?;
        Some(Arc::new(terminal::DockerTerminalFactory {
            docker: docker.clone(),
            container: self.made.container.clone(),
            working_dir: build_dir.to_string(),
            env: self.env.clone(),
            user: self.cfg.user.clone(),
            tmp_dir: tmp_dir.to_string(),
        }))
    }
}

/// Remove what a crashed runner left for each Docker runner in `cfg`.
/// Errors (an engine that is down) are logged, never fatal.
pub async fn remove_stale(cfg: &crate::config::Config) {
    for r in cfg.runners.iter().filter(|r| r.executor == "docker") {
        let short = termgate::api::short_token(r.token.expose());
        let docker_cfg = r.docker.clone().unwrap_or_default();
        let docker = match container::connect(&docker_cfg).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!({ schema::RUNNER } = %short, "{}{e}", msg::DOCKER_STALE_SKIPPED_PREFIX);
                continue;
            }
        };
        match container::remove_labelled(&docker, &short).await {
            Ok(n) if n != container::Removed::default() => tracing::info!(
                { schema::RUNNER } = %short,
                { schema::CONTAINERS } = n.containers,
                { schema::NETWORKS } = n.networks,
                { schema::VOLUMES } = n.volumes,
                "{}", msg::DOCKER_STALE_REMOVED
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!({ schema::RUNNER } = %short, "{}{e}", msg::DOCKER_STALE_FAILED_PREFIX)
            }
        }
    }
}
