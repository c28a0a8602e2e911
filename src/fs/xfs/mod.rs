//! Our own XFS reader, read-only.
//!
//! Reads v4 (crc=0) and v5 (crc=1) filesystems through a [`ReadAt`] of the
//! volume: inodes (v1/v2/v3 cores) located from their numbers alone (AG
//! number, AG block, index), data forks as extent lists or bmbt btrees,
//! shortform/block/leaf/node directories, local and remote symlinks, and
//! extended attributes (shortform, leaf and node attr forks).
//!
//! A dirty internal log is replayed in memory ([`replay`]) into an
//! [`overlay::Overlay`] of replaced sectors, the way the kernel's log
//! recovery would write them, and [`FsStatus::notes`] says so; the image is
//! never written. With [`FsOptions::no_journal`] the on-disk state is shown,
//! as `mount -o norecovery` shows it (the kernel engine mounts XFS that way).
//!
//! v5 checksums (superblock, AG headers, inodes, bmbt, directory and attr
//! blocks) are verified; a bad one is recorded in [`FsStatus::problems`]
//! and reading goes on. Everything read from the image is bounds-checked;
//! what cannot be read gives an error naming the inode, the structure and
//! the byte position.

mod attr;
mod bmap;
mod dir;
pub mod inode;
mod log;
pub mod overlay;
mod replay;
pub mod sb;
pub mod space;
pub mod write;

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::fs::problems::ProblemLog;
use crate::fs::{
    DirEntry, FileExtent, FileType, FsOptions, FsStatus, FsView, Metadata, NodeId, Space, Xattr,
};
use crate::io::{CachedSource, HostExtent, ReadAt, be};
use crate::problem::Problem;

use bmap::Bmx;
use inode::{Dinode, Fork, format};
pub use log::LogState;
use sb::{Superblock, incompat};

/// Metadata cache budget in bytes.
const META_CACHE_BYTES: u64 = 8 << 20;
/// Most entries one directory may list.
pub const MAX_DIR_ENTRIES: usize = 8 << 20;
/// Longest symlink target XFS stores (`XFS_SYMLINK_MAXLEN`).
const XFS_SYMLINK_MAXLEN: u64 = 1024;
/// "XSLM": remote symlink block header (v5).
const XFS_SYMLINK_MAGIC: u32 = 0x5853_4c4d;
const SYMLINK_HDR: usize = 56;
const SYMLINK_CRC_OFF: usize = 12;
/// Largest data run read in one system call.
const MAX_READ_RUN: u64 = 8 << 20;
/// Block maps kept for files being read.
const MAP_CACHE: usize = 8;
/// Most AGs whose headers are checked when opening.
const MAX_AG_CHECKS: u32 = 4096;
/// What the status says when the log was dirty.
pub const NOT_REPLAYED_NOTE: &str = "the XFS log was not replayed: what is shown is the on-disk state, as `mount -o norecovery` shows it";
/// What the status says when the log was dirty and `--no-journal` was given.
pub const NO_JOURNAL_NOTE: &str = "the XFS log needs recovery; not replayed (--no-journal): showing the on-disk state, as `mount -o norecovery` shows it";
/// The start of the note saying the log was replayed.
pub const REPLAYED_NOTE: &str = "log replayed in memory";

/// What the kernel engine's status says when it mounted an XFS volume
/// whose log is dirty (`norecovery`: the log is not replayed there).
pub const KERNEL_NOT_REPLAYED_NOTE: &str = "the XFS log needs recovery, which the kernel engine's read-only mount (norecovery) does not do: what is shown is the on-disk state, without the last changes (the userspace engine replays the log in memory)";

/// Whether the XFS filesystem on `src` has a dirty internal log (the state
/// on disk; nothing is replayed).
pub fn has_dirty_log(src: Arc<dyn ReadAt>) -> bool {
    Xfs::open_disk(src).is_ok_and(|fs| log::state(&fs) == log::LogState::Dirty)
}

