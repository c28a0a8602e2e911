//! Copy files out of a guest filesystem onto the host.
//!
//! One job serves `vmrescue cp` and the TUI: [`plan`] walks the selection and
//! counts files and bytes, [`CopyJob::run`] copies on the caller's thread and
//! [`CopyJob::spawn`] on a thread of its own; both report [`CopyEvent`]s
//! (progress at most every 100 ms) and honour a cancel flag checked at least
//! every MiB. The end is a [`Summary`]: what was copied, what was skipped or
//! failed and why. A failing file never stops the batch.
//!
//! Nothing lies about being complete: every file, symlink, node and hard
//! link is made under a hidden temporary name in its destination directory
//! (`.NAME.vmrescue-XXXXXX`), given its mode, owner, xattrs and times, and
//! only then renamed to its real name. An interrupted copy leaves no
//! truncated file under a real name: a cancelled job removes its temporary
//! file, and [`partial_files`] names the one being written (for a process
//! that must end at once).
//!
//! What is kept: contents with their holes (a sparse file stays sparse),
//! mode, mtime and atime (also of symlinks), symlinks as symlinks (never
//! followed, neither in the guest nor on the host), hard links within the
//! copied set, and, when asked (as root), owners, xattrs and device nodes.
//!
//! Safety: every object is created relative to a descriptor of its parent
//! directory (`openat`/`mkdirat`/`symlinkat`/`mknodat` with `O_NOFOLLOW`,
//! `O_EXCL`), directories are entered with `O_NOFOLLOW | O_DIRECTORY`, and
//! guest names that could leave their directory (containing `/` or NUL,
//! empty, `.` or `..`) are reported and skipped, never written. So nothing —
//! not even a symlink planted inside the destination beforehand — can make
//! the copy write outside the destination directory.
//!
//! Speed: when the filesystem can say where a file's bytes lie in a host
//! file ([`FsView::host_extent`], e.g. a raw image), they are moved with
//! `copy_file_range` without passing through user space; otherwise read in
//! 1 MiB pieces, the pieces after the one being written read (decompressed)
//! by the job's reader threads, one per CPU ([`ReadAhead`]: started at the
//! first file of more than one piece, at most [`AHEAD`] pieces asked, a
//! piece per thread in turn, buffers reused), so reading, decompressing and
//! writing use every core. Before the files of a directory
//! are copied, the filesystem is told which inodes and data the next
//! batches need ([`FsView::prefetch`]: ext asks the kernel to read them in
//! disk order), so a cold copy does not wait for one seek per file; and a
//! thread reads the next directories' listings and inodes a few
//! directories ahead of the walk ([`warm`]), so that the walk does not
//! wait for them either.
//! Small files (up to [`SMALL_FILE`] bytes, one name) are read whole by the
//! walk and made by the job's writer threads ([`Writers`]), so that making
//! files on the host, most of a small-file copy's time, runs beside the
//! reading; a directory gets its times and mode once its files are made.
//! A writer makes a small file without a name (`O_TMPFILE`) and links it
//! under its real name once complete (`linkat`, which never replaces), so
//! it has no temporary name to clean up, even after a `kill -9`, and no
//! rename; in a directory the job made itself ([`Made`]) that is five
//! system calls (`openat` with its final mode, `write`, `futimens`,
//! `linkat`, `close`): no lookup first, and no `fchown`/`fchmod` whose
//! result the creation already gave. Where the destination has no
//! `O_TMPFILE` (or `--overwrite` asks to replace), the temporary name.
//! Memory stays bounded whatever the tree: a few buffers, the small files
//! handed to the writer ([`WRITER_BYTES`] at most), one listing per open
//! directory level, and the hard-linked files seen.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::fs::path::{components, is_safe_name, join, resolve, split_last};
use crate::fs::{FileType, FsView, Metadata, NodeId, Timestamp, Xattr};
use crate::text::escape;

mod read;
mod warm;
mod writer;

use read::*;
use writer::*;

/// Deepest directory nesting copied (each level holds one open descriptor).
pub const MAX_DEPTH: usize = 256;
/// Size of the read buffer for files that cannot be moved by the kernel.
pub const BUFFER: usize = 1 << 20;
/// Most bytes moved by one `copy_file_range` call (so cancel stays quick).
const KERNEL_CHUNK: u64 = 8 << 20;
/// How the kernel may move file data for this job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KernelCopy {
    /// `copy_file_range` first.
    CopyFileRange,
    /// `copy_file_range` failed (another filesystem...): `sendfile`.
    Sendfile,
    /// Neither works: read and write.
    Off,
}

/// Entries of a directory whose reads are announced to the filesystem at
/// once ([`FsView::prefetch`]).
const PREFETCH_BATCH: usize = 512;

/// Chunks of [`BUFFER`] bytes asked of a job's reader threads at most (so
/// at most this many buffers, and one more being written, per job).
const AHEAD: usize = 4;

/// Regular files of at most this many bytes (and a single name) are read
/// whole by the walk and handed to the job's writer threads, which make
/// them ([`Writers`]).
const SMALL_FILE: u64 = 1 << 20;
/// Bytes of file data handed to the writer threads and not yet written, at
/// most.
const WRITER_BYTES: usize = 8 << 20;
/// Files handed to the writer threads and not yet written, at most.
const WRITER_FILES: usize = 1024;
/// Writer threads of a job at most (one per CPU): the files of one
/// directory all go to the same one, in order.
const WRITERS: usize = 2;
/// Directories waiting for their files to be written before they get their
/// times, at most (each holds a descriptor).
const WAITING_DIRS: usize = 256;
/// Small files sent to a writer in one message, at most (and at most
/// [`BATCH_BYTES`] of data): one wake-up a batch, not one a file.
const WRITER_BATCH: usize = 64;
const BATCH_BYTES: usize = 1 << 20;

/// Skipped or failed files kept with their reasons (all are counted).
pub const MAX_ISSUES: usize = 10_000;
/// Least time between two progress events.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What to do when a name already exists in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Leave it and report the file as failed.
    #[default]
    Refuse,
    /// Replace it (never a directory with a file: that is reported instead).
    Overwrite,
    /// Leave it and report the file as skipped.
    Skip,
    /// Keep it when it is the same as the guest's (same type; same size
    /// and mtime for files, same target for symlinks): counted as
    /// [`Summary::unchanged`], not a problem. When it differs, keep it and
    /// report the file as failed (a conflict). What `cp --skip-existing`
    /// does, so that a rerun after an interrupted copy finishes the job.
    SkipSame,
}

/// How to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Existing names in the destination.
    pub existing: Existing,
    /// Give copies the guest's owner and group (needs root).
    pub owner: bool,
    /// Copy extended attributes (all namespaces need root but `user.`).
    pub xattrs: bool,
    /// Create device nodes (needs root); otherwise they are skipped.
    pub devices: bool,
    /// Let the kernel move the bytes (`copy_file_range`, else `sendfile`)
    /// where they lie plainly in a host file.
    pub kernel_copy: bool,
    /// Stay on the device of each source (`cp -x`): a directory on another
    /// ([`FsView::dev`], another mount of the guest) is created, empty.
    pub one_file_system: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            existing: Existing::Refuse,
            owner: false,
            xattrs: false,
            devices: false,
            kernel_copy: true,
            one_file_system: false,
        }
    }
}

impl CopyOptions {
    /// Options for this process: owners, xattrs and device nodes when running
    /// as root, unless `no_owner`.
    pub fn for_this_user(no_owner: bool) -> CopyOptions {
        let root = rustix::process::geteuid().is_root();
        CopyOptions {
            owner: root && !no_owner,
            xattrs: root && !no_owner,
            devices: root,
            ..CopyOptions::default()
        }
    }
}

/// One thing to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// The node to copy.
    pub node: NodeId,
    /// Its path in the guest (for messages).
    pub guest_path: Vec<u8>,
    /// The name it gets in the destination directory; `None` copies the
    /// contents of a directory into the destination itself (`dir/.`).
    pub dest_name: Option<Vec<u8>>,
}

impl CopySource {
    /// The source named by guest path `path` (absolute, or relative to the
    /// guest root), the way `cp -a` reads its arguments: a symlink is copied
    /// as a symlink, unless the path ends with `/` (then the directory it
    /// points to, inside the guest, is copied under the link's name); a path
    /// ending in `/.`, or the root, copies a directory's contents.
    pub fn resolve(fs: &dyn FsView, path: &[u8]) -> Result<CopySource> {
        let last = components(path).next_back();
        let contents = last == Some(b".".as_slice());
        let follow = path.ends_with(b"/") || contents;
        let r = resolve(fs, path, follow)?;
        let dest_name = if contents || r.path == b"/" {
            None
        } else {
            match last {
                Some(l) if is_safe_name(l) => Some(l.to_vec()),
                _ => split_last(&r.path).1,
            }
        };
        if dest_name.is_none() && fs.metadata(r.node)?.file_type != FileType::Directory {
            return Err(Error::Invalid(format!("{}: not a directory", escape(path))));
        }
        Ok(CopySource {
            node: r.node,
            guest_path: r.path,
            dest_name,
        })
    }
}

/// What a selection holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Entries that are not directories (files, symlinks, nodes; every hard link).
    pub files: u64,
    /// Of those, symbolic links.
    pub symlinks: u64,
    /// Of those, device nodes, FIFOs and sockets.
    pub specials: u64,
    /// Entries left out because their names could escape the destination.
    pub unsafe_names: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes of regular files (apparent size; hard-linked files once).
    pub bytes: u64,
    /// What the copy may take on the host: each of those files' bytes
    /// allocated in the guest (holes take none; fallocated ranges are
    /// counted though they copy as holes), at most its apparent size; its
    /// apparent size where the filesystem does not say.
    pub allocated: u64,
}

/// Where a running copy is.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Bytes done (a file's holes count when the file is done).
    pub bytes_done: u64,
    /// Bytes in the selection.
    pub bytes_total: u64,
    /// Non-directory entries done (copied, skipped or failed).
    pub files_done: u64,
    /// Non-directory entries in the selection.
    pub files_total: u64,
    /// Guest path of the entry being copied.
    pub current: Vec<u8>,
    /// Time since the copy started (planning excluded).
    pub elapsed: Duration,
    /// Average bytes per second so far.
    pub rate: f64,
    /// Estimated time left, once a rate is known.
    pub eta: Option<Duration>,
}

