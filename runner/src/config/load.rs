//! Loading `config.toml`: one parse, the serde model, then validation.

use std::path::Path;

use serde::Deserialize;

use super::doc::Doc;
use super::model::RawConfig;
use super::validate::{self, Ctx};
use super::{Config, ConfigError, Problem};

/// A config that loaded, with what the operator should be told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    /// Deprecations and the single "not implemented by termgate" summary.
    pub warnings: Vec<String>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<LoadedConfig, ConfigError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let message = e.message().trim().to_string();
        decode_error(text, origin, e.span().map(|s| s.start), message)
    })?;
    // The model is read from this same parse; `Doc` keeps it for lines.
    let raw = RawConfig::deserialize(toml_edit::de::Deserializer::from(doc.clone()));
    let mut ctx = Ctx::new(Doc::new(&doc), origin);
    let config = match raw {
        Ok(raw) => validate::config(&mut ctx, raw),
        // Every value is read leniently, so this is not expected; it is
        // still reported as a problem, never as a panic.
        Err(e) => {
            ctx.problems.push(Problem {
                line: e.span().map(|s| ctx.line_at(s.start)),
                section: String::new(),
                key: String::new(),
                message: e.message().to_string(),
            });
            Config::default()
        }
    };

    if !ctx.problems.is_empty() {
        let mut problems = ctx.problems;
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        return Err(ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        });
    }
    let mut warnings = ctx.warnings;
    if !ctx.ignored.is_empty() {
        let mut ignored = ctx.ignored;
        ignored.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        let names: Vec<String> = ignored.into_iter().map(|(_, name)| name).collect();
        warnings.push(format!(
            "{origin}: not implemented by termgate, ignored: {}",
            names.join(", ")
        ));
    }
    Ok(LoadedConfig { config, warnings })
}

