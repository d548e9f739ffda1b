//! The job container's security and resource settings: hardened defaults,
//! each overridable in `[runners.docker]`, and the `doctor` checks that say
//! when a config weakens them.
//!
//! Defaults (all visible in `docker inspect`):
//! - not privileged (`privileged = true` overrides);
//! - `no-new-privileges` in `SecurityOpt` (`security_opt =
//!   ["no-new-privileges:false"]` overrides);
//! - `CapDrop = ["ALL"]` and `CapAdd` = [`MINIMAL_CAPS`] (minus `cap_drop`,
//!   plus `cap_add`);
//! - `PidsLimit` = [`DEFAULT_PIDS_LIMIT`] (`pids_limit = 0` or `-1`:
//!   unlimited);
//! - `Memory`/`NanoCpus` from `memory`/`cpus`;
//! - a per-job bridge network, never the host's (`network_mode` overrides);
//! - no volume but the job's own (`volumes` adds binds).

use std::collections::HashMap;

use bollard::models::HostConfig;

use crate::config::DockerConfig;

/// Capabilities a job keeps after `CapDrop=ALL`: what package managers and
/// build tools running as root need (file ownership, setuid helpers,
/// signalling their own processes, binding low ports).
pub const MINIMAL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
];

/// Default container pids limit.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

pub const NO_NEW_PRIVILEGES: &str = "no-new-privileges";

/// A `[runners.docker]` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[runners.docker] {key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn cap_name(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
}

/// The capabilities added back after dropping all.
pub fn capabilities(cfg: &DockerConfig) -> Vec<String> {
    let dropped: Vec<String> = cfg.cap_drop.iter().map(|c| cap_name(c)).collect();
    let mut caps: Vec<String> = Vec::new();
    if !dropped.iter().any(|d| d == "ALL") {
        caps.extend(
            MINIMAL_CAPS
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !dropped.contains(c)),
        );
    }
    for c in &cfg.cap_add {
        let c = cap_name(c);
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps
}

/// Is `no-new-privileges` explicitly switched off?
fn nnp_disabled(cfg: &DockerConfig) -> bool {
    cfg.security_opt.iter().any(|o| {
        let o = o.trim();
        o.starts_with(NO_NEW_PRIVILEGES)
            && matches!(
                o[NO_NEW_PRIVILEGES.len()..].trim_start_matches([':', '=']),
                "false" | "0"
            )
    })
}

pub fn security_opts(cfg: &DockerConfig) -> Vec<String> {
    let mut opts = cfg.security_opt.clone();
    if !opts.iter().any(|o| o.trim().starts_with(NO_NEW_PRIVILEGES)) {
        opts.push(NO_NEW_PRIVILEGES.to_string());
    }
    opts
}

/// `pids_limit`, with 0 and negatives meaning unlimited (Docker's `-1`).
pub fn pids_limit(cfg: &DockerConfig) -> i64 {
    match cfg.pids_limit {
        None => DEFAULT_PIDS_LIMIT,
        Some(n) if n <= 0 => -1,
        Some(n) => n,
    }
}

/// Docker's `RAMInBytes`: `512m`, `1g`, `1.5GiB`, `1048576` (binary units).
pub fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && v >= 0.0 && v < i64::MAX as f64).then_some(v as i64)
}

/// `cpus = "1.5"` → NanoCpus.
pub fn parse_cpus(s: &str) -> Option<i64> {
    let n: f64 = s.trim().parse().ok()?;
    (n.is_finite() && n > 0.0 && n < 1e9).then_some((n * 1e9).round() as i64)
}

fn bytes_key(key: &'static str, v: &Option<String>) -> Result<Option<i64>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s) => parse_bytes(s).map(Some).ok_or_else(|| ConfigError {
            key,
            message: format!("invalid size {s:?} (for example 512m, 2g)"),
        }),
    }
}

/// The container's `HostConfig` (without network and job volumes, which
/// the container module adds).
pub fn host_config(cfg: &DockerConfig) -> Result<HostConfig, ConfigError> {
    let nano_cpus = match &cfg.cpus {
        None => None,
        Some(s) => Some(parse_cpus(s).ok_or_else(|| ConfigError {
            key: "cpus",
            message: format!("invalid number of CPUs {s:?}"),
        })?),
    };
    let map = |m: &std::collections::BTreeMap<String, String>| {
        (!m.is_empty()).then(|| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        })
    };
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    Ok(HostConfig {
        privileged: Some(cfg.privileged),
        cap_drop: Some(vec!["ALL".to_string()]),
        cap_add: Some(capabilities(cfg)),
        security_opt: Some(security_opts(cfg)),
        pids_limit: Some(pids_limit(cfg)),
        memory: bytes_key("memory", &cfg.memory)?,
        memory_swap: bytes_key("memory_swap", &cfg.memory_swap)?,
        memory_reservation: bytes_key("memory_reservation", &cfg.memory_reservation)?,
        nano_cpus,
        cpuset_cpus: cfg.cpuset_cpus.clone(),
        cpu_shares: cfg.cpu_shares,
        oom_kill_disable: cfg.oom_kill_disable.then_some(true),
        oom_score_adj: cfg.oom_score_adjust,
        dns: nonempty(&cfg.dns),
        dns_search: nonempty(&cfg.dns_search),
        extra_hosts: nonempty(&cfg.extra_hosts),
        group_add: nonempty(&cfg.group_add),
        userns_mode: cfg.userns_mode.clone(),
        ipc_mode: cfg.ipcmode.clone(),
        runtime: cfg.runtime.clone(),
        shm_size: cfg.shm_size.map(|s| s as i64),
        tmpfs: map(&cfg.tmpfs),
        sysctls: map(&cfg.sysctls),
        volume_driver: cfg.volume_driver.clone(),
        volumes_from: nonempty(&cfg.volumes_from),
        ..Default::default()
    })
}

