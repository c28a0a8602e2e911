//! NTFS, read in userspace the way ntfs-3g shows a volume with its default
//! options (no `permissions`, no `ignore_case`, no `show_sys_files`): every
//! file and directory `rwxrwxrwx` owned by root, names case-sensitive,
//! DOS (8.3-only) names and the system files (MFT records below 16) hidden,
//! a file with several names (hard links) one node whose number is its MFT
//! record number, mtime/atime/ctime/crtime from `$STANDARD_INFORMATION`
//! (ctime is the MFT change time).
//!
//! MFT records (with their fixups), attribute lists and data runs are
//! parsed by the `ntfs` crate (MIT OR Apache-2.0); on top of it this module
//! walks directory indexes itself ([`index`]: `$INDEX_ROOT` and the INDX
//! blocks of `$INDEX_ALLOCATION`, each block at most once, so a loop is an
//! error) and reads file data itself: resident data, non-resident runs with
//! sparse holes (left out of [`FsView::extents`]), and LZNT1
//! compressed files ([`lznt1`]). Symbolic links and junctions (reparse
//! points, and WSL-style links) are symlinks with their target as ntfs-3g
//! shows it; other reparse points are regular files and a note says so.
//! Named data streams are extended attributes `user.NAME`, as ntfs-3g's
//! `streams_interface=xattr` shows them.
//!
//! A non-resident stream's bytes past its initialized size (the valid data
//! length) read as zeros, as Windows and ntfs-3g read them, whatever its
//! clusters hold; [`FsView::extents`] marks them unwritten.
//!
//! A stream whose runs an attribute list splits over several MFT records
//! (a fragmented or compressed file) is one stream of all its extents in
//! VCN order; the extent at VCN 0 carries its size and initialized size.
//!
//! Not read: encrypted (EFS) files (an error names them), security
//! descriptors and NTFS extended attributes (`$EA`), the `$LogFile` (never
//! replayed: a dirty volume gets a note). A BitLocker volume is refused.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

pub mod boot;
pub mod index;
pub mod lznt1;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use ntfs::structured_values::{
    NtfsFileAttributeFlags, NtfsFileName, NtfsFileNamespace, NtfsStandardInformation,
    NtfsVolumeFlags,
};
use ntfs::{Ntfs, NtfsAttributeFlags, NtfsAttributeType, NtfsFile, NtfsFileFlags};

use crate::error::{Error, Result};
use crate::fs::problems::ProblemLog;
use crate::fs::{
    DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Space, Timestamp, Xattr,
};
use crate::io::{HostExtent, ReadAt};
use boot::Boot;

/// `$Bitmap`'s MFT record: one bit per cluster, set when in use.
const BITMAP_RECORD: u64 = 6;
/// The root directory's MFT record.
const ROOT_RECORD: u64 = 5;
/// Records below this are NTFS's own files, hidden as ntfs-3g hides them.
const FIRST_USER: u64 = 16;
/// Attributes looked at in one file.
const MAX_ATTRS: usize = 4096;
/// Data runs of one stream.
const MAX_RUNS: usize = 1 << 20;
/// Entries of one directory.
const MAX_ENTRIES: usize = 4 << 20;
/// Largest reparse point data (the format's limit is 16 KiB).
const MAX_REPARSE: u64 = 16 << 10;
/// Largest named stream shown as an extended attribute (Linux's xattr limit).
const MAX_XATTR: u64 = 64 << 10;
/// Nodes and listings kept.
const MAX_CACHE: usize = 8192;
/// Compression unit in clusters (NTFS always uses 2^4).
const UNIT_CLUSTERS: u64 = 16;

/// Reparse tags.
const TAG_SYMLINK: u32 = 0xA000_000C;
const TAG_JUNCTION: u32 = 0xA000_0003;
const TAG_LX_SYMLINK: u32 = 0xA000_001D;

/// Bytes of one block the `ntfs` crate's reads are served from.
const BLOCK: u64 = 256 << 10;
/// Blocks kept (8 MiB): the MFT records of a directory's files, read in
/// large pieces in the order they lie on disk, not one record at a time.
const BLOCKS: usize = 32;

/// A `Read + Seek` view of a [`ReadAt`] for the `ntfs` crate. `redirect`
/// sends reads of the first MFT records to `$MFTMirr` when `$MFT` is damaged there.
/// The crate reads MFT records (and `$MFT`'s own record 0 for every other
/// one) in small pieces: they come from `blocks`, [`BLOCK`]-aligned pieces
/// of the volume, the most recently used last.
struct Cursor {
    src: Arc<dyn ReadAt>,
    pos: u64,
    redirect: Option<(u64, u64, u64)>,
    blocks: Vec<(u64, Vec<u8>)>,
}

impl Cursor {
    fn new(src: Arc<dyn ReadAt>) -> Cursor {
        Cursor {
            src,
            pos: 0,
            redirect: None,
            blocks: Vec::new(),
        }
    }

    /// Fill `buf` from volume byte `at`, through the blocks (a read of a
    /// block's size or more goes straight to the source).
    fn fill(&mut self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if buf.len() as u64 >= BLOCK {
            return self.src.read_exact_at(at, buf);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = at.saturating_add(done as u64);
            let start = pos.saturating_sub(pos % BLOCK);
            let i = match self.blocks.iter().position(|b| b.0 == start) {
                Some(i) => i,
                None => {
                    let len = BLOCK.min(self.src.size().saturating_sub(start));
                    let mut b = vec![0u8; usize::try_from(len).unwrap_or(0)];
                    if self.src.read_exact_at(start, &mut b).is_err() {
                        // An unreadable byte elsewhere in the block: read
                        // only what was asked.
                        return self
                            .src
                            .read_exact_at(pos, buf.get_mut(done..).unwrap_or_default());
                    }
                    if self.blocks.len() >= BLOCKS {
                        self.blocks.remove(0);
                    }
                    self.blocks.push((start, b));
                    self.blocks.len().saturating_sub(1)
                }
            };
            // Most recently used last.
            let block = self.blocks.remove(i);
            let from = usize::try_from(pos.saturating_sub(start)).unwrap_or(usize::MAX);
            let have = block.1.get(from..).unwrap_or(&[]);
            let dst = buf.get_mut(done..).unwrap_or_default();
            let n = have.len().min(dst.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..n), have.get(..n)) {
                d.copy_from_slice(s);
            }
            self.blocks.push(block);
            if n == 0 {
                return Err(crate::io::past_end(
                    pos,
                    buf.len().saturating_sub(done),
                    self.src.size(),
                ));
            }
            done = done.saturating_add(n);
        }
        Ok(())
    }
}

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.src.size();
        let left = size.saturating_sub(self.pos);
        let mut n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let mut at = self.pos;
        if let Some((from, to, len)) = self.redirect {
            let end = from.saturating_add(len);
            if at >= from && at < end {
                n = n.min(usize::try_from(end.saturating_sub(at)).unwrap_or(usize::MAX));
                at = to.saturating_add(at.saturating_sub(from));
            } else if at < from {
                n = n.min(usize::try_from(from.saturating_sub(at)).unwrap_or(usize::MAX));
            }
        }
        let Some(part) = buf.get_mut(..n) else {
            return Ok(0);
        };
        self.fill(at, part)?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

