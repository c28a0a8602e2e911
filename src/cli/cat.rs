//! `vmrescue cat`.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use clap::Args;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView};
use vmrescue::text::escape;

use super::guest::GuestArgs;
use super::{exit, report};

/// Bytes read per call.
const CHUNK: usize = 1 << 20;

/// Arguments of `cat`.
#[derive(Args, Debug)]
#[command(override_usage = "vmrescue cat [OPTIONS] <IMAGE> <PATH>...\n       \
                            vmrescue cat [OPTIONS] --demo <PATH>...")]
pub(super) struct CatArgs {
    #[command(flatten)]
    guest: GuestArgs,
    /// IMAGE (unless --demo), then guest paths (symlinks are followed inside the guest).
    #[arg(value_name = "IMAGE | PATH", required = true)]
    args: Vec<OsString>,
}

/// Why writing one file stopped.
enum Stop {
    /// The reader (e.g. `head`) went away: not an error.
    Closed,
    /// Standard output cannot be written (a full disk...): the job cannot be done.
    Output(String),
    Failed(String),
}

/// Run `cat`.
pub(super) fn run(args: &CatArgs) -> u8 {
    let (target, paths) = match args.guest.split(args.args.clone()) {
        Ok(x) => x,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if paths.is_empty() {
        report(&"PATH is missing: which guest file?");
        return exit::ERROR;
    }
    let guest = match args.guest.open(&target, false) {
        Ok(g) => g,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let paths: Vec<OsString> = paths.iter().map(|p| guest.guest_path(p)).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut code = if guest.damaged {
        exit::PROBLEMS
    } else {
        exit::OK
    };
    let mut buf = vec![0u8; CHUNK];
    for p in &paths {
        if let Some(why) = guest.mounted_elsewhere(p.as_bytes()) {
            report(&why);
            code = exit::PROBLEMS;
            continue;
        }
        match cat_one(&*guest.fs, p.as_bytes(), &mut out, &mut buf) {
            Ok(()) => {}
            Err(Stop::Closed) => return code,
            Err(Stop::Output(e)) => {
                report(&e);
                return exit::ERROR;
            }
            Err(Stop::Failed(e)) => {
                report(&e);
                for (_, why) in guest.not_here(p.as_bytes(), false) {
                    report(&why);
                }
                code = exit::PROBLEMS;
            }
        }
    }
    if let Err(e) = out.flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        report(&format!("writing to standard output: {e}"));
        code = exit::ERROR;
    }
    if guest.finish() {
        code = exit::PROBLEMS;
    }
    code
}

fn cat_one(fs: &dyn FsView, path: &[u8], out: &mut dyn Write, buf: &mut [u8]) -> Result<(), Stop> {
    let r = resolve(fs, path, true).map_err(|e| Stop::Failed(e.to_string()))?;
    let meta = fs
        .metadata(r.node)
        .map_err(|e| Stop::Failed(e.to_string()))?;
    match meta.file_type {
        FileType::Regular => {}
        FileType::Directory => {
            return Err(Stop::Failed(format!("{}: is a directory", escape(path))));
        }
        t => {
            return Err(Stop::Failed(format!(
                "{}: not a regular file ({})",
                escape(path),
                t.ls_char()
            )));
        }
    }
    let mut off = 0u64;
    while off < meta.size {
        let want = usize::try_from(meta.size - off)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = fs
            .read_at(r.node, off, &mut buf[..want])
            .map_err(|e| Stop::Failed(format!("{}: {e}", escape(path))))?;
        if n == 0 {
            return Err(Stop::Failed(format!(
                "{}: the data ends at byte {off}, before the file's size ({} bytes)",
                escape(path),
                meta.size
            )));
        }
        out.write_all(&buf[..n]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Stop::Closed
            } else {
                Stop::Output(format!("writing to standard output: {e}"))
            }
        })?;
        off += n as u64;
    }
    Ok(())
}
