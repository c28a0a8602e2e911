//! Repairing a symlink: one plan, two appliers.
//!
//! [`plan`] finds the link, chooses its new target (the operator's, or the
//! best candidate), checks it, and says what will be written; [`apply`]
//! writes it with the applier the plan was made for, each leaving an undo
//! record ([`super::undo::UndoRecord`]):
//!
//! * [`Writer::InPlace`] (the userspace engine, ext2/3/4 and XFS): the
//!   inode's bytes (and a slow ext link's data block) are patched in the
//!   image files, as [`crate::fs::ext::write::symlink`] or
//!   [`crate::fs::xfs::write::symlink`] (inline XFS links only) compute them.
//!   The plan reads the filesystem as it is on disk (the journal or log is
//!   not replayed; a dirty XFS log is a blocker) and turns every
//!   changed volume range into image-file ranges through the volume's
//!   [`Mapping`](crate::io::Mapping) ([`Mapping::ranges`](crate::io::Mapping::ranges)),
//!   one [`WritePlan`] per image file. A target that does not fit is refused
//!   with the reason and the alternative (the kernel engine).
//! * [`Writer::Kernel`] (the kernel engine, any filesystem the kernel
//!   writes, targets of any length): a read-write mount, a new symlink
//!   renamed over the old one ([`crate::engine::kernel::repair`]).
//!
//! What stops a plan from being applied is listed in [`Plan::blockers`]: a
//! journal that needs recovery, the filesystem's error flag or an unclean
//! state (in place), an image in use (QEMU's locks, writers, loop devices,
//! mounts; on a Proxmox host a running guest), a container format whose
//! bytes are not plain in the host file (qcow2, in place), an image that
//! cannot be opened for writing, a new target that would dangle inside the
//! guest (unless forced). [`apply`] checks that the images are not in use
//! again just before writing.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::candidates::{Analysis, Guest};
use super::signs::is_library_name;
use super::undo::{self, ByteWrite, WritePlan};
use crate::elf;
use crate::engine::kernel::Session;
use crate::error::{Error, Result};
use crate::fs::FsOptions;
use crate::fs::ext::Ext;
use crate::fs::ext::superblock::incompat;
use crate::fs::ext::write::{self as ext_write, KERNEL_ENGINE, Patch};
use crate::fs::xfs::write as xfs_write;
use crate::fs::xfs::{LogState, Xfs};
use crate::fs::{FileType, FsView, NodeId, Timestamp, path};
use crate::image::ImageFormat;
use crate::io::{DiskId, Unmapped};
use crate::layers::{Layout, VolumeId};
use crate::text::{escape, escape_str};

pub use crate::fs::ext::write::MAX_TARGET;

/// How a symlink stores its target, by filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// An ext symlink: fast, slow or inline data.
    Ext(ext_write::Storage),
    /// An inline (local-format) XFS symlink.
    Xfs(xfs_write::Storage),
}

impl Storage {
    /// In words, for the plan.
    pub fn describe(&self) -> String {
        match self {
            Storage::Ext(s) => s.describe(),
            Storage::Xfs(s) => s.describe(),
        }
    }
}

/// The filesystem an in-place plan reads, as it is on disk.
#[derive(Clone)]
enum OnDisk {
    Ext(Arc<Ext>),
    Xfs(Arc<Xfs>),
}

/// Open the filesystem of volume `id` as it is on disk (no journal replayed).
fn open_on_disk(layout: &Layout, id: VolumeId) -> Result<OnDisk> {
    if layout.volume(id).content.kind.name() == "xfs" {
        Ok(OnDisk::Xfs(Arc::new(Xfs::open(layout.open_volume(id))?)))
    } else {
        Ok(OnDisk::Ext(Arc::new(Ext::open(
            layout.open_volume(id),
            &FsOptions { no_journal: true },
        )?)))
    }
}

/// `s_state` bits.
const EXT2_VALID_FS: u16 = 0x1;
const EXT2_ERROR_FS: u16 = 0x2;

/// Who reads the filesystem to plan a relink, and writes it.
#[derive(Clone)]
pub enum Writer {
    /// The userspace engine: the ext or XFS inode bytes patched in the image
    /// files.
    InPlace,
    /// The kernel engine's session: a read-only mount to plan, a read-write
    /// one to write.
    Kernel(Arc<Session>),
}

impl Writer {
    /// The writer for volume `id` as `opener` serves it: through the kernel
    /// engine's session when the kernel engine serves the volume, else in
    /// place. The CLI and the TUI choose it the same way.
    pub fn for_volume(
        opener: &dyn crate::engine::VolumeOpener,
        layout: &Layout,
        id: VolumeId,
    ) -> Result<Writer> {
        match opener.kernel_session(layout, id) {
            None => Ok(Writer::InPlace),
            Some(Ok(session)) => Ok(Writer::Kernel(session)),
            Some(Err(why)) => Err(Error::Invalid(format!(
                "{}: starting the kernel engine: {why}",
                layout.volume(id).name
            ))),
        }
    }

    /// Which applier this is.
    pub fn applier(&self) -> Applier {
        match self {
            Writer::InPlace => Applier::InPlace,
            Writer::Kernel(_) => Applier::Kernel,
        }
    }
}

/// Which applier a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applier {
    /// Bytes patched in the image files (userspace engine, ext2/3/4, XFS).
    InPlace,
    /// A read-write kernel mount: a new symlink renamed over the old one.
    Kernel,
}

