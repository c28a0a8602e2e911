//! Rewriting a symlink in place on ext2/3/4 (the userspace engine's repair).
//!
//! The link keeps its inode and the kind of storage it has:
//!
//! * a **fast** symlink (target under 60 bytes in `i_block`, no data block,
//!   no `EXTENTS`/`INLINE_DATA` flag) gets a new target of 1 to 59 bytes,
//!   zero-padded in `i_block`;
//! * a **slow** symlink (target in its one data block, block- or
//!   extent-mapped) gets a new target of 60 bytes up to a block minus one,
//!   written into the same block and followed by zeros where the old one was
//!   (a shorter target would be taken for a fast one by `e2fsck` and the
//!   kernel, and making it fast would free a block: bitmaps and counters);
//! * an **inline-data** symlink (`INLINE_DATA`: `i_block` and the
//!   `system.data` attribute in the inode) only keeps a target of exactly the
//!   same length, whose bytes are rewritten in both places.
//!
//! In every case `i_size` (low and high words), `ctime` (with
//! `ctime_extra`'s nanoseconds when the inode has room for them) and, with
//! metadata_csum, the inode checksum are updated. A target that does not fit
//! is refused with the reason and the alternative (the kernel engine).
//!
//! The plan reads the filesystem as it is on disk (the journal is not
//! replayed) and turns every changed volume range into image-file ranges
//! through the volume's [`Mapping`](crate::io::Mapping), split at segment
//! and stripe boundaries, one [`WritePlan`] per image file. What stops a
//! plan from being applied is listed in [`Plan::blockers`]: a journal that
//! needs recovery, the filesystem's error flag or an unclean state, an image
//! in use (QEMU's locks, writers, loop devices, mounts; on a Proxmox host a
//! running guest), a container format whose bytes are not plain in the
//! host file (qcow2), an image that cannot be opened for writing, a new
//! target that would dangle inside the guest (unless forced). [`apply`]
//! checks them all again just before writing.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::candidates::{Analysis, Guest};
use super::elf;
use super::signs::is_library_name;
use super::undo::{self, ByteWrite, WritePlan};
use crate::error::{Error, Result};
use crate::fs::FsOptions;
use crate::fs::ext::Ext;
use crate::fs::ext::RunKind;
use crate::fs::ext::inode::{self, EXT4_GOOD_OLD_INODE_SIZE, I_BLOCK, I_BLOCK_LEN, Inode};
use crate::fs::ext::superblock::incompat;
use crate::fs::{FileType, FsView, NodeId, Timestamp, path};
use crate::image::ImageFormat;
use crate::io::{DiskId, ReadAt};
use crate::layers::{Layout, VolumeId};
use crate::text::{escape, escape_str};

/// Longest symlink target (PATH_MAX without its NUL).
pub const MAX_TARGET: usize = 4095;
/// Offset of `i_size_lo`.
const I_SIZE_LO: usize = 0x4;
/// Offset of `i_ctime`.
const I_CTIME: usize = 0xC;
/// Offset of `i_size_high`.
const I_SIZE_HIGH: usize = 0x6C;
/// Offset of `i_ctime_extra` (inside the extra part).
const I_CTIME_EXTRA: usize = 0x84;
/// `s_state` bits.
const EXT2_VALID_FS: u16 = 0x1;
const EXT2_ERROR_FS: u16 = 0x2;
/// The kernel engine, as the alternative offered in refusals.
const KERNEL_ENGINE: &str = "the kernel engine (`--engine kernel`, as root), which replaces the link through a mounted filesystem";

/// How a symlink stores its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In `i_block` (under 60 bytes).
    Fast,
    /// In one data block.
    Slow {
        /// The block's number in the filesystem.
        block: u64,
        /// Extent-mapped (else block-mapped).
        extents: bool,
    },
    /// Inline data: `i_block`, then the `system.data` attribute.
    Inline,
}

