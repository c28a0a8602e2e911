//! The XFS superblock, its feature flags and the allocation-group geometry.
//!
//! Every XFS structure is big-endian; the CRC32C checksums of v5 (crc=1)
//! structures are stored little-endian.

use crate::error::{Error, Result};
use crate::io::be;

/// `sb_magicnum`: "XFSB".
pub const XFS_SB_MAGIC: u32 = 0x5846_5342;
/// Bytes of the superblock structure that are decoded.
pub const SB_LEN: usize = 264;
/// Offset of `sb_crc`.
pub const SB_CRC_OFF: usize = 224;

/// `sb_versionnum` bits.
pub mod version {
    /// The version number (4 or 5) in the low bits.
    pub const NUMBITS: u16 = 0x000f;
    /// Extended attributes were used.
    pub const ATTRBIT: u16 = 0x0010;
    /// 32-bit link counts.
    pub const NLINKBIT: u16 = 0x0020;
    /// Version 2 directories.
    pub const DIRV2BIT: u16 = 0x2000;
    /// ASCII case-insensitive names.
    pub const BORGBIT: u16 = 0x4000;
    /// `sb_features2` is valid.
    pub const MOREBITSBIT: u16 = 0x8000;
}

/// `sb_features2` bits (v4).
pub mod features2 {
    /// Metadata checksums (a v5 filesystem: never set on v4).
    pub const CRC: u32 = 0x0100;
    /// Directory entries record the file type.
    pub const FTYPE: u32 = 0x0200;
}

/// `sb_features_incompat` bits (v5).
pub mod incompat {
    /// Directory entries record the file type.
    pub const FTYPE: u32 = 0x01;
    /// Sparse inode chunks.
    pub const SPINODES: u32 = 0x02;
    /// Metadata UUID differs from the filesystem UUID.
    pub const META_UUID: u32 = 0x04;
    /// Timestamps past 2038.
    pub const BIGTIME: u32 = 0x08;
    /// xfs_repair did not finish.
    pub const NEEDSREPAIR: u32 = 0x10;
    /// 64-bit extent counters.
    pub const NREXT64: u32 = 0x20;
    /// Atomic file content exchange (a log item kind only).
    pub const EXCHRANGE: u32 = 0x40;
    /// Directory parent pointers (kept as xattrs, which are not listed).
    pub const PARENT: u32 = 0x80;
    /// Metadata directory tree.
    pub const METADIR: u32 = 0x100;
    /// Zoned realtime device.
    pub const ZONED: u32 = 0x200;
}

/// The incompatible features this reader understands.
pub const KNOWN_INCOMPAT: u32 = incompat::FTYPE
    | incompat::SPINODES
    | incompat::META_UUID
    | incompat::BIGTIME
    | incompat::NEEDSREPAIR
    | incompat::NREXT64
    | incompat::EXCHRANGE
    | incompat::PARENT;

/// Name of an incompatible feature bit, as `xfs_info` says it.
pub fn incompat_name(bit: u32) -> String {
    match bit {
        incompat::FTYPE => "ftype".into(),
        incompat::SPINODES => "sparse".into(),
        incompat::META_UUID => "metauuid".into(),
        incompat::BIGTIME => "bigtime".into(),
        incompat::NEEDSREPAIR => "needsrepair".into(),
        incompat::NREXT64 => "nrext64".into(),
        incompat::EXCHRANGE => "exchange".into(),
        incompat::PARENT => "parent".into(),
        incompat::METADIR => "metadir".into(),
        incompat::ZONED => "zoned".into(),
        other => format!("unknown ({other:#x})"),
    }
}

