//! Shared pieces of the screens: the colour theme, text sparklines, and a
//! small column layout that collapses right to left and lets a cell span
//! the rest of a row. Number, age and width formatting is [`crate::text`].

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::model::Level;
use crate::text::pad;

/// Colours: the 16 basic ANSI colours only, or none at all (`NO_COLOR`).
/// Everything highlighted also carries a text marker, so a monochrome
/// screen loses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub const COLOR: Theme = Theme { color: true };
    pub const MONO: Theme = Theme { color: false };

    /// Colours unless `NO_COLOR` is set to a non-empty value
    /// (<https://no-color.org>).
    pub fn from_no_color(no_color: Option<&std::ffi::OsStr>) -> Theme {
        Theme {
            color: no_color.is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// Something is wrong: a runner down, no terminal available, a new error.
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    /// The selected row: reverse video works without colours too.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn level(self, l: Level) -> Style {
        match l {
            Level::Debug => self.dim(),
            Level::Info => Style::new(),
            Level::Warning => self.warn(),
            Level::Error | Level::Fatal | Level::Panic => self.bad(),
        }
    }
    /// Series colours for charts and sparklines, by position.
    pub fn series(self, i: usize) -> Style {
        const C: [Color; 6] = [
            Color::Green,
            Color::Cyan,
            Color::Yellow,
            Color::Magenta,
            Color::Blue,
            Color::Red,
        ];
        self.fg(C[i % C.len()])
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline: one character per value, scaled to the largest;
/// zero and missing values are blank so gaps stand out.
pub fn spark(values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
    values
        .iter()
        .map(|v| match v {
            Some(v) if *v > 0.0 && max > 0.0 => {
                let i = ((v / max) * (BARS.len() - 1) as f64).round() as usize;
                BARS[i.min(BARS.len() - 1)]
            }
            _ => ' ',
        })
        .collect()
}

/// One column of a [`Columns`] layout.
#[derive(Debug, Clone)]
pub struct Col {
    pub title: String,
    /// Second header line (`avail` under `TERMINALS`), if any.
    pub sub: String,
    pub right: bool,
    /// Never dropped when narrow.
    pub keep: bool,
    /// Takes the width left over (only one column should).
    pub flex: bool,
    pub min: usize,
    pub max: usize,
}

impl Col {
    pub fn left(title: &str, min: usize, max: usize) -> Col {
        Col {
            title: title.to_string(),
            sub: String::new(),
            right: false,
            keep: false,
            flex: false,
            min,
            max,
        }
    }
    pub fn right(title: &str, min: usize, max: usize) -> Col {
        Col {
            right: true,
            ..Col::left(title, min, max)
        }
    }
    pub fn under(mut self, sub: &str) -> Col {
        self.sub = sub.to_string();
        self
    }
    pub fn keep(mut self) -> Col {
        self.keep = true;
        self
    }
    pub fn flex(mut self) -> Col {
        self.flex = true;
        self
    }
}

/// A cell of a row: text and style; `span` makes it run to the end of the
/// row, as far as the width the columns were fitted to (a down runner's
/// reason).
#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub style: Style,
    pub span: bool,
}

impl Cell {
    pub fn new(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
            span: false,
        }
    }
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell::new(text, Style::new())
    }
    pub fn spanning(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            span: true,
            ..Cell::new(text, style)
        }
    }
}

/// Column widths fitted to an area: natural widths from the content,
/// columns dropped right to left (except `keep` ones) until they fit,
/// then spare width given to the flex column or spread between columns.
#[derive(Debug, Clone)]
pub struct Columns {
    cols: Vec<Col>,
    /// `(column index, width)` of the visible columns, in order.
    pub shown: Vec<(usize, usize)>,
    gap: usize,
    /// The width fitted to: a spanning cell may run to it.
    avail: usize,
}

