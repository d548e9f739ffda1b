//! The terminal: raw mode, alternate screen and mouse capture behind a
//! guard that restores them on drop and from a panic hook, and the one
//! event loop that feeds input, snapshots and a 1 s tick to the [`App`].

use std::io::{self, Stdout};
use std::mem::ManuallyDrop;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::app::{App, Outcome};
use crate::attach::{AttachRequest, Attacher};
use crate::event::{Event, Input};
use crate::model::Snapshot;
use crate::panic_hook::PanicRestore;
use crate::ui::widgets::Theme;

/// An error unless stdin and stdout are both terminals (a TUI needs one):
/// says what to run instead rather than failing in raw mode.
pub fn require_terminal(instead: &str) -> Result<()> {
    use std::io::IsTerminal;
    if io::stdin().is_terminal() && io::stdout().is_terminal() {
        return Ok(());
    }
    anyhow::bail!(
        "this is a full-screen program and needs a terminal (stdin and stdout); {instead}"
    )
}

/// Owns the terminal while the TUI runs. Dropping it (also on an error
/// path) leaves the alternate screen and raw mode; a panic does the same
/// before the panic message is printed.
///
/// The ratatui `Terminal` is never dropped: its `Drop` shows the cursor
/// and, when that fails (the terminal was closed: SIGHUP), `eprintln!`s to
/// the closed terminal, which panics; during an unwind that aborted the
/// process before the demo stopped its runner. [`restore`] shows the
/// cursor instead, ignoring errors.
pub struct TerminalGuard {
    pub terminal: ManuallyDrop<Terminal<CrosstermBackend<Stdout>>>,
    _hook: PanicRestore,
}

/// Put the terminal back as it was. Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl TerminalGuard {
    pub fn enter() -> Result<TerminalGuard> {
        let hook = PanicRestore::install(restore);
        // From here on, a failure restores through the guard's drop.
        let mut guard = TerminalGuard {
            terminal: ManuallyDrop::new(
                Terminal::new(CrosstermBackend::new(io::stdout()))
                    .context("opening the terminal")?,
            ),
            _hook: hook,
        };
        guard.resume()?;
        Ok(guard)
    }

    /// Give the terminal back for a while (an attach): leave the alternate
    /// screen, mouse capture and raw mode. The caller must have paused its
    /// [`Input`], which would take keys meant for the attach.
    pub fn suspend(&mut self) {
        restore();
    }

    /// Take the terminal (again): raw mode, alternate screen, mouse, and a
    /// cleared screen so the next draw repaints everything.
    pub fn resume(&mut self) -> Result<()> {
        enable_raw_mode().context("raw mode")?;
        execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
            .context("alternate screen")?;
        self.terminal.hide_cursor().context("hiding the cursor")?;
        self.terminal.clear().context("clearing the screen")?;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        // `_hook` drops after this and puts the previous panic hook back.
    }
}

/// Run the TUI until `q`/Ctrl-C or `shutdown`. Draws on every snapshot,
/// input event and once a second (ages and the clock move). An attach from
/// the Sessions screen suspends it ([`attach_suspended`]) and it comes back
/// as it was. The caller cancels its pollers when this returns.
pub async fn run_tui(
    mut snapshots: watch::Receiver<Snapshot>,
    shutdown: CancellationToken,
    attacher: Attacher,
    way_in: Option<crate::app::WayIn>,
) -> Result<()> {
    let theme = Theme::from_no_color(std::env::var_os("NO_COLOR").as_deref());
    let mut app = App::new(theme, SystemTime::now());
    app.way_in = way_in;
    let mut guard = TerminalGuard::enter()?;
    let mut events = Input::start();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut snapshots_open = true;
    loop {
        {
            let now = SystemTime::now();
            app.now = now;
            let snap = snapshots.borrow();
            let mut hits = None;
            guard
                .terminal
                .draw(|f| hits = Some(crate::ui::render(f, &app, &snap, now)))
                .context("drawing")?;
            drop(snap);
            if let Some(h) = hits {
                app.drawn(h);
            }
        }
        // Wait for something that may change the screen.
        let attach = loop {
            let step = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => Outcome::Redraw,
                changed = snapshots.changed(), if snapshots_open => {
                    // The publisher went away: keep showing the last one.
                    snapshots_open = changed.is_ok();
                    Outcome::Redraw
                }
                ev = events.next() => match ev {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e).context("reading terminal events"),
                    Some(Ok(ev)) => match Event::from_terminal(ev) {
                        None => Outcome::None,
                        Some(ev) => {
                            app.now = SystemTime::now();
                            // Held only for this synchronous call.
                            app.handle(ev, &snapshots.borrow())
                        }
                    },
                },
            };
            match step {
                Outcome::Quit => return Ok(()),
                Outcome::None => {}
                Outcome::Redraw => break None,
                Outcome::Attach(req) => break Some(req),
            }
        };
        if let Some(req) = attach {
            // The reader would take the attach's keys.
            events.pause().await;
            let message = attach_suspended(&mut guard, &attacher, &req, &shutdown).await?;
            events.resume();
            match message {
                Some(m) => app.attached(m),
                // Stopped (a signal) while attached.
                None => return Ok(()),
            }
        }
    }
}

/// Run one attach with the TUI suspended: the terminal is the attach's
/// until it ends, then the TUI takes it back and repaints. Returns the
/// line for the status (how it ended, or why it failed), or `None` when
/// `shutdown` came first.
pub async fn attach_suspended(
    guard: &mut TerminalGuard,
    attacher: &Attacher,
    req: &AttachRequest,
    shutdown: &CancellationToken,
) -> Result<Option<String>> {
    guard.suspend();
    let ended = tokio::select! {
        _ = shutdown.cancelled() => None,
        r = attacher.attach(req) => Some(r),
    };
    // The attach's own guard has put the terminal back in cooked mode.
    guard.resume()?;
    Ok(ended.map(|r| match r {
        Ok(end) => end.summary(),
        Err(e) => format!("[termgate] attach failed: {e}"),
    }))
}
