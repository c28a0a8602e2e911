//! XFS log recovery in memory, as the kernel's `xlog_recover` does it, into
//! an overlay of replaced 512-byte sectors; the image is never written.
//!
//! The head is found from the cycle numbers stamped in every 512-byte log
//! block ([`super::log::find_head`]), moved back over a last record that is
//! not complete; the tail is the last record's `h_tail_lsn`. The records
//! from tail to head are read (extended headers of v2 logs, the first word
//! of every data block restored from the headers' cycle data), their CRC32C
//! checked, and their operations gathered per transaction id (split regions
//! joined). Committed transactions are applied in commit order, as the
//! kernel's second pass does: buffers (dirty 128-byte chunks; those with a
//! later cancel record skipped; inode buffers only their unlinked
//! pointers), inodes (the host-endian log dinode turned into the on-disk
//! big-endian one, fork regions by `ilf_fields`, the v3 CRC recomputed) and
//! inode chunk creations. v5 metadata newer than the item (its LSN) is left
//! alone. Intents, quota items and dquot buffers are counted, not replayed.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::{BTreeMap, HashMap};

use super::Xfs;
use super::log::{self, BB, XLOG_HEADER_CYCLE_SIZE, XLOG_HEADER_MAGIC_NUM};
use crate::error::{Error, Result};
use crate::io::{be, le};
use crate::problem::Problem;

/// Client ids of an operation header.
const XFS_TRANSACTION: u8 = 0x69;
const XFS_LOG: u8 = 0xaa;
/// `oh_flags`.
const XLOG_START_TRANS: u8 = 0x01;
const XLOG_COMMIT_TRANS: u8 = 0x02;
const XLOG_CONTINUE_TRANS: u8 = 0x04;
const XLOG_WAS_CONT_TRANS: u8 = 0x08;
const XLOG_END_TRANS: u8 = 0x10;
const XLOG_UNMOUNT_TRANS: u8 = 0x20;
/// `th_magic` of a transaction header ("TRAN", host-endian).
const XFS_TRANS_HEADER_MAGIC: u32 = 0x5452_414e;
const TRANS_HEADER_LEN: usize = 16;
/// Most regions one item may have (`XLOG_MAX_REGIONS_IN_ITEM`).
const MAX_REGIONS: u16 = 257;
/// Records before the head whose bad CRC the kernel takes for a torn write.
const XLOG_MAX_ICLOGS: usize = 8;
/// Most sectors the overlay may hold (1 GiB).
const MAX_OVERLAY_SECTORS: usize = 2 << 20;

/// Log item types.
mod li {
    pub(super) const EFI: u16 = 0x1236;
    pub(super) const EFD: u16 = 0x1237;
    pub(super) const INODE: u16 = 0x123b;
    pub(super) const BUF: u16 = 0x123c;
    pub(super) const DQUOT: u16 = 0x123d;
    pub(super) const QUOTAOFF: u16 = 0x123e;
    pub(super) const ICREATE: u16 = 0x123f;
    pub(super) const RUI: u16 = 0x1240;
    pub(super) const RUD: u16 = 0x1241;
    pub(super) const CUI: u16 = 0x1242;
    pub(super) const CUD: u16 = 0x1243;
    pub(super) const BUI: u16 = 0x1244;
    pub(super) const BUD: u16 = 0x1245;
    pub(super) const ATTRI: u16 = 0x1246;
    pub(super) const ATTRD: u16 = 0x1247;
    pub(super) const XMI: u16 = 0x1248;
    pub(super) const XMD: u16 = 0x1249;
}

/// `blf_flags` bits.
const XFS_BLF_INODE_BUF: u16 = 0x1;
const XFS_BLF_CANCEL: u16 = 0x2;
const XFS_BLF_DQUOT_BUFS: u16 = 0x4 | 0x8 | 0x10;
const XFS_BLF_CHUNK: usize = 128;

/// `ilf_fields` bits.
const ILOG_DDATA: u32 = 0x002;
const ILOG_DEXT: u32 = 0x004;
const ILOG_DBROOT: u32 = 0x008;
const ILOG_DEV: u32 = 0x010;
const ILOG_ADATA: u32 = 0x040;
const ILOG_AEXT: u32 = 0x080;
const ILOG_ABROOT: u32 = 0x100;
const ILOG_AFORK: u32 = ILOG_ADATA | ILOG_AEXT | ILOG_ABROOT;

/// `di_magic` "IN".
const DINODE_MAGIC: u16 = 0x494e;
const DI_NEXT_UNLINKED: usize = 96;
const DI_CRC_OFF: usize = 100;
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;
const DIFLAG2_BIGTIME: u64 = 0x8;
const DIFLAG2_NREXT64: u64 = 0x10;

/// What replaying the log gave.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Replaced 512-byte sectors, by sector number.
    pub sectors: BTreeMap<u64, Box<[u8]>>,
    /// Committed transactions applied.
    pub transactions: usize,
    /// Buffer items written.
    pub buffers: usize,
    /// Inode items written.
    pub inodes: usize,
    /// Inode chunks initialised.
    pub icreates: usize,
    /// Facts worth telling.
    pub notes: Vec<String>,
    /// What was wrong in the log.
    pub problems: Vec<Problem>,
}

/// One logged item: its regions as gathered.
#[derive(Debug, Default)]
struct Item {
    total: u16,
    regions: Vec<Vec<u8>>,
}

/// A transaction being gathered.
#[derive(Debug, Default)]
struct Trans {
    lsn: u64,
    header: Vec<u8>,
    items: Vec<Item>,
}

/// Where the log lies and how to read it.
struct Log<'a> {
    fs: &'a Xfs,
    /// Byte position of the log's first block.
    base: u64,
    /// Length in basic blocks.
    nbb: u64,
}

impl Log<'_> {
    /// `count` basic blocks from `bb`, wrapping at the log's end.
    fn read(&self, bb: u64, count: u64) -> Result<Vec<u8>> {
        let count = count.min(self.nbb);
        let len = usize::try_from(count.saturating_mul(BB))
            .map_err(|_| Error::Invalid("xfs log read too large".into()))?;
        let mut out = vec![0u8; len];
        let mut done = 0u64;
        let mut at = bb.checked_rem(self.nbb).unwrap_or(0);
        while done < count {
            let run = (self.nbb.saturating_sub(at)).min(count.saturating_sub(done));
            let pos = self.base.saturating_add(at.saturating_mul(BB));
            let from = usize::try_from(done.saturating_mul(BB)).unwrap_or(usize::MAX);
            let to =
                usize::try_from(done.saturating_add(run).saturating_mul(BB)).unwrap_or(usize::MAX);
            let Some(buf) = out.get_mut(from..to) else {
                break;
            };
            self.fs
                .src
                .read_exact_at(pos, buf)
                .map_err(|e| Error::io(format!("xfs log at byte {pos}"), e))?;
            done = done.saturating_add(run);
            at = 0;
        }
        Ok(out)
    }

    fn byte(&self, bb: u64) -> u64 {
        self.base
            .saturating_add(bb.checked_rem(self.nbb).unwrap_or(0).saturating_mul(BB))
    }
}

