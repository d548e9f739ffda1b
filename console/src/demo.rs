//! `termgate demo`: a local coordinator and a shell-executor runner on
//! loopback (ephemeral ports), fed with example CI jobs and a Web IDE
//! terminal job, followed until the duration ends, `q`/Ctrl-C in the TUI, or
//! SIGHUP/SIGTERM/SIGINT; each way stops the runner (which kills its jobs)
//! and then the coordinator.
//!
//! The runner has operator access on: the demo adds a `control` operator
//! (`termgate-runner operator add`), pins the session server's certificate
//! (its fingerprint from the runner's log) and gives the console the
//! runner's `session_url`, so the Sessions screen
//! (`3`) lists the terminal jobs and Enter, `j` or `x` attach to them. It
//! also writes `console.toml` in its directory for `termgate -c` and
//! `termgate attach -c`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use termgate::admin::{JobSpec, JobView};
use termgate::logschema::{self as schema, msg};

use crate::access::OperatorAccess;
use crate::app::Screen;
use crate::cli::DemoArgs;
use crate::config::RunnerEntry;

const CI_JOBS: &str = include_str!("../../assets/jobs/.gitlab-ci.yml");
const WEBIDE_JOB: &str = include_str!("../../assets/jobs/.gitlab/.gitlab-webide.yml");

/// Find `termgate-runner`: `$TERMGATE_RUNNER_BIN`, next to this binary, or on PATH.
pub fn runner_binary() -> Result<PathBuf> {
    find_binary("termgate-runner", "TERMGATE_RUNNER_BIN")
}

/// Find `termgate-coordinator`: `$TERMGATE_COORDINATOR_BIN`, next to this
/// binary, or on PATH.
pub fn coordinator_binary() -> Result<PathBuf> {
    find_binary("termgate-coordinator", "TERMGATE_COORDINATOR_BIN")
}

/// `$env`, else `name` next to this binary (or one level up, for test
/// binaries in `deps/`), else on PATH.
fn find_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            for cand in [dir.join(name), dir.join("..").join(name)] {
                if cand.is_file() {
                    return Ok(cand);
                }
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let c = d.join(name);
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    bail!("{name} not found: build the workspace (cargo build --release) or set {env}")
}

/// A child process stopped when dropped: SIGTERM first (a runner then aborts
/// its jobs' processes), SIGKILL after `grace`.
pub struct Proc {
    pub child: Child,
    pub grace: Duration,
}

impl Proc {
    pub fn new(child: Child, grace: Duration) -> Self {
        Proc { child, grace }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo runner's name (config and console).
pub const RUNNER_NAME: &str = "demo-runner";
/// The operator the demo adds.
pub const OPERATOR_NAME: &str = "demo";

pub struct Demo {
    pub coordinator_url: String,
    pub metrics_url: String,
    pub dir: PathBuf,
    pub runner_log: PathBuf,
    /// The runner as the console sees it: metrics, logs and, when the
    /// runner has an operator API, `session_url`, token and fingerprint.
    pub entry: RunnerEntry,
    /// Why the console has no operator access, when it has none.
    pub no_access: Option<String>,
    // Order matters: the runner stops before the coordinator.
    _runner: Proc,
    _coordinator: Proc,
    _tmp: Option<tempfile::TempDir>,
}

impl Demo {
    /// Start everything; returns once the runner serves metrics.
    pub fn start(dir: Option<&Path>) -> Result<Demo> {
        let bin = runner_binary()?;
        let coordinator_bin = coordinator_binary()?;
        let (tmp, dir) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                (None, d.to_path_buf())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("termgate-demo-")
                    .tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let jobs = dir.join("jobs.gitlab-ci.yml");
        std::fs::write(&jobs, CI_JOBS)?;
        let webide = dir.join(".gitlab-webide.yml");
        std::fs::write(&webide, WEBIDE_JOB)?;
        let reg_token: String = format!("demo-{:016x}", rand::random::<u64>());

        let mut coord = Command::new(&coordinator_bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--registration-token",
                &reg_token,
            ])
            .arg("--jobs")
            .arg(&jobs)
            .arg("--jobs")
            .arg(&webide)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("coordinator.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", coordinator_bin.display()))?;
        let stdout = coord.stdout.take().context("coordinator stdout")?;
        let coordinator = Proc::new(coord, Duration::from_secs(5));
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .context("the coordinator exited at start (see coordinator.log)")??;
        let coordinator_url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("unexpected coordinator banner {first:?}"))?
            .to_string();
        std::thread::spawn(move || for _ in lines {});

