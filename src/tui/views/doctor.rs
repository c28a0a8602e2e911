//! The doctor view (`!`): findings grouped by what they break, most urgent
//! first, each with its evidence and the repair proposed (↑/↓ choose, Enter
//! goes to the file, `r` repairs a link, `v` views the file), then what was
//! checked, the package manager's last transactions and the newest changes.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::layout::Screen;
use super::restore::draw_scrolled_window;
use super::style;
use super::window::plain;
use crate::doctor::{Finding, Repair, Severity};
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
    let mut heading = None;
    for (i, f) in report.findings.iter().enumerate() {
        let h = f.impact.heading();
        if heading.as_ref() != Some(&h) {
            lines.push(Line::from(""));
            lines.push(Line::styled(safe(&h), style::key()));
            heading = Some(h);
        }
        if i == d.selected {
            highlighted = Some(lines.len());
        }
        finding_lines(f, i == d.selected, &mut lines);
    }
    if !report.checked.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(s::DOCTOR_CHECKED, style::key()));
        for c in &report.checked {
            lines.push(Line::styled(
                format!("  {}: {}", c.check.as_str(), safe(&c.summary)),
                style::dim(),
            ));
        }
    }
    if !report.history.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(s::DOCTOR_HISTORY, style::key()));
        for h in &report.history {
            lines.push(plain(&format!("  {}  {}", safe(&h.when), safe(&h.what))));
        }
    }
    if !report.recent.is_empty() {
        lines.push(Line::from(""));
        let title = if report.windows.is_some() {
            s::DOCTOR_RECENT_WINDOWS
        } else {
            s::DOCTOR_RECENT
        };
        lines.push(Line::styled(title, style::key()));
        for c in &report.recent {
            lines.push(plain(&format!(
                "{} {}  {} {}",
                if c.pointed { '*' } else { ' ' },
                format_time(c.ctime.sec),
                c.file_type.ls_char(),
                safe(&escape(&c.path))
            )));
        }
    }
    (lines, highlighted)
}

/// A finding: its sign and summary, the evidence, the repair.
fn finding_lines(f: &Finding, selected: bool, lines: &mut Vec<Line<'static>>) {
    let sign_style = match f.severity {
        Severity::Critical | Severity::Error => style::bad(),
        Severity::Warning => style::warn(),
        Severity::Note => style::dim(),
    };
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} ", severity_sign(f.severity)),
            if selected {
                style::selected()
            } else {
                sign_style
            },
        ),
        Span::styled(
            safe(&f.summary),
            if selected {
                style::selected()
            } else {
                sign_style
            },
        ),
    ]));
    for e in &f.evidence {
        lines.push(plain(&format!("    {}", safe(e))));
    }
    match &f.repair {
        Some(Repair::Relink(a)) => match a.proposal() {
            Some(c) => lines.push(Line::styled(
                format!(
                    "    r: {}",
                    safe(&s::proposed(
                        &escape(&c.target),
                        c.guess,
                        &c.reasons.join("; ")
                    ))
                ),
                style::warn(),
            )),
            None => lines.push(Line::styled(
                format!("    {}", s::NO_PROPOSAL),
                style::dim(),
            )),
        },
        Some(Repair::View { path, line, hint }) => lines.push(Line::styled(
            format!(
                "    v: {}{}{}",
                safe(&escape(path)),
                line.map(|l| format!(" line {l}")).unwrap_or_default(),
                if f.summary.starts_with(hint.as_str()) {
                    String::new()
                } else {
                    format!(" — {}", safe(hint))
                }
            ),
            style::warn(),
        )),
        None => {}
    }
}

/// The sign before a finding: `✗` critical and errors, `!` warnings, `·` notes.
fn severity_sign(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::Error => "✗",
        Severity::Warning => "!",
        Severity::Note => "·",
    }
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