/// A record header and what it says.
#[derive(Debug, Clone)]
struct Record {
    bb: u64,
    /// The header block and its extended header blocks.
    hdr: Vec<u8>,
    hblks: u64,
    len: u32,
    lsn: u64,
    num_logops: u32,
}

impl Record {
    fn data_bbs(&self) -> u64 {
        u64::from(self.len).div_ceil(BB)
    }
    fn total_bbs(&self) -> u64 {
        self.hblks.saturating_add(self.data_bbs())
    }
}

/// How many header blocks a record with header `hdr` has.
fn header_blocks(hdr: &[u8]) -> u64 {
    let version = be::u32(hdr, 8).unwrap_or(0);
    let h_size = be::u32(hdr, 320).unwrap_or(0);
    if version & 2 != 0 && h_size > XLOG_HEADER_CYCLE_SIZE {
        u64::from(h_size.div_ceil(XLOG_HEADER_CYCLE_SIZE))
    } else {
        1
    }
}

/// Read and check the record header at `bb`.
fn read_record(log: &Log, bb: u64) -> Result<Record> {
    let at = log.byte(bb);
    let first = log.read(bb, 1)?;
    let bad = |d: String| Error::corrupt("xfs log record header", at, d);
    if be::u32(&first, 0) != Some(XLOG_HEADER_MAGIC_NUM) {
        return Err(bad(format!(
            "bad magic {:#010x}",
            be::u32(&first, 0).unwrap_or(0)
        )));
    }
    let version = be::u32(&first, 8).unwrap_or(0);
    if version != 1 && version != 2 {
        return Err(bad(format!("unknown version {version}")));
    }
    let len = be::u32(&first, 12).unwrap_or(0);
    let h_size = be::u32(&first, 320).unwrap_or(0);
    let max = if version == 2 {
        h_size.max(XLOG_HEADER_CYCLE_SIZE)
    } else {
        XLOG_HEADER_CYCLE_SIZE
    };
    // The kernel's largest in-core log buffer is 256 KiB.
    if len == 0 || len > max || max > 256 * 1024 {
        return Err(bad(format!(
            "record length {len} (buffer size {h_size}) is not valid"
        )));
    }
    let hblks = header_blocks(&first);
    let hdr = if hblks > 1 {
        log.read(bb, hblks)?
    } else {
        first
    };
    let rec = Record {
        bb,
        lsn: be::u64(&hdr, 16).unwrap_or(0),
        num_logops: be::u32(&hdr, 40).unwrap_or(0),
        hdr,
        hblks,
        len,
    };
    if rec.total_bbs() > log.nbb {
        return Err(bad(format!("record of {len} bytes is longer than the log")));
    }
    Ok(rec)
}

/// The record's CRC32C over the header (`h_crc` zeroed), the extended
/// headers and the data as stored: `Some(true)` when it matches.
fn crc_ok(rec: &Record, data: &[u8]) -> bool {
    let stored = le::u32(&rec.hdr, 32).unwrap_or(0);
    // sizeof(struct xlog_rec_header): 328 bytes on 64-bit hosts (padded),
    // 324 on i386.
    [328usize, 324].iter().any(|&hlen| {
        let head = rec.hdr.get(..hlen).unwrap_or_default();
        let mut c = crc32c::crc32c(head.get(..32).unwrap_or_default());
        c = crc32c::crc32c_append(c, &[0u8; 4]);
        c = crc32c::crc32c_append(c, head.get(36..).unwrap_or_default());
        // Extended headers as many as the record's length needs (not h_size).
        let xheads = u64::from(rec.len.div_ceil(XLOG_HEADER_CYCLE_SIZE)).min(rec.hblks);
        for i in 1..xheads {
            let off = usize::try_from(i.saturating_mul(BB)).unwrap_or(usize::MAX);
            let ext = rec
                .hdr
                .get(off..off.saturating_add(260))
                .unwrap_or_default();
            c = crc32c::crc32c_append(c, ext);
        }
        c = crc32c::crc32c_append(c, data);
        c == stored
    })
}

/// Put back the first word of every data block from the cycle data.
fn unpack(rec: &Record, data: &mut [u8]) {
    for (i, chunk) in data.chunks_mut(512).enumerate() {
        let j = i / 64;
        let k = i % 64;
        // The main header's h_cycle_data at 44; extended header j's
        // xh_cycle_data at 4 of block j.
        let off = if j == 0 {
            44usize.saturating_add(k.saturating_mul(4))
        } else {
            j.saturating_mul(512)
                .saturating_add(4)
                .saturating_add(k.saturating_mul(4))
        };
        if let (Some(src), Some(dst)) =
            (rec.hdr.get(off..off.saturating_add(4)), chunk.get_mut(..4))
        {
            dst.copy_from_slice(src);
        }
    }
}

/// Everything the walk over the log gathered.
#[derive(Default)]
struct Gathered {
    committed: Vec<Trans>,
    stopped: Option<Problem>,
    notes: Vec<String>,
}