/// Settings of a relink.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write a target that does not resolve inside the guest.
    pub force: bool,
    /// Where the Proxmox configuration lives (default `/etc/pve`), to ask
    /// whether a guest using the image runs.
    pub pve_root: Option<PathBuf>,
    /// The new ctime (default: now; in place only).
    pub now: Option<Timestamp>,
}

/// One changed range of the volume, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What it is (`inode 1234`, `data block 5678`).
    pub what: String,
    /// Byte offset in the volume.
    pub volume_offset: u64,
    /// Its length.
    pub len: usize,
    /// Which fields change.
    pub fields: String,
}

/// What a relink will do, and whether it may.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Who writes it.
    pub applier: Applier,
    /// The volume's name (`vg_ta/lv_root`).
    pub volume: String,
    /// `ext2`, `ext3`, `ext4`, `xfs` (others through the kernel engine).
    pub fs_type: String,
    /// The link's absolute path inside its volume (in the guest's tree too
    /// when the volume is the guest root), or inside btrfs subvolume
    /// [`Plan::subvolume`].
    pub link: Vec<u8>,
    /// The btrfs subvolume (id) [`Plan::link`] starts in, when it lies
    /// outside the volume's default subvolume (written through the kernel
    /// engine's read-write mount of that subvolume).
    pub subvolume: Option<u64>,
    /// Its inode (in place; 0 through the kernel engine).
    pub ino: u64,
    /// How it stores its target (in place; the kernel decides otherwise).
    pub storage: Option<Storage>,
    /// The target now.
    pub old_target: Vec<u8>,
    /// The target to write.
    pub new_target: Vec<u8>,
    /// The analysis of the link (problems of the current target, candidates).
    pub analysis: Analysis,
    /// Why the new target is proposed (the candidate's reasons, or "given").
    pub reasons: Vec<String>,
    /// The new target is a name-based guess (not an ELF SONAME match).
    pub guess: bool,
    /// Doubts about the new target.
    pub warnings: Vec<String>,
    /// The volume ranges that change (in place).
    pub changes: Vec<Change>,
    /// The image-file writes, one plan per image file (in place; empty when
    /// the volume's bytes cannot be written in place).
    pub writes: Vec<WritePlan>,
    /// Why the plan cannot be applied (empty: it can).
    pub blockers: Vec<String>,
}

impl Plan {
    /// Bytes to write in all (in place).
    pub fn bytes(&self) -> usize {
        self.writes.iter().map(WritePlan::bytes).sum()
    }

    /// Whether nothing stops the plan.
    pub fn can_apply(&self) -> bool {
        self.blockers.is_empty() && (self.applier == Applier::Kernel || !self.writes.is_empty())
    }

    /// How the link will be rewritten, in words.
    pub fn how(&self) -> String {
        match self.storage {
            Some(s) if self.applier == Applier::InPlace => s.describe(),
            _ => "through a read-write kernel mount: a new symlink renamed over the old one".into(),
        }
    }

    /// One line: `relink /lib64/libc.so.6: /opt/… → libc-2.12.so`.
    pub fn description(&self) -> String {
        format!(
            "relink {} on {}: {} -> {}",
            escape(&self.link),
            self.volume,
            escape(&self.old_target),
            escape(&self.new_target)
        )
    }
}

/// What an applier did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The link's canonical guest path.
    pub link: Vec<u8>,
    /// The undo files: one per image written in place, or the one record of
    /// a kernel-engine replacement.
    pub undo_files: Vec<PathBuf>,
    /// Things the operator should know (a busy unmount...).
    pub notes: Vec<String>,
}

/// Plan the relink of `link` on volume `id` in place (the userspace engine):
/// [`plan_with`] and [`Writer::InPlace`].
pub fn plan(
    layout: &Layout,
    id: VolumeId,
    link: &[u8],
    target: Option<&[u8]>,
    opts: &Options,
) -> Result<Plan> {
    plan_with(&Writer::InPlace, layout, id, link, target, opts)
}

/// Plan the relink of `link` on volume `id` for `writer`: to `target`, or to
/// the best candidate when `None`. Errors are what makes a plan impossible
/// (not ext in place, not a symlink, no candidate, a target that does not
/// fit, an image in use before the kernel engine mounts anything); what
/// only stops it from being applied is in [`Plan::blockers`].
pub fn plan_with(
    writer: &Writer,
    layout: &Layout,
    id: VolumeId,
    link: &[u8],
    target: Option<&[u8]>,
    opts: &Options,
) -> Result<Plan> {
    plan_seen(writer, layout, id, None, link, None, target, opts)
}

/// The guest as it boots (`crate::guest::Namespace::fs`) and the link's
/// path in it, for a relink of a link on one of its volumes.
#[derive(Clone)]
pub struct GuestView {
    /// The merged tree.
    pub fs: Arc<dyn FsView>,
    /// The link's path in it.
    pub link: Vec<u8>,
}

impl std::fmt::Debug for GuestView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestView")
            .field("link", &escape(&self.link))
            .finish_non_exhaustive()
    }
}

/// [`plan_with`] for `link`, the path inside volume `id` of the link that
/// `view` shows (`crate::guest::Namespace::locate` gives both): the target
/// and its candidates are judged in the whole guest, so a target on another
/// volume resolves as it does when the guest boots; what is written is on
/// volume `id`, and [`Plan::link`] is the path inside it.
pub fn plan_in_guest(
    writer: &Writer,
    layout: &Layout,
    id: VolumeId,
    link: &[u8],
    view: &GuestView,
    target: Option<&[u8]>,
    opts: &Options,
) -> Result<Plan> {
    plan_seen(writer, layout, id, None, link, Some(view), target, opts)
}

