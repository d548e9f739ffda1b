use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::session::{parse_stat, session_members, ProcOs, ProcStat, SessionOs};
use super::*;

/// The real system, observed: which thread made each `/proc` scan, which
/// sessions were swept, and a gate that holds the signalling thread back
/// (before its first signal of a batch) while a test holds it.
#[derive(Debug, Default)]
struct Observed {
    gate: Mutex<()>,
    scan_threads: Mutex<Vec<Option<String>>>,
    swept: Mutex<Vec<i32>>,
}

impl SessionOs for Observed {
    fn sessions_members(
        &self,
        sids: &std::collections::HashSet<i32>,
    ) -> Option<std::collections::HashMap<i32, Vec<Pid>>> {
        self.scan_threads
            .lock()
            .unwrap()
            .push(std::thread::current().name().map(str::to_owned));
        ProcOs.sessions_members(sids)
    }

    fn kill(&self, pid: Pid, sig: Signal) {
        ProcOs.kill(pid, sig);
    }

    fn kill_group(&self, pgid: Pid, sig: Signal) {
        drop(self.gate.lock().unwrap_or_else(|e| e.into_inner()));
        self.swept.lock().unwrap().push(pgid.as_raw());
        ProcOs.kill_group(pgid, sig);
    }
}

/// A signalling thread of its own acting through `os`.
fn observed() -> (Arc<Observed>, Signaller) {
    let os = Arc::new(Observed::default());
    let signaller = Signaller::start(os.clone());
    (os, signaller)
}

/// Test timeout: 20 s times `TERMGATE_TEST_TIMEOUT_SCALE` (the one knob of
/// every suite, see `termgate-test-support`).
pub(crate) fn timeout() -> Duration {
    termgate_test_support::scaled(Duration::from_secs(20))
}

/// Poll `pred` until it holds ([`termgate_test_support::wait_until_async`]).
pub(crate) async fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    termgate_test_support::wait_until_async(what, Duration::from_secs(20), || {
        std::future::ready(pred().then_some(()))
    })
    .await
}

/// Read until `marker` appears in everything read so far; returns it all.
pub(crate) async fn read_until(r: &mut (impl AsyncRead + Unpin), acc: &mut Vec<u8>, marker: &[u8]) {
    let deadline = tokio::time::Instant::now() + timeout();
    let mut buf = [0u8; 4096];
    while !contains(acc, marker) {
        let n = tokio::time::timeout_at(deadline, r.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(marker),
                    String::from_utf8_lossy(acc)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "EOF before {:?}; got {:?}",
            String::from_utf8_lossy(marker),
            String::from_utf8_lossy(acc)
        );
        acc.extend_from_slice(&buf[..n]);
    }
}