/// Gather the operations of one record into `open`, committed
/// transactions into `out`.
fn gather_ops(
    rec: &Record,
    data: &[u8],
    open: &mut HashMap<u32, Trans>,
    out: &mut Vec<Trans>,
) -> std::result::Result<(), String> {
    let end = data
        .len()
        .min(usize::try_from(rec.len).unwrap_or(usize::MAX));
    let mut pos = 0usize;
    let mut left = rec.num_logops;
    while pos < end && left > 0 {
        left = left.saturating_sub(1);
        let oh = data
            .get(pos..pos.saturating_add(12))
            .filter(|_| pos.saturating_add(12) <= end)
            .ok_or_else(|| format!("operation header at record offset {pos} is cut off"))?;
        let tid = be::u32(oh, 0).unwrap_or(0);
        let len = usize::try_from(be::u32(oh, 4).unwrap_or(0)).unwrap_or(usize::MAX);
        let client = oh.get(8).copied().unwrap_or(0);
        let flags = oh.get(9).copied().unwrap_or(0);
        let start = pos.saturating_add(12);
        if client != XFS_TRANSACTION && client != XFS_LOG {
            return Err(format!(
                "operation at record offset {pos}: bad client id {client:#x}"
            ));
        }
        let stop = start
            .checked_add(len)
            .filter(|s| *s <= end)
            .ok_or_else(|| {
                format!(
                    "operation at record offset {pos}: length {len} runs past the record's end ({end})"
                )
            })?;
        let payload = data.get(start..stop).unwrap_or_default();
        pos = stop;
        if let std::collections::hash_map::Entry::Vacant(e) = open.entry(tid) {
            if flags & XLOG_START_TRANS != 0 {
                e.insert(Trans {
                    lsn: rec.lsn,
                    ..Trans::default()
                });
            }
            continue;
        }
        let mut f = flags & !XLOG_END_TRANS;
        if f & XLOG_WAS_CONT_TRANS != 0 {
            f &= !XLOG_CONTINUE_TRANS;
        }
        match f {
            0 | XLOG_CONTINUE_TRANS => {
                if let Some(t) = open.get_mut(&tid) {
                    add_region(t, payload)?;
                }
            }
            XLOG_WAS_CONT_TRANS => {
                if let Some(t) = open.get_mut(&tid) {
                    add_cont(t, payload)?;
                }
            }
            XLOG_COMMIT_TRANS => {
                if let Some(t) = open.remove(&tid) {
                    out.push(t);
                }
            }
            XLOG_UNMOUNT_TRANS => {
                open.remove(&tid);
            }
            _ => {
                return Err(format!(
                    "operation at record offset {}: flags {flags:#x} for transaction {tid:#x}",
                    start.saturating_sub(12)
                ));
            }
        }
    }
    Ok(())
}

/// A new region of a transaction (`xlog_recover_add_to_trans`).
fn add_region(t: &mut Trans, dp: &[u8]) -> std::result::Result<(), String> {
    if dp.is_empty() {
        return Ok(());
    }
    if t.items.is_empty() && t.header.len() < TRANS_HEADER_LEN {
        if t.header.is_empty() && le::u32(dp, 0) != Some(XFS_TRANS_HEADER_MAGIC) {
            return Err("bad transaction header magic".into());
        }
        if dp.len().saturating_add(t.header.len()) > TRANS_HEADER_LEN {
            return Err(format!("transaction header of {} bytes", dp.len()));
        }
        t.header.extend_from_slice(dp);
        return Ok(());
    }
    let need_new = match t.items.last() {
        None => true,
        Some(it) => it.total != 0 && usize::from(it.total) == it.regions.len(),
    };
    if need_new {
        t.items.push(Item::default());
    }
    let Some(item) = t.items.last_mut() else {
        return Ok(());
    };
    if item.total == 0 {
        let size = le::u16(dp, 2).unwrap_or(0);
        if size == 0 || size > MAX_REGIONS {
            return Err(format!("log item with {size} regions"));
        }
        item.total = size;
    }
    if usize::from(item.total) <= item.regions.len() {
        return Err("log item region count exceeded".into());
    }
    item.regions.push(dp.to_vec());
    Ok(())
}

/// The rest of a region split across records (`xlog_recover_add_to_cont_trans`).
fn add_cont(t: &mut Trans, dp: &[u8]) -> std::result::Result<(), String> {
    if t.items.is_empty() {
        if dp.len().saturating_add(t.header.len()) > TRANS_HEADER_LEN {
            return Err("transaction header continued past its size".into());
        }
        t.header.extend_from_slice(dp);
        return Ok(());
    }
    if let Some(r) = t.items.last_mut().and_then(|i| i.regions.last_mut()) {
        r.extend_from_slice(dp);
        // An item's first region tells how many regions it has.
        if let Some(item) = t.items.last_mut()
            && item.regions.len() == 1
            && item.total == 0
        {
            item.total = item
                .regions
                .first()
                .and_then(|r| le::u16(r, 2))
                .unwrap_or(0);
        }
    }
    Ok(())
}

/// Walk the records from tail to head, gathering committed transactions.
fn gather(log: &Log, tail: u64, head: u64) -> Result<Gathered> {
    let mut g = Gathered::default();
    let mut records = Vec::new();
    let mut bb = tail;
    let mut walked = 0u64;
    let dist = head
        .saturating_add(log.nbb)
        .saturating_sub(tail)
        .checked_rem(log.nbb)
        .unwrap_or(0);
    while walked < dist {
        let rec = match read_record(log, bb) {
            Ok(r) => r,
            Err(e) => {
                g.stopped = Some(Problem::of(
                    "xfs log",
                    format!(
                        "{e}: replay stops there (the kernel's recovery fails the mount on it)"
                    ),
                ));
                break;
            }
        };
        walked = walked.saturating_add(rec.total_bbs());
        bb = bb
            .saturating_add(rec.total_bbs())
            .checked_rem(log.nbb)
            .unwrap_or(0);
        records.push(rec);
        if records.len() > 1 << 22 {
            break;
        }
    }
    if walked > dist && g.stopped.is_none() {
        g.notes.push(format!(
            "the last log record runs {} blocks past the head: not replayed",
            walked.saturating_sub(dist)
        ));
        records.pop();
    }
    let mut open: HashMap<u32, Trans> = HashMap::new();
    let count = records.len();
    for (i, rec) in records.iter().enumerate() {
        let data_at = rec.bb.saturating_add(rec.hblks);
        let mut data = log.read(data_at, rec.data_bbs())?;
        data.truncate(usize::try_from(rec.len).unwrap_or(usize::MAX));
        let at = log.byte(rec.bb);
        let stored = le::u32(&rec.hdr, 32).unwrap_or(0);
        let v5 = log.fs.sb.is_v5();
        if !crc_ok(rec, &data) && (stored != 0 || v5) {
            let from_end = count.saturating_sub(i);
            if v5 && from_end <= XLOG_MAX_ICLOGS {
                g.notes.push(format!(
                    "a torn write at the end of the XFS log (log record at byte {at} fails its CRC): replayed up to it, as the kernel does"
                ));
                return Ok(g);
            }
            let p = Problem::at(
                "xfs log record",
                at,
                format!("CRC mismatch (stored {stored:#010x})"),
            );
            if v5 {
                g.stopped = Some(p.within(
                    "replay stops there: the kernel's recovery fails the mount on a bad CRC that is not at the log's end",
                ));
                return Ok(g);
            }
            g.notes.push(p.to_string());
        }
        unpack(rec, &mut data);
        if let Err(why) = gather_ops(rec, &data, &mut open, &mut g.committed) {
            g.stopped = Some(Problem::at(
                "xfs log record",
                at,
                format!("{why}: replay stops there (the kernel's recovery fails the mount on it)"),
            ));
            return Ok(g);
        }
    }
    if !open.is_empty() {
        g.notes.push(format!(
            "{} uncommitted transaction(s) at the end of the XFS log ignored, as the kernel does",
            open.len()
        ));
    }
    Ok(g)
}

