//! Log lines for repeated refusals, at most one per key and interval: the
//! first refusal is told at once; later ones within the interval are only
//! counted, and the count goes out with the next line (the next refusal
//! after the interval, or [`Quiet::flush`]). Metrics count every refusal
//! anyway; this only keeps a flood (bad tokens, half-open sockets) from
//! becoming megabytes of log per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Keys remembered at most; refusals of further keys are counted under the
/// key without a peer (`None`), so memory stays bounded whatever the
/// number of addresses.
pub const MAX_KEYS: usize = 4096;

/// What is counted together: a peer (or every peer: `None`) and a reason.
pub type Key = (Option<IpAddr>, &'static str);

/// What to log for a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// A line, for `count` refusals (this one and those not told yet); 1:
    /// the first in an interval.
    Line { count: u64 },
    /// Counted, to be told with the next line.
    Quiet,
}

#[derive(Debug)]
struct Entry {
    last_line: Instant,
    untold: u64,
}

/// Refusals counted by [`Key`].
#[derive(Debug)]
pub struct Quiet {
    every: Duration,
    entries: HashMap<Key, Entry>,
}

impl Quiet {
    /// At most one line per key and `every`.
    pub fn new(every: Duration) -> Self {
        Quiet {
            every,
            entries: HashMap::new(),
        }
    }

    /// One more refusal for `key` at `now`.
    pub fn note(&mut self, key: Key, now: Instant) -> Say {
        let key = if self.entries.len() >= MAX_KEYS && !self.entries.contains_key(&key) {
            (None, key.1)
        } else {
            key
        };
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(
                    key,
                    Entry {
                        last_line: now,
                        untold: 0,
                    },
                );
                Say::Line { count: 1 }
            }
            Some(e) if now.saturating_duration_since(e.last_line) >= self.every => {
                let count = e.untold + 1;
                e.last_line = now;
                e.untold = 0;
                Say::Line { count }
            }
            Some(e) => {
                e.untold += 1;
                Say::Quiet
            }
        }
    }

    /// Counts not told yet whose interval is over (each then starts a new
    /// one); keys quiet for a whole interval are forgotten.
    pub fn flush(&mut self, now: Instant) -> Vec<(Key, u64)> {
        let every = self.every;
        let mut out = Vec::new();
        self.entries.retain(|key, e| {
            if now.saturating_duration_since(e.last_line) < every {
                return true;
            }
            if e.untold == 0 {
                return false;
            }
            out.push((*key, e.untold));
            e.last_line = now;
            e.untold = 0;
            true
        });
        out
    }

    /// Whether a count waits to be told.
    pub fn has_untold(&self) -> bool {
        self.entries.values().any(|e| e.untold > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(10);

    fn peer(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_flood_from_one_peer_is_one_line_per_interval_with_its_count() {
        let mut q = Quiet::new(EVERY);
        let t0 = Instant::now();
        let k = (peer("192.0.2.1"), "unauthorized");
        assert_eq!(q.note(k, t0), Say::Line { count: 1 });
        let mut lines = Vec::new();
        // 1,000 refusals over 25 s.
        for i in 1..1000u64 {
            let now = t0 + Duration::from_millis(i * 25);
            if let Say::Line { count } = q.note(k, now) {
                lines.push(count);
            }
        }
        assert_eq!(lines, vec![400, 400]);
        assert!(q.has_untold());
        // The rest is told once their interval is over, not before.
        assert!(q.flush(t0 + Duration::from_secs(21)).is_empty());
        assert_eq!(q.flush(t0 + Duration::from_secs(31)), vec![(k, 199)]);
        let told = 1 + lines.iter().sum::<u64>() + 199;
        assert_eq!(told, 1000);
        // Quiet for an interval: forgotten, the next one is a first again.
        assert!(q.flush(t0 + Duration::from_secs(42)).is_empty());
        assert!(q.entries.is_empty());
        assert_eq!(
            q.note(k, t0 + Duration::from_secs(43)),
            Say::Line { count: 1 }
        );
    }

    #[test]
    fn peers_and_reasons_are_counted_apart() {
        let mut q = Quiet::new(EVERY);
        let t0 = Instant::now();
        assert_eq!(q.note((peer("192.0.2.1"), "a"), t0), Say::Line { count: 1 });
        assert_eq!(q.note((peer("192.0.2.1"), "a"), t0), Say::Quiet);
        assert_eq!(q.note((peer("192.0.2.2"), "a"), t0), Say::Line { count: 1 });
        assert_eq!(q.note((peer("192.0.2.1"), "b"), t0), Say::Line { count: 1 });
    }

    #[test]
    fn memory_stays_bounded_whatever_the_number_of_peers() {
        let mut q = Quiet::new(EVERY);
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 1000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            q.note((Some(ip), "unauthorized"), t0);
        }
        assert!(q.entries.len() <= MAX_KEYS + 1);
        // The untracked peers are counted together.
        assert_eq!(q.flush(t0 + EVERY), vec![((None, "unauthorized"), 999)]);
    }
}
