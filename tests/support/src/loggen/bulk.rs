//! A large, realistic week of runner logs for the report's benchmark.
//!
//! Several runners (default 4), each: `runner-N.log` (plain, the last three
//! days), `runner-N.log.1.gz` and `runner-N.log.2.gz` (two days each,
//! gzip); `total_bytes` of uncompressed JSON lines in all. About 5% of the
//! lines are warnings or errors (ids, peers and tokens vary inside the
//! messages), about 3% session, operator and job lines, the rest the info
//! and debug lines of a busy runner. A `bulk.json` manifest beside the
//! files lets a later run reuse them ([`load_bulk`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use termgate::logschema::{self as ls, event, msg};
use termgate::metrics::{close_reason, rejection_reason};

use super::{json_line, Rng, DAY_MS, V};

/// The manifest's name in the directory.
pub const MANIFEST: &str = "bulk.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOptions {
    /// Uncompressed bytes of log text, all files together.
    pub total_bytes: u64,
    pub runners: usize,
    /// The week's start, Unix seconds (a UTC midnight).
    pub from: i64,
    pub days: i64,
    pub seed: u64,
}

impl BulkOptions {
    /// `total_bytes` over 4 runners, the week from 2026-11-23.
    pub fn new(total_bytes: u64) -> BulkOptions {
        BulkOptions {
            total_bytes,
            runners: 4,
            from: super::days_from_civil(2026, 11, 23) * 86_400,
            days: 7,
            seed: 0xB01C_2026,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bulk {
    pub options: BulkOptions,
    /// Every file, plain ones first.
    pub files: Vec<PathBuf>,
    pub gzip_files: u64,
    /// Uncompressed bytes and lines.
    pub bytes: u64,
    pub lines: u64,
    /// Bytes on disk (gzip files compressed).
    pub disk_bytes: u64,
    /// Records at level warning, and at error.
    pub warnings: u64,
    pub errors: u64,
    /// The period, Unix seconds: `[from, to)`.
    pub from: i64,
    pub to: i64,
}

/// The manifest in `dir` when it was written for `opts` and every file is
/// still there with its size; `None` otherwise.
pub fn load_bulk(dir: &Path, opts: &BulkOptions) -> Option<Bulk> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let b: Bulk = serde_json::from_str(&text).ok()?;
    if &b.options != opts {
        return None;
    }
    let disk: u64 = b
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()
        .ok()?;
    (disk == b.disk_bytes).then_some(b)
}

/// Writes the week into `dir` (created if needed) and its manifest.
pub fn generate_bulk(dir: &Path, opts: &BulkOptions) -> std::io::Result<Bulk> {
    std::fs::create_dir_all(dir)?;
    let per_runner = opts.total_bytes / opts.runners.max(1) as u64;
    let parts: Vec<std::io::Result<RunnerOut>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.runners)
            .map(|r| s.spawn(move || write_runner(dir, opts, r, per_runner)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("generator thread panicked")))
            })
            .collect()
    });
    let mut b = Bulk {
        options: opts.clone(),
        files: Vec::new(),
        gzip_files: 0,
        bytes: 0,
        lines: 0,
        disk_bytes: 0,
        warnings: 0,
        errors: 0,
        from: opts.from,
        to: opts.from + opts.days * 86_400,
    };
    let mut gz = Vec::new();
    for p in parts {
        let p = p?;
        for (path, is_gz) in p.files {
            b.disk_bytes += std::fs::metadata(&path)?.len();
            if is_gz {
                b.gzip_files += 1;
                gz.push(path);
            } else {
                b.files.push(path);
            }
        }
        b.bytes += p.bytes;
        b.lines += p.lines;
        b.warnings += p.warnings;
        b.errors += p.errors;
    }
    b.files.extend(gz);
    let manifest = serde_json::to_string_pretty(&b).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(MANIFEST), manifest)?;
    Ok(b)
}

struct RunnerOut {
    files: Vec<(PathBuf, bool)>,
    bytes: u64,
    lines: u64,
    warnings: u64,
    errors: u64,
}

/// A file being written, plain or gzip.
enum Sink {
    Plain(std::io::BufWriter<std::fs::File>),
    Gz(Box<flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>>),
}

impl Sink {
    fn open(path: &Path, gz: bool) -> std::io::Result<Sink> {
        let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        Ok(if gz {
            Sink::Gz(Box::new(flate2::write::GzEncoder::new(
                f,
                flate2::Compression::new(6),
            )))
        } else {
            Sink::Plain(f)
        })
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gz(w) => w.write_all(b),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gz(w) => w.finish()?.flush(),
        }
    }
}