fn decode_error(text: &str, origin: &str, offset: Option<usize>, message: String) -> ConfigError {
    let offset = offset.unwrap_or(0).min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    ConfigError::Decode {
        origin: origin.to_string(),
        line,
        column,
        message: message.replace('\n', "; "),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(s.max_observers, 4);
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
        let e =
            err_text("[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nenvironment = \"A=1\"\n");
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
            let text = format!("[session_server]\nlisten_address = \"0.0.0.0:8093\"\nadvertise_address = \"{adv}\"\n");
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
"#;
        let s = parse(text, "c").unwrap().config.session_server.unwrap();
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
        let e = err_text("[session_server]\nmax_observer = 3\n");
        assert!(e.contains("did you mean \"max_observers\"?"), "{e}");
    }

    #[test]
    fn full_runner_loads_typed() {
        let loaded = parse(FULL_RUNNER, "config.toml").unwrap();
        let r = &loaded.config.runners[0];
        assert_eq!(r.id, 42);
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
            "config.toml: not implemented by termgate, ignored: user, [[runners]] #1 pre_build_script, \
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
}

#[cfg(test)]
mod edge_tests {
    use super::parse;

    /// The exact message for each edge, pinned from the hand-written reader
    /// before the serde model replaced it.
    #[test]
    fn edge_messages_are_stable() {
        let cases: &[(&str, &str)] = &[
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nexecutor = \"docker\"\n[runners.docker]\npull_policy = 3\n",
                "config schema validation failed: config.toml:6: pull_policy (in [[runners]] #1 [runners.docker]): expected an array of strings, found an integer (3)",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nenvironment = [\"A=1\", 2]\n",
                "config schema validation failed: config.toml:4: environment (in [[runners]] #1): element 1: expected a string, found an integer (2)",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nenvironment.x = 1\n",
                "config schema validation failed: config.toml:4: environment (in [[runners]] #1): expected an array of strings, found a table",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.feature_flags]\nFF_X = \"yes\"\n",
                "config schema validation failed: config.toml:5: feature_flags.FF_X (in [[runners]] #1): expected a boolean, found a string (\"yes\")",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\ntoken_obtained_at = \"yesterday\"\n",
                "config schema validation failed: config.toml:4: token_obtained_at (in [[runners]] #1): invalid date-time \"yesterday\" (it needs a UTC offset such as Z): premature end of input",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\ntoken_obtained_at = 3\n",
                "config schema validation failed: config.toml:4: token_obtained_at (in [[runners]] #1): expected a date-time such as 2024-01-02T03:04:05Z, found an integer (3)",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\ntoken_obtained_at = 2024-01-01T00:00:00\n",
                "config schema validation failed: config.toml:4: token_obtained_at (in [[runners]] #1): invalid date-time \"2024-01-01T00:00:00\" (it needs a UTC offset such as Z): premature end of input",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.docker]\ntmpfs = { \"/tmp\" = 1 }\n",
                "config schema validation failed: config.toml:5: tmpfs./tmp (in [[runners]] #1 [runners.docker]): expected a string, found an integer (1)",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.docker]\nimagee = \"x\"\n",
                "config schema validation failed: config.toml:5: imagee (in [[runners]] #1 [runners.docker]): unknown key; did you mean \"image\"?",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\ndocker = { image = \"a\", hots = \"b\" }\n",
                "config schema validation failed: config.toml:4: hots (in [[runners]] #1 [runners.docker]): unknown key; did you mean \"host\"?",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[[runners.environment]]\nx = 1\n",
                "config schema validation failed: config.toml:4: environment (in [[runners]] #1): expected an array of strings, found an array of tables",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nname = 3\nid = -1\nlimit = \"x\"\n",
                "config schema validation failed (3 problems):\n  config.toml:4: name (in [[runners]] #1): expected a string, found an integer (3)\n  config.toml:5: id (in [[runners]] #1): must not be negative, found -1\n  config.toml:6: limit (in [[runners]] #1): expected an integer, found a string (\"x\")",
            ),
            (
                "[[session_server]]\nlisten_address = \"x\"\n",
                "config schema validation failed: config.toml:1: session_server: expected a table, found an array of tables",
            ),
            (
                "session_server = 1979-05-27T07:32:00Z\n",
                "config schema validation failed: config.toml:1: session_server: expected a table, found a date-time (1979-05-27T07:32:00Z)",
            ),
            (
                "session_server.listen_address = 3\n",
                "config schema validation failed: config.toml:1: listen_address (in [session_server]): expected a string, found an integer (3)",
            ),
            (
                "runners = [1]\n",
                "config schema validation failed: config.toml:1: runners: expected an array of tables, found an array",
            ),
            (
                "runners = 3\n",
                "config schema validation failed: config.toml:1: runners: expected an array of tables ([[runners]]), found an integer (3)",
            ),
            (
                "[runners]\nurl = 3\n",
                "config schema validation failed: config.toml:1: runners: expected an array of tables ([[runners]]), found a table",
            ),
            (
                "[session_server]\nidle_timeout = 1\ncert_file = \"/c.pem\"\n",
                "config schema validation failed: config.toml:1: key_file (in [session_server]): cert_file and key_file must be set together",
            ),
            (
                "[foo.bar]\nx = 1\n[[baz]]\n",
                "config schema validation failed (2 problems):\n  config.toml:1: foo: unknown section [foo.bar]\n  config.toml:3: baz: unknown section [[baz]]",
            ),
            (
                "a.b.c = 1\n",
                "config schema validation failed: config.toml:1: a: unknown section [a.b]",
            ),
            (
                "log_format = \"jsn\"\n",
                "config schema validation failed: config.toml:1: log_format: unsupported value \"jsn\"; allowed values: runner, text, json; did you mean \"json\"?",
            ),
            (
                "concurrent = 1.5\ncheck_interval = true\n",
                "config schema validation failed (2 problems):\n  config.toml:1: concurrent: expected an integer, found a float (1.5)\n  config.toml:2: check_interval: expected an integer, found a boolean (true)",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text, "config.toml").unwrap_err().to_string();
            assert_eq!(&got, want, "{text:?}");
        }
    }

    /// Known-but-unimplemented keys, explicit or implicit tables, inline or
    /// not: one warning, in line order, and the values kept for `save`.
    #[test]
    fn edge_loads_are_stable() {
        let cases: &[(&str, &str)] = &[
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.cache.s3]\nSecretKey = \"k\"\n",
                "Ok(([\"config.toml: not implemented by termgate, ignored: [[runners]] #1 [runners.cache]\"], \"{\\\"cache\\\"}\", None))",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\nfeature_flags.FF_A = true\n[runners.docker]\n[[runners.docker.services]]\nname = \"x\"\n",
                "Ok(([\"config.toml: not implemented by termgate, ignored: [[runners]] #1 feature_flags.FF_A, [[runners]] #1 [[runners.docker.services]]\"], \"{}\", Some(\"{\\\"services\\\"}\")))",
            ),
            (
                "[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.docker.services]\nname = \"x\"\n[machine]\nx = 1\n",
                "Ok(([\"config.toml: not implemented by termgate, ignored: [[runners]] #1 [runners.docker.services], [machine]\"], \"{}\", Some(\"{\\\"services\\\"}\")))",
            ),
            (
                "user = \"u\"\n[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\npre_build_script = \"x\"\nstrict_check_interval = true\n[runners.docker]\nservices = [{ name = \"x\" }]\n",
                "Ok(([\"config.toml: not implemented by termgate, ignored: user, [[runners]] #1 pre_build_script, [[runners]] #1 strict_check_interval, [[runners]] #1 services\"], \"{\\\"pre_build_script\\\", \\\"strict_check_interval\\\"}\", Some(\"{\\\"services\\\"}\")))",
            ),
        ];
        for (text, want) in cases {
            let l = parse(text, "config.toml").unwrap();
            let r = &l.config.runners[0];
            let got = format!(
                "{:?}",
                Ok::<_, ()>((
                    l.warnings,
                    format!("{:?}", r.ignored),
                    r.docker.as_ref().map(|d| format!("{:?}", d.ignored))
                ))
            );
            assert_eq!(&got, want, "{text:?}");
        }
    }
}
