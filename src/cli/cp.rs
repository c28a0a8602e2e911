//! `vmrescue cp`.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use humansize::{BINARY, format_size};
use vmrescue::ops::copy::{
    CopyEvent, CopyJob, CopyOptions, CopySource, Existing, Progress, Summary, destination,
};
use vmrescue::text::{count, escape};

use super::guest::GuestArgs;
use super::{exit, report};

/// Arguments of `cp`.
#[derive(Args, Debug)]
#[command(
    override_usage = "vmrescue cp [OPTIONS] <IMAGE> <SRC>... <DEST>\n       \
                            vmrescue cp [OPTIONS] --demo <SRC>... <DEST>"
)]
pub struct CpArgs {
    #[command(flatten)]
    guest: GuestArgs,
    /// Replace files that already exist in DEST (directories are merged, never replaced by files).
    #[arg(long, conflicts_with = "skip_existing")]
    overwrite: bool,
    /// Keep files that already exist in DEST (reported as skipped).
    #[arg(long)]
    skip_existing: bool,
    /// Do not copy owners and xattrs (they are only copied when running as root).
    #[arg(long)]
    no_owner: bool,
    /// No progress bar, even on a terminal.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// IMAGE (unless --demo), guest paths SRC (absolute or from the guest
    /// root; `dir/.` copies a directory's contents), then the host directory
    /// DEST.
    #[arg(value_name = "IMAGE | SRC | DEST", required = true)]
    args: Vec<OsString>,
}