        let config = dir.join("config.toml");
        let out = Command::new(&bin)
            .args([
                "register",
                "--non-interactive",
                "--executor",
                "shell",
                "--run-untagged",
                "--name",
                RUNNER_NAME,
            ])
            .args(["--tag-list", "interactive-web-terminal"])
            .args([
                "--url",
                &coordinator_url,
                "--registration-token",
                &reg_token,
            ])
            .arg("-c")
            .arg(&config)
            .output()
            .context("registering the demo runner")?;
        if !out.status.success() {
            bail!(
                "registering the demo runner failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = std::fs::read_to_string(&config)?;
        let text = set_global_keys(&text, &[("concurrent", "8"), ("check_interval", "1")]);
        // Interactive terminals on an ephemeral loopback port, with the
        // operator API on the same listener.
        let operators = dir.join("operators.toml");
        let text = format!(
            "{text}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = 1800\n  operators_file = {}\n",
            toml_string(&operators.display().to_string())
        );
        std::fs::write(&config, text)?;
        let token = add_operator(&bin, &config);

        let runner_log = dir.join("runner.log");
        let runner = Command::new(&bin)
            .args([
                "--log-format",
                "json",
                "run",
                "--listen-address",
                "127.0.0.1:0",
                "-c",
            ])
            .arg(&config)
            .arg("-d")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&runner_log)?)
            .spawn()
            .context("starting the demo runner")?;
        let runner = Proc::new(runner, Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(20);
        let (metrics_url, started) = loop {
            let log = std::fs::read_to_string(&runner_log).unwrap_or_default();
            let lines: Vec<Value> = log
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect();
            let metrics = address_logged(&lines, msg::METRICS_SERVER_LISTENING);
            let sessions = address_logged(&lines, msg::SESSION_SERVER_LISTENING);
            if let (Some(metrics), Some(_)) = (&metrics, &sessions) {
                break (format!("http://{metrics}"), lines);
            }
            if Instant::now() > deadline {
                bail!(
                    "the demo runner did not start (see {})",
                    runner_log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The operator API: its own listener if the runner has one, else
        // the session server's.
        let session_url = address_logged(&started, msg::OPERATOR_API_LISTENING)
            .or_else(|| address_logged(&started, msg::SESSION_SERVER_LISTENING))
            .map(|a| format!("https://{a}"));
        let fingerprint = certificate_fingerprint(&started, &config);
        let (operator_token, no_access) = match token {
            Ok(t) => (Some(t), None),
            Err(why) => (None, Some(why)),
        };
        let entry = RunnerEntry {
            name: RUNNER_NAME.into(),
            metrics_url: format!("{metrics_url}/metrics"),
            session_url,
            operator_token,
            operator_token_file: None,
            fingerprint: fingerprint.map(|f| termgate::operator::format_fingerprint(&f)),
            logs: vec![runner_log.display().to_string()],
        };
        write_console_toml(&dir.join("console.toml"), &entry)?;
        Ok(Demo {
            coordinator_url,
            metrics_url,
            dir,
            runner_log,
            entry,
            no_access,
            _runner: runner,
            _coordinator: coordinator,
            _tmp: tmp,
        })
    }

    pub fn enqueue(&self, job: &JobSpec) -> Result<()> {
        reqwest::blocking::Client::new()
            .post(format!("{}/admin/jobs", self.coordinator_url))
            .json(job)
            .send()?
            .error_for_status()?;
        Ok(())
    }

    /// The coordinator's jobs, as it sees them now.
    pub async fn jobs(&self) -> Result<Vec<JobView>> {
        Ok(reqwest::get(format!("{}/admin/jobs", self.coordinator_url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Whether `dir` is a temporary folder, removed when the demo stops.
    pub fn is_temporary(&self) -> bool {
        self._tmp.is_some()
    }

    /// The way in, for the TUI and the headless output: the coordinator
    /// and a command that observes terminal job `job` (the command this
    /// program was started as, so it pastes where the demo was started).
    pub fn way_in(&self, job: Option<u64>) -> crate::app::WayIn {
        let me = std::env::args_os()
            .next()
            .map_or("termgate".into(), |a| a.to_string_lossy().into_owned());
        let job = job.map_or("<job id>".to_string(), |j| j.to_string());
        crate::app::WayIn {
            coordinator: self.coordinator_url.clone(),
            attach: format!(
                "{me} attach -c {} {RUNNER_NAME} {job} --observe",
                self.dir.join("console.toml").display()
            ),
        }
    }
}

/// The console's operator access to the demo runner, its certificate
/// pinned (the runner logged it at start).
pub fn operator_access(demo: &Demo) -> OperatorAccess {
    match (&demo.no_access, &demo.entry.fingerprint) {
        (Some(why), _) => OperatorAccess::none(RUNNER_NAME, why),
        (None, None) => OperatorAccess::none(
            RUNNER_NAME,
            "no operator access: the demo runner logged no session server certificate (see runner.log)",
        ),
        (None, Some(_)) => OperatorAccess::from_entry(&demo.entry, false),
    }
}

/// `termgate-runner operator add demo --role control -c <config>`: the
/// token it prints, or why there is none (the console then shows it on the
/// Sessions screen; everything else of the demo works without it).
fn add_operator(bin: &Path, config: &Path) -> std::result::Result<String, String> {
    let out = Command::new(bin)
        .args(["operator", "add", OPERATOR_NAME, "--role", "control", "-c"])
        .arg(config)
        .output()
        .map_err(|e| format!("running termgate-runner operator add: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with(termgate::operator::TOKEN_PREFIX))
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_'));
    match (out.status.success(), token) {
        (true, Some(t)) => Ok(t.to_string()),
        _ => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no token printed");
            tracing::warn!({ schema::ERROR } = %why, "demo: no operator access");
            Err(format!(
                "no operator access: termgate-runner operator add: {why}"
            ))
        }
    }
}

/// The `address` of the first runner log line with message `message`.
fn address_logged(lines: &[Value], message: &str) -> Option<String> {
    lines
        .iter()
        .find(|l| l[schema::MSG] == message)
        .and_then(|l| l[schema::ADDRESS].as_str().map(str::to_owned))
}

/// The session server certificate's SHA-256: as the runner logged it
/// (`fingerprint` of its certificate line), else from the PEM it keeps
/// beside its config (`path` of that line, or `session-server.crt`).
fn certificate_fingerprint(lines: &[Value], config: &Path) -> Option<[u8; 32]> {
    let cert_line = lines.iter().find(|l| {
        l[schema::MSG] == msg::SESSION_CERT_GENERATED || l[schema::MSG] == msg::SESSION_CERT_REUSED
    });
    if let Some(f) = cert_line
        .and_then(|l| l[schema::FINGERPRINT].as_str())
        .and_then(termgate::operator::parse_fingerprint)
    {
        return Some(f);
    }
    let path = cert_line
        .and_then(|l| l[schema::PATH].as_str())
        .map(PathBuf::from)
        .or_else(|| config.parent().map(|d| d.join("session-server.crt")))?;
    let pem = std::fs::read_to_string(path).ok()?;
    pem_fingerprint(&pem)
}

/// SHA-256 of the DER of the first certificate in `pem`.
pub fn pem_fingerprint(pem: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    use sha2::Digest as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let body = pem.split_once(BEGIN)?.1.split_once(END)?.0;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some(sha2::Sha256::digest(der).into())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `console.toml` for this demo: `termgate -c` and `termgate attach -c`.
fn write_console_toml(path: &Path, e: &RunnerEntry) -> Result<()> {
    let mut t = String::from(
        "# Written by `termgate demo` for this demo's runner.\ninterval = \"1s\"\n\n[[runners]]\n",
    );
    t.push_str(&format!("name = {}\n", toml_string(&e.name)));
    t.push_str(&format!("metrics_url = {}\n", toml_string(&e.metrics_url)));
    for (key, value) in [
        ("session_url", &e.session_url),
        ("operator_token", &e.operator_token),
        ("fingerprint", &e.fingerprint),
    ] {
        if let Some(v) = value {
            t.push_str(&format!("{key} = {}\n", toml_string(v)));
        }
    }
    let logs: Vec<String> = e.logs.iter().map(|l| toml_string(l)).collect();
    t.push_str(&format!("logs = [{}]\n", logs.join(", ")));
    // The token is a secret: owner only, as the runner's config.toml.
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    std::io::Write::write_all(&mut f.open(path)?, t.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Set top-level `key = value` lines of a config.toml (replacing existing
/// ones, else adding them at the top).
fn set_global_keys(text: &str, kv: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut in_root = true;
    for line in text.lines() {
        if line.trim_start().starts_with('[') {
            in_root = false;
        }
        let key = line.split('=').next().map(str::trim).unwrap_or_default();
        if in_root && kv.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let head: String = kv.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    head + &out
}

fn print_jobs(jobs: &[JobView]) {
    println!(
        "{:<6} {:<12} {:<10} {:<22} EXIT",
        "JOB", "NAME", "STATE", "FAILURE"
    );
    for j in jobs {
        println!(
            "{:<6} {:<12} {:<10} {:<22} {}",
            j.id.to_string(),
            j.name,
            j.state,
            j.failure_reason.as_deref().unwrap_or("-"),
            j.exit_code.map_or("-".to_string(), |c| c.to_string())
        );
    }
}

/// The runner's figures from the scrape the Fleet screen shows, in the
/// runner's metric names, so the two agree.
fn print_scrape(snap: &crate::model::Snapshot) {
    use termgate::metrics as m;
    let Some(r) = snap.runners.iter().find(|r| r.source.name == RUNNER_NAME) else {
        return;
    };
    let Some(l) = &r.latest else {
        println!("runner metrics: not scraped yet");
        return;
    };
    let at = l.at.map_or("-".into(), crate::text::clock);
    println!("runner metrics, from the scrape the Fleet screen shows ({at}):");
    let n = |v: f64| crate::text::num(Some(v));
    if let Some(v) = l.jobs_total {
        println!("{} {}", m::JOBS_TOTAL, n(v));
    }
    for (reason, v) in &l.failed_jobs_total {
        println!(
            "{}{{failure_reason=\"{reason}\"}} {}",
            m::FAILED_JOBS_TOTAL,
            n(*v)
        );
    }
    for (state, v) in &l.jobs_by_state {
        println!("{}{{state=\"{state}\"}} {}", m::JOBS, n(*v));
    }
    for (name, v) in [
        (m::SESSION_TERMINALS_AVAILABLE, l.terminals_available),
        (m::SESSION_TERMINALS_ACTIVE, l.terminals_active),
        (m::SESSION_TERMINALS_IDLE, l.terminals_idle),
    ] {
        if let Some(v) = v {
            println!("{name} {}", n(v));
        }
    }
}

/// `termgate demo --headless`: one moment of the running demo — the Fleet
/// and Sessions screens and the runner's figures from the same scrape,
/// and the coordinator's jobs fetched right after — each with its time.
async fn print_headless(demo: &Demo, snap: &crate::model::Snapshot) -> Result<()> {
    let now = std::time::SystemTime::now();
    println!("while the demo ran, at {}:", crate::text::clock(now));
    println!("{}", render_screen_text(snap, Screen::Fleet, 120, 30));
    println!("{}", render_screen_text(snap, Screen::Sessions, 120, 12));
    print_scrape(snap);
    println!();
    let jobs = demo.jobs().await?;
    println!(
        "jobs at the coordinator ({}):",
        crate::text::clock(std::time::SystemTime::now())
    );
    print_jobs(&jobs);
    Ok(())
}

pub fn run(args: DemoArgs) -> Result<()> {
    if !args.headless {
        crate::tui::require_terminal(
            "without one, `termgate demo --headless` prints the Fleet screen instead",
        )?;
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    // Closing the terminal (SIGHUP), `kill` (SIGTERM) or SIGINT stop the
    // demo as `q` does: everything it started is stopped on the way out.
    // Caught from before the first child starts.
    let mut signals = rt.block_on(async { StopSignals::install() })?;
    let demo = Demo::start(args.dir.as_deref())?;
    // More terminal jobs than we attach to: some active, some idle.
    for _ in 0..2 {
        demo.enqueue(&terminal_job())?;
    }
    // The first terminal job: the one the way in attaches to.
    let first_terminal = rt
        .block_on(demo.jobs())
        .ok()
        .and_then(|jobs| jobs.iter().find(|j| j.name == "terminal").map(|j| j.id));
    let way_in = demo.way_in(first_terminal);
    if args.headless {
        println!(
            "termgate demo: coordinator {}  runner metrics {}/metrics",
            demo.coordinator_url, demo.metrics_url
        );
        println!("attach while it runs: {}", way_in.attach);
        println!();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        let url = demo.coordinator_url.clone();
        std::thread::spawn(move || feed_jobs(&url, &stop))
    };
    let headless_for = args
        .duration
        .or(args.headless.then_some(Duration::from_secs(20)));
    let result = rt.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(attach_terminals(
            demo.coordinator_url.clone(),
            2,
            shutdown.clone(),
        ));
        let sources = vec![crate::model::RunnerSource {
            name: RUNNER_NAME.into(),
            metrics_url: demo.entry.metrics_url.clone(),
            session_url: demo.entry.session_url.clone(),
            logs: demo.entry.logs.clone(),
        }];
        let opts = crate::scrape::poller::PollOptions {
            interval: Duration::from_secs(1),
            ..Default::default()
        };
        let access = vec![operator_access(&demo)];
        let attacher = crate::attach::Attacher::new(
            crate::access::endpoints(&access),
            crate::attach::DetachKey::default(),
        );
        let snaps = crate::watch::start(
            &crate::cli::WatchArgs::default(),
            sources,
            &access,
            opts,
            &shutdown,
        );
        let show = async {
            if args.headless {
                let d = headless_for.unwrap_or(Duration::from_secs(20));
                tokio::time::sleep(d).await;
                // Before anything stops: the screens, the scrape and the
                // jobs all describe the running demo.
                let snap = snaps.borrow().clone();
                print_headless(&demo, &snap).await
            } else if let Some(d) = headless_for {
                tokio::select! {
                    r = crate::tui::run_tui(snaps, shutdown.clone(), attacher, Some(way_in)) => r,
                    _ = tokio::time::sleep(d) => Ok(()),
                }
            } else {
                crate::tui::run_tui(snaps, shutdown.clone(), attacher, Some(way_in)).await
            }
        };
        let res = tokio::select! {
            r = show => r.map(|()| None),
            sig = signals.next() => Ok(Some(sig)),
        };
        shutdown.cancel();
        res
    });
    rt.shutdown_timeout(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let _ = feeder.join();
    let temporary = demo.is_temporary();
    let dir = demo.dir.clone();
    // Stop the runner (which aborts its jobs), then the coordinator, and
    // remove a temporary folder, before saying so.
    drop(demo);
    if let Some(sig) = result? {
        // After SIGHUP the terminal may be gone: never panic on writing.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "termgate demo: {sig}, stopped the runner and the coordinator"
        );
        return Ok(());
    }
    if args.headless {
        println!();
        println!(
            "stopped at {}: the runner (its running jobs aborted), then the coordinator",
            crate::text::clock(std::time::SystemTime::now())
        );
        if temporary {
            println!(
                "its files were in a temporary folder, now removed (keep them with --dir DIR)"
            );
        } else {
            println!("its files are in {}", dir.display());
        }
    }
    Ok(())
}

/// SIGHUP, SIGTERM and SIGINT, caught so that the demo stops what it
/// started instead of dying with it running.
struct StopSignals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// The name of the first of them to arrive.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.hup.recv() => "SIGHUP",
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

fn terminal_job() -> JobSpec {
    JobSpec {
        stage: Some("terminal".into()),
        tags: vec!["interactive-web-terminal".into()],
        ..JobSpec::new("terminal", &["sleep 1800"])
    }
}

/// Every few seconds a CI job, some failing, so the error figures move.
fn feed_jobs(coordinator: &str, stop: &AtomicBool) {
    let client = reqwest::blocking::Client::new();
    let jobs = [
        JobSpec::new("lint", &["echo linting", "exit 1"]),
        JobSpec::new("build", &["echo building", "sleep 2"]),
        JobSpec {
            after_script: vec!["echo cleanup".into()],
            ..JobSpec::new("deploy", &["echo deploying", "exit 3"])
        },
    ];
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        for _ in 0..40 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = client
            .post(format!("{coordinator}/admin/jobs"))
            .json(&jobs[i % jobs.len()])
            .send();
        i += 1;
    }
}

/// Keep `n` terminals attached to running terminal jobs through the
/// coordinator's Workhorse path, typing now and then.
async fn attach_terminals(
    coordinator: String,
    n: usize,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let client = reqwest::Client::new();
    let mut attached: std::collections::BTreeSet<u64> = Default::default();
    while !shutdown.is_cancelled() {
        let jobs: Vec<JobView> = match client.get(format!("{coordinator}/admin/jobs")).send().await
        {
            Ok(r) => r.json::<Vec<JobView>>().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for j in jobs {
            if j.name != "terminal" || j.state != "running" {
                continue;
            }
            let id = j.id;
            let no_session = j.session.as_ref().is_none_or(|s| s.url.is_empty());
            if attached.len() >= n || attached.contains(&id) || no_session {
                continue;
            }
            let url = format!(
                "{}/admin/jobs/{id}/terminal.ws",
                coordinator.replacen("http://", "ws://", 1)
            );
            let Ok(mut req) = url.into_client_request() else {
                continue;
            };
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                tokio_tungstenite::tungstenite::http::HeaderValue::from_static(
                    "terminal.gitlab.com",
                ),
            );
            let Ok((ws, _)) = tokio_tungstenite::connect_async(req).await else {
                continue;
            };
            attached.insert(id);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let (mut tx, mut rx) = ws.split();
                let reader =
                    tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                let mut tick = tokio::time::interval(Duration::from_secs(3));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => {
                            let line = b"echo \"hello from the termgate demo: $(date)\"\n".to_vec();
                            if tx.send(Message::Binary(line.into())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = tx.close().await;
                reader.abort();
            });
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The Fleet screen as plain text (headless demo, scripts).
pub fn render_fleet_text(snap: &crate::model::Snapshot, width: u16, height: u16) -> String {
    render_screen_text(snap, Screen::Fleet, width, height)
}

/// A screen as plain text (headless demo, scripts).
pub fn render_screen_text(
    snap: &crate::model::Snapshot,
    screen: Screen,
    width: u16,
    height: u16,
) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let Ok(mut terminal) = ratatui::Terminal::new(backend) else {
        return String::new();
    };
    let now = std::time::SystemTime::now();
    let mut app = crate::app::App::new(crate::ui::widgets::Theme::MONO, now);
    app.screen = screen;
    let _ = terminal.draw(|f| {
        crate::ui::render(f, &app, snap, now);
    });
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_fingerprint_is_the_sha256_of_the_der() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let der: Vec<u8> = (0u8..=200).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "junk\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        let want: [u8; 32] = sha2::Sha256::digest(&der).into();
        assert_eq!(pem_fingerprint(&pem), Some(want));
        assert_eq!(pem_fingerprint("no certificate"), None);
        assert_eq!(
            pem_fingerprint("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"),
            None
        );
    }

    #[test]
    fn the_certificate_fingerprint_comes_from_the_log_or_the_pem() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let fp = termgate::operator::format_fingerprint(&[7u8; 32]);
        let logged = vec![serde_json::json!({
            schema::MSG: msg::SESSION_CERT_GENERATED,
            schema::FINGERPRINT: fp,
        })];
        assert_eq!(certificate_fingerprint(&logged, &config), Some([7u8; 32]));
        // Nothing logged, nothing beside the config: not pinned.
        assert_eq!(certificate_fingerprint(&[], &config), None);
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("session-server.crt"), pem).unwrap();
        assert_eq!(certificate_fingerprint(&[], &config), pem_fingerprint(pem));
        assert!(pem_fingerprint(pem).is_some());
    }

    #[test]
    fn console_toml_for_the_demo_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.toml");
        let entry = RunnerEntry {
            name: RUNNER_NAME.into(),
            metrics_url: "http://127.0.0.1:1/metrics".into(),
            session_url: Some("https://127.0.0.1:2".into()),
            operator_token: Some("tgo_ab\"c".into()),
            operator_token_file: None,
            fingerprint: None,
            logs: vec!["/tmp/x \"y\".log".into()],
        };
        write_console_toml(&path, &entry).unwrap();
        let cfg = crate::config::ConsoleConfig::load(&path).unwrap();
        assert_eq!(cfg.runners, [entry]);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn global_keys_replace_not_duplicate() {
        let t = "concurrent = 1\ncheck_interval = 3\n\n[[runners]]\n  concurrent = 9\n";
        let out = set_global_keys(t, &[("concurrent", "8"), ("check_interval", "1")]);
        assert_eq!(
            out,
            "concurrent = 8\ncheck_interval = 1\n\n[[runners]]\n  concurrent = 9\n"
        );
    }
}