/// A file that was not copied (or not completely), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Its path in the guest.
    pub path: Vec<u8>,
    /// Why.
    pub reason: String,
}

/// The outcome of a copy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Regular files written.
    pub files: u64,
    /// Directories created or merged into.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Device nodes, FIFOs and sockets created.
    pub specials: u64,
    /// Hard links made to an earlier copy instead of a second copy.
    pub hard_links: u64,
    /// Entries already in the destination and the same as the guest's
    /// (only with [`Existing::SkipSame`]): neither copied nor a problem.
    pub unchanged: u64,
    /// Bytes of regular files written (apparent size).
    pub bytes: u64,
    /// Bytes moved by the kernel (`copy_file_range` or `sendfile`) without
    /// passing through this process; small files, read whole and written
    /// by the writer threads, never are.
    pub kernel_bytes: u64,
    /// Entries skipped, with reasons (at most [`MAX_ISSUES`]).
    pub skipped: Vec<Issue>,
    /// How many entries were skipped.
    pub skipped_count: u64,
    /// Entries that failed, with reasons (at most [`MAX_ISSUES`]).
    pub failed: Vec<Issue>,
    /// How many entries failed.
    pub failed_count: u64,
    /// The copy was cancelled before the end.
    pub cancelled: bool,
    /// The job could not run at all (destination unusable, ...).
    pub error: Option<String>,
    /// Time the copy took (planning excluded).
    pub elapsed: Duration,
}

impl Summary {
    /// Nothing failed, nothing was skipped, and the copy ran to its end.
    pub fn is_clean(&self) -> bool {
        self.failed_count == 0 && self.skipped_count == 0 && !self.cancelled && self.error.is_none()
    }

    /// Non-directory entries copied, the way [`Totals::files`] counts them:
    /// files, symlinks, special files and hard links. With the entries
    /// [`Summary::unchanged`], skipped and failed (and those inside a
    /// directory that failed, counted in its reason) this is the plan's count.
    pub fn copied_entries(&self) -> u64 {
        self.files
            .saturating_add(self.symlinks)
            .saturating_add(self.specials)
            .saturating_add(self.hard_links)
    }

    /// Count `path` as skipped, with the reason: for what the caller knows
    /// a walk cannot see (a guest mountpoint whose volume cannot be read).
    pub fn add_skipped(&mut self, path: &[u8], reason: impl Into<String>) {
        self.skip(path, reason);
    }

    fn skip(&mut self, path: &[u8], reason: impl Into<String>) {
        let issue = Issue {
            path: path.to_vec(),
            reason: reason.into(),
        };
        push_capped(&mut self.skipped, &mut self.skipped_count, issue);
    }

    fn fail(&mut self, path: &[u8], reason: impl Into<String>) {
        let issue = Issue {
            path: path.to_vec(),
            reason: reason.into(),
        };
        push_capped(&mut self.failed, &mut self.failed_count, issue);
    }
}

/// Count `item` in `count`, and keep it in `list` while the list holds
/// fewer than [`MAX_ISSUES`]: a summary of millions of failures stays small
/// and still says how many there were.
pub fn push_capped<T>(list: &mut Vec<T>, count: &mut u64, item: T) {
    *count += 1;
    if list.len() < MAX_ISSUES {
        list.push(item);
    }
}

/// What a copy job reports.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyEvent {
    /// The selection was counted.
    Planned(Totals),
    /// Progress (at most every 100 ms, and once at the end).
    Progress(Progress),
    /// The job ended (only sent by [`CopyJob::spawn`]).
    Finished(Box<Summary>),
}

/// Temporary files being written right now by the jobs of this process.
static WRITING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The temporary files the copy jobs of this process are writing at this
/// moment (host paths): what would be left incomplete if the process
/// ended now. For a second Ctrl-C that ends the process at once.
pub fn partial_files() -> Vec<PathBuf> {
    existing(&WRITING.lock().unwrap_or_else(|e| e.into_inner()))
}

/// [`partial_files`], for a process about to end at once: from this call
/// on, no copy job of this process removes or renames its temporary file
/// (they wait for the end), so the list stays true until the process ends.
pub fn partial_files_at_exit() -> Vec<PathBuf> {
    let held = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let list = existing(&held);
    std::mem::forget(held);
    list
}

/// Those of `listed` that exist (they are listed a moment before they are
/// made).
fn existing(listed: &[PathBuf]) -> Vec<PathBuf> {
    listed
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .cloned()
        .collect()
}

/// A temporary file listed in [`partial_files`] while it lives.
struct Writing(PathBuf);

impl Writing {
    fn new(path: PathBuf) -> Writing {
        WRITING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.clone());
        Writing(path)
    }

    /// Run `f` (which removes or renames the file) and unlist the file, as
    /// one step for [`partial_files_at_exit`].
    fn finish<R>(mut self, f: impl FnOnce() -> R) -> R {
        let mut w = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let r = f();
        if let Some(i) = w.iter().position(|p| *p == self.0) {
            w.swap_remove(i);
        }
        self.0 = PathBuf::new();
        r
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        let mut w = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = w.iter().position(|p| *p == self.0) {
            w.swap_remove(i);
        }
    }
}

/// The hidden temporary name a copy of `name` is written under first:
/// `.NAME.vmrescue-XXXXXX` (the name cut to fit the 255-byte limit).
fn temp_name(name: &[u8], attempt: u32) -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(name);
    h.write_u32(attempt);
    // The process id, asked of the kernel once.
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    h.write_u32(*PID.get_or_init(std::process::id));
    let mut out = b".".to_vec();
    out.extend_from_slice(&name[..name.len().min(200)]);
    out.extend_from_slice(format!(".vmrescue-{:06x}", h.finish() & 0xff_ffff).as_bytes());
    out
}

/// Filesystems that take no files whatever their permissions say (sysfs,
/// procfs, cgroup, cgroup2, debugfs, tracefs, securityfs), by `statfs` magic.
const PSEUDO_FILESYSTEMS: &[(u64, &str)] = &[
    (0x6265_6572, "sysfs"),
    (0x9fa0, "proc"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
];

/// Check that a copy into host directory `dir` can create files there,
/// before anything is copied, writing nothing: the directory must be on a
/// filesystem mounted read-write (`statvfs`) that takes files (not sysfs,
/// procfs...), and this process must be allowed to write and enter it
/// (`faccessat(W_OK | X_OK, AT_EACCESS)`). When `dir` does not exist yet,
/// its parent is checked (the copy would create `dir` there). The error
/// names the host path and why (`/mnt/usb: on a read-only filesystem`).
/// For `cp` and for the browser before Enter starts a copy.
pub fn check_destination(dir: &Path) -> Result<()> {
    let (at, missing) = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => (dir.to_path_buf(), false),
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{}: not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (parent, true)
        }
        Err(e) => return Err(Error::io(dir.display().to_string(), e)),
    };
    let fd = rustix::fs::open(
        &at,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let what = if missing && e == Errno::NOENT {
            format!("{} (the parent of {})", at.display(), dir.display())
        } else {
            at.display().to_string()
        };
        Error::io(what, io_err(e))
    })?;
    let cannot = |e: Errno| {
        Error::io(
            format!("{}: cannot create files there", at.display()),
            io_err(e),
        )
    };
    let vfs = rustix::fs::fstatvfs(&fd).map_err(cannot)?;
    if vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Err(Error::Invalid(format!(
            "{}: on a read-only filesystem; choose another destination",
            at.display()
        )));
    }
    let magic = rustix::fs::fstatfs(&fd).map_err(cannot)?.f_type as u64;
    if let Some((_, name)) = PSEUDO_FILESYSTEMS.iter().find(|(m, _)| *m == magic) {
        return Err(Error::Invalid(format!(
            "{}: cannot create files there: it is on {name}, which takes no files",
            at.display()
        )));
    }
    rustix::fs::accessat(
        &fd,
        ".",
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .map_err(cannot)
}

/// [`check_destination`] for a copy that creates `dir` with all its missing
/// parents (the browser's `./rescued/<image>/<volume>/`): the nearest folder
/// that exists is the one that must take files.
pub fn check_destination_and_parents(dir: &Path) -> Result<()> {
    check_destination(nearest_existing(dir))
}

/// `dir`, or the nearest of its parents that exists (`.` for a relative
/// path none of whose parents do).
fn nearest_existing(dir: &Path) -> &Path {
    let mut at = dir;
    while std::fs::symlink_metadata(at).is_err() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => return Path::new("."),
        }
    }
    at
}

/// Bytes a process without the root reserve may still write where a copy
/// into `dir` would go (`dir` or its nearest existing parent), as `df`
/// shows them available.
pub fn free_bytes(dir: &Path) -> Result<u64> {
    let at = nearest_existing(dir);
    let v = rustix::fs::statvfs(at).map_err(|e| Error::io(at.display().to_string(), io_err(e)))?;
    Ok(v.f_bavail.saturating_mul(v.f_frsize))
}

/// Count what `sources` hold, as a copy would walk them (unsafe names,
/// loops and unreadable parts are left out). Stops early when `cancel` is set.
pub fn plan(fs: &dyn FsView, sources: &[CopySource], cancel: &AtomicBool) -> Totals {
    plan_within(fs, sources, false, cancel)
}

/// [`plan`]; with `one_file_system`, directories on another device than
/// their source are counted but not entered (`cp -x`).
pub fn plan_within(
    fs: &dyn FsView,
    sources: &[CopySource],
    one_file_system: bool,
    cancel: &AtomicBool,
) -> Totals {
    plan_visit(fs, sources, one_file_system, cancel, &mut |_, _, _| {})
}

