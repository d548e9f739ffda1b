//! README.md's "Try it by hand", run as written: its shell blocks are read
//! from README.md at test time (not copied here), split into the numbered
//! steps (`# 1. …`), and run one by one in a copy of the repository's
//! tracked files, each step's outcome checked before the next:
//!
//! 1. the coordinator answers with the example CI jobs queued;
//! 2. the runner is registered, `config.toml` has a `[session_server]`, and
//!    the runner serves its metrics;
//! 3. `POST /admin/jobs` queued job 4, tagged `interactive-web-terminal`,
//!    and the runner picks it up with a session on its session server;
//! 4. the look commands print the jobs, the session URL and the metrics;
//! 5. `termgate terminal` (interactive, so in tmux) types a command into
//!    job 4, sees its output, and the detach key ends it with
//!    `[termgate] detached`, exit code 0;
//! 6. the runner and the coordinator stop.
//!
//! Then the copy's `git status` is clean (what the walkthrough wrote is in
//! `.gitignore`) and nothing, ignored or not, appeared in `assets/`.
//!
//! What the test changes in the blocks, and why:
//! - `cargo build --release` is skipped and `B=./target/release` points at
//!   the binaries this test run built ([`workspace_bin`]): a release build
//!   is minutes and gigabytes, and the same code.
//! - The ports 8080, 9252 and 8093 are replaced by free ones, so the test
//!   runs beside others (and beside a reader's own walkthrough).
//! - Steps 1-4 and 6 run in one `bash` reading them on stdin, as a reader's
//!   shell would (its `&` jobs and `$B` carry over); step 5 runs in tmux.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use termgate_test_support::tmux::Tmux;
use termgate_test_support::{http, wait_until, workspace_bin};

const WAIT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The section's shell blocks, one line each, in order.
fn walkthrough_lines(readme: &str) -> Vec<String> {
    let start = readme
        .find("\n## Try it by hand\n")
        .expect("README.md has a \"## Try it by hand\" section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    let section = &rest[..end];
    let mut lines = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        match (in_block, line.trim_end()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, l) => lines.push(l.to_string()),
            _ => {}
        }
    }
    assert!(!in_block, "an unclosed ```sh block in the section");
    lines
}

/// Step number of a `# N. …` comment line.
fn step_number(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("# ")?;
    let (n, _) = rest.split_once(". ")?;
    n.parse().ok()
}

/// The lines before `# 1.` (the prelude) and each numbered step's lines.
fn steps(lines: &[String]) -> (Vec<String>, Vec<(u32, String)>) {
    let mut prelude = Vec::new();
    let mut steps: Vec<(u32, String)> = Vec::new();
    for line in lines {
        match (step_number(line), steps.last_mut()) {
            (Some(n), _) => steps.push((n, format!("{line}\n"))),
            (None, Some((_, text))) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => prelude.push(line.clone()),
        }
    }
    (prelude, steps)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copy the repository's tracked files (as a fresh clone has them) into
/// `to`, and commit them there so `git status` shows what the walkthrough
/// adds or changes.
fn fresh_copy(to: &Path) {
    let root = repo_root();
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git (the walkthrough test copies the tracked files)");
    assert!(out.status.success(), "git ls-files in {}", root.display());
    for rel in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let src = root.join(rel);
        if !src.is_file() {
            continue;
        }
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=walkthrough",
            "-c",
            "user.email=walkthrough@localhost",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "--no-verify",
            "-m",
            "fresh clone",
        ],
    ] {
        let out = Command::new("git")
            .args(args)
            .current_dir(to)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn git_status(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("status")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reader's shell: one `bash` reading the steps on stdin, in its own
/// process group (its `&` jobs too), killed with them when dropped.
struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
    out: PathBuf,
    err: PathBuf,
}

impl Shell {
    fn start(cwd: &Path, logs: &Path) -> Shell {
        let out = logs.join("shell.out");
        let err = logs.join("shell.err");
        let mut child = Command::new("bash")
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        Shell {
            child,
            stdin,
            out,
            err,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.output(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Run `text`, then wait until the shell has run it; returns what it
    /// printed.
    fn step(&mut self, n: u32, text: &str) -> String {
        let before = self.output().len();
        let marker = format!("__walkthrough step {n} done__");
        let stdin = self.stdin.as_mut().unwrap();
        write!(stdin, "{text}\necho '{marker}'\n").unwrap();
        stdin.flush().unwrap();
        let mut done = None;
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(&format!("step {n} to finish"), WAIT, || {
                let out = self.output();
                out.contains(&marker).then(|| done = Some(out))
            })
        }));
        if waited.is_err() {
            panic!("step {n} did not finish:\n{text}\n{}", self.logs());
        }
        let out = done.unwrap();
        out.get(before..).unwrap_or_default().replace(&marker, "")
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        drop(self.stdin.take());
        // SIGTERM first: a runner stopped that way aborts its jobs (their
        // own process groups); what is left after a grace gets SIGKILL.
        let pg = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pg, Signal::SIGTERM);
        let _ = self.child.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while killpg(pg, None).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(pg, Signal::SIGKILL);
    }
}

