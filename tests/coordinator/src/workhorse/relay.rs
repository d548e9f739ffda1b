//! The relay between a client and the runner once both are connected:
//! Workhorse's `channel/proxy.go` with its wrappers.

use std::time::Duration;

use axum::extract::ws::{self, WebSocket};
use bytes::Bytes;
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use termgate::terminal::{wrap_read, wrap_write, Frame, FrameKind, EOT};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self as ts};

use super::{truncate, Upstream};

/// Bound on each closing step (EOT, close frames).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest close reason a close frame can carry.
const MAX_CLOSE_REASON: usize = 123;

/// How a proxied session ended.
#[derive(Debug)]
pub(super) enum End {
    /// The client sent a close frame or went away.
    ClientLeft(&'static str),
    /// The runner sent this close frame.
    RunnerClosed(Option<CloseFrame>),
    /// The runner's connection ended without a close frame.
    RunnerGone,
    /// Reading, writing or decoding failed.
    Error(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::ClientLeft(how) => write!(f, "client left ({how})"),
            End::RunnerClosed(Some(c)) => {
                write!(
                    f,
                    "runner closed ({} {:?})",
                    u16::from(c.code),
                    c.reason.as_str()
                )
            }
            End::RunnerClosed(None) => write!(f, "runner closed"),
            End::RunnerGone => write!(f, "runner connection ended"),
            End::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Relay until either side ends, then close both as Workhorse does.
pub(super) async fn proxy(
    client: WebSocket,
    upstream: Upstream,
    protocol: &'static str,
    ping: Duration,
) -> End {
    let (mut c_tx, mut c_rx) = client.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    let end = tokio::select! {
        e = client_to_runner(&mut c_rx, &mut u_tx, protocol) => e,
        e = runner_to_client(&mut u_rx, &mut c_tx, protocol, ping) => e,
    };
    match &end {
        End::RunnerClosed(frame) => {
            let frame = frame.as_ref().map(|f| ws::CloseFrame {
                code: u16::from(f.code),
                reason: f.reason.as_str().into(),
            });
            bounded(c_tx.send(ws::Message::Close(frame))).await;
            bounded(c_tx.close()).await;
            // Completes the close handshake the runner started.
            bounded(u_tx.close()).await;
        }
        End::RunnerGone => {
            let frame = ws::CloseFrame {
                code: 1000,
                reason: "the runner closed the terminal connection".into(),
            };
            bounded(c_tx.send(ws::Message::Close(Some(frame)))).await;
            bounded(c_tx.close()).await;
        }
        End::ClientLeft(_) | End::Error(_) => {
            // Workhorse: `defer upstream.WriteMessage(BinaryMessage, eot)`.
            bounded(u_tx.send(ts::Message::Binary(Bytes::from_static(&[EOT])))).await;
            bounded(u_tx.close()).await;
            if let End::Error(e) = &end {
                let frame = ws::CloseFrame {
                    code: 1011,
                    reason: truncate(&format!("terminal proxy error: {e}"), MAX_CLOSE_REASON)
                        .into(),
                };
                bounded(c_tx.send(ws::Message::Close(Some(frame)))).await;
            }
            bounded(c_tx.close()).await;
        }
    }
    end
}

/// Run a closing step, ignoring its failure and bounding its time.
async fn bounded<F: std::future::Future>(step: F) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, step).await;
}

/// Client frames → raw bytes → the runner.
async fn client_to_runner<R, W>(c_rx: &mut R, u_tx: &mut W, protocol: &str) -> End
where
    R: Stream<Item = Result<ws::Message, axum::Error>> + Unpin,
    W: Sink<ts::Message, Error = ts::Error> + Unpin,
{
    loop {
        let frame = match c_rx.next().await {
            None => return End::ClientLeft("connection ended"),
            Some(Err(_)) => return End::ClientLeft("connection lost"),
            Some(Ok(msg)) => match msg {
                ws::Message::Binary(b) => Frame::binary(b.into()),
                ws::Message::Text(t) => Frame::text(t.as_str().as_bytes().to_vec()),
                ws::Message::Ping(p) => {
                    if let Err(e) = u_tx.send(ts::Message::Ping(p)).await {
                        return End::Error(format!("writing to the runner: {e}"));
                    }
                    continue;
                }
                ws::Message::Pong(_) => continue,
                ws::Message::Close(_) => return End::ClientLeft("close frame"),
            },
        };
        let raw = match wrap_read(protocol, frame) {
            Ok(f) => f.payload,
            Err(e) => return End::Error(format!("reading from the client: {e}")),
        };
        if let Err(e) = u_tx.send(ts::Message::Binary(raw.into())).await {
            return End::Error(format!("writing to the runner: {e}"));
        }
    }
}

/// Runner output → client frames, plus the keepalive ping.
async fn runner_to_client<R, W>(u_rx: &mut R, c_tx: &mut W, protocol: &str, ping: Duration) -> End
where
    R: Stream<Item = Result<ts::Message, ts::Error>> + Unpin,
    W: Sink<ws::Message, Error = axum::Error> + Unpin,
{
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            _ = tick.tick() => ws::Message::Ping(Bytes::new()),
            m = u_rx.next() => match m {
                None => return End::RunnerGone,
                Some(Err(
                    ts::Error::ConnectionClosed
                    | ts::Error::AlreadyClosed
                    | ts::Error::Protocol(ts::error::ProtocolError::ResetWithoutClosingHandshake),
                )) => return End::RunnerGone,
                // gitlab-runner ends a terminal by closing the TCP connection
                // (no close frame, no TLS close_notify).
                Some(Err(ts::Error::Io(e))) if is_eof(&e) => return End::RunnerGone,
                Some(Err(e)) => return End::Error(format!("reading from the runner: {e}")),
                Some(Ok(msg)) => match msg {
                    ts::Message::Binary(b) => client_message(protocol, Frame::binary(b.into())),
                    ts::Message::Text(t) => {
                        client_message(protocol, Frame::text(t.as_str().as_bytes().to_vec()))
                    }
                    ts::Message::Ping(p) => ws::Message::Ping(p),
                    ts::Message::Pong(_) | ts::Message::Frame(_) => continue,
                    ts::Message::Close(f) => return End::RunnerClosed(f),
                },
            },
        };
        if let Err(e) = c_tx.send(msg).await {
            return End::Error(format!("writing to the client: {e}"));
        }
    }
}

