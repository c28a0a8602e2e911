//! LVM2 against lvm2 itself: the fixtures from `tests/fixtures/make/lvm.sh`
//! are compared with the `lvs`/`pvs`/`vgs` reports lvm2 wrote beside them,
//! LVs are read byte for byte through our mapping, damaged metadata areas
//! fall back to the other copy, and the `layers` command shows it all.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as J;
use vmrescue::image::{self, Image, ImageFormat};
use vmrescue::io::{Area, ReadAt, Target};
use vmrescue::layers::lvm::{INITIAL_CRC, SegmentArea, VolumeGroup, calc_crc};
use vmrescue::layers::{self, Layout, VolumeId, VolumeKind};

fn open(names: &[&str]) -> Vec<Image> {
    names
        .iter()
        .map(|n| image::open(&common::fixture(n)).expect("open fixture"))
        .collect()
}

fn scan(names: &[&str]) -> Layout {
    layers::scan(open(names))
}

/// The rows of an lvm2 JSON report (`report[0][key]`).
fn rows(file: &str, key: &str) -> Vec<BTreeMap<String, String>> {
    let doc: J = serde_json::from_str(&common::report(file)).expect("report is JSON");
    doc["report"][0][key]
        .as_array()
        .expect("report rows")
        .iter()
        .map(|r| {
            r.as_object()
                .expect("row")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .collect()
}

/// "1048576B" → 1048576.
fn num(s: &str) -> u64 {
    s.trim_end_matches('B')
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s}"))
}

fn group<'a>(l: &'a Layout, name: &str) -> &'a VolumeGroup {
    l.groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no VG {name}; problems: {:?}", l.all_problems()))
}

fn volume_id(l: &Layout, name: &str) -> VolumeId {
    l.volumes
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
        .id
}

