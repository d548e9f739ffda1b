//! The report's one streaming pass over the logs.
//!
//! Files are spread over threads (largest first); each line goes through
//! the console's one parser: [`Classifier::classify`] decides its level
//! without allocating; warnings and above are parsed (message, time) and
//! fingerprinted; other lines are parsed in full only when they hold one of
//! the [`NEEDLES`] (session events, job results, starts and stops), found in
//! one pass by an Aho-Corasick automaton. Everything lands in a per-runner
//! [`Agg`] whose size depends on the period and the number of distinct
//! fingerprints, never on the input's size.
//!
//! Times: a record without its own timestamp takes that of the last record
//! before it in its file (upstream's multi-line entries, journald lines);
//! one with none before it is "untimed": counted in the period's totals and
//! fingerprints, in no day.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use aho_corasick::AhoCorasick;
use termgate::logschema::{self as schema, event, msg, Level};

use super::{unix_ms, PeriodIx, Window};
use crate::logs::fingerprint::fingerprint;
use crate::logs::parse::{self, Classifier, LineKind};
use crate::logs::read::{for_each_line, open_log};
use crate::logs::tally::{MAX_ENTRIES, OTHER};
use crate::tally_cmd::LogFile;
use crate::text::clip;

/// Upstream's and termgate's first line of a run.
pub const START_PREFIX: &str = msg::STARTING_MULTI_RUNNER_PREFIX;

/// Substrings of the lines read in full besides warnings and above.
pub const NEEDLES: [&str; 9] = [
    event::TERMINAL_CONNECTED,
    event::TERMINAL_DISCONNECTED,
    event::TERMINAL_REJECTED,
    event::OPERATOR_ATTACHED,
    msg::JOB_SUCCEEDED,
    "Job failed",
    START_PREFIX,
    msg::ALL_WORKERS_STOPPED,
    msg::CAN_EXIT_NOW,
];

/// Finds any of the [`NEEDLES`] in a line: the SIMD "Teddy" searcher where
/// the CPU has it (several GB/s), else an Aho-Corasick automaton.
pub struct Needles {
    packed: Option<aho_corasick::packed::Searcher>,
    ac: AhoCorasick,
}

impl Needles {
    pub fn new() -> anyhow::Result<Needles> {
        Ok(Needles {
            packed: aho_corasick::packed::Config::new()
                .builder()
                .extend(NEEDLES)
                .build(),
            ac: AhoCorasick::new(NEEDLES)?,
        })
    }

    pub fn is_match(&self, s: &str) -> bool {
        match &self.packed {
            Some(p) => p.find(s).is_some(),
            None => self.ac.is_match(s),
        }
    }
}

/// Most lifecycle events (starts, stops) kept per runner.
pub const MAX_LIFECYCLE: usize = 10_000;
/// Longest example kept, in bytes.
pub const MAX_EXAMPLE: usize = 1024;

const DAY_MS: i64 = 86_400_000;

