//! `termgate-runner doctor`: load the config and report, per Docker runner,
//! whether the container hardening defaults are kept (a pass/fail table),
//! per shell runner which user its jobs run as (a warning for root),
//! whether the operator API is exposed more than it should be, and the
//! session server certificate's fingerprint (to compare out of band with
//! what `termgate trust` pinned).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::cli::ConfigArg;
use crate::config::{self, SessionServer};
use crate::executor::docker::hardening;
use crate::session::operators::file as operators_file;
use crate::session::tls;

/// The report for a whole config, and whether every check passed.
pub fn report(cfg: &config::Config) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let docker: Vec<_> = cfg
        .runners
        .iter()
        .filter(|r| r.executor == "docker")
        .collect();
    if docker.is_empty() {
        out.push_str("No Docker runners configured: nothing to check.\n");
        return (out, true);
    }
    for r in docker {
        let checks = hardening::checks(&r.docker.clone().unwrap_or_default());
        let _ = writeln!(out, "Runner {:?} (docker):", r.name);
        let _ = writeln!(out, "  {:<22} {:<6} DETAIL", "CHECK", "RESULT");
        for c in &checks {
            let _ = writeln!(
                out,
                "  {:<22} {:<6} {}",
                c.name,
                if c.pass { "PASS" } else { "FAIL" },
                c.detail
            );
        }
        for c in checks.iter().filter(|c| !c.pass) {
            ok = false;
            let _ = writeln!(
                out,
                "  WARNING: [runners.docker] weakens hardening: {} ({})",
                c.name, c.detail
            );
        }
    }
    (out, ok)
}

/// Which user each shell runner's jobs run as ([`crate::job_user::effective`]),
/// and whether every check passed: jobs that would run as root (no `user`
/// while the runner runs as root, judged by doctor's own uid, or `user =
/// "root"`) and users that do not resolve are warnings.
pub fn job_user_report(cfg: &config::Config, runner_is_root: bool) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for (i, r) in cfg.runners.iter().enumerate() {
        if !matches!(r.executor.as_str(), "" | "shell") {
            continue;
        }
        let who = format!("[[runners]] #{} {:?} (shell)", i + 1, r.name);
        let warning = match crate::job_user::effective(cfg, r) {
            None if runner_is_root => Some(format!(
                "{who}: jobs run as root (no user): a job can read config.toml and its runner \
                 tokens, other jobs' build directories and environments, and signal the runner; \
                 set user (or [[runners]] user) to an unprivileged user"
            )),
            None => {
                let _ = writeln!(out, "{who}: jobs run as the runner's own user");
                None
            }
            Some((name, origin)) => match crate::job_user::lookup(name) {
                Err(e) => Some(format!(
                    "{who}: {origin} = {name:?}: {e} (the runner will refuse to start)"
                )),
                Ok(u) if u.uid.is_root() => Some(format!(
                    "{who}: {origin} = {name:?} runs jobs as root: a job can read config.toml \
                     and its runner tokens, other jobs' build directories and environments, and \
                     signal the runner; name an unprivileged user"
                )),
                Ok(u) => {
                    let _ = writeln!(out, "{who}: jobs run as user {name} (uid {})", u.uid);
                    None
                }
            },
        };
        if let Some(w) = warning {
            ok = false;
            let _ = writeln!(out, "WARNING: {w}");
        }
    }
    (out, ok)
}

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

/// The operator API's part of the report, and whether every check passed.
/// `file` is what [`OperatorsFileState::inspect`] found at `operators_file`.
pub fn operators_report(
    ss: Option<&SessionServer>,
    file: Option<&OperatorsFileState>,
) -> (String, bool) {
    let mut out = String::new();
    let Some((ss, path)) = ss.and_then(|s| Some((s, s.operators_file.as_ref()?))) else {
        out.push_str("Operator API: off (no [session_server] operators_file).\n");
        return (out, true);
    };
    let mut warnings: Vec<String> = Vec::new();
    let _ = writeln!(out, "Operator API: operators_file {}", path.display());
    match file {
        Some(OperatorsFileState::Loaded { operators, mode }) => {
            let _ = writeln!(out, "  {operators} operator(s), mode {mode:04o}");
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "[session_server] operators_file {} is readable or writable by group or \
                     others (mode {mode:04o}): run chmod 600 {}",
                    path.display(),
                    path.display()
                ));
            }
        }
        Some(OperatorsFileState::Missing) => warnings.push(format!(
            "[session_server] operators_file {} does not exist: no operator can authenticate \
             (add one with: termgate-runner operator add NAME --role observe)",
            path.display()
        )),
        Some(OperatorsFileState::Broken(e)) => {
            warnings.push(format!("{e} (the runner will refuse to start)"))
        }
        None => {}
    }
    if path.is_relative() {
        warnings.push(format!(
            "[session_server] operators_file {} is relative: the runner resolves it against \
             its working directory, not the config's; write an absolute path",
            path.display()
        ));
    }
    let public = ss.listen_address.as_deref().filter(|a| !a.is_empty());
    match (ss.operator_listen_address.as_deref(), public) {
        (None, Some(public)) => warnings.push(format!(
            "[session_server] operators_file is set but operator_listen_address is not: the \
             operator API (/sessions, observe, join, shell) shares listen_address {public}, \
             the port that faces GitLab and maybe the internet; set operator_listen_address \
             to a private address"
        )),
        (Some(op), Some(public)) if same_address(op, public) => warnings.push(format!(
            "[session_server] operator_listen_address is the same as listen_address \
             ({public}): operators share the public port; use a separate, private address"
        )),
        (_, None) => {
            let _ = writeln!(
                out,
                "  note: [session_server] has no listen_address, so the operator API is off"
            );
        }
        _ => {}
    }
    for w in &warnings {
        let _ = writeln!(out, "  WARNING: {w}");
    }
    (out, warnings.is_empty())
}

