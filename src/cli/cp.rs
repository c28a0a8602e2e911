//! `vmrescue cp`.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use clap::Args;
use humansize::{BINARY, format_size};
use vmrescue::ops::copy::{
    CopyEvent, CopyJob, CopyOptions, CopySource, Existing, Progress, Summary, Totals,
    check_destination, destination,
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
pub(super) struct CpArgs {
    #[command(flatten)]
    guest: GuestArgs,
    /// Replace files that already exist in DEST (directories are merged, never replaced by files).
    #[arg(long, conflicts_with = "skip_existing")]
    overwrite: bool,
    /// Keep files that already exist in DEST when they are the same (size
    /// and mtime; a symlink's target); one that differs is kept and
    /// reported as a conflict (exit code 1).
    #[arg(long)]
    skip_existing: bool,
    /// Do not copy owners and xattrs (they are only copied when running as root).
    #[arg(long)]
    no_owner: bool,
    /// Stay on the volume of each SRC: the guest's mountpoints below it are
    /// created empty, as `cp -x` does.
    #[arg(long, short = 'x')]
    one_file_system: bool,
    /// No progress bar, even on a terminal.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Copy nothing: list every host path the copy would write (stdout),
    /// then what it adds up to and whether it fits in DEST's free space;
    /// exit code 1 when it does not fit.
    #[arg(long)]
    dry_run: bool,
    /// Print a report as JSON on stdout (docs/json.md): what was planned,
    /// copied, skipped and failed, and why; with --dry-run, the plan and the
    /// paths it would write.
    #[arg(long)]
    json: bool,
    /// Accepted for `cp -a` habits: vmrescue always copies recursively,
    /// keeping modes, times, links and holes.
    #[arg(short = 'a', hide = true)]
    _archive: bool,
    /// Accepted for `cp -r`/`-R` habits (always recursive).
    #[arg(short = 'r', short_alias = 'R', hide = true)]
    _recursive: bool,
    /// IMAGE (unless --demo), guest paths SRC (absolute or from the guest
    /// root; `dir/.` copies a directory's contents), then the host directory
    /// DEST.
    #[arg(value_name = "IMAGE | SRC | DEST", required = true)]
    args: Vec<OsString>,
}

/// Run `cp`.
pub(super) fn run(args: &CpArgs) -> u8 {
    // First, before any thread starts (opening an image may start some):
    // then every thread has the signals blocked and only ours takes them.
    let cancel = Arc::new(AtomicBool::new(false));
    let signal = cancel_on_signals(&cancel);
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
    let paths: Vec<OsString> = paths.iter().map(|p| guest.guest_path(p)).collect();
    let mut problems = guest.damaged;
    let mut sources = Vec::new();
    // Mountpoints inside what is copied whose volume cannot be read here.
    let mut not_here: Vec<(Vec<u8>, String)> = Vec::new();
    for p in &paths {
        // A mountpoint of another volume holds (at most) an empty directory
        // here: copying it would claim a success that is not one.
        if let Some(why) = guest.mounted_elsewhere(p.as_bytes()) {
            report(&why);
            problems = true;
            continue;
        }
        match CopySource::resolve(&*guest.fs, p.as_bytes()) {
            Ok(s) => {
                if let Some(why) = guest.mounted_elsewhere(&s.guest_path) {
                    report(&format!("{}: {why}", escape(p.as_bytes())));
                    problems = true;
                    continue;
                }
                let on = guest.not_here(&s.guest_path, false);
                let below = if args.one_file_system {
                    Vec::new()
                } else {
                    guest.not_here(&s.guest_path, true)
                };
                for m in on.into_iter().chain(below) {
                    if !not_here.contains(&m) {
                        not_here.push(m);
                    }
                }
                for (at, volume) in guest.mounts_inside(&s.guest_path) {
                    report(&format!(
                        "note: {at} is where {volume} is mounted: its files are not in this \
                         copy (copy them with --volume {volume})"
                    ));
                }
                sources.push(s);
            }
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
    // Before the first byte: can files be created there at all?
    if let Err(e) = check_destination(&place.dir) {
        report(&e);
        return exit::ERROR;
    }
    if args.dry_run {
        return match dry_run(args, &*guest.fs, &sources, (&place.dir, &dest), &cancel) {
            Ok(fits) if fits && !problems && not_here.is_empty() => exit::OK,
            Ok(_) => exit::PROBLEMS,
            Err(e) => {
                report(&e);
                exit::ERROR
            }
        };
    }
    if place.create
        && let Err(e) = std::fs::create_dir(&place.dir)
    {
        report(&format!("{}: {e}", place.dir.display()));
        return exit::ERROR;
    }
    let mut options = CopyOptions::for_this_user(args.no_owner);
    options.one_file_system = args.one_file_system;
    options.existing = if args.overwrite {
        Existing::Overwrite
    } else if args.skip_existing {
        Existing::SkipSame
    } else {
        Existing::Refuse
    };
    let job = CopyJob {
        fs: Arc::clone(&guest.fs),
        sources,
        dest: place.dir,
        options,
    };
    let mut bar = (!args.quiet && std::io::stderr().is_terminal()).then(Bar::new);
    if let Some(b) = bar.as_mut() {
        b.draw_text("counting files...");
    }
    let mut totals = None;
    let mut summary = job.run(&cancel, &mut |ev| match (&ev, bar.as_mut()) {
        (CopyEvent::Planned(t), _) => totals = Some(*t),
        (CopyEvent::Progress(p), Some(b)) => b.draw(p),
        _ => {}
    });
    if let Some(b) = bar.as_mut() {
        b.clear();
    }
    for (at, why) in &not_here {
        summary.add_skipped(at, why.clone());
    }
    let signal = signal.load(Ordering::Relaxed);
    if args.json {
        let doc = report_json(&summary, totals.as_ref(), &dest);
        super::print_json(&doc);
    }
    if print_summary(&summary, totals.as_ref(), signal).is_err() {
        // The summary could not be written: nothing more can be said.
        return exit::ERROR;
    }
    problems |= guest.finish();
    if signal != 0 {
        // As shells expect of a command a signal stopped: 130 for SIGINT, 143 for SIGTERM.
        return u8::try_from(128 + signal).unwrap_or(exit::ERROR);
    }
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

/// Set `cancel` on SIGINT, SIGTERM or SIGHUP; the number of the first
/// signal is returned (0 until one came). A second signal ends the process
/// at once, naming the temporary file left incomplete. The signals are
/// blocked in this thread before any other starts, and waited for by a
/// thread of their own.
fn cancel_on_signals(cancel: &Arc<AtomicBool>) -> Arc<AtomicI32> {
    use nix::sys::signal::{SigSet, Signal};
    let first = Arc::new(AtomicI32::new(0));
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return first;
    }
    let flag = Arc::clone(cancel);
    let seen = Arc::clone(&first);
    let _ = std::thread::Builder::new()
        .name("vmrescue-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if seen.load(Ordering::Relaxed) != 0 {
                    forced_exit(sig);
                }
                seen.store(sig as i32, Ordering::Relaxed);
                flag.store(true, Ordering::Relaxed);
                if std::io::stderr().is_terminal() {
                    // Off the progress bar's line.
                    let _ = write!(std::io::stderr(), "\r\x1b[K");
                }
                report(&format!(
                    "{}: stopping after removing the file being copied (again to stop at once)",
                    sig.as_str()
                ));
            }
        });
    first
}

