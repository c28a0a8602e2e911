//! The narrow ext writer: the bytes that give a symlink a new target in
//! place.
//!
//! [`symlink`] takes an inode and a new target and returns the volume byte
//! ranges to change, each with its old and new bytes; it writes nothing and
//! decides nothing about where or whether to write (that is the caller's:
//! `repair::relink`). The link keeps its inode and the kind of storage it has:
//!
//! * a **fast** symlink (target under 60 bytes in `i_block`, no data block,
//!   no `EXTENTS`/`INLINE_DATA` flag) gets a new target of 1 to 59 bytes,
//!   zero-padded in `i_block`;
//! * a **slow** symlink (target in its one data block, block- or
//!   extent-mapped) gets a new target of 60 bytes up to a block minus one,
//!   written into the same block and followed by zeros where the old one was
//!   (a shorter target would be taken for a fast one by `e2fsck` and the
//!   kernel, and making it fast would free a block: bitmaps and counters);
//! * an **inline-data** symlink (`INLINE_DATA`: `i_block` and the
//!   `system.data` attribute in the inode) only keeps a target of exactly the
//!   same length, whose bytes are rewritten in both places.
//!
//! In every case `i_size` (low and high words), `ctime` (with
//! `ctime_extra`'s nanoseconds when the inode has room for them) and, with
//! metadata_csum, the inode checksum are updated. A target that does not fit
//! is refused with the reason and the alternative (the kernel engine).

use super::Ext;
use super::RunKind;
use super::inode::{self, EXT4_GOOD_OLD_INODE_SIZE, I_BLOCK, I_BLOCK_LEN, Inode};
use crate::error::{Error, Result};
use crate::fs::Timestamp;
use crate::text::escape;

/// Longest symlink target (PATH_MAX without its NUL).
pub const MAX_TARGET: usize = 4095;
/// The kernel engine, as the alternative offered in refusals.
pub const KERNEL_ENGINE: &str = "the kernel engine (`--engine kernel`, as root), which replaces the link through a mounted filesystem";
/// Offset of `i_size_lo`.
const I_SIZE_LO: usize = 0x4;
/// Offset of `i_ctime`.
const I_CTIME: usize = 0xC;
/// Offset of `i_size_high`.
const I_SIZE_HIGH: usize = 0x6C;
/// Offset of `i_ctime_extra` (inside the extra part).
const I_CTIME_EXTRA: usize = 0x84;

/// How a symlink stores its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In `i_block` (under 60 bytes).
    Fast,
    /// In one data block.
    Slow {
        /// The block's number in the filesystem.
        block: u64,
        /// Extent-mapped (else block-mapped).
        extents: bool,
    },
    /// Inline data: `i_block`, then the `system.data` attribute.
    Inline,
}

impl Storage {
    /// In words, for the plan.
    pub fn describe(&self) -> String {
        match self {
            Storage::Fast => "a fast symlink: the target lives in the inode".into(),
            Storage::Slow { block, extents } => format!(
                "a slow symlink: the target lives in data block {block} ({})",
                if *extents {
                    "extent-mapped"
                } else {
                    "block-mapped"
                }
            ),
            Storage::Inline => {
                "an inline-data symlink: the target lives in the inode and its system.data attribute"
                    .into()
            }
        }
    }
}

/// One range of the volume to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// What it is (`inode 1234`, `data block 5678 of inode 1234`).
    pub what: String,
    /// Byte offset in the volume.
    pub pos: u64,
    /// Which fields change.
    pub fields: String,
    /// The bytes there now.
    pub old: Vec<u8>,
    /// The bytes to write (as long as `old`).
    pub new: Vec<u8>,
}

/// What giving a symlink a new target changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkPatch {
    /// How the link stores its target (and goes on storing it).
    pub storage: Storage,
    /// The ranges, the inode first.
    pub patches: Vec<Patch>,
}

