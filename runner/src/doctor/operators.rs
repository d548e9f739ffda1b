//! The operator API: which listener serves it (not the public port GitLab
//! reaches) and the state of its `operators_file`.

use std::path::Path;

use super::{Check, Findings};
use crate::config::SessionServer;
use crate::session::operators::file as operators_file;

/// What doctor found at `operators_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorsFileState {
    /// No such file: nobody can authenticate yet.
    Missing,
    /// It loads: how many operators, and its permission bits.
    Loaded { operators: usize, mode: u32 },
    /// Unreadable or invalid: the runner would refuse to start.
    Broken(String),
}

impl OperatorsFileState {
    /// Looks at `path` (mode, then contents).
    pub fn inspect(path: &Path) -> OperatorsFileState {
        let mode = match std::fs::metadata(path) {
            Ok(m) => file_mode(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return OperatorsFileState::Missing
            }
            Err(e) => return OperatorsFileState::Broken(format!("{}: {e}", path.display())),
        };
        match operators_file::load(path) {
            Ok(Some(entries)) => OperatorsFileState::Loaded {
                operators: entries.len(),
                mode,
            },
            Ok(None) => OperatorsFileState::Missing,
            Err(e) => OperatorsFileState::Broken(e.to_string()),
        }
    }
}

#[cfg(unix)]
fn file_mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn file_mode(_: &std::fs::Metadata) -> u32 {
    0o600
}

