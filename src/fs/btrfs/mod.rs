//! Our own btrfs reader, read-only, over one device or several.
//!
//! The superblock (a mirror copy when the primary is damaged), the chunk
//! map (SINGLE, DUP, RAID0/1/10, RAID1C3/4, RAID5/6 over the devices
//! found, [`devices`]), tree blocks
//! checked against their checksums (another copy used when one is bad),
//! subvolumes and snapshots shown where their references put them (the
//! default subvolume is `/`), inodes, directories, extended attributes,
//! symlinks and file data (inline, regular, preallocated, holes, compressed)
//! with its checksums verified.
//!
//! The log tree (fsync'd changes not yet committed) is replayed in memory
//! (`log.rs`), as the kernel does on mount, unless
//! [`FsOptions::no_journal`]: then what is shown is what
//! `mount -o rescue=nologreplay` shows, and [`FsStatus::notes`] says so.

pub mod compress;
pub mod csum;
pub mod devices;
pub mod item;
pub mod log;
pub mod raid6;
pub mod sb;
pub mod tree;

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::fs::problems::ProblemLog;
use crate::fs::{
    DirEntry, FileExtent, FileType, FsOptions, FsStatus, FsView, Metadata, NodeId, Space,
    SubvolSpec, Timestamp, Xattr,
};
use crate::io::ReadAt;
use crate::problem::Problem;

use item::{DirItem, Inode, RootItem, RootRef, extent_type, id, ty};
use sb::{ChunkMap, Key, Superblock};
use tree::Trees;

/// Bits of a [`NodeId`] holding the inode number.
const INO_BITS: u32 = 40;
/// Most subvolumes (the index takes bits 40..56).
const MAX_SUBVOLS: usize = 1 << 16;
/// Most directory entries listed from one directory.
const MAX_DIR_ENTRIES: usize = 8 << 20;
/// Most extent items of one file.
const MAX_FILE_EXTENTS: usize = 4 << 20;
/// Most xattrs of one inode.
const MAX_XATTRS: usize = 1 << 16;
/// Largest data run read at once.
const MAX_READ_RUN: u64 = 8 << 20;
/// Largest compressed extent read.
const MAX_COMPRESSED: u64 = 16 << 20;
/// Most compressed extents one read decompresses ahead, side by side.
const AHEAD_EXTENTS: usize = 16;
/// Most threads that decompress side by side.
const AHEAD_THREADS: usize = 4;
/// Extent maps kept for files being read.
const MAP_CACHE: usize = 8;
/// What the status says when there is a log tree and `--no-journal`.
pub const LOG_NOTE: &str = "the btrfs log tree (fsync'd changes not yet committed) was not replayed (--no-journal): what is shown is what `mount -o rescue=nologreplay` shows";
/// How the status note of a replayed log starts.
pub const REPLAYED_NOTE: &str = "log replayed in memory";
/// What the status says when the log tree cannot be replayed.
pub const NOT_REPLAYED_NOTE: &str = "the btrfs log tree (fsync'd changes not yet committed) could not be replayed: what is shown is what `mount -o rescue=nologreplay` shows";
/// What the kernel engine says when it mounts a filesystem with a log tree.
pub const KERNEL_NOT_REPLAYED_NOTE: &str = "the btrfs log tree (fsync'd changes not yet committed) is not replayed by the kernel engine's read-only mount (rescue=nologreplay): what is shown is the state of the last commit, without the last fsync'd changes (the userspace engine replays the log in memory)";

/// What [`Btrfs::subvolumes`] tells about one subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubvolInfo {
    /// Subvolume id (5: the top level).
    pub id: u64,
    /// The subvolume it sits in (0 for the top level).
    pub parent_id: u64,
    /// Path from the top level (empty for it).
    pub path: Vec<u8>,
    /// UUID (zero on old filesystems).
    pub uuid: [u8; 16],
    /// Read-only (a read-only snapshot).
    pub read_only: bool,
    /// The id of the subvolume this one is a snapshot of (its root item's
    /// `parent_uuid`), when that subvolume is still here.
    pub snapshot_of: Option<u64>,
    /// Whether it is the default subvolume (`btrfs subvolume set-default`).
    pub default: bool,
    /// Generation of its root.
    pub generation: u64,
    /// Creation time.
    pub otime: Timestamp,
}

#[derive(Debug, Clone)]
struct Subvol {
    id: u64,
    root: RootItem,
    /// (parent subvolume id, reference) where it sits.
    parent: Option<(u64, RootRef)>,
}

type ExtentMap = Arc<Vec<(u64, item::FileExtent)>>;

/// A btrfs filesystem, read-only.
pub struct Btrfs {
    t: Trees,
    root_tree: (u64, u8),
    csum_tree: Option<(u64, u8)>,
    subvols: Vec<Subvol>,
    root_idx: usize,
    notes: Vec<String>,
    problems: Arc<ProblemLog>,
    maps: Mutex<Vec<((usize, u64), ExtentMap)>>,
    /// Data checksums from the replayed log: (logical start, checksums).
    log_csums: Vec<(u64, Vec<u8>)>,
    zcache: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for Btrfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btrfs")
            .field("nodesize", &self.t.sb.nodesize)
            .field("subvolumes", &self.subvols.len())
            .finish()
    }
}

