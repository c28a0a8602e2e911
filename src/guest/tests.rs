//! The namespace over in-memory filesystems: spec forms, composition, ids.

use std::collections::HashMap;
use std::sync::Arc;

use super::{MountState, Namespace};
use crate::error::{Error, Result};
use crate::fs::mem::{MemFs, ROOT};
use crate::fs::path::resolve;
use crate::fs::{
    DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Xattr, read_small,
};
use crate::image::ImageFormat;
use crate::io::{Area, DiskId, Mapping};
use crate::layers::fstab::SpecMatch;
use crate::layers::lvm::{LogicalVolume, VolumeGroup};
use crate::layers::partition::{PartType, Partition, Scheme, Table};
use crate::layers::{
    Content, ContentKind, Disk, DiskOrigin, GuestRole, Layout, Volume, VolumeId, VolumeKind,
};

fn content(kind: ContentKind, uuid: Option<&str>, label: Option<&str>) -> Content {
    Content {
        label: label.map(str::to_string),
        uuid: uuid.map(str::to_string),
        ..Content::new(kind)
    }
}

fn part(number: u32, name: Option<&str>, uuid: Option<&str>) -> Partition {
    Partition {
        number,
        start: 1 << 20,
        size: 1 << 20,
        part_type: PartType::Gpt("0fc63daf-8483-4772-8e79-3d69d8477de4".into()),
        name: name.map(str::to_string),
        uuid: uuid.map(str::to_string),
        bootable: false,
        extended: false,
    }
}

fn lv(name: &str, uuid: &str) -> LogicalVolume {
    LogicalVolume {
        name: name.into(),
        uuid: uuid.into(),
        visible: true,
        status: Vec::new(),
        size: 1 << 20,
        segments: Vec::new(),
        mapping: Mapping::linear(
            Area {
                disk: DiskId(0),
                offset: 0,
            },
            1 << 20,
        ),
        missing_pvs: Vec::new(),
        creation_time: None,
        creation_host: None,
        snapshot_of: None,
        notes: Vec::new(),
        problems: Vec::new(),
    }
}

/// Two disks: disk0 GPT with p1 (boot, ext4) and p2 (efi, vfat); disk1
/// MBR (signature 0x0badcafe) with disk1p1 (data, xfs); VG `my-vg` with
/// `lv-root`, `lv_home`, `lv_var`, `lv_swap`; `disk2` a whole disk.
fn layout() -> Layout {
    let disk = |i: usize, table: Option<Table>| Disk {
        id: DiskId(i),
        name: format!("disk{i}"),
        origin: DiskOrigin::Host(format!("/img/disk{i}.img").into()),
        parent: None,
        format: ImageFormat::Raw,
        format_details: Vec::new(),
        snapshot: None,
        source: Arc::new(vec![0u8; 4096]),
        table,
        problems: Vec::new(),
    };
    let table = |scheme, id: &str, partitions| Table {
        scheme,
        sector_size: 512,
        id: Some(id.into()),
        partitions,
        problems: Vec::new(),
    };
    let p1 = part(
        1,
        Some("boot part"),
        Some("AAAAAAAA-1111-2222-3333-444444444444"),
    );
    let p2 = part(2, Some("efi"), Some("bbbbbbbb-1111-2222-3333-444444444444"));
    let mut d1p1 = part(1, None, None);
    d1p1.part_type = PartType::Mbr(0x83);
    let disks = vec![
        disk(
            0,
            Some(table(
                Scheme::Gpt,
                "11111111-2222-3333-4444-555555555555",
                vec![p1.clone(), p2.clone()],
            )),
        ),
        disk(
            1,
            Some(table(Scheme::Dos, "0x0badcafe", vec![d1p1.clone()])),
        ),
        disk(2, None),
    ];
    let map = Mapping::linear(
        Area {
            disk: DiskId(0),
            offset: 0,
        },
        1 << 20,
    );
    let mut volumes = Vec::new();
    let mut add = |name: &str, kind: VolumeKind, c: Content| {
        let id = VolumeId(volumes.len());
        volumes.push(Volume {
            id,
            name: name.into(),
            kind,
            mapping: map.clone(),
            content: c,
            guest: GuestRole::default(),
            problems: Vec::new(),
            notes: Vec::new(),
        });
    };
    let lvk = |lv: &str| VolumeKind::LogicalVolume {
        vg: "my-vg".into(),
        lv: lv.into(),
        hidden: false,
        segtypes: vec!["linear".into()],
    };
    add(
        "p1",
        VolumeKind::Partition {
            disk: DiskId(0),
            number: 1,
            entry: p1,
        },
        content(ContentKind::Ext4, Some("b007-uuid"), Some("my boot")),
    );
    add(
        "p2",
        VolumeKind::Partition {
            disk: DiskId(0),
            number: 2,
            entry: p2,
        },
        content(ContentKind::Vfat, Some("ABCD-1234"), Some("EFI")),
    );
    add(
        "disk1p1",
        VolumeKind::Partition {
            disk: DiskId(1),
            number: 1,
            entry: d1p1,
        },
        content(ContentKind::Xfs, Some("da7a-uuid"), Some("data")),
    );
    add(
        "my-vg/lv-root",
        lvk("lv-root"),
        content(ContentKind::Ext4, Some("r007-uuid"), Some("root")),
    );
    add(
        "my-vg/lv_home",
        lvk("lv_home"),
        content(ContentKind::Ext4, Some("h0me-uuid"), None),
    );
    add(
        "my-vg/lv_var",
        lvk("lv_var"),
        content(ContentKind::Xfs, Some("0var-uuid"), None),
    );
    add(
        "my-vg/lv_swap",
        lvk("lv_swap"),
        content(ContentKind::Swap, Some("5wap-uuid"), None),
    );
    add(
        "disk2",
        VolumeKind::WholeDisk { disk: DiskId(2) },
        content(ContentKind::Ext4, Some("wh0le-uuid"), None),
    );
    Layout {
        disks,
        volumes,
        groups: vec![VolumeGroup {
            name: "my-vg".into(),
            uuid: "VGUUID-aaaa-bbbb".into(),
            seqno: 1,
            extent_size: 4 << 20,
            extent_count: 10,
            free_count: 0,
            pvs: Vec::new(),
            lvs: vec![
                lv("lv-root", "LVROOT-1111"),
                lv("lv_home", "LVHOME-2222"),
                lv("lv_var", "LVVAR-3333"),
                lv("lv_swap", "LVSWAP-4444"),
            ],
            problems: Vec::new(),
        }],
        pvs: Vec::new(),
        notes: Vec::new(),
        subvolumes: Vec::new(),
        subvolume_mounts: Vec::new(),
        luks: Vec::new(),
        crypt: Vec::new(),
    }
}

