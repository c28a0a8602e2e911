//! The MD and LVM raid fixtures of `tests/fixtures/make/raid.sh` (built by
//! mdadm, lvm2 and the kernel's md/dm-raid in the test VM) are where their
//! readers expect them: every member disk, its superblock where its
//! metadata version puts it, the degraded copies' wiped members all zeros,
//! and a walk manifest beside each set. The readers' own tests check the
//! contents.

use crate::common;

use std::fs::File;
use std::os::unix::fs::FileExt;

/// md's superblock magic (0xa92b4efc, little-endian on disk for 1.x and on x86 for 0.90).
const MD_MAGIC: [u8; 4] = [0xfc, 0x4e, 0x2b, 0xa9];

fn bytes_at(path: &std::path::Path, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut b, offset)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    b
}

fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Where the md superblock of metadata `version` lies on a member of `size` bytes.
fn superblock_offset(version: &str, size: u64) -> u64 {
    match version {
        "0.90" => (size & !0xffff) - 0x10000,
        "1.0" => (size - 8192) & !4095,
        "1.1" => 0,
        "1.2" => 4096,
        _ => unreachable!(),
    }
}

fn all_zeros(path: &std::path::Path) -> bool {
    let b = std::fs::read(path).unwrap();
    b.iter().all(|&x| x == 0)
}

fn manifest_is_sane(file: &str) {
    let text = common::report(file);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "{file}: {} lines", lines.len());
    for l in &lines {
        assert_eq!(l.split('\t').count(), 6, "{file}: {l:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/data/big-a.bin\tfile\t0644\t5246977\t")),
        "{file}"
    );
}

#[test]
fn md_sets_have_their_members_superblocks_and_manifests() {
    // (set, members, metadata, byte offset of the member on each disk, wiped members)
    let sets: [(&str, usize, &str, u64, &[usize]); 11] = [
        ("md-r1", 2, "1.2", 1 << 20, &[]),
        ("md-r1-090", 2, "0.90", 0, &[]),
        ("md-r0", 2, "1.0", 0, &[]),
        ("md-r5", 3, "1.2", 0, &[]),
        ("md-r5-degraded", 3, "1.2", 0, &[1]),
        ("md-r5-stale", 3, "1.2", 0, &[]),
        ("md-r6", 4, "1.1", 0, &[]),
        ("md-r6-degraded", 4, "1.1", 0, &[0, 2]),
        ("md-r10", 4, "1.2", 0, &[]),
        ("md-r10-f2", 4, "1.2", 0, &[]),
        ("md-lvm", 2, "1.2", 0, &[]),
    ];
    for (set, n, version, part, wiped) in sets {
        for d in 0..n {
            let p = common::fixture(&format!("{set}-d{d}"));
            if wiped.contains(&d) {
                assert!(all_zeros(&p), "{} should be all zeros", p.display());
                continue;
            }
            let off = part + superblock_offset(version, size(&p) - part);
            assert_eq!(
                bytes_at(&p, off, 4),
                MD_MAGIC,
                "{}: no md superblock at {off}",
                p.display()
            );
        }
        manifest_is_sane(&format!("{set}.manifest"));
    }
}

#[test]
fn lvm_raid_pvs_have_labels_and_manifests() {
    for d in 0..5 {
        let p = common::fixture(&format!("lvraid-d{d}"));
        assert_eq!(&bytes_at(&p, 512, 8), b"LABELONE", "{}", p.display());
        let q = common::fixture(&format!("lvraid-degraded-d{d}"));
        if d == 1 {
            assert!(all_zeros(&q), "{} should be all zeros", q.display());
        } else {
            assert_eq!(&bytes_at(&q, 512, 8), b"LABELONE", "{}", q.display());
        }
    }
    for lv in ["r0", "r1", "r4", "r5", "r6", "r10", "m1"] {
        manifest_is_sane(&format!("lvraid-{lv}.manifest"));
        assert!(common::report("lvraid.lvs.json").contains(&format!("\"lv_name\":\"{lv}\"")));
    }
}
