//! `termgate-runner operator add|list|remove` and `doctor` through the real
//! binary: the token is printed once and never stored, the file is 0600.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

fn runner(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn operator_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "# kept\nconcurrent = 1\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n",
    )
    .unwrap();

    let out = runner(&config, &["operator", "add", "alice", "--role", "control"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    // Just the token, on its own line; the note goes to stderr.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let token = stdout.trim_end().to_string();
    assert!(
        token.starts_with(termgate::operator::TOKEN_PREFIX),
        "{stdout}"
    );
    assert_eq!(token.len(), termgate::operator::TOKEN_PREFIX.len() + 64);
    assert!(stderr.contains("shown only this once"), "{stderr}");
    assert!(!stderr.contains(&token), "{stderr}");

    let ops = dir.path().join("operators.toml");
    let cfg_text = std::fs::read_to_string(&config).unwrap();
    assert!(cfg_text.starts_with("# kept\n"), "{cfg_text}");
    assert!(cfg_text.contains("operators_file = "), "{cfg_text}");
    let stored = std::fs::read_to_string(&ops).unwrap();
    assert!(!stored.contains(&token), "{stored}");
    assert!(!stored.contains(&token[termgate::operator::TOKEN_PREFIX.len()..]));
    assert!(stored.contains("name = \"alice\""), "{stored}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ops).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let out = runner(&config, &["operator", "add", "bob", "--role", "observe"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bob = text(&out.stdout).trim_end().to_string();
    assert_ne!(bob, token);

    // A duplicate name and a bad role fail clearly and change nothing.
    let before = std::fs::read_to_string(&ops).unwrap();
    let out = runner(&config, &["operator", "add", "alice", "--role", "observe"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = runner(&config, &["operator", "add", "carol", "--role", "admin"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("observe, control"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&ops).unwrap(), before);

    let out = runner(&config, &["operator", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(list.contains("alice") && list.contains("control"), "{list}");
    assert!(list.contains("bob") && list.contains("observe"), "{list}");
    assert!(!list.contains(&token) && !list.contains(&bob), "{list}");
    let hash = termgate_runner::session::operators::hash_token(&token);
    assert!(!list.contains(&hash), "{list}");

    let out = runner(&config, &["operator", "remove", "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = runner(&config, &["operator", "list"]);
    let list = text(&out.stdout);
    assert!(!list.contains("alice") && list.contains("bob"), "{list}");
    let out = runner(&config, &["operator", "remove", "alice"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no operator named \"alice\""));

    // doctor: operators on the public port.
    let out = runner(&config, &["doctor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("operators_file is set but operator_listen_address is not"),
        "{report}"
    );
    // A shell runner: no Docker check ran, so none is said to have passed.
    assert!(
        report.contains("skipped: docker_hardening (no Docker runners configured)")
            && !report.lines().any(|l| l.starts_with("docker_hardening")),
        "{report}"
    );
}

#[test]
fn operator_add_needs_a_session_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "concurrent = 1\n").unwrap();
    let out = runner(&config, &["operator", "add", "alice", "--role", "observe"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no [session_server] section"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "concurrent = 1\n"
    );
    assert!(!dir.path().join("operators.toml").exists());
}