/// Progress on stderr while reading (hidden when stderr is not a terminal).
#[derive(Clone)]
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// A bar on stderr when it is a terminal, else nothing.
    pub fn stderr() -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(5),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("reading logs");
        Progress(Some(bar))
    }

    pub fn hidden() -> Progress {
        Progress(None)
    }

    fn start(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }

    fn add(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// A warning-or-above fingerprint of one runner.
#[derive(Debug, Clone)]
pub struct FpAgg {
    pub level: Level,
    pub count: [u64; 2],
    /// Current-period occurrences per day.
    /// `(day, count)`, days in the order first seen: sparse, so a long
    /// period costs only the days a fingerprint occurs on.
    pub per_day: Vec<(u32, u64)>,
    pub first: [Option<i64>; 2],
    pub last: [Option<i64>; 2],
    /// The latest raw line (of the current period when there is one), and
    /// its period and time.
    pub example: String,
    pub example_at: Option<(usize, i64)>,
}

/// Terminal sessions of one runner.
#[derive(Debug, Clone, Default)]
pub struct SessionAgg {
    pub events_seen: bool,
    pub started: [u64; 2],
    pub ended: [u64; 2],
    /// Durations in tenths of a second → sessions.
    pub durations: [BTreeMap<u64, u64>; 2],
    pub closes: [HashMap<String, u64>; 2],
    pub rejections: [HashMap<String, u64>; 2],
    pub attaches: [HashMap<String, u64>; 2],
    pub operators: [HashMap<String, u64>; 2],
    pub concurrency: Concurrency,
}

/// Connects (+1) and disconnects (−1) over both periods, in hour blocks
/// allocated when used; what came before as one sum. A block keeps each
/// event to the millisecond (a session shorter than a second still counts)
/// up to [`MAX_EXACT_EVENTS`], then folds into per-second net changes, so
/// memory stays bounded by the period, not by the number of sessions.
#[derive(Debug, Clone, Default)]
pub struct Concurrency {
    pub before: i64,
    pub blocks: BTreeMap<i64, HourBlock>,
}

/// Events an hour keeps to the millisecond before folding into seconds.
pub const MAX_EXACT_EVENTS: usize = 20_000;

#[derive(Debug, Clone)]
pub enum HourBlock {
    /// `(ms into the hour, change)`, unsorted.
    Exact(Vec<(u32, i32)>),
    /// Net change per second of the hour.
    Seconds(Box<[i32]>),
}

impl HourBlock {
    fn add(&mut self, ms: u32, d: i32) {
        match self {
            HourBlock::Exact(v) => {
                v.push((ms, d));
                if v.len() > MAX_EXACT_EVENTS {
                    self.fold();
                }
            }
            HourBlock::Seconds(a) => {
                if let Some(c) = a.get_mut((ms / 1000) as usize) {
                    *c += d;
                }
            }
        }
    }

    /// To per-second net changes.
    fn fold(&mut self) {
        if let HourBlock::Exact(v) = self {
            let mut a = vec![0i32; 3600].into_boxed_slice();
            for (ms, d) in v.iter() {
                if let Some(c) = a.get_mut((ms / 1000) as usize) {
                    *c += d;
                }
            }
            *self = HourBlock::Seconds(a);
        }
    }

    fn merge(&mut self, o: HourBlock) {
        match (&mut *self, o) {
            (HourBlock::Exact(a), HourBlock::Exact(b)) => {
                a.extend(b);
                if a.len() > MAX_EXACT_EVENTS {
                    self.fold();
                }
            }
            (_, mut b) => {
                self.fold();
                b.fold();
                if let (HourBlock::Seconds(a), HourBlock::Seconds(b)) = (self, b) {
                    a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += y);
                }
            }
        }
    }

    /// The changes in time order, `(ms into the hour, change)`; at the
    /// same millisecond, disconnects first (no peak is made up).
    fn ordered(&self) -> Vec<(u32, i32)> {
        match self {
            HourBlock::Exact(v) => {
                let mut v = v.clone();
                v.sort_unstable();
                v
            }
            HourBlock::Seconds(a) => a
                .iter()
                .enumerate()
                .filter(|(_, d)| **d != 0)
                .map(|(i, d)| (i as u32 * 1000, *d))
                .collect(),
        }
    }
}

impl Concurrency {
    fn add(&mut self, w: &Window, t: i64, d: i32) {
        if t < w.prev_from {
            self.before += i64::from(d);
            return;
        }
        if t >= w.to {
            return;
        }
        let off = t - w.prev_from;
        let ms = u32::try_from(off % 3_600_000).unwrap_or(0);
        self.blocks
            .entry(off / 3_600_000)
            .or_insert_with(|| HourBlock::Exact(Vec::new()))
            .add(ms, d);
    }

    fn merge(&mut self, o: Concurrency) {
        self.before += o.before;
        for (k, v) in o.blocks {
            match self.blocks.get_mut(&k) {
                Some(b) => b.merge(v),
                None => {
                    self.blocks.insert(k, v);
                }
            }
        }
    }

    /// Per period: the most terminals connected at once and the first
    /// second (Unix ms) it was reached; `None` when none was. Sessions
    /// open across a period's start count from its first second (the
    /// level in a second is the level after that second's changes). When
    /// the deltas dip below zero (the logs start while sessions are open),
    /// the deepest dip is taken as the number open at the start.
    pub fn peaks(&self, w: &Window) -> [Option<(u64, i64)>; 2] {
        let mut level = self.before;
        let mut min = level.min(0);
        let mut peaks: [Option<(i64, i64)>; 2] = [None, None];
        let starts = [
            (PeriodIx::Previous, w.prev_from),
            (PeriodIx::Current, w.from),
        ];
        // Before the first change after a period's start: the level it
        // carried in is its level from its start.
        let carry = |peaks: &mut [Option<(i64, i64)>; 2], before: i64, level: i64| {
            for (p, start) in starts {
                let slot = &mut peaks[p as usize];
                if start < before && slot.is_none() {
                    *slot = Some((level, start));
                }
            }
        };
        for (h, b) in &self.blocks {
            for (ms, d) in b.ordered() {
                let t = w.prev_from + h * 3_600_000 + i64::from(ms);
                carry(&mut peaks, t, level);
                level += i64::from(d);
                min = min.min(level);
                if let Some(p) = w.place(t) {
                    let slot = &mut peaks[p as usize];
                    if slot.is_none_or(|(c, _)| level > c) {
                        *slot = Some((level, t));
                    }
                }
            }
        }
        carry(&mut peaks, i64::MAX, level);
        peaks.map(|p| {
            p.and_then(|(c, t)| {
                let n = (c - min).max(0) as u64;
                (n > 0).then_some((n, t))
            })
        })
    }
}

