//! The metrics side of the console: scrape runners' `/metrics` directly
//! ([`client`], [`parse`], [`poller`]) or read the same series from a
//! Prometheus server ([`prometheus`]). Both publish `Vec<RunnerState>` on a
//! `tokio::sync::watch` channel.

pub mod client;
pub mod parse;
pub mod poller;
pub mod prometheus;

pub use client::{ScrapeClient, ScrapeError};
pub use parse::{parse_metrics, ParseError, SampleBuilder};
pub use poller::{spawn, spawn_with_states, Backoff, Link, PollOptions};
