//! Sharing one session's interactive terminal with operators.
//!
//! The interactive bridge publishes every chunk of terminal output here
//! ([`Share::publish`]) and never waits on anyone: each watcher (an
//! observer or a joined operator) has a bounded queue, and a watcher whose
//! queue is full is dropped on the spot (its `dropped` token fires, its
//! task closes the connection with `too_slow`). The last [`REPLAY_BYTES`]
//! of output are kept so a late watcher can redraw the screen first.
//!
//! A joined operator types through the writer inbox that the interactive
//! bridge installs while it runs ([`Share::attach_writer`]); banners for the
//! user (an operator joined or left) go through the same inbox.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Output kept for late watchers: enough for a full-screen program to
/// redraw a large terminal.
pub const REPLAY_BYTES: usize = 32 * 1024;
/// Chunks queued per watcher before it counts as stalled and is dropped.
/// A chunk is one terminal read (at most 24 KiB), so this bounds a
/// watcher's queue at a few MiB in the worst case.
pub const WATCHER_QUEUE: usize = 256;
/// Joined operators' keystrokes queued for the interactive terminal.
const INPUT_QUEUE: usize = 64;
/// Banners queued for the user.
const BANNER_QUEUE: usize = 16;

/// Why a watcher could not subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// `max_observers` watchers are already there.
    Full { max: usize },
}

/// The receiving end the interactive bridge owns while it runs.
#[derive(Debug)]
pub struct WriterInbox {
    /// Input from joined operators, to write to the terminal.
    pub input: mpsc::Receiver<Bytes>,
    /// One-line notices for the user (a status frame each).
    pub banners: mpsc::Receiver<String>,
    share: Arc<Share>,
    id: u64,
}

impl Drop for WriterInbox {
    fn drop(&mut self) {
        let mut g = self.share.lock();
        if g.writer.as_ref().is_some_and(|w| w.id == self.id) {
            g.writer = None;
        }
    }
}

#[derive(Debug, Clone)]
struct WriterTx {
    id: u64,
    input: mpsc::Sender<Bytes>,
    banners: mpsc::Sender<String>,
}

#[derive(Debug)]
struct Watcher {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    dropped: CancellationToken,
}

#[derive(Debug, Default)]
struct Inner {
    ring: VecDeque<u8>,
    /// Output was cut from the front of `ring` (the replay may start
    /// mid-line).
    ring_cut: bool,
    watchers: Vec<Watcher>,
    writer: Option<WriterTx>,
    next_id: u64,
}

/// One session's shared terminal. See the module docs.
#[derive(Debug, Default)]
pub struct Share {
    inner: Mutex<Inner>,
}

/// A watcher's subscription: the replay, then live output.
#[derive(Debug)]
pub struct Subscription {
    /// Recent output to send first.
    pub replay: Vec<u8>,
    pub output: mpsc::Receiver<Bytes>,
    /// Fires when the watcher stopped reading and was dropped.
    pub dropped: CancellationToken,
    share: Arc<Share>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.share.remove_watcher(self.id);
    }
}