/// The byte changes that make symlink `inode` point at `target`, with
/// `ctime` as its new change time. `link` names it in messages;
/// `old_target` is its target as it was read, which a slow link's data
/// block must still hold. The inode's checksum must be right before (with
/// metadata_csum). Reads the slow link's block; writes nothing.
pub fn symlink(
    ext: &Ext,
    inode: &Inode,
    link: &[u8],
    old_target: &[u8],
    target: &[u8],
    ctime: Timestamp,
) -> Result<SymlinkPatch> {
    let ino = inode.ino;
    if ext.superblock().has_metadata_csum() {
        let want = inode::inode_checksum(ext.csum_seed(), ino, &inode.raw);
        let stored = inode::stored_checksum(&inode.raw);
        if want != stored {
            return Err(Error::Refused(format!(
                "inode {ino} of {} has a bad checksum already (stored {stored:#x}, computed {want:#x}): run e2fsck on the filesystem first",
                escape(link)
            )));
        }
    }
    let bs = ext.block_size();
    let link = escape(link);
    let len = target.len();
    if inode.has_flag(inode::flags::ENCRYPT) {
        return Err(Error::Refused(format!(
            "{link} is encrypted (ext4 encryption): vmrescue cannot write its target; use {KERNEL_ENGINE}"
        )));
    }
    if inode.has_flag(inode::flags::EA_INODE) {
        return Err(Error::Refused(format!(
            "inode {ino} ({link}) is marked as an extended-attribute inode: not an ordinary symlink; run e2fsck"
        )));
    }
    let old_size = inode.i_size;
    let mut raw = inode.raw.clone();
    let mut fields = vec!["i_size".to_string()];
    let mut data: Option<Patch> = None;
    let storage = if inode.has_flag(inode::flags::INLINE_DATA) {
        let (value_at, hash_at) = inline_value(inode, old_size)?;
        if len as u64 != old_size {
            return Err(Error::Refused(format!(
                "{link} is an inline-data symlink of {old_size} bytes: vmrescue rewrites those only with a target of the same length (this one has {len}), since a different length means resizing its system.data attribute; use {KERNEL_ENGINE}"
            )));
        }
        raw[I_BLOCK..I_BLOCK + I_BLOCK_LEN].copy_from_slice(&target[..I_BLOCK_LEN]);
        let rest = &target[I_BLOCK_LEN..];
        raw[value_at..value_at + rest.len()].copy_from_slice(rest);
        fields.push("i_block".into());
        fields.push("system.data".into());
        if let Some(h) = hash_at {
            let stored = crate::io::le::u32(&raw, h).unwrap_or(0);
            if stored != 0 {
                let hash = xattr_hash(b"data", rest);
                put_u32(&mut raw, h, hash);
                fields.push("e_hash".into());
            }
        }
        Storage::Inline
    } else if ext.is_fast_symlink(inode) {
        if inode.has_flag(inode::flags::EXTENTS) {
            return Err(Error::Refused(format!(
                "{link}: a fast symlink with the EXTENTS flag is not something vmrescue rewrites (e2fsck calls it invalid); run e2fsck first"
            )));
        }
        if len >= I_BLOCK_LEN {
            return Err(Error::Refused(format!(
                "{link} is a fast symlink: its target lives in the inode, which holds at most {} bytes, and {} has {len}. Making it a slow symlink needs a data block allocated (bitmaps, counters), which vmrescue does not do in place; choose a shorter target (relative, in the same directory), or use {KERNEL_ENGINE}",
                I_BLOCK_LEN - 1,
                escape(target)
            )));
        }
        let mut iblock = [0u8; I_BLOCK_LEN];
        iblock[..len].copy_from_slice(target);
        raw[I_BLOCK..I_BLOCK + I_BLOCK_LEN].copy_from_slice(&iblock);
        fields.push("i_block".into());
        Storage::Fast
    } else {
        let max = (bs as usize - 1).min(MAX_TARGET);
        if len < I_BLOCK_LEN {
            return Err(Error::Refused(format!(
                "{link} is a slow symlink (its target lives in a data block), and a target of {len} bytes would be read as a fast one (under {I_BLOCK_LEN} bytes); turning it into one frees a block (bitmaps, counters), which vmrescue does not do in place; use {KERNEL_ENGINE}"
            )));
        }
        if len > max {
            return Err(Error::Refused(format!(
                "{link}: a target of {len} bytes does not fit its data block ({bs} bytes, so at most {max})"
            )));
        }
        if old_size >= bs {
            return Err(Error::corrupt(
                "ext symlink",
                inode.pos,
                format!("inode {ino}: i_size {old_size} is not below the block size {bs}"),
            ));
        }
        let run = ext.map_block(inode, 0)?;
        let RunKind::Data(block) = run.kind else {
            return Err(Error::corrupt(
                "ext symlink",
                inode.pos,
                format!("inode {ino}: the slow symlink's first block is not allocated"),
            ));
        };
        // The new target and its NUL, and zeros over the rest of the old one.
        let span = (old_size as usize).max(len) + 1;
        let pos = block.checked_mul(bs).ok_or_else(|| {
            Error::corrupt("ext symlink", inode.pos, "data block number overflows")
        })?;
        let mut old = vec![0u8; span];
        ext.src
            .read_exact_at(pos, &mut old)
            .map_err(|e| Error::io(format!("volume bytes at {pos}"), e))?;
        if old[..old_size as usize] != old_target[..] && !old_target.is_empty() {
            return Err(Error::Invalid(format!(
                "{link}: its data block does not hold the target that was read; the image may be changing"
            )));
        }
        let mut new = vec![0u8; span];
        new[..len].copy_from_slice(target);
        data = Some(Patch {
            what: format!("data block {block} of inode {ino}"),
            pos,
            fields: "the target, then zeros".into(),
            old,
            new,
        });
        Storage::Slow {
            block,
            extents: inode.has_flag(inode::flags::EXTENTS),
        }
    };
    put_u32(&mut raw, I_SIZE_LO, len as u32);
    put_u32(&mut raw, I_SIZE_HIGH, 0);
    let (lo, extra) = encode_time(ctime);
    put_u32(&mut raw, I_CTIME, lo);
    fields.push("ctime".into());
    if has_extra(&raw, I_CTIME_EXTRA) {
        put_u32(&mut raw, I_CTIME_EXTRA, extra);
    }
    if ext.superblock().has_metadata_csum() {
        let c = inode::inode_checksum(ext.csum_seed(), ino, &raw);
        inode::set_inode_checksum(&mut raw, c);
        fields.push("checksum".into());
    }
    let mut patches = vec![Patch {
        what: format!("inode {ino}"),
        pos: inode.pos,
        fields: fields.join(", "),
        old: inode.raw.clone(),
        new: raw,
    }];
    patches.extend(data);
    Ok(SymlinkPatch { storage, patches })
}

