//! The passphrase dialog of a locked LUKS volume: what is typed is never
//! shown, only one `*` per character.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::layout::Screen;
use super::style;
use super::window::{draw_window, plain};
use crate::tui::dialogs::PassphraseDialog;
use crate::tui::strings as s;

/// The stars shown for `n` characters (at most a line's worth).
pub fn stars(n: usize) -> String {
    "*".repeat(n.min(48))
}

/// Draw the dialog.
pub fn draw_passphrase(frame: &mut Frame<'_>, screen: &Screen, d: &PassphraseDialog) {
    let mut lines = vec![
        plain(&d.describe),
        Line::from(""),
        plain(s::PASSPHRASE_PROMPT),
        Line::from(vec![
            Span::raw("> "),
            Span::raw(stars(d.chars)),
            Span::styled("_", style::dim()),
        ]),
    ];
    if d.busy() {
        lines.push(plain(s::PASSPHRASE_TRYING));
    } else if let Some(e) = &d.error {
        let left = crate::layers::luks::MAX_ATTEMPTS.saturating_sub(d.failed);
        lines.push(Line::from(Span::styled(
            format!("{e} ({})", s::passphrase_tries_left(left)),
            style::bad(),
        )));
    }
    let h = u16::try_from(lines.len() + 4).unwrap_or(10);
    draw_window(
        frame,
        screen.centered(64, h),
        &s::passphrase_title(&d.volume_shown()),
        lines,
        0,
        s::FOOTER_PASSPHRASE,
    );
}
