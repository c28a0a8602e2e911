//! A host directory as a guest filesystem.
//!
//! The kernel engine mounts a guest volume read-only and browses the mount
//! through [`HostFs`]; tests use it on temporary directories. Nothing is ever
//! followed: metadata is `lstat`, every open is `O_NOFOLLOW`, and paths are
//! resolved from a descriptor of the root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`, so no symlink inside the tree (or one planted there
//! while we read) can lead outside the root. Symlinks are resolved by
//! [`crate::fs::path::resolve`], inside the guest, never by the host.
//!
//! [`NodeId`]s are inode numbers (hard links share one); the paths behind
//! them are remembered as `(parent, name)` pairs learned from directory
//! listings. Directories are remembered for the life of the view; other
//! nodes in a bounded cache of the most recently listed ones, so walking a
//! tree of millions of files stays within a few MiB. A node evicted from the
//! cache is found again by listing its directory again.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, SeekFrom};
use rustix::io::Errno;

use super::{DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Timestamp, Xattr};
use crate::error::{Error, IoContext, Result};
use crate::io::HostExtent;
use crate::text::escape;

/// Non-directory nodes remembered per cache generation (two generations are
/// kept; a larger directory's listing is kept whole).
const FILE_CACHE: usize = 1 << 16;
/// Deepest directory nesting followed when rebuilding a path.
const MAX_DEPTH: usize = 4096;
/// Most extents reported for one file; the rest is reported as one data range.
const MAX_EXTENTS: usize = 1 << 20;
/// Largest xattr name list and value (Linux's `XATTR_LIST_MAX`, `XATTR_SIZE_MAX`).
const XATTR_MAX: usize = 1 << 16;
/// Node ids handed to nodes on another filesystem than the root's (mount points inside).
const FOREIGN: u64 = 1 << 63;

/// Where a node lives: its directory and its name there.
#[derive(Debug, Clone)]
struct Place {
    parent: NodeId,
    name: Box<[u8]>,
}

#[derive(Debug)]
struct Index {
    /// Non-directories per generation ([`FILE_CACHE`]; smaller in tests).
    file_cache: usize,
    dirs: HashMap<NodeId, Place>,
    recent: HashMap<NodeId, Place>,
    older: HashMap<NodeId, Place>,
    foreign: HashMap<(u64, u64), NodeId>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            file_cache: FILE_CACHE,
            dirs: HashMap::new(),
            recent: HashMap::new(),
            older: HashMap::new(),
            foreign: HashMap::new(),
        }
    }
}

impl Index {
    fn place(&self, node: NodeId) -> Option<&Place> {
        self.dirs
            .get(&node)
            .or_else(|| self.recent.get(&node))
            .or_else(|| self.older.get(&node))
    }

    /// Remember the places of one directory's entries. A whole listing always
    /// fits: the generations turn before it is added, never while.
    fn remember_listing(
        &mut self,
        dir: NodeId,
        root: NodeId,
        learned: Vec<(NodeId, Vec<u8>, bool)>,
    ) {
        let files = learned.iter().filter(|(_, _, is_dir)| !is_dir).count();
        if self.recent.len() + files > self.file_cache {
            self.older = std::mem::take(&mut self.recent);
        }
        for (node, name, is_dir) in learned {
            if node == root || self.dirs.contains_key(&node) || self.recent.contains_key(&node) {
                continue;
            }
            let place = match self.older.remove(&node) {
                // Keep the first place learned: hard links stay on one path.
                Some(p) => p,
                None => Place {
                    parent: dir,
                    name: name.into_boxed_slice(),
                },
            };
            if is_dir {
                self.dirs.insert(node, place);
            } else {
                self.recent.insert(node, place);
            }
        }
    }
}

/// A node's parent directory, open, and its name there.
type At = (Arc<OwnedFd>, Box<[u8]>);

/// An open regular file kept for consecutive reads of one node.
#[derive(Debug, Clone)]
struct OpenFile {
    node: NodeId,
    file: Arc<File>,
    size: u64,
}