/// [`plan_within`], telling `visit` each entry the copy would write, in the
/// order of this walk: the index of its source in `sources`, its path below
/// that source (empty for the source itself) and its metadata.
pub fn plan_visit(
    fs: &dyn FsView,
    sources: &[CopySource],
    one_file_system: bool,
    cancel: &AtomicBool,
    visit: &mut dyn FnMut(usize, &[u8], &Metadata),
) -> Totals {
    let mut t = Totals::default();
    let mut linked: HashSet<NodeId> = HashSet::new();
    let mut seen_dirs: HashSet<NodeId> = HashSet::new();
    let mut count = |t: &mut Totals, m: &Metadata| {
        if m.file_type == FileType::Directory {
            t.dirs += 1;
        } else {
            t.files += 1;
            match m.file_type {
                FileType::Symlink => t.symlinks += 1,
                FileType::Regular => {}
                _ => t.specials += 1,
            }
            if m.file_type == FileType::Regular && (m.nlink <= 1 || linked.insert(m.node)) {
                t.bytes = t.bytes.saturating_add(m.size);
                let held = m.allocated.map_or(m.size, |a| a.min(m.size));
                t.allocated = t.allocated.saturating_add(held);
            }
        }
    };
    for (i, src) in sources.iter().enumerate() {
        let Ok(meta) = fs.metadata(src.node) else {
            continue;
        };
        count(&mut t, &meta);
        visit(i, b"", &meta);
        if meta.file_type != FileType::Directory {
            continue;
        }
        let dev = one_file_system.then(|| fs.dev(src.node));
        // (directory, depth, its path below the source)
        let mut stack = vec![(src.node, 1usize, Vec::new())];
        let mut path = Vec::new();
        while let Some((dir, depth, dir_path)) = stack.pop() {
            if cancel.load(Ordering::Relaxed) {
                return t;
            }
            if !seen_dirs.insert(dir) {
                continue;
            }
            let Ok(entries) = fs.read_dir(dir) else {
                continue;
            };
            let nodes: Vec<NodeId> = entries.iter().map(|e| e.node).collect();
            for batch in nodes.chunks(PREFETCH_BATCH) {
                fs.prefetch(batch, false);
            }
            for e in entries {
                if !is_safe_name(&e.name) {
                    t.unsafe_names += 1;
                    continue;
                }
                let Ok(m) = fs.metadata(e.node) else {
                    continue;
                };
                path.clear();
                path.extend_from_slice(&dir_path);
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&e.name);
                if m.file_type == FileType::Directory {
                    if depth < MAX_DEPTH && !seen_dirs.contains(&e.node) {
                        count(&mut t, &m);
                        visit(i, &path, &m);
                        if dev.is_none_or(|d| fs.dev(e.node) == d) {
                            stack.push((e.node, depth + 1, path.clone()));
                        }
                    }
                } else {
                    count(&mut t, &m);
                    visit(i, &path, &m);
                }
            }
        }
    }
    t
}

/// A copy-out job: `sources` of `fs` into the host directory `dest`.
#[derive(Clone)]
pub struct CopyJob {
    /// The guest filesystem.
    pub fs: Arc<dyn FsView>,
    /// What to copy.
    pub sources: Vec<CopySource>,
    /// An existing host directory to copy into.
    pub dest: PathBuf,
    /// How.
    pub options: CopyOptions,
}

/// A copy job running on its own thread.
#[derive(Debug)]
pub struct CopyHandle {
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<Summary>,
}

impl CopyHandle {
    /// Ask the job to stop (the file being written is removed).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The job's cancel flag (set it from a signal handler thread, ...).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the end and take the summary.
    pub fn join(self) -> Summary {
        self.thread.join().unwrap_or_else(|_| Summary {
            error: Some("the copy thread panicked".into()),
            ..Summary::default()
        })
    }
}

impl CopyJob {
    /// Plan and copy on this thread, reporting to `on_event`; stops soon
    /// after `cancel` is set.
    pub fn run(&self, cancel: &AtomicBool, on_event: &mut dyn FnMut(CopyEvent)) -> Summary {
        let totals = plan_within(
            &*self.fs,
            &self.sources,
            self.options.one_file_system,
            cancel,
        );
        on_event(CopyEvent::Planned(totals));
        self.run_planned(totals, cancel, on_event)
    }

    /// Copy with totals already known (from [`plan`]).
    pub fn run_planned(
        &self,
        totals: Totals,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(CopyEvent),
    ) -> Summary {
        let start = Instant::now();
        let root = match rustix::fs::open(
            &self.dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                return Summary {
                    error: Some(format!("{}: {}", self.dest.display(), io_err(e))),
                    ..Summary::default()
                };
            }
        };
        let mut ex = Exec {
            fs: &*self.fs,
            opts: &self.options,
            cancel,
            on_event,
            summary: Summary::default(),
            totals,
            bytes_done: 0,
            files_done: 0,
            start,
            last_emit: start,
            current: Vec::new(),
            ahead: ReadAhead::default(),
            shared: Arc::clone(&self.fs),
            kernel_copy: if self.options.kernel_copy {
                KernelCopy::CopyFileRange
            } else {
                KernelCopy::Off
            },
            links: HashMap::new(),
            dev: None,
            root: &root,
            dest: &self.dest,
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
            umask: current_umask(),
            out_pos: 0,
            writers: None,
            writers_tried: false,
            waiting: std::collections::VecDeque::new(),
            next_dir: 0,
        };
        for src in &self.sources {
            if ex.cancelled() {
                break;
            }
            ex.copy_source(src);
        }
        ex.drain();
        ex.summary.cancelled = ex.cancelled();
        ex.emit();
        let mut summary = ex.summary;
        summary.elapsed = start.elapsed();
        summary
    }

    /// Run on a new thread; `on_event` gets the events, then
    /// [`CopyEvent::Finished`].
    pub fn spawn(self, mut on_event: impl FnMut(CopyEvent) + Send + 'static) -> Result<CopyHandle> {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("vmrescue-copy".into())
            .spawn(move || {
                let summary = self.run(&flag, &mut on_event);
                on_event(CopyEvent::Finished(Box::new(summary.clone())));
                summary
            })
            .map_err(|e| Error::io("starting the copy thread", e))?;
        Ok(CopyHandle { cancel, thread })
    }
}

/// What became of a hard link to an earlier copy.
enum Link {
    /// Linked.
    Made,
    /// Not linked, and reported (exists and kept, ...).
    Handled,
    /// Linking is not possible: copy instead.
    Unable,
}

/// Where one entry goes: `name` in the destination directory open as
/// `dir`; its guest path (for messages) and its path relative to the
/// destination (for host paths in messages, and hard links).
#[derive(Clone, Copy)]
struct Spot<'a> {
    dir: BorrowedFd<'a>,
    name: &'a [u8],
    path: &'a [u8],
    rel: &'a [u8],
    /// `dir` was made by this job (see [`Made`]).
    made: Option<Made>,
}

impl<'a> Spot<'a> {
    fn new(dir: BorrowedFd<'a>, name: &'a [u8], path: &'a [u8], rel: &'a [u8]) -> Spot<'a> {
        Spot {
            dir,
            name,
            path,
            rel,
            made: None,
        }
    }

    /// The same place, in a directory this job made.
    fn in_made(self, made: Option<Made>) -> Spot<'a> {
        Spot { made, ..self }
    }
}

/// What is known of a destination directory this job made itself: it was
/// empty then, so a name in it is taken only by this job's own entries (or
/// by something else writing there at the same time, which the final
/// no-replace rename still catches), and what a new file in it gets
/// without asking: so the calls that would only set the defaults again are
/// left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Made {
    /// Its owner and group, as `fstat` gave them when it was made.
    uid: u32,
    gid: u32,
    /// It has no default ACL (`system.posix_acl_default`): a new file gets
    /// the mode asked for at creation less the umask.
    plain_mode: bool,
}

/// Which of a new file's attributes it already has from its creation.
#[derive(Debug, Clone, Copy, Default)]
struct Given {
    owner: bool,
    mode: bool,
}

/// The umask of this process, from `/proc/self/status` (read without
/// changing it, which would race with other threads), if known.
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
}

/// Why copying one file's data stopped.
enum Stop {
    Cancelled,
    Failed(String),
}

/// A directory being copied: its destination descriptor and the
/// subdirectories still to copy.
struct Frame {
    /// Which directory of the job this is (for [`Writers::pending`]).
    id: u64,
    node: NodeId,
    meta: Metadata,
    fd: Arc<OwnedFd>,
    made: Option<Made>,
    guest_path: Vec<u8>,
    rel: Vec<u8>,
    subdirs: Vec<(Vec<u8>, Metadata)>,
}

struct Exec<'a> {
    fs: &'a dyn FsView,
    opts: &'a CopyOptions,
    cancel: &'a AtomicBool,
    on_event: &'a mut dyn FnMut(CopyEvent),
    summary: Summary,
    totals: Totals,
    bytes_done: u64,
    files_done: u64,
    start: Instant,
    last_emit: Instant,
    current: Vec<u8>,
    /// The job's reader threads and their buffers.
    ahead: ReadAhead,
    /// The filesystem, for the reader threads.
    shared: Arc<dyn FsView>,
    kernel_copy: KernelCopy,
    /// Hard-linked nodes already copied → their path relative to the destination.
    links: HashMap<NodeId, Vec<u8>>,
    /// With `one_file_system`: the device of the source being copied.
    dev: Option<u64>,
    root: &'a OwnedFd,
    /// The destination directory, for messages.
    dest: &'a Path,
    /// This process's effective user and group, and umask (if known).
    euid: u32,
    egid: u32,
    umask: Option<u32>,
    /// The file position of the file being written (where `sendfile` writes).
    out_pos: u64,
    /// The writer threads small files are handed to, started at the first.
    writers: Option<Writers>,
    /// Whether starting it was tried.
    writers_tried: bool,
    /// Directories done but for their own metadata, which waits for their
    /// files being written; in the order they were done.
    waiting: std::collections::VecDeque<Frame>,
    /// The [`Frame::id`] of the next directory.
    next_dir: u64,
}

fn io_err(e: Errno) -> std::io::Error {
    e.into()
}

/// `rel` split into its directory (relative to the destination, maybe
/// empty) and its last name.
fn split_rel(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&rel[..0], rel),
    }
}

/// What a file type is called in messages.
fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::CharDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::Unknown => "node of unknown type",
    }
}

fn rel_join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = rel.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

