//! Polls every runner's `/metrics` on a shared tick with bounded concurrency,
//! backs off per runner when it is down ([`super::link`]: the reconnect
//! state, rates and history per runner) and publishes `Vec<RunnerState>` on a `watch` channel.
//! The loop itself, [`poll_loop`], is shared with the `/sessions` poller.
//!
//! The channel holds the only copy of the states: the poller updates it in
//! place (`send_modify`), once per batch of results, so an hour of history
//! for a large fleet is not duplicated on every publish. Readers should
//! `borrow()` and render, not clone whole histories every frame.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::client::{ScrapeClient, ScrapeError};
use super::link::Tracker;
pub use super::link::{Backoff, Link};
pub use super::options::PollOptions;
use crate::model::{Health, RunnerSource, RunnerState, Sample};

/// Results arriving within this window are published together.
const COALESCE: Duration = Duration::from_millis(100);

/// The next shared tick strictly after `after`.
fn next_tick(t0: Instant, after: Instant, interval: Duration) -> Instant {
    let n = after.saturating_duration_since(t0).as_nanos() / interval.as_nanos().max(1) + 1;
    let k = u32::try_from(n).unwrap_or(u32::MAX);
    interval.checked_mul(k).map_or(after + interval, |d| t0 + d)
}

/// Start polling `sources` until `shutdown`; must be called inside a tokio
/// runtime. The receiver starts with every runner `Unknown`.
pub fn spawn(
    sources: Vec<RunnerSource>,
    opts: PollOptions,
    shutdown: CancellationToken,
) -> watch::Receiver<Vec<RunnerState>> {
    let now = SystemTime::now();
    let states: Vec<RunnerState> = sources
        .iter()
        .map(|s| RunnerState::new(s.clone(), now))
        .map(|mut s| {
            s.history.keep = opts.history;
            s
        })
        .collect();
    let (tx, rx) = watch::channel(states);
    tokio::spawn(Poller::new(sources, opts).run(tx, shutdown));
    rx
}

/// Like [`spawn`], starting from existing states (one per source, same
/// order): their history and latest samples are kept, e.g. across a config
/// reload.
pub fn spawn_with_states(
    states: Vec<RunnerState>,
    opts: PollOptions,
    shutdown: CancellationToken,
) -> watch::Receiver<Vec<RunnerState>> {
    let sources = states.iter().map(|s| s.source.clone()).collect();
    let (tx, rx) = watch::channel(states);
    tokio::spawn(Poller::new(sources, opts).run(tx, shutdown));
    rx
}

/// One source's poll, as [`poll_loop`] hands it to its publisher.
#[derive(Debug)]
pub struct Polled<T, E> {
    /// The source's position in the list.
    pub index: usize,
    pub result: Result<T, E>,
    /// When it finished (wall clock, for the state).
    pub at: SystemTime,
    /// After a failure: how long until the next try (the source's backoff).
    pub retry_in: Option<Duration>,
}

