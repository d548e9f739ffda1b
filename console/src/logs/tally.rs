//! Grouping warnings and above by fingerprint into a [`Tally`].
//!
//! Two ways in:
//! - [`Tally::add`] for records already parsed (the live tail);
//! - [`Tallier::line`] for raw lines (the `tally` command, the benchmark):
//!   it classifies each line first and builds a record only for warnings
//!   and above, attaches continuation lines to the latest example, and
//!   applies a `since` filter.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] fingerprints (the rest count
//! under [`OTHER`]), [`MAX_EXAMPLES`] examples of at most
//! [`MAX_EXAMPLE_LEN`] bytes each, and per-minute buckets over
//! [`TREND_MINUTES`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fingerprint::fingerprint;
use super::parse::{self, Classifier, LineKind};
use super::wrap;
use crate::model::{ErrorEntry, Level, LogRecord, Tally};
use crate::text::clip;

/// Raw examples kept per fingerprint.
pub const MAX_EXAMPLES: usize = 5;
/// Longest example or sample kept, in bytes.
pub const MAX_EXAMPLE_LEN: usize = 4096;
/// Most distinct fingerprints; further ones are counted under [`OTHER`].
pub const MAX_ENTRIES: usize = 5000;
/// The fingerprint that collects everything past [`MAX_ENTRIES`].
pub const OTHER: &str = "(other fingerprints)";
/// Per-minute buckets kept (7 days: the Errors screen's widest window).
pub const TREND_MINUTES: u64 = 7 * 24 * 60;
/// Longest line [`Tallier::read_from`] keeps, in bytes.
pub use super::read::MAX_READ_LINE;
/// Continuation lines appended to one example at most.
const MAX_CONTINUATION_LINES: usize = 40;

/// Orders for [`Tally::top`]; all descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Count,
    LastSeen,
    FirstSeen,
    Level,
}

fn minute(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60
}

impl Tally {
    /// Counts one parsed line (`lines += 1`) and tallies it if it is a
    /// warning or above. `raw` is kept as an example (ANSI removed).
    pub fn add(&mut self, rec: &LogRecord, raw: &str) {
        self.lines += 1;
        self.tally(rec, raw);
    }

