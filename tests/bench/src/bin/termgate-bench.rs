//! Session-server benchmark: echo round trips, bulk throughput and memory
//! per connected session of a real `termgate-runner run` (shell executor,
//! `wss://…/exec` with the session certificate pinned), next to the same
//! figures for a bare PTY driven directly in the same run (the floor).
//!
//! ```text
//! cargo run --release -p termgate-runner --bin termgate-bench -- \
//!     [--sessions 1,50,300] [--hold 1000] [--bulk-mb 100] [--bulk-rounds 5] [--secs 30] [--slice-secs 1] [--quick] [--echo-log FILE] [--relay]
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use futures::StreamExt as _;

// A binary's root resolves `mod` next to itself; the modules live in
// `termgate-bench/`.
#[path = "termgate-bench/conn.rs"]
mod conn;
#[path = "termgate-bench/load.rs"]
mod load;
#[path = "termgate-bench/relay.rs"]
mod relay;
#[path = "termgate-bench/stack.rs"]
mod stack;

use conn::{Conn, ConnectError, SessionTarget};
use load::Echoes;
use stack::Steal;

/// Stolen CPU time (percent) from which a p99 verdict is flagged as noisy:
/// 1% of a turn's echoes is what a p99 rests on.
const STEAL_NOISY: f64 = 0.5;

/// Keys per second per session while measuring RTT.
const TYPING_PERIOD: Duration = Duration::from_millis(100);
/// One echo per second per session in the hold test.
const HOLD_PERIOD: Duration = Duration::from_secs(1);
/// Connections (or PTYs) opened at once.
const CONNECT_PARALLEL: usize = 32;

#[derive(Debug, Parser)]
#[command(
    name = "termgate-bench",
    about = "Benchmark the runner's session server against a bare PTY"
)]
struct Cli {
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
    /// Internal: be that relay, with its shells in this directory.
    #[arg(long, hide = true)]
    relay_serve: Option<PathBuf>,
}

#[derive(Debug)]
struct Args {
    sessions: Vec<usize>,
    hold: usize,
    hold_secs: u64,
    bulk_mb: u64,
    secs: u64,
    slice_secs: u64,
    bulk_rounds: usize,
    docker: Option<String>,
    echo_log: Option<PathBuf>,
    relay: bool,
}

impl Cli {
    fn resolve(self) -> Args {
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
        }
    }
}

/// One RTT level, both sides.
struct Level {
    n: usize,
    bare: Echoes,
    runner: Echoes,
    bare_steal: Steal,
    runner_steal: Steal,
    /// The `--relay` side, timed in its own turn after each bare/runner pair.
    relay: Option<(Echoes, Steal)>,
    /// p99 of each turn, ms: the bare and runner turns of one index are
    /// next to each other in time.
    turn_p99: Vec<(f64, f64)>,
    /// Runner RSS delta per connected session, KiB, against the RSS right
    /// before the level (the heap may reuse what earlier phases freed).
    rss_per_session: f64,
}

struct Hold {
    n: usize,
    connected: usize,
    echoes: Echoes,
    rss_per_session: f64,
}

struct Report {
    levels: Vec<Level>,
    bulk_bytes: u64,
    /// MB/s of each round, bare and runner run back to back.
    bulk: Vec<(f64, f64)>,
    bulk_steal: (Steal, Steal),
    rss_baseline_kib: u64,
    hold: Option<Hold>,
    /// One session through `docker exec`: echoes and bulk MB/s per round.
    docker: Option<(Echoes, Vec<f64>)>,
}

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
    let report = rt.block_on(run(&args))?;
    print_report(&args, &report, nofile);
    if let Some(path) = &args.echo_log {
        write_echo_log(path, epoch, &report)
            .with_context(|| format!("writing the echo log {}", path.display()))?;
    }
    Ok(())
}

