//! Copy-out from the TUI: the seam between the screen and the copy job.
//!
//! The app only talks to a [`Copier`]: it asks for a plan (sources walked and
//! counted, on a job thread), shows the plan's summary, then runs the plan on
//! another job thread with a progress callback and a cancel flag, and shows
//! the [`CopySummary`] at the end.
//!
//! [`JobCopier`] runs the same copy job as `vmrescue cp`
//! ([`crate::ops::copy`]): no symlink is followed, holes and hard links are
//! kept, nothing is written outside the destination, a cancelled file is
//! removed, and names already in the destination are left alone and listed
//! as skipped (or replaced, when the operator chose to overwrite).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::fs::FsView;
use crate::ops::copy::{self as job, CopyEvent, CopyJob, CopyOptions, Existing, Totals};
use crate::text::escape;
use crate::tui::tree::Tree;

/// The marked paths of one tree (the guest, or one volume).
#[derive(Clone)]
pub struct CopySource {
    /// The tree.
    pub tree: Tree,
    /// Its name (`vg_ta/lv_root`).
    pub volume_name: String,
    /// Its filesystem.
    pub fs: Arc<dyn FsView>,
    /// Absolute guest paths, none inside another.
    pub paths: Vec<Vec<u8>>,
    /// In the guest's tree: the mountpoints on or below `paths` whose volume
    /// cannot be read (missing, unreadable), with the reason. They are
    /// empty folders in the tree; the summary lists them as skipped.
    pub unavailable: Vec<(Vec<u8>, String)>,
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
    /// Of those, what the copy may take on the host (holes take none).
    pub allocated: u64,
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
    /// Files left alone because the destination had them already, the
    /// same (as `cp --skip-existing` counts them).
    pub unchanged: u64,
    /// Guest paths not copied on purpose, with the reason (the first
    /// [`MAX_ISSUES`](job::MAX_ISSUES)).
    pub skipped: Vec<(String, String)>,
    /// How many were skipped: more than `skipped` lists past the cap.
    pub skipped_count: u64,
    /// Guest paths that failed, with the reason (the first [`MAX_ISSUES`](job::MAX_ISSUES)).
    pub failed: Vec<(String, String)>,
    /// How many failed: more than `failed` lists past the cap.
    pub failed_count: u64,
    /// Whether the operator stopped it.
    pub cancelled: bool,
    /// How long it took.
    pub elapsed: Duration,
}

impl CopySummary {
    /// Count `path` as failed, listed while the list is under the cap.
    pub fn fail(&mut self, path: String, why: String) {
        job::push_capped(&mut self.failed, &mut self.failed_count, (path, why));
    }

    /// Count `path` as skipped, listed while the list is under the cap.
    pub fn skip(&mut self, path: String, why: String) {
        job::push_capped(&mut self.skipped, &mut self.skipped_count, (path, why));
    }

    /// Whether the copy ended with every entry copied or unchanged.
    pub fn is_clean(&self) -> bool {
        !self.cancelled && self.failed_count == 0
    }
}

