//! The console's log side: parse every runner log format, fingerprint
//! errors, tally them, and follow log files.
//!
//! - [`parse`]: one line → [`crate::model::LogRecord`] (or a cheap
//!   [`parse::LineKind`] first);
//! - [`fingerprint`]: message → stable group key;
//! - [`tally`]: group warnings and above ([`crate::model::Tally`]);
//! - [`origin`]: the runner's error or the job's failure;
//! - [`tail`]: follow files across rotation and truncation;
//! - [`read`]: read whole files (plain or gzip) line by line;
//! - [`backfill`]: read back what the files hold when the console starts.

pub mod backfill;
pub mod fingerprint;
mod json;
pub mod origin;
pub mod parse;
pub mod read;
pub mod tail;
pub mod tally;
pub mod wrap;

pub use fingerprint::fingerprint;
pub use parse::{parse_line, LineKind};

/// The repo's `tests/fixtures/logs`.
#[cfg(test)]
pub(crate) fn fixtures_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/logs")
}
