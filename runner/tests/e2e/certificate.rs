//! The session server's generated certificate survives a restart (the
//! console pins its fingerprint), and `doctor` shows that fingerprint.

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