    /// Tallies `rec` if it is a warning or above (without counting a line).
    /// Returns the key of the entry it went to.
    pub fn tally(&mut self, rec: &LogRecord, raw: &str) -> Option<String> {
        if rec.level < Level::Warning {
            return None;
        }
        let origin = super::origin::of_record(rec);
        let mut fp = fingerprint(&rec.msg);
        if !self.entries.contains_key(&fp) {
            if self.entries.len() >= MAX_ENTRIES {
                fp = OTHER.to_owned();
            }
            self.entries
                .entry(fp.clone())
                .or_insert_with(|| ErrorEntry {
                    fingerprint: fp.clone(),
                    origin,
                    level: rec.level,
                    count: 0,
                    first_seen: None,
                    last_seen: None,
                    runners: Default::default(),
                    sample: String::new(),
                    examples: Default::default(),
                    per_minute: Default::default(),
                });
        }
        let e = self.entries.get_mut(&fp)?;
        e.count += 1;
        e.level = e.level.max(rec.level);
        e.origin = e.origin.max(origin);
        if let Some(t) = rec.time {
            e.first_seen = Some(e.first_seen.map_or(t, |f| f.min(t)));
            e.last_seen = Some(e.last_seen.map_or(t, |l| l.max(t)));
            bump(&mut e.per_minute, minute(t));
        }
        if !e.runners.contains(&rec.runner) {
            e.runners.insert(rec.runner.clone());
        }
        e.sample.clear();
        e.sample.push_str(clip(&rec.msg, MAX_EXAMPLE_LEN));
        // Reuse the oldest example's buffer.
        let mut ex = if e.examples.len() >= MAX_EXAMPLES {
            e.examples.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        ex.clear();
        ex.push_str(clip(&wrap::strip_ansi(raw), MAX_EXAMPLE_LEN));
        e.examples.push_back(ex);
        Some(fp)
    }

    /// The `n` first entries in `sort` order (ties: count, last seen, then
    /// fingerprint).
    pub fn top(&self, n: usize, sort: SortBy) -> Vec<&ErrorEntry> {
        let mut v: Vec<&ErrorEntry> = self.entries.values().collect();
        sort_entries(&mut v, sort);
        v.truncate(n);
        v
    }

    /// Entries seen at or after `since`, with `count` (and `per_minute`)
    /// restricted to that window. Entries without any timestamp are kept
    /// whole (their time is unknown). Sorted by `sort`.
    pub fn since(&self, since: SystemTime, sort: SortBy) -> Vec<ErrorEntry> {
        let m0 = minute(since);
        let mut v: Vec<ErrorEntry> = self
            .entries
            .values()
            .filter_map(|e| {
                let Some(last) = e.last_seen else {
                    return Some(e.clone());
                };
                if last < since {
                    return None;
                }
                let mut e = e.clone();
                e.count = e.count_since(since);
                e.per_minute.retain(|(m, _)| *m >= m0);
                if let Some(f) = e.first_seen {
                    e.first_seen = Some(f.max(since));
                }
                (e.count > 0).then_some(e)
            })
            .collect();
        v.sort_by(|a, b| cmp_entries(a, b, sort));
        v
    }
}

fn sort_entries(v: &mut [&ErrorEntry], sort: SortBy) {
    v.sort_by(|a, b| cmp_entries(a, b, sort));
}

fn cmp_entries(a: &ErrorEntry, b: &ErrorEntry, sort: SortBy) -> std::cmp::Ordering {
    let primary = match sort {
        SortBy::Count => b.count.cmp(&a.count),
        SortBy::LastSeen => b.last_seen.cmp(&a.last_seen),
        SortBy::FirstSeen => b.first_seen.cmp(&a.first_seen),
        SortBy::Level => b.level.cmp(&a.level),
    };
    primary
        .then(b.count.cmp(&a.count))
        .then(b.last_seen.cmp(&a.last_seen))
        .then(a.fingerprint.cmp(&b.fingerprint))
}

/// Adds one to minute `m`, keeping buckets sorted and within the window.
fn bump(q: &mut std::collections::VecDeque<(u64, u32)>, m: u64) {
    let newest = q.back().map_or(m, |(b, _)| (*b).max(m));
    if m + TREND_MINUTES < newest {
        return; // too old for the trend
    }
    match q.back_mut() {
        Some((b, c)) if *b == m => *c = c.saturating_add(1),
        Some((b, _)) if *b > m => match q.binary_search_by_key(&m, |(b, _)| *b) {
            Ok(i) => {
                if let Some((_, c)) = q.get_mut(i) {
                    *c = c.saturating_add(1);
                }
            }
            Err(i) => q.insert(i, (m, 1)),
        },
        _ => q.push_back((m, 1)),
    }
    while q.front().is_some_and(|(b, _)| b + TREND_MINUTES < newest) {
        q.pop_front();
    }
}

impl ErrorEntry {
    /// Occurrences at or after `since`: exact while `since` is inside the
    /// per-minute window (to the minute), else the total count.
    pub fn count_since(&self, since: SystemTime) -> u64 {
        match (self.first_seen, self.last_seen) {
            (Some(f), _) if f >= since => self.count,
            (_, Some(l)) if l < since => 0,
            (_, None) => self.count,
            _ => {
                let m0 = minute(since);
                self.per_minute
                    .iter()
                    .filter(|(m, _)| *m >= m0)
                    .map(|(_, c)| u64::from(*c))
                    .sum()
            }
        }
    }

    /// Counts in `buckets` equal slices of `[from, to)`, for a sparkline.
    pub fn trend(&self, from: SystemTime, to: SystemTime, buckets: usize) -> Vec<u64> {
        let mut out = vec![0; buckets];
        let (m0, m1) = (minute(from), minute(to).max(minute(from) + 1));
        let span = m1 - m0;
        for (m, c) in &self.per_minute {
            if *m >= m0 && *m < m1 && buckets > 0 {
                let i = ((m - m0) * buckets as u64 / span) as usize;
                if let Some(slot) = out.get_mut(i.min(buckets - 1)) {
                    *slot += u64::from(*c);
                }
            }
        }
        out
    }
}

/// The figures the screens show of an entry.
impl ErrorEntry {
    /// Occurrences since `since` from the per-minute counts (to the minute,
    /// whatever the first and last seen times), or the whole count when the
    /// entry has none and was last seen in the window.
    pub fn count_in_window(&self, since: SystemTime) -> u64 {
        if self.per_minute.is_empty() {
            return if self.last_seen.is_some_and(|t| t >= since) {
                self.count
            } else {
                0
            };
        }
        let m = minute(since);
        self.per_minute
            .iter()
            .filter(|(t, _)| *t >= m)
            .map(|(_, c)| u64::from(*c))
            .sum()
    }

