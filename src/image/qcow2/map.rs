//! Cluster mapping: from a guest offset, through the L1 and L2 tables, to
//! what the bytes are (data in the file, zeros, the backing file's bytes,
//! or a compressed cluster).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Qcow2;
use super::header::Header;
use crate::io::read_vec;

/// Bits 9-55 of L1 and standard L2 entries: the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L2 entry bit 62: the cluster is compressed.
const COMPRESSED: u64 = 1 << 62;
/// Standard cluster descriptor bit 0: the cluster reads as zeros.
const ZERO: u64 = 1;
/// Subclusters per cluster with extended L2 entries.
const SUBCLUSTERS: u32 = 32;

/// How many bytes of L2 tables [`Qcow2::truncation`] reads at most.
const TRUNCATION_CHECK_BYTES: u64 = 32 << 20;

/// How much memory the L2 cache may hold.
const L2_CACHE_BYTES: u64 = 32 << 20;

/// What a run of guest bytes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Granule {
    /// Reads as zeros.
    Zero,
    /// Not allocated here: the backing file's bytes (or zeros without one).
    Unallocated,
    /// Stored plainly at this host offset (for the first byte of the run).
    Data(u64),
    /// Inside a compressed cluster: its L2 entry and the offset within the cluster.
    Compressed {
        /// The L2 entry (the compressed cluster descriptor).
        entry: u64,
        /// Offset of the first byte within the cluster.
        within: u64,
    },
}

/// log2 of the number of entries in one L2 table.
pub(super) fn l2_bits(h: &Header) -> u32 {
    if h.extended_l2() {
        h.cluster_bits - 4
    } else {
        h.cluster_bits - 3
    }
}

/// Host offset and stored length of a compressed cluster descriptor.
pub(super) fn compressed_extent(entry: u64, cluster_bits: u32) -> (u64, u64) {
    let x = 62 - (cluster_bits - 8);
    let offset = entry & ((1u64 << x) - 1);
    let sectors = ((entry >> x) & ((1u64 << (cluster_bits - 8)) - 1)) + 1;
    let size = sectors * 512 - (offset & 511);
    (offset, size)
}

/// A bounded cache of decoded L2 tables, keyed by their host offset.
pub(super) struct L2Cache {
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    tables: HashMap<u64, (Arc<[u64]>, u64)>,
    tick: u64,
}

impl L2Cache {
    /// A cache for tables of `cluster_size` bytes.
    pub(super) fn new(cluster_size: u64) -> L2Cache {
        L2Cache {
            capacity: (L2_CACHE_BYTES / cluster_size).clamp(4, 1024) as usize,
            state: Mutex::new(CacheState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, offset: u64) -> Option<Arc<[u64]>> {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        let (t, used) = st.tables.get_mut(&offset)?;
        *used = tick;
        Some(Arc::clone(t))
    }

    fn insert(&self, offset: u64, table: Arc<[u64]>) {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if st.tables.len() >= self.capacity
            && !st.tables.contains_key(&offset)
            && let Some(oldest) = st
                .tables
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            st.tables.remove(&oldest);
        }
        st.tables.insert(offset, (table, tick));
    }
}

impl Qcow2 {
    /// The L2 table at host offset `offset`, checked and decoded.
    fn l2_table(&self, offset: u64, l1_index: u64) -> std::io::Result<Arc<[u64]>> {
        if let Some(t) = self.l2_cache.get(offset) {
            return Ok(t);
        }
        let cs = self.header.cluster_size();
        let l1_entry_pos = self.l1_table_offset + l1_index * 8;
        if !offset.is_multiple_of(cs) {
            return Err(self.corrupt_io(
                "L1 table entry",
                l1_entry_pos,
                format!("L2 table offset {offset} is not a cluster boundary"),
            ));
        }
        if offset.checked_add(cs).is_none_or(|e| e > self.file_size) {
            return Err(self.corrupt_io(
                "L1 table entry",
                l1_entry_pos,
                {
                    let shift = self.header.cluster_bits + l2_bits(&self.header);
                    let first = l1_index.checked_shl(shift).unwrap_or(u64::MAX);
                    let end = (l1_index + 1).checked_shl(shift).unwrap_or(u64::MAX);
                    format!(
                        "L2 table at byte {offset} (for guest bytes {first}..{}) is past the end of the file ({} bytes): the image is truncated",
                        end.min(self.size),
                        self.file_size
                    )
                },
            ));
        }
        let l1_end = self.l1_table_offset + self.l1.len() as u64 * 8;
        if offset < l1_end && self.l1_table_offset < offset + cs {
            return Err(self.corrupt_io(
                "L1 table entry",
                l1_entry_pos,
                format!("L2 table at byte {offset} overlaps the L1 table"),
            ));
        }
        let raw = read_vec(&*self.file, offset, cs, cs)?;
        let table: Arc<[u64]> = raw
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        self.l2_cache.insert(offset, Arc::clone(&table));
        Ok(table)
    }

