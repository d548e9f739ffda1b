//! End-to-end tests of the session server: real TLS on 127.0.0.1:0, a real
//! tokio-tungstenite client that trusts only the server's certificate PEM,
//! fake terminals. No sleeps: conditions are polled with a timeout.

mod fuzz;
mod hardening;
mod pastes;
mod support;

use std::sync::atomic::Ordering;

use futures::{SinkExt as _, StreamExt as _};
use termgate::metrics::close_reason;
use termgate::terminal::{k8s_resize_frame, k8s_stdin_frame, DEFAULT_MAX_INPUT_FRAME};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};

use hyper::header::{self, HeaderMap};

use super::*;
use crate::executor::terminal::TermSize;
use crate::session::SessionJob;
use support::*;

// ---- tests ------------------------------------------------------------------

#[tokio::test]
async fn advertises_the_bound_port_and_serves_terminal_gitlab_com() {
    let f = fixture().await;
    let port = f.handle.local_addr.port();
    assert_ne!(port, 0);
    assert_eq!(f.handle.advertise_address, format!("127.0.0.1:{port}"));
    assert_eq!(
        f.handle.registry.base_url(),
        format!("https://127.0.0.1:{port}")
    );
    assert!(f.handle.warnings[0].contains("409"));

    let fake = Fake::new(Kind::Echo);
    let s = f.session(Some(fake.clone()));
    let (mut ws, proto) = f.connect(&s, &["terminal.gitlab.com"]).await;
    assert_eq!(proto.as_deref(), Some("terminal.gitlab.com"));
    echo(&mut ws, b"echo hi\r").await;
    // A lone EOT from the client is just input.
    echo(&mut ws, &[0x04]).await;
    assert!(s.session.has_client());
    let m = &f.metrics;
    assert_eq!(
        m.session_websocket_connections
            .with_label_values(&["interactive"])
            .get(),
        1
    );
    assert_eq!(
        m.session_websocket_connections_total
            .with_label_values(&["interactive"])
            .get(),
        1
    );
    assert_eq!(m.session_connect_seconds.get_sample_count(), 1);

    // The client leaves: the shell is killed, the seat is free.
    ws.close(None).await.unwrap();
    wait_until("client_left close", || {
        f.closes(close_reason::CLIENT_LEFT) == 1
    })
    .await;
    assert_eq!(fake.calls.closes.load(Ordering::SeqCst), 1);
    assert!(!s.session.has_client());
    assert_eq!(
        m.session_websocket_connections
            .with_label_values(&["interactive"])
            .get(),
        0
    );
    assert_eq!(m.session_bytes_total.with_label_values(&["in"]).get(), 9);
    assert_eq!(m.session_bytes_total.with_label_values(&["out"]).get(), 9);
    assert_eq!(s.session.bytes_in.load(Ordering::Relaxed), 9);
    assert_eq!(m.session_duration_seconds.get_sample_count(), 1);

    f.shutdown.cancel();
    tokio::time::timeout(timeout(), f.handle.wait())
        .await
        .unwrap();
}