impl Seek for Cursor {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.src.size().checked_add_signed(d),
        };
        let new = new.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        self.pos = new;
        Ok(new)
    }
}

/// A run of a non-resident stream: `len` bytes at stream offset `off`, at volume byte `disk` (`None`: a hole).
#[derive(Debug, Clone, Copy)]
struct Run {
    off: u64,
    len: u64,
    disk: Option<u64>,
}

/// One extent of a stream an attribute list splits: its first stream
/// byte, its runs (from 0), and at VCN 0 the stream's size and initialized size.
type Extent = (u64, Vec<Run>, Option<(u64, u64)>);

/// Where a stream's bytes are.
#[derive(Debug, Clone)]
enum Stream {
    /// In the MFT record.
    Resident(Vec<u8>),
    /// In clusters; bytes from `initialized` (the valid data length, at
    /// most `size`) read as zeros.
    Runs {
        size: u64,
        initialized: u64,
        runs: Vec<Run>,
        compressed: bool,
    },
}

impl Stream {
    fn size(&self) -> u64 {
        match self {
            Stream::Resident(v) => v.len() as u64,
            Stream::Runs { size, .. } => *size,
        }
    }
}

/// What one MFT record says about a file.
#[derive(Debug, Clone)]
struct Node {
    record: u64,
    dir: bool,
    attrs: u32,
    mtime: Timestamp,
    atime: Timestamp,
    ctime: Timestamp,
    crtime: Timestamp,
    /// Names that are not DOS-only.
    links: u64,
    data: Option<Stream>,
    streams: Vec<(Vec<u8>, Stream)>,
    link: Option<Vec<u8>>,
}

/// An NTFS volume.
pub struct NtfsVolume {
    src: Arc<dyn ReadAt>,
    ntfs: Ntfs,
    boot: Boot,
    cursor: Mutex<Cursor>,
    label: Option<String>,
    notes: Mutex<Vec<String>>,
    problems: ProblemLog,
    nodes: Mutex<HashMap<u64, Arc<Node>>>,
    listings: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    space: Mutex<Option<Space>>,
    /// `$MFT`'s own runs, to find where records lie (for prefetching).
    mft_runs: Vec<Run>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Windows FILETIME (100 ns since 1601) to Unix time.
fn nt_time(t: u64) -> Timestamp {
    const EPOCH_DIFF: i128 = 116_444_736_000_000_000;
    let rel = i128::from(t).saturating_sub(EPOCH_DIFF);
    let sec = rel.div_euclid(10_000_000);
    let frac = rel.rem_euclid(10_000_000);
    Timestamp {
        sec: i64::try_from(sec).unwrap_or(0),
        nsec: u32::try_from(frac.saturating_mul(100)).unwrap_or(0),
    }
}

/// UTF-16LE bytes to UTF-8 (unpaired surrogates become U+FFFD).
fn utf16(bytes: &[u8]) -> Vec<u8> {
    let units = bytes.chunks_exact(2).map(|c| {
        u16::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
    });
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect::<String>()
        .into_bytes()
}

fn crate_err(what: &str, record: u64, e: impl std::fmt::Display) -> Error {
    Error::corrupt(
        format!("NTFS MFT record {record}"),
        0,
        format!("{what}: {e}"),
    )
}

/// Run `f`, turning a panic inside the `ntfs` crate into an error naming the record.
fn guarded<T>(what: &str, record: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(crate_err(
            what,
            record,
            "the NTFS parser failed on damaged data",
        )),
    }
}

impl NtfsVolume {
    /// Open the NTFS volume in `src`.
    pub fn open(src: Arc<dyn ReadAt>) -> Result<NtfsVolume> {
        let mut sector = [0u8; 512];
        src.read_exact_at(0, &mut sector)
            .map_err(|e| Error::corrupt("NTFS boot sector", 0, format!("cannot read: {e}")))?;
        let boot = Boot::parse(&sector, src.size())?;
        let mut notes = Vec::new();
        let mut cursor = Cursor::new(src.clone());
        // The crate reads $MFT's own record (0) to find every other record.
        let first = guarded("$MFT", 0, || {
            let n = Ntfs::new(&mut cursor).map_err(|e| crate_err("$MFT", 0, e))?;
            n.file(&mut cursor, 0)
                .map_err(|e| crate_err("$MFT", 0, e))?;
            Ok(n)
        });
        let ntfs = match first {
            Ok(n) => n,
            Err(e) => {
                // $MFTMirr holds copies of the first four records.
                let len = u64::from(boot.record_size).saturating_mul(4);
                cursor.redirect = Some((boot.mft_offset, boot.mirr_offset, len));
                cursor.pos = 0;
                let n = guarded("$MFTMirr", 1, || {
                    let n = Ntfs::new(&mut cursor).map_err(|e| crate_err("$MFTMirr", 1, e))?;
                    n.file(&mut cursor, 0)
                        .map_err(|e| crate_err("$MFTMirr", 1, e))?;
                    Ok(n)
                })
                .map_err(|_| e)?;
                notes.push(format!(
                    "the first records of $MFT at byte {} are damaged: records 0-3 are read from $MFTMirr at byte {}",
                    boot.mft_offset, boot.mirr_offset
                ));
                n
            }
        };
        let mut fs = NtfsVolume {
            src,
            ntfs,
            boot,
            cursor: Mutex::new(cursor),
            label: None,
            notes: Mutex::new(notes),
            problems: ProblemLog::default(),
            nodes: Mutex::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            space: Mutex::new(None),
            mft_runs: Vec::new(),
        };
        if let Ok(n) = fs.node(0)
            && let Some(Stream::Runs { runs, .. }) = &n.data
        {
            fs.mft_runs = runs.clone();
        }
        fs.volume_facts();
        // The root must be a directory whose index reads.
        let root = fs.node(ROOT_RECORD)?;
        if !root.dir {
            return Err(crate_err("root directory", ROOT_RECORD, "not a directory"));
        }
        if let Err(e) = fs.listing(ROOT_RECORD) {
            fs.problems.record(e.to_string());
        } else {
            fs.hibernation();
        }
        Ok(fs)
    }