/// Compare a VG with lvm2's own reports of the same fixture.
fn check_against_reports(l: &Layout, fixture: &str) {
    let vgs = rows(&format!("{fixture}.vgs.json"), "vg");
    assert_eq!(vgs.len(), 1);
    let vr = &vgs[0];
    let g = group(l, &vr["vg_name"]);
    assert_eq!(g.uuid, vr["vg_uuid"]);
    assert_eq!(g.seqno, num(&vr["vg_seqno"]));
    assert_eq!(g.extent_size, num(&vr["vg_extent_size"]));
    assert_eq!(g.extent_count, num(&vr["vg_extent_count"]), "extent_count");
    assert_eq!(g.free_count, num(&vr["vg_free_count"]), "free_count");
    assert_eq!(g.pvs.len() as u64, num(&vr["pv_count"]));
    assert_eq!(
        g.lvs.iter().filter(|lv| lv.visible).count() as u64,
        num(&vr["lv_count"]),
        "visible LVs"
    );
    let ext = g.extent_size;

    // PVs: by UUID; remember which report device is which of our PVs.
    let mut dev_to_key: BTreeMap<String, String> = BTreeMap::new();
    let pvs = rows(&format!("{fixture}.pvs.json"), "pv");
    for pr in pvs.iter().filter(|p| p["vg_name"] == vr["vg_name"]) {
        let vp = g
            .pvs
            .iter()
            .find(|p| p.uuid == pr["pv_uuid"])
            .unwrap_or_else(|| panic!("PV {} not in our VG", pr["pv_uuid"]));
        let found = vp.found.expect("PV found on the disks");
        let on_disk = &l.pvs[found];
        assert_eq!(on_disk.scan.pv_uuid, pr["pv_uuid"]);
        assert_eq!(on_disk.scan.device_size, num(&pr["dev_size"]));
        assert_eq!(vp.pe_start, num(&pr["pe_start"]));
        assert_eq!(vp.pe_count, num(&pr["pv_pe_count"]));
        dev_to_key.insert(pr["pv_name"].clone(), vp.key.clone());
    }
    assert_eq!(dev_to_key.len(), g.pvs.len());

    // LVs and their segments.
    let lvs = rows(&format!("{fixture}.lvs.json"), "seg");
    let mut by_lv: BTreeMap<String, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
    for r in &lvs {
        by_lv.entry(r["lv_name"].clone()).or_default().push(r);
    }
    let ours: BTreeSet<String> = g
        .lvs
        .iter()
        .map(|lv| {
            if lv.visible {
                lv.name.clone()
            } else {
                format!("[{}]", lv.name)
            }
        })
        .collect();
    let theirs: BTreeSet<String> = by_lv.keys().cloned().collect();
    assert_eq!(ours, theirs, "LV names (hidden ones in brackets)");
    for (shown, segs) in &by_lv {
        let name = shown.trim_start_matches('[').trim_end_matches(']');
        let lv = g.lvs.iter().find(|lv| lv.name == name).unwrap();
        assert_eq!(lv.uuid, segs[0]["lv_uuid"], "{name}");
        assert_eq!(lv.segments.len(), segs.len(), "{name}: segment count");
        let mut total = 0;
        for (s, r) in lv.segments.iter().zip(segs) {
            let what = format!("{name} segment at {}", r["seg_start"]);
            assert_eq!(s.start_extent * ext, num(&r["seg_start"]), "{what}");
            assert_eq!(s.extent_count * ext, num(&r["seg_size"]), "{what}");
            total += num(&r["seg_size"]);
            assert_eq!(s.segtype, r["segtype"], "{what}");
            assert_eq!(s.areas.len() as u64, num(&r["stripes"]), "{what}: stripes");
            assert_eq!(s.stripe_size.unwrap_or(0), num(&r["stripe_size"]), "{what}");
            let ranges: Vec<&str> = r["seg_pe_ranges"].split_whitespace().collect();
            assert_eq!(ranges.len(), s.areas.len(), "{what}: {ranges:?}");
            let striped = s.segtype == "striped" || s.segtype == "linear";
            let per_area = if striped {
                s.extent_count / s.areas.len() as u64
            } else {
                s.extent_count
            };
            for (a, range) in s.areas.iter().zip(ranges) {
                let (dev, span) = range.rsplit_once(':').unwrap();
                let (first, last) = span.split_once('-').unwrap();
                let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
                assert_eq!(last - first + 1, per_area, "{what}: {range}");
                let expected = match dev_to_key.get(dev) {
                    Some(key) => SegmentArea::Pv {
                        key: key.clone(),
                        start_extent: first,
                    },
                    None => SegmentArea::Lv {
                        name: dev.to_string(),
                        start_extent: first,
                    },
                };
                assert_eq!(*a, expected, "{what}");
            }
            // Readable segments map to PV start + pe_start + extent offset.
            let seg = lv
                .mapping
                .segments()
                .iter()
                .find(|m| m.start == s.start_extent * ext)
                .unwrap();
            let areas: Vec<Area> = s
                .areas
                .iter()
                .filter_map(|a| match a {
                    SegmentArea::Pv { key, start_extent } => {
                        let vp = g.pvs.iter().find(|p| &p.key == key).unwrap();
                        let base = l.pvs[vp.found.unwrap()].area;
                        Some(Area {
                            disk: base.disk,
                            offset: base.offset + vp.pe_start + start_extent * ext,
                        })
                    }
                    SegmentArea::Lv { .. } => None,
                })
                .collect();
            match &seg.target {
                Target::Linear(a) => assert_eq!(vec![*a], areas, "{what}"),
                Target::Striped {
                    chunk_size,
                    stripes,
                } => {
                    assert_eq!(*stripes, areas, "{what}");
                    assert_eq!(*chunk_size, num(&r["stripe_size"]), "{what}");
                }
                Target::Unreadable { reason } => {
                    assert!(
                        !striped || lv.snapshot_of.is_some(),
                        "{what}: unreadable: {reason}"
                    );
                }
                Target::Zero => assert_eq!(s.segtype, "zero", "{what}: a zero target"),
                Target::Raid(_) => assert!(
                    s.segtype.starts_with("raid") || s.segtype == "mirror",
                    "{what}: a raid target"
                ),
            }
        }
        assert_eq!(lv.size, total, "{name}: size");
    }
}

/// The marker the fixture script writes in sector `n` of an LV.
fn marker(vg_lv: &str, n: u64) -> Vec<u8> {
    format!("{:<511}\n", format!("VMRESCUE-LVM {vg_lv} SECTOR {n}")).into_bytes()
}

/// Read every sector of `vg_lv` through our mapping and check its marker.
fn check_markers(l: &Layout, vg_lv: &str) {
    let id = volume_id(l, vg_lv);
    let src = l.open_volume(id);
    let size = src.size();
    assert!(size > 0 && size.is_multiple_of(512));
    let mut buf = vec![0u8; size as usize];
    src.read_exact_at(0, &mut buf).expect("read the LV");
    for (n, sector) in buf.chunks(512).enumerate() {
        let want = marker(vg_lv, n as u64);
        assert!(
            sector == want.as_slice(),
            "{vg_lv} sector {n}: found {:?}",
            String::from_utf8_lossy(&sector[..60])
        );
    }
}

