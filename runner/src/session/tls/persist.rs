//! The generated certificate and key, kept beside `config.toml` so the
//! session server presents the same certificate after a restart (the
//! console pins its fingerprint). Reused while it is valid for more than
//! [`RENEW_WITHIN_DAYS`] and its SAN still names the public host; a new one
//! replaces it otherwise. A file that cannot be read or parsed is a warning,
//! never a failed start; neither is a directory that cannot be written (the
//! new certificate then lives for this run only).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use super::{fingerprint, generate, server_config, SessionTls};
use crate::config;
use termgate::logschema::{self as schema, msg};

/// The certificate (PEM), beside `config.toml`.
pub const CERT_FILE_NAME: &str = "session-server.crt";
/// Its private key (PKCS#8 PEM), mode 0600.
pub const KEY_FILE_NAME: &str = "session-server.key";
/// A saved certificate that expires within this many days is replaced.
pub const RENEW_WITHIN_DAYS: i64 = 7;

/// `(certificate, key)` paths in `dir`.
pub fn persisted_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(CERT_FILE_NAME), dir.join(KEY_FILE_NAME))
}

/// The saved pair when it is still good at `now` for `host`, else a new
/// one (saved when the directory allows). Fails only when no certificate
/// can be made at all.
pub(super) fn load_or_create(
    dir: &Path,
    host: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<SessionTls> {
    let (cert_path, key_path) = persisted_paths(dir);
    let why_new = match read_pair(&cert_path, &key_path) {
        Ok(None) => "no saved certificate".to_string(),
        Ok(Some(saved)) => match saved.stale(host, now) {
            None => {
                tracing::info!(
                    { schema::FINGERPRINT } = %saved.tls.fingerprint,
                    { schema::PATH } = %cert_path.display(),
                    "{}",
                    msg::SESSION_CERT_REUSED
                );
                return Ok(saved.tls);
            }
            Some(reason) => reason,
        },
        Err(e) => {
            tracing::warn!(
                { schema::PATH } = %cert_path.display(),
                { schema::ERROR } = format!("{e:#}"),
                "{}",
                msg::SESSION_CERT_UNUSABLE
            );
            format!("the saved certificate is unusable: {e:#}")
        }
    };
    let new = generate(host, now)?;
    match save(&cert_path, &key_path, &new.tls.cert_pem, &new.key_pem) {
        Ok(()) => tracing::info!(
            { schema::FINGERPRINT } = %new.tls.fingerprint,
            { schema::PATH } = %cert_path.display(),
            { schema::REASON } = %why_new,
            "{}",
            msg::SESSION_CERT_GENERATED
        ),
        Err(e) => {
            tracing::warn!(
                { schema::PATH } = %cert_path.display(),
                { schema::ERROR } = format!("{e:#}"),
                "{}",
                msg::SESSION_CERT_NOT_SAVED
            );
            tracing::info!(
                { schema::FINGERPRINT } = %new.tls.fingerprint,
                { schema::REASON } = %why_new,
                "{}",
                msg::SESSION_CERT_GENERATED
            );
        }
    }
    Ok(new.tls)
}

/// The key first: a crash between the two writes leaves a pair that does
/// not match, which the next start replaces.
fn save(cert_path: &Path, key_path: &Path, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
    config::write_atomic(key_path, key_pem.as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    config::write_atomic(cert_path, cert_pem.as_bytes())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(())
}

/// A saved pair that loads, with what decides whether it is reused.
struct Saved {
    tls: SessionTls,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    sans: Vec<San>,
}

#[derive(Debug, PartialEq, Eq)]
enum San {
    Dns(String),
    Ip(IpAddr),
    Other,
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Other => f.write_str("other"),
        }
    }
}

