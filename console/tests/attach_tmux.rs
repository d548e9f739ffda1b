//! On-call attach end to end, in tmux: a real runner with an operator
//! (`termgate-runner operator add`), a terminal job, and the real `termgate`
//! binary — `termgate attach --shell` types a command and sees its output,
//! the detach key ends it with `[termgate] detached` and exit code 0; from
//! the TUI's Sessions screen the same attach suspends the TUI, which comes
//! back on the Sessions screen with how it ended in the status line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use termgate::logschema::{self as schema, msg};
use termgate_test_support::procs::{
    job, processes_under, runner_cmd, Coord, RunnerProc, RunnerSetup,
};
use termgate_test_support::tmux::Tmux;
use termgate_test_support::wait_until;

const WAIT: Duration = Duration::from_secs(30);

/// A runner with a session server and a `control` operator, a terminal
/// job running on it, and a console.toml that reaches it.
struct Live {
    _coord: Coord,
    _setup: RunnerSetup,
    _runner: RunnerProc,
    job: u64,
    console_toml: PathBuf,
    dir: tempfile::TempDir,
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn live() -> Live {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "ops", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 2");
    let operators = setup.dir.path().join("operators.toml");
    setup.edit(|t| {
        format!(
            "{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  session_timeout = 30\n  operators_file = {}\n",
            toml_string(&operators.display().to_string())
        )
    });
    let out = runner_cmd(&[
        "operator",
        "add",
        "alice",
        "--role",
        "control",
        "-c",
        setup.config.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let runner = setup.start();
    let listening = runner.wait_log(msg::SESSION_SERVER_LISTENING, WAIT);
    let address = listening[schema::ADDRESS].as_str().unwrap().to_string();
    let job = coord.enqueue(job("terminal", &["sleep 300"]));
    let session = wait_until("the job running with a session", WAIT, || {
        let j = coord.job(job);
        (j["state"] == "running" && j["session"]["certificate"].is_string())
            .then(|| j["session"].clone())
    });
    // Pin the certificate the runner sent with the job.
    let pem = session["certificate"].as_str().unwrap();
    let fingerprint = termgate_console::demo::pem_fingerprint(pem).expect("a certificate");
    let dir = tempfile::tempdir().unwrap();
    let console_toml = dir.path().join("console.toml");
    std::fs::write(
        &console_toml,
        format!(
            "interval = \"1s\"\n\n[[runners]]\nname = \"ops\"\nmetrics_url = {}\nsession_url = {}\noperator_token = {}\nfingerprint = {}\n",
            toml_string(&format!("{}/metrics", runner.metrics_url)),
            toml_string(&format!("https://{address}")),
            toml_string(&token),
            toml_string(&termgate::operator::format_fingerprint(&fingerprint)),
        ),
    )
    .unwrap();
    Live {
        _coord: coord,
        _setup: setup,
        _runner: runner,
        job,
        console_toml,
        dir,
    }
}

/// `termgate ARGS; echo EXITED-$?`, its console log in `dir`.
fn termgate(dir: &Path, args: &str) -> String {
    format!(
        "TERMGATE_CONSOLE_LOG_FILE={} {} {args}; echo EXITED-$?; sleep 60",
        dir.join("console.log").display(),
        env!("CARGO_BIN_EXE_termgate"),
    )
}

#[test]
fn attach_types_into_a_shell_of_its_own_and_detaches_with_exit_code_0() {
    if !Tmux::available() {
        eprintln!("tmux missing: skipped");
        return;
    }
    let l = live();
    let t = Tmux::start(
        "tg-attach",
        &termgate(
            l.dir.path(),
            &format!(
                "attach -c {} ops {} --shell --reason 'e2e: attach test'",
                l.console_toml.display(),
                l.job
            ),
        ),
    );
    t.wait("the banner", WAIT, |s| {
        s.contains(&format!("[termgate] shell in job {} on ops", l.job))
            && s.contains("Ctrl-] to detach")
    });
    t.line("echo attach-$((6*7))");
    t.wait("the command's output", WAIT, |s| s.contains("attach-42"));
    t.keys(false, "C-]");
    let end = t.wait("the end of the attach", WAIT, |s| s.contains("EXITED-"));
    assert!(end.contains("[termgate] detached"), "{end}");
    assert!(end.contains("EXITED-0"), "{end}");
    let log = std::fs::read_to_string(l.dir.path().join("console.log")).unwrap();
    assert!(log.contains(msg::OPERATOR_DETACHED), "{log}");
}

#[test]
fn a_shell_from_the_sessions_screen_suspends_the_tui_and_comes_back_to_it() {
    if !Tmux::available() {
        eprintln!("tmux missing: skipped");
        return;
    }
    let l = live();
    let t = Tmux::start(
        "tg-tui",
        &termgate(l.dir.path(), &format!("-c {}", l.console_toml.display())),
    );
    t.wait("the Fleet screen", WAIT, |s| {
        s.contains("[1]Fleet") && s.contains("ops")
    });
    t.keys(false, "3");
    let job = l.job.to_string();
    t.wait("the session row", WAIT, |s| {
        s.lines()
            .any(|row| row.contains("ops") && row.split_whitespace().any(|w| w == job))
    });
    // Its reason first, in the footer.
    t.keys(false, "x");
    t.wait("the reason prompt", WAIT, |s| {
        s.contains("reason for a shell in job")
    });
    t.line("e2e: the tui test");
    // (The prompt says "a shell in job …" too: wait for the banner.)
    t.wait("the attach's banner", WAIT, |s| {
        s.contains(&format!("[termgate] shell in job {job} on ops"))
    });
    t.line("echo tui-$((7*6))");
    t.wait("the command's output", WAIT, |s| s.contains("tui-42"));
    t.keys(false, "C-]");
    let back = t.wait("the TUI back on Sessions", WAIT, |s| {
        s.contains("termgate  sessions") && s.contains("[termgate] detached")
    });
    assert!(!back.contains("tui-42"), "the TUI repainted: {back}");
    // The next key brings the tabs back; the selection is where it was.
    t.keys(false, "Down");
    t.wait("the tabs", WAIT, |s| s.contains("[3]Sessions"));
    t.keys(false, "q");
    let end = t.wait("the TUI to exit", WAIT, |s| s.contains("EXITED-"));
    assert!(end.contains("EXITED-0"), "{end}");
}

#[test]
fn closing_the_terminal_during_an_attach_still_stops_everything_the_demo_started() {
    if !Tmux::available() {
        eprintln!("tmux missing: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::start(
        "tg-hup",
        &format!(
            "TERMGATE_CONSOLE_LOG_FILE={} TERMGATE_RUNNER_BIN={} TERMGATE_COORDINATOR_BIN={} {} demo --dir {}",
            dir.path().join("console.log").display(),
            termgate_test_support::workspace_bin("termgate-runner").display(),
            termgate_test_support::workspace_bin("termgate-coordinator").display(),
            env!("CARGO_BIN_EXE_termgate"),
            dir.path().display()
        ),
    );
    t.wait("the demo's Fleet screen", WAIT, |s| {
        s.contains("demo-runner")
    });
    t.keys(false, "3");
    t.wait("a session row", WAIT, |s| s.contains("termgate/demo"));
    t.keys(false, "x");
    t.line("closing the terminal");
    t.wait("the attach", WAIT, |s| {
        s.contains("[termgate] shell in job")
    });
    // The terminal goes away (SIGHUP) while the TUI is suspended.
    drop(t);
    wait_until("the demo's processes to be gone", WAIT, || {
        processes_under(dir.path()).is_empty().then_some(())
    });
}
