//! Our XFS reader against the kernel: the walk of every fixture built by
//! `tests/fixtures/make/xfs.sh` equals the kernel's (recorded when the
//! fixture was built; as root, `kernel_mounts_match_live` mounts again).

use crate::common;
use crate::ext_support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ext_support::{assert_same, manifest, walk};
use vmrescue::fs::xfs::{NO_JOURNAL_NOTE, REPLAYED_NOTE, Xfs};
use vmrescue::fs::{FsView, path};
use vmrescue::io::{FileSource, ReadAt};

/// v5 fixtures written through a kernel mount.
const KERNEL_BUILT: &[&str] = &[
    "xfs-v5",
    "xfs-v5-1k",
    "xfs-v5-dir64k",
    "xfs-v5-i2048",
    "xfs-v5-nobigtime",
    "xfs-v5-nrext64",
];

fn open_path(p: &Path) -> Xfs {
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(p).expect("open image"));
    Xfs::open(src).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn open(name: &str) -> Xfs {
    open_path(&common::fixture(name))
}

fn parity(name: &str) {
    let fs = open(name);
    let ours = walk(&fs);
    assert_same(name, &ours, &manifest(&format!("{name}.walk")));
    let st = fs.status();
    assert!(
        st.problems.is_empty(),
        "{name}: problems: {:?}",
        st.problems
    );
    assert!(st.notes.is_empty(), "{name}: notes: {:?}", st.notes);
    assert_eq!(st.fs_type, "xfs");
}

#[test]
fn v5_defaults_match_the_kernel() {
    parity("xfs-v5");
    assert_eq!(open("xfs-v5").status().label.as_deref(), Some("vmrx5"));
}

#[test]
fn v5_1k_blocks_match_the_kernel() {
    parity("xfs-v5-1k");
}

#[test]
fn v5_64k_directory_blocks_match_the_kernel() {
    parity("xfs-v5-dir64k");
}

#[test]
fn v5_2048_byte_inodes_match_the_kernel() {
    parity("xfs-v5-i2048");
}

#[test]
fn v5_without_bigtime_matches_the_kernel() {
    parity("xfs-v5-nobigtime");
}

#[test]
fn v5_nrext64_rmapbt_matches_the_kernel() {
    parity("xfs-v5-nrext64");
}

/// A manifest line without mtime and ctime (columns 7 and 8), and without
/// the size of directories (the staged tree's sizes are the host's).
fn mask_v4(line: &str) -> String {
    let mut cols: Vec<&str> = line.split('\t').collect();
    if cols.len() == 11 {
        cols[6] = "-";
        cols[7] = "-";
        if cols[1] == "d" {
            cols[5] = "-";
        }
    }
    cols.join("\t")
}

fn parity_v4(name: &str) {
    let fs = open(name);
    let ours: Vec<String> = walk(&fs).iter().map(|l| mask_v4(l)).collect();
    let theirs: Vec<String> = manifest(&format!("{name}.walk"))
        .iter()
        .map(|l| mask_v4(l))
        .collect();
    assert_same(name, &ours, &theirs);
    assert!(
        fs.status().problems.is_empty(),
        "{:?}",
        fs.status().problems
    );
}

#[test]
fn v4_matches_the_staged_tree() {
    parity_v4("xfs-v4");
}

#[test]
fn v4_without_ftype_512_byte_blocks_matches_the_staged_tree() {
    parity_v4("xfs-v4-noftype");
}

#[test]
fn v4_times_are_those_mkfs_wrote() {
    // mkfs -p stamps every inode with one time; v4 has no bigtime.
    let fs = open("xfs-v4");
    let root = fs.metadata(fs.root()).unwrap();
    let n = path::resolve(&fs, b"/dir/sub/medium", false).unwrap().node;
    let m = fs.metadata(n).unwrap();
    assert!(m.mtime.sec > 1_600_000_000, "{:?}", m.mtime);
    assert!((m.mtime.sec - root.mtime.sec).abs() < 600);
    assert_eq!(m.crtime, None, "v4 inodes have no creation time");
}

