//! Drawing: a header, the current screen, a footer with the tabs and key
//! hints, and overlays (help, error examples, the filter prompt). Pure: it
//! reads the [`App`], the [`Snapshot`] and the clock it is given.

pub mod errors;
pub mod fleet;
pub mod help;
pub mod logs;
pub mod rows;
pub mod runner;
pub mod sessions;
pub mod widgets;

#[cfg(test)]
pub(crate) mod fixture;

use std::time::SystemTime;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::app::{App, Hits, Screen};
use crate::model::{Health, Snapshot};

/// Draw everything into `frame`; returns where the mouse can hit things,
/// for the loop to hand back to [`App::drawn`].
pub fn render(frame: &mut Frame, app: &App, snap: &Snapshot, now: SystemTime) -> Hits {
    let area = frame.area();
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header(frame, head, app, snap, now);
    // The demo's way in, under the Fleet screen.
    let body = match &app.way_in {
        Some(w) if app.screen == Screen::Fleet => {
            let lines = way_in_lines(w, app.theme);
            let h = wrapped_height(&lines, body.width).min(body.height / 2);
            let [rest, way] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(h)]).areas(body);
            frame.render_widget(
                Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
                way,
            );
            rest
        }
        _ => body,
    };
    let mut hits = Hits {
        table: match app.screen {
            Screen::Fleet => fleet::render(frame, body, app, snap, now),
            Screen::Runner => {
                runner::render(frame, body, app, snap, now);
                None
            }
            Screen::Sessions => sessions::render(frame, body, app, snap, now),
            Screen::Errors => errors::render(frame, body, app, snap, now),
            Screen::Logs => logs::render(frame, body, app, snap),
        },
        tabs: Vec::new(),
    };
    hits.tabs = footer(frame, foot, app);
    if app.help {
        help::render(frame, body, app);
    }
    hits
}

/// The demo's coordinator and a command that attaches to one of its
/// terminal jobs, whole (wrapped, never cut) so it can be copied.
pub fn way_in_lines(w: &crate::app::WayIn, t: crate::ui::widgets::Theme) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![
            Span::styled(" demo coordinator ", t.title()),
            Span::raw(w.coordinator.clone()),
            Span::styled("  (jobs: /admin/jobs)", t.dim()),
        ]),
        Line::from(vec![Span::styled(
            " attach to a terminal job (the Sessions screen, key 3, lists them):",
            t.title(),
        )]),
        Line::from(vec![
            Span::raw(" "),
            Span::styled(w.attach.clone(), t.accent()),
        ]),
    ]
}

/// Rows `lines` take in `width` columns when wrapped.
pub fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

fn header(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let t = app.theme;
    let up = snap
        .runners
        .iter()
        .filter(|r| r.health == Health::Up)
        .count();
    let down = snap
        .runners
        .iter()
        .filter(|r| matches!(r.health, Health::Down { .. }))
        .count();
    let what = match app.screen {
        Screen::Fleet => "fleet".to_string(),
        Screen::Runner => match app.current_runner(snap) {
            Some(r) => format!("runner {}", r.source.name),
            None => "runner".into(),
        },
        Screen::Sessions => match &app.sessions.runner {
            Some(r) => format!("sessions {r}"),
            None => "sessions".into(),
        },
        Screen::Errors => "errors".into(),
        Screen::Logs => "logs".into(),
    };
    let n = snap.runners.len();
    let mut left = vec![
        Span::styled("termgate", t.title()),
        Span::raw("  "),
        Span::styled(what, t.accent()),
        Span::raw(format!("  {n} runner{} · ", if n == 1 { "" } else { "s" })),
        Span::styled(format!("{up} up"), if up > 0 { t.good() } else { t.dim() }),
    ];
    if down > 0 {
        left.push(Span::raw(" · "));
        left.push(Span::styled(format!("{down} down"), t.bad()));
    }
    let mut right = String::new();
    if !snap.interval.is_zero() {
        right.push_str(&format!(
            "every {} · ",
            crate::text::age(snap.interval).replace(".0s", "s")
        ));
    }
    right.push_str(&crate::text::clock(now));
    let used: usize = left.iter().map(|s| s.content.width()).sum();
    let room = usize::from(area.width).saturating_sub(used);
    if room > right.width() {
        left.push(Span::raw(format!("{right:>room$}")));
    }
    frame.render_widget(Paragraph::new(Line::from(left)), area);
}

