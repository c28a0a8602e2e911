//! The XFS on-disk inode (`xfs_dinode`): the core (v1/v2: 100 bytes, v3:
//! 176 bytes), then the data fork and, from `di_forkoff * 8`, the attr fork.

use crate::error::{Error, Result};
use crate::fs::{FileType, Timestamp};
use crate::io::be;

/// `di_magic`: "IN".
pub const XFS_DINODE_MAGIC: u16 = 0x494e;
/// Offset of `di_crc` in a v3 inode.
pub const DI_CRC_OFF: usize = 100;
/// Core sizes.
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;

/// `di_format` / `di_aformat` values.
pub mod format {
    /// Device number in the data fork.
    pub const DEV: u8 = 0;
    /// Data inside the inode.
    pub const LOCAL: u8 = 1;
    /// A list of extent records.
    pub const EXTENTS: u8 = 2;
    /// A bmbt btree root.
    pub const BTREE: u8 = 3;
}

/// `di_flags` bits.
pub mod flags {
    /// Data lives on the realtime device.
    pub const REALTIME: u16 = 0x0001;
}

/// `di_flags2` bits.
pub mod flags2 {
    /// Timestamps are 64-bit nanosecond counters.
    pub const BIGTIME: u64 = 0x0008;
    /// 64-bit extent counters.
    pub const NREXT64: u64 = 0x0010;
}

/// Which fork of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// File data, directory blocks, symlink target.
    Data,
    /// Extended attributes.
    Attr,
}

impl Fork {
    /// "data" or "attr", for messages.
    pub fn name(self) -> &'static str {
        match self {
            Fork::Data => "data",
            Fork::Attr => "attr",
        }
    }
}

/// A decoded inode, with its raw bytes for the forks.
#[derive(Debug, Clone)]
pub struct Dinode {
    /// Inode number.
    pub ino: u64,
    /// Byte position in the volume.
    pub pos: u64,
    /// File type (`S_IFMT` bits) and permission bits.
    pub di_mode: u16,
    /// Inode version: 1, 2 or 3 (v5 filesystems, with CRC).
    pub di_version: u8,
    /// Data fork format: device, local, extents, btree.
    pub di_format: u8,
    /// Owner.
    pub di_uid: u32,
    /// Group.
    pub di_gid: u32,
    /// Hard links (`di_onlink` on a version 1 inode).
    pub di_nlink: u32,
    /// Last access.
    pub atime: Timestamp,
    /// Last data modification.
    pub mtime: Timestamp,
    /// Last inode change.
    pub ctime: Timestamp,
    /// Creation; `None` before version 3.
    pub crtime: Option<Timestamp>,
    /// File size in bytes.
    pub di_size: u64,
    /// Filesystem blocks used, both forks and their btree blocks.
    pub di_nblocks: u64,
    /// Data fork extent count.
    pub nextents: u64,
    /// Attr fork extent count.
    pub anextents: u64,
    /// Attr fork offset in the literal area, in 8-byte units; 0 without an attr fork.
    pub di_forkoff: u8,
    /// Attr fork format: local, extents, btree.
    pub di_aformat: u8,
    /// `XFS_DIFLAG_*` flags (realtime, append-only, immutable, ...).
    pub di_flags: u16,
    /// `XFS_DIFLAG2_*` flags of a version 3 inode (reflink, big timestamps, ...); 0 before.
    pub di_flags2: u64,
    /// `di_ino` of a v3 inode.
    pub di_ino: Option<u64>,
    raw: Vec<u8>,
}

fn timestamp(raw: &[u8], off: usize, bigtime: bool) -> Timestamp {
    if bigtime {
        // Nanoseconds since 1901-12-13 20:45:52 UTC (-2^31 s).
        let ns = be::u64(raw, off).unwrap_or(0);
        Timestamp {
            sec: (ns / 1_000_000_000) as i64 - (1i64 << 31),
            nsec: (ns % 1_000_000_000) as u32,
        }
    } else {
        Timestamp {
            sec: i64::from(be::u32(raw, off).unwrap_or(0) as i32),
            nsec: be::u32(raw, off + 4).unwrap_or(0).min(999_999_999),
        }
    }
}

