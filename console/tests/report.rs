//! `termgate report` end to end: a generated week (and the week before) of
//! three runners' logs, whose every figure the generator knows
//! (`termgate_test_support::loggen::week`), must come out of the real
//! binary's JSON exactly; the real gitlab-runner fixtures must give a
//! sensible report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use termgate_console::report::model::{Reason, Report, Trend, SCHEMA_VERSION};
use termgate_test_support::loggen::week::Lifecycle;
use termgate_test_support::loggen::{days_from_civil, generate_week, Expected, WeekOptions};

/// The period: Monday 2026-11-23 to Monday 2026-11-30 (UTC).
fn week() -> (i64, i64) {
    let from = days_from_civil(2026, 11, 23) * 86_400;
    (from, from + 7 * 86_400)
}

/// `termgate report ARGS`, its own log in a temp dir.
fn report(args: &[String]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_termgate"))
        .env(
            "TERMGATE_CONSOLE_LOG_FILE",
            state.path().join("console.log"),
        )
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[String]) -> String {
    let out = report(args);
    assert!(
        out.status.success(),
        "termgate report {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON report for `logs` over the week, and its text.
fn json(logs: &[String], extra: &[&str]) -> (Report, String) {
    let mut args = vec!["--logs".to_owned()];
    args.extend(logs.iter().cloned());
    args.extend(
        [
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-30",
            "--format",
            "json",
        ]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned()),
    );
    let text = ok(&args);
    (serde_json::from_str(&text).unwrap(), text)
}

fn globs(dir: &Path) -> Vec<String> {
    ["runner-a", "runner-b", "runner-c"]
        .iter()
        .map(|r| format!("{}/{r}*", dir.display()))
        .collect()
}

/// The report with `generated_at` blanked, for comparisons.
fn without_time(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["generated_at"] = serde_json::Value::Null;
    v
}

/// Every difference between the report and the truth, collected so one
/// run shows them all.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    fn eq<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn check(&mut self, what: &str, ok: bool) {
        if !ok {
            self.0.push(what.to_owned());
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} differences:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn reasons(v: &[Reason]) -> BTreeMap<String, [u64; 2]> {
    v.iter()
        .map(|r| (r.reason.clone(), [r.current, r.previous]))
        .collect()
}

/// Lists of reasons are sorted by count, then name.
fn sorted_reasons(v: &[Reason]) -> bool {
    v.windows(2).all(|w| {
        (w[1].current, w[1].previous, &w[0].reason) <= (w[0].current, w[0].previous, &w[1].reason)
    })
}

fn trend(t: Trend) -> &'static str {
    match t {
        Trend::New => "new",
        Trend::Gone => "gone",
        Trend::Up => "up",
        Trend::Down => "down",
        Trend::Same => "same",
    }
}

/// How the report clips an example line: 300 characters, then `…`.
fn clipped(line: &str) -> String {
    let mut s: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        s.push('…');
    }
    s
}

