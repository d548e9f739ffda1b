//! Reading back what the log files already hold when the console starts,
//! so that the Errors screen's windows (up to 7 days) and the Logs screen
//! show the runner's past, not only what was written since.
//!
//! Bounded and fast: each plain file is read from at most
//! [`MAX_BYTES_PER_FILE`] before its end (from the first whole line after
//! that point) to its last complete line, through the tally's fast path
//! ([`super::tally::Tallier`]: only warnings and above become records);
//! gzip files (rotated, `*.gz`) are read whole when their compressed size
//! is at most [`MAX_GZIP_BYTES`], else skipped (counted in
//! [`Backfill::skipped`]). Records older than the window are not tallied.
//! The last [`Limits::recent`] lines of each runner are parsed in full for
//! the Logs screen. Files are read oldest (by modification time) first.
//!
//! [`Backfill::offsets`] says where each plain file was read to, so that
//! [`super::tail::Follower::start_at`] follows on from exactly there.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::parse::{self, LineKind};
use super::read::{for_each_line_marked, is_gzip_name, open_log};
use super::tally::{since_window, Tallier};
use crate::model::{LogRecord, Tally};

/// Most bytes read back from the end of one plain file: 64 MiB.
pub const MAX_BYTES_PER_FILE: u64 = 64 << 20;
/// Largest gzip file read back (compressed size): 8 MiB.
pub const MAX_GZIP_BYTES: u64 = 8 << 20;
/// Lines kept for the Logs screen (per runner, then in all).
pub const RECENT_LINES: usize = 2000;
/// Bytes of those lines kept per runner while reading, at most (long
/// lines: fewer of them).
pub const RECENT_BYTES: usize = 8 << 20;
/// The Errors screen's widest window: 7 days.
pub const WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// How much [`read`] reads.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Records older than this (before now) are not tallied.
    pub window: Duration,
    /// Bytes read back from the end of a plain file, at most.
    pub max_bytes: u64,
    /// Gzip files larger than this (compressed) are skipped.
    pub max_gzip: u64,
    /// Lines kept per runner for the Logs screen, and records in all.
    pub recent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window: WINDOW,
            max_bytes: MAX_BYTES_PER_FILE,
            max_gzip: MAX_GZIP_BYTES,
            recent: RECENT_LINES,
        }
    }
}

/// What [`read`] found.
#[derive(Debug, Default)]
pub struct Backfill {
    /// Warnings and above in the window, and every line counted.
    pub tally: Tally,
    /// The latest records, oldest first, at most [`Limits::recent`].
    pub recent: VecDeque<LogRecord>,
    /// Where each plain file was read to, by (device, inode).
    pub offsets: HashMap<(u64, u64), u64>,
    /// Files read (wholly or their end).
    pub files: usize,
    /// Bytes read from the files (compressed for gzip).
    pub bytes: u64,
    /// Plain files longer than [`Limits::max_bytes`]: only their end was read.
    pub capped: usize,
    /// Gzip files over [`Limits::max_gzip`], or that could not be read.
    pub skipped: usize,
}