// `tv_nsec` is `c_long`: the conversion is needed where that is 32 bits.
#[allow(clippy::useless_conversion)]
fn timespec(t: Timestamp) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: t.sec,
        tv_nsec: i64::from(t.nsec.min(999_999_999)).try_into().unwrap_or(0),
    }
}

/// A host file's mtime in seconds.
// `st_mtime` is not `i64` everywhere: the conversion is needed there.
#[allow(clippy::useless_conversion)]
fn stat_mtime(st: &rustix::fs::Stat) -> i64 {
    i64::from(st.st_mtime)
}

fn times(m: &Metadata) -> Timestamps {
    Timestamps {
        last_access: timespec(m.atime),
        last_modification: timespec(m.mtime),
    }
}

fn ids(m: &Metadata) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    let uid = (m.uid != u32::MAX).then(|| rustix::fs::Uid::from_raw(m.uid));
    let gid = (m.gid != u32::MAX).then(|| rustix::fs::Gid::from_raw(m.gid));
    (uid, gid)
}

/// A path naming entry `name` of the directory open as `dir`, through
/// `/proc/self/fd`, for the calls that only take paths (`lsetxattr`, `chmod`).
fn proc_path(dir: BorrowedFd<'_>, name: Option<&[u8]>) -> PathBuf {
    let p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    match name {
        Some(n) => p.join(OsStr::from_bytes(n)),
        None => p,
    }
}

/// The host path of `rel` (relative to the destination `dest`), escaped
/// for messages.
fn host_of(dest: &Path, rel: &[u8]) -> String {
    escape(dest.join(OsStr::from_bytes(rel)).as_os_str().as_bytes())
}

/// Make a new node for `name` (at `rel` below `dest`) under a fresh
/// temporary name with `make` (which must fail with `EEXIST` when the name
/// is taken): the name and what `make` gave, or why it could not be made.
fn make_temp_in<T>(
    dest: &Path,
    name: &[u8],
    rel: &[u8],
    mut make: impl FnMut(&[u8]) -> rustix::io::Result<T>,
) -> std::result::Result<(Vec<u8>, T), String> {
    let mut last = Errno::EXIST;
    for attempt in 0..16 {
        let tmp = temp_name(name, attempt);
        match make(&tmp) {
            Ok(t) => return Ok((tmp, t)),
            Err(Errno::EXIST) => continue,
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    let parent = host_of(dest, split_rel(rel).0);
    Err(format!("creating a file in {parent}: {}", io_err(last)))
}

/// Give the finished temporary `tmp` in `dir` its real `name` (at `rel`
/// below `dest`; `made`: `dir` was made by this job), as the `existing`
/// rule allows (replacing atomically with `--overwrite`, never replacing
/// otherwise). On failure `tmp` is removed, and the error says why.
fn place_at(
    dest: &Path,
    existing: Existing,
    tmp: &[u8],
    dir: BorrowedFd<'_>,
    name: &[u8],
    rel: &[u8],
    made: Option<Made>,
) -> std::result::Result<(), String> {
    let r = if existing == Existing::Overwrite {
        rustix::fs::renameat(dir, tmp, dir, name)
    } else {
        match rustix::fs::renameat_with(dir, tmp, dir, name, RenameFlags::NOREPLACE) {
            // Filesystems without RENAME_NOREPLACE: a link never replaces.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                match rustix::fs::linkat(dir, tmp, dir, name, AtFlags::empty()) {
                    Ok(()) => {
                        let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
                        Ok(())
                    }
                    Err(Errno::EXIST) => Err(Errno::EXIST),
                    // Nor hard links (vfat): look, then rename.
                    Err(_) => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(_) => Err(Errno::EXIST),
                        Err(Errno::NOENT) => rustix::fs::renameat(dir, tmp, dir, name),
                        Err(e) => Err(e),
                    },
                }
            }
            r => r,
        }
    };
    r.map_err(|e| {
        let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
        naming_failed(dest, rel, made, e, "renaming the finished copy to")
    })
}

/// Why a finished copy could not take its name `rel` (below `dest`):
/// `EEXIST` (the name was kept) or another error, with `doing` in front.
fn naming_failed(dest: &Path, rel: &[u8], made: Option<Made>, e: Errno, doing: &str) -> String {
    let host = host_of(dest, rel);
    if e == Errno::EXIST && made.is_some() {
        format!(
            "already exists: {host} (made by this copy: the guest's directory \
             holds the name twice, or the destination takes two names as one): kept"
        )
    } else if e == Errno::EXIST {
        format!("{host} appeared while it was being copied: kept")
    } else {
        format!("{doing} {host}: {}", io_err(e))
    }
}

/// The mode a new regular file for `m` is created with: its own when the
/// creation `given` it, else owner read-write until its metadata is set.
fn creation_mode(given: Given, m: &Metadata) -> Mode {
    if given.mode {
        Mode::from_bits_truncate(m.perm & 0o777)
    } else {
        Mode::RUSR | Mode::WUSR
    }
}

/// Owner (when `owner`), mode, xattrs (when listed) and times of a file or
/// directory open as `fd`, but what it was `given` at its creation; what
/// failed goes to `problems`.
fn fd_meta(
    fd: BorrowedFd<'_>,
    m: &Metadata,
    given: Given,
    owner: bool,
    xattrs: Option<std::result::Result<Vec<Xattr>, String>>,
    problems: &mut Vec<String>,
) {
    if owner && !given.owner {
        let (uid, gid) = ids(m);
        if let Err(e) = rustix::fs::fchown(fd, uid, gid) {
            problems.push(format!("owner {}:{}: {}", m.uid, m.gid, io_err(e)));
        }
    }
    if !given.mode
        && let Err(e) = rustix::fs::fchmod(fd, Mode::from_bits_truncate(m.perm & 0o7777))
    {
        problems.push(format!("mode {:o}: {}", m.perm, io_err(e)));
    }
    if let Some(list) = xattrs {
        set_xattrs(list, problems, |n, v| {
            rustix::fs::fsetxattr(fd, n, v, XattrFlags::empty())
        });
    }
    if let Err(e) = rustix::fs::futimens(fd, &times(m)) {
        problems.push(format!("times: {}", io_err(e)));
    }
}

/// Set the xattrs `list` (as read from the guest, or why it could not be)
/// with `set`; what failed goes to `problems`.
fn set_xattrs(
    list: std::result::Result<Vec<Xattr>, String>,
    problems: &mut Vec<String>,
    mut set: impl FnMut(&[u8], &[u8]) -> rustix::io::Result<()>,
) {
    match list {
        Ok(list) => {
            for x in list {
                if x.name.contains(&0) {
                    problems.push(format!("xattr {}: name holds a NUL byte", escape(&x.name)));
                    continue;
                }
                if let Err(e) = set(&x.name, &x.value) {
                    problems.push(format!("xattr {}: {}", escape(&x.name), io_err(e)));
                }
            }
        }
        Err(e) => problems.push(format!("reading xattrs: {e}")),
    }
}