fn get_json(url: &str) -> Option<Value> {
    http().get(url).send().ok()?.json().ok()
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let lines = walkthrough_lines(&readme);
    let (prelude, steps) = steps(&lines);
    assert_eq!(
        prelude,
        ["cargo build --release", "B=./target/release"],
        "the walkthrough's prelude changed: update this test's mapping"
    );
    let numbers: Vec<u32> = steps.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6], "the walkthrough's steps");

    let bin_dir = workspace_bin("termgate-coordinator")
        .parent()
        .unwrap()
        .to_path_buf();
    workspace_bin("termgate-runner");
    let termgate = PathBuf::from(env!("CARGO_BIN_EXE_termgate"));
    assert_eq!(termgate.parent(), Some(bin_dir.as_path()));

    let (coord_port, metrics_port, session_port) = (free_port(), free_port(), free_port());
    let ports = |text: &str| {
        text.replace("127.0.0.1:8080", &format!("127.0.0.1:{coord_port}"))
            .replace("127.0.0.1:9252", &format!("127.0.0.1:{metrics_port}"))
            .replace("127.0.0.1:8093", &format!("127.0.0.1:{session_port}"))
    };
    let steps: Vec<String> = steps.iter().map(|(_, t)| ports(t)).collect();
    let coord = format!("http://127.0.0.1:{coord_port}");

    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("clone");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    fresh_copy(&clone);
    let mut shell = Shell::start(&clone, &logs);
    let b = format!("B={}", bin_dir.display());
    shell.step(0, &b);

    // 1. The coordinator, with the example CI jobs.
    shell.step(1, &steps[0]);
    let jobs = wait_until("the coordinator's jobs", WAIT, || {
        get_json(&format!("{coord}/admin/jobs")).filter(|j| j.as_array().is_some())
    });
    assert_eq!(jobs.as_array().unwrap().len(), 3, "{jobs}");

    // 2. Registered, with a session server, running.
    let out = shell.step(2, &steps[1]);
    assert!(out.contains("Runner registered successfully"), "{out}");
    let config = std::fs::read_to_string(clone.join("config.toml")).unwrap();
    let parsed: toml::Table = config.parse().unwrap();
    let session = parsed["session_server"]
        .as_table()
        .expect("[session_server]");
    assert_eq!(
        session["listen_address"].as_str(),
        Some(format!("127.0.0.1:{session_port}").as_str()),
        "{config}"
    );
    wait_until("the runner's metrics", WAIT, || {
        http()
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    });

    // 3. A terminal job queued through the admin API, and picked up with a
    // session on this runner's session server.
    let out = shell.step(3, &steps[2]);
    assert!(out.contains(r#"{"ids":[4]}"#), "{out}\n{}", shell.logs());
    let job = wait_until("job 4 running with a session", WAIT, || {
        get_json(&format!("{coord}/admin/jobs/4"))
            .filter(|j| j["state"] == "running" && j["session"]["url"].is_string())
    });
    let tags = job["tags"].as_array().unwrap();
    assert!(
        tags.iter().any(|t| t == "interactive-web-terminal"),
        "{tags:?}"
    );
    let session_url = job["session"]["url"].as_str().unwrap().to_string();
    assert!(
        session_url.starts_with(&format!("https://127.0.0.1:{session_port}/session/")),
        "{session_url}"
    );

    // 4. Look.
    let out = shell.step(4, &steps[3]);
    assert!(
        out.contains(r#"{"id":4,"name":"terminal","state":"running"}"#),
        "{out}"
    );
    assert!(out.contains(&session_url), "{out}");
    assert!(out.contains("gitlab_runner_jobs{"), "{out}");

    // 5. The terminal, as a user types in it.
    let script = logs.join("step5.sh");
    std::fs::write(
        &script,
        format!(
            "cd '{}'\n{b}\n{}echo \"[step 5 exit $?]\"\nsleep 600\n",
            clone.display(),
            steps[4]
        ),
    )
    .unwrap();
    let tmux = Tmux::start("tg-readme", &format!("bash {}", script.display()));
    let screen = tmux.wait("the terminal's banner", WAIT, |s| {
        s.contains("Ctrl-] to detach") || s.contains("[step 5 exit")
    });
    assert!(
        screen.contains("[termgate] terminal ws://") && !screen.contains("[step 5 exit"),
        "{screen}"
    );
    tmux.keys(true, "echo readme-$((6*7)) $CI_JOB_ID");
    tmux.keys(false, "Enter");
    tmux.wait("the command's output", WAIT, |s| s.contains("readme-42 4"));
    tmux.keys(false, "C-]");
    let screen = tmux.wait("the terminal's end", WAIT, |s| s.contains("[step 5 exit"));
    assert!(screen.contains("[termgate] detached"), "{screen}");
    assert!(screen.contains("[step 5 exit 0]"), "{screen}");
    drop(tmux);

    // 6. Stop: both exit (the step's `wait` returns).
    shell.step(6, &steps[5]);
    assert!(
        http().get(format!("{coord}/admin/jobs")).send().is_err(),
        "the coordinator still answers"
    );
    drop(shell);

    // The runner's commands that only look, pointed at the example config,
    // leave assets/ as it was (`verify` too, but it would dial the example's
    // gitlab.example.com: its system id is a unit test in the runner).
    let runner = workspace_bin("termgate-runner");
    for cmd in [&["doctor"][..], &["list"], &["operator", "list"]] {
        let out = Command::new(&runner)
            .args(cmd)
            .args(["-c", "assets/config.example.toml"])
            .current_dir(&clone)
            .output()
            .unwrap();
        assert!(out.status.code().is_some(), "termgate-runner {cmd:?}");
    }

    // What the walkthrough wrote is ignored, nothing tracked changed, and
    // nothing at all appeared in assets/.
    let status = git_status(&clone, &["--porcelain"]);
    assert!(
        status.is_empty(),
        "not in .gitignore, or changed:\n{status}"
    );
    let assets = git_status(&clone, &["--porcelain", "--ignored", "--", "assets"]);
    assert!(assets.is_empty(), "written into assets/:\n{assets}");
    let ignored = git_status(&clone, &["--porcelain", "--ignored"]);
    // builds/ holds only empty directories once the job is gone: git does
    // not list those, the file system does.
    assert!(clone.join("builds").is_dir(), "no builds/ in the clone");
    for written in ["config.toml", ".runner_system_id", "session-server.crt"] {
        assert!(
            ignored.contains(&format!("!! {written}\n")),
            "{written} not written where the README says:\n{ignored}"
        );
    }
}

#[test]
fn steps_split_on_numbered_comments() {
    let readme = "x\n## Try it by hand\n\n```sh\nA=1\n# 1. one\necho $A\n```\ntext\n```sh\n# 2. two\necho 2\n```\n## Next\n```sh\n# 3. no\n```\n";
    let lines = walkthrough_lines(readme);
    let (prelude, steps) = steps(&lines);
    assert_eq!(prelude, ["A=1"]);
    assert_eq!(
        steps,
        [
            (1, "# 1. one\necho $A\n".to_string()),
            (2, "# 2. two\necho 2\n".to_string())
        ]
    );
}
