//! `termgate report`: the weekly report over runner logs (and, with
//! Prometheus, capacity history), for a period and the one before it.
//!
//! Data flow: [`scan`] reads every file once (plain or gzip, files spread
//! over the cores), feeding each line to the console's one log parser
//! ([`crate::logs::parse`]) and fingerprinting ([`crate::logs::fingerprint`]),
//! into bounded per-runner aggregates; [`capacity`] asks Prometheus'
//! `query_range`; [`build`] turns both into a [`model::Report`] (every
//! figure, the summary sentences); [`markdown`], [`html`] and JSON
//! (serde) lay it out.

pub mod build;
pub mod capacity;
mod fmt;
pub mod html;
pub mod markdown;
pub mod model;
pub mod redact;
pub mod scan;
mod svg;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::cli::{ReportArgs, ReportFormat};
use crate::config::ConsoleConfig;

/// The default period.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(7 * 24 * 3600);

/// `[from, to)` and the previous period of the same length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Unix milliseconds.
    pub prev_from: i64,
    pub from: i64,
    pub to: i64,
}

impl Window {
    pub fn new(from: SystemTime, to: SystemTime) -> anyhow::Result<Window> {
        let (from, to) = (unix_ms(from), unix_ms(to));
        if to <= from {
            bail!("the period is empty: --to must be after --from");
        }
        Ok(Window {
            prev_from: from - (to - from),
            from,
            to,
        })
    }

    /// Which period `t` (Unix ms) falls in.
    pub fn place(&self, t: i64) -> Option<PeriodIx> {
        if t >= self.from && t < self.to {
            Some(PeriodIx::Current)
        } else if t >= self.prev_from && t < self.from {
            Some(PeriodIx::Previous)
        } else {
            None
        }
    }
}

/// Index of a period in `[_; 2]` arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodIx {
    Current = 0,
    Previous = 1,
}

pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// `2026-11-30`, `2026-11-30T12:00:00Z`, `2026-11-30T12:00:00+01:00`.
pub fn parse_time(s: &str) -> anyhow::Result<SystemTime> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_time(chrono::NaiveTime::MIN).and_utc();
        return Ok(t.into());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(SystemTime::from)
        .with_context(|| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// What to read, after the command line and console.toml are combined.
#[derive(Debug, Clone)]
pub struct Plan {
    pub logs: Vec<String>,
    pub prometheus: Option<String>,
    pub window: Window,
}

pub fn plan(args: &ReportArgs, now: SystemTime) -> anyhow::Result<Plan> {
    let cfg = match &args.config {
        // The error names the file.
        Some(p) => Some(ConsoleConfig::load(p)?),
        None => None,
    };
    let mut logs = args.logs.clone();
    if logs.is_empty() {
        if let Some(cfg) = &cfg {
            for r in &cfg.runners {
                logs.extend(r.logs.iter().map(|g| format!("{}={g}", r.name)));
            }
        }
    }
    if logs.is_empty() {
        bail!(match &args.config {
            Some(p) => format!(
                "no log files: give --logs GLOB, or `logs = [..]` for the runners in {}",
                p.display()
            ),
            None => "no log files: give --logs GLOB (or -c console.toml with runners' `logs`)"
                .to_owned(),
        });
    }
    let prometheus = args.prometheus.clone().or_else(|| {
        cfg.as_ref()
            .and_then(|c| c.prometheus.as_ref())
            .and_then(|p| p.url.clone())
    });
    let window = match (&args.from, &args.to) {
        (Some(f), Some(t)) => Window::new(parse_time(f)?, parse_time(t)?)?,
        _ => {
            let len = args.since.unwrap_or(DEFAULT_PERIOD);
            if len.is_zero() {
                bail!("--since must be longer than 0");
            }
            Window::new(now.checked_sub(len).context("--since is too long")?, now)?
        }
    };
    Ok(Plan {
        logs,
        prometheus,
        window,
    })
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let plan = plan(&args, now)?;
    let (files, unmatched) = expand_each(&plan.logs)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let scanned = scan::scan(&files, plan.window, threads, scan::Progress::stderr())?;
    let (capacity, capacity_error) = match &plan.prometheus {
        Some(url) => match capacity::fetch(url, plan.window, Duration::from_secs(30)) {
            Ok(c) => (Some(c), None),
            Err(e) => {
                eprintln!("termgate report: capacity left out: {e:#}");
                (None, Some(format!("{e:#}")))
            }
        },
        None => (None, None),
    };
    let mut report = build::build(
        &scanned,
        &build::Options {
            window: plan.window,
            top: args.top,
            now,
        },
        capacity,
        capacity_error,
    );
    // A glob that matched nothing is listed with the unreadable files: one
    // runner's missing logs must not cost the whole weekly report.
    for u in unmatched {
        eprintln!("termgate report: {u}");
        report.inputs.read_errors.push(u);
    }
    let text = render(&report, args.format)?;
    match &args.out {
        Some(path) => write_atomically(path, text.as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// The files of every glob; globs that match nothing are returned as
/// messages. An error when nothing matches at all.
pub fn expand_each(
    logs: &[String],
) -> anyhow::Result<(Vec<crate::tally_cmd::LogFile>, Vec<String>)> {
    let mut files: Vec<crate::tally_cmd::LogFile> = Vec::new();
    let mut unmatched = Vec::new();
    for g in logs {
        match crate::tally_cmd::expand_files(std::slice::from_ref(g)) {
            Ok(fs) => {
                for f in fs {
                    if !files.iter().any(|x| x.path == f.path) {
                        files.push(f);
                    }
                }
            }
            Err(e) => unmatched.push(format!("{e:#}")),
        }
    }
    if files.is_empty() {
        bail!("{}", unmatched.join("; "));
    }
    Ok((files, unmatched))
}

/// Days the Markdown and HTML reports list one by one; a longer period
/// lists only the days with something in them (JSON keeps every day).
pub const MAX_DAYS_LISTED: usize = 62;

/// What the Markdown and HTML writers lay out: `r`, with the empty days of
/// a period longer than [`MAX_DAYS_LISTED`] left out (of `days` and of each
/// fingerprint's `per_day`); the writers say how many.
pub fn for_reading(r: &model::Report) -> std::borrow::Cow<'_, model::Report> {
    if r.days.len() <= MAX_DAYS_LISTED {
        return std::borrow::Cow::Borrowed(r);
    }
    let keep: Vec<bool> = r
        .days
        .iter()
        .map(|d| d.total != model::DayCounts::default())
        .collect();
    let pick = |v: &[u64]| -> Vec<u64> {
        v.iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect()
    };
    let mut v = r.clone();
    v.days = r
        .days
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(d, _)| d.clone())
        .collect();
    for f in v.errors.top.iter_mut().chain(v.errors.gone.iter_mut()) {
        f.per_day = pick(&f.per_day);
    }
    std::borrow::Cow::Owned(v)
}

pub fn render(report: &model::Report, format: ReportFormat) -> anyhow::Result<String> {
    Ok(match format {
        ReportFormat::Md => markdown::render(&for_reading(report)),
        ReportFormat::Html => html::render(&for_reading(report)),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        }
    })
}

/// Writes `path` through a temporary file beside it, so a reader (or a
/// failed run) never sees half a report. A path that exists and is not a
/// regular file (`/dev/null`, a FIFO, `/dev/stdout`) is written in place:
/// renaming over it would replace it with a file.
fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.write_all(data)
            .and_then(|()| f.flush())
            .with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    // A report is for sharing: readable like any file the user writes
    // (tempfile makes it 0600).
    {
        use std::os::unix::fs::PermissionsExt;
        let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        nix::sys::stat::umask(umask);
        let mode = 0o666 & !umask.bits();
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tmp.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> ReportArgs {
        let mut full = vec!["termgate", "report"];
        full.extend(argv);
        match crate::cli::Cli::try_parse_from(full).unwrap().command {
            Some(crate::cli::Command::Report(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plan_from_flags_and_console_toml() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let p = plan(&args(&["--logs", "a=/x/*.log"]), now).unwrap();
        assert_eq!(p.logs, ["a=/x/*.log"]);
        assert_eq!(p.window.to, 1_800_000_000_000);
        assert_eq!(p.window.to - p.window.from, 7 * 86_400_000);
        assert_eq!(p.window.from - p.window.prev_from, 7 * 86_400_000);
        let p = plan(
            &args(&[
                "--logs",
                "x",
                "--from",
                "2026-11-30",
                "--to",
                "2026-12-01T12:00:00+01:00",
            ]),
            now,
        )
        .unwrap();
        assert_eq!(p.window.from, 1_795_996_800_000);
        assert_eq!(p.window.to, 1_795_996_800_000 + 35 * 3_600_000);

        let d = tempfile::tempdir().unwrap();
        let toml = d.path().join("console.toml");
        std::fs::write(
            &toml,
            "[[runners]]\nname = \"prm-5\"\nmetrics_url = \"http://127.0.0.1:9252/metrics\"\nlogs = [\"/var/log/a*.log\", \"/var/log/b.log\"]\n\n[prometheus]\nurl = \"http://127.0.0.1:9090\"\n",
        )
        .unwrap();
        let c = toml.to_str().unwrap();
        let p = plan(&args(&["-c", c, "--since", "24h"]), now).unwrap();
        assert_eq!(p.logs, ["prm-5=/var/log/a*.log", "prm-5=/var/log/b.log"]);
        assert_eq!(p.prometheus.as_deref(), Some("http://127.0.0.1:9090"));
        assert_eq!(p.window.to - p.window.from, 86_400_000);
        // Flags win over the file.
        let p = plan(
            &args(&["-c", c, "--logs", "y", "--prometheus", "http://p:1"]),
            now,
        )
        .unwrap();
        assert_eq!(p.logs, ["y"]);
        assert_eq!(p.prometheus.as_deref(), Some("http://p:1"));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let e = plan(&args(&[]), now).unwrap_err().to_string();
        assert!(e.contains("no log files"), "{e}");
        let e = plan(
            &args(&["--logs", "x", "--from", "2026-12-02", "--to", "2026-12-01"]),
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--to must be after --from"), "{e}");
        let e = plan(
            &args(&[
                "--logs",
                "x",
                "--from",
                "last tuesday",
                "--to",
                "2026-12-01",
            ]),
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is not a date"), "{e}");
        assert!(crate::cli::Cli::try_parse_from([
            "termgate",
            "report",
            "--logs",
            "x",
            "--since",
            "7d",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-02"
        ])
        .is_err());
        assert!(crate::cli::Cli::try_parse_from([
            "termgate",
            "report",
            "--logs",
            "x",
            "--from",
            "2026-12-01"
        ])
        .is_err());
        let d = tempfile::tempdir().unwrap();
        let e = plan(
            &args(&["-c", d.path().join("nope.toml").to_str().unwrap()]),
            now,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("nope.toml"), "{e:#}");
    }

    #[test]
    fn a_long_period_lists_only_days_with_something() {
        let mut r: model::Report = serde_json::from_str(include_str!(
            "../../tests/fixtures/report/sample-report.json"
        ))
        .unwrap();
        assert_eq!(
            for_reading(&r).days.len(),
            r.days.len(),
            "a week stays whole"
        );
        let busy = r.days.len();
        let from = chrono::NaiveDate::parse_from_str(&r.days[0].date, "%Y-%m-%d").unwrap();
        for i in 0..100 {
            r.days.push(model::Day {
                date: (from + chrono::Duration::days(busy as i64 + i)).to_string(),
                ..model::Day::default()
            });
        }
        for f in r.errors.top.iter_mut() {
            f.per_day.resize(r.days.len(), 0);
        }
        r.period.to = format!(
            "{}T00:00:00Z",
            from + chrono::Duration::days(busy as i64 + 100)
        );
        let v = for_reading(&r);
        assert!(v.days.len() <= busy && !v.days.is_empty());
        assert!(v.errors.top.iter().all(|f| f.per_day.len() == v.days.len()));
        let md = render(&r, ReportFormat::Md).unwrap();
        assert!(
            md.contains("days with no warning, error, session or job are left out"),
            "{md}"
        );
        let json: model::Report =
            serde_json::from_str(&render(&r, ReportFormat::Json).unwrap()).unwrap();
        assert_eq!(json.days.len(), r.days.len(), "JSON keeps every day");
    }
}
