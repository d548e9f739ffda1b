//! termgate: the shared vocabulary of the runner and the console.
//!
//! - [`admin`]: the local coordinator's admin API types (`/admin/jobs`, …);
//! - [`api`]: GitLab runner REST API types (register, verify, job request and
//!   response, job update, trace patch rules);
//! - [`metrics`]: metric and label names;
//! - [`logschema`]: log field and event names, upstream message wording;
//! - [`operator`]: the session server's operator API (routes, roles, modes, `/sessions` JSON);
//! - [`terminal`]: the terminal WebSocket framing (Workhorse subprotocols, k8s channels);
//! - [`duration`] and [`backoff`]: the one duration parser and retry schedule both
//!   binaries use.
//!
//! - [`clidocs`] (feature `clidocs`): shell completions and man pages made
//!   from a binary's clap definitions.
//!
//! No I/O lives here.

pub mod admin;
pub mod api;
pub mod backoff;
#[cfg(feature = "clidocs")]
pub mod clidocs;
pub mod duration;
pub mod logschema;
pub mod metrics;
pub mod operator;
pub mod terminal;