fn found(layout: &Layout, spec: &str) -> (String, bool) {
    match layout.resolve_spec(spec) {
        SpecMatch::Found { volume, guessed } => (layout.volume(volume).name.clone(), guessed),
        other => panic!("{spec}: {other:?}"),
    }
}

#[test]
fn every_spec_form() {
    let l = layout();
    let cases: &[(&str, &str, bool)] = &[
        ("UUID=b007-uuid", "p1", false),
        ("UUID=B007-UUID", "p1", false),
        ("LABEL=my boot", "p1", false),
        ("PARTUUID=aaaaaaaa-1111-2222-3333-444444444444", "p1", false),
        ("PARTUUID=0badcafe-01", "disk1p1", false),
        ("PARTLABEL=efi", "p2", false),
        ("/dev/disk/by-uuid/da7a-uuid", "disk1p1", false),
        ("/dev/disk/by-label/my\\x20boot", "p1", false),
        (
            "/dev/disk/by-partuuid/bbbbbbbb-1111-2222-3333-444444444444",
            "p2",
            false,
        ),
        ("/dev/disk/by-partlabel/boot\\x20part", "p1", false),
        (
            "/dev/disk/by-id/dm-name-my--vg-lv--root",
            "my-vg/lv-root",
            false,
        ),
        (
            "/dev/disk/by-id/dm-uuid-LVM-VGUUIDaaaabbbbLVHOME2222",
            "my-vg/lv_home",
            false,
        ),
        ("/dev/mapper/my--vg-lv--root", "my-vg/lv-root", false),
        ("/dev/mapper/my--vg-lv_var", "my-vg/lv_var", false),
        ("/dev/my-vg/lv_home", "my-vg/lv_home", false),
        ("/dev/sda1", "p1", true),
        ("/dev/vda2", "p2", true),
        ("/dev/hdb1", "disk1p1", true),
        ("/dev/xvdb1", "disk1p1", true),
        ("/dev/nvme0n1p2", "p2", true),
        ("/dev/sdc", "disk2", true),
    ];
    for (spec, name, guessed) in cases {
        assert_eq!(found(&l, spec), (name.to_string(), *guessed), "{spec}");
    }
    for spec in [
        "/dev/dm-3",
        "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part1",
        "/dev/disk/by-path/pci-0000:00:01.1-ata-1-part1",
    ] {
        assert!(
            matches!(l.resolve_spec(spec), SpecMatch::Unresolvable(_)),
            "{spec}"
        );
    }
    for spec in [
        "UUID=nope",
        "/dev/mapper/my-vg-lv-root",
        "/dev/sdd1",
        "/dev/sda9",
        "LABEL=",
    ] {
        assert!(
            matches!(l.resolve_spec(spec), SpecMatch::NotFound(_)),
            "{spec}"
        );
    }
}

/// The guest: the root LV, `/home`, `/var`, `/boot` on other volumes.
fn volumes(fstab: &[u8]) -> HashMap<&'static str, Arc<dyn FsView>> {
    let mut root = MemFs::new();
    let etc = root.add_dir(ROOT, b"etc", 0o755);
    root.add_file(etc, b"fstab", 0o644, fstab);
    root.add_file(etc, b"hostname", 0o644, b"guest\n");
    let home = root.add_dir(ROOT, b"home", 0o755);
    root.add_file(home, b"hidden-under-mount", 0o644, b"covered");
    root.add_dir(ROOT, b"var", 0o755);
    root.add_dir(ROOT, b"boot", 0o755);
    root.add_dir(ROOT, b"tmp", 0o1777);
    root.add_dir(ROOT, b"proc", 0o555);
    root.add_dir(ROOT, b"srv", 0o755);
    root.add_file(ROOT, b"afile", 0o644, b"x");
    let bin = root.add_dir(ROOT, b"bin", 0o755);
    root.add_symlink(bin, b"to-log", b"/var/log/messages");
    root.add_symlink(bin, b"rel-to-log", b"../var/log/messages");

    let mut home = MemFs::new();
    let user = home.add_dir(ROOT, b"alice", 0o700);
    home.add_file(user, b"notes.txt", 0o600, b"alice's notes");
    home.add_symlink(user, b"up-and-out", b"../../etc/hostname");
    home.add_symlink(user, b"abs", b"/etc/hostname");

    let mut var = MemFs::new();
    let log = var.add_dir(ROOT, b"log", 0o755);
    var.add_file(log, b"messages", 0o644, b"boot log");
    var.add_dir(ROOT, b"lib", 0o755);

    let mut boot = MemFs::new();
    boot.add_file(ROOT, b"vmlinuz", 0o644, b"kernel");
    boot.add_dir(ROOT, b"efi", 0o700);

    let mut data = MemFs::new();
    data.add_file(ROOT, b"data.bin", 0o644, b"DATA");

    let mut over = MemFs::new();
    over.add_file(ROOT, b"second", 0o644, b"2");

    HashMap::from([
        ("my-vg/lv-root", Arc::new(root) as Arc<dyn FsView>),
        ("my-vg/lv_home", Arc::new(home) as Arc<dyn FsView>),
        ("my-vg/lv_var", Arc::new(var) as Arc<dyn FsView>),
        ("p1", Arc::new(boot) as Arc<dyn FsView>),
        ("disk1p1", Arc::new(data) as Arc<dyn FsView>),
        ("disk2", Arc::new(over) as Arc<dyn FsView>),
    ])
}

