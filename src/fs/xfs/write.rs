//! The narrow XFS writer: the bytes that give a symlink a new target in
//! place.
//!
//! [`symlink`] takes a symlink inode and a new target and returns the one
//! volume byte range to change (the inode), with its old and new bytes; it
//! writes nothing and decides nothing about where or whether to write (that
//! is `repair::relink`'s). Only a **local** (inline, `di_format` LOCAL)
//! symlink is rewritten, and only with a target that fits its data fork's
//! literal area (the inode size less the core, less the attr fork when
//! `di_forkoff` is set), so it stays local:
//!
//! * the data fork gets the new target, zeros over the rest of the old one;
//! * `di_size` the new length; `di_ctime` the change time (a 64-bit
//!   nanosecond counter when the inode has `XFS_DIFLAG2_BIGTIME`, else
//!   seconds and nanoseconds);
//! * on a v5 (crc) filesystem, `di_changecount` goes up by one and `di_crc`
//!   is computed again (CRC32C over the inode with the field zeroed, stored
//!   little-endian, as the reader checks it).
//!
//! A v4 filesystem (v1/v2 inodes) has no checksum and no change counter.
//! A remote symlink (its target in a data block: extents or btree) and a
//! target that does not fit the inode are refused with the alternative
//! (the kernel engine).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::Xfs;
use super::inode::{DI_CRC_OFF, Dinode, Fork, flags2, format};
use super::sb;
use crate::error::{Error, Result};
use crate::fs::ext::write::{KERNEL_ENGINE, Patch};
use crate::fs::{FileType, Timestamp};
use crate::text::escape;

/// Longest symlink target XFS stores (`XFS_SYMLINK_MAXLEN`).
pub const XFS_SYMLINK_MAXLEN: usize = 1024;
/// Offset of `di_ctime`.
const DI_CTIME: usize = 48;
/// Offset of `di_size`.
const DI_SIZE: usize = 56;
/// Offset of `di_changecount` (v3 inodes).
const DI_CHANGECOUNT: usize = 104;
/// Core sizes: v1/v2 and v3 inodes.
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;
/// Seconds between the bigtime epoch (-2^31 s) and the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// How the symlink stores its target: always in the inode here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    /// Bytes the data fork holds (the longest target that fits).
    pub room: usize,
}

impl Storage {
    /// In words, for the plan.
    pub fn describe(&self) -> String {
        format!(
            "an inline (local-format) XFS symlink: the target lives in the inode's data fork ({} bytes)",
            self.room
        )
    }
}

/// What giving a symlink a new target changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkPatch {
    /// How the link stores its target (and goes on storing it).
    pub storage: Storage,
    /// The inode's range.
    pub patch: Patch,
}

/// Why XFS in place cannot write a remote symlink.
pub const REMOTE_REFUSAL: &str = "the target is in a data block: XFS in place handles inline targets only; use the kernel engine as root (`--engine kernel`)";

/// The byte changes that make symlink `inode` of `fs` point at `target`,
/// with `ctime` as its new change time. `link` names it in messages;
/// `old_target` is the target as it was read, which the inode must still
/// hold. Writes nothing.
pub fn symlink(
    fs: &Xfs,
    inode: &Dinode,
    link: &[u8],
    old_target: &[u8],
    target: &[u8],
    ctime: Timestamp,
) -> Result<SymlinkPatch> {
    symlink_inode(
        fs.superblock().is_v5(),
        inode,
        link,
        old_target,
        target,
        ctime,
    )
}

