//! Job slots: the global `concurrent` cap, each runner's `limit`, and the
//! per-runner slot number (`CI_CONCURRENT_ID`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    total: usize,
    per_runner: HashMap<String, BTreeSet<usize>>,
    /// `concurrent` and each job-taking runner's `limit` (0 = none), for
    /// the `available` figure.
    capacity: Option<(usize, Vec<(String, usize)>)>,
}

#[derive(Debug, Clone, Default)]
pub struct Slots {
    inner: Arc<Mutex<Inner>>,
    freed: Arc<Notify>,
    /// `gitlab_runner_session_terminals_available`, kept current.
    available: Option<prometheus::IntGauge>,
}

/// A held slot; freed on drop.
#[derive(Debug)]
pub struct SlotGuard {
    slots: Slots,
    runner: String,
    pub index: usize,
}

impl Slots {
    /// Slots that keep `gauge` at the number of jobs that could start now.
    pub fn with_available_gauge(gauge: prometheus::IntGauge) -> Self {
        Slots {
            available: Some(gauge),
            ..Default::default()
        }
    }

    /// The config's `concurrent` and the `(runner, limit)` of every runner
    /// that takes jobs.
    pub fn set_capacity(&self, concurrent: usize, runners: Vec<(String, usize)>) {
        self.lock().capacity = Some((concurrent, runners));
        self.publish();
    }

    /// Jobs that could still start now: free slots under `concurrent` and
    /// every runner's `limit`.
    pub fn available(&self) -> usize {
        let g = self.lock();
        available_of(&g)
    }

    fn publish(&self) {
        if let Some(gauge) = &self.available {
            gauge.set(i64::try_from(self.available()).unwrap_or(i64::MAX));
        }
    }

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
        drop(g);
        self.publish();
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
        self.slots.publish();
        self.slots.freed.notify_waiters();
    }
}

fn available_of(g: &Inner) -> usize {
    let Some((concurrent, runners)) = &g.capacity else {
        return 0;
    };
    let global = concurrent.saturating_sub(g.total);
    let mut per_runner = 0usize;
    for (r, limit) in runners {
        if *limit == 0 {
            return global;
        }
        let used = g.per_runner.get(r).map_or(0, BTreeSet::len);
        per_runner = per_runner.saturating_add(limit.saturating_sub(used));
    }
    global.min(per_runner)
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

    #[test]
    fn available_follows_slots_and_limits() {
        let gauge = prometheus::IntGauge::new("a", "a").unwrap();
        let s = Slots::with_available_gauge(gauge.clone());
        assert_eq!(gauge.get(), 0, "no capacity known yet");
        s.set_capacity(3, vec![("r1".into(), 2)]);
        assert_eq!(gauge.get(), 2, "runner limit caps it");
        let a = s.try_acquire("r1", 2, 3).unwrap();
        assert_eq!(gauge.get(), 1);
        s.set_capacity(3, vec![("r1".into(), 2), ("r2".into(), 0)]);
        assert_eq!(gauge.get(), 2, "an unlimited runner: concurrent decides");
        let b = s.try_acquire("r2", 0, 3).unwrap();
        let c = s.try_acquire("r2", 0, 3).unwrap();
        assert_eq!(gauge.get(), 0, "concurrent is full");
        drop((a, b, c));
        assert_eq!(gauge.get(), 3);
    }
}
