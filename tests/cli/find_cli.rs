//! `vmrescue find` against GNU find on the kernel's read-only loop mount of
//! the same image: ext4 (built here with `mke2fs -d` from a tree whose sizes
//! and times sit on find's rounding edges) and XFS (written through the
//! kernel), a damaged directory, and the command line itself.
//!
//! Needs root (loop devices, mounts) and GNU findutils.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vmrescue::text::escape;

const BIN: &str = env!("CARGO_BIN_EXE_vmrescue");

/// A read-only loop mount, undone when dropped (even when the test fails).
struct Mount {
    dir: PathBuf,
    dev: String,
}

impl Mount {
    fn new(image: &Path, dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let o = run(Command::new("losetup")
            .args(["-r", "-f", "--show"])
            .arg(image));
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let m = Mount {
            dir: dir.to_path_buf(),
            dev,
        };
        run(Command::new("mount").args(["-o", options, &m.dev]).arg(dir));
        m
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Run a command that must succeed.
fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Set a path's mtime (not following a symlink) to `t` seconds (fractions kept).
fn set_mtime(path: &Path, t: f64) {
    run(Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(format!("@{t:.3}"))
        .arg(path));
}

/// Ages (seconds before the reference time) on find's edges: each half a
/// second from a minute or day boundary, so a run a few milliseconds after
/// the reference falls on the same side for GNU find and for us.
const AGES: &[(&str, f64)] = &[
    ("age-59.5", 59.5),
    ("age-60.5", 60.5),
    ("age-119.5", 119.5),
    ("age-120.5", 120.5),
    ("age-3599.5", 3599.5),
    ("age-86399.5", 86_399.5),
    ("age-86400.5", 86_400.5),
    ("age-86401.5", 86_401.5),
    ("age-172799.5", 172_799.5),
    ("age-172800.5", 172_800.5),
    ("age-172801.5", 172_801.5),
    ("age-10d", 864_000.5),
    ("future", -30.5),
];

/// Sizes on find's rounding edges.
const SIZES: &[u64] = &[
    0,
    1,
    511,
    512,
    513,
    1023,
    1024,
    1025,
    2047,
    2048,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    (2 << 20) + 1,
    (1 << 30) + 1,
];

/// The tree: `/tree/times` (mtimes relative to `t0`), `/tree/sizes`
/// (sparse files), `/tree/names` (glob edge cases, bytes that are not
/// UTF-8), `/tree/types`, nested directories; everything owned by 4242:4242
/// (no name on this host or in the guest, so owners print as numbers).
fn build_tree(root: &Path, t0: f64) {
    let tree = root.join("tree");
    for d in [
        "times",
        "sizes",
        "names",
        "types",
        "deep/a/b/c",
        "plain/sub",
    ] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    for (name, age) in AGES {
        let p = tree.join("times").join(name);
        std::fs::write(&p, b"x").unwrap();
        set_mtime(&p, t0 - age);
    }
    std::fs::write(tree.join("times/ref"), b"r").unwrap();
    set_mtime(&tree.join("times/ref"), t0 - 3600.0);
    for s in SIZES {
        let f = std::fs::File::create(tree.join("sizes").join(format!("s{s}"))).unwrap();
        f.set_len(*s).unwrap();
    }
    let names: &[&[u8]] = &[
        b".hidden",
        b"..dots",
        b"UPPER.CONF",
        b"lower.conf",
        b"a[b]c",
        b"star*name",
        b"q?mark",
        b"with space",
        b"back\\slash",
        b"latin1-\xe9",
        b"ctl-\x1b[31m",
        b"9digit",
        b"-dash",
        b"libc.so.6",
        b"libc-2.12.so",
    ];
    for n in names {
        std::fs::write(
            tree.join("names").join(std::ffi::OsStr::from_bytes(n)),
            b"n",
        )
        .unwrap();
    }
    let types = tree.join("types");
    std::fs::write(types.join("file"), b"f").unwrap();
    std::os::unix::fs::symlink("file", types.join("link")).unwrap();
    std::os::unix::fs::symlink("/nowhere", types.join("dangling")).unwrap();
    run(Command::new("mkfifo").arg(types.join("fifo")));
    run(Command::new("mknod")
        .arg(types.join("null"))
        .args(["c", "1", "3"]));
    run(Command::new("mknod")
        .arg(types.join("loop"))
        .args(["b", "7", "0"]));
    std::fs::create_dir(types.join("dir")).unwrap();
    let sock = std::os::unix::net::UnixListener::bind(types.join("sock")).unwrap();
    drop(sock);
    for (i, d) in ["deep", "deep/a", "deep/a/b", "deep/a/b/c"]
        .iter()
        .enumerate()
    {
        std::fs::write(tree.join(d).join(format!("f{i}.txt")), b"d").unwrap();
    }
    std::fs::write(tree.join("plain/one"), vec![7u8; 5000]).unwrap();
    std::fs::write(tree.join("plain/sub/two"), b"2").unwrap();
    std::os::unix::fs::symlink("one", tree.join("plain/three")).unwrap();
    for p in [tree.join("plain/one"), tree.join("plain/sub/two")] {
        set_mtime(&p, 1_361_455_380.0);
    }
    run(Command::new("chown").args(["-hR", "4242:4242"]).arg(&tree));
    // Directory times last: writing into them moved them.
    set_mtime(&tree.join("times"), t0 - 7200.5);
    set_mtime(&tree.join("plain"), 1_361_455_380.0);
    set_mtime(&tree.join("plain/sub"), 1_361_455_380.0);
    set_mtime(&tree.join("plain/three"), 1_361_455_380.0);
}

/// An ext4 image of `src` made by `mke2fs -d` (256-byte inodes: nanosecond times).
fn ext4_image(src: &Path, img: &Path) {
    let f = std::fs::File::create(img).unwrap();
    f.set_len(64 << 20).unwrap();
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-I", "256", "-b", "4096", "-d"])
        .arg(src)
        .arg(img));
}

/// GNU find's output for `find MNT+start ARGS`, as we print it: the mount
/// point taken off, names escaped; sorted.
fn gnu(mnt: &Path, start: &str, args: &[&str]) -> (BTreeSet<String>, bool) {
    let o = Command::new("find")
        .arg(format!("{}{start}", mnt.display()))
        .args(args)
        .arg("-print0")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let prefix = mnt.as_os_str().as_bytes();
    let lines = o
        .stdout
        .split(|&b| b == 0)
        .filter(|l| !l.is_empty())
        .map(|l| escape(l.strip_prefix(prefix).unwrap_or(l)))
        .collect();
    (lines, o.status.success())
}

/// Our output for `vmrescue find IMG start ARGS` (`--now` when given).
fn ours(img: &Path, start: &str, args: &[&str], now: Option<f64>) -> (BTreeSet<String>, Output) {
    let mut cmd = Command::new(BIN);
    cmd.arg("find").arg(img).arg(start).args(args);
    if let Some(t) = now {
        cmd.arg(format!("--now={t:.9}"));
    }
    let o = cmd.output().unwrap();
    let lines = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (lines, o)
}

/// The queries compared (besides the time ones).
const QUERIES: &[&[&str]] = &[
    &[],
    &["-name", "*"],
    &["-name", ".*"],
    &["-name", "*.conf"],
    &["-iname", "*.conf"],
    &["-name", "[a-l]*"],
    &["-name", "[!a-z]*"],
    &["-name", "a\\[b]c"],
    &["-name", "*\\**"],
    &["-name", "?????"],
    &["-name", "[[:digit:]]*"],
    &["-name", "libc*.so*"],
    &["-name", "*-\u{e9}"],
    &["-name", "-dash"],
    &["-name", "tree"],
    &["-type", "f"],
    &["-type", "d"],
    &["-type", "l"],
    &["-type", "p"],
    &["-type", "s"],
    &["-type", "b"],
    &["-type", "c"],
    &["-type", "b,c,l"],
    &["-type", "f", "-type", "d"],
    &["-size", "0"],
    &["-size", "-1"],
    &["-size", "1"],
    &["-size", "2"],
    &["-size", "+2"],
    &["-size", "1c"],
    &["-size", "-512c"],
    &["-size", "+1023c"],
    &["-size", "1k"],
    &["-size", "2k"],
    &["-size", "-2k"],
    &["-size", "+1k"],
    &["-size", "-1M"],
    &["-size", "1M"],
    &["-size", "2M"],
    &["-size", "+1M"],
    &["-size", "3M"],
    &["-size", "1G"],
    &["-size", "2G"],
    &["-size", "+1G"],
    &["-size", "2w"],
    &["-size", "1b"],
    &["-type", "f", "-size", "-1k", "-name", "*s*"],
    &["-maxdepth", "1"],
    &["-maxdepth", "0"],
    &["-mindepth", "3"],
    &["-mindepth", "2", "-maxdepth", "3", "-type", "f"],
    &["-xdev", "-type", "d"],
    &["-newer", "/tree/times/ref"],
    &["-newer", "/tree/plain/one", "-type", "f"],
];

/// The time queries (against `--now`).
const TIME_QUERIES: &[&[&str]] = &[
    &["-mmin", "1"],
    &["-mmin", "-1"],
    &["-mmin", "+1"],
    &["-mmin", "2"],
    &["-mmin", "0"],
    &["-mmin", "-60"],
    &["-mmin", "60"],
    &["-mmin", "+60"],
    &["-mmin", "-1.5"],
    &["-mtime", "0"],
    &["-mtime", "-0"],
    &["-mtime", "+0"],
    &["-mtime", "1"],
    &["-mtime", "-1"],
    &["-mtime", "+1"],
    &["-mtime", "2"],
    &["-mtime", "-2"],
    &["-mtime", "+2"],
    &["-mtime", "-10"],
    &["-mtime", "+9"],
    &["-mtime", "0", "-mmin", "+2"],
];

/// `-newer` takes a guest path on our side, a host path on GNU's.
fn gnu_args(mnt: &Path, q: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut newer = false;
    for a in q {
        if newer {
            out.push(format!("{}{a}", mnt.display()));
        } else {
            out.push((*a).to_string());
        }
        newer = *a == "-newer";
    }
    out
}

fn compare(img: &Path, mnt: &Path, start: &str, queries: &[&[&str]], what: &str) {
    for q in queries {
        let g = gnu_args(mnt, q);
        let g: Vec<&str> = g.iter().map(String::as_str).collect();
        let (want, ok) = gnu(mnt, start, &g);
        assert!(ok, "GNU find {start} {q:?} failed");
        let (got, o) = ours(img, start, q, None);
        assert!(
            o.status.success(),
            "{what}: vmrescue find {start} {q:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(got, want, "{what}: find {start} {q:?}");
    }
}

/// GNU find's answers to the time queries, on a tree whose times lie
/// around `t0`, made, imaged and mounted just before `t0`.
type TimeAnswers = Vec<(
    &'static [&'static str],
    f64,
    std::collections::BTreeSet<String>,
)>;

/// One try at the time queries: build the tree around a `t0` a little
/// ahead, image and mount it, then run GNU find right after `t0`. None when
/// this machine was too slow to stay off the edges (the image not ready by
/// `t0`, or GNU find done more than 0.45 s after it).
fn time_queries_once() -> Option<(tempfile::TempDir, PathBuf, Mount, TimeAnswers)> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let t0 = now_f64().ceil() + 4.0;
    build_tree(&src, t0);
    let img = dir.path().join("ext4.img");
    ext4_image(&src, &img);
    let mnt = Mount::new(&img, &dir.path().join("mnt"), "ro,noload");
    let wait = t0 + 0.1 - now_f64();
    if wait <= 0.0 {
        eprintln!("building the image took too long ({wait}s late): again");
        return None;
    }
    std::thread::sleep(Duration::from_secs_f64(wait));
    let mut answers = Vec::new();
    for q in TIME_QUERIES {
        let start = now_f64();
        let (want, ok) = gnu(&mnt.dir, "/tree", q);
        assert!(ok, "GNU find {q:?}");
        answers.push((*q, start, want));
    }
    let late = now_f64() - t0;
    if late >= 0.45 {
        eprintln!("GNU find ran {late}s after t0, too close to the edges: again");
        return None;
    }
    Some((dir, img, mnt, answers))
}

