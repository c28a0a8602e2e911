//! `vmrescue ls`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;

use clap::Args;
use vmrescue::fs::path::{join, resolve};
use vmrescue::fs::{FsView, NodeId};
use vmrescue::ops::list::{
    Entry, Owners, display_name, human_size, impossible_name, list_dir, long_lines_with,
};
use vmrescue::ops::records::{self, Known};
use vmrescue::text::escape;

use super::guest::GuestArgs;
use super::{exit, report};

/// Deepest nesting `-R` descends into.
const MAX_DEPTH: usize = 1024;

/// Arguments of `ls`.
#[derive(Args, Debug)]
#[command(override_usage = "vmrescue ls [OPTIONS] <IMAGE> [PATH]...\n       \
                            vmrescue ls [OPTIONS] --demo [PATH]...")]
// `-h` is ls's human-readable sizes, as in `ls -lh`; `--help` stays the help.
#[command(disable_help_flag = true)]
pub(super) struct LsArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    guest: GuestArgs,
    /// Long listing: mode, links, owner, group, size, mtime (UTC), name, `-> target`.
    #[arg(short = 'l')]
    long: bool,
    /// Show entries whose names start with `.`, and `.` and `..`.
    #[arg(short = 'a')]
    all: bool,
    /// List subdirectories recursively.
    #[arg(short = 'R')]
    recursive: bool,
    /// Numeric owners and groups (do not read the guest's /etc/passwd).
    #[arg(short = 'n')]
    numeric: bool,
    /// With -l, sizes as 1.5K, 210M, 3.2G (powers of 1024, as `ls -lh`).
    #[arg(short = 'h')]
    human: bool,
    /// Print one JSON array of objects, one for each entry listed (with -R,
    /// everything below): path, type, mode, perm, inode, nlink, uid, gid,
    /// user, group, size (bytes), rdev, mtime, mtime_nsec, mtime_iso,
    /// target, error, as `find --json` (docs/json.md). `.` and `..` are left out.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV with a header line: the same fields as --json.
    #[arg(long)]
    csv: bool,
    /// IMAGE (unless --demo), then guest paths (absolute or from the guest root; default `/`).
    #[arg(value_name = "IMAGE | PATH")]
    args: Vec<OsString>,
}

struct Lister<'a, W: Write> {
    fs: &'a dyn FsView,
    args: &'a LsArgs,
    owners: Owners,
    out: W,
    problems: bool,
    /// `--json` or `--csv`: records instead of lines.
    records: Option<records::Printer>,
}