/// The in-memory overlay of replaced sectors over the disk.
struct Overlay<'a> {
    fs: &'a Xfs,
    sectors: BTreeMap<u64, Box<[u8]>>,
    limit_hit: bool,
}

impl Overlay<'_> {
    fn fs_sectors(&self) -> u64 {
        self.fs
            .sb
            .sb_dblocks
            .saturating_mul(self.fs.block_size)
            .saturating_div(BB)
    }

    /// Whether `nbb` sectors at `daddr` make a buffer within the filesystem.
    fn check_range(&self, daddr: u64, nbb: u64) -> Result<()> {
        if daddr.saturating_add(nbb) > self.fs_sectors() || nbb == 0 || nbb > 1 << 12 {
            return Err(Error::corrupt(
                "xfs log item",
                daddr.saturating_mul(BB),
                format!("{nbb} sectors at sector {daddr} do not lie within the filesystem"),
            ));
        }
        Ok(())
    }

    /// `nbb` sectors at `daddr`, replaced ones from the overlay.
    fn read(&self, daddr: u64, nbb: u64) -> Result<Vec<u8>> {
        self.check_range(daddr, nbb)?;
        let len = usize::try_from(nbb.saturating_mul(BB)).unwrap_or(0);
        let mut buf = vec![0u8; len];
        let pos = daddr.saturating_mul(BB);
        // A buffer replayed before is all in the overlay: no disk read.
        let held = self.sectors.range(daddr..daddr.saturating_add(nbb)).count();
        if u64::try_from(held).ok() != Some(nbb) {
            self.fs
                .src
                .read_exact_at(pos, &mut buf)
                .map_err(|e| Error::io(format!("xfs buffer at byte {pos}"), e))?;
        }
        for (s, data) in self.sectors.range(daddr..daddr.saturating_add(nbb)) {
            let off = usize::try_from(s.saturating_sub(daddr).saturating_mul(BB)).unwrap_or(0);
            if let Some(dst) = buf.get_mut(off..off.saturating_add(512)) {
                dst.copy_from_slice(data);
            }
        }
        Ok(buf)
    }

    fn write(&mut self, daddr: u64, data: &[u8]) {
        for (i, chunk) in data.chunks(512).enumerate() {
            let sector = daddr.saturating_add(i as u64);
            if let Some(held) = self.sectors.get_mut(&sector) {
                if let Some(d) = held.get_mut(..chunk.len()) {
                    d.copy_from_slice(chunk);
                }
                continue;
            }
            if self.sectors.len() >= MAX_OVERLAY_SECTORS {
                self.limit_hit = true;
                return;
            }
            let mut s = vec![0u8; 512];
            if let Some(d) = s.get_mut(..chunk.len()) {
                d.copy_from_slice(chunk);
            }
            self.sectors.insert(sector, s.into_boxed_slice());
        }
    }
}

/// Where a v5 metadata buffer keeps its LSN and CRC, by its magic.
fn lsn_crc_offsets(buf: &[u8]) -> Option<(usize, usize)> {
    let m32 = be::u32(buf, 0)?;
    let r = match m32 {
        // Short-form btree blocks: bno, cnt, inobt, finobt, rmap, refcount.
        0x4142_3342 | 0x4142_3343 | 0x4941_4233 | 0x4649_4233 | 0x524d_4133 | 0x5233_4643 => {
            (24, 52)
        }
        // bmbt block.
        0x424d_4133 => (32, 64),
        // AGF, AGI, AGFL, superblock.
        0x5841_4746 => (208, 216),
        0x5841_4749 => (320, 312),
        0x5841_464c => (24, 32),
        0x5846_5342 => (240, 224),
        // Directory block/data/free headers.
        0x5844_4233 | 0x5844_4433 | 0x5844_4633 => (16, 4),
        // Remote attribute value, remote symlink.
        0x5841_524d | 0x5853_4c4d => (48, 12),
        _ => match be::u16(buf, 8)? {
            // da3 node, dir3 leaf1/leafn, attr3 leaf.
            0x3ebe | 0x3df1 | 0x3dff | 0x3bee => (24, 12),
            _ => return None,
        },
    };
    Some(r)
}

fn put_crc(buf: &mut [u8], crc_off: usize) {
    let (_, c) = super::sb::crc_pair(buf, crc_off);
    if let Some(d) = buf.get_mut(crc_off..crc_off.saturating_add(4)) {
        d.copy_from_slice(&c.to_le_bytes());
    }
}

fn put_be64(buf: &mut [u8], off: usize, v: u64) {
    if let Some(d) = buf.get_mut(off..off.saturating_add(8)) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

/// Whether `lsn` (on disk) is set and at least as new as `current`
/// (`strict`: newer than).
fn disk_is_newer(lsn: u64, current: u64, strict: bool) -> bool {
    if lsn == 0 || lsn == u64::MAX {
        return false;
    }
    // LSNs compare as (cycle, block).
    if strict {
        lsn > current
    } else {
        lsn >= current
    }
}

/// The counts of item kinds not replayed.
#[derive(Default)]
struct Skipped {
    intents: usize,
    quota: usize,
    cancelled: usize,
    newer: usize,
}

struct Applier<'a> {
    ov: Overlay<'a>,
    cancels: HashMap<(u64, u64), usize>,
    out: Replay,
    skipped: Skipped,
}