/// Read to EOF (within the timeout).
async fn read_to_eof(r: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(timeout(), r.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no EOF; got {:?}", String::from_utf8_lossy(&out)))
        .unwrap();
    out
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn shells() -> Vec<&'static str> {
    let mut v = vec!["sh"];
    if crate::executor::shell::which("bash").is_some() {
        v.push("bash");
    }
    v
}

fn open(shell: &str, dir: &Path, env: &[(&str, &str)], size: TermSize) -> PtyProcess {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>();
    spawn(PtyCommand::shell(shell, dir, &env, size)).unwrap()
}

/// Run `line` and return the output up to `marker`.
async fn run(p: &mut PtyProcess, line: &str, marker: &str) -> String {
    p.writer
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut acc = Vec::new();
    read_until(&mut p.reader, &mut acc, marker.as_bytes()).await;
    String::from_utf8_lossy(&acc).into_owned()
}

fn stat_of(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Gone or a zombie waiting for a parent other than us (an orphan
/// reparented to a PID 1 that may not reap).
fn dead(pid: i32) -> bool {
    stat_of(pid).is_none_or(|s| s.state == 'Z' || s.state == 'X')
}

fn children_named(sid: u32, name: &str) -> Vec<i32> {
    session_members(Pid::from_raw(sid as i32))
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.as_raw())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

#[test]
fn shell_command_is_interactive_and_login_less() {
    let c = PtyCommand::shell("/usr/bin/bash", Path::new("/b"), &[], TermSize::default());
    assert_eq!(c.args, ["--noprofile", "--norc", "-i"]);
    assert!(c.env.iter().any(|(k, _)| k == "PS1"));
    let env = vec![("PS1".to_string(), "> ".to_string())];
    let c = PtyCommand::shell("sh", Path::new("/b"), &env, TermSize::default());
    assert_eq!(c.args, ["-i"]);
    assert_eq!(c.env, env);
}

#[tokio::test]
async fn env_cwd_and_term() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    for shell in shells() {
        let mut p = open(shell, &dir, &[("CI_JOB_ID", "4242")], TermSize::default());
        let out = run(
            &mut p,
            "echo \"id=$CI_JOB_ID\"; echo END-$((6*7))",
            "END-42",
        )
        .await;
        assert!(out.contains("id=4242"), "{shell}: {out}");
        let out = run(&mut p, "pwd; echo END-$((6*8))", "END-48").await;
        assert!(out.contains(&dir.display().to_string()), "{shell}: {out}");
        let out = run(&mut p, "echo \"term=$TERM\"; echo END-$((6*9))", "END-54").await;
        assert!(out.contains("term=xterm-256color"), "{shell}: {out}");
        p.control.close().await;
    }
}

#[tokio::test]
async fn small_outputs_after_pauses_each_wake_the_reader() {
    // Each small read clears the master's readiness (no EAGAIN read);
    // output written after that must still wake the reader.
    let dir = tempfile::tempdir().unwrap();
    let mut p = open("sh", dir.path(), &[], TermSize::default());
    let out = run(
        &mut p,
        "for i in 1 2 3 4 5; do sleep 0.05; printf \"t$i.\"; done; echo; echo END-$((6*7))",
        "END-42",
    )
    .await;
    assert!(out.contains("t1.t2.t3.t4.t5."), "{out}");
    p.control.close().await;
}

#[tokio::test]
async fn size_default_and_resize() {
    let dir = tempfile::tempdir().unwrap();
    for shell in shells() {
        let mut p = open(shell, dir.path(), &[], TermSize::default());
        let out = run(&mut p, "stty size; echo END-$((6*7))", "END-42").await;
        assert!(out.contains("24 80"), "{shell}: {out}");
        p.control
            .resize(TermSize {
                cols: 120,
                rows: 40,
            })
            .await
            .unwrap();
        let out = run(&mut p, "stty size; echo END-$((6*8))", "END-48").await;
        assert!(out.contains("40 120"), "{shell}: {out}");
        p.control.close().await;
    }
}

#[tokio::test]
async fn exit_gives_eof_and_reaps() {
    let dir = tempfile::tempdir().unwrap();
    for shell in shells() {
        let mut p = open(shell, dir.path(), &[], TermSize::default());
        p.writer.write_all(b"exit 3\n").await.unwrap();
        read_to_eof(&mut p.reader).await;
        let status = tokio::time::timeout(timeout(), p.control.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(3), "{shell}");
        assert!(stat_of(p.pid() as i32).is_none(), "{shell}: not reaped");
    }
}

#[tokio::test]
async fn ctrl_d_on_empty_line_ends_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in shells() {
        let mut p = open(
            shell,
            dir.path(),
            &[("PS1", "PROMPT> ")],
            TermSize::default(),
        );
        // Wait for the next prompt: the shell is reading its line (bash
        // has switched the terminal to readline's mode) before ^D.
        let out = run(&mut p, "echo END-$((6*7))", "END-42").await;
        let (_, after) = out.split_once("END-42").unwrap();
        if !after.contains("PROMPT> ") {
            let mut acc = after.as_bytes().to_vec();
            read_until(&mut p.reader, &mut acc, b"PROMPT> ").await;
        }
        p.writer.write_all(&[0x04]).await.unwrap();
        read_to_eof(&mut p.reader).await;
        tokio::time::timeout(timeout(), p.control.wait())
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn bytes_pass_through_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for shell in shells() {
        let mut p = open(shell, dir.path(), &[], TermSize::default());
        // Output: invalid UTF-8 from the shell reaches the reader as is.
        p.writer
            .write_all(b"printf 'C\\377\\376\\200D\\n'; echo END-$((6*8))\n")
            .await
            .unwrap();
        let mut acc = Vec::new();
        read_until(&mut p.reader, &mut acc, b"END-48").await;
        assert!(contains(&acc, b"C\xff\xfe\x80D"), "{shell}: {acc:?}");
        // Input: raw bytes typed into the terminal reach the program.
        p.writer
            .write_all(b"head -c 3 | od -An -tx1; echo END-$((6*9))\n")
            .await
            .unwrap();
        p.writer.write_all(b"\xff\xfe\x80\n").await.unwrap();
        let mut acc = Vec::new();
        read_until(&mut p.reader, &mut acc, b"END-54").await;
        assert!(contains(&acc, b"ff fe 80"), "{shell}: {acc:?}");
        p.control.close().await;
    }
}

#[tokio::test]
async fn close_kills_the_shell_and_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    for shell in shells() {
        let mut p = open(shell, dir.path(), &[], TermSize::default());
        let pid = p.pid();
        run(&mut p, "sleep 1000 & echo END-$((6*7))", "END-42").await;
        p.writer.write_all(b"sleep 1001\n").await.unwrap();
        wait_until("both sleeps run", || {
            children_named(pid, "sleep").len() == 2
        })
        .await;
        let sleeps = children_named(pid, "sleep");
        tokio::time::timeout(timeout(), p.control.close())
            .await
            .unwrap();
        // Reaped by us: gone, not a zombie.
        assert!(stat_of(pid as i32).is_none(), "{shell}: shell not reaped");
        for s in sleeps {
            wait_until("the sleeps are gone", || dead(s)).await;
        }
        read_to_eof(&mut p.reader).await;
        // Idempotent.
        p.control.close().await;
    }
}

#[tokio::test]
async fn one_scan_signals_every_requested_session() {
    // What the signalling thread does with concurrent closes: one call
    // for several sessions. Each shell's background job is in its own
    // process group, so only the /proc scan finds it.
    let dir = tempfile::tempdir().unwrap();
    let mut shells = Vec::new();
    for _ in 0..3 {
        let mut p = open("sh", dir.path(), &[], TermSize::default());
        run(&mut p, "sleep 1000 & echo END-$((6*7))", "END-42").await;
        let pid = p.pid();
        wait_until("sleep runs", || children_named(pid, "sleep").len() == 1).await;
        shells.push(p);
    }
    let sleeps: Vec<i32> = shells
        .iter()
        .flat_map(|p| children_named(p.pid(), "sleep"))
        .collect();
    let reqs: Vec<(Pid, Vec<Signal>)> = shells
        .iter()
        .map(|p| (Pid::from_raw(p.pid() as i32), vec![Signal::SIGKILL]))
        .collect();
    tokio::task::spawn_blocking(move || session::signal_sessions(&ProcOs, &reqs))
        .await
        .unwrap();
    for s in sleeps {
        wait_until("every session's sleep is gone", || dead(s)).await;
    }
    for p in &shells {
        tokio::time::timeout(timeout(), p.control.close())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn close_escalates_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let shell = shells().pop().unwrap();
    let mut p = open(shell, dir.path(), &[], TermSize::default());
    let pid = p.pid();
    run(&mut p, "trap '' HUP; echo END-$((6*7))", "END-42").await;
    p.writer
        .write_all(b"sh -c 'trap \"\" HUP; sleep 1002'\n")
        .await
        .unwrap();
    wait_until("sleep runs", || !children_named(pid, "sleep").is_empty()).await;
    let sleeps = children_named(pid, "sleep");
    p.control.close().await;
    assert!(stat_of(pid as i32).is_none(), "shell not reaped");
    for s in sleeps {
        wait_until("the sleep is gone", || dead(s)).await;
    }
}

/// `sh` on a PTY closed through `signaller`, with a background `sleep` (its
/// own process group, so only a session sweep finds it); returns the shell
/// and the sleep's pid.
async fn sh_with_background_sleep(dir: &Path, signaller: Signaller) -> (PtyProcess, i32) {
    let cmd = PtyCommand::shell("sh", dir, &[], TermSize::default());
    let mut p = spawn_with(cmd, signaller).unwrap();
    let pid = p.pid();
    run(&mut p, "sleep 1003 & echo END-$((6*7))", "END-42").await;
    wait_until("sleep runs", || children_named(pid, "sleep").len() == 1).await;
    let sleep = children_named(pid, "sleep")[0];
    (p, sleep)
}

#[tokio::test]
async fn flush_waits_for_the_sweeps_queued_by_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (os, signaller) = observed();
    let (p, sleep) = sh_with_background_sleep(dir.path(), signaller.clone()).await;
    let pid = p.pid();
    // The signalling thread is held back: Drop's sweep stays queued.
    let gate = os.gate.lock().unwrap_or_else(|e| e.into_inner());
    drop(p.into_handle());
    // What the runner does last (`flush_signals`), after its runtime is gone.
    let flusher = std::thread::spawn(move || signaller.flush(timeout()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !flusher.is_finished(),
        "flush returned while the sweep queued by Drop was still waiting"
    );
    drop(gate);
    flusher.join().unwrap();
    assert!(
        os.swept.lock().unwrap().contains(&(pid as i32)),
        "the sweep queued by Drop had not run when flush returned"
    );
    assert!(
        !os.scan_threads.lock().unwrap().is_empty(),
        "the sweep queued by Drop had not scanned when flush returned"
    );
    wait_until("the sleep is gone", || dead(sleep)).await;
}

#[tokio::test]
async fn drop_kills_and_reaps() {
    let dir = tempfile::tempdir().unwrap();
    let (os, signaller) = observed();
    let (p, sleep) = sh_with_background_sleep(dir.path(), signaller).await;
    let pid = p.pid();
    drop(p.into_handle());
    wait_until("the shell is reaped", || stat_of(pid as i32).is_none()).await;
    // Only the session sweep finds the sleep, so it has run by now.
    wait_until("the sleep is gone", || dead(sleep)).await;
    // The /proc scan must not run on the thread that drops the handle
    // (a runtime thread carrying other sessions).
    let threads = os.scan_threads.lock().unwrap().clone();
    assert!(!threads.is_empty());
    assert!(
        threads
            .iter()
            .all(|t| t.as_deref() == Some("termgate-pty-signal")),
        "Drop scanned /proc off the signalling thread: {threads:?}"
    );
}

#[tokio::test]
async fn input_larger_than_the_terminal_buffer_waits_for_the_shell() {
    // The writer watches writability only while the input is full: a
    // write that hits EAGAIN must resume once the program reads again.
    let dir = tempfile::tempdir().unwrap();
    let mut p = open("sh", dir.path(), &[], TermSize::default());
    const N: usize = 1024 * 1024;
    p.writer
        .write_all(
            format!(
                "stty raw -echo; echo READY-$((6*7)); sleep 1; head -c {N} | wc -c; echo END-$((6*8))\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut acc = Vec::new();
    read_until(&mut p.reader, &mut acc, b"READY-42").await;
    // The shell sleeps: the terminal's input fills after some KiB and
    // the writer has to wait for `head` to start reading.
    let input = vec![b'x'; N];
    let t0 = std::time::Instant::now();
    tokio::time::timeout(timeout(), p.writer.write_all(&input))
        .await
        .expect("the blocked write never resumed")
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "{N} bytes went in before anything read them: no back-pressure was exercised"
    );
    let mut acc = Vec::new();
    read_until(&mut p.reader, &mut acc, b"END-48").await;
    assert!(
        String::from_utf8_lossy(&acc).contains(&N.to_string()),
        "{}",
        String::from_utf8_lossy(&acc)
    );
    p.control.close().await;
}

#[tokio::test]
async fn a_reader_that_stops_reading_blocks_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open("sh", dir.path(), &[], TermSize::default());
    let pid = p.pid();
    p.writer.write_all(b"yes\n").await.unwrap();
    // Read a little, then stop.
    let mut got = 0usize;
    let mut buf = [0u8; 4096];
    while got < 64 * 1024 {
        let n = tokio::time::timeout(timeout(), p.reader.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got += n;
    }
    wait_until("yes runs", || !children_named(pid, "yes").is_empty()).await;
    let yes = children_named(pid, "yes")[0];
    let written = || -> Option<u64> {
        let io = std::fs::read_to_string(format!("/proc/{yes}/io")).ok()?;
        io.lines()
            .find_map(|l| l.strip_prefix("wchar: "))
            .and_then(|v| v.trim().parse().ok())
    };
    // Blocked in write: sleeping, and its output position stops moving
    // across a few consecutive samples.
    let mut last = None;
    let mut stable = 0;
    wait_until("yes blocks", || {
        let state = stat_of(yes).map(|s| s.state);
        let w = written();
        if state == Some('S') && w == last {
            stable += 1;
        } else {
            stable = 0;
        }
        last = w;
        stable >= 5
    })
    .await;
    // What it wrote is what we read plus the kernel's PTY buffers
    // (a few pages), not an ever growing amount.
    if let Some(w) = written() {
        let bound = (got + 1024 * 1024) as u64;
        assert!(w < bound, "yes wrote {w} bytes, we read {got}");
    }
    // Reading again lets it continue.
    let n = p.reader.read(&mut buf).await.unwrap();
    assert!(n > 0);
    p.control.close().await;
    assert!(stat_of(pid as i32).is_none());
}
