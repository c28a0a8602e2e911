//! Block maps: a fork's extent records, listed in the inode (extents
//! format) or in the leaves of a bmbt btree whose root is in the inode.

use std::collections::HashSet;

use super::Xfs;
use super::inode::{Dinode, Fork, format};
use crate::error::{Error, Result};
use crate::io::be;
use crate::problem::Problem;

/// "BMAP" (v4) and "BMA3" (v5) bmbt block magics.
const XFS_BMAP_MAGIC: u32 = 0x424d_4150;
const XFS_BMAP_CRC_MAGIC: u32 = 0x424d_4133;
/// Long-form btree block header sizes.
const BMBT_HDR_V4: usize = 24;
const BMBT_HDR_V5: usize = 72;
/// Offset of `bb_crc` in a v5 long-form block.
const BMBT_CRC_OFF: usize = 64;
/// Deepest bmbt accepted (the kernel's limit for 64-bit extent counts is 11).
const MAX_LEVELS: u16 = 12;
/// Most extents one fork may have before vmrescue refuses to map it.
pub(super) const MAX_FORK_EXTENTS: usize = 1 << 21;

/// One extent record (`xfs_bmbt_irec`), in filesystem blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bmx {
    /// First logical block of the fork.
    pub off: u64,
    /// First block on disk, as a linear block number (AG boundaries removed).
    pub block: u64,
    /// Length in blocks.
    pub len: u64,
    /// Allocated but never written: reads as zeros.
    pub unwritten: bool,
}

impl Bmx {
    /// First logical block past the extent.
    pub(super) fn end(&self) -> u64 {
        self.off + self.len
    }
}

/// Decode the 16-byte packed extent record at `rec` (`startoff` and
/// `startblock` still in their on-disk forms).
fn unpack(rec: &[u8]) -> (bool, u64, u64, u64) {
    let l0 = be::u64(rec, 0).unwrap_or(0);
    let l1 = be::u64(rec, 8).unwrap_or(0);
    let unwritten = l0 >> 63 != 0;
    let startoff = (l0 & ((1u64 << 63) - 1)) >> 9;
    let startblock = ((l0 & 0x1ff) << 43) | (l1 >> 21);
    let blockcount = l1 & ((1u64 << 21) - 1);
    (unwritten, startoff, startblock, blockcount)
}

/// The extents of `fork` of `inode`, in logical order, checked: inside the
/// filesystem, non-empty, not overlapping.
pub(super) fn extents(fs: &Xfs, inode: &Dinode, fork: Fork) -> Result<Vec<Bmx>> {
    let what = || format!("xfs inode {}: {} fork", inode.ino, fork.name());
    let mut out = Vec::new();
    match inode.fork_format(fork) {
        format::EXTENTS => {
            let raw = inode.fork(fork);
            let n = inode.fork_extents(fork);
            if n > (raw.len() / 16) as u64 {
                return Err(Error::corrupt(
                    what(),
                    inode.pos,
                    format!(
                        "{n} extents do not fit in the {} bytes of the fork",
                        raw.len()
                    ),
                ));
            }
            for i in 0..n as usize {
                push(fs, &mut out, &raw[i * 16..i * 16 + 16], &what, inode.pos)?;
            }
        }
        format::BTREE => {
            let raw = inode.fork(fork);
            let level = be::u16(raw, 0).unwrap_or(0);
            let numrecs = usize::from(be::u16(raw, 2).unwrap_or(0));
            let maxrecs = raw.len().saturating_sub(4) / 16;
            if level == 0 || level > MAX_LEVELS || numrecs == 0 || numrecs > maxrecs {
                return Err(Error::corrupt(
                    what(),
                    inode.pos,
                    format!(
                        "bmbt root with level {level} and {numrecs} records (at most {maxrecs})"
                    ),
                ));
            }
            let ptrs = 4 + maxrecs * 8;
            let mut seen = HashSet::new();
            for i in 0..numrecs {
                let ptr = be::u64(raw, ptrs + i * 8).unwrap_or(0);
                walk(fs, inode, fork, ptr, level - 1, &mut seen, &mut out)?;
            }
        }
        format::LOCAL | format::DEV => {}
        f => {
            return Err(Error::corrupt(
                what(),
                inode.pos,
                format!("unknown fork format {f}"),
            ));
        }
    }
    Ok(out)
}

