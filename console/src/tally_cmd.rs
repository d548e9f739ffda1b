//! `termgate tally --logs GLOB... [--since 24h] [--json] [--top N]`: the
//! Errors screen as a one-shot report over log files.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};

use crate::cli::TallyArgs;
use crate::logs::read::open_log;
use crate::logs::tally::{since_window, SortBy, Tallier};
use crate::model::{ErrorEntry, Origin, Tally};
use crate::text::fit_chars;

/// One log file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// `NAME` of `NAME=GLOB`, else the file name up to its first dot.
    pub runner: String,
    /// Whether `runner` was given (`NAME=GLOB`) rather than guessed.
    pub named: bool,
    pub path: PathBuf,
}

/// `(runner, path)` for every file the arguments match, in order, each once.
pub fn expand(logs: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    Ok(expand_files(logs)?
        .into_iter()
        .map(|f| (f.runner, f.path))
        .collect())
}

/// Every file the arguments match, in order, each once.
pub fn expand_files(logs: &[String]) -> anyhow::Result<Vec<LogFile>> {
    let mut out: Vec<LogFile> = Vec::new();
    for arg in logs {
        let (name, pattern) = split_name(arg);
        let paths = glob::glob(pattern).with_context(|| format!("invalid glob {pattern:?}"))?;
        let mut n = 0;
        for p in paths {
            let p = p.with_context(|| format!("reading {pattern:?}"))?;
            if !p.is_file() {
                continue;
            }
            n += 1;
            if out.iter().any(|f| f.path == p) {
                continue;
            }
            out.push(LogFile {
                runner: name.map_or_else(|| runner_of(&p), str::to_owned),
                named: name.is_some(),
                path: p,
            });
        }
        if n == 0 {
            if Path::new(pattern).is_dir() {
                let hint = Path::new(pattern).join("*.log");
                bail!(
                    "{pattern:?} is a directory: give the files as a glob, e.g. --logs '{}'",
                    hint.display()
                );
            }
            bail!("no log file matches {pattern:?}");
        }
    }
    Ok(out)
}

/// `NAME=GLOB` (a name without `/`, `*`, `?`, `[`) or a bare glob.
fn split_name(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((n, g)) if !n.is_empty() && !g.is_empty() && !n.contains(['/', '*', '?', '[']) => {
            (Some(n), g)
        }
        _ => (None, arg),
    }
}

/// `runner-a.log.1` → `runner-a`.
fn runner_of(p: &Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    if stem.is_empty() {
        name.into_owned()
    } else {
        stem.to_owned()
    }
}

/// Reads every file (plain or gzip) into one tally.
pub fn tally_files(
    files: &[(String, PathBuf)],
    since: Option<SystemTime>,
) -> anyhow::Result<Tally> {
    let mut tl = Tallier::new().with_since(since);
    for (runner, path) in files {
        let (r, _) =
            open_log(path, |_| {}).with_context(|| format!("opening {}", path.display()))?;
        tl.read_from(runner, r)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(tl.finish())
}

pub fn run(args: TallyArgs) -> anyhow::Result<()> {
    let files = expand(&args.logs)?;
    let now = SystemTime::now();
    let since = args.since.map(|w| since_window(now, w));
    let tally = tally_files(&files, since)?;
    let n = if args.top == 0 { usize::MAX } else { args.top };
    let top = tally.top(n, SortBy::Count);
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.json {
        let v: Vec<serde_json::Value> = top.iter().map(|e| entry_json(e)).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        if tally.oversized > 0 {
            // The JSON is the entries alone: say it on stderr, not silently.
            eprintln!(
                "termgate tally: lines: {}; a warning or an error among them is counted in the JSON",
                oversized_label(tally.oversized)
            );
        }
    } else {
        write_table(&mut out, &tally, &top, files.len(), since)?;
    }
    out.flush()?;
    Ok(())
}

fn rfc3339(t: Option<SystemTime>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        let d: DateTime<Utc> = t.into();
        serde_json::Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

/// One entry with all its fields, for `--json`.
pub fn entry_json(e: &ErrorEntry) -> serde_json::Value {
    serde_json::json!({
        "fingerprint": e.fingerprint,
        "origin": e.origin.as_str(),
        "level": e.level.as_str(),
        "count": e.count,
        "first_seen": rfc3339(e.first_seen),
        "last_seen": rfc3339(e.last_seen),
        "runners": e.runners,
        "sample": e.sample,
        "examples": e.examples,
        "per_minute": e.per_minute.iter().map(|(m, c)| {
            let d: Option<DateTime<Utc>> = DateTime::from_timestamp((*m as i64).saturating_mul(60), 0);
            serde_json::json!([d.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)), c])
        }).collect::<Vec<_>>(),
    })
}

