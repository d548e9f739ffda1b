//! One interactive WebSocket connection bridged to one open terminal.
//!
//! Everything runs in one task as three concurrent futures (client → terminal,
//! terminal → client, the session's end), so nothing is spawned or queued:
//! - terminal output is read in chunks of [`OUTPUT_CHUNK`] bytes and the next
//!   chunk is read only once the previous frame was flushed to the client
//!   (a client that stops reading pauses the terminal; memory stays bounded);
//! - a client frame is decoded and written to the terminal before the next
//!   one is read (a terminal that stops reading input pauses the client);
//! - an empty Ping goes out every `ping_interval` (gitlab-runner: 30 s); pongs
//!   to the client's pings are queued by tungstenite and sent with the next
//!   write;
//! - with an idle timeout, nothing going either way for that long closes
//!   the connection with `idle_timeout` (the session stays open).
//!
//! Every close has a reason (`termgate::metrics::close_reason`, plus
//! [`TERMINAL_EXITED`]). When the server ends the connection it first sends a
//! one-line banner to the terminal client, then a Close frame whose reason
//! text starts with the reason (`<reason>` or `<reason>: <detail>`), then
//! kills the shell; when the client ends it, the shell is killed too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use termgate::logschema::{event, msg};
use termgate::metrics::close_reason;
use termgate::terminal::{Frame, FrameKind, Incoming, ProtocolError, ServerCodec, EOT};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::executor::terminal::{TermSize, TerminalControl, TerminalHandle};
use crate::metrics::Metrics;
use crate::session::{SeatGuard, Session, SessionRegistry};

/// `role` label and log field of the interactive seat.
pub const ROLE_INTERACTIVE: &str = "interactive";
/// Close reason when the terminal's shell ended on its own (the user typed
/// `exit`). Not in `termgate::metrics::close_reason` yet: proposed there.
pub const TERMINAL_EXITED: &str = close_reason::TERMINAL_EXITED;
/// Bytes read from the terminal per frame. Linux PTYs return at most ~4 KiB
/// a read anyway; a small buffer keeps a connected session's memory small
/// (well under upstream's 32 KiB `io.Copy` buffer, [`MAX_OUTPUT_FRAME`]).
///
/// [`MAX_OUTPUT_FRAME`]: termgate::terminal::MAX_OUTPUT_FRAME
pub const OUTPUT_CHUNK: usize = 4 * 1024;
/// A terminal read of at least this much means bulk output: whatever more
/// is ready is read at once (see [`BURST_CHUNK`]).
pub const BURST_AFTER: usize = OUTPUT_CHUNK / 2;
/// Under bulk output (a read of at least [`BURST_AFTER`]),
/// whatever more the terminal has ready right now is appended, up to this
/// much, and sent as one frame: two TLS records in one socket write instead
/// of six writes. 24 KiB keeps every frame within [`MAX_OUTPUT_FRAME`] on
/// the wire in each subprotocol (base64: exactly 32 KiB; k8s: one channel
/// byte more). The larger buffer is given back as soon as output slows
/// down, so an idle session keeps only [`OUTPUT_CHUNK`].
///
/// [`MAX_OUTPUT_FRAME`]: termgate::terminal::MAX_OUTPUT_FRAME
pub const BURST_CHUNK: usize = termgate::terminal::MAX_OUTPUT_FRAME / 4 * 3;
/// How long a server-initiated close waits for the client to take the banner
/// and the Close frame, and to answer it.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// tungstenite settings for a session connection: small buffers (the goal
/// is ≤ 32 KiB per connected session including TLS), frames flushed as
/// soon as written, and anything over 1 MiB refused while it is read (frames
/// between 64 KiB and 1 MiB are refused by the codec).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_frame_size(Some(1024 * 1024))
        .max_message_size(Some(1024 * 1024))
}

/// Read buffer of a WebSocket *client* of a session (the coordinator's
/// Workhorse proxy, the bench). tungstenite zero-fills its whole read buffer
/// before every read, and its default is 128 KiB: with that default, clearing
/// memory was a third of a client's CPU per keystroke echo. Larger frames
/// still arrive whole: the buffer grows to the frame being read.
pub const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// tungstenite settings for a client of a session: [`CLIENT_READ_BUFFER`],
/// frames written at once, and messages up to `max_message` bytes.
pub fn client_ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(CLIENT_READ_BUFFER)
        .write_buffer_size(0)
        .max_frame_size(Some(max_message))
        .max_message_size(Some(max_message))
}

