//! The copy progress window: a gauge, bytes, files, rate, time left, the file
//! being copied.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph};

use super::layout::Screen;
use super::style;
use crate::tui::dialogs::CopyJob;
use crate::tui::format::{duration, keep_end, rate, safe, size};
use crate::tui::strings as s;

/// Draw the progress window.
pub fn draw_progress(frame: &mut Frame<'_>, screen: &Screen, job: &CopyJob) {
    let area = screen.centered(screen.all.width.saturating_sub(6).min(80), 10);
    frame.render_widget(Clear, area);
    let dest = safe(&job.dest.display().to_string());
    let title = keep_end(
        &s::copying_to(&dest),
        usize::from(area.width.saturating_sub(4)),
    );
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(format!(" {title} "), style::key()))
        .title_bottom(Line::from(format!(" {} ", s::FOOTER_PROGRESS)).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [gauge_area, _, text_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let p = &job.progress;
    let ratio = if p.bytes_total > 0 {
        (p.bytes_done as f64 / p.bytes_total as f64).clamp(0.0, 1.0)
    } else if p.files_total > 0 {
        (p.files_done as f64 / p.files_total as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let gauge = Gauge::default()
        .ratio(ratio)
        .label(format!("{:.0}%", ratio * 100.0))
        .gauge_style(style::marked())
        .use_unicode(true);
    frame.render_widget(gauge, gauge_area);
    let secs = p.elapsed.as_secs_f64();
    let bps = if secs > 0.0 {
        p.bytes_done as f64 / secs
    } else {
        0.0
    };
    let eta = if bps > 0.0 && p.bytes_total > p.bytes_done {
        duration(std::time::Duration::from_secs_f64(
            ((p.bytes_total - p.bytes_done) as f64 / bps).min(1e9),
        ))
    } else {
        "-".into()
    };
    let now_w = usize::from(text_area.width.saturating_sub(6));
    let mut lines = vec![
        Line::from(s::progress_bytes(
            &size(p.bytes_done),
            &size(p.bytes_total),
            p.files_done,
            p.files_total,
        )),
        Line::from(s::progress_rate(&rate(bps), &duration(p.elapsed), &eta)),
        Line::from(vec![
            Span::styled(s::NOW, style::key()),
            Span::raw(keep_end(&safe(&p.current), now_w)),
        ]),
    ];
    if job.cancelling {
        lines.push(Line::styled(s::CANCELLING, style::warn()));
    }
    frame.render_widget(Paragraph::new(lines), text_area);
}
