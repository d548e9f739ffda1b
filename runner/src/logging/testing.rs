//! Test helpers: a writer that captures log output and a fixed clock.

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use super::Clock;

/// Shared in-memory log output.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

/// 2025-06-05T15:57:35+02:00, the time of upstream's docs samples.
pub fn fixed_clock() -> Clock {
    Arc::new(|| chrono::DateTime::parse_from_rfc3339("2025-06-05T15:57:35+02:00").unwrap())
}

/// Run `f` with the runner's JSON log format going to memory: its lines
/// (at the fixed clock) and its result.
pub fn capture<R>(f: impl FnOnce() -> R) -> (Vec<String>, R) {
    use tracing_subscriber::layer::SubscriberExt;
    let buf = Buf::default();
    let layer = super::layer::FormatLayer::new(super::LogFormat::Json, buf.clone())
        .with_clock(fixed_clock());
    let sub = tracing_subscriber::registry().with(layer);
    let r = tracing::subscriber::with_default(sub, f);
    (buf.text().lines().map(str::to_string).collect(), r)
}
