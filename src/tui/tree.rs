//! What the right pane browses: the guest as it boots, or one volume.

use std::sync::Arc;

use crate::engine::VolumeOpener;
use crate::error::Error;
use crate::fs::FsView;
use crate::guest::Namespace;
use crate::layers::{Layout, VolumeId};

/// A tree of files the right pane can show.
///
/// The guest tree is the guest's root filesystem with every volume its
/// `/etc/fstab` mounts at its mountpoint, as the guest sees it when it has
/// booted; a volume tree is one volume with its own paths (what
/// `--volume` picks on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tree {
    /// A guest as it boots, by its root volume: its volumes mounted where
    /// its fstab says (a host disk has the host and each nested guest).
    Guest(VolumeId),
    /// One volume on its own.
    Volume(VolumeId),
    /// One btrfs subvolume of a volume on its own, by its id.
    Subvolume(VolumeId, u64),
}

impl Tree {
    /// The volume, for a volume or subvolume tree.
    pub fn volume(self) -> Option<VolumeId> {
        match self {
            Tree::Guest(_) => None,
            Tree::Volume(v) | Tree::Subvolume(v, _) => Some(v),
        }
    }

    /// Whether this is a guest as it boots.
    pub fn is_guest(self) -> bool {
        matches!(self, Tree::Guest(_))
    }
}

impl std::fmt::Display for Tree {
    /// `guest`, or the volume's index (as effects are logged in tests).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tree::Guest(_) => f.write_str("guest"),
            Tree::Volume(v) => write!(f, "{}", v.0),
            Tree::Subvolume(v, id) => write!(f, "{}@{id}", v.0),
        }
    }
}

/// A tree opened by a job.
#[derive(Clone)]
pub struct Opened {
    /// Its files.
    pub fs: Arc<dyn FsView>,
    /// The guest's mount table, for the guest's tree.
    pub guest: Option<Arc<Namespace>>,
}

impl Opened {
    /// A volume's filesystem.
    pub fn volume(fs: Arc<dyn FsView>) -> Opened {
        Opened { fs, guest: None }
    }

    /// A guest's tree: its root `root` with every volume its fstab mounts,
    /// each opened through `opener`.
    pub fn guest(
        layout: &Layout,
        root: VolumeId,
        opener: &dyn VolumeOpener,
    ) -> Result<Opened, String> {
        let open = |id: VolumeId| opener.open(layout, id).map_err(Error::Unsupported);
        let ns = Arc::new(Namespace::build(layout, root, &open));
        Ok(Opened {
            fs: ns.fs(),
            guest: Some(ns),
        })
    }
}