fn namespace(fstab: &[u8]) -> (Layout, Namespace) {
    let l = layout();
    let vols = volumes(fstab);
    let open = |id: VolumeId| -> Result<Arc<dyn FsView>> {
        let name = l.volume(id).name.as_str();
        if name == "p2" {
            return Err(Error::Unsupported("vfat needs the kernel engine".into()));
        }
        vols.get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_string()))
    };
    let root = l.find_volume("my-vg/lv-root").unwrap();
    let ns = Namespace::build(&l, root, &open);
    (l, ns)
}

const FSTAB: &[u8] = b"# a guest's fstab\n\
/dev/mapper/my--vg-lv--root /  ext4 defaults 1 1\n\
UUID=b007-uuid /boot ext4 defaults 1 2\n\
PARTUUID=bbbbbbbb-1111-2222-3333-444444444444 /boot/efi vfat umask=0077 0 2\n\
/dev/my-vg/lv_home /home ext4 defaults 1 2\n\
/dev/disk/by-uuid/0var-uuid /var xfs defaults 0 0\n\
/dev/mapper/my--vg-lv_swap swap swap defaults 0 0\n\
tmpfs /tmp tmpfs defaults 0 0\n\
proc /proc proc defaults 0 0\n\
UUID=gone /mnt/backup ext4 defaults,nofail 0 0\n\
/dev/sdb1 /srv/data xfs defaults 0 0\n\
/dev/cdrom /media/cdrom iso9660 noauto,ro 0 0\n\
/srv/data /export/data none bind 0 0\n\
nas:/vol /net nfs defaults 0 0\n\
/dev/disk/by-id/ata-DISK-part1 /byid ext4 defaults,nofail 0 0\n\
/dev/sdc /var/lib ext4 defaults 0 0\n\
/dev/sdc /afile ext4 defaults 0 0\n";

fn ls(fs: &dyn FsView, p: &[u8]) -> Vec<String> {
    let r = resolve(fs, p, true).unwrap();
    let mut names: Vec<String> = fs
        .read_dir(r.node)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn mount_table_states() {
    let (l, ns) = namespace(FSTAB);
    let table: Vec<(String, &'static str, Option<String>, bool)> = ns
        .mounts()
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(&m.mountpoint).into_owned(),
                m.state.name(),
                m.volume.map(|v| l.volume(v).name.clone()),
                m.guessed,
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        table,
        vec![
            ("/".into(), "mounted", s("my-vg/lv-root"), false),
            ("/boot".into(), "mounted", s("p1"), false),
            ("/boot/efi".into(), "unreadable", s("p2"), false),
            ("/home".into(), "mounted", s("my-vg/lv_home"), false),
            ("/var".into(), "mounted", s("my-vg/lv_var"), false),
            ("swap".into(), "swap", s("my-vg/lv_swap"), false),
            ("/tmp".into(), "virtual", None, false),
            ("/proc".into(), "virtual", None, false),
            ("/mnt/backup".into(), "missing", None, false),
            ("/srv/data".into(), "mounted", s("disk1p1"), true),
            ("/media/cdrom".into(), "noauto", None, false),
            ("/export/data".into(), "bind", None, false),
            ("/net".into(), "missing", None, false),
            ("/byid".into(), "missing", None, false),
            ("/var/lib".into(), "mounted", s("disk2"), true),
            ("/afile".into(), "failed", s("disk2"), true),
        ]
    );
    let reason = |i: usize| ns.mounts()[i].state.reason().unwrap_or_default();
    assert!(reason(2).contains("vfat needs the kernel engine"));
    assert!(reason(8).contains("nofail"), "{}", reason(8));
    assert!(reason(13).contains("hardware id"), "{}", reason(13));
    assert!(reason(12).contains("network"), "{}", reason(12));
    // Each mount its own device, the root first; a bind its source's.
    let devs: Vec<u64> = ns.mounts().iter().map(|m| m.dev).collect();
    let mut want: Vec<u64> = (1..=16).collect();
    want[11] = 10;
    assert_eq!(devs, want);
    let notes = ns.fs().status().notes;
    for want in [
        "/boot/efi",
        "/mnt/backup",
        "/net",
        "/byid",
        "/afile",
        "/mnt/backup does not exist",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(want)),
            "{want} in {notes:?}"
        );
    }
    assert_eq!(ns.fs().status().fs_type, "guest");
}