impl Exec<'_> {
    fn cancelled(&self) -> bool {
        let cancelled = self.cancel.load(Ordering::Relaxed);
        if cancelled && let Some(w) = &self.writers {
            w.ctx.stop.store(true, Ordering::Relaxed);
        }
        cancelled
    }

    fn emit(&mut self) {
        self.last_emit = Instant::now();
        let elapsed = self.start.elapsed();
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.bytes_done as f64 / secs
        } else {
            0.0
        };
        let eta = if rate > 0.0 && secs >= 0.5 {
            let left = self.totals.bytes.saturating_sub(self.bytes_done) as f64;
            Some(Duration::from_secs_f64((left / rate).min(1e9)))
        } else {
            None
        };
        let p = Progress {
            bytes_done: self.bytes_done,
            bytes_total: self.totals.bytes.max(self.bytes_done),
            files_done: self.files_done,
            files_total: self.totals.files.max(self.files_done),
            current: self.current.clone(),
            elapsed,
            rate,
            eta,
        };
        (self.on_event)(CopyEvent::Progress(p));
    }

    fn tick(&mut self) {
        if self.last_emit.elapsed() >= PROGRESS_EVERY {
            self.emit();
        }
    }

    fn copy_source(&mut self, src: &CopySource) {
        self.dev = self.opts.one_file_system.then(|| self.fs.dev(src.node));
        let meta = match self.fs.metadata(src.node) {
            Ok(m) => m,
            Err(e) => {
                self.summary.fail(&src.guest_path, e.to_string());
                return;
            }
        };
        let root = self.root;
        match &src.dest_name {
            None => {
                if meta.file_type != FileType::Directory {
                    self.summary
                        .fail(&src.guest_path, "not a directory: cannot copy its contents");
                    return;
                }
                match rustix::io::fcntl_dupfd_cloexec(root, 0) {
                    Ok(fd) => {
                        self.summary.dirs += 1;
                        self.walk(
                            src.node,
                            meta,
                            (fd, None),
                            src.guest_path.clone(),
                            Vec::new(),
                        );
                    }
                    Err(e) => self.summary.fail(&src.guest_path, io_err(e).to_string()),
                }
            }
            Some(name) => {
                if !is_safe_name(name) {
                    self.summary.skip(
                        &src.guest_path,
                        "name could escape the destination directory",
                    );
                    return;
                }
                if meta.file_type == FileType::Directory {
                    if let Some(dir) =
                        self.make_dir(Spot::new(root.as_fd(), name, &src.guest_path, name), &meta)
                    {
                        self.walk(src.node, meta, dir, src.guest_path.clone(), name.clone());
                    }
                } else {
                    self.copy_leaf(Spot::new(root.as_fd(), name, &src.guest_path, name), &meta);
                }
            }
        }
    }

    /// Copy directory `node` (already created and open as `fd`; `made`
    /// when this job made it) and everything below.
    fn walk(
        &mut self,
        node: NodeId,
        meta: Metadata,
        dir: (OwnedFd, Option<Made>),
        guest_path: Vec<u8>,
        rel: Vec<u8>,
    ) {
        let first = self.open_frame(node, meta, dir, guest_path, rel);
        // Reading ahead pays where there are directories to enter.
        let ahead = if first.subdirs.is_empty() {
            None
        } else {
            warm::Warmer::start(Arc::clone(&self.shared), node, self.dev, MAX_DEPTH)
        };
        let mut stack = vec![first];
        loop {
            if self.cancelled() {
                while let Some(f) = stack.pop() {
                    self.finish_later(f);
                }
                return;
            }
            let Some(top) = stack.last_mut() else {
                return;
            };
            let Some((name, meta)) = top.subdirs.pop() else {
                if let Some(f) = stack.pop() {
                    self.finish_later(f);
                }
                continue;
            };
            let path = join(&top.guest_path, &name);
            let rel = rel_join(&top.rel, &name);
            if stack.len() >= MAX_DEPTH {
                self.summary.fail(
                    &path,
                    format!("nested more than {MAX_DEPTH} directories deep: not copied"),
                );
                continue;
            }
            if stack.iter().any(|f| f.node == meta.node) {
                self.summary.fail(
                    &path,
                    "directory loop (it contains one of its parents): not copied",
                );
                continue;
            }
            let Some(parent) = stack.last() else {
                return;
            };
            let at = Spot::new(parent.fd.as_fd(), &name, &path, &rel).in_made(parent.made);
            let Some(dir) = self.make_dir(at, &meta) else {
                continue;
            };
            if let Some(a) = &ahead {
                a.entered();
            }
            let frame = self.open_frame(meta.node, meta, dir, path, rel);
            stack.push(frame);
        }
    }

    /// List directory `node`, copy its non-directory entries, and keep its
    /// subdirectories for later (so a directory's files are done while its
    /// listing is fresh).
    fn open_frame(
        &mut self,
        node: NodeId,
        meta: Metadata,
        (fd, made): (OwnedFd, Option<Made>),
        guest_path: Vec<u8>,
        rel: Vec<u8>,
    ) -> Frame {
        self.next_dir += 1;
        let mut frame = Frame {
            id: self.next_dir,
            node,
            meta,
            fd: Arc::new(fd),
            made,
            guest_path,
            rel,
            subdirs: Vec::new(),
        };
        // `cp -x`: a mountpoint of another device is made, and stays empty.
        if self.dev.is_some_and(|d| self.fs.dev(node) != d) {
            return frame;
        }
        let mut entries = match self.fs.read_dir(node) {
            Ok(e) => e,
            Err(e) => {
                self.summary.fail(&frame.guest_path, e.to_string());
                return frame;
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        // The data of the files a batch ahead is read by the kernel (in
        // the order it lies on disk) while this batch is copied.
        let nodes: Vec<NodeId> = entries.iter().map(|e| e.node).collect();
        for (i, e) in entries.into_iter().enumerate() {
            if i % PREFETCH_BATCH == 0 {
                let from = if i == 0 { 0 } else { i + PREFETCH_BATCH };
                let to = (i + 2 * PREFETCH_BATCH).min(nodes.len());
                if let Some(batch) = nodes.get(from..to) {
                    self.fs.prefetch(batch, true);
                }
            }
            if self.cancelled() {
                break;
            }
            let path = join(&frame.guest_path, &e.name);
            if !is_safe_name(&e.name) {
                self.summary
                    .skip(&path, "name could escape the destination directory");
                continue;
            }
            let m = match self.fs.metadata(e.node) {
                Ok(m) => m,
                Err(err) => {
                    self.summary.fail(&path, err.to_string());
                    self.files_done += 1;
                    continue;
                }
            };
            if m.file_type == FileType::Directory {
                frame.subdirs.push((e.name, m));
            } else {
                let rel = rel_join(&frame.rel, &e.name);
                let at = Spot::new(frame.fd.as_fd(), &e.name, &path, &rel).in_made(frame.made);
                if !self.hand_over(&frame, at, &m) {
                    // A regular file copied here takes a while: the
                    // writers get the files read before it meanwhile. A
                    // symlink or node is quick, and does not split a batch.
                    if m.file_type == FileType::Regular {
                        self.send_batches();
                    }
                    self.copy_leaf(at, &m);
                }
            }
        }
        frame.subdirs.reverse();
        frame
    }

    /// Give a finished directory its metadata once the files handed to the
    /// writer thread for it are written (creating them changes its times),
    /// in the order directories are done.
    fn finish_later(&mut self, f: Frame) {
        // Its files are made now rather than when a batch fills.
        self.send_batches();
        self.waiting.push_back(f);
        self.finish_ready();
        // Each waiting directory holds a descriptor: wait for the writer
        // rather than hold many.
        while self.waiting.len() > WAITING_DIRS && self.writers_busy() {
            self.collect(true);
        }
    }

    /// Finish the first waiting directories that have no file left to write.
    fn finish_ready(&mut self) {
        while let Some(f) = self.waiting.front() {
            if self
                .writers
                .as_ref()
                .is_some_and(|w| w.pending.contains_key(&f.id))
            {
                return;
            }
            if let Some(f) = self.waiting.pop_front() {
                self.finish_dir(f);
            }
        }
    }

    /// Wait for every file handed to the writer, and finish the waiting
    /// directories.
    fn drain(&mut self) {
        while self.writers_busy() {
            self.collect(true);
        }
        self.finish_ready();
        // (Only when the writer thread is gone with files not written.)
        while let Some(f) = self.waiting.pop_front() {
            self.finish_dir(f);
        }
    }

    fn writers_busy(&self) -> bool {
        self.writers.as_ref().is_some_and(|w| w.files > 0)
    }

    /// Start the writer threads, once; whether they run.
    fn writers_ready(&mut self) -> bool {
        if !self.writers_tried {
            self.writers_tried = true;
            self.writers = Writers::start(WriterCtx {
                dest: self.dest.to_path_buf(),
                existing: self.opts.existing,
                owner: self.opts.owner,
                stop: Arc::new(AtomicBool::new(self.cancelled())),
                unnamed: std::sync::atomic::AtomicU8::new(UNNAMED_TRY),
            });
        }
        self.writers.is_some()
    }

    /// Copy small regular file `m` at `at` (in the directory of `frame`)
    /// through a writer thread: its data is read here, the writer makes
    /// the file. False when the file is not for the writer (large, hard
    /// linked, ...): copy it on this thread.
    fn hand_over(&mut self, frame: &Frame, at: Spot<'_>, m: &Metadata) -> bool {
        if m.file_type != FileType::Regular
            || m.nlink > 1
            || m.size > SMALL_FILE
            || self.cancelled()
            || !self.writers_ready()
        {
            return false;
        }
        self.current = at.path.to_vec();
        self.tick();
        if !self.may_write(at, m) {
            self.files_done += 1;
            return true;
        }
        let Some((ranges, data)) = self.read_small(m) else {
            // Unreadable or shorter than it says: the usual path reads
            // again and reports it as it does.
            self.copy_node(at, m);
            self.files_done += 1;
            return true;
        };
        self.make_room(data.len());
        let exact = ranges
            .first()
            .is_some_and(|&(off, len)| self.kernel_would_move(m.node, off, len as u64));
        let job = SmallFile {
            dir: Arc::clone(&frame.fd),
            dir_id: frame.id,
            name: at.name.to_vec(),
            path: at.path.to_vec(),
            rel: at.rel.to_vec(),
            made: at.made,
            given: self.given(at, m),
            xattrs: self.xattrs(m),
            meta: m.clone(),
            ranges,
            data,
            exact,
        };
        let Some(w) = self.writers.as_mut() else {
            return false;
        };
        let held = job.data.len();
        let to = usize::try_from(frame.id).unwrap_or(0) % w.batches.len().max(1);
        let Some(batch) = w.batches.get_mut(to) else {
            return false;
        };
        batch.0.push(job);
        batch.1 = batch.1.saturating_add(held);
        let full = batch.0.len() >= WRITER_BATCH || batch.1 >= BATCH_BYTES;
        w.files += 1;
        w.bytes = w.bytes.saturating_add(held);
        *w.pending.entry(frame.id).or_insert(0) += 1;
        if full {
            self.send_batch(to);
        }
        true
    }

    /// Send writer `to` the files gathered for it.
    fn send_batch(&mut self, to: usize) {
        let Some(w) = self.writers.as_mut() else {
            return;
        };
        let Some(batch) = w.batches.get_mut(to) else {
            return;
        };
        if batch.0.is_empty() {
            return;
        }
        let files = std::mem::take(&mut batch.0);
        batch.1 = 0;
        let sent = match w.jobs.get(to) {
            Some(j) => j.send(files).map_err(|e| e.0),
            None => Err(files),
        };
        if let Err(files) = sent {
            // A writer thread is gone (it panicked): the panic goes on
            // here; were there none, the files are made on this thread.
            let ctx = Arc::clone(&w.ctx);
            self.writer_gone();
            for mut job in files {
                let written = write_small(&ctx, &mut job);
                self.written(Done::of(job, written));
            }
        }
    }

    /// Send every writer the files gathered for it (before waiting for them).
    fn send_batches(&mut self) {
        let n = self.writers.as_ref().map_or(0, |w| w.batches.len());
        for to in 0..n {
            self.send_batch(to);
        }
    }

    /// The data of small file `m`, read whole: its data ranges (offset,
    /// length) and their bytes one after the other. `None` when a read
    /// fails or ends early.
    fn read_small(&self, m: &Metadata) -> Option<SmallData> {
        if m.size == 0 {
            return Some((Vec::new(), Vec::new()));
        }
        let whole = vec![crate::fs::FileExtent {
            offset: 0,
            len: m.size,
            unwritten: false,
        }];
        let extents = self.fs.extents(m.node).unwrap_or(whole);
        let mut ranges = Vec::new();
        let mut total = 0usize;
        for e in extents.iter().filter(|e| !e.unwritten) {
            let end = e.offset.saturating_add(e.len).min(m.size);
            if end <= e.offset {
                continue;
            }
            let len = usize::try_from(end - e.offset).ok()?;
            total = total.checked_add(len)?;
            // Overlapping extents (a damaged map): the usual path copes.
            if total as u64 > SMALL_FILE {
                return None;
            }
            ranges.push((e.offset, len));
        }
        let mut data = vec![0u8; total];
        let mut at = 0usize;
        for &(off, len) in &ranges {
            let end = at.checked_add(len)?;
            let buf = data.get_mut(at..end)?;
            match fill(self.fs, m.node, off, buf) {
                Ok(n) if n == len => at = end,
                _ => return None,
            }
        }
        Some((ranges, data))
    }

    /// Wait until the writer has room for `bytes` more.
    fn make_room(&mut self, bytes: usize) {
        self.collect(false);
        while self.writers.as_ref().is_some_and(|w| {
            w.files > 0 && (w.files >= WRITER_FILES || w.bytes.saturating_add(bytes) > WRITER_BYTES)
        }) {
            self.collect(true);
        }
    }

    /// Take what the writer has done (waiting for one file when `wait`),
    /// then finish the directories that wait for nothing more.
    fn collect(&mut self, wait: bool) {
        if wait {
            self.send_batches();
        }
        let mut wait = wait;
        while let Some(w) = self.writers.as_ref() {
            if w.files == 0 {
                break;
            }
            let got = if wait {
                w.done
                    .recv_timeout(Duration::from_millis(20))
                    .map_err(|e| e == std::sync::mpsc::RecvTimeoutError::Disconnected)
            } else {
                w.done
                    .try_recv()
                    .map_err(|e| e == std::sync::mpsc::TryRecvError::Disconnected)
            };
            match got {
                Ok(done) => {
                    wait = false;
                    for d in done {
                        self.written(d);
                    }
                }
                Err(true) => {
                    self.writer_gone();
                    break;
                }
                // Waiting: a cancel reaches the writer from here too.
                Err(false) if wait => {
                    self.cancelled();
                }
                Err(false) => break,
            }
        }
        self.finish_ready();
    }

    /// Account for a file the writer is done with, as the copy on this
    /// thread would have.
    fn written(&mut self, d: Done) {
        if let Some(w) = self.writers.as_mut() {
            w.files = w.files.saturating_sub(1);
            w.bytes = w.bytes.saturating_sub(d.held);
            if let Some(n) = w.pending.get_mut(&d.dir_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    w.pending.remove(&d.dir_id);
                }
            }
        }
        self.files_done += 1;
        match d.written {
            Written::Copied(problems) => {
                self.bytes_done = self.bytes_done.saturating_add(d.size);
                self.summary.files += 1;
                self.summary.bytes = self.summary.bytes.saturating_add(d.size);
                if !problems.is_empty() {
                    let host = self.host(&d.rel);
                    self.summary.fail(
                        &d.path,
                        format!("copied to {host}, but {}", problems.join("; ")),
                    );
                }
            }
            Written::Failed(why) => self.summary.fail(&d.path, why),
            Written::Cancelled => {}
        }
        self.tick();
    }

    /// A writer thread ended with files not written: it panicked, and
    /// the panic goes on on this thread (as it would have had the files
    /// been written here).
    fn writer_gone(&mut self) {
        if let Some(mut w) = self.writers.take() {
            w.jobs.clear();
            for t in std::mem::take(&mut w.threads) {
                if let Err(panic) = t.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }

    /// Give a finished directory its mode, owner, xattrs and times.
    fn finish_dir(&mut self, f: Frame) {
        let mut problems = Vec::new();
        self.apply_fd_meta(f.fd.as_fd(), &f.meta, Given::default(), &mut problems);
        if !problems.is_empty() {
            let host = self.host(&f.rel);
            self.summary
                .fail(&f.guest_path, format!("{host}: {}", problems.join("; ")));
        }
    }

    /// Create (or merge into) directory `name` in `parent` (guest `m`) and
    /// open it. On failure the directory is reported with what it holds
    /// (which is then not copied either).
    fn make_dir(&mut self, at: Spot<'_>, m: &Metadata) -> Option<(OwnedFd, Option<Made>)> {
        let Spot {
            dir: parent,
            name,
            path,
            rel,
            ..
        } = at;
        self.current = path.to_vec();
        self.tick();
        let host = self.host(rel);
        let mut made = false;
        match rustix::fs::mkdirat(parent, name, Mode::RWXU) {
            Ok(()) => made = true,
            Err(Errno::EXIST) => {
                let is_dir = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_mode(st.st_mode) == FileType::Directory)
                    .unwrap_or(false);
                if !is_dir {
                    match self.opts.existing {
                        Existing::Skip => {
                            self.summary.skip(
                                path,
                                format!("already exists and is not a directory: {host}"),
                            );
                            return None;
                        }
                        Existing::SkipSame | Existing::Refuse => {
                            let why = format!(
                                "already exists and is not a directory: {host} kept \
                                 (--overwrite replaces it)"
                            );
                            self.fail_dir(path, m, why);
                            return None;
                        }
                        Existing::Overwrite => {
                            if let Err(e) = rustix::fs::unlinkat(parent, name, AtFlags::empty())
                                .and_then(|()| rustix::fs::mkdirat(parent, name, Mode::RWXU))
                            {
                                let why = format!("replacing {host}: {}", io_err(e));
                                self.fail_dir(path, m, why);
                                return None;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let why = format!("creating directory {host}: {}", io_err(e));
                self.fail_dir(path, m, why);
                return None;
            }
        }
        match rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                self.summary.dirs += 1;
                let made = made.then(|| made_dir(fd.as_fd())).flatten();
                Some((fd, made))
            }
            Err(e) => {
                let why = format!("opening directory {host}: {}", io_err(e));
                self.fail_dir(path, m, why);
                None
            }
        }
    }

    /// Report directory `m` as failed, with the entries below it that are
    /// therefore not copied (so the summary accounts for all the plan counted).
    fn fail_dir(&mut self, path: &[u8], m: &Metadata, why: String) {
        let src = CopySource {
            node: m.node,
            guest_path: path.to_vec(),
            dest_name: None,
        };
        let t = plan(self.fs, &[src], self.cancel);
        // The plan counts the directory itself.
        let dirs = t.dirs.saturating_sub(1);
        self.files_done = self.files_done.saturating_add(t.files);
        if t.files == 0 && dirs == 0 {
            self.summary.fail(path, why);
        } else {
            self.summary.fail(
                path,
                format!(
                    "{why} (so not copied either: {} and {} inside)",
                    crate::text::count(t.files, "file", "files"),
                    crate::text::count(dirs, "directory", "directories")
                ),
            );
        }
    }

    /// The host path of `rel` (relative to the destination).
    fn host_path(&self, rel: &[u8]) -> PathBuf {
        self.dest.join(OsStr::from_bytes(rel))
    }

    /// The host path of `rel`, escaped for messages.
    fn host(&self, rel: &[u8]) -> String {
        host_of(self.dest, rel)
    }

    /// Copy a non-directory entry (`rel`: its path relative to the destination).
    fn copy_leaf(&mut self, at: Spot<'_>, m: &Metadata) {
        self.current = at.path.to_vec();
        self.tick();
        self.place_leaf(at, m);
        self.files_done += 1;
    }

    /// [`Exec::copy_leaf`] but for the progress.
    fn place_leaf(&mut self, at: Spot<'_>, m: &Metadata) {
        if !self.may_write(at, m) {
            return;
        }
        let linked = m.nlink > 1;
        if let Some(first) = linked.then(|| self.links.get(&m.node).cloned()).flatten() {
            match self.hard_link(&first, at) {
                Link::Made => self.summary.hard_links += 1,
                Link::Handled => {}
                // The earlier copy cannot be linked to: copy the data again.
                Link::Unable => {
                    self.copy_node(at, m);
                }
            }
            return;
        }
        let done = self.copy_node(at, m);
        if done && linked {
            self.links.insert(m.node, at.rel.to_vec());
        }
    }

    /// Whether `name` may be written in `dir`: it does not exist, or the
    /// `existing` rule lets it be replaced. Otherwise the entry is
    /// reported (or counted as unchanged) here.
    fn may_write(&mut self, at: Spot<'_>, m: &Metadata) -> bool {
        // Only this job writes names in a directory it made (place() catches
        // anything else): nothing to look up.
        if at.made.is_some() {
            return true;
        }
        let Spot {
            dir,
            name,
            path,
            rel,
            ..
        } = at;
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return true,
            Err(e) => {
                self.summary
                    .fail(path, format!("{}: {}", self.host(rel), io_err(e)));
                return false;
            }
        };
        let host = self.host(rel);
        match self.opts.existing {
            Existing::Refuse => {
                self.summary.fail(
                    path,
                    format!(
                        "already exists: {host} (--overwrite replaces it; --skip-existing \
                         keeps it when it is the same)"
                    ),
                );
                false
            }
            Existing::Skip => {
                self.summary.skip(path, format!("already exists: {host}"));
                false
            }
            Existing::SkipSame => {
                match self.differs(dir, name, &st, m) {
                    None => self.summary.unchanged += 1,
                    Some(how) => self.summary.fail(
                        path,
                        format!(
                            "already exists and differs ({how}): {host} kept (--overwrite \
                             replaces it)"
                        ),
                    ),
                }
                false
            }
            Existing::Overwrite => {
                if FileType::from_mode(st.st_mode) == FileType::Directory {
                    self.summary.fail(
                        path,
                        format!("a directory of that name is in the way: {host}"),
                    );
                    return false;
                }
                true
            }
        }
    }

    /// How the existing `st` (named `name` in `dir`) differs from the
    /// guest's `m`, or `None` when it is the same: same type; for files the
    /// same size and mtime (seconds, as rsync compares them); for symlinks
    /// the same target; for devices the same numbers.
    fn differs(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        st: &rustix::fs::Stat,
        m: &Metadata,
    ) -> Option<String> {
        let there = FileType::from_mode(st.st_mode);
        if there != m.file_type {
            return Some(format!(
                "a {} there, a {} in the guest",
                kind_name(there),
                kind_name(m.file_type)
            ));
        }
        match m.file_type {
            FileType::Regular => {
                let size = u64::try_from(st.st_size).unwrap_or(0);
                if size != m.size {
                    return Some(format!("{size} bytes there, {} in the guest", m.size));
                }
                if stat_mtime(st) != m.mtime.sec {
                    return Some(format!(
                        "modified {} there, {} in the guest",
                        crate::text::format_time(stat_mtime(st)),
                        crate::text::format_time(m.mtime.sec)
                    ));
                }
                None
            }
            FileType::Symlink => {
                let guest = self.fs.read_link(m.node).ok();
                let host = rustix::fs::readlinkat(dir, name, Vec::new())
                    .ok()
                    .map(|t| t.into_bytes());
                (guest.is_none() || guest != host).then(|| "another target".to_string())
            }
            FileType::CharDevice | FileType::BlockDevice => {
                let here = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                (here != m.rdev).then(|| {
                    format!(
                        "device {}:{} there, {}:{} in the guest",
                        here.0, here.1, m.rdev.0, m.rdev.1
                    )
                })
            }
            _ => None,
        }
    }

    /// Make a new node under a fresh temporary name with `make`
    /// (which must fail with `EEXIST` when the name is taken).
    fn make_temp<T>(
        &mut self,
        at: Spot<'_>,
        make: impl FnMut(&[u8]) -> rustix::io::Result<T>,
    ) -> Option<(Vec<u8>, T)> {
        match make_temp_in(self.dest, at.name, at.rel, make) {
            Ok(made) => Some(made),
            Err(why) => {
                self.summary.fail(at.path, why);
                None
            }
        }
    }

    /// Give the finished temporary `tmp` in `dir` its real name, as the
    /// `existing` rule allows (replacing atomically with `--overwrite`,
    /// never replacing otherwise). On failure `tmp` is removed and the
    /// entry reported.
    fn place(&mut self, tmp: &[u8], at: Spot<'_>) -> bool {
        match place_at(
            self.dest,
            self.opts.existing,
            tmp,
            at.dir,
            at.name,
            at.rel,
            at.made,
        ) {
            Ok(()) => true,
            Err(why) => {
                self.summary.fail(at.path, why);
                false
            }
        }
    }

    /// Create a copy of non-directory `m` as `name` in `dir`.
    fn copy_node(&mut self, at: Spot<'_>, m: &Metadata) -> bool {
        let path = at.path;
        match m.file_type {
            FileType::Regular => self.copy_file(at, m),
            FileType::Symlink => self.copy_symlink(at, m),
            FileType::Fifo | FileType::Socket | FileType::CharDevice | FileType::BlockDevice => {
                self.copy_special(at, m)
            }
            FileType::Directory | FileType::Unknown => {
                self.summary
                    .fail(path, format!("unknown file type (mode {:o})", m.mode()));
                false
            }
        }
    }

    /// Make `name` in `dir` a hard link to the earlier copy at `first`
    /// (relative to the destination).
    fn hard_link(&mut self, first: &[u8], at: Spot<'_>) -> Link {
        let Spot { dir, .. } = at;
        let (parent_rel, last) = split_rel(first);
        // Walk to the first copy's directory one component at a time, never
        // following a symlink: these are directories this job made.
        let mut parent: Option<OwnedFd> = None;
        for c in parent_rel.split(|&b| b == b'/') {
            if c.is_empty() {
                continue;
            }
            let base = parent.as_ref().map_or(self.root.as_fd(), AsFd::as_fd);
            match rustix::fs::openat(
                base,
                c,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => parent = Some(fd),
                Err(_) => return Link::Unable,
            }
        }
        let root = self.root;
        let base = parent.as_ref().map_or(root.as_fd(), AsFd::as_fd);
        let mut unable = false;
        let made = self.make_temp(at, |tmp| {
            match rustix::fs::linkat(base, last, dir, tmp, AtFlags::empty()) {
                Err(Errno::EXIST) => Err(Errno::EXIST),
                // EXDEV, EMLINK, EPERM (protected_hardlinks), ...
                Err(_) => {
                    unable = true;
                    Ok(())
                }
                Ok(()) => Ok(()),
            }
        });
        match made {
            Some(_) if unable => Link::Unable,
            Some((tmp, ())) => {
                if self.place(&tmp, at) {
                    Link::Made
                } else {
                    Link::Handled
                }
            }
            None => Link::Handled,
        }
    }

    /// Copy regular file `m`: written under a temporary name, given its
    /// metadata, then renamed to `name`.
    fn copy_file(&mut self, at: Spot<'_>, m: &Metadata) -> bool {
        let Spot { dir, path, rel, .. } = at;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let parent = self.host_path(split_rel(rel).0);
        // Listed before it exists, so that a process ended at any moment
        // can name it.
        let mut writing = None;
        let given = self.given(at, m);
        let mode = creation_mode(given, m);
        let Some((tmp, fd)) = self.make_temp(at, |tmp| {
            writing = Some(Writing::new(parent.join(OsStr::from_bytes(tmp))));
            rustix::fs::openat(dir, tmp, flags, mode)
        }) else {
            return false;
        };
        let tmp_host = self.host(&rel_join(split_rel(rel).0, &tmp));
        let file = File::from(fd);
        self.out_pos = 0;
        let before = self.bytes_done;
        if let Err(stop) = self.copy_data(&file, m) {
            drop(file);
            finish_writing(writing, || {
                rustix::fs::unlinkat(dir, &tmp[..], AtFlags::empty()).is_ok()
            });
            self.bytes_done = before;
            if let Stop::Failed(why) = stop {
                self.summary
                    .fail(path, format!("{why} (writing {tmp_host})"));
            }
            return false;
        }
        let mut problems = Vec::new();
        self.apply_fd_meta(file.as_fd(), m, given, &mut problems);
        drop(file);
        let placed = finish_writing(writing, || self.place(&tmp, at));
        if !placed {
            self.bytes_done = before;
            return false;
        }
        self.bytes_done = before.saturating_add(m.size);
        self.summary.files += 1;
        self.summary.bytes = self.summary.bytes.saturating_add(m.size);
        if !problems.is_empty() {
            self.summary.fail(
                path,
                format!("copied to {}, but {}", self.host(rel), problems.join("; ")),
            );
        }
        true
    }

    /// Copy the data ranges of regular file `m` into `out`, leaving holes.
    fn copy_data(&mut self, out: &File, m: &Metadata) -> Result<(), Stop> {
        if m.size == 0 {
            return Ok(());
        }
        let whole = vec![crate::fs::FileExtent {
            offset: 0,
            len: m.size,
            unwritten: false,
        }];
        // Asked even when every byte is allocated: preallocated (unwritten)
        // ranges are allocated too, read as zeros, and are left as holes.
        let extents = self.fs.extents(m.node).unwrap_or(whole);
        self.copy_extents(out, m, &extents)?;
        // A file ending in a hole gets its size here (the writes did not reach it).
        let data_end = extents
            .iter()
            .filter(|e| !e.unwritten)
            .map(|e| e.offset.saturating_add(e.len).min(m.size))
            .max()
            .unwrap_or(0);
        if data_end < m.size {
            out.set_len(m.size)
                .map_err(|e| Stop::Failed(format!("setting the size: {e}")))?;
        }
        Ok(())
    }

    fn copy_extents(
        &mut self,
        out: &File,
        m: &Metadata,
        extents: &[crate::fs::FileExtent],
    ) -> Result<(), Stop> {
        // Where the next chunk to ask the reader thread for starts.
        let mut ask = Chunks::new(extents, m.size);
        let r = self.copy_chunks(out, m, extents, &mut ask);
        // What was asked ahead and not used (an error, a cancel): dropped.
        self.ahead.forget_pending();
        r
    }

    fn copy_chunks(
        &mut self,
        out: &File,
        m: &Metadata,
        extents: &[crate::fs::FileExtent],
        ask: &mut Chunks<'_>,
    ) -> Result<(), Stop> {
        for ext in extents {
            if ext.unwritten {
                continue;
            }
            let end = ext.offset.saturating_add(ext.len).min(m.size);
            let mut off = ext.offset;
            while off < end {
                if self.cancelled() {
                    return Err(Stop::Cancelled);
                }
                let want = end - off;
                if self.kernel_copy != KernelCopy::Off
                    && let Some(n) = self.kernel_chunk(out, m.node, off, want)
                {
                    off += n;
                    self.bytes_done += n;
                    self.summary.kernel_bytes += n;
                    self.tick();
                    continue;
                }
                let n = usize::try_from(want).unwrap_or(usize::MAX).min(BUFFER);
                // Asked of the reader thread before, or read here; the
                // chunks after it are asked for first, so that the reader
                // works on them while this one is read and written.
                let from_reader = self.ahead.take_ready(m.node, off, n);
                self.ask_ahead(m.node, ask, off.saturating_add(n as u64));
                let (buf, read) = match from_reader {
                    Some(done) => done,
                    None => {
                        let mut buf = self.ahead.buffer();
                        let r = fill(self.fs, m.node, off, &mut buf[..n]);
                        (buf, r)
                    }
                };
                let got = match read {
                    Ok(got) => got,
                    Err(e) => {
                        self.ahead.give_back(buf);
                        return Err(Stop::Failed(format!("reading at byte {off}: {e}")));
                    }
                };
                if got == 0 {
                    self.ahead.give_back(buf);
                    return Err(Stop::Failed(format!(
                        "the data ends at byte {off}, before the file's size ({} bytes)",
                        m.size
                    )));
                }
                let written = out.write_all_at(&buf[..got], off);
                self.ahead.give_back(buf);
                written.map_err(|e| Stop::Failed(format!("writing at byte {off}: {e}")))?;
                off = off.saturating_add(got as u64);
                self.bytes_done += got as u64;
                self.tick();
            }
        }
        Ok(())
    }

    /// Ask the reader thread for the chunks of `node` from byte `from` on
    /// that the kernel will not move, until [`AHEAD`] are asked. The thread
    /// is started by the first file of more than one chunk.
    fn ask_ahead(&mut self, node: NodeId, ask: &mut Chunks<'_>, from: u64) {
        while self.ahead.pending.len() < AHEAD {
            let Some((off, len)) = ask.next_from(from) else {
                return;
            };
            if self.kernel_would_move(node, off, len as u64) {
                continue;
            }
            if !self.ahead.ask(&self.shared, node, off, len) {
                return;
            }
        }
    }

    /// Whether [`Self::kernel_chunk`] would try to move the bytes at `off`
    /// in the kernel (the filesystem knows where they lie in a host file).
    fn kernel_would_move(&self, node: NodeId, off: u64, want: u64) -> bool {
        self.kernel_copy != KernelCopy::Off
            && self
                .fs
                .host_extent(node, off, want.min(KERNEL_CHUNK))
                .is_some()
    }

    /// Move up to `want` bytes at `off` in the kernel, if the filesystem
    /// knows where they lie in a host file: `copy_file_range` (which can
    /// share or offload the blocks), else `sendfile` (one copy inside the
    /// kernel, across filesystems too). `None`: use the read path; after an
    /// error the job stops trying that call.
    fn kernel_chunk(&mut self, out: &File, node: NodeId, off: u64, want: u64) -> Option<u64> {
        let he = self.fs.host_extent(node, off, want.min(KERNEL_CHUNK))?;
        let n = usize::try_from(he.len.min(want).min(KERNEL_CHUNK)).ok()?;
        let mut in_off = he.offset;
        if self.kernel_copy == KernelCopy::CopyFileRange {
            let mut out_off = off;
            match rustix::fs::copy_file_range(
                &*he.file,
                Some(&mut in_off),
                out,
                Some(&mut out_off),
                n,
            ) {
                Ok(0) => return None,
                Ok(k) => return Some(k as u64),
                Err(Errno::INTR) => return None,
                // EXDEV (another filesystem), ENOSYS, EOPNOTSUPP, EINVAL...
                Err(_) => self.kernel_copy = KernelCopy::Sendfile,
            }
            in_off = he.offset;
        }
        // sendfile writes at the file position: put it where these bytes go
        // (a new file starts at 0, and one piece follows the other).
        if self.out_pos != off {
            if rustix::fs::seek(out, rustix::fs::SeekFrom::Start(off)).is_err() {
                self.kernel_copy = KernelCopy::Off;
                return None;
            }
            self.out_pos = off;
        }
        match rustix::fs::sendfile(out, &*he.file, Some(&mut in_off), n) {
            Ok(0) => None,
            Ok(k) => {
                self.out_pos = off.saturating_add(k as u64);
                Some(k as u64)
            }
            Err(Errno::INTR) => None,
            Err(_) => {
                self.kernel_copy = KernelCopy::Off;
                None
            }
        }
    }

    /// Which of `m`'s owner and mode a new file made at `at` gets from its
    /// creation (in a directory this job made, see [`Made`]): the owner when
    /// the guest's is this process's user and group and the directory's
    /// too (a new file takes either); the mode when it has no set-id or
    /// sticky bits, the umask takes none of its bits, and no default ACL
    /// applies (it is then given to `openat`).
    fn given(&self, at: Spot<'_>, m: &Metadata) -> Given {
        let Some(made) = at.made else {
            return Given::default();
        };
        let perm = m.perm & 0o7777;
        Given {
            owner: m.uid == self.euid
                && m.gid == self.egid
                && made.uid == self.euid
                && made.gid == self.egid,
            mode: made.plain_mode
                && perm & 0o7000 == 0
                && self.umask.is_some_and(|u| perm & u == 0),
        }
    }

    /// Owner, mode, xattrs and times through a descriptor (files,
    /// directories), but what the node was `given` at its creation.
    fn apply_fd_meta(
        &mut self,
        fd: BorrowedFd<'_>,
        m: &Metadata,
        given: Given,
        problems: &mut Vec<String>,
    ) {
        let xattrs = self.xattrs(m);
        fd_meta(fd, m, given, self.opts.owner, xattrs, problems);
    }

    /// The xattrs of `m` to copy (none unless the options ask for them),
    /// or why they could not be read.
    fn xattrs(&self, m: &Metadata) -> Option<std::result::Result<Vec<Xattr>, String>> {
        self.opts
            .xattrs
            .then(|| self.fs.xattrs(m.node).map_err(|e| e.to_string()))
    }

    /// Owner, xattrs and times of a node that cannot be opened (symlinks,
    /// device nodes, FIFOs), by name in `dir`, never following it.
    fn apply_name_meta(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        m: &Metadata,
        chmod: bool,
        problems: &mut Vec<String>,
    ) {
        if self.opts.owner {
            let (uid, gid) = ids(m);
            if let Err(e) = rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW) {
                problems.push(format!("owner {}:{}: {}", m.uid, m.gid, io_err(e)));
            }
        }
        if chmod {
            // chmod has no "do not follow": go through an O_PATH descriptor of
            // the very node we made (a symlink there would make it fail).
            let r = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(|fd| {
                rustix::fs::chmodat(
                    rustix::fs::CWD,
                    proc_path(fd.as_fd(), None),
                    Mode::from_bits_truncate(m.perm & 0o7777),
                    AtFlags::empty(),
                )
            });
            if let Err(e) = r {
                problems.push(format!("mode {:o}: {}", m.perm, io_err(e)));
            }
        }
        if let Some(list) = self.xattrs(m) {
            let p = proc_path(dir, Some(name));
            set_xattrs(list, problems, |n, v| {
                rustix::fs::lsetxattr(&p, n, v, XattrFlags::empty())
            });
        }
        if let Err(e) = rustix::fs::utimensat(dir, name, &times(m), AtFlags::SYMLINK_NOFOLLOW) {
            problems.push(format!("times: {}", io_err(e)));
        }
    }

    fn copy_symlink(&mut self, at: Spot<'_>, m: &Metadata) -> bool {
        let Spot { dir, path, rel, .. } = at;
        let target = match self.fs.read_link(m.node) {
            Ok(t) => t,
            Err(e) => {
                self.summary.fail(path, e.to_string());
                return false;
            }
        };
        if target.is_empty() || target.contains(&0) {
            self.summary.fail(
                path,
                format!(
                    "symlink target {:?} cannot exist on the host",
                    escape(&target)
                ),
            );
            return false;
        }
        let Some((tmp, ())) =
            self.make_temp(at, |tmp| rustix::fs::symlinkat(&target[..], dir, tmp))
        else {
            return false;
        };
        let mut problems = Vec::new();
        self.apply_name_meta(dir, &tmp, m, false, &mut problems);
        if !self.place(&tmp, at) {
            return false;
        }
        self.summary.symlinks += 1;
        if !problems.is_empty() {
            self.summary.fail(
                path,
                format!("copied to {}, but {}", self.host(rel), problems.join("; ")),
            );
        }
        true
    }

    fn copy_special(&mut self, at: Spot<'_>, m: &Metadata) -> bool {
        let Spot { dir, path, rel, .. } = at;
        let (ft, dev) = match m.file_type {
            FileType::Fifo => (rustix::fs::FileType::Fifo, 0),
            FileType::Socket => (rustix::fs::FileType::Socket, 0),
            FileType::CharDevice | FileType::BlockDevice => {
                if !self.opts.devices {
                    self.summary.skip(
                        path,
                        format!(
                            "{} device {}:{} (device nodes are created only by root)",
                            if m.file_type == FileType::CharDevice {
                                "character"
                            } else {
                                "block"
                            },
                            m.rdev.0,
                            m.rdev.1
                        ),
                    );
                    return false;
                }
                let ft = if m.file_type == FileType::CharDevice {
                    rustix::fs::FileType::CharacterDevice
                } else {
                    rustix::fs::FileType::BlockDevice
                };
                (ft, rustix::fs::makedev(m.rdev.0, m.rdev.1))
            }
            _ => return false,
        };
        let Some((tmp, ())) = self.make_temp(at, |tmp| {
            rustix::fs::mknodat(dir, tmp, ft, Mode::RUSR | Mode::WUSR, dev)
        }) else {
            return false;
        };
        let mut problems = Vec::new();
        self.apply_name_meta(dir, &tmp, m, true, &mut problems);
        if !self.place(&tmp, at) {
            return false;
        }
        self.summary.specials += 1;
        if !problems.is_empty() {
            self.summary.fail(
                path,
                format!("copied to {}, but {}", self.host(rel), problems.join("; ")),
            );
        }
        true
    }
}

/// Run `f` (which removes or renames the temporary file `writing` lists),
/// unlisting it in the same step.
fn finish_writing<R>(writing: Option<Writing>, f: impl FnOnce() -> R) -> R {
    match writing {
        Some(w) => w.finish(f),
        None => f(),
    }
}

/// What a directory this job just made gives new files: its owner and
/// group, and whether it has no default ACL. `None` when it cannot be told.
fn made_dir(fd: BorrowedFd<'_>) -> Option<Made> {
    let st = rustix::fs::fstat(fd).ok()?;
    let plain_mode = matches!(
        rustix::fs::fgetxattr(fd, "system.posix_acl_default", &mut [0u8; 0]),
        Err(Errno::NODATA | Errno::OPNOTSUPP)
    );
    Some(Made {
        uid: st.st_uid,
        gid: st.st_gid,
        plain_mode,
    })
}

/// Where `cp SRC... DEST` puts things: `dest_dir` to open, and the sources
/// with their final names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The existing host directory the job copies into.
    pub dir: PathBuf,
    /// Whether the job must create `dir` first (one directory source copied
    /// to a new name).
    pub create: bool,
}

