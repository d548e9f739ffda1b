//! Fixed data and a fixed clock for the screen tests: a termgate runner
//! up, an upstream gitlab-runner up (no session metrics), one down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::app::{App, Hits};
use crate::model::{
    ErrorEntry, Health, Level, LogRecord, RunnerSessions, RunnerSource, RunnerState, RunnerVersion,
    Sample, Series, SessionsState, Snapshot, Tally, Unhealthy,
};
use crate::ui::widgets::Theme;
use termgate::operator::{client_role, ClientSummary, SessionSummary};

/// 2025-05-06 14:02:31 UTC.
pub const NOW_SECS: u64 = 1_746_540_151;

pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

pub fn ago(secs: f64) -> SystemTime {
    now() - Duration::from_secs_f64(secs)
}

pub fn fixed_app(theme: Theme) -> App {
    App::new(theme, now())
}

/// Render once into a test terminal; returns it and the hit areas (the app
/// is not changed: call [`App::drawn`] with them to mimic the loop).
pub fn draw(app: &App, snap: &Snapshot, w: u16, h: u16) -> (Terminal<TestBackend>, Hits) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut hits = Hits::default();
    term.draw(|f| hits = crate::ui::render(f, app, snap, now()))
        .unwrap();
    (term, hits)
}

fn source(name: &str, host: &str) -> RunnerSource {
    RunnerSource {
        name: name.into(),
        metrics_url: format!("http://{host}:9252/metrics"),
        session_url: Some(format!("https://{host}:8093")),
        logs: vec![],
    }
}

/// One point a minute over the last hour, `f(minutes ago)`.
fn hour(r: &mut RunnerState, s: Series, f: impl Fn(u32) -> f64) {
    for m in (0..60).rev() {
        r.history.push(s, ago(f64::from(m) * 60.0 + 1.0), f(m));
    }
}

fn prm5() -> RunnerState {
    let mut r = RunnerState::new(source("prm-5", "prm-5.example.net"), ago(7200.0));
    r.health = Health::Up;
    r.last_ok = Some(ago(0.8));
    r.last_attempt = r.last_ok;
    r.errors_per_minute = Some(0.4);
    r.job_failures_per_minute = Some(0.2);
    r.cpu_percent = Some(31.0);
    r.latest = Some(Sample {
        at: r.last_ok,
        version: Some(RunnerVersion {
            name: "termgate-runner".into(),
            version: "0.3.1".into(),
        }),
        jobs: Some(212.0),
        jobs_by_state: BTreeMap::from([("running".into(), 200.0), ("pending".into(), 12.0)]),
        concurrent: Some(300.0),
        terminals_available: Some(92.0),
        terminals_active: Some(141.0),
        terminals_idle: Some(71.0),
        ws_connections: BTreeMap::from([("user".into(), 120.0), ("observer".into(), 23.0)]),
        errors_total: BTreeMap::from([("error".into(), 30.0), ("warning".into(), 17.0)]),
        rss_bytes: Some(142.0 * 1024.0 * 1024.0),
        cpu_seconds_total: Some(5000.0),
        start_time_seconds: Some((NOW_SECS - 3 * 3600 - 12 * 60) as f64),
        ..Sample::default()
    });
    // Available terminals fall to zero 25 to 21 minutes ago.
    hour(&mut r, Series::TerminalsAvailable, |m| {
        if (21..=25).contains(&m) {
            0.0
        } else {
            f64::from(m.abs_diff(23)) * 4.0
        }
    });
    hour(&mut r, Series::TerminalsActive, |m| {
        141.0 - f64::from(m) * 1.5
    });
    hour(&mut r, Series::TerminalsIdle, |m| 60.0 + f64::from(m % 12));
    hour(&mut r, Series::WsConnections, |m| {
        150.0 - f64::from(m.abs_diff(23))
    });
    hour(&mut r, Series::Jobs, |m| 180.0 + f64::from(60 - m));
    hour(&mut r, Series::ErrorsPerMinute, |m| {
        0.4 + f64::from(m % 20) / 40.0
    });
    hour(&mut r, Series::CpuPercent, |m| 20.0 + f64::from(m % 15));
    hour(&mut r, Series::RssBytes, |m| {
        (120.0 + f64::from(60 - m) / 3.0) * 1024.0 * 1024.0
    });
    r
}

fn prm4() -> RunnerState {
    let mut r = RunnerState::new(source("prm-4", "prm-4.example.net"), ago(7200.0));
    r.source.session_url = None;
    r.health = Health::Up;
    r.last_ok = Some(ago(1.1));
    r.errors_per_minute = Some(2.1);
    r.job_failures_per_minute = Some(1.5);
    r.latest = Some(Sample {
        at: r.last_ok,
        version: Some(RunnerVersion {
            name: "gitlab-runner".into(),
            version: "17.11.0".into(),
        }),
        jobs: Some(300.0),
        jobs_by_state: BTreeMap::from([("running".into(), 300.0)]),
        concurrent: Some(300.0),
        errors_total: BTreeMap::from([("error".into(), 900.0)]),
        ..Sample::default()
    });
    hour(&mut r, Series::Jobs, |m| 250.0 + f64::from(60 - m));
    hour(&mut r, Series::ErrorsPerMinute, |m| {
        2.0 + f64::from(m % 3) / 10.0
    });
    r
}

