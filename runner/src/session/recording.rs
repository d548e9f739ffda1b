//! PLACEHOLDER until the recordings piece merges (same API).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config;
use crate::executor::terminal::TermSize;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct RecordingSettings {
    pub dir: PathBuf,
    pub record_input: bool,
    pub max_age: Option<Duration>,
    pub max_size_bytes: Option<u64>,
}

impl RecordingSettings {
    pub fn from_config(cfg: &config::SessionServer) -> Option<Self> {
        cfg.recordings_dir.as_ref().map(|d| RecordingSettings {
            dir: d.clone(),
            record_input: cfg.record_input,
            max_age: cfg.recordings_max_age_duration(),
            max_size_bytes: None,
        })
    }
}

#[derive(Debug)]
pub struct Recorder {
    _settings: RecordingSettings,
}

#[derive(Debug)]
pub struct RecordingMeta {
    pub job_id: u64,
    pub mode: &'static str,
    pub session_id: String,
    pub operator: Option<String>,
    pub size: TermSize,
    pub masked: Vec<String>,
}

#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
}

impl Recorder {
    pub fn new(settings: RecordingSettings, _metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Recorder {
            _settings: settings,
        })
    }
    pub fn start(&self, _meta: RecordingMeta) -> Option<Recording> {
        None
    }
}

impl Recording {
    pub fn output(&self, _data: &[u8]) {}
    pub fn input(&self, _data: &[u8]) {}
    pub fn resize(&self, _size: TermSize) {}
    pub fn path(&self) -> &Path {
        &self.path
    }
}
