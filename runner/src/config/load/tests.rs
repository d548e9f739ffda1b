//! `parse` and `load`, against gitlab-runner's own configs and the edges.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::testdata::{fixture, FULL_RUNNER, SEED};
use crate::config::ConfigError;

fn err_text(text: &str) -> String {
    parse(text, "config.toml").unwrap_err().to_string()
}

#[test]
fn seed_config_loads_with_one_deprecation_warning() {
    let loaded = parse(SEED, "config.toml").unwrap();
    let c = &loaded.config;
    assert_eq!(c.concurrent, 300);
    assert_eq!(c.check_interval, 4);
    assert_eq!(c.listen_address.as_deref(), Some("0.0.0.0:9402"));
    assert_eq!(c.metrics_listen_address().as_deref(), Some("0.0.0.0:9402"));
    assert_eq!(
        c.sentry_dsn.as_deref(),
        Some("https://key@sentry.example.com/1")
    );
    assert_eq!(c.shutdown_timeout, 30);
    let s = c.enabled_session_server().unwrap();
    assert_eq!(s.listen_address.as_deref(), Some("0.0.0.0:8093"));
    assert_eq!(
        s.effective_advertise_address().as_deref(),
        Some("203.0.113.10:8093")
    );
    assert_eq!(s.session_timeout, 1800);
    assert_eq!(s.max_observers, crate::config::DEFAULT_MAX_OBSERVERS);
    assert_eq!(s.max_input_frame, 1024 * 1024);
    assert!(c.runners.is_empty());
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0];
    assert!(
        w.starts_with("config.toml:3: metrics_server is deprecated"),
        "{w}"
    );
    assert!(w.contains("listen_address"), "{w}");
}

#[test]
fn listen_address_and_metrics_server_together_is_an_error() {
    let e = err_text("listen_address = \":9252\"\nmetrics_server = \":9253\"\n");
    assert!(e.contains("config.toml:2: metrics_server"), "{e}");
}

#[test]
fn non_positive_intervals_mean_defaults() {
    let text =
        "check_interval = 0\nshutdown_timeout = -1\n[session_server]\nsession_timeout = -5\n";
    let c = parse(text, "c").unwrap().config;
    assert_eq!(c.check_interval, 3);
    assert_eq!(c.shutdown_timeout, 30);
    assert_eq!(c.session_server.unwrap().session_timeout, 1800);
}

#[test]
fn timeouts_a_job_and_a_stop_read_with_and_without_their_keys() {
    let bare = parse("concurrent = 1\n", "c").unwrap().config;
    assert_eq!(bare.session_timeout_duration(), Duration::from_secs(1800));
    assert_eq!(bare.shutdown_timeout_duration(), Duration::from_secs(30));
    let set = parse(
        "shutdown_timeout = 7\n[session_server]\nlisten_address = \"127.0.0.1:0\"\nsession_timeout = 90\n",
        "c",
    )
    .unwrap()
    .config;
    assert_eq!(set.session_timeout_duration(), Duration::from_secs(90));
    assert_eq!(set.shutdown_timeout_duration(), Duration::from_secs(7));
}