#[test]
fn gpt_two_disks_match_lvm2() {
    let l = scan(&["lvm-gpt", "lvm-gpt-disk1"]);
    assert!(l.all_problems().is_empty(), "{:?}", l.all_problems());
    assert_eq!(l.pvs.len(), 3);
    // Two PVs in GPT partitions of the first disk, one whole second disk.
    let mut where_: Vec<(usize, &str)> = l
        .pvs
        .iter()
        .map(|p| (p.area.disk.0, p.volume.as_str()))
        .collect();
    where_.sort();
    assert_eq!(where_, [(0, "p2"), (0, "p3"), (1, "disk1")]);
    check_against_reports(&l, "lvm-gpt");
    let g = &l.groups[0];
    let multi = g.lvs.iter().find(|lv| lv.name == "lv_multi").unwrap();
    let pvs_used: BTreeSet<&str> = multi
        .segments
        .iter()
        .flat_map(|s| &s.areas)
        .map(|a| match a {
            SegmentArea::Pv { key, .. } => key.as_str(),
            SegmentArea::Lv { name, .. } => name.as_str(),
        })
        .collect();
    assert!(multi.segments.len() >= 3 && pvs_used.len() >= 3);
    let striped = g.lvs.iter().find(|lv| lv.name == "lv_striped").unwrap();
    assert!(striped.segments.iter().any(|s| s.areas.len() >= 2));
    for lv in &g.lvs {
        assert!(lv.visible && lv.missing_pvs.is_empty());
        assert!(lv.creation_time.is_some() && lv.creation_host.is_some());
        assert!(lv.status.iter().any(|s| s == "VISIBLE"));
    }
    // The layer tree: LVs are volumes named vg/lv.
    for name in ["lv_multi", "lv_striped", "lv_small", "lv_filler"] {
        let v = l.volume(volume_id(&l, &format!("vmrlvm_gpt/{name}")));
        assert!(matches!(
            &v.kind,
            VolumeKind::LogicalVolume { hidden: false, .. }
        ));
        assert!(v.mapping.unreadable().is_empty());
    }
}

#[test]
fn striped_and_multi_segment_lvs_read_byte_for_byte() {
    let l = scan(&["lvm-gpt", "lvm-gpt-disk1"]);
    check_markers(&l, "vmrlvm_gpt/lv_striped");
    check_markers(&l, "vmrlvm_gpt/lv_multi");
    // The same PVs given in the other order assemble the same way.
    let l = scan(&["lvm-gpt-disk1", "lvm-gpt"]);
    check_markers(&l, "vmrlvm_gpt/lv_striped");
    check_markers(&l, "vmrlvm_gpt/lv_multi");
}

#[test]
fn a_missing_disk_makes_its_lvs_incomplete() {
    let l = scan(&["lvm-gpt"]);
    let g = group(&l, "vmrlvm_gpt");
    let missing: Vec<_> = g.pvs.iter().filter(|p| p.found.is_none()).collect();
    assert_eq!(missing.len(), 1);
    let lost = missing[0];
    // It is the second disk's PV.
    let disk1 = scan(&["lvm-gpt-disk1"]);
    assert_eq!(disk1.pvs[0].scan.pv_uuid, lost.uuid);
    assert!(
        g.problems.iter().any(|p| p
            .to_string()
            .contains(&format!("PV {} (uuid {}", lost.key, lost.uuid))
            && p.to_string().ends_with("is missing")),
        "{:?}",
        g.problems
    );
    // Which LVs lvm2 put on that PV, from its own reports.
    let dev = rows("lvm-gpt.pvs.json", "pv")
        .into_iter()
        .find(|p| p["pv_uuid"] == lost.uuid)
        .unwrap()["pv_name"]
        .clone();
    let needing: BTreeSet<String> = rows("lvm-gpt.lvs.json", "seg")
        .into_iter()
        .filter(|r| {
            r["seg_pe_ranges"]
                .split_whitespace()
                .any(|x| x.starts_with(&format!("{dev}:")))
        })
        .map(|r| r["lv_name"].clone())
        .collect();
    assert!(!needing.is_empty());
    for lv in &g.lvs {
        let v = l.volume(volume_id(&l, &format!("vmrlvm_gpt/{}", lv.name)));
        if needing.contains(&lv.name) {
            assert_eq!(lv.missing_pvs.len(), 1, "{}", lv.name);
            assert!(lv.missing_pvs[0].contains(&lost.uuid));
            let reasons = lv.mapping.unreadable();
            assert!(!reasons.is_empty() && reasons.iter().all(|r| r.contains("is missing")));
            assert!(
                v.problems
                    .iter()
                    .any(|p| p.to_string().starts_with("incomplete: missing PV")
                        && p.to_string().contains(&lost.uuid))
            );
            assert!(!v.is_filesystem());
        } else {
            assert!(
                lv.missing_pvs.is_empty() && lv.mapping.unreadable().is_empty(),
                "{}",
                lv.name
            );
            assert!(v.problems.is_empty());
        }
    }
    // Segments on the PVs that are there still map (partial reads are possible).
    let multi = g.lvs.iter().find(|lv| lv.name == "lv_multi").unwrap();
    assert!(
        multi
            .mapping
            .segments()
            .iter()
            .any(|s| matches!(s.target, Target::Linear(_)))
    );
}