/// Compares every figure of `r` with `e`; `names` maps the runner stems
/// (`runner-a`) to the names the report must use.
fn compare(r: &Report, e: &Expected, names: &BTreeMap<String, String>) -> Diffs {
    let mut d = Diffs::default();
    let stem: BTreeMap<&str, &str> = names
        .iter()
        .map(|(s, n)| (n.as_str(), s.as_str()))
        .collect();
    let stems = |v: &[String]| -> Vec<String> {
        let mut out: Vec<String> = v
            .iter()
            .map(|n| {
                stem.get(n.as_str())
                    .map_or(format!("?{n}"), |s| (*s).to_owned())
            })
            .collect();
        out.sort();
        out
    };
    d.eq("schema_version", r.schema_version, SCHEMA_VERSION);
    d.eq("period.from", &r.period.from, &e.from);
    d.eq("period.to", &r.period.to, &e.to);
    d.eq("period.seconds", r.period.seconds, 7 * 86_400);
    d.eq("previous.from", &r.previous.from, &e.previous_from);
    d.eq("previous.to", &r.previous.to, &e.from);
    let mut want_names: Vec<String> = names.values().cloned().collect();
    want_names.sort();
    d.eq("runners", &r.runners, &want_names);
    // Inputs.
    let i = &r.inputs;
    d.eq("inputs.files", i.files, e.files.len() as u64);
    d.eq("inputs.gzip_files", i.gzip_files, e.gzip_files);
    d.eq("inputs.bytes", i.bytes, e.bytes);
    d.eq("inputs.lines", i.lines, e.lines);
    d.eq("inputs.unparsed_lines", i.unparsed_lines, e.unparsed_lines);
    d.eq("inputs.untimed_records", i.untimed_records, 0);
    d.eq(
        "inputs.outside_records",
        i.outside_records,
        e.outside_records,
    );
    d.eq("inputs.read_errors", &i.read_errors, &Vec::new());
    d.eq("inputs.sources", i.sources.len(), e.sources.len());
    for s in &i.sources {
        let key = stem.get(s.runner.as_str()).copied().unwrap_or("?");
        let Some(w) = e.sources.get(key) else {
            d.check(&format!("source of unknown runner {}", s.runner), false);
            continue;
        };
        let what = format!("sources[{key}]");
        d.eq(&format!("{what}.files"), s.files, w.files);
        d.eq(&format!("{what}.bytes"), s.bytes, w.bytes);
        d.eq(&format!("{what}.lines"), s.lines, w.lines);
        d.eq(
            &format!("{what}.unparsed_lines"),
            s.unparsed_lines,
            w.unparsed_lines,
        );
    }
    // Totals.
    let t = &r.totals;
    let pair = |p: termgate_console::report::model::Pair| [p.current, p.previous];
    d.eq("totals.errors", pair(t.errors), e.totals.errors);
    d.eq("totals.warnings", pair(t.warnings), e.totals.warnings);
    d.eq("totals.sessions", pair(t.sessions), e.totals.sessions);
    d.eq("totals.rejections", pair(t.rejections), e.totals.rejections);
    d.eq("totals.jobs", pair(t.jobs), e.totals.jobs);
    d.eq(
        "totals.job_failures",
        pair(t.job_failures),
        e.totals.job_failures,
    );
    d.eq("totals.starts", pair(t.starts), e.totals.starts);
    d.eq(
        "totals.unclean_shutdowns",
        pair(t.unclean_shutdowns),
        e.totals.unclean_shutdowns,
    );
    // Days.
    let dates: Vec<&str> = r.days.iter().map(|x| x.date.as_str()).collect();
    let want_dates: Vec<&str> = e.days.iter().map(String::as_str).collect();
    d.eq("days", dates, want_dates);
    for (k, day) in r.days.iter().enumerate() {
        let c = |x: &termgate_console::report::model::DayCounts| {
            [x.warnings, x.errors, x.sessions, x.jobs, x.job_failures]
        };
        let w = |x: &termgate_test_support::loggen::week::Counts| {
            [x.warnings, x.errors, x.sessions, x.jobs, x.job_failures]
        };
        if let Some(want) = e.day_totals.get(k) {
            d.eq(&format!("days[{}].total", day.date), c(&day.total), w(want));
        }
        d.eq(
            &format!("days[{}].runners", day.date),
            stems(&day.runners.keys().cloned().collect::<Vec<_>>()),
            e.day_runners.keys().cloned().collect(),
        );
        for (name, counts) in &day.runners {
            let key = stem.get(name.as_str()).copied().unwrap_or("?");
            if let Some(want) = e.day_runners.get(key).and_then(|v| v.get(k)) {
                d.eq(
                    &format!("days[{}].runners[{key}]", day.date),
                    c(counts),
                    w(want),
                );
            }
        }
    }
    // Fingerprints.
    let current: Vec<_> = e.fingerprints.iter().filter(|(_, f)| f.count > 0).collect();
    d.eq("errors.distinct", r.errors.distinct, current.len() as u64);
    d.eq("errors.not_shown", r.errors.not_shown, 0);
    let gone: Vec<_> = e
        .fingerprints
        .iter()
        .filter(|(_, f)| f.count == 0)
        .collect();
    let got_top: Vec<&str> = r
        .errors
        .top
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    let mut want_top: Vec<(&String, u64)> = current.iter().map(|(k, f)| (*k, f.count)).collect();
    want_top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    d.eq(
        "errors.top (in order)",
        got_top,
        want_top.iter().map(|(k, _)| k.as_str()).collect(),
    );
    let got_gone: Vec<&str> = r
        .errors
        .gone
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    d.eq(
        "errors.gone",
        got_gone,
        gone.iter().map(|(k, _)| k.as_str()).collect(),
    );
    for f in r.errors.top.iter().chain(&r.errors.gone) {
        let Some(w) = e.fingerprints.get(&f.fingerprint) else {
            continue;
        };
        let what = format!("fingerprint {:?}", f.fingerprint);
        d.eq(&format!("{what}.level"), f.level.as_str(), &w.level);
        d.eq(&format!("{what}.count"), f.count, w.count);
        d.eq(
            &format!("{what}.previous_count"),
            f.previous_count,
            w.previous_count,
        );
        d.eq(&format!("{what}.trend"), trend(f.trend), &w.trend);
        d.eq(&format!("{what}.first_seen"), &f.first_seen, &w.first_seen);
        d.eq(&format!("{what}.last_seen"), &f.last_seen, &w.last_seen);
        d.eq(
            &format!("{what}.runners"),
            stems(&f.runners),
            w.runners.clone(),
        );
        d.eq(&format!("{what}.per_day"), &f.per_day, &w.per_day);
        if e.secrets
            .iter()
            .any(|s| w.example_line.contains(s.as_str()))
        {
            d.check(
                &format!("{what}.example masks the token: {}", f.example),
                f.example.contains("[MASKED]") && !f.example.contains("SECRET"),
            );
        } else {
            d.eq(
                &format!("{what}.example"),
                &f.example,
                &clipped(&w.example_line),
            );
        }
    }
    // Sessions.
    let s = &r.sessions;
    d.check("sessions.events_seen", s.events_seen);
    d.eq("sessions.started", pair(s.started), e.sessions.started);
    d.eq("sessions.ended", s.ended, e.sessions.ended);
    d.eq(
        "sessions.duration_p50_s",
        s.duration_p50_s,
        e.sessions.p50_s,
    );
    d.eq(
        "sessions.duration_p95_s",
        s.duration_p95_s,
        e.sessions.p95_s,
    );
    d.eq(
        "sessions.peak_active",
        s.peak_active.as_ref().map(|p| (p.count, p.at.clone())),
        e.sessions.peak.clone(),
    );
    d.eq(
        "sessions.closes",
        reasons(&s.closes),
        e.sessions.closes.clone(),
    );
    d.eq(
        "sessions.rejections",
        reasons(&s.rejections),
        e.sessions.rejections.clone(),
    );
    d.eq(
        "sessions.operator_attaches",
        reasons(&s.operator_attaches),
        e.sessions.attaches.clone(),
    );
    d.eq(
        "sessions.operators",
        reasons(&s.operators),
        e.sessions.operators.clone(),
    );
    for (what, v) in [
        ("closes", &s.closes),
        ("rejections", &s.rejections),
        ("operator_attaches", &s.operator_attaches),
        ("operators", &s.operators),
    ] {
        d.check(&format!("sessions.{what} sorted: {v:?}"), sorted_reasons(v));
    }
    d.eq(
        "sessions.runners",
        stems(
            &s.runners
                .iter()
                .map(|x| x.runner.clone())
                .collect::<Vec<_>>(),
        ),
        e.sessions.runners.keys().cloned().collect(),
    );
    for x in &s.runners {
        let key = stem.get(x.runner.as_str()).copied().unwrap_or("?");
        let Some(w) = e.sessions.runners.get(key) else {
            continue;
        };
        let what = format!("sessions.runners[{key}]");
        d.eq(&format!("{what}.started"), x.started, w.started);
        d.eq(
            &format!("{what}.peak_active"),
            x.peak_active.as_ref().map(|p| (p.count, p.at.clone())),
            w.peak.clone(),
        );
        d.eq(&format!("{what}.duration_p50_s"), x.duration_p50_s, w.p50_s);
        d.eq(&format!("{what}.duration_p95_s"), x.duration_p95_s, w.p95_s);
        d.eq(&format!("{what}.rejections"), x.rejections, w.rejections);
    }
    // Jobs.
    let j = &r.jobs;
    d.eq(
        "jobs.by_result",
        reasons(&j.by_result),
        e.jobs.by_result.clone(),
    );
    d.eq(
        "jobs.failure_reasons",
        reasons(&j.failure_reasons),
        e.jobs.failure_reasons.clone(),
    );
    d.check(
        &format!("jobs.failure_reasons sorted: {:?}", j.failure_reasons),
        sorted_reasons(&j.failure_reasons),
    );
    let got_jobs: BTreeMap<String, [u64; 3]> = j
        .runners
        .iter()
        .map(|x| {
            let key = stem.get(x.runner.as_str()).copied().unwrap_or("?");
            (key.to_owned(), [x.succeeded, x.failed, x.system_failures])
        })
        .collect();
    d.eq("jobs.runners", got_jobs, e.jobs.runners.clone());
    // Lifecycle.
    let got_life: BTreeMap<String, Lifecycle> = r
        .lifecycle
        .runners
        .iter()
        .map(|x| {
            let key = stem.get(x.runner.as_str()).copied().unwrap_or("?");
            let l = Lifecycle {
                starts: x.starts,
                unclean_shutdowns: x.unclean_shutdowns,
                fatal: x.fatal,
                events: x
                    .events
                    .iter()
                    .map(|e| (e.at.clone(), e.kind.clone()))
                    .collect(),
            };
            (key.to_owned(), l)
        })
        .collect();
    d.eq("lifecycle.runners", &got_life, &e.lifecycle);
    d.eq("capacity", r.capacity.is_none(), true);
    d.eq("capacity_error", &r.capacity_error, &None);
    d.check("a summary", !r.summary.is_empty());
    d
}

