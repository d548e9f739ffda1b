//! termgate-runner: a GitLab runner with interactive web terminals.
//!
//! `main.rs` is a thin wrapper over [`cli::main`]; tests call the library
//! in-process or spawn the binary.

pub mod builds;
pub mod config;
pub mod local_coordinator;
pub mod logging;
pub mod metrics;