const NAMES: [&str; 8] = [
    "ci-alpha-01",
    "ci-bravo-02",
    "ci-charlie-03",
    "ci-delta-04",
    "ci-echo-05",
    "ci-foxtrot-06",
    "ci-golf-07",
    "ci-hotel-08",
];

/// One runner's week: files by day (`.log.2.gz` days 0–1, `.log.1.gz`
/// days 2–3, `.log` the rest), lines in time order.
fn write_runner(dir: &Path, o: &BulkOptions, r: usize, bytes: u64) -> std::io::Result<RunnerOut> {
    let mut rng = Rng::new(o.seed ^ (r as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let name = NAMES[r % NAMES.len()];
    let id = format!("{}{}", &rng.hex(4), &["Xq", "Lm", "Tz", "Rb"][r % 4]) + &rng.hex(2);
    let from_ms = o.from * 1000;
    let span_ms = o.days * DAY_MS;
    let files = [
        (format!("runner-{r}.log.2.gz"), true, 0, 2),
        (format!("runner-{r}.log.1.gz"), true, 2, 4),
        (format!("runner-{r}.log"), false, 4, o.days),
    ];
    let mut out = RunnerOut {
        files: Vec::new(),
        bytes: 0,
        lines: 0,
        warnings: 0,
        errors: 0,
    };
    let mut line = String::with_capacity(512);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    // Open sessions: (end ms, job, start ms), soonest end first.
    let mut open: BinaryHeap<Reverse<(i64, u64, i64)>> = BinaryHeap::new();
    let mut job = 4_519_000_000 + r as u64 * 10_000_000;
    let mut written = 0u64;
    for (fname, gz, d0, d1) in files {
        let path = dir.join(&fname);
        let mut sink = Sink::open(&path, gz)?;
        let end_ms = from_ms + d1.min(o.days) * DAY_MS;
        debug_assert!(d0 < d1);
        loop {
            // Time runs with the bytes written: the week fills evenly.
            let t = from_ms + (written as i128 * span_ms as i128 / bytes.max(1) as i128) as i64;
            if t >= end_ms || written >= bytes {
                break;
            }
            line.clear();
            let ns = rng.below(1_000_000_000);
            let time = time_ns(t, ns);
            let due = open.peek().is_some_and(|Reverse((e, _, _))| *e <= t);
            let level = if let (true, Some(Reverse((_, j, st)))) = (due, open.peek().copied()) {
                open.pop();
                disconnect(&mut line, &mut rng, &time, j, t - st)
            } else {
                job += rng.below(3);
                one_line(&mut line, &mut rng, &time, name, &id, job, t, &mut open)
            };
            match level {
                "warning" => out.warnings += 1,
                "error" => out.errors += 1,
                _ => {}
            }
            line.push('\n');
            buf.extend_from_slice(line.as_bytes());
            written += line.len() as u64;
            out.lines += 1;
            if buf.len() >= 1 << 20 {
                sink.write(&buf)?;
                buf.clear();
            }
        }
        sink.write(&buf)?;
        buf.clear();
        sink.finish()?;
        out.files.push((path, gz));
    }
    out.bytes = written;
    Ok(out)
}

/// RFC 3339 with nanoseconds, UTC, as the runner writes it.
fn time_ns(ms: i64, ns: u64) -> String {
    let secs = ms.div_euclid(1000) * 1000;
    let base = super::runner_time(secs, 0);
    let frac = format!("{ns:09}");
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        base
    } else {
        format!("{}.{frac}Z", base.trim_end_matches('Z'))
    }
}

fn span(f: &mut BTreeMap<&'static str, V>, name: &str, id: &str, job: u64) {
    f.insert(ls::JOB, V::U(job));
    f.insert(ls::PROJECT, V::U(27_000_000 + job % 977));
    f.insert(ls::RUNNER, V::S(id.to_owned()));
    f.insert(ls::RUNNER_NAME, V::S(name.to_owned()));
}

fn disconnect(line: &mut String, rng: &mut Rng, time: &str, job: u64, dur_ms: i64) -> &'static str {
    let mut f = BTreeMap::new();
    f.insert(ls::EVENT, V::from(event::TERMINAL_DISCONNECTED));
    f.insert(ls::JOB, V::U(job));
    f.insert(ls::DURATION_S, V::F(dur_ms as f64 / 1000.0));
    f.insert(ls::BYTES_IN, V::U(rng.below(50_000)));
    f.insert(ls::BYTES_OUT, V::U(rng.below(5_000_000)));
    f.insert(ls::ROLE, V::from("interactive"));
    f.insert(
        ls::PEER,
        V::S(format!(
            "10.0.{}.{}:{}",
            rng.below(255),
            rng.below(255),
            40_000 + rng.below(20_000)
        )),
    );
    f.insert(
        ls::REASON,
        V::from(*rng.pick(&[
            close_reason::CLIENT_LEFT,
            close_reason::CLIENT_LEFT,
            close_reason::JOB_FINISHED,
            close_reason::IDLE_TIMEOUT,
        ])),
    );
    json_line(line, "info", msg::TERMINAL_DISCONNECTED, time, &f);
    "info"
}