#[test]
fn ext4_matches_gnu_find_on_the_kernel_mount() {
    common::require_root("loop-mounts an ext4 image read-only");
    // Time queries first, GNU's as close to t0 as possible; a loaded
    // machine gets a few tries before the test says it cannot judge.
    // (`_dir` holds the temporary directory until the mount is gone.)
    let (_dir, img, mnt, gnu_results) = (0..5)
        .find_map(|_| time_queries_once())
        .expect("GNU find never ran within 0.45 s of t0 in five tries: the machine is too loaded");
    for (q, start, want) in gnu_results {
        let (got, o) = ours(&img, "/tree", q, Some(start));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(got, want, "find /tree {q:?} (now {start})");
    }
    compare(&img, &mnt.dir, "/tree", QUERIES, "ext4");
    compare(
        &img,
        &mnt.dir,
        "/tree/",
        &[&[], &["-name", "tree"]],
        "ext4 with /",
    );
    compare(&img, &mnt.dir, "/tree/types/link", &[&[]], "ext4 link");
    compare(
        &img,
        &mnt.dir,
        "/tree/deep/a",
        &[&[], &["-name", "a"]],
        "ext4 subtree",
    );

    // -ls, line for line (owners are numbers on both sides; dates in UTC).
    let now = now_f64();
    let o = Command::new("find")
        .arg(mnt.dir.join("tree/plain"))
        .arg("-ls")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let mnt_s = mnt.dir.display().to_string();
    let want: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.replace(&mnt_s, ""))
        .collect();
    let (got, o) = ours(&img, "/tree/plain", &["-ls"], Some(now));
    assert!(o.status.success());
    assert_eq!(got, want, "find -ls");
}

