//! JBD2 journal recovery, in memory.
//!
//! Recovery follows the kernel's three passes: scan the log from `s_start`
//! for transactions that end in a valid commit block (stopping at the first
//! block that is not the next expected one, or a bad checksum), collect the
//! revoke records of those transactions, then map every tagged block to the
//! journal block holding its newest committed copy unless a revoke record at
//! least as new cancels it. Nothing is written: [`super::Ext`] consults the
//! resulting overlay on every read. Everything on disk here is big-endian.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::inode::Inode;
use super::{Ext, JournalCopy, RunKind, csum};
use crate::error::{Error, Result};
use crate::io::{ReadAt, be};
use crate::problem::Problem;

/// `h_magic` of every journal metadata block.
pub(super) const JBD2_MAGIC: u32 = 0xC03B_3998;
const DESCRIPTOR_BLOCK: u32 = 1;
const COMMIT_BLOCK: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOKE_BLOCK: u32 = 5;

const COMPAT_CHECKSUM: u32 = 0x1;
const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const KNOWN_INCOMPAT: u32 = INCOMPAT_REVOKE
    | INCOMPAT_64BIT
    | INCOMPAT_ASYNC_COMMIT
    | INCOMPAT_CSUM_V2
    | INCOMPAT_CSUM_V3
    | INCOMPAT_FAST_COMMIT;

/// Most revoke records kept (a hostile log could hold hundreds of millions).
const MAX_REVOKES: usize = 1 << 20;

const FLAG_ESCAPE: u32 = 1;
const FLAG_SAME_UUID: u32 = 2;
const FLAG_LAST_TAG: u32 = 8;

/// The outcome of an in-memory recovery.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Filesystem block → where its replayed copy is.
    pub overlay: BTreeMap<u64, JournalCopy>,
    /// Committed transactions replayed.
    pub transactions: u64,
    /// Facts for the operator.
    pub notes: Vec<String>,
    /// Damage found in the journal.
    pub problems: Vec<Problem>,
}

/// One tagged block of a transaction.
struct Tag {
    fs_block: u64,
    /// Logical journal block holding the copy.
    jblock: u64,
    flags: u32,
    checksum: u32,
}

struct Transaction {
    sequence: u32,
    tags: Vec<Tag>,
    revokes: Vec<u64>,
}

/// Whether transaction id `a` is after `b` (ids wrap around).
fn tid_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Where a journal's blocks are.
pub(super) enum Log {
    /// In the filesystem, mapped by the journal inode.
    Inode(Inode),
    /// On an external journal device (journal_dev), numbered from its start.
    Device(Arc<dyn ReadAt>),
}

struct Journal<'a> {
    ext: &'a Ext,
    log: Log,
    bs: u64,
    first: u64,
    last: u64,
    incompat: u32,
    compat: u32,
    seed: u32,
}

impl Journal<'_> {
    fn csum_v2or3(&self) -> bool {
        self.incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0
    }

    fn tag_bytes(&self) -> usize {
        if self.incompat & INCOMPAT_CSUM_V3 != 0 {
            return 16;
        }
        let mut sz = 12;
        if self.incompat & INCOMPAT_CSUM_V2 != 0 {
            sz += 2;
        }
        if self.incompat & INCOMPAT_64BIT != 0 {
            sz
        } else {
            sz - 4
        }
    }

    /// Position of logical journal block `l` (in the volume, or on the journal device).
    fn position(&self, l: u64) -> Result<u64> {
        let inode = match &self.log {
            Log::Inode(inode) => inode,
            Log::Device(dev) => {
                return l
                    .checked_mul(self.bs)
                    .filter(|p| p.saturating_add(self.bs) <= dev.size())
                    .ok_or_else(|| {
                        Error::corrupt(
                            "jbd2 journal device",
                            0,
                            format!("journal block {l} lies past the device's end"),
                        )
                    });
            }
        };
        match self.ext.map_block(inode, l)?.kind {
            RunKind::Data(p) => Ok(p * self.bs),
            _ => Err(Error::corrupt(
                "jbd2 journal",
                inode.pos,
                format!("journal block {l} is not allocated"),
            )),
        }
    }

    fn read(&self, l: u64) -> Result<Vec<u8>> {
        let pos = self.position(l)?;
        let mut buf = vec![0u8; self.bs as usize];
        let src: &dyn ReadAt = match &self.log {
            Log::Inode(_) => &*self.ext.src,
            Log::Device(dev) => &**dev,
        };
        src.read_exact_at(pos, &mut buf)
            .map_err(|e| Error::io(format!("journal block {l} at byte {pos}"), e))?;
        Ok(buf)
    }

    fn wrap(&self, l: u64) -> u64 {
        if l >= self.last {
            l - (self.last - self.first)
        } else {
            l
        }
    }

    /// A descriptor or revoke block's tail checksum is right.
    fn tail_ok(&self, block: &[u8]) -> bool {
        if !self.csum_v2or3() {
            return true;
        }
        let t = block.len() - 4;
        let stored = be::u32(block, t).unwrap_or(0);
        let mut c = csum::crc32c(self.seed, &block[..t]);
        c = csum::crc32c(c, &[0; 4]);
        c == stored
    }
}