impl Storage {
    /// In words, for the plan.
    pub fn describe(&self) -> String {
        match self {
            Storage::Fast => "a fast symlink: the target lives in the inode".into(),
            Storage::Slow { block, extents } => format!(
                "a slow symlink: the target lives in data block {block} ({})",
                if *extents {
                    "extent-mapped"
                } else {
                    "block-mapped"
                }
            ),
            Storage::Inline => {
                "an inline-data symlink: the target lives in the inode and its system.data attribute"
                    .into()
            }
        }
    }
}

/// Settings of a relink.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write a target that does not resolve inside the guest.
    pub force: bool,
    /// Where the Proxmox configuration lives (default `/etc/pve`), to ask
    /// whether a guest using the image runs.
    pub pve_root: Option<PathBuf>,
    /// The new ctime (default: now).
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
    /// The volume's name (`vg_ta/lv_root`).
    pub volume: String,
    /// `ext2`, `ext3` or `ext4`.
    pub fs_type: String,
    /// The link's absolute guest path.
    pub link: Vec<u8>,
    /// Its inode.
    pub ino: u32,
    /// How it stores its target.
    pub storage: Storage,
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
    /// The volume ranges that change.
    pub changes: Vec<Change>,
    /// The image-file writes, one plan per image file (empty when the
    /// volume's bytes cannot be written in place).
    pub writes: Vec<WritePlan>,
    /// Why the plan cannot be applied (empty: it can).
    pub blockers: Vec<String>,
}

impl Plan {
    /// Bytes to write in all.
    pub fn bytes(&self) -> usize {
        self.writes.iter().map(WritePlan::bytes).sum()
    }

