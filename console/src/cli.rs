//! Command line of `termgate`.

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "termgate",
    version,
    about = "termgate operations console: watch runners' terminals, jobs and errors",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where the fleet view gets its runners (the default command).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WatchArgs {
    /// console.toml with [[runners]] (name, metrics_url, session_url, logs).
    #[arg(long, short = 'c', env = "TERMGATE_CONSOLE_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// A runner to watch: NAME=METRICS_URL (repeatable).
    #[arg(long = "runner", value_name = "NAME=URL")]
    pub runners: Vec<String>,
    /// Log files of a runner: NAME=GLOB (repeatable).
    #[arg(long = "logs", value_name = "NAME=GLOB")]
    pub logs: Vec<String>,
    /// Discover runners from a Prometheus server's `up` series instead.
    #[arg(long)]
    pub prometheus: Option<String>,
    /// Poll interval (default 2s, or console.toml's).
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local coordinator and a runner, feed them jobs, and show what happens.
    Demo(DemoArgs),
    /// Tally errors (warnings and above) in runner log files by fingerprint.
    Tally(crate::tally_cmd::TallyArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Print a summary and exit instead of following until Ctrl-C.
    #[arg(long)]
    pub headless: bool,
    /// Stop after this long (e.g. 10s, 2m). Default: until Ctrl-C (headless: 20s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Keep the demo's files (configs, logs) in this directory.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// `10s`, `2m`, `1h30m`, `7d`, `500ms` or plain seconds: the shared parser,
/// with a hint of what to type.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    termgate::duration::parse_cli(s)
        .map_err(|e| format!("{e} (use ms, s, m, h or d, e.g. 10s, 1h30m, 7d)"))
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        None => crate::watch::run(cli.watch),
        Some(Command::Demo(args)) => crate::demo::run(args),
        Some(Command::Tally(args)) => crate::tally_cmd::run(args),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("termgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
