//! Issue 5: Debian's `prometheus` scraping two real runners shows the same
//! numbers through `--prometheus` as through direct scraping.
//!
//! Needs `prometheus` on PATH (`scripts/setup-test-deps.sh`). Without it the
//! test is skipped, unless `TERMGATE_REQUIRE_PROMETHEUS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use termgate::admin::JobSpec;
use termgate_console::model::{Health, Sample};
use termgate_console::scrape::{self, prometheus, ScrapeClient};
use termgate_test_support::procs::{Coord, CoordOptions, RunnerProc, RunnerSetup};
use termgate_test_support::prom::{prometheus_or_skip, start_prometheus, CancelOnDrop};
use termgate_test_support::{scaled, wait_until};
use tokio_util::sync::CancellationToken;

const REG_TOKEN: &str = "reg-TOKEN-console-prom-1234";

fn start_coordinator() -> Coord {
    Coord::start_with(&CoordOptions {
        registration_token: REG_TOKEN.into(),
        trace_update_interval: 3,
        quiet: true,
        ..CoordOptions::default()
    })
}

/// Register a shell runner with `concurrent` slots, start it; returns it
/// with its metrics address (`127.0.0.1:PORT`).
fn start_runner(coord: &Coord, name: &str, concurrent: u32) -> (RunnerSetup, RunnerProc, String) {
    let setup = RunnerSetup::register(coord, name, &["--run-untagged"]);
    setup.set_global(&format!("concurrent = {concurrent}"));
    setup.set_global("check_interval = 1");
    let r = setup.start();
    let addr = r.metrics_url.trim_start_matches("http://").to_owned();
    (setup, r, addr)
}

/// The fields the Fleet screen shows from a sample (not process_*: those
/// move between two reads).
fn shown(s: &Sample) -> Value {
    json!({
        "version": s.version.as_ref().map(|v| format!("{} {}", v.name, v.version)),
        "jobs": s.jobs,
        "jobs_by_state": s.jobs_by_state,
        "concurrent": s.concurrent,
        "terminals": [s.terminals_available, s.terminals_active, s.terminals_idle],
        "ws": s.ws_connections,
        "errors": s.errors_total,
        "rejections": s.rejections_total,
        "closes": s.closes_total,
        "jobs_total": s.jobs_total,
        "failed": s.failed_jobs_total,
    })
}

#[test]
fn prometheus_shows_the_same_numbers_as_direct_scraping() {
    let Some(prom_bin) = prometheus_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let coord = start_coordinator();
    let coord_url = coord.url.clone();
    let (_s1, mut r1, a1) = start_runner(&coord, "prom-a", 3);
    let (_s2, mut r2, a2) = start_runner(&coord, "prom-b", 5);
    // One long job, so one runner has jobs = 1 and fewer terminals available.
    let id = coord.enqueue(JobSpec::new("hold", &["sleep 120"]));
    let job = CancelOnDrop(format!("{coord_url}/admin/jobs/{id}"));
    let (mut prom, prom_url, prom_log) = start_prometheus(&prom_bin, dir.path(), &[&a1, &a2]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = ScrapeClient::new(Duration::from_secs(2)).unwrap();
    wait_until(
        "prometheus sees both runners up",
        Duration::from_secs(60),
        || {
            prom.check_alive(&prom_log);
            r1.check_alive();
            r2.check_alive();
            let t = rt.block_on(prometheus::discover(&client, &prom_url)).ok()?;
            (t.len() == 2 && t.iter().all(|t| t.up)).then_some(())
        },
    );

    let direct_url = |a: &str| format!("http://{a}/metrics");
    let deadline = Instant::now() + scaled(Duration::from_secs(30));
    let mut last = String::from("no answer from prometheus");
    let compared = loop {
        assert!(Instant::now() < deadline, "numbers differ:\n{last}");
        std::thread::sleep(Duration::from_millis(200));
        let fleet = match rt.block_on(prometheus::fetch(&client, &prom_url)) {
            Ok(f) => f,
            Err(e) => {
                last = format!("prometheus: {e}");
                continue;
            }
        };
        let mut rows = Vec::new();
        for a in [&a1, &a2] {
            let direct = rt.block_on(client.scrape(&direct_url(a))).unwrap();
            let Some(via) = fleet.samples.get(&("termgate".to_string(), a.to_string())) else {
                last = format!("{a}: no series in prometheus");
                break;
            };
            let (d, v) = (shown(&direct), shown(via));
            if d != v {
                last = format!("{a}:\n direct {d}\n prom   {v}");
                break;
            }
            rows.push((a.to_string(), direct));
        }
        // Once the job is picked up the runners differ; compare then.
        let jobs: f64 = rows.iter().map(|(_, s)| s.jobs.unwrap_or(0.0)).sum();
        if rows.len() == 2 && jobs == 1.0 {
            break rows;
        }
        if rows.len() == 2 {
            last = format!("equal, but the job is not running yet (jobs = {jobs})");
        }
    };
    for (a, s) in &compared {
        eprintln!("{a}: {}", shown(s));
        assert!(s
            .version
            .as_ref()
            .is_some_and(|v| v.name == "termgate-runner"));
        assert!(
            s.terminals_available.is_some(),
            "termgate exports terminals"
        );
        assert!(
            s.errors_total.contains_key("error"),
            "levels pre-initialised"
        );
    }
    let concurrents: Vec<f64> = compared.iter().filter_map(|(_, s)| s.concurrent).collect();
    assert_eq!(concurrents, [3.0, 5.0]);

    // The --prometheus poller publishes both, up, named by instance.
    rt.block_on(async {
        let stop = CancellationToken::new();
        let opts = scrape::PollOptions {
            interval: Duration::from_millis(200),
            ..Default::default()
        };
        let mut rx = prometheus::spawn(prom_url.clone(), opts, stop.clone());
        let v = tokio::time::timeout(scaled(Duration::from_secs(20)), async {
            loop {
                rx.changed().await.unwrap();
                let v = rx.borrow_and_update().clone();
                if v.len() == 2 && v.iter().all(|s| s.health == Health::Up) {
                    break v;
                }
            }
        })
        .await
        .expect("the prometheus poller shows both runners up");
        let mut names: Vec<&str> = v.iter().map(|s| s.source.name.as_str()).collect();
        names.sort_unstable();
        let mut want = [a1.as_str(), a2.as_str()];
        want.sort_unstable();
        assert_eq!(names, want);
        stop.cancel();
    });

    // A runner that stops is Down through Prometheus too.
    drop(job);
    drop(r2);
    wait_until(
        "prometheus sees prom-b down",
        Duration::from_secs(30),
        || {
            let t = rt.block_on(prometheus::discover(&client, &prom_url)).ok()?;
            let b = t.iter().find(|t| t.instance == a2)?;
            (!b.up).then(|| assert_eq!(b.reason.as_deref(), Some("refused"), "{b:?}"))
        },
    );
    drop(r1);
}
