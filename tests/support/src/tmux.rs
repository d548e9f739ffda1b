//! A tmux session running one command, for tests that drive a full-screen
//! program as a user would (`send-keys`, `capture-pane`).

use std::process::Command;
use std::time::Duration;

use crate::wait_until;

/// One tmux session (120×35), killed when dropped.
pub struct Tmux {
    pub name: String,
}

impl Tmux {
    /// Whether tmux is here; in CI (`CI` set) it must be
    /// (scripts/setup-test-deps.sh installs it).
    pub fn available() -> bool {
        let ok = Command::new("tmux").arg("-V").output().is_ok();
        assert!(
            ok || std::env::var("CI").is_err(),
            "tmux is required in CI (scripts/setup-test-deps.sh installs it)"
        );
        ok
    }

    /// Starts `cmd` in a new detached session named `NAME-PID`.
    pub fn start(name: &str, cmd: &str) -> Tmux {
        let name = format!("{name}-{}", std::process::id());
        let out = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "35",
                cmd,
            ])
            .output()
            .expect("tmux (scripts/setup-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { name }
    }

    /// Sends `keys`: as text when `literal`, else as tmux key names (`Enter`, `C-]`).
    pub fn keys(&self, literal: bool, keys: &str) {
        let mut cmd = Command::new("tmux");
        cmd.args(["send-keys", "-t", &self.name]);
        if literal {
            cmd.arg("-l");
        }
        assert!(cmd.arg(keys).output().expect("tmux").status.success());
    }

    /// Types `text` literally, then Enter.
    pub fn line(&self, text: &str) {
        self.keys(true, text);
        self.keys(false, "Enter");
    }

    /// The screen, wrapped lines joined.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-t", &self.name])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits up to `timeout` for a screen `pred` accepts; on a timeout
    /// panics with the last screen.
    pub fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, timeout, || {
                last = self.screen();
                pred(&last).then(|| last.clone())
            })
        }));
        match found {
            Ok(s) => s,
            Err(_) => panic!("timed out waiting for {what}; screen:\n{last}"),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}
