//! The userspace engine: vmrescue's own readers (ext2/3/4, XFS) over the
//! volume's [`crate::io::Mapping`]; no root, nothing mounted.
//!
//! [`Userspace`] keeps the filesystems it opened (inspection opens every
//! one; a command then reuses it instead of reading the superblock, group
//! descriptors and journal again) until they are forgotten after a write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::VolumeOpener;
use crate::error::{Error, Result};
use crate::fs::{FsOptions, FsView};
use crate::layers::{ContentKind, Layout, VolumeId};

/// The userspace engine and the filesystems it has opened, for one layout.
#[derive(Default)]
pub struct Userspace {
    /// Options for [`VolumeOpener::open`].
    pub options: FsOptions,
    opened: Mutex<HashMap<VolumeId, Arc<dyn FsView>>>,
}

impl std::fmt::Debug for Userspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Userspace")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Userspace {
    /// A userspace engine that opens with `options`.
    pub fn new(options: FsOptions) -> Userspace {
        Userspace {
            options,
            opened: Mutex::default(),
        }
    }

    fn opened(&self) -> MutexGuard<'_, HashMap<VolumeId, Arc<dyn FsView>>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open the filesystem of volume `id` of `layout`.
    pub fn open_fs(
        &self,
        layout: &Layout,
        id: VolumeId,
        opts: &FsOptions,
    ) -> Result<Arc<dyn FsView>> {
        let v = layout.volume(id);
        if !super::openable(v) {
            return Err(Error::Invalid(format!(
                "{} holds {}, not a filesystem vmrescue can browse",
                v.name,
                v.content.describe()
            )));
        }
        if let Some(kind) = super::fs_kind(v.content.kind)
            && let Some(reader) = kind.reader
        {
            // The replayed view is shared; `--no-journal` views are not kept.
            let shared = !(opts.no_journal && kind.replays_journal);
            if shared && let Some(fs) = self.opened().get(&id) {
                return Ok(Arc::clone(fs));
            }
            // Journal devices among the volumes, for an external journal.
            let journals: Vec<_> = if v.content.kind == ContentKind::Btrfs {
                btrfs_siblings(layout, id)
                    .into_iter()
                    .map(|s| layout.open_volume(s))
                    .collect()
            } else if kind.replays_journal {
                layout
                    .volumes
                    .iter()
                    .filter(|v| v.content.kind == ContentKind::Jbd)
                    .map(|v| layout.open_volume(v.id))
                    .collect()
            } else {
                Vec::new()
            };
            let fs = reader(layout.open_volume(id), opts, &journals)?;
            if shared {
                self.opened().insert(id, Arc::clone(&fs));
            }
            return Ok(fs);
        }
        Err(Error::Unsupported(format!(
            "{}: reading {} filesystems in userspace",
            v.name,
            v.content.kind.name()
        )))
    }

    /// Forget the opened filesystem of volume `id` (after its bytes were
    /// changed by a repair), so the next open reads it again.
    pub fn forget(&self, id: VolumeId) {
        self.opened().remove(&id);
    }
}

/// The other volumes of `layout` that hold the same btrfs filesystem as
/// volume `id` (the same filesystem UUID): those on a disk `id` is on
/// first, so that of two copies of a device (a cloned disk) the one beside
/// `id` is used.
pub fn btrfs_siblings(layout: &Layout, id: VolumeId) -> Vec<VolumeId> {
    let v = layout.volume(id);
    let Some(uuid) = v.content.uuid.as_deref() else {
        return Vec::new();
    };
    let disks = v.mapping.disks();
    let mut out: Vec<(bool, VolumeId)> = layout
        .volumes
        .iter()
        .filter(|o| {
            o.id != id
                && o.content.kind == ContentKind::Btrfs
                && o.content.uuid.as_deref() == Some(uuid)
                && o.mapping.unreadable().is_empty()
        })
        .map(|o| {
            let near = o.mapping.disks().iter().any(|d| disks.contains(d));
            (!near, o.id)
        })
        .collect();
    out.sort_by_key(|&(far, vid)| (far, vid));
    out.into_iter().map(|(_, vid)| vid).collect()
}

impl VolumeOpener for Userspace {
    fn engine(&self) -> String {
        "userspace".into()
    }
    fn open(&self, layout: &Layout, id: VolumeId) -> std::result::Result<Arc<dyn FsView>, String> {
        self.open_fs(layout, id, &self.options)
            .map_err(|e| e.to_string())
    }
    fn forget(&self, id: VolumeId) {
        Userspace::forget(self, id);
    }
}
