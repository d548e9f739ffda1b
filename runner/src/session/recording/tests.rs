use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::AtomicBool;
use std::sync::Condvar;

use termgate::operator::client_role;
use termgate_test_support::wait_until;

use super::writer::Utf8Carry;
use super::*;
use crate::builds::{Builds, ProcessStateCell};

const SECRET: &str = "glrt-SECRET-value-42";

fn metrics() -> Arc<Metrics> {
    Metrics::new(Builds::default(), ProcessStateCell::default(), "0", "0").unwrap()
}

fn settings(dir: &Path) -> RecordingSettings {
    RecordingSettings {
        dir: dir.to_path_buf(),
        record_input: false,
        max_age: None,
        max_size_bytes: None,
    }
}

fn meta(job_id: u64) -> RecordingMeta {
    RecordingMeta {
        job_id,
        mode: client_role::INTERACTIVE,
        session_id: "0123456789abcdef0123".into(),
        operator: None,
        size: TermSize {
            cols: 120,
            rows: 40,
        },
        masked: vec![SECRET.into()],
    }
}

/// One event line of a cast.
#[derive(Debug, Clone, PartialEq)]
struct Ev {
    t: f64,
    code: String,
    data: String,
}

/// Every line parses as JSON: the header object, then `[t, code, data]`.
fn parse(text: &str) -> (serde_json::Value, Vec<Ev>) {
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let events = lines
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let a = v.as_array().unwrap_or_else(|| panic!("not an array: {l}"));
            assert_eq!(a.len(), 3, "{l}");
            Ev {
                t: a[0].as_f64().unwrap(),
                code: a[1].as_str().unwrap().into(),
                data: a[2].as_str().unwrap().into(),
            }
        })
        .collect();
    (header, events)
}

fn joined(events: &[Ev], code: &str) -> String {
    events
        .iter()
        .filter(|e| e.code == code)
        .map(|e| e.data.as_str())
        .collect()
}

fn read(path: &Path) -> (serde_json::Value, Vec<Ev>) {
    parse(&fs::read_to_string(path).unwrap())
}

/// A sink in memory, readable while the writer runs.
#[derive(Clone, Default)]
struct MemSink(Arc<Mutex<Vec<u8>>>);

impl MemSink {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for MemSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Feed `chunks` as output of a recording into memory; the cast's text.
fn record_chunks(rec: &Recorder, chunks: &[&[u8]]) -> String {
    let sink = MemSink::default();
    let r = rec
        .spawn(
            &meta(1),
            "mem.cast".into(),
            Box::new(sink.clone()),
            Utc::now(),
        )
        .unwrap();
    for c in chunks {
        r.output(c);
    }
    r.finish_blocking();
    sink.text()
}

fn memory_recorder() -> Arc<Recorder> {
    Recorder::new(settings(Path::new("/nonexistent")), metrics())
}

#[test]
fn header_and_events_parse_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let m = metrics();
    let rec = Recorder::new(settings(dir.path()), m.clone());
    let before = Utc::now().timestamp();
    let mut md = meta(42);
    md.operator = Some("alice".into());
    let r = rec.start(md).unwrap();
    r.output(b"$ echo \"hi\"\r\n");
    r.resize(TermSize {
        cols: 100,
        rows: 30,
    });
    r.output(b"hi\ttab \x1b[1mbold\x1b[0m\r\n");
    let path = r.path().to_path_buf();
    r.finish_blocking();
    let (h, ev) = read(&path);
    assert_eq!(h["version"], 2);
    assert_eq!(h["width"], 120);
    assert_eq!(h["height"], 40);
    let ts = h["timestamp"].as_i64().unwrap();
    assert!(ts >= before && ts <= Utc::now().timestamp(), "{ts}");
    let title = h["title"].as_str().unwrap();
    assert!(
        title.contains("job 42") && title.contains("alice"),
        "{title}"
    );
    assert_eq!(h["env"]["TERM"], crate::executor::shell::pty::DEFAULT_TERM);
    let codes: Vec<&str> = ev.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["o", "r", "o"]);
    assert_eq!(ev[1].data, "100x30");
    assert_eq!(
        joined(&ev, "o"),
        "$ echo \"hi\"\r\nhi\ttab \x1b[1mbold\x1b[0m\r\n"
    );
    assert!(ev.windows(2).all(|w| w[0].t <= w[1].t), "{ev:?}");
    assert!(ev.iter().all(|e| e.t >= 0.0 && e.t < 60.0));
    let out = m.render();
    assert!(
        out.contains("gitlab_runner_session_recordings_total{mode=\"interactive\"} 1"),
        "{out}"
    );
    assert!(out.contains("gitlab_runner_session_recording_errors_total{mode=\"interactive\"} 0"));
}

