//! VHD images (Virtual PC, Hyper-V generation 1, Azure), read-only.
//!
//! Our own reader, following Microsoft's "Virtual Hard Disk Image Format
//! Specification" (2006): the 512-byte footer at the end of the file (and
//! its copy at the start of dynamic and differencing disks), fixed disks
//! (the data, then the footer), dynamic disks (dynamic header, block
//! allocation table, a sector bitmap before each block) and differencing
//! disks (a parent found through the parent locators; sectors the bitmap
//! marks absent come from the parent).
//!
//! The virtual size follows QEMU's rule (`block/vpc.c`): images made by
//! Virtual PC and QEMU's `qemu` creator show the size their CHS geometry
//! gives; Hyper-V, Disk2vhd, XenServer, XenConverter and QEMU's `qem2`
//! creator show the footer's current size; the largest geometry means the
//! current size too. So the size equals `qemu-img info`'s.
//!
//! Everything in the file is treated as hostile: every table is checked
//! against the file's size and capped, every error names the structure
//! and its byte position.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::image::extents::{Base, Mapped, Piece, TableCache, read_mapped, uuid_text};
use crate::io::{ReadAt, be, read_vec};

/// The footer's and the copy's cookie.
pub const COOKIE: &[u8; 8] = b"conectix";
/// The dynamic header's cookie.
const DYN_COOKIE: &[u8; 8] = b"cxsparse";
const FOOTER_LEN: u64 = 512;
const DYN_HEADER_LEN: u64 = 1024;
/// The largest block allocation table read (entries): 2 TiB of 2 MiB blocks
/// is 1 Mi entries; allow 16 Mi (64 MiB of table).
const MAX_BAT_ENTRIES: u64 = 16 << 20;
/// The largest block size accepted (the spec's default is 2 MiB).
const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Largest CHS geometry: 65535 cylinders, 16 heads, 255 sectors.
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;
/// The largest parent locator read.
const MAX_LOCATOR: u64 = 64 << 10;

/// Whether the first or the last bytes of a file carry a VHD footer.
pub fn has_magic(head: &[u8], tail: &[u8]) -> bool {
    head.starts_with(COOKIE) || tail.starts_with(COOKIE)
}

/// The disk type the footer names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    /// The data, then the footer.
    Fixed,
    /// Blocks allocated on demand.
    Dynamic,
    /// Blocks allocated on demand over a parent image.
    Differencing,
}

impl DiskType {
    /// The name `qemu-img` would use (`fixed`/`dynamic`), or `differencing`.
    pub fn name(self) -> &'static str {
        match self {
            DiskType::Fixed => "fixed",
            DiskType::Dynamic => "dynamic",
            DiskType::Differencing => "differencing",
        }
    }
}

/// The decoded footer.
#[derive(Debug, Clone)]
pub struct Footer {
    /// Where it was read.
    pub position: u64,
    /// Byte offset of the dynamic header (dynamic and differencing disks).
    pub data_offset: u64,
    /// The creator application, four characters (`win `, `qemu`, `vpc `...).
    pub creator_app: [u8; 4],
    /// The creator's host OS (`Wi2k`, `Mac `).
    pub creator_os: [u8; 4],
    /// Current size in bytes.
    pub current_size: u64,
    /// Cylinders, heads, sectors per track.
    pub geometry: (u16, u8, u8),
    /// The disk type.
    pub disk_type: DiskType,
    /// The image's UUID.
    pub uuid: [u8; 16],
    /// Whether the stored checksum matched.
    pub checksum_ok: bool,
}

/// The ones' complement of the byte sum, with the checksum field counted as zeros.
fn checksum(b: &[u8], field: usize) -> u32 {
    let sum = b.iter().enumerate().fold(0u32, |s, (i, &x)| {
        if (field..field + 4).contains(&i) {
            s
        } else {
            s.wrapping_add(u32::from(x))
        }
    });
    !sum
}

fn array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(off..off + N) {
        a.copy_from_slice(s);
    }
    a
}

