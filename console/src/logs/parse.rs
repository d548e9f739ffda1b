//! Parsing one log line of any format the console reads into a
//! [`LogRecord`].
//!
//! Formats, tried after removing ANSI escapes and wrapper prefixes
//! ([`super::wrap`]):
//! - JSON objects with `level` (termgate and logrus `json`; keys in any order);
//! - logrus `text`: `time="…" level=… msg="…" k=v` (Go-quoted values);
//! - logrus on a TTY: `INFO[0000] msg  k=v`;
//! - hclog (runner plugins): `2023-06-21T08:12:40.672Z [INFO]  name: msg: k=v`;
//! - upstream `runner`: optional `WARNING: `/`ERROR: `/`FATAL: `/`PANIC: `
//!   prefix (none = info), the message padded to 50 columns, then
//!   ` key=value` pairs whose values may contain spaces.
//!
//! Multi-line upstream entries: indented lines (`  job=328 project=118 …`),
//! YAML dump lines (`concurrent: 1`, `- name: …`) are
//! [`LineKind::Continuation`]: they belong to the previous record
//! ([`attach_continuation`]) and are never records of their own.
//!
//! Speed: [`Classifier::classify`] decides the kind and level of a line
//! without allocating, so callers build a full record
//! ([`parse_line`]) only for the lines they keep (the tally: warnings and
//! above). Everything is linear in the line length; messages are clipped to
//! [`MAX_MSG`] bytes and field values to [`MAX_FIELD`].

use std::time::SystemTime;

use termgate::logschema::{
    LEVEL, LEVEL_WORDS, LOGRUS_TTY_LEVELS, MSG, RUNNER_FORMAT_LEVEL_PREFIXES, TIME,
};

use super::json;
use super::wrap::{self, WrapTime};
use crate::model::{Level, LogRecord};
use crate::text::clip;

/// Longest message kept, in bytes.
pub const MAX_MSG: usize = 4096;
/// Longest field value kept, in bytes.
pub const MAX_FIELD: usize = 1024;
/// Most fields kept per record.
pub const MAX_FIELDS: usize = 64;
/// Longest key considered a field key.
const MAX_KEY: usize = 64;

/// What a line is, decided without building a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A log record with this level.
    Record(Level),
    /// Belongs to the previous record (indented fields, a config dump line).
    Continuation,
    /// Empty or only spaces (upstream prints padded empty messages).
    Blank,
    /// Not a log line of a known format.
    Unparsed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Logrus,
    Tty,
    Hclog,
    Runner,
}

/// A line whose format and level are known; the rest is parsed on demand.
#[derive(Debug, Clone, Copy)]
struct Head<'a> {
    format: Format,
    level: Level,
    /// The body after wrappers; for `Tty`, `Hclog`, `Runner` the text after
    /// the level marker; for `Json`/`Logrus` the whole body.
    rest: &'a str,
    /// For hclog, its own timestamp.
    own_time: Option<&'a str>,
    wrap_time: Option<WrapTime<'a>>,
}

/// Reusable classifier: keeps a scratch buffer for lines with ANSI escapes,
/// so classifying allocates nothing in the steady state.
#[derive(Debug, Default)]
pub struct Classifier {
    scratch: String,
}

impl Classifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Kind and level of `line` (no trailing newline needed).
    pub fn classify(&mut self, line: &str) -> LineKind {
        if memchr::memchr(0x1b, line.as_bytes()).is_some() {
            self.scratch.clear();
            wrap::strip_ansi_into(line, &mut self.scratch);
            kind(head(&self.scratch))
        } else {
            kind(head(line))
        }
    }
}

fn kind(h: Result<Head<'_>, LineKind>) -> LineKind {
    match h {
        Ok(h) => LineKind::Record(h.level),
        Err(k) => k,
    }
}

/// Kind and level of `line`; see [`Classifier`] for the allocation-free form.
pub fn classify(line: &str) -> LineKind {
    Classifier::new().classify(line)
}

/// Parses `line` from runner (source) `runner`. `None` = not a record:
/// blank, a continuation, or not a log line (see [`classify`]).
pub fn parse_line(runner: &str, line: &str) -> Option<LogRecord> {
    parse_line_at(runner, line, SystemTime::now())
}