#[test]
fn xfs_matches_gnu_find_on_the_kernel_mount() {
    common::require_root("loop-mounts an XFS image");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build_tree(&src, now_f64());
    let img = dir.path().join("xfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    run(Command::new("mkfs.xfs").args(["-q", "-f"]).arg(&img));
    {
        // Written through the kernel, as the XFS fixtures are.
        let rw = dir.path().join("rw");
        std::fs::create_dir(&rw).unwrap();
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&rw));
        let copied = Command::new("cp")
            .arg("-a")
            .arg(src.join("tree"))
            .arg(&rw)
            .status();
        run(Command::new("umount").arg(&rw));
        assert!(copied.unwrap().success(), "cp -a into the XFS mount");
    }
    let mnt = Mount::new(&img, &dir.path().join("mnt"), "ro,norecovery");
    compare(&img, &mnt.dir, "/tree", QUERIES, "xfs");
}

#[test]
fn a_damaged_directory_is_reported_and_the_walk_goes_on() {
    common::require_root("loop-mounts a damaged ext4 image");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for d in ["tree/ok", "tree/bad", "tree/zz"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for f in ["tree/ok/a", "tree/bad/c", "tree/bad/d", "tree/zz/e"] {
        std::fs::write(src.join(f), b"x").unwrap();
    }
    let img = dir.path().join("bad.img");
    ext4_image(&src, &img);
    // The directory's first block, overwritten with garbage.
    let o = run(Command::new("debugfs")
        .args(["-R", "bmap /tree/bad 0"])
        .arg(&img));
    let block: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.seek(SeekFrom::Start(block * 4096)).unwrap();
        f.write_all(&[0xab; 4096]).unwrap();
    }
    let mnt = Mount::new(&img, &dir.path().join("mnt"), "ro,noload");

    let (want, gnu_ok) = gnu(&mnt.dir, "/tree", &[]);
    assert!(!gnu_ok, "the kernel read the damaged directory");
    let (got, o) = ours(&img, "/tree", &[], None);
    assert_eq!(o.status.code(), Some(1), "exit code");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("‘/tree/bad’"), "{err}");
    assert_eq!(got, want);
    assert!(got.contains("/tree/zz/e"), "the walk went on: {got:?}");
}

