//! Our own ext2/ext3/ext4 reader.
//!
//! Everything is read through a [`ReadAt`] of the volume, never written.
//! Metadata (group descriptors, inode tables, extent and index nodes,
//! directory and xattr blocks) goes through a bounded [`CachedSource`]; file
//! data is read straight from the source in whole runs. When the journal
//! needs recovery, committed transactions are replayed **in memory** (the
//! `journal` module): an overlay maps a block number to the journal block
//! holding its newest committed copy, and every read consults it first.
//!
//! Damage found while reading (bad checksums, broken entries) is recorded in
//! [`FsStatus::problems`] with the structure and byte position, and reading
//! goes on where it safely can; what cannot be read gives an error with the
//! byte position, never a panic, hang or unbounded allocation.
//!
//! For the later in-place symlink repair, [`Ext::inode_position`],
//! [`inode::inode_checksum`], [`inode::set_inode_checksum`] and
//! [`Ext::csum_seed`] are public.

pub mod csum;
mod dir;
pub mod group;
pub mod hash;
pub mod inode;
mod journal;
mod map;
mod space;
pub mod superblock;
pub mod write;
mod xattr;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::FsOptions;
use crate::fs::problems::ProblemLog;
use crate::fs::{DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Space, Xattr};
use crate::io::{CachedSource, HostExtent, ReadAt};
use crate::problem::Problem;

use group::GroupDesc;
use inode::Inode;
pub use map::{Run, RunKind};
use superblock::{Superblock, compat, incompat, ro_compat};

/// The root directory's inode.
pub const EXT4_ROOT_INO: u32 = 2;
/// Metadata cache budget in bytes.
const META_CACHE_BYTES: u64 = 8 << 20;
/// Most entries one directory may list.
pub const MAX_DIR_ENTRIES: usize = 8 << 20;
/// Most extents [`FsView::extents`] returns before merging the rest into one
/// (holes past that point are then reported as data, which reads as zeros).
pub const MAX_EXTENTS: usize = 1 << 18;
/// Largest data run read in one system call.
const MAX_READ_RUN: u64 = 8 << 20;

/// Where the newest committed copy of a block lives in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalCopy {
    /// Byte position of the journal block in the volume.
    pub pos: u64,
    /// The block was escaped (its first four bytes were the JBD2 magic).
    pub escaped: bool,
    /// `pos` is on the external journal device, not in the volume.
    pub external: bool,
}

/// An ext2/ext3/ext4 filesystem, read-only.
pub struct Ext {
    src: Arc<dyn ReadAt>,
    meta: CachedSource,
    sb: Superblock,
    block_size: u64,
    groups: Vec<GroupDesc>,
    overlay: BTreeMap<u64, JournalCopy>,
    /// The external journal device the overlay's external copies are on.
    journal_dev: Option<Arc<dyn ReadAt>>,
    csum_seed: u32,
    fs_type: &'static str,
    notes: Vec<String>,
    problems: ProblemLog,
}

impl std::fmt::Debug for Ext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ext")
            .field("fs_type", &self.fs_type)
            .field("block_size", &self.block_size)
            .field("groups", &self.groups.len())
            .field("overlay", &self.overlay.len())
            .finish()
    }
}

/// Features this reader understands, by kind.
const KNOWN_INCOMPAT: u32 = incompat::FILETYPE
    | incompat::RECOVER
    | incompat::META_BG
    | incompat::EXTENTS
    | incompat::BIT64
    | incompat::MMP
    | incompat::FLEX_BG
    | incompat::EA_INODE
    | incompat::CSUM_SEED
    | incompat::LARGEDIR
    | incompat::INLINE_DATA
    | incompat::ENCRYPT
    | incompat::CASEFOLD;
const KNOWN_RO_COMPAT: u32 = ro_compat::SPARSE_SUPER
    | ro_compat::LARGE_FILE
    | ro_compat::BTREE_DIR
    | ro_compat::HUGE_FILE
    | ro_compat::GDT_CSUM
    | ro_compat::DIR_NLINK
    | ro_compat::EXTRA_ISIZE
    | ro_compat::HAS_SNAPSHOT
    | ro_compat::QUOTA
    | ro_compat::BIGALLOC
    | ro_compat::METADATA_CSUM
    | ro_compat::READONLY
    | ro_compat::PROJECT
    | ro_compat::SHARED_BLOCKS
    | ro_compat::VERITY
    | ro_compat::ORPHAN_PRESENT;

impl Ext {
    /// Open the ext2/3/4 filesystem on `src` (a volume's bytes).
    ///
    /// With `options.no_journal` a journal that needs recovery is left
    /// alone and the on-disk state is shown.
    pub fn open(src: Arc<dyn ReadAt>, options: &FsOptions) -> Result<Ext> {
        Ext::open_with_journal_devices(src, options, &[])
    }

