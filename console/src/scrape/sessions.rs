//! Polls every runner's operator API `GET /sessions` with the metrics
//! poller's loop ([`super::poller::poll_loop`]: shared tick, bounded
//! concurrency, backoff per runner) and publishes one [`RunnerSessions`]
//! per runner on a `watch` channel. A runner without operator access keeps
//! its hint; one whose API fails shows why until it answers again.

use std::sync::Arc;

use futures::future::BoxFuture;
use termgate::operator::SessionList;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::options::PollOptions;
use super::poller::{poll_loop, Polled};
use crate::access::OperatorAccess;
use crate::model::{RunnerSessions, SessionsState};
use crate::operator_client::OperatorEndpoint;

/// Where a runner's sessions come from (the operator client; fakes in tests).
pub trait SessionsApi: Send + Sync {
    /// `GET /sessions`; the error is a complete message.
    fn sessions(&self) -> BoxFuture<'_, Result<SessionList, String>>;
}

impl SessionsApi for OperatorEndpoint {
    fn sessions(&self) -> BoxFuture<'_, Result<SessionList, String>> {
        Box::pin(async move {
            OperatorEndpoint::sessions(self)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// One runner to poll, or why it cannot be.
pub struct SessionTarget {
    pub runner: String,
    pub api: Result<Arc<dyn SessionsApi>, String>,
}

impl From<&OperatorAccess> for SessionTarget {
    fn from(a: &OperatorAccess) -> Self {
        SessionTarget {
            runner: a.runner.clone(),
            api: match &a.endpoint {
                Ok(e) => Ok(e.clone() as Arc<dyn SessionsApi>),
                Err(why) => Err(why.clone()),
            },
        }
    }
}

/// Start polling until `shutdown`; must be called inside a tokio runtime.
/// The receiver starts with every runner `Waiting` (or its hint).
pub fn spawn(
    targets: Vec<SessionTarget>,
    opts: PollOptions,
    shutdown: CancellationToken,
) -> watch::Receiver<Vec<RunnerSessions>> {
    let states = targets
        .iter()
        .map(|t| RunnerSessions {
            runner: t.runner.clone(),
            state: match &t.api {
                Ok(_) => SessionsState::Waiting,
                Err(why) => SessionsState::NoAccess(why.clone()),
            },
        })
        .collect();
    let (tx, rx) = watch::channel(states);
    // (position in `targets`, api) of the runners to poll.
    let polled: Vec<(usize, Arc<dyn SessionsApi>)> = targets
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| t.api.ok().map(|a| (i, a)))
        .collect();
    if polled.is_empty() {
        return rx;
    }
    let timeout = opts.timeout;
    tokio::spawn(async move {
        let fetch = |i: usize| {
            let api = polled[i].1.clone();
            async move {
                match tokio::time::timeout(timeout, api.sessions()).await {
                    Ok(r) => r,
                    Err(_) => Err("timeout".to_string()),
                }
            }
        };
        let publish = |batch: Vec<Polled<SessionList, String>>| {
            tx.send_modify(|states| {
                for p in batch {
                    let Some(st) = polled.get(p.index).and_then(|(i, _)| states.get_mut(*i))
                    else {
                        continue;
                    };
                    st.state = match p.result {
                        Ok(list) => SessionsState::Live {
                            sessions: list.sessions,
                            at: p.at,
                        },
                        Err(reason) => {
                            tracing::debug!(runner = %st.runner, error = %reason, "sessions poll failed");
                            SessionsState::Failed {
                                reason,
                                retry_at: p.at + p.retry_in.unwrap_or_default(),
                            }
                        }
                    };
                }
            });
        };
        poll_loop(polled.len(), opts, fetch, publish, shutdown).await;
    });
    rx
}

/// Never changes: for consoles without the Sessions poller (Prometheus).
pub fn none() -> watch::Receiver<Vec<RunnerSessions>> {
    watch::channel(Vec::new()).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    use termgate::operator::SessionSummary;

    use crate::scrape::link::Backoff;

    /// Answers from a script: each call takes the next reply (the last one
    /// repeats); `None` hangs.
    struct Fake {
        replies: Vec<Option<Result<SessionList, String>>>,
        calls: AtomicU32,
    }

    impl SessionsApi for Fake {
        fn sessions(&self) -> BoxFuture<'_, Result<SessionList, String>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            let r = self.replies[n.min(self.replies.len() - 1)].clone();
            Box::pin(async move {
                match r {
                    Some(r) => r,
                    None => std::future::pending().await,
                }
            })
        }
    }

    fn fake(replies: Vec<Option<Result<SessionList, String>>>) -> Arc<Fake> {
        Arc::new(Fake {
            replies,
            calls: AtomicU32::new(0),
        })
    }

    fn list(jobs: &[u64]) -> SessionList {
        SessionList {
            sessions: jobs
                .iter()
                .map(|j| SessionSummary {
                    id: format!("s{j}"),
                    job_id: *j,
                    state: "idle".into(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn target(runner: &str, api: Result<Arc<Fake>, &str>) -> SessionTarget {
        SessionTarget {
            runner: runner.into(),
            api: api
                .map(|a| a as Arc<dyn SessionsApi>)
                .map_err(str::to_string),
        }
    }

    fn opts() -> PollOptions {
        PollOptions {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            concurrency: 2,
            backoff: Backoff {
                min: Duration::from_millis(100),
                max: Duration::from_millis(200),
            },
            ..Default::default()
        }
    }

    async fn wait_for(
        rx: &mut watch::Receiver<Vec<RunnerSessions>>,
        what: &str,
        pred: impl Fn(&[RunnerSessions]) -> bool,
    ) -> Vec<RunnerSessions> {
        termgate_test_support::wait_until_async(what, Duration::from_secs(15), || {
            let v = rx.borrow_and_update();
            let found = pred(&v).then(|| v.clone());
            async move { found }
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_runner_in_its_own_row_whatever_the_others_do() {
        let bad = || Some(Err("HTTP 401: bad operator token".to_string()));
        let flaky = fake(vec![bad(), bad(), bad(), Some(Ok(list(&[9])))]);
        let targets = vec![
            target("good", Ok(fake(vec![Some(Ok(list(&[4711, 4712])))]))),
            target("hint", Err(crate::access::NO_ACCESS_HINT)),
            target("hang", Ok(fake(vec![None]))),
            target("flaky", Ok(flaky.clone())),
        ];
        let stop = CancellationToken::new();
        let mut rx = spawn(targets, opts(), stop.clone());
        assert_eq!(
            rx.borrow()[1].state,
            SessionsState::NoAccess(crate::access::NO_ACCESS_HINT.into())
        );
        let v = wait_for(&mut rx, "an answer and a failure", |v| {
            matches!(v[0].state, SessionsState::Live { .. })
                && matches!(&v[3].state, SessionsState::Failed { .. })
        })
        .await;
        let SessionsState::Live { sessions, .. } = &v[0].state else {
            unreachable!()
        };
        assert_eq!(sessions.len(), 2);
        let SessionsState::Failed { reason, .. } = &v[3].state else {
            unreachable!()
        };
        assert_eq!(reason, "HTTP 401: bad operator token");
        // The hanging runner times out; the others went on meanwhile.
        wait_for(
            &mut rx,
            "the timeout",
            |v| matches!(&v[2].state, SessionsState::Failed { reason, .. } if reason == "timeout"),
        )
        .await;
        // The failing runner is asked again after its backoff and recovers.
        wait_for(
            &mut rx,
            "the flaky runner back",
            |v| matches!(&v[3].state, SessionsState::Live { sessions, .. } if sessions.len() == 1),
        )
        .await;
        assert!(flaky.calls.load(Ordering::SeqCst) >= 4);
        stop.cancel();
    }

    #[tokio::test]
    async fn no_runner_with_access_polls_nothing() {
        let rx = spawn(
            vec![target("a", Err("no"))],
            opts(),
            CancellationToken::new(),
        );
        assert_eq!(rx.borrow()[0].state, SessionsState::NoAccess("no".into()));
        assert!(none().borrow().is_empty());
    }
}
