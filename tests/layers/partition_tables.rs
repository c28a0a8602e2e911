//! Partition tables read by vmrescue against what `sfdisk --json` says about
//! the same images (built by tests/fixtures/make/partitions.sh and demo.sh).

use crate::common;
use crate::partition_support;

use partition_support::{BARE_FIXTURES, TABLE_FIXTURES, layout_of, sfdisk};
use vmrescue::layers::VolumeKind;
use vmrescue::layers::partition::{self, PartType, Scheme};

/// Our table for fixture `name`, read straight from the image.
fn table(name: &str) -> partition::Table {
    let path = common::fixture(name);
    let img = vmrescue::image::open(&path).expect("open");
    partition::read(&*img.source)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: no partition table found"))
}

fn compare_with_sfdisk(name: &str) {
    let want = sfdisk(name);
    let got = table(name);
    assert_eq!(got.scheme.name(), want.label, "{name}: label");
    assert_eq!(got.sector_size, want.sector_size, "{name}: sector size");
    assert_eq!(
        got.id.as_deref().map(str::to_ascii_lowercase),
        Some(want.id.to_ascii_lowercase()),
        "{name}: disk identifier"
    );
    let ss = want.sector_size;
    assert_eq!(
        got.partitions.iter().map(|p| p.number).collect::<Vec<_>>(),
        want.partitions.iter().map(|p| p.number).collect::<Vec<_>>(),
        "{name}: partition numbers"
    );
    for (g, w) in got.partitions.iter().zip(&want.partitions) {
        let n = w.number;
        assert_eq!(g.start, w.start * ss, "{name} p{n}: start");
        assert_eq!(g.size, w.size * ss, "{name} p{n}: size");
        assert_eq!(
            g.part_type.code().to_ascii_lowercase(),
            w.part_type.to_ascii_lowercase(),
            "{name} p{n}: type"
        );
        assert_eq!(g.name, w.name, "{name} p{n}: name");
        assert_eq!(
            g.uuid.as_deref().map(str::to_ascii_lowercase),
            w.uuid.as_deref().map(str::to_ascii_lowercase),
            "{name} p{n}: uuid"
        );
        let sfdisk_bootable = match got.scheme {
            Scheme::Dos => w.bootable,
            Scheme::Gpt => w
                .attrs
                .as_deref()
                .is_some_and(|a| a.contains("LegacyBIOSBootable")),
        };
        assert_eq!(g.bootable, sfdisk_bootable, "{name} p{n}: bootable");
        let extended = matches!(g.part_type, PartType::Mbr(0x05 | 0x0f | 0x85));
        assert_eq!(g.extended, extended, "{name} p{n}: extended");
    }
}

#[test]
fn mbr_with_logical_partitions_matches_sfdisk() {
    compare_with_sfdisk("part-mbr");
}

#[test]
fn mbr_with_lba_extended_partition_matches_sfdisk() {
    compare_with_sfdisk("part-mbr-0f");
    // Logicals are numbered from 5 in chain order, as the kernel does.
    let t = table("part-mbr-0f");
    let logicals: Vec<u32> = t
        .partitions
        .iter()
        .filter(|p| p.number >= 5)
        .map(|p| p.number)
        .collect();
    assert_eq!(logicals, vec![5, 6, 7, 8, 9, 10]);
}

#[test]
fn gpt_on_512_byte_sectors_matches_sfdisk() {
    compare_with_sfdisk("part-gpt");
    let t = table("part-gpt");
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    // Slot 5 is empty: numbers follow the slots, as the kernel's do.
    let numbers: Vec<u32> = t.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 6]);
    assert_eq!(t.partitions[0].part_type.name(), "EFI System");
    assert_eq!(t.partitions[2].part_type.name(), "Linux LVM");
    assert_eq!(t.partitions[4].name.as_deref(), Some("données ☃"));
}

#[test]
fn gpt_on_4096_byte_sectors_matches_sfdisk() {
    compare_with_sfdisk("part-gpt-4k");
    let t = table("part-gpt-4k");
    assert_eq!(t.sector_size, 4096);
    assert!(t.problems.is_empty(), "{:?}", t.problems);
}

