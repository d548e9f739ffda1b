//! What sits around a log line before its format starts: ANSI colour codes
//! and the prefixes that log shippers add (docker compose `name  | `, Docker
//! Desktop timestamps, syslog/journald `Mon DD HH:MM:SS host prog[pid]: `,
//! journald's `-o short-iso` `2026-12-06T17:16:06+0000 host prog[pid]: `,
//! an RFC 3164 `<PRI>`).
//!
//! Everything works on byte offsets of `&str` (never allocates) except
//! [`strip_ansi_into`].

use std::time::SystemTime;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};

const ESC: u8 = 0x1b;

/// Appends `s` without ANSI escape sequences (CSI `ESC [ … final`, OSC
/// `ESC ] … BEL|ST`, two-byte `ESC x`) to `out`. Linear in `s`.
pub fn strip_ansi_into(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] != ESC {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        i = skip_escape(b, i);
        start = i;
    }
    out.push_str(&s[start..]);
}

/// `s` without ANSI escapes; borrows when there are none.
pub fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.as_bytes().contains(&ESC) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    strip_ansi_into(s, &mut out);
    std::borrow::Cow::Owned(out)
}

/// Index after the escape sequence starting at `b[i] == ESC`. Always lands
/// on a char boundary: sequences end at ASCII bytes or run to the end.
fn skip_escape(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    match b.get(j) {
        Some(b'[') => {
            j += 1;
            // Parameter and intermediate bytes 0x20..=0x3f, final 0x40..=0x7e.
            while j < b.len() && (0x20..=0x3f).contains(&b[j]) {
                j += 1;
            }
            if j < b.len() && (0x40..=0x7e).contains(&b[j]) {
                j += 1;
            }
            j
        }
        Some(b']') => {
            j += 1;
            while j < b.len() {
                if b[j] == 0x07 {
                    return j + 1;
                }
                if b[j] == ESC && b.get(j + 1) == Some(&b'\\') {
                    return j + 2;
                }
                j += 1;
            }
            j
        }
        Some(c) if c.is_ascii() => j + 1,
        _ => j,
    }
}

/// A timestamp taken from a wrapper, parsed only when a record is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapTime<'a> {
    /// `Aug 28 07:38:30` (no year: the most recent such date, UTC).
    Syslog(&'a str),
    /// `2025-01-21 16:46:59` (Docker Desktop, taken as UTC) or RFC 3339.
    Iso(&'a str),
}

impl WrapTime<'_> {
    pub fn parse(self, now: SystemTime) -> Option<SystemTime> {
        match self {
            WrapTime::Iso(s) => parse_iso(s),
            WrapTime::Syslog(s) => parse_syslog(s, now),
        }
    }
}

/// Parses RFC 3339 (`2026-11-27T19:00:00.123+00:00`, `…Z`) and the space
/// separated forms without zone (taken as UTC).
pub fn parse_iso(s: &str) -> Option<SystemTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.into());
    }
    // journalctl's `-o short-iso`: `2026-12-06T17:16:06+0000`.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.into());
    }
    let s = s.trim_end_matches('Z');
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t).into());
        }
    }
    None
}

fn parse_syslog(s: &str, now: SystemTime) -> Option<SystemTime> {
    let now: DateTime<Utc> = now.into();
    let mut parts = s.split_ascii_whitespace();
    let mon = month(parts.next()?.as_bytes())?;
    let day: u32 = parts.next()?.parse().ok()?;
    let hms = parts.next()?;
    let mk = |year: i32| -> Option<DateTime<Utc>> {
        let d = NaiveDate::from_ymd_opt(year, mon, day)?;
        let t = chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S").ok()?;
        Some(Utc.from_utc_datetime(&d.and_time(t)))
    };
    let t = mk(now.year())?;
    // A date more than a day ahead is last year's.
    let t = if t > now + chrono::Duration::days(1) {
        mk(now.year() - 1)?
    } else {
        t
    };
    Some(t.into())
}

fn month(b: &[u8]) -> Option<u32> {
    const M: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if b.len() != 3 {
        return None;
    }
    M.iter().position(|m| m[..] == *b).map(|i| i as u32 + 1)
}

/// Skips leading ANSI escapes.
pub fn skip_leading_ansi(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == ESC {
        i = skip_escape(b, i);
    }
    &s[i..]
}