    /// [`Ext::open`], with `devices` (other volumes of the same disks) to
    /// search for an external journal (journal_dev) whose UUID is the one
    /// the filesystem names (`s_journal_uuid`), replayed when it needs recovery.
    pub fn open_with_journal_devices(
        src: Arc<dyn ReadAt>,
        options: &FsOptions,
        devices: &[Arc<dyn ReadAt>],
    ) -> Result<Ext> {
        let mut problems = Vec::new();
        let sb = match read_superblock(&*src, superblock::SUPERBLOCK_OFFSET) {
            Ok(sb) => sb,
            Err(primary) => {
                let Some(sb) = find_backup(&*src) else {
                    return Err(primary);
                };
                problems.push(
                    format!("{primary}; using the backup superblock at byte {}", sb.pos).into(),
                );
                sb
            }
        };
        let mut notes = Vec::new();
        check_features(&sb, &mut notes)?;
        if sb.has_metadata_csum() {
            if sb.s_checksum_type != 1 {
                problems.push(Problem::at(
                    "ext superblock",
                    sb.pos + 0x175,
                    format!("s_checksum_type {} is not crc32c (1)", sb.s_checksum_type),
                ));
            } else if sb.computed_checksum() != sb.s_checksum {
                problems.push(Problem::at(
                    "ext superblock",
                    sb.pos + 0x3FC,
                    format!(
                        "checksum mismatch (stored {:#010x}, computed {:#010x})",
                        sb.s_checksum,
                        sb.computed_checksum()
                    ),
                ));
            }
        }
        if sb.s_state & 0x2 != 0 {
            notes.push(
                "the filesystem's error flag is set (s_state): it was not checked since an error"
                    .into(),
            );
        }
        let block_size = sb.block_size();
        let cache_blocks = (META_CACHE_BYTES / block_size).max(16) as usize;
        let meta = CachedSource::new(Arc::clone(&src), block_size, cache_blocks);
        let fs_type = fs_type_of(&sb);
        let mut ext = Ext {
            src,
            meta,
            csum_seed: sb.csum_seed(),
            block_size,
            sb,
            groups: Vec::new(),
            overlay: BTreeMap::new(),
            journal_dev: None,
            fs_type,
            notes,
            problems: ProblemLog::default(),
        };
        for p in problems {
            ext.problem(p);
        }
        // When the journal will be replayed, check the descriptors as replayed.
        let replaying = ext.sb.has_incompat(incompat::RECOVER) && !options.no_journal;
        ext.groups = ext.load_groups(!replaying)?;
        if ext.sb.has_incompat(incompat::RECOVER) {
            ext.recover(options.no_journal, devices)?;
        }
        if replaying && ext.overlay.is_empty() {
            ext.groups = ext.load_groups(true)?;
        }
        Ok(ext)
    }

    /// Handle a journal that needs recovery: replay it in memory (or say why not).
    fn recover(&mut self, no_journal: bool, devices: &[Arc<dyn ReadAt>]) -> Result<()> {
        if !self.sb.has_compat(compat::HAS_JOURNAL) {
            self.notes.push(
                "needs_recovery is set but there is no journal: showing the on-disk state".into(),
            );
            return Ok(());
        }
        let external = self.sb.s_journal_inum == 0;
        let device = if external {
            let Some(dev) = self.journal_device(devices) else {
                self.notes.push(format!(
                    "the journal is on an external device (UUID {}, device {:#x}) that is not available (pass its image with --disk): showing the on-disk state, which may lack the last changes",
                    superblock::uuid_text(&self.sb.s_journal_uuid),
                    self.sb.s_journal_dev
                ));
                return Ok(());
            };
            Some(dev)
        } else {
            None
        };
        if no_journal {
            self.notes.push(
                "the journal needs recovery; not replayed (--no-journal): showing the on-disk state"
                    .into(),
            );
            return Ok(());
        }
        let replayed = match &device {
            Some(dev) => journal::replay_from(self, journal::Log::Device(Arc::clone(dev))),
            None => journal::replay(self),
        };
        self.journal_dev = device;
        let replay = match replayed {
            Ok(r) => r,
            Err(e) => {
                // Never replay a journal that cannot be trusted: the on-disk state is still readable.
                self.problem(format!(
                    "the journal cannot be replayed ({e}): showing the on-disk state, which may lack the last changes (what --no-journal shows; e2fsck on a copy of the image repairs the journal)"
                ));
                return Ok(());
            }
        };
        for p in replay.problems {
            self.problem(p);
        }
        for n in replay.notes {
            self.notes.push(n);
        }
        if replay.overlay.is_empty() && replay.transactions == 0 {
            self.notes
                .push("the journal needed recovery but held no committed transaction".into());
            return Ok(());
        }
        self.overlay = replay.overlay;
        self.notes.push(format!(
            "journal replayed in memory: {} transactions, {} blocks",
            replay.transactions,
            self.overlay.len()
        ));
        // The superblock and group descriptors may have been in the journal.
        let bs = self.block_size;
        let sb_block = superblock::SUPERBLOCK_OFFSET / bs;
        if self.overlay.contains_key(&sb_block) {
            let mut raw = vec![0u8; superblock::SUPERBLOCK_SIZE];
            self.read_meta_at(superblock::SUPERBLOCK_OFFSET, &mut raw, "ext superblock")?;
            match Superblock::parse(&raw, superblock::SUPERBLOCK_OFFSET, self.src.size()) {
                Ok(sb) if sb.block_size() == bs => {
                    let mut ignored = Vec::new();
                    if check_features(&sb, &mut ignored).is_ok() {
                        self.csum_seed = sb.csum_seed();
                        self.sb = sb;
                    }
                }
                Ok(_) => self.problem(
                    "ext superblock replayed from the journal changes the block size: ignored",
                ),
                Err(e) => self.problem(format!(
                    "ext superblock replayed from the journal is not valid ({e}): ignored"
                )),
            }
        }
        self.groups = self.load_groups(true)?;
        Ok(())
    }

