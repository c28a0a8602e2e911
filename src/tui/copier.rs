//! Copy-out from the TUI: the seam between the screen and the copy job.
//!
//! The app only talks to a [`Copier`]: it asks for a plan (sources walked and
//! counted, on a job thread), shows the plan's summary, then runs the plan on
//! another job thread with a progress callback and a cancel flag, and shows
//! the [`CopySummary`] at the end.
//!
//! [`BuiltinCopier`] is a small implementation with the same rules as
//! `vmrescue cp` (no symlink is followed, holes are kept, nothing is written
//! outside the destination, a cancelled file is removed). When
//! `vmrescue::ops::copy` lands, implement [`Copier`] over it (plan → execute
//! with progress events, cancel flag, summary) and pass it in
//! [`super::Options::copier`]; nothing else in the TUI changes.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::fs::path::{is_safe_name, resolve, split_last};
use crate::fs::{FileType, FsView, NodeId};
use crate::layers::VolumeId;
use crate::text::escape;

/// The marked paths of one volume.
#[derive(Clone)]
pub struct CopySource {
    /// The volume.
    pub volume: VolumeId,
    /// Its name (`vg_ta/lv_root`).
    pub volume_name: String,
    /// Its filesystem.
    pub fs: Arc<dyn FsView>,
    /// Absolute guest paths, none inside another.
    pub paths: Vec<Vec<u8>>,
}

/// What to copy: the sources of one or more volumes. With more than one
/// volume, each volume's files go into a folder named after the volume
/// ([`volume_folder`]) inside the destination.
#[derive(Clone, Default)]
pub struct CopyRequest {
    /// One entry per volume.
    pub sources: Vec<CopySource>,
}

/// What a plan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanSummary {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links (copied as links).
    pub symlinks: u64,
    /// Device nodes, fifos, sockets and unsafe names (skipped).
    pub skipped: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Sources that could not be read.
    pub problems: Vec<String>,
}

/// Progress of a running copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyProgress {
    /// Bytes written so far.
    pub bytes_done: u64,
    /// Bytes to write in all.
    pub bytes_total: u64,
    /// Files finished.
    pub files_done: u64,
    /// Files in all.
    pub files_total: u64,
    /// The guest path being copied, escaped.
    pub current: String,
    /// Time since the copy started.
    pub elapsed: Duration,
}

/// How a copy ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Where the files went.
    pub dest: PathBuf,
    /// Regular files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks recreated.
    pub symlinks: u64,
    /// Guest paths not copied on purpose, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Guest paths that failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Whether the operator stopped it.
    pub cancelled: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// A copy ready to run.
pub trait PlannedCopy: Send {
    /// What will be copied.
    fn summary(&self) -> PlanSummary;
    /// Copy into `dest` (created if missing). `progress` is called often
    /// (the caller throttles); `cancel` stops the copy, removing the file
    /// being written.
    fn execute(
        self: Box<Self>,
        dest: &Path,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&CopyProgress),
    ) -> CopySummary;
}

/// Makes copy plans.
pub trait Copier: Send + Sync {
    /// Walk the sources and count what will be copied; `cancel` stops the walk.
    fn plan(
        &self,
        request: CopyRequest,
        cancel: &AtomicBool,
    ) -> Result<Box<dyn PlannedCopy>, String>;
}