fn same_address(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a == b {
        return true;
    }
    match (
        a.parse::<std::net::SocketAddr>(),
        b.parse::<std::net::SocketAddr>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The `operator_api` (listener) and `operators_file` checks. `file` is
/// what [`OperatorsFileState::inspect`] found at `operators_file`.
pub fn checks(ss: Option<&SessionServer>, file: Option<&OperatorsFileState>, f: &mut Findings) {
    let Some((ss, path)) = ss.and_then(|s| Some((s, s.operators_file.as_ref()?))) else {
        f.skip(
            "operator_api",
            "no [session_server] operators_file: the operator API is off",
        );
        return;
    };
    let shown = path.display();
    match file {
        Some(OperatorsFileState::Loaded { operators, mode }) if mode & 0o077 != 0 => {
            f.push(Check::warn(
                "operators_file",
                format!(
                    "{shown}: {operators} operator(s), readable or writable by group or others \
                     (mode {mode:04o})"
                ),
                format!("run chmod 600 {shown}"),
            ))
        }
        Some(OperatorsFileState::Loaded { operators, mode }) => f.push(Check::pass(
            "operators_file",
            format!("{shown}: {operators} operator(s), mode {mode:04o}"),
        )),
        Some(OperatorsFileState::Missing) => f.push(Check::warn(
            "operators_file",
            format!("{shown} does not exist: no operator can authenticate"),
            "add one with: termgate-runner operator add NAME --role observe",
        )),
        Some(OperatorsFileState::Broken(e)) => f.push(Check::fail(
            "operators_file",
            format!("{e} (the runner will refuse to start)"),
            format!("fix {shown}, or remove it and add the operators again"),
        )),
        None => {}
    }
    if path.is_relative() {
        f.push(Check::warn(
            "operators_file",
            format!(
                "[session_server] operators_file {shown} is relative: the runner resolves it \
                 against its working directory, not the config's"
            ),
            "write an absolute path",
        ));
    }
    let public = ss.listen_address.as_deref().filter(|a| !a.is_empty());
    let operator = ss
        .operator_listen_address
        .as_deref()
        .filter(|a| !a.is_empty());
    match (operator, public) {
        (None, Some(public)) => f.push(Check::warn(
            "operator_api",
            format!(
                "[session_server] operators_file is set but operator_listen_address is not: \
                 the operator API (/sessions, observe, join, shell) shares listen_address \
                 {public}, the port that faces GitLab and maybe the internet"
            ),
            "set operator_listen_address to a private address",
        )),
        (Some(op), Some(public)) if same_address(op, public) => f.push(Check::warn(
            "operator_api",
            format!(
                "[session_server] operator_listen_address is the same as listen_address \
                 ({public}): operators share the public port"
            ),
            "use a separate, private address",
        )),
        (Some(op), Some(public)) => f.push(Check::pass(
            "operator_api",
            format!("on {op}; the public listen_address {public} serves /exec only"),
        )),
        (_, None) => f.skip(
            "operator_api",
            "[session_server] has no listen_address, so the operator API is off",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn ss(listen: &str, operator: Option<&str>) -> SessionServer {
        SessionServer {
            listen_address: Some(listen.into()),
            operator_listen_address: operator.map(str::to_string),
            operators_file: Some("/etc/termgate/operators.toml".into()),
            ..Default::default()
        }
    }

    const LOADED: OperatorsFileState = OperatorsFileState::Loaded {
        operators: 2,
        mode: 0o600,
    };

    fn run(ss: Option<&SessionServer>, file: Option<&OperatorsFileState>) -> Findings {
        let mut f = Findings::default();
        checks(ss, file, &mut f);
        f
    }

    fn worst(f: &Findings) -> Status {
        f.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass)
    }

    #[test]
    fn a_private_operator_api_passes() {
        let s = ss("0.0.0.0:8093", Some("127.0.0.1:8094"));
        let f = run(Some(&s), Some(&LOADED));
        assert_eq!(worst(&f), Status::Pass, "{:?}", f.checks);
        assert_eq!(
            f.checks,
            [
                Check::pass(
                    "operators_file",
                    "/etc/termgate/operators.toml: 2 operator(s), mode 0600"
                ),
                Check::pass(
                    "operator_api",
                    "on 127.0.0.1:8094; the public listen_address 0.0.0.0:8093 serves /exec only"
                ),
            ]
        );
        let f = run(Some(&SessionServer::default()), None);
        assert!(f.checks.is_empty());
        assert_eq!(
            f.skipped[0].reason,
            "no [session_server] operators_file: the operator API is off"
        );
        assert!(run(None, None).checks.is_empty());
    }

    #[test]
    fn operators_on_the_public_port_are_warned_about() {
        let f = run(Some(&ss("0.0.0.0:8093", None)), Some(&LOADED));
        let api = f.checks.iter().find(|c| c.name == "operator_api").unwrap();
        assert_eq!(api.status, Status::Warn);
        assert!(
            api.detail.contains(
                "[session_server] operators_file is set but operator_listen_address is not"
            ),
            "{api:?}"
        );
        assert!(
            api.detail.contains("shares listen_address 0.0.0.0:8093"),
            "{api:?}"
        );

        for (public, op) in [
            ("0.0.0.0:8093", " 0.0.0.0:8093"),
            ("[::1]:8093", "[0:0::1]:8093"),
        ] {
            let f = run(Some(&ss(public, Some(op))), Some(&LOADED));
            let api = f.checks.iter().find(|c| c.name == "operator_api").unwrap();
            assert_eq!(api.status, Status::Warn, "{public} {op}");
            assert!(
                api.detail.contains(&format!(
                    "[session_server] operator_listen_address is the same as listen_address ({public})"
                )),
                "{api:?}"
            );
        }
    }

    #[test]
    fn a_readable_missing_broken_or_relative_file_is_warned_about() {
        let s = ss("0.0.0.0:8093", Some("127.0.0.1:8094"));
        let open = OperatorsFileState::Loaded {
            operators: 1,
            mode: 0o644,
        };
        let f = run(Some(&s), Some(&open));
        assert_eq!(worst(&f), Status::Warn);
        assert!(
            f.checks[0].detail.contains(
                "/etc/termgate/operators.toml: 1 operator(s), readable or writable by group or others (mode 0644)"
            ),
            "{:?}",
            f.checks
        );
        assert_eq!(
            f.checks[0].hint.as_deref(),
            Some("run chmod 600 /etc/termgate/operators.toml")
        );
        let group = OperatorsFileState::Loaded {
            operators: 1,
            mode: 0o640,
        };
        assert_eq!(worst(&run(Some(&s), Some(&group))), Status::Warn);
        let f = run(Some(&s), Some(&OperatorsFileState::Missing));
        assert_eq!(worst(&f), Status::Warn);
        assert!(
            f.checks[0]
                .detail
                .contains("does not exist: no operator can authenticate"),
            "{:?}",
            f.checks
        );
        let broken = OperatorsFileState::Broken("ops.toml:3: role: unsupported".into());
        let f = run(Some(&s), Some(&broken));
        assert_eq!(worst(&f), Status::Fail);
        assert_eq!(
            f.checks[0].detail,
            "ops.toml:3: role: unsupported (the runner will refuse to start)"
        );
        let mut rel = s.clone();
        rel.operators_file = Some("operators.toml".into());
        let f = run(Some(&rel), Some(&LOADED));
        assert_eq!(worst(&f), Status::Warn);
        assert!(
            f.checks[1]
                .detail
                .contains("operators_file operators.toml is relative"),
            "{:?}",
            f.checks
        );
    }

    #[test]
    fn inspect_reads_mode_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operators.toml");
        assert_eq!(
            OperatorsFileState::inspect(&path),
            OperatorsFileState::Missing
        );
        operators_file::save(&path, &[]).unwrap();
        assert_eq!(
            OperatorsFileState::inspect(&path),
            OperatorsFileState::Loaded {
                operators: 0,
                mode: 0o600
            }
        );
        std::fs::write(&path, "[[operators]]\nname = 1\n").unwrap();
        assert!(matches!(
            OperatorsFileState::inspect(&path),
            OperatorsFileState::Broken(e) if e.contains("operators.toml:2")
        ));
    }
}