/// Footer: the reason or filter prompt while typing, how the last attach
/// ended, else the tabs and key hints.
fn footer(frame: &mut Frame, area: Rect, app: &App) -> Vec<(Rect, Screen)> {
    let t = app.theme;
    if let Some(p) = &app.prompt {
        let r = &p.request;
        let what = match r.mode {
            termgate::operator::Mode::Observe => "observing",
            termgate::operator::Mode::Join => "joining",
            termgate::operator::Mode::Shell => "a shell in",
        };
        let mut spans = vec![
            Span::styled(
                format!("reason for {what} job {} on {}: ", r.job_id, r.runner),
                t.accent(),
            ),
            Span::raw(p.text.clone()),
            Span::styled("▏", t.accent()),
        ];
        if p.refused {
            spans.push(Span::styled("  a reason is required (audited)", t.bad()));
        } else {
            spans.push(Span::styled("  Enter attach · Esc cancel", t.dim()));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        return Vec::new();
    }
    if let Some(status) = &app.status {
        // How the last attach ended, until the next key or click.
        let line = Line::from(vec![
            Span::styled(status.clone(), t.accent()),
            Span::styled("  (any key)", t.dim()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return Vec::new();
    }
    if let Some(text) = &app.input {
        let line = Line::from(vec![
            Span::styled("/", t.accent()),
            Span::raw(text.clone()),
            Span::styled("▏", t.accent()),
            Span::styled("  Enter apply · Esc cancel", t.dim()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return Vec::new();
    }
    let mut spans = Vec::new();
    let mut tabs = Vec::new();
    let mut x = area.x;
    for (i, s) in Screen::ALL.iter().enumerate() {
        let label = format!("[{}]{}", i + 1, s.title());
        let w = label.width() as u16;
        let style = if *s == app.screen {
            t.selected()
        } else {
            t.dim()
        };
        if x + w <= area.right() {
            tabs.push((Rect::new(x, area.y, w, 1), *s));
        }
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
        x += w + 1;
    }
    let used = usize::from(x - area.x);
    let room = usize::from(area.width).saturating_sub(used);
    if let Some(hints) = help::hints(app.screen)
        .into_iter()
        .find(|h| room > h.width())
    {
        spans.push(Span::styled(format!("{hints:>room$}"), t.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    tabs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::fixture::{draw, fixed_app, fixed_snapshot};
    use crate::ui::widgets::Theme;
    use insta::assert_snapshot;
    use ratatui::style::Color;

    #[test]
    fn header_counts_and_clock() {
        let snap = fixed_snapshot();
        let app = fixed_app(Theme::COLOR);
        let (term, _) = draw(&app, &snap, 80, 24);
        let first: String = (0..80)
            .map(|x| term.backend().buffer()[(x, 0)].symbol().to_string())
            .collect();
        assert_eq!(
            first,
            "termgate  fleet  4 runners · 3 up · 1 down               every 2s · 14:02:31 UTC"
        );
    }

    /// At 80×24, on every screen and its help overlay, no boxed title is
    /// cut by its border (the Runner screen's `observ┐`) and the header
    /// keeps its clock.
    #[test]
    fn titles_fit_at_80x24_on_every_screen() {
        let mut snap = fixed_snapshot();
        // Longer breakdowns than the fixture's: a third connection role.
        for r in &mut snap.runners {
            if let Some(l) = r.latest.as_mut().filter(|l| !l.ws_connections.is_empty()) {
                l.ws_connections.insert("interactive".into(), 3.0);
            }
        }
        for screen in Screen::ALL {
            for help in [false, true] {
                let mut app = fixed_app(Theme::MONO);
                app.screen = screen;
                app.runner = Some("prm-5".into());
                app.help = help;
                let (term, _) = draw(&app, &snap, 80, 24);
                let text = format!("{}", term.backend());
                let first = text.lines().next().unwrap_or_default();
                assert!(first.contains("14:02:31 UTC"), "{screen:?}: {first}");
                for line in text.lines().filter(|l| l.contains('┌')) {
                    for (i, _) in line.match_indices('┐') {
                        let before = line[..i].chars().last().unwrap_or(' ');
                        assert!(
                            matches!(before, '─' | ' ' | '…'),
                            "{screen:?} (help {help}): a title cut by the border: {line}"
                        );
                    }
                }
            }
        }
    }

    fn demo_app() -> crate::app::App {
        let mut app = fixed_app(Theme::MONO);
        app.way_in = Some(crate::app::WayIn {
            coordinator: "http://127.0.0.1:41234".into(),
            attach:
                "termgate attach -c /tmp/termgate-demo-Xy12/console.toml demo-runner 3 --observe"
                    .into(),
        });
        app
    }

    /// In the demo the Fleet screen shows the coordinator and an attach
    /// command whole, wrapped rather than cut, so it can be pasted.
    #[test]
    fn demo_fleet_shows_the_way_in() {
        let snap = fixed_snapshot();
        let app = demo_app();
        let (term, _) = draw(&app, &snap, 80, 24);
        let text: String = format!("{}", term.backend());
        assert!(
            text.contains("demo coordinator http://127.0.0.1:41234"),
            "{text}"
        );
        let joined: String = text
            .lines()
            .map(|l| l.trim_matches('"').trim_end())
            .collect::<Vec<_>>()
            .join("");
        assert!(
            joined.contains(
                "termgate attach -c /tmp/termgate-demo-Xy12/console.toml demo-runner 3 --observe"
            ),
            "{text}"
        );
        assert_snapshot!(term.backend());
    }

    /// `?` in the demo, on any screen: the keys, then the way in.
    #[test]
    fn demo_help_shows_the_way_in() {
        let snap = fixed_snapshot();
        let mut app = demo_app();
        app.screen = Screen::Sessions;
        app.help = true;
        let (term, _) = draw(&app, &snap, 100, 30);
        let text = format!("{}", term.backend());
        assert!(text.contains("http://127.0.0.1:41234"), "{text}");
        assert!(text.contains("demo-runner 3 --observe"), "{text}");
        assert_snapshot!(term.backend());
    }

    #[test]
    fn colour_theme_uses_basic_colours_only() {
        let snap = fixed_snapshot();
        let app = fixed_app(Theme::COLOR);
        let (term, _) = draw(&app, &snap, 160, 40);
        let buf = term.backend().buffer();
        let mut red = false;
        for c in buf.content() {
            for col in [c.fg, c.bg] {
                assert!(
                    matches!(
                        col,
                        Color::Reset
                            | Color::Black
                            | Color::Red
                            | Color::Green
                            | Color::Yellow
                            | Color::Blue
                            | Color::Magenta
                            | Color::Cyan
                            | Color::Gray
                            | Color::DarkGray
                            | Color::LightRed
                            | Color::LightGreen
                            | Color::LightYellow
                            | Color::LightBlue
                            | Color::LightMagenta
                            | Color::LightCyan
                            | Color::White
                    ),
                    "{col:?}"
                );
            }
            red |= c.fg == Color::Red;
        }
        assert!(red, "a down runner is red");
    }

    #[test]
    fn no_color_means_no_colour() {
        let snap = fixed_snapshot();
        for screen in Screen::ALL {
            let mut app = fixed_app(Theme::MONO);
            app.screen = screen;
            let (term, _) = draw(&app, &snap, 80, 24);
            for c in term.backend().buffer().content() {
                assert_eq!((c.fg, c.bg), (Color::Reset, Color::Reset), "{screen:?}");
            }
        }
    }

    #[test]
    fn no_color_fleet_keeps_markers() {
        let snap = fixed_snapshot();
        let app = fixed_app(Theme::MONO);
        let (term, _) = draw(&app, &snap, 80, 24);
        assert_snapshot!(term.backend());
    }

    #[test]
    fn filter_prompt_replaces_the_footer_while_typing() {
        let snap = fixed_snapshot();
        let mut app = fixed_app(Theme::MONO);
        for c in "4/term".chars() {
            app.handle(crate::event::Event::char(c), &snap);
        }
        let (term, _) = draw(&app, &snap, 80, 24);
        let text = format!("{}", term.backend());
        let footer = text.lines().last().unwrap_or_default();
        assert!(
            footer.starts_with("\"/term▏  Enter apply · Esc cancel"),
            "{footer}"
        );
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let snap = fixed_snapshot();
        for screen in Screen::ALL {
            for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (0, 0)] {
                let mut app = fixed_app(Theme::COLOR);
                app.screen = screen;
                app.help = true;
                let _ = draw(&app, &snap, w, h);
            }
        }
    }

    #[test]
    fn empty_snapshot_draws() {
        let snap = Snapshot::default();
        for screen in Screen::ALL {
            let mut app = fixed_app(Theme::COLOR);
            app.screen = screen;
            let (term, _) = draw(&app, &snap, 80, 24);
            assert!(format!("{}", term.backend()).contains("termgate"));
        }
    }
}
