//! Standard output for the commands: a reader that goes away (`| head`,
//! a closed pager) ends the output quietly instead of a panic, and the
//! command still finishes normally (a kernel session is still torn down).
//! Any other write error (a full disk, an I/O error) is said once on
//! standard error and makes the exit code 2 ([`failed`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output can no longer be written.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Writing standard output failed for a reason other than a closed pipe.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Write `args` to standard output unless it was closed; on a write error
/// other than a broken pipe, say so once on standard error.
pub(super) fn write_out(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        write_failed(&e);
    }
}

/// Note a failed write to standard output: quiet for a closed pipe, else
/// said once on standard error, and the exit code becomes 2.
pub(super) fn write_failed(e: &std::io::Error) {
    if CLOSED.swap(true, Ordering::Relaxed) {
        return;
    }
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        FAILED.store(true, Ordering::Relaxed);
        super::report(&format!("writing to standard output: {e}"));
    }
}

/// Whether a write to standard output failed (other than a closed pipe).
pub(super) fn failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}
