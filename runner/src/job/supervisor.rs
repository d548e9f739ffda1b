//! The job loop: for each `[[runners]]` entry, `request_concurrency` feeders
//! ask the coordinator for jobs whenever a slot is free under `concurrent`
//! and the runner's `limit`, and spawn a task per job. Also owns graceful and
//! forceful shutdown and config reload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use termgate::api::{short_token, JobRequest};
use termgate::logschema::{self as schema, msg};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::health::{Health, RunnerId};
use super::run::{fail_malformed, process_secrets, run_job, JobEnv, JobRun};
use super::slots::Slots;
use crate::config::{Config, RunnerConfig};
use crate::coordinator::client::{Client, RequestJobOutcome};
use crate::session::{SessionJob, SessionRegistry};

/// Builds the API client for a runner (tests swap in observers).
pub type ClientFactory = Arc<dyn Fn(&RunnerConfig) -> anyhow::Result<Client> + Send + Sync>;

pub struct Supervisor {
    pub env_template: JobEnvTemplate,
    pub config: Arc<Config>,
    /// The session server's sessions; `None` without a session server.
    pub sessions: Option<Arc<SessionRegistry>>,
}

/// The parts of [`JobEnv`] shared by all runners.
#[derive(Clone)]
pub struct JobEnvTemplate {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub builds: crate::builds::Builds,
    pub system_id: String,
    pub info: termgate::api::VersionInfo,
    pub client_factory: ClientFactory,
    pub update_interval: Duration,
}

/// Controls a running supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    /// Stop requesting new jobs (graceful shutdown).
    pub stop_requesting: CancellationToken,
    /// Abort running jobs (forceful shutdown).
    pub force: CancellationToken,
    /// New config to apply (SIGHUP reload).
    reload: Arc<Mutex<Option<Arc<Config>>>>,
    reload_notify: Arc<tokio::sync::Notify>,
    pub slots: Slots,
}

impl SupervisorHandle {
    pub fn reload(&self, cfg: Arc<Config>) {
        *self.reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(cfg);
        self.reload_notify.notify_one();
    }
}

struct Feeders {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Supervisor {
    pub fn handle(&self) -> SupervisorHandle {
        SupervisorHandle {
            stop_requesting: CancellationToken::new(),
            force: CancellationToken::new(),
            reload: Arc::new(Mutex::new(None)),
            reload_notify: Arc::new(tokio::sync::Notify::new()),
            slots: Slots::with_available_gauge(
                self.env_template
                    .metrics
                    .session_terminals_available
                    .clone(),
            ),
        }
    }

    /// Run until `handle.stop_requesting` fires and every job has ended.
    pub async fn run(self, handle: SupervisorHandle) {
        let jobs = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let mut config = self.config.clone();
        let mut feeders = self.start_feeders(&config, &handle, &jobs);
        loop {
            tokio::select! {
                _ = handle.stop_requesting.cancelled() => break,
                _ = handle.reload_notify.notified() => {
                    let new = handle.reload.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(new) = new {
                        feeders.token.cancel();
                        feeders.tasks.shutdown().await;
                        config = new;
                        feeders = self.start_feeders(&config, &handle, &jobs);
                        tracing::info!(
                            { schema::BUILDS } = handle.slots.total(),
                            "{}",
                            msg::CONFIGURATION_LOADED
                        );
                    }
                }
            }
        }
        feeders.token.cancel();
        feeders.tasks.shutdown().await;
        // Wait for running jobs (forceful shutdown cancels them via `force`).
        loop {
            let next = {
                let mut js = jobs.lock().await;
                if js.is_empty() {
                    break;
                }
                // Poll without holding the lock for long.
                tokio::time::timeout(Duration::from_millis(200), js.join_next()).await
            };
            if let Ok(Some(Err(e))) = next {
                if e.is_panic() {
                    tracing::error!({ schema::ERROR } = %e, "{}", msg::JOB_TASK_PANICKED);
                }
            }
        }
        tracing::info!("{}", msg::ALL_WORKERS_STOPPED);
    }

