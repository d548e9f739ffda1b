//! `termgate terminal URL` end to end, in tmux: a real runner with a
//! session server, a terminal job, the local coordinator's Workhorse
//! `terminal.ws`, and the real `termgate` binary. Keys reach the job and
//! its output comes back; when the job is cancelled the runner's close
//! reason is printed (`[termgate] session closed: …`) and the exit code is
//! 0; a job without a terminal is an error naming the status, exit code 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use termgate::logschema::msg;
use termgate_test_support::procs::{job, Coord, RunnerSetup};
use termgate_test_support::tmux::Tmux;
use termgate_test_support::wait_until;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_terminal_through_workhorse_types_sees_and_says_why_it_closed() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "wh", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    let runner = setup.start();
    runner.wait_log(msg::SESSION_SERVER_LISTENING, WAIT);
    let id = coord.enqueue(job("terminal", &["sleep 300"]));
    wait_until("the job running with a session", WAIT, || {
        let j = coord.job(id);
        (j["state"] == "running" && j["session"]["url"].is_string()).then_some(())
    });
    let ws = coord.url.replacen("http://", "ws://", 1);
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start("tg-terminal", &format!(
        "TERMGATE_CONSOLE_LOG_FILE={} {} terminal {ws}/admin/jobs/{id}/terminal.ws; echo EXITED-$?; sleep 60",
        dir.path().join("console.log").display(),
        env!("CARGO_BIN_EXE_termgate"),
    ));
    tmux.wait("the banner", WAIT, |s| s.contains("Ctrl-] to detach"));
    tmux.keys(true, "echo tt-$((6*7)) $CI_JOB_ID");
    tmux.keys(false, "Enter");
    tmux.wait("the command's output", WAIT, |s| {
        s.contains(&format!("tt-42 {id}"))
    });

    coord.cancel(id);
    let screen = tmux.wait("the end", WAIT, |s| s.contains("EXITED-"));
    assert!(screen.contains("[termgate] session closed: "), "{screen}");
    assert!(screen.contains("EXITED-0"), "{screen}");

    // No such job: the coordinator's 404, said once, exit code 1.
    let out = Command::new(env!("CARGO_BIN_EXE_termgate"))
        .args(["terminal", &format!("{ws}/admin/jobs/999/terminal.ws")])
        .env("TERMGATE_CONSOLE_LOG_FILE", dir.path().join("console.log"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("404"), "{err}");
}
