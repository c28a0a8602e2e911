//! The XFS log replayed in memory against the kernel's own recovery: the
//! fixtures of `tests/fixtures/make/xfs-dirty.sh` were shut down with their
//! last changes only in the log, and each carries the kernel's walk after it
//! replayed a copy (`<name>.walk`) and the on-disk state
//! (`<name>.norecovery.walk`, `mount -o ro,norecovery`).

use crate::common;
use crate::ext_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ext_support::{assert_same, manifest, walk};
use vmrescue::fs::xfs::{NO_JOURNAL_NOTE, REPLAYED_NOTE, Xfs};
use vmrescue::fs::{FsOptions, FsView};
use vmrescue::io::{FileSource, ReadAt};

const DIRTY: &[&str] = &["xfs-replay-v5", "xfs-replay-wrap", "xfs-replay-logbsize"];

fn open_path(p: &Path, no_journal: bool) -> Xfs {
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(p).expect("open image"));
    Xfs::open_with(src, &FsOptions { no_journal })
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn open_bytes(bytes: Vec<u8>) -> vmrescue::Result<Xfs> {
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    Xfs::open(src)
}

#[test]
fn replayed_walks_match_the_kernels_recovery() {
    for name in DIRTY {
        let fs = open_path(&common::fixture(name), false);
        assert_same(name, &walk(&fs), &manifest(&format!("{name}.walk")));
        let st = fs.status();
        assert!(st.problems.is_empty(), "{name}: {:?}", st.problems);
        let note = st
            .notes
            .iter()
            .find(|n| n.starts_with(REPLAYED_NOTE))
            .unwrap_or_else(|| panic!("{name}: {:?}", st.notes));
        assert!(note.contains(" transactions, "), "{note}");
    }
}

#[test]
fn no_journal_shows_the_on_disk_state() {
    // The wrapped image's on-disk state is half-written: only v5's is recorded.
    let name = "xfs-replay-v5";
    let fs = open_path(&common::fixture(name), true);
    assert_same(
        name,
        &walk(&fs),
        &manifest(&format!("{name}.norecovery.walk")),
    );
    assert_eq!(fs.status().notes, vec![NO_JOURNAL_NOTE.to_string()]);
}