impl Applier<'_> {
    fn problem(&mut self, what: String, at: u64, detail: impl Into<String>) {
        if self.out.problems.len() < 200 {
            self.out.problems.push(Problem::at(what, at, detail));
        }
    }

    fn cancelled(&self, blkno: u64, len: u64) -> bool {
        self.cancels.get(&(blkno, len)).is_some_and(|n| *n > 0)
    }

    fn buffer(&mut self, item: &Item, lsn: u64) {
        let Some(f) = item.regions.first() else {
            return;
        };
        let flags = le::u16(f, 4).unwrap_or(0);
        let len = u64::from(le::u16(f, 6).unwrap_or(0));
        let blkno = le::u64(f, 8).unwrap_or(0);
        let map_size = usize::try_from(le::u32(f, 16).unwrap_or(0)).unwrap_or(0);
        if flags & XFS_BLF_CANCEL != 0 {
            if let Some(n) = self.cancels.get_mut(&(blkno, len)) {
                *n = n.saturating_sub(1);
            }
            return;
        }
        if self.cancelled(blkno, len) {
            self.skipped.cancelled = self.skipped.cancelled.saturating_add(1);
            return;
        }
        if flags & XFS_BLF_DQUOT_BUFS != 0 {
            self.skipped.quota = self.skipped.quota.saturating_add(1);
            return;
        }
        let at = blkno.saturating_mul(BB);
        let mut buf = match self.ov.read(blkno, len) {
            Ok(b) => b,
            Err(e) => {
                self.problem("xfs log buffer item".into(), at, e.to_string());
                return;
            }
        };
        let v5 = self.ov.fs.sb.is_v5();
        let layout = if v5 { lsn_crc_offsets(&buf) } else { None };
        if flags & XFS_BLF_INODE_BUF == 0
            && let Some((lsn_off, _)) = layout
            && disk_is_newer(be::u64(&buf, lsn_off).unwrap_or(0), lsn, false)
        {
            self.skipped.newer = self.skipped.newer.saturating_add(1);
            return;
        }
        // The logged chunks: (byte offset in the buffer, bytes).
        let map = f.get(20..).unwrap_or_default();
        let bits = map_size.saturating_mul(32).min(map.len().saturating_mul(8));
        let bit_set = |b: usize| {
            le::u32(map, (b / 32).saturating_mul(4)).is_some_and(|w| w & (1u32 << (b % 32)) != 0)
        };
        let mut chunks: Vec<(usize, &[u8])> = Vec::new();
        let mut bit = 0usize;
        let mut region = 1usize;
        while bit < bits {
            if !bit_set(bit) {
                bit = bit.saturating_add(1);
                continue;
            }
            let mut n = 0usize;
            while bit.saturating_add(n) < bits && bit_set(bit.saturating_add(n)) {
                n = n.saturating_add(1);
            }
            let Some(src) = item.regions.get(region) else {
                self.problem(
                    "xfs log buffer item".into(),
                    at,
                    format!(
                        "the dirty map names more chunks than the {} regions logged",
                        item.regions.len()
                    ),
                );
                return;
            };
            n = n.min(src.len() / XFS_BLF_CHUNK);
            if n == 0 {
                self.problem("xfs log buffer item".into(), at, "an empty region");
                return;
            }
            let bytes = n.saturating_mul(XFS_BLF_CHUNK);
            chunks.push((
                bit.saturating_mul(XFS_BLF_CHUNK),
                src.get(..bytes).unwrap_or_default(),
            ));
            region = region.saturating_add(1);
            bit = bit.saturating_add(n);
        }
        if flags & XFS_BLF_INODE_BUF != 0 {
            // Only the unlinked pointers of an inode buffer are replayed.
            let isize = usize::from(self.ov.fs.sb.sb_inodesize).max(256);
            let v3 = v5;
            let mut i = 0usize;
            while i.saturating_add(isize) <= buf.len() {
                let off = i.saturating_add(DI_NEXT_UNLINKED);
                for (c_off, c) in &chunks {
                    if off >= *c_off && off.saturating_add(4) <= c_off.saturating_add(c.len()) {
                        let s = off.saturating_sub(*c_off);
                        if let (Some(src), Some(dst)) = (
                            c.get(s..s.saturating_add(4)),
                            buf.get_mut(off..off.saturating_add(4)),
                        ) {
                            dst.copy_from_slice(src);
                        }
                        if v3 && let Some(ino) = buf.get_mut(i..i.saturating_add(isize)) {
                            put_crc(ino, DI_CRC_OFF);
                        }
                    }
                }
                i = i.saturating_add(isize);
            }
        } else {
            for (c_off, c) in &chunks {
                let Some(dst) = buf.get_mut(*c_off..c_off.saturating_add(c.len())) else {
                    self.problem(
                        "xfs log buffer item".into(),
                        at,
                        format!(
                            "a chunk at {c_off} lies outside the {}-byte buffer",
                            len.saturating_mul(BB)
                        ),
                    );
                    return;
                };
                dst.copy_from_slice(c);
            }
            if v5 {
                stamp(&mut buf, lsn, self.ov.fs.block_size);
            }
        }
        self.ov.write(blkno, &buf);
        self.out.buffers = self.out.buffers.saturating_add(1);
    }

    fn inode(&mut self, item: &Item, lsn: u64) {
        let Some(f) = item.regions.first() else {
            return;
        };
        // The 64-bit format (56 bytes) or the 32-bit one (52 bytes, no pad).
        let (ino_off, u_off, blk_off) = if f.len() == 52 {
            (12, 20, 36)
        } else {
            (16, 24, 40)
        };
        let fields = le::u32(f, 4).unwrap_or(0);
        let ino = le::u64(f, ino_off).unwrap_or(0);
        let rdev = le::u32(f, u_off).unwrap_or(0);
        let blkno = le::u64(f, blk_off).unwrap_or(0);
        let len = u64::from(le::u32(f, blk_off.saturating_add(8)).unwrap_or(0));
        let boffset =
            usize::try_from(le::u32(f, blk_off.saturating_add(12)).unwrap_or(0)).unwrap_or(0);
        let what = format!("xfs log inode item (inode {ino})");
        if self.cancelled(blkno, len) {
            self.skipped.cancelled = self.skipped.cancelled.saturating_add(1);
            return;
        }
        let at = blkno.saturating_mul(BB);
        if let Err(e) = self.ov.check_range(blkno, len) {
            self.problem(what, at, e.to_string());
            return;
        }
        let isize = usize::from(self.ov.fs.sb.sb_inodesize);
        let v5 = self.ov.fs.sb.is_v5();
        let inode_end = boffset.saturating_add(isize);
        if u64::try_from(inode_end).unwrap_or(u64::MAX) > len.saturating_mul(BB) {
            self.problem(
                what,
                at,
                format!("inode offset {boffset} lies outside its buffer"),
            );
            return;
        }
        // Only the sectors holding the inode are read and written back
        // (the rest of the cluster buffer is not changed by this item).
        let first = boffset.checked_div(512).unwrap_or(0);
        let sectors = inode_end.div_ceil(512).saturating_sub(first);
        let sub = blkno.saturating_add(first as u64);
        let mut buf = match self.ov.read(sub, sectors as u64) {
            Ok(b) => b,
            Err(e) => {
                self.problem(what, at, e.to_string());
                return;
            }
        };
        let within = boffset.saturating_sub(first.saturating_mul(512));
        let Some(dip) = buf.get_mut(within..within.saturating_add(isize)) else {
            self.problem(
                what,
                at,
                format!("inode offset {boffset} lies outside its buffer"),
            );
            return;
        };
        if be::u16(dip, 0) != Some(DINODE_MAGIC) {
            self.problem(
                what,
                at,
                "the inode on disk has a bad magic: not replayed (the kernel fails the mount)",
            );
            return;
        }
        let Some(ld) = item.regions.get(1) else {
            self.problem(what, at, "no log dinode region");
            return;
        };
        if le::u16(ld, 0) != Some(DINODE_MAGIC) {
            self.problem(what, at, "the log dinode has a bad magic: not replayed");
            return;
        }
        let version = ld.get(4).copied().unwrap_or(0);
        let core = if version >= 3 { CORE_V3 } else { CORE_V2 };
        let ld_need = if version >= 3 {
            CORE_V3
        } else {
            DI_NEXT_UNLINKED
        };
        if ld.len() < ld_need {
            self.problem(what, at, format!("log dinode of {} bytes", ld.len()));
            return;
        }
        if be::u16(dip, 4).map(|v| v >> 8).unwrap_or(0) >= 3 {
            if disk_is_newer(be::u64(dip, 112).unwrap_or(0), lsn, true) {
                self.skipped.newer = self.skipped.newer.saturating_add(1);
                return;
            }
        } else if !v5 {
            // v4: the flush counter orders the copies.
            let disk_fi = be::u16(dip, 30).unwrap_or(0);
            let log_fi = le::u16(ld, 30).unwrap_or(0);
            if log_fi < disk_fi && !(disk_fi == u16::MAX && log_fi < u16::MAX >> 1) {
                self.skipped.newer = self.skipped.newer.saturating_add(1);
                return;
            }
        }
        let forkoff = usize::from(ld.get(82).copied().unwrap_or(0)).saturating_mul(8);
        if core.saturating_add(forkoff) > isize {
            self.problem(
                what,
                at,
                format!("fork offset {forkoff} lies outside the inode"),
            );
            return;
        }
        log_dinode_to_disk(ld, dip, lsn, version);
        let litino = isize.saturating_sub(core);
        let dsize = if forkoff > 0 { forkoff } else { litino };
        let asize = litino.saturating_sub(forkoff);
        let mut next = 2usize;
        if fields & (ILOG_DDATA | ILOG_DEXT | ILOG_DBROOT) != 0 {
            if let Some(r) = item.regions.get(next)
                && let Some(fork) = dip.get_mut(core..core.saturating_add(dsize))
            {
                if fields & ILOG_DBROOT != 0 {
                    bmbt_to_bmdr(r, fork, v5);
                } else {
                    let n = r.len().min(fork.len());
                    if let (Some(d), Some(s)) = (fork.get_mut(..n), r.get(..n)) {
                        d.copy_from_slice(s);
                    }
                }
            }
            next = 3;
        }
        if fields & ILOG_AFORK != 0
            && let Some(r) = item.regions.get(next)
        {
            let a = core.saturating_add(forkoff);
            if let Some(fork) = dip.get_mut(a..a.saturating_add(asize)) {
                if fields & ILOG_ABROOT != 0 {
                    bmbt_to_bmdr(r, fork, v5);
                } else {
                    let n = r.len().min(fork.len());
                    if let (Some(d), Some(s)) = (fork.get_mut(..n), r.get(..n)) {
                        d.copy_from_slice(s);
                    }
                }
            }
        }
        if fields & ILOG_DEV != 0
            && let Some(d) = dip.get_mut(core..core.saturating_add(4))
        {
            d.copy_from_slice(&rdev.to_be_bytes());
        }
        if version >= 3 {
            put_crc(dip, DI_CRC_OFF);
        }
        self.ov.write(sub, &buf);
        self.out.inodes = self.out.inodes.saturating_add(1);
    }

    fn icreate(&mut self, item: &Item) {
        let Some(f) = item.regions.first() else {
            return;
        };
        let sb = &self.ov.fs.sb;
        let agno = u64::from(be::u32(f, 4).unwrap_or(0));
        let agbno = u64::from(be::u32(f, 8).unwrap_or(0));
        let count = u64::from(be::u32(f, 12).unwrap_or(0));
        let isize = u64::from(be::u32(f, 16).unwrap_or(0));
        let length = u64::from(be::u32(f, 20).unwrap_or(0));
        let generation = be::u32(f, 24).unwrap_or(0);
        let bs = self.ov.fs.block_size;
        let at = agno
            .saturating_mul(u64::from(sb.sb_agblocks))
            .saturating_add(agbno)
            .saturating_mul(bs);
        if agno >= u64::from(sb.sb_agcount)
            || agbno.saturating_add(length) > u64::from(sb.sb_agblocks)
            || isize != u64::from(sb.sb_inodesize)
            || count == 0
            || count > 1024
            || count.saturating_mul(isize) != length.saturating_mul(bs)
        {
            self.problem(
                "xfs log inode-create item".into(),
                at,
                format!("AG {agno} block {agbno}: {count} inodes of {isize} bytes in {length} blocks do not fit"),
            );
            return;
        }
        let daddr = at / BB;
        let nbb = length.saturating_mul(bs) / BB;
        // Cancels name the inode cluster buffers (a chunk freed since):
        // 8 KiB of 256-byte inodes, scaled by the inode size on v5.
        let mut cluster = 8192u64;
        if sb.is_v5() {
            cluster = cluster.saturating_mul(isize) / 256;
        }
        let cluster_bbs = cluster.max(bs).min(nbb.saturating_mul(BB)).max(BB) / BB;
        let clusters: Vec<u64> = (0..nbb.checked_div(cluster_bbs).unwrap_or(0))
            .map(|i| daddr.saturating_add(i.saturating_mul(cluster_bbs)))
            .collect();
        let cancelled: Vec<bool> = clusters
            .iter()
            .map(|c| self.cancelled(*c, cluster_bbs))
            .collect();
        if self.cancelled(daddr, nbb) || (!cancelled.is_empty() && cancelled.iter().all(|c| *c)) {
            self.skipped.cancelled = self.skipped.cancelled.saturating_add(1);
            return;
        }
        let uuid = if sb.has_incompat(super::sb::incompat::META_UUID) {
            self.ov
                .read(0, 1)
                .ok()
                .and_then(|b| b.get(248..264).map(<[u8]>::to_vec))
                .unwrap_or_else(|| sb.sb_uuid.to_vec())
        } else {
            sb.sb_uuid.to_vec()
        };
        let v5 = sb.is_v5();
        let is = usize::try_from(isize).unwrap_or(512);
        let mut buf = vec![0u8; usize::try_from(length.saturating_mul(bs)).unwrap_or(0)];
        let agino_log = u32::from(sb.sb_agblklog).saturating_add(u32::from(sb.sb_inopblog));
        let first_agino = agbno << sb.sb_inopblog;
        for (i, dip) in buf.chunks_mut(is).enumerate() {
            if let Some(d) = dip.get_mut(0..2) {
                d.copy_from_slice(&DINODE_MAGIC.to_be_bytes());
            }
            if let Some(d) = dip.get_mut(4..5) {
                d.copy_from_slice(&[if v5 { 3 } else { 2 }]);
            }
            if let Some(d) = dip.get_mut(92..96) {
                d.copy_from_slice(&generation.to_be_bytes());
            }
            if let Some(d) = dip.get_mut(96..100) {
                d.copy_from_slice(&u32::MAX.to_be_bytes());
            }
            if v5 {
                let ino = (agno << agino_log) | first_agino.saturating_add(i as u64);
                put_be64(dip, 152, ino);
                if let Some(d) = dip.get_mut(160..176) {
                    d.copy_from_slice(uuid.get(..16).unwrap_or(&[0; 16]));
                }
                put_crc(dip, DI_CRC_OFF);
            }
        }
        let cb = usize::try_from(cluster_bbs.saturating_mul(BB)).unwrap_or(usize::MAX);
        for ((c, data), skip) in clusters.iter().zip(buf.chunks(cb)).zip(&cancelled) {
            if !skip {
                self.ov.write(*c, data);
            }
        }
        self.out.icreates = self.out.icreates.saturating_add(1);
    }
}

