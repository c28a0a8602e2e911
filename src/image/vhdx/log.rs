//! VHDX log replay, in memory (MS-VHDX section 2.3).
//!
//! The log is a circular buffer of entries; each entry (header `loge`,
//! CRC-32C over the whole entry) carries data descriptors (a 4 KiB sector
//! to write at a file offset) and zero descriptors (a range to zero). The
//! active sequence is the run of valid entries with the log GUID and
//! consecutive sequence numbers, each following the previous one in the
//! log, whose last (head) entry has the highest sequence number and whose
//! head's tail field points at the run's first entry. Its descriptors are
//! applied, in order, to an [`Overlay`] of the file; the file itself is
//! never written.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Header, crc_without};
use crate::error::{Error, Result};
use crate::io::{ReadAt, le, past_end, read_vec};

const SECTOR: u64 = 4096;
/// The largest log read.
const MAX_LOG: u64 = 256 << 20;
/// The most descriptors one entry may carry.
const MAX_DESCRIPTORS: u32 = 1 << 16;

/// One write the log replays.
#[derive(Debug, Clone)]
enum Write {
    /// 4 KiB of data at a file offset.
    Data(u64, Arc<[u8]>),
    /// A range of zeros (offset, length).
    Zero(u64, u64),
}

/// The file as the log's replayed writes leave it.
pub struct Overlay {
    file: Arc<dyn ReadAt>,
    writes: Vec<Write>,
    size: u64,
}

