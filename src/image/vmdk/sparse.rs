//! Hosted sparse extents: the `KDMV` header, the grain directory (GD) and
//! its grain tables (GT), and the grains, plain or compressed
//! (stream-optimized, with grain markers).
//!
//! Layout facts follow VMware's "Virtual Disk Format 1.1": all numbers are
//! little-endian; offsets and sizes are in 512-byte sectors. A GT entry of 0
//! is an unallocated grain (the parent's bytes, or zeros), 1 a zeroed grain
//! (version 2 flag). A stream-optimized file may keep its GD at the end
//! (`gdOffset` = all ones): the footer, a copy of the header in the
//! second-to-last sector, then says where.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::io::{HostExtent, ReadAt, le, read_vec};

/// `KDMV`, little-endian `0x564d444b`.
pub const MAGIC: [u8; 4] = *b"KDMV";

/// `gdOffset` of a stream-optimized file whose GD follows the grains.
pub const GD_AT_END: u64 = u64::MAX;

/// Header flags.
pub mod flags {
    /// The redundant grain directory is kept up to date.
    pub const REDUNDANT_GT: u32 = 1 << 1;
    /// A GT entry of 1 means a zeroed grain.
    pub const ZEROED_GTE: u32 = 1 << 2;
    /// Grains are compressed.
    pub const COMPRESSED: u32 = 1 << 16;
    /// Grains and tables are preceded by markers.
    pub const MARKERS: u32 = 1 << 17;
}

/// The largest grain we read: 2 MiB (VMware and QEMU write 64 KiB grains).
pub const MAX_GRAIN: u64 = 2 << 20;
/// The most entries one grain table may have (VMware uses 512).
pub const MAX_GTES: u32 = 65_536;
/// The largest capacity of one extent: 64 TiB in sectors.
pub const MAX_CAPACITY: u64 = 1 << 37;
/// The largest grain directory we read, in bytes.
const MAX_GD_BYTES: u64 = 64 << 20;
/// Grain tables kept in memory per extent.
const GT_CACHE: usize = 4096;
/// Decompressed grains kept per extent.
const GRAIN_CACHE: usize = 16;

/// The sparse extent header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 1, 2 or 3.
    pub version: u32,
    /// See [`flags`].
    pub flags: u32,
    /// Virtual sectors.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_size: u64,
    /// Embedded descriptor: first sector.
    pub descriptor_offset: u64,
    /// Embedded descriptor: sectors.
    pub descriptor_size: u64,
    /// Entries per grain table.
    pub num_gtes_per_gt: u32,
    /// Redundant GD: first sector (0: none).
    pub rgd_offset: u64,
    /// GD: first sector ([`GD_AT_END`]: see the footer).
    pub gd_offset: u64,
    /// Sectors before the first grain.
    pub overhead: u64,
    /// The extent was not closed cleanly.
    pub unclean_shutdown: bool,
    /// 0: none, 1: deflate.
    pub compress_algorithm: u16,
}

