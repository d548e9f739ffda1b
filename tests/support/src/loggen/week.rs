//! A period `[from, to)` and the one before it, from three runners, with
//! the exact figures the report must show.
//!
//! The records are made first (each with what it means: a session's
//! connect, a job's result, a start…, and for warnings and above the
//! fingerprint the report must group it under), then written as the runner
//! writes them; [`Expected`] is computed from the records' meaning, with
//! simple definitions (a session is active from its connect's second to its
//! disconnect's; an unclean shutdown is a start with no clean stop since
//! the start before it), never with the console's code.
//!
//! The three runners ([`RUNNERS`]): `runner-a.log` (UTC), `runner-b.log`
//! (local time, `+01:00`: its days are still UTC days in the report),
//! `runner-c.log`, `.log.1`, `.log.2.gz`, `.log.3.gz` (rotated daily at
//! 06:25 with logrotate's `compress` + `delaycompress`, time-split).
//!
//! Ambiguity is avoided by construction: records of interest have distinct
//! milliseconds, session connects and disconnects distinct seconds
//! fleet-wide, the random records of a day stay an hour away from
//! midnight, a runner's random sessions never overlap each other.
//! Deliberate edge cases: a record exactly at `from` (current) and at
//! `from − 1 ms` (previous), exactly at `to` (outside) and at `to − 1 ms`
//! (current), an error at 23:30 UTC written as 00:30 `+01:00` the next day,
//! three sessions open across `from` (the carried-in peak), a session across
//! two files of the rotated runner, an over-limit rejection refusing 5 at
//! once, a fingerprint only in the previous period (gone) and one only in
//! this one (new), ids that vary (`container 346119271220 not found` and
//! `container d20f8b84087c not found`: one fingerprint), a token in a
//! message and in a field, lines of no known format, records before the
//! previous period and after the period.

mod expected;
mod plan;
mod records;
mod runners;

pub use expected::{
    Counts, Expected, Fp, Jobs, Lifecycle, PairCounts, RunnerSessions, Sessions, Source, Totals,
};

use std::path::Path;

pub use runners::{RunnerSpec, RUNNERS, SECRETS};

use records::{render, Gen, Kind};
use runners::rotation_cuts;

use super::{write_file, Rng, DAY_MS};

/// What to generate.
#[derive(Debug, Clone)]
pub struct WeekOptions {
    /// The period's start, Unix seconds, a UTC midnight.
    pub from: i64,
    /// Its end (excluded), a UTC midnight at least 4 days after `from`.
    pub to: i64,
    /// Write `runner_name` on the job lines (the report then names the
    /// runners by it); without it the report names them by file.
    pub runner_names: bool,
    pub seed: u64,
}

impl WeekOptions {
    pub fn new(from: i64, to: i64) -> WeekOptions {
        WeekOptions {
            from,
            to,
            runner_names: true,
            seed: 0x7e55_9a7e_2026_1130,
        }
    }
}

/// Writes the logs of [`RUNNERS`] into `dir` and returns what the report
/// must show for `[opts.from, opts.to)`.
pub fn generate_week(dir: &Path, opts: &WeekOptions) -> Expected {
    assert_eq!(opts.from % 86_400, 0, "from must be a UTC midnight");
    assert_eq!(opts.to % 86_400, 0, "to must be a UTC midnight");
    let nd = (opts.to - opts.from) / 86_400;
    assert!(nd >= 4, "the period must be 4 days or more");
    let (from, to) = (opts.from * 1000, opts.to * 1000);
    let mut g = Gen {
        rng: Rng::new(opts.seed),
        prev_from: from - (to - from),
        from,
        to,
        runner_names: opts.runner_names,
        recs: Default::default(),
        sessions: Vec::new(),
        used_ms: Default::default(),
        used_s: Default::default(),
        job: 4_519_752_000,
    };
    g.designed(nd);
    for k in 0..2 * nd {
        g.day(k, nd);
    }
    for recs in &mut g.recs {
        recs.sort_by_key(|r| r.t);
    }
    let mut exp = expected::expected(&g, nd);
    write_files(dir, &g, &mut exp);
    exp
}