    /// The device among `devices` that is this filesystem's external
    /// journal: an ext superblock with journal_dev, the UUID the filesystem
    /// names, and its block size.
    fn journal_device(&self, devices: &[Arc<dyn ReadAt>]) -> Option<Arc<dyn ReadAt>> {
        devices
            .iter()
            .find(|dev| {
                let Ok(raw) = crate::io::read_vec(
                    &***dev,
                    superblock::SUPERBLOCK_OFFSET,
                    superblock::SUPERBLOCK_SIZE as u64,
                    superblock::SUPERBLOCK_SIZE as u64,
                ) else {
                    return false;
                };
                let le32 = |o: usize| crate::io::le::u32(&raw, o).unwrap_or(0);
                crate::io::le::u16(&raw, 0x38) == Some(0xEF53)
                    && le32(0x60) & incompat::JOURNAL_DEV != 0
                    && raw.get(0x68..0x78) == Some(&self.sb.s_journal_uuid[..])
                    && 1024u64.checked_shl(le32(0x18)) == Some(self.block_size)
            })
            .cloned()
    }

    /// Read every group descriptor; `report` records bad checksums as problems.
    fn load_groups(&self, report: bool) -> Result<Vec<GroupDesc>> {
        let sb = &self.sb;
        let count = sb.group_count();
        let ds = sb.desc_size();
        let per_block = self.block_size / ds;
        let mut groups = Vec::with_capacity(count as usize);
        let mut block = Vec::new();
        let mut loaded_nr = u64::MAX;
        for g in 0..count {
            let nr = g / per_block;
            let blk = group::descriptor_block(sb, nr);
            if nr != loaded_nr {
                block = self.read_block(blk, "ext group descriptor block")?;
                loaded_nr = nr;
            }
            let off = ((g % per_block) * ds) as usize;
            let raw = &block[off..off + ds as usize];
            let desc = GroupDesc::parse(raw, sb.is_64bit());
            let pos = blk * self.block_size + off as u64;
            if let Some(want) = group::desc_checksum(sb, g as u32, raw) {
                let stored = crate::io::le::u16(raw, group::BG_CHECKSUM).unwrap_or(0);
                if stored != want && report {
                    self.problem(Problem::at(
                        format!("ext group descriptor {g}"),
                        pos,
                        format!("checksum mismatch (stored {stored:#06x}, computed {want:#06x})"),
                    ));
                }
            }
            groups.push(desc);
        }
        Ok(groups)
    }

    /// Record a problem found while reading.
    fn problem(&self, problem: impl Into<Problem>) {
        self.problems.record(problem);
    }

    /// The superblock (as replayed, when the journal was).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The seed of every metadata checksum (`s_checksum_seed` or `crc32c(~0, uuid)`).
    pub fn csum_seed(&self) -> u32 {
        self.csum_seed
    }

    /// Whether the journal was replayed in memory (so the image differs from this view).
    pub fn journal_replayed(&self) -> bool {
        !self.overlay.is_empty()
    }

    /// Whether block `block` is shown from the journal rather than from its place on disk.
    pub fn is_replayed(&self, block: u64) -> bool {
        self.overlay.contains_key(&block)
    }

    /// Look `name` up in directory `dir` through its hash index alone:
    /// `Some(answer)` when the index gives one, `None` when it cannot tell
    /// (not indexed, unknown hash, a collision chain across index nodes).
    /// [`FsView::lookup`] uses this and falls back to a scan.
    pub fn htree_lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<Option<NodeId>>> {
        let inode = self.live_inode(dir)?;
        if !self.is_dx(&inode) || inode.has_flag(inode::flags::INLINE_DATA) {
            return Ok(None);
        }
        Ok(dir::dx_lookup(self, &inode, name)?.map(|f| f.map(|ino| NodeId(u64::from(ino)))))
    }

    /// The group descriptor of group `g`.
    pub fn group(&self, g: u64) -> Option<&GroupDesc> {
        self.groups.get(usize::try_from(g).ok()?)
    }

    // ---- reading ---------------------------------------------------------

    /// Check that blocks `block..block+count` are inside the filesystem and not block 0.
    fn check_block(&self, block: u64, count: u64, what: &str, at: u64) -> Result<()> {
        if block == 0 {
            return Err(Error::corrupt(what, at, "points at block 0"));
        }
        match block.checked_add(count) {
            Some(e) if e <= self.sb.s_blocks_count => Ok(()),
            _ => Err(Error::corrupt(
                what,
                at,
                format!(
                    "blocks {block}..+{count} lie outside the filesystem ({} blocks)",
                    self.sb.s_blocks_count
                ),
            )),
        }
    }

