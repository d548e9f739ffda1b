//! `register`, `verify`, `unregister`, `list`: managing runners in
//! `config.toml` and on the coordinator.

use std::path::Path;

use anyhow::{bail, Context, Result};
use termgate::api::{
    short_token, RegisterRunnerRequest, UnregisterRunnerRequest, VerifyRunnerRequest,
};
use termgate::logschema::{self as schema, msg};

use crate::cli::{prompt, ConfigArg, RegisterArgs, UnregisterArgs, VerifyArgs};
use crate::config::{self, Config, RunnerConfig, Secret};
use crate::coordinator::Client;
use crate::version::version_info;

/// Load the config if the file exists, else a fresh one like gitlab-runner
/// writes on first registration.
fn load_or_new(path: &Path) -> Result<Config> {
    if path.exists() {
        let loaded = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        Ok(loaded.config)
    } else {
        Ok(Config::default())
    }
}

pub async fn register(args: RegisterArgs) -> Result<()> {
    let path = args.config.path();
    let interactive = !args.non_interactive;
    let mut cfg = load_or_new(&path)?;
    let url = prompt(
        "GitLab instance URL (for example, https://gitlab.com/)",
        args.url.clone(),
        interactive,
    )?;
    let executor = prompt(
        "Executor (shell, docker)",
        args.executor.clone().or(Some("shell".into())),
        interactive,
    )?;
    if !matches!(executor.as_str(), "shell" | "docker") {
        bail!("executor {executor:?} is not supported: termgate implements shell and docker");
    }
    let name = args
        .name
        .clone()
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
        })
        .unwrap_or_else(|| "termgate-runner".into());
    let client = Client::new(&url, None)?;
    let system_id = crate::system_id::load_or_create(&path)?;
    let info = version_info(&executor, args.shell.as_deref().unwrap_or("bash"));

    let (id, token) = match (&args.token, &args.registration_token) {
        (Some(token), _) => {
            // A runner created in GitLab: only verify, as gitlab-runner does.
            if args.tag_list.is_some() || args.run_untagged || args.locked {
                tracing::warn!("{}", msg::REGISTRATION_FLAGS_IGNORED);
            }
            let res = client
                .verify_runner(&VerifyRunnerRequest {
                    token: token.clone(),
                    system_id,
                    info: Some(info.clone()),
                })
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("Verifying runner... is not valid: the token was rejected")
                })?;
            tracing::info!(
                { schema::RUNNER } = %short_token(token),
                "{}",
                msg::VERIFYING_RUNNER_VALID
            );
            (
                res.id,
                if res.token.is_empty() {
                    token.clone()
                } else {
                    res.token
                },
            )
        }
        (None, reg) => {
            let reg = prompt("Registration token", reg.clone(), interactive)?;
            let res = client
                .register_runner(&RegisterRunnerRequest {
                    token: reg,
                    description: name.clone(),
                    info: info.clone(),
                    tag_list: args.tag_list.clone().unwrap_or_default(),
                    run_untagged: args.run_untagged,
                    locked: args.locked,
                    paused: args.paused,
                    maximum_timeout: args.maximum_timeout.unwrap_or(0),
                    ..Default::default()
                })
                .await?;
            (res.id, res.token)
        }
    };
    if token.is_empty() {
        bail!("the coordinator returned no runner token");
    }
    crate::logging::redact(&token);
    let mut runner = RunnerConfig {
        name: name.clone(),
        url: url.clone(),
        id,
        token: Secret::new(token.clone()),
        executor: executor.clone(),
        shell: args.shell.clone(),
        builds_dir: args.builds_dir.clone().map(std::path::PathBuf::from),
        limit: args.limit.unwrap_or(0),
        ..Default::default()
    };
    if executor == "docker" {
        let image = prompt(
            "Default Docker image (for example, alpine:latest)",
            args.docker_image.clone(),
            interactive,
        )?;
        runner.docker = Some(config::DockerConfig {
            image: Some(image),
            ..Default::default()
        });
    }
    if cfg.concurrent == 0 {
        cfg.concurrent = 1;
    }
    cfg.runners.push(runner);
    config::save(&path, &cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(
        { schema::RUNNER } = %short_token(&token),
        { schema::RUNNER_NAME } = %name,
        "{}",
        msg::RUNNER_REGISTERED
    );
    println!(
        "Runner registered successfully: {name} ({}) in {}",
        short_token(&token),
        path.display()
    );
    Ok(())
}

