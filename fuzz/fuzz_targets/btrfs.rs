//! The btrfs reader on arbitrary bytes, made into a device by
//! `shared/btrfs_volume.rs` (checksums set right so the input reaches the
//! chunk map and the trees). Then open, and walk everything
//! (metadata, directories, lookups, links, xattrs, file data, extents,
//! subvolumes).
#![no_main]

#[path = "shared/btrfs_volume.rs"]
mod btrfs_volume;
#[path = "shared/walk.rs"]
mod walk;


use libfuzzer_sys::fuzz_target;
use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::{FsView, SubvolSpec};

fuzz_target!(|data: &[u8]| {
    let src = btrfs_volume::device(data);
    if let Ok(fs) = Btrfs::open(src) {
        let _ = fs.status();
        let _ = fs.subvolumes();
        let _ = fs.subvolume_root(&SubvolSpec::Path(b"@".to_vec()));
        walk::walk(&fs);
    }
});
