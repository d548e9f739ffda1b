//! Failure reasons (GitLab `failure_reason`).

pub const SCRIPT_FAILURE: &str = "script_failure";
pub const RUNNER_SYSTEM_FAILURE: &str = "runner_system_failure";
pub const JOB_EXECUTION_TIMEOUT: &str = "job_execution_timeout";
pub const IMAGE_PULL_FAILURE: &str = "image_pull_failure";
pub const RUNNER_CONFIGURATION_ERROR: &str = "runner_configuration_error";
pub const RUNNER_EXTERNAL_DEPENDENCY_FAILURE: &str = "runner_external_dependency_failure";
pub const RUNNER_INTERRUPTED: &str = "runner_interrupted";
pub const UNKNOWN_FAILURE: &str = "unknown_failure";
/// A canceled job in `gitlab_runner_failed_jobs_total`: never sent to
/// GitLab (a canceled job's update carries no failure reason), but the
/// metric needs a reason, and "unknown_failure" would count a user's cancel
/// as the runner's failure.
pub const JOB_CANCELED: &str = "job_canceled";

/// Map a reason to one GitLab supports, as gitlab-runner does when the
/// job's `features.failure_reasons` does not list it.
pub fn compatible(reason: &str, supported: &[String]) -> &'static str {
    let always = [SCRIPT_FAILURE, RUNNER_SYSTEM_FAILURE, JOB_EXECUTION_TIMEOUT];
    let known = [
        SCRIPT_FAILURE,
        RUNNER_SYSTEM_FAILURE,
        JOB_EXECUTION_TIMEOUT,
        IMAGE_PULL_FAILURE,
        RUNNER_CONFIGURATION_ERROR,
        RUNNER_EXTERNAL_DEPENDENCY_FAILURE,
        RUNNER_INTERRUPTED,
        UNKNOWN_FAILURE,
    ];
    let Some(reason) = known.iter().copied().find(|r| *r == reason) else {
        return UNKNOWN_FAILURE;
    };
    if always.contains(&reason) || supported.iter().any(|s| s == reason) {
        return reason;
    }
    match reason {
        IMAGE_PULL_FAILURE | RUNNER_EXTERNAL_DEPENDENCY_FAILURE => RUNNER_SYSTEM_FAILURE,
        RUNNER_CONFIGURATION_ERROR => SCRIPT_FAILURE,
        _ => UNKNOWN_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reason_mapping() {
        let none: Vec<String> = vec![];
        assert_eq!(compatible(IMAGE_PULL_FAILURE, &none), RUNNER_SYSTEM_FAILURE);
        assert_eq!(
            compatible(IMAGE_PULL_FAILURE, &[IMAGE_PULL_FAILURE.to_string()]),
            IMAGE_PULL_FAILURE
        );
        assert_eq!(
            compatible(RUNNER_CONFIGURATION_ERROR, &none),
            SCRIPT_FAILURE
        );
        assert_eq!(compatible(RUNNER_INTERRUPTED, &none), UNKNOWN_FAILURE);
        assert_eq!(compatible(SCRIPT_FAILURE, &none), SCRIPT_FAILURE);
        assert_eq!(compatible("bogus", &none), UNKNOWN_FAILURE);
    }
}
