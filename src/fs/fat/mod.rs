//! FAT12, FAT16 and FAT32 (an EFI system partition, a USB stick image),
//! read in userspace the way Linux's `vfat` driver shows them with its
//! default options: VFAT long names (UTF-8), short names with the NT case
//! flags, lookups that ignore ASCII case, files `rwxr-xr-x` (read-only ones
//! without write bits) owned by root, link counts of directories from their
//! subdirectories, and times that are the guest's local time taken as UTC.
//!
//! The FAT copies are compared when the volume is opened: the first is used
//! unless its reserved entries are damaged and another's are not, as
//! `fsck.fat` chooses, and a difference is a problem. On FAT32 with
//! mirroring off, the active FAT is used. A cluster chain that is cut,
//! loops or leaves the volume is an error naming the cluster and the file's
//! offset; the rest of the volume still reads.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

pub mod bpb;
pub mod dir;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::fs::problems::ProblemLog;
use crate::fs::{
    DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Space, Timestamp, Xattr,
};
use crate::io::{HostExtent, ReadAt};
use bpb::{Bpb, FatType};

/// The root directory's node (no directory entry sits at byte 0).
const ROOT: NodeId = NodeId(0);
/// The largest directory read: 65536 entries, as FAT allows.
const MAX_DIR_BYTES: u64 = 65_536 * 32;
/// FAT copies larger than this are not compared at open.
const MAX_COMPARE: u64 = 64 << 20;
/// Bytes of FAT read at a time.
const WINDOW: u64 = 64 << 10;
/// Cluster chains kept.
const MAX_CHAINS: usize = 4096;
/// Parsed directories kept.
const MAX_LISTINGS: usize = 64;

/// A run of consecutive clusters: first cluster and count.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: u32,
    count: u32,
}

/// Where a directory's bytes come from: (byte of the directory, volume position) per run.
type Places = Vec<(usize, u64)>;

/// A chain's first cluster and how many clusters were wanted.
type ChainKey = (u32, Option<u64>);

/// A FAT volume.
pub struct Fat {
    src: Arc<dyn ReadAt>,
    bpb: Bpb,
    /// The FAT copy read.
    fat: u32,
    label: Option<Vec<u8>>,
    notes: Vec<String>,
    problems: ProblemLog,
    /// The last FAT window read: (offset, bytes).
    window: Mutex<(u64, Vec<u8>)>,
    /// Chains by (first cluster, clusters wanted: none for a directory's whole chain).
    chains: Mutex<HashMap<ChainKey, Arc<Vec<Run>>>>,
    /// Parsed directories, by node.
    listings: Mutex<HashMap<NodeId, Arc<dir::Listing>>>,
}

impl Fat {
    /// FAT12, FAT16 or FAT32.
    pub fn fat_type(&self) -> FatType {
        self.bpb.fat_type
    }

    /// Open the FAT volume in `src`.
    pub fn open(src: Arc<dyn ReadAt>) -> Result<Fat> {
        let mut boot = [0u8; 512];
        src.read_exact_at(0, &mut boot)
            .map_err(|e| Error::corrupt("FAT boot sector", 0, format!("cannot read: {e}")))?;
        if boot.get(510..512) != Some(&[0x55, 0xAA]) {
            return Err(Error::corrupt(
                "FAT boot sector",
                510,
                "no 0x55AA signature",
            ));
        }
        let bpb = Bpb::parse(&boot)?;
        if bpb.data_offset > src.size() {
            return Err(Error::corrupt(
                "FAT boot sector",
                14,
                format!(
                    "the FATs and the root directory end at byte {}, past the volume's {} bytes",
                    bpb.data_offset,
                    src.size()
                ),
            ));
        }
        let mut fs = Fat {
            src,
            fat: 0,
            label: None,
            notes: Vec::new(),
            problems: ProblemLog::default(),
            window: Mutex::new((0, Vec::new())),
            chains: Mutex::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            bpb,
        };
        if fs.bpb.end() > fs.src.size() {
            fs.problems.record(crate::problem::Problem::at(
                "FAT boot sector",
                32,
                format!(
                    "the volume is {} bytes but the boot sector gives {}: the image may be truncated",
                    fs.src.size(),
                    fs.bpb.end()
                ),
            ));
        }
        fs.fat = fs.choose_fat();
        let root = fs.listing(ROOT);
        match root {
            Ok(l) => fs.label = l.label.clone().or_else(|| fs.bpb.label.clone()),
            Err(e) => {
                fs.label = fs.bpb.label.clone();
                fs.problems.record(e.to_string());
            }
        }
        Ok(fs)
    }

