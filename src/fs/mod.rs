//! Guest filesystems behind one trait.
//!
//! [`FsView`] is what every filesystem reader (our ext2/3/4 and XFS readers) and every
//! engine (a kernel mount browsed with `std::fs`) offers. Paths and names are
//! bytes: guest names need not be UTF-8. Nodes are addressed by [`NodeId`]
//! (the inode number where the filesystem has one), so walking a large tree
//! never re-resolves paths.
//!
//! Path resolution ([`path::resolve`]) always happens inside the guest: an
//! absolute symlink target starts at the guest's `/`, `..` stops at the guest
//! root, and the usual limits apply (40 links, 4096 bytes).

pub mod btrfs;
pub mod ext;
pub mod fat;
pub mod host;
pub mod kinds;
pub mod mem;
pub mod ntfs;
pub mod path;
pub mod problems;
pub mod reader;
pub mod rooted;
pub mod xfs;

pub use reader::FileReader;

use crate::error::Result;
use crate::io::HostExtent;

/// Options for opening a filesystem.
#[derive(Debug, Clone, Default)]
pub struct FsOptions {
    /// Show the on-disk state: do not replay the journal in memory.
    pub no_journal: bool,
}

/// btrfs mount options `subvol=` / `subvolid=`: which subvolume a mount shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubvolSpec {
    /// `subvol=`: the subvolume's path from the top-level subvolume, as the fstab gives it.
    Path(Vec<u8>),
    /// `subvolid=`: the subvolume's id (5 is the top level).
    Id(u64),
}

/// A node (inode) of a guest filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct NodeId(pub u64);

/// The type of a node, as `st_mode & S_IFMT` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device node.
    CharDevice,
    /// A block device node.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// Anything else (a corrupt mode).
    Unknown,
}

impl FileType {
    /// From the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u32) -> FileType {
        match mode & 0o170000 {
            0o100000 => FileType::Regular,
            0o040000 => FileType::Directory,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::CharDevice,
            0o060000 => FileType::BlockDevice,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => FileType::Unknown,
        }
    }

    /// The type in words, as `ls` would describe it, for messages
    /// (`regular file`, `directory`).
    pub fn words(self) -> &'static str {
        match self {
            FileType::Regular => "regular file",
            FileType::Directory => "directory",
            FileType::Symlink => "symbolic link",
            FileType::CharDevice => "character device",
            FileType::BlockDevice => "block device",
            FileType::Fifo => "FIFO",
            FileType::Socket => "socket",
            FileType::Unknown => "file of unknown type",
        }
    }

    /// The `S_IFMT` bits for this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
            FileType::Unknown => 0,
        }
    }

    /// The letter `ls -l` shows for this type.
    pub fn ls_char(self) -> char {
        match self {
            FileType::Regular => '-',
            FileType::Directory => 'd',
            FileType::Symlink => 'l',
            FileType::CharDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
            FileType::Unknown => '?',
        }
    }
}

/// A point in time, seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 00:00:00 UTC (may be negative).
    pub sec: i64,
    /// Nanoseconds within the second.
    pub nsec: u32,
}

impl Timestamp {
    /// The current time (the epoch if the clock is before it).
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        }
    }
}

/// What `lstat` tells about a node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// The node.
    pub node: NodeId,
    /// Inode number as the filesystem reports it.
    pub ino: u64,
    /// Type of node.
    pub file_type: FileType,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (for a symlink: the target's length).
    pub size: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last modification of the contents.
    pub mtime: Timestamp,
    /// Last change of the inode.
    pub ctime: Timestamp,
    /// Creation time, where the filesystem records it.
    pub crtime: Option<Timestamp>,
    /// Device number (major, minor) for device nodes.
    pub rdev: (u32, u32),
    /// Bytes allocated on disk (for `du` and to see sparseness), when known.
    pub allocated: Option<u64>,
}

impl Metadata {
    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.file_type.mode_bits() | (self.perm & 0o7777)
    }

    /// The ten-character mode `ls -l` prints, e.g. `lrwxrwxrwx`, `-rwsr-xr-x`.
    pub fn mode_string(&self) -> String {
        mode_string(self.file_type, self.perm)
    }
}

/// The ten-character mode `ls -l` prints for a type and permission bits.
pub fn mode_string(file_type: FileType, perm: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(file_type.ls_char());
    let bit = |mask: u32, c: char| if perm & mask != 0 { c } else { '-' };
    let special = |x: bool, s_set: bool, lower: char, upper: char| match (s_set, x) {
        (true, true) => lower,
        (true, false) => upper,
        (false, true) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(perm & 0o100 != 0, perm & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(perm & 0o010 != 0, perm & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(perm & 0o001 != 0, perm & 0o1000 != 0, 't', 'T'));
    s
}

/// One entry of a directory (never `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name, as stored.
    pub name: Vec<u8>,
    /// The node it names.
    pub node: NodeId,
    /// The type recorded in the directory entry, if the filesystem records one.
    pub file_type: Option<FileType>,
}

/// A range of a file that holds data; the gaps between extents are holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FileExtent {
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Allocated but never written (preallocated): reads as zeros.
    pub unwritten: bool,
}