    /// Read metadata block `block` (journal overlay first, then the cache).
    fn read_block(&self, block: u64, what: &str) -> Result<Vec<u8>> {
        let pos = block
            .checked_mul(self.block_size)
            .ok_or_else(|| Error::corrupt(what, 0, format!("block number {block} overflows")))?;
        if block >= self.sb.s_blocks_count {
            return Err(Error::corrupt(
                what,
                pos,
                format!(
                    "block {block} lies outside the filesystem ({} blocks)",
                    self.sb.s_blocks_count
                ),
            ));
        }
        let mut buf = vec![0u8; self.block_size as usize];
        self.read_meta_at(pos, &mut buf, what)?;
        Ok(buf)
    }

    /// Read metadata bytes at `pos` through the overlay and the cache.
    fn read_meta_at(&self, pos: u64, buf: &mut [u8], what: &str) -> Result<()> {
        self.read_through(pos, buf, what, true)
    }

    /// Read bytes at `pos` through the overlay; `cached` picks the metadata cache.
    fn read_through(&self, pos: u64, buf: &mut [u8], what: &str, cached: bool) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let bs = self.block_size;
        let end = pos
            .checked_add(buf.len() as u64)
            .ok_or_else(|| Error::corrupt(what, pos, "read past 2^64"))?;
        let raw_read = |p: u64, b: &mut [u8]| -> Result<()> {
            let r = if cached {
                self.meta.read_exact_at(p, b)
            } else {
                self.src.read_exact_at(p, b)
            };
            r.map_err(|e| Error::io(format!("{what} at byte {p}"), e))
        };
        if self.overlay.is_empty() {
            return raw_read(pos, buf);
        }
        let first = pos / bs;
        let last = (end - 1) / bs;
        let mut done = 0usize;
        let mut cur = pos;
        for (&blk, copy) in self.overlay.range(first..=last) {
            let bstart = blk * bs;
            if bstart > cur {
                let n = (bstart - cur) as usize;
                raw_read(cur, &mut buf[done..done + n])?;
                done += n;
                cur = bstart;
            }
            let within = (cur - bstart) as usize;
            let n = ((bs as usize) - within).min(buf.len() - done);
            let mut block = vec![0u8; bs as usize];
            let from: &dyn ReadAt = match (&self.journal_dev, copy.external) {
                (Some(dev), true) => &**dev,
                _ => &self.meta,
            };
            from.read_exact_at(copy.pos, &mut block).map_err(|e| {
                Error::io(
                    format!("journal copy of block {blk} at byte {}", copy.pos),
                    e,
                )
            })?;
            if copy.escaped {
                block[..4].copy_from_slice(&journal::JBD2_MAGIC.to_be_bytes());
            }
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
            cur += n as u64;
        }
        if done < buf.len() {
            raw_read(cur, &mut buf[done..])?;
        }
        Ok(())
    }

    /// Whether any block of `block..block+count` comes from the journal.
    fn overlay_touches(&self, block: u64, count: u64) -> bool {
        !self.overlay.is_empty()
            && self
                .overlay
                .range(block..block.saturating_add(count))
                .next()
                .is_some()
    }

    // ---- inodes ------------------------------------------------------------

    /// Absolute byte position of inode `ino` in the volume.
    pub fn inode_position(&self, ino: u32) -> Result<u64> {
        let sb = &self.sb;
        if ino == 0 || ino > sb.s_inodes_count {
            return Err(Error::NotFound(format!(
                "inode {ino} (the filesystem has inodes 1..={})",
                sb.s_inodes_count
            )));
        }
        let ipg = u64::from(sb.s_inodes_per_group);
        let group = u64::from(ino - 1) / ipg;
        let index = u64::from(ino - 1) % ipg;
        let desc = self.group(group).ok_or_else(|| {
            Error::corrupt(
                "ext inode",
                0,
                format!("inode {ino}: group {group} has no descriptor"),
            )
        })?;
        if sb.has_group_csum() {
            if desc.bg_flags & group::EXT4_BG_INODE_UNINIT != 0 {
                return Err(Error::corrupt(
                    "ext inode",
                    0,
                    format!(
                        "inode {ino}: the inode table of group {group} is not initialised (INODE_UNINIT)"
                    ),
                ));
            }
            if index >= ipg.saturating_sub(u64::from(desc.bg_itable_unused)) {
                return Err(Error::corrupt(
                    "ext inode",
                    0,
                    format!("inode {ino}: lies in the unused part of group {group}'s inode table"),
                ));
            }
        }
        let isz = u64::from(sb.s_inode_size);
        let table_blocks = (ipg * isz).div_ceil(self.block_size);
        self.check_block(desc.bg_inode_table, table_blocks, "ext inode table", 0)
            .map_err(|_| {
                Error::corrupt(
                    "ext group descriptor",
                    0,
                    format!(
                        "group {group}: inode table at block {} lies outside the filesystem",
                        desc.bg_inode_table
                    ),
                )
            })?;
        Ok(desc.bg_inode_table * self.block_size + index * isz)
    }

    /// Read and decode inode `ino` (checking its checksum).
    pub fn read_inode(&self, ino: u32) -> Result<Inode> {
        let pos = self.inode_position(ino)?;
        let mut raw = vec![0u8; usize::from(self.sb.s_inode_size)];
        self.read_meta_at(pos, &mut raw, "ext inode")?;
        if self.sb.has_metadata_csum() && raw.iter().any(|&b| b != 0) {
            let want = inode::inode_checksum(self.csum_seed, ino, &raw);
            let stored = inode::stored_checksum(&raw);
            if want != stored {
                self.problem(Problem::at(
                    format!("ext inode {ino}"),
                    pos,
                    format!("checksum mismatch (stored {stored:#x}, computed {want:#x})"),
                ));
            }
        }
        let (inode, problem) = Inode::parse(
            ino,
            pos,
            raw,
            self.sb.has_ro_compat(ro_compat::HUGE_FILE),
            self.sb.has_incompat(incompat::LARGEDIR),
            self.sb.is_64bit(),
        );
        if let Some(p) = problem {
            self.problem(Problem::at(format!("ext inode {ino}"), pos, p.to_string()));
        }
        Ok(inode)
    }

    /// An inode that is in use (has a mode and links), as `NodeId` names it.
    /// A live inode of type `want` whose contents can be read (not
    /// encrypted); otherwise an error saying it is `not_what`.
    fn inode_of(&self, node: NodeId, want: FileType, not_what: &str) -> Result<Inode> {
        let inode = self.live_inode(node)?;
        if inode.file_type() != want {
            return Err(Error::Invalid(format!("inode {}: {not_what}", inode.ino)));
        }
        self.refuse_encrypted(&inode)?;
        self.refuse_conflicting_flags(&inode)?;
        Ok(inode)
    }

    /// Record `e` as a problem too (so a listing that shows the node
    /// without reading it still ends with exit code 1), and return it.
    fn damage(&self, e: Error) -> Error {
        self.problem(&e);
        e
    }

    /// Refuse an inode flagged both INLINE_DATA and EXTENTS, as the kernel
    /// does (`__ext4_iget`: -EFSCORRUPTED); e2fsck calls it corruption.
    /// [`Ext::live_inode`] has recorded the problem already.
    fn refuse_conflicting_flags(&self, inode: &Inode) -> Result<()> {
        match conflicting_flags(inode) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn live_inode(&self, node: NodeId) -> Result<Inode> {
        let ino =
            u32::try_from(node.0).map_err(|_| Error::NotFound(format!("inode {}", node.0)))?;
        let inode = self.read_inode(ino)?;
        if inode.i_mode == 0 || (inode.i_links_count == 0 && ino != EXT4_ROOT_INO) {
            return Err(Error::corrupt(
                "ext inode",
                inode.pos,
                format!(
                    "inode {ino} is not in use (mode {:o}, links {})",
                    inode.i_mode, inode.i_links_count
                ),
            ));
        }
        if let Some(e) = conflicting_flags(&inode) {
            self.problem(&e);
        }
        Ok(inode)
    }

    fn refuse_encrypted(&self, inode: &Inode) -> Result<()> {
        if inode.has_flag(inode::flags::ENCRYPT) {
            return Err(Error::Unsupported(format!(
                "inode {} is encrypted (ext4 encryption): its contents and names cannot be read",
                inode.ino
            )));
        }
        Ok(())
    }

    // ---- file data ---------------------------------------------------------------

    /// The inline data of an inode (`i_block` then the `system.data`
    /// xattr), up to `i_size` but never past what the xattr's own value
    /// size holds: when `i_size` claims more, the damage is a problem and
    /// the data returned is shorter than `i_size`.
    fn inline_data(&self, inode: &Inode) -> Result<Vec<u8>> {
        let size = inode.i_size;
        let max = inode::I_BLOCK_LEN as u64 + u64::from(self.sb.s_inode_size) + self.block_size;
        if size > max {
            return Err(Error::corrupt(
                "ext inline data",
                inode.pos,
                format!(
                    "inode {}: inline size {size} is larger than an inode can hold",
                    inode.ino
                ),
            ));
        }
        let mut out = inode.i_block().to_vec();
        let mut value = None;
        if size > inode::I_BLOCK_LEN as u64 {
            value = xattr::system_data(self, inode)?;
            if let Some(more) = &value {
                out.extend_from_slice(more);
            }
        }
        if (out.len() as u64) < size {
            self.problem(Problem::at(
                format!("ext inline data of inode {}", inode.ino),
                inode.pos,
                format!(
                "i_size {size} but i_block and the system.data xattr hold only {} bytes ({}); the rest cannot be read",
                out.len(),
                match &value {
                    Some(v) => format!("its value is {} bytes", v.len()),
                    None => "the xattr is missing or damaged".to_string(),
                }
            )));
        }
        out.truncate(size as usize);
        Ok(out)
    }

    /// Read file bytes at `offset` of `inode` into `buf`, up to `i_size`.
    fn read_file(&self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = inode.i_size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = ((size - offset).min(buf.len() as u64)) as usize;
        let buf = &mut buf[..n];
        if inode.has_flag(inode::flags::INLINE_DATA) {
            let data = self.inline_data(inode)?;
            let start = offset as usize;
            let Some(held) = data.get(start..).filter(|d| !d.is_empty()) else {
                return Err(Error::corrupt(
                    "ext inline data",
                    inode.pos,
                    format!(
                        "inode {}: bytes from {offset} of its {size} are not held by the inode (damaged system.data xattr)",
                        inode.ino
                    ),
                ));
            };
            let n = n.min(held.len());
            buf[..n].copy_from_slice(&held[..n]);
            return Ok(n);
        }
        let bs = self.block_size;
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let lblk = pos / bs;
            let run = self.map_block(inode, lblk)?;
            let run_end = (run.lblk + run.len).saturating_mul(bs);
            let want = ((run_end - pos).min((n - done) as u64)).min(MAX_READ_RUN) as usize;
            let want = want.max(1).min(n - done);
            let out = &mut buf[done..done + want];
            match run.kind {
                RunKind::Hole | RunKind::Unwritten(_) => out.fill(0),
                RunKind::Data(p) => {
                    let phys = (p + (lblk - run.lblk)) * bs + pos % bs;
                    self.read_through(phys, out, "ext file data", false)?;
                }
            }
            done += want;
        }
        Ok(n)
    }

    /// The runs of `inode` (data and unwritten; holes are the gaps), in
    /// logical order, at most [`MAX_EXTENTS`] of them.
    pub fn runs(&self, inode: &Inode) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        self.for_each_run(inode, &mut |r| {
            out.push(r);
            Ok(out.len() < MAX_EXTENTS)
        })?;
        Ok(out)
    }
}

