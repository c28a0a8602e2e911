//! Repairs through the kernel engine: the volume is mapped and mounted
//! read-write (the kernel replays the journal, as at boot), the change is
//! made the way a careful administrator would make it, and everything is
//! unmounted and unmapped again right after. A link in a btrfs subvolume
//! that the volume's paths cannot name (outside its default subvolume) is
//! reached through a read-write mount of that subvolume (`subvolid=`), and
//! its undo record names the subvolume.
//!
//! The same live-VM checks as for userspace repairs run first
//! ([`check_not_in_use`]).

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use super::Session;
use crate::error::{Error, Result};
use crate::fs::host::HostFs;
use crate::fs::path;
use crate::layers::{ContentKind, Layout, VolumeId};
use crate::text::escape;

/// Called with a link's canonical guest path and current target before it
/// is changed (to save the undo record first).
pub type BeforeChange<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// What a symlink replacement did: enough for an undo record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkChange {
    /// The link's canonical path in the guest (`/lib64/libc.so.6`).
    pub path: Vec<u8>,
    /// Its target before.
    pub old_target: Vec<u8>,
    /// Its target now.
    pub new_target: Vec<u8>,
    /// Things the operator should know (a busy unmount...).
    pub notes: Vec<String>,
}

/// The live-VM checks of every repair ([`crate::pve::is_image_in_use`]:
/// QEMU's image locks, writers and QEMU processes holding the file, a
/// read-write loop device or a host mount) for every disk volume `id` lives
/// on, and those of the other devices of a multi-device btrfs.
pub fn check_not_in_use(layout: &Layout, id: VolumeId) -> Result<()> {
    let mut disks = layout.volume(id).mapping.disks();
    for m in super::btrfs_members(layout, id) {
        for d in layout.volume(m).mapping.disks() {
            if !disks.contains(&d) {
                disks.push(d);
            }
        }
    }
    for d in disks {
        if let Some(disk) = layout.disks.get(d.0)
            && let Some(why) = crate::pve::is_image_in_use(disk.host_path("the in-use check")?)?
        {
            return Err(Error::Refused(format!(
                "{} is in use ({why}): stop the VM first",
                disk.origin
            )));
        }
    }
    Ok(())
}

/// Replace symlink `link` (a guest path) on volume `id` so it points at
/// `new_target`: read-write mount (of btrfs subvolume `subvolume` when
/// given, `link` then being its path inside that subvolume; else of the
/// volume's default subvolume), a new symlink under a temporary name in
/// the same directory with the old one's owner, `renameat` over the old
/// one, fsync of the directory, read back, unmount. Returns the old target.
/// With `expect`, the link must point there now (an undo checks that the
/// link still holds what vmrescue wrote), else nothing is changed.
/// `before` is called with the link's canonical guest path and its current
/// target once they are known and before anything changes (to save the
/// undo record first); an error from it stops the repair.
#[allow(clippy::too_many_arguments)]
pub fn replace_symlink(
    session: &Arc<Session>,
    layout: &Layout,
    id: VolumeId,
    subvolume: Option<u64>,
    link: &[u8],
    new_target: &[u8],
    expect: Option<&[u8]>,
    before: BeforeChange<'_>,
) -> Result<SymlinkChange> {
    if new_target.is_empty() || new_target.contains(&0) || new_target.len() >= path::MAX_PATH {
        return Err(Error::Invalid(format!(
            "{:?} is not a usable symlink target",
            escape(new_target)
        )));
    }
    let (parent, name) = path::split_last(link);
    let name = name.ok_or_else(|| Error::Invalid(format!("{}: not a link path", escape(link))))?;
    if !path::is_safe_name(&name) {
        return Err(Error::Invalid(format!(
            "{}: not a usable name",
            escape(&name)
        )));
    }
    check_not_in_use(layout, id)?;
    let vol = layout.volume(id).name.clone();
    // Never have the same volume mapped twice: drop a read-only mapping first.
    let mut notes = session.release(&vol, false);
    // A read-write mount left from before would hold other options.
    notes.extend(session.release(&vol, true));
    let dir = match subvolume {
        Some(sub) => {
            if layout.volume(id).content.kind != ContentKind::Btrfs {
                return Err(Error::Invalid(format!(
                    "{vol} is no btrfs volume: it has no subvolume {sub}"
                )));
            }
            session.mount_with(layout, id, true, &format!("subvolid={sub}"))?
        }
        None => session.mount(layout, id, true)?,
    };
    let result = change_link(
        &dir,
        &parent,
        &name,
        new_target,
        expect,
        before,
        session.id(),
    );
    notes.extend(session.release(&vol, true));
    let (canonical_parent, old_target) = result?;
    Ok(SymlinkChange {
        path: path::join(&canonical_parent, &name),
        old_target,
        new_target: new_target.to_vec(),
        notes,
    })
}

