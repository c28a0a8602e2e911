//! NTFS read in userspace against what a fresh read-only ntfs-3g mount shows
//! of the same image (`tests/fixtures/make/ntfs.sh`): every node's type,
//! mode, size, mtime, SHA-256 and symlink target, the named stream, hard
//! links, holes, LZNT1-compressed files, label and serial as blkid prints
//! them; then damaged copies: boot sector fields, MFT record fixups, a
//! damaged `$MFT` start read from `$MFTMirr`, a loop in a directory index,
//! damaged data runs, and hundreds of random mutations of the MFT region.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::fs::ntfs::NtfsVolume;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView, NodeId};
use vmrescue::io::{FileSource, ReadAt};

use crate::common;
use crate::ext_support::{hex, read_all, tolerant_walk};

fn open_path(p: &std::path::Path) -> vmrescue::error::Result<NtfsVolume> {
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(p).expect("open image"));
    NtfsVolume::open(src)
}

fn open() -> NtfsVolume {
    let p = common::fixture("ntfs");
    open_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn node(fs: &dyn FsView, path: &str) -> NodeId {
    resolve(fs, path.as_bytes(), false).unwrap().node
}

/// Our rows in the manifest's form: PATH TYPE MODE SIZE MTIME SHA256 LINK.
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
            let head = format!("\t{:o}", m.perm);
            match m.file_type {
                FileType::Directory => {
                    row.extend_from_slice(format!("\td{head}\t\t{}\t\t", m.mtime.sec).as_bytes());
                    stack.push((p, e.node));
                }
                FileType::Symlink => {
                    row.extend_from_slice(
                        format!("\tl{head}\t{}\t{}\t\t", m.size, m.mtime.sec).as_bytes(),
                    );
                    row.extend_from_slice(&fs.read_link(e.node).unwrap());
                }
                _ => {
                    let data = read_all(fs, e.node).unwrap();
                    assert_eq!(data.len() as u64, m.size);
                    row.extend_from_slice(
                        format!(
                            "\tf{head}\t{}\t{}\t{}\t",
                            m.size,
                            m.mtime.sec,
                            hex(&Sha256::digest(&data))
                        )
                        .as_bytes(),
                    );
                }
            }
            out.push(row);
        }
    }
    out.sort();
    out
}

fn manifest() -> Vec<Vec<u8>> {
    manifest_of("ntfs.manifest")
}

fn manifest_of(file: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read(common::fixture_file(file)).unwrap();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn every_node_matches_ntfs_3g() {
    let fs = open();
    let ours = rows(&fs);
    let want = manifest();
    assert!(want.len() > 5000, "manifest has {} rows", want.len());
    for (a, b) in ours.iter().zip(&want) {
        assert_eq!(String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    }
    assert_eq!(ours.len(), want.len());
    assert!(
        fs.status().problems.is_empty(),
        "{:?}",
        fs.status().problems
    );
}

#[test]
fn label_serial_and_status() {
    let fs = open();
    let st = fs.status();
    let blkid = std::fs::read_to_string(common::fixture_file("ntfs.blkid")).unwrap();
    assert_eq!(st.fs_type, "ntfs");
    assert!(
        blkid.contains(&format!("LABEL={}\n", st.label.clone().unwrap())),
        "{blkid}"
    );
    assert!(
        blkid.contains(&format!("UUID={}\n", st.uuid.clone().unwrap())),
        "{blkid}"
    );
    assert_eq!(st.uuid.unwrap().len(), 16);
    assert!(st.notes.is_empty(), "{:?}", st.notes);
}

#[test]
fn hard_links_are_one_node() {
    let fs = open();
    let a = node(&fs, "/docs/linked.txt");
    assert_eq!(a, node(&fs, "/links/linked-again.txt"));
    assert_eq!(a, node(&fs, "/links/third name.txt"));
    assert_eq!(fs.metadata(a).unwrap().nlink, 3);
    assert_eq!(fs.metadata(a).unwrap().ino, a.0);
}

#[test]
fn names_are_case_sensitive_and_dos_names_hidden() {
    let fs = open();
    let docs = node(&fs, "/docs");
    assert!(fs.lookup(docs, b"MixedCase.TXT").unwrap().is_some());
    assert!(fs.lookup(docs, b"mixedcase.txt").unwrap().is_none());
    let names: Vec<_> = fs
        .read_dir(docs)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(&b'~')),
        "a DOS name is shown"
    );
    // NTFS's own files are hidden, as ntfs-3g hides them.
    assert!(fs.lookup(fs.root(), b"$MFT").unwrap().is_none());
}

