//! Extended attributes: shortform (inside the inode), leaf blocks, and
//! node (dabtree) attr forks whose leaves are chained left to right.
//! Values too large for a leaf live in remote blocks of the attr fork.
//!
//! Names get the prefix Linux gives them (`user.`, `trusted.`,
//! `security.`); POSIX ACLs, stored as `trusted.SGI_ACL_FILE` /
//! `SGI_ACL_DEFAULT` in XFS's own layout, are shown as Linux shows them:
//! `system.posix_acl_access` / `system.posix_acl_default` in the generic
//! xattr layout. Parent pointers and incomplete entries are not listed.

use std::collections::HashSet;

use super::Xfs;
use super::bmap::{self, Bmx};
use super::inode::{Dinode, Fork, format};
use crate::error::{Error, Result};
use crate::fs::Xattr;
use crate::io::be;
use crate::problem::Problem;

/// Entry flags (`XFS_ATTR_*`).
const ATTR_LOCAL: u8 = 0x01;
const ATTR_ROOT: u8 = 0x02;
const ATTR_SECURE: u8 = 0x04;
const ATTR_PARENT: u8 = 0x08;
const ATTR_INCOMPLETE: u8 = 0x80;
/// Block magics (at byte 8, in the `xfs_da_blkinfo`).
const ATTR_LEAF_MAGIC: u16 = 0xfbee;
const ATTR3_LEAF_MAGIC: u16 = 0x3bee;
const DA_NODE_MAGIC: u16 = 0xfebe;
const DA3_NODE_MAGIC: u16 = 0x3ebe;
/// "XARM": remote value block header (v5).
const ATTR3_RMT_MAGIC: u32 = 0x5841_524d;
const RMT_HDR: usize = 56;
/// Offset of the CRC in v5 da blocks (`xfs_da3_blkinfo`) and remote blocks.
const DA3_CRC_OFF: usize = 12;
const RMT_CRC_OFF: usize = 12;
/// Deepest dabtree accepted (`XFS_DA_NODE_MAXDEPTH`).
const MAX_DEPTH: usize = 5;
/// Largest value Linux allows.
const XATTR_SIZE_MAX: usize = 65536;

/// All listed attributes of `inode`.
pub(super) fn list(fs: &Xfs, inode: &Dinode) -> Result<Vec<Xattr>> {
    if !inode.has_attr_fork() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    match inode.di_aformat {
        format::LOCAL => shortform(inode, &mut out)?,
        format::EXTENTS | format::BTREE => {
            let map = bmap::extents(fs, inode, Fork::Attr)?;
            if !map.is_empty() {
                blocks(fs, inode, &map, &mut out)?;
            }
        }
        f => {
            return Err(Error::corrupt(
                format!("xfs inode {}: attr fork", inode.ino),
                inode.pos,
                format!("format {f} is not one an attr fork has"),
            ));
        }
    }
    Ok(out)
}

/// The name Linux shows for an entry with `flags`, or `None` when it is not listed.
fn full_name(flags: u8, name: &[u8]) -> Option<Vec<u8>> {
    if flags & (ATTR_PARENT | ATTR_INCOMPLETE) != 0 {
        return None;
    }
    if flags & ATTR_ROOT != 0 {
        if name == b"SGI_ACL_FILE" {
            return Some(b"system.posix_acl_access".to_vec());
        }
        if name == b"SGI_ACL_DEFAULT" {
            return Some(b"system.posix_acl_default".to_vec());
        }
    }
    let prefix: &[u8] = if flags & ATTR_ROOT != 0 {
        b"trusted."
    } else if flags & ATTR_SECURE != 0 {
        b"security."
    } else {
        b"user."
    };
    let mut v = prefix.to_vec();
    v.extend_from_slice(name);
    Some(v)
}

