//! What the soak counts: every echo with its time, failures by kind, the
//! attacks' outcomes, and samples of the runner's resources.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Errors kept per kind, as examples for the report.
const EXAMPLES: usize = 5;

#[derive(Default)]
pub struct Counters {
    /// Sessions connected and at their prompt right now.
    pub connected: AtomicI64,
    pub connects: AtomicU64,
    pub failed_connects: AtomicU64,
    /// Clients that left on purpose and came back.
    pub reconnects: AtomicU64,
    /// Terminals that closed under a client that meant to keep typing.
    pub unexpected_closes: AtomicU64,
    pub churn_jobs_done: AtomicU64,
    /// Short jobs that ended other than `success`.
    pub churn_jobs_failed: AtomicU64,
    pub slowloris_opened: AtomicU64,
    /// Half-open sockets the server closed before the client renewed them.
    pub slowloris_closed_by_server: AtomicU64,
    /// Half-open sockets whose connect failed (refused or reset).
    pub slowloris_connect_failed: AtomicU64,
    pub bad_auth_401: AtomicU64,
    /// Bad-token upgrades answered otherwise (or not at all).
    pub bad_auth_other: AtomicU64,
}

/// One key's outcome: `Some(µs)` for an echo, `None` for a failure.
struct Key {
    at_ms: u32,
    rtt_us: Option<u32>,
}

pub struct Stats {
    pub t0: Instant,
    pub n: Counters,
    keys: Mutex<Vec<Key>>,
    examples: Mutex<Vec<(String, String)>>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            t0: Instant::now(),
            n: Counters::default(),
            keys: Mutex::new(Vec::with_capacity(1 << 20)),
            examples: Mutex::new(Vec::new()),
        }
    }

    fn ms_now(&self) -> u32 {
        u32::try_from(self.t0.elapsed().as_millis()).unwrap_or(u32::MAX)
    }

    pub fn echo(&self, rtt: Duration) {
        let rtt_us = Some(u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX));
        let at_ms = self.ms_now();
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Key { at_ms, rtt_us });
    }

    pub fn failed_echoes(&self, n: u64) {
        let at_ms = self.ms_now();
        let mut k = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..n {
            k.push(Key {
                at_ms,
                rtt_us: None,
            });
        }
    }

    /// Keep `err` as an example of `kind` (the first few of each).
    pub fn example(&self, kind: &str, err: impl std::fmt::Display) {
        let mut ex = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if ex.iter().filter(|(k, _)| k == kind).count() < EXAMPLES {
            ex.push((kind.to_string(), format!("{err:#}")));
        }
    }

    pub fn examples(&self) -> Vec<(String, String)> {
        self.examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Echoes and failures of keys sent in `[from, to)` since `t0`.
    pub fn window(&self, from: Duration, to: Duration) -> Window {
        let (a, b) = (from.as_millis() as u64, to.as_millis() as u64);
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut rtt: Vec<u32> = Vec::new();
        let mut failed = 0u64;
        for k in keys.iter().filter(|k| (a..b).contains(&u64::from(k.at_ms))) {
            match k.rtt_us {
                Some(us) => rtt.push(us),
                None => failed += 1,
            }
        }
        drop(keys);
        rtt.sort_unstable();
        Window {
            rtt_us: rtt,
            failed,
        }
    }
}

/// The keys of one stretch of the soak.
pub struct Window {
    rtt_us: Vec<u32>,
    pub failed: u64,
}

impl Window {
    pub fn echoes(&self) -> usize {
        self.rtt_us.len()
    }

    /// The `q` quantile (nearest rank) in ms; NaN without echoes.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.rtt_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.rtt_us.len() as f64).ceil() as usize).clamp(1, self.rtt_us.len());
        f64::from(self.rtt_us[rank - 1]) / 1000.0
    }
}

/// The runner's resources at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub label: String,
    pub at: Duration,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub fds: usize,
    pub threads: u64,
    pub connected: i64,
}

impl Sample {
    pub fn take(label: &str, pid: u32, stats: &Stats) -> anyhow::Result<Sample> {
        let p = procfs::process::Process::new(i32::try_from(pid).context("pid")?)
            .with_context(|| format!("no runner process {pid}"))?;
        let st = p.status().context("reading the runner's /proc status")?;
        let fds = p.fd_count().context("counting the runner's descriptors")?;
        Ok(Sample {
            label: label.to_string(),
            at: stats.t0.elapsed(),
            rss_kib: st.vmrss.unwrap_or(0),
            hwm_kib: st.vmhwm.unwrap_or(0),
            fds,
            threads: st.threads,
            connected: stats.n.connected.load(Relaxed),
        })
    }
}
