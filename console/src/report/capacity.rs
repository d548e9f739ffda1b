//! Capacity history from Prometheus' `query_range`: per runner process
//! (Prometheus target, `instance` label), how low the free terminals went
//! and for how long they were gone, against the terminals in use, the
//! WebSocket connections, the jobs and the configured `concurrent`.
//!
//! Six range queries over one grid ([`Grid`]: from the period's start, every
//! `step` seconds, up to the period's end or now, whichever is first — a
//! range query past now would repeat the last sample for Prometheus' 5 min
//! lookback), each summed per `instance` (and `runner_name`, folded here
//! so the names are kept):
//!
//! - `gitlab_runner_session_terminals_available`, `…_active`, `…_idle` and
//!   `…_websocket_connections` (all roles): termgate's own; upstream
//!   gitlab-runner has none, so their figures are `None` there;
//! - `gitlab_runner_jobs` (every state and stage), 0 where the target
//!   reports `gitlab_runner_concurrent` but no job series (both runners
//!   drop the series when no job runs);
//! - `gitlab_runner_concurrent` (highest per target).
//!
//! The answers are parsed by [`crate::scrape::prometheus`]'s
//! [`parse_answer`] and [`parse_matrix`], the same code the console's
//! `--prometheus` view reads instant queries with.
//!
//! Each figure is read at the grid's instants (Prometheus' value then: the
//! last sample scraped before it): time at zero is a count of instants ×
//! step, exact to one step.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail};
use termgate::metrics as names;

use super::build::rfc3339_ms;
use super::model::{Capacity, CapacityPoint, RunnerCapacity};
use super::Window;
use crate::scrape::prometheus::{api_url, parse_answer, parse_matrix, ApiError, Labels, Matrix};

/// The finest step asked for, in seconds (Prometheus' default scrape
/// interval: a finer step repeats samples).
pub const MIN_STEP_S: u64 = 15;
/// Prometheus refuses range queries of more points per series.
pub const MAX_QUERY_POINTS: u64 = 11_000;
/// Points per runner in [`RunnerCapacity::series`].
pub const MAX_SERIES_POINTS: usize = 200;
/// Prometheus' target label (`host:port`), added to every scraped series.
const INSTANCE: &str = "instance";
/// The largest answer read (a week at 55 s steps is ~300 KB per series).
const MAX_BODY_BYTES: u64 = 256 << 20;

/// The capacity history of `window` (its current period) from the
/// Prometheus server at `url` (`http://host:9090`, a path prefix allowed).
/// `timeout` bounds the whole fetch. Targets without any runner series are
/// not listed; missing series leave their figures `None`.
pub fn fetch(url: &str, window: Window, timeout: Duration) -> anyhow::Result<Capacity> {
    fetch_at(url, window, timeout, super::unix_ms(SystemTime::now()))
}

/// [`fetch`] with the current time given (Unix ms).
pub fn fetch_at(
    url: &str,
    window: Window,
    timeout: Duration,
    now_ms: i64,
) -> anyhow::Result<Capacity> {
    let base = url.trim().trim_end_matches('/');
    let shown = without_credentials(base);
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("Prometheus at {shown:?}: not an http:// or https:// URL");
    }
    let grid = Grid::new(window, now_ms);
    let mut capacity = Capacity {
        source: shown.clone(),
        step_s: grid.step_s,
        runners: Vec::new(),
    };
    if grid.points == 0 {
        return Ok(capacity);
    }
    let api = Api::new(base, &shown, timeout)?;
    let mut targets: BTreeMap<String, Tracks> = BTreeMap::new();
    for metric in Metric::ALL {
        let matrix = api.range(metric, &grid)?;
        fold(&mut targets, metric, &matrix, &grid);
    }
    capacity.runners = targets
        .into_iter()
        .map(|(instance, t)| summarise(instance, &t, &grid))
        .collect();
    Ok(capacity)
}

