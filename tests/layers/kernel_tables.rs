//! Device-mapper tables from vmrescue's mappings, checked against tables
//! computed independently from the tools' own reports of the same images:
//! `sfdisk --json` for partitions, `lvs --segments --units s` + `pvs` for
//! logical volumes (as kpartx and lvm2 would load them).
//!
//! Disk N is exposed as device 7:N in these tables.

use crate::common;

use serde_json::Value;
use vmrescue::engine::kernel::{self, dm};
use vmrescue::io::DiskId;
use vmrescue::layers::{Layout, VolumeKind};

fn open(names: &[&str]) -> Layout {
    let images = names
        .iter()
        .map(|n| vmrescue::image::open(&common::fixture(n)).expect("open fixture"))
        .collect();
    vmrescue::layers::scan(images)
}

fn exposures(layout: &Layout) -> Vec<Option<dm::Exposure>> {
    layout
        .disks
        .iter()
        .map(|d| {
            let start = kernel::exposure_start(layout, d.id).ok()?;
            Some(dm::Exposure {
                dev: (7, d.id.0 as u32),
                start,
                size: d.size() - start,
            })
        })
        .collect()
}

fn lines(layout: &Layout, name: &str, ex: &[Option<dm::Exposure>]) -> Vec<String> {
    let id = layout.find_volume(name).expect("volume");
    kernel::plan(layout, id, ex)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("number"),
        Value::Number(n) => n.as_u64().expect("u64"),
        other => panic!("not a number: {other}"),
    }
}

#[test]
fn partitions_map_like_kpartx() {
    let layout = open(&["kernel-a", "kernel-b"]);
    let ex = exposures(&layout);
    let report: Value = serde_json::from_str(&common::report("kernel-a.sfdisk.json")).unwrap();
    let parts = report["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        let name = format!("p{}", i + 1);
        let (start, size) = (num(&p["start"]), num(&p["size"]));
        if p["type"] == "8e" {
            // Never map a PV: its LVs are mapped instead.
            let id = layout.find_volume(&name).unwrap();
            let err = kernel::plan(&layout, id, &ex).unwrap_err().to_string();
            assert!(err.contains("LVM physical volume"), "{err}");
            continue;
        }
        assert_eq!(
            lines(&layout, &name, &ex),
            [format!("0 {size} linear 7:0 {start}")],
            "{name}"
        );
    }
}

