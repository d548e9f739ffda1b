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
use termgate_test_support::wait_until;

const WAIT: Duration = Duration::from_secs(30);

/// A tmux session running one command, killed when dropped.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let name = format!("tg-terminal-{}", std::process::id());
        let out = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "35",
                cmd,
            ])
            .output()
            .expect("tmux (scripts/setup-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { name }
    }

    fn keys(&self, literal: bool, keys: &str) {
        let mut cmd = Command::new("tmux");
        cmd.args(["send-keys", "-t", &self.name]);
        if literal {
            cmd.arg("-l");
        }
        assert!(cmd.arg(keys).output().unwrap().status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, WAIT, || {
                last = self.screen();
                pred(&last).then(|| last.clone())
            })
        }));
        match found {
            Ok(s) => s,
            Err(_) => panic!("timed out waiting for {what}; screen:\n{last}"),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

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
    let tmux = Tmux::start(&format!(
        "TERMGATE_CONSOLE_LOG_FILE={} {} terminal {ws}/admin/jobs/{id}/terminal.ws; echo EXITED-$?; sleep 60",
        dir.path().join("console.log").display(),
        env!("CARGO_BIN_EXE_termgate"),
    ));
    tmux.wait("the banner", |s| s.contains("Ctrl-] to detach"));
    tmux.keys(true, "echo tt-$((6*7)) $CI_JOB_ID");
    tmux.keys(false, "Enter");
    tmux.wait("the command's output", |s| {
        s.contains(&format!("tt-42 {id}"))
    });

    coord.cancel(id);
    let screen = tmux.wait("the end", |s| s.contains("EXITED-"));
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
