//! The runner under test: a `termgate-coordinator` and a registered
//! shell runner with a session server, as real processes, plus the
//! coordinator's admin API to queue jobs and read their sessions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use termgate::admin::{CreatedJobs, JobView};
use termgate_test_support::procs::{stop_child, Coord, CoordOptions};

use crate::conn::{pinned_tls, SessionTarget};

const REGISTRATION_TOKEN: &str = "reg-TOKEN-bench-1234567890";

/// `termgate-runner` of this workspace, next to this binary (built if
/// missing).
pub fn runner_bin() -> anyhow::Result<PathBuf> {
    Ok(termgate_test_support::workspace_bin("termgate-runner"))
}

pub struct Stack {
    coord: Coord,
    // Read by `termgate-soak` only (this file is in both binaries).
    #[allow(dead_code)]
    coord_opts: CoordOptions,
    runner: Child,
    pub coord_url: String,
    pub dir: PathBuf,
    http: reqwest::Client,
    /// The observe operator's token ([`StackOptions::max_observers`]).
    pub observe_token: Option<String>,
    /// `http://127.0.0.1:PORT` of the runner's `/metrics`
    /// ([`StackOptions::max_observers`]).
    metrics_url: Option<String>,
}

/// What the runner under test has besides the session server.
#[derive(Debug, Clone, Copy, Default)]
pub struct StackOptions {
    /// An operator with the `observe` role (its token in
    /// [`Stack::observe_token`]) and `[session_server] max_observers`; the
    /// runner then also serves `/metrics` ([`Stack::closes`]).
    pub max_observers: Option<usize>,
    /// The coordinator keeps its state in `<dir>/coordinator`, so
    /// [`Stack::restart_coordinator`] brings back the same jobs.
    pub persist_coordinator: bool,
}

impl Stack {
    /// Start the coordinator, register a shell runner with `concurrent`
    /// slots and a session server on 127.0.0.1:0, start it.
    pub async fn start(concurrent: usize) -> anyhow::Result<Stack> {
        Self::start_with(concurrent, StackOptions::default()).await
    }