fn short_time(t: Option<SystemTime>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| {
            let d: DateTime<Utc> = t.into();
            d.format("%Y-%m-%d %H:%M:%S").to_string()
        },
    )
}

fn write_table(
    out: &mut impl Write,
    tally: &Tally,
    top: &[&ErrorEntry],
    files: usize,
    since: Option<SystemTime>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>7}  {:<7}  {:<6}  {:<19}  {:<19}  {:<20}  FINGERPRINT/SAMPLE",
        "COUNT", "LEVEL", "FROM", "FIRST-SEEN", "LAST-SEEN", "RUNNERS"
    )?;
    for e in top {
        let runners: Vec<&str> = e.runners.iter().map(String::as_str).collect();
        writeln!(
            out,
            "{:>7}  {:<7}  {:<6}  {:<19}  {:<19}  {:<20}  {}",
            e.count,
            e.level.as_str(),
            e.origin.as_str(),
            short_time(e.first_seen),
            short_time(e.last_seen),
            fit_chars(&runners.join(","), 20),
            fit_chars(&e.fingerprint, 120),
        )?;
        let sample = e.sample.replace(['\n', '\r'], " ");
        if sample != e.fingerprint {
            writeln!(out, "{:90}e.g. {}", "", fit_chars(&sample, 120))?;
        }
    }
    let since = since.map_or_else(String::new, |s| format!(", since {}", short_time(Some(s))));
    let (mut runner, mut job) = (0u64, 0u64);
    for e in tally.entries.values() {
        match e.origin {
            Origin::Runner => runner += e.count,
            Origin::Job => job += e.count,
        }
    }
    writeln!(
        out,
        "\n{} fingerprints ({} shown) in {} lines of {} files, {} unparsed{}{} (times UTC)",
        tally.entries.len(),
        top.len(),
        tally.lines,
        files,
        tally.unparsed,
        if tally.oversized > 0 {
            format!(", {}", oversized_label(tally.oversized))
        } else {
            String::new()
        },
        since,
    )?;
    writeln!(
        out,
        "FROM: {runner} runner errors (the runner's or its system's: API, Docker, session server, config), \
         {job} job failures (the user's: script_failure, job_execution_timeout, canceled)"
    )
}

/// "N oversized (over 1 MiB: only their start read)"; the limit is
/// [`crate::logs::read::MAX_READ_LINE`].
pub fn oversized_label(n: u64) -> String {
    format!(
        "{n} oversized (over {} MiB: only their start read)",
        crate::logs::read::MAX_READ_LINE >> 20
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            split_name("prm-5=/var/log/*.log"),
            (Some("prm-5"), "/var/log/*.log")
        );
        assert_eq!(split_name("/var/log/a=b.log"), (None, "/var/log/a=b.log"));
        assert_eq!(split_name("*=x"), (None, "*=x"));
        assert_eq!(runner_of(Path::new("/x/runner-a.log.1")), "runner-a");
        assert_eq!(runner_of(Path::new("/x/.hidden")), ".hidden");
        assert_eq!(fit_chars("abcdef", 4), "abc…");
    }

    #[test]
    fn expand_errors_clearly() {
        let e = expand(&["/nonexistent/*.log".into()]).unwrap_err();
        assert!(e.to_string().contains("no log file matches"), "{e}");
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.log"), "x\n").unwrap();
        let g = d.path().join("*.log").to_string_lossy().into_owned();
        let e = expand(&[d.path().to_string_lossy().into_owned()]).unwrap_err();
        assert!(
            e.to_string().contains("is a directory") && e.to_string().contains("*.log"),
            "{e}"
        );
        let files = expand(&[g.clone(), g]).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "a");
    }
}
