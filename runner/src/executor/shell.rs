//! The shell executor: runs steps with `bash` (or `sh`) on the host, in a
//! per-job build directory, each step in its own process group so cancel and
//! timeout kill everything the script started. Its web terminal is a shell
//! on a PTY: [`pty`].
//!
//! With a job user (`user`, `run --user`, `[[runners]] user`) steps and
//! terminals run with that user's uid, gid and groups, in a per-job
//! directory only it can enter ([`private_fs`]), with an environment that
//! keeps the runner's own out ([`base_env`]).

pub mod base_env;
pub mod private_fs;
pub mod pty;

pub use super::script::{render_script, sh_quote};

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use self::private_fs::{Dir, Owner};
use self::pty::PtyTerminalFactory;
use super::terminal::TerminalFactory;
use super::{ExecError, Executor, JobContext, StepResult, StepScript};
use crate::config::RunnerConfig;
use crate::job_user::JobUser;
use termgate::api::failure_reason;

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
    /// `tmp_dir`, opened: scripts are written through it ([`private_fs`]).
    tmp: Option<Arc<Dir>>,
    /// The job user, when it is not the runner's own.
    user: Option<JobUser>,
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
            tmp: None,
            user: None,
            env: Vec::new(),
        }
    }

    /// Who owns the job's directories and files.
    fn owner(&self) -> Owner {
        self.user.as_ref().map(|u| (u.uid, u.gid))
    }

    pub fn shell(&self) -> &str {
        &self.shell
    }

    /// The job's whole environment: the base ([`base_env`]), then runner
    /// `environment`, predefined and job variables (file variables point at
    /// files in the tmp dir).
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
        self.user = match ctx.runner.user.as_deref() {
            Some(name) => {
                let u = crate::job_user::lookup(name).map_err(|e| ExecError {
                    reason: failure_reason::RUNNER_CONFIGURATION_ERROR,
                    message: format!("job user: {e}"),
                })?;
                u.is_switch().then_some(u)
            }
            None => None,
        };
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
        let runner_dir = self.builds_dir.join(&ctx.runner_short);
        let tmp_rel = PathBuf::from(format!("{}.tmp", project.display()));
        let (build, tmp) = make_job_dirs(
            runner_dir,
            ctx.slot.to_string(),
            project,
            tmp_rel,
            self.owner(),
        )
        .await?;
        if let Some(u) = &self.user {
            if let Some(blocked) = private_fs::unreachable_for(build.path(), u.uid, &u.groups) {
                return Err(ExecError::system(format!(
                    "job user {:?} cannot reach its build directory {}: {blocked} is not \
                     searchable by it (chmod o+x, or set builds_dir elsewhere)",
                    u.name,
                    build.path().display()
                )));
            }
        }
        let build_dir = build.path().to_path_buf();
        let tmp_dir = tmp.path().to_path_buf();
        ctx.trace.green("Preparing the \"shell\" executor");
        ctx.trace
            .line(&format!("Using Shell ({}) executor...", self.shell));
        if let Some(u) = &self.user {
            ctx.trace.line(&format!("Running as user {}", u.name));
        }
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
        let tmp = Arc::new(tmp);
        for (path, contents) in &env.files {
            let name = Path::new(path).file_name().unwrap_or(OsStr::new(path));
            write_private(&tmp, name, contents.as_bytes(), self.owner())
                .await
                .map_err(|e| ExecError::system(format!("writing file variable {path}: {e}")))?;
        }
        let shell_path = which(&self.shell)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.shell.clone());
        let mut vars =
            base_env::base_environment(std::env::vars_os(), self.user.as_ref(), &shell_path);
        vars.extend(env.vars);
        self.env = vars;
        self.build_dir = Some(build_dir);
        self.tmp_dir = Some(tmp_dir);
        self.tmp = Some(tmp);
        Ok(())
    }

    async fn run_step(
        &self,
        ctx: &JobContext,
        step: &StepScript,
        cancel: &CancellationToken,
    ) -> Result<StepResult, ExecError> {
        let (Some(build_dir), Some(tmp_dir), Some(tmp)) =
            (&self.build_dir, &self.tmp_dir, &self.tmp)
        else {
            return Err(ExecError::system("shell executor used before prepare"));
        };
        let script_name = format!("{}.sh", step.name.replace('/', "_"));
        let script_path = tmp_dir.join(&script_name);
        let script = render_script(&self.shell, build_dir, &step.lines);
        write_private(
            tmp,
            OsStr::new(&script_name),
            script.as_bytes(),
            self.owner(),
        )
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
            if let Some(u) = &self.user {
                u.drop_privileges_in_child(&mut cmd);
            }
            cmd.arg(&script_path)
                .current_dir(build_dir)
                .env_clear()
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
        self.tmp = None;
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
        Some(Arc::new(
            PtyTerminalFactory::new(self.shell.clone(), build_dir.clone(), self.env.clone())
                .with_clean_env()
                .run_as(self.user.clone()),
        ))
    }
}

/// The per-job directory `runner_dir/slot` (private to the job user) and
/// below it the build and tmp directories ([`private_fs`]), off the runtime.
async fn make_job_dirs(
    runner_dir: PathBuf,
    slot: String,
    build_rel: PathBuf,
    tmp_rel: PathBuf,
    owner: Owner,
) -> Result<(Dir, Dir), ExecError> {
    let what = runner_dir.join(&slot).join(&build_rel);
    let made = tokio::task::spawn_blocking(move || {
        let job = private_fs::job_dir(&runner_dir, &slot, owner)?;
        Ok::<_, std::io::Error>((job.subdir(&build_rel, owner)?, job.subdir(&tmp_rel, owner)?))
    })
    .await
    .map_err(|e| ExecError::system(format!("creating {}: {e}", what.display())))?;
    made.map_err(|e| ExecError::system(format!("creating {}: {e}", what.display())))
}

/// Write a job's file into its tmp dir ([`Dir::write_file`]), off the runtime.
async fn write_private(
    dir: &Arc<Dir>,
    name: &OsStr,
    contents: &[u8],
    owner: Owner,
) -> std::io::Result<()> {
    let (dir, name, contents) = (dir.clone(), name.to_owned(), contents.to_vec());
    tokio::task::spawn_blocking(move || dir.write_file(&name, &contents, owner))
        .await
        .map_err(std::io::Error::other)?
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
