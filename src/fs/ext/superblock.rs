//! The ext2/3/4 superblock and its feature flags.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::csum;
use crate::error::{Error, Result};
use crate::io::le;

/// Byte offset of the primary superblock in the volume.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock structure.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Most block groups accepted (a 16 TiB filesystem of 4 KiB blocks has 131,072).
pub const MAX_GROUPS: u64 = 1 << 22;
/// `s_magic`.
pub const EXT4_SUPER_MAGIC: u16 = 0xEF53;

/// `s_feature_compat` bits.
pub mod compat {
    /// Directory preallocation.
    pub const DIR_PREALLOC: u32 = 0x1;
    /// AFS magic inodes.
    pub const IMAGIC_INODES: u32 = 0x2;
    /// Has a journal.
    pub const HAS_JOURNAL: u32 = 0x4;
    /// Extended attributes.
    pub const EXT_ATTR: u32 = 0x8;
    /// Reserved GDT blocks for growth.
    pub const RESIZE_INODE: u32 = 0x10;
    /// Hashed b-tree directories.
    pub const DIR_INDEX: u32 = 0x20;
    /// Lazy block groups.
    pub const LAZY_BG: u32 = 0x40;
    /// Exclude inode.
    pub const EXCLUDE_INODE: u32 = 0x80;
    /// Exclude bitmap.
    pub const EXCLUDE_BITMAP: u32 = 0x100;
    /// Backup superblocks only in the groups named by `s_backup_bgs`.
    pub const SPARSE_SUPER2: u32 = 0x200;
    /// Fast commits in the journal.
    pub const FAST_COMMIT: u32 = 0x400;
    /// Inode numbers never change.
    pub const STABLE_INODES: u32 = 0x800;
    /// Orphan file.
    pub const ORPHAN_FILE: u32 = 0x1000;
}

/// `s_feature_incompat` bits.
pub mod incompat {
    /// Compression (never in mainline).
    pub const COMPRESSION: u32 = 0x1;
    /// Directory entries record the file type.
    pub const FILETYPE: u32 = 0x2;
    /// The journal needs recovery.
    pub const RECOVER: u32 = 0x4;
    /// This is an external journal device.
    pub const JOURNAL_DEV: u32 = 0x8;
    /// Meta block groups.
    pub const META_BG: u32 = 0x10;
    /// Extent-mapped files.
    pub const EXTENTS: u32 = 0x40;
    /// 64-bit block numbers and group descriptors.
    pub const BIT64: u32 = 0x80;
    /// Multiple-mount protection.
    pub const MMP: u32 = 0x100;
    /// Flexible block groups.
    pub const FLEX_BG: u32 = 0x200;
    /// Extended attribute values in inodes.
    pub const EA_INODE: u32 = 0x400;
    /// Data in directory entries (Lustre).
    pub const DIRDATA: u32 = 0x1000;
    /// Checksum seed stored in the superblock.
    pub const CSUM_SEED: u32 = 0x2000;
    /// Directories over 2 GiB and three-level htrees.
    pub const LARGEDIR: u32 = 0x4000;
    /// Data in inodes.
    pub const INLINE_DATA: u32 = 0x8000;
    /// Encrypted directories and files.
    pub const ENCRYPT: u32 = 0x10000;
    /// Case-insensitive directories.
    pub const CASEFOLD: u32 = 0x20000;
}

