//! Masking secrets in the example lines a report shows: a report is pasted
//! into issues, so a token that reached a log must not travel further.
//!
//! Masked (the value replaced by [`MASK`]):
//! - GitLab and termgate tokens by their prefix (`glrt-…`, `glpat-…`,
//!   `GR1348941…`, `tgo_…`, …);
//! - values of secret-looking keys: `token=…`, `"password":"…"`,
//!   `Authorization: Bearer …`, `PRIVATE-TOKEN: …`, any case;
//! - the password of a URL's user info (`https://user:…@host`).
//!
//! Kept: the 8–9 character runner ids upstream prints itself
//! (`runner=xYz12345`, "with token xYz12345 ...").

/// What a masked value reads as (gitlab-runner's own mask).
pub const MASK: &str = "[MASKED]";

/// Token prefixes GitLab and termgate use.
const TOKEN_PREFIXES: [&str; 16] = [
    "glrt-",
    "glrtr-",
    "glpat-",
    "gldt-",
    "glptt-",
    "glcbt-",
    "glimt-",
    "glsoat-",
    "gloas-",
    "glft-",
    "glagent-",
    "glffct-",
    "glwt-",
    "glrtr-",
    "GR1348941",
    "tgo_",
];

/// Keys whose values are secrets.
const SECRET_KEYS: [&str; 9] = [
    "token",
    "password",
    "passwd",
    "secret",
    "private-token",
    "job-token",
    "authorization",
    "api_key",
    "access_token",
];

/// A character of a secret value (`@` ends one: `token:…@host` is a URL's
/// user info, masked up to the `@`).
fn is_value_char(c: u8) -> bool {
    !(c.is_ascii_whitespace()
        || matches!(c, b'"' | b'\'' | b'&' | b',' | b';' | b'}' | b')' | b'@'))
}

/// `s` with secrets masked.
pub fn redact(s: &str) -> String {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let b = s.as_bytes();
    let lower = s.to_ascii_lowercase();
    let lb = lower.as_bytes();
    // Tokens by prefix.
    for p in TOKEN_PREFIXES {
        let mut from = 0;
        while let Some(i) = s[from..].find(p).map(|i| i + from) {
            let start = i + p.len();
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b"_-.".contains(&b[end])) {
                end += 1;
            }
            let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if boundary && end > start {
                spans.push((start, end));
            }
            from = start;
        }
    }
    // Secret keys: `key=v`, `key: v`, `"key":"v"`, `key v` after Bearer.
    for k in SECRET_KEYS {
        let mut from = 0;
        while let Some(i) = lower[from..].find(k).map(|i| i + from) {
            from = i + k.len();
            let before_ok = i == 0 || !(lb[i - 1].is_ascii_alphanumeric() || lb[i - 1] == b'_');
            if !before_ok {
                continue;
            }
            let mut j = i + k.len();
            // `_key`, `token_file` etc. are other words.
            if j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-') {
                continue;
            }
            let quoted = b.get(j) == Some(&b'"');
            if quoted {
                j += 1;
            }
            let sep = match b.get(j) {
                Some(b'=') => 1,
                // `token: v`, `"token":"v"`; not the user of a URL's user
                // info (`https://gitlab-ci-token:v@host`, masked below).
                Some(b':') if quoted || b.get(j + 1).is_none_or(|c| !is_value_char(*c)) => 1,
                _ => continue,
            };
            j += sep;
            while j < b.len() && (b[j] == b' ' || b[j] == b'"' || b[j] == b'\'') {
                j += 1;
            }
            if lb[j..].starts_with(b"bearer ") || lb[j..].starts_with(b"basic ") {
                j += lb[j..].iter().position(|c| *c == b' ').unwrap_or(0) + 1;
            }
            let start = j;
            while j < b.len() && is_value_char(b[j]) {
                j += 1;
            }
            if j > start && &s[start..j] != MASK {
                spans.push((start, j));
            }
        }
    }
    // `Bearer X` anywhere.
    let mut from = 0;
    while let Some(i) = lower[from..].find("bearer ").map(|i| i + from) {
        let start = i + 7;
        let mut j = start;
        while j < b.len() && is_value_char(b[j]) {
            j += 1;
        }
        if j > start {
            spans.push((start, j));
        }
        from = start;
    }
    // URL user info: `scheme://user:password@`.
    let mut from = 0;
    while let Some(i) = s[from..].find("://").map(|i| i + from) {
        let start = i + 3;
        let end = s[start..]
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"')
            .map_or(s.len(), |e| e + start);
        if let Some(at) = s[start..end].rfind('@') {
            let info = &s[start..start + at];
            if let Some(colon) = info.find(':') {
                spans.push((start + colon + 1, start + at));
            }
        }
        from = start;
    }
    if spans.is_empty() {
        return s.to_owned();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    // Overlapping spans are masked once.
    let mut masked_to = 0;
    for (st, en) in spans {
        if en <= masked_to {
            continue;
        }
        if st >= masked_to {
            out.push_str(&s[at..st]);
            out.push_str(MASK);
        }
        at = en;
        masked_to = en;
    }
    out.push_str(&s[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_and_keeps_the_rest() {
        for (input, want) in [
            ("token=glrt-abcDEF123_x and more", "token=[MASKED] and more"),
            (
                "registering GR1348941zzzyyyxxx now",
                "registering GR1348941[MASKED] now",
            ),
            ("op tgo_0123abcd joined", "op tgo_[MASKED] joined"),
            (
                r#"{"level":"error","msg":"x","password":"hunter2","job":1}"#,
                r#"{"level":"error","msg":"x","password":"[MASKED]","job":1}"#,
            ),
            (
                "Authorization: Bearer abc.def",
                "Authorization: Bearer [MASKED]",
            ),
            ("PRIVATE-TOKEN: s3cr3t", "PRIVATE-TOKEN: [MASKED]"),
            (
                "fatal: unable to access 'https://gitlab-ci-token:xyz123@gitlab.com/a/b.git/'",
                "fatal: unable to access 'https://gitlab-ci-token:[MASKED]@gitlab.com/a/b.git/'",
            ),
            // Upstream's short runner ids stay, as do words that only contain a key.
            (
                "Job succeeded  duration_s=3.0 job=45 project=46 runner=PKYR8xzv",
                "Job succeeded  duration_s=3.0 job=45 project=46 runner=PKYR8xzv",
            ),
            (
                "Starting runner for https://gitlab.com with token f9z4UpXQ ...",
                "Starting runner for https://gitlab.com with token f9z4UpXQ ...",
            ),
            ("token_file=/etc/x tokens=3", "token_file=/etc/x tokens=3"),
            ("ünï token=ü✓ rest", "ünï token=[MASKED] rest"),
            ("", ""),
        ] {
            assert_eq!(redact(input), want, "{input:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = redact(&s);
        }
    }
}