/// Jobs of one runner.
#[derive(Debug, Clone, Default)]
pub struct JobAgg {
    /// `[succeeded, failed, system_failure]` per period.
    pub results: [[u64; 3]; 2],
    pub failure_reasons: [HashMap<String, u64>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Life {
    Start,
    CleanStop,
}

/// Per-day counts of the current period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayAgg {
    pub warnings: u64,
    pub errors: u64,
    pub sessions: u64,
    pub jobs: u64,
    pub job_failures: u64,
}

/// Everything one runner's logs said.
#[derive(Debug, Clone, Default)]
pub struct Agg {
    pub files: u64,
    pub gzip_files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub unparsed: u64,
    pub untimed: u64,
    pub outside: u64,
    pub read_errors: Vec<String>,
    pub runner_names: HashMap<String, u64>,
    pub warnings: [u64; 2],
    pub errors: [u64; 2],
    pub fatal: [u64; 2],
    pub days: Vec<DayAgg>,
    pub fps: HashMap<String, FpAgg>,
    pub sessions: SessionAgg,
    pub jobs: JobAgg,
    /// `(time, event)`; untimed starts are counted in `untimed_starts`.
    pub lifecycle: Vec<(i64, Life)>,
    pub untimed_starts: u64,
}

fn add_map(a: &mut HashMap<String, u64>, b: HashMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k).or_default() += v;
    }
}

pub(super) fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.max(b)
}

impl Agg {
    pub fn merge(&mut self, o: Agg) {
        self.files += o.files;
        self.gzip_files += o.gzip_files;
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.unparsed += o.unparsed;
        self.untimed += o.untimed;
        self.outside += o.outside;
        self.read_errors.extend(o.read_errors);
        add_map(&mut self.runner_names, o.runner_names);
        for p in 0..2 {
            self.warnings[p] += o.warnings[p];
            self.errors[p] += o.errors[p];
            self.fatal[p] += o.fatal[p];
        }
        if self.days.len() < o.days.len() {
            self.days.resize(o.days.len(), DayAgg::default());
        }
        for (a, b) in self.days.iter_mut().zip(o.days) {
            a.warnings += b.warnings;
            a.errors += b.errors;
            a.sessions += b.sessions;
            a.jobs += b.jobs;
            a.job_failures += b.job_failures;
        }
        for (k, f) in o.fps {
            let key = if self.fps.contains_key(&k) || self.fps.len() < MAX_ENTRIES {
                k
            } else {
                OTHER.to_owned()
            };
            match self.fps.get_mut(&key) {
                None => {
                    self.fps.insert(key, f);
                }
                Some(e) => {
                    e.level = e.level.max(f.level);
                    for p in 0..2 {
                        e.count[p] += f.count[p];
                        e.first[p] = min_opt(e.first[p], f.first[p]);
                        e.last[p] = max_opt(e.last[p], f.last[p]);
                    }
                    for (d, n) in f.per_day {
                        bump_day(&mut e.per_day, d, n);
                    }
                    if better_example(f.example_at, e.example_at) {
                        e.example = f.example;
                        e.example_at = f.example_at;
                    }
                }
            }
        }
        let s = &mut self.sessions;
        let os = o.sessions;
        s.events_seen |= os.events_seen;
        for (p, (((((dur, closes), rej), att), ops), (st, en))) in os
            .durations
            .into_iter()
            .zip(os.closes)
            .zip(os.rejections)
            .zip(os.attaches)
            .zip(os.operators)
            .zip(os.started.into_iter().zip(os.ended))
            .enumerate()
        {
            s.started[p] += st;
            s.ended[p] += en;
            for (k, v) in dur {
                *s.durations[p].entry(k).or_default() += v;
            }
            add_map(&mut s.closes[p], closes);
            add_map(&mut s.rejections[p], rej);
            add_map(&mut s.attaches[p], att);
            add_map(&mut s.operators[p], ops);
        }
        s.concurrency.merge(os.concurrency);
        for (p, (r, fr)) in o
            .jobs
            .results
            .into_iter()
            .zip(o.jobs.failure_reasons)
            .enumerate()
        {
            for (a, b) in self.jobs.results[p].iter_mut().zip(r) {
                *a += b;
            }
            add_map(&mut self.jobs.failure_reasons[p], fr);
        }
        let room = MAX_LIFECYCLE.saturating_sub(self.lifecycle.len());
        self.lifecycle.extend(o.lifecycle.into_iter().take(room));
        self.untimed_starts += o.untimed_starts;
    }
}

