//! termgate: the operations console. [`main`] parses the command line
//! ([`cli`]), sets up the console's own log ([`logging`]) and runs the
//! command: the live fleet view ([`watch`], the default), `attach`
//! ([`attach_cmd`]), `tally` ([`tally_cmd`]), `report` ([`report`]), `demo` ([`demo`]), `replay`
//! ([`replay`]), `trust` ([`trust_cmd`]) or `sessions` ([`sessions_cmd`]).

pub mod access;
pub mod app;
pub mod attach;
pub mod attach_cmd;
pub mod cli;
pub mod config;
pub mod demo;
pub mod detach_key;
pub mod duration_arg;
pub mod event;
pub mod hub;
pub mod logging;
pub mod logs;
pub mod model;
pub mod operator_client;
pub mod panic_hook;
pub mod replay;
pub mod report;
pub mod scrape;
pub mod session_text;
pub mod sessions_cmd;
pub mod tally_cmd;
pub mod terminal_cmd;
pub mod text;
pub mod trust_cmd;
pub mod tui;
pub mod ui;
pub mod watch;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};

use crate::cli::{Cli, Command, LogArgs};

/// The `termgate` binary.
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            // Not `eprintln!`: it panics when the terminal is gone (SIGHUP).
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "termgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let cfg = watch::load_config(&cli.watch)?;
            let from_config = cfg.as_ref().and_then(|c| c.log_file.as_deref());
            start_log(&cli.log, from_config, "watch");
            watch::run(cli.watch, cfg.as_ref())
        }
        Some(Command::Attach(args)) => {
            let cfg = attach_cmd::load_config(&args)?;
            start_log(&cli.log, cfg.log_file.as_deref(), "attach");
            attach_cmd::run(args, &cfg)
        }
        Some(Command::Terminal(args)) => {
            start_log(&cli.log, None, "terminal");
            terminal_cmd::run(args)
        }
        Some(Command::Demo(args)) => {
            start_log(&cli.log, None, "demo");
            demo::run(args)
        }
        Some(Command::Report(args)) => {
            start_log(&cli.log, None, "report");
            report::run(args)
        }
        Some(Command::Tally(args)) => {
            start_log(&cli.log, None, "tally");
            tally_cmd::run(args)
        }
        Some(Command::Replay(args)) => {
            start_log(&cli.log, None, "replay");
            replay::run(args)
        }
        Some(Command::Trust(args)) => {
            start_log(&cli.log, None, "trust");
            trust_cmd::run(args)
        }
        Some(Command::Sessions(args)) => {
            start_log(&cli.log, None, "sessions");
            sessions_cmd::run(args)
        }
        Some(Command::Completions(args)) => {
            print_bytes(&termgate::clidocs::completions(args.shell, Cli::command()))
        }
        Some(Command::Man) => print_bytes(
            &termgate::clidocs::man_page(Cli::command()).context("rendering the man page")?,
        ),
    }
}

/// Writes `bytes` to stdout; a closed pipe is an error, not a panic.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Logging before anything is drawn: `--log-file`, else console.toml's
/// `log_file`, else the default path.
fn start_log(log: &LogArgs, from_config: Option<&Path>, command: &str) {
    let path = log.log_file.as_deref().or(from_config);
    if let Some(file) = logging::init(path, log.log_level) {
        tracing::info!(
            command,
            version = env!("CARGO_PKG_VERSION"),
            log_file = %file.display(),
            "termgate console started"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `tally` run through the real dispatch writes its start line to
    /// `--log-file` (this is the only test that sets the global subscriber).
    #[test]
    fn a_run_writes_to_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("state/termgate/console.log");
        let fixture = logs::fixtures_dir().join("docs-log-format-json.log");
        let cli = Cli::try_parse_from([
            "termgate".as_ref(),
            "tally".as_ref(),
            "--json".as_ref(),
            "--top".as_ref(),
            "1".as_ref(),
            "--logs".as_ref(),
            fixture.as_os_str(),
            "--log-file".as_ref(),
            log.as_os_str(),
        ])
        .unwrap();
        run(cli).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let line = text.lines().next().unwrap_or_default();
        assert!(line.contains("INFO"), "{text}");
        assert!(line.contains("termgate console started"), "{text}");
        assert!(line.contains("command=\"tally\""), "{text}");
    }
}
