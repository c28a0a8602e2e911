//! Whether the internal log is clean, found the way log recovery starts:
//! the head is where the cycle number stamped in every 512-byte log block
//! drops; the last record before it is an unmount record when the
//! filesystem was unmounted cleanly. [`super::replay`] replays it.

use super::Xfs;
use crate::io::be;

/// `h_magicno` of a log record header.
pub(super) const XLOG_HEADER_MAGIC_NUM: u32 = 0xFEED_BABE;
/// `oh_flags` bit of the unmount record's operation.
const XLOG_UNMOUNT_TRANS: u8 = 0x20;
/// Bytes of record data one header block describes (v2 logs).
pub(super) const XLOG_HEADER_CYCLE_SIZE: u32 = 32 * 1024;
/// A basic block.
pub(super) const BB: u64 = 512;
/// How far back from the head a record header is looked for (basic blocks).
const MAX_HEADER_SEARCH: u64 = 8192;

/// What the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogState {
    /// The last record is an unmount record.
    Clean,
    /// Changes in the log are not on disk yet.
    Dirty,
    /// The log is on another device.
    External,
    /// Could not tell, and why.
    Unknown(String),
}

/// Where the head of the internal log is.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// Byte position of the log.
    pub base: u64,
    /// Its length in basic blocks.
    pub nbb: u64,
    /// The first block after the last complete record.
    pub head: u64,
    /// The last record header before the head.
    pub hdr_bb: u64,
    /// That header block.
    pub hdr: [u8; 512],
}

/// Check the internal log of `fs`.
pub(super) fn state(fs: &Xfs) -> LogState {
    let h = match find_head(fs) {
        Ok(h) => h,
        Err(s) => return s,
    };
    let hdr = h.hdr;
    let num_logops = be::u32(&hdr, 40).unwrap_or(0);
    let hblks = header_blocks(&hdr);
    let mut data = [0u8; 512];
    let pos = h.base + ((h.hdr_bb + hblks) % h.nbb) * 512;
    if fs.read_meta(pos, &mut data, "xfs log").is_err() {
        return LogState::Unknown("the log cannot be read".into());
    }
    // The operation header: oh_tid, oh_len, oh_clientid, oh_flags.
    if num_logops == 1 && data[9] & XLOG_UNMOUNT_TRANS != 0 {
        LogState::Clean
    } else {
        LogState::Dirty
    }
}

fn header_blocks(hdr: &[u8]) -> u64 {
    let version = be::u32(hdr, 8).unwrap_or(0);
    let h_size = be::u32(hdr, 320).unwrap_or(0);
    if version & 2 != 0 && h_size > XLOG_HEADER_CYCLE_SIZE {
        u64::from(h_size.div_ceil(XLOG_HEADER_CYCLE_SIZE))
    } else {
        1
    }
}

/// Find the head of the log and the last record header before it, as the
/// kernel's `xlog_find_head` does: the cycle drop, then blocks of the old
/// cycle left inside the last writes, then a last record that does not
/// end at the head (cut short) is dropped.
pub(super) fn find_head(fs: &Xfs) -> Result<Head, LogState> {
    let sb = &fs.sb;
    if sb.sb_logstart == 0 {
        return Err(LogState::External);
    }
    let Some(start) = sb.fsb_to_block(sb.sb_logstart) else {
        return Err(LogState::Unknown(format!(
            "sb_logstart {} lies outside the filesystem",
            sb.sb_logstart
        )));
    };
    let base = start * fs.block_size;
    let nbb = u64::from(sb.sb_logblocks) * fs.block_size / 512;
    if nbb < 2 || start + u64::from(sb.sb_logblocks) > sb.sb_dblocks {
        return Err(LogState::Unknown(format!(
            "a log of {} blocks at block {start} does not fit the filesystem",
            sb.sb_logblocks
        )));
    }
    let unreadable = || LogState::Unknown("the log cannot be read".into());
    let read = |bb: u64| -> Option<[u8; 512]> {
        let mut b = [0u8; 512];
        fs.src.read_exact_at(base + (bb % nbb) * 512, &mut b).ok()?;
        Some(b)
    };
    // A record header starts with the magic and holds its cycle next; every
    // other log block starts with the cycle that wrote it.
    let cycle = |bb: u64| {
        read(bb).and_then(|b| match be::u32(&b, 0)? {
            XLOG_HEADER_MAGIC_NUM => be::u32(&b, 4),
            c => Some(c),
        })
    };
    let (Some(first), Some(last)) = (cycle(0), cycle(nbb - 1)) else {
        return Err(unreadable());
    };
    // The head: the first block of the older cycle (or the log's start
    // when the whole log carries one cycle).
    let mut head = if first == last {
        0
    } else if last.wrapping_add(1) == first {
        let (mut lo, mut hi) = (0u64, nbb - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match cycle(mid) {
                Some(c) if c == first => lo = mid,
                Some(_) => hi = mid,
                None => return Err(unreadable()),
            }
        }
        hi
    } else {
        return Err(LogState::Unknown(format!(
            "cycle {first} at the log's start and {last} at its end"
        )));
    };
    // Writes in flight may leave blocks of the old cycle before the head:
    // the head is the first of them (xlog_find_verify_cycle).
    if head > 0 {
        let window = MAX_HEADER_SEARCH.min(head);
        for bb in head - window..head {
            match cycle(bb) {
                Some(c) if c != first => {
                    head = bb;
                    break;
                }
                Some(_) => {}
                None => return Err(unreadable()),
            }
        }
    }
    // The last record header before the head; a record that does not end
    // at the head was cut short and the head moves back to it.
    for _ in 0..2 {
        let mut found = None;
        for back in 1..=MAX_HEADER_SEARCH.min(nbb) {
            let bb = (head + nbb - back) % nbb;
            let Some(b) = read(bb) else {
                return Err(unreadable());
            };
            if be::u32(&b, 0) == Some(XLOG_HEADER_MAGIC_NUM) {
                found = Some((bb, b, back));
                break;
            }
        }
        let Some((bb, hdr, back)) = found else {
            return Err(LogState::Unknown(
                "no record header before the log's head".into(),
            ));
        };
        let len = u64::from(be::u32(&hdr, 12).unwrap_or(0));
        let want = header_blocks(&hdr) + len.div_ceil(512);
        if want == back {
            return Ok(Head {
                base,
                nbb,
                head: head % nbb,
                hdr_bb: bb,
                hdr,
            });
        }
        head = bb;
    }
    Err(LogState::Unknown(
        "the last records before the log's head are cut short".into(),
    ))
}
