//! The runner manager's system ID, stored in `.runner_system_id` next to
//! `config.toml` (as gitlab-runner does): `s_` + 12 hex derived from the
//! machine id, else `r_` + 12 random alphanumerics.

use std::path::Path;

use anyhow::{Context, Result};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

pub const FILE_NAME: &str = ".runner_system_id";

pub fn generate() -> String {
    if let Ok(mid) = std::fs::read_to_string("/etc/machine-id") {
        let mid = mid.trim();
        if !mid.is_empty() {
            let mut h = Sha256::new();
            h.update(b"termgate-runner system id\0");
            h.update(mid.as_bytes());
            return format!("s_{}", &hex::encode(h.finalize())[..12]);
        }
    }
    let r: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    format!("r_{r}")
}

/// Read the ID next to `config_path`, creating it when missing.
pub fn load_or_create(config_path: &Path) -> Result<String> {
    let dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = dir.join(FILE_NAME);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if valid(s) {
            return Ok(s.to_string());
        }
    }
    let id = generate();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&path, format!("{id}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn valid(s: &str) -> bool {
    (s.starts_with("s_") || s.starts_with("r_"))
        && s.len() == 14
        && s[2..].chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        let a = load_or_create(&cfg).unwrap();
        assert!(valid(&a), "{a}");
        assert_eq!(load_or_create(&cfg).unwrap(), a);
    }
}
