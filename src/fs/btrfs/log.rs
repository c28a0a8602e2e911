//! The btrfs log tree (changes fsync'd since the last transaction commit)
//! replayed in memory, the way the kernel's log recovery does on mount.
//!
//! The superblock's `log_root` is the log root tree; its root items
//! `(TREE_LOG, ROOT_ITEM, subvolume id)` point at one log tree per
//! subvolume. Their blocks are read and verified like every other tree
//! block. The replay never writes the image: it builds, per subvolume, an
//! [`Overlay`] — the full new set of items of every object (inode) the log
//! touches — which [`super::tree::Trees`] consults in place of the
//! subvolume tree's own items of those objects.
//!
//! In the kernel's order: inode items first (copied over; directories
//! logged with `DIR_LOG_INDEX` ranges lose the entries of those ranges that
//! the log does not have; regular files are truncated to their logged size;
//! xattrs not in the log are removed), then the logged directory index
//! entries, then names (inode refs: the inode's names in that directory
//! that the log lacks are unlinked, the logged ones linked), file extents
//! (replacing the extents of the ranges they cover) and xattrs. Link counts
//! and directory sizes are then recounted, as the kernel's fix-ups do. The
//! data checksums of logged extents (`EXTENT_CSUM` items of the log trees)
//! are returned for the data reader.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use super::item::{self, DirItem, RootItem, extent_type, id, ty};
use super::sb::Key;
use super::tree::{Expect, Trees};
use crate::error::{Error, Result};

/// Object id of the log trees' root items (`BTRFS_TREE_LOG_OBJECTID`, -6).
pub const TREE_LOG: u64 = u64::MAX - 5;
/// Item type of a logged range of directory items (by hash).
pub const DIR_LOG_ITEM: u8 = 60;
/// Item type of a logged range of directory index entries.
pub const DIR_LOG_INDEX: u8 = 72;
/// Most log items replayed, and most subvolume items loaded to replay them.
pub const MAX_ITEMS: usize = 1 << 20;
/// Most log trees (subvolumes with a log).
const MAX_LOG_TREES: usize = 1 << 16;

/// The replaced items of one subvolume tree.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    /// Objects whose items are all in `items` (the tree's are not used).
    pub ids: BTreeSet<u64>,
    /// The items of those objects.
    pub items: BTreeMap<Key, Vec<u8>>,
}

/// What a replay gives.
#[derive(Debug, Default)]
pub struct Replayed {
    /// (subvolume id, its overlay).
    pub overlays: Vec<(u64, Overlay)>,
    /// Data checksums from the log: (logical start, checksums of sectors).
    pub csums: Vec<(u64, Vec<u8>)>,
    /// Log items replayed.
    pub items: usize,
    /// Log trees of subvolumes that are not found (not replayed).
    pub missing: Vec<u64>,
}

fn corrupt(at: u64, detail: impl Into<String>) -> Error {
    Error::corrupt("btrfs log tree", at, detail)
}

/// Every item of the tree at `root` (level read from its block), at most `max`.
fn all_items(t: &Trees, root: u64, max: usize) -> Result<Vec<(Key, Vec<u8>)>> {
    let level = t
        .block(
            root,
            Expect {
                level: None,
                generation: None,
            },
        )?
        .level;
    let mut out = Vec::new();
    let mut over = false;
    t.range(
        root,
        level,
        Key::new(0, 0, 0),
        Key::new(u64::MAX, u8::MAX, u64::MAX),
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
        return Err(corrupt(
            root,
            format!("more than {max} items: the log is not replayed"),
        ));
    }
    Ok(out)
}

/// Replay the log whose root tree is at `log_root`; `subvol_tree` gives the
/// (root block, level) of a subvolume's tree by id.
pub fn replay(
    t: &Trees,
    log_root: u64,
    subvol_tree: &dyn Fn(u64) -> Option<(u64, u8)>,
) -> Result<Replayed> {
    let mut out = Replayed::default();
    let roots = all_items(t, log_root, MAX_LOG_TREES)?;
    let mut budget = MAX_ITEMS;
    for (k, d) in roots {
        if k.objectid != TREE_LOG || k.ty != ty::ROOT_ITEM {
            continue;
        }
        let ri = RootItem::parse(k, &d)?;
        let Some(tree) = subvol_tree(k.offset) else {
            out.missing.push(k.offset);
            continue;
        };
        let items = all_items(t, ri.bytenr, budget)?;
        budget = budget.saturating_sub(items.len());
        out.items = out.items.saturating_add(items.len());
        let source = |ino: u64, cap: usize| subvol_object(t, tree, ino, cap);
        let ov = replay_items(&source, &items, t.sb.sectorsize, &mut out.csums)?;
        out.overlays.push((k.offset, ov));
    }
    Ok(out)
}