impl Header {
    /// Decode and check a header from its 512-byte sector at byte `at` of `name`.
    pub fn decode(b: &[u8], name: &str, at: u64) -> Result<Header> {
        let structure = format!("{name}: VMDK sparse header");
        let bad =
            |off: u64, why: String| Error::corrupt(structure.clone(), at.saturating_add(off), why);
        if b.len() < 79 {
            return Err(bad(0, format!("{} bytes, a header has 512", b.len())));
        }
        if !b.starts_with(&MAGIC) {
            return Err(bad(0, "magic is not KDMV".into()));
        }
        let u32_at = |o: usize| le::u32(b, o).unwrap_or(0);
        let u64_at = |o: usize| le::u64(b, o).unwrap_or(0);
        let h = Header {
            version: u32_at(4),
            flags: u32_at(8),
            capacity: u64_at(12),
            grain_size: u64_at(20),
            descriptor_offset: u64_at(28),
            descriptor_size: u64_at(36),
            num_gtes_per_gt: u32_at(44),
            rgd_offset: u64_at(48),
            gd_offset: u64_at(56),
            overhead: u64_at(64),
            unclean_shutdown: b.get(72).is_some_and(|&v| v != 0),
            compress_algorithm: le::u16(b, 77).unwrap_or(0),
        };
        if !(1..=3).contains(&h.version) {
            return Err(bad(
                4,
                format!("version {} (1, 2 or 3 expected)", h.version),
            ));
        }
        if h.capacity > MAX_CAPACITY {
            return Err(bad(
                12,
                format!("capacity {} sectors is past 64 TiB", h.capacity),
            ));
        }
        let grain = h.grain_size.saturating_mul(512);
        if h.grain_size == 0 || !h.grain_size.is_power_of_two() || grain > MAX_GRAIN {
            return Err(bad(
                20,
                format!(
                    "grain size {} sectors (a power of two up to {} sectors expected)",
                    h.grain_size,
                    MAX_GRAIN / 512
                ),
            ));
        }
        if h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > MAX_GTES {
            return Err(bad(
                44,
                format!(
                    "{} entries per grain table (1 to {MAX_GTES} expected)",
                    h.num_gtes_per_gt
                ),
            ));
        }
        if h.flags & flags::COMPRESSED != 0 && h.compress_algorithm != 1 {
            return Err(Error::Unsupported(format!(
                "{name}: VMDK sparse header at byte {}: compression algorithm {} (only deflate, 1, is known)",
                at.saturating_add(77),
                h.compress_algorithm
            )));
        }
        Ok(h)
    }

    /// Bytes per grain.
    pub fn grain_bytes(&self) -> u64 {
        self.grain_size.saturating_mul(512)
    }

    /// Virtual bytes one grain table covers.
    fn gt_coverage(&self) -> u64 {
        self.grain_bytes()
            .saturating_mul(u64::from(self.num_gtes_per_gt))
    }

    /// Entries in the grain directory.
    pub fn gd_entries(&self) -> u64 {
        self.capacity
            .saturating_mul(512)
            .div_ceil(self.gt_coverage().max(1))
    }

    /// Whether grains are compressed.
    pub fn compressed(&self) -> bool {
        self.flags & flags::COMPRESSED != 0
    }
}

/// Where a grain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// Not allocated here: the parent's bytes, or zeros.
    Unallocated,
    /// Allocated as zeros.
    Zero,
    /// At this byte of the file.
    At(u64),
}

/// A hosted sparse extent opened for reading.
pub struct SparseExtent {
    name: String,
    file: Arc<dyn ReadAt>,
    file_size: u64,
    /// The header in use (the footer's, for a GD at the end).
    pub header: Header,
    /// GD entries in use: the sector of each grain table (0: none).
    gd: Vec<u32>,
    /// The redundant GD, when the primary one was damaged and this one is
    /// used for the tables it lacks (the entries, by index).
    rgd: Vec<u32>,
    gt_cache: Mutex<HashMap<usize, Arc<[u32]>>>,
    grain_cache: Mutex<Vec<(u64, Arc<[u8]>)>>,
    problems: Vec<String>,
}

impl std::fmt::Debug for SparseExtent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseExtent")
            .field("name", &self.name)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