/// The loop of every direct poller (`/metrics` here, `/sessions` in
/// [`super::sessions`]): each of `n` sources is polled with `fetch(i)` on a
/// shared tick of `opts.interval`, at most `opts.concurrency` at once; a
/// source that fails waits for its [`Link`]'s backoff, one that hangs never
/// delays the others. Results arriving close together are handed to
/// `publish` in one batch. Ends when `shutdown` is cancelled.
pub async fn poll_loop<T, E, F, Fut, P>(
    n: usize,
    opts: PollOptions,
    fetch: F,
    mut publish: P,
    shutdown: CancellationToken,
) where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    P: FnMut(Vec<Polled<T, E>>),
{
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let interval = opts.interval.max(Duration::from_millis(10));
    let mut links = vec![Link::Fresh; n];
    let mut in_flight = vec![false; n];
    let t0 = Instant::now();
    let mut tick = t0;
    let mut inflight = FuturesUnordered::new();
    let mut pending: Vec<Polled<T, E>> = Vec::new();
    let mut publish_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        for (i, link) in links.iter().enumerate() {
            if in_flight[i] || link.due_at(now, tick) > now {
                continue;
            }
            in_flight[i] = true;
            let (sem, request) = (sem.clone(), fetch(i));
            inflight.push(async move {
                let permit = sem.acquire_owned().await;
                let r = request.await;
                drop(permit);
                (i, r, SystemTime::now(), Instant::now())
            });
        }
        if now >= tick {
            tick = next_tick(t0, now, interval);
        }
        let wake = links
            .iter()
            .zip(&in_flight)
            .filter(|(_, busy)| !**busy)
            .map(|(l, _)| l.due_at(now, tick))
            .chain(publish_at)
            .min()
            .unwrap_or(tick);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(first) = inflight.next(), if !inflight.is_empty() => {
                let mut done = vec![first];
                while let Some(Some(more)) = inflight.next().now_or_never() {
                    done.push(more);
                }
                for (index, result, at, finished) in done {
                    in_flight[index] = false;
                    let retry_in = match &result {
                        Ok(_) => {
                            links[index].succeeded();
                            None
                        }
                        Err(_) => Some(links[index].failed(finished, &opts.backoff)),
                    };
                    pending.push(Polled { index, result, at, retry_in });
                }
                if inflight.is_empty() {
                    publish_at = Some(Instant::now());
                } else {
                    publish_at.get_or_insert_with(|| Instant::now() + COALESCE);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        if publish_at.is_some_and(|p| p <= Instant::now()) {
            publish_at = None;
            let batch = std::mem::take(&mut pending);
            if !batch.is_empty() {
                publish(batch);
            }
        }
    }
}

/// The direct-scrape poller (see [`spawn`]).
pub struct Poller {
    sources: Vec<RunnerSource>,
    opts: PollOptions,
    trackers: Vec<Tracker>,
}

impl Poller {
    pub fn new(sources: Vec<RunnerSource>, opts: PollOptions) -> Self {
        let trackers = sources.iter().map(|_| Tracker::new(&opts)).collect();
        Poller {
            sources,
            opts,
            trackers,
        }
    }

    pub async fn run(mut self, tx: watch::Sender<Vec<RunnerState>>, shutdown: CancellationToken) {
        let client = match ScrapeClient::new(self.opts.timeout) {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                tx.send_modify(|v| {
                    for st in v {
                        st.health = Health::Down {
                            reason: reason.clone(),
                            retry_at: SystemTime::now(),
                        };
                    }
                });
                return;
            }
        };
        let urls: Vec<String> = self.sources.iter().map(|s| s.metrics_url.clone()).collect();
        let trackers = &mut self.trackers;
        poll_loop(
            urls.len(),
            self.opts,
            |i| {
                let (client, url) = (client.clone(), urls[i].clone());
                async move { client.scrape(&url).await }
            },
            |batch| publish(&tx, trackers, batch),
            shutdown,
        )
        .await;
    }
}

