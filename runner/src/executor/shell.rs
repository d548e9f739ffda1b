//! The shell executor: runs steps with `bash` (or `sh`) on the host, in a
//! per-job build directory, each step in its own process group so cancel and
//! timeout kill everything the script started. Its web terminal is a shell
//! on a PTY: [`pty`].

pub mod pty;

pub use super::script::{render_script, sh_quote};

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use self::pty::PtyTerminalFactory;
use super::terminal::TerminalFactory;
use super::{ExecError, Executor, JobContext, StepResult, StepScript};
use crate::config::RunnerConfig;

/// Grace between SIGTERM and SIGKILL when stopping a step.
const KILL_GRACE: Duration = Duration::from_millis(1000);
/// How long to keep reading output after the step's process exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct ShellExecutor {
    shell: String,
    builds_dir: PathBuf,
    build_dir: Option<PathBuf>,
    tmp_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl ShellExecutor {
    pub fn new(runner: &RunnerConfig) -> Self {
        let builds_dir = runner.builds_dir.clone().unwrap_or_else(|| {
            std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("/tmp"))
                .join("builds")
        });
        ShellExecutor {
            shell: runner.shell.clone().unwrap_or_else(detect_shell),
            builds_dir,
            build_dir: None,
            tmp_dir: None,
            env: Vec::new(),
        }
    }

    pub fn shell(&self) -> &str {
        &self.shell
    }

    /// The job's environment: runner `environment`, predefined and job
    /// variables (file variables point at files in the tmp dir).
    pub fn environment(&self) -> &[(String, String)] {
        &self.env
    }
}

/// `bash` when present, else `sh`.
pub fn detect_shell() -> String {
    if which("bash").is_some() {
        "bash".to_string()
    } else {
        "sh".to_string()
    }
}

pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

#[async_trait]
impl Executor for ShellExecutor {
    fn name(&self) -> &'static str {
        "shell"
    }

    async fn prepare(&mut self, ctx: &JobContext) -> Result<(), ExecError> {
        let job = &ctx.job;
        let project = if job.job_info.project_full_path.is_empty() {
            format!("project-{}", job.job_info.project_id)
        } else {
            job.job_info.project_full_path.clone()
        };
        // Never let a project path escape the builds dir.
        let project: PathBuf = project
            .split('/')
            .filter(|c| !c.is_empty() && *c != "." && *c != "..")
            .collect();
        let build_dir = self
            .builds_dir
            .join(&ctx.runner_short)
            .join(ctx.slot.to_string())
            .join(project);
        let tmp_dir = PathBuf::from(format!("{}.tmp", build_dir.display()));
        for d in [&build_dir, &tmp_dir] {
            tokio::fs::create_dir_all(d)
                .await
                .map_err(|e| ExecError::system(format!("creating {}: {e}", d.display())))?;
        }
        ctx.trace.green("Preparing the \"shell\" executor");
        ctx.trace
            .line(&format!("Using Shell ({}) executor...", self.shell));
        ctx.trace.green("Preparing environment");
        ctx.trace.line(&format!(
            "Running on {}...",
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into())
        ));
        ctx.trace.green("Getting source from Git repository");
        ctx.trace
            .line("Skipping Git repository setup (termgate does not fetch sources)");
        ctx.trace
            .line(&format!("Build directory: {}", build_dir.display()));

        let env = super::job_environment(
            ctx,
            &build_dir.to_string_lossy(),
            &self.builds_dir.to_string_lossy(),
            &tmp_dir.to_string_lossy(),
            &[],
        );
        for (path, contents) in &env.files {
            tokio::fs::write(path, contents.as_bytes())
                .await
                .map_err(|e| ExecError::system(format!("writing file variable {path}: {e}")))?;
        }
        let env = env.vars;
        self.env = env;
        self.build_dir = Some(build_dir);
        self.tmp_dir = Some(tmp_dir);
        Ok(())
    }

    async fn run_step(
        &self,
        ctx: &JobContext,
        step: &StepScript,
        cancel: &CancellationToken,
    ) -> Result<StepResult, ExecError> {
        let (Some(build_dir), Some(tmp_dir)) = (&self.build_dir, &self.tmp_dir) else {
            return Err(ExecError::system("shell executor used before prepare"));
        };
        let script_path = tmp_dir.join(format!("{}.sh", step.name));
        let script = render_script(&self.shell, build_dir, &step.lines);
        tokio::fs::write(&script_path, script)
            .await
            .map_err(|e| ExecError::system(format!("writing script: {e}")))?;

        let (read_fd, write_fd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| ExecError::system(format!("creating output pipe: {e}")))?;
        let mut child = {
            let mut cmd = tokio::process::Command::new(&self.shell);
            crate::rlimit::restore_in_child(&mut cmd);
            if self.shell == "bash" {
                cmd.arg("--noprofile").arg("--norc");
            }
            cmd.arg(&script_path)
                .current_dir(build_dir)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::from(dup(&write_fd)?))
                .stderr(Stdio::from(write_fd))
                .process_group(0)
                .kill_on_drop(true);
            cmd.spawn()
                .map_err(|e| ExecError::system(format!("starting {}: {e}", self.shell)))?
            // `cmd` (and the pipe's write ends) dropped here.
        };
        let pgid = child.id().map(|p| Pid::from_raw(p as i32));
        // Whatever happens to this task (even the runtime going away after
        // a shutdown timeout), the step's whole process group goes with it.
        let _group = GroupGuard(pgid);
        let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(read_fd)
            .map_err(|e| ExecError::system(format!("output pipe: {e}")))?;

        let trace = ctx.trace.clone();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = tokio::time::sleep(step.timeout);
        tokio::pin!(deadline);
        let mut outcome: Option<StepResult> = None;
        let mut eof = false;
        while outcome.is_none() {
            tokio::select! {
                r = reader.read(&mut buf), if !eof => match r {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => trace.write(&buf[..n]),
                },
                status = child.wait() => {
                    outcome = Some(match status {
                        Ok(s) => StepResult::Exited(exit_code(s)),
                        Err(e) => return Err(ExecError::system(format!("waiting for {}: {e}", self.shell))),
                    });
                }
                _ = &mut deadline => {
                    stop_group(pgid, &mut child).await;
                    outcome = Some(StepResult::TimedOut);
                }
                _ = cancel.cancelled() => {
                    stop_group(pgid, &mut child).await;
                    outcome = Some(StepResult::Cancelled);
                }
            }
        }
        // Whatever the script left running in its group goes too.
        if let Some(pg) = pgid {
            let _ = killpg(pg, Signal::SIGKILL);
        }
        let drain = tokio::time::sleep(DRAIN_TIMEOUT);
        tokio::pin!(drain);
        while !eof {
            tokio::select! {
                r = reader.read(&mut buf) => match r {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => trace.write(&buf[..n]),
                },
                _ = &mut drain => break,
            }
        }
        trace.flush_masker();
        Ok(outcome.unwrap_or(StepResult::Exited(1)))
    }

    async fn cleanup(&mut self, _ctx: &JobContext) {
        if let Some(tmp) = self.tmp_dir.take() {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
        }
    }

    fn build_dir(&self) -> Option<PathBuf> {
        self.build_dir.clone()
    }

    /// A fresh login-less shell on a PTY in the build directory with the
    /// job's environment. Upstream offers none for PowerShell.
    fn terminal(&self) -> Option<Arc<dyn TerminalFactory>> {
        let build_dir = self.build_dir.as_ref()?;
        if !matches!(self.shell.as_str(), "bash" | "sh") {
            return None;
        }
        Some(Arc::new(PtyTerminalFactory::new(
            self.shell.clone(),
            build_dir.clone(),
            self.env.clone(),
        )))
    }
}

