//! Damaged images: every fixture truncated at many points inside its
//! metadata, and bytes flipped in every header (MBR, each EBR, GPT headers
//! and entry arrays, LVM label, mda header, metadata text). Every case must
//! end in an error or a listed problem that names the file — never a panic or
//! a hang — and checksummed structures must be caught, with the backup used
//! where there is one.

use crate::common;
use crate::partition_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use partition_support::{BARE_FIXTURES, Damaged, TABLE_FIXTURES, bytes, scan_damaged, source};
use vmrescue::io::ReadAt;
use vmrescue::layers::partition;

const LIMIT: Duration = Duration::from_secs(20);

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A header to damage: its name, where it is and how long.
#[derive(Debug, Clone)]
struct Region {
    what: String,
    at: u64,
    len: u64,
    /// Whether a checksum covers it, so that any change must be reported.
    checked: bool,
}

fn region(what: impl Into<String>, at: u64, len: u64, checked: bool) -> Region {
    Region {
        what: what.into(),
        at,
        len,
        checked,
    }
}

/// The MBR's partition entries and the EBRs of the chain (found here with
/// a parser of its own, bounded).
fn mbr_regions(src: &dyn ReadAt) -> Vec<Region> {
    let s0 = bytes(src, 0, 512);
    if s0[510..512] != [0x55, 0xaa] {
        return Vec::new();
    }
    let mut out = vec![region("MBR partition table", 446, 66, false)];
    for i in 0..4 {
        let e = &s0[446 + 16 * i..462 + 16 * i];
        if matches!(e[4], 0x05 | 0x0f | 0x85) {
            let first = le32(e, 8);
            let mut this = first;
            for _ in 0..64 {
                let ebr = bytes(src, this * 512, 512);
                out.push(region(
                    format!("EBR at sector {this}"),
                    this * 512 + 446,
                    66,
                    false,
                ));
                let link = &ebr[446 + 16..462 + 16];
                if !matches!(link[4], 0x05 | 0x0f | 0x85) || le32(link, 12) == 0 {
                    break;
                }
                this = first + le32(link, 8);
            }
        }
    }
    out
}

/// GPT headers and the used parts of their entry arrays.
fn gpt_regions(src: &dyn ReadAt) -> Vec<Region> {
    let mut out = Vec::new();
    for ss in [512u64, 4096] {
        if src.size() < 3 * ss || bytes(src, ss, 8) != b"EFI PART" {
            continue;
        }
        let last = src.size() / ss - 1;
        for (which, lba) in [("primary", 1), ("backup", last)] {
            let h = bytes(src, lba * ss, 92);
            out.push(region(format!("{which} GPT header"), lba * ss, 92, true));
            let entries = le64(&h, 72) * ss;
            let n = le32(&h, 80);
            let size = le32(&h, 84);
            let array = bytes(src, entries, (n * size) as usize);
            let used = array
                .chunks(size as usize)
                .rposition(|e| e[..16].iter().any(|&b| b != 0))
                .map_or(0, |i| i as u64 + 1);
            out.push(region(
                format!("{which} GPT entries"),
                entries,
                used * size,
                true,
            ));
        }
    }
    out
}

/// LVM label, pv_header, mda header and the current metadata text of a PV at `pv`.
fn lvm_regions(src: &dyn ReadAt, pv: u64) -> Vec<Region> {
    let mut out = Vec::new();
    for sector in 0..4u64 {
        let label = bytes(src, pv + sector * 512, 512);
        if &label[..8] != b"LABELONE" {
            continue;
        }
        let at = pv + sector * 512;
        // LABELONE and sector_xl are not covered by the label's CRC.
        out.push(region("LVM label (magic)", at, 16, false));
        out.push(region("LVM label header", at + 16, 16, true));
        let pvh = le32(&label, 20) as usize;
        out.push(region("LVM pv_header", at + pvh as u64, 40, true));
        // Disk areas then metadata areas: (offset, size) pairs ended by zeros.
        let mut i = pvh + 40;
        while le64(&label, i) != 0 {
            i += 16;
        }
        i += 16;
        let mda = le64(&label, i);
        if mda == 0 {
            break;
        }
        let mda_at = pv + mda;
        let h = bytes(src, mda_at, 512);
        out.push(region("LVM mda_header", mda_at, 40 + 24, true));
        let text_off = le64(&h, 40);
        let text_len = le64(&h, 48);
        if text_len > 0 {
            out.push(region(
                "LVM metadata text",
                mda_at + text_off,
                text_len,
                true,
            ));
        }
        break;
    }
    out
}

/// Everything to damage in fixture `name`.
fn regions(name: &str, src: &dyn ReadAt) -> Vec<Region> {
    let mut out = mbr_regions(src);
    out.extend(gpt_regions(src));
    let layout = partition_support::layout_of(&common::fixture(name));
    for v in &layout.volumes {
        if v.content.kind == vmrescue::layers::ContentKind::LvmPv
            && let Some(seg) = v.mapping.segments().first()
            && let vmrescue::io::Target::Linear(a) = &seg.target
        {
            out.extend(lvm_regions(src, a.offset));
        }
    }
    out
}

