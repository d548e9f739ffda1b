//! Formatting shared by the Markdown and HTML writers: counts, changes,
//! durations, sizes and UTC times as people read them, chart axes, and
//! HTML escaping (for the HTML writer and its SVG charts). Pure. What
//! these return is not escaped for Markdown or HTML: each writer escapes
//! it for its format (a time that does not parse comes back as given).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use super::model::{Pair, Period, Report};

/// `1,234,567`.
/// `1 file`, `2,048 files`.
pub fn count_of(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", int(n), if n == 1 { one } else { many })
}

pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A gauge reading: whole numbers without decimals, others with one;
/// `–` when there is none.
pub fn gauge(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 => {
            let i = v as i64;
            if i < 0 {
                format!("-{}", int(i.unsigned_abs()))
            } else {
                int(i.unsigned_abs())
            }
        }
        Some(v) if v.is_finite() => format!("{v:.1}"),
        _ => NONE.to_owned(),
    }
}

/// What a missing figure reads as.
pub const NONE: &str = "–";

/// Change vs the previous period: `+40%`, `-25%`, `0%`; `new` when the
/// previous period had none, `–` when neither had any.
pub fn change(p: Pair) -> String {
    match p.change_pct() {
        Some(c) if c.abs() < 0.5 => "0%".to_owned(),
        Some(c) if c > 0.0 => format!("+{c:.0}%"),
        Some(c) => format!("-{:.0}%", c.abs()),
        None if p.current > 0 => "new".to_owned(),
        None => NONE.to_owned(),
    }
}

/// `0 s`, `45 s`, `14 min`, `14 min 10 s`, `2 h 5 min`, `3 d 4 h`.
pub fn secs(s: u64) -> String {
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let parts: Vec<String> = if d > 0 {
        vec![format!("{d} d"), format!("{h} h")]
    } else if h > 0 {
        vec![format!("{h} h"), format!("{m} min")]
    } else if m > 0 {
        vec![format!("{m} min"), format!("{sec} s")]
    } else {
        vec![format!("{sec} s")]
    };
    let mut parts = parts.into_iter();
    let first = parts.next().unwrap_or_default();
    match parts.next() {
        Some(second) if !second.starts_with("0 ") => format!("{first} {second}"),
        _ => first,
    }
}

/// A period's length: `7 days`, `36 h`, or [`secs`].
pub fn length(seconds: u64) -> String {
    match seconds {
        86_400 => "1 day".to_owned(),
        s if s > 0 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{} h", s / 3600),
        s => secs(s),
    }
}

/// A session duration in seconds, to 0.1 s: `42.5 s`.
pub fn duration_s(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1} s"),
        _ => NONE.to_owned(),
    }
}

/// `1,873,242,112 bytes (1.7 GiB)`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{} bytes", int(n));
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{} bytes ({v:.1} {})", int(n), UNITS[u])
}

/// An RFC 3339 time from the model.
pub fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// `2026-11-23 09:00 UTC` (seconds when they are not 0).
pub fn time_long(t: &str) -> String {
    match parse(t) {
        Some(d) if d.second() == 0 => d.format("%Y-%m-%d %H:%M UTC").to_string(),
        Some(d) => d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => t.to_owned(),
    }
}

/// `11-23 09:00`, for table cells whose header says UTC (the year is in
/// the report's title).
pub fn time_short(t: &str) -> String {
    match parse(t) {
        Some(d) => d.format("%m-%d %H:%M").to_string(),
        None => t.to_owned(),
    }
}

/// `2026-11-16 09:00 – 2026-11-23 09:00 UTC`.
pub fn range_long(p: &Period) -> String {
    let from = time_long(&p.from);
    let to = time_long(&p.to);
    format!(
        "{} – {to}",
        from.strip_suffix(" UTC").unwrap_or(from.as_str())
    )
}

/// `11-16 09:00 – 11-23 09:00 UTC`.
pub fn range_short(p: &Period) -> String {
    format!("{} – {} UTC", time_short(&p.from), time_short(&p.to))
}