/// The session server certificate's fingerprint: `cert_file`'s when set,
/// else the one the runner generated and saved beside `config_path`.
/// Empty when there is neither.
pub fn certificate_report(cfg: &config::Config, config_path: &Path) -> String {
    let configured = cfg
        .session_server
        .as_ref()
        .and_then(|s| s.cert_file.clone());
    let (path, origin) = match configured {
        Some(p) => (p, "[session_server] cert_file"),
        None => {
            let (p, _) = tls::persisted_paths(&config::config_dir(config_path));
            if !p.exists() {
                return match cfg.enabled_session_server() {
                    Some(_) => format!(
                        "Session server certificate: none saved yet ({} is made at the next start)\n",
                        p.display()
                    ),
                    None => String::new(),
                };
            }
            (p, "generated")
        }
    };
    match tls::fingerprint_of_pem_file(&path) {
        Ok(fp) => format!(
            "Session server certificate ({origin}): {}\n  fingerprint {fp}\n",
            path.display()
        ),
        Err(e) => format!("Session server certificate ({origin}): {e:#}\n"),
    }
}

pub fn run(args: ConfigArg) -> Result<()> {
    let path = args.path();
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        println!("WARNING: {w}");
    }
    let (text, ok) = report(&loaded.config);
    print!("{text}");
    let (users, _) = job_user_report(&loaded.config, nix::unistd::geteuid().is_root());
    print!("{users}");
    print!("{}", certificate_report(&loaded.config, &path));
    // With no Docker runner the report already said there is nothing to
    // check; "all checks passed" would claim checks that never ran.
    if loaded.config.runners.iter().any(|r| r.executor == "docker") {
        println!(
            "{}",
            if ok {
                "Docker hardening: all checks passed"
            } else {
                "Docker hardening: some checks FAILED (see warnings)"
            }
        );
    }
    let ss = loaded.config.session_server.as_ref();
    let file = ss
        .and_then(|s| s.operators_file.as_deref())
        .map(OperatorsFileState::inspect);
    let (text, ok) = operators_report(ss, file.as_ref());
    print!("{text}");
    if !ok {
        println!("Operator API: some checks FAILED (see warnings)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DockerConfig, RunnerConfig};

    #[test]
    fn table_marks_weakened_settings() {
        let mut cfg = config::Config::default();
        cfg.runners.push(RunnerConfig {
            name: "weak".into(),
            executor: "docker".into(),
            docker: Some(DockerConfig {
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        let (text, ok) = report(&cfg);
        assert!(!ok);
        assert!(text.contains("not privileged         FAIL"), "{text}");
        assert!(text.contains("pids limit             PASS"), "{text}");
        assert!(text.contains("WARNING: [runners.docker] weakens hardening: not privileged"));
    }

    #[test]
    fn shell_jobs_as_root_are_warned_about() {
        let mut cfg = config::Config::default();
        for (name, executor, user) in [
            ("as-root", "shell", None),
            ("as-nobody", "shell", Some("nobody")),
            ("explicit-root", "shell", Some("root")),
            ("containers", "docker", None),
            ("unknown", "shell", Some("no-such-user-termgate")),
        ] {
            cfg.runners.push(RunnerConfig {
                name: name.into(),
                executor: executor.into(),
                user: user.map(str::to_string),
                ..Default::default()
            });
        }
        let (text, ok) = job_user_report(&cfg, true);
        assert!(!ok);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with(
                "WARNING: [[runners]] #1 \"as-root\" (shell): jobs run as root (no user): a job can read config.toml"
            ),
            "{text}"
        );
        assert!(
            lines[1]
                .starts_with("[[runners]] #2 \"as-nobody\" (shell): jobs run as user nobody (uid "),
            "{text}"
        );
        assert!(
            lines[2].starts_with(
                "WARNING: [[runners]] #3 \"explicit-root\" (shell): [[runners]] user = \"root\" runs jobs as root"
            ),
            "{text}"
        );
        assert!(
            lines[3].contains("no such user (the runner will refuse to start)"),
            "{text}"
        );

        // A global user covers every shell runner; a runner not run as root
        // runs jobs as itself.
        let mut one = config::Config {
            user: Some("nobody".into()),
            ..Default::default()
        };
        one.runners.push(cfg.runners[0].clone());
        let (text, ok) = job_user_report(&one, true);
        assert!(ok, "{text}");
        assert!(text.contains("jobs run as user nobody (uid "), "{text}");
        one.user = None;
        let (text, ok) = job_user_report(&one, false);
        assert!(ok);
        assert_eq!(
            text,
            "[[runners]] #1 \"as-root\" (shell): jobs run as the runner's own user\n"
        );
    }

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

    #[test]
    fn a_private_operator_api_passes() {
        let s = ss("0.0.0.0:8093", Some("127.0.0.1:8094"));
        let (text, ok) = operators_report(Some(&s), Some(&LOADED));
        assert!(ok, "{text}");
        assert_eq!(
            text,
            "Operator API: operators_file /etc/termgate/operators.toml\n  2 operator(s), mode 0600\n"
        );
        let (text, ok) = operators_report(Some(&SessionServer::default()), None);
        assert!(ok);
        assert_eq!(
            text,
            "Operator API: off (no [session_server] operators_file).\n"
        );
        assert!(operators_report(None, None).1);
    }

    #[test]
    fn operators_on_the_public_port_are_warned_about() {
        let (text, ok) = operators_report(Some(&ss("0.0.0.0:8093", None)), Some(&LOADED));
        assert!(!ok);
        assert!(
            text.contains(
                "WARNING: [session_server] operators_file is set but operator_listen_address is not"
            ),
            "{text}"
        );
        assert!(
            text.contains("shares listen_address 0.0.0.0:8093"),
            "{text}"
        );

        for (public, op) in [
            ("0.0.0.0:8093", " 0.0.0.0:8093"),
            ("[::1]:8093", "[0:0::1]:8093"),
        ] {
            let (text, ok) = operators_report(Some(&ss(public, Some(op))), Some(&LOADED));
            assert!(!ok, "{public} {op}");
            assert!(
                text.contains(&format!(
                    "WARNING: [session_server] operator_listen_address is the same as listen_address ({public})"
                )),
                "{text}"
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
        let (text, ok) = operators_report(Some(&s), Some(&open));
        assert!(!ok);
        assert!(
            text.contains("WARNING: [session_server] operators_file /etc/termgate/operators.toml is readable or writable by group or others (mode 0644): run chmod 600"),
            "{text}"
        );
        let group = OperatorsFileState::Loaded {
            operators: 1,
            mode: 0o640,
        };
        assert!(!operators_report(Some(&s), Some(&group)).1);
        let (text, ok) = operators_report(Some(&s), Some(&OperatorsFileState::Missing));
        assert!(!ok);
        assert!(
            text.contains("does not exist: no operator can authenticate"),
            "{text}"
        );
        let broken = OperatorsFileState::Broken("ops.toml:3: role: unsupported".into());
        let (text, _) = operators_report(Some(&s), Some(&broken));
        assert!(
            text.contains(
                "WARNING: ops.toml:3: role: unsupported (the runner will refuse to start)"
            ),
            "{text}"
        );
        let mut rel = s.clone();
        rel.operators_file = Some("operators.toml".into());
        let (text, ok) = operators_report(Some(&rel), Some(&LOADED));
        assert!(!ok);
        assert!(
            text.contains("operators_file operators.toml is relative"),
            "{text}"
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

    #[test]
    fn certificate_fingerprint_when_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut cfg = config::Config::default();
        assert_eq!(certificate_report(&cfg, &path), "");
        cfg.session_server = Some(config::SessionServer {
            listen_address: Some("127.0.0.1:0".into()),
            ..Default::default()
        });
        let none = certificate_report(&cfg, &path);
        assert!(none.contains("none saved yet"), "{none}");
        let session = cfg.session_server.clone().unwrap();
        let tls = tls::load_or_generate(&session, Some(dir.path())).unwrap();
        let text = certificate_report(&cfg, &path);
        assert!(text.contains("(generated)"), "{text}");
        assert!(
            text.contains(&format!("fingerprint {}", tls.fingerprint)),
            "{text}"
        );
        std::fs::write(dir.path().join(tls::CERT_FILE_NAME), "junk").unwrap();
        let bad = certificate_report(&cfg, &path);
        assert!(bad.contains("no PEM certificate"), "{bad}");
    }
}
