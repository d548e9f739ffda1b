//! The console's own log: a TUI cannot print, so `tracing` events go to a
//! file, appended as plain text lines with an RFC 3339 UTC timestamp, the
//! level, the module and the fields.
//!
//! The file is `--log-file`, else console.toml's `log_file`, else
//! `$XDG_STATE_HOME/termgate/console.log` (`~/.local/state/termgate/…`
//! when `XDG_STATE_HOME` is unset or relative); its directory is created.
//! If it cannot be opened the console says so once on stderr, before any
//! screen is drawn, and runs without a log.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;

/// Libraries (HTTP client, TLS, WebSocket) log at most warnings whatever
/// `--log-level`, so no request's headers end up in the file.
const QUIET_LIBRARIES: &str = "warn";

/// `$XDG_STATE_HOME/termgate/console.log`, else
/// `~/.local/state/termgate/console.log`; `None` without either variable.
pub fn default_path() -> Option<PathBuf> {
    default_path_from(
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn default_path_from(state_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    // The XDG spec: a relative path is invalid and is ignored.
    let state = state_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".local/state")))?;
    Some(state.join("termgate").join("console.log"))
}

/// Open `path` for appending, creating it and its directory.
pub fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Our crates at `level`, libraries at warnings at most.
fn filter(level: LevelFilter) -> EnvFilter {
    let libraries = level.min(QUIET_LIBRARIES.parse().unwrap_or(LevelFilter::WARN));
    EnvFilter::new(format!(
        "{libraries},termgate_console={level},termgate={level}"
    ))
}

/// A subscriber writing text lines to `file`.
pub fn subscriber(file: File, level: LevelFilter) -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter(level))
        .finish()
}

/// Send the process' `tracing` events to `path` (or the default path) at
/// `level`. Returns the file in use; on failure prints one line on stderr
/// and returns `None` (the console runs without a log).
pub fn init(path: Option<&Path>, level: LevelFilter) -> Option<PathBuf> {
    let Some(path) = path.map(Path::to_path_buf).or_else(default_path) else {
        eprintln!(
            "termgate: no log file (neither XDG_STATE_HOME nor HOME is set; use --log-file PATH)"
        );
        return None;
    };
    let file = match open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "termgate: cannot open log file {}: {e}; continuing without a log",
                path.display()
            );
            return None;
        }
    };
    if tracing::subscriber::set_global_default(subscriber(file, level)).is_err() {
        // Someone (a test harness) set one first: keep theirs.
        return None;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_follows_xdg() {
        let p = |s: Option<&str>, h: Option<&str>| {
            default_path_from(s.map(PathBuf::from), h.map(PathBuf::from))
        };
        assert_eq!(
            p(Some("/state"), Some("/home/u")),
            Some(PathBuf::from("/state/termgate/console.log"))
        );
        assert_eq!(
            p(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/termgate/console.log"))
        );
        assert_eq!(
            p(Some("relative"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/termgate/console.log"))
        );
        assert_eq!(p(None, None), None);
    }

    #[test]
    fn events_are_appended_as_timestamped_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/termgate/console.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "earlier line\n").unwrap();
        let sub = subscriber(open(&path).unwrap(), LevelFilter::INFO);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(runner = "prm-5", "hello from the console");
            tracing::debug!("below the level");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], "earlier line");
        let l = lines[1];
        assert!(l.contains("INFO"), "{l}");
        assert!(l.contains("hello from the console"), "{l}");
        assert!(l.contains("runner=\"prm-5\""), "{l}");
        // An RFC 3339 timestamp first.
        assert!(l.get(..4).is_some_and(|y| y.parse::<u32>().is_ok()), "{l}");
        assert!(!l.contains('\u{1b}'), "no colours in a file: {l}");
    }

    #[test]
    fn open_creates_the_directory_and_fails_on_a_file_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/console.log");
        open(&p).unwrap();
        assert!(p.is_file());
        let blocked = p.join("x.log");
        assert!(open(&blocked).is_err());
        assert_eq!(init(Some(&blocked), LevelFilter::INFO), None);
    }
}