/// Adds `n` to day `d` of a sparse per-day list. Lines come in time order,
/// so the day is nearly always the last one: searched from the end.
fn bump_day(v: &mut Vec<(u32, u64)>, d: u32, n: u64) {
    match v.iter_mut().rev().find(|(x, _)| *x == d) {
        Some((_, c)) => *c += n,
        None => v.push((d, n)),
    }
}

/// Prefer an example of the current period, then the latest.
pub(super) fn better_example(new: Option<(usize, i64)>, old: Option<(usize, i64)>) -> bool {
    match (new, old) {
        (Some((np, nt)), Some((op, ot))) => np < op || (np == op && nt > ot),
        (Some(_), None) => true,
        _ => false,
    }
}

/// The pass's result: one aggregate per runner name.
#[derive(Debug, Default)]
pub struct Scanned {
    pub runners: BTreeMap<String, Agg>,
    pub window: Option<Window>,
}

/// The report's days: the UTC midnight before `from`, and how many days
/// touch `[from, to)`.
pub fn days_of(w: &Window) -> (i64, usize) {
    let day0 = w.from.div_euclid(DAY_MS) * DAY_MS;
    let n = (w.to - day0 + DAY_MS - 1).div_euclid(DAY_MS);
    (day0, usize::try_from(n).unwrap_or(0))
}

/// Reads one file into an aggregate.
struct FileScan<'a> {
    agg: Agg,
    window: Window,
    day0: i64,
    ndays: usize,
    classifier: Classifier,
    needles: &'a Needles,
    last_time: Option<i64>,
    now: SystemTime,
}