/// `s_feature_ro_compat` bits.
pub mod ro_compat {
    /// Backup superblocks only in some groups.
    pub const SPARSE_SUPER: u32 = 0x1;
    /// Files over 2 GiB.
    pub const LARGE_FILE: u32 = 0x2;
    /// B-tree directories (unused).
    pub const BTREE_DIR: u32 = 0x4;
    /// `i_blocks` in filesystem blocks for huge files.
    pub const HUGE_FILE: u32 = 0x8;
    /// Group descriptor checksums (crc16).
    pub const GDT_CSUM: u32 = 0x10;
    /// No 32,000 subdirectory limit.
    pub const DIR_NLINK: u32 = 0x20;
    /// Large inodes hold extra fields.
    pub const EXTRA_ISIZE: u32 = 0x40;
    /// Snapshots.
    pub const HAS_SNAPSHOT: u32 = 0x80;
    /// Quota inodes.
    pub const QUOTA: u32 = 0x100;
    /// Clusters of blocks.
    pub const BIGALLOC: u32 = 0x200;
    /// crc32c checksums on all metadata.
    pub const METADATA_CSUM: u32 = 0x400;
    /// Replicas.
    pub const REPLICA: u32 = 0x800;
    /// Read-only filesystem image.
    pub const READONLY: u32 = 0x1000;
    /// Project quotas.
    pub const PROJECT: u32 = 0x2000;
    /// Shared blocks.
    pub const SHARED_BLOCKS: u32 = 0x4000;
    /// fs-verity files.
    pub const VERITY: u32 = 0x8000;
    /// The orphan file holds entries.
    pub const ORPHAN_PRESENT: u32 = 0x10000;
}

/// The superblock fields vmrescue uses, under their on-disk names.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// The raw 1024 bytes (kept for checksums and a later in-place write).
    pub raw: Vec<u8>,
    /// Absolute byte position it was read from.
    pub pos: u64,
    /// Inodes in the filesystem.
    pub s_inodes_count: u32,
    /// `s_blocks_count_lo | s_blocks_count_hi << 32` (hi only with 64bit).
    pub s_blocks_count: u64,
    /// Block holding the superblock: 1 with 1 KiB blocks, else 0.
    pub s_first_data_block: u32,
    /// Block size is `1024 << s_log_block_size`.
    pub s_log_block_size: u32,
    /// Cluster size is `1024 << s_log_cluster_size` (bigalloc).
    pub s_log_cluster_size: u32,
    /// Blocks per block group.
    pub s_blocks_per_group: u32,
    /// Inodes per block group.
    pub s_inodes_per_group: u32,
    /// `0xEF53`.
    pub s_magic: u16,
    /// Clean (1), errors detected (2), orphans being recovered (4).
    pub s_state: u16,
    /// Revision: 0 (fixed inode size) or 1 (dynamic).
    pub s_rev_level: u32,
    /// First inode that is not reserved (11 on revision 0).
    pub s_first_ino: u32,
    /// Bytes per on-disk inode (128 on revision 0).
    pub s_inode_size: u16,
    /// Compatible features ([`compat`]).
    pub s_feature_compat: u32,
    /// Features a reader must know ([`incompat`]).
    pub s_feature_incompat: u32,
    /// Features a writer must know ([`ro_compat`]).
    pub s_feature_ro_compat: u32,
    /// Filesystem UUID.
    pub s_uuid: [u8; 16],
    /// Volume label, NUL-padded.
    pub s_volume_name: [u8; 16],
    /// UUID of the external journal's filesystem.
    pub s_journal_uuid: [u8; 16],
    /// Inode of the internal journal (8 by default); 0 when external.
    pub s_journal_inum: u32,
    /// Device number of the external journal.
    pub s_journal_dev: u32,
    /// 1 (`EXT3_JNL_BACKUP_BLOCKS`) when `s_jnl_blocks` holds a backup of the journal inode.
    pub s_jnl_backup_type: u8,
    /// The journal inode's `i_block[0..15]`, then `i_size_high`, then `i_size`.
    pub s_jnl_blocks: [u32; 17],
    /// Seed for directory index hashes.
    pub s_hash_seed: [u32; 4],
    /// Default directory hash (legacy, half MD4, TEA, their unsigned forms, SipHash).
    pub s_def_hash_version: u8,
    /// Bytes per group descriptor with the 64bit feature (else 32).
    pub s_desc_size: u16,
    /// First block group of the meta_bg layout.
    pub s_first_meta_bg: u32,
    /// Every inode has at least this many extra bytes.
    pub s_min_extra_isize: u16,
    /// Miscellaneous flags (signed or unsigned directory hashes, test filesystem).
    pub s_flags: u32,
    /// Metadata checksum algorithm: 1 is crc32c.
    pub s_checksum_type: u8,
    /// The two block groups holding backups with sparse_super2.
    pub s_backup_bgs: [u32; 2],
    /// crc32c seed of metadata checksums with the csum_seed feature.
    pub s_checksum_seed: u32,
    /// Filename charset encoding (casefold; 1 is UTF-8 12.1).
    pub s_encoding: u16,
    /// crc32c of the superblock up to this field.
    pub s_checksum: u32,
}