#[test]
fn named_stream_is_a_user_xattr() {
    let fs = open();
    let want = std::fs::read_to_string(common::fixture_file("ntfs.streams")).unwrap();
    let n = node(&fs, "/docs/with-stream.txt");
    let x = fs.xattrs(n).unwrap();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].name, b"user.stream1");
    let line = format!(
        "/docs/with-stream.txt\tstream1\t{}\n",
        hex(&Sha256::digest(&x[0].value))
    );
    assert_eq!(want, line);
    assert!(fs.xattrs(node(&fs, "/docs/readme.txt")).unwrap().is_empty());
}

#[test]
fn holes_are_left_out_of_extents() {
    let fs = open();
    let n = node(&fs, "/sparse.bin");
    let ext = fs.extents(n).unwrap();
    assert_eq!(ext.len(), 1, "{ext:?}");
    assert_eq!(ext[0].offset, 1 << 20);
    assert_eq!(ext[0].len, 102_400);
    let m = fs.metadata(n).unwrap();
    assert_eq!(m.allocated, Some(102_400));
    // Compressed: fewer bytes allocated than the size, and a compressed file's
    // hole (the first unit after its data) stays out of the extents.
    let t = fs.metadata(node(&fs, "/zip/text.txt")).unwrap();
    assert!(t.allocated.unwrap() < t.size / 2, "{t:?}");
    let s = node(&fs, "/zip/sparse-compressed.bin");
    let covered: u64 = fs.extents(s).unwrap().iter().map(|e| e.len).sum();
    assert!(
        covered < fs.metadata(s).unwrap().size,
        "{:?}",
        fs.extents(s)
    );
}

#[test]
fn symlinks_and_times() {
    let fs = open();
    let l = node(&fs, "/links/to-readme");
    let m = fs.metadata(l).unwrap();
    assert_eq!(m.file_type, FileType::Symlink);
    assert_eq!(fs.read_link(l).unwrap(), b"../docs/readme.txt");
    // touch -d '2001-02-03 04:05:06.789' through ntfs-3g.
    let r = fs.metadata(node(&fs, "/docs/readme.txt")).unwrap();
    assert_eq!((r.mtime.sec, r.mtime.nsec), (981_173_106, 789_000_000));
    assert_eq!(r.atime.sec, 981_173_106);
    assert!(r.ctime.sec > 981_173_106 && r.crtime.is_some());
    // Through a symlink, resolved inside the guest.
    let f = resolve(&fs, b"/links/to-readme", true).unwrap().node;
    assert_eq!(f, node(&fs, "/docs/readme.txt"));
}

// ---------------------------------------------------------------- damage

fn copy(dir: &std::path::Path) -> std::path::PathBuf {
    common::fixture_copy("ntfs", dir)
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Byte of MFT record `n` in the image (a fresh volume's MFT is contiguous).
fn record_at(img: &[u8], n: u64) -> usize {
    let cluster = u64::from(u16::from_le_bytes([img[11], img[12]])) * u64::from(img[13]);
    (le64(img, 48) * cluster + n * 1024) as usize
}

fn patch(p: &std::path::Path, at: usize, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(bytes, at as u64).unwrap();
}

#[test]
fn bad_boot_sector_fields_name_their_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let orig = std::fs::read(&p).unwrap();
    for (off, val, want) in [
        (3usize, b"XXXX".to_vec(), "at byte 3"),
        (11, vec![0x00, 0x03], "at byte 11"),
        (13, vec![3], "at byte 13"),
        (48, vec![0xff; 8], "at byte 48"),
        (64, vec![0], "at byte 64"),
        (3, b"-FVE-FS-".to_vec(), "BitLocker"),
    ] {
        patch(&p, 0, &orig[..512]);
        patch(&p, off, &val);
        let err = match open_path(&p) {
            Ok(_) => panic!("byte {off} changed: opened"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "byte {off}: {err}");
    }
}

#[test]
fn bad_fixup_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let fs = open_path(&p).unwrap();
    let n = node(&fs, "/docs/readme.txt");
    drop(fs);
    let img = std::fs::read(&p).unwrap();
    let at = record_at(&img, n.0);
    assert_eq!(&img[at..at + 4], b"FILE");
    // The last two bytes of the record's first sector must repeat the update sequence number.
    patch(&p, at + 510, &[0xde, 0xad]);
    let fs = open_path(&p).unwrap();
    let err = fs.metadata(n).unwrap_err().to_string();
    assert!(err.contains(&format!("MFT record {}", n.0)), "{err}");
    // The rest still reads.
    let other = node(&fs, "/docs/tiny.txt");
    assert_eq!(read_all(&fs, other).unwrap(), b"tiny\n");
}

#[test]
fn damaged_mft_start_reads_from_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let img = std::fs::read(&p).unwrap();
    let at = record_at(&img, 0);
    patch(&p, at, b"BAAD");
    patch(&p, at + 510, &[0xde, 0xad]);
    let fs = open_path(&p).unwrap();
    let st = fs.status();
    assert!(
        st.notes.iter().any(|n| n.contains("$MFTMirr")),
        "{:?}",
        st.notes
    );
    assert_eq!(rows(&fs), manifest());
}