/// [`parse_line`] with the clock used to place year-less syslog dates.
pub fn parse_line_at(runner: &str, line: &str, now: SystemTime) -> Option<LogRecord> {
    let clean = wrap::strip_ansi(line);
    let h = head(&clean).ok()?;
    Some(build(runner, h, now, true))
}

/// [`parse_line_at`] without the fields (`fields` stays empty): what the
/// tally needs, cheaper.
pub fn parse_line_lite(runner: &str, line: &str, now: SystemTime) -> Option<LogRecord> {
    let clean = wrap::strip_ansi(line);
    let h = head(&clean).ok()?;
    Some(build(runner, h, now, false))
}

/// Fields of a continuation line (`  duration_s=62.0 job=34991 …`): empty
/// for other continuation lines (config dumps).
pub fn continuation_fields(line: &str) -> Vec<(String, String)> {
    let clean = wrap::strip_ansi(line);
    let (body, _) = wrap::unwrap_prefixes(&clean);
    let t = body.trim();
    if key_eq_len(t.as_bytes(), 0).is_none() {
        return Vec::new();
    }
    runner_fields(t)
}

/// Appends the fields of continuation `line` to `rec`.
pub fn attach_continuation(rec: &mut LogRecord, line: &str) {
    for f in continuation_fields(line) {
        if rec.fields.len() >= MAX_FIELDS {
            break;
        }
        rec.fields.push(f);
    }
}

/// Level from a level word, any case, no allocation.
pub fn level_word(s: &str) -> Option<Level> {
    LEVEL_WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(s))
        .map(|(_, l)| *l)
}

/// logrus' four-letter TTY level (`INFO`, `WARN`, …).
fn tty_level(b: &[u8]) -> Option<Level> {
    LOGRUS_TTY_LEVELS
        .iter()
        .find(|(w, _)| w.as_bytes() == b)
        .map(|(_, l)| *l)
}

/// `key=` at the start of `b`.
fn starts_with_key(b: &[u8], key: &str) -> bool {
    b.starts_with(key.as_bytes()) && b.get(key.len()) == Some(&b'=')
}

/// Format and level of an ANSI-free line.
fn head(line: &str) -> Result<Head<'_>, LineKind> {
    let (body, wrap_time) = wrap::unwrap_prefixes(line);
    let body = body.trim_end();
    let b = body.as_bytes();
    let Some(&b0) = b.first() else {
        return Err(LineKind::Blank);
    };
    let mk = |format, level, rest| {
        Ok(Head {
            format,
            level,
            rest,
            own_time: None,
            wrap_time,
        })
    };
    if b0 == b' ' || b0 == b'\t' {
        let t = body.trim_start();
        if t.starts_with('{') {
            return json_level(t).map_or(Err(LineKind::Unparsed), |l| mk(Format::Json, l, t));
        }
        return Err(LineKind::Continuation);
    }
    if b0 == b'{' {
        return json_level(body).map_or(Err(LineKind::Unparsed), |l| mk(Format::Json, l, body));
    }
    if starts_with_key(b, TIME) || starts_with_key(b, LEVEL) {
        if let Some(l) = logrus_level(body) {
            return mk(Format::Logrus, l, body);
        }
    }
    if b.len() >= 5 && b[4] == b'[' {
        if let Some(l) = tty_level(&b[..4]) {
            if let Some(close) = memchr::memchr(b']', &b[5..]) {
                if b[5..5 + close].iter().all(u8::is_ascii_digit) {
                    return mk(Format::Tty, l, &body[5 + close + 1..]);
                }
            }
        }
    }
    if b0.is_ascii_digit() {
        if let Some(h) = hclog_head(body, wrap_time) {
            return Ok(h);
        }
    }
    for (p, l) in RUNNER_FORMAT_LEVEL_PREFIXES {
        if let Some(rest) = body.strip_prefix(p) {
            return mk(Format::Runner, l, rest);
        }
    }
    // `- sh`, `- name: …`: a YAML list item of a config dump.
    if b0 == b'-' && b.get(1).is_none_or(|c| *c == b' ') {
        return Err(LineKind::Continuation);
    }
    if b0.is_ascii_lowercase() && is_yaml_key_line(b) {
        return Err(LineKind::Continuation);
    }
    if has_junk(b) {
        return Err(LineKind::Unparsed);
    }
    mk(Format::Runner, Level::Info, body)
}