/// An XFS filesystem, read-only.
pub struct Xfs {
    src: Arc<dyn ReadAt>,
    meta: CachedSource,
    sb: Superblock,
    block_size: u64,
    notes: Vec<String>,
    problems: ProblemLog,
    maps: Mutex<Vec<(u64, Arc<Vec<Bmx>>)>>,
}

impl std::fmt::Debug for Xfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xfs")
            .field("version", &self.sb.version())
            .field("block_size", &self.block_size)
            .field("agcount", &self.sb.sb_agcount)
            .finish()
    }
}

impl Xfs {
    /// Open the XFS filesystem on `src` (a volume's bytes), its dirty log
    /// replayed in memory.
    pub fn open(src: Arc<dyn ReadAt>) -> Result<Xfs> {
        Xfs::open_with(src, &FsOptions::default())
    }

    /// [`Xfs::open`]; with `opts.no_journal` a dirty log is not replayed
    /// and the on-disk state is shown.
    pub fn open_with(src: Arc<dyn ReadAt>, opts: &FsOptions) -> Result<Xfs> {
        let mut fs = Xfs::open_disk(Arc::clone(&src))?;
        match log::state(&fs) {
            log::LogState::Clean => {}
            log::LogState::External => fs.notes.push(
                "the XFS log is on an external device that is not checked: what is shown is the on-disk state".into(),
            ),
            log::LogState::Unknown(why) => {
                fs.problem(Problem::of("xfs log", format!("cannot tell whether it is clean: {why}")));
                fs.notes.push(NOT_REPLAYED_NOTE.into());
            }
            log::LogState::Dirty if opts.no_journal => fs.notes.push(NO_JOURNAL_NOTE.into()),
            log::LogState::Dirty => match replay::replay(&fs) {
                Ok(r) => {
                    let note = format!(
                        "{REPLAYED_NOTE}: {} transactions, {} buffers, {} inodes{}",
                        r.transactions,
                        r.buffers,
                        r.inodes,
                        if r.icreates > 0 {
                            format!(", {} inode chunks created", r.icreates)
                        } else {
                            String::new()
                        }
                    );
                    let overlay: Arc<dyn ReadAt> =
                        Arc::new(overlay::Overlay::new(Arc::clone(&src), r.sectors));
                    match Xfs::open_disk(overlay) {
                        Ok(mut replayed) => {
                            replayed.notes.push(note);
                            replayed.notes.extend(r.notes);
                            for p in r.problems {
                                replayed.problem(p);
                            }
                            return Ok(replayed);
                        }
                        Err(e) => {
                            fs.problem(Problem::of(
                                "xfs log",
                                format!("the filesystem as replayed cannot be opened ({e})"),
                            ));
                            fs.notes.push(NOT_REPLAYED_NOTE.into());
                        }
                    }
                }
                Err(e) => {
                    fs.problem(Problem::of(
                        "xfs log",
                        format!("cannot be replayed ({e})"),
                    ));
                    fs.notes.push(NOT_REPLAYED_NOTE.into());
                }
            },
        }
        Ok(fs)
    }

