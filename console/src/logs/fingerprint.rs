//! Error fingerprints: a message with its variable parts replaced, so that
//! `Job failed: exit code 1` and `… exit code 2` fall together while
//! `Checking for jobs... forbidden` and `… client error` stay apart.
//!
//! Hand-written, one pass, no regex. Replacements, per whitespace-separated
//! token (leading `([<{=` and trailing `)]}>.,;:!?` kept around them):
//! - `scheme://…` → `URL`; `/abs/path` → `PATH`;
//! - IPv4 with or without `:port`, `host.name:port` → `IP`;
//! - UUIDs → `U`;
//! - `"…"` and `'…'` quoted values → `"…"`, `'…'`;
//! - within other tokens, words of `[A-Za-z0-9_-]`: numbers (`62.01`), hex
//!   runs of 6 or more with a digit (commit shas, container ids) and mixed
//!   letter/digit words of 8 or more (tokens) → `N`, one placeholder for
//!   "a number or an id" (a container id may be all digits or not, and its
//!   message must fall together either way); words of up to 3
//!   starting with a letter stay (`S3`, `v4`, `k8s`); other digit runs →
//!   `N` (`1h0m0s` → `NhNmNs`, `crc32` → `crcN`);
//! - whitespace collapsed. The result is at most [`MAX_FINGERPRINT`] bytes.

use crate::text::clip;

/// Longest fingerprint, in bytes.
pub const MAX_FINGERPRINT: usize = 200;

/// The fingerprint of message `msg`.
pub fn fingerprint(msg: &str) -> String {
    let s = clip(msg, 4 * MAX_FINGERPRINT);
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len().min(MAX_FINGERPRINT + 8));
    let mut i = 0;
    while i < b.len() && out.len() < MAX_FINGERPRINT {
        let c = b[i];
        if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            continue;
        }
        if c == b'"' || (c == b'\'' && (i == 0 || !is_word(b[i - 1]))) {
            if let Some(end) = closing_quote(b, i) {
                out.push(char::from(c));
                out.push('…');
                out.push(char::from(c));
                i = end + 1;
                continue;
            }
        }
        // A token: up to whitespace or a double quote.
        let mut end = i + 1;
        while end < b.len() && !b[end].is_ascii_whitespace() && b[end] != b'"' {
            end += 1;
        }
        // Token boundaries are ASCII bytes or the end: valid char boundaries.
        token(s.get(i..end).unwrap_or(""), &mut out);
        i = end;
    }
    let t = out.trim_end().len();
    out.truncate(t);
    let t = clip(&out, MAX_FINGERPRINT).len();
    out.truncate(t);
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// The closing quote of the quote at `i`: same char, not backslash-escaped;
/// a closing `'` must not be followed by a word char (`don't`).
fn closing_quote(b: &[u8], i: usize) -> Option<usize> {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == q => {
                if q == b'\'' && b.get(j + 1).is_some_and(|c| is_word(*c)) {
                    j += 1;
                    continue;
                }
                return Some(j);
            }
            _ => j += 1,
        }
    }
    None
}

fn token(tok: &str, out: &mut String) {
    let b = tok.as_bytes();
    let lead = b.iter().take_while(|c| b"([<{=".contains(c)).count();
    let trail = b[lead..]
        .iter()
        .rev()
        .take_while(|c| b")]}>.,;:!?'".contains(c))
        .count();
    let core = &tok[lead..tok.len() - trail];
    let special = if core.is_empty() {
        None
    } else if is_url(core) {
        Some("URL")
    } else if is_path(core) {
        Some("PATH")
    } else if is_ip(core) || is_host_port(core) {
        Some("IP")
    } else if is_uuid(core) {
        Some("U")
    } else {
        None
    };
    match special {
        Some(p) => {
            out.push_str(&tok[..lead]);
            out.push_str(p);
            out.push_str(&tok[tok.len() - trail..]);
        }
        None => words(tok, out),
    }
}

