//! Engine parity: our ext reader's walk equals the kernel's.
//!
//! The fixture script recorded the kernel's walk of every fixture when it
//! built it (`<name>.walk`); plain `cargo test` compares with those. As root
//! (scripts/test) the `kernel_*` tests mount each image again and compare live.

use crate::common;
use crate::ext_support;

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
fn ext2_revision_0_matches_the_kernel() {
    parity("ext-ext2-rev0");
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
fn ext4_ea_inode_matches_the_kernel() {
    parity("ext-ext4-eainode");
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

fn extents_of(fs: &dyn FsView, path: &str) -> Vec<(u64, u64, bool)> {
    let n = vmrescue::fs::path::resolve(fs, path.as_bytes(), false)
        .unwrap()
        .node;
    fs.extents(n)
        .unwrap()
        .into_iter()
        .map(|x| (x.offset, x.len, x.unwritten))
        .collect()
}

#[test]
fn extents_show_holes_and_preallocation() {
    let fs = open("ext-ext4-4k");
    // fallocate 1 MiB, then 8 KiB written at 256 KiB.
    assert_eq!(
        extents_of(&fs, "/prealloc"),
        vec![
            (0, 256 << 10, true),
            (256 << 10, 8 << 10, false),
            (264 << 10, (1 << 20) - (264 << 10), true)
        ]
    );
    // Preallocated past the end (keep size): nothing inside the file.
    assert_eq!(extents_of(&fs, "/keepsize"), vec![]);
    // 200,000 bytes with 80 KiB punched out at 40 KiB.
    assert_eq!(
        extents_of(&fs, "/punched"),
        vec![(0, 40960, false), (122_880, 200_000 - 122_880, false)]
    );
    // 4 KiB written at 0, 1 MiB and 20 MiB.
    assert_eq!(
        extents_of(&fs, "/sparse"),
        vec![
            (0, 4096, false),
            (1 << 20, 4096, false),
            (20 << 20, 4096, false)
        ]
    );
    // Every other block of /frag holds data.
    let frag = extents_of(&fs, "/frag");
    assert_eq!(frag.len(), 1500);
    assert!(
        frag.iter()
            .enumerate()
            .all(|(i, x)| *x == (i as u64 * 8192, 4096, false))
    );
    // Block maps: the triple-indirect sparse file of the 1 KiB ext2.
    let fs = open("ext-ext2-1k");
    let sparse = extents_of(&fs, "/sparse");
    assert_eq!(
        sparse.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![0, 12288, 307_200, 73_400_320, 1_073_741_824]
    );
    assert!(sparse.iter().all(|x| x.1 == 4096 && !x.2));
    // Inline data is one extent.
    let fs = open("ext-inline");
    assert_eq!(extents_of(&fs, "/inline-150"), vec![(0, 150, false)]);
}

#[test]
fn host_extents_point_at_the_file_bytes() {
    use std::os::unix::fs::FileExt;
    let fs = open("ext-ext4-4k");
    let node = |p: &str| {
        vmrescue::fs::path::resolve(&fs, p.as_bytes(), false)
            .unwrap()
            .node
    };
    let medium = node("/dir/sub/medium");
    let mut off = 0u64;
    let size = fs.metadata(medium).unwrap().size;
    while off < size {
        let h = fs.host_extent(medium, off, size - off).expect("plain data");
        assert!(h.len > 0 && off + h.len <= size);
        let mut a = vec![0u8; h.len as usize];
        h.file.read_exact_at(&mut a, h.offset).unwrap();
        let mut b = vec![0u8; h.len as usize];
        assert_eq!(fs.read_at(medium, off, &mut b).unwrap(), b.len());
        assert_eq!(a, b);
        off += h.len;
    }
    // Not for holes, unwritten ranges, inline data, or past the end.
    assert!(fs.host_extent(node("/sparse"), 8192, 4096).is_none());
    assert!(fs.host_extent(node("/prealloc"), 0, 4096).is_none());
    assert!(fs.host_extent(node("/prealloc"), 256 << 10, 4096).is_some());
    assert!(fs.host_extent(medium, size, 10).is_none());
    let inline = open("ext-inline");
    let n = vmrescue::fs::path::resolve(&inline, b"/inline-150", false)
        .unwrap()
        .node;
    assert!(inline.host_extent(n, 0, 150).is_none());
}