/// `concurrent: 1`, `sessionserver:`: a lowercase YAML key from a config dump.
fn is_yaml_key_line(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len()
        && i <= MAX_KEY
        && (b[i].is_ascii_lowercase() || b[i].is_ascii_digit() || b[i] == b'_')
    {
        i += 1;
    }
    b.get(i) == Some(&b':') && b.get(i + 1).is_none_or(|c| *c == b' ')
}

/// Control characters or U+FFFD (lossy-decoded binary): not a log line.
fn has_junk(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if (c < 0x20 && c != b'\t') || c == 0x7f {
            return true;
        }
        if c == 0xEF && b.get(i + 1) == Some(&0xBF) && b.get(i + 2) == Some(&0xBD) {
            return true;
        }
        i += 1;
    }
    false
}

fn hclog_head<'a>(body: &'a str, wrap_time: Option<WrapTime<'a>>) -> Option<Head<'a>> {
    let b = body.as_bytes();
    let n = wrap::iso_len(b)?;
    let rest = body[n..].trim_start();
    let inner = rest.strip_prefix('[')?;
    let close = inner.find(']')?;
    let level = level_word(&inner[..close])?;
    Some(Head {
        format: Format::Hclog,
        level,
        rest: inner[close + 1..].trim_start(),
        own_time: Some(&body[..n]),
        wrap_time,
    })
}

fn json_level(s: &str) -> Option<Level> {
    for (k, v) in json::members(s) {
        if k == LEVEL {
            return match v {
                json::Value::Str { raw, .. } => level_word(raw),
                json::Value::Other(_) => None,
            };
        }
    }
    None
}

fn logrus_level(s: &str) -> Option<Level> {
    Kvs::new(s)
        .find(|(k, _)| *k == LEVEL)
        .and_then(|(_, v)| level_word(v.raw))
}

fn build(runner: &str, h: Head<'_>, now: SystemTime, with_fields: bool) -> LogRecord {
    let mut rec = LogRecord {
        runner: runner.to_owned(),
        time: None,
        level: h.level,
        msg: String::new(),
        fields: Vec::new(),
    };
    match h.format {
        Format::Json => {
            for (k, v) in json::members(h.rest) {
                match k {
                    LEVEL => {}
                    MSG => rec.msg = v.to_text(MAX_MSG),
                    TIME if rec.time.is_none() => {
                        rec.time = v.plain_str().and_then(wrap::parse_iso);
                    }
                    _ if with_fields => push_field(&mut rec.fields, k, v.to_text(MAX_FIELD)),
                    _ => {}
                }
            }
        }
        Format::Logrus => {
            for (k, v) in Kvs::new(h.rest) {
                match k {
                    LEVEL => {}
                    MSG => rec.msg = v.text(MAX_MSG),
                    TIME if rec.time.is_none() => rec.time = wrap::parse_iso(v.raw),
                    _ if with_fields => push_field(&mut rec.fields, k, v.text(MAX_FIELD)),
                    _ => {}
                }
            }
        }
        Format::Tty | Format::Hclog => {
            let rest = h.rest.trim_start();
            let (msg, fields) = match fields_start(rest, h.format == Format::Hclog) {
                Some((end, start)) => (&rest[..end], &rest[start..]),
                None => (rest, ""),
            };
            let mut msg = msg.trim_end();
            if h.format == Format::Hclog {
                msg = msg.trim_end_matches(':'); // `name: msg: k=v`
            }
            rec.msg = clip(msg, MAX_MSG).to_owned();
            if with_fields {
                for (k, v) in Kvs::new(fields) {
                    push_field(&mut rec.fields, k, v.text(MAX_FIELD));
                }
            }
            rec.time = h.own_time.and_then(wrap::parse_iso);
        }
        Format::Runner => {
            let (msg, fields) = match fields_start(h.rest, false) {
                Some((end, start)) => (&h.rest[..end], &h.rest[start..]),
                None => (h.rest, ""),
            };
            rec.msg = clip(msg.trim_end(), MAX_MSG).to_owned();
            if with_fields {
                rec.fields = runner_fields(fields);
            }
        }
    }
    if rec.time.is_none() {
        rec.time = h.wrap_time.and_then(|t| t.parse(now));
    }
    rec
}

