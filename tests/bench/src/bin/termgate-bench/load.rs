//! What a benchmark client does with its terminal: wait for the prompt, type
//! keys at a fixed rate timing each echo, or pull a bulk output through.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::time::{sleep_until, timeout_at};

use crate::conn::Conn;

/// An echo not seen within this long counts as failed.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// Echo round trips of one or many sessions.
#[derive(Debug, Default, Clone)]
pub struct Echoes {
    /// Round trips in microseconds.
    pub rtt_us: Vec<u32>,
    /// Keys whose echo never came (or whose terminal failed).
    pub failed: u64,
    /// When the key of each `rtt_us` entry was sent, index for index (for
    /// `--echo-log`; [`Echoes::sorted`] leaves it out).
    pub sent_at: Vec<Instant>,
}

impl Echoes {
    pub fn merge(&mut self, other: Echoes) {
        self.rtt_us.extend(other.rtt_us);
        self.failed += other.failed;
        self.sent_at.extend(other.sent_at);
    }

    pub fn sent(&self) -> u64 {
        self.rtt_us.len() as u64 + self.failed
    }

    /// The round trips sorted and the failures, for [`Echoes::quantile_ms`]
    /// (without the sending times).
    pub fn sorted(&self) -> Echoes {
        let mut rtt_us = self.rtt_us.clone();
        rtt_us.sort_unstable();
        Echoes {
            rtt_us,
            failed: self.failed,
            sent_at: Vec::new(),
        }
    }

    /// The p99 in milliseconds.
    pub fn p99_ms(&self) -> f64 {
        self.sorted().quantile_ms(0.99)
    }

    /// The `q` quantile (nearest rank) in milliseconds, of a [`Echoes::sorted`] copy.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.rtt_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.rtt_us.len() as f64).ceil() as usize).clamp(1, self.rtt_us.len());
        f64::from(self.rtt_us[rank - 1]) / 1000.0
    }
}

/// Read until the shell printed something and then stayed quiet for
/// `quiet` (the prompt is up).
pub async fn wait_prompt(conn: &mut Conn, quiet: Duration, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = false;
    loop {
        let until = if seen {
            (tokio::time::Instant::now() + quiet).min(deadline)
        } else {
            deadline
        };
        match timeout_at(until, conn.recv()).await {
            Ok(Ok(Some(_))) => seen = true,
            Ok(Ok(None)) => bail!("the terminal closed before its prompt"),
            Ok(Err(e)) => return Err(e),
            Err(_) if seen => return Ok(()),
            Err(_) => bail!("no prompt within {limit:?}"),
        }
    }
}

/// Read output until none came for `quiet` (the terminal settled), at
/// most `limit`.
pub async fn drain_quiet(conn: &mut Conn, quiet: Duration, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let until = (tokio::time::Instant::now() + quiet).min(deadline);
        match timeout_at(until, conn.recv()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => bail!("the terminal closed"),
            Ok(Err(e)) => return Err(e),
            Err(_) if until < deadline => return Ok(()),
            Err(_) => bail!("the terminal kept printing for {limit:?}"),
        }
    }
}

/// Type one key every `period` from `start` until `end`, alternating `x`
/// and DEL so the line stays empty; time each send → first byte of echo.
/// Output between keys is drained.
pub async fn type_keys(
    conn: &mut Conn,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
    period: Duration,
) -> Echoes {
    let mut out = Echoes::default();
    let mut next = start;
    let mut key_is_x = true;
    while next < end {
        // Drain until the next key is due.
        loop {
            tokio::select! {
                _ = sleep_until(next) => break,
                r = conn.recv() => match r {
                    Ok(Some(_)) => {}
                    _ => {
                        out.failed += keys_left(next, end, period);
                        return out;
                    }
                },
            }
        }
        let key: &[u8] = if key_is_x { b"x" } else { b"\x7f" };
        key_is_x = !key_is_x;
        let t0 = Instant::now();
        let sent = conn.send(key).await;
        let echo = match sent {
            Ok(()) => timeout_at((t0 + ECHO_TIMEOUT).into(), conn.recv()).await,
            Err(e) => Ok(Err(e)),
        };
        match echo {
            Ok(Ok(Some(_))) => {
                let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                out.rtt_us.push(us);
                out.sent_at.push(t0);
            }
            Err(_) => out.failed += 1,
            Ok(_) => {
                out.failed += keys_left(next, end, period);
                return out;
            }
        }
        next += period;
        // A slow echo must not make the next keys bunch up.
        let now = tokio::time::Instant::now();
        while next < now {
            next += period;
        }
    }
    out
}

fn keys_left(next: tokio::time::Instant, end: tokio::time::Instant, period: Duration) -> u64 {
    let left = end.saturating_duration_since(next);
    (left.as_nanos() / period.as_nanos().max(1)) as u64 + 1
}

/// Run `head -c <bytes> /dev/zero | tr '\0' x` at the prompt and read
/// until the shell prints the end marker; returns (bytes read, seconds).
pub async fn bulk(conn: &mut Conn, bytes: u64, limit: Duration) -> anyhow::Result<(u64, f64)> {
    // The marker is computed by the shell, so the echo of the command line
    // (`__bulk_$((6*7))__`) never matches it.
    const MARKER: &[u8] = b"__bulk_42__";
    let cmd = format!("head -c {bytes} /dev/zero | tr '\\0' x; echo __bulk_$((6*7))__\r");
    let t0 = Instant::now();
    conn.send(cmd.as_bytes()).await?;
    let deadline = tokio::time::Instant::now() + limit;
    let mut total = 0u64;
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    loop {
        let chunk = match timeout_at(deadline, conn.recv()).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => bail!("the terminal closed during the bulk run"),
            Ok(Err(e)) => return Err(e).context("bulk run"),
            Err(_) => bail!("bulk run not done within {limit:?} ({total} bytes)"),
        };
        total += chunk.len() as u64;
        // Only chunks with a `_` can hold (part of) the marker.
        if chunk.contains(&b'_') || !tail.is_empty() {
            tail.extend_from_slice(chunk);
            if find(&tail, MARKER).is_some() {
                let secs = t0.elapsed().as_secs_f64();
                return Ok((total, secs));
            }
            let keep = tail.len().saturating_sub(MARKER.len());
            tail.drain(..keep);
            if !tail.contains(&b'_') {
                tail.clear();
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let e = Echoes {
            rtt_us: (1..=100).rev().map(|v| v * 1000).collect(),
            failed: 0,
            sent_at: Vec::new(),
        }
        .sorted();
        assert_eq!(e.quantile_ms(0.5), 50.0);
        assert_eq!(e.quantile_ms(0.99), 99.0);
        assert_eq!(e.quantile_ms(1.0), 100.0);
        assert!(Echoes::default().quantile_ms(0.5).is_nan());
    }
}
