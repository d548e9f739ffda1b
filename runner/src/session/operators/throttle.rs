//! Failed-authentication throttle, per peer.
//!
//! A peer is an IPv4 address, or an IPv6 /64 (one host usually owns a whole
//! /64, so counting single IPv6 addresses would let it rotate past the
//! limit); an IPv4-mapped IPv6 address counts as its IPv4 address.
//!
//! - A failure is an `Authorization` header that does not authenticate; a
//!   request without one guesses nothing and is not counted.
//! - More than [`MAX_FAILURES`] failures within [`FAILURE_WINDOW`] (counted
//!   from the first of them) throttle the peer: every request from it is
//!   refused, even with a right token, until [`THROTTLE_FOR`] after its last
//!   failure (a failure while throttled moves that end).
//! - A success while not throttled clears the peer's count; it does not
//!   lift an active throttle.
//! - At most [`MAX_PEERS`] peers are tracked: when full, peers with nothing
//!   left to count are dropped first, then the unthrottled peer whose last
//!   failure is the oldest (throttled peers go last, so that many addresses
//!   failing once cannot lift a throttle).
//!
//! Pure state over an injected `now`: no I/O, no sleeping, no clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures a peer may have within [`FAILURE_WINDOW`]; one more throttles it.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in, from the first of them.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a throttled peer is refused after its last failure.
pub const THROTTLE_FOR: Duration = Duration::from_secs(60);
/// Peers tracked at once.
pub const MAX_PEERS: usize = 4096;

/// What one authentication attempt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// No credentials presented.
    Anonymous,
    /// A token that authenticated.
    Success,
    /// Credentials that did not authenticate.
    Failure,
}

/// What the throttle says about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Let the attempt's own result stand.
    Pass,
    /// Refuse; the peer may try again after this long. `started` is true
    /// for the attempt that began the throttle.
    Throttled {
        retry_after: Duration,
        started: bool,
    },
}

/// The key a peer is counted under.
pub(super) fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    failures: u32,
    window_start: Instant,
    last_failure: Instant,
    throttled_until: Option<Instant>,
}

impl Peer {
    /// Still worth keeping: throttled, or failures in an open window.
    fn live(&self, now: Instant) -> bool {
        self.throttled_until.is_some_and(|t| t > now)
            || now.saturating_duration_since(self.window_start) < FAILURE_WINDOW
    }
}

#[derive(Debug, Default)]
pub(super) struct Throttle {
    peers: HashMap<IpAddr, Peer>,
}

impl Throttle {
    /// Records `attempt` from `ip` at `now` and says whether to refuse it.
    pub(super) fn record(&mut self, ip: IpAddr, attempt: Attempt, now: Instant) -> Verdict {
        let key = peer_key(ip);
        if let Some(p) = self.peers.get_mut(&key) {
            match p.throttled_until {
                Some(until) if until > now => {
                    if attempt == Attempt::Failure {
                        p.last_failure = now;
                        p.throttled_until = Some(now + THROTTLE_FOR);
                    }
                    let until = p.throttled_until.unwrap_or(until);
                    return Verdict::Throttled {
                        retry_after: until.saturating_duration_since(now),
                        started: false,
                    };
                }
                Some(_) => {
                    // Served its time: start afresh.
                    self.peers.remove(&key);
                }
                None => {}
            }
        }
        match attempt {
            Attempt::Anonymous => Verdict::Pass,
            Attempt::Success => {
                self.peers.remove(&key);
                Verdict::Pass
            }
            Attempt::Failure => self.fail(key, now),
        }
    }

    fn fail(&mut self, key: IpAddr, now: Instant) -> Verdict {
        if !self.peers.contains_key(&key) && self.peers.len() >= MAX_PEERS {
            self.make_room(now);
        }
        let p = self.peers.entry(key).or_insert(Peer {
            failures: 0,
            window_start: now,
            last_failure: now,
            throttled_until: None,
        });
        if now.saturating_duration_since(p.window_start) >= FAILURE_WINDOW {
            p.failures = 0;
            p.window_start = now;
        }
        p.failures = p.failures.saturating_add(1);
        p.last_failure = now;
        if p.failures > MAX_FAILURES {
            p.throttled_until = Some(now + THROTTLE_FOR);
            Verdict::Throttled {
                retry_after: THROTTLE_FOR,
                started: true,
            }
        } else {
            Verdict::Pass
        }
    }

