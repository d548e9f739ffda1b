//! Debian's `prometheus` server for tests, and a job guard: what the
//! console's Prometheus tests share.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;
use crate::procs::Proc;

/// `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Debian's `prometheus` on PATH; `None` (the caller skips, saying so)
/// when it is not installed, which fails the test instead under
/// `TERMGATE_REQUIRE_PROMETHEUS=1` (CI).
pub fn prometheus_or_skip() -> Option<PathBuf> {
    let found = which("prometheus");
    if found.is_none() {
        assert!(
            std::env::var("TERMGATE_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "prometheus is not installed and TERMGATE_REQUIRE_PROMETHEUS=1: \
             run scripts/setup-test-deps.sh (Debian package `prometheus`)"
        );
        eprintln!("SKIPPED: prometheus not on PATH (scripts/setup-test-deps.sh installs it)");
    }
    found
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Starts `bin` (Prometheus) in `dir` on a free loopback port, scraping
/// `targets` (`host:port`) every second as job `termgate`. Returns it, its
/// URL and its log file.
pub fn start_prometheus(bin: &Path, dir: &Path, targets: &[&str]) -> (Proc, String, PathBuf) {
    start_prometheus_with_rules(bin, dir, targets, &[])
}

/// [`start_prometheus`], also loading the rule files `rules` (evaluated
/// every second).
pub fn start_prometheus_with_rules(
    bin: &Path,
    dir: &Path,
    targets: &[&str],
    rules: &[&Path],
) -> (Proc, String, PathBuf) {
    let cfg = dir.join("prometheus.yml");
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let rule_files: String = rules
        .iter()
        .map(|r| format!("  - '{}'\n", r.display()))
        .collect();
    let rule_files = if rule_files.is_empty() {
        String::new()
    } else {
        format!("rule_files:\n{rule_files}")
    };
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             {rule_files}\
             scrape_configs:\n  - job_name: termgate\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .expect("writing prometheus.yml");
    let port = free_port();
    let log = dir.join("prometheus.log");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("prometheus.log"))
        .spawn()
        .expect("spawn prometheus");
    (
        Proc::new(child, "prometheus"),
        format!("http://127.0.0.1:{port}"),
        log,
    )
}

/// Cancels the coordinator job at this admin URL (and waits up to 15 s for
/// it to end) when dropped, so no `sleep` outlives the test.
pub struct CancelOnDrop(pub String);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let c = http();
        let _ = c.post(format!("{}/cancel", self.0)).send();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let state = c
                .get(&self.0)
                .send()
                .and_then(|r| r.json::<Value>())
                .map(|j| j["state"].as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            if ["success", "failed", "canceled", ""].contains(&state.as_str()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
