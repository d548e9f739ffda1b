//! The weekly report's schedule (`assets/systemd/termgate-report.{service,timer}`):
//! systemd accepts both units, and the service's command, expanded as
//! systemd expands it, writes last week's report to a file dated today.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use termgate_console::report::model::Report;
use termgate_test_support::loggen::{generate_week, report_time, WeekOptions};

fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/systemd")
}

const UNITS: [&str; 2] = ["termgate-report.service", "termgate-report.timer"];

/// `systemd-analyze verify` on both units: no error and nothing printed
/// (it exits 0 on settings it ignores, saying so). Skipped without
/// systemd-analyze unless `TERMGATE_REQUIRE_SYSTEMD_ANALYZE=1` (CI).
#[test]
fn systemd_analyze_verifies_the_units() {
    let dir = tempfile::tempdir().unwrap();
    let units: Vec<PathBuf> = UNITS
        .iter()
        .map(|u| {
            let to = dir.path().join(u);
            std::fs::copy(assets().join(u), &to).unwrap();
            to
        })
        .collect();
    let units: Vec<&std::path::Path> = units.iter().map(PathBuf::as_path).collect();
    termgate_test_support::systemd::verify(
        &units,
        &[("termgate", Path::new(env!("CARGO_BIN_EXE_termgate")))],
    );
}

/// The value of `key=` in a unit file (the first one).
fn setting(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_owned()
}

/// systemd's expansion of what the unit uses: `%S` (/var/lib), `%L`
/// (/var/log), `%%` and `$$`.
fn expand(s: &str, state: &Path, logs: &Path) -> String {
    s.replace("%%", "\u{0}")
        .replace("%S", &state.display().to_string())
        .replace("%L", &logs.display().to_string())
        .replace('\u{0}', "%")
        .replace("$$", "$")
}

fn utc_day() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now.div_euclid(86_400) * 86_400
}

#[test]
fn the_service_writes_last_weeks_report_to_a_file_dated_today() {
    let unit = std::fs::read_to_string(assets().join(UNITS[0])).unwrap();
    let timer = std::fs::read_to_string(assets().join(UNITS[1])).unwrap();
    assert_eq!(setting(&timer, "OnCalendar"), "Mon *-*-* 06:00:00");
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "termgate/reports"),
    ] {
        assert_eq!(setting(&unit, key), want, "{key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (state, logs) = (dir.path().join("lib"), dir.path().join("log"));
    std::fs::create_dir_all(state.join("termgate/reports")).unwrap();
    std::fs::create_dir_all(logs.join("termgate")).unwrap();
    // Last week's logs, and a console.toml naming them.
    let today = utc_day();
    let week = dir.path().join("logs");
    std::fs::create_dir(&week).unwrap();
    let e = generate_week(&week, &WeekOptions::new(today - 7 * 86_400, today));
    let console = dir.path().join("console.toml");
    let mut toml = String::new();
    for (stem, _) in &e.runners {
        toml.push_str(&format!(
            "[[runners]]\nname = \"cfg-{stem}\"\nmetrics_url = \"http://127.0.0.1:9/metrics\"\nlogs = [\"{}/{stem}*\"]\n\n",
            week.display()
        ));
    }
    std::fs::write(&console, toml).unwrap();
    // The service's command as systemd runs it, on our binary and files.
    let exec = setting(&unit, "ExecStart");
    let script = exec
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("ExecStart is not /bin/sh -c '…': {exec}"));
    let script = expand(script, &state, &logs)
        .replace(
            "/usr/bin/termgate ",
            &format!("{} ", env!("CARGO_BIN_EXE_termgate")),
        )
        .replace("/etc/termgate/console.toml", &console.display().to_string());
    let env = expand(&setting(&unit, "Environment"), &state, &logs);
    let (env_key, env_value) = env.split_once('=').unwrap();
    let run = |script: &str| {
        let out = Command::new("/bin/sh")
            .args(["-c", script])
            .env(env_key, env_value)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&script);
    let date = report_time(today * 1000)[..10].to_owned();
    let report = state.join(format!("termgate/reports/report-{date}.md"));
    if utc_day() != today {
        eprintln!("midnight UTC passed during the test: the dates are not checked");
        return;
    }
    let md =
        std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
    assert!(!md.trim().is_empty());
    let log = std::fs::read_to_string(logs.join("termgate/report.log")).unwrap();
    assert!(log.contains("termgate console started"), "{log}");
    // The same command as JSON: the period is the week before today (UTC)
    // and its figures are the generated week's.
    run(&script
        .replace("--format md", "--format json")
        .replace(".md\"", ".json\""));
    let json = report.with_extension("json");
    let r: Report = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(
        (r.period.from.as_str(), r.period.to.as_str()),
        (e.from.as_str(), e.to.as_str())
    );
    assert_eq!(
        r.runners,
        ["cfg-runner-a", "cfg-runner-b", "cfg-runner-c"],
        "named by console.toml"
    );
    assert_eq!(
        [r.totals.errors.current, r.totals.errors.previous],
        e.totals.errors
    );
    assert_eq!(
        [r.totals.sessions.current, r.totals.sessions.previous],
        e.totals.sessions
    );
}
