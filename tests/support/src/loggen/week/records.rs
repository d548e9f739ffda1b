//! The generated records and what each means, and the runner's lines
//! that make them (upstream's messages, termgate's fields).

use std::collections::{BTreeMap, HashSet};

use termgate::logschema::{self as ls, event, msg, Level};
use termgate::metrics::{close_reason, rejection_reason};
use termgate::operator::client_role;

use super::runners::{RUNNERS, SECRETS, SEC_MS};
use crate::loggen::{json_line, runner_time, Rng, HOUR_MS, V};

/// What a record means, for [`Expected`].
#[derive(Debug, Clone)]
pub(super) enum Kind {
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
pub(super) struct Rec {
    /// Unix milliseconds.
    pub(super) t: i64,
    pub(super) level: Level,
    pub(super) msg: String,
    pub(super) fields: BTreeMap<&'static str, V>,
    pub(super) kind: Kind,
    /// For warnings and above: the fingerprint the report must show.
    pub(super) fp: Option<String>,
}

/// A terminal session: active from `c`'s second to `d`'s.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sess {
    pub(super) runner: usize,
    pub(super) c: i64,
    pub(super) d: i64,
}

/// Warning-and-above records that are not job results or rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum P {
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
pub(super) enum JobEnd {
    Success,
    ExitCode,
    Timeout,
    /// A timeout logged without `failure_reason`.
    TimeoutNoReason,
    System,
}

pub(super) struct Gen {
    pub(super) rng: Rng,
    pub(super) prev_from: i64,
    pub(super) from: i64,
    pub(super) to: i64,
    pub(super) runner_names: bool,
    pub(super) recs: [Vec<Rec>; 3],
    pub(super) sessions: Vec<Sess>,
    pub(super) used_ms: HashSet<i64>,
    pub(super) used_s: HashSet<i64>,
    pub(super) job: u64,
}

impl Gen {
    /// `t`, or the next free millisecond after it.
    pub(super) fn claim(&mut self, mut t: i64) -> i64 {
        while !self.used_ms.insert(t) {
            t += 1;
        }
        t
    }

    /// `t` moved by whole seconds to a second no session event has.
    pub(super) fn claim_sec(&mut self, mut t: i64) -> i64 {
        while !self.used_s.insert(t.div_euclid(SEC_MS)) {
            t += SEC_MS;
        }
        self.claim(t)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
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
    pub(super) fn plain_problem(
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
    pub(super) fn span(&self, r: usize, job: u64) -> Vec<(&'static str, V)> {
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

    pub(super) fn next_job(&mut self) -> u64 {
        self.job += 1 + self.rng.below(7);
        self.job
    }

    pub(super) fn peer(&mut self) -> String {
        format!(
            "10.20.{}.{}:{}",
            self.rng.below(250),
            1 + self.rng.below(250),
            32_768 + self.rng.below(28_000)
        )
    }

    /// Info and debug lines of no figure.
    pub(super) fn noise(&mut self, r: usize, t: i64) {
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

    pub(super) fn problem(&mut self, r: usize, t: i64, p: P) {
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
    pub(super) fn job(&mut self, r: usize, t: i64, dur: i64, end: JobEnd) {
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

    pub(super) fn random_job(&mut self, r: usize, day0: i64) {
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
    pub(super) fn session(
        &mut self,
        r: usize,
        c: i64,
        d: i64,
        reason: &str,
        role: &str,
        job: u64,
    ) -> Sess {
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

    pub(super) fn user_session(&mut self, r: usize, c: i64, d: i64, reason: &str) -> Sess {
        let job = self.next_job();
        self.session(r, c, d, reason, client_role::INTERACTIVE, job)
    }

    /// A refused connection and the upstream line(s) before it.
    pub(super) fn reject(&mut self, r: usize, t: i64, reason: &'static str) {
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
    pub(super) fn over_limit(&mut self, r: usize, t: i64, refused: u64) {
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

    pub(super) fn operator_line(
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
    pub(super) fn attach(&mut self, r: usize, t: i64, len: i64, mode: &str, operator: &str) {
        let job = self.next_job();
        self.operator_line(r, t, true, mode, operator, job);
        self.operator_line(r, t + len, false, mode, operator, job);
    }

    /// An operator's own shell: attached, a terminal (role shell), detached.
    pub(super) fn shell(&mut self, r: usize, c: i64, d: i64, operator: &str) {
        let job = self.next_job();
        self.operator_line(r, c - 400, true, "shell", operator, job);
        self.session(r, c, d, close_reason::CLIENT_LEFT, client_role::SHELL, job);
        self.operator_line(r, d + 700, false, "shell", operator, job);
    }

    pub(super) fn start(&mut self, r: usize, t: i64) {
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
    pub(super) fn stop(&mut self, r: usize, t: i64) {
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

    pub(super) fn garbage(&mut self, r: usize, t: i64, bytes: &[u8], unparsed: bool) {
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
}

/// The text of a record (no newline).
pub(super) fn render(r: usize, rec: &Rec, out: &mut Vec<u8>) {
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
