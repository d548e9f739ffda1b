//! HTML: errors and warnings per day, top and gone fingerprints.

use super::*;

pub(super) fn errors(o: &mut String, r: &Report) {
    o.push_str("<section>\n<h2>Errors and warnings</h2>\n");
    pair_table(
        o,
        r,
        "Records",
        &[
            ("Errors (error, fatal, panic)", r.totals.errors),
            ("Warnings", r.totals.warnings),
        ],
    );
    o.push_str("<div class=\"part\">\n<h3>Per day (UTC)</h3>\n");
    let left_out = f::days_left_out(r);
    if left_out > 0 {
        p(
            o,
            &format!(
                "A long period: the {} days with no warning, error, session or job are left out here and below.",
                f::int(left_out)
            ),
        );
    }
    if r.days.is_empty() {
        p(o, "No days in the period.");
        o.push_str("</div>\n</section>\n");
        return;
    }
    figure(
        o,
        &svg::bar_chart(&BarChart {
            title: "Errors and warnings per day, all runners",
            x_title: "Day (UTC)",
            y_title: "Records per day",
            categories: day_labels(r),
            series: vec![
                BarSeries {
                    name: "Errors (error, fatal, panic)",
                    colour: ERRORS,
                    values: r.days.iter().map(|d| d.total.errors).collect(),
                },
                BarSeries {
                    name: "Warnings",
                    colour: WARNINGS,
                    values: r.days.iter().map(|d| d.total.warnings).collect(),
                },
            ],
        }),
        &format!("Records per UTC day, all runners.{}", partial_note(r)),
    );
    per_day_table(
        o,
        r,
        &[("Errors", |c| c.errors), ("Warnings", |c| c.warnings)],
    );
    if r.inputs.untimed_records > 0 {
        note(
            o,
            &format!(
                "{} records without a timestamp count in the period's totals but in no day.",
                f::int(r.inputs.untimed_records)
            ),
        );
    }
    o.push_str("</div>\n</section>\n");
}

/// First – last seen, each time kept on one line.
fn seen(first: &Option<String>, last: &Option<String>) -> String {
    let t = |s: &str| format!("<span class=\"nw\">{}</span>", esc(&f::time_short(s)));
    match (first, last) {
        (Some(a), Some(b)) => format!("{} – {}", t(a), t(b)),
        (Some(a), None) | (None, Some(a)) => t(a),
        (None, None) => "no timestamp".to_owned(),
    }
}

fn fingerprint_cell(fp: &Fingerprint) -> String {
    let mut s = code(&fp.fingerprint);
    if !fp.example.is_empty() {
        put!(
            s,
            "<span class=\"example\">e.g. <code>{}</code></span>",
            esc(&fp.example)
        );
    }
    s
}

fn level(l: &str) -> String {
    if f::known_level(l) {
        esc(l)
    } else {
        code(l)
    }
}

fn trend(fp: &Fingerprint) -> String {
    let pair = Pair {
        current: fp.count,
        previous: fp.previous_count,
    };
    match fp.trend {
        Trend::New => "<span class=\"new\">new</span>".to_owned(),
        Trend::Gone => "gone".to_owned(),
        Trend::Up => format!("up {}", esc(&f::change(pair))),
        Trend::Down => format!("down {}", esc(&f::change(pair))),
        Trend::Same => format!("same {}", esc(&f::change(pair))),
    }
}

pub(super) fn fingerprints(o: &mut String, r: &Report) {
    let e = &r.errors;
    o.push_str("<section>\n<h3>Top fingerprints</h3>\n");
    if e.top.is_empty() {
        p(o, "No warnings or errors this period.");
    } else {
        p(
            o,
            &format!(
                "{} distinct fingerprints of warnings and errors this period (the message with numbers and ids replaced by <code>N</code>); the {} most frequent below{}. Examples are one raw line each, with tokens and secrets masked.",
                f::int(e.distinct),
                e.top.len(),
                if e.not_shown > 0 {
                    format!(", the others account for {} records", f::int(e.not_shown))
                } else {
                    String::new()
                }
            ),
        );
        let head = [
            h("#", R),
            h("Fingerprint and an example", F),
            h("Level", L),
            h("Records, this period", R),
            (
                format!("Records, previous period ({})", f::range_short(&r.previous)),
                R,
            ),
            h("Trend", L),
            h("First – last seen (UTC)", L),
            h("Runners", L),
        ];
        let rows: Vec<Vec<String>> = e
            .top
            .iter()
            .enumerate()
            .map(|(i, fp)| {
                vec![
                    (i + 1).to_string(),
                    fingerprint_cell(fp),
                    level(&fp.level),
                    f::int(fp.count),
                    f::int(fp.previous_count),
                    trend(fp),
                    seen(&fp.first_seen, &fp.last_seen),
                    runner_list(&fp.runners),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    o.push_str("<h3>Gone since the previous period</h3>\n");
    if e.gone.is_empty() {
        p(
            o,
            "None: every fingerprint of the previous period was seen again.",
        );
    } else {
        p(
            o,
            &format!(
                "Fingerprints of the previous period ({}) not seen in this one, most frequent first.",
                esc(&f::range_short(&r.previous))
            ),
        );
        let head = [
            h("#", R),
            h("Fingerprint and an example", F),
            h("Level", L),
            h("Records, previous period", R),
            h("First – last seen (UTC)", L),
            h("Runners", L),
        ];
        let rows: Vec<Vec<String>> = e
            .gone
            .iter()
            .enumerate()
            .map(|(i, fp)| {
                vec![
                    (i + 1).to_string(),
                    fingerprint_cell(fp),
                    level(&fp.level),
                    f::int(fp.previous_count),
                    seen(&fp.first_seen, &fp.last_seen),
                    runner_list(&fp.runners),
                ]
            })
            .collect();
        table(o, &head, &rows);
    }
    o.push_str("</section>\n");
}