    /// Whether the file is shorter than its tables say (a copy cut short):
    /// the L2 tables and clusters that lie past its end, in words, with the
    /// first guest byte they cost. Reads at most [`TRUNCATION_CHECK_BYTES`]
    /// of L2 tables.
    pub(super) fn truncation(&self) -> Option<String> {
        let cb = self.header.cluster_bits;
        let cs = self.header.cluster_size();
        let shift = cb + l2_bits(&self.header);
        let extended = self.header.extended_l2();
        let stride = if extended { 16 } else { 8 };
        let mut lost_tables = 0u64;
        let mut lost_clusters = 0u64;
        let mut first: Option<u64> = None;
        let mut read = 0u64;
        let mut unchecked = 0u64;
        let lost = |guest: u64, first: &mut Option<u64>| {
            *first = Some(first.map_or(guest, |f| f.min(guest)));
        };
        for (i, &e) in self.l1.iter().enumerate() {
            let off = e & OFFSET_MASK;
            if off == 0 {
                continue;
            }
            let base = (i as u64).checked_shl(shift).unwrap_or(u64::MAX);
            if off.checked_add(cs).is_none_or(|end| end > self.file_size) {
                lost_tables += 1;
                lost(base, &mut first);
                continue;
            }
            if read.saturating_add(cs) > TRUNCATION_CHECK_BYTES {
                unchecked += 1;
                continue;
            }
            read += cs;
            let Ok(raw) = read_vec(&*self.file, off, cs, cs) else {
                continue;
            };
            for (j, ent) in raw.chunks_exact(stride).enumerate() {
                let entry = u64::from_be_bytes(ent[..8].try_into().unwrap_or([0; 8]));
                // A compressed cluster may end past the file (its length is
                // rounded up); a plain one must be whole, and with extended
                // L2 entries its allocated subclusters must be.
                let past = if entry & COMPRESSED != 0 {
                    compressed_extent(entry, cb).0 >= self.file_size
                } else {
                    let host = entry & OFFSET_MASK;
                    let used = if extended {
                        let bitmap = ent
                            .get(8..16)
                            .and_then(|b| b.try_into().ok())
                            .map_or(0, u64::from_be_bytes);
                        let alloc = bitmap & 0xffff_ffff;
                        // One past the last allocated subcluster, in bytes.
                        u64::from(32 - alloc.leading_zeros().saturating_sub(32)) << (cb - 5)
                    } else {
                        cs
                    };
                    host != 0 && host.saturating_add(used) > self.file_size
                };
                if past {
                    lost_clusters += 1;
                    lost(base.saturating_add((j as u64) << cb), &mut first);
                }
            }
        }
        if self.l1_cut {
            let cut = (self.l1.len() as u64)
                .checked_shl(shift)
                .unwrap_or(u64::MAX);
            first = Some(first.map_or(cut, |f| f.min(cut)));
        }
        let first = first?;
        let mut what = Vec::new();
        if self.l1_cut {
            what.push(format!(
                "the end of the L1 table (the map of guest bytes {}..{})",
                (self.l1.len() as u64)
                    .checked_shl(shift)
                    .unwrap_or(u64::MAX),
                self.size
            ));
        }
        if lost_tables > 0 {
            what.push(format!(
                "{lost_tables} L2 table{} (each maps {} of the disk)",
                if lost_tables == 1 { "" } else { "s" },
                humansize::format_size(1u64 << shift.min(63), humansize::BINARY)
            ));
        }
        if lost_clusters > 0 {
            what.push(format!(
                "{lost_clusters} data cluster{}",
                if lost_clusters == 1 { "" } else { "s" }
            ));
        }
        let mut msg = format!(
            "the image is truncated (the file ends at byte {}); lost past its end: {}; the guest bytes they hold (the first at guest byte {first}) read as errors, the rest reads normally",
            self.file_size,
            what.join(" and ")
        );
        if unchecked > 0 {
            msg.push_str(&format!(
                " ({unchecked} L2 tables were not checked; there may be more)"
            ));
        }
        Some(msg)
    }