    fn start_feeders(
        &self,
        config: &Arc<Config>,
        handle: &SupervisorHandle,
        jobs: &Arc<tokio::sync::Mutex<JoinSet<()>>>,
    ) -> Feeders {
        let token = handle.stop_requesting.child_token();
        let mut tasks = JoinSet::new();
        handle.slots.set_capacity(
            config.concurrent,
            config
                .runners
                .iter()
                .filter(|r| crate::config::IMPLEMENTED_EXECUTORS.contains(&r.executor.as_str()))
                .map(|r| (short_token(r.token.expose()), r.limit))
                .collect(),
        );
        let last_updates: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        for runner in &config.runners {
            if !crate::config::IMPLEMENTED_EXECUTORS.contains(&runner.executor.as_str()) {
                // Loaded with a warning; it does not request jobs.
                continue;
            }
            // Its jobs' user: its own `user`, else `run --user`, else the
            // global `user` (checked at load: it resolves and may be used).
            let user = crate::job_user::effective(config, runner).map(|(u, _)| u.to_string());
            let runner = Arc::new(RunnerConfig {
                user,
                ..runner.clone()
            });
            let client = match (self.env_template.client_factory)(&runner) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(
                        { schema::RUNNER } = %short_token(runner.token.expose()),
                        { schema::RUNNER_NAME } = %runner.name,
                        { schema::ERROR } = %e,
                        "{}",
                        msg::API_CLIENT_FAILED
                    );
                    continue;
                }
            };
            // `info` describes this runner's executor (features.image, …).
            let mut env = self.env_template.clone();
            env.info = crate::version::version_info(
                &runner.executor,
                runner.shell.as_deref().unwrap_or("bash"),
            );
            let short = short_token(runner.token.expose());
            let health = Arc::new(Health::new(
                RunnerId {
                    short: short.clone(),
                    name: runner.name.clone(),
                    url: runner.url.clone(),
                    system_id: self.env_template.system_id.clone(),
                },
                runner.unhealthy_requests_limit,
                runner.unhealthy_interval_duration(),
                self.env_template.metrics.clone(),
            ));
            for _ in 0..runner.effective_request_concurrency() {
                let feeder = Feeder {
                    health: health.clone(),
                    runner: runner.clone(),
                    short: short.clone(),
                    client: client.clone(),
                    config: config.clone(),
                    env: env.clone(),
                    sessions: self.sessions.clone(),
                    slots: handle.slots.clone(),
                    force: handle.force.clone(),
                    jobs: jobs.clone(),
                    last_updates: last_updates.clone(),
                };
                let span = tracing::info_span!(
                    "runner",
                    runner = %feeder.short,
                    runner_name = %feeder.runner.name,
                );
                tasks.spawn(tracing::Instrument::instrument(
                    feeder.run(token.clone()),
                    span,
                ));
            }
        }
        Feeders { token, tasks }
    }
}

struct Feeder {
    runner: Arc<RunnerConfig>,
    /// Shared by the runner's feeders: they pause together.
    health: Arc<Health>,
    short: String,
    client: Client,
    config: Arc<Config>,
    env: JobEnvTemplate,
    sessions: Option<Arc<SessionRegistry>>,
    slots: Slots,
    force: CancellationToken,
    jobs: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    last_updates: Arc<Mutex<HashMap<String, String>>>,
}

impl Feeder {
    fn check_interval(&self) -> Duration {
        Duration::from_secs(self.config.check_interval.max(1))
    }

