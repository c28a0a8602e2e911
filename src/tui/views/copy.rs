//! The copy dialog (`c`): destination (editable) and what will be copied.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::layout::Screen;
use super::style;
use crate::tui::dialogs::{CopySetup, IfExists};
use crate::tui::format::{safe, size};
use crate::tui::strings as s;

/// Draw the copy dialog.
pub fn draw_copy(frame: &mut Frame<'_>, screen: &Screen, c: &CopySetup) {
    let area = screen.centered(screen.all.width.saturating_sub(6).min(84), 15);
    frame.render_widget(Clear, area);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(format!(" {} ", s::COPY_TITLE), style::key()))
        .title_bottom(Line::from(format!(" {} ", s::FOOTER_COPY)).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let what = if c.sources == 1 {
        s::copy_one(&c.first, &c.volumes.join(", "))
    } else {
        s::copy_many(c.sources, &c.volumes.join(", "))
    };
    let mut lines = vec![Line::from(safe(&what)), Line::from("")];
    lines.push(Line::styled(s::DESTINATION, style::key()));
    // The field itself is drawn below, on the line after this one.
    lines.push(Line::from(""));
    if c.volumes.len() > 1 {
        lines.push(Line::styled(s::ONE_FOLDER_PER_VOLUME, style::dim()));
    } else {
        lines.push(Line::from(""));
    }
    if c.dest_entries > 0 {
        lines.push(Line::styled(
            s::dest_not_empty(c.dest_entries),
            style::warn(),
        ));
        let choice = |which: IfExists, text: String| {
            if c.if_exists == which {
                Span::styled(format!("[{text}]"), style::selected())
            } else {
                Span::styled(format!(" {text} "), style::dim())
            }
        };
        lines.push(Line::from(vec![
            choice(IfExists::Skip, s::EXISTING_SKIP.into()),
            Span::raw(" "),
            choice(IfExists::Overwrite, s::EXISTING_OVERWRITE.into()),
            Span::raw(" "),
            choice(
                IfExists::NewFolder,
                format!("{} {}", s::EXISTING_RENAME, safe(&c.new_folder)),
            ),
        ]));
    }
    match (&c.summary, &c.error) {
        (_, Some(e)) => lines.push(Line::styled(safe(e), style::bad())),
        (Some(p), None) => {
            lines.push(Line::from(s::plan_summary(
                p.files,
                &size(p.bytes),
                p.dirs,
                p.symlinks,
            )));
            if let Some((_, free)) = c.too_big() {
                lines.push(Line::styled(s::plan_too_big(&size(free)), style::warn()));
            }
            if p.skipped > 0 {
                lines.push(Line::styled(s::plan_skipped(p.skipped), style::warn()));
            }
            for pr in p.problems.iter().take(2) {
                lines.push(Line::styled(safe(pr), style::bad()));
            }
        }
        (None, None) => lines.push(Line::styled(s::COUNTING, style::dim())),
    }
    lines.push(Line::styled(s::COPY_RULES, style::dim()));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    // The destination field, scrolled so the cursor is visible.
    let field = Rect::new(
        inner.x,
        inner.y + 3,
        inner.width,
        1.min(inner.height.saturating_sub(3)),
    );
    if field.height == 0 {
        return;
    }
    let w = usize::from(field.width.saturating_sub(1)).max(1);
    let chars: Vec<char> = c.dest.text.chars().collect();
    let start = c.dest.cursor.saturating_sub(w - 1).min(chars.len());
    let shown: String = chars[start..chars.len().min(start + w)].iter().collect();
    let padded = format!("{:<w$}", safe(&shown));
    frame.render_widget(
        Paragraph::new(Span::styled(padded, style::selected_unfocused())),
        field,
    );
    let x = field.x + u16::try_from(c.dest.cursor - start).unwrap_or(0);
    frame.set_cursor_position(Position::new(
        x.min(field.right().saturating_sub(1)),
        field.y,
    ));
}