/// Decide, as `cp -a` does, what `DEST` means for `sources`: an existing
/// directory receives them under their own names; otherwise a single source
/// is copied to the name `DEST` (whose parent must exist). Renames
/// `sources[0]` in that case.
pub fn destination(dest: &Path, sources: &mut [CopySource]) -> Result<Destination> {
    if dest.is_dir() {
        return Ok(Destination {
            dir: dest.to_path_buf(),
            create: false,
        });
    }
    let exists = std::fs::symlink_metadata(dest).is_ok();
    let [one] = sources else {
        return Err(Error::Invalid(format!(
            "{}: {} (several sources need an existing directory)",
            dest.display(),
            if exists {
                "not a directory"
            } else {
                "no such directory"
            }
        )));
    };
    if one.dest_name.is_none() {
        // Contents of a directory into a new directory DEST.
        if exists {
            return Err(Error::Invalid(format!(
                "{}: not a directory",
                dest.display()
            )));
        }
        return Ok(Destination {
            dir: dest.to_path_buf(),
            create: true,
        });
    }
    let name = dest
        .file_name()
        .filter(|n| is_safe_name(n.as_bytes()))
        .ok_or_else(|| Error::Invalid(format!("{}: not a name to create", dest.display())))?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::NotFound(format!("directory {}", parent.display())));
    }
    one.dest_name = Some(name.as_bytes().to_vec());
    Ok(Destination {
        dir: parent,
        create: false,
    })
}