fn generated(runner_names: bool) -> (tempfile::TempDir, Expected) {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = week();
    let mut opts = WeekOptions::new(from, to);
    opts.runner_names = runner_names;
    let e = generate_week(dir.path(), &opts);
    (dir, e)
}

#[test]
fn the_week_report_matches_the_generated_truth_exactly() {
    let (dir, e) = generated(true);
    let (r, _) = json(&globs(dir.path()), &[]);
    compare(&r, &e, &e.names()).assert_none();
    // The names came from the logs' runner_name.
    assert_eq!(r.runners, ["ci-alpha-01", "ci-bravo-02", "ci-charlie-03"]);
}

#[test]
fn runners_named_on_the_command_line_or_by_file() {
    let (dir, e) = generated(true);
    let named: Vec<String> = ["alpha", "bravo", "charlie"]
        .iter()
        .zip(globs(dir.path()))
        .map(|(n, g)| format!("{n}={g}"))
        .collect();
    let (r, _) = json(&named, &[]);
    let names: BTreeMap<String, String> = ["runner-a", "runner-b", "runner-c"]
        .iter()
        .zip(["alpha", "bravo", "charlie"])
        .map(|(s, n)| ((*s).to_owned(), n.to_owned()))
        .collect();
    compare(&r, &e, &names).assert_none();

    // Without runner_name in the logs: the file name up to its first dot.
    let (dir, e) = generated(false);
    let (r, _) = json(&globs(dir.path()), &[]);
    assert_eq!(r.runners, ["runner-a", "runner-b", "runner-c"]);
    compare(&r, &e, &e.names()).assert_none();
}

