//! `PUT /api/v4/jobs/:id`: the job's state, failure reason, exit code and
//! the trace's size and checksum.

use serde::{Deserialize, Serialize};

use super::lenient::is_zero;
use super::VersionInfo;

/// Job states the runner reports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Success,
    Failed,
    /// Never sent by a runner; the coordinator uses it for its own records.
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Success | JobState::Failed | JobState::Canceled
        )
    }
}

/// `output` of a job update: size and checksum of the whole trace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct JobTraceOutput {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub checksum: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub bytesize: u64,
}

/// `PUT /api/v4/jobs/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpdateJobRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<VersionInfo>,
    pub token: String,
    pub state: JobState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Deprecated top-level checksum, still sent by gitlab-runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(default)]
    pub output: JobTraceOutput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The trace checksum format GitLab expects: `crc32:` + 8 lowercase hex.
pub fn trace_checksum(crc: u32) -> String {
    format!("crc32:{crc:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_format() {
        assert_eq!(trace_checksum(0x295921ca), "crc32:295921ca");
        assert_eq!(trace_checksum(0xab), "crc32:000000ab");
    }
}