fn is_url(s: &str) -> bool {
    s.find("://").is_some_and(|p| {
        p >= 2
            && s.as_bytes()[..p]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'+')
    })
}

fn is_path(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'/' && (b[1].is_ascii_alphanumeric() || b"._-~".contains(&b[1]))
}

fn split_port(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    }
}

fn is_port(p: &str) -> bool {
    (1..=5).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit())
}

fn is_ip(s: &str) -> bool {
    let (host, port) = split_port(s);
    if port.is_some_and(|p| !is_port(p)) {
        return false;
    }
    let mut n = 0;
    for part in host.split('.') {
        n += 1;
        if !(1..=3).contains(&part.len()) || !part.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    n == 4
}

/// `gitlab.example.com:443`, `localhost:8093`.
fn is_host_port(s: &str) -> bool {
    let (host, port) = split_port(s);
    let Some(port) = port else { return false };
    if !is_port(port) || host.is_empty() {
        return false;
    }
    let ok_chars = host
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    ok_chars && (host == "localhost" || host.contains('.'))
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Normalises the words of a token, copying everything else.
fn words(tok: &str, out: &mut String) {
    let b = tok.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !is_word(b[i]) {
            // Copy one char (may be multi-byte).
            let n = tok[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&tok[i..i + n]);
            i += n;
            continue;
        }
        let mut j = i;
        while j < b.len() && is_word(b[j]) {
            j += 1;
        }
        let w = &b[i..j];
        let digits = w.iter().filter(|c| c.is_ascii_digit()).count();
        if digits == w.len() {
            // A number, with its decimals.
            while j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            out.push('N');
        } else if w.len() <= 3 && w[0].is_ascii_alphabetic() {
            // Names rather than numbers: `S3`, `v4`, `k8s`, `md5`.
            out.push_str(&tok[i..j]);
        } else if digits > 0
            && ((w.len() >= 6 && w.iter().all(u8::is_ascii_hexdigit))
                || (w.len() >= 8 && w.iter().any(u8::is_ascii_alphabetic)))
        {
            out.push('N'); // an id: the same placeholder as a number
        } else {
            let mut k = 0;
            while k < w.len() {
                if w[k].is_ascii_digit() {
                    while k < w.len() && w[k].is_ascii_digit() {
                        k += 1;
                    }
                    out.push('N');
                } else {
                    out.push(char::from(w[k]));
                    k += 1;
                }
            }
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse;
    use crate::model::Level;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use termgate::logschema::msg;

    fn same(a: &str, b: &str) {
        assert_eq!(fingerprint(a), fingerprint(b), "{a:?} vs {b:?}");
    }
    fn apart(a: &str, b: &str) {
        assert_ne!(fingerprint(a), fingerprint(b), "{a:?} vs {b:?}");
    }

    #[test]
    fn table() {
        for (msg, want) in [
            ("Job failed: exit code 1", "Job failed: exit code N"),
            (msg::CHECKING_FOR_JOBS_FORBIDDEN, msg::CHECKING_FOR_JOBS_FORBIDDEN),
            (
                r#"Runner "https://gitlab.com/6i2MzLuX" is unhealthy and will be disabled for 1h0m0s seconds!"#,
                r#"Runner "…" is unhealthy and will be disabled for NhNmNs seconds!"#,
            ),
            (
                "Runner https://git.domain.deTOKEN is not healthy and will be disabled!",
                "Runner URL is not healthy and will be disabled!",
            ),
            ("dial tcp 192.168.168.137:80: connection refused", "dial tcp IP: connection refused"),
            ("Dialing: tcp gitlab.tribbles.cloud:443 ...", "Dialing: tcp IP ..."),
            (
                "Starting multi-runner from /etc/gitlab-runner/config.toml...",
                "Starting multi-runner from PATH...",
            ),
            (
                "Container bce438400ea9933423b0556614589806d0e39f7c7950f8932d909b901db0d685 finished with exit code 1",
                "Container N finished with exit code N",
            ),
            ("session 0f8fad5b-d9cb-469f-a165-70867728950e closed", "session U closed"),
            ("Starting runner for https://gitlab.com with token f9z4UpXQ ...", "Starting runner for URL with token N ..."),
            ("Failed to request job: 'request_concurrency' already reached", "Failed to request job: '…' already reached"),
            ("couldn't   read\t\tit", "couldn't read it"),
            ("took 62.01549636s (at 0.5)", "took Ns (at N)"),
            ("checksum=crc32:76dac24d", "checksum=crcN:N"),
            ("", ""),
            ("ünïcödé 42 ✓", "ünïcödé N ✓"),
            ("error while generating S3 pre-signed URL via v4 k8s", "error while generating S3 pre-signed URL via v4 k8s"),
        ] {
            assert_eq!(fingerprint(msg), want, "{msg:?}");
        }
    }

    #[test]
    fn pairs() {
        same("Job failed: exit code 1", "Job failed: exit code 2");
        apart(
            msg::CHECKING_FOR_JOBS_FORBIDDEN,
            msg::CHECKING_FOR_JOBS_CLIENT_ERROR,
        );
        same(
            r#"Runner "https://gitlab.com/6i2MzLuX" is unhealthy and will be disabled for 1h0m0s seconds!"#,
            r#"Runner "172.18.0.2y1_rnE34d" is unhealthy and will be disabled for 1h0m0s seconds!"#,
        );
        same(
            "Job failed (system failure): Error response from daemon: container 9f1c2e0d3b4a not found",
            "Job failed (system failure): Error response from daemon: container 02ab77cd9e1f not found",
        );
        // Issue 18: an all-digit id and a hex id are one fingerprint.
        same(
            "container 346119271220 not found",
            "container d20f8b84087c not found",
        );
        apart(
            "Job failed: exit code 1",
            "Job failed (system failure): exit code 1",
        );
        same(
            "Terminal already connected, revoking connection",
            "Terminal  already connected, revoking connection",
        );
    }

    /// The warnings and errors of the real upstream log group sensibly.
    #[test]
    fn real_fixture() {
        let text =
            std::fs::read_to_string(crate::logs::fixtures_dir().join("gitlab-runner-real.log"))
                .unwrap();
        let mut fps = BTreeSet::new();
        let mut n = 0;
        for line in text.lines() {
            if let Some(r) = parse::parse_line("r", line) {
                if r.level >= Level::Warning {
                    n += 1;
                    fps.insert(fingerprint(&r.msg));
                }
            }
        }
        assert_eq!(n, 20);
        let want: BTreeSet<String> = [
            "Checking for jobs... failed",
            "Job failed: exit code N",
            "Failed to process runner",
            "Running in user-mode.",
            "Use sudo for system-mode:",
            "$ sudo gitlab-runner...",
            msg::CHECKING_FOR_JOBS_FORBIDDEN,
            r#"Runner "…" is unhealthy and will be disabled for NhNmNs seconds!"#,
            "CONFIGURATION: Long polling issues detected.",
            msg::CHECKING_FOR_JOBS_CLIENT_ERROR,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(fps, want);
    }

    proptest! {
        #[test]
        fn never_panics_and_is_bounded(s in "\\PC{0,400}") {
            let f = fingerprint(&s);
            prop_assert!(f.len() <= MAX_FINGERPRINT);
            prop_assert!(!f.contains("  "));
            // Idempotent enough to be stable: fingerprinting twice is a fixed point
            // for the placeholders themselves.
            let _ = fingerprint(&f);
        }

        #[test]
        fn numbers_fall_together(a in 0u64..u64::MAX, b in 0u64..u64::MAX, word in "[a-z ]{0,20}") {
            prop_assert_eq!(fingerprint(&format!("{word} exit code {a}")), fingerprint(&format!("{word} exit code {b}")));
        }
    }
}