/// Bytes of a file, from a byte offset.
fn file_bytes(path: &std::path::Path, at: u64, len: usize) -> Vec<u8> {
    let img = image::open(path).unwrap();
    let mut b = vec![0u8; len];
    img.source.read_exact_at(at, &mut b).unwrap();
    b
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn wrapped_metadata_matches_lvm2() {
    let l = scan(&["lvm-wrap"]);
    assert!(l.all_problems().is_empty(), "{:?}", l.all_problems());
    check_against_reports(&l, "lvm-wrap");
    check_markers(&l, "vmrlvm_wrap/lv_keep");
    // p1's newest copy really runs past the end of its area (read the raw
    // mda_header here, independently of the reader).
    let p1 = l.pvs.iter().find(|p| p.volume == "p1").unwrap();
    let (mda, mda_size) = p1.scan.metadata_areas[0];
    let h = file_bytes(&common::fixture("lvm-wrap"), p1.area.offset + mda, 512);
    assert_eq!(&h[4..20], b" LVM2 x[5A%r0N*>");
    assert_eq!(u64_at(&h, 32), mda_size);
    let (off, len) = (u64_at(&h, 40), u64_at(&h, 48));
    assert!(
        off + len > mda_size,
        "fixture does not wrap: {off} + {len} <= {mda_size}"
    );
    assert!(
        p1.scan
            .metadata_origin
            .as_deref()
            .unwrap()
            .contains("wrapping")
    );
    assert_eq!(p1.scan.seqno, Some(l.groups[0].seqno));
    // p2 has two metadata areas, the second at its end.
    let p2 = l.pvs.iter().find(|p| p.volume == "p2").unwrap();
    assert_eq!(p2.scan.metadata_areas.len(), 2);
    let (end_mda, end_size) = p2.scan.metadata_areas[1];
    assert_eq!(end_mda + end_size, p2.scan.device_size);
}

/// A disk image with some bytes replaced, read from the fixture underneath.
struct Patched {
    base: Arc<dyn ReadAt>,
    size: u64,
    patches: Vec<(u64, Vec<u8>)>,
}

impl ReadAt for Patched {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.size {
            return Err(vmrescue::io::past_end(offset, buf.len(), self.size));
        }
        self.base.read_exact_at(offset, buf)?;
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= offset && p < end {
                    buf[(p - offset) as usize] = *b;
                }
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.size
    }
}

fn patched(img: &Image, patches: Vec<(u64, Vec<u8>)>) -> Image {
    Image::from_source(
        img.path.clone(),
        Arc::new(Patched {
            base: Arc::clone(&img.source),
            size: img.source.size(),
            patches,
        }),
        ImageFormat::Raw,
    )
}

fn lv_shapes(g: &VolumeGroup) -> Vec<(String, u64, Vec<vmrescue::io::Segment>)> {
    g.lvs
        .iter()
        .map(|lv| (lv.name.clone(), lv.size, lv.mapping.segments().to_vec()))
        .collect()
}

