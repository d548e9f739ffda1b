//! Checks for the binaries' shell completions and man pages
//! (`completions bash|zsh|fish`, `man`): bash parses and runs the
//! completion script; groff renders the man page; a clap command's
//! subcommands and flags are all in the text.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// `bash -n`: the script parses.
pub fn assert_bash_parses(script: &str) {
    let file = script_file(script);
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-n"])
        .arg(file.path())
        .output()
        .expect("spawn bash");
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn script_file(script: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(script.as_bytes()).unwrap();
    f.flush().unwrap();
    f
}

/// Source `script` in bash and call the completion function it registered
/// for `bin` as bash does on TAB, with `words` on the command line (the
/// last one is the word being completed, `""` for a new word); returns
/// `COMPREPLY`.
pub fn bash_complete(script: &str, bin: &str, words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
source "$1" || exit 3
spec=$(complete -p "$2") || exit 4
fn=${spec#*-F }
fn=${fn%% *}
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMP_KEY=9
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let file = script_file(script);
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", DRIVER, "bash"])
        .arg(file.path())
        .arg(bin)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .expect("spawn bash");
    assert!(
        out.status.success(),
        "completing {words:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The names of every visible subcommand below `cmd`, at any depth
/// (`help` left out).
pub fn subcommand_names(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    for s in cmd.get_subcommands() {
        if s.is_hide_set() || s.get_name() == "help" {
            continue;
        }
        out.push(s.get_name().to_string());
        out.extend(subcommand_names(s));
    }
    out
}

/// The man page as text: `groff -man -Tutf8` (plain, long lines, no
/// hyphenation; Unicode hyphens and minus signs back to `-`). `None` when
/// groff is not installed, unless `TERMGATE_REQUIRE_GROFF=1` (CI), which
/// fails instead.
pub fn render_man(page: &str) -> Option<String> {
    let spawned = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou", "-rLL=400n", "-rHY=0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("TERMGATE_REQUIRE_GROFF").as_deref() != Ok("1"),
                "TERMGATE_REQUIRE_GROFF=1 but groff does not run: {e}"
            );
            eprintln!("groff not found ({e}): the man page is not rendered");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "groff: {stderr}");
    assert!(
        !stderr.contains("warning") && !stderr.contains("error"),
        "groff: {stderr}"
    );
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(['\u{2010}', '\u{2011}', '\u{2212}'], "-");
    Some(text)
}

/// `text` (a rendered man page) shows every visible subcommand of `cmd`
/// by its full name (`termgate-runner operator add`) and every visible
/// flag of `cmd` and its subcommands (`--long`, `-s`).
pub fn assert_documents(text: &str, cmd: &clap::Command) {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut missing = Vec::new();
    check_command(text, &cmd, true, &mut missing);
    assert!(
        missing.is_empty(),
        "missing from the man page: {missing:?}\n{text}"
    );
}

fn check_command(text: &str, cmd: &clap::Command, root: bool, missing: &mut Vec<String>) {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name());
    if !root && !text.contains(name) {
        missing.push(name.to_string());
    }
    for a in cmd.get_arguments() {
        if a.is_hide_set() || a.is_positional() {
            continue;
        }
        if let Some(l) = a.get_long() {
            let flag = format!("--{l}");
            if !text.contains(&flag) {
                missing.push(format!("{name}: {flag}"));
            }
        }
        if let Some(s) = a.get_short() {
            let flag = format!("-{s}");
            if !text.contains(&flag) {
                missing.push(format!("{name}: {flag}"));
            }
        }
    }
    for s in cmd.get_subcommands() {
        if !s.is_hide_set() && s.get_name() != "help" {
            check_command(text, s, false, missing);
        }
    }
}