/// End the process now, on a second signal: say which file is left
/// incomplete (under its temporary name, never the real one).
fn forced_exit(sig: nix::sys::signal::Signal) -> ! {
    let partial = vmrescue::ops::copy::partial_files_at_exit();
    if partial.is_empty() {
        report(&format!(
            "{}: stopped at once; no file was left incomplete",
            sig.as_str()
        ));
    }
    for p in partial {
        report(&format!(
            "{}: stopped at once; left incomplete: {} (remove it)",
            sig.as_str(),
            escape(p.as_os_str().as_bytes())
        ));
    }
    vmrescue::demo::cleanup();
    std::process::exit(128 + sig as i32);
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
        let line = progress_line(p, self.width);
        self.draw_text(&line);
    }

    fn clear(&mut self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// The progress line for a terminal `width` columns wide: percent, bar,
/// bytes, ETA, then files and rate while they fit, and the current path in
/// what is left (its end, which names the file). Never wider than
/// `width - 1`, so the cursor stays on the line.
fn progress_line(p: &Progress, width: usize) -> String {
    let frac = if p.bytes_total > 0 {
        p.bytes_done as f64 / p.bytes_total as f64
    } else if p.files_total > 0 {
        p.files_done as f64 / p.files_total as f64
    } else {
        1.0
    }
    .clamp(0.0, 1.0);
    let eta = format!("ETA {}", p.eta.map_or_else(|| "--:--".to_string(), clock));
    let bytes = format!(
        "{}/{}",
        format_size(p.bytes_done, BINARY),
        format_size(p.bytes_total, BINARY)
    );
    let files = format!("{}/{} files", p.files_done, p.files_total);
    let rate = format!("{}/s", format_size(p.rate as u64, BINARY));
    let room = width.saturating_sub(1);
    // Widest first; each later try leaves out what matters least.
    let tries: [(usize, &[&str]); 4] = [
        (20, &[&bytes, &files, &rate, &eta]),
        (10, &[&bytes, &files, &eta]),
        (10, &[&bytes, &eta]),
        (0, &[&eta]),
    ];
    let mut line = String::new();
    for (cells, parts) in tries {
        line = format!("{:>3}%", (frac * 100.0).floor() as u32);
        if cells > 0 {
            let full = (frac * cells as f64).round() as usize;
            line.push_str(&format!(
                " [{}{}]",
                "#".repeat(full),
                "-".repeat(cells - full)
            ));
        }
        for part in parts {
            line.push_str("  ");
            line.push_str(part);
        }
        line.push_str("  ");
        if line.chars().count() <= room {
            break;
        }
    }
    let line: String = line.chars().take(room).collect();
    let left = room.saturating_sub(line.chars().count());
    let current = escape(&p.current);
    let n = current.chars().count();
    let mut out = line;
    if n <= left {
        out.push_str(&current);
    } else if left > 3 {
        out.push_str("...");
        out.extend(current.chars().skip(n - (left - 3)));
    }
    out
}

/// `cp --dry-run`: list the host paths the copy would write, then the
/// totals and DEST's free space. Whether it fits.
fn dry_run(
    args: &CpArgs,
    fs: &dyn vmrescue::fs::FsView,
    sources: &[CopySource],
    (dest, given): (&std::path::Path, &std::path::Path),
    cancel: &AtomicBool,
) -> vmrescue::error::Result<bool> {
    let mut paths: Vec<String> = Vec::new();
    // The copy's own walk: the paths listed are the ones it would write
    // (names it would refuse are counted, not listed), and the totals come
    // from the same pass.
    let mut visit = |i: usize, rel: &[u8], _: &vmrescue::fs::Metadata| {
        let Some(src) = sources.get(i) else {
            return;
        };
        let host = match (&src.dest_name, rel.is_empty()) {
            (None, true) => return, // DEST itself
            (Some(n), true) => dest.join(std::ffi::OsStr::from_bytes(n)),
            (Some(n), false) => dest
                .join(std::ffi::OsStr::from_bytes(n))
                .join(std::ffi::OsStr::from_bytes(rel)),
            (None, false) => dest.join(std::ffi::OsStr::from_bytes(rel)),
        };
        let shown = escape(host.as_os_str().as_bytes());
        // Only the JSON document needs them all at once: a text dry run
        // of millions of files streams and keeps none.
        if args.json {
            paths.push(shown);
        } else {
            outln!("{shown}");
        }
    };
    let t = vmrescue::ops::copy::plan_visit(fs, sources, args.one_file_system, cancel, &mut visit);
    let free = vmrescue::ops::copy::free_bytes(dest)?;
    let fits = t.allocated <= free;
    if args.json {
        let doc = serde_json::json!({
            "version": super::JSON_VERSION,
            "dry_run": true,
            "dest": given.display().to_string(),
            "planned": totals_json(&t),
            "free_bytes": free,
            "fits": fits,
            "paths": paths,
        });
        super::print_json(&doc);
    }
    // Sparse files: the size alone would look as if it could not fit.
    let data = if t.allocated < t.bytes {
        format!(
            " ({} of it data, holes take none)",
            format_size(t.allocated, BINARY)
        )
    } else {
        String::new()
    };
    report(&format!(
        "dry run: would copy {}, {}: {}{data} into {} ({} free there)",
        count(t.files, "file", "files"),
        count(t.dirs, "directory", "directories"),
        format_size(t.bytes, BINARY),
        given.display(),
        format_size(free, BINARY)
    ));
    if !fits {
        report(&format!(
            "{}: {} free, the copy needs up to {} (the files' bytes allocated in the guest; holes take none)",
            given.display(),
            format_size(free, BINARY),
            format_size(t.allocated, BINARY)
        ));
    }
    Ok(fits)
}

fn totals_json(t: &Totals) -> serde_json::Value {
    serde_json::json!({
        "files": t.files,
        "symlinks": t.symlinks,
        "specials": t.specials,
        "dirs": t.dirs,
        "bytes": t.bytes,
        "allocated_bytes": t.allocated,
        "unsafe_names": t.unsafe_names,
    })
}

/// `cp --json`: what was planned, copied, skipped and failed.
fn report_json(s: &Summary, totals: Option<&Totals>, dest: &std::path::Path) -> serde_json::Value {
    let issues = |v: &[vmrescue::ops::copy::Issue]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|i| serde_json::json!({"path": escape(&i.path), "reason": i.reason}))
            .collect()
    };
    serde_json::json!({
        "version": super::JSON_VERSION,
        "dry_run": false,
        "dest": dest.display().to_string(),
        "planned": totals.map(totals_json),
        "copied": {
            "files": s.files,
            "symlinks": s.symlinks,
            "specials": s.specials,
            "hard_links": s.hard_links,
            "dirs": s.dirs,
            "bytes": s.bytes,
        },
        "unchanged": s.unchanged,
        "skipped": issues(&s.skipped),
        "skipped_count": s.skipped_count,
        "failed": issues(&s.failed),
        "failed_count": s.failed_count,
        "cancelled": s.cancelled,
        "error": s.error,
        "elapsed_seconds": s.elapsed.as_secs_f64(),
    })
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