fn node(fs: &dyn FsView, p: &str) -> vmrescue::fs::NodeId {
    path::resolve(fs, p.as_bytes(), false)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .node
}

fn extents_of(fs: &dyn FsView, p: &str) -> Vec<(u64, u64, bool)> {
    fs.extents(node(fs, p))
        .unwrap()
        .into_iter()
        .map(|x| (x.offset, x.len, x.unwritten))
        .collect()
}

#[test]
fn extents_show_holes_and_preallocation() {
    let fs = open("xfs-v5");
    // 4 KiB at 0, 1 MiB and 20 MiB of a 30 MiB file (speculative
    // preallocation may leave unwritten blocks after the last write).
    let written: Vec<_> = extents_of(&fs, "/sparse")
        .into_iter()
        .filter(|x| !x.2)
        .collect();
    assert_eq!(
        written,
        vec![
            (0, 4096, false),
            (1 << 20, 4096, false),
            (20 << 20, 4096, false)
        ]
    );
    // fallocate 1 MiB, then 8 KiB written at 256 KiB.
    assert_eq!(
        extents_of(&fs, "/prealloc"),
        vec![
            (0, 256 << 10, true),
            (256 << 10, 8 << 10, false),
            (264 << 10, (1 << 20) - (264 << 10), true)
        ]
    );
    assert_eq!(extents_of(&fs, "/keepsize"), vec![]);
    assert_eq!(
        extents_of(&fs, "/punched"),
        vec![(0, 40960, false), (122_880, 200_000 - 122_880, false)]
    );
    // Every other block of /frag was written: 600 data extents (the gaps
    // may be preallocated, unwritten), a btree fork.
    let frag: Vec<_> = extents_of(&fs, "/frag")
        .into_iter()
        .filter(|x| !x.2)
        .collect();
    assert_eq!(frag.len(), 600);
    assert!(
        frag.iter()
            .enumerate()
            .all(|(i, x)| *x == (i as u64 * 8192, 4096, false)),
        "{:?}",
        &frag[..4]
    );
    let inode = fs.read_inode(node(&fs, "/frag").0).unwrap();
    assert_eq!(inode.di_format, 3, "/frag has a btree data fork");
}

fn getfattr(mnt: &Path, p: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let out = Command::new("getfattr")
        .args(["--absolute-names", "-h", "-d", "-m", "-", "-e", "hex"])
        .arg(mnt.join(p.trim_start_matches('/')))
        .output()
        .expect("getfattr");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<(Vec<u8>, Vec<u8>)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| {
            let hex = v.trim_start_matches("0x");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (n.as_bytes().to_vec(), bytes)
        })
        .collect();
    v.sort();
    v
}

/// A read-only kernel mount of an XFS image, removed on drop.
struct XfsMount {
    dir: tempfile::TempDir,
    loopdev: String,
}

impl XfsMount {
    fn new(image: &Path) -> XfsMount {
        let out = Command::new("losetup")
            .args(["-f", "--show", "-r"])
            .arg(image)
            .output()
            .unwrap();
        assert!(out.status.success());
        let loopdev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let m = XfsMount {
            dir: tempfile::tempdir().unwrap(),
            loopdev,
        };
        let st = Command::new("mount")
            .args(["-t", "xfs", "-o", "ro,norecovery,nouuid"])
            .arg(&m.loopdev)
            .arg(m.dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount {}", image.display());
        m
    }
}

impl Drop for XfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .status();
    }
}

#[test]
fn kernel_mounts_match_live() {
    common::require_root("loop-mounts every v5 XFS fixture read-only");
    for name in KERNEL_BUILT {
        let m = XfsMount::new(&common::fixture(name));
        let theirs = ext_support::kernel_walk(m.dir.path());
        drop(m);
        assert_same(name, &walk(&open(name)), &theirs);
    }
}