/// Column header for the previous period's figures.
pub fn previous_header(r: &Report) -> String {
    format!("Previous period ({})", range_short(&r.previous))
}

/// Column header for this period's figures.
pub const THIS_PERIOD: &str = "This period";

/// A day of [`Report::days`] as a row label: `Mon 11-23`, with
/// `(from 09:00)` / `(until 09:00)` on a first or last day the period
/// covers only in part.
pub fn day_label(r: &Report, date: &str) -> String {
    let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        return date.to_owned();
    };
    let mut s = if spans_years(r) {
        format!("{} {}", d.weekday(), d.format("%Y-%m-%d"))
    } else {
        format!("{} {}", d.weekday(), d.format("%m-%d"))
    };
    let (from, to) = (parse(&r.period.from), parse(&r.period.to));
    let from = from.filter(|f| f.date_naive() == d && f.time() != chrono::NaiveTime::MIN);
    let to = to.filter(|t| t.date_naive() == d && t.time() != chrono::NaiveTime::MIN);
    match (from, to) {
        (Some(f), Some(t)) => {
            s.push_str(&format!(" ({}–{})", f.format("%H:%M"), t.format("%H:%M")));
        }
        (Some(f), None) => s.push_str(&format!(" (from {})", f.format("%H:%M"))),
        (None, Some(t)) => s.push_str(&format!(" (until {})", t.format("%H:%M"))),
        (None, None) => {}
    }
    s
}

/// A day as a short chart label: `Mon 11-23`; `2025-11-23` when the
/// period spans more than one calendar year.
pub fn day_short(r: &Report, date: &str) -> String {
    match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(d) if spans_years(r) => d.format("%Y-%m-%d").to_string(),
        Ok(d) => format!("{} {}", d.weekday(), d.format("%m-%d")),
        Err(_) => date.to_owned(),
    }
}

/// Whether the period's first and last day are in different years.
pub fn spans_years(r: &Report) -> bool {
    use chrono::Datelike;
    match (parse(&r.period.from), parse(&r.period.to)) {
        (Some(f), Some(t)) => f.year() != (t - chrono::Duration::milliseconds(1)).year(),
        _ => false,
    }
}

/// Days of the period not in [`Report::days`] (the Markdown and HTML
/// views leave out empty days of a long period: see `report::view`).
pub fn days_left_out(r: &Report) -> u64 {
    let (Some(f), Some(t)) = (parse(&r.period.from), parse(&r.period.to)) else {
        return 0;
    };
    let first = f.date_naive();
    let last = (t - chrono::Duration::milliseconds(1)).date_naive();
    let all = (last - first).num_days() + 1;
    u64::try_from(all)
        .unwrap_or(0)
        .saturating_sub(r.days.len() as u64)
}

/// Whether the first or last day is only partly in the period.
pub fn partial_days(r: &Report) -> bool {
    let midnight = |t: &str| parse(t).is_some_and(|d| d.time() == chrono::NaiveTime::MIN);
    !(midnight(&r.period.from) && midnight(&r.period.to))
}

/// Hours from the period's start to `t` (for capacity charts).
pub fn hours_since_start(r: &Report, t: &str) -> Option<f64> {
    let start = parse(&r.period.from)?;
    let t = parse(t)?;
    Some((t - start).num_seconds() as f64 / 3600.0)
}

/// Known job results in words; others as they are.
pub fn job_result(reason: &str) -> Option<&'static str> {
    match reason {
        "success" => Some("Succeeded"),
        "failed" => Some("Failed"),
        "system_failure" => Some("System failure"),
        _ => None,
    }
}

/// `start_after_unclean_stop` in words.
pub fn start_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "start" => Some(""),
        "start_after_unclean_stop" => Some(" (after an unclean stop)"),
        _ => None,
    }
}

