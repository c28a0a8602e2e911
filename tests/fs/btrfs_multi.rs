//! Our btrfs reader over several devices against the kernel: every
//! fixture of `tests/fixtures/make/btrfs-multi.sh` (raid1, raid0, raid10,
//! raid5, raid6, two partitions of one disk) walks like the kernel's mount
//! of all its devices (every file's SHA-256 included); with a device
//! missing or wiped the other copies (or the RAID5/6 parity) give the same
//! bytes, and what cannot be read is an I/O error naming the device.
//! Damaged device superblocks and device lists are errors or notes, never
//! a panic.

use crate::common;
use crate::ext_support::{assert_same, manifest, read_all, walk};

use std::sync::Arc;

use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::btrfs::csum::{self, CsumType};
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsOptions, FsView, NodeId};
use vmrescue::io::{FileSource, ReadAt, Window};

/// (case, devices).
const CASES: [(&str, usize); 5] = [
    ("raid1", 2),
    ("raid0", 2),
    ("raid10", 4),
    ("raid5", 3),
    ("raid6", 4),
];

fn device(case: &str, i: usize) -> Arc<dyn ReadAt> {
    let p = common::fixture(&format!("btrfs-{case}-{i}"));
    Arc::new(FileSource::open(&p).expect("open image"))
}

fn devices(case: &str, n: usize) -> Vec<Arc<dyn ReadAt>> {
    (1..=n).map(|i| device(case, i)).collect()
}

fn open(devs: &[Arc<dyn ReadAt>]) -> vmrescue::Result<Btrfs> {
    Btrfs::open_devices(Arc::clone(&devs[0]), &devs[1..], &FsOptions::default())
}

fn problems(fs: &Btrfs) -> String {
    vmrescue::problem::texts(&fs.status().problems).join("\n")
}

fn notes(fs: &Btrfs) -> String {
    fs.status().notes.join("\n")
}

fn node(fs: &Btrfs, path: &str) -> NodeId {
    resolve(fs, path.as_bytes(), false).expect("resolve").node
}

fn same_as_kernel(case: &str, fs: &Btrfs) {
    let file = format!("btrfs-{case}.walk");
    assert_same(&format!("{case}: {file}"), &walk(fs), &manifest(&file));
}

/// A device whose bytes read as zeros, except its primary superblock.
struct Wiped(Arc<dyn ReadAt>);

impl ReadAt for Wiped {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_exact_at(offset, buf)?;
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            if !(0x10000..0x11000).contains(&at) {
                *b = 0;
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
}

#[test]
fn every_profile_with_all_devices_matches_the_kernel() {
    for (case, n) in CASES {
        let devs = devices(case, n);
        let fs = open(&devs).unwrap_or_else(|e| panic!("{case}: {e}"));
        same_as_kernel(case, &fs);
        assert!(fs.status().problems.is_empty(), "{case}: {}", problems(&fs));
        let ids: Vec<String> = (2..=n).map(|i| i.to_string()).collect();
        let st = fs.status();
        assert_eq!(st.notes.len(), 1, "{case}: {:?}", st.notes);
        assert!(
            st.notes[0].starts_with("btrfs filesystem ")
                && st.notes[0].ends_with(&format!(
                    " of {n} devices: this volume is devid 1; devid {} opened with it",
                    ids.join(", ")
                )),
            "{case}: {:?}",
            st.notes
        );
        assert_eq!(
            fs.status().label.as_deref(),
            Some(format!("vmrx-{case}").as_str())
        );
        // Any device first, the others in any order: the same filesystem.
        let mut rev = devs.clone();
        rev.reverse();
        let fs = open(&rev).unwrap();
        same_as_kernel(case, &fs);
        assert!(fs.status().problems.is_empty(), "{case}: {}", problems(&fs));
    }
}

#[test]
fn the_big_file_lies_on_every_device() {
    // The fixtures' 5 MB file spans many 64 KiB stripes: each device holds some.
    for (case, n) in CASES {
        let fs = open(&devices(case, n)).unwrap();
        let big = node(&fs, "/big-noise");
        let mut seen = std::collections::BTreeSet::new();
        for off in (0..5_000_000u64).step_by(65536) {
            let logical = fs.file_logical(big, off).unwrap().expect("plain extent");
            for p in fs.places(logical).unwrap() {
                seen.insert(p.devid);
            }
        }
        assert_eq!(seen.len(), n, "{case}: {seen:?}");
    }
}

#[test]
fn two_partitions_of_one_disk_match_the_kernel() {
    let img: Arc<dyn ReadAt> =
        Arc::new(FileSource::open(&common::fixture("btrfs-parts")).expect("open image"));
    let part = |start: u64| -> Arc<dyn ReadAt> {
        Arc::new(Window::new(Arc::clone(&img), start * 512, 288_768 * 512))
    };
    let fs = open(&[part(292_864), part(2048)]).unwrap();
    same_as_kernel("parts", &fs);
    assert!(fs.status().problems.is_empty(), "{}", problems(&fs));
}

#[test]
fn a_missing_mirror_device_is_named_and_the_other_copy_is_read() {
    for (case, n, gone) in [("raid1", 2, 2), ("raid1", 2, 1), ("raid10", 4, 3)] {
        let mut devs = devices(case, n);
        devs.remove(gone - 1);
        let fs = open(&devs).unwrap_or_else(|e| panic!("{case} without {gone}: {e}"));
        same_as_kernel(case, &fs);
        let s = notes(&fs);
        let profile = case.to_uppercase();
        assert!(
            s.contains(&format!("btrfs device devid {gone} (UUID "))
                && s.contains("was not found")
                && s.contains(&format!("{profile} data"))
                && s.contains(": read from the other copies")
                && !s.contains("cannot be read"),
            "{case}: {s}"
        );
    }
}

#[test]
fn raid0_data_on_a_missing_device_is_an_io_error_naming_it() {
    let fs = open(&[device("raid0", 1)]).unwrap();
    let s = notes(&fs);
    assert!(
        s.contains("devid 2") && s.contains("RAID0 data: cannot be read"),
        "{s}"
    );
    // Metadata is RAID1: the tree reads; inline files read.
    assert_eq!(
        read_all(&fs, node(&fs, "/hello.txt")).unwrap(),
        b"hello, world\n"
    );
    let e = read_all(&fs, node(&fs, "/big-noise")).unwrap_err();
    let t = e.to_string();
    assert!(matches!(e, vmrescue::Error::Io { .. }), "{t}");
    assert!(
        t.contains("devid 2 (UUID ") && t.contains("not found"),
        "{t}"
    );
    // The listing still works.
    let names: Vec<Vec<u8>> = fs
        .read_dir(fs.root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&b"big-noise".to_vec()));
}

