//! Which live session `termgate attach RUNNER WHAT` means: a session id, a
//! job id, or a unique prefix of a session id.

use termgate::operator::{SessionList, SessionSummary};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no live session on {runner} matches {wanted:?}{}", known_list(.known))]
    NotFound {
        runner: String,
        wanted: String,
        known: Vec<String>,
    },
    #[error("{wanted:?} matches several sessions on {runner}: {}; give more of the id", .candidates.join(", "))]
    Ambiguous {
        runner: String,
        wanted: String,
        candidates: Vec<String>,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no live sessions)".into()
    } else {
        format!(" (live: {})", known.join(", "))
    }
}

/// `job 4711 (9f1c…)` for messages.
fn describe(s: &SessionSummary) -> String {
    format!("job {} ({})", s.job_id, s.id)
}

/// The session `wanted` names on `runner`: its exact id, else the job with
/// that id, else the one session whose id starts with it.
pub fn resolve<'a>(
    runner: &str,
    list: &'a SessionList,
    wanted: &str,
) -> Result<&'a SessionSummary, ResolveError> {
    let wanted = wanted.trim();
    let s = &list.sessions;
    if let Some(found) = s.iter().find(|s| s.id == wanted) {
        return Ok(found);
    }
    if let Ok(job) = wanted.parse::<u64>() {
        if let Some(found) = s.iter().find(|s| s.job_id == job) {
            return Ok(found);
        }
    }
    let prefixed: Vec<&SessionSummary> = if wanted.is_empty() {
        Vec::new()
    } else {
        s.iter().filter(|s| s.id.starts_with(wanted)).collect()
    };
    match prefixed.as_slice() {
        [one] => Ok(one),
        [] => Err(ResolveError::NotFound {
            runner: runner.to_string(),
            wanted: wanted.to_string(),
            known: s.iter().map(describe).collect(),
        }),
        many => Err(ResolveError::Ambiguous {
            runner: runner.to_string(),
            wanted: wanted.to_string(),
            candidates: many.iter().map(|s| describe(s)).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> SessionList {
        let s = |id: &str, job| SessionSummary {
            id: id.into(),
            job_id: job,
            state: "active".into(),
            ..Default::default()
        };
        SessionList {
            sessions: vec![s("9f1c00e0", 4711), s("9f2a0077", 4712), s("4711beef", 90)],
        }
    }

    #[test]
    fn id_then_job_then_unique_prefix() {
        let l = list();
        assert_eq!(resolve("r", &l, "9f2a0077").unwrap().job_id, 4712);
        // A job id wins over a session id that starts with the same digits.
        assert_eq!(resolve("r", &l, "4711").unwrap().id, "9f1c00e0");
        assert_eq!(resolve("r", &l, "9f1").unwrap().job_id, 4711);
        assert_eq!(resolve("r", &l, " 4711beef ").unwrap().job_id, 90);
    }

    #[test]
    fn ambiguous_and_unknown_are_explained() {
        let l = list();
        let e = resolve("prm-5", &l, "9f").unwrap_err().to_string();
        assert_eq!(
            e,
            "\"9f\" matches several sessions on prm-5: job 4711 (9f1c00e0), job 4712 (9f2a0077); give more of the id"
        );
        let e = resolve("prm-5", &l, "zz").unwrap_err().to_string();
        assert!(
            e.starts_with("no live session on prm-5 matches \"zz\" (live: job 4711"),
            "{e}"
        );
        let e = resolve("prm-5", &SessionList::default(), "").unwrap_err();
        assert!(e.to_string().ends_with("(it has no live sessions)"), "{e}");
    }
}
