//! The one retry schedule of both binaries: `min`, doubling after each
//! failure, capped at `max` (gitlab-runner's retry requester and the console's
//! scrape retries). Pure: callers that want jitter apply [`jittered`] with
//! their own random number.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Self {
        Backoff { min, max }
    }

    /// The delay before try `attempt + 1` after `attempt` failures in a row
    /// (0 and 1 both give `min`): `min·2^(attempt-1)`, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .min
            .checked_mul(1u32 << attempt.saturating_sub(1).min(20))
            .unwrap_or(self.max);
        doubled.min(self.max)
    }
}

/// `delay` scaled by `factor` (e.g. a random number in 0.8..1.2), still
/// capped at `max`.
pub fn jittered(delay: Duration, factor: f64, max: Duration) -> Duration {
    if !factor.is_finite() || factor <= 0.0 {
        return delay.min(max);
    }
    delay.mul_f64(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let got: Vec<u64> = (0..8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(got, [1, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_under_the_cap() {
        let max = Duration::from_secs(5);
        assert_eq!(jittered(Duration::from_secs(5), 1.2, max), max);
        assert_eq!(
            jittered(Duration::from_secs(1), 0.8, max),
            Duration::from_millis(800)
        );
        assert_eq!(
            jittered(Duration::from_secs(1), f64::NAN, max),
            Duration::from_secs(1)
        );
    }
}
