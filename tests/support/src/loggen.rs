//! Runner logs written as termgate's runner writes them, for the report's
//! tests and benchmark: JSON lines with sorted keys (`level`, `msg`,
//! `time` in RFC 3339 with the runner's offset, the fields of
//! `termgate::logschema`), upstream's messages from
//! `termgate::logschema::msg`, plain and gzip-rotated files.
//!
//! - [`week`]: a period and the one before it from three runners, with the
//!   exact figures the report must show ([`week::Expected`]), computed from
//!   the records written, by their meaning, not by the console's code.
//! - [`bulk`]: a large, realistic week for the benchmark.
//!
//! Deterministic: one seeded xorshift ([`Rng`]) drives every choice.

pub mod bulk;
pub mod week;

pub use bulk::{generate_bulk, Bulk, BulkOptions};
pub use week::{generate_week, Expected, WeekOptions};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// xorshift64*: deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }

    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-30` (UTC) of Unix milliseconds.
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The runner's `time`: RFC 3339 in the runner's offset (`Z` for UTC),
/// with the fraction of a second trimmed of zeros (`rfc3339_nano`).
pub fn runner_time(ms: i64, offset_min: i32) -> String {
    let local = ms + i64::from(offset_min) * 60_000;
    let (y, mo, d) = civil(local.div_euclid(DAY_MS));
    let in_day = local.rem_euclid(DAY_MS);
    let (h, mi, s, frac) = (
        in_day / HOUR_MS,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    if offset_min == 0 {
        out.push('Z');
    } else {
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", a / 60, a % 60));
    }
    out
}

/// How the report writes a time: RFC 3339, UTC, whole seconds (floored).
pub fn report_time(ms: i64) -> String {
    runner_time(ms.div_euclid(1000) * 1000, 0)
}

/// A field value of a JSON log line.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    S(String),
    U(u64),
    F(f64),
}

impl From<&str> for V {
    fn from(s: &str) -> V {
        V::S(s.to_owned())
    }
}
impl From<String> for V {
    fn from(s: String) -> V {
        V::S(s)
    }
}
impl From<u64> for V {
    fn from(n: u64) -> V {
        V::U(n)
    }
}
impl From<f64> for V {
    fn from(f: f64) -> V {
        V::F(f)
    }
}

/// A JSON string as the runner writes it (Go's `encoding/json`: HTML-safe).
pub fn json_str(out: &mut String, s: &str) {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    for c in quoted.chars() {
        match c {
            '&' => out.push_str("\\u0026"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

/// One JSON log line (no newline): `level`, `msg`, `time` and `fields`,
/// keys sorted as the runner (logrus) writes them.
pub fn json_line(out: &mut String, level: &str, msg: &str, time: &str, fields: &BTreeMap<&str, V>) {
    let mut all: BTreeMap<&str, Option<&V>> = fields.iter().map(|(k, v)| (*k, Some(v))).collect();
    for k in ["level", "msg", "time"] {
        all.insert(k, None);
    }
    out.push('{');
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, k);
        out.push(':');
        match (*k, v) {
            ("level", None) => json_str(out, level),
            ("msg", None) => json_str(out, msg),
            ("time", None) => json_str(out, time),
            (_, Some(V::S(s))) => json_str(out, s),
            (_, Some(V::U(n))) => out.push_str(&n.to_string()),
            (_, Some(V::F(f))) => out.push_str(&f.to_string()),
            (_, None) => out.push_str("null"),
        }
    }
    out.push('}');
}

/// Writes `data` to `path`, gzip-compressed (level 6, as logrotate's
/// `compress`) when `gz`.
pub fn write_file(path: &Path, data: &[u8], gz: bool) -> std::io::Result<()> {
    let f = std::io::BufWriter::new(std::fs::File::create(path)?);
    if gz {
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::new(6));
        e.write_all(data)?;
        e.finish()?.flush()
    } else {
        let mut f = f;
        f.write_all(data)?;
        f.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for d in [-1000, 0, 365, 10_957, 20_785, 20_789, 60_000] {
            let (y, m, dd) = civil(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(date(0), "1970-01-01");
        let t = days_from_civil(2026, 11, 30) * DAY_MS;
        assert_eq!(date(t), "2026-11-30");
        assert_eq!(runner_time(t, 0), "2026-11-30T00:00:00Z");
        assert_eq!(runner_time(t + 250, 60), "2026-11-30T01:00:00.25+01:00");
        assert_eq!(runner_time(t - 1, 0), "2026-11-29T23:59:59.999Z");
        assert_eq!(report_time(t - 1), "2026-11-29T23:59:59Z");
    }

    #[test]
    fn json_lines_sorted_and_escaped() {
        let mut f = BTreeMap::new();
        f.insert("runner_name", V::from("a&b"));
        f.insert("duration_s", V::F(12.3));
        f.insert("job", V::U(7));
        let mut s = String::new();
        json_line(&mut s, "info", "x <y>", "T", &f);
        assert_eq!(
            s,
            r#"{"duration_s":12.3,"job":7,"level":"info","msg":"x \u003cy\u003e","runner_name":"a\u0026b","time":"T"}"#
        );
    }
}