/// `base` with any `user:password@` masked: the report is for sharing, and
/// so are its errors.
fn without_credentials(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut u) if ["http", "https"].contains(&u.scheme()) => {
            if u.username().is_empty() && u.password().is_none() {
                return base.to_owned();
            }
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        // Not an http URL: anything before an `@` may be a password.
        _ => match base.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => base.to_owned(),
        },
    }
}

/// The instants asked about: `start_s + i × step_s` for `i < points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Unix seconds: the period's start, rounded up to a second.
    pub start_s: i64,
    pub step_s: u64,
    /// 0 when the period has not begun.
    pub points: usize,
}

impl Grid {
    /// The period's instants before its end and not after `now_ms`, at the
    /// step [`choose_step`] gives for that span.
    pub fn new(window: Window, now_ms: i64) -> Grid {
        let start_s = window.from.div_euclid(1000) + i64::from(window.from.rem_euclid(1000) > 0);
        let last_ms = (window.to - 1).min(now_ms);
        let last_s = last_ms.div_euclid(1000);
        if last_s < start_s {
            return Grid {
                start_s,
                step_s: MIN_STEP_S,
                points: 0,
            };
        }
        let span = u64::try_from(last_s - start_s).unwrap_or(0);
        let step_s = choose_step(span);
        Grid {
            start_s,
            step_s,
            points: usize::try_from(span / step_s + 1).unwrap_or(usize::MAX),
        }
    }

    fn step_ms(&self) -> i64 {
        i64::try_from(self.step_s)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    }

    /// Unix ms of instant `i`.
    pub fn at_ms(&self, i: usize) -> i64 {
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        (self.start_s.saturating_mul(1000)).saturating_add(i.saturating_mul(self.step_ms()))
    }

    /// Unix seconds of the last instant.
    fn end_s(&self) -> i64 {
        self.at_ms(self.points.saturating_sub(1)) / 1000
    }

    /// Which instant `t_ms` is (`None` between instants or outside).
    pub fn index(&self, t_ms: i64) -> Option<usize> {
        let d = t_ms.checked_sub(self.start_s.checked_mul(1000)?)?;
        if d < 0 || d % self.step_ms() != 0 {
            return None;
        }
        let i = usize::try_from(d / self.step_ms()).ok()?;
        (i < self.points).then_some(i)
    }
}

/// The step for `span_s` seconds between the first and last instant: the
/// finest that keeps a series within [`MAX_QUERY_POINTS`], and at least
/// [`MIN_STEP_S`].
pub fn choose_step(span_s: u64) -> u64 {
    // `span / step + 1 <= MAX` ⇔ `step > span / MAX`.
    (span_s / MAX_QUERY_POINTS + 1).max(MIN_STEP_S)
}

/// What one range query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Available,
    Active,
    Idle,
    Websocket,
    Jobs,
    Concurrent,
}

impl Metric {
    const ALL: [Metric; 6] = [
        Metric::Available,
        Metric::Active,
        Metric::Idle,
        Metric::Websocket,
        Metric::Jobs,
        Metric::Concurrent,
    ];

    /// The metric named in errors.
    fn name(self) -> &'static str {
        match self {
            Metric::Available => names::SESSION_TERMINALS_AVAILABLE,
            Metric::Active => names::SESSION_TERMINALS_ACTIVE,
            Metric::Idle => names::SESSION_TERMINALS_IDLE,
            Metric::Websocket => names::SESSION_WEBSOCKET_CONNECTIONS,
            Metric::Jobs => names::JOBS,
            Metric::Concurrent => names::CONCURRENT,
        }
    }

    fn promql(self) -> String {
        let by = format!("by ({}, {})", INSTANCE, names::label::RUNNER_NAME);
        match self {
            Metric::Jobs => format!(
                "sum {by} ({jobs}) or on ({inst}) (max by ({inst}) ({conc}) * 0)",
                jobs = names::JOBS,
                inst = INSTANCE,
                conc = names::CONCURRENT,
            ),
            Metric::Concurrent => format!("max by ({}) ({})", INSTANCE, names::CONCURRENT),
            m => format!("sum {by} ({})", m.name()),
        }
    }
}