/// The error for an inode flagged both INLINE_DATA and EXTENTS, if it is.
fn conflicting_flags(inode: &Inode) -> Option<Error> {
    (inode.has_flag(inode::flags::INLINE_DATA) && inode.has_flag(inode::flags::EXTENTS)).then(|| {
        Error::corrupt(
            "ext inode",
            inode.pos + 0x20,
            format!(
                "inode {}: i_flags {:#x} has both INLINE_DATA and EXTENTS: its contents cannot be told apart",
                inode.ino, inode.i_flags
            ),
        )
    })
}

/// Read and check the superblock at byte `pos`.
fn read_superblock(src: &dyn ReadAt, pos: u64) -> Result<Superblock> {
    let len = superblock::SUPERBLOCK_SIZE as u64;
    let raw = crate::io::read_vec(src, pos, len, len)
        .map_err(|e| Error::io(format!("ext superblock at byte {pos}"), e))?;
    Superblock::parse(&raw, pos, src.size())
}

/// Where a valid backup superblock of group 1 is (its byte offset), for a
/// volume whose primary superblock is gone (the probe's fallback).
pub fn backup_superblock_pos(src: &dyn ReadAt) -> Option<u64> {
    find_backup(src).map(|sb| sb.pos)
}

/// A valid backup superblock in group 1, trying each block size with the
/// usual group size (as `e2fsck -b` would be told), and the larger groups
/// of bigalloc (8 × block size clusters of 2^k blocks each), where a
/// 1 KiB-block filesystem starts its groups at block 0.
fn find_backup(src: &dyn ReadAt) -> Option<Superblock> {
    (0..=6u32).find_map(|log| {
        let bs = 1024u64 << log;
        (0..=16u32).find_map(|ratio_log| {
            let per_group = (8 * bs) << ratio_log;
            let first_data_block = u64::from(bs == 1024 && ratio_log == 0);
            let pos = (per_group + first_data_block).checked_mul(bs)?;
            if pos >= src.size() {
                return None;
            }
            let sb = read_superblock(src, pos).ok()?;
            (sb.block_size() == bs && u64::from(sb.s_blocks_per_group) == per_group).then_some(sb)
        })
    })
}

