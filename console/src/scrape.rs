//! The metrics side of the console: scrape runners' `/metrics` directly
//! ([`client`], [`parse`], [`poller`] over the per-runner [`link`] state,
//! with [`options`]) or read the same series from a
//! Prometheus server ([`prometheus`]). Both publish `Vec<RunnerState>` on a
//! `tokio::sync::watch` channel. [`sessions`] polls the runners' operator
//! API (`GET /sessions`) with the same loop.

pub mod client;
pub mod link;
pub mod options;
pub mod parse;
pub mod poller;
pub mod prometheus;
pub mod sessions;
#[cfg(test)]
pub(crate) mod test_server;

pub use client::{ScrapeClient, ScrapeError};
pub use link::{Backoff, Link};
pub use options::PollOptions;
pub use parse::{parse_metrics, ParseError, SampleBuilder};
pub use poller::{spawn, spawn_with_states};
