//! Commands inside the job container: steps (output streamed to the trace,
//! exit code from `inspect_exec`, timeout and cancel kill the step's process
//! group) and small helper commands.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures::StreamExt;

use super::container::engine_message;
use crate::executor::{ExecError, StepResult};
use crate::trace::JobTrace;

/// Grace between SIGTERM and SIGKILL of a step's process group.
const KILL_GRACE: Duration = Duration::from_millis(1000);
/// How long to keep reading output after the step was killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

fn lost(what: &str, e: &bollard::errors::Error) -> ExecError {
    ExecError::system(format!("{what}: {} (Docker engine)", engine_message(e)))
}

async fn start(
    docker: &Docker,
    container: &str,
    spec: &ExecSpec,
    tty: bool,
    stdin: bool,
) -> Result<(String, StartExecResults), bollard::errors::Error> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                env: Some(spec.env.clone()),
                cmd: Some(spec.cmd.clone()),
                working_dir: spec.working_dir.clone(),
                user: spec.user.clone(),
                ..Default::default()
            },
        )
        .await?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty,
                output_capacity: Some(64 * 1024),
            }),
        )
        .await?;
    Ok((created.id, started))
}

pub(super) async fn start_tty(
    docker: &Docker,
    container: &str,
    spec: &ExecSpec,
) -> Result<(String, StartExecResults), bollard::errors::Error> {
    start(docker, container, spec, true, true).await
}

/// The exit code of a finished exec; `None` while it runs.
async fn exit_code(docker: &Docker, exec_id: &str) -> Result<Option<i64>, ExecError> {
    let info = docker
        .inspect_exec(exec_id)
        .await
        .map_err(|e| lost("inspecting the step", &e))?;
    if info.running == Some(true) {
        return Ok(None);
    }
    Ok(info.exit_code)
}

/// Run a helper command; its combined output and exit code.
pub async fn capture(
    docker: &Docker,
    container: &str,
    spec: &ExecSpec,
) -> Result<(i64, String), ExecError> {
    let (id, started) = start(docker, container, spec, false, false)
        .await
        .map_err(|e| lost("running a command in the build container", &e))?;
    let mut out = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(c) => out.extend_from_slice(&c.into_bytes()),
                Err(e) => return Err(lost("reading command output", &e)),
            }
        }
    }
    let code = wait_exit(docker, &id).await?;
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

/// The exit code once the stream ended (the engine may need a moment to
/// record it).
async fn wait_exit(docker: &Docker, exec_id: &str) -> Result<i64, ExecError> {
    for _ in 0..50 {
        if let Some(code) = exit_code(docker, exec_id).await? {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(ExecError::system(
        "the step's output ended but the Docker engine reports no exit code (did the engine restart?)",
    ))
}

/// Signal the process group whose leader wrote its pid to `pidfile`.
pub async fn signal_group(docker: &Docker, container: &str, pidfile: &str, signal: &str) {
    let script = format!(
        "p=$(cat {pf} 2>/dev/null) && [ -n \"$p\" ] && kill -s {signal} -$p 2>/dev/null; exit 0",
        pf = crate::executor::script::sh_quote(pidfile)
    );
    let spec = ExecSpec {
        cmd: vec!["sh".into(), "-c".into(), script],
        env: Vec::new(),
        working_dir: None,
        user: None,
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), capture(docker, container, &spec)).await;
}

/// Run one step: `spec.cmd` must write its pid (= its process group, as
/// every exec is a session leader) to `pidfile` first.
pub async fn run_step(
    docker: &Docker,
    container: &str,
    spec: &ExecSpec,
    pidfile: &str,
    trace: &JobTrace,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<StepResult, ExecError> {
    let (id, started) = start(docker, container, spec, false, false)
        .await
        .map_err(|e| lost("starting the step in the build container", &e))?;
    let StartExecResults::Attached { mut output, .. } = started else {
        return Err(ExecError::system(
            "the Docker engine did not attach the step",
        ));
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut stopped: Option<StepResult> = None;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(c)) => trace.write(&c.into_bytes()),
                Some(Err(e)) => {
                    trace.flush_masker();
                    if stopped.is_some() {
                        break;
                    }
                    return Err(lost("reading the step's output", &e));
                }
                None => break,
            },
            _ = &mut deadline, if stopped.is_none() => {
                stopped = Some(StepResult::TimedOut);
                stop(docker, container, pidfile).await;
                break;
            }
            _ = cancel.cancelled(), if stopped.is_none() => {
                stopped = Some(StepResult::Cancelled);
                stop(docker, container, pidfile).await;
                break;
            }
        }
    }
    if stopped.is_some() {
        // What the killed step printed last.
        let drain = tokio::time::sleep(DRAIN_TIMEOUT);
        tokio::pin!(drain);
        loop {
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(c)) => trace.write(&c.into_bytes()),
                    _ => break,
                },
                _ = &mut drain => break,
            }
        }
    }
    trace.flush_masker();
    if let Some(r) = stopped {
        return Ok(r);
    }
    let code = wait_exit(docker, &id).await?;
    Ok(StepResult::Exited(i32::try_from(code).unwrap_or(1)))
}

/// SIGTERM the step's group, SIGKILL it after a grace period.
async fn stop(docker: &Docker, container: &str, pidfile: &str) {
    signal_group(docker, container, pidfile, "TERM").await;
    tokio::time::sleep(KILL_GRACE).await;
    signal_group(docker, container, pidfile, "KILL").await;
}
