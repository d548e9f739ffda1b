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

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use termgate::logschema::{self as schema, event, msg};
use termgate::metrics::close_reason;
use termgate::terminal::ServerCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::executor::terminal::{TerminalControl, TerminalHandle};
use crate::metrics::Metrics;
use crate::session::recording::Recording;
use crate::session::share::WriterInbox;
use crate::session::{ClientGuard, SeatGuard, Session, SessionRegistry};

mod directions;
pub mod mirror;

pub use directions::append_ready;
pub(crate) use directions::to_message;
use directions::{client_to_terminal, terminal_to_client};

/// `role` label and log field of the interactive seat.
pub const ROLE_INTERACTIVE: &str = termgate::operator::client_role::INTERACTIVE;
/// Close reason when the terminal's shell ended on its own (the user typed
/// `exit`).
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
/// soon as written, and a frame larger than any subprotocol needs for
/// `max_input` bytes of input ([`max_wire_frame`]) refused while it is
/// read, before it is buffered. Frames within that but carrying more than
/// `max_input` input bytes are refused by the codec. The read buffer grows
/// to the frame being read, so a connection holds at most about one frame.
///
/// [`max_wire_frame`]: termgate::terminal::max_wire_frame
pub fn ws_config(max_input: usize) -> WebSocketConfig {
    let max_frame = termgate::terminal::max_wire_frame(max_input);
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_frame_size(Some(max_frame))
        .max_message_size(Some(max_frame))
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
    /// The interactive seat, released when the bridge ends; `None` for an
    /// operator's own shell.
    pub seat: Option<SeatGuard>,
    /// `termgate::operator::client_role`: `interactive` (the user's seat,
    /// shared with operators through `session.share`) or `shell`.
    pub role: &'static str,
    /// Listed in `/sessions` while the bridge runs.
    pub client: ClientGuard,
    /// Where the terminal is recorded, if recordings are on.
    pub recording: Option<Recording>,
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
        close_reason::TOO_SLOW => "stopped reading, dropped so the terminal never waits",
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

    fn add_in(&self, n: usize) {
        self.touch();
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn add_out(&self, n: usize) {
        self.touch();
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }
}

/// Keeps `session_websocket_connections{role}` right even if the task is
/// dropped mid-way.
pub struct ConnectionGauge(Arc<Metrics>, &'static str);

impl ConnectionGauge {
    pub fn new(metrics: Arc<Metrics>, role: &'static str) -> Self {
        metrics
            .session_websocket_connections
            .with_label_values(&[role])
            .inc();
        metrics
            .session_websocket_connections_total
            .with_label_values(&[role])
            .inc();
        ConnectionGauge(metrics, role)
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0
            .session_websocket_connections
            .with_label_values(&[self.1])
            .dec();
    }
}

/// How a bridge ended: its close reason and what went through it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub reason: &'static str,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
}

/// Bridge `ws` and `term` until one side ends.
pub async fn run<S>(ws: WebSocketStream<S>, term: TerminalHandle, mut ctx: BridgeContext) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Counts::new();
    let _gauge = ConnectionGauge::new(ctx.metrics.clone(), ctx.role);
    log_connected(&ctx);
    let TerminalHandle {
        mut output,
        mut input,
        control,
    } = term;
    let (mut sink, mut stream) = ws.split();
    // The user's terminal takes what joined operators type and the banners
    // about them; an operator's own shell is nobody else's.
    let mut inbox = (ctx.role == ROLE_INTERACTIVE).then(|| ctx.session.share.attach_writer());

    let end = pump(
        &mut stream,
        &mut sink,
        &mut output,
        &mut input,
        &*control,
        &ctx,
        &counts,
        inbox.as_mut(),
    )
    .await;
    drop(inbox);
    let mut seat = ctx.seat.take();
    let close_reply_by = say_goodbye(&end, &mut sink, &*control, &ctx.codec, &mut seat).await;
    record_end(&end, &counts, &ctx);
    drop(seat);
    drop(ctx.recording.take());
    if let Some(deadline) = close_reply_by {
        await_close_reply(&mut stream, deadline).await;
    }
    Ended {
        reason: end.reason(),
        bytes_in: counts.bytes_in.load(Ordering::Relaxed),
        bytes_out: counts.bytes_out.load(Ordering::Relaxed),
        duration: counts.started.elapsed(),
    }
}

