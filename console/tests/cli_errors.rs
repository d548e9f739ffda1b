//! Issue 19, item 7: failures say what failed, once, and what to do
//! instead. Each case runs the real `termgate` binary with stdin and stdout
//! that are not terminals (as from a script or CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

fn termgate(args: &[&str]) -> (Output, String) {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_termgate"))
        .env(
            "TERMGATE_CONSOLE_LOG_FILE",
            state.path().join("console.log"),
        )
        .env_remove("TERMGATE_CONSOLE_CONFIG")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

#[test]
fn a_missing_console_toml_names_the_os_error_once() {
    for args in [
        &["-c", "nope.toml"][..],
        &["sessions", "-c", "nope.toml"],
        &["report", "-c", "nope.toml"],
    ] {
        let (out, err) = termgate(args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains("nope.toml"), "{args:?}: {err}");
    }
}

#[test]
fn a_directory_given_as_logs_suggests_a_glob() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("runner.log"), "ERROR: x\n").unwrap();
    let dir = d.path().to_str().unwrap();
    let (out, err) = termgate(&["tally", "--logs", dir]);
    assert!(!out.status.success());
    assert!(
        err.contains("is a directory") && err.contains(&format!("{dir}/*.log")),
        "{err}"
    );
}

#[test]
fn full_screen_commands_without_a_terminal_say_what_to_run_instead() {
    let (out, err) = termgate(&["demo"]);
    assert!(!out.status.success());
    assert!(
        err.contains("needs a terminal") && err.contains("termgate demo --headless"),
        "{err}"
    );
    assert!(!err.contains("raw mode"), "{err}");
    let (out, err) = termgate(&["--runner", "a=http://127.0.0.1:9"]);
    assert!(!out.status.success());
    assert!(err.contains("needs a terminal"), "{err}");
}
