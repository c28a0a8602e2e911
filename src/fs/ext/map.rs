//! Mapping a file's logical blocks to disk blocks: extent trees (ext4) and
//! block maps (ext2/3: direct, indirect, double and triple indirect).

use std::collections::HashSet;

use super::inode::{self, Inode};
use super::{Ext, csum};
use crate::error::{Error, Result};
use crate::io::le;

/// `eh_magic` of an extent tree node.
pub const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// Deepest extent tree the kernel builds.
pub const EXT4_MAX_EXTENT_DEPTH: u16 = 5;
/// `ee_len` above this marks an unwritten (preallocated) extent.
pub const EXT_INIT_MAX_LEN: u16 = 32768;
/// Highest logical block an extent-mapped file can have, plus one.
const EXTENT_LBLK_END: u64 = 1 << 32;

/// What a run of logical blocks holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Nothing allocated: reads as zeros.
    Hole,
    /// Data starting at this physical block.
    Data(u64),
    /// Allocated but never written, starting at this physical block: reads as zeros.
    Unwritten(u64),
}

/// Logical blocks `lblk..lblk + len` of a file, all of one kind and (for
/// data) physically contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First logical block.
    pub lblk: u64,
    /// Number of blocks (at least 1).
    pub len: u64,
    /// What they hold.
    pub kind: RunKind,
}

/// An extent node's header, checked.
struct Header {
    entries: usize,
    max: usize,
    depth: u16,
}

fn parse_header(node: &[u8], pos: u64, want_depth: Option<u16>) -> Result<Header> {
    const S: &str = "ext4 extent node";
    let magic = le::u16(node, 0).unwrap_or(0);
    if magic != EXT4_EXT_MAGIC {
        return Err(Error::corrupt(
            S,
            pos,
            format!("bad eh_magic {magic:#06x} (expected 0xf30a)"),
        ));
    }
    let entries = usize::from(le::u16(node, 2).unwrap_or(0));
    let max = usize::from(le::u16(node, 4).unwrap_or(0));
    let depth = le::u16(node, 6).unwrap_or(0);
    if entries > max || 12 + 12 * max > node.len() {
        return Err(Error::corrupt(
            S,
            pos,
            format!(
                "eh_entries {entries} / eh_max {max} do not fit a {}-byte node",
                node.len()
            ),
        ));
    }
    if depth > EXT4_MAX_EXTENT_DEPTH || want_depth.is_some_and(|d| d != depth) {
        return Err(Error::corrupt(
            S,
            pos + 6,
            format!(
                "eh_depth {depth} (expected {})",
                want_depth.map_or("at most 5".to_string(), |d| d.to_string())
            ),
        ));
    }
    Ok(Header {
        entries,
        max,
        depth,
    })
}

/// A leaf entry: (ee_block, len, unwritten, start).
fn leaf_entry(node: &[u8], i: usize) -> (u64, u64, bool, u64) {
    let o = 12 + 12 * i;
    let ee_block = u64::from(le::u32(node, o).unwrap_or(0));
    let raw_len = le::u16(node, o + 4).unwrap_or(0);
    let (len, unwritten) = if raw_len > EXT_INIT_MAX_LEN {
        (raw_len - EXT_INIT_MAX_LEN, true)
    } else {
        (raw_len, false)
    };
    let start = u64::from(le::u32(node, o + 8).unwrap_or(0))
        | u64::from(le::u16(node, o + 6).unwrap_or(0)) << 32;
    (ee_block, u64::from(len), unwritten, start)
}

/// An index entry: (ei_block, leaf).
fn index_entry(node: &[u8], i: usize) -> (u64, u64) {
    let o = 12 + 12 * i;
    let ei_block = u64::from(le::u32(node, o).unwrap_or(0));
    let leaf = u64::from(le::u32(node, o + 4).unwrap_or(0))
        | u64::from(le::u16(node, o + 8).unwrap_or(0)) << 32;
    (ei_block, leaf)
}