/// One target's values on the grid, per metric (`None`: no sample then).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracks {
    pub available: Vec<Option<f64>>,
    pub active: Vec<Option<f64>>,
    pub idle: Vec<Option<f64>>,
    pub websocket: Vec<Option<f64>>,
    pub jobs: Vec<Option<f64>>,
    pub concurrent: Vec<Option<f64>>,
    /// `runner_name` labels seen on its series.
    pub runner_names: BTreeSet<String>,
}

impl Tracks {
    fn track(&mut self, m: Metric) -> &mut Vec<Option<f64>> {
        match m {
            Metric::Available => &mut self.available,
            Metric::Active => &mut self.active,
            Metric::Idle => &mut self.idle,
            Metric::Websocket => &mut self.websocket,
            Metric::Jobs => &mut self.jobs,
            Metric::Concurrent => &mut self.concurrent,
        }
    }
}

fn label<'a>(labels: &'a Labels, key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// Adds a query's series to their targets' tracks, summing the series of
/// one target (several `runner_name`s). Points off the grid and values
/// that are not finite are left out.
fn fold(targets: &mut BTreeMap<String, Tracks>, metric: Metric, matrix: &Matrix, grid: &Grid) {
    for (labels, points) in matrix {
        let t = targets
            .entry(label(labels, INSTANCE).to_owned())
            .or_default();
        let name = label(labels, names::label::RUNNER_NAME);
        if !name.is_empty() {
            t.runner_names.insert(name.to_owned());
        }
        let track = t.track(metric);
        track.resize(grid.points, None);
        for &(at, v) in points {
            if let (Some(i), true) = (grid.index(at), v.is_finite()) {
                track[i] = Some(track[i].unwrap_or(0.0) + v);
            }
        }
    }
}

/// The first instant with the lowest value.
pub fn lowest(track: &[Option<f64>]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in track.iter().enumerate() {
        if let Some(v) = *v {
            if best.is_none_or(|(_, b)| v < b) {
                best = Some((i, v));
            }
        }
    }
    best
}

