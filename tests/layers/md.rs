//! Linux MD arrays against the kernel's md: the arrays built by mdadm in
//! the test VM (`tests/fixtures/make/raid.sh`) and read there by the
//! kernel, whose walk is each set's `.manifest`. Every file is compared by
//! SHA-256 through `vmrescue walk`; `layers` names the arrays as mdadm does
//! and says which member is stale or missing; `ls` and `cat` reach a file
//! by `--volume md/NAME`; our superblock parser agrees with
//! `mdadm --examine` of the same members.

use crate::common;

use std::path::PathBuf;

use vmrescue::image;
use vmrescue::layers::md::{MdArray, MemberState, Role};
use vmrescue::layers::{self, Layout, VolumeKind};

/// The member images of set `name` (`NAME-d0.img`, `NAME-d1.img`…).
fn members(name: &str, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| common::fixture(&format!("{name}-d{i}")))
        .collect()
}

/// `IMAGE --disk IMAGE…` for a set.
fn disk_args(paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            out.push("--disk".to_string());
        }
        out.push(p.to_str().unwrap().to_string());
    }
    out
}

fn run(args: &[String]) -> (i32, String, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::vmrescue(&a);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scan(name: &str, count: usize) -> Layout {
    layers::scan(
        members(name, count)
            .iter()
            .map(|p| image::open(p).expect("open member"))
            .collect(),
    )
}

fn array<'a>(l: &'a Layout, volume: &str) -> &'a MdArray {
    let v = l
        .volumes
        .iter()
        .find(|v| v.name == volume)
        .unwrap_or_else(|| panic!("no volume {volume}"));
    match &v.kind {
        VolumeKind::MdArray { array } => array,
        other => panic!("{volume} is {other:?}"),
    }
}

/// Every file of `volume` read by `vmrescue walk` against the kernel's walk.
fn walk_matches(name: &str, count: usize, volume: &str) {
    let mut args = vec!["walk".to_string()];
    args.extend(disk_args(&members(name, count)));
    args.extend(["--volume".to_string(), volume.to_string()]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{name}: {err}");
    // The kernel's walk leaves out lost+found.
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("/lost+found\t"))
        .collect();
    let manifest = common::report(&format!("{name}.manifest"));
    let theirs: Vec<&str> = manifest.lines().collect();
    assert!(theirs.len() > 10, "{name}: a short manifest");
    assert_eq!(ours, theirs, "{name}: files differ from the kernel's");
}

#[test]
fn every_level_reads_every_file_as_the_kernel_does() {
    for (name, count, volume) in [
        ("md-r1", 2, "md/md-r1"),
        ("md-r1-090", 2, "md0"),
        ("md-r0", 2, "md/md-r0"),
        ("md-r5", 3, "md/md-r5"),
        ("md-r6", 4, "md/md-r6"),
        ("md-r10", 4, "md/md-r10"),
        ("md-r10-f2", 4, "md/md-r10-f2"),
    ] {
        walk_matches(name, count, volume);
    }
}

#[test]
fn degraded_arrays_are_rebuilt_from_parity() {
    walk_matches("md-r5-degraded", 3, "md/md-r5");
    walk_matches("md-r6-degraded", 4, "md/md-r6");
    let l = scan("md-r6-degraded", 4);
    let a = array(&l, "md/md-r6");
    assert_eq!(a.missing, vec![0, 2]);
    let v = l.volumes.iter().find(|v| v.name == "md/md-r6").unwrap();
    let problems: Vec<String> = v.problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.iter().any(|p| p
            == "role 0 of 4 is not read: no member found (degraded: its data is rebuilt from P and Q parity)"),
        "{problems:?}"
    );
    assert!(v.is_filesystem());
}

#[test]
fn a_stale_member_is_named_and_not_read() {
    // d2 was failed and removed, then files changed: its events are older,
    // and the manifest is the array's final state.
    walk_matches("md-r5-stale", 3, "md/md-r5-stale");
    let l = scan("md-r5-stale", 3);
    let a = array(&l, "md/md-r5-stale");
    let m = &a.members[2];
    assert_eq!(m.role, Role::Active(2));
    let MemberState::Stale { events, newest } = m.state else {
        panic!("{:?}", m.state)
    };
    assert!(events + 1 < newest, "{events} {newest}");
    assert_eq!(a.missing, vec![2]);
    let (code, out, err) = run(&[
        vec!["layers".to_string()],
        disk_args(&members("md-r5-stale", 3)),
    ]
    .concat());
    assert_eq!(code, 1, "problems are reported: {err}");
    assert!(
        out.contains(&format!(
            "linux_raid_member (1.2) (member 2 of md/md-r5-stale (stale: events {events} < {newest}; not read))"
        )),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "md/md-r5-stale: member disk2 (role 2) is stale: events {events} < {newest}; its data is not read"
        )),
        "{err}"
    );
}

