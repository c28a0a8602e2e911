//! The help overlay (`?`): every key of every context, made from the keymap.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::layout::Screen;
use super::style;
use super::window::draw_window;
use crate::tui::keymap::{Context, Keymap};
use crate::tui::strings as s;

/// The help's lines.
pub fn help_lines(keymap: &Keymap) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for ctx in Context::ALL {
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::styled(
            s::context_title(ctx).to_string(),
            style::key(),
        ));
        for b in keymap.in_context(ctx) {
            let keys: Vec<String> = b.keys.iter().map(|k| k.to_string()).collect();
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", keys.join(" ")), style::key()),
                Span::raw(s::action_help(ctx, b.action).to_string()),
            ]));
        }
        if ctx == Context::Edit {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", s::ANY_CHARACTER), style::key()),
                Span::raw(s::TYPE_CHARACTER),
            ]));
        }
    }
    lines.push(Line::from(""));
    for l in s::HELP_NOTES {
        lines.push(Line::styled(*l, style::dim()));
    }
    lines
}

/// Draw the help overlay.
pub fn draw_help(frame: &mut Frame<'_>, screen: &Screen, keymap: &Keymap, scroll: usize) {
    draw_window(
        frame,
        screen.big_window(),
        s::HELP_TITLE,
        help_lines(keymap),
        scroll,
        s::FOOTER_CLOSE_SCROLL,
    );
}
