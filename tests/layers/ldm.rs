//! Windows dynamic disks (LDM) against libldm's `ldmtool`: the databases
//! written by `tests/fixtures/make/ldm.sh` (two MBR disks with simple,
//! spanned and striped volumes, a GPT disk with a simple one), the volumes
//! and extents ldmtool reported (`ldm.ldmtool`), the NTFS on each volume
//! read back by SHA-256 (`ldm.sums`, from the ntfs-3g mount that filled
//! them), and damaged copies: PRIVHEAD, TOCBLOCK, VBLKs, extents.

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::Digest;
use vmrescue::image;
use vmrescue::io::Target;
use vmrescue::layers::{self, Layout, VolumeKind};

const IMAGES: [&str; 3] = ["ldm-a", "ldm-b", "ldm-gpt"];
/// Disk A is 40 MiB: its configuration area is its last 2048 sectors.
const A_CONFIG: u64 = (40 * 2048 - 2048) * 512;
/// The VMDB is 17 sectors into the configuration area, the VBLKs follow it.
const A_VMDB: u64 = A_CONFIG + 17 * 512;

fn a_vblk(slot: u64) -> u64 {
    A_VMDB + 512 + slot * 128
}

fn scan_paths(paths: &[PathBuf]) -> Layout {
    layers::scan(
        paths
            .iter()
            .map(|p| image::open(p).expect("open image"))
            .collect(),
    )
}

fn all() -> Vec<PathBuf> {
    IMAGES.iter().map(|n| common::fixture(n)).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn file_name(l: &Layout, disk: usize) -> String {
    l.disks[disk]
        .origin
        .host_path()
        .and_then(Path::file_name)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn ldm_volumes_and_extents_match_ldmtool() {
    let l = scan_paths(&all());
    let report = common::report("ldm.ldmtool");
    let mut checked = 0;
    for line in report.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [group, vol, kind, size, chunk, index, img, offset, len] = f[..] else {
            panic!("bad line {line}");
        };
        let (size, chunk, index, offset, len): (u64, u64, usize, u64, u64) = (
            size.parse().unwrap(),
            chunk.parse().unwrap(),
            index.parse().unwrap(),
            offset.parse().unwrap(),
            len.parse().unwrap(),
        );
        let name = format!("ldm_vol_{group}_{vol}");
        let v = l
            .volumes
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no volume {name}"));
        let VolumeKind::LdmVolume { layout, .. } = &v.kind else {
            panic!("{name} is {:?}", v.kind)
        };
        assert_eq!(layout, kind, "{name}");
        assert_eq!(v.size(), size, "{name}");
        assert!(v.problems.is_empty(), "{name}: {:?}", v.problems);
        let segs = v.mapping.segments();
        match &segs[if kind == "striped" { 0 } else { index }].target {
            Target::Linear(a) => {
                assert_ne!(kind, "striped");
                assert_eq!(file_name(&l, a.disk.0), img, "{name} part {index}");
                assert_eq!(a.offset, offset, "{name} part {index}");
                assert_eq!(segs[index].len, len, "{name} part {index}");
            }
            Target::Striped {
                chunk_size,
                stripes,
            } => {
                assert_eq!(kind, "striped");
                assert_eq!(*chunk_size, chunk, "{name}");
                assert_eq!(file_name(&l, stripes[index].disk.0), img, "{name}");
                assert_eq!(stripes[index].offset, offset, "{name} column {index}");
                assert_eq!(segs[0].len / stripes.len() as u64, len, "{name}");
            }
            t => panic!("{name}: {t:?}"),
        }
        assert_eq!(v.content.kind.name(), "ntfs", "{name}");
        checked += 1;
    }
    assert_eq!(checked, 6, "{report}");
    // The dynamic disks' own partitions are not shown as filesystems.
    for v in &l.volumes {
        if let VolumeKind::Partition { .. } = v.kind {
            assert!(!v.is_filesystem(), "{} shown as {:?}", v.name, v.content);
        }
    }
}

#[test]
fn ntfs_on_ldm_volumes_reads_as_ntfs3g_wrote_it() {
    let paths = all();
    let sums = common::report("ldm.sums");
    let mut n = 0;
    for line in sums.lines() {
        let [group, vol, path, sha] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad line {line}");
        };
        let volume = format!("ldm_vol_{group}_{vol}");
        let mut args = vec!["cat", paths[0].to_str().unwrap()];
        for p in &paths[1..] {
            args.extend(["--disk", p.to_str().unwrap()]);
        }
        let file = format!("/{path}");
        args.extend(["--volume", &volume, &file]);
        let out = common::vmrescue(&args);
        assert!(
            out.status.success(),
            "{volume} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            hex(&sha2::Sha256::digest(&out.stdout)),
            sha,
            "{volume} {path}"
        );
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn a_missing_member_disk_is_named_and_the_rest_is_read() {
    let l = scan_paths(&[common::fixture("ldm-a")]);
    let v1 = l
        .volumes
        .iter()
        .find(|v| v.name == "ldm_vol_WIN-TEST-Dg0_Volume1")
        .unwrap();
    assert!(v1.is_filesystem());
    let v2 = l
        .volumes
        .iter()
        .find(|v| v.name == "ldm_vol_WIN-TEST-Dg0_Volume2")
        .unwrap();
    assert!(!v2.is_filesystem());
    let text = format!("{:?}", v2.problems);
    assert!(
        text.contains("Disk2") && text.contains("is missing") && text.contains("--disk"),
        "{text}"
    );
}

/// A private copy of disk A with `patch` applied (bytes at an offset).
fn damaged(dir: &Path, patches: &[(u64, &[u8])]) -> PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let p = common::fixture_copy("ldm-a", dir);
    let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    for (at, bytes) in patches {
        f.seek(SeekFrom::Start(*at)).unwrap();
        f.write_all(bytes).unwrap();
    }
    p
}

fn problems(l: &Layout) -> String {
    l.all_problems()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn volume_names(l: &Layout) -> Vec<String> {
    l.volumes
        .iter()
        .filter(|v| matches!(v.kind, VolumeKind::LdmVolume { .. }))
        .map(|v| v.name.clone())
        .collect()
}

#[test]
fn a_damaged_first_privhead_is_replaced_by_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let a = damaged(dir.path(), &[(6 * 512, b"XXXXXXXX")]);
    let l = scan_paths(&[a]);
    let p = problems(&l);
    assert!(
        p.contains("LDM PRIVHEAD at byte 3072: no \"PRIVHEAD\" signature"),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "LDM PRIVHEAD copy at byte {}: used instead",
            A_CONFIG + 1856 * 512
        )),
        "{p}"
    );
    assert_eq!(volume_names(&l).len(), 3, "{p}");
}

