//! Big pastes (issue 20, item 3): xterm.js sends a paste as one frame; up
//! to `max_input_frame` bytes of input arrive in the terminal whole, in
//! every subprotocol, and only a larger frame closes the connection.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::*;

/// `n` bytes of a paste: lines of printable text, like a script.
fn paste(n: usize) -> Vec<u8> {
    let line = b"echo 'the quick brown fox jumps over the lazy dog 0123456789'; # pasted\n";
    line.iter().copied().cycle().take(n).collect()
}

/// `data` as the one frame a client speaking `proto` sends.
fn input_frame(proto: &str, data: &[u8]) -> Message {
    match proto {
        "base64.terminal.gitlab.com" => Message::Text(
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .into(),
        ),
        "v4.channel.k8s.io" => Message::Binary(k8s_stdin_frame(data).payload.into()),
        _ => Message::Binary(data.to_vec().into()),
    }
}

/// Read the echo terminal's output (decoded for `proto`) until `n` bytes came.
async fn read_output(ws: &mut Ws, proto: &str, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match next_msg(ws).await {
            Message::Binary(b) if proto == "v4.channel.k8s.io" => {
                assert_eq!(b.first(), Some(&1), "stdout channel");
                got.extend_from_slice(&b[1..]);
            }
            Message::Binary(b) => got.extend_from_slice(&b),
            Message::Text(t) => got.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(t.as_bytes())
                    .unwrap(),
            ),
            m => panic!("unexpected {m:?} after {} of {n} bytes", got.len()),
        }
    }
    got
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test]
async fn pastes_up_to_the_limit_arrive_whole_in_every_subprotocol() {
    let f = fixture().await;
    let other = f.session(Some(Fake::new(Kind::Echo)));
    let (mut bystander, _) = f.connect(&other, &["terminal.gitlab.com"]).await;
    for proto in [
        "terminal.gitlab.com",
        "base64.terminal.gitlab.com",
        "v4.channel.k8s.io",
    ] {
        let s = f.session(Some(Fake::new(Kind::Echo)));
        let (mut ws, chosen) = f.connect(&s, &[proto]).await;
        assert_eq!(chosen.as_deref(), Some(proto));
        // 70 KB (over the old 64 KiB limit), then exactly the 1 MiB limit.
        for n in [70_000, DEFAULT_MAX_INPUT_FRAME] {
            let data = paste(n);
            ws.send(input_frame(proto, &data)).await.unwrap();
            let got = read_output(&mut ws, proto, n).await;
            assert_eq!(got.len(), n, "{proto}");
            assert_eq!(sha(&got), sha(&data), "{proto}: {n} bytes");
        }
        // Still open and usable.
        ws.send(input_frame(proto, b"after")).await.unwrap();
        assert_eq!(read_output(&mut ws, proto, 5).await, b"after");
        assert_eq!(
            s.session.bytes_in.load(Ordering::Relaxed),
            70_000 + DEFAULT_MAX_INPUT_FRAME as u64 + 5
        );
    }
    echo(&mut bystander, b"unaffected").await;
    assert_eq!(f.closes(close_reason::FRAME_TOO_LARGE), 0);
}

#[tokio::test]
async fn a_frame_over_the_configured_limit_closes_with_1009() {
    let cfg = config::SessionServer {
        max_input_frame: 1000,
        ..Default::default()
    };
    let f = fixture_with_config(
        ServerOptions {
            terminal_wait: timeout(),
            ..Default::default()
        },
        cfg,
    )
    .await;
    let other = f.session(Some(Fake::new(Kind::Echo)));
    let (mut bystander, _) = f.connect(&other, &["terminal.gitlab.com"]).await;
    // (protocol, frame, what the close reason names)
    let cases = [
        // Input of 1001 bytes: refused by the codec.
        (
            "terminal.gitlab.com",
            input_frame("terminal.gitlab.com", &paste(1001)),
            "1001",
        ),
        // base64 of 1001 bytes fits the frame limit (1337), not the input one.
        (
            "base64.terminal.gitlab.com",
            input_frame("base64.terminal.gitlab.com", &paste(1001)),
            "1001",
        ),
        (
            "v4.channel.k8s.io",
            input_frame("v4.channel.k8s.io", &paste(1001)),
            "1001",
        ),
        // A frame larger than any subprotocol needs: refused while read.
        (
            "base64.terminal.gitlab.com",
            input_frame("base64.terminal.gitlab.com", &paste(3000)),
            "1337",
        ),
    ];
    for (i, (proto, frame, names)) in cases.into_iter().enumerate() {
        let s = f.session(Some(Fake::new(Kind::Echo)));
        let (mut ws, _) = f.connect(&s, &[proto]).await;
        // Exactly the limit is fine.
        ws.send(input_frame(proto, &paste(1000))).await.unwrap();
        assert_eq!(read_output(&mut ws, proto, 1000).await, paste(1000));
        ws.send(frame).await.unwrap();
        let close = loop {
            match next_msg(&mut ws).await {
                Message::Close(Some(c)) => break c,
                Message::Close(None) => panic!("close without a reason"),
                _ => {} // the banner
            }
        };
        assert_eq!(u16::from(close.code), 1009, "{proto}: {}", close.reason);
        assert!(
            close.reason.starts_with("frame_too_large: "),
            "{proto}: {}",
            close.reason
        );
        assert!(close.reason.contains(names), "{proto}: {}", close.reason);
        wait_until("frame_too_large counted", || {
            f.closes(close_reason::FRAME_TOO_LARGE) == i as u64 + 1
        })
        .await;
        // Nothing of the refused frame reached the terminal.
        assert_eq!(s.session.bytes_in.load(Ordering::Relaxed), 1000);
    }
    echo(&mut bystander, b"unaffected").await;
}