/// The summary's sentences are Markdown with inline code in backticks:
/// split into plain text (`false`) and code (`true`) pieces, so each
/// writer can escape them for its format. An unmatched backtick is text.
pub fn code_pieces(s: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('`') {
        let Some(close) = rest[open + 1..].find('`').map(|c| c + open + 1) else {
            break;
        };
        if open > 0 {
            out.push((false, &rest[..open]));
        }
        out.push((true, &rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

/// Control characters (newlines, tabs, escapes) as spaces: every
/// user-derived string is shown on one line.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The top of a chart's value axis: the smallest of 1, 2, 2.5, 5 × 10ⁿ
/// at or above `max` (1 when there is nothing above 0).
pub fn axis_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= max {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Whether a level is one of the normalised ones (shown as a word).
pub fn known_level(level: &str) -> bool {
    matches!(level, "warning" | "error" | "fatal" | "panic")
}

/// `s` for HTML (and SVG) text and quoted attribute values: `&<>"'`
/// as entities, control characters as spaces.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(gauge(Some(4.0)), "4");
        assert_eq!(gauge(Some(2.25)), "2.2");
        assert_eq!(gauge(None), NONE);
        assert_eq!(gauge(Some(f64::NAN)), NONE);
        let p = |current, previous| Pair { current, previous };
        assert_eq!(change(p(140, 100)), "+40%");
        assert_eq!(change(p(75, 100)), "-25%");
        assert_eq!(change(p(100, 100)), "0%");
        assert_eq!(change(p(3, 0)), "new");
        assert_eq!(change(p(0, 0)), NONE);
        assert_eq!(secs(0), "0 s");
        assert_eq!(secs(840), "14 min");
        assert_eq!(secs(850), "14 min 10 s");
        assert_eq!(secs(7500), "2 h 5 min");
        assert_eq!(secs(3 * 86_400), "3 d");
        assert_eq!(length(604_800), "7 days");
        assert_eq!(bytes(1023), "1,023 bytes");
        assert_eq!(bytes(1_873_242_112), "1,873,242,112 bytes (1.7 GiB)");
    }

    #[test]
    fn axes_and_escaping() {
        assert_eq!(axis_max(0.0), 1.0);
        assert_eq!(axis_max(4.0), 5.0);
        assert_eq!(axis_max(247.0), 250.0);
        assert_eq!(axis_max(1000.0), 1000.0);
        assert_eq!(axis_max(1001.0), 2000.0);
        assert_eq!(
            html("<a href=\"x\">'&'</a>\n"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt; "
        );
    }

    #[test]
    fn times() {
        assert_eq!(time_long("2026-11-23T09:00:00Z"), "2026-11-23 09:00 UTC");
        assert_eq!(time_long("2026-11-23T09:00:04Z"), "2026-11-23 09:00:04 UTC");
        assert_eq!(time_long("not a time"), "not a time");
        assert_eq!(time_short("2026-11-23T09:00:59Z"), "11-23 09:00");
        let mut r: Report = serde_json::from_str(include_str!(
            "../../../tests/fixtures/report/sample-report.json"
        ))
        .unwrap();
        assert_eq!(day_short(&r, "2026-11-23"), "Mon 11-23");
        assert_eq!(days_left_out(&r), 0);
        r.period.from = "2025-12-30T00:00:00Z".into();
        r.period.to = "2026-01-02T00:00:00Z".into();
        assert_eq!(day_short(&r, "2025-12-31"), "2025-12-31");
        assert!(day_label(&r, "2025-12-31").starts_with("Wed 2025-12-31"));
        r.days.truncate(1);
        assert_eq!(days_left_out(&r), 2);
    }

    #[test]
    fn summary_pieces() {
        assert_eq!(
            code_pieces("new: `a b` (3) and `c`."),
            vec![
                (false, "new: "),
                (true, "a b"),
                (false, " (3) and "),
                (true, "c"),
                (false, ".")
            ]
        );
        assert_eq!(code_pieces("odd ` tick"), vec![(false, "odd ` tick")]);
    }
}
