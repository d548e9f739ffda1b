//! A period `[from, to)` and the one before it, from three runners, with
//! the exact figures the report must show.
//!
//! The records are made first (each with what it means: a session's
//! connect, a job's result, a start…, and for warnings and above the
//! fingerprint the report must group it under), then written as the runner
//! writes them; [`Expected`] is computed from the records' meaning, with
//! simple definitions (a session is active from its connect's second to its
//! disconnect's; an unclean shutdown is a start with no clean stop since
//! the start before it), never with the console's code.
//!
//! The three runners ([`RUNNERS`]): `runner-a.log` (UTC), `runner-b.log`
//! (local time, `+01:00`: its days are still UTC days in the report),
//! `runner-c.log`, `.log.1`, `.log.2.gz`, `.log.3.gz` (rotated daily at
//! 06:25 with logrotate's `compress` + `delaycompress`, time-split).
//!
//! Ambiguity is avoided by construction: records of interest have distinct
//! milliseconds, session connects and disconnects distinct seconds
//! fleet-wide, the random records of a day stay an hour away from
//! midnight, a runner's random sessions never overlap each other.
//! Deliberate edge cases: a record exactly at `from` (current) and at
//! `from − 1 ms` (previous), exactly at `to` (outside) and at `to − 1 ms`
//! (current), an error at 23:30 UTC written as 00:30 `+01:00` the next day,
//! three sessions open across `from` (the carried-in peak), a session across
//! two files of the rotated runner, an over-limit rejection refusing 5 at
//! once, a fingerprint only in the previous period (gone) and one only in
//! this one (new), ids that vary (`container 346119271220 not found` and
//! `container d20f8b84087c not found`: one fingerprint), a token in a
//! message and in a field, lines of no known format, records before the
//! previous period and after the period.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use termgate::logschema::{self as ls, event, msg, Level};
use termgate::metrics::{close_reason, rejection_reason};
use termgate::operator::client_role;

use super::{date, json_line, report_time, runner_time, write_file, Rng, DAY_MS, HOUR_MS, V};

const MIN_MS: i64 = 60_000;
const SEC_MS: i64 = 1000;

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

/// What to generate.
#[derive(Debug, Clone)]
pub struct WeekOptions {
    /// The period's start, Unix seconds, a UTC midnight.
    pub from: i64,
    /// Its end (excluded), a UTC midnight at least 4 days after `from`.
    pub to: i64,
    /// Write `runner_name` on the job lines (the report then names the
    /// runners by it); without it the report names them by file.
    pub runner_names: bool,
    pub seed: u64,
}

impl WeekOptions {
    pub fn new(from: i64, to: i64) -> WeekOptions {
        WeekOptions {
            from,
            to,
            runner_names: true,
            seed: 0x7e55_9a7e_2026_1130,
        }
    }
}

/// A count in the period (`[0]`) and in the previous one (`[1]`).
pub type PairCounts = [u64; 2];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub warnings: u64,
    pub errors: u64,
    pub sessions: u64,
    pub jobs: u64,
    pub job_failures: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    pub files: u64,
    pub gzip_files: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
    pub lines: u64,
    pub unparsed_lines: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub errors: PairCounts,
    pub warnings: PairCounts,
    pub sessions: PairCounts,
    pub rejections: PairCounts,
    pub jobs: PairCounts,
    pub job_failures: PairCounts,
    pub starts: PairCounts,
    pub unclean_shutdowns: PairCounts,
}

