//! `termgate terminal URL`: a terminal into a job through GitLab
//! Workhorse's `terminal.ws` (or the local coordinator's
//! `ws://HOST:PORT/admin/jobs/ID/terminal.ws`), as a GitLab user's browser
//! connects: the user's seat, keys typed into the job's terminal.
//!
//! Workhorse speaks `terminal.gitlab.com` (binary frames of raw bytes), so
//! the socket is translated to and from the `v4.channel.k8s.io` framing of
//! [`crate::attach::bridge`], which then gives it what `termgate attach`
//! has: raw mode, the detach key, the close reason on exit. That
//! subprotocol carries no sizes (neither does GitLab's browser terminal
//! through Workhorse), so resizes are not sent.

use anyhow::{bail, Context as _, Result};
use futures::{SinkExt as _, StreamExt as _};
use termgate::operator::Mode;
use termgate::terminal::{channel, TERMINAL_GITLAB};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::attach::{bridge, term, BridgeOptions};
use crate::cli::TerminalArgs;

/// Giving up on a Workhorse that does not complete the handshake.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A frame from Workhorse (`terminal.gitlab.com`) in the bridge's framing:
/// data on the stdout channel; control frames unchanged.
pub fn from_workhorse(m: Message) -> Message {
    let data = match m {
        Message::Binary(b) => b.to_vec(),
        // terminal.gitlab.com peers may send text frames; they are bytes too.
        Message::Text(t) => t.as_bytes().to_vec(),
        other => return other,
    };
    let mut p = Vec::with_capacity(data.len() + 1);
    p.push(channel::STDOUT);
    p.extend_from_slice(&data);
    Message::Binary(p.into())
}

/// A frame of the bridge (`v4.channel.k8s.io`) for Workhorse: stdin as raw
/// bytes; resizes (and other channels) dropped, `terminal.gitlab.com` has
/// no way to say them; control frames unchanged.
pub fn to_workhorse(m: Message) -> Option<Message> {
    match m {
        Message::Binary(b) => match b.split_first() {
            Some((&channel::STDIN, data)) => Some(Message::Binary(data.to_vec().into())),
            _ => None,
        },
        Message::Text(_) => None,
        other => Some(other),
    }
}

/// The request: the URL with `Sec-WebSocket-Protocol: terminal.gitlab.com`.
fn request(url: &str) -> Result<tungstenite::handshake::client::Request> {
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        bail!(
            "{url:?} is not a ws:// or wss:// URL (e.g. ws://127.0.0.1:8080/admin/jobs/4/terminal.ws)"
        );
    }
    let mut req = url
        .into_client_request()
        .with_context(|| format!("invalid URL {url:?}"))?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(TERMINAL_GITLAB),
    );
    Ok(req)
}

/// Run the command: connect, bridge this terminal to the job's until the
/// session closes or the detach key, then print how it ended.
pub fn run(args: TerminalArgs) -> Result<()> {
    let req = request(&args.url)?;
    let detach = args.detach_key.unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let ended = rt.block_on(async {
        let connect = tokio_tungstenite::connect_async(req);
        let ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Err(_) => bail!("{}: no answer within {CONNECT_TIMEOUT:?}", args.url),
            Ok(Err(tungstenite::Error::Http(res))) => {
                let body = res.body().clone().unwrap_or_default();
                bail!(
                    "{}: {}{}",
                    args.url,
                    res.status(),
                    match String::from_utf8_lossy(&body).trim() {
                        "" => String::new(),
                        b => format!(": {b}"),
                    }
                )
            }
            Ok(Err(e)) => return Err(anyhow::Error::new(e).context(args.url.clone())),
            Ok(Ok((ws, _))) => ws,
        };
        tracing::info!(url = %args.url, "terminal connected");
        let socket = ws
            .with_flat_map(|m: Message| futures::stream::iter(to_workhorse(m).map(Ok)))
            .map(|r| r.map(from_workhorse).map_err(|e| e.to_string()));
        let terminal = term::is_terminal();
        let raw = match terminal {
            true => Some(term::RawGuard::enter().context("setting up the terminal")?),
            false => None,
        };
        let keys = term::keys(terminal).context("setting up the terminal")?;
        let opts = BridgeOptions {
            mode: Mode::Join,
            detach,
            banner: Some(format!(
                "[termgate] terminal {} — {detach} to detach",
                args.url
            )),
            size: None,
        };
        let mut out = tokio::io::stdout();
        let ended = bridge::run(
            Box::pin(socket),
            keys,
            futures::stream::empty(),
            &mut out,
            &opts,
        )
        .await;
        drop(raw);
        Ok(ended?)
    });
    // Do not wait for the keyboard reader or a stuck close.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let end = ended?;
    tracing::info!(url = %args.url, reason = %end.reason, "terminal closed");
    if term::is_terminal() {
        // The summary on a line of its own, not after the job's prompt.
        println!();
    }
    println!("{}", end.summary());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_translate_both_ways() {
        let out = from_workhorse(Message::Binary(b"hi\r\n".to_vec().into()));
        assert_eq!(out, Message::Binary(b"\x01hi\r\n".to_vec().into()));
        let out = from_workhorse(Message::Text("ok".into()));
        assert_eq!(out, Message::Binary(b"\x01ok".to_vec().into()));
        assert_eq!(
            from_workhorse(Message::Ping(vec![1].into())),
            Message::Ping(vec![1].into())
        );

        let key = termgate::terminal::k8s_stdin_frame(b"ls\r").payload;
        assert_eq!(
            to_workhorse(Message::Binary(key.into())),
            Some(Message::Binary(b"ls\r".to_vec().into()))
        );
        let resize = termgate::terminal::k8s_resize_frame(80, 24).payload;
        assert_eq!(to_workhorse(Message::Binary(resize.into())), None);
        assert!(matches!(
            to_workhorse(Message::Close(None)),
            Some(Message::Close(None))
        ));
    }

    #[test]
    fn only_websocket_urls() {
        let e = request("http://127.0.0.1:8080/admin/jobs/4/terminal.ws").unwrap_err();
        assert!(e.to_string().contains("not a ws://"), "{e}");
        let r = request("ws://127.0.0.1:8080/admin/jobs/4/terminal.ws").unwrap();
        assert_eq!(
            r.headers()["sec-websocket-protocol"],
            HeaderValue::from_static("terminal.gitlab.com")
        );
    }
}