/// Smallest journal jbd2 accepts (`JBD2_MIN_JOURNAL_BLOCKS`).
const JBD2_MIN_JOURNAL_BLOCKS: u64 = 1024;
/// `s_jnl_backup_type` when `s_jnl_blocks` backs up the journal inode.
const EXT3_JNL_BACKUP_BLOCKS: u8 = 1;

/// Recover the journal of `ext` in memory. A damaged journal inode is
/// replaced by the superblock's backup of it (`s_jnl_blocks`) when there
/// is one, as e2fsck does.
pub(super) fn replay(ext: &Ext) -> Result<Replay> {
    let inum = ext.sb.s_journal_inum;
    let primary = ext
        .read_inode(inum)
        .and_then(|i| check_journal_inode(ext, &i, true).map(|()| i));
    match primary {
        Ok(inode) => replay_from(ext, Log::Inode(inode)),
        Err(e) => {
            let Some(backup) = backup_inode(ext) else {
                return Err(e);
            };
            let mut out = replay_from(ext, Log::Inode(backup))?;
            out.problems.insert(
                0,
                format!(
                    "{e}; the journal was read through the superblock's backup of its block map (s_jnl_blocks), as e2fsck does"
                )
                .into(),
            );
            Ok(out)
        }
    }
}

/// Whether journal inode `inode` can be used: a regular file in use,
/// large enough, its checksum right (metadata_csum), its first block mapped.
fn check_journal_inode(ext: &Ext, inode: &Inode, verify_csum: bool) -> Result<()> {
    let bad = |why: String| {
        Err(Error::corrupt(
            "ext journal inode",
            inode.pos,
            format!("inode {}: {why}", inode.ino),
        ))
    };
    if verify_csum && ext.sb.has_metadata_csum() {
        let want = super::inode::inode_checksum(ext.csum_seed, inode.ino, &inode.raw);
        if want != inode.stored_checksum() {
            return bad(format!(
                "checksum mismatch (stored {:#x}, computed {want:#x})",
                inode.stored_checksum()
            ));
        }
    }
    if inode.file_type() != crate::fs::FileType::Regular || inode.i_links_count == 0 {
        return bad(format!(
            "not a regular file in use (mode {:o}, links {})",
            inode.i_mode, inode.i_links_count
        ));
    }
    let blocks = inode.i_size / ext.block_size;
    if blocks < JBD2_MIN_JOURNAL_BLOCKS {
        return bad(format!(
            "{blocks} blocks, fewer than a journal has ({JBD2_MIN_JOURNAL_BLOCKS})"
        ));
    }
    match ext.map_block(inode, 0)?.kind {
        RunKind::Data(_) => Ok(()),
        _ => bad("its first block is not allocated".into()),
    }
}

/// The journal inode as the superblock's backup (`s_jnl_blocks`) describes
/// it, if there is a backup; its position is that of the backup, so errors
/// about its block map point there.
fn backup_inode(ext: &Ext) -> Option<Inode> {
    let sb = &ext.sb;
    if sb.s_jnl_backup_type != EXT3_JNL_BACKUP_BLOCKS {
        return None;
    }
    let mut raw = vec![0u8; usize::from(sb.s_inode_size)];
    raw[0..2].copy_from_slice(&0o100600u16.to_le_bytes());
    raw[0x1A..0x1C].copy_from_slice(&1u16.to_le_bytes());
    raw[0x4..0x8].copy_from_slice(&sb.s_jnl_blocks[16].to_le_bytes());
    raw[0x6C..0x70].copy_from_slice(&sb.s_jnl_blocks[15].to_le_bytes());
    for (i, b) in sb.s_jnl_blocks[..15].iter().enumerate() {
        let o = super::inode::I_BLOCK + 4 * i;
        raw[o..o + 4].copy_from_slice(&b.to_le_bytes());
    }
    // Extent node checksums are seeded with the inode's generation.
    if let Ok(damaged) = ext.read_inode(sb.s_journal_inum) {
        raw[0x64..0x68].copy_from_slice(&damaged.i_generation.to_le_bytes());
    }
    if sb.s_jnl_blocks[0] & 0xFFFF == u32::from(super::map::EXT4_EXT_MAGIC) {
        raw[0x20..0x24].copy_from_slice(&super::inode::flags::EXTENTS.to_le_bytes());
    }
    let pos = (sb.pos + 0x10C).checked_sub(super::inode::I_BLOCK as u64)?;
    let (inode, _) = Inode::parse(sb.s_journal_inum, pos, raw, false, false, sb.is_64bit());
    check_journal_inode(ext, &inode, false).ok()?;
    Some(inode)
}

