//! Whose problem a warning or error is: the runner's (or the system's:
//! the GitLab API, Docker, the session server, the runner's own
//! configuration) or the job's (the user's script failed, ran out of time
//! or was canceled). A healthy runner whose users' jobs fail has job
//! failures, not runner errors.
//!
//! Decided from GitLab's `failure_reason` when the record carries one
//! (termgate logs it with every `Job failed` line), else from the message:
//! - `Job failed: …` (upstream's wording for a build error: `exit code N`,
//!   `execution took longer than …`, `canceled`) → job;
//! - `Job failed (system failure): …` → runner;
//! - anything else at warning and above (`Checking for jobs... failed`,
//!   `Submitting job to coordinator... forbidden`, session server and
//!   terminal errors, config reloads) → runner.
//!
//! GitLab's failure reasons (`Ci::Build` / gitlab-runner's
//! `JobFailureReason`), by origin ([`of_reason`]):
//! - job: `script_failure` (the script exited non-zero),
//!   `job_execution_timeout` (the job's own timeout), `job_canceled`,
//!   and GitLab's pipeline-side reasons a runner never reports
//!   (`missing_dependency_failure`, `unmet_prerequisites`,
//!   `stale_schedule`, `archived_failure`, …: not the runner's either);
//! - runner: `runner_system_failure`, `runner_external_dependency_failure`
//!   (registry, cache, clone), `image_pull_failure` (the image could not be
//!   pulled: usually the registry or the network), `runner_configuration_error`
//!   (config.toml: the executor, the Docker host, `allowed_images`),
//!   `runner_interrupted`, `runner_unsupported`, `api_failure`,
//!   `stuck_or_timeout_failure` (no runner update), `scheduler_failure`,
//!   `data_integrity_failure`, and `unknown_failure` or a reason not
//!   listed here (unknown is worth a look).

use termgate::api::failure_reason as reason;
use termgate::logschema::msg;

pub use crate::model::Origin;

/// The failure reasons that are the job's; every other one is the runner's.
pub const JOB_REASONS: [&str; 8] = [
    reason::SCRIPT_FAILURE,
    reason::JOB_EXECUTION_TIMEOUT,
    reason::JOB_CANCELED,
    "missing_dependency_failure",
    "unmet_prerequisites",
    "stale_schedule",
    "archived_failure",
    "forward_deployment_failure",
];

/// The origin of a failure reason (see the module docs).
pub fn of_reason(failure_reason: &str) -> Origin {
    if JOB_REASONS.contains(&failure_reason) {
        Origin::Job
    } else {
        Origin::Runner
    }
}

/// The origin of a warning or error with message `msg` and, when the
/// record has one, its `failure_reason` field.
pub fn classify(message: &str, failure_reason: Option<&str>) -> Origin {
    if let Some(r) = failure_reason.filter(|r| !r.is_empty()) {
        return of_reason(r);
    }
    if message.starts_with(msg::JOB_FAILED_PREFIX) {
        Origin::Job
    } else {
        Origin::Runner
    }
}

