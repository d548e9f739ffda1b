//! Recording file names: `job-<job>-<mode>-<20261206T090000Z>-<session
//! id's first 8>[-<n>].cast`, and the check the pruner uses so it only
//! ever deletes files named so.

use chrono::{DateTime, Utc};

pub(super) const PREFIX: &str = "job-";
pub(super) const SUFFIX: &str = ".cast";
const STAMP: &str = "%Y%m%dT%H%M%SZ";
const SESSION_CHARS: usize = 8;

/// The name without suffix and extension.
pub(super) fn base(job_id: u64, mode: &str, session_id: &str, now: DateTime<Utc>) -> String {
    format!(
        "{PREFIX}{job_id}-{}-{}-{}",
        clean_mode(mode),
        now.format(STAMP),
        short_session(session_id)
    )
}

/// `base.cast`, then `base-1.cast`, `base-2.cast`, ….
pub(super) fn with_suffix(base: &str, n: u32) -> String {
    if n == 0 {
        format!("{base}{SUFFIX}")
    } else {
        format!("{base}-{n}{SUFFIX}")
    }
}

/// Lower-case letters, digits and `_` (no `-`, which separates the parts).
fn clean_mode(mode: &str) -> String {
    let m: String = mode
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    if m.is_empty() {
        "terminal".into()
    } else {
        m
    }
}

/// The first 8 letters and digits of the session id.
fn short_session(id: &str) -> String {
    let s: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(SESSION_CHARS)
        .collect();
    if s.is_empty() {
        "0".into()
    } else {
        s
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
}

/// Whether `name` is a recording's file name (what [`base`] and
/// [`with_suffix`] make).
pub(super) fn is_recording(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_suffix(SUFFIX))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    if !(4..=5).contains(&parts.len()) {
        return false;
    }
    digits(parts[0])
        && !parts[1].is_empty()
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && is_stamp(parts[2])
        && (1..=SESSION_CHARS).contains(&parts[3].len())
        && parts[3].bytes().all(|b| b.is_ascii_alphanumeric())
        && parts.get(4).is_none_or(|n| digits(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_547_600, 0).unwrap() // 2026-12-06T09:00:00Z
    }

    #[test]
    fn scheme() {
        let b = base(42, "interactive", "0123456789abcdef", at());
        assert_eq!(b, "job-42-interactive-20261206T090000Z-01234567");
        assert_eq!(
            with_suffix(&b, 0),
            "job-42-interactive-20261206T090000Z-01234567.cast"
        );
        assert_eq!(
            with_suffix(&b, 3),
            "job-42-interactive-20261206T090000Z-01234567-3.cast"
        );
        assert!(is_recording(&with_suffix(&b, 0)));
        assert!(is_recording(&with_suffix(&b, 12)));
        // Odd inputs still make names the pruner recognises.
        let odd = base(7, "Odd-Mode!", "../x/y", at());
        assert_eq!(odd, "job-7-odd_mode_-20261206T090000Z-xy");
        assert!(is_recording(&with_suffix(&odd, 0)));
        assert!(is_recording(&with_suffix(&base(7, "", "", at()), 0)));
    }

    #[test]
    fn other_names_are_not_recordings() {
        for n in [
            "job-42-interactive-20261206T090000Z-01234567.cast.bak",
            "job-42-interactive-20261206T090000Z-01234567",
            "notes.cast",
            "job--interactive-20261206T090000Z-01234567.cast",
            "job-4x-interactive-20261206T090000Z-01234567.cast",
            "job-42-interactive-20261206090000Z-01234567.cast",
            "job-42-interactive-20261206T090000Z-012345678.cast",
            "job-42-interactive-20261206T090000Z-01234567-.cast",
            "job-42-interactive-20261206T090000Z-01234567-1-2.cast",
            "job-42-Interactive-20261206T090000Z-01234567.cast",
            "job-42-interactive-20261206T090000Z-.cast",
            "job-42.cast",
        ] {
            assert!(!is_recording(n), "{n}");
        }
    }
}
