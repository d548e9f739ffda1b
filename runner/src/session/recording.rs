//! Terminal recordings: every terminal of a session written as an asciicast
//! v2 file (a JSON header line, then one `[seconds, code, data]` line per
//! event: `o` output, `i` input when `record_input` is on, `r` resizes),
//! with the job's masked values replaced by `[MASKED]`.
//!
//! The terminal never waits for the disk: [`Recording::output`] copies the
//! bytes and hands them to the recording's writer thread over a bounded
//! channel. When the writer falls behind and the channel is full, the event
//! is dropped, counted once per recording in
//! `gitlab_runner_session_recording_errors_total`, and the file gets a
//! visible `[termgate: recording lost N bytes]` line where the gap is.
//!
//! Files are `job-<job>-<mode>-<UTC start>-<session id prefix>[-<n>].cast`
//! in `recordings_dir` (0700), each created exclusively with mode 0600.
//! [`Recorder::prune`] deletes old ones by age, then by total size; it only
//! touches regular files named that way, never follows a symlink and never
//! leaves the directory.

mod name;
mod prune;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use prometheus::IntCounter;
use termgate::logschema::{self as schema, msg};
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::executor::terminal::TermSize;
use crate::metrics::Metrics;

pub use prune::PruneStats;
use writer::{Event, Finish, Kind, Lost};

/// Events a recording may queue for its writer before it drops them.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;
/// How often [`Recorder::run_pruner`] is meant to run.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// `-1` … `-99` after the base name when a file of that name exists.
const MAX_NAME_SUFFIX: u32 = 99;
const MIB: u64 = 1024 * 1024;

/// `[session_server]`'s recording keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    pub dir: PathBuf,
    /// Also record input (`i` events).
    pub record_input: bool,
    /// Recordings last written longer ago than this are deleted.
    pub max_age: Option<Duration>,
    /// The oldest recordings are deleted while they add up to more.
    pub max_size_bytes: Option<u64>,
}

impl RecordingSettings {
    /// `None` without `recordings_dir` (recording off).
    pub fn from_config(cfg: &config::SessionServer) -> Option<Self> {
        let dir = cfg.recordings_dir.clone()?;
        Some(RecordingSettings {
            dir,
            record_input: cfg.record_input,
            max_age: cfg.recordings_max_age_duration(),
            max_size_bytes: (cfg.recordings_max_size_mb > 0)
                .then(|| cfg.recordings_max_size_mb.saturating_mul(MIB)),
        })
    }
}

/// What a recording is of.
#[derive(Clone)]
pub struct RecordingMeta {
    pub job_id: u64,
    /// `client_role::INTERACTIVE` for the user's terminal (which joined
    /// operators type into too) or `client_role::SHELL` for an operator's
    /// own shell; the metric label and part of the file name.
    pub mode: &'static str,
    pub session_id: String,
    /// The operator, for an operator's shell (goes into the title).
    pub operator: Option<String>,
    /// The terminal's size at the start (the header's width and height).
    pub size: TermSize,
    /// Values replaced by `[MASKED]`: the job's masked variables (and its
    /// token), as the job log masks them.
    pub masked: Vec<String>,
}

impl std::fmt::Debug for RecordingMeta {
    /// Never prints the masked values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingMeta")
            .field("job_id", &self.job_id)
            .field("mode", &self.mode)
            .field("session_id", &self.session_id)
            .field("operator", &self.operator)
            .field("size", &self.size)
            .field("masked", &self.masked.len())
            .finish()
    }
}

/// Starts recordings and prunes the directory; one per runner, shared.
pub struct Recorder {
    settings: RecordingSettings,
    metrics: Arc<Metrics>,
    capacity: usize,
    /// Files being written: the pruner leaves them alone.
    active: Arc<Mutex<HashSet<PathBuf>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("settings", &self.settings)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    pub fn new(settings: RecordingSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        Self::with_capacity(settings, metrics, DEFAULT_CHANNEL_CAPACITY)
    }