pub async fn verify(args: VerifyArgs) -> Result<()> {
    let path = args.config.path();
    let mut cfg = load_existing(&path)?;
    // Verifying only looks: it leaves no system id beside a config it was
    // pointed at.
    let system_id = crate::system_id::load_or_generate(&path);
    let mut keep = Vec::new();
    let mut invalid = 0;
    for r in cfg.runners.drain(..) {
        if args.name.as_deref().is_some_and(|n| n != r.name) {
            keep.push(r);
            continue;
        }
        let short = short_token(r.token.expose());
        let client = Client::new(&r.url, r.tls_ca_file.as_deref().map(Path::new))?;
        let res = client
            .verify_runner(&VerifyRunnerRequest {
                token: r.token.expose().to_string(),
                system_id: system_id.clone(),
                info: Some(version_info(&r.executor, "bash")),
            })
            .await;
        match res {
            Ok(Some(_)) => {
                tracing::info!(
                    { schema::RUNNER } = %short,
                    { schema::RUNNER_NAME } = %r.name,
                    "{}",
                    msg::VERIFYING_RUNNER_VALID
                );
                keep.push(r);
            }
            Ok(None) => {
                invalid += 1;
                tracing::error!(
                    { schema::RUNNER } = %short,
                    { schema::RUNNER_NAME } = %r.name,
                    "{}",
                    msg::VERIFYING_RUNNER_NOT_VALID
                );
                if !args.delete {
                    keep.push(r);
                }
            }
            Err(e) => {
                invalid += 1;
                tracing::error!(
                    { schema::RUNNER } = %short,
                    { schema::RUNNER_NAME } = %r.name,
                    { schema::ERROR } = %format!("{e:#}"),
                    "{}",
                    msg::VERIFYING_RUNNER_FAILED
                );
                keep.push(r);
            }
        }
    }
    let removed = cfg.runners.len() + keep.len();
    cfg.runners = keep;
    if args.delete && removed != cfg.runners.len() {
        config::save(&path, &cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if invalid > 0 && !args.delete {
        bail!("{invalid} runner(s) failed verification");
    }
    Ok(())
}

fn load_existing(path: &Path) -> Result<Config> {
    if !path.exists() {
        bail!(
            "config file {} does not exist: register a runner first",
            path.display()
        );
    }
    load_or_new(path)
}

pub async fn unregister(args: UnregisterArgs) -> Result<()> {
    let path = args.config.path();
    let mut cfg = load_existing(&path)?;
    if !args.all_runners && args.name.is_none() && args.token.is_none() {
        bail!("say which runner: --name, --token or --all-runners");
    }
    let system_id = crate::system_id::load_or_create(&path)?;
    let mut keep = Vec::new();
    let mut done = 0;
    for r in cfg.runners.drain(..) {
        let selected = args.all_runners
            || args.name.as_deref() == Some(r.name.as_str())
            || args.token.as_deref() == Some(r.token.expose());
        if !selected {
            keep.push(r);
            continue;
        }
        let client = Client::new(&r.url, r.tls_ca_file.as_deref().map(Path::new))?;
        let mut req = UnregisterRunnerRequest {
            token: r.token.expose().to_string(),
            system_id: String::new(),
        };
        // Runners created in GitLab (glrt-) only lose this manager.
        if r.token.expose().starts_with("glrt-") {
            req.system_id = system_id.clone();
        }
        match client.unregister_runner(&req).await {
            Ok(true) => {
                done += 1;
                tracing::info!(
                    { schema::RUNNER } = %short_token(r.token.expose()),
                    { schema::RUNNER_NAME } = %r.name,
                    "{}",
                    msg::UNREGISTERING_SUCCEEDED
                );
            }
            Ok(false) => {
                done += 1;
                tracing::warn!(
                    { schema::RUNNER } = %short_token(r.token.expose()),
                    { schema::RUNNER_NAME } = %r.name,
                    "{}",
                    msg::UNREGISTERING_NOT_FOUND
                );
            }
            Err(e) => {
                tracing::error!(
                    { schema::RUNNER } = %short_token(r.token.expose()),
                    { schema::RUNNER_NAME } = %r.name,
                    { schema::ERROR } = %format!("{e:#}"),
                    "{}",
                    msg::UNREGISTERING_FAILED
                );
                keep.push(r);
            }
        }
    }
    cfg.runners = keep;
    config::save(&path, &cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    if done == 0 {
        bail!("no runner was unregistered");
    }
    Ok(())
}

pub fn list(args: ConfigArg) -> Result<()> {
    let path = args.path();
    let cfg =
        load_existing(&path).with_context(|| format!("listing runners of {}", path.display()))?;
    eprintln!(
        "Listing configured runners                          ConfigFile={}",
        path.display()
    );
    for r in &cfg.runners {
        // The short token only: full tokens never go to a terminal or log.
        println!(
            "{:<50} Executor={} Token={} URL={}",
            r.name,
            if r.executor.is_empty() {
                "shell"
            } else {
                &r.executor
            },
            short_token(r.token.expose()),
            r.url
        );
    }
    Ok(())
}