/// The XFS superblock fields vmrescue uses, under their `xfs_format.h` names.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// Filesystem block size in bytes.
    pub sb_blocksize: u32,
    /// Blocks in the data device.
    pub sb_dblocks: u64,
    /// Blocks in the realtime device.
    pub sb_rblocks: u64,
    /// Filesystem UUID.
    pub sb_uuid: [u8; 16],
    /// First block of an internal log; 0 when the log is external.
    pub sb_logstart: u64,
    /// Root directory inode.
    pub sb_rootino: u64,
    /// Blocks per allocation group (the last may be shorter).
    pub sb_agblocks: u32,
    /// Allocation groups.
    pub sb_agcount: u32,
    /// Blocks in the log.
    pub sb_logblocks: u32,
    /// Version (low 4 bits) and `XFS_SB_VERSION_*` feature bits.
    pub sb_versionnum: u16,
    /// Sector size in bytes.
    pub sb_sectsize: u16,
    /// Inode size in bytes.
    pub sb_inodesize: u16,
    /// Inodes per block.
    pub sb_inopblock: u16,
    /// Volume label, NUL-padded.
    pub sb_fname: [u8; 12],
    /// log2 of `sb_blocksize`.
    pub sb_blocklog: u8,
    /// log2 of `sb_sectsize`.
    pub sb_sectlog: u8,
    /// log2 of `sb_inodesize`.
    pub sb_inodelog: u8,
    /// log2 of `sb_inopblock`.
    pub sb_inopblog: u8,
    /// log2 of `sb_agblocks`, rounded up: the AG bits of an inode or block number.
    pub sb_agblklog: u8,
    /// log2 of directory blocks per filesystem block.
    pub sb_dirblklog: u8,
    /// Log sector size in bytes (0 for 512).
    pub sb_logsectsize: u16,
    /// More `XFS_SB_VERSION2_*` feature bits.
    pub sb_features2: u32,
    /// Compatible features (v5).
    pub sb_features_compat: u32,
    /// Features a writer must know (v5).
    pub sb_features_ro_compat: u32,
    /// Features a reader must know (v5).
    pub sb_features_incompat: u32,
    /// Features the log needs to be replayed (v5).
    pub sb_features_log_incompat: u32,
    /// crc32c of the superblock sector (v5).
    pub sb_crc: u32,
}

fn bad(detail: impl Into<String>) -> Error {
    Error::corrupt("xfs superblock", 0, detail)
}

impl Superblock {
    /// Decode and check the superblock in `raw` (at least [`SB_LEN`] bytes);
    /// `volume_size` bounds the filesystem's size only loosely (a truncated
    /// image is reported by the caller, not here).
    pub fn parse(raw: &[u8]) -> Result<Superblock> {
        if raw.len() < SB_LEN {
            return Err(bad("shorter than a superblock"));
        }
        let u16_at = |o: usize| be::u16(raw, o).unwrap_or(0);
        let u32_at = |o: usize| be::u32(raw, o).unwrap_or(0);
        let u64_at = |o: usize| be::u64(raw, o).unwrap_or(0);
        let magic = u32_at(0);
        if magic != XFS_SB_MAGIC {
            return Err(bad(format!(
                "bad magic {magic:#010x} (expected {XFS_SB_MAGIC:#010x}, \"XFSB\")"
            )));
        }
        let mut sb_uuid = [0u8; 16];
        sb_uuid.copy_from_slice(&raw[32..48]);
        let mut sb_fname = [0u8; 12];
        sb_fname.copy_from_slice(&raw[108..120]);
        let sb = Superblock {
            sb_blocksize: u32_at(4),
            sb_dblocks: u64_at(8),
            sb_rblocks: u64_at(16),
            sb_uuid,
            sb_logstart: u64_at(48),
            sb_rootino: u64_at(56),
            sb_agblocks: u32_at(84),
            sb_agcount: u32_at(88),
            sb_logblocks: u32_at(96),
            sb_versionnum: u16_at(100),
            sb_sectsize: u16_at(102),
            sb_inodesize: u16_at(104),
            sb_inopblock: u16_at(106),
            sb_fname,
            sb_blocklog: raw[120],
            sb_sectlog: raw[121],
            sb_inodelog: raw[122],
            sb_inopblog: raw[123],
            sb_agblklog: raw[124],
            sb_dirblklog: raw[192],
            sb_logsectsize: u16_at(194),
            sb_features2: u32_at(200),
            sb_features_compat: u32_at(208),
            sb_features_ro_compat: u32_at(212),
            sb_features_incompat: u32_at(216),
            sb_features_log_incompat: u32_at(220),
            sb_crc: crate::io::le::u32(raw, SB_CRC_OFF).unwrap_or(0),
        };
        sb.check()?;
        Ok(sb)
    }

