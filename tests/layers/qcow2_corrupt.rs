//! Damaged and hostile qcow2 images: every one gives an error that names
//! the structure and its byte position, never a panic, a hang or a huge
//! allocation. The images are copies of `qcow2-tiny` (1 MiB, 4 KiB clusters,
//! a data cluster, a compressed cluster, a zero cluster and a snapshot, made
//! by `tests/fixtures/make/qcow2.sh`) with fields patched.

use crate::common;

use std::path::{Path, PathBuf};

use vmrescue::image;
use vmrescue::io::ReadAt;

struct Copy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Copy {
    fn of(name: &str) -> Copy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.qcow2");
        let bytes = std::fs::read(common::fixture(name)).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        Copy {
            _dir: dir,
            path,
            bytes,
        }
    }
    fn dir(&self) -> &Path {
        self._dir.path()
    }
    fn u32(&self, off: usize) -> u32 {
        u32::from_be_bytes(self.bytes[off..off + 4].try_into().unwrap())
    }
    fn u64(&self, off: usize) -> u64 {
        u64::from_be_bytes(self.bytes[off..off + 8].try_into().unwrap())
    }
    fn set_u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.bytes[off..off + 4].copy_from_slice(&v.to_be_bytes());
        self.save()
    }
    fn set_u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.bytes[off..off + 8].copy_from_slice(&v.to_be_bytes());
        self.save()
    }
    fn save(&mut self) -> &mut Self {
        std::fs::write(&self.path, &self.bytes).unwrap();
        self
    }
    fn l1_table_offset(&self) -> usize {
        self.u64(40) as usize
    }
    /// Byte position of the active L2 table entry for guest cluster `index` (first L2 table).
    fn l2_entry_pos(&self) -> usize {
        let l1 = self.u64(self.l1_table_offset());
        (l1 & 0x00ff_ffff_ffff_fe00) as usize
    }
    /// Open and read every byte; the error text if anything fails.
    fn result(&self) -> Result<(), String> {
        read_everything(&self.path)
    }
    fn error(&self) -> String {
        match self.result() {
            Ok(()) => panic!("{}: expected an error", self.path.display()),
            Err(e) => e,
        }
    }
}

fn read_everything(path: &Path) -> Result<(), String> {
    let img = image::open(path).map_err(|e| e.to_string())?;
    let size = img.source.size();
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(buf.len() as u64) as usize;
        img.source
            .read_exact_at(pos, &mut buf[..n])
            .map_err(|e| e.to_string())?;
        pos += n as u64;
    }
    Ok(())
}

