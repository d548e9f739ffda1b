//! The command line: flags as given (`Cli`) and resolved with the defaults
//! (`--quick` picks the smoke run's) into `Args`.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "termgate-bench",
    about = "Benchmark the runner's session server against a bare PTY"
)]
pub struct Cli {
    /// Concurrent sessions per RTT level [default: 1,50,300].
    #[arg(long, value_delimiter = ',')]
    sessions: Option<Vec<usize>>,
    /// Sessions in the hold test (one echo a second each); 0 skips it
    /// [default: 1000].
    #[arg(long)]
    hold: Option<usize>,
    /// Seconds of the hold test [default: 10].
    #[arg(long)]
    hold_secs: Option<u64>,
    /// Megabytes (10^6 bytes) through one session for throughput
    /// [default: 100].
    #[arg(long)]
    bulk_mb: Option<u64>,
    /// Seconds of typing per RTT level and side [default: 30]. At 300
    /// sessions a p99 over 10 s is the 300th slowest echo, which a few
    /// stalls of the machine decide; 30 s gives a steadier figure.
    #[arg(long)]
    secs: Option<u64>,
    /// Bare and runner type in turns of this many seconds until each has
    /// typed `--secs`, so both see the same background [default: 1].
    #[arg(long)]
    slice_secs: Option<u64>,
    /// Bulk rounds; each runs bare and runner back to back, the order
    /// alternating (the machine may be shared: the verdict uses the median
    /// of the per-round ratios) [default: 5].
    #[arg(long)]
    bulk_rounds: Option<usize>,
    /// Smoke run: sessions 1,10, hold 20 for 3 s, 10 MB, 3 s per level
    /// (options given explicitly still win).
    #[arg(long)]
    quick: bool,
    /// Also measure one terminal through `docker exec` (Docker executor)
    /// into this local image (scripts/build-test-image.sh builds it).
    #[arg(long, num_args = 0..=1, default_missing_value = "termgate-test/busybox:latest")]
    docker: Option<String>,
    /// Write every timed echo to this CSV file (`phase,sessions,side,sent_ms,rtt_us`;
    /// `sent_ms` counts from the bench's start): when the slow echoes happened.
    #[arg(long)]
    echo_log: Option<PathBuf>,
    /// Also time a third side in the same turns: a plain TCP relay process
    /// in front of a bash PTY (no TLS, no WebSocket), to tell the cost of
    /// the extra process hop from what the runner adds on top.
    #[arg(long)]
    relay: bool,
    /// Run only the observer phase instead: one session types while this
    /// many operators watch it (`/observe`), each level paired with runs
    /// without observers; each level also has one stalled observer that
    /// must be dropped. E.g. `1,8,50`.
    #[arg(long, value_delimiter = ',')]
    observers: Option<Vec<usize>>,
    /// Observer phase: pairs of runs (without, with observers; the order
    /// alternating) per level, sharing its `--secs` [default: 3].
    #[arg(long)]
    observer_rounds: Option<usize>,
    /// Observer phase: megabytes the user's shell prints after each run
    /// with observers, again until the stalled observer is dropped (at
    /// most 4 times; its queue and socket buffers hold about 10 MB)
    /// [default: 16].
    #[arg(long)]
    flood_mb: Option<u64>,
    /// Internal: be that relay, with its shells in this directory.
    #[arg(long, hide = true)]
    pub relay_serve: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Args {
    pub sessions: Vec<usize>,
    pub hold: usize,
    pub hold_secs: u64,
    pub bulk_mb: u64,
    pub secs: u64,
    pub slice_secs: u64,
    pub bulk_rounds: usize,
    pub docker: Option<String>,
    pub echo_log: Option<PathBuf>,
    pub relay: bool,
    /// Observer levels; empty unless `--observers`.
    pub observers: Vec<usize>,
    pub observer_rounds: usize,
    pub flood_mb: u64,
}

impl Cli {
    pub fn resolve(self) -> Args {
        let q = self.quick;
        Args {
            sessions: self
                .sessions
                .unwrap_or_else(|| if q { vec![1, 10] } else { vec![1, 50, 300] }),
            hold: self.hold.unwrap_or(if q { 20 } else { 1000 }),
            hold_secs: self.hold_secs.unwrap_or(if q { 3 } else { 10 }),
            bulk_mb: self.bulk_mb.unwrap_or(if q { 10 } else { 100 }),
            secs: self.secs.unwrap_or(if q { 3 } else { 30 }),
            slice_secs: self.slice_secs.unwrap_or(1).max(1),
            bulk_rounds: self.bulk_rounds.unwrap_or(if q { 1 } else { 5 }).max(1),
            docker: self.docker,
            echo_log: self.echo_log,
            relay: self.relay,
            observers: self.observers.unwrap_or_default(),
            observer_rounds: self.observer_rounds.unwrap_or(if q { 1 } else { 3 }).max(1),
            flood_mb: self.flood_mb.unwrap_or(16).max(1),
        }
    }
}
