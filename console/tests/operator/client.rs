//! `termgate_console::operator_client` against the test server: the pin,
//! `--insecure`, every refusal's error and the reason header.

use futures::{SinkExt, StreamExt};
use termgate::operator::{format_fingerprint, Mode};
use termgate_console::config::RunnerEntry;
use termgate_console::operator_client::{fetch_fingerprint, OperatorEndpoint, OperatorError, Pin};
use tokio_tungstenite::tungstenite::Message;

use crate::server::{self, TestServer, BROKEN, BUSY, CONTROL, OBSERVE};

fn entry(url: &str, token: &str, fingerprint: Option<[u8; 32]>) -> RunnerEntry {
    RunnerEntry {
        name: "prm-5".into(),
        metrics_url: "http://127.0.0.1:9/metrics".into(),
        session_url: Some(url.into()),
        operator_token: Some(token.into()),
        operator_token_file: None,
        fingerprint: fingerprint.map(|f| format_fingerprint(&f)),
        logs: Vec::new(),
    }
}

fn pinned(s: &TestServer, token: &str) -> OperatorEndpoint {
    OperatorEndpoint::from_entry(&entry(&s.url(), token, Some(s.fingerprint)), false).unwrap()
}

/// No error message may carry a token.
fn check_no_token(e: &OperatorError) {
    let text = format!("{e} {e:?}");
    for t in [CONTROL, OBSERVE, BUSY, BROKEN] {
        assert!(!text.contains(t), "token in {text}");
    }
}

#[tokio::test]
async fn pinned_certificate_lists_sessions_and_echoes() {
    let s = server::start().await;
    let ep = pinned(&s, OBSERVE);
    assert_eq!(ep.pin, Pin::Fingerprint(s.fingerprint));
    let list = ep.sessions().await.unwrap();
    let ids: Vec<&str> = list.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["9f1c2d3e4f5a6b7c8d9e0e0", "c3d4"]);
    assert_eq!(list.sessions[0].job_id, 4711);
    assert_eq!(list.sessions[0].clients[1].name.as_deref(), Some("alice"));

    let mut ws = ep.connect("x", Mode::Observe, None).await.unwrap();
    ws.send(Message::binary(b"\x00hello".to_vec()))
        .await
        .unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back.into_data().as_ref(), b"\x00hello");
    let seen = s.seen.lock().unwrap();
    assert_eq!(seen.protocols, ["v4.channel.k8s.io"]);
    assert_eq!(seen.reasons, [None]);
}