/// One random line; returns its level.
#[allow(clippy::too_many_arguments)]
fn one_line(
    line: &mut String,
    rng: &mut Rng,
    time: &str,
    name: &str,
    id: &str,
    job: u64,
    t: i64,
    open: &mut BinaryHeap<Reverse<(i64, u64, i64)>>,
) -> &'static str {
    let mut f: BTreeMap<&'static str, V> = BTreeMap::new();
    let roll = rng.below(1000);
    let (level, m): (&'static str, String) = match roll {
        // ~5%: warnings and errors, their ids varying.
        0..=11 => {
            f.insert(ls::CORRELATION_ID, V::S(rng.hex(26)));
            f.insert(ls::RUNNER, V::S(id.to_owned()));
            f.insert(ls::STATUS, V::from("403 Forbidden"));
            ("error", msg::CHECKING_FOR_JOBS_FORBIDDEN.to_owned())
        }
        12..=19 => {
            f.insert(ls::CORRELATION_ID, V::S(rng.hex(26)));
            f.insert(ls::RUNNER, V::S(id.to_owned()));
            f.insert(ls::STATUS, V::from("502 Bad Gateway"));
            ("warning", msg::CHECKING_FOR_JOBS_FAILED.to_owned())
        }
        20..=25 => {
            span(&mut f, name, id, job);
            f.insert(ls::EXIT_CODE, V::U(1 + rng.below(2)));
            f.insert(ls::FAILURE_REASON, V::from("script_failure"));
            f.insert(ls::DURATION_S, V::F(rng.below(3_600_000) as f64 / 1000.0));
            (
                "warning",
                format!("{}exit code {}", msg::JOB_FAILED_PREFIX, 1 + rng.below(2)),
            )
        }
        26..=31 => {
            span(&mut f, name, id, job);
            let cid = if rng.chance(50) {
                format!("{}", 100_000_000_000 + rng.below(899_999_999_999))
            } else {
                format!("d{}", rng.hex(11))
            };
            (
                "error",
                msg::docker_step_failed("prepare", &format!("container {cid} not found")),
            )
        }
        32..=36 => {
            f.insert(ls::JOB, V::U(job));
            f.insert(ls::URI, V::S(format!("/session/{}/exec", rng.hex(32))));
            ("warning", msg::SESSION_NOT_FOUND.to_owned())
        }
        37..=40 => {
            f.insert(ls::JOB, V::U(job));
            ("warning", msg::CLOSED_ACTIVE.to_owned())
        }
        41..=43 => {
            f.insert(ls::RUNNER, V::S(id.to_owned()));
            (
                "error",
                msg::runner_unhealthy("https://gitlab.example.com/", id, "1h0m0s"),
            )
        }
        44..=46 => {
            f.insert(
                ls::ERROR,
                V::from("received corrupt message of type InvalidContentType"),
            );
            f.insert(
                ls::PEER,
                V::S(format!(
                    "192.0.2.{}:{}",
                    rng.below(255),
                    30_000 + rng.below(30_000)
                )),
            );
            ("error", msg::SESSION_TLS_HANDSHAKE_FAILED.to_owned())
        }
        47..=49 => {
            span(&mut f, name, id, job);
            f.insert(ls::FAILURE_REASON, V::from("runner_system_failure"));
            f.insert(ls::DURATION_S, V::F(rng.below(600_000) as f64 / 1000.0));
            (
                "error",
                format!(
                    "{}Error response from daemon: No such container: {}",
                    msg::JOB_FAILED_SYSTEM_PREFIX,
                    rng.hex(64)
                ),
            )
        }
        // ~3%: sessions, operators, jobs.
        50..=59 => {
            span(&mut f, name, id, job);
            f.insert(ls::DURATION_S, V::F(rng.below(3_600_000) as f64 / 1000.0));
            f.insert(ls::JOB_STATUS, V::from("success"));
            ("info", msg::JOB_SUCCEEDED.to_owned())
        }
        60..=69 => {
            f.insert(ls::EVENT, V::from(event::TERMINAL_CONNECTED));
            f.insert(ls::JOB, V::U(job));
            f.insert(ls::ROLE, V::from("interactive"));
            f.insert(ls::PROTOCOL, V::from("terminal.gitlab.com"));
            f.insert(
                ls::PEER,
                V::S(format!(
                    "10.0.{}.{}:{}",
                    rng.below(255),
                    rng.below(255),
                    40_000 + rng.below(20_000)
                )),
            );
            let len = 30_000 + rng.below(1_800_000) as i64;
            open.push(Reverse((t + len, job, t)));
            ("info", msg::TERMINAL_CONNECTED.to_owned())
        }
        70..=74 => {
            f.insert(ls::EVENT, V::from(event::TERMINAL_REJECTED));
            f.insert(ls::JOB, V::U(job));
            f.insert(
                ls::REASON,
                V::from(*rng.pick(&[
                    rejection_reason::UNAUTHORIZED,
                    rejection_reason::NOT_FOUND,
                    rejection_reason::LOCKED,
                ])),
            );
            f.insert(ls::STATUS, V::U(404));
            f.insert(
                ls::PEER,
                V::S(format!(
                    "10.0.{}.{}:{}",
                    rng.below(255),
                    rng.below(255),
                    40_000 + rng.below(20_000)
                )),
            );
            ("info", msg::TERMINAL_REJECTED.to_owned())
        }
        75..=79 => {
            f.insert(ls::EVENT, V::from(event::OPERATOR_ATTACHED));
            f.insert(ls::JOB, V::U(job));
            let (mode, op) =
                *rng.pick(&[("observe", "alice"), ("join", "bob"), ("shell", "carol")]);
            f.insert(ls::MODE, V::from(mode));
            f.insert(ls::OPERATOR, V::from(op));
            f.insert(ls::ROLE, V::from("admin"));
            f.insert(ls::SESSION, V::S(rng.hex(32)));
            f.insert(ls::PROJECT, V::from("group/app"));
            ("info", msg::OPERATOR_ATTACHED.to_owned())
        }
        // The rest: a busy runner's info and debug lines.
        80..=299 => {
            f.insert(ls::RUNNER, V::S(id.to_owned()));
            ("debug", msg::CHECKING_FOR_JOBS_NO_CONTENT.to_owned())
        }
        300..=649 => {
            span(&mut f, name, id, job);
            let size = rng.below(5_000_000);
            f.insert(ls::SENT, V::U(size.saturating_sub(rng.below(65_536))));
            f.insert(ls::SIZE, V::U(size));
            ("debug", msg::APPENDING_TRACE_OK.to_owned())
        }
        650..=799 => {
            span(&mut f, name, id, job);
            ("debug", msg::SUBMITTING_JOB_OK.to_owned())
        }
        800..=899 => {
            span(&mut f, name, id, job);
            ("info", msg::UPDATING_JOB_OK.to_owned())
        }
        _ => {
            f.insert(ls::JOB, V::U(job));
            f.insert(
                ls::REPO_URL,
                V::S(format!(
                    "https://gitlab.example.com/group/app-{}.git",
                    job % 97
                )),
            );
            f.insert(ls::RUNNER, V::S(id.to_owned()));
            ("info", msg::CHECKING_FOR_JOBS_RECEIVED.to_owned())
        }
    };
    json_line(line, level, &m, time, &f);
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_is_sized_mixed_and_reusable() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BulkOptions::new(4 << 20);
        let b = generate_bulk(dir.path(), &opts).unwrap();
        assert_eq!(b.files.len(), 12);
        assert_eq!(b.gzip_files, 8);
        let want = opts.total_bytes as f64;
        assert!((b.bytes as f64 - want).abs() / want < 0.01, "{}", b.bytes);
        let share = (b.warnings + b.errors) as f64 / b.lines as f64;
        assert!((0.04..0.06).contains(&share), "{share}");
        // Every line is a JSON object with level, msg and time, in order.
        let mut text = String::new();
        for f in &b.files {
            let mut r: Box<dyn std::io::Read> = if f.extension().is_some_and(|e| e == "gz") {
                Box::new(flate2::read::GzDecoder::new(
                    std::fs::File::open(f).unwrap(),
                ))
            } else {
                Box::new(std::fs::File::open(f).unwrap())
            };
            std::io::Read::read_to_string(&mut r, &mut text).unwrap();
        }
        assert_eq!(text.len() as u64, b.bytes);
        assert_eq!(text.lines().count() as u64, b.lines);
        for l in text.lines().step_by(97) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["level"].is_string() && v["msg"].is_string() && v["time"].is_string());
        }
        assert_eq!(load_bulk(dir.path(), &opts), Some(b));
        assert_eq!(load_bulk(dir.path(), &BulkOptions::new(5 << 20)), None);
    }
}
