//! A recording's writer thread: masks, decodes and writes the events its
//! [`Recording`](super::Recording) queues, in asciicast v2.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use termgate::logschema::{self as schema, msg};

use super::{lock, ActiveGuard, RecordingMeta, Shared};
use crate::executor::shell::pty::DEFAULT_TERM;
use crate::executor::terminal::TermSize;
use crate::trace::Masker;

/// Events dropped because the writer was behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Lost {
    pub bytes: u64,
    pub events: u64,
}

impl Lost {
    fn any(self) -> bool {
        self.events > 0
    }
}

/// One queued event; `lost` is what was dropped just before it.
#[derive(Debug)]
pub(super) struct Event {
    /// Since the recording started.
    pub at: Duration,
    pub lost: Lost,
    pub kind: Kind,
}

#[derive(Debug)]
pub(super) enum Kind {
    Output(Vec<u8>),
    Input(Vec<u8>),
    Resize(TermSize),
}

/// Left by the dropped handle: when it ended and what was dropped last.
#[derive(Debug, Clone, Copy)]
pub(super) struct Finish {
    pub at: Duration,
    pub lost: Lost,
}

/// Everything the writer thread owns.
pub(super) struct Job {
    pub sink: Box<dyn Write + Send>,
    pub rx: Receiver<Event>,
    pub shared: Arc<Shared>,
    pub header: String,
    pub masked: Vec<String>,
    pub job_id: u64,
    pub mode: &'static str,
    pub path: PathBuf,
    pub _active: ActiveGuard,
}

#[derive(Serialize)]
struct Header<'a> {
    version: u8,
    width: u16,
    height: u16,
    timestamp: i64,
    title: &'a str,
    env: HeaderEnv<'a>,
}

#[derive(Serialize)]
struct HeaderEnv<'a> {
    #[serde(rename = "TERM")]
    term: &'a str,
}

/// The header line (without its newline).
pub(super) fn header(meta: &RecordingMeta, now: DateTime<Utc>) -> String {
    let mut title = format!("job {} {} terminal", meta.job_id, meta.mode);
    if let Some(op) = &meta.operator {
        title.push_str(&format!(" ({op})"));
    }
    let h = Header {
        version: 2,
        width: meta.size.cols,
        height: meta.size.rows,
        timestamp: now.timestamp(),
        title: &title,
        env: HeaderEnv { term: DEFAULT_TERM },
    };
    // A struct of plain fields always serialises.
    serde_json::to_string(&h).unwrap_or_default()
}

/// The thread's body: write until the handle is gone, then finish.
pub(super) fn run(job: Job) {
    let Job {
        sink,
        rx,
        shared,
        header,
        masked,
        job_id,
        mode,
        path,
        _active,
    } = job;
    let mut cast = Cast::new(sink, masked);
    let result = (|| -> io::Result<()> {
        cast.line(&header)?;
        loop {
            let event = match rx.try_recv() {
                Ok(e) => e,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    // Idle: what is written so far reaches the file.
                    cast.out.flush()?;
                    match rx.recv() {
                        Ok(e) => e,
                        Err(_) => break,
                    }
                }
            };
            cast.event(event)?;
        }
        let finish = lock(&shared.finish).take();
        cast.finish(finish)
    })();
    let error = match result {
        Err(e) => Some(e.to_string()),
        Ok(()) if cast.lost.any() => Some(format!(
            "{} bytes lost: the disk fell behind the terminal",
            cast.lost.bytes
        )),
        Ok(()) => None,
    };
    if let Some(error) = error {
        shared.count_error();
        tracing::warn!(
            { schema::JOB } = job_id,
            { schema::MODE } = mode,
            { schema::RECORDING } = %path.display(),
            { schema::ERROR } = %error,
            "{}",
            msg::RECORDING_FAILED
        );
    }
}

/// One direction of the terminal: masked, then decoded as UTF-8.
struct Stream {
    masker: Masker,
    utf8: Utf8Carry,
}