impl Share {
    pub fn new() -> Arc<Self> {
        Arc::new(Share::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Terminal output the user receives: kept for replay and queued for
    /// every watcher. Never waits; a watcher whose queue is full is dropped.
    pub fn publish(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut g = self.lock();
        push_ring(&mut g, data);
        if g.watchers.is_empty() {
            return;
        }
        let chunk = Bytes::copy_from_slice(data);
        g.watchers.retain(|w| match w.tx.try_send(chunk.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                w.dropped.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Subscribe a watcher, unless `max` are already there.
    pub fn subscribe(self: &Arc<Self>, max: usize) -> Result<Subscription, SubscribeError> {
        let mut g = self.lock();
        if g.watchers.len() >= max {
            return Err(SubscribeError::Full { max });
        }
        let (tx, output) = mpsc::channel(WATCHER_QUEUE);
        let dropped = CancellationToken::new();
        g.next_id += 1;
        let id = g.next_id;
        g.watchers.push(Watcher {
            id,
            tx,
            dropped: dropped.clone(),
        });
        let replay = replay_of(&g);
        Ok(Subscription {
            replay,
            output,
            dropped,
            share: self.clone(),
            id,
        })
    }

    fn remove_watcher(&self, id: u64) {
        self.lock().watchers.retain(|w| w.id != id);
    }

    /// Watchers subscribed now.
    pub fn watcher_count(&self) -> usize {
        self.lock().watchers.len()
    }

    /// The interactive bridge takes the writer inbox while it runs (a newer
    /// bridge replaces an older one's).
    pub fn attach_writer(self: &Arc<Self>) -> WriterInbox {
        let (itx, input) = mpsc::channel(INPUT_QUEUE);
        let (btx, banners) = mpsc::channel(BANNER_QUEUE);
        let mut g = self.lock();
        g.next_id += 1;
        let id = g.next_id;
        g.writer = Some(WriterTx {
            id,
            input: itx,
            banners: btx,
        });
        WriterInbox {
            input,
            banners,
            share: self.clone(),
            id,
        }
    }

    /// Whether someone is at the interactive terminal to type into.
    pub fn has_writer(&self) -> bool {
        self.lock().writer.is_some()
    }

    /// A joined operator's input, for the interactive terminal. Waits while
    /// the terminal's input queue is full (only the joiner waits); `false`
    /// when nobody is at the terminal.
    pub async fn send_input(&self, data: Bytes) -> bool {
        let tx = self.lock().writer.as_ref().map(|w| w.input.clone());
        match tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        }
    }

    /// A one-line notice for the user at the interactive terminal (dropped
    /// if nobody is there or too many are queued).
    pub fn banner(&self, line: String) {
        if let Some(w) = self.lock().writer.as_ref() {
            let _ = w.banners.try_send(line);
        }
    }
}

fn push_ring(g: &mut Inner, data: &[u8]) {
    if data.len() >= REPLAY_BYTES {
        g.ring.clear();
        g.ring.extend(&data[data.len() - REPLAY_BYTES..]);
        g.ring_cut = true;
        return;
    }
    let over = (g.ring.len() + data.len()).saturating_sub(REPLAY_BYTES);
    if over > 0 {
        g.ring.drain(..over);
        g.ring_cut = true;
    }
    g.ring.extend(data);
}

/// What a late watcher is sent first: from the last full-screen redraw in
/// the kept output (clear screen, reset, or entering the alternate screen),
/// else from the first line start when older output was cut, else all.
fn replay_of(g: &Inner) -> Vec<u8> {
    let all: Vec<u8> = g.ring.iter().copied().collect();
    const REDRAWS: [&[u8]; 3] = [b"\x1b[2J", b"\x1bc", b"\x1b[?1049h"];
    let redraw = REDRAWS.iter().filter_map(|pat| rfind(&all, pat)).max();
    let start = match redraw {
        Some(i) => i,
        None if g.ring_cut => all.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1),
        None => 0,
    };
    all[start..].to_vec()
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_get_replay_then_live_output() {
        let s = Share::new();
        s.publish(b"hello ");
        let mut sub = s.subscribe(2).unwrap();
        assert_eq!(sub.replay, b"hello ");
        s.publish(b"world");
        assert_eq!(
            sub.output.recv().await.unwrap(),
            Bytes::from_static(b"world")
        );
        assert_eq!(s.watcher_count(), 1);
        drop(sub);
        assert_eq!(s.watcher_count(), 0);
    }

    #[test]
    fn at_most_max_watchers() {
        let s = Share::new();
        let _a = s.subscribe(1).unwrap();
        assert_eq!(s.subscribe(1).unwrap_err(), SubscribeError::Full { max: 1 });
    }

    #[test]
    fn a_stalled_watcher_is_dropped_without_waiting() {
        let s = Share::new();
        let stalled = s.subscribe(2).unwrap();
        let mut live = s.subscribe(2).unwrap();
        for _ in 0..WATCHER_QUEUE {
            s.publish(b"x");
            assert!(live.output.try_recv().is_ok());
        }
        assert!(!stalled.dropped.is_cancelled());
        s.publish(b"y");
        assert!(stalled.dropped.is_cancelled(), "queue full: dropped");
        assert_eq!(s.watcher_count(), 1);
        assert_eq!(live.output.try_recv().unwrap(), Bytes::from_static(b"y"));
    }

    #[test]
    fn replay_is_bounded_and_starts_at_a_redraw_or_line() {
        let s = Share::new();
        s.publish(b"old junk\x1b[2Jscreen");
        let sub = s.subscribe(4).unwrap();
        assert_eq!(sub.replay, b"\x1b[2Jscreen");
        drop(sub);
        let s = Share::new();
        let mut long = vec![b'a'; REPLAY_BYTES - 10];
        long.extend_from_slice(b"\nline two\n");
        s.publish(b"partial line that will be cut");
        s.publish(&long);
        let sub = s.subscribe(4).unwrap();
        assert!(sub.replay.len() <= REPLAY_BYTES);
        assert_eq!(sub.replay, b"line two\n");
    }

    #[tokio::test]
    async fn joiners_type_through_the_current_writer() {
        let s = Share::new();
        assert!(!s.send_input(Bytes::from_static(b"ls\n")).await);
        let mut inbox = s.attach_writer();
        assert!(s.has_writer());
        assert!(s.send_input(Bytes::from_static(b"ls\n")).await);
        assert_eq!(
            inbox.input.recv().await.unwrap(),
            Bytes::from_static(b"ls\n")
        );
        s.banner("hi".into());
        assert_eq!(inbox.banners.recv().await.unwrap(), "hi");
        let newer = s.attach_writer();
        drop(inbox);
        assert!(s.has_writer(), "an older inbox does not clear a newer one");
        drop(newer);
        assert!(!s.has_writer());
    }
}
