//! LVM-thin against lvm2 and thin-provisioning-tools: the fixture from
//! `tests/fixtures/make/thin.sh` (VG metadata by `vgcfgrestore`, pool
//! metadata by `thin_restore`, checked by `thin_check`) read through our
//! thin mapping: files by SHA-256, unprovisioned blocks as zeros, our
//! metadata parser against `thin_dump` of the same bytes, and damaged
//! metadata as problems.

use crate::common;

use std::collections::BTreeMap;

use serde_json::Value as J;
use vmrescue::image;
use vmrescue::io::{ReadAt, Target};
use vmrescue::layers::lvm::thin::format::Metadata;
use vmrescue::layers::{self, Layout, VolumeId};

fn scan_path(p: &std::path::Path) -> Layout {
    layers::scan(vec![image::open(p).expect("open fixture")])
}

fn scan() -> Layout {
    scan_path(&common::fixture("thin"))
}

fn volume_id(l: &Layout, name: &str) -> VolumeId {
    l.volumes
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
        .id
}

fn read_all(l: &Layout, name: &str) -> Vec<u8> {
    let src = l.open_volume(volume_id(l, name));
    let mut buf = vec![0u8; src.size() as usize];
    src.read_exact_at(0, &mut buf).expect("read volume");
    buf
}