/// A copy ready to run.
pub trait PlannedCopy: Send {
    /// What will be copied.
    fn summary(&self) -> PlanSummary;
    /// What to do with names that exist in the destination (default: skip them).
    fn set_existing(&mut self, _existing: Existing) {}
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

/// The copy job of `vmrescue cp`, for the TUI.
#[derive(Debug, Default, Clone, Copy)]
pub struct JobCopier;

/// One volume's part of a plan.
struct VolumePart {
    fs: Arc<dyn FsView>,
    /// Folder inside the destination (empty for a single volume).
    folder: PathBuf,
    sources: Vec<job::CopySource>,
    totals: Totals,
    unavailable: Vec<(Vec<u8>, String)>,
}

struct JobPlan {
    parts: Vec<VolumePart>,
    summary: PlanSummary,
    existing: Existing,
}

impl Copier for JobCopier {
    fn plan(
        &self,
        request: CopyRequest,
        cancel: &AtomicBool,
    ) -> Result<Box<dyn PlannedCopy>, String> {
        let multi = request.sources.len() > 1;
        let mut summary = PlanSummary::default();
        let mut parts = Vec::new();
        for src in &request.sources {
            let mut sources = Vec::new();
            for p in &src.paths {
                match job::CopySource::resolve(&*src.fs, p) {
                    Ok(s) => sources.push(s),
                    Err(e) => summary.problems.push(format!("{}: {e}", escape(p))),
                }
            }
            let totals = job::plan(&*src.fs, &sources, cancel);
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(super::strings::CANCELLED.into());
            }
            summary.files += totals.files - totals.symlinks - totals.specials;
            summary.symlinks += totals.symlinks;
            summary.dirs += totals.dirs;
            summary.bytes = summary.bytes.saturating_add(totals.bytes);
            summary.allocated = summary.allocated.saturating_add(totals.allocated);
            summary.skipped += totals.unsafe_names;
            summary.skipped += src.unavailable.len() as u64;
            parts.push(VolumePart {
                fs: Arc::clone(&src.fs),
                folder: if multi {
                    PathBuf::from(volume_folder(&src.volume_name))
                } else {
                    PathBuf::new()
                },
                sources,
                totals,
                unavailable: src.unavailable.clone(),
            });
        }
        Ok(Box::new(JobPlan {
            parts,
            summary,
            existing: Existing::SkipSame,
        }))
    }
}

impl PlannedCopy for JobPlan {
    fn summary(&self) -> PlanSummary {
        self.summary.clone()
    }

    fn set_existing(&mut self, existing: Existing) {
        self.existing = existing;
    }

    fn execute(
        self: Box<Self>,
        dest: &Path,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&CopyProgress),
    ) -> CopySummary {
        let mut out = CopySummary {
            dest: dest.to_path_buf(),
            ..CopySummary::default()
        };
        for p in &self.summary.problems {
            out.fail(p.clone(), String::new());
        }
        let bytes_total: u64 = self.parts.iter().map(|p| p.totals.bytes).sum();
        let files_total: u64 = self.parts.iter().map(|p| p.totals.files).sum();
        let (mut bytes_before, mut files_before) = (0u64, 0u64);
        let mut elapsed_before = Duration::ZERO;
        let mut options = CopyOptions::for_this_user(false);
        options.existing = self.existing;
        for part in self.parts {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                out.cancelled = true;
                break;
            }
            let target = dest.join(&part.folder);
            if let Err(e) = std::fs::create_dir_all(&target) {
                out.fail(target.display().to_string(), e.to_string());
                continue;
            }
            let copy = CopyJob {
                fs: part.fs,
                sources: part.sources,
                dest: target,
                options: options.clone(),
            };
            let mut on_event = |ev: CopyEvent| {
                if let CopyEvent::Progress(p) = ev {
                    progress(&CopyProgress {
                        bytes_done: bytes_before + p.bytes_done,
                        bytes_total,
                        files_done: files_before + p.files_done,
                        files_total,
                        current: escape(&p.current),
                        elapsed: elapsed_before + p.elapsed,
                    });
                }
            };
            for (at, why) in &part.unavailable {
                out.skip(escape(at), why.clone());
            }
            let s = copy.run_planned(part.totals, cancel, &mut on_event);
            bytes_before += part.totals.bytes;
            files_before += part.totals.files;
            elapsed_before += s.elapsed;
            out.files += s.files;
            out.bytes += s.bytes;
            out.dirs += s.dirs;
            out.symlinks += s.symlinks;
            out.unchanged += s.unchanged;
            for i in &s.skipped {
                out.skip(escape(&i.path), i.reason.clone());
            }
            // Past the copy's own cap it counted what it did not list.
            out.skipped_count += s.skipped_count.saturating_sub(s.skipped.len() as u64);
            for i in &s.failed {
                let why = i.reason.replace(
                    super::strings::CLI_OVERWRITE_HINT,
                    super::strings::TUI_OVERWRITE_HINT,
                );
                out.fail(escape(&i.path), why);
            }
            out.failed_count += s.failed_count.saturating_sub(s.failed.len() as u64);
            if let Some(e) = s.error {
                out.fail(out.dest.display().to_string(), e);
            }
            out.cancelled |= s.cancelled;
        }
        out.elapsed = elapsed_before;
        out
    }
}