impl Footer {
    /// Decode the 512 bytes of a footer read at `position` of `name`.
    pub fn decode(b: &[u8], position: u64, name: &str) -> Result<Footer> {
        let structure = || format!("{name}: VHD footer");
        if b.len() < FOOTER_LEN as usize || !b.starts_with(COOKIE) {
            return Err(Error::corrupt(
                structure(),
                position,
                "no \"conectix\" cookie",
            ));
        }
        let field = |off: usize| be::u32(b, off).unwrap_or(0);
        let disk_type = match field(60) {
            2 => DiskType::Fixed,
            3 => DiskType::Dynamic,
            4 => DiskType::Differencing,
            t => {
                return Err(Error::corrupt(
                    structure(),
                    position + 60,
                    format!("disk type {t} (expected 2 fixed, 3 dynamic or 4 differencing)"),
                ));
            }
        };
        Ok(Footer {
            position,
            data_offset: be::u64(b, 16).unwrap_or(u64::MAX),
            creator_app: array(b, 28),
            creator_os: array(b, 36),
            current_size: be::u64(b, 48).unwrap_or(0),
            geometry: (
                be::u16(b, 56).unwrap_or(0),
                b.get(58).copied().unwrap_or(0),
                b.get(59).copied().unwrap_or(0),
            ),
            disk_type,
            uuid: array(b, 68),
            checksum_ok: checksum(b.get(..512).unwrap_or(b), 64) == field(64),
        })
    }

    /// The virtual size as QEMU shows it (see the module's documentation).
    pub fn virtual_size(&self) -> u64 {
        let (c, h, s) = self.geometry;
        let chs = u64::from(c) * u64::from(h) * u64::from(s);
        let by_size: &[&[u8; 4]] = &[b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"];
        let use_chs = !by_size.contains(&&self.creator_app);
        if !use_chs || chs == MAX_GEOMETRY {
            self.current_size / 512 * 512
        } else {
            chs * 512
        }
    }
}

/// The dynamic disk header.
#[derive(Debug, Clone)]
pub struct DynHeader {
    /// Where it was read.
    pub position: u64,
    /// Byte offset of the block allocation table.
    pub table_offset: u64,
    /// BAT entries.
    pub max_table_entries: u32,
    /// Bytes per block.
    pub block_size: u32,
    /// The parent's UUID (differencing disks).
    pub parent_uuid: [u8; 16],
    /// The parent's file name (UTF-16BE in the file).
    pub parent_name: String,
    /// Parent locators: platform code, file offset, length.
    pub locators: Vec<([u8; 4], u64, u32)>,
}

impl DynHeader {
    fn decode(b: &[u8], position: u64, name: &str) -> Result<DynHeader> {
        let structure = || format!("{name}: VHD dynamic disk header");
        if !b.starts_with(DYN_COOKIE) {
            return Err(Error::corrupt(
                structure(),
                position,
                "no \"cxsparse\" cookie",
            ));
        }
        let block_size = be::u32(b, 32).unwrap_or(0);
        if block_size < 512 || !block_size.is_power_of_two() || block_size > MAX_BLOCK_SIZE {
            return Err(Error::corrupt(
                structure(),
                position + 32,
                format!("block size {block_size} (expected a power of two from 512 to 256 MiB)"),
            ));
        }
        let max_table_entries = be::u32(b, 28).unwrap_or(0);
        if u64::from(max_table_entries) > MAX_BAT_ENTRIES {
            return Err(Error::corrupt(
                structure(),
                position + 28,
                format!("{max_table_entries} BAT entries (limit {MAX_BAT_ENTRIES})"),
            ));
        }
        let units: Vec<u16> = (0..256)
            .map(|i| be::u16(b, 64 + 2 * i).unwrap_or(0))
            .take_while(|&u| u != 0)
            .collect();
        let locators = (0..8)
            .filter_map(|i| {
                let e = 576 + 24 * i;
                let code: [u8; 4] = array(b, e);
                let len = be::u32(b, e + 8)?;
                let off = be::u64(b, e + 16)?;
                (code != [0; 4] && len > 0).then_some((code, off, len))
            })
            .collect();
        Ok(DynHeader {
            position,
            table_offset: be::u64(b, 16).unwrap_or(u64::MAX),
            max_table_entries,
            block_size,
            parent_uuid: array(b, 40),
            parent_name: String::from_utf16_lossy(&units),
            locators,
        })
    }

    /// Bytes of the sector bitmap before each block (whole sectors).
    fn bitmap_len(&self) -> u64 {
        (u64::from(self.block_size) / 512)
            .div_ceil(8)
            .div_ceil(512)
            .saturating_mul(512)
    }
}

/// A VHD image opened for reading.
pub struct Vhd {
    base: Base,
    footer: Footer,
    size: u64,
    dynamic: Option<(DynHeader, Vec<u32>)>,
    /// Where a fixed disk's data ends in the file.
    data_end: u64,
    bitmaps: TableCache,
    problems: Vec<String>,
}

impl std::fmt::Debug for Vhd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vhd")
            .field("name", &self.base.name)
            .field("size", &self.size)
            .field("type", &self.footer.disk_type)
            .finish_non_exhaustive()
    }
}