/// Reads back every file of `sources` (`(runner, globs)`); see the module
/// docs. Never fails: an unreadable file counts as skipped.
pub fn read(sources: &[(String, Vec<String>)], limits: &Limits, now: SystemTime) -> Backfill {
    let mut out = Backfill::default();
    let mut tl = Tallier::new()
        .with_since(Some(since_window(now, limits.window)))
        .with_now(now);
    let mut rings: Vec<(String, VecDeque<String>)> = Vec::new();
    for (runner, globs) in sources {
        let mut ring: VecDeque<String> = VecDeque::new();
        let mut ring_bytes = 0usize;
        for (path, id, len) in files(globs) {
            let mut feed = |b: &[u8], oversized: bool| {
                let line = String::from_utf8_lossy(b);
                if oversized {
                    tl.oversized_line(runner, &line);
                } else {
                    tl.line(runner, &line);
                }
                ring_bytes += line.len();
                ring.push_back(line.into_owned());
                while ring.len() > limits.recent.max(1)
                    || (ring_bytes > RECENT_BYTES && ring.len() > 1)
                {
                    if let Some(old) = ring.pop_front() {
                        ring_bytes -= old.len();
                    }
                }
            };
            if is_gzip_name(&path) {
                if len > limits.max_gzip {
                    out.skipped += 1;
                    continue;
                }
                let ok =
                    open_log(&path, |_| {}).and_then(|(r, _)| for_each_line_marked(r, &mut feed));
                match ok {
                    Ok(_) => {
                        out.files += 1;
                        out.bytes += len;
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot read back a log file");
                        out.skipped += 1;
                    }
                }
                continue;
            }
            match read_end(&path, len, limits.max_bytes, &mut feed) {
                Ok((start, end)) => {
                    out.files += 1;
                    out.bytes += end - start;
                    out.capped += usize::from(start > 0);
                    out.offsets.insert(id, end);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read back a log file");
                    out.skipped += 1;
                }
            }
        }
        rings.push((runner.clone(), ring));
    }
    out.tally = tl.finish();
    out.recent = records(rings, limits.recent, now);
    out
}

/// The files the globs match, each once, oldest first:
/// `(path, (device, inode), length)`.
fn files(globs: &[String]) -> Vec<(PathBuf, (u64, u64), u64)> {
    let mut seen = HashSet::new();
    let mut v = Vec::new();
    for pattern in globs {
        let Ok(paths) = glob::glob(pattern) else {
            continue;
        };
        for path in paths.flatten() {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if meta.is_file() && seen.insert(id) {
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                v.push((mtime, path, id, meta.len()));
            }
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|(_, p, id, len)| (p, id, len)).collect()
}

/// Reads the complete lines of the last `max` bytes of the first `len`
/// bytes of `path` (a line cut by the start is dropped). Returns the byte
/// range read: `end` is just after the last newline.
fn read_end(
    path: &std::path::Path,
    len: u64,
    max: u64,
    feed: &mut impl FnMut(&[u8], bool),
) -> std::io::Result<(u64, u64)> {
    let mut f = File::open(path)?;
    let start = len.saturating_sub(max);
    let end = after_last_newline(&mut f, start, len)?;
    if end <= start {
        return Ok((start, start));
    }
    // Does the line at `start` begin there?
    let whole_first = start == 0 || {
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(start - 1))?;
        f.read_exact(&mut b)?;
        b[0] == b'\n'
    };
    f.seek(SeekFrom::Start(start))?;
    let mut first = !whole_first;
    for_each_line_marked(f.take(end - start), |b, oversized| {
        if std::mem::take(&mut first) {
            return;
        }
        feed(b, oversized);
    })?;
    Ok((start, end))
}