    /// Per-minute counts over `[now - window, now]` averaged into `n`
    /// buckets, empty ones as zero (the Errors screen's trend sparkline).
    pub fn trend_buckets(&self, now: SystemTime, window: Duration, n: usize) -> Vec<Option<f64>> {
        let start = now.checked_sub(window).unwrap_or(UNIX_EPOCH);
        let pts = self
            .per_minute
            .iter()
            .map(|(m, c)| (UNIX_EPOCH + Duration::from_secs(m * 60), f64::from(*c)));
        crate::model::buckets(pts, start, now, n)
            .into_iter()
            .map(|v| Some(v.unwrap_or(0.0)))
            .collect()
    }

    /// First seen within the last hour.
    pub fn is_new(&self, now: SystemTime) -> bool {
        self.first_seen
            .is_some_and(|t| now.duration_since(t).unwrap_or_default() <= Duration::from_secs(3600))
    }
}

/// Feeds raw lines into a [`Tally`]: builds records only for warnings and
/// above, attaches continuation lines to the latest example, and skips
/// records older than `since` (records without a time are kept).
#[derive(Debug)]
pub struct Tallier {
    pub tally: Tally,
    classifier: Classifier,
    since: Option<SystemTime>,
    now: SystemTime,
    /// The entry the previous record went to, for its continuation lines.
    last: Option<(String, usize)>,
}

impl Default for Tallier {
    fn default() -> Self {
        Self::new()
    }
}

impl Tallier {
    pub fn new() -> Self {
        Tallier {
            tally: Tally::default(),
            classifier: Classifier::new(),
            since: None,
            now: SystemTime::now(),
            last: None,
        }
    }

    /// Only tally records at or after `since`.
    pub fn with_since(mut self, since: Option<SystemTime>) -> Self {
        self.since = since;
        self
    }

    /// The clock for year-less syslog dates (tests).
    pub fn with_now(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }

    /// One line (without its newline) from `runner`'s log.
    pub fn line(&mut self, runner: &str, line: &str) -> LineKind {
        self.tally.lines += 1;
        let k = self.classifier.classify(line);
        match k {
            LineKind::Record(l) if l >= Level::Warning => {
                self.last = None;
                let Some(mut rec) = parse::parse_line_lite(runner, line, self.now) else {
                    return k;
                };
                // A job's failure says whose it is in its `failure_reason`
                // field: parse the fields of those lines only.
                if rec
                    .msg
                    .starts_with(termgate::logschema::msg::JOB_FAILED_PREFIX)
                    && line.contains(termgate::logschema::FAILURE_REASON)
                {
                    if let Some(full) = parse::parse_line_at(runner, line, self.now) {
                        rec = full;
                    }
                }
                if let (Some(s), Some(t)) = (self.since, rec.time) {
                    if t < s {
                        return k;
                    }
                }
                self.last = self.tally.tally(&rec, line).map(|fp| (fp, 0));
            }
            LineKind::Record(_) => self.last = None,
            LineKind::Unparsed => {
                self.tally.unparsed += 1;
                self.last = None;
            }
            LineKind::Blank => {}
            LineKind::Continuation => {
                if let Some((fp, n)) = &mut self.last {
                    if *n < MAX_CONTINUATION_LINES {
                        *n += 1;
                        let ex = self
                            .tally
                            .entries
                            .get_mut(fp.as_str())
                            .and_then(|e| e.examples.back_mut());
                        if let Some(ex) = ex {
                            if ex.len() + line.len() < MAX_EXAMPLE_LEN {
                                ex.push('\n');
                                ex.push_str(&wrap::strip_ansi(line));
                            }
                        }
                    }
                }
            }
        }
        k
    }

    /// The start of a line that was over the reader's limit: counted as
    /// oversized; if that start is a warning or an error record it is
    /// tallied like any other (a huge error is still an error), and it is
    /// never counted as unparsed too.
    pub fn oversized_line(&mut self, runner: &str, start: &str) -> LineKind {
        self.tally.oversized += 1;
        let k = self.line(runner, start);
        if k == LineKind::Unparsed {
            self.tally.unparsed -= 1;
        }
        k
    }

