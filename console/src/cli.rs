//! Command line of `termgate`: the argument types only. [`crate::main`]
//! parses them, sets up logging and dispatches.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::detach_key::DetachKey;
/// Re-exported for the benches, which parse durations the same way.
use crate::duration_arg::parse_duration;

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
    #[command(flatten)]
    pub log: LogArgs,
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
    /// Log files of a runner: NAME=GLOB (repeatable). What they already
    /// hold is read back at start (the last 7 days; at most the last 64 MiB
    /// of each file, gzip files up to 8 MiB), then they are followed.
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
    /// Observe, join or open a shell in a live job's terminal (operator API).
    Attach(AttachArgs),
    /// A terminal into a job through GitLab Workhorse's terminal.ws, as a
    /// user's browser connects (e.g. the local coordinator's
    /// ws://127.0.0.1:8080/admin/jobs/4/terminal.ws).
    Terminal(TerminalArgs),
    /// Tally errors (warnings and above) in runner log files by fingerprint.
    Tally(TallyArgs),
    /// The weekly report: errors, terminal usage, jobs, restarts and
    /// capacity over a period vs the one before, as Markdown, HTML or JSON.
    Report(ReportArgs),
    /// Play a terminal recording (asciicast v2, from a runner's recordings_dir) on stdout.
    Replay(ReplayArgs),
    /// Pin a runner's session server certificate: fetch its SHA-256
    /// fingerprint and store it in console.toml.
    Trust(TrustArgs),
    /// List the live terminal sessions of one runner, or of every runner in
    /// console.toml with a session_url.
    Sessions(SessionsArgs),
    /// Print a shell completion script (bash, zsh, fish) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: termgate man > termgate.1
    Man,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: termgate::clidocs::Shell,
}

/// `-c console.toml` of the commands that need the runners' operator
/// access (session_url, operator token, fingerprint); `trust` also writes it.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleFile {
    /// console.toml with the runners' session_url, operator token and fingerprint.
    #[arg(
        long = "config",
        short = 'c',
        env = "TERMGATE_CONSOLE_CONFIG",
        value_name = "PATH"
    )]
    pub path: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The runner's name in console.toml (its session_url is dialled).
    pub runner: String,
    /// Trust the certificate without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub config: ConsoleFile,
}

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// Only this runner (default: every runner with a session_url).
    pub runner: Option<String>,
    /// Print JSON ({"sessions": [...]}, a `runner` field on each) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Accept any certificate instead of the pinned fingerprint (this once).
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub config: ConsoleFile,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The recording: an asciicast v2 file (`job-….cast`).
    pub file: std::path::PathBuf,
    /// Play this many times as fast (e.g. 2, 0.5).
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub speed: f64,
    /// Longest pause between two outputs, before --speed: seconds (0.5) or
    /// with a unit (500ms, 1m).
    #[arg(long, default_value = "2", value_parser = parse_duration, value_name = "SECS")]
    pub max_wait: Duration,
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

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").args(["observe", "join", "shell"])))]
pub struct AttachArgs {
    #[command(flatten)]
    pub config: ConsoleFile,
    /// The runner, by its name in console.toml.
    pub runner: String,
    /// A session id, a unique prefix of one, or a job id.
    #[arg(value_name = "SESSION|JOB_ID")]
    pub session: String,
    /// Watch the user's terminal, read-only (the default).
    #[arg(long)]
    pub observe: bool,
    /// Type into the user's terminal as a second writer (needs a reason).
    #[arg(long)]
    pub join: bool,
    /// Open a new shell in the job's environment (needs a reason).
    #[arg(long)]
    pub shell: bool,
    /// Why, for the runner's audit log; --join and --shell ask for one
    /// when it is not given.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Do not check the session server's certificate against the
    /// fingerprint in console.toml.
    #[arg(long)]
    pub insecure: bool,
    /// The key that ends the attach, e.g. ctrl-] or ctrl-q [default:
    /// console.toml's detach_key, else ctrl-]].
    #[arg(long, value_name = "KEY")]
    pub detach_key: Option<DetachKey>,
}

#[derive(Debug, clap::Args)]
pub struct TerminalArgs {
    /// The job's terminal.ws URL (ws:// or wss://), spoken as
    /// terminal.gitlab.com.
    pub url: String,
    /// The key that ends the terminal, e.g. ctrl-] or ctrl-q [default: ctrl-]].
    #[arg(long, value_name = "KEY")]
    pub detach_key: Option<DetachKey>,
}

