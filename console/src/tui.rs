//! The terminal: raw mode, alternate screen and mouse capture behind a
//! guard that restores them on drop and from a panic hook, and the one
//! event loop that feeds input, snapshots and a 1 s tick to the [`App`].

use std::io::{self, Stdout};
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::app::{App, Outcome};
use crate::event::Event;
use crate::model::Snapshot;
use crate::ui::widgets::Theme;

type PanicHook = Arc<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Owns the terminal while the TUI runs. Dropping it (also on an error
/// path) leaves the alternate screen and raw mode; a panic does the same
/// before the panic message is printed.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: PanicHook,
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
        let previous_hook: PanicHook = Arc::from(std::panic::take_hook());
        let chained = previous_hook.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            chained(info);
        }));
        // From here on, a failure restores through the guard's drop.
        let mut guard = TerminalGuard {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))
                .context("opening the terminal")?,
            previous_hook,
        };
        enable_raw_mode().context("raw mode")?;
        execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
            .context("alternate screen")?;
        guard.terminal.hide_cursor().context("hiding the cursor")?;
        guard.terminal.clear().context("clearing the screen")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        let previous = self.previous_hook.clone();
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// Run the TUI until `q`/Ctrl-C or `shutdown`. Draws on every snapshot,
/// input event and once a second (ages and the clock move). The caller
/// cancels its pollers when this returns.
pub async fn run_tui(
    mut snapshots: watch::Receiver<Snapshot>,
    shutdown: CancellationToken,
) -> Result<()> {
    let theme = Theme::from_no_color(std::env::var_os("NO_COLOR").as_deref());
    let mut app = App::new(theme, SystemTime::now());
    let mut guard = TerminalGuard::enter()?;
    let mut events = EventStream::new();
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
        loop {
            let redraw = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => true,
                changed = snapshots.changed(), if snapshots_open => {
                    // The publisher went away: keep showing the last one.
                    snapshots_open = changed.is_ok();
                    true
                }
                ev = events.next() => match ev {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e).context("reading terminal events"),
                    Some(Ok(ev)) => match Event::from_terminal(ev) {
                        None => false,
                        Some(ev) => {
                            app.now = SystemTime::now();
                            // Held only for this synchronous call.
                            let outcome = app.handle(ev, &snapshots.borrow());
                            match outcome {
                                Outcome::Quit => return Ok(()),
                                Outcome::Redraw => true,
                                Outcome::None => false,
                            }
                        }
                    },
                },
            };
            if redraw {
                break;
            }
        }
    }
}
