//! The two status lines: where we are, then the selected entry's problem,
//! the last message, or key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::tui::app::{App, Focus, Right};
use crate::tui::format::{keep_end, safe, size};
use crate::tui::strings as s;
use crate::tui::tree::Tree;

/// The first status line's text.
pub fn status_text(app: &App) -> String {
    // The volume the folder shown lies on (in the guest's tree, the one
    // mounted there).
    let volume = match &app.right {
        Right::Browsing(p) => p.on,
        Right::Opening(t) | Right::Failed(t, _) => t.volume(),
        Right::Empty => None,
    };
    let engine = volume
        .and_then(|v| app.config.volume_engines.get(v.0))
        .unwrap_or(&app.config.engine);
    let access = if app.written > 0 {
        s::written_status(app.written)
    } else {
        s::READ_ONLY.to_string()
    };
    let mut parts = vec![engine.clone(), access, app.image.clone()];
    match &app.right {
        Right::Browsing(p) => {
            parts.push(format!(
                "{}:{}",
                app.volume_label(p.tree),
                crate::text::escape(&p.path)
            ));
            if p.tree.is_guest()
                && let Some(v) = p.on
            {
                // The snapshot is named already, in the image and the tree.
                parts.push(s::on_volume(&app.tree_name(Tree::Volume(v))));
            }
        }
        Right::Opening(v) | Right::Failed(v, _) => parts.push(app.volume_label(*v)),
        Right::Empty => {}
    }
    let m = &app.marks;
    if !m.is_empty() {
        parts.push(s::marks_status(m.len(), &size(m.total_size()), m.dirs()));
    }
    if let Some(c) = &app.copy
        && c.hidden
    {
        let pct = c
            .progress
            .bytes_done
            .saturating_mul(100)
            .checked_div(c.progress.bytes_total)
            .unwrap_or(0);
        parts.push(s::copying_status(pct));
    }
    parts.join(" │ ")
}

/// Draw the status lines.
pub fn draw_status(frame: &mut Frame<'_>, area: Rect, app: &App) {
    if area.height == 0 {
        return;
    }
    let w = usize::from(area.width);
    let first = keep_end(&safe(&format!(" {}", status_text(app))), w);
    let line1 = Line::from(Span::styled(format!("{first:<w$}"), style::bar()));
    let selected = (app.focus == Focus::Files)
        .then(|| app.pane().and_then(|p| p.current()))
        .flatten();
    let first = app.message.as_ref().filter(|_| app.message_first);
    let line2 = if let Some(m) = first {
        Line::styled(
            safe(&m.text),
            if m.error { style::bad() } else { style::warn() },
        )
    } else if let Some(reason) = selected.and_then(|e| e.suspect.as_ref()) {
        Line::from(vec![
            Span::styled(format!("{} ", s::SUSPECT_SIGN), style::bad()),
            Span::styled(safe(reason), style::bad()),
        ])
    } else if let Some(err) = selected.and_then(|e| e.error.as_ref()) {
        Line::styled(safe(err), style::bad())
    } else if let Some(m) = &app.message {
        Line::styled(
            safe(&m.text),
            if m.error { style::bad() } else { style::warn() },
        )
    } else {
        let mut spans = Vec::new();
        for (action, what) in s::HINTS {
            let keys = app
                .keymap
                .keys_for(crate::tui::keymap::Context::Main, *action);
            let k = keys.split(' ').next().unwrap_or_default().to_string();
            spans.push(Span::styled(k, style::key()));
            spans.push(Span::styled(format!(" {what}  "), style::dim()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(vec![line1, line2]), area);
}
