//! The detach key: `ctrl-]` by default, `--detach-key` or console.toml's
//! `detach_key` otherwise, written `ctrl-X` (or `^X`) for the control
//! characters a terminal sends as one byte.

use std::fmt;
use std::str::FromStr;

/// One control character that ends an attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetachKey {
    byte: u8,
}

/// `ctrl-]`: what telnet and `docker attach` users know.
pub const DEFAULT_DETACH_KEY: DetachKey = DetachKey { byte: 0x1d };

impl Default for DetachKey {
    fn default() -> Self {
        DEFAULT_DETACH_KEY
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "detach key {0:?}: expected ctrl-X for a letter or one of @ [ \\ ] ^ _ (e.g. ctrl-], ctrl-q)"
)]
pub struct DetachKeyError(pub String);

impl FromStr for DetachKey {
    type Err = DetachKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DetachKeyError(s.to_string());
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("ctrl+"))
            .or_else(|| lower.strip_prefix("c-"))
            .or_else(|| lower.strip_prefix('^'))
            .ok_or_else(err)?;
        let mut chars = rest.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(err());
        };
        let upper = c.to_ascii_uppercase();
        if !upper.is_ascii() || !('@'..='_').contains(&upper) {
            return Err(err());
        }
        // Ctrl clears the two high bits: `]` (0x5d) → 0x1d.
        let byte = (upper as u8) & 0x1f;
        // Ctrl-M is Enter, Ctrl-I is Tab, Ctrl-H is Backspace on many
        // terminals, Ctrl-[ starts every escape sequence: as a detach key
        // each would end the attach on an ordinary key.
        if matches!(byte, 0x08 | 0x09 | 0x0a | 0x0d | 0x1b) {
            return Err(err());
        }
        Ok(DetachKey { byte })
    }
}

impl fmt::Display for DetachKey {
    /// `Ctrl-]`, as the status line shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = char::from(self.byte | 0x40);
        write!(f, "Ctrl-{}", c.to_ascii_uppercase())
    }
}

impl DetachKey {
    /// The byte the terminal sends for it.
    pub fn byte(self) -> u8 {
        self.byte
    }

    /// Split a read at the detach key: the bytes before it, and whether it
    /// was there (anything after it is dropped: the attach ends).
    pub fn split(self, input: &[u8]) -> (&[u8], bool) {
        match memchr::memchr(self.byte, input) {
            Some(i) => (&input[..i], true),
            None => (input, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        let k = |s: &str| s.parse::<DetachKey>().map(DetachKey::byte);
        assert_eq!(k("ctrl-]"), Ok(0x1d));
        assert_eq!(k("Ctrl-Q"), Ok(0x11));
        assert_eq!(k("ctrl+q"), Ok(0x11));
        assert_eq!(k("^]"), Ok(0x1d));
        assert_eq!(k("C-\\"), Ok(0x1c));
        assert_eq!(k("ctrl-@"), Ok(0x00));
        assert_eq!(DetachKey::default().byte(), 0x1d);
        assert_eq!(DetachKey::default().to_string(), "Ctrl-]");
        assert_eq!("ctrl-q".parse::<DetachKey>().unwrap().to_string(), "Ctrl-Q");
    }

    #[test]
    fn refuses_keys_that_are_not_one_control_byte_or_are_everyday_keys() {
        for bad in [
            "", "q", "ctrl-", "ctrl-qq", "alt-q", "ctrl-1", "ctrl-é", "ctrl-m", "ctrl-[", "ctrl-i",
        ] {
            let e = bad.parse::<DetachKey>().unwrap_err();
            assert!(e.to_string().contains("ctrl-]"), "{bad}: {e}");
        }
    }

    #[test]
    fn split_finds_the_key_inside_a_paste() {
        let k = DetachKey::default();
        assert_eq!(k.split(b"ls -l\r"), (&b"ls -l\r"[..], false));
        assert_eq!(k.split(b"echo hi\x1dexit\r"), (&b"echo hi"[..], true));
        assert_eq!(k.split(b"\x1d"), (&b""[..], true));
    }
}