#[test]
fn every_privhead_damaged_is_said_and_nothing_is_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let a = damaged(
        dir.path(),
        &[
            (6 * 512, b"XXXXXXXX"),
            (A_CONFIG + 1856 * 512, b"XXXXXXXX"),
            (A_CONFIG + 2047 * 512, b"XXXXXXXX"),
        ],
    );
    let l = scan_paths(&[a]);
    let p = problems(&l);
    assert!(
        p.contains("LDM PRIVHEAD at byte 3072: no readable copy"),
        "{p}"
    );
    assert!(volume_names(&l).is_empty());
}

#[test]
fn damaged_tocblocks_fall_back_to_a_copy_or_are_said() {
    let dir = tempfile::tempdir().unwrap();
    // Sector 2's copy (the one libldm reads): the next one is used. The
    // copies at sectors 1 and 2046 may be missing (Vista and later write
    // only 2 and 2045): one gone is not damage.
    let a = damaged(
        dir.path(),
        &[
            (A_CONFIG + 2 * 512, b"XXXXXXXX"),
            (A_CONFIG + 512, b"XXXXXXXX"),
        ],
    );
    let l = scan_paths(&[a]);
    let p = problems(&l);
    assert!(
        p.contains(&format!(
            "LDM TOCBLOCK at byte {}: no \"TOCBLOCK\" signature",
            A_CONFIG + 2 * 512
        )),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "LDM TOCBLOCK at byte {}: this copy used",
            A_CONFIG + 2045 * 512
        )),
        "{p}"
    );
    assert!(!p.contains(&format!("byte {}:", A_CONFIG + 512)), "{p}");
    assert_eq!(volume_names(&l).len(), 3, "{p}");
    let dir = tempfile::tempdir().unwrap();
    let patches: Vec<(u64, &[u8])> = [1, 2, 2045, 2046]
        .iter()
        .map(|s| (A_CONFIG + s * 512, &b"XXXXXXXX"[..]))
        .collect();
    let l = scan_paths(&[damaged(dir.path(), &patches)]);
    let p = problems(&l);
    assert!(
        p.contains(&format!(
            "LDM TOCBLOCK at byte {A_CONFIG}: none of the four copies is readable"
        )),
        "{p}"
    );
    assert!(volume_names(&l).is_empty());
}