#[test]
fn one_tree_across_volumes() {
    let (l, ns) = namespace(FSTAB);
    let fs = ns.fs();
    // /home shows the home LV, not the folder of the root LV under it.
    assert_eq!(ls(&*fs, b"/home"), vec!["alice"]);
    assert_eq!(
        read_small(&*fs, b"/home/alice/notes.txt", 100).unwrap(),
        b"alice's notes"
    );
    assert_eq!(
        read_small(&*fs, b"/var/log/messages", 100).unwrap(),
        b"boot log"
    );
    // A mount over a mount's subtree: /var/lib is disk2, not lv_var's lib.
    assert_eq!(ls(&*fs, b"/var/lib"), vec!["second"]);
    assert_eq!(ls(&*fs, b"/var"), vec!["lib", "log"]);
    // A mount in a mounted volume: /boot/efi, unreadable, an empty folder.
    assert_eq!(ls(&*fs, b"/boot"), vec!["efi", "vmlinuz"]);
    assert!(ls(&*fs, b"/boot/efi").is_empty());
    // Virtual: empty, tmpfs world-writable with the sticky bit.
    assert!(ls(&*fs, b"/tmp").is_empty());
    let tmp = resolve(&*fs, b"/tmp", true).unwrap().node;
    assert_eq!(fs.metadata(tmp).unwrap().perm, 0o1777);
    // Missing mountpoints in the parent are made up: /mnt, /mnt/backup, /net.
    let top = ls(&*fs, b"/");
    for want in ["mnt", "net", "byid", "export", "srv", "home"] {
        assert!(top.contains(&want.to_string()), "{want} in {top:?}");
    }
    assert_eq!(ls(&*fs, b"/mnt"), vec!["backup"]);
    assert!(ls(&*fs, b"/mnt/backup").is_empty());
    // noauto: not mounted, and no folder made for it.
    assert!(resolve(&*fs, b"/media", true).is_err());
    // Bind: /export/data shows /srv/data (disk1p1, by its kernel name).
    assert_eq!(ls(&*fs, b"/srv/data"), vec!["data.bin"]);
    assert_eq!(ls(&*fs, b"/export/data"), vec!["data.bin"]);
    // A mount on a file fails: the file stays.
    assert_eq!(read_small(&*fs, b"/afile", 10).unwrap(), b"x");

    // Devices: one per mount.
    let dev = |p: &[u8]| fs.dev(resolve(&*fs, p, false).unwrap().node);
    assert_eq!(dev(b"/etc/fstab"), 1);
    assert_eq!(dev(b"/home/alice/notes.txt"), 4);
    assert_eq!(dev(b"/var/log"), 5);
    assert_eq!(dev(b"/var/lib/second"), 15);
    assert_eq!(dev(b"/export/data/data.bin"), dev(b"/srv/data/data.bin"));

    // mount_of, is_mountpoint.
    let node = |p: &[u8]| resolve(&*fs, p, false).unwrap().node;
    assert_eq!(
        ns.mount_of(node(b"/home/alice")).unwrap().mountpoint,
        b"/home"
    );
    assert_eq!(ns.mount_of(node(b"/etc")).unwrap().mountpoint, b"/");
    assert!(ns.is_mountpoint(node(b"/home")));
    assert!(ns.is_mountpoint(node(b"/var/lib")));
    assert!(ns.is_mountpoint(node(b"/tmp")));
    assert!(!ns.is_mountpoint(node(b"/etc")));
    assert!(!ns.is_mountpoint(node(b"/")));
    // A bind is a mount of its own, over the source's files (other ids).
    assert_eq!(
        ns.mount_of(node(b"/export/data")).unwrap().mountpoint,
        b"/export/data"
    );
    assert!(ns.is_mountpoint(node(b"/export/data")));
    assert_ne!(node(b"/export/data/data.bin"), node(b"/srv/data/data.bin"));
    // The directory listing says a mountpoint is a directory.
    let root_entries = fs.read_dir(fs.root()).unwrap();
    let home = root_entries.iter().find(|e| e.name == b"home").unwrap();
    assert_eq!(home.node, node(b"/home"));
    assert_eq!(home.file_type, Some(FileType::Directory));

    // locate: the volume and the path inside it.
    let at = |p: &[u8]| {
        let (v, inner) = ns.locate(p).unwrap();
        (
            l.volume(v).name.clone(),
            String::from_utf8_lossy(&inner).into_owned(),
        )
    };
    assert_eq!(
        at(b"/home/alice/notes.txt"),
        ("my-vg/lv_home".into(), "/alice/notes.txt".into())
    );
    assert_eq!(at(b"/home"), ("my-vg/lv_home".into(), "/".into()));
    assert_eq!(
        at(b"/etc/fstab"),
        ("my-vg/lv-root".into(), "/etc/fstab".into())
    );
    assert_eq!(
        at(b"/bin/to-log"),
        ("my-vg/lv-root".into(), "/bin/to-log".into())
    );
    assert_eq!(at(b"/var/lib/second"), ("disk2".into(), "/second".into()));
    assert_eq!(
        at(b"/export/data/data.bin"),
        ("disk1p1".into(), "/data.bin".into())
    );
    assert_eq!(
        at(b"/home/../boot/vmlinuz"),
        ("p1".into(), "/vmlinuz".into())
    );
    assert!(ns.locate(b"/tmp").is_err());
    assert!(ns.locate(b"/boot/efi").is_err());
    // What a copy of a folder would miss.
    let skipped: Vec<&[u8]> = ns
        .unavailable(b"/boot", true)
        .iter()
        .map(|m| m.mountpoint.as_slice())
        .collect();
    assert_eq!(skipped, vec![&b"/boot/efi"[..]]);
    assert_eq!(ns.unavailable(b"/", true).len(), 4);
    assert!(ns.unavailable(b"/", false).is_empty());
    let on: Vec<&[u8]> = ns
        .unavailable(b"/boot/efi/EFI/x", false)
        .iter()
        .map(|m| m.mountpoint.as_slice())
        .collect();
    assert_eq!(on, vec![&b"/boot/efi"[..]]);
}

