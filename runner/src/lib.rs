//! termgate-runner: a GitLab runner with interactive web terminals.
//!
//! `main.rs` is a thin wrapper over [`main`], which parses [`cli::Cli`] and
//! dispatches to the command's module; tests call the library in-process or
//! spawn the binary. See ARCHITECTURE.md for the data flow.

pub mod builds;
pub mod cli;
pub mod config;
pub mod coordinator;
pub mod daemon;
pub mod doctor;
pub mod executor;
pub mod job;
pub mod job_user;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod operator_cmd;
pub mod rlimit;
pub mod sentry_report;
pub mod session;
pub mod signals;
pub mod system_id;
pub mod trace;
pub mod version;

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, Parser as _};
use termgate::logschema::{self as schema, msg};

use crate::cli::{Cli, Command};
use crate::logging::LogSettings;

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("FATAL: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(dispatch(cli));
    // Dropping the runtime drops what is left of its tasks; terminals among
    // them queue their last session sweep, which must run before exit.
    drop(rt);
    crate::executor::shell::pty::flush_signals(std::time::Duration::from_secs(5));
    let code = match res {
        Ok(code) => code,
        Err(e) => {
            tracing::error!({ schema::ERROR } = %format!("{e:#}"), "{}", msg::COMMAND_FAILED);
            eprintln!("FATAL: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // Last: the error above is among what goes to Sentry.
    crate::sentry_report::finish();
    code
}

/// Runs the command; its exit status is 0 unless it failed, or `doctor`
/// found a failing check (1).
async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let log = LogSettings {
        format: cli.log_format.clone(),
        level: if cli.debug {
            Some("debug".into())
        } else {
            cli.log_level.clone()
        },
    };
    let done = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Run(args) => done(crate::daemon::run(args, log).await),
        Command::Register(args) => {
            let _log = log.init(None)?;
            done(crate::manage::register(args).await)
        }
        Command::Verify(args) => {
            let _log = log.init(None)?;
            done(crate::manage::verify(args).await)
        }
        Command::Unregister(args) => {
            let _log = log.init(None)?;
            done(crate::manage::unregister(args).await)
        }
        Command::List(args) => {
            let _log = log.init(None)?;
            done(crate::manage::list(args))
        }
        Command::Doctor(args) => Ok(if crate::doctor::run(args).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::Operator(cmd) => {
            let _log = log.init(None)?;
            done(crate::operator_cmd::run(cmd))
        }
        Command::Completions(args) => done(print_bytes(&termgate::clidocs::completions(
            args.shell,
            Cli::command(),
        ))),
        Command::Man => {
            let page =
                termgate::clidocs::man_page(Cli::command()).context("rendering the man page")?;
            done(print_bytes(&page))
        }
    }
}

/// Writes `bytes` to stdout; a closed pipe is an error, not a panic.
fn print_bytes(bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to stdout")
}