/// `s_flags`: directory hashes use signed chars.
pub const EXT2_FLAGS_SIGNED_HASH: u32 = 0x1;
/// `s_flags`: directory hashes use unsigned chars.
pub const EXT2_FLAGS_UNSIGNED_HASH: u32 = 0x2;

impl Superblock {
    /// Decode and sanity-check a superblock read at byte `pos` of a volume of `volume_size` bytes.
    pub fn parse(raw: &[u8], pos: u64, volume_size: u64) -> Result<Superblock> {
        const S: &str = "ext superblock";
        if raw.len() < SUPERBLOCK_SIZE {
            return Err(Error::corrupt(S, pos, "shorter than 1024 bytes"));
        }
        let u16_at = |o: usize| le::u16(raw, o).unwrap_or(0);
        let u32_at = |o: usize| le::u32(raw, o).unwrap_or(0);
        let u8_at = |o: usize| raw.get(o).copied().unwrap_or(0);
        let bytes16 = |o: usize| -> [u8; 16] {
            raw.get(o..)
                .and_then(|b| b.first_chunk::<16>())
                .copied()
                .unwrap_or([0; 16])
        };
        let s_magic = u16_at(0x38);
        if s_magic != EXT4_SUPER_MAGIC {
            return Err(Error::corrupt(
                S,
                pos.saturating_add(0x38),
                format!("bad s_magic {s_magic:#06x} (expected 0xef53)"),
            ));
        }
        let s_feature_incompat = u32_at(0x60);
        let is64 = s_feature_incompat & incompat::BIT64 != 0;
        let s_blocks_count = u64::from(u32_at(0x4))
            | if is64 {
                u64::from(u32_at(0x150)) << 32
            } else {
                0
            };
        let s_rev_level = u32_at(0x4C);
        let (s_first_ino, s_inode_size) = if s_rev_level == 0 {
            (11, 128)
        } else {
            (u32_at(0x54), u16_at(0x58))
        };
        let sb = Superblock {
            raw: raw.get(..SUPERBLOCK_SIZE).unwrap_or_default().to_vec(),
            pos,
            s_inodes_count: u32_at(0x0),
            s_blocks_count,
            s_first_data_block: u32_at(0x14),
            s_log_block_size: u32_at(0x18),
            s_log_cluster_size: u32_at(0x1C),
            s_blocks_per_group: u32_at(0x20),
            s_inodes_per_group: u32_at(0x28),
            s_magic,
            s_state: u16_at(0x3A),
            s_rev_level,
            s_first_ino,
            s_inode_size,
            s_feature_compat: u32_at(0x5C),
            s_feature_incompat,
            s_feature_ro_compat: u32_at(0x64),
            s_uuid: bytes16(0x68),
            s_volume_name: bytes16(0x78),
            s_journal_uuid: bytes16(0xD0),
            s_journal_inum: u32_at(0xE0),
            s_journal_dev: u32_at(0xE4),
            s_jnl_backup_type: u8_at(0xFD),
            s_jnl_blocks: std::array::from_fn(|i| {
                u32_at(i.saturating_mul(4).saturating_add(0x10C))
            }),
            s_hash_seed: [u32_at(0xEC), u32_at(0xF0), u32_at(0xF4), u32_at(0xF8)],
            s_def_hash_version: u8_at(0xFC),
            s_desc_size: u16_at(0xFE),
            s_first_meta_bg: u32_at(0x104),
            s_min_extra_isize: u16_at(0x15C),
            s_flags: u32_at(0x160),
            s_checksum_type: u8_at(0x175),
            s_backup_bgs: [u32_at(0x24C), u32_at(0x250)],
            s_checksum_seed: u32_at(0x270),
            s_encoding: u16_at(0x27C),
            s_checksum: u32_at(0x3FC),
        };
        sb.check(volume_size)?;
        Ok(sb)
    }

