//! The connections that are not yet serving a terminal (TLS handshake or
//! HTTP request pending), shared fairly between peers:
//! - one peer (an IPv4 address, or an IPv6 /64: one host's share of
//!   addresses) holds at most [`PendingLimits::per_peer`] of them; its next
//!   one is refused, and nobody else notices;
//! - when all [`PendingLimits::max`] places are taken, a newcomer (within its
//!   own share) gets the place of the oldest unfinished connection, which
//!   is closed: a flood of half-open sockets has to renew its connections
//!   faster than a real client completes its handshake to keep anyone out;
//! - a connection whose request passed authentication (a valid session or
//!   operator token: it is waiting for its terminal) is [protected] and
//!   never evicted; only when every place is taken by protected ones is a
//!   newcomer refused.
//!
//! [protected]: PendingSlot::protect

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

/// The default share of one peer: `max(64, max / 16)`, at most `max`.
///
/// GitLab Workhorse dials from a few addresses, one connection per
/// terminal, and each connection is pending only for its handshake (a few
/// milliseconds) or while it waits for the job's terminal: 64 places per
/// address is far more than a Workhorse host needs, and with the default
/// 4096 places (256 per peer) at least 16 addresses are needed to take
/// them all, which then still does not keep anyone out (the oldest go
/// first).
pub fn default_per_peer(max: usize) -> usize {
    (max / 16).max(64).min(max.max(1))
}

/// The limits of a [`PendingTable`] (both at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    pub max: usize,
    pub per_peer: usize,
}

impl PendingLimits {
    /// `max` places, `per_peer` (default [`default_per_peer`]) each, at most
    /// `max`; zeros are taken as 1.
    pub fn new(max: usize, per_peer: Option<usize>) -> Self {
        let max = max.max(1);
        let per_peer = per_peer.unwrap_or_else(|| default_per_peer(max));
        PendingLimits {
            max,
            per_peer: per_peer.clamp(1, max),
        }
    }
}

/// Whom a peer is counted as: its IPv4 address (IPv4-mapped IPv6 included),
/// or its IPv6 /64 (a host usually has a whole /64 to itself).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// What [`PendingTable::admit`] decided.
#[derive(Debug)]
pub enum Admission {
    /// A place was free.
    Admitted(PendingSlot),
    /// The place of the oldest unfinished connection (from `victim`), which
    /// was cancelled.
    Evicted { slot: PendingSlot, victim: IpAddr },
    /// The peer holds its whole share.
    PeerFull,
    /// Every place is held by a protected connection.
    Full,
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    cancel: CancellationToken,
    protected: bool,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// By arrival: the first entry is the oldest.
    entries: BTreeMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&e.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&e.peer);
            }
        }
        Some(e)
    }
}

/// The pending connections, by peer and by age.
#[derive(Debug)]
pub struct PendingTable {
    limits: PendingLimits,
    inner: Mutex<Inner>,
    /// Counts the pending connections (shared by the listeners' tables).
    gauge: Option<IntGauge>,
}

impl PendingTable {
    pub fn new(limits: PendingLimits, gauge: Option<IntGauge>) -> Arc<Self> {
        Arc::new(PendingTable {
            limits,
            inner: Mutex::new(Inner::default()),
            gauge,
        })
    }

