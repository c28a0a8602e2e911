//! Where each part of the screen goes, for a terminal size. Used by the
//! views to draw and by the app to know how many rows a page has.

use ratatui::layout::{Constraint, Layout, Rect};

/// The parts of the main screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    /// The header line (filesystem warnings).
    pub header: Rect,
    /// The layer tree (with its border).
    pub tree: Rect,
    /// Facts about the selected layer (with its border).
    pub info: Rect,
    /// The file list (with its border).
    pub files: Rect,
    /// The two status lines.
    pub status: Rect,
    /// The whole terminal.
    pub all: Rect,
}

/// Narrowest and widest layer pane.
const LEFT_MIN: u16 = 26;
const LEFT_MAX: u16 = 44;

impl Screen {
    /// The parts for a terminal of `area`.
    pub fn new(area: Rect) -> Screen {
        let [header, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(2),
        ])
        .areas(area);
        let left_w =
            (area.width.saturating_mul(35) / 100).clamp(LEFT_MIN.min(area.width / 2), LEFT_MAX);
        let [left, files] =
            Layout::horizontal([Constraint::Length(left_w), Constraint::Min(10)]).areas(body);
        let info_h = match body.height {
            0..=12 => 0,
            13..=24 => 7,
            _ => 10,
        };
        let [tree, info] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(info_h)]).areas(left);
        Screen {
            header,
            tree,
            info,
            files,
            status,
            all: area,
        }
    }

    /// Rows of entries the file list shows (border and column titles taken off).
    pub fn files_rows(&self) -> usize {
        usize::from(self.files.height.saturating_sub(3))
    }

    /// Rows the layer tree shows.
    pub fn tree_rows(&self) -> usize {
        usize::from(self.tree.height.saturating_sub(2))
    }

    /// The area of a centred window `w` × `h` (shrunk to fit).
    pub fn centered(&self, w: u16, h: u16) -> Rect {
        let w = w.min(self.all.width.saturating_sub(2)).max(1);
        let h = h.min(self.all.height.saturating_sub(2)).max(1);
        Rect::new(
            self.all.x + (self.all.width.saturating_sub(w)) / 2,
            self.all.y + (self.all.height.saturating_sub(h)) / 2,
            w,
            h,
        )
    }

    /// The area of a large window (help, details, summaries).
    pub fn big_window(&self) -> Rect {
        self.centered(
            self.all.width.saturating_sub(4).min(100),
            self.all.height.saturating_sub(2),
        )
    }

    /// Lines of text a large window shows (for page scrolling).
    pub fn dialog_rows(&self) -> usize {
        usize::from(self.big_window().height.saturating_sub(3)).max(1)
    }
}
