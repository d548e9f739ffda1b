//! `--observers`: the user's echo with operators watching (issue 17).
//!
//! One session; its user types as in the RTT levels. Each level `n` runs
//! in rounds of a run without observers and a run with `n` observers
//! (`/observe`, each reading continuously in its own task) plus one
//! stalled observer (connected, never reads), the order alternating from
//! round to round so drift cancels. After each run with observers the
//! user's shell prints `--flood-mb` (again, at most [`MAX_FLOODS`] times)
//! until the runner's `session_closes_total{reason="too_slow"}` shows the
//! stalled observer dropped. Every live observer must have received at
//! least the bytes the user received while it typed; how many also got
//! all of the flood is reported (one that falls too far behind is dropped
//! as well, by design: the user's terminal never waits).

use std::time::Duration;

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use termgate::metrics::close_reason;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::conn::{Conn, ConnectError, SessionTarget};
use crate::load::{self, Echoes};
use crate::phases::TYPING_PERIOD;
use crate::report::{ObserverLevel, ObserverRun};
use crate::sessions::{close_all, connect_all, type_all};
use crate::stack::{self, Stack, StackOptions, Steal};

/// `[session_server] max_observers` of the runner under test: the largest
/// level plus the stalled observer must fit.
pub const MAX_OBSERVERS: usize = 64;
/// Floods of `--flood-mb` at most, per run, to get the stalled observer
/// dropped (its queue, then its socket buffers must fill).
pub const MAX_FLOODS: u64 = 4;
/// How long after a flood the drop may take to show in `/metrics`.
const DROP_WAIT: Duration = Duration::from_secs(5);
/// How long a live observer may take to catch up with the user.
const CATCH_UP: Duration = Duration::from_secs(30);
/// Observers connected at once.
const CONNECT_PARALLEL: usize = 16;

pub async fn run(args: &Args) -> anyhow::Result<Vec<ObserverLevel>> {
    let most = args.observers.iter().copied().max().unwrap_or(0);
    if args.observers.contains(&0) {
        bail!(
            "--observers needs positive counts (each level is paired with a run without observers)"
        );
    }
    if most + 1 > MAX_OBSERVERS {
        bail!(
            "--observers: at most {} (max_observers {MAX_OBSERVERS}, one of them the stalled observer)",
            MAX_OBSERVERS - 1
        );
    }
    eprintln!("starting coordinator and runner with an observe operator…");
    let mut stack = Stack::start_with(
        8,
        StackOptions {
            max_observers: Some(MAX_OBSERVERS),
            ..StackOptions::default()
        },
    )
    .await?;
    let ids = stack.enqueue_sleepers(1).await?;
    let targets = stack.sessions(&ids, Duration::from_secs(60)).await?;
    let token = stack.observe_token.clone().context("no observe operator")?;
    let observe = targets[0].observe(&token)?;
    let (mut conns, failed) = connect_all(&targets[..1]).await;
    if let Some(e) = failed.into_iter().next() {
        bail!("connecting the user's terminal: {e:#}");
    }
    let mut user = conns.pop().context("the user's terminal")?;
    let pid = stack.runner_pid();
    let clients = ClientRuntime::new()?;
    let rounds = args.observer_rounds;
    let slice = (Duration::from_secs(args.secs) / rounds as u32).max(Duration::from_secs(1));

    let mut levels: Vec<ObserverLevel> = args
        .observers
        .iter()
        .map(|&n| ObserverLevel::new(n))
        .collect();
    for round in 0..rounds {
        for level in &mut levels {
            let n = level.n;
            let mut without_p99 = f64::NAN;
            let mut with_p99 = f64::NAN;
            for with in [round % 2 == 1, round % 2 == 0] {
                stack::settle(pid, Duration::from_secs(30)).await?;
                if with {
                    eprintln!("observers: {n} (+1 stalled), round {}…", round + 1);
                    let (e, r, back) = run_with(
                        &stack,
                        clients.handle(),
                        user,
                        &observe,
                        n,
                        slice,
                        args.flood_mb,
                        &mut level.with_steal,
                    )
                    .await?;
                    user = back;
                    with_p99 = e.p99_ms();
                    level.with.merge(e);
                    level.runs.push(r);
                } else {
                    eprintln!("observers: 0 (paired with {n}), round {}…", round + 1);
                    let (e, back) = level
                        .without_steal
                        .measure(type_all(vec![user], TYPING_PERIOD, slice))
                        .await;
                    user = back.into_iter().next().context("the user's terminal")?;
                    without_p99 = e.p99_ms();
                    level.without.merge(e);
                }
            }
            level.round_p99.push((without_p99, with_p99));
        }
    }
    close_all(vec![user]).await;
    drop(clients);
    stack.stop(true);
    Ok(levels)
}