/// [`plan_with`] (without `view`) or [`plan_in_guest`] (with it) for a link
/// whose path `link` starts in btrfs subvolume `subvolume` of volume `id`
/// (`None`: the volume's default subvolume, as for those two): a subvolume
/// outside the default one (openSUSE's `@home` when the default is a
/// snapshot of `@`), which only the kernel engine's read-write mount of that
/// subvolume reaches.
#[allow(clippy::too_many_arguments)]
pub fn plan_in_subvolume(
    writer: &Writer,
    layout: &Layout,
    id: VolumeId,
    subvolume: Option<u64>,
    link: &[u8],
    view: Option<&GuestView>,
    target: Option<&[u8]>,
    opts: &Options,
) -> Result<Plan> {
    plan_seen(writer, layout, id, subvolume, link, view, target, opts)
}

#[allow(clippy::too_many_arguments)]
fn plan_seen(
    writer: &Writer,
    layout: &Layout,
    id: VolumeId,
    subvolume: Option<u64>,
    link: &[u8],
    view: Option<&GuestView>,
    target: Option<&[u8]>,
    opts: &Options,
) -> Result<Plan> {
    let volume = layout.volume(id);
    let shown = shown_link(layout, id, link, view);
    let (fs, on_disk, mut blockers): (Arc<dyn FsView>, Option<OnDisk>, Vec<String>) = match writer {
        Writer::InPlace => {
            if let Err(refused) = refuse_in_place(layout, id, &shown) {
                // What the operator named is not a link at all: that first,
                // from the tree already read.
                if let Some(v) = view {
                    let r = path::resolve(&*v.fs, &v.link, false)?;
                    must_be_link(&*v.fs, r.node, &shown)?;
                }
                return Err(refused);
            }
            if let Some(sub) = subvolume {
                return Err(Error::Refused(format!(
                    "{}: btrfs subvolume {sub} is written through the kernel engine only \
                     ({KERNEL_ENGINE})",
                    volume.name
                )));
            }
            // The on-disk state: a journal that needs recovery (a dirty
            // log) is a blocker, and replayed blocks must never be taken for
            // what is on the disk.
            match open_on_disk(layout, id)? {
                OnDisk::Ext(ext) => {
                    let blockers = state_blockers(&ext);
                    (
                        Arc::clone(&ext) as Arc<dyn FsView>,
                        Some(OnDisk::Ext(ext)),
                        blockers,
                    )
                }
                OnDisk::Xfs(xfs) => {
                    let blockers = xfs_state_blockers(&xfs);
                    (
                        Arc::clone(&xfs) as Arc<dyn FsView>,
                        Some(OnDisk::Xfs(xfs)),
                        blockers,
                    )
                }
            }
        }
        Writer::Kernel(session) => {
            // Nothing is mounted while something else holds the image.
            let busy = in_use(layout, id, opts.pve_root.as_deref());
            if !busy.is_empty() {
                return Err(Error::Refused(format!(
                    "{}; nothing was written",
                    busy.join("; ")
                )));
            }
            let fs = session.open_fs(layout, id)?;
            let fs = match subvolume {
                Some(sub) => crate::fs::rooted::subvolume_view(fs, sub)?,
                None => fs,
            };
            (fs, None, Vec::new())
        }
    };

    let r = path::resolve(&*fs, link, false)?;
    must_be_link(&*fs, r.node, &shown)?;
    let (seen, seen_link) = match view {
        Some(v) => (Arc::clone(&v.fs), v.link.clone()),
        None => (Arc::clone(&fs), r.path.clone()),
    };
    let guest = Guest::new(&*seen);
    let analysis = guest.analyze(&seen_link)?;
    let (new_target, reasons, guess) = choose_target(&analysis, target)?;
    check_target_text(&new_target)?;
    if new_target == analysis.target {
        return Err(Error::Invalid(format!(
            "{} already points at {}: nothing to do",
            escape(&analysis.link),
            escape(&new_target)
        )));
    }
    let mut warnings = Vec::new();
    target_doubts(
        &guest,
        &analysis,
        &new_target,
        opts.force,
        &mut warnings,
        &mut blockers,
    );

    let mut plan = Plan {
        applier: writer.applier(),
        volume: match subvolume {
            Some(sub) => layout.subvolume_name(id, sub),
            None => volume.name.clone(),
        },
        fs_type: volume.content.kind.name().to_string(),
        link: r.path.clone(),
        subvolume,
        ino: 0,
        storage: None,
        old_target: analysis.target.clone(),
        new_target,
        analysis,
        reasons,
        guess,
        warnings,
        changes: Vec::new(),
        writes: Vec::new(),
        blockers,
    };
    match on_disk {
        Some(OnDisk::Ext(ext)) => plan_in_place(&ext, layout, id, r.node, opts, &mut plan)?,
        Some(OnDisk::Xfs(xfs)) => plan_in_place_xfs(&xfs, layout, id, r.node, opts, &mut plan)?,
        None => {}
    }
    let (busy, notes) = in_use_and_notes(layout, id, opts.pve_root.as_deref());
    plan.blockers.extend(busy);
    plan.warnings.extend(notes);
    let description = plan.description();
    for w in &mut plan.writes {
        w.description = description.clone();
    }
    Ok(plan)
}

