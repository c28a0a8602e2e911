//! The bundled demo disk: `--demo` unpacks it to a temporary sparse file
//! (removed at exit), and it has the same layers as a fresh build of the
//! `demo` fixture by assets/make-demo.sh — the story's disk: MBR, p1 from
//! sector 63 with ext4 /boot, p2 an LVM2 PV of VG vg_ta with lv_root,
//! lv_home (ext4) and lv_swap (swap).

use crate::common;
use crate::partition_support;

use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use partition_support::{blkid, sfdisk};
use serde_json::Value;

fn layers_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["layers", "--json"];
    all.extend_from_slice(args);
    let out = common::vmrescue(&all);
    let doc = serde_json::from_slice(&out.stdout).expect("layers --json output");
    (
        out.status.code().expect("exit code"),
        doc,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_has_the_same_layers_as_a_fresh_build() {
    let (code, mut bundled, err) = layers_json(&["--demo"]);
    assert_eq!(code, 0, "{err}");
    let fixture = common::fixture("demo");
    let (code, mut built, err) = layers_json(&[fixture.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(bundled["disks"][0]["name"], "vm-108-disk-1.raw");
    assert_eq!(built["disks"][0]["name"], "demo.img");
    bundled["disks"][0]["name"] = Value::Null;
    built["disks"][0]["name"] = Value::Null;
    assert_eq!(
        serde_json::to_string_pretty(&bundled).unwrap(),
        serde_json::to_string_pretty(&built).unwrap(),
        "the committed assets/demo.img.sparse.zst differs from what assets/make-demo.sh builds: \
         run `assets/make-demo.sh --asset`"
    );
}

#[test]
fn demo_is_the_disk_of_the_story() {
    let (code, doc, err) = layers_json(&["--demo"]);
    assert_eq!(code, 0, "{err}");
    let disk = &doc["disks"][0];
    assert_eq!(disk["size"].as_u64(), Some(2 << 30));
    assert!(
        disk["description"]
            .as_str()
            .unwrap()
            .contains("dos partition table")
    );
    let parts = disk["children"].as_array().unwrap();
    let table = sfdisk("demo");
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0]["start"].as_u64(),
        Some(63 * 512),
        "p1 starts at sector 63"
    );
    assert_eq!(parts[0]["fstype"], "ext4");
    assert_eq!(parts[1]["description"], "Linux LVM");
    assert_eq!(parts[1]["fstype"], "LVM2_member");
    assert_eq!(parts[1]["fsver"], "LVM2 001");
    for (node, p) in parts.iter().zip(&table.partitions) {
        assert_eq!(node["start"].as_u64(), Some(p.start * 512));
        assert_eq!(node["size"].as_u64(), Some(p.size * 512));
    }
    // The VG and its LVs, where lvm2 put them.
    let vg = &parts[1]["children"][0];
    assert_eq!(vg["name"], "vg_ta");
    assert_eq!(vg["kind"], "vg");
    let pvs: Value = serde_json::from_str(&common::report("demo.pvs.json")).unwrap();
    let pv = &pvs["report"][0]["pv"][0];
    let pe_start: u64 = pv["pe_start"].as_str().unwrap().parse().unwrap();
    let extent: u64 = pv["vg_extent_size"].as_str().unwrap().parse().unwrap();
    let lvs: Value = serde_json::from_str(&common::report("demo.lvs.json")).unwrap();
    let tags = blkid("demo");
    let lv_nodes = vg["children"].as_array().unwrap();
    let names: Vec<&str> = lv_nodes
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lv_root", "lv_home", "lv_swap"]);
    for seg in lvs["report"][0]["seg"].as_array().unwrap() {
        let name = seg["lv_name"].as_str().unwrap();
        let node = lv_nodes.iter().find(|n| n["name"] == name).unwrap();
        let size: u64 = seg["lv_size"].as_str().unwrap().parse().unwrap();
        assert_eq!(node["size"].as_u64(), Some(size), "{name}");
        let ranges = seg["seg_pe_ranges"].as_str().unwrap();
        let first_pe: u64 = ranges
            .split(':')
            .nth(1)
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let start = table.partitions[1].start * 512 + pe_start + first_pe * extent;
        assert_eq!(node["start"].as_u64(), Some(start), "{name}");
        let volume = format!("vg_ta/{name}");
        assert_eq!(node["volume"], volume.as_str());
        let t = &tags.iter().find(|(v, _)| *v == volume).unwrap().1;
        assert_eq!(node["fstype"].as_str(), Some(t["TYPE"].as_str()));
        assert_eq!(node["uuid"].as_str(), Some(t["UUID"].as_str()));
    }
}

#[test]
fn demo_file_is_removed_at_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .args(["layers", "--demo"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("vm-108-disk-1.raw"));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn demo_asset_is_small_and_unpacks_sparse_and_fast() {
    let packed = vmrescue::demo::asset().len();
    assert!(
        packed < 2 << 20,
        "assets/demo.img.sparse.zst is {packed} bytes"
    );
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let path = vmrescue::demo::unpack_into(dir.path()).unwrap();
    let took = started.elapsed();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 2 << 30);
    let allocated = meta.blocks() * 512;
    assert!(
        allocated < 64 << 20,
        "{allocated} bytes allocated: not sparse"
    );
    // Printed, not asserted: timings vary with the machine (see benches/layers.rs).
    eprintln!("demo: {packed} bytes packed, {allocated} bytes allocated, unpacked in {took:?}");
    assert_eq!(path.file_name().unwrap(), "vm-108-disk-1.raw");
}

/// `layers` shows the guest's mount table: every fstab line, the volume
/// it names and what became of it; `--json` has it as `mounts`.
#[test]
fn demo_mount_table() {
    let (code, doc, err) = layers_json(&["--demo"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<(String, String, String, bool)> = doc["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            (
                m["mountpoint"].as_str().unwrap().to_string(),
                m["volume"].as_str().unwrap_or("-").to_string(),
                m["state"].as_str().unwrap().to_string(),
                m["guessed"].as_bool().unwrap(),
            )
        })
        .collect();
    let row =
        |mp: &str, v: &str, state: &str| (mp.to_string(), v.to_string(), state.to_string(), false);
    assert_eq!(
        rows,
        vec![
            row("/", "vg_ta/lv_root", "mounted"),
            row("/boot", "p1", "mounted"),
            row("/home", "vg_ta/lv_home", "mounted"),
            row("swap", "vg_ta/lv_swap", "swap"),
            row("/dev/shm", "-", "virtual"),
            row("/dev/pts", "-", "virtual"),
            row("/sys", "-", "virtual"),
            row("/proc", "-", "virtual"),
        ]
    );
    assert!(
        doc["mounts"][1]["spec"]
            .as_str()
            .unwrap()
            .starts_with("UUID=")
    );
    assert_eq!(doc["mounts"][0]["guest_root"], "vg_ta/lv_root");
    let out = common::vmrescue(&["layers", "--demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("MOUNTPOINT  SOURCE")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("/home ")
            && l.contains("vg_ta/lv_home")
            && l.ends_with("mounted")),
        "{text}"
    );
}

fn layers_text(args: &[&str]) -> String {
    let mut all = vec!["layers"];
    all.extend_from_slice(args);
    let out = common::vmrescue(&all);
    // (2: nothing found on the disk but the disk itself, still shown.)
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 table")
}

/// lsblk's habits: `-o` chooses and orders columns (`+` adds to the
/// default ones), `-b` prints bytes, `-n` leaves out the heading; the
/// values are the JSON's.
#[test]
fn layers_columns_bytes_and_headings_as_lsblk() {
    let (_, doc, _) = layers_json(&["--demo"]);
    let mut nodes = Vec::new();
    fn flat<'a>(n: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(n);
        for c in n["children"].as_array().unwrap() {
            flat(c, out);
        }
    }
    for d in doc["disks"].as_array().unwrap() {
        flat(d, &mut nodes);
    }
    let text = layers_text(&["--demo", "-n", "-b", "-o", "size,volume,fstype,fsver,uuid"]);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), nodes.len(), "{text}");
    for (row, n) in rows.iter().zip(&nodes) {
        assert_eq!(row[0], n["size"].to_string(), "{text}");
        let rest: Vec<String> = ["volume", "fstype", "fsver", "uuid"]
            .iter()
            .filter_map(|k| n[*k].as_str())
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(row[1..], rest[..], "{text}");
    }
    let lvm = rows.iter().find(|r| r.contains(&"LVM2_member")).unwrap();
    assert_eq!(
        lvm[lvm.len() - 3..],
        ["LVM2", "001", "Ta1Pv0-Cent-OS64-Demo-Vm10-8Dsk-1Raw0p"]
    );
    // `+VOLUME`: the default columns, then VOLUME.
    let text = layers_text(&["--demo", "-o", "+VOLUME"]);
    let head: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        [
            "NAME",
            "SIZE",
            "START",
            "TYPE",
            "FSTYPE",
            "LABEL",
            "MOUNTPOINT",
            "VOLUME"
        ]
    );
    assert!(text.contains("swap (SWAPSPACE2)"), "{text}");
    // An unknown column is refused with the list.
    let out = common::vmrescue(&["layers", "--demo", "-o", "name,bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MOUNTPOINT, VOLUME"));
}

/// A long TYPE cell (a qcow2 image's facts) is cut in the table and
/// printed whole under it, so a row fits a terminal; `-l` keeps it whole.
#[test]
fn long_type_cells_go_under_the_table_unless_long() {
    let img = common::fixture("qcow2-snap");
    let img = img.to_str().unwrap();
    let text = layers_text(&[img]);
    let first = text.lines().nth(1).unwrap();
    assert!(first.contains("qcow2 (see below)"), "{text}");
    assert!(first.chars().count() < 120, "{first}");
    // The note names the disk as its row does: by its file.
    let file = first.split_whitespace().next().unwrap();
    let note = format!("{file}: qcow2, v3");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&note) && l.contains("2 snapshots")),
        "{text}"
    );
    let long = layers_text(&["-l", img]);
    assert!(
        long.lines().nth(1).unwrap().contains("2 snapshots"),
        "{long}"
    );
    assert!(!long.contains("(see below)"), "{long}");
}