/// Where the `system.data` value of an inline-data inode starts in its raw
/// bytes, and where the entry's `e_hash` is; the value must hold exactly
/// `size - 60` bytes.
fn inline_value(inode: &Inode, size: u64) -> Result<(usize, Option<usize>)> {
    const S: &str = "ext in-inode xattrs";
    let raw = &inode.raw;
    let refuse = |why: &str| {
        Error::Refused(format!(
            "inode {}: an inline-data symlink whose {why}; use {KERNEL_ENGINE}",
            inode.ino
        ))
    };
    let Some(start) = inode.ibody_xattr_start() else {
        return Err(refuse("inode has no room for in-inode attributes"));
    };
    if crate::io::le::u32(raw, start) != Some(0xEA02_0000) {
        return Err(refuse("in-inode attributes are missing"));
    }
    let first = start + 4;
    let mut off = first;
    // Each entry takes at least 16 bytes: the loop ends within the inode.
    while off + 16 <= raw.len() {
        if crate::io::le::u32(raw, off) == Some(0) {
            break;
        }
        let name_len = usize::from(raw[off]);
        let index = raw[off + 1];
        let value_offs = usize::from(crate::io::le::u16(raw, off + 2).unwrap_or(0));
        let value_inum = crate::io::le::u32(raw, off + 4).unwrap_or(0);
        let value_size = crate::io::le::u32(raw, off + 8).unwrap_or(0) as usize;
        let name_end = off + 16 + name_len;
        if name_end > raw.len() {
            return Err(Error::corrupt(
                S,
                inode.pos + off as u64,
                "an entry's name runs past the inode",
            ));
        }
        if index == 7 && &raw[off + 16..name_end] == b"data" {
            if value_inum != 0 {
                return Err(refuse("system.data value lives in its own inode"));
            }
            let at = first + value_offs;
            if value_size as u64 + I_BLOCK_LEN as u64 != size {
                return Err(refuse(
                    "size does not match its system.data attribute (run e2fsck)",
                ));
            }
            if at.checked_add(value_size).is_none_or(|e| e > raw.len()) {
                return Err(Error::corrupt(
                    S,
                    inode.pos + off as u64,
                    "the system.data value runs past the inode",
                ));
            }
            return Ok((at, Some(off + 12)));
        }
        off = (name_end + 3) & !3;
    }
    Err(refuse("system.data attribute is not in the inode"))
}