/// The new target: the operator's `target` (with a candidate's reasons if
/// it is one), or the best candidate; its reasons; whether it is a guess.
fn choose_target(a: &Analysis, target: Option<&[u8]>) -> Result<(Vec<u8>, Vec<String>, bool)> {
    Ok(match target {
        Some(t) => {
            let found = a.candidates.iter().find(|c| c.target == t || c.path == t);
            match found {
                Some(c) => (t.to_vec(), c.reasons.clone(), c.guess),
                None => (
                    t.to_vec(),
                    vec!["given by the operator (not among the candidates)".to_string()],
                    false,
                ),
            }
        }
        None => match a.proposal() {
            Some(c) => (c.target.clone(), c.reasons.clone(), c.guess),
            None if a.problems.is_empty() => {
                return Err(Error::Invalid(format!(
                    "{} -> {} looks right and vmrescue knows no better target; name one with --to \
                     to change it anyway",
                    escape(&a.link),
                    escape(&a.target)
                )));
            }
            None => {
                return Err(Error::Invalid(format!(
                    "no candidate target found for {} ({}); name one with --to",
                    escape(&a.link),
                    a.problems.join("; ")
                )));
            }
        },
    })
}

/// The in-place part of a plan: the ext bytes ([`ext_write::symlink`]),
/// the image-file writes they make, and whether the images can be opened
/// for writing.
fn plan_in_place(
    ext: &Ext,
    layout: &Layout,
    id: VolumeId,
    node: NodeId,
    opts: &Options,
    plan: &mut Plan,
) -> Result<()> {
    let ino = u32::try_from(node.0)
        .map_err(|_| Error::Invalid(format!("inode number {} out of range", node.0)))?;
    let inode = ext.read_inode(ino)?;
    let now = opts.now.unwrap_or_else(Timestamp::now);
    let patch = ext_write::symlink(
        ext,
        &inode,
        &plan.link,
        &plan.old_target,
        &plan.new_target,
        now,
    )?;
    plan.ino = u64::from(ino);
    plan.fs_type = ext.status().fs_type;
    plan.storage = Some(Storage::Ext(patch.storage));
    finish_in_place(layout, id, &patch.patches, plan);
    Ok(())
}

/// The in-place part of a plan on XFS: the inode bytes
/// ([`xfs_write::symlink`]), the image-file writes they make, and whether
/// the images can be opened for writing.
fn plan_in_place_xfs(
    xfs: &Xfs,
    layout: &Layout,
    id: VolumeId,
    node: NodeId,
    opts: &Options,
    plan: &mut Plan,
) -> Result<()> {
    let inode = xfs.read_inode(node.0)?;
    let now = opts.now.unwrap_or_else(Timestamp::now);
    let patch = xfs_write::symlink(
        xfs,
        &inode,
        &plan.link,
        &plan.old_target,
        &plan.new_target,
        now,
    )?;
    plan.ino = node.0;
    plan.fs_type = "xfs".into();
    plan.storage = Some(Storage::Xfs(patch.storage));
    finish_in_place(layout, id, std::slice::from_ref(&patch.patch), plan);
    Ok(())
}

/// The image-file writes of `patches`, the changes in words, and whether
/// the images can be opened for writing.
fn finish_in_place(layout: &Layout, id: VolumeId, patches: &[Patch], plan: &mut Plan) {
    match image_writes(layout, id, patches, &plan.link) {
        Ok(w) => plan.writes = w,
        Err(why) => plan.blockers.push(why),
    }
    plan.changes = patches
        .iter()
        .map(|p| Change {
            what: p.what.clone(),
            volume_offset: p.pos,
            len: p.old.len(),
            fields: p.fields.clone(),
        })
        .collect();
    let mut seen = Vec::new();
    for w in &plan.writes {
        // A network disk is opened for writing when the plan is applied.
        if seen.contains(&w.image) || w.disk.is_some() {
            continue;
        }
        seen.push(w.image.clone());
        // Asked without opening: closing a block device opened for writing
        // makes udev probe it again.
        if let Err(e) = nix::unistd::access(&w.image, nix::unistd::AccessFlags::W_OK) {
            plan.blockers.push(format!(
                "{} cannot be opened for writing: {}",
                w.image.display(),
                std::io::Error::from(e)
            ));
        }
    }
}

/// The drive a Windows guest gives volume `id` (`C:\`), if any.
fn drive_of(layout: &Layout, id: VolumeId) -> Option<&str> {
    layout
        .volume(id)
        .guest
        .mountpoint
        .as_deref()
        .filter(|m| !m.starts_with('/'))
}

/// Link `link` (its path inside volume `id`; `view` shows it in the whole
/// guest) as the operator knows it: on a drive of a Windows guest as
/// Windows writes it (`C:\Users\x`), else its guest path (or its path in
/// the volume).
fn shown_link(layout: &Layout, id: VolumeId, link: &[u8], view: Option<&GuestView>) -> String {
    drive_of(layout, id)
        .and_then(|d| crate::guest::windows_display(Some(d), link))
        .unwrap_or_else(|| escape(view.map_or(link, |v| &v.link)))
}

/// Refuse `node` of `fs` (`shown` names it) when it is not a symbolic
/// link: relink repairs nothing else.
pub fn must_be_link(fs: &dyn FsView, node: NodeId, shown: &str) -> Result<()> {
    match fs.metadata(node)?.file_type {
        FileType::Symlink => Ok(()),
        other => Err(Error::Invalid(format!(
            "{shown}: not a symbolic link (it is a {}); relink repairs symbolic links only",
            other.words()
        ))),
    }
}

