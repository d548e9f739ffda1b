//! Job slots: the global `concurrent` cap, each runner's `limit`, and the
//! per-runner slot number (`CI_CONCURRENT_ID`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    total: usize,
    per_runner: HashMap<String, BTreeSet<usize>>,
}

#[derive(Debug, Clone, Default)]
pub struct Slots {
    inner: Arc<Mutex<Inner>>,
    freed: Arc<Notify>,
}

/// A held slot; freed on drop.
#[derive(Debug)]
pub struct SlotGuard {
    slots: Slots,
    runner: String,
    pub index: usize,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take a slot if `concurrent` and the runner's `limit` (0 = none) allow.
    pub fn try_acquire(&self, runner: &str, limit: usize, concurrent: usize) -> Option<SlotGuard> {
        let mut g = self.lock();
        if g.total >= concurrent {
            return None;
        }
        let used = g.per_runner.entry(runner.to_string()).or_default();
        if limit > 0 && used.len() >= limit {
            return None;
        }
        let index = (0..).find(|i| !used.contains(i)).unwrap_or(used.len());
        used.insert(index);
        g.total += 1;
        Some(SlotGuard {
            slots: self.clone(),
            runner: runner.to_string(),
            index,
        })
    }

    pub fn total(&self) -> usize {
        self.lock().total
    }

    pub fn used_by(&self, runner: &str) -> usize {
        self.lock().per_runner.get(runner).map_or(0, BTreeSet::len)
    }

    /// Wait until some slot is freed.
    pub async fn freed(&self) {
        self.freed.notified().await;
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut g = self.slots.lock();
        g.total = g.total.saturating_sub(1);
        if let Some(s) = g.per_runner.get_mut(&self.runner) {
            s.remove(&self.index);
        }
        drop(g);
        self.slots.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_indexes() {
        let s = Slots::default();
        let a = s.try_acquire("r1", 2, 3).unwrap();
        let b = s.try_acquire("r1", 2, 3).unwrap();
        assert_eq!((a.index, b.index), (0, 1));
        assert!(s.try_acquire("r1", 2, 3).is_none(), "runner limit");
        let c = s.try_acquire("r2", 0, 3).unwrap();
        assert!(s.try_acquire("r2", 0, 3).is_none(), "concurrent");
        drop(a);
        let d = s.try_acquire("r1", 2, 3).unwrap();
        assert_eq!(d.index, 0, "lowest free index reused");
        assert_eq!(s.total(), 3);
        drop((b, c, d));
        assert_eq!(s.total(), 0);
    }
}