/// Recover the journal held by `log` in memory.
pub(super) fn replay_from(ext: &Ext, log: Log) -> Result<Replay> {
    let mut out = Replay::default();
    let bs = ext.block_size;
    // The journal superblock: block 0 of an inode journal; on a journal
    // device, the block after the one holding its ext superblock.
    let (sb_block, log_blocks, external) = match &log {
        Log::Inode(inode) => (0, inode.i_size / bs, false),
        Log::Device(dev) => (1024 / bs + 1, dev.size() / bs, true),
    };
    let mut j = Journal {
        ext,
        log,
        bs,
        first: 0,
        last: 0,
        incompat: 0,
        compat: 0,
        seed: 0,
    };
    let sb = j.read(sb_block)?;
    let jpos = j.position(sb_block)?;
    const S: &str = "jbd2 journal superblock";
    if be::u32(&sb, 0) != Some(JBD2_MAGIC) {
        return Err(Error::corrupt(S, jpos, "bad h_magic (expected 0xc03b3998)"));
    }
    let blocktype = be::u32(&sb, 4).unwrap_or(0);
    if blocktype != SUPERBLOCK_V1 && blocktype != SUPERBLOCK_V2 {
        return Err(Error::corrupt(
            S,
            jpos + 4,
            format!("h_blocktype {blocktype} is not a superblock"),
        ));
    }
    let s_blocksize = u64::from(be::u32(&sb, 0xC).unwrap_or(0));
    let s_maxlen = u64::from(be::u32(&sb, 0x10).unwrap_or(0));
    let s_first = u64::from(be::u32(&sb, 0x14).unwrap_or(0));
    let s_sequence = be::u32(&sb, 0x18).unwrap_or(0);
    let s_start = u64::from(be::u32(&sb, 0x1C).unwrap_or(0));
    if s_blocksize != bs {
        return Err(Error::corrupt(
            S,
            jpos + 0xC,
            format!("s_blocksize {s_blocksize} differs from the filesystem's {bs}"),
        ));
    }
    let inode_blocks = log_blocks;
    if s_first <= sb_block || s_first >= s_maxlen || s_maxlen > inode_blocks {
        return Err(Error::corrupt(
            S,
            jpos + 0x10,
            format!(
                "s_first {s_first} / s_maxlen {s_maxlen} do not fit a journal of {inode_blocks} blocks"
            ),
        ));
    }
    if s_start == 0 {
        out.notes
            .push("the journal needed no recovery (it is empty)".into());
        return Ok(out);
    }
    if blocktype == SUPERBLOCK_V2 {
        j.compat = be::u32(&sb, 0x24).unwrap_or(0);
        j.incompat = be::u32(&sb, 0x28).unwrap_or(0);
    }
    let unknown = j.incompat & !KNOWN_INCOMPAT;
    if unknown != 0 {
        out.problems.push(Problem::at("jbd2 journal superblock", jpos + 0x28, format!("unknown incompatible features {unknown:#x}; journal not replayed, showing the on-disk state")));
        return Ok(out);
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&sb[0x30..0x40]);
    if external {
        // The kernel loads an external journal only for its one user.
        let users = be::u32(&sb, 0x40).unwrap_or(0);
        if uuid != ext.sb.s_journal_uuid || users > 1 {
            return Err(Error::corrupt(
                S,
                jpos + 0x30,
                format!(
                    "journal UUID {} (the filesystem wants {}), {users} users: not this filesystem's journal alone",
                    super::superblock::uuid_text(&uuid),
                    super::superblock::uuid_text(&ext.sb.s_journal_uuid)
                ),
            ));
        }
    }
    j.seed = csum::crc32c(!0, &uuid);
    if j.csum_v2or3() {
        let stored = be::u32(&sb, 0xFC).unwrap_or(0);
        let mut c = csum::crc32c(!0, &sb[..0xFC]);
        c = csum::crc32c(c, &[0; 4]);
        c = csum::crc32c(c, &sb[0x100..1024]);
        if c != stored {
            // The kernel refuses to load such a journal; e2fsck clears it.
            return Err(Error::corrupt(
                S,
                jpos + 0xFC,
                format!("checksum mismatch (stored {stored:#010x}, computed {c:#010x})"),
            ));
        }
    }
    j.first = s_first;
    j.last = s_maxlen;
    if j.incompat & INCOMPAT_FAST_COMMIT != 0 {
        let fc = u64::from(be::u32(&sb, 0x54).unwrap_or(0));
        let fc = if fc == 0 { 256 } else { fc };
        if fc < s_maxlen - s_first {
            j.last = s_maxlen - fc;
        }
    }
    if s_start < j.first || s_start >= j.last {
        return Err(Error::corrupt(
            S,
            jpos + 0x1C,
            format!("s_start {s_start} is outside the log"),
        ));
    }
    let txs = scan(&j, s_start, s_sequence, &mut out)?;
    // Revoke records of committed transactions: newest sequence per block.
    let mut revoked: HashMap<u64, u32> = HashMap::new();
    for t in &txs {
        for &b in &t.revokes {
            revoked
                .entry(b)
                .and_modify(|s| {
                    if tid_gt(t.sequence, *s) {
                        *s = t.sequence;
                    }
                })
                .or_insert(t.sequence);
        }
    }
    for t in &txs {
        for tag in &t.tags {
            if let Some(&rs) = revoked.get(&tag.fs_block)
                && !tid_gt(t.sequence, rs)
            {
                continue;
            }
            if tag.fs_block >= ext.sb.s_blocks_count {
                out.problems.push(Problem::of(
                    format!("jbd2 transaction {}", t.sequence),
                    format!(
                        "block {} lies outside the filesystem; not replayed",
                        tag.fs_block
                    ),
                ));
                continue;
            }
            let pos = j.position(tag.jblock)?;
            if j.csum_v2or3() {
                let data = j.read(tag.jblock)?;
                let mut c = csum::crc32c(j.seed, &t.sequence.to_be_bytes());
                c = csum::crc32c(c, &data);
                let ok = if j.incompat & INCOMPAT_CSUM_V3 != 0 {
                    c == tag.checksum
                } else {
                    (c & 0xffff) == tag.checksum & 0xffff
                };
                if !ok {
                    out.problems.push(Problem::of(
                        format!("jbd2 transaction {}", t.sequence),
                        format!(
                            "copy of block {} at byte {pos} has a bad checksum; not replayed",
                            tag.fs_block
                        ),
                    ));
                    continue;
                }
            }
            out.overlay.insert(
                tag.fs_block,
                JournalCopy {
                    pos,
                    external,
                    escaped: tag.flags & FLAG_ESCAPE != 0,
                },
            );
        }
    }
    out.transactions = txs.len() as u64;
    Ok(out)
}