/// Refuse a write in place on a filesystem vmrescue does not write, with
/// the link (`shown`), its volume (and drive), the reason the
/// filesystem's row gives and the alternative.
fn refuse_in_place(layout: &Layout, id: VolumeId, shown: &str) -> Result<()> {
    let volume = layout.volume(id);
    let kind = crate::fs::kinds::by_probe_name(volume.content.kind.name());
    if kind.is_some_and(|k| k.relink_in_place) {
        return Ok(());
    }
    let why = kind
        .and_then(|k| k.in_place_refusal)
        .unwrap_or("vmrescue writes repairs in place only on ext2/ext3/ext4 and XFS");
    let drive = drive_of(layout, id)
        .map(|d| format!(" ({})", d.trim_end_matches('\\')))
        .unwrap_or_default();
    Err(Error::Refused(format!(
        "{shown} is on {}{drive}, which holds {}: {why}{}",
        volume.name,
        volume.content.describe(),
        if kind.is_some_and(|k| k.relink_kernel) {
            format!("; use {KERNEL_ENGINE}")
        } else {
            String::new()
        }
    )))
}

/// Apply a plan made by [`plan`] in place: [`apply_with`] and
/// [`Writer::InPlace`]; returns the undo files.
pub fn apply(
    layout: &Layout,
    id: VolumeId,
    plan: &Plan,
    undo_dir: &Path,
    opts: &Options,
) -> Result<Vec<PathBuf>> {
    apply_with(&Writer::InPlace, layout, id, plan, undo_dir, opts).map(|a| a.undo_files)
}

/// Apply a plan with `writer` (the one it was made for): check again that
/// nothing stops it (the image may have been opened by a VM since), then
/// write it with an undo record and read the link back.
pub fn apply_with(
    writer: &Writer,
    layout: &Layout,
    id: VolumeId,
    plan: &Plan,
    undo_dir: &Path,
    opts: &Options,
) -> Result<Applied> {
    if writer.applier() != plan.applier {
        return Err(Error::Invalid(
            "the plan was made for the other engine; nothing was written".into(),
        ));
    }
    if !plan.blockers.is_empty() {
        return Err(Error::Refused(format!(
            "{}; nothing was written",
            plan.blockers.join("; ")
        )));
    }
    if plan.applier == Applier::InPlace && plan.writes.is_empty() {
        return Err(Error::Refused("nothing to write".into()));
    }
    let again = in_use(layout, id, opts.pve_root.as_deref());
    if !again.is_empty() {
        return Err(Error::Refused(format!(
            "{}; nothing was written",
            again.join("; ")
        )));
    }
    match writer {
        Writer::InPlace => write_in_place(layout, id, plan, undo_dir).map(|undo_files| Applied {
            link: plan.link.clone(),
            undo_files,
            notes: Vec::new(),
        }),
        Writer::Kernel(session) => {
            let (change, undo_file) = crate::engine::kernel::repair::replace_with_undo(
                session,
                layout,
                id,
                plan.subvolume,
                &plan.link,
                &plan.old_target,
                &plan.new_target,
                undo_dir,
            )?;
            // The filesystem changed under any view opened before: the
            // caller tells its engine to forget it, as for the in-place write.
            Ok(Applied {
                link: change.path,
                undo_files: vec![undo_file],
                notes: change.notes,
            })
        }
    }
}

/// The in-place applier: write each image's ranges with an undo record
/// ([`undo::apply`]), then read the link back. Returns the undo files, one
/// per image written. If a later image fails, the earlier ones are undone.
fn write_in_place(
    layout: &Layout,
    id: VolumeId,
    plan: &Plan,
    undo_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut done: Vec<PathBuf> = Vec::new();
    for w in &plan.writes {
        // Each disk's writer lives for its writes only (an RBD handle holds
        // the image's exclusive lock while open).
        let written = open_writer(layout, w).and_then(|file| undo::apply_to(w, &*file, undo_dir));
        match written {
            Ok(p) => done.push(p),
            Err(e) => {
                let mut msg = e.to_string();
                for (p, w) in done.iter().zip(&plan.writes).rev() {
                    // A network disk's writer again: on its reader's
                    // connection (a server may take one client only).
                    let undone = undo::load_record(p).and_then(|r| match w.disk {
                        Some(_) => open_writer(layout, w)
                            .and_then(|file| undo::undo_bytes_with(&r, Some(&*file))),
                        None => undo::undo_bytes(&r),
                    });
                    match undone {
                        Ok(_) => msg.push_str(&format!("; undid {}", p.display())),
                        Err(u) => msg.push_str(&format!(
                            "; undoing {} failed too ({u}): run `vmrescue undo {}`",
                            p.display(),
                            p.display()
                        )),
                    }
                }
                return Err(match e {
                    Error::Refused(_) => Error::Refused(msg),
                    _ => Error::Invalid(msg),
                });
            }
        }
    }
    // From here the bytes are written: every error names the undo record.
    let undo_hint = done
        .iter()
        .map(|p| format!("vmrescue undo {}", p.display()))
        .collect::<Vec<_>>()
        .join(" and ");
    let written = |e: Error| {
        Error::Invalid(format!(
            "{e}; the write was done: undo it with `{undo_hint}`"
        ))
    };
    // A network disk's reader caches blocks: the ones written are stale.
    for d in plan.writes.iter().filter_map(|w| w.disk) {
        if let Some(disk) = layout.disks.get(d.0) {
            disk.source.refresh().map_err(|e| {
                written(Error::Invalid(format!(
                    "{}: reading it again after the write: {e}",
                    disk.origin
                )))
            })?;
        }
    }
    // Read the link back through a fresh reader.
    // The filesystem changed under any view opened before: the caller
    // tells its engine to forget it ([`crate::engine::VolumeOpener::forget`]).
    let back = match open_on_disk(layout, id).map_err(written)? {
        OnDisk::Ext(ext) => ext.read_link(NodeId(plan.ino)).map_err(written)?,
        OnDisk::Xfs(xfs) => xfs.read_link(NodeId(plan.ino)).map_err(written)?,
    };
    if back != plan.new_target {
        return Err(Error::Invalid(format!(
            "after writing, {} reads {} instead of {}; undo with `{undo_hint}`",
            escape(&plan.link),
            escape(&back),
            escape(&plan.new_target)
        )));
    }
    Ok(done)
}