/// Every timed echo as CSV, in sending order per side and level.
fn write_echo_log(path: &Path, epoch: std::time::Instant, r: &Report) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "phase,sessions,side,sent_ms,rtt_us")?;
    let mut rows = |phase: &str, n: usize, side: &str, e: &Echoes| -> std::io::Result<()> {
        let mut order: Vec<usize> = (0..e.sent_at.len()).collect();
        order.sort_unstable_by_key(|&i| e.sent_at[i]);
        for i in order {
            let ms = e.sent_at[i].saturating_duration_since(epoch).as_secs_f64() * 1000.0;
            writeln!(out, "{phase},{n},{side},{ms:.3},{}", e.rtt_us[i])?;
        }
        Ok(())
    };
    if let Some(h) = &r.hold {
        rows("hold", h.n, "runner", &h.echoes)?;
    }
    for l in &r.levels {
        rows("level", l.n, "bare", &l.bare)?;
        if let Some((relay, _)) = &l.relay {
            rows("level", l.n, "relay", relay)?;
        }
        rows("level", l.n, "runner", &l.runner)?;
    }
    out.flush()?;
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let max_level = args.sessions.iter().copied().max().unwrap_or(1);
    let jobs = max_level.max(args.hold);
    let bulk_bytes = args.bulk_mb * 1_000_000;
    let typing = Duration::from_secs(args.secs);

    // Every job runs (idle) before anything is measured, and each level runs
    // the bare PTYs right before the runner's: the same background for both.
    eprintln!("starting coordinator and runner, {jobs} jobs…");
    let mut stack = stack::Stack::start(jobs + 8).await?;
    let ids = stack.enqueue_sleepers(jobs).await?;
    let cwd = stack.dir.join("bare");
    std::fs::create_dir_all(&cwd).context("bare PTY directory")?;
    let limit = Duration::from_secs(60 + jobs as u64 / 5);
    let targets = stack.sessions(&ids, limit).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = stack.runner_pid();
    let rss_baseline_kib = stack::rss_kib(pid)?;
    let relay = match args.relay {
        true => Some(relay::Relay::start(&cwd).await?),
        false => None,
    };

    // The hold first: its memory figure is then the first touch of that
    // many sessions, not helped (or hurt) by what earlier phases freed.
    let hold = if args.hold > 0 {
        eprintln!("hold: {} sessions on the runner…", args.hold);
        let (conns, failed) = connect_all(&targets[..args.hold]).await;
        for e in failed.iter().take(3) {
            eprintln!("  connect failed: {e:#}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = stack::rss_kib(pid)?;
        let connected = conns.len();
        let (mut echoes, conns) =
            type_all(conns, HOLD_PERIOD, Duration::from_secs(args.hold_secs)).await;
        // A session that never connected failed every echo it had to make.
        echoes.failed += failed.len() as u64 * args.hold_secs;
        close_all(conns).await;
        let waited = stack::settle(pid, Duration::from_secs(120)).await?;
        eprintln!(
            "  the runner settled {:.0} s after the hold",
            waited.as_secs_f64()
        );
        Some(Hold {
            n: args.hold,
            connected,
            echoes,
            rss_per_session: (rss as f64 - rss_baseline_kib as f64) / connected.max(1) as f64,
        })
    } else {
        None
    };
    let mut levels = Vec::new();
    for &n in &args.sessions {
        eprintln!(
            "{n} sessions: bare PTY and runner, in turns of {} s…",
            args.slice_secs
        );
        let mut bare_conns = open_bare(&cwd, n).await?;
        let mut relay_side = match &relay {
            Some(r) => Some((
                open_relayed(r.addr, n).await?,
                Echoes::default(),
                Steal::default(),
            )),
            None => None,
        };
        let rss_before = stack::rss_kib(pid)?;
        let (mut runner_conns, failed) = connect_all(&targets[..n]).await;
        if let Some(e) = failed.into_iter().next() {
            bail!("connecting {n} sessions: {e:#}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = stack::rss_kib(pid)?;
        let (mut bare, mut runner) = (Echoes::default(), Echoes::default());
        let (mut bare_steal, mut runner_steal) = (Steal::default(), Steal::default());
        let mut turn_p99 = Vec::new();
        let mut left = typing;
        while !left.is_zero() {
            let slice = left.min(Duration::from_secs(args.slice_secs));
            left -= slice;
            let (e, c) = bare_steal
                .measure(type_all(bare_conns, TYPING_PERIOD, slice))
                .await;
            let bare_p99 = e.p99_ms();
            bare.merge(e);
            bare_conns = c;
            let (e, c) = runner_steal
                .measure(type_all(runner_conns, TYPING_PERIOD, slice))
                .await;
            turn_p99.push((bare_p99, e.p99_ms()));
            runner.merge(e);
            runner_conns = c;
            // After the pair, so bare and runner stay next to each other.
            if let Some((conns, echoes, steal)) = relay_side.as_mut() {
                let (e, c) = steal
                    .measure(type_all(std::mem::take(conns), TYPING_PERIOD, slice))
                    .await;
                echoes.merge(e);
                *conns = c;
            }
        }
        close_all(bare_conns).await;
        close_all(runner_conns).await;
        let relay = match relay_side {
            Some((conns, echoes, steal)) => {
                close_all(conns).await;
                Some((echoes, steal))
            }
            None => None,
        };
        levels.push(Level {
            n,
            bare,
            runner,
            bare_steal,
            runner_steal,
            relay,
            turn_p99,
            rss_per_session: (rss as f64 - rss_before as f64) / n as f64,
        });
    }

    // Rounds of one bare and one runner run back to back, the order
    // alternating, so each pair sees nearly the same background.
    let mut bulk = Vec::new();
    let (mut bare_steal, mut runner_steal) = (Steal::default(), Steal::default());
    for round in 1..=args.bulk_rounds {
        let mut pair = (0.0, 0.0);
        for runner_side in [round % 2 == 0, round % 2 == 1] {
            let name = if runner_side { "runner" } else { "bare PTY" };
            eprintln!("bulk {} MB, round {round}: {name}…", args.bulk_mb);
            let mut c = if runner_side {
                let (mut conns, failed) = connect_all(&targets[..1]).await;
                if let Some(e) = failed.into_iter().next() {
                    bail!("connecting the bulk session: {e:#}");
                }
                conns.pop().context("bulk session")?
            } else {
                let mut c = Conn::bare(&cwd)?;
                load::wait_prompt(&mut c, Duration::from_millis(300), Duration::from_secs(20))
                    .await?;
                c
            };
            let steal = if runner_side {
                &mut runner_steal
            } else {
                &mut bare_steal
            };
            let r = steal
                .measure(load::bulk(&mut c, bulk_bytes, Duration::from_secs(600)))
                .await?;
            c.close().await;
            if runner_side {
                pair.1 = mbps(r);
            } else {
                pair.0 = mbps(r);
            }
        }
        bulk.push(pair);
    }

    let docker = match &args.docker {
        Some(image) => {
            eprintln!("docker: one terminal through docker exec ({image})…");
            stack.add_docker_runner(image)?;
            let id = stack.enqueue_docker(image).await?;
            let target = stack.sessions(&[id], Duration::from_secs(120)).await?;
            let (conns, failed) = connect_all(&target).await;
            if let Some(e) = failed.into_iter().next() {
                bail!("connecting the docker session: {e:#}");
            }
            let (echoes, conns) = type_all(conns, TYPING_PERIOD, typing).await;
            close_all(conns).await;
            let mut rounds = Vec::new();
            for _ in 0..args.bulk_rounds {
                let (mut conns, failed) = connect_all(&target).await;
                if let Some(e) = failed.into_iter().next() {
                    bail!("connecting the docker bulk session: {e:#}");
                }
                let mut c = conns.pop().context("docker bulk session")?;
                let r = load::bulk(&mut c, bulk_bytes, Duration::from_secs(600)).await?;
                c.close().await;
                rounds.push(mbps(r));
            }
            Some((echoes, rounds))
        }
        None => None,
    };

    if let Some(r) = relay {
        r.stop().await;
    }
    stack.stop(true);
    Ok(Report {
        docker,
        levels,
        bulk_bytes,
        bulk,
        bulk_steal: (bare_steal, runner_steal),
        rss_baseline_kib,
        hold,
    })
}

/// `n` terminals from `open`, `CONNECT_PARALLEL` at a time, each at its
/// prompt.
async fn open_at_prompt<F, Fut>(n: usize, open: F) -> anyhow::Result<Vec<Conn>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Conn>>,
{
    let opened: Vec<anyhow::Result<Conn>> = futures::stream::iter(0..n)
        .map(|_| {
            let conn = open();
            async move {
                let mut c = conn.await?;
                load::wait_prompt(&mut c, Duration::from_millis(300), Duration::from_secs(30))
                    .await?;
                Ok(c)
            }
        })
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// `n` bare PTYs, each at its prompt.
async fn open_bare(cwd: &Path, n: usize) -> anyhow::Result<Vec<Conn>> {
    open_at_prompt(n, || std::future::ready(Conn::bare(cwd))).await
}

/// `n` shells behind the `--relay` yardstick, each at its prompt.
async fn open_relayed(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<Vec<Conn>> {
    open_at_prompt(n, || Conn::relayed(addr)).await
}

/// Connect to every target and wait for its prompt; the connected terminals
/// and the errors of the others.
async fn connect_all(targets: &[SessionTarget]) -> (Vec<Conn>, Vec<anyhow::Error>) {
    let results: Vec<anyhow::Result<Conn>> = futures::stream::iter(targets.iter().cloned())
        .map(|t| async move {
            // The previous client's seat is released a moment after it left.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let mut c = loop {
                match Conn::ws(&t).await {
                    Ok(c) => break c,
                    Err(ConnectError::Busy) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(ConnectError::Busy) => bail!("{}: seat still taken (423)", t.exec_url),
                    Err(ConnectError::Other(e)) => return Err(e),
                }
            };
            load::wait_prompt(&mut c, Duration::from_millis(300), Duration::from_secs(30)).await?;
            Ok(c)
        })
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(c) => ok.push(c),
            Err(e) => failed.push(e),
        }
    }
    (ok, failed)
}

/// Every session types for `dur`, start times spread over one period.
async fn type_all(conns: Vec<Conn>, period: Duration, dur: Duration) -> (Echoes, Vec<Conn>) {
    let n = conns.len().max(1) as u32;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = t0 + dur;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let start = t0 + period * (i as u32 % n) / n;
            tokio::spawn(async move {
                let e = load::type_keys(&mut c, start, end, period).await;
                (e, c)
            })
        })
        .collect();
    let mut all = Echoes::default();
    let mut back = Vec::new();
    for t in tasks {
        match t.await {
            Ok((e, c)) => {
                all.merge(e);
                back.push(c);
            }
            Err(_) => all.failed += 1,
        }
    }
    (all, back)
}

