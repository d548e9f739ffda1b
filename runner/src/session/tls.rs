//! The session server's TLS: a self-signed certificate (gitlab-runner
//! `helpers/certificate/x509.go`) kept beside `config.toml` and reused
//! while it is valid ([`persist`]), or the operator's own
//! `cert_file`/`key_file`; plus the advertise-address checks behind
//! `validate_advertise`.
//!
//! Differences from upstream, on purpose:
//! - The key is ECDSA P-256 (rcgen with ring cannot make RSA keys); Go's
//!   `crypto/tls` (Workhorse) verifies it the same way.
//! - An address without a port (`runner.example.com`) still names the SAN
//!   host; upstream's `net.SplitHostPort` rejects it and falls back to the
//!   listen address.
//! - Upstream makes a new certificate at every start; this one survives
//!   restarts so the console can pin it (`termgate trust`).

mod persist;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};

use crate::config;
use termgate::logschema::{self as schema, msg};

pub use persist::{persisted_paths, CERT_FILE_NAME, KEY_FILE_NAME, RENEW_WITHIN_DAYS};

/// What the session server needs to speak TLS, and the PEM sent to GitLab as
/// `session.certificate` (Workhorse's only root for the wss dial).
#[derive(Clone)]
pub struct SessionTls {
    pub server_config: Arc<rustls::ServerConfig>,
    pub cert_pem: String,
    /// SHA-256 of the leaf certificate's DER, as
    /// [`termgate::operator::format_fingerprint`] writes it (what the
    /// console pins).
    pub fingerprint: String,
    /// The leaf certificate's `notAfter` (Unix seconds):
    /// `gitlab_runner_session_certificate_expiry_timestamp_seconds`.
    pub not_after: i64,
}

impl std::fmt::Debug for SessionTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTls")
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Load `cert_file`/`key_file` (PEM) when both are set. Else a self-signed
/// certificate whose one SAN is the host of the advertise address (else the
/// listen address): with `persist_dir` (the config file's directory) the
/// one saved there while it is still good, else a new one saved there; with
/// no `persist_dir` a new one in memory.
pub fn load_or_generate(
    cfg: &config::SessionServer,
    persist_dir: Option<&Path>,
) -> anyhow::Result<SessionTls> {
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            let tls = load(cert, key)?;
            tracing::info!(
                { schema::FINGERPRINT } = %tls.fingerprint,
                { schema::PATH } = %cert.display(),
                "{}",
                msg::SESSION_CERT_LOADED
            );
            Ok(tls)
        }
        (Some(_), None) => bail!("[session_server] cert_file is set but key_file is not"),
        (None, Some(_)) => bail!("[session_server] key_file is set but cert_file is not"),
        (None, None) => {
            let host = public_host(cfg)?;
            match persist_dir {
                Some(dir) => persist::load_or_create(dir, &host, chrono::Utc::now()),
                None => {
                    let tls = generate(&host, chrono::Utc::now())?.tls;
                    tracing::info!(
                        { schema::FINGERPRINT } = %tls.fingerprint,
                        "{}",
                        msg::SESSION_CERT_GENERATED
                    );
                    Ok(tls)
                }
            }
        }
    }
}

/// [`termgate::operator::format_fingerprint`] of the SHA-256 of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    termgate::operator::format_fingerprint(&Sha256::digest(der))
}

