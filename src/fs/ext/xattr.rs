//! Extended attributes: in the inode body after `i_extra_isize`, and in
//! one xattr block (`i_file_acl`), possibly with values in EA inodes.

use super::inode::{self, Inode};
use super::superblock::incompat;
use super::{Ext, csum};
use crate::error::{Error, Result};
use crate::fs::Xattr;
use crate::io::le;
use crate::problem::Problem;

/// `h_magic` / the in-inode header magic.
pub(super) const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;
/// Name index of `system.data` (inline data).
const INDEX_SYSTEM: u8 = 7;
/// Largest value accepted (the VFS limit).
const XATTR_SIZE_MAX: u64 = 65536;
/// Most bytes of values kept for one inode.
const MAX_TOTAL_VALUES: usize = 4 << 20;

/// One entry as stored.
struct Entry {
    index: u8,
    name: Vec<u8>,
    value: Vec<u8>,
}

fn prefix(index: u8) -> Option<&'static [u8]> {
    Some(match index {
        1 => b"user.",
        2 => b"system.posix_acl_access",
        3 => b"system.posix_acl_default",
        4 => b"trusted.",
        6 => b"security.",
        8 => b"system.richacl",
        10 => b"gnu.",
        _ => return None,
    })
}

/// Convert an ext4 on-disk POSIX ACL (version 1, short entries) to the
/// form `getxattr` returns (version 2, 8-byte entries).
fn acl_to_xattr(v: &[u8]) -> Option<Vec<u8>> {
    if le::u32(v, 0)? != 1 {
        return None;
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    let mut off = 4;
    while off < v.len() {
        let tag = le::u16(v, off)?;
        let perm = le::u16(v, off + 2)?;
        let id = match tag {
            // ACL_USER, ACL_GROUP carry an id.
            2 | 8 => {
                let id = le::u32(v, off + 4)?;
                off += 8;
                id
            }
            1 | 4 | 0x10 | 0x20 => {
                off += 4;
                u32::MAX
            }
            _ => return None,
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

impl Ext {
    /// Parse the entries in `area` (entries start at `first`, value offsets
    /// are relative to `value_base`), at byte `pos`.
    fn xattr_entries(
        &self,
        inode: &Inode,
        area: &[u8],
        first: usize,
        value_base: usize,
        pos: u64,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        const S: &str = "ext xattr entry";
        // Values lie after the list's terminator, as the kernel's check_xattrs demands.
        let values_from = entries_end(area, first).map_or(area.len(), |t| t + 4);
        let mut off = first;
        let mut n = 0usize;
        while off + 4 <= area.len() && le::u32(area, off) != Some(0) {
            n += 1;
            if n > 4096 || off + 16 > area.len() {
                return Err(Error::corrupt(
                    S,
                    pos + off as u64,
                    "entry list runs past its area",
                ));
            }
            let name_len = usize::from(area[off]);
            let index = area[off + 1];
            let value_offs = usize::from(le::u16(area, off + 2).unwrap_or(0));
            let value_inum = le::u32(area, off + 4).unwrap_or(0);
            let value_size = le::u32(area, off + 8).unwrap_or(0);
            let name_end = off + 16 + name_len;
            if name_end > area.len() {
                return Err(Error::corrupt(
                    S,
                    pos + off as u64,
                    "name runs past its area",
                ));
            }
            let name = area[off + 16..name_end].to_vec();
            let value = if value_inum != 0 {
                self.ea_inode_value(inode, value_inum, u64::from(value_size), pos + off as u64)?
            } else {
                let start = value_base + value_offs;
                let end = start + value_size as usize;
                if value_size > 0 && start < values_from {
                    return Err(Error::corrupt(
                        S,
                        pos + off as u64,
                        format!(
                            "value at offset {value_offs} overlaps the entries (they end at offset {})",
                            values_from.saturating_sub(value_base)
                        ),
                    ));
                }
                if u64::from(value_size) > XATTR_SIZE_MAX || end > area.len() {
                    return Err(Error::corrupt(
                        S,
                        pos + off as u64,
                        format!(
                            "value of {value_size} bytes at offset {value_offs} runs past its area"
                        ),
                    ));
                }
                area[start..end].to_vec()
            };
            let total: usize = out.iter().map(|e| e.value.len()).sum::<usize>() + value.len();
            if total > MAX_TOTAL_VALUES {
                return Err(Error::corrupt(
                    S,
                    pos + off as u64,
                    format!(
                        "inode {}: more than {MAX_TOTAL_VALUES} bytes of values",
                        inode.ino
                    ),
                ));
            }
            out.push(Entry { index, name, value });
            off = (name_end + 3) & !3;
        }
        Ok(())
    }

    /// The value stored in EA inode `ino` (ea_inode feature).
    fn ea_inode_value(&self, owner: &Inode, ino: u32, size: u64, at: u64) -> Result<Vec<u8>> {
        if !self.sb.has_incompat(incompat::EA_INODE) || size > XATTR_SIZE_MAX {
            return Err(Error::corrupt(
                "ext xattr entry",
                at,
                format!(
                    "inode {}: value in inode {ino} ({size} bytes) without ea_inode",
                    owner.ino
                ),
            ));
        }
        let ea = self.read_inode(ino)?;
        if !ea.has_flag(inode::flags::EA_INODE) || ea.i_size < size {
            return Err(Error::corrupt(
                "ext xattr entry",
                at,
                format!(
                    "inode {}: inode {ino} is not an EA inode of {size} bytes",
                    owner.ino
                ),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.read_file(&ea, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// All entries of `inode`: in-inode first, then the block.
    fn xattr_all(&self, inode: &Inode) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        if let Some(start) = inode.ibody_xattr_start()
            && le::u32(&inode.raw, start) == Some(EXT4_XATTR_MAGIC)
        {
            let area = &inode.raw[start + 4..];
            let pos = inode.pos + start as u64 + 4;
            if let Err(e) = self.xattr_entries(inode, area, 0, 0, pos, &mut out) {
                self.problem(Problem::of(
                    format!("ext in-inode xattrs of inode {}", inode.ino),
                    e.to_string(),
                ));
            }
        }
        if inode.i_file_acl != 0 {
            let blk = inode.i_file_acl;
            let at = inode.pos + 0x68;
            self.check_block(blk, 1, "ext inode i_file_acl", at)?;
            let block = self.read_block(blk, "ext xattr block")?;
            let pos = blk * self.block_size;
            if le::u32(&block, 0) != Some(EXT4_XATTR_MAGIC) {
                return Err(Error::corrupt(
                    "ext xattr block",
                    pos,
                    "bad h_magic (expected 0xea020000)",
                ));
            }
            if self.sb.has_metadata_csum() {
                let mut c = csum::crc32c(self.csum_seed, &blk.to_le_bytes());
                c = csum::crc32c(c, &block[..0x10]);
                c = csum::crc32c(c, &[0; 4]);
                c = csum::crc32c(c, &block[0x14..]);
                let stored = le::u32(&block, 0x10).unwrap_or(0);
                if c != stored {
                    self.problem(Problem::at(
                        "ext xattr block",
                        pos + 0x10,
                        format!("checksum mismatch (stored {stored:#010x}, computed {c:#010x})"),
                    ));
                }
            }
            self.xattr_entries(inode, &block, 0x20, 0, pos, &mut out)?;
        }
        Ok(out)
    }
}

/// Where the entry list starting at `first` of `area` ends (its 4 zero
/// bytes), if it ends inside the area.
fn entries_end(area: &[u8], first: usize) -> Option<usize> {
    let mut off = first;
    for _ in 0..=4096 {
        match le::u32(area, off)? {
            0 => return Some(off),
            _ => {
                let name_len = usize::from(*area.get(off)?);
                off = (off + 16 + name_len + 3) & !3;
            }
        }
    }
    None
}

/// The extended attributes of `inode` as `getxattr` shows them.
pub(super) fn list(ext: &Ext, inode: &Inode) -> Result<Vec<Xattr>> {
    let mut out = Vec::new();
    for e in ext.xattr_all(inode)? {
        let Some(p) = prefix(e.index) else { continue };
        let mut name = p.to_vec();
        let value = if e.index == 2 || e.index == 3 {
            if !e.name.is_empty() {
                continue;
            }
            acl_to_xattr(&e.value).unwrap_or(e.value)
        } else {
            name.extend_from_slice(&e.name);
            e.value
        };
        out.push(Xattr { name, value });
    }
    Ok(out)
}

/// The `system.data` value (inline data past `i_block`), if any.
pub(super) fn system_data(ext: &Ext, inode: &Inode) -> Result<Option<Vec<u8>>> {
    Ok(ext
        .xattr_all(inode)?
        .into_iter()
        .find(|e| e.index == INDEX_SYSTEM && e.name == b"data")
        .map(|e| e.value))
}