#[test]
fn a_loop_in_a_directory_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let fs = open_path(&p).unwrap();
    let many = node(&fs, "/many");
    drop(fs);
    let mut img = std::fs::read(&p).unwrap();
    // Find /many's INDX blocks: their entries name the parent record `many`.
    // Point the first subnode VCN found in a block at that block itself.
    let mut done = false;
    let mut at = 0;
    while !done && at + 4096 <= img.len() {
        if &img[at..at + 4] == b"INDX" {
            let vcn = le64(&img, at + 16);
            let first =
                at + 24 + u32::from_le_bytes(img[at + 24..at + 28].try_into().unwrap()) as usize;
            let parent = le64(&img, first + 16) & 0xffff_ffff_ffff;
            let flags = u16::from_le_bytes([img[first + 12], img[first + 13]]);
            if parent == many.0 && flags & 1 != 0 {
                let len = u16::from_le_bytes([img[first + 8], img[first + 9]]) as usize;
                let sub = first + len - 8;
                // Keep the update sequence intact: the VCN never sits at a sector's last two bytes here.
                assert_ne!((sub - at) % 512, 504);
                img[sub..sub + 8].copy_from_slice(&vcn.to_le_bytes());
                done = true;
            }
        }
        at += 4096;
    }
    if !done {
        // The entries of the index root point down; make the deepest level point at its root instead.
        panic!("no INDX block of /many with subnodes found: the fixture changed");
    }
    std::fs::write(&p, &img).unwrap();
    let fs = open_path(&p).unwrap();
    let err = fs.read_dir(many).unwrap_err().to_string();
    assert!(
        err.contains("loop") && err.contains(&format!("MFT record {}", many.0)),
        "{err}"
    );
}

#[test]
fn damaged_data_runs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let fs = open_path(&p).unwrap();
    let n = node(&fs, "/big.bin");
    drop(fs);
    let img = std::fs::read(&p).unwrap();
    let rec = record_at(&img, n.0);
    // Find the non-resident $DATA attribute and make its first run's LCN huge.
    let mut a = rec + usize::from(u16::from_le_bytes([img[rec + 20], img[rec + 21]]));
    loop {
        let ty = u32::from_le_bytes(img[a..a + 4].try_into().unwrap());
        assert_ne!(ty, 0xffff_ffff, "no $DATA");
        let len = u32::from_le_bytes(img[a + 4..a + 8].try_into().unwrap()) as usize;
        if ty == 0x80 && img[a + 8] == 1 {
            let runs = a + usize::from(u16::from_le_bytes([img[a + 32], img[a + 33]]));
            let h = img[runs];
            let (l, o) = (usize::from(h & 0xf), usize::from(h >> 4));
            let mut b = img[runs + 1 + l..runs + 1 + l + o].to_vec();
            *b.last_mut().unwrap() = 0x70;
            patch(&p, runs + 1 + l, &b);
            break;
        }
        a += len;
    }
    let fs = open_path(&p).unwrap();
    let err = fs.read_at(n, 0, &mut [0u8; 16]).unwrap_err().to_string();
    assert!(err.contains(&format!("MFT record {}", n.0)), "{err}");
}