/// What a bridge needs besides the socket and the terminal.
pub struct BridgeContext {
    pub session: Arc<Session>,
    /// The interactive seat, released when the bridge ends.
    pub seat: SeatGuard,
    pub registry: Arc<SessionRegistry>,
    pub metrics: Arc<Metrics>,
    pub codec: ServerCodec,
    pub peer: SocketAddr,
    /// When the `/exec` request arrived (for `session_connect_seconds`).
    pub requested_at: Instant,
    pub ping_interval: Duration,
    /// Close with `idle_timeout` after this long without input or output.
    pub idle_timeout: Option<Duration>,
    /// Runner shutdown: closes with `runner_shutdown`.
    pub shutdown: CancellationToken,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The client sent Close, or its connection went away (with the
    /// socket's error when it failed rather than closed, e.g. a client
    /// whose network vanished: `Connection timed out`).
    ClientLeft(Option<String>),
    /// The server ends it: banner, then Close with `code` and the reason.
    Server {
        reason: &'static str,
        code: CloseCode,
        detail: Option<String>,
    },
}

impl End {
    fn server(reason: &'static str, code: CloseCode, detail: Option<String>) -> Self {
        End::Server {
            reason,
            code,
            detail,
        }
    }

    /// The job loop closed the session with `reason`.
    fn session(reason: &'static str) -> Self {
        let code = if reason == close_reason::RUNNER_SHUTDOWN {
            CloseCode::Away
        } else if reason == close_reason::ERROR {
            CloseCode::Error
        } else {
            CloseCode::Normal
        };
        End::server(reason, code, None)
    }

    fn reason(&self) -> &'static str {
        match self {
            End::ClientLeft(_) => close_reason::CLIENT_LEFT,
            End::Server { reason, .. } => reason,
        }
    }
}

/// The banner's words for a close reason.
pub fn human_reason(reason: &str) -> &'static str {
    match reason {
        close_reason::CLIENT_LEFT => "the client left",
        close_reason::JOB_FINISHED => "the job finished",
        close_reason::JOB_CANCELLED => "the job was cancelled",
        close_reason::SESSION_TIMEOUT => "the session timed out",
        close_reason::IDLE_TIMEOUT => "no input or output for too long",
        close_reason::RUNNER_SHUTDOWN => "the runner is shutting down",
        close_reason::REPLACED => "another connection replaced this one",
        close_reason::FRAME_TOO_LARGE => "a frame from the client was too large",
        TERMINAL_EXITED => "the shell exited",
        _ => "an error occurred",
    }
}

/// Byte counts and activity of one connection.
struct Counts {
    started: Instant,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// The last input was a lone EOT (what Workhorse sends when the browser
    /// leaves): a shell exiting right after is the client leaving.
    last_input_eot: AtomicBool,
    /// Milliseconds from the start of the connection to the last input or
    /// output byte.
    last_activity_ms: AtomicU64,
}

impl Counts {
    fn new() -> Self {
        Counts {
            started: Instant::now(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            last_input_eot: AtomicBool::new(false),
            last_activity_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }
}

/// Keeps `session_websocket_connections{role}` right even if the task is
/// dropped mid-way.
struct ConnectionGauge(Arc<Metrics>);

impl ConnectionGauge {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics
            .session_websocket_connections
            .with_label_values(&[ROLE_INTERACTIVE])
            .inc();
        metrics
            .session_websocket_connections_total
            .with_label_values(&[ROLE_INTERACTIVE])
            .inc();
        ConnectionGauge(metrics)
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0
            .session_websocket_connections
            .with_label_values(&[ROLE_INTERACTIVE])
            .dec();
    }
}

/// Bridge `ws` and `term` until one side ends; returns the close reason.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    term: TerminalHandle,
    ctx: BridgeContext,
) -> &'static str
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Counts::new();
    let started = counts.started;
    let _gauge = ConnectionGauge::new(ctx.metrics.clone());
    let job = ctx.session.job.job_id;
    tracing::info!(
        event = event::TERMINAL_CONNECTED,
        role = ROLE_INTERACTIVE,
        peer = %ctx.peer,
        job,
        protocol = ctx.codec.protocol.name(),
        "{}", msg::TERMINAL_CONNECTED
    );
    let TerminalHandle {
        mut output,
        mut input,
        control,
    } = term;
    let (mut sink, mut stream) = ws.split();

    let end = {
        let from_client = client_to_terminal(&mut stream, &mut input, &*control, &ctx, &counts);
        let to_client = terminal_to_client(&mut sink, &mut output, &ctx, &counts);
        tokio::select! {
            e = from_client => e,
            e = to_client => e,
            e = idle(ctx.idle_timeout, &counts) => e,
            _ = ctx.session.closed() => End::session(
                ctx.session.close_reason().unwrap_or(close_reason::JOB_FINISHED),
            ),
            _ = ctx.shutdown.cancelled() => End::session(close_reason::RUNNER_SHUTDOWN),
        }
    };

    let mut seat = Some(ctx.seat);
    let mut await_close_reply = None;
    match &end {
        End::Server {
            reason,
            code,
            detail,
        } => {
            let banner = format!(
                "\r\n[termgate] terminal closed: {}{}\r\n",
                human_reason(reason),
                detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
            let text = match detail {
                Some(d) => truncate_close_reason(format!("{reason}: {d}")),
                None => reason.to_string(),
            };
            let frame = CloseFrame {
                code: *code,
                reason: text.into(),
            };
            let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
            let send = async {
                sink.send(to_message(ctx.codec.encode_status(&banner)))
                    .await?;
                sink.send(Message::Close(Some(frame))).await
            };
            if let Ok(Ok(())) = tokio::time::timeout_at(deadline, send).await {
                await_close_reply = Some(deadline);
            }
            control.close().await;
        }
        End::ClientLeft(_) => {
            // The client is gone: free the seat (and end a hold waiting for
            // it) now, not after the shell's cleanup. When many terminals
            // close at once that cleanup can take seconds, and a returning
            // client would be refused with 423 all that time.
            drop(seat.take());
            control.close().await;
            // Flush the echo of the client's Close, if any.
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
        }
    }

    let reason = end.reason();
    let client_error = match &end {
        End::ClientLeft(e) => e.as_deref(),
        End::Server { .. } => None,
    };
    let duration = started.elapsed();
    let (bytes_in, bytes_out) = (
        counts.bytes_in.load(Ordering::Relaxed),
        counts.bytes_out.load(Ordering::Relaxed),
    );
    let m = &ctx.metrics;
    m.session_closes_total.with_label_values(&[reason]).inc();
    m.session_duration_seconds.observe(duration.as_secs_f64());
    tracing::info!(
        event = event::TERMINAL_DISCONNECTED,
        reason,
        role = ROLE_INTERACTIVE,
        peer = %ctx.peer,
        job,
        duration_s = duration.as_secs_f64(),
        bytes_in,
        bytes_out,
        error = client_error,
        "{}", msg::TERMINAL_DISCONNECTED
    );
    tracing::warn!(job, "{}", msg::CLOSED_ACTIVE);
    drop(seat);

    if let Some(deadline) = await_close_reply {
        // Give the client until the deadline to answer the Close (it may
        // still send data first), then drop the connection.
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(Ok(m)) = stream.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
    }
    reason
}