#[test]
fn symlinks_cross_mounts_and_dotdot_leaves_them() {
    let (_, ns) = namespace(FSTAB);
    let fs = ns.fs();
    // Absolute link on the root LV to a file on the var LV.
    assert_eq!(read_small(&*fs, b"/bin/to-log", 100).unwrap(), b"boot log");
    assert_eq!(
        read_small(&*fs, b"/bin/rel-to-log", 100).unwrap(),
        b"boot log"
    );
    // `..` out of the home LV's root climbs into the root LV.
    assert_eq!(
        read_small(&*fs, b"/home/alice/up-and-out", 100).unwrap(),
        b"guest\n"
    );
    assert_eq!(
        read_small(&*fs, b"/home/alice/abs", 100).unwrap(),
        b"guest\n"
    );
    let r = resolve(&*fs, b"/home/../var/./log/../log/messages", true).unwrap();
    assert_eq!(r.path, b"/var/log/messages");
    let r = resolve(&*fs, b"/home/alice/up-and-out", true).unwrap();
    assert_eq!(r.path, b"/etc/hostname");
}

#[test]
fn a_later_mount_on_the_same_point_wins() {
    let (_, ns) = namespace(
        b"/dev/mapper/my--vg-lv--root / ext4 defaults 0 0\n\
          /dev/my-vg/lv_home /home ext4 defaults 0 0\n\
          /dev/sdb1 /home xfs defaults 0 0\n",
    );
    let fs = ns.fs();
    assert_eq!(ls(&*fs, b"/home"), vec!["data.bin"]);
    let node = resolve(&*fs, b"/home", true).unwrap().node;
    assert_eq!(ns.mount_of(node).unwrap().dev, 3);
    assert_eq!(fs.dev(node), 3);
}

#[test]
fn no_fstab_is_the_root_alone() {
    let l = layout();
    let root = MemFs::new();
    let open = |_: VolumeId| -> Result<Arc<dyn FsView>> { Ok(Arc::new(root.clone())) };
    let id = l.find_volume("my-vg/lv-root").unwrap();
    let ns = Namespace::build(&l, id, &open);
    assert_eq!(ns.mounts().len(), 1);
    assert_eq!(ns.mounts()[0].spec, "my-vg/lv-root");
    assert_eq!(ns.mounts()[0].state, MountState::Mounted);
    assert_eq!(ns.root_volume(), Some(id));
}

#[test]
fn unreadable_root_is_an_empty_tree_with_the_reason() {
    let l = layout();
    let open =
        |_: VolumeId| -> Result<Arc<dyn FsView>> { Err(Error::Unsupported("no reader".into())) };
    let id = l.find_volume("my-vg/lv-root").unwrap();
    let ns = Namespace::build(&l, id, &open);
    assert!(
        matches!(ns.mounts()[0].state, MountState::Unreadable(ref r) if r.contains("no reader"))
    );
    assert!(ns.fs().read_dir(ns.fs().root()).unwrap().is_empty());
}

/// A filesystem whose node ids use all 64 bits (as XFS inode numbers may).
struct HugeIds(MemFs);

const HIGH: u64 = 0xABCD_0000_0000_0000;

impl FsView for HugeIds {
    fn status(&self) -> FsStatus {
        self.0.status()
    }
    fn root(&self) -> NodeId {
        NodeId(self.0.root().0 | HIGH)
    }
    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let mut m = self.0.metadata(NodeId(node.0 & !HIGH))?;
        m.node = node;
        Ok(m)
    }
    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        Ok(self
            .0
            .read_dir(NodeId(dir.0 & !HIGH))?
            .into_iter()
            .map(|mut e| {
                e.node = NodeId(e.node.0 | HIGH);
                e
            })
            .collect())
    }
    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        self.0.read_link(NodeId(node.0 & !HIGH))
    }
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.0.read_at(NodeId(node.0 & !HIGH), offset, buf)
    }
    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        self.0.extents(NodeId(node.0 & !HIGH))
    }
    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        self.0.xattrs(NodeId(node.0 & !HIGH))
    }
}

