//! The soak's schedule: start the stack, connect everyone, run the churn
//! and the attacks, sample, restart the coordinator half-way, report.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::stack::{Stack, StackOptions};
use crate::stats::{Sample, Stats};
use crate::{attack, clients, Args};

/// Connections in their handshake at once (the clients').
const CONNECT_PARALLEL: usize = 32;
/// From the end sample to reading the counters.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn soak(args: &Args) -> anyhow::Result<String> {
    let jobs = args.sessions + args.churn_jobs;
    eprintln!("starting the coordinator and a runner with {jobs} slots…");
    let mut stack = Stack::start_with(
        jobs,
        StackOptions {
            // Also gives the runner a /metrics to read at the end.
            max_observers: Some(8),
            persist_coordinator: true,
        },
    )
    .await?;
    let pid = stack.runner_pid();
    let ids = stack.enqueue_sleepers(args.sessions).await?;
    let targets = stack
        .sessions(&ids, Duration::from_secs(600))
        .await
        .context("waiting for the held jobs")?;

    let stats = Arc::new(Stats::new());
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLEL));
    let period = Duration::from_millis(args.key_ms);
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    // The clients' own end: after the connecting (at most 10 min) and the
    // run; they are stopped when the measured stretch is over anyway.
    let connect_started = Instant::now();
    let end = connect_started + Duration::from_secs(600) + run_for;
    eprintln!("connecting {} clients…", targets.len());
    let mut tasks = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let (t, stats, gate) = (t.clone(), stats.clone(), gate.clone());
        let hold = Duration::from_secs(args.hold_secs);
        // A tenth never leave.
        let stays = i % 10 == 0;
        tasks.push(tokio::spawn(clients::held(
            t, stats, gate, period, hold, stays, end,
        )));
    }
    // Everyone connects before the clock starts.
    let connect_limit = connect_started + Duration::from_secs(600);
    while stats.n.connected.load(Relaxed) < args.sessions as i64 {
        if Instant::now() > connect_limit {
            anyhow::bail!(
                "only {} of {} clients connected within 10 min; examples: {:?}",
                stats.n.connected.load(Relaxed),
                args.sessions,
                stats.examples()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    // The measured stretch starts now and ends `run_for` later; the
    // clients stop at `end`, which is later by the unused connect time.
    let t_start = stats.t0.elapsed();
    let measured_end = Instant::now() + run_for;
    // The attacks and the churn stop here, the end sample is taken, and
    // what was in flight gets [`SETTLE`] before the counters are read: the
    // runner's shutdown afterwards (sessions gone: 404s, closes) is not
    // part of the soak.
    let stop_at = measured_end - SETTLE;
    eprintln!(
        "all {} connected in {connect_secs:.0} s; soaking for {:.1} min",
        args.sessions, args.minutes
    );

    let mut samples = vec![Sample::take("start", pid, &stats)?];
    attack::slowloris(
        attack::server_addr(&targets[0].url)?,
        args.slowloris,
        stats.clone(),
        stop_at,
    );
    let mut bad = targets[0].clone();
    bad.authorization = "wrong".into();
    attack::bad_auth(bad, args.bad_auth_per_sec, stats.clone(), stop_at);
    let churn = tokio::spawn(clients::churn(
        stack.coord_url.clone(),
        args.churn_jobs,
        args.churn_job_secs,
        stats.clone(),
        gate.clone(),
        period,
        stop_at,
    ));

    let sample_every = Duration::from_secs_f64(args.sample_minutes * 60.0);
    let middle = measured_end - run_for / 2;
    let mut restarted = false;
    let mut next = Instant::now() + sample_every;
    loop {
        let wake = if restarted { next } else { next.min(middle) }.min(stop_at);
        tokio::time::sleep_until(wake).await;
        if wake == stop_at {
            break;
        }
        if !restarted && wake == middle {
            samples.push(Sample::take("middle", pid, &stats)?);
            restarted = true;
            if args.coordinator_down_secs > 0 {
                eprintln!("restarting the coordinator…");
                stack
                    .restart_coordinator(Duration::from_secs(args.coordinator_down_secs))
                    .await?;
            }
            continue;
        }
        // The table's `min` column says when; only start, middle and end
        // are named.
        samples.push(Sample::take("", pid, &stats)?);
        eprintln!(
            "{:.1} min: {} connected",
            (stats.t0.elapsed() - t_start).as_secs_f64() / 60.0,
            stats.n.connected.load(Relaxed)
        );
        next += sample_every;
    }
    samples.push(Sample::take("end", pid, &stats)?);
    let t_end = stats.t0.elapsed();
    tokio::time::sleep(SETTLE).await;
    let metrics = stack.metrics_text().await.unwrap_or_default();
    let out = report(
        args,
        &stats,
        &samples,
        t_start,
        t_end,
        connect_secs,
        &metrics,
    );
    // Stop the clients now (their `end` is later), then the stack.
    for t in &tasks {
        t.abort();
    }
    churn.abort();
    // The runner's log stays (its path is printed) for what went wrong.
    stack.stop(false);
    Ok(out)
}

fn report(
    args: &Args,
    stats: &Stats,
    samples: &[Sample],
    t_start: Duration,
    t_end: Duration,
    connect_secs: f64,
    metrics: &str,
) -> String {
    let n = &stats.n;
    let mut o = String::new();
    let all = stats.window(t_start, t_end);
    let _ = writeln!(
        o,
        "termgate-soak: {} sessions for {:.1} min (connected in {connect_secs:.0} s); key every {} ms; \
         {} churn jobs of {} s; coordinator down {} s half-way; {} slowloris sockets; {} bad auths/s",
        args.sessions, args.minutes, args.key_ms, args.churn_jobs, args.churn_job_secs,
        args.coordinator_down_secs, args.slowloris, args.bad_auth_per_sec
    );
    let _ = writeln!(
        o,
        "\nechoes: {} ok, {} FAILED; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.echoes(),
        all.failed,
        all.quantile_ms(0.5),
        all.quantile_ms(0.99),
        all.quantile_ms(1.0)
    );
    let _ = writeln!(o, "clients: {} connects ({} after leaving on purpose), {} failed connects, {} terminals closed under a client",
        n.connects.load(Relaxed), n.reconnects.load(Relaxed), n.failed_connects.load(Relaxed), n.unexpected_closes.load(Relaxed));
    let _ = writeln!(
        o,
        "churn jobs: {} ended ({} not successful)",
        n.churn_jobs_done.load(Relaxed),
        n.churn_jobs_failed.load(Relaxed)
    );
    let _ = writeln!(o, "slowloris: {} half-open sockets opened, {} closed by the server before renewal, {} connects failed",
        n.slowloris_opened.load(Relaxed), n.slowloris_closed_by_server.load(Relaxed), n.slowloris_connect_failed.load(Relaxed));
    let _ = writeln!(
        o,
        "bad auth: {} answered 401, {} otherwise",
        n.bad_auth_401.load(Relaxed),
        n.bad_auth_other.load(Relaxed)
    );
    let _ = writeln!(
        o,
        "\n{:<8} {:>6} {:>9} {:>8} {:>8} {:>9} {:>9} {:>6} {:>8}",
        "sample", "min", "connected", "echoes", "failed", "p99 ms", "RSS MiB", "fds", "threads"
    );
    let mut prev = t_start;
    for s in samples {
        let w = stats.window(prev, s.at.max(prev));
        let _ = writeln!(
            o,
            "{:<8} {:>6.1} {:>9} {:>8} {:>8} {:>9.2} {:>9.1} {:>6} {:>8}",
            s.label,
            (s.at.saturating_sub(t_start)).as_secs_f64() / 60.0,
            s.connected,
            w.echoes(),
            w.failed,
            w.quantile_ms(0.99),
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads
        );
        prev = s.at.max(prev);
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let hwm = samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0);
        let _ = writeln!(o, "\nrunner RSS start {:.1} MiB, end {:.1} MiB ({:+.1}%); high-water mark (VmHWM) {:.1} MiB; fds start {}, end {}",
            first.rss_kib as f64 / 1024.0, last.rss_kib as f64 / 1024.0,
            100.0 * (last.rss_kib as f64 - first.rss_kib as f64) / (first.rss_kib.max(1) as f64),
            hwm as f64 / 1024.0, first.fds, last.fds);
    }
    let _ = writeln!(o, "\nthe runner's counters at the end (/metrics):");
    for l in metrics.lines().filter(|l| {
        !l.starts_with('#')
            && (l.contains("rejection") || l.contains("pending") || l.contains("auth_fail"))
    }) {
        let _ = writeln!(o, "  {l}");
    }
    let ex = stats.examples();
    if !ex.is_empty() {
        let _ = writeln!(o, "\nexamples of what failed:");
        for (k, e) in ex {
            let _ = writeln!(o, "  {k}: {e}");
        }
    }
    let _ = writeln!(o, "\nverdict: {} failed echoes (target 0)", all.failed);
    o
}