#[test]
fn threads_file_order_and_top_change_nothing_else() {
    let (dir, e) = generated(true);
    let (_, one) = json(&globs(dir.path()), &["--threads", "1"]);
    let (_, two) = json(&globs(dir.path()), &["--threads", "2"]);
    assert_eq!(without_time(&one), without_time(&two));
    // Every file on its own, in a shuffled order.
    let mut files: Vec<String> = e.files.iter().map(|p| p.display().to_string()).collect();
    files.reverse();
    files.swap(0, 3);
    files.swap(1, 4);
    let (_, shuffled) = json(&files, &["--threads", "2"]);
    assert_eq!(without_time(&one), without_time(&shuffled));
    // --top 5: the same figures, the rest counted in not_shown.
    let (full, _) = json(&globs(dir.path()), &[]);
    let (top5, _) = json(&globs(dir.path()), &["--top", "5"]);
    assert_eq!(top5.errors.top, full.errors.top[..5]);
    assert_eq!(top5.errors.distinct, full.errors.distinct);
    let rest: u64 = full.errors.top[5..].iter().map(|f| f.count).sum();
    assert_eq!(top5.errors.not_shown, rest);
    assert_eq!(top5.totals, full.totals);
}

#[test]
fn a_corrupt_gzip_file_is_listed_and_the_rest_still_reported() {
    let (dir, e) = generated(true);
    let bad = dir.path().join("runner-c.log.2.gz");
    let mut b = std::fs::read(&bad).unwrap();
    let n = b.len();
    for x in &mut b[n / 3..n / 3 + 64] {
        *x ^= 0x5a;
    }
    std::fs::write(&bad, &b).unwrap();
    let (r, _) = json(&globs(dir.path()), &[]);
    assert_eq!(r.inputs.read_errors.len(), 1, "{:?}", r.inputs.read_errors);
    assert!(
        r.inputs.read_errors[0].contains("runner-c.log.2.gz"),
        "{:?}",
        r.inputs.read_errors
    );
    assert_eq!(r.inputs.files, 6);
    // The other runners' figures are whole.
    let names = e.names();
    for stem in ["runner-a", "runner-b"] {
        let name = &names[stem];
        let src = r.inputs.sources.iter().find(|s| &s.runner == name).unwrap();
        assert_eq!(src.bytes, e.sources[stem].bytes);
        assert_eq!(src.lines, e.sources[stem].lines);
        for (k, day) in r.days.iter().enumerate() {
            let got = day.runners[name];
            let want = e.day_runners[stem][k];
            assert_eq!(
                [got.warnings, got.errors, got.sessions, got.jobs],
                [want.warnings, want.errors, want.sessions, want.jobs],
                "{stem} on {}",
                day.date
            );
        }
    }
    assert!(
        r.summary.iter().any(|s| s.contains("could not be read")),
        "{:?}",
        r.summary
    );
}

