//! The content probe against `blkid -p -o export` of the same volumes
//! (saved by the fixture scripts as `<name>.blkid`): TYPE, LABEL, UUID.

use crate::common;
use crate::partition_support;

use partition_support::{BARE_FIXTURES, TABLE_FIXTURES, blkid, layout_of};
use vmrescue::layers::{ContentKind, VolumeKind};

/// Compare every volume listed in `<name>.blkid` whose name passes `which`.
fn compare(name: &str, which: &dyn Fn(&str) -> bool) -> usize {
    let layout = layout_of(&common::fixture(name));
    let mut checked = 0;
    for (vol, tags) in blkid(name) {
        if !which(&vol) {
            continue;
        }
        let v = layout
            .volumes
            .iter()
            .find(|v| v.name == vol)
            .unwrap_or_else(|| {
                panic!(
                    "{name}: blkid probed {vol} but vmrescue has no such volume ({})",
                    layout.volume_choices()
                )
            });
        let c = &v.content;
        match tags.get("TYPE") {
            Some(t) => assert_eq!(c.kind.name(), t, "{name} {vol}: type ({c:?})"),
            None if tags.contains_key("PTTYPE") => {
                // blkid sees the EBR of an extended partition as a nested table.
                assert!(
                    matches!(&v.kind, VolumeKind::Partition { entry, .. } if entry.extended),
                    "{name} {vol}: blkid found a nested table, we found {c:?}"
                );
            }
            None => assert!(
                matches!(c.kind, ContentKind::Zeros | ContentKind::Unknown),
                "{name} {vol}: blkid found nothing, vmrescue found {c:?}"
            ),
        }
        same_label_and_uuid(&format!("{name} {vol}"), c, &tags);
        if matches!(c.kind, ContentKind::Vfat | ContentKind::LvmPv) {
            assert_eq!(
                c.version.as_deref(),
                tags.get("VERSION").map(String::as_str),
                "{name} {vol}: version"
            );
        }
        checked += 1;
    }
    checked
}

/// LABEL and UUID as blkid's `tags` give them (absent when blkid has none).
fn same_label_and_uuid(
    what: &str,
    c: &vmrescue::layers::Content,
    tags: &std::collections::BTreeMap<String, String>,
) {
    assert_eq!(
        c.label.as_deref(),
        tags.get("LABEL").map(String::as_str),
        "{what}: label"
    );
    assert_eq!(
        c.uuid.as_deref(),
        tags.get("UUID").map(String::as_str),
        "{what}: uuid"
    );
}

fn is_lv(vol: &str) -> bool {
    vol.contains('/')
}

#[test]
fn probe_matches_blkid_on_partitions_and_whole_disks() {
    let mut checked = 0;
    for name in TABLE_FIXTURES.iter().chain(BARE_FIXTURES) {
        checked += compare(name, &|v| !is_lv(v));
    }
    // 7 + 8 + 5 + 5 + 3 + 5 + 2 partitions, 6 whole disks.
    assert_eq!(checked, 41);
}

#[test]
fn probe_matches_blkid_on_logical_volumes() {
    let mut checked = 0;
    for name in ["demo", "bare-pv"] {
        checked += compare(name, &is_lv);
    }
    assert_eq!(checked, 5, "vg_ta: root, home, swap; vg_bare: data, more");
}

#[test]
fn ext2_ext3_ext4_are_told_apart_as_blkid_does() {
    let layout = layout_of(&common::fixture("part-mbr-0f"));
    let kind = |n: &str| layout.volume(layout.find_volume(n).expect(n)).content.kind;
    assert_eq!(kind("p5"), ContentKind::Ext2);
    assert_eq!(kind("p6"), ContentKind::Ext3);
    assert_eq!(kind("p7"), ContentKind::Ext4);
}

