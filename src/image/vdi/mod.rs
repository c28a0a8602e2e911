//! VDI images (VirtualBox), read-only.
//!
//! Our own reader, following VirtualBox's format (`VDICore.h`): the
//! pre-header (text, signature 0xbeda107f, version 1.1), the header
//! (image type normal/fixed/differencing, block map and data offsets,
//! disk size, block size, UUIDs) and the block map (one 32-bit entry per
//! block: the block's index among the stored blocks; 0xffffffff free,
//! 0xfffffffe zero).
//!
//! A differencing VDI stores its parent's UUID only, no path: the parent
//! is the VDI in the same folder whose creation UUID equals it.
//!
//! Everything in the file is treated as hostile: every table is checked
//! against the file's size and capped, every error names the structure
//! and its byte position.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::image::extents::{Base, Mapped, Piece, read_mapped};
use crate::io::{ReadAt, le, read_vec};

/// The signature at byte 0x40.
pub const SIGNATURE: u32 = 0xbeda_107f;
const HEADER_LEN: u64 = 0x200;
/// The largest block map read (entries): 64 Mi (256 MiB of map).
const MAX_BLOCKS: u64 = 64 << 20;
const FREE: u32 = u32::MAX;
const ZERO: u32 = u32::MAX - 1;

/// Whether the first bytes of a file carry the VDI signature.
pub fn has_magic(head: &[u8]) -> bool {
    le::u32(head, 0x40) == Some(SIGNATURE)
}

/// The image type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VdiType {
    /// Blocks allocated on demand ("normal", qemu's default).
    Dynamic,
    /// Every block allocated (qemu's `static=on`).
    Fixed,
    /// Blocks over a parent image.
    Differencing,
}

/// The decoded header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Major and minor version.
    pub version: (u16, u16),
    /// The image type.
    pub kind: VdiType,
    /// Byte offset of the block map.
    pub blocks_offset: u32,
    /// Byte offset of the first block.
    pub data_offset: u32,
    /// Virtual disk size in bytes.
    pub disk_size: u64,
    /// Bytes per block.
    pub block_size: u32,
    /// Extra bytes stored before each block.
    pub block_extra: u32,
    /// Blocks in the disk.
    pub blocks: u32,
    /// Blocks stored.
    pub blocks_allocated: u32,
    /// The image's UUID (at creation).
    pub uuid: [u8; 16],
    /// The parent's UUID (differencing images).
    pub parent_uuid: [u8; 16],
}

fn array16(b: &[u8], off: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(off..off + 16) {
        a.copy_from_slice(s);
    }
    a
}

/// A VirtualBox UUID as text (stored like a Microsoft GUID).
pub fn vbox_uuid_text(b: &[u8; 16]) -> String {
    crate::image::extents::guid_text(b)
}

impl Header {
    /// Decode the first 512 bytes of `name`.
    pub fn decode(b: &[u8], name: &str) -> Result<Header> {
        let structure = || format!("{name}: VDI header");
        if !has_magic(b) {
            return Err(Error::corrupt(
                structure(),
                0x40,
                "no VDI signature 0xbeda107f",
            ));
        }
        let v = le::u32(b, 0x44).unwrap_or(0);
        let version = ((v >> 16) as u16, v as u16);
        if version.0 != 1 {
            return Err(Error::Unsupported(format!(
                "{name}: VDI version {}.{} (vmrescue reads 1.1)",
                version.0, version.1
            )));
        }
        let kind = match le::u32(b, 0x4c).unwrap_or(0) {
            1 => VdiType::Dynamic,
            2 => VdiType::Fixed,
            4 => VdiType::Differencing,
            t => {
                return Err(Error::corrupt(
                    structure(),
                    0x4c,
                    format!("image type {t} (expected 1 normal, 2 fixed or 4 differencing)"),
                ));
            }
        };
        let f = |off: usize| le::u32(b, off).unwrap_or(0);
        let h = Header {
            version,
            kind,
            blocks_offset: f(0x154),
            data_offset: f(0x158),
            disk_size: le::u64(b, 0x170).unwrap_or(0),
            block_size: f(0x178),
            block_extra: f(0x17c),
            blocks: f(0x180),
            blocks_allocated: f(0x184),
            uuid: array16(b, 0x188),
            parent_uuid: array16(b, 0x1a8),
        };
        if h.block_size < 512 || !h.block_size.is_power_of_two() || h.block_size > 256 << 20 {
            return Err(Error::corrupt(
                structure(),
                0x178,
                format!(
                    "block size {} (expected a power of two from 512 to 256 MiB)",
                    h.block_size
                ),
            ));
        }
        if h.block_extra > 256 << 20 {
            return Err(Error::corrupt(
                structure(),
                0x17c,
                format!("{} extra bytes per block", h.block_extra),
            ));
        }
        let needed = h.disk_size.div_ceil(u64::from(h.block_size));
        if u64::from(h.blocks) < needed || u64::from(h.blocks) > MAX_BLOCKS {
            return Err(Error::corrupt(
                structure(),
                0x180,
                format!(
                    "{} blocks for a disk of {} bytes ({needed} needed, at most {MAX_BLOCKS})",
                    h.blocks, h.disk_size
                ),
            ));
        }
        Ok(h)
    }
}

