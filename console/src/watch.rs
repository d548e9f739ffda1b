//! `termgate` (no subcommand): the live fleet view over the runners of
//! console.toml, `--runner` flags, or a Prometheus server.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::access::OperatorAccess;
use crate::attach::Attacher;
use crate::cli::WatchArgs;
use crate::config::{parse_runner_flag, ConsoleConfig};
use crate::model::{RunnerSource, RunnerState, Snapshot};
use crate::scrape::poller::PollOptions;
use crate::scrape::sessions::SessionTarget;

/// console.toml, if `--config` names one.
pub fn load_config(args: &WatchArgs) -> Result<Option<ConsoleConfig>> {
    args.config
        .as_ref()
        // The error names the file.
        .map(|p| ConsoleConfig::load(p).map_err(anyhow::Error::from))
        .transpose()
}

/// Sources and options from the flags and the config file.
pub fn sources(args: &WatchArgs) -> Result<(Vec<RunnerSource>, PollOptions)> {
    sources_from(args, load_config(args)?.as_ref())
}

/// Sources and options from the flags and an already loaded config.
pub fn sources_from(
    args: &WatchArgs,
    cfg: Option<&ConsoleConfig>,
) -> Result<(Vec<RunnerSource>, PollOptions)> {
    let mut sources = cfg.map(ConsoleConfig::sources).unwrap_or_default();
    for flag in &args.runners {
        let s = parse_runner_flag(flag)?;
        sources.retain(|o| o.name != s.name);
        sources.push(s);
    }
    for flag in &args.logs {
        let Some((name, glob)) = flag.split_once('=') else {
            bail!("--logs {flag:?}: expected NAME=GLOB");
        };
        match sources.iter_mut().find(|s| s.name == name) {
            Some(s) => s.logs.push(glob.to_string()),
            None => bail!("--logs {flag:?}: no runner named {name:?} (add it with --runner)"),
        }
    }
    let mut opts = cfg.map(ConsoleConfig::poll_options).unwrap_or_default();
    if let Some(i) = args.interval {
        opts.interval = i;
    }
    Ok((sources, opts))
}

/// Start polling (direct or via Prometheus, and the operator APIs of
/// `access`) and the hub.
pub fn start(
    args: &WatchArgs,
    sources: Vec<RunnerSource>,
    access: &[OperatorAccess],
    opts: PollOptions,
    shutdown: &CancellationToken,
) -> watch::Receiver<Snapshot> {
    let interval = opts.interval;
    let log_sources: Vec<(String, Vec<String>)> = sources
        .iter()
        .map(|s| (s.name.clone(), s.logs.clone()))
        .collect();
    let runners: watch::Receiver<Vec<RunnerState>> = match &args.prometheus {
        Some(url) => crate::scrape::prometheus::spawn(url.clone(), opts, shutdown.clone()),
        None => crate::scrape::poller::spawn(sources, opts, shutdown.clone()),
    };
    let sessions = crate::scrape::sessions::spawn(
        access.iter().map(SessionTarget::from).collect(),
        opts,
        shutdown.clone(),
    );
    crate::hub::spawn(runners, sessions, log_sources, interval, shutdown.clone())
}

/// The fleet view until `q` or a signal; `cfg` is [`load_config`]'s.
pub fn run(args: WatchArgs, cfg: Option<&ConsoleConfig>) -> Result<()> {
    let (sources, opts) = sources_from(&args, cfg)?;
    if sources.is_empty() && args.prometheus.is_none() {
        bail!(
            "no runners to watch: give --runner NAME=URL, --config console.toml (see assets/console.example.toml) or --prometheus URL; try `termgate demo`"
        );
    }
    crate::tui::require_terminal(
        "for a one-shot view use `termgate tally`, `termgate sessions` or `termgate report`",
    )?;
    let access = crate::access::for_sources(&sources, cfg, false);
    let detach = cfg.and_then(|c| c.detach_key).unwrap_or_default();
    let attacher = Attacher::new(crate::access::endpoints(&access), detach);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        let snaps = start(&args, sources, &access, opts, &shutdown);
        let res = crate::tui::run_tui(snaps, shutdown.clone(), attacher, None).await;
        shutdown.cancel();
        res
    })?;
    // Do not wait for blocked poll requests: they time out on their own.
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}