fn io_err(e: Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl SparseExtent {
    /// Open the sparse extent in `file` (`name` for messages).
    pub fn open(file: Arc<dyn ReadAt>, name: &str) -> Result<SparseExtent> {
        let file_size = file.size();
        let head = read_vec(&*file, 0, file_size.min(512), 512)
            .map_err(|e| Error::corrupt(format!("{name}: VMDK sparse header"), 0, e.to_string()))?;
        let mut header = Header::decode(&head, name, 0)?;
        let mut problems = Vec::new();
        if header.gd_offset == GD_AT_END {
            // The footer: marker, header copy, end-of-stream marker.
            let at = file_size.checked_sub(1024).ok_or_else(|| {
                Error::corrupt(
                    format!("{name}: VMDK footer"),
                    file_size,
                    "the header puts the grain directory at the end, but the file is too short for a footer",
                )
            })?;
            let foot = read_vec(&*file, at, 512, 512)
                .map_err(|e| Error::corrupt(format!("{name}: VMDK footer"), at, e.to_string()))?;
            let footer = Header::decode(&foot, &format!("{name} (footer)"), at)?;
            if footer.gd_offset == GD_AT_END {
                return Err(Error::corrupt(
                    format!("{name}: VMDK footer"),
                    at.saturating_add(56),
                    "the footer's gdOffset too says the grain directory is at the end",
                ));
            }
            header = footer;
        }
        if header.unclean_shutdown {
            problems.push(format!(
                "{name}: VMDK sparse header: the extent was not closed cleanly (uncleanShutdown); recently written grains may be missing"
            ));
        }
        let entries = header.gd_entries();
        let has_rgd = header.rgd_offset != 0 && header.rgd_offset != GD_AT_END;
        let rgd = if has_rgd {
            read_gd(
                &*file,
                name,
                "redundant grain directory",
                header.rgd_offset,
                entries,
            )
        } else {
            Ok(Vec::new())
        };
        let (gd, rgd) = match (
            read_gd(&*file, name, "grain directory", header.gd_offset, entries),
            rgd,
        ) {
            (Ok(gd), Ok(rgd)) => (gd, rgd),
            (Ok(gd), Err(e)) => {
                problems.push(e.to_string());
                (gd, Vec::new())
            }
            (Err(e), Ok(rgd)) if !rgd.is_empty() => {
                problems.push(format!(
                    "{e}; the redundant grain directory at byte {} is used instead",
                    header.rgd_offset.saturating_mul(512)
                ));
                (rgd, Vec::new())
            }
            (Err(e), _) => return Err(e),
        };
        let mut ext = SparseExtent {
            name: name.to_string(),
            file,
            file_size,
            header,
            gd,
            rgd,
            gt_cache: Mutex::new(HashMap::new()),
            grain_cache: Mutex::new(Vec::new()),
            problems,
        };
        ext.check_gd();
        Ok(ext)
    }

    /// Compare the primary GD with the redundant one: where the primary
    /// entry is empty or points past the file's end and the redundant one
    /// points at a table, the redundant table is used, and a problem says so.
    fn check_gd(&mut self) {
        let sectors = self.file_size / 512;
        let gd_at = self.header.gd_offset.saturating_mul(512);
        let mut damaged = Vec::new();
        for (i, &g) in self.gd.iter().enumerate() {
            let bad_primary = g == 0 || u64::from(g) >= sectors;
            let r = self.rgd.get(i).copied().unwrap_or(0);
            let good_rgd = r != 0 && u64::from(r) < sectors;
            if bad_primary && good_rgd {
                damaged.push(i);
            } else if u64::from(g) >= sectors && g != 0 {
                self.problems.push(format!(
                    "{}: VMDK grain directory at byte {}: entry {i} points at sector {g}, past the file's end ({} bytes); its grains read as unallocated",
                    self.name,
                    gd_at.saturating_add((i as u64).saturating_mul(4)),
                    self.file_size
                ));
            }
        }
        if let Some(&first) = damaged.first() {
            self.problems.push(format!(
                "{}: VMDK grain directory at byte {}: {} of {} entries are empty or past the file's end (first: entry {first}) while the redundant grain directory at byte {} has tables for them; those tables are read from the redundant copy",
                self.name,
                gd_at,
                damaged.len(),
                self.gd.len(),
                self.header.rgd_offset.saturating_mul(512)
            ));
            for i in damaged {
                if let (Some(slot), Some(&r)) = (self.gd.get_mut(i), self.rgd.get(i)) {
                    *slot = r;
                }
            }
        }
    }

    /// Damage found while opening.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The virtual size in bytes the header gives.
    pub fn capacity_bytes(&self) -> u64 {
        self.header.capacity.saturating_mul(512)
    }

    /// The embedded descriptor's text, if the header has one.
    pub fn embedded_descriptor(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let h = &self.header;
        if h.descriptor_offset == 0 || h.descriptor_size == 0 {
            return Ok(None);
        }
        let at = h.descriptor_offset.saturating_mul(512);
        let len = h.descriptor_size.saturating_mul(512);
        let text = read_vec(
            &*self.file,
            at,
            len.min(self.file_size.saturating_sub(at)),
            super::descriptor::MAX_DESCRIPTOR,
        )
        .map_err(|e| {
            Error::corrupt(
                format!("{}: VMDK embedded descriptor", self.name),
                at,
                e.to_string(),
            )
        })?;
        Ok(Some((at, text)))
    }

    /// The grain table `index` of the GD (`redundant`: of the redundant GD).
    fn table(&self, index: usize) -> std::io::Result<Option<Arc<[u32]>>> {
        let Some(&sector) = self.gd.get(index) else {
            return Ok(None);
        };
        if sector == 0 {
            return Ok(None);
        }
        let key = index;
        if let Some(t) = self
            .gt_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Some(Arc::clone(t)));
        }
        let at = u64::from(sector).saturating_mul(512);
        let len = u64::from(self.header.num_gtes_per_gt).saturating_mul(4);
        let t: Arc<[u32]> = match read_table(&*self.file, at, len) {
            Ok(t) => t.into(),
            Err(e) => {
                // The redundant copy of this table, if there is one.
                match self
                    .rgd
                    .get(index)
                    .copied()
                    .filter(|&r| r != 0 && r != sector)
                {
                    Some(r) => read_table(&*self.file, u64::from(r).saturating_mul(512), len)
                        .map_err(|_| {
                            io_err(Error::corrupt(
                                format!("{}: VMDK grain table {index}", self.name),
                                at,
                                e.to_string(),
                            ))
                        })?
                        .into(),
                    None => {
                        return Err(io_err(Error::corrupt(
                            format!("{}: VMDK grain table {index}", self.name),
                            at,
                            e.to_string(),
                        )));
                    }
                }
            }
        };
        let mut cache = self.gt_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= GT_CACHE {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&t));
        Ok(Some(t))
    }

    /// Where the grain holding extent byte `off` is.
    fn grain(&self, off: u64) -> std::io::Result<Grain> {
        let cover = self.header.gt_coverage().max(1);
        let gi = usize::try_from(off.checked_div(cover).unwrap_or(0)).unwrap_or(usize::MAX);
        let Some(table) = self.table(gi)? else {
            return Ok(Grain::Unallocated);
        };
        let ti = usize::try_from(
            off.checked_rem(cover)
                .and_then(|r| r.checked_div(self.header.grain_bytes()))
                .unwrap_or(0),
        )
        .unwrap_or(usize::MAX);
        let e = table.get(ti).copied().unwrap_or(0);
        Ok(match e {
            0 => Grain::Unallocated,
            1 if self.header.flags & flags::ZEROED_GTE != 0 || self.header.compressed() => {
                Grain::Zero
            }
            s => Grain::At(u64::from(s).saturating_mul(512)),
        })
    }

    /// Read extent bytes at `off` into `buf`; bytes of unallocated grains
    /// are asked of `fallback` (extent offset, buffer). Plain grains that
    /// follow each other in the file are read in one go; whole compressed
    /// grains are inflated at the end, on several threads when there are
    /// several ([`crate::image::parallel`]), each into its place in `buf`.
    pub fn read(
        &self,
        off: u64,
        buf: &mut [u8],
        fallback: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let grain = self.header.grain_bytes().max(1);
        let compressed = self.header.compressed();
        let mut whole: Vec<(u64, u64, &mut [u8])> = Vec::new();
        let mut rest: &mut [u8] = buf;
        let mut pos = off;
        // One grain (or run of contiguous plain grains) per turn: the loop
        // ends after at most buf.len() / grain + 1 turns.
        while !rest.is_empty() {
            let in_grain = pos.checked_rem(grain).unwrap_or(0);
            let mut n = grain.saturating_sub(in_grain).min(rest.len() as u64);
            let kind = if pos >= self.capacity_bytes() {
                Grain::Zero
            } else {
                self.grain(pos)?
            };
            if let (Grain::At(host), false) = (kind, compressed) {
                // The plain grains after this one that follow it in the file.
                let mut next_host = host.saturating_add(grain);
                while n < rest.len() as u64 {
                    let p = pos.saturating_add(n);
                    if p >= self.capacity_bytes() || self.grain(p)? != Grain::At(next_host) {
                        break;
                    }
                    n = n.saturating_add(grain).min(rest.len() as u64);
                    next_host = next_host.saturating_add(grain);
                }
            }
            let n = usize::try_from(n).unwrap_or(rest.len()).min(rest.len());
            let (dst, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            match kind {
                Grain::Unallocated => fallback(pos, dst)?,
                Grain::Zero => dst.fill(0),
                Grain::At(host) if compressed && in_grain == 0 && n as u64 == grain => {
                    whole.push((pos, host, dst));
                }
                Grain::At(host) if compressed => {
                    let data = self.compressed_grain(pos.saturating_sub(in_grain), host)?;
                    let start = usize::try_from(in_grain).unwrap_or(usize::MAX);
                    let src = start
                        .checked_add(n)
                        .and_then(|end| data.get(start..end))
                        .ok_or_else(|| {
                            std::io::Error::other(format!(
                                "{}: VMDK grain at byte {host} is shorter than the read",
                                self.name
                            ))
                        })?;
                    dst.copy_from_slice(src);
                }
                Grain::At(host) => {
                    let at = host.saturating_add(in_grain);
                    self.read_plain(at, dst)?;
                }
            }
            pos = pos.saturating_add(n as u64);
        }
        crate::image::parallel::for_each(whole, |(lba, host, dst)| {
            self.inflate_grain(lba, host, dst)
        })
    }

    /// Plain grain bytes: past the file's end they are lost.
    fn read_plain(&self, at: u64, dst: &mut [u8]) -> std::io::Result<()> {
        let end = at.saturating_add(dst.len() as u64);
        if end > self.file_size {
            return Err(io_err(Error::corrupt(
                format!("{}: VMDK grain", self.name),
                at,
                format!(
                    "{} bytes run past the file's end ({} bytes): the file is truncated",
                    dst.len(),
                    self.file_size
                ),
            )));
        }
        self.file.read_exact_at(at, dst)
    }

    /// The decompressed grain starting at extent byte `lba_bytes`, stored
    /// at `host`, kept for the next reads of the same grain.
    fn compressed_grain(&self, lba_bytes: u64, host: u64) -> std::io::Result<Arc<[u8]>> {
        {
            let cache = self.grain_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, g)) = cache.iter().find(|(h, _)| *h == host) {
                return Ok(Arc::clone(g));
            }
        }
        let mut out = vec![0u8; usize::try_from(self.header.grain_bytes()).unwrap_or(0)];
        self.inflate_grain(lba_bytes, host, &mut out)?;
        let g: Arc<[u8]> = out.into();
        let mut cache = self.grain_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= GRAIN_CACHE {
            cache.remove(0);
        }
        cache.push((host, Arc::clone(&g)));
        Ok(g)
    }

    /// Inflate the grain starting at extent byte `lba_bytes`, stored at
    /// `host`, into `out` (a whole grain; the part a short last grain
    /// does not fill is zeros).
    fn inflate_grain(&self, lba_bytes: u64, host: u64, out: &mut [u8]) -> std::io::Result<()> {
        let grain = self.header.grain_bytes();
        let structure = format!("{}: VMDK compressed grain", self.name);
        let markers = self.header.flags & flags::MARKERS != 0;
        let (data_at, len) = if markers {
            let m = read_vec(&*self.file, host, 12, 12)
                .map_err(|e| io_err(Error::corrupt(structure.clone(), host, e.to_string())))?;
            let lba = le::u64(&m, 0).unwrap_or(0);
            let size = u64::from(le::u32(&m, 8).unwrap_or(0));
            if lba.checked_mul(512) != Some(lba_bytes) {
                return Err(io_err(Error::corrupt(
                    structure,
                    host,
                    format!(
                        "the grain marker says sector {lba}, the grain table sector {}",
                        lba_bytes / 512
                    ),
                )));
            }
            (host.saturating_add(12), size)
        } else {
            // No marker: the stream is at most about a grain long.
            let avail = self.file_size.saturating_sub(host);
            (
                host,
                avail.min(grain.saturating_mul(2).saturating_add(1024)),
            )
        };
        let cap = grain.saturating_mul(2).saturating_add(1024);
        let input = read_vec(&*self.file, data_at, len, cap)
            .map_err(|e| io_err(Error::corrupt(structure.clone(), host, e.to_string())))?;
        let produced = inflate_zlib(&input, out)
            .map_err(|e| io_err(Error::corrupt(structure.clone(), host, e)))?;
        if produced < out.len() {
            // Only the last grain of an extent may be short (the capacity
            // is not a whole number of grains).
            let end = lba_bytes.saturating_add(produced as u64);
            if end < self.capacity_bytes() {
                return Err(io_err(Error::corrupt(
                    structure,
                    host,
                    format!("the grain inflates to {produced} of {grain} bytes"),
                )));
            }
            if let Some(t) = out.get_mut(produced..) {
                t.fill(0);
            }
        }
        Ok(())
    }

    /// Where extent bytes at `off` lie plainly in the host file.
    pub fn host_extent(&self, off: u64, len: u64) -> Option<HostExtent> {
        if self.header.compressed() || off >= self.capacity_bytes() {
            return None;
        }
        let grain = self.header.grain_bytes().max(1);
        let in_grain = off.checked_rem(grain).unwrap_or(0);
        match self.grain(off).ok()? {
            Grain::At(host) => {
                let at = host.checked_add(in_grain)?;
                let n = len.min(grain.saturating_sub(in_grain));
                if at.checked_add(n)? > self.file_size {
                    return None;
                }
                self.file.host_extent(at, n)
            }
            _ => None,
        }
    }

    /// How many grains are allocated (data or zero), for details; `None`
    /// when the tables cannot be read.
    pub fn allocated_grains(&self) -> Option<u64> {
        let mut n = 0u64;
        for i in 0..self.gd.len() {
            if let Some(t) = self.table(i).ok()? {
                n = n.saturating_add(t.iter().filter(|&&e| e != 0).count() as u64);
            }
        }
        Some(n)
    }
}

