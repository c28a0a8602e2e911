//! The btrfs reader on arbitrary bytes: the input is the volume (when it
//! holds the superblock magic at byte 64 KiB, as the fixture seeds do) or
//! else the volume from its superblock on; the superblock's checksum and those of
//! every node-size block after it are set right (CRC32C) so the input
//! reaches the chunk map and the trees. Then open, and walk everything
//! (metadata, directories, lookups, links, xattrs, file data, extents,
//! subvolumes).
#![no_main]

#[path = "shared/walk.rs"]
mod walk;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::{FsView, SubvolSpec};
use vmrescue::io::ReadAt;

const SB: usize = 0x1_0000;

fn fix_csum(block: &mut [u8]) {
    if block.len() > 0x20 {
        let c = crc32c::crc32c(&block[0x20..]);
        block[..4].copy_from_slice(&c.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = data.get(SB + 0x40..SB + 0x48) == Some(b"_BHRfS_M".as_slice());
    let mut img = if whole { Vec::new() } else { vec![0u8; SB] };
    img.extend_from_slice(data);
    if img.len() >= SB + 4096 {
        fix_csum(&mut img[SB..SB + 4096]);
        let ns = u32::from_le_bytes([img[SB + 0x94], img[SB + 0x95], img[SB + 0x96], img[SB + 0x97]]);
        let ns = (ns as usize).clamp(4096, 65536);
        let mut at = SB + 4096;
        while at + ns <= img.len() {
            fix_csum(&mut img[at..at + ns]);
            at += ns;
        }
    }
    let src: Arc<dyn ReadAt> = Arc::new(img);
    if let Ok(fs) = Btrfs::open(src) {
        let _ = fs.status();
        let _ = fs.subvolumes();
        let _ = fs.subvolume_root(&SubvolSpec::Path(b"@".to_vec()));
        walk::walk(&fs);
    }
});