/// Check and append one packed record.
fn push(
    fs: &Xfs,
    out: &mut Vec<Bmx>,
    rec: &[u8],
    what: &dyn Fn() -> String,
    pos: u64,
) -> Result<()> {
    let (unwritten, off, startblock, len) = unpack(rec);
    let index = out.len();
    if len == 0 {
        return Err(Error::corrupt(
            what(),
            pos,
            format!("extent {index} has no blocks"),
        ));
    }
    let block = fs
        .sb
        .fsb_to_block(startblock)
        .filter(|b| b.checked_add(len).is_some_and(|e| e <= fs.sb.sb_dblocks));
    let Some(block) = block else {
        return Err(Error::corrupt(
            what(),
            pos,
            format!("extent {index}: blocks {startblock}..+{len} lie outside the filesystem"),
        ));
    };
    if let Some(prev) = out.last()
        && off < prev.end()
    {
        return Err(Error::corrupt(
            what(),
            pos,
            format!(
                "extent {index} at file block {off} overlaps or precedes the one before (ending at {})",
                prev.end()
            ),
        ));
    }
    if out.len() >= MAX_FORK_EXTENTS {
        return Err(Error::Unsupported(format!(
            "{}: more than {MAX_FORK_EXTENTS} extents",
            what()
        )));
    }
    out.push(Bmx {
        off,
        block,
        len,
        unwritten,
    });
    Ok(())
}

/// Walk the bmbt block at `fsbno` (expected at `level`), appending leaf records.
fn walk(
    fs: &Xfs,
    inode: &Dinode,
    fork: Fork,
    fsbno: u64,
    level: u16,
    seen: &mut HashSet<u64>,
    out: &mut Vec<Bmx>,
) -> Result<()> {
    let what = || {
        format!(
            "xfs inode {}: {} fork: bmbt block {fsbno}",
            inode.ino,
            fork.name()
        )
    };
    let Some(block) = fs.sb.fsb_to_block(fsbno) else {
        return Err(Error::corrupt(
            what(),
            inode.pos,
            "lies outside the filesystem",
        ));
    };
    let pos = block * fs.block_size;
    if !seen.insert(block) || seen.len() as u64 > fs.sb.sb_dblocks {
        return Err(Error::corrupt(
            what(),
            pos,
            "is reached twice (a loop in the btree)",
        ));
    }
    let buf = fs.read_block(block, "xfs bmbt block")?;
    let v5 = fs.sb.is_v5();
    let magic = be::u32(&buf, 0).unwrap_or(0);
    let want = if v5 {
        XFS_BMAP_CRC_MAGIC
    } else {
        XFS_BMAP_MAGIC
    };
    if magic != want {
        return Err(Error::corrupt(
            what(),
            pos,
            format!("bad magic {magic:#010x} (expected {want:#010x})"),
        ));
    }
    let hdr = if v5 { BMBT_HDR_V5 } else { BMBT_HDR_V4 };
    if v5 {
        if let Some(m) = super::sb::crc_mismatch(&buf, BMBT_CRC_OFF) {
            fs.problem(Problem::at(what().to_string(), pos, m.to_string()));
        }
        let owner = be::u64(&buf, 56).unwrap_or(0);
        if owner != inode.ino {
            return Err(Error::corrupt(
                what(),
                pos,
                format!("belongs to inode {owner}, not {}", inode.ino),
            ));
        }
    }
    let bb_level = be::u16(&buf, 4).unwrap_or(0);
    let numrecs = usize::from(be::u16(&buf, 6).unwrap_or(0));
    if bb_level != level {
        return Err(Error::corrupt(
            what(),
            pos,
            format!("level {bb_level}, expected {level}"),
        ));
    }
    if level == 0 {
        let maxrecs = (buf.len() - hdr) / 16;
        if numrecs == 0 || numrecs > maxrecs {
            return Err(Error::corrupt(
                what(),
                pos,
                format!("{numrecs} records in a leaf (1..={maxrecs})"),
            ));
        }
        for i in 0..numrecs {
            let at = hdr + i * 16;
            push(fs, out, &buf[at..at + 16], &what, pos)?;
        }
        return Ok(());
    }
    let maxrecs = (buf.len() - hdr) / 16;
    if numrecs == 0 || numrecs > maxrecs {
        return Err(Error::corrupt(
            what(),
            pos,
            format!("{numrecs} pointers in a node (1..={maxrecs})"),
        ));
    }
    let ptrs = hdr + maxrecs * 8;
    for i in 0..numrecs {
        let ptr = be::u64(&buf, ptrs + i * 8).unwrap_or(0);
        walk(fs, inode, fork, ptr, level - 1, seen, out)?;
    }
    Ok(())
}

/// The extent of `map` holding logical block `lblk`, or the hole around it
/// as `Err(first block past the hole)` (`u64::MAX` past the last extent).
pub(super) fn find(map: &[Bmx], lblk: u64) -> std::result::Result<&Bmx, u64> {
    let i = map.partition_point(|x| x.end() <= lblk);
    match map.get(i) {
        Some(x) if x.off <= lblk => Ok(x),
        Some(x) => Err(x.off),
        None => Err(u64::MAX),
    }
}