/// The folder a volume's files go to when a copy spans volumes, and the last
/// part of the default destination: `vg_ta/lv_root` → `vg_ta_lv_root`.
pub fn volume_folder(volume_name: &str) -> String {
    volume_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Most entries one plan walks (a guard against looping or hostile trees).
pub const MAX_PLAN_ENTRIES: usize = 20_000_000;
/// Deepest directory nesting copied.
pub const MAX_DEPTH: usize = 512;
const CHUNK: usize = 1 << 20;

/// One thing to create in the destination.
#[derive(Clone)]
struct Item {
    /// Which source (volume).
    src: usize,
    node: NodeId,
    kind: FileType,
    size: u64,
    /// Guest path, for messages.
    guest: Vec<u8>,
    /// Path below the destination, made of safe names only.
    rel: PathBuf,
    perm: u32,
    mtime: i64,
}

/// The copy job used until `ops::copy` is wired in (same rules as `vmrescue cp`).
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinCopier;

struct BuiltinPlan {
    sources: Vec<CopySource>,
    /// Folders made first (one per volume when a copy spans volumes).
    folders: Vec<PathBuf>,
    items: Vec<Item>,
    skipped: Vec<(String, String)>,
    summary: PlanSummary,
}

impl Copier for BuiltinCopier {
    fn plan(
        &self,
        request: CopyRequest,
        cancel: &AtomicBool,
    ) -> Result<Box<dyn PlannedCopy>, String> {
        let multi = request.sources.len() > 1;
        let mut plan = BuiltinPlan {
            sources: request.sources.clone(),
            folders: Vec::new(),
            items: Vec::new(),
            skipped: Vec::new(),
            summary: PlanSummary::default(),
        };
        for (si, src) in request.sources.iter().enumerate() {
            let base = if multi {
                let f = PathBuf::from(volume_folder(&src.volume_name));
                plan.folders.push(f.clone());
                f
            } else {
                PathBuf::new()
            };
            for p in &src.paths {
                let (_, name) = split_last(p);
                let name = name.unwrap_or_else(|| b"root".to_vec());
                match resolve(&*src.fs, p, false) {
                    Ok(r) => {
                        let rel = base.join(OsStr::from_bytes(&name));
                        if !is_safe_name(&name) {
                            plan.skip(p, super::strings::UNSAFE_NAME);
                            continue;
                        }
                        walk(&mut plan, si, &*src.fs, r.node, p.clone(), rel, 0, cancel)?;
                    }
                    Err(e) => plan.summary.problems.push(format!("{}: {e}", escape(p))),
                }
            }
        }
        plan.summary.skipped = plan.skipped.len() as u64;
        Ok(Box::new(plan))
    }
}

impl BuiltinPlan {
    fn skip(&mut self, guest: &[u8], why: &str) {
        self.skipped.push((escape(guest), why.to_string()));
    }
}

#[allow(clippy::too_many_arguments)]
fn walk(
    plan: &mut BuiltinPlan,
    src: usize,
    fs: &dyn FsView,
    node: NodeId,
    guest: Vec<u8>,
    rel: PathBuf,
    depth: usize,
    cancel: &AtomicBool,
) -> Result<(), String> {
    if cancel.load(Ordering::Relaxed) {
        return Err(super::strings::CANCELLED.into());
    }
    if plan.items.len() >= MAX_PLAN_ENTRIES {
        return Err(super::strings::too_many_entries(MAX_PLAN_ENTRIES));
    }
    let meta = match fs.metadata(node) {
        Ok(m) => m,
        Err(e) => {
            plan.summary
                .problems
                .push(format!("{}: {e}", escape(&guest)));
            return Ok(());
        }
    };
    let item = Item {
        src,
        node,
        kind: meta.file_type,
        size: meta.size,
        guest: guest.clone(),
        rel: rel.clone(),
        perm: meta.perm,
        mtime: meta.mtime.sec,
    };
    match meta.file_type {
        FileType::Regular => {
            plan.summary.files += 1;
            plan.summary.bytes = plan.summary.bytes.saturating_add(meta.size);
            plan.items.push(item);
        }
        FileType::Symlink => {
            plan.summary.symlinks += 1;
            plan.items.push(item);
        }
        FileType::Directory => {
            if depth >= MAX_DEPTH {
                plan.skip(&guest, super::strings::TOO_DEEP);
                return Ok(());
            }
            plan.summary.dirs += 1;
            plan.items.push(item);
            let entries = match fs.read_dir(node) {
                Ok(e) => e,
                Err(e) => {
                    plan.summary
                        .problems
                        .push(format!("{}: {e}", escape(&guest)));
                    return Ok(());
                }
            };
            for e in entries {
                let child = crate::fs::path::join(&guest, &e.name);
                if !is_safe_name(&e.name) {
                    plan.skip(&child, super::strings::UNSAFE_NAME);
                    continue;
                }
                let child_rel = rel.join(OsStr::from_bytes(&e.name));
                walk(plan, src, fs, e.node, child, child_rel, depth + 1, cancel)?;
            }
        }
        _ => plan.skip(&guest, super::strings::NOT_A_FILE),
    }
    Ok(())
}

impl PlannedCopy for BuiltinPlan {
    fn summary(&self) -> PlanSummary {
        self.summary.clone()
    }

    fn execute(
        self: Box<Self>,
        dest: &Path,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&CopyProgress),
    ) -> CopySummary {
        let start = Instant::now();
        let mut out = CopySummary {
            dest: dest.to_path_buf(),
            skipped: self.skipped.clone(),
            failed: self
                .summary
                .problems
                .iter()
                .map(|p| (p.clone(), String::new()))
                .collect(),
            ..CopySummary::default()
        };
        let mut prog = CopyProgress {
            bytes_total: self.summary.bytes,
            files_total: self.summary.files,
            ..CopyProgress::default()
        };
        if let Err(e) = fs::create_dir_all(dest) {
            out.failed.push((dest.display().to_string(), e.to_string()));
            out.elapsed = start.elapsed();
            return out;
        }
        for f in &self.folders {
            if let Err(e) = make_dir(&dest.join(f)) {
                out.failed.push((dest.join(f).display().to_string(), e));
            }
        }
        let mut last_report = Instant::now();
        for item in &self.items {
            if cancel.load(Ordering::Relaxed) {
                out.cancelled = true;
                break;
            }
            let fs = &*self.sources[item.src].fs;
            let target = dest.join(&item.rel);
            let shown = escape(&item.guest);
            prog.current = shown.clone();
            prog.elapsed = start.elapsed();
            progress(&prog);
            // Every parent below `dest` was created by this copy or checked to be a
            // real directory, so nothing can be written outside `dest`.
            let result = match item.kind {
                FileType::Directory => make_dir(&target).map(|()| out.dirs += 1),
                FileType::Symlink => fs
                    .read_link(item.node)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        std::os::unix::fs::symlink(OsStr::from_bytes(&t), &target)
                            .map_err(|e| exists_or(e, &target))
                    })
                    .map(|()| out.symlinks += 1),
                FileType::Regular => {
                    let before = prog.bytes_done;
                    let r = copy_file(fs, item, &target, cancel, &mut |n| {
                        prog.bytes_done = prog.bytes_done.saturating_add(n);
                        if last_report.elapsed() >= Duration::from_millis(50) {
                            prog.elapsed = start.elapsed();
                            progress(&prog);
                            last_report = Instant::now();
                        }
                    });
                    match r {
                        Ok(true) => {
                            // Holes count as done too.
                            prog.bytes_done = before.saturating_add(item.size);
                            out.files += 1;
                            out.bytes = out.bytes.saturating_add(item.size);
                            prog.files_done += 1;
                            Ok(())
                        }
                        Ok(false) => {
                            out.cancelled = true;
                            break;
                        }
                        Err(e) => Err(e),
                    }
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                if e == super::strings::ALREADY_EXISTS {
                    out.skipped.push((shown, e));
                } else {
                    out.failed.push((shown, e));
                }
            }
        }
        // Directory times last, once their contents are written.
        for item in self.items.iter().filter(|i| i.kind == FileType::Directory) {
            let target = dest.join(&item.rel);
            if let Ok(f) = File::open(&target) {
                let _ = f.set_modified(to_system_time(item.mtime));
            }
        }
        prog.elapsed = start.elapsed();
        progress(&prog);
        out.elapsed = start.elapsed();
        out
    }
}

