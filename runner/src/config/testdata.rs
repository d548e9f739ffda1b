//! Shared test data for the config tests.

/// `tests/fixtures/runner-config/` (gitlab-runner's own test and
/// docs configs; see that folder's README for provenance), compiled in.
const FIXTURES: &[(&str, &str)] = &[
    (
        "test-config.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/test-config.toml"
        )),
    ),
    (
        "docs-session-server.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/docs-session-server.toml"
        )),
    ),
    (
        "docs-register-template-merged.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/docs-register-template-merged.toml"
        )),
    ),
    (
        "docs-libvirt-custom-executor.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/docs-libvirt-custom-executor.toml"
        )),
    ),
    (
        "docs-machine-shutdown-drain.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/docs-machine-shutdown-drain.toml"
        )),
    ),
    (
        "lint/valid.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/lint/valid.toml"
        )),
    ),
    (
        "lint/misspelled_key.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/lint/misspelled_key.toml"
        )),
    ),
    (
        "lint/wrong_section.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/lint/wrong_section.toml"
        )),
    ),
    (
        "lint/invalid_syntax.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/lint/invalid_syntax.toml"
        )),
    ),
    (
        "lint/bad_shell.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/runner-config/lint/bad_shell.toml"
        )),
    ),
];

/// A fixture's text and the file name used as the origin in messages.
pub(crate) fn fixture(name: &str) -> (String, String) {
    let text = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let origin = name.rsplit('/').next().unwrap_or(name).to_string();
    (text, origin)
}

pub(crate) const SEED: &str = r#"concurrent = 300
check_interval = 4
metrics_server = "0.0.0.0:9402"
sentry_dsn = "https://key@sentry.example.com/1"
[session_server]
  listen_address = "0.0.0.0:8093"
  advertise_address = "203.0.113.10:8093"
"#;

pub(crate) const FULL_RUNNER: &str = r#"concurrent = 4
log_format = "json"
user = "gitlab-runner"

[[runners]]
  name = "docker-1"
  url = "https://gitlab.example.com"
  id = 42
  token = "glrt-supersecret"
  token_obtained_at = 2024-05-01T10:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  tls-ca-file = "/etc/ca.pem"
  executor = "docker"
  shell = "bash"
  limit = 2
  request_concurrency = 0
  output_limit = 8192
  unhealthy_interval = "90m"
  pre_build_script = "echo hi"
  environment = ["A=1", "B=2"]
  [runners.feature_flags]
    FF_NETWORK_PER_BUILD = true
  [runners.docker]
    image = "alpine:3"
    pull_policy = ["if-not-present", "always"]
    allowed_pull_policies = "always"
    cap_drop = ["ALL"]
    memory = "1g"
    pids_limit = 512
    shm_size = 0
    tmpfs = { "/tmp" = "rw,size=64m" }
    [[runners.docker.services]]
      name = "postgres:16"
  [runners.cache]
    Type = "s3"
    [runners.cache.s3]
      SecretKey = "s3-secret"
"#;