/// Stamp `lsn` and the CRC into every recognised v5 block of a buffer.
fn stamp(buf: &mut [u8], lsn: u64, bs: u64) {
    let Some((lsn_off, crc_off)) = lsn_crc_offsets(buf) else {
        return;
    };
    // Remote attribute and symlink blocks carry one header per fs block.
    let per_block = matches!(be::u32(buf, 0), Some(0x5841_524d | 0x5853_4c4d));
    if per_block {
        for b in buf.chunks_mut(usize::try_from(bs).unwrap_or(4096)) {
            if lsn_crc_offsets(b).is_some() {
                put_be64(b, lsn_off, lsn);
                put_crc(b, crc_off);
            }
        }
    } else {
        put_be64(buf, lsn_off, lsn);
        // The superblock and AG headers: the CRC covers their sector.
        let m = be::u32(buf, 0).unwrap_or(0);
        if matches!(m, 0x5841_4746 | 0x5841_4749 | 0x5841_464c | 0x5846_5342) {
            if let Some(s) = buf.get_mut(..512) {
                put_crc(s, crc_off);
            }
        } else {
            put_crc(buf, crc_off);
        }
    }
}

/// The host-endian (little-endian) log dinode `ld` into the big-endian
/// on-disk inode `dip` (`di_next_unlinked` and `di_crc` stay).
fn log_dinode_to_disk(ld: &[u8], dip: &mut [u8], lsn: u64, version: u8) {
    let mut sw = |off: usize, w: usize| {
        if let (Some(s), Some(d)) = (
            ld.get(off..off.saturating_add(w)),
            dip.get_mut(off..off.saturating_add(w)),
        ) {
            for (i, b) in s.iter().rev().enumerate() {
                if let Some(x) = d.get_mut(i) {
                    *x = *b;
                }
            }
        }
    };
    let flags2 = if version >= 3 {
        le::u64(ld, 120).unwrap_or(0)
    } else {
        0
    };
    for (off, w) in [
        (0, 2),
        (2, 2),
        (4, 1),
        (5, 1),
        (6, 2),
        (8, 4),
        (12, 4),
        (16, 4),
        (20, 2),
        (22, 2),
        (56, 8),
        (64, 8),
        (72, 4),
        (76, 4),
        (80, 2),
        (82, 1),
        (83, 1),
        (84, 4),
        (88, 2),
        (90, 2),
        (92, 4),
    ] {
        sw(off, w);
    }
    let mut ts: Vec<usize> = vec![32, 40, 48];
    if version >= 3 {
        ts.push(144);
    }
    for off in ts {
        if flags2 & DIFLAG2_BIGTIME != 0 {
            sw(off, 8);
        } else {
            sw(off, 4);
            sw(off.saturating_add(4), 4);
        }
    }
    let raw = |dip: &mut [u8], from: usize, to: usize| {
        if let (Some(s), Some(d)) = (ld.get(from..to), dip.get_mut(from..to)) {
            d.copy_from_slice(s);
        }
    };
    if version >= 3 {
        if flags2 & DIFLAG2_NREXT64 != 0 {
            let mut sw2 = |off: usize, w: usize| {
                if let (Some(s), Some(d)) = (
                    ld.get(off..off.saturating_add(w)),
                    dip.get_mut(off..off.saturating_add(w)),
                ) {
                    for (i, b) in s.iter().rev().enumerate() {
                        if let Some(x) = d.get_mut(i) {
                            *x = *b;
                        }
                    }
                }
            };
            sw2(24, 8);
        } else {
            raw(dip, 24, 32);
        }
        let mut sw3 = |off: usize, w: usize| {
            if let (Some(s), Some(d)) = (
                ld.get(off..off.saturating_add(w)),
                dip.get_mut(off..off.saturating_add(w)),
            ) {
                for (i, b) in s.iter().rev().enumerate() {
                    if let Some(x) = d.get_mut(i) {
                        *x = *b;
                    }
                }
            }
        };
        sw3(104, 8);
        sw3(120, 8);
        sw3(128, 4);
        sw3(152, 8);
        raw(dip, 132, 144);
        raw(dip, 160, 176);
        put_be64(dip, 112, lsn);
    } else {
        raw(dip, 24, 30);
        if let (Some(s), Some(d)) = (ld.get(30..32), dip.get_mut(30..32)) {
            d.copy_from_slice(&[
                s.get(1).copied().unwrap_or(0),
                s.first().copied().unwrap_or(0),
            ]);
        }
    }
}