    /// [`Recorder::new`] with `capacity` queued events per recording.
    pub fn with_capacity(
        settings: RecordingSettings,
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> Arc<Self> {
        Arc::new(Recorder {
            settings,
            metrics,
            capacity: capacity.max(1),
            active: Arc::default(),
        })
    }

    pub fn settings(&self) -> &RecordingSettings {
        &self.settings
    }

    /// Start recording one terminal. Never fails the terminal: on error,
    /// logs `msg::RECORDING_FAILED`, counts
    /// `SESSION_RECORDING_ERRORS_TOTAL` and returns `None`.
    pub fn start(&self, meta: RecordingMeta) -> Option<Recording> {
        let now = Utc::now();
        let started = self.create(&meta, now).and_then(|(path, file)| {
            let rec = self.spawn(&meta, path.clone(), Box::new(file), now);
            if rec.is_err() {
                // Nothing will write it: no empty file left behind.
                let _ = std::fs::remove_file(&path);
            }
            rec
        });
        match started {
            Ok(rec) => Some(rec),
            Err(e) => {
                tracing::warn!(
                    { schema::JOB } = meta.job_id,
                    { schema::MODE } = meta.mode,
                    { schema::PATH } = %self.settings.dir.display(),
                    { schema::ERROR } = %e,
                    "{}",
                    msg::RECORDING_FAILED
                );
                self.metrics
                    .session_recording_errors_total
                    .with_label_values(&[meta.mode])
                    .inc();
                None
            }
        }
    }

    /// The directory (0700 when created here) and a new file in it,
    /// created exclusively with mode 0600.
    fn create(&self, meta: &RecordingMeta, now: DateTime<Utc>) -> io::Result<(PathBuf, File)> {
        let dir = &self.settings.dir;
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let base = name::base(meta.job_id, meta.mode, &meta.session_id, now);
        for n in 0..=MAX_NAME_SUFFIX {
            let path = dir.join(name::with_suffix(&base, n));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: {base}-1 … -{MAX_NAME_SUFFIX} exist too", dir.display()),
        ))
    }

    /// Start the writer thread of a recording into `sink`.
    fn spawn(
        &self,
        meta: &RecordingMeta,
        path: PathBuf,
        sink: Box<dyn Write + Send>,
        now: DateTime<Utc>,
    ) -> io::Result<Recording> {
        let (tx, rx) = mpsc::sync_channel(self.capacity);
        let shared = Arc::new(Shared {
            lost_bytes: AtomicU64::new(0),
            lost_events: AtomicU64::new(0),
            error_counted: AtomicBool::new(false),
            errors: self
                .metrics
                .session_recording_errors_total
                .with_label_values(&[meta.mode]),
            finish: Mutex::new(None),
        });
        let job = writer::Job {
            sink,
            rx,
            shared: shared.clone(),
            header: writer::header(meta, now),
            masked: meta.masked.clone(),
            job_id: meta.job_id,
            mode: meta.mode,
            path: path.clone(),
            _active: ActiveGuard::new(self.active.clone(), path.clone()),
        };
        let start = Instant::now();
        let thread = std::thread::Builder::new()
            .name(format!("recording-{}", meta.job_id))
            .spawn(move || writer::run(job))?;
        self.metrics
            .session_recordings_total
            .with_label_values(&[meta.mode])
            .inc();
        tracing::info!(
            { schema::JOB } = meta.job_id,
            { schema::MODE } = meta.mode,
            { schema::SESSION } = %meta.session_id,
            { schema::OPERATOR } = meta.operator.as_deref(),
            { schema::RECORDING } = %path.display(),
            "{}",
            msg::RECORDING_STARTED
        );
        Ok(Recording {
            path,
            start,
            record_input: self.settings.record_input,
            tx: Some(tx),
            shared,
            thread: Some(thread),
        })
    }

    /// Delete recordings older than `max_age`, then the oldest while they
    /// add up to more than `max_size_bytes` (files being written count
    /// towards the size but are kept). Only regular files named as this
    /// module names them; symlinks and everything else are left alone.
    /// Logs `msg::RECORDINGS_PRUNED` when it deleted something.
    pub fn prune(&self) -> io::Result<PruneStats> {
        let active = lock(&self.active).clone();
        let stats = prune::prune(
            &self.settings.dir,
            self.settings.max_age,
            self.settings.max_size_bytes,
            &active,
            SystemTime::now(),
        )?;
        if stats.deleted_files > 0 {
            tracing::info!(
                { schema::PATH } = %self.settings.dir.display(),
                { schema::FILES } = stats.deleted_files,
                { schema::SIZE } = stats.deleted_bytes,
                "{}",
                msg::RECORDINGS_PRUNED
            );
        }
        Ok(stats)
    }