/// Run `ls`.
pub(super) fn run(args: &LsArgs) -> u8 {
    let (target, paths) = match args.guest.split(args.args.clone()) {
        Ok(x) => x,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let guest = match args.guest.open(&target, true) {
        Ok(g) => g,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let fs = &*guest.fs;
    let machine = if args.json {
        Some(records::Printer::new(records::Format::Json))
    } else if args.csv {
        Some(records::Printer::new(records::Format::Csv))
    } else {
        None
    };
    let owners = if (args.long || machine.is_some()) && !args.numeric {
        Owners::from_guest(fs)
    } else {
        Owners::numeric()
    };
    let stdout = std::io::stdout();
    let mut l = Lister {
        fs,
        args,
        owners,
        out: BufWriter::with_capacity(1 << 16, stdout.lock()),
        problems: guest.damaged,
        records: machine,
    };
    let paths: Vec<Vec<u8>> = if paths.is_empty() {
        vec![b"/".to_vec()]
    } else {
        paths
            .iter()
            .map(|p| guest.guest_path(p).as_bytes().to_vec())
            .collect()
    };
    // What lies at another volume's mountpoint here is not what the guest
    // shows there (an empty directory, at most): say where to look. In the
    // whole guest, say which mounts listed here hold no files here.
    for p in &paths {
        if let Some(why) = guest.mounted_elsewhere(p) {
            report(&why);
            l.problems = true;
        }
        for (_, why) in guest.not_here(p, args.recursive) {
            report(&why);
            l.problems = true;
        }
    }
    if let Err(e) = l.run(&paths).and_then(|()| l.out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return exit::OK;
        }
        report(&format!("writing to standard output: {e}"));
        return exit::ERROR;
    }
    if guest.finish() || l.problems {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}

impl<W: Write> Lister<'_, W> {
    fn problem(&mut self, msg: &str) {
        self.problems = true;
        let _ = self.out.flush();
        report(&msg);
    }

    fn run(&mut self, paths: &[Vec<u8>]) -> std::io::Result<()> {
        if let Some(r) = &mut self.records {
            r.begin(&mut self.out)?;
        }
        self.run_paths(paths)?;
        if let Some(r) = &mut self.records {
            r.end(&mut self.out)?;
        }
        Ok(())
    }

    /// Print `entries` as records, each under its guest path (`dir/name`,
    /// or the name as given when `dir` is None).
    fn print_records(&mut self, dir: Option<&[u8]>, entries: &[Entry]) -> std::io::Result<()> {
        let Some(r) = &mut self.records else {
            return Ok(());
        };
        for e in entries {
            let path = match dir {
                Some(d) => join(d, &e.name),
                None => e.name.clone(),
            };
            let known = match &e.meta {
                Ok(m) => Known::Meta(m),
                Err(why) => Known::Unreadable {
                    file_type: None,
                    why,
                },
            };
            let target = match &e.target {
                Some(Ok(t)) => Some(t.as_slice()),
                _ => None,
            };
            let v = records::record(&escape(&path), known, &self.owners, target);
            r.record(&mut self.out, &v)?;
        }
        Ok(())
    }

    fn run_paths(&mut self, paths: &[Vec<u8>]) -> std::io::Result<()> {
        // Files first, then directories, as ls does.
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for p in paths {
            // `ls -l link` shows the link; `ls link` and `ls link/` what it points to.
            let follow = !(self.args.long || self.records.is_some()) || p.ends_with(b"/");
            match resolve(self.fs, p, follow) {
                Ok(r) => {
                    let e = Entry::read(self.fs, p.clone(), r.node);
                    if e.is_dir() {
                        dirs.push((p.clone(), r.node));
                    } else {
                        files.push(e);
                    }
                }
                Err(e) => self.problem(&e.to_string()),
            }
        }
        if !files.is_empty() {
            self.print_given(&files)?;
        }
        let headers = (paths.len() > 1 || self.args.recursive) && self.records.is_none();
        let mut first = files.is_empty();
        for (p, node) in dirs {
            self.list_tree(&p, node, headers, &mut first)?;
        }
        Ok(())
    }

    /// Print non-directories named on the command line, as typed (escaped).
    fn print_given(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        for e in entries {
            if let Err(why) = &e.meta {
                self.problem(&format!("{}: {why}", escape(&e.name)));
            }
        }
        if self.records.is_some() {
            return self.print_records(None, entries);
        }
        let show = |_: usize, e: &Entry| escape(&e.name);
        if self.args.long {
            for line in long_lines_with(entries, &self.owners, self.args.human, show) {
                writeln!(self.out, "{line}")?;
            }
        } else {
            for (i, e) in entries.iter().enumerate() {
                writeln!(self.out, "{}", show(i, e))?;
            }
        }
        Ok(())
    }

    /// List `dir` (and with `-R` everything below it, depth first in name order).
    fn list_tree(
        &mut self,
        path: &[u8],
        node: NodeId,
        headers: bool,
        first: &mut bool,
    ) -> std::io::Result<()> {
        let mut seen: HashSet<NodeId> = HashSet::new();
        let mut stack: Vec<(Vec<u8>, NodeId, Option<NodeId>, usize)> =
            vec![(path.to_vec(), node, None, 0)];
        while let Some((path, node, parent, depth)) = stack.pop() {
            if !seen.insert(node) {
                self.problem(&format!(
                    "{}: not listing a directory already listed (a loop)",
                    escape(&path)
                ));
                continue;
            }
            if headers {
                if !*first {
                    writeln!(self.out)?;
                }
                writeln!(self.out, "{}:", escape(&path))?;
            }
            *first = false;
            let mut entries = match list_dir(self.fs, node) {
                Ok(e) => e,
                Err(e) => {
                    self.problem(&format!("{}: {e}", escape(&path)));
                    continue;
                }
            };
            for e in &entries {
                if let Some(why) = impossible_name(&e.name) {
                    self.problem(&format!(
                        "{}: entry {} has {why}",
                        escape(&path),
                        display_name(&e.name)
                    ));
                }
            }
            if !self.args.all {
                entries.retain(|e| !e.name.starts_with(b"."));
            } else if self.records.is_some() {
                // Records name files: `.` and `..` are not ones.
            } else {
                let up = parent.unwrap_or_else(|| {
                    // `..` of the path given: resolve it inside the guest.
                    resolve(self.fs, &join(&path, b".."), true)
                        .map(|r| r.node)
                        .unwrap_or(node)
                });
                entries.insert(0, Entry::read(self.fs, b"..".to_vec(), up));
                entries.insert(0, Entry::read(self.fs, b".".to_vec(), node));
            }
            if self.records.is_some() {
                self.print_records(Some(&path), &entries)?;
            } else if self.args.long {
                let total: u64 = entries
                    .iter()
                    .filter_map(|e| e.meta.as_ref().ok())
                    .map(|m| m.allocated.unwrap_or(m.size).div_ceil(1024))
                    .sum();
                let total = if self.args.human {
                    human_size(total.saturating_mul(1024))
                } else {
                    total.to_string()
                };
                writeln!(self.out, "total {total}")?;
            }
            // The synthesized `.` and `..` are shown plainly; entries of
            // those names read from the directory are shown escaped.
            let synthesized = if self.args.all && self.records.is_none() {
                2
            } else {
                0
            };
            let show = |i: usize, e: &Entry| {
                if i < synthesized {
                    String::from_utf8_lossy(&e.name).into_owned()
                } else {
                    display_name(&e.name)
                }
            };
            if self.records.is_some() {
                // Printed above.
            } else if self.args.long {
                for line in long_lines_with(&entries, &self.owners, self.args.human, show) {
                    writeln!(self.out, "{line}")?;
                }
            } else {
                for (i, e) in entries.iter().enumerate() {
                    writeln!(self.out, "{}", show(i, e))?;
                }
            }
            if self.args.recursive {
                if depth + 1 >= MAX_DEPTH {
                    self.problem(&format!(
                        "{}: nested more than {MAX_DEPTH} directories deep: not descending",
                        escape(&path)
                    ));
                    continue;
                }
                for e in entries.iter().skip(synthesized).rev() {
                    if e.is_dir() && impossible_name(&e.name).is_none() {
                        stack.push((join(&path, &e.name), e.node, Some(node), depth + 1));
                    }
                }
            }
        }
        Ok(())
    }
}
