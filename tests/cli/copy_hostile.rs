//! Copy-out from a hostile guest (played by `fs::mem`): names no host
//! directory can hold, loops, odd symlinks. Nothing may be written outside
//! DEST, and listings show escapes, never raw bytes.

use crate::common;
use crate::copy_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use copy_support::{data_ranges, listing};
use vmrescue::fs::mem::MemFs;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView, NodeId};
use vmrescue::ops::copy::{CopyJob, CopyOptions, CopySource, Summary, plan};
use vmrescue::ops::list::{Owners, impossible_name, list_dir, long_lines};

const GIB: u64 = 1 << 30;

struct Guest {
    fs: MemFs,
    d: NodeId,
}

fn hostile() -> Guest {
    let mut fs = MemFs::new();
    let root = fs.root_id();
    let d = fs.add_dir(root, b"d", 0o755);
    fs.add_file(d, b"a/b", 0o644, b"slash in the name");
    fs.link(d, b"..", root);
    fs.link(d, b".", d);
    fs.add_file(d, b"", 0o644, b"empty name");
    fs.add_file(d, b"x\0y", 0o644, b"NUL in the name");
    fs.add_file(d, b"\x1b]0;pwned\x07\x1b[2J", 0o644, b"terminal escapes");
    fs.link(d, b"loop", d);
    fs.add_file(d, b"ok", 0o640, b"fine");
    fs.add_symlink(d, b"shadow", b"/etc/shadow");
    fs.add_symlink(d, b"up", b"../../..");
    fs.add_symlink(d, b"abs_up", b"/../../../tmp");
    fs.add_symlink(d, b"nul_target", b"a\0b");
    fs.add_file(d, &[b'x'; 255], 0o644, b"255-byte name");
    fs.add_file(d, &[b'y'; 256], 0o644, b"256-byte name: too long for Linux");
    fs.add_sparse(
        d,
        b"sparse",
        0o644,
        10 * GIB,
        &[(0, b"head".as_slice()), (9 * GIB, b"tail".as_slice())],
    );
    fs.add_file(root, b"../../escape", 0o644, b"would land two levels up");
    let up = fs.add_dir(root, b"lib64dir", 0o755);
    fs.add_file(up, b"libc.so.6", 0o755, b"\x7fELF");
    fs.add_symlink(root, b"lnk", b"/lib64dir");
    Guest { fs, d }
}

fn copy(fs: Arc<dyn FsView>, paths: &[&[u8]], dest: &Path) -> Summary {
    let sources = paths
        .iter()
        .map(|p| CopySource::resolve(&*fs, p).unwrap())
        .collect();
    let job = CopyJob {
        fs,
        sources,
        dest: dest.to_path_buf(),
        options: CopyOptions::default(),
    };
    job.run(&AtomicBool::new(false), &mut |_| {})
}

fn reasons_for<'a>(list: &'a [vmrescue::ops::copy::Issue], path: &[u8]) -> Vec<&'a str> {
    list.iter()
        .filter(|i| i.path == path)
        .map(|i| i.reason.as_str())
        .collect()
}

