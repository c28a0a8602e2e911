//! Directories: linear blocks, hashed (htree) directories and inline directories.
//!
//! Listing scans every block in logical order; the htree's index nodes look
//! like blocks holding one empty entry, and its root like a block holding
//! `.` and `..`, so a scan skips them by itself. Lookup follows the hash
//! index when it can and scans when the index is damaged or unknown.

use std::ops::ControlFlow;

use super::inode::{self, Inode};
use super::superblock::{compat, incompat};
use super::{Ext, MAX_DIR_ENTRIES, Run, RunKind, csum, hash, xattr};
use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileType, NodeId};
use crate::io::le;
use crate::problem::Problem;

/// `det_reserved_ft` of a directory block's checksum tail.
const EXT4_FT_DIR_CSUM: u8 = 0xDE;
/// Size of the checksum tail (a fake entry) at the end of a leaf block.
const TAIL_LEN: usize = 12;
/// Directory blocks read in one go.
const DIR_CHUNK_BLOCKS: u64 = 64;

/// One entry as parsed: inode, name, file type byte.
struct Raw<'a> {
    ino: u32,
    name: &'a [u8],
    ftype: u8,
}

/// The name entry `index` of a directory's block 0 has: its own `.` and `..`.
fn own_name(index: usize) -> Option<&'static [u8]> {
    match index {
        0 => Some(b"."),
        1 => Some(b".."),
        _ => None,
    }
}

fn file_type_of(ft: u8) -> Option<FileType> {
    Some(match ft {
        1 => FileType::Regular,
        2 => FileType::Directory,
        3 => FileType::CharDevice,
        4 => FileType::BlockDevice,
        5 => FileType::Fifo,
        6 => FileType::Socket,
        7 => FileType::Symlink,
        _ => return None,
    })
}

impl Ext {
    /// `rec_len` as stored, decoded (64 KiB blocks encode the top bits in the low two).
    fn rec_len(&self, raw: u16) -> usize {
        let bs = self.block_size;
        if bs < 65536 {
            return usize::from(raw);
        }
        if raw == 65535 || raw == 0 {
            return bs as usize;
        }
        usize::from(raw & 65532) | (usize::from(raw & 3) << 16)
    }

    pub(super) fn is_dx(&self, dir: &Inode) -> bool {
        self.sb.has_compat(compat::DIR_INDEX) && dir.has_flag(inode::flags::INDEX)
    }

    /// The header of the entry at `off` of `region`: (inode, rec_len, name_len, file type).
    fn entry_header(&self, region: &[u8], off: usize) -> (u32, usize, usize, u8) {
        let filetype = self.sb.has_incompat(incompat::FILETYPE);
        let ino = le::u32(region, off).unwrap_or(0);
        let rec_len = self.rec_len(le::u16(region, off + 4).unwrap_or(0));
        let (name_len, ftype) = if filetype {
            (
                usize::from(region.get(off + 6).copied().unwrap_or(0)),
                region.get(off + 7).copied().unwrap_or(0),
            )
        } else {
            (usize::from(le::u16(region, off + 6).unwrap_or(0)), 0)
        };
        (ino, rec_len, name_len, ftype)
    }

    /// Whether a whole, believable entry starts at `off` (where reading
    /// resumes after a damaged one, as e2fsck's salvage_directory does).
    fn plausible_entry(&self, region: &[u8], off: usize) -> bool {
        let (ino, rec_len, name_len, ftype) = self.entry_header(region, off);
        let left = region.len().saturating_sub(off);
        let first_ino = self.sb.s_first_ino;
        ino != 0
            && ino <= self.sb.s_inodes_count
            && (ino == super::EXT4_ROOT_INO || ino >= first_ino)
            && rec_len >= 12
            && rec_len.is_multiple_of(4)
            && rec_len <= left
            && name_len > 0
            && 8 + name_len <= rec_len
            && ftype <= 7
            && region[off + 8..off + 8 + name_len]
                .iter()
                .all(|&c| c != 0 && c != b'/')
    }