/// `btrfs_name_hash`: CRC-32C from the raw register `~1`, not inverted.
pub fn name_hash(name: &[u8]) -> u32 {
    !crc32c::crc32c_append(!(!1u32), name)
}

fn dir_type(t: u8) -> Option<FileType> {
    Some(match t {
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

/// Incompatible features this reader understands.
const KNOWN_INCOMPAT: u64 = 0x1fff | (1 << 16);

impl Btrfs {
    /// Open the btrfs filesystem on `src` at its default subvolume.
    pub fn open(src: Arc<dyn ReadAt>) -> Result<Btrfs> {
        Btrfs::open_with(src, &FsOptions::default())
    }

    /// Open with options.
    pub fn open_with(src: Arc<dyn ReadAt>, opts: &FsOptions) -> Result<Btrfs> {
        Btrfs::open_devices(src, &[], opts)
    }

    /// Open the filesystem whose device `src` is, with `others`: volumes
    /// that may be its other devices (those with the same `fsid` are used;
    /// see [`devices::attach`]).
    pub fn open_devices(
        src: Arc<dyn ReadAt>,
        others: &[Arc<dyn ReadAt>],
        opts: &FsOptions,
    ) -> Result<Btrfs> {
        let (src, others, given) = devices::newest_first(src, others);
        let others = others.as_slice();
        let (sb, sb_problems) = sb::read(src.as_ref())?;
        let problems = Arc::new(ProblemLog::default());
        for p in sb_problems {
            problems.record(p);
        }
        let unknown = sb.incompat & !KNOWN_INCOMPAT;
        if unknown != 0 || sb.incompat & sb::incompat::EXTENT_TREE_V2 != 0 {
            return Err(Error::Unsupported(format!(
                "btrfs incompatible feature bits {:#x}: the filesystem cannot be read safely",
                unknown | (sb.incompat & sb::incompat::EXTENT_TREE_V2)
            )));
        }
        let mut notes = Vec::new();
        let mut map = ChunkMap::new(sb.devid);
        map.load_sys_array(&sb)?;
        let chunk_root = (sb.chunk_root, sb.chunk_root_level);
        let root_tree = (sb.root, sb.root_level);
        let mut t = Trees::new(src, sb, map, Arc::clone(&problems));
        let (members, mut dev_notes) = devices::attach(&mut t, others);
        // The full chunk map from the chunk tree.
        let mut chunks = Vec::new();
        let mut chunk_err = None;
        t.range(
            chunk_root.0,
            chunk_root.1,
            Key::new(id::FIRST_CHUNK_TREE, ty::CHUNK_ITEM, 0),
            Key::new(id::FIRST_CHUNK_TREE, ty::CHUNK_ITEM, u64::MAX),
            &mut |k, d| {
                match sb::parse_chunk(d, 0, k.offset, k.offset) {
                    Ok((c, _)) => chunks.push(c),
                    Err(e) => chunk_err = Some(e),
                }
                ControlFlow::Continue(())
            },
        )?;
        if let Some(e) = chunk_err {
            problems.record(Problem::text(e.to_string()));
        }
        for c in chunks {
            t.map.insert(c)?;
        }
        dev_notes.extend(devices::report(&t, &members, chunk_root, given));
        notes.splice(0..0, dev_notes);
        let mut fs = Btrfs {
            t,
            root_tree,
            csum_tree: None,
            subvols: Vec::new(),
            root_idx: 0,
            notes,
            problems,
            maps: Mutex::new(Vec::new()),
            log_csums: Vec::new(),
            zcache: Mutex::new(None),
        };
        fs.csum_tree = match fs.root_item(id::CSUM_TREE) {
            Ok(Some(r)) => Some((r.bytenr, r.level)),
            Ok(None) => None,
            Err(e) => {
                fs.problem(Problem::of("btrfs checksum tree", e.to_string()));
                None
            }
        };
        fs.load_subvols()?;
        let default = fs.default_subvol();
        fs.root_idx = match fs.subvol_index(default) {
            Some(i) => i,
            None => {
                fs.problem(Problem::of(
                    "btrfs default subvolume",
                    format!("subvolume {default} is not found; the top level is shown"),
                ));
                fs.subvol_index(id::FS_TREE).unwrap_or(0)
            }
        };
        if fs.t.sb.log_root != 0 {
            if opts.no_journal {
                fs.notes.push(LOG_NOTE.into());
            } else {
                fs.replay_log();
            }
        }
        Ok(fs)
    }

    /// Replay the log tree in memory (on failure: a problem, and the
    /// on-disk state).
    fn replay_log(&mut self) {
        let log_root = self.t.sb.log_root;
        let r = log::replay(&self.t, log_root, &|sid| {
            self.subvol_index(sid).map(|i| self.tree_of(i))
        });
        match r {
            Ok(r) => {
                for sid in &r.missing {
                    self.problem(Problem::at(
                        "btrfs log tree",
                        log_root,
                        format!("it logs subvolume {sid}, which is not found: not replayed"),
                    ));
                }
                let n = r.overlays.len();
                for (sid, ov) in r.overlays {
                    if let Some(i) = self.subvol_index(sid) {
                        let (root, _) = self.tree_of(i);
                        self.t.set_overlay(root, ov);
                    }
                }
                let mut csums = r.csums;
                csums.sort_by_key(|(o, _)| *o);
                self.log_csums = csums;
                self.notes.push(format!(
                    "{REPLAYED_NOTE}: {} items in {n} subvolume{} (the btrfs log tree of fsync'd changes not yet committed; --no-journal shows the last commit)",
                    r.items,
                    if n == 1 { "" } else { "s" }
                ));
            }
            Err(e) => {
                self.problem(Problem::at(
                    "btrfs log tree",
                    log_root,
                    format!(
                        "not replayed: {e}; the state of the last commit is shown, as with --no-journal"
                    ),
                ));
                self.notes.push(NOT_REPLAYED_NOTE.into());
            }
        }
    }

    fn problem(&self, p: impl Into<Problem>) {
        self.problems.record(p);
    }

    /// The superblock in use.
    pub fn superblock(&self) -> &Superblock {
        &self.t.sb
    }

    /// The newest root item of tree `tree_id`.
    fn root_item(&self, tree_id: u64) -> Result<Option<RootItem>> {
        let (r, l) = self.root_tree;
        match self
            .t
            .search_le(r, l, Key::new(tree_id, ty::ROOT_ITEM, u64::MAX))?
        {
            Some((k, d)) if k.objectid == tree_id && k.ty == ty::ROOT_ITEM => {
                Ok(Some(RootItem::parse(k, &d)?))
            }
            _ => Ok(None),
        }
    }

    fn load_subvols(&mut self) -> Result<()> {
        let top = self.root_item(id::FS_TREE)?.ok_or_else(|| {
            Error::corrupt(
                "btrfs root tree",
                self.root_tree.0,
                "no root item for the top-level subvolume (5)",
            )
        })?;
        let mut subvols = vec![Subvol {
            id: id::FS_TREE,
            root: top,
            parent: None,
        }];
        let (r, l) = self.root_tree;
        let mut roots: Vec<(u64, RootItem)> = Vec::new();
        let mut backrefs: Vec<(u64, u64, RootRef)> = Vec::new();
        let mut bad = Vec::new();
        self.t.range(
            r,
            l,
            Key::new(id::FIRST_FREE, 0, 0),
            Key::new(id::LAST_FREE, u8::MAX, u64::MAX),
            &mut |k, d| {
                match k.ty {
                    ty::ROOT_ITEM => match RootItem::parse(k, d) {
                        Ok(ri) => {
                            if let Some(last) = roots.last_mut()
                                && last.0 == k.objectid
                            {
                                last.1 = ri;
                            } else {
                                roots.push((k.objectid, ri));
                            }
                        }
                        Err(e) => bad.push(e.to_string()),
                    },
                    ty::ROOT_BACKREF => match RootRef::parse(k, d) {
                        Ok(rr) => backrefs.push((k.objectid, k.offset, rr)),
                        Err(e) => bad.push(e.to_string()),
                    },
                    _ => {}
                }
                ControlFlow::Continue(())
            },
        )?;
        for b in bad {
            self.problem(Problem::text(b));
        }
        for (sid, ri) in roots {
            let parent = backrefs
                .iter()
                .find(|(c, _, _)| *c == sid)
                .map(|(_, p, rr)| (*p, rr.clone()));
            if parent.is_none() {
                // Deleted, not yet cleaned: the kernel does not show it.
                continue;
            }
            if subvols.len() >= MAX_SUBVOLS {
                self.problem(Problem::of(
                    "btrfs root tree",
                    "more than 65536 subvolumes: the others are not shown",
                ));
                break;
            }
            subvols.push(Subvol {
                id: sid,
                root: ri,
                parent,
            });
        }
        self.subvols = subvols;
        Ok(())
    }

    fn default_subvol(&self) -> u64 {
        let (r, l) = self.root_tree;
        let key = Key::new(
            id::ROOT_TREE_DIR,
            ty::DIR_ITEM,
            u64::from(name_hash(b"default")),
        );
        match self.t.get(r, l, key) {
            Ok(Some(d)) => item::dir_items(key, &d)
                .ok()
                .and_then(|v| v.into_iter().find(|x| x.name == b"default"))
                .map_or(id::FS_TREE, |x| x.location.objectid),
            _ => id::FS_TREE,
        }
    }

    fn subvol_index(&self, sid: u64) -> Option<usize> {
        // In root-tree order, so sorted by id (a damaged tree may not be).
        self.subvols
            .binary_search_by_key(&sid, |s| s.id)
            .ok()
            .or_else(|| self.subvols.iter().position(|s| s.id == sid))
    }

    fn node(&self, idx: usize, ino: u64) -> Result<NodeId> {
        if ino >= 1 << INO_BITS {
            let e = Error::Unsupported(format!(
                "btrfs inode {ino} of subvolume {}: inode numbers of 2^40 and more are not supported",
                self.subvols.get(idx).map_or(0, |s| s.id)
            ));
            self.problem(Problem::text(e.to_string()));
            return Err(e);
        }
        Ok(NodeId(((idx as u64) << INO_BITS) | ino))
    }

    fn split(&self, node: NodeId) -> Result<(&Subvol, usize, u64)> {
        let idx = usize::try_from((node.0 >> INO_BITS) & 0xffff).unwrap_or(usize::MAX);
        let ino = node.0 & ((1 << INO_BITS) - 1);
        let s = self
            .subvols
            .get(idx)
            .ok_or_else(|| Error::NotFound(format!("btrfs node {:#x}", node.0)))?;
        Ok((s, idx, ino))
    }

    fn inode(&self, node: NodeId) -> Result<(usize, u64, Inode)> {
        let (s, idx, ino) = self.split(node)?;
        let key = Key::new(ino, ty::INODE_ITEM, 0);
        let d = self
            .t
            .get(s.root.bytenr, s.root.level, key)?
            .ok_or_else(|| Error::NotFound(format!("btrfs inode {ino} of subvolume {}", s.id)))?;
        Ok((idx, ino, Inode::parse(key, &d)?))
    }

    fn typed(&self, node: NodeId, want: FileType, not: &str) -> Result<(usize, u64, Inode)> {
        let r = self.inode(node)?;
        if FileType::from_mode(r.2.mode) != want {
            return Err(Error::Invalid(format!(
                "btrfs inode {} of subvolume {}: {not}",
                r.1,
                self.subvols.get(r.0).map_or(0, |s| s.id)
            )));
        }
        Ok(r)
    }

    fn tree_of(&self, idx: usize) -> (u64, u8) {
        self.subvols
            .get(idx)
            .map_or((0, 0), |s| (s.root.bytenr, s.root.level))
    }

    fn entry_node(&self, idx: usize, d: &DirItem) -> Result<Option<NodeId>> {
        match d.location.ty {
            ty::INODE_ITEM => self.node(idx, d.location.objectid).map(Some),
            ty::ROOT_ITEM => match self.subvol_index(d.location.objectid) {
                Some(i) => {
                    let dirid = self.subvols.get(i).map_or(256, |s| s.root.root_dirid);
                    self.node(i, dirid).map(Some)
                }
                None => {
                    self.problem(Problem::of(
                        "btrfs directory entry",
                        format!(
                            "{} names subvolume {}, which is not found",
                            crate::text::escape(&d.name),
                            d.location.objectid
                        ),
                    ));
                    Ok(None)
                }
            },
            t => Err(Error::corrupt(
                "btrfs dir item",
                0,
                format!("location key type {t}"),
            )),
        }
    }

    /// The subvolumes, top level first.
    pub fn subvolumes(&self) -> Vec<SubvolInfo> {
        let default = self.default_subvol();
        let by_uuid: std::collections::HashMap<[u8; 16], u64> = self
            .subvols
            .iter()
            .filter(|s| s.root.uuid != [0; 16])
            .map(|s| (s.root.uuid, s.id))
            .collect();
        self.subvols
            .iter()
            .map(|s| SubvolInfo {
                id: s.id,
                parent_id: s.parent.as_ref().map_or(0, |p| p.0),
                path: self.subvol_path(s.id).unwrap_or_default(),
                uuid: s.root.uuid,
                read_only: s.root.flags & 1 != 0,
                snapshot_of: (s.root.parent_uuid != [0; 16])
                    .then(|| by_uuid.get(&s.root.parent_uuid).copied())
                    .flatten(),
                default: s.id == default,
                generation: s.root.generation,
                otime: s.root.otime,
            })
            .collect()
    }

    /// Path of subvolume `sid` from the top level.
    fn subvol_path(&self, sid: u64) -> Option<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = sid;
        for _ in 0..256 {
            if cur == id::FS_TREE {
                parts.reverse();
                return Some(parts.join(&b'/'));
            }
            let s = self.subvols.get(self.subvol_index(cur)?)?;
            let (pid, rr) = s.parent.as_ref()?;
            let pidx = self.subvol_index(*pid)?;
            let mut name = rr.name.clone();
            // Directories between the parent's root and the reference.
            let mut dir = rr.dirid;
            let root_dir = self.subvols.get(pidx)?.root.root_dirid;
            let mut guard = 0;
            while dir != root_dir && guard < 256 {
                guard += 1;
                let (p, n) = self.parent_of(pidx, dir).ok()??;
                let mut full = n;
                full.push(b'/');
                full.extend_from_slice(&name);
                name = full;
                dir = p;
            }
            parts.push(name);
            cur = *pid;
        }
        None
    }

    /// The first name and parent of inode `ino` in subvolume `idx`.
    fn parent_of(&self, idx: usize, ino: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let (r, l) = self.tree_of(idx);
        for (k, d) in self.t.items_of(r, l, ino, ty::INODE_REF, 1024)? {
            if let Some(n) = item::inode_refs(k, &d)?.into_iter().next() {
                return Ok(Some((n.parent, n.name)));
            }
        }
        for (k, d) in self.t.items_of(r, l, ino, ty::INODE_EXTREF, 1024)? {
            if let Some(n) = item::inode_extrefs(k, &d)?.into_iter().next() {
                return Ok(Some((n.parent, n.name)));
            }
        }
        Ok(None)
    }

    /// Where the logical byte `logical` is stored on this volume: the byte
    /// position of every copy.
    pub fn physical_copies(&self, logical: u64) -> Result<Vec<u64>> {
        Ok(self
            .t
            .map
            .map(logical, 1)?
            .into_iter()
            .map(|p| p.physical)
            .collect())
    }

    /// Where the logical byte `logical` is stored: every copy that can be
    /// read, with its device.
    pub fn places(&self, logical: u64) -> Result<Vec<sb::Place>> {
        self.t.map.map(logical, 1)
    }

    /// The logical address of the byte at `offset` of regular file `node`,
    /// when it is stored plainly in a regular extent (not inline,
    /// compressed, preallocated or a hole).
    pub fn file_logical(&self, node: NodeId, offset: u64) -> Result<Option<u64>> {
        let (idx, ino, _) = self.typed(node, FileType::Regular, "not a regular file")?;
        let map = self.extent_map(idx, ino)?;
        let i = map.partition_point(|(o, _)| *o <= offset);
        Ok(i.checked_sub(1)
            .and_then(|j| map.get(j))
            .and_then(|(o, x)| {
                let within = offset.checked_sub(*o)?;
                (x.kind == extent_type::REG
                    && x.compression == 0
                    && x.disk_bytenr != 0
                    && within < x.num_bytes)
                    .then(|| {
                        x.disk_bytenr
                            .saturating_add(x.offset)
                            .saturating_add(within)
                    })
            }))
    }

    /// The logical address of the root block of the current root subvolume's tree.
    pub fn root_tree_block(&self) -> u64 {
        self.subvols.get(self.root_idx).map_or(0, |s| s.root.bytenr)
    }

    /// Show subvolume `spec` as `/`.
    pub fn select(&mut self, spec: &SubvolSpec) -> Result<()> {
        let node = self
            .subvolume_root(spec)?
            .ok_or_else(|| Error::NotFound("btrfs subvolume".into()))?;
        self.root_idx = usize::try_from(node.0 >> INO_BITS).unwrap_or(0);
        Ok(())
    }

    fn extent_map(&self, idx: usize, ino: u64) -> Result<ExtentMap> {
        {
            let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, m)) = maps.iter().find(|(k, _)| *k == (idx, ino)) {
                return Ok(Arc::clone(m));
            }
        }
        let (r, l) = self.tree_of(idx);
        let items = self
            .t
            .items_of(r, l, ino, ty::EXTENT_DATA, MAX_FILE_EXTENTS)?;
        let mut v = Vec::with_capacity(items.len());
        for (k, d) in items {
            v.push((k.offset, item::FileExtent::parse(k, &d)?));
        }
        let m = Arc::new(v);
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if maps.len() >= MAP_CACHE {
            maps.remove(0);
        }
        maps.push(((idx, ino), Arc::clone(&m)));
        Ok(m)
    }

    /// Data checksums of the sectors `[logical, logical + n * sector)`.
    fn data_csums(&self, logical: u64, n: usize) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = vec![None; n];
        let Some((r, l)) = self.csum_tree else {
            return Ok(out);
        };
        let ss = u64::from(self.t.sb.sectorsize);
        let cs = self.t.sb.csum_type.size();
        let end = logical.saturating_add((n as u64).saturating_mul(ss));
        let mut fill = |start: u64, d: &[u8]| {
            let count = (d.len() / cs) as u64;
            for i in 0..count {
                let at = start.saturating_add(i.saturating_mul(ss));
                if at < logical {
                    continue;
                }
                if at >= end {
                    break;
                }
                let slot = ((at - logical) / ss) as usize;
                let o = (i as usize) * cs;
                if let (Some(s), Some(c)) = (out.get_mut(slot), d.get(o..o + cs)) {
                    *s = Some(c.to_vec());
                }
            }
        };
        if let Some((k, d)) =
            self.t
                .search_le(r, l, Key::new(id::EXTENT_CSUM, ty::EXTENT_CSUM, logical))?
            && k.objectid == id::EXTENT_CSUM
            && k.ty == ty::EXTENT_CSUM
        {
            fill(k.offset, &d);
        }
        if n > 1 {
            let mut items = Vec::new();
            self.t.range(
                r,
                l,
                Key::new(id::EXTENT_CSUM, ty::EXTENT_CSUM, logical.saturating_add(1)),
                Key::new(id::EXTENT_CSUM, ty::EXTENT_CSUM, end.saturating_sub(1)),
                &mut |k, d| {
                    items.push((k.offset, d.to_vec()));
                    ControlFlow::Continue(())
                },
            )?;
            for (o, d) in items {
                fill(o, &d);
            }
        }
        // Checksums of data written since the commit, from the log.
        let first = self
            .log_csums
            .partition_point(|(o, _)| *o <= logical)
            .saturating_sub(1);
        for (o, d) in self.log_csums.iter().skip(first) {
            if *o >= end {
                break;
            }
            fill(*o, d);
        }
        Ok(out)
    }

    /// Read whole sectors of data at `logical` into `buf`, verifying their
    /// checksums (unless `nodatasum`) and trying other copies on a mismatch.
    fn read_data(&self, what: &str, logical: u64, buf: &mut [u8], nodatasum: bool) -> Result<()> {
        let ss = self.t.sb.sectorsize as usize;
        let n = buf.len().div_ceil(ss);
        let csums = if nodatasum {
            vec![None; n]
        } else {
            self.data_csums(logical, n)?
        };
        let kind = self.t.sb.csum_type;
        let copies = self.t.copies(logical).max(1);
        if !self.t.read_logical(logical, buf, 0)? {
            return Err(Error::corrupt("btrfs data", logical, "no copy to read"));
        }
        // Each sector with a bad checksum is read again from the other
        // copies (on several devices, each sector may be bad on another).
        let mut last_bad = None;
        let mut fixed = None;
        for (i, c) in csums.iter().enumerate() {
            let Some(want) = c else { continue };
            let s = i * ss;
            let Some(sector) = buf.get_mut(s..(s + ss).min(buf.len())) else {
                continue;
            };
            if csum::matches(kind, sector, want) {
                continue;
            }
            let got = csum::checksum(kind, sector);
            if got.is_empty() {
                continue;
            }
            let at = logical + s as u64;
            let mut good = None;
            for mirror in 1..copies {
                match self.t.read_logical(at, sector, mirror) {
                    Ok(true) if csum::checksum(kind, sector) == *want => {
                        good = Some(mirror);
                        break;
                    }
                    Ok(false) => break,
                    Ok(true) | Err(_) => {}
                }
            }
            match good {
                Some(m) => {
                    fixed.get_or_insert((at, m));
                }
                None => {
                    last_bad = Some((at, want.clone(), got));
                    break;
                }
            }
        }
        if last_bad.is_none() {
            if let Some((at, m)) = fixed {
                self.problem(Problem::at(
                    format!("btrfs data of {what}"),
                    at,
                    format!("copy 1 has a bad checksum; copy {} is used", m + 1),
                ));
            }
            return Ok(());
        }
        let (at, want, got) = last_bad.unwrap_or_default();
        let msg = format!(
            "{} checksum mismatch at logical byte {at}: expected {}, found {}",
            kind.name(),
            sb::hex(&want),
            sb::hex(&got)
        );
        self.problem(Problem::at(
            format!("btrfs data of {what}"),
            at,
            msg.clone(),
        ));
        Err(Error::io(
            format!("btrfs data of {what}"),
            std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
        ))
    }

    /// The decompressed bytes of a compressed (or inline) extent.
    fn extent_bytes(
        &self,
        what: &str,
        x: &item::FileExtent,
        nodatasum: bool,
    ) -> Result<Arc<Vec<u8>>> {
        let kind = compress::Compression::from_disk(x.compression).ok_or_else(|| {
            Error::Unsupported(format!("{what}: compression type {}", x.compression))
        })?;
        let ram = usize::try_from(x.ram_bytes.min(MAX_COMPRESSED)).unwrap_or(0);
        if x.kind == extent_type::INLINE {
            if kind == compress::Compression::None {
                return Ok(Arc::new(x.inline.clone()));
            }
            return Ok(Arc::new(compress::decompress(
                kind,
                &x.inline,
                ram,
                self.t.sb.sectorsize,
            )?));
        }
        if let Some((b, v)) = &*self.zcache.lock().unwrap_or_else(|e| e.into_inner())
            && *b == x.disk_bytenr
        {
            return Ok(Arc::clone(v));
        }
        if x.disk_num_bytes > MAX_COMPRESSED || x.ram_bytes > MAX_COMPRESSED {
            return Err(Error::corrupt(
                what.to_string(),
                x.disk_bytenr,
                format!(
                    "compressed extent of {} bytes ({} decompressed)",
                    x.disk_num_bytes, x.ram_bytes
                ),
            ));
        }
        let mut raw = vec![0u8; x.disk_num_bytes as usize];
        self.read_data(what, x.disk_bytenr, &mut raw, nodatasum)?;
        let v = Arc::new(compress::decompress(kind, &raw, ram, self.t.sb.sectorsize)?);
        *self.zcache.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((x.disk_bytenr, Arc::clone(&v)));
        Ok(v)
    }

    /// The compressed extents a read of `[pos, end)` of a file with extent
    /// map `map` needs (at most [`AHEAD_EXTENTS`]), decompressed on up to
    /// [`AHEAD_THREADS`] threads when there are two or more: (disk address,
    /// bytes). What fails is left out, for the read to redo and report.
    fn decompress_ahead(
        &self,
        what: &str,
        map: &[(u64, item::FileExtent)],
        pos: u64,
        end: u64,
        nodatasum: bool,
    ) -> Vec<(u64, Arc<Vec<u8>>)> {
        let first = map.partition_point(|(o, _)| *o <= pos).saturating_sub(1);
        let mut todo: Vec<&item::FileExtent> = Vec::new();
        for (o, x) in map.iter().skip(first) {
            if *o >= end || todo.len() >= AHEAD_EXTENTS {
                break;
            }
            if x.kind == extent_type::REG
                && x.compression != 0
                && x.encryption == 0
                && x.disk_bytenr != 0
                && o.saturating_add(x.num_bytes) > pos
                && !todo.iter().any(|t| t.disk_bytenr == x.disk_bytenr)
            {
                todo.push(x);
            }
        }
        if todo.len() < 2 {
            return Vec::new();
        }
        // 1 on a copy job's reader threads, which share the work already.
        let threads = crate::io::parallelism().min(AHEAD_THREADS);
        if threads < 2 {
            return Vec::new();
        }
        let run = |part: &[&item::FileExtent]| -> Vec<(u64, Arc<Vec<u8>>)> {
            part.iter()
                .filter_map(|x| {
                    self.extent_bytes(what, x, nodatasum)
                        .ok()
                        .map(|v| (x.disk_bytenr, v))
                })
                .collect()
        };
        let per = todo.len().div_ceil(threads);
        std::thread::scope(|s| {
            let others: Vec<_> = todo
                .chunks(per)
                .skip(1)
                .map(|part| s.spawn(move || run(part)))
                .collect();
            let mut out = todo.chunks(per).next().map(run).unwrap_or_default();
            for h in others {
                if let Ok(v) = h.join() {
                    out.extend(v);
                }
            }
            out
        })
    }

    fn read_file(
        &self,
        idx: usize,
        ino: u64,
        inode: &Inode,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let size = inode.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = (size - offset).min(buf.len() as u64) as usize;
        let what = format!(
            "inode {ino} of subvolume {}",
            self.subvols.get(idx).map_or(0, |s| s.id)
        );
        let map = self.extent_map(idx, ino)?;
        let nodatasum = inode.flags & item::INODE_NODATASUM != 0;
        let ss = u64::from(self.t.sb.sectorsize);
        let ready = self.decompress_ahead(&what, &map, offset, offset + n as u64, nodatasum);
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let left = (n - done) as u64;
            // The extent covering `pos`, or the next one.
            let i = map.partition_point(|(o, _)| *o <= pos);
            let cur = i.checked_sub(1).and_then(|j| map.get(j)).filter(|(o, x)| {
                let len = if x.kind == extent_type::INLINE {
                    (x.inline.len() as u64).max(x.ram_bytes)
                } else {
                    x.num_bytes
                };
                pos < o.saturating_add(len)
            });
            let Some((xo, x)) = cur else {
                let next = map.get(i).map_or(size, |(o, _)| *o);
                let want = next.saturating_sub(pos).min(left).max(1) as usize;
                buf[done..done + want].fill(0);
                done += want;
                continue;
            };
            if x.encryption != 0 {
                return Err(Error::Unsupported(format!("{what}: encrypted extent")));
            }
            let within = pos - xo;
            let out_len;
            if x.kind == extent_type::INLINE || x.compression != 0 {
                if x.kind == extent_type::PREALLOC
                    || (x.kind != extent_type::INLINE && x.disk_bytenr == 0)
                {
                    out_len = (x.num_bytes - within).min(left) as usize;
                    buf[done..done + out_len].fill(0);
                } else {
                    let data = match ready.iter().find(|(b, _)| *b == x.disk_bytenr) {
                        Some((_, v)) => Arc::clone(v),
                        None => self.extent_bytes(&what, x, nodatasum)?,
                    };
                    let start = x.offset.saturating_add(within);
                    let span = if x.kind == extent_type::INLINE {
                        (x.ram_bytes.max(data.len() as u64)).saturating_sub(within)
                    } else {
                        x.num_bytes - within
                    };
                    out_len = span.min(left).max(1) as usize;
                    let out = &mut buf[done..done + out_len];
                    let s = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
                    let e = s.saturating_add(out_len).min(data.len());
                    out[..e - s].copy_from_slice(&data[s..e]);
                    out[e - s..].fill(0);
                }
            } else if x.kind == extent_type::PREALLOC || x.disk_bytenr == 0 {
                out_len = (x.num_bytes - within).min(left).max(1) as usize;
                buf[done..done + out_len].fill(0);
            } else {
                let want = (x.num_bytes - within).min(left).clamp(1, MAX_READ_RUN);
                let logical = x
                    .disk_bytenr
                    .checked_add(x.offset)
                    .and_then(|v| v.checked_add(within))
                    .ok_or_else(|| {
                        Error::corrupt(what.clone(), x.disk_bytenr, "extent address overflows")
                    })?;
                let a = logical / ss * ss;
                let b = (logical + want).div_ceil(ss) * ss;
                let mut tmp = vec![0u8; (b - a) as usize];
                self.read_data(&what, a, &mut tmp, nodatasum)?;
                let s = (logical - a) as usize;
                out_len = want as usize;
                buf[done..done + out_len].copy_from_slice(&tmp[s..s + out_len]);
            }
            done += out_len.max(1);
        }
        Ok(n)
    }
}

