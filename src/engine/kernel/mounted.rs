//! A filesystem the kernel engine mounted, as an [`FsView`]: the shared
//! host-directory view ([`HostFs`]: nothing followed on the host, symlinks
//! resolved inside the guest) plus the session that keeps the mount, the
//! dm device and the loop devices alive as long as the view is in use.
//!
//! A btrfs volume whose subvolumes our reader listed is mounted at its top
//! level and shown from its default subvolume; `subvol=`/`subvolid=` name
//! the others by their paths in it.

use std::path::Path;
use std::sync::Arc;

use super::Session;
use crate::error::Error;
use crate::error::Result;
use crate::fs::btrfs::SubvolInfo;
use crate::fs::host::HostFs;
use crate::fs::{DirEntry, FileExtent, FsStatus, FsView, Metadata, NodeId, SubvolSpec, Xattr};
use crate::io::HostExtent;

/// A kernel mount browsed through [`HostFs`].
pub(super) struct MountedFs {
    fs: HostFs,
    /// The node shown as `/` (the default subvolume of a btrfs top level).
    root: NodeId,
    /// A btrfs volume's subvolumes, when the top level is mounted.
    subvols: Option<Vec<SubvolInfo>>,
    _session: Arc<Session>,
}

/// `p` without empty components (`/@home/` → `@home`).
fn trim(p: &[u8]) -> Vec<u8> {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(&b'/')
}

impl MountedFs {
    /// The filesystem mounted at `dir` by `session`.
    /// With `subvols`, `dir` holds a btrfs top level, shown from its
    /// default subvolume.
    pub(super) fn new(
        dir: &Path,
        status: FsStatus,
        session: Arc<Session>,
        subvols: Option<Vec<SubvolInfo>>,
    ) -> Result<MountedFs> {
        let fs = HostFs::with_status(dir, status)?;
        let root = fs.root();
        let mut m = MountedFs {
            fs,
            root,
            subvols,
            _session: session,
        };
        if let Some(d) = m
            .subvols
            .as_ref()
            .and_then(|s| s.iter().find(|s| s.default))
            .map(|s| s.path.clone())
        {
            m.root = m.at_path(&d)?;
        }
        Ok(m)
    }

    /// The node at `p` (from the top level), following no link.
    fn at_path(&self, p: &[u8]) -> Result<NodeId> {
        let mut node = self.fs.root();
        for c in p.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            node = self.fs.lookup(node, c)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "btrfs subvolume {} in the kernel's mount",
                    crate::text::escape(p)
                ))
            })?;
        }
        Ok(node)
    }

    /// Close the view's descriptors into the mount ([`HostFs::close`]): the
    /// session does this before it unmounts, so a view still held by the
    /// interface or a job never keeps the mount busy.
    pub(super) fn close(&self) {
        self.fs.close();
    }
}

impl FsView for MountedFs {
    fn status(&self) -> FsStatus {
        self.fs.status()
    }
    fn root(&self) -> NodeId {
        self.root
    }
    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        self.fs.metadata(node)
    }
    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        self.fs.read_dir(dir)
    }
    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        self.fs.lookup(dir, name)
    }
    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        self.fs.read_link(node)
    }
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.fs.read_at(node, offset, buf)
    }
    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        self.fs.extents(node)
    }
    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        self.fs.xattrs(node)
    }
    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        self.fs.host_extent(node, offset, len)
    }
    fn subvolumes(&self) -> Option<Vec<SubvolInfo>> {
        self.subvols.clone()
    }
    fn subvolume_root(&self, spec: &SubvolSpec) -> Result<Option<NodeId>> {
        let Some(subs) = &self.subvols else {
            return Ok(None);
        };
        let found = match spec {
            SubvolSpec::Id(id) => subs.iter().find(|s| s.id == *id),
            SubvolSpec::Path(p) => {
                let want = trim(p);
                subs.iter().find(|s| s.path == want)
            }
        };
        let s = found.ok_or_else(|| {
            Error::NotFound(match spec {
                SubvolSpec::Id(id) => format!("btrfs subvolume id {id}"),
                SubvolSpec::Path(p) => format!("btrfs subvolume {}", crate::text::escape(p)),
            })
        })?;
        self.at_path(&s.path).map(Some)
    }
}