#[test]
fn huge_inner_ids_are_interned() {
    let l = layout();
    let vols = volumes(
        b"/dev/mapper/my--vg-lv--root / ext4 defaults 0 0\n/dev/my-vg/lv_home /home ext4 defaults 0 0\n",
    );
    let mut home = MemFs::new();
    let a = home.add_dir(ROOT, b"a", 0o755);
    home.add_file(a, b"f", 0o644, b"deep");
    home.add_file(ROOT, b"g", 0o644, b"top");
    let home: Arc<dyn FsView> = Arc::new(HugeIds(home));
    let open = |id: VolumeId| -> Result<Arc<dyn FsView>> {
        let name = l.volume(id).name.as_str();
        if name == "my-vg/lv_home" {
            return Ok(Arc::clone(&home));
        }
        vols.get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.into()))
    };
    let ns = Namespace::build(&l, l.find_volume("my-vg/lv-root").unwrap(), &open);
    let fs = ns.fs();
    let f1 = resolve(&*fs, b"/home/a/f", true).unwrap().node;
    let f2 = resolve(&*fs, b"/home/a/f", true).unwrap().node;
    let g = resolve(&*fs, b"/home/g", true).unwrap().node;
    assert_eq!(f1, f2, "the same node has one id");
    assert_ne!(f1, g);
    assert_eq!(f1.0 >> 56, 0xFF);
    assert_eq!(read_small(&*fs, b"/home/a/f", 10).unwrap(), b"deep");
    assert_eq!(read_small(&*fs, b"/home/g", 10).unwrap(), b"top");
    assert_eq!(fs.dev(f1), 2);
    assert_eq!(ns.mount_of(g).unwrap().mountpoint, b"/home");
    // The root layer keeps its own ids.
    let etc = resolve(&*fs, b"/etc", true).unwrap().node;
    assert_eq!(etc.0 >> 56, 0);
    // An id nobody handed out is an error, not a panic.
    assert!(fs.metadata(NodeId(u64::MAX)).is_err());
    assert!(fs.metadata(NodeId(0x7F << 56)).is_err());
}

#[test]
fn a_bind_shows_the_source_without_the_mounts_below_it() {
    let (l, ns) = namespace(
        b"/dev/mapper/my--vg-lv--root / ext4 defaults 0 0\n\
          /dev/my-vg/lv_var /var xfs defaults 0 0\n\
          /dev/sdc /var/lib ext4 defaults 0 0\n\
          /var /srv/inner none bind 0 0\n\
          /srv /srv none bind 0 0\n\
          /nowhere /srv/x none bind,nofail 0 0\n",
    );
    let fs = ns.fs();
    assert_eq!(ls(&*fs, b"/var/lib"), vec!["second"]);
    // Before /srv was bound over itself, /srv/inner showed lv_var's root,
    // with its own (empty) lib, not what is mounted on /var/lib.
    // Binding /srv over itself shows the root LV's /srv as it is on the
    // volume: /srv/inner, made up, is no more (the kernel would have
    // refused it anyway).
    // (x is the missing bind after it, an empty folder.)
    assert_eq!(ls(&*fs, b"/srv"), vec!["x"]);
    assert!(resolve(&*fs, b"/srv/inner", true).is_err());
    // A bind's spec is a path: it names no volume.
    assert_eq!(ns.mounts()[3].volume, None);
    assert_eq!(ns.mounts()[3].dev, ns.mounts()[1].dev);
    assert!(matches!(ns.mounts()[5].state, MountState::Missing(_)));
    assert!(ns.mounts()[5].state.reason().unwrap().contains("/nowhere"));
    let (_, ns) = namespace(
        b"/dev/mapper/my--vg-lv--root / ext4 defaults 0 0\n\
          /dev/my-vg/lv_var /var xfs defaults 0 0\n\
          /dev/sdc /var/lib ext4 defaults 0 0\n\
          /var /srv none bind 0 0\n",
    );
    let fs = ns.fs();
    assert_eq!(ls(&*fs, b"/srv"), vec!["lib", "log"]);
    assert!(ls(&*fs, b"/srv/lib").is_empty());
    assert_eq!(
        read_small(&*fs, b"/srv/log/messages", 100).unwrap(),
        b"boot log"
    );
    let (v, inner) = ns.locate(b"/srv/log/messages").unwrap();
    assert_eq!(
        (l.volume(v).name.as_str(), inner.as_slice()),
        ("my-vg/lv_var", &b"/log/messages"[..])
    );
    assert_eq!(fs.dev(resolve(&*fs, b"/srv/log", true).unwrap().node), 2);
}

/// A btrfs-like volume: the top level holds subvolumes `@` (256), `@home`
/// (257) and `@log` (258) and a plain folder; `@/etc/fstab` is `fstab`.
fn btrfs_volume(fstab: &[u8]) -> MemFs {
    let mut fs = MemFs::new();
    let top = fs.root_id();
    fs.add_dir(top, b"plain", 0o755);
    let at = fs.add_dir(top, b"@", 0o755);
    let etc = fs.add_dir(at, b"etc", 0o755);
    fs.add_file(etc, b"fstab", 0o644, fstab);
    fs.add_file(etc, b"hostname", 0o644, b"subvol-root\n");
    fs.add_dir(at, b"home", 0o755);
    let var = fs.add_dir(at, b"var", 0o755);
    fs.add_dir(var, b"log", 0o755);
    let home = fs.add_dir(top, b"@home", 0o755);
    let alice = fs.add_dir(home, b"alice", 0o755);
    fs.add_file(alice, b"notes.txt", 0o644, b"from @home\n");
    let log = fs.add_dir(top, b"@log", 0o755);
    fs.add_file(log, b"syslog", 0o644, b"from @log\n");
    fs.subvolumes = vec![
        (256, b"@".to_vec(), at),
        (257, b"@home".to_vec(), home),
        (258, b"@log".to_vec(), log),
    ];
    fs
}

