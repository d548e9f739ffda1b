//! Reading log files: plain or gzip (rotated `*.log.1.gz`), line by line.
//! One reader for `tally` and `report`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Longest line kept, in bytes; the rest of a longer line is skipped.
pub const MAX_READ_LINE: usize = 1 << 20;

/// `*.gz`: a compressed rotated file (by its name: the tail never follows
/// one, the read-back reads it whole).
pub fn is_gzip_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Opens `path`, decompressing it when it starts with gzip's magic bytes
/// (whatever its name). `counted` sees the bytes read from the file itself
/// (compressed), for progress. Returns the reader and whether it was gzip.
pub fn open_log(
    path: &Path,
    counted: impl FnMut(usize) + Send + 'static,
) -> std::io::Result<(Box<dyn Read + Send>, bool)> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let raw = Counted {
        inner: head.chain(f),
        counted,
    };
    if n == 2 && magic == [0x1f, 0x8b] {
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, raw));
        Ok((Box::new(gz), true))
    } else {
        Ok((Box::new(raw), false))
    }
}

struct Counted<R, F> {
    inner: R,
    counted: F,
}

impl<R: Read, F: FnMut(usize)> Read for Counted<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.counted)(n);
        Ok(n)
    }
}

/// Reads `r` to its end and calls `line` with each line's bytes (`\n`
/// and a trailing `\r` removed; a line over [`MAX_READ_LINE`] keeps its
/// start, the rest is skipped). Returns the bytes read. On an error, the
/// lines before it have been seen.
pub fn for_each_line(r: impl Read, mut line: impl FnMut(&[u8])) -> std::io::Result<u64> {
    for_each_line_marked(r, |b, _| line(b))
}

/// [`for_each_line`], telling `line` whether the line was oversized: at
/// least [`MAX_READ_LINE`] bytes long (`true`: only its first
/// [`MAX_READ_LINE`] bytes are given), so readers count such lines instead
/// of dropping them silently.
pub fn for_each_line_marked(
    mut r: impl Read,
    mut line: impl FnMut(&[u8], bool),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; MAX_READ_LINE];
    let mut filled = 0;
    let mut total = 0u64;
    let mut skipping = false;
    let mut emit = |b: &[u8], oversized: bool| line(b.strip_suffix(b"\r").unwrap_or(b), oversized);
    loop {
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if filled > 0 && !skipping {
                emit(&buf[..filled], false);
            }
            return Ok(total);
        }
        total += n as u64;
        let scan_from = filled;
        filled += n;
        let mut start = 0;
        let mut at = scan_from;
        while let Some(p) = memchr::memchr(b'\n', &buf[at..filled]) {
            let end = at + p;
            if skipping {
                skipping = false;
            } else {
                emit(&buf[start..end], false);
            }
            start = end + 1;
            at = start;
        }
        if start == 0 && filled == buf.len() {
            // A line longer than the buffer: keep its start, skip the rest.
            if !skipping {
                emit(&buf[..filled], true);
            }
            skipping = true;
            filled = 0;
        } else {
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_plain_read_the_same() {
        let d = tempfile::tempdir().unwrap();
        let text = "one\r\ntwo\n\nthree";
        std::fs::write(d.path().join("a.log"), text).unwrap();
        // Two gzip members back to back, as `cat a.gz b.gz` makes.
        let mut gz = Vec::new();
        for part in ["one\r\ntwo\n", "\nthree"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            gz.extend(e.finish().unwrap());
        }
        std::fs::write(d.path().join("a.log.1"), &gz).unwrap();
        for (name, want_gz) in [("a.log", false), ("a.log.1", true)] {
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let s2 = seen.clone();
            let (r, is_gz) = open_log(&d.path().join(name), move |n| {
                s2.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(is_gz, want_gz);
            let mut lines = Vec::new();
            let n =
                for_each_line(r, |b| lines.push(String::from_utf8_lossy(b).into_owned())).unwrap();
            assert_eq!(lines, ["one", "two", "", "three"], "{name}");
            assert_eq!(n, text.len() as u64);
            let on_disk = std::fs::metadata(d.path().join(name)).unwrap().len();
            assert_eq!(
                seen.load(std::sync::atomic::Ordering::Relaxed) as u64,
                on_disk
            );
        }
        // A short file and an empty one.
        std::fs::write(d.path().join("b"), "x").unwrap();
        std::fs::write(d.path().join("c"), "").unwrap();
        for (name, want) in [("b", vec!["x"]), ("c", vec![])] {
            let (r, _) = open_log(&d.path().join(name), |_| {}).unwrap();
            let mut lines = Vec::new();
            for_each_line(r, |b| lines.push(String::from_utf8_lossy(b).into_owned())).unwrap();
            assert_eq!(lines, want);
        }
    }

    #[test]
    fn a_line_over_the_limit_is_marked_and_the_next_one_is_whole() {
        let mut text = b"short\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_READ_LINE * 2 + 17));
        text.extend(b"\nafter\r\n");
        text.extend(std::iter::repeat_n(b'y', MAX_READ_LINE));
        let mut seen = Vec::new();
        let n =
            for_each_line_marked(&text[..], |b, over| seen.push((b.len(), b[0], over))).unwrap();
        assert_eq!(n, text.len() as u64);
        assert_eq!(
            seen,
            [
                (5, b's', false),
                (MAX_READ_LINE, b'x', true),
                (5, b'a', false),
                // Exactly the limit with no newline at the end: the buffer
                // is full, so it counts as over.
                (MAX_READ_LINE, b'y', true),
            ]
        );
    }

    #[test]
    fn corrupt_gzip_is_an_error_after_the_good_lines() {
        let d = tempfile::tempdir().unwrap();
        // A good gzip member, then a broken one.
        let member = |text: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        let mut gz = member(&b"good line\n".repeat(1000));
        let mut bad = member(&b"more\n".repeat(1000));
        let n = bad.len();
        bad[12..n - 8].fill(0xAA);
        gz.extend(bad);
        let p = d.path().join("x.gz");
        std::fs::write(&p, gz).unwrap();
        let (r, _) = open_log(&p, |_| {}).unwrap();
        let mut n = 0;
        let res = for_each_line(r, |_| n += 1);
        assert!(res.is_err());
        assert!(n > 0);
    }
}
