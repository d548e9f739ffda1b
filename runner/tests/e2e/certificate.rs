//! The session server's generated certificate survives a restart (the
//! console pins its fingerprint), and `doctor` shows that fingerprint.
//! `/metrics` exports when the certificate expires, generated or
//! `cert_file` (issue 21, item 2: the alert on it).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use termgate::logschema::{self as schema, msg};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

fn fingerprint_logged(r: &RunnerProc, message: &str) -> String {
    let line: Value = r.wait_log(message, WAIT);
    line[schema::FINGERPRINT]
        .as_str()
        .unwrap_or_else(|| panic!("no fingerprint in {line}"))
        .to_string()
}

fn session_address(r: &RunnerProc) -> String {
    let line = r.wait_log(msg::SESSION_SERVER_LISTENING, WAIT);
    line[schema::ADDRESS].as_str().unwrap().to_string()
}

/// A TLS handshake that trusts only `pem` as its root: it succeeds only if
/// the server presents that very certificate.
fn presents(addr: &str, pem: &str) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    // Any request: the handshake happens on the first write.
    let sent = tls.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 16];
    sent.is_ok() && tls.read(&mut buf).is_ok()
}

#[test]
fn generated_certificate_is_kept_across_restarts() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "cert-keeper", &["--run-untagged"]);
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    let crt = setup.dir.path().join("session-server.crt");

    let mut first = setup.start();
    let fp = fingerprint_logged(&first, msg::SESSION_CERT_GENERATED);
    assert!(fp.starts_with("sha256:"), "{fp}");
    let pem = std::fs::read_to_string(&crt).unwrap();
    assert!(presents(&session_address(&first), &pem));
    // Valid for two years from yesterday: the expiry gauge says so.
    let expiry = expiry_exported(&first, "generated");
    let days = (expiry - chrono::Utc::now().timestamp()) / 86_400;
    assert!((728..=730).contains(&days), "expires in {days} days");
    first.signal(nix::sys::signal::Signal::SIGTERM);
    first.wait_exit(WAIT);
    drop(first);

    let second = setup.start();
    assert_eq!(fingerprint_logged(&second, msg::SESSION_CERT_REUSED), fp);
    assert!(
        !second.log_text().contains(msg::SESSION_CERT_GENERATED),
        "{}",
        second.log_text()
    );
    assert!(presents(&session_address(&second), &pem));

    let out = runner_cmd(&["doctor", "-c", setup.config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("fingerprint {fp}")), "{text}");
}

/// The value of `gitlab_runner_session_certificate_expiry_timestamp_seconds`
/// with `source`, once the runner exports it.
fn expiry_exported(r: &RunnerProc, source: &str) -> i64 {
    let prefix = format!(
        "{}{{source=\"{source}\"}} ",
        termgate::metrics::SESSION_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS
    );
    wait_until("the certificate expiry exported", WAIT, || {
        r.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse::<i64>().unwrap()))
    })
}

#[test]
fn cert_file_expiry_is_exported() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "cert-file", &["--run-untagged"]);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
    params.not_after = rcgen::date_time_ymd(2031, 5, 4);
    let cert = params.self_signed(&key).unwrap();
    let (crt, pem_key) = (
        setup.dir.path().join("own.crt"),
        setup.dir.path().join("own.key"),
    );
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem_key, key.serialize_pem()).unwrap();
    setup.edit(|t| {
        format!(
            "{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n  cert_file = \"{}\"\n  key_file = \"{}\"\n",
            crt.display(),
            pem_key.display()
        )
    });
    let r = setup.start();
    assert!(presents(&session_address(&r), &cert.pem()));
    // 2031-05-04T00:00:00Z, and only this sample (no "generated" one).
    assert_eq!(expiry_exported(&r, "cert_file"), 1_935_619_200);
    let family = termgate::metrics::SESSION_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS;
    let samples: Vec<String> = r
        .metrics()
        .lines()
        .filter(|l| l.starts_with(family))
        .map(str::to_owned)
        .collect();
    assert_eq!(samples.len(), 1, "{samples:?}");
}
