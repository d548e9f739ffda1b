//! What each coordinator call came to: the outcome enums [`super::Client`]
//! returns instead of errors, so callers decide on retries.

use std::time::Duration;

use termgate::api::JobResponse;

/// Result of `POST /jobs/request`.
#[derive(Debug)]
pub enum RequestJobOutcome {
    /// 201 and a job that parsed.
    Job(Box<JobResponse>, String),
    /// 201 but the body is not a valid job. `id`/`token` are whatever could be
    /// salvaged so the job can still be failed.
    Malformed {
        id: Option<u64>,
        token: Option<String>,
        error: String,
    },
    /// 204: nothing to do. Carries `X-GitLab-Last-Update`.
    NoJob(Option<String>),
    /// 403: the runner token is not valid.
    Forbidden,
    /// 409, 503, other statuses, or a transport failure.
    Failed(String),
}

/// Result of `PUT /jobs/:id`.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    Ok {
        job_status: Option<String>,
    },
    /// 202: accepted, not yet completed: retry after the interval.
    Accepted {
        retry_after: Option<Duration>,
    },
    /// 412: resend the whole trace from offset 0.
    TraceValidationFailed,
    NotFound,
    Forbidden,
    Conflict,
    /// Transport error or 5xx: retry.
    Failed(String),
}

/// Result of `PATCH /jobs/:id/trace`.
#[derive(Debug, PartialEq, Eq)]
pub enum PatchOutcome {
    /// 202: stored up to `size` (exclusive end of `Range`).
    Ok {
        size: Option<u64>,
        job_status: Option<String>,
        interval: Option<Duration>,
    },
    /// 416: the coordinator has `size` bytes; resume from there.
    RangeMismatch { size: Option<u64> },
    /// 403/404 or `Job-Status: canceled|failed`: stop the job.
    Abort { job_status: Option<String> },
    /// Transport error or 5xx, 400 etc: retry later.
    Failed(String),
}
