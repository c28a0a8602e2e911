//! A window of plain lines (facts about a layer node, notices).

use ratatui::Frame;

use super::layout::Screen;
use super::window::{draw_window, plain};
use crate::tui::strings as s;

/// Draw a message window.
pub fn draw_message(
    frame: &mut Frame<'_>,
    screen: &Screen,
    title: &str,
    lines: &[String],
    scroll: usize,
) {
    let w = screen.all.width.saturating_sub(8).min(90);
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let rows: usize = lines
        .iter()
        .map(|l| l.chars().count().div_ceil(inner).max(1))
        .sum();
    let h = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let area = screen.centered(w, h.max(5));
    draw_window(
        frame,
        area,
        title,
        lines.iter().map(|l| plain(l)).collect(),
        scroll,
        s::FOOTER_CLOSE,
    );
}
