//! btrfs tree blocks: read by logical address (another copy tried when
//! one is bad), headers checked, and key searches over a tree.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use super::log::Overlay;
use super::sb::{ChunkMap, KEY_LEN, Key, Superblock, csum_mismatch, hex};
use crate::error::{Error, Result};
use crate::fs::problems::ProblemLog;
use crate::io::{ReadAt, le};
use crate::problem::Problem;

/// Bytes of a tree block header.
pub const HEADER_LEN: usize = 0x65;
/// Bytes of a leaf item descriptor.
const ITEM_LEN: usize = 25;
/// Bytes of a node key pointer.
const PTR_LEN: usize = 33;
/// Deepest tree (levels 0..=7).
pub const MAX_LEVEL: u8 = 7;
/// Tree blocks kept in memory (at most; two generations of half as many).
const CACHE_BLOCKS: usize = 2048;
/// Most items one search may visit.
pub const MAX_VISIT: usize = 16 << 20;

/// A parsed tree block.
#[derive(Debug)]
pub struct Block {
    /// Its logical address.
    pub bytenr: u64,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Level (0: leaf).
    pub level: u8,
    /// Items or key pointers in it.
    pub nritems: u32,
    /// Tree that owns it.
    pub owner: u64,
    /// Transaction that wrote it.
    pub generation: u64,
}

impl Block {
    /// Key of item or pointer `i`.
    pub fn key(&self, i: usize) -> Option<Key> {
        let w = if self.level == 0 { ITEM_LEN } else { PTR_LEN };
        Key::parse(&self.data, HEADER_LEN.checked_add(i.checked_mul(w)?)?)
    }

    /// The data of leaf item `i`.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        let d = HEADER_LEN.checked_add(i.checked_mul(ITEM_LEN)?)?;
        let off = usize::try_from(le::u32(&self.data, d.checked_add(KEY_LEN)?)?).ok()?;
        let size = usize::try_from(le::u32(&self.data, d.checked_add(KEY_LEN + 4)?)?).ok()?;
        let start = HEADER_LEN.checked_add(off)?;
        self.data.get(start..start.checked_add(size)?)
    }

    /// How many leading slots have a key `< key` (`or_equal`: `<= key`).
    /// The keys of a block are sorted: a binary search.
    pub fn count_before(&self, key: Key, or_equal: bool) -> usize {
        let (mut lo, mut hi) = (0usize, usize::try_from(self.nritems).unwrap_or(0));
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            match self.key(mid) {
                Some(k) if k < key || (or_equal && k == key) => lo = mid.saturating_add(1),
                _ => hi = mid,
            }
        }
        lo
    }

    /// The child pointer of node slot `i`: (block, generation).
    pub fn child(&self, i: usize) -> Option<(u64, u64)> {
        let d = HEADER_LEN.checked_add(i.checked_mul(PTR_LEN)?)?;
        Some((
            le::u64(&self.data, d.checked_add(KEY_LEN)?)?,
            le::u64(&self.data, d.checked_add(KEY_LEN + 8)?)?,
        ))
    }
}

/// Reads tree blocks of one filesystem.
pub struct Trees {
    /// The volume opened first (device `sb.devid`).
    pub src: Arc<dyn ReadAt>,
    /// Every opened device by devid (`src` among them), sorted.
    devices: Vec<(u64, Arc<dyn ReadAt>)>,
    /// The superblock in use.
    pub sb: Superblock,
    /// Logical-to-physical map.
    pub map: ChunkMap,
    /// Problems found.
    pub problems: Arc<ProblemLog>,
    cache: Mutex<BlockCache>,
    /// Items replaced by the log replay, by the root block of their tree.
    overlays: HashMap<u64, Arc<Overlay>>,
}

/// Checked tree blocks by address, bounded: blocks used lately stay (an
/// approximation of least-recently-used with two generations). New and
/// reused blocks go to `hot`; when it is full it becomes `old` (what was
/// old is dropped), and a block found in `old` moves back to `hot`.
#[derive(Default)]
struct BlockCache {
    hot: HashMap<u64, Arc<Block>>,
    old: HashMap<u64, Arc<Block>>,
}

impl BlockCache {
    fn get(&mut self, bytenr: u64) -> Option<Arc<Block>> {
        if let Some(b) = self.hot.get(&bytenr) {
            return Some(Arc::clone(b));
        }
        let b = self.old.remove(&bytenr)?;
        self.insert(bytenr, Arc::clone(&b));
        Some(b)
    }

