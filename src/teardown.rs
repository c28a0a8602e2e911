//! One teardown registry for the process: what must be undone however the
//! program ends — a normal end, SIGINT, SIGTERM, SIGHUP, or a panic.
//!
//! Parts register hooks ([`register`]); they run once, newest first (the
//! kernel engine's mounts, maps and loop devices before the unpacked demo
//! disk they sit on). A restore set with [`restore_first`] (the TUI's
//! terminal) runs before every hook, so what the hooks print is seen.
//!
//! [`watch_signals`] starts the one signal thread: on a signal it tells the
//! listener, if one is set ([`listen`]: the TUI ends by itself and runs the
//! teardown), waits its grace, then runs the teardown and ends the process
//! with 128 + the signal number. [`install_panic_hook`] runs the teardown
//! before a panic's message is printed, except on threads whose panics are
//! caught ([`catch_panics_on`]: the TUI's job threads).

use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

/// How the program is ending, for the hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A normal end (the TUI quits).
    Normal,
    /// A signal (its number).
    Signal(i32),
    /// A panic: hooks must not wait for anything.
    Panic,
}

type Hook = Box<dyn FnOnce(End) + Send>;

/// A listener told of a signal, and how long it gets to end the program itself.
struct Listener {
    notify: Box<dyn Fn(i32) + Send>,
    grace: Duration,
}

/// Panics on the thread of this name are caught: recorded, no teardown.
struct Caught {
    thread: &'static str,
    record: fn(String),
}

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());
static FIRST: Mutex<Option<fn()>> = Mutex::new(None);
static LISTENER: Mutex<Option<Listener>> = Mutex::new(None);
static CAUGHT: Mutex<Option<Caught>> = Mutex::new(None);
static SIGNALS: Once = Once::new();
static PANICS: Once = Once::new();

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Register work to do when the program ends, whichever way (run once,
/// newest first).
pub fn register(hook: impl FnOnce(End) + Send + 'static) {
    lock(&HOOKS).push(Box::new(hook));
}

/// Set what runs before every hook, on every path (the terminal's restore).
pub fn restore_first(restore: fn()) {
    *lock(&FIRST) = Some(restore);
}

/// Run the restore and the registered hooks (each only once, newest first).
pub fn run(end: End) {
    let first = *lock(&FIRST);
    if let Some(f) = first {
        f();
    }
    let hooks: Vec<Hook> = std::mem::take(&mut *lock(&HOOKS));
    for h in hooks.into_iter().rev() {
        h(end);
    }
}

/// Tell `notify` of a signal first and give it `grace` to end the program
/// by itself before the signal thread runs the teardown and exits.
pub fn listen(notify: impl Fn(i32) + Send + 'static, grace: Duration) {
    *lock(&LISTENER) = Some(Listener {
        notify: Box::new(notify),
        grace,
    });
}

/// Panics on threads named `thread` are caught where they happen: they go
/// to `record` (with where they happened) and tear nothing down.
pub fn catch_panics_on(thread: &'static str, record: fn(String)) {
    *lock(&CAUGHT) = Some(Caught { thread, record });
}

/// Start the signal thread (once): SIGINT, SIGTERM and SIGHUP run the
/// teardown and end the process with 128 + the signal number.
pub fn watch_signals() -> std::io::Result<()> {
    let mut result = Ok(());
    SIGNALS.call_once(|| result = spawn_signal_thread());
    result
}

fn spawn_signal_thread() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("vmrescue-signals".into())
        .spawn(move || {
            let Some(sig) = signals.forever().next() else {
                return;
            };
            let grace = lock(&LISTENER).as_ref().map(|l| {
                (l.notify)(sig);
                l.grace
            });
            if let Some(grace) = grace {
                // The listener ends the program itself, unless it is stuck.
                std::thread::sleep(grace);
                run(End::Signal(sig));
                std::process::exit(128 + sig);
            }
            run(End::Signal(sig));
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        })
        .map(|_| ())
}

/// Run the teardown before a panic's message is printed (installed once),
/// except for panics [`catch_panics_on`] names.
pub fn install_panic_hook() {
    PANICS.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught = lock(&CAUGHT)
                .as_ref()
                .filter(|c| std::thread::current().name() == Some(c.thread))
                .map(|c| c.record);
            if let Some(record) = caught {
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
                record(format!("{msg}{loc}"));
                return;
            }
            run(End::Panic);
            previous(info);
        }));
    });
}