    /// Which FAT copy to read, after comparing the copies.
    fn choose_fat(&mut self) -> u32 {
        if let Some(active) = self.bpb.active_fat {
            self.notes.push(format!(
                "FAT mirroring is off: FAT {active} is the active one"
            ));
            return active;
        }
        let fats = self.bpb.fats;
        if fats < 2 {
            return 0;
        }
        let used = self.bpb.fat_used_bytes();
        let sane: Vec<bool> = (0..fats).map(|n| self.reserved_entries_ok(n)).collect();
        let chosen = if sane.first() == Some(&true) {
            0
        } else {
            sane.iter()
                .position(|&ok| ok)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0)
        };
        if used > MAX_COMPARE {
            self.notes.push(format!(
                "the {fats} FAT copies ({used} bytes each) were not compared"
            ));
            return chosen;
        }
        let read = |n: u32| -> Option<Vec<u8>> {
            let mut b = vec![0u8; usize::try_from(used).ok()?];
            self.src.read_exact_at(self.bpb.fat_start(n), &mut b).ok()?;
            Some(b)
        };
        let Some(first) = read(chosen) else {
            self.problems.record(crate::problem::Problem::at(
                "FAT",
                self.bpb.fat_start(chosen),
                "cannot be read",
            ));
            return chosen;
        };
        for n in (0..fats).filter(|&n| n != chosen) {
            let Some(other) = read(n) else {
                self.problems.record(crate::problem::Problem::at(
                    format!("FAT {n}"),
                    self.bpb.fat_start(n),
                    "cannot be read",
                ));
                continue;
            };
            let differ = first.iter().zip(&other).filter(|(a, b)| a != b).count();
            if let Some(at) = first.iter().zip(&other).position(|(a, b)| a != b) {
                let at = u64::try_from(at).unwrap_or(0);
                self.problems.record(crate::problem::Problem::at(
                    format!("FAT {n}"),
                    self.bpb.fat_start(n).saturating_add(at),
                    format!(
                        "differs from FAT {chosen} in {differ} bytes (first at byte {at} of the FAT): FAT {chosen} is read, as fsck.fat would use it"
                    ),
                ));
            }
        }
        chosen
    }

    /// Whether FAT `n`'s first entry carries the media byte and its second
    /// ends a chain, as every formatter writes them.
    fn reserved_entries_ok(&self, n: u32) -> bool {
        let mut b = [0u8; 8];
        if self
            .src
            .read_exact_at(self.bpb.fat_start(n), &mut b)
            .is_err()
        {
            return false;
        }
        b.first() == Some(&self.bpb.media)
    }

    /// The FAT entry of cluster `c`.
    fn entry(&self, c: u32) -> Result<u32> {
        let (byte, width) = match self.bpb.fat_type {
            FatType::Fat12 => (u64::from(c).saturating_mul(3) / 2, 2u64),
            FatType::Fat16 => (u64::from(c).saturating_mul(2), 2),
            FatType::Fat32 => (u64::from(c).saturating_mul(4), 4),
        };
        let pos = self.bpb.fat_start(self.fat).saturating_add(byte);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let inside = |w: &(u64, Vec<u8>)| {
            pos >= w.0
                && pos.saturating_add(width)
                    <= w.0.saturating_add(u64::try_from(w.1.len()).unwrap_or(0))
        };
        if !inside(&w) {
            let fat_end = self
                .bpb
                .fat_start(self.fat)
                .saturating_add(self.bpb.fat_bytes);
            let len = WINDOW.min(fat_end.saturating_sub(pos));
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            self.src
                .read_exact_at(pos, &mut buf)
                .map_err(|e| Error::Io {
                    what: format!("FAT {} at byte {pos}", self.fat),
                    source: e,
                })?;
            *w = (pos, buf);
        }
        let at = usize::try_from(pos.saturating_sub(w.0)).unwrap_or(usize::MAX);
        let v = match self.bpb.fat_type {
            FatType::Fat12 => {
                let raw = crate::io::le::u16(&w.1, at).map(u32::from);
                raw.map(|r| if c & 1 == 1 { r >> 4 } else { r & 0x0FFF })
            }
            FatType::Fat16 => crate::io::le::u16(&w.1, at).map(u32::from),
            FatType::Fat32 => crate::io::le::u32(&w.1, at).map(|r| r & 0x0FFF_FFFF),
        };
        v.ok_or_else(|| Error::corrupt("FAT", pos, "entry outside the FAT"))
    }

    /// The clusters of the chain starting at `first`, as runs; at most
    /// enough for `need` bytes (a file) or the whole chain (`None`: a
    /// directory, at most [`MAX_DIR_BYTES`]).
    fn chain(&self, first: u32, need: Option<u64>) -> Result<Arc<Vec<Run>>> {
        let cs = u64::from(self.bpb.cluster_size);
        let want = need.map(|n| n.div_ceil(cs));
        if let Some(c) = self
            .chains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(first, want))
        {
            return Ok(Arc::clone(c));
        }
        // A directory's chain is read whole, up to the largest directory.
        let dir_limit = MAX_DIR_BYTES.div_ceil(cs);
        let mut runs: Vec<Run> = Vec::new();
        // The runs so far by first cluster, to see a chain come back on itself.
        let mut seen: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
        let mut c = first;
        let mut count: u64 = 0;
        loop {
            let inside = |r: &Run| {
                c >= r.first && u64::from(c) < u64::from(r.first).saturating_add(u64::from(r.count))
            };
            let again = runs.last().is_some_and(inside)
                || seen
                    .range(..=c)
                    .next_back()
                    .is_some_and(|(&f, &n)| inside(&Run { first: f, count: n }));
            if again {
                return Err(Error::corrupt(
                    "FAT cluster chain",
                    self.bpb.fat_start(self.fat),
                    format!(
                        "the chain from cluster {first} loops: it comes back to cluster {c} after {count} clusters"
                    ),
                ));
            }
            if !self.bpb.is_cluster(c) {
                return Err(Error::corrupt(
                    "FAT cluster chain",
                    self.bpb.fat_start(self.fat),
                    format!(
                        "the chain from cluster {first} reaches {c}, not a data cluster, after {count} clusters"
                    ),
                ));
            }
            match runs.last_mut() {
                Some(r) if r.first.checked_add(r.count) == Some(c) => {
                    r.count = r.count.saturating_add(1);
                }
                _ => {
                    if let Some(r) = runs.last() {
                        seen.insert(r.first, r.count);
                    }
                    runs.push(Run { first: c, count: 1 });
                }
            }
            count = count.saturating_add(1);
            if want.is_some_and(|w| count >= w) {
                break;
            }
            if want.is_none() && count > dir_limit {
                return Err(Error::corrupt(
                    "FAT directory",
                    self.bpb.cluster_offset(first),
                    format!(
                        "its chain from cluster {first} runs past {MAX_DIR_BYTES} bytes (65536 entries)"
                    ),
                ));
            }
            if count > u64::from(self.bpb.clusters) {
                return Err(Error::corrupt(
                    "FAT cluster chain",
                    self.bpb.fat_start(self.fat),
                    format!(
                        "the chain from cluster {first} loops (longer than the volume's {} clusters)",
                        self.bpb.clusters
                    ),
                ));
            }
            let next = self.entry(c)?;
            if next >= self.bpb.fat_type.end_of_chain() {
                break;
            }
            if next == self.bpb.fat_type.bad() || next == 0 {
                return Err(Error::corrupt(
                    "FAT cluster chain",
                    self.bpb.fat_start(self.fat),
                    format!(
                        "the chain from cluster {first} is cut at cluster {c}: its entry is {}",
                        if next == 0 {
                            "free"
                        } else {
                            "a bad-cluster mark"
                        }
                    ),
                ));
            }
            c = next;
        }
        let runs = Arc::new(runs);
        let mut cache = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CHAINS {
            cache.clear();
        }
        cache.insert((first, want), Arc::clone(&runs));
        Ok(runs)
    }

    /// The short entry at volume byte `pos` (a node's identity).
    fn entry_at(&self, node: NodeId) -> Result<dir::Entry> {
        let mut raw = [0u8; 32];
        self.src
            .read_exact_at(node.0, &mut raw)
            .map_err(|e| Error::Io {
                what: format!("FAT directory entry at byte {}", node.0),
                source: e,
            })?;
        let listing = dir::parse(
            &raw,
            &|i| node.0.saturating_add(u64::try_from(i).unwrap_or(0)),
            self.bpb.fat_type == FatType::Fat32,
        );
        listing.entries.into_iter().next().ok_or_else(|| {
            Error::corrupt(
                "FAT directory entry",
                node.0,
                "not a file or directory entry",
            )
        })
    }

    /// The bytes of directory `node` and the volume position of each.
    fn dir_bytes(&self, node: NodeId) -> Result<(Vec<u8>, Places)> {
        let first = if node == ROOT {
            if self.bpb.fat_type != FatType::Fat32 {
                let mut b = vec![0u8; usize::try_from(self.bpb.root_bytes).unwrap_or(0)];
                self.src
                    .read_exact_at(self.bpb.root_offset, &mut b)
                    .map_err(|e| Error::Io {
                        what: format!("FAT root directory at byte {}", self.bpb.root_offset),
                        source: e,
                    })?;
                return Ok((b, vec![(0, self.bpb.root_offset)]));
            }
            self.bpb.root_cluster
        } else {
            let e = self.entry_at(node)?;
            if !e.is_dir() {
                return Err(Error::Invalid("not a directory".into()));
            }
            if e.cluster == 0 {
                return Ok((Vec::new(), Vec::new()));
            }
            e.cluster
        };
        let runs = self.chain(first, None)?;
        let cs = u64::from(self.bpb.cluster_size);
        let mut data = Vec::new();
        let mut places = Vec::new();
        for r in runs.iter() {
            let len = u64::from(r.count).saturating_mul(cs);
            let total = u64::try_from(data.len())
                .unwrap_or(u64::MAX)
                .saturating_add(len);
            if total > MAX_DIR_BYTES {
                return Err(Error::corrupt(
                    "FAT directory",
                    self.bpb.cluster_offset(first),
                    format!("larger than {MAX_DIR_BYTES} bytes (65536 entries)"),
                ));
            }
            let at = data.len();
            let pos = self.bpb.cluster_offset(r.first);
            data.resize(at.saturating_add(usize::try_from(len).unwrap_or(0)), 0);
            let buf = data.get_mut(at..).unwrap_or_default();
            self.src.read_exact_at(pos, buf).map_err(|e| Error::Io {
                what: format!("FAT directory cluster {} at byte {pos}", r.first),
                source: e,
            })?;
            places.push((at, pos));
        }
        Ok((data, places))
    }

    /// The parsed directory `node`, kept for the next lookup.
    fn listing(&self, node: NodeId) -> Result<Arc<dir::Listing>> {
        if let Some(l) = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
        {
            return Ok(Arc::clone(l));
        }
        let l = Arc::new(self.parse_dir(node)?);
        let mut cache = self.listings.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_LISTINGS {
            cache.clear();
        }
        cache.insert(node, Arc::clone(&l));
        Ok(l)
    }

    /// Read and parse directory `node`.
    fn parse_dir(&self, node: NodeId) -> Result<dir::Listing> {
        let (data, places) = self.dir_bytes(node)?;
        let pos_of = |i: usize| -> u64 {
            let (start, pos) = places
                .iter()
                .rev()
                .find(|(s, _)| *s <= i)
                .copied()
                .unwrap_or((0, 0));
            pos.saturating_add(u64::try_from(i.saturating_sub(start)).unwrap_or(0))
        };
        Ok(dir::parse(
            &data,
            &pos_of,
            self.bpb.fat_type == FatType::Fat32,
        ))
    }

    fn file_type(e: &dir::Entry) -> FileType {
        if e.is_dir() {
            FileType::Directory
        } else {
            FileType::Regular
        }
    }

    /// Where byte `offset` of the file with first cluster `first` and
    /// `size` bytes is on the volume, and how many bytes follow there.
    fn locate(&self, first: u32, size: u64, offset: u64) -> Result<(u64, u64)> {
        let runs = self.chain(first, Some(size))?;
        let cs = u64::from(self.bpb.cluster_size);
        let mut at = 0u64;
        for r in runs.iter() {
            let len = u64::from(r.count).saturating_mul(cs);
            if offset < at.saturating_add(len) {
                let inside = offset.saturating_sub(at);
                return Ok((
                    self.bpb.cluster_offset(r.first).saturating_add(inside),
                    len.saturating_sub(inside),
                ));
            }
            at = at.saturating_add(len);
        }
        Err(Error::corrupt(
            "FAT cluster chain",
            self.bpb.cluster_offset(first),
            format!(
                "the chain from cluster {first} holds {at} bytes, but the file is {size} bytes (fsck.fat would cut it)"
            ),
        ))
    }
}