/// [`symlink`] for an inode of a v5 (`v5`: CRCs) or v4 filesystem: the
/// inode's own bytes are all it reads.
pub fn symlink_inode(
    v5: bool,
    inode: &Dinode,
    link: &[u8],
    old_target: &[u8],
    target: &[u8],
    ctime: Timestamp,
) -> Result<SymlinkPatch> {
    let ino = inode.ino;
    let name = escape(link);
    let what = || format!("xfs inode {ino}");
    if inode.file_type() != FileType::Symlink {
        return Err(Error::Invalid(format!(
            "{name} (xfs inode {ino}) is not a symbolic link"
        )));
    }
    let raw_old = inode.raw();
    if v5 && let Some(m) = sb::crc_mismatch(raw_old, DI_CRC_OFF) {
        return Err(Error::Refused(format!(
            "xfs inode {ino} of {name} has a bad checksum already ({m}): run xfs_repair on the filesystem first"
        )));
    }
    if inode.di_format != format::LOCAL {
        return Err(Error::Refused(format!("{name}: {REMOTE_REFUSAL}")));
    }
    let core = if inode.di_version == 3 {
        CORE_V3
    } else {
        CORE_V2
    };
    let room = inode.fork(Fork::Data).len();
    let len = target.len();
    if len == 0 || target.contains(&0) {
        return Err(Error::Invalid(
            "a symlink target must be 1 or more bytes without a NUL".into(),
        ));
    }
    if len > XFS_SYMLINK_MAXLEN {
        return Err(Error::Refused(format!(
            "a target of {len} bytes is longer than XFS allows ({XFS_SYMLINK_MAXLEN})"
        )));
    }
    if len > room {
        return Err(Error::Refused(format!(
            "{name} is an inline XFS symlink: its target lives in the inode, whose data fork holds at most {room} bytes, and {} has {len}. Moving it to a data block needs a block allocated, which vmrescue does not do in place; choose a shorter target (relative, in the same directory), or use {KERNEL_ENGINE}",
            escape(target)
        )));
    }
    let old_size = usize::try_from(inode.di_size).unwrap_or(usize::MAX);
    let data_end = core
        .checked_add(room)
        .filter(|&e| e <= raw_old.len())
        .ok_or_else(|| Error::corrupt(what(), inode.pos, "the data fork overruns the inode"))?;
    let fork = raw_old.get(core..data_end).unwrap_or_default();
    match fork.get(..old_size) {
        Some(held) if old_target.is_empty() || held == old_target => {}
        Some(_) => {
            return Err(Error::Invalid(format!(
                "{name}: the inode does not hold the target that was read; the image may be changing"
            )));
        }
        None => {
            return Err(Error::corrupt(
                what(),
                inode.pos,
                format!("di_size {old_size} is larger than the data fork's {room} bytes"),
            ));
        }
    }
    let mut raw = raw_old.to_vec();
    let mut fields = vec![
        "the target".to_string(),
        "di_size".into(),
        "di_ctime".into(),
    ];
    // The target, then zeros over the rest of the old one (never past the fork).
    let span = old_size.max(len);
    let area = raw
        .get_mut(core..data_end)
        .and_then(|f| f.get_mut(..span))
        .ok_or_else(|| Error::corrupt(what(), inode.pos, "the data fork overruns the inode"))?;
    area.fill(0);
    if let Some(head) = area.get_mut(..len) {
        head.copy_from_slice(target);
    }
    put(&mut raw, DI_SIZE, &(len as u64).to_be_bytes())?;
    let bigtime = inode.di_flags2 & flags2::BIGTIME != 0;
    put(&mut raw, DI_CTIME, &encode_time(ctime, bigtime, &name)?)?;
    if inode.di_version == 3 {
        let count = be_u64(&raw, DI_CHANGECOUNT)?.wrapping_add(1);
        put(&mut raw, DI_CHANGECOUNT, &count.to_be_bytes())?;
        fields.push("di_changecount".into());
    }
    if v5 {
        put(&mut raw, DI_CRC_OFF, &[0; 4])?;
        let (_, crc) = sb::crc_pair(&raw, DI_CRC_OFF);
        put(&mut raw, DI_CRC_OFF, &crc.to_le_bytes())?;
        fields.push("di_crc".into());
    }
    Ok(SymlinkPatch {
        storage: Storage { room },
        patch: Patch {
            what: format!("xfs inode {ino}"),
            pos: inode.pos,
            fields: fields.join(", "),
            old: raw_old.to_vec(),
            new: raw,
        },
    })
}

/// `ctime` as XFS stores it: bigtime (nanoseconds since -2^31 s, big-endian
/// u64) or legacy (signed 32-bit seconds, then nanoseconds, big-endian).
fn encode_time(t: Timestamp, bigtime: bool, name: &str) -> Result<[u8; 8]> {
    let nsec = t.nsec.min(999_999_999);
    if bigtime {
        let ns = t
            .sec
            .checked_add(BIGTIME_EPOCH_OFFSET)
            .and_then(|s| u64::try_from(s).ok())
            .and_then(|s| s.checked_mul(1_000_000_000))
            .and_then(|s| s.checked_add(u64::from(nsec)))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{name}: the change time {} does not fit an XFS timestamp",
                    t.sec
                ))
            })?;
        Ok(ns.to_be_bytes())
    } else {
        let sec = i32::try_from(t.sec).map_err(|_| {
            Error::Invalid(format!(
                "{name}: the change time {} does not fit this inode's 32-bit timestamps (no bigtime)",
                t.sec
            ))
        })?;
        let [a, b, c, d] = sec.to_be_bytes();
        let [e, f, g, h] = nsec.to_be_bytes();
        Ok([a, b, c, d, e, f, g, h])
    }
}

