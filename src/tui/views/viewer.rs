//! The file viewer, full screen: a title line (the file and the keys), the
//! rows computed by [`crate::tui::dialogs::viewer::ViewerDialog::refresh`]
//! with their line numbers (`?` where not counted), and a status line (the
//! search being typed, or what is under way, and the position).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::style;
use crate::text::{columns, pad};
use crate::tui::dialogs::ViewerDialog;
use crate::tui::format::{cut_middle, safe, size};
use crate::tui::strings as s;

/// Draw the viewer over the whole of `area`.
pub fn draw_viewer(frame: &mut Frame<'_>, area: Rect, v: &ViewerDialog) {
    frame.render_widget(Clear, area);
    if area.height == 0 || area.width == 0 {
        return;
    }
    let w = usize::from(area.width);
    // Title: the file, then the keys when there is room.
    let title = safe(&v.title);
    let keys = s::VIEWER_KEYS;
    let top = if columns(&title) + columns(keys) + 3 <= w {
        format!(" {}{keys} ", pad(&title, w - columns(keys) - 2, false))
    } else {
        format!(" {}", cut_middle(&title, w.saturating_sub(1)))
    };
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(top, style::bar()))).style(style::bar()),
        Rect::new(area.x, area.y, area.width, 1),
    );

    // The text.
    let body_h = area.height.saturating_sub(2);
    let body = Rect::new(area.x, area.y + 1, area.width, body_h);
    let mut lines: Vec<Line<'static>> = Vec::new();
    if let Some(e) = &v.error {
        lines.push(Line::from(Span::styled(safe(e), style::bad())));
    } else if v.pager.is_none() {
        lines.push(Line::from(Span::styled(s::VIEWER_OPENING, style::dim())));
    } else {
        for r in &v.rows {
            let mut spans = Vec::new();
            if v.gutter > 0 {
                let n = match (r.first, r.number) {
                    (true, Some(n)) => n.to_string(),
                    (true, None) => "?".to_string(),
                    (false, _) => String::new(),
                };
                spans.push(Span::styled(
                    format!("{} ", pad(&n, v.gutter - 1, true)),
                    style::dim(),
                ));
            }
            let text_style = if r.hit {
                style::marked()
            } else {
                ratatui::style::Style::new()
            };
            spans.push(Span::styled(r.text.clone(), text_style));
            lines.push(Line::from(spans));
        }
    }
    frame.render_widget(Paragraph::new(lines), body);

    // Status: the prompt or what is under way on the left, the position on the right.
    if area.height < 2 {
        return;
    }
    let left = match &v.typing {
        Some(f) => format!(
            "{}{}",
            s::VIEWER_SEARCH_PROMPT,
            crate::text::escape_str(&f.text)
        ),
        None => v.activity().map(|a| safe(&a)).unwrap_or_default(),
    };
    let right = match v.size {
        Some(n) => format!("{}  {}", size(n), v.position()),
        None => String::new(),
    };
    let room = w.saturating_sub(columns(&right) + 2);
    let left = if columns(&left) > room {
        cut_middle(&left, room)
    } else {
        left
    };
    let status = format!(
        " {}{right} ",
        pad(&left, w.saturating_sub(columns(&right) + 2), false)
    );
    let status_style = if v.error.is_some() {
        style::bad()
    } else {
        style::bar()
    };
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(status, status_style))).style(style::bar()),
        Rect::new(area.x, area.y + area.height - 1, area.width, 1),
    );
    if let Some(f) = &v.typing {
        let x = 1 + columns(s::VIEWER_SEARCH_PROMPT) + f.text.chars().take(f.cursor).count();
        let x = u16::try_from(x).unwrap_or(u16::MAX).min(area.width - 1);
        frame.set_cursor_position((area.x + x, area.y + area.height - 1));
    }
}
