//! The operators file (`[session_server] operators_file`): who may use the
//! operator API, with which role, and the SHA-256 of each one's token.
//!
//! ```toml
//! # termgate operators: tokens are stored only as SHA-256 hashes.
//! [[operators]]
//! name = "alice"
//! role = "control"          # or "observe"
//! token_sha256 = "<64 hex>"
//! created_at = "2026-12-06T09:00:00Z"
//! ```
//!
//! [`parse`] reports every problem at once, each with file and line; it
//! never panics. [`save`] writes atomically with mode 0600, and only text
//! that [`parse`] takes back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use termgate::operator::Role;
use toml::Spanned;

/// The comment that opens every file [`save`] writes.
pub const HEADER: &str = "# termgate operators: tokens are stored only as SHA-256 hashes.\n\
                          # Manage them with `termgate-runner operator add|list|remove`.\n";
/// Longest operator name (characters).
pub const MAX_NAME_CHARS: usize = 64;

/// One operator as the file stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorEntry {
    pub name: String,
    pub role: Role,
    /// SHA-256 of the whole token, 64 lower-case hex digits.
    pub token_sha256: String,
    /// RFC 3339, when it was added (hand-written entries may lack it).
    pub created_at: Option<String>,
}

/// One problem in the file, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based, when known.
    pub line: Option<usize>,
    pub message: String,
}

/// Why the operators file could not be read, parsed or written. `Display`
/// is the message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum OperatorsError {
    #[error("reading operators file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("writing operators file {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}", render(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    #[error("encoding operators file: {0}")]
    Encode(String),
}

fn render(origin: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = match p.line {
            Some(l) => write!(out, "{origin}:{l}: {}", p.message),
            None => write!(out, "{origin}: {}", p.message),
        };
    }
    out
}

/// Whether `name` may name an operator: 1 to [`MAX_NAME_CHARS`] characters
/// of `A-Z a-z 0-9 . _ @ -`. The error says what is wrong.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an operator name must not be empty".into());
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "operator name is {n} characters long; at most {MAX_NAME_CHARS} are allowed"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        return Err(format!(
            "operator name {name:?} contains {c:?}; allowed are letters, digits and . _ @ -"
        ));
    }
    Ok(())
}

/// Whether `s` is a SHA-256 in hex (64 digits, either case).
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    operators: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    role: Spanned<String>,
    token_sha256: Spanned<String>,
    #[serde(default)]
    created_at: Option<Spanned<String>>,
}

fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parses and validates the file's text; `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<Vec<OperatorEntry>, OperatorsError> {
    let invalid = |problems| OperatorsError::Invalid {
        origin: origin.to_string(),
        problems,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        invalid(vec![Problem {
            line: e.span().map(|s| line_at(text, s.start)),
            message: e.message().trim().replace('\n', "; "),
        }])
    })?;
    let mut problems = Vec::new();
    let mut out: Vec<OperatorEntry> = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, e) in raw.operators.into_iter().enumerate() {
        let at = |s: &std::ops::Range<usize>| Some(line_at(text, s.start));
        let mut problem = |line, key: &str, message: String| {
            problems.push(Problem {
                line,
                message: format!("{key} (in [[operators]] #{}): {message}", i + 1),
            })
        };
        let mut ok = true;
        let name_line = at(&e.name.span());
        let name = e.name.into_inner();
        if let Err(m) = validate_name(&name) {
            problem(name_line, "name", m);
            ok = false;
        } else if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            problem(
                name_line,
                "name",
                format!("duplicate operator name {name:?} (first at line {first})"),
            );
            ok = false;
        } else {
            seen.push((name.clone(), name_line.unwrap_or(0)));
        }
        let role_line = at(&e.role.span());
        let role = Role::parse(e.role.get_ref());
        if role.is_none() {
            problem(
                role_line,
                "role",
                format!(
                    "unsupported role {:?}; allowed values: observe, control",
                    e.role.get_ref()
                ),
            );
        }
        let hash_line = at(&e.token_sha256.span());
        let hash = e.token_sha256.into_inner();
        if !is_sha256_hex(&hash) {
            problem(
                hash_line,
                "token_sha256",
                "expected the token's SHA-256 as 64 hex digits".into(),
            );
            ok = false;
        }
        let created_at = match e.created_at {
            Some(c) => {
                let line = at(&c.span());
                let c = c.into_inner();
                if chrono::DateTime::parse_from_rfc3339(&c).is_err() {
                    problem(
                        line,
                        "created_at",
                        format!("{c:?} is not an RFC 3339 time such as \"2026-12-06T09:00:00Z\""),
                    );
                    ok = false;
                }
                Some(c)
            }
            None => None,
        };
        if let (Some(role), true) = (role, ok) {
            out.push(OperatorEntry {
                name,
                role,
                token_sha256: hash.to_ascii_lowercase(),
                created_at,
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(invalid(problems))
    }
}

/// Reads and validates `path`; `Ok(None)` when there is no such file.
pub fn load(path: &Path) -> Result<Option<Vec<OperatorEntry>>, OperatorsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(OperatorsError::Read {
            path: path.to_path_buf(),
            error,
        }),
    }
}

#[derive(Serialize)]
struct OutFile<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    operators: Vec<OutEntry<'a>>,
}

#[derive(Serialize)]
struct OutEntry<'a> {
    name: &'a str,
    role: &'static str,
    token_sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
}

