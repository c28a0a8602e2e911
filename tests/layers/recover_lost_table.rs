//! Disks whose partition table was zeroed: the search for lost volumes must
//! find each partition where the partitioner had put it, with the same size,
//! and the files in them must read as before. Images are built at test time
//! with real tools (sfdisk, mke2fs, mkfs.xfs, mkswap); the LVM case uses the
//! demo fixture.

use crate::common;
use crate::partition_support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use partition_support::{layout_of, run_tool as run, write_table};
use vmrescue::layers::partition::PartType;
use vmrescue::layers::{Layout, VolumeKind};

/// Make a filesystem of `kind` in a new file of `bytes` bytes and copy it
/// into `image` at byte `at` (sparse, so big empty filesystems cost nothing).
fn fs_into(image: &Path, at: u64, bytes: u64, kind: &str, label: &str, tree: &Path) {
    let f = image.with_extension(format!("{at}.fs"));
    let file = std::fs::File::create(&f).expect("create fs file");
    file.set_len(bytes).expect("size fs file");
    drop(file);
    match kind {
        "xfs" => run(Command::new("mkfs.xfs")
            // Below mkfs.xfs's 300 MB floor, as its own test suite may.
            .env("TEST_DIR", "1")
            .env("TEST_DEV", "1")
            .env("QA_CHECK_FS", "1")
            .args(["-q", "-f", "-L", label])
            .arg(&f)),
        "swap" => run(Command::new("mkswap").args(["-q", "-L", label]).arg(&f)),
        _ => run(Command::new("mke2fs")
            .env("E2FSPROGS_FAKE_TIME", "1700000000")
            .args(["-q", "-F", "-t", kind, "-b", "1024", "-L", label, "-d"])
            .arg(tree)
            .arg(&f)),
    }
    run(Command::new("dd")
        .arg(format!("if={}", f.display()))
        .arg(format!("of={}", image.display()))
        .args([
            "bs=1M",
            "oflag=seek_bytes",
            "conv=notrunc,sparse",
            "status=none",
        ])
        .arg(format!("seek={at}")));
    std::fs::remove_file(&f).expect("remove fs file");
}