    /// Parse the entries of `region` (at byte `pos`), calling `f` for each
    /// live one. `dots`: the region starts block 0 of a directory, whose
    /// first two entries are its own `.` and `..` (not passed to `f`); any
    /// other entry named `.` or `..` is passed on, with a problem. A damaged
    /// entry is reported and reading resumes at the next believable entry
    /// of the region.
    fn parse_entries<'a>(
        &self,
        dir: &Inode,
        region: &'a [u8],
        pos: u64,
        dots: bool,
        f: &mut dyn FnMut(Raw<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut off = 0usize;
        let mut index = 0usize;
        while off + 8 <= region.len() {
            let (ino, rec_len, name_len, ftype) = self.entry_header(region, off);
            let at = pos + off as u64;
            let left = region.len() - off;
            if rec_len < 12
                || !rec_len.is_multiple_of(4)
                || rec_len < 8 + name_len
                || rec_len > left
            {
                // Keep the entry itself when its name fits, then look for the
                // next one; unless an entry starts right after its 8-byte
                // header: then those 8 bytes are a stray hole (e2fsck's
                // rec_len 8 case) and the name bytes are that entry.
                let keep = ino != 0
                    && name_len > 0
                    && 8 + name_len <= left
                    && !self.plausible_entry(region, off + 8);
                let from = if keep {
                    (off + 8 + name_len + 3) & !3
                } else {
                    off + 4
                };
                let next = (from..region.len().saturating_sub(11))
                    .step_by(4)
                    .find(|&o| self.plausible_entry(region, o));
                self.problem(Problem::at(
                    format!("ext directory entry of inode {}", dir.ino),
                    at,
                    format!(
                        "bad rec_len {rec_len} (name_len {name_len}); {}",
                        match next {
                            Some(n) => format!("entries read on from byte {}", pos + n as u64),
                            None => "rest of block skipped".to_string(),
                        }
                    ),
                ));
                if keep {
                    let name = &region[off + 8..off + 8 + name_len];
                    let own = dots && own_name(index) == Some(name);
                    self.entry(dir, at, ino, name, ftype, own, f)?;
                }
                match next {
                    Some(n) => {
                        off = n;
                        index += 1;
                        continue;
                    }
                    None => return ControlFlow::Continue(()),
                }
            }
            if ino != 0 {
                let name = &region[off + 8..off + 8 + name_len];
                let own = match own_name(index).filter(|_| dots) {
                    Some(want) if name != want => {
                        self.problem(Problem::at(
                            format!("ext directory entry of inode {}", dir.ino),
                            at,
                            format!(
                                "entry {index} of block 0 should be {}",
                                crate::text::escape(want)
                            ),
                        ));
                        false
                    }
                    Some(_) => true,
                    None => false,
                };
                self.entry(dir, at, ino, name, ftype, own, f)?;
            }
            off += rec_len;
            index += 1;
        }
        if off != region.len() {
            self.problem(Problem::at(
                format!("ext directory block of inode {}", dir.ino),
                pos + off as u64,
                "entries do not end at the block end",
            ));
        }
        ControlFlow::Continue(())
    }

    /// Check one live entry and pass it to `f` unless it is unusable or
    /// the directory's own `.`/`..` (`own`).
    #[allow(clippy::too_many_arguments)]
    fn entry<'a>(
        &self,
        dir: &Inode,
        at: u64,
        ino: u32,
        name: &'a [u8],
        ftype: u8,
        own: bool,
        f: &mut dyn FnMut(Raw<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let what = format!("ext directory entry of inode {}", dir.ino);
        if name.is_empty() {
            self.problem(Problem::at(
                what.clone(),
                at,
                format!("inode {ino} with an empty name; skipped"),
            ));
            return ControlFlow::Continue(());
        }
        if ino > self.sb.s_inodes_count {
            self.problem(Problem::at(
                what.clone(),
                at,
                format!(
                    "inode {ino} out of range (the filesystem has {}); skipped",
                    self.sb.s_inodes_count
                ),
            ));
            return ControlFlow::Continue(());
        }
        if ino < self.sb.s_first_ino && ino != super::EXT4_ROOT_INO {
            self.problem(Problem::at(
                what.clone(),
                at,
                format!(
                    "inode {ino} is reserved (below s_first_ino {}); skipped",
                    self.sb.s_first_ino
                ),
            ));
            return ControlFlow::Continue(());
        }
        if own {
            return ControlFlow::Continue(());
        }
        if name == b"." || name == b".." || name.contains(&0) || name.contains(&b'/') {
            self.problem(Problem::at(
                what.clone(),
                at,
                format!(
                    "the name {} (inode {ino}) is one no entry may have; listed escaped",
                    crate::text::escape(name)
                ),
            ));
        }
        f(Raw { ino, name, ftype })
    }