impl Vhd {
    /// Parse a VHD from any byte source, without opening a parent: sectors
    /// of a differencing disk that are not stored read as zeros. `name` is
    /// used in messages. This is what the fuzz target drives.
    pub fn from_source(file: Arc<dyn ReadAt>, name: &str) -> Result<Vhd> {
        let file_size = file.size();
        if file_size < FOOTER_LEN {
            return Err(Error::corrupt(
                format!("{name}: VHD footer"),
                0,
                format!("the file has {file_size} bytes, fewer than a footer's 512"),
            ));
        }
        let tail_pos = file_size - FOOTER_LEN;
        let tail = read_vec(&*file, tail_pos, FOOTER_LEN, FOOTER_LEN)
            .context(|| format!("{name}: reading the VHD footer"))?;
        let head = read_vec(&*file, 0, FOOTER_LEN, FOOTER_LEN)
            .context(|| format!("{name}: reading the VHD footer copy"))?;
        let main = Footer::decode(&tail, tail_pos, name);
        let copy = Footer::decode(&head, 0, name).ok().filter(|_| tail_pos > 0);
        let mut problems = Vec::new();
        let footer = match (main, copy) {
            (Ok(m), _) if m.checksum_ok => m,
            (Ok(m), Some(c)) if c.checksum_ok => {
                problems.push(format!(
                    "VHD footer at byte {}: checksum mismatch; the copy at byte 0 is used",
                    m.position
                ));
                c
            }
            (Err(e), Some(c)) => {
                problems.push(format!("{e}; the copy at byte 0 is used"));
                if !c.checksum_ok {
                    problems.push("VHD footer copy at byte 0: checksum mismatch".into());
                }
                c
            }
            (Ok(m), _) => {
                problems.push(format!(
                    "VHD footer at byte {}: checksum mismatch (no good copy; used as it is)",
                    m.position
                ));
                m
            }
            (Err(e), None) => return Err(e),
        };
        let size = footer.virtual_size();
        let mut vhd = Vhd {
            base: Base::new(file, name),
            footer,
            size,
            dynamic: None,
            data_end: 0,
            bitmaps: TableCache::default(),
            problems,
        };
        match vhd.footer.disk_type {
            DiskType::Fixed => {
                // The data ends where the footer begins (a footer taken from
                // a copy at byte 0 has none behind it).
                let data_end = if vhd.footer.position == 0 {
                    file_size
                } else {
                    tail_pos
                };
                vhd.data_end = data_end;
                if data_end < size {
                    vhd.problems.push(format!(
                        "fixed VHD data ends at byte {data_end}, before the virtual size \
                         {size}: the file is cut short; the missing bytes cannot be read"
                    ));
                }
            }
            DiskType::Dynamic | DiskType::Differencing => {
                vhd.dynamic = Some(vhd.read_dynamic()?);
            }
        }
        Ok(vhd)
    }

    fn read_dynamic(&mut self) -> Result<(DynHeader, Vec<u32>)> {
        let name = &self.base.name;
        let pos = self.footer.data_offset;
        let b = read_vec(&*self.base.file, pos, DYN_HEADER_LEN, DYN_HEADER_LEN).map_err(|e| {
            Error::corrupt(
                format!("{name}: VHD dynamic disk header"),
                pos,
                format!("cannot be read ({e})"),
            )
        })?;
        let h = DynHeader::decode(&b, pos, name)?;
        let stored = be::u32(&b, 36).unwrap_or(0);
        if checksum(&b, 36) != stored {
            self.problems.push(format!(
                "VHD dynamic disk header at byte {pos}: checksum mismatch (used as it is)"
            ));
        }
        let needed = self.size.div_ceil(u64::from(h.block_size));
        if needed > u64::from(h.max_table_entries) {
            return Err(Error::corrupt(
                format!("{name}: VHD dynamic disk header"),
                pos + 28,
                format!(
                    "{} BAT entries cover less than the virtual size {} ({needed} blocks)",
                    h.max_table_entries, self.size
                ),
            ));
        }
        let len = needed * 4;
        let file_size = self.base.file.size();
        let avail = file_size.saturating_sub(h.table_offset).min(len);
        let raw = read_vec(&*self.base.file, h.table_offset, avail, MAX_BAT_ENTRIES * 4).map_err(
            |e| {
                Error::corrupt(
                    format!("{name}: VHD block allocation table"),
                    h.table_offset,
                    format!("cannot be read ({e})"),
                )
            },
        )?;
        let mut bat: Vec<u32> = raw
            .chunks_exact(4)
            .map(|c| be::u32(c, 0).unwrap_or(u32::MAX))
            .collect();
        if avail < len {
            self.problems.push(format!(
                "VHD block allocation table at byte {}: the file ends after {} of its {needed} \
                 entries; the blocks of the others read as not allocated",
                h.table_offset,
                bat.len()
            ));
            bat.resize(needed as usize, u32::MAX);
        }
        Ok((h, bat))
    }