/// (start, size, fstype) of the volumes that hold something, in disk order.
fn volumes(layout: &Layout, recovered: bool) -> Vec<(u64, u64, String)> {
    let mut v: Vec<(u64, u64, String)> = layout
        .volumes
        .iter()
        .filter_map(|v| match &v.kind {
            VolumeKind::Partition { entry, .. }
                if !entry.extended
                    && matches!(entry.part_type, PartType::Recovered(_)) == recovered =>
            {
                Some((entry.start, entry.size, v.content.kind.name().to_string()))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn zero_sector0(image: &Path) {
    let f = OpenOptions::new()
        .write(true)
        .open(image)
        .expect("open image");
    f.write_all_at(&[0u8; 512], 0).expect("zero sector 0");
}

fn cat(image: &Path, volume: &str, path: &str) -> Vec<u8> {
    let out = common::vmrescue(&[
        "cat",
        image.to_str().expect("utf-8 path"),
        "--volume",
        volume,
        path,
    ]);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "cat {volume}:{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn zeroed_mbr_with_logical_partitions_is_found_by_searching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).expect("mkdir");
    std::fs::write(tree.join("etc/hostname"), b"rescued\n").expect("write");
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(tree.join("big.bin"), &big).expect("write");
    let image = dir.path().join("disk.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(96 << 20))
        .expect("create image");
    // A DOS-era first partition at sector 63 (its filesystem, in 1 KiB
    // blocks, leaves the partition's last sector unused), an extended
    // partition with two logicals, then XFS.
    write_table(
        &image,
        "label: dos\n\
         start=63, size=16321, type=83\n\
         start=16384, size=65536, type=5\n\
         start=98304, size=69632, type=83\n\
         start=18432, size=16384, type=83\n\
         start=36864, size=16384, type=82\n",
    );
    let before = layout_of(&image);
    let parts = volumes(&before, false);
    assert_eq!(parts.len(), 4, "{parts:?}");
    let start = |n: usize| parts[n].0;
    let size = |n: usize| parts[n].1;
    fs_into(&image, start(0), size(0) & !1023, "ext4", "first", &tree);
    fs_into(&image, start(1), size(1), "ext2", "logical5", &tree);
    fs_into(&image, start(2), size(2), "swap", "swap6", &tree);
    fs_into(&image, start(3), size(3), "xfs", "last", &tree);
    let before = layout_of(&image);
    let parts = volumes(&before, false);
    let kinds: Vec<&str> = parts.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(kinds, ["ext4", "ext2", "swap", "xfs"]);
    let p1 = cat(&image, "p1", "/etc/hostname");
    assert_eq!(p1, b"rescued\n");

    zero_sector0(&image);
    let after = layout_of(&image);
    assert!(after.disks[0].table.is_none());
    assert_eq!(
        volumes(&after, true),
        parts,
        "search vs the table sfdisk wrote"
    );
    let problems = vmrescue::problem::texts(&after.all_problems()).join("\n");
    assert!(problems.contains("no partition table"), "{problems}");
    assert!(!problems.contains("not a disk image"), "{problems}");
    // The files read the same.
    assert_eq!(cat(&image, "r1", "/etc/hostname"), b"rescued\n");
    assert_eq!(cat(&image, "r1", "/big.bin"), big);
    assert_eq!(cat(&image, "r2", "/big.bin"), big);
    // `layers` says what it did and exits 1 (the table is gone).
    let out = common::vmrescue(&["layers", image.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("recovered: ext4 at sector 63"), "{text}");
    assert!(text.contains("recovered: xfs at 48 MiB"), "{text}");
}

#[test]
fn zeroed_mbr_of_the_demo_disk_finds_boot_and_the_lvm_pv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = common::fixture_copy("demo", dir.path());
    let before = layout_of(&image);
    let parts = volumes(&before, false);
    let sf = partition_support::sfdisk("demo");
    let from_sfdisk: Vec<(u64, u64)> = sf
        .partitions
        .iter()
        .map(|p| (p.start * 512, p.size * 512))
        .collect();
    let passwd = cat(&image, "vg_ta/lv_root", "/etc/passwd");
    assert!(!passwd.is_empty());

    zero_sector0(&image);
    let after = layout_of(&image);
    let found = volumes(&after, true);
    let got: Vec<(u64, u64)> = found.iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(got, from_sfdisk);
    let kinds: Vec<String> = found.iter().map(|f| f.2.clone()).collect();
    let want: Vec<String> = parts.iter().map(|p| p.2.clone()).collect();
    assert_eq!(kinds, want);
    // A found volume has no kernel name (the kernel sees no partition).
    let r1 = after.find_volume("r1").expect("r1");
    assert!(after.aliases(r1).is_empty(), "{:?}", after.aliases(r1));
    assert!(after.find_volume("/dev/sda1").is_err());
    // The VG on the recovered PV opens as before.
    assert_eq!(after.groups.len(), 1);
    assert_eq!(cat(&image, "vg_ta/lv_root", "/etc/passwd"), passwd);
}

#[test]
fn scan_flag_searches_a_disk_that_has_a_table() {
    let image = common::fixture("demo");
    let out = common::vmrescue(&["layers", "--scan", image.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("none found besides the partition table's"),
        "{text}"
    );
}

#[test]
fn gpt_without_protective_mbr_and_primary_opens_from_its_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = common::fixture_copy("part-gpt", dir.path());
    let before = volumes(&layout_of(&image), false);
    let f = OpenOptions::new().write(true).open(&image).expect("open");
    f.write_all_at(&[0u8; 34 * 512], 0).expect("zero");
    let after = layout_of(&image);
    assert_eq!(volumes(&after, false), before);
    let problems = vmrescue::problem::texts(&after.all_problems()).join("\n");
    assert!(problems.contains("using the backup header"), "{problems}");
    assert!(problems.contains("protective MBR is missing"), "{problems}");
}

#[test]
fn gpt_with_both_headers_gone_is_searched_behind_its_protective_mbr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = common::fixture_copy("part-gpt", dir.path());
    let before = volumes(&layout_of(&image), false);
    let size = std::fs::metadata(&image).expect("stat").len();
    let f = OpenOptions::new().write(true).open(&image).expect("open");
    f.write_all_at(&[0u8; 33 * 512], 512).expect("zero primary");
    f.write_all_at(&[0u8; 33 * 512], size - 33 * 512)
        .expect("zero backup");
    let after = layout_of(&image);
    let problems = vmrescue::problem::texts(&after.all_problems()).join("\n");
    assert!(
        problems.contains("only the protective MBR is left"),
        "{problems}"
    );
    // Every partition that holds something is found where the GPT had it
    // (the empty PV partition cannot be).
    let found = volumes(&after, true);
    let want: Vec<_> = before
        .into_iter()
        .filter(|p| !matches!(p.2.as_str(), "empty" | "unknown"))
        .collect();
    assert_eq!(found, want);
}

/// The first MiB zeroed (`dd bs=1M count=1`): the table and the first
/// filesystem's superblock are gone; that filesystem is found by its backup
/// superblock where a partition most likely started (sector 63).
#[test]
fn a_filesystem_whose_superblock_is_gone_too_is_found_by_its_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = common::fixture_copy("demo", dir.path());
    let want: Vec<(u64, u64, String)> = volumes(&layout_of(&image), false);
    let f = OpenOptions::new().write(true).open(&image).expect("open");
    f.write_all_at(&vec![0u8; 1 << 20], 0).expect("zero 1 MiB");
    let after = layout_of(&image);
    assert_eq!(volumes(&after, true), want);
    let r1 = after.volume(after.find_volume("r1").expect("r1"));
    let detail = r1.content.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("backup superblock"), "{detail}");
}
