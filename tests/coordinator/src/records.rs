//! The coordinator's records (runners, jobs, traces), as kept in memory and
//! persisted by [`crate::store`], and the rules that need nothing else: tag
//! matching, a job's API state, the admin view of a job. Plain data: this
//! module uses neither [`crate::state`] nor [`crate::store`].

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use termgate::admin::JobView;
use termgate::api::{trace_checksum, JobResponse, SessionInfo, VersionInfo};

use crate::ci_yaml::JobDef;

/// A registered runner.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunnerRecord {
    pub id: u64,
    pub token: String,
    pub description: String,
    pub tags: Vec<String>,
    pub run_untagged: bool,
    pub locked: bool,
    pub paused: bool,
    /// Seconds; 0 = no cap.
    pub maximum_timeout: u64,
    pub access_level: String,
    /// Runner managers by `system_id` (`""` for runners that send none).
    pub managers: BTreeMap<String, ManagerRecord>,
}

/// What a runner manager (one `system_id`) last told us.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ManagerRecord {
    pub info: Option<VersionInfo>,
    /// The `last_update` value it sent with its last job request.
    pub last_update: String,
    /// RFC 3339 time of its last call.
    pub contacted_at: String,
}

impl RunnerRecord {
    /// GitLab's rule: all of the job's tags must be among the runner's;
    /// an untagged job needs `run_untagged`. Paused runners get nothing.
    pub fn can_pick(&self, job_tags: &[String]) -> bool {
        if self.paused {
            return false;
        }
        if job_tags.is_empty() {
            return self.run_untagged;
        }
        job_tags.iter().all(|t| self.tags.contains(t))
    }
}

/// Where a job is. `Queued` and `Assigned` are both GitLab's `pending`:
/// `Assigned` = handed to a runner, waiting for its `running` ack
/// (two-phase commit).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Queued,
    Assigned,
    Running,
    Success,
    Failed,
    Canceled,
}

impl Phase {
    /// The GitLab job status (`Job-Status` header, admin API).
    pub fn api_state(self) -> &'static str {
        match self {
            Phase::Queued | Phase::Assigned => "pending",
            Phase::Running => "running",
            Phase::Success => "success",
            Phase::Failed => "failed",
            Phase::Canceled => "canceled",
        }
    }
}

/// Job metadata, persisted as `jobs/<id>/job.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobRecord {
    pub id: u64,
    pub pipeline_id: u64,
    pub def: JobDef,
    pub phase: Phase,
    pub runner_id: Option<u64>,
    pub system_id: Option<String>,
    /// Job token, minted when the job is handed out.
    pub token: Option<String>,
    /// The payload that was sent to the runner.
    pub response: Option<JobResponse>,
    /// The session the runner sent with the request that got this job.
    pub session: Option<SessionInfo>,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i32>,
    /// A 412 was answered: the next patch may restart the trace at 0.
    pub trace_reset_allowed: bool,
    /// Canceled while a runner had it; the runner sent its final update.
    pub runner_done: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A job and its trace (kept in memory; on disk too with a state dir).
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub rec: JobRecord,
    pub trace: Vec<u8>,
}

impl Job {
    pub fn checksum(&self) -> String {
        trace_checksum(crc32fast::hash(&self.trace))
    }

    /// The admin API's view.
    pub fn view(&self) -> JobView {
        let r = &self.rec;
        JobView {
            id: r.id,
            name: r.def.name.clone(),
            stage: r.def.stage.clone(),
            state: r.phase.api_state().to_owned(),
            assigned: r.phase == Phase::Assigned,
            runner_id: r.runner_id,
            system_id: r.system_id.clone(),
            // The admin API is loopback-only; tests use the token to prove
            // it never leaks into runner logs or traces.
            token: r.token.clone(),
            failure_reason: r.failure_reason.clone(),
            exit_code: r.exit_code,
            trace: Some(String::from_utf8_lossy(&self.trace).into_owned()),
            trace_base64: Some(base64::engine::general_purpose::STANDARD.encode(&self.trace)),
            trace_size: self.trace.len(),
            checksum: self.checksum(),
            session: r.session.clone(),
            tags: r.def.tags.clone(),
            webide: r.def.webide,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// Persisted as `coordinator.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Meta {
    pub registration_token: String,
    pub next_runner_id: u64,
    pub next_job_id: u64,
    pub next_pipeline_id: u64,
    pub runners: Vec<RunnerRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(tags: &[&str], run_untagged: bool) -> RunnerRecord {
        RunnerRecord {
            tags: tags.iter().map(|s| s.to_string()).collect(),
            run_untagged,
            ..RunnerRecord::default()
        }
    }

    #[test]
    fn tag_matching() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(runner(&["a", "b"], false).can_pick(&t(&["a"])));
        assert!(runner(&["a", "b"], false).can_pick(&t(&["b", "a"])));
        assert!(!runner(&["a"], true).can_pick(&t(&["a", "c"])));
        assert!(!runner(&["a"], false).can_pick(&[]));
        assert!(runner(&["a"], true).can_pick(&[]));
        assert!(!runner(&[], true).can_pick(&t(&["a"])));
        let mut paused = runner(&[], true);
        paused.paused = true;
        assert!(!paused.can_pick(&[]));
    }
}