#[test]
fn layers_names_arrays_as_mdadm_does() {
    let (code, out, err) =
        run(&[vec!["layers".to_string()], disk_args(&members("md-r1", 2))].concat());
    assert_eq!(code, 0, "{err}");
    // Members are partitions of type fd on MBR disks.
    assert!(out.contains("└─p1"), "{out}");
    assert!(
        out.contains("Linux raid autodetect") && out.contains("member 0 of md/md-r1"),
        "{out}"
    );
    assert!(out.contains("member 1 of md/md-r1"), "{out}");
    assert!(out.contains("MD raid1, 2 devices, metadata 1.2"), "{out}");
    assert!(
        out.contains("MD array (shown under its first member)"),
        "{out}"
    );
    assert!(
        out.contains("md/md-r1: raid1 reads leg p1 (then disk1p1 if a read fails)"),
        "{out}"
    );
    assert!(
        out.contains(
            "md/md-r1  userspace  ext4: on MD array md/md-r1, which the kernel engine does not map (no md here): read by vmrescue itself"
        ),
        "{out}"
    );
    // 0.90 arrays are md<minor>.
    let l = scan("md-r1-090", 2);
    let a = array(&l, "md0");
    assert_eq!(a.metadata, "0.90");
    assert!(a.missing.is_empty());
    // Every spelling of an array's name finds it.
    let l = scan("md-r1", 2);
    let id = l.find_volume("md/md-r1").unwrap();
    for spec in ["/dev/md/md-r1", "/dev/md/fixture:md-r1"] {
        assert_eq!(l.find_volume(spec).unwrap(), id, "{spec}");
    }
    let uuid = l.volume(id).content.uuid.clone().unwrap();
    assert!(matches!(
        l.resolve_spec(&format!("UUID={uuid}")),
        vmrescue::layers::fstab::SpecMatch::Found { volume, .. } if volume == id
    ));
}

#[test]
fn ls_and_cat_by_array_name() {
    let set = members("md-r10-f2", 4);
    let (code, out, err) = run(&[
        vec!["ls".to_string()],
        disk_args(&set),
        vec!["--volume".into(), "md/md-r10-f2".into(), "/data".into()],
    ]
    .concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("big-a.bin"), "{out}");
    let out = common::vmrescue(
        &[
            vec!["cat"],
            disk_args(&set).iter().map(String::as_str).collect(),
            vec!["--volume", "/dev/md/md-r10-f2", "/data/big-b.bin"],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = common::report("md-r10-f2.manifest");
    let line = manifest
        .lines()
        .find(|l| l.starts_with("/data/big-b.bin\t"))
        .unwrap();
    let sha = line.rsplit('\t').next().unwrap();
    use sha2::Digest;
    assert_eq!(hex(&sha2::Sha256::digest(&out.stdout)), sha);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_vg_on_an_array_is_read_like_any_vg() {
    walk_matches("md-lvm", 2, "vg_md/root");
    let l = scan("md-lvm", 2);
    let g = l.groups.iter().find(|g| g.name == "vg_md").unwrap();
    assert_eq!(g.pvs.len(), 1);
    let id = l.find_volume("/dev/mapper/vg_md-root").unwrap();
    assert_eq!(l.volume(id).name, "vg_md/root");
    assert!(l.volume(id).is_filesystem());
    assert!(l.all_problems().is_empty(), "{:?}", l.all_problems());
}

#[test]
fn our_superblocks_agree_with_mdadm_examine() {
    for (name, count) in [
        ("md-r5-stale", 3),
        ("md-r1-090", 2),
        ("md-r6", 4),
        ("md-r0", 2),
    ] {
        let examine = common::report(&format!("{name}.examine"));
        let l = scan(name, count);
        let v = l
            .volumes
            .iter()
            .find(|v| matches!(v.kind, VolumeKind::MdArray { .. }))
            .unwrap();
        let VolumeKind::MdArray { array } = &v.kind else {
            unreachable!()
        };
        let field = |key: &str| -> Vec<String> {
            examine
                .lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter_map(|rest| rest.trim().strip_prefix(':'))
                .map(|v| v.trim().to_string())
                .collect()
        };
        assert!(
            field("Array UUID")
                .iter()
                .chain(field("UUID").iter())
                .any(|u| *u == array.uuid),
            "{name}: {} not in {examine}",
            array.uuid
        );
        assert!(
            field("Raid Level").iter().all(|l| *l == array.level),
            "{name}"
        );
        let events: Vec<u64> = field("Events")
            .iter()
            .filter_map(|e| e.split_whitespace().next()?.parse().ok())
            .collect();
        let ours: Vec<u64> = array.members.iter().map(|m| m.events).collect();
        assert_eq!(ours, events, "{name}: events per member");
    }
}

/// A host disk (MBR) whose two partitions each hold one of a guest's two
/// disks: the guest's members are on nested disks, and its array belongs
/// to the first member's nested disk.
#[test]
fn members_on_nested_disks_assemble_in_their_guest() {
    let guest: Vec<Vec<u8>> = members("md-r1", 2)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let start = 1u64 << 20;
    let mut host = vec![0u8; start as usize];
    let mut lba = start / 512;
    for (i, g) in guest.iter().enumerate() {
        let e = 446 + 16 * i;
        host[e + 4] = 0x83;
        host[e + 8..e + 12].copy_from_slice(&(lba as u32).to_le_bytes());
        host[e + 12..e + 16].copy_from_slice(&((g.len() / 512) as u32).to_le_bytes());
        lba += g.len() as u64 / 512;
    }
    host[510] = 0x55;
    host[511] = 0xaa;
    for g in &guest {
        host.extend_from_slice(g);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.img");
    std::fs::write(&path, &host).unwrap();
    let l = layers::scan(vec![image::open(&path).unwrap()]);
    let id = l.find_volume("p1/md/md-r1").unwrap();
    let a = array(&l, "p1/md/md-r1");
    assert!(a.missing.is_empty(), "{:?}", l.volume(id).problems);
    assert_eq!(
        a.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["p1/p1", "p2/p1"]
    );
    assert!(l.volume(id).is_filesystem());
    // In its guest's scope it is /dev/md/md-r1.
    assert_eq!(l.find_volume("p1//dev/md/md-r1").unwrap(), id);
    let mut args = vec!["walk".to_string(), path.to_str().unwrap().to_string()];
    args.extend(["--volume".to_string(), "p1/md/md-r1".to_string()]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("/lost+found\t"))
        .collect();
    let manifest = common::report("md-r1.manifest");
    assert_eq!(ours, manifest.lines().collect::<Vec<_>>());
}