    /// Whether nothing stops the plan.
    pub fn can_apply(&self) -> bool {
        self.blockers.is_empty() && !self.writes.is_empty()
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

/// Plan the relink of `link` on volume `id`: to `target`, or to the best
/// candidate when `None`. Errors are what makes a plan impossible (not ext,
/// not a symlink, no candidate, a target that does not fit); what only
/// stops it from being applied is in [`Plan::blockers`].
pub fn plan(
    layout: &Layout,
    id: VolumeId,
    link: &[u8],
    target: Option<&[u8]>,
    opts: &Options,
) -> Result<Plan> {
    let volume = layout.volume(id);
    let kind = crate::fs::kinds::by_probe_name(volume.content.kind.name());
    if !kind.is_some_and(|k| k.relink_in_place) {
        return Err(Error::Refused(format!(
            "{} holds {}: vmrescue writes repairs in place only on ext2/ext3/ext4{}",
            volume.name,
            volume.content.describe(),
            if kind.is_some_and(|k| k.relink_kernel) {
                format!("; use {KERNEL_ENGINE}")
            } else {
                String::new()
            }
        )));
    }
    // The on-disk state: a journal that needs recovery is a blocker, and
    // replayed blocks must never be taken for what is on the disk.
    let src = layout.open_volume(id);
    let ext = Ext::open(std::sync::Arc::clone(&src), &FsOptions { no_journal: true })?;
    let mut blockers = state_blockers(&ext);

    let r = path::resolve(&ext, link, false)?;
    let meta = ext.metadata(r.node)?;
    if meta.file_type != FileType::Symlink {
        return Err(Error::Invalid(format!(
            "{}: not a symbolic link (it is a {})",
            escape(&r.path),
            format!("{:?}", meta.file_type).to_lowercase()
        )));
    }
    let guest = Guest::new(&ext);
    let analysis = guest.analyze(&r.path)?;
    let (new_target, reasons, guess) = match target {
        Some(t) => {
            let found = analysis
                .candidates
                .iter()
                .find(|c| c.target == t || c.path == t);
            match found {
                Some(c) => (t.to_vec(), c.reasons.clone(), c.guess),
                None => (
                    t.to_vec(),
                    vec!["given by the operator (not among the candidates)".to_string()],
                    false,
                ),
            }
        }
        None => match analysis.proposal() {
            Some(c) => (c.target.clone(), c.reasons.clone(), c.guess),
            None if analysis.problems.is_empty() => {
                return Err(Error::Invalid(format!(
                    "{} -> {} looks right and vmrescue knows no better target; name one with --to \
                     to change it anyway",
                    escape(&analysis.link),
                    escape(&analysis.target)
                )));
            }
            None => {
                return Err(Error::Invalid(format!(
                    "no candidate target found for {} ({}); name one with --to",
                    escape(&analysis.link),
                    analysis.problems.join("; ")
                )));
            }
        },
    };
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

    let ino = u32::try_from(r.node.0)
        .map_err(|_| Error::Invalid(format!("inode number {} out of range", r.node.0)))?;
    let inode = ext.read_inode(ino)?;
    if ext.superblock().has_metadata_csum() {
        let want = inode::inode_checksum(ext.csum_seed(), ino, &inode.raw);
        let stored = inode::stored_checksum(&inode.raw);
        if want != stored {
            return Err(Error::Refused(format!(
                "inode {ino} of {} has a bad checksum already (stored {stored:#x}, computed {want:#x}): run e2fsck on the filesystem first",
                escape(&analysis.link)
            )));
        }
    }
    let now = opts.now.unwrap_or_else(now);
    let (storage, changes) = rewrite(&ext, &*src, &inode, &analysis, &new_target, now)?;

    let mut writes = Vec::new();
    match image_writes(layout, id, &changes, &analysis) {
        Ok(w) => writes = w,
        Err(why) => blockers.push(why),
    }
    let mut seen = Vec::new();
    for w in &writes {
        if seen.contains(&w.image) {
            continue;
        }
        seen.push(w.image.clone());
        // Asked without opening: closing a block device opened for writing
        // makes udev probe it again.
        if let Err(e) = nix::unistd::access(&w.image, nix::unistd::AccessFlags::W_OK) {
            blockers.push(format!(
                "{} cannot be opened for writing: {}",
                w.image.display(),
                std::io::Error::from(e)
            ));
        }
    }
    blockers.extend(in_use(layout, id, opts.pve_root.as_deref()));

    let mut plan = Plan {
        volume: volume.name.clone(),
        fs_type: ext.status().fs_type,
        link: analysis.link.clone(),
        ino,
        storage,
        old_target: analysis.target.clone(),
        new_target,
        analysis,
        reasons,
        guess,
        warnings,
        changes: changes.into_iter().map(|c| c.change).collect(),
        writes,
        blockers,
    };
    let description = plan.description();
    for w in &mut plan.writes {
        w.description = description.clone();
    }
    Ok(plan)
}

/// Apply a plan: check again that nothing stops it (the image may have been
/// opened by a VM since), write each image's ranges with an undo record
/// ([`undo::apply`]), then read the link back. Returns the undo files, one
/// per image written. If a later image fails, the earlier ones are undone.
pub fn apply(
    layout: &Layout,
    id: VolumeId,
    plan: &Plan,
    undo_dir: &Path,
    opts: &Options,
) -> Result<Vec<PathBuf>> {
    if !plan.blockers.is_empty() {
        return Err(Error::Refused(format!(
            "{}; nothing was written",
            plan.blockers.join("; ")
        )));
    }
    if plan.writes.is_empty() {
        return Err(Error::Refused("nothing to write".into()));
    }
    let again = in_use(layout, id, opts.pve_root.as_deref());
    if !again.is_empty() {
        return Err(Error::Refused(format!(
            "{}; nothing was written",
            again.join("; ")
        )));
    }
    let mut done: Vec<PathBuf> = Vec::new();
    for w in &plan.writes {
        match undo::apply(w, undo_dir) {
            Ok(p) => done.push(p),
            Err(e) => {
                let mut msg = e.to_string();
                for p in done.iter().rev() {
                    match undo::load_record(p).and_then(|r| undo::undo_bytes(&r)) {
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
    // Read the link back through a fresh reader.
    let undo_hint = done
        .iter()
        .map(|p| format!("vmrescue undo {}", p.display()))
        .collect::<Vec<_>>()
        .join(" and ");
    // The filesystem changed under any view opened before: the caller
    // tells its engine to forget it ([`crate::engine::VolumeOpener::forget`]).
    let ext = Ext::open(layout.open_volume(id), &FsOptions { no_journal: true })?;
    let back = ext.read_link(NodeId(u64::from(plan.ino)))?;
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

/// Why the disks under volume `id` must not be written now: in use on this
/// host, or belonging to a Proxmox guest that runs.
pub fn in_use(layout: &Layout, id: VolumeId, pve_root: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    let paths: Vec<PathBuf> = layout
        .volume(id)
        .mapping
        .disks()
        .iter()
        .filter_map(|d| layout.disks.get(d.0).map(|d| d.path.clone()))
        .collect();
    for p in &paths {
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
    out
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

/// A changed volume range with its old and new bytes.
struct Rewrite {
    change: Change,
    old: Vec<u8>,
    new: Vec<u8>,
}

/// The current time.
fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nsec: d.subsec_nanos(),
    }
}

/// A time as ext stores it: the low 32 bits of the seconds (read back as
/// signed), and the `_extra` word: two epoch bits (the seconds' bits 32 and
/// 33, after the sign extension of the low word) and the nanoseconds << 2.
fn encode_time(t: Timestamp) -> (u32, u32) {
    let lo = t.sec as i32;
    let epoch = ((t.sec - i64::from(lo)) >> 32) as u32 & 3;
    (lo as u32, epoch | (t.nsec.min(999_999_999) << 2))
}

/// Whether a raw inode has room for the field at `off` (4 bytes) in its extra part.
fn has_extra(raw: &[u8], off: usize) -> bool {
    let extra = usize::from(crate::io::le::u16(raw, 0x80).unwrap_or(0));
    raw.len() > EXT4_GOOD_OLD_INODE_SIZE && off + 4 <= EXT4_GOOD_OLD_INODE_SIZE + extra
}

fn put_u32(raw: &mut [u8], off: usize, v: u32) {
    raw[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The new inode bytes and data block bytes for the new target.
fn rewrite(
    ext: &Ext,
    src: &dyn ReadAt,
    inode: &Inode,
    a: &Analysis,
    target: &[u8],
    now: Timestamp,
) -> Result<(Storage, Vec<Rewrite>)> {
    let ino = inode.ino;
    let bs = ext.block_size();
    let link = escape(&a.link);
    let len = target.len();
    if inode.has_flag(inode::flags::ENCRYPT) {
        return Err(Error::Refused(format!(
            "{link} is encrypted (ext4 encryption): vmrescue cannot write its target; use {KERNEL_ENGINE}"
        )));
    }
    if inode.has_flag(inode::flags::EA_INODE) {
        return Err(Error::Refused(format!(
            "inode {ino} ({link}) is marked as an extended-attribute inode: not an ordinary symlink; run e2fsck"
        )));
    }
    let old_size = inode.i_size;
    let mut raw = inode.raw.clone();
    let mut fields = vec!["i_size".to_string()];
    let mut data: Option<Rewrite> = None;
    let storage = if inode.has_flag(inode::flags::INLINE_DATA) {
        let (value_at, hash_at) = inline_value(inode, old_size)?;
        if len as u64 != old_size {
            return Err(Error::Refused(format!(
                "{link} is an inline-data symlink of {old_size} bytes: vmrescue rewrites those only with a target of the same length (this one has {len}), since a different length means resizing its system.data attribute; use {KERNEL_ENGINE}"
            )));
        }
        raw[I_BLOCK..I_BLOCK + I_BLOCK_LEN].copy_from_slice(&target[..I_BLOCK_LEN]);
        let rest = &target[I_BLOCK_LEN..];
        raw[value_at..value_at + rest.len()].copy_from_slice(rest);
        fields.push("i_block".into());
        fields.push("system.data".into());
        if let Some(h) = hash_at {
            let stored = crate::io::le::u32(&raw, h).unwrap_or(0);
            if stored != 0 {
                let hash = xattr_hash(b"data", rest);
                put_u32(&mut raw, h, hash);
                fields.push("e_hash".into());
            }
        }
        Storage::Inline
    } else if ext.is_fast_symlink(inode) {
        if inode.has_flag(inode::flags::EXTENTS) {
            return Err(Error::Refused(format!(
                "{link}: a fast symlink with the EXTENTS flag is not something vmrescue rewrites (e2fsck calls it invalid); run e2fsck first"
            )));
        }
        if len >= I_BLOCK_LEN {
            return Err(Error::Refused(format!(
                "{link} is a fast symlink: its target lives in the inode, which holds at most {} bytes, and {} has {len}. Making it a slow symlink needs a data block allocated (bitmaps, counters), which vmrescue does not do in place; choose a shorter target (relative, in the same directory), or use {KERNEL_ENGINE}",
                I_BLOCK_LEN - 1,
                escape(target)
            )));
        }
        let mut iblock = [0u8; I_BLOCK_LEN];
        iblock[..len].copy_from_slice(target);
        raw[I_BLOCK..I_BLOCK + I_BLOCK_LEN].copy_from_slice(&iblock);
        fields.push("i_block".into());
        Storage::Fast
    } else {
        let max = (bs as usize - 1).min(MAX_TARGET);
        if len < I_BLOCK_LEN {
            return Err(Error::Refused(format!(
                "{link} is a slow symlink (its target lives in a data block), and a target of {len} bytes would be read as a fast one (under {I_BLOCK_LEN} bytes); turning it into one frees a block (bitmaps, counters), which vmrescue does not do in place; use {KERNEL_ENGINE}"
            )));
        }
        if len > max {
            return Err(Error::Refused(format!(
                "{link}: a target of {len} bytes does not fit its data block ({bs} bytes, so at most {max})"
            )));
        }
        if old_size >= bs {
            return Err(Error::corrupt(
                "ext symlink",
                inode.pos,
                format!("inode {ino}: i_size {old_size} is not below the block size {bs}"),
            ));
        }
        let run = ext.map_block(inode, 0)?;
        let RunKind::Data(block) = run.kind else {
            return Err(Error::corrupt(
                "ext symlink",
                inode.pos,
                format!("inode {ino}: the slow symlink's first block is not allocated"),
            ));
        };
        // The new target and its NUL, and zeros over the rest of the old one.
        let span = (old_size as usize).max(len) + 1;
        let pos = block.checked_mul(bs).ok_or_else(|| {
            Error::corrupt("ext symlink", inode.pos, "data block number overflows")
        })?;
        let mut old = vec![0u8; span];
        read_volume(src, pos, &mut old)?;
        if old[..old_size as usize] != a.target[..] && !a.target.is_empty() {
            return Err(Error::Invalid(format!(
                "{link}: its data block does not hold the target that was read; the image may be changing"
            )));
        }
        let mut new = vec![0u8; span];
        new[..len].copy_from_slice(target);
        data = Some(Rewrite {
            change: Change {
                what: format!("data block {block} of inode {ino}"),
                volume_offset: pos,
                len: span,
                fields: "the target, then zeros".into(),
            },
            old,
            new,
        });
        Storage::Slow {
            block,
            extents: inode.has_flag(inode::flags::EXTENTS),
        }
    };
    put_u32(&mut raw, I_SIZE_LO, len as u32);
    put_u32(&mut raw, I_SIZE_HIGH, 0);
    let (ctime, ctime_extra) = encode_time(now);
    put_u32(&mut raw, I_CTIME, ctime);
    fields.push("ctime".into());
    if has_extra(&raw, I_CTIME_EXTRA) {
        put_u32(&mut raw, I_CTIME_EXTRA, ctime_extra);
    }
    if ext.superblock().has_metadata_csum() {
        let c = inode::inode_checksum(ext.csum_seed(), ino, &raw);
        inode::set_inode_checksum(&mut raw, c);
        fields.push("checksum".into());
    }
    let mut out = vec![Rewrite {
        change: Change {
            what: format!("inode {ino}"),
            volume_offset: inode.pos,
            len: raw.len(),
            fields: fields.join(", "),
        },
        old: inode.raw.clone(),
        new: raw,
    }];
    out.extend(data);
    Ok((storage, out))
}

/// Where the `system.data` value of an inline-data inode starts in its raw
/// bytes, and where the entry's `e_hash` is; the value must hold exactly
/// `size - 60` bytes.
fn inline_value(inode: &Inode, size: u64) -> Result<(usize, Option<usize>)> {
    const S: &str = "ext in-inode xattrs";
    let raw = &inode.raw;
    let refuse = |why: &str| {
        Error::Refused(format!(
            "inode {}: an inline-data symlink whose {why}; use {KERNEL_ENGINE}",
            inode.ino
        ))
    };
    let Some(start) = inode.ibody_xattr_start() else {
        return Err(refuse("inode has no room for in-inode attributes"));
    };
    if crate::io::le::u32(raw, start) != Some(0xEA02_0000) {
        return Err(refuse("in-inode attributes are missing"));
    }
    let first = start + 4;
    let mut off = first;
    // Each entry takes at least 16 bytes: the loop ends within the inode.
    while off + 16 <= raw.len() {
        if crate::io::le::u32(raw, off) == Some(0) {
            break;
        }
        let name_len = usize::from(raw[off]);
        let index = raw[off + 1];
        let value_offs = usize::from(crate::io::le::u16(raw, off + 2).unwrap_or(0));
        let value_inum = crate::io::le::u32(raw, off + 4).unwrap_or(0);
        let value_size = crate::io::le::u32(raw, off + 8).unwrap_or(0) as usize;
        let name_end = off + 16 + name_len;
        if name_end > raw.len() {
            return Err(Error::corrupt(
                S,
                inode.pos + off as u64,
                "an entry's name runs past the inode",
            ));
        }
        if index == 7 && &raw[off + 16..name_end] == b"data" {
            if value_inum != 0 {
                return Err(refuse("system.data value lives in its own inode"));
            }
            let at = first + value_offs;
            if value_size as u64 + I_BLOCK_LEN as u64 != size {
                return Err(refuse(
                    "size does not match its system.data attribute (run e2fsck)",
                ));
            }
            if at.checked_add(value_size).is_none_or(|e| e > raw.len()) {
                return Err(Error::corrupt(
                    S,
                    inode.pos + off as u64,
                    "the system.data value runs past the inode",
                ));
            }
            return Ok((at, Some(off + 12)));
        }
        off = (name_end + 3) & !3;
    }
    Err(refuse("system.data attribute is not in the inode"))
}

/// The hash of an xattr entry (name, then the value in little-endian words,
/// zero-padded), as e2fsprogs and the kernel compute it.
fn xattr_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 5) ^ (h >> 27) ^ u32::from(c);
    }
    for chunk in value.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes(w);
    }
    h
}

/// Read volume bytes through the filesystem's source.
fn read_volume(src: &dyn ReadAt, pos: u64, buf: &mut [u8]) -> Result<()> {
    src.read_exact_at(pos, buf)
        .map_err(|e| Error::io(format!("volume bytes at {pos}"), e))
}

/// Turn volume ranges into image-file writes (split where the mapping
/// splits), one [`WritePlan`] per image; the old bytes are read from the
/// image files themselves and must equal what the filesystem showed.
fn image_writes(
    layout: &Layout,
    id: VolumeId,
    rewrites: &[Rewrite],
    a: &Analysis,
) -> std::result::Result<Vec<WritePlan>, String> {
    let volume = layout.volume(id);
    let mut per_disk: Vec<(DiskId, Vec<ByteWrite>)> = Vec::new();
    for rw in rewrites {
        let mut done = 0usize;
        // Each step covers at least one byte: at most `len` steps.
        while done < rw.old.len() {
            let at = rw.change.volume_offset + done as u64;
            let loc = volume
                .mapping
                .locate(at)
                .map_err(|e| format!("byte {at} of {} cannot be written: {e}", volume.name))?
                .ok_or_else(|| {
                    format!(
                        "byte {at} of {} lies in a zero segment: there is nothing to write to",
                        volume.name
                    )
                })?;
            let n = (loc.len.min((rw.old.len() - done) as u64) as usize).max(1);
            let disk = layout.disks.get(loc.area.disk.0).ok_or_else(|| {
                format!(
                    "the mapping names disk {} which is not open",
                    loc.area.disk.0
                )
            })?;
            match disk.format {
                ImageFormat::Raw | ImageFormat::BlockDevice => {}
                ImageFormat::Qcow2 => {
                    return Err(format!(
                        "{} is a qcow2 image: the volume's bytes are not stored plainly in the file, \
                         so vmrescue cannot write them in place; convert it to raw \
                         (`qemu-img convert -O raw`) and repair that, or use the kernel engine with \
                         qemu-nbd",
                        disk.path.display()
                    ));
                }
            }
            let old = rw.old[done..done + n].to_vec();
            let mut on_disk = vec![0u8; n];
            File::open(&disk.path)
                .and_then(|f| f.read_exact_at(&mut on_disk, loc.area.offset))
                .map_err(|e| format!("{}: {e}", disk.path.display()))?;
            if on_disk != old {
                return Err(format!(
                    "the bytes of {} at image byte {} differ from what the filesystem showed for {}: \
                     the image may be changing; nothing will be written",
                    disk.path.display(),
                    loc.area.offset,
                    escape(&a.link)
                ));
            }
            let w = ByteWrite {
                offset: loc.area.offset,
                old,
                new: rw.new[done..done + n].to_vec(),
            };
            match per_disk.iter_mut().find(|(d, _)| *d == loc.area.disk) {
                Some((_, v)) => v.push(w),
                None => per_disk.push((loc.area.disk, vec![w])),
            }
            done += n;
        }
    }
    Ok(per_disk
        .into_iter()
        .map(|(d, writes)| WritePlan {
            image: layout.disks[d.0].path.clone(),
            description: String::new(),
            // Only ranges that change are written.
            writes: writes.into_iter().filter(|w| w.old != w.new).collect(),
        })
        .filter(|p| !p.writes.is_empty())
        .collect())
}

/// The plan as text, for the CLI and the TUI.
pub fn render(plan: &Plan, undo_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "{} on {} ({}), inode {}: {}",
        escape(&plan.link),
        plan.volume,
        plan.fs_type,
        plan.ino,
        plan.storage.describe()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_hash_matches_e2fsprogs() {
        // Name only: e2fsprogs' ext2fs_ext_attr_hash_entry over "data".
        let mut h: u32 = 0;
        for c in b"data" {
            h = (h << 5) ^ (h >> 27) ^ u32::from(*c);
        }
        assert_eq!(xattr_hash(b"data", b""), h);
        // A partial last word is zero-padded.
        assert_eq!(
            xattr_hash(b"", b"ab"),
            u32::from_le_bytes([b'a', b'b', 0, 0])
        );
    }

    #[test]
    fn times_encode_as_the_reader_decodes_them() {
        for (sec, nsec) in [
            (0i64, 0u32),
            (1_795_638_129, 123_456_789),
            (-1, 5),
            (i64::from(i32::MAX) + 1, 999_999_999),
            (3 * (1i64 << 32) - 10, 1),
        ] {
            let (lo, extra) = encode_time(Timestamp { sec, nsec });
            // As the ext reader (and the kernel) decode them.
            let back = i64::from(lo as i32) + (i64::from(extra & 3) << 32);
            assert_eq!(back, sec, "{sec}");
            assert_eq!(extra >> 2, nsec);
        }
    }

    #[test]
    fn target_text_rules() {
        assert!(check_target_text(b"").is_err());
        assert!(check_target_text(b"a\0b").is_err());
        assert!(check_target_text(&[b'a'; 4096]).is_err());
        assert!(check_target_text(&[b'a'; 4095]).is_ok());
    }
}
