//! Interactive terminals: `docker exec` with a TTY into the job container,
//! running `bash` when the image has it, else `sh`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::exec::{ResizeExecOptions, StartExecResults};
use bollard::Docker;
use futures::TryStreamExt;
use tokio::sync::Mutex;

use super::exec::{self, ExecSpec};
use crate::executor::terminal::{
    OpenError, TermSize, TerminalControl, TerminalFactory, TerminalHandle,
};
use termgate::logschema::{self as schema, msg};

/// How long `open` waits for the build container to run (upstream: 15 s).
pub const CONTAINER_WAIT: Duration = Duration::from_secs(15);

/// Why a Docker terminal could not be opened (upstream's wording).
#[derive(Debug, thiserror::Error)]
pub enum DockerTerminalError {
    #[error("timeout for waiting for build container")]
    ContainerNotRunning,
    #[error("failed to create exec for build container")]
    CreateExec(#[source] bollard::errors::Error),
    #[error("failed to attach tty to build container")]
    AttachTty,
}

impl From<DockerTerminalError> for OpenError {
    fn from(e: DockerTerminalError) -> Self {
        OpenError::new(e)
    }
}

/// The shell-detect script: bash if present, else sh. It records its pid
/// so `close` can end it and everything it started.
fn shell_script(pidfile: &str) -> String {
    format!(
        "echo $$ > {pf}; if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
        pf = crate::executor::script::sh_quote(pidfile)
    )
}

pub struct DockerTerminalFactory {
    pub docker: Docker,
    pub container: String,
    pub working_dir: String,
    pub env: Vec<String>,
    pub user: Option<String>,
    /// Where terminals record their pids (the job's tmp dir).
    pub tmp_dir: String,
}

impl DockerTerminalFactory {
    async fn wait_running(&self) -> Result<(), DockerTerminalError> {
        let deadline = tokio::time::Instant::now() + CONTAINER_WAIT;
        loop {
            let running = self
                .docker
                .inspect_container(
                    &self.container,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|s| s.running)
                .unwrap_or(false);
            if running {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DockerTerminalError::ContainerNotRunning);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[async_trait]
impl TerminalFactory for DockerTerminalFactory {
    async fn open(&self, size: TermSize) -> Result<TerminalHandle, OpenError> {
        self.wait_running().await?;
        let pidfile = format!(
            "{}/.terminal-{}.pid",
            self.tmp_dir,
            uuid::Uuid::new_v4().simple()
        );
        let mut env = self.env.clone();
        env.push("TERM=xterm".into());
        let spec = ExecSpec {
            cmd: vec!["sh".into(), "-c".into(), shell_script(&pidfile)],
            env,
            working_dir: Some(self.working_dir.clone()),
            user: self.user.clone(),
        };
        let (id, started) = exec::start_tty(&self.docker, &self.container, &spec)
            .await
            .map_err(|e| {
                tracing::warn!({ schema::ERROR } = %e, "{}", msg::DOCKER_TERMINAL_EXEC_FAILED);
                DockerTerminalError::CreateExec(e)
            })?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(DockerTerminalError::AttachTty.into());
        };
        let control = DockerTerminalControl {
            docker: self.docker.clone(),
            container: self.container.clone(),
            exec_id: id,
            pidfile,
            closed: Arc::new(Mutex::new(false)),
        };
        // The engine sizes the TTY once the process started.
        let _ = control.resize(size).await;
        let output = output
            .map_ok(|chunk| chunk.into_bytes())
            .map_err(io::Error::other);
        Ok(TerminalHandle {
            output: Box::pin(tokio_util::io::StreamReader::new(output)),
            input,
            control: Box::new(control),
        })
    }
}

struct DockerTerminalControl {
    docker: Docker,
    container: String,
    exec_id: String,
    pidfile: String,
    closed: Arc<Mutex<bool>>,
}

#[async_trait]
impl TerminalControl for DockerTerminalControl {
    async fn resize(&self, size: TermSize) -> io::Result<()> {
        self.docker
            .resize_exec(
                &self.exec_id,
                ResizeExecOptions {
                    height: size.rows,
                    width: size.cols,
                },
            )
            .await
            .map_err(io::Error::other)
    }

    async fn close(&self) {
        let mut closed = self.closed.lock().await;
        if *closed {
            return;
        }
        *closed = true;
        exec::signal_group(&self.docker, &self.container, &self.pidfile, "HUP").await;
        exec::signal_group(&self.docker, &self.container, &self.pidfile, "KILL").await;
    }
}