/// `terminal_connected`.
fn log_connected(ctx: &BridgeContext) {
    tracing::info!(
        { schema::EVENT } = event::TERMINAL_CONNECTED,
        { schema::ROLE } = ctx.role,
        { schema::PEER } = %ctx.peer,
        { schema::JOB } = ctx.session.job.job_id,
        { schema::PROTOCOL } = ctx.codec.protocol.name(),
        "{}", msg::TERMINAL_CONNECTED
    );
}

/// Both directions, the idle timer, the session's end and the runner's
/// shutdown, until the first of them ends the connection.
#[allow(clippy::too_many_arguments)]
async fn pump<S, R, W>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    output: &mut R,
    input: &mut W,
    control: &dyn TerminalControl,
    ctx: &BridgeContext,
    counts: &Counts,
    inbox: Option<&mut WriterInbox>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let (joined, banners) = match inbox {
        Some(i) => (Some(&mut i.input), Some(&mut i.banners)),
        None => (None, None),
    };
    tokio::select! {
        e = client_to_terminal(stream, input, control, ctx, counts, joined) => e,
        e = terminal_to_client(sink, output, ctx, counts, banners) => e,
        e = idle(ctx.idle_timeout, counts) => e,
        _ = ctx.session.closed() => End::session(
            ctx.session.close_reason().unwrap_or(close_reason::JOB_FINISHED),
        ),
        _ = ctx.shutdown.cancelled() => End::session(close_reason::RUNNER_SHUTDOWN),
    }
}

/// End the connection as `end` says and stop the shell. The server's end:
/// banner and Close frame (within [`CLOSE_WAIT`]); returns until when the
/// client may answer that Close if they went out. The client's end: the
/// seat is freed first.
async fn say_goodbye<S>(
    end: &End,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    control: &dyn TerminalControl,
    codec: &ServerCodec,
    seat: &mut Option<SeatGuard>,
) -> Option<tokio::time::Instant>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match end {
        End::Server { .. } => {
            let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
            let sent = send_goodbye(end, "terminal", sink, codec, deadline).await;
            control.close().await;
            sent.then_some(deadline)
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
            None
        }
    }
}

/// The server's end of a connection: a one-line banner (`[termgate] <what>
/// closed: …`) and a Close frame whose reason text starts with the reason,
/// sent by `deadline`; whether both went out. A client's end sends nothing.
async fn send_goodbye<S>(
    end: &End,
    what: &str,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    codec: &ServerCodec,
    deadline: tokio::time::Instant,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let End::Server {
        reason,
        code,
        detail,
    } = end
    else {
        return false;
    };
    let banner = format!(
        "\r\n[termgate] {what} closed: {}{}\r\n",
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
    let send = async {
        sink.send(to_message(codec.encode_status(&banner))).await?;
        sink.send(Message::Close(Some(frame))).await
    };
    matches!(tokio::time::timeout_at(deadline, send).await, Ok(Ok(())))
}

/// `session_closes_total`, `session_duration_seconds`, the
/// `terminal_disconnected` event and upstream's line.
fn record_end(end: &End, counts: &Counts, ctx: &BridgeContext) {
    let (metrics, peer, job) = (&ctx.metrics, ctx.peer, ctx.session.job.job_id);
    let reason = end.reason();
    let client_error = match end {
        End::ClientLeft(e) => e.as_deref(),
        End::Server { .. } => None,
    };
    let duration = counts.started.elapsed();
    let (bytes_in, bytes_out) = (
        counts.bytes_in.load(Ordering::Relaxed),
        counts.bytes_out.load(Ordering::Relaxed),
    );
    metrics
        .session_closes_total
        .with_label_values(&[reason])
        .inc();
    metrics
        .session_duration_seconds
        .observe(duration.as_secs_f64());
    tracing::info!(
        { schema::EVENT } = event::TERMINAL_DISCONNECTED,
        { schema::REASON } = reason,
        { schema::ROLE } = ctx.role,
        { schema::PEER } = %peer,
        { schema::JOB } = job,
        { schema::DURATION_S } = duration.as_secs_f64(),
        { schema::BYTES_IN } = bytes_in,
        { schema::BYTES_OUT } = bytes_out,
        { schema::ERROR } = client_error,
        "{}", msg::TERMINAL_DISCONNECTED
    );
    if ctx.role == ROLE_INTERACTIVE {
        tracing::warn!({ schema::JOB } = job, "{}", msg::CLOSED_ACTIVE);
    }
}

/// Give the client until `deadline` to answer the server's Close (it may
/// still send data first); the connection is dropped after.
async fn await_close_reply<S>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    deadline: tokio::time::Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout_at(deadline, async {
        while let Some(Ok(m)) = stream.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
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