    fn gauge_add(&self, n: i64) {
        if let Some(g) = &self.gauge {
            g.add(n);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections pending now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Connections of `ip`'s peer pending now.
    #[cfg(test)]
    pub fn of_peer(&self, ip: IpAddr) -> usize {
        self.lock()
            .per_peer
            .get(&peer_key(ip))
            .copied()
            .unwrap_or(0)
    }

    /// Admit a new connection from `ip` (see the module's rules). The slot
    /// gives the place back when dropped; its token is cancelled if the
    /// connection is evicted.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let peer = peer_key(ip);
        let mut inner = self.lock();
        if inner.per_peer.get(&peer).copied().unwrap_or(0) >= self.limits.per_peer {
            return Admission::PeerFull;
        }
        let mut victim = None;
        if inner.entries.len() >= self.limits.max {
            let oldest = inner
                .entries
                .iter()
                .find(|(_, e)| !e.protected)
                .map(|(id, _)| *id);
            let Some(id) = oldest else {
                return Admission::Full;
            };
            if let Some(e) = inner.remove(id) {
                e.cancel.cancel();
                victim = Some(e.peer);
                self.gauge_add(-1);
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let cancel = CancellationToken::new();
        inner.entries.insert(
            id,
            Entry {
                peer,
                cancel: cancel.clone(),
                protected: false,
            },
        );
        *inner.per_peer.entry(peer).or_default() += 1;
        self.gauge_add(1);
        drop(inner);
        let slot = PendingSlot {
            table: self.clone(),
            id,
            cancel,
        };
        match victim {
            Some(victim) => Admission::Evicted { slot, victim },
            None => Admission::Admitted(slot),
        }
    }
}

/// A connection's place in the [`PendingTable`], given back on drop.
#[derive(Debug)]
pub struct PendingSlot {
    table: Arc<PendingTable>,
    id: u64,
    cancel: CancellationToken,
}

impl PendingSlot {
    /// Cancelled when the connection was evicted.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The connection authenticated: it keeps its place until it ends or
    /// becomes a terminal, and is never evicted.
    pub fn protect(&self) {
        if let Some(e) = self.table.lock().entries.get_mut(&self.id) {
            e.protected = true;
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if self.table.lock().remove(self.id).is_some() {
            self.table.gauge_add(-1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted(a: Admission) -> PendingSlot {
        match a {
            Admission::Admitted(s) => s,
            other => panic!("expected a free place, got {other:?}"),
        }
    }

    #[test]
    fn default_share_is_a_sixteenth_but_at_least_64_and_at_most_all() {
        assert_eq!(default_per_peer(4096), 256);
        assert_eq!(default_per_peer(100), 64);
        assert_eq!(default_per_peer(10), 10);
        assert_eq!(
            PendingLimits::new(0, Some(0)),
            PendingLimits {
                max: 1,
                per_peer: 1
            }
        );
        assert_eq!(PendingLimits::new(8, Some(100)).per_peer, 8);
        assert_eq!(PendingLimits::new(4096, None).per_peer, 256);
    }

    #[test]
    fn one_peer_cannot_take_more_than_its_share_and_others_still_get_in() {
        let t = PendingTable::new(PendingLimits::new(10, Some(3)), None);
        let a = ip("127.0.0.1");
        let held: Vec<_> = (0..3).map(|_| admitted(t.admit(a))).collect();
        for _ in 0..100 {
            assert!(matches!(t.admit(a), Admission::PeerFull));
        }
        assert_eq!(t.of_peer(a), 3);
        let b = admitted(t.admit(ip("127.0.0.2")));
        assert_eq!(t.len(), 4);
        // None of the first peer's connections was touched.
        assert!(held.iter().all(|s| !s.cancelled().is_cancelled()));
        drop(b);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn under_pressure_the_oldest_unfinished_connection_goes_first() {
        let t = PendingTable::new(PendingLimits::new(4, Some(2)), None);
        let first = admitted(t.admit(ip("10.0.0.1")));
        let second = admitted(t.admit(ip("10.0.0.2")));
        let third = admitted(t.admit(ip("10.0.0.1")));
        let fourth = admitted(t.admit(ip("10.0.0.2")));
        let (fifth, victim) = match t.admit(ip("10.0.0.3")) {
            Admission::Evicted { slot, victim } => (slot, victim),
            other => panic!("{other:?}"),
        };
        assert_eq!(victim, ip("10.0.0.1"));
        assert!(first.cancelled().is_cancelled());
        assert!(!second.cancelled().is_cancelled());
        assert_eq!((t.len(), t.of_peer(ip("10.0.0.1"))), (4, 1));
        // The evicted slot's drop gives nothing back twice.
        drop(first);
        assert_eq!(t.len(), 4);
        // Next: the second arrival.
        let sixth = t.admit(ip("10.0.0.4"));
        assert!(matches!(&sixth, Admission::Evicted { victim, .. } if *victim == ip("10.0.0.2")));
        assert!(second.cancelled().is_cancelled());
        assert!(!third.cancelled().is_cancelled() && !fourth.cancelled().is_cancelled());
        assert!(!fifth.cancelled().is_cancelled());
    }

    #[test]
    fn protected_connections_are_never_evicted() {
        let t = PendingTable::new(PendingLimits::new(2, Some(2)), None);
        let old = admitted(t.admit(ip("10.0.0.1")));
        old.protect();
        let young = admitted(t.admit(ip("10.0.0.2")));
        let Admission::Evicted { victim, slot } = t.admit(ip("10.0.0.3")) else {
            panic!("nothing evicted")
        };
        assert_eq!(victim, ip("10.0.0.2"));
        assert!(young.cancelled().is_cancelled() && !old.cancelled().is_cancelled());
        slot.protect();
        assert!(matches!(t.admit(ip("10.0.0.4")), Admission::Full));
        drop(old);
        admitted(t.admit(ip("10.0.0.4")));
    }

    #[test]
    fn places_come_back_on_drop() {
        let gauge = IntGauge::new("pending", "test").unwrap();
        let t = PendingTable::new(PendingLimits::new(3, Some(3)), Some(gauge.clone()));
        let a = ip("192.0.2.1");
        let slots: Vec<_> = (0..3).map(|_| admitted(t.admit(a))).collect();
        assert_eq!((t.len(), t.of_peer(a), gauge.get()), (3, 3, 3));
        // An eviction replaces one: the count stays.
        let b = match t.admit(ip("192.0.2.2")) {
            Admission::Evicted { slot, .. } => slot,
            other => panic!("{other:?}"),
        };
        assert_eq!(gauge.get(), 3);
        drop((slots, b));
        assert_eq!((t.len(), t.of_peer(a), gauge.get()), (0, 0, 0));
        assert!(t.lock().per_peer.is_empty());
        admitted(t.admit(a));
    }

    #[test]
    fn an_ipv6_host_is_one_peer_across_its_slash_64() {
        let t = PendingTable::new(PendingLimits::new(10, Some(2)), None);
        let _a = admitted(t.admit(ip("2001:db8::1")));
        let _b = admitted(t.admit(ip("2001:db8::ffff:2")));
        assert!(matches!(t.admit(ip("2001:db8::3")), Admission::PeerFull));
        let _c = admitted(t.admit(ip("2001:db8:0:1::1")));
        assert_eq!(peer_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }
}
