//! VHDX images (Hyper-V), read-only.
//!
//! Our own reader, following Microsoft's specification (MS-VHDX): the file
//! identifier, the two headers (the valid one with the higher sequence
//! number wins; CRC-32C), the two region tables (BAT and metadata region),
//! the metadata items (file parameters, virtual disk size, logical sector
//! size, parent locator), and the block allocation table with payload and
//! sector bitmap entries interleaved by the chunk ratio.
//!
//! A header whose log GUID is set means the log holds writes not yet
//! applied to the file: they are replayed in memory ([`log`]) into an
//! overlay the reader reads through; the file is never written.
//!
//! Everything in the file is treated as hostile: every table is checked
//! against the file's size and capped, every error names the structure
//! and its byte position.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod log;

use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::image::extents::{Base, Mapped, Piece, TableCache, guid_text, read_mapped};
use crate::io::{ReadAt, le, read_vec};

/// The file identifier's signature.
pub const SIGNATURE: &[u8; 8] = b"vhdxfile";
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const HEADER_POS: [u64; 2] = [64 * KIB, 128 * KIB];
const REGION_POS: [u64; 2] = [192 * KIB, 256 * KIB];
const HEADER_LEN: u64 = 4 * KIB;
const REGION_LEN: u64 = 64 * KIB;
/// The largest metadata region read.
const MAX_METADATA: u64 = 16 * MIB;
/// The largest BAT read (entries): 32 Mi entries, 256 MiB of table.
const MAX_BAT_ENTRIES: u64 = 32 << 20;

/// GUIDs as they are stored (first three fields little-endian).
const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