#[test]
fn mbr_on_4096_byte_sectors_matches_sfdisk() {
    // Nothing in a dos label says its LBAs count 4096-byte sectors: sfdisk
    // knew from the 4Kn loop device, we infer it from what the entries and
    // the EBR chain point at.
    compare_with_sfdisk("part-mbr-4k");
    let t = table("part-mbr-4k");
    assert_eq!(t.sector_size, 4096);
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    let layout = layout_of(&common::fixture("part-mbr-4k"));
    let kind = |name: &str| {
        let v = layout.volumes.iter().find(|v| v.name == name);
        v.map(|v| v.content.kind.name())
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    assert_eq!(kind("p1"), "ext4");
    assert_eq!(kind("p3"), "vfat");
    assert_eq!(kind("p5"), "ext4");
    assert_eq!(kind("p6"), "swap");
    // The 512-byte disks keep 512-byte sectors.
    for name in ["part-mbr", "part-mbr-0f", "demo"] {
        assert_eq!(table(name).sector_size, 512, "{name}");
    }
}

/// A loop device over `file` with `losetup` options, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(file: &std::path::Path, opts: &[&str]) -> Loop {
        let mut args = vec!["-f", "--show"];
        args.extend_from_slice(opts);
        args.push(file.to_str().unwrap());
        let o = std::process::Command::new("losetup")
            .args(&args)
            .output()
            .expect("run losetup (Debian package mount)");
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Loop(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

#[test]
fn mbr_on_a_4kn_block_device_counts_the_device_sectors() {
    // On a block device the logical sector size is asked of the device, as
    // the kernel and sfdisk do: here the partitions hold nothing that
    // would tell the sector size apart.
    common::require_root("a loop device with 4096-byte sectors");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("blank-4kn.img");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let dev = Loop::attach(&file, &["--sector-size", "4096"]);
    partition_support::write_table(
        std::path::Path::new(&dev.0),
        "label: dos\nstart=256, size=2048, type=83\nstart=2304, size=4096, type=8e\n",
    );
    let img = vmrescue::image::open(std::path::Path::new(&dev.0)).expect("open the loop device");
    let t = partition::read(&*img.source)
        .expect("read")
        .expect("a table");
    assert_eq!(t.sector_size, 4096);
    let got: Vec<(u32, u64, u64)> = t
        .partitions
        .iter()
        .map(|p| (p.number, p.start, p.size))
        .collect();
    assert_eq!(
        got,
        [(1, 256 * 4096, 2048 * 4096), (2, 2304 * 4096, 4096 * 4096)]
    );
    // The same bytes as a file say nothing of 4096-byte sectors: 512 it is,
    // as sfdisk says of the file.
    drop(img);
    drop(dev);
    let img = vmrescue::image::open(&file).expect("open the file");
    let t = partition::read(&*img.source)
        .expect("read")
        .expect("a table");
    assert_eq!(t.sector_size, 512);
    assert_eq!(t.partitions[0].start, 256 * 512);
}

#[test]
fn damaged_primary_gpt_falls_back_to_the_backup_like_sfdisk() {
    // sfdisk also reads the backup: its report is of the backup's table.
    compare_with_sfdisk("part-gpt-damaged");
    let t = table("part-gpt-damaged");
    let first = t
        .problems
        .first()
        .expect("a problem about the primary header")
        .to_string();
    assert!(
        first.contains("primary GPT at byte 512")
            && first.contains("HeaderCRC32")
            && first.contains("backup header at LBA 131071"),
        "{first}"
    );
    // The undamaged disk has the same partitions and no problem.
    let good = table("part-gpt");
    assert_eq!(good.partitions, t.partitions);
}

#[test]
fn grown_disk_with_damaged_primary_gpt_finds_the_backup_where_it_was_written() {
    // A disk image grown after partitioning (qemu-img resize, a Proxmox disk
    // resize) keeps its backup GPT at the old last LBA; the protective MBR
    // entry still ends there. With the primary header damaged too, the
    // backup is found there, not only at the new last LBA.
    let tmp = tempfile::tempdir().unwrap();
    let path = common::fixture_copy("part-gpt", tmp.path());
    let old_size = std::fs::metadata(&path).unwrap().len();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(old_size + (16 << 20)).unwrap();
        f.write_all_at(b"NOT PART", 512).unwrap();
    }
    let img = vmrescue::image::open(&path).expect("open");
    let t = partition::read(&*img.source)
        .expect("read")
        .expect("a table");
    assert_eq!(t.scheme, Scheme::Gpt, "{:?}", t.problems);
    assert_eq!(t.partitions, table("part-gpt").partitions);
    let old_last = old_size / 512 - 1;
    assert!(
        t.problems[0]
            .to_string()
            .contains("primary GPT at byte 512 is damaged")
            && t.problems[0]
                .to_string()
                .contains(&format!("backup header at LBA {old_last}")),
        "{:?}",
        t.problems
    );
    assert!(
        t.problems[1]
            .to_string()
            .contains("grown after it was partitioned"),
        "{:?}",
        t.problems
    );
}

#[test]
fn demo_disk_matches_sfdisk() {
    compare_with_sfdisk("demo");
    let t = table("demo");
    // The story's layout: p1 from sector 63, bootable; p2 a Linux LVM partition.
    assert_eq!(t.partitions[0].start, 63 * 512);
    assert!(t.partitions[0].bootable);
    assert_eq!(t.partitions[1].part_type, PartType::Mbr(0x8e));
    assert!(t.problems.is_empty(), "{:?}", t.problems);
}

#[test]
fn whole_disk_filesystems_and_pvs_have_no_table() {
    for name in BARE_FIXTURES {
        let path = common::fixture(name);
        let img = vmrescue::image::open(&path).expect("open");
        let t = partition::read(&*img.source).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(t.is_none(), "{name}: found a table {t:?}");
        let layout = layout_of(&path);
        assert_eq!(layout.volumes.len().min(1), 1, "{name}: no volume");
        assert!(
            matches!(layout.volumes[0].kind, VolumeKind::WholeDisk { .. }),
            "{name}: first volume is {:?}",
            layout.volumes[0].kind
        );
        assert_eq!(layout.volumes[0].name, "disk0");
        assert_eq!(layout.volumes[0].size(), img.source.size());
    }
}

#[test]
fn every_table_fixture_becomes_volumes_named_like_the_kernel() {
    for name in TABLE_FIXTURES {
        let want = sfdisk(name);
        let layout = layout_of(&common::fixture(name));
        for w in &want.partitions {
            let v = layout
                .volumes
                .iter()
                .find(|v| v.name == format!("p{}", w.number))
                .unwrap_or_else(|| panic!("{name}: no volume p{}", w.number));
            assert_eq!(v.size(), w.size * want.sector_size, "{name} p{}", w.number);
            // The guest's names for it work too.
            let id = layout
                .find_volume(&format!("/dev/vda{}", w.number))
                .expect("find /dev/vdaN");
            assert_eq!(id, v.id);
        }
    }
}
