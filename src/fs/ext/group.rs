//! Block group descriptors: where each group's inode table is, and their checksums.

use super::csum;
use super::superblock::Superblock;
use crate::io::le;

/// Group flag: the inode table and bitmap are not initialised.
pub const EXT4_BG_INODE_UNINIT: u16 = 0x1;
/// Group flag: the block bitmap is not initialised.
pub const EXT4_BG_BLOCK_UNINIT: u16 = 0x2;
/// Group flag: the inode table is zeroed.
pub const EXT4_BG_INODE_ZEROED: u16 = 0x4;
/// Offset of `bg_checksum` in a descriptor.
pub const BG_CHECKSUM: usize = 0x1E;

/// The descriptor fields vmrescue keeps for each group.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupDesc {
    /// `bg_inode_table_lo | bg_inode_table_hi << 32`.
    pub bg_inode_table: u64,
    /// `bg_flags`.
    pub bg_flags: u16,
    /// `bg_itable_unused_lo | bg_itable_unused_hi << 16` (valid with group checksums).
    pub bg_itable_unused: u32,
    /// `bg_free_blocks_count_lo | bg_free_blocks_count_hi << 16`: free
    /// clusters (blocks without bigalloc) in the group.
    pub bg_free_blocks_count: u32,
    /// `bg_free_inodes_count_lo | bg_free_inodes_count_hi << 16`.
    pub bg_free_inodes_count: u32,
}

impl GroupDesc {
    /// Decode one descriptor of `desc_size` bytes.
    pub fn parse(raw: &[u8], is64: bool) -> GroupDesc {
        let u16_at = |o: usize| le::u16(raw, o).unwrap_or(0);
        let u32_at = |o: usize| le::u32(raw, o).unwrap_or(0);
        let (table_hi, unused_hi, free_blocks_hi, free_inodes_hi) = if is64 && raw.len() >= 64 {
            (
                u64::from(u32_at(0x28)),
                u32::from(u16_at(0x32)),
                u32::from(u16_at(0x2C)),
                u32::from(u16_at(0x2E)),
            )
        } else {
            (0, 0, 0, 0)
        };
        GroupDesc {
            bg_inode_table: u64::from(u32_at(0x8)) | table_hi << 32,
            bg_flags: u16_at(0x12),
            bg_itable_unused: u32::from(u16_at(0x1C)) | unused_hi << 16,
            bg_free_blocks_count: u32::from(u16_at(0xC)) | free_blocks_hi << 16,
            bg_free_inodes_count: u32::from(u16_at(0xE)) | free_inodes_hi << 16,
        }
    }
}

/// The checksum descriptor `raw` of group `group` should carry, or `None`
/// when the filesystem has neither metadata_csum nor gdt_csum.
pub fn desc_checksum(sb: &Superblock, group: u32, raw: &[u8]) -> Option<u16> {
    let le_group = group.to_le_bytes();
    let end = raw.len();
    if sb.has_metadata_csum() {
        let mut c = csum::crc32c(sb.csum_seed(), &le_group);
        c = csum::crc32c(c, &raw[..BG_CHECKSUM]);
        c = csum::crc32c(c, &[0, 0]);
        if end > BG_CHECKSUM + 2 {
            c = csum::crc32c(c, &raw[BG_CHECKSUM + 2..]);
        }
        return Some((c & 0xffff) as u16);
    }
    if sb.has_gdt_csum() {
        let mut c = csum::crc16(!0, &sb.s_uuid);
        c = csum::crc16(c, &le_group);
        c = csum::crc16(c, &raw[..BG_CHECKSUM]);
        if sb.is_64bit() && end > BG_CHECKSUM + 2 {
            c = csum::crc16(c, &raw[BG_CHECKSUM + 2..]);
        }
        return Some(c);
    }
    None
}

/// Block number holding group-descriptor block `nr` (the descriptors of
/// groups `nr * per_block ..`), as the kernel's `descriptor_loc` finds it.
pub fn descriptor_block(sb: &Superblock, nr: u64) -> u64 {
    let first = u64::from(sb.s_first_data_block);
    let meta_bg = sb.has_incompat(super::superblock::incompat::META_BG);
    if !meta_bg || nr < u64::from(sb.s_first_meta_bg) {
        // The table starts in the block after the one holding the superblock
        // in use (the primary or a backup). With 1 KiB blocks the primary is
        // block 1 even when s_first_data_block is 0 (bigalloc), so this is
        // not the group's first block + 1.
        return sb.pos / sb.block_size() + nr + 1;
    }
    let per_block = sb.block_size() / sb.desc_size();
    let bg = per_block * nr;
    let mut has_super = u64::from(sb.group_has_super(bg));
    if sb.block_size() == 1024 && nr == 0 && first == 0 {
        has_super += 1;
    }
    sb.group_first_block(bg) + has_super
}
