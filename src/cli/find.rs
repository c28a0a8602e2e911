//! `vmrescue find`.
//!
//! find's own spelling is accepted: `-name GLOB` as well as `--name GLOB`
//! ([`translate`] turns the single-dash names into clap's long options before
//! parsing), and values that start with `-` (`-size -1M`, `-mmin -30`).

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::AtomicBool;

use clap::Args;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView, Timestamp};
use vmrescue::ops::find::{
    Event, Found, LsColumns, NameTest, Query, SizeTest, TimeTest, TypeSet, walk,
};
use vmrescue::ops::list::Owners;
use vmrescue::ops::records::{self, Known};
use vmrescue::text::escape;

use super::guest::{Guest, GuestArgs};
use super::{exit, report};

/// find's tests and actions written with one dash, and whether each takes a value.
const SINGLE_DASH: &[(&str, bool)] = &[
    ("-name", true),
    ("-iname", true),
    ("-type", true),
    ("-size", true),
    ("-mmin", true),
    ("-mtime", true),
    ("-newer", true),
    ("-maxdepth", true),
    ("-mindepth", true),
    ("-xdev", false),
    ("-mount", false),
    ("-ls", false),
    ("-print", false),
];

/// The command line with `vmrescue find`'s single-dash options (`-name`)
/// spelt as clap's long options (`--name`); other commands' are left alone.
pub(crate) fn translate(args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_none_or(|a| a != "find") {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    let mut rest = false;
    for (i, a) in args.into_iter().enumerate() {
        if i < 2 || value_next || rest {
            value_next = false;
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let known = a
            .to_str()
            .and_then(|s| SINGLE_DASH.iter().find(|(n, _)| *n == s));
        match known {
            Some((name, takes)) => {
                value_next = *takes;
                out.push(format!("-{name}").into());
            }
            None => {
                // `--name GLOB`: the value follows too.
                value_next = a.to_str().is_some_and(|s| {
                    SINGLE_DASH
                        .iter()
                        .any(|(n, takes)| *takes && s.strip_prefix('-') == Some(n))
                });
                out.push(a);
            }
        }
    }
    out
}

/// Arguments of `find`.
#[derive(Args, Debug)]
#[command(
    override_usage = "vmrescue find [OPTIONS] <IMAGE> [PATH]... [TESTS]\n       \
                            vmrescue find [OPTIONS] --demo [PATH]... [TESTS]"
)]
#[command(
    after_help = "Tests and actions may be written as find writes them (-name, -type, \
    -size, -mmin, -mtime, -newer, -xdev, -ls, -maxdepth, -mindepth) or with two dashes. \
    All tests given must pass: an implicit AND; there is no -o, ! or parentheses. Paths are \
    printed as given, then the names below them, escaped as `ls` escapes them; on a Windows \
    guest a start path `C:\\Users` is the tree's `/C:/Users`, and printed so. Times are UTC.\n\n\
    Examples:\n  vmrescue find disk.qcow2 /etc -name '*.conf' -mtime -2\n  \
    vmrescue find disk.qcow2 / -xdev -type f -size +100M -ls\n  \
    vmrescue find disk.qcow2 /var/log -newer /etc/passwd --json"
)]
pub(crate) struct FindArgs {
    #[command(flatten)]
    guest: GuestArgs,
    /// The last component matches the shell glob (`*`, `?`, `[...]`, `\`);
    /// `*` matches a leading dot, as in find. Repeatable (all must match).
    #[arg(long = "name", value_name = "GLOB", allow_hyphen_values = true)]
    names: Vec<OsString>,
    /// Like --name, ASCII letters in either case.
    #[arg(long = "iname", value_name = "GLOB", allow_hyphen_values = true)]
    inames: Vec<OsString>,
    /// The type: f, d, l, b, c, p, s, or a comma list (`f,l`).
    #[arg(long = "type", value_name = "TYPES")]
    types: Vec<String>,
    /// Size in units rounded up, as find: `N` exactly, `+N` more, `-N` less;
    /// units c (bytes), w (2 bytes), b (512, the default), k, M, G
    /// (`-size -1M` is empty files only).
    #[arg(
        long = "size",
        value_name = "[+-]N[cwbkMG]",
        allow_hyphen_values = true
    )]
    sizes: Vec<String>,
    /// Modified N minutes ago (`-N` less, `+N` more), as find counts them.
    #[arg(long = "mmin", value_name = "[+-]N", allow_hyphen_values = true)]
    mmins: Vec<String>,
    /// Modified N 24-hour periods ago, rounded down (`-N` less, `+N` more), as find.
    #[arg(long = "mtime", value_name = "[+-]N", allow_hyphen_values = true)]
    mtimes: Vec<String>,
    /// Modified more recently than the guest file PATH (not followed if a symlink).
    #[arg(long = "newer", value_name = "PATH")]
    newer: Vec<OsString>,
    /// Do not descend into directories on other volumes (the mountpoint itself is tested).
    #[arg(long = "xdev", visible_alias = "mount")]
    xdev: bool,
    /// Descend at most N levels below the start paths (0: the start paths only).
    #[arg(long = "maxdepth", value_name = "N")]
    max_depth: Option<usize>,
    /// Test and print nothing above N levels below the start paths.
    #[arg(long = "mindepth", value_name = "N", default_value_t = 0)]
    min_depth: usize,
    /// Print each match as `find -ls` does: inode, KiB, mode, links, owner,
    /// group, size, date (UTC), path, `-> target`.
    #[arg(long = "ls")]
    ls: bool,
    /// Print paths (the default; accepted for find's sake).
    #[arg(long = "print", hide = true)]
    _print: bool,
    /// Print one JSON array of objects: path, type, mode, perm, inode, nlink,
    /// uid, gid, user, group, size, rdev, mtime, mtime_nsec, mtime_iso,
    /// target, error (docs/json.md).
    #[arg(long, conflicts_with_all = ["ls", "csv"])]
    json: bool,
    /// Print CSV with a header line: the same fields as --json.
    #[arg(long, conflicts_with = "ls")]
    csv: bool,
    /// Numeric owners and groups (do not read the guest's /etc/passwd).
    #[arg(short = 'n', long = "numeric")]
    numeric: bool,
    /// "Now" for -mmin, -mtime and -ls dates, in seconds since the epoch (tests).
    #[arg(long, hide = true, value_name = "SECONDS")]
    now: Option<String>,
    /// IMAGE (unless --demo), then guest paths to start from (default `/`).
    #[arg(value_name = "IMAGE | PATH")]
    args: Vec<OsString>,
}

