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
use crate::text::columns;
use crate::tui::app::{App, Focus, Right};
use crate::tui::files::{Entry, FilePane};
use crate::tui::format::{self, cut_middle, keep_end, safe};
use crate::tui::strings as s;

/// Fewest columns the name keeps before an optional column is shown.
const NAME_MIN: u16 = 16;
/// The size column: the longest size (`1023.9 KiB`), never cut.
const SIZE_W: u16 = 10;
/// The date column (`2013-02-22`).
const DATE_W: u16 = 10;
/// The time column (`2013-02-22 10:15`).
const TIME_W: u16 = 16;
/// The mode column (`-rwxr-xr-x`).
const MODE_W: u16 = 10;

/// Which columns a file list `inner` columns wide shows, and how wide the
/// name is. The name comes first; then the size (while the name keeps
/// 16 columns), the date (a little more), the mode and the time of day
/// (twice as much). A column is shown
/// whole or not at all, so no number is ever cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// Width of the name column.
    pub name: u16,
    /// The size column is shown.
    pub size: bool,
    /// The date column is shown (`Some(true)`: with the time of day).
    pub time: Option<bool>,
    /// The mode column is shown.
    pub mode: bool,
}

impl Columns {
    /// The columns for a list `inner` columns wide.
    pub fn fit(inner: u16) -> Columns {
        // The highlight sign, the flags column and the space after it.
        let mut name = inner.saturating_sub(4);
        // `w` more columns (a new column's width and the space before it),
        // if the name keeps `keep`.
        let mut take = |w: u16, keep: u16| {
            if name >= keep + w {
                name -= w;
                true
            } else {
                false
            }
        };
        let size = take(SIZE_W + 1, NAME_MIN);
        let date = size && take(DATE_W + 1, NAME_MIN + 4);
        let mode = date && take(MODE_W + 1, NAME_MIN * 2);
        let time = date && take(TIME_W - DATE_W, NAME_MIN * 2);
        Columns {
            name,
            size,
            time: date.then_some(time),
            mode,
        }
    }
}

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
            let name = safe(&app.volume_label(*v));
            let p = Paragraph::new(s::opening(&name)).block(block.title(format!(" {name} ")));
            frame.render_widget(p, area);
        }
        Right::Failed(v, why) => {
            let name = safe(&app.volume_label(*v));
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
    let volume = safe(&app.volume_label(pane.tree));
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
    if let Some(field) = &pane.goto {
        block = block.title_bottom(Line::from(vec![
            Span::styled(format!(" {} ", s::GOTO_PROMPT), style::key()),
            Span::raw(safe(&field.text)),
            Span::styled("▏", style::key()),
            Span::raw(" "),
        ]));
    } else if pane.editing_filter || !pane.filter.text.is_empty() {
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
    let cols = Columns::fit(inner_w);
    let rows_h = usize::from(area.height.saturating_sub(3));
    let end = (pane.offset + rows_h).min(pane.visible.len());
    let rows: Vec<Row<'static>> = pane.visible[pane.offset.min(end)..end]
        .iter()
        .filter_map(|&i| pane.entries.get(i))
        .map(|e| {
            let marked = app.marks.contains(pane.tree, &join(&pane.path, &e.name));
            row(e, marked, cols)
        })
        .collect();
    let mut titles = vec![Cell::from(""), Cell::from(s::COL_NAME)];
    let mut widths = vec![Constraint::Length(2), Constraint::Length(cols.name)];
    if cols.size {
        titles.push(Cell::from(Line::from(s::COL_SIZE).right_aligned()));
        widths.push(Constraint::Length(SIZE_W));
    }
    if let Some(with_time) = cols.time {
        titles.push(Cell::from(if with_time {
            s::COL_MODIFIED
        } else {
            s::COL_DATE
        }));
        widths.push(Constraint::Length(if with_time { TIME_W } else { DATE_W }));
    }
    if cols.mode {
        titles.push(Cell::from(s::COL_MODE));
        widths.push(Constraint::Length(MODE_W));
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

/// The name cell's text: the name (a `/` after a directory), then a link's
/// `→ target`, in `width` columns. The name has priority: the target is cut
/// first (in the middle), then dropped, then the name is cut in the middle.
pub fn name_text(e: &Entry, width: usize) -> String {
    let name = safe(&e.shown);
    let dir = e.file_type() == FileType::Directory;
    let suffix = if dir { "/" } else { "" };
    let arrow = format!(" {} ", s::ARROW);
    let full = match (&e.target_shown, &e.mounted) {
        (Some(t), _) => format!("{name}{suffix}{arrow}{}", safe(t)),
        (None, Some(m)) => format!("{name}{suffix} {}", s::mounted_here(&safe(m))),
        (None, None) => format!("{name}{suffix}"),
    };
    if columns(&full) <= width {
        return full;
    }
    let name_w = columns(&name) + suffix.len();
    if let Some(t) = &e.target_shown
        && name_w + columns(&arrow) + TARGET_MIN <= width
    {
        let room = width - name_w - columns(&arrow);
        return format!("{name}{suffix}{arrow}{}", cut_middle(&safe(t), room));
    }
    format!(
        "{}{suffix}",
        cut_middle(&name, width.saturating_sub(suffix.len()))
    )
}

/// Fewest columns of a link's target worth showing after its name.
const TARGET_MIN: usize = 6;

fn row(e: &Entry, marked: bool, cols: Columns) -> Row<'static> {
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
    let name = Span::styled(name_text(e, usize::from(cols.name)), name_style);
    let (size, time, mode) = match &e.meta {
        Some(m) => (
            if ft == FileType::Directory {
                String::new()
            } else {
                format::size(m.size)
            },
            if cols.time == Some(true) {
                format::minute(m.mtime)
            } else {
                format::day(m.mtime)
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
    ];
    if cols.size {
        cells.push(Cell::from(Line::from(size).right_aligned()));
    }
    if cols.time.is_some() {
        cells.push(Cell::from(time));
    }
    if cols.mode {
        cells.push(Cell::from(mode));
    }
    let mut r = Row::new(cells);
    if marked {
        r = r.style(style::marked());
    }
    r
}
