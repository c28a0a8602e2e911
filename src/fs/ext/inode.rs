//! Inodes: decoding, times, checksums.

use super::csum;
use crate::fs::{FileType, Timestamp};
use crate::io::le;

/// Size of the original (rev 0) inode; larger inodes carry `i_extra_isize` more bytes.
pub const EXT4_GOOD_OLD_INODE_SIZE: usize = 128;

/// `i_flags` bits.
pub mod flags {
    /// Compressed (never in mainline; ignored).
    pub const COMPR: u32 = 0x4;
    /// Encrypted inode.
    pub const ENCRYPT: u32 = 0x800;
    /// Hash-indexed directory.
    pub const INDEX: u32 = 0x1000;
    /// `i_blocks` counts filesystem blocks, not 512-byte sectors.
    pub const HUGE_FILE: u32 = 0x40000;
    /// Extent-mapped.
    pub const EXTENTS: u32 = 0x80000;
    /// fs-verity protected.
    pub const VERITY: u32 = 0x100000;
    /// Holds a large extended attribute value.
    pub const EA_INODE: u32 = 0x200000;
    /// Data stored in the inode.
    pub const INLINE_DATA: u32 = 0x1000_0000;
    /// Case-insensitive directory.
    pub const CASEFOLD: u32 = 0x4000_0000;
}

/// Offset of `i_block` (60 bytes: block map, extent root, fast symlink or inline data).
pub const I_BLOCK: usize = 0x28;
/// Length of `i_block`.
pub const I_BLOCK_LEN: usize = 60;
/// Offset of `l_i_checksum_lo`.
pub const I_CHECKSUM_LO: usize = 0x7C;
/// Offset of `i_checksum_hi` (inside the extra part).
pub const I_CHECKSUM_HI: usize = 0x82;

/// The decoded fields of an on-disk inode, under their on-disk names.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Inode number.
    pub ino: u32,
    /// Absolute byte position of the inode in the volume.
    pub pos: u64,
    /// The raw `s_inode_size` bytes.
    pub raw: Vec<u8>,
    /// File type (`S_IFMT` bits) and permission bits.
    pub i_mode: u16,
    /// `i_uid | l_i_uid_high << 16`.
    pub i_uid: u32,
    /// `i_gid | l_i_gid_high << 16`.
    pub i_gid: u32,
    /// `i_size_lo | i_size_high << 32` (high part for regular files, or all with large_dir).
    pub i_size: u64,
    /// Hard links to the inode.
    pub i_links_count: u16,
    /// `i_blocks_lo | l_i_blocks_high << 32` (high part with huge_file).
    pub i_blocks: u64,
    /// `EXT4_*_FL` flags (extents, inline data, htree index, ...).
    pub i_flags: u32,
    /// File version, for NFS.
    pub i_generation: u32,
    /// `i_file_acl_lo | l_i_file_acl_high << 32`: the xattr block (the
    /// high part only with the 64bit feature, as the kernel reads it).
    pub i_file_acl: u64,
    /// 0 for a 128-byte inode.
    pub i_extra_isize: u16,
    /// Last access (`i_atime`, with `i_atime_extra` when the inode is large enough).
    pub atime: Timestamp,
    /// Last data modification (`i_mtime`, with `i_mtime_extra`).
    pub mtime: Timestamp,
    /// Last inode change (`i_ctime`, with `i_ctime_extra`).
    pub ctime: Timestamp,
    /// Creation (`i_crtime`, with `i_crtime_extra`); `None` when the inode is too small to hold it.
    pub crtime: Option<Timestamp>,
    /// Deletion time (seconds since 1970), or the next orphan's inode number while on the orphan list.
    pub i_dtime: u32,
}

