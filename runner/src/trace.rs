//! A job's trace (log): an append-only byte buffer with streaming masking of
//! masked variables, the `output_limit` cap and a running CRC32.
//!
//! Writers (executor output, runner messages) call [`JobTrace::write`];
//! the uploader reads ranges and waits on [`JobTrace::changed`].

mod mask;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

pub use mask::Masker;

/// ANSI sequences upstream uses in job logs.
pub mod ansi {
    pub const BOLD_GREEN: &str = "\x1b[32;1m";
    pub const BOLD_RED: &str = "\x1b[31;1m";
    pub const BOLD_YELLOW: &str = "\x1b[0;33m";
    pub const RESET: &str = "\x1b[0;m";
}

#[derive(Debug)]
struct Inner {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
    masker: Masker,
    limit: usize,
    limit_hit: bool,
    closed: bool,
}

/// Shared handle; clones write to the same trace.
#[derive(Debug, Clone)]
pub struct JobTrace {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl JobTrace {
    /// `secrets`: values to replace with `[MASKED]`; `limit`: maximum bytes
    /// kept (gitlab-runner's `output_limit`, in bytes here).
    pub fn new(secrets: Vec<String>, limit: usize) -> Self {
        JobTrace {
            inner: Arc::new(Mutex::new(Inner {
                data: Vec::new(),
                crc: crc32fast::Hasher::new(),
                masker: Masker::new(secrets),
                limit,
                limit_hit: false,
                closed: false,
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append output. Masked values never reach the buffer.
    pub fn write(&self, bytes: &[u8]) {
        let mut g = self.lock();
        if g.closed {
            return;
        }
        let out = g.masker.push(bytes);
        append_limited(&mut g, &out);
        drop(g);
        self.changed.notify_one();
    }

    /// Append a line of the runner's own (`msg` + `\n`).
    pub fn line(&self, msg: &str) {
        self.flush_masker();
        self.write(format!("{msg}\n").as_bytes());
        self.flush_masker();
    }

    /// Section header/command echo in bold green, as upstream prints `$ cmd`.
    pub fn green(&self, msg: &str) {
        self.line(&format!("{}{msg}{}", ansi::BOLD_GREEN, ansi::RESET));
    }

    pub fn red(&self, msg: &str) {
        self.line(&format!("{}{msg}{}", ansi::BOLD_RED, ansi::RESET));
    }

    pub fn warning(&self, msg: &str) {
        self.line(&format!(
            "{}WARNING: {msg}{}",
            ansi::BOLD_YELLOW,
            ansi::RESET
        ));
    }

    /// Emit bytes the masker held back while waiting to see whether they
    /// start a secret (call at the end of each step's output).
    pub fn flush_masker(&self) {
        let mut g = self.lock();
        let rest = g.masker.flush();
        if !rest.is_empty() {
            append_limited(&mut g, &rest);
            drop(g);
            self.changed.notify_one();
        }
    }

    /// No more writes (job finished); flushes the masker.
    pub fn close(&self) {
        self.flush_masker();
        self.lock().closed = true;
        self.changed.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn len(&self) -> u64 {
        self.lock().data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `max` bytes from `offset`.
    pub fn read_at(&self, offset: u64, max: usize) -> Vec<u8> {
        let g = self.lock();
        let start = (offset as usize).min(g.data.len());
        let end = start.saturating_add(max).min(g.data.len());
        g.data[start..end].to_vec()
    }

    /// `crc32:xxxxxxxx` of the whole trace so far.
    pub fn checksum(&self) -> String {
        termgate::api::trace_checksum(self.lock().crc.clone().finalize())
    }

    /// Wait until something is written or the trace is closed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// A copy of everything (tests, debugging).
    pub fn contents(&self) -> Vec<u8> {
        self.lock().data.clone()
    }
}

fn append_limited(g: &mut Inner, bytes: &[u8]) {
    if g.limit_hit || bytes.is_empty() {
        return;
    }
    let room = g.limit.saturating_sub(g.data.len());
    let take = bytes.len().min(room);
    let chunk = &bytes[..take];
    g.data.extend_from_slice(chunk);
    g.crc.update(chunk);
    if take < bytes.len() {
        g.limit_hit = true;
        let msg = format!(
            "\n{}Job's log exceeded limit of {} bytes.\nJob execution will continue but no more output will be collected.{}\n",
            ansi::BOLD_RED,
            g.limit,
            ansi::RESET
        );
        g.data.extend_from_slice(msg.as_bytes());
        g.crc.update(msg.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_checksums() {
        let t = JobTrace::new(vec!["s3cr3t".into()], 1 << 20);
        t.write(b"a s3c");
        t.write(b"r3t b\n");
        t.close();
        assert_eq!(t.contents(), b"a [MASKED] b\n");
        let crc = crc32fast::hash(b"a [MASKED] b\n");
        assert_eq!(t.checksum(), format!("crc32:{crc:08x}"));
        t.write(b"after close");
        assert_eq!(t.len(), 13);
    }

    #[test]
    fn limit_truncates_once() {
        let t = JobTrace::new(vec![], 10);
        t.write(b"0123456789abc");
        t.write(b"more");
        let c = String::from_utf8(t.contents()).unwrap();
        assert!(c.starts_with("0123456789\n"));
        assert!(c.contains("exceeded limit of 10 bytes"));
        assert_eq!(c.matches("exceeded").count(), 1);
    }

    #[test]
    fn read_at_bounds() {
        let t = JobTrace::new(vec![], 100);
        t.write(b"hello");
        assert_eq!(t.read_at(1, 2), b"el");
        assert_eq!(t.read_at(4, 10), b"o");
        assert!(t.read_at(10, 10).is_empty());
    }
}