#[test]
fn raid5_and_raid6_rebuild_one_missing_device_from_parity() {
    for (case, n) in [("raid5", 3), ("raid6", 4)] {
        for gone in 1..=n {
            let mut devs = devices(case, n);
            devs.remove(gone - 1);
            let fs = open(&devs).unwrap_or_else(|e| panic!("{case} without {gone}: {e}"));
            same_as_kernel(case, &fs);
            let s = notes(&fs);
            assert!(
                s.contains(&format!("devid {gone} (UUID "))
                    && s.contains(&format!(
                        "{} data: rebuilt from the parity",
                        case.to_uppercase()
                    )),
                "{case} without {gone}: {s}"
            );
        }
    }
}

#[test]
fn raid5_with_two_devices_missing_says_so() {
    let fs = match open(&[device("raid5", 1)]) {
        // The tree may already be unreadable: an error naming the devices.
        Err(e) => {
            let t = e.to_string();
            assert!(t.contains("devid"), "{t}");
            return;
        }
        Ok(fs) => fs,
    };
    let s = notes(&fs);
    assert!(s.contains("cannot be read"), "{s}");
}

#[test]
fn a_wiped_device_is_read_from_the_other_copy() {
    for (case, n) in [("raid1", 2), ("raid10", 4), ("raid5", 3), ("raid6", 4)] {
        let mut found_bad_copy = false;
        for wiped in 1..=n {
            let mut devs = devices(case, n);
            devs[wiped - 1] = Arc::new(Wiped(Arc::clone(&devs[wiped - 1])));
            let fs = open(&devs).unwrap_or_else(|e| panic!("{case} wiped {wiped}: {e}"));
            same_as_kernel(case, &fs);
            let p = problems(&fs);
            found_bad_copy |= p.contains("is used");
            assert!(
                p.is_empty() || p.contains("is used"),
                "{case} wiped {wiped}: {p}"
            );
        }
        assert!(found_bad_copy, "{case}: no bad copy was ever met");
    }
}

/// Device `i` of `case` as bytes, with its superblock changed by `f` and
/// its checksum made right again.
fn with_superblock(case: &str, i: usize, f: impl Fn(&mut [u8])) -> Arc<dyn ReadAt> {
    let mut img = std::fs::read(common::fixture(&format!("btrfs-{case}-{i}"))).unwrap();
    let sb = &mut img[0x10000..0x11000];
    f(sb);
    let c = csum::checksum(CsumType::Crc32c, &sb[0x20..]);
    sb[..c.len()].copy_from_slice(&c);
    // The mirror at 64 MiB would otherwise disagree: make it bad.
    img[0x400_0000 + 0x40] = b'X';
    Arc::new(img)
}

#[test]
fn a_device_claiming_another_devid_is_not_trusted() {
    // Device 2 says it is devid 7 (a device item lie), then devid u64::MAX.
    for devid in [7u64, u64::MAX] {
        let d2 = with_superblock("raid1", 2, |sb| {
            sb[0xc9..0xd1].copy_from_slice(&devid.to_le_bytes())
        });
        let fs = open(&[device("raid1", 1), d2]).unwrap();
        // The chunks name devid 2, which is missing: read from devid 1.
        same_as_kernel("raid1", &fs);
        let p = problems(&fs);
        assert!(
            p.contains(&format!("devid {devid}")) && p.contains("no device item"),
            "{p}"
        );
        assert!(notes(&fs).contains("devid 2 (UUID "), "{}", notes(&fs));
    }
    // A wrong device UUID: named as a problem.
    let d2 = with_superblock("raid1", 2, |sb| sb[0x10b] ^= 0xff);
    let fs = open(&[device("raid1", 1), d2]).unwrap();
    same_as_kernel("raid1", &fs);
    assert!(problems(&fs).contains("the chunk tree says device UUID"));
}

