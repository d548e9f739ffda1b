//! Inline SVG charts for the HTML report: grouped bars over categories
//! (days) and lines over a numeric axis (hours) with gaps where data is
//! missing. Each has a title, axes with ticks and titles, a legend, and
//! value labels on bars where they fit. The SVG is for inlining in HTML:
//! no scripts, no external references, fonts by generic family only;
//! every text is escaped. It scales to its container's width.

use std::fmt::Write as _;

use super::fmt::{self as f, html as esc};

/// Drawing size in SVG units (about 180 mm wide at 96 dpi).
const W: f64 = 680.0;
const H: f64 = 250.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 44.0;
/// Value ticks on the y axis (plus 0).
const Y_TICKS: u32 = 5;
const FONT: &str = "font-family=\"sans-serif\"";

pub struct BarSeries<'a> {
    pub name: &'a str,
    /// A CSS colour (`#c0392b`).
    pub colour: &'a str,
    /// One value per category.
    pub values: Vec<u64>,
}

pub struct BarChart<'a> {
    pub title: &'a str,
    pub x_title: &'a str,
    pub y_title: &'a str,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries<'a>>,
}

pub struct LineSeries<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    /// `true` draws it dashed (a reference line).
    pub dashed: bool,
    /// `(x, y)`; `None` is a gap.
    pub points: Vec<(f64, Option<f64>)>,
}

pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_title: &'a str,
    pub y_title: &'a str,
    pub x_min: f64,
    pub x_max: f64,
    /// Labelled ticks on the x axis: `(x, label)`.
    pub x_ticks: Vec<(f64, String)>,
    pub series: Vec<LineSeries<'a>>,
}

/// `writeln!` into a `String`, which cannot fail.
macro_rules! put {
    ($o:expr, $($t:tt)*) => {{
        let _ = write!($o, $($t)*);
    }};
}

fn open(o: &mut String, title: &str) {
    put!(
        o,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\
         <text x=\"{LEFT}\" y=\"16\" {FONT} font-size=\"13\" font-weight=\"bold\" fill=\"#1f2328\">{t}</text>",
        t = esc(title)
    );
}

/// Legend entries in a row under the title; `swatch` draws one at `x`.
fn legend(o: &mut String, entries: &[(&str, &str, bool)], line: bool) {
    let mut x = LEFT;
    let y = 34.0;
    for (name, colour, dashed) in entries {
        if line {
            let dash = if *dashed {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            };
            put!(
                o,
                "<line x1=\"{x}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y1}\" stroke=\"{colour}\" stroke-width=\"2.5\"{dash}/>",
                y1 = y - 4.0,
                x2 = x + 18.0
            );
        } else {
            put!(
                o,
                "<rect x=\"{x}\" y=\"{y0}\" width=\"12\" height=\"10\" fill=\"{colour}\"/>",
                y0 = y - 9.0
            );
        }
        put!(
            o,
            "<text x=\"{tx}\" y=\"{y}\" {FONT} font-size=\"11\" fill=\"#1f2328\">{n}</text>",
            tx = x + 23.0,
            n = esc(name)
        );
        // Roughly 6 units per character at 11 px.
        x += 23.0 + 6.2 * name.chars().count() as f64 + 16.0;
    }
}

/// The value axis: gridlines, tick labels and its title; returns the
/// scale (value → y).
fn y_axis(o: &mut String, top: f64, title: &str) -> impl Fn(f64) -> f64 {
    let (y0, y1) = (H - BOTTOM, TOP);
    let scale = move |v: f64| y0 - (v / top) * (y0 - y1);
    for i in 0..=Y_TICKS {
        let v = top * f64::from(i) / f64::from(Y_TICKS);
        let y = scale(v);
        put!(
            o,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\" stroke=\"{c}\" stroke-width=\"1\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" {FONT} font-size=\"10\" text-anchor=\"end\" fill=\"#57606a\">{l}</text>",
            x2 = W - RIGHT,
            c = if i == 0 { "#8c959f" } else { "#e5e7eb" },
            tx = LEFT - 5.0,
            ty = y + 3.5,
            l = esc(&f::gauge(Some(v)))
        );
    }
    put!(
        o,
        "<text transform=\"translate(12 {cy}) rotate(-90)\" {FONT} font-size=\"10\" text-anchor=\"middle\" fill=\"#57606a\">{t}</text>",
        cy = (y0 + y1) / 2.0,
        t = esc(title)
    );
    scale
}

