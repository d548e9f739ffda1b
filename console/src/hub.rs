//! Joins the sources into the one [`Snapshot`] the UI draws: the poller's
//! runner states and the live log tail (parsed, tallied). Publishes at most
//! a few times a second, only when something changed.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::logs::backfill::{self, Backfill};
use crate::logs::parse::{self, LineKind};
use crate::logs::tail;
use crate::model::{LogRecord, RunnerSessions, RunnerState, Series, Snapshot, Tally};

/// Lines kept for the Logs screen.
pub const LOG_CAPACITY: usize = crate::logs::backfill::RECENT_LINES;
/// Shortest time between two published snapshots.
pub const MIN_PUBLISH: Duration = Duration::from_millis(250);

/// The log side of a snapshot: live tail and tally.
#[derive(Debug, Default)]
pub struct LogState {
    pub tally: Tally,
    pub logs: VecDeque<LogRecord>,
}

impl LogState {
    /// Takes what was read back from the files before the first live line
    /// (the tail sends it first; anything already here stays after it).
    pub fn backfill(&mut self, b: Backfill) {
        let live = std::mem::take(&mut self.logs);
        let mut tally = b.tally;
        tally.lines += self.tally.lines;
        tally.unparsed += self.tally.unparsed;
        tally.oversized += self.tally.oversized;
        if !self.tally.entries.is_empty() {
            // Not expected (the read-back comes first): keep the live entries.
            for (k, e) in std::mem::take(&mut self.tally.entries) {
                tally.entries.insert(k, e);
            }
        }
        self.tally = tally;
        self.logs = b.recent;
        for rec in live {
            if self.logs.len() >= LOG_CAPACITY {
                self.logs.pop_front();
            }
            self.logs.push_back(rec);
        }
    }

    /// One raw line from `runner`'s log.
    pub fn line(&mut self, runner: &str, line: &str, now: SystemTime) {
        self.tally.lines += 1;
        match parse::classify(line) {
            LineKind::Blank => {}
            LineKind::Continuation => {
                if let Some(last) = self.logs.back_mut() {
                    if last.runner == runner {
                        parse::attach_continuation(last, line);
                    }
                }
            }
            LineKind::Unparsed => self.tally.unparsed += 1,
            LineKind::Record(_) => {
                let Some(mut rec) = parse::parse_line_at(runner, line, now) else {
                    self.tally.unparsed += 1;
                    return;
                };
                // Upstream's `runner` format has no time: use arrival.
                rec.time.get_or_insert(now);
                self.tally.tally(&rec, line);
                if self.logs.len() >= LOG_CAPACITY {
                    self.logs.pop_front();
                }
                self.logs.push_back(rec);
            }
        }
    }
}

/// Start the hub: runner states from `runners`, log lines from the files of
/// `log_sources` (`(runner, globs)`): first what they already hold (the
/// Errors screen's widest window, bounded: [`backfill`]), then what is
/// appended. Published on the returned channel.
pub fn spawn(
    runners: watch::Receiver<Vec<RunnerState>>,
    sessions: watch::Receiver<Vec<RunnerSessions>>,
    log_sources: Vec<(String, Vec<String>)>,
    interval: Duration,
    shutdown: CancellationToken,
) -> watch::Receiver<Snapshot> {
    let (lines, back) = if log_sources.iter().any(|(_, g)| !g.is_empty()) {
        let (l, b) = tail::spawn_with_backfill(
            log_sources,
            tail::TailOptions::default(),
            backfill::Limits::default(),
            shutdown.clone(),
        );
        (l, Some(b))
    } else {
        (mpsc::channel(1).1, None)
    };
    start(runners, sessions, lines, back, interval, shutdown)
}

/// As [`spawn`], with the log lines from any channel (tests, the demo).
pub fn spawn_with_lines(
    runners: watch::Receiver<Vec<RunnerState>>,
    sessions: watch::Receiver<Vec<RunnerSessions>>,
    lines: mpsc::Receiver<(String, String)>,
    interval: Duration,
    shutdown: CancellationToken,
) -> watch::Receiver<Snapshot> {
    start(runners, sessions, lines, None, interval, shutdown)
}

