//! Writing `config.toml`: validated before it is written, atomically
//! (temporary file + rename), readable by the owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serializer;

use super::{parse, Config, ConfigError};

/// Serializes a timestamp as a TOML date-time (as gitlab-runner writes it),
/// not as a string.
pub(super) fn datetime<S: Serializer>(
    value: &Option<chrono::DateTime<chrono::Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    use serde::Serialize;
    match value {
        Some(t) => {
            let text = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            let dt: toml::value::Datetime = text.parse().map_err(S::Error::custom)?;
            dt.serialize(serializer)
        }
        None => serializer.serialize_none(),
    }
}

/// The TOML text for `cfg`.
pub(super) fn to_toml(cfg: &Config) -> Result<String, ConfigError> {
    toml::to_string(cfg).map_err(|e| ConfigError::Encode(e.to_string()))
}

/// Writes `cfg` to `path` with mode 0600, replacing the file atomically.
/// The text is parsed back first, so a config that would not load is never
/// written.
pub fn save(path: &Path, cfg: &Config) -> Result<(), ConfigError> {
    let text = to_toml(cfg)?;
    parse(&text, &path.display().to_string())?;
    write_atomic(path, text.as_bytes()).map_err(|error| ConfigError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// Writes `data` to `path` readable by the owner only (0600), replacing it
/// atomically (temporary file in the same directory, fsync, rename); the
/// directory is created 0700 when missing.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.toml".to_string());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));

    let result = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        // Make the rename durable; not every platform can open a directory.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // A stale temporary file from a crashed writer is replaced.
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testdata::{FULL_RUNNER, SEED};
    use crate::config::{load, RunnerConfig, Secret};

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        let original = parse(FULL_RUNNER, "config.toml").unwrap().config;
        save(&path, &original).unwrap();

        let again = load(&path).unwrap();
        assert_eq!(again.config, original);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("token_obtained_at = 2024-05-01T10:00:00Z"),
            "{text}"
        );
        assert!(text.contains("tls-ca-file = \"/etc/ca.pem\""), "{text}");
        assert!(text.contains("SecretKey = \"s3-secret\""), "{text}");
        assert!(toml::from_str::<toml::Table>(&text).is_ok());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.toml")]);
    }

    #[test]
    fn save_replaces_and_tightens_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 9\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut cfg = parse(SEED, "seed").unwrap().config;
        cfg.runners.push(RunnerConfig {
            name: "new".into(),
            url: "https://gitlab.example.com".into(),
            token: Secret::new("glrt-abc"),
            ..RunnerConfig::default()
        });
        save(&path, &cfg).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.config, cfg);
        // The alias was written back under its current name.
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn save_refuses_a_config_that_would_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let cfg = Config {
            concurrent: 0,
            ..Config::default()
        };
        let err = save(&path, &cfg).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn every_loadable_fixture_round_trips_with_its_ignored_sections() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            "test-config.toml",
            "docs-session-server.toml",
            "lint/valid.toml",
            "docs-register-template-merged.toml",
            "docs-libvirt-custom-executor.toml",
            "docs-machine-shutdown-drain.toml",
        ];
        for name in cases {
            let (text, origin) = crate::config::testdata::fixture(name);
            let first = parse(&text, &origin).unwrap();
            let path = dir.path().join(&origin);
            save(&path, &first.config).unwrap();
            let again = load(&path).unwrap();
            assert_eq!(again.config, first.config, "{name}");
            // The same keys are still reported as ignored after the rewrite.
            let ignored = |w: &[String]| {
                let mut items: Vec<String> = w
                    .iter()
                    .filter_map(|s| s.split_once("ignored: "))
                    .flat_map(|(_, list)| list.split(", ").map(str::to_string))
                    .collect();
                items.sort();
                items
            };
            assert_eq!(ignored(&first.warnings), ignored(&again.warnings), "{name}");
            assert_eq!(first.warnings.len(), again.warnings.len(), "{name}");
        }
    }
}
