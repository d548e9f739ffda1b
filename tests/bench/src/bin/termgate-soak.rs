//! Soak: a real `termgate-runner run` holds `--sessions` (1000) terminals
//! for `--minutes` (30) with churn, under the attacks of issue 20, and
//! prints failed echoes, the echo p50/p99 and the runner's RSS and open
//! descriptors at the start, every `--sample-minutes` and the end.
//!
//! ```text
//! cargo run --release -p termgate-bench --bin termgate-soak -- \
//!     [--sessions 1000] [--minutes 30] [--churn-jobs 20] [--slowloris 4100] [--bad-auth-per-sec 20]
//! ```
//! (`scripts/soak.sh` runs exactly that; it is not a CI test.)
//!
//! - **Held sessions**: one `sleep 3600` job per session. Each client types
//!   a key every `--key-ms` (`x`, then DEL) and times send → first echo
//!   byte; after a random stretch (`--hold-secs`, uniform between a fifth
//!   of it and twice it) it disconnects, waits up to 2 s and reconnects to
//!   the same job (the seat is released a moment after it left: 423 is
//!   retried). A tenth of the clients never disconnect.
//! - **Jobs ending and starting**: `--churn-jobs` jobs run `sleep
//!   --churn-job-secs`; a client types into each until 15 s before its end
//!   and leaves; when the job has ended a new one is queued in its place.
//! - **A coordinator restart** half-way (down `--coordinator-down-secs`,
//!   the same address and state): job traces and pickups wait, terminals
//!   must not notice.
//! - **Attacks** from other loopback addresses (127.0.0.3 and 127.0.0.4;
//!   the clients use 127.0.0.1): `--slowloris` sockets that each send the
//!   first 5 bytes of a TLS ClientHello and are renewed every 10 s, and
//!   `--bad-auth-per-sec` WebSocket upgrades with a wrong token.
//!
//! A failed echo is a key whose echo did not come within 5 s, or a key the
//! client meant to type after its terminal closed under it. A failed
//! connect is a (re)connect that did not reach the prompt within 30 s. RSS
//! is the runner's `VmRSS`; `VmHWM` (the high-water mark: what the
//! allocator took at the peak and may keep) is shown apart.

use anyhow::{bail, Context as _};
use clap::Parser;

#[path = "termgate-soak/attack.rs"]
mod attack;
#[path = "termgate-soak/clients.rs"]
mod clients;
#[allow(dead_code)]
#[path = "termgate-bench/conn.rs"]
mod conn;
#[allow(dead_code)]
#[path = "termgate-bench/load.rs"]
mod load;
#[path = "termgate-soak/run.rs"]
mod run;
#[allow(dead_code)]
#[path = "termgate-bench/stack.rs"]
mod stack;
#[path = "termgate-soak/stats.rs"]
mod stats;

/// The soak's knobs (see the module docs).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "termgate-soak",
    about = "Hold many terminals for a long time with churn and attacks; print echo failures, p99, RSS, fds"
)]
pub struct Args {
    /// Terminals held (one `sleep 3600` job each).
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// How long the soak runs.
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// A resource sample this often (besides start, middle and end).
    #[arg(long, default_value_t = 5.0)]
    pub sample_minutes: f64,
    /// Each client types one key this often.
    #[arg(long, default_value_t = 2000)]
    pub key_ms: u64,
    /// Mean time a client stays before it disconnects and reconnects.
    #[arg(long, default_value_t = 300)]
    pub hold_secs: u64,
    /// Short jobs that end and are replaced all along.
    #[arg(long, default_value_t = 20)]
    pub churn_jobs: usize,
    /// How long each short job runs.
    #[arg(long, default_value_t = 120)]
    pub churn_job_secs: u64,
    /// How long the coordinator stays down half-way (0: no restart).
    #[arg(long, default_value_t = 20)]
    pub coordinator_down_secs: u64,
    /// Half-open TLS sockets from 127.0.0.3, each renewed every 10 s.
    #[arg(long, default_value_t = 4100)]
    pub slowloris: usize,
    /// Upgrades with a wrong token from 127.0.0.4, per second.
    #[arg(long, default_value_t = 20)]
    pub bad_auth_per_sec: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.sessions == 0 || args.minutes <= 0.0 || args.key_ms == 0 {
        bail!("--sessions, --minutes and --key-ms must be positive");
    }
    if args.churn_job_secs < 30 {
        bail!("--churn-job-secs must be at least 30 (its client leaves 15 s before the end)");
    }
    // Two sockets per session, the attack sockets, the PTYs.
    termgate_runner::rlimit::raise_nofile().context("raising RLIMIT_NOFILE")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = rt.block_on(run::soak(&args))?;
    println!("{report}");
    Ok(())
}