#[test]
fn a_broken_vblk_sequence_and_bad_entries_are_named_by_position() {
    let dir = tempfile::tempdir().unwrap();
    // Slot 3 (disk record Disk2) gets slot 2's sequence number; slot 1
    // (second half of the disk group record) claims entry 5 of 2.
    let a = damaged(
        dir.path(),
        &[
            (a_vblk(3) + 4, &6u32.to_be_bytes()),
            (a_vblk(1) + 12, &5u16.to_be_bytes()),
        ],
    );
    let l = scan_paths(&[a]);
    let p = problems(&l);
    assert!(
        p.contains(&format!(
            "LDM VBLK at byte {}: sequence number 6 does not follow 6",
            a_vblk(3)
        )),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "LDM VBLK at byte {}: entry 5 of 2 (record 1): skipped",
            a_vblk(1)
        )),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "LDM VBLK at byte {}: record 1 has 1 of its 2 entries: skipped",
            a_vblk(0)
        )),
        "{p}"
    );
    // The group's name comes from the PRIVHEAD then.
    assert!(
        volume_names(&l).contains(&"ldm_vol_WIN-TEST-Dg0_Volume1".to_string()),
        "{p}"
    );
}

#[test]
fn an_extent_past_the_data_area_makes_its_volume_unreadable_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Slot 6 is partition Disk1-01: header 16, record head 8, id 2, name
    // 9, zeros and commit id 12: its start sector is 47 bytes in.
    let a = damaged(dir.path(), &[(a_vblk(6) + 47, &0x10_0000u64.to_be_bytes())]);
    let l = scan_paths(&[a]);
    let v = l
        .volumes
        .iter()
        .find(|v| v.name == "ldm_vol_WIN-TEST-Dg0_Volume1")
        .unwrap();
    assert!(!v.is_filesystem());
    let p = problems(&l);
    assert!(
        p.contains(&format!(
            "partition Disk1-01 (LDM VBLK at byte {}) lies at sectors 1048576+32768 of disk0's data area",
            a_vblk(6)
        )),
        "{p}"
    );
}

#[test]
fn a_database_full_of_vblks_ends_at_its_area_and_counts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // Every slot of the 1471-sector config area says VBLK: the walk ends
    // at the area's end, never past it.
    let mut patches = Vec::new();
    let slots = (1471 * 512 - 512) / 128;
    for s in 15..slots {
        patches.push((a_vblk(s), &b"VBLK"[..]));
    }
    let l = scan_paths(&[damaged(dir.path(), &patches)]);
    let p = problems(&l);
    assert!(p.contains("sequence number 0 does not follow"), "{p}");
    assert_eq!(volume_names(&l).len(), 3, "{p}");
}

/// The kernel engine's device-mapper tables for the LDM volumes are the
/// ones ldmtool's `create volume` loads: one `linear` line per partition
/// of a simple or spanned volume, one `striped` line over the columns.
/// Disk N is exposed as device 7:N (no loop device is made).
#[test]
fn ldm_volumes_map_through_dm_as_ldmtool_would() {
    use vmrescue::engine::kernel::{self, dm};
    let l = scan_paths(&all());
    let ex: Vec<Option<dm::Exposure>> = l
        .disks
        .iter()
        .map(|d| {
            Some(dm::Exposure {
                dev: (7, d.id.0 as u32),
                start: 0,
                size: d.size(),
            })
        })
        .collect();
    let dev = |img: &str| {
        let i = (0..l.disks.len())
            .find(|&i| file_name(&l, i) == img)
            .unwrap();
        format!("7:{i}")
    };
    let mut want: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut stripes: std::collections::BTreeMap<String, (u64, u64, Vec<String>)> =
        Default::default();
    let mut pos: std::collections::BTreeMap<String, u64> = Default::default();
    for line in common::report("ldm.ldmtool").lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let name = format!("ldm_vol_{}_{}", f[0], f[1]);
        let n = |i: usize| f[i].parse::<u64>().unwrap() / 512;
        if f[2] == "striped" {
            let e = stripes.entry(name).or_insert((n(3), n(4), Vec::new()));
            e.2.push(format!("{} {}", dev(f[6]), n(7)));
        } else {
            let start = pos.entry(name.clone()).or_insert(0);
            want.entry(name).or_default().push(format!(
                "{start} {} linear {} {}",
                n(8),
                dev(f[6]),
                n(7)
            ));
            *start += n(8);
        }
    }
    for (name, (size, chunk, cols)) in stripes {
        want.insert(
            name,
            vec![format!(
                "0 {size} striped {} {chunk} {}",
                cols.len(),
                cols.join(" ")
            )],
        );
    }
    assert_eq!(want.len(), 4);
    for (name, lines) in want {
        let id = l.find_volume(&name).expect("volume");
        let got: Vec<String> = kernel::plan(&l, id, &ex)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, lines, "{name}");
    }
}

