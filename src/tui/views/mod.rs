//! Pure drawing functions over a borrowed [`App`]: one file per pane or window.
//! Nothing here changes state; everything shown from an image was escaped
//! when it entered the app, and [`crate::tui::format::safe`] guards the rest.

pub mod confirm;
pub mod copy;
pub mod details;
pub mod doctor;
pub mod files;
pub mod find;
pub mod header;
pub mod help;
pub mod layers;
pub mod layout;
pub mod message;
pub mod passphrase;
pub mod progress;
pub mod restore;
pub mod status;
pub mod summary;
pub mod viewer;
pub mod window;

use ratatui::Frame;
use ratatui::style::{Color, Modifier, Style};

use super::app::App;
use super::dialogs::Dialog;
use layout::Screen;

/// Draw the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let screen = Screen::new(frame.area());
    header::draw_header(frame, screen.header, app);
    layers::draw_layers(
        frame,
        &screen,
        &app.layers,
        app.focus == super::app::Focus::Layers,
        app.snapshot.as_deref(),
    );
    files::draw_files(frame, screen.files, app);
    status::draw_status(frame, screen.status, app);
    if let Some(job) = &app.copy
        && !job.hidden
    {
        progress::draw_progress(frame, &screen, job);
    }
    // The windows under the top one first (a question shows over the
    // restore dialog it is about).
    for d in app.under.iter().chain(app.dialog.as_ref()) {
        draw_dialog(frame, &screen, app, d);
    }
}

fn draw_dialog(frame: &mut Frame<'_>, screen: &Screen, app: &App, dialog: &Dialog) {
    match dialog {
        Dialog::Help { scroll } => help::draw_help(frame, screen, &app.keymap, *scroll),
        Dialog::Details {
            title,
            details,
            scroll,
            ..
        } => details::draw_details(frame, screen, title, details.as_deref(), *scroll),
        Dialog::Message {
            title,
            lines,
            scroll,
        } => message::draw_message(frame, screen, title, lines, *scroll),
        Dialog::CopySetup(c) => copy::draw_copy(frame, screen, c),
        Dialog::Confirm(c) => confirm::draw_confirm(frame, screen, c),
        Dialog::Summary { summary, scroll } => {
            summary::draw_summary(frame, screen, summary, *scroll)
        }
        Dialog::Restore(r) => restore::draw_restore(frame, screen, r),
        Dialog::Doctor(d) => doctor::draw_doctor(frame, screen, d),
        Dialog::Viewer(v) => viewer::draw_viewer(frame, screen.all, v),
        Dialog::Find(f) => find::draw_find(frame, screen, f),
        Dialog::Passphrase(p) => passphrase::draw_passphrase(frame, screen, p),
    }
}

/// Styles shared by the views. With `NO_COLOR` set (and not empty, as
/// no-color.org asks) they keep their bold, underline and reverse but no
/// colour.
pub mod style {
    use super::*;

    /// Whether colours are wanted: `NO_COLOR` unset or empty.
    fn colour() -> bool {
        static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *WANTED.get_or_init(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
    }

    /// `fg` as the foreground, unless colours are off.
    fn fg(c: Color) -> Style {
        if colour() {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// Borders of the pane with the keys.
    pub fn focused_border() -> Style {
        if colour() {
            fg(Color::Cyan)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }
    /// Borders of the other pane.
    pub fn border() -> Style {
        fg(Color::DarkGray)
    }
    /// The selected row of the pane with the keys.
    pub fn selected() -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    /// The selected row of the other pane.
    pub fn selected_unfocused() -> Style {
        Style::new().add_modifier(Modifier::UNDERLINED)
    }
    /// Directories.
    pub fn dir() -> Style {
        fg(Color::Blue).add_modifier(Modifier::BOLD)
    }
    /// Symlinks.
    pub fn link() -> Style {
        fg(Color::Cyan)
    }
    /// Flagged entries and errors.
    pub fn bad() -> Style {
        fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    /// Warnings (journal replayed).
    pub fn warn() -> Style {
        fg(Color::Yellow)
    }
    /// Marked entries.
    pub fn marked() -> Style {
        fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    /// Less important text.
    pub fn dim() -> Style {
        fg(Color::DarkGray)
    }
    /// Titles and keys in hints.
    pub fn key() -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    /// The status bar.
    pub fn bar() -> Style {
        if colour() {
            Style::new().bg(Color::Blue).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
}