/// The byte of the non-resident unnamed `$DATA` attribute in MFT record
/// `rec` of `img` (the record at that byte).
fn data_attribute(img: &[u8], rec: usize) -> usize {
    let mut a = rec + usize::from(u16::from_le_bytes([img[rec + 20], img[rec + 21]]));
    loop {
        let ty = u32::from_le_bytes(img[a..a + 4].try_into().unwrap());
        assert_ne!(ty, 0xffff_ffff, "no $DATA");
        let len = u32::from_le_bytes(img[a + 4..a + 8].try_into().unwrap()) as usize;
        // Non-resident, no name.
        if ty == 0x80 && img[a + 8] == 1 && img[a + 9] == 0 {
            return a;
        }
        a += len;
    }
}

/// A file whose initialized size (valid data length) is below its size —
/// what Windows leaves after `SetFileValidData`/`SetEndOfFile` or a write
/// cut short — reads as zeros past it, whatever its clusters hold, as
/// ntfs-3g (`ntfscat`) reads the same patched image; a copy leaves that
/// part a hole. The attribute is found by walking the record as our reader
/// does; the clusters past the new valid length still hold the old bytes.
#[test]
fn bytes_past_the_initialized_size_read_as_zeros_as_ntfs_3g_reads_them() {
    const VALID: u64 = 5_000_003;
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let fs = open_path(&p).unwrap();
    let n = node(&fs, "/big.bin");
    let before = read_all(&fs, n).unwrap();
    drop(fs);
    let img = std::fs::read(&p).unwrap();
    let rec = record_at(&img, n.0);
    let a = data_attribute(&img, rec);
    let size = le64(&img, a + 0x30);
    assert_eq!(size, 20_971_520);
    assert_eq!(le64(&img, a + 0x38), size, "initialized size before");
    // The field must not hold a sector's update-sequence bytes (510, 511).
    let at = a + 0x38 - rec;
    assert!(
        (at..at + 8).all(|b| b % 512 < 510),
        "field at record byte {at}"
    );
    patch(&p, a + 0x38, &VALID.to_le_bytes());

    let fs = open_path(&p).unwrap();
    assert_eq!(fs.metadata(n).unwrap().size, size);
    let got = read_all(&fs, n).unwrap();
    assert_eq!(got.len() as u64, size);
    let valid = VALID as usize;
    assert_eq!(&got[..valid], &before[..valid]);
    assert!(
        got[valid..].iter().all(|&b| b == 0),
        "zeros past the valid length"
    );
    assert!(
        before[valid..].iter().any(|&b| b != 0),
        "the clusters hold data there"
    );
    // A read that straddles the valid length.
    let mut buf = vec![0xaau8; 16];
    assert_eq!(fs.read_at(n, VALID - 8, &mut buf).unwrap(), 16);
    assert_eq!(&buf[..8], &before[valid - 8..valid]);
    assert_eq!(&buf[8..], &[0u8; 8]);
    // Past it: allocated, unwritten.
    let ext = fs.extents(n).unwrap();
    assert!(
        ext.iter().any(|e| e.unwritten && e.offset == VALID),
        "{ext:?}"
    );
    assert!(
        ext.iter()
            .filter(|e| !e.unwritten)
            .all(|e| e.offset + e.len <= VALID)
    );
    drop(fs);

    // ntfs-3g reads the same bytes, and so do `cat` and `cp` (the copy
    // moves big runs in the kernel).
    read_as_ntfs_3g_and_copied(dir.path(), &p, "/big.bin", &got);
}

#[test]
fn mutated_mft_never_panics_or_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(dir.path());
    let orig = std::fs::read(&p).unwrap();
    let start = record_at(&orig, 0);
    // The first 64 records and the boot sector: system files, root, the test's files.
    let len = 64 * 1024;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    // A hang shows as one mutation taking long, not as a slow run: a loaded
    // machine walks a mutation in under a second.
    for i in 0..300 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut b = orig[start..start + len].to_vec();
        let mut boot = orig[..512].to_vec();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % len as u64) as usize;
            b[at] = (seed >> 32) as u8;
        }
        if i % 10 == 0 {
            boot[(seed % 512) as usize] = (seed >> 40) as u8;
        }
        patch(&p, 0, &boot);
        patch(&p, start, &b);
        if let Ok(fs) = open_path(&p) {
            tolerant_walk(&fs, 5000);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mutation {i}: too slow (a hang?)"
        );
    }
}