/// An in-memory bmbt root block (as logged) into the inode's bmdr root.
fn bmbt_to_bmdr(src: &[u8], dst: &mut [u8], v5: bool) {
    let hdr = if v5 { 72 } else { 24 };
    let level = be::u16(src, 4).unwrap_or(0);
    let numrecs = usize::from(be::u16(src, 6).unwrap_or(0));
    let smax = src.len().saturating_sub(hdr) / 16;
    let dmax = dst.len().saturating_sub(4) / 16;
    let n = numrecs.min(smax).min(dmax);
    dst.fill(0);
    if let Some(d) = dst.get_mut(0..4) {
        let [l0, l1] = level.to_be_bytes();
        let [n0, n1] = u16::try_from(n).unwrap_or(0).to_be_bytes();
        d.copy_from_slice(&[l0, l1, n0, n1]);
    }
    let skeys = hdr;
    let sptrs = hdr.saturating_add(smax.saturating_mul(8));
    let dkeys = 4usize;
    let dptrs = 4usize.saturating_add(dmax.saturating_mul(8));
    let bytes = n.saturating_mul(8);
    let copy = |dst: &mut [u8], d: usize, s: usize| {
        if let (Some(a), Some(b)) = (
            dst.get_mut(d..d.saturating_add(bytes)),
            src.get(s..s.saturating_add(bytes)),
        ) {
            a.copy_from_slice(b);
        }
    };
    copy(dst, dkeys, skeys);
    copy(dst, dptrs, sptrs);
}