    fn insert(&mut self, bytenr: u64, b: Arc<Block>) {
        if self.hot.len() >= CACHE_BLOCKS / 2 {
            self.old = std::mem::take(&mut self.hot);
        }
        self.hot.insert(bytenr, b);
    }
}

/// What a block is expected to be.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Level, when the parent says it.
    pub level: Option<u8>,
    /// Generation, when the parent says it.
    pub generation: Option<u64>,
}

impl Trees {
    /// A reader of `src`'s trees.
    pub fn new(
        src: Arc<dyn ReadAt>,
        sb: Superblock,
        map: ChunkMap,
        problems: Arc<ProblemLog>,
    ) -> Trees {
        let devices = vec![(sb.devid, Arc::clone(&src))];
        Trees {
            src,
            devices,
            sb,
            map,
            problems,
            cache: Mutex::new(BlockCache::default()),
            overlays: HashMap::new(),
        }
    }

    /// Read the tree rooted at `root` through `overlay` from now on.
    pub fn set_overlay(&mut self, root: u64, overlay: Overlay) {
        self.overlays.insert(root, Arc::new(overlay));
    }

    /// Open device `devid` (another device of the same filesystem) too.
    pub fn add_device(&mut self, devid: u64, src: Arc<dyn ReadAt>) {
        match self.devices.binary_search_by_key(&devid, |d| d.0) {
            Ok(i) => {
                if let Some(slot) = self.devices.get_mut(i) {
                    slot.1 = src;
                }
            }
            Err(i) => self.devices.insert(i, (devid, src)),
        }
        self.map.add_device(devid);
    }

    fn device(&self, devid: u64) -> Result<&Arc<dyn ReadAt>> {
        self.devices
            .binary_search_by_key(&devid, |d| d.0)
            .ok()
            .and_then(|i| self.devices.get(i))
            .map(|d| &d.1)
            .ok_or_else(|| Error::NotFound(format!("btrfs device devid {devid}")))
    }

    fn read_place(&self, pos: u64, p: &super::sb::Place, out: &mut [u8]) -> Result<()> {
        self.device(p.devid)?
            .read_exact_at(p.physical, out)
            .map_err(|e| {
                Error::io(
                    format!(
                        "btrfs logical byte {pos} (devid {} physical byte {})",
                        p.devid, p.physical
                    ),
                    e,
                )
            })
    }

