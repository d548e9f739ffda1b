//! How long a full frame takes to render: every screen, with 300 runners
//! (each with an hour of history), 300 error fingerprints and 2000 log lines,
//! into an off-screen buffer at 80×24 and 200×60.
//!
//! `cargo run --release -p termgate-console --bin termgate-render-bench [-- ITERATIONS]`

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use termgate_console::app::{App, Screen};
use termgate_console::model::{
    ErrorEntry, Health, Level, LogRecord, Origin, RunnerSessions, RunnerSource, RunnerState,
    RunnerVersion, Sample, Series, SessionsState, Snapshot, Tally,
};
use termgate_console::ui::widgets::Theme;

fn snapshot(now: SystemTime, runners: usize) -> Snapshot {
    let start = now - Duration::from_secs(3600);
    let mut out = Vec::new();
    // What the hub keeps: fleet-wide sums per update.
    let mut fleet = termgate_console::model::History::new(start, Duration::from_secs(3600));
    let mut sums: BTreeMap<(Series, u64), f64> = BTreeMap::new();
    for i in 0..runners {
        let mut st = RunnerState::new(
            RunnerSource {
                name: format!("runner-{i:03}"),
                metrics_url: format!("http://10.0.{}.{}:9252/metrics", i / 250, i % 250),
                session_url: None,
                logs: vec![],
            },
            start,
        );
        for t in (0..3600).step_by(2) {
            let at = start + Duration::from_secs(t);
            let x = ((t as f64) / 300.0 + i as f64).sin();
            st.history
                .push(Series::TerminalsAvailable, at, 50.0 + 40.0 * x);
            st.history
                .push(Series::TerminalsActive, at, 100.0 - 40.0 * x);
            *sums.entry((Series::TerminalsAvailable, t)).or_default() += 50.0 + 40.0 * x;
            *sums.entry((Series::TerminalsActive, t)).or_default() += 100.0 - 40.0 * x;
            st.history.push(Series::TerminalsIdle, at, 20.0);
            st.history.push(Series::WsConnections, at, 120.0);
            st.history.push(Series::Jobs, at, 200.0);
            st.history
                .push(Series::ErrorsPerMinute, at, (x * 3.0).abs());
            st.history.push(Series::CpuPercent, at, 30.0);
            st.history.push(Series::RssBytes, at, 150e6);
        }
        st.health = if i % 37 == 0 {
            Health::Down {
                reason: "refused".into(),
                retry_at: now + Duration::from_secs(8),
            }
        } else {
            Health::Up
        };
        st.last_ok = Some(now - Duration::from_millis(800));
        st.errors_per_minute = Some(0.4);
        st.cpu_percent = Some(31.0);
        st.latest = Some(Sample {
            at: Some(now),
            version: Some(RunnerVersion {
                name: "termgate-runner".into(),
                version: "0.1.0".into(),
            }),
            jobs: Some(212.0),
            jobs_by_state: BTreeMap::from([("running".to_string(), 212.0)]),
            concurrent: Some(300.0),
            terminals_available: Some(88.0),
            terminals_active: Some(141.0),
            terminals_idle: Some(71.0),
            ws_connections: BTreeMap::from([
                ("interactive".to_string(), 141.0),
                ("observer".to_string(), 2.0),
            ]),
            errors_total: BTreeMap::from([
                ("warning".to_string(), 17.0),
                ("error".to_string(), 3.0),
            ]),
            cpu_seconds_total: Some(1000.0),
            rss_bytes: Some(142e6),
            start_time_seconds: Some(1.7e9),
            ..Default::default()
        });
        out.push(st);
    }
    for ((s, t), v) in sums {
        fleet.push(s, start + Duration::from_secs(t), v);
    }
    let mut tally = Tally::default();
    for i in 0..300u64 {
        let fp = format!("Job failed: exit code N ({i})");
        tally.entries.insert(
            fp.clone(),
            ErrorEntry {
                fingerprint: fp.clone(),
                origin: Origin::Job,
                level: if i % 3 == 0 {
                    Level::Error
                } else {
                    Level::Warning
                },
                count: 1000 - i,
                first_seen: Some(now - Duration::from_secs(3000)),
                last_seen: Some(now - Duration::from_secs(i)),
                runners: BTreeSet::from([format!("runner-{:03}", i % 300)]),
                sample: format!("Job failed: exit code {i}"),
                examples: VecDeque::from([format!(
                    "{{\"level\":\"warning\",\"msg\":\"Job failed: exit code {i}\"}}"
                )]),
                per_minute: (0..60).map(|m| (m, (m % 7) as u32)).collect(),
            },
        );
    }
    let logs: VecDeque<LogRecord> = (0..2000)
        .map(|i| LogRecord {
            runner: format!("runner-{:03}", i % 300),
            time: Some(now - Duration::from_secs(2000 - i)),
            level: if i % 10 == 0 {
                Level::Warning
            } else {
                Level::Info
            },
            msg: "Checking for jobs... received".into(),
            fields: vec![
                ("job".into(), i.to_string()),
                (
                    "repo_url".into(),
                    "https://gitlab.example.com/acme/webapp".into(),
                ),
            ],
        })
        .collect();
    // Two live sessions per runner for the Sessions screen.
    let sessions = out
        .iter()
        .enumerate()
        .map(|(i, r)| RunnerSessions {
            runner: r.source.name.clone(),
            state: SessionsState::Live {
                sessions: (0..2u64)
                    .map(|k| termgate::operator::SessionSummary {
                        id: format!("{:064x}", i as u64 * 2 + k),
                        job_id: i as u64 * 2 + k,
                        project: "acme/webapp".into(),
                        state: "active".into(),
                        started_at: "2026-12-06T09:00:00Z".into(),
                        bytes_out: 4096,
                        ..Default::default()
                    })
                    .collect(),
                at: now,
            },
        })
        .collect();
    Snapshot {
        runners: out,
        sessions,
        tally,
        logs,
        taken_at: Some(now),
        interval: Duration::from_secs(2),
        fleet,
    }
}

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let now = SystemTime::now();
    let snap = snapshot(now, 300);
    println!("termgate render bench: 300 runners (1 h history each), 300 fingerprints, 2000 log lines; {iterations} frames per case");
    println!(
        "{:<8} {:>8} {:>10} {:>10} {:>10}",
        "screen", "size", "mean ms", "p50 ms", "p99 ms"
    );
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        for screen in Screen::ALL {
            let mut app = App::new(Theme::COLOR, now);
            app.screen = screen;
            let mut term = Terminal::new(TestBackend::new(w, h))?;
            let mut times = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t0 = Instant::now();
                term.draw(|f| {
                    termgate_console::ui::render(f, &app, &snap, now);
                })?;
                times.push(t0.elapsed());
            }
            times.sort();
            let mean = times.iter().sum::<Duration>() / iterations.max(1) as u32;
            let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
            println!(
                "{:<8} {:>8} {:>10.3} {:>10.3} {:>10.3}",
                format!("{screen:?}"),
                format!("{w}x{h}"),
                mean.as_secs_f64() * 1e3,
                pct(0.5).as_secs_f64() * 1e3,
                pct(0.99).as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
