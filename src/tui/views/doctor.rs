//! The doctor view (`!`). Until the whole-guest scan lands (issue 5) it lists
//! the flagged entries of the directory shown.

use ratatui::Frame;
use ratatui::text::Line;

use super::layout::Screen;
use super::style;
use super::window::{draw_window, plain};
use crate::tui::dialog::DoctorView;
use crate::tui::format::safe;
use crate::tui::strings as s;

/// Draw the doctor view.
pub fn draw_doctor(frame: &mut Frame<'_>, screen: &Screen, d: &DoctorView) {
    let mut lines = Vec::new();
    for l in s::DOCTOR_PENDING {
        lines.push(plain(l));
    }
    lines.push(Line::from(""));
    if d.flagged.is_empty() {
        lines.push(plain(&s::doctor_none_in(&d.dir)));
    } else {
        lines.push(plain(&s::doctor_flagged_in(&d.dir)));
        for (name, why) in &d.flagged {
            lines.push(Line::styled(
                format!("{} {}: {}", s::SUSPECT_SIGN, safe(name), safe(why)),
                style::bad(),
            ));
        }
    }
    draw_window(
        frame,
        screen.big_window(),
        s::DOCTOR_TITLE,
        lines,
        d.scroll,
        s::FOOTER_CLOSE_SCROLL,
    );
}
