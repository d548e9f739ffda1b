//! `SECURITY.md` names the test behind each claim: every test it names
//! exists (a renamed or deleted test must take its claim with it).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The test names in `text`: the last segment of each code span that is a
/// path (`module::test`, `…::test`) or starts with `e2e ` (config keys and
/// metric names are single words, so they are not taken).
fn named_tests(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let last = span.rsplit([':', ' ']).next().unwrap_or_default();
        let is_ident = !last.is_empty()
            && last
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let path_like = span.contains("::") || span.starts_with("e2e ");
        // `…::tests` names a group, not one test.
        if is_ident && path_like && last != "tests" {
            out.push(last.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_test_security_md_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let mut files = Vec::new();
    for dir in ["src", "runner", "console", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    let code: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let names = named_tests(&doc);
    assert!(names.len() >= 30, "too few test names found: {names:?}");
    let modules = [
        "fuzz",
        "pastes",
        "hardening",
        "pending",
        "private_fs",
        "base_env",
    ];
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !modules.contains(&n.as_str()))
        .filter(|n| !code.contains(&format!("fn {n}(")) && !code.contains(&format!("mod {n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "SECURITY.md names tests that do not exist: {missing:?}"
    );
}

#[test]
fn test_names_are_found_in_code_spans() {
    let text = "a `e2e job_user::a_job_as_user_cannot_read` and `config::save::tests` and \
                `max_pending_per_peer` and `…::hardening::an_http_1_0_upgrade_is_refused` x";
    assert_eq!(
        named_tests(text),
        [
            "a_job_as_user_cannot_read",
            "an_http_1_0_upgrade_is_refused"
        ]
    );
}