    /// Open the filesystem as the bytes of `src` say, the log not looked at.
    fn open_disk(src: Arc<dyn ReadAt>) -> Result<Xfs> {
        let mut raw = vec![0u8; 512];
        src.read_exact_at(0, &mut raw)
            .map_err(|e| Error::io("xfs superblock at byte 0", e))?;
        let sb = Superblock::parse(&raw)?;
        let unknown = sb.sb_features_incompat & !sb::KNOWN_INCOMPAT;
        if sb.is_v5() && unknown != 0 {
            let names: Vec<String> = (0..32)
                .map(|i| 1u32 << i)
                .filter(|b| unknown & b != 0)
                .map(sb::incompat_name)
                .collect();
            return Err(Error::Unsupported(format!(
                "xfs incompatible feature(s) {}: the filesystem cannot be read safely",
                names.join(", ")
            )));
        }
        let block_size = sb.block_size();
        let cache_blocks = (META_CACHE_BYTES / block_size).max(16) as usize;
        let meta = CachedSource::new(Arc::clone(&src), block_size, cache_blocks);
        let mut fs = Xfs {
            src,
            meta,
            sb,
            block_size,
            notes: Vec::new(),
            problems: ProblemLog::default(),
            maps: Mutex::new(Vec::new()),
        };
        fs.check_headers();
        let fs_bytes = fs.sb.sb_dblocks.saturating_mul(block_size);
        if fs_bytes > fs.src.size() {
            fs.problem(format!(
                "the volume holds {} bytes but the XFS filesystem is {fs_bytes} bytes long: the image is truncated",
                fs.src.size()
            ));
        }
        if fs.sb.sb_rblocks > 0 {
            fs.notes.push(
                "the filesystem has a realtime section on another device: files stored there cannot be read".into(),
            );
        }
        if fs.sb.has_incompat(incompat::NEEDSREPAIR) {
            fs.notes.push(
                "the needsrepair flag is set: xfs_repair did not finish, the filesystem may be inconsistent".into(),
            );
        }
        if fs.sb.ascii_ci() {
            fs.notes.push(
                "names are ASCII case-insensitive in this filesystem: vmrescue matches them exactly"
                    .into(),
            );
        }
        Ok(fs)
    }

    /// Check the superblock checksum and the AG headers (AGF, AGI) of every AG.
    fn check_headers(&self) {
        let ss = usize::from(self.sb.sb_sectsize);
        let v5 = self.sb.is_v5();
        let mut buf = vec![0u8; ss];
        if v5
            && self.read_meta(0, &mut buf, "xfs superblock").is_ok()
            && let Some(m) = sb::crc_mismatch(&buf, sb::SB_CRC_OFF)
        {
            self.problem(Problem::at("xfs superblock", 0, m.to_string()));
        }
        // AGF "XAGF" in sector 1 (CRC at 216), AGI "XAGI" in sector 2 (CRC at 312).
        let headers = [
            ("AGF", 1u64, 0x5841_4746u32, 216usize),
            ("AGI", 2, 0x5841_4749, 312),
        ];
        for agno in 0..self.sb.sb_agcount.min(MAX_AG_CHECKS) {
            let ag_start = u64::from(agno) * u64::from(self.sb.sb_agblocks) * self.block_size;
            for (name, sector, magic, crc_off) in headers {
                let pos = ag_start + sector * ss as u64;
                if let Err(e) = self.read_meta(pos, &mut buf, "xfs AG header") {
                    self.problem(Problem::of(format!("xfs AG {agno} {name}"), e.to_string()));
                    continue;
                }
                let got = be::u32(&buf, 0).unwrap_or(0);
                let seqno = be::u32(&buf, 8).unwrap_or(u32::MAX);
                if got != magic {
                    self.problem(Problem::at(
                        format!("xfs AG {agno} {name}"),
                        pos,
                        format!("bad magic {got:#010x} (expected {magic:#010x})"),
                    ));
                } else if seqno != agno {
                    self.problem(Problem::at(
                        format!("xfs AG {agno} {name}"),
                        pos,
                        format!("sequence number {seqno}"),
                    ));
                } else if v5 && let Some(m) = sb::crc_mismatch(&buf, crc_off) {
                    self.problem(Problem::at(
                        format!("xfs AG {agno} {name}"),
                        pos,
                        m.to_string(),
                    ));
                }
            }
        }
    }

