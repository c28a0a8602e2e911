//! btrfs extent decompression on arbitrary bytes: each kind (none, zlib,
//! LZO, zstd) with an extent length and sector size from the input; LZO
//! also with the input framed right (total and segment lengths set), so
//! the LZO1X decoder itself is reached. Never a panic; the output is
//! exactly the extent's length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::btrfs::compress::{Compression, MAX_EXTENT, decompress};

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let kind = Compression::from_disk(head[0] & 3).unwrap_or(Compression::None);
    // Up to a little more than btrfs allows, to reach the refusal too.
    let out_len = (usize::from(u16::from_le_bytes([head[1], head[2]])) * 3) % (MAX_EXTENT + 2);
    let sector = if head[3] & 1 == 0 { 4096 } else { 65536 };
    let check = |kind: Compression, input: &[u8]| {
        if let Ok(out) = decompress(kind, input, out_len, sector) {
            assert_eq!(out.len(), out_len);
        }
    };
    check(kind, rest);
    if head[3] & 2 != 0 {
        // One LZO segment per 1 KiB of input, framed as btrfs frames them.
        let mut framed = vec![0u8; 4];
        for seg in rest.chunks(1024) {
            framed.extend_from_slice(&(seg.len() as u32).to_le_bytes());
            framed.extend_from_slice(seg);
        }
        let total = framed.len() as u32;
        framed[..4].copy_from_slice(&total.to_le_bytes());
        check(Compression::Lzo, &framed);
    }
});
