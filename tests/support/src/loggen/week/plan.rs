//! Where and when the week's records go: the hand-placed edge cases, then
//! each day's random records.

use termgate::metrics::{close_reason, rejection_reason};

use super::records::{Gen, JobEnd, P};
use super::runners::{rotation_cuts, MIN_MS, SEC_MS};
use crate::loggen::{runner_time, DAY_MS, HOUR_MS};

impl Gen {
    /// The hand-placed records (before the random ones, so they keep their
    /// exact times).
    pub(super) fn designed(&mut self, nd: i64) {
        let (p, f, to) = (self.prev_from, self.from, self.to);
        // Boundaries.
        self.problem(0, f, P::Forbidden);
        self.problem(0, f - 1, P::Forbidden);
        self.problem(0, to, P::Failed502);
        self.problem(0, to - 1, P::Failed502);
        // 23:30 UTC, written 00:30+01:00 the next day.
        self.problem(1, f + 2 * DAY_MS + 23 * HOUR_MS + 30 * MIN_MS, P::Forbidden);
        // Outside both periods.
        self.problem(0, p - 3 * HOUR_MS, P::ClientError);
        self.problem(2, p - DAY_MS, P::Forbidden);
        self.problem(1, to + HOUR_MS, P::Failed502);
        self.user_session(
            2,
            to + 2 * HOUR_MS,
            to + 2 * HOUR_MS + 5 * MIN_MS,
            close_reason::CLIENT_LEFT,
        );
        self.job(2, to + 3 * HOUR_MS, 90 * SEC_MS, JobEnd::Success);
        // Lifecycle: every runner's logs begin with a start, two days
        // before the previous period.
        for r in 0..3 {
            self.start(r, p - 2 * DAY_MS + 2 * HOUR_MS + r as i64 * 10 * MIN_MS);
        }
        // runner-a: a clean restart in the previous period; a crash (fatal,
        // no stop) then a start in this one; a clean restart later.
        self.stop(0, p + 3 * DAY_MS + 2 * HOUR_MS);
        self.start(0, p + 3 * DAY_MS + 2 * HOUR_MS + 2 * MIN_MS);
        self.problem(0, f + DAY_MS + 2 * HOUR_MS + 10 * MIN_MS, P::Fatal);
        self.start(0, f + DAY_MS + 2 * HOUR_MS + 15 * MIN_MS);
        self.stop(0, f + 4 * DAY_MS + 2 * HOUR_MS);
        self.start(0, f + 4 * DAY_MS + 2 * HOUR_MS + MIN_MS);
        // runner-b: an unclean start in the previous period, a clean
        // restart in this one.
        self.start(1, p + 5 * DAY_MS + 2 * HOUR_MS + 30 * MIN_MS);
        self.stop(1, f + 2 * DAY_MS + 2 * HOUR_MS);
        self.start(1, f + 2 * DAY_MS + 2 * HOUR_MS + 3 * MIN_MS);
        // runner-c: a clean restart early in the previous period (its
        // oldest file), an unclean start near the end of this one (the run
        // it ends began three files earlier).
        self.stop(2, p + DAY_MS + 2 * HOUR_MS);
        self.start(2, p + DAY_MS + 2 * HOUR_MS + MIN_MS);
        self.start(2, f + (nd - 2) * DAY_MS + 2 * HOUR_MS + 45 * MIN_MS);
        // Three sessions open across the period's start on runner-b: its
        // peak in the period is 3 at `from`.
        for i in 0..3 {
            self.user_session(
                1,
                f - (30 - 10 * i) * MIN_MS,
                f + (15 + 10 * i) * MIN_MS,
                close_reason::JOB_FINISHED,
            );
        }
        // A burst on day 3 of the period, 21:00 UTC: four sessions on
        // runner-a, two on runner-c, one on runner-b, overlapping.
        let burst = f + 2 * DAY_MS + 21 * HOUR_MS;
        for i in 0..4 {
            self.user_session(
                0,
                burst + 10 * SEC_MS + i * 5 * MIN_MS,
                burst + (50 + 3 * i) * MIN_MS,
                close_reason::CLIENT_LEFT,
            );
        }
        for i in 0..2 {
            self.user_session(
                2,
                burst + (20 + 5 * i) * MIN_MS,
                burst + (45 + 2 * i) * MIN_MS,
                close_reason::IDLE_TIMEOUT,
            );
        }
        self.user_session(
            1,
            burst + 30 * MIN_MS,
            burst + 52 * MIN_MS,
            close_reason::CLIENT_LEFT,
        );
        self.over_limit(0, burst + 40 * MIN_MS, 5);
        self.over_limit(2, p + 2 * DAY_MS + 12 * HOUR_MS, 2);
        // runner-c: sessions across its log rotations (06:25).
        for cut in rotation_cuts(p, f, nd) {
            self.user_session(
                2,
                cut - 10 * MIN_MS,
                cut + 20 * MIN_MS,
                close_reason::SESSION_TIMEOUT,
            );
        }
        // An operator's shell on runner-c, after the day's sessions.
        let d4 = f + 4 * DAY_MS;
        self.shell(
            2,
            d4 + 20 * HOUR_MS + 30 * MIN_MS,
            d4 + 20 * HOUR_MS + 50 * MIN_MS,
            "carol",
        );
        // Tokens: in a message, and in a field of the last client error.
        self.problem(0, f + DAY_MS + 10 * HOUR_MS, P::SecretMsg);
        self.problem(0, to - 30 * MIN_MS, P::ClientErrorSecret);
        // A failed job logged without failure_reason.
        self.job(
            1,
            f + DAY_MS + 15 * HOUR_MS,
            3600 * SEC_MS,
            JobEnd::TimeoutNoReason,
        );
        // New in this period.
        self.problem(1, f + 3 * DAY_MS + 9 * HOUR_MS, P::Unhealthy);
        // Lines of no known format (one blank line, not counted as such).
        self.garbage(
            0,
            f + 3 * DAY_MS + 12 * HOUR_MS,
            b"\0\0\0\0\0\0\0\0\0\0\0\0",
            true,
        );
        let no_level = format!(
            r#"{{"msg":"Checking for jobs...no content","time":"{}"}}"#,
            runner_time(f + 3 * DAY_MS + 12 * HOUR_MS + MIN_MS, 0)
        );
        self.garbage(
            0,
            f + 3 * DAY_MS + 12 * HOUR_MS + MIN_MS,
            no_level.as_bytes(),
            true,
        );
        self.garbage(
            2,
            p + DAY_MS + 5 * HOUR_MS,
            b"\xff\xfe binary \xc3\x28 junk",
            true,
        );
        self.garbage(1, f + HOUR_MS, b"", false);
    }