impl Stream {
    fn new(masked: Vec<String>) -> Self {
        Stream {
            masker: Masker::new(masked),
            utf8: Utf8Carry::default(),
        }
    }

    fn push(&mut self, data: &[u8]) -> String {
        let masked = self.masker.push(data);
        self.utf8.push(&masked)
    }

    /// Whatever was held back (a possible secret's start, a partial
    /// character), now.
    fn flush(&mut self) -> String {
        let rest = self.masker.flush();
        let mut s = self.utf8.push(&rest);
        s.push_str(&self.utf8.finish());
        s
    }
}

/// The asciicast being written.
struct Cast {
    out: BufWriter<Box<dyn Write + Send>>,
    output: Stream,
    input: Stream,
    /// Time of the last event written (times never go back).
    last: Duration,
    /// Everything dropped over the whole recording.
    lost: Lost,
}

impl Cast {
    fn new(sink: Box<dyn Write + Send>, masked: Vec<String>) -> Self {
        Cast {
            out: BufWriter::new(sink),
            output: Stream::new(masked.clone()),
            input: Stream::new(masked),
            last: Duration::ZERO,
            lost: Lost::default(),
        }
    }

    fn line(&mut self, line: &str) -> io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn write(&mut self, at: Duration, code: &str, data: &str) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let data = serde_json::to_string(data).map_err(io::Error::other)?;
        writeln!(self.out, "[{:.6}, \"{code}\", {data}]", at.as_secs_f64())
    }

    fn event(&mut self, e: Event) -> io::Result<()> {
        // Events from two tasks (output, input) may arrive a hair out of
        // order; a player wants times that never go back.
        let at = e.at.max(self.last);
        self.last = at;
        if e.lost.any() {
            self.gap(at, e.lost)?;
        }
        match e.kind {
            Kind::Output(data) => {
                let text = self.output.push(&data);
                self.write(at, "o", &text)
            }
            Kind::Input(data) => {
                let text = self.input.push(&data);
                self.write(at, "i", &text)
            }
            Kind::Resize(size) => self.write(at, "r", &format!("{}x{}", size.cols, size.rows)),
        }
    }

    /// Held-back bytes, then a visible note of what was dropped.
    fn gap(&mut self, at: Duration, lost: Lost) -> io::Result<()> {
        self.flush_streams(at)?;
        self.lost.bytes += lost.bytes;
        self.lost.events += lost.events;
        let note = format!("\r\n[termgate: recording lost {} bytes]\r\n", lost.bytes);
        self.write(at, "o", &note)
    }

    fn flush_streams(&mut self, at: Duration) -> io::Result<()> {
        let out = self.output.flush();
        self.write(at, "o", &out)?;
        let inp = self.input.flush();
        self.write(at, "i", &inp)
    }

    /// The end: held-back bytes (at the last event's time: they came with
    /// it or before), what was dropped last, and the flush.
    fn finish(&mut self, finish: Option<Finish>) -> io::Result<()> {
        self.flush_streams(self.last)?;
        if let Some(f) = finish.filter(|f| f.lost.any()) {
            let at = f.at.max(self.last);
            self.last = at;
            self.gap(at, f.lost)?;
        }
        self.out.flush()
    }
}

/// UTF-8 decoding across chunks: an incomplete sequence at a chunk's end
/// waits for the next chunk; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(super) struct Utf8Carry {
    pending: Vec<u8>,
}

impl Utf8Carry {
    pub fn push(&mut self, data: &[u8]) -> String {
        let joined;
        let mut rest: &[u8] = if self.pending.is_empty() {
            data
        } else {
            let mut v = std::mem::take(&mut self.pending);
            v.extend_from_slice(data);
            joined = v;
            &joined
        };
        let mut out = String::with_capacity(rest.len());
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    return out;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        None => {
                            // A character cut by the chunk's end.
                            self.pending = after.to_vec();
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// An incomplete character left at the end becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&rest).into_owned()
    }
}