/// [`classify`] of a parsed record.
pub fn of_record(rec: &crate::model::LogRecord) -> Origin {
    let reason = rec
        .fields
        .iter()
        .find(|(k, _)| k == termgate::logschema::FAILURE_REASON)
        .map(|(_, v)| v.as_str());
    classify(&rec.msg, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_reason_then_message() {
        for (m, r, want) in [
            ("Job failed: exit code 1", None, Origin::Job),
            (
                "Job failed: exit code 1",
                Some("script_failure"),
                Origin::Job,
            ),
            (
                "Job failed: execution took longer than 1h0m0s seconds",
                None,
                Origin::Job,
            ),
            ("Job failed: canceled", None, Origin::Job),
            (
                "Job failed (system failure): Cannot connect to the Docker daemon",
                Some("runner_system_failure"),
                Origin::Runner,
            ),
            (
                "Job failed (system failure): panic: runtime error",
                None,
                Origin::Runner,
            ),
            (
                "Job failed (system failure): failed to pull image",
                Some("image_pull_failure"),
                Origin::Runner,
            ),
            // The reason decides over the wording.
            (
                "Job failed: boom",
                Some("runner_system_failure"),
                Origin::Runner,
            ),
            (msg::CHECKING_FOR_JOBS_FORBIDDEN, None, Origin::Runner),
            (msg::CHECKING_FOR_JOBS_FAILED, None, Origin::Runner),
            (msg::SUBMITTING_JOB_FAILED, None, Origin::Runner),
            ("Terminal connection rejected", None, Origin::Runner),
            ("Job failed: x", Some(""), Origin::Job),
            ("Job failed: x", Some("unknown_failure"), Origin::Runner),
            ("Job failed: x", Some("something_new"), Origin::Runner),
        ] {
            assert_eq!(classify(m, r), want, "{m:?} {r:?}");
        }
    }

    /// A runner disabled after `unhealthy_requests_limit` failed job
    /// requests (issue 20, item 5) is the runner's problem, not a job's:
    /// the lines termgate-runner logs, as the Errors screen reads them
    /// (parsed, then tallied). Its `resumes_at` field reaches the record
    /// (the Logs screen folds it into `key=value`); the info line when it
    /// resumes is not an error.
    #[test]
    fn a_disabled_runner_is_a_runner_error() {
        use crate::logs::parse::parse_line;
        use crate::model::{Level, Tally};
        use termgate::logschema as schema;
        let upstream = msg::runner_unhealthy("https://gitlab.example.com/", "abcd1234", "1h0m0s");
        let lines = [
            format!(
                r#"{{"level":"error","msg":{},"runner":"abcd1234","runner_name":"r1","time":"2026-12-06T14:02:31Z","unhealthy_requests":3,"unhealthy_requests_limit":3}}"#,
                serde_json::to_string(&upstream).unwrap()
            ),
            format!(
                r#"{{"level":"warning","msg":"{}","resumes_at":"2026-12-06T15:02:31Z","runner":"abcd1234","runner_name":"r1","time":"2026-12-06T14:02:31Z"}}"#,
                msg::RUNNER_DISABLED
            ),
            format!(
                r#"{{"level":"info","msg":"{}","runner":"abcd1234","runner_name":"r1","time":"2026-12-06T15:02:31Z"}}"#,
                msg::RUNNER_RESUMED
            ),
        ];
        let mut tally = Tally::default();
        let mut recs = Vec::new();
        for l in &lines {
            let rec = parse_line("prm-6", l).unwrap_or_else(|| panic!("not a record: {l}"));
            tally.add(&rec, l);
            recs.push(rec);
        }
        assert_eq!(recs[0].msg, upstream);
        assert_eq!(recs[0].level, Level::Error);
        assert_eq!(of_record(&recs[0]), Origin::Runner);
        assert_eq!(recs[1].msg, msg::RUNNER_DISABLED);
        assert_eq!(recs[1].level, Level::Warning);
        assert_eq!(of_record(&recs[1]), Origin::Runner);
        assert!(
            recs[1]
                .fields
                .iter()
                .any(|(k, v)| k == schema::RESUMES_AT && v == "2026-12-06T15:02:31Z"),
            "{:?}",
            recs[1].fields
        );
        assert_eq!(classify(msg::RUNNER_DISABLED, None), Origin::Runner);
        assert_eq!(tally.lines, 3);
        assert_eq!(tally.entries.len(), 2, "{:?}", tally.entries.keys());
        for e in tally.entries.values() {
            assert_eq!(e.origin, Origin::Runner, "{}", e.fingerprint);
            assert!(e.runners.contains("prm-6"));
        }
        assert!(tally.entries.contains_key(msg::RUNNER_DISABLED));
    }
}
