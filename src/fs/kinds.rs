//! The filesystem table: one row per filesystem kind, saying who can read
//! it, how the kernel mounts it and whether a repair can write it.
//!
//! Rows are keyed by the name the content probe gives
//! ([`crate::layers::ContentKind::name`], blkid's `TYPE`). The engines
//! ([`crate::engine::Engines::decide`], the kernel's mount options) and the
//! repair checks read this table and nothing else, so a new filesystem is
//! one row here plus its reader's folder under `fs/`.

use std::sync::Arc;

use super::{FsOptions, FsView};
use crate::error::Result;
use crate::io::ReadAt;

/// vmrescue's own reader: opens the filesystem in `src`; `journals` are the
/// volumes that hold an external journal (ext3/4 journal devices), or the
/// other volumes of a multi-device filesystem (btrfs).
pub type Reader = fn(
    src: Arc<dyn ReadAt>,
    opts: &FsOptions,
    journals: &[Arc<dyn ReadAt>],
) -> Result<Arc<dyn FsView>>;

/// How the kernel engine mounts a kind (always with `nosuid,nodev,noexec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount {
    /// The kernel's filesystem type (`mount -t`).
    pub fstype: &'static str,
    /// Options of a read-only mount (besides `ro`): nothing is replayed or written.
    pub ro_data: &'static str,
    /// Options of a read-write mount, for a repair (the kernel replays the
    /// journal, as it would at boot).
    pub rw_data: &'static str,
}

/// One filesystem kind.
#[derive(Debug, Clone, Copy)]
pub struct FsKind {
    /// The name the probe gives it (`ext4`, `xfs`).
    pub name: &'static str,
    /// vmrescue's own reader (the userspace engine), if it has one.
    pub reader: Option<Reader>,
    /// Whether the reader replays a journal in memory unless
    /// [`FsOptions::no_journal`] (so a `no_journal` view differs).
    pub replays_journal: bool,
    /// How the kernel engine mounts it, if it does.
    pub mount: Option<Mount>,
    /// Whether `relink` writes a symlink in place with vmrescue's own writer
    /// (the userspace engine; `fs/ext/write.rs`, `fs/xfs/write.rs`).
    pub relink_in_place: bool,
    /// Why `relink` does not write this kind in place, when there is more to
    /// say than "not ext or XFS".
    pub in_place_refusal: Option<&'static str>,
    /// Whether `relink` can replace a symlink through a read-write kernel mount.
    pub relink_kernel: bool,
}

fn open_ext(
    src: Arc<dyn ReadAt>,
    opts: &FsOptions,
    journals: &[Arc<dyn ReadAt>],
) -> Result<Arc<dyn FsView>> {
    Ok(Arc::new(super::ext::Ext::open_with_journal_devices(
        src, opts, journals,
    )?))
}

fn open_xfs(
    src: Arc<dyn ReadAt>,
    opts: &FsOptions,
    _journals: &[Arc<dyn ReadAt>],
) -> Result<Arc<dyn FsView>> {
    Ok(Arc::new(super::xfs::Xfs::open_with(src, opts)?))
}

fn open_fat(
    src: Arc<dyn ReadAt>,
    _opts: &FsOptions,
    _journals: &[Arc<dyn ReadAt>],
) -> Result<Arc<dyn FsView>> {
    Ok(Arc::new(super::fat::Fat::open(src)?))
}

fn open_ntfs(
    src: Arc<dyn ReadAt>,
    _opts: &FsOptions,
    _journals: &[Arc<dyn ReadAt>],
) -> Result<Arc<dyn FsView>> {
    Ok(Arc::new(super::ntfs::NtfsVolume::open(src)?))
}

/// btrfs: `devices` are the other volumes holding the same filesystem.
fn open_btrfs(
    src: Arc<dyn ReadAt>,
    opts: &FsOptions,
    devices: &[Arc<dyn ReadAt>],
) -> Result<Arc<dyn FsView>> {
    Ok(Arc::new(super::btrfs::Btrfs::open_devices(
        src, devices, opts,
    )?))
}