impl AttachArgs {
    /// The mode the flags ask for (observe unless --join or --shell).
    pub fn mode(&self) -> termgate::operator::Mode {
        use termgate::operator::Mode;
        match (self.join, self.shell) {
            (true, _) => Mode::Join,
            (_, true) => Mode::Shell,
            _ => Mode::Observe,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TallyArgs {
    /// Log files to read: globs, or NAME=GLOB to name the runner (default:
    /// the file name up to its first dot). Any log format termgate or
    /// gitlab-runner writes, also behind docker compose / syslog prefixes.
    #[arg(long = "logs", value_name = "GLOB", num_args = 1.., required = true)]
    pub logs: Vec<String>,
    /// Only count errors of this last period (e.g. 30m, 24h, 7d). Lines
    /// without a timestamp (upstream `runner` format) are always counted.
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Print a JSON array of entries instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show the N most frequent fingerprints (0 = all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
}

/// `termgate report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Log files to read: globs (plain or .gz, rotated files in any order),
    /// or NAME=GLOB to name the runner [default: the logs' runner_name, else
    /// the file name up to its first dot]. Without it: the `logs` globs of
    /// console.toml's runners (-c).
    #[arg(long = "logs", value_name = "GLOB", num_args = 1..)]
    pub logs: Vec<String>,
    /// The period: this long up to now (e.g. 24h, 7d) [default: 7d, or --from/--to].
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["from", "to"])]
    pub since: Option<Duration>,
    /// The period's start (RFC 3339 or YYYY-MM-DD, UTC) [with --to].
    #[arg(long, requires = "to", value_name = "TIME")]
    pub from: Option<String>,
    /// The period's end, excluded (RFC 3339 or YYYY-MM-DD, UTC) [with --from].
    #[arg(long, requires = "from", value_name = "TIME")]
    pub to: Option<String>,
    /// Prometheus server for capacity history (query_range) [default:
    /// console.toml's [prometheus] url].
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// md: GitLab-flavoured Markdown; html: one self-contained file; json:
    /// the data (docs/report-schema.md).
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write the report here instead of stdout (replaced atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Fingerprints listed (most frequent first).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Reading threads [default: the machine's cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// console.toml: its runners' log globs and Prometheus, when --logs /
    /// --prometheus are not given.
    #[arg(
        long = "config",
        short = 'c',
        env = "TERMGATE_CONSOLE_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Json,
}

/// Where the console's own log goes (every command).
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Append the console's log here [default: console.toml's log_file, else
    /// $XDG_STATE_HOME/termgate/console.log or ~/.local/state/termgate/console.log].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "TERMGATE_CONSOLE_LOG_FILE"
    )]
    pub log_file: Option<std::path::PathBuf>,
    /// Least severe level written: error, warn, info, debug or trace.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info")]
    pub log_level: tracing::level_filters::LevelFilter,
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
    fn attach_flags() {
        use termgate::operator::Mode;
        let cli =
            Cli::try_parse_from(["termgate", "attach", "-c", "c.toml", "prm-5", "4711"]).unwrap();
        let Some(Command::Attach(a)) = cli.command else {
            panic!("not attach")
        };
        assert_eq!((a.runner.as_str(), a.session.as_str()), ("prm-5", "4711"));
        assert_eq!(a.mode(), Mode::Observe);
        assert_eq!(a.detach_key, None);
        let cli = Cli::try_parse_from([
            "termgate",
            "attach",
            "-c",
            "c.toml",
            "prm-5",
            "9f1c",
            "--shell",
            "--reason",
            "disk full",
            "--detach-key",
            "ctrl-q",
            "--insecure",
        ])
        .unwrap();
        let Some(Command::Attach(a)) = cli.command else {
            panic!("not attach")
        };
        assert_eq!(a.mode(), Mode::Shell);
        assert_eq!(a.reason.as_deref(), Some("disk full"));
        assert_eq!(a.detach_key.map(|k| k.byte()), Some(0x11));
        assert!(a.insecure);
        // One mode at most; a bad detach key is explained.
        let e = Cli::try_parse_from([
            "termgate", "attach", "-c", "c", "r", "1", "--join", "--shell",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot be used with"), "{e}");
        let e = Cli::try_parse_from([
            "termgate",
            "attach",
            "-c",
            "c",
            "r",
            "1",
            "--detach-key",
            "q",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("ctrl-]"), "{e}");
    }

    #[test]
    fn log_flags_are_global() {
        let cli = Cli::try_parse_from([
            "termgate",
            "tally",
            "--logs",
            "x.log",
            "--log-file",
            "/tmp/t/console.log",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Tally(_))));
        assert_eq!(
            cli.log.log_file.as_deref(),
            Some(std::path::Path::new("/tmp/t/console.log"))
        );
        assert_eq!(
            cli.log.log_level,
            tracing::level_filters::LevelFilter::DEBUG
        );
        let cli =
            Cli::try_parse_from(["termgate", "--log-file", "l", "--runner", "a=h:1"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.log.log_level, tracing::level_filters::LevelFilter::INFO);
        assert!(Cli::try_parse_from(["termgate", "--log-level", "loud"]).is_err());
    }

    #[test]
    fn replay_args() {
        let cli = Cli::try_parse_from(["termgate", "replay", "a.cast"]).unwrap();
        let Some(Command::Replay(r)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(r.file, std::path::Path::new("a.cast"));
        assert_eq!(r.speed, 1.0);
        assert_eq!(r.max_wait, Duration::from_secs(2));
        let cli = Cli::try_parse_from([
            "termgate",
            "replay",
            "--speed",
            "2.5",
            "--max-wait",
            "0.5",
            "b.cast",
        ])
        .unwrap();
        let Some(Command::Replay(r)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(r.speed, 2.5);
        assert_eq!(r.max_wait, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["termgate", "replay"]).is_err());
        assert!(Cli::try_parse_from(["termgate", "replay", "--speed", "x", "a"]).is_err());
        assert!(Cli::try_parse_from(["termgate", "replay", "--max-wait", "1y", "a"]).is_err());
    }

    #[test]
    fn trust_and_sessions_take_their_own_config() {
        let cli =
            Cli::try_parse_from(["termgate", "trust", "prm-5", "--yes", "-c", "c.toml"]).unwrap();
        let Some(Command::Trust(t)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert!(t.yes && t.runner == "prm-5");
        assert_eq!(t.config.path, std::path::Path::new("c.toml"));
        let cli =
            Cli::try_parse_from(["termgate", "sessions", "--json", "--config", "c.toml"]).unwrap();
        let Some(Command::Sessions(s)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert!(s.json && !s.insecure && s.runner.is_none());
    }
}
