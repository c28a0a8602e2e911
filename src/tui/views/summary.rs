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
    if c.failed_count == 0 && c.skipped_count == 0 {
        out.push(plain(s::SUMMARY_ALL_GOOD));
    }
    if c.failed_count > 0 {
        out.push(Line::from(""));
        out.push(Line::styled(
            s::summary_failed(c.failed_count),
            style::bad(),
        ));
        for (p, why) in &c.failed {
            out.push(plain(&if why.is_empty() {
                format!("  {p}")
            } else {
                format!("  {p}: {why}")
            }));
        }
        not_listed(&mut out, c.failed_count, c.failed.len());
    }
    if c.skipped_count > 0 {
        out.push(Line::from(""));
        out.push(Line::styled(
            s::summary_skipped(c.skipped_count),
            style::warn(),
        ));
        for (p, why) in &c.skipped {
            out.push(plain(&format!("  {}: {}", safe(p), safe(why))));
        }
        not_listed(&mut out, c.skipped_count, c.skipped.len());
    }
    out
}

/// The line that says a list was cut at its cap, when it was.
fn not_listed(out: &mut Vec<Line<'static>>, count: u64, listed: usize) {
    let more = count.saturating_sub(listed as u64);
    if more > 0 {
        out.push(plain(&s::summary_not_listed(more, listed)));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(c: &CopySummary) -> Vec<String> {
        summary_lines(c).iter().map(ToString::to_string).collect()
    }

    /// Past the copy's cap the lists hold the first entries; the counts and
    /// a last line say how many more there were.
    #[test]
    fn counts_beyond_the_listed_entries_are_said() {
        let mut c = CopySummary::default();
        for i in 0..3 {
            c.fail(format!("/d/f{i}"), "No space left on device".into());
        }
        c.failed_count = 12_003;
        c.skip("/dev/sda".into(), "a device node".into());
        let lines = text(&c);
        assert!(lines.contains(&"Failed (12003):".to_string()), "{lines:?}");
        assert!(
            lines.contains(&"  ... and 12000 more (the first 3 are listed)".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"Skipped (1):".to_string()), "{lines:?}");
        assert_eq!(lines.iter().filter(|l| l.contains("more (")).count(), 1);
        assert!(!c.is_clean());
        assert!(CopySummary::default().is_clean());
    }
}