#[test]
fn masked_value_split_across_two_chunks_never_appears() {
    let rec = memory_recorder();
    let input = format!("token={SECRET} and {SECRET}!\r\n");
    let want = "token=[MASKED] and [MASKED]!\r\n";
    let b = input.as_bytes();
    for cut in 0..=b.len() {
        let text = record_chunks(&rec, &[&b[..cut], &b[cut..]]);
        assert!(!text.contains("SECRET"), "cut {cut}: {text}");
        let (_, ev) = parse(&text);
        assert_eq!(joined(&ev, "o"), want, "cut {cut}");
    }
}

#[test]
fn masked_value_split_across_three_chunks_never_appears() {
    let rec = memory_recorder();
    let input = format!("[{SECRET}]");
    let b = input.as_bytes();
    for i in 1..b.len() {
        for j in i..b.len() {
            let text = record_chunks(&rec, &[&b[..i], &b[i..j], &b[j..]]);
            assert!(!text.contains("SECRET"), "cuts {i},{j}: {text}");
            let (_, ev) = parse(&text);
            assert_eq!(joined(&ev, "o"), "[[MASKED]]", "cuts {i},{j}");
        }
    }
    // A secret's start at the very end is written at the finish.
    let text = record_chunks(&rec, &[b"x glrt-SEC"]);
    assert_eq!(joined(&parse(&text).1, "o"), "x glrt-SEC");
}

#[test]
fn utf8_split_across_chunks() {
    let rec = memory_recorder();
    let s = "héllo € 😀 ok";
    let b = s.as_bytes();
    for cut in 0..=b.len() {
        let text = record_chunks(&rec, &[&b[..cut], &b[cut..]]);
        assert_eq!(joined(&parse(&text).1, "o"), s, "cut {cut}");
    }
    // Invalid bytes, and a character cut off at the end, become U+FFFD.
    let text = record_chunks(&rec, &[b"a\xffb\xe2", b"\x82", b"c\xf0\x9f"]);
    assert_eq!(joined(&parse(&text).1, "o"), "a\u{fffd}b\u{fffd}c\u{fffd}");
}

#[test]
fn utf8_carry_unit() {
    let mut u = Utf8Carry::default();
    assert_eq!(u.push(b"\xe2\x82"), "");
    assert_eq!(u.push(b"\xac!"), "€!");
    assert_eq!(u.push(b"\xf0"), "");
    assert_eq!(u.push(b"x"), "\u{fffd}x");
    assert_eq!(u.push(b"\xc3"), "");
    assert_eq!(u.finish(), "\u{fffd}");
    assert_eq!(u.finish(), "");
}

#[test]
fn input_only_with_record_input() {
    let dir = tempfile::tempdir().unwrap();
    let off = Recorder::new(settings(dir.path()), metrics());
    let r = off.start(meta(1)).unwrap();
    r.input(b"ls\r");
    r.output(b"ls\r\n");
    let path = r.path().to_path_buf();
    r.finish_blocking();
    let (_, ev) = read(&path);
    assert!(ev.iter().all(|e| e.code != "i"), "{ev:?}");

    let mut s = settings(dir.path());
    s.record_input = true;
    let on = Recorder::new(s, metrics());
    let r = on.start(meta(2)).unwrap();
    // Typed one key at a time, the secret is still masked.
    for b in format!("echo {SECRET}\r").bytes() {
        r.input(&[b]);
    }
    r.output(b"out");
    let path = r.path().to_path_buf();
    r.finish_blocking();
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    let (_, ev) = parse(&text);
    assert_eq!(joined(&ev, "i"), "echo [MASKED]\r");
    assert_eq!(joined(&ev, "o"), "out");
}

