//! The console's log side: parse every runner log format, fingerprint
//! errors, tally them, and follow log files.
//!
//! - [`parse`]: one line → [`crate::model::LogRecord`] (or a cheap
//!   [`parse::LineKind`] first);
//! - [`fingerprint`]: message → stable group key;
//! - [`tally`]: group warnings and above ([`crate::model::Tally`]);
//! - [`tail`]: follow files across rotation and truncation.

pub mod fingerprint;
mod json;
pub mod parse;
pub mod tail;
pub mod tally;
pub mod wrap;

pub use fingerprint::fingerprint;
pub use parse::{parse_line, LineKind};

/// `shared/fixtures/logs`, found by walking up from `CARGO_MANIFEST_DIR`.
#[cfg(test)]
pub(crate) fn fixtures_dir() -> std::path::PathBuf {
    let mut d = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let f = d.join("shared/fixtures/logs");
        if f.is_dir() {
            return f;
        }
        assert!(
            d.pop(),
            "shared/fixtures/logs not found above CARGO_MANIFEST_DIR"
        );
    }
}