    /// Verify an htree node's `dx_tail` checksum (root when `root`).
    fn check_dx_csum(&self, dir: &Inode, block: &[u8], pos: u64, root: bool) {
        let count_off = if root {
            0x18 + usize::from(block.get(0x1D).copied().unwrap_or(8))
        } else {
            8
        };
        let (Some(limit), Some(count)) = (le::u16(block, count_off), le::u16(block, count_off + 2))
        else {
            return;
        };
        let tail = count_off + 8 * usize::from(limit);
        let used = count_off + 8 * usize::from(count);
        if tail + 8 > block.len() || used > tail {
            self.problem(Problem::at(
                format!("ext htree node of inode {}", dir.ino),
                pos,
                format!("no room for its checksum (limit {limit})"),
            ));
            return;
        }
        let seed = inode::inode_csum_seed(self.csum_seed, dir.ino, dir.i_generation);
        let mut c = csum::crc32c(seed, &block[..used]);
        c = csum::crc32c(c, &block[tail..tail + 4]);
        c = csum::crc32c(c, &[0; 4]);
        let stored = le::u32(block, tail + 4).unwrap_or(0);
        if c != stored {
            self.problem(Problem::at(
                format!("ext htree node of inode {}", dir.ino),
                pos + tail as u64 + 4,
                format!("checksum mismatch (stored {stored:#010x}, computed {c:#010x})"),
            ));
        }
    }

    /// The part of a leaf block holding entries, after checking its checksum tail.
    fn leaf_region<'a>(&self, dir: &Inode, block: &'a [u8], pos: u64) -> &'a [u8] {
        if !self.sb.has_metadata_csum() || block.len() < TAIL_LEN {
            return block;
        }
        let t = block.len() - TAIL_LEN;
        let is_tail = le::u32(block, t) == Some(0)
            && self.rec_len(le::u16(block, t + 4).unwrap_or(0)) == TAIL_LEN
            && block[t + 6] == 0
            && block[t + 7] == EXT4_FT_DIR_CSUM;
        if !is_tail {
            self.problem(Problem::at(
                format!("ext directory block of inode {}", dir.ino),
                pos,
                "no checksum tail",
            ));
            return block;
        }
        let seed = inode::inode_csum_seed(self.csum_seed, dir.ino, dir.i_generation);
        let c = csum::crc32c(seed, &block[..t]);
        let stored = le::u32(block, t + 8).unwrap_or(0);
        if c != stored {
            self.problem(Problem::at(
                format!("ext directory block of inode {}", dir.ino),
                pos + t as u64 + 8,
                format!("checksum mismatch (stored {stored:#010x}, computed {c:#010x})"),
            ));
        }
        &block[..t]
    }

    /// Parse one directory block (logical block `lblk`) of a block-mapped or extent-mapped directory.
    fn parse_dir_block<'a>(
        &self,
        dir: &Inode,
        lblk: u64,
        block: &'a [u8],
        pos: u64,
        f: &mut dyn FnMut(Raw<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let bs = block.len();
        if self.is_dx(dir) {
            if lblk == 0 {
                if self.sb.has_metadata_csum() {
                    self.check_dx_csum(dir, block, pos, true);
                }
                // The root holds "." and ".." only; their rec_len spans the index.
                return self.parse_entries(dir, block, pos, true, f);
            }
            let fake_ino = le::u32(block, 0).unwrap_or(1);
            let fake_len = self.rec_len(le::u16(block, 4).unwrap_or(0));
            if fake_ino == 0 && fake_len == bs {
                if self.sb.has_metadata_csum() {
                    self.check_dx_csum(dir, block, pos, false);
                }
                return ControlFlow::Continue(());
            }
        }
        let region = self.leaf_region(dir, block, pos);
        self.parse_entries(dir, region, pos, lblk == 0, f)
    }

    /// Call `f` for every entry of directory `dir`, in on-disk order.
    fn scan_dir<'s>(
        &'s self,
        dir: &Inode,
        f: &mut dyn FnMut(Raw<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        if dir.has_flag(inode::flags::INLINE_DATA) {
            // i_block: the parent's inode number, then entries.
            let ib = dir.i_block();
            let pos = dir.pos + inode::I_BLOCK as u64;
            if self
                .parse_entries(dir, &ib[4..], pos + 4, false, f)
                .is_break()
            {
                return Ok(());
            }
            if let Some(more) = xattr::system_data(self, dir)? {
                let _ = self.parse_entries(dir, &more, dir.pos, false, f);
            }
            return Ok(());
        }
        let bs = self.block_size;
        let nblocks = dir.i_size.div_ceil(bs);
        let mut lblk = 0u64;
        let mut buf = Vec::new();
        while lblk < nblocks {
            let run: Run = self.map_block(dir, lblk)?;
            // A hole is passed over whole, as the kernel's readdir does: a
            // damaged (or large_dir) i_size can put 2^50 blocks past the end.
            let len = run.len.min(nblocks - lblk).max(1);
            let step = match run.kind {
                RunKind::Hole | RunKind::Unwritten(_) => len,
                RunKind::Data(p) => {
                    let len = len.min(DIR_CHUNK_BLOCKS);
                    buf.resize((len * bs) as usize, 0);
                    self.read_through(p * bs, &mut buf, "ext directory block", len == 1)?;
                    for i in 0..len {
                        let start = (i * bs) as usize;
                        let block = &buf[start..start + bs as usize];
                        let flow = self.parse_dir_block(dir, lblk + i, block, (p + i) * bs, f);
                        if flow.is_break() {
                            return Ok(());
                        }
                    }
                    len
                }
            };
            lblk += step;
        }
        Ok(())
    }
}

