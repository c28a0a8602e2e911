//! Nested disks: a Proxmox-like host disk (`nested-host`, built by
//! `tests/fixtures/make/nested.sh` with sfdisk, sgdisk, lvm2 and mke2fs)
//! whose LVs hold whole guest disks, one with its own VG `pve`. The guest
//! volumes are scanned as disks of the same layout, named after the LV
//! holding them, shown under it, and read; hostile nesting (a table inside
//! itself, a chain deeper than the bound) gives problems, not hangs.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use vmrescue::layers::{self, Layout, VolumeKind, tree};

use crate::common;

const MARKER: &[u8] = b"VMRESCUE nested marker: pve/vm-100-disk-0 -> guest VG pve -> root\n";

fn host() -> std::path::PathBuf {
    common::fixture("nested-host")
}

fn layout_of(path: &Path) -> Layout {
    let img = vmrescue::image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    layers::scan(vec![img])
}

fn names(layout: &Layout) -> Vec<&str> {
    layout.volumes.iter().map(|v| v.name.as_str()).collect()
}

fn stdout(args: &[&str]) -> (Vec<u8>, String, i32) {
    let out = common::vmrescue(args);
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The node of volume `vol` in a JSON tree of `layers --json`.
fn find<'a>(n: &'a serde_json::Value, vol: &str) -> Option<&'a serde_json::Value> {
    if n["volume"].as_str() == Some(vol) {
        return Some(n);
    }
    n["children"].as_array()?.iter().find_map(|c| find(c, vol))
}

/// `vmrescue cat IMAGE --volume VOLUME PATH`, which must succeed.
fn cat(image: &str, volume: &str, path: &str) -> Vec<u8> {
    let (out, err, code) = stdout(&["cat", image, "--volume", volume, path]);
    assert_eq!(code, 0, "{volume} {path}: {err}");
    out
}

#[test]
fn nested_volumes_are_named_after_their_holder() {
    let layout = layout_of(&host());
    let n = names(&layout);
    for want in [
        "p1",
        "pve/root",
        "pve/vm-100-disk-0",
        "pve/vm-101-disk-0",
        "pve/vm-100-disk-0/p1",
        "pve/vm-100-disk-0/p2",
        "pve/vm-100-disk-0/pve/root",
        "pve/vm-101-disk-0/p1",
    ] {
        assert!(n.contains(&want), "{want} missing from {n:?}");
    }
    let fs = |name: &str| {
        let id = layout.find_volume(name).expect(name);
        let v = layout.volume(id);
        (v.content.kind.name(), v.content.label.clone())
    };
    assert_eq!(
        fs("pve/vm-100-disk-0/p1"),
        ("ext4", Some("g100boot".into()))
    );
    assert_eq!(
        fs("pve/vm-100-disk-0/pve/root"),
        ("ext4", Some("g100root".into()))
    );
    assert_eq!(
        fs("pve/vm-101-disk-0/p1"),
        ("ext4", Some("g101data".into()))
    );
    assert!(
        layout.all_problems().is_empty(),
        "{:?}",
        layout.all_problems()
    );
}