impl ReadAt for Overlay {
    // Every range below lies within `buf` or a write: checked by the bounds
    // computed just before it.
    #[allow(clippy::indexing_slicing)]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        let fsize = self.file.size();
        let have = fsize.saturating_sub(offset).min(buf.len() as u64) as usize;
        if have > 0 {
            self.file.read_exact_at(offset, &mut buf[..have])?;
        }
        buf[have..].fill(0);
        for w in &self.writes {
            let (at, len) = match w {
                Write::Data(at, d) => (*at, d.len() as u64),
                Write::Zero(at, len) => (*at, *len),
            };
            let (s, e) = (at.max(offset), at.saturating_add(len).min(end));
            if s >= e {
                continue;
            }
            let dst = &mut buf[(s - offset) as usize..(e - offset) as usize];
            match w {
                Write::Data(_, d) => dst.copy_from_slice(&d[(s - at) as usize..(e - at) as usize]),
                Write::Zero(..) => dst.fill(0),
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// An entry found in the log.
#[derive(Debug)]
struct Entry {
    offset: u64,
    length: u64,
    tail: u64,
    sequence: u64,
    last_file_offset: u64,
    writes: Vec<Write>,
}

/// Decode the entry at `off` of `log` (the whole log, read in memory); `None` when
/// no valid entry starts there.
fn entry_at(log: &[u8], off: u64, guid: &[u8; 16]) -> Option<Entry> {
    let n = log.len() as u64;
    let head = log.get(off as usize..)?;
    if !head.starts_with(b"loge") {
        return None;
    }
    let length = u64::from(le::u32(head, 8)?);
    if length == 0 || length % SECTOR != 0 || length > n {
        return None;
    }
    // The entry, wrapping round the end of the log.
    let mut e = Vec::with_capacity(length as usize);
    let first = (n - off).min(length) as usize;
    e.extend_from_slice(head.get(..first)?);
    e.extend_from_slice(log.get(..length as usize - first)?);
    if le::u32(&e, 4)? != crc_without(&e, 4) || e.get(32..48)? != guid {
        return None;
    }
    let tail = u64::from(le::u32(&e, 12)?);
    let sequence = le::u64(&e, 16)?;
    let count = le::u32(&e, 24)?;
    if count > MAX_DESCRIPTORS {
        return None;
    }
    let last_file_offset = le::u64(&e, 56)?;
    let desc_area = (64 + 32 * u64::from(count)).div_ceil(SECTOR) * SECTOR;
    let mut data_at = desc_area;
    let mut writes = Vec::new();
    for i in 0..u64::from(count) {
        let d = e.get((64 + 32 * i) as usize..(96 + 32 * i) as usize)?;
        if le::u64(d, 24)? != sequence {
            return None;
        }
        if d.starts_with(b"zero") {
            let len = le::u64(d, 8)?;
            let at = le::u64(d, 16)?;
            if len % SECTOR != 0 || at % SECTOR != 0 {
                return None;
            }
            writes.push(Write::Zero(at, len));
        } else if d.starts_with(b"desc") {
            let trailing = d.get(4..8)?;
            let leading = d.get(8..16)?;
            let at = le::u64(d, 16)?;
            let s = e.get(data_at as usize..(data_at + SECTOR) as usize)?;
            if !s.starts_with(b"data")
                || u64::from(le::u32(s, 4)?) != sequence >> 32
                || u64::from(le::u32(s, 4092)?) != sequence & 0xffff_ffff
                || at % SECTOR != 0
            {
                return None;
            }
            let mut sector = Vec::with_capacity(SECTOR as usize);
            sector.extend_from_slice(leading);
            sector.extend_from_slice(s.get(8..4092)?);
            sector.extend_from_slice(trailing);
            writes.push(Write::Data(at, sector.into()));
            data_at += SECTOR;
        } else {
            return None;
        }
    }
    if data_at > length {
        return None;
    }
    Some(Entry {
        offset: off,
        length,
        tail,
        sequence,
        last_file_offset,
        writes,
    })
}

/// Replay the log `header` names over `file`: the overlay and the number of entries applied.
pub fn replay(file: Arc<dyn ReadAt>, header: &Header, name: &str) -> Result<(Overlay, usize)> {
    let (off, len) = (header.log_offset, u64::from(header.log_length));
    let structure = || format!("{name}: VHDX log");
    if len == 0 || len % SECTOR != 0 || off % (1 << 20) != 0 || len > MAX_LOG {
        return Err(Error::corrupt(
            structure(),
            header.position + 68,
            format!(
                "log at byte {off}, {len} bytes: not a multiple of 1 MiB/4 KiB \
                 (or above {MAX_LOG} bytes)"
            ),
        ));
    }
    let log = read_vec(&*file, off, len, MAX_LOG)
        .map_err(|e| Error::corrupt(structure(), off, format!("cannot be read ({e})")))?;
    let entries: BTreeMap<u64, Entry> = (0..len / SECTOR)
        .filter_map(|i| entry_at(&log, i * SECTOR, &header.log_guid))
        .map(|e| (e.offset, e))
        .collect();
    let best = active_sequence(&entries, len);
    let Some(run) = best else {
        return Err(Error::corrupt(
            structure(),
            off,
            format!(
                "the header's log GUID is set but no complete sequence of entries with it \
                 was found ({} valid entries); the image needs log replay",
                entries.len()
            ),
        ));
    };
    let mut size = file.size();
    let mut writes = Vec::new();
    for e in &run {
        size = size.max(e.last_file_offset);
        for w in &e.writes {
            let end = match w {
                Write::Data(at, d) => at.saturating_add(d.len() as u64),
                Write::Zero(at, l) => at.saturating_add(*l),
            };
            size = size.max(end);
            writes.push(w.clone());
        }
    }
    Ok((Overlay { file, writes, size }, run.len()))
}

/// The active sequence among `entries` (by their byte in a log of `len`
/// bytes), oldest first: the candidate heads are tried from the highest
/// sequence number down, and the first whose run, from the entry at its
/// tail through entries that each follow the previous one in the
/// circular log with the next sequence number, reaches it, is the one.
/// The walks together take at most a few steps per entry (a log that
/// needs more is too tangled to trust: none).
fn active_sequence(entries: &BTreeMap<u64, Entry>, len: u64) -> Option<Vec<&Entry>> {
    let mut heads: Vec<&Entry> = entries.values().collect();
    heads.sort_by_key(|e| std::cmp::Reverse(e.sequence));
    let mut budget = entries.len().saturating_mul(4).saturating_add(64);
    for head in heads {
        let Some(first) = entries.get(&head.tail) else {
            continue;
        };
        if first.sequence > head.sequence {
            continue;
        }
        let mut run = vec![first];
        let mut cur = first;
        while cur.offset != head.offset {
            budget = budget.checked_sub(1)?;
            let next = (cur.offset + cur.length) % len;
            match entries.get(&next) {
                Some(n)
                    if n.sequence == cur.sequence.wrapping_add(1)
                        && n.sequence <= head.sequence =>
                {
                    run.push(n);
                    cur = n;
                }
                _ => break,
            }
        }
        if cur.offset == head.offset {
            return Some(run);
        }
    }
    None
}
