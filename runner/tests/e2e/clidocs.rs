//! `termgate-runner completions bash|zsh|fish` and `termgate-runner man`
//! through the binary: bash parses the script and completes with it, the
//! others name every subcommand, and the man page renders with groff and
//! shows every subcommand and flag.

use std::process::Command;

use clap::CommandFactory as _;
use termgate_runner::cli::Cli;
use termgate_test_support::clidocs;

use crate::support::BIN;

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "termgate-runner {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let script = stdout_of(&["completions", "bash"]);
    clidocs::assert_bash_parses(&script);
    assert_eq!(
        clidocs::bash_complete(&script, "termgate-runner", &["termgate-runner", "ru"]),
        ["run"]
    );
    assert_eq!(
        clidocs::bash_complete(
            &script,
            "termgate-runner",
            &["termgate-runner", "doctor", "--j"]
        ),
        ["--json"]
    );
    assert_eq!(
        clidocs::bash_complete(
            &script,
            "termgate-runner",
            &["termgate-runner", "completions", "f"]
        ),
        ["fish"]
    );
    let mut ops = clidocs::bash_complete(
        &script,
        "termgate-runner",
        &["termgate-runner", "operator", ""],
    );
    ops.retain(|w| !w.starts_with('-'));
    ops.sort();
    assert_eq!(ops, ["add", "help", "list", "remove"]);
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let names = clidocs::subcommand_names(&Cli::command());
    assert!(names.contains(&"doctor".to_string()), "{names:?}");
    assert!(names.contains(&"completions".to_string()), "{names:?}");
    for shell in ["zsh", "fish"] {
        let text = stdout_of(&["completions", shell]);
        for n in &names {
            assert!(text.contains(n.as_str()), "{shell}: no {n}");
        }
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash, zsh, fish"));
}

#[test]
fn the_man_page_renders_with_every_subcommand_and_flag() {
    let page = stdout_of(&["man"]);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    let Some(text) = clidocs::render_man(&page) else {
        return;
    };
    clidocs::assert_documents(&text, &Cli::command());
    assert!(text.contains("termgate-runner doctor"), "{text}");
    assert!(text.contains("termgate-runner operator add"), "{text}");
}

/// README's install block, as written, into a temporary root (`sudo`
/// dropped, `/usr/share/` under the root, `B` the binaries of this build):
/// it writes the four files, and `man -l` reads the page.
#[test]
fn the_readme_install_block_works() {
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(readme_path).unwrap();
    let section = readme
        .split("\n### Shell completions and man pages\n")
        .nth(1)
        .expect("README has a \"### Shell completions and man pages\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block in that section");
    // Both binaries of this build, side by side.
    let console = termgate_test_support::workspace_bin("termgate");
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    assert_eq!(console.parent().unwrap(), bin_dir);
    let root = tempfile::tempdir().unwrap();
    let usr = format!("{}/usr/share/", root.path().display());
    for (from, n) in [("B=./target/release", 1), ("sudo ", 5), ("/usr/share/", 6)] {
        assert_eq!(block.matches(from).count(), n, "{from:?} in:\n{block}");
    }
    let script = block
        .replace("B=./target/release", &format!("B={}", bin_dir.display()))
        .replace("sudo ", "")
        .replace("/usr/share/", &usr);
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for b in ["termgate-runner", "termgate"] {
        let completion = root
            .path()
            .join("usr/share/bash-completion/completions")
            .join(b);
        clidocs::assert_bash_parses(&std::fs::read_to_string(&completion).unwrap());
        let page = root.path().join(format!("usr/share/man/man1/{b}.1"));
        let man = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "120")
            .output();
        match man {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "man -l {}: {}",
                    page.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    text.contains("SYNOPSIS") && text.contains("completions"),
                    "{text}"
                );
            }
            Err(e) => assert!(
                std::env::var("TERMGATE_REQUIRE_GROFF").as_deref() != Ok("1"),
                "TERMGATE_REQUIRE_GROFF=1 but man does not run: {e}"
            ),
        }
    }
}