/// The error from opening and reading `path` as of snapshot `snap`.
fn snapshot_error(path: &Path, snap: &str) -> String {
    let img = match image::open_with(
        path,
        &image::OpenOptions {
            snapshot: Some(snap.into()),
            ..Default::default()
        },
    ) {
        Ok(img) => img,
        Err(e) => return e.to_string(),
    };
    let mut buf = vec![0u8; img.source.size() as usize];
    match img.source.read_exact_at(0, &mut buf) {
        Ok(()) => panic!("{}: snapshot {snap} should fail", path.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_has(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "error {e:?} lacks {p:?}");
    }
}

#[test]
fn the_pristine_copy_reads() {
    Copy::of("qcow2-tiny").result().unwrap();
}

#[test]
fn bad_header_fields() {
    // Without the magic it is no qcow2 at all: a raw image, readable as such.
    let mut c = Copy::of("qcow2-tiny");
    c.set_u32(0, 0x5146_49fa).result().unwrap();
    assert_eq!(
        image::open(&c.path).unwrap().format,
        image::ImageFormat::Raw
    );
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u32(4, 4).error(), &["qcow2 version 4"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(
        &c.set_u32(20, 30).error(),
        &["qcow2 header at byte 20", "cluster_bits 30"],
    );
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u32(20, 8).error(), &["cluster_bits 8"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u32(100, 4096 * 4).error(), &["header_length"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u32(96, 7).error(), &["refcount_order 7"]);
}

#[test]
fn huge_sizes_are_refused_without_allocating() {
    let mut c = Copy::of("qcow2-tiny");
    assert_has(
        &c.set_u64(24, 1 << 62).error(),
        &["active L1 table at byte", "cannot map a virtual size"],
    );
    let mut c = Copy::of("qcow2-tiny");
    c.set_u64(24, u64::MAX);
    assert_has(&c.error(), &["cannot map"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(
        &c.set_u32(36, u32::MAX).error(),
        &["larger than QEMU's limit"],
    );
    // An L1 table of the largest allowed size but a file far too small: the
    // entries in the file are read (as from a file cut short: here the
    // clusters after the table, which do not hold L2 tables), the others are
    // errors, and nothing is allocated for them.
    let mut c = Copy::of("qcow2-tiny");
    c.set_u32(36, 4 << 20).set_u64(24, 1 << 40);
    assert_has(&c.error(), &["qcow2 L1 table"]);
    let img = image::open(&c.path).unwrap();
    assert_has(&img.problems.join("\n"), &["the end of the L1 table"]);
    // A damaged snapshot table: the current state still reads, the damage
    // is listed, and asking for a snapshot fails.
    let mut c = Copy::of("qcow2-tiny");
    c.set_u32(60, 1_000_000).result().unwrap();
    let details = image::open(&c.path).unwrap().details.join(", ");
    assert_has(&details, &["snapshots unreadable", "nb_snapshots 1000000"]);
    assert_has(&snapshot_error(&c.path, "1"), &["nb_snapshots 1000000"]);
    let mut c = Copy::of("qcow2-tiny");
    c.set_u32(60, 65536).result().unwrap();
    assert_has(&snapshot_error(&c.path, "s1"), &["snapshot table"]);
}

#[test]
fn offsets_past_the_end_of_the_file() {
    let mut c = Copy::of("qcow2-tiny");
    let len = c.bytes.len() as u64;
    assert_has(
        &c.set_u64(40, len + 4096 * 10).error(),
        &["active L1 table at byte", "past the end of the file"],
    );
    let mut c = Copy::of("qcow2-tiny");
    let l1 = c.l1_table_offset() as u64;
    assert_has(&c.set_u64(40, l1 + 8).error(), &["not a cluster boundary"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(
        &c.set_u64(40, 0).error(),
        &["not a cluster boundary after the header"],
    );
    // An L1 entry pointing past the end.
    let mut c = Copy::of("qcow2-tiny");
    let l1 = c.l1_table_offset();
    let e = c.set_u64(l1, (1 << 63) | (len + 8192)).error();
    assert_has(
        &e,
        &[
            &format!("L1 table entry at byte {l1}"),
            "past the end of the file",
        ],
    );
    // An L2 entry (guest cluster 1) pointing past the end.
    let mut c = Copy::of("qcow2-tiny");
    let l2 = c.l2_entry_pos();
    let e = c.set_u64(l2 + 8, (1 << 63) | (len + 4096 * 3)).error();
    assert_has(
        &e,
        &[
            &format!("L2 table entry at byte {}", l2 + 8),
            "data cluster at byte",
            "past the end of the file",
        ],
    );
    // A compressed cluster past the end.
    let mut c = Copy::of("qcow2-tiny");
    let e = c.set_u64(l2 + 16 * 8, (1 << 62) | (len + 100)).error();
    assert_has(&e, &["compressed cluster at byte", "outside the file"]);
    // The snapshot table past the end.
    let mut c = Copy::of("qcow2-tiny");
    c.set_u64(64, len + 4096).result().unwrap();
    assert_has(&snapshot_error(&c.path, "1"), &["snapshot table entry"]);
    // A snapshot's L1 table past the end.
    let mut c = Copy::of("qcow2-tiny");
    let snap = c.u64(64) as usize;
    c.set_u64(snap, len + 4096);
    assert_has(
        &snapshot_error(&c.path, "s1"),
        &["L1 table of snapshot 1 \"s1\"", "past the end of the file"],
    );
    c.result().unwrap();
}

#[test]
fn misaligned_and_overlapping_tables() {
    let mut c = Copy::of("qcow2-tiny");
    let l1 = c.l1_table_offset();
    let e = c.set_u64(l1, 0x5000 + 512).error();
    assert_has(&e, &["L2 table offset 20992 is not a cluster boundary"]);
    // The L2 table is the L1 table itself.
    let mut c = Copy::of("qcow2-tiny");
    let e = c.set_u64(l1, l1 as u64).error();
    assert_has(&e, &["overlaps the L1 table"]);
    // A data cluster that is not a cluster boundary.
    let mut c = Copy::of("qcow2-tiny");
    let l2 = c.l2_entry_pos();
    let e = c.set_u64(l2, 0x5000 + 1024).error();
    assert_has(
        &e,
        &[
            &format!("L2 table entry at byte {l2}"),
            "not a cluster boundary",
        ],
    );
    // An L2 table pointing at the header: reads garbage but never panics.
    let mut c = Copy::of("qcow2-tiny");
    c.set_u64(l1, 4096);
    let _ = c.result();
}

#[test]
fn damaged_compressed_data() {
    let mut c = Copy::of("qcow2-tiny");
    let l2 = c.l2_entry_pos();
    let entry = c.u64(l2 + 16 * 8);
    assert_eq!(entry >> 62, 1, "guest cluster 16 should be compressed");
    let host = (entry & ((1 << 58) - 1)) as usize;
    for b in &mut c.bytes[host..host + 512] {
        *b = 0xff;
    }
    c.save();
    assert_has(&c.error(), &["zlib compressed cluster at byte", "deflate"]);
    // Compressed data cut short (an entry claiming fewer bytes than needed).
    let mut c = Copy::of("qcow2-tiny");
    c.set_u64(l2 + 16 * 8, (1 << 62) | (host as u64 + 500));
    let e = c.error();
    assert!(e.contains("compressed cluster at byte"), "{e}");
}

#[test]
fn features_refused_by_name() {
    let mut c = Copy::of("qcow2-tiny");
    let e = c.set_u64(72, 1 << 7).error();
    assert_has(&e, &["incompatible feature bit 7", "unknown"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u32(32, 2).error(), &["encrypted qcow2 (LUKS)"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u32(32, 1).error(), &["encrypted qcow2 (AES)"]);
    let mut c = Copy::of("qcow2-tiny");
    assert_has(&c.set_u64(72, 1 << 2).error(), &["external data file"]);
    // The dirty bit, the corrupt bit and lazy refcounts do not stop reading.
    let mut c = Copy::of("qcow2-tiny");
    c.set_u64(72, 1).set_u64(80, 1);
    c.result().unwrap();
    let mut c = Copy::of("qcow2-tiny");
    c.set_u64(72, 2);
    c.result().unwrap();
    let img = image::open(&c.path).unwrap();
    assert!(img.details.iter().any(|d| d == "marked corrupt by QEMU"));
    // The compression type bit without a compression type.
    let mut c = Copy::of("qcow2-tiny");
    assert_has(
        &c.set_u64(72, 1 << 3).error(),
        &["compression type feature bit is set"],
    );
}

#[test]
fn extended_l2_bitmaps_checked() {
    let mut c = Copy::of("qcow2-xl2");
    std::fs::copy(
        common::fixture("qcow2-xl2-base"),
        c.dir().join("qcow2-xl2-base.img"),
    )
    .unwrap();
    c.result().unwrap();
    let l2 = c.l2_entry_pos();
    // Guest cluster 0 has subcluster 0 allocated: mark it zero too.
    let bitmap = c.u64(l2 + 8);
    assert_eq!(bitmap & 1, 1, "subcluster 0 should be allocated");
    let e = c.set_u64(l2 + 8, bitmap | (1 << 32)).error();
    assert_has(
        &e,
        &[
            &format!("L2 table entry at byte {l2}"),
            "both allocated and zero",
        ],
    );
    // Allocated subclusters without a host cluster.
    let mut c2 = Copy::of("qcow2-xl2");
    std::fs::copy(
        common::fixture("qcow2-xl2-base"),
        c2.dir().join("qcow2-xl2-base.img"),
    )
    .unwrap();
    let e = c2.set_u64(l2, 0).error();
    assert_has(&e, &["no host offset"]);
}

/// Rewrite the backing file name of a copy of `qcow2-chain-top` (its header
/// has room: the name sits at the end of the first cluster area).
fn set_backing(c: &mut Copy, name: &str) {
    let off = c.u64(8) as usize;
    assert!(off > 0);
    c.bytes[off..off + name.len()].copy_from_slice(name.as_bytes());
    c.set_u32(16, name.len() as u32);
}

fn chain_top_in(dir: &Path, file: &str, backing: &str) {
    let mut bytes = std::fs::read(common::fixture("qcow2-chain-top")).unwrap();
    let off = u64::from_be_bytes(bytes[8..16].try_into().unwrap()) as usize;
    bytes[off..off + backing.len()].copy_from_slice(backing.as_bytes());
    bytes[16..20].copy_from_slice(&(backing.len() as u32).to_be_bytes());
    std::fs::write(dir.join(file), bytes).unwrap();
}

#[test]
fn backing_chain_loops_and_depth() {
    // An image that is its own backing file.
    let mut c = Copy::of("qcow2-chain-top");
    set_backing(&mut c, "image.qcow2");
    assert_has(&c.error(), &["backing chain loops"]);
    // Two images that back each other.
    let dir = tempfile::tempdir().unwrap();
    chain_top_in(dir.path(), "a.img", "b.img");
    chain_top_in(dir.path(), "b.img", "a.img");
    let e = read_everything(&dir.path().join("a.img")).unwrap_err();
    assert_has(&e, &["backing chain loops", "a.img"]);
    // A chain deeper than the limit: l00 -> l01 -> ... -> l40.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        chain_top_in(
            dir.path(),
            &format!("l{i:02}.img"),
            &format!("l{:02}.img", i + 1),
        );
    }
    std::fs::copy(common::fixture("qcow2-tiny"), dir.path().join("l40.img")).unwrap();
    let e = read_everything(&dir.path().join("l00.img")).unwrap_err();
    assert_has(&e, &["backing chain deeper than 32"]);
    // Within the limit it opens (the 12 MiB image above a 1 MiB one).
    assert!(read_everything(&dir.path().join("l20.img")).is_ok());
}

#[test]
fn backing_files_that_cannot_be_opened() {
    let mut c = Copy::of("qcow2-chain-top");
    set_backing(&mut c, "missing.img");
    assert_has(&c.error(), &["backing file \"missing.img\"", "not found"]);
    let mut c = Copy::of("qcow2-chain-top");
    set_backing(&mut c, "nbd:localhost:10809");
    assert_has(&c.error(), &["QEMU protocol \"nbd:\""]);
    let mut c = Copy::of("qcow2-chain-top");
    set_backing(&mut c, "json:{\"driver\":\"raw\"}");
    assert_has(&c.error(), &["json:"]);
    // The backing format extension says qcow2, the file is raw.
    let mut c = Copy::of("qcow2-chain-top");
    std::fs::copy(common::fixture("qcow2-chain-base"), c.dir().join("raw.img")).unwrap();
    set_backing(&mut c, "raw.img");
    assert_has(&c.error(), &["should be qcow2", "no qcow2 magic"]);
    // A backing format vmrescue does not read.
    let mut c = Copy::of("qcow2-chain-top");
    let fmt_ext = c
        .bytes
        .windows(4)
        .position(|w| w == [0xe2, 0x79, 0x2a, 0xca])
        .expect("backing format extension");
    let len = c.u32(fmt_ext + 4) as usize;
    assert_eq!(&c.bytes[fmt_ext + 8..fmt_ext + 8 + len], b"qcow2");
    c.bytes[fmt_ext + 8..fmt_ext + 8 + len].copy_from_slice(b"vmdk\0");
    c.set_u32(fmt_ext + 4, 4);
    std::fs::copy(
        common::fixture("qcow2-chain-mid"),
        c.dir().join("qcow2-chain-mid.img"),
    )
    .unwrap();
    assert_has(&c.error(), &["format \"vmdk\""]);
}

#[test]
fn truncated_files_never_panic() {
    let full = std::fs::read(common::fixture("qcow2-tiny")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.qcow2");
    let mut errors = 0;
    for len in (0..full.len()).step_by(256) {
        std::fs::write(&path, &full[..len]).unwrap();
        if read_everything(&path).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 10, "truncations should mostly fail ({errors})");
}

#[test]
fn random_damage_never_panics() {
    let full = std::fs::read(common::fixture("qcow2-tiny")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.qcow2");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Metadata lives in the clusters before the data: hit those hardest.
    let metadata_end = 0x9000 + 4096;
    for _ in 0..400 {
        let mut b = full.clone();
        for _ in 0..(1 + next() % 6) {
            let pos = (next() % metadata_end as u64) as usize;
            match next() % 3 {
                0 => b[pos] ^= 1 << (next() % 8),
                1 => b[pos] = 0xff,
                _ => b[pos] = (next() & 0xff) as u8,
            }
        }
        std::fs::write(&path, &b).unwrap();
        let _ = read_everything(&path);
        for snap in ["1", "s1"] {
            let _ = image::open_with(
                &path,
                &image::OpenOptions {
                    snapshot: Some(snap.into()),
                    ..Default::default()
                },
            )
            .map(|img| {
                let mut buf = vec![0u8; img.source.size().min(1 << 20) as usize];
                let _ = img.source.read_exact_at(0, &mut buf);
            });
        }
    }
}

/// An invalid subcluster bitmap at the start of the disk makes the disk's
/// content unreadable: `layers` lists that as a problem and exits 1.
#[test]
fn invalid_subcluster_bitmap_is_a_layers_problem() {
    let mut c = Copy::of("qcow2-xl2");
    std::fs::copy(
        common::fixture("qcow2-xl2-base"),
        c.dir().join("qcow2-xl2-base.img"),
    )
    .unwrap();
    let l2 = c.l2_entry_pos();
    let bitmap = c.u64(l2 + 8);
    c.set_u64(l2 + 8, bitmap | (1 << 32));
    let out = common::vmrescue(&["layers", c.path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_has(&err, &["both allocated and zero", &format!("byte {l2}")]);
}

/// `backing_file_size` 0 with a backing file offset is an empty name: QEMU
/// opens such an image without a backing file, and so does vmrescue.
#[test]
fn empty_backing_file_name_means_no_backing_file() {
    let mut c = Copy::of("qcow2-chain-top");
    assert!(c.u64(8) > 0);
    c.set_u32(16, 0);
    let img = image::open(&c.path).unwrap();
    assert!(
        !img.details.iter().any(|d| d.starts_with("backing")),
        "{:?}",
        img.details
    );
    // Unallocated clusters read as zeros, as without a backing file.
    let mut buf = vec![0u8; 4096];
    img.source.read_exact_at(0, &mut buf).unwrap();
    // A name longer than QEMU allows is still refused.
    let e = c.set_u32(16, 1024).error();
    assert_has(&e, &["backing_file_size 1024"]);
}

/// A data cluster cut in two by the end of the file: the part still there
/// reads, the rest is an error naming the truncation, not zeros.
#[test]
fn data_cluster_cut_by_the_end_of_the_file_is_an_error_not_zeros() {
    let mut c = Copy::of("qcow2-tiny");
    let len = c.bytes.len();
    c.bytes.truncate(len - len / 20);
    c.save();
    let e = c.error();
    assert_has(&e, &["past the end of the file", "the image is truncated"]);
    let img = image::open(&c.path).unwrap();
    assert_has(&img.problems.join("\n"), &["the image is truncated"]);
}