/// The `notAfter` of a DER certificate (Unix seconds).
fn not_after_of(der: &[u8]) -> anyhow::Result<i64> {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| anyhow::anyhow!("parsing the certificate's validity: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// The fingerprint of the first certificate in a PEM file (`doctor`).
pub fn fingerprint_of_pem_file(path: &Path) -> anyhow::Result<String> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .with_context(|| format!("no PEM certificate found in {}", path.display()))?
        .with_context(|| format!("parsing PEM certificates in {}", path.display()))?;
    Ok(fingerprint(&der))
}

/// The host the certificate is made for: the first of `advertise_address`
/// then `listen_address` with a non-empty host (upstream `getPublicHost`).
pub fn public_host(cfg: &config::SessionServer) -> anyhow::Result<String> {
    for address in [&cfg.advertise_address, &cfg.listen_address]
        .into_iter()
        .flatten()
    {
        if address.is_empty() {
            continue;
        }
        match split_host_port(address) {
            Some((host, _)) if !host.is_empty() => return Ok(host.to_string()),
            Some(_) => {}
            None => {
                tracing::warn!({ schema::ADDRESS } = %address, "{}", msg::SESSION_ADDRESS_INVALID)
            }
        }
    }
    bail!("no valid address provided")
}

/// Split `host[:port]` / `[v6][:port]`; the host is unbracketed. `None` for
/// something that is not an address (a scheme, a path, a bad port).
pub fn split_host_port(address: &str) -> Option<(&str, Option<u16>)> {
    if address.contains("://") || address.contains('/') {
        return None;
    }
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match address.matches(':').count() {
        0 => Some((address, None)),
        1 => {
            let (host, port) = address.split_once(':')?;
            Some((host, Some(port.parse().ok()?)))
        }
        // A bare IPv6 address.
        _ => address.parse::<Ipv6Addr>().ok().map(|_| (address, None)),
    }
}

/// A new certificate and the PEM of its key.
struct Generated {
    tls: SessionTls,
    key_pem: String,
}

/// Valid from the day before `now` (clock skew) for 2 years, like upstream.
fn generate(host: &str, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Generated> {
    let key = KeyPair::generate().context("generating the session server key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "GitLab Runner");
    params.distinguished_name = dn;
    params.subject_alt_names = vec![match host.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            host.to_string()
                .try_into()
                .with_context(|| format!("{host:?} is not a valid DNS name"))?,
        ),
    }];
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let today = now.date_naive();
    let from = today - chrono::Days::new(1);
    let until = today + chrono::Days::new(730);
    let (y, m, d) = ymd(from)?;
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(until)?;
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let cert = params
        .self_signed(&key)
        .context("self-signing the session server certificate")?;
    let cert_pem = cert.pem();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(Generated {
        tls: SessionTls {
            server_config: server_config(vec![cert.der().clone()], key_der)?,
            fingerprint: fingerprint(cert.der()),
            not_after: not_after_of(cert.der())?,
            cert_pem,
        },
        key_pem: key.serialize_pem(),
    })
}

fn ymd(d: chrono::NaiveDate) -> anyhow::Result<(i32, u8, u8)> {
    use chrono::Datelike as _;
    let month = u8::try_from(d.month()).context("month")?;
    let day = u8::try_from(d.day()).context("day")?;
    Ok((d.year(), month, day))
}

fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<SessionTls> {
    let cert_pem = std::fs::read_to_string(cert_file)
        .with_context(|| format!("reading [session_server] cert_file {}", cert_file.display()))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .with_context(|| format!("parsing PEM certificates in {}", cert_file.display()))?;
    if certs.is_empty() {
        bail!("no PEM certificate found in {}", cert_file.display());
    }
    let key_pem = std::fs::read(key_file)
        .with_context(|| format!("reading [session_server] key_file {}", key_file.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("parsing the PEM private key in {}", key_file.display()))?
        .with_context(|| format!("no PEM private key found in {}", key_file.display()))?;
    let server_config = server_config(certs.clone(), key).with_context(|| {
        format!(
            "certificate {} does not match key {}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    let not_after =
        not_after_of(&certs[0]).with_context(|| format!("in {}", cert_file.display()))?;
    Ok(SessionTls {
        server_config,
        fingerprint: fingerprint(&certs[0]),
        not_after,
        cert_pem,
    })
}

/// TLS 1.2 and 1.3, no client auth, no ALPN (HTTP/1.1 with upgrades).
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building the TLS server configuration")?;
    // No resumption: Workhorse opens one connection per terminal and never
    // resumes, so tickets (two per TLS 1.3 handshake) and the session cache
    // would be work and memory for nothing.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Check the address GitLab will be told (`advertise_address`, else
/// `listen_address`): a scheme is an error (upstream: `url not valid, scheme
/// defined`); an address GitLab will refuse or cannot reach gives warnings.
pub fn validate_advertise(cfg: &config::SessionServer) -> anyhow::Result<Vec<String>> {
    let Some(address) = cfg.effective_advertise_address().filter(|a| !a.is_empty()) else {
        bail!("no valid address provided");
    };
    if address.contains("://") {
        bail!("url not valid, scheme defined: {address:?} (advertise_address is host:port, without https://)");
    }
    let Some((host, _)) = split_host_port(&address) else {
        bail!("session address {address:?} is not a valid host:port");
    };
    let mut warnings = Vec::new();
    let given = if cfg.advertise_address.is_some() {
        "advertise_address"
    } else {
        "listen_address (no advertise_address set)"
    };
    const HINT: &str = "GitLab will answer the job request with 409 Conflict unless the admin \
         setting allow_local_requests_from_web_hooks_and_services is enabled";
    match host_class(host) {
        Some(Class::Unspecified) => warnings.push(format!(
            "[session_server] {given} {address} is the unspecified address: GitLab cannot reach \
             the runner at it at all, and {HINT}; set advertise_address to a routable host:port"
        )),
        Some(class) => warnings.push(format!(
            "[session_server] {given} {address} is a {} address: {HINT}",
            class.name()
        )),
        None => {}
    }
    Ok(warnings)
}

/// What GitLab (its URL blocker) and Workhorse make of a session address's
/// host: `None` for a public IP address or a DNS name other than
/// `localhost` (what a name resolves to is not looked up).
pub fn host_class(host: &str) -> Option<Class> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(Class::Loopback);
    }
    classify(host.parse::<IpAddr>().ok()?)
}

/// An address GitLab does not accept for a session by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Unspecified => "unspecified",
            Class::Loopback => "loopback",
            Class::Private => "private",
            Class::LinkLocal => "link-local",
        }
    }
}

