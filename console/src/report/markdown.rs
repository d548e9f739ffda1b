//! The report as GitLab-flavoured Markdown, to paste into an issue: tables
//! that fit an issue's width and charts as Mermaid `xychart-beta` blocks
//! (GitLab renders ```` ```mermaid ```` blocks).
//!
//! Only layout: every figure comes from the [`Report`]. Everything that
//! came from a log (fingerprints, examples, reasons, runner and operator
//! names, paths) is shown as inline code built by [`code`] (in tables
//! [`cell`]), so a log line can neither inject Markdown or HTML nor
//! mention a GitLab user or issue; Mermaid blocks hold only numbers and
//! labels made here.

use std::fmt::Write as _;

use super::fmt::{self as f, NONE, THIS_PERIOD};
use super::model::*;

/// Up to this many runners, the per-day table has a column per runner;
/// beyond, a row per runner and day.
const WIDE_RUNNERS: usize = 4;

/// `writeln!` into a `String`, which cannot fail.
macro_rules! out {
    ($o:expr) => {
        $o.push('\n')
    };
    ($o:expr, $($t:tt)*) => {{
        let _ = writeln!($o, $($t)*);
    }};
}

mod errors;
mod operations;

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    header(&mut o, r);
    summary(&mut o, r);
    errors::errors(&mut o, r);
    errors::fingerprints(&mut o, r);
    operations::sessions(&mut o, r);
    operations::jobs(&mut o, r);
    operations::lifecycle(&mut o, r);
    operations::capacity(&mut o, r);
    operations::inputs(&mut o, r);
    // One newline at the end, not the blank line after the last block.
    let end = o.trim_end().len();
    o.truncate(end);
    o.push('\n');
    o
}

// --- escaping -------------------------------------------------------------

/// `s` as an inline code span: any backticks inside are kept (the fence is
/// longer than the longest run of them), control characters become spaces.
pub fn code(s: &str) -> String {
    let s = f::one_line(s);
    if s.is_empty() {
        return "(empty)".to_owned();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick, or with a space at both
    // ends, needs a space of padding each side (CommonMark strips one).
    let pad = s.starts_with('`')
        || s.ends_with('`')
        || (s.starts_with(' ') && s.ends_with(' ') && !s.trim().is_empty());
    let sp = if pad { " " } else { "" };
    format!("{fence}{sp}{s}{sp}{fence}")
}

/// [`code`] for a table cell: `|` escaped as `\|` so the row is not split
/// (GFM tables take `\|` as a pipe even inside code spans).
pub fn cell(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Plain text with Markdown's active characters backslash-escaped (on one
/// line; usable in table cells).
pub fn text(s: &str) -> String {
    let s = f::one_line(s);
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        let block_start = i == 0 && matches!(c, '-' | '+' | '=');
        if block_start
            || matches!(
                c,
                '\\' | '`'
                    | '*'
                    | '_'
                    | '['
                    | ']'
                    | '<'
                    | '>'
                    | '|'
                    | '~'
                    | '$'
                    | '&'
                    | '#'
                    | '!'
                    | '{'
                    | '}'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    // `1.` or `1)` at the start would open an ordered list.
    if let Some(end) = out.find(|c: char| !c.is_ascii_digit()) {
        if end > 0 && matches!(&out[end..end + 1], "." | ")") {
            out.insert(end, '\\');
        }
    }
    out
}

/// A summary sentence (Markdown with inline code) rebuilt from its
/// pieces, each escaped.
fn sentence(s: &str) -> String {
    f::code_pieces(s)
        .into_iter()
        .map(|(is_code, p)| if is_code { code(p) } else { text(p) })
        .collect()
}

/// A label inside a Mermaid block (a quoted string there): letters,
/// digits, spaces and `-:.,()`.
fn mermaid_label(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " -:.,()".contains(*c))
        .collect()
}

// --- building blocks ------------------------------------------------------

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

use Align::{Left as L, Right as R};

/// A table; cells are Markdown already escaped.
fn table(o: &mut String, head: &[(String, Align)], rows: &[Vec<String>]) {
    let h: Vec<&str> = head.iter().map(|(h, _)| h.as_str()).collect();
    out!(o, "| {} |", h.join(" | "));
    let a: Vec<&str> = head
        .iter()
        .map(|(_, a)| match a {
            Align::Left => ":--",
            Align::Right => "--:",
        })
        .collect();
    out!(o, "| {} |", a.join(" | "));
    for row in rows {
        out!(o, "| {} |", row.join(" | "));
    }
    out!(o);
}

fn h(s: &str, a: Align) -> (String, Align) {
    (s.to_owned(), a)
}

/// A "this period, previous period, change" table of pairs.
fn pair_table(o: &mut String, r: &Report, what: &str, rows: &[(&str, Pair)]) {
    let head = [
        h(what, L),
        h(THIS_PERIOD, R),
        (f::previous_header(r), R),
        h("Change", R),
    ];
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, p)| {
            vec![
                (*label).to_owned(),
                f::int(p.current),
                f::int(p.previous),
                f::change(*p),
            ]
        })
        .collect();
    table(o, &head, &rows);
}