/// The namespace of a guest whose root is `root_fs` (on `my-vg/lv-root`)
/// and whose `my-vg/lv_home` is a plain filesystem; how often each volume was opened.
fn subvol_namespace(root_fs: MemFs) -> (Namespace, HashMap<String, usize>) {
    let l = layout();
    let mut plain = MemFs::new();
    plain.add_file(ROOT, b"plain-home", 0o644, b"x");
    let root_fs: Arc<dyn FsView> = Arc::new(root_fs);
    let plain: Arc<dyn FsView> = Arc::new(plain);
    let opens = std::sync::Mutex::new(HashMap::<String, usize>::new());
    let open = |id: VolumeId| -> Result<Arc<dyn FsView>> {
        let name = l.volume(id).name.clone();
        *opens.lock().unwrap().entry(name.clone()).or_default() += 1;
        match name.as_str() {
            "my-vg/lv-root" => Ok(Arc::clone(&root_fs)),
            "my-vg/lv_home" => Ok(Arc::clone(&plain)),
            _ => Err(Error::NotFound(name)),
        }
    };
    let root = l.find_volume("my-vg/lv-root").unwrap();
    let ns = Namespace::build(&l, root, &open);
    let opens = opens.into_inner().unwrap();
    (ns, opens)
}

#[test]
fn btrfs_subvolumes_at_root_and_home_share_one_volume() {
    let fstab = b"/dev/mapper/my--vg-lv--root / btrfs subvol=@,compress=zstd:1 0 0\n\
        /dev/mapper/my--vg-lv--root /home btrfs subvol=/@home 0 0\n\
        /dev/mapper/my--vg-lv--root /var/log btrfs subvolid=258 0 0\n\
        /dev/mapper/my--vg-lv--root /mnt/top btrfs subvolid=5 0 0\n";
    let (ns, opens) = subvol_namespace(btrfs_volume(fstab));
    let fs = ns.fs();
    // The root is subvolume @ (found through its own fstab), not the top level.
    assert_eq!(
        read_small(&*fs, b"/etc/hostname", 100).unwrap(),
        b"subvol-root\n"
    );
    assert!(resolve(&*fs, b"/@home", true).is_err());
    assert_eq!(
        read_small(&*fs, b"/home/alice/notes.txt", 100).unwrap(),
        b"from @home\n"
    );
    assert_eq!(
        read_small(&*fs, b"/var/log/syslog", 100).unwrap(),
        b"from @log\n"
    );
    assert_eq!(ls(&*fs, b"/mnt/top"), vec!["@", "@home", "@log", "plain"]);
    // `..` out of a subvolume mount climbs into the guest, not the volume.
    assert_eq!(
        read_small(&*fs, b"/home/../etc/hostname", 100).unwrap(),
        b"subvol-root\n"
    );
    let states: Vec<_> = ns.mounts().iter().map(|m| m.state.clone()).collect();
    assert_eq!(states, vec![MountState::Mounted; 4]);
    assert_eq!(ns.mounts()[0].options, "subvol=@,compress=zstd:1");
    // One volume, opened once, told about once.
    assert_eq!(opens.get("my-vg/lv-root"), Some(&1));
    assert!(
        ns.notes()
            .iter()
            .any(|n| n.contains("the root is subvolume @")),
        "{:?}",
        ns.notes()
    );
    // Each mount its own device.
    let home = resolve(&*fs, b"/home", true).unwrap().node;
    assert_ne!(fs.dev(home), fs.dev(fs.root()));
    // A path inside a subvolume has no volume path to write to; the top level has.
    let e = ns.locate(b"/home/alice/notes.txt").unwrap_err().to_string();
    assert!(e.contains("subvol=/@home"), "{e}");
    assert!(
        ns.locate(b"/etc/hostname")
            .unwrap_err()
            .to_string()
            .contains("subvol=@")
    );
    let (v, inner) = ns.locate(b"/mnt/top/@home/alice/notes.txt").unwrap();
    assert_eq!(Some(v), ns.root_volume());
    assert_eq!(inner, b"/@home/alice/notes.txt");
    // Where the view lists no subvolumes, the subvolume's id is not known
    // either: no mount of it can be asked for.
    let e = ns
        .locate_in_subvolume(b"/home/alice/notes.txt")
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not list its subvolumes"), "{e}");
    let (_, none, inner) = ns
        .locate_in_subvolume(b"/mnt/top/@home/alice/notes.txt")
        .unwrap();
    assert_eq!(
        (none, inner.as_slice()),
        (None, &b"/@home/alice/notes.txt"[..])
    );
}

#[test]
fn btrfs_subvolume_problems_are_reasons() {
    let fstab = b"/dev/mapper/my--vg-lv--root / btrfs subvol=@ 0 0\n\
        /dev/mapper/my--vg-lv--root /gone btrfs subvol=@gone,nofail 0 0\n\
        /dev/mapper/my--vg-lv--root /both btrfs subvol=@home,subvolid=258 0 0\n\
        /dev/mapper/my--vg-lv--root /bad btrfs subvolid=x 0 0\n\
        /dev/my-vg/lv_home /plain ext4 subvol=@home 0 0\n\
        /dev/my-vg/lv_home /plain2 ext4 defaults 0 0\n";
    let (ns, opens) = subvol_namespace(btrfs_volume(fstab));
    let reason = |mp: &[u8]| {
        let m = ns.mounts().iter().find(|m| m.mountpoint == mp).unwrap();
        assert!(matches!(m.state, MountState::Unreadable(_)), "{m:?}");
        m.state.reason().unwrap()
    };
    assert!(
        reason(b"/gone").contains("subvol=@gone"),
        "{}",
        reason(b"/gone")
    );
    assert!(reason(b"/both").contains("different subvolumes"));
    assert!(reason(b"/bad").contains("subvolid=x is not a number"));
    // A filesystem without subvolumes: not applied, and nothing shown rather than its tree.
    assert!(
        reason(b"/plain").contains("subvol=@home was not applied"),
        "{}",
        reason(b"/plain")
    );
    let fs = ns.fs();
    assert!(ls(&*fs, b"/plain").is_empty());
    assert_eq!(ls(&*fs, b"/plain2"), vec!["plain-home"]);
    assert_eq!(opens.get("my-vg/lv_home"), Some(&1));
    assert!(
        ns.notes()
            .iter()
            .any(|n| n.contains("/plain") && n.contains("not applied"))
    );
}

