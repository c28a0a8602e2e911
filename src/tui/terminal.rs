//! The terminal: raw mode and the alternate screen on the way in, and a
//! restore that runs however the program ends — normal quit, SIGTERM, SIGHUP,
//! SIGINT, or a panic — before the teardown hooks other parts register in
//! [`crate::teardown`] (the kernel engine removes its mounts, device-mapper
//! maps and loop devices there).

use std::io::{self, Stdout, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use super::event::Event;
use crate::teardown;

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// How long the UI thread gets to end by itself after a signal before the
/// signal thread restores the terminal and exits.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(3);

/// Restore the terminal, then run the registered teardown hooks (each only
/// once; [`crate::teardown::run`]).
pub fn run_teardown() {
    teardown::run(teardown::End::Normal);
}

/// Raw mode, alternate screen, hidden cursor.
pub fn enter() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    teardown::restore_first(restore);
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut out = io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen, Hide) {
        restore();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Leave the alternate screen, show the cursor, cooked mode. Safe to call
/// more than once and from any thread.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

/// Restores the terminal when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
        run_teardown();
    }
}

/// A panic on the UI thread restores the terminal (and runs the teardown)
/// before the message is printed; a panic on a job thread is recorded and
/// reported by the job as an error, leaving the screen alone.
pub fn install_panic_hook() {
    teardown::restore_first(restore);
    teardown::catch_panics_on(super::jobs::JOB_THREAD, super::jobs::record_panic);
    teardown::install_panic_hook();
}

/// Start the signal thread ([`crate::teardown::watch_signals`]) with the UI
/// thread as its listener: a signal is sent to the UI thread, which ends by
/// itself; if it has not ended after [`SIGNAL_GRACE`], the signal thread
/// restores the terminal, runs the teardown and exits with 128 + the
/// signal number.
pub fn spawn_signal_thread(tx: Sender<Event>) -> io::Result<()> {
    let tx = Mutex::new(tx);
    teardown::listen(
        move |sig| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(Event::Signal(sig));
            }
        },
        SIGNAL_GRACE,
    );
    teardown::watch_signals()
}