/// The offset just after the last `\n` in `[start, len)`, or `start`.
fn after_last_newline(f: &mut File, start: u64, len: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut hi = len;
    while hi > start {
        let lo = hi.saturating_sub(buf.len() as u64).max(start);
        let n = usize::try_from(hi - lo).unwrap_or(buf.len()).min(buf.len());
        f.seek(SeekFrom::Start(lo))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(start)
}

/// The runners' last lines as records (continuations joined), merged by
/// time (lines without one keep their place), the newest `keep`.
fn records(
    rings: Vec<(String, VecDeque<String>)>,
    keep: usize,
    now: SystemTime,
) -> VecDeque<LogRecord> {
    let mut all: Vec<LogRecord> = Vec::new();
    for (runner, ring) in rings {
        let mut mine: Vec<LogRecord> = Vec::new();
        for line in &ring {
            match parse::classify(line) {
                LineKind::Blank | LineKind::Unparsed => {}
                LineKind::Continuation => {
                    if let Some(last) = mine.last_mut() {
                        parse::attach_continuation(last, line);
                    }
                }
                LineKind::Record(_) => {
                    if let Some(rec) = parse::parse_line_at(&runner, line, now) {
                        mine.push(rec);
                    }
                }
            }
        }
        all.extend(mine);
    }
    // Stable: the order within a file stays when times tie or are missing.
    all.sort_by(|a, b| match (a.time, b.time) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => std::cmp::Ordering::Equal,
    });
    let skip = all.len().saturating_sub(keep);
    all.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(t: SystemTime, level: &str, msg: &str) -> String {
        let d: chrono::DateTime<chrono::Utc> = t.into();
        format!(
            "{{\"level\":\"{level}\",\"msg\":\"{msg}\",\"time\":\"{}\"}}\n",
            d.to_rfc3339()
        )
    }

    fn src(dir: &std::path::Path, pattern: &str) -> Vec<(String, Vec<String>)> {
        vec![(
            "r1".into(),
            vec![dir.join(pattern).to_string_lossy().into_owned()],
        )]
    }

    #[test]
    fn reads_the_window_and_the_last_lines_and_says_where_it_stopped() {
        let d = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let p = d.path().join("runner.log");
        let mut text = String::new();
        text += &line(now - Duration::from_secs(8 * 24 * 3600), "error", "too old");
        text += &line(
            now - Duration::from_secs(3000),
            "warning",
            "Checking for jobs... failed",
        );
        text += &line(now - Duration::from_secs(60), "info", "Job succeeded");
        text += &line(
            now - Duration::from_secs(30),
            "warning",
            "Job failed: exit code 1",
        );
        text += "{\"level\":\"warning\",\"msg\":\"half a li";
        std::fs::write(&p, &text).unwrap();
        let b = read(&src(d.path(), "*.log"), &Limits::default(), now);
        assert_eq!(b.files, 1);
        assert_eq!(
            b.tally.lines, 4,
            "the unfinished last line is left to the tail"
        );
        let fps: Vec<&str> = b.tally.entries.keys().map(String::as_str).collect();
        assert_eq!(
            fps,
            ["Checking for jobs... failed", "Job failed: exit code N"]
        );
        assert_eq!(b.recent.len(), 4);
        assert_eq!(b.recent.back().unwrap().msg, "Job failed: exit code 1");
        let end = text.rfind('\n').unwrap() as u64 + 1;
        assert_eq!(b.offsets.values().copied().collect::<Vec<_>>(), [end]);
        // The follower goes on from there: the rest of the last line, once.
        let mut f = super::super::tail::Follower::new(
            src(d.path(), "*.log"),
            super::super::tail::TailOptions::default(),
        )
        .start_at(b.offsets.clone());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"ne\"}\n")
            .unwrap();
        let mut got = Vec::new();
        f.poll(&mut |_, l| {
            got.push(l);
            true
        });
        assert_eq!(got, ["{\"level\":\"warning\",\"msg\":\"half a line\"}"]);
    }

    #[test]
    fn a_capped_file_starts_at_a_whole_line_and_gzip_is_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let t = now - Duration::from_secs(600);
        let mut text = String::new();
        for i in 0..100 {
            text += &line(t, "error", &format!("boom {i:03}"));
        }
        std::fs::write(d.path().join("a.log"), &text).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(line(t, "warning", "rotated away").as_bytes())
            .unwrap();
        std::fs::write(d.path().join("a.log.1.gz"), gz.finish().unwrap()).unwrap();
        let limits = Limits {
            max_bytes: 1000,
            ..Limits::default()
        };
        let b = read(&src(d.path(), "a.log*"), &limits, now);
        assert_eq!((b.files, b.capped, b.skipped), (2, 1, 0));
        let e = &b.tally.entries["boom N"];
        let per_line = text.len() as u64 / 100;
        assert_eq!(
            e.count,
            1000 / per_line,
            "whole lines of the last 1000 bytes"
        );
        assert_eq!(e.sample, "boom 099");
        assert!(b.tally.entries.contains_key("rotated away"));
        // Too big a gzip file is skipped.
        let limits = Limits {
            max_gzip: 1,
            ..limits
        };
        let b = read(&src(d.path(), "a.log*"), &limits, now);
        assert_eq!((b.files, b.skipped), (1, 1));
    }
}
