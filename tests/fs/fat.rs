//! FAT12/16/32 read in userspace against what mtools (the format's own
//! tools; this host's kernel has no vfat) reads from the same images
//! (`tests/fixtures/make/fat.sh`): every file's name, size, write time and
//! SHA-256, every directory; then damaged copies: FATs that differ, cut
//! and looping chains, a lying boot sector, and thousands of mutations.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::fs::fat::Fat;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView};
use vmrescue::io::{FileSource, ReadAt};

use crate::common;
use crate::ext_support::{hex, read_all, tolerant_walk};

const ALL: [&str; 4] = ["fat12", "fat16", "fat32", "fat16-4k"];

fn open_path(p: &std::path::Path) -> vmrescue::error::Result<Fat> {
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(p).expect("open image"));
    Fat::open(src)
}

fn open(name: &str) -> Fat {
    let p = common::fixture(name);
    open_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Our rows in the manifest's form: PATH TYPE SIZE MTIME SHA256.
fn rows(fs: &dyn FsView) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![(Vec::new(), fs.root())];
    while let Some((path, dir)) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&e.name);
            let m = fs.metadata(e.node).unwrap();
            let mut row = p.clone();
            if m.file_type == FileType::Directory {
                row.extend_from_slice(b"\td\t\t\t");
                stack.push((p, e.node));
            } else {
                let data = read_all(fs, e.node).unwrap();
                assert_eq!(data.len() as u64, m.size);
                row.extend_from_slice(
                    format!(
                        "\tf\t{}\t{}\t{}",
                        m.size,
                        m.mtime.sec,
                        hex(&Sha256::digest(&data))
                    )
                    .as_bytes(),
                );
            }
            out.push(row);
        }
    }
    out.sort();
    out
}

fn manifest(name: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read(common::fixture_file(&format!("{name}.manifest"))).unwrap();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn show(rows: &[Vec<u8>]) -> String {
    rows.iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_fixture_reads_as_mtools_reads_it() {
    for name in ALL {
        let fs = open(name);
        let ours = rows(&fs);
        let theirs = manifest(name);
        assert_eq!(show(&ours), show(&theirs), "{name}");
        assert!(
            fs.status().problems.is_empty(),
            "{name}: {:?}",
            fs.status().problems
        );
    }
}

#[test]
fn status_label_uuid_and_shape() {
    let fs = open("fat32");
    let s = fs.status();
    assert_eq!(s.fs_type, "vfat");
    assert_eq!(s.label.as_deref(), Some("ESP"));
    assert_eq!(s.uuid.as_deref(), Some("1A2B-3C4D"));
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    assert_eq!(fs.fat_type().name(), "FAT32");
    assert_eq!(open("fat12").fat_type().name(), "FAT12");
    assert_eq!(open("fat16").fat_type().name(), "FAT16");
    assert_eq!(open("fat16-4k").fat_type().name(), "FAT16");
    assert_eq!(open("fat12").status().label.as_deref(), Some("FLOPPY"));
}

#[test]
fn lookups_ignore_case_and_know_short_names() {
    let fs = open("fat32");
    for p in [
        &b"/EFI/BOOT/BOOTX64.EFI"[..],
        b"/efi/boot/bootx64.efi",
        b"/Efi/Debian/GRUB.CFG",
        b"/README.TXT",
        b"/upper.txt",
        b"/many/ENTRY-NUMBER-299.TXT",
    ] {
        assert!(
            resolve(&fs, p, false).is_ok(),
            "{} does not resolve",
            String::from_utf8_lossy(p)
        );
    }
    // The name shown is the one stored: the NT case flags lowercase it.
    let names: Vec<Vec<u8>> = fs
        .read_dir(fs.root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&b"readme.txt".to_vec()));
    assert!(names.contains(&b"UPPER.TXT".to_vec()));
    assert!(names.contains(&"café ünïcode.txt".as_bytes().to_vec()));
}

#[test]
fn modes_links_and_space_as_vfat_shows_them() {
    let fs = open("fat32");
    let ro = resolve(&fs, b"/READONLY.TXT", false).unwrap().node;
    let m = fs.metadata(ro).unwrap();
    assert_eq!(m.mode_string(), "-r-xr-xr-x");
    let rw = resolve(&fs, b"/UPPER.TXT", false).unwrap().node;
    assert_eq!(fs.metadata(rw).unwrap().mode_string(), "-rwxr-xr-x");
    let efi = resolve(&fs, b"/EFI", false).unwrap().node;
    let m = fs.metadata(efi).unwrap();
    assert_eq!(m.mode_string(), "drwxr-xr-x");
    // EFI holds BOOT and debian: 2 + 2.
    assert_eq!(m.nlink, 4);
    assert_eq!(m.size % 512, 0);
    let root = fs.metadata(fs.root()).unwrap();
    assert_eq!(root.ino, 1);
    let space = fs.space(fs.root()).unwrap();
    assert_eq!(space.block_size, 512);
    assert!(space.free_blocks > 0 && space.free_blocks < space.blocks);
    // fsck.fat agrees on the used clusters: from its verbose summary.
    let out = std::process::Command::new("fsck.fat")
        .args(["-n"])
        .arg(common::fixture("fat32"))
        .output()
        .expect("fsck.fat (dosfstools) is installed by the test command");
    let text = String::from_utf8_lossy(&out.stdout);
    // "IMAGE: 330 files, 13000/130000 clusters"
    let files_used: u64 = text
        .lines()
        .last()
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|s| s.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("fsck.fat summary: {text}"));
    assert_eq!(space.blocks - space.free_blocks, files_used, "{text}");
}

/// A writable copy of a fixture, and the offsets the tests damage.
fn copy(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.img"));
    std::fs::copy(common::fixture(name), &p).unwrap();
    p
}

