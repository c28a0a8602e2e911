//! The file viewer (Enter, `F3` or `v` on a file): a full-screen pager over
//! [`crate::ops::pager::Pager`], with `/` search run as a job (progress,
//! Esc cancels), `n`/`N`, wrap (`w`) and hex (`x`). The page shown is
//! computed here after each action or job result ([`ViewerDialog::refresh`]),
//! so drawing ([`crate::tui::views::viewer`]) reads nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Ctx, Outcome};
use crate::ops::pager::search::{Found, Outcome as SearchOutcome, Query};
use crate::ops::pager::source::Opened;
use crate::ops::pager::{Mode, Pager, Row};
use crate::tui::action::Action;
use crate::tui::event::Effect;
use crate::tui::strings as s;
use crate::tui::text_field::TextField;

/// A search running on its job thread.
#[derive(Debug, Clone)]
pub struct RunningSearch {
    /// Its request number.
    pub req: u64,
    /// Set to stop it.
    pub cancel: Arc<AtomicBool>,
    /// Bytes searched so far.
    pub done: u64,
    /// Bytes to search.
    pub total: u64,
    /// Forwards (`/`, `n`) or backwards (`N`).
    pub forward: bool,
}

/// The viewer's state.
pub struct ViewerDialog {
    /// Request number of the open job.
    pub req: u64,
    /// The file's guest path, escaped.
    pub title: String,
    /// The file's size in the guest (known once opened).
    pub size: Option<u64>,
    /// The pager, once the file is open.
    pub pager: Option<Pager>,
    /// Why the file cannot be shown.
    pub error: Option<String>,
    /// Something said when it opened (no journalctl on the host).
    pub note: Option<String>,
    /// Stops the decompression (or journalctl) when the viewer closes.
    pub cancel: Arc<AtomicBool>,
    /// The search pattern being typed (`/`).
    pub typing: Option<TextField>,
    /// The last pattern searched.
    pub pattern: String,
    /// The search running.
    pub search: Option<RunningSearch>,
    /// The outcome of the last search or key (not found, stopped).
    pub message: Option<String>,
    /// Rows and columns of the text area, as last drawn.
    pub area: (usize, usize),
    /// Width of the line-number column (0 in hex).
    pub gutter: usize,
    /// The rows shown.
    pub rows: Vec<Row>,
}

impl ViewerDialog {
    /// A viewer waiting for the file at `title` to open (request `req`).
    pub fn new(req: u64, title: String, cancel: Arc<AtomicBool>) -> ViewerDialog {
        ViewerDialog {
            req,
            title,
            size: None,
            pager: None,
            error: None,
            note: None,
            cancel,
            typing: None,
            pattern: String::new(),
            search: None,
            message: None,
            area: (1, 1),
            gutter: 0,
            rows: Vec::new(),
        }
    }

    /// The text area of a terminal of `size` (columns, rows): all rows but
    /// the title and the status line.
    pub fn text_area(size: (u16, u16)) -> (usize, usize) {
        (
            usize::from(size.1.saturating_sub(2)).max(1),
            usize::from(size.0).max(1),
        )
    }

