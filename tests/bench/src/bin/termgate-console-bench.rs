//! Issue 5 benchmark: the console polling a large fleet.
//!
//! `termgate-console-bench [--runners 200] [--seconds 30] [--interval 1s]`
//!
//! A child process (this binary with `--serve`) serves realistic `/metrics`
//! bodies of N fake termgate runners on one local axum server, one path per
//! runner, counters growing over time. This process starts with an hour of
//! synthesized history per runner (3600 points per series), polls them all
//! with the real poller, and prints its own CPU use (utime + stime from
//! `/proc/self/stat`, in percent of one core) and RSS (`VmRSS`). The server's
//! work is in the child, so it is not counted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use termgate_console::model::{RunnerSource, RunnerState, Sample, Series};
use termgate_console::scrape::{self, PollOptions};
use tokio_util::sync::CancellationToken;

struct Args {
    runners: usize,
    seconds: u64,
    interval: Duration,
    serve: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        runners: 200,
        seconds: 30,
        interval: Duration::from_secs(1),
        serve: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--runners" => a.runners = val()?.parse()?,
            "--seconds" => a.seconds = val()?.parse()?,
            "--interval" => {
                a.interval = termgate_console::duration_arg::parse_duration(&val()?)
                    .map_err(anyhow::Error::msg)?
            }
            "--serve" => a.serve = true,
            "-h" | "--help" => {
                println!("termgate-console-bench [--runners N] [--seconds S] [--interval 1s]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(a)
}

/// A termgate runner's `/metrics`, about the size and shape of the real one.
fn body(i: usize, t: u64) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(12 << 10);
    let r = format!("runner=\"tok{i:05}\",runner_name=\"prm-{i}\",system_id=\"s_{i:012}\"");
    let running = (i + t as usize / 7) % 9;
    let _ = writeln!(s, "# HELP gitlab_runner_jobs The current number of running builds.\n# TYPE gitlab_runner_jobs gauge");
    for (stage, es, n) in [
        ("step_script", "shell_run", running),
        ("prepare_executor", "prepare", 1),
        ("terminal_hold", "shell_run", i % 3),
    ] {
        let _ = writeln!(s, "gitlab_runner_jobs{{executor_stage=\"{es}\",{r},stage=\"{stage}\",state=\"running\"}} {n}");
    }
    let _ = writeln!(
        s,
        "# TYPE gitlab_runner_jobs_total counter\ngitlab_runner_jobs_total{{{r}}} {}",
        1000 + t * 3
    );
    let _ = writeln!(
        s,
        "# TYPE gitlab_runner_concurrent gauge\ngitlab_runner_concurrent 16"
    );
    let _ = writeln!(
        s,
        "# TYPE gitlab_runner_limit gauge\ngitlab_runner_limit{{{r}}} 16"
    );
    let _ = writeln!(s, "# TYPE gitlab_runner_errors_total counter");
    for (lvl, n) in [
        ("error", t / 10),
        ("fatal", 0),
        ("panic", 0),
        ("warning", t / 3),
    ] {
        let _ = writeln!(s, "gitlab_runner_errors_total{{level=\"{lvl}\"}} {n}");
    }
    let _ = writeln!(s, "# TYPE gitlab_runner_failed_jobs_total counter");
    for reason in [
        "script_failure",
        "runner_system_failure",
        "job_execution_timeout",
    ] {
        let _ = writeln!(
            s,
            "gitlab_runner_failed_jobs_total{{failure_reason=\"{reason}\",{r}}} {}",
            t / 20
        );
    }
    let _ = writeln!(s, "# TYPE gitlab_runner_api_request_statuses_total counter");
    for (ep, st) in [
        ("request_job", 201),
        ("request_job", 204),
        ("update_job", 200),
        ("patch_trace", 202),
    ] {
        let _ = writeln!(
            s,
            "gitlab_runner_api_request_statuses_total{{endpoint=\"{ep}\",{r},status=\"{st}\"}} {}",
            t * 4
        );
    }
    let _ = writeln!(
        s,
        "# TYPE gitlab_runner_api_request_duration_seconds histogram"
    );
    for ep in ["request_job", "update_job", "patch_trace"] {
        let mut c = 0;
        for le in [
            "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf",
        ] {
            c += t;
            let _ = writeln!(s, "gitlab_runner_api_request_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"{le}\",{r},status_class=\"2xx\"}} {c}");
        }
        let _ = writeln!(s, "gitlab_runner_api_request_duration_seconds_sum{{endpoint=\"{ep}\",{r},status_class=\"2xx\"}} {}", t as f64 * 0.12);
        let _ = writeln!(s, "gitlab_runner_api_request_duration_seconds_count{{endpoint=\"{ep}\",{r},status_class=\"2xx\"}} {c}");
    }
    let _ = writeln!(s, "# TYPE gitlab_runner_job_duration_seconds histogram");
    let mut c = 0;
    for le in [
        "30", "60", "300", "600", "1800", "3600", "7200", "10800", "18000", "36000", "+Inf",
    ] {
        c += t / 5;
        let _ = writeln!(
            s,
            "gitlab_runner_job_duration_seconds_bucket{{le=\"{le}\",{r}}} {c}"
        );
    }
    let _ = writeln!(s, "gitlab_runner_job_duration_seconds_sum{{{r}}} {}\ngitlab_runner_job_duration_seconds_count{{{r}}} {c}", t * 40);
    let _ = writeln!(s, "# TYPE gitlab_runner_version_info gauge\ngitlab_runner_version_info{{architecture=\"amd64\",branch=\"main\",built_at=\"2026-01-01 00:00:00 +0000\",go_version=\"rust\",name=\"termgate-runner\",os=\"linux\",revision=\"abc123\",version=\"0.3.0\"}} 1");
    let avail = 16usize.saturating_sub(running + 1 + i % 3);
    let _ = writeln!(s, "# TYPE gitlab_runner_session_terminals_available gauge\ngitlab_runner_session_terminals_available {avail}");
    let _ = writeln!(s, "# TYPE gitlab_runner_session_terminals_active gauge\ngitlab_runner_session_terminals_active {}", i % 3);
    let _ = writeln!(s, "# TYPE gitlab_runner_session_terminals_idle gauge\ngitlab_runner_session_terminals_idle {}", running / 2);
    let _ = writeln!(
        s,
        "# TYPE gitlab_runner_session_websocket_connections gauge"
    );
    for (role, n) in [("interactive", i % 3), ("observer", i % 2)] {
        let _ = writeln!(
            s,
            "gitlab_runner_session_websocket_connections{{role=\"{role}\"}} {n}"
        );
        let _ = writeln!(
            s,
            "gitlab_runner_session_websocket_connections_total{{role=\"{role}\"}} {}",
            t / 4
        );
    }
    let _ = writeln!(s, "# TYPE gitlab_runner_session_rejections_total counter");
    for reason in [
        "unauthorized",
        "not_found",
        "not_websocket",
        "locked",
        "unavailable",
        "connect_failed",
        "over_limit",
    ] {
        let _ = writeln!(
            s,
            "gitlab_runner_session_rejections_total{{reason=\"{reason}\"}} {}",
            t / 50
        );
    }
    let _ = writeln!(s, "# TYPE gitlab_runner_session_closes_total counter");
    for reason in [
        "client_left",
        "job_finished",
        "job_cancelled",
        "session_timeout",
        "idle_timeout",
        "runner_shutdown",
        "replaced",
        "frame_too_large",
        "terminal_exited",
        "error",
    ] {
        let _ = writeln!(
            s,
            "gitlab_runner_session_closes_total{{reason=\"{reason}\"}} {}",
            t / 30
        );
    }
    for dir in ["in", "out"] {
        let _ = writeln!(
            s,
            "gitlab_runner_session_bytes_total{{direction=\"{dir}\"}} {}",
            t * 4096
        );
    }
    for h in [
        "gitlab_runner_session_duration_seconds",
        "gitlab_runner_session_connect_seconds",
    ] {
        let _ = writeln!(s, "# TYPE {h} histogram");
        let mut c = 0;
        for le in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
        ] {
            c += t / 10;
            let _ = writeln!(s, "{h}_bucket{{le=\"{le}\"}} {c}");
        }
        let _ = writeln!(s, "{h}_sum {}\n{h}_count {c}", t as f64 * 0.3);
    }
    let _ = writeln!(
        s,
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
        t as f64 * 0.02
    );
    let _ = writeln!(s, "process_max_fds 1048576\nprocess_open_fds 42");
    let _ = writeln!(s, "process_resident_memory_bytes {}", 30_000_000 + i * 1000);
    let _ = writeln!(s, "process_start_time_seconds 1767225600\nprocess_virtual_memory_bytes 900000000\nprocess_threads 9");
    s
}

