//! btrfs items: inodes, names (refs, directory and xattr items), file
//! extents, roots and root references.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::sb::Key;
use crate::error::{Error, Result};
use crate::fs::Timestamp;
use crate::io::le;

/// Item types.
pub mod ty {
    /// Inode item.
    pub const INODE_ITEM: u8 = 1;
    /// Inode back reference (name in a parent).
    pub const INODE_REF: u8 = 12;
    /// Extended inode back reference.
    pub const INODE_EXTREF: u8 = 13;
    /// Extended attribute.
    pub const XATTR_ITEM: u8 = 24;
    /// Directory entry by name hash.
    pub const DIR_ITEM: u8 = 84;
    /// Directory entry by index.
    pub const DIR_INDEX: u8 = 96;
    /// File extent.
    pub const EXTENT_DATA: u8 = 108;
    /// Data checksums.
    pub const EXTENT_CSUM: u8 = 128;
    /// Root of a tree.
    pub const ROOT_ITEM: u8 = 132;
    /// Subvolume back reference.
    pub const ROOT_BACKREF: u8 = 144;
    /// Subvolume reference.
    pub const ROOT_REF: u8 = 156;
    /// Device.
    pub const DEV_ITEM: u8 = 216;
    /// Chunk.
    pub const CHUNK_ITEM: u8 = 228;
}

/// Well-known tree and object ids.
pub mod id {
    /// The root tree.
    pub const ROOT_TREE: u64 = 1;
    /// The chunk tree.
    pub const CHUNK_TREE: u64 = 3;
    /// The top-level subvolume.
    pub const FS_TREE: u64 = 5;
    /// The root tree's directory (holds `default`).
    pub const ROOT_TREE_DIR: u64 = 6;
    /// The checksum tree.
    pub const CSUM_TREE: u64 = 7;
    /// First id of subvolumes and inodes.
    pub const FIRST_FREE: u64 = 256;
    /// Last subvolume id.
    pub const LAST_FREE: u64 = u64::MAX - 256;
    /// Objectid of checksum items.
    pub const EXTENT_CSUM: u64 = u64::MAX - 9;
    /// Objectid of chunk items.
    pub const FIRST_CHUNK_TREE: u64 = 256;
}

/// Bytes of an inode item.
pub const INODE_ITEM_LEN: usize = 160;

fn short(what: &str, key: Key, need: usize, have: usize) -> Error {
    Error::corrupt(
        format!("btrfs {what} item"),
        0,
        format!(
            "key ({} {} {}): {have} bytes (at least {need})",
            key.objectid, key.ty, key.offset
        ),
    )
}

fn time(b: &[u8], off: usize) -> Timestamp {
    let sec = le::u64(b, off).unwrap_or(0);
    let nsec = off.checked_add(8).and_then(|o| le::u32(b, o)).unwrap_or(0);
    Timestamp {
        sec: i64::from_le_bytes(sec.to_le_bytes()),
        nsec: nsec.min(999_999_999),
    }
}

/// An inode item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// `st_size`.
    pub size: u64,
    /// Bytes allocated.
    pub nbytes: u64,
    /// Links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Mode.
    pub mode: u32,
    /// Device number as the kernel's `dev_t` (major << 20 | minor).
    pub rdev: u64,
    /// Inode flags.
    pub flags: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Change time.
    pub ctime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Creation time.
    pub otime: Timestamp,
}

/// Inode flag: no data checksums.
pub const INODE_NODATASUM: u64 = 1;

impl Inode {
    /// Decode an inode item.
    pub fn parse(key: Key, b: &[u8]) -> Result<Inode> {
        if b.len() < INODE_ITEM_LEN {
            return Err(short("inode", key, INODE_ITEM_LEN, b.len()));
        }
        let u64_at = |o| le::u64(b, o).unwrap_or(0);
        let u32_at = |o| le::u32(b, o).unwrap_or(0);
        Ok(Inode {
            size: u64_at(16),
            nbytes: u64_at(24),
            nlink: u32_at(40),
            uid: u32_at(44),
            gid: u32_at(48),
            mode: u32_at(52),
            rdev: u64_at(56),
            flags: u64_at(64),
            atime: time(b, 112),
            ctime: time(b, 124),
            mtime: time(b, 136),
            otime: time(b, 148),
        })
    }

