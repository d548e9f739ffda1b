//! `termgate-runner run`: load the config, start logging, the metrics server
//! and the job supervisor, then follow signals until shutdown.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::builds::{Builds, ProcessState, ProcessStateCell};
use crate::cli::RunArgs;
use crate::config;
use crate::coordinator::Client;
use crate::job::supervisor::{ClientFactory, JobEnvTemplate};
use crate::job::Supervisor;
use crate::logging::LogSettings;
use crate::metrics::Metrics;
use crate::signals::{Sig, Signals};

pub async fn run(args: RunArgs, log: LogSettings) -> Result<()> {
    let early_hangup = crate::signals::EarlyHangup::catch()?;
    if let Some(dir) = &args.working_directory {
        std::env::set_current_dir(dir)
            .with_context(|| format!("changing to working directory {}", dir.display()))?;
    }
    let path = args.config.path();
    // Nothing starts half-configured: a bad config stops here.
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let _guard = log.init_with(Some(&loaded.config), Some(metrics.error_counter()))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // Before any socket or terminal is opened; jobs get the old limit back.
    match crate::rlimit::raise_nofile() {
        Ok(r) if r.to > r.from => {
            tracing::info!(from = r.from, to = r.to, "Raised the open files limit")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "Could not raise the open files limit"),
    }
    let cfg = Arc::new(loaded.config);
    let system_id = crate::system_id::load_or_create(&path)?;
    apply_config_metrics(&metrics, &cfg, &system_id);
    metrics.configuration_loaded(true);
    // Containers, networks and volumes a crashed run left behind.
    crate::executor::docker::remove_stale(&cfg).await;

    let shutdown_servers = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let listen = args
        .listen_address
        .clone()
        .or_else(|| cfg.metrics_listen_address());
    let mut metrics_task = None;
    if let Some(addr) = listen {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding metrics server to {addr}"))?;
        let local = listener.local_addr().context("metrics server address")?;
        tracing::info!(address = %local, "Metrics server listening");
        metrics_task = Some(tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            builds.clone(),
            state.clone(),
            ready.clone(),
            shutdown_servers.clone(),
        )));
    } else {
        tracing::info!("listen_address not defined, metrics & debug endpoints disabled");
    }

    // The session server (interactive terminals), when configured.
    let mut session_server = None;
    if let Some(scfg) = cfg.enabled_session_server() {
        let handle = crate::session::server::start(scfg, metrics.clone(), shutdown_servers.clone())
            .await
            .context("starting the session server")?;
        session_server = Some(handle);
    } else {
        tracing::info!("[session_server].listen_address not defined, session endpoints disabled");
    }
    let sessions = session_server.as_ref().map(|h| h.registry.clone());

    let metrics_obs = metrics.clone();
    let factory: ClientFactory = Arc::new(move |r: &config::RunnerConfig| {
        let short = termgate::api::short_token(r.token.expose());
        let m = metrics_obs.clone();
        let sid = String::new();
        Ok(
            Client::new(&r.url, r.tls_ca_file.as_deref().map(Path::new))?.with_observer(Arc::new(
                move |ep, method, status, elapsed| {
                    m.observe_api(ep, method, status, &short, &sid, elapsed)
                },
            )),
        )
    });
    let sup = Supervisor {
        env_template: JobEnvTemplate {
            metrics: metrics.clone(),
            builds: builds.clone(),
            system_id: system_id.clone(),
            info: crate::version::version_info("shell", "bash"),
            client_factory: factory,
            update_interval: crate::coordinator::trace::DEFAULT_INTERVAL,
        },
        config: cfg.clone(),
        sessions: sessions.clone(),
    };
    let handle = sup.handle();
    let mut sup_task = tokio::spawn(sup.run(handle.clone()));
    state.set(ProcessState::Running);
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        builds = 0,
        max_builds = cfg.concurrent,
        "Configuration loaded"
    );

    let mut signals = Signals::install_with(early_hangup)?;
    let mut graceful = false;
    // The config in force: `shutdown_timeout` is read from it when a stop
    // signal comes, so a reload changes it (gitlab-runner reads its current
    // config there too).
    let mut current = cfg.clone();
    loop {
        tokio::select! {
            _ = &mut sup_task => break,
            sig = signals.next() => match sig {
                Sig::Reload => {
                    match config::load(&path) {
                        Ok(l) => {
                            for w in &l.warnings {
                                tracing::warn!("{w}");
                            }
                            for r in &l.config.runners {
                                crate::logging::redact(r.token.expose());
                            }
                            metrics.configuration_loaded(true);
                            let new = Arc::new(l.config);
                            apply_config_metrics(&metrics, &new, &system_id);
                            current = new.clone();
                            handle.reload(new);
                        }
                        Err(e) => {
                            metrics.configuration_loaded(false);
                            tracing::error!(error = %e, "Failed to load config, keeping the previous one");
                        }
                    }
                }
                Sig::Graceful if !graceful => {
                    graceful = true;
                    state.set(ProcessState::GracefulShutdown);
                    tracing::warn!("Starting graceful shutdown, waiting for builds to finish");
                    handle.stop_requesting.cancel();
                }
                Sig::Graceful | Sig::Forceful(_) => {
                    let name = sig.name();
                    let shutdown_timeout = current.shutdown_timeout_duration();
                    state.set(ProcessState::ForcefulShutdown);
                    tracing::warn!(
                        signal = name,
                        shutdown_timeout_s = shutdown_timeout.as_secs(),
                        "Starting forceful shutdown"
                    );
                    handle.stop_requesting.cancel();
                    handle.force.cancel();
                    tokio::select! {
                        done = tokio::time::timeout(shutdown_timeout, &mut sup_task) => {
                            if done.is_err() {
                                tracing::error!("shutdown timed out");
                            } else if !graceful {
                                tracing::warn!("Graceful shutdown not finished properly. To gracefully clean up running plugins please use SIGQUIT (ctrl-\\) instead of SIGINT (ctrl-c)");
                            }
                        }
                        again = signals.next_stop() => {
                            tracing::warn!(signal = again.name(), "Forced exit with a second stop signal");
                        }
                    }
                    break;
                }
            }
        }
    }
    // The session server goes last, as upstream's does.
    if let Some(reg) = &sessions {
        reg.close_all(termgate::metrics::close_reason::RUNNER_SHUTDOWN);
    }
    shutdown_servers.cancel();
    if let Some(h) = &session_server {
        let _ = tokio::time::timeout(Duration::from_secs(5), h.wait()).await;
    }
    if let Some(t) = metrics_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    tracing::info!("Can exit now!");
    Ok(())
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