#[test]
fn hostile_names_are_skipped_and_nothing_lands_outside_dest() {
    let g = hostile();
    let tmp = tempfile::tempdir().unwrap();
    let outer = tmp.path().join("outer");
    let dest = outer.join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(g.fs);
    let s = copy(Arc::clone(&fs), &[b"/"], &dest);

    // Everything written is under dest, and is exactly what is safe.
    let mut expected: Vec<String> = [
        "",
        "dest",
        "dest/d",
        "dest/d/ok",
        "dest/d/shadow",
        "dest/d/up",
        "dest/d/abs_up",
        "dest/d/sparse",
        "dest/d/\x1b]0;pwned\x07\x1b[2J",
        "dest/lib64dir",
        "dest/lib64dir/libc.so.6",
        "dest/lnk",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.push(format!("dest/d/{}", "x".repeat(255)));
    expected.sort();
    assert_eq!(listing(&outer), expected, "{s:#?}");
    assert!(!tmp.path().join("escape").exists());

    let escape = "name could escape the destination directory";
    for p in [
        b"/d/a/b".as_slice(),
        b"/d/..",
        b"/d/.",
        b"/d/",
        b"/d/x\0y",
        b"/../../escape",
    ] {
        assert_eq!(
            reasons_for(&s.skipped, p),
            vec![escape],
            "{}: {s:#?}",
            String::from_utf8_lossy(p)
        );
    }
    assert_eq!(s.skipped_count, 6, "{s:#?}");
    let loop_reason = reasons_for(&s.failed, b"/d/loop");
    assert!(loop_reason[0].contains("loop"), "{s:#?}");
    assert!(reasons_for(&s.failed, b"/d/nul_target")[0].contains("cannot exist"));
    let long = [b"/d/".as_slice(), &[b'y'; 256]].concat();
    assert!(
        reasons_for(&s.failed, &long)[0].contains("too long"),
        "{s:#?}"
    );
    assert_eq!(s.failed_count, 3, "{s:#?}");

    // Symlinks are copied as they are stored, never followed.
    let link = |p: &str| std::fs::read_link(dest.join(p)).unwrap();
    assert_eq!(link("d/shadow"), Path::new("/etc/shadow"));
    assert_eq!(link("d/up"), Path::new("../../.."));
    assert_eq!(link("d/abs_up"), Path::new("/../../../tmp"));
    assert_eq!(link("lnk"), Path::new("/lib64dir"));
    assert_eq!(
        std::fs::read(dest.join("d").join("x".repeat(255))).unwrap(),
        b"255-byte name"
    );
    // The sparse 10 GiB file keeps its holes.
    let sparse = dest.join("d/sparse");
    assert_eq!(std::fs::metadata(&sparse).unwrap().len(), 10 * GIB);
    assert!(std::fs::metadata(&sparse).unwrap().blocks() * 512 <= 64 * 1024);
    let ranges = data_ranges(&sparse);
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0].0, 0);
    assert_eq!(ranges[1].0, 9 * GIB);
    let mut tail = [0u8; 4];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(&sparse).unwrap(),
        &mut tail,
        9 * GIB,
    )
    .unwrap();
    assert_eq!(&tail, b"tail");
    // Modes are the guest's.
    assert_eq!(
        std::fs::metadata(dest.join("d/ok")).unwrap().mode() & 0o7777,
        0o640
    );
}

#[test]
fn planning_leaves_out_what_the_copy_skips() {
    let g = hostile();
    let src = [CopySource::resolve(&g.fs, b"/d").unwrap()];
    let t = plan(&g.fs, &src, &AtomicBool::new(false));
    // ok, \x1b..., shadow, up, abs_up, nul_target, x*255, y*256, sparse.
    assert_eq!(t.files, 9, "{t:?}");
    // d itself; `loop` is d again.
    assert_eq!(t.dirs, 1, "{t:?}");
}

#[test]
fn sources_resolve_inside_the_guest() {
    let g = hostile();
    let fs = &g.fs;
    // A symlink named as a source is the symlink...
    let s = CopySource::resolve(fs, b"/d/shadow").unwrap();
    assert_eq!(fs.metadata(s.node).unwrap().file_type, FileType::Symlink);
    assert_eq!(s.dest_name.as_deref(), Some(b"shadow".as_slice()));
    // ...with a trailing slash, what it points to inside the guest, under the link's name.
    let s = CopySource::resolve(fs, b"lnk/").unwrap();
    assert_eq!(fs.metadata(s.node).unwrap().file_type, FileType::Directory);
    assert_eq!(s.guest_path, b"/lib64dir");
    assert_eq!(s.dest_name.as_deref(), Some(b"lnk".as_slice()));
    // `/etc/shadow` is looked up in the guest, where there is none.
    assert!(CopySource::resolve(fs, b"/d/shadow/").is_err());
    // `dir/.` and the root copy contents.
    assert_eq!(CopySource::resolve(fs, b"/d/.").unwrap().dest_name, None);
    assert_eq!(CopySource::resolve(fs, b"/").unwrap().dest_name, None);
    assert!(CopySource::resolve(fs, b"/d/ok/.").is_err());
    // `..` stops at the guest root.
    let up = resolve(fs, b"/d/up", true).unwrap();
    assert_eq!(up.node, fs.root_id());
}

