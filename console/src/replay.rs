//! `termgate replay FILE [--speed N] [--max-wait SECS]`: plays a terminal
//! recording (asciicast v2, as the runner's `recordings_dir` holds them) on
//! stdout with its timing.
//!
//! The whole file is checked first, so a bad line is reported (with its
//! number) before anything is played. Then `o` events are written as they
//! were recorded: each pause is capped at `--max-wait`, then divided by
//! `--speed`. `i` (input), `r` (resize), `m` (marker) and unknown event
//! types are skipped. Ctrl-C stops cleanly, as does a closed stdout.

use std::fs::File;
use std::future::Future;
use std::io::{self, BufRead, BufReader, IsTerminal as _, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::cli::ReplayArgs;

/// A cast that cannot be played: which line and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CastError {
    #[error("empty file: no asciicast header")]
    Empty,
    #[error("line {line}: {what}")]
    Line { line: usize, what: String },
}

/// The header line's fields that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub title: Option<String>,
}

/// One event line.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start.
    pub time: f64,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `o`: what the terminal printed.
    Output(String),
    /// `i`, `r`, `m` or a type this player does not know: nothing to show.
    Other,
}

/// The first line: a JSON object with `"version": 2`.
pub fn parse_header(line: &str) -> Result<Header, String> {
    if line.trim() == "{" {
        // asciicast v1 is one pretty-printed JSON document.
        return Err("this looks like asciicast v1; only asciicast v2 can be replayed".into());
    }
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("not an asciicast v2 header (a JSON object): {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err("not an asciicast v2 header (a JSON object)".into());
    };
    match obj.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(2) => {}
        Some(Value::Number(n)) => {
            return Err(format!(
                "asciicast version {n} is not supported; only version 2"
            ))
        }
        Some(_) => return Err("header: \"version\" is not a number".into()),
        None => return Err("header: no \"version\" (not an asciicast v2 file)".into()),
    }
    Ok(Header {
        width: obj.get("width").and_then(Value::as_u64),
        height: obj.get("height").and_then(Value::as_u64),
        title: obj.get("title").and_then(Value::as_str).map(str::to_owned),
    })
}

/// An event line: `[time, "code", "data"]`.
pub fn parse_event(line: &str) -> Result<Event, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Some([time, code, data]) = v.as_array().map(Vec::as_slice) else {
        return Err("expected an event [time, \"code\", \"data\"]".into());
    };
    let time = time
        .as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .ok_or("the event's time is not a number of seconds (>= 0)")?;
    let code = code.as_str().ok_or("the event's type is not a string")?;
    let data = data.as_str().ok_or("the event's data is not a string")?;
    let kind = match code {
        "o" => Kind::Output(data.to_owned()),
        _ => Kind::Other,
    };
    Ok(Event { time, kind })
}

/// Reads a cast line by line, numbering lines from 1.
struct Lines<R> {
    input: R,
    line: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R) -> Self {
        Lines {
            input,
            line: 0,
            buf: Vec::new(),
        }
    }

    fn err(&self, what: impl Into<String>) -> CastError {
        CastError::Line {
            line: self.line,
            what: what.into(),
        }
    }

    /// The next line without its line ending; `None` at the end.
    fn next_line(&mut self) -> io::Result<Option<Result<&str, CastError>>> {
        self.buf.clear();
        if self.input.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        let line = self.line;
        Ok(Some(std::str::from_utf8(&self.buf).map_err(|e| {
            CastError::Line {
                line,
                what: format!("not UTF-8: {e}"),
            }
        })))
    }

    fn header(&mut self) -> io::Result<Result<Header, CastError>> {
        let parsed = match self.next_line()? {
            None => return Ok(Err(CastError::Empty)),
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(l)) => parse_header(l),
        };
        Ok(parsed.map_err(|e| self.err(e)))
    }

    /// The next event (blank lines skipped).
    fn event(&mut self) -> io::Result<Option<Result<Event, CastError>>> {
        loop {
            let parsed = match self.next_line()? {
                None => return Ok(None),
                Some(Err(e)) => return Ok(Some(Err(e))),
                Some(Ok(l)) if l.trim().is_empty() => continue,
                Some(Ok(l)) => parse_event(l),
            };
            return Ok(Some(parsed.map_err(|e| self.err(e))));
        }
    }
}

