//! `session_reachable`: dial the session server's listen address from this
//! machine and complete a TLS handshake, as Workhorse would (minus the
//! network in between), then check what it served: the certificate on
//! disk, valid for the advertise host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::certificate::{CertInfo, Source};
use super::{Check, Findings};
use crate::config::SessionServer;
use crate::session::tls;

const NAME: &str = "session_reachable";

/// What dialling the listen address gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A TLS server answered with this leaf certificate.
    Served(CertInfo),
    /// Connection refused: nothing listens there.
    NothingListens(String),
    /// Anything else: no answer in time, no TLS, an address not here.
    Failed(String),
}

/// Where to dial for `listen_address`: an unspecified host is dialled on
/// loopback; `None` for port 0 (a new port at every start) or no port.
pub fn target(listen: &str) -> Option<(String, u16)> {
    let (host, port) = tls::split_host_port(listen)?;
    let port = port.filter(|p| *p != 0)?;
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
        _ if host.is_empty() => Ipv4Addr::LOCALHOST.to_string(),
        _ => host.to_string(),
    };
    Some((host, port))
}

/// Connect to `host:port` and complete a TLS handshake within `timeout`,
/// accepting any certificate (checked afterwards) but verifying the
/// handshake's signatures.
pub async fn dial(host: &str, port: u16, sni: &str, timeout: Duration) -> Outcome {
    let shown = match host.parse::<Ipv6Addr>() {
        Ok(_) => format!("[{host}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let tcp =
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
            Err(_) => return Outcome::Failed(format!("{shown}: no answer within {timeout:?}")),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Outcome::NothingListens(shown)
            }
            Ok(Err(e)) => return Outcome::Failed(format!("{shown}: {e}")),
            Ok(Ok(s)) => s,
        };
    let verifier = Arc::new(AnyCert::default());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth(),
        Err(e) => return Outcome::Failed(format!("TLS client: {e}")),
    };
    let name = ServerName::try_from(sni.to_string()).unwrap_or(ServerName::IpAddress(
        IpAddr::V4(Ipv4Addr::LOCALHOST).into(),
    ));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => Outcome::Failed(format!(
            "{shown} accepted the connection but sent no TLS handshake within {timeout:?}"
        )),
        Ok(Err(e)) => Outcome::Failed(format!(
            "{shown} accepted the connection but the TLS handshake failed: {e}"
        )),
        Ok(Ok(_stream)) => match verifier.leaf() {
            Some(der) => match CertInfo::from_der(&der) {
                Ok(info) => Outcome::Served(info),
                Err(e) => Outcome::Failed(format!("{shown} served a certificate that {e:#}")),
            },
            None => Outcome::Failed(format!("{shown} served no certificate")),
        },
    }
}

/// The check for what [`dial`] found. `on_disk` is the certificate the
/// runner should serve; `host` the advertise host Workhorse verifies.
pub fn judge(outcome: Outcome, on_disk: Option<&(Source, CertInfo)>, host: &str) -> Check {
    match outcome {
        Outcome::NothingListens(at) => Check::warn(
            NAME,
            format!("nothing listens on {at}: is the runner running?"),
            "start the runner (termgate-runner run), then run doctor again",
        ),
        Outcome::Failed(e) => Check::fail(
            NAME,
            e,
            "only the runner's session server should listen there: check `ss -ltnp` and the \
             runner's log",
        ),
        Outcome::Served(served) => {
            if !served.names(host) {
                return Check::fail(
                    NAME,
                    format!(
                        "the runner serves {} (fingerprint {}), not valid for the advertise host \
                         {host}: Workhorse refuses the handshake",
                        served_names(&served),
                        served.fingerprint
                    ),
                    "restart the runner so it loads a certificate for the advertise host",
                );
            }
            match on_disk {
                Some((source, file)) if file.fingerprint != served.fingerprint => Check::warn(
                    NAME,
                    format!(
                        "TLS handshake works, but the runner serves {} while {} is {}: the \
                         file changed after the runner started",
                        served.fingerprint,
                        source.path().display(),
                        file.fingerprint
                    ),
                    "restart the runner to serve the file's certificate, then pin it (termgate \
                     trust)",
                ),
                _ => Check::pass(
                    NAME,
                    format!(
                        "TLS handshake works; the runner serves {}, valid for {host}",
                        served.fingerprint
                    ),
                ),
            }
        }
    }
}

fn served_names(c: &CertInfo) -> String {
    let v: Vec<String> = c.sans.iter().map(ToString::to_string).collect();
    if v.is_empty() {
        "a certificate without DNS or IP SAN".into()
    } else {
        format!("a certificate for {}", v.join(", "))
    }
}