impl FsView for Btrfs {
    fn status(&self) -> FsStatus {
        let sb = &self.t.sb;
        let mut notes = self.notes.clone();
        if matches!(
            sb.csum_type,
            csum::CsumType::Xxhash64 | csum::CsumType::Blake2b
        ) && csum::checksum(sb.csum_type, b"").is_empty()
        {
            notes.push(format!(
                "{} checksums are not verified by this build",
                sb.csum_type.name()
            ));
        }
        FsStatus {
            fs_type: "btrfs".into(),
            label: (!sb.label.is_empty()).then(|| String::from_utf8_lossy(&sb.label).into_owned()),
            uuid: Some(sb::uuid_string(&sb.fsid)),
            notes,
            problems: self.problems.list(),
        }
    }

    fn problem_count(&self) -> usize {
        self.problems.count()
    }

    fn root(&self) -> NodeId {
        let dirid = self
            .subvols
            .get(self.root_idx)
            .map_or(256, |s| s.root.root_dirid);
        NodeId(((self.root_idx as u64) << INO_BITS) | dirid)
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let (_, ino, i) = self.inode(node)?;
        let file_type = FileType::from_mode(i.mode);
        let rdev = match file_type {
            FileType::CharDevice | FileType::BlockDevice => i.rdev_pair(),
            _ => (0, 0),
        };
        Ok(Metadata {
            node,
            ino,
            file_type,
            perm: i.mode & 0o7777,
            uid: i.uid,
            gid: i.gid,
            size: i.size,
            nlink: u64::from(i.nlink),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            crtime: Some(i.otime),
            rdev,
            allocated: Some(i.nbytes),
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let (idx, ino, _) = self.typed(dir, FileType::Directory, "not a directory")?;
        let (r, l) = self.tree_of(idx);
        let mut out = Vec::new();
        for (k, d) in self.t.items_of(r, l, ino, ty::DIR_INDEX, MAX_DIR_ENTRIES)? {
            for e in item::dir_items(k, &d)? {
                if let Some(node) = self.entry_node(idx, &e)? {
                    out.push(DirEntry {
                        file_type: dir_type(e.file_type),
                        name: e.name,
                        node,
                    });
                }
            }
        }
        Ok(out)
    }

    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        let (idx, ino, _) = self.typed(dir, FileType::Directory, "not a directory")?;
        let (r, l) = self.tree_of(idx);
        let key = Key::new(ino, ty::DIR_ITEM, u64::from(name_hash(name)));
        let Some(d) = self.t.get(r, l, key)? else {
            return Ok(None);
        };
        for e in item::dir_items(key, &d)? {
            if e.name == name {
                return self.entry_node(idx, &e);
            }
        }
        Ok(None)
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        let (idx, ino, i) = self.typed(node, FileType::Symlink, "not a symbolic link")?;
        let len = usize::try_from(i.size.min(4096)).unwrap_or(4096);
        let mut buf = vec![0u8; len];
        let n = self.read_file(idx, ino, &i, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (idx, ino, i) = self.typed(node, FileType::Regular, "not a regular file")?;
        self.read_file(idx, ino, &i, offset, buf)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let (idx, ino, i) = self.typed(node, FileType::Regular, "not a regular file")?;
        let size = i.size;
        let map = self.extent_map(idx, ino)?;
        let mut out: Vec<FileExtent> = Vec::new();
        for (o, x) in map.iter() {
            if *o >= size {
                break;
            }
            let (len, unwritten) = match x.kind {
                extent_type::INLINE => ((x.ram_bytes).max(x.inline.len() as u64), false),
                extent_type::PREALLOC => (x.num_bytes, true),
                _ if x.disk_bytenr == 0 => continue,
                _ => (x.num_bytes, false),
            };
            let end = o.saturating_add(len).min(size);
            if end <= *o {
                continue;
            }
            if let Some(last) = out.last_mut()
                && last.offset + last.len == *o
                && last.unwritten == unwritten
            {
                last.len = end - last.offset;
                continue;
            }
            out.push(FileExtent {
                offset: *o,
                len: end - o,
                unwritten,
            });
        }
        Ok(out)
    }

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        let (idx, ino, _) = self.inode(node)?;
        let (r, l) = self.tree_of(idx);
        let mut out = Vec::new();
        for (k, d) in self.t.items_of(r, l, ino, ty::XATTR_ITEM, MAX_XATTRS)? {
            for e in item::dir_items(k, &d)? {
                out.push(Xattr {
                    name: e.name,
                    value: e.data,
                });
            }
        }
        Ok(out)
    }

    fn dev(&self, node: NodeId) -> u64 {
        (node.0 >> INO_BITS) & 0xffff
    }

    fn space(&self, _node: NodeId) -> Option<Space> {
        let sb = &self.t.sb;
        let bs = u64::from(sb.sectorsize);
        let blocks = sb.total_bytes / bs;
        let free = sb.total_bytes.saturating_sub(sb.bytes_used) / bs;
        Some(Space {
            block_size: bs,
            blocks,
            free_blocks: free,
            avail_blocks: free,
            inodes: 0,
            free_inodes: 0,
        })
    }

    fn subvolumes(&self) -> Option<Vec<SubvolInfo>> {
        Some(Btrfs::subvolumes(self))
    }

    fn subvolume_root(&self, spec: &SubvolSpec) -> Result<Option<NodeId>> {
        let idx = match spec {
            SubvolSpec::Id(sid) => self
                .subvol_index(*sid)
                .ok_or_else(|| Error::NotFound(format!("btrfs subvolume id {sid}")))?,
            SubvolSpec::Path(p) => {
                let want: Vec<u8> = p
                    .split(|&c| c == b'/')
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
                    .join(&b'/');
                if want.is_empty() {
                    self.subvol_index(id::FS_TREE).unwrap_or(0)
                } else {
                    self.subvols
                        .iter()
                        .position(|s| self.subvol_path(s.id).as_deref() == Some(&want[..]))
                        .ok_or_else(|| {
                            Error::NotFound(format!("btrfs subvolume {}", crate::text::escape(p)))
                        })?
                }
            }
        };
        let dirid = self.subvols.get(idx).map_or(256, |s| s.root.root_dirid);
        self.node(idx, dirid).map(Some)
    }
}