/// SIGKILLs a process group when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, ExecError> {
    fd.try_clone()
        .map_err(|e| ExecError::system(format!("duplicating output pipe: {e}")))
}

fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// SIGTERM the process group, SIGKILL it after a grace period.
async fn stop_group(pgid: Option<Pid>, child: &mut tokio::process::Child) {
    let Some(pg) = pgid else {
        let _ = child.kill().await;
        return;
    };
    let _ = killpg(pg, Signal::SIGTERM);
    if tokio::time::timeout(KILL_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(pg, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    let _ = killpg(pg, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn job_ctx(builds: &Path, shell: &str) -> (ShellExecutor, JobContext) {
        use termgate::api::{JobResponse, JobVariable};
        let runner = RunnerConfig {
            builds_dir: Some(builds.to_path_buf()),
            shell: Some(shell.to_string()),
            environment: vec!["FROM_RUNNER=yes".into()],
            ..RunnerConfig::default()
        };
        let mut job = JobResponse {
            id: 4242,
            ..JobResponse::default()
        };
        job.job_info.project_full_path = "group/project".into();
        job.variables.push(JobVariable {
            key: "CI_JOB_ID".into(),
            value: "4242".into(),
            ..JobVariable::default()
        });
        let ctx = JobContext {
            job: Arc::new(job),
            runner: Arc::new(runner.clone()),
            runner_short: "abc123".into(),
            slot: 0,
            trace: crate::trace::JobTrace::new(Vec::new(), 1 << 20),
            stage: Default::default(),
        };
        (ShellExecutor::new(&runner), ctx)
    }

    #[tokio::test]
    async fn terminal_opens_a_shell_in_the_build_dir_with_the_job_env() {
        use crate::executor::terminal::TermSize;
        use tokio::io::AsyncWriteExt;

        let builds = tempfile::tempdir().unwrap();
        let builds = builds.path().canonicalize().unwrap();
        let (mut exec, ctx) = job_ctx(&builds, &detect_shell());
        assert!(exec.terminal().is_none(), "no terminal before prepare");
        exec.prepare(&ctx).await.unwrap();
        let build_dir = exec.build_dir().unwrap();
        let factory = exec.terminal().unwrap();

        let mut h = factory.open(TermSize::default()).await.unwrap();
        h.input
            .write_all(b"echo \"id=$CI_JOB_ID r=$FROM_RUNNER\"; pwd; echo END-$((6*7))\n")
            .await
            .unwrap();
        let mut acc = Vec::new();
        let mut buf = [0u8; 4096];
        let read_all = async {
            while !String::from_utf8_lossy(&acc).contains("END-42") {
                let n = h.output.read(&mut buf).await.unwrap();
                assert!(n > 0, "EOF: {}", String::from_utf8_lossy(&acc));
                acc.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read_all)
            .await
            .unwrap();
        let out = String::from_utf8_lossy(&acc);
        assert!(out.contains("id=4242 r=yes"), "{out}");
        assert!(
            out.contains(&format!("{}\r\n", build_dir.display())),
            "{out}"
        );
        h.control.close().await;
        exec.cleanup(&ctx).await;
    }

    #[tokio::test]
    async fn no_terminal_for_powershell() {
        let builds = tempfile::tempdir().unwrap();
        let (mut exec, ctx) = job_ctx(builds.path(), "pwsh");
        exec.prepare(&ctx).await.unwrap();
        assert!(exec.terminal().is_none());
    }
}
