//! Small text helpers shared by the screens, the log parser and the
//! `tally` command: figures, ages and durations for people, clipping to
//! bytes and cutting to display columns. No I/O, no state.

use std::time::{Duration, SystemTime};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `s` cut to at most `max` bytes at a char boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// `-` for a figure the runner does not export; integers without decimals,
/// small fractions with one, thousands as `12.3k`.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if !v.is_finite() => "-".into(),
        Some(v) if v.abs() >= 10_000.0 => format!("{:.1}k", v / 1000.0),
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// `142M`, `1.2G`, `980K`.
pub fn bytes(v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) else {
        return "-".into();
    };
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = v;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v < 10.0 && u > 0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// `0.8s`, `12s`, `3m`, `2h`, `3d`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 120.0 {
        format!("{s:.0}s")
    } else if s < 2.0 * 3600.0 {
        format!("{}m", (s / 60.0) as u64)
    } else if s < 2.0 * 86400.0 {
        format!("{}h", (s / 3600.0) as u64)
    } else {
        format!("{}d", (s / 86400.0) as u64)
    }
}

/// Age of `t` at `now`; a time in the future counts as zero.
pub fn age_at(now: SystemTime, t: SystemTime) -> String {
    age(now.duration_since(t).unwrap_or_default())
}

/// `3h12m`, `4d2h`, `12m`.
pub fn uptime(d: Duration) -> String {
    let m = d.as_secs() / 60;
    let (d_, h, m) = (m / 1440, (m / 60) % 24, m % 60);
    if d_ > 0 {
        format!("{d_}d{h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else {
        format!("{m}m")
    }
}

/// `14:02:31 UTC`.
pub fn clock(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%H:%M:%S UTC")
        .to_string()
}

/// `14:02`.
pub fn hhmm(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%H:%M")
        .to_string()
}

/// Cut `s` to `width` columns, ending with `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// Control characters shown as a replacement character (they would move
/// the cursor).
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Pad (or cut) `s` to exactly `width` columns.
pub fn pad(s: &str, width: usize, right: bool) -> String {
    let s = truncate(&clean(s), width);
    let fill = " ".repeat(width.saturating_sub(s.width()));
    if right {
        fill + &s
    } else {
        s + &fill
    }
}

/// Cut `s` to `w` characters, ending with `…` when cut (plain text
/// output, where characters are columns).
pub fn fit_chars(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_owned();
    }
    let mut o: String = s.chars().take(w.saturating_sub(1)).collect();
    o.push('…');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(None), "-");
        assert_eq!(num(Some(212.0)), "212");
        assert_eq!(num(Some(0.44)), "0.4");
        assert_eq!(num(Some(12_345.0)), "12.3k");
        assert_eq!(num(Some(f64::NAN)), "-");
        assert_eq!(bytes(Some(142.0 * 1024.0 * 1024.0)), "142M");
        assert_eq!(bytes(Some(1.5 * 1024.0 * 1024.0 * 1024.0)), "1.5G");
        assert_eq!(bytes(None), "-");
        assert_eq!(age(Duration::from_millis(800)), "0.8s");
        assert_eq!(age(Duration::from_secs(300)), "5m");
        assert_eq!(uptime(Duration::from_secs(3 * 3600 + 12 * 60)), "3h12m");
    }

    #[test]
    fn text_cut_to_width() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(pad("ab", 4, true), "  ab");
        assert_eq!(pad("abcdef", 4, false), "abc…");
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("aé", 2), "a");
    }
}