fn field<'r>(rec: &'r crate::model::LogRecord, key: &str) -> Option<&'r str> {
    rec.fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl FileScan<'_> {
    fn line(&mut self, b: &[u8]) {
        self.agg.lines += 1;
        let owned;
        let s = match std::str::from_utf8(b) {
            Ok(s) => s,
            Err(_) => {
                owned = String::from_utf8_lossy(b);
                &owned
            }
        };
        let level = match self.classifier.classify(s) {
            LineKind::Record(l) => l,
            LineKind::Unparsed => {
                self.agg.unparsed += 1;
                return;
            }
            LineKind::Blank | LineKind::Continuation => return,
        };
        let interesting = self.needles.is_match(s);
        if level < Level::Warning && !interesting {
            return;
        }
        let rec = if interesting {
            parse::parse_line_at("", s, self.now)
        } else {
            parse::parse_line_lite("", s, self.now)
        };
        let Some(rec) = rec else { return };
        let t = match rec.time.map(unix_ms) {
            Some(t) => {
                self.last_time = Some(t);
                Some(t)
            }
            None => self.last_time,
        };
        // Sessions open across the period's start count from their connect.
        if interesting {
            if let (Some(t), Some(ev)) = (t, field(&rec, schema::EVENT)) {
                match ev {
                    event::TERMINAL_CONNECTED => {
                        self.agg.sessions.concurrency.add(&self.window, t, 1);
                    }
                    event::TERMINAL_DISCONNECTED => {
                        self.agg.sessions.concurrency.add(&self.window, t, -1);
                    }
                    _ => {}
                }
            }
            if let Some(n) = field(&rec, schema::RUNNER_NAME) {
                if let Some(c) = self.agg.runner_names.get_mut(n) {
                    *c += 1;
                } else {
                    self.agg.runner_names.insert(n.to_owned(), 1);
                }
            }
        }
        let (p, day) = match t {
            None => {
                self.agg.untimed += 1;
                (PeriodIx::Current, None)
            }
            Some(t) => match self.window.place(t) {
                None => {
                    self.agg.outside += 1;
                    if interesting && rec.msg.starts_with(START_PREFIX) {
                        self.life(t, Life::Start);
                    } else if interesting && is_clean_stop(&rec.msg) {
                        self.life(t, Life::CleanStop);
                    }
                    return;
                }
                Some(p) => (p, (p == PeriodIx::Current).then(|| self.day(t)).flatten()),
            },
        };
        let pi = p as usize;
        if level >= Level::Warning {
            self.problem(&rec, s, pi, day, t);
        }
        if interesting {
            self.event(&rec, pi, day, t);
        }
    }

    fn day(&self, t: i64) -> Option<usize> {
        usize::try_from((t - self.day0).div_euclid(DAY_MS))
            .ok()
            .filter(|d| *d < self.ndays)
    }

    fn life(&mut self, t: i64, l: Life) {
        if self.agg.lifecycle.len() < MAX_LIFECYCLE {
            self.agg.lifecycle.push((t, l));
        }
    }

    fn problem(
        &mut self,
        rec: &crate::model::LogRecord,
        raw: &str,
        p: usize,
        day: Option<usize>,
        t: Option<i64>,
    ) {
        let error = rec.level >= Level::Error;
        if error {
            self.agg.errors[p] += 1;
        } else {
            self.agg.warnings[p] += 1;
        }
        if rec.level >= Level::Fatal {
            self.agg.fatal[p] += 1;
        }
        if let Some(d) = day.and_then(|d| self.agg.days.get_mut(d)) {
            if error {
                d.errors += 1;
            } else {
                d.warnings += 1;
            }
        }
        let mut fp = fingerprint(&rec.msg);
        if !self.agg.fps.contains_key(&fp) && self.agg.fps.len() >= MAX_ENTRIES {
            fp = OTHER.to_owned();
        }
        let e = self.agg.fps.entry(fp).or_insert_with(|| FpAgg {
            level: rec.level,
            count: [0; 2],
            per_day: Vec::new(),
            first: [None; 2],
            last: [None; 2],
            example: String::new(),
            example_at: None,
        });
        e.level = e.level.max(rec.level);
        e.count[p] += 1;
        if let Some(d) = day.and_then(|d| u32::try_from(d).ok()) {
            bump_day(&mut e.per_day, d, 1);
        }
        e.first[p] = min_opt(e.first[p], t);
        e.last[p] = max_opt(e.last[p], t);
        let at = Some((p, t.unwrap_or(i64::MIN)));
        if e.example.is_empty() || better_example(at, e.example_at) {
            e.example.clear();
            e.example.push_str(clip(raw, MAX_EXAMPLE));
            e.example_at = at;
        }
    }

    fn event(
        &mut self,
        rec: &crate::model::LogRecord,
        p: usize,
        day: Option<usize>,
        t: Option<i64>,
    ) {
        let a = &mut self.agg;
        if let Some(ev) = field(rec, schema::EVENT) {
            let s = &mut a.sessions;
            let reason = || field(rec, schema::REASON).unwrap_or("unknown").to_owned();
            match ev {
                event::TERMINAL_CONNECTED => {
                    s.events_seen = true;
                    s.started[p] += 1;
                    if let Some(d) = day.and_then(|d| a.days.get_mut(d)) {
                        d.sessions += 1;
                    }
                }
                event::TERMINAL_DISCONNECTED => {
                    s.events_seen = true;
                    s.ended[p] += 1;
                    *s.closes[p].entry(reason()).or_default() += 1;
                    if let Some(d) = field(rec, schema::DURATION_S)
                        .and_then(|d| d.parse::<f64>().ok())
                        .filter(|d| d.is_finite() && *d >= 0.0)
                    {
                        *s.durations[p].entry((d * 10.0).round() as u64).or_default() += 1;
                    }
                }
                event::TERMINAL_REJECTED => {
                    s.events_seen = true;
                    let n = field(rec, schema::REFUSED)
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(1);
                    *s.rejections[p].entry(reason()).or_default() += n;
                }
                event::OPERATOR_ATTACHED => {
                    s.events_seen = true;
                    let mode = field(rec, schema::MODE).unwrap_or("unknown").to_owned();
                    *s.attaches[p].entry(mode).or_default() += 1;
                    let op = field(rec, schema::OPERATOR).unwrap_or("unknown").to_owned();
                    *s.operators[p].entry(op).or_default() += 1;
                }
                _ => {}
            }
            return;
        }
        let m = rec.msg.as_str();
        let job = if m == msg::JOB_SUCCEEDED {
            Some((0, None))
        } else if let Some(rest) = m.strip_prefix(msg::JOB_FAILED_SYSTEM_PREFIX) {
            Some((2, Some(rest)))
        } else {
            m.strip_prefix(msg::JOB_FAILED_PREFIX)
                .map(|rest| (1, Some(rest)))
        };
        if let Some((i, rest)) = job {
            a.jobs.results[p][i] += 1;
            if let Some(d) = day.and_then(|d| a.days.get_mut(d)) {
                d.jobs += 1;
                if i > 0 {
                    d.job_failures += 1;
                }
            }
            if let Some(rest) = rest {
                let reason = match field(rec, schema::FAILURE_REASON) {
                    Some(r) if !r.is_empty() => r.to_owned(),
                    _ => fingerprint(rest),
                };
                *a.jobs.failure_reasons[p].entry(reason).or_default() += 1;
            }
            return;
        }
        if m.starts_with(START_PREFIX) {
            match t {
                Some(t) => self.life(t, Life::Start),
                None => a.untimed_starts += 1,
            }
        } else if is_clean_stop(m) {
            if let Some(t) = t {
                self.life(t, Life::CleanStop);
            }
        }
    }
}