/// A dynamic disk that is a guest's disk inside a host volume (a partition
/// holding the whole GPT dynamic disk): its volumes are named after the
/// holder and read.
#[test]
fn a_dynamic_disk_nested_in_a_host_volume_is_read() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let inner = std::fs::read(common::fixture("ldm-gpt")).unwrap();
    let outer = dir.path().join("host.img");
    let mut f = File::create(&outer).unwrap();
    let mut mbr = [0u8; 512];
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&((inner.len() / 512) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    f.write_all(&mbr).unwrap();
    f.seek(SeekFrom::Start(2048 * 512)).unwrap();
    f.write_all(&inner).unwrap();
    drop(f);
    let l = scan_paths(&[outer]);
    let v = l
        .volumes
        .iter()
        .find(|v| v.name == "p1/ldm_vol_WIN-GPT-Dg0_Volume1")
        .unwrap_or_else(|| {
            panic!(
                "{:?}",
                l.volumes.iter().map(|v| &v.name).collect::<Vec<_>>()
            )
        });
    assert!(v.is_filesystem(), "{:?} {:?}", v.content, v.problems);
    assert_eq!(v.content.kind.name(), "ntfs");
}

/// Disks A and B of the group, each stored in a partition of a host disk
/// (a VM's two disks kept in a host's partitions): read as nested disks,
/// they are one machine's, so the group assembles across them, its spanned
/// and striped volumes whole and named after the first member's holder,
/// their files as ntfs-3g wrote them.
#[test]
fn a_disk_group_across_two_nested_disks_assembles() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host.img");
    let a = std::fs::read(common::fixture("ldm-a")).unwrap();
    let b = std::fs::read(common::fixture("ldm-b")).unwrap();
    let (a_at, b_at) = (2048u64, 2048 + a.len() as u64 / 512);
    let end = b_at + b.len() as u64 / 512;
    // An MBR with two Linux partitions holding the disks' bytes.
    let mut mbr = vec![0u8; 512];
    for (i, (start, len)) in [(a_at, a.len() as u64 / 512), (b_at, b.len() as u64 / 512)]
        .into_iter()
        .enumerate()
    {
        let e = 446 + 16 * i;
        mbr[e + 4] = 0x83;
        mbr[e + 8..e + 12].copy_from_slice(&(start as u32).to_le_bytes());
        mbr[e + 12..e + 16].copy_from_slice(&(len as u32).to_le_bytes());
    }
    mbr[510..512].copy_from_slice(&[0x55, 0xaa]);
    {
        use std::os::unix::fs::FileExt;
        let f = File::create(&host).unwrap();
        f.set_len(end * 512).unwrap();
        f.write_all_at(&mbr, 0).unwrap();
        f.write_all_at(&a, a_at * 512).unwrap();
        f.write_all_at(&b, b_at * 512).unwrap();
    }
    let l = scan_paths(std::slice::from_ref(&host));
    let names = volume_names(&l);
    for v in ["Volume1", "Volume2", "Volume3"] {
        let name = format!("p1/ldm_vol_WIN-TEST-Dg0_{v}");
        let vol = l.volumes.iter().find(|x| x.name == name);
        assert!(
            vol.is_some_and(|x| x.is_filesystem()),
            "{name}: {names:?} {}",
            problems(&l)
        );
    }
    assert!(!problems(&l).contains("is missing"), "{}", problems(&l));
    let sums = common::report("ldm.sums");
    let mut n = 0;
    for line in sums.lines().filter(|l| l.starts_with("WIN-TEST-Dg0 ")) {
        let [group, vol, path, sha] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad line {line}");
        };
        let volume = format!("p1/ldm_vol_{group}_{vol}");
        let file = format!("/{path}");
        let out = common::vmrescue(&["cat", host.to_str().unwrap(), "--volume", &volume, &file]);
        assert!(
            out.status.success(),
            "{volume} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            hex(&sha2::Sha256::digest(&out.stdout)),
            sha,
            "{volume} {path}"
        );
        n += 1;
    }
    assert_eq!(n, 6);
}