#[test]
fn no_token_reaches_any_format() {
    let (dir, e) = generated(true);
    // The tokens are in the logs…
    let all: String = e
        .files
        .iter()
        .filter(|p| p.extension().is_none_or(|x| x != "gz"))
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    for s in &e.secrets {
        assert!(all.contains(s.as_str()), "{s} was not written");
    }
    // …and in no report.
    for format in ["json", "md", "html"] {
        let mut args = vec!["--logs".to_owned()];
        args.extend(globs(dir.path()));
        args.extend(
            [
                "--from",
                "2026-11-23",
                "--to",
                "2026-11-30",
                "--format",
                format,
            ]
            .map(str::to_owned),
        );
        let text = ok(&args);
        for s in &e.secrets {
            let value = s.trim_start_matches("glrt-");
            assert!(!text.contains(value), "{format} shows {value}");
        }
    }
}

/// The repo's `tests/fixtures/logs`.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/logs")
}

/// The real gitlab-runner logs of `tests/fixtures/logs` (runner and JSON
/// formats, some seen through docker-compose, syslog and journald): every
/// line understood, the fingerprints, jobs and starts they hold.
#[test]
fn the_real_gitlab_runner_logs_give_a_sensible_report() {
    let d = fixtures();
    let args: Vec<String> = [
        "--logs",
        &format!("{}/gitlab-runner-real*.log", d.display()),
        "--logs",
        &format!("{}/gitlab-runner-real.jsonl", d.display()),
        "--from",
        "2015-01-01",
        "--to",
        "2026-12-01",
        "--format",
        "json",
        "--top",
        "50",
    ]
    .map(str::to_owned)
    .to_vec();
    let r: Report = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(
        r.runners,
        ["gitlab-runner-real", "gitlab-runner-real-wrapped"]
    );
    let i = &r.inputs;
    assert_eq!((i.files, i.gzip_files, i.lines), (3, 0, 424));
    assert_eq!(i.unparsed_lines, 0, "every real line is understood");
    assert!(i.read_errors.is_empty(), "{:?}", i.read_errors);
    let lines: Vec<(&str, u64)> = i
        .sources
        .iter()
        .map(|s| (s.runner.as_str(), s.lines))
        .collect();
    assert_eq!(
        lines,
        [
            ("gitlab-runner-real", 361),
            ("gitlab-runner-real-wrapped", 63)
        ]
    );
    // Upstream's runner format has no timestamps: those records count in
    // the period, in no day.
    assert_eq!(i.untimed_records, 37);
    let found: Vec<(&str, &str, u64)> = r
        .errors
        .top
        .iter()
        .map(|f| (f.fingerprint.as_str(), f.level.as_str(), f.count))
        .collect();
    assert_eq!(
        found,
        [
            ("Checking for jobs... failed", "warning", 8),
            ("Checking for jobs... forbidden", "error", 7),
            ("Checking for jobs... client error", "error", 3),
            (
                "Runner \"…\" is unhealthy and will be disabled for NhNmNs seconds!",
                "error",
                3
            ),
            ("Failed to process runner", "error", 2),
            (
                "Job failed (system failure): panic: runtime error: invalid memory address or nil pointer dereference",
                "warning",
                2
            ),
            ("Problem while reading command output", "error", 2),
            ("$ sudo gitlab-runner...", "warning", 1),
            ("CONFIGURATION: Long polling issues detected.", "warning", 1),
            (
                "Failed to load config Near line N (last key parsed '…'): expected value but found '…' instead",
                "error",
                1
            ),
            ("Job failed: execution took longer than NmNs seconds", "warning", 1),
            ("Job failed: exit code N", "warning", 1),
            ("Runner URL is not healthy and will be disabled!", "error", 1),
            ("Running in user-mode.", "warning", 1),
            ("Starting forceful shutdown", "warning", 1),
            ("Use sudo for system-mode:", "warning", 1),
            ("error while generating S3 pre-signed URL", "error", 1),
        ]
    );
    assert_eq!(r.errors.distinct, 17);
    assert!(r.errors.top.iter().all(|f| f.trend == Trend::New));
    assert!(r.errors.gone.is_empty());
    assert_eq!(
        (r.totals.errors.current, r.totals.warnings.current),
        (19, 18)
    );
    assert_eq!(
        reasons(&r.jobs.by_result),
        BTreeMap::from([
            ("success".to_owned(), [5, 0]),
            ("failed".to_owned(), [2, 0]),
            ("system_failure".to_owned(), [2, 0]),
        ])
    );
    // Upstream's lines carry no failure_reason: the message's fingerprint.
    assert_eq!(
        reasons(&r.jobs.failure_reasons),
        BTreeMap::from([
            (
                "panic: runtime error: invalid memory address or nil pointer dereference"
                    .to_owned(),
                [2, 0]
            ),
            ("execution took longer than NmNs seconds".to_owned(), [1, 0]),
            ("exit code N".to_owned(), [1, 0]),
        ])
    );
    let starts: Vec<(&str, u64, u64)> = r
        .lifecycle
        .runners
        .iter()
        .map(|l| (l.runner.as_str(), l.starts, l.unclean_shutdowns))
        .collect();
    assert_eq!(
        starts,
        [
            ("gitlab-runner-real", 6, 0),
            ("gitlab-runner-real-wrapped", 1, 0)
        ]
    );
    // Upstream logs no terminal events.
    assert!(!r.sessions.events_seen);
    assert_eq!(r.totals.sessions.current, 0);
}

/// `--out` to something that is not a regular file (a FIFO here, as
/// `/dev/null` or `/dev/stdout` would be) writes into it and leaves it be.
#[test]
fn out_to_a_fifo_writes_into_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = report(
        &[
            "--logs",
            &format!("{}/gitlab-runner-real.jsonl", fixtures().display()),
            "--from",
            "2021-07-01",
            "--to",
            "2021-07-08",
            "--format",
            "json",
            "--out",
            &fifo.display().to_string(),
        ]
        .map(str::to_owned),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // First: a FIFO replaced by a file leaves the reader waiting forever.
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "{kind:?}");
    let text = reader.join().unwrap();
    let r: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(r.jobs.by_result[1].current, 1, "{text}");
}
