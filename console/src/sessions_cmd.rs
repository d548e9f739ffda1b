//! `termgate sessions [RUNNER] [--json] [--insecure] --config console.toml`:
//! the live terminal sessions of one runner, or of every runner with a
//! `session_url`, merged into one table (the Sessions screen as plain
//! text). A runner that fails is reported on stderr and the others still
//! print; the command fails only when none answered.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context as _};
use serde::Serialize;
use termgate::operator::{SessionList, SessionSummary};

use crate::cli::SessionsArgs;
use crate::config::{ConsoleConfig, RunnerEntry};
use crate::operator_client::{OperatorEndpoint, OperatorError};
use crate::session_text::{clients, in_out, session_age, short_id};
use crate::text::{fit_chars, pad};

/// One session and the runner it runs on (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunnerSession {
    pub runner: String,
    #[serde(flatten)]
    pub session: SessionSummary,
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    sessions: &'a [RunnerSession],
}

pub fn run(args: SessionsArgs) -> anyhow::Result<()> {
    // The error names the file.
    let cfg = ConsoleConfig::load(&args.config.path)?;
    let entries: Vec<&RunnerEntry> = match &args.runner {
        Some(name) => vec![cfg.runner(name, &args.config.path)?],
        None => cfg
            .runners
            .iter()
            .filter(|r| r.session_url.is_some())
            .collect(),
    };
    if entries.is_empty() {
        bail!(
            "no runner in {} has a session_url: add session_url = \"https://HOST:PORT\" to its \
             [[runners]] table",
            args.config.path.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let results = runtime.block_on(fetch_all(&entries, args.insecure));
    let total = results.len();
    let mut sessions = Vec::new();
    let mut errors = Vec::new();
    for (runner, result) in results {
        match result {
            Ok(list) => sessions.extend(list.sessions.into_iter().map(|session| RunnerSession {
                runner: runner.clone(),
                session,
            })),
            Err(e) => errors.push(runner_error(&runner, &e)),
        }
    }
    if errors.len() == total && total == 1 {
        return Err(anyhow!("{}", errors.join("")));
    }
    for e in &errors {
        eprintln!("termgate: {e}");
    }
    if errors.len() == total {
        bail!("none of the {total} runners answered");
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &Output {
                sessions: &sessions,
            },
        )?;
        writeln!(out)?;
    } else {
        out.write_all(table(&sessions, SystemTime::now()).as_bytes())?;
    }
    Ok(())
}

/// Every runner at once; each result in the order of `entries`.
async fn fetch_all(
    entries: &[&RunnerEntry],
    insecure: bool,
) -> Vec<(String, Result<SessionList, OperatorError>)> {
    let calls = entries.iter().map(|entry| async move {
        let result = match OperatorEndpoint::from_entry(entry, insecure) {
            Ok(ep) => ep.sessions().await,
            Err(e) => Err(e),
        };
        (entry.name.clone(), result)
    });
    futures::future::join_all(calls).await
}

/// The error, prefixed with the runner's name unless it names it already.
fn runner_error(runner: &str, e: &OperatorError) -> String {
    let text = e.to_string();
    if text.contains(runner) {
        text
    } else {
        format!("{runner}: {text}")
    }
}

const HEADERS: [&str; 8] = [
    "RUNNER", "SESSION", "JOB", "PROJECT", "STATE", "CLIENTS", "AGE", "IN/OUT",
];
/// Widest PROJECT and CLIENTS cells; longer ones are cut with `…`.
const MAX_CELL: usize = 32;

/// The table, one line per session, columns as wide as their widest cell;
/// a line saying so when there is no session.
pub fn table(sessions: &[RunnerSession], now: SystemTime) -> String {
    if sessions.is_empty() {
        return "no live sessions\n".to_string();
    }
    let rows: Vec<[String; 8]> = sessions
        .iter()
        .map(|r| {
            let s = &r.session;
            [
                r.runner.clone(),
                short_id(&s.id),
                s.job_id.to_string(),
                fit_chars(or_dash(&s.project), MAX_CELL),
                s.state.clone(),
                fit_chars(&clients(s), MAX_CELL),
                session_age(s, now),
                in_out(s),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(unicode_width::UnicodeWidthStr::width(cell.as_str()));
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 8], out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| pad(c, w, false))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(HEADERS, &mut out);
    for row in &rows {
        line(row.each_ref().map(String::as_str), &mut out);
    }
    out
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use termgate::operator::ClientSummary;

    fn client(role: &str) -> ClientSummary {
        ClientSummary {
            role: role.into(),
            peer: "127.0.0.1:1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn table_like_the_sessions_screen() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |ago: u64| {
            chrono::DateTime::<chrono::Utc>::from(now - Duration::from_secs(ago)).to_rfc3339()
        };
        let sessions = vec![
            RunnerSession {
                runner: "prm-5".into(),
                session: SessionSummary {
                    id: "9f1c00000000e0".into(),
                    job_id: 4711,
                    project: "acme/webapp".into(),
                    state: "active".into(),
                    started_at: at(12 * 60),
                    clients: vec![client("interactive"), client("observer")],
                    bytes_in: 3 * 1024,
                    bytes_out: 1_258_291,
                    ..Default::default()
                },
            },
            RunnerSession {
                runner: "prm-5".into(),
                session: SessionSummary {
                    id: "c3d4a19".into(),
                    job_id: 4715,
                    project: "tools/runbook".into(),
                    state: "waiting".into(),
                    started_at: at(4),
                    ..Default::default()
                },
            },
            RunnerSession {
                runner: "prm-12".into(),
                session: SessionSummary {
                    id: "02ab77".into(),
                    job_id: 9,
                    state: "idle".into(),
                    started_at: "garbage".into(),
                    clients: vec![client("observer"), client("observer"), client("x")],
                    ..Default::default()
                },
            },
        ];
        let t = table(&sessions, now);
        let expected = "\
RUNNER  SESSION  JOB   PROJECT        STATE    CLIENTS               AGE  IN/OUT
prm-5   9f1c…e0  4711  acme/webapp    active   1 user, 1 observer    12m  3.0K/1.2M
prm-5   c3d4a19  4715  tools/runbook  waiting  -                     4s   -
prm-12  02ab77   9     -              idle     2 observers, 1 other  -    0/0
";
        assert_eq!(t, expected, "\n{t}");
        assert_eq!(table(&[], now), "no live sessions\n");
    }

    #[test]
    fn json_has_a_runner_per_session() {
        let s = RunnerSession {
            runner: "prm-5".into(),
            session: SessionSummary {
                id: "ab".into(),
                job_id: 1,
                ..Default::default()
            },
        };
        let v = serde_json::to_value(Output { sessions: &[s] }).unwrap();
        assert_eq!(v["sessions"][0]["runner"], "prm-5");
        assert_eq!(v["sessions"][0]["job_id"], 1);
    }
}
