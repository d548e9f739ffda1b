//! A yardstick between the bare PTY and the runner: a second process that
//! relays plain TCP to a bash PTY (`tokio::io::copy_bidirectional`), with
//! no TLS, no WebSocket and no session server. Its echo costs the extra
//! process hop and the loopback socket, and nothing of what the runner adds
//! on top, so `--relay` splits the runner's extra cost in two. Each
//! direction is a plain `tokio::io::copy` (8 KiB buffer).
//!
//! The relay is this binary started again with `--relay-serve DIR`: it
//! prints its port on a line, then serves until its stdin closes (the bench
//! exiting, however it exits).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use anyhow::Context as _;
use termgate_runner::executor::shell::pty::{self, PtyCommand};
use termgate_runner::executor::terminal::{TermSize, TerminalControl as _};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// The relay process, killed when dropped.
pub struct Relay {
    child: Child,
    pub addr: SocketAddr,
}

impl Relay {
    pub async fn start(cwd: &Path) -> anyhow::Result<Relay> {
        let exe = std::env::current_exe().context("locating termgate-bench")?;
        let mut child = Command::new(exe)
            .arg("--relay-serve")
            .arg(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the relay")?;
        let out = child.stdout.take().context("relay stdout")?;
        let mut line = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            BufReader::new(out).read_line(&mut line),
        )
        .await
        .context("the relay did not print its port within 10 s")??;
        let port: u16 = line
            .trim()
            .parse()
            .with_context(|| format!("relay port line {line:?}"))?;
        Ok(Relay {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }
}

impl Relay {
    /// Kill the relay and reap it (its shells get SIGHUP as their PTYs
    /// close), before the runner's stack looks for leftover processes.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `--relay-serve DIR`: the relay process itself.
pub fn serve(cwd: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("relay listen")?;
        println!("{}", listener.local_addr()?.port());
        // Serve until the bench goes away (its end of our stdin closes).
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        let parent_gone = async move { while stdin.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
        tokio::select! {
            _ = parent_gone => Ok(()),
            r = accept_loop(listener, cwd) => r,
        }
    })
}

async fn accept_loop(listener: TcpListener, cwd: &Path) -> anyhow::Result<()> {
    loop {
        // A failed accept (out of descriptors, a connection reset before it
        // was taken) costs that connection, not the relay.
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                eprintln!("relay: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let cwd = cwd.to_path_buf();
        tokio::spawn(async move {
            if let Err(e) = relay_one(tcp, &cwd).await {
                eprintln!("relay: {e:#}");
            }
        });
    }
}

async fn relay_one(mut tcp: TcpStream, cwd: &Path) -> anyhow::Result<()> {
    tcp.set_nodelay(true)?;
    let cmd = PtyCommand::shell("bash", cwd, &[], TermSize::default());
    let (mut reader, mut writer, control) = pty::spawn(cmd).context("spawning bash")?.split();
    let (mut from_client, mut to_client) = tcp.split();
    // Either direction ending (the client leaving, the shell exiting) ends both.
    tokio::select! {
        _ = tokio::io::copy(&mut from_client, &mut writer) => {}
        _ = tokio::io::copy(&mut reader, &mut to_client) => {}
    }
    control.close().await;
    Ok(())
}
