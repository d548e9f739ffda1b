//! `termgate-runner doctor --json` against a runner's config: with the
//! runner stopped (nothing listens: a warning), running (the TLS handshake
//! with its session server passes and shows the certificate it serves),
//! and a config GitLab cannot use (exit status 1).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use termgate::logschema::{self as schema, msg};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

fn doctor(config: &Path, json: bool) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("doctor").arg("-c").arg(config);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
}

/// A port nothing listens on right now (the runner binds it next).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn doctor_dials_a_running_runner_and_warns_about_a_stopped_one() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "doctor", &["--run-untagged"]);
    let port = free_port();
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:{port}\"\n"));

    // Stopped: nothing listens, which is a warning, not a failure.
    let out = doctor(&setup.config, true);
    let before = report(&out);
    assert!(out.status.success(), "{before:#}");
    assert_eq!(before["ok"], true, "{before:#}");
    let reach = check(&before, "session_reachable");
    assert_eq!(reach["status"], "warn", "{reach}");
    assert_eq!(
        reach["detail"],
        format!("nothing listens on 127.0.0.1:{port}: is the runner running?")
    );
    // Loopback is right: the coordinator is on this machine too.
    assert_eq!(check(&before, "advertise_address")["status"], "pass");
    assert_eq!(check(&before, "session_ports")["status"], "pass");

    // Running: the handshake works and the served certificate is the one
    // the runner logged and saved.
    let mut runner = setup.start();
    let listening = runner.wait_log(msg::SESSION_SERVER_LISTENING, WAIT);
    assert_eq!(listening[schema::ADDRESS], format!("127.0.0.1:{port}"));
    let generated = runner.wait_log(msg::SESSION_CERT_GENERATED, WAIT);
    let fp = generated[schema::FINGERPRINT].as_str().unwrap().to_string();
    let out = doctor(&setup.config, true);
    let running = report(&out);
    assert!(out.status.success(), "{running:#}");
    let reach = check(&running, "session_reachable");
    assert_eq!(reach["status"], "pass", "{reach}");
    assert_eq!(
        reach["detail"],
        format!("TLS handshake works; the runner serves {fp}, valid for 127.0.0.1")
    );
    for name in ["certificate", "certificate_san", "certificate_expiry"] {
        assert_eq!(check(&running, name)["status"], "pass", "{running:#}");
    }
    assert!(
        check(&running, "certificate")["detail"]
            .as_str()
            .unwrap()
            .contains(&fp),
        "{running:#}"
    );

    // The table says the same.
    let out = doctor(&setup.config, false);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("session_reachable") && l.contains(" PASS ")),
        "{table}"
    );

    // Stopped again.
    runner.signal(nix::sys::signal::Signal::SIGTERM);
    runner.wait_exit(WAIT);
    let after = report(&doctor(&setup.config, true));
    assert_eq!(check(&after, "session_reachable")["status"], "warn");
}

#[test]
fn a_config_gitlab_cannot_use_fails_with_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "concurrent = 2\n\n[session_server]\n  listen_address = \"0.0.0.0:{}\"\n\n\
             [[runners]]\n  name = \"remote\"\n  url = \"https://gitlab.example.com\"\n  \
             token = \"glrt-doctor\"\n  executor = \"shell\"\n",
            free_port()
        ),
    )
    .unwrap();
    let out = doctor(&config, true);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    assert_eq!(r["ok"], false);
    let adv = check(&r, "advertise_address");
    assert_eq!(adv["status"], "fail", "{adv}");
    assert!(
        adv["detail"].as_str().unwrap().contains(
            "is the unspecified address and the coordinator https://gitlab.example.com is remote"
        ),
        "{adv}"
    );
    let out = doctor(&config, false);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("advertise_address") && l.contains(" FAIL ")),
        "{table}"
    );
    assert!(table.contains("(exit status 1)"), "{table}");
    // Nothing on stderr: a failed check is a result, not an error.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