/// The first instant with the highest value.
pub fn highest(track: &[Option<f64>]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in track.iter().enumerate() {
        if let Some(v) = *v {
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
    }
    best
}

/// Instants at 0 (or below), and how many separate stretches they make:
/// a stretch ends at an instant above 0 or without a sample (the target
/// was not scraped: a restart is a new stretch).
pub fn zero_time(track: &[Option<f64>]) -> (u64, u64) {
    let (mut samples, mut stretches, mut inside) = (0, 0, false);
    for v in track {
        let zero = v.is_some_and(|v| v <= 0.0);
        if zero {
            samples += 1;
            if !inside {
                stretches += 1;
            }
        }
        inside = zero;
    }
    (samples, stretches)
}

/// [`RunnerCapacity::series`]: at most [`MAX_SERIES_POINTS`] points evenly
/// spaced over the grid. Each point stands for a bucket of consecutive
/// instants (all of them when there are few) and shows its worst case: the
/// lowest `available`, the highest `active`, `idle` and WebSocket
/// connections; `at` is the bucket's first instant. Empty when the target
/// has none of the four session series.
pub fn downsample(t: &Tracks, grid: &Grid) -> Vec<CapacityPoint> {
    let session = [&t.available, &t.active, &t.idle, &t.websocket];
    if grid.points == 0 || session.iter().all(|s| s.iter().all(Option::is_none)) {
        return Vec::new();
    }
    let per = grid.points.div_ceil(MAX_SERIES_POINTS);
    let fold = |track: &[Option<f64>], lo: usize, hi: usize, f: fn(f64, f64) -> f64| {
        track
            .get(lo..hi.min(track.len()))
            .unwrap_or_default()
            .iter()
            .flatten()
            .copied()
            .reduce(f)
    };
    (0..grid.points)
        .step_by(per)
        .map(|lo| {
            let hi = lo + per;
            CapacityPoint {
                at: rfc3339_ms(grid.at_ms(lo)),
                available: fold(&t.available, lo, hi, f64::min),
                active: fold(&t.active, lo, hi, f64::max),
                idle: fold(&t.idle, lo, hi, f64::max),
                websocket_connections: fold(&t.websocket, lo, hi, f64::max),
            }
        })
        .collect()
}

/// One target's figures from its tracks.
pub fn summarise(instance: String, t: &Tracks, grid: &Grid) -> RunnerCapacity {
    let low = lowest(&t.available);
    let peak = highest(&t.active);
    let (zero_samples, zero_stretches) = zero_time(&t.available);
    let concurrent = peak
        .and_then(|(i, _)| t.concurrent.get(i).copied().flatten())
        .or_else(|| highest(&t.concurrent).map(|(_, v)| v));
    RunnerCapacity {
        instance,
        runner: (!t.runner_names.is_empty()).then(|| {
            t.runner_names
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }),
        lowest_available: low.map(|(_, v)| v),
        lowest_available_at: low.map(|(i, _)| rfc3339_ms(grid.at_ms(i))),
        seconds_at_zero: zero_samples * grid.step_s,
        zero_stretches,
        peak_active: peak.map(|(_, v)| v),
        peak_active_at: peak.map(|(i, _)| rfc3339_ms(grid.at_ms(i))),
        concurrent,
        peak_websocket_connections: highest(&t.websocket).map(|(_, v)| v),
        peak_jobs: highest(&t.jobs).map(|(_, v)| v),
        series: downsample(t, grid),
    }
}

/// The HTTP side: blocking GETs sharing one deadline.
struct Api<'a> {
    http: reqwest::blocking::Client,
    base: &'a str,
    /// `base` as errors show it.
    shown: &'a str,
    deadline: Instant,
    timeout: Duration,
}