/// Resolves with `idle_timeout` once nothing went either way for `limit`.
async fn idle(limit: Option<Duration>, counts: &Counts) -> End {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    loop {
        let last =
            counts.started + Duration::from_millis(counts.last_activity_ms.load(Ordering::Relaxed));
        let deadline = last + limit;
        if Instant::now() >= deadline {
            return End::session(close_reason::IDLE_TIMEOUT);
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// Close reasons are at most 123 bytes on the wire.
fn truncate_close_reason(mut s: String) -> String {
    if s.len() > 123 {
        let mut cut = 123;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn to_message(f: Frame) -> Message {
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
async fn client_to_terminal<S, W>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    input: &mut W,
    control: &dyn TerminalControl,
    ctx: &BridgeContext,
    counts: &Counts,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    W: AsyncWrite + Unpin + ?Sized,
{
    use tungstenite::Error as WsError;
    let bytes_in = ctx.metrics.session_bytes_total.with_label_values(&["in"]);
    while let Some(m) = stream.next().await {
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
                let written = async {
                    input.write_all(&data).await?;
                    input.flush().await
                };
                if let Err(e) = written.await {
                    return End::server(
                        close_reason::ERROR,
                        CloseCode::Error,
                        Some(format!("writing to the terminal failed: {e}")),
                    );
                }
                counts.touch();
                let n = data.len() as u64;
                counts.bytes_in.fetch_add(n, Ordering::Relaxed);
                counts
                    .last_input_eot
                    .store(data.as_slice() == [EOT], Ordering::Relaxed);
                bytes_in.inc_by(n);
                ctx.registry.bump_bytes(&ctx.session, n, 0);
            }
            Ok(Incoming::Resize { cols, rows }) => {
                if let Err(e) = control.resize(TermSize { cols, rows }).await {
                    tracing::debug!(error = %e, cols, rows, "{}", msg::TERMINAL_RESIZE_FAILED);
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

/// Terminal output → client frames, and the keepalive Ping. The terminal is
/// read again only after the previous frame was flushed.
async fn terminal_to_client<S, R>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    output: &mut R,
    ctx: &BridgeContext,
    counts: &Counts,
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
        };
        if let Err(e) = sink.send(msg).await {
            return End::ClientLeft(match e {
                tungstenite::Error::Io(e) => Some(e.to_string()),
                _ => None,
            });
        }
        if n > 0 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reason_text_fits_a_frame() {
        let long = "é".repeat(100);
        let t = truncate_close_reason(format!("error: {long}"));
        assert!(t.len() <= 123);
        assert!(t.starts_with("error: "));
    }

    #[test]
    fn session_reasons_map_to_close_codes() {
        assert_eq!(
            End::session(close_reason::RUNNER_SHUTDOWN),
            End::server(close_reason::RUNNER_SHUTDOWN, CloseCode::Away, None)
        );
        assert_eq!(
            End::session(close_reason::JOB_CANCELLED),
            End::server(close_reason::JOB_CANCELLED, CloseCode::Normal, None)
        );
        assert_eq!(End::ClientLeft(None).reason(), close_reason::CLIENT_LEFT);
        assert_eq!(
            human_reason(close_reason::JOB_CANCELLED),
            "the job was cancelled"
        );
    }
}
