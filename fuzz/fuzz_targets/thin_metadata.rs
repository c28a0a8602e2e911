//! dm-thin pool metadata (`<pool>_tmeta`) from arbitrary bytes: the
//! superblock, the device details tree, the two-level mapping tree of every
//! device, and each device's mapping built over a data LV. The first byte
//! chooses whether checksums are verified (odd) or skipped so the btree
//! code behind them is reached; the rest, padded with zeros to four 4 KiB
//! blocks, is the metadata device.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::layers::lvm::thin;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut meta = rest.to_vec();
    if meta.len() < 4 * 4096 {
        meta.resize(4 * 4096, 0);
    }
    let _ = thin::fuzz_metadata(&meta, mode & 1 == 1);
});