/// `ext2`, `ext3` or `ext4`, told apart by features as blkid does.
fn fs_type_of(sb: &Superblock) -> &'static str {
    const EXT3_INCOMPAT: u32 = incompat::FILETYPE | incompat::RECOVER | incompat::META_BG;
    const EXT2_RO_COMPAT: u32 =
        ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE | ro_compat::BTREE_DIR;
    if sb.s_feature_incompat & !EXT3_INCOMPAT != 0 || sb.s_feature_ro_compat & !EXT2_RO_COMPAT != 0
    {
        "ext4"
    } else if sb.has_compat(compat::HAS_JOURNAL) {
        "ext3"
    } else {
        "ext2"
    }
}

/// Refuse what cannot be read, naming the feature; note what is read with limits.
fn check_features(sb: &Superblock, notes: &mut Vec<String>) -> Result<()> {
    if sb.has_incompat(incompat::JOURNAL_DEV) {
        return Err(Error::Unsupported(
            "this is an external ext3/ext4 journal device (journal_dev), not a filesystem".into(),
        ));
    }
    let refuse = [
        (
            incompat::COMPRESSION,
            "compression (an out-of-tree ext2 patch): compressed files cannot be read",
        ),
        (
            incompat::DIRDATA,
            "dirdata (Lustre): its directory entries carry data vmrescue cannot read",
        ),
    ];
    for (bit, why) in refuse {
        if sb.has_incompat(bit) {
            return Err(Error::Unsupported(format!("ext feature {why}")));
        }
    }
    let unknown = sb.s_feature_incompat & !KNOWN_INCOMPAT;
    if unknown != 0 {
        let names: Vec<String> = (0..32)
            .map(|i| 1u32 << i)
            .filter(|b| unknown & b != 0)
            .map(superblock::incompat_name)
            .collect();
        return Err(Error::Unsupported(format!(
            "ext incompatible feature(s) {}: the filesystem cannot be read safely",
            names.join(", ")
        )));
    }
    let unknown_ro = sb.s_feature_ro_compat & !KNOWN_RO_COMPAT;
    if unknown_ro != 0 {
        notes.push(format!(
            "unknown read-only-compatible features {unknown_ro:#x}: reading anyway (they do not change how files are read)"
        ));
    }
    if sb.has_incompat(incompat::ENCRYPT) {
        notes.push("encryption is enabled: encrypted files and directories cannot be read".into());
    }
    if sb.has_incompat(incompat::CASEFOLD) {
        notes.push(
            "casefold is enabled: names are matched exactly (case-sensitively) by vmrescue".into(),
        );
    }
    if sb.has_compat(compat::FAST_COMMIT) {
        notes.push("fast_commit is enabled: fast-commit blocks are not replayed".into());
    }
    Ok(())
}