#[tokio::test]
async fn no_subprotocol_speaks_binary_without_the_header() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, proto) = f.connect(&s, &[]).await;
    assert_eq!(proto, None);
    echo(&mut ws, b"ls\r").await;
    // Only unknown subprotocols offered: 101 without the header, like
    // gorilla (tungstenite's client refuses that, so check the raw reply).
    let s2 = f.session(Some(Fake::new(Kind::Echo)));
    let mut tls = f.tls(None).await;
    let req = format!(
        "GET /session/{}/exec HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: x.example\r\nAuthorization: {}\r\n\r\n",
        s2.session.id, s2.token
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(timeout(), tokio::io::AsyncReadExt::read(&mut tls, &mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "connection closed in the response head");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455's sample key and accept value.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
}

#[tokio::test]
async fn not_found_and_other_paths_are_404() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let http = f.http();
    let base = f.handle.registry.base_url().to_string();
    for path in [
        format!("/session/{}/exec", "0".repeat(64)),
        format!("/session/{}/terminal", s.session.id),
        "/".to_string(),
        "/session/".to_string(),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(f.rejections("not_found"), 4);
    // A pending (not yet activated) session is not routable.
    let p = f.handle.registry.create();
    let t = TestSession {
        token: p.token.clone(),
        session: f.handle.registry.activate(p, SessionJob::default()),
    };
    f.handle
        .registry
        .remove(&t.session.id, close_reason::JOB_FINISHED);
    assert_eq!(status_of(f.dial(&t, &t.token, &[], None).await), 404);
    assert_eq!(f.rejections("not_found"), 5);
}

#[tokio::test]
async fn wrong_token_is_401_before_the_upgrade() {
    let f = fixture().await;
    let fake = Fake::new(Kind::Echo);
    let s = f.session(Some(fake.clone()));
    assert_eq!(status_of(f.dial(&s, "wrong", &[], None).await), 401);
    assert_eq!(
        status_of(f.dial(&s, &format!("Bearer {}", s.token), &[], None).await),
        401
    );
    // Without a websocket upgrade and without auth: still 401 first.
    let r = f.http().get(f.url(&s)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "Unauthorized\n");
    assert_eq!(f.rejections("unauthorized"), 3);
    assert_eq!(fake.calls.opens.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn plain_request_is_405() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let r = f
        .http()
        .get(f.url(&s))
        .header("Authorization", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(f.rejections("not_websocket"), 1);
}

#[tokio::test]
async fn cross_origin_is_403() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let mut req = f
        .url(&s)
        .replace("https://", "wss://")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Authorization", s.token.parse().unwrap());
    h.insert("Origin", "https://evil.example".parse().unwrap());
    let r = tokio_tungstenite::client_async(req, f.tls(None).await).await;
    match r {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        _ => panic!("expected 403"),
    }
}

#[tokio::test]
async fn no_terminal_is_503() {
    let f = fixture_with(ServerOptions {
        terminal_wait: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let s = f.session(None);
    assert_eq!(status_of(f.dial(&s, &s.token, &[], None).await), 503);
    assert_eq!(f.rejections("unavailable"), 1);
}

#[tokio::test]
async fn waits_for_the_terminal_to_be_attached() {
    let f = fixture().await;
    let s = f.session(None);
    let fake = Fake::new(Kind::Echo);
    let session = s.session.clone();
    // Attached while the request may already be waiting (either order works).
    let attach = async {
        tokio::task::yield_now().await;
        session.set_terminal(fake.clone());
    };
    let (dialed, ()) = tokio::join!(f.dial(&s, &s.token, &[], None), attach);
    let (mut ws, _) = dialed.unwrap();
    echo(&mut ws, b"x").await;
}

#[tokio::test]
async fn second_client_is_423_and_the_first_keeps_working() {
    let f = fixture().await;
    let fake = Fake::new(Kind::Echo);
    let s = f.session(Some(fake.clone()));
    let (mut first, _) = f.connect(&s, &["terminal.gitlab.com"]).await;
    echo(&mut first, b"a").await;
    assert_eq!(status_of(f.dial(&s, &s.token, &[], None).await), 423);
    assert_eq!(f.rejections("locked"), 1);
    echo(&mut first, b"still here").await;
    assert_eq!(fake.calls.opens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_that_leaves_frees_the_seat_before_its_terminal_is_cleaned_up() {
    let f = fixture().await;
    let fake = Fake::new(Kind::Echo);
    fake.calls.close_delay_ms.store(3_000, Ordering::SeqCst);
    let s = f.session(Some(fake.clone()));
    let (mut first, _) = f.connect(&s, &["terminal.gitlab.com"]).await;
    echo(&mut first, b"a").await;
    first.close(None).await.unwrap();
    wait_until("the first terminal's close to start", || {
        fake.calls.closes.load(Ordering::SeqCst) == 1
    })
    .await;
    wait_until("the seat to be free", || !s.session.has_client()).await;
    let (mut second, _) = f.connect(&s, &["terminal.gitlab.com"]).await;
    echo(&mut second, b"b").await;
    assert_eq!(
        fake.calls.closes_done.load(Ordering::SeqCst),
        0,
        "the seat waited for the first terminal's cleanup"
    );
}

#[tokio::test]
async fn terminal_open_failure_is_500() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Fail)));
    assert_eq!(status_of(f.dial(&s, &s.token, &[], None).await), 500);
    assert_eq!(f.rejections("connect_failed"), 1);
    // The seat was given back.
    assert!(!s.session.has_client());
}

#[tokio::test]
async fn base64_subprotocol() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, proto) = f.connect(&s, &["base64.terminal.gitlab.com"]).await;
    assert_eq!(proto.as_deref(), Some("base64.terminal.gitlab.com"));
    ws.send(Message::Text("Zm9vIGJhcg==".into())).await.unwrap();
    match next_msg(&mut ws).await {
        Message::Text(t) => assert_eq!(t.as_str(), "Zm9vIGJhcg=="),
        m => panic!("unexpected {m:?}"),
    }
    // Invalid base64 closes this connection with 1007.
    ws.send(Message::Text("!!!".into())).await.unwrap();
    let _banner = next_msg(&mut ws).await;
    match next_msg(&mut ws).await {
        Message::Close(Some(c)) => {
            assert_eq!(u16::from(c.code), 1007);
            assert!(
                c.reason.starts_with("error: invalid base64"),
                "{}",
                c.reason
            );
        }
        m => panic!("unexpected {m:?}"),
    }
}