fn damaged(base: &Arc<dyn ReadAt>, size: u64, patches: Vec<(u64, Vec<u8>)>) -> Damaged {
    Damaged::new(base, size, patches)
}

fn names_file(problems: &[String], path: &Path) -> bool {
    let p = path.display().to_string();
    problems.iter().any(|l| l.starts_with(&p))
}

fn truncate_everywhere(name: &str) -> usize {
    let (path, src) = source(name);
    let size = src.size();
    let mut points = vec![
        0,
        1,
        100,
        511,
        512,
        513,
        1024,
        4095,
        4096,
        65536,
        1 << 20,
        size / 2,
        size - 1,
    ];
    for r in regions(name, &*src) {
        points.extend([
            r.at,
            r.at + 1,
            r.at + r.len / 2,
            r.at + r.len.saturating_sub(1),
            r.at + r.len,
        ]);
    }
    points.retain(|&p| p < size);
    points.sort_unstable();
    points.dedup();
    // Bytes up to here are in use: partitions, or the GPT backup at the end,
    // or the whole disk when there is no table. Cutting the unused tail
    // after the last MBR partition loses nothing and need not be reported.
    let in_use = match table_of(&*src) {
        Some(t) if t.scheme == partition::Scheme::Dos => {
            t.partitions.iter().map(|p| p.end()).max().unwrap_or(512)
        }
        _ => size,
    };
    for &t in &points {
        let what = format!("{name} truncated to {t} bytes");
        let problems = scan_damaged(&path, damaged(&src, t, Vec::new()), &what, LIMIT);
        if t < in_use {
            assert!(
                names_file(&problems, &path),
                "{what}: no problem names the file; problems: {problems:?}"
            );
        }
    }
    points.len()
}

#[test]
fn truncated_partition_table_fixtures_list_problems() {
    let mut cases = 0;
    for name in TABLE_FIXTURES {
        cases += truncate_everywhere(name);
    }
    assert!(cases > 100, "only {cases} cases");
}

#[test]
fn truncated_whole_disk_fixtures_list_problems() {
    let mut cases = 0;
    for name in BARE_FIXTURES {
        cases += truncate_everywhere(name);
    }
    assert!(cases > 40, "only {cases} cases");
}

/// The undamaged table of a fixture, for comparing a damaged one's fallback.
fn table_of(src: &dyn ReadAt) -> Option<partition::Table> {
    partition::read(src).expect("undamaged table")
}

/// Flip each byte of each region (every byte of small headers, a sample of
/// large ones), with two different masks, and check what the scan says.
fn flip_everywhere(name: &str) -> usize {
    let (path, src) = source(name);
    let size = src.size();
    let original = table_of(&*src);
    let regions = regions(name, &*src);
    assert!(!regions.is_empty(), "{name}: no headers found to damage");
    let mut cases = 0;
    for r in &regions {
        let step = if r.len > 600 { r.len / 97 + 1 } else { 1 };
        let mut at = r.at;
        while at < r.at + r.len {
            let old = bytes(&*src, at, 1)[0];
            for mask in [0xffu8, 0x01] {
                let what = format!(
                    "{name}: {} byte {} (at {at}) ^ {mask:#04x}",
                    r.what,
                    at - r.at
                );
                let d = damaged(&src, size, vec![(at, vec![old ^ mask])]);
                let table = partition::read(&d);
                let problems = scan_damaged(&path, d, &what, LIMIT);
                cases += 1;
                if r.checked {
                    assert!(
                        names_file(&problems, &path),
                        "{what}: a checksummed structure changed and nothing was said: {problems:?}"
                    );
                }
                if r.what.contains("GPT") {
                    // Primary damaged: the backup gives the same partitions, and vice versa.
                    let t = table
                        .unwrap_or_else(|e| panic!("{what}: {e}"))
                        .expect("a table");
                    assert_eq!(
                        t.partitions,
                        original.as_ref().expect("original table").partitions,
                        "{what}: partitions differ from the undamaged disk's"
                    );
                    let want = if r.what.starts_with("backup") {
                        "backup"
                    } else {
                        "primary"
                    };
                    assert!(
                        problems
                            .iter()
                            .any(|p| p.contains(want) && p.contains("byte")),
                        "{what}: no problem about the {want} GPT with its byte offset: {problems:?}"
                    );
                }
                if r.what.starts_with("MBR") || r.what.starts_with("EBR") {
                    check_consistent(
                        &what,
                        &path,
                        &problems,
                        size,
                        &d_table(&src, size, at, old ^ mask),
                    );
                }
            }
            at += step;
        }
    }
    cases
}

