//! `termgate-runner run`: load the config, start logging, the metrics server
//! and the job supervisor, then follow signals until shutdown.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use termgate::logschema::{self as schema, msg};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::builds::{Builds, ProcessState, ProcessStateCell};
use crate::cli::RunArgs;
use crate::config;
use crate::coordinator::Client;
use crate::job::supervisor::{ClientFactory, JobEnvTemplate};
use crate::job::{Supervisor, SupervisorHandle};
use crate::logging::{LogGuard, LogSettings};
use crate::metrics::Metrics;
use crate::session::server::SessionServerHandle;
use crate::session::SessionRegistry;
use crate::signals::{EarlyHangup, Sig, Signals};

pub async fn run(args: RunArgs, log: LogSettings) -> Result<()> {
    let early_hangup = EarlyHangup::catch()?;
    let daemon = Daemon::start(&args, &log).await?;
    let servers = Servers::start(&args, &daemon).await?;
    let (handle, mut sup_task) = start_supervisor(&daemon, &servers);
    let mut signals = Signals::install_with(early_hangup)?;
    follow_signals(&daemon, &handle, &mut sup_task, &mut signals).await;
    servers.shut_down().await;
    tracing::info!("{}", msg::CAN_EXIT_NOW);
    Ok(())
}

/// What the whole run shares: the config file and the config in force at
/// start, the job list, process state, metrics, the Sentry reporter and the
/// log guard.
struct Daemon {
    path: PathBuf,
    /// `run --user`: applied to every config loaded, the first and reloads.
    cli_user: Option<String>,
    cfg: Arc<config::Config>,
    system_id: String,
    builds: Builds,
    state: ProcessStateCell,
    metrics: Arc<Metrics>,
    /// `sentry_dsn` set: the reporter, whose executors follow reloads.
    sentry: Option<crate::sentry_report::Reporter>,
    _log: LogGuard,
}

impl Daemon {
    /// Config, logging, the open-files limit and the config metrics. Nothing
    /// starts half-configured: a bad config stops here.
    async fn start(args: &RunArgs, log: &LogSettings) -> Result<Daemon> {
        // `-c` is relative to where the command was started, as the user
        // typed it: resolved before `-d` changes directory.
        let path = std::path::absolute(args.config.path())
            .with_context(|| format!("resolving {}", args.config.path().display()))?;
        if let Some(dir) = &args.working_directory {
            std::env::set_current_dir(dir)
                .with_context(|| format!("changing to working directory {}", dir.display()))?;
        }
        let mut loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        loaded.config.apply_cli_user(args.user.as_deref());
        check_job_users(&loaded.config, &path).map_err(anyhow::Error::msg)?;
        for r in &loaded.config.runners {
            crate::logging::redact(r.token.expose());
        }
        let builds = Builds::default();
        let state = ProcessStateCell::default();
        let metrics = Metrics::new(
            builds.clone(),
            state.clone(),
            env!("CARGO_PKG_VERSION"),
            option_env!("TERMGATE_REVISION").unwrap_or("unknown"),
        )?;
        // Sentry first: its layer goes into the log subscriber.
        let (sentry, sentry_layer) = match crate::sentry_report::start(&loaded.config)
            .with_context(|| path.display().to_string())?
        {
            Some((reporter, layer)) => (Some(reporter), Some(layer)),
            None => (None, None),
        };
        let guard = log.init_with(
            Some(&loaded.config),
            Some(metrics.error_counter()),
            sentry_layer,
        )?;
        // Upstream's first line of a run: where the weekly report counts
        // starts (and unclean shutdowns: a start with no `Can exit now!`
        // before it).
        tracing::info!(
            { schema::BUILDS } = 0,
            { schema::MAX_BUILDS } = loaded.config.concurrent,
            "{}{}...",
            msg::STARTING_MULTI_RUNNER_PREFIX,
            path.display()
        );
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        raise_open_files_limit();
        let cfg = Arc::new(loaded.config);
        let system_id = crate::system_id::load_or_create(&path)?;
        apply_config_metrics(&metrics, &cfg, &system_id);
        metrics.configuration_loaded(true);
        // Containers, networks and volumes a crashed run left behind.
        crate::executor::docker::remove_stale(&cfg).await;
        Ok(Daemon {
            path,
            cli_user: args.user.clone(),
            cfg,
            system_id,
            builds,
            state,
            metrics,
            sentry,
            _log: guard,
        })
    }
}