/// One run with `n` live observers and a stalled one: the user types for
/// `slice`, then floods until the stalled observer is dropped; whether
/// every live observer kept up. The user's terminal is handed back.
#[allow(clippy::too_many_arguments)]
async fn run_with(
    stack: &Stack,
    clients: &tokio::runtime::Handle,
    user: Conn,
    observe: &SessionTarget,
    n: usize,
    slice: Duration,
    flood_mb: u64,
    steal: &mut Steal,
) -> anyhow::Result<(Echoes, ObserverRun, Conn)> {
    let too_slow_before = stack.closes(close_reason::TOO_SLOW).await?;
    // The stalled observer: connected, subscribed, never read.
    let stalled = connect(observe).await.context("the stalled observer")?;
    let stop = CancellationToken::new();
    let observers: Vec<anyhow::Result<Observer>> = futures::stream::iter(0..n)
        .map(|_| Observer::start(clients, observe.clone(), stop.clone()))
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    let mut observers = observers
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()
        .context("connecting the observers")?;
    // The connections' handshakes are not what is measured.
    stack::settle(stack.runner_pid(), Duration::from_secs(30)).await?;
    // Whatever the user receives from here on, every observer must get
    // too (they subscribed before it was printed).
    let base = user.received();

    let (echoes, back) = steal
        .measure(type_all(vec![user], TYPING_PERIOD, slice))
        .await;
    let mut user = back.into_iter().next().context("the user's terminal")?;
    if echoes.failed > 0 || echoes.rtt_us.is_empty() {
        bail!(
            "the user's terminal failed while observed ({} failed echoes)",
            echoes.failed
        );
    }

    // What the user received while typing, every observer must have too
    // (they subscribed before it was printed).
    load::drain_quiet(
        &mut user,
        Duration::from_millis(300),
        Duration::from_secs(30),
    )
    .await?;
    let typed = user.received() - base;
    let (kept_up, least) = caught_up(&mut observers, typed).await;

    let flood = flood_mb * 1_000_000;
    let mut flooded_mb = 0;
    let mut dropped = false;
    while !dropped && flooded_mb < flood_mb * MAX_FLOODS {
        load::bulk(&mut user, flood, Duration::from_secs(300))
            .await
            .context("flooding the terminal")?;
        flooded_mb += flood_mb;
        dropped = dropped_since(stack, too_slow_before).await?;
    }
    // The prompt after the flood, so the count below is all of it.
    load::drain_quiet(
        &mut user,
        Duration::from_millis(300),
        Duration::from_secs(30),
    )
    .await?;
    let (flood_kept_up, _) = caught_up(&mut observers, user.received() - base).await;
    stop.cancel();
    for o in observers {
        let _ = o.task.await;
    }
    drop(stalled);
    let too_slow = stack.closes(close_reason::TOO_SLOW).await? - too_slow_before;
    Ok((
        echoes,
        ObserverRun {
            user_bytes: typed,
            least_observer_bytes: least,
            kept_up,
            flood_kept_up,
            observers: n,
            stalled_dropped: dropped,
            flooded_mb,
            too_slow,
        },
        user,
    ))
}

async fn connect(target: &SessionTarget) -> anyhow::Result<Conn> {
    match Conn::ws(target).await {
        Ok(c) => Ok(c),
        Err(ConnectError::Busy) => bail!("{}: 423", target.url),
        Err(ConnectError::Other(e)) => Err(e),
    }
}

/// How many `observers` received at least `want` bytes (waiting up to
/// [`CATCH_UP`] for them), and the fewest bytes any of them has.
async fn caught_up(observers: &mut [Observer], want: u64) -> (usize, u64) {
    let kept_up = futures::future::join_all(observers.iter_mut().map(|o| async {
        let reached = o.bytes.wait_for(|&b| b >= want);
        matches!(tokio::time::timeout(CATCH_UP, reached).await, Ok(Ok(_)))
    }))
    .await
    .into_iter()
    .filter(|&ok| ok)
    .count();
    let least = observers
        .iter()
        .map(|o| *o.bytes.borrow())
        .min()
        .unwrap_or(0);
    (kept_up, least)
}

/// The observers' own runtime (see [`Observer::start`]), shut down
/// without blocking when dropped (a runtime dropped the plain way inside
/// another one panics).
struct ClientRuntime {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl ClientRuntime {
    fn new() -> anyhow::Result<ClientRuntime> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("observers")
            .enable_all()
            .build()
            .context("the observers' runtime")?;
        Ok(ClientRuntime {
            handle: rt.handle().clone(),
            rt: Some(rt),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether the runner counted a `too_slow` close since `before`, within
/// [`DROP_WAIT`].
async fn dropped_since(stack: &Stack, before: f64) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + DROP_WAIT;
    loop {
        if stack.closes(close_reason::TOO_SLOW).await? > before {
            return Ok(true);
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(termgate_test_support::POLL).await;
    }
}

/// A live observer: reads continuously in its own task, publishing its
/// byte count, until `stop` (then it closes) or its connection ends (then
/// `bytes` reports closed).
struct Observer {
    bytes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Connect to `target` and read in a task on `clients`: the observers
    /// are other people's clients, so they get their own scheduler and the
    /// user's reader never queues behind them in the bench's; they still
    /// share the machine's CPUs.
    async fn start(
        clients: &tokio::runtime::Handle,
        target: SessionTarget,
        stop: CancellationToken,
    ) -> anyhow::Result<Observer> {
        let (tx, bytes) = watch::channel(0u64);
        let (ready_tx, ready) = oneshot::channel();
        let task = clients.spawn(async move {
            let mut conn = match connect(&target).await {
                Ok(c) => {
                    let _ = ready_tx.send(Ok(()));
                    c
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    r = conn.recv() => match r {
                        Ok(Some(_)) => {
                            tx.send_replace(conn.received());
                        }
                        // Dropped or failed: `tx` goes, waiters see it.
                        _ => return,
                    },
                }
            }
            conn.close().await;
        });
        ready.await.context("the observer's task ended")??;
        Ok(Observer { bytes, task })
    }
}