    /// (major, minor) of a device node.
    pub fn rdev_pair(&self) -> (u32, u32) {
        let major = u32::try_from(self.rdev >> 20).unwrap_or(u32::MAX);
        let minor = u32::try_from(self.rdev & 0xf_ffff).unwrap_or(0);
        (major, minor)
    }
}

/// A directory entry or xattr (the dir item layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirItem {
    /// What it names: an inode (type 1) or a subvolume (type 132).
    pub location: Key,
    /// The file type byte.
    pub file_type: u8,
    /// Name.
    pub name: Vec<u8>,
    /// Data (xattr value).
    pub data: Vec<u8>,
}

/// Bytes of a dir item header.
const DIR_ITEM_LEN: usize = 30;

/// Decode every dir item packed in one item (hash collisions share one).
pub fn dir_items(key: Key, b: &[u8]) -> Result<Vec<DirItem>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < b.len() {
        let bad = || short("dir", key, off.saturating_add(DIR_ITEM_LEN), b.len());
        let location = Key::parse(b, off).ok_or_else(bad)?;
        let data_len = usize::from(le::u16(b, off.saturating_add(25)).ok_or_else(bad)?);
        let name_len = usize::from(le::u16(b, off.saturating_add(27)).ok_or_else(bad)?);
        let file_type = *b.get(off.saturating_add(29)).ok_or_else(bad)?;
        let ns = off.saturating_add(DIR_ITEM_LEN);
        let ds = ns.saturating_add(name_len);
        let end = ds.saturating_add(data_len);
        let name = b
            .get(ns..ds)
            .ok_or_else(|| short("dir", key, end, b.len()))?;
        let data = b
            .get(ds..end)
            .ok_or_else(|| short("dir", key, end, b.len()))?;
        out.push(DirItem {
            location,
            file_type,
            name: name.to_vec(),
            data: data.to_vec(),
        });
        off = end;
    }
    Ok(out)
}

/// A name of an inode in a parent directory (inode ref or extref).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeName {
    /// Parent directory inode.
    pub parent: u64,
    /// Directory index.
    pub index: u64,
    /// Name.
    pub name: Vec<u8>,
}

/// Decode an INODE_REF item (its key's offset is the parent).
pub fn inode_refs(key: Key, b: &[u8]) -> Result<Vec<InodeName>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < b.len() {
        let bad = || short("inode ref", key, off.saturating_add(10), b.len());
        let index = le::u64(b, off).ok_or_else(bad)?;
        let len = usize::from(le::u16(b, off.saturating_add(8)).ok_or_else(bad)?);
        let s = off.saturating_add(10);
        let e = s.saturating_add(len);
        let name = b.get(s..e).ok_or_else(bad)?;
        out.push(InodeName {
            parent: key.offset,
            index,
            name: name.to_vec(),
        });
        off = e;
    }
    Ok(out)
}

/// Decode an INODE_EXTREF item.
pub fn inode_extrefs(key: Key, b: &[u8]) -> Result<Vec<InodeName>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < b.len() {
        let bad = || short("inode extref", key, off.saturating_add(18), b.len());
        let parent = le::u64(b, off).ok_or_else(bad)?;
        let index = le::u64(b, off.saturating_add(8)).ok_or_else(bad)?;
        let len = usize::from(le::u16(b, off.saturating_add(16)).ok_or_else(bad)?);
        let s = off.saturating_add(18);
        let e = s.saturating_add(len);
        let name = b.get(s..e).ok_or_else(bad)?;
        out.push(InodeName {
            parent,
            index,
            name: name.to_vec(),
        });
        off = e;
    }
    Ok(out)
}

/// File extent kinds.
pub mod extent_type {
    /// Data in the item.
    pub const INLINE: u8 = 0;
    /// Data in an extent.
    pub const REG: u8 = 1;
    /// Allocated, never written.
    pub const PREALLOC: u8 = 2;
}

/// A file extent item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileExtent {
    /// Decompressed size of the extent (inline: of the data).
    pub ram_bytes: u64,
    /// Compression byte.
    pub compression: u8,
    /// Encryption byte (must be 0).
    pub encryption: u8,
    /// Kind: inline, regular, prealloc.
    pub kind: u8,
    /// Inline data.
    pub inline: Vec<u8>,
    /// Logical start of the extent on disk (0: a hole).
    pub disk_bytenr: u64,
    /// Bytes on disk.
    pub disk_num_bytes: u64,
    /// Offset into the (decompressed) extent.
    pub offset: u64,
    /// Bytes of the file it covers.
    pub num_bytes: u64,
}