    /// Label and the dirty flag from `$Volume`.
    fn volume_facts(&mut self) {
        let mut cur = lock(&self.cursor);
        let ntfs = &self.ntfs;
        let r = guarded("$Volume", 3, || {
            let label = match ntfs.volume_name(&mut *cur) {
                Some(Ok(n)) => Some(String::from_utf8_lossy(&utf16(n.name().0)).into_owned()),
                Some(Err(e)) => return Err(crate_err("$VOLUME_NAME", 3, e)),
                None => None,
            };
            let info = ntfs
                .volume_info(&mut *cur)
                .map_err(|e| crate_err("$VOLUME_INFORMATION", 3, e))?;
            Ok((
                label,
                info.flags(),
                info.major_version(),
                info.minor_version(),
            ))
        });
        drop(cur);
        match r {
            Ok((label, flags, major, minor)) => {
                self.label = label.filter(|l| !l.is_empty());
                if flags.contains(NtfsVolumeFlags::IS_DIRTY) {
                    lock(&self.notes).push(
                        "the volume is marked dirty (not cleanly unmounted, or chkdsk is due): $LogFile is not replayed, recent changes may be missing".into(),
                    );
                }
                if major < 3 {
                    lock(&self.notes).push(format!(
                        "NTFS version {major}.{minor} (before Windows 2000)"
                    ));
                }
            }
            Err(e) => self.problems.record(e.to_string()),
        }
    }

    /// A note when `hiberfil.sys` says Windows is hibernated on this volume.
    fn hibernation(&self) {
        let Ok(Some(node)) = self.lookup(NodeId(ROOT_RECORD), b"hiberfil.sys") else {
            return;
        };
        let mut head = [0u8; 4];
        if let Ok(4) = self.read_at(node, 0, &mut head)
            && head.eq_ignore_ascii_case(b"hibr")
        {
            lock(&self.notes).push(
                "Windows is hibernated on this volume (hiberfil.sys starts with \"hibr\"): files changed since may be in the hibernation image only".into(),
            );
        }
    }

    /// The parsed MFT record `record`, cached.
    fn node(&self, record: u64) -> Result<Arc<Node>> {
        if let Some(n) = lock(&self.nodes).get(&record) {
            return Ok(n.clone());
        }
        let node = Arc::new(guarded("file", record, || self.parse_node(record))?);
        let mut nodes = lock(&self.nodes);
        if nodes.len() >= MAX_CACHE {
            nodes.clear();
        }
        nodes.insert(record, node.clone());
        Ok(node)
    }

