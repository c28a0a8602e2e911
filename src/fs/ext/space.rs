//! How full an ext2/3/4 filesystem is, as the kernel's ext4 driver tells
//! `statfs` right after mounting it (what `df` shows):
//!
//! * free blocks and inodes: the sums of the group descriptors'
//!   `bg_free_blocks_count` and `bg_free_inodes_count` (the counters the
//!   driver starts from at mount; the superblock's copies are only updated
//!   lazily);
//! * blocks: `s_blocks_count` less the filesystem's own overhead —
//!   `s_overhead_clusters` when mke2fs recorded it, else counted as the
//!   driver counts it: the blocks before `s_first_data_block`, in each
//!   group its superblock backup and descriptor blocks, two bitmaps and the
//!   inode table, and the internal journal;
//! * available: free less `s_r_blocks_count` (root's reserve) and the
//!   driver's own reserve for extent-mapped filesystems (2 % of the
//!   clusters, at most 4096 clusters), never below zero.
//!
//! With bigalloc the counts are clusters turned into blocks, and the
//! overhead, when not recorded, is counted per group in whole clusters (an
//! estimate: metadata blocks of several groups may share a cluster).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::Ext;
use super::superblock::{Superblock, incompat, ro_compat};
use crate::fs::Space;

/// The driver's reserve for extent-mapped filesystems: 1/50 of the clusters…
const RESV_DIVISOR: u64 = 50;
/// …and at most this many clusters.
const RESV_MAX_CLUSTERS: u64 = 4096;

/// `statfs` of `ext` as the kernel would answer it after mounting.
pub(super) fn space(ext: &Ext) -> Space {
    let sb = &ext.sb;
    let bs = ext.block_size;
    let cluster_bits = if sb.has_ro_compat(ro_compat::BIGALLOC) {
        sb.s_log_cluster_size.saturating_sub(sb.s_log_block_size)
    } else {
        0
    };
    // Clusters to blocks.
    let c2b = |c: u64| c.checked_shl(cluster_bits).unwrap_or(u64::MAX);
    let free_clusters: u64 = ext
        .groups
        .iter()
        .map(|g| u64::from(g.bg_free_blocks_count))
        .fold(0u64, u64::saturating_add);
    let free_inodes: u64 = ext
        .groups
        .iter()
        .map(|g| u64::from(g.bg_free_inodes_count))
        .fold(0u64, u64::saturating_add);
    let total = sb.s_blocks_count;
    let overhead_clusters = match u64::from(sb.s_overhead_clusters()) {
        0 => counted_overhead(ext, cluster_bits),
        o => o,
    };
    let overhead = c2b(overhead_clusters);
    let overhead = if overhead >= total { 0 } else { overhead };
    let blocks = total.saturating_sub(overhead);
    let free = c2b(free_clusters).min(blocks);
    let resv = if sb.has_incompat(incompat::EXTENTS) {
        c2b(total
            .checked_shr(cluster_bits)
            .unwrap_or(0)
            .checked_div(RESV_DIVISOR)
            .unwrap_or(0)
            .min(RESV_MAX_CLUSTERS))
    } else {
        0
    };
    let reserved = sb.s_r_blocks_count().saturating_add(resv);
    Space {
        block_size: bs,
        blocks,
        free_blocks: free,
        avail_blocks: free.saturating_sub(reserved),
        inodes: u64::from(sb.s_inodes_count),
        free_inodes: free_inodes.min(u64::from(sb.s_inodes_count)),
    }
}

/// The overhead in clusters, counted as `ext4_calculate_overhead` does when
/// the superblock does not record it.
fn counted_overhead(ext: &Ext, cluster_bits: u32) -> u64 {
    let sb = &ext.sb;
    let bs = ext.block_size;
    let b2c = |b: u64| {
        let per = 1u64.checked_shl(cluster_bits).unwrap_or(1);
        b.div_ceil(per.max(1))
    };
    let groups = sb.group_count();
    let per_block = bs.checked_div(sb.desc_size()).unwrap_or(1).max(1);
    let gdb_count = groups.div_ceil(per_block);
    let inodes_per_block = bs
        .checked_div(u64::from(sb.s_inode_size))
        .unwrap_or(1)
        .max(1);
    let itb = u64::from(sb.s_inodes_per_group).div_ceil(inodes_per_block);
    let mut total = b2c(u64::from(sb.s_first_data_block));
    for g in 0..groups {
        let blocks = base_meta_blocks(sb, g, per_block, gdb_count)
            .saturating_add(itb)
            .saturating_add(2);
        total = total.saturating_add(b2c(blocks));
    }
    total.saturating_add(b2c(journal_blocks(ext)))
}

/// Superblock backup and descriptor blocks in group `g` (`ext4_bg_has_super`
/// plus `ext4_bg_num_gdb`).
fn base_meta_blocks(sb: &Superblock, g: u64, per_block: u64, gdb_count: u64) -> u64 {
    let has_super = sb.group_has_super(g);
    let first_meta = u64::from(sb.s_first_meta_bg);
    let meta_bg = sb.has_incompat(incompat::META_BG);
    let gdb = if !meta_bg || g < first_meta.saturating_mul(per_block) {
        match (has_super, meta_bg) {
            (false, _) => 0,
            (true, true) => first_meta,
            (true, false) => gdb_count,
        }
    } else {
        // One descriptor block in the first, second and last group of each meta group.
        let first = g
            .checked_div(per_block)
            .unwrap_or(0)
            .saturating_mul(per_block);
        let last = first.saturating_add(per_block.saturating_sub(1));
        u64::from(g == first || g == first.saturating_add(1) || g == last)
    };
    u64::from(has_super).saturating_add(gdb)
}

/// Blocks of the internal journal (its inode's size in blocks); 0 without
/// one or when it cannot be read.
fn journal_blocks(ext: &Ext) -> u64 {
    let sb = &ext.sb;
    if !sb.has_compat(super::superblock::compat::HAS_JOURNAL) || sb.s_journal_inum == 0 {
        return 0;
    }
    ext.read_inode(sb.s_journal_inum)
        .map_or(0, |i| i.i_size.checked_div(ext.block_size).unwrap_or(0))
}