/// The items of object `ino` of the tree at `tree`, at most `cap`.
fn subvol_object(t: &Trees, tree: (u64, u8), ino: u64, cap: usize) -> Result<Obj> {
    let mut m = Obj::new();
    let mut over = false;
    t.range(
        tree.0,
        tree.1,
        Key::new(ino, 0, 0),
        Key::new(ino, u8::MAX, u64::MAX),
        &mut |k, d| {
            if m.len() >= cap {
                over = true;
                return ControlFlow::Break(());
            }
            m.insert(k, d.to_vec());
            ControlFlow::Continue(())
        },
    )?;
    if over {
        return Err(corrupt(
            tree.0,
            format!("replaying it needs more than {MAX_ITEMS} items of the subvolume"),
        ));
    }
    Ok(m)
}

/// Where [`replay_items`] reads the subvolume's items of one object (at
/// most the given count).
pub type Source<'a> = dyn Fn(u64, usize) -> Result<Obj> + 'a;

/// Replay the items `log` of one subvolume's log tree (in key order) over
/// the subvolume whose objects `source` gives; the log's data checksums are
/// added to `csums`.
pub fn replay_items(
    source: &Source<'_>,
    log: &[(Key, Vec<u8>)],
    sectorsize: u32,
    csums: &mut Vec<(u64, Vec<u8>)>,
) -> Result<Overlay> {
    let mut st = State {
        source,
        objs: BTreeMap::new(),
        loaded: 0,
        ss: u64::from(sectorsize.max(1)),
        dirs: BTreeSet::new(),
        links: BTreeSet::new(),
        data: BTreeSet::new(),
    };
    st.run(log, csums)?;
    st.finish()
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a).saturating_mul(a)
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = off.checked_add(8).and_then(|e| b.get_mut(off..e)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = off.checked_add(4).and_then(|e| b.get_mut(off..e)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn le64(b: &[u8], off: usize) -> u64 {
    crate::io::le::u64(b, off).unwrap_or(0)
}

fn le32(b: &[u8], off: usize) -> u32 {
    crate::io::le::u32(b, off).unwrap_or(0)
}

/// Encode one dir item entry (transid 0).
fn encode_dir(e: &DirItem, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.location.objectid.to_le_bytes());
    out.push(e.location.ty);
    out.extend_from_slice(&e.location.offset.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&u16::try_from(e.data.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&u16::try_from(e.name.len()).unwrap_or(0).to_le_bytes());
    out.push(e.file_type);
    out.extend_from_slice(&e.name);
    out.extend_from_slice(&e.data);
}

fn encode_dirs(v: &[DirItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in v {
        encode_dir(e, &mut out);
    }
    out
}

fn encode_refs(v: &[item::InodeName]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in v {
        out.extend_from_slice(&n.index.to_le_bytes());
        out.extend_from_slice(&u16::try_from(n.name.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&n.name);
    }
    out
}

fn encode_extrefs(v: &[item::InodeName]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in v {
        out.extend_from_slice(&n.parent.to_le_bytes());
        out.extend_from_slice(&n.index.to_le_bytes());
        out.extend_from_slice(&u16::try_from(n.name.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&n.name);
    }
    out
}

/// The file type byte of a directory entry for inode mode `mode`.
fn ftype_of(mode: u32) -> u8 {
    match mode & 0o170_000 {
        0o100_000 => 1,
        0o040_000 => 2,
        0o020_000 => 3,
        0o060_000 => 4,
        0o010_000 => 5,
        0o140_000 => 6,
        0o120_000 => 7,
        _ => 0,
    }
}

fn is_dir(inode: &[u8]) -> bool {
    le32(inode, 52) & 0o170_000 == 0o040_000
}

fn is_reg(inode: &[u8]) -> bool {
    le32(inode, 52) & 0o170_000 == 0o100_000
}

/// The items of one object.
pub type Obj = BTreeMap<Key, Vec<u8>>;

struct State<'a> {
    source: &'a Source<'a>,
    /// Objects loaded from the subvolume tree and changed.
    objs: BTreeMap<u64, Obj>,
    loaded: usize,
    ss: u64,
    /// Directories whose entries changed (sizes recounted).
    dirs: BTreeSet<u64>,
    /// Inodes whose names changed (link counts recounted).
    links: BTreeSet<u64>,
    /// Regular files whose extents changed (bytes recounted).
    data: BTreeSet<u64>,
}

impl State<'_> {
    /// The items of object `ino`, loaded from the subvolume tree once.
    fn obj(&mut self, ino: u64) -> Result<&mut Obj> {
        if !self.objs.contains_key(&ino) {
            let m = (self.source)(ino, MAX_ITEMS.saturating_sub(self.loaded))?;
            self.loaded = self.loaded.saturating_add(m.len());
            self.objs.insert(ino, m);
        }
        self.objs
            .get_mut(&ino)
            .ok_or_else(|| corrupt(0, format!("object {ino} vanished")))
    }

    fn inode(&mut self, ino: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .obj(ino)?
            .get(&Key::new(ino, ty::INODE_ITEM, 0))
            .cloned())
    }

    /// The entry named `name` in directory `dir`: (entry, index). The
    /// index comes from the named inode's reference (no scan of the
    /// directory's index: that would make replaying big directories slow).
    fn find_name(&mut self, dir: u64, name: &[u8]) -> Result<Option<(DirItem, Option<u64>)>> {
        let hash = u64::from(super::name_hash(name));
        let key = Key::new(dir, ty::DIR_ITEM, hash);
        let found = match self.obj(dir)?.get(&key) {
            Some(d) => item::dir_items(key, d)?
                .into_iter()
                .find(|e| e.name == name),
            None => None,
        };
        let Some(e) = found else { return Ok(None) };
        if e.location.ty != ty::INODE_ITEM {
            return Ok(Some((e, None)));
        }
        let child = e.location.objectid;
        let o = self.obj(child)?;
        let rk = Key::new(child, ty::INODE_REF, dir);
        let mut index = match o.get(&rk) {
            Some(d) => item::inode_refs(rk, d)?
                .into_iter()
                .find(|n| n.name == name)
                .map(|n| n.index),
            None => None,
        };
        if index.is_none() {
            for (k, d) in o.range(
                Key::new(child, ty::INODE_EXTREF, 0)..=Key::new(child, ty::INODE_EXTREF, u64::MAX),
            ) {
                if let Some(n) = item::inode_extrefs(*k, d)?
                    .into_iter()
                    .find(|n| n.parent == dir && n.name == name)
                {
                    index = Some(n.index);
                    break;
                }
            }
        }
        Ok(Some((e, index)))
    }

    /// Remove name `name` (index `index`) of `child` from directory `dir`.
    fn unlink(&mut self, dir: u64, name: &[u8], child: Key, index: Option<u64>) -> Result<()> {
        let hash = u64::from(super::name_hash(name));
        let o = self.obj(dir)?;
        let key = Key::new(dir, ty::DIR_ITEM, hash);
        if let Some(d) = o.get(&key) {
            let rest: Vec<DirItem> = item::dir_items(key, d)?
                .into_iter()
                .filter(|e| e.name != name)
                .collect();
            if rest.is_empty() {
                o.remove(&key);
            } else {
                o.insert(key, encode_dirs(&rest));
            }
        }
        let idx_keys: Vec<Key> = match index {
            Some(i) => vec![Key::new(dir, ty::DIR_INDEX, i)],
            None => o
                .range(Key::new(dir, ty::DIR_INDEX, 0)..=Key::new(dir, ty::DIR_INDEX, u64::MAX))
                .map(|(k, _)| *k)
                .collect(),
        };
        for k in idx_keys {
            if let Some(d) = o.get(&k) {
                let all = item::dir_items(k, d)?;
                if all.iter().any(|e| e.name == name) {
                    let rest: Vec<DirItem> = all.into_iter().filter(|e| e.name != name).collect();
                    if rest.is_empty() {
                        o.remove(&k);
                    } else {
                        o.insert(k, encode_dirs(&rest));
                    }
                }
            }
        }
        self.dirs.insert(dir);
        if child.ty != ty::INODE_ITEM {
            return Ok(());
        }
        let c = child.objectid;
        let o = self.obj(c)?;
        let rk = Key::new(c, ty::INODE_REF, dir);
        if let Some(d) = o.get(&rk) {
            let rest: Vec<item::InodeName> = item::inode_refs(rk, d)?
                .into_iter()
                .filter(|n| n.name != name)
                .collect();
            if rest.is_empty() {
                o.remove(&rk);
            } else {
                o.insert(rk, encode_refs(&rest));
            }
        }
        let ext: Vec<Key> = o
            .range(Key::new(c, ty::INODE_EXTREF, 0)..=Key::new(c, ty::INODE_EXTREF, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in ext {
            if let Some(d) = o.get(&k) {
                let all = item::inode_extrefs(k, d)?;
                let rest: Vec<item::InodeName> = all
                    .iter()
                    .filter(|n| !(n.parent == dir && n.name == name))
                    .cloned()
                    .collect();
                if rest.len() != all.len() {
                    if rest.is_empty() {
                        o.remove(&k);
                    } else {
                        o.insert(k, encode_extrefs(&rest));
                    }
                }
            }
        }
        self.links.insert(c);
        Ok(())
    }

    /// Link inode `child` into `dir` as `name` at `index`.
    fn link(&mut self, dir: u64, name: &[u8], index: u64, child: u64, ftype: u8) -> Result<()> {
        let e = DirItem {
            location: Key::new(child, ty::INODE_ITEM, 0),
            file_type: ftype,
            name: name.to_vec(),
            data: Vec::new(),
        };
        let hash = u64::from(super::name_hash(name));
        let o = self.obj(dir)?;
        let key = Key::new(dir, ty::DIR_ITEM, hash);
        let mut v = match o.get(&key) {
            Some(d) => item::dir_items(key, d)?,
            None => Vec::new(),
        };
        v.retain(|x| x.name != name);
        v.push(e.clone());
        o.insert(key, encode_dirs(&v));
        o.insert(Key::new(dir, ty::DIR_INDEX, index), encode_dirs(&[e]));
        self.dirs.insert(dir);
        let o = self.obj(child)?;
        let rk = Key::new(child, ty::INODE_REF, dir);
        let mut refs = match o.get(&rk) {
            Some(d) => item::inode_refs(rk, d)?,
            None => Vec::new(),
        };
        let has_ext = o
            .range(
                Key::new(child, ty::INODE_EXTREF, 0)..=Key::new(child, ty::INODE_EXTREF, u64::MAX),
            )
            .any(|(k, d)| {
                item::inode_extrefs(*k, d)
                    .map(|v| v.iter().any(|n| n.parent == dir && n.name == name))
                    .unwrap_or(false)
            });
        if !has_ext && !refs.iter().any(|n| n.name == name) {
            refs.push(item::InodeName {
                parent: dir,
                index,
                name: name.to_vec(),
            });
            o.insert(rk, encode_refs(&refs));
        }
        self.links.insert(child);
        Ok(())
    }

    /// Make sure `name` in `dir` names `child` at `index`: an entry of that
    /// name naming something else is unlinked first.
    fn ensure_link(&mut self, dir: u64, name: &[u8], index: u64, child: u64) -> Result<()> {
        if let Some((ex, ex_index)) = self.find_name(dir, name)? {
            if ex.location.ty == ty::INODE_ITEM
                && ex.location.objectid == child
                && ex_index == Some(index)
            {
                return Ok(());
            }
            self.unlink(dir, name, ex.location, ex_index)?;
        }
        // Another name at that index goes too.
        let ik = Key::new(dir, ty::DIR_INDEX, index);
        if let Some(d) = self.obj(dir)?.get(&ik).cloned() {
            for e in item::dir_items(ik, &d)? {
                self.unlink(dir, &e.name, e.location, Some(index))?;
            }
        }
        let Some(inode) = self.inode(child)? else {
            return Ok(());
        };
        self.link(dir, name, index, child, ftype_of(le32(&inode, 52)))
    }

    /// Drop the extents of `ino` over `[start, end)`, splitting those that
    /// straddle the edges.
    fn drop_extents(&mut self, ino: u64, start: u64, end: u64) -> Result<()> {
        let ss = self.ss;
        let o = self.obj(ino)?;
        let keys: Vec<Key> = o
            .range(Key::new(ino, ty::EXTENT_DATA, 0)..=Key::new(ino, ty::EXTENT_DATA, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let Some(raw) = o.get(&k).cloned() else {
                continue;
            };
            let x = item::FileExtent::parse(k, &raw)?;
            let inline = x.kind == extent_type::INLINE;
            let len = if inline {
                align_up(x.ram_bytes.max(x.inline.len() as u64), ss)
            } else {
                x.num_bytes
            };
            let xend = k.offset.saturating_add(len);
            if xend <= start || k.offset >= end {
                continue;
            }
            o.remove(&k);
            if inline {
                continue;
            }
            if k.offset < start {
                let mut head = raw.clone();
                put_u64(&mut head, 45, start.saturating_sub(k.offset));
                o.insert(k, head);
            }
            if xend > end {
                let cut = end.saturating_sub(k.offset);
                let mut tail = raw;
                if x.disk_bytenr != 0 || x.kind == extent_type::PREALLOC {
                    put_u64(&mut tail, 37, x.offset.saturating_add(cut));
                }
                put_u64(&mut tail, 45, xend.saturating_sub(end));
                o.insert(Key::new(ino, ty::EXTENT_DATA, end), tail);
            }
        }
        Ok(())
    }

    fn run(&mut self, log: &[(Key, Vec<u8>)], csums: &mut Vec<(u64, Vec<u8>)>) -> Result<()> {
        let ino_range = |k: &Key| k.objectid >= id::FIRST_FREE && k.objectid <= id::LAST_FREE;
        // Inodes logged with no links (an fsync'd O_TMPFILE, an unlinked
        // file still open) are left out, with their items.
        let ignored: BTreeSet<u64> = log
            .iter()
            .filter(|(k, d)| k.ty == ty::INODE_ITEM && d.len() >= 44 && le32(d, 40) == 0)
            .map(|(k, _)| k.objectid)
            .collect();
        let ino_range =
            |k: &Key| ino_range(k) && (k.ty == ty::DIR_INDEX || !ignored.contains(&k.objectid));
        // Stage 1: inode items, directory deletes, truncation, xattr deletes.
        for (k, d) in log
            .iter()
            .filter(|(k, _)| k.ty == ty::INODE_ITEM && ino_range(k))
        {
            let ino = k.objectid;
            if d.len() < item::INODE_ITEM_LEN {
                return Err(corrupt(
                    0,
                    format!("inode {ino}: a logged inode item of {} bytes", d.len()),
                ));
            }
            if is_dir(d) {
                self.dir_deletes(ino, log)?;
            }
            let old = self.inode(ino)?;
            let mut new = d.clone();
            match &old {
                // Logged only to say it exists (generation 0): the inode
                // stays, with the logged size of a regular file if not 0.
                Some(old) if le64(d, 0) == 0 => {
                    new = old.clone();
                    if is_reg(d) && is_reg(old) && le64(d, 16) != 0 {
                        put_u64(&mut new, 16, le64(d, 16));
                    }
                }
                // A directory's size follows its entries (recounted).
                Some(old) if is_dir(d) && is_dir(old) => put_u64(&mut new, 16, le64(old, 16)),
                _ => {}
            }
            let size = le64(&new, 16);
            let (dir, reg) = (is_dir(&new), is_reg(&new));
            self.obj(ino)?.insert(*k, new);
            self.links.insert(ino);
            if dir {
                self.dirs.insert(ino);
            }
            if reg {
                self.drop_extents(ino, align_up(size, self.ss), u64::MAX)?;
                self.data.insert(ino);
            }
            if le64(d, 0) != 0 {
                self.xattr_deletes(ino, log)?;
            }
        }
        // Stage 2: logged directory index entries.
        for (k, d) in log
            .iter()
            .filter(|(k, _)| k.ty == ty::DIR_INDEX && ino_range(k))
        {
            for e in item::dir_items(*k, d)? {
                if e.location.ty != ty::INODE_ITEM {
                    continue;
                }
                self.ensure_link(k.objectid, &e.name, k.offset, e.location.objectid)?;
            }
        }
        // Stage 3: names, extents, xattrs, checksums.
        for (k, d) in log {
            if k.objectid == id::EXTENT_CSUM && k.ty == ty::EXTENT_CSUM {
                csums.push((k.offset, d.clone()));
                continue;
            }
            if !ino_range(k) {
                continue;
            }
            match k.ty {
                ty::INODE_REF => {
                    let names = item::inode_refs(*k, d)?;
                    self.replay_names(k.objectid, k.offset, &names, *k, d)?;
                }
                ty::INODE_EXTREF => {
                    let names = item::inode_extrefs(*k, d)?;
                    let parents: BTreeSet<u64> = names.iter().map(|n| n.parent).collect();
                    for p in parents {
                        let mine: Vec<item::InodeName> =
                            names.iter().filter(|n| n.parent == p).cloned().collect();
                        self.replay_names(k.objectid, p, &mine, *k, d)?;
                    }
                }
                ty::EXTENT_DATA => self.replay_extent(*k, d)?,
                ty::XATTR_ITEM => {
                    self.obj(k.objectid)?.insert(*k, d.clone());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Entries of logged ranges of directory `dir` that the log lacks go.
    fn dir_deletes(&mut self, dir: u64, log: &[(Key, Vec<u8>)]) -> Result<()> {
        let lo = Key::new(dir, DIR_LOG_INDEX, 0);
        let hi = Key::new(dir, DIR_LOG_INDEX, u64::MAX);
        let ranges: Vec<(u64, u64)> = log
            .iter()
            .filter(|(k, _)| *k >= lo && *k <= hi)
            .map(|(k, d)| (k.offset, le64(d, 0)))
            .collect();
        for (s, e) in ranges {
            if e < s {
                continue;
            }
            let here: Vec<(Key, Vec<u8>)> = self
                .obj(dir)?
                .range(Key::new(dir, ty::DIR_INDEX, s)..=Key::new(dir, ty::DIR_INDEX, e))
                .map(|(k, d)| (*k, d.clone()))
                .collect();
            for (k, d) in here {
                let logged = log
                    .binary_search_by(|(lk, _)| lk.cmp(&k))
                    .ok()
                    .and_then(|i| log.get(i))
                    .and_then(|(_, ld)| item::dir_items(k, ld).ok())
                    .unwrap_or_default();
                for x in item::dir_items(k, &d)? {
                    if !logged.iter().any(|l| l.name == x.name) {
                        self.unlink(dir, &x.name, x.location, Some(k.offset))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Xattrs of `ino` the log does not have go.
    fn xattr_deletes(&mut self, ino: u64, log: &[(Key, Vec<u8>)]) -> Result<()> {
        let lo = Key::new(ino, ty::XATTR_ITEM, 0);
        let hi = Key::new(ino, ty::XATTR_ITEM, u64::MAX);
        let mut logged: Vec<Vec<u8>> = Vec::new();
        for (k, d) in log.iter().filter(|(k, _)| *k >= lo && *k <= hi) {
            logged.extend(item::dir_items(*k, d)?.into_iter().map(|e| e.name));
        }
        let o = self.obj(ino)?;
        let keys: Vec<Key> = o.range(lo..=hi).map(|(k, _)| *k).collect();
        for k in keys {
            if let Some(d) = o.get(&k) {
                let all = item::dir_items(k, d)?;
                let rest: Vec<DirItem> = all
                    .iter()
                    .filter(|e| logged.contains(&e.name))
                    .cloned()
                    .collect();
                if rest.len() != all.len() {
                    if rest.is_empty() {
                        o.remove(&k);
                    } else {
                        o.insert(k, encode_dirs(&rest));
                    }
                }
            }
        }
        Ok(())
    }

    /// Names of inode `ino` in directory `parent` become the logged `names`.
    fn replay_names(
        &mut self,
        ino: u64,
        parent: u64,
        names: &[item::InodeName],
        key: Key,
        raw: &[u8],
    ) -> Result<()> {
        // A subvolume's root directory names itself `..`: nothing to link.
        if parent == ino || self.inode(parent)?.is_none() || self.inode(ino)?.is_none() {
            return Ok(());
        }
        // The inode's names in `parent` that the log lacks.
        let mut old: Vec<item::InodeName> = Vec::new();
        {
            let o = self.obj(ino)?;
            let rk = Key::new(ino, ty::INODE_REF, parent);
            if let Some(d) = o.get(&rk) {
                old.extend(item::inode_refs(rk, d)?);
            }
            for (k, d) in o.range(
                Key::new(ino, ty::INODE_EXTREF, 0)..=Key::new(ino, ty::INODE_EXTREF, u64::MAX),
            ) {
                old.extend(
                    item::inode_extrefs(*k, d)?
                        .into_iter()
                        .filter(|n| n.parent == parent),
                );
            }
        }
        for n in old {
            if !names.iter().any(|l| l.name == n.name) {
                self.unlink(
                    parent,
                    &n.name,
                    Key::new(ino, ty::INODE_ITEM, 0),
                    Some(n.index),
                )?;
            }
        }
        for n in names {
            self.ensure_link(parent, &n.name, n.index, ino)?;
        }
        if key.ty == ty::INODE_REF {
            self.obj(ino)?.insert(key, raw.to_vec());
        } else {
            // An extref item: keep the entries of other parents it holds.
            let o = self.obj(ino)?;
            let mut v = match o.get(&key) {
                Some(d) => item::inode_extrefs(key, d)?,
                None => Vec::new(),
            };
            v.retain(|x| x.parent != parent);
            v.extend(names.iter().cloned());
            // Drop the plain refs ensure_link may have added for them.
            let rk = Key::new(ino, ty::INODE_REF, parent);
            if let Some(d) = o.get(&rk) {
                let rest: Vec<item::InodeName> = item::inode_refs(rk, d)?
                    .into_iter()
                    .filter(|r| !names.iter().any(|n| n.name == r.name))
                    .collect();
                if rest.is_empty() {
                    o.remove(&rk);
                } else {
                    o.insert(rk, encode_refs(&rest));
                }
            }
            o.insert(key, encode_extrefs(&v));
        }
        self.links.insert(ino);
        Ok(())
    }

    /// A logged file extent replaces what the file had over its range.
    fn replay_extent(&mut self, k: Key, d: &[u8]) -> Result<()> {
        let x = item::FileExtent::parse(k, d)?;
        let len = if x.kind == extent_type::INLINE {
            align_up(x.ram_bytes.max(x.inline.len() as u64), self.ss)
        } else {
            x.num_bytes
        };
        if self.obj(k.objectid)?.get(&k).is_some_and(|old| old == d) {
            return Ok(());
        }
        self.drop_extents(k.objectid, k.offset, k.offset.saturating_add(len))?;
        self.obj(k.objectid)?.insert(k, d.to_vec());
        self.data.insert(k.objectid);
        Ok(())
    }

    /// Recount link counts, directory sizes and file bytes; the overlay.
    fn finish(mut self) -> Result<Overlay> {
        let links: Vec<u64> = self.links.iter().copied().collect();
        for ino in links {
            let o = self.obj(ino)?;
            let ik = Key::new(ino, ty::INODE_ITEM, 0);
            let Some(inode) = o.get(&ik) else { continue };
            if is_dir(inode) {
                continue;
            }
            let mut n = 0u64;
            for (k, d) in
                o.range(Key::new(ino, ty::INODE_REF, 0)..=Key::new(ino, ty::INODE_EXTREF, u64::MAX))
            {
                let c = match k.ty {
                    ty::INODE_REF => item::inode_refs(*k, d)?.len(),
                    ty::INODE_EXTREF => item::inode_extrefs(*k, d)?.len(),
                    _ => 0,
                };
                n = n.saturating_add(c as u64);
            }
            if let Some(inode) = o.get_mut(&ik) {
                put_u32(inode, 40, u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
        let dirs: Vec<u64> = self.dirs.iter().copied().collect();
        for dir in dirs {
            let o = self.obj(dir)?;
            let ik = Key::new(dir, ty::INODE_ITEM, 0);
            if !o.get(&ik).is_some_and(|i| is_dir(i)) {
                continue;
            }
            let mut size = 0u64;
            for (k, d) in
                o.range(Key::new(dir, ty::DIR_INDEX, 0)..=Key::new(dir, ty::DIR_INDEX, u64::MAX))
            {
                for e in item::dir_items(*k, d)? {
                    size = size.saturating_add((e.name.len() as u64).saturating_mul(2));
                }
            }
            if let Some(inode) = o.get_mut(&ik) {
                put_u64(inode, 16, size);
            }
        }
        let data: Vec<u64> = self.data.iter().copied().collect();
        let ss = self.ss;
        for ino in data {
            let o = self.obj(ino)?;
            let mut bytes = 0u64;
            for (k, d) in o
                .range(Key::new(ino, ty::EXTENT_DATA, 0)..=Key::new(ino, ty::EXTENT_DATA, u64::MAX))
            {
                let x = item::FileExtent::parse(*k, d)?;
                let b = match x.kind {
                    extent_type::INLINE => align_up(x.ram_bytes, ss),
                    _ if x.disk_bytenr == 0 => 0,
                    _ => x.num_bytes,
                };
                bytes = bytes.saturating_add(b);
            }
            if let Some(inode) = o.get_mut(&Key::new(ino, ty::INODE_ITEM, 0)) {
                put_u64(inode, 24, bytes);
            }
        }
        let mut ov = Overlay::default();
        for (ino, items) in self.objs {
            ov.ids.insert(ino);
            ov.items.extend(items);
        }
        Ok(ov)
    }
}

/// Whether the btrfs superblock in `src` names a log tree (read without
/// opening the filesystem; false when it cannot be read).
pub fn has_log_tree(src: &dyn crate::io::ReadAt) -> bool {
    super::sb::read(src).is_ok_and(|(sb, _)| sb.log_root != 0)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn inode(mode: u32, size: u64, nlink: u32) -> Vec<u8> {
        let mut b = vec![0u8; item::INODE_ITEM_LEN];
        put_u64(&mut b, 0, 1);
        put_u64(&mut b, 16, size);
        put_u32(&mut b, 40, nlink);
        put_u32(&mut b, 52, mode);
        b
    }

    fn reg_extent(disk: u64, offset: u64, len: u64) -> Vec<u8> {
        let mut b = vec![0u8; 53];
        b[20] = extent_type::REG;
        put_u64(&mut b, 8, len);
        put_u64(&mut b, 21, disk);
        put_u64(&mut b, 29, 1 << 20);
        put_u64(&mut b, 37, offset);
        put_u64(&mut b, 45, len);
        b
    }

    fn entry(child: u64, name: &[u8]) -> Vec<u8> {
        encode_dirs(&[DirItem {
            location: Key::new(child, ty::INODE_ITEM, 0),
            file_type: 1,
            name: name.to_vec(),
            data: Vec::new(),
        }])
    }

    fn name_ref(index: u64, name: &[u8]) -> Vec<u8> {
        encode_refs(&[item::InodeName {
            parent: 0,
            index,
            name: name.to_vec(),
        }])
    }

    fn run(fs: &Obj, log: &Obj) -> Result<Overlay> {
        let source = |ino: u64, cap: usize| -> Result<Obj> {
            let m: Obj = fs
                .range(Key::new(ino, 0, 0)..=Key::new(ino, u8::MAX, u64::MAX))
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            if m.len() > cap {
                return Err(corrupt(0, "too many"));
            }
            Ok(m)
        };
        let items: Vec<(Key, Vec<u8>)> = log.iter().map(|(k, v)| (*k, v.clone())).collect();
        replay_items(&source, &items, 4096, &mut Vec::new())
    }

    #[test]
    fn a_logged_extent_splits_the_one_it_lands_in() {
        let mut fs = Obj::new();
        fs.insert(Key::new(257, ty::INODE_ITEM, 0), inode(0o100_644, 12288, 1));
        fs.insert(
            Key::new(257, ty::EXTENT_DATA, 0),
            reg_extent(1 << 20, 0, 12288),
        );
        let mut log = Obj::new();
        log.insert(Key::new(257, ty::INODE_ITEM, 0), inode(0o100_644, 12288, 1));
        log.insert(
            Key::new(257, ty::EXTENT_DATA, 4096),
            reg_extent(2 << 20, 0, 4096),
        );
        let ov = run(&fs, &log).unwrap();
        let got: Vec<(u64, u64, u64, u64)> = ov
            .items
            .iter()
            .filter(|(k, _)| k.ty == ty::EXTENT_DATA)
            .map(|(k, d)| (k.offset, le64(d, 21), le64(d, 37), le64(d, 45)))
            .collect();
        assert_eq!(
            got,
            [
                (0, 1 << 20, 0, 4096),
                (4096, 2 << 20, 0, 4096),
                (8192, 1 << 20, 8192, 4096)
            ]
        );
        // Bytes recounted.
        let i = &ov.items[&Key::new(257, ty::INODE_ITEM, 0)];
        assert_eq!(le64(i, 24), 12288);
    }

    #[test]
    fn a_logged_name_replaces_the_entry_it_lands_on() {
        let mut fs = Obj::new();
        fs.insert(Key::new(256, ty::INODE_ITEM, 0), inode(0o040_755, 4, 1));
        for (ino, name, idx) in [(257u64, b"a", 2u64), (258, b"b", 3)] {
            let h = u64::from(super::super::name_hash(name));
            fs.insert(Key::new(256, ty::DIR_ITEM, h), entry(ino, name));
            fs.insert(Key::new(256, ty::DIR_INDEX, idx), entry(ino, name));
            fs.insert(Key::new(ino, ty::INODE_ITEM, 0), inode(0o100_644, 0, 1));
            fs.insert(Key::new(ino, ty::INODE_REF, 256), name_ref(idx, name));
        }
        // `mv a b`, then fsync of b.
        let mut log = Obj::new();
        log.insert(Key::new(257, ty::INODE_ITEM, 0), inode(0o100_644, 0, 1));
        log.insert(Key::new(257, ty::INODE_REF, 256), name_ref(4, b"b"));
        let ov = run(&fs, &log).unwrap();
        let index: Vec<(u64, Vec<u8>, u64)> = ov
            .items
            .iter()
            .filter(|(k, _)| k.objectid == 256 && k.ty == ty::DIR_INDEX)
            .flat_map(|(k, d)| {
                item::dir_items(*k, d)
                    .unwrap()
                    .into_iter()
                    .map(move |e| (k.offset, e.name, e.location.objectid))
            })
            .collect();
        assert_eq!(index, [(4, b"b".to_vec(), 257)]);
        let dir = &ov.items[&Key::new(256, ty::INODE_ITEM, 0)];
        assert_eq!(le64(dir, 16), 2);
        let victim = &ov.items[&Key::new(258, ty::INODE_ITEM, 0)];
        assert_eq!(le32(victim, 40), 0);
        assert!(!ov.items.contains_key(&Key::new(258, ty::INODE_REF, 256)));
    }

    #[test]
    fn an_error_reading_the_subvolume_stops_the_replay() {
        let mut log = Obj::new();
        log.insert(Key::new(257, ty::INODE_ITEM, 0), inode(0o100_644, 0, 1));
        let source = |_: u64, _: usize| -> Result<Obj> { Err(corrupt(7, "over the cap")) };
        let items: Vec<(Key, Vec<u8>)> = log.into_iter().collect();
        let e = replay_items(&source, &items, 4096, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("over the cap"), "{e}");
    }
}