#[test]
fn files_are_0600_in_a_0700_dir_named_by_the_scheme() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("rec/ordings");
    let rec = Recorder::new(settings(&dir), metrics());
    let r = rec.start(meta(42)).unwrap();
    let name = r.path().file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name::is_recording(&name), "{name}");
    assert!(name.starts_with("job-42-interactive-2"), "{name}");
    assert!(name.ends_with("-01234567.cast"), "{name}");
    assert_eq!(r.path().parent().unwrap(), dir);
    let mode = fs::metadata(r.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dmode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dmode, 0o700);
    r.finish_blocking();

    // The same name again gets a suffix; the first file is untouched.
    let now = Utc::now();
    let (a, _) = rec.create(&meta(5), now).unwrap();
    let (b, _) = rec.create(&meta(5), now).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    assert_eq!(b, a.replace(".cast", "-1.cast"));

    // A symlink where the file would go is not followed.
    let target = base.path().join("target");
    fs::write(&target, "keep").unwrap();
    let later = now + chrono::Duration::seconds(1);
    let want = dir.join(name::with_suffix(
        &name::base(6, client_role::INTERACTIVE, "0123456789", later),
        0,
    ));
    std::os::unix::fs::symlink(&target, &want).unwrap();
    let (c, _) = rec.create(&meta(6), later).unwrap();
    assert_ne!(c, want);
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn a_failed_start_returns_none_and_counts() {
    let base = tempfile::tempdir().unwrap();
    let file = base.path().join("not-a-dir");
    fs::write(&file, "").unwrap();
    let m = metrics();
    let rec = Recorder::new(settings(&file), m.clone());
    assert!(rec.start(meta(1)).is_none());
    let mut shell = meta(2);
    shell.mode = client_role::SHELL;
    assert!(rec.start(shell).is_none());
    let out = m.render();
    assert!(out.contains("gitlab_runner_session_recording_errors_total{mode=\"interactive\"} 1"));
    assert!(out.contains("gitlab_runner_session_recording_errors_total{mode=\"shell\"} 1"));
    assert!(out.contains("gitlab_runner_session_recordings_total{mode=\"interactive\"} 0"));
}

/// Writes `len` bytes at `dir/name` last modified `age` ago.
fn aged(dir: &Path, name: &str, len: usize, age: Duration) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, vec![b'x'; len]).unwrap();
    let f = File::options().write(true).open(&p).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
    p
}

fn rec_name(job: u64) -> String {
    format!("job-{job}-interactive-20261206T090000Z-01234567.cast")
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn prune_by_age_leaves_everything_else_alone() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("rec");
    fs::create_dir(&dir).unwrap();
    let old = aged(&dir, &rec_name(1), 10, 48 * HOUR);
    let old_suffixed = aged(
        &dir,
        "job-2-shell-20261206T090000Z-abcdef12-3.cast",
        10,
        48 * HOUR,
    );
    let fresh = aged(&dir, &rec_name(3), 10, HOUR);
    let unrelated = aged(&dir, "notes.txt", 10, 48 * HOUR);
    let almost = aged(&dir, &format!("{}.bak", rec_name(4)), 10, 48 * HOUR);
    // A symlink named like a recording, to an old file outside the dir.
    let outside = aged(base.path(), &rec_name(5), 10, 48 * HOUR);
    let link = dir.join(rec_name(6));
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    // A directory named like one.
    let subdir = dir.join(rec_name(7));
    fs::create_dir(&subdir).unwrap();
    aged(&subdir, &rec_name(8), 10, 48 * HOUR);

    let mut s = settings(&dir);
    s.max_age = Some(24 * HOUR);
    let stats = Recorder::new(s, metrics()).prune().unwrap();
    assert_eq!(
        stats,
        PruneStats {
            deleted_files: 2,
            deleted_bytes: 20,
            kept_files: 1,
            kept_bytes: 10
        }
    );
    assert!(!old.exists() && !old_suffixed.exists());
    for p in [
        &fresh,
        &unrelated,
        &almost,
        &outside,
        &subdir.join(rec_name(8)),
    ] {
        assert!(p.exists(), "{}", p.display());
    }
    assert!(fs::symlink_metadata(&link).is_ok());

    // No limits: nothing goes. A missing directory is no error.
    assert_eq!(
        Recorder::new(settings(&dir), metrics())
            .prune()
            .unwrap()
            .deleted_files,
        0
    );
    let gone = Recorder::new(settings(&base.path().join("nope")), metrics());
    assert_eq!(gone.prune().unwrap(), PruneStats::default());
}