/// Removes wrapper prefixes (possibly stacked, e.g. `<14>` + syslog). Returns
/// the rest and the wrapper's timestamp if one had one. The line must already
/// be free of ANSI escapes.
pub fn unwrap_prefixes(mut s: &str) -> (&str, Option<WrapTime<'_>>) {
    let mut time = None;
    for _ in 0..4 {
        let b = s.as_bytes();
        let Some(&c) = b.first() else { break };
        if c == b'<' {
            if let Some(n) = pri_len(b) {
                s = &s[n..];
                continue;
            }
        }
        if c.is_ascii_uppercase() {
            if let Some((n, t)) = syslog_len(s) {
                time = Some(WrapTime::Syslog(t));
                s = &s[n..];
                continue;
            }
        }
        if c.is_ascii_digit() {
            if let Some(n) = iso_len(b) {
                // hclog lines start with a timestamp too: keep those whole.
                let rest = &s[n..];
                if rest.starts_with(' ') && !rest.trim_start().starts_with('[') {
                    time = Some(WrapTime::Iso(&s[..n]));
                    s = &rest[1..];
                    if let Some(m) = journal_host_tag_len(s.as_bytes()) {
                        s = &s[m..];
                    }
                    continue;
                }
            }
        }
        if let Some(n) = compose_len(b) {
            s = &s[n..];
            continue;
        }
        break;
    }
    (s, time)
}

/// `<14>`
fn pri_len(b: &[u8]) -> Option<usize> {
    let end = b.iter().take(5).position(|&c| c == b'>')?;
    (end >= 2 && b[1..end].iter().all(u8::is_ascii_digit)).then_some(end + 1)
}

/// `Aug 28 07:38:30 host prog[pid]: ` → (length, timestamp text).
fn syslog_len(s: &str) -> Option<(usize, &str)> {
    let b = s.as_bytes();
    if b.len() < 20 || month(&b[..3]).is_none() || b[3] != b' ' {
        return None;
    }
    // Day is ` 5` or `05` or `5`.
    let mut i = 4;
    if b[i] == b' ' {
        i += 1;
    }
    let d0 = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == d0 || i - d0 > 2 || b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let t = b.get(i..i + 8)?;
    let hms_ok = t[2] == b':'
        && t[5] == b':'
        && t.iter()
            .enumerate()
            .all(|(k, c)| k == 2 || k == 5 || c.is_ascii_digit());
    if !hms_ok {
        return None;
    }
    let ts_end = i + 8;
    i = ts_end;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    // Host.
    let h0 = i;
    while i < b.len() && b[i] != b' ' {
        i += 1;
    }
    if i == h0 || i >= b.len() {
        return None;
    }
    i += 1;
    // Tag: `prog[pid]:` or `prog:`, then a space.
    let t0 = i;
    while i < b.len() && b[i] != b' ' {
        i += 1;
    }
    if i == t0 || b[i - 1] != b':' {
        return None;
    }
    let end = if i < b.len() { i + 1 } else { i };
    Some((end, &s[..ts_end]))
}

/// `2025-01-21 16:46:59`, `2025-01-21T16:46:59.123456789Z`,
/// `2026-11-27T19:00:00+01:00`: length of the timestamp.
pub fn iso_len(b: &[u8]) -> Option<usize> {
    if b.len() < 19 {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let digits_at = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    match b.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') if b.len() >= i + 6 && b[i + 3] == b':' => i += 6,
        // journalctl's `-o short-iso`: `+0000`.
        Some(b'+' | b'-') if (1..=4).all(|k| digits_at(i + k)) => i += 5,
        _ => {}
    }
    Some(i)
}

/// journald's `host prog[pid]: ` after its ISO timestamp (`journalctl -o
/// short-iso`): its length. The `[pid]` is required, so that a message
/// such as `WARNING: Something: x` after a Docker Desktop timestamp is
/// never taken for one.
fn journal_host_tag_len(b: &[u8]) -> Option<usize> {
    let host = b.iter().position(|&c| c == b' ')?;
    if host == 0 || b[host - 1] == b':' {
        return None;
    }
    let rest = &b[host + 1..];
    let tag = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    let t = &rest[..tag];
    let open = t.iter().position(|&c| c == b'[')?;
    let ok = open > 0
        && t.len() >= open + 4
        && t.ends_with(b"]:")
        && t[open + 1..t.len() - 2].iter().all(u8::is_ascii_digit);
    ok.then(|| (host + 1 + tag + 1).min(b.len()))
}