#[test]
fn root_subvol_without_subvolume_support_is_noted() {
    // The fstab is at the top of a filesystem that knows no subvolumes.
    let mut fs = MemFs::new();
    let etc = fs.add_dir(ROOT, b"etc", 0o755);
    fs.add_file(
        etc,
        b"fstab",
        0o644,
        b"/dev/mapper/my--vg-lv--root / btrfs subvol=@ 0 0\n",
    );
    let (ns, _) = subvol_namespace(fs);
    assert_eq!(ns.mounts()[0].state, MountState::Mounted);
    assert_eq!(ls(&*ns.fs(), b"/"), vec!["etc"]);
    assert!(
        ns.notes()
            .iter()
            .any(|n| n.contains("subvol=@ was not applied") && n.contains("holds /etc/fstab")),
        "{:?}",
        ns.notes()
    );
}

#[test]
fn root_fstab_naming_another_subvolume_shows_it() {
    // openSUSE-like: the default tree holds an fstab whose `/` line names @.
    let fstab = b"/dev/mapper/my--vg-lv--root / btrfs subvol=@ 0 0\n";
    let mut fs = btrfs_volume(fstab);
    let etc = fs.add_dir(ROOT, b"etc", 0o755);
    fs.add_file(etc, b"fstab", 0o644, fstab);
    let (ns, _) = subvol_namespace(fs);
    assert_eq!(
        read_small(&*ns.fs(), b"/etc/hostname", 100).unwrap(),
        b"subvol-root\n"
    );
    assert!(
        ns.notes()
            .iter()
            .any(|n| n.contains("fstab's subvol=@ is shown"))
    );
}

fn subvol(id: u64, path: &[u8], default: bool) -> crate::fs::btrfs::SubvolInfo {
    crate::fs::btrfs::SubvolInfo {
        id,
        parent_id: 5,
        path: path.to_vec(),
        uuid: [0; 16],
        read_only: false,
        snapshot_of: None,
        default,
        generation: 1,
        otime: crate::fs::Timestamp::default(),
    }
}

#[test]
fn volume_at_subvolume_grammar() {
    let mut l = layout();
    let v = l.find_volume("p1").unwrap();
    l.subvolumes.push((
        v,
        vec![
            subvol(5, b"", true),
            subvol(256, b"@", false),
            subvol(257, b"@home", false),
            subvol(258, b"snaps/home", false),
            subvol(259, b"@/var", false),
        ],
    ));
    let get = |spec: &str| l.find_volume_or_subvolume(spec);
    // The volume whole: its default subvolume.
    assert_eq!(get("p1").unwrap(), (v, None));
    assert_eq!(get("p1@/").unwrap(), (v, Some(5)));
    assert_eq!(get("p1@/@home").unwrap(), (v, Some(257)));
    assert_eq!(get("p1@@home").unwrap(), (v, Some(257)));
    assert_eq!(get("p1@id=259").unwrap(), (v, Some(259)));
    assert_eq!(get("p1@@/var").unwrap(), (v, Some(259)));
    assert_eq!(get("p1@var").unwrap(), (v, Some(259)));
    // `home` is the last component of two: ambiguous, both named.
    let e = get("p1@home").unwrap_err().to_string();
    assert!(
        e.contains("p1@/@home") && e.contains("p1@/snaps/home"),
        "{e}"
    );
    // A full path is exact; `/home` is no subvolume.
    assert_eq!(get("p1@snaps/home").unwrap(), (v, Some(258)));
    assert!(get("p1@/home").is_err());
    assert!(get("p1@id=7").is_err());
    assert!(get("p1@id=x").is_err());
    // Any spelling of the volume before the `@`.
    let by_uuid = l.find_volume_or_subvolume(&format!(
        "UUID={}@/@",
        l.volume(v).content.uuid.clone().unwrap()
    ));
    assert_eq!(by_uuid.unwrap(), (v, Some(256)));
    // A volume without subvolumes says so.
    let other = l.find_volume("my-vg/lv_home").unwrap();
    assert!(l.find_subvolume(other, "x").is_err());
    assert_eq!(l.subvolume_name(v, 257), "p1@/@home");
    assert_eq!(l.subvolume_name(v, 5), "p1@/");
}

#[test]
fn windows_display_writes_tree_and_volume_paths_from_their_drive() {
    use super::windows_display;
    assert_eq!(
        windows_display(None, b"/C:/Windows/System32").as_deref(),
        Some(r"C:\Windows\System32")
    );
    // A volume opened alone: its paths start at the drive the guest gives it.
    assert_eq!(
        windows_display(Some(r"D:\"), b"/Backups/a b.txt").as_deref(),
        Some(r"D:\Backups\a b.txt")
    );
    assert_eq!(windows_display(Some(r"C:\"), b"/").as_deref(), Some(r"C:\"));
    // Not on a drive.
    assert_eq!(windows_display(None, b"/etc/fstab"), None);
    assert_eq!(windows_display(Some("/boot"), b"/grub"), None);
}