#[test]
fn a_damaged_first_metadata_area_falls_back_to_the_second() {
    let img = open(&["lvm-wrap"]).remove(0);
    let good = layers::scan(vec![img.clone()]);
    let p2 = good.pvs.iter().find(|p| p.volume == "p2").unwrap();
    let (mda0, _) = p2.scan.metadata_areas[0];
    let (mda1, _) = p2.scan.metadata_areas[1];
    let header_at = p2.area.offset + mda0;
    let h = file_bytes(&common::fixture("lvm-wrap"), header_at, 512);
    let text_at = header_at + u64_at(&h, 40);
    let text_len = u64_at(&h, 48);
    let text = file_bytes(&common::fixture("lvm-wrap"), text_at, 64);
    assert!(text.starts_with(b"vmrlvm_wrap {"));
    for (what, at) in [
        ("mda_header", header_at + 100),
        ("metadata text", text_at + text_len / 2),
    ] {
        let orig = file_bytes(&common::fixture("lvm-wrap"), at, 1)[0];
        let l = layers::scan(vec![patched(&img, vec![(at, vec![orig ^ 0x20])])]);
        let pv = l.pvs.iter().find(|p| p.volume == "p2").unwrap();
        assert_eq!(pv.scan.problems.len(), 1, "{what}: {:?}", pv.scan.problems);
        let p = &pv.scan.problems[0].to_string();
        assert!(
            p.starts_with(&format!("mda 0 at byte {mda0} is unusable ("))
                && p.to_string().contains(what)
                && p.to_string()
                    .ends_with(&format!("using mda 1 at byte {mda1}")),
            "{what}: {p}"
        );
        assert!(
            pv.scan
                .metadata_origin
                .as_deref()
                .unwrap()
                .starts_with("mda 1")
        );
        assert_eq!(pv.scan.metadata, p2.scan.metadata);
        assert_eq!(lv_shapes(&l.groups[0]), lv_shapes(&good.groups[0]));
        // The problem reaches the operator, with where it was found.
        assert!(
            l.all_problems()
                .iter()
                .any(|a| a.to_string().contains("PV p2: mda 0"))
        );
    }
}

#[test]
fn the_highest_readable_seqno_wins() {
    let img = open(&["lvm-wrap"]).remove(0);
    let good = layers::scan(vec![img.clone()]);
    let newest = good.groups[0].seqno;
    let p1 = good.pvs.iter().find(|p| p.volume == "p1").unwrap();
    let (mda, mda_size) = p1.scan.metadata_areas[0];
    let header_at = p1.area.offset + mda;
    let area = file_bytes(&common::fixture("lvm-wrap"), header_at, mda_size as usize);
    // Point p1's raw_locn[0] back at an older copy still in its buffer.
    let needle = b"vmrlvm_wrap {\n";
    let mut older: Option<(usize, usize, u64)> = None;
    for start in 512..area.len() - needle.len() {
        if &area[start..start + needle.len()] != needle {
            continue;
        }
        let Some(nul) = area[start..].iter().position(|&b| b == 0) else {
            continue;
        };
        let t = String::from_utf8_lossy(&area[start..start + nul]).to_string();
        let Some(seqno) = t
            .lines()
            .find_map(|l| l.strip_prefix("seqno = "))
            .and_then(|s| s.trim().parse::<u64>().ok())
        else {
            continue;
        };
        if t.contains("\ncontents = ") && seqno < newest && older.is_none_or(|(_, _, s)| seqno > s)
        {
            older = Some((start, nul + 1, seqno));
        }
    }
    let (start, len, seqno) = older.expect("an older copy in the circular buffer");
    let mut h = area[..512].to_vec();
    h[40..48].copy_from_slice(&(start as u64).to_le_bytes());
    h[48..56].copy_from_slice(&(len as u64).to_le_bytes());
    let crc = calc_crc(INITIAL_CRC, &area[start..start + len]);
    h[56..60].copy_from_slice(&crc.to_le_bytes());
    let hcrc = calc_crc(INITIAL_CRC, &h[4..]);
    h[0..4].copy_from_slice(&hcrc.to_le_bytes());
    let l = layers::scan(vec![patched(&img, vec![(header_at, h)])]);
    let pv = l.pvs.iter().find(|p| p.volume == "p1").unwrap();
    assert_eq!(pv.scan.seqno, Some(seqno));
    let g = &l.groups[0];
    assert_eq!(g.seqno, newest);
    assert!(
        g.problems.iter().any(|p| p.to_string().contains(&format!(
            "PV p1 holds older metadata (seqno {seqno}) than PV p2 (seqno {newest})"
        ))),
        "{:?}",
        g.problems
    );
    assert_eq!(lv_shapes(g), lv_shapes(&good.groups[0]));
}

