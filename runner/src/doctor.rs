//! `termgate-runner doctor`: load the config and report, per Docker runner,
//! whether the container hardening defaults are kept (a pass/fail table).

use std::fmt::Write as _;

use anyhow::Result;

use crate::cli::ConfigArg;
use crate::config;
use crate::executor::docker::hardening;

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

pub fn run(args: ConfigArg) -> Result<()> {
    let path = args.path();
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        println!("WARNING: {w}");
    }
    let (text, ok) = report(&loaded.config);
    print!("{text}");
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
}