#[tokio::test]
async fn k8s_resize_reaches_the_terminal() {
    let f = fixture().await;
    let fake = Fake::new(Kind::Echo);
    let s = f.session(Some(fake.clone()));
    let (mut ws, proto) = f.connect(&s, &["v4.channel.k8s.io"]).await;
    assert_eq!(proto.as_deref(), Some("v4.channel.k8s.io"));
    let r = k8s_resize_frame(120, 40);
    ws.send(Message::Binary(r.payload.into())).await.unwrap();
    ws.send(Message::Binary(k8s_stdin_frame(b"hi").payload.into()))
        .await
        .unwrap();
    match next_msg(&mut ws).await {
        Message::Binary(b) => assert_eq!(&b[..], b"\x01hi"),
        m => panic!("unexpected {m:?}"),
    }
    let resizes = fake.calls.resizes.lock().unwrap().clone();
    assert_eq!(
        resizes,
        vec![TermSize {
            cols: 120,
            rows: 40
        }]
    );
}

#[tokio::test]
async fn oversize_frame_closes_only_that_connection() {
    let f = fixture().await;
    let big_fake = Fake::new(Kind::Echo);
    let big = f.session(Some(big_fake.clone()));
    let other = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, _) = f.connect(&big, &["terminal.gitlab.com"]).await;
    let (mut ok, _) = f.connect(&other, &["terminal.gitlab.com"]).await;
    ws.send(Message::Binary(
        vec![b'a'; DEFAULT_MAX_INPUT_FRAME + 1].into(),
    ))
    .await
    .unwrap();
    match next_msg(&mut ws).await {
        Message::Binary(b) => {
            let line = String::from_utf8_lossy(&b);
            assert!(
                line.contains("[termgate] terminal closed: a frame from the client was too large"),
                "{line}"
            );
        }
        m => panic!("unexpected {m:?}"),
    }
    match next_msg(&mut ws).await {
        Message::Close(Some(c)) => {
            assert_eq!(u16::from(c.code), 1009);
            assert!(c.reason.starts_with("frame_too_large: "), "{}", c.reason);
            assert!(c.reason.contains("1048577"), "{}", c.reason);
        }
        m => panic!("unexpected {m:?}"),
    }
    wait_until("frame_too_large close", || {
        f.closes(close_reason::FRAME_TOO_LARGE) == 1
    })
    .await;
    assert_eq!(big_fake.calls.closes.load(Ordering::SeqCst), 1);
    echo(&mut ok, b"unaffected").await;
    // The session itself is still usable: the seat is free again.
    wait_until("seat released", || !big.session.has_client()).await;
    let (mut again, _) = f.connect(&big, &[]).await;
    echo(&mut again, b"back").await;
}

