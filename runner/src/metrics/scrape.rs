//! Collectors computed at scrape time from shared state, so the gauges
//! always reflect the present: `gitlab_runner_jobs` from [`Builds`] and
//! `gitlab_runner_process_state_info` from [`ProcessStateCell`].

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use termgate::metrics::{self as names, label};

use crate::builds::{Builds, ProcessState, ProcessStateCell};

const JOBS_LABELS: [&str; 6] = [
    label::RUNNER,
    label::RUNNER_NAME,
    label::SYSTEM_ID,
    label::STATE,
    label::STAGE,
    label::EXECUTOR_STAGE,
];

fn jobs_opts() -> Opts {
    Opts::new(
        names::JOBS,
        "The current number of running builds, by runner, state, stage and executor stage.",
    )
}

fn state_opts() -> Opts {
    Opts::new(
        names::PROCESS_STATE_INFO,
        "The current process state (1 for the current state, 0 for the others).",
    )
}

/// `gitlab_runner_jobs{runner,runner_name,system_id,state,stage,executor_stage}`:
/// the number of listed jobs per label set.
pub struct JobsCollector {
    builds: Builds,
    /// Only for its descriptor; never holds samples.
    template: IntGaugeVec,
}

impl JobsCollector {
    pub fn new(builds: Builds) -> prometheus::Result<Self> {
        Ok(JobsCollector {
            builds,
            template: IntGaugeVec::new(jobs_opts(), &JOBS_LABELS)?,
        })
    }
}

impl Collector for JobsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.template.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(gauge) = IntGaugeVec::new(jobs_opts(), &JOBS_LABELS) else {
            return Vec::new();
        };
        for b in self.builds.list() {
            gauge
                .with_label_values(&[
                    b.runner.as_str(),
                    b.runner_name.as_str(),
                    b.system_id.as_str(),
                    b.state,
                    b.stage.as_str(),
                    b.executor_stage.as_str(),
                ])
                .inc();
        }
        gauge.collect()
    }
}

/// `gitlab_runner_process_state_info{state}`: 1 for the current state.
pub struct ProcessStateCollector {
    state: ProcessStateCell,
    template: IntGaugeVec,
}

impl ProcessStateCollector {
    pub fn new(state: ProcessStateCell) -> prometheus::Result<Self> {
        Ok(ProcessStateCollector {
            state,
            template: IntGaugeVec::new(state_opts(), &[label::STATE])?,
        })
    }
}

impl Collector for ProcessStateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.template.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(gauge) = IntGaugeVec::new(state_opts(), &[label::STATE]) else {
            return Vec::new();
        };
        let current = self.state.get();
        for s in ProcessState::ALL {
            gauge
                .with_label_values(&[s.as_str()])
                .set(i64::from(s == current));
        }
        gauge.collect()
    }
}