    fn check(&self, volume_size: u64) -> Result<()> {
        let bad = |off: usize, detail: String| {
            Err(Error::corrupt(
                "ext superblock",
                self.pos.saturating_add(off as u64),
                detail,
            ))
        };
        if self.s_log_block_size > 6 {
            return bad(
                0x18,
                format!(
                    "s_log_block_size {} gives blocks over 64 KiB",
                    self.s_log_block_size
                ),
            );
        }
        let bs = self.block_size();
        if self.s_blocks_per_group == 0 {
            return bad(
                0x20,
                format!(
                    "s_blocks_per_group {} is impossible",
                    self.s_blocks_per_group
                ),
            );
        }
        if self.s_inodes_per_group == 0 || u64::from(self.s_inodes_per_group) > bs.saturating_mul(8)
        {
            return bad(
                0x28,
                format!(
                    "s_inodes_per_group {} is impossible for {bs}-byte blocks",
                    self.s_inodes_per_group
                ),
            );
        }
        let isz = u64::from(self.s_inode_size);
        if isz < 128 || !isz.is_power_of_two() || isz > bs {
            return bad(
                0x58,
                format!("s_inode_size {isz} is not a power of two from 128 to the block size"),
            );
        }
        if self.s_blocks_count == 0 || u64::from(self.s_first_data_block) >= self.s_blocks_count {
            return bad(
                0x4,
                format!(
                    "s_blocks_count {} with s_first_data_block {}",
                    self.s_blocks_count, self.s_first_data_block
                ),
            );
        }
        // Every byte position computed from a valid block number must fit.
        if self
            .s_blocks_count
            .checked_mul(bs)
            .is_none_or(|b| b > i64::MAX as u64)
        {
            return bad(
                0x4,
                format!(
                    "s_blocks_count {} of {bs} bytes overflows",
                    self.s_blocks_count
                ),
            );
        }
        if self.is_64bit() {
            let ds = self.s_desc_size;
            if !(64..=1024).contains(&ds) || !ds.is_power_of_two() {
                return bad(
                    0xFE,
                    format!("s_desc_size {ds} with 64bit (expected 64..1024)"),
                );
            }
        }
        let groups = self.group_count();
        if groups == 0 {
            return bad(0x4, "no block groups".into());
        }
        // The descriptors of all groups must fit in the volume (and in memory).
        if groups.saturating_mul(self.desc_size()) > volume_size || groups > MAX_GROUPS {
            return bad(
                0x4,
                format!("{groups} block groups cannot fit in a volume of {volume_size} bytes"),
            );
        }
        if u64::from(self.s_inodes_count)
            > groups.saturating_mul(u64::from(self.s_inodes_per_group))
        {
            return bad(
                0x0,
                format!(
                    "s_inodes_count {} exceeds {groups} groups of {} inodes",
                    self.s_inodes_count, self.s_inodes_per_group
                ),
            );
        }
        if self.s_inodes_count < 11 {
            return bad(
                0x0,
                format!("s_inodes_count {} is too small", self.s_inodes_count),
            );
        }
        Ok(())
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        1024u64 << self.s_log_block_size
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u64 {
        let data = self
            .s_blocks_count
            .saturating_sub(u64::from(self.s_first_data_block));
        data.div_ceil(u64::from(self.s_blocks_per_group))
    }

    /// Size of one group descriptor.
    pub fn desc_size(&self) -> u64 {
        if self.is_64bit() {
            u64::from(self.s_desc_size)
        } else {
            32
        }
    }

    /// Whether an incompat feature bit is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.s_feature_incompat & bit != 0
    }
    /// Whether a ro_compat feature bit is set.
    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.s_feature_ro_compat & bit != 0
    }
    /// Whether a compat feature bit is set.
    pub fn has_compat(&self, bit: u32) -> bool {
        self.s_feature_compat & bit != 0
    }
    /// 64-bit block numbers.
    pub fn is_64bit(&self) -> bool {
        self.has_incompat(incompat::BIT64)
    }
    /// crc32c metadata checksums.
    pub fn has_metadata_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::METADATA_CSUM)
    }
    /// crc16 group descriptor checksums (without metadata_csum).
    pub fn has_gdt_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::GDT_CSUM) && !self.has_metadata_csum()
    }
    /// Either kind of group descriptor checksum (and so `bg_itable_unused` is valid).
    pub fn has_group_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::GDT_CSUM) || self.has_metadata_csum()
    }

    /// The seed of every metadata checksum: `s_checksum_seed` with
    /// `csum_seed`, else `crc32c(~0, s_uuid)`.
    pub fn csum_seed(&self) -> u32 {
        if self.has_incompat(incompat::CSUM_SEED) {
            self.s_checksum_seed
        } else {
            csum::crc32c(!0, &self.s_uuid)
        }
    }

    /// The superblock checksum as it should be: `crc32c(~0, bytes before s_checksum)`.
    pub fn computed_checksum(&self) -> u32 {
        csum::crc32c(!0, self.raw.get(..0x3FC).unwrap_or_default())
    }

    /// Whether group `group` holds a superblock backup (and so a GDT copy).
    pub fn group_has_super(&self, group: u64) -> bool {
        if group == 0 {
            return true;
        }
        if self.has_compat(compat::SPARSE_SUPER2) {
            let [first, second] = self.s_backup_bgs;
            return group == u64::from(first) || group == u64::from(second);
        }
        if group <= 1 || !self.has_ro_compat(ro_compat::SPARSE_SUPER) {
            return true;
        }
        if group & 1 == 0 {
            return false;
        }
        [3u64, 5, 7].iter().any(|&base| {
            let mut p = base;
            while p < group {
                match p.checked_mul(base) {
                    Some(next) => p = next,
                    None => return false,
                }
            }
            p == group
        })
    }

    /// First block of group `group`.
    pub fn group_first_block(&self, group: u64) -> u64 {
        group
            .saturating_mul(u64::from(self.s_blocks_per_group))
            .saturating_add(u64::from(self.s_first_data_block))
    }

    /// `s_r_blocks_count_lo | s_r_blocks_count_hi << 32` (hi only with
    /// 64bit): blocks only root may allocate.
    pub fn s_r_blocks_count(&self) -> u64 {
        let u32_at = |o: usize| u64::from(le::u32(&self.raw, o).unwrap_or(0));
        u32_at(0x8)
            | if self.is_64bit() {
                u32_at(0x154) << 32
            } else {
                0
            }
    }

    /// `s_reserved_gdt_blocks`: blocks kept after the group descriptors for growth.
    pub fn s_reserved_gdt_blocks(&self) -> u16 {
        le::u16(&self.raw, 0xCE).unwrap_or(0)
    }

    /// `s_overhead_clusters`: clusters the filesystem's own structures take,
    /// when mke2fs recorded it (0: the kernel counts them at mount).
    pub fn s_overhead_clusters(&self) -> u32 {
        le::u32(&self.raw, 0x248).unwrap_or(0)
    }

    /// Filesystem UUID in the usual text form.
    pub fn uuid_string(&self) -> String {
        uuid_text(&self.s_uuid)
    }

    /// The volume label, if any.
    pub fn label(&self) -> Option<String> {
        let name = self
            .s_volume_name
            .split(|&b| b == 0)
            .next()
            .unwrap_or_default();
        (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
    }
}

