//! An in-memory filesystem, for tests and examples.
//!
//! [`MemFs`] holds what no host filesystem can: names containing `/`, an
//! entry named `..`, empty names, directories that contain themselves. Tests
//! of everything above [`FsView`] (copy-out, listings, path resolution) use it
//! to play a hostile guest without crafting an image.

use std::collections::HashMap;

use super::{DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Timestamp, Xattr};
use crate::error::{Error, Result};

/// One node of a [`MemFs`].
#[derive(Debug, Clone)]
pub struct MemNode {
    /// What `metadata` returns (its `node`, `ino` and `nlink` are kept up to date).
    pub meta: Metadata,
    /// Directory entries, in order, names exactly as given.
    pub entries: Vec<(Vec<u8>, NodeId)>,
    /// Symlink target.
    pub target: Vec<u8>,
    /// File data as `(offset, bytes)` ranges, in order; the gaps are holes.
    pub data: Vec<(u64, Vec<u8>)>,
    /// Extended attributes.
    pub xattrs: Vec<Xattr>,
}

/// An in-memory filesystem; build it with the `add_*` methods, then share it.
#[derive(Debug, Clone)]
pub struct MemFs {
    nodes: HashMap<NodeId, MemNode>,
    next: u64,
    /// What `status` returns.
    pub status: FsStatus,
    /// Subvolumes, as btrfs has them: (id, path from the top level, root
    /// directory). None: [`FsView::subvolume_root`] says this filesystem has
    /// none; else the root is the top level (id 5, path `/`).
    pub subvolumes: Vec<(u64, Vec<u8>, NodeId)>,
}

/// The root's node id (inode 2, as on ext2/3/4).
pub const ROOT: NodeId = NodeId(2);

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new()
    }
}

impl MemFs {
    /// An empty filesystem: a root directory (mode 0755, owned by root).
    pub fn new() -> MemFs {
        let mut fs = MemFs {
            nodes: HashMap::new(),
            next: 11,
            status: FsStatus {
                fs_type: "memory".into(),
                ..FsStatus::default()
            },
            subvolumes: Vec::new(),
        };
        let root = fs.node(FileType::Directory, 0o755);
        fs.nodes.insert(ROOT, root);
        if let Some(n) = fs.nodes.get_mut(&ROOT) {
            n.meta.node = ROOT;
            n.meta.ino = ROOT.0;
            n.meta.nlink = 2;
        }
        fs
    }

    fn node(&self, file_type: FileType, perm: u32) -> MemNode {
        let t = Timestamp {
            sec: 1_360_000_000,
            nsec: 0,
        };
        MemNode {
            meta: Metadata {
                node: NodeId(0),
                ino: 0,
                file_type,
                perm,
                uid: 0,
                gid: 0,
                size: 0,
                nlink: 1,
                atime: t,
                mtime: t,
                ctime: t,
                crtime: None,
                rdev: (0, 0),
                allocated: None,
            },
            entries: Vec::new(),
            target: Vec::new(),
            data: Vec::new(),
            xattrs: Vec::new(),
        }
    }

    /// The root directory.
    pub fn root_id(&self) -> NodeId {
        ROOT
    }

    /// Add `node` as `name` in `dir`; returns its id.
    pub fn add(&mut self, dir: NodeId, name: &[u8], mut node: MemNode) -> NodeId {
        let id = NodeId(self.next);
        self.next += 1;
        node.meta.node = id;
        node.meta.ino = id.0;
        if node.meta.file_type == FileType::Directory {
            node.meta.nlink = 2;
            if let Some(parent) = self.nodes.get_mut(&dir) {
                parent.meta.nlink += 1;
            }
        }
        self.nodes.insert(id, node);
        self.link(dir, name, id);
        id
    }

    /// Add an entry `name` in `dir` for the existing `node` (a hard link,
    /// or for a directory, a loop). Names are not checked.
    pub fn link(&mut self, dir: NodeId, name: &[u8], node: NodeId) {
        if let Some(d) = self.nodes.get_mut(&dir) {
            d.entries.push((name.to_vec(), node));
        }
        let count = self.count_links(node);
        if let Some(target) = self.nodes.get_mut(&node)
            && target.meta.file_type != FileType::Directory
        {
            target.meta.nlink = count;
        }
    }

    fn count_links(&self, node: NodeId) -> u64 {
        self.nodes
            .values()
            .flat_map(|n| n.entries.iter())
            .filter(|(_, id)| *id == node)
            .count() as u64
    }

    /// Add a directory.
    pub fn add_dir(&mut self, dir: NodeId, name: &[u8], perm: u32) -> NodeId {
        let n = self.node(FileType::Directory, perm);
        self.add(dir, name, n)
    }

    /// Add a regular file holding `data`.
    pub fn add_file(&mut self, dir: NodeId, name: &[u8], perm: u32, data: &[u8]) -> NodeId {
        self.add_sparse(dir, name, perm, data.len() as u64, &[(0, data)])
    }

