//! A bordered window drawn over the panes, with scrolling text.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::style;
use crate::tui::format::safe;

/// Draw a window at `area` with `title`, `lines` from `scroll` on, and a
/// footer of key hints on its bottom border.
pub fn draw_window(
    frame: &mut Frame<'_>,
    area: Rect,
    title: &str,
    lines: Vec<Line<'static>>,
    scroll: usize,
    footer: &str,
) {
    frame.render_widget(Clear, area);
    let inner_h = usize::from(area.height.saturating_sub(2));
    let max_scroll = lines.len().saturating_sub(inner_h);
    let scroll = scroll.min(max_scroll);
    let more = if lines.len() > inner_h {
        format!(
            " {}-{}/{} ",
            scroll + 1,
            (scroll + inner_h).min(lines.len()),
            lines.len()
        )
    } else {
        String::new()
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(format!(" {} ", safe(title)), style::key()))
        .title_bottom(Line::from(format!(" {} ", safe(footer))).right_aligned())
        .title_bottom(Line::from(more).left_aligned());
    let p = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0));
    frame.render_widget(p, area);
}

/// A line `label: value` with the label in bold.
pub fn field(label: &str, value: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label}: "), style::key()),
        Span::raw(safe(value)),
    ])
}

/// A plain line.
pub fn plain(text: &str) -> Line<'static> {
    Line::from(safe(text))
}
