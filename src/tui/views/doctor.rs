//! The doctor view (`!`): the guest's suspicious links, most urgent first,
//! each with what is wrong and the repair proposed (↑/↓ choose, Enter opens
//! its restore dialog), then the most recently changed files.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::layout::Screen;
use super::restore::draw_scrolled_window;
use super::style;
use super::window::plain;
use crate::text::{escape, format_time};
use crate::tui::dialogs::DoctorView;
use crate::tui::format::safe;
use crate::tui::strings as s;

/// The view's lines, and the index of the highlighted finding's line.
pub fn doctor_lines(d: &DoctorView) -> (Vec<Line<'static>>, Option<usize>) {
    let mut lines = Vec::new();
    let Some(report) = &d.report else {
        lines.push(Line::styled(s::DOCTOR_SCANNING, style::dim()));
        return (lines, None);
    };
    let volume = safe(&d.volume_name);
    let mut highlighted = None;
    if report.findings.is_empty() {
        lines.push(plain(&s::doctor_none(&volume)));
    } else {
        lines.push(Line::styled(
            s::doctor_found(report.findings.len(), &volume),
            style::key(),
        ));
    }
    for (i, f) in report.findings.iter().enumerate() {
        let Some(a) = f.relink() else { continue };
        lines.push(Line::from(""));
        if i == d.selected {
            highlighted = Some(lines.len());
        }
        lines.push(Line::from(Span::styled(
            format!(
                "{} {} → {}",
                s::SUSPECT_SIGN,
                safe(&escape(&a.link)),
                safe(&escape(&a.target))
            ),
            if i == d.selected {
                style::selected()
            } else {
                style::bad()
            },
        )));
        for p in &a.problems {
            lines.push(plain(&format!("    - {p}")));
        }
        match a.proposal() {
            Some(c) => lines.push(Line::styled(
                format!(
                    "    {}",
                    s::proposed(&escape(&c.target), c.guess, &c.reasons.join("; "))
                ),
                style::warn(),
            )),
            None => lines.push(Line::styled(
                format!("    {}", s::NO_PROPOSAL),
                style::dim(),
            )),
        }
    }
    if !report.recent.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(s::DOCTOR_RECENT, style::key()));
        for c in &report.recent {
            lines.push(plain(&format!(
                "  {}  {} {}",
                format_time(c.ctime.sec),
                c.file_type.ls_char(),
                escape(&c.path)
            )));
        }
    }
    (lines, highlighted)
}

/// Draw the doctor view.
pub fn draw_doctor(frame: &mut Frame<'_>, screen: &Screen, d: &DoctorView) {
    let (lines, highlighted) = doctor_lines(d);
    draw_scrolled_window(
        frame,
        screen,
        s::DOCTOR_TITLE,
        s::FOOTER_DOCTOR,
        lines,
        highlighted,
        d.scroll,
    );
}