/// A 16-byte UUID as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Names of feature bits, for messages.
pub fn incompat_name(bit: u32) -> String {
    match bit {
        incompat::COMPRESSION => "compression".into(),
        incompat::FILETYPE => "filetype".into(),
        incompat::RECOVER => "needs_recovery".into(),
        incompat::JOURNAL_DEV => "journal_dev".into(),
        incompat::META_BG => "meta_bg".into(),
        incompat::EXTENTS => "extent".into(),
        incompat::BIT64 => "64bit".into(),
        incompat::MMP => "mmp".into(),
        incompat::FLEX_BG => "flex_bg".into(),
        incompat::EA_INODE => "ea_inode".into(),
        incompat::DIRDATA => "dirdata".into(),
        incompat::CSUM_SEED => "metadata_csum_seed".into(),
        incompat::LARGEDIR => "large_dir".into(),
        incompat::INLINE_DATA => "inline_data".into(),
        incompat::ENCRYPT => "encrypt".into(),
        incompat::CASEFOLD => "casefold".into(),
        other => format!("unknown incompat feature {other:#x}"),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sb(ro_compat: u32) -> Superblock {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        raw[0x38..0x3A].copy_from_slice(&EXT4_SUPER_MAGIC.to_le_bytes());
        raw[0x0..0x4].copy_from_slice(&8192u32.to_le_bytes()); // inodes
        raw[0x4..0x8].copy_from_slice(&(8192u32 * 64).to_le_bytes()); // blocks
        raw[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes()); // blocks per group
        raw[0x28..0x2C].copy_from_slice(&128u32.to_le_bytes()); // inodes per group
        raw[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes()); // rev 1
        raw[0x54..0x58].copy_from_slice(&11u32.to_le_bytes());
        raw[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        raw[0x64..0x68].copy_from_slice(&ro_compat.to_le_bytes());
        Superblock::parse(&raw, SUPERBLOCK_OFFSET, 1 << 30).unwrap()
    }

    #[test]
    fn backups_live_in_groups_0_1_and_powers_of_3_5_7() {
        let s = sb(ro_compat::SPARSE_SUPER);
        let with: Vec<u64> = (0..64).filter(|&g| s.group_has_super(g)).collect();
        assert_eq!(with, vec![0, 1, 3, 5, 7, 9, 25, 27, 49]);
        let all = sb(0);
        assert!((0..64).all(|g| all.group_has_super(g)));
        assert_eq!(s.group_count(), 64);
        assert_eq!(s.block_size(), 1024);
    }

    #[test]
    fn nonsense_is_refused_with_positions() {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        let e = Superblock::parse(&raw, 1024, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ext superblock at byte 1080: bad s_magic"),
            "{e}"
        );
        raw[0x38..0x3A].copy_from_slice(&EXT4_SUPER_MAGIC.to_le_bytes());
        raw[0x18] = 9;
        let e = Superblock::parse(&raw, 1024, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("byte 1048"), "{e}");
        // Block numbers whose byte positions would overflow.
        let mut raw = sb(0).raw;
        raw[0x60..0x64].copy_from_slice(&incompat::BIT64.to_le_bytes());
        raw[0xFE..0x100].copy_from_slice(&64u16.to_le_bytes());
        raw[0x150..0x154].copy_from_slice(&u32::MAX.to_le_bytes());
        raw[0x20..0x24].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = Superblock::parse(&raw, 1024, u64::MAX)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
    }
}
