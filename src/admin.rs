//! The local coordinator's admin API (`/admin/…`): what `termgate-coordinator`
//! answers and what its clients (the demo, the tests, the bench) send.
//! Loopback only, no authentication.
//!
//! - `POST /admin/jobs` with a [`JobSpec`] or a [`CiYamlRequest`] →
//!   201 [`CreatedJobs`];
//! - `GET /admin/jobs` → `[`[`JobView`]`]` without `trace`/`trace_base64`;
//! - `GET /admin/jobs/{id}`, `POST /admin/jobs/{id}/cancel`,
//!   `PUT /admin/jobs/{id}/session` → [`JobView`];
//! - `GET /admin/jobs/{id}/trace` → the trace bytes;
//! - `POST /admin/runners` with a [`NewRunner`] → 201 [`CreatedRunner`];
//! - errors → [`AdminError`].

use serde::{Deserialize, Serialize};

use crate::api::SessionInfo;

/// One job as the admin API shows it. `GET /admin/jobs` leaves out
/// `trace` and `trace_base64`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobView {
    pub id: u64,
    pub name: String,
    pub stage: String,
    /// GitLab's job status: `pending`, `running`, `success`, `failed`, `canceled`.
    pub state: String,
    /// Handed to a runner that has not acknowledged it yet (still `pending`).
    pub assigned: bool,
    pub runner_id: Option<u64>,
    pub system_id: Option<String>,
    /// The job token (tests prove it never leaks into runner logs or traces).
    pub token: Option<String>,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i32>,
    /// The trace, lossily decoded as UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The trace bytes, standard base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_base64: Option<String>,
    pub trace_size: usize,
    /// `crc32:<hex>` of the trace.
    pub checksum: String,
    /// The session the runner sent with the request that got this job.
    pub session: Option<SessionInfo>,
    pub tags: Vec<String>,
    pub webide: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl JobView {
    /// `success`, `failed` or `canceled`.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "success" | "failed" | "canceled")
    }
}

/// `POST /admin/jobs` with one job. The coordinator also takes the rest of
/// `.gitlab-ci.yml`'s job keys (`image`, `services`, `before_script`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub script: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_script: Vec<String>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

impl JobSpec {
    /// A job named `name` running `script`.
    pub fn new(name: &str, script: &[&str]) -> Self {
        JobSpec {
            name: name.to_owned(),
            script: script.iter().map(|s| (*s).to_owned()).collect(),
            ..JobSpec::default()
        }
    }
}

/// `POST /admin/jobs` with a `.gitlab-ci.yml` text: all its jobs, or only `job`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CiYamlRequest {
    pub ci_yaml: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// 201 to `POST /admin/jobs`: the ids of the queued jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreatedJobs {
    pub ids: Vec<u64>,
}

/// `POST /admin/runners` (an empty body is all defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewRunner {
    pub description: String,
    pub tags: Vec<String>,
    /// Default true; always true without tags.
    pub run_untagged: Option<bool>,
    pub paused: bool,
    pub locked: bool,
    /// Seconds; 0 = no cap.
    pub maximum_timeout: u64,
    /// Use this token instead of a random `glrt-…` one.
    pub token: String,
}

/// 201 to `POST /admin/runners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreatedRunner {
    pub id: u64,
    pub token: String,
}

/// Every error answer of the admin API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminError {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_list_items_have_no_trace_keys() {
        let v = serde_json::to_value(JobView::default()).unwrap_or_default();
        assert!(v.get("trace").is_none() && v.get("trace_base64").is_none());
        assert_eq!(v["session"], serde_json::Value::Null);
    }

    #[test]
    fn job_spec_sends_only_what_is_set() {
        let v = serde_json::to_value(JobSpec::new("a", &["true"])).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"name": "a", "script": ["true"]}));
    }
}
