//! Linux MD superblocks on arbitrary bytes: the 1.x parser at each place,
//! the 0.90 parser in both byte orders, the reader that looks at all four
//! places, then an array assembled over up to four disks cut from the
//! input (their 1.2 superblock checksums set right, so assembly, naming,
//! the tree and reads through the array's mapping are reached).
#![no_main]

#[path = "shared/disks.rs"]
mod disks;

use libfuzzer_sys::fuzz_target;
use vmrescue::layers::md::superblock;
use vmrescue::layers::{DiskSource, VolumeKind};

/// Set the 1.x checksum of a superblock at byte 4096 of `d`.
fn fix_v1_checksum(d: &mut [u8]) {
    let Some(sb) = d.get_mut(4096..8192) else {
        return;
    };
    let max_dev = u32::from_le_bytes([sb[220], sb[221], sb[222], sb[223]]).min(1920) as usize;
    sb[216..220].fill(0);
    let len = 256 + 2 * max_dev;
    let mut sum: u64 = 0;
    let mut words = sb[..len].chunks_exact(4);
    for w in words.by_ref() {
        sum += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    if let [a, b] = words.remainder() {
        sum += u64::from(u16::from_le_bytes([*a, *b]));
    }
    let csum = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    sb[216..220].copy_from_slice(&csum.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    for (at, minor) in [(0usize, 1u8), (4096, 2)] {
        if let Some(b) = data.get(at..) {
            let _ = superblock::parse_v1(b, at as u64, minor);
        }
    }
    let _ = superblock::parse_090(data, 0x10000);
    let bytes = data.to_vec();
    let _ = superblock::read(&bytes);

    // Up to four disks of equal size from the input.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 4) + 1;
    let size = (rest.len() / n).max(1);
    let disks: Vec<DiskSource> = rest
        .chunks(size)
        .take(n)
        .enumerate()
        .map(|(i, c)| {
            let mut d = c.to_vec();
            // Room for data after a 1.2 superblock.
            d.resize(d.len().max(64 * 1024), 0);
            fix_v1_checksum(&mut d);
            disks::raw_disk(i, d)
        })
        .collect();
    disks::scan_and_read(disks, |k| matches!(k, VolumeKind::MdArray { .. }));
});
