//! The terminal: raw mode and the alternate screen on the way in, and a
//! restore that runs however the program ends — normal quit, SIGTERM, SIGHUP,
//! SIGINT, or a panic — together with the teardown hooks other parts
//! register (the kernel engine removes its mounts, device-mapper maps and
//! loop devices there).

use std::io::{self, Stdout, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use super::event::Event;

static ACTIVE: AtomicBool = AtomicBool::new(false);
type Hook = Box<dyn FnOnce() + Send>;
static TEARDOWN: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// How long the UI thread gets to end by itself after a signal before the
/// signal thread restores the terminal and exits.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(3);

/// Register work to do when the program ends, whichever way (run once, newest first).
pub fn register_teardown(hook: impl FnOnce() + Send + 'static) {
    if let Ok(mut v) = TEARDOWN.lock() {
        v.push(Box::new(hook));
    }
}

/// Run the registered teardown hooks (each only once).
pub fn run_teardown() {
    let hooks: Vec<Hook> = match TEARDOWN.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => return,
    };
    for h in hooks.into_iter().rev() {
        h();
    }
}

/// Raw mode, alternate screen, hidden cursor.
pub fn enter() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
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
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(super::jobs::JOB_THREAD) {
            let loc = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            super::jobs::record_panic(format!("{msg}{loc}"));
            return;
        }
        restore();
        run_teardown();
        previous(info);
    }));
}

/// The signals that end the program.
fn end_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.add(Signal::SIGINT);
    set
}

/// Block SIGTERM, SIGHUP and SIGINT in this thread and in every thread it
/// starts from now on (call before starting threads); [`spawn_signal_thread`]
/// then receives them.
pub fn block_signals() -> nix::Result<()> {
    end_signals().thread_block()
}

/// A thread that waits for the end signals and sends them to the UI thread;
/// if the UI has not ended after [`SIGNAL_GRACE`], it restores the terminal,
/// runs the teardown and exits with 128 + the signal number.
pub fn spawn_signal_thread(tx: Sender<Event>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("vmrescue-signals".into())
        .spawn(move || {
            let set = end_signals();
            let Ok(sig) = set.wait() else { return };
            let _ = tx.send(Event::Signal(sig as i32));
            std::thread::sleep(SIGNAL_GRACE);
            restore();
            run_teardown();
            std::process::exit(128 + sig as i32);
        })
        .map(|_| ())
}
