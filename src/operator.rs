//! The session server's operator API, as both sides speak it: the routes,
//! the headers, operator roles and attach modes, the JSON of
//! `GET /sessions`, and how a certificate fingerprint is written.
//!
//! Operators authenticate with `Authorization: Bearer <token>`; the runner
//! keeps only each token's SHA-256 (`operators_file`). An `observe`
//! operator may list sessions and watch one; a `control` operator may also
//! join the user's terminal as a second writer or open a new shell in the
//! job's environment, and must say why (`X-Termgate-Reason`).

use serde::{Deserialize, Serialize};

/// `GET /sessions`: the live sessions ([`SessionList`]).
pub const SESSIONS_PATH: &str = "/sessions";
/// The header carrying the operator's reason (required for join and shell).
pub const REASON_HEADER: &str = "x-termgate-reason";
/// Longest reason kept (characters); longer ones are cut, not refused.
pub const MAX_REASON_CHARS: usize = 200;
/// Prefix of an operator token (`tgo_` + 64 hex digits), so a leaked one is
/// recognisable in a scan.
pub const TOKEN_PREFIX: &str = "tgo_";

/// `/session/{id}/{mode}` for an operator mode.
pub fn session_path(id: &str, mode: Mode) -> String {
    format!("/session/{id}/{}", mode.as_str())
}

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List sessions and watch them read-only.
    Observe,
    /// Also join a terminal as a second writer and open shells.
    Control,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Observe => "observe",
            Role::Control => "control",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "observe" => Some(Role::Observe),
            "control" => Some(Role::Control),
            _ => None,
        }
    }

    /// Whether this role may attach in `mode`.
    pub fn allows(self, mode: Mode) -> bool {
        match mode {
            Mode::Observe => true,
            Mode::Join | Mode::Shell => self == Role::Control,
        }
    }
}

/// How an operator attaches to a session (the last path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A read-only mirror of the interactive terminal.
    Observe,
    /// A second writer on the interactive terminal.
    Join,
    /// A new shell in the job's environment.
    Shell,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Observe, Mode::Join, Mode::Shell];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Join => "join",
            Mode::Shell => "shell",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Join and shell must carry a reason ([`REASON_HEADER`]).
    pub fn needs_reason(self) -> bool {
        !matches!(self, Mode::Observe)
    }

    /// The `role` of this connection in `/sessions`, logs and the
    /// `session_websocket_connections{role}` label.
    pub fn client_role(self) -> &'static str {
        match self {
            Mode::Observe => client_role::OBSERVER,
            Mode::Join => client_role::JOINER,
            Mode::Shell => client_role::SHELL,
        }
    }
}

/// The role of one connection to a session.
pub mod client_role {
    /// The user's seat (`/exec`).
    pub const INTERACTIVE: &str = "interactive";
    /// An operator watching (`/observe`).
    pub const OBSERVER: &str = "observer";
    /// An operator writing to the user's terminal (`/join`).
    pub const JOINER: &str = "joiner";
    /// An operator in a shell of their own (`/shell`).
    pub const SHELL: &str = "shell";
    pub const ALL: [&str; 4] = [INTERACTIVE, OBSERVER, JOINER, SHELL];
}

/// `GET /sessions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
}

/// One live session. Never carries the job's or the session's token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The id in `/session/{id}/…`.
    pub id: String,
    pub job_id: u64,
    /// `group/project`.
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub job_name: String,
    /// `shell` or `docker`.
    #[serde(default)]
    pub executor: String,
    /// `waiting` (no terminal yet), `idle` (nobody at the interactive seat)
    /// or `active`.
    pub state: String,
    /// RFC 3339, when the job's session became routable.
    pub started_at: String,
    #[serde(default)]
    pub clients: Vec<ClientSummary>,
    /// Bytes typed into the interactive terminal.
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes the interactive terminal printed.
    #[serde(default)]
    pub bytes_out: u64,
}

/// One connection to a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSummary {
    /// One of [`client_role`].
    pub role: String,
    /// The operator's name; `None` for the user at the interactive seat.
    #[serde(default)]
    pub name: Option<String>,
    /// `ip:port` the connection came from.
    pub peer: String,
    /// RFC 3339, when it connected.
    #[serde(default)]
    pub since: String,
}

/// `sha256:` and the digest as colon-separated upper-case hex pairs, the way
/// `openssl x509 -fingerprint -sha256` prints it.
pub fn format_fingerprint(sha256: &[u8]) -> String {
    let hex: Vec<String> = sha256.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hex.join(":"))
}

/// The 32 bytes of a fingerprint written as [`format_fingerprint`] does,
/// also without the `sha256:` prefix, in either case, with or without
/// colons. `None` when it is not 64 hex digits.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("SHA256:"))
        .unwrap_or(s);
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(digits.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_modes() {
        assert!(Role::Observe.allows(Mode::Observe));
        assert!(!Role::Observe.allows(Mode::Join));
        assert!(!Role::Observe.allows(Mode::Shell));
        assert!(Role::Control.allows(Mode::Shell));
        assert_eq!(Role::parse("control"), Some(Role::Control));
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Mode::parse("join"), Some(Mode::Join));
        assert_eq!(Mode::parse("exec"), None);
        assert!(Mode::Shell.needs_reason() && !Mode::Observe.needs_reason());
        assert_eq!(session_path("ab", Mode::Observe), "/session/ab/observe");
    }

    #[test]
    fn fingerprints_round_trip() {
        let d: Vec<u8> = (0u8..32).collect();
        let f = format_fingerprint(&d);
        assert!(f.starts_with("sha256:00:01:02"), "{f}");
        assert_eq!(parse_fingerprint(&f).map(|a| a.to_vec()), Some(d.clone()));
        let bare = f
            .trim_start_matches("sha256:")
            .replace(':', "")
            .to_lowercase();
        assert_eq!(parse_fingerprint(&bare).map(|a| a.to_vec()), Some(d));
        assert_eq!(parse_fingerprint("sha256:00:01"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn session_list_json_has_no_token_fields() {
        let l = SessionList {
            sessions: vec![SessionSummary {
                id: "ab".into(),
                job_id: 7,
                state: "idle".into(),
                clients: vec![ClientSummary {
                    role: client_role::OBSERVER.into(),
                    name: Some("alice".into()),
                    peer: "127.0.0.1:5".into(),
                    since: String::new(),
                }],
                ..Default::default()
            }],
        };
        let j = serde_json::to_string(&l).unwrap_or_default();
        assert!(!j.contains("token"), "{j}");
        let back: SessionList = serde_json::from_str(&j).unwrap_or_default();
        assert_eq!(back, l);
    }
}
