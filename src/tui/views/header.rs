//! The header line: the program, and what the open filesystem reported
//! (journal replayed in memory, checksum problems).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::tui::app::App;
use crate::tui::format::safe;
use crate::tui::strings as s;

/// Draw the header line.
pub fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut spans = vec![Span::styled(s::PROGRAM, style::key()), Span::raw("  ")];
    match app.fs_status() {
        Some(st) if !st.problems.is_empty() => {
            spans.push(Span::styled(
                safe(&s::fs_problems(
                    st.problems.len(),
                    &st.problems[0].to_string(),
                )),
                style::bad(),
            ));
        }
        Some(st) if !st.notes.is_empty() => {
            spans.push(Span::styled(safe(&st.notes.join("; ")), style::warn()));
        }
        _ if app.written > 0 => spans.push(Span::styled(s::HEADER_WRITTEN, style::warn())),
        _ => spans.push(Span::styled(s::HEADER_CALM, style::dim())),
    }
    let hint = Line::from(Span::styled(s::HEADER_HINT, style::dim())).right_aligned();
    let w = u16::try_from(s::HEADER_HINT.chars().count()).unwrap_or(0);
    let mut left = area;
    if area.width > w + 40 {
        let r = Rect::new(area.x + area.width - w, area.y, w, 1);
        frame.render_widget(Paragraph::new(hint), r);
        // The text stops a space before the hint.
        left.width = area.width - w - 1;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), left);
}