fn is_clean_stop(m: &str) -> bool {
    m == msg::ALL_WORKERS_STOPPED || m == msg::CAN_EXIT_NOW
}

/// Reads every file once, over `threads` threads, into per-runner
/// aggregates. A file that cannot be read to its end is listed in its
/// runner's `read_errors`; what was read of it counts.
pub fn scan(
    files: &[LogFile],
    window: Window,
    threads: usize,
    progress: Progress,
) -> anyhow::Result<Scanned> {
    let needles = Needles::new()?;
    let (day0, ndays) = days_of(&window);
    let mut order: Vec<(u64, usize)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (std::fs::metadata(&f.path).map_or(0, |m| m.len()), i))
        .collect();
    progress.start(order.iter().map(|(n, _)| n).sum());
    // Largest first, so the last file to finish is a small one.
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let queue = Mutex::new(order.into_iter().map(|(_, i)| i).collect::<Vec<_>>());
    let now = SystemTime::now();
    // Group key → aggregate; per thread, merged at the end.
    type Groups = HashMap<String, Agg>;
    let run = || -> Groups {
        let mut groups = Groups::new();
        loop {
            let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
            // `pop` takes from the end: the queue is reversed below.
            let Some(i) = next else { break };
            let Some(f) = files.get(i) else { continue };
            let agg = scan_file(f, window, day0, ndays, &needles, now, &progress);
            groups.entry(f.runner.clone()).or_default().merge(agg);
        }
        groups
    };
    if let Ok(mut q) = queue.lock() {
        q.reverse();
    }
    let parts: Vec<Groups> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1).min(files.len().max(1)))
            .map(|_| s.spawn(run))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    progress.finish();
    let mut groups: BTreeMap<String, Agg> = BTreeMap::new();
    for part in parts {
        for (k, a) in part {
            groups.entry(k).or_default().merge(a);
        }
    }
    // Name each group: NAME= if given, else its logs' most common
    // runner_name, else the file name.
    let named: std::collections::HashSet<&str> = files
        .iter()
        .filter(|f| f.named)
        .map(|f| f.runner.as_str())
        .collect();
    let mut runners: BTreeMap<String, Agg> = BTreeMap::new();
    for (key, mut agg) in groups {
        if agg.days.len() < ndays {
            agg.days.resize(ndays, DayAgg::default());
        }
        let name = if named.contains(key.as_str()) {
            key
        } else {
            agg.runner_names
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map_or(key, |(n, _)| n.clone())
        };
        runners.entry(name).or_default().merge(agg);
    }
    Ok(Scanned {
        runners,
        window: Some(window),
    })
}