/// Dial the listen address and judge it; skipped for port 0.
pub async fn reachable(
    ss: &SessionServer,
    on_disk: Option<&(Source, CertInfo)>,
    timeout: Duration,
    f: &mut Findings,
) {
    let listen = ss.listen_address.as_deref().unwrap_or_default();
    let Some((host, port)) = target(listen) else {
        f.skip(
            NAME,
            format!("listen_address {listen:?} has no fixed port to dial"),
        );
        return;
    };
    let advertise_host = tls::public_host(ss).unwrap_or_else(|_| host.clone());
    let outcome = dial(&host, port, &advertise_host, timeout).await;
    f.push(judge(outcome, on_disk, &advertise_host));
}

/// Accepts any leaf (doctor checks it afterwards) and remembers it; the
/// handshake's signatures are verified as usual.
#[derive(Debug)]
struct AnyCert {
    leaf: Mutex<Option<Vec<u8>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Default for AnyCert {
    fn default() -> Self {
        AnyCert {
            leaf: Mutex::new(None),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl AnyCert {
    fn leaf(&self) -> Option<Vec<u8>> {
        self.leaf.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap_or_else(|p| p.into_inner()) = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use std::path::Path;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn targets() {
        assert_eq!(target("0.0.0.0:8093"), Some(("127.0.0.1".into(), 8093)));
        assert_eq!(target("[::]:8093"), Some(("::1".into(), 8093)));
        assert_eq!(target("10.0.0.5:8093"), Some(("10.0.0.5".into(), 8093)));
        assert_eq!(target(":8093"), Some(("127.0.0.1".into(), 8093)));
        assert_eq!(target("127.0.0.1:0"), None);
        assert_eq!(target("127.0.0.1"), None);
    }

    /// A TLS server with `tls`'s certificate on loopback, answering one
    /// handshake at a time until the test ends.
    async fn serve(tls: &tls::SessionTls) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = acceptor.accept(sock).await;
            }
        });
        port
    }

    fn generated(host: &str, dir: &Path) -> tls::SessionTls {
        let ss = SessionServer {
            listen_address: Some("127.0.0.1:0".into()),
            advertise_address: Some(format!("{host}:8093")),
            ..Default::default()
        };
        tls::load_or_generate(&ss, Some(dir)).unwrap()
    }

    #[tokio::test]
    async fn a_listening_session_server_passes() {
        let dir = tempfile::tempdir().unwrap();
        let tls = generated("127.0.0.1", dir.path());
        let port = serve(&tls).await;
        let path = dir.path().join(tls::CERT_FILE_NAME);
        let on_disk = (
            Source::Generated(path.clone()),
            CertInfo::read(&path).unwrap(),
        );
        let outcome = dial("127.0.0.1", port, "127.0.0.1", T).await;
        let Outcome::Served(ref served) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(served.fingerprint, tls.fingerprint);
        let c = judge(outcome, Some(&on_disk), "127.0.0.1");
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.detail.contains(&tls.fingerprint), "{c:?}");

        // The file replaced since: a warning.
        let other = tempfile::tempdir().unwrap();
        generated("127.0.0.1", other.path());
        let p2 = other.path().join(tls::CERT_FILE_NAME);
        let newer = (Source::Generated(p2.clone()), CertInfo::read(&p2).unwrap());
        let c = judge(
            dial("127.0.0.1", port, "127.0.0.1", T).await,
            Some(&newer),
            "127.0.0.1",
        );
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(
            c.detail
                .contains("the file changed after the runner started"),
            "{c:?}"
        );

        // Served, but for another host than the advertised one: fails.
        let c = judge(
            dial("127.0.0.1", port, "runner.example.com", T).await,
            None,
            "runner.example.com",
        );
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(
            c.detail
                .contains("not valid for the advertise host runner.example.com"),
            "{c:?}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_warns_and_a_plain_server_fails() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let c = judge(
            dial("127.0.0.1", port, "127.0.0.1", T).await,
            None,
            "127.0.0.1",
        );
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(
            c.detail.starts_with("nothing listens on 127.0.0.1:"),
            "{c:?}"
        );

        // Something that is not TLS holds the port.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = plain.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            while let Ok((mut s, _)) = plain.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let c = judge(
            dial("127.0.0.1", port, "127.0.0.1", T).await,
            None,
            "127.0.0.1",
        );
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("the TLS handshake failed"), "{c:?}");

        // A server that accepts and says nothing: bounded by the timeout.
        let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = mute.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let c = judge(
            dial("127.0.0.1", port, "127.0.0.1", Duration::from_millis(300)).await,
            None,
            "127.0.0.1",
        );
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("sent no TLS handshake"), "{c:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(mute);
    }
}
