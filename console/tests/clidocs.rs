//! `termgate completions bash|zsh|fish` and `termgate man` through the
//! binary: bash parses the script and completes with it, the others name
//! every subcommand, and the man page renders with groff and shows every
//! subcommand and flag. Neither writes the console's log file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use clap::CommandFactory as _;
use termgate_console::cli::Cli;
use termgate_test_support::clidocs;

fn stdout_of(args: &[&str]) -> String {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("console.log");
    let out = Command::new(env!("CARGO_BIN_EXE_termgate"))
        .env("TERMGATE_CONSOLE_LOG_FILE", &log)
        .env_remove("TERMGATE_CONSOLE_CONFIG")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "termgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!log.exists(), "termgate {args:?} wrote a log file");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let script = stdout_of(&["completions", "bash"]);
    clidocs::assert_bash_parses(&script);
    assert_eq!(
        clidocs::bash_complete(&script, "termgate", &["termgate", "tal"]),
        ["tally"]
    );
    assert_eq!(
        clidocs::bash_complete(&script, "termgate", &["termgate", "sessions", "--ins"]),
        ["--insecure"]
    );
    let mut re = clidocs::bash_complete(&script, "termgate", &["termgate", "re"]);
    re.sort();
    assert_eq!(re, ["replay", "report"]);
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let names = clidocs::subcommand_names(&Cli::command());
    for n in ["attach", "report", "completions", "man"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    for shell in ["zsh", "fish"] {
        let text = stdout_of(&["completions", shell]);
        for n in &names {
            assert!(text.contains(n.as_str()), "{shell}: no {n}");
        }
    }
}

#[test]
fn the_man_page_renders_with_every_subcommand_and_flag() {
    let page = stdout_of(&["man"]);
    let Some(text) = clidocs::render_man(&page) else {
        return;
    };
    clidocs::assert_documents(&text, &Cli::command());
    assert!(text.contains("termgate attach"), "{text}");
    assert!(text.contains("--detach-key"), "{text}");
}