fn classify(ip: IpAddr) -> Option<Class> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let seg0 = v6.segments()[0];
            if v6.is_unspecified() {
                Some(Class::Unspecified)
            } else if v6.is_loopback() {
                Some(Class::Loopback)
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some(Class::Private)
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some(Class::LinkLocal)
            } else {
                None
            }
        }
    }
}

fn classify_v4(v4: Ipv4Addr) -> Option<Class> {
    let [a, b, ..] = v4.octets();
    if v4.is_unspecified() {
        Some(Class::Unspecified)
    } else if v4.is_loopback() {
        Some(Class::Loopback)
    } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918, plus RFC 6598 shared space (GitLab blocks it too).
        Some(Class::Private)
    } else if v4.is_link_local() {
        Some(Class::LinkLocal)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    fn cfg(listen: &str, advertise: Option<&str>) -> config::SessionServer {
        config::SessionServer {
            listen_address: Some(listen.into()),
            advertise_address: advertise.map(Into::into),
            ..Default::default()
        }
    }

    /// A client that trusts only `tls.cert_pem`, speaking `versions`, with
    /// rustls' default in-memory session cache (it resumes when it can).
    fn client_config(
        tls: &SessionTls,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut tls.cert_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(cfg)
    }

    /// A full TLS handshake in memory between the server config and a client
    /// that trusts only `cert_pem` and dials `name`.
    fn handshake(tls: &SessionTls, name: &str) -> Result<(), rustls::Error> {
        let cfg = client_config(tls, rustls::DEFAULT_VERSIONS);
        handshake_with(tls, name, cfg).map(drop)
    }

    /// Handshake in memory, then deliver whatever the server sends after
    /// it (TLS 1.3 session tickets).
    fn handshake_with(
        tls: &SessionTls,
        name: &str,
        client_cfg: Arc<rustls::ClientConfig>,
    ) -> Result<rustls::ClientConnection, rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut client = rustls::ClientConnection::new(client_cfg, name).unwrap();
        let mut server = rustls::ServerConnection::new(tls.server_config.clone()).unwrap();
        let mut buf = Vec::new();
        let mut done = false;
        for _ in 0..10 {
            buf.clear();
            client.write_tls(&mut buf).unwrap();
            let mut rd = buf.as_slice();
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
            }
            server.process_new_packets()?;
            buf.clear();
            server.write_tls(&mut buf).unwrap();
            let mut rd = buf.as_slice();
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            client.process_new_packets()?;
            if done {
                return Ok(client);
            }
            done = !client.is_handshaking() && !server.is_handshaking();
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn sessions_are_never_resumed() {
        // Workhorse dials once per terminal and never resumes: no tickets,
        // no session cache. A client that would resume gets full handshakes.
        let tls = load_or_generate(&cfg("127.0.0.1:0", None), None).unwrap();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let client_cfg = client_config(&tls, &[version]);
            let first = handshake_with(&tls, "127.0.0.1", client_cfg.clone()).unwrap();
            assert_eq!(first.protocol_version(), Some(version.version));
            let second = handshake_with(&tls, "127.0.0.1", client_cfg).unwrap();
            assert_eq!(
                second.handshake_kind(),
                Some(rustls::HandshakeKind::Full),
                "{:?}",
                version.version
            );
        }
    }

    #[test]
    fn san_is_the_advertise_ip() {
        let tls = load_or_generate(&cfg("0.0.0.0:8093", Some("192.0.2.7:8093")), None).unwrap();
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        handshake(&tls, "192.0.2.7").unwrap();
        assert!(handshake(&tls, "192.0.2.8").is_err(), "one SAN only");
        assert!(handshake(&tls, "0.0.0.0").is_err());
    }

    #[test]
    fn san_is_the_advertise_dns_name() {
        let tls =
            load_or_generate(&cfg("[::]:8093", Some("runner-host-name.tld:8093")), None).unwrap();
        handshake(&tls, "runner-host-name.tld").unwrap();
        assert!(handshake(&tls, "other.tld").is_err());
    }

    #[test]
    fn san_falls_back_to_listen_address_even_unspecified() {
        let tls = load_or_generate(&cfg("[::]:8093", None), None).unwrap();
        assert_eq!(public_host(&cfg("[::]:8093", None)).unwrap(), "::");
        handshake(&tls, "::").unwrap();
        let tls = load_or_generate(&cfg("0.0.0.0:8093", Some("")), None).unwrap();
        handshake(&tls, "0.0.0.0").unwrap();
    }

    #[test]
    fn no_address_is_an_error() {
        let c = config::SessionServer::default();
        assert_eq!(
            load_or_generate(&c, None).unwrap_err().to_string(),
            "no valid address provided"
        );
    }

    #[test]
    fn cert_is_a_server_leaf_for_gitlab_runner() {
        let tls = load_or_generate(&cfg("127.0.0.1:0", None), None).unwrap();
        let der = rustls_pemfile::certs(&mut tls.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        // O = UTF8String "GitLab Runner".
        assert!(has(b"\x0c\x0dGitLab Runner"));
        // EKU id-kp-serverAuth (1.3.6.1.5.5.7.3.1).
        assert!(has(&[
            0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01
        ]));
        // Exactly one SAN: iPAddress [7] 127.0.0.1.
        assert!(has(&[0x30, 0x06, 0x87, 0x04, 127, 0, 0, 1]));
        // webpki refuses a CA certificate as the end entity; this handshake
        // also proves it is not one.
        handshake(&tls, "127.0.0.1").unwrap();
    }

    #[test]
    fn cert_is_strict_der_without_an_explicit_default() {
        use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
        let tls = load_or_generate(&cfg("0.0.0.0:8093", Some("192.0.2.7:8093")), None).unwrap();
        let der = rustls_pemfile::certs(&mut tls.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (rest, cert) = X509Certificate::from_der(&der).expect("strict DER");
        assert!(rest.is_empty(), "trailing bytes after the certificate");

        let san = cert.subject_alternative_name().unwrap().expect("a SAN");
        assert_eq!(
            san.value.general_names,
            [GeneralName::IPAddress(&[192, 0, 2, 7])]
        );

        let now = chrono::Utc::now().timestamp();
        let validity = cert.validity();
        let (from, until) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        assert!(
            from <= now && now - from <= 2 * 86_400,
            "not_before {from}, now {now}"
        );
        assert_eq!(tls.not_after, until, "the expiry the gauge exports");
        let days = (until - now) / 86_400;
        assert!((728..=730).contains(&days), "valid for {days} more days");

        // DER forbids encoding a DEFAULT value: no `cA FALSE` (01 01 00).
        // rcgen's `NoCa` leaves the extension out.
        assert!(cert.basic_constraints().unwrap().is_none());
        let basic_constraints = x509_parser::oid_registry::OID_X509_EXT_BASIC_CONSTRAINTS;
        for ext in cert.extensions() {
            if ext.oid == basic_constraints {
                assert!(
                    !ext.value.windows(3).any(|w| w == [0x01, 0x01, 0x00]),
                    "BasicConstraints encodes cA FALSE explicitly"
                );
            }
        }
        let ku = cert.key_usage().unwrap().expect("key usage");
        assert!(ku.value.digital_signature() && ku.value.key_encipherment());
        let eku = cert
            .extended_key_usage()
            .unwrap()
            .expect("extended key usage");
        assert!(eku.value.server_auth);
    }

    #[test]
    fn cert_and_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["files.example".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 4);
        let cert = params.self_signed(&key).unwrap();
        let cp = dir.path().join("cert.pem");
        let kp = dir.path().join("key.pem");
        std::fs::write(&cp, cert.pem()).unwrap();
        std::fs::write(&kp, key.serialize_pem()).unwrap();
        let mut c = cfg("127.0.0.1:0", None);
        c.cert_file = Some(cp.clone());
        c.key_file = Some(kp.clone());
        let tls = load_or_generate(&c, None).unwrap();
        assert_eq!(tls.cert_pem, cert.pem());
        // 2031-05-04T00:00:00Z: what the expiry gauge exports.
        assert_eq!(tls.not_after, 1_935_619_200);
        handshake(&tls, "files.example").unwrap();

        c.key_file = Some(dir.path().join("missing.pem"));
        let e = format!("{:#}", load_or_generate(&c, None).unwrap_err());
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        c.key_file = Some(kp);
        c.cert_file = Some(dir.path().join("empty.pem"));
        let e = format!("{:#}", load_or_generate(&c, None).unwrap_err());
        assert!(
            e.contains("no PEM certificate") && e.contains("empty.pem"),
            "{e}"
        );
        c.cert_file = None;
        assert!(load_or_generate(&c, None).is_err());
    }

    #[test]
    fn split_addresses() {
        assert_eq!(split_host_port("[::]:8093"), Some(("::", Some(8093))));
        assert_eq!(split_host_port("a.tld:1"), Some(("a.tld", Some(1))));
        assert_eq!(split_host_port("a.tld"), Some(("a.tld", None)));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("a.tld:x"), None);
        assert_eq!(split_host_port("https://a.tld"), None);
    }

    #[test]
    fn advertise_scheme_is_an_error() {
        let e = validate_advertise(&cfg("0.0.0.0:8093", Some("https://runner.tld:8093")))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("url not valid, scheme defined"), "{e}");
        assert!(validate_advertise(&cfg("http://0.0.0.0:8093", None)).is_err());
    }

    #[test]
    fn advertise_warnings() {
        let ok = validate_advertise(&cfg("0.0.0.0:8093", Some("runner.tld:8093"))).unwrap();
        assert!(ok.is_empty(), "{ok:?}");
        assert!(
            validate_advertise(&cfg("0.0.0.0:8093", Some("203.0.113.9:8093")))
                .unwrap()
                .is_empty()
        );
        for private in [
            "10.1.2.3:8093",
            "172.16.0.1:8093",
            "192.168.1.1:8093",
            "[fd00::1]:8093",
            "169.254.1.1:8093",
            "[fe80::1]:8093",
            "127.0.0.1:8093",
            "localhost:8093",
            "[::1]:8093",
            "100.64.0.1:8093",
        ] {
            let w = validate_advertise(&cfg("0.0.0.0:8093", Some(private))).unwrap();
            assert_eq!(w.len(), 1, "{private}");
            assert!(w[0].contains("409"), "{w:?}");
            assert!(
                w[0].contains("allow_local_requests_from_web_hooks_and_services"),
                "{w:?}"
            );
        }
        for unspecified in ["0.0.0.0:8093", "[::]:8093"] {
            let w = validate_advertise(&cfg(unspecified, None)).unwrap();
            assert_eq!(w.len(), 1);
            assert!(w[0].contains("cannot reach"), "{w:?}");
            assert!(w[0].contains("409"), "{w:?}");
        }
    }
}
