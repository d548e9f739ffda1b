//! The three runners, the tokens written into their logs, and when the
//! rotated runner's logs were rotated.

use crate::loggen::{DAY_MS, HOUR_MS};

pub(super) const MIN_MS: i64 = 60_000;
pub(super) const SEC_MS: i64 = 1000;

/// One of the three runners.
#[derive(Debug, Clone, Copy)]
pub struct RunnerSpec {
    /// The file name up to its first dot (the report's fallback name).
    pub stem: &'static str,
    /// Its `runner_name` (on the lines of a job).
    pub name: &'static str,
    /// Its local time's offset from UTC, in minutes.
    pub offset_min: i32,
    /// Upstream's short runner id (`runner` field).
    pub id: &'static str,
}

pub const RUNNERS: [RunnerSpec; 3] = [
    RunnerSpec {
        stem: "runner-a",
        name: "ci-alpha-01",
        offset_min: 0,
        id: "xA1b2C3d",
    },
    RunnerSpec {
        stem: "runner-b",
        name: "ci-bravo-02",
        offset_min: 60,
        id: "Qz9yX8wV",
    },
    RunnerSpec {
        stem: "runner-c",
        name: "ci-charlie-03",
        offset_min: 0,
        id: "mN4oP5qR",
    },
];

/// The tokens written into the logs, which a report must never show.
pub const SECRETS: [&str; 2] = ["glrt-SECRETonlylettersqwerty", "glrt-SECRET2url9x8y7z"];

/// runner-c's rotation times (logrotate at 06:25): oldest first.
pub(super) fn rotation_cuts(prev_from: i64, from: i64, nd: i64) -> [i64; 3] {
    let at = 6 * HOUR_MS + 25 * MIN_MS;
    [
        prev_from + (nd / 2) * DAY_MS + at,
        from + DAY_MS + at,
        from + (nd - 2) * DAY_MS + at,
    ]
}