fn le16(b: &[u8], o: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[o], b[o + 1]]))
}

/// (first FAT offset, FAT bytes, data offset, cluster size) of a FAT32 image.
fn geometry(p: &std::path::Path) -> (u64, u64, u64, u64) {
    let b = std::fs::read(p).unwrap();
    let ss = le16(&b, 11);
    let spc = u64::from(b[13]);
    let reserved = le16(&b, 14);
    let fats = u64::from(b[16]);
    let fat_sectors = u64::from(u32::from_le_bytes(b[36..40].try_into().unwrap()));
    let fat = reserved * ss;
    (
        fat,
        fat_sectors * ss,
        fat + fats * fat_sectors * ss,
        spc * ss,
    )
}

#[test]
fn fats_that_differ_are_a_problem_and_the_first_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy("fat32", dir.path());
    let (fat, fat_bytes, _, _) = geometry(&p);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    // A free entry far out in the second FAT marked used.
    f.write_all_at(&[0xFF, 0xFF, 0xFF, 0x0F], fat + fat_bytes + 4000 * 4)
        .unwrap();
    let fs = open_path(&p).unwrap();
    let problems = fs.status().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.to_string().contains("differs from FAT 0 in")),
        "{problems:?}"
    );
    assert_eq!(show(&rows(&fs)), show(&manifest("fat32")));
    // The first FAT's reserved entries broken: the second is read.
    f.write_all_at(&[0x00], fat).unwrap();
    let fs = open_path(&p).unwrap();
    assert!(
        fs.status()
            .problems
            .iter()
            .any(|p| p.to_string().contains("FAT 1 is read")),
        "{:?}",
        fs.status().problems
    );
}

/// The first cluster of `/five-mib.bin`.
fn first_cluster(fs: &Fat, p: &std::path::Path, path: &[u8]) -> u64 {
    let node = resolve(fs, path, false).unwrap().node;
    let b = std::fs::read(p).unwrap();
    let e = &b[node.0 as usize..node.0 as usize + 32];
    (le16(e, 20) << 16) | le16(e, 26)
}

#[test]
fn a_cut_or_looping_chain_is_an_error_naming_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy("fat32", dir.path());
    let (fat, fat_bytes, _, _) = geometry(&p);
    let fs = open_path(&p).unwrap();
    let c = first_cluster(&fs, &p, b"/five-mib.bin");
    drop(fs);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    // Cut after 100 clusters (in both FATs): free.
    for n in 0..2 {
        f.write_all_at(&[0, 0, 0, 0], fat + n * fat_bytes + (c + 100) * 4)
            .unwrap();
    }
    let fs = open_path(&p).unwrap();
    let node = resolve(&fs, b"/five-mib.bin", false).unwrap().node;
    let err = read_all(&fs, node).unwrap_err().to_string();
    assert!(err.contains("is cut at cluster"), "{err}");
    // The rest still reads.
    let up = resolve(&fs, b"/UPPER.TXT", false).unwrap().node;
    assert_eq!(read_all(&fs, up).unwrap(), b"upper\n");
    // A loop: the 10th cluster points back to the first.
    for n in 0..2 {
        f.write_all_at(
            &u32::try_from(c).unwrap().to_le_bytes(),
            fat + n * fat_bytes + (c + 10) * 4,
        )
        .unwrap();
    }
    let fs = open_path(&p).unwrap();
    let node = resolve(&fs, b"/five-mib.bin", false).unwrap().node;
    let err = read_all(&fs, node).unwrap_err().to_string();
    assert!(err.contains("holds") || err.contains("loops"), "{err}");
}

#[test]
fn a_lying_boot_sector_is_refused_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy("fat16", dir.path());
    let orig = std::fs::read(&p).unwrap();
    for (off, val, want) in [
        (11usize, vec![0x00, 0x03], "BPB_BytsPerSec"),
        (13, vec![3], "BPB_SecPerClus"),
        (16, vec![0], "BPB_NumFATs"),
        (14, vec![0, 0], "BPB_RsvdSecCnt"),
        (22, vec![1, 0], "cannot hold"),
        (510, vec![0, 0], "0x55AA"),
    ] {
        let mut b = orig.clone();
        b[off..off + val.len()].copy_from_slice(&val);
        std::fs::write(&p, &b).unwrap();
        let err = match open_path(&p) {
            Ok(_) => panic!("byte {off} changed: opened"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "byte {off}: {err}");
    }
}

#[test]
fn mutated_images_never_panic_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["fat12", "fat32"] {
        let p = copy(name, dir.path());
        let orig = std::fs::read(&p).unwrap();
        let fs = open_path(&p).unwrap();
        // Damage where the structures are: boot sector, FATs, root dir.
        let hot = fs_hot_range(&orig);
        drop(fs);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..400 {
            let mut b = orig[..hot].to_vec();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % hot as u64) as usize;
                b[at] = (seed >> 32) as u8;
            }
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.write_all_at(&b, 0).unwrap();
            if let Ok(fs) = open_path(&p) {
                tolerant_walk(&fs, 5000);
            }
        }
    }
}

/// The bytes up to the end of the root directory's first cluster.
fn fs_hot_range(b: &[u8]) -> usize {
    let ss = le16(b, 11);
    let reserved = le16(b, 14);
    let fats = u64::from(b[16]);
    let root = le16(b, 17) * 32;
    let fat16 = le16(b, 22);
    let fat_sectors = if fat16 != 0 {
        fat16
    } else {
        u64::from(u32::from_le_bytes(b[36..40].try_into().unwrap()))
    };
    let end = reserved * ss + fats * fat_sectors * ss + root + 4096;
    (end as usize).min(b.len())
}
