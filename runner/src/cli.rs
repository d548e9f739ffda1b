//! Command line arguments: `run`, `register`, `verify`, `unregister`, `list`,
//! `doctor`, `operator add|list|remove`, `completions`, `man`. Flags follow gitlab-runner's where they exist.
//! Only argument types and helpers live here; `lib.rs` dispatches.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "termgate-runner",
    version,
    about = "A GitLab runner with interactive web terminals"
)]
pub struct Cli {
    /// Log format: runner (upstream default), text or json.
    #[arg(long, global = true, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log level: debug, info, warn, error, fatal, panic.
    #[arg(long, short = 'l', global = true, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Same as --log-level debug.
    #[arg(long, global = true, env = "RUNNER_DEBUG")]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the runner daemon: request jobs, run them, serve metrics and terminals.
    Run(RunArgs),
    /// Register a runner with GitLab and add it to config.toml.
    Register(RegisterArgs),
    /// Check that the configured runners' tokens are valid.
    Verify(VerifyArgs),
    /// Remove runners from GitLab and from config.toml.
    Unregister(UnregisterArgs),
    /// List the configured runners.
    List(ConfigArg),
    /// Check the config and the session server: a pass/warn/fail table
    /// (exit status 1 when a check fails).
    #[command(long_about = DOCTOR_ABOUT)]
    Doctor(DoctorArgs),
    /// Manage the operators of the session server's operator API.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Print a shell completion script (bash, zsh, fish) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: termgate-runner man > termgate-runner.1
    Man,
}

const DOCTOR_ABOUT: &str = "Check the config and the session server, as GitLab will use it: the \
advertise address against where the coordinator is, listen and advertise ports, the \
certificate (SAN, expiry, fingerprint), a TLS handshake with the listen address, the operator \
API's listener and file, Docker hardening, the user shell jobs run as, and concurrent against \
the open-files limit. Each check passes, warns or fails; the exit status is 1 when one fails, \
else 0.";

#[derive(Debug, Args, Clone)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the checks as JSON ({"ok", "counts", "checks": [{"name", "status", "detail", "hint", "subject"}], "skipped"}).
    #[arg(long)]
    pub json: bool,
    /// The `--user` that `run` is started with, if any (the packaged
    /// systemd unit: `run --user termgate-runner`): shell jobs' user is
    /// then checked as `run` will use it.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: termgate::clidocs::Shell,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Add an operator and print its token (shown only this once).
    Add(OperatorAddArgs),
    /// List the operators: name, role, when added.
    List(ConfigArg),
    /// Remove an operator: its token stops working.
    Remove(OperatorRemoveArgs),
}

#[derive(Debug, Args, Clone)]
pub struct OperatorAddArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Operator name: 1-64 characters of A-Z a-z 0-9 . _ @ -
    pub name: String,
    /// observe: list sessions and watch them; control: also join a terminal
    /// and open shells.
    #[arg(long, value_parser = ["observe", "control"])]
    pub role: String,
}

#[derive(Debug, Args, Clone)]
pub struct OperatorRemoveArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Name of the operator to remove.
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// Config file (default: /etc/gitlab-runner/config.toml as root, else ~/.gitlab-runner/config.toml).
    #[arg(long, short = 'c', env = "CONFIG_FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    pub fn path(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(default_config_path)
    }
}

