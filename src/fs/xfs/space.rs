//! How full an XFS filesystem is, close to what the kernel tells `statfs`
//! after mounting it (`df`).
//!
//! The superblock's `sb_fdblocks`, `sb_icount` and `sb_ifree` are updated
//! lazily with lazy-count (every v5 filesystem and most v4 ones): the
//! kernel recomputes them at mount from the allocation-group headers when
//! the log was not clean, so the headers are the truer counts. Free blocks
//! are the sum over the AGFs of `agf_freeblks + agf_flcount +
//! agf_btreeblks`, inodes the sums of the AGIs' `agi_count` and
//! `agi_freecount`; the superblock's counters are used when a header cannot
//! be read. Blocks are `sb_dblocks` less an internal log. Free and
//! available blocks (the same for XFS) leave out the kernel's per-AG
//! set-aside (8 blocks each) and the reserve pool it takes at a read-write
//! mount (5 % of the blocks, at most 8192; a read-only mount takes none,
//! so its `df` shows that much more); the per-AG metadata reservations of
//! the free-inode, reverse-mapping and refcount btrees (read-write mounts
//! only) are not counted, so the guest's `df` may show a little less.
//! Inodes are allocated on demand: the total counts those that would fit
//! in the free blocks, up to `sb_imax_pct` % of the filesystem.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::Xfs;
use crate::fs::Space;
use crate::io::be;

/// Most AGs whose headers are summed; past that the superblock's counters are used.
const MAX_AGS: u32 = 1 << 16;
/// The kernel's default reserve pool: 1/20 of the blocks…
const RESBLKS_DIVISOR: u64 = 20;
/// …at most this many.
const RESBLKS_MAX: u64 = 8192;
/// Blocks per AG the allocator keeps aside (`xfs_alloc_set_aside`).
const SET_ASIDE_PER_AG: u64 = 8;
/// Inodes per inode chunk (`XFS_INODES_PER_CHUNK`).
const INODES_PER_CHUNK: u64 = 64;
/// `XAGF`.
const AGF_MAGIC: u32 = 0x5841_4746;
/// `XAGI`.
const AGI_MAGIC: u32 = 0x5841_4749;

/// The counters of the superblock: (fdblocks, icount, ifree), and `sb_imax_pct`.
fn sb_counters(fs: &Xfs) -> Option<((u64, u64, u64), u8)> {
    let mut raw = vec![0u8; 512];
    fs.src.read_exact_at(0, &mut raw).ok()?;
    Some((
        (
            be::u64(&raw, 144)?,
            be::u64(&raw, 128)?,
            be::u64(&raw, 136)?,
        ),
        raw.get(127).copied()?,
    ))
}

/// The AG headers' counters summed: (free blocks, inodes, free inodes).
fn ag_counters(fs: &Xfs) -> Option<(u64, u64, u64)> {
    let sb = &fs.sb;
    if sb.sb_agcount > MAX_AGS {
        return None;
    }
    let ss = u64::from(sb.sb_sectsize);
    let mut buf = vec![0u8; usize::from(sb.sb_sectsize).max(64)];
    let (mut free, mut count, mut ifree) = (0u64, 0u64, 0u64);
    for agno in 0..sb.sb_agcount {
        let start = u64::from(agno)
            .checked_mul(u64::from(sb.sb_agblocks))?
            .checked_mul(fs.block_size)?;
        fs.src
            .read_exact_at(start.checked_add(ss)?, &mut buf)
            .ok()?;
        if be::u32(&buf, 0)? != AGF_MAGIC || be::u32(&buf, 8)? != agno {
            return None;
        }
        let agf = u64::from(be::u32(&buf, 52)?)
            .saturating_add(u64::from(be::u32(&buf, 48)?))
            .saturating_add(u64::from(be::u32(&buf, 60)?));
        free = free.saturating_add(agf);
        fs.src
            .read_exact_at(start.checked_add(ss.checked_mul(2)?)?, &mut buf)
            .ok()?;
        if be::u32(&buf, 0)? != AGI_MAGIC || be::u32(&buf, 8)? != agno {
            return None;
        }
        count = count.saturating_add(u64::from(be::u32(&buf, 16)?));
        ifree = ifree.saturating_add(u64::from(be::u32(&buf, 28)?));
    }
    Some((free, count, ifree))
}

/// The kernel's default reserve pool for a filesystem of `dblocks`
/// (`xfs_default_resblks`): taken from the free blocks when it is mounted
/// read-write.
pub fn default_resblks(dblocks: u64) -> u64 {
    dblocks
        .checked_div(RESBLKS_DIVISOR)
        .unwrap_or(0)
        .min(RESBLKS_MAX)
}

/// Most inodes the filesystem may have (`maxicount`): `sb_imax_pct` % of
/// the blocks, in whole inode chunks; 0 for no limit.
fn max_inodes(fs: &Xfs, imax_pct: u8) -> u64 {
    let sb = &fs.sb;
    let per_block = u64::from(sb.sb_inopblock).max(1);
    let chunk_blocks = INODES_PER_CHUNK
        .max(per_block)
        .checked_div(per_block)
        .unwrap_or(1)
        .max(1);
    let blocks = sb
        .sb_dblocks
        .saturating_mul(u64::from(imax_pct))
        .checked_div(100)
        .unwrap_or(0);
    blocks
        .checked_div(chunk_blocks)
        .unwrap_or(0)
        .saturating_mul(chunk_blocks)
        .saturating_mul(per_block)
}

/// `statfs` of `fs` as the guest's kernel would answer it after mounting it
/// read-write.
pub(super) fn space(fs: &Xfs) -> Option<Space> {
    let sb = &fs.sb;
    let (sb_counts, imax_pct) = sb_counters(fs)?;
    let (free, icount, ifree) = ag_counters(fs).unwrap_or(sb_counts);
    let log = if sb.sb_logstart != 0 {
        u64::from(sb.sb_logblocks)
    } else {
        0
    };
    let blocks = sb.sb_dblocks.saturating_sub(log);
    let set_aside = u64::from(sb.sb_agcount).saturating_mul(SET_ASIDE_PER_AG);
    let unavailable = default_resblks(sb.sb_dblocks).saturating_add(set_aside);
    let bfree = free.saturating_sub(unavailable).min(blocks);
    // Inodes are allocated on demand: those that would fit in the free
    // blocks count, up to the limit.
    let fake = bfree.saturating_mul(u64::from(sb.sb_inopblock));
    let mut files = icount.saturating_add(fake);
    let max = max_inodes(fs, imax_pct);
    if max > 0 {
        files = files.min(max);
    }
    let files = files.max(icount);
    Some(Space {
        block_size: fs.block_size,
        blocks,
        free_blocks: bfree,
        avail_blocks: bfree,
        inodes: files,
        free_inodes: files.saturating_sub(icount.saturating_sub(ifree)),
    })
}
