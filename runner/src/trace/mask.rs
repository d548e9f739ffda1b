//! Streaming replacement of secret values by `[MASKED]`, correct across chunk
//! boundaries: bytes that could be the start of a secret are held back until
//! the next chunk (or a flush) decides.

const MASK: &[u8] = b"[MASKED]";

#[derive(Debug)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    pending: Vec<u8>,
    /// Bitmap of first bytes of secrets, for a fast skip.
    first: [bool; 256],
}

impl Masker {
    pub fn new(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let mut first = [false; 256];
        for s in &secrets {
            first[s[0] as usize] = true;
        }
        Masker {
            secrets,
            pending: Vec::new(),
            first,
        }
    }

    /// Feed bytes; returns what can be emitted now.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return data.to_vec();
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(data);
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'outer: while i < buf.len() {
            if !self.first[buf[i] as usize] {
                // Copy the run of bytes that cannot start a secret.
                let run = buf[i..]
                    .iter()
                    .position(|b| self.first[*b as usize])
                    .unwrap_or(buf.len() - i);
                out.extend_from_slice(&buf[i..i + run]);
                i += run;
                continue;
            }
            let rest = &buf[i..];
            for s in &self.secrets {
                if rest.starts_with(s) {
                    out.extend_from_slice(MASK);
                    i += s.len();
                    continue 'outer;
                }
            }
            if self
                .secrets
                .iter()
                .any(|s| s.len() > rest.len() && s.starts_with(rest))
            {
                // Could be a secret cut by the chunk boundary: wait.
                self.pending = rest.to_vec();
                return out;
            }
            out.push(buf[i]);
            i += 1;
        }
        out
    }

    /// Emit whatever is held back (end of output).
    pub fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secrets: &[&str], chunks: &[&[u8]]) -> Vec<u8> {
        let mut m = Masker::new(secrets.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.push(c));
        }
        out.extend(m.flush());
        out
    }

    #[test]
    fn whole_and_split() {
        assert_eq!(run(&["abc"], &[b"xabcx"]), b"x[MASKED]x");
        assert_eq!(run(&["abc"], &[b"xa", b"b", b"cx"]), b"x[MASKED]x");
        assert_eq!(run(&["abc"], &[b"xab"]), b"xab");
        assert_eq!(run(&["abc"], &[b"aabc"]), b"a[MASKED]");
        assert_eq!(
            run(&["abc", "abcdef"], &[b"abcdefabc"]),
            b"[MASKED][MASKED]"
        );
        assert_eq!(run(&[], &[b"abc"]), b"abc");
    }

    #[test]
    fn every_split_point() {
        let input = b"token=glrt-SECRET123 and again glrt-SECRET123!";
        let want = b"token=[MASKED] and again [MASKED]!".to_vec();
        for cut in 0..input.len() {
            assert_eq!(
                run(&["glrt-SECRET123"], &[&input[..cut], &input[cut..]]),
                want,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn binary_safe() {
        let input: Vec<u8> = (0..=255u8).collect();
        assert_eq!(run(&["zz"], &[&input]), input);
    }
}
