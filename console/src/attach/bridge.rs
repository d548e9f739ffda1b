//! The attach core: keys to the session, the session's output to the
//! terminal, resizes, keepalive and the detach key, over any WebSocket
//! (`v4.channel.k8s.io` framing). No terminal and no network here: the
//! socket, the keys, the sizes and the output are parameters, so tests run
//! it over in-memory channels; [`super::term`] gives it the real terminal.

use std::fmt::Display;
use std::io;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use termgate::operator::Mode;
use termgate::terminal::{channel, k8s_resize_frame, k8s_stdin_frame};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::detach_key::DetachKey;

/// The reason of an attach the operator ended with the detach key.
pub const DETACHED: &str = "detached";
/// The reason when the runner closed without saying why.
pub const CLOSED_WITHOUT_REASON: &str = "closed by the runner";
/// How long a detach waits for the runner's answer to its Close.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How an attach ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachEnd {
    /// The runner's close reason, or [`DETACHED`].
    pub reason: String,
    /// Bytes sent to the session (typed or pasted).
    pub bytes_in: u64,
    /// Bytes of the session's output written to the terminal.
    pub bytes_out: u64,
}

impl AttachEnd {
    /// Whether the operator left with the detach key.
    pub fn detached(&self) -> bool {
        self.reason == DETACHED
    }

    /// The line printed after an attach: `[termgate] detached` or
    /// `[termgate] session closed: <reason>`.
    pub fn summary(&self) -> String {
        if self.detached() {
            format!("[termgate] {DETACHED}")
        } else {
            format!("[termgate] session closed: {}", self.reason)
        }
    }
}

/// Why an attach failed (the runner never said goodbye, or the local
/// terminal failed).
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("connection lost: {0}")]
    Connection(String),
    #[error("the runner ended the connection without closing the session")]
    Ended,
    #[error("reading the keyboard: {0}")]
    Input(io::Error),
    #[error("writing to the terminal: {0}")]
    Output(io::Error),
}

/// What the bridge needs besides its streams.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub mode: Mode,
    pub detach: DetachKey,
    /// A line written before anything else (e.g. `observing job 4711 on
    /// prm-5 — Ctrl-] to detach`).
    pub banner: Option<String>,
    /// The terminal's size at start, sent first (join and shell).
    pub size: Option<(u16, u16)>,
}

/// Run one attach until the runner closes the session, the detach key is
/// pressed, or something fails.
///
/// - `socket`: the WebSocket, `v4.channel.k8s.io` framing;
/// - `keys`: what the keyboard sends, in reads as they come (a paste is
///   one read; the detach key is found anywhere in it);
/// - `resizes`: new sizes of the terminal (columns, rows);
/// - `out`: the terminal.
///
/// In observe mode keys other than the detach key and resizes are not
/// sent: an observer never types into, or resizes, the user's terminal.
pub async fn run<S, SE, KE, I, R, W>(
    mut socket: S,
    mut keys: I,
    mut resizes: R,
    out: &mut W,
    opts: &BridgeOptions,
) -> Result<AttachEnd, AttachError>
where
    S: Stream<Item = Result<Message, SE>> + Sink<Message, Error = KE> + Unpin,
    SE: Display,
    KE: Display,
    I: Stream<Item = io::Result<Vec<u8>>> + Unpin,
    R: Stream<Item = (u16, u16)> + Unpin,
    W: AsyncWrite + Unpin,
{
    let writes = opts.mode != Mode::Observe;
    let mut end = AttachEnd {
        reason: String::new(),
        bytes_in: 0,
        bytes_out: 0,
    };
    if let Some(b) = &opts.banner {
        write_line(out, b.as_bytes()).await?;
    }
    if let (true, Some((cols, rows))) = (writes, opts.size) {
        send(&mut socket, k8s_resize_frame(cols, rows).payload).await?;
    }
    let mut keys_open = true;
    let mut resizes_open = writes;
    loop {
        tokio::select! {
            biased;
            msg = socket.next() => match msg {
                None => return Err(AttachError::Ended),
                Some(Err(e)) => return Err(AttachError::Connection(e.to_string())),
                Some(Ok(Message::Binary(p))) => match p.split_first() {
                    Some((&(channel::STDOUT | channel::STDERR), data)) => {
                        out.write_all(data).await.map_err(AttachError::Output)?;
                        out.flush().await.map_err(AttachError::Output)?;
                        end.bytes_out += data.len() as u64;
                    }
                    Some((&channel::ERROR, status)) => write_line(out, status).await?,
                    _ => {}
                },
                Some(Ok(Message::Ping(p))) => {
                    socket
                        .send(Message::Pong(p))
                        .await
                        .map_err(|e| AttachError::Connection(e.to_string()))?;
                }
                Some(Ok(Message::Close(frame))) => {
                    end.reason = frame
                        .map(|f| f.reason.to_string())
                        .filter(|r| !r.trim().is_empty())
                        .unwrap_or_else(|| CLOSED_WITHOUT_REASON.to_string());
                    // Answer the close; the runner may already be gone.
                    let _ = socket.close().await;
                    return Ok(end);
                }
                Some(Ok(Message::Text(_) | Message::Pong(_) | Message::Frame(_))) => {}
            },
            read = keys.next(), if keys_open => match read {
                // No more keys (stdin was a pipe): keep showing output.
                None => keys_open = false,
                Some(Err(e)) => return Err(AttachError::Input(e)),
                Some(Ok(bytes)) => {
                    let (before, detach) = opts.detach.split(&bytes);
                    if writes && !before.is_empty() {
                        send(&mut socket, k8s_stdin_frame(before).payload).await?;
                        end.bytes_in += before.len() as u64;
                    }
                    if detach {
                        detach_close(&mut socket).await;
                        end.reason = DETACHED.to_string();
                        return Ok(end);
                    }
                }
            },
            size = resizes.next(), if resizes_open => match size {
                None => resizes_open = false,
                Some((cols, rows)) => send(&mut socket, k8s_resize_frame(cols, rows).payload).await?,
            },
        }
    }
}

