//! How one live session (`termgate::operator::SessionSummary`) is written
//! on the Sessions screen and by `termgate sessions`: the same words and
//! numbers in both.

use std::time::{Duration, SystemTime};

use termgate::operator::{client_role, SessionSummary};

use crate::text::{age, bytes};

/// `9f1c…e0`: enough of an id to tell sessions apart and to type a prefix.
pub fn short_id(id: &str) -> String {
    let n = id.chars().count();
    if n <= 8 {
        return id.to_string();
    }
    let head: String = id.chars().take(4).collect();
    let tail: String = id.chars().skip(n - 2).collect();
    format!("{head}…{tail}")
}

/// `1 user, 2 observers`, `-` for nobody.
pub fn clients(s: &SessionSummary) -> String {
    let mut parts = Vec::new();
    for (role, one, many) in [
        (client_role::INTERACTIVE, "user", "users"),
        (client_role::OBSERVER, "observer", "observers"),
        (client_role::JOINER, "joiner", "joiners"),
        (client_role::SHELL, "shell", "shells"),
    ] {
        let n = s.clients.iter().filter(|c| c.role == role).count();
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    let other = s
        .clients
        .iter()
        .filter(|c| !client_role::ALL.contains(&c.role.as_str()))
        .count();
    if other > 0 {
        parts.push(format!("{other} other"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// `3.0K/1.2M` (in/out); `-` before the terminal exists.
pub fn in_out(s: &SessionSummary) -> String {
    if s.state == "waiting" && s.bytes_in == 0 && s.bytes_out == 0 {
        return "-".into();
    }
    let b = |v: u64| match v {
        0 => "0".to_string(),
        v => bytes(Some(v as f64)).trim_end_matches('B').to_string(),
    };
    format!("{}/{}", b(s.bytes_in), b(s.bytes_out))
}

/// Since the session started, in whole seconds; `-` if unknown.
pub fn session_age(s: &SessionSummary, now: SystemTime) -> String {
    chrono::DateTime::parse_from_rfc3339(&s.started_at)
        .ok()
        .map(SystemTime::from)
        .map_or("-".into(), |t| {
            let d = now.duration_since(t).unwrap_or_default();
            // Whole seconds: a session's age does not need tenths.
            age(Duration::from_secs(d.as_secs())).replace(".0s", "s")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use termgate::operator::ClientSummary;

    #[test]
    fn session_cells() {
        assert_eq!(short_id("9f1c2b7d44e0"), "9f1c…e0");
        assert_eq!(short_id("ab"), "ab");
        let c = |role: &str| ClientSummary {
            role: role.into(),
            ..Default::default()
        };
        let mut s = SessionSummary {
            state: "active".into(),
            clients: vec![c("interactive"), c("observer"), c("observer"), c("x")],
            bytes_in: 3 * 1024,
            bytes_out: 1_258_291,
            started_at: "2026-12-06T09:00:00Z".into(),
            ..Default::default()
        };
        assert_eq!(clients(&s), "1 user, 2 observers, 1 other");
        assert_eq!(in_out(&s), "3.0K/1.2M");
        let now =
            SystemTime::from(chrono::DateTime::parse_from_rfc3339("2026-12-06T09:12:00Z").unwrap());
        assert_eq!(session_age(&s, now), "12m");
        s.started_at = "garbage".into();
        assert_eq!(session_age(&s, now), "-");
        s.clients.clear();
        assert_eq!(clients(&s), "-");
        s.state = "waiting".into();
        s.bytes_in = 0;
        s.bytes_out = 0;
        assert_eq!(in_out(&s), "-");
    }
}