/// The writer of one image's writes: the host file (`O_RDWR`), or a
/// network disk's writer ([`crate::io::NetworkDisk::open_writer`]).
fn open_writer(layout: &Layout, w: &WritePlan) -> Result<Box<dyn crate::io::WriteAt>> {
    let Some(d) = w.disk else {
        return Ok(Box::new(crate::io::HostWriter::open(&w.image)?));
    };
    layout
        .disks
        .get(d.0)
        .and_then(|disk| disk.source.network())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the plan names disk {} which is not a network disk open here; nothing was \
                 written",
                w.image.display(),
                d.0
            ))
        })?
        .open_writer()
}

/// Why the filesystem's state forbids writing to it.
fn state_blockers(ext: &Ext) -> Vec<String> {
    let sb = ext.superblock();
    let mut out = Vec::new();
    if sb.has_incompat(incompat::RECOVER) {
        out.push(
            "the filesystem's journal needs recovery (it was not cleanly unmounted): let the \
             kernel replay it — the kernel engine (`--engine kernel`, as root) does so when it \
             mounts the volume read-write — or run `e2fsck -E journal_only` on the volume, then \
             try again"
                .into(),
        );
    }
    if sb.s_state & EXT2_ERROR_FS != 0 {
        out.push(
            "the filesystem's error flag is set (s_state): the kernel found an error; run \
             `e2fsck -f` on the volume before repairing it"
                .into(),
        );
    } else if sb.s_state & EXT2_VALID_FS == 0 {
        out.push(
            "the filesystem was not cleanly unmounted (s_state): run `e2fsck -f` on the volume \
             first"
                .into(),
        );
    }
    out
}

/// Why the state of an XFS filesystem forbids writing to it: a dirty log
/// (recovery at the next mount would write the logged inode over the
/// patch), one that cannot be checked, an unfinished xfs_repair.
fn xfs_state_blockers(xfs: &Xfs) -> Vec<String> {
    let mut out = Vec::new();
    match xfs.log_state() {
        LogState::Clean => {}
        LogState::Dirty => out.push(
            "the log is dirty: mount the guest once or run xfs_repair first, or repair as root \
             with the kernel engine (`--engine kernel`), which replays it when it mounts the \
             volume read-write (log recovery at the next mount would overwrite the inode)"
                .into(),
        ),
        LogState::External => out.push(
            "the XFS log is on an external device that vmrescue cannot check: repair as root \
             with the kernel engine (`--engine kernel`)"
                .into(),
        ),
        LogState::Unknown(why) => out.push(format!(
            "cannot tell whether the XFS log is clean ({why}): run xfs_repair first, or repair \
             as root with the kernel engine (`--engine kernel`)"
        )),
    }
    if xfs
        .superblock()
        .has_incompat(crate::fs::xfs::sb::incompat::NEEDSREPAIR)
    {
        out.push(
            "the XFS needsrepair flag is set (xfs_repair did not finish): run xfs_repair first"
                .into(),
        );
    }
    out
}

/// Why the disks under volume `id` must not be written now: in use on this
/// host, or belonging to a Proxmox guest that runs.
pub fn in_use(layout: &Layout, id: VolumeId, pve_root: Option<&Path>) -> Vec<String> {
    in_use_and_notes(layout, id, pve_root).0
}

/// [`in_use`]'s blockers, and what a plan must say of the network disks
/// under volume `id` whose other clients nobody can list (NBD: the operator
/// confirms that the guest does not use them), from one listing of each
/// network disk's holders (on RBD, one round of watchers and lockers).
pub fn in_use_and_notes(
    layout: &Layout,
    id: VolumeId,
    pve_root: Option<&Path>,
) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    // Network disks' URIs: only compared with the disks of running guests.
    let mut net_keys: Vec<PathBuf> = Vec::new();
    for d in layout.volume(id).mapping.disks() {
        if let Some(disk) = layout.disks.get(d.0)
            && let Some(net) = disk.source.network()
        {
            // RBD: its watchers and lock holders; NBD cannot tell (the
            // plan says so).
            match net.holders() {
                Ok(holders) if !holders.is_empty() => out.push(format!(
                    "{} is in use by {}: stop the VM (or whatever holds it) first",
                    disk.origin,
                    holders.join(", ")
                )),
                Ok(_) => {}
                Err(why) => {
                    if !notes.contains(&why) {
                        notes.push(why);
                    }
                }
            }
            net_keys.push(net.key());
            continue;
        }
        match layout
            .disks
            .get(d.0)
            .map(|d| d.host_path("the in-use check"))
        {
            Some(Ok(p)) => paths.push(p.to_path_buf()),
            Some(Err(e)) => out.push(format!("cannot tell whether it is in use: {e}")),
            None => {}
        }
    }
    for p in &paths {
        if crate::image::rbd::is_rbd(p) {
            out.push(format!(
                "{} is a Ceph RBD image: vmrescue reads RBD images only and does not repair them \
                 in place",
                p.display()
            ));
            continue;
        }
        match crate::pve::is_image_in_use(p) {
            Ok(Some(why)) => out.push(format!(
                "{} is in use ({why}): stop the VM (or whatever holds it) first",
                p.display()
            )),
            Ok(None) => {}
            Err(e) => out.push(format!(
                "cannot tell whether {} is in use: {e}",
                p.display()
            )),
        }
    }
    let host = crate::pve::Host::new(pve_root.unwrap_or(Path::new(crate::pve::DEFAULT_ROOT)));
    if host.exists()
        && let Ok(guests) = crate::pve::list(&host)
    {
        let canon: Vec<PathBuf> = paths
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .chain(net_keys)
            .collect();
        for g in guests.iter().filter(|g| g.status.is_running()) {
            let uses = g.disks.iter().any(|d| {
                d.path.as_ref().is_ok_and(|p| {
                    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                    canon.contains(&p)
                })
            });
            if let (true, crate::pve::Status::Running(why)) = (uses, &g.status) {
                out.push(format!(
                    "{} {} uses this image and is running ({why}): shut it down first",
                    g.kind.short(),
                    g.vmid
                ));
            }
        }
    }
    (out, notes)
}