    /// The file opened (or not).
    pub fn opened(&mut self, result: Result<Box<Opened>, String>) {
        match result {
            Ok(o) => {
                self.title = o.path.clone();
                self.size = Some(o.size);
                self.note = o.note.clone();
                let mut p = Pager::new(o.content.clone(), o.format);
                if o.hex {
                    p.toggle_hex(self.area.1);
                }
                self.pager = Some(p);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// More decompressed bytes arrived.
    pub fn grew(&mut self) {
        if let Some(p) = &mut self.pager {
            p.forget_window();
            p.sniff();
        }
    }

    /// A search made progress.
    pub fn search_progress(&mut self, req: u64, done: u64, total: u64) {
        if let Some(r) = &mut self.search
            && r.req == req
        {
            r.done = done;
            r.total = total;
        }
    }

    /// A search ended.
    pub fn search_done(&mut self, req: u64, outcome: SearchOutcome) {
        if self.search.as_ref().is_none_or(|r| r.req != req) {
            return;
        }
        let forward = self.search.take().is_some_and(|r| r.forward);
        let width = self.text_width();
        let Some(p) = &mut self.pager else { return };
        match outcome {
            SearchOutcome::Found(Found { offset, line }) => {
                p.hit = Some((offset, self.pattern.len() as u64));
                p.goto(offset, line, width);
                self.message = None;
            }
            SearchOutcome::NotFound => {
                self.message = Some(s::viewer_not_found(&self.pattern, forward));
            }
            SearchOutcome::Cancelled => self.message = Some(s::VIEWER_SEARCH_STOPPED.into()),
            SearchOutcome::Failed(e) => self.message = Some(e),
        }
    }

    fn text_width(&self) -> usize {
        self.area.1.saturating_sub(self.gutter).max(1)
    }

    /// Compute the rows shown for a terminal of `size`.
    pub fn refresh(&mut self, size: (u16, u16)) {
        let (rows, cols) = ViewerDialog::text_area(size);
        self.area = (rows, cols);
        let Some(p) = &mut self.pager else {
            self.rows.clear();
            return;
        };
        self.gutter = match p.mode {
            Mode::Hex => 0,
            // Room for the numbers of this page, at least 4 digits, and a space;
            // none on very narrow terminals.
            Mode::Text if cols < 30 => 0,
            Mode::Text => {
                let last = p.top_line().unwrap_or(1).saturating_add(rows as u64);
                last.to_string().len().max(4) + 1
            }
        };
        let width = cols.saturating_sub(self.gutter).max(1);
        self.rows = p.page(rows, width);
    }

    /// Take an action (keys are read in [`crate::tui::keymap::Context::Viewer`],
    /// or [`crate::tui::keymap::Context::Edit`] while a pattern is typed).
    pub fn update(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        if let Some(field) = &mut self.typing {
            if field.edit(action) {
                return Outcome::Stay;
            }
            match action {
                Action::Confirm => {
                    let text = field.text.clone();
                    self.typing = None;
                    if !text.is_empty() {
                        self.pattern = text;
                    }
                    if let Some(p) = &mut self.pager {
                        p.hit = None;
                    }
                    self.start_search(true, ctx);
                }
                Action::Cancel => self.typing = None,
                Action::Quit => return Outcome::CloseAllAndQuit,
                _ => {}
            }
            return Outcome::Stay;
        }
        self.message = None;
        let (rows, _) = self.area;
        let width = self.text_width();
        match action {
            Action::Cancel if self.search.is_some() => {
                if let Some(r) = &self.search {
                    r.cancel.store(true, Ordering::Relaxed);
                }
                return Outcome::Stay;
            }
            Action::Cancel => {
                self.stop();
                return Outcome::Close;
            }
            Action::Quit => {
                self.stop();
                return Outcome::CloseAllAndQuit;
            }
            Action::ToggleHelp => return Outcome::Help,
            Action::FilterStart => {
                self.typing = Some(TextField::default());
                return Outcome::Stay;
            }
            Action::SearchNext | Action::SearchPrev => {
                if self.pattern.is_empty() {
                    self.message = Some(s::VIEWER_NO_PATTERN.into());
                } else {
                    self.start_search(*action == Action::SearchNext, ctx);
                }
                return Outcome::Stay;
            }
            _ => {}
        }
        let Some(p) = &mut self.pager else {
            return Outcome::Stay;
        };
        match action {
            Action::MoveDown => p.down(1, rows, width),
            Action::MoveUp => p.up(1, width),
            Action::PageDown => p.down(rows.saturating_sub(1).max(1), rows, width),
            Action::PageUp => p.up(rows.saturating_sub(1).max(1), width),
            Action::Home => p.home(),
            Action::End => p.end(rows, width),
            Action::ToggleWrap => p.toggle_wrap(),
            Action::ToggleHex => p.toggle_hex(width),
            Action::CursorRight if !p.wrap => p.hscroll = p.hscroll.saturating_add(8),
            Action::CursorLeft if !p.wrap => p.hscroll = p.hscroll.saturating_sub(8),
            _ => {}
        }
        Outcome::Stay
    }

    fn start_search(&mut self, forward: bool, ctx: &mut Ctx<'_>) {
        let Some(p) = &self.pager else { return };
        if self.pattern.is_empty() {
            return;
        }
        if let Some(r) = self.search.take() {
            r.cancel.store(true, Ordering::Relaxed);
        }
        let (from, base) = p.search_from(forward);
        let req = ctx.next_req();
        let cancel = Arc::new(AtomicBool::new(false));
        self.search = Some(RunningSearch {
            req,
            cancel: Arc::clone(&cancel),
            done: 0,
            total: 0,
            forward,
        });
        ctx.effects.push(Effect::ViewerSearch {
            req,
            content: p.content().clone(),
            query: Query {
                pattern: self.pattern.as_bytes().to_vec(),
                from,
                forward,
                base,
            },
            cancel,
        });
    }

    /// Stop the jobs working for this viewer (it closes).
    pub fn stop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(r) = &self.search {
            r.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// What the status line says of the position: percent, line, mode.
    pub fn position(&self) -> String {
        let Some(p) = &self.pager else {
            return String::new();
        };
        let line = match (p.mode, p.top_line()) {
            (Mode::Hex, _) => format!("{:#x}", p.top()),
            (Mode::Text, Some(n)) => s::viewer_line(&n.to_string()),
            (Mode::Text, None) => s::viewer_line("?"),
        };
        let mut mode = match p.mode {
            Mode::Text => "text".to_string(),
            Mode::Hex => "hex".to_string(),
        };
        if p.format != crate::ops::pager::Format::Plain {
            mode = s::viewer_decoded(&mode, p.format.name());
        }
        if !p.wrap && p.mode == Mode::Text {
            mode.push_str(s::VIEWER_NOWRAP);
        }
        format!("{}%  {line}  {mode}", p.percent())
    }

    /// What the status line says of the work under way or its end
    /// (decompressing, searching, stopped early).
    pub fn activity(&self) -> Option<String> {
        if let Some(r) = &self.search {
            return Some(s::viewer_searching(
                &self.pattern,
                r.done,
                r.total,
                &crate::tui::format::size(r.done),
            ));
        }
        if let Some(m) = &self.message {
            return Some(m.clone());
        }
        let p = self.pager.as_ref()?;
        if let crate::ops::pager::Content::Memory(g) = p.content() {
            let got = crate::tui::format::size(g.len());
            if !g.done() {
                return Some(s::viewer_decoding(p.format.name(), &got));
            }
            if let Some(e) = g.error() {
                return Some(crate::tui::format::safe(&e));
            }
        }
        self.note.clone()
    }
}
