//! The report as one self-contained HTML file: inline CSS, inline SVG
//! charts ([`super::svg`]), no scripts and no external resources (no
//! fonts, images or links to fetch), laid out to print on A4.
//!
//! Same sections as the Markdown ([`super::markdown`]); only layout:
//! every figure comes from the [`Report`]. Everything that came from a
//! log is HTML-escaped ([`f::html`]).

use std::fmt::Write as _;

use super::fmt::{self as f, html as esc, NONE, THIS_PERIOD};
use super::model::*;
use super::svg::{self, BarChart, BarSeries, LineChart, LineSeries};

const ERRORS: &str = "#c0392b";
const WARNINGS: &str = "#d99a1e";
const SESSIONS: &str = "#2f6fbf";
const JOBS: &str = "#5a8f3d";
const FAILED: &str = "#c0392b";
const AVAILABLE: &str = "#1a7f37";
const ACTIVE: &str = "#2f6fbf";
const CONCURRENT: &str = "#6e7781";

const CSS: &str = r#"
@page { size: A4; margin: 15mm }
* { box-sizing: border-box }
html { background: #fff }
body { font-family: system-ui, "Segoe UI", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif;
  font-size: 10.5pt; line-height: 1.4; color: #1f2328; background: #fff;
  max-width: 180mm; margin: 0 auto; padding: 10mm 0 }
@media print { body { max-width: none; padding: 0 } }
h1 { font-size: 17pt; margin: 0 0 4pt }
h2 { font-size: 13.5pt; margin: 16pt 0 6pt; padding-bottom: 2pt; border-bottom: 1px solid #d0d7de;
  break-after: avoid }
h3 { font-size: 11.5pt; margin: 10pt 0 4pt; break-after: avoid }
h4 { font-size: 10.5pt; margin: 8pt 0 2pt; break-after: avoid }
p { margin: 4pt 0 }
.meta { color: #57606a; font-size: 9.5pt }
.note { color: #57606a; font-size: 9pt }
ul { margin: 4pt 0; padding-left: 16pt }
li { margin: 1.5pt 0 }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt; font-size: 9pt }
thead { display: table-header-group }
tr { break-inside: avoid }
th, td { border: 1px solid #d0d7de; padding: 2pt 4pt; text-align: left; vertical-align: top }
th { background: #f3f4f6; font-weight: 600 }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums }
td.n, td.d { white-space: nowrap }
td.fp { width: 46% }
.nw { white-space: nowrap; overflow-wrap: normal }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 8.5pt;
  background: #f3f4f6; border-radius: 2px; padding: 0 2px; overflow-wrap: anywhere }
.example { display: block; margin-top: 2pt; color: #57606a }
.new { font-weight: 700; color: #b42318 }
figure { margin: 6pt 0 10pt; break-inside: avoid }
figure svg { display: block; width: 100%; height: auto }
figcaption { color: #57606a; font-size: 8.5pt; margin-top: 2pt }
.block { break-inside: avoid }
.part h3 + p, .part h4 + p { break-before: avoid }
"#;

/// `write!` into a `String`, which cannot fail.
macro_rules! put {
    ($o:expr, $($t:tt)*) => {{
        let _ = write!($o, $($t)*);
    }};
}

mod errors;
mod operations;

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    put!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Runner report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&f::range_long(&r.period))
    );
    header(&mut o, r);
    summary(&mut o, r);
    errors::errors(&mut o, r);
    errors::fingerprints(&mut o, r);
    operations::sessions(&mut o, r);
    operations::jobs(&mut o, r);
    operations::lifecycle(&mut o, r);
    operations::capacity(&mut o, r);
    operations::inputs(&mut o, r);
    o.push_str("</body>\n</html>\n");
    o
}

// --- building blocks ------------------------------------------------------

/// Inline code for anything from a log.
fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// A summary sentence: Markdown inline code as `<code>`, the rest text.
fn sentence(s: &str) -> String {
    f::code_pieces(s)
        .into_iter()
        .map(|(is_code, p)| if is_code { code(p) } else { esc(p) })
        .collect()
}

/// How a column is laid out.
#[derive(Clone, Copy)]
enum Align {
    Left,
    /// Numbers.
    Right,
    /// Days and times: not wrapped.
    Day,
    /// Fingerprints: the widest column.
    Wide,
}

use Align::{Day as D, Left as L, Right as R, Wide as F};

fn class(a: Align, header: bool) -> &'static str {
    match (a, header) {
        (Align::Left, _) | (Align::Day, true) | (Align::Wide, true) => "",
        (Align::Right, _) => " class=\"n\"",
        (Align::Day, false) => " class=\"d\"",
        (Align::Wide, false) => " class=\"fp\"",
    }
}

/// A table; header texts are plain (escaped here), cells are HTML.
fn table(o: &mut String, head: &[(String, Align)], rows: &[Vec<String>]) {
    o.push_str("<table>\n<thead><tr>");
    for (h, a) in head {
        put!(o, "<th{}>{}</th>", class(*a, true), esc(h));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        o.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let a = head.get(i).map_or(Align::Left, |h| h.1);
            put!(o, "<td{}>{c}</td>", class(a, false));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
}

fn h(s: &str, a: Align) -> (String, Align) {
    (s.to_owned(), a)
}

fn p(o: &mut String, html: &str) {
    put!(o, "<p>{html}</p>\n");
}

fn note(o: &mut String, html: &str) {
    put!(o, "<p class=\"note\">{html}</p>\n");
}

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
                esc(label),
                f::int(p.current),
                f::int(p.previous),
                esc(&f::change(*p)),
            ]
        })
        .collect();
    table(o, &head, &rows);
}