    /// [`Recorder::prune`] now and every `every` until `shutdown` (off the
    /// runtime's threads). Returns at once when neither limit is set.
    pub async fn run_pruner(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        if self.settings.max_age.is_none() && self.settings.max_size_bytes.is_none() {
            return;
        }
        loop {
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.prune()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(
                    { schema::PATH } = %self.settings.dir.display(),
                    { schema::ERROR } = %e,
                    "{}",
                    msg::RECORDINGS_PRUNE_FAILED
                ),
                Err(e) => tracing::warn!(
                    { schema::PATH } = %self.settings.dir.display(),
                    { schema::ERROR } = %e,
                    "{}",
                    msg::RECORDINGS_PRUNE_FAILED
                ),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Keeps a path in the recorder's active set while its writer runs.
struct ActiveGuard {
    set: Arc<Mutex<HashSet<PathBuf>>>,
    path: PathBuf,
}

impl ActiveGuard {
    fn new(set: Arc<Mutex<HashSet<PathBuf>>>, path: PathBuf) -> Self {
        lock(&set).insert(path.clone());
        ActiveGuard { set, path }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.path);
    }
}

/// What a recording's handle and its writer share.
struct Shared {
    /// Dropped since the last event that got through.
    lost_bytes: AtomicU64,
    lost_events: AtomicU64,
    error_counted: AtomicBool,
    /// `session_recording_errors_total{mode}`.
    errors: IntCounter,
    /// Set when the handle is dropped, read by the writer at the end.
    finish: Mutex<Option<Finish>>,
}

impl Shared {
    /// Count this recording in the error metric, once. True the first time.
    fn count_error(&self) -> bool {
        let first = !self.error_counted.swap(true, Ordering::AcqRel);
        if first {
            self.errors.inc();
        }
        first
    }

    fn take_lost(&self) -> Lost {
        Lost {
            bytes: self.lost_bytes.swap(0, Ordering::AcqRel),
            events: self.lost_events.swap(0, Ordering::AcqRel),
        }
    }

    fn add_lost(&self, lost: Lost) {
        self.lost_bytes.fetch_add(lost.bytes, Ordering::AcqRel);
        self.lost_events.fetch_add(lost.events, Ordering::AcqRel);
    }
}

/// One terminal being recorded. Its methods copy and queue; they never
/// block or await. Dropping it finishes the file in the background (held
/// back bytes written, flushed, closed).
pub struct Recording {
    path: PathBuf,
    start: Instant,
    record_input: bool,
    tx: Option<SyncSender<Event>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Recording {
    /// Bytes the terminal wrote (to the client).
    pub fn output(&self, data: &[u8]) {
        if !data.is_empty() {
            self.send(Kind::Output(data.to_vec()), data.len());
        }
    }

    /// Bytes written to the terminal; recorded only with `record_input`.
    pub fn input(&self, data: &[u8]) {
        if self.record_input && !data.is_empty() {
            self.send(Kind::Input(data.to_vec()), data.len());
        }
    }

    pub fn resize(&self, size: TermSize) {
        self.send(Kind::Resize(size), 0);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finish the file and wait until it is written and closed (blocking:
    /// for shutdown and tests; dropping does the same in the background).
    pub fn finish_blocking(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    fn send(&self, kind: Kind, len: usize) {
        let Some(tx) = &self.tx else { return };
        let lost = self.shared.take_lost();
        let event = Event {
            at: self.start.elapsed(),
            lost,
            kind,
        };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.add_lost(Lost {
                    bytes: lost.bytes + len as u64,
                    events: lost.events + 1,
                });
                self.shared.count_error();
            }
            // The writer stopped on an error it logged and counted.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let finish = Finish {
            at: self.start.elapsed(),
            lost: self.shared.take_lost(),
        };
        *lock(&self.shared.finish) = Some(finish);
        // The writer sees the channel close, then reads `finish`.
        self.tx.take();
    }
}