/// A host directory tree, read without following any symlink.
#[derive(Debug)]
pub struct HostFs {
    root_path: PathBuf,
    /// The root's descriptor; `None` once [`HostFs::close`]d.
    root_fd: Mutex<Option<Arc<OwnedFd>>>,
    root: NodeId,
    root_dev: u64,
    index: Mutex<Index>,
    last_file: Mutex<Option<OpenFile>>,
    last_dir: Mutex<Option<(NodeId, Arc<OwnedFd>)>>,
    no_openat2: AtomicBool,
    /// Set by [`HostFs::close`]: no descriptor is kept from then on.
    closed: AtomicBool,
    status: FsStatus,
}

impl HostFs {
    /// Open the directory `root` (the path itself may be a symlink the operator named).
    pub fn open(root: &Path) -> Result<HostFs> {
        let status = FsStatus {
            fs_type: "host directory".into(),
            notes: vec![format!("host directory {}", root.display())],
            ..FsStatus::default()
        };
        HostFs::with_status(root, status)
    }

    /// Open `root` and report `status` (the kernel engine says what it mounted).
    pub fn with_status(root: &Path, status: FsStatus) -> Result<HostFs> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io_path(root, e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io_path(root, e.into()))?;
        Ok(HostFs {
            root_path: root.to_path_buf(),
            root_fd: Mutex::new(Some(Arc::new(fd))),
            root: NodeId(st.st_ino as u64),
            root_dev: st.st_dev as u64,
            index: Mutex::new(Index::default()),
            last_file: Mutex::new(None),
            last_dir: Mutex::new(None),
            no_openat2: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            status,
        })
    }

    /// The directory this view shows.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Close every descriptor this view keeps into its tree (the root's,
    /// the last directory's and the last file's), so the filesystem can be
    /// unmounted while the view itself still exists; every later call fails
    /// with an error saying so. Reads under way keep their own descriptor
    /// until they return.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.root_fd
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.last_dir
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.last_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Remember `fd` as the last directory used (not once closed).
    fn keep_dir(&self, dir: NodeId, fd: Arc<OwnedFd>) {
        let mut last = self.last_dir.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.closed.load(Ordering::SeqCst) {
            *last = Some((dir, fd));
        }
    }

    /// The root's descriptor, unless the view was closed.
    fn root_fd(&self) -> std::io::Result<Arc<OwnedFd>> {
        self.root_fd
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "{}: closed (its mount is being taken down)",
                    self.root_path.display()
                ))
            })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The components from the root to `node` (empty for the root).
    fn components(&self, node: NodeId) -> Result<Vec<Box<[u8]>>> {
        let index = self.index();
        let mut out = Vec::new();
        let mut cur = node;
        while cur != self.root {
            if out.len() >= MAX_DEPTH {
                return Err(Error::Invalid(format!(
                    "{}: nested more than {MAX_DEPTH} directories deep",
                    self.root_path.display()
                )));
            }
            let Some(p) = index.place(cur) else {
                return Err(Error::NotFound(format!(
                    "node {} of {} (list its directory first)",
                    cur.0,
                    self.root_path.display()
                )));
            };
            out.push(p.name.clone());
            cur = p.parent;
        }
        out.reverse();
        Ok(out)
    }

    fn describe(&self, comps: &[Box<[u8]>]) -> String {
        let mut s = self.root_path.display().to_string();
        for c in comps {
            s.push('/');
            s.push_str(&escape(c));
        }
        s
    }

    /// Open `rel` (relative to the root) without following any symlink on the way.
    fn open_beneath(&self, rel: &[u8], flags: OFlags) -> std::io::Result<OwnedFd> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
        let root_fd = self.root_fd()?;
        if !self.no_openat2.load(Ordering::Relaxed) {
            match rustix::fs::openat2(
                &*root_fd,
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::NOSYS) => self.no_openat2.store(true, Ordering::Relaxed),
                other => return other.map_err(Into::into),
            }
        }
        // Without openat2 (Linux < 5.6): one component at a time, each O_NOFOLLOW.
        let comps: Vec<&[u8]> = rel
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let mut dir: Option<OwnedFd> = None;
        for (i, c) in comps.iter().enumerate() {
            if *c == b".." {
                return Err(Errno::XDEV.into());
            }
            let last = i + 1 == comps.len();
            let f = if last {
                flags
            } else {
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
            };
            let base: BorrowedFd<'_> = dir.as_ref().map_or(root_fd.as_fd(), AsFd::as_fd);
            let fd = rustix::fs::openat(base, *c, f, Mode::empty())?;
            dir = Some(fd);
        }
        match dir {
            Some(fd) => Ok(fd),
            None => Ok(rustix::fs::openat(&*root_fd, ".", flags, Mode::empty())?),
        }
    }

    /// A descriptor of directory `dir` (cached for the last one used).
    fn dir_fd(&self, dir: NodeId, comps: &[Box<[u8]>]) -> Result<Arc<OwnedFd>> {
        {
            let last = self.last_dir.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((n, fd)) = last.as_ref()
                && *n == dir
            {
                return Ok(Arc::clone(fd));
            }
        }
        let fd = self
            .open_beneath(&join(comps), OFlags::RDONLY | OFlags::DIRECTORY)
            .context(|| self.describe(comps))?;
        let fd = Arc::new(fd);
        self.keep_dir(dir, Arc::clone(&fd));
        Ok(fd)
    }

    /// The parent directory's descriptor and the name, for `*at` calls on `node`.
    /// `None` for the root.
    fn parent_and_name(&self, node: NodeId) -> Result<Option<At>> {
        if node == self.root {
            return Ok(None);
        }
        let (parent, name) = {
            let index = self.index();
            let p = index.place(node).ok_or_else(|| {
                Error::NotFound(format!(
                    "node {} of {} (list its directory first)",
                    node.0,
                    self.root_path.display()
                ))
            })?;
            (p.parent, p.name.clone())
        };
        let comps = self.components(parent)?;
        let fd = self.dir_fd(parent, &comps)?;
        Ok(Some((fd, name)))
    }

    fn lstat(&self, node: NodeId) -> Result<rustix::fs::Stat> {
        match self.parent_and_name(node)? {
            None => {
                let fd = self.root_fd().with_path(&self.root_path)?;
                rustix::fs::fstat(&*fd).map_err(|e| Error::io_path(&self.root_path, e.into()))
            }
            Some((dir, name)) => {
                let st = rustix::fs::statat(&*dir, &*name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::io(self.describe_node(node), e.into()))?;
                if self.id_for(st.st_dev as u64, st.st_ino as u64) != node {
                    return Err(Error::Invalid(format!(
                        "{}: changed while being read",
                        self.describe_node(node)
                    )));
                }
                Ok(st)
            }
        }
    }

    fn describe_node(&self, node: NodeId) -> String {
        match self.components(node) {
            Ok(c) => self.describe(&c),
            Err(_) => format!("node {} of {}", node.0, self.root_path.display()),
        }
    }

    /// The node id for an inode on device `dev`.
    fn id_for(&self, dev: u64, ino: u64) -> NodeId {
        if dev == self.root_dev && ino & FOREIGN == 0 {
            return NodeId(ino);
        }
        let mut index = self.index();
        let next = FOREIGN | index.foreign.len() as u64;
        *index.foreign.entry((dev, ino)).or_insert(NodeId(next))
    }

    /// The open file behind regular file `node`.
    fn file(&self, node: NodeId) -> Result<OpenFile> {
        {
            let last = self
                .last_file
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(f) = last.as_ref()
                && f.node == node
            {
                return Ok(f.clone());
            }
        }
        let comps = self.components(node)?;
        // O_NONBLOCK: opening a FIFO must not hang; it is refused below anyway.
        let fd = self
            .open_beneath(&join(&comps), OFlags::RDONLY | OFlags::NONBLOCK)
            .context(|| self.describe(&comps))?;
        let st = rustix::fs::fstat(&fd).context(|| self.describe(&comps))?;
        if FileType::from_mode(st.st_mode as u32) != FileType::Regular {
            return Err(Error::Invalid(format!(
                "{}: not a regular file",
                self.describe(&comps)
            )));
        }
        if self.id_for(st.st_dev as u64, st.st_ino as u64) != node {
            return Err(Error::Invalid(format!(
                "{}: changed while being read",
                self.describe(&comps)
            )));
        }
        let f = OpenFile {
            node,
            file: Arc::new(File::from(fd)),
            size: u64::try_from(st.st_size).unwrap_or(0),
        };
        let mut last = self
            .last_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock `close` clears it with: nothing is kept after.
        if !self.closed.load(Ordering::SeqCst) {
            *last = Some(f.clone());
        }
        Ok(f)
    }

    /// A path naming `node` for the path-based xattr calls, with the last
    /// component not followed (`l*xattr`).
    fn xattr_path(&self, node: NodeId) -> Result<(PathBuf, Option<Arc<OwnedFd>>)> {
        match self.parent_and_name(node)? {
            None => Ok((self.root_path.clone(), None)),
            Some((dir, name)) => {
                let proc = PathBuf::from(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&*dir)
                ));
                Ok((proc.join(OsStr::from_bytes(&name)), Some(dir)))
            }
        }
    }
}

