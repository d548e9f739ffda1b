//! The suite's helpers: the workspace's test-support crate (processes,
//! waits, one timeout scale) and this crate's own binary.

#![allow(unused_imports)]

pub use termgate_test_support::procs::*;
pub use termgate_test_support::{http, scaled, wait_until};

/// This crate's `termgate-runner`, as cargo built it for this suite.
pub const BIN: &str = env!("CARGO_BIN_EXE_termgate-runner");
