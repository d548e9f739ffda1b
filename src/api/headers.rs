//! HTTP header names of the runner API.

pub const RUNNER_TOKEN: &str = "RUNNER-TOKEN";
pub const JOB_TOKEN: &str = "JOB-TOKEN";
pub const LAST_UPDATE: &str = "X-GitLab-Last-Update";
pub const JOB_STATUS: &str = "Job-Status";
pub const TRACE_UPDATE_INTERVAL: &str = "X-GitLab-Trace-Update-Interval";
pub const REQUEST_ID: &str = "X-Request-Id";
pub const CONTENT_RANGE: &str = "Content-Range";
pub const RANGE: &str = "Range";