#[tokio::test]
async fn a_client_whose_network_vanishes_gives_the_seat_back() {
    let (logs, _guard) = json_logs();
    let f = fixture_with(ServerOptions {
        terminal_wait: timeout(),
        ping_interval: Duration::from_millis(200),
        peer_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, _) = f.connect(&s, &[]).await;
    echo(&mut ws, b"before").await;
    let client_port = ws.get_ref().get_ref().0.local_addr().unwrap().port();
    let Some(_hole) = Blackhole::new(client_port, f.handle.local_addr.port()) else {
        return;
    };
    // The pings go unacknowledged; without TCP_USER_TIMEOUT the seat would
    // stay taken for Linux's ~15 minutes of retransmissions (423 meanwhile).
    wait_until("seat released", || !s.session.has_client()).await;
    let (mut again, _) = f.connect(&s, &[]).await;
    echo(&mut again, b"back").await;
    wait_until("client_left close", || {
        f.closes(close_reason::CLIENT_LEFT) == 1
    })
    .await;
    wait_until("disconnect logged", || {
        logs.text().contains("terminal_disconnected")
    })
    .await;
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("terminal_disconnected"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["reason"], "client_left", "{line}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("timed out"),
        "{line}"
    );
}

/// Connects a client with a 4 KiB receive buffer that never reads, to a
/// flooding terminal; returns once the bridge stopped reading the terminal
/// (no progress for 300 ms, polled) with the bytes the terminal produced.
async fn stalled_client(f: &Fixture, fake: &Arc<Fake>, s: &TestSession) -> (Ws, u64) {
    let (ws, _) = f.dial(s, &s.token, &[], Some(4096)).await.unwrap();
    wait_until("output to flow", || {
        fake.produced.load(Ordering::SeqCst) > 0
    })
    .await;
    let deadline = tokio::time::Instant::now() + timeout();
    let mut last = fake.produced.load(Ordering::SeqCst);
    let mut last_change = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = fake.produced.load(Ordering::SeqCst);
        if now != last {
            last = now;
            last_change = tokio::time::Instant::now();
        } else if last_change.elapsed() > Duration::from_millis(300) {
            return (ws, last);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "terminal reads never stopped ({now} bytes)"
        );
    }
}