    async fn run(self, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            if let Some(pause) = self.health.paused() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.cancelled() => return,
                }
                continue;
            }
            let Some(slot) =
                self.slots
                    .try_acquire(&self.short, self.runner.limit, self.config.concurrent)
            else {
                tokio::select! {
                    _ = self.slots.freed() => {}
                    _ = tokio::time::sleep(self.check_interval()) => {}
                    _ = stop.cancelled() => return,
                }
                continue;
            };
            let req = JobRequest {
                info: self.env.info.clone(),
                token: self.runner.token.expose().to_string(),
                system_id: self.env.system_id.clone(),
                last_update: self
                    .last_updates
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&self.short)
                    .cloned()
                    .unwrap_or_default(),
                session: None,
            };
            let pending = self.sessions.as_ref().map(|r| r.create());
            let mut req = req;
            req.session = pending.as_ref().map(|p| p.info.clone());
            let outcome = tokio::select! {
                o = self.client.request_job(&req) => o,
                _ = stop.cancelled() => return,
            };
            match outcome {
                RequestJobOutcome::Job(job, _) => {
                    self.health.succeeded();
                    self.env.metrics.worker_feed(
                        &self.short,
                        &self.runner.name,
                        &self.env.system_id,
                        true,
                    );
                    let env = self.job_env();
                    let runner = self.runner.clone();
                    let short = self.short.clone();
                    let force = self.force.clone();
                    // Masked in the runner's log and Sentry reports while
                    // the job runs.
                    let secrets = crate::logging::redact_while(process_secrets(
                        &job,
                        pending.as_ref().map(|p| p.token.as_str()),
                    ));
                    // The session becomes routable now that its job exists.
                    let (registry, session) = match (&self.sessions, pending) {
                        (Some(reg), Some(p)) => {
                            let session = reg.activate(
                                p,
                                SessionJob {
                                    job_id: job.id,
                                    project: job.job_info.project_full_path.clone(),
                                    job_name: job.job_info.name.clone(),
                                    executor: runner.executor.clone(),
                                    masked: job
                                        .variables
                                        .iter()
                                        .filter(|v| v.is_masked())
                                        .map(|v| v.value.clone())
                                        .chain(std::iter::once(job.token.clone()))
                                        .collect(),
                                },
                            );
                            (Some(reg.clone()), Some(session))
                        }
                        _ => (None, None),
                    };
                    let run = JobRun {
                        env,
                        runner,
                        runner_short: short,
                        job: Arc::new(*job),
                        slot: slot.index,
                        force,
                        session,
                    };
                    self.jobs.lock().await.spawn(async move {
                        run_job(run, registry).await;
                        drop(slot);
                        drop(secrets);
                    });
                    // A job came: ask again at once.
                    continue;
                }
                RequestJobOutcome::Malformed { id, token, error } => {
                    let env = self.job_env();
                    // In the feeder's span: the runner's name on its lines.
                    self.jobs
                        .lock()
                        .await
                        .spawn(tracing::Instrument::in_current_span(async move {
                            fail_malformed(&env, id, token, &error).await;
                            drop(slot);
                        }));
                    continue;
                }
                RequestJobOutcome::NoJob(last_update) => {
                    self.health.succeeded();
                    drop(slot);
                    if let Some(lu) = last_update {
                        self.last_updates
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(self.short.clone(), lu);
                    }
                }
                RequestJobOutcome::Forbidden | RequestJobOutcome::Failed(_) => {
                    drop(slot);
                    self.env.metrics.worker_feed(
                        &self.short,
                        &self.runner.name,
                        &self.env.system_id,
                        false,
                    );
                    if self.health.failed().is_some() {
                        // Paused at the top of the loop.
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.check_interval()) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    fn job_env(&self) -> JobEnv {
        JobEnv {
            client: self.client.clone(),
            metrics: self.env.metrics.clone(),
            builds: self.env.builds.clone(),
            system_id: self.env.system_id.clone(),
            info: self.env.info.clone(),
            update_interval: self.env.update_interval,
            // From the config this feeder was started with: a reload
            // applies to the jobs that start after it, as upstream's.
            session_timeout: self.config.session_timeout_duration(),
        }
    }
}
