//! The list of jobs this process is running. Owned by the job loop, read by
//! the metrics collector (`gitlab_runner_jobs`) and `/debug/jobs/list`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One running job, as operators see it.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub id: u64,
    /// Short token of the runner that took it (`runner` label).
    pub runner: String,
    pub runner_name: String,
    pub system_id: String,
    /// Project URL without credentials and `.git`.
    pub project_url: String,
    /// `pending`, `running`, `success`, `failed`, `canceled`, `timedout`.
    pub state: &'static str,
    /// Upstream `stage` label value (`prepare_executor`, `step_script`, ...).
    pub stage: String,
    /// Upstream `executor_stage` label value (`prepare`, `shell_run`, ...).
    pub executor_stage: String,
    pub started: Instant,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Builds {
    inner: Arc<Mutex<BTreeMap<u64, BuildInfo>>>,
}

impl Builds {
    pub fn insert(&self, b: BuildInfo) {
        self.lock().insert(b.id, b);
    }

    pub fn remove(&self, id: u64) -> Option<BuildInfo> {
        self.lock().remove(&id)
    }

    /// Change a job in place; no-op if it is not listed.
    pub fn update(&self, id: u64, f: impl FnOnce(&mut BuildInfo)) {
        if let Some(b) = self.lock().get_mut(&id) {
            f(b);
        }
    }

    pub fn list(&self) -> Vec<BuildInfo> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Jobs of one runner (by short token).
    pub fn count_for(&self, runner: &str) -> usize {
        self.lock().values().filter(|b| b.runner == runner).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, BuildInfo>> {
        // A poisoned lock only means another thread panicked mid-update of a
        // plain map; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `/debug/process/state` and `gitlab_runner_process_state_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    Starting = 0,
    Running = 1,
    GracefulShutdown = 2,
    ForcefulShutdown = 3,
}

impl ProcessState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Starting => "starting",
            ProcessState::Running => "running",
            ProcessState::GracefulShutdown => "graceful-shutdown",
            ProcessState::ForcefulShutdown => "forceful-shutdown",
        }
    }
    pub const ALL: [ProcessState; 4] = [
        ProcessState::Starting,
        ProcessState::Running,
        ProcessState::GracefulShutdown,
        ProcessState::ForcefulShutdown,
    ];
}

/// Atomic holder of the process state.
#[derive(Debug, Clone, Default)]
pub struct ProcessStateCell(Arc<AtomicU8>);

impl ProcessStateCell {
    pub fn get(&self) -> ProcessState {
        match self.0.load(Ordering::Relaxed) {
            1 => ProcessState::Running,
            2 => ProcessState::GracefulShutdown,
            3 => ProcessState::ForcefulShutdown,
            _ => ProcessState::Starting,
        }
    }
    pub fn set(&self, s: ProcessState) {
        self.0.store(s as u8, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_update_remove() {
        let b = Builds::default();
        b.insert(BuildInfo {
            id: 1,
            runner: "abc".into(),
            runner_name: "r".into(),
            system_id: "s_x".into(),
            project_url: "u".into(),
            state: "running",
            stage: "step_script".into(),
            executor_stage: "shell_run".into(),
            started: Instant::now(),
        });
        b.update(1, |x| x.state = "success");
        assert_eq!(b.list()[0].state, "success");
        assert_eq!(b.count_for("abc"), 1);
        assert!(b.remove(1).is_some());
        assert!(b.is_empty());
    }

    #[test]
    fn process_state_cell() {
        let c = ProcessStateCell::default();
        assert_eq!(c.get(), ProcessState::Starting);
        c.set(ProcessState::GracefulShutdown);
        assert_eq!(c.get().as_str(), "graceful-shutdown");
    }
}
