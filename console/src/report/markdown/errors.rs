//! Markdown: errors and warnings per day, top and gone fingerprints.

use super::*;

pub(super) fn errors(o: &mut String, r: &Report) {
    out!(o, "## Errors and warnings");
    out!(o);
    pair_table(
        o,
        r,
        "Records",
        &[
            ("Errors (error, fatal, panic)", r.totals.errors),
            ("Warnings", r.totals.warnings),
        ],
    );
    out!(o, "### Per day (UTC)");
    out!(o);
    let left_out = f::days_left_out(r);
    if left_out > 0 {
        out!(
            o,
            "A long period: the {} days with no warning, error, session or job are left out here and below.",
            f::int(left_out)
        );
        out!(o);
    }
    if r.days.is_empty() {
        out!(o, "No days in the period.");
        out!(o);
        return;
    }
    per_day_table(
        o,
        r,
        &[("Errors", |c| c.errors), ("Warnings", |c| c.warnings)],
    );
    if r.inputs.untimed_records > 0 {
        out!(
            o,
            "{} records without a timestamp count in the period's totals but in no day.",
            f::int(r.inputs.untimed_records)
        );
        out!(o);
    }
    let labels: Vec<String> = r.days.iter().map(|d| f::day_short(r, &d.date)).collect();
    let errors: Vec<u64> = r.days.iter().map(|d| d.total.errors).collect();
    let warnings: Vec<u64> = r.days.iter().map(|d| d.total.warnings).collect();
    mermaid_days(
        o,
        "Errors and warnings per day, all runners (UTC)",
        "Records per day",
        &labels,
        &errors,
        &warnings,
    );
    out!(
        o,
        "*Chart: bars are errors (error, fatal, panic), the line is warnings, all runners.{}*",
        if f::partial_days(r) {
            " The first and last days are only partly in the period."
        } else {
            ""
        }
    );
    out!(o);
}

fn seen(first: &Option<String>, last: &Option<String>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => format!("{} – {}", f::time_short(a), f::time_short(b)),
        (Some(a), None) | (None, Some(a)) => f::time_short(a),
        (None, None) => "no timestamp".to_owned(),
    }
}

/// A fingerprint with its example under it, for a table cell.
fn fingerprint_cell(fp: &Fingerprint) -> String {
    if fp.example.is_empty() {
        cell(&fp.fingerprint)
    } else {
        format!("{}<br>e.g. {}", cell(&fp.fingerprint), cell(&fp.example))
    }
}

fn level(l: &str) -> String {
    if f::known_level(l) {
        l.to_owned()
    } else {
        cell(l)
    }
}

fn trend(fp: &Fingerprint) -> String {
    let p = Pair {
        current: fp.count,
        previous: fp.previous_count,
    };
    match fp.trend {
        Trend::New => "**new**".to_owned(),
        Trend::Gone => "gone".to_owned(),
        Trend::Up => format!("up {}", f::change(p)),
        Trend::Down => format!("down {}", f::change(p)),
        Trend::Same => format!("same {}", f::change(p)),
    }
}

pub(super) fn fingerprints(o: &mut String, r: &Report) {
    let e = &r.errors;
    out!(o, "### Top fingerprints");
    out!(o);
    if e.top.is_empty() {
        out!(o, "No warnings or errors this period.");
        out!(o);
    } else {
        out!(
            o,
            "{} distinct fingerprints of warnings and errors this period (the message with numbers and ids replaced by `N`); the {} most frequent below{}. Examples are one raw line each, with tokens and secrets masked.",
            f::int(e.distinct),
            e.top.len(),
            if e.not_shown > 0 {
                format!(", the others account for {} records", f::int(e.not_shown))
            } else {
                String::new()
            }
        );
        out!(o);
        let head = [
            h("#", R),
            h("Fingerprint and an example", L),
            h("Level", L),
            h("Records, this period", R),
            (
                format!("Records, {}", lower_first(&f::previous_header(r))),
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
    out!(o, "### Gone since the previous period");
    out!(o);
    if e.gone.is_empty() {
        out!(
            o,
            "None: every fingerprint of the previous period was seen again."
        );
        out!(o);
        return;
    }
    out!(
        o,
        "Fingerprints of the previous period ({}) not seen in this one, most frequent first.",
        f::range_short(&r.previous)
    );
    out!(o);
    let head = [
        h("#", R),
        h("Fingerprint and an example", L),
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

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(x) => x.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