async fn serve(runners: usize) -> Result<()> {
    let started = Instant::now();
    let app = axum::Router::new().route(
        "/r/{i}/metrics",
        axum::routing::get(
            move |axum::extract::Path(i): axum::extract::Path<usize>| async move {
                if i < runners {
                    Ok(body(i, started.elapsed().as_secs()))
                } else {
                    Err(axum::http::StatusCode::NOT_FOUND)
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", l.local_addr()?);
    axum::serve(l, app).await?;
    Ok(())
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc/self/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Ok(ticks / hz)
}

fn rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// A runner state with an hour of history in every series it would have.
fn filled_state(src: RunnerSource, now: SystemTime, interval: Duration) -> RunnerState {
    let start = now - Duration::from_secs(3600);
    let mut st = RunnerState::new(src, start);
    let all = [
        Series::Jobs,
        Series::TerminalsAvailable,
        Series::TerminalsActive,
        Series::TerminalsIdle,
        Series::WsConnections,
        Series::ErrorsPerMinute,
        Series::CpuPercent,
        Series::RssBytes,
    ];
    let step = interval.max(Duration::from_secs(1));
    let n = (3600 / step.as_secs().max(1)) as u32;
    for k in 0..n {
        let at = start + step * k;
        for (j, s) in all.iter().enumerate() {
            st.history.push(*s, at, f64::from(k % 17) + j as f64);
        }
    }
    st.latest = Some(Sample::default());
    st
}

fn main() -> Result<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if a.serve {
        return rt.block_on(serve(a.runners));
    }

    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", "--runners", &a.runners.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the fake runners")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
    let addr = line.trim().to_string();

    let result = rt.block_on(async {
        let now = SystemTime::now();
        let states: Vec<RunnerState> = (0..a.runners)
            .map(|i| RunnerSource {
                name: format!("prm-{i}"),
                metrics_url: format!("http://{addr}/r/{i}/metrics"),
                session_url: None,
                logs: vec![],
            })
            .map(|s| filled_state(s, now, a.interval))
            .collect();
        let points: usize = states
            .iter()
            .map(|s| s.history.series.values().map(|q| q.len()).sum::<usize>())
            .sum();
        let rss_filled = rss_mib()?;
        let opts = PollOptions {
            interval: a.interval,
            ..Default::default()
        };
        let stop = CancellationToken::new();
        let rx = scrape::spawn_with_states(states, opts, stop.clone());
        // Warm up: connections, first round.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cpu0, t0, wall0) = (cpu_seconds()?, Instant::now(), SystemTime::now());
        tokio::time::sleep(Duration::from_secs(a.seconds)).await;
        let (cpu1, wall) = (cpu_seconds()?, t0.elapsed());
        let rss = rss_mib()?;
        let (up, scrapes) = {
            let v = rx.borrow();
            let up = v
                .iter()
                .filter(|s| s.health == termgate_console::model::Health::Up)
                .count();
            let scrapes: usize = v
                .iter()
                .map(|s| s.history.values_since(Series::Jobs, wall0).len())
                .sum();
            (up, scrapes)
        };
        stop.cancel();
        let cpu_pct = (cpu1 - cpu0) / wall.as_secs_f64() * 100.0;
        println!(
            "termgate-console-bench: {} runners, every {:?}, {}s measured",
            a.runners, a.interval, a.seconds
        );
        println!(
            "  up: {up}/{}   scrapes: {scrapes} ({:.1}/s)",
            a.runners,
            scrapes as f64 / wall.as_secs_f64()
        );
        println!(
            "  history: {points} points ({:.0} per runner per series)",
            points as f64 / a.runners as f64 / 8.0
        );
        println!("  CPU: {cpu_pct:.1}% of one core");
        println!("  RSS: {rss:.1} MiB (after filling history: {rss_filled:.1} MiB)");
        anyhow::Ok(())
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}
