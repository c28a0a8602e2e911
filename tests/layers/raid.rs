//! LVM raid and mirror LVs built by lvm2 and dm-raid in the test VM
//! (`tests/fixtures/make/raid.sh`: VG `rvg` over five disks, LVs r0 raid0,
//! r1 raid1, r4 raid4, r5 raid5, r6 raid6, r10 raid10, m1 mirror, each an
//! ext4 of a known tree), read by vmrescue's RAID reader: every file
//! compared by SHA-256 with the manifest written from the tree, on the
//! healthy set and on the set whose disk 1 is all zeros (raid1, mirror
//! and raid10 read the other copy, raid4/5/6 rebuild from parity, raid0
//! says why it cannot), and `layers` saying which legs are read.

use crate::common;

use sha2::Digest;
use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::{FileType, FsOptions, path};
use vmrescue::image;
use vmrescue::layers::{self, Layout};

const LVS: [&str; 7] = ["r0", "r1", "r4", "r5", "r6", "r10", "m1"];

fn disks(set: &str) -> Vec<std::path::PathBuf> {
    (0..5)
        .map(|i| common::fixture(&format!("{set}-d{i}")))
        .collect()
}

fn scan(set: &str) -> Layout {
    layers::scan(
        disks(set)
            .iter()
            .map(|p| image::open(p).expect("open fixture"))
            .collect(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every entry of `lvraid-<lv>.manifest` read through the LV's filesystem
/// and compared: files by SHA-256 and size, links by target, directories
/// by mode. Returns how many files were compared.
fn compare_with_manifest(layout: &Layout, lv: &str) -> usize {
    let v = layout
        .volumes
        .iter()
        .find(|v| v.name == format!("rvg/{lv}"))
        .unwrap_or_else(|| panic!("no volume rvg/{lv}"));
    let fs = Userspace::new(FsOptions::default())
        .open_fs(layout, v.id, &FsOptions::default())
        .unwrap_or_else(|e| panic!("rvg/{lv}: {e}"));
    let manifest =
        std::fs::read_to_string(common::fixture_file(&format!("lvraid-{lv}.manifest"))).unwrap();
    let mut files = 0;
    for line in manifest.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (p, kind, mode) = (f[0], f[1], f[2]);
        let node = path::resolve(&*fs, p.as_bytes(), false)
            .unwrap_or_else(|e| panic!("rvg/{lv}{p}: {e}"))
            .node;
        let md = fs.metadata(node).unwrap();
        assert_eq!(format!("{:04o}", md.perm), mode, "rvg/{lv}{p}: mode");
        match kind {
            "file" => {
                assert_eq!(md.file_type, FileType::Regular, "rvg/{lv}{p}");
                let mut sha = sha2::Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut at = 0u64;
                while at < md.size {
                    let n = fs.read_at(node, at, &mut buf).unwrap();
                    assert!(n > 0, "rvg/{lv}{p}: short read at {at}");
                    sha.update(&buf[..n]);
                    at += n as u64;
                }
                assert_eq!(md.size.to_string(), f[3], "rvg/{lv}{p}: size");
                assert_eq!(hex(&sha.finalize()), f[5], "rvg/{lv}{p}: SHA-256");
                files += 1;
            }
            "link" => assert_eq!(fs.read_link(node).unwrap(), f[4].as_bytes(), "rvg/{lv}{p}"),
            "dir" => assert_eq!(md.file_type, FileType::Directory, "rvg/{lv}{p}"),
            other => panic!("{other} in the manifest"),
        }
    }
    files
}

fn lv_volume<'a>(layout: &'a Layout, lv: &str) -> &'a layers::Volume {
    layout
        .volumes
        .iter()
        .find(|v| v.name == format!("rvg/{lv}"))
        .unwrap()
}

#[test]
fn every_raid_and_mirror_lv_reads_as_lvm2_wrote_it() {
    let layout = scan("lvraid");
    for lv in LVS {
        assert_eq!(compare_with_manifest(&layout, lv), 10, "rvg/{lv}");
        let v = lv_volume(&layout, lv);
        assert!(v.problems.is_empty(), "rvg/{lv}: {:?}", v.problems);
    }
    let notes = |lv| lv_volume(&layout, lv).notes.join("\n");
    assert!(notes("r1").contains("raid1 reads leg r1_rimage_0 (then r1_rimage_1 if a read fails)"));
    assert!(
        notes("r5")
            .contains("raid5 (left symmetric) reads legs r5_rimage_0, r5_rimage_1, r5_rimage_2")
    );
    // lvm2's raid4 is dm-raid's: parity on the first leg.
    assert!(notes("r4").contains("raid5 (parity on the first leg) reads legs"));
    assert!(notes("r6").contains("raid6 (rotating parity zero restart) reads legs"));
    assert!(notes("r10").contains("raid10 (2 near copies) reads legs"));
    assert!(notes("m1").contains("raid1 reads leg m1_mimage_0"));
}

#[test]
fn with_disk_1_wiped_copies_and_parity_still_read_every_file() {
    let layout = scan("lvraid-degraded");
    for lv in ["r1", "r4", "r5", "r6", "r10", "m1"] {
        assert_eq!(compare_with_manifest(&layout, lv), 10, "rvg/{lv}");
        let p = vmrescue::problem::texts(&lv_volume(&layout, lv).problems).join("\n");
        let leg = if lv == "m1" {
            "m1_mimage_1"
        } else {
            &format!("{lv}_rimage_1")
        };
        assert!(
            p.contains(&format!("leg {leg} is not used: PV pv1")),
            "rvg/{lv}: {p}"
        );
        if ["r4", "r5", "r6"].contains(&lv) {
            assert!(
                p.contains(&format!("the data of {lv}_rimage_1 is rebuilt from parity")),
                "rvg/{lv}: {p}"
            );
        }
    }
    // raid0 has nothing to rebuild from: unreadable, and it says which leg.
    let r0 = lv_volume(&layout, "r0");
    assert!(!r0.is_filesystem());
    let p = vmrescue::problem::texts(&r0.problems).join("\n");
    assert!(p.contains("raid0: 1 of its legs cannot be read"), "{p}");
    assert!(p.contains("leg r0_rimage_1 is not used: PV pv1"), "{p}");
}

#[test]
fn layers_says_which_legs_are_read() {
    let d = disks("lvraid-degraded");
    let d: Vec<&str> = d.iter().map(|p| p.to_str().unwrap()).collect();
    let out = common::vmrescue(&[
        "layers", d[0], "--disk", d[1], "--disk", d[2], "--disk", d[3], "--disk", d[4],
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for line in [
        "rvg/r1: raid1 reads leg r1_rimage_0",
        "rvg/r5: raid5 (left symmetric) reads legs r5_rimage_0, r5_rimage_2",
        "rvg/r6: raid6 (rotating parity zero restart) reads legs r6_rimage_0, r6_rimage_2, r6_rimage_3, r6_rimage_4",
        "rvg/m1: raid1 reads leg m1_mimage_0",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }
    assert!(
        stderr.contains(
            "rvg/r5: LV r5: the data of r5_rimage_1 is rebuilt from parity and the other legs"
        ),
        "{stderr}"
    );
    // Userspace reads it; the kernel engine would need dm-raid.
    assert!(
        stdout.contains("rvg/r5   userspace  ext4: read by vmrescue itself (it is a raid5 (left symmetric) array: the kernel engine would need dm-raid"),
        "{stdout}"
    );
}
