//! The measurement phases of one run, in order: start the stack with every
//! job idle, the hold, the RTT levels (bare, runner and `--relay` in
//! turns), the bulk rounds, then `--docker`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::args::Args;
use crate::conn::{Conn, SessionTarget};
use crate::load::{self, Echoes};
use crate::relay::Relay;
use crate::report::{Hold, Level, Report};
use crate::sessions::{close_all, connect_all, open_bare, open_relayed, type_all};
use crate::stack::{self, Stack, Steal};

/// Keys per second per session while measuring RTT.
pub const TYPING_PERIOD: Duration = Duration::from_millis(100);
/// One echo per second per session in the hold test.
const HOLD_PERIOD: Duration = Duration::from_secs(1);

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let max_level = args.sessions.iter().copied().max().unwrap_or(1);
    let jobs = max_level.max(args.hold);
    let bulk_bytes = args.bulk_mb * 1_000_000;

    // Every job runs (idle) before anything is measured, and each level runs
    // the bare PTYs right before the runner's: the same background for both.
    eprintln!("starting coordinator and runner, {jobs} jobs…");
    let mut stack = Stack::start(jobs + 8).await?;
    let ids = stack.enqueue_sleepers(jobs).await?;
    let cwd = stack.dir.join("bare");
    std::fs::create_dir_all(&cwd).context("bare PTY directory")?;
    let limit = Duration::from_secs(60 + jobs as u64 / 5);
    let targets = stack.sessions(&ids, limit).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = stack.runner_pid();
    let rss_baseline_kib = stack::rss_kib(pid)?;
    let relay = match args.relay {
        true => Some(Relay::start(&cwd).await?),
        false => None,
    };

    // The hold first: its memory figure is then the first touch of that
    // many sessions, not helped (or hurt) by what earlier phases freed.
    let hold = if args.hold > 0 {
        Some(hold_phase(args, &targets, pid, rss_baseline_kib).await?)
    } else {
        None
    };
    let mut levels = Vec::new();
    for &n in &args.sessions {
        levels.push(level_phase(args, n, &cwd, relay.as_ref(), &targets, pid).await?);
    }
    let (bulk, bulk_steal) = bulk_phase(args, &cwd, &targets, bulk_bytes).await?;
    let docker = match &args.docker {
        Some(image) => Some(docker_phase(args, &mut stack, image, bulk_bytes).await?),
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
        bulk_steal,
        rss_baseline_kib,
        hold,
    })
}

/// `--hold` sessions on the runner, one echo a second each, and the
/// runner's RSS with them all connected and idle.
async fn hold_phase(
    args: &Args,
    targets: &[SessionTarget],
    pid: u32,
    rss_baseline_kib: u64,
) -> anyhow::Result<Hold> {
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
    Ok(Hold {
        n: args.hold,
        connected,
        echoes,
        rss_per_session: (rss as f64 - rss_baseline_kib as f64) / connected.max(1) as f64,
    })
}

/// One RTT level: `n` bare PTYs, `n` runner sessions (and `n` relayed
/// shells) all open, typing in turns of `--slice-secs` until each side
/// has typed `--secs`.
async fn level_phase(
    args: &Args,
    n: usize,
    cwd: &Path,
    relay: Option<&Relay>,
    targets: &[SessionTarget],
    pid: u32,
) -> anyhow::Result<Level> {
    eprintln!(
        "{n} sessions: bare PTY and runner, in turns of {} s…",
        args.slice_secs
    );
    let mut bare_conns = open_bare(cwd, n).await?;
    let mut relay_side = match relay {
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
    let mut left = Duration::from_secs(args.secs);
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
    Ok(Level {
        n,
        bare,
        runner,
        bare_steal,
        runner_steal,
        relay,
        turn_p99,
        rss_per_session: (rss as f64 - rss_before as f64) / n as f64,
    })
}

/// Bulk output: MB/s of each round (bare, runner) and the CPU stolen
/// during each side's runs.
async fn bulk_phase(
    args: &Args,
    cwd: &Path,
    targets: &[SessionTarget],
    bulk_bytes: u64,
) -> anyhow::Result<(Vec<(f64, f64)>, (Steal, Steal))> {
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
                let mut c = Conn::bare(cwd)?;
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
    Ok((bulk, (bare_steal, runner_steal)))
}

/// `--docker`: one terminal through `docker exec`, its echoes and the MB/s
/// of each bulk round.
async fn docker_phase(
    args: &Args,
    stack: &mut Stack,
    image: &str,
    bulk_bytes: u64,
) -> anyhow::Result<(Echoes, Vec<f64>)> {
    eprintln!("docker: one terminal through docker exec ({image})…");
    stack.add_docker_runner(image)?;
    let id = stack.enqueue_docker(image).await?;
    let target = stack.sessions(&[id], Duration::from_secs(120)).await?;
    let (conns, failed) = connect_all(&target).await;
    if let Some(e) = failed.into_iter().next() {
        bail!("connecting the docker session: {e:#}");
    }
    let typing = Duration::from_secs(args.secs);
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
    Ok((echoes, rounds))
}

fn mbps((bytes, secs): (u64, f64)) -> f64 {
    bytes as f64 / secs / 1e6
}