/// One `doctor` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub pass: bool,
    /// What the config sets (or the default in force).
    pub detail: String,
}

fn is_docker_socket(volume: &str) -> bool {
    volume
        .split(':')
        .next()
        .is_some_and(|host| host.ends_with("docker.sock") || host.ends_with("/run/docker"))
}

/// The hardening checks for one runner's Docker config.
pub fn checks(cfg: &DockerConfig) -> Vec<Check> {
    let extra: Vec<String> = capabilities(cfg)
        .into_iter()
        .filter(|c| !MINIMAL_CAPS.contains(&c.as_str()))
        .collect();
    let network = cfg.network_mode.clone().unwrap_or_default();
    let sock: Vec<&String> = cfg.volumes.iter().filter(|v| is_docker_socket(v)).collect();
    let pids = pids_limit(cfg);
    vec![
        Check {
            name: "not privileged",
            pass: !cfg.privileged,
            detail: format!("privileged = {}", cfg.privileged),
        },
        Check {
            name: "minimal capabilities",
            pass: extra.is_empty(),
            detail: if extra.is_empty() {
                format!("CapDrop=ALL, CapAdd={}", capabilities(cfg).join(","))
            } else {
                format!("cap_add beyond the minimal set: {}", extra.join(","))
            },
        },
        Check {
            name: "no-new-privileges",
            pass: !nnp_disabled(cfg),
            detail: format!("security_opt = {:?}", security_opts(cfg)),
        },
        Check {
            name: "no host network",
            pass: network != "host",
            detail: if network.is_empty() {
                "per-job bridge network".into()
            } else {
                format!("network_mode = {network:?}")
            },
        },
        Check {
            name: "no Docker socket",
            pass: sock.is_empty(),
            detail: if sock.is_empty() {
                "no docker.sock volume".into()
            } else {
                format!("volumes: {sock:?}")
            },
        },
        Check {
            name: "pids limit",
            pass: pids > 0,
            detail: if pids > 0 {
                format!("pids_limit = {pids}")
            } else {
                "pids_limit = unlimited".into()
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_hardened() {
        let cfg = DockerConfig::default();
        let hc = host_config(&cfg).unwrap();
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(hc.cap_add.unwrap().len(), MINIMAL_CAPS.len());
        assert_eq!(hc.security_opt, Some(vec![NO_NEW_PRIVILEGES.to_string()]));
        assert_eq!(hc.pids_limit, Some(DEFAULT_PIDS_LIMIT));
        assert!(checks(&cfg).iter().all(|c| c.pass), "{:?}", checks(&cfg));
    }

    #[test]
    fn overrides_and_warnings() {
        let cfg = DockerConfig {
            privileged: true,
            cap_add: vec!["SYS_ADMIN".into(), "cap_chown".into()],
            cap_drop: vec!["KILL".into()],
            security_opt: vec!["no-new-privileges:false".into()],
            network_mode: Some("host".into()),
            volumes: vec!["/var/run/docker.sock:/var/run/docker.sock".into()],
            pids_limit: Some(0),
            memory: Some("512m".into()),
            cpus: Some("1.5".into()),
            ..Default::default()
        };
        let hc = host_config(&cfg).unwrap();
        let caps = hc.cap_add.unwrap();
        assert!(caps.contains(&"SYS_ADMIN".to_string()) && !caps.contains(&"KILL".to_string()));
        assert_eq!(caps.iter().filter(|c| *c == "CHOWN").count(), 1);
        assert_eq!(
            hc.security_opt,
            Some(vec!["no-new-privileges:false".into()])
        );
        assert_eq!(hc.pids_limit, Some(-1));
        assert_eq!(hc.memory, Some(512 * 1024 * 1024));
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        let failed: Vec<_> = checks(&cfg).into_iter().filter(|c| !c.pass).collect();
        assert_eq!(failed.len(), 6, "{failed:?}");
    }

    #[test]
    fn other_security_opts_keep_no_new_privileges() {
        let cfg = DockerConfig {
            security_opt: vec!["seccomp=unconfined".into()],
            ..Default::default()
        };
        assert_eq!(
            security_opts(&cfg),
            vec!["seccomp=unconfined".to_string(), NO_NEW_PRIVILEGES.into()]
        );
        assert!(checks(&cfg).iter().all(|c| c.pass));
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("1k"), Some(1024));
        assert_eq!(parse_bytes("1.5GiB"), Some(1536 * 1024 * 1024));
        assert_eq!(parse_bytes("12x"), None);
        assert_eq!(parse_cpus("0.5"), Some(500_000_000));
        assert_eq!(parse_cpus("-1"), None);
        let bad = DockerConfig {
            memory: Some("lots".into()),
            ..Default::default()
        };
        assert_eq!(host_config(&bad).unwrap_err().key, "memory");
    }
}
