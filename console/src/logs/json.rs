//! A minimal, allocation-free walker over the top-level members of a JSON
//! object line. Enough for log lines: keys and string values are returned
//! raw (still escaped) with a flag, other values as their raw text; nested
//! objects and arrays are skipped as one value. Linear, no recursion.

use crate::text::clip;

/// One value, raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// The text between the quotes; `escaped` if it contains a backslash.
    Str { raw: &'a str, escaped: bool },
    /// A number, `true`, `null`, or a whole nested object/array.
    Other(&'a str),
}

impl<'a> Value<'a> {
    /// The value as text (strings unescaped), at most `max` bytes.
    pub fn to_text(self, max: usize) -> String {
        match self {
            Value::Str {
                raw,
                escaped: false,
            } => clip(raw, max).to_owned(),
            Value::Str { raw, escaped: true } => unescape(raw, max),
            Value::Other(raw) => clip(raw, max).to_owned(),
        }
    }
    /// The raw string content, if this is an unescaped string.
    pub fn plain_str(self) -> Option<&'a str> {
        match self {
            Value::Str {
                raw,
                escaped: false,
            } => Some(raw),
            _ => None,
        }
    }
}

/// Iterator over `(raw key, value)`; stops (sets `failed`) on malformed input.
pub struct Members<'a> {
    s: &'a str,
    i: usize,
    pub failed: bool,
    done: bool,
}

/// Starts walking `s`, which must begin with `{` (after whitespace).
pub fn members(s: &str) -> Members<'_> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let ok = b.get(i) == Some(&b'{');
    Members {
        s,
        i: i + 1,
        failed: !ok,
        done: !ok,
    }
}

impl<'a> Members<'a> {
    fn ws(&mut self) {
        let b = self.s.as_bytes();
        while self.i < b.len() && b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    /// Scans a string whose opening quote is at `self.i`; returns its
    /// content and whether it has escapes, leaving `i` after the close.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        let b = self.s.as_bytes();
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        loop {
            let k = memchr::memchr2(b'"', b'\\', &b[j..])? + j;
            if b[k] == b'\\' {
                escaped = true;
                j = k + 2;
                if j > b.len() {
                    return None;
                }
            } else {
                self.i = k + 1;
                // Quotes and backslashes are ASCII: boundaries are fine.
                return Some((self.s.get(start..k)?, escaped));
            }
        }
    }

    /// Skips a nested object or array starting at `self.i`.
    fn nested(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut depth = 0usize;
        while self.i < b.len() {
            match b[self.i] {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        self.i += 1;
                        return self.s.get(start..self.i);
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        None
    }

    fn member(&mut self) -> Option<Option<(&'a str, Value<'a>)>> {
        let b = self.s.as_bytes();
        self.ws();
        match b.get(self.i)? {
            b'}' => return Some(None),
            b',' => {
                self.i += 1;
                self.ws();
            }
            _ => {}
        }
        if b.get(self.i) != Some(&b'"') {
            return None;
        }
        let (key, _) = self.string()?;
        self.ws();
        if b.get(self.i) != Some(&b':') {
            return None;
        }
        self.i += 1;
        self.ws();
        let v = match b.get(self.i)? {
            b'"' => {
                let (raw, escaped) = self.string()?;
                Value::Str { raw, escaped }
            }
            b'{' | b'[' => Value::Other(self.nested()?),
            c if c.is_ascii_digit() || matches!(c, b'-' | b't' | b'f' | b'n') => {
                let start = self.i;
                while self.i < b.len() && !matches!(b[self.i], b',' | b'}' | b' ' | b'\t') {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
                Value::Other(self.s.get(start..self.i)?)
            }
            _ => return None,
        };
        Some(Some((key, v)))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.member() {
            Some(Some(m)) => Some(m),
            Some(None) => {
                self.done = true;
                None
            }
            None => {
                self.done = true;
                self.failed = true;
                None
            }
        }
    }
}

/// Unescapes a JSON string body, stopping at about `max` bytes.
pub fn unescape(raw: &str, max: usize) -> String {
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
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hi = hex4(&mut chars);
                let c = match hi {
                    Some(h @ 0xD800..=0xDBFF) => {
                        let mut peek = chars.clone();
                        let lo = (peek.next() == Some('\\') && peek.next() == Some('u'))
                            .then(|| hex4(&mut peek))
                            .flatten();
                        match lo {
                            Some(l @ 0xDC00..=0xDFFF) => {
                                chars = peek;
                                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (l - 0xDC00))
                            }
                            _ => None,
                        }
                    }
                    Some(h) => char::from_u32(h),
                    None => None,
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn walks_members() {
        let s = r#"{"a":1,"b":"x\"y","c":{"d":[1,"}"]},"e":true, "f" : null}"#;
        let m: Vec<_> = members(s).collect();
        assert_eq!(m.len(), 5);
        assert_eq!(m[1].0, "b");
        assert_eq!(m[1].1.to_text(100), "x\"y");
        assert_eq!(m[2].1, Value::Other(r#"{"d":[1,"}"]}"#));
        assert_eq!(m[4].1, Value::Other("null"));
    }

    #[test]
    fn malformed_fails() {
        for s in [
            r#"{"a":"#,
            r#"{"a" 1}"#,
            "{",
            r#"{"a":"x"#,
            "[1]",
            r#"{"a":]}"#,
        ] {
            let mut it = members(s);
            while it.next().is_some() {}
            assert!(it.failed, "{s}");
        }
    }

    #[test]
    fn unescapes() {
        assert_eq!(
            unescape(r"a\u0026b\n\ud83d\ude00\ud800x", 100),
            "a&b\n😀\u{FFFD}x"
        );
        assert_eq!(unescape(r"\", 100), "");
        assert_eq!(unescape("abcdef", 3), "abc");
    }

    proptest! {
        #[test]
        fn fuzz_never_panics(s in ".{0,200}") {
            let mut it = members(&s);
            for (_, v) in it.by_ref() { let _ = v.to_text(64); }
            let _ = unescape(&s, 50);
        }
        #[test]
        fn fuzz_never_panics_jsonish(s in r#"\{[ "a-z:,\\{}\[\]0-9]{0,80}"#) {
            for (_, v) in members(&s) { let _ = v.to_text(64); }
        }

        /// Flat objects as serde_json writes them: every member comes back,
        /// in order, with its unescaped value.
        #[test]
        fn fuzz_members_match_serde(
            fields in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,30}", any::<bool>()), 0..6),
        ) {
            let mut obj = serde_json::Map::new();
            for (k, v, num) in &fields {
                let v = if *num { serde_json::json!(v.len()) } else { serde_json::json!(v) };
                obj.insert(k.clone(), v);
            }
            let text = serde_json::Value::Object(obj.clone()).to_string();
            let mut it = members(&text);
            let got: Vec<(String, String)> =
                it.by_ref().map(|(k, v)| (k.to_string(), v.to_text(1000))).collect();
            prop_assert!(!it.failed, "{text}");
            let want: Vec<(String, String)> = obj
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            prop_assert_eq!(got, want);
        }

        /// `unescape` inverts JSON string escaping, and stops near `max`.
        #[test]
        fn fuzz_unescape_inverts_json(s in "\\PC{0,60}", max in 0usize..80) {
            let quoted = serde_json::to_string(&s).unwrap_or_default();
            let body = &quoted[1..quoted.len() - 1];
            prop_assert_eq!(unescape(body, usize::MAX), s.clone());
            let cut = unescape(body, max);
            prop_assert!(cut.len() <= max + 4, "{} > {max} + 4", cut.len());
            prop_assert!(s.starts_with(&cut));
        }
    }
}