    /// Read logical bytes `[logical, logical + buf.len())` from copy
    /// `mirror` (0-based; the copies of each piece in chunk order).
    /// `Ok(false)` when there is no such copy. RAID5/6 bytes whose device
    /// is missing are rebuilt from the rest of their row and the parity.
    pub fn read_logical(&self, logical: u64, buf: &mut [u8], mirror: usize) -> Result<bool> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = logical
                .checked_add(done as u64)
                .ok_or_else(|| Error::corrupt("btrfs logical address", logical, "overflow"))?;
            let left = buf.len().saturating_sub(done) as u64;
            let places = match self.map.map(pos, left) {
                Ok(p) => p,
                Err(e) => match self.map.rebuild_sources(pos, left, false) {
                    Ok(Some(src)) if mirror == 0 => {
                        done = self.rebuild(pos, &src, buf, done, left)?;
                        continue;
                    }
                    Ok(Some(_)) => return Ok(false),
                    Ok(None) => return Err(e),
                    Err(e2) => match self.map.raid6_row(pos, left)? {
                        Some(row) if mirror == 0 => {
                            done = self.rebuild6(pos, &row, buf, done, left).map_err(|_| e2)?;
                            continue;
                        }
                        Some(_) => return Ok(false),
                        None => return Err(e2),
                    },
                },
            };
            if mirror == 1
                && places.len() == 1
                && let Some(src) = self.map.rebuild_sources(pos, left, true)?
            {
                // The second copy of RAID5/6 bytes: rebuilt from parity.
                done = self.rebuild(pos, &src, buf, done, left)?;
                continue;
            }
            let Some(p) = places.get(mirror) else {
                return Ok(false);
            };
            let n = usize::try_from(p.len.clamp(1, left)).unwrap_or(1);
            let end = done.saturating_add(n);
            let out = buf
                .get_mut(done..end)
                .ok_or_else(|| Error::corrupt("btrfs read", pos, "bad length"))?;
            self.read_place(pos, p, out)?;
            done = end;
        }
        Ok(true)
    }

    /// Rebuild a RAID6 data stripe piece with P and/or Q when two stripes
    /// of its row are missing (one data stripe and P, or two data
    /// stripes) into `buf[done..]`; the new `done`.
    fn rebuild6(
        &self,
        pos: u64,
        row: &super::sb::Raid6Row,
        buf: &mut [u8],
        done: usize,
        left: u64,
    ) -> Result<usize> {
        use super::raid6::{inv, mul_xor, pow2, scale};
        let n = usize::try_from(row.run.clamp(1, left)).unwrap_or(1);
        let end = done.saturating_add(n);
        let out = buf
            .get_mut(done..end)
            .ok_or_else(|| Error::corrupt("btrfs read", pos, "bad length"))?;
        let p_idx = row.data;
        let q_idx = row.data.saturating_add(1);
        let has = |i: u64| row.present.iter().any(|(j, _)| *j == i);
        let missing: Vec<u64> = (0..row.data).filter(|&i| !has(i)).collect();
        let x = row.index;
        let cannot = || {
            Error::corrupt(
                "btrfs RAID6 row",
                pos,
                format!(
                    "data stripes {missing:?} missing, P {}, Q {}: cannot be rebuilt",
                    if has(p_idx) { "present" } else { "missing" },
                    if has(q_idx) { "present" } else { "missing" }
                ),
            )
        };
        // Pxy (the XOR of P and the present data) and Qxy (Q and the
        // present data times g^i).
        let mut pxy = vec![0u8; n];
        let mut qxy = vec![0u8; n];
        let mut tmp = vec![0u8; n];
        for (i, place) in &row.present {
            let mut p = *place;
            p.len = n as u64;
            self.read_place(pos, &p, &mut tmp)?;
            if *i < row.data {
                mul_xor(&mut pxy, &tmp, 1);
                mul_xor(&mut qxy, &tmp, pow2(*i));
            } else if *i == p_idx {
                mul_xor(&mut pxy, &tmp, 1);
            } else {
                mul_xor(&mut qxy, &tmp, 1);
            }
        }
        match (missing.as_slice(), has(p_idx), has(q_idx)) {
            ([only], false, true) if *only == x => {
                // Dx = Qx · g^-x.
                out.copy_from_slice(&qxy);
                scale(out, inv(pow2(x)));
            }
            ([a, b], true, true) if *a == x || *b == x => {
                let y = if *a == x { *b } else { *a };
                // Dx = (g^y · Pxy ^ Qxy) / (g^x ^ g^y).
                out.copy_from_slice(&qxy);
                mul_xor(out, &pxy, pow2(y));
                scale(out, inv(pow2(x) ^ pow2(y)));
            }
            _ => return Err(cannot()),
        }
        Ok(end)
    }

    /// XOR the `sources` of a missing RAID5/6 data stripe piece into
    /// `buf[done..]`; the new `done`.
    fn rebuild(
        &self,
        pos: u64,
        sources: &[super::sb::Place],
        buf: &mut [u8],
        done: usize,
        left: u64,
    ) -> Result<usize> {
        let run = sources.first().map_or(left, |p| p.len).clamp(1, left);
        let n = usize::try_from(run).unwrap_or(1);
        let end = done.saturating_add(n);
        let out = buf
            .get_mut(done..end)
            .ok_or_else(|| Error::corrupt("btrfs read", pos, "bad length"))?;
        out.fill(0);
        let mut tmp = vec![0u8; n];
        for p in sources {
            self.read_place(pos, p, &mut tmp)?;
            for (o, t) in out.iter_mut().zip(&tmp) {
                *o ^= *t;
            }
        }
        Ok(end)
    }

    /// How many copies of the chunk at `logical` can be read.
    pub fn copies(&self, logical: u64) -> usize {
        if self.map.is_raid56(logical) {
            // The data stripe, then its rebuild from the parity.
            return 2;
        }
        self.map.map(logical, 1).map(|p| p.len()).unwrap_or(1)
    }

    fn check(&self, buf: &mut Vec<u8>, bytenr: u64, expect: Expect) -> Result<Block> {
        let b = buf.as_slice();
        let what = "btrfs tree block";
        let bad = |d: String| Error::corrupt(what, bytenr, d);
        if let Some(m) = csum_mismatch(self.sb.csum_type, b) {
            return Err(bad(m));
        }
        let at = le::u64(b, 0x30).unwrap_or(0);
        if at != bytenr {
            return Err(bad(format!("it says it lives at logical byte {at}")));
        }
        let fsid = b.get(0x20..0x30).unwrap_or(&[]);
        if fsid != self.sb.meta_fsid.as_slice() {
            return Err(bad(format!(
                "filesystem UUID {} (expected {})",
                hex(fsid),
                hex(&self.sb.meta_fsid)
            )));
        }
        let level = b.get(0x64).copied().unwrap_or(u8::MAX);
        if level > MAX_LEVEL || expect.level.is_some_and(|l| l != level) {
            return Err(bad(format!("level {level} (expected {:?})", expect.level)));
        }
        let generation = le::u64(b, 0x50).unwrap_or(0);
        if let Some(g) = expect.generation
            && g != generation
        {
            return Err(bad(format!(
                "generation {generation} (its parent says {g})"
            )));
        }
        let nritems = le::u32(b, 0x60).unwrap_or(0);
        let w = if level == 0 { ITEM_LEN } else { PTR_LEN };
        let room = b
            .len()
            .saturating_sub(HEADER_LEN)
            .checked_div(w)
            .unwrap_or(0);
        if usize::try_from(nritems).unwrap_or(usize::MAX) > room {
            return Err(bad(format!("{nritems} items do not fit")));
        }
        let owner = le::u64(b, 0x58).unwrap_or(0);
        Ok(Block {
            bytenr,
            data: std::mem::take(buf),
            level,
            nritems,
            owner,
            generation,
        })
    }

    /// The tree block at `bytenr`, checked; another copy is tried when one is bad.
    pub fn block(&self, bytenr: u64, expect: Expect) -> Result<Arc<Block>> {
        if let Some(b) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bytenr)
        {
            return Ok(b);
        }
        let ns = usize::try_from(self.sb.nodesize).unwrap_or(16384);
        let mut buf = vec![0u8; ns];
        let mut first_err: Option<Error> = None;
        for mirror in 0..4usize {
            if buf.len() != ns {
                buf = vec![0u8; ns];
            }
            let r = match self.read_logical(bytenr, &mut buf, mirror) {
                Ok(false) => break,
                Ok(true) => self.check(&mut buf, bytenr, expect),
                Err(e) => Err(e),
            };
            match r {
                Ok(b) => {
                    if let Some(e) = &first_err {
                        self.problems.record(Problem::at(
                            "btrfs tree block",
                            bytenr,
                            format!(
                                "copy 1 is bad ({e}); copy {} is used",
                                mirror.saturating_add(1)
                            ),
                        ));
                    }
                    let b = Arc::new(b);
                    self.cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(bytenr, Arc::clone(&b));
                    return Ok(b);
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        let e = first_err
            .unwrap_or_else(|| Error::corrupt("btrfs tree block", bytenr, "no copy to read"));
        self.problems.record(Problem::text(e.to_string()));
        Err(e)
    }

    /// Visit the items with keys in `[lo, hi]` of the tree rooted at
    /// `root` (level `level`), in key order, until `f` breaks.
    pub fn range(
        &self,
        root: u64,
        level: u8,
        lo: Key,
        hi: Key,
        f: &mut dyn FnMut(Key, &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut visited = 0usize;
        let Some(ov) = self.overlays.get(&root) else {
            return self
                .walk(root, Some(level), None, lo, hi, 0, &mut visited, f)
                .map(|_| ());
        };
        if lo > hi {
            return Ok(());
        }
        // The tree's items, without those of the overlay's objects, merged
        // in key order with the overlay's.
        let mut pending = ov.items.range(lo..=hi).peekable();
        let mut stopped = false;
        {
            let mut merged = |k: Key, d: &[u8]| {
                while let Some((ok, od)) = pending.next_if(|(ok, _)| **ok < k) {
                    if f(*ok, od).is_break() {
                        stopped = true;
                        return ControlFlow::Break(());
                    }
                }
                if ov.ids.contains(&k.objectid) {
                    return ControlFlow::Continue(());
                }
                let r = f(k, d);
                if r.is_break() {
                    stopped = true;
                }
                r
            };
            let _ = self.walk(
                root,
                Some(level),
                None,
                lo,
                hi,
                0,
                &mut visited,
                &mut merged,
            )?;
        }
        if !stopped {
            for (ok, od) in pending {
                if f(*ok, od).is_break() {
                    break;
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        bytenr: u64,
        level: Option<u8>,
        generation: Option<u64>,
        lo: Key,
        hi: Key,
        depth: u8,
        visited: &mut usize,
        f: &mut dyn FnMut(Key, &[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        if depth > MAX_LEVEL {
            return Err(Error::corrupt(
                "btrfs tree block",
                bytenr,
                "the tree is deeper than 8 levels",
            ));
        }
        let b = self.block(bytenr, Expect { level, generation })?;
        let n = usize::try_from(b.nritems).unwrap_or(0);
        if b.level == 0 {
            for i in b.count_before(lo, false)..n {
                let Some(k) = b.key(i) else { break };
                if k < lo {
                    continue;
                }
                if k > hi {
                    return Ok(ControlFlow::Break(()));
                }
                *visited = visited.saturating_add(1);
                if *visited > MAX_VISIT {
                    return Err(Error::corrupt(
                        "btrfs tree",
                        bytenr,
                        "a search visits more than 16 million items",
                    ));
                }
                let data = b.item(i).ok_or_else(|| {
                    Error::corrupt(
                        "btrfs leaf",
                        bytenr,
                        format!("item {i} lies outside the block"),
                    )
                })?;
                if f(k, data).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            return Ok(ControlFlow::Continue(()));
        }
        let child_level = b.level.checked_sub(1);
        // Children before the last one whose first key is <= lo hold only smaller keys.
        for i in b.count_before(lo, true).saturating_sub(1)..n {
            let Some(k) = b.key(i) else { break };
            if k > hi {
                return Ok(ControlFlow::Break(()));
            }
            // The child holds keys up to the next pointer's key.
            if let Some(next) = b.key(i.saturating_add(1))
                && i.saturating_add(1) < n
                && next <= lo
            {
                continue;
            }
            let (child, gen_) = b.child(i).ok_or_else(|| {
                Error::corrupt("btrfs node", bytenr, format!("pointer {i} truncated"))
            })?;
            let r = self.walk(
                child,
                child_level,
                Some(gen_),
                lo,
                hi,
                depth.saturating_add(1),
                visited,
                f,
            )?;
            if r.is_break() {
                return Ok(r);
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The item with the greatest key `<= key` in the tree, if any (the
    /// tree's own: not through a log replay overlay, which only [`Trees::get`]
    /// and [`Trees::range`] consult).
    pub fn search_le(&self, root: u64, level: u8, key: Key) -> Result<Option<(Key, Vec<u8>)>> {
        let mut bytenr = root;
        let mut want_level = Some(level);
        let mut want_gen = None;
        for _ in 0..=MAX_LEVEL {
            let b = self.block(
                bytenr,
                Expect {
                    level: want_level,
                    generation: want_gen,
                },
            )?;
            let Some(i) = b.count_before(key, true).checked_sub(1) else {
                return Ok(None);
            };
            if b.level == 0 {
                let k = b.key(i).unwrap_or_default();
                let d = b.item(i).ok_or_else(|| {
                    Error::corrupt(
                        "btrfs leaf",
                        bytenr,
                        format!("item {i} lies outside the block"),
                    )
                })?;
                return Ok(Some((k, d.to_vec())));
            }
            let (child, g) = b
                .child(i)
                .ok_or_else(|| Error::corrupt("btrfs node", bytenr, "pointer truncated"))?;
            bytenr = child;
            want_level = b.level.checked_sub(1);
            want_gen = Some(g);
        }
        Err(Error::corrupt(
            "btrfs tree block",
            root,
            "the tree is deeper than 8 levels",
        ))
    }

    /// The items of exactly (objectid, type), all offsets, in order (at most `max`).
    pub fn items_of(
        &self,
        root: u64,
        level: u8,
        objectid: u64,
        ty: u8,
        max: usize,
    ) -> Result<Vec<(Key, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut over = false;
        self.range(
            root,
            level,
            Key::new(objectid, ty, 0),
            Key::new(objectid, ty, u64::MAX),
            &mut |k, d| {
                if out.len() >= max {
                    over = true;
                    return ControlFlow::Break(());
                }
                out.push((k, d.to_vec()));
                ControlFlow::Continue(())
            },
        )?;
        if over {
            return Err(Error::corrupt(
                "btrfs tree",
                root,
                format!("object {objectid} has more than {max} items of type {ty}"),
            ));
        }
        Ok(out)
    }

    /// The item with exactly `key`.
    pub fn get(&self, root: u64, level: u8, key: Key) -> Result<Option<Vec<u8>>> {
        if let Some(ov) = self.overlays.get(&root)
            && ov.ids.contains(&key.objectid)
        {
            return Ok(ov.items.get(&key).cloned());
        }
        Ok(self
            .search_le(root, level, key)?
            .filter(|(k, _)| *k == key)
            .map(|(_, d)| d))
    }
}