#[tokio::test]
async fn a_flood_of_idle_connections_is_capped_and_terminals_keep_working() {
    use tokio::io::AsyncReadExt as _;
    let f = fixture_with(ServerOptions {
        terminal_wait: timeout(),
        max_pending: 2,
        ..Default::default()
    })
    .await;
    // Open terminals do not count against the limit: two of them, then
    // two connections that never start TLS hold the two pending places.
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, _) = f.connect(&s, &[]).await;
    let s2 = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws2, _) = f.connect(&s2, &[]).await;
    let idle1 = TcpStream::connect(f.handle.local_addr).await.unwrap();
    let idle2 = TcpStream::connect(f.handle.local_addr).await.unwrap();
    // The next one is closed as soon as it is accepted (two places of two
    // are this address's whole share).
    let mut third = TcpStream::connect(f.handle.local_addr).await.unwrap();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(timeout(), third.read(&mut b))
        .await
        .expect("refused connection left open");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(f.rejections("peer_over_limit"), 1);
    // The terminals that were already open are untouched.
    echo(&mut ws, b"still here").await;
    echo(&mut ws2, b"me too").await;
    // Once the idle ones go, new clients get in again.
    drop((idle1, idle2));
    let other = f.session(Some(Fake::new(Kind::Echo)));
    let deadline = tokio::time::Instant::now() + timeout();
    let mut again = loop {
        if let Ok((w, _)) = f.dial(&other, &other.token, &[], None).await {
            break w;
        }
        assert!(tokio::time::Instant::now() < deadline, "never let in again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    echo(&mut again, b"in").await;
}

#[tokio::test]
async fn a_client_that_stops_reading_pauses_the_terminal() {
    let f = fixture().await;
    let fake = Fake::new(Kind::Flood);
    let s = f.session(Some(fake.clone()));
    let (mut ws, last) = stalled_client(&f, &fake, &s).await;
    // Kernel socket buffers plus one chunk, far from unbounded.
    assert!(last < 64 * 1024 * 1024, "{last} bytes read");
    // Output resumes once the client reads again.
    let mut got = 0u64;
    while got <= 2 * last {
        match next_msg(&mut ws).await {
            Message::Binary(b) => got += b.len() as u64,
            m => panic!("unexpected {m:?}"),
        }
    }
    assert!(fake.produced.load(Ordering::SeqCst) > last);
    assert!(s.session.has_client());
}

#[tokio::test]
async fn a_client_that_accepts_nothing_for_the_peer_timeout_is_dropped() {
    // Alive but stalled (it acknowledges the kernel's zero-window probes):
    // after the peer timeout without taking a byte it loses the seat, as
    // with nginx's send_timeout; the other session is untouched.
    let f = fixture_with(ServerOptions {
        terminal_wait: timeout(),
        peer_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let fake = Fake::new(Kind::Flood);
    let s = f.session(Some(fake.clone()));
    let other = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ok, _) = f.connect(&other, &[]).await;
    let (_stalled, _) = stalled_client(&f, &fake, &s).await;
    wait_until("stalled client dropped", || !s.session.has_client()).await;
    wait_until("client_left close", || {
        f.closes(close_reason::CLIENT_LEFT) == 1
    })
    .await;
    assert_eq!(fake.calls.closes.load(Ordering::SeqCst), 1);
    echo(&mut ok, b"unaffected").await;
    let (mut again, _) = f.connect(&s, &[]).await;
    assert!(matches!(next_msg(&mut again).await, Message::Binary(_)));
}

#[tokio::test]
async fn job_cancel_sends_the_banner_then_close_with_the_reason() {
    let f = fixture().await;
    let fake = Fake::new(Kind::Echo);
    let s = f.session(Some(fake.clone()));
    let (mut ws, _) = f.connect(&s, &["terminal.gitlab.com"]).await;
    echo(&mut ws, b"x").await;
    s.session.close(close_reason::JOB_CANCELLED);
    match next_msg(&mut ws).await {
        Message::Binary(b) => assert_eq!(
            &b[..],
            b"\r\n[termgate] terminal closed: the job was cancelled\r\n"
        ),
        m => panic!("unexpected {m:?}"),
    }
    match next_msg(&mut ws).await {
        Message::Close(Some(c)) => {
            assert_eq!(u16::from(c.code), 1000);
            assert_eq!(c.reason.as_str(), "job_cancelled");
        }
        m => panic!("unexpected {m:?}"),
    }
    wait_until("job_cancelled close", || {
        f.closes(close_reason::JOB_CANCELLED) == 1
    })
    .await;
    assert_eq!(fake.calls.closes.load(Ordering::SeqCst), 1);
    // A closed session is no longer routable.
    assert_eq!(status_of(f.dial(&s, &s.token, &[], None).await), 404);
}

#[tokio::test]
async fn runner_shutdown_closes_with_1001_and_stops_the_server() {
    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, _) = f.connect(&s, &[]).await;
    echo(&mut ws, b"x").await;
    f.shutdown.cancel();
    let _banner = next_msg(&mut ws).await;
    match next_msg(&mut ws).await {
        Message::Close(Some(c)) => {
            assert_eq!(u16::from(c.code), 1001);
            assert_eq!(c.reason.as_str(), "runner_shutdown");
        }
        m => panic!("unexpected {m:?}"),
    }
    drop(ws);
    tokio::time::timeout(timeout(), f.handle.wait())
        .await
        .unwrap();
    assert_eq!(f.closes(close_reason::RUNNER_SHUTDOWN), 1);
}

#[tokio::test]
async fn pings_the_client() {
    let f = fixture_with(ServerOptions {
        terminal_wait: timeout(),
        ping_interval: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, _) = f.connect(&s, &[]).await;
    let m = tokio::time::timeout(timeout(), ws.next()).await.unwrap();
    match m {
        Some(Ok(Message::Ping(p))) => assert!(p.is_empty()),
        m => panic!("unexpected {m:?}"),
    }
    // The client's pings are answered.
    ws.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
    let pong = loop {
        match tokio::time::timeout(timeout(), ws.next()).await.unwrap() {
            Some(Ok(Message::Pong(p))) => break p,
            Some(Ok(_)) => continue,
            m => panic!("unexpected {m:?}"),
        }
    };
    assert_eq!(&pong[..], b"p");
}

#[tokio::test]
async fn a_bad_tls_client_does_not_block_others() {
    let f = fixture().await;
    // Connects and says nothing (no TLS handshake), and one that sends junk.
    let _silent = TcpStream::connect(f.handle.local_addr).await.unwrap();
    let mut junk = TcpStream::connect(f.handle.local_addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let s = f.session(Some(Fake::new(Kind::Echo)));
    let (mut ws, _) = f.connect(&s, &[]).await;
    echo(&mut ws, b"fine").await;
}

#[test]
fn handshake_helpers() {
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
    h.insert(header::UPGRADE, "WebSocket".parse().unwrap());
    assert!(is_websocket_upgrade(&h));
    h.insert(header::UPGRADE, "h2c".parse().unwrap());
    assert!(!is_websocket_upgrade(&h));

    let mut h = HeaderMap::new();
    assert!(origin_allowed(&h));
    h.insert(header::HOST, "runner.tld:8093".parse().unwrap());
    h.insert(header::ORIGIN, "https://runner.tld:8093".parse().unwrap());
    assert!(origin_allowed(&h));
    h.insert(header::ORIGIN, "https://gitlab.tld".parse().unwrap());
    assert!(!origin_allowed(&h));

    assert_eq!(route("/session/abc/exec"), Some(("abc", "exec")));
    assert_eq!(route("/session//exec"), None);
    assert_eq!(route("/session/abc"), None);
}

#[test]
fn advertised_address_uses_the_bound_port() {
    let cfg = |l: &str, a: Option<&str>| config::SessionServer {
        listen_address: Some(l.into()),
        advertise_address: a.map(Into::into),
        ..Default::default()
    };
    assert_eq!(
        advertised(&cfg("127.0.0.1:0", None), "127.0.0.1:0", 4000),
        "127.0.0.1:4000"
    );
    assert_eq!(
        advertised(&cfg("[::]:0", None), "[::]:0", 4000),
        "[::]:4000"
    );
    assert_eq!(
        advertised(&cfg("[::]:0", Some("runner.tld:0")), "[::]:0", 4000),
        "runner.tld:4000"
    );
    assert_eq!(
        advertised(&cfg("[::]:0", Some("runner.tld:8093")), "[::]:0", 4000),
        "runner.tld:8093"
    );
    assert_eq!(
        advertised(&cfg("[::]:0", Some("runner.tld")), "[::]:0", 4000),
        "runner.tld"
    );
}

#[test]
fn env_overrides() {
    let d = ServerOptions::default();
    assert_eq!(d.terminal_wait, Duration::from_secs(60));
    assert_eq!(d.ping_interval, Duration::from_secs(30));
    assert_eq!(d.handshake_timeout, Duration::from_secs(10));
    assert_eq!(parse_secs(Some(" 2 ")), Some(Duration::from_secs(2)));
    assert_eq!(parse_secs(Some("0.5")), Some(Duration::from_millis(500)));
    assert_eq!(parse_secs(Some("-1")), None);
    assert_eq!(parse_secs(Some("x")), None);
    assert_eq!(parse_secs(None), None);
}

#[tokio::test]
async fn logs_upstream_lines_and_events_without_the_token() {
    // Current-thread runtime: every server task logs on this thread.
    let (logs, _guard) = json_logs();

    let f = fixture().await;
    let s = f.session(Some(Fake::new(Kind::Echo)));
    assert_eq!(status_of(f.dial(&s, "not-the-token", &[], None).await), 401);
    let (mut ws, _) = f.connect(&s, &[]).await;
    echo(&mut ws, b"hi").await;
    s.session.close(close_reason::JOB_FINISHED);
    let _banner = next_msg(&mut ws).await;
    let _close = next_msg(&mut ws).await;
    wait_until("disconnect logged", || {
        logs.text().contains("terminal_disconnected")
    })
    .await;

    let text = logs.text();
    assert!(!text.contains(&s.token), "token leaked: {text}");
    assert!(!text.contains("not-the-token"), "header leaked: {text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        lines
            .iter()
            .find(|l| pred(l))
            .unwrap_or_else(|| panic!("no such line in {text}"))
            .clone()
    };
    let listening = find(&|l| l["msg"] == "Session server listening");
    assert_eq!(
        listening["advertise_address"],
        f.handle.advertise_address.as_str()
    );
    let auth = find(&|l| l["msg"] == "Authorization header is not valid");
    assert_eq!(auth["level"], "error");
    let rejected = find(&|l| l["event"] == "terminal_rejected");
    assert_eq!(rejected["reason"], "unauthorized");
    assert!(rejected["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let connected = find(&|l| l["event"] == "terminal_connected");
    assert_eq!(connected["role"], "interactive");
    assert_eq!(connected["level"], "info");
    let gone = find(&|l| l["event"] == "terminal_disconnected");
    assert_eq!(gone["reason"], "job_finished");
    assert_eq!(gone["bytes_in"], 2);
    assert_eq!(gone["bytes_out"], 2);
    assert!(gone["duration_s"].is_number());
    let closed = find(&|l| l["msg"] == "Closed active terminal connection");
    assert_eq!(closed["level"], "warning");
}

#[tokio::test]
async fn idle_terminal_is_closed_with_idle_timeout() {
    let f = fixture_with(ServerOptions {
        terminal_wait: timeout(),
        idle_timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await;
    let fake = Fake::new(Kind::Echo);
    let s = f.session(Some(fake.clone()));
    let (mut ws, _) = f.connect(&s, &[]).await;
    echo(&mut ws, b"x").await;
    match next_msg(&mut ws).await {
        Message::Binary(b) => assert!(String::from_utf8_lossy(&b).contains("no input or output")),
        m => panic!("unexpected {m:?}"),
    }
    match next_msg(&mut ws).await {
        Message::Close(Some(c)) => assert_eq!(c.reason.as_str(), "idle_timeout"),
        m => panic!("unexpected {m:?}"),
    }
    wait_until("idle close counted", || {
        f.closes(close_reason::IDLE_TIMEOUT) == 1
    })
    .await;
    assert_eq!(fake.calls.closes.load(Ordering::SeqCst), 1);
    // Only the connection ended, not the session.
    assert!(!s.session.is_closed());
}
