//! The restore dialog (`r` on a symlink): the link and what is wrong with
//! it, the ranked candidates with their reasons (↑/↓ and Enter choose), the
//! plan for the chosen one (the bytes to write, the undo file) or why it
//! cannot be written, and `y` to write it.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::layout::Screen;
use super::style;
use super::window::{draw_window, field, plain};
use crate::text::escape_str;
use crate::tui::dialogs::RestoreDialog;
use crate::tui::format::safe;
use crate::tui::strings as s;

/// The dialog's lines, and the index of the highlighted candidate's line.
pub fn restore_lines(r: &RestoreDialog) -> (Vec<Line<'static>>, Option<usize>) {
    let mut lines = vec![field(s::F_LINK, &r.path), field(s::F_TARGET, &r.target)];
    if r.problems.is_empty() && !r.analyzing {
        lines.push(plain(s::RESTORE_NO_PROBLEM));
    }
    for p in &r.problems {
        lines.push(Line::styled(
            format!("{} {}", s::SUSPECT_SIGN, safe(p)),
            style::bad(),
        ));
    }
    lines.push(Line::from(""));
    let mut highlighted = None;
    if r.analyzing {
        lines.push(Line::styled(s::RESTORE_LOOKING, style::dim()));
        return (lines, None);
    }
    if let Some(e) = &r.analysis_error {
        lines.push(Line::styled(s::cannot_analyze(&safe(e)), style::bad()));
        return (lines, None);
    }
    if let Some(field) = &r.typing {
        lines.push(Line::styled(s::RESTORE_TYPE_TARGET, style::key()));
        let (before, after) = field.text.split_at(field.cursor_byte());
        lines.push(Line::from(vec![
            Span::raw(format!("  {}", safe(before))),
            Span::styled("▏", style::key()),
            Span::raw(safe(after)),
        ]));
        lines.push(Line::from(""));
    }
    let typing_at = r.typing.as_ref().map(|_| lines.len() - 2);
    if r.candidates.is_empty() {
        if r.typing.is_none() {
            lines.push(plain(s::RESTORE_NO_CANDIDATE));
        }
        return (lines, typing_at);
    }
    lines.push(Line::styled(s::RESTORE_CANDIDATES, style::key()));
    for (i, c) in r.candidates.iter().enumerate() {
        let sign = if r.chosen == Some(i) {
            s::CHOSEN_SIGN
        } else {
            " "
        };
        let mut text = format!("{sign} {}", safe(&c.shown));
        if c.guess {
            text.push_str(&format!(" {}", s::GUESS));
        }
        if c.current {
            text.push_str(&format!(" {}", s::CURRENT));
        }
        let st = if i == r.selected {
            style::selected()
        } else {
            style::key()
        };
        if i == r.selected && typing_at.is_none() {
            highlighted = Some(lines.len());
        }
        lines.push(Line::from(Span::styled(text, st)));
        lines.push(Line::styled(
            format!("    {}", safe(&c.reasons.join("; "))),
            style::dim(),
        ));
    }
    lines.push(Line::from(""));
    if let Some(i) = r.chosen
        && let Some(c) = r.candidates.get(i)
    {
        lines.push(Line::styled(s::plan_for(&safe(&c.shown)), style::key()));
    }
    if r.planning {
        lines.push(Line::styled(s::PLANNING, style::dim()));
    } else if let Some(e) = &r.plan_error {
        lines.push(Line::styled(s::cannot_apply(&safe(e)), style::bad()));
    } else if let Some(p) = &r.plan {
        lines.push(plain(&format!("  {}", p.how())));
        for c in &p.changes {
            lines.push(plain(&format!(
                "  {} ({} bytes at volume byte {}): {}",
                c.what, c.len, c.volume_offset, c.fields
            )));
        }
        for w in &p.writes {
            let ranges: Vec<String> = w
                .writes
                .iter()
                .map(|b| format!("{}+{}", b.offset, b.new.len()))
                .collect();
            // The file name, as the status bar names the image; a network
            // disk's URI.
            let name = w.shown_image();
            lines.push(plain(&format!(
                "  {} bytes of {} (at {})",
                w.bytes(),
                escape_str(&name),
                ranges.join(", ")
            )));
        }
        lines.push(plain(&format!("  {}", s::undo_under(&r.undo_dir))));
        if r.force {
            lines.push(Line::styled(s::FORCED, style::warn()));
        }
        for w in &p.warnings {
            let w = w.replace(s::CLI_FORCED_NOTE, s::TUI_FORCED_NOTE);
            lines.push(Line::styled(format!("  ! {}", safe(&w)), style::warn()));
        }
        if p.can_apply() {
            lines.push(Line::styled(s::RESTORE_READY, style::warn()));
        }
        for b in &p.blockers {
            // The repair speaks of the command's --force; here `f` does it.
            let b = b.replace(s::CLI_FORCE_HINT, s::TUI_FORCE_HINT);
            lines.push(Line::styled(s::cannot_apply(&safe(&b)), style::bad()));
        }
    }
    (lines, typing_at.or(highlighted))
}

/// The first row to show so that row `line` (of `lines`, wrapped at
/// `width`) is inside a window `height` rows high, starting from `scroll`.
pub fn keep_visible(
    lines: &[Line<'_>],
    width: u16,
    height: u16,
    line: Option<usize>,
    scroll: usize,
) -> usize {
    let Some(line) = line else { return scroll };
    let w = usize::from(width.max(1));
    let rows = |l: &Line<'_>| l.width().div_ceil(w).max(1);
    let top: usize = lines.iter().take(line).map(rows).sum();
    let bottom = top + lines.get(line).map_or(1, rows);
    let h = usize::from(height.max(1));
    if top < scroll {
        top
    } else if bottom > scroll + h {
        bottom - h
    } else {
        scroll
    }
}

/// Draw a big window of `lines` scrolled so that the `highlighted` line
/// shows (the restore dialog, the doctor view).
pub fn draw_scrolled_window(
    frame: &mut Frame<'_>,
    screen: &Screen,
    title: &str,
    footer: &str,
    lines: Vec<Line<'static>>,
    highlighted: Option<usize>,
    scroll: usize,
) {
    let area = screen.big_window();
    let scroll = keep_visible(
        &lines,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
        highlighted,
        scroll,
    );
    draw_window(frame, area, title, lines, scroll, footer);
}

/// Draw the restore dialog.
pub fn draw_restore(frame: &mut Frame<'_>, screen: &Screen, r: &RestoreDialog) {
    let (lines, highlighted) = restore_lines(r);
    draw_scrolled_window(
        frame,
        screen,
        s::RESTORE_TITLE,
        if r.typing.is_some() {
            s::FOOTER_TYPE_TARGET
        } else {
            s::FOOTER_RESTORE
        },
        lines,
        highlighted,
        r.scroll,
    );
}
