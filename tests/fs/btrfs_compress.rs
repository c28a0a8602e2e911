//! btrfs extent decompression and checksums against images the kernel
//! wrote (`tests/fixtures/make/btrfs-compress.sh`): every compressed extent
//! of each image decompresses to the file contents the script wrote, and
//! every superblock's checksum is what mkfs.btrfs stored.

use std::io::{Read, Seek, SeekFrom};

use vmrescue::fs::btrfs::compress::{Compression, decompress};
use vmrescue::fs::btrfs::csum::{CsumType, checksum};

use crate::common;

/// The lines the script writes: "N the quick brown fox N*N%9973".
fn lines(n: u32) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("{i} the quick brown fox {}\n", (i * i) % 9973).into_bytes())
        .collect()
}

/// The contents of a file of the images, by name.
fn contents(file: &str) -> Vec<u8> {
    match file {
        "text" => lines(30000),
        "small" => lines(30000)[..3000].to_vec(),
        "zeros" => vec![0; 262144],
        "tail" => {
            let mut v = lines(5000);
            v.extend_from_slice(&lines(30000)[..100]);
            v
        }
        other => panic!("unknown file {other} in the manifest"),
    }
}

fn read_at(img: &std::path::Path, at: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(img).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn check_image(name: &str, kind: Compression) {
    let img = common::fixture(name);
    let manifest = common::report(&format!("{name}.extents"));
    let mut seen = (0, 0);
    for line in manifest.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [file, off, phys, disk, ram, comp, ty] = f[..] else {
            panic!("bad manifest line {line:?}");
        };
        let (off, phys): (usize, u64) = (off.parse().unwrap(), phys.parse().unwrap());
        let (disk, ram): (usize, usize) = (disk.parse().unwrap(), ram.parse().unwrap());
        let comp = Compression::from_disk(comp.parse().unwrap()).unwrap();
        assert_eq!(comp, kind, "{name}: {line}");
        let data = read_at(&img, phys, disk);
        let out =
            decompress(comp, &data, ram, 4096).unwrap_or_else(|e| panic!("{name}: {line}: {e}"));
        assert_eq!(out.len(), ram);
        let want = contents(file);
        let end = (off + ram).min(want.len());
        assert!(
            out[..end - off] == want[off..end],
            "{name}: {line}: decompressed bytes differ from the file"
        );
        // Past the end of the file (the rest of the last sector): zeros.
        assert!(out[end - off..].iter().all(|&b| b == 0), "{name}: {line}");
        match ty {
            "inline" => seen.0 += 1,
            _ => seen.1 += 1,
        }
    }
    assert_eq!(seen.0, 1, "{name}: one inline extent (small)");
    assert!(seen.1 >= 10, "{name}: {} regular extents", seen.1);
}

#[test]
fn zlib_extents_decompress_to_the_files() {
    check_image("btrfs-compress-zlib", Compression::Zlib);
}

#[test]
fn lzo_extents_decompress_to_the_files() {
    check_image("btrfs-compress-lzo", Compression::Lzo);
}

#[test]
fn zstd_extents_decompress_to_the_files() {
    check_image("btrfs-compress-zstd", Compression::Zstd);
}

/// The superblock at 64 KiB: checksum over bytes 32..4096, stored in its first bytes.
#[test]
fn superblock_checksums_match_mkfs() {
    for (name, kind) in [
        ("btrfs-compress-zlib", CsumType::Crc32c),
        ("btrfs-compress-lzo", CsumType::Xxhash64),
        ("btrfs-compress-zstd", CsumType::Sha256),
        ("btrfs-csum-blake2", CsumType::Blake2b),
        ("bare-btrfs", CsumType::Crc32c),
    ] {
        let sb = read_at(&common::fixture(name), 65536, 4096);
        assert_eq!(&sb[0x40..0x48], b"_BHRfS_M", "{name}: magic");
        let csum_type = u16::from_le_bytes([sb[0xc4], sb[0xc5]]);
        assert_eq!(CsumType::from_disk(csum_type), Some(kind), "{name}");
        let sum = checksum(kind, &sb[0x20..]);
        assert_eq!(sum.len(), kind.size());
        assert_eq!(
            sum[..],
            sb[..kind.size()],
            "{name}: {} checksum",
            kind.name()
        );
        assert!(sb[kind.size()..0x20].iter().all(|&b| b == 0), "{name}");
        // One flipped bit: another checksum.
        let mut bad = sb[0x20..].to_vec();
        bad[100] ^= 4;
        assert_ne!(checksum(kind, &bad)[..], sb[..kind.size()], "{name}");
    }
}

/// Damage to a real extent: truncated, flipped or claiming too much is an
/// error or exact-length output, never a panic or a longer result.
#[test]
fn damaged_real_extents() {
    for (name, kind) in [
        ("btrfs-compress-zlib", Compression::Zlib),
        ("btrfs-compress-lzo", Compression::Lzo),
        ("btrfs-compress-zstd", Compression::Zstd),
    ] {
        let img = common::fixture(name);
        let manifest = common::report(&format!("{name}.extents"));
        let line = manifest.lines().next().unwrap();
        let f: Vec<&str> = line.split(' ').collect();
        let data = read_at(&img, f[2].parse().unwrap(), f[3].parse().unwrap());
        let ram: usize = f[4].parse().unwrap();
        // Cut in half: the stream ends early.
        let e = decompress(kind, &data[..data.len() / 2], ram, 4096);
        assert!(e.is_err(), "{name}: truncated extent decompressed");
        // Larger than btrfs ever makes.
        assert!(decompress(kind, &data, 1 << 20, 4096).is_err(), "{name}");
        for i in (0..data.len() * 8).step_by(997) {
            let mut d = data.clone();
            d[i / 8] ^= 1 << (i % 8);
            if let Ok(out) = decompress(kind, &d, ram, 4096) {
                assert_eq!(out.len(), ram, "{name}: bit {i}");
            }
        }
    }
}