    fn check(&self) -> Result<()> {
        let v = self.version();
        if v != 4 && v != 5 {
            return Err(bad(format!(
                "version {v} (sb_versionnum {:#06x}): only versions 4 and 5 exist",
                self.sb_versionnum
            )));
        }
        if v == 4 && self.sb_versionnum & version::DIRV2BIT == 0 {
            return Err(Error::Unsupported(
                "xfs version 1 directories (sb_versionnum without DIRV2BIT)".into(),
            ));
        }
        if v == 4 && self.has_features2(features2::CRC) {
            return Err(bad("a version 4 superblock with the crc feature bit"));
        }
        let log2 = |x: u64| x.is_power_of_two().then(|| x.trailing_zeros());
        let bs = u64::from(self.sb_blocksize);
        if !(512..=65536).contains(&bs) || log2(bs) != Some(u32::from(self.sb_blocklog)) {
            return Err(bad(format!(
                "block size {bs} (log {}) is not a power of two from 512 to 65536",
                self.sb_blocklog
            )));
        }
        let ss = u64::from(self.sb_sectsize);
        if !(512..=32768).contains(&ss) || log2(ss) != Some(u32::from(self.sb_sectlog)) || ss > bs {
            return Err(bad(format!(
                "sector size {ss} (log {}) is not a power of two from 512 to 32768 and at most the block size",
                self.sb_sectlog
            )));
        }
        let is = u64::from(self.sb_inodesize);
        if !(256..=2048).contains(&is) || log2(is) != Some(u32::from(self.sb_inodelog)) || is > bs {
            return Err(bad(format!(
                "inode size {is} (log {}) is not a power of two from 256 to 2048 and at most the block size",
                self.sb_inodelog
            )));
        }
        if u64::from(self.sb_inopblock) != bs / is
            || u32::from(self.sb_inopblog) != (bs / is).trailing_zeros()
        {
            return Err(bad(format!(
                "{} inodes per block (log {}) with {bs}-byte blocks and {is}-byte inodes",
                self.sb_inopblock, self.sb_inopblog
            )));
        }
        let agb = u64::from(self.sb_agblocks);
        if agb < 5 || self.sb_agcount == 0 {
            return Err(bad(format!(
                "{} allocation groups of {agb} blocks",
                self.sb_agcount
            )));
        }
        // sb_agblklog is log2 of sb_agblocks, rounded up.
        let want_agblklog = 64 - (agb - 1).leading_zeros();
        if u32::from(self.sb_agblklog) != want_agblklog {
            return Err(bad(format!(
                "sb_agblklog {} does not fit sb_agblocks {agb} (expected {want_agblklog})",
                self.sb_agblklog
            )));
        }
        if u32::from(self.sb_agblklog) + u32::from(self.sb_inopblog) > 32 {
            return Err(bad(
                "inode numbers within an AG would need more than 32 bits",
            ));
        }
        let full = agb * u64::from(self.sb_agcount);
        if self.sb_dblocks > full || self.sb_dblocks <= full - agb {
            return Err(bad(format!(
                "sb_dblocks {} does not fit {} allocation groups of {agb} blocks",
                self.sb_dblocks, self.sb_agcount
            )));
        }
        if u32::from(self.sb_blocklog) + u32::from(self.sb_dirblklog) > 16 {
            return Err(bad(format!(
                "directory blocks of 2^({} + {}) bytes (at most 64 KiB)",
                self.sb_blocklog, self.sb_dirblklog
            )));
        }
        Ok(())
    }