impl Saved {
    /// Why this pair is not reused at `now` for `host`; `None` to reuse it.
    fn stale(&self, host: &str, now: DateTime<Utc>) -> Option<String> {
        let left = self.not_after - now;
        if left < chrono::Duration::days(RENEW_WITHIN_DAYS) {
            return Some(format!(
                "the saved certificate expires {} (within {RENEW_WITHIN_DAYS} days)",
                self.not_after.format("%Y-%m-%d")
            ));
        }
        if self.not_before > now {
            return Some(format!(
                "the saved certificate is not valid before {}",
                self.not_before.format("%Y-%m-%d")
            ));
        }
        let want = match host.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(host.to_ascii_lowercase()),
        };
        if self.sans != [want] {
            let had: Vec<String> = self.sans.iter().map(ToString::to_string).collect();
            return Some(format!(
                "the saved certificate is for {} but the public host is now {host}",
                if had.is_empty() {
                    "no host".to_string()
                } else {
                    had.join(", ")
                }
            ));
        }
        None
    }
}

/// `Ok(None)` when neither file exists; an error when one is missing or
/// either does not parse or they do not belong together.
fn read_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<Option<Saved>> {
    if !cert_path.exists() && !key_path.exists() {
        return Ok(None);
    }
    let cert_pem = std::fs::read_to_string(cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?;
    let key_pem =
        std::fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    let [der] = certs.as_slice() else {
        bail!(
            "{} holds {} certificates, expected one",
            cert_path.display(),
            certs.len()
        );
    };
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| anyhow::anyhow!("parsing the certificate in {}: {e}", cert_path.display()))?;
    let validity = cert.validity();
    let time = |t: i64| {
        DateTime::<Utc>::from_timestamp(t, 0)
            .with_context(|| format!("a validity date out of range in {}", cert_path.display()))
    };
    let not_before = time(validity.not_before.timestamp())?;
    let not_after = time(validity.not_after.timestamp())?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().map(san).collect(),
        Ok(None) => Vec::new(),
        Err(e) => bail!("parsing the SAN in {}: {e}", cert_path.display()),
    };
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("parsing {}", key_path.display()))?
        .with_context(|| format!("no PEM private key found in {}", key_path.display()))?;
    let server_config = server_config(vec![der.clone()], key).with_context(|| {
        format!(
            "{} does not belong to {}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(Some(Saved {
        tls: SessionTls {
            server_config,
            fingerprint: fingerprint(der),
            not_after: not_after.timestamp(),
            cert_pem,
        },
        not_before,
        not_after,
        sans,
    }))
}