/// "Now", or the time `--now` names.
fn now(arg: Option<&str>) -> Result<Timestamp, String> {
    match arg {
        None => Ok(Timestamp::now()),
        Some(s) => {
            let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
            let sec = sec.parse().map_err(|_| format!("--now {s}: not a time"))?;
            let mut digits = frac.to_string();
            digits.truncate(9);
            while digits.len() < 9 {
                digits.push('0');
            }
            let nsec = digits
                .parse()
                .map_err(|_| format!("--now {s}: not a time"))?;
            Ok(Timestamp { sec, nsec })
        }
    }
}

impl FindArgs {
    /// The query the tests ask for (`-newer` paths resolved in the guest,
    /// `C:\...` on a Windows guest too).
    fn query(&self, guest: &Guest, now: Timestamp) -> Result<Query, String> {
        let fs = &*guest.fs;
        let mut q = Query {
            xdev: self.xdev,
            min_depth: self.min_depth,
            max_depth: self.max_depth,
            want_metadata: self.ls || self.json || self.csv,
            ..Query::default()
        };
        for n in &self.names {
            q.names.push(NameTest {
                glob: n.as_bytes().to_vec(),
                fold: false,
            });
        }
        for n in &self.inames {
            q.names.push(NameTest {
                glob: n.as_bytes().to_vec(),
                fold: true,
            });
        }
        for t in &self.types {
            let set = TypeSet::parse(t).map_err(|e| e.to_string())?;
            q.types = Some(match q.types {
                // Two -type tests: both must hold.
                Some(old) => old.and(set),
                None => set,
            });
        }
        for s in &self.sizes {
            q.sizes.push(SizeTest::parse(s).map_err(|e| e.to_string())?);
        }
        for m in &self.mmins {
            q.times
                .push(TimeTest::mmin(m, now).map_err(|e| e.to_string())?);
        }
        for m in &self.mtimes {
            q.times
                .push(TimeTest::mtime(m, now).map_err(|e| e.to_string())?);
        }
        for p in &self.newer {
            let m = resolve(fs, guest.guest_path(p).as_bytes(), false)
                .and_then(|r| fs.metadata(r.node))
                .map_err(|e| format!("-newer {}: {e}", escape(p.as_bytes())))?;
            q.newer.push(m.mtime);
        }
        Ok(q)
    }
}

