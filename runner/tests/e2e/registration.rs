use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[test]
fn register_writes_a_working_config_and_verify_list_unregister_work() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(
        &coord,
        "e2e-reg",
        &["--tag-list", "alpha,beta", "--run-untagged"],
    );
    let mode = std::fs::metadata(&setup.config)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "config.toml must be private");
    let text = std::fs::read_to_string(&setup.config).unwrap();
    assert!(
        text.contains("[[runners]]") && text.contains("e2e-reg"),
        "{text}"
    );
    assert!(setup.dir.path().join(".runner_system_id").exists());

    let cfg = setup.config.to_str().unwrap();
    let out = runner_cmd(&["verify", "-c", cfg]);
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is valid"));

    let out = runner_cmd(&["list", "-c", cfg]);
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains("e2e-reg") && listed.contains("Executor=shell"),
        "{listed}"
    );

    // The registered runner actually gets and runs a job.
    setup.set_global("check_interval = 1");
    let r = setup.start();
    let id = coord
        .enqueue(json!({"name": "hello", "tags": ["alpha"], "script": ["echo hello-from-e2e"]}));
    let j = coord.wait_finished(id, Duration::from_secs(30));
    assert_eq!(j["state"], "success", "{j}");
    drop(r);

    let out = runner_cmd(&["unregister", "-c", cfg, "--name", "e2e-reg"]);
    assert!(
        out.status.success(),
        "unregister: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::fs::read_to_string(&setup.config)
        .unwrap()
        .contains("e2e-reg"));
    let out = runner_cmd(&["verify", "-c", cfg]);
    assert!(out.status.success(), "no runners left is fine");
}

#[test]
fn register_with_glrt_token_uses_verify_and_bad_token_fails_clearly() {
    let coord = Coord::start(None);
    let created: serde_json::Value = http()
        .post(format!("{}/admin/runners", coord.url))
        .json(&json!({"description": "ui-made", "tags": ["webide"], "run_untagged": false}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("glrt-"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let out = runner_cmd(&[
        "register",
        "-n",
        "-c",
        cfg.to_str().unwrap(),
        "--url",
        &coord.url,
        "--token",
        &token,
        "--executor",
        "shell",
        "--name",
        "ui",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&cfg).unwrap().contains(&token));

    let cfg2 = dir.path().join("other.toml");
    let out = runner_cmd(&[
        "register",
        "-n",
        "-c",
        cfg2.to_str().unwrap(),
        "--url",
        &coord.url,
        "--registration-token",
        "wrong",
        "--executor",
        "shell",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("forbidden"), "{err}");
    assert!(!cfg2.exists(), "nothing written on failure");
    assert!(!err.contains("wrong\""), "the token is not echoed");
}

#[test]
fn tagged_runner_takes_only_jobs_with_its_tags() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "tagged", &["--tag-list", "webide,docker"]);
    setup.set_global("check_interval = 1");
    let r = setup.start();
    let mine = coord.enqueue(json!({"name": "mine", "tags": ["webide"], "script": ["echo ok"]}));
    let both =
        coord.enqueue(json!({"name": "both", "tags": ["webide", "docker"], "script": ["echo ok"]}));
    let other = coord.enqueue(json!({"name": "other", "tags": ["gpu"], "script": ["echo no"]}));
    let untagged = coord.enqueue(json!({"name": "untagged", "script": ["echo no"]}));
    assert_eq!(
        coord.wait_finished(mine, Duration::from_secs(30))["state"],
        "success"
    );
    assert_eq!(
        coord.wait_finished(both, Duration::from_secs(30))["state"],
        "success"
    );
    // Let the runner poll (and be refused) twice more; the others stay pending.
    let polls = |r: &RunnerProc| {
        r.log_lines()
            .iter()
            .filter(|l| l["msg"] == "Checking for jobs...no content")
            .count()
    };
    let seen = polls(&r);
    wait_until("two more polls", Duration::from_secs(10), || {
        (polls(&r) >= seen + 2).then_some(())
    });
    assert_eq!(coord.job(other)["state"], "pending");
    assert_eq!(coord.job(untagged)["state"], "pending");
}