#[test]
fn prune_by_size_deletes_the_oldest_first() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path();
    let a = aged(dir, &rec_name(1), 100, 3 * HOUR);
    let b = aged(dir, &rec_name(2), 100, 2 * HOUR);
    let c = aged(dir, &rec_name(3), 100, HOUR);
    let big_unrelated = aged(dir, "big.iso", 10_000, 5 * HOUR);
    let mut s = settings(dir);
    s.max_size_bytes = Some(250);
    let rec = Recorder::new(s, metrics());
    let stats = rec.prune().unwrap();
    assert_eq!(stats.deleted_files, 1);
    assert_eq!(stats.kept_bytes, 200);
    assert!(!a.exists() && b.exists() && c.exists() && big_unrelated.exists());

    // A recording being written counts but stays; the older ones go.
    let live = rec.start(meta(9)).unwrap();
    live.output(&[b'y'; 300]);
    let live_path = live.path().to_path_buf();
    wait_until(
        "the live recording on disk",
        Duration::from_secs(10),
        || (fs::metadata(&live_path).ok()?.len() > 300).then_some(()),
    );
    let stats = rec.prune().unwrap();
    assert_eq!(stats.deleted_files, 2, "{stats:?}");
    assert_eq!(stats.kept_files, 1);
    assert!(live_path.exists() && !b.exists() && !c.exists());
    live.finish_blocking();
    // Finished, it is fair game.
    let stats = rec.prune().unwrap();
    assert_eq!(stats.deleted_files, 1);
    assert!(!live_path.exists());
}

/// A sink whose writes wait until the test opens the gate.
#[derive(Clone)]
struct GatedSink {
    mem: MemSink,
    entered: Arc<AtomicBool>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl GatedSink {
    fn new() -> Self {
        GatedSink {
            mem: MemSink::default(),
            entered: Arc::default(),
            gate: Arc::default(),
        }
    }

    fn open(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }

    fn wait_blocked(&self) {
        wait_until("the writer blocked", Duration::from_secs(10), || {
            self.entered.load(Ordering::SeqCst).then_some(())
        });
    }
}

impl Write for GatedSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.entered.store(true, Ordering::SeqCst);
        let (lock, cv) = &*self.gate;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        self.mem.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_channel_drops_with_a_marker_instead_of_blocking() {
    let m = metrics();
    let rec = Recorder::with_capacity(settings(Path::new("/nonexistent")), m.clone(), 2);
    let sink = GatedSink::new();
    let r = rec
        .spawn(
            &meta(1),
            "gated.cast".into(),
            Box::new(sink.clone()),
            Utc::now(),
        )
        .unwrap();
    // The writer is stuck writing the header: nothing is taken off the
    // channel until the gate opens.
    sink.wait_blocked();
    r.output(b"one ");
    r.output(b"two ");
    r.output(b"dropped-a "); // full: these return at once
    r.output(b"dropped-bb ");
    r.resize(TermSize { cols: 1, rows: 1 });
    sink.open();
    wait_until("the queue drained", Duration::from_secs(10), || {
        sink.mem.text().contains("two ").then_some(())
    });
    r.output(b"three");
    r.finish_blocking();
    let (_, ev) = parse(&sink.mem.text());
    let out = joined(&ev, "o");
    assert_eq!(
        out, "one two \r\n[termgate: recording lost 21 bytes]\r\nthree",
        "{ev:?}"
    );
    assert!(ev.iter().all(|e| e.code != "r"));
    assert!(ev.windows(2).all(|w| w[0].t <= w[1].t));
    // Counted once for the recording, however many events were lost.
    assert!(m
        .render()
        .contains("gitlab_runner_session_recording_errors_total{mode=\"interactive\"} 1"));

    // Lost just before the end: the note is the last event, and bytes the
    // masker held back come first.
    let sink = GatedSink::new();
    let r = rec
        .spawn(
            &meta(2),
            "gated2.cast".into(),
            Box::new(sink.clone()),
            Utc::now(),
        )
        .unwrap();
    sink.wait_blocked();
    r.output(b"a glrt-");
    r.output(b"SEC");
    r.output(b"lost");
    let finishing = std::thread::spawn(move || r.finish_blocking());
    sink.open();
    finishing.join().unwrap();
    let (_, ev) = parse(&sink.mem.text());
    assert_eq!(
        joined(&ev, "o"),
        "a glrt-SEC\r\n[termgate: recording lost 4 bytes]\r\n"
    );
}

#[test]
fn from_config() {
    let mut cfg = config::SessionServer::default();
    assert_eq!(RecordingSettings::from_config(&cfg), None);
    cfg.recordings_dir = Some("/var/lib/termgate/rec".into());
    cfg.record_input = true;
    cfg.recordings_max_age = Some("72h".into());
    cfg.recordings_max_size_mb = 5;
    assert_eq!(
        RecordingSettings::from_config(&cfg),
        Some(RecordingSettings {
            dir: "/var/lib/termgate/rec".into(),
            record_input: true,
            max_age: Some(72 * HOUR),
            max_size_bytes: Some(5 * 1024 * 1024),
        })
    );
    cfg.recordings_max_size_mb = 0;
    cfg.recordings_max_age = None;
    let s = RecordingSettings::from_config(&cfg).unwrap();
    assert_eq!((s.max_age, s.max_size_bytes), (None, None));
}

#[test]
fn recording_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Recording>();
    check::<Recorder>();
}