impl Inode {
    /// Decode `raw` (at least 128 bytes). `huge_file`, `largedir` and
    /// `is64` are the superblock features that change how `i_blocks`,
    /// `i_size` and `i_file_acl` read.
    /// `extra_isize` problems are returned as text (the inode is still decoded).
    pub fn parse(
        ino: u32,
        pos: u64,
        raw: Vec<u8>,
        huge_file: bool,
        largedir: bool,
        is64: bool,
    ) -> (Inode, Option<String>) {
        let u16_at = |o: usize| le::u16(&raw, o).unwrap_or(0);
        let u32_at = |o: usize| le::u32(&raw, o).unwrap_or(0);
        let i_mode = u16_at(0x0);
        let mut problem = None;
        let mut i_extra_isize = 0u16;
        if raw.len() > EXT4_GOOD_OLD_INODE_SIZE {
            i_extra_isize = u16_at(0x80);
            let room = raw.len() - EXT4_GOOD_OLD_INODE_SIZE;
            if usize::from(i_extra_isize) > room || !i_extra_isize.is_multiple_of(4) {
                problem = Some(format!(
                    "i_extra_isize {i_extra_isize} does not fit a {}-byte inode",
                    raw.len()
                ));
                i_extra_isize = 0;
            }
        }
        let fits = |off: usize, len: usize| {
            off + len <= EXT4_GOOD_OLD_INODE_SIZE + usize::from(i_extra_isize)
        };
        let time = |off: usize, extra_off: usize| {
            let base = i64::from(u32_at(off) as i32);
            if fits(extra_off, 4) {
                let extra = u32_at(extra_off);
                Timestamp {
                    sec: base + (i64::from(extra & 3) << 32),
                    nsec: (extra >> 2).min(999_999_999),
                }
            } else {
                Timestamp { sec: base, nsec: 0 }
            }
        };
        let is_reg = u32::from(i_mode) & 0o170000 == 0o100000;
        let size_lo = u64::from(u32_at(0x4));
        let i_size = if is_reg || largedir {
            size_lo | u64::from(u32_at(0x6C)) << 32
        } else {
            size_lo
        };
        let blocks_lo = u64::from(u32_at(0x1C));
        let i_blocks = if huge_file {
            blocks_lo | u64::from(u16_at(0x74)) << 32
        } else {
            blocks_lo
        };
        let inode = Inode {
            ino,
            pos,
            i_mode,
            i_uid: u32::from(u16_at(0x2)) | u32::from(u16_at(0x78)) << 16,
            i_gid: u32::from(u16_at(0x18)) | u32::from(u16_at(0x7A)) << 16,
            i_size,
            i_links_count: u16_at(0x1A),
            i_blocks,
            i_flags: u32_at(0x20),
            i_generation: u32_at(0x64),
            // Without 64bit, 0x76 is padding (Hurd: i_mode_high): not ours to read.
            i_file_acl: u64::from(u32_at(0x68))
                | if is64 {
                    u64::from(u16_at(0x76)) << 32
                } else {
                    0
                },
            i_extra_isize,
            atime: time(0x8, 0x8C),
            ctime: time(0xC, 0x84),
            mtime: time(0x10, 0x88),
            crtime: fits(0x90, 4).then(|| time(0x90, 0x94)),
            i_dtime: u32_at(0x14),
            raw,
        };
        (inode, problem)
    }

