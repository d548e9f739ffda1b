//! Real processes on loopback: a `termgate-coordinator`, runners registered
//! against it, and helpers to enqueue jobs and wait for them. Every process
//! is stopped when its handle is dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use termgate::admin::{CreatedJobs, JobView};

use crate::{http, wait_until, workspace_bin};

/// Stop a child process the way a runner expects: SIGTERM (a runner then
/// aborts its jobs and kills their process groups), SIGKILL if it has not
/// exited after `grace`; reaps it either way.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Any child process, stopped with [`stop_child`] when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub grace: Duration,
}

impl Proc {
    pub fn new(child: Child, name: &str) -> Proc {
        Proc {
            child,
            name: name.to_owned(),
            grace: Duration::from_secs(10),
        }
    }

    /// Panic (with `log`'s text) if the process has exited.
    pub fn check_alive(&mut self, log: &Path) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!(
                "{} exited ({st}): {}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        stop_child(&mut self.child, self.grace);
    }
}

/// How to start a [`Coord`].
#[derive(Debug, Clone)]
pub struct CoordOptions {
    /// `127.0.0.1:0` picks a free port.
    pub listen: String,
    pub registration_token: String,
    pub state_dir: Option<PathBuf>,
    /// Seconds (`--trace-update-interval`).
    pub trace_update_interval: u64,
    /// Its stderr to /dev/null instead of the test's.
    pub quiet: bool,
}

impl Default for CoordOptions {
    fn default() -> Self {
        CoordOptions {
            listen: "127.0.0.1:0".into(),
            registration_token: "reg-TOKEN-e2e-1234567890".into(),
            state_dir: None,
            trace_update_interval: 1,
            quiet: false,
        }
    }
}

/// A coordinator process.
pub struct Coord {
    pub child: Child,
    pub url: String,
    pub registration_token: String,
    pub state_dir: Option<PathBuf>,
    pub listen: String,
}

impl Coord {
    pub fn start(state_dir: Option<&Path>) -> Coord {
        Self::start_on("127.0.0.1:0", state_dir)
    }

    pub fn start_on(listen: &str, state_dir: Option<&Path>) -> Coord {
        Self::start_with(&CoordOptions {
            listen: listen.to_owned(),
            state_dir: state_dir.map(Path::to_path_buf),
            ..CoordOptions::default()
        })
    }

