//! Property tests of `config.toml` loading (issue 20, item 7): any text,
//! any bytes and mutations of real configs load or fail with an error that
//! names the file, never a panic; what loads saves and loads back the same.
//! `PROPTEST_CASES` sets the number of cases; `scripts/fuzz-long.sh` runs
//! them long.

use proptest::prelude::*;

use super::parse;
use crate::config::testdata::{FULL_RUNNER, SEED};

const EXAMPLE: &str = include_str!("../../../../assets/config.example.toml");
const ORIGIN: &str = "fuzz.toml";

/// Snippets a mutation inserts: section headers, keys of every section with
/// odd values, TOML syntax fragments.
const SNIPPETS: &[&str] = &[
    "[[runners]]\n",
    "[session_server]\n",
    "[runners.docker]\n",
    "[runners.feature_flags]\n",
    "[[runners.docker.services]]\n",
    "concurrent = 0\n",
    "concurrent = 99999999999999999999\n",
    "check_interval = -5\n",
    "log_level = \"loud\"\n",
    "listen_address = \"::::\"\n",
    "connection_max_age = \"1y\"\n",
    "max_input_frame = 0\n",
    "max_input_frame = 9223372036854775807\n",
    "max_observers = -1\n",
    "session_timeout = \"x\"\n",
    "idle_timeout = 1e9\n",
    "recordings_max_age = \"-1h\"\n",
    "advertise_address = \"https://x:1\"\n",
    "cert_file = \"\"\n",
    "key_file = \"/k\"\n",
    "url = \"not a url\"\n",
    "token = \"\"\n",
    "executor = \"docker+machine\"\n",
    "shell = \"fish\"\n",
    "environment = [\"A=1\", 2, {}]\n",
    "feature_flags = { FF_X = \"yes\" }\n",
    "token_obtained_at = 1979-05-27T07:32:00Z\n",
    "token_expires_at = 0001-01-01T00:00:00Z\n",
    "image = [\"a\"]\n",
    "user = \"nobody\"\n",
    "= 1\n",
    "\"",
    "'",
    "\n",
    "[",
    "]]",
    "{",
    "#",
    "\\u0000",
    "\u{feff}",
    "é",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Delete `len` bytes at (fraction of the length) `at`.
    Delete { at: f64, len: usize },
    /// Insert one of [`SNIPPETS`] at `at`.
    Insert { at: f64, snippet: usize },
    /// Insert random text at `at`.
    InsertText { at: f64, text: String },
    /// Duplicate the line at `at`.
    DuplicateLine { at: f64 },
    /// Replace the value of the line at `at` (after its `=`) with `value`.
    ReplaceValue { at: f64, value: String },
    /// Cut the text at `at` (a truncated file).
    Truncate { at: f64 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "\"[ -~]{0,20}\"",
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"\"".to_string()),
        "\\PC{0,10}",
    ];
    prop_oneof![
        (0.0..1.0f64, 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0.0..1.0f64, 0..SNIPPETS.len()).prop_map(|(at, snippet)| Mutation::Insert { at, snippet }),
        (0.0..1.0f64, "\\PC{0,30}").prop_map(|(at, text)| Mutation::InsertText { at, text }),
        (0.0..1.0f64).prop_map(|at| Mutation::DuplicateLine { at }),
        (0.0..1.0f64, value).prop_map(|(at, value)| Mutation::ReplaceValue { at, value }),
        (0.0..1.0f64).prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut b = text.as_bytes().to_vec();
    let pos = |at: f64, len: usize| ((at * len as f64) as usize).min(len);
    match m {
        Mutation::Delete { at, len } => {
            let s = pos(*at, b.len());
            let e = (s + len).min(b.len());
            b.drain(s..e);
        }
        Mutation::Insert { at, snippet } => {
            let s = pos(*at, b.len());
            b.splice(s..s, SNIPPETS[*snippet].bytes());
        }
        Mutation::InsertText { at, text } => {
            let s = pos(*at, b.len());
            b.splice(s..s, text.bytes());
        }
        Mutation::DuplicateLine { at } => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = pos(*at, lines.len() - 1);
            let mut out: Vec<&str> = lines.clone();
            out.insert(i, lines[i]);
            return out.concat();
        }
        Mutation::ReplaceValue { at, value } => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = pos(*at, lines.len() - 1);
            if let Some((k, _)) = lines[i].split_once('=') {
                lines[i] = format!("{k}= {value}");
            }
            return lines.join("\n") + "\n";
        }
        Mutation::Truncate { at } => {
            let s = pos(*at, b.len());
            b.truncate(s);
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Load `text`: an error must name the file; a config must save and load
/// back the same.
fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text, ORIGIN) {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains(ORIGIN), "{msg}");
        }
        Ok(loaded) => {
            let saved = crate::config::save::to_toml(&loaded.config)
                .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
            let back = parse(&saved, ORIGIN).map_err(|e| {
                TestCaseError::fail(format!("{e}\n--- saved:\n{saved}\n--- from:\n{text}"))
            })?;
            prop_assert_eq!(back.config, loaded.config);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_config_any_text(s in "\\PC{0,400}") {
        check(&s)?;
    }

    #[test]
    fn fuzz_config_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&b))?;
    }

    #[test]
    fn fuzz_config_tomlish_text(s in "[\\[\\]a-z_=\"0-9 .\\n#{},:-]{0,300}") {
        check(&s)?;
    }

    /// Real configs (the seed's, a full runner, the example) mutated a few
    /// times over.
    #[test]
    fn fuzz_config_mutated(
        base in prop::sample::select(vec![SEED, FULL_RUNNER, EXAMPLE]),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut text = base.to_string();
        for m in &mutations {
            text = apply(&text, m);
        }
        check(&text)?;
    }
}