const BAT_GUID: [u8; 16] = guid(
    0x2dc2_7766,
    0xf623,
    0x4200,
    [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
);
const METADATA_GUID: [u8; 16] = guid(
    0x8b7c_a206,
    0x4790,
    0x4b9a,
    [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
);
const FILE_PARAMETERS: [u8; 16] = guid(
    0xcaa1_6737,
    0xfa36,
    0x4d43,
    [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2fa5_4224,
    0xcd1b,
    0x4876,
    [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
);
const VIRTUAL_DISK_ID: [u8; 16] = guid(
    0xbeca_12ab,
    0xb2e6,
    0x4523,
    [0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46],
);
const LOGICAL_SECTOR_SIZE: [u8; 16] = guid(
    0x8141_bf1d,
    0xa96f,
    0x4709,
    [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f],
);
const PHYSICAL_SECTOR_SIZE: [u8; 16] = guid(
    0xcda3_48c7,
    0x445d,
    0x4471,
    [0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56],
);
const PARENT_LOCATOR: [u8; 16] = guid(
    0xa8d3_5f2d,
    0xb30b,
    0x454d,
    [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c],
);

/// Whether the first bytes of a file carry the VHDX file identifier.
pub fn has_magic(head: &[u8]) -> bool {
    head.starts_with(SIGNATURE)
}

/// CRC-32C of `b` with the four bytes at `field` counted as zeros.
pub(crate) fn crc_without(b: &[u8], field: usize) -> u32 {
    let (before, rest) = b.split_at(field.min(b.len()));
    let after = rest.get(4..).unwrap_or_default();
    let zeros = [0u8; 4];
    let c = crc32c::crc32c_append(
        crc32c::crc32c(before),
        zeros.get(..rest.len().min(4)).unwrap_or_default(),
    );
    crc32c::crc32c_append(c, after)
}

fn array16(b: &[u8], off: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(off..off + 16) {
        a.copy_from_slice(s);
    }
    a
}

/// One of the two headers.
#[derive(Debug, Clone)]
pub struct Header {
    /// Where it was read.
    pub position: u64,
    /// Sequence number: the valid header with the higher one is current.
    pub sequence: u64,
    /// Changes whenever the file is written.
    pub file_write_guid: [u8; 16],
    /// Changes whenever the virtual disk's data is written (a child's
    /// `parent_linkage` names it).
    pub data_write_guid: [u8; 16],
    /// Non-zero: the log holds entries to replay.
    pub log_guid: [u8; 16],
    /// Bytes of the log.
    pub log_length: u32,
    /// Byte offset of the log.
    pub log_offset: u64,
}

impl Header {
    /// Decode a 4 KiB header read at `position`; `Err` says why it is not valid.
    pub fn decode(b: &[u8], position: u64) -> std::result::Result<Header, String> {
        if !b.starts_with(b"head") {
            return Err("no \"head\" signature".into());
        }
        let stored = le::u32(b, 4).unwrap_or(0);
        let computed = crc_without(b, 4);
        if stored != computed {
            return Err(format!(
                "CRC-32C mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
        let version = le::u16(b, 66).unwrap_or(0);
        if version != 1 {
            return Err(format!("version {version} (expected 1)"));
        }
        Ok(Header {
            position,
            sequence: le::u64(b, 8).unwrap_or(0),
            file_write_guid: array16(b, 16),
            data_write_guid: array16(b, 32),
            log_guid: array16(b, 48),
            log_length: le::u32(b, 68).unwrap_or(0),
            log_offset: le::u64(b, 72).unwrap_or(0),
        })
    }
}

/// The metadata a VHDX reader needs.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Bytes per payload block.
    pub block_size: u32,
    /// Blocks stay allocated (a fixed VHDX).
    pub leave_blocks_allocated: bool,
    /// A differencing disk.
    pub has_parent: bool,
    /// The virtual disk's size.
    pub virtual_size: u64,
    /// Logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// Physical sector size (512 or 4096).
    pub physical_sector_size: u32,
    /// The virtual disk's ID.
    pub disk_id: [u8; 16],
    /// The parent locator's key/value pairs.
    pub parent_locator: Vec<(String, String)>,
}

/// A VHDX image opened for reading.
pub struct Vhdx {
    /// Name, parent, and the file (through the replayed log when there was one).
    base: Base,
    header: Header,
    meta: Metadata,
    bat: Vec<u64>,
    /// Where the BAT starts in the file.
    bat_offset: u64,
    chunk_ratio: u64,
    bitmaps: TableCache,
    replayed: Option<usize>,
    problems: Vec<String>,
}

impl std::fmt::Debug for Vhdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vhdx")
            .field("name", &self.base.name)
            .field("size", &self.meta.virtual_size)
            .field("block_size", &self.meta.block_size)
            .finish_non_exhaustive()
    }
}

fn corrupt(name: &str, structure: &str, offset: u64, detail: impl Into<String>) -> Error {
    Error::corrupt(format!("{name}: VHDX {structure}"), offset, detail)
}

impl Vhdx {
    /// Parse a VHDX from any byte source, without opening a parent: blocks
    /// of a differencing disk that are not stored read as zeros. `name` is
    /// used in messages. This is what the fuzz target drives.
    pub fn from_source(file: Arc<dyn ReadAt>, name: &str) -> Result<Vhdx> {
        let ident =
            read_vec(&*file, 0, 8, 8).context(|| format!("{name}: VHDX file identifier"))?;
        if !has_magic(&ident) {
            return Err(corrupt(
                name,
                "file identifier",
                0,
                "no \"vhdxfile\" signature",
            ));
        }
        let mut problems = Vec::new();
        // The headers: the valid one with the higher sequence number.
        let mut headers = Vec::new();
        for pos in HEADER_POS {
            let decoded = read_vec(&*file, pos, HEADER_LEN, HEADER_LEN)
                .map_err(|e| e.to_string())
                .and_then(|b| Header::decode(&b, pos));
            match decoded {
                Ok(h) => headers.push(h),
                Err(why) => problems.push(format!("VHDX header at byte {pos}: {why}")),
            }
        }
        let header = headers
            .into_iter()
            .max_by_key(|h| h.sequence)
            .ok_or_else(|| {
                corrupt(
                    name,
                    "headers",
                    HEADER_POS[0],
                    format!("neither header is valid ({})", problems.join("; ")),
                )
            })?;
        if !problems.is_empty() {
            problems.push(format!(
                "the VHDX header at byte {} is used",
                header.position
            ));
        }
        // Replay the log in memory when it holds entries.
        let mut replayed = None;
        let file: Arc<dyn ReadAt> = if header.log_guid != [0; 16] {
            let (overlay, n) = log::replay(Arc::clone(&file), &header, name)?;
            replayed = Some(n);
            Arc::new(overlay)
        } else {
            file
        };
        let (bat_region, meta_region) = read_regions(&*file, name, &mut problems)?;
        let meta = read_metadata(&*file, name, meta_region)?;
        let bs = u64::from(meta.block_size);
        let lss = u64::from(meta.logical_sector_size);
        let chunk_ratio = ((1u64 << 23) * lss) / bs;
        if chunk_ratio == 0 {
            return Err(corrupt(
                name,
                "file parameters",
                meta_region.0,
                "block size larger than a chunk",
            ));
        }
        let blocks = meta.virtual_size.div_ceil(bs);
        let entries = if meta.has_parent {
            blocks.div_ceil(chunk_ratio) * (chunk_ratio + 1)
        } else {
            blocks + blocks.saturating_sub(1) / chunk_ratio
        };
        if entries > MAX_BAT_ENTRIES || entries * 8 > u64::from(bat_region.1) {
            return Err(corrupt(
                name,
                "BAT",
                bat_region.0,
                format!(
                    "{entries} entries are needed for the virtual size {} (the region holds {} \
                     bytes, limit {MAX_BAT_ENTRIES} entries)",
                    meta.virtual_size, bat_region.1
                ),
            ));
        }
        let avail = file.size().saturating_sub(bat_region.0).min(entries * 8);
        let raw = read_vec(&*file, bat_region.0, avail, MAX_BAT_ENTRIES * 8)
            .map_err(|e| corrupt(name, "BAT", bat_region.0, format!("cannot be read ({e})")))?;
        let mut bat: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| le::u64(c, 0).unwrap_or(0))
            .collect();
        if avail < entries * 8 {
            problems.push(format!(
                "VHDX BAT at byte {}: the file ends after {} of its {entries} entries; the \
                 others read as not present",
                bat_region.0,
                bat.len()
            ));
            bat.resize(entries as usize, 0);
        }
        Ok(Vhdx {
            base: Base::new(file, name),
            header,
            meta,
            bat,
            bat_offset: bat_region.0,
            chunk_ratio,
            bitmaps: TableCache::default(),
            replayed,
            problems,
        })
    }

    /// The header in use.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The metadata items read.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// How many log entries were replayed in memory (`None`: the log was clean).
    pub fn log_replayed(&self) -> Option<usize> {
        self.replayed
    }

    /// Damage found while opening.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    /// Facts for the layer tree and `vmrescue info`.
    pub fn details(&self) -> Vec<String> {
        let m = &self.meta;
        let kind = if m.has_parent {
            "differencing"
        } else if m.leave_blocks_allocated {
            "fixed"
        } else {
            "dynamic"
        };
        let mut out = vec![
            format!(
                "VHDX {kind}, block size {} MiB, logical sectors {} bytes, physical {} bytes",
                m.block_size as u64 / MIB,
                m.logical_sector_size,
                m.physical_sector_size
            ),
            format!(
                "disk ID {}, header sequence {}",
                guid_text(&m.disk_id),
                self.header.sequence
            ),
        ];
        if let Some(n) = self.replayed {
            out.push(format!("log replayed in memory: {n} entries"));
        }
        out
    }

    /// The parent's names from the parent locator, best first: the
    /// relative path, then the absolute Win32 path and volume path.
    pub fn parent_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for key in ["relative_path", "absolute_win32_path", "volume_path"] {
            for (k, v) in &self.meta.parent_locator {
                if k == key {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    /// The parent's data write GUID the locator names (`parent_linkage`).
    pub fn parent_linkage(&self) -> Option<String> {
        self.meta
            .parent_locator
            .iter()
            .find(|(k, _)| k == "parent_linkage")
            .map(|(_, v)| v.trim_matches(['{', '}']).to_ascii_lowercase())
    }

    /// Read blocks absent from this differencing disk from `parent`.
    pub fn set_parent(&mut self, parent: Arc<dyn ReadAt>) {
        self.base.parent = Some(parent);
    }

    fn io_corrupt(&self, structure: &str, offset: u64, detail: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: VHDX {structure} at byte {offset}: {detail}",
                self.base.name
            ),
        )
    }
}

/// Read the region tables: the BAT's and the metadata region's (offset, length).
fn read_regions(
    file: &dyn ReadAt,
    name: &str,
    problems: &mut Vec<String>,
) -> Result<((u64, u32), (u64, u32))> {
    let mut last = String::new();
    for pos in REGION_POS {
        let b = match read_vec(file, pos, REGION_LEN, REGION_LEN) {
            Ok(b) => b,
            Err(e) => {
                last = format!("region table at byte {pos}: {e}");
                problems.push(format!("VHDX {last}"));
                continue;
            }
        };
        let why = if !b.starts_with(b"regi") {
            Some("no \"regi\" signature".to_string())
        } else if le::u32(&b, 4).unwrap_or(0) != crc_without(&b, 4) {
            Some("CRC-32C mismatch".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            last = format!("region table at byte {pos}: {why}");
            problems.push(format!("VHDX {last}"));
            continue;
        }
        let count = le::u32(&b, 8).unwrap_or(0);
        if count > 2047 {
            return Err(corrupt(
                name,
                "region table",
                pos + 8,
                format!("{count} entries (at most 2047)"),
            ));
        }
        let (mut bat, mut meta) = (None, None);
        for i in 0..count as usize {
            let e = 16 + 32 * i;
            let id = array16(&b, e);
            let off = le::u64(&b, e + 16).unwrap_or(0);
            let len = le::u32(&b, e + 24).unwrap_or(0);
            let required = le::u32(&b, e + 28).unwrap_or(0) & 1 != 0;
            if id == BAT_GUID {
                bat = Some((off, len));
            } else if id == METADATA_GUID {
                meta = Some((off, len));
            } else if required {
                return Err(Error::Unsupported(format!(
                    "{name}: VHDX region table at byte {}: a required region {} that vmrescue \
                     does not know",
                    pos + e as u64,
                    guid_text(&id)
                )));
            }
        }
        let (Some(bat), Some(meta)) = (bat, meta) else {
            return Err(corrupt(
                name,
                "region table",
                pos,
                "the BAT or the metadata region is missing",
            ));
        };
        return Ok((bat, meta));
    }
    Err(corrupt(
        name,
        "region tables",
        REGION_POS[0],
        format!("neither is valid (last: {last})"),
    ))
}

fn utf16le(b: &[u8]) -> String {
    let u: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| le::u16(c, 0).unwrap_or(0))
        .collect();
    String::from_utf16_lossy(&u)
}

/// Read the metadata region at `region` (offset, length).
fn read_metadata(file: &dyn ReadAt, name: &str, region: (u64, u32)) -> Result<Metadata> {
    let (base, len) = region;
    let b = read_vec(file, base, u64::from(len), MAX_METADATA).map_err(|e| {
        corrupt(
            name,
            "metadata region",
            base,
            format!("cannot be read ({e})"),
        )
    })?;
    if !b.starts_with(b"metadata") {
        return Err(corrupt(
            name,
            "metadata table",
            base,
            "no \"metadata\" signature",
        ));
    }
    let count = le::u16(&b, 10).unwrap_or(0);
    if count > 2047 {
        return Err(corrupt(
            name,
            "metadata table",
            base + 10,
            format!("{count} entries (at most 2047)"),
        ));
    }
    let mut m = Metadata {
        logical_sector_size: 512,
        physical_sector_size: 512,
        ..Metadata::default()
    };
    let (mut have_params, mut have_size) = (false, false);
    for i in 0..usize::from(count) {
        let e = 32 + 32 * i;
        let epos = base + e as u64;
        let id = array16(&b, e);
        let off = le::u32(&b, e + 16).unwrap_or(0) as usize;
        let ilen = le::u32(&b, e + 20).unwrap_or(0) as usize;
        let required = le::u32(&b, e + 24).unwrap_or(0) & 4 != 0;
        let Some(item) = off.checked_add(ilen).and_then(|end| b.get(off..end)) else {
            return Err(corrupt(
                name,
                "metadata table entry",
                epos,
                format!("item at {off}+{ilen} lies outside the metadata region ({len} bytes)"),
            ));
        };
        let ipos = base + off as u64;
        if id == FILE_PARAMETERS {
            m.block_size = le::u32(item, 0).unwrap_or(0);
            let flags = le::u32(item, 4).unwrap_or(0);
            m.leave_blocks_allocated = flags & 1 != 0;
            m.has_parent = flags & 2 != 0;
            have_params = true;
            if !(MIB..=256 * MIB).contains(&u64::from(m.block_size))
                || !m.block_size.is_power_of_two()
            {
                return Err(corrupt(
                    name,
                    "file parameters",
                    ipos,
                    format!(
                        "block size {} (expected a power of two from 1 MiB to 256 MiB)",
                        m.block_size
                    ),
                ));
            }
        } else if id == VIRTUAL_DISK_SIZE {
            m.virtual_size = le::u64(item, 0).unwrap_or(0);
            have_size = true;
            if m.virtual_size > 64 * 1024 * 1024 * MIB {
                return Err(corrupt(
                    name,
                    "virtual disk size",
                    ipos,
                    format!("{} bytes (at most 64 TiB)", m.virtual_size),
                ));
            }
        } else if id == LOGICAL_SECTOR_SIZE || id == PHYSICAL_SECTOR_SIZE {
            let v = le::u32(item, 0).unwrap_or(0);
            if v != 512 && v != 4096 {
                return Err(corrupt(
                    name,
                    "sector size",
                    ipos,
                    format!("{v} (expected 512 or 4096)"),
                ));
            }
            if id == LOGICAL_SECTOR_SIZE {
                m.logical_sector_size = v;
            } else {
                m.physical_sector_size = v;
            }
        } else if id == VIRTUAL_DISK_ID {
            m.disk_id = array16(item, 0);
        } else if id == PARENT_LOCATOR {
            let n = le::u16(item, 18).unwrap_or(0);
            for k in 0..usize::from(n) {
                let p = 20 + 12 * k;
                let ko = le::u32(item, p).unwrap_or(0) as usize;
                let vo = le::u32(item, p + 4).unwrap_or(0) as usize;
                let kl = usize::from(le::u16(item, p + 8).unwrap_or(0));
                let vl = usize::from(le::u16(item, p + 10).unwrap_or(0));
                let (Some(key), Some(value)) = (
                    ko.checked_add(kl).and_then(|end| item.get(ko..end)),
                    vo.checked_add(vl).and_then(|end| item.get(vo..end)),
                ) else {
                    return Err(corrupt(
                        name,
                        "parent locator entry",
                        ipos + p as u64,
                        "key or value outside the item",
                    ));
                };
                m.parent_locator.push((utf16le(key), utf16le(value)));
            }
        } else if required {
            return Err(Error::Unsupported(format!(
                "{name}: VHDX metadata item {} at byte {epos} is required and vmrescue does \
                 not know it",
                guid_text(&id)
            )));
        }
    }
    if !have_params || !have_size {
        return Err(corrupt(
            name,
            "metadata table",
            base,
            "the file parameters or the virtual disk size item is missing",
        ));
    }
    Ok(m)
}

/// Payload block states (BAT entry bits 0-2).
mod state {
    pub(super) const NOT_PRESENT: u64 = 0;
    pub(super) const UNDEFINED: u64 = 1;
    pub(super) const ZERO: u64 = 2;
    pub(super) const UNMAPPED: u64 = 3;
    pub(super) const FULLY_PRESENT: u64 = 6;
    pub(super) const PARTIALLY_PRESENT: u64 = 7;
}

impl Mapped for Vhdx {
    fn virtual_size(&self) -> u64 {
        self.meta.virtual_size
    }

    fn locate(&self, offset: u64) -> std::io::Result<(Piece, u64)> {
        let bs = u64::from(self.meta.block_size);
        let block = offset / bs;
        let within = offset % bs;
        let left = bs - within;
        let cr = self.chunk_ratio;
        let idx = block + block / cr;
        let entry = self.bat.get(idx as usize).copied().unwrap_or(0);
        let host = entry & !0xf_ffff;
        let absent = if self.meta.has_parent {
            Piece::Parent
        } else {
            Piece::Zero
        };
        match entry & 7 {
            state::NOT_PRESENT => Ok((absent, left)),
            state::UNDEFINED | state::ZERO | state::UNMAPPED => Ok((Piece::Zero, left)),
            state::FULLY_PRESENT if host != 0 => Ok((Piece::Host(host + within), left)),
            state::PARTIALLY_PRESENT if self.meta.has_parent && host != 0 => {
                let sb_idx = (block / cr) * (cr + 1) + cr;
                let sb = self.bat.get(sb_idx as usize).copied().unwrap_or(0);
                if sb & 7 != 6 || sb & !0xf_ffff == 0 {
                    return Err(self.io_corrupt(
                        "BAT entry",
                        self.bat_offset + sb_idx * 8,
                        format!(
                            "block {block} is partially present but its chunk has no sector \
                             bitmap (entry {sb:#x})"
                        ),
                    ));
                }
                let lss = u64::from(self.meta.logical_sector_size);
                let per_block = bs / lss;
                let bytes = (per_block / 8) as usize;
                let at = (sb & !0xf_ffff) + (block % cr) * (per_block / 8);
                let bitmap = self.bitmaps.get(&*self.base.file, at, bytes)?;
                let bit = |s: u64| {
                    bitmap.get((s / 8) as usize).copied().unwrap_or(0) & (1 << (s % 8)) != 0
                };
                let first = within / lss;
                let present = bit(first);
                let mut s = first + 1;
                while s < per_block && bit(s) == present {
                    s += 1;
                }
                let run = s * lss - within;
                Ok((
                    if present {
                        Piece::Host(host + within)
                    } else {
                        Piece::Parent
                    },
                    run,
                ))
            }
            st => Err(self.io_corrupt(
                "BAT entry",
                self.bat_offset + idx * 8,
                format!("payload block {block} has state {st} at file offset {host}"),
            )),
        }
    }

    fn base(&self) -> &Base {
        &self.base
    }
}

impl ReadAt for Vhdx {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        read_mapped(self, offset, buf)
    }
    fn size(&self) -> u64 {
        self.meta.virtual_size
    }
}

#[cfg(test)]
mod tests;
