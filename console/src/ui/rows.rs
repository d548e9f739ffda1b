//! The selectable list of rows the Fleet, Sessions and Errors screens
//! share.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::TableHit;
use crate::ui::widgets::Theme;

/// A screen's rows as a selectable list in `body` (`>` marks the selected
/// one, kept in range), or `empty`, dimmed, when there are none. Returns
/// where the rows are, for mouse clicks.
pub fn selectable_rows(
    frame: &mut ratatui::Frame,
    body: Rect,
    rows: Vec<Line<'static>>,
    empty: &str,
    (offset, selected): (usize, usize),
    t: Theme,
) -> TableHit {
    use ratatui::widgets::{HighlightSpacing, List, ListState, Paragraph};
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(empty.to_string(), t.dim())),
            body,
        );
        return TableHit {
            body,
            offset: 0,
            len: 0,
        };
    }
    let len = rows.len();
    let list = List::new(rows)
        .highlight_symbol(">")
        .highlight_spacing(HighlightSpacing::Always)
        .highlight_style(t.selected());
    let mut state = ListState::default()
        .with_offset(offset)
        .with_selected(Some(selected.min(len - 1)));
    frame.render_stateful_widget(list, body, &mut state);
    TableHit {
        body,
        offset: state.offset(),
        len,
    }
}