    /// Record a problem found while reading.
    fn problem(&self, problem: impl Into<Problem>) {
        self.problems.record(problem);
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Whether the internal log is clean, read from the disk now.
    pub fn log_state(&self) -> LogState {
        log::state(self)
    }

    /// Read metadata bytes at `pos` through the cache.
    fn read_meta(&self, pos: u64, buf: &mut [u8], what: &str) -> Result<()> {
        self.meta
            .read_exact_at(pos, buf)
            .map_err(|e| Error::io(format!("{what} at byte {pos}"), e))
    }

    /// Read filesystem block `block` (a linear block number) as metadata.
    fn read_block(&self, block: u64, what: &str) -> Result<Vec<u8>> {
        if block >= self.sb.sb_dblocks {
            return Err(Error::corrupt(
                what,
                block.saturating_mul(self.block_size),
                format!(
                    "block {block} lies outside the filesystem ({} blocks)",
                    self.sb.sb_dblocks
                ),
            ));
        }
        let mut buf = vec![0u8; self.block_size as usize];
        self.read_meta(block * self.block_size, &mut buf, what)?;
        Ok(buf)
    }

    // ---- inodes ------------------------------------------------------------

    /// Read and decode inode `ino` (checking its checksum on v5).
    pub fn read_inode(&self, ino: u64) -> Result<Dinode> {
        let pos = self.sb.inode_pos(ino).ok_or_else(|| {
            Error::NotFound(format!(
                "xfs inode {ino} (its number points outside the filesystem)"
            ))
        })?;
        let mut raw = vec![0u8; usize::from(self.sb.sb_inodesize)];
        self.read_meta(pos, &mut raw, &format!("xfs inode {ino}"))?;
        let v5 = self.sb.is_v5();
        if v5 && let Some(m) = sb::crc_mismatch(&raw, inode::DI_CRC_OFF) {
            self.problem(Problem::at(format!("xfs inode {ino}"), pos, m.to_string()));
        }
        let inode = Dinode::parse(ino, pos, raw, v5)?;
        if let Some(di_ino) = inode.di_ino
            && di_ino != ino
        {
            return Err(Error::corrupt(
                format!("xfs inode {ino}"),
                pos,
                format!("the inode says it is number {di_ino}"),
            ));
        }
        Ok(inode)
    }

    /// An inode that is in use.
    fn live_inode(&self, node: NodeId) -> Result<Dinode> {
        let inode = self.read_inode(node.0)?;
        if inode.di_mode == 0 || inode.file_type() == FileType::Unknown {
            return Err(Error::corrupt(
                format!("xfs inode {}", node.0),
                inode.pos,
                format!("is not in use (mode {:o})", inode.di_mode),
            ));
        }
        Ok(inode)
    }

    /// A live inode of type `want`; otherwise an error saying it is `not_what`.
    fn inode_of(&self, node: NodeId, want: FileType, not_what: &str) -> Result<Dinode> {
        let inode = self.live_inode(node)?;
        if inode.file_type() != want {
            return Err(Error::Invalid(format!("xfs inode {}: {not_what}", node.0)));
        }
        Ok(inode)
    }

    /// The data fork's extents, from the small cache when this file was read last.
    fn data_map(&self, inode: &Dinode) -> Result<Arc<Vec<Bmx>>> {
        {
            let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, m)) = maps.iter().find(|(ino, _)| *ino == inode.ino) {
                return Ok(Arc::clone(m));
            }
        }
        let map = Arc::new(bmap::extents(self, inode, Fork::Data)?);
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if maps.len() >= MAP_CACHE {
            maps.remove(0);
        }
        maps.push((inode.ino, Arc::clone(&map)));
        Ok(map)
    }

    fn refuse_realtime(&self, inode: &Dinode) -> Result<()> {
        if inode.di_flags & inode::flags::REALTIME != 0 {
            return Err(Error::Unsupported(format!(
                "xfs inode {}: its data is on the realtime device, which vmrescue does not read",
                inode.ino
            )));
        }
        Ok(())
    }

    /// Read file bytes at `offset` of `inode` into `buf`, up to `di_size`.
    fn read_file(&self, inode: &Dinode, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = inode.di_size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = ((size - offset).min(buf.len() as u64)) as usize;
        let buf = &mut buf[..n];
        if inode.di_format == format::LOCAL {
            let data = inode.fork(Fork::Data);
            let start = offset as usize;
            if start + n > data.len() {
                return Err(Error::corrupt(
                    format!("xfs inode {}", inode.ino),
                    inode.pos,
                    format!("{size} bytes of local data do not fit the inode"),
                ));
            }
            buf.copy_from_slice(&data[start..start + n]);
            return Ok(n);
        }
        if inode.di_format != format::EXTENTS && inode.di_format != format::BTREE {
            return Err(Error::corrupt(
                format!("xfs inode {}", inode.ino),
                inode.pos,
                format!("data fork format {} for a regular file", inode.di_format),
            ));
        }
        self.refuse_realtime(inode)?;
        let map = self.data_map(inode)?;
        let bs = self.block_size;
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let lblk = pos / bs;
            let left = (n - done) as u64;
            let (run_end, phys) = match bmap::find(&map, lblk) {
                Ok(x) if !x.unwritten => (
                    x.end().saturating_mul(bs),
                    Some((x.block + (lblk - x.off)) * bs + pos % bs),
                ),
                Ok(x) => (x.end().saturating_mul(bs), None),
                Err(next) => (next.saturating_mul(bs), None),
            };
            let want = (run_end - pos).min(left).clamp(1, MAX_READ_RUN) as usize;
            let out = &mut buf[done..done + want];
            match phys {
                None => out.fill(0),
                Some(p) => self.src.read_exact_at(p, out).map_err(|e| {
                    Error::io(format!("xfs inode {} data at byte {p}", inode.ino), e)
                })?,
            }
            done += want;
        }
        Ok(n)
    }

    /// The target of a symlink inode.
    fn symlink_target(&self, inode: &Dinode) -> Result<Vec<u8>> {
        let size = inode.di_size;
        let what = || format!("xfs symlink inode {}", inode.ino);
        if size == 0 || size > XFS_SYMLINK_MAXLEN {
            return Err(Error::corrupt(
                what(),
                inode.pos,
                format!("target length {size} (1..={XFS_SYMLINK_MAXLEN})"),
            ));
        }
        let size = size as usize;
        if inode.di_format == format::LOCAL {
            let data = inode.fork(Fork::Data);
            return data.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
                Error::corrupt(what(), inode.pos, "the target does not fit the inode")
            });
        }
        let map = bmap::extents(self, inode, Fork::Data)?;
        let v5 = self.sb.is_v5();
        let bs = self.block_size;
        let mut out = Vec::with_capacity(size);
        for x in &map {
            if out.len() >= size {
                break;
            }
            // At most a few blocks: a target is 1024 bytes at most.
            let len = x.len.min(4) * bs;
            let pos = x.block * bs;
            let mut buf = vec![0u8; len as usize];
            self.read_meta(pos, &mut buf, "xfs symlink block")?;
            let data = if v5 {
                let magic = be::u32(&buf, 0).unwrap_or(0);
                let offset = be::u32(&buf, 4).unwrap_or(0) as usize;
                let bytes = be::u32(&buf, 8).unwrap_or(0) as usize;
                let owner = be::u64(&buf, 32).unwrap_or(0);
                if magic != XFS_SYMLINK_MAGIC
                    || offset != out.len()
                    || owner != inode.ino
                    || bytes > buf.len() - SYMLINK_HDR
                {
                    return Err(Error::corrupt(
                        what(),
                        pos,
                        format!(
                            "bad remote symlink header (magic {magic:#010x}, offset {offset}, {bytes} bytes, owner {owner})"
                        ),
                    ));
                }
                if let Some(m) = sb::crc_mismatch(&buf, SYMLINK_CRC_OFF) {
                    self.problem(Problem::at(what().to_string(), pos, m.to_string()));
                }
                &buf[SYMLINK_HDR..SYMLINK_HDR + bytes]
            } else {
                &buf[..]
            };
            let take = data.len().min(size - out.len());
            out.extend_from_slice(&data[..take]);
        }
        if out.len() < size {
            return Err(Error::corrupt(
                what(),
                inode.pos,
                format!("the blocks hold {} of the target's {size} bytes", out.len()),
            ));
        }
        Ok(out)
    }

    /// The data ranges of a regular file, clipped to `di_size`, adjacent ranges merged.
    fn file_extents(&self, inode: &Dinode) -> Result<Vec<FileExtent>> {
        let size = inode.di_size;
        if size == 0 {
            return Ok(Vec::new());
        }
        if inode.di_format == format::LOCAL {
            return Ok(vec![FileExtent {
                offset: 0,
                len: size,
                unwritten: false,
            }]);
        }
        let map = self.data_map(inode)?;
        let bs = self.block_size;
        let mut out: Vec<FileExtent> = Vec::new();
        for x in map.iter() {
            let start = x.off.saturating_mul(bs);
            if start >= size {
                break;
            }
            let end = x.end().saturating_mul(bs).min(size);
            if let Some(last) = out.last_mut()
                && last.offset + last.len == start
                && last.unwritten == x.unwritten
            {
                last.len = end - last.offset;
                continue;
            }
            out.push(FileExtent {
                offset: start,
                len: end - start,
                unwritten: x.unwritten,
            });
        }
        Ok(out)
    }
}