fn san(name: &GeneralName<'_>) -> San {
    match name {
        GeneralName::DNSName(d) => San::Dns(d.to_ascii_lowercase()),
        GeneralName::IPAddress(b) => match <[u8; 4]>::try_from(*b) {
            Ok(v4) => San::Ip(IpAddr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*b) {
                Ok(v6) => San::Ip(IpAddr::from(v6)),
                Err(_) => San::Other,
            },
        },
        _ => San::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn cfg(advertise: &str) -> config::SessionServer {
        config::SessionServer {
            listen_address: Some("127.0.0.1:0".into()),
            advertise_address: Some(advertise.into()),
            ..Default::default()
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn load(dir: &Path, advertise: &str) -> SessionTls {
        super::super::load_or_generate(&cfg(advertise), Some(dir)).unwrap()
    }

    #[test]
    fn saved_pair_is_reused_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(dir.path(), "127.0.0.1:8093");
        assert!(first.fingerprint.starts_with("sha256:"), "{first:?}");
        let (cert, key) = persisted_paths(dir.path());
        assert_eq!(mode(&cert), 0o600);
        assert_eq!(mode(&key), 0o600);
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), first.cert_pem);
        let second = load(dir.path(), "127.0.0.1:8093");
        assert_eq!(second.fingerprint, first.fingerprint);
        assert_eq!(second.cert_pem, first.cert_pem);
        assert_eq!(
            super::super::fingerprint_of_pem_file(&cert).unwrap(),
            first.fingerprint
        );
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_new_public_host_gets_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(dir.path(), "runner-a.tld:8093");
        assert_eq!(
            load(dir.path(), "RUNNER-A.tld:8093").fingerprint,
            first.fingerprint
        );
        let second = load(dir.path(), "runner-b.tld:8093");
        assert_ne!(second.fingerprint, first.fingerprint);
        // Saved: the next start reuses the new one.
        assert_eq!(
            load(dir.path(), "runner-b.tld:8093").fingerprint,
            second.fingerprint
        );
        let third = load(dir.path(), "192.0.2.7:8093");
        assert_ne!(third.fingerprint, second.fingerprint);
        assert_eq!(
            load(dir.path(), "192.0.2.7:1").fingerprint,
            third.fingerprint
        );
    }

    #[test]
    fn a_certificate_near_expiry_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let first = load_or_create(dir.path(), "127.0.0.1", now).unwrap();
        // Valid until 730 days after today: 8 days before that it is kept,
        // 6 days before that it is replaced.
        let keep = now + chrono::Duration::days(730 - 8);
        let again = load_or_create(dir.path(), "127.0.0.1", keep).unwrap();
        assert_eq!(again.fingerprint, first.fingerprint);
        let renew = now + chrono::Duration::days(730 - 6);
        let renewed = load_or_create(dir.path(), "127.0.0.1", renew).unwrap();
        assert_ne!(renewed.fingerprint, first.fingerprint);
        // The renewed one is valid for two more years from then.
        let saved = read_pair(
            &persisted_paths(dir.path()).0,
            &persisted_paths(dir.path()).1,
        )
        .unwrap()
        .unwrap();
        assert!(saved.not_after - renew > chrono::Duration::days(700));
        // A clock set back before its start: replaced too.
        let past = now - chrono::Duration::days(30);
        let back = load_or_create(dir.path(), "127.0.0.1", past).unwrap();
        assert_ne!(back.fingerprint, renewed.fingerprint);
    }

    #[test]
    fn a_corrupt_or_incomplete_pair_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = persisted_paths(dir.path());
        let first = load(dir.path(), "127.0.0.1:8093");

        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
        let second = load(dir.path(), "127.0.0.1:8093");
        assert_ne!(second.fingerprint, first.fingerprint);
        assert_eq!(mode(&cert), 0o600);

        std::fs::remove_file(&key).unwrap();
        let third = load(dir.path(), "127.0.0.1:8093");
        assert_ne!(third.fingerprint, second.fingerprint);
        assert!(key.exists());

        // A key of another certificate.
        let other = tempfile::tempdir().unwrap();
        load(other.path(), "127.0.0.1:8093");
        std::fs::copy(persisted_paths(other.path()).1, &key).unwrap();
        let e = read_pair(&cert, &key).err().unwrap();
        assert!(format!("{e:#}").contains("does not belong"), "{e:#}");
        let fourth = load(dir.path(), "127.0.0.1:8093");
        assert_ne!(fourth.fingerprint, third.fingerprint);
        assert_eq!(
            load(dir.path(), "127.0.0.1:8093").fingerprint,
            fourth.fingerprint
        );

        // Unreadable (a directory where the file should be).
        std::fs::remove_file(&cert).unwrap();
        std::fs::create_dir(&cert).unwrap();
        assert!(read_pair(&cert, &key).is_err());
    }

    #[test]
    fn an_unwritable_directory_still_starts_with_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be: nothing can be written.
        let not_a_dir = dir.path().join("config.toml");
        std::fs::write(&not_a_dir, "").unwrap();
        let a = load(&not_a_dir, "127.0.0.1:8093");
        let b = load(&not_a_dir, "127.0.0.1:8093");
        assert_ne!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn cert_file_wins_over_the_saved_pair() {
        let dir = tempfile::tempdir().unwrap();
        let saved = load(dir.path(), "127.0.0.1:8093");
        let own = tempfile::tempdir().unwrap();
        let generated = load(own.path(), "files.example:8093");
        let (cp, kp) = persisted_paths(own.path());
        let mut c = cfg("127.0.0.1:8093");
        c.cert_file = Some(cp);
        c.key_file = Some(kp);
        let tls = super::super::load_or_generate(&c, Some(dir.path())).unwrap();
        assert_eq!(tls.fingerprint, generated.fingerprint);
        assert_ne!(tls.fingerprint, saved.fingerprint);
    }
}
