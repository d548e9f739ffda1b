//! The runner's side of GitLab's runner API: the HTTP client
//! ([`client`]) and the incremental trace uploader ([`trace`]).

pub mod backoff;
pub mod client;
pub mod outcome;
pub mod trace;

pub use client::{ApiObserver, Client, PatchOutcome, RequestJobOutcome, UpdateOutcome};
