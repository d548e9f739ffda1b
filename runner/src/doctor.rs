//! `termgate-runner doctor`: load the config and report, per Docker runner,
//! whether the container hardening defaults are kept (a pass/fail table),
//! and the session server certificate's fingerprint (to compare out of band
//! with what `termgate trust` pinned).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::cli::ConfigArg;
use crate::config;
use crate::executor::docker::hardening;
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
    print!("{}", certificate_report(&loaded.config, &path));
    println!(
        "{}",
        if ok {
            "Docker hardening: all checks passed"
        } else {
            "Docker hardening: some checks FAILED (see warnings)"
        }
    );
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