    /// [`Stack::start`] with `opts`.
    pub async fn start_with(concurrent: usize, opts: StackOptions) -> anyhow::Result<Stack> {
        let bin = runner_bin()?;
        let dir = std::env::temp_dir().join(format!("termgate-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

        let coord_opts = CoordOptions {
            registration_token: REGISTRATION_TOKEN.into(),
            // Idle jobs touch the coordinator this often: keep that
            // background load (1000 jobs) out of the measurements.
            trace_update_interval: 30,
            quiet: true,
            state_dir: opts.persist_coordinator.then(|| dir.join("coordinator")),
            ..CoordOptions::default()
        };
        let coord = Coord::start_with(&coord_opts);
        let coord_url = coord.url.clone();

        let config = dir.join("config.toml");
        let out = Command::new(&bin)
            .args(["register", "--non-interactive", "-c"])
            .arg(&config)
            .args(["--url", &coord_url])
            .args(["--registration-token", REGISTRATION_TOKEN])
            .args(["--executor", "shell", "--name", "bench", "--run-untagged"])
            .output()
            .context("running termgate-runner register")?;
        if !out.status.success() {
            bail!(
                "register failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        edit_config(&config, concurrent, opts.max_observers)?;
        let observe_token = match opts.max_observers {
            Some(_) => Some(operator_add(&bin, &config, "bench-observer", "observe")?),
            None => None,
        };

        // The metrics server's address is only logged at `info`.
        let level = match opts.max_observers {
            Some(_) => "info",
            None => "warn",
        };
        let log_path = dir.join("runner.log");
        let log = std::fs::File::create(&log_path).context("runner log")?;
        let runner = Command::new(&bin)
            .args(["--log-format", "json", "--log-level", level, "run", "-c"])
            .arg(&config)
            .arg("-d")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning the runner")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("HTTP client")?;
        let metrics_url = match opts.max_observers {
            Some(_) => Some(metrics_url(&log_path).await),
            None => None,
        };
        Ok(Stack {
            coord,
            coord_opts,
            runner,
            coord_url,
            dir,
            http,
            observe_token,
            metrics_url,
        })
    }

    /// The runner's `gitlab_runner_session_closes_total{reason}` now (0
    /// before the first such close); needs [`StackOptions::max_observers`].
    pub async fn closes(&self, reason: &str) -> anyhow::Result<f64> {
        let text = self.metrics_text().await?;
        let sample = termgate_console::scrape::parse_metrics(&text)
            .map_err(|e| anyhow::anyhow!("the runner's /metrics: {e}"))?;
        Ok(sample.closes_total.get(reason).copied().unwrap_or(0.0))
    }

    /// Stop the coordinator (SIGTERM), leave it down for `down`, start it
    /// again on the same address (with its state when
    /// [`StackOptions::persist_coordinator`]). Used by `termgate-soak`.
    #[allow(dead_code)]
    pub async fn restart_coordinator(&mut self, down: Duration) -> anyhow::Result<()> {
        stop_child(&mut self.coord.child, Duration::from_secs(5));
        tokio::time::sleep(down).await;
        let opts = CoordOptions {
            listen: self.coord.listen.clone(),
            ..self.coord_opts.clone()
        };
        self.coord = tokio::task::spawn_blocking(move || Coord::start_with(&opts))
            .await
            .context("restarting the coordinator")?;
        Ok(())
    }

    /// The runner's `/metrics` text; needs [`StackOptions::max_observers`].
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        let url = self
            .metrics_url
            .as_deref()
            .context("the runner was started without a metrics server")?;
        self.http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .context("GET /metrics")?
            .error_for_status()
            .context("GET /metrics")?
            .text()
            .await
            .context("GET /metrics body")
    }

    pub fn runner_pid(&self) -> u32 {
        self.runner.id()
    }

    /// Register a Docker runner (tag `docker`, `image`, no pulls) into the
    /// running runner's config and reload it with SIGHUP.
    pub fn add_docker_runner(&self, image: &str) -> anyhow::Result<()> {
        let bin = runner_bin()?;
        let config = self.dir.join("config.toml");
        let out = Command::new(&bin)
            .args(["register", "--non-interactive", "-c"])
            .arg(&config)
            .args(["--url", &self.coord_url])
            .args(["--registration-token", REGISTRATION_TOKEN])
            .args([
                "--executor",
                "docker",
                "--name",
                "bench-docker",
                "--tag-list",
                "docker",
            ])
            .args(["--docker-image", image])
            .output()
            .context("registering the docker runner")?;
        if !out.status.success() {
            bail!(
                "register (docker) failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = std::fs::read_to_string(&config).context("reading config.toml")?;
        let image_line = format!("image = \"{image}\"");
        let text = text.replacen(
            &image_line,
            &format!("{image_line}\n    pull_policy = [\"if-not-present\"]"),
            1,
        );
        std::fs::write(&config, text).context("writing config.toml")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.runner.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .context("SIGHUP to the runner")?;
        Ok(())
    }

    /// Queue one `sleep 3600` job for the Docker runner.
    pub async fn enqueue_docker(&self, image: &str) -> anyhow::Result<u64> {
        self.enqueue(json!({"name": "bench-docker", "tags": ["docker"], "image": image, "script": ["sleep 3600"]}))
            .await
    }

    /// Queue `n` jobs running `sleep 3600`; returns their ids.
    pub async fn enqueue_sleepers(&self, n: usize) -> anyhow::Result<Vec<u64>> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(
                self.enqueue(json!({"name": format!("bench-{i}"), "script": ["sleep 3600"]}))
                    .await?,
            );
        }
        Ok(ids)
    }

    /// `POST /admin/jobs` with `job`; the new job's id.
    async fn enqueue(&self, job: Value) -> anyhow::Result<u64> {
        let res: CreatedJobs = self
            .http
            .post(format!("{}/admin/jobs", self.coord_url))
            .json(&job)
            .send()
            .await
            .context("POST /admin/jobs")?
            .error_for_status()
            .context("POST /admin/jobs")?
            .json()
            .await
            .context("POST /admin/jobs reply")?;
        res.ids
            .first()
            .copied()
            .with_context(|| format!("bad enqueue reply {res:?}"))
    }

    /// Wait until every job in `ids` runs with a session; their targets in
    /// the same order.
    pub async fn sessions(
        &mut self,
        ids: &[u64],
        limit: Duration,
    ) -> anyhow::Result<Vec<SessionTarget>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.runner.try_wait().context("runner status")? {
                bail!(
                    "the runner exited ({status}); log: {}",
                    self.dir.join("runner.log").display()
                );
            }
            let jobs: Vec<JobView> = self
                .http
                .get(format!("{}/admin/jobs", self.coord_url))
                .send()
                .await
                .context("GET /admin/jobs")?
                .json()
                .await
                .context("GET /admin/jobs reply")?;
            let running = |id: u64| {
                jobs.iter().find(|j| {
                    j.id == id
                        && j.state == "running"
                        && j.session.as_ref().is_some_and(|s| !s.url.is_empty())
                })
            };
            let ready = ids.iter().filter(|id| running(**id).is_some()).count();
            if ready == ids.len() {
                let mut tls = None;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let s = running(*id)
                        .and_then(|j| j.session.as_ref())
                        .context("session")?;
                    let pem = s.certificate.as_str();
                    let cfg = match &tls {
                        Some((p, c)) if p == pem => std::sync::Arc::clone(c),
                        _ => {
                            let c = pinned_tls(pem)?;
                            tls = Some((pem.to_string(), c.clone()));
                            c
                        }
                    };
                    out.push(SessionTarget {
                        url: format!("{}/exec", s.url.replacen("https://", "wss://", 1)),
                        authorization: s.authorization.clone(),
                        tls: cfg,
                    });
                }
                return Ok(out);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {ready} of {} jobs running with a session after {limit:?}",
                    ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// SIGTERM (the runner aborts its jobs), then SIGKILL after a grace;
    /// then kill whatever job process outlived it. The directory (with the
    /// runner's log) is removed only when `clean`.
    pub fn stop(&mut self, clean: bool) {
        stop_child(&mut self.runner, Duration::from_secs(30));
        stop_child(&mut self.coord.child, Duration::from_secs(5));
        kill_leftovers(&self.dir);
        if clean {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("runner log kept: {}", self.dir.join("runner.log").display());
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Reached with the runner still up only on an error path.
        let clean = matches!(self.runner.try_wait(), Ok(Some(_)));
        self.stop(clean);
    }
}

/// SIGKILL the process group of every process whose command line or
/// environment names `dir` (job scripts live under it and their children
/// inherit `CI_PROJECT_DIR`; an aborted job's `sleep` can outlive its
/// script). Warns with the count: after the runner stopped there should be
/// none.
fn kill_leftovers(dir: &Path) {
    let mut found = 0usize;
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let names_dir = ["cmdline", "environ"].iter().any(|f| {
            std::fs::read(e.path().join(f))
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(&needle))
        });
        if names_dir {
            found += 1;
            let pid = nix::unistd::Pid::from_raw(pid);
            if let Ok(pgid) = nix::unistd::getpgid(Some(pid)) {
                if pgid.as_raw() > 1 && pgid != nix::unistd::getpgrp() {
                    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    if found > 0 {
        eprintln!("warning: {found} job processes outlived the runner; killed them");
    }
}

/// `termgate-runner operator add NAME --role ROLE -c config` (which also
/// sets `[session_server] operators_file`); the token it prints.
fn operator_add(bin: &Path, config: &Path, name: &str, role: &str) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["operator", "add", name, "--role", role, "-c"])
        .arg(config)
        .output()
        .context("running termgate-runner operator add")?;
    if !out.status.success() {
        bail!(
            "operator add failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let token = String::from_utf8(out.stdout)
        .context("operator add printed no text")?
        .trim()
        .to_string();
    if !token.starts_with(termgate::operator::TOKEN_PREFIX) {
        bail!("operator add printed no token");
    }
    Ok(token)
}

/// The address the runner's metrics server logged (`info`) in `log`.
async fn metrics_url(log: &Path) -> String {
    use termgate::logschema::{msg, ADDRESS, MSG};
    let addr = termgate_test_support::wait_until_async(
        "the runner's metrics server",
        Duration::from_secs(30),
        || async {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l[MSG] == msg::METRICS_SERVER_LISTENING)
                .and_then(|l| l[ADDRESS].as_str().map(str::to_owned))
        },
    )
    .await;
    format!("http://{addr}")
}

/// `concurrent`, a 1 s `check_interval`, a session server on 127.0.0.1:0
/// whose sessions outlive the benchmark; with `max_observers`, that limit
/// and a metrics server on 127.0.0.1:0.
fn edit_config(path: &Path, concurrent: usize, max_observers: Option<usize>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).context("reading the runner config")?;
    let mut doc: toml_edit::DocumentMut = text.parse().context("parsing the runner config")?;
    doc["concurrent"] = toml_edit::value(i64::try_from(concurrent).context("concurrent")?);
    doc["check_interval"] = toml_edit::value(1);
    doc["shutdown_timeout"] = toml_edit::value(10);
    let mut ss = toml_edit::Table::new();
    ss["listen_address"] = toml_edit::value("127.0.0.1:0");
    ss["session_timeout"] = toml_edit::value(36_000);
    if let Some(max) = max_observers {
        ss["max_observers"] = toml_edit::value(i64::try_from(max).context("max_observers")?);
        doc["listen_address"] = toml_edit::value("127.0.0.1:0");
    }
    doc["session_server"] = toml_edit::Item::Table(ss);
    std::fs::write(path, doc.to_string()).context("writing the runner config")
}

/// The process's resident set (`VmRSS`), KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    proc_of(pid)?
        .status()
        .with_context(|| format!("reading /proc/{pid}/status"))?
        .vmrss
        .context("no VmRSS")
}

/// CPU time (user + system) the process has used so far, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = proc_of(pid)?
        .stat()
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(stat.utime + stat.stime)
}

fn proc_of(pid: u32) -> anyhow::Result<procfs::process::Process> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    procfs::process::Process::new(pid).with_context(|| format!("no process {pid}"))
}

/// Wait (at most `limit`) until the process uses under 10% of a CPU over a
/// second: after the hold, the runner is still killing 1000 shells, and
/// the next level must not be measured against that.
pub async fn settle(pid: u32, limit: Duration) -> anyhow::Result<Duration> {
    let t0 = tokio::time::Instant::now();
    let hz = procfs::ticks_per_second();
    let mut last = cpu_ticks(pid)?;
    while t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_ticks(pid)?;
        if now.saturating_sub(last) * 10 < hz {
            return Ok(t0.elapsed());
        }
        last = now;
    }
    Ok(t0.elapsed())
}

