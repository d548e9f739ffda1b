//! Moved to [`crate::executor::shell::pty`]; this path stays until
//! `cli.rs` (`flush_signals`) and `termgate-bench` (`spawn`, `PtyCommand`,
//! the halves) import the new one.

pub use crate::executor::shell::pty::*;