    /// Reads `r` to its end, line by line
    /// ([`super::read::for_each_line_marked`]: a trailing `\r` removed;
    /// invalid UTF-8 decoded lossily; lines over [`MAX_READ_LINE`] go to
    /// [`Self::oversized_line`]). Returns the bytes read.
    pub fn read_from(&mut self, runner: &str, r: impl std::io::Read) -> std::io::Result<u64> {
        super::read::for_each_line_marked(r, |b, oversized| {
            let text = String::from_utf8_lossy(b);
            if oversized {
                self.oversized_line(runner, &text);
            } else {
                self.line(runner, &text);
            }
        })
    }

    pub fn finish(self) -> Tally {
        self.tally
    }
}

/// `since` as a point in time: `now - window`.
pub fn since_window(now: SystemTime, window: Duration) -> SystemTime {
    now.checked_sub(window).unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use termgate::logschema::msg;

    fn t(min: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + min * 60)
    }

    fn rec(level: Level, msg: &str, runner: &str, at: Option<SystemTime>) -> LogRecord {
        LogRecord {
            runner: runner.into(),
            time: at,
            level,
            msg: msg.into(),
            fields: vec![],
        }
    }

    #[test]
    fn groups_and_counts() {
        let mut tally = Tally::default();
        tally.add(&rec(Level::Info, "Job succeeded", "a", Some(t(0))), "x");
        for i in 0..7 {
            let r = rec(
                if i == 3 { Level::Error } else { Level::Warning },
                &format!("Job failed: exit code {i}"),
                if i % 2 == 0 { "a" } else { "b" },
                Some(t(10 - i)),
            );
            tally.add(&r, &format!("raw {i}"));
        }
        tally.add(
            &rec(Level::Error, msg::CHECKING_FOR_JOBS_FORBIDDEN, "a", None),
            "f",
        );
        assert_eq!(tally.lines, 9);
        assert_eq!(tally.entries.len(), 2);
        let e = &tally.entries["Job failed: exit code N"];
        assert_eq!(e.count, 7);
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.first_seen, Some(t(4)));
        assert_eq!(e.last_seen, Some(t(10)));
        assert_eq!(e.runners.len(), 2);
        assert_eq!(e.sample, "Job failed: exit code 6");
        assert_eq!(e.examples.len(), MAX_EXAMPLES);
        assert_eq!(e.examples.back().map(String::as_str), Some("raw 6"));
        assert_eq!(e.per_minute.len(), 7);
        assert!(e
            .per_minute
            .iter()
            .zip(e.per_minute.iter().skip(1))
            .all(|(a, b)| a.0 < b.0));