/// Share of the machine's CPU time that the hypervisor gave to other guests
/// (`steal` in `/proc/stat`) over the measured stretches of one side. On a
/// shared VM that is what moves the tail latencies from run to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Steal {
    steal: u64,
    total: u64,
}

/// `(steal, all)` ticks of every CPU since boot; zeros if unreadable.
fn steal_now() -> (u64, u64) {
    use procfs::CurrentSI as _;
    match procfs::KernelStats::current() {
        Ok(s) => {
            let t = &s.total;
            let steal = t.steal.unwrap_or(0);
            let total = t.user
                + t.nice
                + t.system
                + t.idle
                + t.iowait.unwrap_or(0)
                + t.irq.unwrap_or(0)
                + t.softirq.unwrap_or(0)
                + steal;
            (steal, total)
        }
        Err(_) => (0, 0),
    }
}

impl Steal {
    /// Run `f` and add its stretch to this side's count.
    pub async fn measure<T>(&mut self, f: impl std::future::Future<Output = T>) -> T {
        let before = steal_now();
        let out = f.await;
        let after = steal_now();
        self.steal += after.0.saturating_sub(before.0);
        self.total += after.1.saturating_sub(before.1);
        out
    }

    /// Percent of CPU time stolen; NaN if nothing was measured.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            100.0 * self.steal as f64 / self.total as f64
        }
    }
}
