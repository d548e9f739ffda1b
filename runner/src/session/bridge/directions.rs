//! The two directions of a bridge: client frames → terminal input and
//! resizes, terminal output → client frames (with the pings). Each
//! returns how the connection ended when it ends it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use termgate::metrics::close_reason;
use termgate::terminal::{Frame, FrameKind, Incoming, ProtocolError, EOT};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::{BridgeContext, Counts, End, BURST_AFTER, BURST_CHUNK, OUTPUT_CHUNK, TERMINAL_EXITED};
use crate::executor::terminal::{TermSize, TerminalControl};
use termgate::logschema::{self as schema, msg};

pub(crate) fn to_message(f: Frame) -> Message {
    match f.kind {
        FrameKind::Text => match String::from_utf8(f.payload) {
            Ok(s) => Message::Text(s.into()),
            Err(e) => Message::Binary(e.into_bytes().into()),
        },
        _ => Message::Binary(f.payload.into()),
    }
}

/// Client frames → terminal input / resize. Returns when the client leaves
/// or a frame must end the connection.
pub(super) async fn client_to_terminal<S, W>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    input: &mut W,
    control: &dyn TerminalControl,
    ctx: &BridgeContext,
    counts: &Counts,
    mut joined: Option<&mut mpsc::Receiver<Bytes>>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    W: AsyncWrite + Unpin + ?Sized,
{
    use tungstenite::Error as WsError;
    let bytes_in = ctx.metrics.session_bytes_total.with_label_values(&["in"]);
    loop {
        let m = tokio::select! {
            m = stream.next() => match m {
                Some(m) => m,
                None => break,
            },
            Some(data) = recv(&mut joined) => {
                // A joined operator typed: into the same terminal.
                if let Err(end) = write_input(input, &data, ctx, counts, &bytes_in).await {
                    return end;
                }
                continue;
            }
        };
        let (kind, payload): (FrameKind, Bytes) = match m {
            Ok(Message::Binary(b)) => (FrameKind::Binary, b),
            Ok(Message::Text(t)) => (FrameKind::Text, Bytes::from(t)),
            Ok(Message::Close(_)) => return End::ClientLeft(None),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Err(WsError::Capacity(e)) => {
                return End::server(
                    close_reason::FRAME_TOO_LARGE,
                    CloseCode::Size,
                    Some(e.to_string()),
                )
            }
            Err(WsError::Utf8) => {
                return End::server(
                    close_reason::ERROR,
                    CloseCode::Invalid,
                    Some("invalid UTF-8 in a text frame".into()),
                )
            }
            Err(WsError::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))
            | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                return End::ClientLeft(None)
            }
            Err(WsError::Io(e)) => return End::ClientLeft(Some(e.to_string())),
            Err(e) => {
                return End::server(
                    close_reason::ERROR,
                    CloseCode::Protocol,
                    Some(e.to_string()),
                )
            }
        };
        match ctx.codec.decode(kind, &payload) {
            Ok(Incoming::Input(data)) => {
                if data.is_empty() {
                    continue;
                }
                if let Err(end) = write_input(input, &data, ctx, counts, &bytes_in).await {
                    return end;
                }
                counts
                    .last_input_eot
                    .store(data.as_slice() == [EOT], Ordering::Relaxed);
            }
            Ok(Incoming::Resize { cols, rows }) => {
                let size = TermSize { cols, rows };
                if let Err(e) = control.resize(size).await {
                    tracing::debug!({ schema::ERROR } = %e, { schema::COLS } = cols, { schema::ROWS } = rows, "{}", msg::TERMINAL_RESIZE_FAILED);
                }
                if let Some(r) = &ctx.recording {
                    r.resize(size);
                }
            }
            Ok(Incoming::Ignore) => {}
            Err(e @ ProtocolError::FrameTooLarge { .. }) => {
                return End::server(
                    close_reason::FRAME_TOO_LARGE,
                    CloseCode::Size,
                    Some(e.to_string()),
                )
            }
            Err(e) => {
                return End::server(close_reason::ERROR, CloseCode::Invalid, Some(e.to_string()))
            }
        }
    }
    End::ClientLeft(None)
}

/// Write client (or joined operator) input to the terminal, and count it.
async fn write_input<W>(
    input: &mut W,
    data: &[u8],
    ctx: &BridgeContext,
    counts: &Counts,
    bytes_in: &prometheus::IntCounter,
) -> Result<(), End>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let written = async {
        input.write_all(data).await?;
        input.flush().await
    };
    if let Err(e) = written.await {
        return Err(End::server(
            close_reason::ERROR,
            CloseCode::Error,
            Some(format!("writing to the terminal failed: {e}")),
        ));
    }
    counts.touch();
    let n = data.len() as u64;
    counts.bytes_in.fetch_add(n, Ordering::Relaxed);
    bytes_in.inc_by(n);
    ctx.registry.bump_bytes(&ctx.session, n, 0);
    if let Some(r) = &ctx.recording {
        r.input(data);
    }
    Ok(())
}