fn put(raw: &mut [u8], at: usize, bytes: &[u8]) -> Result<()> {
    at.checked_add(bytes.len())
        .and_then(|end| raw.get_mut(at..end))
        .map(|dst| dst.copy_from_slice(bytes))
        .ok_or_else(|| Error::Invalid(format!("xfs inode field at byte {at} is past its end")))
}

fn be_u64(raw: &[u8], at: usize) -> Result<u64> {
    crate::io::be::u64(raw, at)
        .ok_or_else(|| Error::Invalid(format!("xfs inode field at byte {at} is past its end")))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::fs::xfs::inode::XFS_DINODE_MAGIC;

    const T: Timestamp = Timestamp {
        sec: 1_795_638_129,
        nsec: 42,
    };

    /// A symlink inode of `size` bytes: v3 (with a right CRC, bigtime) or
    /// v2, data fork `format`, target `target`, attr fork at `forkoff`.
    fn inode(size: usize, v3: bool, format: u8, forkoff: u8, target: &[u8]) -> Vec<u8> {
        let mut raw = vec![0u8; size];
        raw[..2].copy_from_slice(&XFS_DINODE_MAGIC.to_be_bytes());
        raw[2..4].copy_from_slice(&0o120777u16.to_be_bytes());
        raw[4] = if v3 { 3 } else { 2 };
        raw[5] = format;
        raw[16..20].copy_from_slice(&1u32.to_be_bytes());
        raw[56..64].copy_from_slice(&(target.len() as u64).to_be_bytes());
        raw[82] = forkoff;
        raw[83] = if forkoff != 0 { 1 } else { 2 };
        let core = if v3 { CORE_V3 } else { CORE_V2 };
        raw[core..core + target.len()].copy_from_slice(target);
        if forkoff != 0 {
            // Something in the attr fork that must stay.
            let at = core + usize::from(forkoff) * 8;
            raw[at..].fill(0xA5);
        }
        if v3 {
            raw[104..112].copy_from_slice(&9u64.to_be_bytes());
            raw[120..128].copy_from_slice(&flags2::BIGTIME.to_be_bytes());
            raw[152..160].copy_from_slice(&7u64.to_be_bytes());
            let (_, c) = sb::crc_pair(&raw, DI_CRC_OFF);
            raw[DI_CRC_OFF..DI_CRC_OFF + 4].copy_from_slice(&c.to_le_bytes());
        }
        raw
    }

    fn parse(raw: Vec<u8>, v5: bool) -> Dinode {
        Dinode::parse(7, 4096, raw, v5).unwrap()
    }

    #[test]
    fn v5_patch_changes_only_its_fields_and_keeps_the_crc_right() {
        let d = parse(
            inode(512, true, format::LOCAL, 0, b"libc-2.12.so.old"),
            true,
        );
        let p = symlink_inode(true, &d, b"/l", b"libc-2.12.so.old", b"libc-2.17.so", T).unwrap();
        assert_eq!(p.storage.room, 512 - CORE_V3);
        assert_eq!(p.patch.pos, 4096);
        assert_eq!(p.patch.old, d.raw());
        let new = &p.patch.new;
        assert!(sb::crc_mismatch(new, DI_CRC_OFF).is_none());
        let back = parse(new.clone(), true);
        assert_eq!(back.di_size, 12);
        assert_eq!(&back.fork(Fork::Data)[..16], b"libc-2.17.so\0\0\0\0");
        assert_eq!(back.ctime, T);
        assert_eq!(crate::io::be::u64(new, DI_CHANGECOUNT), Some(10));
        for (i, (a, b)) in new.iter().zip(&p.patch.old).enumerate() {
            if a != b {
                let known = (DI_CTIME..DI_CTIME + 8).contains(&i)
                    || (DI_SIZE..DI_SIZE + 8).contains(&i)
                    || (DI_CRC_OFF..DI_CRC_OFF + 4).contains(&i)
                    || (DI_CHANGECOUNT..DI_CHANGECOUNT + 8).contains(&i)
                    || (CORE_V3..CORE_V3 + 16).contains(&i);
                assert!(known, "byte {i} changed");
            }
        }
    }

    #[test]
    fn v4_patch_has_no_crc_and_legacy_times() {
        let d = parse(inode(256, false, format::LOCAL, 0, b"x"), false);
        let p = symlink_inode(false, &d, b"/l", b"x", b"libc-2.17.so", T).unwrap();
        assert_eq!(p.storage.room, 256 - CORE_V2);
        assert!(!p.patch.fields.contains("di_crc"), "{}", p.patch.fields);
        assert!(!p.patch.fields.contains("di_changecount"));
        let back = parse(p.patch.new.clone(), false);
        assert_eq!(back.ctime, T);
        assert_eq!(
            crate::io::be::u32(&p.patch.new, DI_CTIME),
            Some(1_795_638_129)
        );
        assert_eq!(&back.fork(Fork::Data)[..12], b"libc-2.17.so");
        // The whole data fork is the room: a target of exactly that fits,
        // one byte more does not.
        let full = vec![b'a'; 256 - CORE_V2];
        assert!(symlink_inode(false, &d, b"/l", b"x", &full, T).is_ok());
        let e = symlink_inode(false, &d, b"/l", b"x", &[b'a'; 257 - CORE_V2], T).unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
        assert!(e.to_string().contains("at most 156 bytes"), "{e}");
    }

    #[test]
    fn an_attr_fork_shrinks_the_room_and_is_left_alone() {
        // di_forkoff 10: 80 bytes of data fork, the rest attr fork.
        let d = parse(inode(512, true, format::LOCAL, 10, b"old"), true);
        let p = symlink_inode(true, &d, b"/l", b"old", &[b'b'; 80], T).unwrap();
        assert_eq!(p.storage.room, 80);
        assert!(p.patch.new[CORE_V3 + 80..].iter().all(|&b| b == 0xA5));
        let e = symlink_inode(true, &d, b"/l", b"old", &[b'b'; 81], T).unwrap_err();
        assert!(e.to_string().contains("at most 80 bytes"), "{e}");
    }

    #[test]
    fn remote_links_bad_crcs_and_damaged_inodes_are_refused() {
        let d = parse(inode(512, true, format::EXTENTS, 0, b""), true);
        let e = symlink_inode(true, &d, b"/l", b"", b"x", T).unwrap_err();
        assert!(e.to_string().contains(REMOTE_REFUSAL), "{e}");
        // A CRC that is wrong already.
        let mut raw = inode(512, true, format::LOCAL, 0, b"old");
        raw[300] ^= 1;
        let e = symlink_inode(true, &parse(raw, true), b"/l", b"old", b"x", T).unwrap_err();
        assert!(e.to_string().contains("bad checksum already"), "{e}");
        // di_size past the data fork.
        let mut raw = inode(256, false, format::LOCAL, 0, b"old");
        raw[56..64].copy_from_slice(&1000u64.to_be_bytes());
        let e = symlink_inode(false, &parse(raw, false), b"/l", b"", b"x", T).unwrap_err();
        assert!(e.to_string().contains("larger than the data fork"), "{e}");
        // The inode no longer holds what was read.
        let d = parse(inode(256, false, format::LOCAL, 0, b"old"), false);
        let e = symlink_inode(false, &d, b"/l", b"new", b"x", T).unwrap_err();
        assert!(e.to_string().contains("may be changing"), "{e}");
        // Not a symlink.
        let mut raw = inode(256, false, format::LOCAL, 0, b"old");
        raw[2..4].copy_from_slice(&0o100644u16.to_be_bytes());
        assert!(symlink_inode(false, &parse(raw, false), b"/l", b"", b"x", T).is_err());
        // Targets XFS cannot hold.
        let big = parse(inode(2048, true, format::LOCAL, 0, b"old"), true);
        let e = symlink_inode(true, &big, b"/l", b"old", &[b'c'; 1025], T).unwrap_err();
        assert!(e.to_string().contains("longer than XFS allows"), "{e}");
        assert!(symlink_inode(true, &big, b"/l", b"old", &[b'c'; 1024], T).is_ok());
        assert!(symlink_inode(true, &big, b"/l", b"old", b"", T).is_err());
        assert!(symlink_inode(true, &big, b"/l", b"old", b"a\0b", T).is_err());
    }

    #[test]
    fn times_encode_as_the_reader_decodes_them() {
        for (sec, nsec) in [(0i64, 0u32), (1_795_638_129, 123_456_789), (-5, 7)] {
            let t = Timestamp { sec, nsec };
            let mut raw = vec![0u8; 256];
            raw[..2].copy_from_slice(&super::super::inode::XFS_DINODE_MAGIC.to_be_bytes());
            raw[4] = 3;
            raw[120..128].copy_from_slice(&flags2::BIGTIME.to_be_bytes());
            raw[DI_CTIME..DI_CTIME + 8].copy_from_slice(&encode_time(t, true, "x").unwrap());
            let d = Dinode::parse(1, 0, raw.clone(), true).unwrap();
            assert_eq!(d.ctime, t);
            raw[120..128].fill(0);
            raw[DI_CTIME..DI_CTIME + 8].copy_from_slice(&encode_time(t, false, "x").unwrap());
            let d = Dinode::parse(1, 0, raw, true).unwrap();
            assert_eq!(d.ctime, t);
        }
        assert!(
            encode_time(
                Timestamp {
                    sec: 1 << 40,
                    nsec: 0
                },
                false,
                "x"
            )
            .is_err()
        );
    }
}
