//! Engine parity: our ext reader's walk equals the kernel's.
//!
//! The fixture script recorded the kernel's walk of every fixture when it
//! built it (`<name>.walk`); plain `cargo test` compares with those. As root
//! (scripts/test) the `kernel_*` tests mount each image again and compare live.

mod common;
mod ext_support;

use ext_support::{FIXTURES, assert_same, manifest, open, walk};
use vmrescue::fs::FsView;

fn parity(name: &str) {
    let fs = open(name);
    let ours = walk(&fs);
    assert_same(name, &ours, &manifest(&format!("{name}.walk")));
    assert!(
        fs.status().problems.is_empty(),
        "{name}: problems on a healthy image: {:?}",
        fs.status().problems
    );
}

#[test]
fn ext2_1k_matches_the_kernel() {
    parity("ext-ext2-1k");
}

#[test]
fn ext3_2k_matches_the_kernel() {
    parity("ext-ext3-2k");
}

#[test]
fn ext4_4k_matches_the_kernel() {
    parity("ext-ext4-4k");
}

#[test]
fn ext4_1k_matches_the_kernel() {
    parity("ext-ext4-1k");
}

#[test]
fn ext4_noextent_matches_the_kernel() {
    parity("ext-ext4-noextent");
}

#[test]
fn ext4_bigalloc_matches_the_kernel() {
    parity("ext-ext4-bigalloc");
}

#[test]
fn inline_data_matches_the_kernel() {
    parity("ext-inline");
}

#[test]
fn ext4_64k_matches_fuse2fs() {
    parity("ext-ext4-64k");
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn kernel_mounts_match_live() {
    common::require_root("loop-mounts every ext fixture read-only");
    for name in FIXTURES {
        if *name == "ext-ext4-64k" {
            continue; // the kernel cannot mount 64 KiB blocks on 4 KiB pages
        }
        let image = common::fixture(name);
        let m = ext_support::KernelMount::new(&image, "ro,noload", true);
        let theirs = ext_support::kernel_walk(&m.path());
        drop(m);
        let fs = open(name);
        assert_same(name, &walk(&fs), &theirs);
    }
}