fn exists_or(e: std::io::Error, _path: &Path) -> String {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        super::strings::ALREADY_EXISTS.to_string()
    } else {
        e.to_string()
    }
}

fn make_dir(path: &Path) -> Result<(), String> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_dir() => Ok(()),
                _ => Err(super::strings::EXISTS_NOT_DIR.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

fn to_system_time(sec: i64) -> SystemTime {
    if sec >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(sec as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs())
    }
}

/// Copy one regular file, keeping holes. `Ok(false)` when cancelled (the
/// partial file is removed).
fn copy_file(
    fs: &dyn FsView,
    item: &Item,
    target: &Path,
    cancel: &AtomicBool,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<bool, String> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(target)
        .map_err(|e| exists_or(e, target))?;
    let ranges: Vec<(u64, u64)> = match fs.extents(item.node) {
        Ok(ext) => ext
            .iter()
            .filter(|e| !e.unwritten)
            .map(|e| (e.offset, e.len))
            .collect(),
        Err(_) => vec![(0, item.size)],
    };
    let mut buf = vec![0u8; CHUNK];
    let result = (|| -> Result<bool, String> {
        for (start, len) in ranges {
            let end = start.saturating_add(len).min(item.size);
            let mut off = start;
            while off < end {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                let want = ((end - off) as usize).min(CHUNK);
                let n = fs
                    .read_at(item.node, off, &mut buf[..want])
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                file.write_all_at(&buf[..n], off)
                    .map_err(|e| e.to_string())?;
                on_bytes(n as u64);
                off += n as u64;
            }
        }
        file.set_len(item.size).map_err(|e| e.to_string())?;
        file.set_permissions(fs::Permissions::from_mode(item.perm & 0o777))
            .map_err(|e| e.to_string())?;
        let _ = file.set_modified(to_system_time(item.mtime));
        Ok(true)
    })();
    match result {
        Ok(true) => Ok(true),
        other => {
            drop(file);
            let _ = fs::remove_file(target);
            other
        }
    }
}