fn start(
    mut runners: watch::Receiver<Vec<RunnerState>>,
    mut sessions: watch::Receiver<Vec<RunnerSessions>>,
    mut lines: mpsc::Receiver<(String, String)>,
    back: Option<tokio::sync::oneshot::Receiver<Backfill>>,
    interval: Duration,
    shutdown: CancellationToken,
) -> watch::Receiver<Snapshot> {
    let (tx, rx) = watch::channel(Snapshot {
        interval,
        ..Snapshot::default()
    });
    tokio::spawn(async move {
        let mut logs = LogState::default();
        let mut fleet = crate::model::History::default();
        let mut runners_changed = true;
        let mut dirty = true;
        let mut lines_open = true;
        let mut sessions_open = true;
        let mut back = back;
        let mut tick = tokio::time::interval(MIN_PUBLISH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = runners.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    dirty = true;
                    runners_changed = true;
                }
                changed = sessions.changed(), if sessions_open => {
                    // No sessions poller (or it ended): keep the last list.
                    sessions_open = changed.is_ok();
                    dirty = true;
                }
                b = async { match back.as_mut() { Some(b) => b.await, None => std::future::pending().await } }, if back.is_some() => {
                    back = None;
                    if let Ok(b) = b {
                        tracing::info!(files = b.files, bytes = b.bytes, capped = b.capped, skipped = b.skipped, "log files read back");
                        logs.backfill(b);
                        dirty = true;
                    }
                }
                line = lines.recv(), if lines_open => match line {
                    Some((runner, line)) => {
                        logs.line(&runner, &line, SystemTime::now());
                        // Take what is already queued without waiting.
                        while let Ok((runner, line)) = lines.try_recv() {
                            logs.line(&runner, &line, SystemTime::now());
                        }
                        dirty = true;
                    }
                    None => lines_open = false,
                },
                _ = tick.tick() => {
                    if dirty {
                        dirty = false;
                        let now = SystemTime::now();
                        let runners = runners.borrow().clone();
                        if std::mem::take(&mut runners_changed) {
                            add_fleet_point(&mut fleet, &runners, now);
                        }
                        let snap = Snapshot {
                            fleet: fleet.clone(),
                            runners,
                            sessions: sessions.borrow().clone(),
                            tally: logs.tally.clone(),
                            logs: logs.logs.clone(),
                            taken_at: Some(SystemTime::now()),
                            interval,
                        };
                        if tx.send(snap).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    rx
}

/// Series summed over the fleet for the Fleet screen's sparklines.
pub const FLEET_SERIES: [Series; 6] = [
    Series::TerminalsAvailable,
    Series::TerminalsActive,
    Series::TerminalsIdle,
    Series::WsConnections,
    Series::Jobs,
    Series::ErrorsPerMinute,
];

/// One point per series: the sum of every runner's newest value.
pub fn add_fleet_point(
    fleet: &mut crate::model::History,
    runners: &[RunnerState],
    now: SystemTime,
) {
    for s in FLEET_SERIES {
        let mut sum = None;
        for r in runners {
            if let Some(v) = r.history.last(s) {
                sum = Some(sum.unwrap_or(0.0) + v);
            }
        }
        if let Some(v) = sum {
            fleet.push(s, now, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_feed_logs_and_tally() {
        let mut s = LogState::default();
        let now = SystemTime::now();
        s.line(
            "r1",
            r#"{"level":"warning","msg":"Job failed: exit code 1","time":"2026-11-27T19:00:00Z"}"#,
            now,
        );
        s.line(
            "r1",
            r#"{"level":"warning","msg":"Job failed: exit code 2","time":"2026-11-27T19:00:01Z"}"#,
            now,
        );
        s.line(
            "r1",
            r#"{"level":"info","msg":"Job succeeded","time":"2026-11-27T19:00:02Z"}"#,
            now,
        );
        s.line("r1", "  job=328 project=12", now);
        assert_eq!(
            s.logs.len(),
            3,
            "a continuation line joins the record before it"
        );
        assert_eq!(s.tally.entries.len(), 1, "exit codes fall together");
        assert_eq!(s.tally.entries.values().next().unwrap().count, 2);
        assert_eq!(s.tally.lines, 4);
    }

    /// What the files held comes first; live lines follow it and add up.
    #[test]
    fn the_read_back_comes_before_the_live_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r1.log");
        std::fs::write(
            &p,
            r#"{"level":"warning","msg":"Job failed: exit code 1","time":"2026-11-27T19:00:00Z"}
{"level":"info","msg":"Job succeeded","time":"2026-11-27T19:00:01Z"}
"#,
        )
        .unwrap();
        // 2026-11-27T20:00:00Z: an hour after the lines.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_809_600);
        let b = backfill::read(
            &[("r1".into(), vec![p.to_string_lossy().into_owned()])],
            &backfill::Limits::default(),
            now,
        );
        let mut s = LogState::default();
        s.backfill(b);
        s.line(
            "r1",
            r#"{"level":"warning","msg":"Job failed: exit code 2","time":"2026-11-27T19:00:05Z"}"#,
            now,
        );
        let msgs: Vec<&str> = s.logs.iter().map(|r| r.msg.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "Job failed: exit code 1",
                "Job succeeded",
                "Job failed: exit code 2"
            ]
        );
        assert_eq!(s.tally.lines, 3);
        assert_eq!(s.tally.entries["Job failed: exit code N"].count, 2);
    }

    #[tokio::test]
    async fn publishes_runner_and_log_changes() {
        let (rtx, rrx) = watch::channel(Vec::new());
        let (ltx, lrx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let (stx, srx) = watch::channel(Vec::new());
        let mut snaps = spawn_with_lines(rrx, srx, lrx, Duration::from_secs(2), shutdown.clone());
        ltx.send((
            "r1".into(),
            r#"{"level":"error","msg":"boom","time":"2026-11-27T19:00:00Z"}"#.into(),
        ))
        .await
        .unwrap();
        let snap = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                snaps.changed().await.unwrap();
                let s = snaps.borrow().clone();
                if !s.logs.is_empty() {
                    return s;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(snap.tally.entries.len(), 1);
        assert_eq!(snap.interval, Duration::from_secs(2));
        // A new sessions list is published too.
        stx.send(vec![RunnerSessions {
            runner: "r1".into(),
            state: crate::model::SessionsState::Waiting,
        }])
        .unwrap();
        let snap = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                snaps.changed().await.unwrap();
                let s = snaps.borrow().clone();
                if !s.sessions.is_empty() {
                    return s;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(snap.sessions[0].runner, "r1");
        drop(rtx);
        shutdown.cancel();
    }
}