/// `context` for rustix results.
trait ErrnoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ErrnoContext<T> for rustix::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e.into()))
    }
}

fn join(comps: &[Box<[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in comps {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    out
}

/// `Metadata` from a host `stat`.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn metadata_from(node: NodeId, st: &rustix::fs::Stat) -> Metadata {
    let ts = |sec: i64, nsec: u64| Timestamp {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    };
    let rdev = st.st_rdev as u64;
    Metadata {
        node,
        ino: st.st_ino as u64,
        file_type: FileType::from_mode(st.st_mode as u32),
        perm: (st.st_mode as u32) & 0o7777,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        size: u64::try_from(st.st_size as i64).unwrap_or(0),
        nlink: st.st_nlink as u64,
        atime: ts(st.st_atime as i64, st.st_atime_nsec as u64),
        mtime: ts(st.st_mtime as i64, st.st_mtime_nsec as u64),
        ctime: ts(st.st_ctime as i64, st.st_ctime_nsec as u64),
        crtime: None,
        rdev: (rustix::fs::major(rdev), rustix::fs::minor(rdev)),
        allocated: u64::try_from(st.st_blocks as i64)
            .ok()
            .and_then(|b| b.checked_mul(512)),
    }
}

impl FsView for HostFs {
    fn status(&self) -> FsStatus {
        self.status.clone()
    }

    fn root(&self) -> NodeId {
        self.root
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let st = self.lstat(node)?;
        Ok(metadata_from(node, &st))
    }

    #[allow(clippy::unnecessary_cast)]
    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let comps = self.components(dir)?;
        let fd = self
            .open_beneath(&join(&comps), OFlags::RDONLY | OFlags::DIRECTORY)
            .context(|| self.describe(&comps))?;
        let dir_dev = rustix::fs::fstat(&fd)
            .context(|| self.describe(&comps))?
            .st_dev as u64;
        let mut entries = Vec::new();
        let mut learned = Vec::new();
        let reader = rustix::fs::Dir::read_from(&fd).context(|| self.describe(&comps))?;
        for item in reader {
            let item = item.context(|| self.describe(&comps))?;
            let name = item.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut file_type = match item.file_type() {
                rustix::fs::FileType::RegularFile => Some(FileType::Regular),
                rustix::fs::FileType::Directory => Some(FileType::Directory),
                rustix::fs::FileType::Symlink => Some(FileType::Symlink),
                rustix::fs::FileType::Fifo => Some(FileType::Fifo),
                rustix::fs::FileType::Socket => Some(FileType::Socket),
                rustix::fs::FileType::CharacterDevice => Some(FileType::CharDevice),
                rustix::fs::FileType::BlockDevice => Some(FileType::BlockDevice),
                _ => None,
            };
            // Directories (and entries of unknown type) are looked at: a mount
            // point's inode number in the directory is not the mounted root's.
            let node = if matches!(file_type, None | Some(FileType::Directory)) {
                match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => {
                        file_type = Some(FileType::from_mode(st.st_mode as u32));
                        self.id_for(st.st_dev as u64, st.st_ino as u64)
                    }
                    // Gone since the listing: skip it as `ls` would.
                    Err(Errno::NOENT) => continue,
                    Err(e) => {
                        let mut c = comps.clone();
                        c.push(name.into());
                        return Err(Error::io(self.describe(&c), e.into()));
                    }
                }
            } else {
                self.id_for(dir_dev, item.ino())
            };
            learned.push((node, name.to_vec(), file_type == Some(FileType::Directory)));
            entries.push(DirEntry {
                name: name.to_vec(),
                node,
                file_type,
            });
        }
        self.index().remember_listing(dir, self.root, learned);
        self.keep_dir(dir, Arc::new(fd));
        Ok(entries)
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        let Some((dir, name)) = self.parent_and_name(node)? else {
            return Err(Error::Invalid(format!(
                "{}: the root is not a symlink",
                self.root_path.display()
            )));
        };
        let target = rustix::fs::readlinkat(&*dir, &*name, Vec::new())
            .map_err(|e| Error::io(self.describe_node(node), e.into()))?;
        Ok(target.into_bytes())
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let f = self.file(node)?;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset.saturating_add(done as u64);
            match f.file.read_at(&mut buf[done..], pos) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(self.describe_node(node), e)),
            }
        }
        Ok(done)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let f = self.file(node)?;
        let whole = || {
            if f.size == 0 {
                Vec::new()
            } else {
                vec![FileExtent {
                    offset: 0,
                    len: f.size,
                    unwritten: false,
                }]
            }
        };
        let mut out = Vec::new();
        let mut pos = 0u64;
        while pos < f.size {
            let data = match rustix::fs::seek(&*f.file, SeekFrom::Data(pos)) {
                Ok(d) => d,
                Err(Errno::NXIO) => break,
                // No SEEK_DATA on this filesystem: all data.
                Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => return Ok(whole()),
                Err(e) => return Err(Error::io(self.describe_node(node), e.into())),
            };
            if data >= f.size {
                break;
            }
            let hole = match rustix::fs::seek(&*f.file, SeekFrom::Hole(data)) {
                Ok(h) => h.min(f.size),
                Err(e) => return Err(Error::io(self.describe_node(node), e.into())),
            };
            if hole <= data {
                // The file changed under us; report the rest as data.
                out.push(FileExtent {
                    offset: data,
                    len: f.size - data,
                    unwritten: false,
                });
                break;
            }
            if out.len() + 1 >= MAX_EXTENTS {
                out.push(FileExtent {
                    offset: data,
                    len: f.size - data,
                    unwritten: false,
                });
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

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        let (path, _keep_open) = self.xattr_path(node)?;
        let what = || self.describe_node(node);
        let mut names = vec![0u8; XATTR_MAX];
        let n = match rustix::fs::llistxattr(&path, &mut names[..]) {
            Ok(n) => n,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(what(), e.into())),
        };
        names.truncate(n);
        let mut out = Vec::new();
        let mut value = vec![0u8; XATTR_MAX];
        for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let len = match rustix::fs::lgetxattr(&path, name, &mut value[..]) {
                Ok(len) => len,
                // Removed since the listing.
                Err(Errno::NODATA) => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("{} ({})", what(), escape(name)),
                        e.into(),
                    ));
                }
            };
            out.push(Xattr {
                name: name.to_vec(),
                value: value[..len].to_vec(),
            });
        }
        Ok(out)
    }

    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        let f = self.file(node).ok()?;
        if offset >= f.size || len == 0 {
            return None;
        }
        Some(HostExtent {
            file: f.file,
            offset,
            len: len.min(f.size - offset),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::path::resolve;

    /// This process's descriptors that lead into `dir`.
    fn fds_into(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|t| t.starts_with(dir))
            .collect()
    }

    #[test]
    fn close_lets_go_of_every_descriptor_and_later_calls_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), b"guest\n").unwrap();
        let fs = HostFs::open(&root).unwrap();
        let etc = fs.lookup(fs.root(), b"etc").unwrap().unwrap();
        let host = fs.lookup(etc, b"hostname").unwrap().unwrap();
        let mut buf = [0u8; 5];
        fs.read_at(host, 0, &mut buf).unwrap();
        fs.read_dir(etc).unwrap();
        assert!(!fds_into(&root).is_empty(), "the view keeps descriptors");
        fs.close();
        assert_eq!(fds_into(&root), Vec::<PathBuf>::new());
        let err = fs.read_dir(etc).unwrap_err().to_string();
        assert!(err.contains("closed"), "{err}");
        assert!(fs.metadata(fs.root()).is_err());
        assert!(fs.read_at(host, 0, &mut buf).is_err());
        assert_eq!(fds_into(&root), Vec::<PathBuf>::new());
    }

    #[test]
    fn lists_reads_and_never_leaves_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), b"guest\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("up")).unwrap();
        std::fs::write(tmp.path().join("outside"), b"host secret").unwrap();
        let fs = HostFs::open(&root).unwrap();
        let names: Vec<Vec<u8>> = fs
            .read_dir(fs.root())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names.len(), 3);
        // The absolute link resolves inside the guest root.
        let r = resolve(&fs, b"/link", true).unwrap();
        assert_eq!(r.path, b"/etc/hostname");
        let mut buf = [0u8; 16];
        let n = fs.read_at(r.node, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"guest\n");
        // `..` stops at the guest root.
        let up = resolve(&fs, b"/up/outside", true);
        assert!(matches!(up, Err(Error::NotFound(_))), "{up:?}");
        // The link itself is a symlink, not what it points to.
        let l = resolve(&fs, b"/link", false).unwrap();
        assert_eq!(fs.metadata(l.node).unwrap().file_type, FileType::Symlink);
        assert_eq!(fs.read_link(l.node).unwrap(), b"/etc/hostname");
        assert!(fs.read_at(l.node, 0, &mut buf).is_err());
    }

    #[test]
    fn forgets_old_listings_but_never_the_latest() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c", "big"] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
            let n = if d == "big" { 10 } else { 3 };
            for i in 0..n {
                std::fs::write(tmp.path().join(d).join(format!("f{i}")), d).unwrap();
            }
        }
        let fs = HostFs::open(tmp.path()).unwrap();
        fs.index().file_cache = 4;
        let dir = |name: &[u8]| resolve(&fs, name, false).unwrap().node;
        let first = |d: NodeId| fs.read_dir(d).unwrap()[0].node;
        let a0 = first(dir(b"/a"));
        let _ = first(dir(b"/b"));
        // a's files are in the older generation: still known.
        assert!(fs.metadata(a0).is_ok());
        let _ = first(dir(b"/c"));
        let e = fs.metadata(a0).unwrap_err().to_string();
        assert!(e.contains("list its directory first"), "{e}");
        let _ = first(dir(b"/a"));
        assert!(fs.metadata(a0).is_ok());
        // A listing larger than the cache is kept whole.
        let big: Vec<NodeId> = fs
            .read_dir(dir(b"/big"))
            .unwrap()
            .iter()
            .map(|e| e.node)
            .collect();
        assert_eq!(big.len(), 10);
        for n in big {
            let mut buf = [0u8; 8];
            let len = fs.read_at(n, 0, &mut buf).unwrap();
            assert_eq!(&buf[..len], b"big");
        }
        // Directories are never forgotten.
        assert!(fs.read_dir(dir(b"/a")).is_ok());
    }
}
