//! The find dialog: four fields, a status line, and the results (modified
//! time, type, size, path), the highlighted one kept in view.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::layout::Screen;
use super::style;
use crate::tui::dialogs::FindDialog;
use crate::tui::dialogs::find::{FIELDS, Focus};
use crate::tui::format::{cut_middle, keep_end, minute, safe, size};
use crate::tui::strings as s;

/// Rows above the results: the fields and the status line.
const HEAD_ROWS: u16 = FIELDS as u16 + 1;

/// The window's area.
fn area(screen: &Screen) -> Rect {
    screen.big_window()
}

/// Result rows the dialog shows at this screen size.
pub fn result_rows(screen: &Screen) -> usize {
    usize::from(area(screen).height.saturating_sub(2 + HEAD_ROWS)).max(1)
}

/// The status line: what the search did, or why it cannot run.
pub fn status_line(f: &FindDialog) -> Line<'static> {
    if let Some(e) = &f.error {
        return Line::styled(safe(e), style::bad());
    }
    match &f.search {
        None => Line::styled(s::FIND_START, style::dim()),
        Some(search) if search.running => Line::styled(
            s::find_running(search.counts.dirs, search.counts.seen, f.results.len()),
            style::warn(),
        ),
        Some(search) => {
            let text = s::find_done(
                search.counts.seen,
                f.results.len(),
                search.recent,
                search.cancelled,
                search.truncated,
                search.counts.problems,
            );
            match search.problems.first() {
                Some(p) => Line::from(vec![
                    Span::styled(text, style::key()),
                    Span::styled(format!(": {}", safe(p)), style::bad()),
                ]),
                None => Line::styled(text, style::key()),
            }
        }
    }
}

/// One result as shown in `width` columns.
pub fn result_text(h: &crate::tui::dialogs::find::Hit, width: usize) -> String {
    let time = h.mtime.map(minute).unwrap_or_else(|| "?".repeat(16));
    let sz = h.size.map(size).unwrap_or_default();
    let head = format!("{time}  {} {sz:>10}  ", h.file_type.ls_char());
    let room = width.saturating_sub(head.chars().count());
    if room < 8 {
        // Narrow: the path matters most.
        return keep_end(&safe(&h.shown), width);
    }
    format!("{head}{}", cut_middle(&safe(&h.shown), room))
}

/// `s` cut to `width` characters at its end (`glob (*.conf), or te…`).
fn cut_end(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Draw the find dialog.
pub fn draw_find(frame: &mut Frame<'_>, screen: &Screen, f: &FindDialog) {
    let area = area(screen);
    frame.render_widget(Clear, area);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(
            format!(" {} ", safe(&s::find_title(&f.volume_name))),
            style::key(),
        ))
        .title_bottom(Line::from(format!(" {} ", s::FOOTER_FIND)).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let width = usize::from(inner.width);
    let label_w = s::FIND_LABELS[0].chars().count();
    let field_w = width.saturating_sub(label_w + 1).clamp(1, 24);
    let mut cursor = None;
    for (i, (field, label)) in f.fields.iter().zip(s::FIND_LABELS).enumerate() {
        let y = inner.y + u16::try_from(i).unwrap_or(u16::MAX);
        if y >= inner.bottom() {
            break;
        }
        let active = f.focus == Focus::Field(i);
        // The text scrolled so the cursor stays visible.
        let chars: Vec<char> = field.text.chars().collect();
        let start = field
            .cursor
            .saturating_sub(field_w.saturating_sub(1))
            .min(chars.len());
        let shown: String = chars[start..chars.len().min(start + field_w)]
            .iter()
            .collect();
        let mut spans = vec![
            Span::styled(label.to_string(), style::key()),
            Span::styled(
                format!("{:<field_w$}", safe(&shown)),
                if active {
                    style::selected_unfocused()
                } else {
                    style::dim()
                },
            ),
        ];
        let hint_room = width.saturating_sub(label_w + field_w + 2);
        if hint_room > 10 {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(
                cut_end(s::FIND_FIELD_HINTS[i], hint_room),
                style::dim(),
            ));
        }
        frame.render_widget(
            Paragraph::new(Line::from(spans)),
            Rect::new(inner.x, y, inner.width, 1),
        );
        if active {
            let x =
                inner.x + u16::try_from(label_w + field.cursor.saturating_sub(start)).unwrap_or(0);
            cursor = Some(Position::new(x.min(inner.right().saturating_sub(1)), y));
        }
    }
    let status_y = inner.y + HEAD_ROWS - 1;
    if status_y < inner.bottom() {
        frame.render_widget(
            Paragraph::new(status_line(f)),
            Rect::new(inner.x, status_y, inner.width, 1),
        );
    }
    let list_y = inner.y + HEAD_ROWS;
    if list_y < inner.bottom() {
        let rows = usize::from(inner.bottom() - list_y);
        let mut lines = Vec::with_capacity(rows);
        if f.results.is_empty() && f.search.as_ref().is_some_and(|s| !s.running) {
            lines.push(Line::styled(s::FIND_NONE, style::dim()));
        }
        for (i, h) in f.results.iter().enumerate().skip(f.scroll).take(rows) {
            let text = result_text(h, width);
            let st = if i == f.selected {
                if f.focus == Focus::Results {
                    style::selected()
                } else {
                    style::selected_unfocused()
                }
            } else if h.file_type == crate::fs::FileType::Directory {
                style::dir()
            } else {
                ratatui::style::Style::new()
            };
            lines.push(Line::styled(text, st));
        }
        frame.render_widget(
            Paragraph::new(lines),
            Rect::new(inner.x, list_y, inner.width, inner.bottom() - list_y),
        );
    }
    if let Some(c) = cursor {
        frame.set_cursor_position(c);
    }
}