async fn send<S, KE>(socket: &mut S, payload: Vec<u8>) -> Result<(), AttachError>
where
    S: Sink<Message, Error = KE> + Unpin,
    KE: Display,
{
    socket
        .send(Message::Binary(payload.into()))
        .await
        .map_err(|e| AttachError::Connection(e.to_string()))
}

/// A status line on a line of its own (raw mode: `\r\n`).
async fn write_line<W: AsyncWrite + Unpin>(out: &mut W, line: &[u8]) -> Result<(), AttachError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut buf = Vec::with_capacity(line.len() + 4);
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(line);
    buf.extend_from_slice(b"\r\n");
    out.write_all(&buf).await.map_err(AttachError::Output)?;
    out.flush().await.map_err(AttachError::Output)
}

/// Send a Close saying why and give the runner a moment to answer it, so
/// it logs a clean detach; errors do not matter any more.
async fn detach_close<S, SE, KE>(socket: &mut S)
where
    S: Stream<Item = Result<Message, SE>> + Sink<Message, Error = KE> + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: DETACHED.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(m)) = socket.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// One end of an in-memory WebSocket: what the test sends arrives as
    /// the runner's messages; what the bridge sends, the test receives.
    struct Duplex {
        rx: mpsc::UnboundedReceiver<Result<Message, String>>,
        tx: mpsc::UnboundedSender<Message>,
    }

    impl Stream for Duplex {
        type Item = Result<Message, String>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.rx.poll_next_unpin(cx)
        }
    }

    impl Sink<Message> for Duplex {
        type Error = String;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, m: Message) -> Result<(), String> {
            self.tx.unbounded_send(m).map_err(|e| e.to_string())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The runner's side of the socket.
    struct Runner {
        tx: mpsc::UnboundedSender<Result<Message, String>>,
        rx: mpsc::UnboundedReceiver<Message>,
    }

    impl Runner {
        fn say(&self, m: Message) {
            self.tx.unbounded_send(Ok(m)).unwrap();
        }
        fn output(&self, data: &[u8]) {
            let mut p = vec![channel::STDOUT];
            p.extend_from_slice(data);
            self.say(Message::Binary(p.into()));
        }
        fn close(&self, reason: &str) {
            self.say(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: reason.into(),
            })));
        }
        /// Everything the bridge sent so far.
        fn received(&mut self) -> Vec<Message> {
            let mut v = Vec::new();
            while let Ok(m) = self.rx.try_recv() {
                v.push(m);
            }
            v
        }
    }

    fn pair() -> (Duplex, Runner) {
        let (to_bridge, rx) = mpsc::unbounded();
        let (tx, from_bridge) = mpsc::unbounded();
        (
            Duplex { rx, tx },
            Runner {
                tx: to_bridge,
                rx: from_bridge,
            },
        )
    }

    fn opts(mode: Mode) -> BridgeOptions {
        BridgeOptions {
            mode,
            detach: DetachKey::default(),
            banner: None,
            size: Some((120, 40)),
        }
    }

    type Keys = mpsc::UnboundedSender<io::Result<Vec<u8>>>;
    type Sizes = mpsc::UnboundedSender<(u16, u16)>;
    type Task = tokio::task::JoinHandle<(Result<AttachEnd, AttachError>, Vec<u8>)>;

    /// Start a bridge; returns its task (with the terminal's bytes), the
    /// runner's side, and the senders of keys and sizes.
    fn start(o: BridgeOptions) -> (Task, Runner, Keys, Sizes) {
        let (sock, runner) = pair();
        let (keys_tx, keys) = mpsc::unbounded();
        let (sizes_tx, sizes) = mpsc::unbounded();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            let r = run(sock, keys, sizes, &mut out, &o).await;
            (r, out)
        });
        (task, runner, keys_tx, sizes_tx)
    }

    /// The bridge's result, or a failure if it does not end (a detach key
    /// it missed would otherwise hang the test).
    async fn finish(task: Task) -> (Result<AttachEnd, AttachError>, Vec<u8>) {
        let limit = termgate_test_support::scaled(Duration::from_secs(10));
        match tokio::time::timeout(limit, task).await {
            Ok(r) => r.unwrap(),
            Err(_) => panic!("the bridge did not end within {limit:?}"),
        }
    }

    fn stdin(m: &Message) -> Option<Vec<u8>> {
        match m {
            Message::Binary(p) if p.first() == Some(&channel::STDIN) => Some(p[1..].to_vec()),
            _ => None,
        }
    }

    fn resize(m: &Message) -> Option<String> {
        match m {
            Message::Binary(p) if p.first() == Some(&channel::RESIZE) => {
                Some(String::from_utf8_lossy(&p[1..]).into_owned())
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn keys_go_in_output_comes_out_and_the_close_reason_surfaces() {
        let (task, mut runner, keys, _sizes) = start(BridgeOptions {
            banner: Some("shell in job 7 on r — Ctrl-] to detach".into()),
            ..opts(Mode::Shell)
        });
        keys.unbounded_send(Ok(b"echo hi\r".to_vec())).unwrap();
        runner.output(b"hi\r\n");
        runner.say(Message::Ping(b"p".to_vec().into()));
        let mut seen = Vec::new();
        termgate_test_support::wait_until_async(
            "the key and the pong",
            Duration::from_secs(5),
            || {
                seen.extend(runner.received());
                let done = seen.iter().any(|m| stdin(m).is_some())
                    && seen.iter().any(|m| matches!(m, Message::Pong(_)));
                async move { done.then_some(()) }
            },
        )
        .await;
        runner.close("the job finished");
        let (end, out) = finish(task).await;
        let end = end.unwrap();
        assert_eq!(end.reason, "the job finished");
        assert_eq!(end.summary(), "[termgate] session closed: the job finished");
        assert_eq!((end.bytes_in, end.bytes_out), (8, 4));
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "\r\nshell in job 7 on r — Ctrl-] to detach\r\nhi\r\n");
    }

    #[tokio::test]
    async fn the_first_frame_is_the_size_then_keys_and_pong() {
        let (task, mut runner, keys, _sizes) = start(opts(Mode::Join));
        keys.unbounded_send(Ok(b"ls\r".to_vec())).unwrap();
        runner.say(Message::Ping(b"ka".to_vec().into()));
        let mut got = Vec::new();
        termgate_test_support::wait_until_async(
            "size, key and pong",
            Duration::from_secs(5),
            || {
                got.extend(runner.received());
                let done = got.len() >= 3;
                async move { done.then_some(()) }
            },
        )
        .await;
        assert_eq!(
            resize(&got[0]).as_deref(),
            Some(r#"{"Width":120,"Height":40}"#)
        );
        assert!(got.iter().any(|m| stdin(m).as_deref() == Some(b"ls\r")));
        assert!(got.contains(&Message::Pong(b"ka".to_vec().into())));
        runner.close("");
        let (end, _) = finish(task).await;
        assert_eq!(end.unwrap().reason, CLOSED_WITHOUT_REASON);
    }

    #[tokio::test]
    async fn resizes_become_resize_frames() {
        let (task, mut runner, _keys, sizes) = start(BridgeOptions {
            size: None,
            ..opts(Mode::Shell)
        });
        sizes.unbounded_send((100, 30)).unwrap();
        sizes.unbounded_send((80, 24)).unwrap();
        let mut got = Vec::new();
        termgate_test_support::wait_until_async("two resizes", Duration::from_secs(5), || {
            got.extend(runner.received());
            let done = got.len() >= 2;
            async move { done.then_some(()) }
        })
        .await;
        let sizes: Vec<String> = got.iter().filter_map(resize).collect();
        assert_eq!(
            sizes,
            [
                r#"{"Width":100,"Height":30}"#,
                r#"{"Width":80,"Height":24}"#
            ]
        );
        runner.close("runner shutdown");
        assert_eq!(finish(task).await.0.unwrap().reason, "runner shutdown");
    }

    #[tokio::test]
    async fn the_detach_key_alone_ends_the_attach_with_a_close() {
        let (task, mut runner, keys, _sizes) = start(opts(Mode::Shell));
        keys.unbounded_send(Ok(vec![0x1d])).unwrap();
        let (end, _) = finish(task).await;
        let end = end.unwrap();
        assert!(end.detached());
        assert_eq!(end.summary(), "[termgate] detached");
        assert_eq!(end.bytes_in, 0);
        let got = runner.received();
        assert!(got.iter().all(|m| stdin(m).is_none()), "{got:?}");
        match got.last() {
            Some(Message::Close(Some(f))) => assert_eq!(f.reason.as_str(), DETACHED),
            other => panic!("no close: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_detach_key_inside_a_paste_sends_what_came_before_it() {
        let (task, mut runner, keys, _sizes) = start(BridgeOptions {
            detach: "ctrl-q".parse().unwrap(),
            ..opts(Mode::Join)
        });
        keys.unbounded_send(Ok(b"echo one\r\x11echo two\r".to_vec()))
            .unwrap();
        let (end, _) = finish(task).await;
        let end = end.unwrap();
        assert!(end.detached());
        assert_eq!(end.bytes_in, 9);
        let got = runner.received();
        let typed: Vec<Vec<u8>> = got.iter().filter_map(stdin).collect();
        assert_eq!(typed, [b"echo one\r".to_vec()]);
        assert!(matches!(got.last(), Some(Message::Close(_))));
    }

    #[tokio::test]
    async fn observe_mode_sends_no_keys_and_no_sizes_but_detaches() {
        let (task, mut runner, keys, sizes) = start(BridgeOptions {
            banner: Some("observing job 4711 on prm-5 — Ctrl-] to detach".into()),
            ..opts(Mode::Observe)
        });
        keys.unbounded_send(Ok(b"rm -rf /\r".to_vec())).unwrap();
        sizes.unbounded_send((10, 10)).unwrap();
        runner.output(b"$ ");
        keys.unbounded_send(Ok(b"x\x1d".to_vec())).unwrap();
        let (end, out) = finish(task).await;
        let end = end.unwrap();
        assert!(end.detached());
        assert_eq!(end.bytes_in, 0);
        assert!(String::from_utf8_lossy(&out).starts_with("\r\nobserving job 4711"));
        let got = runner.received();
        assert_eq!(got.len(), 1, "only the close: {got:?}");
        assert!(matches!(got[0], Message::Close(_)));
    }

    #[tokio::test]
    async fn status_frames_are_shown_on_their_own_line() {
        let (task, runner, _keys, _sizes) = start(opts(Mode::Observe));
        runner.output(b"building");
        let mut p = vec![channel::ERROR];
        p.extend_from_slice(b"[termgate] session closed: job finished\n");
        runner.say(Message::Binary(p.into()));
        runner.close("job finished");
        let (end, out) = finish(task).await;
        assert_eq!(end.unwrap().bytes_out, 8);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "building\r\n[termgate] session closed: job finished\r\n"
        );
    }

    #[tokio::test]
    async fn a_lost_connection_is_an_error_not_a_close() {
        let (task, runner, _keys, _sizes) = start(opts(Mode::Observe));
        runner
            .tx
            .unbounded_send(Err("connection reset by peer".into()))
            .unwrap();
        let e = finish(task).await.0.unwrap_err();
        assert_eq!(e.to_string(), "connection lost: connection reset by peer");
        let (task, runner, _keys, _sizes) = start(opts(Mode::Observe));
        drop(runner);
        let e = finish(task).await.0.unwrap_err();
        assert!(matches!(e, AttachError::Ended), "{e}");
    }
}