/// The tables lvm2 would load, computed from `lvs --segments --units s`,
/// `pvs` and where each PV is on the disks; disks that are whole-disk PVs
/// are exposed from their data area on, so their offsets count from there.
fn expected_lv_tables() -> Vec<(String, Vec<String>)> {
    let lvs: Value = serde_json::from_str(&common::report("kernel-vmrk.lvs.json")).unwrap();
    let pvs: Value = serde_json::from_str(&common::report("kernel-vmrk.pvs.json")).unwrap();
    let pvmap: Value = serde_json::from_str(&common::report("kernel-vmrk.pvmap.json")).unwrap();
    let disk_of = |image: &str| match image {
        "kernel-a.img" => 0u32,
        "kernel-b.img" => 1u32,
        other => panic!("unknown image {other}"),
    };
    // PV device name -> (disk, sector of the PV's data area on the disk, exposure start).
    let pv_info = |dev: &str| -> (u32, u64, u64) {
        let pv = pvs["report"][0]["pv"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pv_name"] == dev)
            .unwrap_or_else(|| panic!("{dev} not in pvs report"));
        let pe_start = num(&pv["pe_start"]);
        let at = &pvmap[dev];
        let offset = num(&at["offset"]) / 512;
        let disk = disk_of(at["image"].as_str().unwrap());
        let exposure = if offset == 0 { pe_start } else { 0 };
        (disk, offset + pe_start, exposure)
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for seg in lvs["report"][0]["seg"].as_array().unwrap() {
        let lv = format!(
            "{}/{}",
            seg["vg_name"].as_str().unwrap(),
            seg["lv_name"].as_str().unwrap()
        );
        let ext = num(&seg["vg_extent_size"]);
        let (start, size) = (num(&seg["seg_start"]), num(&seg["seg_size"]));
        let mut areas = Vec::new();
        for r in seg["seg_pe_ranges"].as_str().unwrap().split_whitespace() {
            let (dev, range) = r.rsplit_once(':').unwrap();
            let first: u64 = range.split('-').next().unwrap().parse().unwrap();
            let (disk, data, exposure) = pv_info(dev);
            areas.push(format!("7:{disk} {}", data + first * ext - exposure));
        }
        let line = match seg["segtype"].as_str().unwrap() {
            "linear" => format!("{start} {size} linear {}", areas[0]),
            "striped" => format!(
                "{start} {size} striped {} {} {}",
                num(&seg["stripes"]),
                num(&seg["stripe_size"]),
                areas.join(" ")
            ),
            other => panic!("segment type {other} in the fixture"),
        };
        match out.iter_mut().find(|(n, _)| *n == lv) {
            Some((_, l)) => l.push(line),
            None => out.push((lv, vec![line])),
        }
    }
    out
}

#[test]
fn logical_volumes_map_like_lvm2() {
    let layout = open(&["kernel-a", "kernel-b"]);
    let expected = expected_lv_tables();
    assert_eq!(expected.len(), 3, "lv_data, lv_gap, lv_xfs");
    assert!(expected.iter().any(|(_, l)| l.len() == 3), "a 3-segment LV");
    assert!(
        expected
            .iter()
            .any(|(_, l)| l.len() == 2 && l.iter().all(|x| x.contains(" striped 2 128 "))),
        "an LV of two striped segments"
    );
    assert_eq!(layout.groups.len(), 1, "VG vmrk over both disks");
    let ex = exposures(&layout);
    // The whole-disk PV is exposed from its data area on.
    assert_eq!(ex[1].map(|e| e.start), Some(1 << 20));
    for (lv, want) in &expected {
        assert_eq!(&lines(&layout, lv, &ex), want, "{lv}");
    }
    // The LVs shown are exactly those lvm2 reports.
    let ours: Vec<&str> = layout
        .volumes
        .iter()
        .filter(|v| matches!(v.kind, VolumeKind::LogicalVolume { .. }))
        .map(|v| v.name.as_str())
        .collect();
    let theirs: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(ours, theirs);
}

#[test]
fn no_device_starts_with_a_pv_label() {
    let layout = open(&["kernel-a", "kernel-b"]);
    // Disk a starts with its partition table; disk b is a PV from byte 0.
    assert_eq!(kernel::exposure_start(&layout, DiskId(0)).unwrap(), 0);
    let mut head = vec![0u8; 2048];
    layout.disks[1].source.read_exact_at(0, &mut head).unwrap();
    assert!(head.windows(8).any(|w| w == b"LABELONE"));
    let start = kernel::exposure_start(&layout, DiskId(1)).unwrap();
    assert_eq!(start, 1 << 20, "the PV's data area (pe_start)");
    layout.disks[1]
        .source
        .read_exact_at(start, &mut head)
        .unwrap();
    assert!(!head.windows(8).any(|w| w == b"LABELONE"));
}

#[test]
fn volumes_on_a_missing_pv_are_refused_with_the_reason() {
    // Disk b alone: the VG is there, its other PV is not.
    let layout = open(&["kernel-b"]);
    let ex = exposures(&layout);
    assert_eq!(ex[0].map(|e| e.start), Some(1 << 20));
    for lv in ["vmrk/lv_data", "vmrk/lv_xfs"] {
        let id = layout.find_volume(lv).unwrap();
        let err = kernel::plan(&layout, id, &ex).unwrap_err().to_string();
        assert!(
            err.contains("cannot map it") && err.contains("missing"),
            "{err}"
        );
        let d = vmrescue::engine::decide(&layout, id, vmrescue::engine::EngineChoice::Kernel);
        assert_eq!(d.engine, None);
        assert!(d.reason.contains("missing"), "{}", d.reason);
        assert_eq!(d.reason.matches("missing").count(), 1, "{}", d.reason);
    }
}

/// A size from an lvm2 report: `1048576B` (`--units b`) or a bare sector
/// count (`--units s --nosuffix`), in sectors.
fn sectors_of(v: &Value) -> u64 {
    let s = v.as_str().expect("string");
    match s.strip_suffix('B') {
        Some(b) => {
            let b: u64 = b.parse().expect("bytes");
            assert_eq!(b % 512, 0, "{s} is not whole sectors");
            b / 512
        }
        None => s.parse().expect("sectors"),
    }
}

/// For every LV lvm2 reports (hidden sub-LVs aside): the table computed from
/// `lvs --segments` and `pvs` equals ours, or, for LVs vmrescue cannot read
/// (thin, raid, mirror, cache, snapshots, zero/error), the kernel engine
/// refuses them with a reason. PVs are placed by UUID where vmrescue found
/// their labels (disk and offset; partition offsets are checked against
/// sfdisk elsewhere); a PV starting at byte 0 of a disk is exposed from its
/// data area on.
fn check_lvm_fixture(images: &[&str], report: &str) -> (usize, usize) {
    let layout = open(images);
    let ex = exposures(&layout);
    let lvs: Value = serde_json::from_str(&common::report(&format!("{report}.lvs.json"))).unwrap();
    let pvs: Value = serde_json::from_str(&common::report(&format!("{report}.pvs.json"))).unwrap();
    let vgs: Value = serde_json::from_str(&common::report(&format!("{report}.vgs.json"))).unwrap();
    let extent = |vg: &str| {
        vgs["report"][0]["vg"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["vg_name"] == vg)
            .map(|g| sectors_of(&g["vg_extent_size"]))
            .expect("vg in vgs report")
    };
    // PV device name -> (disk, sector of its data area on the disk, exposure start).
    let pv_at = |dev: &str| -> (usize, u64, u64) {
        let pv = pvs["report"][0]["pv"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pv_name"] == dev)
            .unwrap_or_else(|| panic!("{dev} not in the pvs report"));
        let uuid = pv["pv_uuid"].as_str().unwrap();
        let found = layout
            .pvs
            .iter()
            .find(|p| p.scan.pv_uuid == uuid)
            .unwrap_or_else(|| panic!("PV {uuid} not found by vmrescue"));
        let pe_start = sectors_of(&pv["pe_start"]);
        let start = found.area.offset / 512;
        let exposure = if start == 0 { pe_start } else { 0 };
        (found.area.disk.0, start + pe_start, exposure)
    };
    let mut tables: Vec<(String, Vec<String>, bool)> = Vec::new();
    for seg in lvs["report"][0]["seg"].as_array().unwrap() {
        let lv_name = seg["lv_name"].as_str().unwrap();
        if lv_name.starts_with('[') {
            continue;
        }
        let vg = seg["vg_name"].as_str().unwrap();
        let name = format!("{vg}/{lv_name}");
        let attr = seg["lv_attr"].as_str().unwrap_or("-");
        let segtype = seg["segtype"].as_str().unwrap();
        let ranges = seg["seg_pe_ranges"].as_str().unwrap_or("");
        let readable = matches!(segtype, "linear" | "striped")
            && !attr.starts_with('s')
            && !ranges.is_empty()
            && ranges.split_whitespace().all(|r| r.starts_with("/dev/"));
        let mut line = String::new();
        // lvm2 maps a `zero` segment to dm's zero target; so does vmrescue.
        let zero = segtype == "zero";
        let readable = readable || zero;
        if zero {
            let (start, size) = (sectors_of(&seg["seg_start"]), sectors_of(&seg["seg_size"]));
            line = format!("{start} {size} zero");
        } else if readable {
            let ext = extent(vg);
            let (start, size) = (sectors_of(&seg["seg_start"]), sectors_of(&seg["seg_size"]));
            let mut areas = Vec::new();
            for r in ranges.split_whitespace() {
                let (dev, range) = r.rsplit_once(':').unwrap();
                let first: u64 = range.split('-').next().unwrap().parse().unwrap();
                let (disk, data, exposure) = pv_at(dev);
                areas.push(format!("7:{disk} {}", data + first * ext - exposure));
            }
            line = if segtype == "linear" {
                format!("{start} {size} linear {}", areas[0])
            } else {
                format!(
                    "{start} {size} striped {} {} {}",
                    areas.len(),
                    sectors_of(&seg["stripe_size"]),
                    areas.join(" ")
                )
            };
        }
        match tables.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, l, ok)) => {
                l.push(line);
                *ok &= readable;
            }
            None => tables.push((name, vec![line], readable)),
        }
    }
    assert!(!tables.is_empty(), "{report}: no LVs in the report");
    let (mut compared, mut refused) = (0, 0);
    for (lv, want, readable) in &tables {
        let id = layout
            .find_volume(lv)
            .unwrap_or_else(|e| panic!("{report}: {lv}: {e}"));
        let got = kernel::plan(&layout, id, &ex);
        if *readable {
            let got: Vec<String> = got
                .unwrap_or_else(|e| panic!("{report}: {lv}: {e}"))
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(&got, want, "{report}: {lv}");
            compared += 1;
        } else {
            let err = got.expect_err(lv).to_string();
            assert!(err.contains("cannot map it: "), "{report}: {lv}: {err}");
            refused += 1;
        }
    }
    (compared, refused)
}

#[test]
fn every_lvm_fixture_maps_like_lvm2() {
    // lv_striped (3 then 2 stripes), lv_multi (4 segments on 3 PVs, one a whole disk), ...
    assert_eq!(
        check_lvm_fixture(&["lvm-gpt", "lvm-gpt-disk1"], "lvm-gpt"),
        (4, 0)
    );
    assert_eq!(check_lvm_fixture(&["lvm-wrap"], "lvm-wrap"), (2, 0));
    // orig, plain and zeroes; snapshot, thin, pool, raid1, mirror, cache-pool, error refused.
    assert_eq!(check_lvm_fixture(&["lvm-types"], "lvm-types"), (3, 7));
}