const fn kernel_only(
    name: &'static str,
    fstype: &'static str,
    ro_data: &'static str,
    writable: bool,
) -> FsKind {
    FsKind {
        name,
        reader: None,
        replays_journal: false,
        mount: Some(Mount {
            fstype,
            ro_data,
            rw_data: "",
        }),
        relink_in_place: false,
        in_place_refusal: None,
        relink_kernel: writable,
    }
}

const fn ext(name: &'static str, ro_data: &'static str) -> FsKind {
    FsKind {
        name,
        reader: Some(open_ext),
        replays_journal: true,
        mount: Some(Mount {
            fstype: name,
            ro_data,
            rw_data: "",
        }),
        relink_in_place: true,
        in_place_refusal: None,
        relink_kernel: true,
    }
}

/// Why a btrfs link is not patched in place.
pub const BTRFS_COPY_ON_WRITE: &str = "btrfs is copy-on-write: a change is written to new blocks and \
     referenced from checksummed trees up to the superblock, so patching a link's bytes in place \
     would be unsafe";

/// Why an NTFS link is not patched in place.
pub const NTFS_NOT_WRITTEN: &str = "vmrescue reads NTFS but has no NTFS writer (a link there is \
     a reparse point, or an Interix link file as ntfs-3g makes it)";

/// Every filesystem kind vmrescue knows what to do with.
pub static KINDS: &[FsKind] = &[
    ext("ext2", ""),
    // The journal is neither replayed nor written.
    ext("ext3", "noload"),
    ext("ext4", "noload"),
    FsKind {
        name: "xfs",
        reader: Some(open_xfs),
        replays_journal: true,
        // A guest cloned from the same template as another mounted
        // filesystem shares its UUID, which XFS otherwise refuses.
        mount: Some(Mount {
            fstype: "xfs",
            ro_data: "norecovery,nouuid",
            rw_data: "nouuid",
        }),
        // Inline (local-format) symlinks only: `fs/xfs/write.rs`.
        relink_in_place: true,
        in_place_refusal: None,
        relink_kernel: true,
    },
    FsKind {
        name: "btrfs",
        reader: Some(open_btrfs),
        // The log tree is replayed in memory by the userspace reader
        // (`fs/btrfs/log.rs`); the kernel engine mounts with nologreplay.
        replays_journal: true,
        mount: Some(Mount {
            fstype: "btrfs",
            ro_data: "rescue=nologreplay",
            rw_data: "",
        }),
        relink_in_place: false,
        in_place_refusal: Some(BTRFS_COPY_ON_WRITE),
        relink_kernel: true,
    },
    FsKind {
        name: "vfat",
        reader: Some(open_fat),
        replays_journal: false,
        mount: Some(Mount {
            fstype: "vfat",
            ro_data: "",
            rw_data: "",
        }),
        // FAT has no symbolic links to repair.
        relink_in_place: false,
        in_place_refusal: Some("FAT has no symbolic links"),
        relink_kernel: false,
    },
    kernel_only("exfat", "exfat", "", true),
    FsKind {
        name: "ntfs",
        reader: Some(open_ntfs),
        replays_journal: false,
        mount: Some(Mount {
            fstype: "ntfs3",
            ro_data: "",
            rw_data: "",
        }),
        relink_in_place: false,
        in_place_refusal: Some(NTFS_NOT_WRITTEN),
        relink_kernel: true,
    },
    // Read-only by design: no read-write mount for a repair.
    kernel_only("iso9660", "iso9660", "", false),
    kernel_only("squashfs", "squashfs", "", false),
];

/// The row of the kind the probe names `name`, if it is a filesystem.
pub fn by_probe_name(name: &str) -> Option<&'static FsKind> {
    KINDS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(
                KINDS[..i].iter().all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
        }
    }

    #[test]
    fn the_kernel_mounts_what_it_writes() {
        for k in KINDS {
            assert!(!k.relink_kernel || k.mount.is_some(), "{}", k.name);
            assert!(!k.relink_in_place || k.reader.is_some(), "{}", k.name);
        }
    }
}