/// A target's bytes are possible at all.
fn check_target_text(t: &[u8]) -> Result<()> {
    if t.is_empty() {
        return Err(Error::Invalid("an empty symlink target".into()));
    }
    if t.contains(&0) {
        return Err(Error::Invalid(
            "a symlink target cannot contain a NUL byte".into(),
        ));
    }
    if t.len() > MAX_TARGET {
        return Err(Error::Invalid(format!(
            "a symlink target of {} bytes is longer than {MAX_TARGET}",
            t.len()
        )));
    }
    Ok(())
}

/// What may be wrong with the new target: it must resolve inside the guest
/// (else a blocker, or a warning with `force`); a library link's target
/// should be an ELF file whose SONAME is the link's name.
fn target_doubts(
    guest: &Guest<'_>,
    a: &Analysis,
    target: &[u8],
    force: bool,
    warnings: &mut Vec<String>,
    blockers: &mut Vec<String>,
) {
    let fs = guest.fs();
    let (dir, name) = path::split_last(&a.link);
    let full = if target.starts_with(b"/") {
        target.to_vec()
    } else {
        path::join(&dir, target)
    };
    let resolved = match path::resolve(fs, &full, true) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!(
                "{} would not resolve inside the guest ({e})",
                escape(target)
            );
            if force {
                warnings.push(format!("{msg}; written anyway (--force)"));
            } else {
                blockers.push(format!("{msg}; --force writes it anyway"));
            }
            return;
        }
    };
    let Some(name) = name else { return };
    if !is_library_name(&name) {
        return;
    }
    let (tdir, _) = path::split_last(&resolved.path);
    if !guest.lib_dirs.contains(&tdir) {
        warnings.push(format!(
            "{} is outside the library directories",
            escape(&resolved.path)
        ));
    }
    match fs.metadata(resolved.node).map(|m| m.file_type) {
        Ok(FileType::Regular) => match elf::read(fs, resolved.node) {
            None => warnings.push(format!("{} is not an ELF file", escape(&resolved.path))),
            Some(info) => match &info.soname {
                Some(s) if *s == name => {}
                Some(s) => warnings.push(format!(
                    "the SONAME of {} is {}, not {}",
                    escape(&resolved.path),
                    escape(s),
                    escape(&name)
                )),
                None => warnings.push(format!("{} has no SONAME", escape(&resolved.path))),
            },
        },
        Ok(t) => warnings.push(format!(
            "{} is a {}, not a file",
            escape(&resolved.path),
            format!("{t:?}").to_lowercase()
        )),
        Err(e) => warnings.push(format!("{} cannot be read: {e}", escape(&resolved.path))),
    }
}

