//! Standard output for the commands: a reader that goes away (`| head`,
//! a closed pager) ends the output quietly instead of a panic, and the
//! command still finishes normally (a kernel session is still torn down).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output can no longer be written.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `args` to standard output unless it was closed; on a write error
/// other than a broken pipe, say so once on standard error.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("vmrescue: writing to standard output: {e}");
        }
    }
}
