//! `termgate-coordinator`: the local coordinator as a process. Prints one
//! line (`coordinator listening on URL  registration token: TOKEN`), serves
//! until SIGTERM, SIGINT or SIGQUIT (SIGHUP is ignored), then stops.

use anyhow::Context as _;
use clap::Parser;
use termgate_coordinator::CoordinatorArgs;

/// Libraries kept at warn whatever `--log-level` (none prints a request's
/// headers), as the runner does.
const QUIET_LIBRARIES: &str = "hyper=warn,hyper_util=warn,reqwest=warn,h2=warn,rustls=warn,tungstenite=warn,tokio_tungstenite=warn,axum=warn,tower=warn,tower_http=warn,mio=warn";

#[derive(Debug, Parser)]
#[command(
    name = "termgate-coordinator",
    version,
    about = "A local GitLab-runner-API coordinator (demos, tests)"
)]
struct Cli {
    /// Log format: runner or text (both plain text lines on stderr).
    #[arg(long, env = "LOG_FORMAT", default_value = "runner")]
    log_format: String,
    /// Log level: debug, info, warn, error, fatal, panic.
    #[arg(long, short = 'l', env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Same as --log-level debug.
    #[arg(long, env = "RUNNER_DEBUG")]
    debug: bool,
    #[command(flatten)]
    args: CoordinatorArgs,
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    if !matches!(cli.log_format.as_str(), "runner" | "text") {
        anyhow::bail!(
            "log format {:?}: the coordinator logs runner or text",
            cli.log_format
        );
    }
    let asked = cli.log_level.to_ascii_lowercase();
    let level = if cli.debug {
        "debug"
    } else {
        match asked.as_str() {
            l @ ("trace" | "debug" | "info" | "error") => l,
            "warn" | "warning" => "warn",
            "fatal" | "panic" => "error",
            other => anyhow::bail!("log level {other:?}"),
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},{QUIET_LIBRARIES}"))
        .context("log filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Resolves at the first SIGTERM, SIGINT or SIGQUIT; SIGHUP is ignored.
async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut quit = signal(SignalKind::quit()).context("installing SIGQUIT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = quit.recv() => return Ok(()),
            _ = hup.recv() => {}
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let res = (|| {
        init_logging(&cli)?;
        let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        rt.block_on(async {
            let shutdown = tokio_util::sync::CancellationToken::new();
            let s = shutdown.clone();
            let signals = tokio::spawn(async move {
                let res = stop_signal().await;
                s.cancel();
                res
            });
            let res = termgate_coordinator::run(cli.args, shutdown).await;
            signals.abort();
            res
        })
    })();
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "command failed");
            eprintln!("FATAL: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
