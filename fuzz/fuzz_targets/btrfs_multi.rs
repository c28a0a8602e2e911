//! The btrfs chunk map and multi-device opening on arbitrary bytes. The
//! first byte picks the mode:
//! - even: a chunk map built from chunk items in the input (any profile,
//!   any stripe count and devids, RAID5/6 included) with some devices
//!   opened; logical addresses from the input are mapped, rebuilt from
//!   parity (P, or RAID6's P and Q rows) and reported on. Every place must stay inside the asked range.
//! - odd: the rest split into 2..=4 devices, each prepared like the
//!   `btrfs` target (superblock at 64 KiB, checksums set right), opened as
//!   one filesystem and walked.
#![no_main]

#[path = "shared/btrfs_volume.rs"]
mod btrfs_volume;
#[path = "shared/walk.rs"]
mod walk;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::btrfs::sb::{self, ChunkMap};
use vmrescue::fs::{FsOptions, FsView};
use vmrescue::io::ReadAt;


fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        x.copy_from_slice(s);
    }
    u64::from_le_bytes(x)
}

fn chunk_map(data: &[u8]) {
    let opened = data.first().copied().unwrap_or(0);
    let mut m = ChunkMap::new(1);
    for d in 2..8u64 {
        if opened & (1 << d) != 0 {
            m.add_device(d);
        }
    }
    // Chunk items: an 8-byte logical start then the item, one after another.
    let mut off = 1usize;
    let mut n = 0;
    while off + 8 < data.len() && n < 16 {
        let logical = u64_at(data, off) & 0xffff_ffff_ffff;
        match sb::parse_chunk(data, off + 8, logical, 0) {
            Ok((mut c, used)) => {
                // Small stripe lengths reach more rows.
                c.stripe_len = c.stripe_len.min(1 << 20);
                let _ = m.insert(c);
                off += 8 + used;
            }
            Err(_) => off += 8,
        }
        n += 1;
    }
    let chunks: Vec<_> = m.chunks().to_vec();
    for (i, c) in chunks.iter().enumerate() {
        let pick = u64_at(data, data.len().saturating_sub(8 + i));
        let at = c.logical.saturating_add(pick % c.length.max(1));
        let len = (pick >> 40).max(1);
        if let Ok(places) = m.map(at, len) {
            for p in places {
                assert!(p.len <= len);
            }
        }
        if let Ok(Some(src)) = m.rebuild_sources(at, len, pick & 1 == 1) {
            for p in src {
                assert!(p.len <= len);
            }
        }
        if let Ok(Some(row)) = m.raid6_row(at, len) {
            assert!(row.run <= len && row.index < row.data);
            assert!(row.present.len() as u64 <= row.data + 2);
        }
    }
    let _ = m.missing_report(&|_| None);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        chunk_map(rest);
        return;
    }
    let n = usize::from(mode >> 1) % 3 + 2;
    let part = rest.len() / n;
    if part == 0 {
        return;
    }
    let devs: Vec<Arc<dyn ReadAt>> = rest.chunks(part).take(n).map(btrfs_volume::device).collect();
    if let Ok(fs) = Btrfs::open_devices(Arc::clone(&devs[0]), &devs[1..], &FsOptions::default()) {
        let _ = fs.status();
        walk::walk(&fs);
    }
});