fn d_table(
    src: &Arc<dyn ReadAt>,
    size: u64,
    at: u64,
    byte: u8,
) -> vmrescue::Result<Option<partition::Table>> {
    partition::read(&damaged(src, size, vec![(at, vec![byte])]))
}

/// A table read from damaged bytes may differ, but what it says must hold:
/// partitions past the disk's end or overlapping each other are reported.
fn check_consistent(
    what: &str,
    path: &Path,
    problems: &[String],
    size: u64,
    table: &vmrescue::Result<Option<partition::Table>>,
) {
    let Ok(Some(t)) = table else {
        if table.is_err() {
            assert!(
                names_file(problems, path),
                "{what}: error not listed: {problems:?}"
            );
        }
        return;
    };
    let reported = names_file(problems, path);
    for p in &t.partitions {
        if p.size > 0 && p.end() > size {
            assert!(
                reported,
                "{what}: p{} ends past the disk and nothing was said",
                p.number
            );
        }
    }
    let real: Vec<_> = t
        .partitions
        .iter()
        .filter(|p| !p.extended && p.size > 0)
        .collect();
    for (i, a) in real.iter().enumerate() {
        for b in &real[i + 1..] {
            if a.start < b.end() && b.start < a.end() {
                assert!(
                    reported,
                    "{what}: p{} and p{} overlap and nothing was said",
                    a.number, b.number
                );
            }
        }
    }
}

#[test]
fn flipped_bytes_in_mbr_and_ebrs() {
    let mut cases = 0;
    for name in ["part-mbr", "part-mbr-0f"] {
        cases += flip_everywhere(name);
    }
    assert!(cases > 1000, "only {cases} cases");
}

#[test]
fn flipped_bytes_in_gpt_headers_and_entries() {
    let mut cases = 0;
    for name in ["part-gpt", "part-gpt-4k"] {
        cases += flip_everywhere(name);
    }
    assert!(cases > 1000, "only {cases} cases");
}

#[test]
fn flipped_bytes_in_the_demo_disk_mbr_and_lvm_headers() {
    let cases = flip_everywhere("demo");
    assert!(cases > 300, "only {cases} cases");
    let (_, src) = source("demo");
    let names: Vec<String> = regions("demo", &*src).into_iter().map(|r| r.what).collect();
    for want in [
        "MBR partition table",
        "LVM label header",
        "LVM pv_header",
        "LVM mda_header",
        "LVM metadata text",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "demo: {want} not damaged (regions: {names:?})"
        );
    }
}

#[test]
fn flipped_bytes_in_a_whole_disk_pv() {
    let cases = flip_everywhere("bare-pv");
    assert!(cases > 200, "only {cases} cases");
}

#[test]
fn ebr_chain_that_loops_is_reported() {
    // Point the second EBR's link back at the first EBR.
    let (path, src) = source("part-mbr");
    let s0 = bytes(&*src, 0, 512);
    let first = le32(&s0[446 + 16..462 + 16], 8); // p2 is the extended partition
    let ebr1 = bytes(&*src, first * 512, 512);
    let second = first + le32(&ebr1[462..478], 8);
    let mut link = bytes(&*src, second * 512 + 462, 16);
    link[8..12].copy_from_slice(&0u32.to_le_bytes());
    let d = damaged(&src, src.size(), vec![(second * 512 + 462, link)]);
    let problems = scan_damaged(&path, d, "looping EBR chain", LIMIT);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("loops back") && p.contains(&format!("byte {}", first * 512))),
        "{problems:?}"
    );
}

#[test]
fn long_ebr_chain_on_a_huge_sparse_disk_is_bounded() {
    // An extended partition whose EBRs each link one sector further, over a
    // 2 TiB disk: must stop quickly, not walk four billion sectors.
    let mut mbr = vec![0u8; 512];
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let e = 446;
    mbr[e + 4] = 0x05;
    mbr[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[e + 12..e + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut patches = vec![(0u64, mbr)];
    for k in 0..20_000u64 {
        let mut ebr = vec![0u8; 512];
        ebr[510] = 0x55;
        ebr[511] = 0xaa;
        // An empty first entry, and a link to the next sector.
        ebr[462 + 4] = 0x05;
        ebr[462 + 8..462 + 12].copy_from_slice(&((k + 1) as u32).to_le_bytes());
        ebr[462 + 12..462 + 16].copy_from_slice(&1u32.to_le_bytes());
        patches.push(((2048 + k) * 512, ebr));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(2 << 40).unwrap();
    drop(f);
    let base: Arc<dyn ReadAt> = Arc::new(vmrescue::io::FileSource::open(&path).unwrap());
    let size = base.size();
    let problems = scan_damaged(
        &path,
        damaged(&base, size, patches),
        "long EBR chain",
        LIMIT,
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("EBR chain") && p.contains("longer than")),
        "the chain was not cut short: {problems:?}"
    );
}