#[test]
fn ls_says_the_log_was_replayed() {
    let image = common::fixture("xfs-replay-v5");
    let out = common::vmrescue(&["ls", image.to_str().unwrap(), "/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("log replayed in memory") || stdout.contains("log replayed in memory"),
        "stdout: {stdout}\nstderr: {err}"
    );
    assert!(stdout.contains("after"), "{stdout}");
}

/// The log of an image: (byte position, length in 512-byte blocks).
fn log_area(img: &[u8]) -> (usize, usize) {
    let be32 = |o: usize| u32::from_be_bytes(img[o..o + 4].try_into().unwrap());
    let be64 = |o: usize| u64::from_be_bytes(img[o..o + 8].try_into().unwrap());
    let bs = be32(4) as u64;
    let agblocks = be32(84) as u64;
    let agblklog = img[124];
    let fsb = be64(48);
    let block = (fsb >> agblklog) * agblocks + (fsb & ((1 << agblklog) - 1));
    let nbb = be32(96) as u64 * bs / 512;
    ((block * bs) as usize, nbb as usize)
}

/// The record headers the replay reads, oldest first (the log of the v5
/// fixture has not wrapped): byte positions.
fn replayed_records(img: &[u8]) -> Vec<usize> {
    let (base, nbb) = log_area(img);
    let be32 = |o: usize| u32::from_be_bytes(img[o..o + 4].try_into().unwrap());
    let first_cycle = be32(base + 4);
    let headers: Vec<usize> = (0..nbb)
        .map(|bb| base + bb * 512)
        .filter(|&p| be32(p) == 0xFEED_BABE && be32(p + 4) == first_cycle)
        .collect();
    let last = *headers.last().unwrap();
    let tail_bb = u64::from_be_bytes(img[last + 24..last + 32].try_into().unwrap()) & 0xffff_ffff;
    headers
        .into_iter()
        .filter(|&p| p >= base + tail_bb as usize * 512)
        .collect()
}

/// Put back a valid CRC on the record at `p` (one header block).
fn fix_crc(img: &mut [u8], p: usize) {
    let len = u32::from_be_bytes(img[p + 12..p + 16].try_into().unwrap()) as usize;
    let mut c = crc32c::crc32c(&img[p..p + 32]);
    c = crc32c::crc32c_append(c, &[0; 4]);
    c = crc32c::crc32c_append(c, &img[p + 36..p + 328]);
    c = crc32c::crc32c_append(c, &img[p + 512..p + 512 + len]);
    img[p + 32..p + 36].copy_from_slice(&c.to_le_bytes());
}

fn v5_image() -> Vec<u8> {
    std::fs::read(common::fixture("xfs-replay-v5")).unwrap()
}

fn problems(fs: &Xfs) -> String {
    vmrescue::problem::texts(&fs.status().problems).join("\n")
}

#[test]
fn records_have_valid_crcs_as_found() {
    let mut img = v5_image();
    let recs = replayed_records(&img);
    assert!(recs.len() > 10, "{} records", recs.len());
    let before = img.clone();
    for &p in &recs {
        fix_crc(&mut img, p);
    }
    assert!(img == before, "a record's CRC is computed differently");
}

#[test]
fn a_bad_crc_before_the_end_stops_the_replay_with_its_position() {
    let mut img = v5_image();
    let recs = replayed_records(&img);
    let p = recs[1];
    img[p + 512 + 100] ^= 0x55;
    let fs = open_bytes(img).unwrap();
    let text = problems(&fs);
    assert!(
        text.contains(&format!("xfs log record at byte {p}: CRC mismatch")),
        "{text}"
    );
    assert!(text.contains("replay stops there"), "{text}");
    // What came before it is still shown.
    walk(&fs);
}

#[test]
fn a_torn_last_record_is_cut_off_as_the_kernel_does() {
    let mut img = v5_image();
    let recs = replayed_records(&img);
    let p = *recs.last().unwrap();
    img[p + 512 + 20] ^= 0xff;
    let fs = open_bytes(img).unwrap();
    let st = fs.status();
    assert!(
        st.notes.iter().any(|n| n.contains("torn write")),
        "{:?}",
        st.notes
    );
    assert!(st.notes.iter().any(|n| n.starts_with(REPLAYED_NOTE)));
    walk(&fs);
}

#[test]
fn garbage_operation_headers_are_problems_with_positions() {
    // A bad client id, then a huge operation length; CRCs made valid so the
    // operations themselves are judged.
    for (off, bytes) in [(8usize, vec![0x00u8]), (4, vec![0xff, 0xff, 0xff, 0xf0])] {
        let mut img = v5_image();
        let recs = replayed_records(&img);
        let p = recs[0];
        img[p + 512 + off..p + 512 + off + bytes.len()].copy_from_slice(&bytes);
        fix_crc(&mut img, p);
        let fs = open_bytes(img).unwrap();
        let text = problems(&fs);
        assert!(
            text.contains(&format!(
                "xfs log record at byte {p}: operation at record offset 0"
            )),
            "{text}"
        );
        walk(&fs);
    }
}

#[test]
fn huge_record_lengths_and_random_damage_do_not_panic() {
    let img = v5_image();
    let recs = replayed_records(&img);
    let (base, nbb) = log_area(&img);
    let mut bad = img.clone();
    bad[recs[0] + 12..recs[0] + 16].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    let fs = open_bytes(bad).unwrap();
    assert!(problems(&fs).contains("record length"), "{}", problems(&fs));
    // Deterministic random bytes all over the live part of the log.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let start = Instant::now();
    for round in 0..40 {
        let mut bad = img.clone();
        for _ in 0..(1 + round * 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let from = recs[0] - base;
            let span = (nbb * 512 - from).min(1 << 20);
            let at = base + from + (seed as usize % span);
            bad[at] = (seed >> 32) as u8;
        }
        if let Ok(fs) = open_bytes(bad) {
            let _ = fs.status();
            let _ = fs.read_dir(fs.root());
        }
    }
    assert!(start.elapsed() < Duration::from_secs(120));
}

#[test]
fn the_image_is_never_written() {
    let path = common::fixture("xfs-replay-v5");
    let before = std::fs::read(&path).unwrap();
    let fs = open_path(&path, false);
    walk(&fs);
    assert!(std::fs::read(&path).unwrap() == before);
}

#[test]
fn the_kernel_engine_says_it_did_not_replay() {
    common::require_root("mounts the dirty XFS image through the kernel engine");
    let image = common::fixture("xfs-replay-v5");
    let out = common::vmrescue(&["ls", "--engine", "kernel", image.to_str().unwrap(), "/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("the XFS log needs recovery, which the kernel engine"),
        "{err}"
    );
    // The on-disk state: nothing of the log is there.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("after"));
}