/// Replay the dirty internal log of `fs` in memory.
pub(super) fn replay(fs: &Xfs) -> Result<Replay> {
    let h = log::find_head(fs).map_err(|s| Error::Invalid(format!("the XFS log: {s:?}")))?;
    let log = Log {
        fs,
        base: h.base,
        nbb: h.nbb,
    };
    let head = h.head;
    let last = read_record(&log, h.hdr_bb)?;
    let tail_lsn = be::u64(&last.hdr, 24).unwrap_or(0);
    let tail = (tail_lsn & 0xffff_ffff).checked_rem(log.nbb).unwrap_or(0);
    let g = gather(&log, tail, head)?;
    let mut ap = Applier {
        ov: Overlay {
            fs,
            sectors: BTreeMap::new(),
            limit_hit: false,
        },
        cancels: HashMap::new(),
        out: Replay::default(),
        skipped: Skipped::default(),
    };
    ap.out.notes = g.notes;
    // Pass 1: the cancelled buffers.
    for t in &g.committed {
        for it in &t.items {
            let Some(f) = it.regions.first() else {
                continue;
            };
            if le::u16(f, 0) == Some(li::BUF) && le::u16(f, 4).unwrap_or(0) & XFS_BLF_CANCEL != 0 {
                let key = (
                    le::u64(f, 8).unwrap_or(0),
                    u64::from(le::u16(f, 6).unwrap_or(0)),
                );
                let n = ap.cancels.entry(key).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
    }
    // Pass 2, in commit order, each transaction reordered as the kernel
    // does: buffers, inode buffers, the other items, cancel records last.
    let mut done_intents = 0usize;
    let mut incomplete = 0usize;
    for t in &g.committed {
        ap.out.transactions = ap.out.transactions.saturating_add(1);
        for pass in 0..4u8 {
            for it in &t.items {
                let Some(f) = it.regions.first() else {
                    continue;
                };
                if usize::from(it.total) != it.regions.len() {
                    if pass == 0 {
                        incomplete = incomplete.saturating_add(1);
                    }
                    continue;
                }
                let ty = le::u16(f, 0).unwrap_or(0);
                let blf = le::u16(f, 4).unwrap_or(0);
                let want = match ty {
                    li::BUF if blf & XFS_BLF_CANCEL != 0 => 3,
                    li::BUF if blf & XFS_BLF_INODE_BUF != 0 => 1,
                    li::BUF | li::ICREATE => 0,
                    _ => 2,
                };
                if want != pass {
                    continue;
                }
                match ty {
                    li::BUF => ap.buffer(it, t.lsn),
                    li::ICREATE => ap.icreate(it),
                    li::INODE => ap.inode(it, t.lsn),
                    li::DQUOT | li::QUOTAOFF => {
                        ap.skipped.quota = ap.skipped.quota.saturating_add(1);
                    }
                    li::EFI | li::RUI | li::CUI | li::BUI | li::ATTRI | li::XMI => {
                        ap.skipped.intents = ap.skipped.intents.saturating_add(1);
                    }
                    li::EFD | li::RUD | li::CUD | li::BUD | li::ATTRD | li::XMD => {
                        done_intents = done_intents.saturating_add(1);
                    }
                    other => {
                        if ap.out.problems.len() < 200 {
                            ap.out.problems.push(Problem::of(
                                "xfs log",
                                format!("unknown log item type {other:#06x} in the transaction at LSN {:#x}: skipped (the kernel's recovery fails the mount on it)", t.lsn),
                            ));
                        }
                    }
                }
            }
        }
    }
    let s = &ap.skipped;
    if s.intents > 0 {
        let open = s.intents.saturating_sub(done_intents);
        ap.out.notes.push(format!(
            "{} intent items not replayed ({open} without a done item): the kernel finishes unfinished intents at mount (freeing extents, updating reverse-mapping and reference-count btrees, file mappings), so free-space counts and, rarely, a file's mapping may differ from a kernel mount",
            s.intents
        ));
    }
    if s.quota > 0 {
        ap.out.notes.push(format!(
            "{} quota items not replayed (quota usage is not shown)",
            s.quota
        ));
    }
    if incomplete > 0 {
        ap.out.problems.push(Problem::of(
            "xfs log",
            format!("{incomplete} log items with missing regions skipped"),
        ));
    }
    if ap.ov.limit_hit {
        ap.out.problems.push(Problem::of(
            "xfs log",
            format!("the replay changed more than {MAX_OVERLAY_SECTORS} sectors: the rest is not replayed"),
        ));
    }
    if let Some(p) = g.stopped {
        ap.out.problems.push(p);
    }
    ap.out.sectors = ap.ov.sectors;
    Ok(ap.out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn log_dinode_fields_turn_big_endian() {
        let mut ld = vec![0u8; 176];
        ld[0..2].copy_from_slice(&DINODE_MAGIC.to_le_bytes());
        ld[2..4].copy_from_slice(&0o100644u16.to_le_bytes());
        ld[4] = 3;
        ld[56..64].copy_from_slice(&12345u64.to_le_bytes());
        ld[32..36].copy_from_slice(&7u32.to_le_bytes());
        let mut dip = vec![0u8; 512];
        log_dinode_to_disk(&ld, &mut dip, 0x1_0000_0002, 3);
        assert_eq!(be::u16(&dip, 0), Some(DINODE_MAGIC));
        assert_eq!(be::u16(&dip, 2), Some(0o100644));
        assert_eq!(be::u64(&dip, 56), Some(12345));
        assert_eq!(be::u32(&dip, 32), Some(7));
        assert_eq!(be::u64(&dip, 112), Some(0x1_0000_0002));
    }

    #[test]
    fn split_transaction_header_and_regions_join() {
        let mut t = Trans::default();
        let th = [XFS_TRANS_HEADER_MAGIC.to_le_bytes(), [0; 4], [0; 4], [0; 4]].concat();
        add_region(&mut t, &th[..10]).unwrap();
        add_cont(&mut t, &th[10..]).unwrap();
        assert_eq!(t.header.len(), 16);
        let mut fmt = vec![0u8; 8];
        fmt[0..2].copy_from_slice(&li::BUF.to_le_bytes());
        fmt[2..4].copy_from_slice(&2u16.to_le_bytes());
        add_region(&mut t, &fmt).unwrap();
        add_region(&mut t, &[1; 64]).unwrap();
        add_cont(&mut t, &[2; 64]).unwrap();
        assert_eq!(t.items.len(), 1);
        assert_eq!(t.items[0].regions[1].len(), 128);
        assert!(add_region(&mut Trans::default(), &[0; 16]).is_err());
    }
}