    /// Start `termgate-coordinator` with `o`; returns once it printed its URL.
    pub fn start_with(o: &CoordOptions) -> Coord {
        let mut cmd = Command::new(workspace_bin("termgate-coordinator"));
        cmd.args(["--listen", &o.listen])
            .args(["--registration-token", &o.registration_token])
            .args([
                "--trace-update-interval",
                &o.trace_update_interval.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(if o.quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            });
        if let Some(d) = &o.state_dir {
            cmd.arg("--state-dir").arg(d);
        }
        let mut child = cmd.spawn().expect("spawn coordinator");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("coordinator printed nothing").unwrap();
        // "coordinator listening on http://127.0.0.1:PORT  registration token: …"
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no url in {first:?}"))
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        let listen = url.trim_start_matches("http://").to_string();
        Coord {
            child,
            url,
            registration_token: o.registration_token.clone(),
            state_dir: o.state_dir.clone(),
            listen,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Enqueue a job (a [`termgate::admin::JobSpec`], or JSON with more of
    /// `.gitlab-ci.yml`'s keys); returns its id.
    pub fn enqueue(&self, spec: impl serde::Serialize) -> u64 {
        self.post_job("jobs", spec)
    }

    /// Enqueue a job payload verbatim (`POST /admin/jobs/raw`: what the
    /// runner gets, malformed or not); returns its id.
    pub fn enqueue_raw(&self, payload: impl serde::Serialize) -> u64 {
        self.post_job("jobs/raw", payload)
    }

    fn post_job(&self, path: &str, body: impl serde::Serialize) -> u64 {
        let res: CreatedJobs = http()
            .post(format!("{}/admin/{path}", self.url))
            .json(&body)
            .send()
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .unwrap();
        *res.ids
            .first()
            .unwrap_or_else(|| panic!("bad enqueue reply {res:?}"))
    }

    /// Every job, without traces.
    pub fn jobs(&self) -> Vec<JobView> {
        http()
            .get(format!("{}/admin/jobs", self.url))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn job(&self, id: u64) -> Value {
        http()
            .get(format!("{}/admin/jobs/{id}", self.url))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn trace(&self, id: u64) -> Vec<u8> {
        http()
            .get(format!("{}/admin/jobs/{id}/trace", self.url))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec()
    }

    pub fn cancel(&self, id: u64) {
        http()
            .post(format!("{}/admin/jobs/{id}/cancel", self.url))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    pub fn wait_state(&self, id: u64, states: &[&str], timeout: Duration) -> Value {
        wait_until(&format!("job {id} in {states:?}"), timeout, || {
            let j = self.job(id);
            states
                .contains(&j["state"].as_str().unwrap_or(""))
                .then_some(j)
        })
    }

    pub fn wait_finished(&self, id: u64, timeout: Duration) -> Value {
        self.wait_state(id, &["success", "failed", "canceled"], timeout)
    }
}

impl Drop for Coord {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `termgate-runner` of this workspace ([`workspace_bin`]).
pub fn runner_bin() -> PathBuf {
    workspace_bin("termgate-runner")
}

/// Run `termgate-runner <args>` to completion.
pub fn runner_cmd(args: &[&str]) -> std::process::Output {
    Command::new(runner_bin())
        .args(args)
        .output()
        .expect("spawn termgate-runner")
}

/// `termgate-runner register` of runner `name` into `config`.
fn register_into(coord: &Coord, config: &Path, name: &str, extra: &[&str]) {
    let mut args = vec![
        "register",
        "--non-interactive",
        "-c",
        config.to_str().unwrap(),
        "--url",
        &coord.url,
        "--registration-token",
        &coord.registration_token,
        "--name",
        name,
    ];
    if !extra.contains(&"--executor") {
        args.extend_from_slice(&["--executor", "shell"]);
    }
    args.extend_from_slice(extra);
    let out = runner_cmd(&args);
    assert!(
        out.status.success(),
        "register failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A config dir with a registered runner.
pub struct RunnerSetup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl RunnerSetup {
    /// Register with the registration token; `extra` are more register flags
    /// (`--executor shell` unless they name one).
    pub fn register(coord: &Coord, name: &str, extra: &[&str]) -> RunnerSetup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        register_into(coord, &config, name, extra);
        RunnerSetup { dir, config }
    }

    /// Register one more `[[runners]]` into this config (one process, several
    /// runners).
    pub fn add_runner(&self, coord: &Coord, name: &str, extra: &[&str]) {
        register_into(coord, &self.config, name, extra);
    }

    /// Edit the config text (e.g. set check_interval) before running.
    pub fn edit(&self, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, f(text)).unwrap();
    }

    /// Set a global key (before the first `[` section).
    pub fn set_global(&self, line: &str) {
        let key = line.split('=').next().unwrap().trim().to_string();
        self.edit(|t| {
            let mut out = String::new();
            let mut done = false;
            let mut in_global = true;
            for l in t.lines() {
                if l.trim_start().starts_with('[') {
                    if in_global && !done {
                        out.push_str(line);
                        out.push('\n');
                        done = true;
                    }
                    in_global = false;
                }
                if in_global && l.split('=').next().map(str::trim) == Some(key.as_str()) {
                    continue;
                }
                out.push_str(l);
                out.push('\n');
            }
            if !done {
                out.push_str(line);
                out.push('\n');
            }
            out
        });
    }

    /// Append `key = value` to every `[[runners]]` table.
    pub fn set_runner(&self, line: &str) {
        let key = line.split('=').next().unwrap().trim().to_string();
        self.edit(|t| {
            let mut out = String::new();
            let mut in_runner = false;
            for l in t.lines() {
                let trimmed = l.trim_start();
                if trimmed.starts_with('[') {
                    in_runner = trimmed == "[[runners]]";
                }
                if in_runner
                    && !trimmed.starts_with('[')
                    && l.split('=').next().map(str::trim) == Some(key.as_str())
                {
                    continue;
                }
                out.push_str(l);
                out.push('\n');
                if trimmed == "[[runners]]" {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            out
        });
    }

    pub fn builds_dir(&self) -> PathBuf {
        self.dir.path().join("builds")
    }

    pub fn start(&self) -> RunnerProc {
        RunnerProc::start(&self.config, self.dir.path())
    }

    pub fn start_with_env(&self, env: &[(&str, String)]) -> RunnerProc {
        RunnerProc::start_env(&self.config, self.dir.path(), env)
    }

    /// Start the runner with `soft` as its soft open-files limit (the hard
    /// limit unchanged), as systemd starts services with 1024.
    pub fn start_with_soft_nofile(&self, soft: u64) -> RunnerProc {
        RunnerProc::start_cmd(
            Command::new("sh")
                .args(["-c", &format!("ulimit -S -n {soft} && exec \"$0\" \"$@\"")])
                .arg(runner_bin()),
            &self.config,
            self.dir.path(),
        )
    }
}

/// A running `termgate-runner run` whose stderr goes to a log file.
pub struct RunnerProc {
    pub child: Child,
    pub log: PathBuf,
    pub metrics_url: String,
}

impl RunnerProc {
    pub fn start(config: &Path, workdir: &Path) -> RunnerProc {
        Self::start_env(config, workdir, &[])
    }

    pub fn start_env(config: &Path, workdir: &Path, env: &[(&str, String)]) -> RunnerProc {
        Self::start_cmd(
            Command::new(runner_bin()).envs(env.iter().map(|(k, v)| (*k, v.as_str()))),
            config,
            workdir,
        )
    }

    /// `cmd` is the runner binary, or a wrapper that execs it with the
    /// arguments that follow.
    pub fn start_cmd(cmd: &mut Command, config: &Path, workdir: &Path) -> RunnerProc {
        let log = workdir.join(format!("runner-{}.log", std::process::id()));
        let log = unique(log);
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .args(["--log-format", "json", "--log-level", "debug", "run", "-c"])
            .arg(config)
            .args(["--listen-address", "127.0.0.1:0", "-d"])
            .arg(workdir)
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("spawn runner");
        let mut p = RunnerProc {
            child,
            log,
            metrics_url: String::new(),
        };
        let addr = wait_until("runner metrics server", Duration::from_secs(20), || {
            p.check_alive();
            p.log_lines()
                .into_iter()
                .find(|l| {
                    l[termgate::logschema::MSG]
                        == termgate::logschema::msg::METRICS_SERVER_LISTENING
                })
                .and_then(|l| l[termgate::logschema::ADDRESS].as_str().map(str::to_owned))
        });
        p.metrics_url = format!("http://{addr}");
        p
    }

    /// Panic with its log if the runner has exited.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("runner exited ({status}): {}", self.log_text());
        }
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn wait_log(&self, what: &str, timeout: Duration) -> Value {
        wait_until(&format!("log line {what:?}"), timeout, || {
            self.log_lines().into_iter().find(|l| {
                l[termgate::logschema::MSG]
                    .as_str()
                    .is_some_and(|m| m.contains(what))
            })
        })
    }

    /// Wait until "Configuration loaded" was logged `times` times: once at
    /// start, then once per reload the runner applied.
    pub fn wait_config_loaded(&self, times: usize, timeout: Duration) {
        wait_until(
            &format!("\"Configuration loaded\" {times} times"),
            timeout,
            || {
                let loaded = self
                    .log_lines()
                    .iter()
                    .filter(|l| {
                        l[termgate::logschema::MSG]
                            == termgate::logschema::msg::CONFIGURATION_LOADED
                    })
                    .count();
                (loaded >= times).then_some(())
            },
        );
    }

    pub fn metrics(&self) -> String {
        http()
            .get(format!("{}/metrics", self.metrics_url))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Wait for exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_until("runner exit", timeout, || self.child.try_wait().unwrap())
    }
}

impl Drop for RunnerProc {
    /// SIGTERM first: the runner aborts its jobs and kills their process
    /// groups, so no test leaves job processes (`sleep 600`) behind. SIGKILL
    /// only if it has not exited within 10 s.
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

fn unique(p: PathBuf) -> PathBuf {
    let mut n = 0;
    let mut c = p.clone();
    while c.exists() {
        n += 1;
        c = p.with_extension(format!("{n}.log"));
    }
    c
}

/// Processes whose command line mentions `dir` (`pid: command line`): what
/// a test's programs left running under their temporary directory.
pub fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    found
}

/// A job spec for the admin API.
pub fn job(name: &str, script: &[&str]) -> Value {
    json!({"name": name, "script": script})
}

/// Bytes between the echo of `$ <cmd>` and the next section header.
pub fn command_output<'a>(trace: &'a [u8], cmd: &str) -> &'a [u8] {
    let marker = format!("$ {cmd}\x1b[0;m\n");
    let start = find(trace, marker.as_bytes()).unwrap_or_else(|| panic!("no {marker:?} in trace"))
        + marker.len();
    let rest = &trace[start..];
    let end = find(rest, b"\x1b[32;1m")
        .or_else(|| find(rest, b"\x1b[31;1m"))
        .unwrap_or(rest.len());
    &rest[..end]
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