#[test]
fn test_config_fixture_loads_as_upstream() {
    let (text, origin) = fixture("test-config.toml");
    let loaded = parse(&text, &origin).unwrap();
    let c = &loaded.config;
    assert_eq!(c.concurrent, 2);
    assert_eq!(c.check_interval, 3);
    assert_eq!(c.log_level.as_deref(), Some("info"));
    assert_eq!(c.runners.len(), 3);
    assert_eq!(c.runners[0].name, "test-docker-runner");
    assert_eq!(c.runners[0].executor, "docker");
    assert_eq!(c.runners[0].token.expose(), "test-token1");
    assert_eq!(c.runners[0].environment, vec!["ENV=test".to_string()]);
    assert_eq!(c.runners[1].executor, "shell");
    assert_eq!(c.runners[2].url, "https://gitlab.example.com/");
    assert_eq!(c.runners[2].output_limit, 4096);
    assert_eq!(c.runners[2].effective_request_concurrency(), 1);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn session_server_doc_fixture_loads() {
    let (text, origin) = fixture("docs-session-server.toml");
    let loaded = parse(&text, &origin).unwrap();
    let c = &loaded.config;
    assert_eq!(c.concurrent, 100);
    assert_eq!(c.log_level.as_deref(), Some("warning"));
    assert_eq!(c.log_format.as_deref(), Some("runner"));
    let s = c.enabled_session_server().unwrap();
    assert_eq!(s.listen_address.as_deref(), Some("[::]:8093"));
    assert_eq!(
        s.effective_advertise_address().as_deref(),
        Some("runner-host-name.tld:8093")
    );
    assert_eq!(s.session_timeout_duration(), Duration::from_secs(1800));
    assert!(loaded.warnings.is_empty());
}

#[test]
fn lint_valid_fixture_loads() {
    let (text, origin) = fixture("lint/valid.toml");
    let loaded = parse(&text, &origin).unwrap();
    let r = &loaded.config.runners[0];
    assert_eq!(r.executor, "docker");
    let d = r.docker.as_ref().unwrap();
    assert_eq!(d.image.as_deref(), Some("ruby:2.7"));
    assert!(!d.privileged);
    assert_eq!(d.effective_pull_policies(), vec!["always".to_string()]);
    assert!(loaded.warnings.is_empty());
}

/// Fixtures whose runner uses an executor termgate does not implement:
/// they fail on exactly that, and with a supported executor everything
/// else in them loads, with one warning naming what is ignored.
/// A real upstream config with an executor termgate does not implement
/// loads as written: one warning for that runner's executor (it will not
/// request jobs) and the single "not implemented" summary.
fn upstream_executor_fixture(name: &str, executor: &str, ignored: &str) -> Config {
    let (text, origin) = fixture(name);
    let loaded = parse(&text, &origin).unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    let exec_warning = loaded
        .warnings
        .iter()
        .find(|w| w.contains(&format!("{executor:?} executor is not implemented")))
        .unwrap_or_else(|| panic!("{:?}", loaded.warnings));
    assert!(
        exec_warning.contains("will not request jobs"),
        "{exec_warning}"
    );
    assert!(
        loaded.warnings.contains(&format!(
            "{origin}: not implemented by termgate, ignored: {ignored}"
        )),
        "{:?}",
        loaded.warnings
    );
    assert_eq!(loaded.config.runners[0].executor, executor);
    loaded.config
}

#[test]
fn register_template_fixture() {
    let c = upstream_executor_fixture(
        "docs-register-template-merged.toml",
        "kubernetes",
        "[[runners]] #1 [runners.kubernetes]",
    );
    // A session server without listen_address is disabled.
    assert!(c.session_server.is_some());
    assert!(c.enabled_session_server().is_none());
    assert_eq!(c.check_interval, 3);
    assert_eq!(c.runners[0].token.expose(), "glrt-<TOKEN>");
}

#[test]
fn libvirt_custom_fixture_with_empty_cache_tables() {
    let c = upstream_executor_fixture(
        "docs-libvirt-custom-executor.toml",
        "custom",
        "[[runners]] #1 [runners.custom_build_dir], [[runners]] #1 [runners.cache], \
         [[runners]] #1 [runners.custom]",
    );
    let r = &c.runners[0];
    assert_eq!(
        r.builds_dir.as_deref(),
        Some(Path::new("/home/gitlab-runner/builds"))
    );
    assert!(r.ignored.0.contains_key("cache"));
}

#[test]
fn machine_drain_fixture_with_durations() {
    let c = upstream_executor_fixture(
        "docs-machine-shutdown-drain.toml",
        "docker+machine",
        "[machine], [[runners]] #1 [runners.machine]",
    );
    assert_eq!(c.concurrent, 10);
    assert_eq!(c.shutdown_timeout, 600);
    let machine = c.ignored.0.get("machine").unwrap();
    assert_eq!(
        machine["shutdown_drain"]["retry_backoff"].as_str(),
        Some("5s")
    );
}

#[test]
fn lint_misspelled_key() {
    let (text, origin) = fixture("lint/misspelled_key.toml");
    let e = parse(&text, &origin).unwrap_err().to_string();
    assert!(e.contains("misspelled_key.toml:9: buids_dir"), "{e}");
    assert!(e.contains("did you mean \"builds_dir\"?"), "{e}");
    assert!(e.contains("[[runners]] #1"), "{e}");
}

#[test]
fn lint_wrong_section() {
    let (text, origin) = fixture("lint/wrong_section.toml");
    let err = parse(&text, &origin).unwrap_err();
    let e = err.to_string();
    assert!(
        e.contains(
            "wrong_section.toml:11: runner: unknown section [[runner.kubernetes.volumes.pvc]]"
        ),
        "{e}"
    );
    assert!(e.contains("did you mean \"runners\"?"), "{e}");
}

#[test]
fn lint_invalid_syntax() {
    let (text, origin) = fixture("lint/invalid_syntax.toml");
    let err = parse(&text, &origin).unwrap_err();
    assert!(
        matches!(err, ConfigError::Decode { line: 4, .. }),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(e.starts_with("invalid_syntax.toml:4:"), "{e}");
    assert!(e.contains("decoding config"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn lint_bad_shell() {
    let (text, origin) = fixture("lint/bad_shell.toml");
    let e = parse(&text, &origin).unwrap_err().to_string();
    assert!(e.contains("config schema validation failed"), "{e}");
    assert!(e.contains("bad_shell.toml:9: shell"), "{e}");
    assert!(e.contains("\"fish\""), "{e}");
    assert!(e.contains("bash, sh, powershell, pwsh"), "{e}");
}

#[test]
fn wrong_types_name_key_and_line() {
    let e = err_text("log_level = \"info\"\nconcurrent = \"ten\"\n");
    assert!(
        e.contains("config.toml:2: concurrent: expected an integer, found a string (\"ten\")"),
        "{e}"
    );
    let e = err_text("\n\n\n\n\n\nconcurrent = 0\n");
    assert!(
        e.contains("config.toml:7: concurrent: must be at least 1"),
        "{e}"
    );
    let e = err_text("concurrent = -2\n");
    assert!(
        e.contains("config.toml:1: concurrent: must not be negative"),
        "{e}"
    );
    let e = err_text("[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nlimit = -1\n");
    assert!(
        e.contains("config.toml:4: limit (in [[runners]] #1): must not be negative"),
        "{e}"
    );
    let e = err_text("[session_server]\nlisten_address = 8093\n");
    assert!(
        e.contains("config.toml:2: listen_address (in [session_server]): expected a string"),
        "{e}"
    );
    let e = err_text("[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nenvironment = \"A=1\"\n");
    assert!(e.contains("config.toml:4: environment"), "{e}");
    let e = err_text("session_server = 3\n");
    assert!(
        e.contains("config.toml:1: session_server: expected a table"),
        "{e}"
    );
    let e = err_text("log_level = \"verbose\"\n");
    assert!(
        e.contains("log_level: unsupported value \"verbose\""),
        "{e}"
    );
    let e = err_text("connection_max_age = \"15 minutes\"\n");
    assert!(e.contains("config.toml:1: connection_max_age"), "{e}");
}

#[test]
fn all_problems_are_reported_in_line_order() {
    let e = err_text("concurrent = 0\nchek_interval = 3\n[[runners]]\nexecutor = \"shel\"\n");
    assert!(e.starts_with("config schema validation failed ("), "{e}");
    let lines: Vec<&str> = e.lines().skip(1).map(str::trim).collect();
    assert!(lines[0].starts_with("config.toml:1: concurrent"), "{e}");
    assert!(lines[1].starts_with("config.toml:2: chek_interval"), "{e}");
    assert!(lines[1].contains("did you mean \"check_interval\"?"), "{e}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("executor") && l.contains("did you mean \"shell\"?")),
        "{e}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("config.toml:3: url")),
        "{e}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("config.toml:3: token")),
        "{e}"
    );
}

#[test]
fn upstream_executors_load_with_a_warning_unknown_ones_fail() {
    for exec in ["kubernetes", "docker+machine", "custom", "virtualbox"] {
        let text =
            format!("[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nexecutor = \"{exec}\"\n");
        let loaded = parse(&text, "config.toml").unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.starts_with("config.toml:4: ")
                    && w.contains("termgate implements shell and docker")),
            "{:?}",
            loaded.warnings
        );
    }
    let e = err_text("[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nexecutor = \"dockr\"\n");
    assert!(
        e.contains("config.toml:4: executor (in [[runners]] #1)"),
        "{e}"
    );
    assert!(e.contains("did you mean \"docker\"?"), "{e}");
    let text = "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n";
    assert_eq!(
        parse(text, "c").unwrap().config.runners[0].executor,
        "shell"
    );
}

#[test]
fn advertise_address_with_scheme_is_rejected() {
    for adv in ["https://runner.example.com:8093", "http://1.2.3.4:8093"] {
        let text = format!(
            "[session_server]\nlisten_address = \"0.0.0.0:8093\"\nadvertise_address = \"{adv}\"\n"
        );
        let e = err_text(&text);
        assert!(
            e.contains("config.toml:3: advertise_address (in [session_server])"),
            "{e}"
        );
        assert!(e.contains("url not valid, scheme defined"), "{e}");
    }
    let s = parse("[session_server]\nlisten_address = \"[::]:8093\"\n", "c")
        .unwrap()
        .config
        .session_server
        .unwrap();
    assert_eq!(
        s.effective_advertise_address().as_deref(),
        Some("[::]:8093")
    );
}

#[test]
fn termgate_session_server_keys() {
    let text = r#"[session_server]
listen_address = "0.0.0.0:8093"
cert_file = "/etc/termgate/cert.pem"
key_file = "/etc/termgate/key.pem"
max_observers = 0
operators_file = "/etc/termgate/operators.toml"
recordings_dir = "/var/lib/termgate/rec"
idle_timeout = 600
max_pending = 1000
max_pending_per_peer = 50
"#;
    let s = parse(text, "c").unwrap().config.session_server.unwrap();
    assert_eq!(
        (s.max_pending, s.max_pending_per_peer),
        (Some(1000), Some(50))
    );
    assert_eq!(
        s.cert_file.as_deref(),
        Some(Path::new("/etc/termgate/cert.pem"))
    );
    assert_eq!(s.max_observers, 0);
    assert_eq!(s.idle_timeout_duration(), Some(Duration::from_secs(600)));
    assert_eq!(
        s.recordings_dir.as_deref(),
        Some(Path::new("/var/lib/termgate/rec"))
    );
    let e = err_text("[session_server]\ncert_file = \"/c.pem\"\n");
    assert!(e.contains("key_file"), "{e}");
    let e = err_text("[session_server]\nmax_pending_per_peer = 0\n");
    assert!(
        e.contains("config.toml:2: max_pending_per_peer (in [session_server]): must be at least 1"),
        "{e}"
    );
    let e = err_text("[session_server]\nmax_pending = -5\n");
    assert!(
        e.contains("max_pending (in [session_server]): must not be negative"),
        "{e}"
    );
    let e = err_text("[session_server]\nmax_observer = 3\n");
    assert!(e.contains("did you mean \"max_observers\"?"), "{e}");
}

#[test]
fn full_runner_loads_typed() {
    let loaded = parse(FULL_RUNNER, "config.toml").unwrap();
    assert_eq!(loaded.config.user.as_deref(), Some("gitlab-runner"));
    let r = &loaded.config.runners[0];
    assert_eq!(r.id, 42);
    assert_eq!(r.user, None);
    assert_eq!(
        r.token_obtained_at.map(|t| t.to_rfc3339()),
        Some("2024-05-01T10:00:00+00:00".to_string())
    );
    assert_eq!(r.token_expires_at, None);
    assert_eq!(r.tls_ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert_eq!(r.shell.as_deref(), Some("bash"));
    assert_eq!(r.limit, 2);
    assert_eq!(r.effective_request_concurrency(), 1);
    assert_eq!(r.output_limit_bytes(), 8192 * 1024);
    assert_eq!(r.unhealthy_interval_duration(), Duration::from_secs(5400));
    assert_eq!(r.feature_flags.get("FF_NETWORK_PER_BUILD"), Some(&true));
    let d = r.docker.as_ref().unwrap();
    assert_eq!(d.pull_policy, vec!["if-not-present", "always"]);
    assert_eq!(d.allowed_pull_policies, vec!["always"]);
    assert_eq!(d.pids_limit, Some(512));
    assert_eq!(d.tmpfs.get("/tmp").map(String::as_str), Some("rw,size=64m"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(
        loaded.warnings[0],
        "config.toml: not implemented by termgate, ignored: [[runners]] #1 pre_build_script, \
         [[runners]] #1 feature_flags.FF_NETWORK_PER_BUILD, [[runners]] #1 [[runners.docker.services]], \
         [[runners]] #1 [runners.cache]"
    );
}

#[test]
fn bad_pull_policy_is_rejected() {
    let text = "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nexecutor = \"docker\"\n[runners.docker]\npull_policy = \"sometimes\"\n";
    let e = err_text(text);
    assert!(
        e.contains("config.toml:6: pull_policy (in [[runners]] #1 [runners.docker])"),
        "{e}"
    );
    assert!(e.contains("always, if-not-present, never"), "{e}");
}

#[test]
fn load_reports_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn inline_runner_tables_are_accepted() {
    let text = "runners = [{ url = \"https://x\", token = \"t\", executor = \"docker\", docker = { image = \"a\" } }]\n";
    let c = parse(text, "c").unwrap().config;
    assert_eq!(
        c.runners[0].docker.as_ref().unwrap().image.as_deref(),
        Some("a")
    );
}

#[test]
fn never_panics_on_truncated_or_mangled_input() {
    let mut inputs: Vec<String> = [
        "test-config.toml",
        "docs-machine-shutdown-drain.toml",
        "docs-register-template-merged.toml",
        "lint/wrong_section.toml",
    ]
    .iter()
    .map(|n| fixture(n).0)
    .collect();
    inputs.push(FULL_RUNNER.to_string());
    inputs.push("é = \"ü\"\n[[runners]]\nname = \"ß\"\nurl = 3\n".to_string());
    for text in &inputs {
        for (i, _) in text.char_indices() {
            let _ = parse(&text[..i], "t.toml");
            let mut mangled = text.clone();
            mangled.insert(i, '"');
            let _ = parse(&mangled, "t.toml");
        }
    }
}

#[test]
fn the_example_config_loads_with_operators_and_recordings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/config.example.toml");
    let loaded = load(&path).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let s = loaded.config.enabled_session_server().unwrap();
    assert!(s.operators_file.is_some() && s.operator_listen_address.is_some());
    assert!(s.recordings_dir.is_some());
    assert_eq!(
        s.recordings_max_age_duration(),
        Some(Duration::from_secs(720 * 3600))
    );
    assert_eq!(s.recordings_max_size_mb, 10240);
    assert_eq!(s.max_input_frame, 1048576);
}

#[test]
fn max_input_frame_is_bytes_between_1_and_64_mib() {
    let s = parse(
        "[session_server]
max_input_frame = 70000
",
        "c",
    )
    .unwrap()
    .config
    .session_server
    .unwrap();
    assert_eq!(s.max_input_frame, 70000);
    for bad in ["0", "-1", "67108865"] {
        let e = err_text(&format!("[session_server]\nmax_input_frame = {bad}\n"));
        assert!(e.contains("config.toml:2"), "{e}");
        assert!(e.contains("max_input_frame"), "{e}");
        assert!(
            e.contains("must be between 1 and 67108864 bytes")
                || e.contains("must not be negative"),
            "{e}"
        );
    }
    let e = err_text("[session_server]\nmax_input_frame = \"1MiB\"\n");
    assert!(e.contains("max_input_frame"), "{e}");
}