    /// The type from `i_mode`.
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(u32::from(self.i_mode))
    }

    /// Whether an `i_flags` bit is set.
    pub fn has_flag(&self, flag: u32) -> bool {
        self.i_flags & flag != 0
    }

    /// The 60 bytes of `i_block`.
    pub fn i_block(&self) -> &[u8] {
        &self.raw[I_BLOCK..I_BLOCK + I_BLOCK_LEN]
    }

    /// `i_block[n]` as a little-endian u32.
    pub fn i_block_u32(&self, n: usize) -> u32 {
        le::u32(&self.raw, I_BLOCK + 4 * n).unwrap_or(0)
    }

    /// Bytes allocated, from `i_blocks` (512-byte units, or blocks with `HUGE_FILE_FL`).
    pub fn allocated_bytes(&self, block_size: u64) -> u64 {
        if self.has_flag(flags::HUGE_FILE) {
            self.i_blocks.saturating_mul(block_size)
        } else {
            self.i_blocks.saturating_mul(512)
        }
    }

    /// Device number (major, minor) of a device node: the old 16-bit form
    /// in `i_block[0]`, else the new 32-bit form in `i_block[1]`.
    pub fn rdev(&self) -> (u32, u32) {
        let old = self.i_block_u32(0);
        if old != 0 {
            ((old >> 8) & 0xff, old & 0xff)
        } else {
            let new = self.i_block_u32(1);
            ((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00))
        }
    }

    /// Where the in-inode extended attributes start (after `i_extra_isize`), if there is room.
    pub fn ibody_xattr_start(&self) -> Option<usize> {
        if self.raw.len() <= EXT4_GOOD_OLD_INODE_SIZE {
            return None;
        }
        let start = EXT4_GOOD_OLD_INODE_SIZE + usize::from(self.i_extra_isize);
        (start + 4 <= self.raw.len()).then_some(start)
    }

    /// The stored checksum (`l_i_checksum_lo`, plus `i_checksum_hi` when the inode has room).
    pub fn stored_checksum(&self) -> u32 {
        stored_checksum(&self.raw)
    }
}

/// The checksum stored in raw inode bytes (`l_i_checksum_lo`, plus
/// `i_checksum_hi` when the inode has room for it).
pub fn stored_checksum(raw: &[u8]) -> u32 {
    let lo = u32::from(le::u16(raw, I_CHECKSUM_LO).unwrap_or(0));
    if has_checksum_hi(raw) {
        lo | u32::from(le::u16(raw, I_CHECKSUM_HI).unwrap_or(0)) << 16
    } else {
        lo
    }
}

/// Whether the inode has room for `i_checksum_hi` (a large inode with `i_extra_isize >= 4`).
pub fn has_checksum_hi(raw: &[u8]) -> bool {
    raw.len() > EXT4_GOOD_OLD_INODE_SIZE
        && usize::from(le::u16(raw, 0x80).unwrap_or(0))
            >= I_CHECKSUM_HI + 2 - EXT4_GOOD_OLD_INODE_SIZE
}

/// The per-inode checksum seed: `crc32c(crc32c(fs_seed, le32 ino), le32 i_generation)`.
/// Extent blocks, directory blocks and inodes are checksummed from it.
pub fn inode_csum_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    let c = csum::crc32c(fs_seed, &ino.to_le_bytes());
    csum::crc32c(c, &generation.to_le_bytes())
}

/// The checksum an inode's raw bytes should carry (metadata_csum): the
/// per-inode seed continued over the whole inode with both checksum fields
/// read as zero. Only the low 16 bits are stored in a 128-byte inode.
pub fn inode_checksum(fs_seed: u32, ino: u32, raw: &[u8]) -> u32 {
    let generation = le::u32(raw, 0x64).unwrap_or(0);
    let mut c = inode_csum_seed(fs_seed, ino, generation);
    let zero = [0u8; 2];
    c = csum::crc32c(c, &raw[..I_CHECKSUM_LO]);
    c = csum::crc32c(c, &zero);
    let hi = has_checksum_hi(raw);
    if raw.len() > I_CHECKSUM_LO + 2 {
        if hi {
            c = csum::crc32c(c, &raw[I_CHECKSUM_LO + 2..I_CHECKSUM_HI]);
            c = csum::crc32c(c, &zero);
            c = csum::crc32c(c, &raw[I_CHECKSUM_HI + 2..]);
        } else {
            c = csum::crc32c(c, &raw[I_CHECKSUM_LO + 2..]);
        }
    }
    if hi { c } else { c & 0xffff }
}

/// Store `csum` in an inode's checksum fields (for a later in-place write).
pub fn set_inode_checksum(raw: &mut [u8], csum: u32) {
    raw[I_CHECKSUM_LO..I_CHECKSUM_LO + 2].copy_from_slice(&(csum as u16).to_le_bytes());
    if has_checksum_hi(raw) {
        raw[I_CHECKSUM_HI..I_CHECKSUM_HI + 2].copy_from_slice(&((csum >> 16) as u16).to_le_bytes());
    }
}
