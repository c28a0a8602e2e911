//! What reaches the UI thread (one channel: input, signals, job results) and
//! what the app asks the runtime to do ([`Effect`]s, run on job threads).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ratatui::crossterm::event::KeyEvent;

use super::copier::{CopyProgress, CopyRequest, CopySummary, PlannedCopy};
use super::details::Details;
use super::files::Listing;
use crate::doctor::Report;
use crate::fs::FsView;
use crate::layers::VolumeId;
use crate::repair::candidates::Analysis;
use crate::repair::relink::{Options as RelinkOptions, Plan};
use crate::tui::tree::{Opened, Tree};

/// A layout grown by a disk image file opened as a disk, and the image's volumes.
pub type GrownLayout = (Arc<crate::layers::Layout>, Vec<VolumeId>);

/// Everything the UI thread waits for, on one channel.
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal changed size (columns, rows).
    Resize(u16, u16),
    /// SIGTERM, SIGHUP or SIGINT arrived.
    Signal(i32),
    /// The input thread could not read the terminal any more.
    InputError(String),
    /// About a second passed (messages expire, the image files are looked at).
    Tick,
    /// A job finished or reported progress.
    Job(JobResult),
}

/// Results sent by job threads.
pub enum JobResult {
    /// A volume's filesystem was opened (or not).
    FsOpened {
        /// The tree.
        tree: Tree,
        /// The filesystem, or why it cannot be read.
        result: Result<Opened, String>,
    },
    /// A directory listing is under way.
    ListProgress {
        /// Which request.
        req: u64,
        /// Entries read so far.
        count: usize,
    },
    /// A directory listing finished.
    Listed {
        /// Which request.
        req: u64,
        /// The entries, or why the directory could not be read.
        result: Result<Listing, String>,
    },
    /// The details of a file were read.
    Details {
        /// Which request.
        req: u64,
        /// The details.
        details: Box<Details>,
    },
    /// A copy was planned (sources walked, files counted).
    CopyPlanned {
        /// Which request.
        req: u64,
        /// The plan, or why it could not be made.
        result: Result<Box<dyn PlannedCopy>, String>,
    },
    /// A copy made progress.
    CopyProgress(CopyProgress),
    /// A copy ended (done, cancelled or failed).
    CopyDone(CopySummary),
    /// A symlink was analysed, and its repair planned for the best candidate.
    LinkAnalyzed {
        /// Which request.
        req: u64,
        /// Its problems and candidates, or why it could not be analysed.
        analysis: Result<Box<Analysis>, String>,
        /// The plan for the best candidate (none without a candidate).
        plan: Option<Result<Box<Plan>, String>>,
    },
    /// A repair was planned for a chosen target.
    RelinkPlanned {
        /// Which request.
        req: u64,
        /// The plan, or why there is none.
        result: Result<Box<Plan>, String>,
    },
    /// A repair was written (or not).
    Relinked {
        /// The volume.
        volume: VolumeId,
        /// The link's guest path.
        link: Vec<u8>,
        /// The target written.
        new_target: Vec<u8>,
        /// The undo files, or why nothing was written.
        result: Result<Vec<PathBuf>, String>,
    },
    /// A file was opened for the viewer (decompression may go on).
    ViewerOpened {
        /// Which request.
        req: u64,
        /// The file, or why it cannot be shown.
        result: Result<Box<crate::ops::pager::source::Opened>, String>,
    },
    /// More of a decompressed file (or a journal's text) arrived, or it ended.
    ViewerGrew {
        /// Which request (the open's).
        req: u64,
    },
    /// A viewer search made progress.
    ViewerSearchProgress {
        /// Which request.
        req: u64,
        /// Bytes searched.
        done: u64,
        /// Bytes to search.
        total: u64,
    },
    /// A viewer search ended.
    ViewerSearchDone {
        /// Which request.
        req: u64,
        /// Found, not found, stopped or failed.
        outcome: crate::ops::pager::search::Outcome,
    },
    /// A search found these (in walk order; "changed recently": the whole
    /// list, newest first, in place of what came before).
    FindFound {
        /// Which request.
        req: u64,
        /// The results.
        hits: Vec<Hit>,
        /// Whether they replace the results so far.
        replace: bool,
    },
    /// A search went on.
    FindProgress {
        /// Which request.
        req: u64,
        /// How far.
        counts: crate::ops::find::Counts,
    },
    /// A search ended.
    FindDone {
        /// Which request.
        req: u64,
        /// How far it went.
        counts: crate::ops::find::Counts,
        /// The first problems met.
        problems: Vec<String>,
        /// Why it could not start, if it could not.
        error: Option<String>,
    },
    /// A file opened with Enter holds a disk image: the layout with the
    /// image's disk added under the volume holding the file, and the new
    /// volumes; or why the image could not be opened.
    ImageOpened {
        /// The viewer's request number.
        req: u64,
        /// The file's path, for messages.
        path: Vec<u8>,
        /// The layout and the image's volumes, or why not.
        result: Result<GrownLayout, String>,
    },
    /// The disks' container tables were read again; the disks that could
    /// not be (they read as before), and why.
    DisksRefreshed(Vec<String>),
    /// The disks were scanned again with the passphrase typed for a LUKS
    /// volume ([`Effect::Unlock`]).
    Unlocked {
        /// Which request.
        req: u64,
        /// The volume.
        volume: String,
        /// The new layout, or why the volume stayed locked (escaped) and
        /// whether another passphrase may be tried (a wrong one).
        result: Result<Arc<crate::layers::Layout>, (String, bool)>,
        /// The passphrase, kept for the next scans when it opened the volume.
        pass: crate::layers::luks::Secret,
    },
    /// The doctor examined a guest.
    DoctorDone {
        /// Which request.
        req: u64,
        /// What it found.
        report: Box<Report>,
    },
}