    fn make_room(&mut self, now: Instant) {
        self.peers.retain(|_, p| p.live(now));
        while self.peers.len() >= MAX_PEERS {
            let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, p)| (p.throttled_until.is_some(), p.last_failure))
                .map(|(k, _)| *k)
            else {
                return;
            };
            self.peers.remove(&oldest);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn fail_n(t: &mut Throttle, ip: IpAddr, n: u32, now: Instant) -> Verdict {
        let mut v = Verdict::Pass;
        for _ in 0..n {
            v = t.record(ip, Attempt::Failure, now);
        }
        v
    }

    #[test]
    fn the_eleventh_failure_throttles_only_that_peer() {
        let mut t = Throttle::default();
        let now = Instant::now();
        assert_eq!(fail_n(&mut t, v4(1), MAX_FAILURES, now), Verdict::Pass);
        assert_eq!(
            t.record(v4(1), Attempt::Failure, now),
            Verdict::Throttled {
                retry_after: THROTTLE_FOR,
                started: true
            }
        );
        // Even a right token or no token is refused now.
        let later = now + Duration::from_secs(10);
        assert_eq!(
            t.record(v4(1), Attempt::Success, later),
            Verdict::Throttled {
                retry_after: Duration::from_secs(50),
                started: false
            }
        );
        assert!(matches!(
            t.record(v4(1), Attempt::Anonymous, later),
            Verdict::Throttled { .. }
        ));
        assert_eq!(t.record(v4(2), Attempt::Success, later), Verdict::Pass);
        assert_eq!(t.record(v4(2), Attempt::Failure, later), Verdict::Pass);
    }

    #[test]
    fn a_throttle_ends_throttle_for_after_the_last_failure() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        fail_n(&mut t, v4(1), MAX_FAILURES + 1, t0);
        // A failure while throttled moves the end.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(
            t.record(v4(1), Attempt::Failure, t1),
            Verdict::Throttled {
                retry_after: THROTTLE_FOR,
                started: false
            }
        );
        let just_before = t1 + THROTTLE_FOR - Duration::from_millis(1);
        assert!(matches!(
            t.record(v4(1), Attempt::Success, just_before),
            Verdict::Throttled { .. }
        ));
        let after = t1 + THROTTLE_FOR;
        assert_eq!(t.record(v4(1), Attempt::Success, after), Verdict::Pass);
        // And the count starts afresh.
        assert_eq!(fail_n(&mut t, v4(1), MAX_FAILURES, after), Verdict::Pass);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        fail_n(&mut t, v4(1), MAX_FAILURES, t0);
        let t1 = t0 + FAILURE_WINDOW;
        assert_eq!(fail_n(&mut t, v4(1), MAX_FAILURES, t1), Verdict::Pass);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut t = Throttle::default();
        let now = Instant::now();
        fail_n(&mut t, v4(1), MAX_FAILURES, now);
        assert_eq!(t.record(v4(1), Attempt::Success, now), Verdict::Pass);
        assert_eq!(fail_n(&mut t, v4(1), MAX_FAILURES, now), Verdict::Pass);
        // Anonymous requests neither count nor reset.
        assert_eq!(t.record(v4(1), Attempt::Anonymous, now), Verdict::Pass);
        assert!(matches!(
            t.record(v4(1), Attempt::Failure, now),
            Verdict::Throttled { started: true, .. }
        ));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(other));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(peer_key(mapped), v4(1));
        assert_eq!(
            peer_key(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn the_map_is_bounded_and_keeps_throttled_peers() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let attacker = v4(1);
        fail_n(&mut t, attacker, MAX_FAILURES + 1, t0);
        let t1 = t0 + Duration::from_secs(1);
        for i in 0..MAX_PEERS as u32 + 100 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            t.record(ip, Attempt::Failure, t1 + Duration::from_micros(i.into()));
        }
        assert!(t.len() <= MAX_PEERS, "{}", t.len());
        assert!(matches!(
            t.record(attacker, Attempt::Success, t1),
            Verdict::Throttled { .. }
        ));
        // Once their windows are over, stale peers make room at once.
        let t2 = t1 + FAILURE_WINDOW + THROTTLE_FOR;
        t.record(v4(200), Attempt::Failure, t2);
        assert!(t.len() < 10, "{}", t.len());
    }
}
