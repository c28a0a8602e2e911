//! A window of plain lines (facts about a layer node, notices).

use ratatui::Frame;

use super::layout::Screen;
use super::window::{draw_window, plain};
use crate::tui::strings as s;

/// Draw a message window.
pub fn draw_message(frame: &mut Frame<'_>, screen: &Screen, title: &str, lines: &[String], scroll: usize) {
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let area = screen.centered(screen.all.width.saturating_sub(8).min(90), h.max(5));
    draw_window(frame, area, title, lines.iter().map(|l| plain(l)).collect(), scroll, s::FOOTER_CLOSE);
}