#[test]
fn other_filesystems_and_cloned_devices_are_not_mixed_in() {
    // raid0's devices beside raid1's: another fsid, ignored.
    let fs = open(&[device("raid1", 1), device("raid0", 2), device("raid1", 2)]).unwrap();
    same_as_kernel("raid1", &fs);
    assert!(fs.status().problems.is_empty(), "{}", problems(&fs));
    // A cloned disk: devid 2 twice; the first one given is used.
    let fs = open(&[
        device("raid5", 1),
        device("raid5", 2),
        device("raid5", 2),
        device("raid5", 3),
    ])
    .unwrap();
    same_as_kernel("raid5", &fs);
    let s = notes(&fs);
    assert!(
        s.contains("devid 2 appears twice") && s.contains("only the first found is used"),
        "{s}"
    );
    // Not btrfs at all: a problem, the filesystem still opens.
    let junk: Arc<dyn ReadAt> = Arc::new(vec![0u8; 1 << 20]);
    let fs = open(&[device("raid1", 1), junk, device("raid1", 2)]).unwrap();
    same_as_kernel("raid1", &fs);
    assert!(problems(&fs).contains("btrfs device"));
}

#[test]
fn random_damage_to_a_device_never_panics() {
    let clean = std::fs::read(common::fixture("btrfs-raid5-2")).unwrap();
    let fs = open(&devices("raid5", 3)).unwrap();
    let block = fs.root_tree_block();
    let near: Vec<u64> = fs
        .places(block)
        .unwrap()
        .into_iter()
        .filter(|p| p.devid == 2)
        .map(|p| p.physical)
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..8 {
        let mut img = clean.clone();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pos = match (seed % 3, near.first()) {
                (0, Some(&p)) => p as usize + (seed >> 8) as usize % 16384,
                (1, _) => 0x10000 + (seed >> 8) as usize % 4096,
                _ => (seed >> 8) as usize % (8 << 20),
            };
            if let Some(b) = img.get_mut(pos) {
                *b ^= (seed >> 32) as u8 | 1;
            }
        }
        let d2: Arc<dyn ReadAt> = Arc::new(img);
        if let Ok(fs) = open(&[device("raid5", 1), d2, device("raid5", 3)]) {
            let mut stack = vec![fs.root()];
            let mut seen = 0;
            while let Some(n) = stack.pop() {
                seen += 1;
                if seen > 1000 {
                    break;
                }
                match fs.metadata(n).map(|m| m.file_type) {
                    Ok(FileType::Directory) => {
                        if let Ok(es) = fs.read_dir(n) {
                            stack.extend(es.into_iter().map(|e| e.node));
                        }
                    }
                    Ok(FileType::Regular) => {
                        let _ = read_all(&fs, n);
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn the_device_with_the_newest_superblock_is_read_from() {
    // Device 2 says it is one transaction newer: the filesystem is read
    // from it, whichever volume is opened.
    let d2 = with_superblock("raid1", 2, |sb| {
        let g = u64::from_le_bytes(sb[0x48..0x50].try_into().unwrap());
        sb[0x48..0x50].copy_from_slice(&(g + 1).to_le_bytes());
    });
    let fs = open(&[device("raid1", 1), Arc::clone(&d2)]).unwrap();
    assert_eq!(fs.superblock().devid, 2);
    let s = notes(&fs);
    assert!(
        s.contains("this volume is devid 1; devid 2 opened with it")
            && s.contains("btrfs devid 2 has the newest superblock")
            && s.contains("btrfs devid 1 has generation"),
        "{s}"
    );
    same_as_kernel("raid1", &fs);
}

#[test]
fn raid6_rebuilds_two_missing_devices_with_p_and_q() {
    for a in 1..=4usize {
        for b in a + 1..=4 {
            let devs: Vec<Arc<dyn ReadAt>> = (1..=4)
                .filter(|&i| i != a && i != b)
                .map(|i| device("raid6", i))
                .collect();
            let fs = open(&devs).unwrap_or_else(|e| panic!("raid6 without {a}, {b}: {e}"));
            same_as_kernel("raid6", &fs);
            let s = notes(&fs);
            assert!(
                s.contains(&format!("devid {a} (UUID "))
                    && s.contains(&format!("devid {b} (UUID "))
                    && !s.contains("cannot be read"),
                "raid6 without {a}, {b}: {s}"
            );
        }
    }
    // Three missing: the tree cannot be read, an error naming devices.
    let e = open(&[device("raid6", 1)]).unwrap_err().to_string();
    assert!(e.contains("devid"), "{e}");
}
