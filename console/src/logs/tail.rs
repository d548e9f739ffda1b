//! Following log files: `tail -F` for many globs at once, by polling.
//!
//! [`Follower`] is the synchronous core: each [`Follower::poll`] re-globs,
//! reads whatever is new in every followed file and hands out complete
//! lines. [`spawn`] runs it on its own thread every [`TailOptions::poll`]
//! and delivers `(runner, line)` pairs on a **bounded** tokio channel
//! (the thread blocks while the channel is full: the files are the buffer).
//!
//! Behaviour:
//! - files are known by identity (device, inode), not by name: a rotated
//!   file that still matches a glob (`runner.log.1` for `runner.log*`) is
//!   not read again;
//! - **rotation**: when a name points to a new file, the old file is read to
//!   its end first (and once more on the next poll, for late writes), then
//!   the new one from its start;
//! - **truncation** (`copytruncate`): a file shorter than what was read is
//!   read again from 0. (Truncation followed by more writes than were read
//!   before the next poll cannot be seen; polling every 250 ms makes that
//!   rare.)
//! - a partial last line is held until its newline; a line longer than
//!   [`TailOptions::max_line`] keeps its first `max_line` bytes and the rest
//!   is skipped up to the newline; invalid UTF-8 is decoded lossily; a
//!   trailing `\r` is removed;
//! - files present at the first poll start at their end unless
//!   [`TailOptions::from_start`] or [`Follower::start_at`] says where
//!   (after [`super::backfill`] read them up to there); files that appear
//!   later are read whole;
//! - gzip files (`*.gz`, rotated and never written again) are not followed:
//!   their bytes are not lines ([`super::backfill`] reads them).

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Knobs of [`Follower`] and [`spawn`].
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Time between polls.
    pub poll: Duration,
    /// Read files present at start from their beginning (else from the end).
    pub from_start: bool,
    /// Longest line kept, in bytes.
    pub max_line: usize,
    /// Capacity of [`spawn`]'s channel, in lines.
    pub channel: usize,
    /// Most bytes read from one file in one poll (fairness between files).
    pub max_read_per_poll: u64,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            poll: Duration::from_millis(250),
            from_start: false,
            max_line: 1 << 20,
            channel: 4096,
            max_read_per_poll: 16 << 20,
        }
    }
}

/// One followed file.
#[derive(Debug)]
struct Followed {
    id: (u64, u64),
    path: PathBuf,
    file: File,
    offset: u64,
    partial: Vec<u8>,
    /// The current line passed `max_line`: skip to its newline.
    skipping: bool,
    /// Polls in a row in which no glob matched this file.
    unseen: u8,
}

#[derive(Debug)]
struct Source {
    runner: String,
    globs: Vec<String>,
    files: Vec<Followed>,
}

/// The polling core; see the module docs.
#[derive(Debug)]
pub struct Follower {
    sources: Vec<Source>,
    opts: TailOptions,
    started: bool,
    buf: Vec<u8>,
    /// Where files present at the first poll start, by identity.
    start_at: std::collections::HashMap<(u64, u64), u64>,
}

/// Receives `(runner, line)`; returns `false` to stop the poll.
pub type Emit<'a> = dyn FnMut(&str, String) -> bool + 'a;

impl Follower {
    /// `sources`: `(runner name, globs)`.
    pub fn new(sources: Vec<(String, Vec<String>)>, opts: TailOptions) -> Self {
        Follower {
            sources: sources
                .into_iter()
                .map(|(runner, globs)| Source {
                    runner,
                    globs,
                    files: Vec::new(),
                })
                .collect(),
            opts,
            started: false,
            buf: vec![0; 64 << 10],
            start_at: Default::default(),
        }
    }

    /// Files present at the first poll whose identity (device, inode) is
    /// in `offsets` start there instead of at their end: where a read-back
    /// stopped, so that no line is lost or seen twice.
    pub fn start_at(mut self, offsets: std::collections::HashMap<(u64, u64), u64>) -> Self {
        self.start_at = offsets;
        self
    }

    /// Paths currently followed, per runner (for a status line).
    pub fn files(&self) -> Vec<(&str, &std::path::Path)> {
        self.sources
            .iter()
            .flat_map(|s| {
                s.files
                    .iter()
                    .map(|f| (s.runner.as_str(), f.path.as_path()))
            })
            .collect()
    }