async fn close_all(conns: Vec<Conn>) {
    futures::future::join_all(conns.into_iter().map(Conn::close)).await;
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn mbps((bytes, secs): (u64, f64)) -> f64 {
    bytes as f64 / secs / 1e6
}

fn print_report(args: &Args, r: &Report, nofile: u64) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "termgate-bench: {cpus} CPUs ({}), RLIMIT_NOFILE {nofile}, {} s typing per level at 10 keys/s",
        cpu_model(),
        args.secs
    );
    println!();
    println!("Keystroke echo round trip (ms), send -> first byte of echo:");
    println!(
        "{:>8} | {:>8} {:>7} {:>7} {:>7} {:>5} | {:>8} {:>7} {:>7} {:>7} {:>5} | {:>9} | {:>13} | {:>11}",
        "sessions",
        "bare n",
        "p50",
        "p99",
        "max",
        "fail",
        "runner n",
        "p50",
        "p99",
        "max",
        "fail",
        "p99 ratio",
        "RSS/sess KiB",
        "steal % b/r"
    );
    let levels: Vec<(usize, Echoes, Echoes, &Level)> = r
        .levels
        .iter()
        .map(|l| (l.n, l.bare.sorted(), l.runner.sorted(), l))
        .collect();
    for (n, bare, runner, l) in &levels {
        let bare_p99 = bare.quantile_ms(0.99);
        let runner_p99 = runner.quantile_ms(0.99);
        println!(
            "{:>8} | {:>8} {:>7.3} {:>7.3} {:>7.3} {:>5} | {:>8} {:>7.3} {:>7.3} {:>7.3} {:>5} | {:>8.2}x | {:>13.1} | {:>5.1}/{:<5.1}",
            n,
            bare.sent(),
            bare.quantile_ms(0.5),
            bare_p99,
            bare.quantile_ms(1.0),
            bare.failed,
            runner.sent(),
            runner.quantile_ms(0.5),
            runner_p99,
            runner.quantile_ms(1.0),
            runner.failed,
            runner_p99 / bare_p99,
            l.rss_per_session,
            l.bare_steal.percent(),
            l.runner_steal.percent()
        );
    }
    println!("(steal: CPU time the hypervisor gave to other guests during each side's turns)");
    println!(
        "p99 of each {} s turn, median over the turns (a turn hit by a stall counts once):",
        args.slice_secs
    );
    for l in &r.levels {
        let (_, bare) = best_and_median(&l.turn_p99.iter().map(|t| t.0).collect::<Vec<_>>());
        let (_, runner) = best_and_median(&l.turn_p99.iter().map(|t| t.1).collect::<Vec<_>>());
        let (_, ratio) = best_and_median(&l.turn_p99.iter().map(|t| t.1 / t.0).collect::<Vec<_>>());
        println!(
            "{:>8} | bare {bare:.3} ms, runner {runner:.3} ms; runner/bare per turn pair, median {ratio:.2}x",
            l.n
        );
    }
    if levels.iter().any(|l| l.3.relay.is_some()) {
        println!("Relay yardstick (plain TCP relay process -> bash PTY: the extra hop without TLS, WebSocket or runner), same turns:");
        for (n, bare, runner, l) in &levels {
            let Some((relay, steal)) = &l.relay else {
                continue;
            };
            let relay = relay.sorted();
            let q = |p: f64| {
                let b = bare.quantile_ms(p);
                let re = relay.quantile_ms(p);
                let ru = runner.quantile_ms(p);
                format!("{re:.3} ms ({:.2}x bare; runner {:.2}x)", re / b, ru / b)
            };
            println!(
                "{n:>8} | relay n {} fail {} steal {:.1}% | p50 {} | p90 {} | p99 {} | max {:.3} ms",
                relay.sent(),
                relay.failed,
                steal.percent(),
                q(0.5),
                q(0.9),
                q(0.99),
                relay.quantile_ms(1.0)
            );
        }
    }
    println!();
    let bare_runs: Vec<f64> = r.bulk.iter().map(|p| p.0).collect();
    let runner_runs: Vec<f64> = r.bulk.iter().map(|p| p.1).collect();
    let ratios: Vec<f64> = r.bulk.iter().map(|p| p.1 / p.0).collect();
    let (bare, bare_med) = best_and_median(&bare_runs);
    let (runner, runner_med) = best_and_median(&runner_runs);
    let (_, ratio_med) = best_and_median(&ratios);
    let list = |v: &[f64], percent: bool| {
        v.iter()
            .map(|x| {
                if percent {
                    format!("{:.0}%", 100.0 * x)
                } else {
                    format!("{x:.1}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "Bulk output, {} MB through one session, {} rounds of bare and runner back to back (order alternating):",
        r.bulk_bytes / 1_000_000,
        r.bulk.len()
    );
    println!("  bare PTY MB/s: {}", list(&bare_runs, false));
    println!("  runner MB/s:   {}", list(&runner_runs, false));
    println!(
        "  runner/bare:   {}  median {:.0}%",
        list(&ratios, true),
        100.0 * ratio_med
    );
    println!(
        "  best (median): bare PTY {bare:.1} ({bare_med:.1}) MB/s, runner {runner:.1} ({runner_med:.1}) MB/s = {:.0}% ({:.0}%) of bare; steal bare {:.1}%, runner {:.1}%",
        100.0 * runner / bare,
        100.0 * runner_med / bare_med,
        r.bulk_steal.0.percent(),
        r.bulk_steal.1.percent()
    );
    println!(
        "Runner RSS with every job running and no client yet: {} KiB. Hold RSS/session = (RSS with all hold sessions connected and idle - that) / sessions; a level's = (RSS connected - RSS right before the level) / sessions, so it may reuse memory earlier phases freed",
        r.rss_baseline_kib
    );
    if let Some(h) = &r.hold {
        let e = h.echoes.sorted();
        println!(
            "Hold: {}/{} sessions connected, {} echoes in {} s, {} failed, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, RSS {:.1} KiB/session",
            h.connected,
            h.n,
            e.sent(),
            args.hold_secs,
            e.failed,
            e.quantile_ms(0.5),
            e.quantile_ms(0.99),
            e.quantile_ms(1.0),
            h.rss_per_session
        );
    }
    if let Some((echoes, rounds)) = &r.docker {
        let e = echoes.sorted();
        let (best, median) = best_and_median(rounds);
        println!(
            "Docker (docker exec, 1 session): echo p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {} sent, {} failed; bulk {} MB best (median) of {}: {:.1} ({:.1}) MB/s",
            e.quantile_ms(0.5),
            e.quantile_ms(0.99),
            e.quantile_ms(1.0),
            e.sent(),
            e.failed,
            r.bulk_bytes / 1_000_000,
            rounds.len(),
            best,
            median
        );
    }
    println!();
    if let Some((n, bare, runner, l)) = levels.iter().max_by_key(|l| l.0) {
        let (b, rr) = (bare.quantile_ms(0.99), runner.quantile_ms(0.99));
        verdict(
            rr <= 2.0 * b,
            &format!(
                "p99 echo at {n} sessions {rr:.3} ms <= 2x bare {b:.3} ms (steal bare {:.1}%, runner {:.1}%)",
                l.bare_steal.percent(),
                l.runner_steal.percent()
            ),
        );
        if l.bare_steal.percent().max(l.runner_steal.percent()) >= STEAL_NOISY {
            println!(
                "         ^ the hypervisor stole >= {STEAL_NOISY}% of the CPU during these turns: a p99 rests on 1% of the echoes, so that stall alone can decide it"
            );
        }
    }
    // Judged on the paired rounds: each ratio compares two runs a few
    // seconds apart, whereas the best of each side may come from different
    // moments of a shared machine.
    verdict(
        ratio_med >= 0.9,
        &format!(
            "throughput: runner/bare median of {} paired rounds {:.0}% >= 90% (best vs best {:.0}%)",
            ratios.len(),
            100.0 * ratio_med,
            100.0 * runner / bare
        ),
    );
    // Fixed costs (the first connection's allocations) dominate at a few
    // sessions; the per-session figure is judged at the most sessions.
    let (most, rss_at_most) = r
        .hold
        .as_ref()
        .map(|h| (h.connected, h.rss_per_session))
        .into_iter()
        .chain(r.levels.iter().map(|l| (l.n, l.rss_per_session)))
        .max_by_key(|(n, _)| *n)
        .unwrap_or((0, f64::NAN));
    verdict(
        rss_at_most <= 32.0,
        &format!(
            "runner memory {rss_at_most:.1} KiB per connected session at {most} sessions <= 32 KiB"
        ),
    );
    if let Some(h) = &r.hold {
        verdict(
            h.connected == h.n && h.echoes.failed == 0,
            &format!(
                "{} sessions held, {} failed echoes",
                h.connected, h.echoes.failed
            ),
        );
    }
}

/// Best (largest) and median of some figures.
fn best_and_median(v: &[f64]) -> (f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let best = v.last().copied().unwrap_or(f64::NAN);
    let mid = v.len() / 2;
    let median = match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[mid],
        _ => (v[mid - 1] + v[mid]) / 2.0,
    };
    (best, median)
}

fn verdict(ok: bool, what: &str) {
    println!("[{}] {what}", if ok { " met " } else { "MISSED" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_and_median_of_odd_and_even_counts() {
        assert_eq!(best_and_median(&[3.0, 1.0, 2.0]), (3.0, 2.0));
        assert_eq!(best_and_median(&[4.0, 1.0, 3.0, 2.0]), (4.0, 2.5));
        let (best, median) = best_and_median(&[]);
        assert!(best.is_nan() && median.is_nan());
    }
}