fn is_eof(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Raw runner output as a frame of the client's subprotocol.
fn client_message(protocol: &str, frame: Frame) -> ws::Message {
    let out = wrap_write(protocol, frame);
    match out.kind {
        FrameKind::Text => {
            ws::Message::Text(String::from_utf8_lossy(&out.payload).into_owned().into())
        }
        _ => ws::Message::Binary(out.payload.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use termgate::terminal::TERMINAL_GITLAB;

    const WAIT: Duration = Duration::from_secs(10);

    /// The client gets an empty ping every period even when the runner is
    /// silent.
    #[tokio::test]
    async fn keepalive_pings_the_client() {
        let (c_tx, mut c_rx) = futures::channel::mpsc::channel::<ws::Message>(1);
        let mut c_tx = c_tx.sink_map_err(axum::Error::new);
        let mut u_rx = futures::stream::pending::<Result<ts::Message, ts::Error>>();
        let relay = runner_to_client(
            &mut u_rx,
            &mut c_tx,
            TERMINAL_GITLAB,
            Duration::from_millis(20),
        );
        let pings = async {
            for _ in 0..2 {
                assert_eq!(c_rx.next().await, Some(ws::Message::Ping(Bytes::new())));
            }
        };
        tokio::select! {
            end = relay => panic!("relay ended: {end}"),
            r = tokio::time::timeout(WAIT, pings) => r.unwrap(),
        }
    }
}