/// Run `cp`.
pub fn run(args: &CpArgs) -> u8 {
    let (target, mut paths) = match args.guest.split(args.args.clone()) {
        Ok(x) => x,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if paths.len() < 2 {
        report(&"need at least one SRC (guest path) and a DEST (host directory)");
        return exit::ERROR;
    }
    let dest = PathBuf::from(paths.pop().unwrap_or_default());
    let guest = match args.guest.open(&target, true) {
        Ok(g) => g,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let mut problems = guest.damaged;
    let mut sources = Vec::new();
    for p in &paths {
        match CopySource::resolve(&*guest.fs, p.as_bytes()) {
            Ok(s) => sources.push(s),
            Err(e) => {
                report(&e);
                problems = true;
            }
        }
    }
    if sources.is_empty() {
        return exit::PROBLEMS;
    }
    let place = match destination(&dest, &mut sources) {
        Ok(d) => d,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    // A guest given as a host directory cannot receive its own copy.
    if let Some(src) = target.image.as_ref().filter(|p| p.is_dir())
        && let (Ok(src), Some(to)) = (src.canonicalize(), canonical_dest(&place.dir))
        && to.starts_with(&src)
    {
        report(&format!(
            "{} is inside the guest directory {}: choose a DEST outside it",
            to.display(),
            src.display()
        ));
        return exit::ERROR;
    }
    if place.create
        && let Err(e) = std::fs::create_dir(&place.dir)
    {
        report(&format!("{}: {e}", place.dir.display()));
        return exit::ERROR;
    }
    let mut options = CopyOptions::for_this_user(args.no_owner);
    options.existing = if args.overwrite {
        Existing::Overwrite
    } else if args.skip_existing {
        Existing::Skip
    } else {
        Existing::Refuse
    };
    let job = CopyJob {
        fs: Arc::clone(&guest.fs),
        sources,
        dest: place.dir,
        options,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    cancel_on_signals(&cancel);
    let mut bar = (!args.quiet && std::io::stderr().is_terminal()).then(Bar::new);
    if let Some(b) = bar.as_mut() {
        b.draw_text("counting files...");
    }
    let summary = job.run(&cancel, &mut |ev| {
        if let (Some(b), CopyEvent::Progress(p)) = (bar.as_mut(), &ev) {
            b.draw(p);
        }
    });
    if let Some(b) = bar.as_mut() {
        b.clear();
    }
    print_summary(&summary);
    problems |= guest.finish();
    if problems || !summary.is_clean() {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}

/// `dir` made absolute without symlinks, also when only its parent exists yet.
fn canonical_dest(dir: &std::path::Path) -> Option<PathBuf> {
    if let Ok(p) = dir.canonicalize() {
        return Some(p);
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(dir.file_name()?))
}

/// Set `cancel` on SIGINT, SIGTERM or SIGHUP (a second signal ends the
/// process at once). The signals are blocked in this thread before any
/// other starts, and waited for by a thread of their own.
fn cancel_on_signals(cancel: &Arc<AtomicBool>) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let flag = Arc::clone(cancel);
    let _ = std::thread::Builder::new()
        .name("vmrescue-signals".into())
        .spawn(move || {
            let mut count = 0;
            while let Ok(sig) = set.wait() {
                count += 1;
                if count > 1 {
                    std::process::exit(128 + sig as i32);
                }
                flag.store(true, Ordering::Relaxed);
            }
        });
}

/// A one-line progress bar on stderr.
struct Bar {
    width: usize,
}

impl Bar {
    fn new() -> Bar {
        let width = rustix::termios::tcgetwinsize(std::io::stderr())
            .map(|w| usize::from(w.ws_col))
            .ok()
            .filter(|&w| w >= 20)
            .unwrap_or(80);
        Bar { width }
    }

    fn draw_text(&mut self, text: &str) {
        let line: String = text.chars().take(self.width.saturating_sub(1)).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    fn draw(&mut self, p: &Progress) {
        let frac = if p.bytes_total > 0 {
            p.bytes_done as f64 / p.bytes_total as f64
        } else if p.files_total > 0 {
            p.files_done as f64 / p.files_total as f64
        } else {
            1.0
        }
        .clamp(0.0, 1.0);
        let cells = 20usize;
        let full = (frac * cells as f64).round() as usize;
        let bar: String = "#".repeat(full) + &"-".repeat(cells - full);
        let eta = p.eta.map_or_else(|| "--:--".to_string(), clock);
        let mut line = format!(
            "{:>3}% [{bar}] {} / {}  {}/{} files  {}/s  ETA {eta}  ",
            (frac * 100.0).floor() as u32,
            format_size(p.bytes_done, BINARY),
            format_size(p.bytes_total, BINARY),
            p.files_done,
            p.files_total,
            format_size(p.rate as u64, BINARY),
        );
        let room = self.width.saturating_sub(1 + line.chars().count());
        let current = escape(&p.current);
        let n = current.chars().count();
        if n <= room {
            line.push_str(&current);
        } else if room > 3 {
            line.push_str("...");
            line.extend(current.chars().skip(n - (room - 3)));
        }
        self.draw_text(&line);
    }

    fn clear(&mut self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// `h:mm:ss` or `m:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn print_summary(s: &Summary) {
    if let Some(e) = &s.error {
        report(e);
    }
    let secs = s.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        format!(
            " ({}/s)",
            format_size((s.bytes as f64 / secs) as u64, BINARY)
        )
    } else {
        String::new()
    };
    let mut parts = vec![count(s.files, "file", "files")];
    for (n, one, many) in [
        (s.dirs, "directory", "directories"),
        (s.symlinks, "symlink", "symlinks"),
        (s.specials, "special file", "special files"),
        (s.hard_links, "hard link", "hard links"),
    ] {
        if n > 0 {
            parts.push(count(n, one, many));
        }
    }
    eprintln!(
        "vmrescue: copied {}: {} in {:.1} s{rate}",
        parts.join(", "),
        format_size(s.bytes, BINARY),
        secs
    );
    if s.cancelled {
        eprintln!(
            "vmrescue: cancelled: the file being copied was removed; the rest was not copied"
        );
    }
    let list = |what: &str, count: u64, issues: &[vmrescue::ops::copy::Issue]| {
        if count == 0 {
            return;
        }
        eprintln!("vmrescue: {what} {count}:");
        for i in issues {
            eprintln!("  {}: {}", escape(&i.path), i.reason);
        }
        let more = count.saturating_sub(issues.len() as u64);
        if more > 0 {
            eprintln!("  ... and {more} more");
        }
    };
    list("skipped", s.skipped_count, &s.skipped);
    list("failed", s.failed_count, &s.failed);
}
