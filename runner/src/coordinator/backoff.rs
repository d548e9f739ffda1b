//! The retry state of one request loop: [`termgate::backoff::Backoff`]'s
//! schedule (100 ms doubling to a cap, as gitlab-runner's retry requester)
//! with ±20 % jitter and a count of attempts.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    schedule: termgate::backoff::Backoff,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            schedule: termgate::backoff::Backoff::new(min, max),
            attempt: 0,
        }
    }

    /// The next delay: min·2^n capped at max, with ±20 % jitter.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let base = self.schedule.delay(self.attempt);
        let factor = rand::thread_rng().gen_range(0.8..1.2);
        termgate::backoff::jittered(base, factor, self.schedule.max)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d0 = b.next_delay();
        assert!(d0 >= Duration::from_millis(80) && d0 <= Duration::from_millis(120));
        let d1 = b.next_delay();
        assert!(d1 >= Duration::from_millis(160) && d1 <= Duration::from_millis(240));
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        assert_eq!(b.attempts(), 22);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