/// The next item of an optional channel; pending forever without one or
/// once it closed.
async fn recv<T>(rx: &mut Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(v) => Some(v),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Terminal output → client frames, and the keepalive Ping. The terminal is
/// read again only after the previous frame was flushed. The user's
/// terminal also goes to its watchers ([`crate::session::share`]), to the
/// recording, and carries the banners about operators.
pub(super) async fn terminal_to_client<S, R>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    output: &mut R,
    ctx: &BridgeContext,
    counts: &Counts,
    mut banners: Option<&mut mpsc::Receiver<String>>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin + ?Sized,
{
    let mut buf = vec![0u8; OUTPUT_CHUNK];
    let period = ctx.ping_interval.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let bytes_out = ctx.metrics.session_bytes_total.with_label_values(&["out"]);
    let mut first_byte_sent = false;
    loop {
        let (msg, n) = tokio::select! {
            r = output.read(&mut buf[..OUTPUT_CHUNK]) => match r {
                Ok(0) => {
                    // The shell ended. Right after Workhorse's hang-up EOT
                    // that is the client leaving.
                    return if counts.last_input_eot.load(Ordering::Relaxed) {
                        End::ClientLeft(None)
                    } else {
                        End::server(TERMINAL_EXITED, CloseCode::Normal, None)
                    };
                }
                Ok(n) => {
                    let n = if n >= BURST_AFTER {
                        read_ready(output, &mut buf, n)
                    } else {
                        if buf.len() > OUTPUT_CHUNK {
                            // Output slowed down: give the burst buffer back.
                            buf.truncate(OUTPUT_CHUNK);
                            buf.shrink_to_fit();
                        }
                        n
                    };
                    (to_message(ctx.codec.encode_output(&buf[..n])), n)
                }
                Err(e) => {
                    return End::server(
                        close_reason::ERROR,
                        CloseCode::Error,
                        Some(format!("reading the terminal failed: {e}")),
                    )
                }
            },
            _ = ping.tick() => (Message::Ping(Bytes::new()), 0),
            Some(line) = recv(&mut banners) => {
                // Shown to the user, its watchers and the recording alike.
                ctx.session.share.publish(line.as_bytes());
                if let Some(r) = &ctx.recording {
                    r.output(line.as_bytes());
                }
                (to_message(ctx.codec.encode_output(line.as_bytes())), 0)
            }
        };
        if let Err(e) = sink.send(msg).await {
            return End::ClientLeft(match e {
                tungstenite::Error::Io(e) => Some(e.to_string()),
                _ => None,
            });
        }
        if n > 0 {
            // Watchers and the recording get the chunk once the user's frame
            // is out: waking them first would let them compete with it.
            let data = &buf[..n];
            if ctx.role == super::ROLE_INTERACTIVE {
                ctx.session.share.publish(data);
            }
            if let Some(r) = &ctx.recording {
                r.output(data);
            }
            if !first_byte_sent {
                first_byte_sent = true;
                ctx.metrics
                    .session_connect_seconds
                    .observe(ctx.requested_at.elapsed().as_secs_f64());
            }
            counts.touch();
            let n = n as u64;
            counts.bytes_out.fetch_add(n, Ordering::Relaxed);
            bytes_out.inc_by(n);
            ctx.registry.bump_bytes(&ctx.session, 0, n);
        }
    }
}

/// After a large read of `len` bytes: append whatever `output` has ready
/// without waiting, up to [`BURST_CHUNK`]; returns the new length. End of
/// file and errors stop the appending and show up on the next read.
fn read_ready<R>(output: &mut R, buf: &mut Vec<u8>, len: usize) -> usize
where
    R: AsyncRead + Unpin + ?Sized,
{
    if buf.len() < BURST_CHUNK {
        buf.resize(BURST_CHUNK, 0);
    }
    append_ready(output, &mut buf[..BURST_CHUNK], len)
}

/// Fill `buf` after its first `len` bytes with whatever `output` has ready
/// right now, without waiting; returns the new length. End of file and
/// errors stop the appending and show up on the next read. (The bench's
/// bare-PTY floor reads the same way.)
pub fn append_ready<R>(output: &mut R, buf: &mut [u8], mut len: usize) -> usize
where
    R: AsyncRead + Unpin + ?Sized,
{
    use futures::FutureExt as _;
    while len < buf.len() {
        match output.read(&mut buf[len..]).now_or_never() {
            Some(Ok(n)) if n > 0 => len += n,
            _ => break,
        }
    }
    len
}
