//! Shell jobs as an unprivileged user (`user`, `run --user`, `[[runners]]
//! user`): a job cannot read the runner's config, another user's job's
//! build directory or environment, nor signal the runner; terminals run as
//! the same user; the runner's own environment stays out of jobs.
//!
//! The users come from `scripts/setup-test-deps.sh`: `termgate-job` (also in
//! group `termgate-jobgrp`) and `termgate-job2`. Without them, or not as
//! root, these tests say so and pass, unless `TERMGATE_REQUIRE_JOB_USER=1`
//! (`.ci/run`).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::*;
use crate::term_client::Term;

const SECS: Duration = Duration::from_secs(1);
const USER: &str = "termgate-job";
const USER2: &str = "termgate-job2";
const GROUP: &str = "termgate-jobgrp";
/// A job line saying who runs it.
const WHO: &str = "echo \"who=$(id -un) groups=$(id -Gn | tr ' ' ,)\"";

/// The test users' uids, or `None` (after saying why) when they cannot be
/// used here.
fn job_users() -> Option<(u32, u32)> {
    let required = std::env::var("TERMGATE_REQUIRE_JOB_USER").as_deref() == Ok("1");
    let why = if !nix::unistd::geteuid().is_root() {
        Some("the tests do not run as root".to_string())
    } else {
        match (
            nix::unistd::User::from_name(USER),
            nix::unistd::User::from_name(USER2),
        ) {
            (Ok(Some(a)), Ok(Some(b))) => return Some((a.uid.as_raw(), b.uid.as_raw())),
            _ => Some(format!(
                "users {USER} and {USER2} do not exist (scripts/setup-test-deps.sh creates them)"
            )),
        }
    };
    let why = why.unwrap_or_default();
    assert!(!required, "TERMGATE_REQUIRE_JOB_USER=1 but {why}");
    eprintln!("skipping: {why}");
    None
}

/// Let job users through the test's temporary directory (0700) to the
/// builds below it; what is in it keeps its own mode (config.toml: 0600).
fn traversable(setup: &RunnerSetup) {
    std::fs::set_permissions(setup.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// Add `line` to the `n`th (0-based) `[[runners]]` table.
fn set_nth_runner(setup: &RunnerSetup, n: usize, line: &str) {
    setup.edit(|t| {
        let mut out = String::new();
        let mut seen = 0;
        for l in t.lines() {
            out.push_str(l);
            out.push('\n');
            if l.trim() == "[[runners]]" {
                if seen == n {
                    out.push_str(&format!("  {line}\n"));
                }
                seen += 1;
            }
        }
        out
    });
}

fn trace_text(coord: &Coord, id: u64) -> String {
    String::from_utf8_lossy(&coord.trace(id)).into_owned()
}

/// The value after `key=` on a line of `text`.
fn field(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("{key}="))? + key.len() + 1;
    let rest = &text[at..];
    Some(rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())].to_string())
}