/// A small termgate runner out of terminals for the last five minutes.
fn prm6() -> RunnerState {
    let mut r = prm5();
    r.source = source("prm-6", "prm-6.example.net");
    r.last_ok = Some(ago(1.9));
    r.errors_per_minute = Some(0.0);
    r.job_failures_per_minute = Some(0.0);
    r.cpu_percent = Some(12.0);
    if let Some(l) = r.latest.as_mut() {
        l.jobs = Some(8.0);
        l.jobs_by_state = BTreeMap::from([("running".into(), 8.0)]);
        l.concurrent = Some(8.0);
        l.terminals_available = Some(0.0);
        l.terminals_active = Some(8.0);
        l.terminals_idle = Some(2.0);
        l.ws_connections = BTreeMap::from([("user".into(), 9.0)]);
        l.rss_bytes = Some(38.0 * 1024.0 * 1024.0);
        // One of its three `[[runners]]` disabled after failed job
        // requests, for 40 more minutes (issue 20, item 5).
        let off = |until: Option<SystemTime>| Unhealthy {
            disabled: until.is_some(),
            until,
        };
        l.unhealthy = BTreeMap::from([
            ("prm-6-a".into(), off(None)),
            (
                "prm-6-b".into(),
                off(Some(now() + Duration::from_secs(2400))),
            ),
            ("prm-6-c".into(), off(None)),
        ]);
    }
    r.history.series.clear();
    hour(&mut r, Series::TerminalsAvailable, |m| {
        if m < 5 || (21..=25).contains(&m) {
            0.0
        } else {
            f64::from(m % 4)
        }
    });
    hour(&mut r, Series::TerminalsActive, |m| 8.0 - f64::from(m % 4));
    r
}

fn prm3() -> RunnerState {
    let mut r = RunnerState::new(source("prm-3", "prm-3.example.net"), ago(7200.0));
    r.health = Health::Down {
        reason: "refused".into(),
        retry_at: now() + Duration::from_secs(8),
    };
    r.last_attempt = Some(ago(4.0));
    r
}

fn minute_ago(m: u64) -> u64 {
    NOW_SECS / 60 - m
}

fn entry(
    level: Level,
    runners: &[&str],
    first_min: u64,
    per_minute: Vec<(u64, u32)>,
    sample: &str,
) -> ErrorEntry {
    let count = per_minute.iter().map(|(_, c)| u64::from(*c)).sum();
    let last = per_minute.iter().map(|(m, _)| *m).max().unwrap_or(0);
    // The fingerprint the tally would give the sample.
    let fingerprint = crate::logs::fingerprint(sample);
    ErrorEntry {
        origin: crate::logs::origin::classify(sample, None),
        fingerprint,
        level,
        count,
        first_seen: Some(ago(first_min as f64 * 60.0)),
        last_seen: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(last * 60 + 5)),
        runners: runners
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        sample: sample.into(),
        examples: VecDeque::from([
            format!(
                r#"{{"level":"{}","msg":"{sample}","runner":"a1b2c3"}}"#,
                level.as_str()
            ),
            format!(
                r#"{{"level":"{}","msg":"{sample}","runner":"a1b2c3","status":"409"}}"#,
                level.as_str()
            ),
        ]),
        per_minute: per_minute.into(),
    }
}

pub fn tally() -> Tally {
    let client = entry(
        Level::Error,
        &["prm-3"],
        20,
        (0..20)
            .map(|m| (minute_ago(m), 12 - (m as u32) / 2))
            .collect(),
        "Checking for jobs... client error",
    );
    let revoked = entry(
        Level::Warning,
        &["prm-5"],
        3 * 24 * 60,
        (0..17).map(|m| (minute_ago(m * 3 + 1), 1)).collect(),
        "Terminal already connected, revoking connection",
    );
    let failed = entry(
        Level::Error,
        &["prm-5", "prm-4"],
        5 * 24 * 60,
        vec![
            (minute_ago(55), 1),
            (minute_ago(50), 1),
            (minute_ago(40), 1),
        ],
        "Job failed (system failure): prepare environment: exit status 1",
    );
    let old = entry(
        Level::Warning,
        &["prm-4"],
        3 * 24 * 60,
        vec![(minute_ago(2 * 24 * 60), 9)],
        "Failed to pull image alpine:3.19: timeout",
    );
    // A user's job failing (its script exits non-zero) every few minutes.
    let exit = entry(
        Level::Warning,
        &["prm-5"],
        50,
        (0..9).map(|m| (minute_ago(m * 5 + 2), 1)).collect(),
        "Job failed: exit code 1",
    );
    Tally {
        entries: [client, revoked, failed, old, exit]
            .into_iter()
            .map(|e| (e.fingerprint.clone(), e))
            .collect(),
        lines: 12_345,
        unparsed: 2,
        oversized: 0,
    }
}

