//! Exact messages and warnings at the edges of the schema: type and shape
//! errors, implicit and inline tables, unknown and unimplemented keys.

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
            "Ok(([\"config.toml: not implemented by termgate, ignored: [[runners]] #1 pre_build_script, [[runners]] #1 strict_check_interval, [[runners]] #1 services\"], \"{\\\"pre_build_script\\\", \\\"strict_check_interval\\\"}\", Some(\"{\\\"services\\\"}\")))",
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