    /// The decoded footer in use.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The dynamic header (dynamic and differencing disks).
    pub fn dynamic_header(&self) -> Option<&DynHeader> {
        self.dynamic.as_ref().map(|(h, _)| h)
    }

    /// Damage found while opening.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    /// Facts for the layer tree and `vmrescue info`.
    pub fn details(&self) -> Vec<String> {
        let f = &self.footer;
        let mut out = vec![format!(
            "VHD {}, created by {:?} on {:?}, UUID {}",
            f.disk_type.name(),
            String::from_utf8_lossy(&f.creator_app).trim_end_matches('\0'),
            String::from_utf8_lossy(&f.creator_os).trim_end_matches('\0'),
            uuid_text(&f.uuid)
        )];
        let (c, h, s) = f.geometry;
        out.push(format!(
            "geometry {c}/{h}/{s} (CHS), current size {} bytes",
            f.current_size
        ));
        if let Some((d, _)) = &self.dynamic {
            out.push(format!("block size {} KiB", d.block_size / 1024));
        }
        out
    }

    /// The parent locators' names, best first: relative Windows path,
    /// absolute Windows path, Mac URL, then the parent's bare file name.
    pub fn parent_names(&self) -> Vec<String> {
        let Some((h, _)) = &self.dynamic else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for want in [b"W2ru", b"W2ku", b"MacX"] {
            for (code, off, len) in &h.locators {
                if code != want {
                    continue;
                }
                let Ok(b) = read_vec(&*self.base.file, *off, u64::from(*len), MAX_LOCATOR) else {
                    continue;
                };
                let text = if want == b"MacX" {
                    let s = String::from_utf8_lossy(&b).into_owned();
                    s.strip_prefix("file://").map(str::to_owned).unwrap_or(s)
                } else {
                    let u: Vec<u16> = b
                        .chunks_exact(2)
                        .map(|c| crate::io::le::u16(c, 0).unwrap_or(0))
                        .collect();
                    String::from_utf16_lossy(&u)
                };
                out.push(text.trim_end_matches('\0').to_string());
            }
        }
        if !h.parent_name.is_empty() {
            out.push(h.parent_name.clone());
        }
        out
    }

    /// Read sectors absent from this differencing disk from `parent`.
    pub fn set_parent(&mut self, parent: Arc<dyn ReadAt>) {
        self.base.parent = Some(parent);
    }
}

impl Mapped for Vhd {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn locate(&self, offset: u64) -> std::io::Result<(Piece, u64)> {
        let Some((h, bat)) = &self.dynamic else {
            if offset >= self.data_end {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: fixed VHD data ends at byte {}; virtual byte {offset} is missing                          (the file is cut short)",
                        self.base.name, self.data_end
                    ),
                ));
            }
            return Ok((Piece::Host(offset), self.data_end.min(self.size) - offset));
        };
        let bs = u64::from(h.block_size);
        let block = offset / bs;
        let within = offset % bs;
        let left = bs - within;
        let absent = if self.footer.disk_type == DiskType::Differencing {
            Piece::Parent
        } else {
            Piece::Zero
        };
        let entry = bat.get(block as usize).copied().unwrap_or(u32::MAX);
        if entry == u32::MAX {
            return Ok((absent, left));
        }
        let start = u64::from(entry) * 512;
        let bitmap_len = h.bitmap_len();
        let bitmap = self
            .bitmaps
            .get(&*self.base.file, start, bitmap_len as usize)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{}: VHD sector bitmap of block {block} at byte {start}: {e}",
                        self.base.name
                    ),
                )
            })?;
        let bit = |sector: u64| {
            let byte = bitmap.get((sector / 8) as usize).copied().unwrap_or(0);
            byte & (0x80 >> (sector % 8)) != 0
        };
        let first = within / 512;
        let present = bit(first);
        let sectors = bs / 512;
        let mut s = first + 1;
        while s < sectors && bit(s) == present {
            s += 1;
        }
        let run = s * 512 - within;
        if present {
            Ok((Piece::Host(start + bitmap_len + within), run))
        } else {
            Ok((absent, run))
        }
    }

    fn base(&self) -> &Base {
        &self.base
    }
}

impl ReadAt for Vhd {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        read_mapped(self, offset, buf)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests;