/// Turn volume ranges into image-file writes (split where the mapping
/// splits, [`Mapping::ranges`](crate::io::Mapping::ranges)), one
/// [`WritePlan`] per image; the old bytes are read from the image files
/// themselves and must equal what the filesystem showed.
fn image_writes(
    layout: &Layout,
    id: VolumeId,
    patches: &[Patch],
    link: &[u8],
) -> std::result::Result<Vec<WritePlan>, String> {
    let volume = layout.volume(id);
    let mut per_disk: Vec<(DiskId, PathBuf, Option<DiskId>, Vec<ByteWrite>)> = Vec::new();
    for p in patches {
        let runs = volume
            .mapping
            .ranges(p.pos, p.old.len() as u64)
            .map_err(|e| match e {
                Unmapped::Zero { at } => format!(
                    "byte {at} of {} lies in a zero segment: there is nothing to write to",
                    volume.name
                ),
                Unmapped::Unreadable { at, reason } => {
                    format!("byte {at} of {} cannot be written: {reason}", volume.name)
                }
            })?;
        let mut done = 0usize;
        for run in runs {
            let n = run.len as usize;
            let disk = layout.disks.get(run.area.disk.0).ok_or_else(|| {
                format!(
                    "the mapping names disk {} which is not open",
                    run.area.disk.0
                )
            })?;
            match disk.format {
                ImageFormat::Raw | ImageFormat::BlockDevice => {}
                ImageFormat::Nbd | ImageFormat::Rbd => {}
                ImageFormat::Qcow2 => {
                    return Err(format!(
                        "{} is a qcow2 image: the volume's bytes are not stored plainly in the file, \
                         so vmrescue cannot write them in place; convert it to raw \
                         (`qemu-img convert -O raw`) and repair that, or use the kernel engine with \
                         qemu-nbd",
                        disk.origin
                    ));
                }
                ImageFormat::Vmdk | ImageFormat::Vhd | ImageFormat::Vhdx | ImageFormat::Vdi => {
                    return Err(format!(
                        "{} is a {} image: vmrescue does not write into it; convert it to raw \
                         (`qemu-img convert -O raw`) and repair that",
                        disk.origin,
                        disk.format.name()
                    ));
                }
            }
            let old = p.old[done..done + n].to_vec();
            let mut on_disk = vec![0u8; n];
            // A disk on the network (NBD, RBD) is written through a writer
            // of its own, keyed by its URI; a host file as before.
            let (path, network) = match disk.source.network() {
                Some(net) => {
                    if let Some(why) = net.read_only() {
                        return Err(why);
                    }
                    let key = net.key();
                    disk.source
                        .read_exact_at(run.area.offset, &mut on_disk)
                        .map_err(|e| format!("{}: {e}", key.display()))?;
                    (key, Some(run.area.disk))
                }
                None => {
                    let path = disk
                        .host_path("a write in place")
                        .map_err(|e| e.to_string())?;
                    File::open(path)
                        .and_then(|f| f.read_exact_at(&mut on_disk, run.area.offset))
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    (path.to_path_buf(), None)
                }
            };
            if on_disk != old {
                return Err(format!(
                    "the bytes of {} at image byte {} differ from what the filesystem showed for {}: \
                     the image may be changing; nothing will be written",
                    path.display(),
                    run.area.offset,
                    escape(link)
                ));
            }
            let w = ByteWrite {
                offset: run.area.offset,
                old,
                new: p.new[done..done + n].to_vec(),
            };
            match per_disk.iter_mut().find(|(d, _, _, _)| *d == run.area.disk) {
                Some((_, _, _, v)) => v.push(w),
                None => per_disk.push((run.area.disk, path, network, vec![w])),
            }
            done += n;
        }
    }
    Ok(per_disk
        .into_iter()
        .map(|(_, image, disk, writes)| WritePlan {
            image,
            disk,
            description: String::new(),
            // Only ranges that change are written.
            writes: writes.into_iter().filter(|w| w.old != w.new).collect(),
        })
        .filter(|p| !p.writes.is_empty())
        .collect())
}

/// The plan as text, for the CLI and the TUI.
pub fn render(plan: &Plan, undo_dir: &Path) -> Vec<String> {
    let storage = match (plan.applier, plan.storage) {
        (Applier::InPlace, Some(storage)) => storage,
        _ => return render_kernel(plan, undo_dir),
    };
    let mut out = Vec::new();
    out.push(format!(
        "{} on {} ({}), inode {}: {}",
        escape(&plan.link),
        plan.volume,
        plan.fs_type,
        plan.ino,
        storage.describe()
    ));
    out.push(format!("  now: {}", escape(&plan.old_target)));
    for p in &plan.analysis.problems {
        out.push(format!("       - {p}"));
    }
    out.push(format!(
        "  new: {}{}",
        escape(&plan.new_target),
        if plan.guess { " (a guess)" } else { "" }
    ));
    for r in &plan.reasons {
        out.push(format!("       + {r}"));
    }
    for w in &plan.warnings {
        out.push(format!("       ! {w}"));
    }
    out.push("  writes:".into());
    for c in &plan.changes {
        out.push(format!(
            "       {} ({} bytes at volume byte {}): {}",
            c.what, c.len, c.volume_offset, c.fields
        ));
    }
    for wp in &plan.writes {
        let n: usize = wp.bytes();
        let ranges: Vec<String> = wp
            .writes
            .iter()
            .map(|w| format!("{}+{}", w.offset, w.new.len()))
            .collect();
        out.push(format!(
            "       {n} bytes of {} (at {})",
            escape_str(&wp.image.display().to_string()),
            ranges.join(", ")
        ));
    }
    out.push(format!(
        "  undo: the old bytes are saved under {} before anything is written",
        escape_str(&undo_dir.display().to_string())
    ));
    out
}

/// A kernel-engine plan as text.
fn render_kernel(plan: &Plan, undo_dir: &Path) -> Vec<String> {
    let mut out = vec![format!(
        "relink {} on {} (kernel engine)",
        escape(&plan.link),
        plan.volume
    )];
    out.push(format!("  now:  {}", escape(&plan.old_target)));
    for p in &plan.analysis.problems {
        out.push(format!("        - {p}"));
    }
    out.push(format!(
        "  new:  {}{} ({})",
        escape(&plan.new_target),
        if plan.guess { " (a guess)" } else { "" },
        plan.reasons.join("; ")
    ));
    for w in &plan.warnings {
        out.push(format!("        ! {w}"));
    }
    out.push(
        "  how:  read-write mount; a new symlink under a temporary name renamed over the old one; \
         directory synced"
            .into(),
    );
    out.push(format!(
        "  undo: a record saved in {} before the change",
        escape_str(&undo_dir.display().to_string())
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_text_rules() {
        assert!(check_target_text(b"").is_err());
        assert!(check_target_text(b"a\0b").is_err());
        assert!(check_target_text(&[b'a'; 4096]).is_err());
        assert!(check_target_text(&[b'a'; 4095]).is_ok());
    }
}
