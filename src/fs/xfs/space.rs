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
//! be read. Blocks are `sb_dblocks` less an internal log. Available blocks
//! leave out the kernel's reserve pool (5 % of the blocks, at most 8192)
//! and its per-AG set-aside (8 blocks each); the per-AG metadata
//! reservations of the free-inode, reverse-mapping and refcount btrees are
//! not counted, so `df` may show a little less.
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
/// `XAGF`.
const AGF_MAGIC: u32 = 0x5841_4746;
/// `XAGI`.
const AGI_MAGIC: u32 = 0x5841_4749;

/// The counters of the superblock: (fdblocks, icount, ifree).
fn sb_counters(fs: &Xfs) -> Option<(u64, u64, u64)> {
    let mut raw = vec![0u8; 512];
    fs.src.read_exact_at(0, &mut raw).ok()?;
    Some((
        be::u64(&raw, 144)?,
        be::u64(&raw, 128)?,
        be::u64(&raw, 136)?,
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

/// `statfs` of `fs`, as close as the on-disk counters tell it.
pub(super) fn space(fs: &Xfs) -> Option<Space> {
    let sb = &fs.sb;
    let (free, icount, ifree) = ag_counters(fs).or_else(|| sb_counters(fs))?;
    let log = if sb.sb_logstart != 0 {
        u64::from(sb.sb_logblocks)
    } else {
        0
    };
    let blocks = sb.sb_dblocks.saturating_sub(log);
    let free = free.min(blocks);
    let resblks = (sb.sb_dblocks / RESBLKS_DIVISOR).min(RESBLKS_MAX);
    let set_aside = u64::from(sb.sb_agcount).saturating_mul(SET_ASIDE_PER_AG);
    let unavailable = resblks.saturating_add(set_aside);
    // Inodes are allocated on demand: the kernel counts as possible
    // inodes those that would fit in the free blocks.
    let per_block = u64::from(sb.sb_inopblock);
    let possible = icount.saturating_add(free.saturating_mul(per_block));
    Some(Space {
        block_size: fs.block_size,
        blocks,
        free_blocks: free.saturating_sub(unavailable),
        avail_blocks: free.saturating_sub(unavailable),
        inodes: possible,
        free_inodes: possible.saturating_sub(icount.saturating_sub(ifree)),
    })
}