/// Images made at test time by real tools (and a few bytes patched the way
/// damage or other tools leave them), each compared with what
/// `blkid -p -o export` says of it: TYPE, LABEL and UUID.
mod made_by_tools {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::common;
    use super::partition_support::{layout_of, run_tool as run};

    /// Fails, saying why, when `tool` cannot be run: the test command
    /// installs it (TEST_PACKAGES in scripts/lib.sh); nothing is skipped.
    fn need(tool: &str) {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{tool} is not installed: scripts/test installs it (TEST_PACKAGES in scripts/lib.sh)"
        );
    }

    fn file(dir: &Path, name: &str, size: u64) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(size))
            .expect("create image");
        p
    }

    /// TYPE, LABEL and UUID as blkid gives them, raw (`-o value`: the
    /// export format escapes bytes beyond ASCII).
    fn blkid(path: &Path) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        for tag in ["TYPE", "LABEL", "UUID"] {
            let out = Command::new("blkid")
                .args(["-p", "-o", "value", "-s", tag])
                .arg(path)
                .output()
                .expect("run blkid");
            let v = String::from_utf8_lossy(&out.stdout)
                .trim_end_matches('\n')
                .to_string();
            if !v.is_empty() {
                tags.insert(tag.to_string(), v);
            }
        }
        tags
    }

    /// TYPE, LABEL and UUID of the whole-disk volume agree with blkid's.
    fn agree(path: &Path) {
        let tags = blkid(path);
        let layout = layout_of(path);
        let c = &layout.volumes[0].content;
        let what = path.file_name().map(|n| n.to_string_lossy().into_owned());
        assert_eq!(
            Some(c.kind.name()),
            tags.get("TYPE").map(String::as_str),
            "{what:?} type ({c:?})"
        );
        super::same_label_and_uuid(&format!("{what:?}"), c, &tags);
    }

    fn patch(path: &Path, at: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open");
        f.write_all_at(bytes, at).expect("patch");
    }

    /// Where the FAT12/16 root directory starts, from the boot sector.
    fn fat16_root(path: &Path) -> u64 {
        let b = std::fs::read(path).expect("read");
        let u16_at = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
        (u16_at(14) + u16_at(22) * u64::from(b[16])) * u16_at(11)
    }

    #[test]
    fn fat_labels_come_from_the_root_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (name, args) in [
            ("fat12.img", vec!["-F", "12", "-n", "F12LBL"]),
            ("fat16.img", vec!["-F", "16", "-n", "F16LBL"]),
            ("fat32.img", vec!["-F", "32", "-n", "F32LBL"]),
            ("nolabel.img", vec![]),
        ] {
            let p = file(d, name, 40 << 20);
            run(Command::new("mkfs.vfat").args(&args).arg(&p));
            agree(&p);
        }
        need("mlabel");
        let p = file(d, "mlabel.img", 16 << 20);
        run(Command::new("mkfs.vfat").arg(&p));
        run(Command::new("mlabel").arg("-i").arg(&p).arg("::RELABELED"));
        agree(&p);
        // The boot sector says "NO NAME", the root directory has the label.
        let p = file(d, "rootonly.img", 16 << 20);
        run(Command::new("mkfs.vfat")
            .args(["-F", "16", "-n", "ROOTLBL"])
            .arg(&p));
        patch(&p, 43, b"NO NAME    ");
        agree(&p);
        // The boot sector has a label, the root directory's entry is deleted.
        let p = file(d, "bootonly.img", 16 << 20);
        run(Command::new("mkfs.vfat")
            .args(["-F", "16", "-n", "BOOTLBL"])
            .arg(&p));
        let root = fat16_root(&p);
        patch(&p, root, &[0xe5]);
        agree(&p);
        assert_eq!(layout_of(&p).volumes[0].content.label, None);
        // No extended boot signature: no serial number either.
        let p = file(d, "nosig.img", 16 << 20);
        run(Command::new("mkfs.vfat").args(["-F", "16"]).arg(&p));
        patch(&p, 38, &[0]);
        agree(&p);
        assert_eq!(layout_of(&p).volumes[0].content.uuid, None);
    }

    #[test]
    fn exfat_label_from_its_root_directory() {
        need("mkfs.exfat");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = file(dir.path(), "exfat.img", 16 << 20);
        run(Command::new("mkfs.exfat").args(["-L", "ExData"]).arg(&p));
        agree(&p);
        let p = file(dir.path(), "exfat-nolabel.img", 16 << 20);
        run(Command::new("mkfs.exfat").arg(&p));
        agree(&p);
    }

    #[test]
    fn ntfs_label_from_the_volume_file() {
        need("mkntfs");
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, label) in [("ntfs.img", Some("Données")), ("ntfs-nolabel.img", None)] {
            let p = file(dir.path(), name, 16 << 20);
            let mut cmd = Command::new("mkntfs");
            cmd.args(["-q", "-F", "-Q"]);
            if let Some(l) = label {
                cmd.args(["-L", l]);
            }
            run(cmd.arg(&p));
            agree(&p);
        }
    }

    #[test]
    fn iso9660_uuid_is_its_date_and_joliet_names_win() {
        need("xorriso");
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).expect("mkdir");
        std::fs::write(tree.join("a.txt"), b"a").expect("write");
        for (name, extra) in [
            ("plain.iso", vec!["-V", "PLAINISO"]),
            ("joliet.iso", vec!["-J", "-V", "Été 2024"]),
        ] {
            let p = dir.path().join(name);
            run(Command::new("xorriso")
                .args(["-as", "mkisofs", "-quiet"])
                .args(&extra)
                .arg("-o")
                .arg(&p)
                .arg(&tree));
            agree(&p);
        }
    }

    #[test]
    fn md_raid_superblocks_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A RAID1 member with 0.90 metadata over an ext4 filesystem, as old
        // installers made /boot: written by hand following the format
        // (creating it with the real tool needs the kernel's md driver).
        let size: u64 = (32 << 20) + 12345;
        let p = file(dir.path(), "md090.img", size);
        run(Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4"])
            .arg(&p)
            .arg("16M"));
        let at = (size & !0xffff) - 0x10000;
        let mut sb = vec![0u8; 4096];
        let mut word = |i: usize, v: u32| sb[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        word(0, 0xa92b_4efc);
        word(1, 0);
        word(2, 90);
        word(3, 0);
        word(5, 0x1122_3344);
        word(7, 1); // level: raid1
        word(8, 16384); // the array's size in KiB
        word(13, 0x5566_7788);
        word(14, 0x99aa_bbcc);
        word(15, 0xddee_ff00);
        patch(&p, at, &sb);
        agree(&p);
        let c = layout_of(&p).volumes[0].content.clone();
        assert_eq!(c.version.as_deref(), Some("0.90.0"));
        assert!(
            c.detail.as_deref().is_some_and(|d| d.contains("ext4")),
            "{c:?}"
        );
        // Metadata 1.0: 8 KiB before the 4 KiB-aligned end.
        let p = file(dir.path(), "md10.img", size);
        let at = (size & !0xfff) - 0x2000;
        let mut sb = vec![0u8; 4096];
        sb[..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
        sb[4..8].copy_from_slice(&1u32.to_le_bytes());
        sb[16..32].copy_from_slice(&[0xab; 16]);
        sb[32..41].copy_from_slice(b"host:boot");
        sb[144..152].copy_from_slice(&(at >> 9).to_le_bytes()); // super_offset
        sb[220..224].copy_from_slice(&2u32.to_le_bytes()); // max_dev
        let sum: u64 = sb[..260]
            .chunks_exact(4)
            .map(|w| u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .sum();
        let csum = ((sum >> 32) + (sum & 0xffff_ffff)) as u32;
        sb[216..220].copy_from_slice(&csum.to_le_bytes());
        patch(&p, at, &sb);
        agree(&p);
        let _ = common::root();
    }
}
