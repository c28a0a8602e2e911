//! Mapping a file's logical blocks to disk blocks: extent trees (ext4) and
//! block maps (ext2/3: direct, indirect, double and triple indirect).

use std::collections::HashSet;

use super::inode::{self, Inode};
use super::{Ext, csum};
use crate::error::{Error, Result};
use crate::io::le;
use crate::problem::Problem;

/// `eh_magic` of an extent tree node.
pub(super) const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// Deepest extent tree the kernel builds.
pub(super) const EXT4_MAX_EXTENT_DEPTH: u16 = 5;
/// `ee_len` above this marks an unwritten (preallocated) extent.
pub(super) const EXT_INIT_MAX_LEN: u16 = 32768;
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
    Ok(Header { entries, depth })
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

/// An extent tree node as read: its bytes and byte position, its entry
/// count, and the logical blocks `lo..hi` its parent gives it.
#[derive(Clone, Copy)]
struct NodeRef<'a> {
    bytes: &'a [u8],
    pos: u64,
    entries: usize,
    lo: u64,
    hi: u64,
}

/// A child of an index node: the logical blocks `lo..hi` it maps.
struct Child {
    lo: u64,
    hi: u64,
    block: u64,
    /// Byte position of the index entry.
    epos: u64,
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
                    self.problem(Problem::at(
                        format!("ext4 extent node of inode {}", inode.ino),
                        block * self.block_size + tail as u64,
                        format!("checksum mismatch (stored {stored:#010x}, computed {want:#010x})"),
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

    /// The order in which to read the `count` entries of the extent node
    /// at `pos`, whose first logical blocks `first_of` gives: by first block
    /// (ties in on-disk order). Entries out of order are reported: e2fsck
    /// calls that corruption and the kernel refuses the node.
    fn in_logical_order(
        &self,
        inode: &Inode,
        pos: u64,
        count: usize,
        first_of: impl Fn(usize) -> u64,
    ) -> Vec<usize> {
        let mut order: Vec<usize> = (0..count).collect();
        if let Some(i) = (1..count).find(|&i| first_of(i) < first_of(i - 1)) {
            self.problem(Problem::at(format!("ext4 extent node of inode {}", inode.ino), pos, format!("entries are not in logical block order (entry {i} at byte {} starts at block {}, before block {} of the entry above it); read in logical order", pos + 12 + 12 * i as u64, first_of(i), first_of(i - 1))));
            order.sort_by_key(|&i| first_of(i));
        }
        order
    }

    /// The children of index node `node` (at `pos`, mapping logical blocks
    /// `lo..hi`) in logical order, each with the blocks it maps. Lookups
    /// and walks both go through here, so they agree whatever the damage.
    fn index_children(&self, inode: &Inode, n: &NodeRef<'_>) -> Vec<Child> {
        let order = self.in_logical_order(inode, n.pos, n.entries, |i| index_entry(n.bytes, i).0);
        let mut out: Vec<Child> = Vec::with_capacity(order.len());
        for (k, &i) in order.iter().enumerate() {
            let (first, block) = index_entry(n.bytes, i);
            // The first child also maps the blocks before its ei_block, as
            // the kernel's binary search sends them there.
            let start = if k == 0 { n.lo } else { first.max(n.lo) };
            let end = order
                .get(k + 1)
                .map_or(n.hi, |&next| index_entry(n.bytes, next).0.min(n.hi));
            if start < end {
                out.push(Child {
                    lo: start,
                    hi: end,
                    block,
                    epos: n.pos + 12 + 12 * i as u64,
                });
            }
        }
        out
    }

    /// The extents of leaf `node` (at `pos`, mapping logical blocks `lo..hi`)
    /// in logical order, each with the byte position of its entry: blocks
    /// outside `lo..hi` or mapped by an earlier extent are left out, with a problem.
    fn leaf_extents(&self, inode: &Inode, n: &NodeRef<'_>) -> Vec<(Run, u64)> {
        let order = self.in_logical_order(inode, n.pos, n.entries, |i| leaf_entry(n.bytes, i).0);
        let mut out = Vec::with_capacity(order.len());
        let mut cursor = n.lo;
        for i in order {
            let (first, len, unwritten, start) = leaf_entry(n.bytes, i);
            let epos = n.pos + 12 + 12 * i as u64;
            if len == 0 {
                // The kernel's ext4_valid_extent refuses it too.
                self.problem(Problem::at(
                    format!("ext4 extent of inode {}", inode.ino),
                    epos,
                    "ee_len 0; skipped",
                ));
                continue;
            }
            let end = first + len;
            let from = first.max(cursor);
            let to = end.min(n.hi);
            if from != first || to != end {
                self.problem(Problem::at(format!("ext4 extent of inode {}", inode.ino), epos, format!("logical blocks {first}..{end} overlap the previous extent or lie outside its index entry's blocks {}..{}; {}", n.lo, n.hi, if from < to {
                        format!("only blocks {from}..{to} read from it")
                    } else {
                        "skipped".to_string()
                    })));
            }
            if from >= to {
                continue;
            }
            let p = start + (from - first);
            out.push((
                Run {
                    lblk: from,
                    len: to - from,
                    kind: if unwritten {
                        RunKind::Unwritten(p)
                    } else {
                        RunKind::Data(p)
                    },
                },
                epos,
            ));
            cursor = to;
        }
        out
    }

    fn extent_lookup(&self, inode: &Inode, lblk: u64) -> Result<Run> {
        let hole_to = |end: u64| Run {
            lblk,
            len: end.saturating_sub(lblk).max(1),
            kind: RunKind::Hole,
        };
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
        let (mut lo, mut hi) = (0u64, EXTENT_LBLK_END);
        for _ in 0..=EXT4_MAX_EXTENT_DEPTH {
            let h = parse_header(&node, pos, want_depth)?;
            let n = NodeRef {
                bytes: &node,
                pos,
                entries: h.entries,
                lo,
                hi,
            };
            if h.depth == 0 {
                let extents = self.leaf_extents(inode, &n);
                let k = extents.partition_point(|(r, _)| r.lblk <= lblk);
                if let Some((run, epos)) = k.checked_sub(1).and_then(|k| extents.get(k))
                    && lblk < run.lblk + run.len
                {
                    let off = lblk - run.lblk;
                    let kind = match run.kind {
                        RunKind::Data(p) | RunKind::Unwritten(p) => {
                            self.check_block(p, run.len, "ext4 extent", *epos)?;
                            if matches!(run.kind, RunKind::Data(_)) {
                                RunKind::Data(p + off)
                            } else {
                                RunKind::Unwritten(p + off)
                            }
                        }
                        RunKind::Hole => RunKind::Hole,
                    };
                    return Ok(Run {
                        lblk,
                        len: run.len - off,
                        kind,
                    });
                }
                return Ok(hole_to(extents.get(k).map_or(hi, |(r, _)| r.lblk)));
            }
            let children = self.index_children(inode, &n);
            let k = children.partition_point(|c| c.lo <= lblk);
            let Some(child) = k
                .checked_sub(1)
                .and_then(|k| children.get(k))
                .filter(|c| lblk < c.hi)
            else {
                return Ok(hole_to(children.get(k).map_or(hi, |c| c.lo)));
            };
            (lo, hi) = (child.lo, child.hi);
            node = self.extent_node(inode, child.block, child.epos)?;
            pos = child.block * self.block_size;
            want_depth = Some(h.depth - 1);
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
            let root = inode.i_block().to_vec();
            let pos = inode.pos + inode::I_BLOCK as u64;
            let span = (0, EXTENT_LBLK_END);
            self.walk_extents(inode, &root, pos, None, span, &mut visited, f)?;
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
        (lo, hi): (u64, u64),
        visited: &mut HashSet<u64>,
        f: &mut dyn FnMut(Run) -> Result<bool>,
    ) -> Result<bool> {
        let h = parse_header(node, pos, want_depth)?;
        let n = NodeRef {
            bytes: node,
            pos,
            entries: h.entries,
            lo,
            hi,
        };
        if h.depth == 0 {
            for (run, epos) in self.leaf_extents(inode, &n) {
                if let RunKind::Data(p) | RunKind::Unwritten(p) = run.kind {
                    self.check_block(p, run.len, "ext4 extent", epos)?;
                }
                if !f(run)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        for child in self.index_children(inode, &n) {
            if !visited.insert(child.block) {
                return Err(Error::corrupt(
                    "ext4 extent index",
                    child.epos,
                    format!(
                        "inode {}: node block {} is referenced twice (a loop)",
                        inode.ino, child.block
                    ),
                ));
            }
            let block = self.extent_node(inode, child.block, child.epos)?;
            let cont = self.walk_extents(
                inode,
                &block,
                child.block * self.block_size,
                Some(h.depth - 1),
                (child.lo, child.hi),
                visited,
                f,
            )?;
            if !cont {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
