//! A yes/no question.

use ratatui::Frame;

use super::layout::Screen;
use super::window::{draw_window, plain};
use crate::tui::dialogs::Confirm;
use crate::tui::strings as s;

/// Draw a question.
pub fn draw_confirm(frame: &mut Frame<'_>, screen: &Screen, c: &Confirm) {
    let width = 60u16;
    let lines: Vec<_> = c.lines.iter().map(|l| plain(l)).collect();
    let inner = usize::from(width - 2);
    let rows: usize = c
        .lines
        .iter()
        .map(|l| l.chars().count().div_ceil(inner).max(1))
        .sum();
    let h = u16::try_from(rows + 2).unwrap_or(10);
    draw_window(
        frame,
        screen.centered(width, h),
        &c.title,
        lines,
        0,
        s::FOOTER_YES_NO,
    );
}
