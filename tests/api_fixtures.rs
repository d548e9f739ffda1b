//! Contract test: every GitLab JSON fixture in `tests/fixtures/gitlab/`
//! deserialises into the matching `termgate::api` type, with the checks
//! listed in `tests/fixtures/README.md`.

// Helpers outside `#[test]` fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use termgate::api::{JobRequest, JobResponse};

/// The repo's `tests/fixtures/gitlab`.
fn gitlab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(gitlab_dir().join(name)).unwrap()
}

fn job(name: &str) -> JobResponse {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_json_fixture_parses() {
    let mut n = 0;
    for e in std::fs::read_dir(gitlab_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).unwrap();
        if name.starts_with("job-request-body") {
            serde_json::from_str::<JobRequest>(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            serde_json::from_str::<JobResponse>(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn full_job_response() {
    let j = job("job-response-full.json");
    assert_eq!(j.id, 10);
    let image = j.image.as_ref().unwrap();
    assert_eq!(image.name, "ruby:3.3");
    assert_eq!(image.entrypoint, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(
        image
            .executor_opts
            .docker
            .as_ref()
            .unwrap()
            .platform
            .as_deref(),
        Some("arm64/v8")
    );
    assert!(image.executor_opts.unsupported().is_empty());
    assert_eq!(j.services.len(), 2);
    let aliases: Vec<_> = j.services.iter().map(|s| s.alias.as_deref()).collect();
    assert_eq!(aliases, vec![Some("db-pg"), Some("db-mysql")]);
    let platforms: Vec<_> = j
        .services
        .iter()
        .map(|s| s.executor_opts.docker.as_ref().unwrap().platform.as_deref())
        .collect();
    assert_eq!(platforms, vec![Some("amd64/linux"), Some("arm")]);
    assert_eq!(
        j.services[0].command,
        Some(vec!["sleep".to_string(), "30".to_string()])
    );
    let v = j.variables.iter().find(|v| v.key == "CI_REF_NAME").unwrap();
    assert_eq!(v.value, "main");
    assert_eq!(v.public, Some(true));
    assert_eq!(v.file, Some(true));
    assert_eq!(v.raw, Some(true));
    assert_eq!(j.steps.len(), 2);
    assert_eq!(j.steps[0].script, vec!["date", "ls -ls"]);
    assert_eq!(j.steps[1].name, "after_script");
    assert_eq!(j.timeout_secs(), Some(3600));
    assert!(!j.artifacts.is_empty());
    assert!(!j.cache.is_empty());
    assert_eq!(
        j.project_web_url(),
        "https://gitlab.example.com/test/test-project"
    );
}

#[test]
fn unsupported_executor_opts_are_reported() {
    let j = job("job-response-unsupported-executor-opts.json");
    let mut all: Vec<String> = j.image.as_ref().unwrap().executor_opts.unsupported();
    for s in &j.services {
        all.extend(s.executor_opts.unsupported());
    }
    let joined = all.join(",");
    assert!(joined.contains("blammo"), "{joined}");
    assert!(joined.contains("powpow"), "{joined}");
    assert_eq!(all.len(), 2, "{joined}");
}

#[test]
fn gitlab_11_4_5_capture() {
    let text = read("job-response-gitlab-11.4.5-captured.json");
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(raw["artifacts"].is_null());
    assert_eq!(raw["cache"], serde_json::json!([null]));
    assert!(raw["image"].is_null());
    let j = job("job-response-gitlab-11.4.5-captured.json");
    assert!(j.artifacts.is_empty());
    assert!(j.cache.is_empty());
    assert!(j.image.is_none());
    assert_eq!(j.runner_info.runner_session_url, None);
    assert!(j.features.trace_sections);
    assert!(j
        .variables
        .iter()
        .all(|v| v.file.is_none() && v.raw.is_none()));
    assert_eq!(j.variable("CI_PIPELINE_ID"), Some("10"));
    assert_eq!(j.token, "X".repeat(20));
}

#[test]
fn runner_11_4_2_request_body() {
    let text = read("job-request-body-runner-11.4.2-captured.json");
    let req: JobRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(req.token, "X".repeat(30));
    assert_eq!(req.last_update, "3f55cec3cb9b07c42b5ca85c71471a0c");
    assert_eq!(req.info.version, "11.4.2");
    assert!(req.info.features.session && req.info.features.terminal);
    assert!(!req.info.features.image);
    let out = serde_json::to_value(&req).unwrap();
    assert_eq!(out["token"], serde_json::json!(req.token));
    assert_eq!(out["last_update"], serde_json::json!(req.last_update));
    assert_eq!(out["info"]["features"]["shared"], serde_json::json!(true));
    assert_eq!(
        out["info"]["features"]["variables"],
        serde_json::json!(true)
    );
    // every feature key the fixture sent comes back with the same value
    let orig: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (k, v) in orig["info"]["features"].as_object().unwrap() {
        assert_eq!(&out["info"]["features"][k], v, "feature {k}");
    }
    for k in [
        "name",
        "version",
        "revision",
        "platform",
        "architecture",
        "executor",
        "shell",
    ] {
        assert_eq!(out["info"][k], orig["info"][k], "info.{k}");
    }
    // round trip
    let back: JobRequest = serde_json::from_value(out).unwrap();
    assert_eq!(back, req);
}