/// An extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    /// Full name including the namespace prefix (`user.`, `security.`, `trusted.`, `system.`).
    pub name: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// What a filesystem reader found while opening the filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FsStatus {
    /// Filesystem type as `blkid` names it (`ext4`, `xfs`, ...).
    pub fs_type: String,
    /// Volume label, if any.
    pub label: Option<String>,
    /// Filesystem UUID, if any.
    pub uuid: Option<String>,
    /// Facts the operator should know ("journal replayed in memory: 3 transactions").
    pub notes: Vec<String>,
    /// Problems found (bad checksums, ...); reading goes on where it safely can.
    pub problems: Vec<crate::problem::Problem>,
}

/// How full a filesystem is, as the guest's kernel would tell `statfs`
/// right after mounting it (`df`): counts in blocks of `block_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Space {
    /// Bytes per block (`f_bsize`).
    pub block_size: u64,
    /// Blocks for data, the filesystem's own metadata left out (`f_blocks`).
    pub blocks: u64,
    /// Free blocks (`f_bfree`).
    pub free_blocks: u64,
    /// Free blocks a user other than root may take: free minus the blocks
    /// reserved for root and for the filesystem (`f_bavail`).
    pub avail_blocks: u64,
    /// Inodes (`f_files`).
    pub inodes: u64,
    /// Free inodes (`f_ffree`).
    pub free_inodes: u64,
}

/// A guest filesystem, read-only.
pub trait FsView: Send + Sync {
    /// Type, label, notes and problems.
    fn status(&self) -> FsStatus;

    /// The root directory.
    fn root(&self) -> NodeId;

    /// Metadata of `node` (like `lstat`: a symlink is not followed).
    fn metadata(&self, node: NodeId) -> Result<Metadata>;

    /// The entries of directory `dir`, without `.` and `..`, in on-disk order.
    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>>;

    /// The entry `name` in directory `dir`, if there is one.
    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        Ok(self
            .read_dir(dir)?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.node))
    }

    /// The target of symlink `node`, as stored.
    fn read_link(&self, node: NodeId) -> Result<Vec<u8>>;

    /// Read file contents at `offset`; returns the number of bytes read, which
    /// is less than `buf.len()` only at the end of the file.
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// The data ranges of a regular file, in order; holes are the gaps.
    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>>;

    /// Extended attributes of `node`.
    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>>;

    /// Where the file bytes at `offset` are stored plainly in a host file,
    /// for `copy_file_range`. `None` when they are not (compressed, replayed
    /// from the journal, inline, unwritten, or not known).
    fn host_extent(&self, _node: NodeId, _offset: u64, _len: u64) -> Option<HostExtent> {
        None
    }

    /// Start reading in the background what a walk over `nodes` will read:
    /// their inodes, and with `data` their contents too (small files), in
    /// the order they lie in the image (`posix_fadvise(WILLNEED)` on the
    /// host file), so that a cold copy reads the disk in one sweep instead
    /// of one seek per file. Only a hint: nothing is read here, nothing
    /// fails. The default does nothing.
    fn prefetch(&self, _nodes: &[NodeId], _data: bool) {}

    /// The device a node lives on, as `st_dev` tells it: nodes of one filesystem share it; a
    /// merged guest tree gives each mounted volume its own. `find -xdev` and `cp -x` stay on one.
    fn dev(&self, _node: NodeId) -> u64 {
        0
    }

    /// How many problems [`FsView::status`] would list, without copying
    /// them: a walk asks after every directory whether reading it found
    /// damage, and the browser after every job.
    fn problem_count(&self) -> usize {
        self.status().problems.len()
    }

    /// How full the filesystem holding `node` is, from its own counters
    /// (superblock, group or allocation-group headers); `None` when the
    /// reader does not know.
    fn space(&self, _node: NodeId) -> Option<Space> {
        None
    }

    /// The root of the subvolume `spec` names, for filesystems that have subvolumes
    /// (`Ok(None)`: this filesystem has none).
    fn subvolume_root(&self, _spec: &SubvolSpec) -> Result<Option<NodeId>> {
        Ok(None)
    }

    /// Every subvolume, top level first, for filesystems that have them
    /// (btrfs: read from the root tree's root items and references only).
    fn subvolumes(&self) -> Option<Vec<btrfs::SubvolInfo>> {
        None
    }
}

/// Read a small regular file of the guest whole (at most `cap` bytes),
/// following symlinks inside the guest. `None` when it is missing, not a
/// regular file or unreadable.
pub fn read_small(fs: &dyn FsView, guest_path: &[u8], cap: usize) -> Option<Vec<u8>> {
    let r = path::resolve(fs, guest_path, true).ok()?;
    let meta = fs.metadata(r.node).ok()?;
    if meta.file_type != FileType::Regular {
        return None;
    }
    let len = usize::try_from(meta.size).unwrap_or(usize::MAX).min(cap);
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = fs.read_at(r.node, done as u64, &mut buf[done..]).ok()?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_like_ls() {
        assert_eq!(mode_string(FileType::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(FileType::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::Regular, 0o2644), "-rw-r-Sr--");
    }
}
