//! The XFS symlink writer on arbitrary inodes: the first byte picks v4/v5
//! and the inode size, the second the new target's length; the patch, when
//! one is made, must be an inode of the same size that parses again, holds
//! the new target and its length, and (v5) a right CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::Timestamp;
use vmrescue::fs::xfs::inode::{DI_CRC_OFF, Dinode, Fork};
use vmrescue::fs::xfs::sb::crc_mismatch;
use vmrescue::fs::xfs::write::symlink_inode;

fuzz_target!(|data: &[u8]| {
    let [mode, tlen, rest @ ..] = data else {
        return;
    };
    let v5 = mode & 1 != 0;
    let isize = if mode & 2 != 0 { 512 } else { 256 };
    let tlen = usize::from(*tlen) * 2;
    if rest.len() < tlen {
        return;
    }
    let (target, raw) = rest.split_at(tlen);
    let mut raw = raw.to_vec();
    raw.resize(isize, 0);
    let Ok(inode) = Dinode::parse(7, 4096, raw, v5) else {
        return;
    };
    let ctime = Timestamp {
        sec: i64::from(mode >> 2) * 100_000_000,
        nsec: 5,
    };
    let Ok(p) = symlink_inode(v5, &inode, b"/l", b"", target, ctime) else {
        return;
    };
    assert_eq!(p.patch.new.len(), isize);
    assert_eq!(p.patch.old, inode.raw());
    let back = Dinode::parse(7, 4096, p.patch.new.clone(), v5).expect("the patched inode parses");
    assert_eq!(back.di_size, target.len() as u64);
    assert_eq!(&back.fork(Fork::Data)[..target.len()], target);
    assert_eq!(back.ctime, ctime);
    if v5 {
        assert!(crc_mismatch(&p.patch.new, DI_CRC_OFF).is_none());
    }
});