impl FsView for Ext {
    fn status(&self) -> FsStatus {
        let problems = self.problems.list();
        FsStatus {
            fs_type: self.fs_type.to_string(),
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
        Some(space::space(self))
    }

    fn root(&self) -> NodeId {
        NodeId(u64::from(EXT4_ROOT_INO))
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
            ino: u64::from(inode.ino),
            file_type,
            perm: u32::from(inode.i_mode) & 0o7777,
            uid: inode.i_uid,
            gid: inode.i_gid,
            size: inode.i_size,
            nlink: u64::from(inode.i_links_count),
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            crtime: inode.crtime,
            rdev,
            allocated: Some(inode.allocated_bytes(self.block_size)),
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let inode = self.inode_of(dir, FileType::Directory, "not a directory")?;
        dir::list(self, &inode)
    }

    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        let inode = self.inode_of(dir, FileType::Directory, "not a directory")?;
        if name.is_empty() || name == b"." || name == b".." || name.len() > 255 {
            return Ok(None);
        }
        dir::lookup(self, &inode, name)
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
        let inode = self.live_inode(node)?;
        if inode.file_type() != FileType::Regular {
            return Err(Error::Invalid(format!(
                "inode {}: not a regular file",
                inode.ino
            )));
        }
        self.refuse_conflicting_flags(&inode)?;
        self.file_extents(&inode)
    }

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        let inode = self.live_inode(node)?;
        xattr::list(self, &inode)
    }

    fn prefetch(&self, nodes: &[NodeId], data: bool) {
        // Host ranges to read: (file, offset, length).
        let mut ranges: Vec<(Arc<std::fs::File>, u64, u64)> = Vec::new();
        let isz = u64::from(self.sb.s_inode_size);
        for node in nodes.iter().take(PREFETCH_MAX) {
            let Ok(ino) = u32::try_from(node.0) else {
                continue;
            };
            if data {
                // The inodes were read (by the walk that gave `nodes`): their
                // first run of data, for files small enough to be read whole.
                let Ok(inode) = self.read_inode(ino) else {
                    continue;
                };
                if inode.file_type() != FileType::Regular
                    || inode.i_size == 0
                    || inode.i_size > PREFETCH_FILE
                {
                    continue;
                }
                if let Some(h) = self.host_extent(*node, 0, inode.i_size) {
                    ranges.push((h.file, h.offset, h.len));
                }
            } else if let Ok(pos) = self.inode_position(ino)
                && let Some(h) = self.src.host_extent(pos, isz)
            {
                ranges.push((h.file, h.offset, h.len));
            }
        }
        advise_will_need(&mut ranges);
    }

    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        let inode = self.live_inode(node).ok()?;
        if inode.file_type() != FileType::Regular
            || inode.has_flag(inode::flags::INLINE_DATA)
            || inode.has_flag(inode::flags::ENCRYPT)
            || offset >= inode.i_size
            || len == 0
        {
            return None;
        }
        let bs = self.block_size;
        let lblk = offset / bs;
        let run = self.map_block(&inode, lblk).ok()?;
        let RunKind::Data(p) = run.kind else {
            return None;
        };
        let first = p + (lblk - run.lblk);
        let run_left = (run.lblk + run.len - lblk) * bs - offset % bs;
        let len = len.min(run_left).min(inode.i_size - offset);
        let blocks = (offset % bs + len).div_ceil(bs);
        if self.overlay_touches(first, blocks) {
            return None;
        }
        let host = self.src.host_extent(first * bs + offset % bs, len)?;
        Some(host)
    }
}

/// Most nodes one [`FsView::prefetch`] call looks at.
const PREFETCH_MAX: usize = 4096;
/// Largest file whose data [`FsView::prefetch`] asks for.
const PREFETCH_FILE: u64 = 1 << 20;
/// Ranges closer than this are asked for as one.
const PREFETCH_GAP: u64 = 64 << 10;

/// `posix_fadvise(WILLNEED)` for `ranges` of host files, sorted by offset
/// and merged where they are close: the kernel starts reading them, in
/// that order, without waiting.
fn advise_will_need(ranges: &mut [(Arc<std::fs::File>, u64, u64)]) {
    ranges.sort_by_key(|r| (Arc::as_ptr(&r.0) as usize, r.1));
    let mut at: Option<(&Arc<std::fs::File>, u64, u64)> = None;
    let flush = |r: Option<(&Arc<std::fs::File>, u64, u64)>| {
        if let Some((f, off, end)) = r {
            let _ = rustix::fs::fadvise(
                &**f,
                off,
                std::num::NonZeroU64::new(end.saturating_sub(off)),
                rustix::fs::Advice::WillNeed,
            );
        }
    };
    for (f, off, len) in ranges.iter() {
        let end = off.saturating_add(*len);
        match &mut at {
            Some((g, _, e)) if Arc::ptr_eq(g, f) && *off <= e.saturating_add(PREFETCH_GAP) => {
                *e = (*e).max(end);
            }
            _ => {
                flush(at.take());
                at = Some((f, *off, end));
            }
        }
    }
    flush(at);
}