    /// One day `k` (0 = the previous period's first) of random records.
    pub(super) fn day(&mut self, k: i64, nd: i64) {
        let day0 = self.prev_from + k * DAY_MS;
        let current = k >= nd;
        // Per runner, how often each problem happens (up to n − 1 a day).
        const WEIGHTS: [[u64; 4]; 3] = [[6, 2, 2, 2], [2, 6, 1, 2], [1, 2, 3, 5]];
        for (r, weights) in WEIGHTS.iter().enumerate() {
            for _ in 0..30 + self.rng.below(30) {
                let t = self.rng.range(day0 + SEC_MS, day0 + DAY_MS - SEC_MS);
                self.noise(r, t);
            }
            for _ in 0..2 + self.rng.below(4) {
                self.random_job(r, day0);
            }
            for (i, p) in [P::Forbidden, P::Failed502, P::ClientError, P::Container]
                .into_iter()
                .enumerate()
            {
                for _ in 0..self.rng.below(weights[i]) {
                    let t = self.rng.range(day0 + HOUR_MS, day0 + 23 * HOUR_MS);
                    self.problem(r, t, p);
                }
            }
            if !current {
                for _ in 0..1 + self.rng.below(2) {
                    let t = self.rng.range(day0 + HOUR_MS, day0 + 23 * HOUR_MS);
                    self.problem(r, t, P::HandshakeFailed);
                }
            } else if r == 1 && self.rng.chance(50) {
                let t = self.rng.range(day0 + HOUR_MS, day0 + 23 * HOUR_MS);
                self.problem(r, t, P::Unhealthy);
            }
            // Sessions one after the other, 07:00–20:00.
            let mut cursor = day0 + 7 * HOUR_MS;
            for _ in 0..self.rng.below(5) {
                let c = cursor + self.rng.range(60 * SEC_MS, 3600 * SEC_MS);
                let d = c + self.rng.range(30 * SEC_MS, 1500 * SEC_MS);
                if d > day0 + 20 * HOUR_MS {
                    break;
                }
                let reason = *self.rng.pick(&[
                    close_reason::CLIENT_LEFT,
                    close_reason::CLIENT_LEFT,
                    close_reason::CLIENT_LEFT,
                    close_reason::JOB_FINISHED,
                    close_reason::TERMINAL_EXITED,
                    close_reason::IDLE_TIMEOUT,
                ]);
                let s = self.user_session(r, c, d, reason);
                cursor = s.d + SEC_MS;
            }
            for _ in 0..self.rng.below(3) {
                let t = self.rng.range(day0 + HOUR_MS, day0 + 23 * HOUR_MS);
                let reason = *self.rng.pick(&[
                    rejection_reason::UNAUTHORIZED,
                    rejection_reason::NOT_FOUND,
                    rejection_reason::LOCKED,
                ]);
                self.reject(r, t, reason);
            }
            if self.rng.chance(40) {
                let t = self.rng.range(day0 + 8 * HOUR_MS, day0 + 19 * HOUR_MS);
                let (mode, op) = *self.rng.pick(&[("observe", "alice"), ("join", "bob")]);
                let len = self.rng.range(MIN_MS, 30 * MIN_MS);
                self.attach(r, t, len, mode, op);
            }
        }
    }
}
