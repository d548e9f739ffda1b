//! `?`: every key of the current screen, and the footer's short hints.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::app::{App, Screen};
use crate::ui::widgets::centered;

/// The footer's hints for a screen: all of them, and the short form for
/// 80 columns (at most 30: what the five tabs leave).
pub fn hints(s: Screen) -> [&'static str; 2] {
    match s {
        Screen::Fleet => [
            "Enter:open t:sessions s:sort /:filter ?:help q:quit",
            "Enter:open t:sessions ?:help",
        ],
        Screen::Runner => [
            "←→:runner Esc:back ?:help q:quit",
            "←→:runner Esc:back ?:help",
        ],
        Screen::Sessions => [
            "Enter:observe j:join x:shell s:sort /:filter ?:help",
            "Enter:observe j:join x:shell",
        ],
        Screen::Errors => [
            "Enter:examples w:window /:filter ?:help",
            "Enter:examples w:window ?:help",
        ],
        Screen::Logs => [
            "Enter:line f:follow l:level r:runner /:filter ?:help",
            "Enter:line f:follow l:level",
        ],
    }
}

/// Keys of one screen, then the global ones.
pub fn keys(s: Screen) -> Vec<(&'static str, &'static str)> {
    let mut k: Vec<(&str, &str)> = match s {
        Screen::Fleet => vec![
            ("↑↓ j k", "select a runner"),
            ("PgUp PgDn g G", "page, first, last"),
            ("Enter, click", "open the runner's charts"),
            ("t", "the runner's live sessions (Sessions)"),
            ("s / S", "next sort column / reverse"),
            ("/", "filter runners by name"),
            ("Esc", "clear the filter"),
        ],
        Screen::Runner => vec![
            ("← → h l j k", "previous / next runner"),
            ("Esc", "back to the fleet"),
        ],
        Screen::Sessions => vec![
            ("↑↓ k, click", "select a session"),
            ("PgUp PgDn g G", "page, first, last"),
            ("Enter, o", "observe (read-only; keys stay here)"),
            ("j", "join the user's terminal (asks a reason)"),
            ("x", "open a shell in the job (asks a reason)"),
            ("detach key", "back here (Ctrl-] unless detach_key)"),
            ("s / S", "next sort column / reverse"),
            ("/", "filter by runner, job, project, state"),
            ("Esc", "clear the filters"),
        ],
        Screen::Errors => vec![
            ("↑↓ j k", "select a fingerprint"),
            ("PgUp PgDn g G", "page, first, last"),
            ("Enter, click", "examples (Esc closes)"),
            ("w", "window: 15m 1h 24h 7d"),
            ("/", "filter by text"),
            ("Esc", "clear the filter"),
        ],
        Screen::Logs => vec![
            ("↑↓ j k, wheel", "scroll (pauses following)"),
            ("PgUp PgDn g G", "page, oldest, newest"),
            ("Enter, click", "the whole line and its fields"),
            ("f", "follow on / off"),
            ("l", "level: all, info+, warning+, error+"),
            ("r", "runner: all, then each"),
            ("/", "filter by text"),
            ("c, Esc", "clear all filters"),
        ],
    };
    k.extend([
        ("Tab 1-5", "Fleet, Runner, Sessions, Errors, Logs"),
        ("click a tab", "switch screen"),
        ("?", "this help (Esc closes)"),
        ("q, Ctrl-C", "quit"),
    ]);
    k
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let keys = keys(app.screen);
    let key_w = keys
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$}  "), t.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    // In the demo: where its coordinator is and how to attach.
    if let Some(way) = &app.way_in {
        lines.push(Line::raw(""));
        lines.extend(crate::ui::way_in_lines(way, t));
    }
    let w = (lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 3).min(area.width);
    let h = crate::ui::wrapped_height(&lines, w.saturating_sub(2)) + 2;
    let rect = centered(area, w, h);
    let block = Block::bordered()
        .title(Line::styled(
            format!(" keys: {} ", app.screen.title()),
            t.title(),
        ))
        .border_style(t.accent());
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: false }),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use crate::app::Screen;
    use crate::event::Event;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use crate::ui::widgets::Theme;
    use insta::assert_snapshot;

    #[test]
    fn hints_fit_beside_the_tabs_at_80_columns() {
        for s in Screen::ALL {
            let w = unicode_width::UnicodeWidthStr::width(super::hints(s)[1]);
            assert!(w <= 30, "{s:?}: {w}");
        }
    }

    #[test]
    fn help_overlay_fleet() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.handle(Event::char('?'), &snap);
        assert!(app.help);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn help_overlay_sessions() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.screen = Screen::Sessions;
        app.handle(Event::char('?'), &snap);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn help_overlay_logs() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::COLOR);
        app.screen = Screen::Logs;
        app.handle(Event::char('?'), &snap);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }
}
