//! Fuzz input made into a btrfs device (shared by the `btrfs` and
//! `btrfs_multi` targets): the volume itself when it holds the superblock
//! magic at byte 64 KiB (as the fixture seeds do), else the volume from its
//! superblock on; the superblock's checksum and those of every node-size
//! block after it are set right (CRC32C), so the input reaches the chunk
//! map and the trees.

use std::sync::Arc;

use vmrescue::io::ReadAt;

const SB: usize = 0x1_0000;

fn fix_csum(block: &mut [u8]) {
    if block.len() > 0x20 {
        let c = crc32c::crc32c(&block[0x20..]);
        block[..4].copy_from_slice(&c.to_le_bytes());
    }
}

pub fn device(data: &[u8]) -> Arc<dyn ReadAt> {
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
    Arc::new(img)
}