impl Dinode {
    /// Decode inode `ino` from `raw` (one `sb_inodesize` slot at byte `pos`).
    /// `v5`: the filesystem has v3 inodes.
    pub fn parse(ino: u64, pos: u64, raw: Vec<u8>, v5: bool) -> Result<Dinode> {
        let what = format!("xfs inode {ino}");
        let magic = be::u16(&raw, 0).unwrap_or(0);
        if magic != XFS_DINODE_MAGIC {
            return Err(Error::corrupt(
                what,
                pos,
                format!("bad magic {magic:#06x} (expected {XFS_DINODE_MAGIC:#06x}, \"IN\")"),
            ));
        }
        let di_version = raw[4];
        let ok_version = if v5 {
            di_version == 3
        } else {
            di_version == 1 || di_version == 2
        };
        if !ok_version {
            return Err(Error::corrupt(
                what,
                pos + 4,
                format!(
                    "di_version {di_version} (expected {})",
                    if v5 { "3" } else { "1 or 2" }
                ),
            ));
        }
        let core = if di_version == 3 { CORE_V3 } else { CORE_V2 };
        let u16_at = |o: usize| be::u16(&raw, o).unwrap_or(0);
        let u32_at = |o: usize| be::u32(&raw, o).unwrap_or(0);
        let u64_at = |o: usize| be::u64(&raw, o).unwrap_or(0);
        let di_flags2 = if di_version == 3 { u64_at(120) } else { 0 };
        let bigtime = di_flags2 & flags2::BIGTIME != 0;
        let (nextents, anextents) = if di_flags2 & flags2::NREXT64 != 0 {
            (u64_at(24), u64::from(u32_at(76)))
        } else {
            (u64::from(u32_at(76)), u64::from(u16_at(80)))
        };
        let di_nlink = if di_version == 1 {
            u32::from(u16_at(6))
        } else {
            u32_at(16)
        };
        let di_forkoff = raw[82];
        let lit = raw.len().saturating_sub(core);
        if usize::from(di_forkoff) * 8 >= lit && di_forkoff != 0 {
            return Err(Error::corrupt(
                what,
                pos + 82,
                format!(
                    "di_forkoff {di_forkoff} puts the attr fork past the inode's {lit} literal bytes"
                ),
            ));
        }
        Ok(Dinode {
            ino,
            pos,
            di_mode: u16_at(2),
            di_version,
            di_format: raw[5],
            di_uid: u32_at(8),
            di_gid: u32_at(12),
            di_nlink,
            atime: timestamp(&raw, 32, bigtime),
            mtime: timestamp(&raw, 40, bigtime),
            ctime: timestamp(&raw, 48, bigtime),
            crtime: (di_version == 3).then(|| timestamp(&raw, 144, bigtime)),
            di_size: u64_at(56),
            di_nblocks: u64_at(64),
            nextents,
            anextents,
            di_forkoff,
            di_aformat: raw[83],
            di_flags: u16_at(90),
            di_flags2,
            di_ino: (di_version == 3).then(|| u64_at(152)),
            raw,
        })
    }

    /// The node's type from `di_mode`.
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(u32::from(self.di_mode))
    }

    fn core_size(&self) -> usize {
        if self.di_version == 3 {
            CORE_V3
        } else {
            CORE_V2
        }
    }

    /// Whether the inode has an attr fork.
    pub fn has_attr_fork(&self) -> bool {
        self.di_forkoff != 0
    }

    /// The raw bytes of `fork` inside the inode.
    pub fn fork(&self, fork: Fork) -> &[u8] {
        let core = self.core_size();
        let split = core + usize::from(self.di_forkoff) * 8;
        match fork {
            Fork::Data if self.di_forkoff != 0 => &self.raw[core..split],
            Fork::Data => &self.raw[core..],
            Fork::Attr if self.di_forkoff != 0 => &self.raw[split..],
            Fork::Attr => &[],
        }
    }

    /// `di_format` or `di_aformat`.
    pub fn fork_format(&self, fork: Fork) -> u8 {
        match fork {
            Fork::Data => self.di_format,
            Fork::Attr => self.di_aformat,
        }
    }

    /// Extent count of `fork`.
    pub fn fork_extents(&self, fork: Fork) -> u64 {
        match fork {
            Fork::Data => self.nextents,
            Fork::Attr => self.anextents,
        }
    }

    /// Device number (major, minor) of a device inode, as Linux decodes
    /// XFS's 32-bit `di_dev` (major in bits 18..27, minor in bits 0..17).
    pub fn rdev(&self) -> (u32, u32) {
        let dev = be::u32(self.fork(Fork::Data), 0).unwrap_or(0);
        ((dev >> 18) & 0x1ff, dev & 0x3ffff)
    }

    /// The raw inode bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}