impl FileExtent {
    /// Decode a file extent item.
    pub fn parse(key: Key, b: &[u8]) -> Result<FileExtent> {
        if b.len() < 21 {
            return Err(short("file extent", key, 21, b.len()));
        }
        let kind = b.get(20).copied().unwrap_or(0);
        let mut x = FileExtent {
            ram_bytes: le::u64(b, 8).unwrap_or(0),
            compression: b.get(16).copied().unwrap_or(0),
            encryption: b.get(17).copied().unwrap_or(0),
            kind,
            inline: Vec::new(),
            disk_bytenr: 0,
            disk_num_bytes: 0,
            offset: 0,
            num_bytes: 0,
        };
        match kind {
            extent_type::INLINE => {
                x.inline = b.get(21..).unwrap_or(&[]).to_vec();
                x.num_bytes = x.ram_bytes;
            }
            extent_type::REG | extent_type::PREALLOC => {
                if b.len() < 53 {
                    return Err(short("file extent", key, 53, b.len()));
                }
                x.disk_bytenr = le::u64(b, 21).unwrap_or(0);
                x.disk_num_bytes = le::u64(b, 29).unwrap_or(0);
                x.offset = le::u64(b, 37).unwrap_or(0);
                x.num_bytes = le::u64(b, 45).unwrap_or(0);
            }
            k => {
                return Err(Error::corrupt(
                    "btrfs file extent item",
                    0,
                    format!(
                        "inode {} offset {}: extent type {k}",
                        key.objectid, key.offset
                    ),
                ));
            }
        }
        Ok(x)
    }
}

/// A root item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootItem {
    /// Root directory inode of a subvolume (256).
    pub root_dirid: u64,
    /// Logical address of the tree root.
    pub bytenr: u64,
    /// Flags (bit 0: read-only subvolume).
    pub flags: u64,
    /// Level of the tree root.
    pub level: u8,
    /// Generation.
    pub generation: u64,
    /// UUID (zero on old filesystems).
    pub uuid: [u8; 16],
    /// UUID of the subvolume this one is a snapshot of (zero: none).
    pub parent_uuid: [u8; 16],
    /// Creation time (zero on old filesystems).
    pub otime: Timestamp,
}

impl RootItem {
    /// Decode a root item (old short ones too).
    pub fn parse(key: Key, b: &[u8]) -> Result<RootItem> {
        if b.len() < 239 {
            return Err(short("root", key, 239, b.len()));
        }
        let mut uuid = [0u8; 16];
        if let Some(u) = b.get(247..263) {
            uuid.copy_from_slice(u);
        }
        let mut parent_uuid = [0u8; 16];
        if let Some(u) = b.get(263..279) {
            parent_uuid.copy_from_slice(u);
        }
        Ok(RootItem {
            root_dirid: le::u64(b, 168).unwrap_or(0),
            bytenr: le::u64(b, 176).unwrap_or(0),
            flags: le::u64(b, 208).unwrap_or(0),
            level: b.get(238).copied().unwrap_or(0),
            generation: le::u64(b, 160).unwrap_or(0),
            uuid,
            parent_uuid,
            otime: if b.len() >= 351 {
                time(b, 339)
            } else {
                Timestamp::default()
            },
        })
    }
}

/// A root ref or backref: where a subvolume sits in its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRef {
    /// Directory inode in the parent subvolume.
    pub dirid: u64,
    /// Directory index.
    pub sequence: u64,
    /// Name.
    pub name: Vec<u8>,
}

impl RootRef {
    /// Decode a root ref.
    pub fn parse(key: Key, b: &[u8]) -> Result<RootRef> {
        let bad = || short("root ref", key, 18, b.len());
        let len = usize::from(le::u16(b, 16).ok_or_else(bad)?);
        let name = 18usize
            .checked_add(len)
            .and_then(|e| b.get(18..e))
            .ok_or_else(bad)?;
        Ok(RootRef {
            dirid: le::u64(b, 0).ok_or_else(bad)?,
            sequence: le::u64(b, 8).ok_or_else(bad)?,
            name: name.to_vec(),
        })
    }
}
