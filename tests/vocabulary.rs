//! One vocabulary: every name `termgate::logschema` defines is used by the
//! runner, the console or the coordinator (a constant nothing uses is either
//! a literal that should use it, or dead).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| text.as_bytes()[j]);
        let after = text.as_bytes().get(i + name.len()).copied();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn every_logschema_name_is_used() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = std::fs::read_to_string(root.join("src/logschema.rs")).unwrap();
    let names: Vec<&str> = schema
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l
                .strip_prefix("pub const ")
                .or_else(|| l.strip_prefix("pub fn "))?;
            rest.split([':', '(']).next().map(str::trim)
        })
        .collect();
    assert!(names.len() > 50, "only {} names found", names.len());
    let mut files = Vec::new();
    for dir in ["runner/src", "console/src", "tests/coordinator/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let unused: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != "FIELDS" && !texts.iter().any(|t| mentions(t, n)))
        .collect();
    assert!(
        unused.is_empty(),
        "logschema names nothing uses: {unused:?}"
    );
}