#[test]
fn xattrs_equal_getfattr() {
    common::require_root("loop-mounts an XFS fixture to run getfattr");
    for name in ["xfs-v5", "xfs-v5-1k"] {
        let fs = open(name);
        let m = XfsMount::new(&common::fixture(name));
        for p in [
            "/hello.txt",
            "/dir",
            "/short-link",
            "/xattr-leaf",
            "/xattr-node",
        ] {
            let mut ours: Vec<(Vec<u8>, Vec<u8>)> = fs
                .xattrs(node(&fs, p))
                .unwrap()
                .into_iter()
                .map(|x| (x.name, x.value))
                .collect();
            ours.sort();
            let theirs = getfattr(m.dir.path(), p);
            assert!(!theirs.is_empty(), "{name}{p}: no xattrs at all");
            assert_eq!(ours, theirs, "{name}{p}");
        }
    }
}

#[test]
fn xattr_forms_are_all_read() {
    let fs = open("xfs-v5");
    let xs = fs.xattrs(node(&fs, "/xattr-node")).unwrap();
    assert_eq!(xs.len(), 1500);
    let xs = fs.xattrs(node(&fs, "/xattr-leaf")).unwrap();
    assert_eq!(xs.len(), 61);
    let remote = xs.iter().find(|x| x.name == b"user.remote").unwrap();
    assert_eq!(remote.value.len(), 5000);
    for (p, fork) in [("/hello.txt", 1), ("/xattr-leaf", 2), ("/xattr-node", 2)] {
        let i = fs.read_inode(node(&fs, p).0).unwrap();
        assert_eq!(i.di_aformat, fork, "{p}");
    }
}

#[test]
fn directory_forms_are_all_covered() {
    let fs = open("xfs-v5");
    // Shortform (local), block (one directory block), leaf (several data
    // blocks, one leaf block), node (with a btree data fork): as xfs_db
    // showed them when this test was written.
    let inode = |p: &str| fs.read_inode(node(&fs, p).0).unwrap();
    assert_eq!(inode("/dir").di_format, 1);
    assert_eq!(inode("/dir0").di_format, 1);
    assert_eq!(fs.read_dir(node(&fs, "/dir")).unwrap().len(), 3);
    assert_eq!(
        (inode("/dir5").di_format, inode("/dir5").di_size),
        (2, 4096)
    );
    assert_eq!(
        (inode("/dir200").di_format, inode("/dir200").di_size),
        (2, 12288)
    );
    assert_eq!(inode("/dir5000").di_format, 3);
    assert_eq!(inode("/dir50000").di_format, 3);
    for (p, n) in [
        ("/dir0", 0),
        ("/dir5", 5),
        ("/dir200", 200),
        ("/dir5000", 5000),
        ("/dir50000", 50000),
    ] {
        let entries = fs.read_dir(node(&fs, p)).unwrap();
        assert_eq!(entries.len(), n, "{p}");
        if let Some(e) = entries.last() {
            assert_eq!(
                fs.lookup(node(&fs, p), &e.name).unwrap(),
                Some(e.node),
                "{p}"
            );
        }
    }
}

#[test]
fn dirty_log_with_no_journal_shows_the_on_disk_state_and_says_so() {
    let src: Arc<dyn ReadAt> =
        Arc::new(FileSource::open(&common::fixture("xfs-dirty")).expect("open image"));
    let fs = Xfs::open_with(src, &vmrescue::fs::FsOptions { no_journal: true }).unwrap();
    assert_same("xfs-dirty", &walk(&fs), &manifest("xfs-dirty.walk"));
    let st = fs.status();
    assert_eq!(st.notes, vec![NO_JOURNAL_NOTE.to_string()]);
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    assert!(path::resolve(&fs, b"/after", false).is_err());
}

