//! A minimal [`FsView`] over a directory the kernel engine mounted.
//!
//! Private stand-in until `src/fs/host.rs` (the shared one) lands: nodes
//! are inode numbers, each remembered with the path it was reached by from
//! the mount root; paths are only ever built from names `read_dir`
//! returned, and every `lstat` is checked to still be on the mounted
//! filesystem, so nothing outside the mount (and nothing of the host's) is
//! ever read, and symlinks are never followed on the host.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, IoContext, Result};
use crate::fs::{
    DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Timestamp, Xattr,
};

/// Most entries remembered (a bound on memory for huge trees).
const MAX_NODES: usize = 50_000_000;

/// A mounted filesystem read through `std::fs`.
pub struct HostDir {
    root: PathBuf,
    dev: u64,
    root_ino: u64,
    status: FsStatus,
    nodes: Mutex<HashMap<u64, PathBuf>>,
    /// Whatever keeps the mount alive (the kernel session).
    _keep: Option<Arc<dyn Send + Sync>>,
}

impl HostDir {
    /// A view of the filesystem mounted at `root`.
    pub fn new(
        root: &Path,
        status: FsStatus,
        keep: Option<Arc<dyn Send + Sync>>,
    ) -> Result<HostDir> {
        let meta = std::fs::symlink_metadata(root).with_path(root)?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: not a directory",
                root.display()
            )));
        }
        let mut nodes = HashMap::new();
        nodes.insert(meta.ino(), PathBuf::new());
        Ok(HostDir {
            root: root.to_path_buf(),
            dev: meta.dev(),
            root_ino: meta.ino(),
            status,
            nodes: Mutex::new(nodes),
            _keep: keep,
        })
    }

    fn rel(&self, node: NodeId) -> Result<PathBuf> {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.get(&node.0).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "node {} (not reached by a directory listing)",
                node.0
            ))
        })
    }

    fn full(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn lstat(&self, node: NodeId) -> Result<(PathBuf, std::fs::Metadata)> {
        let rel = self.rel(node)?;
        let full = self.full(&rel);
        let meta = std::fs::symlink_metadata(&full).with_path(&full)?;
        if meta.dev() != self.dev {
            return Err(Error::Refused(format!(
                "{} is no longer on the mounted filesystem (was it unmounted?)",
                full.display()
            )));
        }
        Ok((full, meta))
    }

    fn remember(&self, ino: u64, rel: PathBuf) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if nodes.len() < MAX_NODES {
            nodes.entry(ino).or_insert(rel);
        }
    }

    fn open_regular(&self, node: NodeId) -> Result<File> {
        let (full, meta) = self.lstat(node)?;
        if !meta.file_type().is_file() {
            return Err(Error::Invalid(format!(
                "{}: not a regular file",
                full.display()
            )));
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&full)
            .with_path(&full)?;
        Ok(f)
    }
}

fn ts(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    }
}

impl FsView for HostDir {
    fn status(&self) -> FsStatus {
        self.status.clone()
    }

    fn root(&self) -> NodeId {
        NodeId(self.root_ino)
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let (_, m) = self.lstat(node)?;
        let rdev = m.rdev();
        Ok(Metadata {
            node,
            ino: m.ino(),
            file_type: FileType::from_mode(m.mode()),
            perm: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            nlink: m.nlink(),
            atime: ts(m.atime(), m.atime_nsec()),
            mtime: ts(m.mtime(), m.mtime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
            crtime: m.created().ok().and_then(|t| {
                let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
                Some(Timestamp {
                    sec: i64::try_from(d.as_secs()).ok()?,
                    nsec: d.subsec_nanos(),
                })
            }),
            rdev: (
                nix::sys::stat::major(rdev) as u32,
                nix::sys::stat::minor(rdev) as u32,
            ),
            allocated: Some(m.blocks().saturating_mul(512)),
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let (full, meta) = self.lstat(dir)?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: not a directory",
                full.display()
            )));
        }
        let rel = self.rel(dir)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&full).with_path(&full)? {
            let e = e.with_path(&full)?;
            let name = e.file_name();
            let ino = e.ino();
            let ft = e.file_type().ok().map(|t| {
                use std::os::unix::fs::FileTypeExt;
                if t.is_dir() {
                    FileType::Directory
                } else if t.is_symlink() {
                    FileType::Symlink
                } else if t.is_file() {
                    FileType::Regular
                } else if t.is_block_device() {
                    FileType::BlockDevice
                } else if t.is_char_device() {
                    FileType::CharDevice
                } else if t.is_fifo() {
                    FileType::Fifo
                } else if t.is_socket() {
                    FileType::Socket
                } else {
                    FileType::Unknown
                }
            });
            self.remember(ino, rel.join(&name));
            out.push(DirEntry {
                name: name.as_bytes().to_vec(),
                node: NodeId(ino),
                file_type: ft,
            });
        }
        Ok(out)
    }

    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return Ok(None);
        }
        let (full, meta) = self.lstat(dir)?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: not a directory",
                full.display()
            )));
        }
        let rel = self.rel(dir)?.join(OsStr::from_bytes(name));
        let child = self.full(&rel);
        match std::fs::symlink_metadata(&child) {
            Ok(m) => {
                self.remember(m.ino(), rel);
                Ok(Some(NodeId(m.ino())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io_path(&child, e)),
        }
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        let (full, meta) = self.lstat(node)?;
        if !meta.file_type().is_symlink() {
            return Err(Error::Invalid(format!("{}: not a symlink", full.display())));
        }
        let t = std::fs::read_link(&full).with_path(&full)?;
        Ok(t.as_os_str().as_bytes().to_vec())
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let f = self.open_regular(node)?;
        let mut done = 0;
        while done < buf.len() {
            let n = f
                .read_at(&mut buf[done..], offset + done as u64)
                .map_err(|e| Error::io(format!("reading node {}", node.0), e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        use nix::unistd::{Whence, lseek};
        let f = self.open_regular(node)?;
        let size = f.metadata().map(|m| m.size()).unwrap_or(0);
        let mut out = Vec::new();
        let mut pos: u64 = 0;
        // Each step moves forward; bounded by the number of extents a file can have.
        for _ in 0..10_000_000u64 {
            if pos >= size {
                break;
            }
            let Ok(off) = i64::try_from(pos) else { break };
            let data = match lseek(&f, off, Whence::SeekData) {
                Ok(d) => d as u64,
                Err(nix::errno::Errno::ENXIO) => break,
                Err(_) => {
                    // No SEEK_DATA support: one extent for the whole file.
                    return Ok(vec![FileExtent {
                        offset: 0,
                        len: size,
                        unwritten: false,
                    }]);
                }
            };
            let hole = lseek(&f, data as i64, Whence::SeekHole)
                .map(|h| h as u64)
                .unwrap_or(size);
            if hole <= data {
                break;
            }
            out.push(FileExtent {
                offset: data,
                len: hole - data,
                unwritten: false,
            });
            pos = hole;
        }
        Ok(out)
    }

    fn xattrs(&self, _node: NodeId) -> Result<Vec<Xattr>> {
        Err(Error::Unsupported(
            "extended attributes through the kernel engine".into(),
        ))
    }
}