/// A VDI image opened for reading.
pub struct Vdi {
    base: Base,
    header: Header,
    map: Vec<u32>,
    problems: Vec<String>,
}

impl std::fmt::Debug for Vdi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vdi")
            .field("name", &self.base.name)
            .field("size", &self.header.disk_size)
            .field("kind", &self.header.kind)
            .finish_non_exhaustive()
    }
}

impl Vdi {
    /// Parse a VDI from any byte source, without opening a parent. `name`
    /// is used in messages. This is what the fuzz target drives.
    pub fn from_source(file: Arc<dyn ReadAt>, name: &str) -> Result<Vdi> {
        let len = file.size().min(HEADER_LEN);
        let b = read_vec(&*file, 0, len, HEADER_LEN).context(|| format!("{name}: VDI header"))?;
        let header = Header::decode(&b, name)?;
        let want = u64::from(header.blocks) * 4;
        let at = u64::from(header.blocks_offset);
        let avail = file.size().saturating_sub(at).min(want);
        let raw = if avail == 0 {
            Vec::new()
        } else {
            read_vec(&*file, at, avail, MAX_BLOCKS * 4).map_err(|e| {
                Error::corrupt(
                    format!("{name}: VDI block map"),
                    at,
                    format!("cannot be read ({e})"),
                )
            })?
        };
        let mut map: Vec<u32> = raw
            .chunks_exact(4)
            .map(|c| le::u32(c, 0).unwrap_or(FREE))
            .collect();
        let mut problems = Vec::new();
        if avail < want {
            problems.push(format!(
                "VDI block map at byte {at}: the file ends after {} of its {} entries; the \
                 others read as free",
                map.len(),
                header.blocks
            ));
            map.resize(header.blocks as usize, FREE);
        }
        Ok(Vdi {
            base: Base::new(file, name),
            header,
            map,
            problems,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Damage found while opening.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    /// Facts for the layer tree and `vmrescue info`.
    pub fn details(&self) -> Vec<String> {
        let h = &self.header;
        let kind = match h.kind {
            VdiType::Dynamic => "dynamic",
            VdiType::Fixed => "fixed",
            VdiType::Differencing => "differencing",
        };
        let mut out = vec![
            format!(
                "VDI {}.{} {kind}, block size {} KiB, {} of {} blocks allocated",
                h.version.0,
                h.version.1,
                h.block_size / 1024,
                h.blocks_allocated,
                h.blocks
            ),
            format!("UUID {}", vbox_uuid_text(&h.uuid)),
        ];
        if h.kind == VdiType::Differencing {
            out.push(format!("parent UUID {}", vbox_uuid_text(&h.parent_uuid)));
        }
        out
    }

    /// Read blocks absent from this differencing disk from `parent`.
    pub fn set_parent(&mut self, parent: Arc<dyn ReadAt>) {
        self.base.parent = Some(parent);
    }
}

impl Mapped for Vdi {
    fn virtual_size(&self) -> u64 {
        self.header.disk_size
    }

    fn locate(&self, offset: u64) -> std::io::Result<(Piece, u64)> {
        let h = &self.header;
        let bs = u64::from(h.block_size);
        let block = offset / bs;
        let within = offset % bs;
        let left = bs - within;
        match self.map.get(block as usize).copied().unwrap_or(FREE) {
            FREE if h.kind == VdiType::Differencing => Ok((Piece::Parent, left)),
            FREE | ZERO => Ok((Piece::Zero, left)),
            i => {
                let stride = bs + u64::from(h.block_extra);
                let host = u64::from(h.data_offset)
                    + u64::from(i) * stride
                    + u64::from(h.block_extra)
                    + within;
                Ok((Piece::Host(host), left))
            }
        }
    }

    fn base(&self) -> &Base {
        &self.base
    }
}

impl ReadAt for Vdi {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        read_mapped(self, offset, buf)
    }
    fn size(&self) -> u64 {
        self.header.disk_size
    }
}
