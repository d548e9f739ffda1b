//! Go's `time.Duration.String()`, as `/debug/jobs/list` prints durations.

use std::fmt::Write as _;
use std::time::Duration;

/// `1m2.345678901s`, `1.5s`, `0s`, `2h0m0s`, `450ms`, `1.5µs`, `12ns`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", decimal(ns, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", decimal(ns, 6));
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h{m}m");
    } else if m > 0 {
        let _ = write!(out, "{m}m");
    }
    out.push_str(&decimal(s * 1_000_000_000 + ns % 1_000_000_000, 9));
    out.push('s');
    out
}

/// `n / 10^digits` printed with the fraction's trailing zeros trimmed.
fn decimal(n: u128, digits: u32) -> String {
    let unit = 10u128.pow(digits);
    let (int, frac) = (n / unit, n % unit);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(12), "12ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(450), "450ms"),
            (Duration::from_micros(1_234), "1.234ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(1), "1s"),
            (Duration::new(62, 345_678_901), "1m2.345678901s"),
            (Duration::from_secs(7_200), "2h0m0s"),
            (Duration::from_secs(1_800), "30m0s"),
            (Duration::new(3_723, 1), "1h2m3.000000001s"),
            (Duration::from_secs(100 * 3600), "100h0m0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(*d), *want, "{d:?}");
        }
    }
}
