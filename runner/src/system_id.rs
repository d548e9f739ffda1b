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

/// The directory `config.toml` is in (`.` for a bare file name).
fn config_dir(config_path: &Path) -> &Path {
    config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The ID stored next to `config_path`, if there is a valid one.
fn read(config_path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(config_dir(config_path).join(FILE_NAME)).ok()?;
    let s = s.trim();
    valid(s).then(|| s.to_string())
}

/// The ID stored next to `config_path`, else a generated one that is not
/// written: for commands that only look (`verify`), so that pointing them
/// at a config they do not own (e.g. `assets/config.example.toml`) leaves
/// its directory as it was.
pub fn load_or_generate(config_path: &Path) -> String {
    read(config_path).unwrap_or_else(generate)
}

/// Read the ID next to `config_path`, creating it when missing.
pub fn load_or_create(config_path: &Path) -> Result<String> {
    if let Some(id) = read(config_path) {
        return Ok(id);
    }
    let dir = config_dir(config_path);
    let path = dir.join(FILE_NAME);
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
        assert_eq!(load_or_generate(&cfg), a);
    }

    #[test]
    fn looking_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        let id = load_or_generate(&cfg);
        assert!(valid(&id), "{id}");
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
