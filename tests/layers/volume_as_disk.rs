//! A volume is a disk too: the demo disk (MBR, ext4 /boot, LVM2 VG vg_ta
//! with ext4 LVs and swap) copied into the first partition of another disk
//! image, and that partition's bytes scanned again as a disk
//! (`Layout::volume_as_disk` + `scan_sources`), gives the same partitions,
//! volume group, volumes and files as the demo disk scanned on its own. What
//! needs a host file (in-use checks, the kernel engine) refuses such a disk
//! with an error.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::{FileType, FsOptions, FsView, NodeId};
use vmrescue::layers::{self, DiskOrigin, Layout, ScanOptions};

/// Where the inner disk starts in the outer one.
const START: u64 = 1 << 20;

/// `outer` made of an MBR (written by sfdisk) with one partition from
/// [`START`] holding the bytes of `inner`, copied sparsely.
fn disk_holding(inner: &Path, outer: &Path) {
    let size = std::fs::metadata(inner).expect("inner size").len();
    assert_eq!(size % 512, 0, "the demo disk is whole sectors");
    let f = File::create(outer).expect("create outer image");
    f.set_len(START + size + START).expect("size outer image");
    drop(f);
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(outer)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk (Debian package fdisk)");
    let script = format!(
        "label: dos\nstart={}, size={}, type=83\n",
        START / 512,
        size / 512
    );
    sfdisk
        .stdin
        .take()
        .expect("sfdisk stdin")
        .write_all(script.as_bytes())
        .expect("sfdisk script");
    assert!(sfdisk.wait().expect("sfdisk").success(), "sfdisk failed");
    let src = File::open(inner).expect("open inner");
    let dst = std::fs::OpenOptions::new()
        .write(true)
        .open(outer)
        .expect("open outer");
    let mut buf = vec![0u8; 1 << 20];
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = buf.len().min((size - at) as usize);
        src.read_exact_at(&mut buf[..n], at).expect("read inner");
        if buf[..n] != zeros[..n] {
            dst.write_all_at(&buf[..n], START + at)
                .expect("write outer");
        }
        at += n as u64;
    }
}

/// A node: (path, type, size, link target or first bytes).
type Node = (Vec<u8>, FileType, u64, Vec<u8>);

/// Every node under the root.
fn tree(fs: &dyn FsView) -> Vec<Node> {
    let mut out = Vec::new();
    let mut todo: Vec<(Vec<u8>, NodeId)> = vec![(b"/".to_vec(), fs.root())];
    while let Some((path, node)) = todo.pop() {
        assert!(out.len() < 100_000, "tree too large");
        let m = fs.metadata(node).expect("metadata");
        let body = match m.file_type {
            FileType::Symlink => fs.read_link(node).expect("read link"),
            FileType::Regular => {
                let mut b = vec![0u8; usize::try_from(m.size.min(1 << 16)).unwrap()];
                let n = fs.read_at(node, 0, &mut b).expect("read file");
                b.truncate(n);
                b
            }
            FileType::Directory => {
                for e in fs.read_dir(node).expect("read dir") {
                    if e.name == b"." || e.name == b".." {
                        continue;
                    }
                    let mut p = path.clone();
                    if p.len() > 1 {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&e.name);
                    todo.push((p, e.node));
                }
                Vec::new()
            }
            _ => Vec::new(),
        };
        out.push((path, m.file_type, m.size, body));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every filesystem's tree, by volume name.
fn files(layout: &Layout) -> Vec<(String, Vec<Node>)> {
    let us = Userspace::new(FsOptions::default());
    layout
        .filesystems()
        .map(|v| {
            let fs = us
                .open_fs(layout, v.id, &FsOptions::default())
                .unwrap_or_else(|e| panic!("open {}: {e}", v.name));
            (v.name.clone(), tree(&*fs))
        })
        .collect()
}

/// The demo disk (`inner`) inside p1 of `outer` in `dir`: the layouts of
/// `outer` and of its p1 scanned as a disk.
struct Nested {
    inner: PathBuf,
    outer: PathBuf,
    host: Layout,
    nested: Layout,
}

fn nested_demo(dir: &Path) -> Nested {
    let inner = vmrescue::demo::unpack_into(dir).expect("unpack demo");
    let outer = dir.join("outer.img");
    disk_holding(&inner, &outer);
    let host = layers::scan(vec![vmrescue::image::open(&outer).expect("open outer")]);
    let p1 = host.volumes.iter().find(|v| v.name == "p1").expect("p1").id;
    let nested = layers::scan_sources(vec![host.volume_as_disk(p1)], ScanOptions::default());
    Nested {
        inner,
        outer,
        host,
        nested,
    }
}

#[test]
fn a_disk_inside_a_partition_reads_as_the_disk_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = nested_demo(dir.path());
    let (outer, host, nested) = (&n.outer, &n.host, &n.nested);
    let alone = layers::scan(vec![vmrescue::image::open(&n.inner).expect("open demo")]);
    let p1 = host.volumes.iter().find(|v| v.name == "p1").expect("p1").id;
    assert_eq!(
        host.volume(p1).size(),
        alone.disks[0].size(),
        "p1 holds the demo disk"
    );
    let disk = &nested.disks[0];
    assert_eq!(
        disk.origin,
        DiskOrigin::Volume {
            volume: "p1".into(),
            on: vec![DiskOrigin::Host(outer.clone())],
        }
    );
    assert_eq!(
        disk.origin.to_string(),
        format!("p1 on {}", outer.display())
    );
    assert_eq!(disk.size(), alone.disks[0].size());
    assert_eq!(disk.table, alone.disks[0].table, "partition table");
    assert_eq!(disk.problems, alone.disks[0].problems);
    assert_eq!(nested.groups, alone.groups, "volume groups");
    assert_eq!(
        serde_json::to_value(&nested.volumes).unwrap(),
        serde_json::to_value(&alone.volumes).unwrap(),
        "volumes: names, kinds, mappings, content"
    );
    let names: Vec<&str> = nested.volumes.iter().map(|v| v.name.as_str()).collect();
    for want in ["p1", "p2", "vg_ta/lv_root", "vg_ta/lv_home"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }

    let (want, got) = (files(&alone), files(nested));
    assert!(want.len() >= 3, "the demo's filesystems: {}", want.len());
    assert!(
        want.iter()
            .any(|(_, t)| t.iter().any(|(p, ..)| p == b"/lib64/libc.so.6")),
        "the story's link is there"
    );
    assert_eq!(got, want, "files of every filesystem");
}

#[test]
fn what_needs_a_host_file_refuses_a_volume_read_as_a_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = nested_demo(dir.path());
    let (outer, host, nested) = (&n.outer, &n.host, &n.nested);
    let root = nested
        .volumes
        .iter()
        .find(|v| v.name == "vg_ta/lv_root")
        .expect("lv_root")
        .id;

    let e = nested.disks[0]
        .host_path("a loop device")
        .expect_err("not a host file");
    assert!(e.to_string().contains("not a host file"), "{e}");
    let e =
        vmrescue::engine::kernel::repair::check_not_in_use(nested, root).expect_err("in-use check");
    assert!(e.to_string().contains("not a host file"), "{e}");
    let why = vmrescue::repair::relink::in_use(nested, root, Some(&dir.path().join("no-pve")));
    assert!(why.iter().any(|w| w.contains("not a host file")), "{why:?}");
    // The host disk itself still is one.
    assert_eq!(
        host.disks[0].host_path("a loop device").unwrap(),
        outer.as_path()
    );
}