/// Debian's `asciinema cat` (installed by `scripts/setup-test-deps.sh`)
/// prints exactly the bytes fed in, masked values replaced. It wants a
/// controlling terminal, so it runs on a PTY of our own. Skipped when
/// asciinema is missing, unless `TERMGATE_REQUIRE_ASCIINEMA=1` (CI).
#[tokio::test]
async fn asciinema_cat_prints_what_was_fed_in() {
    use crate::executor::shell::pty::{self, PtyCommand};
    use tokio::io::AsyncReadExt as _;

    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::new(settings(dir.path()), metrics());
    let r = rec.start(meta(7)).unwrap();
    let fed = format!(
        "$ printf 'h\\xc3\\xa9 \\xe2\\x82\\xac\\n'\r\nhé €\r\n\x1b[1;32mok\x1b[0m\ttab\r\n\
         TOKEN={SECRET} 😀 done\r\n"
    );
    let b = fed.as_bytes();
    let secret_at = fed.find(SECRET).unwrap();
    // Cut inside `é`, inside `€`, twice inside the secret, inside `😀`.
    let e_acute = fed.find("hé").unwrap() + 2;
    let euro = fed.find("€\r").unwrap() + 1;
    let emoji = fed.find('😀').unwrap() + 3;
    let cuts = [
        0,
        e_acute,
        euro,
        secret_at + 3,
        secret_at + 11,
        emoji,
        b.len(),
    ];
    for w in cuts.windows(2) {
        r.output(&b[w[0]..w[1]]);
    }
    r.resize(TermSize { cols: 90, rows: 20 });
    let path = r.path().to_path_buf();
    r.finish_blocking();
    let want = fed.replace(SECRET, "[MASKED]");

    let cmd = PtyCommand {
        program: "asciinema".into(),
        args: vec!["cat".into(), path.to_string_lossy().into_owned()],
        cwd: dir.path().to_path_buf(),
        env: vec![("PYTHONIOENCODING".into(), "utf-8".into())],
        clear_env: false,
        user: None,
        size: TermSize::default(),
    };
    let proc = match pty::spawn(cmd) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            assert!(
                std::env::var("TERMGATE_REQUIRE_ASCIINEMA").as_deref() != Ok("1"),
                "TERMGATE_REQUIRE_ASCIINEMA=1 but asciinema is not on PATH"
            );
            eprintln!("asciinema not on PATH: skipping (scripts/setup-test-deps.sh installs it)");
            return;
        }
        Err(e) => panic!("spawning asciinema: {e}"),
    };
    let (mut reader, _writer, control) = proc.split();
    let mut out = Vec::new();
    tokio::time::timeout(
        termgate_test_support::scaled(Duration::from_secs(30)),
        reader.read_to_end(&mut out),
    )
    .await
    .expect("asciinema cat did not finish")
    .unwrap();
    let status = control.wait().await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "asciinema cat failed: {status}\n{out}");
    assert_eq!(out, want);
}
