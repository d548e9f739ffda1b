//! `termgate replay`: the binary on small casts, and on a recording the
//! runner's recorder wrote (the two sides of the file format agree).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use termgate_runner::builds::{Builds, ProcessStateCell};
use termgate_runner::executor::terminal::TermSize;
use termgate_runner::metrics::Metrics;
use termgate_runner::session::recording::{Recorder, RecordingMeta, RecordingSettings};
use termgate_test_support::wait_until;

/// `termgate replay ARGS` with its own log in `dir`.
fn replay_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_termgate"));
    c.env("TERMGATE_CONSOLE_LOG_FILE", dir.join("console.log"))
        .arg("replay")
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Run to the end, at most 30 s (scaled): a replay never hangs.
fn run(dir: &Path, args: &[&str]) -> Output {
    let child = replay_cmd(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child)
}

/// Killed if the test gives up on it, so no replay outlives its test.
struct Replaying(Child);

impl Drop for Replaying {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn finish(child: Child) -> Output {
    let mut child = Replaying(child);
    let status = wait_until("termgate replay to exit", Duration::from_secs(30), || {
        child.0.try_wait().unwrap()
    });
    let mut out = Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let c = &mut child.0;
    c.stdout
        .take()
        .unwrap()
        .read_to_end(&mut out.stdout)
        .unwrap();
    c.stderr
        .take()
        .unwrap()
        .read_to_end(&mut out.stderr)
        .unwrap();
    out
}

fn write_cast(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const SMALL: &str = r#"{"version": 2, "width": 80, "height": 24, "timestamp": 1796547600, "env": {"TERM": "xterm-256color"}}
[0.100000, "o", "$ "]
[0.900000, "i", "ls\r"]
[1.000000, "o", "ls\r\n"]
[1.500000, "r", "100x30"]
[2.000000, "o", "a.txt  b\u00e9.txt\r\n\u001b[1;32mdone\u001b[0m\r\n"]
[2.100000, "m", "a marker"]
"#;

#[test]
fn plays_a_small_cast_at_speed_1000() {
    let dir = tempfile::tempdir().unwrap();
    let cast = write_cast(dir.path(), "small.cast", SMALL);
    let out = run(dir.path(), &["--speed", "1000", cast.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "$ ls\r\na.txt  bé.txt\r\n\x1b[1;32mdone\x1b[0m\r\n"
    );
    let log = std::fs::read_to_string(dir.path().join("console.log")).unwrap();
    assert!(log.contains("command=\"replay\""), "{log}");
}

#[test]
fn max_wait_caps_an_hour_long_pause() {
    let dir = tempfile::tempdir().unwrap();
    let cast = write_cast(
        dir.path(),
        "idle.cast",
        "{\"version\": 2}\n[0, \"o\", \"before \"]\n[3600, \"o\", \"after\"]\n",
    );
    let out = run(dir.path(), &["--max-wait", "0.05", cast.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"before after");
}

#[test]
fn speed_divides_the_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let cast = write_cast(
        dir.path(),
        "slow.cast",
        "{\"version\": 2}\n[0, \"o\", \"a\"]\n[0.2, \"o\", \"b\"]\n",
    );
    let started = std::time::Instant::now();
    let out = run(dir.path(), &["--speed", "0.5", cast.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"ab");
    // 0.2 s recorded, at half speed.
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn a_bad_file_fails_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cast = write_cast(
        dir.path(),
        "bad.cast",
        "{\"version\": 2}\n[0.1, \"o\", \"fine\"]\n[0.2, \"o\"]\n",
    );
    let out = run(dir.path(), &["--speed", "1000", cast.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing is played from a bad file");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.cast"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let v1 = write_cast(
        dir.path(),
        "v1.cast",
        "{\n  \"version\": 1,\n  \"stdout\": [[0.1, \"hi\"]]\n}\n",
    );
    let out = run(dir.path(), &[v1.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("asciicast v1"), "{err}");

    let out = run(
        dir.path(),
        &[dir.path().join("missing.cast").to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.cast"));

    let out = run(dir.path(), &["--speed", "0", v1.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--speed"));
}

#[test]
fn ctrl_c_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cast = write_cast(
        dir.path(),
        "long.cast",
        "{\"version\": 2}\n[0, \"o\", \"first\\n\"]\n[600, \"o\", \"never\"]\n",
    );
    let mut child = Replaying(
        replay_cmd(dir.path(), &["--max-wait", "600", cast.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    wait_until("the first output", Duration::from_secs(30), || {
        (seen.lock().unwrap().as_slice() == b"first\n").then_some(())
    });
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_until("replay to stop on SIGINT", Duration::from_secs(30), || {
        child.0.try_wait().unwrap()
    });
    reader.join().unwrap();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(seen.lock().unwrap().as_slice(), b"first\n");
}

/// What the runner records, `termgate replay` plays back byte for byte
/// (masked values redacted).
#[test]
fn replays_a_runner_recording() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new(Builds::default(), ProcessStateCell::default(), "0", "0").unwrap();
    let recorder = Recorder::new(
        RecordingSettings {
            dir: dir.path().join("recordings"),
            record_input: true,
            max_age: None,
            max_size_bytes: None,
        },
        metrics,
    );
    let secret = "s3cr3t-value-123";
    let rec = recorder
        .start(RecordingMeta {
            job_id: 12,
            mode: "interactive",
            session_id: "feedc0ffee".into(),
            operator: None,
            size: TermSize { cols: 80, rows: 24 },
            masked: vec![secret.into()],
        })
        .unwrap();
    let fed = format!("$ env\r\nTOKEN={secret}\r\nüñí €\r\n");
    let b = fed.as_bytes();
    for chunk in b.chunks(5) {
        rec.output(chunk);
        rec.input(b"k");
    }
    rec.resize(TermSize {
        cols: 100,
        rows: 30,
    });
    let path = rec.path().to_path_buf();
    rec.finish_blocking();
    let out = run(dir.path(), &["--speed", "1000", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        fed.replace(secret, "[MASKED]")
    );
}