/// Convert an XFS on-disk ACL (`xfs_acl`) to the generic `posix_acl_xattr` layout.
fn acl_to_xattr(v: &[u8]) -> Option<Vec<u8>> {
    let count = be::u32(v, 0)? as usize;
    if count > 8192 || v.len() < 4 + count * 12 {
        return None;
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    for i in 0..count {
        let e = 4 + i * 12;
        let tag = be::u32(v, e)?;
        let id = be::u32(v, e + 4)?;
        let perm = be::u16(v, e + 8)?;
        out.extend_from_slice(&(tag as u16).to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        // ACL_USER and ACL_GROUP carry an id; the others ACL_UNDEFINED_ID.
        let id = if tag == 0x02 || tag == 0x08 {
            id
        } else {
            u32::MAX
        };
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

fn push(out: &mut Vec<Xattr>, flags: u8, name: &[u8], value: Vec<u8>) {
    let Some(full) = full_name(flags, name) else {
        return;
    };
    let value = if full.starts_with(b"system.posix_acl_") {
        acl_to_xattr(&value).unwrap_or(value)
    } else {
        value
    };
    out.push(Xattr { name: full, value });
}

fn shortform(inode: &Dinode, out: &mut Vec<Xattr>) -> Result<()> {
    let raw = inode.fork(Fork::Attr);
    let what = || format!("xfs inode {}: shortform attributes", inode.ino);
    let totsize = usize::from(be::u16(raw, 0).unwrap_or(0));
    if totsize < 4 || totsize > raw.len() {
        return Err(Error::corrupt(
            what(),
            inode.pos,
            format!(
                "total size {totsize} does not fit the {} bytes of the attr fork",
                raw.len()
            ),
        ));
    }
    let raw = &raw[..totsize];
    let count = usize::from(raw[2]);
    let mut at = 4;
    for i in 0..count {
        let (Some(&namelen), Some(&valuelen), Some(&flags)) =
            (raw.get(at), raw.get(at + 1), raw.get(at + 2))
        else {
            return Err(Error::corrupt(
                what(),
                inode.pos,
                format!("entry {i} starts past the end"),
            ));
        };
        let name_at = at + 3;
        let value_at = name_at + usize::from(namelen);
        let end = value_at + usize::from(valuelen);
        if end > raw.len() {
            return Err(Error::corrupt(
                what(),
                inode.pos,
                format!("entry {i} runs past the end"),
            ));
        }
        push(
            out,
            flags,
            &raw[name_at..value_at],
            raw[value_at..end].to_vec(),
        );
        at = end;
    }
    Ok(())
}

/// Read attr-fork logical block `lblk` (one fs block).
fn read_ablock(fs: &Xfs, inode: &Dinode, map: &[Bmx], lblk: u64) -> Result<(Vec<u8>, u64)> {
    let x = bmap::find(map, lblk).map_err(|_| {
        Error::corrupt(
            format!("xfs inode {}: attr fork", inode.ino),
            inode.pos,
            format!("block {lblk} is a hole"),
        )
    })?;
    let block = x.block + (lblk - x.off);
    Ok((
        fs.read_block(block, "xfs attr block")?,
        block * fs.block_size,
    ))
}

fn blocks(fs: &Xfs, inode: &Dinode, map: &[Bmx], out: &mut Vec<Xattr>) -> Result<()> {
    let v5 = fs.sb.is_v5();
    let (leaf_magic, node_magic) = if v5 {
        (ATTR3_LEAF_MAGIC, DA3_NODE_MAGIC)
    } else {
        (ATTR_LEAF_MAGIC, DA_NODE_MAGIC)
    };
    // Descend along the leftmost pointers to the first leaf.
    let mut lblk = 0u64;
    let mut depth = 0;
    loop {
        let (buf, pos) = read_ablock(fs, inode, map, lblk)?;
        let what = || format!("xfs inode {}: attr block {lblk}", inode.ino);
        let magic = be::u16(&buf, 8).unwrap_or(0);
        if v5 && let Some(m) = super::sb::crc_mismatch(&buf, DA3_CRC_OFF) {
            fs.problem(Problem::at(what().to_string(), pos, m.to_string()));
        }
        if magic == leaf_magic {
            break;
        }
        if magic != node_magic {
            return Err(Error::corrupt(
                what(),
                pos,
                format!("bad magic {magic:#06x} (expected {leaf_magic:#06x} or {node_magic:#06x})"),
            ));
        }
        depth += 1;
        let (hdr, count_at) = if v5 { (64, 56) } else { (16, 12) };
        let count = be::u16(&buf, count_at).unwrap_or(0);
        if depth > MAX_DEPTH || count == 0 {
            return Err(Error::corrupt(
                what(),
                pos,
                format!("a node with {count} entries at depth {depth}"),
            ));
        }
        lblk = u64::from(be::u32(&buf, hdr + 4).unwrap_or(0));
    }
    // Then every leaf, left to right.
    let mut seen = HashSet::new();
    loop {
        if !seen.insert(lblk) || seen.len() > map.iter().map(|x| x.len as usize).sum() {
            return Err(Error::corrupt(
                format!("xfs inode {}: attr block {lblk}", inode.ino),
                inode.pos,
                "is reached twice (a loop in the leaf chain)",
            ));
        }
        let (buf, pos) = read_ablock(fs, inode, map, lblk)?;
        let what = format!("xfs inode {}: attr leaf block {lblk}", inode.ino);
        let magic = be::u16(&buf, 8).unwrap_or(0);
        if magic != leaf_magic {
            return Err(Error::corrupt(
                what,
                pos,
                format!("bad magic {magic:#06x} (expected {leaf_magic:#06x})"),
            ));
        }
        if v5 && let Some(m) = super::sb::crc_mismatch(&buf, DA3_CRC_OFF) {
            fs.problem(Problem::at(what.to_string(), pos, m.to_string()));
        }
        leaf(fs, inode, map, &buf, pos, &what, out)?;
        let forw = be::u32(&buf, 0).unwrap_or(0);
        if forw == 0 {
            return Ok(());
        }
        lblk = u64::from(forw);
    }
}

fn leaf(
    fs: &Xfs,
    inode: &Dinode,
    map: &[Bmx],
    buf: &[u8],
    pos: u64,
    what: &str,
    out: &mut Vec<Xattr>,
) -> Result<()> {
    let v5 = fs.sb.is_v5();
    let (hdr, count_at) = if v5 { (80, 56) } else { (32, 12) };
    let count = usize::from(be::u16(buf, count_at).unwrap_or(0));
    if hdr + count * 8 > buf.len() {
        return Err(Error::corrupt(
            what,
            pos,
            format!("{count} entries do not fit the block"),
        ));
    }
    for i in 0..count {
        let e = hdr + i * 8;
        let nameidx = usize::from(be::u16(buf, e + 4).unwrap_or(0));
        let flags = buf[e + 6];
        let bad = |d: &str| Error::corrupt(what, pos, format!("entry {i}: {d}"));
        if flags & ATTR_LOCAL != 0 {
            let (Some(valuelen), Some(&namelen)) = (be::u16(buf, nameidx), buf.get(nameidx + 2))
            else {
                return Err(bad("name lies outside the block"));
            };
            let name_at = nameidx + 3;
            let value_at = name_at + usize::from(namelen);
            let end = value_at + usize::from(valuelen);
            if end > buf.len() {
                return Err(bad("name and value run past the block"));
            }
            push(
                out,
                flags,
                &buf[name_at..value_at],
                buf[value_at..end].to_vec(),
            );
        } else {
            let (Some(valueblk), Some(valuelen), Some(&namelen)) = (
                be::u32(buf, nameidx),
                be::u32(buf, nameidx + 4),
                buf.get(nameidx + 8),
            ) else {
                return Err(bad("remote name lies outside the block"));
            };
            let name_at = nameidx + 9;
            let end = name_at + usize::from(namelen);
            if end > buf.len() {
                return Err(bad("remote name runs past the block"));
            }
            if flags & (ATTR_PARENT | ATTR_INCOMPLETE) != 0 {
                continue;
            }
            let value = remote(fs, inode, map, u64::from(valueblk), valuelen as usize)
                .map_err(|e| Error::corrupt(what, pos, format!("entry {i}: remote value: {e}")))?;
            push(out, flags, &buf[name_at..end], value);
        }
    }
    Ok(())
}

/// A value of `len` bytes in remote blocks from attr-fork block `lblk`.
fn remote(fs: &Xfs, inode: &Dinode, map: &[Bmx], lblk: u64, len: usize) -> Result<Vec<u8>> {
    if len > XATTR_SIZE_MAX {
        return Err(Error::Invalid(format!(
            "{len} bytes (at most {XATTR_SIZE_MAX})"
        )));
    }
    let v5 = fs.sb.is_v5();
    let bs = fs.block_size as usize;
    let per_block = if v5 { bs - RMT_HDR } else { bs };
    let mut value = Vec::with_capacity(len);
    let mut b = lblk;
    while value.len() < len {
        let (buf, pos) = read_ablock(fs, inode, map, b)?;
        let want = (len - value.len()).min(per_block);
        if v5 {
            let magic = be::u32(&buf, 0).unwrap_or(0);
            let offset = be::u32(&buf, 4).unwrap_or(0) as usize;
            let bytes = be::u32(&buf, 8).unwrap_or(0) as usize;
            if magic != ATTR3_RMT_MAGIC || offset != value.len() || bytes != want {
                return Err(Error::Invalid(format!(
                    "block {b} at byte {pos}: bad remote header (magic {magic:#010x}, offset {offset}, {bytes} bytes; expected \"XARM\", {}, {want})",
                    value.len()
                )));
            }
            if let Some(m) = super::sb::crc_mismatch(&buf, RMT_CRC_OFF) {
                fs.problem(Problem::at(
                    format!("xfs inode {}: remote attr block {b}", inode.ino),
                    pos,
                    m.to_string(),
                ));
            }
            value.extend_from_slice(&buf[RMT_HDR..RMT_HDR + want]);
        } else {
            value.extend_from_slice(&buf[..want]);
        }
        b += 1;
    }
    Ok(value)
}