pub fn default_config_path() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/etc/gitlab-runner/config.toml")
    } else {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".gitlab-runner").join("config.toml")
    }
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Metrics/debug server address (overrides `listen_address`).
    #[arg(long, env = "LISTEN_ADDRESS")]
    pub listen_address: Option<String>,
    /// Change to this directory before running (builds go below it by default).
    #[arg(long, short = 'd')]
    pub working_directory: Option<PathBuf>,
    /// Run shell-executor jobs as this user (overrides the config's `user`;
    /// a runner's own `[[runners]] user` still wins). Needs root.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// GitLab instance URL.
    #[arg(long, short = 'u', env = "CI_SERVER_URL")]
    pub url: Option<String>,
    /// Registration token (legacy registration).
    #[arg(long, short = 'r', env = "REGISTRATION_TOKEN")]
    pub registration_token: Option<String>,
    /// Runner authentication token (`glrt-…`) of a runner created in GitLab.
    #[arg(long, short = 't', env = "CI_SERVER_TOKEN")]
    pub token: Option<String>,
    /// Runner name.
    #[arg(long, env = "RUNNER_NAME", visible_alias = "description")]
    pub name: Option<String>,
    /// Executor: shell or docker.
    #[arg(long, env = "RUNNER_EXECUTOR")]
    pub executor: Option<String>,
    /// Comma-separated tags (registration token only).
    #[arg(long, env = "RUNNER_TAG_LIST")]
    pub tag_list: Option<String>,
    /// Run jobs without tags (registration token only).
    #[arg(long, env = "REGISTER_RUN_UNTAGGED")]
    pub run_untagged: bool,
    /// Lock the runner to the project (registration token only).
    #[arg(long, env = "REGISTER_LOCKED")]
    pub locked: bool,
    /// Register paused.
    #[arg(long, env = "REGISTER_PAUSED")]
    pub paused: bool,
    /// Maximum job timeout in seconds.
    #[arg(long, env = "REGISTER_MAXIMUM_TIMEOUT")]
    pub maximum_timeout: Option<u64>,
    /// Maximum concurrent jobs of this runner (0 = unlimited).
    #[arg(long, env = "RUNNER_LIMIT")]
    pub limit: Option<usize>,
    /// Builds directory.
    #[arg(long, env = "RUNNER_BUILDS_DIR")]
    pub builds_dir: Option<String>,
    /// Shell for the shell executor.
    #[arg(long, env = "RUNNER_SHELL")]
    pub shell: Option<String>,
    /// Default Docker image (docker executor).
    #[arg(long, env = "DOCKER_IMAGE")]
    pub docker_image: Option<String>,
    /// Do not ask questions: take everything from flags and environment.
    #[arg(long, short = 'n', env = "REGISTER_NON_INTERACTIVE")]
    pub non_interactive: bool,
}

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Remove runners whose token is not valid from config.toml.
    #[arg(long)]
    pub delete: bool,
    /// Only the runner with this name.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct UnregisterArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Name of the runner to unregister.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Token of the runner to unregister.
    #[arg(long, short = 't')]
    pub token: Option<String>,
    /// Unregister every runner in the config.
    #[arg(long)]
    pub all_runners: bool,
}

/// Ask on stdin for a value the flags did not give (interactive register).
pub fn prompt(question: &str, current: Option<String>, interactive: bool) -> Result<String> {
    if let Some(v) = current.filter(|v| !v.is_empty()) {
        return Ok(v);
    }
    if !interactive {
        bail!("{question} is required (non-interactive mode)");
    }
    use std::io::Write;
    let mut out = std::io::stdout();
    writeln!(out, "{question}:")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let v = line.trim().to_string();
    if v.is_empty() {
        bail!("{question} is required");
    }
    Ok(v)
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
    fn parses_register_like_gitlab_runner() {
        let cli = Cli::try_parse_from([
            "termgate-runner",
            "register",
            "--non-interactive",
            "--url",
            "http://127.0.0.1:1",
            "--registration-token",
            "x",
            "--executor",
            "shell",
            "--tag-list",
            "a,b",
            "--run-untagged",
            "--description",
            "r1",
            "-c",
            "/tmp/c.toml",
        ])
        .unwrap();
        match cli.command {
            Command::Register(r) => {
                assert_eq!(r.name.as_deref(), Some("r1"));
                assert!(r.run_untagged && r.non_interactive);
                assert_eq!(r.config.path(), PathBuf::from("/tmp/c.toml"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_operator_commands() {
        let cli = Cli::try_parse_from([
            "termgate-runner",
            "operator",
            "add",
            "alice",
            "--role",
            "control",
        ])
        .unwrap();
        match cli.command {
            Command::Operator(OperatorCommand::Add(a)) => {
                assert_eq!((a.name.as_str(), a.role.as_str()), ("alice", "control"));
            }
            other => panic!("{other:?}"),
        }
        let err =
            Cli::try_parse_from(["termgate-runner", "operator", "add", "a", "--role", "admin"])
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("admin") && err.contains("observe, control"),
            "{err}"
        );
        assert!(Cli::try_parse_from(["termgate-runner", "operator", "add", "a"]).is_err());
    }
}