fn push_field(fields: &mut Vec<(String, String)>, k: &str, v: String) {
    if fields.len() < MAX_FIELDS {
        fields.push((clip(k, MAX_KEY).to_owned(), v));
    }
}

/// Length of `key=` at `i` (`key` made of `[A-Za-z0-9_.-]`, starting with a
/// letter or `_`), including the `=`.
fn key_eq_len(b: &[u8], i: usize) -> Option<usize> {
    let first = *b.get(i)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && j - i <= MAX_KEY {
        match b[j] {
            b'=' => return Some(j - i + 1),
            c if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-') => j += 1,
            _ => return None,
        }
    }
    None
}

/// Where the message ends and the fields start: the first run of two or more
/// spaces (one is enough with `single`) followed by `key=`.
fn fields_start(s: &str, single: bool) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr::memchr(b' ', &b[i..]) {
        let p = p + i;
        let mut q = p + 1;
        while q < b.len() && b[q] == b' ' {
            q += 1;
        }
        if (single || q - p >= 2) && key_eq_len(b, q).is_some() {
            return Some((p, q));
        }
        i = q;
    }
    None
}

/// `key=value with spaces key2=v`: upstream's runner format does not quote,
/// so a value runs until the next ` key=`.
fn runner_fields(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < MAX_FIELDS {
        let Some(kl) = key_eq_len(b, i) else { break };
        let key = &s[i..i + kl - 1];
        let v0 = i + kl;
        // Next ` key=`.
        let mut j = v0;
        let mut next = None;
        while let Some(p) = memchr::memchr(b' ', &b[j..]) {
            let p = p + j;
            let mut q = p + 1;
            while q < b.len() && b[q] == b' ' {
                q += 1;
            }
            if key_eq_len(b, q).is_some() {
                next = Some((p, q));
                break;
            }
            j = q;
        }
        let v1 = next.map_or(b.len(), |(p, _)| p);
        out.push((
            clip(key, MAX_KEY).to_owned(),
            clip(s[v0..v1].trim_end(), MAX_FIELD).to_owned(),
        ));
        match next {
            Some((_, q)) => i = q,
            None => break,
        }
    }
    out
}

/// A logrus/hclog value: raw text, and whether it was Go-quoted.
#[derive(Debug, Clone, Copy)]
struct KvVal<'a> {
    raw: &'a str,
    quoted: bool,
}

impl KvVal<'_> {
    fn text(self, max: usize) -> String {
        if self.quoted && self.raw.contains('\\') {
            go_unquote(self.raw, max)
        } else {
            clip(self.raw, max).to_owned()
        }
    }
}

/// `k=v k="quoted \" value" k=` pairs; bare words without `=` are skipped.
struct Kvs<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Kvs<'a> {
    fn new(s: &'a str) -> Self {
        Kvs { s, i: 0 }
    }
}

impl<'a> Iterator for Kvs<'a> {
    type Item = (&'a str, KvVal<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        loop {
            while self.i < b.len() && b[self.i] == b' ' {
                self.i += 1;
            }
            if self.i >= b.len() {
                return None;
            }
            let k0 = self.i;
            while self.i < b.len() && b[self.i] != b'=' && b[self.i] != b' ' {
                self.i += 1;
            }
            if b.get(self.i) != Some(&b'=') {
                continue; // a bare word
            }
            let key = &self.s[k0..self.i];
            self.i += 1;
            if b.get(self.i) == Some(&b'"') {
                let v0 = self.i + 1;
                let mut j = v0;
                let end = loop {
                    match memchr::memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
                        Some(p) if b[j + p] == b'\\' => j += p + 2,
                        Some(p) => break j + p,
                        None => break b.len(),
                    }
                };
                let end = end.min(b.len());
                self.i = (end + 1).min(b.len());
                let raw = self.s.get(v0.min(end)..end).unwrap_or("");
                return Some((key, KvVal { raw, quoted: true }));
            }
            let v0 = self.i;
            self.i = memchr::memchr(b' ', &b[v0..]).map_or(b.len(), |p| v0 + p);
            return Some((
                key,
                KvVal {
                    raw: &self.s[v0..self.i],
                    quoted: false,
                },
            ));
        }
    }
}

