//! The restore dialog (`r`). Until the repair lands (issue 5) it says what
//! will be offered; the hook for the repair is [`crate::tui::dialog::Dialog::Restore`].

use ratatui::Frame;
use ratatui::text::Line;

use super::layout::Screen;
use super::style;
use super::window::{draw_window, field, plain};
use crate::tui::dialog::RestoreDialog;
use crate::tui::format::safe;
use crate::tui::strings as s;

/// Draw the restore dialog.
pub fn draw_restore(frame: &mut Frame<'_>, screen: &Screen, r: &RestoreDialog) {
    let mut lines = vec![field(s::F_LINK, &r.path), field(s::F_TARGET, &r.target)];
    if r.problems.is_empty() {
        lines.push(plain(s::RESTORE_NO_PROBLEM));
    } else {
        for p in &r.problems {
            lines.push(Line::styled(
                format!("{} {}", s::SUSPECT_SIGN, safe(p)),
                style::bad(),
            ));
        }
    }
    lines.push(Line::from(""));
    for l in s::RESTORE_PENDING {
        lines.push(plain(l));
    }
    let area = screen.centered(74, u16::try_from(lines.len() + 4).unwrap_or(20));
    draw_window(
        frame,
        area,
        s::RESTORE_TITLE,
        lines,
        r.scroll,
        s::FOOTER_CLOSE,
    );
}