fn x_title(o: &mut String, title: &str) {
    put!(
        o,
        "<text x=\"{cx}\" y=\"{y}\" {FONT} font-size=\"10\" text-anchor=\"middle\" fill=\"#57606a\">{t}</text>",
        cx = (LEFT + W - RIGHT) / 2.0,
        y = H - 6.0,
        t = esc(title)
    );
}

/// Grouped bars: one group per category, one bar per series, the value
/// over each bar when it fits.
pub fn bar_chart(c: &BarChart) -> String {
    let mut o = String::new();
    open(&mut o, c.title);
    let entries: Vec<(&str, &str, bool)> =
        c.series.iter().map(|s| (s.name, s.colour, false)).collect();
    legend(&mut o, &entries, false);
    let max = c
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let top = f::axis_max(max as f64);
    let scale = y_axis(&mut o, top, c.y_title);
    let n = c.categories.len().max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let group = plot_w / n;
    let per = c.series.len().max(1) as f64;
    let bar = group * 0.8 / per;
    let label_chars = max.to_string().len() + max.to_string().len() / 3;
    let labels_fit = bar >= 5.6 * label_chars as f64 + 2.0;
    // Category labels that would overlap are thinned to every k-th.
    let widest = c
        .categories
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0) as f64;
    let every = ((widest * 5.8 + 6.0) / group).ceil().max(1.0) as usize;
    for (i, cat) in c.categories.iter().enumerate() {
        let gx = LEFT + group * i as f64;
        for (s, series) in c.series.iter().enumerate() {
            let v = series.values.get(i).copied().unwrap_or(0);
            let x = gx + group * 0.1 + bar * s as f64;
            let y = scale(v as f64);
            put!(
                o,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{col}\"><title>{t}</title></rect>",
                w = (bar - 1.0).max(1.0),
                h = (H - BOTTOM - y).max(0.0),
                col = series.colour,
                t = esc(&format!("{}, {cat}: {}", series.name, f::int(v)))
            );
            if labels_fit {
                put!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{ty:.1}\" {FONT} font-size=\"9.5\" text-anchor=\"middle\" fill=\"#1f2328\">{l}</text>",
                    cx = x + bar / 2.0,
                    ty = y - 3.0,
                    l = f::int(v)
                );
            }
        }
        if i % every == 0 {
            put!(
                o,
                "<text x=\"{cx:.1}\" y=\"{ty}\" {FONT} font-size=\"10\" text-anchor=\"middle\" fill=\"#1f2328\">{l}</text>",
                cx = gx + group / 2.0,
                ty = H - BOTTOM + 14.0,
                l = esc(cat)
            );
        }
    }
    x_title(&mut o, c.x_title);
    o.push_str("</svg>");
    o
}