    fn file<'n>(&'n self, cur: &mut Cursor, record: u64) -> Result<NtfsFile<'n>> {
        let file = self
            .ntfs
            .file(cur, record)
            .map_err(|e| crate_err("file record", record, e))?;
        if !file.flags().contains(NtfsFileFlags::IN_USE) {
            return Err(crate_err(
                "file record",
                record,
                "not in use (a deleted file)",
            ));
        }
        Ok(file)
    }

    fn parse_node(&self, record: u64) -> Result<Node> {
        let mut cur = lock(&self.cursor);
        let cur = &mut *cur;
        let file = self.file(cur, record)?;
        let err = |what: &str, e: ntfs::NtfsError| crate_err(what, record, e);
        let mut node = Node {
            record,
            dir: file.is_directory(),
            attrs: 0,
            mtime: Timestamp::default(),
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            crtime: Timestamp::default(),
            links: 0,
            data: None,
            streams: Vec::new(),
            link: None,
        };
        let mut reparse = None;
        let mut attrs = file.attributes();
        let mut seen = 0usize;
        while let Some(item) = attrs.next(cur) {
            seen = seen.saturating_add(1);
            if seen > MAX_ATTRS {
                return Err(crate_err(
                    "attributes",
                    record,
                    format!("more than {MAX_ATTRS}"),
                ));
            }
            let item = item.map_err(|e| err("attribute", e))?;
            let a = item.to_attribute().map_err(|e| err("attribute", e))?;
            let ty = match a.ty() {
                Ok(t) => t,
                Err(_) => continue,
            };
            match ty {
                NtfsAttributeType::StandardInformation => {
                    let si = a
                        .resident_structured_value::<NtfsStandardInformation>()
                        .map_err(|e| err("$STANDARD_INFORMATION", e))?;
                    node.attrs = si.file_attributes().bits();
                    node.mtime = nt_time(si.modification_time().nt_timestamp());
                    node.atime = nt_time(si.access_time().nt_timestamp());
                    node.ctime = nt_time(si.mft_record_modification_time().nt_timestamp());
                    node.crtime = nt_time(si.creation_time().nt_timestamp());
                }
                NtfsAttributeType::FileName => {
                    let n = a
                        .structured_value::<_, NtfsFileName>(cur)
                        .map_err(|e| err("$FILE_NAME", e))?;
                    if n.namespace() != NtfsFileNamespace::Dos {
                        node.links = node.links.saturating_add(1);
                    }
                }
                NtfsAttributeType::Data => {
                    let name = a.name().map_err(|e| err("$DATA name", e))?;
                    let name = utf16(name.0);
                    // The further extents of a stream an attribute list
                    // splits: the first one read them all.
                    let known = if name.is_empty() {
                        node.data.is_some()
                    } else {
                        node.streams.iter().any(|(n, _)| *n == name)
                    };
                    if known {
                        continue;
                    }
                    let stream = self.stream(cur, &file, &a, &name)?;
                    if name.is_empty() {
                        node.data = Some(stream);
                    } else {
                        node.streams.push((name, stream));
                    }
                }
                NtfsAttributeType::ReparsePoint => {
                    let stream = self.stream(cur, &file, &a, b"")?;
                    if stream.size() <= MAX_REPARSE {
                        reparse = Some(stream);
                    }
                }
                _ => {}
            }
        }
        drop(file);
        if let Some(r) = reparse {
            let bytes = self.read_stream(record, &r, 0, MAX_REPARSE)?;
            node.link = self.reparse_target(record, &bytes);
        } else if node.attrs & NtfsFileAttributeFlags::SYSTEM.bits() != 0
            && let Some(d) = &node.data
            && d.size() > 8
            && d.size() < 8 + 8192
        {
            // An Interix (Services for Unix) symlink: "IntxLNK\1" and a UTF-16 target.
            let bytes = self.read_stream(record, d, 0, 8192)?;
            if let Some(t) = bytes.strip_prefix(b"IntxLNK\x01") {
                node.link = Some(utf16(t));
            }
        }
        Ok(node)
    }

    /// What a symlink, junction or WSL link points at, as ntfs-3g shows it; other tags get a note.
    fn reparse_target(&self, record: u64, b: &[u8]) -> Option<Vec<u8>> {
        let u16_at = |o: usize| {
            b.get(o..o.checked_add(2)?)
                .and_then(|s| s.try_into().ok())
                .map(u16::from_le_bytes)
        };
        let tag = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
        let (buf_start, relative) = match tag {
            TAG_SYMLINK => (20usize, b.get(16).is_some_and(|f| f & 1 == 1)),
            TAG_JUNCTION => (16usize, false),
            TAG_LX_SYMLINK => return b.get(12..).map(|t| t.to_vec()),
            _ => {
                let mut notes = lock(&self.notes);
                let note = format!(
                    "reparse points with tag {tag:#010x} (first: MFT record {record}) are shown as regular files with their $DATA"
                );
                let key = format!("{tag:#010x}");
                if notes.len() < 64 && !notes.iter().any(|n| n.contains(&key)) {
                    notes.push(note);
                }
                return None;
            }
        };
        let off = usize::from(u16_at(8)?);
        let len = usize::from(u16_at(10)?);
        let start = buf_start.checked_add(off)?;
        let name = b.get(start..start.checked_add(len)?)?;
        let mut t = utf16(name);
        if relative {
            for c in t.iter_mut() {
                if *c == b'\\' {
                    *c = b'/';
                }
            }
            return Some(t);
        }
        // An absolute target: "\??\C:\dir\file" is shown as "/dir/file" on the
        // same volume, as a path of the guest (ntfs-3g makes it relative to the mount point).
        let s = String::from_utf8_lossy(&t).into_owned();
        let s = s.strip_prefix("\\??\\").unwrap_or(&s);
        let bytes = s.as_bytes();
        let rest = if bytes.len() >= 2 && bytes.get(1) == Some(&b':') {
            bytes.get(2..).unwrap_or(b"")
        } else {
            bytes
        };
        t = rest
            .iter()
            .map(|&c| if c == b'\\' { b'/' } else { c })
            .collect();
        Some(t)
    }

    /// Where the value of attribute `a` of `file` lives.
    fn stream(
        &self,
        cur: &mut Cursor,
        file: &NtfsFile<'_>,
        a: &ntfs::NtfsAttribute<'_, '_>,
        name: &[u8],
    ) -> Result<Stream> {
        let record = file.file_record_number();
        let compressed = a.flags().contains(NtfsAttributeFlags::COMPRESSED);
        if a.flags().contains(NtfsAttributeFlags::ENCRYPTED) {
            return Err(Error::Unsupported(format!(
                "NTFS MFT record {record}: the data is encrypted (EFS)"
            )));
        }
        let value = a
            .value(cur)
            .map_err(|e| crate_err("attribute value", record, e))?;
        Ok(match value {
            ntfs::attribute_value::NtfsAttributeValue::Resident(v) => {
                Stream::Resident(v.data().to_vec())
            }
            ntfs::attribute_value::NtfsAttributeValue::NonResident(v) => {
                if let Some(s) = self.split_stream(cur, file, a, name, compressed)? {
                    return Ok(s);
                }
                let mut runs = Vec::new();
                self.push_runs(record, &v, 0, &mut runs)?;
                let size = v.len();
                Stream::Runs {
                    size,
                    initialized: self.initialized_size(cur, file, a)?.min(size),
                    runs,
                    compressed,
                }
            }
            ntfs::attribute_value::NtfsAttributeValue::AttributeListNonResident(_) => self
                .split_stream(cur, file, a, name, compressed)?
                .ok_or_else(|| {
                    crate_err(
                        "$ATTRIBUTE_LIST",
                        record,
                        format!(
                            "no entry for the {} attribute named {:?}",
                            a.ty().map_or("?".into(), |t| format!("{t:?}")),
                            String::from_utf8_lossy(name)
                        ),
                    )
                })?,
        })
    }

    /// The runs of non-resident value `v` of MFT record `record`, appended
    /// to `runs` from stream offset `start`; returns the offset past them.
    fn push_runs(
        &self,
        record: u64,
        v: &ntfs::attribute_value::NtfsNonResidentAttributeValue<'_, '_>,
        start: u64,
        runs: &mut Vec<Run>,
    ) -> Result<u64> {
        let mut off = start;
        for r in v.data_runs() {
            if runs.len() >= MAX_RUNS {
                return Err(crate_err(
                    "data runs",
                    record,
                    format!("more than {MAX_RUNS}"),
                ));
            }
            let r = r.map_err(|e| crate_err("data run", record, e))?;
            let len = r.allocated_size();
            let disk = r.data_position().value().map(|p| p.get());
            if let Some(d) = disk
                && d.checked_add(len).is_none_or(|e| e > self.src.size())
            {
                return Err(crate_err(
                    "data run",
                    record,
                    format!(
                        "clusters at byte {d} ({len} bytes) past the end of the volume ({} bytes)",
                        self.src.size()
                    ),
                ));
            }
            runs.push(Run { off, len, disk });
            off = off
                .checked_add(len)
                .ok_or_else(|| crate_err("data runs", record, "lengths overflow"))?;
        }
        Ok(off)
    }

    /// A non-resident attribute of `file` whose runs an attribute list
    /// splits over several MFT records (extents, each with the runs from
    /// its lowest VCN): every extent of the attribute's type and `name`,
    /// in VCN order, as one stream. The extent at VCN 0 carries the sizes
    /// (size and initialized size), as Windows and ntfs-3g read them.
    /// `None` when the file has no attribute list, or the list does not
    /// name the attribute (then the attribute alone is the stream).
    fn split_stream(
        &self,
        cur: &mut Cursor,
        file: &NtfsFile<'_>,
        a: &ntfs::NtfsAttribute<'_, '_>,
        name: &[u8],
        compressed: bool,
    ) -> Result<Option<Stream>> {
        let record = file.file_record_number();
        let err = |what: &str, e: ntfs::NtfsError| crate_err(what, record, e);
        let ty = a.ty().map_err(|e| err("attribute type", e))?;
        let mut list = None;
        for (i, raw) in file.attributes_raw().enumerate() {
            if i >= MAX_ATTRS {
                break;
            }
            let raw = raw.map_err(|e| err("attribute", e))?;
            if raw
                .ty()
                .is_ok_and(|t| t == NtfsAttributeType::AttributeList)
            {
                list = Some(
                    raw.structured_value::<_, ntfs::structured_values::NtfsAttributeList>(cur)
                        .map_err(|e| err("$ATTRIBUTE_LIST", e))?,
                );
                break;
            }
        }
        let Some(list) = list else { return Ok(None) };
        let cluster = u64::from(self.boot.cluster_size);
        let mut extents: Vec<Extent> = Vec::new();
        let mut entries = list.entries();
        let mut seen = 0usize;
        while let Some(e) = entries.next(cur) {
            seen = seen.saturating_add(1);
            if seen > MAX_ATTRS {
                return Err(crate_err(
                    "$ATTRIBUTE_LIST",
                    record,
                    format!("more than {MAX_ATTRS} entries"),
                ));
            }
            let e = e.map_err(|e| err("$ATTRIBUTE_LIST entry", e))?;
            if e.ty().ok() != Some(ty) || utf16(e.name().0) != name {
                continue;
            }
            let at = e.position().value().map_or(0, |p| p.get());
            let vcn = u64::try_from(e.lowest_vcn().value()).map_err(|_| {
                Error::corrupt(
                    format!("NTFS MFT record {record} $ATTRIBUTE_LIST entry"),
                    at,
                    "negative lowest VCN",
                )
            })?;
            let start = vcn.checked_mul(cluster).ok_or_else(|| {
                Error::corrupt(
                    format!("NTFS MFT record {record} $ATTRIBUTE_LIST entry"),
                    at,
                    format!("lowest VCN {vcn} past any volume"),
                )
            })?;
            let ext = e
                .to_file(&self.ntfs, cur)
                .map_err(|e| err("extension record", e))?;
            let ea = e
                .to_attribute(&ext)
                .map_err(|e| err("extension record attribute", e))?;
            let ntfs::attribute_value::NtfsAttributeValue::NonResident(v) =
                ea.value(cur).map_err(|e| err("extent", e))?
            else {
                // A resident attribute is never split.
                return Ok(None);
            };
            let mut runs = Vec::new();
            self.push_runs(ext.file_record_number(), &v, 0, &mut runs)?;
            let sizes = if vcn == 0 {
                Some((v.len(), self.initialized_size(cur, &ext, &ea)?))
            } else {
                None
            };
            extents.push((start, runs, sizes));
        }
        if extents.is_empty() {
            return Ok(None);
        }
        extents.sort_by_key(|e| e.0);
        let (size, initialized) = extents
            .iter()
            .find_map(|e| e.2)
            .ok_or_else(|| crate_err("$ATTRIBUTE_LIST", record, "no extent at VCN 0"))?;
        let mut runs: Vec<Run> = Vec::new();
        let mut off = 0u64;
        for (start, part, _) in extents {
            if start < off {
                return Err(crate_err(
                    "$ATTRIBUTE_LIST",
                    record,
                    format!("extents overlap at stream byte {start}"),
                ));
            }
            if start > off {
                // A gap between extents reads as a hole.
                runs.push(Run {
                    off,
                    len: start.saturating_sub(off),
                    disk: None,
                });
            }
            off = start;
            for r in part {
                if runs.len() >= MAX_RUNS {
                    return Err(crate_err(
                        "data runs",
                        record,
                        format!("more than {MAX_RUNS}"),
                    ));
                }
                runs.push(Run { off, ..r });
                off = off
                    .checked_add(r.len)
                    .ok_or_else(|| crate_err("data runs", record, "lengths overflow"))?;
            }
        }
        Ok(Some(Stream::Runs {
            size,
            initialized: initialized.min(size),
            runs,
            compressed,
        }))
    }

    /// The initialized size (valid data length) in the header of
    /// non-resident attribute `a`: read from its MFT record on disk with the
    /// record's update sequence applied, since the `ntfs` crate does not
    /// give it.
    fn initialized_size(
        &self,
        cur: &mut Cursor,
        file: &NtfsFile<'_>,
        a: &ntfs::NtfsAttribute<'_, '_>,
    ) -> Result<u64> {
        /// Its place in a non-resident attribute header.
        const AT: u64 = 0x38;
        let record = file.file_record_number();
        let size = u64::from(self.ntfs.file_record_size());
        let pos = a.position().value().map_or(0, |p| p.get());
        // In `file`'s own record, else (an attribute list's extension
        // record) in the record-aligned one holding it.
        let base = file.position().value().map_or(0, |p| p.get());
        let start = if pos >= base && pos.saturating_sub(base) < size {
            base
        } else {
            pos.checked_rem(size).map_or(pos, |r| pos.saturating_sub(r))
        };
        let mut rec = vec![0u8; usize::try_from(size).unwrap_or(0)];
        cur.seek(SeekFrom::Start(start))
            .and_then(|_| cur.read_exact(&mut rec))
            .map_err(|e| {
                Error::corrupt(
                    format!("NTFS MFT record {record}"),
                    start,
                    format!("cannot read: {e}"),
                )
            })?;
        index::fixup(&mut rec, "MFT record").map_err(|e| {
            Error::corrupt(
                format!("NTFS MFT record {record}"),
                start.saturating_add(e.at),
                e.detail,
            )
        })?;
        let at = pos.saturating_sub(start).saturating_add(AT);
        usize::try_from(at)
            .ok()
            .and_then(|at| crate::io::le::u64(&rec, at))
            .ok_or_else(|| {
                Error::corrupt(
                    format!("NTFS MFT record {record} $DATA header"),
                    start.saturating_add(at),
                    "the initialized size lies past the record",
                )
            })
    }

    /// Read up to `cap` bytes of `s` from `offset`.
    fn read_stream(&self, record: u64, s: &Stream, offset: u64, cap: u64) -> Result<Vec<u8>> {
        let len = s.size().saturating_sub(offset).min(cap);
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        let n = self.read_into(record, s, offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Fill `buf` from `offset` of `s`; returns bytes read (short at the end).
    fn read_into(&self, record: u64, s: &Stream, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = s.size();
        if offset >= size {
            return Ok(0);
        }
        let want = usize::try_from(size.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        match s {
            Stream::Resident(v) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let src = v.get(start..start.saturating_add(want)).unwrap_or(&[]);
                let n = src.len().min(buf.len());
                if let (Some(d), Some(s)) = (buf.get_mut(..n), src.get(..n)) {
                    d.copy_from_slice(s);
                }
                Ok(n)
            }
            Stream::Runs {
                runs,
                compressed,
                initialized,
                ..
            } => {
                // Past the valid data length: zeros, not what the clusters hold.
                let valid = usize::try_from(initialized.saturating_sub(offset))
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let (data, zeros) = buf.split_at_mut(valid);
                if *compressed {
                    self.read_compressed(record, runs, offset, data)?;
                } else {
                    self.read_runs(record, runs, offset, data)?;
                }
                zeros.fill(0);
                Ok(want)
            }
        }
    }

    /// Plain runs: copy from the clusters, zeros in holes and past the runs.
    fn read_runs(&self, record: u64, runs: &[Run], offset: u64, buf: &mut [u8]) -> Result<()> {
        buf.fill(0);
        let end = offset.saturating_add(buf.len() as u64);
        let first = runs.partition_point(|r| r.off.saturating_add(r.len) <= offset);
        for r in runs.get(first..).unwrap_or(&[]) {
            if r.off >= end {
                break;
            }
            let Some(disk) = r.disk else { continue };
            let from = offset.max(r.off);
            let to = end.min(r.off.saturating_add(r.len));
            let (Ok(b0), Ok(b1)) = (
                usize::try_from(from.saturating_sub(offset)),
                usize::try_from(to.saturating_sub(offset)),
            ) else {
                continue;
            };
            let Some(dst) = buf.get_mut(b0..b1) else {
                continue;
            };
            let at = disk.saturating_add(from.saturating_sub(r.off));
            self.src.read_exact_at(at, dst).map_err(|e| {
                Error::corrupt(
                    format!("NTFS MFT record {record} data"),
                    at,
                    format!("cannot read: {e}"),
                )
            })?;
        }
        Ok(())
    }

    /// Compressed runs: each unit of 16 clusters is stored plainly (all
    /// allocated), is a hole (none allocated) or holds LZNT1 chunks.
    fn read_compressed(
        &self,
        record: u64,
        runs: &[Run],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let unit = u64::from(self.boot.cluster_size).saturating_mul(UNIT_CLUSTERS);
        let end = offset.saturating_add(buf.len() as u64);
        let mut u = offset.checked_div(unit).unwrap_or(0).saturating_mul(unit);
        while u < end {
            let Ok(ulen) = usize::try_from(unit) else {
                break;
            };
            // The unit's allocated bytes, in order, and whether any of it is a hole.
            let mut stored = vec![0u8; ulen];
            let mut held = 0usize;
            let mut hole = false;
            let first = runs.partition_point(|r| r.off.saturating_add(r.len) <= u);
            for r in runs.get(first..).unwrap_or(&[]) {
                if r.off >= u.saturating_add(unit) {
                    break;
                }
                let from = u.max(r.off);
                let to = u.saturating_add(unit).min(r.off.saturating_add(r.len));
                let n = usize::try_from(to.saturating_sub(from)).unwrap_or(0);
                match r.disk {
                    None => hole = true,
                    Some(disk) => {
                        let Some(dst) = stored.get_mut(held..held.saturating_add(n)) else {
                            break;
                        };
                        let at = disk.saturating_add(from.saturating_sub(r.off));
                        self.src.read_exact_at(at, dst).map_err(|e| {
                            Error::corrupt(
                                format!("NTFS MFT record {record} data"),
                                at,
                                format!("cannot read: {e}"),
                            )
                        })?;
                        held = held.saturating_add(n);
                    }
                }
            }
            let plain = if held == 0 {
                vec![0u8; ulen]
            } else if !hole && held == ulen {
                stored
            } else {
                let mut d =
                    lznt1::decompress(stored.get(..held).unwrap_or(&[]), ulen).map_err(|e| {
                        Error::corrupt(
                            format!("NTFS MFT record {record} compression unit at file byte {u}"),
                            e.at as u64,
                            format!("LZNT1: {}", e.detail),
                        )
                    })?;
                d.resize(ulen, 0);
                d
            };
            // Copy the overlap of [u, u+unit) and [offset, end).
            let from = offset.max(u);
            let to = end.min(u.saturating_add(unit));
            let s0 = usize::try_from(from.saturating_sub(u)).unwrap_or(0);
            let s1 = usize::try_from(to.saturating_sub(u)).unwrap_or(0);
            let d0 = usize::try_from(from.saturating_sub(offset)).unwrap_or(0);
            let d1 = usize::try_from(to.saturating_sub(offset)).unwrap_or(0);
            if let (Some(d), Some(s)) = (buf.get_mut(d0..d1), plain.get(s0..s1)) {
                d.copy_from_slice(s);
            }
            u = u.saturating_add(unit);
        }
        Ok(())
    }

    /// The entries of directory `record`, cached.
    fn listing(&self, record: u64) -> Result<Arc<Vec<DirEntry>>> {
        if let Some(l) = lock(&self.listings).get(&record) {
            return Ok(l.clone());
        }
        let l = Arc::new(guarded("directory index", record, || {
            self.parse_listing(record)
        })?);
        // Their metadata is asked next (a listing, a copy): the records are
        // read in the order they lie, in large pieces.
        self.prefetch_records(l.iter().map(|e| e.node.0));
        let mut ls = lock(&self.listings);
        if ls.len() >= MAX_CACHE {
            ls.clear();
        }
        ls.insert(record, l.clone());
        Ok(l)
    }

    /// Say to the source that the MFT records `records` will be read soon
    /// ([`ReadAt::prefetch`], and `posix_fadvise(WILLNEED)` on an image
    /// file): the spans of `$MFT` that hold them, in disk order, so that a
    /// cold page cache reads them in large pieces before the records are
    /// parsed one by one.
    fn prefetch_records(&self, records: impl Iterator<Item = u64>) {
        let size = u64::from(self.boot.record_size);
        let runs = &self.mft_runs;
        let spans = records
            .take(MAX_ENTRIES)
            .filter_map(|r| {
                let off = r.checked_mul(size)?;
                let run = runs.get(runs.partition_point(|x| x.off.saturating_add(x.len) <= off))?;
                let at = run.disk?.checked_add(off.checked_sub(run.off)?)?;
                Some((at, at.saturating_add(size)))
            })
            .collect();
        self.advise_merged(spans, BLOCK);
    }

    /// [`NtfsVolume::advise`] for volume ranges `spans` (start, end), in
    /// disk order, those less than `gap` apart asked for as one.
    fn advise_merged(&self, mut spans: Vec<(u64, u64)>, gap: u64) {
        spans.sort_unstable();
        let mut cur: Option<(u64, u64)> = None;
        for (s, e) in spans {
            cur = match cur {
                Some((cs, ce)) if s <= ce.saturating_add(gap) => Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    self.advise(cs, ce.saturating_sub(cs));
                    Some((s, e))
                }
                None => Some((s, e)),
            };
        }
        if let Some((s, e)) = cur {
            self.advise(s, e.saturating_sub(s));
        }
    }

    /// Volume bytes `at..at + len` will be read soon.
    fn advise(&self, at: u64, len: u64) {
        self.src.prefetch(at, len);
        let end = at.saturating_add(len);
        let mut pos = at;
        // A hint: the first 64 pieces of the host file are enough.
        for _ in 0..64 {
            if pos >= end {
                break;
            }
            let Some(he) = self.src.host_extent(pos, end.saturating_sub(pos)) else {
                break;
            };
            let _ = rustix::fs::fadvise(
                &*he.file,
                he.offset,
                std::num::NonZeroU64::new(he.len),
                rustix::fs::Advice::WillNeed,
            );
            pos = pos.saturating_add(he.len.max(1));
        }
    }

    /// Say to the source that the data of the small files among `records`
    /// will be read soon: their runs (up to the valid data length), in disk
    /// order, merged where they lie close, as [`NtfsVolume::advise`] spans.
    /// Resident data came with the record; large files are moved by
    /// copy-out in large pieces anyway.
    fn prefetch_data(&self, records: &[NodeId]) {
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for r in records.iter().take(PREFETCH_MAX) {
            let Ok(n) = self.node(r.0) else { continue };
            let Some(Stream::Runs {
                size,
                initialized,
                runs,
                compressed,
            }) = &n.data
            else {
                continue;
            };
            if *size > PREFETCH_FILE {
                continue;
            }
            // A compressed stream's units are read whole, initialized or not.
            let valid = if *compressed { *size } else { *initialized };
            for run in runs {
                let Some(disk) = run.disk else { continue };
                if run.off >= valid {
                    break;
                }
                let len = run.len.min(valid.saturating_sub(run.off));
                spans.push((disk, disk.saturating_add(len)));
            }
        }
        self.advise_merged(spans, PREFETCH_GAP);
    }

    fn parse_listing(&self, record: u64) -> Result<Vec<DirEntry>> {
        let mut cur = lock(&self.cursor);
        let cur = &mut *cur;
        let file = self.file(cur, record)?;
        let mut root = None;
        let mut alloc = None;
        let mut attrs = file.attributes();
        let mut seen = 0usize;
        while let Some(item) = attrs.next(cur) {
            seen = seen.saturating_add(1);
            if seen > MAX_ATTRS {
                return Err(crate_err(
                    "attributes",
                    record,
                    format!("more than {MAX_ATTRS}"),
                ));
            }
            let item = item.map_err(|e| crate_err("attribute", record, e))?;
            let a = item
                .to_attribute()
                .map_err(|e| crate_err("attribute", record, e))?;
            let Ok(ty) = a.ty() else { continue };
            if !matches!(
                ty,
                NtfsAttributeType::IndexRoot | NtfsAttributeType::IndexAllocation
            ) {
                continue;
            }
            let name = a.name().map_err(|e| crate_err("index name", record, e))?;
            if utf16(name.0) != b"$I30" {
                continue;
            }
            let s = self.stream(cur, &file, &a, b"$I30")?;
            if ty == NtfsAttributeType::IndexRoot {
                root = Some(s);
            } else {
                alloc = Some(s);
            }
        }
        drop(file);
        let root = root.ok_or_else(|| crate_err("directory", record, "no $INDEX_ROOT $I30"))?;
        let root = self.read_stream(record, &root, 0, 1 << 20)?;
        let block_size = root
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        if !(512..=65536).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(crate_err(
                "$INDEX_ROOT",
                record,
                format!("index block size {block_size}"),
            ));
        }
        let unit = if block_size >= self.boot.cluster_size {
            u64::from(self.boot.cluster_size)
        } else {
            512
        };
        let mut block = |vcn: u64| -> std::result::Result<Vec<u8>, index::IndexError> {
            let place = format!("INDX block at VCN {vcn}");
            let a = alloc.as_ref().ok_or_else(|| index::IndexError {
                place: place.clone(),
                at: 0,
                detail: "the directory has no $INDEX_ALLOCATION".into(),
            })?;
            let off = vcn
                .checked_mul(unit)
                .filter(|o| o.saturating_add(u64::from(block_size)) <= a.size())
                .ok_or_else(|| index::IndexError {
                    place: place.clone(),
                    at: 0,
                    detail: format!("past the end of $INDEX_ALLOCATION ({} bytes)", a.size()),
                })?;
            let b = self
                .read_stream(record, a, off, u64::from(block_size))
                .map_err(|e| index::IndexError {
                    place: place.clone(),
                    at: 0,
                    detail: e.to_string(),
                })?;
            Ok(b)
        };
        let entries = index::walk(&root, &mut block, MAX_ENTRIES).map_err(|e| {
            Error::corrupt(
                format!("NTFS directory index of MFT record {record}, {}", e.place),
                e.at,
                e.detail,
            )
        })?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if e.namespace == 2 || e.record < FIRST_USER {
                continue;
            }
            let file_type = if e.attrs & NtfsFileAttributeFlags::REPARSE_POINT.bits() != 0 {
                None
            } else if e.attrs & NtfsFileAttributeFlags::IS_DIRECTORY.bits() != 0 {
                Some(FileType::Directory)
            } else {
                Some(FileType::Regular)
            };
            out.push(DirEntry {
                name: utf16(&e.name),
                node: NodeId(e.record),
                file_type,
            });
        }
        Ok(out)
    }

    /// Clusters and free clusters from `$Bitmap`, as ntfs-3g's statfs counts them.
    fn count_space(&self) -> Result<Space> {
        let cluster = u64::from(self.boot.cluster_size);
        let clusters = self.boot.size.checked_div(cluster).unwrap_or(0);
        let n = self.node(BITMAP_RECORD)?;
        let d = n
            .data
            .clone()
            .ok_or_else(|| crate_err("$Bitmap", BITMAP_RECORD, "no $DATA"))?;
        let need = clusters.div_ceil(8);
        if d.size() < need {
            return Err(crate_err(
                "$Bitmap",
                BITMAP_RECORD,
                format!("{} bytes for {clusters} clusters", d.size()),
            ));
        }
        let mut used = 0u64;
        let mut at = 0u64;
        let chunk = 1u64 << 20;
        while at < need {
            let len = chunk.min(need.saturating_sub(at));
            let bytes = self.read_stream(BITMAP_RECORD, &d, at, len)?;
            if bytes.is_empty() {
                break;
            }
            for (i, b) in bytes.iter().enumerate() {
                let first = at.saturating_add(i as u64).saturating_mul(8);
                let valid = clusters.saturating_sub(first).min(8);
                let mask = u8::try_from((1u16 << valid).saturating_sub(1)).unwrap_or(0xff);
                used = used.saturating_add(u64::from((b & mask).count_ones()));
            }
            at = at.saturating_add(bytes.len() as u64);
        }
        let free = clusters.saturating_sub(used);
        Ok(Space {
            block_size: cluster,
            blocks: clusters,
            free_blocks: free,
            avail_blocks: free,
            inodes: 0,
            free_inodes: 0,
        })
    }

    fn file_type(n: &Node) -> FileType {
        if n.link.is_some() {
            FileType::Symlink
        } else if n.dir {
            FileType::Directory
        } else {
            FileType::Regular
        }
    }

    /// Bytes allocated to a stream.
    fn allocated(s: &Stream) -> u64 {
        match s {
            Stream::Resident(_) => 0,
            Stream::Runs { runs, .. } => runs
                .iter()
                .filter(|r| r.disk.is_some())
                .fold(0u64, |a, r| a.saturating_add(r.len)),
        }
    }

    /// The file's main data, or an error naming what it is when it has none.
    fn data(&self, node: NodeId) -> Result<(Arc<Node>, Option<Stream>)> {
        let n = self.node(node.0)?;
        if n.dir {
            return Err(Error::Invalid(format!(
                "NTFS MFT record {}: a directory",
                node.0
            )));
        }
        let d = n.data.clone();
        Ok((n, d))
    }
}