/// The file's text for `entries` ([`HEADER`] first).
pub fn to_text(entries: &[OperatorEntry]) -> Result<String, OperatorsError> {
    let file = OutFile {
        operators: entries
            .iter()
            .map(|e| OutEntry {
                name: &e.name,
                role: e.role.as_str(),
                token_sha256: &e.token_sha256,
                created_at: e.created_at.as_deref(),
            })
            .collect(),
    };
    let body = toml::to_string(&file).map_err(|e| OperatorsError::Encode(e.to_string()))?;
    Ok(format!("{HEADER}\n{body}"))
}

/// Writes `entries` to `path`: mode 0600, atomically. The text is parsed
/// back first, so a file that would not load is never written.
pub fn save(path: &Path, entries: &[OperatorEntry]) -> Result<(), OperatorsError> {
    let text = to_text(entries)?;
    parse(&text, &path.display().to_string())?;
    crate::config::write_atomic(path, text.as_bytes()).map_err(|error| OperatorsError::Write {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn entry(name: &str, role: Role) -> OperatorEntry {
        OperatorEntry {
            name: name.into(),
            role,
            token_sha256: HASH.into(),
            created_at: Some("2026-12-06T09:00:00Z".into()),
        }
    }

    #[test]
    fn names() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("a.b_c@d-e9").is_ok());
        assert!(validate_name(&"x".repeat(64)).is_ok());
        assert!(validate_name(&"x".repeat(65)).unwrap_err().contains("65"));
        assert!(validate_name("").unwrap_err().contains("empty"));
        assert!(validate_name("al ice").unwrap_err().contains("' '"));
        assert!(validate_name("bob\n").is_err());
        assert!(validate_name("é").is_err());
    }

    #[test]
    fn saves_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operators.toml");
        let entries = vec![entry("alice", Role::Control), entry("bob", Role::Observe)];
        save(&path, &entries).unwrap();
        assert_eq!(load(&path).unwrap(), Some(entries));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        assert!(text.contains("role = \"observe\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        save(&path, &[]).unwrap();
        assert_eq!(load(&path).unwrap(), Some(vec![]));
        assert_eq!(load(&dir.path().join("none.toml")).unwrap(), None);
    }

    #[test]
    fn reads_the_documented_format() {
        let text = format!(
            "# termgate operators\n[[operators]]\nname = \"alice\"\nrole = \"control\"          # or \"observe\"\ntoken_sha256 = \"{}\"\ncreated_at = \"2026-12-06T09:00:00Z\"\n\n[[operators]]\nname = \"ci-bot@example.com\"\nrole = \"observe\"\ntoken_sha256 = \"{HASH}\"\n",
            HASH.to_uppercase()
        );
        let got = parse(&text, "ops.toml").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], entry("alice", Role::Control));
        assert_eq!(got[1].role, Role::Observe);
        assert_eq!(got[1].created_at, None);
        assert!(parse("", "ops.toml").unwrap().is_empty());
    }

    fn err(text: &str) -> String {
        parse(text, "ops.toml").unwrap_err().to_string()
    }

    #[test]
    fn every_problem_has_file_and_line() {
        let e = err(&format!(
            "[[operators]]\nname = \"alice\"\nrole = \"admin\"\ntoken_sha256 = \"{HASH}\"\n"
        ));
        assert!(e.contains("ops.toml:3: role (in [[operators]] #1)"), "{e}");
        assert!(
            e.contains("\"admin\"") && e.contains("observe, control"),
            "{e}"
        );

        let e =
            err("[[operators]]\nname = \"alice\"\nrole = \"observe\"\ntoken_sha256 = \"abc\"\n");
        assert!(e.contains("ops.toml:4: token_sha256"), "{e}");

        let e = err(&format!(
            "[[operators]]\nname = \"a\"\nrole = \"observe\"\ntoken_sha256 = \"{HASH}\"\n\
             [[operators]]\nname = \"a\"\nrole = \"control\"\ntoken_sha256 = \"{HASH}\"\n"
        ));
        assert!(e.contains("ops.toml:6: name (in [[operators]] #2)"), "{e}");
        assert!(
            e.contains("duplicate operator name \"a\" (first at line 2)"),
            "{e}"
        );

        let e = err(&format!(
            "[[operators]]\nname = \"a\"\nrole = \"observe\"\ntoken_sha256 = \"{HASH}\"\ntoken = \"tgo_x\"\n"
        ));
        assert!(
            e.contains("ops.toml:5:") && e.contains("unknown field `token`"),
            "{e}"
        );

        let e = err("[operators]\nname = 1\n");
        assert!(e.starts_with("ops.toml:"), "{e}");

        let e = err("[[operators]]\nname = \"a\"\nrole = \"observe\"\n");
        assert!(e.contains("token_sha256"), "{e}");

        let e = err("[[operators]\n");
        assert!(e.starts_with("ops.toml:1:"), "{e}");

        let e = err(&format!(
            "[[operators]]\nname = \"a b\"\nrole = \"observe\"\ntoken_sha256 = \"{HASH}\"\ncreated_at = \"yesterday\"\n"
        ));
        assert!(e.contains("ops.toml:2: name"), "{e}");
        assert!(e.contains("ops.toml:5: created_at"), "{e}");
    }

    #[test]
    fn unreadable_is_an_error_not_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file.
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, OperatorsError::Read { .. }), "{e}");
        assert!(e.to_string().contains("reading operators file"), "{e}");
    }
}