    /// What the bytes from guest offset `pos` are, and for how many bytes
    /// (at least 1, at most `max`) that stays so.
    pub(super) fn map(&self, pos: u64, max: u64) -> std::io::Result<(Granule, u64)> {
        let cb = self.header.cluster_bits;
        let l2_bits = l2_bits(&self.header);
        let l1_shift = cb + l2_bits;
        let l1_index = pos >> l1_shift;
        let span_end = (l1_index + 1)
            .checked_shl(l1_shift)
            .unwrap_or(u64::MAX)
            .min(self.size);
        let limit = pos.saturating_add(max).min(span_end);
        if limit <= pos {
            return Err(crate::io::past_end(pos, max as usize, self.size));
        }
        let Some(&l1_entry) = self.l1.get(l1_index as usize) else {
            if self.l1_cut {
                return Err(self.corrupt_io(
                    "L1 table",
                    self.l1_table_offset,
                    format!(
                        "entry {l1_index} (for guest byte {pos}) is past the end of the file ({} bytes): the image is truncated",
                        self.file_size
                    ),
                ));
            }
            return Err(self.corrupt_io(
                "L1 table",
                self.l1_table_offset,
                format!("has no entry {l1_index} for guest byte {pos}"),
            ));
        };
        let l2_offset = l1_entry & OFFSET_MASK;
        let unallocated = if self.backing.is_some() {
            Granule::Unallocated
        } else {
            Granule::Zero
        };
        if l2_offset == 0 {
            return Ok((unallocated, limit - pos));
        }
        let table = self.l2_table(l2_offset, l1_index)?;
        let extended = self.header.extended_l2();
        let granule_bits = if extended { cb - 5 } else { cb };
        let entries_mask = (1u64 << l2_bits) - 1;

        // Classify the granule (cluster, or subcluster) starting at `g`.
        let classify = |g: u64| -> std::io::Result<Granule> {
            let cluster = g >> cb;
            let index = (cluster & entries_mask) as usize;
            let entry_pos = l2_offset + (index as u64) * if extended { 16 } else { 8 };
            let (entry, bitmap) = if extended {
                (
                    table.get(index * 2).copied().unwrap_or(0),
                    table.get(index * 2 + 1).copied().unwrap_or(0),
                )
            } else {
                (table.get(index).copied().unwrap_or(0), 0)
            };
            if entry & COMPRESSED != 0 {
                if bitmap != 0 {
                    return Err(self.corrupt_io(
                        "L2 table entry",
                        entry_pos,
                        format!("compressed cluster with a subcluster bitmap {bitmap:#018x}"),
                    ));
                }
                return Ok(Granule::Compressed {
                    entry,
                    within: g & ((1u64 << cb) - 1),
                });
            }
            let host = entry & OFFSET_MASK;
            let data = |host: u64, within: u64| -> std::io::Result<Granule> {
                if !host.is_multiple_of(1u64 << cb) {
                    return Err(self.corrupt_io(
                        "L2 table entry",
                        entry_pos,
                        format!("data cluster offset {host} is not a cluster boundary"),
                    ));
                }
                if host >= self.file_size {
                    return Err(self.corrupt_io(
                        "L2 table entry",
                        entry_pos,
                        format!(
                            "data cluster at byte {host} (guest byte {g}) is past the end of the file ({} bytes): the image is truncated",
                            self.file_size
                        ),
                    ));
                }
                Ok(Granule::Data(host + within))
            };
            if !extended {
                if entry & ZERO != 0 {
                    return Ok(Granule::Zero);
                }
                if host == 0 {
                    return Ok(unallocated);
                }
                return data(host, 0);
            }
            let sub = ((g >> granule_bits) & u64::from(SUBCLUSTERS - 1)) as u32;
            let alloc = bitmap & (1u64 << sub) != 0;
            let zero = bitmap & (1u64 << (sub + 32)) != 0;
            if host == 0 {
                if bitmap & 0xffff_ffff != 0 {
                    return Err(self.corrupt_io(
                        "L2 table entry",
                        entry_pos,
                        format!(
                            "subclusters marked allocated ({bitmap:#018x}) in a cluster with no host offset"
                        ),
                    ));
                }
                return Ok(if zero { Granule::Zero } else { unallocated });
            }
            match (alloc, zero) {
                (true, true) => Err(self.corrupt_io(
                    "L2 table entry",
                    entry_pos,
                    format!("subcluster {sub} is both allocated and zero ({bitmap:#018x})"),
                )),
                (true, false) => data(host, u64::from(sub) << granule_bits),
                (false, true) => Ok(Granule::Zero),
                (false, false) => Ok(unallocated),
            }
        };

        let granule_size = 1u64 << granule_bits;
        let first_start = pos & !(granule_size - 1);
        let first = classify(first_start)?;
        if let Granule::Compressed { entry, .. } = first {
            let cluster_end = ((pos >> cb) + 1) << cb;
            return Ok((
                Granule::Compressed {
                    entry,
                    within: pos & ((1u64 << cb) - 1),
                },
                cluster_end.min(limit) - pos,
            ));
        }
        let mut run_end = (first_start + granule_size).min(limit);
        // Bounded: at most one L2 table's worth of granules.
        while run_end < limit {
            // A granule that cannot be read ends the run: the bytes before
            // it are read, and the next call reports it.
            let Ok(next) = classify(run_end) else {
                break;
            };
            let same = match (first, next) {
                (Granule::Data(h0), Granule::Data(h)) => h == h0 + (run_end - first_start),
                (Granule::Zero, Granule::Zero) => true,
                (Granule::Unallocated, Granule::Unallocated) => true,
                _ => false,
            };
            if !same {
                break;
            }
            run_end = (run_end + granule_size).min(limit);
        }
        let granule = match first {
            Granule::Data(h) => Granule::Data(h + (pos - first_start)),
            other => other,
        };
        Ok((granule, run_end - pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_descriptor() {
        // 64 KiB clusters: x = 54; offset 1000, 3 more sectors.
        let e = (3u64 << 54) | 1000;
        assert_eq!(compressed_extent(e, 16), (1000, 4 * 512 - (1000 % 512)));
        // 512-byte clusters: x = 61, one bit of sector count.
        let e = (1u64 << 61) | 4096;
        assert_eq!(compressed_extent(e, 9), (4096, 1024));
        // 2 MiB clusters: x = 49.
        let e = (8191u64 << 49) | 512;
        assert_eq!(compressed_extent(e, 21), (512, 8192 * 512));
    }
}
