//! What every termgate test suite needs, in one place:
//!
//! - [`wait_until`] / [`wait_until_async`]: poll until a condition holds,
//!   with one timeout policy ([`scaled`]: every timeout is multiplied by
//!   `TERMGATE_TEST_TIMEOUT_SCALE`, default 1, for slow machines);
//! - [`workspace_bin`]: a workspace binary (`termgate-runner`,
//!   `termgate-coordinator`, …) from the running test's target dir, built
//!   once if missing, so `cargo test -p <one crate>` works alone;
//! - [`procs`]: a coordinator and registered runners as real processes on
//!   loopback, stopped when dropped;
//! - [`clidocs`]: the binaries' completion scripts run in bash, their man
//!   pages rendered by groff, checked against their clap definitions;
//! - [`loggen`]: runner logs as termgate writes them (plain and
//!   gzip-rotated), a week with the exact figures its report must show,
//!   and a large week for the report's benchmark.
//!
//! Panics are the error handling: this crate is for tests (and the bench).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod clidocs;
pub mod loggen;
pub mod procs;
pub mod prom;
pub mod systemd;
pub mod tmux;

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The one knob for test timeouts: a factor applied to every timeout of
/// [`wait_until`] and [`wait_until_async`] (`2` on a loaded machine).
pub const TIMEOUT_SCALE_ENV: &str = "TERMGATE_TEST_TIMEOUT_SCALE";

/// How often the waits poll.
pub const POLL: Duration = Duration::from_millis(50);

/// `d` times `TERMGATE_TEST_TIMEOUT_SCALE` (default 1; ignored unless a
/// positive number).
pub fn scaled(d: Duration) -> Duration {
    let k = std::env::var(TIMEOUT_SCALE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|k| k.is_finite() && *k > 0.0)
        .unwrap_or(1.0);
    d.mul_f64(k)
}

/// Poll `pred` every [`POLL`] until it returns `Some`; panic naming `what`
/// after [`scaled`]`(timeout)`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut pred: impl FnMut() -> Option<T>) -> T {
    let limit = scaled(timeout);
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = pred() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async conditions: polls the future `pred` makes every
/// [`POLL`] (tokio's clock, so paused-time tests work too).
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut pred: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let limit = scaled(timeout);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = pred().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The package that builds each workspace binary.
fn package_of(bin: &str) -> &str {
    match bin {
        "termgate" => "termgate-console",
        "termgate-console-bench"
        | "termgate-render-bench"
        | "termgate-tally-bench"
        | "termgate-report-bench" => "termgate-bench",
        other => other,
    }
}

/// `target/<profile>/` of the running executable (test binaries live in
/// its `deps/`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("locating the running test binary");
    let dir = exe.parent().expect("the test binary's directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The folders whose sources make the binary `name` (its crate's and the
/// root crate's), relative to the workspace root.
fn sources_of(bin: &str) -> &'static [&'static str] {
    match package_of(bin) {
        "termgate-runner" => &["runner/src", "src"],
        "termgate-coordinator" => &["tests/coordinator/src", "src"],
        "termgate-console" => &["console/src", "src"],
        _ => &["src"],
    }
}

/// The newest modification time of a `.rs` file under `dir`.
fn newest_under(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest_under(&p)
        } else if p.extension().is_some_and(|x| x == "rs") {
            e.metadata().and_then(|m| m.modified()).ok()
        } else {
            None
        };
        newest = newest.max(t);
    }
    newest
}

/// Whether `bin` exists and is newer than every source it is built from.
fn is_fresh(bin: &std::path::Path, name: &str) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    sources_of(name)
        .iter()
        .filter_map(|d| newest_under(&root.join(d)))
        .all(|t| t <= built)
}

/// The workspace binary `name` (e.g. `"termgate-coordinator"`) in the target
/// dir of the running test (`target/<profile>/`). If it is missing, or older
/// than a source file of its crate (a suite run alone after an edit), it is
/// built once, with `$CARGO build -p <its package> --bin <name>` in the same
/// profile and target dir. `CARGO_BIN_EXE_*` covers only the test's own
/// crate: this covers the others. (`cargo test --workspace` has built every
/// binary fresh already, so it never builds here.)
pub fn workspace_bin(name: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let dir = profile_dir();
    let bin = dir.join(name);
    if is_fresh(&bin, name) {
        return bin;
    }
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if is_fresh(&bin, name) {
        return bin;
    }
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(p) => p.to_owned(),
    };
    let target_dir = dir.parent().expect("the target dir").to_path_buf();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            &profile,
            "-p",
            package_of(name),
        ])
        .args(["--bin", name, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build {name}: {e}"));
    assert!(status.success(), "building {name} failed ({status})");
    assert!(
        bin.is_file(),
        "{} is missing after building it",
        bin.display()
    );
    bin
}

/// A blocking HTTP client with a 30 s timeout.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_the_value() {
        let mut n = 0;
        let v = wait_until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "timed out")]
    fn wait_until_panics_after_the_timeout() {
        wait_until::<()>("never", Duration::from_millis(100), || None);
    }

    #[tokio::test]
    async fn wait_until_async_returns_the_value() {
        let mut n = 0;
        let v = wait_until_async("n to reach 2", Duration::from_secs(5), || {
            n += 1;
            let r = (n >= 2).then_some(n);
            async move { r }
        })
        .await;
        assert_eq!(v, 2);
    }

    #[test]
    fn finds_or_builds_a_workspace_binary() {
        let bin = workspace_bin("termgate-coordinator");
        assert!(bin.is_file());
        assert_eq!(bin.parent(), Some(profile_dir().as_path()));
    }
}