/// One `[[runners]]` entry of a generated config.
fn runner_toml() -> impl Strategy<Value = String> {
    (
        "[a-z0-9-]{1,12}",
        "glrt-[A-Za-z0-9_-]{10,30}",
        any::<bool>(),
        0i64..10,
        1i64..4,
        1i64..10_000,
        proptest::collection::vec("[A-Z_]{1,8}=[ -!#-\\[\\]-~]{0,12}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(name, token, docker, limit, rc, out, env, privileged)| {
            let env: Vec<String> = env.iter().map(|e| format!("{e:?}")).collect();
            let mut t = format!(
                "[[runners]]\n  name = \"{name}\"\n  url = \"https://gitlab.example.com\"\n  token = \"{token}\"\n  \
                 executor = \"{}\"\n  limit = {limit}\n  request_concurrency = {rc}\n  output_limit = {out}\n  \
                 environment = [{}]\n",
                if docker { "docker" } else { "shell" },
                env.join(", "),
            );
            if docker {
                t.push_str(&format!("  [runners.docker]\n    image = \"alpine:3\"\n    privileged = {privileged}\n"));
            }
            t
        })
}

/// A valid config built from parts, with every `[session_server]` key.
fn config_toml() -> impl Strategy<Value = (String, usize)> {
    (
        (1i64..500, 1i64..60, prop::sample::select(vec!["debug", "info", "warn", "error"]), 1i64..120),
        (1i64..100_000, 0i64..64, 1usize..=64 * 1024 * 1024, 0i64..100_000, any::<bool>(), 1u16..u16::MAX),
        proptest::collection::vec(runner_toml(), 0..3),
    )
        .prop_map(|((conc, check, level, shut), (st, obs, frame, idle, rec, port), runners)| {
            let text = format!(
                "concurrent = {conc}\ncheck_interval = {check}\nlog_level = \"{level}\"\nshutdown_timeout = {shut}\n\
                 [session_server]\n  listen_address = \"127.0.0.1:{port}\"\n  session_timeout = {st}\n  \
                 max_observers = {obs}\n  max_input_frame = {frame}\n  idle_timeout = {idle}\n  record_input = {rec}\n{}",
                runners.concat()
            );
            (text, frame)
        })
}

proptest! {
    /// Valid configs load, keep their values, and save and load back the
    /// same.
    #[test]
    fn fuzz_config_generated_round_trips((text, frame) in config_toml()) {
        let loaded = parse(&text, ORIGIN).map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        let s = loaded.config.session_server.clone();
        prop_assert_eq!(s.map(|s| s.max_input_frame), Some(frame));
        check(&text)?;
    }
}