        let top = tally.top(10, SortBy::Count);
        assert_eq!(top[0].fingerprint, "Job failed: exit code N");
        let top = tally.top(1, SortBy::LastSeen);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].fingerprint, "Job failed: exit code N");

        let recent = tally.since(t(8), SortBy::Count);
        assert_eq!(recent.len(), 2, "untimed entries are kept");
        let jf = recent
            .iter()
            .find(|e| e.fingerprint.starts_with("Job"))
            .unwrap();
        assert_eq!(jf.count, 3);
        assert_eq!(jf.count_since(t(8)), 3);
        assert_eq!(e.count_since(t(11)), 0);
        assert_eq!(e.count_since(t(0)), 7);
        assert_eq!(e.trend(t(4), t(11), 7), vec![1; 7]);
    }

    #[test]
    fn window_and_entries_are_bounded() {
        let mut tally = Tally::default();
        for i in 0..(MAX_ENTRIES + 10) {
            tally.add(
                &rec(
                    Level::Error,
                    &format!("distinct {}", "x".repeat(i % 50) + &"y".repeat(i / 50)),
                    "a",
                    None,
                ),
                "",
            );
        }
        assert_eq!(tally.entries.len(), MAX_ENTRIES + 1);
        assert!(tally.entries.contains_key(OTHER));
        let mut q = Default::default();
        for m in 0..(TREND_MINUTES * 2) {
            bump(&mut q, m);
        }
        bump(&mut q, 5); // too old
        assert_eq!(q.len() as u64, TREND_MINUTES + 1);
    }

    #[test]
    fn tallier_on_wrapped_fixture() {
        let text = std::fs::read_to_string(
            crate::logs::fixtures_dir().join("gitlab-runner-real-wrapped.log"),
        )
        .unwrap();
        let mut tl = Tallier::new();
        for line in text.lines() {
            tl.line("w", line);
        }
        let tally = tl.finish();
        assert_eq!(tally.lines, 63);
        assert_eq!(tally.unparsed, 0);
        let sys = &tally.entries["Job failed (system failure): panic: runtime error: invalid memory address or nil pointer dereference"];
        assert_eq!(sys.count, 2);
        assert!(
            sys.examples[0]
                .ends_with("\n  duration_s=62.01549636 job=34991 project=25 runner=i5hxLjcN"),
            "{:?}",
            sys.examples[0]
        );
        assert_eq!(tally.entries[msg::CHECKING_FOR_JOBS_FORBIDDEN].count, 5);
        assert_eq!(
            tally.entries["Problem while reading command output"].count,
            2
        );
        assert!(tally.entries[msg::CHECKING_FOR_JOBS_FORBIDDEN]
            .last_seen
            .is_some());
        // No ESC bytes reach examples.
        assert!(tally
            .entries
            .values()
            .all(|e| e.examples.iter().all(|x| !x.contains('\x1b'))));
    }

    #[test]
    fn tallier_since() {
        let mut tl = Tallier::new().with_since(Some(t(5)));
        let line = |m: u64, code: u32| {
            let d: chrono::DateTime<chrono::Utc> = t(m).into();
            format!(
                r#"{{"level":"error","msg":"exit {code}","time":"{}"}}"#,
                d.to_rfc3339()
            )
        };
        for m in 0..10 {
            tl.line("a", &line(m, 1));
        }
        tl.line("a", "ERROR: no time here");
        let tally = tl.finish();
        assert_eq!(tally.entries["exit N"].count, 5);
        assert_eq!(tally.entries["no time here"].count, 1);
        assert_eq!(tally.lines, 11);
    }

    #[test]
    fn read_from_splits_lines() {
        let mut data = b"ERROR: one\r\nWARNING: two \xff\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * MAX_READ_LINE + 7));
        data.extend(b"\nERROR: three");
        let mut tl = Tallier::new();
        // A reader that returns small and odd-sized pieces.
        struct Dribble<'a>(&'a [u8], usize);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                self.1 = self.1 % 7919 + 1;
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let n = tl.read_from("r", Dribble(&data, 0)).unwrap();
        assert_eq!(n, data.len() as u64);
        let tally = tl.finish();
        assert_eq!(tally.lines, 4);
        assert_eq!((tally.oversized, tally.unparsed), (1, 0));
        assert!(tally.entries.contains_key("one"));
        assert!(tally.entries.contains_key("two \u{FFFD}"));
        assert!(tally.entries.contains_key("three"));
    }

    #[test]
    fn an_oversized_error_is_counted_as_oversized_and_still_tallied() {
        let mut data = b"level=error msg=\"Job failed: huge\" payload=".to_vec();
        data.extend(std::iter::repeat_n(b'p', MAX_READ_LINE + 1));
        data.extend(b"\n{\"level\":\"error\",\"msg\":\"cut\",\"x\":\"");
        data.extend(std::iter::repeat_n(b'q', 2 * MAX_READ_LINE));
        data.extend(b"\"}\nERROR: after\n");
        let mut tl = Tallier::new();
        tl.read_from("r", &data[..]).unwrap();
        let tally = tl.finish();
        assert_eq!(tally.lines, 3);
        assert_eq!(tally.oversized, 2, "both long lines are counted");
        assert_eq!(tally.unparsed, 0, "oversized lines are not also unparsed");
        assert_eq!(tally.entries["Job failed: huge"].count, 1);
        assert_eq!(tally.entries["after"].count, 1);
    }

    proptest! {
        #[test]
        fn counts_add_up(lines in proptest::collection::vec("(ERROR: |WARNING: |FATAL: |)[a-z0-9 ]{0,20}|\\PC{0,30}", 0..60)) {
            let mut tl = Tallier::new();
            let mut errors = 0u64;
            for l in &lines {
                if let LineKind::Record(lv) = tl.line("r", l) {
                    if lv >= Level::Warning { errors += 1; }
                }
            }
            let tally = tl.finish();
            prop_assert_eq!(tally.lines, lines.len() as u64);
            prop_assert_eq!(tally.entries.values().map(|e| e.count).sum::<u64>(), errors);
            prop_assert!(tally.entries.values().all(|e| e.examples.len() <= MAX_EXAMPLES));
        }
    }
}