/// Replace symlink `link` of volume `id` so it points at `new_target`
/// ([`replace_symlink`], the link must point at `old_target` now), saving
/// an undo record ([`UndoRecord::Symlink`]) in `undo_dir` once the link's
/// canonical path and current target are known and before it changes.
/// Returns the change and the undo file.
///
/// [`UndoRecord::Symlink`]: crate::repair::undo::UndoRecord::Symlink
#[allow(clippy::too_many_arguments)]
pub fn replace_with_undo(
    session: &Arc<Session>,
    layout: &Layout,
    id: VolumeId,
    subvolume: Option<u64>,
    link: &[u8],
    old_target: &[u8],
    new_target: &[u8],
    undo_dir: &Path,
) -> Result<(SymlinkChange, std::path::PathBuf)> {
    use crate::repair::undo::{self, UndoRecord};
    // Every disk, in order: volume names (`disk1p2`, a VG spanning disks)
    // mean the same thing again when the record is undone.
    // Nested disks (a guest disk in a host LV) are found again by the scan.
    let mut disks = Vec::new();
    for d in layout.disks.iter().filter(|d| d.parent.is_none()) {
        let p = d.host_path("an undo record")?;
        disks.push(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    }
    let mut disks = disks.into_iter();
    let image = disks.next().unwrap_or_default();
    let other_disks: Vec<std::path::PathBuf> = disks.collect();
    let volume = layout.volume(id).name.clone();
    let mut undo_file = None;
    let mut save_undo = |canonical: &[u8], old: &[u8]| -> Result<()> {
        let rec = UndoRecord::Symlink {
            image: image.clone(),
            other_disks: other_disks.clone(),
            volume: volume.clone(),
            subvolume,
            path_hex: undo::hex(canonical),
            old_target_hex: undo::hex(old),
            new_target_hex: undo::hex(new_target),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            description: format!(
                "{}{}: {} -> {} (kernel engine)",
                subvolume
                    .map(|s| format!("btrfs subvolume {s}: "))
                    .unwrap_or_default(),
                escape(canonical),
                escape(old),
                escape(new_target)
            ),
        };
        undo_file = Some(undo::save_record(&rec, undo_dir, "relink")?);
        Ok(())
    };
    let change = replace_symlink(
        session,
        layout,
        id,
        subvolume,
        link,
        new_target,
        Some(old_target),
        &mut save_undo,
    )?;
    let undo_file = undo_file
        .ok_or_else(|| Error::Invalid("the link changed without an undo record".into()))?;
    Ok((change, undo_file))
}

fn change_link(
    mount_dir: &Path,
    parent: &[u8],
    name: &[u8],
    new_target: &[u8],
    expect: Option<&[u8]>,
    before: BeforeChange<'_>,
    session: &str,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let view = HostFs::open(mount_dir)?;
    let resolved = path::resolve(&view, parent, true)?;
    let rel = resolved.path.strip_prefix(b"/").unwrap_or(&resolved.path);
    let host_dir = if rel.is_empty() {
        mount_dir.to_path_buf()
    } else {
        mount_dir.join(OsStr::from_bytes(rel))
    };
    let mount_dev = std::fs::metadata(mount_dir)
        .map_err(|e| Error::io_path(mount_dir, e))?
        .dev();
    let mount_id = mount_id_of(rustix::fs::CWD, mount_dir.as_os_str().as_bytes());
    let dirfd = nix::fcntl::open(
        &host_dir,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(host_dir.display().to_string(), e.into()))?;
    let st = nix::sys::stat::fstat(&dirfd)
        .map_err(|e| Error::io(host_dir.display().to_string(), e.into()))?;
    // A btrfs subvolume has a device number of its own but is the same
    // mount: the mount id tells a subvolume from another filesystem
    // mounted inside (the device number where the kernel has no mount ids).
    let same_mount = match (mount_id, mount_id_of(&dirfd, b"")) {
        (Some(a), Some(b)) => a == b,
        _ => st.st_dev == mount_dev,
    };
    if !same_mount {
        return Err(Error::Refused(format!(
            "{} is not on the mounted volume",
            host_dir.display()
        )));
    }
    let name_os = OsStr::from_bytes(name);
    let shown = escape(&path::join(&resolved.path, name));
    let lst = nix::sys::stat::fstatat(&dirfd, name_os, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io(shown.clone(), e.into()))?;
    if SFlag::from_bits_truncate(lst.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFLNK {
        return Err(Error::Invalid(format!("{shown}: not a symlink")));
    }
    let old = nix::fcntl::readlinkat(&dirfd, name_os)
        .map_err(|e| Error::io(shown.clone(), e.into()))?
        .as_bytes()
        .to_vec();
    if let Some(want) = expect
        && old != want
    {
        return Err(Error::Refused(format!(
            "{shown} points at {:?}, not at {:?}: it changed since, so it is left alone",
            escape(&old),
            escape(want)
        )));
    }
    before(&path::join(&resolved.path, name), &old)?;
    let tmp = format!(".vmrescue-{session}-{}.tmp", std::process::id());
    let tmp_os = OsStr::new(&tmp);
    let _ = nix::unistd::unlinkat(&dirfd, tmp_os, nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::unistd::symlinkat(OsStr::from_bytes(new_target), &dirfd, tmp_os)
        .map_err(|e| Error::io(format!("creating {tmp} beside {shown}"), e.into()))?;
    let done = (|| -> Result<()> {
        nix::unistd::fchownat(
            &dirfd,
            tmp_os,
            Some(nix::unistd::Uid::from_raw(lst.st_uid)),
            Some(nix::unistd::Gid::from_raw(lst.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::io(format!("setting the owner of {tmp}"), e.into()))?;
        nix::fcntl::renameat(&dirfd, tmp_os, &dirfd, name_os)
            .map_err(|e| Error::io(format!("renaming {tmp} over {shown}"), e.into()))?;
        Ok(())
    })();
    if let Err(e) = done {
        let _ = nix::unistd::unlinkat(&dirfd, tmp_os, nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    nix::unistd::fsync(&dirfd)
        .map_err(|e| Error::io(format!("fsync of {}", host_dir.display()), e.into()))?;
    let now =
        nix::fcntl::readlinkat(&dirfd, name_os).map_err(|e| Error::io(shown.clone(), e.into()))?;
    if now.as_bytes() != new_target {
        return Err(Error::Refused(format!(
            "{shown} reads {:?} after the change, not {:?}",
            escape(now.as_bytes()),
            escape(new_target)
        )));
    }
    let _ = dirfd.as_raw_fd();
    Ok((resolved.path, old))
}

/// The id of the mount holding `path` (relative to `dir`; empty: `dir`
/// itself), where the kernel gives it (`statx`, Linux 5.8).
fn mount_id_of<Fd: std::os::fd::AsFd>(dir: Fd, path: &[u8]) -> Option<u64> {
    use rustix::fs::{AtFlags as RAt, StatxFlags};
    let flags = if path.is_empty() {
        RAt::EMPTY_PATH | RAt::SYMLINK_NOFOLLOW
    } else {
        RAt::SYMLINK_NOFOLLOW
    };
    let st = rustix::fs::statx(dir, OsStr::from_bytes(path), flags, StatxFlags::MNT_ID).ok()?;
    (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
}

/// Undo a symlink repair made through the kernel engine: put the old target
/// back, after checking the link still points where vmrescue set it.
pub fn undo(record: &crate::repair::undo::UndoRecord) -> Result<String> {
    use crate::repair::undo::{UndoRecord, unhex};
    let UndoRecord::Symlink {
        image,
        other_disks,
        volume,
        subvolume,
        path_hex,
        old_target_hex,
        new_target_hex,
        ..
    } = record
    else {
        return Err(Error::Invalid("not a kernel-engine symlink record".into()));
    };
    let (link, old, new) = (
        unhex(path_hex)?,
        unhex(old_target_hex)?,
        unhex(new_target_hex)?,
    );
    let mut images = vec![crate::image::open(image)?];
    for d in other_disks {
        images.push(crate::image::open(d)?);
    }
    let layout = crate::layers::scan(images);
    let id = layout.find_volume(volume)?;
    let session = Session::start()?;
    let change = replace_symlink(
        &session,
        &layout,
        id,
        *subvolume,
        &link,
        &old,
        Some(&new),
        &mut |_, _| Ok(()),
    );
    let problems = session.teardown();
    let change = change?;
    let mut msg = format!(
        "{}: {} -> {} (put back)",
        escape(&change.path),
        escape(&change.old_target),
        escape(&change.new_target)
    );
    for p in change.notes.iter().chain(problems.iter()) {
        msg.push_str(&format!("\nnote: {p}"));
    }
    Ok(msg)
}
