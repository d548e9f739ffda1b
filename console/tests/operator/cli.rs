//! `termgate trust` and `termgate sessions`, the real binary against the
//! test server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use termgate::operator::format_fingerprint;

use crate::server::{self, TestServer, OBSERVE};

struct Env {
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    server: TestServer,
}

impl Env {
    fn new() -> Env {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(server::start());
        Env {
            _rt: rt,
            dir: tempfile::tempdir().unwrap(),
            server,
        }
    }

    /// console.toml: `body` after a comment line.
    fn config(&self, body: &str) -> PathBuf {
        let p = self.dir.path().join("console.toml");
        std::fs::write(&p, format!("# our fleet\ninterval = \"2s\"\n\n{body}")).unwrap();
        p
    }

    /// `termgate ARGS` with `stdin`, its own log in the temp dir.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_termgate"))
            .env(
                "TERMGATE_CONSOLE_LOG_FILE",
                self.dir.path().join("console.log"),
            )
            .env_remove("TERMGATE_CONSOLE_CONFIG")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn prm5(url: &str, extra: &str) -> String {
    format!(
        "[[runners]]\n# the on-call box\nname = \"prm-5\"\nmetrics_url = \"127.0.0.1:9\"\n\
         session_url = \"{url}\"\n{extra}logs = []   # none\n\n\
         [[runners]]\nname = \"prm-4\"\nmetrics_url = \"127.0.0.1:9\"\n"
    )
}

#[test]
fn trust_yes_stores_the_fingerprint_keeping_the_file() {
    let env = Env::new();
    let fp = format_fingerprint(&env.server.fingerprint);
    let cfg = env.config(&prm5(&env.server.url(), ""));
    let c = cfg.to_str().unwrap();

    let out = env.run(&["trust", "prm-5", "--yes", "--config", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&fp), "{stdout}");
    assert!(stdout.contains(&env.server.url()), "{stdout}");
    let after = read(&cfg);
    assert!(
        after.contains(&format!("fingerprint = \"{fp}\"")),
        "{after}"
    );
    for kept in [
        "# our fleet",
        "# the on-call box",
        "logs = []   # none",
        "name = \"prm-4\"",
    ] {
        assert!(after.contains(kept), "{kept:?} lost:\n{after}");
    }
    let loaded = termgate_console::config::ConsoleConfig::load(&cfg).unwrap();
    assert_eq!(loaded.runners[0].fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(loaded.runners[1].fingerprint, None);

    // Again: nothing to do.
    let out = env.run(&["trust", "prm-5", "--config", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Already trusted"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(read(&cfg), after);
}

#[test]
fn trust_shows_a_changed_certificate_and_asks() {
    let env = Env::new();
    let old = format_fingerprint(&[0x11; 32]);
    let new = format_fingerprint(&env.server.fingerprint);
    let cfg = env.config(&prm5(
        &env.server.url(),
        &format!("fingerprint = \"{old}\"\n"),
    ));
    let c = cfg.to_str().unwrap();
    let before = read(&cfg);

    // Declined (and no answer at all): nothing written.
    for answer in ["n\n", ""] {
        let out = env.run(&["trust", "prm-5", "-c", c], answer);
        assert!(!out.status.success());
        let stdout = text(&out.stdout);
        assert!(stdout.contains("CHANGED"), "{stdout}");
        assert!(stdout.contains(&old) && stdout.contains(&new), "{stdout}");
        assert!(stdout.contains("Trust this certificate? [y/N]"), "{stdout}");
        assert!(
            text(&out.stderr).contains("not trusted"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(read(&cfg), before);
    }

    let out = env.run(&["trust", "prm-5", "-c", c], "y\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = read(&cfg);
    assert!(
        after.contains(&format!("fingerprint = \"{new}\"")),
        "{after}"
    );
    assert!(!after.contains(&old), "{after}");
}

#[test]
fn trust_errors_say_what_to_do() {
    let env = Env::new();
    let closed = format!("https://127.0.0.1:{}", server::closed_port());
    let cfg = env.config(&prm5(&closed, ""));
    let c = cfg.to_str().unwrap();

    let out = env.run(&["trust", "prm-9", "--yes", "-c", c], "");
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("no runner named \"prm-9\"") && e.contains("prm-5, prm-4"),
        "{e}"
    );

    let out = env.run(&["trust", "prm-4", "--yes", "-c", c], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has no session_url"),
        "{}",
        text(&out.stderr)
    );

    let out = env.run(&["trust", "prm-5", "--yes", "-c", c], "");
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("not reachable") && e.contains(&closed), "{e}");
    assert!(!read(&cfg).contains("fingerprint"));
}

/// prm-5 pinned with an observe token (in a file), prm-6 down, prm-4
/// without a session_url.
fn fleet(env: &Env) -> PathBuf {
    let token = env.dir.path().join("prm-5.token");
    std::fs::write(&token, format!("{OBSERVE}\n")).unwrap();
    let fp = format_fingerprint(&env.server.fingerprint);
    env.config(&format!(
        "{}\n[[runners]]\nname = \"prm-6\"\nmetrics_url = \"127.0.0.1:9\"\n\
         session_url = \"https://127.0.0.1:{}\"\noperator_token = \"{OBSERVE}\"\n\
         fingerprint = \"{fp}\"\n",
        prm5(
            &env.server.url(),
            &format!(
                "operator_token_file = \"{}\"\nfingerprint = \"{fp}\"\n",
                token.display()
            )
        ),
        server::closed_port()
    ))
}

#[test]
fn sessions_of_every_runner_merged_and_failures_on_stderr() {
    let env = Env::new();
    let cfg = fleet(&env);
    let c = cfg.to_str().unwrap();

    let out = env.run(&["sessions", "-c", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("RUNNER  SESSION"), "{table}");
    for cell in [
        "prm-5",
        "9f1c…e0",
        "4711",
        "acme/webapp",
        "active",
        "1 user, 1 observer",
        "3.0K/1.2M",
    ] {
        assert!(lines[1].contains(cell), "{cell:?} not in {:?}", lines[1]);
    }
    assert!(
        lines[2].contains("c3d4") && lines[2].contains("waiting"),
        "{table}"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("prm-6: cannot connect to https://127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains(OBSERVE), "{err}");
    assert!(!err.contains("prm-4"), "{err}");

    let out = env.run(&["sessions", "--json", "-c", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["runner"], "prm-5");
    assert_eq!(list[0]["job_id"], 4711);
    assert_eq!(list[1]["id"], "c3d4");
}

#[test]
fn sessions_of_one_runner_and_when_all_fail() {
    let env = Env::new();
    let cfg = fleet(&env);
    let c = cfg.to_str().unwrap();

    let out = env.run(&["sessions", "prm-5", "-c", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 3);
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    let out = env.run(&["sessions", "prm-6", "-c", c], "");
    assert!(!out.status.success());
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).contains("cannot connect"),
        "{}",
        text(&out.stderr)
    );

    let out = env.run(&["sessions", "prm-4", "-c", c], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no session_url"),
        "{}",
        text(&out.stderr)
    );

    // Every runner with a session_url fails: non-zero, each error shown.
    let down = env.config(&format!(
        "[[runners]]\nname = \"a\"\nmetrics_url = \"h:1\"\nsession_url = \"https://127.0.0.1:{}\"\n\
         [[runners]]\nname = \"b\"\nmetrics_url = \"h:1\"\nsession_url = \"https://127.0.0.1:{}\"\n",
        server::closed_port(),
        server::closed_port()
    ));
    let out = env.run(&["sessions", "-c", down.to_str().unwrap()], "");
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("runner a: no operator token"), "{e}");
    assert!(e.contains("none of the 2 runners answered"), "{e}");
}

#[test]
fn sessions_insecure_needs_no_pin() {
    let env = Env::new();
    let cfg = env.config(&prm5(
        &env.server.url(),
        &format!("operator_token = \"{OBSERVE}\"\n"),
    ));
    let c = cfg.to_str().unwrap();
    let out = env.run(&["sessions", "-c", c], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("termgate trust prm-5"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["sessions", "--insecure", "-c", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("acme/webapp"));
}