fn publish(
    tx: &watch::Sender<Vec<RunnerState>>,
    trackers: &mut [Tracker],
    batch: Vec<Polled<Sample, ScrapeError>>,
) {
    tx.send_modify(|states| {
        for p in batch {
            let (Some(tr), Some(st)) = (trackers.get_mut(p.index), states.get_mut(p.index)) else {
                continue;
            };
            match p.result {
                Ok(sample) => tr.apply_ok(st, sample, p.at),
                Err(e) => {
                    tracing::debug!(runner = %st.source.name, error = %e, "scrape failed");
                    tr.apply_err(st, e.to_string(), p.at, p.retry_in.unwrap_or_default());
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Series;
    use crate::scrape::test_server::{self, Reply, Routes};
    use crate::scrape::test_server::{good, src};

    const GOOD: &str = "gitlab_runner_concurrent 4\n\
        gitlab_runner_jobs{state=\"running\"} 2\n\
        gitlab_runner_session_terminals_available 2\n\
        gitlab_runner_errors_total{level=\"error\"} 10\n\
        process_cpu_seconds_total 1\n\
        process_resident_memory_bytes 1000\n";

    fn opts(interval_ms: u64, timeout_ms: u64) -> PollOptions {
        PollOptions {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            concurrency: 4,
            backoff: Backoff {
                min: Duration::from_millis(100),
                max: Duration::from_millis(400),
            },
            ..Default::default()
        }
    }

    /// How long a test waits for the pollers (times
    /// `TERMGATE_TEST_TIMEOUT_SCALE`).
    fn wait_secs() -> Duration {
        termgate_test_support::scaled(Duration::from_secs(15))
    }

    /// Wait until `pred` holds for the published states.
    async fn wait_until(
        rx: &mut watch::Receiver<Vec<RunnerState>>,
        what: &str,
        pred: impl Fn(&[RunnerState]) -> bool,
    ) -> Vec<RunnerState> {
        termgate_test_support::wait_until_async(what, Duration::from_secs(15), || {
            let v = rx.borrow_and_update();
            let found = pred(&v).then(|| v.clone());
            async move { found }
        })
        .await
    }

    fn reason(s: &RunnerState) -> Option<&str> {
        match &s.health {
            Health::Down { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn ticks_stay_on_the_grid() {
        let t0 = Instant::now();
        let i = Duration::from_secs(2);
        assert_eq!(next_tick(t0, t0, i), t0 + i);
        assert_eq!(
            next_tick(t0, t0 + Duration::from_millis(2500), i),
            t0 + 2 * i
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn good_garbage_status_and_big_bodies_each_in_their_own_row() {
        let routes = Routes::default();
        routes.set("good", Reply::Text(GOOD.into()));
        routes.set(
            "html",
            Reply::Text("<html><body>login</body></html>".into()),
        );
        routes.set("e500", Reply::Status(500));
        routes.set("big", Reply::Text("a 1\n".repeat(10 << 20 >> 2) + "\n"));
        let addr = test_server::start(routes).await;
        let sources = ["good", "html", "e500", "big"]
            .iter()
            .map(|p| src(p, format!("http://{addr}/{p}")))
            .collect();
        let stop = CancellationToken::new();
        let mut rx = spawn(sources, opts(200, 2000), stop.clone());
        let v = wait_until(&mut rx, "all four answered", |v| {
            v.iter().all(|s| s.health != Health::Unknown)
        })
        .await;
        assert_eq!(v[0].health, Health::Up);
        let s = v[0].latest.as_ref().unwrap();
        assert_eq!(s.jobs, Some(2.0));
        assert_eq!(s.terminals_available, Some(2.0));
        assert!(s.at.is_some());
        assert_eq!(reason(&v[1]), Some("garbage: HTML page"));
        assert_eq!(reason(&v[2]), Some("HTTP 500"));
        assert_eq!(reason(&v[3]), Some("too large: over 8 MiB"));
        // Good keeps going while the others back off.
        let n = v[0]
            .history
            .values_since(Series::Jobs, SystemTime::UNIX_EPOCH)
            .len();
        wait_until(&mut rx, "more good samples", |v| {
            v[0].history
                .values_since(Series::Jobs, SystemTime::UNIX_EPOCH)
                .len()
                >= n + 3
        })
        .await;
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hanging_runner_times_out_and_never_delays_the_others() {
        let routes = Routes::default();
        routes.set("good", Reply::Text(GOOD.into()));
        routes.set("hang", Reply::Hang);
        let addr = test_server::start(routes).await;
        let hole = test_server::black_hole().await;
        let sources = vec![
            src("hole", format!("http://{hole}/metrics")),
            src("hang", format!("http://{addr}/hang")),
            src("good", format!("http://{addr}/good")),
        ];
        let stop = CancellationToken::new();
        let o = opts(100, 1500);
        let started = Instant::now();
        let mut rx = spawn(sources, o, stop.clone());
        // The good one gets samples while the others are still stuck.
        let v = wait_until(&mut rx, "good samples meanwhile", |v| {
            v[2].history
                .values_since(Series::Jobs, SystemTime::UNIX_EPOCH)
                .len()
                >= 3
        })
        .await;
        if started.elapsed() < Duration::from_millis(1400) {
            assert_eq!(
                v[0].health,
                Health::Unknown,
                "still waiting on the black hole"
            );
            assert_eq!(v[1].health, Health::Unknown, "still waiting on the hang");
        }
        let v = wait_until(&mut rx, "both time out", |v| {
            reason(&v[0]) == Some("timeout") && reason(&v[1]) == Some("timeout")
        })
        .await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1500), "{took:?}");
        assert_eq!(v[2].health, Health::Up);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_then_back_with_backoff() {
        let addr = test_server::free_port();
        let stop = CancellationToken::new();
        let mut rx = spawn(
            vec![src("r", format!("http://{addr}/metrics"))],
            opts(100, 1000),
            stop.clone(),
        );
        let v = wait_until(&mut rx, "refused", |v| reason(&v[0]) == Some("refused")).await;
        let Health::Down { retry_at, .. } = v[0].health.clone() else {
            unreachable!()
        };
        let at = v[0].last_attempt.unwrap();
        assert_eq!(
            retry_at.duration_since(at).unwrap(),
            Duration::from_millis(100)
        );
        // Later failures wait longer, up to the cap.
        let v = wait_until(&mut rx, "backoff grows to the cap", |v| {
            match &v[0].health {
                Health::Down { retry_at, .. } => {
                    v[0].last_attempt
                        .and_then(|a| retry_at.duration_since(a).ok())
                        == Some(Duration::from_millis(400))
                }
                _ => false,
            }
        })
        .await;
        assert!(v[0].latest.is_none());
        // It comes back on the same port.
        let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { GOOD }));
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        let v = wait_until(&mut rx, "up again", |v| v[0].health == Health::Up).await;
        assert_eq!(v[0].latest.as_ref().unwrap().jobs, Some(2.0));
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counter_reset_gives_a_sane_rate() {
        let routes = Routes::default();
        routes.set("m", Reply::Text(good(1000.0, 50.0)));
        let addr = test_server::start(routes.clone()).await;
        let stop = CancellationToken::new();
        let mut rx = spawn(
            vec![src("r", format!("http://{addr}/m"))],
            opts(100, 1000),
            stop.clone(),
        );
        wait_until(&mut rx, "a flat rate", |v| {
            v[0].errors_per_minute == Some(0.0)
        })
        .await;
        // The runner restarts: counters drop to small values.
        routes.set("m", Reply::Text(good(3.0, 0.5)));
        let v = wait_until(&mut rx, "rate after the reset", |v| {
            v[0].latest.as_ref().and_then(|s| s.errors_sum()) == Some(3.0)
                && v[0].errors_per_minute.is_some_and(|r| r > 0.0)
        })
        .await;
        let epm = v[0].errors_per_minute.unwrap();
        // +3 errors within the last minute, never a negative or a huge rate.
        assert!(epm > 0.0 && epm <= 3.0 * 60.0 / 0.09, "{epm}");
        assert!(
            v[0].cpu_percent.is_some_and(|c| c >= 0.0),
            "{:?}",
            v[0].cpu_percent
        );
        let series = v[0]
            .history
            .values_since(Series::ErrorsPerMinute, SystemTime::UNIX_EPOCH);
        assert!(series.iter().all(|r| *r >= 0.0), "{series:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn shutdown_closes_the_channel() {
        let stop = CancellationToken::new();
        let mut rx = spawn(
            vec![src("r", format!("http://{}/m", test_server::free_port()))],
            opts(100, 500),
            stop.clone(),
        );
        stop.cancel();
        let r =
            tokio::time::timeout(wait_secs(), async { while rx.changed().await.is_ok() {} }).await;
        assert!(r.is_ok(), "the poller ended");
    }
}
