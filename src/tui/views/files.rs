//! The right pane: the current directory as a table (name, size, time, mode).
//! Only the rows on screen are built, so a directory of 100,000 entries
//! draws as fast as one of ten.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap,
};

use super::style;
use crate::fs::FileType;
use crate::fs::path::join;
use crate::tui::app::{App, Focus, Right};
use crate::tui::files::{Entry, FilePane};
use crate::tui::format::{self, keep_end, safe};
use crate::tui::strings as s;

/// Widest right pane (inside its border) that gets dates without times.
const NARROW: u16 = 70;
/// Widest right pane (inside its border) without the mode column.
const VERY_NARROW: u16 = 60;

/// Draw the file pane.
pub fn draw_files(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let focused = app.focus == Focus::Files;
    let block = Block::new().borders(Borders::ALL).border_style(if focused {
        style::focused_border()
    } else {
        style::border()
    });
    match &app.right {
        Right::Empty => {
            let p = Paragraph::new(s::NOTHING_OPEN)
                .wrap(Wrap { trim: false })
                .block(block.title(format!(" {} ", s::FILES_TITLE)));
            frame.render_widget(p, area);
        }
        Right::Opening(v) => {
            let name = safe(&app.layout.volume(*v).name);
            let p = Paragraph::new(s::opening(&name)).block(block.title(format!(" {name} ")));
            frame.render_widget(p, area);
        }
        Right::Failed(v, why) => {
            let name = safe(&app.layout.volume(*v).name);
            let p = Paragraph::new(vec![
                Line::styled(s::cannot_open(&name), style::bad()),
                Line::from(""),
                Line::from(safe(why)),
            ])
            .wrap(Wrap { trim: false })
            .block(block.title(format!(" {name} ")));
            frame.render_widget(p, area);
        }
        Right::Browsing(pane) => draw_pane(frame, area, app, pane, block, focused),
    }
}

fn draw_pane(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    pane: &FilePane,
    block: Block<'_>,
    focused: bool,
) {
    let volume = safe(&app.layout.volume(pane.volume).name);
    let inner_w = area.width.saturating_sub(2);
    let path = crate::text::escape(&pane.path);
    let title_room = usize::from(inner_w.saturating_sub(16)).max(8);
    let title = keep_end(&format!("{volume}:{path}"), title_room);
    let mut block = block.title(Span::styled(format!(" {} ", safe(&title)), style::key()));
    let counter = if let Some(l) = &pane.loading {
        s::reading(l.count)
    } else if pane.filter.text.is_empty() {
        format!("{}", pane.entries.len())
    } else {
        format!("{}/{}", pane.visible.len(), pane.entries.len())
    };
    block = block.title(Line::from(format!(" {counter} ")).right_aligned());
    if pane.editing_filter || !pane.filter.text.is_empty() {
        let mut spans = vec![
            Span::styled(" / ", style::key()),
            Span::raw(safe(&pane.filter.text)),
        ];
        if pane.editing_filter {
            spans.push(Span::styled("▏", style::key()));
        }
        spans.push(Span::raw(" "));
        block = block.title_bottom(Line::from(spans));
    }
    if !pane.loaded {
        let text = match (&pane.error, &pane.loading) {
            (Some(e), _) => Line::styled(safe(e), style::bad()),
            (None, Some(l)) => Line::from(s::reading(l.count)),
            (None, None) => Line::from(""),
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
            area,
        );
        return;
    }
    let narrow = inner_w < NARROW;
    let show_mode = inner_w >= VERY_NARROW;
    let time_w: u16 = if narrow { 10 } else { 16 };
    let rows_h = usize::from(area.height.saturating_sub(3));
    let end = (pane.offset + rows_h).min(pane.visible.len());
    let rows: Vec<Row<'static>> = pane.visible[pane.offset.min(end)..end]
        .iter()
        .filter_map(|&i| pane.entries.get(i))
        .map(|e| {
            let marked = app.marks.contains(pane.volume, &join(&pane.path, &e.name));
            row(e, marked, narrow, show_mode)
        })
        .collect();
    let mut titles = vec![
        Cell::from(""),
        Cell::from(s::COL_NAME),
        Cell::from(Line::from(s::COL_SIZE).right_aligned()),
        Cell::from(if narrow { s::COL_DATE } else { s::COL_MODIFIED }),
    ];
    let mut widths = vec![
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(time_w),
    ];
    if show_mode {
        titles.push(Cell::from(s::COL_MODE));
        widths.push(Constraint::Length(10));
    }
    let header = Row::new(titles).style(style::key());
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(if focused {
            style::selected()
        } else {
            style::selected_unfocused()
        })
        .highlight_symbol(">")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default();
    if !pane.visible.is_empty() {
        state.select(Some(pane.selected.saturating_sub(pane.offset)));
    }
    frame.render_stateful_widget(table, area, &mut state);
    if pane.visible.is_empty() {
        let msg = if pane.entries.is_empty() {
            s::EMPTY_DIR
        } else {
            s::NO_MATCH
        };
        let r = Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1);
        if area.height > 3 {
            frame.render_widget(Paragraph::new(Span::styled(msg, style::dim())), r);
        }
    }
}

fn row(e: &Entry, marked: bool, narrow: bool, show_mode: bool) -> Row<'static> {
    let ft = e.file_type();
    let flags = format!(
        "{}{}",
        if marked { s::MARK_SIGN } else { " " },
        if e.suspect.is_some() {
            s::SUSPECT_SIGN
        } else if e.error.is_some() {
            s::ERROR_SIGN
        } else {
            " "
        }
    );
    let name_style = if e.suspect.is_some() || e.error.is_some() {
        style::bad()
    } else {
        match ft {
            FileType::Directory => style::dir(),
            FileType::Symlink => style::link(),
            _ => Style::new(),
        }
    };
    let mut name = vec![Span::styled(safe(&e.shown), name_style)];
    if ft == FileType::Directory {
        name.push(Span::styled("/", name_style));
    }
    if let Some(t) = &e.target_shown {
        name.push(Span::styled(
            format!(" {} {}", s::ARROW, safe(t)),
            name_style,
        ));
    }
    let (size, time, mode) = match &e.meta {
        Some(m) => (
            if ft == FileType::Directory {
                String::new()
            } else {
                format::size(m.size)
            },
            if narrow {
                format::day(m.mtime)
            } else {
                format::minute(m.mtime)
            },
            m.mode_string(),
        ),
        None => (String::new(), String::new(), s::UNKNOWN_MODE.to_string()),
    };
    let mut cells = vec![
        Cell::from(Span::styled(
            flags,
            if marked {
                style::marked()
            } else {
                style::bad()
            },
        )),
        Cell::from(Line::from(name)),
        Cell::from(Line::from(size).right_aligned()),
        Cell::from(time),
    ];
    if show_mode {
        cells.push(Cell::from(mode));
    }
    let mut r = Row::new(cells);
    if marked {
        r = r.style(style::marked());
    }
    r
}
