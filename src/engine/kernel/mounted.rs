//! A filesystem the kernel engine mounted, as an [`FsView`]: the shared
//! host-directory view ([`HostFs`]: nothing followed on the host, symlinks
//! resolved inside the guest) plus the session that keeps the mount, the
//! dm device and the loop devices alive as long as the view is in use.

use std::path::Path;
use std::sync::Arc;

use super::Session;
use crate::error::Result;
use crate::fs::host::HostFs;
use crate::fs::{DirEntry, FileExtent, FsStatus, FsView, Metadata, NodeId, Xattr};
use crate::io::HostExtent;

/// A kernel mount browsed through [`HostFs`].
pub(super) struct MountedFs {
    fs: HostFs,
    _session: Arc<Session>,
}

impl MountedFs {
    /// The filesystem mounted at `dir` by `session`.
    pub(super) fn new(dir: &Path, status: FsStatus, session: Arc<Session>) -> Result<MountedFs> {
        Ok(MountedFs {
            fs: HostFs::with_status(dir, status)?,
            _session: session,
        })
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
        self.fs.root()
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
}