#[test]
fn cli_layers_ls_cat_cp() {
    let p = common::fixture("ntfs");
    let img = p.to_str().unwrap();
    let out = common::vmrescue(&["layers", img]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ntfs") && text.contains("RESCUE"), "{text}");
    assert!(text.contains("userspace"), "{text}");

    let out = common::vmrescue(&["ls", "-l", img, "/links"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("to-readme -> ../docs/readme.txt"), "{text}");

    let out = common::vmrescue(&["cat", img, "/zip/text.txt"]);
    assert!(out.status.success());
    let want = manifest()
        .into_iter()
        .find(|r| r.starts_with(b"/zip/text.txt\t"))
        .unwrap();
    let sum = hex(&Sha256::digest(&out.stdout));
    assert!(String::from_utf8_lossy(&want).contains(&sum));

    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().to_str().unwrap();
    let out = common::vmrescue(&["cp", img, "/docs", dst]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read(dir.path().join("docs/sub/deep.txt")).unwrap();
    assert_eq!(got.len(), 70_000);
}

#[test]
fn space_matches_ntfs_3g_statfs() {
    let fs = open();
    let s = fs.space(fs.root()).unwrap();
    let df = std::fs::read_to_string(common::fixture_file("ntfs.df")).unwrap();
    let got = format!(
        "{} {} {} {}\n",
        s.block_size, s.blocks, s.free_blocks, s.avail_blocks
    );
    assert_eq!(got, df);
}

// ------------------------------------------------- attribute lists

fn open_split() -> NtfsVolume {
    let p = common::fixture("ntfs-split");
    open_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Fragmented and compressed files whose run lists ntfs-3g split over an
/// attribute list and extension records (`tests/fixtures/make/ntfs-split.sh`)
/// read as a fresh read-only ntfs-3g mount reads them: every extent, in VCN
/// order, the sizes from the first.
#[test]
fn streams_split_over_an_attribute_list_read_as_ntfs_3g_reads_them() {
    let lists = std::fs::read_to_string(common::fixture_file("ntfs-split.lists")).unwrap();
    assert_eq!(
        lists.lines().collect::<Vec<_>>(),
        ["/frag.bin", "/linked.bin", "/pad.bin", "/zip/long.txt"],
        "the fixture's files have attribute lists"
    );
    let fs = open_split();
    let ours = rows(&fs);
    let want = manifest_of("ntfs-split.manifest");
    for (a, b) in ours.iter().zip(&want) {
        assert_eq!(String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    }
    assert_eq!(ours.len(), want.len());
    assert!(
        fs.status().problems.is_empty(),
        "{:?}",
        fs.status().problems
    );
    // Hundreds of runs over several records, no hole among them.
    let frag = node(&fs, "/frag.bin");
    let ext = fs.extents(frag).unwrap();
    assert_eq!(ext.len(), 1, "{ext:?}");
    assert_eq!((ext[0].offset, ext[0].len), (0, 2_925_300), "{ext:?}");
    // A read at its very end.
    let mut tail = [0u8; 7];
    assert_eq!(fs.read_at(frag, 2_925_300 - 7, &mut tail).unwrap(), 7);
    // Each 4 KiB write ended with a line and six newlines.
    assert_eq!(&tail, b"\n\n\n\n\n\n\n");
}

/// The initialized size (valid data length) of a stream split over an
/// attribute list is the one in the header of its first extent (VCN 0):
/// bytes past it read as zeros, as ntfs-3g (`ntfscat`) reads the same
/// patched image, through `cat` and `cp` too.
#[test]
fn initialized_size_of_a_split_stream_is_its_first_extents() {
    const VALID: u64 = 1_000_003;
    let dir = tempfile::tempdir().unwrap();
    let p = common::fixture_copy("ntfs-split", dir.path());
    let fs = open_path(&p).unwrap();
    let n = node(&fs, "/frag.bin");
    let before = read_all(&fs, n).unwrap();
    drop(fs);
    let img = std::fs::read(&p).unwrap();
    let rec = record_at(&img, n.0);
    assert_eq!(&img[rec..rec + 4], b"FILE");
    // The base record holds the first extent: lowest VCN 0, the sizes.
    let a = data_attribute(&img, rec);
    assert_eq!(
        le64(&img, a + 0x10),
        0,
        "lowest VCN of the base record's extent"
    );
    let size = le64(&img, a + 0x30);
    assert_eq!(size, before.len() as u64);
    assert_eq!(le64(&img, a + 0x38), size, "initialized size before");
    // Its runs end before VCN 0's extent covers the file: the rest is in
    // extension records.
    let last_vcn = le64(&img, a + 0x18);
    assert!((last_vcn + 1) * 4096 < size, "last VCN {last_vcn}");
    patch_initialized_size(&p, rec, a, VALID);
    read_zeros_past(dir.path(), &p, n, "/frag.bin", &before, VALID);
}

/// Patch the initialized size of the non-resident attribute at byte `a`
/// of image `p` (in the MFT record at byte `rec`) to `valid`; the field
/// must not hold a sector's update-sequence bytes (510, 511).
fn patch_initialized_size(p: &std::path::Path, rec: usize, a: usize, valid: u64) {
    let at = a + 0x38 - rec;
    assert!(
        (at..at + 8).all(|b| b % 512 < 510),
        "field at record byte {at}"
    );
    patch(p, a + 0x38, &valid.to_le_bytes());
}

/// File `n` (`path`) of image `p`, which read as `before`, now that its
/// initialized size is `valid`: the same size, the same bytes up to
/// `valid` and zeros after (where the clusters hold data), allocated but
/// unwritten extents from there; and so ntfs-3g, `cat` and `cp` read it.
fn read_zeros_past(
    dir: &std::path::Path,
    p: &std::path::Path,
    n: NodeId,
    path: &str,
    before: &[u8],
    valid: u64,
) {
    let fs = open_path(p).unwrap();
    assert_eq!(fs.metadata(n).unwrap().size, before.len() as u64);
    let got = read_all(&fs, n).unwrap();
    let upto = valid as usize;
    assert_eq!(&got[..upto], &before[..upto]);
    assert!(
        got[upto..].iter().all(|&b| b == 0),
        "zeros past the valid length"
    );
    assert!(before[upto..].iter().any(|&b| b != 0));
    let ext = fs.extents(n).unwrap();
    assert!(
        ext.iter().any(|e| e.unwritten && e.offset == valid),
        "{ext:?}"
    );
    assert!(
        ext.iter()
            .filter(|e| !e.unwritten)
            .all(|e| e.offset + e.len <= valid),
        "{ext:?}"
    );
    drop(fs);
    read_as_ntfs_3g_and_copied(dir, p, path, &got);
}

/// What `ntfsinfo -v` (ntfs-3g) says of the unnamed `$DATA` extent at
/// VCN 0 of file `path` of image `p`: the MFT record holding it and its
/// initialized size.
fn ntfsinfo_first_data_extent(p: &std::path::Path, path: &str) -> (u64, u64) {
    let out = std::process::Command::new("ntfsinfo")
        .args(["-v", "-F", path])
        .arg(p)
        .output()
        .expect("ntfsinfo (ntfs-3g) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let number = |l: &str| -> u64 { l.split_whitespace().nth_back(1).unwrap().parse().unwrap() };
    for block in text.split("Dumping attribute ").skip(1) {
        let Some(rest) = block.strip_prefix("$DATA (0x80) from mft record ") else {
            continue;
        };
        let record: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
        let field = |name: &str| {
            block
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .map(number)
        };
        if field("Lowest VCN") == Some(0) {
            return (record, field("Initialized size").unwrap());
        }
    }
    panic!("ntfsinfo shows no $DATA at VCN 0:\n{text}");
}

/// A file whose names fill its base record (twelve long hard links) and
/// whose data came after them: ntfs-3g put its whole `$DATA`, the VCN-0
/// extent with the sizes too, in an extension record. Its initialized size
/// is read there: patched there, the bytes past it read as zeros, as
/// ntfs-3g (`ntfscat`) reads the same patched image, through `cat` and
/// `cp` too.
#[test]
fn initialized_size_in_an_extension_record_is_honoured() {
    const VALID: u64 = 777_777;
    let dir = tempfile::tempdir().unwrap();
    let p = common::fixture_copy("ntfs-split", dir.path());
    let fs = open_path(&p).unwrap();
    let n = node(&fs, "/linked.bin");
    let before = read_all(&fs, n).unwrap();
    assert_eq!(fs.metadata(n).unwrap().nlink, 13);
    drop(fs);
    let img = std::fs::read(&p).unwrap();
    let base = record_at(&img, n.0);
    assert_eq!(&img[base..base + 4], b"FILE");
    let (ext, initialized) = ntfsinfo_first_data_extent(&p, "/linked.bin");
    assert_ne!(ext, n.0, "the VCN-0 extent is in an extension record");
    assert_eq!(initialized, 400 * 4096);
    let rec = record_at(&img, ext);
    assert_eq!(&img[rec..rec + 4], b"FILE");
    // The extension record's base is the file's record.
    assert_eq!(le64(&img, rec + 0x20) & 0xffff_ffff_ffff, n.0);
    let a = data_attribute(&img, rec);
    assert_eq!(le64(&img, a + 0x10), 0, "lowest VCN");
    let size = le64(&img, a + 0x30);
    assert_eq!(size, before.len() as u64);
    assert_eq!(size, 400 * 4096);
    assert_eq!(le64(&img, a + 0x38), size, "initialized size before");
    patch_initialized_size(&p, rec, a, VALID);
    // ntfs-3g sees the patched field where it looks for it.
    assert_eq!(ntfsinfo_first_data_extent(&p, "/linked.bin"), (ext, VALID));
    read_zeros_past(dir.path(), &p, n, "/linked.bin", &before, VALID);
}

/// `ntfscat` (ntfs-3g), `vmrescue cat` and `vmrescue cp` read file `path`
/// of image `p` as `got`; the copy goes to a new folder in `dir`.
fn read_as_ntfs_3g_and_copied(dir: &std::path::Path, p: &std::path::Path, path: &str, got: &[u8]) {
    let want = hex(&Sha256::digest(got));
    let out = std::process::Command::new("ntfscat")
        .arg(p)
        .arg(path)
        .output()
        .expect("ntfscat (ntfs-3g) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hex(&Sha256::digest(&out.stdout)), want, "ntfscat {path}");
    let img = p.to_str().unwrap();
    let out = common::vmrescue(&["cat", img, path]);
    assert!(out.status.success());
    assert_eq!(hex(&Sha256::digest(&out.stdout)), want, "cat {path}");
    let dst = dir.join("out");
    std::fs::create_dir(&dst).unwrap();
    let out = common::vmrescue(&["cp", img, path, dst.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = std::fs::read(dst.join(path.trim_start_matches('/'))).unwrap();
    assert_eq!(hex(&Sha256::digest(&copied)), want, "cp {path}");
}

/// A source that keeps the ranges it is told will be read soon.
struct Told {
    inner: FileSource,
    spans: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl ReadAt for Told {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn prefetch(&self, offset: u64, len: u64) {
        self.spans.lock().unwrap().push((offset, len));
    }
}

#[test]
fn prefetching_data_announces_the_small_files_runs_in_disk_order() {
    let p = common::fixture("ntfs");
    let told = Arc::new(Told {
        inner: FileSource::open(&p).expect("open image"),
        spans: Default::default(),
    });
    let src: Arc<dyn ReadAt> = told.clone();
    let fs = NtfsVolume::open(src).unwrap();
    let small = [
        "/docs/readme.txt",
        "/docs/linked.txt",
        "/docs/sub/deep.txt",
        "/docs/A file with a rather long name that goes past the old eight dot three limit.txt",
    ];
    let nodes: Vec<NodeId> = small.iter().map(|p| node(&fs, p)).collect();
    // Resident data came with the record, a large file is copied in large
    // pieces: neither is announced.
    let others = [node(&fs, "/docs/tiny.txt"), node(&fs, "/big.bin")];
    told.spans.lock().unwrap().clear();
    fs.prefetch(&others, true);
    assert!(told.spans.lock().unwrap().is_empty());
    fs.prefetch(&nodes, true);
    let spans = told.spans.lock().unwrap().clone();
    assert!(!spans.is_empty());
    for w in spans.windows(2) {
        assert!(w[0].0 + w[0].1 < w[1].0, "not in disk order: {spans:?}");
    }
    // Every file's bytes lie inside what was announced.
    let mut announced = Vec::new();
    for (at, len) in &spans {
        let mut b = vec![0; *len as usize];
        told.read_exact_at(*at, &mut b).unwrap();
        announced.extend_from_slice(&b);
    }
    for (path, n) in small.iter().zip(&nodes) {
        let data = read_all(&fs, *n).unwrap();
        assert!(
            announced.windows(data.len()).any(|w| w == data.as_slice()),
            "{path}: its data was not announced ({spans:?})"
        );
    }
    // Without data: the records themselves.
    told.spans.lock().unwrap().clear();
    fs.prefetch(&nodes, false);
    assert!(!told.spans.lock().unwrap().is_empty());
}