#[test]
fn a_pv_whose_only_metadata_area_is_bad_still_joins_its_vg() {
    let img = open(&["lvm-wrap"]).remove(0);
    let good = layers::scan(vec![img.clone()]);
    let p1 = good.pvs.iter().find(|p| p.volume == "p1").unwrap();
    let at = p1.area.offset + p1.scan.metadata_areas[0].0 + 8;
    let l = layers::scan(vec![patched(&img, vec![(at, vec![b'#'])])]);
    let pv = l.pvs.iter().find(|p| p.volume == "p1").unwrap();
    assert!(pv.scan.metadata.is_none());
    assert!(pv.scan.problems.iter().any(|p| {
        p.to_string()
            .contains("no metadata area of this PV can be read")
    }));
    let g = &l.groups[0];
    assert!(g.pvs.iter().all(|p| p.found.is_some()));
    assert_eq!(lv_shapes(g), lv_shapes(&good.groups[0]));
    check_markers(&l, "vmrlvm_wrap/lv_keep");
}

#[test]
fn other_segment_types_are_listed_but_not_read() {
    let l = scan(&["lvm-types"]);
    assert!(l.all_problems().is_empty(), "{:?}", l.all_problems());
    check_against_reports(&l, "lvm-types");
    let g = group(&l, "vmrlvm_types");
    let types: BTreeSet<&str> = g
        .lvs
        .iter()
        .flat_map(|lv| &lv.segments)
        .map(|s| s.segtype.as_str())
        .collect();
    for t in [
        "thin-pool",
        "thin",
        "raid1",
        "mirror",
        "cache-pool",
        "zero",
        "error",
        "linear",
    ] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }
    for lv in &g.lvs {
        let v = l.volume(volume_id(&l, &format!("vmrlvm_types/{}", lv.name)));
        let VolumeKind::LogicalVolume {
            hidden, segtypes, ..
        } = &v.kind
        else {
            panic!()
        };
        assert_eq!(*hidden, !lv.visible);
        let t = &lv.segments[0].segtype;
        if lv.snapshot_of.is_some() {
            assert_eq!(lv.name, "snap");
            assert!(lv.visible);
            assert!(lv.mapping.unreadable()[0].contains("snapshot of orig"));
        } else if t == "linear" || t == "zero" {
            // `zero` reads as zeros, as lvm2's dm `zero` target does.
            assert!(lv.mapping.unreadable().is_empty(), "{}", lv.name);
        } else if t == "thin" {
            // The pool was never activated: no thin metadata to map it by.
            assert_eq!(
                lv.mapping.unreadable(),
                vec![
                    "thin pool pool: its metadata LV pool_tmeta is blank (the pool was never activated)"
                ]
            );
        } else if t == "raid1" || t == "mirror" {
            // Read through the RAID reader from the images (never activated:
            // no dm-raid superblocks, nothing judged stale).
            assert!(lv.mapping.unreadable().is_empty(), "{}", lv.name);
            assert!(matches!(lv.mapping.segments()[0].target, Target::Raid(_)));
        } else if t == "cache-pool" {
            assert!(
                lv.mapping.unreadable()[0].starts_with("cache pool: holds dm-cache metadata"),
                "{:?}",
                lv.mapping.unreadable()
            );
        } else {
            assert_eq!(
                lv.mapping.unreadable(),
                vec![format!("segment type {t} is not readable yet").as_str()],
                "{}",
                lv.name
            );
            assert_eq!(segtypes, &vec![t.clone()]);
            assert_eq!(v.content.kind, vmrescue::layers::ContentKind::Unreadable);
        }
        assert!(!v.is_filesystem());
    }
    for hidden in [
        "pool_tmeta",
        "pool_tdata",
        "r1_rimage_0",
        "r1_rmeta_1",
        "m1_mimage_0",
        "cpool_cdata",
    ] {
        assert!(
            !g.lvs.iter().find(|lv| lv.name == hidden).unwrap().visible,
            "{hidden}"
        );
    }
}