#[test]
fn thin_lvs_are_listed_like_lvs_and_readable() {
    let l = scan();
    assert!(l.all_problems().is_empty(), "{:?}", l.all_problems());
    let g = l.groups.iter().find(|g| g.name == "vmrthin").unwrap();
    // lvm2's own report of the same metadata.
    let doc: J = serde_json::from_str(&common::report("thin.lvs.json")).unwrap();
    let rows = doc["report"][0]["seg"].as_array().unwrap();
    let report: BTreeMap<String, (String, String)> = rows
        .iter()
        .filter(|r| r["segtype"] == "thin")
        .map(|r| {
            (
                r["lv_name"].as_str().unwrap().to_string(),
                (
                    r["pool_lv"].as_str().unwrap().to_string(),
                    r["thin_id"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(
        report.keys().map(String::as_str).collect::<Vec<_>>(),
        ["snap1", "thin1", "thin2"]
    );
    // Every thin id lvm2 reports is a device of the pool's metadata.
    let dump = std::fs::read_to_string(common::fixture_file("thin.dump.xml")).unwrap();
    for (pool, id) in report.values() {
        assert_eq!(pool, "pool");
        assert!(dump.contains(&format!("dev_id=\"{id}\"")), "{id}");
    }
    for name in ["thin1", "thin2", "snap1"] {
        let lv = g.lvs.iter().find(|lv| lv.name == name).unwrap();
        assert!(lv.visible, "{name}");
        assert!(
            lv.mapping.unreadable().is_empty(),
            "{name}: {:?}",
            lv.mapping.unreadable()
        );
        assert_eq!(lv.mapping.size(), lv.size);
        // Only linear runs on the disk and zeros.
        assert!(
            lv.mapping
                .segments()
                .iter()
                .all(|s| matches!(s.target, Target::Linear(_) | Target::Zero)),
            "{name}"
        );
    }
    for hidden in ["pool_tmeta", "pool_tdata", "lvol0_pmspare"] {
        assert!(!g.lvs.iter().find(|lv| lv.name == hidden).unwrap().visible);
    }
    let v = l.volume(volume_id(&l, "vmrthin/thin1"));
    assert!(v.is_filesystem());
    assert_eq!(v.content.label.as_deref(), Some("thinfs"));

    // `vmrescue layers` shows them, with their filesystems.
    let out = common::vmrescue(&["layers", common::fixture("thin").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in ["thin1", "thin2", "snap1"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("─{want} ")))
            .unwrap_or_else(|| panic!("{want} not in\n{text}"));
        assert!(line.contains("thin"), "{line}");
        if want != "thin2" {
            assert!(line.contains("ext4"), "{line}");
        }
    }
}

#[test]
fn files_of_thin_lv_and_snapshot_match_their_sha256() {
    let img = common::fixture("thin");
    let sums = std::fs::read_to_string(common::fixture_file("thin.sha256")).unwrap();
    let mut n = 0;
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let (lv, inner) = path.split_once('/').unwrap();
        let out = common::vmrescue(&[
            "cat",
            img.to_str().unwrap(),
            "--volume",
            &format!("vmrthin/{lv}"),
            &format!("/{inner}"),
        ]);
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        use sha2::Digest;
        let got: String = sha2::Sha256::digest(&out.stdout)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, sum, "{path}");
        n += 1;
    }
    assert_eq!(n, 6);
    // The snapshot's note differs from the origin's, the rest is shared.
    let note = |lv| {
        sums.lines()
            .find(|l| l.ends_with(&format!("{lv}/note.txt")))
            .unwrap()
            .split_once(' ')
            .unwrap()
            .0
            .to_string()
    };
    assert_ne!(note("thin1"), note("snap1"));
}

#[test]
fn unprovisioned_blocks_read_as_zeros() {
    let l = scan();
    let data = read_all(&l, "vmrthin/thin2");
    assert_eq!(data.len(), 8 << 20);
    let bs = 65536;
    for (block, chunk) in data.chunks(bs).enumerate() {
        if [10, 11, 12, 100].contains(&block) {
            for (i, sector) in chunk.chunks(512).enumerate() {
                let n = block * 128 + i;
                let want = format!("{:<511}\n", format!("VMRESCUE-THIN dev2 SECTOR {n}"));
                assert_eq!(sector, want.as_bytes(), "thin2 sector {n}");
            }
        } else {
            // The pool's unused blocks hold 0xaa: zeros come from the mapping.
            assert!(
                chunk.iter().all(|&b| b == 0),
                "thin2 block {block} is not zeros"
            );
        }
    }
    // thin1's filesystem image has unprovisioned blocks too (zeros).
    let lv = l.groups[0]
        .lvs
        .iter()
        .find(|lv| lv.name == "thin1")
        .unwrap();
    assert!(
        lv.mapping
            .segments()
            .iter()
            .any(|s| s.target == Target::Zero)
    );
}

/// Our parser's view of the metadata, printed the way `thin_dump` prints it.
fn dump(meta: &dyn ReadAt) -> String {
    let md = Metadata::new(meta);
    let sb = md.superblock().unwrap();
    let mut s = format!(
        "<superblock uuid=\"\" time=\"{}\" transaction=\"{}\" flags=\"{}\" version=\"{}\" data_block_size=\"{}\" nr_data_blocks=\"{}\">\n",
        sb.time, sb.trans_id, sb.flags, sb.version, sb.data_block_size, sb.nr_data_blocks
    );
    let (devices, damage) = md.devices(&sb);
    assert!(damage.is_empty(), "{damage:?}");
    let (roots, damage) = md.device_roots(&sb);
    assert!(damage.is_empty(), "{damage:?}");
    for d in devices {
        s.push_str(&format!(
            "  <device dev_id=\"{}\" mapped_blocks=\"{}\" transaction=\"{}\" creation_time=\"{}\" snap_time=\"{}\">\n",
            d.dev_id, d.mapped_blocks, d.transaction_id, d.creation_time, d.snapshotted_time
        ));
        let map = md.device_map(d.dev_id, roots[&d.dev_id], 1 << 20);
        assert!(map.damage.is_empty(), "{:?}", map.damage);
        for r in map.runs {
            if r.len == 1 {
                s.push_str(&format!(
                    "    <single_mapping origin_block=\"{}\" data_block=\"{}\" time=\"{}\"/>\n",
                    r.virt, r.data, r.time
                ));
            } else {
                s.push_str(&format!(
                    "    <range_mapping origin_begin=\"{}\" data_begin=\"{}\" length=\"{}\" time=\"{}\"/>\n",
                    r.virt, r.data, r.len, r.time
                ));
            }
        }
        s.push_str("  </device>\n");
    }
    s.push_str("</superblock>\n");
    s
}

#[test]
fn parser_matches_thin_dump() {
    let l = scan();
    let meta = l.open_volume(volume_id(&l, "vmrthin/pool_tmeta"));
    let want = std::fs::read_to_string(common::fixture_file("thin.dump.xml")).unwrap();
    assert_eq!(dump(&*meta), want);
}

/// Byte position on the image of block `nr` of the pool's metadata LV.
fn meta_block_at(l: &Layout, nr: u64) -> u64 {
    let v = l.volume(volume_id(l, "vmrthin/pool_tmeta"));
    let loc = v.mapping.locate(nr * 4096).unwrap().unwrap();
    loc.area.offset
}

fn flip(path: &std::path::Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).unwrap();
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn a_damaged_mapping_node_is_a_problem_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let img = common::fixture_copy("thin", dir.path());
    let l = scan_path(&img);
    // Find device 1's tree by hand: superblock → top-level leaf → value.
    let meta = l.open_volume(volume_id(&l, "vmrthin/pool_tmeta"));
    let mut sb = vec![0u8; 4096];
    meta.read_exact_at(0, &mut sb).unwrap();
    let top = le64(&sb, 320);
    let mut node = vec![0u8; 4096];
    meta.read_exact_at(top * 4096, &mut node).unwrap();
    assert_eq!(
        u32::from_le_bytes(node[4..8].try_into().unwrap()),
        2,
        "top level is one leaf"
    );
    let max = u32::from_le_bytes(node[20..24].try_into().unwrap()) as usize;
    assert_eq!(le64(&node, 32), 1, "first key is device 1");
    let root1 = le64(&node, 32 + 8 * max);
    flip(&img, meta_block_at(&l, root1) + 100);

    let l = scan_path(&img);
    let g = &l.groups[0];
    let lv = |n: &str| g.lvs.iter().find(|lv| lv.name == n).unwrap();
    let bad = lv("thin1").mapping.unreadable();
    assert!(!bad.is_empty());
    assert!(
        bad[0].contains(&format!("block {root1}")) && bad[0].contains("bad checksum"),
        "{bad:?}"
    );
    let problems: Vec<String> = l.all_problems().iter().map(|p| p.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("thin1") && p.contains("bad checksum")),
        "{problems:?}"
    );
    assert!(lv("thin2").mapping.unreadable().is_empty());
    assert!(lv("snap1").mapping.unreadable().is_empty());
    let out = common::vmrescue(&["layers", img.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad checksum"), "{text}");

    // A damaged superblock: every thin LV unreadable, the pool says why.
    flip(&img, meta_block_at(&l, 0) + 3000);
    let l = scan_path(&img);
    let g = &l.groups[0];
    for name in ["thin1", "thin2", "snap1"] {
        let lv = g.lvs.iter().find(|lv| lv.name == name).unwrap();
        let bad = lv.mapping.unreadable();
        assert!(
            bad.len() == 1 && bad[0].contains("thin superblock") && bad[0].contains("bad checksum"),
            "{name}: {bad:?}"
        );
    }
    assert!(
        g.problems
            .iter()
            .any(|p| p.to_string().contains("thin pool pool")),
        "{:?}",
        g.problems
    );
}

/// `name="value"` of an XML line of thin_dump.
fn attr(line: &str, name: &str) -> u64 {
    let key = format!(" {name}=\"");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {line}"))
        + key.len();
    line[at..].split('"').next().unwrap().parse().unwrap()
}

/// The kernel engine's table for each thin LV (linear through the pool's
/// data LV, zero where unprovisioned) equals the table computed from
/// `thin_dump`'s mappings and lvm2's report of where pool_tdata lies.
#[test]
fn kernel_tables_follow_thin_dump_and_lvs() {
    use vmrescue::engine::kernel::{self, dm};
    let l = scan();
    let ex: Vec<Option<dm::Exposure>> = l
        .disks
        .iter()
        .map(|d| {
            let start = kernel::exposure_start(&l, d.id).ok()?;
            Some(dm::Exposure {
                dev: (7, d.id.0 as u32),
                start,
                size: d.size() - start,
            })
        })
        .collect();
    // The whole-disk PV is exposed from its data area on: extent e is at
    // sector e × extent size of the exposure.
    assert_eq!(ex.len(), 1);
    let doc: J = serde_json::from_str(&common::report("thin.lvs.json")).unwrap();
    let segs = doc["report"][0]["seg"].as_array().unwrap();
    let bytes = |v: &J| -> u64 { v.as_str().unwrap().trim_end_matches('B').parse().unwrap() };
    // pool_tdata: (first byte, bytes, first sector on the exposure).
    let mut tdata: Vec<(u64, u64, u64)> = Vec::new();
    for s in segs.iter().filter(|s| s["lv_name"] == "[pool_tdata]") {
        let range = s["seg_pe_ranges"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .1;
        let (a, b) = range.split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        let ext_sectors = bytes(&s["seg_size"]) / 512 / (b - a + 1);
        tdata.push((
            bytes(&s["seg_start"]),
            bytes(&s["seg_size"]),
            a * ext_sectors,
        ));
    }
    assert_eq!(tdata.len(), 2);
    let dump = std::fs::read_to_string(common::fixture_file("thin.dump.xml")).unwrap();
    let bs = 128; // data_block_size in sectors
    assert!(dump.contains(&format!("data_block_size=\"{bs}\"")));
    for s in segs.iter().filter(|s| s["segtype"] == "thin") {
        let lv = s["lv_name"].as_str().unwrap();
        let id: u64 = s["thin_id"].as_str().unwrap().parse().unwrap();
        let size = bytes(&s["seg_size"]) / 512;
        // Virtual block → data block, from thin_dump.
        let mut map = BTreeMap::new();
        let mut inside = false;
        for line in dump.lines() {
            if line.contains("<device ") {
                inside = attr(line, "dev_id") == id;
            } else if inside && line.contains("<single_mapping ") {
                map.insert(attr(line, "origin_block"), attr(line, "data_block"));
            } else if inside && line.contains("<range_mapping ") {
                for i in 0..attr(line, "length") {
                    map.insert(attr(line, "origin_begin") + i, attr(line, "data_begin") + i);
                }
            }
        }
        assert!(!map.is_empty(), "{lv}");
        // (start, len, None: zero | Some(sector on the exposure)), merged.
        let mut want: Vec<(u64, u64, Option<u64>)> = Vec::new();
        for v in 0..size / bs {
            let piece = map.get(&v).map(|&d| {
                let byte = d * bs * 512;
                let (start, _, at) = tdata
                    .iter()
                    .find(|(s, n, _)| (*s..s + n).contains(&byte))
                    .expect("data block inside pool_tdata");
                at + (byte - start) / 512
            });
            match want.last_mut() {
                Some((_, len, None)) if piece.is_none() => *len += bs,
                Some((_, len, Some(at))) if piece == Some(*at + *len) => *len += bs,
                _ => want.push((v * bs, bs, piece)),
            }
        }
        let want: Vec<String> = want
            .iter()
            .map(|(start, len, at)| match at {
                None => format!("{start} {len} zero"),
                Some(at) => format!("{start} {len} linear 7:0 {at}"),
            })
            .collect();
        let id = l.find_volume(&format!("vmrthin/{lv}")).unwrap();
        let got: Vec<String> = kernel::plan(&l, id, &ex)
            .unwrap_or_else(|e| panic!("{lv}: {e}"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, want, "{lv}");
    }
}

/// The fixture's real metadata with bytes changed at random places (a
/// fixed sequence), checksums off so the btree code sees the damage: the
/// parser and the mapping end without a panic, quickly, every time.
#[test]
fn mutated_metadata_never_panics() {
    let l = scan();
    let meta = l.open_volume(volume_id(&l, "vmrthin/pool_tmeta"));
    let mut good = vec![0u8; 16 * 4096];
    meta.read_exact_at(0, &mut good).unwrap();
    assert!(vmrescue::layers::lvm::thin::fuzz_metadata(&good, true) > 0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let started = std::time::Instant::now();
    for round in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + round % 8 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Mostly node headers and the first keys and values of each block.
            let block = (x >> 33) as usize % 16;
            let within = (x >> 13) as usize % if round % 2 == 0 { 160 } else { 4096 };
            bytes[block * 4096 + within] ^= (x >> 5) as u8 | 1;
        }
        vmrescue::layers::lvm::thin::fuzz_metadata(&bytes, false);
    }
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
}
