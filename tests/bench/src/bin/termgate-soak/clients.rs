//! The soak's clients: held sessions that leave and come back, and the
//! short jobs that end and are replaced.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use termgate::admin::{CreatedJobs, JobView};
use tokio::sync::Semaphore;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use crate::conn::{pinned_tls, Conn, ConnectError, SessionTarget};
use crate::load::{self, ECHO_TIMEOUT};
use crate::stats::Stats;

/// Connect (423 retried: the previous client's seat is released a moment
/// after it left) and wait for the prompt, within 30 s. `gate` bounds the
/// handshakes in flight.
pub async fn connect(target: &SessionTarget, gate: &Semaphore) -> anyhow::Result<Conn> {
    let _permit = gate.acquire().await.context("connect gate")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = loop {
        match timeout_at(deadline, Conn::ws(target)).await {
            Ok(Ok(c)) => break c,
            Ok(Err(ConnectError::Busy)) if Instant::now() < deadline => {
                sleep(Duration::from_millis(200)).await;
            }
            Ok(Err(ConnectError::Busy)) => anyhow::bail!("seat still taken (423) after 30 s"),
            Ok(Err(ConnectError::Other(e))) => return Err(e),
            Err(_) => anyhow::bail!("no WebSocket within 30 s"),
        }
    };
    load::wait_prompt(&mut c, Duration::from_millis(300), Duration::from_secs(30)).await?;
    Ok(c)
}

/// How a stretch of typing ended.
pub enum Typed {
    /// Reached `leave_at`: the client leaves on purpose.
    Left,
    /// The terminal closed or failed under the client.
    Closed,
}

/// Type a key every `period` (first after a random phase) until
/// `leave_at`, recording each echo (or its failure) in `stats`.
pub async fn type_until(
    conn: &mut Conn,
    leave_at: Instant,
    period: Duration,
    stats: &Stats,
) -> Typed {
    let phase = rand::thread_rng().gen_range(0..period.as_millis().max(1) as u64);
    let mut next = Instant::now() + Duration::from_millis(phase);
    let mut key_is_x = true;
    while next < leave_at {
        loop {
            tokio::select! {
                _ = sleep_until(next) => break,
                r = conn.recv() => if !matches!(r, Ok(Some(_))) {
                    stats.failed_echoes(keys_left(next, leave_at, period));
                    return Typed::Closed;
                },
            }
        }
        let key: &[u8] = if key_is_x { b"x" } else { b"\x7f" };
        key_is_x = !key_is_x;
        let t0 = std::time::Instant::now();
        let echo = match conn.send(key).await {
            Ok(()) => timeout_at((t0 + ECHO_TIMEOUT).into(), conn.recv()).await,
            Err(e) => Ok(Err(e)),
        };
        match echo {
            Ok(Ok(Some(_))) => stats.echo(t0.elapsed()),
            Err(_) => {
                stats.failed_echoes(1);
                stats.example("echo timeout", "no echo within 5 s");
            }
            Ok(r) => {
                if let Err(e) = r {
                    stats.example("terminal closed", e);
                }
                stats.failed_echoes(keys_left(next, leave_at, period));
                return Typed::Closed;
            }
        }
        next += period;
        let now = Instant::now();
        while next < now {
            next += period;
        }
    }
    Typed::Left
}

fn keys_left(next: Instant, end: Instant, period: Duration) -> u64 {
    let left = end.saturating_duration_since(next);
    (left.as_nanos() / period.as_nanos().max(1)) as u64 + 1
}