#[tokio::test]
async fn another_certificate_is_refused_with_both_fingerprints() {
    let s = server::start().await;
    let other = [0xABu8; 32];
    let ep = OperatorEndpoint::from_entry(&entry(&s.url(), OBSERVE, Some(other)), false).unwrap();
    for e in [
        ep.sessions().await.unwrap_err(),
        ep.connect("x", Mode::Observe, None).await.unwrap_err(),
    ] {
        let OperatorError::CertificateChanged {
            pinned, presented, ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(*pinned, format_fingerprint(&other));
        assert_eq!(*presented, format_fingerprint(&s.fingerprint));
        let text = e.to_string();
        assert!(
            text.starts_with("the certificate of prm-5 changed"),
            "{text}"
        );
        assert!(text.contains(&format_fingerprint(&s.fingerprint)), "{text}");
        assert!(text.contains("run `termgate trust prm-5` again"), "{text}");
        check_no_token(&e);
    }
    // Nothing reached the API.
    assert!(s.seen.lock().unwrap().protocols.is_empty());
}

#[tokio::test]
async fn insecure_accepts_any_certificate() {
    let s = server::start().await;
    let ep = OperatorEndpoint::from_entry(&entry(&s.url(), OBSERVE, None), true).unwrap();
    assert_eq!(ep.pin, Pin::Insecure);
    assert_eq!(ep.sessions().await.unwrap().sessions.len(), 2);
    ep.connect("x", Mode::Observe, None).await.unwrap();
    // Without --insecure and without a pin: not pinned.
    let e = OperatorEndpoint::from_entry(&entry(&s.url(), OBSERVE, None), false).unwrap_err();
    assert!(matches!(e, OperatorError::NotPinned { .. }), "{e:?}");
}

#[tokio::test]
async fn refusals_map_to_their_errors() {
    let s = server::start().await;
    let control = pinned(&s, CONTROL);

    let e = pinned(&s, "tgo_wrong").sessions().await.unwrap_err();
    assert!(matches!(e, OperatorError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("401"), "{e}");
    let e = pinned(&s, "tgo_wrong")
        .connect("x", Mode::Observe, None)
        .await
        .unwrap_err();
    assert!(matches!(e, OperatorError::Unauthorized { .. }), "{e:?}");

    let e = pinned(&s, BUSY).sessions().await.unwrap_err();
    assert!(
        matches!(
            e,
            OperatorError::Throttled {
                retry_after_secs: Some(7),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("retry after 7 s"), "{e}");
    check_no_token(&e);

    let e = pinned(&s, OBSERVE)
        .connect("x", Mode::Join, Some("INC-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, OperatorError::Forbidden { .. }), "{e:?}");
    assert!(e.to_string().contains("does not allow join"), "{e}");

    let e = control.connect("x", Mode::Shell, None).await.unwrap_err();
    assert!(matches!(e, OperatorError::ReasonRequired { .. }), "{e:?}");

    let e = control
        .connect("gone", Mode::Observe, None)
        .await
        .unwrap_err();
    assert!(matches!(e, OperatorError::NoSession { .. }), "{e:?}");
    assert!(e.to_string().contains("no session gone"), "{e}");

    let e = control
        .connect("idle", Mode::Join, Some("INC-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, OperatorError::NoTerminal { .. }), "{e:?}");
    assert!(e.to_string().contains("--shell"), "{e}");

    let e = pinned(&s, BROKEN).sessions().await.unwrap_err();
    assert_eq!(e.to_string(), "prm-5 answered 500: database on fire");
    check_no_token(&e);

    // A session id that is no path segment never leaves the console.
    let e = control
        .connect("../x", Mode::Observe, None)
        .await
        .unwrap_err();
    assert!(matches!(e, OperatorError::BadSessionId { .. }), "{e:?}");
}

#[tokio::test]
async fn reason_header_is_sent() {
    let s = server::start().await;
    let ep = pinned(&s, CONTROL);
    ep.connect("x", Mode::Join, Some("INC-42 deploy stuck\n"))
        .await
        .unwrap();
    ep.connect("x", Mode::Shell, Some("déploiement bloqué"))
        .await
        .unwrap();
    let seen = s.seen.lock().unwrap();
    assert_eq!(
        seen.reasons,
        [
            Some("INC-42 deploy stuck".to_string()),
            Some("d%C3%A9ploiement bloqu%C3%A9".to_string())
        ]
    );
}

#[tokio::test]
async fn unreachable_runner_names_the_address() {
    let url = format!("https://127.0.0.1:{}", server::closed_port());
    let ep = OperatorEndpoint::from_entry(&entry(&url, CONTROL, Some([1; 32])), false).unwrap();
    for e in [
        ep.sessions().await.unwrap_err(),
        ep.connect("x", Mode::Observe, None).await.unwrap_err(),
        fetch_fingerprint(&url).await.unwrap_err(),
    ] {
        assert!(matches!(e, OperatorError::Connect { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&url), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        check_no_token(&e);
    }
}

#[tokio::test]
async fn fetch_fingerprint_reads_the_leaf() {
    let s = server::start().await;
    assert_eq!(fetch_fingerprint(&s.url()).await.unwrap(), s.fingerprint);
    let e = fetch_fingerprint("http://127.0.0.1:1").await.unwrap_err();
    assert!(matches!(e, OperatorError::BadUrl { .. }), "{e:?}");
}

/// Issue 19: the session server's https URL given as a metrics URL says so.
#[tokio::test]
async fn a_session_server_url_as_metrics_url_says_so() {
    let s = server::start().await;
    let c = termgate_console::scrape::ScrapeClient::new(std::time::Duration::from_secs(5)).unwrap();
    let e = c
        .scrape(&format!("https://{}/metrics", s.addr))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(e, termgate_console::scrape::client::SESSION_SERVER_HINT);
    assert!(
        e.contains("session server") && e.contains("listen_address"),
        "{e}"
    );
}