impl Columns {
    pub fn fit(cols: Vec<Col>, rows: &[Vec<Cell>], width: usize) -> Columns {
        let natural: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let content = rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .filter(|cell| !cell.span)
                    .map(|cell| cell.text.width())
                    .max()
                    .unwrap_or(0);
                // A group title may run over its columns; a flex column
                // only claims its minimum and gets what is left.
                let head = if c.sub.is_empty() {
                    c.title.width()
                } else {
                    c.sub.width()
                };
                if c.flex {
                    c.min
                } else {
                    content.max(head).clamp(c.min, c.max.max(c.min))
                }
            })
            .collect();
        let mut shown: Vec<usize> = (0..cols.len()).collect();
        let total = |s: &[usize], gap: usize| -> usize {
            s.iter().map(|i| natural[*i]).sum::<usize>() + s.len().saturating_sub(1) * gap
        };
        while total(&shown, 1) > width {
            let Some(pos) = shown.iter().rposition(|i| !cols[*i].keep) else {
                break;
            };
            shown.remove(pos);
        }
        let mut widths: Vec<(usize, usize)> = shown.iter().map(|i| (*i, natural[*i])).collect();
        let used = total(&shown, 1);
        let mut gap = 1;
        let spare = width.saturating_sub(used);
        if let Some(f) = widths.iter_mut().find(|(i, _)| cols[*i].flex) {
            f.1 += spare;
        } else if widths.len() > 1 {
            // Wider gaps, at most 3, so wide screens use their width.
            gap = (1 + spare / (widths.len() - 1)).min(3);
        }
        // Still too wide (only keep columns): shrink from the right.
        let mut over = total(&shown, gap).saturating_sub(width);
        for w in widths.iter_mut().rev() {
            let cut = over.min(w.1.saturating_sub(1));
            w.1 -= cut;
            over -= cut;
        }
        Columns {
            cols,
            shown: widths,
            gap,
            avail: width,
        }
    }

    pub fn is_shown(&self, col: usize) -> bool {
        self.shown.iter().any(|(i, _)| *i == col)
    }

    /// The header lines: titles, then sub-titles when any column has one.
    /// A sub-titled group's title is written once, over its first column.
    pub fn header(&self, style: Style) -> Vec<Line<'static>> {
        let width = self.width();
        let mut top: Vec<String> = vec![" ".into(); width];
        let mut bottom: Vec<String> = vec![" ".into(); width];
        let mut has_sub = false;
        let mut last_title: &str = "";
        let mut x = 0;
        for (n, (i, w)) in self.shown.iter().enumerate() {
            let c = &self.cols[*i];
            if n > 0 {
                x += self.gap;
            }
            if c.sub.is_empty() {
                put(&mut top, x, &pad(&c.title, *w, c.right));
            } else {
                has_sub = true;
                if c.title != last_title {
                    // A group title may run over the next columns.
                    put(&mut top, x, &c.title);
                }
                put(&mut bottom, x, &pad(&c.sub, *w, c.right));
            }
            last_title = &c.title;
            x += w;
        }
        let mut out = vec![Line::styled(top.concat().trim_end().to_string(), style)];
        if has_sub {
            out.push(Line::styled(bottom.concat().trim_end().to_string(), style));
        }
        out
    }

    /// Total width of the shown columns.
    pub fn width(&self) -> usize {
        self.shown.iter().map(|(_, w)| w).sum::<usize>()
            + self.shown.len().saturating_sub(1) * self.gap
    }

    /// One row as a line.
    pub fn row(&self, cells: &[Cell]) -> Line<'static> {
        let mut spans = Vec::new();
        let mut x = 0;
        let total = self.width();
        for (n, (i, w)) in self.shown.iter().enumerate() {
            if n > 0 {
                spans.push(Span::raw(" ".repeat(self.gap)));
                x += self.gap;
            }
            let Some(cell) = cells.get(*i) else {
                spans.push(Span::raw(" ".repeat(*w)));
                x += w;
                continue;
            };
            if cell.span {
                let rest = total.max(self.avail).saturating_sub(x);
                spans.push(Span::styled(pad(&cell.text, rest, false), cell.style));
                break;
            }
            spans.push(Span::styled(
                pad(&cell.text, *w, self.cols[*i].right),
                cell.style,
            ));
            x += w;
        }
        Line::from(spans)
    }
}

/// Write `s` into a line of one-column cells from `x`, cutting at the end.
fn put(line: &mut [String], x: usize, s: &str) {
    let mut x = x;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if cw == 0 {
            continue;
        }
        if x + cw > line.len() {
            break;
        }
        line[x] = c.to_string();
        for cell in line.iter_mut().skip(x + 1).take(cw - 1) {
            cell.clear();
        }
        x += cw;
    }
}

/// A rectangle of `w` × `h` cells (clamped) centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparks_leave_gaps_at_zero() {
        assert_eq!(spark(&[Some(0.0), Some(1.0), None, Some(7.0)]), " ▂ █");
        assert_eq!(spark(&[]), "");
    }

    #[test]
    fn columns_collapse_right_to_left() {
        let cols = vec![
            Col::left("NAME", 4, 10).keep(),
            Col::right("A", 3, 3),
            Col::right("B", 3, 3),
        ];
        let rows = vec![vec![Cell::plain("x"), Cell::plain("1"), Cell::plain("2")]];
        let c = Columns::fit(cols.clone(), &rows, 8);
        assert_eq!(c.shown, vec![(0, 4), (1, 3)]);
        let c = Columns::fit(cols.clone(), &rows, 12);
        assert_eq!(c.shown.len(), 3);
        let c = Columns::fit(cols, &rows, 2);
        assert_eq!(c.shown, vec![(0, 2)]);
    }

    proptest::proptest! {
        #[test]
        fn rows_never_exceed_the_width(width in 0usize..200, text in ".{0,40}") {
            let cols = vec![
                Col::left("NAME", 4, 30).keep(),
                Col::right("N", 2, 6),
                Col::left("REST", 4, 60).flex(),
            ];
            let rows = vec![vec![Cell::plain(text.clone()), Cell::plain("12"), Cell::plain(text)]];
            let c = Columns::fit(cols, &rows, width);
            let line = c.row(&rows[0]);
            proptest::prop_assert!(line.width() <= width.max(4));
        }
    }
}