#[test]
fn command_line_errors_json_and_exit_codes() {
    let img = common::fixture("demo");
    // Missing start path: reported, the others still walked, exit 1.
    let o = Command::new(BIN)
        .args(["find"])
        .arg(&img)
        .args(["/nope", "/etc", "-maxdepth", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/etc\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("find: /nope"));
    // Bad arguments: exit 2, nothing walked.
    for bad in [
        &["-size", "1x"][..],
        &["-type", "q"],
        &["-mtime", "abc"],
        &["-newer", "/nope"],
    ] {
        let o = Command::new(BIN)
            .arg("find")
            .arg(&img)
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(o.stdout.is_empty(), "{bad:?}");
    }
    // --json: one array with what ls -l shows.
    let o = Command::new(BIN)
        .arg("find")
        .arg(&img)
        .args(["/lib64", "-name", "libc.so.6", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["path"], "/lib64/libc.so.6");
    assert_eq!(a[0]["type"], "symlink");
    assert_eq!(a[0]["mode"], "lrwxrwxrwx");
    assert_eq!(a[0]["user"], "root");
    assert!(a[0]["target"].is_string());
    assert!(a[0]["mtime_iso"].as_str().unwrap().ends_with('Z'));
    // An empty result is an empty array.
    let o = Command::new(BIN)
        .arg("find")
        .arg(&img)
        .args(["/", "-name", "no such name", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
    // Across the guest's mounts: /home is another volume; -xdev tests the
    // mountpoint and stays out of it.
    let run_demo = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(["find", "--demo", "/"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let all = run_demo(&[]);
    assert!(all.lines().any(|l| l == "/home/ta/.bashrc"), "{all}");
    let one = run_demo(&["-xdev"]);
    assert!(one.lines().any(|l| l == "/home"));
    assert!(!one.lines().any(|l| l.starts_with("/home/")), "{one}");
    assert!(one.lines().any(|l| l == "/etc/fstab"));
    // --demo takes every positional as a path; both spellings of options.
    let o = Command::new(BIN)
        .args(["find", "--demo", "/etc", "--name", "fstab", "-type", "f"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/etc/fstab\n");
}