/// The guest's VG `pve` is its own group, not merged with the host's: the
/// LV UUIDs match lvm2's reports of each.
#[test]
fn guest_vg_named_like_host_vg_stays_apart() {
    let layout = layout_of(&host());
    let pve: Vec<_> = layout.groups.iter().filter(|g| g.name == "pve").collect();
    assert_eq!(pve.len(), 2, "a host VG pve and a guest VG pve");
    assert_ne!(pve[0].uuid, pve[1].uuid);
    let lv_uuids = |report: &str| -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(&common::report(report)).expect("lvs json");
        let mut out: Vec<(String, String)> = v["report"][0]["seg"]
            .as_array()
            .expect("segment rows")
            .iter()
            .map(|r| {
                (
                    r["lv_name"].as_str().unwrap_or_default().to_string(),
                    r["lv_uuid"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let ours = |g: &vmrescue::layers::lvm::VolumeGroup| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = g
            .lvs
            .iter()
            .map(|l| (l.name.clone(), l.uuid.clone()))
            .collect();
        out.sort();
        out
    };
    assert_eq!(ours(pve[0]), lv_uuids("nested-host.lvs.json"));
    assert_eq!(ours(pve[1]), lv_uuids("nested-guest100.lvs.json"));
    // The guest's LV maps onto the nested disk, never onto the host's.
    let id = layout
        .find_volume("pve/vm-100-disk-0/pve/root")
        .expect("root");
    for d in layout.volume(id).mapping.disks() {
        assert!(
            layout.disks[d.0].parent.is_some(),
            "mapped onto a host disk"
        );
        assert!(layout.disks[d.0].host_path("a test").is_err());
    }
}

#[test]
fn cat_reads_the_guest_lv_inside_the_host_lv() {
    let img = host();
    assert_eq!(
        cat(
            img.to_str().unwrap(),
            "pve/vm-100-disk-0/pve/root",
            "/etc/nested-marker.txt"
        ),
        MARKER
    );
}

#[test]
fn ls_lists_the_gpt_guest() {
    let img = host();
    let (out, err, code) = stdout(&[
        "ls",
        img.to_str().unwrap(),
        "--volume",
        "pve/vm-101-disk-0/p1",
        "/data",
    ]);
    assert_eq!(code, 0, "{err}");
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("hello.txt"), "{out}");
    assert_eq!(
        cat(
            img.to_str().unwrap(),
            "pve/vm-101-disk-0/p1",
            "/data/hello.txt"
        ),
        b"hello from VM 101\n"
    );
}

/// `layers` shows the guest's partitions and VG under the LV holding them,
/// in text and JSON, each with the name `--volume` takes.
#[test]
fn layers_shows_nested_children_under_their_lv() {
    let img = host();
    let (out, err, code) = stdout(&["layers", "--json", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    let disks = v["disks"].as_array().expect("disks");
    assert_eq!(disks.len(), 1, "nested disks are no roots");
    let lv = find(&disks[0], "pve/vm-100-disk-0").expect("host LV node");
    let kids: Vec<&str> = lv["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|c| c["volume"].as_str())
        .collect();
    assert_eq!(kids, ["pve/vm-100-disk-0/p1", "pve/vm-100-disk-0/p2"]);
    let p2 = find(lv, "pve/vm-100-disk-0/p2").expect("p2");
    let vg = &p2["children"][0];
    assert_eq!(vg["kind"], "vg");
    assert_eq!(vg["name"], "pve/vm-100-disk-0/pve");
    assert_eq!(vg["children"][0]["volume"], "pve/vm-100-disk-0/pve/root");
    assert_eq!(vg["children"][0]["browsable"], true);
    let lv101 = find(&disks[0], "pve/vm-101-disk-0").expect("LV 101");
    assert_eq!(lv101["children"][0]["volume"], "pve/vm-101-disk-0/p1");

    let (out, err, code) = stdout(&["layers", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let text = String::from_utf8_lossy(&out);
    for want in [
        "pve/vm-100-disk-0/p1",
        "pve/vm-100-disk-0/pve",
        "pve/vm-100-disk-0/pve/root",
        "pve/vm-101-disk-0/p1",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    // The same tree as the library builds (the TUI's left pane).
    let roots = tree::build(&layout_of(&img));
    assert_eq!(roots.len(), 1);
}

/// Every spelling of a top-level volume keeps its meaning; a nested one is
/// reached by its name, or by any spelling after `<holder>/`.
#[test]
fn spellings_top_level_and_scoped() {
    let layout = layout_of(&host());
    let name = |spec: &str| {
        layout
            .find_volume(spec)
            .map(|id| layout.volume(id).name.clone())
            .unwrap_or_else(|e| panic!("{spec}: {e}"))
    };
    assert_eq!(name("pve/root"), "pve/root");
    assert_eq!(name("/dev/pve/root"), "pve/root");
    assert_eq!(name("/dev/mapper/pve-root"), "pve/root");
    assert_eq!(name("root"), "pve/root");
    assert_eq!(name("/dev/sda1"), "p1");
    assert_eq!(
        name("pve/vm-100-disk-0//dev/mapper/pve-root"),
        "pve/vm-100-disk-0/pve/root"
    );
    assert_eq!(
        name("pve/vm-100-disk-0//dev/pve/root"),
        "pve/vm-100-disk-0/pve/root"
    );
    assert_eq!(name("pve/vm-100-disk-0/root"), "pve/vm-100-disk-0/pve/root");
    assert_eq!(name("pve/vm-100-disk-0//dev/vda2"), "pve/vm-100-disk-0/p2");
    assert_eq!(
        name("UUID=10000000-0000-4000-8000-000000000002"),
        "pve/vm-100-disk-0/pve/root"
    );
    assert_eq!(name("LABEL=g101data"), "pve/vm-101-disk-0/p1");
    assert_eq!(
        name("pve/vm-101-disk-0/PARTLABEL=data"),
        "pve/vm-101-disk-0/p1"
    );
    // Kernel names count the disks given: the guest's sdb is no host disk.
    assert!(layout.find_volume("/dev/sda2").is_err());
    // Aliases of a nested volume resolve back to it.
    let root = layout.find_volume("pve/vm-100-disk-0/pve/root").unwrap();
    for a in layout.aliases(root) {
        assert_eq!(layout.find_volume(&a).ok(), Some(root), "{a}");
    }
    // An fstab on the host never names a guest's volume.
    assert!(matches!(
        layout.resolve_spec("/dev/pve/root"),
        layers::fstab::SpecMatch::Found { volume, .. } if layout.volume(volume).name == "pve/root"
    ));
    assert!(!matches!(
        layout.resolve_spec("LABEL=g101data"),
        layers::fstab::SpecMatch::Found { .. }
    ));
}

/// An MBR disk (sfdisk) whose two partitions hold the same guest disk (a
/// cloned VM): the two guest VGs have the same name and UUID and still stay
/// apart; a spelling both answer to is ambiguous, with the names that pick each.
#[test]
fn cloned_guests_stay_apart_and_ambiguity_is_explained() {
    let layout = layout_of(&host());
    let lv = layout.find_volume("pve/vm-100-disk-0").unwrap();
    let src = layout.open_volume(lv);
    let size = src.size();
    let mut guest = vec![0u8; usize::try_from(size).unwrap()];
    src.read_exact_at(0, &mut guest).expect("read guest disk");
    let dir = tempfile::tempdir().unwrap();
    let outer = dir.path().join("clones.img");
    let start = 1u64 << 20;
    File::create(&outer)
        .unwrap()
        .set_len(start + 2 * size + start)
        .unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(&outer)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk (Debian package fdisk)");
    let script = format!(
        "label: dos\nstart={}, size={}, type=83\nstart={}, size={}, type=83\n",
        start / 512,
        size / 512,
        (start + size) / 512,
        size / 512
    );
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&outer)
        .unwrap();
    f.write_all_at(&guest, start).unwrap();
    f.write_all_at(&guest, start + size).unwrap();
    drop(f);

    let clones = layout_of(&outer);
    let pve: Vec<_> = clones.groups.iter().filter(|g| g.name == "pve").collect();
    assert_eq!(pve.len(), 2, "one VG per clone");
    assert_eq!(pve[0].uuid, pve[1].uuid);
    for g in &pve {
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        assert!(g.pvs.iter().all(|p| p.found.is_some()));
    }
    let o = outer.to_str().unwrap();
    for part in ["p1", "p2"] {
        assert_eq!(
            cat(o, &format!("{part}/pve/root"), "/etc/nested-marker.txt"),
            MARKER
        );
    }
    let err = clones.find_volume("/dev/pve/root").unwrap_err().to_string();
    assert!(err.contains("ambiguous"), "{err}");
    assert!(
        err.contains("p1/pve/root (on p1") && err.contains("p2/pve/root (on p2"),
        "{err}"
    );
    let (_, err, code) = stdout(&["ls", o, "--volume", "pve/root", "/"]);
    assert_eq!(code, 2);
    assert!(err.contains("ambiguous"), "{err}");
}

/// A disk of 64 sectors with an MBR at each of its first `levels` sectors,
/// each with one partition starting `step` sectors after it.
fn chained_mbrs(path: &Path, levels: u32, step: u32) {
    let total = 64u32;
    let mut img = vec![0u8; total as usize * 512];
    for k in 0..levels {
        let at = k as usize * 512;
        let s = &mut img[at..at + 512];
        s[446 + 4] = 0x83;
        s[446 + 8..446 + 12].copy_from_slice(&step.to_le_bytes());
        s[446 + 12..446 + 16].copy_from_slice(&(total - k - step).to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xaa;
    }
    std::fs::write(path, img).unwrap();
}

#[test]
fn a_table_inside_itself_is_scanned_once() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("self.img");
    chained_mbrs(&img, 1, 0);
    let layout = layout_of(&img);
    let problems: Vec<String> = layout
        .all_problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("not scanned again")),
        "{problems:?}"
    );
    assert!(layout.disks.len() <= 3, "{} disks", layout.disks.len());
    let (_, err, code) = stdout(&["layers", img.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not scanned again"), "{err}");
}

#[test]
fn nesting_stops_at_the_depth_bound() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("deep.img");
    chained_mbrs(&img, 20, 1);
    let layout = layout_of(&img);
    // The disk given, then one nested disk per level up to the bound.
    assert_eq!(layout.disks.len(), 1 + 8, "{:?}", names(&layout));
    let deepest = layout
        .volumes
        .iter()
        .max_by_key(|v| v.name.len())
        .expect("volumes");
    assert_eq!(deepest.name, "p1/p1/p1/p1/p1/p1/p1/p1/p1");
    assert!(
        deepest
            .problems
            .iter()
            .any(|p| p.to_string().contains("nested")),
        "{:?}",
        deepest.problems
    );
    assert!(matches!(deepest.kind, VolumeKind::Partition { .. }));
    let (out, err, code) = stdout(&["layers", img.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("p1/p1/p1/p1/p1/p1/p1/p1/p1"));
}

/// Whatever needs a host file refuses a nested volume clearly, and writes nothing.
#[test]
fn relink_and_kernel_engine_refuse_a_nested_volume() {
    let dir = tempfile::tempdir().unwrap();
    let img = common::fixture_copy("nested-host", dir.path());
    let before = std::fs::read(&img).unwrap();
    let i = img.to_str().unwrap();
    let (_, err, code) = stdout(&[
        "relink",
        i,
        "--volume",
        "pve/vm-101-disk-0/p1",
        "--engine",
        "userspace",
        "/data/hello.link",
        "--to",
        "hello.lnk",
        "--force",
        "--yes",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not a host file or device but a volume read as a disk"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert!(std::fs::read(&img).unwrap() == before, "the image changed");
    let (_, err, code) = stdout(&[
        "ls",
        i,
        "--engine",
        "kernel",
        "--volume",
        "pve/vm-101-disk-0/p1",
        "/",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the kernel engine needs a host file"), "{err}");
}

/// An LV that is a PV itself (a guest disk without a partition table): its
/// VG is shown under the LV and its LVs read; the nested whole-disk volume
/// (the LV's bytes again) is no choice of its own.
#[test]
fn an_lv_holding_a_pv_shows_its_vg() {
    let img = host();
    assert_eq!(
        cat(
            img.to_str().unwrap(),
            "pve/vm-102-disk-0/vg102/data",
            "/note.txt"
        ),
        b"VM 102 keeps its VG on the whole disk\n"
    );
    let layout = layout_of(&img);
    assert_eq!(
        layout
            .find_volume("vg102/data")
            .map(|id| layout.volume(id).name.clone())
            .ok()
            .as_deref(),
        Some("pve/vm-102-disk-0/vg102/data"),
        "a VG only a nested disk has is found by its plain spelling"
    );
    assert!(!layout.volume_choices().contains("pve/vm-102-disk-0/disk0"));
    let roots = tree::build(&layout);
    let json = serde_json::to_value(&roots).unwrap();
    let lv = find(&json[0], "pve/vm-102-disk-0").expect("LV 102");
    assert_eq!(lv["children"][0]["kind"], "vg");
    assert_eq!(lv["children"][0]["name"], "pve/vm-102-disk-0/vg102");
    assert_eq!(
        lv["children"][0]["children"][0]["volume"],
        "pve/vm-102-disk-0/vg102/data"
    );
}

/// Each guest's fstab names its own volumes: the host's `/dev/pve/root` is
/// the host's LV, the nested guest's `/dev/mapper/pve-root` its own LV and
/// its `/dev/sda1` its own disk's p1; without --volume the host's root is
/// the one browsed.
#[test]
fn each_fstab_resolves_on_its_own_disks() {
    let img = host();
    let (out, err, code) = stdout(&["layers", "--json", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    let disk = &v["disks"][0];
    let node = |vol: &str| find(disk, vol).unwrap_or_else(|| panic!("{vol} not in the tree"));
    assert_eq!(node("pve/root")["mountpoint"], "/");
    assert_eq!(node("pve/root")["os"], "Host PVE-like");
    assert_eq!(node("pve/vm-100-disk-0/pve/root")["mountpoint"], "/");
    assert_eq!(node("pve/vm-100-disk-0/pve/root")["os"], "Guest 100 Linux");
    assert_eq!(node("pve/vm-100-disk-0/p1")["mountpoint"], "/boot");

    let layout = layout_of(&img);
    let guest_root = layout.find_volume("pve/vm-100-disk-0/pve/root").unwrap();
    let host_root = layout.find_volume("pve/root").unwrap();
    let resolved = |spec: &str, root| match layout.resolve_spec_from(spec, root) {
        layers::fstab::SpecMatch::Found { volume, .. } => layout.volume(volume).name.clone(),
        other => panic!("{spec}: {other:?}"),
    };
    assert_eq!(
        resolved("/dev/mapper/pve-root", guest_root),
        "pve/vm-100-disk-0/pve/root"
    );
    assert_eq!(resolved("/dev/mapper/pve-root", host_root), "pve/root");
    assert_eq!(resolved("/dev/sda1", guest_root), "pve/vm-100-disk-0/p1");
    assert_eq!(resolved("/dev/sda1", host_root), "p1");
    assert_eq!(
        resolved("LABEL=g100boot", guest_root),
        "pve/vm-100-disk-0/p1"
    );
    assert!(!matches!(
        layout.resolve_spec_from("LABEL=g100boot", host_root),
        layers::fstab::SpecMatch::Found { .. }
    ));
    assert_eq!(
        layout.holder(guest_root),
        layout.find_volume("pve/vm-100-disk-0").ok()
    );
    assert_eq!(layout.holder(host_root), None);

    let (out, err, code) = stdout(&["ls", img.to_str().unwrap(), "/"]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("host-marker.txt"));
}

/// The TUI's left pane (built from the same tree) has the guest's LV under
/// the host LV holding its disk, and can reveal it by its volume name.
#[test]
fn tui_left_pane_nests_the_guest_under_its_lv() {
    let layout = layout_of(&host());
    let mut pane = vmrescue::tui::layers::LayerPane::new(&layout);
    let lv = pane.path_of_volume("pve/vm-100-disk-0").expect("host LV");
    let root = pane
        .path_of_volume("pve/vm-100-disk-0/pve/root")
        .expect("guest LV");
    assert!(
        root.starts_with(&lv) && root.len() == lv.len() + 3,
        "{lv:?} {root:?}"
    );
    assert!(pane.reveal_volume("pve/vm-101-disk-0/p1"));
    assert_eq!(
        pane.current().and_then(|n| n.volume.as_deref()),
        Some("pve/vm-101-disk-0/p1")
    );
}

/// `--volume` naming the LV that holds a guest's disk means that guest as
/// it boots (its fstab's /boot mounted); the host root's table stays the
/// host's; an LV holding a disk with one filesystem and no guest root
/// opens that filesystem; `layers` prints one fstab table per guest.
#[test]
fn a_volume_holding_a_guest_disk_opens_that_guest() {
    let img = host();
    let img = img.to_str().unwrap();
    let (out, err, code) = stdout(&["ls", img, "--volume", "pve/vm-100-disk-0", "/boot"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("boot-note.txt"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // The guest root named itself is that volume alone, as before.
    let (_, err, code) = stdout(&["ls", img, "--volume", "pve/vm-100-disk-0/pve/root", "/boot"]);
    assert_ne!(code, 0);
    assert!(err.contains("use --volume pve/vm-100-disk-0/p1"), "{err}");
    // The host's root knows nothing of the guest's /boot.
    let (_, err, code) = stdout(&["ls", img, "--volume", "pve/root", "/boot"]);
    assert_ne!(code, 0);
    assert!(!err.contains("vm-100"), "{err}");
    let (out, err, code) = stdout(&["ls", img, "--volume", "pve/vm-101-disk-0", "/"]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("lost+found"));
    let (out, err, code) = stdout(&["doctor", img, "--volume", "pve/vm-100-disk-0"]);
    let out = String::from_utf8_lossy(&out);
    assert!(code <= 1, "{err}");
    assert!(out.contains("root pve/vm-100-disk-0/pve/root"), "{out}");
    assert!(
        out.contains(&format!("vmrescue cat {img} --volume pve/vm-100-disk-0 ")),
        "{out}"
    );
    let (out, err, code) = stdout(&["layers", img]);
    assert_eq!(code, 0, "{err}");
    let out = String::from_utf8_lossy(&out);
    let host_table = out.find("fstab of pve/root:").expect("host table");
    let guest_table = out
        .find("fstab of pve/vm-100-disk-0/pve/root:")
        .expect("guest table");
    assert!(host_table < guest_table, "{out}");
    let boot = out.find("/dev/sda1").expect("guest /boot row");
    assert!(boot > guest_table, "{out}");
}

/// In the browser, each guest has its node above the disks: the host's
/// opens at start, the nested guest's opens by Enter as its own tree with
/// its /boot mounted, and the status bar names the LV holding it.
#[test]
fn tui_opens_the_nested_guest_as_it_boots() {
    use vmrescue::tui::Action;
    use vmrescue::tui::app::Focus;
    let img = vmrescue::image::open(&host()).unwrap();
    let mut layout = layers::scan(vec![img]);
    let userspace = vmrescue::engine::userspace::Userspace::default();
    let found = layers::inspect::inspect(&layout, &|id| {
        userspace.open_fs(&layout, id, &Default::default())
    });
    layout.apply_inspection(&found);
    let layout = std::sync::Arc::new(layout);
    let jobs = vmrescue::tui::jobs::Jobs {
        layout: std::sync::Arc::clone(&layout),
        opener: std::sync::Arc::new(vmrescue::engine::userspace::Userspace::default()),
        copier: std::sync::Arc::new(vmrescue::tui::copier::JobCopier),
    };
    let mut app = vmrescue::tui::App::new(layout, vmrescue::tui::AppConfig::default());
    app.resize(100, 30);
    app.start();
    jobs.run_inline(&mut app);
    let names: Vec<&str> = app.layers.roots.iter().map(|n| n.name.as_str()).collect();
    assert!(names[0].starts_with("Host PVE-like"), "{names:?}");
    assert!(
        names[1].starts_with("Guest 100 Linux") && names[1].ends_with("(in pve/vm-100-disk-0)"),
        "{names:?}"
    );
    let shown = |app: &vmrescue::tui::App| -> Vec<String> {
        app.pane()
            .map(|p| p.entries.iter().map(|e| e.shown.clone()).collect())
            .unwrap_or_default()
    };
    assert!(shown(&app).contains(&"host-marker.txt".to_string()));
    app.focus = Focus::Layers;
    app.update(&Action::MoveDown);
    app.update(&Action::Open);
    jobs.run_inline(&mut app);
    let pane = app.pane().expect("the nested guest is shown");
    assert!(pane.tree.is_guest());
    let boot = pane
        .entries
        .iter()
        .find(|e| e.shown == "boot")
        .expect("/boot listed");
    assert_eq!(boot.mounted.as_deref(), Some("pve/vm-100-disk-0/p1"));
    let status = vmrescue::tui::views::status::status_text(&app);
    assert!(status.contains("guest in pve/vm-100-disk-0:/"), "{status}");
}

/// An MBR disk whose partition 1 holds the bytes of `image` (a qcow2 file).
fn partition_holding(dir: &Path, image: &Path) -> std::path::PathBuf {
    let bytes = std::fs::read(image).unwrap();
    let sectors = (bytes.len() as u64).div_ceil(512) + 2048;
    let outer = dir.join("outer.img");
    let f = File::create(&outer).unwrap();
    f.set_len((sectors + 2048) * 512).unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", outer.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk (fdisk package)");
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(format!("label: dos\nstart=2048, size={}, type=83\n", sectors - 2048).as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&outer)
        .unwrap();
    f.write_all_at(&bytes, 2048 * 512).unwrap();
    outer
}

fn run_tool(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A qcow2 image written straight into a partition (as some block storage
/// keeps VM disks) is opened as the nested disk it describes; one with a
/// backing file is refused with the reason, never read with zeros where
/// the backing file's bytes belong.
#[test]
fn a_qcow2_image_in_a_partition_is_a_nested_disk() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("hello.txt"), b"inside a qcow2 inside p1\n").unwrap();
    let raw = dir.path().join("guest.raw");
    run_tool(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "qin", "-d"])
            .arg(&tree)
            .arg(&raw)
            .arg("4M"),
    );
    let q = dir.path().join("guest.qcow2");
    run_tool(
        Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&q),
    );
    let outer = partition_holding(dir.path(), &q);
    let img = outer.to_str().unwrap();
    let (out, err, code) = stdout(&["layers", img]);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{text}{err}");
    assert!(text.contains("p1/disk0"), "{text}");
    assert!(text.contains("qcow2"), "{text}");
    assert_eq!(
        cat(img, "p1/disk0", "/hello.txt"),
        b"inside a qcow2 inside p1\n"
    );

    let over = dir.path().join("over.qcow2");
    run_tool(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&q)
            .arg(&over),
    );
    let sub = dir.path().join("b");
    std::fs::create_dir(&sub).unwrap();
    let outer = partition_holding(&sub, &over);
    let (out, err, code) = stdout(&["layers", outer.to_str().unwrap()]);
    assert_eq!(code, 1, "{}{err}", String::from_utf8_lossy(&out));
    assert!(err.contains("with the backing file"), "{err}");
    assert!(!String::from_utf8_lossy(&out).contains("p1/disk0"));
}

/// A VMDK (sparse and stream-optimized), a dynamic VHD, a VHDX and a VDI
/// image written straight into a partition are opened as the nested disk
/// they describe, as a qcow2 is; a VMDK snapshot, a differencing VHD and a
/// differencing VDI (whose parents a volume cannot name) are refused with
/// qcow2's sentence, never read with zeros where the parent's bytes belong.
#[test]
fn vmdk_vhd_vhdx_and_vdi_images_in_a_partition_are_nested_disks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("hello.txt"), b"inside an image inside p1\n").unwrap();
    let raw = dir.path().join("guest.raw");
    run_tool(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "imgin", "-d"])
            .arg(&tree)
            .arg(&raw)
            .arg("6M"),
    );
    for (format, opts, shown) in [
        ("vmdk", "subformat=monolithicSparse", "vmdk"),
        ("vmdk", "subformat=streamOptimized", "vmdk"),
        ("vpc", "subformat=dynamic", "vhd"),
        ("vhdx", "subformat=dynamic", "vhdx"),
        ("vdi", "static=off", "vdi"),
    ] {
        let sub = dir.path().join(format!("{format}-{opts}"));
        std::fs::create_dir(&sub).unwrap();
        let img = sub.join(format!("guest.{shown}"));
        run_tool(
            Command::new("qemu-img")
                .args(["convert", "-q", "-f", "raw", "-O", format, "-o", opts])
                .arg(&raw)
                .arg(&img),
        );
        let outer = partition_holding(&sub, &img);
        let outer = outer.to_str().unwrap();
        let (out, err, code) = stdout(&["layers", outer]);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, 0, "{opts}: {text}{err}");
        assert!(text.contains("p1/disk0"), "{opts}: {text}");
        assert!(text.contains(shown), "{opts}: {text}");
        assert_eq!(
            cat(outer, "p1/disk0", "/hello.txt"),
            b"inside an image inside p1\n",
            "{opts}"
        );
    }

    // A damaged image: its VDI block size zeroed, its VMDK grain size
    // zeroed; the volume says why it is not opened, naming the structure
    // and its byte.
    for (file, at, name, structure) in [
        ("vdi-static=off/guest.vdi", 0x178, "vdi", "VDI header"),
        (
            "vmdk-subformat=monolithicSparse/guest.vmdk",
            20,
            "vmdk",
            "VMDK sparse header",
        ),
    ] {
        let mut b = std::fs::read(dir.path().join(file)).unwrap();
        b[at..at + 8].fill(0);
        let sub = dir.path().join(format!("damaged-{name}"));
        std::fs::create_dir(&sub).unwrap();
        let bad = sub.join("bad.img");
        std::fs::write(&bad, &b).unwrap();
        let outer = partition_holding(&sub, &bad);
        let (out, err, code) = stdout(&["layers", outer.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {}{err}", String::from_utf8_lossy(&out));
        assert!(
            err.contains(&format!("holds a {name} image that cannot be opened"))
                && err.contains(structure)
                && err.contains("byte"),
            "{name}: {err}"
        );
    }

    // Children whose parents a volume cannot name.
    let refused = |name: &str, child: &Path, names: &str| {
        let sub = dir.path().join(format!("refused-{name}"));
        std::fs::create_dir(&sub).unwrap();
        let outer = partition_holding(&sub, child);
        let (out, err, code) = stdout(&["layers", outer.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {}{err}", String::from_utf8_lossy(&out));
        assert!(
            err.contains(&format!("holds a {name} image with the backing file")),
            "{name}: {err}"
        );
        assert!(err.contains(names), "{name}: {err}");
        assert!(!String::from_utf8_lossy(&out).contains("p1/disk0"));
    };
    let base = dir
        .path()
        .join("vmdk-subformat=monolithicSparse/guest.vmdk");
    let snap = dir.path().join("snap.vmdk");
    run_tool(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "vmdk", "-F", "vmdk", "-b"])
            .arg(&base)
            .arg(&snap),
    );
    refused("vmdk", &snap, "guest.vmdk");
    let vhd = std::fs::read(dir.path().join("vpc-subformat=dynamic/guest.vhd")).unwrap();
    let footer = &vhd[vhd.len() - 512..];
    let child = dir.path().join("child.vhd");
    std::fs::write(
        &child,
        crate::vhd::vhd_child(footer, &footer[68..84], ".\\guest.vhd", 7),
    )
    .unwrap();
    refused("vhd", &child, "guest.vhd");
    // A VDI made differencing: its type and its parent's UUID.
    let mut vdi = std::fs::read(dir.path().join("vdi-static=off/guest.vdi")).unwrap();
    vdi[0x4c..0x50].copy_from_slice(&4u32.to_le_bytes());
    vdi[0x1a8..0x1b8].fill(0x42);
    let child = dir.path().join("child.vdi");
    std::fs::write(&child, &vdi).unwrap();
    refused("vdi", &child, "42424242-4242");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn spread() -> std::path::PathBuf {
    common::fixture("nested-spread")
}

/// `nested-spread`: VM 110 keeps VG vg110 over both of its disks
/// (vm-110-disk-0's p2 and the whole vm-110-disk-1), as a guest with two
/// virtual disks does; the VG assembles from both nested disks, and the
/// data LV that runs from one onto the other reads whole.
#[test]
fn a_guest_vg_over_two_nested_disks_assembles() {
    let path = spread();
    let layout = layout_of(&path);
    let n = names(&layout);
    for name in [
        "pve/vm-110-disk-0/vg110/root",
        "pve/vm-110-disk-0/vg110/data",
        "pve/snap_vm-110-disk-0_before/vg110/data",
        "pve/vm-111-disk-0/vg110/data",
        "pve/spare/vg110/root",
    ] {
        assert!(n.contains(&name), "{name} missing from {n:?}");
    }
    // Nothing is named after the second disk: its PV joined the first's VG.
    assert!(
        !n.iter().any(|v| v.starts_with("pve/vm-110-disk-1/vg110")),
        "{n:?}"
    );
    let data = layout
        .volumes
        .iter()
        .find(|v| v.name == "pve/vm-110-disk-0/vg110/data")
        .unwrap();
    assert!(data.problems.is_empty(), "{:?}", data.problems);
    assert_eq!(data.content.kind.name(), "ext4");
    // Its bytes come from two nested disks.
    assert_eq!(data.mapping.segments().len(), 2);
    let manifest = std::fs::read_to_string(common::fixture_file("nested-spread.sha256")).unwrap();
    let want = manifest.split_whitespace().next().unwrap().to_string();
    let img = path.to_str().unwrap();
    for vol in [
        "pve/vm-110-disk-0/vg110/data",
        "pve/vm-111-disk-0/vg110/data",
        "pve/snap_vm-110-disk-0_before/vg110/data",
    ] {
        let got = sha256_hex(&cat(img, vol, "/big.txt"));
        assert_eq!(got, want, "{vol}");
    }
    // The guest as it boots: /srv is the LV over both disks.
    let got = sha256_hex(&cat(img, "pve/vm-110-disk-0", "/srv/big.txt"));
    assert_eq!(got, want);
    let (out, err, code) = stdout(&["ls", img, "--volume", "pve/vm-110-disk-0", "/srv"]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("note.txt"));
}

/// Copies of the same two disks (a clone, a thin snapshot of both) are
/// told apart by the Proxmox guest their LVs name: each VM's and each
/// snapshot's VG assembles from its own two disks; a copy under another
/// name stays alone, incomplete, and says where the missing PV's copies are.
#[test]
fn copies_of_a_two_disk_guest_stay_apart() {
    let path = spread();
    let img = path.to_str().unwrap();
    assert_eq!(
        cat(img, "pve/vm-110-disk-0", "/etc/spread-marker.txt"),
        b"VM 110 now\n"
    );
    assert_eq!(
        cat(
            img,
            "pve/snap_vm-110-disk-0_before",
            "/etc/spread-marker.txt"
        ),
        b"VM 110 before\n"
    );
    assert_eq!(
        cat(img, "pve/vm-111-disk-0", "/etc/spread-marker.txt"),
        b"VM 110 now\n"
    );
    let layout = layout_of(&path);
    let groups: Vec<_> = layout.groups.iter().filter(|g| g.name == "vg110").collect();
    assert_eq!(groups.len(), 4, "one vg110 per guest and one for the spare");
    let whole = groups
        .iter()
        .filter(|g| g.pvs.iter().all(|p| p.found.is_some()))
        .count();
    assert_eq!(whole, 3, "VM 110, its snapshot and VM 111 are whole");
    // Each whole VG's PVs are on disks of one guest.
    for g in &groups {
        let holders: Vec<&str> = g
            .pvs
            .iter()
            .filter_map(|p| p.found)
            .map(|i| layout.pvs[i].volume.as_str())
            .collect();
        let guest = |v: &str| {
            v.strip_prefix("pve/")
                .and_then(|r| r.split_once('/'))
                .map(|(h, _)| h.replace("-disk-1", "-disk-0"))
                .unwrap()
        };
        let first = guest(holders[0]);
        assert!(holders.iter().all(|h| guest(h) == first), "{holders:?}");
    }
    let spare = layout
        .volumes
        .iter()
        .find(|v| v.name == "pve/spare/vg110/data")
        .unwrap();
    assert!(!spare.problems.is_empty());
    let (_, err, code) = stdout(&["layers", img]);
    assert_eq!(code, 1, "a missing PV is a problem");
    assert!(
        err.contains("is on pve/vm-110-disk-1, pve/snap_vm-110-disk-1_before, pve/vm-111-disk-1"),
        "{err}"
    );
    // The second disk shows its PV under the VG's first disk.
    let (out, err, code) = stdout(&["layers", img, "--json"]);
    assert!(code <= 1, "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let root = &json["disks"][0];
    let data = find(root, "pve/vm-110-disk-0/vg110/data").expect("data LV in the JSON tree");
    assert_eq!(data["fstype"].as_str(), Some("ext4"), "{data}");
}

/// A host disk with no root of its own and several guests: the browser
/// shows a node per guest above the disks and opens none by itself.
#[test]
fn tui_lists_every_guest_of_a_host_without_a_root() {
    let inspected = |path: &Path| {
        let mut layout = layout_of(path);
        let userspace = vmrescue::engine::userspace::Userspace::default();
        let found = layers::inspect::inspect(&layout, &|id| {
            userspace.open_fs(&layout, id, &Default::default())
        });
        layout.apply_inspection(&found);
        layout
    };
    let layout = inspected(&spread());
    let pane = vmrescue::tui::layers::LayerPane::new(&layout);
    assert!(!pane.first_is_chosen);
    let roots: Vec<&str> = pane
        .guests
        .iter()
        .map(|&g| layout.volume(g).name.as_str())
        .collect();
    assert_eq!(
        roots,
        [
            "pve/vm-110-disk-0/vg110/root",
            "pve/snap_vm-110-disk-0_before/vg110/root",
            "pve/vm-111-disk-0/vg110/root",
            "pve/spare/vg110/root",
        ]
    );
    let host = inspected(&host());
    let pane = vmrescue::tui::layers::LayerPane::new(&host);
    assert!(pane.first_is_chosen);
    assert_eq!(host.volume(pane.guests[0]).name, "pve/root");
}

/// A fixed VHD (`qemu-img convert -O vpc -o subformat=fixed`, vhd.sh's
/// vhd-fixed) written into a partition of its size has no copy of its
/// footer at byte 0, where the guest's partition table is: the footer in
/// the volume's last 512 bytes (cookie, fixed type, size checked) makes it
/// a VHD, whose virtual disk ends before the footer. A footer whose size
/// does not match leaves the volume a plain partition table.
#[test]
fn a_fixed_vhd_written_into_a_partition_is_a_vhd_disk() {
    let dir = tempfile::tempdir().unwrap();
    let outer = partition_holding(dir.path(), &common::fixture("vhd-fixed"));
    let outer = outer.to_str().unwrap();
    let (out, err, code) = stdout(&["layers", outer]);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{text}{err}");
    assert!(text.contains("p1: VHD fixed"), "{text}");
    // The virtual disk is the volume less the footer (qemu's CHS size).
    let data = std::fs::metadata(common::fixture("vhd-fixed"))
        .unwrap()
        .len()
        - 512;
    assert!(
        text.contains(&format!("current size {data} bytes")),
        "{text}"
    );
    let sums = std::fs::read_to_string(common::fixture_file("vhd-raw.sha256")).unwrap();
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let got = cat(outer, "p1/p1", &format!("/{path}"));
        assert_eq!(sha256_hex(&got), sum, "{path}");
    }

    // The footer's current size one sector short (checksum redone): not
    // this volume's VHD; the partition table inside is read as before.
    let mut bytes = std::fs::read(common::fixture("vhd-fixed")).unwrap();
    let at = bytes.len() - 512;
    let size = u64::from_be_bytes(bytes[at + 48..at + 56].try_into().unwrap()) - 512;
    bytes[at + 48..at + 56].copy_from_slice(&size.to_be_bytes());
    let sum = bytes[at..at + 512]
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, b)| s.wrapping_add(u32::from(*b)));
    bytes[at + 64..at + 68].copy_from_slice(&(!sum).to_be_bytes());
    let sub = dir.path().join("off");
    std::fs::create_dir(&sub).unwrap();
    let bad = sub.join("bad.vhd");
    std::fs::write(&bad, &bytes).unwrap();
    let outer = partition_holding(&sub, &bad);
    let (out, err, _) = stdout(&["layers", outer.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("VHD fixed"), "{text}{err}");
    assert!(text.contains("p1/p1"), "{text}{err}");
}
