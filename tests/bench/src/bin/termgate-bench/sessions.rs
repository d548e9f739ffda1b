//! Opening, typing into and closing many terminals at once: bare PTYs,
//! relayed shells and the runner's sessions.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use futures::StreamExt as _;

use crate::conn::{Conn, ConnectError, SessionTarget};
use crate::load::{self, Echoes};

/// Connections (or PTYs) opened at once.
const CONNECT_PARALLEL: usize = 32;

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
pub async fn open_bare(cwd: &Path, n: usize) -> anyhow::Result<Vec<Conn>> {
    open_at_prompt(n, || std::future::ready(Conn::bare(cwd))).await
}

/// `n` shells behind the `--relay` yardstick, each at its prompt.
pub async fn open_relayed(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<Vec<Conn>> {
    open_at_prompt(n, || Conn::relayed(addr)).await
}

/// Connect to every target and wait for its prompt; the connected terminals
/// and the errors of the others.
pub async fn connect_all(targets: &[SessionTarget]) -> (Vec<Conn>, Vec<anyhow::Error>) {
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
                    Err(ConnectError::Busy) => bail!("{}: seat still taken (423)", t.url),
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
pub async fn type_all(conns: Vec<Conn>, period: Duration, dur: Duration) -> (Echoes, Vec<Conn>) {
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

pub async fn close_all(conns: Vec<Conn>) {
    futures::future::join_all(conns.into_iter().map(Conn::close)).await;
}