/// The hash of an xattr entry (name, then the value in little-endian words,
/// zero-padded), as e2fsprogs and the kernel compute it.
fn xattr_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 5) ^ (h >> 27) ^ u32::from(c);
    }
    for chunk in value.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes(w);
    }
    h
}

/// A time as ext stores it: the low 32 bits of the seconds (read back as
/// signed), and the `_extra` word: two epoch bits (the seconds' bits 32 and
/// 33, after the sign extension of the low word) and the nanoseconds << 2.
fn encode_time(t: Timestamp) -> (u32, u32) {
    let lo = t.sec as i32;
    let epoch = ((t.sec - i64::from(lo)) >> 32) as u32 & 3;
    (lo as u32, epoch | (t.nsec.min(999_999_999) << 2))
}

/// Whether a raw inode has room for the field at `off` (4 bytes) in its extra part.
fn has_extra(raw: &[u8], off: usize) -> bool {
    let extra = usize::from(crate::io::le::u16(raw, 0x80).unwrap_or(0));
    raw.len() > EXT4_GOOD_OLD_INODE_SIZE && off + 4 <= EXT4_GOOD_OLD_INODE_SIZE + extra
}

fn put_u32(raw: &mut [u8], off: usize, v: u32) {
    raw[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FsView, path};

    #[test]
    fn xattr_hash_matches_e2fsprogs() {
        // Name only: e2fsprogs' ext2fs_ext_attr_hash_entry over "data".
        let mut h: u32 = 0;
        for c in b"data" {
            h = (h << 5) ^ (h >> 27) ^ u32::from(*c);
        }
        assert_eq!(xattr_hash(b"data", b""), h);
        // A partial last word is zero-padded.
        assert_eq!(
            xattr_hash(b"", b"ab"),
            u32::from_le_bytes([b'a', b'b', 0, 0])
        );
    }

    #[test]
    fn times_encode_as_the_reader_decodes_them() {
        for (sec, nsec) in [
            (0i64, 0u32),
            (1_795_638_129, 123_456_789),
            (-1, 5),
            (i64::from(i32::MAX) + 1, 999_999_999),
            (3 * (1i64 << 32) - 10, 1),
        ] {
            let (lo, extra) = encode_time(Timestamp { sec, nsec });
            // As the ext reader (and the kernel) decode them.
            let back = i64::from(lo as i32) + (i64::from(extra & 3) << 32);
            assert_eq!(back, sec, "{sec}");
            assert_eq!(extra >> 2, nsec);
        }
    }

    /// The demo's root filesystem and its broken `/lib64/libc.so.6` (a fast
    /// symlink), read as it is on disk.
    fn demo_link() -> (tempfile::TempDir, Ext, Inode) {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("demo.img");
        crate::demo::unpack(crate::demo::asset(), &img).unwrap();
        let layout = crate::layers::scan(vec![crate::image::open(&img).unwrap()]);
        let id = layout.find_volume("vg_ta/lv_root").unwrap();
        let ext = Ext::open(
            layout.open_volume(id),
            &crate::fs::FsOptions { no_journal: true },
        )
        .unwrap();
        let r = path::resolve(&ext, b"/lib64/libc.so.6", false).unwrap();
        let inode = ext.read_inode(u32::try_from(r.node.0).unwrap()).unwrap();
        (dir, ext, inode)
    }

    #[test]
    fn fast_symlink_patch_is_one_inode_write() {
        let (_dir, ext, inode) = demo_link();
        let old = ext
            .read_link(crate::fs::NodeId(u64::from(inode.ino)))
            .unwrap();
        let ctime = Timestamp {
            sec: 1_795_638_129,
            nsec: 42,
        };
        let p = symlink(
            &ext,
            &inode,
            b"/lib64/libc.so.6",
            &old,
            b"libc-2.12.so",
            ctime,
        )
        .unwrap();
        assert_eq!(p.storage, Storage::Fast);
        assert_eq!(p.patches.len(), 1, "no data block for a fast link");
        let w = &p.patches[0];
        assert_eq!(w.what, format!("inode {}", inode.ino));
        assert_eq!(w.pos, inode.pos);
        assert_eq!(w.old, inode.raw);
        assert_eq!(w.new.len(), w.old.len());
        // i_block: the target, zero-padded; i_size; ctime.
        let mut iblock = [0u8; I_BLOCK_LEN];
        iblock[..12].copy_from_slice(b"libc-2.12.so");
        assert_eq!(&w.new[I_BLOCK..I_BLOCK + I_BLOCK_LEN], &iblock);
        assert_eq!(crate::io::le::u32(&w.new, I_SIZE_LO), Some(12));
        assert_eq!(crate::io::le::u32(&w.new, I_SIZE_HIGH), Some(0));
        assert_eq!(
            crate::io::le::u32(&w.new, I_CTIME),
            Some(encode_time(ctime).0)
        );
        if has_extra(&w.new, I_CTIME_EXTRA) {
            assert_eq!(crate::io::le::u32(&w.new, I_CTIME_EXTRA), Some(42 << 2));
        }
        if ext.superblock().has_metadata_csum() {
            assert!(w.fields.ends_with("checksum"));
            assert_eq!(
                inode::stored_checksum(&w.new),
                inode::inode_checksum(ext.csum_seed(), inode.ino, &w.new)
            );
        }
        // Nothing outside those fields changes.
        let changed: Vec<usize> = (0..w.new.len()).filter(|&i| w.new[i] != w.old[i]).collect();
        for i in changed {
            let known = (I_SIZE_LO..I_SIZE_LO + 4).contains(&i)
                || (I_CTIME..I_CTIME + 4).contains(&i)
                || (I_BLOCK..I_BLOCK + I_BLOCK_LEN).contains(&i)
                || (I_SIZE_HIGH..I_SIZE_HIGH + 4).contains(&i)
                || (I_CTIME_EXTRA..I_CTIME_EXTRA + 4).contains(&i)
                || [
                    inode::I_CHECKSUM_LO,
                    inode::I_CHECKSUM_LO + 1,
                    inode::I_CHECKSUM_HI,
                    inode::I_CHECKSUM_HI + 1,
                ]
                .contains(&i);
            assert!(known, "byte {i:#x} of the inode changed");
        }
    }

    #[test]
    fn fast_symlink_refuses_a_target_that_needs_a_block() {
        let (_dir, ext, inode) = demo_link();
        let long = vec![b'a'; I_BLOCK_LEN];
        let e = symlink(
            &ext,
            &inode,
            b"/lib64/libc.so.6",
            b"",
            &long,
            Timestamp { sec: 0, nsec: 0 },
        )
        .unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
        assert!(e.to_string().contains(KERNEL_ENGINE), "{e}");
    }
}