/// Lines over a numeric x axis; a `None` breaks the line, a lone point
/// between gaps is drawn as a dot.
pub fn line_chart(c: &LineChart) -> String {
    let mut o = String::new();
    open(&mut o, c.title);
    let entries: Vec<(&str, &str, bool)> = c
        .series
        .iter()
        .map(|s| (s.name, s.colour, s.dashed))
        .collect();
    legend(&mut o, &entries, true);
    let max = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let top = f::axis_max(max);
    let scale_y = y_axis(&mut o, top, c.y_title);
    let span = if c.x_max > c.x_min {
        c.x_max - c.x_min
    } else {
        1.0
    };
    let scale_x = |x: f64| LEFT + (x - c.x_min) / span * (W - LEFT - RIGHT);
    for (x, label) in &c.x_ticks {
        if *x < c.x_min || *x > c.x_max {
            continue;
        }
        let px = scale_x(*x);
        put!(
            o,
            "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{yb}\" stroke=\"#eef0f2\" stroke-width=\"1\"/>\
             <line x1=\"{px:.1}\" y1=\"{yb}\" x2=\"{px:.1}\" y2=\"{yt}\" stroke=\"#8c959f\" stroke-width=\"1\"/>\
             <text x=\"{px:.1}\" y=\"{ty}\" {FONT} font-size=\"10\" text-anchor=\"middle\" fill=\"#1f2328\">{l}</text>",
            yb = H - BOTTOM,
            yt = H - BOTTOM + 4.0,
            ty = H - BOTTOM + 15.0,
            l = esc(label)
        );
    }
    for s in &c.series {
        let dash = if s.dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (x, y) in &s.points {
            match y.filter(|v| v.is_finite()) {
                Some(y) if x.is_finite() => {
                    if let Some(run) = runs.last_mut() {
                        run.push((scale_x(*x), scale_y(y)));
                    }
                }
                _ => {
                    if runs.last().is_some_and(|r| !r.is_empty()) {
                        runs.push(Vec::new());
                    }
                }
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            if let [(x, y)] = run.as_slice() {
                put!(
                    o,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{c}\"/>",
                    c = s.colour
                );
                continue;
            }
            let d: Vec<String> = run
                .iter()
                .enumerate()
                .map(|(i, (x, y))| format!("{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" }))
                .collect();
            put!(
                o,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" stroke-linejoin=\"round\"{dash}/>",
                d = d.join(" "),
                c = s.colour
            );
        }
    }
    x_title(&mut o, c.x_title);
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_have_axes_legend_labels_and_escaped_text() {
        let svg = bar_chart(&BarChart {
            title: "Errors <per> day",
            x_title: "Day (UTC)",
            y_title: "Records",
            categories: vec!["Mon 11-23".into(), "Tue 11-24".into()],
            series: vec![
                BarSeries {
                    name: "Errors & co",
                    colour: "#c0392b",
                    values: vec![86, 145],
                },
                BarSeries {
                    name: "Warnings",
                    colour: "#e0a030",
                    values: vec![43, 74],
                },
            ],
        });
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains("Errors &lt;per&gt; day"));
        assert!(svg.contains(">Errors &amp; co<"));
        assert!(svg.contains(">Tue 11-24<"));
        assert!(svg.contains(">145<"), "value labels");
        assert!(svg.contains(">200<"), "the axis goes to 200");
        assert!(!svg.contains("Errors <per>"));
        assert_eq!(svg.matches("<rect ").count(), 1 + 2 + 4);
    }

    #[test]
    fn crowded_category_labels_are_thinned() {
        let categories: Vec<String> = (1..=31).map(|d| format!("Mon 12-{d:02}")).collect();
        let svg = bar_chart(&BarChart {
            title: "t",
            x_title: "x",
            y_title: "y",
            categories,
            series: vec![BarSeries {
                name: "s",
                colour: "#000000",
                values: vec![1_234_567; 31],
            }],
        });
        let shown = (1..=31)
            .filter(|d| svg.contains(&format!(">Mon 12-{d:02}<")))
            .count();
        assert!((5..=16).contains(&shown), "{shown} labels");
        assert!(svg.contains(">Mon 12-01<"));
        // Seven-digit values do not fit over 31 narrow bars.
        assert!(!svg.contains(">1,234,567<"));
    }

    #[test]
    fn lines_break_at_gaps() {
        let svg = line_chart(&LineChart {
            title: "Terminals",
            x_title: "UTC",
            y_title: "Terminals",
            x_min: 0.0,
            x_max: 4.0,
            x_ticks: vec![(0.0, "Mon".into()), (9.0, "outside".into())],
            series: vec![LineSeries {
                name: "available",
                colour: "#1a7f37",
                dashed: false,
                points: vec![
                    (0.0, Some(1.0)),
                    (1.0, Some(2.0)),
                    (2.0, None),
                    (3.0, Some(4.0)),
                    (4.0, None),
                ],
            }],
        });
        assert_eq!(svg.matches("<path ").count(), 1);
        assert_eq!(svg.matches("<circle ").count(), 1);
        assert!(svg.contains(">Mon<") && !svg.contains("outside"));
    }

    #[test]
    fn empty_charts_do_not_panic() {
        let svg = bar_chart(&BarChart {
            title: "",
            x_title: "",
            y_title: "",
            categories: vec![],
            series: vec![],
        });
        assert!(svg.ends_with("</svg>"));
        let svg = line_chart(&LineChart {
            title: "",
            x_title: "",
            y_title: "",
            x_min: 0.0,
            x_max: 0.0,
            x_ticks: vec![],
            series: vec![],
        });
        assert!(svg.ends_with("</svg>"));
    }
}