/// docker compose: `runner-1  | `, `hetzner-runner_1  | `.
fn compose_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() && i < 80 && (b[i].is_ascii_alphanumeric() || b"_.-".contains(&b[i])) {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let name_end = i;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i == name_end || b.get(i) != Some(&b'|') {
        return None;
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ansi() {
        assert_eq!(
            strip_ansi("Job succeeded \x1b[0;m  duration\x1b[0;m=1s"),
            "Job succeeded   duration=1s"
        );
        assert_eq!(strip_ansi("\x1b[31;1mERROR:\x1b[0m x"), "ERROR: x");
        assert_eq!(strip_ansi("a\x1b]0;title\x07b"), "ab");
        assert_eq!(strip_ansi("trailing\x1b"), "trailing");
        assert_eq!(strip_ansi("\x1b[é"), "é");
        assert_eq!(skip_leading_ansi("\x1b[0;33mWARNING: x"), "WARNING: x");
    }

    #[test]
    fn wrappers() {
        let (b, t) = unwrap_prefixes("runner-1  | Runtime platform   arch=amd64");
        assert_eq!((b, t), ("Runtime platform   arch=amd64", None));
        let (b, t) = unwrap_prefixes("2025-01-21 16:46:59 ERROR: Checking for jobs... forbidden");
        assert_eq!(b, "ERROR: Checking for jobs... forbidden");
        assert_eq!(t, Some(WrapTime::Iso("2025-01-21 16:46:59")));
        let (b, t) = unwrap_prefixes(
            "<14>Jul 25 14:34:28 gitlab-runner1 gitlab-runner[850]: {\"level\":\"warning\"}",
        );
        assert_eq!(b, "{\"level\":\"warning\"}");
        assert_eq!(t, Some(WrapTime::Syslog("Jul 25 14:34:28")));
        let (b, _) =
            unwrap_prefixes("Aug 19 09:11:49 vagrant gitlab-runner[5219]: Running in system-mode.");
        assert_eq!(b, "Running in system-mode.");
        // journalctl -o short-iso and -o short-iso-precise.
        let (b, t) = unwrap_prefixes(
            "2026-12-06T17:16:06+0000 vm termgate-runner[125]: {\"level\":\"error\"}",
        );
        assert_eq!(b, "{\"level\":\"error\"}");
        assert_eq!(t, Some(WrapTime::Iso("2026-12-06T17:16:06+0000")));
        let (b, t) = unwrap_prefixes(
            "2026-12-06T17:16:06.123456+01:00 vm gitlab-runner[7]: Checking for jobs... ok",
        );
        assert_eq!(b, "Checking for jobs... ok");
        assert_eq!(t, Some(WrapTime::Iso("2026-12-06T17:16:06.123456+01:00")));
        // Without a `[pid]` it is the message, not a journald tag.
        let (b, _) = unwrap_prefixes("2025-01-21 16:46:59 WARNING: Something: x");
        assert_eq!(b, "WARNING: Something: x");
        let (b, _) = unwrap_prefixes("2025-01-21 16:46:59 ERROR: Checking for jobs... forbidden");
        assert_eq!(b, "ERROR: Checking for jobs... forbidden");
        // hclog keeps its timestamp; plain messages stay.
        let h = "2023-06-21T08:12:41.672Z [INFO]  ready: instance=x";
        assert_eq!(unwrap_prefixes(h).0, h);
        assert_eq!(
            unwrap_prefixes("Checking for jobs... ok").0,
            "Checking for jobs... ok"
        );
        assert_eq!(
            unwrap_prefixes("exit | 0").0,
            "0",
            "a known false positive, kept simple"
        );
    }

    #[test]
    fn times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000); // 2026-09
        let t = WrapTime::Syslog("Aug 28 07:38:30").parse(now).unwrap();
        let d: DateTime<Utc> = t.into();
        assert_eq!(d.to_rfc3339(), "2026-08-28T07:38:30+00:00");
        let t = WrapTime::Syslog("Dec 28 07:38:30").parse(now).unwrap();
        let d: DateTime<Utc> = t.into();
        assert_eq!(d.year(), 2025);
        let t = parse_iso("2025-01-21 16:46:59").unwrap();
        let d: DateTime<Utc> = t.into();
        assert_eq!(d.to_rfc3339(), "2025-01-21T16:46:59+00:00");
        assert!(parse_iso("2026-11-27T19:00:00.123+01:00").is_some());
        let t = parse_iso("2026-12-06T17:16:06+0100").unwrap();
        let d: DateTime<Utc> = t.into();
        assert_eq!(d.to_rfc3339(), "2026-12-06T16:16:06+00:00");
        assert!(parse_iso("nope").is_none());
    }
}