#[test]
fn dirty_log_is_replayed_by_default() {
    let fs = open("xfs-dirty");
    let st = fs.status();
    assert!(
        st.notes.iter().any(|n| n.starts_with(REPLAYED_NOTE)),
        "{:?}",
        st.notes
    );
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    assert!(path::resolve(&fs, b"/after/only-in-the-log", false).is_ok());
}

#[test]
fn clean_logs_need_no_note() {
    for name in [
        "xfs-v5",
        "xfs-v5-1k",
        "xfs-v4",
        "xfs-v4-noftype",
        "bare-xfs",
    ] {
        assert!(
            open(name).status().notes.is_empty(),
            "{name}: {:?}",
            open(name).status().notes
        );
    }
}

/// `vmrescue walk IMAGE --volume V --engine E`: (exit code, stdout, stderr).
fn cli_walk(volume: &str, engine: &str) -> (i32, String, String) {
    let a = common::fixture("kernel-a");
    let b = common::fixture("kernel-b");
    let out = common::vmrescue(&[
        "walk",
        a.to_str().unwrap(),
        "--disk",
        b.to_str().unwrap(),
        "--volume",
        volume,
        "--engine",
        engine,
    ]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn walk_reads_xfs_partitions_and_striped_lvs_in_userspace() {
    for (volume, manifest) in [
        ("p2", "kernel-a.p2.manifest"),
        ("vmrk/lv_xfs", "kernel-vmrk.lv_xfs.manifest"),
    ] {
        let (code, out, err) = cli_walk(volume, "auto");
        assert_eq!(code, 0, "{volume}: {err}");
        assert!(
            err.contains("userspace engine (xfs: read by vmrescue itself)"),
            "{volume}: {err}"
        );
        assert_eq!(out, common::report(manifest), "{volume}");
    }
}

#[test]
fn kernel_engine_still_serves_xfs() {
    common::require_root("mounts an XFS partition through the kernel engine");
    let (code, kernel, err) = cli_walk("p2", "kernel");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("kernel engine"), "{err}");
    let (code, userspace, err) = cli_walk("p2", "userspace");
    assert_eq!(code, 0, "{err}");
    assert_eq!(kernel, userspace);
}

#[test]
fn cp_keeps_holes_and_xattrs() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture("xfs-v5");
    let out = common::vmrescue(&[
        "cp",
        "-q",
        image.to_str().unwrap(),
        "/sparse",
        "/prealloc",
        "/frag",
        "/hello.txt",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = open("xfs-v5");
    // Only /sparse has real holes: /prealloc and /frag are fully allocated
    // (partly unwritten), which cp copies as data.
    for (name, most) in [
        ("sparse", 64 << 10),
        ("prealloc", 2 << 20),
        ("frag", 16 << 20),
    ] {
        let m = std::fs::metadata(dir.path().join(name)).unwrap();
        let want = fs.metadata(node(&fs, &format!("/{name}"))).unwrap();
        assert_eq!(m.len(), want.size, "{name}");
        assert!(
            m.blocks() * 512 <= most,
            "{name}: holes lost ({} blocks)",
            m.blocks()
        );
        let copied = std::fs::read(dir.path().join(name)).unwrap();
        let mut ours = vec![0u8; want.size as usize];
        let n = fs.read_at(want.node, 0, &mut ours).unwrap();
        assert_eq!(n, ours.len());
        assert!(copied == ours, "{name}: contents differ");
    }
    if common::is_root() {
        let v = xattr_of(&dir.path().join("hello.txt"), "user.color");
        assert_eq!(v.as_deref(), Some(&b"blue"[..]));
    }
}

fn xattr_of(p: &Path, name: &str) -> Option<Vec<u8>> {
    let out = Command::new("getfattr")
        .args(["--absolute-names", "--only-values", "-n", name])
        .arg(p)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}