    /// Add a regular file of `size` bytes with data at the given offsets and holes elsewhere.
    pub fn add_sparse(
        &mut self,
        dir: NodeId,
        name: &[u8],
        perm: u32,
        size: u64,
        data: &[(u64, &[u8])],
    ) -> NodeId {
        let mut n = self.node(FileType::Regular, perm);
        n.meta.size = size;
        n.data = data
            .iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(o, d)| (*o, d.to_vec()))
            .collect();
        n.meta.allocated = Some(n.data.iter().map(|(_, d)| d.len() as u64).sum());
        self.add(dir, name, n)
    }

    /// Add a symlink to `target`.
    pub fn add_symlink(&mut self, dir: NodeId, name: &[u8], target: &[u8]) -> NodeId {
        let mut n = self.node(FileType::Symlink, 0o777);
        n.meta.size = target.len() as u64;
        n.target = target.to_vec();
        self.add(dir, name, n)
    }

    /// Add a device node, FIFO or socket.
    pub fn add_special(
        &mut self,
        dir: NodeId,
        name: &[u8],
        file_type: FileType,
        perm: u32,
        rdev: (u32, u32),
    ) -> NodeId {
        let mut n = self.node(file_type, perm);
        n.meta.rdev = rdev;
        self.add(dir, name, n)
    }

    /// The node, to change its metadata or xattrs.
    pub fn node_mut(&mut self, node: NodeId) -> Option<&mut MemNode> {
        self.nodes.get_mut(&node)
    }

    fn get(&self, node: NodeId) -> Result<&MemNode> {
        self.nodes
            .get(&node)
            .ok_or_else(|| Error::NotFound(format!("node {}", node.0)))
    }
}

impl FsView for MemFs {
    fn status(&self) -> FsStatus {
        self.status.clone()
    }

    fn subvolume_root(&self, spec: &super::SubvolSpec) -> Result<Option<NodeId>> {
        if self.subvolumes.is_empty() {
            return Ok(None);
        }
        let trim =
            |p: &[u8]| -> Vec<u8> { super::path::components(p).collect::<Vec<_>>().join(&b'/') };
        let found = match spec {
            super::SubvolSpec::Id(5) => Some(ROOT),
            super::SubvolSpec::Id(id) => self.subvolumes.iter().find(|s| s.0 == *id).map(|s| s.2),
            super::SubvolSpec::Path(p) if trim(p).is_empty() => Some(ROOT),
            super::SubvolSpec::Path(p) => self
                .subvolumes
                .iter()
                .find(|s| trim(&s.1) == trim(p))
                .map(|s| s.2),
        };
        found
            .map(Some)
            .ok_or_else(|| Error::NotFound(format!("subvolume {spec:?}")))
    }

    fn root(&self) -> NodeId {
        ROOT
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        Ok(self.get(node)?.meta.clone())
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let d = self.get(dir)?;
        if d.meta.file_type != FileType::Directory {
            return Err(Error::Invalid(format!("node {}: not a directory", dir.0)));
        }
        Ok(d.entries
            .iter()
            .map(|(name, node)| DirEntry {
                name: name.clone(),
                node: *node,
                file_type: self.nodes.get(node).map(|n| n.meta.file_type),
            })
            .collect())
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        let n = self.get(node)?;
        if n.meta.file_type != FileType::Symlink {
            return Err(Error::Invalid(format!("node {}: not a symlink", node.0)));
        }
        Ok(n.target.clone())
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let n = self.get(node)?;
        if n.meta.file_type != FileType::Regular {
            return Err(Error::Invalid(format!(
                "node {}: not a regular file",
                node.0
            )));
        }
        if offset >= n.meta.size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(n.meta.size - offset) as usize;
        let out = &mut buf[..len];
        out.fill(0);
        let end = offset + len as u64;
        for (o, d) in &n.data {
            let d_end = o + d.len() as u64;
            let from = offset.max(*o);
            let to = end.min(d_end);
            if from < to {
                let src = &d[(from - o) as usize..(to - o) as usize];
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
        }
        Ok(len)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let n = self.get(node)?;
        Ok(n.data
            .iter()
            .map(|(o, d)| FileExtent {
                offset: *o,
                len: d.len() as u64,
                unwritten: false,
            })
            .collect())
    }

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        Ok(self.get(node)?.xattrs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_hostile_names_and_sparse_files() {
        let mut fs = MemFs::new();
        let d = fs.add_dir(ROOT, b"a/b", 0o755);
        fs.link(d, b"..", ROOT);
        let f = fs.add_sparse(d, b"", 0o644, 100, &[(10, b"xyz")]);
        fs.link(ROOT, b"hard", f);
        let names: Vec<Vec<u8>> = fs
            .read_dir(d)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"..".to_vec(), b"".to_vec()]);
        let mut buf = [9u8; 16];
        assert_eq!(fs.read_at(f, 8, &mut buf).unwrap(), 16);
        assert_eq!(&buf[..6], b"\0\0xyz\0");
        assert_eq!(fs.read_at(f, 95, &mut buf).unwrap(), 5);
        assert_eq!(fs.metadata(f).unwrap().nlink, 2);
    }
}
