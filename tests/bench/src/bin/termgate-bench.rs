//! Session-server benchmark: echo round trips, bulk throughput and memory
//! per connected session of a real `termgate-runner run` (shell executor,
//! `wss://…/exec` with the session certificate pinned), next to the same
//! figures for a bare PTY driven directly in the same run (the floor).
//!
//! ```text
//! cargo run --release -p termgate-runner --bin termgate-bench -- \
//!     [--sessions 1,50,300] [--hold 1000] [--bulk-mb 100] [--bulk-rounds 5] [--secs 30] [--slice-secs 1] [--quick] [--echo-log FILE] [--relay]
//! cargo run --release -p termgate-bench --bin termgate-bench -- \
//!     --observers 1,8,50 [--secs 30] [--observer-rounds 3] [--flood-mb 16]
//! ```
//!
//! Each session types a key every 100 ms (`x`, then DEL, so the line stays
//! empty) into an interactive `bash` at its prompt and times send → first
//! byte of the echo. At each level the bare PTYs and the runner's sessions
//! are all open at once and type in turns of `--slice-secs`, so both sides
//! are measured against the same background. Bulk: `head -c <n> /dev/zero | tr '\0' x` in one
//! session, in rounds of one bare and one runner run back to back (the
//! order alternating); judged on the median of the per-round ratios. The
//! CPU time stolen by the hypervisor during each side's stretches is
//! reported next to the figures. RSS: the runner's VmRSS with every job running and no client,
//! then with N clients connected and idle; per session = delta / N (TLS,
//! WebSocket, bridge and PTY included; the shells are other processes).
//!
//! `--observers` runs only the observer phase (`observers.rs`): the user's
//! echo p99 with 1, 8, 50 operators watching the session against paired
//! runs without, a stalled observer that must be dropped, and every live
//! observer checked to receive all the user's bytes.

use anyhow::{bail, Context as _};
use clap::Parser;

// A binary's root resolves `mod` next to itself; the modules live in
// `termgate-bench/`.
#[path = "termgate-bench/args.rs"]
mod args;
#[path = "termgate-bench/conn.rs"]
mod conn;
#[path = "termgate-bench/load.rs"]
mod load;
#[path = "termgate-bench/observers.rs"]
mod observers;
#[path = "termgate-bench/phases.rs"]
mod phases;
#[path = "termgate-bench/relay.rs"]
mod relay;
#[path = "termgate-bench/report.rs"]
mod report;
#[path = "termgate-bench/sessions.rs"]
mod sessions;
#[path = "termgate-bench/stack.rs"]
mod stack;

use args::Cli;
use report::{observer_echo_rows, print_observers, print_report, write_echo_log};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(dir) = &cli.relay_serve {
        return relay::serve(dir);
    }
    let args = cli.resolve();
    if args.sessions.is_empty() || args.sessions.contains(&0) {
        bail!("--sessions needs positive counts");
    }
    // The bench holds two sockets and a bare PTY per session; the runner
    // raises its own limit the same way.
    let nofile = termgate_runner::rlimit::raise_nofile()
        .map(|r| r.to)
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let epoch = std::time::Instant::now();
    if !args.observers.is_empty() {
        let levels = rt.block_on(observers::run(&args))?;
        print_observers(&args, &levels);
        if let Some(path) = &args.echo_log {
            write_echo_log(path, epoch, &observer_echo_rows(&levels))
                .with_context(|| format!("writing the echo log {}", path.display()))?;
        }
        return Ok(());
    }
    let report = rt.block_on(phases::run(&args))?;
    print_report(&args, &report, nofile);
    if let Some(path) = &args.echo_log {
        write_echo_log(path, epoch, &report.echo_rows())
            .with_context(|| format!("writing the echo log {}", path.display()))?;
    }
    Ok(())
}