impl FsView for Fat {
    fn status(&self) -> FsStatus {
        FsStatus {
            fs_type: "vfat".into(),
            label: self
                .label
                .as_ref()
                .map(|l| String::from_utf8_lossy(l).into_owned()),
            uuid: self
                .bpb
                .serial
                .map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xFFFF)),
            notes: self.notes.clone(),
            problems: self.problems.list(),
        }
    }

    fn problem_count(&self) -> usize {
        self.problems.count()
    }

    fn root(&self) -> NodeId {
        ROOT
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let cs = u64::from(self.bpb.cluster_size);
        if node == ROOT {
            let l = self.listing(ROOT)?;
            let size = if self.bpb.fat_type == FatType::Fat32 {
                self.chain(self.bpb.root_cluster, None)?
                    .iter()
                    .map(|r| u64::from(r.count))
                    .sum::<u64>()
                    .saturating_mul(cs)
            } else {
                self.bpb.root_bytes
            };
            return Ok(Metadata {
                node,
                ino: 1,
                file_type: FileType::Directory,
                perm: 0o755,
                uid: 0,
                gid: 0,
                size,
                nlink: l.subdirs.saturating_add(2),
                atime: Timestamp::default(),
                mtime: Timestamp::default(),
                ctime: Timestamp::default(),
                crtime: None,
                rdev: (0, 0),
                allocated: Some(size),
            });
        }
        let e = self.entry_at(node)?;
        let file_type = Self::file_type(&e);
        let (size, nlink) = if e.is_dir() {
            let runs = if e.cluster == 0 {
                Arc::new(Vec::new())
            } else {
                self.chain(e.cluster, None)?
            };
            let bytes = runs
                .iter()
                .map(|r| u64::from(r.count))
                .sum::<u64>()
                .saturating_mul(cs);
            (bytes, self.listing(node)?.subdirs.saturating_add(2))
        } else {
            (u64::from(e.size), 1)
        };
        let perm = if e.attr & dir::ATTR_RO != 0 && !e.is_dir() {
            0o555
        } else {
            0o755
        };
        Ok(Metadata {
            node,
            ino: node.0 / 32,
            file_type,
            perm,
            uid: 0,
            gid: 0,
            size,
            nlink,
            atime: e.atime,
            mtime: e.mtime,
            ctime: e.mtime,
            crtime: e.crtime,
            rdev: (0, 0),
            allocated: Some(size.div_ceil(cs).saturating_mul(cs)),
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        Ok(self
            .listing(dir)?
            .entries
            .iter()
            .map(|e| DirEntry {
                file_type: Some(Self::file_type(e)),
                node: NodeId(e.pos),
                name: e.name.clone(),
            })
            .collect())
    }

    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        let l = self.listing(dir)?;
        if let Some(e) = l.entries.iter().find(|e| e.name == name) {
            return Ok(Some(NodeId(e.pos)));
        }
        // vfat lookups ignore case (ASCII), for long and short names.
        Ok(l.entries
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name) || e.short.eq_ignore_ascii_case(name))
            .map(|e| NodeId(e.pos)))
    }

    fn read_link(&self, _node: NodeId) -> Result<Vec<u8>> {
        Err(Error::Invalid("FAT has no symbolic links".into()))
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let e = self.entry_at(node)?;
        if e.is_dir() {
            return Err(Error::Invalid("is a directory".into()));
        }
        let size = u64::from(e.size);
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset.saturating_add(u64::try_from(done).unwrap_or(0));
            if at >= size {
                break;
            }
            let (pos, avail) = self.locate(e.cluster, size, at)?;
            let n = u64::try_from(buf.len().saturating_sub(done))
                .unwrap_or(0)
                .min(avail)
                .min(size.saturating_sub(at));
            let n = usize::try_from(n).unwrap_or(0);
            let end = done.saturating_add(n);
            let part = buf.get_mut(done..end).unwrap_or_default();
            self.src.read_exact_at(pos, part).map_err(|err| Error::Io {
                what: format!("FAT file data at byte {pos}"),
                source: err,
            })?;
            done = end;
        }
        Ok(done)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let e = self.entry_at(node)?;
        let size = u64::from(e.size);
        if e.is_dir() || size == 0 {
            return Ok(Vec::new());
        }
        // FAT has no holes; the chain is checked when the bytes are read.
        Ok(vec![FileExtent {
            offset: 0,
            len: size,
            unwritten: false,
        }])
    }

    fn xattrs(&self, _node: NodeId) -> Result<Vec<Xattr>> {
        Ok(Vec::new())
    }

    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        let e = self.entry_at(node).ok()?;
        let size = u64::from(e.size);
        if e.is_dir() || offset >= size {
            return None;
        }
        let (pos, avail) = self.locate(e.cluster, size, offset).ok()?;
        self.src
            .host_extent(pos, len.min(avail).min(size.saturating_sub(offset)))
    }

    fn space(&self, _node: NodeId) -> Option<Space> {
        let used = self.bpb.fat_used_bytes();
        if used > MAX_COMPARE {
            return None;
        }
        let mut b = vec![0u8; usize::try_from(used).ok()?];
        self.src
            .read_exact_at(self.bpb.fat_start(self.fat), &mut b)
            .ok()?;
        let mut free = 0u64;
        for c in 2..self.bpb.clusters.saturating_add(2) {
            let v = match self.bpb.fat_type {
                FatType::Fat12 => {
                    let at = usize::try_from(u64::from(c).saturating_mul(3) / 2).ok()?;
                    crate::io::le::u16(&b, at)
                        .map(u32::from)
                        .map(|r| if c & 1 == 1 { r >> 4 } else { r & 0x0FFF })
                }
                FatType::Fat16 => {
                    crate::io::le::u16(&b, usize::try_from(c).ok()?.saturating_mul(2))
                        .map(u32::from)
                }
                FatType::Fat32 => {
                    crate::io::le::u32(&b, usize::try_from(c).ok()?.saturating_mul(4))
                        .map(|r| r & 0x0FFF_FFFF)
                }
            };
            if v == Some(0) {
                free = free.saturating_add(1);
            }
        }
        Some(Space {
            block_size: u64::from(self.bpb.cluster_size),
            blocks: u64::from(self.bpb.clusters),
            free_blocks: free,
            avail_blocks: free,
            inodes: 0,
            free_inodes: 0,
        })
    }
}