    /// One round. Returns `false` if `emit` asked to stop.
    pub fn poll(&mut self, emit: &mut Emit<'_>) -> bool {
        let first = !self.started;
        self.started = true;
        let opts = &self.opts;
        let buf = &mut self.buf;
        let start_at = &self.start_at;
        for src in &mut self.sources {
            // 1. What is new in the files we know (old names included).
            for f in &mut src.files {
                if !read_new(f, &src.runner, opts, buf, emit) {
                    return false;
                }
            }
            // 2. Who is behind each name now.
            let mut seen = HashSet::new();
            let mut fresh = Vec::new();
            for pattern in &src.globs {
                let Ok(paths) = glob::glob(pattern) else {
                    continue;
                };
                for path in paths.flatten() {
                    let Ok(meta) = std::fs::metadata(&path) else {
                        continue;
                    };
                    if !meta.is_file() || super::read::is_gzip_name(&path) {
                        continue;
                    }
                    let id = (meta.dev(), meta.ino());
                    if !seen.insert(id) {
                        continue;
                    }
                    if let Some(f) = src.files.iter_mut().find(|f| f.id == id) {
                        f.path = path;
                        f.unseen = 0;
                        continue;
                    }
                    let Ok(file) = File::open(&path) else {
                        continue;
                    };
                    let offset = match start_at.get(&id) {
                        Some(o) if first => (*o).min(meta.len()),
                        _ if first && !opts.from_start => meta.len(),
                        _ => 0,
                    };
                    fresh.push(src.files.len());
                    src.files.push(Followed {
                        id,
                        path,
                        file,
                        offset,
                        partial: Vec::new(),
                        skipping: false,
                        unseen: 0,
                    });
                }
            }
            // 3. Files no name leads to any more: drained above; drop them
            //    after a second look (late writes before the writer reopened).
            let mut k = 0;
            while k < src.files.len() {
                if seen.contains(&src.files[k].id) {
                    k += 1;
                    continue;
                }
                src.files[k].unseen += 1;
                if src.files[k].unseen < 2 {
                    k += 1;
                    continue;
                }
                let f = src.files.remove(k);
                fresh.retain(|i| *i != k);
                for i in &mut fresh {
                    if *i > k {
                        *i -= 1;
                    }
                }
                if !f.partial.is_empty() && !emit(&src.runner, lossy(&f.partial)) {
                    return false;
                }
            }
            // 4. New files, right away.
            for i in fresh {
                if let Some(f) = src.files.get_mut(i) {
                    if !read_new(f, &src.runner, opts, buf, emit) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

fn lossy(b: &[u8]) -> String {
    let b = b.strip_suffix(b"\r").unwrap_or(b);
    String::from_utf8_lossy(b).into_owned()
}

/// Reads what was appended to `f` since last time.
fn read_new(
    f: &mut Followed,
    runner: &str,
    opts: &TailOptions,
    buf: &mut [u8],
    emit: &mut Emit<'_>,
) -> bool {
    let Ok(meta) = f.file.metadata() else {
        return true;
    };
    if meta.len() < f.offset {
        // Truncated: start over.
        f.offset = 0;
        f.partial.clear();
        f.skipping = false;
    }
    if meta.len() == f.offset {
        return true;
    }
    if f.file.seek(SeekFrom::Start(f.offset)).is_err() {
        return true;
    }
    let mut budget = opts.max_read_per_poll;
    while budget > 0 {
        let want = buf.len().min(usize::try_from(budget).unwrap_or(usize::MAX));
        let n = match f.file.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        f.offset += n as u64;
        budget = budget.saturating_sub(n as u64);
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let nl = memchr::memchr(b'\n', chunk);
            let piece = &chunk[..nl.unwrap_or(chunk.len())];
            if !f.skipping {
                let room = opts.max_line.saturating_sub(f.partial.len());
                if piece.len() > room {
                    f.partial.extend_from_slice(&piece[..room]);
                    f.skipping = true;
                } else {
                    f.partial.extend_from_slice(piece);
                }
            }
            match nl {
                Some(i) => {
                    let line = lossy(&f.partial);
                    f.partial.clear();
                    f.skipping = false;
                    if !emit(runner, line) {
                        return false;
                    }
                    chunk = &chunk[i + 1..];
                }
                None => chunk = &[],
            }
        }
    }
    true
}

/// Follows `sources` (`(runner, globs)`) on a thread until `shutdown` is
/// cancelled or the receiver is dropped. Lines arrive as `(runner, line)`.
/// The channel is bounded by [`TailOptions::channel`].
pub fn spawn(
    sources: Vec<(String, Vec<String>)>,
    opts: TailOptions,
    shutdown: CancellationToken,
) -> mpsc::Receiver<(String, String)> {
    start(sources, opts, None, shutdown).0
}

/// As [`spawn`], after reading back what the files already hold
/// ([`super::backfill::read`] with `limits`, on the same thread): its
/// result arrives on the second receiver, then the new lines from where it
/// stopped on the first.
pub fn spawn_with_backfill(
    sources: Vec<(String, Vec<String>)>,
    opts: TailOptions,
    limits: super::backfill::Limits,
    shutdown: CancellationToken,
) -> (
    mpsc::Receiver<(String, String)>,
    tokio::sync::oneshot::Receiver<super::backfill::Backfill>,
) {
    let (lines, back) = start(sources, opts, Some(limits), shutdown);
    // `start` always makes the channel when given limits.
    (
        lines,
        back.unwrap_or_else(|| tokio::sync::oneshot::channel().1),
    )
}

fn start(
    sources: Vec<(String, Vec<String>)>,
    opts: TailOptions,
    limits: Option<super::backfill::Limits>,
    shutdown: CancellationToken,
) -> (
    mpsc::Receiver<(String, String)>,
    Option<tokio::sync::oneshot::Receiver<super::backfill::Backfill>>,
) {
    let (tx, rx) = mpsc::channel(opts.channel.max(1));
    let (btx, brx) = match limits {
        Some(_) => {
            let (a, b) = tokio::sync::oneshot::channel();
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    let poll = opts.poll;
    let spawned = std::thread::Builder::new()
        .name("log-tail".into())
        .spawn(move || {
            let mut follower = Follower::new(sources.clone(), opts);
            if let (Some(limits), Some(btx)) = (limits, btx) {
                let back = super::backfill::read(&sources, &limits, std::time::SystemTime::now());
                follower = follower.start_at(back.offsets.clone());
                if btx.send(back).is_err() {
                    return;
                }
            }
            while !shutdown.is_cancelled() {
                let ok = follower.poll(&mut |runner, line| {
                    !shutdown.is_cancelled() && tx.blocking_send((runner.to_owned(), line)).is_ok()
                });
                if !ok || tx.is_closed() {
                    break;
                }
                // Sleep in slices so that shutdown is quick.
                let mut left = poll;
                while !left.is_zero() && !shutdown.is_cancelled() {
                    let step = left.min(Duration::from_millis(50));
                    std::thread::sleep(step);
                    left -= step;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the log tail thread");
    }
    (rx, brx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts() -> TailOptions {
        TailOptions {
            max_line: 1 << 20,
            ..TailOptions::default()
        }
    }

    fn poll(f: &mut Follower) -> Vec<(String, String)> {
        let mut out = Vec::new();
        assert!(f.poll(&mut |r, l| {
            out.push((r.to_owned(), l));
            true
        }));
        out
    }

    fn lines(f: &mut Follower) -> Vec<String> {
        poll(f).into_iter().map(|(_, l)| l).collect()
    }

    fn append(p: &std::path::Path, b: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(b).unwrap();
    }

    fn follower(dir: &std::path::Path, pattern: &str, from_start: bool) -> Follower {
        let g = dir.join(pattern).to_string_lossy().into_owned();
        Follower::new(
            vec![("r1".into(), vec![g])],
            TailOptions {
                from_start,
                ..opts()
            },
        )
    }

    #[test]
    fn starts_at_end_and_holds_partial_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, b"old 1\nold 2\n");
        let mut f = follower(d.path(), "*.log", false);
        assert!(lines(&mut f).is_empty());
        append(&p, b"new 1\nnew ");
        assert_eq!(poll(&mut f), vec![("r1".to_string(), "new 1".to_string())]);
        assert!(lines(&mut f).is_empty());
        append(&p, b"2\r\n");
        assert_eq!(lines(&mut f), vec!["new 2"]);
        assert_eq!(f.files().len(), 1);
    }

    #[test]
    fn from_start_and_new_files() {
        let d = tempfile::tempdir().unwrap();
        append(&d.path().join("a.log"), b"a1\n");
        let mut f = follower(d.path(), "*.log", true);
        assert_eq!(lines(&mut f), vec!["a1"]);
        append(&d.path().join("b.log"), b"b1\nb2\n");
        append(&d.path().join("c.txt"), b"ignored\n");
        assert_eq!(lines(&mut f), vec!["b1", "b2"]);
    }

    #[test]
    fn rotation_reads_the_old_file_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runner.log");
        append(&p, b"1\n");
        let mut f = follower(d.path(), "runner.log", true);
        assert_eq!(lines(&mut f), vec!["1"]);
        append(&p, b"2\n");
        std::fs::rename(&p, d.path().join("runner.log.1")).unwrap();
        append(&p, b"3\n");
        assert_eq!(lines(&mut f), vec!["2", "3"]);
        // A late write to the old file is still picked up once.
        append(&d.path().join("runner.log.1"), b"late\n");
        append(&p, b"4\n");
        assert_eq!(lines(&mut f), vec!["late", "4"]);
        assert_eq!(f.files().len(), 1, "the old file is dropped");
    }

    #[test]
    fn rotated_name_still_matching_is_not_reread() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runner.log");
        append(&p, b"1\n2\n");
        let mut f = follower(d.path(), "runner.log*", true);
        assert_eq!(lines(&mut f), vec!["1", "2"]);
        std::fs::rename(&p, d.path().join("runner.log.1")).unwrap();
        append(&p, b"3\n");
        assert_eq!(lines(&mut f), vec!["3"]);
        assert_eq!(f.files().len(), 2);
    }

    #[test]
    fn truncation_restarts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runner.log");
        append(&p, b"a fairly long first line\n");
        let mut f = follower(d.path(), "runner.log", true);
        assert_eq!(lines(&mut f).len(), 1);
        std::fs::write(&p, b"short\n").unwrap();
        assert_eq!(lines(&mut f), vec!["short"]);
    }

    #[test]
    fn long_lines_are_capped_and_bytes_lossy() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runner.log");
        let mut f = Follower::new(
            vec![("r".into(), vec![p.to_string_lossy().into_owned()])],
            TailOptions {
                from_start: true,
                max_line: 1000,
                max_read_per_poll: 1 << 30,
                ..opts()
            },
        );
        std::fs::write(&p, b"").unwrap();
        assert!(lines(&mut f).is_empty());
        append(&p, &vec![b'x'; 3 << 20]);
        assert!(lines(&mut f).is_empty());
        assert!(f.sources[0].files[0].partial.len() <= 1000);
        append(&p, b"yyy\nok \xff\xfe done\n");
        let l = lines(&mut f);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0], "x".repeat(1000));
        assert_eq!(l[1], "ok \u{FFFD}\u{FFFD} done");
    }

    #[test]
    fn bad_globs_and_missing_files_are_quiet() {
        let mut f = Follower::new(
            vec![(
                "r".into(),
                vec!["[".into(), "/nonexistent/dir/*.log".into()],
            )],
            opts(),
        );
        assert!(lines(&mut f).is_empty());
    }

    #[tokio::test]
    async fn spawned_tail_delivers_and_stops() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runner.log");
        append(&p, b"before\n");
        let stop = CancellationToken::new();
        let mut rx = spawn(
            vec![("r1".into(), vec![p.to_string_lossy().into_owned()])],
            TailOptions {
                poll: Duration::from_millis(20),
                channel: 2,
                ..opts()
            },
            stop.clone(),
        );
        // The first poll starts at the end; wait until the file is followed
        // by writing until something arrives.
        let timeout = Duration::from_secs(10);
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut n = 0;
        while got.len() < 3 && tokio::time::Instant::now() < deadline {
            append(&p, format!("line {n}\n").as_bytes());
            n += 1;
            if let Ok(Some(x)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                got.push(x);
            }
        }
        assert!(got.len() >= 3, "{got:?}");
        assert!(got.iter().all(|(r, l)| r == "r1" && l.starts_with("line ")));
        stop.cancel();
        // Drains then closes.
        let closed =
            tokio::time::timeout(timeout, async { while rx.recv().await.is_some() {} }).await;
        assert!(closed.is_ok());
    }
}