/// How matches are printed.
enum Printer {
    Paths,
    Ls(LsColumns),
    Records(records::Printer),
}

/// Run `find`.
pub(crate) fn run(args: &FindArgs) -> u8 {
    let (target, paths) = match args.guest.split(args.args.clone()) {
        Ok(x) => x,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let now = match now(args.now.as_deref()) {
        Ok(t) => t,
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
    let query = match args.query(&guest, now) {
        Ok(q) => q,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let owners = if (args.ls || args.json || args.csv) && !args.numeric {
        Owners::from_guest(fs)
    } else {
        Owners::numeric()
    };
    let paths: Vec<Vec<u8>> = if paths.is_empty() {
        vec![b"/".to_vec()]
    } else {
        paths
            .iter()
            .map(|p| guest.guest_path(p).as_bytes().to_vec())
            .collect()
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printer = if args.json {
        Printer::Records(records::Printer::new(records::Format::Json))
    } else if args.csv {
        Printer::Records(records::Printer::new(records::Format::Csv))
    } else if args.ls {
        Printer::Ls(LsColumns::new(now))
    } else {
        Printer::Paths
    };
    let mut problems = guest.damaged;
    let mut write_err: Option<std::io::Error> = None;
    let cancel = AtomicBool::new(false);
    if let Printer::Records(r) = &mut printer
        && let Err(e) = r.begin(&mut out)
    {
        write_err = Some(e);
    }
    for p in &paths {
        if write_err.is_some() {
            break;
        }
        let mut emit = |ev: Event| match ev {
            Event::Found(f) => {
                if write_err.is_none()
                    && let Err(e) = print(&mut out, &mut printer, fs, &owners, &f)
                {
                    write_err = Some(e);
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Event::Problem(msg) => {
                problems = true;
                let _ = out.flush();
                report(&format!("find: {msg}"));
            }
            Event::Progress(_) => {}
        };
        if let Err(e) = walk(fs, p, &query, &cancel, &mut emit) {
            problems = true;
            let _ = out.flush();
            report(&format!("find: {e}"));
        }
        // Mounts of the guest on or below the start whose files are not
        // here: not searched, so said (exit code 1), as `cp` does.
        for (_, why) in guest.not_here(p, true) {
            problems = true;
            let _ = out.flush();
            report(&format!("find: {why}"));
        }
    }
    if write_err.is_none()
        && let Printer::Records(r) = &mut printer
        && let Err(e) = r.end(&mut out)
    {
        write_err = Some(e);
    }
    if write_err.is_none()
        && let Err(e) = out.flush()
    {
        write_err = Some(e);
    }
    if let Some(e) = write_err {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return exit::OK;
        }
        report(&format!("writing to standard output: {e}"));
        return exit::ERROR;
    }
    if guest.finish() || problems {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}

/// Print one match.
fn print(
    out: &mut dyn Write,
    printer: &mut Printer,
    fs: &dyn FsView,
    owners: &Owners,
    f: &Found,
) -> std::io::Result<()> {
    let target = || {
        (f.file_type == FileType::Symlink)
            .then(|| fs.read_link(f.node).ok())
            .flatten()
    };
    match printer {
        Printer::Paths => writeln!(out, "{}", f.shown),
        Printer::Ls(cols) => match &f.meta {
            Some(m) => writeln!(
                out,
                "{}",
                cols.line(&f.shown, m, owners, target().as_deref())
            ),
            None => writeln!(out, "?????????? {}", f.shown),
        },
        Printer::Records(r) => {
            let known = match &f.meta {
                Some(m) => Known::Meta(m),
                None => Known::Unreadable {
                    file_type: Some(f.file_type),
                    why: "metadata could not be read",
                },
            };
            r.record(
                out,
                &records::record(&f.shown, known, owners, target().as_deref()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn single_dash_options_become_long_ones() {
        assert_eq!(
            translate(os(&[
                "vmrescue", "find", "img", "/", "-name", "-type", "-size", "-1M", "-xdev"
            ])),
            os(&[
                "vmrescue", "find", "img", "/", "--name", "-type", "--size", "-1M", "--xdev"
            ])
        );
        assert_eq!(
            translate(os(&["vmrescue", "find", "--name", "-ls", "-ls"])),
            os(&["vmrescue", "find", "--name", "-ls", "--ls"])
        );
        assert_eq!(
            translate(os(&["vmrescue", "ls", "-name"])),
            os(&["vmrescue", "ls", "-name"])
        );
    }
}