    /// 4 or 5.
    pub fn version(&self) -> u16 {
        self.sb_versionnum & version::NUMBITS
    }

    /// A v5 (crc=1) filesystem.
    pub fn is_v5(&self) -> bool {
        self.version() == 5
    }

    fn has_features2(&self, bit: u32) -> bool {
        self.sb_versionnum & version::MOREBITSBIT != 0 && self.sb_features2 & bit != 0
    }

    /// Whether v5 incompatible feature `bit` is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.is_v5() && self.sb_features_incompat & bit != 0
    }

    /// Directory entries carry a file type byte.
    pub fn has_ftype(&self) -> bool {
        if self.is_v5() {
            self.has_incompat(incompat::FTYPE)
        } else {
            self.has_features2(features2::FTYPE)
        }
    }

    /// Names are compared ASCII-case-insensitively (`-n version=ci`).
    pub fn ascii_ci(&self) -> bool {
        self.sb_versionnum & version::BORGBIT != 0
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        u64::from(self.sb_blocksize)
    }

    /// Directory block size in bytes.
    pub fn dir_block_size(&self) -> u64 {
        self.block_size() << self.sb_dirblklog
    }

    /// The volume label, if any.
    pub fn label(&self) -> Option<String> {
        let end = self.sb_fname.iter().position(|&b| b == 0).unwrap_or(12);
        (end > 0).then(|| String::from_utf8_lossy(&self.sb_fname[..end]).into_owned())
    }

    /// The UUID as text.
    pub fn uuid_string(&self) -> String {
        crate::fs::ext::superblock::uuid_text(&self.sb_uuid)
    }

    /// Filesystem block number `fsbno` (AG number in the high bits) as a
    /// linear block number, or `None` when it lies outside the filesystem.
    pub fn fsb_to_block(&self, fsbno: u64) -> Option<u64> {
        let agno = fsbno >> self.sb_agblklog;
        let agbno = fsbno & ((1u64 << self.sb_agblklog) - 1);
        if agno >= u64::from(self.sb_agcount) || agbno >= u64::from(self.sb_agblocks) {
            return None;
        }
        let b = agno * u64::from(self.sb_agblocks) + agbno;
        (b < self.sb_dblocks).then_some(b)
    }

    /// Byte position of inode `ino`, or `None` when the number cannot exist.
    pub fn inode_pos(&self, ino: u64) -> Option<u64> {
        let agino_log = u32::from(self.sb_agblklog) + u32::from(self.sb_inopblog);
        let agno = ino.checked_shr(agino_log).unwrap_or(0);
        let agino = ino & ((1u64 << agino_log) - 1);
        let agbno = agino >> self.sb_inopblog;
        let index = agino & ((1u64 << self.sb_inopblog) - 1);
        if agno >= u64::from(self.sb_agcount) || agbno >= u64::from(self.sb_agblocks) {
            return None;
        }
        let block = agno * u64::from(self.sb_agblocks) + agbno;
        if block >= self.sb_dblocks || (block == 0 && index == 0) {
            return None;
        }
        Some(block * self.block_size() + index * u64::from(self.sb_inodesize))
    }
}

/// The CRC32C an XFS v5 structure carries at `crc_off` (little-endian), and
/// the one computed over `buf` with that field zeroed: `(stored, computed)`.
pub fn crc_pair(buf: &[u8], crc_off: usize) -> (u32, u32) {
    let Some(stored) = crate::io::le::u32(buf, crc_off) else {
        return (0, 1);
    };
    let mut c = crc32c::crc32c(&buf[..crc_off]);
    c = crc32c::crc32c_append(c, &[0u8; 4]);
    c = crc32c::crc32c_append(c, &buf[crc_off + 4..]);
    (stored, c)
}

/// `Some("stored …, computed …")` when the checksum at `crc_off` is wrong.
pub fn crc_mismatch(buf: &[u8], crc_off: usize) -> Option<String> {
    let (stored, computed) = crc_pair(buf, crc_off);
    (stored != computed)
        .then(|| format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"))
}