impl FsView for Xfs {
    fn status(&self) -> FsStatus {
        let problems = self.problems.list();
        FsStatus {
            fs_type: "xfs".into(),
            label: self.sb.label(),
            uuid: Some(self.sb.uuid_string()),
            notes: self.notes.clone(),
            problems,
        }
    }

    fn problem_count(&self) -> usize {
        self.problems.count()
    }

    fn space(&self, _node: NodeId) -> Option<Space> {
        space::space(self)
    }

    fn root(&self) -> NodeId {
        NodeId(self.sb.sb_rootino)
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let inode = self.live_inode(node)?;
        let file_type = inode.file_type();
        let rdev = match file_type {
            FileType::CharDevice | FileType::BlockDevice => inode.rdev(),
            _ => (0, 0),
        };
        Ok(Metadata {
            node,
            ino: inode.ino,
            file_type,
            perm: u32::from(inode.di_mode) & 0o7777,
            uid: inode.di_uid,
            gid: inode.di_gid,
            size: inode.di_size,
            nlink: u64::from(inode.di_nlink),
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            crtime: inode.crtime,
            rdev,
            allocated: Some(inode.di_nblocks.saturating_mul(self.block_size)),
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let inode = self.inode_of(dir, FileType::Directory, "not a directory")?;
        dir::list(self, &inode)
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        let inode = self.inode_of(node, FileType::Symlink, "not a symbolic link")?;
        self.symlink_target(&inode)
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.inode_of(node, FileType::Regular, "not a regular file")?;
        self.read_file(&inode, offset, buf)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let inode = self.inode_of(node, FileType::Regular, "not a regular file")?;
        self.file_extents(&inode)
    }

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        let inode = self.live_inode(node)?;
        attr::list(self, &inode)
    }

    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        let inode = self.live_inode(node).ok()?;
        if inode.file_type() != FileType::Regular
            || offset >= inode.di_size
            || len == 0
            || inode.di_flags & inode::flags::REALTIME != 0
            || !matches!(inode.di_format, format::EXTENTS | format::BTREE)
        {
            return None;
        }
        let bs = self.block_size;
        let map = self.data_map(&inode).ok()?;
        let lblk = offset / bs;
        let x = bmap::find(&map, lblk).ok()?;
        if x.unwritten {
            return None;
        }
        let phys = (x.block + (lblk - x.off)) * bs + offset % bs;
        let run_left = x.end() * bs - offset;
        let len = len.min(run_left).min(inode.di_size - offset);
        self.src.host_extent(phys, len)
    }
}