fn reason_table(o: &mut String, r: &Report, what: &str, reasons: &[Reason], empty: &str) {
    if reasons.is_empty() {
        p(o, &esc(empty));
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
            let pair = Pair {
                current: x.current,
                previous: x.previous,
            };
            vec![
                code(&x.reason),
                f::int(x.current),
                f::int(x.previous),
                esc(&f::change(pair)),
            ]
        })
        .collect();
    table(o, &head, &rows);
}

/// A runner name (or instance) as code kept on one line.
fn runner(n: &str) -> String {
    format!("<code class=\"nw\">{}</code>", esc(n))
}

fn runner_list(names: &[String]) -> String {
    if names.is_empty() {
        return NONE.to_owned();
    }
    names
        .iter()
        .map(|n| runner(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Up to this many runners, per-day tables have a column per runner;
/// beyond, a row per runner and day (so they fit A4).
const WIDE_RUNNERS: usize = 4;

/// A count a day has for the fleet and for each runner.
type Metric = (&'static str, fn(&DayCounts) -> u64);

/// Days as rows with the fleet's figures, then each runner's in a column
/// (`a / b` for two metrics); beyond [`WIDE_RUNNERS`], a row per runner
/// and day instead.
fn per_day_table(o: &mut String, r: &Report, metrics: &[Metric]) {
    let names: Vec<&str> = metrics.iter().map(|m| m.0).collect();
    let values =
        |c: &DayCounts| -> Vec<String> { metrics.iter().map(|m| f::int((m.1)(c))).collect() };
    let counts = |d: &Day, n: &str| d.runners.get(n).copied().unwrap_or_default();
    let mut rows = Vec::new();
    if r.runners.len() <= WIDE_RUNNERS {
        let mut head = vec![h("Day (UTC)", D)];
        head.extend(names.iter().map(|n| (format!("{n}, all runners"), R)));
        let what = if names.len() > 1 {
            format!(": {}", names.join(" / ").to_lowercase())
        } else {
            String::new()
        };
        head.extend(r.runners.iter().map(|n| (format!("{n}{what}"), R)));
        for d in &r.days {
            let mut row = vec![esc(&f::day_label(r, &d.date))];
            row.extend(values(&d.total));
            row.extend(r.runners.iter().map(|n| values(&counts(d, n)).join(" / ")));
            rows.push(row);
        }
        table(o, &head, &rows);
    } else {
        let mut head = vec![h("Day (UTC)", D), h("Runner", L)];
        head.extend(names.iter().map(|n| h(n, R)));
        for d in &r.days {
            let mut row = vec![
                esc(&f::day_label(r, &d.date)),
                "<strong>all runners</strong>".to_owned(),
            ];
            row.extend(values(&d.total));
            rows.push(row);
            for n in &r.runners {
                let mut row = vec![String::new(), runner(n)];
                row.extend(values(&counts(d, n)));
                rows.push(row);
            }
        }
        table(o, &head, &rows);
    }
}

fn figure(o: &mut String, svg: &str, caption: &str) {
    put!(
        o,
        "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
        esc(caption)
    );
}

fn day_labels(r: &Report) -> Vec<String> {
    r.days.iter().map(|d| f::day_short(r, &d.date)).collect()
}

fn partial_note(r: &Report) -> &'static str {
    if f::partial_days(r) {
        " The first and last days are only partly in the period."
    } else {
        ""
    }
}

// --- sections -------------------------------------------------------------

fn header(o: &mut String, r: &Report) {
    put!(
        o,
        "<header>\n<h1>Runner report: {}</h1>\n",
        esc(&f::range_long(&r.period))
    );
    p(
        o,
        &format!(
            "<strong>Period:</strong> {} ({}), compared with the previous period {}.<br>\
             <strong>Runners ({}):</strong> {}",
            esc(&f::range_long(&r.period)),
            esc(&f::length(r.period.seconds)),
            esc(&f::range_long(&r.previous)),
            r.runners.len(),
            if r.runners.is_empty() {
                "none found".to_owned()
            } else {
                runner_list(&r.runners)
            }
        ),
    );
    put!(
        o,
        "<p class=\"meta\">Written by <code>termgate report</code> at {}. Errors are records at level error, fatal or panic; warnings at level warning. Times and days are UTC.</p>\n</header>\n",
        esc(&f::time_long(&r.generated_at))
    );
}

fn summary(o: &mut String, r: &Report) {
    o.push_str("<section class=\"block\">\n<h2>State of things</h2>\n");
    if r.summary.is_empty() {
        p(o, "Nothing to report.");
    } else {
        o.push_str("<ul>\n");
        for s in &r.summary {
            put!(o, "<li>{}</li>\n", sentence(s));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn log_text_is_escaped_everywhere() {
        let mut r = report();
        let evil = "x | `y` <script>alert(1)</script>\n<img src=\"http://e/x\">";
        r.runners = vec!["<b>r</b>".into()];
        r.summary = vec![format!("new: `{evil}` & <i>more</i>")];
        r.errors.top = vec![Fingerprint {
            fingerprint: evil.into(),
            level: "<x>".into(),
            count: 1,
            previous_count: 0,
            trend: Trend::New,
            first_seen: None,
            last_seen: None,
            runners: vec!["<b>r</b>".into()],
            per_day: vec![],
            example: evil.into(),
        }];
        r.capacity_error = Some("<svg onload=x>".into());
        let html = render(&r);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>r</b>"), "{html}");
        assert!(!html.contains("<i>more"), "{html}");
        assert!(!html.contains("<svg onload"), "{html}");
        assert!(!html.contains("<x>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<code>x | `y` &lt;script&gt;"), "{html}");
        assert!(!html.contains("src=\"http"), "{html}");
    }

    #[test]
    fn empty_sections_say_so_in_one_line() {
        let html = render(&report());
        for want in [
            "Nothing to report.",
            "No days in the period.",
            "No warnings or errors this period.",
            "None: every fingerprint of the previous period was seen again.",
            "The logs have no terminal session events",
            "No job finished in the logs, in either period.",
            "No runner started, stopped uncleanly or logged a fatal error this period.",
            "Capacity needs metric history",
        ] {
            assert!(html.contains(want), "missing {want:?}");
        }
        assert!(!html.contains("<tbody>\n</tbody>"), "an empty table");
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    }

    #[test]
    fn many_runners_get_a_row_each_per_day() {
        let mut r = report();
        r.runners = (1..=6).map(|i| format!("r<{i}>")).collect();
        let mut day = Day {
            date: "2026-11-23".into(),
            ..Day::default()
        };
        for n in &r.runners {
            day.runners.insert(n.clone(), DayCounts::default());
        }
        r.days = vec![day];
        let html = render(&r);
        assert!(html.contains("<strong>all runners</strong>"), "{html}");
        assert!(
            html.contains("<code class=\"nw\">r&lt;6&gt;</code>"),
            "{html}"
        );
        assert!(!html.contains("r<6>"), "{html}");
    }

    #[test]
    fn ticks_fall_on_midnights() {
        let mut r = report();
        r.period.from = "2026-11-23T09:00:00Z".into();
        r.period.to = "2026-11-30T09:00:00Z".into();
        let t = operations::midnight_ticks(&r);
        assert_eq!(t.len(), 7);
        assert_eq!(t[0], (15.0, "Tue 11-24".to_owned()));
        assert_eq!(t[6], (159.0, "Mon 11-30".to_owned()));
    }
}