/// Check a whole cast; the header and the number of events.
pub fn check(input: impl BufRead) -> io::Result<Result<(Header, usize), CastError>> {
    let mut lines = Lines::new(input);
    let header = match lines.header()? {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    let mut n = 0;
    while let Some(event) = lines.event()? {
        if let Err(e) = event {
            return Ok(Err(e));
        }
        n += 1;
    }
    Ok(Ok((header, n)))
}

/// How long to wait before an event at `time` after one at `prev`: the
/// recorded pause (never negative), at most `max_wait`, over `speed`.
pub fn pause(prev: f64, time: f64, speed: f64, max_wait: Duration) -> Duration {
    let gap = (time - prev).max(0.0).min(max_wait.as_secs_f64());
    Duration::try_from_secs_f64(gap / speed).unwrap_or(max_wait)
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Finished,
    /// Ctrl-C (or whatever `stop` waits for).
    Stopped,
    /// Stdout was closed (`| head`).
    OutputClosed,
}

/// Play a checked cast into `out` until its end or until `stop` completes.
pub async fn play(
    input: impl BufRead,
    out: &mut impl Write,
    speed: f64,
    max_wait: Duration,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Ended> {
    tokio::pin!(stop);
    let mut lines = Lines::new(input);
    lines.header()??;
    let start = tokio::time::Instant::now();
    let mut due = Duration::ZERO;
    let mut prev = 0.0;
    while let Some(event) = lines.event()? {
        let event = event?;
        let Kind::Output(text) = event.kind else {
            continue;
        };
        // The pause since the previous output (input, resizes and markers
        // in between are not shown, so they do not add pauses).
        due += pause(prev, event.time, speed, max_wait);
        prev = prev.max(event.time);
        tokio::select! {
            biased;
            () = &mut stop => return Ok(Ended::Stopped),
            () = tokio::time::sleep_until(start + due) => {}
        }
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Ended::OutputClosed),
            Err(e) => return Err(e).context("writing to stdout"),
        }
    }
    Ok(Ended::Finished)
}

fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::new(f))
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a number above 0, not {}", args.speed);
    }
    let path = &args.file;
    check(open(path)?)
        .with_context(|| format!("reading {}", path.display()))?
        .with_context(|| format!("{} is not a playable recording", path.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut stdout = io::stdout().lock();
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler: play to the end.
            std::future::pending::<()>().await;
        }
    };
    let ended = rt.block_on(play(
        open(path)?,
        &mut stdout,
        args.speed,
        args.max_wait,
        stop,
    ))?;
    if ended == Ended::Stopped && stdout.is_terminal() {
        // The recording may have left colours on or the cursor hidden.
        let _ = stdout.write_all(b"\x1b[0m\x1b[?25h\r\n");
        let _ = stdout.flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAST: &str = "{\"version\": 2, \"width\": 80, \"height\": 24, \"title\": \"t\"}\n\
        [0.5, \"o\", \"hello \"]\n\
        [0.6, \"i\", \"typed\"]\n\
        \n\
        [1.0, \"r\", \"100x30\"]\n\
        [2.25, \"o\", \"w\\u00f6rld\\r\\n\"]\n\
        [3.0, \"m\", \"marker\"]\n";

    fn check_str(s: &str) -> Result<(Header, usize), CastError> {
        check(s.as_bytes()).unwrap()
    }

    fn err_line(s: &str) -> (usize, String) {
        match check_str(s) {
            Err(CastError::Line { line, what }) => (line, what),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_cast() {
        let (h, n) = check_str(CAST).unwrap();
        assert_eq!(h.width, Some(80));
        assert_eq!(h.height, Some(24));
        assert_eq!(h.title.as_deref(), Some("t"));
        assert_eq!(n, 5);
        assert_eq!(
            parse_event("[2.25, \"o\", \"w\\u00f6rld\"]").unwrap(),
            Event {
                time: 2.25,
                kind: Kind::Output("wörld".into())
            }
        );
        assert_eq!(parse_event("[1, \"i\", \"x\"]").unwrap().kind, Kind::Other);
        // CRLF line endings and a header without size are fine.
        assert!(check_str("{\"version\":2}\r\n[0,\"o\",\"a\"]\r\n").is_ok());
    }

    #[test]
    fn bad_files_name_the_line() {
        assert_eq!(check_str(""), Err(CastError::Empty));
        let (line, what) = err_line("{\n  \"version\": 1,\n  \"stdout\": []\n}\n");
        assert_eq!(line, 1);
        assert!(what.contains("asciicast v1"), "{what}");
        let (line, what) = err_line("{\"version\": 3}\n");
        assert_eq!(line, 1);
        assert!(what.contains("version 3 is not supported"), "{what}");
        let (_, what) = err_line("[0, \"o\", \"x\"]\n");
        assert!(what.contains("header"), "{what}");
        let (_, what) = err_line("{\"width\": 80}\n");
        assert!(what.contains("no \"version\""), "{what}");

        let head = "{\"version\": 2}\n[0.1, \"o\", \"a\"]\n";
        for (bad, want) in [
            ("[0.2, \"o\"]", "expected an event"),
            ("{\"t\": 1}", "expected an event"),
            ("[-1, \"o\", \"x\"]", "time"),
            ("[\"1\", \"o\", \"x\"]", "time"),
            ("[1, 2, \"x\"]", "type"),
            ("[1, \"o\", 3]", "data"),
            ("[1, \"o\", \"x\"", "not JSON"),
            ("garbage", "not JSON"),
        ] {
            let (line, what) = err_line(&format!("{head}\n{bad}\n[9, \"o\", \"z\"]\n"));
            assert_eq!(line, 4, "{bad}");
            assert!(what.contains(want), "{bad}: {what}");
        }
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend_from_slice(b"[1, \"o\", \"\xff\"]\n");
        match check(&bytes[..]).unwrap() {
            Err(CastError::Line { line: 3, what }) => assert!(what.contains("UTF-8")),
            other => panic!("{other:?}"),
        }
        let e = CastError::Line {
            line: 7,
            what: "x".into(),
        };
        assert_eq!(e.to_string(), "line 7: x");
    }

    #[test]
    fn pauses_are_capped_then_sped_up() {
        let w = Duration::from_secs(2);
        assert_eq!(pause(0.0, 1.5, 1.0, w), Duration::from_millis(1500));
        assert_eq!(pause(0.0, 100.0, 1.0, w), w);
        assert_eq!(pause(0.0, 100.0, 4.0, w), Duration::from_millis(500));
        assert_eq!(pause(1.0, 2.0, 2.0, w), Duration::from_millis(500));
        // Time going back is no pause.
        assert_eq!(pause(5.0, 1.0, 1.0, w), Duration::ZERO);
        assert_eq!(pause(0.0, 1.0, f64::MIN_POSITIVE, w), w);
    }

    #[test]
    fn plays_output_only() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut out = Vec::new();
        let ended = rt
            .block_on(play(
                CAST.as_bytes(),
                &mut out,
                1000.0,
                Duration::from_secs(2),
                std::future::pending(),
            ))
            .unwrap();
        assert_eq!(ended, Ended::Finished);
        assert_eq!(String::from_utf8(out).unwrap(), "hello wörld\r\n");

        // Stopped before the first output.
        let mut out = Vec::new();
        let ended = rt
            .block_on(play(
                CAST.as_bytes(),
                &mut out,
                1.0,
                Duration::from_secs(60),
                std::future::ready(()),
            ))
            .unwrap();
        assert_eq!(ended, Ended::Stopped);
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn garbage_lines_never_panic(s in "\\PC*") {
            let _ = parse_header(&s);
            let _ = parse_event(&s);
        }

        #[test]
        fn garbage_files_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = check(&b[..]).unwrap();
        }

        #[test]
        fn event_like_lines_never_panic(
            t in any::<f64>(),
            code in "[a-z]{0,2}",
            data in "\\PC{0,20}",
            extra in proptest::option::of(any::<i64>()),
        ) {
            let mut line = format!("[{}, {:?}, {:?}", t, code, data);
            if let Some(x) = extra {
                line.push_str(&format!(", {x}"));
            }
            line.push(']');
            let cast = format!("{{\"version\": 2}}\n{line}\n");
            let _ = check(cast.as_bytes()).unwrap();
            if let Ok(e) = parse_event(&line) {
                prop_assert!(e.time >= 0.0 && e.time.is_finite());
            }
        }
    }
}