/// One held session's client until `end`: connect, type for a random
/// stretch around `hold` (to `end` when `stays`), leave, come back.
pub async fn held(
    target: SessionTarget,
    stats: Arc<Stats>,
    gate: Arc<Semaphore>,
    period: Duration,
    hold: Duration,
    stays: bool,
    end: Instant,
) {
    while Instant::now() < end {
        let mut conn = match connect(&target, &gate).await {
            Ok(c) => c,
            Err(e) => {
                stats.n.failed_connects.fetch_add(1, Relaxed);
                stats.example("failed connect", e);
                sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        stats.n.connects.fetch_add(1, Relaxed);
        stats.n.connected.fetch_add(1, Relaxed);
        let leave_at = if stays {
            end
        } else {
            let ms = hold.as_millis().max(5) as u64;
            (Instant::now() + Duration::from_millis(rand::thread_rng().gen_range(ms / 5..ms * 2)))
                .min(end)
        };
        let typed = type_until(&mut conn, leave_at, period, &stats).await;
        stats.n.connected.fetch_sub(1, Relaxed);
        match typed {
            Typed::Left if Instant::now() >= end => {
                conn.close().await;
                return;
            }
            Typed::Left => {
                conn.close().await;
                stats.n.reconnects.fetch_add(1, Relaxed);
                let pause = Duration::from_millis(rand::thread_rng().gen_range(0..2000));
                sleep(pause).await;
            }
            Typed::Closed => {
                stats.n.unexpected_closes.fetch_add(1, Relaxed);
                sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `--churn-jobs` short jobs (`sleep job_secs`), each replaced when it
/// ends; a client types into each until 20 s before its end. Survives the
/// coordinator being down (its requests fail and are retried).
pub async fn churn(
    coord_url: String,
    jobs: usize,
    job_secs: u64,
    stats: Arc<Stats>,
    gate: Arc<Semaphore>,
    period: Duration,
    end: Instant,
) {
    struct Slot {
        id: Option<u64>,
        typing: bool,
    }
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            stats.example("churn", e);
            return;
        }
    };
    let mut slots: Vec<Slot> = (0..jobs)
        .map(|_| Slot {
            id: None,
            typing: false,
        })
        .collect();
    let mut serial = 0u64;
    while Instant::now() < end {
        let listed: anyhow::Result<Vec<JobView>> = async {
            Ok(http
                .get(format!("{coord_url}/admin/jobs"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?)
        }
        .await;
        let Ok(list) = listed else {
            sleep(Duration::from_secs(2)).await;
            continue;
        };
        for slot in &mut slots {
            let Some(id) = slot.id else {
                serial += 1;
                let spec = serde_json::json!({"name": format!("soak-churn-{serial}"), "script": [format!("sleep {job_secs}")]});
                let created: anyhow::Result<CreatedJobs> = async {
                    Ok(http
                        .post(format!("{coord_url}/admin/jobs"))
                        .json(&spec)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?)
                }
                .await;
                if let Ok(c) = created {
                    slot.id = c.ids.first().copied();
                    slot.typing = false;
                }
                continue;
            };
            let Some(job) = list.iter().find(|j| j.id == id) else {
                continue;
            };
            match job.state.as_str() {
                "running" if !slot.typing => {
                    let Some(s) = job.session.as_ref().filter(|s| !s.url.is_empty()) else {
                        continue;
                    };
                    let tls = match pinned_tls(&s.certificate) {
                        Ok(t) => t,
                        Err(e) => {
                            stats.example("churn", e);
                            continue;
                        }
                    };
                    let target = SessionTarget {
                        url: format!("{}/exec", s.url.replacen("https://", "wss://", 1)),
                        authorization: s.authorization.clone(),
                        tls,
                    };
                    slot.typing = true;
                    let leave_at = (Instant::now() + Duration::from_secs(job_secs - 20)).min(end);
                    let (stats, gate) = (stats.clone(), gate.clone());
                    tokio::spawn(async move {
                        match connect(&target, &gate).await {
                            Ok(mut c) => {
                                stats.n.connects.fetch_add(1, Relaxed);
                                stats.n.connected.fetch_add(1, Relaxed);
                                let typed = type_until(&mut c, leave_at, period, &stats).await;
                                stats.n.connected.fetch_sub(1, Relaxed);
                                match typed {
                                    Typed::Left => c.close().await,
                                    Typed::Closed => {
                                        stats.n.unexpected_closes.fetch_add(1, Relaxed);
                                    }
                                }
                            }
                            Err(e) => {
                                stats.n.failed_connects.fetch_add(1, Relaxed);
                                stats.example("failed connect (churn job)", e);
                            }
                        }
                    });
                }
                "success" | "failed" | "canceled" => {
                    stats.n.churn_jobs_done.fetch_add(1, Relaxed);
                    if job.state != "success" {
                        stats.n.churn_jobs_failed.fetch_add(1, Relaxed);
                        stats.example(
                            "churn job not successful",
                            format!("job {id}: {} {:?}", job.state, job.failure_reason),
                        );
                    }
                    slot.id = None;
                }
                _ => {}
            }
        }
        sleep(Duration::from_secs(2)).await;
    }
}