fn scan_file(
    f: &LogFile,
    window: Window,
    day0: i64,
    ndays: usize,
    needles: &Needles,
    now: SystemTime,
    progress: &Progress,
) -> Agg {
    let mut fs = FileScan {
        agg: Agg {
            days: vec![DayAgg::default(); ndays],
            files: 1,
            ..Agg::default()
        },
        window,
        day0,
        ndays,
        classifier: Classifier::new(),
        needles,
        last_time: None,
        now,
    };
    let bar = progress.clone();
    // Progress in steps of 1 MiB of file bytes.
    let mut pending = 0u64;
    let opened = open_log(&f.path, move |n| {
        pending += n as u64;
        if pending >= 1 << 20 || n == 0 {
            bar.add(pending);
            pending = 0;
        }
    });
    match opened {
        Err(e) => fs
            .agg
            .read_errors
            .push(format!("{}: {e}", f.path.display())),
        Ok((reader, gz)) => {
            fs.agg.gzip_files += u64::from(gz);
            match for_each_line(reader, |b| fs.line(b)) {
                Ok(n) => fs.agg.bytes += n,
                Err(e) => {
                    let what = if gz { "gzip stream" } else { "file" };
                    fs.agg.read_errors.push(format!(
                        "{}: {what} unreadable after {} lines: {e}",
                        f.path.display(),
                        fs.agg.lines
                    ));
                }
            }
        }
    }
    fs.agg
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn w() -> Window {
        // Previous: [0, 24h), current: [24h, 48h).
        Window {
            prev_from: 0,
            from: 24 * H,
            to: 48 * H,
        }
    }

    #[test]
    fn peaks_count_open_sessions_and_correct_for_a_late_start() {
        let w = w();
        let mut c = Concurrency::default();
        // One session open from before the window, into the current period.
        c.add(&w, -5 * H, 1);
        c.add(&w, 25 * H, -1);
        // Previous period: two overlapping.
        c.add(&w, H, 1);
        c.add(&w, H + 1000, 1);
        c.add(&w, 2 * H, -1);
        c.add(&w, 2 * H, -1);
        // Current: three at once at 30h.
        for i in 0..3 {
            c.add(&w, 30 * H + i * 1000, 1);
        }
        for _ in 0..3 {
            c.add(&w, 31 * H, -1);
        }
        c.add(&w, 48 * H, 1); // at `to`: outside
        let [cur, prev] = c.peaks(&w);
        assert_eq!(
            prev,
            Some((3, H + 1000)),
            "two plus the one open since before"
        );
        assert_eq!(cur, Some((3, 30 * H + 2000)));
        // Logs that start mid-session: a disconnect without its connect.
        let mut d = Concurrency::default();
        d.add(&w, 25 * H, -1);
        d.add(&w, 26 * H, 1);
        d.add(&w, 26 * H + 1000, 1);
        assert_eq!(d.peaks(&w)[0], Some((2, 26 * H + 1000)));
        // Merging per-file deltas adds them.
        let mut m = Concurrency::default();
        m.merge(c.clone());
        m.merge(c);
        assert_eq!(m.peaks(&w)[0].map(|p| p.0), Some(6));
    }

    #[test]
    fn days_cover_partial_days() {
        let w = Window {
            prev_from: 0,
            from: DAY_MS + 5 * H,
            to: 3 * DAY_MS + H,
        };
        assert_eq!(days_of(&w), (DAY_MS, 3));
        let w = Window {
            prev_from: 0,
            from: DAY_MS,
            to: 2 * DAY_MS,
        };
        assert_eq!(days_of(&w), (DAY_MS, 1));
    }

    fn scan_text(text: &str, w: Window) -> Agg {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.log");
        std::fs::write(&p, text).unwrap();
        let files = vec![LogFile {
            runner: "r".into(),
            named: true,
            path: p,
        }];
        let mut s = scan(&files, w, 1, Progress::hidden()).unwrap();
        s.runners.remove("r").unwrap()
    }

    fn at(h: i64) -> String {
        super::super::build::rfc3339_ms(h * H)
    }

    #[test]
    fn lines_land_in_their_period_day_and_fingerprint() {
        let text = [
            format!(r#"{{"level":"error","msg":"container 346119271220 not found","time":"{}"}}"#, at(30)),
            format!(r#"{{"level":"error","msg":"container d20f8b84087c not found","time":"{}"}}"#, at(2)),
            format!(r#"{{"level":"warning","msg":"slow","time":"{}"}}"#, at(47)),
            // Untimed after a timed record: takes its time.
            "WARNING: no time of its own".to_owned(),
            format!(r#"{{"event":"terminal_rejected","level":"warning","msg":"x","reason":"over_limit","refused":7,"time":"{}"}}"#, at(26)),
            format!(r#"{{"duration_s":12.34,"event":"terminal_disconnected","level":"info","msg":"Terminal disconnected","reason":"client_left","time":"{}"}}"#, at(26)),
            format!(r#"{{"failure_reason":"script_failure","level":"warning","msg":"Job failed: exit code 1","time":"{}"}}"#, at(40)),
            format!(r#"{{"level":"info","msg":"Job succeeded","time":"{}"}}"#, at(40)),
            format!(r#"{{"level":"error","msg":"late","time":"{}"}}"#, at(48)),
            "\u{1}\u{2}garbage".to_owned(),
        ]
        .join("\n");
        let a = scan_text(&text, w());
        assert_eq!(a.lines, 10);
        assert_eq!(a.unparsed, 1);
        assert_eq!(a.outside, 1);
        assert_eq!(a.untimed, 0);
        let c = &a.fps["container N not found"];
        assert_eq!(c.count, [1, 1]);
        assert_eq!(c.per_day, vec![(0, 1)]);
        assert_eq!(a.errors, [1, 1]);
        // slow, the untimed warning, the rejection, the failed job.
        assert_eq!(a.warnings, [4, 0]);
        assert_eq!(a.sessions.rejections[0]["over_limit"], 7);
        assert_eq!(a.sessions.durations[0].get(&123), Some(&1));
        assert_eq!(a.jobs.results[0], [1, 1, 0]);
        assert_eq!(a.jobs.failure_reasons[0]["script_failure"], 1);
        assert_eq!(a.days[0].jobs, 2);
        assert_eq!(a.days[0].job_failures, 1);
    }

    const S: i64 = 1000;

    fn window() -> Window {
        Window {
            prev_from: 0,
            from: 1000 * S,
            to: 2000 * S,
        }
    }

    /// Sessions as (connect, disconnect) seconds.
    fn conc(sessions: &[(i64, i64)]) -> Concurrency {
        let w = window();
        let mut c = Concurrency::default();
        for (a, b) in sessions {
            c.add(&w, a * S, 1);
            c.add(&w, b * S, -1);
        }
        c
    }

    #[test]
    fn peaks_count_sessions_open_across_the_start() {
        let w = window();
        // Three open at `from`, closing after it: 3 at `from`.
        let c = conc(&[(900, 1010), (910, 1020), (920, 1030)]);
        assert_eq!(c.peaks(&w)[0], Some((3, 1000 * S)));
        assert_eq!(c.peaks(&w)[1], Some((3, 920 * S)));
        // A higher level later wins; an equal one does not.
        let c = conc(&[(900, 1010), (1500, 1600), (1550, 1560), (1555, 1556)]);
        assert_eq!(c.peaks(&w)[0], Some((3, 1555 * S)));
        let c = conc(&[(900, 1010), (1500, 1600)]);
        assert_eq!(c.peaks(&w)[0], Some((1, 1000 * S)));
        // A change in the start's own second: the level after it.
        let c = conc(&[(900, 1000), (950, 1200)]);
        assert_eq!(c.peaks(&w)[0], Some((1, 1000 * S)));
        let c = conc(&[(900, 1200), (1000, 1100)]);
        assert_eq!(c.peaks(&w)[0], Some((2, 1000 * S)));
        // Nothing active in a period: no peak.
        let c = conc(&[(100, 200)]);
        assert_eq!(c.peaks(&w), [None, Some((1, 100 * S))]);
        assert_eq!(Concurrency::default().peaks(&w), [None, None]);
        // Sessions open before the logs begin (their disconnects only).
        let mut c = Concurrency::default();
        c.add(&w, 1100 * S, -1);
        c.add(&w, 1200 * S, -1);
        assert_eq!(c.peaks(&w)[0], Some((2, 1000 * S)));
    }

    #[test]
    fn a_session_shorter_than_a_second_counts_and_busy_hours_fold() {
        let w = window();
        let mut c = Concurrency::default();
        c.add(&w, 1500 * S + 100, 1);
        c.add(&w, 1500 * S + 600, -1);
        assert_eq!(c.peaks(&w)[0], Some((1, 1500 * S + 100)));
        // Past MAX_EXACT_EVENTS an hour folds into seconds: the net change
        // per second stays, so a longer overlap is still seen.
        let mut busy = Concurrency::default();
        for i in 0..(MAX_EXACT_EVENTS as i64 / 2 + 10) {
            busy.add(&w, 1100 * S + (i % 998), 1);
            busy.add(&w, 1100 * S + (i % 998) + 1, -1);
        }
        busy.add(&w, 1200 * S, 1);
        busy.add(&w, 1201 * S, 1);
        busy.add(&w, 1300 * S, -1);
        assert!(busy
            .blocks
            .values()
            .any(|b| matches!(b, HourBlock::Seconds(_))));
        assert_eq!(busy.peaks(&w)[0], Some((2, 1201 * S)));
        // Merging an exact hour into a folded one folds it too.
        let mut m = busy.clone();
        m.merge(c);
        assert_eq!(m.peaks(&w)[0], Some((2, 1201 * S)));
    }
}