#[test]
fn a_job_as_user_cannot_read_the_runner_another_users_job_or_signal_the_runner() {
    let Some((uid_a, uid_b)) = job_users() else {
        return;
    };
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "as-user-a", &["--tag-list", "user-a"]);
    setup.add_runner(&coord, "as-user-b", &["--tag-list", "user-b"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 4");
    setup.set_global(&format!("user = \"{USER}\""));
    // The second runner's own user (termgate's per-runner override).
    set_nth_runner(&setup, 1, &format!("user = \"{USER2}\""));
    traversable(&setup);
    let config_mode = std::fs::metadata(&setup.config)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(config_mode & 0o777, 0o600);
    let r = setup.start();
    let runner_pid = r.child.id();

    // B holds its build dir, a secret in it and its job token in its
    // environment while A tries to get at them.
    let report = "echo \"dir=$CI_PROJECT_DIR pid=$$ uid=$(id -u)\"";
    let b = coord.enqueue(json!({
        "name": "holder",
        "tags": ["user-b"],
        "script": ["echo b-secret > \"$CI_PROJECT_DIR/secret.txt\"", report, "sleep 120"],
    }));
    let b_said = wait_until("job B reports its dir and pid", 30 * SECS, || {
        let t = coord.trace(b);
        find(&t, b"\ndir=/")
            .map(|_| String::from_utf8_lossy(command_output(&t, report)).into_owned())
    });
    let b_dir = field(&b_said, "dir").unwrap();
    let b_pid = field(&b_said, "pid").unwrap();
    assert_eq!(field(&b_said, "uid").unwrap(), uid_b.to_string());

    // The per-job directory (builds/<short>/<slot>) is B's, 0700; so are
    // its build dir and the files of its tmp dir.
    let builds = setup.builds_dir();
    let slot_dir = Path::new(&b_dir)
        .ancestors()
        .find(|p| p.parent().and_then(Path::parent) == Some(builds.as_path()))
        .unwrap_or_else(|| panic!("{b_dir} is not below {}", builds.display()));
    for d in [slot_dir.to_path_buf(), b_dir.clone().into()] {
        let m = std::fs::metadata(&d).unwrap();
        assert_eq!(m.uid(), uid_b, "{}", d.display());
        assert_eq!(m.permissions().mode() & 0o777, 0o700, "{}", d.display());
    }
    let tmp = format!("{b_dir}.tmp");
    let scripts: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(!scripts.is_empty(), "no script in {tmp}");
    for f in scripts {
        let m = f.metadata().unwrap();
        assert_eq!(m.uid(), uid_b, "{:?}", f.path());
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{:?}", f.path());
    }

    let config = setup.config.display().to_string();
    let checks = [
        format!("cat {config} && echo READ-CONFIG || echo no-config"),
        format!("cat {b_dir}/secret.txt && echo READ-B-DIR || echo no-b-dir"),
        format!("ls {b_dir} && echo LISTED-B-DIR || echo no-b-list"),
        format!("echo x > {b_dir}/planted && echo WROTE-B-DIR || echo no-b-write"),
        format!("tr '\\0' '\\n' < /proc/{b_pid}/environ && echo READ-B-ENV || echo no-b-environ"),
        format!(
            "tr '\\0' '\\n' < /proc/{runner_pid}/environ && echo READ-RUNNER-ENV || echo no-runner-environ"
        ),
        format!("kill -TERM {runner_pid} && echo SIGNALLED || echo no-kill"),
        WHO.to_string(),
    ];
    let checks: Vec<&str> = checks.iter().map(String::as_str).collect();
    let a = coord.enqueue(json!({"name": "prober", "tags": ["user-a"], "script": checks}));
    let j = coord.wait_finished(a, 60 * SECS);
    assert_eq!(j["state"], "success", "{j}");
    let t = trace_text(&coord, a);
    for (refused, got) in [
        ("no-config", "READ-CONFIG"),
        ("no-b-dir", "READ-B-DIR"),
        ("no-b-list", "LISTED-B-DIR"),
        ("no-b-write", "WROTE-B-DIR"),
        ("no-b-environ", "READ-B-ENV"),
        ("no-runner-environ", "READ-RUNNER-ENV"),
        ("no-kill", "SIGNALLED"),
    ] {
        assert!(
            t.contains(&format!("\n{refused}\n")) && !t.contains(&format!("\n{got}\n")),
            "{refused}: {t}"
        );
    }
    assert!(!t.contains("token = "), "the runner's config leaked: {t}");
    assert!(
        !t.contains("CI_JOB_TOKEN="),
        "job B's environment leaked: {t}"
    );
    let said = String::from_utf8_lossy(command_output(t.as_bytes(), WHO)).into_owned();
    let who = field(&said, "who").unwrap();
    let groups = field(&said, "groups").unwrap();
    assert_eq!(who, USER);
    assert!(groups.split(',').any(|g| g == GROUP), "{groups}");
    assert_eq!(
        nix::unistd::User::from_name(USER)
            .unwrap()
            .unwrap()
            .uid
            .as_raw(),
        uid_a
    );
    assert!(!Path::new(&format!("{b_dir}/planted")).exists());
    // The runner is alive and B still runs.
    let mut r = r;
    r.check_alive();
    assert_eq!(coord.job(b)["state"], "running");
    coord.cancel(b);
    coord.wait_finished(b, 30 * SECS);
}

/// A job owns its directories and can plant symlinks in them: the runner,
/// as root, writes the next step's script by replacing the link, never
/// through it (before, `after_script.sh -> victim` overwrote the victim).
#[test]
fn a_symlink_planted_for_the_next_script_is_not_written_through() {
    if job_users().is_none() {
        return;
    }
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "planted-link", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global(&format!("user = \"{USER}\""));
    traversable(&setup);
    let victim = setup.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let _r = setup.start();
    let plant = format!(
        "ln -sf {} \"$CI_PROJECT_DIR.tmp/after_script.sh\" && echo planted",
        victim.display()
    );
    let id = coord.enqueue(json!({
        "name": "planter",
        "script": [plant],
        "after_script": ["echo after-ran"],
    }));
    let j = coord.wait_finished(id, 30 * SECS);
    assert_eq!(j["state"], "success", "{j}");
    let t = trace_text(&coord, id);
    assert!(
        t.contains("\nplanted\n") && t.contains("\nafter-ran\n"),
        "{t}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_terminal_shell_runs_as_the_job_user_with_its_groups_and_home() {
    let Some((uid, _)) = job_users() else {
        return;
    };
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "terminal-as-user", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global(&format!("user = \"{USER}\""));
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    traversable(&setup);
    let _r = setup.start();
    let (id, _session) = crate::operators::running(&coord, job("term", &["sleep 60"]));
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    let out = t.run(
        "echo \"uid=$(id -u) groups=$(id -Gn | tr ' ' ,) home=$HOME user=$USER logname=$LOGNAME\"",
        10 * SECS,
    );
    assert_eq!(field(&out, "uid").unwrap(), uid.to_string(), "{out}");
    assert!(
        field(&out, "groups")
            .unwrap()
            .split(',')
            .any(|g| g == GROUP),
        "{out}"
    );
    assert_eq!(
        field(&out, "home").unwrap(),
        format!("/home/{USER}"),
        "{out}"
    );
    assert_eq!(field(&out, "user").unwrap(), USER, "{out}");
    assert_eq!(field(&out, "logname").unwrap(), USER, "{out}");
    let out = t.run(
        &format!(
            "cat {} >/dev/null && echo READ || echo refused",
            setup.config.display()
        ),
        10 * SECS,
    );
    assert!(out.ends_with("refused"), "{out}");
    coord.cancel(id);
    coord.wait_finished(id, 30 * SECS);
}

#[test]
fn run_user_overrides_the_file_and_the_runner_key_wins() {
    let Some((uid_a, uid_b)) = job_users() else {
        return;
    };
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "cli-user", &["--tag-list", "cli"]);
    setup.add_runner(&coord, "own-user", &["--tag-list", "own"]);
    setup.set_global("check_interval = 1");
    setup.set_global("concurrent = 2");
    // The file says root; `run --user` says termgate-job; the second
    // runner's own key says termgate-job2.
    setup.set_global("user = \"root\"");
    set_nth_runner(&setup, 1, &format!("user = \"{USER2}\""));
    traversable(&setup);
    let _r = RunnerProc::start_cmd(
        Command::new("sh")
            .args(["-c", &format!("exec \"$0\" \"$@\" --user {USER}")])
            .arg(runner_bin()),
        &setup.config,
        setup.dir.path(),
    );
    let cli =
        coord.enqueue(json!({"name": "cli", "tags": ["cli"], "script": ["echo \"uid=$(id -u)\""]}));
    let own =
        coord.enqueue(json!({"name": "own", "tags": ["own"], "script": ["echo \"uid=$(id -u)\""]}));
    for (id, uid) in [(cli, uid_a), (own, uid_b)] {
        let j = coord.wait_finished(id, 30 * SECS);
        assert_eq!(j["state"], "success", "{j}");
        let t = trace_text(&coord, id);
        assert!(t.contains(&format!("\nuid={uid}\n")), "{t}");
    }
}

/// `termgate-runner run` of `setup` through `cmd` (the binary, as some
/// user) must exit, failing: its stderr.
fn refused_start(setup: &RunnerSetup, cmd: &mut Command) -> String {
    let mut p = Proc::new(
        cmd.args(["run", "-c"])
            .arg(&setup.config)
            .arg("-d")
            .arg(setup.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        "runner",
    );
    let status = wait_until("the runner refuses to start", 20 * SECS, || {
        p.child.try_wait().unwrap()
    });
    assert!(!status.success());
    let mut err = String::new();
    p.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// Not root, the runner cannot run jobs as someone else: it says so
/// rather than run them as itself.
#[test]
fn a_runner_not_run_as_root_refuses_another_job_user() {
    use std::os::unix::process::CommandExt;
    if job_users().is_none() {
        return;
    }
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "not-root", &["--run-untagged"]);
    setup.set_global(&format!("user = \"{USER}\""));
    // The runner runs as termgate-job2, in a directory of its own.
    let me = nix::unistd::User::from_name(USER2).unwrap().unwrap();
    for p in [setup.dir.path(), setup.config.as_path()] {
        std::os::unix::fs::chown(p, Some(me.uid.as_raw()), Some(me.gid.as_raw())).unwrap();
    }
    traversable(&setup);
    let err = refused_start(
        &setup,
        Command::new(runner_bin())
            .uid(me.uid.as_raw())
            .gid(me.gid.as_raw()),
    );
    assert!(
        err.contains(&format!(
            "[[runners]] #1 (\"not-root\"): user = \"{USER}\": running jobs as another user \
             needs the runner to run as root (it runs as uid {})",
            me.uid
        )),
        "{err}"
    );
}

#[test]
fn an_unknown_user_stops_the_start_and_a_reload_keeps_the_previous_config() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "unknown-user", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.set_global("user = \"no-such-user-termgate\"");
    // (Before: it started, and ran jobs as root.)
    let err = refused_start(&setup, &mut Command::new(runner_bin()));
    assert!(
        err.contains(&format!(
            "{}: job user: [[runners]] #1 (\"unknown-user\"): user = \"no-such-user-termgate\": \
             user \"no-such-user-termgate\": no such user",
            setup.config.display()
        )),
        "{err}"
    );

    // Started without it, a reload to it is refused and jobs go on.
    setup.edit(|t| t.replace("user = \"no-such-user-termgate\"\n", ""));
    let r = setup.start();
    r.wait_config_loaded(1, 20 * SECS);
    setup.set_global("user = \"no-such-user-termgate\"");
    r.signal(nix::sys::signal::Signal::SIGHUP);
    let line = r.wait_log(termgate::logschema::msg::CONFIG_RELOAD_FAILED, 20 * SECS);
    assert!(
        line[termgate::logschema::ERROR]
            .as_str()
            .unwrap()
            .contains("no such user"),
        "{line}"
    );
    let id = coord.enqueue(job("still-runs", &["echo still-here"]));
    let j = coord.wait_finished(id, 30 * SECS);
    assert_eq!(j["state"], "success", "{j}");
}

/// Not a job user feature, but the same hygiene: the runner's own
/// environment (here a canary; in life its tokens, `CONFIG_FILE`, a
/// wrapper's secrets) never reaches a job, as root or not.
#[test]
fn the_runners_environment_stays_out_of_jobs_and_terminals() {
    let coord = Coord::start(None);
    let setup = RunnerSetup::register(&coord, "env-hygiene", &["--run-untagged"]);
    setup.set_global("check_interval = 1");
    setup.edit(|t| format!("{t}\n[session_server]\n  listen_address = \"127.0.0.1:0\"\n"));
    let _r = setup.start_with_env(&[
        ("TERMGATE_SECRET_CANARY", "canary-3c1f9e".to_string()),
        ("LC_TIME", "C.UTF-8".to_string()),
    ]);
    let (id, _session) = crate::operators::running(
        &coord,
        job("env", &["env | sort", "echo \"path=$PATH\"", "sleep 60"]),
    );
    let mut t = Term::workhorse(&coord.url, id, "terminal.gitlab.com").expect("terminal");
    let term_env = t.run("env | sort", 10 * SECS);
    let trace = wait_until("the job's env in its trace", 20 * SECS, || {
        let t = trace_text(&coord, id);
        t.contains("\npath=/").then_some(t)
    });
    for (what, text) in [("job", &trace), ("terminal", &term_env)] {
        assert!(!text.contains("TERMGATE_SECRET_CANARY"), "{what}: {text}");
        assert!(!text.contains("canary-3c1f9e"), "{what}: {text}");
        // What is passed: the locale, PATH, the identity, the job's own.
        assert!(text.contains("LC_TIME=C.UTF-8"), "{what}: {text}");
        assert!(
            text.contains("\nPATH=") || text.starts_with("PATH="),
            "{what}: {text}"
        );
        assert!(text.contains(&format!("CI_JOB_ID={id}")), "{what}: {text}");
        assert!(text.contains("HOME="), "{what}: {text}");
    }
    coord.cancel(id);
    coord.wait_finished(id, 30 * SECS);
}
