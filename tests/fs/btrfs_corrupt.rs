//! Damaged btrfs images: a bad primary superblock (a mirror is used), bad
//! tree blocks (the DUP copy is used; with both copies bad, errors naming
//! the block), bad data (an I/O error naming the address and both
//! checksums), random damage (errors, never a panic or a hang).

use crate::common;
use crate::ext_support::{read_all, tolerant_walk};

use std::sync::Arc;
use std::time::{Duration, Instant};

use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FsView, NodeId};
use vmrescue::io::ReadAt;

fn image() -> Vec<u8> {
    std::fs::read(common::fixture("btrfs-main")).expect("read fixture")
}

fn open_bytes(bytes: Vec<u8>) -> vmrescue::Result<Btrfs> {
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    Btrfs::open(src)
}

fn problems(fs: &Btrfs) -> String {
    vmrescue::problem::texts(&fs.status().problems).join("\n")
}

fn node(fs: &Btrfs, path: &str) -> NodeId {
    resolve(fs, path.as_bytes(), false).expect("resolve").node
}

#[test]
fn a_bad_primary_superblock_uses_a_mirror() {
    let mut img = image();
    img[0x10000 + 0x100] ^= 0xff;
    let fs = open_bytes(img).expect("opened from the mirror");
    let p = problems(&fs);
    assert!(
        p.contains("primary superblock") && p.contains("65536"),
        "{p}"
    );
    assert!(p.contains("checksum"), "{p}");
    assert_eq!(
        read_all(&fs, node(&fs, "/hello.txt")).unwrap(),
        b"hello, world\nchanged after the snapshot\n"
    );
}

#[test]
fn no_good_superblock_is_an_error() {
    let mut img = image();
    for pos in [0x10000usize, 0x400_0000] {
        img[pos + 0x40] = b'X';
    }
    let e = open_bytes(img).unwrap_err().to_string();
    assert!(e.contains("superblock") && e.contains("magic"), "{e}");
    assert!(open_bytes(vec![0u8; 70000]).is_err());
    assert!(open_bytes(Vec::new()).is_err());
}

#[test]
fn a_bad_tree_block_copy_is_replaced_by_the_dup_copy() {
    let clean = open_bytes(image()).unwrap();
    let block = clean.root_tree_block();
    let copies = clean.physical_copies(block).unwrap();
    assert_eq!(copies.len(), 2, "metadata is DUP");
    // Compressed files may fail alike (a build without a decompressor): as many errors as clean.
    let clean_errors = tolerant_walk(&clean, 20_000);
    let mut img = image();
    img[copies[0] as usize + 200] ^= 0x55;
    let fs = open_bytes(img.clone()).unwrap();
    assert_eq!(tolerant_walk(&fs, 20_000), clean_errors);
    let p = problems(&fs);
    assert!(
        p.contains(&format!("btrfs tree block at byte {block}")) && p.contains("copy 2 is used"),
        "{p}"
    );
    // Both copies bad: errors and problems naming the block, no panic.
    img[copies[1] as usize + 200] ^= 0x55;
    let fs = open_bytes(img).unwrap();
    let e = fs.read_dir(fs.root()).unwrap_err().to_string();
    assert!(
        e.contains(&block.to_string()) && e.contains("checksum"),
        "{e}"
    );
    assert!(problems(&fs).contains(&block.to_string()));
}

#[test]
fn a_bad_data_block_is_an_io_error_naming_the_address() {
    let clean = open_bytes(image()).unwrap();
    let big = node(&clean, "/big-64m");
    let logical = clean
        .file_logical(big, 1 << 20)
        .unwrap()
        .expect("plain extent");
    let phys = clean.physical_copies(logical).unwrap();
    assert_eq!(phys.len(), 1, "data is single");
    let mut img = image();
    img[phys[0] as usize + 10] ^= 0x01;
    let fs = open_bytes(img).unwrap();
    let big = node(&fs, "/big-64m");
    let mut buf = vec![0u8; 4096];
    // Bytes before the damaged sector still read.
    fs.read_at(big, 0, &mut buf).unwrap();
    let e = fs.read_at(big, 1 << 20, &mut buf).unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, vmrescue::Error::Io { .. }), "{s}");
    assert!(
        s.contains("checksum mismatch")
            && s.contains(&logical.to_string())
            && s.contains("expected"),
        "{s}"
    );
    assert!(problems(&fs).contains("checksum mismatch"));
}

#[test]
fn random_damage_never_panics_or_hangs() {
    let clean = image();
    let block = open_bytes(clean.clone()).unwrap().root_tree_block();
    let copies = open_bytes(clean.clone())
        .unwrap()
        .physical_copies(block)
        .unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..12 {
        let mut img = clean.clone();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Hit the superblock's fields, the root block copies and anywhere.
            let pos = match seed % 3 {
                0 => 0x10000 + 0x30 + (seed >> 8) as usize % 0x300,
                1 => copies[(seed >> 4) as usize % 2] as usize + (seed >> 8) as usize % 16384,
                _ => (seed >> 8) as usize % img.len(),
            };
            img[pos] ^= (seed >> 32) as u8 | 1;
        }
        let start = Instant::now();
        if let Ok(fs) = open_bytes(img) {
            tolerant_walk(&fs, 3000);
            let _ = fs.subvolumes();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "round {round} took {:?}",
            start.elapsed()
        );
    }
}