/// Before any socket or terminal is opened; jobs get the old limit back.
fn raise_open_files_limit() {
    match crate::rlimit::raise_nofile() {
        Ok(r) if r.to > r.from => {
            tracing::info!(
                { schema::FROM } = r.from,
                { schema::TO } = r.to,
                "{}",
                msg::OPEN_FILES_LIMIT_RAISED
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!({ schema::ERROR } = %e, "{}", msg::OPEN_FILES_LIMIT_NOT_RAISED),
    }
}

/// The metrics/debug server and the session server (interactive terminals),
/// each when configured; both stop on `shutdown`.
struct Servers {
    shutdown: CancellationToken,
    /// `/health/ready`'s answer: set once the supervisor runs.
    ready: Arc<AtomicBool>,
    metrics_task: Option<JoinHandle<Result<()>>>,
    session_server: Option<SessionServerHandle>,
}

impl Servers {
    async fn start(args: &RunArgs, d: &Daemon) -> Result<Servers> {
        let shutdown = CancellationToken::new();
        let ready = Arc::new(AtomicBool::new(false));
        let metrics_task = start_metrics_server(args, d, &ready, &shutdown).await?;
        let session_server = match d.cfg.enabled_session_server() {
            Some(scfg) => {
                // The generated certificate is kept beside config.toml.
                let opts = crate::session::server::ServerOptions {
                    cert_dir: Some(config::config_dir(&d.path)),
                    ..crate::session::server::ServerOptions::from_env()
                };
                Some(
                    crate::session::server::start_with(
                        scfg,
                        d.metrics.clone(),
                        shutdown.clone(),
                        opts,
                    )
                    .await
                    .context("starting the session server")?,
                )
            }
            None => {
                tracing::info!("{}", msg::SESSION_SERVER_DISABLED);
                None
            }
        };
        Ok(Servers {
            shutdown,
            ready,
            metrics_task,
            session_server,
        })
    }

    fn sessions(&self) -> Option<Arc<SessionRegistry>> {
        self.session_server.as_ref().map(|h| h.registry.clone())
    }

    /// The session server goes last, as upstream's does.
    async fn shut_down(self) {
        if let Some(reg) = self.sessions() {
            reg.close_all(termgate::metrics::close_reason::RUNNER_SHUTDOWN);
        }
        self.shutdown.cancel();
        if let Some(h) = &self.session_server {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.wait()).await;
        }
        if let Some(t) = self.metrics_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

/// The metrics/debug server on `--listen-address`, else `listen_address`.
async fn start_metrics_server(
    args: &RunArgs,
    d: &Daemon,
    ready: &Arc<AtomicBool>,
    shutdown: &CancellationToken,
) -> Result<Option<JoinHandle<Result<()>>>> {
    let listen = args
        .listen_address
        .clone()
        .or_else(|| d.cfg.metrics_listen_address());
    let Some(addr) = listen else {
        tracing::info!("{}", msg::METRICS_DISABLED);
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding metrics server to {addr}"))?;
    let local = listener.local_addr().context("metrics server address")?;
    tracing::info!({ schema::ADDRESS } = %local, "{}", msg::METRICS_SERVER_LISTENING);
    Ok(Some(tokio::spawn(crate::metrics::serve(
        listener,
        d.metrics.clone(),
        d.builds.clone(),
        d.state.clone(),
        ready.clone(),
        shutdown.clone(),
    ))))
}

/// Start the job supervisor; from here the process is running and ready.
fn start_supervisor(d: &Daemon, servers: &Servers) -> (SupervisorHandle, JoinHandle<()>) {
    let sup = Supervisor {
        env_template: JobEnvTemplate {
            metrics: d.metrics.clone(),
            builds: d.builds.clone(),
            system_id: d.system_id.clone(),
            info: crate::version::version_info("shell", "bash"),
            client_factory: client_factory(&d.metrics),
            update_interval: crate::coordinator::trace::DEFAULT_INTERVAL,
        },
        config: d.cfg.clone(),
        sessions: servers.sessions(),
    };
    let handle = sup.handle();
    let task = tokio::spawn(sup.run(handle.clone()));
    d.state.set(ProcessState::Running);
    servers.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        { schema::BUILDS } = 0,
        { schema::MAX_BUILDS } = d.cfg.concurrent,
        "{}",
        msg::CONFIGURATION_LOADED
    );
    (handle, task)
}

/// A coordinator client per runner, observed by the API metrics.
fn client_factory(metrics: &Arc<Metrics>) -> ClientFactory {
    let metrics = metrics.clone();
    Arc::new(move |r: &config::RunnerConfig| {
        let short = termgate::api::short_token(r.token.expose());
        let m = metrics.clone();
        let sid = String::new();
        Ok(
            Client::new(&r.url, r.tls_ca_file.as_deref().map(Path::new))?.with_observer(Arc::new(
                move |ep, method, status, elapsed| {
                    m.observe_api(ep, method, status, &short, &sid, elapsed)
                },
            )),
        )
    })
}

/// Follow signals until the supervisor ends or a stop signal was handled:
/// SIGHUP reloads, the first SIGQUIT stops requesting jobs, SIGTERM/SIGINT
/// (or a second SIGQUIT) abort the jobs.
async fn follow_signals(
    d: &Daemon,
    handle: &SupervisorHandle,
    sup_task: &mut JoinHandle<()>,
    signals: &mut Signals,
) {
    let mut graceful = false;
    // The config in force: `shutdown_timeout` is read from it when a stop
    // signal comes, so a reload changes it (gitlab-runner reads its current
    // config there too).
    let mut current = d.cfg.clone();
    loop {
        tokio::select! {
            _ = &mut *sup_task => break,
            sig = signals.next() => match sig {
                Sig::Reload => {
                    if let Some(new) = reload_config(d) {
                        current = new.clone();
                        handle.reload(new);
                    }
                }
                Sig::Graceful if !graceful => {
                    graceful = true;
                    d.state.set(ProcessState::GracefulShutdown);
                    tracing::warn!("{}", msg::GRACEFUL_SHUTDOWN);
                    handle.stop_requesting.cancel();
                }
                Sig::Graceful | Sig::Forceful(_) => {
                    let stop = ForcefulStop {
                        sig,
                        shutdown_timeout: current.shutdown_timeout_duration(),
                        after_graceful: graceful,
                    };
                    stop.run(d, handle, sup_task, signals).await;
                    break;
                }
            }
        }
    }
}

/// SIGHUP: the new config, or `None` (logged) if it does not load.
fn reload_config(d: &Daemon) -> Option<Arc<config::Config>> {
    let loaded = config::load(&d.path)
        .map_err(|e| e.to_string())
        .and_then(|mut l| {
            l.config.apply_cli_user(d.cli_user.as_deref());
            check_job_users(&l.config, &d.path)?;
            Ok(l)
        });
    match loaded {
        Ok(l) => {
            for w in &l.warnings {
                tracing::warn!("{w}");
            }
            for r in &l.config.runners {
                crate::logging::redact(r.token.expose());
            }
            crate::sentry_report::warn_if_dsn_changed(&d.cfg, &l.config);
            if let Some(sentry) = &d.sentry {
                sentry.reloaded(&l.config);
            }
            d.metrics.configuration_loaded(true);
            if l.config.runners.is_empty() {
                tracing::warn!("{}", msg::CONFIG_WITHOUT_RUNNERS);
            }
            let new = Arc::new(l.config);
            apply_config_metrics(&d.metrics, &new, &d.system_id);
            Some(new)
        }
        Err(e) => {
            d.metrics.configuration_loaded(false);
            tracing::error!({ schema::ERROR } = %e, "{}", msg::CONFIG_RELOAD_FAILED);
            None
        }
    }
}

/// Every shell runner's job user exists and the runner may switch to it
/// (`job_user::check`); the error names the file and each problem.
fn check_job_users(cfg: &config::Config, path: &Path) -> Result<(), String> {
    crate::job_user::check(cfg, nix::unistd::geteuid().is_root())
        .map_err(|problems| format!("{}: job user: {}", path.display(), problems.join("; ")))
}

/// A forceful shutdown: abort the jobs, wait for them up to `shutdown_timeout`
/// or a second stop signal.
struct ForcefulStop {
    sig: Sig,
    shutdown_timeout: Duration,
    /// A graceful shutdown was asked for first.
    after_graceful: bool,
}

impl ForcefulStop {
    async fn run(
        self,
        d: &Daemon,
        handle: &SupervisorHandle,
        sup_task: &mut JoinHandle<()>,
        signals: &mut Signals,
    ) {
        d.state.set(ProcessState::ForcefulShutdown);
        tracing::warn!(
            { schema::SIGNAL } = self.sig.name(),
            { schema::SHUTDOWN_TIMEOUT_S } = self.shutdown_timeout.as_secs(),
            "{}",
            msg::FORCEFUL_SHUTDOWN
        );
        handle.stop_requesting.cancel();
        handle.force.cancel();
        tokio::select! {
            done = tokio::time::timeout(self.shutdown_timeout, &mut *sup_task) => {
                if done.is_err() {
                    tracing::error!("{}", msg::SHUTDOWN_TIMED_OUT);
                } else if !self.after_graceful {
                    tracing::warn!("{}", msg::GRACEFUL_SHUTDOWN_NOT_FINISHED);
                }
            }
            again = signals.next_stop() => {
                tracing::warn!({ schema::SIGNAL } = again.name(), "{}", msg::FORCED_EXIT);
            }
        }
    }
}

/// `gitlab_runner_concurrent` and `gitlab_runner_limit` from the config.
pub fn apply_config_metrics(metrics: &Metrics, cfg: &config::Config, system_id: &str) {
    metrics.set_concurrent(cfg.concurrent);
    for r in &cfg.runners {
        metrics.set_limit(
            &termgate::api::short_token(r.token.expose()),
            &r.name,
            system_id,
            r.limit,
        );
    }
}