/// Say what the copy did, on standard error; `totals` is what the plan
/// counted, `signal` the signal that stopped it (0: none).
fn print_summary(s: &Summary, totals: Option<&Totals>, signal: i32) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    if let Some(e) = &s.error {
        writeln!(err, "vmrescue: {e}")?;
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
    // The files the plan counted (every non-directory: regular files,
    // symlinks, special files, hard links), then of what kind.
    let copied = s.copied_entries();
    let planned = totals.map_or(copied + s.unchanged, |t| t.files);
    let mut head = if copied == planned {
        count(copied, "file", "files")
    } else {
        format!("{copied} of {}", count(planned, "file", "files"))
    };
    let kinds: Vec<String> = [
        (s.files, "regular", "regular"),
        (s.symlinks, "symlink", "symlinks"),
        (s.specials, "special file", "special files"),
        (s.hard_links, "hard link", "hard links"),
    ]
    .iter()
    .filter(|(n, ..)| *n > 0)
    .map(|&(n, one, many)| count(n, one, many))
    .collect();
    if s.files != copied {
        head.push_str(&format!(" ({})", kinds.join(", ")));
    }
    if s.dirs > 0 {
        head.push_str(&format!(", {}", count(s.dirs, "directory", "directories")));
    }
    if s.unchanged > 0 {
        head.push_str(&format!(
            "; {} already there and the same",
            count(s.unchanged, "file was", "files were")
        ));
    }
    writeln!(
        err,
        "vmrescue: copied {head}: {} in {:.1} s{rate}",
        format_size(s.bytes, BINARY),
        secs
    )?;
    if s.cancelled {
        let by = match nix::sys::signal::Signal::try_from(signal) {
            Ok(sig) if signal != 0 => format!("interrupted ({})", sig.as_str()),
            _ => "cancelled".to_string(),
        };
        writeln!(
            err,
            "vmrescue: {by}: the file being copied was removed; the rest was not copied"
        )?;
    }
    for (what, n, issues) in [
        ("skipped", s.skipped_count, &s.skipped),
        ("failed", s.failed_count, &s.failed),
    ] {
        if n == 0 {
            continue;
        }
        writeln!(err, "vmrescue: {what} {n}:")?;
        for i in issues {
            writeln!(err, "  {}: {}", escape(&i.path), i.reason)?;
        }
        let more = n.saturating_sub(issues.len() as u64);
        if more > 0 {
            writeln!(err, "  ... and {more} more")?;
        }
    }
    err.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_fits_the_terminal_and_keeps_the_eta() {
        let p = Progress {
            bytes_done: 1_234_567_890,
            bytes_total: 12_345_678_901,
            files_done: 12_345,
            files_total: 123_456,
            current: b"/var/lib/mysql/ibdata1".to_vec(),
            elapsed: Duration::from_secs(10),
            rate: 123_456_789.0,
            eta: Some(Duration::from_secs(3_725)),
        };
        for width in [20, 40, 60, 80, 100, 200] {
            let line = progress_line(&p, width);
            assert!(line.chars().count() < width, "{width}: {line}");
            if width >= 40 {
                assert!(line.contains("ETA 1:02:05"), "{width}: {line}");
            }
        }
        let wide = progress_line(&p, 200);
        assert!(wide.contains("12345/123456 files"), "{wide}");
        assert!(wide.ends_with("/var/lib/mysql/ibdata1"), "{wide}");
        assert!(progress_line(&p, 80).contains("GiB"));
    }
}
