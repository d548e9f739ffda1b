//! `concurrent` against the open-files limit. The runner raises its soft
//! `RLIMIT_NOFILE` to the hard limit at start ([`crate::rlimit`]), so the
//! hard limit is what it gets; a terminal job holds about
//! [`FDS_PER_TERMINAL_JOB`] descriptors in the runner.

use super::Check;

/// Descriptors a running job with a connected terminal holds in the
/// runner: Workhorse's socket, the PTY master, the step's output pipes,
/// the trace upload's connection, the recording file.
pub const FDS_PER_TERMINAL_JOB: u64 = 6;

/// The runner's own descriptors besides its jobs: listeners, log, the
/// coordinator's and Prometheus' connections, a few pending handshakes.
pub const FDS_MARGIN: u64 = 64;

/// `nofile` is (soft, hard) as this process has it; `None` when unknown.
pub fn open_files(concurrent: usize, nofile: Option<(u64, u64)>) -> Check {
    const NAME: &str = "open_files";
    let concurrent = concurrent.max(1) as u64;
    let need = concurrent
        .saturating_mul(FDS_PER_TERMINAL_JOB)
        .saturating_add(FDS_MARGIN);
    let sum = format!(
        "concurrent = {concurrent} needs about {concurrent} x {FDS_PER_TERMINAL_JOB} + \
         {FDS_MARGIN} = {need} open files"
    );
    let Some((soft, hard)) = nofile else {
        return Check::warn(
            NAME,
            format!("{sum}; the open-files limit could not be read"),
            "check `ulimit -Hn` where the runner runs (systemd: LimitNOFILE=)",
        );
    };
    if hard == libc::RLIM_INFINITY {
        return Check::pass(NAME, format!("{sum}; the hard limit is unlimited"));
    }
    let raised = if soft < hard {
        format!("the runner raises its soft limit {soft} to the hard limit {hard}")
    } else {
        format!("the limit is {hard}")
    };
    if need > hard {
        Check::warn(
            NAME,
            format!(
                "{sum} but {raised} (as this shell has them; a systemd unit's LimitNOFILE= \
                 sets the runner's): terminals beyond that fail with `Too many open files`"
            ),
            format!(
                "raise the hard limit to at least {need} (systemd: LimitNOFILE={need}; else \
                 /etc/security/limits.conf), or lower concurrent"
            ),
        )
    } else {
        Check::pass(
            NAME,
            format!("{sum}; {raised} (as this shell has them; systemd: LimitNOFILE=)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn enough_descriptors_pass() {
        let c = open_files(300, Some((1024, 524_288)));
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(
            c.detail.starts_with(
                "concurrent = 300 needs about 300 x 6 + 64 = 1864 open files; the runner raises \
                 its soft limit 1024 to the hard limit 524288"
            ),
            "{c:?}"
        );
        let c = open_files(100, Some((4096, 4096)));
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.detail.contains("the limit is 4096"), "{c:?}");
        let c = open_files(1_000_000, Some((1024, libc::RLIM_INFINITY)));
        assert_eq!(c.status, Status::Pass, "{c:?}");
    }

    /// The soft limit does not count (the runner raises it); the hard one does.
    #[test]
    fn too_few_descriptors_warn() {
        let c = open_files(300, Some((1024, 1024)));
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.contains("Too many open files"), "{c:?}");
        assert_eq!(
            c.hint.as_deref(),
            Some(
                "raise the hard limit to at least 1864 (systemd: LimitNOFILE=1864; else \
                 /etc/security/limits.conf), or lower concurrent"
            )
        );
        // Right at the edge: 160 x 6 + 64 = 1024 fits, 161 does not.
        assert_eq!(open_files(160, Some((1024, 1024))).status, Status::Pass);
        assert_eq!(open_files(161, Some((1024, 1024))).status, Status::Warn);
        assert_eq!(open_files(1, None).status, Status::Warn);
    }
}