/// Read `entries` GD entries at sector `sector`.
fn read_gd(
    file: &dyn ReadAt,
    name: &str,
    what: &str,
    sector: u64,
    entries: u64,
) -> Result<Vec<u32>> {
    let at = sector.checked_mul(512).ok_or_else(|| {
        Error::corrupt(
            format!("{name}: VMDK {what}"),
            0,
            format!("sector {sector} is past 2^64 bytes"),
        )
    })?;
    let len = entries.saturating_mul(4);
    let bytes = read_vec(file, at, len, MAX_GD_BYTES).map_err(|e| {
        Error::corrupt(
            format!("{name}: VMDK {what}"),
            at,
            format!("{entries} entries: {e}"),
        )
    })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| le::u32(c, 0).unwrap_or(0))
        .collect())
}

fn read_table(file: &dyn ReadAt, at: u64, len: u64) -> std::io::Result<Vec<u32>> {
    let bytes = read_vec(file, at, len, u64::from(MAX_GTES).saturating_mul(4))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| le::u32(c, 0).unwrap_or(0))
        .collect())
}

/// Inflate a zlib stream into `out`; returns how many bytes it produced.
fn inflate_zlib(input: &[u8], out: &mut [u8]) -> std::result::Result<usize, String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(true);
    for _ in 0..64 {
        let (in_pos, out_pos) = (
            usize::try_from(d.total_in()).unwrap_or(usize::MAX),
            usize::try_from(d.total_out()).unwrap_or(usize::MAX),
        );
        let (Some(src), Some(dst)) = (input.get(in_pos..), out.get_mut(out_pos..)) else {
            return Err("zlib stream position out of range".into());
        };
        if dst.is_empty() {
            return Ok(out_pos);
        }
        let status = d
            .decompress(src, dst, FlushDecompress::Finish)
            .map_err(|e| format!("zlib data is damaged ({e})"))?;
        let done = usize::try_from(d.total_out()).unwrap_or(usize::MAX);
        if status == Status::StreamEnd {
            return Ok(done);
        }
        if d.total_in() == in_pos as u64 && done == out_pos {
            return Err(format!("zlib data ends after {done} bytes"));
        }
    }
    Err("zlib data makes no progress".into())
}