fn log(runner: &str, secs_ago: f64, level: Level, msg: &str, fields: &[(&str, &str)]) -> LogRecord {
    LogRecord {
        runner: runner.into(),
        time: Some(ago(secs_ago)),
        level,
        msg: msg.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub fn logs() -> VecDeque<LogRecord> {
    VecDeque::from([
        log(
            "prm-5",
            60.0,
            Level::Info,
            "Checking for jobs... received",
            &[
                ("job", "4711"),
                ("repo_url", "https://gitlab.example.net/acme/webapp.git"),
            ],
        ),
        log(
            "prm-4",
            58.0,
            Level::Info,
            "Checking for jobs... received",
            &[("job", "990"), ("runner", "x9y8z7")],
        ),
        log(
            "prm-5",
            50.0,
            Level::Debug,
            "Session server request",
            &[("uri", "/session/9f1c/exec")],
        ),
        log(
            "prm-5",
            45.0,
            Level::Info,
            "Terminal session started",
            &[("job", "4711"), ("session", "9f1c…e0"), ("role", "user")],
        ),
        log(
            "prm-5",
            40.0,
            Level::Warning,
            "Terminal already connected, revoking connection",
            &[("job", "4711"), ("session", "9f1c…e0")],
        ),
        log(
            "prm-4",
            35.0,
            Level::Error,
            "Job failed (system failure): prepare environment: exit status 1",
            &[("job", "991"), ("duration_s", "3.2")],
        ),
        log(
            "prm-5",
            30.0,
            Level::Info,
            "Job succeeded",
            &[("job", "4702"), ("duration_s", "61.5")],
        ),
        log(
            "prm-5",
            20.0,
            Level::Info,
            "Terminal session closed",
            &[
                ("job", "4711"),
                ("reason", "client left"),
                ("duration_s", "840"),
            ],
        ),
        log(
            "prm-4",
            12.0,
            Level::Warning,
            "Appending trace to coordinator... failed",
            &[("job", "990"), ("code", "503")],
        ),
        log(
            "prm-5",
            5.0,
            Level::Error,
            "Terminal connection rejected",
            &[("reason", "limit reached"), ("limit", "300")],
        ),
        log(
            "prm-4",
            2.0,
            Level::Info,
            "Checking for jobs... nothing",
            &[],
        ),
    ])
}

/// RFC 3339 of `secs` ago.
fn rfc3339_ago(secs: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from(ago(secs as f64)).to_rfc3339()
}

fn session(id: &str, job: u64, project: &str, state: &str, started_s: u64) -> SessionSummary {
    SessionSummary {
        id: id.into(),
        job_id: job,
        project: project.into(),
        job_name: "terminal".into(),
        executor: "shell".into(),
        state: state.into(),
        started_at: rfc3339_ago(started_s),
        ..SessionSummary::default()
    }
}

fn client(role: &str, name: Option<&str>) -> ClientSummary {
    ClientSummary {
        role: role.into(),
        name: name.map(str::to_string),
        peer: "10.0.0.9:51234".into(),
        since: rfc3339_ago(60),
    }
}

/// prm-5: three sessions; prm-4 (upstream): no operator access; prm-3:
/// down; prm-6: one active session.
pub fn sessions() -> Vec<RunnerSessions> {
    let mut webapp = session("9f1c2b7d44e0", 4711, "acme/webapp", "active", 12 * 60 + 5);
    webapp.clients = vec![
        client(client_role::INTERACTIVE, None),
        client(client_role::OBSERVER, Some("alice")),
    ];
    webapp.bytes_in = 3 * 1024;
    webapp.bytes_out = 1_258_291;
    let mut api = session("02ab88c1ff77", 4712, "acme/api", "idle", 3 * 60 + 20);
    api.bytes_out = 2048;
    let runbook = session("c3d4a9e1b219", 4715, "tools/runbook", "waiting", 4);
    let mut small = session("77e1d00c5a3b", 90, "infra/terraform", "active", 95);
    small.clients = vec![client(client_role::INTERACTIVE, None)];
    small.bytes_in = 120;
    small.bytes_out = 40_960;
    vec![
        RunnerSessions {
            runner: "prm-5".into(),
            state: SessionsState::Live {
                sessions: vec![webapp, api, runbook],
                at: ago(0.9),
            },
        },
        RunnerSessions {
            runner: "prm-4".into(),
            state: SessionsState::NoAccess(crate::access::NO_ACCESS_HINT.into()),
        },
        RunnerSessions {
            runner: "prm-3".into(),
            state: SessionsState::Failed {
                reason: "refused".into(),
                retry_at: now() + Duration::from_secs(8),
            },
        },
        RunnerSessions {
            runner: "prm-6".into(),
            state: SessionsState::Live {
                sessions: vec![small],
                at: ago(1.2),
            },
        },
    ]
}

pub fn fixed_snapshot() -> Snapshot {
    Snapshot {
        runners: vec![prm5(), prm4(), prm3(), prm6()],
        sessions: sessions(),
        tally: tally(),
        logs: logs(),
        taken_at: Some(ago(0.5)),
        interval: Duration::from_secs(2),
        // Empty: the screens sum the runners' own history (the fallback).
        fleet: Default::default(),
    }
}