/// Index of the last entry whose first logical block is `<= lblk`, if any.
fn last_at_or_before(count: usize, lblk: u64, first_of: impl Fn(usize) -> u64) -> Option<usize> {
    // Entries are sorted by their first block; binary search.
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if first_of(mid) <= lblk {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

impl Ext {
    /// Read extent tree node at `block` (a child of inode `inode`), checking its tail checksum.
    fn extent_node(&self, inode: &Inode, block: u64, at: u64) -> Result<Vec<u8>> {
        self.check_block(block, 1, "ext4 extent index", at)?;
        let node = self.read_block(block, "ext4 extent node")?;
        if self.sb.has_metadata_csum() {
            let max = usize::from(le::u16(&node, 4).unwrap_or(0));
            let tail = 12 + 12 * max;
            if tail + 4 <= node.len() {
                let seed = inode::inode_csum_seed(self.csum_seed, inode.ino, inode.i_generation);
                let want = csum::crc32c(seed, &node[..tail]);
                let stored = le::u32(&node, tail).unwrap_or(0);
                if want != stored && le::u16(&node, 0) == Some(EXT4_EXT_MAGIC) {
                    self.problem(format!(
                        "ext4 extent node of inode {} at byte {}: checksum mismatch (stored {stored:#010x}, computed {want:#010x})",
                        inode.ino,
                        block * self.block_size + tail as u64
                    ));
                }
            }
        }
        Ok(node)
    }

    /// The run holding logical block `lblk` of `inode` (starting at `lblk`).
    pub fn map_block(&self, inode: &Inode, lblk: u64) -> Result<Run> {
        if inode.has_flag(inode::flags::EXTENTS) {
            self.extent_lookup(inode, lblk)
        } else {
            self.blockmap_lookup(inode, lblk)
        }
    }

    fn extent_lookup(&self, inode: &Inode, lblk: u64) -> Result<Run> {
        if lblk >= EXTENT_LBLK_END {
            return Ok(Run {
                lblk,
                len: u64::MAX - lblk,
                kind: RunKind::Hole,
            });
        }
        let mut node = inode.i_block().to_vec();
        let mut pos = inode.pos + inode::I_BLOCK as u64;
        let mut want_depth = None;
        let mut upper = EXTENT_LBLK_END;
        for _ in 0..=EXT4_MAX_EXTENT_DEPTH {
            let h = parse_header(&node, pos, want_depth)?;
            if h.depth == 0 {
                let found = last_at_or_before(h.entries, lblk, |i| leaf_entry(&node, i).0);
                if let Some(i) = found {
                    let (first, len, unwritten, start) = leaf_entry(&node, i);
                    if len > 0 && lblk < first + len {
                        let epos = pos + 12 + 12 * i as u64;
                        self.check_block(start, len, "ext4 extent", epos)?;
                        let off = lblk - first;
                        let run_len = (first + len).min(upper.max(lblk + 1)) - lblk;
                        let p = start + off;
                        return Ok(Run {
                            lblk,
                            len: run_len.max(1),
                            kind: if unwritten {
                                RunKind::Unwritten(p)
                            } else {
                                RunKind::Data(p)
                            },
                        });
                    }
                }
                let next = found.map_or(0, |i| i + 1);
                let hole_end = if next < h.entries {
                    leaf_entry(&node, next).0.min(upper)
                } else {
                    upper
                };
                return Ok(Run {
                    lblk,
                    len: hole_end.saturating_sub(lblk).max(1),
                    kind: RunKind::Hole,
                });
            }
            let Some(i) = last_at_or_before(h.entries, lblk, |i| index_entry(&node, i).0) else {
                let end = if h.entries > 0 {
                    index_entry(&node, 0).0.min(upper)
                } else {
                    upper
                };
                return Ok(Run {
                    lblk,
                    len: end.saturating_sub(lblk).max(1),
                    kind: RunKind::Hole,
                });
            };
            if i + 1 < h.entries {
                upper = upper.min(index_entry(&node, i + 1).0);
            }
            let (_, child) = index_entry(&node, i);
            let at = pos + 12 + 12 * i as u64;
            node = self.extent_node(inode, child, at)?;
            pos = child * self.block_size;
            want_depth = Some(h.depth - 1);
            let _ = h.max;
        }
        Err(Error::corrupt(
            "ext4 extent node",
            pos,
            "tree deeper than 5 levels",
        ))
    }

    fn blockmap_lookup(&self, inode: &Inode, lblk: u64) -> Result<Run> {
        const S: &str = "ext2 block map";
        let p = self.block_size / 4;
        let ptr_at = |k: usize| u64::from(inode.i_block_u32(k));
        if lblk < 12 {
            let k = lblk as usize;
            let first = ptr_at(k);
            let mut len = 1u64;
            while k + (len as usize) < 12 {
                let next = ptr_at(k + len as usize);
                if (first == 0 && next != 0) || (first != 0 && next != first + len) {
                    break;
                }
                len += 1;
            }
            return self.finish_run(
                lblk,
                len,
                first,
                inode.pos + inode::I_BLOCK as u64 + 4 * lblk,
            );
        }
        // Which tree, and the index within it.
        let mut l = lblk - 12;
        let mut levels = 1u32;
        let mut span = p;
        while l >= span {
            l -= span;
            levels += 1;
            if levels > 3 {
                return Ok(Run {
                    lblk,
                    len: u64::MAX - lblk,
                    kind: RunKind::Hole,
                });
            }
            span = span.saturating_mul(p);
        }
        let root_slot = 11 + levels as usize;
        let mut blk = ptr_at(root_slot);
        let mut at = inode.pos + inode::I_BLOCK as u64 + 4 * root_slot as u64;
        // `span` is now the number of blocks under the root pointer; `l` the index within.
        let mut sub = span;
        for level in 0..levels {
            if blk == 0 {
                let within = l % sub;
                return Ok(Run {
                    lblk,
                    len: sub - within,
                    kind: RunKind::Hole,
                });
            }
            self.check_block(blk, 1, S, at)?;
            let table = self.read_block(blk, "ext2 indirect block")?;
            sub /= p;
            let idx = ((l / sub) % p) as usize;
            let entry = |k: usize| u64::from(le::u32(&table, 4 * k).unwrap_or(0));
            at = blk * self.block_size + 4 * idx as u64;
            if level + 1 == levels {
                let first = entry(idx);
                let mut len = 1u64;
                while idx + (len as usize) < p as usize {
                    let next = entry(idx + len as usize);
                    if (first == 0 && next != 0) || (first != 0 && next != first + len) {
                        break;
                    }
                    len += 1;
                }
                return self.finish_run(lblk, len, first, at);
            }
            blk = entry(idx);
        }
        Err(Error::corrupt(S, at, "unreachable block map depth"))
    }

    fn finish_run(&self, lblk: u64, len: u64, first: u64, at: u64) -> Result<Run> {
        if first == 0 {
            return Ok(Run {
                lblk,
                len,
                kind: RunKind::Hole,
            });
        }
        self.check_block(first, len, "ext2 block map", at)?;
        Ok(Run {
            lblk,
            len,
            kind: RunKind::Data(first),
        })
    }

    /// Call `f` with every data or unwritten run of `inode` in logical
    /// order (holes are skipped), until it returns `false`.
    pub fn for_each_run(
        &self,
        inode: &Inode,
        f: &mut dyn FnMut(Run) -> Result<bool>,
    ) -> Result<()> {
        if inode.has_flag(inode::flags::INLINE_DATA) {
            return Ok(());
        }
        if inode.has_flag(inode::flags::EXTENTS) {
            let mut visited = HashSet::new();
            let mut next_lblk = 0u64;
            let root = inode.i_block().to_vec();
            let pos = inode.pos + inode::I_BLOCK as u64;
            self.walk_extents(inode, &root, pos, None, &mut visited, &mut next_lblk, f)?;
            return Ok(());
        }
        let bs = self.block_size;
        let end = inode.i_size.div_ceil(bs);
        let mut lblk = 0u64;
        while lblk < end {
            let run = self.blockmap_lookup(inode, lblk)?;
            let len = run.len.min(end - lblk);
            if !matches!(run.kind, RunKind::Hole) && !f(Run { len, ..run })? {
                return Ok(());
            }
            lblk = lblk.saturating_add(len.max(1));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_extents(
        &self,
        inode: &Inode,
        node: &[u8],
        pos: u64,
        want_depth: Option<u16>,
        visited: &mut HashSet<u64>,
        next_lblk: &mut u64,
        f: &mut dyn FnMut(Run) -> Result<bool>,
    ) -> Result<bool> {
        let h = parse_header(node, pos, want_depth)?;
        for i in 0..h.entries {
            let epos = pos + 12 + 12 * i as u64;
            if h.depth == 0 {
                let (first, len, unwritten, start) = leaf_entry(node, i);
                if len == 0 {
                    continue;
                }
                if first < *next_lblk {
                    self.problem(format!(
                        "ext4 extent of inode {} at byte {epos}: logical block {first} overlaps the previous extent; skipped",
                        inode.ino
                    ));
                    continue;
                }
                self.check_block(start, len, "ext4 extent", epos)?;
                *next_lblk = first + len;
                let kind = if unwritten {
                    RunKind::Unwritten(start)
                } else {
                    RunKind::Data(start)
                };
                if !f(Run {
                    lblk: first,
                    len,
                    kind,
                })? {
                    return Ok(false);
                }
            } else {
                let (_, child) = index_entry(node, i);
                if !visited.insert(child) {
                    return Err(Error::corrupt(
                        "ext4 extent index",
                        epos,
                        format!(
                            "inode {}: node block {child} is referenced twice (a loop)",
                            inode.ino
                        ),
                    ));
                }
                let block = self.extent_node(inode, child, epos)?;
                let cont = self.walk_extents(
                    inode,
                    &block,
                    child * self.block_size,
                    Some(h.depth - 1),
                    visited,
                    next_lblk,
                    f,
                )?;
                if !cont {
                    return Ok(false);
                }
            }
        }
        let _ = h.max;
        Ok(true)
    }
}
