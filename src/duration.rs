//! The one duration parser of both binaries.
//!
//! [`parse_go`] reads Go's `time.ParseDuration` syntax, as gitlab-runner
//! writes durations in `config.toml` (`"5s"`, `"1h30m"`, `"300ms"`).
//! [`parse_cli`] is the same grammar with what an operator types on a
//! command line besides: `d` for days (`7d`) and a bare number of seconds.
//! Negative durations are rejected: every duration read is a length of time.

use std::time::Duration;

/// Why a duration did not parse; the text says which input and what to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative duration {0:?}")]
    Negative(String),
    #[error("invalid duration {0:?}")]
    Invalid(String),
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit { unit: String, text: String },
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}

/// A Go duration, e.g. `"5s"`, `"1h30m"`, `"1.5h"`, `"0"`.
pub fn parse_go(text: &str) -> Result<Duration, DurationError> {
    parse(text, false)
}

/// A command-line duration: Go syntax plus `d` (days) and bare seconds, e.g.
/// `10s`, `2m`, `1h30m`, `7d`, `500ms`, `3`.
pub fn parse_cli(text: &str) -> Result<Duration, DurationError> {
    parse(text, true)
}

fn parse(text: &str, cli: bool) -> Result<Duration, DurationError> {
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if cli {
        if let Ok(secs) = s.parse::<f64>() {
            return from_nanos(secs * 1e9, text);
        }
    }
    let invalid = || DurationError::Invalid(text.to_string());
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" if cli => 86400e9,
            "" => return Err(DurationError::MissingUnit(text.to_string())),
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_string(),
                    text: text.to_string(),
                })
            }
        };
        total += value * nanos_per_unit;
        rest = tail;
    }
    from_nanos(total, text)
}

fn from_nanos(total: f64, text: &str) -> Result<Duration, DurationError> {
    if !total.is_finite() || total < 0.0 || total > u64::MAX as f64 {
        return Err(DurationError::OutOfRange(text.to_string()));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_go("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_go("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go("+10s"), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn rejects_bad_go_durations() {
        for bad in ["", "5", "s", "5x", "-5s", "1h-5m", ".s", "5 s", "7d"] {
            assert!(parse_go(bad).is_err(), "{bad:?} should fail");
        }
        let err = parse_go("10min").unwrap_err().to_string();
        assert!(err.contains("\"min\""), "{err}");
    }

    #[test]
    fn cli_adds_days_and_bare_seconds() {
        assert_eq!(parse_cli("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_cli("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_cli("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_cli("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_cli("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_cli("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_cli("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        for bad in ["x", "", "-1", "-5s", "5x", "1e400", "NaN", "inf"] {
            assert!(parse_cli(bad).is_err(), "{bad:?} should fail");
        }
    }
}