#[test]
fn listings_show_escapes_never_raw_bytes() {
    let g = hostile();
    let entries = list_dir(&g.fs, g.d).unwrap();
    let lines = long_lines(&entries, &Owners::numeric());
    let text = lines.join("\n");
    for needle in [
        " a\\x2fb",
        " \\x2e\\x2e",
        " \\x2e",
        " \\(empty)",
        " x\\x00y",
        " \\x1b]0;pwned\\x07\\x1b[2J",
        " shadow -> /etc/shadow",
        " up -> ../../..",
        " nul_target -> a\\x00b",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    for line in &lines {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "raw control character in {line:?}"
        );
    }
    let bad: Vec<&[u8]> = entries
        .iter()
        .filter(|e| impossible_name(&e.name).is_some())
        .map(|e| e.name.as_slice())
        .collect();
    assert_eq!(bad.len(), 5, "{bad:?}");
}

#[test]
fn deep_trees_stop_at_the_depth_limit() {
    let mut fs = MemFs::new();
    let mut dir = fs.root_id();
    for _ in 0..300 {
        dir = fs.add_dir(dir, b"n", 0o755);
    }
    fs.add_file(dir, b"bottom", 0o644, b"x");
    let tmp = tempfile::tempdir().unwrap();
    let s = copy(Arc::new(fs), &[b"/n"], tmp.path());
    assert_eq!(s.failed_count, 1, "{s:#?}");
    assert!(s.failed[0].reason.contains("nested more than"));
    assert_eq!(s.dirs, vmrescue::ops::copy::MAX_DEPTH as u64);
}

#[test]
fn device_nodes_and_owners_from_the_guest_as_root() {
    common::require_root("mknod of device nodes and chown");
    let mut fs = MemFs::new();
    let root = fs.root_id();
    let null = fs.add_special(root, b"null", FileType::CharDevice, 0o666, (1, 3));
    let sda = fs.add_special(root, b"sda", FileType::BlockDevice, 0o660, (8, 0));
    let f = fs.add_file(root, b"owned", 0o4750, b"setuid, owned by 1234");
    for (n, uid, gid) in [(null, 0, 0), (sda, 0, 6), (f, 1234, 5678)] {
        let m = &mut fs.node_mut(n).unwrap().meta;
        m.uid = uid;
        m.gid = gid;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sources = vec![CopySource::resolve(&fs, b"/").unwrap()];
    let job = CopyJob {
        fs: Arc::new(fs),
        sources,
        dest: tmp.path().to_path_buf(),
        options: CopyOptions::for_this_user(false),
    };
    let s = job.run(&AtomicBool::new(false), &mut |_| {});
    assert!(s.is_clean(), "{s:#?}");
    let m = |n: &str| std::fs::symlink_metadata(tmp.path().join(n)).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(m("null").file_type().is_char_device());
    assert_eq!(
        (
            rustix::fs::major(m("null").rdev()),
            rustix::fs::minor(m("null").rdev())
        ),
        (1, 3)
    );
    assert_eq!(m("null").mode() & 0o7777, 0o666);
    assert!(m("sda").file_type().is_block_device());
    assert_eq!((m("sda").uid(), m("sda").gid()), (0, 6));
    assert_eq!((m("owned").uid(), m("owned").gid()), (1234, 5678));
    assert_eq!(
        m("owned").mode() & 0o7777,
        0o4750,
        "setuid kept after chown"
    );
}