impl Ext {
    /// Whether symlink `inode` keeps its target in `i_block` (a fast
    /// symlink), decided as the kernel's `ext4_inode_is_fast_symlink` does.
    /// Without ea_inode: no blocks besides an xattr block (one cluster). With
    /// ea_inode, xattr values kept in EA inodes are charged to the owner's
    /// `i_blocks`, so only the size can tell: under 60 bytes (and not empty).
    /// Inline-data symlinks are never fast.
    pub fn is_fast_symlink(&self, inode: &Inode) -> bool {
        if inode.has_flag(inode::flags::INLINE_DATA) {
            return false;
        }
        if self.sb.has_incompat(incompat::EA_INODE) {
            return inode.i_size > 0 && inode.i_size < inode::I_BLOCK_LEN as u64;
        }
        let ea_sectors = if inode.i_file_acl != 0 {
            (self.block_size
                << self
                    .sb
                    .s_log_cluster_size
                    .saturating_sub(self.sb.s_log_block_size)
                    .min(16))
                / 512
        } else {
            0
        };
        (inode.allocated_bytes(self.block_size) / 512).saturating_sub(ea_sectors) == 0
    }

    /// The target of a symlink inode.
    fn symlink_target(&self, inode: &Inode) -> Result<Vec<u8>> {
        let size = inode.i_size;
        if inode.has_flag(inode::flags::INLINE_DATA) {
            return self.inline_data(inode);
        }
        if self.is_fast_symlink(inode) {
            // A fast symlink: the target is in i_block (at most 59 bytes),
            // checked as the kernel's ext4_iget and e2fsck's check_symlink do.
            let t = inode.i_block();
            let len = t.iter().position(|&b| b == 0).unwrap_or(t.len());
            let contradicts =
                inode.has_flag(inode::flags::EXTENTS) || inode.has_flag(inode::flags::INDEX);
            if contradicts || size == 0 || size >= inode::I_BLOCK_LEN as u64 || len as u64 != size {
                return Err(self.damage(Error::corrupt(
                    "ext symlink",
                    inode.pos,
                    format!(
                        "inode {}: invalid fast symlink (i_size {size}, {len} bytes of target in i_block, i_flags {:#x}, no data blocks)",
                        inode.ino, inode.i_flags
                    ),
                )));
            }
            return Ok(t[..len].to_vec());
        }
        if size > self.block_size.min(4096) {
            return Err(Error::corrupt(
                "ext symlink",
                inode.pos,
                format!(
                    "inode {}: target of {size} bytes is longer than a block",
                    inode.ino
                ),
            ));
        }
        // A slow symlink's target is in its first data block (e2fsck's check_symlink).
        let invalid = |why: String| {
            self.damage(Error::corrupt(
                "ext symlink",
                inode.pos,
                format!("inode {}: invalid symlink ({why})", inode.ino),
            ))
        };
        if size == 0 || !matches!(self.map_block(inode, 0)?.kind, RunKind::Data(_)) {
            return Err(invalid(format!("i_size {size} and no data block")));
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.read_file(inode, 0, &mut buf)?;
        buf.truncate(n);
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            return Err(invalid(format!(
                "a NUL byte at {end} of its {size}-byte target"
            )));
        }
        Ok(buf)
    }

    /// The data ranges of a regular file, clipped to `i_size`, adjacent ranges merged.
    fn file_extents(&self, inode: &Inode) -> Result<Vec<FileExtent>> {
        let size = inode.i_size;
        if size == 0 {
            return Ok(Vec::new());
        }
        if inode.has_flag(inode::flags::INLINE_DATA) {
            return Ok(vec![FileExtent {
                offset: 0,
                len: size,
                unwritten: false,
            }]);
        }
        let bs = self.block_size;
        let mut out: Vec<FileExtent> = Vec::new();
        self.for_each_run(inode, &mut |run| {
            let start = run.lblk.saturating_mul(bs);
            if start >= size {
                return Ok(false);
            }
            let end = (run.lblk + run.len).saturating_mul(bs).min(size);
            let unwritten = matches!(run.kind, RunKind::Unwritten(_));
            if matches!(run.kind, RunKind::Hole) {
                return Ok(true);
            }
            let full = out.len() >= MAX_EXTENTS;
            if let Some(last) = out.last_mut() {
                if last.offset + last.len == start && (last.unwritten == unwritten || full) {
                    last.len = end - last.offset;
                    last.unwritten &= unwritten;
                    return Ok(true);
                }
                if full {
                    // Too fragmented to list: report the rest as one data range.
                    last.len = size - last.offset;
                    last.unwritten = false;
                    return Ok(false);
                }
            }
            out.push(FileExtent {
                offset: start,
                len: end - start,
                unwritten,
            });
            Ok(true)
        })?;
        Ok(out)
    }
}
