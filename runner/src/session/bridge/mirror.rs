//! An operator watching (`observe`) or typing into (`join`) the user's
//! terminal through the session's [`Share`](crate::session::share::Share).
//!
//! The watcher first gets the replay (recent output, from the last screen
//! redraw), then every chunk the user gets, from its own bounded queue: the
//! user's bridge never waits for it. A watcher that stops reading is dropped
//! with `too_slow` as soon as its queue is full, even while a frame to it is
//! stuck on the network. An observer's input is discarded; a joined
//! operator's input goes to the user's terminal (and is lost, with a notice,
//! while nobody is at it).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use termgate::metrics::close_reason;
use termgate::operator::Mode;
use termgate::terminal::{FrameKind, Incoming, ServerCodec};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{send_goodbye, to_message, ConnectionGauge, Counts, End, Ended, CLOSE_WAIT};
use crate::metrics::Metrics;
use crate::session::share::Subscription;
use crate::session::{ClientGuard, Session};

/// What a watcher's connection needs besides its socket.
pub struct MirrorContext {
    pub session: Arc<Session>,
    pub subscription: Subscription,
    /// [`Mode::Observe`] or [`Mode::Join`].
    pub mode: Mode,
    pub metrics: Arc<Metrics>,
    pub codec: ServerCodec,
    pub ping_interval: Duration,
    pub shutdown: CancellationToken,
    /// Listed in `/sessions` while it runs.
    pub client: ClientGuard,
}

/// Serve one watcher until it leaves, is dropped, or the session ends.
pub async fn run<S>(ws: WebSocketStream<S>, mut ctx: MirrorContext) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let counts = Counts::new();
    let _gauge = ConnectionGauge::new(ctx.metrics.clone(), ctx.mode.client_role());
    let (mut sink, mut stream) = ws.split();
    let end = pump(&mut sink, &mut stream, &mut ctx, &counts).await;
    let close_reply_by = goodbye(&end, &mut sink, &ctx.codec, ctx.mode).await;
    let reason = end.reason();
    ctx.metrics
        .session_closes_total
        .with_label_values(&[reason])
        .inc();
    ctx.metrics
        .session_duration_seconds
        .observe(counts.started.elapsed().as_secs_f64());
    if let Some(deadline) = close_reply_by {
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(Ok(m)) = stream.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
    }
    Ended {
        reason,
        bytes_in: counts.bytes_in.load(Ordering::Relaxed),
        bytes_out: counts.bytes_out.load(Ordering::Relaxed),
        duration: counts.started.elapsed(),
    }
}

async fn pump<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    stream: &mut SplitStream<WebSocketStream<S>>,
    ctx: &mut MirrorContext,
    counts: &Counts,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let dropped = ctx.subscription.dropped.clone();
    let replay = std::mem::take(&mut ctx.subscription.replay);
    for frame in ctx.codec.encode_output_chunks(&replay) {
        if let Err(end) = send(sink, to_message(frame), &dropped).await {
            return end;
        }
    }
    counts.add_out(replay.len());
    let period = ctx.ping_interval.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut told_nobody_there = false;
    loop {
        let msg = tokio::select! {
            chunk = ctx.subscription.output.recv() => match chunk {
                Some(c) => {
                    counts.add_out(c.len());
                    to_message(ctx.codec.encode_output(&c))
                }
                None => return too_slow(),
            },
            _ = dropped.cancelled() => return too_slow(),
            m = stream.next() => match client_frame(m, ctx) {
                Ok(Some(data)) => {
                    if ctx.session.share.send_input(data.clone()).await {
                        counts.add_in(data.len());
                        told_nobody_there = false;
                        continue;
                    }
                    if told_nobody_there {
                        continue;
                    }
                    told_nobody_there = true;
                    to_message(ctx.codec.encode_output(
                        b"\r\n[termgate] nobody is at the terminal: input dropped (open a shell of your own with /shell)\r\n",
                    ))
                }
                Ok(None) => continue,
                Err(end) => return end,
            },
            _ = ping.tick() => Message::Ping(Bytes::new()),
            _ = ctx.session.closed() => return End::session(
                ctx.session.close_reason().unwrap_or(close_reason::JOB_FINISHED),
            ),
            _ = ctx.shutdown.cancelled() => return End::session(close_reason::RUNNER_SHUTDOWN),
        };
        if let Err(end) = send(sink, msg, &dropped).await {
            return end;
        }
    }
}

fn too_slow() -> End {
    End::server(
        close_reason::TOO_SLOW,
        CloseCode::Policy,
        Some("stopped reading; dropped so the user's terminal never waits".into()),
    )
}

/// Send one frame, unless the watcher is dropped meanwhile.
async fn send<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    msg: Message,
    dropped: &CancellationToken,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        r = sink.send(msg) => r.map_err(|e| End::ClientLeft(match e {
            tungstenite::Error::Io(e) => Some(e.to_string()),
            _ => None,
        })),
        _ = dropped.cancelled() => Err(too_slow()),
    }
}

/// A watcher's frame: `Ok(Some(input))` for a joined operator's keys,
/// `Ok(None)` for what is ignored (an observer's keys, resizes: the user's
/// size wins), `Err` when the connection ends.
fn client_frame(
    m: Option<Result<Message, tungstenite::Error>>,
    ctx: &MirrorContext,
) -> Result<Option<Bytes>, End> {
    let (kind, payload) = match m {
        None | Some(Ok(Message::Close(_))) => return Err(End::ClientLeft(None)),
        Some(Ok(Message::Binary(b))) => (FrameKind::Binary, b),
        Some(Ok(Message::Text(t))) => (FrameKind::Text, Bytes::from(t)),
        Some(Ok(_)) => return Ok(None),
        Some(Err(tungstenite::Error::Io(e))) => return Err(End::ClientLeft(Some(e.to_string()))),
        Some(Err(
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ),
        )) => return Err(End::ClientLeft(None)),
        Some(Err(e)) => {
            return Err(End::server(
                close_reason::ERROR,
                CloseCode::Protocol,
                Some(e.to_string()),
            ))
        }
    };
    if ctx.mode != Mode::Join {
        return Ok(None);
    }
    match ctx.codec.decode(kind, &payload) {
        Ok(Incoming::Input(data)) if !data.is_empty() => Ok(Some(Bytes::from(data))),
        Ok(_) => Ok(None),
        Err(e) => Err(End::server(
            close_reason::ERROR,
            CloseCode::Invalid,
            Some(e.to_string()),
        )),
    }
}

/// The server's end: a banner and a Close frame with the reason, within
/// [`CLOSE_WAIT`]; returns until when the watcher may answer the Close.
async fn goodbye<S>(
    end: &End,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    codec: &ServerCodec,
    mode: Mode,
) -> Option<tokio::time::Instant>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    match end {
        End::Server { .. } => send_goodbye(end, mode.as_str(), sink, codec, deadline)
            .await
            .then_some(deadline),
        End::ClientLeft(_) => {
            let _ = tokio::time::timeout_at(deadline, sink.close()).await;
            None
        }
    }
}