/// Counts by reason, this period and the previous one; `empty` when
/// there are none.
fn reason_table(o: &mut String, r: &Report, what: &str, reasons: &[Reason], empty: &str) {
    if reasons.is_empty() {
        out!(o, "{empty}");
        out!(o);
        return;
    }
    let head = [
        h(what, L),
        h(THIS_PERIOD, R),
        (f::previous_header(r), R),
        h("Change", R),
    ];
    let rows: Vec<Vec<String>> = reasons
        .iter()
        .map(|x| {
            let p = Pair {
                current: x.current,
                previous: x.previous,
            };
            vec![
                cell(&x.reason),
                f::int(x.current),
                f::int(x.previous),
                f::change(p),
            ]
        })
        .collect();
    table(o, &head, &rows);
}

fn runner_list(names: &[String]) -> String {
    if names.is_empty() {
        return NONE.to_owned();
    }
    names.iter().map(|n| cell(n)).collect::<Vec<_>>().join(", ")
}

/// A count a day has for the fleet and for each runner.
type Metric = (&'static str, fn(&DayCounts) -> u64);

/// Days as rows with the fleet's figures, then each runner's in a column
/// (`a / b` for two metrics); beyond [`WIDE_RUNNERS`], a row per runner
/// and day instead, so the table still fits an issue's width.
fn per_day_table(o: &mut String, r: &Report, metrics: &[Metric]) {
    let names: Vec<&str> = metrics.iter().map(|m| m.0).collect();
    let values =
        |c: &DayCounts| -> Vec<String> { metrics.iter().map(|m| f::int((m.1)(c))).collect() };
    let counts = |d: &Day, n: &str| d.runners.get(n).copied().unwrap_or_default();
    let mut rows = Vec::new();
    if r.runners.len() <= WIDE_RUNNERS {
        let mut head = vec![h("Day (UTC)", L)];
        head.extend(names.iter().map(|n| (format!("{n}, all runners"), R)));
        let what = if names.len() > 1 {
            format!(" {}", names.join(" / ").to_lowercase())
        } else {
            String::new()
        };
        head.extend(r.runners.iter().map(|n| (format!("{}{what}", cell(n)), R)));
        for d in &r.days {
            let mut row = vec![f::day_label(r, &d.date)];
            row.extend(values(&d.total));
            row.extend(r.runners.iter().map(|n| values(&counts(d, n)).join(" / ")));
            rows.push(row);
        }
        table(o, &head, &rows);
    } else {
        let mut head = vec![h("Day (UTC)", L), h("Runner", L)];
        head.extend(names.iter().map(|n| h(n, R)));
        for d in &r.days {
            let mut row = vec![f::day_label(r, &d.date), "**all runners**".to_owned()];
            row.extend(values(&d.total));
            rows.push(row);
            for n in &r.runners {
                let mut row = vec![String::new(), cell(n)];
                row.extend(values(&counts(d, n)));
                rows.push(row);
            }
        }
        table(o, &head, &rows);
    }
}

/// A ```` ```mermaid ```` bar-and-line chart over categories. The value
/// axis starts at 0 (Mermaid would start it at the lowest value).
fn mermaid_days(
    o: &mut String,
    title: &str,
    y: &str,
    labels: &[String],
    bar: &[u64],
    line: &[u64],
) {
    let top = bar.iter().chain(line).copied().max().unwrap_or(0);
    let labels: Vec<String> = labels
        .iter()
        .map(|l| format!("\"{}\"", mermaid_label(l)))
        .collect();
    let nums = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    out!(o, "```mermaid");
    out!(o, "xychart-beta");
    out!(o, "    title \"{}\"", mermaid_label(title));
    out!(o, "    x-axis \"Day (UTC)\" [{}]", labels.join(", "));
    out!(
        o,
        "    y-axis \"{}\" 0 --> {}",
        mermaid_label(y),
        f::axis_max(top as f64)
    );
    out!(o, "    bar [{}]", nums(bar));
    out!(o, "    line [{}]", nums(line));
    out!(o, "```");
    out!(o);
}

// --- sections -------------------------------------------------------------

fn header(o: &mut String, r: &Report) {
    out!(o, "# Runner report: {}", f::range_long(&r.period));
    out!(o);
    let runners = if r.runners.is_empty() {
        "none found".to_owned()
    } else {
        r.runners
            .iter()
            .map(|n| code(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out!(
        o,
        "**Period:** {} ({}), compared with the previous period {}.\\",
        f::range_long(&r.period),
        f::length(r.period.seconds),
        f::range_long(&r.previous)
    );
    out!(o, "**Runners ({}):** {runners}\\", r.runners.len());
    out!(
        o,
        "*Written by `termgate report` at {}. Errors are records at level error, fatal or panic; warnings at level warning. Times and days are UTC.*",
        f::time_long(&r.generated_at)
    );
    out!(o);
}

fn summary(o: &mut String, r: &Report) {
    out!(o, "## State of things");
    out!(o);
    if r.summary.is_empty() {
        out!(o, "Nothing to report.");
    }
    for s in &r.summary {
        out!(o, "- {}", sentence(s));
    }
    out!(o);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_keep_backticks_and_stay_on_one_line() {
        assert_eq!(code("a b"), "`a b`");
        assert_eq!(code("run `id` now"), "``run `id` now``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code("a\nb\r\tc"), "`a b  c`");
        assert_eq!(code(""), "(empty)");
        assert_eq!(code(" a "), "`  a  `");
    }

    #[test]
    fn table_cells_escape_pipes_even_after_a_backslash() {
        assert_eq!(cell("a|b"), "`a\\|b`");
        // GFM takes `\|` as an escaped pipe: `a\` then `\|`.
        assert_eq!(cell("a\\|b"), "`a\\\\|b`");
        assert!(!cell("x|y|z").contains('\n'));
    }

    #[test]
    fn text_escapes_markdown_and_html() {
        assert_eq!(text("<script>"), "\\<script\\>");
        assert_eq!(
            text("a|b `c` *d* _e_ [f](g)"),
            "a\\|b \\`c\\` \\*d\\* \\_e\\_ \\[f\\](g)"
        );
        assert_eq!(text("- item"), "\\- item");
        assert_eq!(text("1. item"), "1\\. item");
        assert_eq!(text("# h\nnext"), "\\# h next");
        assert_eq!(text("up 40% (1,204 → 1,690)"), "up 40% (1,204 → 1,690)");
    }

    #[test]
    fn summary_sentences_keep_code_and_escape_the_rest() {
        assert_eq!(
            sentence("new: `a|<b>` (3) & more <i>"),
            "new: `a|<b>` (3) \\& more \\<i\\>"
        );
    }

    fn report() -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            generated_at: "2026-11-30T00:00:00Z".into(),
            period: Period {
                from: "2026-11-23T00:00:00Z".into(),
                to: "2026-11-30T00:00:00Z".into(),
                seconds: 604_800,
            },
            previous: Period {
                from: "2026-11-16T00:00:00Z".into(),
                to: "2026-11-23T00:00:00Z".into(),
                seconds: 604_800,
            },
            summary: vec![],
            inputs: Inputs::default(),
            runners: vec![],
            totals: Totals::default(),
            days: vec![],
            errors: Errors::default(),
            sessions: Sessions::default(),
            jobs: Jobs::default(),
            lifecycle: Lifecycle::default(),
            capacity: None,
            capacity_error: None,
        }
    }

    fn hostile() -> Fingerprint {
        Fingerprint {
            fingerprint: "bad | `tick` <img src=x>\n# heading".into(),
            level: "error".into(),
            count: 2,
            previous_count: 0,
            trend: Trend::New,
            first_seen: None,
            last_seen: None,
            runners: vec!["r|1".into()],
            per_day: vec![],
            example: "line | `x` <script>alert(1)</script>\n| a | b |".into(),
        }
    }

    #[test]
    fn a_hostile_fingerprint_stays_in_its_cell() {
        let mut r = report();
        r.errors.top = vec![hostile()];
        r.errors.distinct = 1;
        let md = render(&r);
        let row = md
            .lines()
            .find(|l| l.starts_with("| 1 |"))
            .expect("a fingerprint row");
        // The row keeps its 8 cells: no unescaped `|` inside one.
        let mut cells = 0;
        let mut prev = ' ';
        for c in row.chars() {
            if c == '|' && prev != '\\' {
                cells += 1;
            }
            prev = c;
        }
        assert_eq!(cells, 9, "{row}");
        assert!(
            row.contains("``bad \\| `tick` <img src=x> # heading``"),
            "{row}"
        );
        assert!(!md.contains("\n# heading"), "{md}");
        assert!(!md.contains("<script>alert(1)</script>\n"), "{md}");
        // Outside code, no raw HTML from the log at all.
        for l in md.lines() {
            let outside = outside_code(l);
            assert!(!outside.contains("<script"), "{l}");
            assert!(!outside.contains("<img"), "{l}");
        }
    }

    /// The text of a line outside its code spans (CommonMark: a run of n
    /// backticks opens a span that the next run of exactly n closes).
    fn outside_code(line: &str) -> String {
        let b: Vec<char> = line.chars().collect();
        let run_at = |i: usize| b[i..].iter().take_while(|c| **c == '`').count();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != '`' {
                out.push(b[i]);
                i += 1;
                continue;
            }
            let n = run_at(i);
            let mut j = i + n;
            let mut close = None;
            while j < b.len() {
                if b[j] == '`' {
                    let m = run_at(j);
                    if m == n {
                        close = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(end) => i = end,
                None => {
                    out.extend(&b[i..i + n]);
                    i += n;
                }
            }
        }
        out
    }

    #[test]
    fn outside_code_follows_commonmark() {
        assert_eq!(outside_code("a `b` c ``d`e`` f"), "a  c  f");
        assert_eq!(outside_code("a ` b"), "a ` b");
    }

    #[test]
    fn empty_sections_say_so_in_one_line() {
        let md = render(&report());
        for want in [
            "No warnings or errors this period.",
            "None: every fingerprint of the previous period was seen again.",
            "The logs have no terminal session events",
            "No job finished in the logs, in either period.",
            "No runner started, stopped uncleanly or logged a fatal error this period.",
            "Capacity needs metric history: run `termgate report` with `--prometheus URL`",
            "Nothing to report.",
            "No days in the period.",
        ] {
            assert!(md.contains(want), "missing {want:?} in\n{md}");
        }
        // No table without rows: every header row is followed by at least one row.
        let lines: Vec<&str> = md.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("| :--") || l.starts_with("| --:") {
                assert!(
                    lines.get(i + 1).is_some_and(|n| n.starts_with('|')),
                    "empty table at line {i}:\n{md}"
                );
            }
        }
    }

    #[test]
    fn many_runners_get_a_row_each_per_day() {
        let mut r = report();
        r.runners = (1..=6).map(|i| format!("r{i}")).collect();
        let mut day = Day {
            date: "2026-11-23".into(),
            ..Day::default()
        };
        for (i, n) in r.runners.iter().enumerate() {
            let c = DayCounts {
                errors: i as u64,
                ..DayCounts::default()
            };
            day.runners.insert(n.clone(), c);
        }
        r.days = vec![day];
        let md = render(&r);
        assert!(
            md.contains("| Day (UTC) | Runner | Errors | Warnings |"),
            "{md}"
        );
        assert!(
            md.contains("| Mon 11-23 | **all runners** | 0 | 0 |"),
            "{md}"
        );
        assert!(md.contains("|  | `r6` | 5 | 0 |"), "{md}");
    }

    #[test]
    fn capacity_error_is_shown_as_code() {
        let mut r = report();
        r.capacity_error = Some("connection refused <b>".into());
        let md = render(&r);
        assert!(
            md.contains("could not be read from Prometheus: `connection refused <b>`"),
            "{md}"
        );
    }
}