/// Undoes Go's `%q` quoting (`\"`, `\\`, `\n`, `\t`, `\xNN`, `\uNNNN`).
fn go_unquote(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if out.len() >= max {
            break;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                let c = u8::from_str_radix(&h, 16)
                    .ok()
                    .filter(u8::is_ascii)
                    .map(char::from);
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            Some(u @ ('u' | 'U')) => {
                let n = if u == 'u' { 4 } else { 8 };
                let h: String = chars.by_ref().take(n).collect();
                let c = u32::from_str_radix(&h, 16).ok().and_then(char::from_u32);
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;
    use termgate::logschema::{msg, BUILDS, ERROR, JOB, RUNNER, RUNNER_NAME};

    fn fixtures() -> PathBuf {
        crate::logs::fixtures_dir()
    }

    fn p(line: &str) -> LogRecord {
        parse_line("r1", line).unwrap_or_else(|| panic!("not parsed: {line:?}"))
    }

    fn f<'a>(r: &'a LogRecord, k: &str) -> Option<&'a str> {
        r.fields
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn termgate_json() {
        let r = p(
            r#"{"job":7,"level":"warning","msg":"Job failed: exit code 3","runner":"abc","runner_name":"r1","time":"2026-11-27T19:00:00.123+00:00"}"#,
        );
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.msg, "Job failed: exit code 3");
        assert_eq!(f(&r, JOB), Some("7"));
        assert_eq!(f(&r, RUNNER_NAME), Some("r1"));
        assert!(r.time.is_some());
        assert_eq!(r.runner, "r1");
    }

    #[test]
    fn logrus_json_docs() {
        let r = p(
            r#"{"builds":0,"level":"info","msg":"listen_address not defined, metrics \u0026 debug endpoints disabled","time":"2025-06-05T15:57:35+02:00"}"#,
        );
        assert_eq!(r.level, Level::Info);
        assert_eq!(
            r.msg,
            "listen_address not defined, metrics & debug endpoints disabled"
        );
        assert_eq!(r.fields, vec![(BUILDS.into(), "0".into())]);
        assert_eq!(classify(r#"{"a":1}"#), LineKind::Unparsed);
        assert_eq!(
            classify(r#"{"level":"bogus","msg":"x"}"#),
            LineKind::Unparsed
        );
        assert_eq!(classify(r#"{"level":"warn"#), LineKind::Unparsed);
    }

    #[test]
    fn logrus_text() {
        let r = p(
            r#"time="2018-08-28T07:38:30Z" level=error msg="Problem while reading command output" error="read |0: file already closed""#,
        );
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.msg, "Problem while reading command output");
        assert_eq!(f(&r, ERROR), Some("read |0: file already closed"));
        assert!(r.time.is_some());
        let r = p(r#"time="x" level=warning msg="say \"hi\"\n" k=v"#);
        assert_eq!(r.msg, "say \"hi\"\n");
        assert_eq!(f(&r, "k"), Some("v"));
    }

    #[test]
    fn tty_text() {
        let r = p(
            r#"INFO[0000] Runtime platform                              arch=amd64 os=darwin pid=37773 revision=HEAD version="development version""#,
        );
        assert_eq!(r.level, Level::Info);
        assert_eq!(r.msg, "Runtime platform");
        assert_eq!(f(&r, "version"), Some("development version"));
        assert_eq!(
            p("WARN[0000] Use sudo for system-mode:").msg,
            "Use sudo for system-mode:"
        );
        let r = p("WARN[0000] Running in user-mode.");
        assert_eq!(
            (r.level, r.msg.as_str()),
            (Level::Warning, "Running in user-mode.")
        );
        let r = p("\x1b[31mERRO\x1b[0m[0042] Checking for jobs... forbidden  runner=abc");
        assert_eq!(
            (r.level, r.msg.as_str()),
            (Level::Error, "Checking for jobs... forbidden")
        );
        assert_eq!(p("INFO[0000]").msg, "");
    }

    #[test]
    fn runner_format() {
        let r = p("WARNING: Checking for jobs... failed                runner=2K7oPJtf status=couldn't execute POST against http://192.168.168.137/api/v4/jobs/request: Post http://192.168.168.137/api/v4/jobs/request: dial tcp 192.168.168.137:80: getsockopt: connection refused");
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.msg, msg::CHECKING_FOR_JOBS_FAILED);
        assert_eq!(f(&r, RUNNER), Some("2K7oPJtf"));
        assert!(f(&r, "status").is_some_and(|s| s.ends_with("connection refused")));
        let r = p("Appending trace to coordinator...ok                 code=202 job=399659 job-log=0-281 job-status=running runner=N83zBFyfs sent-log=0-280 status=202 Accepted update-interval=3s");
        assert_eq!(r.level, Level::Info);
        assert_eq!(f(&r, "status"), Some("202 Accepted"));
        assert_eq!(f(&r, "job-status"), Some("running"));
        assert_eq!(f(&r, "update-interval"), Some("3s"));
        let r = p(
            "Starting multi-runner from /etc/gitlab-runner/config.toml...  builds=0 max_builds=0",
        );
        assert_eq!(
            r.msg,
            "Starting multi-runner from /etc/gitlab-runner/config.toml..."
        );
        let r = p("Submitting job to coordinator...ok                  bytesize=548 checksum=crc32:76dac24d code=200 job=34991 job-status= runner=i5hxLjcN update-interval=0s");
        assert_eq!(f(&r, "job-status"), Some(""));
        let r = p("ERROR: Failed to load config Near line 3 (last key parsed 'log_format'): expected value but found 'json' instead  builds=0");
        assert_eq!(r.level, Level::Error);
        assert!(r.msg.ends_with("'json' instead"));
        let r = p("WARNING: Running in user-mode.                     ");
        assert_eq!(r.msg, "Running in user-mode.");
        assert!(r.fields.is_empty());
        // ANSI colours as upstream writes them.
        let r = p("Job succeeded                  \x1b[0;m  duration\x1b[0;m=24.383583446s job\x1b[0;m=2154106 project\x1b[0;m=141 runner\x1b[0;m=cxxE2HUr");
        assert_eq!(r.msg, msg::JOB_SUCCEEDED);
        assert_eq!(f(&r, JOB), Some("2154106"));
        let r =
            p("\x1b[31;1mERROR: Checking for jobs... forbidden      \x1b[0;m  runner\x1b[0;m=x");
        assert_eq!(
            (r.level, r.msg.as_str()),
            (Level::Error, "Checking for jobs... forbidden")
        );
    }

    #[test]
    fn wrapped() {
        let r = p("hetzner-runner_1  | ERROR: Checking for jobs... forbidden               runner=J1vnM1Vx");
        assert_eq!(
            (r.level, r.msg.as_str()),
            (Level::Error, "Checking for jobs... forbidden")
        );
        let r = p("2025-01-21 16:46:59 ERROR: Checking for jobs... forbidden               runner=t3_TgbhXF status=POST https://lab.ssafy.com/api/v4/jobs/request: 403 Forbidden");
        assert_eq!(
            f(&r, "status"),
            Some("POST https://lab.ssafy.com/api/v4/jobs/request: 403 Forbidden")
        );
        assert!(r.time.is_some());
        let r = p(
            r#"<14>Jul 25 14:34:28 gitlab-runner1 gitlab-runner[850]: {"level":"warning","msg":"Checking for jobs... failed","runner":"on_Jbdre","time":"2023-07-25T14:34:28Z"}"#,
        );
        assert_eq!(
            (r.level, r.msg.as_str()),
            (Level::Warning, "Checking for jobs... failed")
        );
        let r = p("2023-06-21T08:12:41.680Z [INFO]  ready: instance=gitlab/docker-runner-autoscaler-0 took=7.820779ms");
        assert_eq!((r.level, r.msg.as_str()), (Level::Info, "ready"));
        assert_eq!(f(&r, "took"), Some("7.820779ms"));
        assert!(r.time.is_some());
        let r = p(
            r#"2023-06-21T08:12:41.680Z [WARN]  plugin.fleeting-plugin-k8s: connect info: id=x info="map[a:b c:d]" namespace=gitlab"#,
        );
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.msg, "plugin.fleeting-plugin-k8s: connect info");
        assert_eq!(f(&r, "info"), Some("map[a:b c:d]"));
    }

    #[test]
    fn continuations() {
        for l in [
            "  duration_s=62.01549636 job=34991 project=25 runner=i5hxLjcN",
            "  listenaddress: \"\"",
            "concurrent: 1",
            "sessionserver:",
            "- name: gitlab runner on docker",
            "- sh",
            "  ]; then\\n\\texec /usr/bin/bash \\nelif [ -x /bin/bash ]; then\\n\\texec /bin/bash \\nelif",
        ] {
            assert_eq!(classify(l), LineKind::Continuation, "{l}");
        }
        assert_eq!(classify(""), LineKind::Blank);
        assert_eq!(
            classify("                                                   "),
            LineKind::Blank
        );
        assert_eq!(
            classify("runner-1  |                                                    "),
            LineKind::Blank
        );
        assert_eq!(classify("\u{0}\u{1}binary"), LineKind::Unparsed);
        assert_eq!(classify("abc\u{FFFD}def"), LineKind::Unparsed);
        let mut r = p("WARNING: Job failed (system failure): panic: runtime error: invalid memory address or nil pointer dereference");
        attach_continuation(
            &mut r,
            "  duration_s=62.01549636 job=34991 project=25 runner=i5hxLjcN",
        );
        assert_eq!(f(&r, JOB), Some("34991"));
        attach_continuation(&mut r, "concurrent: 1");
        assert_eq!(r.fields.len(), 4);
    }

    #[test]
    fn huge_line_is_clipped() {
        let mut line = String::from("ERROR: ");
        line.push_str(&"x".repeat(10 << 20));
        line.push_str("  k=v");
        let t = std::time::Instant::now();
        let r = p(&line);
        assert_eq!(r.msg.len(), MAX_MSG);
        assert_eq!(f(&r, "k"), Some("v"));
        // Pathological: many double spaces, no fields.
        let line = "WARNING: ".to_owned() + &"a  ".repeat(3 << 20);
        let r = p(&line);
        assert!(r.msg.len() <= MAX_MSG);
        let line = format!(
            r#"{{"level":"error","msg":"{}","k":"{}"}}"#,
            "y".repeat(5 << 20),
            "z".repeat(5 << 20)
        );
        let r = p(&line);
        assert_eq!(r.msg.len(), MAX_MSG);
        assert_eq!(f(&r, "k").map(str::len), Some(MAX_FIELD));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    /// Every line of every fixture: records, continuations or blanks; the
    /// errors are the ones a human sees.
    #[test]
    fn fixtures_parse() {
        let dir = fixtures();
        let mut levels = std::collections::BTreeMap::new();
        for name in [
            "gitlab-runner-real.log",
            "gitlab-runner-real.jsonl",
            "gitlab-runner-real-wrapped.log",
            "docs-log-format-runner.log",
            "docs-log-format-text.log",
            "docs-log-format-json.log",
        ] {
            let text = std::fs::read(dir.join(name)).unwrap();
            let text = String::from_utf8_lossy(&text);
            for (n, line) in text.lines().enumerate() {
                let k = classify(line);
                assert_ne!(k, LineKind::Unparsed, "{name}:{}: {line:?}", n + 1);
                if let LineKind::Record(l) = k {
                    let r = parse_line("x", line).unwrap();
                    assert_eq!(r.level, l);
                    assert!(!r.msg.contains('\x1b'));
                    if l >= Level::Warning {
                        assert!(!r.msg.is_empty(), "{name}:{}", n + 1);
                    }
                    *levels.entry((name, l)).or_insert(0) += 1;
                }
            }
        }
        let get = |n, l| levels.get(&(n, l)).copied().unwrap_or(0);
        assert_eq!(get("gitlab-runner-real.log", Level::Warning), 12);
        assert_eq!(get("gitlab-runner-real.log", Level::Error), 8);
        assert_eq!(get("docs-log-format-text.log", Level::Warning), 3);
        assert_eq!(get("docs-log-format-json.log", Level::Warning), 3);
        assert_eq!(get("docs-log-format-runner.log", Level::Warning), 3);
        assert_eq!(get("gitlab-runner-real.jsonl", Level::Warning), 1);
        assert_eq!(get("gitlab-runner-real.jsonl", Level::Error), 1);
    }

    proptest! {
        #[test]
        fn fuzz_never_panics_on_text(s in "\\PC{0,300}") {
            let k = classify(&s);
            let r = parse_line("r", &s);
            prop_assert_eq!(r.is_some(), matches!(k, LineKind::Record(_)));
            if let (Some(r), LineKind::Record(l)) = (r, k) {
                prop_assert_eq!(r.level, l);
                let lite = parse_line_lite("r", &s, SystemTime::now()).unwrap();
                prop_assert_eq!((lite.msg, lite.time), (r.msg, r.time));
            }
            let _ = continuation_fields(&s);
        }

        #[test]
        fn fuzz_never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = String::from_utf8_lossy(&b);
            let _ = classify(&s);
            let _ = parse_line("r", &s);
        }

        #[test]
        fn fuzz_never_panics_on_near_formats(
            pre in prop::sample::select(vec!["", "WARNING: ", "ERROR: ", "INFO[0000] ", "time=\"", "level=", "{\"level\":\"", "runner-1  | ", "<14>Jul 25 14:34:28 h p[1]: ", "2023-06-21T08:12:41.680Z [", "\x1b[31m"]),
            s in "[ -~\\x1b\\t]{0,120}",
        ) {
            let line = format!("{pre}{s}");
            let _ = classify(&line);
            let _ = parse_line("r", &line);
            let _ = continuation_fields(&line);
        }

        /// Runner-format lines round-trip: message and fields come back.
        #[test]
        fn fuzz_runner_round_trip(
            msg in "[A-Za-z][A-Za-z .,:()'\"/]{0,60}[A-Za-z.]",
            fields in proptest::collection::vec(("[a-z][a-z_-]{0,10}", "[A-Za-z0-9:/.-]{0,12}( [A-Za-z0-9]{1,6})?"), 0..5),
        ) {
            prop_assume!(!msg.contains("  "));
            // Upstream: `%-50s ` (prefix included), then ` key=value` each.
            let mut line = format!("ERROR: {msg:<43} ");
            for (k, v) in &fields { line.push_str(&format!(" {k}={v}")); }
            let r = parse_line("r", &line).unwrap();
            prop_assert_eq!(r.level, Level::Error);
            prop_assert_eq!(r.msg, msg.trim_end());
            let want: Vec<(String, String)> = fields.into_iter().collect();
            prop_assert_eq!(r.fields, want);
        }

        /// termgate JSON lines round-trip through serde_json.
        #[test]
        fn fuzz_json_round_trip(msg in "\\PC{0,80}", job in 0u64..1_000_000, extra in "\\PC{0,20}") {
            let v = serde_json::json!({"job": job, "level": "error", "msg": msg, "runner": "abc", "x": extra, "n": {"a": [1, "}"]}});
            let line = v.to_string();
            let r = parse_line("r", &line).unwrap();
            prop_assert_eq!(&r.msg, &msg);
            let want_x: &str = &extra;
            prop_assert_eq!(r.fields.iter().find(|(k, _)| k == "x").map(|(_, v)| v.as_str()), Some(want_x));
            let job_s = job.to_string();
            prop_assert_eq!(r.fields.iter().find(|(k, _)| k == JOB).map(|(_, v)| v.as_str()), Some(job_s.as_str()));
        }
    }
}