#[test]
fn layers_command_shows_the_vg_across_disks() {
    let d0 = common::fixture("lvm-gpt");
    let d1 = common::fixture("lvm-gpt-disk1");
    let (d0, d1) = (d0.to_str().unwrap(), d1.to_str().unwrap());
    let out = common::vmrescue(&["layers", d0, "--disk", d1]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for word in [
        "vmrlvm_gpt",
        "volume group, 3 PVs",
        "lv_multi",
        "lv_striped",
        "lv_small",
        "lv_filler",
        "striped, 2 segments",
        "linear, 4 segments",
    ] {
        assert!(stdout.contains(word), "{word} not in\n{stdout}");
    }
    assert!(
        !stdout.contains("unreadable") && stderr.is_empty(),
        "{stdout}\n{stderr}"
    );

    let out = common::vmrescue(&["layers", d0, "--disk", d1, "--json"]);
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    let vg = doc["disks"][0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["children"].as_array().unwrap())
        .find(|n| n["kind"] == "vg" && n["children"].as_array().is_some_and(|c| !c.is_empty()))
        .expect("the VG node");
    let lvs: BTreeSet<&str> = vg["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["volume"].as_str().unwrap())
        .collect();
    assert_eq!(
        lvs,
        BTreeSet::from([
            "vmrlvm_gpt/lv_multi",
            "vmrlvm_gpt/lv_striped",
            "vmrlvm_gpt/lv_small",
            "vmrlvm_gpt/lv_filler"
        ])
    );

    // Without the second disk: the LVs on it are incomplete, naming the PV.
    let lost = scan(&["lvm-gpt-disk1"]).pvs[0].scan.pv_uuid.clone();
    let out = common::vmrescue(&["layers", d0]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("PV(s) missing"), "{stdout}");
    for lv in ["lv_multi", "lv_striped"] {
        let line = stdout.lines().find(|l| l.contains(lv)).unwrap();
        assert!(
            line.contains("unreadable") && line.contains(&lost),
            "{line}"
        );
        assert!(
            stderr.lines().any(
                |l| l.contains(&format!("vmrlvm_gpt/{lv}: incomplete: missing PV"))
                    && l.contains(&lost)
            ),
            "{stderr}"
        );
    }
    for lv in ["lv_small", "lv_filler"] {
        let line = stdout.lines().find(|l| l.contains(lv)).unwrap();
        assert!(!line.contains("unreadable"), "{line}");
    }
}

/// Run lvm2 on `dev` only, without device-mapper, leaving no backup files.
fn lvm_on(dev: &str, cmd: &str, args: &[&str]) {
    let o = std::process::Command::new("lvm")
        .arg(cmd)
        .args(["--devices", dev, "--driverloaded", "n"])
        .args(["--config", "backup{backup=0 archive=0}"])
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .expect("run lvm (Debian package lvm2)");
    assert!(
        o.status.success(),
        "lvm {cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A loop device, detached when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

fn attach(file: &std::path::Path) -> Loop {
    let o = std::process::Command::new("losetup")
        .args(["-f", "--show", file.to_str().unwrap()])
        .output()
        .expect("run losetup (Debian package mount)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Loop(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[test]
fn two_vgs_of_the_same_name_are_each_shown_with_their_own_lvs() {
    // Disks of two guests installed alike: both VGs are called vg_same.
    // Each VG node lists its own LVs, under its own disk.
    common::require_root("loop devices for lvm2");
    let tmp = tempfile::tempdir().unwrap();
    let mut disks = Vec::new();
    for (i, lvs) in [&["root"][..], &["root", "other"][..]].iter().enumerate() {
        let file = tmp.path().join(format!("same{i}.img"));
        std::fs::File::create(&file)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let dev = attach(&file);
        lvm_on(&dev.0, "pvcreate", &[&dev.0]);
        lvm_on(&dev.0, "vgcreate", &["-s", "1m", "vg_same", &dev.0]);
        for (j, lv) in lvs.iter().enumerate() {
            let size = format!("{}m", 2 + i * 3 + j);
            lvm_on(
                &dev.0,
                "lvcreate",
                &["-an", "-Zn", "-L", &size, "-n", lv, "vg_same"],
            );
        }
        // An ext4 in root (extent 0, at pe_start), to be named by its UUID.
        let pvs = std::process::Command::new("lvm")
            .args(["pvs", "--devices", &dev.0, "--driverloaded", "n"])
            .args([
                "--noheadings",
                "--units",
                "b",
                "--nosuffix",
                "-o",
                "pe_start",
            ])
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .expect("run lvm pvs");
        let pe_start = String::from_utf8_lossy(&pvs.stdout).trim().to_string();
        drop(dev);
        let o = std::process::Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-U"])
            .arg(format!("5a3e0000-0000-4000-8000-00000000000{i}"))
            .arg("-E")
            .arg(format!("offset={pe_start}"))
            .arg(&file)
            .arg("2048")
            .output()
            .expect("run mke2fs (Debian package e2fsprogs)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        disks.push(file);
    }
    let (d0, d1) = (disks[0].to_str().unwrap(), disks[1].to_str().unwrap());
    let out = common::vmrescue(&["layers", d0, "--disk", d1, "--json"]);
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    let lvs_under = |disk: usize| -> Vec<(String, u64)> {
        let vgs = doc["disks"][disk]["children"].as_array().unwrap();
        assert_eq!(vgs.len(), 1, "disk {disk}: {vgs:?}");
        assert_eq!(vgs[0]["name"], "vg_same");
        vgs[0]["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap().to_string(),
                    n["size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(lvs_under(0), [("root".to_string(), 2 << 20)]);
    assert_eq!(
        lvs_under(1),
        [
            ("root".to_string(), 5 << 20),
            ("other".to_string(), 6 << 20)
        ]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another VG has the same name"), "{stderr}");
    // vg_same/root names both: the error says how to name each one.
    let out = common::vmrescue(&["ls", d0, "--disk", d1, "--volume", "vg_same/root", "/"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "is ambiguous: vg_same/root (on same0.img; name it UUID=5a3e0000-0000-4000-8000-000000000000), \
             vg_same/root (on same1.img; name it UUID=5a3e0000-0000-4000-8000-000000000001)"
        ),
        "{stderr}"
    );
    let out = common::vmrescue(&[
        "ls",
        d0,
        "--disk",
        d1,
        "--volume",
        "UUID=5a3e0000-0000-4000-8000-000000000001",
        "/",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lost+found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pv_without_its_vg_metadata_says_where_the_vg_is() {
    // PVs whose own metadata areas hold no copy of the VG's metadata
    // (--pvmetadatacopies 0, or areas left ignored by --vgmetadatacopies 1),
    // opened without the VG's other disks, say why no VG is shown.
    common::require_root("loop devices for lvm2");
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..5)
        .map(|i| {
            let f = tmp.path().join(format!("pv{i}.img"));
            std::fs::File::create(&f)
                .unwrap()
                .set_len(16 << 20)
                .unwrap();
            f
        })
        .collect();
    {
        let devs: Vec<Loop> = files.iter().map(|f| attach(f)).collect();
        let d: Vec<&str> = devs.iter().map(|l| l.0.as_str()).collect();
        let two = format!("{},{}", d[0], d[1]);
        lvm_on(&two, "pvcreate", &[d[0]]);
        lvm_on(&two, "pvcreate", &["--pvmetadatacopies", "0", d[1]]);
        lvm_on(&two, "vgcreate", &["vg_nomda", d[0], d[1]]);
        let three = format!("{},{},{}", d[2], d[3], d[4]);
        lvm_on(&three, "pvcreate", &[d[2], d[3], d[4]]);
        lvm_on(
            &three,
            "vgcreate",
            &["--vgmetadatacopies", "1", "vg_ignored", d[2], d[3]],
        );
    }
    let layers = |f: &std::path::Path| {
        let out = common::vmrescue(&["layers", f.to_str().unwrap()]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = layers(&files[1]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("has no metadata area (made with --metadatacopies 0)")
            && stderr.contains("open their disks too (--disk)"),
        "{stderr}"
    );
    // With the other disk, the VG is there and nothing is amiss.
    let out = common::vmrescue(&[
        "layers",
        files[1].to_str().unwrap(),
        "--disk",
        files[0].to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("vg_nomda"), "{stdout}");
    // One of vg_ignored's two PVs keeps the metadata, the other's area is ignored.
    let both = [layers(&files[2]), layers(&files[3])];
    let ignored = both
        .iter()
        .filter(|(_, e)| {
            e.contains("metadata areas hold no copy of the VG's metadata (marked ignored)")
        })
        .count();
    assert_eq!(ignored, 1, "{both:?}");
    // A PV in no VG is no problem.
    let (code, stderr) = layers(&files[4]);
    assert_eq!(code, Some(0), "{stderr}");
}
