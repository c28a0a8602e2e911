//! Filesystem readers (ext2/3/4, XFS) against the kernel's mount of the same
//! bytes and the tools' reports: walks, shapes, htree, journal replay and
//! damaged images.
//!
//! One test binary per subject (see `tests/layers/main.rs`).

// Test helpers unwrap too: a failure there is a failed test (`clippy.toml`
// allows unwrap only inside test functions).
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod ext_support;
#[path = "../image_support/mod.rs"]
mod image_support;

mod btrfs;
mod btrfs_compress;
mod btrfs_corrupt;
mod btrfs_log;
mod btrfs_multi;
mod ext_corrupt;
mod ext_htree;
mod ext_journal;
mod ext_parity;
mod ext_shapes;
mod fat;
mod ntfs;
mod xfs_corrupt;
mod xfs_parity;
mod xfs_replay;