fn write_files(dir: &Path, g: &Gen, exp: &mut Expected) {
    let cuts = rotation_cuts(g.prev_from, g.from, (g.to - g.from) / DAY_MS);
    for (r, spec) in RUNNERS.iter().enumerate() {
        // (file name, gzip, records from, records to)
        let parts: Vec<(String, bool, i64, i64)> = if r == 2 {
            vec![
                (format!("{}.log.3.gz", spec.stem), true, i64::MIN, cuts[0]),
                (format!("{}.log.2.gz", spec.stem), true, cuts[0], cuts[1]),
                (format!("{}.log.1", spec.stem), false, cuts[1], cuts[2]),
                (format!("{}.log", spec.stem), false, cuts[2], i64::MAX),
            ]
        } else {
            vec![(format!("{}.log", spec.stem), false, i64::MIN, i64::MAX)]
        };
        let src = exp.sources.entry(spec.stem.to_owned()).or_default();
        for (name, gz, lo, hi) in parts {
            let mut text = Vec::new();
            let mut unparsed = 0;
            let mut lines = 0;
            for rec in g.recs[r].iter().filter(|x| x.t >= lo && x.t < hi) {
                render(r, rec, &mut text);
                text.push(b'\n');
                lines += 1;
                if let Kind::Garbage { unparsed: true, .. } = rec.kind {
                    unparsed += 1;
                }
            }
            let path = dir.join(&name);
            write_file(&path, &text, gz)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            src.files += 1;
            src.gzip_files += u64::from(gz);
            src.bytes += text.len() as u64;
            src.lines += lines;
            src.unparsed_lines += unparsed;
            exp.files.push(path);
        }
    }
    for s in exp.sources.values() {
        exp.gzip_files += s.gzip_files;
        exp.bytes += s.bytes;
        exp.lines += s.lines;
        exp.unparsed_lines += s.unparsed_lines;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use termgate::logschema::msg;

    #[test]
    fn a_week_is_deterministic_and_has_what_it_promises() {
        let from = super::super::days_from_civil(2026, 11, 23) * 86_400;
        let opts = WeekOptions::new(from, from + 7 * 86_400);
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let e1 = generate_week(d1.path(), &opts);
        let e2 = generate_week(d2.path(), &opts);
        assert_eq!(e1.fingerprints, e2.fingerprints);
        for (a, b) in e1.files.iter().zip(&e2.files) {
            assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        }
        assert_eq!(e1.files.len(), 6);
        assert_eq!(e1.gzip_files, 2);
        assert_eq!(e1.unparsed_lines, 3);
        assert!(e1.outside_records >= 8, "{}", e1.outside_records);
        let c = &e1.fingerprints["Docker step prepare failed: container N not found"];
        assert!(c.count > 5 && c.previous_count > 5, "{c:?}");
        assert_eq!(
            e1.fingerprints[msg::SESSION_TLS_HANDSHAKE_FAILED].trend,
            "gone"
        );
        assert_eq!(
            e1.sessions.runners["runner-b"].peak,
            Some((3, e1.from.clone()))
        );
        assert!(e1.sessions.peak.as_ref().is_some_and(|(n, _)| *n >= 7));
        assert_eq!(e1.sessions.rejections["over_limit"], [5, 2]);
        assert_eq!(e1.totals.starts, [4, 3]);
        assert_eq!(e1.totals.unclean_shutdowns, [2, 1]);
        // Both kinds of container id were written.
        let text = std::fs::read_to_string(d1.path().join("runner-a.log")).unwrap();
        let ids: Vec<&str> = text
            .split("container ")
            .skip(1)
            .filter_map(|s| s.split(' ').next())
            .collect();
        assert!(ids.iter().any(|i| i.bytes().all(|c| c.is_ascii_digit())));
        assert!(ids
            .iter()
            .any(|i| i.bytes().any(|c| c.is_ascii_alphabetic())));
    }
}