/// What a symlink repair needs besides the layout: where the undo file goes
/// and the safety options.
#[derive(Debug, Clone)]
pub struct RelinkSetup {
    /// The folder for undo files.
    pub undo_dir: PathBuf,
    /// Options (Proxmox root for the running-guest check).
    pub options: RelinkOptions,
}

/// Work the app asks for; the runtime runs each on a job thread (or inline in
/// tests) and sends the results back as [`JobResult`]s.
pub enum Effect {
    /// Open a tree: a volume's filesystem, or the guest's.
    OpenFs(Tree),
    /// Forget what the engine opened of a volume, so the next open reads it
    /// afresh (run in place, before the effects after it).
    ForgetFs(VolumeId),
    /// Read the disks' container tables again (a qcow2 written under the
    /// browser), so no stale L1/L2 table survives a reload (run in place,
    /// before the effects after it).
    RefreshDisks,
    /// List a directory (resolved inside the guest; a symlink to a directory is followed).
    ListDir {
        /// Request number; older results are dropped.
        req: u64,
        /// The tree.
        tree: Tree,
        /// Its filesystem.
        fs: Arc<dyn FsView>,
        /// The guest path to list.
        path: Vec<u8>,
    },
    /// Read the details of one entry.
    LoadDetails {
        /// Request number.
        req: u64,
        /// The filesystem.
        fs: Arc<dyn FsView>,
        /// The directory holding the entry.
        dir: Vec<u8>,
        /// The entry.
        entry: Box<super::files::Entry>,
    },
    /// Walk the sources of a copy and count them.
    PlanCopy {
        /// Request number.
        req: u64,
        /// What to copy.
        request: CopyRequest,
        /// Set to stop counting.
        cancel: Arc<AtomicBool>,
    },
    /// Analyse a symlink (through the open filesystem) and plan its repair
    /// to the best candidate (through the layout, on-disk state).
    AnalyzeLink {
        /// Request number.
        req: u64,
        /// The volume.
        volume: VolumeId,
        /// The btrfs subvolume `inner` starts in, when it lies outside the
        /// volume's default subvolume.
        subvolume: Option<u64>,
        /// The open tree the link was found in.
        fs: Arc<dyn FsView>,
        /// The link's path in that tree (candidates are looked for there).
        link: Vec<u8>,
        /// The link's path on `volume` (what the plan writes) when the tree
        /// is the guest's or a subvolume's; `None` when the tree is the
        /// volume's own.
        inner: Option<Vec<u8>>,
        /// Undo folder and options.
        setup: RelinkSetup,
    },
    /// Plan the repair of a symlink to a chosen target.
    PlanRelink {
        /// Request number.
        req: u64,
        /// The volume.
        volume: VolumeId,
        /// The btrfs subvolume `link` starts in, when it lies outside the
        /// volume's default subvolume.
        subvolume: Option<u64>,
        /// The link's path on the volume.
        link: Vec<u8>,
        /// In the guest's tree: the tree and the link's path in it, where
        /// the target is judged.
        guest: Option<crate::repair::relink::GuestView>,
        /// The target to write.
        target: Vec<u8>,
        /// Undo folder and options.
        setup: RelinkSetup,
    },
    /// Write a planned repair.
    ApplyRelink {
        /// The volume.
        volume: VolumeId,
        /// The plan.
        plan: Box<Plan>,
        /// Undo folder and options.
        setup: RelinkSetup,
    },
    /// Run the doctor's checks.
    RunDoctor {
        /// Request number.
        req: u64,
        /// The filesystem.
        fs: Arc<dyn FsView>,
        /// The guest's mounts, when `fs` is the guest's tree.
        guest: Option<Arc<crate::guest::Namespace>>,
    },
    /// Open a file for the viewer, then decompress it (or run journalctl)
    /// into memory when it needs that.
    OpenViewer {
        /// Request number.
        req: u64,
        /// The filesystem.
        fs: Arc<dyn FsView>,
        /// The file's guest path (symlinks are followed inside the guest).
        path: Vec<u8>,
        /// Set to stop the decompression.
        cancel: Arc<AtomicBool>,
    },
    /// Unlock the LUKS volume `volume` with `pass`: the disks are scanned
    /// again with every passphrase that opened a volume so far and this one.
    Unlock {
        /// Request number.
        req: u64,
        /// The volume's name.
        volume: String,
        /// The passphrase typed (wiped when dropped).
        pass: crate::layers::luks::Secret,
        /// The passphrases that opened other volumes before, by volume.
        known: Vec<(String, crate::layers::luks::Secret)>,
    },
    /// Enter on a file: open it as a disk when it holds a disk image (a
    /// qcow2, or a raw disk with a partition table, a PV or a filesystem),
    /// else in the viewer as [`Effect::OpenViewer`] does.
    OpenFile {
        /// Request number (the viewer's).
        req: u64,
        /// The tree the file is in.
        tree: Tree,
        /// Its filesystem.
        fs: Arc<dyn FsView>,
        /// The guest's mounts, when `fs` is the guest's tree (the volume
        /// holding the file is found from them).
        guest: Option<Arc<crate::guest::Namespace>>,
        /// The file's path (symlinks are followed inside the guest).
        path: Vec<u8>,
        /// Set to stop the viewer's decompression.
        cancel: Arc<AtomicBool>,
    },
    /// Search the viewer's content.
    ViewerSearch {
        /// Request number.
        req: u64,
        /// What to search.
        content: crate::ops::pager::Content,
        /// The pattern and where from.
        query: crate::ops::pager::search::Query,
        /// Set to stop it.
        cancel: Arc<AtomicBool>,
    },
    /// Walk a guest for the find dialog.
    Find {
        /// Request number.
        req: u64,
        /// The filesystem.
        fs: Arc<dyn FsView>,
        /// Where to start (a guest path).
        start: Vec<u8>,
        /// The tests.
        query: Box<crate::ops::find::Query>,
        /// Keep only this many of the newest changes, sorted newest first.
        keep: Option<usize>,
        /// Set to stop the walk.
        cancel: Arc<AtomicBool>,
    },
    /// Run a planned copy.
    StartCopy {
        /// The plan.
        plan: Box<dyn PlannedCopy>,
        /// Where to (a host directory).
        dest: PathBuf,
        /// Set to stop the copy (the file being written is removed).
        cancel: Arc<AtomicBool>,
    },
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::OpenFs(t) => write!(f, "OpenFs({t})"),
            Effect::ForgetFs(v) => write!(f, "ForgetFs({})", v.0),
            Effect::RefreshDisks => write!(f, "RefreshDisks"),
            Effect::ListDir {
                req, tree, path, ..
            } => write!(f, "ListDir({req}, {tree}, {})", crate::text::escape(path)),
            Effect::LoadDetails { req, entry, .. } => {
                write!(f, "LoadDetails({req}, {})", entry.shown)
            }
            Effect::PlanCopy { req, .. } => write!(f, "PlanCopy({req})"),
            Effect::StartCopy { dest, .. } => write!(f, "StartCopy({})", dest.display()),
            Effect::AnalyzeLink { req, link, .. } => {
                write!(f, "AnalyzeLink({req}, {})", crate::text::escape(link))
            }
            Effect::PlanRelink {
                req, link, target, ..
            } => write!(
                f,
                "PlanRelink({req}, {}, {})",
                crate::text::escape(link),
                crate::text::escape(target)
            ),
            Effect::ApplyRelink { plan, .. } => write!(f, "ApplyRelink({})", plan.description()),
            Effect::RunDoctor { req, .. } => write!(f, "RunDoctor({req})"),
            Effect::OpenViewer { req, path, .. } => {
                write!(f, "OpenViewer({req}, {})", crate::text::escape(path))
            }
            Effect::OpenFile {
                req, tree, path, ..
            } => {
                write!(f, "OpenFile({req}, {tree}, {})", crate::text::escape(path))
            }
            Effect::ViewerSearch { req, query, .. } => write!(
                f,
                "ViewerSearch({req}, {}, {})",
                crate::text::escape(&query.pattern),
                query.from
            ),
            Effect::Find { req, start, .. } => {
                write!(f, "Find({req}, {})", crate::text::escape(start))
            }
            // Never the passphrase.
            Effect::Unlock { req, volume, .. } => {
                write!(f, "Unlock({req}, {})", crate::text::escape_str(volume))
            }
        }
    }
}

/// One result of the find dialog's walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Guest path.
    pub path: Vec<u8>,
    /// The path shown (escaped).
    pub shown: String,
    /// Its type.
    pub file_type: crate::fs::FileType,
    /// Size in bytes, when read.
    pub size: Option<u64>,
    /// Last modification, when read.
    pub mtime: Option<crate::fs::Timestamp>,
}

impl Hit {
    /// From what the walk found.
    pub fn from_found(f: crate::ops::find::Found) -> Hit {
        Hit {
            size: f.meta.as_ref().map(|m| m.size),
            mtime: f.meta.as_ref().map(|m| m.mtime),
            path: f.path,
            shown: f.shown,
            file_type: f.file_type,
        }
    }
}