/// A fingerprint as the report must show it (in `top` when seen in the
/// period, in `gone` when only in the previous one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fp {
    pub level: String,
    pub count: u64,
    pub previous_count: u64,
    /// `new`, `gone`, `up`, `down`, `same`.
    pub trend: String,
    /// In the period (in the previous period for a gone one).
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Runner stems (`runner-a`) with occurrences in that period.
    pub runners: Vec<String>,
    /// The period's occurrences per day.
    pub per_day: Vec<u64>,
    /// The raw line of the latest occurrence (in that period).
    pub example_line: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunnerSessions {
    pub started: u64,
    /// Most sessions active at once in the period and the first second.
    pub peak: Option<(u64, String)>,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub rejections: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sessions {
    pub started: PairCounts,
    /// Sessions that ended in the period.
    pub ended: u64,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub peak: Option<(u64, String)>,
    pub closes: BTreeMap<String, PairCounts>,
    pub rejections: BTreeMap<String, PairCounts>,
    pub attaches: BTreeMap<String, PairCounts>,
    pub operators: BTreeMap<String, PairCounts>,
    /// By runner stem.
    pub runners: BTreeMap<String, RunnerSessions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Jobs {
    /// `success`, `failed`, `system_failure`.
    pub by_result: BTreeMap<String, PairCounts>,
    pub failure_reasons: BTreeMap<String, PairCounts>,
    /// By runner stem: `[succeeded, failed, system_failures]` in the period.
    pub runners: BTreeMap<String, [u64; 3]>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    pub starts: u64,
    pub unclean_shutdowns: u64,
    pub fatal: u64,
    /// The period's starts: `(at, "start" | "start_after_unclean_stop")`.
    pub events: Vec<(String, String)>,
}

/// Every figure of the report for the generated logs. Runners are keyed by
/// their file stem (`runner-a`); [`Expected::names`] says what the report
/// calls them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Expected {
    /// RFC 3339, UTC.
    pub from: String,
    pub to: String,
    pub previous_from: String,
    /// `(stem, runner_name)` of each runner.
    pub runners: Vec<(String, String)>,
    /// Whether the logs carry `runner_name`.
    pub runner_names: bool,
    /// Every file written.
    pub files: Vec<PathBuf>,
    pub gzip_files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub unparsed_lines: u64,
    /// Records of interest (warnings and above, session, job, start and
    /// stop lines) before the previous period or at/after `to`.
    pub outside_records: u64,
    pub sources: BTreeMap<String, Source>,
    /// The period's UTC days.
    pub days: Vec<String>,
    pub day_totals: Vec<Counts>,
    pub day_runners: BTreeMap<String, Vec<Counts>>,
    pub totals: Totals,
    /// Every fingerprint of either period.
    pub fingerprints: BTreeMap<String, Fp>,
    pub sessions: Sessions,
    pub jobs: Jobs,
    pub lifecycle: BTreeMap<String, Lifecycle>,
    /// Tokens written into the logs.
    pub secrets: Vec<String>,
}

impl Expected {
    /// What the report calls each runner (stem → name) when they are named
    /// by their logs (`runner_name`, else the file name).
    pub fn names(&self) -> BTreeMap<String, String> {
        self.runners
            .iter()
            .map(|(stem, name)| {
                let shown = if self.runner_names { name } else { stem };
                (stem.clone(), shown.clone())
            })
            .collect()
    }
}

/// What a record means, for [`Expected`].
#[derive(Debug, Clone)]
enum Kind {
    /// Info and debug lines of no figure.
    Noise,
    /// A warning or above and nothing else.
    Problem,
    Connect,
    Disconnect {
        reason: String,
        tenths: u64,
    },
    Reject {
        reason: String,
        refused: u64,
    },
    Attach {
        mode: String,
        operator: String,
    },
    /// `result`: 0 success, 1 failed, 2 system failure; `reason`: the
    /// failure reason the report must count it under.
    Job {
        result: usize,
        reason: Option<String>,
    },
    Start,
    CleanStop,
    /// A line of no known format (or blank, `unparsed = false`).
    Garbage {
        bytes: Vec<u8>,
        unparsed: bool,
    },
}

#[derive(Debug, Clone)]
struct Rec {
    /// Unix milliseconds.
    t: i64,
    level: Level,
    msg: String,
    fields: BTreeMap<&'static str, V>,
    kind: Kind,
    /// For warnings and above: the fingerprint the report must show.
    fp: Option<String>,
}

/// A terminal session: active from `c`'s second to `d`'s.
#[derive(Debug, Clone, Copy)]
struct Sess {
    runner: usize,
    c: i64,
    d: i64,
}

/// Warning-and-above records that are not job results or rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum P {
    Forbidden,
    Failed502,
    ClientError,
    ClientErrorSecret,
    Container,
    HandshakeFailed,
    Unhealthy,
    SecretMsg,
    Fatal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobEnd {
    Success,
    ExitCode,
    Timeout,
    /// A timeout logged without `failure_reason`.
    TimeoutNoReason,
    System,
}

struct Gen {
    rng: Rng,
    prev_from: i64,
    from: i64,
    to: i64,
    runner_names: bool,
    recs: [Vec<Rec>; 3],
    sessions: Vec<Sess>,
    used_ms: HashSet<i64>,
    used_s: HashSet<i64>,
    job: u64,
}

impl Gen {
    /// `t`, or the next free millisecond after it.
    fn claim(&mut self, mut t: i64) -> i64 {
        while !self.used_ms.insert(t) {
            t += 1;
        }
        t
    }

    /// `t` moved by whole seconds to a second no session event has.
    fn claim_sec(&mut self, mut t: i64) -> i64 {
        while !self.used_s.insert(t.div_euclid(SEC_MS)) {
            t += SEC_MS;
        }
        self.claim(t)
    }

    fn push(
        &mut self,
        r: usize,
        t: i64,
        level: Level,
        msg: impl Into<String>,
        fields: Vec<(&'static str, V)>,
        kind: Kind,
        fp: Option<String>,
    ) {
        self.recs[r].push(Rec {
            t,
            level,
            msg: msg.into(),
            fields: fields.into_iter().collect(),
            kind,
            fp,
        });
    }

    /// A warning or above with its own message as fingerprint.
    fn plain_problem(
        &mut self,
        r: usize,
        t: i64,
        level: Level,
        m: &str,
        fields: Vec<(&'static str, V)>,
    ) {
        self.push(r, t, level, m, fields, Kind::Problem, Some(m.to_owned()));
    }

    /// The fields of a job's span.
    fn span(&self, r: usize, job: u64) -> Vec<(&'static str, V)> {
        let mut f = vec![
            (ls::JOB, V::U(job)),
            (ls::PROJECT, V::U(27_000_000 + job % 977)),
            (ls::RUNNER, V::from(RUNNERS[r].id)),
        ];
        if self.runner_names {
            f.push((ls::RUNNER_NAME, V::from(RUNNERS[r].name)));
        }
        f
    }

    fn next_job(&mut self) -> u64 {
        self.job += 1 + self.rng.below(7);
        self.job
    }

    fn peer(&mut self) -> String {
        format!(
            "10.20.{}.{}:{}",
            self.rng.below(250),
            1 + self.rng.below(250),
            32_768 + self.rng.below(28_000)
        )
    }

    /// Info and debug lines of no figure.
    fn noise(&mut self, r: usize, t: i64) {
        let job = 4_500_000_000 + self.rng.below(90_000);
        let span = self.span(r, job);
        let (level, m, fields) = match self.rng.below(6) {
            0 | 1 => (
                Level::Debug,
                msg::CHECKING_FOR_JOBS_NO_CONTENT,
                vec![(ls::RUNNER, V::from(RUNNERS[r].id))],
            ),
            2 => (Level::Debug, msg::APPENDING_TRACE_OK, span),
            3 => (Level::Debug, msg::SUBMITTING_JOB_OK, span),
            4 => (Level::Info, msg::UPDATING_JOB_OK, span),
            _ => (
                Level::Info,
                msg::CHECKING_FOR_JOBS_RECEIVED,
                vec![
                    (ls::JOB, V::U(job)),
                    (
                        ls::REPO_URL,
                        V::S(format!(
                            "https://gitlab.example.com/group/app-{}.git",
                            job % 13
                        )),
                    ),
                    (ls::RUNNER, V::from(RUNNERS[r].id)),
                ],
            ),
        };
        self.push(r, t, level, m, fields, Kind::Noise, None);
    }

    fn problem(&mut self, r: usize, t: i64, p: P) {
        let t = self.claim(t);
        let id = RUNNERS[r].id;
        match p {
            P::Forbidden => {
                let cid = self.rng.hex(26);
                self.plain_problem(
                    r,
                    t,
                    Level::Error,
                    msg::CHECKING_FOR_JOBS_FORBIDDEN,
                    vec![
                        (ls::CORRELATION_ID, V::S(cid)),
                        (ls::RUNNER, V::from(id)),
                        (ls::STATUS, V::from("403 Forbidden")),
                    ],
                );
            }
            P::Failed502 => {
                let cid = self.rng.hex(26);
                self.plain_problem(
                    r,
                    t,
                    Level::Warning,
                    msg::CHECKING_FOR_JOBS_FAILED,
                    vec![
                        (ls::CORRELATION_ID, V::S(cid)),
                        (ls::RUNNER, V::from(id)),
                        (ls::STATUS, V::from("502 Bad Gateway")),
                    ],
                );
            }
            P::ClientError | P::ClientErrorSecret => {
                let url = if p == P::ClientErrorSecret {
                    format!(
                        "https://gitlab-ci-token:{}@gitlab.example.com/api/v4/jobs/request",
                        SECRETS[1]
                    )
                } else {
                    "https://gitlab.example.com/api/v4/jobs/request".to_owned()
                };
                self.plain_problem(
                    r,
                    t,
                    Level::Error,
                    msg::CHECKING_FOR_JOBS_CLIENT_ERROR,
                    vec![
                        (
                            ls::ERROR,
                            V::S(format!(
                                "error sending request for url ({url}): operation timed out"
                            )),
                        ),
                        (ls::RUNNER, V::from(id)),
                    ],
                );
            }
            P::Container => {
                // A container id: all digits or hex letters and digits;
                // either way one placeholder.
                let cid = if self.rng.chance(50) {
                    format!("{}", 100_000_000_000 + self.rng.below(899_999_999_999))
                } else {
                    let mut h = format!("d{}", self.rng.hex(11));
                    if !h.bytes().any(|c| c.is_ascii_digit()) {
                        h.replace_range(11..12, "0");
                    }
                    h
                };
                let job = self.next_job();
                let m = msg::docker_step_failed("prepare", &format!("container {cid} not found"));
                let span = self.span(r, job);
                self.push(
                    r,
                    t,
                    Level::Error,
                    m,
                    span,
                    Kind::Problem,
                    Some("Docker step prepare failed: container N not found".to_owned()),
                );
            }
            P::HandshakeFailed => {
                let peer = self.peer();
                self.plain_problem(
                    r,
                    t,
                    Level::Error,
                    msg::SESSION_TLS_HANDSHAKE_FAILED,
                    vec![
                        (
                            ls::ERROR,
                            V::from("received corrupt message of type InvalidContentType"),
                        ),
                        (ls::PEER, V::S(peer)),
                    ],
                );
            }
            P::Unhealthy => {
                let m = msg::runner_unhealthy("https://gitlab.example.com/", id, "1h0m0s");
                self.push(
                    r,
                    t,
                    Level::Error,
                    m,
                    vec![(ls::RUNNER, V::from(id))],
                    Kind::Problem,
                    Some(
                        "Runner \"…\" is unhealthy and will be disabled for NhNmNs seconds!"
                            .to_owned(),
                    ),
                );
            }
            P::SecretMsg => {
                let m = format!(
                    "{}registry auth with {} refused",
                    msg::DOCKER_STALE_SKIPPED_PREFIX,
                    SECRETS[0]
                );
                self.push(
                    r,
                    t,
                    Level::Warning,
                    m,
                    vec![],
                    Kind::Problem,
                    // The token's value masked, its prefix kept.
                    Some(format!(
                        "{}registry auth with glrt-[MASKED] refused",
                        msg::DOCKER_STALE_SKIPPED_PREFIX
                    )),
                );
            }
            P::Fatal => self.plain_problem(
                r,
                t,
                Level::Fatal,
                msg::COMMAND_FAILED,
                vec![(ls::ERROR, V::from("Too many open files (os error 24)"))],
            ),
        }
    }

    /// A job: received at `t`, trace lines, its result `dur` later.
    fn job(&mut self, r: usize, t: i64, dur: i64, end: JobEnd) {
        let job = self.next_job();
        let span = self.span(r, job);
        let mut recv = vec![
            (ls::JOB, V::U(job)),
            (
                ls::REPO_URL,
                V::S(format!(
                    "https://gitlab.example.com/group/app-{}.git",
                    job % 13
                )),
            ),
            (ls::RUNNER, V::from(RUNNERS[r].id)),
        ];
        if self.runner_names {
            recv.push((ls::RUNNER_NAME, V::from(RUNNERS[r].name)));
        }
        self.push(
            r,
            t,
            Level::Info,
            msg::CHECKING_FOR_JOBS_RECEIVED,
            recv,
            Kind::Noise,
            None,
        );
        for i in 1..4 {
            self.push(
                r,
                t + dur * i / 4,
                Level::Debug,
                msg::APPENDING_TRACE_OK,
                span.clone(),
                Kind::Noise,
                None,
            );
        }
        let te = self.claim(t + dur);
        let dur_s = V::F(dur as f64 / 1000.0 + 0.123);
        let mut f = span;
        f.push((ls::DURATION_S, dur_s));
        let (level, m, kind, fp) = match end {
            JobEnd::Success => {
                f.push((ls::JOB_STATUS, V::from("success")));
                (
                    Level::Info,
                    msg::JOB_SUCCEEDED.to_owned(),
                    Kind::Job {
                        result: 0,
                        reason: None,
                    },
                    None,
                )
            }
            JobEnd::ExitCode => {
                let code = *self.rng.pick(&[1u64, 1, 1, 2, 137]);
                f.push((ls::EXIT_CODE, V::U(code)));
                f.push((ls::FAILURE_REASON, V::from("script_failure")));
                (
                    Level::Warning,
                    format!("{}exit code {code}", msg::JOB_FAILED_PREFIX),
                    Kind::Job {
                        result: 1,
                        reason: Some("script_failure".into()),
                    },
                    Some("Job failed: exit code N".to_owned()),
                )
            }
            JobEnd::Timeout | JobEnd::TimeoutNoReason => {
                let reason = if end == JobEnd::Timeout {
                    f.push((ls::FAILURE_REASON, V::from("job_execution_timeout")));
                    "job_execution_timeout"
                } else {
                    // No failure_reason: the report counts it under the
                    // fingerprint of what follows `Job failed: `.
                    "execution took longer than NhNmNs seconds"
                };
                (
                    Level::Warning,
                    format!(
                        "{}execution took longer than 1h0m0s seconds",
                        msg::JOB_FAILED_PREFIX
                    ),
                    Kind::Job {
                        result: 1,
                        reason: Some(reason.into()),
                    },
                    Some("Job failed: execution took longer than NhNmNs seconds".to_owned()),
                )
            }
            JobEnd::System => {
                f.push((ls::FAILURE_REASON, V::from("runner_system_failure")));
                let id = self.rng.hex(64);
                (
                    Level::Error,
                    format!(
                        "{}Error response from daemon: No such container: {id}",
                        msg::JOB_FAILED_SYSTEM_PREFIX
                    ),
                    Kind::Job {
                        result: 2,
                        reason: Some("runner_system_failure".into()),
                    },
                    Some(
                        "Job failed (system failure): Error response from daemon: No such container: N"
                            .to_owned(),
                    ),
                )
            }
        };
        self.push(r, te, level, m, f, kind, fp);
    }

    fn random_job(&mut self, r: usize, day0: i64) {
        let t = self.rng.range(day0 + 6 * HOUR_MS, day0 + 20 * HOUR_MS);
        let dur = self.rng.range(60 * SEC_MS, 1800 * SEC_MS);
        let roll = self.rng.below(100);
        let end = match roll {
            0..=69 => JobEnd::Success,
            70..=84 => JobEnd::ExitCode,
            85..=91 => JobEnd::Timeout,
            _ => JobEnd::System,
        };
        self.job(r, t, dur, end);
    }

    /// A terminal session from about `c` to about `d` (moved to free
    /// seconds), closed for `reason`; `role` interactive or shell.
    fn session(&mut self, r: usize, c: i64, d: i64, reason: &str, role: &str, job: u64) -> Sess {
        let c = self.claim_sec(c.div_euclid(SEC_MS) * SEC_MS + 250);
        let d = self.claim_sec(d.div_euclid(SEC_MS) * SEC_MS + 650);
        // Whole tenths: the report's percentiles are to 0.1 s.
        let tenths = ((d - c) / 100) as u64;
        let peer = self.peer();
        self.push(
            r,
            c,
            Level::Info,
            msg::TERMINAL_CONNECTED,
            vec![
                (ls::EVENT, V::from(event::TERMINAL_CONNECTED)),
                (ls::JOB, V::U(job)),
                (ls::PEER, V::S(peer.clone())),
                (ls::PROTOCOL, V::from("terminal.gitlab.com")),
                (ls::ROLE, V::from(role)),
            ],
            Kind::Connect,
            None,
        );
        let bytes_in = self.rng.below(20_000);
        let bytes_out = self.rng.below(2_000_000);
        self.push(
            r,
            d,
            Level::Info,
            msg::TERMINAL_DISCONNECTED,
            vec![
                (ls::BYTES_IN, V::U(bytes_in)),
                (ls::BYTES_OUT, V::U(bytes_out)),
                (ls::DURATION_S, V::F(tenths as f64 / 10.0)),
                (ls::EVENT, V::from(event::TERMINAL_DISCONNECTED)),
                (ls::JOB, V::U(job)),
                (ls::PEER, V::S(peer)),
                (ls::REASON, V::from(reason)),
                (ls::ROLE, V::from(role)),
            ],
            Kind::Disconnect {
                reason: reason.to_owned(),
                tenths,
            },
            None,
        );
        if role == client_role::INTERACTIVE {
            let t = self.claim(d + 1);
            self.plain_problem(
                r,
                t,
                Level::Warning,
                msg::CLOSED_ACTIVE,
                vec![(ls::JOB, V::U(job))],
            );
        }
        let s = Sess { runner: r, c, d };
        self.sessions.push(s);
        s
    }

    fn user_session(&mut self, r: usize, c: i64, d: i64, reason: &str) -> Sess {
        let job = self.next_job();
        self.session(r, c, d, reason, client_role::INTERACTIVE, job)
    }

    /// A refused connection and the upstream line(s) before it.
    fn reject(&mut self, r: usize, t: i64, reason: &'static str) {
        let t = self.claim(t);
        let job = self.next_job();
        let uri = format!("/session/{}/exec", self.rng.hex(32));
        let status = match reason {
            rejection_reason::UNAUTHORIZED => {
                self.plain_problem(
                    r,
                    t,
                    Level::Error,
                    msg::AUTHORIZATION_NOT_VALID,
                    vec![(ls::JOB, V::U(job))],
                );
                401
            }
            rejection_reason::NOT_FOUND => {
                self.plain_problem(
                    r,
                    t,
                    Level::Warning,
                    msg::SESSION_NOT_FOUND,
                    vec![(ls::JOB, V::U(job)), (ls::URI, V::S(uri.clone()))],
                );
                let t2 = self.claim(t + 1);
                self.plain_problem(
                    r,
                    t2,
                    Level::Error,
                    msg::MUX_NOT_FOUND,
                    vec![(ls::JOB, V::U(job)), (ls::URI, V::S(uri))],
                );
                404
            }
            _ => {
                self.plain_problem(
                    r,
                    t,
                    Level::Warning,
                    msg::ALREADY_CONNECTED,
                    vec![(ls::JOB, V::U(job))],
                );
                409
            }
        };
        let t3 = self.claim(t + 2);
        let peer = self.peer();
        self.push(
            r,
            t3,
            Level::Info,
            msg::TERMINAL_REJECTED,
            vec![
                (ls::EVENT, V::from(event::TERMINAL_REJECTED)),
                (ls::JOB, V::U(job)),
                (ls::PEER, V::S(peer)),
                (ls::REASON, V::from(reason)),
                (ls::STATUS, V::U(status)),
            ],
            Kind::Reject {
                reason: reason.to_owned(),
                refused: 1,
            },
            None,
        );
    }

    /// The session server's over-limit warning: `refused` connections.
    fn over_limit(&mut self, r: usize, t: i64, refused: u64) {
        let t = self.claim(t);
        let peer = self.peer();
        self.push(
            r,
            t,
            Level::Warning,
            msg::SESSION_OVER_LIMIT,
            vec![
                (ls::EVENT, V::from(event::TERMINAL_REJECTED)),
                (ls::MAX_PENDING, V::U(64)),
                (ls::PEER, V::S(peer)),
                (ls::REASON, V::from(rejection_reason::OVER_LIMIT)),
                (ls::REFUSED, V::U(refused)),
            ],
            Kind::Reject {
                reason: rejection_reason::OVER_LIMIT.to_owned(),
                refused,
            },
            Some(msg::SESSION_OVER_LIMIT.to_owned()),
        );
    }

    fn operator_line(
        &mut self,
        r: usize,
        t: i64,
        attached: bool,
        mode: &str,
        operator: &str,
        job: u64,
    ) {
        let t = self.claim(t);
        let peer = self.peer();
        let mut f = vec![
            (
                ls::EVENT,
                V::from(if attached {
                    event::OPERATOR_ATTACHED
                } else {
                    event::OPERATOR_DETACHED
                }),
            ),
            (ls::JOB, V::U(job)),
            (ls::MODE, V::from(mode)),
            (ls::OPERATOR, V::from(operator)),
            (ls::PEER, V::S(peer)),
            (ls::PROJECT, V::from("group/app")),
            (
                ls::ROLE,
                V::from(if operator == "carol" {
                    "admin"
                } else {
                    "observer"
                }),
            ),
            (ls::SESSION, V::S(format!("{:032x}", job))),
        ];
        if mode != "observe" {
            f.push((ls::REASON, V::from("INC-4711 stuck deploy")));
        }
        if attached {
            self.push(
                r,
                t,
                Level::Info,
                msg::OPERATOR_ATTACHED,
                f,
                Kind::Attach {
                    mode: mode.to_owned(),
                    operator: operator.to_owned(),
                },
                None,
            );
        } else {
            f.push((ls::CLOSE_REASON, V::from(close_reason::CLIENT_LEFT)));
            self.push(
                r,
                t,
                Level::Info,
                msg::OPERATOR_DETACHED,
                f,
                Kind::Noise,
                None,
            );
        }
    }

    /// An operator watching or joining from `t` for `len`.
    fn attach(&mut self, r: usize, t: i64, len: i64, mode: &str, operator: &str) {
        let job = self.next_job();
        self.operator_line(r, t, true, mode, operator, job);
        self.operator_line(r, t + len, false, mode, operator, job);
    }

    /// An operator's own shell: attached, a terminal (role shell), detached.
    fn shell(&mut self, r: usize, c: i64, d: i64, operator: &str) {
        let job = self.next_job();
        self.operator_line(r, c - 400, true, "shell", operator, job);
        self.session(r, c, d, close_reason::CLIENT_LEFT, client_role::SHELL, job);
        self.operator_line(r, d + 700, false, "shell", operator, job);
    }

    fn start(&mut self, r: usize, t: i64) {
        let t = self.claim(t);
        self.push(
            r,
            t,
            Level::Info,
            format!(
                "{}/etc/termgate/config.toml...",
                msg::STARTING_MULTI_RUNNER_PREFIX
            ),
            vec![(ls::BUILDS, V::U(0)), (ls::MAX_BUILDS, V::U(4))],
            Kind::Start,
            None,
        );
        let after = [
            (
                msg::OPEN_FILES_LIMIT_RAISED,
                vec![(ls::FROM, V::U(1024)), (ls::TO, V::U(524_288))],
            ),
            (
                msg::METRICS_SERVER_LISTENING,
                vec![(ls::ADDRESS, V::from("0.0.0.0:9252"))],
            ),
            (
                msg::SESSION_SERVER_LISTENING,
                vec![
                    (ls::ADDRESS, V::from("0.0.0.0:8093")),
                    (ls::ADVERTISE_ADDRESS, V::from("runner.example.com:8093")),
                ],
            ),
            (msg::SESSION_CERT_REUSED, vec![]),
        ];
        for (i, (m, f)) in after.into_iter().enumerate() {
            self.push(r, t + 5 + i as i64, Level::Info, m, f, Kind::Noise, None);
        }
    }

    /// A graceful stop: the warning, then both clean-stop lines.
    fn stop(&mut self, r: usize, t: i64) {
        let t = self.claim(t);
        self.plain_problem(r, t, Level::Warning, msg::GRACEFUL_SHUTDOWN, vec![]);
        for (i, m) in [msg::ALL_WORKERS_STOPPED, msg::CAN_EXIT_NOW]
            .into_iter()
            .enumerate()
        {
            let ti = self.claim(t + 2000 + i as i64 * 1000);
            self.push(r, ti, Level::Info, m, vec![], Kind::CleanStop, None);
        }
    }

    fn garbage(&mut self, r: usize, t: i64, bytes: &[u8], unparsed: bool) {
        self.push(
            r,
            t,
            Level::Info,
            "",
            vec![],
            Kind::Garbage {
                bytes: bytes.to_vec(),
                unparsed,
            },
            None,
        );
    }

    /// The hand-placed records (before the random ones, so they keep their
    /// exact times).
    fn designed(&mut self, nd: i64) {
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
    fn day(&mut self, k: i64, nd: i64) {
        let day0 = self.prev_from + k * DAY_MS;
        let current = k >= nd;
        // Per runner, how often each problem happens (up to n − 1 a day).
        const WEIGHTS: [[u64; 4]; 3] = [[6, 2, 2, 2], [2, 6, 1, 2], [1, 2, 3, 5]];
        for r in 0..3 {
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
                for _ in 0..self.rng.below(WEIGHTS[r][i]) {
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

/// runner-c's rotation times (logrotate at 06:25): oldest first.
fn rotation_cuts(prev_from: i64, from: i64, nd: i64) -> [i64; 3] {
    let at = 6 * HOUR_MS + 25 * MIN_MS;
    [
        prev_from + (nd / 2) * DAY_MS + at,
        from + DAY_MS + at,
        from + (nd - 2) * DAY_MS + at,
    ]
}

/// Writes the logs of [`RUNNERS`] into `dir` and returns what the report
/// must show for `[opts.from, opts.to)`.
pub fn generate_week(dir: &Path, opts: &WeekOptions) -> Expected {
    assert_eq!(opts.from % 86_400, 0, "from must be a UTC midnight");
    assert_eq!(opts.to % 86_400, 0, "to must be a UTC midnight");
    let nd = (opts.to - opts.from) / 86_400;
    assert!(nd >= 4, "the period must be 4 days or more");
    let (from, to) = (opts.from * 1000, opts.to * 1000);
    let mut g = Gen {
        rng: Rng::new(opts.seed),
        prev_from: from - (to - from),
        from,
        to,
        runner_names: opts.runner_names,
        recs: Default::default(),
        sessions: Vec::new(),
        used_ms: HashSet::new(),
        used_s: HashSet::new(),
        job: 4_519_752_000,
    };
    g.designed(nd);
    for k in 0..2 * nd {
        g.day(k, nd);
    }
    for recs in &mut g.recs {
        recs.sort_by_key(|r| r.t);
    }
    let mut exp = expected(&g, nd);
    write_files(dir, &g, &mut exp);
    exp
}

/// The text of a record (no newline).
fn render(r: usize, rec: &Rec, out: &mut Vec<u8>) {
    if let Kind::Garbage { bytes, .. } = &rec.kind {
        out.extend_from_slice(bytes);
        return;
    }
    let mut s = String::new();
    json_line(
        &mut s,
        rec.level.as_str(),
        &rec.msg,
        &runner_time(rec.t, RUNNERS[r].offset_min),
        &rec.fields,
    );
    out.extend_from_slice(s.as_bytes());
}

fn write_files(dir: &Path, g: &Gen, exp: &mut Expected) {
    let cuts = rotation_cuts(g.prev_from, g.from, (g.to - g.from) / DAY_MS);
    for (r, spec) in RUNNERS.iter().enumerate() {
        // (file name, gzip, records from, records to)
        let parts: Vec<(String, bool, i64, i64)> = if r == 2 {
            vec![
                (format!("{}.log.3.gz", spec.stem), true, i64::MIN, cuts[0]),
                (format!("{}.log.2.gz", spec.stem), true, cuts[0], cuts[1]),
                (format!("{}.log.1", spec.stem), false, cuts[1], cuts[2]),
                (format!("{}.log", spec.stem), false, cuts[2], i64::MAX),
            ]
        } else {
            vec![(format!("{}.log", spec.stem), false, i64::MIN, i64::MAX)]
        };
        let src = exp.sources.entry(spec.stem.to_owned()).or_default();
        for (name, gz, lo, hi) in parts {
            let mut text = Vec::new();
            let mut unparsed = 0;
            let mut lines = 0;
            for rec in g.recs[r].iter().filter(|x| x.t >= lo && x.t < hi) {
                render(r, rec, &mut text);
                text.push(b'\n');
                lines += 1;
                if let Kind::Garbage { unparsed: true, .. } = rec.kind {
                    unparsed += 1;
                }
            }
            let path = dir.join(&name);
            write_file(&path, &text, gz)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            src.files += 1;
            src.gzip_files += u64::from(gz);
            src.bytes += text.len() as u64;
            src.lines += lines;
            src.unparsed_lines += unparsed;
            exp.files.push(path);
        }
    }
    for s in exp.sources.values() {
        exp.gzip_files += s.gzip_files;
        exp.bytes += s.bytes;
        exp.lines += s.lines;
        exp.unparsed_lines += s.unparsed_lines;
    }
}

/// Nearest-rank percentile `q` (in percent) of tenths of a second.
fn percentile(sorted: &[u64], q: u64) -> Option<f64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (q * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize] as f64 / 10.0)
}

/// Most sessions active at once in `[from, to)` and the first second it
/// was reached; `None` when none was active. A session is active from its
/// connect's second up to, not including, its disconnect's.
fn peak(sessions: &[Sess], from: i64, to: i64) -> Option<(u64, String)> {
    let sec = |t: i64| t.div_euclid(SEC_MS);
    let (from_s, to_s) = (sec(from), sec(to));
    let mut candidates: Vec<i64> = vec![from_s];
    candidates.extend(
        sessions
            .iter()
            .map(|s| sec(s.c))
            .filter(|c| *c > from_s && *c < to_s),
    );
    candidates.sort_unstable();
    let mut best: Option<(u64, i64)> = None;
    for t in candidates {
        let n = sessions
            .iter()
            .filter(|s| sec(s.c) <= t && t < sec(s.d))
            .count() as u64;
        if n > 0 && best.is_none_or(|(b, _)| n > b) {
            best = Some((n, t));
        }
    }
    best.map(|(n, t)| (n, report_time(t * SEC_MS)))
}

#[derive(Default)]
struct FpAcc {
    level: Option<Level>,
    count: [u64; 2],
    first: [Option<i64>; 2],
    last: [Option<i64>; 2],
    runners: [BTreeSet<String>; 2],
    per_day: Vec<u64>,
    /// (time, runner, record index) of the latest occurrence per period.
    latest: [Option<(i64, usize, usize)>; 2],
}

fn expected(g: &Gen, nd: i64) -> Expected {
    let (p0, from, to) = (g.prev_from, g.from, g.to);
    let place = |t: i64| {
        if t >= from && t < to {
            Some(0usize)
        } else if t >= p0 && t < from {
            Some(1)
        } else {
            None
        }
    };
    let ndays = nd as usize;
    let day = |t: i64| ((t - from) / DAY_MS) as usize;
    let mut e = Expected {
        from: report_time(from),
        to: report_time(to),
        previous_from: report_time(p0),
        runners: RUNNERS
            .iter()
            .map(|r| (r.stem.to_owned(), r.name.to_owned()))
            .collect(),
        runner_names: g.runner_names,
        days: (0..nd).map(|i| date(from + i * DAY_MS)).collect(),
        day_totals: vec![Counts::default(); ndays],
        secrets: SECRETS.iter().map(|s| (*s).to_owned()).collect(),
        ..Expected::default()
    };
    let mut fps: BTreeMap<String, FpAcc> = BTreeMap::new();
    let mut durations: [Vec<u64>; 2] = Default::default();
    for (r, spec) in RUNNERS.iter().enumerate() {
        let stem = spec.stem.to_owned();
        let mut days = vec![Counts::default(); ndays];
        let mut rs = RunnerSessions::default();
        let mut rdur: Vec<u64> = Vec::new();
        let mut jobs = [0u64; 3];
        let mut life = Lifecycle::default();
        let mut starts: Vec<i64> = Vec::new();
        let mut stops: Vec<i64> = Vec::new();
        for (i, rec) in g.recs[r].iter().enumerate() {
            if matches!(rec.kind, Kind::Garbage { .. }) {
                continue;
            }
            match rec.kind {
                Kind::Start => starts.push(rec.t),
                Kind::CleanStop => stops.push(rec.t),
                _ => {}
            }
            let of_interest = rec.level >= Level::Warning || !matches!(rec.kind, Kind::Noise);
            let Some(p) = place(rec.t) else {
                e.outside_records += u64::from(of_interest);
                continue;
            };
            let d = (p == 0).then(|| day(rec.t));
            if rec.level >= Level::Warning {
                let error = rec.level >= Level::Error;
                if error {
                    e.totals.errors[p] += 1;
                } else {
                    e.totals.warnings[p] += 1;
                }
                if let Some(d) = d {
                    if error {
                        days[d].errors += 1;
                    } else {
                        days[d].warnings += 1;
                    }
                }
                if rec.level >= Level::Fatal && p == 0 {
                    life.fatal += 1;
                }
                let key = rec.fp.clone().expect("a fingerprint for every warning");
                let a = fps.entry(key).or_insert_with(|| FpAcc {
                    per_day: vec![0; ndays],
                    ..FpAcc::default()
                });
                a.level = a.level.max(Some(rec.level));
                a.count[p] += 1;
                a.first[p] = Some(a.first[p].map_or(rec.t, |x| x.min(rec.t)));
                a.last[p] = Some(a.last[p].map_or(rec.t, |x| x.max(rec.t)));
                a.runners[p].insert(stem.clone());
                if let Some(d) = d {
                    a.per_day[d] += 1;
                }
                if a.latest[p].is_none_or(|(t, _, _)| rec.t > t) {
                    a.latest[p] = Some((rec.t, r, i));
                }
            }
            match &rec.kind {
                Kind::Connect => {
                    e.sessions.started[p] += 1;
                    if let Some(d) = d {
                        days[d].sessions += 1;
                        rs.started += 1;
                    }
                }
                Kind::Disconnect { reason, tenths } => {
                    e.sessions.closes.entry(reason.clone()).or_default()[p] += 1;
                    durations[p].push(*tenths);
                    if p == 0 {
                        e.sessions.ended += 1;
                        rdur.push(*tenths);
                    }
                }
                Kind::Reject { reason, refused } => {
                    e.sessions.rejections.entry(reason.clone()).or_default()[p] += refused;
                    e.totals.rejections[p] += refused;
                    if p == 0 {
                        rs.rejections += refused;
                    }
                }
                Kind::Attach { mode, operator } => {
                    e.sessions.attaches.entry(mode.clone()).or_default()[p] += 1;
                    e.sessions.operators.entry(operator.clone()).or_default()[p] += 1;
                }
                Kind::Job { result, reason } => {
                    let name = ["success", "failed", "system_failure"][*result];
                    e.jobs.by_result.entry(name.to_owned()).or_default()[p] += 1;
                    e.totals.jobs[p] += 1;
                    if *result > 0 {
                        e.totals.job_failures[p] += 1;
                        let reason = reason.clone().expect("a failed job's reason");
                        e.jobs.failure_reasons.entry(reason).or_default()[p] += 1;
                    }
                    if let Some(d) = d {
                        days[d].jobs += 1;
                        days[d].job_failures += u64::from(*result > 0);
                        jobs[*result] += 1;
                    }
                }
                _ => {}
            }
        }
        // Starts: unclean when no clean stop came since the start before.
        for (i, s) in starts.iter().enumerate() {
            let unclean = i > 0 && !stops.iter().any(|x| *x > starts[i - 1] && x < s);
            if let Some(p) = place(*s) {
                e.totals.starts[p] += 1;
                e.totals.unclean_shutdowns[p] += u64::from(unclean);
                if p == 0 {
                    life.starts += 1;
                    life.unclean_shutdowns += u64::from(unclean);
                    life.events.push((
                        report_time(*s),
                        if unclean {
                            "start_after_unclean_stop"
                        } else {
                            "start"
                        }
                        .to_owned(),
                    ));
                }
            }
        }
        rdur.sort_unstable();
        rs.p50_s = percentile(&rdur, 50);
        rs.p95_s = percentile(&rdur, 95);
        let mine: Vec<Sess> = g
            .sessions
            .iter()
            .filter(|s| s.runner == r)
            .copied()
            .collect();
        rs.peak = peak(&mine, from, to);
        for (t, d) in e.day_totals.iter_mut().zip(&days) {
            t.warnings += d.warnings;
            t.errors += d.errors;
            t.sessions += d.sessions;
            t.jobs += d.jobs;
            t.job_failures += d.job_failures;
        }
        e.day_runners.insert(stem.clone(), days);
        e.sessions.runners.insert(stem.clone(), rs);
        e.jobs.runners.insert(stem.clone(), jobs);
        e.lifecycle.insert(stem, life);
    }
    e.totals.sessions = e.sessions.started;
    durations[0].sort_unstable();
    e.sessions.p50_s = percentile(&durations[0], 50);
    e.sessions.p95_s = percentile(&durations[0], 95);
    e.sessions.peak = peak(&g.sessions, from, to);
    for (key, a) in fps {
        let gone = a.count[0] == 0;
        let p = usize::from(gone);
        let trend = if gone {
            "gone"
        } else if a.count[1] == 0 {
            "new"
        } else {
            match a.count[0].cmp(&a.count[1]) {
                std::cmp::Ordering::Greater => "up",
                std::cmp::Ordering::Less => "down",
                std::cmp::Ordering::Equal => "same",
            }
        };
        let example_line = a.latest[p].map_or_else(String::new, |(_, r, i)| {
            let mut b = Vec::new();
            render(r, &g.recs[r][i], &mut b);
            String::from_utf8_lossy(&b).into_owned()
        });
        e.fingerprints.insert(
            key,
            Fp {
                level: a.level.map_or("", Level::as_str).to_owned(),
                count: a.count[0],
                previous_count: a.count[1],
                trend: trend.to_owned(),
                first_seen: a.first[p].map(report_time),
                last_seen: a.last[p].map(report_time),
                runners: a.runners[p].iter().cloned().collect(),
                per_day: a.per_day,
                example_line,
            },
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=21).collect();
        assert_eq!(percentile(&v, 50), Some(1.1));
        assert_eq!(percentile(&v, 95), Some(2.0));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(0.7));
    }

    #[test]
    fn peaks_count_sessions_carried_in() {
        let s = |c: i64, d: i64| Sess {
            runner: 0,
            c: c * 1000,
            d: d * 1000,
        };
        // Two open at 100, one closing at 110, one opening at 120.
        let v = [s(50, 110), s(60, 200), s(120, 130)];
        assert_eq!(peak(&v, 100_000, 300_000), Some((2, report_time(100_000))));
        let v = [s(150, 160), s(155, 170), s(158, 159)];
        assert_eq!(peak(&v, 100_000, 300_000), Some((3, report_time(158_000))));
        assert_eq!(peak(&[s(10, 20)], 100_000, 300_000), None);
    }

    #[test]
    fn a_week_is_deterministic_and_has_what_it_promises() {
        let from = super::super::days_from_civil(2026, 11, 23) * 86_400;
        let opts = WeekOptions::new(from, from + 7 * 86_400);
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let e1 = generate_week(d1.path(), &opts);
        let e2 = generate_week(d2.path(), &opts);
        assert_eq!(e1.fingerprints, e2.fingerprints);
        for (a, b) in e1.files.iter().zip(&e2.files) {
            assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        }
        assert_eq!(e1.files.len(), 6);
        assert_eq!(e1.gzip_files, 2);
        assert_eq!(e1.unparsed_lines, 3);
        assert!(e1.outside_records >= 8, "{}", e1.outside_records);
        let c = &e1.fingerprints["Docker step prepare failed: container N not found"];
        assert!(c.count > 5 && c.previous_count > 5, "{c:?}");
        assert_eq!(
            e1.fingerprints[msg::SESSION_TLS_HANDSHAKE_FAILED].trend,
            "gone"
        );
        assert_eq!(
            e1.sessions.runners["runner-b"].peak,
            Some((3, e1.from.clone()))
        );
        assert!(e1.sessions.peak.as_ref().is_some_and(|(n, _)| *n >= 7));
        assert_eq!(e1.sessions.rejections["over_limit"], [5, 2]);
        assert_eq!(e1.totals.starts, [4, 3]);
        assert_eq!(e1.totals.unclean_shutdowns, [2, 1]);
        // Both kinds of container id were written.
        let text = std::fs::read_to_string(d1.path().join("runner-a.log")).unwrap();
        let ids: Vec<&str> = text
            .split("container ")
            .skip(1)
            .filter_map(|s| s.split(' ').next())
            .collect();
        assert!(ids.iter().any(|i| i.bytes().all(|c| c.is_ascii_digit())));
        assert!(ids
            .iter()
            .any(|i| i.bytes().any(|c| c.is_ascii_alphabetic())));
    }
}
