//! How the pollers poll: interval, timeout, concurrency, retry schedule and
//! how much history to keep, with the defaults console.toml falls back to.

use std::time::Duration;

use termgate::backoff::Backoff;

/// Poll period when console.toml does not say.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Per-request timeout when console.toml does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Scrapes in flight at most when console.toml does not say.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Retry delays of a runner that is down: 1 s doubling to 30 s.
pub const DEFAULT_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOptions {
    pub interval: Duration,
    /// Per request, connect to last byte.
    pub timeout: Duration,
    /// Scrapes in flight at most.
    pub concurrency: usize,
    pub backoff: Backoff,
    /// How much history each runner keeps.
    pub history: Duration,
    /// Window of `errors_per_minute`.
    pub rate_window: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            backoff: DEFAULT_BACKOFF,
            history: Duration::from_secs(3600),
            rate_window: Duration::from_secs(60),
        }
    }
}