/// Pass 1: the committed transactions from `start`.
fn scan(j: &Journal<'_>, start: u64, sequence: u32, out: &mut Replay) -> Result<Vec<Transaction>> {
    let bs = j.bs as usize;
    let log_len = j.last - j.first;
    let tail = if j.csum_v2or3() { 4 } else { 0 };
    let tag_bytes = j.tag_bytes();
    let is64 = j.incompat & INCOMPAT_64BIT != 0;
    let v1 = j.compat & COMPAT_CHECKSUM != 0;
    let mut txs = Vec::new();
    let mut cur = Transaction {
        sequence,
        tags: Vec::new(),
        revokes: Vec::new(),
    };
    let mut next = start;
    let mut visited = 0u64;
    let mut crc32_sum = !0u32;
    let mut revokes = 0usize;
    loop {
        if visited > log_len {
            out.problems
                .push("jbd2 journal: the log wraps onto itself; recovery stopped".into());
            break;
        }
        let block = j.read(next)?;
        let pos = j.position(next)?;
        if be::u32(&block, 0) != Some(JBD2_MAGIC) || be::u32(&block, 8) != Some(cur.sequence) {
            break;
        }
        let blocktype = be::u32(&block, 4).unwrap_or(0);
        match blocktype {
            DESCRIPTOR_BLOCK => {
                if !j.tail_ok(&block) {
                    out.problems.push(format!(
                        "jbd2 descriptor block at byte {pos} (transaction {}): checksum mismatch; recovery stops here",
                        cur.sequence
                    ).into());
                    break;
                }
                if v1 {
                    crc32_sum = csum::crc32_be(crc32_sum, &block);
                }
                let mut off = 12usize;
                let mut data = j.wrap(next + 1);
                let mut count = 0u64;
                while off + tag_bytes <= bs - tail {
                    let lo = u64::from(be::u32(&block, off).unwrap_or(0));
                    let (flags, checksum) = if tag_bytes == 16 {
                        (
                            be::u32(&block, off + 4).unwrap_or(0),
                            be::u32(&block, off + 12).unwrap_or(0),
                        )
                    } else {
                        (
                            u32::from(be::u16(&block, off + 6).unwrap_or(0)),
                            u32::from(be::u16(&block, off + 4).unwrap_or(0)),
                        )
                    };
                    let hi = if is64 {
                        u64::from(be::u32(&block, off + 8).unwrap_or(0))
                    } else {
                        0
                    };
                    if v1 {
                        crc32_sum = csum::crc32_be(crc32_sum, &j.read(data)?);
                    }
                    cur.tags.push(Tag {
                        fs_block: lo | hi << 32,
                        jblock: data,
                        flags,
                        checksum,
                    });
                    data = j.wrap(data + 1);
                    count += 1;
                    off += tag_bytes;
                    if flags & FLAG_SAME_UUID == 0 {
                        off += 16;
                    }
                    if flags & FLAG_LAST_TAG != 0 || count > log_len {
                        break;
                    }
                }
                visited += 1 + count;
                next = data;
            }
            COMMIT_BLOCK => {
                let valid = if j.csum_v2or3() {
                    let stored = be::u32(&block, 0x10).unwrap_or(0);
                    let mut c = csum::crc32c(j.seed, &block[..0x10]);
                    c = csum::crc32c(c, &[0; 4]);
                    c = csum::crc32c(c, &block[0x14..]);
                    c == stored
                } else if v1 {
                    let ctype = block[0xC];
                    let csize = block[0xD];
                    let found = be::u32(&block, 0x10).unwrap_or(0);
                    (ctype == 1 && csize == 4 && found == crc32_sum) || (ctype == 0 && csize == 0)
                } else {
                    true
                };
                if !valid {
                    out.problems.push(format!(
                        "jbd2 commit block at byte {pos} (transaction {}): checksum mismatch; that transaction is not replayed",
                        cur.sequence
                    ).into());
                    break;
                }
                crc32_sum = !0;
                let seq = cur.sequence.wrapping_add(1);
                txs.push(std::mem::replace(
                    &mut cur,
                    Transaction {
                        sequence: seq,
                        tags: Vec::new(),
                        revokes: Vec::new(),
                    },
                ));
                visited += 1;
                next = j.wrap(next + 1);
            }
            REVOKE_BLOCK => {
                if !j.tail_ok(&block) {
                    out.problems.push(format!(
                        "jbd2 revoke block at byte {pos} (transaction {}): checksum mismatch; recovery stops here",
                        cur.sequence
                    ).into());
                    break;
                }
                let r_count = be::u32(&block, 0xC).unwrap_or(0) as usize;
                let rec = if is64 { 8 } else { 4 };
                if r_count > bs - tail || r_count < 16 {
                    out.problems.push(Problem::at(
                        "jbd2 revoke block",
                        pos,
                        format!("r_count {r_count} does not fit; recovery stops here"),
                    ));
                    break;
                }
                revokes += (r_count - 16) / rec;
                if revokes > MAX_REVOKES {
                    out.problems.push(Problem::at(
                        "jbd2 revoke block",
                        pos,
                        format!("more than {MAX_REVOKES} revoke records; recovery stops here"),
                    ));
                    break;
                }
                let mut off = 16;
                while off + rec <= r_count {
                    let b = if is64 {
                        be::u64(&block, off).unwrap_or(0)
                    } else {
                        u64::from(be::u32(&block, off).unwrap_or(0))
                    };
                    cur.revokes.push(b);
                    off += rec;
                }
                visited += 1;
                next = j.wrap(next + 1);
            }
            _ => break,
        }
    }
    if !cur.tags.is_empty() || !cur.revokes.is_empty() {
        out.notes.push(format!(
            "jbd2 transaction {} has no commit block: not replayed (as the kernel does)",
            cur.sequence
        ));
    }
    Ok(txs)
}

#[cfg(test)]
mod tests {
    use super::tid_gt;

    #[test]
    fn transaction_ids_wrap() {
        assert!(tid_gt(2, 1));
        assert!(!tid_gt(1, 1));
        assert!(!tid_gt(1, 2));
        assert!(tid_gt(0, u32::MAX));
        assert!(tid_gt(5, u32::MAX - 5));
    }
}