impl<'a> Api<'a> {
    fn new(base: &'a str, shown: &'a str, timeout: Duration) -> anyhow::Result<Api<'a>> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("termgate-console/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow!("Prometheus at {shown}: HTTP client: {e}"))?;
        Ok(Api {
            http,
            base,
            shown,
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    /// `query_range` of `metric` over `grid`.
    fn range(&self, metric: Metric, grid: &Grid) -> anyhow::Result<Matrix> {
        let fail = |what: String| {
            anyhow!(
                "Prometheus at {}: query_range of {}: {what}",
                self.shown,
                metric.name()
            )
        };
        let (start, end, step) = (
            grid.start_s.to_string(),
            grid.end_s().to_string(),
            grid.step_s.to_string(),
        );
        let promql = metric.promql();
        let url = api_url(
            self.base,
            "query_range",
            &[
                ("query", promql.as_str()),
                ("start", &start),
                ("end", &end),
                ("step", &step),
            ],
        )
        .map_err(|e| fail(e.to_string()))?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timed_out = || fail(format!("timeout (over {} s)", self.timeout.as_secs_f64()));
        if left.is_zero() {
            return Err(timed_out());
        }
        let resp = self.http.get(&url).timeout(left).send().map_err(|e| {
            match crate::scrape::client::classify(e) {
                crate::scrape::ScrapeError::Timeout => timed_out(),
                e => fail(e.to_string()),
            }
        })?;
        let status = resp.status();
        let mut body = Vec::new();
        let read = resp.take(MAX_BODY_BYTES + 1).read_to_end(&mut body);
        if let Err(e) = read {
            return Err(if e.kind() == std::io::ErrorKind::TimedOut {
                timed_out()
            } else {
                fail(format!("reading the answer: {e}"))
            });
        }
        if body.len() as u64 > MAX_BODY_BYTES {
            return Err(fail(format!("answer over {} MiB", MAX_BODY_BYTES >> 20)));
        }
        let text = String::from_utf8_lossy(&body);
        let answer = parse_answer(&text);
        if !status.is_success() {
            return Err(fail(match answer {
                Err(ApiError::Failed(m)) if !m.is_empty() => format!("HTTP {status}: {m}"),
                _ => format!("HTTP {status}"),
            }));
        }
        let answer = answer.map_err(|e| fail(describe(&e, &text)))?;
        parse_matrix(&answer).map_err(|e| fail(describe(&e, &text)))
    }
}

/// An [`ApiError`] for a person: what the answer was instead.
fn describe(e: &ApiError, text: &str) -> String {
    match e {
        ApiError::NotJson if text.trim_start().starts_with('<') => {
            "not Prometheus API JSON (an HTML page)".to_owned()
        }
        ApiError::NotJson if text.trim().is_empty() => {
            "not Prometheus API JSON (an empty answer)".to_owned()
        }
        ApiError::Failed(m) if m.is_empty() => "status error (no message)".to_owned(),
        ApiError::Failed(m) => format!("status error: {}", m.chars().take(300).collect::<String>()),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::test_server::{self, Reply, Routes};

    /// 2026-11-30T00:00:00Z in Unix seconds.
    const T0: i64 = 1_796_083_200;

    fn window(from_ms: i64, to_ms: i64) -> Window {
        Window {
            prev_from: from_ms - (to_ms - from_ms),
            from: from_ms,
            to: to_ms,
        }
    }

    fn grid(points: usize) -> Grid {
        Grid {
            start_s: T0,
            step_s: 15,
            points,
        }
    }

    #[test]
    fn the_step_keeps_within_prometheus_limit() {
        assert_eq!(choose_step(0), MIN_STEP_S);
        assert_eq!(choose_step(3600), MIN_STEP_S);
        // A week: 604,800 s in at most 10,999 intervals.
        assert_eq!(choose_step(7 * 24 * 3600), 55);
        // 11,000 points at 15 s, then one second more.
        assert_eq!(choose_step(10_999 * 15 + 14), 15);
        assert_eq!(choose_step(11_000 * 15), 16);
        for span in [
            0, 1, 14, 15, 164_999, 165_000, 604_800, 2_419_200, 31_536_000,
        ] {
            let step = choose_step(span);
            let points = span / step + 1;
            assert!(step >= MIN_STEP_S, "{span}: {step}");
            assert!(points <= MAX_QUERY_POINTS, "{span}: {points} points");
            // The finest such step: one second less would be too many.
            if step > MIN_STEP_S {
                assert!(span / (step - 1) + 1 > MAX_QUERY_POINTS, "{span}: {step}");
            }
        }
    }

    #[test]
    fn the_grid_starts_on_a_second_and_stops_at_now() {
        // From 0.5 s past T0, a week long, asked for two minutes after T0.
        let w = window(T0 * 1000 + 500, (T0 + 7 * 86_400) * 1000 + 500);
        let g = Grid::new(w, (T0 + 120) * 1000);
        assert_eq!(g.start_s, T0 + 1);
        assert_eq!(g.step_s, 15);
        // T0+1, +16, …, +106: 119 s / 15 → 8 steps.
        assert_eq!(g.points, 8);
        assert_eq!(g.end_s(), T0 + 106);
        assert_eq!(g.index((T0 + 16) * 1000), Some(1));
        assert_eq!(g.index((T0 + 17) * 1000), None);
        assert_eq!(g.index((T0 + 121) * 1000), None);
        assert_eq!(g.index(T0 * 1000), None);
        assert_eq!(g.at_ms(2), (T0 + 31) * 1000);
        // A past week: the whole of it, the end excluded.
        let w = window(T0 * 1000, (T0 + 7 * 86_400) * 1000);
        let g = Grid::new(w, (T0 + 30 * 86_400) * 1000);
        assert_eq!(g.step_s, 55);
        assert_eq!(g.points, 10_997);
        assert!(g.end_s() < T0 + 7 * 86_400);
        // A period not begun yet: nothing to ask.
        assert_eq!(Grid::new(w, T0 * 1000 - 1).points, 0);
        assert_eq!(Grid::new(w, T0 * 1000).points, 1);
    }

    #[test]
    fn zero_stretches_end_at_a_free_terminal_or_a_gap() {
        let t = [
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
            Some(0.0),
            None,
            Some(0.0),
            Some(0.0),
            Some(2.0),
        ];
        assert_eq!(zero_time(&t), (5, 3));
        assert_eq!(zero_time(&[Some(0.0)]), (1, 1));
        assert_eq!(zero_time(&[Some(3.0), None]), (0, 0));
        assert_eq!(zero_time(&[]), (0, 0));
    }

    #[test]
    fn lowest_and_highest_are_the_first_reached() {
        let t = [None, Some(3.0), Some(1.0), Some(5.0), Some(1.0), Some(5.0)];
        assert_eq!(lowest(&t), Some((2, 1.0)));
        assert_eq!(highest(&t), Some((3, 5.0)));
        assert_eq!(lowest(&[None, None]), None);
    }

    fn tracks(points: usize) -> Tracks {
        Tracks {
            available: vec![Some(4.0); points],
            active: vec![Some(0.0); points],
            idle: vec![None; points],
            websocket: vec![Some(0.0); points],
            jobs: vec![Some(0.0); points],
            concurrent: vec![Some(4.0); points],
            runner_names: BTreeSet::new(),
        }
    }

    #[test]
    fn downsampling_keeps_the_worst_of_each_bucket() {
        let mut t = tracks(1000);
        t.available[7] = Some(0.0);
        t.active[7] = Some(4.0);
        t.active[999] = Some(2.0);
        t.websocket[8] = Some(6.0);
        t.available[500] = None;
        let s = downsample(&t, &grid(1000));
        // 1000 instants, 5 per point.
        assert_eq!(s.len(), 200);
        assert_eq!(s[0].at, rfc3339_ms(T0 * 1000));
        assert_eq!(s[1].at, rfc3339_ms((T0 + 5 * 15) * 1000));
        assert_eq!(s[1].available, Some(0.0));
        assert_eq!(s[1].active, Some(4.0));
        assert_eq!(s[1].websocket_connections, Some(6.0));
        assert_eq!(s[1].idle, None);
        assert_eq!(s[0].available, Some(4.0));
        assert_eq!(s[100].available, Some(4.0), "one gap in a bucket");
        assert_eq!(s[199].active, Some(2.0));
        // Not a multiple of 200: the last bucket is shorter.
        let s = downsample(&tracks(450), &grid(450));
        assert_eq!(s.len(), 150);
        // Few instants: one point each.
        let s = downsample(&tracks(3), &grid(3));
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].at, rfc3339_ms((T0 + 30) * 1000));
        // No session series (upstream gitlab-runner): nothing to chart.
        let mut t = tracks(10);
        t.available = vec![None; 10];
        t.active.clear();
        t.websocket = vec![None; 10];
        assert!(downsample(&t, &grid(10)).is_empty());
    }

    /// A `query_range` answer: `(labels, [(unix s, value)])` per series.
    fn matrix(series: &[(&str, &[(i64, &str)])]) -> Matrix {
        let result: Vec<serde_json::Value> = series
            .iter()
            .map(|(labels, points)| {
                let metric: serde_json::Value = serde_json::from_str(labels).unwrap();
                let values: Vec<serde_json::Value> = points
                    .iter()
                    .map(|(t, v)| serde_json::json!([t, v]))
                    .collect();
                serde_json::json!({"metric": metric, "values": values})
            })
            .collect();
        let text = serde_json::json!({
            "status": "success",
            "data": {"resultType": "matrix", "result": result}
        })
        .to_string();
        parse_matrix(&parse_answer(&text).unwrap()).unwrap()
    }

    #[test]
    fn a_fleet_from_its_matrices() {
        let g = grid(6);
        let (a, b) = (r#"{"instance":"a:9252"}"#, r#"{"instance":"b:9252"}"#);
        let t = |i: i64| T0 + 15 * i;
        let mut targets = BTreeMap::new();
        let avail: &[(i64, &str)] = &[
            (t(0), "1"),
            (t(1), "0"),
            (t(2), "0"),
            (t(3), "1"),
            (t(4), "0"),
            (t(5), "NaN"),
        ];
        fold(
            &mut targets,
            Metric::Available,
            &matrix(&[(a, avail), (b, &[(t(0), "2"), (t(0) + 7, "0")])]),
            &g,
        );
        fold(
            &mut targets,
            Metric::Active,
            &matrix(&[(a, &[(t(0), "0"), (t(1), "1"), (t(4), "1")])]),
            &g,
        );
        fold(
            &mut targets,
            Metric::Websocket,
            &matrix(&[(a, &[(t(1), "3")])]),
            &g,
        );
        // Two runners in one process: their jobs add up, both names kept.
        fold(
            &mut targets,
            Metric::Jobs,
            &matrix(&[
                (
                    r#"{"instance":"a:9252","runner_name":"r2"}"#,
                    &[(t(1), "1")],
                ),
                (
                    r#"{"instance":"a:9252","runner_name":"r1"}"#,
                    &[(t(1), "2")],
                ),
                (r#"{"instance":"b:9252"}"#, &[(t(0), "0")]),
            ]),
            &g,
        );
        fold(
            &mut targets,
            Metric::Concurrent,
            &matrix(&[(a, &[(t(0), "1"), (t(1), "3")]), (b, &[(t(0), "2")])]),
            &g,
        );
        let runners: Vec<RunnerCapacity> = targets
            .into_iter()
            .map(|(i, t)| summarise(i, &t, &g))
            .collect();
        let r = &runners[0];
        assert_eq!(r.instance, "a:9252");
        assert_eq!(r.runner.as_deref(), Some("r1, r2"));
        assert_eq!(r.lowest_available, Some(0.0));
        assert_eq!(r.lowest_available_at, Some(rfc3339_ms(t(1) * 1000)));
        assert_eq!((r.seconds_at_zero, r.zero_stretches), (45, 2));
        assert_eq!(r.peak_active, Some(1.0));
        assert_eq!(r.peak_active_at, Some(rfc3339_ms(t(1) * 1000)));
        assert_eq!(r.concurrent, Some(3.0), "concurrent at the peak");
        assert_eq!(r.peak_websocket_connections, Some(3.0));
        assert_eq!(r.peak_jobs, Some(3.0));
        assert_eq!(r.series.len(), 6);
        assert_eq!(r.series[5].available, None, "NaN left out");
        // b: a point between instants is not on the grid.
        let r = &runners[1];
        assert_eq!(r.instance, "b:9252");
        assert_eq!(r.runner, None);
        assert_eq!(r.lowest_available, Some(2.0));
        assert_eq!((r.seconds_at_zero, r.zero_stretches), (0, 0));
        assert_eq!(r.peak_active, None);
        assert_eq!(r.concurrent, Some(2.0), "no peak: the highest concurrent");
        assert_eq!(r.peak_jobs, Some(0.0));
        assert_eq!(r.peak_websocket_connections, None);
    }

    #[test]
    fn queries_sum_per_instance_and_name_the_metrics() {
        assert_eq!(
            Metric::Available.promql(),
            "sum by (instance, runner_name) (gitlab_runner_session_terminals_available)"
        );
        assert_eq!(
            Metric::Jobs.promql(),
            "sum by (instance, runner_name) (gitlab_runner_jobs) \
             or on (instance) (max by (instance) (gitlab_runner_concurrent) * 0)"
        );
        assert_eq!(
            Metric::Concurrent.promql(),
            "max by (instance) (gitlab_runner_concurrent)"
        );
    }

    /// `fetch` against a server answering `reply` to every query.
    fn fetch_from(reply: Option<Reply>, timeout: Duration) -> String {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let addr = match reply {
            Some(r) => {
                let routes = Routes::default();
                routes.set("api/v1/query_range", r);
                rt.block_on(test_server::start(routes))
            }
            None => test_server::free_port(),
        };
        let now = (T0 + 3600) * 1000;
        let w = window(T0 * 1000, now);
        let e = fetch_at(&format!("http://{addr}/"), w, timeout, now).unwrap_err();
        let text = format!("{e:#}");
        let prefix = format!(
            "Prometheus at http://{addr}: query_range of gitlab_runner_session_terminals_available: "
        );
        assert!(text.starts_with(&prefix), "{text}");
        text[prefix.len()..].to_owned()
    }

    #[test]
    fn failures_name_the_server_and_what_went_wrong() {
        let t = Duration::from_secs(5);
        assert_eq!(fetch_from(None, t), "refused");
        assert_eq!(
            fetch_from(Some(Reply::Text("<html>login</html>".into())), t),
            "not Prometheus API JSON (an HTML page)"
        );
        assert_eq!(
            fetch_from(Some(Reply::Text("{\"status\":\"succ".into())), t),
            "not Prometheus API JSON"
        );
        assert_eq!(
            fetch_from(
                Some(Reply::Text(
                    r#"{"status":"error","errorType":"execution","error":"query timed out"}"#
                        .into()
                )),
                t
            ),
            "status error: execution: query timed out"
        );
        assert_eq!(
            fetch_from(
                Some(Reply::Text(
                    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into()
                )),
                t
            ),
            "unexpected answer: a vector, not a matrix"
        );
        assert_eq!(
            fetch_from(
                Some(Reply::StatusText(
                    400,
                    r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries"}"#
                        .into()
                )),
                t
            ),
            "HTTP 400 Bad Request: bad_data: exceeded maximum resolution of 11,000 points per timeseries"
        );
        assert_eq!(
            fetch_from(Some(Reply::Status(502)), t),
            "HTTP 502 Bad Gateway"
        );
        assert_eq!(
            fetch_from(Some(Reply::Hang), Duration::from_millis(300)),
            "timeout (over 0.3 s)"
        );
    }

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(
            without_credentials("https://ops:s3cret@prom.example:9090/prefix"),
            "https://***@prom.example:9090/prefix"
        );
        assert_eq!(without_credentials("http://prom:9090"), "http://prom:9090");
        assert_eq!(without_credentials("ops:pw@prom:9090"), "***@prom:9090");
        let port = test_server::free_port().port();
        let now = (T0 + 60) * 1000;
        let w = window(T0 * 1000, now);
        let url = format!("http://ops:s3cret@127.0.0.1:{port}");
        let e = fetch_at(&url, w, Duration::from_secs(2), now).unwrap_err();
        let text = format!("{e:#}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.starts_with(&format!("Prometheus at http://***@127.0.0.1:{port}: ")),
            "{text}"
        );
    }

    #[test]
    fn not_an_http_url_is_refused_before_asking() {
        let now = (T0 + 60) * 1000;
        let e = fetch_at(
            "localhost:9090",
            window(T0 * 1000, now),
            Duration::from_secs(1),
            now,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Prometheus at \"localhost:9090\": not an http:// or https:// URL"
        );
    }

    #[test]
    fn a_period_not_begun_asks_nothing() {
        // Nothing listens there: no query may be sent.
        let url = format!("http://{}", test_server::free_port());
        let w = window(T0 * 1000, (T0 + 60) * 1000);
        let c = fetch_at(&url, w, Duration::from_secs(1), T0 * 1000 - 1).unwrap();
        assert_eq!(c.source, url);
        assert!(c.runners.is_empty());
    }
}
