//! `vmrescue` alone on a Proxmox host, in a terminal: pick a guest.
//!
//! The list of VMs and containers (the same lines `vmrescue` prints when
//! its output is not a terminal), the selected guest's disks below, ↑/↓ to
//! choose, Enter to open its disks in the browser, q or Esc to leave. The
//! keys are the browser's (the keymap's main context).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ratatui::Frame;
use ratatui::crossterm::event as ct;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState, Wrap};

use super::action::Action;
use super::format::safe;
use super::keymap::{Context, Key, Keymap};
use super::terminal;
use super::views::style;

/// One guest as the picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickRow {
    /// Its VMID.
    pub vmid: u32,
    /// VMID, type, name, status (escaped).
    pub cells: [String; 4],
    /// Its disks in a few words (`3 disks, 1 can be opened`).
    pub disks: String,
    /// Its disks and other facts, one per line (escaped).
    pub lines: Vec<String>,
    /// Why none of its disks can be opened, if so.
    pub unopenable: Option<String>,
}

/// What the operator chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picked {
    /// Open this guest's disks.
    Open(u32),
    /// Leave without opening anything.
    Quit,
}

/// The picker's state.
#[derive(Debug, Clone)]
pub struct Picker {
    /// The guests.
    pub rows: Vec<PickRow>,
    /// The highlighted row.
    pub selected: usize,
    /// Where the guests come from (`/etc/pve`), for the title.
    pub source: String,
    /// The last message (a guest that cannot be opened).
    pub message: Option<String>,
}

impl Picker {
    /// A picker over `rows`.
    pub fn new(rows: Vec<PickRow>, source: &str) -> Picker {
        Picker {
            rows,
            selected: 0,
            source: source.to_string(),
            message: None,
        }
    }

    /// Apply `action`; `page` is the number of list rows shown.
    pub fn update(&mut self, action: Action, page: usize) -> Option<Picked> {
        let last = self.rows.len().saturating_sub(1);
        let page = page.max(1);
        self.message = None;
        match action {
            Action::MoveUp => self.selected = self.selected.saturating_sub(1),
            Action::MoveDown => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(last),
            Action::Home => self.selected = 0,
            Action::End => self.selected = last,
            Action::Open => {
                let row = self.rows.get(self.selected)?;
                match &row.unopenable {
                    Some(why) => self.message = Some(why.clone()),
                    None => return Some(Picked::Open(row.vmid)),
                }
            }
            Action::Quit | Action::Cancel => return Some(Picked::Quit),
            _ => {}
        }
        None
    }
}

/// The list's and the details' areas, and the message line, in `area`.
fn areas(area: Rect) -> [Rect; 4] {
    let [title, list, details, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(8),
        Constraint::Length(1),
    ])
    .areas(area);
    [title, list, details, bottom]
}

/// Rows of the guest list at terminal size `area`.
pub fn page_rows(area: Rect) -> usize {
    usize::from(areas(area)[1].height.saturating_sub(3))
}

/// Draw the picker.
pub fn draw(frame: &mut Frame<'_>, p: &Picker) {
    let [title, list, details, bottom] = areas(frame.area());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" vmrescue ", style::key()),
            Span::raw(format!(
                " guests of this Proxmox host ({})",
                safe(&p.source)
            )),
        ])),
        title,
    );
    let header = Row::new(["VMID", "TYPE", "NAME", "STATUS", "DISKS"]).style(style::key());
    let rows: Vec<Row<'_>> = p
        .rows
        .iter()
        .map(|r| {
            let disks = r.disks.clone();
            let mut row = Row::new(vec![
                safe(&r.cells[0]),
                safe(&r.cells[1]),
                safe(&r.cells[2]),
                safe(&r.cells[3]),
                safe(&disks),
            ]);
            if r.unopenable.is_some() {
                row = row.style(style::dim());
            }
            row
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(4),
            Constraint::Length(24),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .row_highlight_style(style::selected())
    .block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(style::focused_border())
            .title(" Guests "),
    );
    let mut state = TableState::default().with_selected(Some(p.selected));
    frame.render_stateful_widget(table, list, &mut state);
    let lines: Vec<Line<'_>> = p
        .rows
        .get(p.selected)
        .map(|r| r.lines.iter().map(|l| Line::raw(safe(l))).collect())
        .unwrap_or_default();
    let name = p
        .rows
        .get(p.selected)
        .map(|r| format!(" {} {} {} ", r.cells[1], r.cells[0], r.cells[2]))
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(style::border())
                .title(safe(&name)),
        ),
        details,
    );
    let text = match &p.message {
        Some(m) => Line::styled(safe(m), style::bad()),
        None => Line::styled(super::strings::FOOTER_PICKER, style::dim()),
    };
    frame.render_widget(Paragraph::new(text), bottom);
}

/// Show the picker until the operator chooses. The terminal is restored
/// before this returns (the browser takes it over again if a guest was
/// chosen). SIGTERM, SIGHUP and SIGINT leave the picker as `q` does.
pub fn run(picker: Picker) -> anyhow::Result<Picked> {
    let mut picker = picker;
    terminal::install_panic_hook();
    let stop = Arc::new(AtomicBool::new(false));
    let mut ids = Vec::new();
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        ids.push(signal_hook::flag::register(sig, Arc::clone(&stop))?);
    }
    let result = (|| -> anyhow::Result<Picked> {
        let mut term = terminal::enter()?;
        let keymap = Keymap::builtin();
        loop {
            term.draw(|f| draw(f, &picker))?;
            if stop.load(Ordering::Relaxed) {
                return Ok(Picked::Quit);
            }
            if !ct::poll(Duration::from_millis(100))? {
                continue;
            }
            let ct::Event::Key(k) = ct::read()? else {
                continue;
            };
            if k.kind == ct::KeyEventKind::Release {
                continue;
            }
            let Some(action) =
                Key::from_event(&k).and_then(|key| keymap.lookup(Context::Main, key))
            else {
                continue;
            };
            let size = term.size()?;
            let page = page_rows(Rect::new(0, 0, size.width, size.height));
            if let Some(p) = picker.update(action, page) {
                return Ok(p);
            }
        }
    })();
    terminal::restore();
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result
}
