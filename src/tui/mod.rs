//! The full-screen interface: layers on the left, the guest's files on the
//! right, marks, copy-out with progress.
//!
//! Elm style:
//! * [`Action`] — what the operator asks for (imperative verbs), from keys
//!   through the [`keymap::Keymap`] kept as data in `assets/keymap.txt`;
//! * [`App`] — all state; [`App::update`] applies an action, [`App::apply`]
//!   a job result; neither touches the terminal. Work to do off the UI thread
//!   comes out as [`event::Effect`]s;
//! * [`dialogs`] — the windows over the panes; the copy and restore dialogs
//!   and the doctor view take the actions given to them while on top
//!   (`update(&Action, &mut Ctx) -> Outcome`) and the app does the rest;
//! * [`views`] — pure `draw_*` functions over `&App`, one file per pane or window;
//! * [`run`] — the loop: one input thread, one signal thread and job threads
//!   ([`jobs::Jobs`]) feed one channel; the UI thread applies what arrives
//!   and draws.
//!
//! Seams for the parts written elsewhere: [`crate::engine::VolumeOpener`] (which
//! engine opens a volume) and [`copier::Copier`] (the copy job), both in
//! [`Options`]; [`crate::teardown::register`] for the kernel engine's
//! cleanup on quit, signals and panics.

pub mod action;
pub mod app;
pub mod copier;
pub mod details;
pub mod dialogs;
pub mod event;
pub mod files;
pub mod format;
pub mod jobs;
pub mod keymap;
pub mod layers;
pub mod marks;
pub mod picker;
pub mod strings;

pub mod terminal;
pub mod text_field;
pub mod tree;
pub mod views;

use std::sync::Arc;
use std::sync::mpsc;

use ratatui::crossterm::event as ct;

pub use action::Action;
pub use app::{App, AppConfig};
pub use event::Event;

use crate::layers::Layout;

/// What the TUI runs on.
pub struct Options {
    /// The disks and volumes.
    pub layout: Arc<Layout>,
    /// Settings.
    pub config: AppConfig,
    /// How volumes are opened (the engine).
    pub opener: Arc<dyn crate::engine::VolumeOpener>,
    /// How files are copied out.
    pub copier: Arc<dyn copier::Copier>,
}

impl Options {
    /// The userspace engine and the built-in copier.
    pub fn new(layout: Layout, config: AppConfig) -> Options {
        Options {
            layout: Arc::new(layout),
            config,
            opener: Arc::new(crate::engine::userspace::Userspace::default()),
            copier: Arc::new(copier::JobCopier),
        }
    }
}

/// Most events handled between two frames (the rest wait for the next one).
const EVENTS_PER_FRAME: usize = 512;

/// Run the TUI on the terminal until the operator quits or a signal arrives;
/// returns the signal's number when one ended it.
pub fn run(opts: Options) -> anyhow::Result<Option<i32>> {
    terminal::install_panic_hook();
    let (tx, rx) = mpsc::channel();
    terminal::spawn_signal_thread(tx.clone())?;
    let mut term = terminal::enter()?;
    let _guard = terminal::Guard;
    spawn_input_thread(tx.clone())?;
    spawn_tick_thread(tx.clone())?;
    let mut jobs = jobs::Jobs {
        layout: Arc::clone(&opts.layout),
        opener: Arc::clone(&opts.opener),
        copier: Arc::clone(&opts.copier),
    };
    let mut config = opts.config;
    config.engine = opts.opener.engine();
    config.volume_engines = (0..opts.layout.volumes.len())
        .map(|i| {
            opts.opener
                .engine_for(&opts.layout, crate::layers::VolumeId(i))
        })
        .collect();
    let mut app = App::new(Arc::clone(&opts.layout), config);
    let size = term.size()?;
    app.resize(size.width, size.height);
    app.start();
    loop {
        // The app's layout grows when a disk image file is opened.
        if !Arc::ptr_eq(&jobs.layout, &app.layout) {
            jobs.layout = Arc::clone(&app.layout);
        }
        for effect in app.take_effects() {
            jobs.spawn(effect, tx.clone());
        }
        if app.redraw {
            app.redraw = false;
            term.clear()?;
        }
        term.draw(|f| views::draw(f, &app))?;
        if app.quit {
            break;
        }
        let Ok(first) = rx.recv() else { break };
        app.handle(first);
        for _ in 0..EVENTS_PER_FRAME {
            match rx.try_recv() {
                Ok(ev) => app.handle(ev),
                Err(_) => break,
            }
        }
    }
    drop(term);
    terminal::restore();
    // The app's open filesystem views go before the teardown unmounts them.
    let signal = app.signal;
    drop(app);
    terminal::run_teardown();
    Ok(signal)
}

/// Time between two [`Event::Tick`]s.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

fn spawn_tick_thread(tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("vmrescue-tick".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                if tx.send(Event::Tick).is_err() {
                    break;
                }
            }
        })
        .map(|_| ())
}

fn spawn_input_thread(tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("vmrescue-input".into())
        .spawn(move || {
            loop {
                let ev = match ct::read() {
                    Ok(ct::Event::Key(k)) => Event::Key(k),
                    Ok(ct::Event::Resize(w, h)) => Event::Resize(w, h),
                    Ok(_) => continue,
                    Err(e) => Event::InputError(e.to_string()),
                };
                let stop = matches!(ev, Event::InputError(_));
                if tx.send(ev).is_err() || stop {
                    break;
                }
            }
        })
        .map(|_| ())
}
