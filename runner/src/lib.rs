//! termgate-runner: a GitLab runner with interactive web terminals.
//!
//! `main.rs` is a thin wrapper over [`cli::main`]; tests call the library
//! in-process or spawn the binary. See ARCHITECTURE.md for the data flow.

pub mod builds;
pub mod cli;
pub mod config;
pub mod coordinator;
pub mod daemon;
pub mod doctor;
pub mod executor;
pub mod job;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod pty;
pub mod rlimit;
pub mod session;
pub mod signals;
pub mod system_id;
pub mod trace;