/// The smallest stream whose runs copy-out moves in the kernel.
const HOST_EXTENT_MIN: u64 = 1 << 20;
/// Most records one [`FsView::prefetch`] call looks at.
const PREFETCH_MAX: usize = 4096;
/// Largest file whose data [`FsView::prefetch`] asks for.
const PREFETCH_FILE: u64 = 1 << 20;
/// Data runs closer than this are asked for as one.
const PREFETCH_GAP: u64 = 64 << 10;

impl FsView for NtfsVolume {
    fn status(&self) -> FsStatus {
        FsStatus {
            fs_type: "ntfs".into(),
            label: self.label.clone(),
            uuid: Some(format!("{:016X}", self.ntfs.serial_number())),
            notes: lock(&self.notes).clone(),
            problems: self.problems.list(),
        }
    }

    fn problem_count(&self) -> usize {
        self.problems.count()
    }

    fn root(&self) -> NodeId {
        NodeId(ROOT_RECORD)
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let n = self.node(node.0)?;
        let file_type = Self::file_type(&n);
        let size = match (&n.link, &n.data) {
            (Some(l), _) => l.len() as u64,
            (None, _) if n.dir => 0,
            (None, Some(d)) => d.size(),
            (None, None) => 0,
        };
        Ok(Metadata {
            node,
            ino: n.record,
            file_type,
            perm: 0o777,
            uid: 0,
            gid: 0,
            size,
            nlink: n.links.max(1),
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
            crtime: Some(n.crtime),
            rdev: (0, 0),
            allocated: n.data.as_ref().map(Self::allocated),
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let n = self.node(dir.0)?;
        if !n.dir || n.link.is_some() {
            return Err(Error::Invalid(format!(
                "NTFS MFT record {}: not a directory",
                dir.0
            )));
        }
        Ok(self.listing(dir.0)?.as_ref().clone())
    }

    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        let n = self.node(dir.0)?;
        if !n.dir || n.link.is_some() {
            return Err(Error::Invalid(format!(
                "NTFS MFT record {}: not a directory",
                dir.0
            )));
        }
        Ok(self
            .listing(dir.0)?
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.node))
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        self.node(node.0)?
            .link
            .clone()
            .ok_or_else(|| Error::Invalid(format!("NTFS MFT record {}: not a symlink", node.0)))
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (_, d) = self.data(node)?;
        let Some(d) = d else { return Ok(0) };
        guarded("$DATA", node.0, || self.read_into(node.0, &d, offset, buf))
    }

