//! Why a config did not load or save, as the operator reads it.

use std::path::PathBuf;

/// One schema problem, at a line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// "" for global keys, else e.g. `[session_server]` or `[[runners]] #2`.
    pub section: String,
    pub key: String,
    pub message: String,
}

impl Problem {
    fn render(&self, origin: &str) -> String {
        let at = match self.line {
            Some(l) => format!("{origin}:{l}"),
            None => origin.to_string(),
        };
        let within = if self.section.is_empty() {
            String::new()
        } else {
            format!(" (in {})", self.section)
        };
        format!("{at}: {}{within}: {}", self.key, self.message)
    }
}

/// Why a config could not be read, parsed or written. `Display` is the
/// message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("writing config {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: decoding config: {message}")]
    Decode {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}", render_problems(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    #[error("encoding config: {0}")]
    Encode(String),
}

fn render_problems(origin: &str, problems: &[Problem]) -> String {
    match problems {
        [one] => format!("config schema validation failed: {}", one.render(origin)),
        many => {
            let mut out = format!("config schema validation failed ({} problems):", many.len());
            for p in many {
                out.push_str("\n  ");
                out.push_str(&p.render(origin));
            }
            out
        }
    }
}