/// The entries of directory `dir`, without `.` and `..`.
pub(super) fn list(ext: &Ext, dir: &Inode) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    let mut too_many = false;
    ext.scan_dir(dir, &mut |e| {
        if out.len() >= MAX_DIR_ENTRIES {
            too_many = true;
            return ControlFlow::Break(());
        }
        out.push(DirEntry {
            name: e.name.to_vec(),
            node: NodeId(u64::from(e.ino)),
            file_type: file_type_of(e.ftype),
        });
        ControlFlow::Continue(())
    })?;
    if too_many {
        ext.problem(Problem::of(
            format!("ext directory inode {}", dir.ino),
            format!("more than {MAX_DIR_ENTRIES} entries; the rest are not listed"),
        ));
    }
    Ok(out)
}

/// The entry `name` of directory `dir`.
pub(super) fn lookup(ext: &Ext, dir: &Inode, name: &[u8]) -> Result<Option<NodeId>> {
    if ext.is_dx(dir)
        && !dir.has_flag(inode::flags::INLINE_DATA)
        && !dir.has_flag(inode::flags::CASEFOLD)
    {
        match dx_lookup(ext, dir, name) {
            Ok(Some(found)) => return Ok(found.map(|ino| NodeId(u64::from(ino)))),
            Ok(None) => {}
            Err(e) => ext.problem(Problem::of(
                format!("ext htree of directory inode {}", dir.ino),
                format!("{e}; looked up by scanning instead"),
            )),
        }
    }
    let mut found = None;
    ext.scan_dir(dir, &mut |e| {
        if e.name == name {
            found = Some(NodeId(u64::from(e.ino)));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(found)
}

/// Read logical block `lblk` of directory `dir` (metadata path).
fn dir_block(ext: &Ext, dir: &Inode, lblk: u64) -> Result<(Vec<u8>, u64)> {
    let nblocks = dir.i_size.div_ceil(ext.block_size);
    if lblk >= nblocks {
        return Err(Error::corrupt(
            "ext htree",
            dir.pos,
            format!("index points at block {lblk} of a {nblocks}-block directory"),
        ));
    }
    match ext.map_block(dir, lblk)?.kind {
        RunKind::Data(p) => Ok((
            ext.read_block(p, "ext directory block")?,
            p * ext.block_size,
        )),
        _ => Err(Error::corrupt(
            "ext htree",
            dir.pos,
            format!("index points at block {lblk}, which is a hole"),
        )),
    }
}

/// Follow the hash index. `Ok(Some(result))` is an answer, `Ok(None)` means
/// "cannot tell, scan" (hash version unknown, collision chain past a node).
pub(super) fn dx_lookup(ext: &Ext, dir: &Inode, name: &[u8]) -> Result<Option<Option<u32>>> {
    const S: &str = "ext htree root";
    let (root, rpos) = dir_block(ext, dir, 0)?;
    let info_len = usize::from(root.get(0x1D).copied().unwrap_or(0));
    let levels = root.get(0x1E).copied().unwrap_or(0);
    let max_levels = if ext.sb.has_incompat(incompat::LARGEDIR) {
        3
    } else {
        2
    };
    if info_len != 8 || levels >= max_levels || le::u32(&root, 0x18) != Some(0) {
        return Err(Error::corrupt(
            S,
            rpos + 0x18,
            format!("bad dx_root_info (info_length {info_len}, indirect_levels {levels})"),
        ));
    }
    let mut version = root[0x1C];
    if version <= hash::DX_HASH_TEA
        && ext.sb.s_flags & super::superblock::EXT2_FLAGS_UNSIGNED_HASH != 0
    {
        version += 3;
    }
    let Some(target) = hash::dx_hash(name, version, ext.sb.s_hash_seed) else {
        return Ok(None);
    };
    let mut node = root;
    let mut npos = rpos;
    let mut count_off = 0x20usize;
    for level in 0..=levels {
        let limit = usize::from(le::u16(&node, count_off).unwrap_or(0));
        let count = usize::from(le::u16(&node, count_off + 2).unwrap_or(0));
        if count == 0 || count > limit || count_off + 8 * limit > node.len() {
            return Err(Error::corrupt(
                "ext htree node",
                npos + count_off as u64,
                format!("count {count} / limit {limit} do not fit the block"),
            ));
        }
        let entry = |i: usize| {
            let o = count_off + 8 * i;
            (
                le::u32(&node, o).unwrap_or(0),
                le::u32(&node, o + 4).unwrap_or(0),
            )
        };
        // Entry 0 has an implied hash of 0; find the last entry with hash <= target.
        let mut lo = 1usize;
        let mut hi = count;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if entry(mid).0 <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut idx = lo - 1;
        if level < levels {
            let (next, next_pos) = dir_block(ext, dir, u64::from(entry(idx).1))?;
            node = next;
            npos = next_pos;
            count_off = 8;
            continue;
        }
        // Search the leaf, then any leaves continuing a hash collision.
        loop {
            let lblk = u64::from(entry(idx).1);
            let (leaf, lpos) = dir_block(ext, dir, lblk)?;
            let fake_len = ext.rec_len(le::u16(&leaf, 4).unwrap_or(0));
            if lblk == 0 || (le::u32(&leaf, 0) == Some(0) && fake_len == leaf.len()) {
                return Err(Error::corrupt(
                    "ext htree node",
                    npos,
                    format!("index entry {idx} points at block {lblk}, which is not a leaf"),
                ));
            }
            let region = ext.leaf_region(dir, &leaf, lpos);
            let lo = if idx == 0 { 0 } else { entry(idx).0 & !1 };
            let hi = if idx + 1 < count {
                entry(idx + 1).0 & !1
            } else {
                u32::MAX
            };
            let mut found = None;
            let mut misplaced = false;
            let _ = ext.parse_entries(dir, region, lpos, false, &mut |e| {
                if e.name == name {
                    found = Some(e.ino);
                    return ControlFlow::Break(());
                }
                if let Some(h) = hash::dx_hash(e.name, version, ext.sb.s_hash_seed)
                    && (h < lo || h > hi)
                {
                    misplaced = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            if found.is_some() {
                return Ok(Some(found));
            }
            if misplaced {
                return Err(Error::corrupt(
                    "ext htree node",
                    npos,
                    format!("index entry {idx} points at block {lblk}, whose names hash elsewhere"),
                ));
            }
            if idx + 1 >= count {
                // A collision chain could continue in the next node: let a scan decide.
                return Ok(if levels > 0 { None } else { Some(None) });
            }
            let (h, _) = entry(idx + 1);
            if h & 1 == 0 || h & !1 != target {
                return Ok(Some(None));
            }
            idx += 1;
        }
    }
    Ok(None)
}