    /// Where the bytes at `offset` lie in the host file, for a plain
    /// (uncompressed, non-resident) stream: the copy job then moves a
    /// whole run with `copy_file_range` instead of reading it through
    /// user space. Holes, compressed and resident data are read.
    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        let (_, d) = self.data(node).ok()?;
        let Some(Stream::Runs {
            size,
            initialized,
            runs,
            compressed: false,
        }) = d
        else {
            return None;
        };
        // A small file is read: the kernel's readahead of the image around
        // each `sendfile` costs more than the copy it saves. Past the valid
        // data length the bytes are zeros, not the clusters'.
        if offset >= initialized || len == 0 || size < HOST_EXTENT_MIN {
            return None;
        }
        let r = runs.get(runs.partition_point(|r| r.off.saturating_add(r.len) <= offset))?;
        if r.off > offset {
            return None;
        }
        let disk = r.disk?;
        let len = len
            .min(r.off.saturating_add(r.len).saturating_sub(offset))
            .min(initialized.saturating_sub(offset));
        self.src
            .host_extent(disk.checked_add(offset.saturating_sub(r.off))?, len)
    }

    fn prefetch(&self, nodes: &[NodeId], data: bool) {
        if data {
            self.prefetch_data(nodes);
        } else {
            self.prefetch_records(nodes.iter().take(PREFETCH_MAX).map(|n| n.0));
        }
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let (_, d) = self.data(node)?;
        let mut out: Vec<FileExtent> = Vec::new();
        let Some(d) = d else { return Ok(out) };
        let size = d.size();
        match &d {
            Stream::Runs {
                runs,
                compressed,
                initialized,
                ..
            } => {
                let unit = u64::from(self.boot.cluster_size).saturating_mul(UNIT_CLUSTERS);
                for r in runs {
                    if r.disk.is_none() || r.off >= size {
                        continue;
                    }
                    // A compressed unit with data covers the whole unit.
                    let (mut a, mut b) = (r.off, r.off.saturating_add(r.len).min(size));
                    if *compressed && unit > 0 {
                        a = a.checked_div(unit).unwrap_or(0).saturating_mul(unit);
                        b = b.div_ceil(unit).saturating_mul(unit).min(size);
                    }
                    match out.last_mut() {
                        Some(l) if l.offset.saturating_add(l.len) >= a => {
                            l.len = b
                                .max(l.offset.saturating_add(l.len))
                                .saturating_sub(l.offset);
                        }
                        _ => out.push(FileExtent {
                            offset: a,
                            len: b.saturating_sub(a),
                            unwritten: false,
                        }),
                    }
                }
                // Past the valid data length: allocated, read as zeros.
                out = out
                    .into_iter()
                    .flat_map(|e| {
                        let end = e.offset.saturating_add(e.len);
                        let cut = (*initialized).clamp(e.offset, end);
                        [
                            FileExtent {
                                len: cut.saturating_sub(e.offset),
                                ..e
                            },
                            FileExtent {
                                offset: cut,
                                len: end.saturating_sub(cut),
                                unwritten: true,
                            },
                        ]
                    })
                    .filter(|e| e.len > 0)
                    .collect();
            }
            _ if size > 0 => out.push(FileExtent {
                offset: 0,
                len: size,
                unwritten: false,
            }),
            _ => {}
        }
        Ok(out)
    }

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        let n = self.node(node.0)?;
        let mut out = Vec::new();
        for (name, s) in &n.streams {
            if s.size() > MAX_XATTR {
                self.problems.record(format!(
                    "NTFS MFT record {}: stream {} is {} bytes, more than an extended attribute holds: not shown",
                    node.0,
                    String::from_utf8_lossy(name),
                    s.size()
                ));
                continue;
            }
            let value = guarded("named stream", node.0, || {
                self.read_stream(node.0, s, 0, MAX_XATTR)
            })?;
            let mut full = b"user.".to_vec();
            full.extend_from_slice(name);
            out.push(Xattr { name: full, value });
        }
        Ok(out)
    }

    fn space(&self, _node: NodeId) -> Option<Space> {
        if let Some(s) = *lock(&self.space) {
            return Some(s);
        }
        let s = guarded("$Bitmap", BITMAP_RECORD, || self.count_space()).ok()?;
        *lock(&self.space) = Some(s);
        Some(s)
    }
}
