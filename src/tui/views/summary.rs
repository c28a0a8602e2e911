//! The end of a copy: what was copied, what was skipped or failed, and why.

use ratatui::Frame;
use ratatui::text::Line;

use super::layout::Screen;
use super::style;
use super::window::{draw_window, field, plain};
use crate::tui::copier::CopySummary;
use crate::tui::format::{duration, safe, size};
use crate::tui::strings as s;

/// The summary as lines.
pub fn summary_lines(c: &CopySummary) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if c.cancelled {
        out.push(Line::styled(s::SUMMARY_CANCELLED, style::warn()));
    }
    out.push(field(s::F_DESTINATION, &c.dest.display().to_string()));
    out.push(plain(&s::summary_counts(
        c.files,
        &size(c.bytes),
        c.dirs,
        c.symlinks,
        &duration(c.elapsed),
    )));
    if c.unchanged > 0 {
        out.push(plain(&s::summary_unchanged(c.unchanged)));
    }
    if c.failed.is_empty() && c.skipped.is_empty() {
        out.push(plain(s::SUMMARY_ALL_GOOD));
    }
    if !c.failed.is_empty() {
        out.push(Line::from(""));
        out.push(Line::styled(
            s::summary_failed(c.failed.len()),
            style::bad(),
        ));
        for (p, why) in &c.failed {
            out.push(plain(&if why.is_empty() {
                format!("  {p}")
            } else {
                format!("  {p}: {why}")
            }));
        }
    }
    if !c.skipped.is_empty() {
        out.push(Line::from(""));
        out.push(Line::styled(
            s::summary_skipped(c.skipped.len()),
            style::warn(),
        ));
        for (p, why) in &c.skipped {
            out.push(plain(&format!("  {}: {}", safe(p), safe(why))));
        }
    }
    out
}

/// Draw the summary.
pub fn draw_summary(frame: &mut Frame<'_>, screen: &Screen, c: &CopySummary, scroll: usize) {
    let lines = summary_lines(c);
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX).max(6);
    let area = screen.centered(screen.all.width.saturating_sub(6).min(90), h);
    draw_window(
        frame,
        area,
        s::SUMMARY_TITLE,
        lines,
        scroll,
        s::FOOTER_CLOSE_SCROLL,
    );
}
