//! Copy-out of a host tree (read through `fs::host`), checked against the source walk.

use crate::common;
use crate::copy_support;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use copy_support::{Check, compare, data_ranges, listing, name, set_all_times, walk};
use rustix::fs::{Mode, XattrFlags};
use vmrescue::fs::host::HostFs;
use vmrescue::fs::mem::MemFs;
use vmrescue::fs::{DirEntry, FileExtent, FsStatus, FsView, Metadata, NodeId, Xattr};
use vmrescue::ops::copy::{
    CopyEvent, CopyJob, CopyOptions, CopySource, Existing, Summary, Totals, check_destination, plan,
};

const GIB: u64 = 1 << 30;

/// Deterministic bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tree with everything a copy must keep.
fn build_tree(root: &Path) {
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    let put = |p: &str, data: &[u8]| std::fs::write(root.join(p), data).unwrap();
    mk("a/b");
    mk("empty");
    mk("ro");
    put("a/small.txt", b"hello\n");
    put("a/b/random.bin", &noise(3 * 1024 * 1024 + 123, 7));
    put("a/suid", b"#!/bin/sh\n");
    std::fs::set_permissions(root.join("a/suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    put("a/readonly", b"r");
    std::fs::set_permissions(
        root.join("a/readonly"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    put("ro/inside", b"in a read-only directory");
    std::fs::set_permissions(root.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(root.join("a"), std::fs::Permissions::from_mode(0o750)).unwrap();
    // A 10 GiB sparse file: 4 KiB of data at 0 and at 5 GiB.
    let f = std::fs::File::create(root.join("sparse")).unwrap();
    f.set_len(10 * GIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &noise(4096, 1), 0).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &noise(4096, 2), 5 * GIB).unwrap();
    drop(f);
    // Hard links inside the tree.
    put("a/h1", b"linked twice");
    std::fs::hard_link(root.join("a/h1"), root.join("a/b/h2")).unwrap();
    // Symlinks that must stay symlinks, never followed.
    symlink("/etc/shadow", root.join("shadow")).unwrap();
    symlink("../../..", root.join("up")).unwrap();
    symlink("b/random.bin", root.join("a/rel")).unwrap();
    symlink("nowhere/at/all", root.join("dangling")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo").as_path(),
        rustix::fs::FileType::Fifo,
        Mode::from_bits_truncate(0o640),
        0,
    )
    .unwrap();
    // Odd names.
    for n in [
        b"\x1b[31mred".as_slice(),
        b"new\nline",
        b"caf\xe9",
        b"back\\slash",
        b" lead and trail ",
    ] {
        std::fs::write(root.join(name(n)), n).unwrap();
    }
    std::fs::write(root.join("x".repeat(255)), b"long name").unwrap();
    // Extended attributes (user namespace: allowed without root).
    let setx = |p: &str, n: &str, v: &[u8]| {
        rustix::fs::lsetxattr(root.join(p).as_path(), n, v, XattrFlags::empty()).unwrap()
    };
    setx("a/small.txt", "user.rescue", b"yes");
    setx("a", "user.dir", b"\x00\x01binary");
    setx("sparse", "user.big", &[b'z'; 1000]);
    set_all_times(root);
}

fn run(job: &CopyJob) -> (Summary, Vec<CopyEvent>) {
    let mut events = Vec::new();
    let s = job.run(&AtomicBool::new(false), &mut |e| events.push(e));
    (s, events)
}

fn job(fs: Arc<dyn FsView>, paths: &[&str], dest: &Path, options: CopyOptions) -> CopyJob {
    let sources = paths
        .iter()
        .map(|p| CopySource::resolve(&*fs, p.as_bytes()).unwrap())
        .collect();
    CopyJob {
        fs,
        sources,
        dest: dest.to_path_buf(),
        options,
    }
}

fn user_options() -> CopyOptions {
    CopyOptions {
        xattrs: true,
        ..CopyOptions::default()
    }
}

/// Everything [`compare`] can check.
const EVERYTHING: Check = Check {
    owners: true,
    xattrs: true,
    atime: true,
};

/// Copy `paths` of host tree `src` into `dest` (made if missing) with
/// [`user_options`], the kernel moving bytes or not.
fn copy_host(
    src: &Path,
    paths: &[&str],
    dest: &Path,
    kernel_copy: bool,
) -> (Summary, Vec<CopyEvent>) {
    std::fs::create_dir_all(dest).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(src).unwrap());
    let options = CopyOptions {
        kernel_copy,
        ..user_options()
    };
    run(&job(fs, paths, dest, options))
}

#[test]
fn copies_a_host_tree_keeping_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let before = walk(&src);
    for kernel_copy in [true, false] {
        let dest = tmp.path().join(format!("dest-{kernel_copy}"));
        let (summary, events) = copy_host(&src, &["/"], &dest, kernel_copy);
        assert!(summary.is_clean(), "{summary:#?}");
        compare(&before, &walk(&dest), EVERYTHING);
        // Counts: 14 regular names, one of them a hard link to another.
        assert_eq!(summary.files, 13, "{summary:#?}");
        assert_eq!(summary.hard_links, 1);
        assert_eq!(summary.symlinks, 4);
        assert_eq!(summary.specials, 1);
        assert_eq!(summary.dirs, 5, "root, a, a/b, empty, ro");
        if kernel_copy {
            assert!(summary.kernel_bytes > 3 << 20, "{summary:#?}");
        } else {
            assert_eq!(summary.kernel_bytes, 0);
        }
        // The 10 GiB file stays sparse: two 4 KiB data ranges.
        let sparse = dest.join("sparse");
        assert_eq!(
            data_ranges(&sparse),
            vec![(0, 4096), (5 * GIB, 5 * GIB + 4096)]
        );
        let allocated = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&sparse).unwrap().blocks() * 512
        };
        assert!(allocated <= 64 * 1024, "{allocated}");
        // Plan and progress agree.
        let Some(CopyEvent::Planned(t)) = events.first() else {
            panic!("first event: {:?}", events.first());
        };
        assert_eq!(t.files, 14 + 4 + 1);
        assert_eq!(t.dirs, 5);
        let Some(CopyEvent::Progress(last)) = events.last() else {
            panic!("last event: {:?}", events.last());
        };
        assert_eq!(last.bytes_done, t.bytes);
        assert_eq!(last.files_done, t.files);
        assert_eq!(t.bytes, summary.bytes);
        assert!(t.bytes > 10 * GIB);
    }
}

#[test]
fn hard_links_outside_the_selection_are_copied_as_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(&src).unwrap());
    let (summary, _) = run(&job(fs, &["/a/b", "/a/rel"], &dest, user_options()));
    assert!(summary.is_clean(), "{summary:#?}");
    assert_eq!(summary.hard_links, 0);
    assert_eq!(std::fs::read(dest.join("b/h2")).unwrap(), b"linked twice");
    // A symlink named as a source is copied as the symlink.
    assert_eq!(
        std::fs::read_link(dest.join("rel")).unwrap(),
        Path::new("b/random.bin")
    );
}

#[test]
fn existing_files_are_refused_skipped_or_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(&src).unwrap());
    let with = |existing| CopyOptions {
        existing,
        ..user_options()
    };
    let (first, _) = run(&job(
        Arc::clone(&fs),
        &["/a"],
        &dest,
        with(Existing::Refuse),
    ));
    assert!(first.is_clean(), "{first:#?}");
    let small = dest.join("a/small.txt");
    std::fs::write(&small, b"changed by the operator").unwrap();
    // a/: small.txt, suid, readonly, h1, rel, b/random.bin, b/h2 = 7 names.
    let (refused, _) = run(&job(
        Arc::clone(&fs),
        &["/a"],
        &dest,
        with(Existing::Refuse),
    ));
    assert_eq!(refused.failed_count, 7, "{refused:#?}");
    assert_eq!(refused.skipped_count, 0);
    assert!(refused.failed[0].reason.contains("already exists"));
    assert!(!refused.is_clean());
    assert_eq!(std::fs::read(&small).unwrap(), b"changed by the operator");

    let (skipped, _) = run(&job(Arc::clone(&fs), &["/a"], &dest, with(Existing::Skip)));
    assert_eq!(skipped.skipped_count, 7, "{skipped:#?}");
    assert_eq!(skipped.failed_count, 0);
    assert!(!skipped.is_clean());
    assert_eq!(std::fs::read(&small).unwrap(), b"changed by the operator");

    // SkipSame keeps what is the same (size, mtime; a symlink's target) and
    // reports what differs, keeping it too.
    let (skipped, _) = run(&job(
        Arc::clone(&fs),
        &["/a"],
        &dest,
        with(Existing::SkipSame),
    ));
    assert_eq!(skipped.unchanged, 6, "{skipped:#?}");
    assert_eq!(skipped.failed_count, 1, "{skipped:#?}");
    assert_eq!(skipped.skipped_count, 0);
    assert!(skipped.failed[0].reason.contains("differs"), "{skipped:#?}");
    assert!(!skipped.is_clean());
    assert_eq!(std::fs::read(&small).unwrap(), b"changed by the operator");

    let (over, _) = run(&job(
        Arc::clone(&fs),
        &["/a"],
        &dest,
        with(Existing::Overwrite),
    ));
    assert!(over.is_clean(), "{over:#?}");
    assert_eq!(std::fs::read(&small).unwrap(), b"hello\n");
    // Hard links are made again, not copied twice.
    assert_eq!(over.hard_links, 1);
    compare(
        &walk(&src.join("a")),
        &walk(&dest.join("a")),
        Check {
            owners: true,
            xattrs: true,
            atime: true,
        },
    );

    // A directory in the way of a file is never removed.
    std::fs::remove_file(&small).unwrap();
    std::fs::create_dir(&small).unwrap();
    std::fs::write(small.join("keep"), b"keep").unwrap();
    let (blocked, _) = run(&job(
        Arc::clone(&fs),
        &["/a"],
        &dest,
        with(Existing::Overwrite),
    ));
    assert_eq!(blocked.failed_count, 1, "{blocked:#?}");
    assert!(
        blocked.failed[0].reason.contains("directory"),
        "{blocked:#?}"
    );
    assert_eq!(std::fs::read(small.join("keep")).unwrap(), b"keep");
}

#[test]
fn symlinks_planted_in_dest_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"untouched").unwrap();
    let outside_before = listing(&outside);
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    // dest/a -> outside (a directory), dest/small.txt -> outside/victim (a file),
    // dest/sparse -> outside/new (dangling).
    symlink(&outside, dest.join("a")).unwrap();
    symlink(outside.join("victim"), dest.join("small.txt")).unwrap();
    symlink(outside.join("new"), dest.join("sparse")).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(&src).unwrap());
    let paths = ["/a", "/a/small.txt", "/sparse"];
    for existing in [Existing::Refuse, Existing::Skip] {
        let options = CopyOptions {
            existing,
            ..user_options()
        };
        let (s, _) = run(&job(Arc::clone(&fs), &paths, &dest, options));
        assert_eq!(s.failed_count + s.skipped_count, 3, "{s:#?}");
        assert_eq!(listing(&outside), outside_before);
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"untouched");
    }
    let options = CopyOptions {
        existing: Existing::Overwrite,
        ..user_options()
    };
    let (s, _) = run(&job(Arc::clone(&fs), &paths, &dest, options));
    assert!(s.is_clean(), "{s:#?}");
    assert_eq!(listing(&outside), outside_before);
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"untouched");
    // The links were replaced by real copies.
    assert!(std::fs::symlink_metadata(dest.join("a")).unwrap().is_dir());
    assert_eq!(std::fs::read(dest.join("small.txt")).unwrap(), b"hello\n");
    assert!(
        std::fs::symlink_metadata(dest.join("sparse"))
            .unwrap()
            .is_file()
    );

    // A link planted inside a directory the copy merges into.
    std::fs::remove_file(dest.join("a/b/h2")).unwrap();
    symlink(outside.join("victim"), dest.join("a/b/h2")).unwrap();
    let (s, _) = run(&job(Arc::clone(&fs), &["/a"], &dest, user_options()));
    assert!(s.failed.iter().any(|i| i.path == b"/a/b/h2"), "{s:#?}");
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"untouched");
    assert_eq!(listing(&outside), outside_before);
}

/// A filesystem that stops in its second read until the test lets it go.
struct Gate {
    inner: MemFs,
    reads: AtomicUsize,
    reached: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl FsView for Gate {
    fn status(&self) -> FsStatus {
        self.inner.status()
    }
    fn root(&self) -> NodeId {
        self.inner.root()
    }
    fn metadata(&self, node: NodeId) -> vmrescue::Result<Metadata> {
        self.inner.metadata(node)
    }
    fn read_dir(&self, dir: NodeId) -> vmrescue::Result<Vec<DirEntry>> {
        self.inner.read_dir(dir)
    }
    fn read_link(&self, node: NodeId) -> vmrescue::Result<Vec<u8>> {
        self.inner.read_link(node)
    }
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> vmrescue::Result<usize> {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            self.reached.store(true, Ordering::SeqCst);
            let start = Instant::now();
            while !self.release.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.inner.read_at(node, offset, buf)
    }
    fn extents(&self, node: NodeId) -> vmrescue::Result<Vec<FileExtent>> {
        self.inner.extents(node)
    }
    fn xattrs(&self, node: NodeId) -> vmrescue::Result<Vec<Xattr>> {
        self.inner.xattrs(node)
    }
}

#[test]
fn cancel_mid_file_removes_the_partial_file() {
    let mut mem = MemFs::new();
    let root = mem.root_id();
    mem.add_file(root, b"a_first", 0o644, b"done before the cancel");
    mem.add_file(root, b"b_big", 0o644, &noise(5 << 20, 3));
    mem.add_file(root, b"c_after", 0o644, b"never reached");
    let reached = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let fs: Arc<dyn FsView> = Arc::new(Gate {
        inner: mem,
        reads: AtomicUsize::new(0),
        reached: Arc::clone(&reached),
        release: Arc::clone(&release),
    });
    let tmp = tempfile::tempdir().unwrap();
    let job = job(fs, &["/"], tmp.path(), CopyOptions::default());
    let (tx, rx) = mpsc::channel();
    let handle = job.spawn(move |e| tx.send(e).unwrap()).unwrap();
    let start = Instant::now();
    while !reached.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the copy never read"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The job is inside b_big's data now (its first MiB was read).
    handle.cancel();
    release.store(true, Ordering::SeqCst);
    let summary = handle.join();
    assert!(summary.cancelled, "{summary:#?}");
    assert!(!summary.is_clean());
    assert_eq!(summary.files, 1);
    assert_eq!(
        listing(tmp.path()),
        vec!["".to_string(), "a_first".to_string()]
    );
    let events: Vec<CopyEvent> = rx.try_iter().collect();
    assert!(matches!(
        events.first(),
        Some(CopyEvent::Planned(Totals { files: 3, .. }))
    ));
    let Some(CopyEvent::Finished(s)) = events.last() else {
        panic!("no Finished event: {events:?}");
    };
    assert!(s.cancelled);
}

#[test]
fn planning_counts_and_stops_when_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let fs = HostFs::open(&src).unwrap();
    let sources = vec![CopySource::resolve(&fs, b"/a/").unwrap()];
    let t = plan(&fs, &sources, &AtomicBool::new(false));
    assert_eq!(
        t,
        Totals {
            files: 7,
            symlinks: 1,
            specials: 0,
            unsafe_names: 0,
            dirs: 2,
            bytes: 6 + (3 * 1024 * 1024 + 123) + 10 + 1 + 12,
            // Every file is dense: what it holds is its size.
            allocated: 6 + (3 * 1024 * 1024 + 123) + 10 + 1 + 12,
        }
    );
    // The 10 GiB sparse file holds two 4 KiB blocks (and, on ext4, a block
    // of its extent tree).
    let sparse = plan(
        &fs,
        &[CopySource::resolve(&fs, b"/sparse").unwrap()],
        &AtomicBool::new(false),
    );
    assert_eq!(sparse.bytes, 10 * GIB);
    assert!((8192..=65536).contains(&sparse.allocated), "{sparse:?}");
    let cancelled = plan(&fs, &sources, &AtomicBool::new(true));
    assert_eq!(cancelled.files, 0);
}

#[test]
fn owners_xattrs_and_device_nodes_as_root() {
    common::require_root("chown, trusted.* xattrs and mknod of devices");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let chown = |p: &str, u: u32, g: u32| {
        rustix::fs::chownat(
            rustix::fs::CWD,
            src.join(p).as_path(),
            Some(rustix::fs::Uid::from_raw(u)),
            Some(rustix::fs::Gid::from_raw(g)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap()
    };
    chown("a/small.txt", 1234, 5678);
    chown("a", 27, 27);
    chown("shadow", 4321, 4321);
    chown("a/suid", 1000, 1000);
    std::fs::set_permissions(src.join("a/suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    for (n, t, dev) in [
        (
            "null",
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::makedev(1, 3),
        ),
        (
            "loop0",
            rustix::fs::FileType::BlockDevice,
            rustix::fs::makedev(7, 0),
        ),
    ] {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join(n).as_path(),
            t,
            Mode::from_bits_truncate(0o600),
            dev,
        )
        .unwrap();
    }
    rustix::fs::lsetxattr(
        src.join("a/b/random.bin").as_path(),
        "trusted.vmrescue",
        b"root only",
        XattrFlags::empty(),
    )
    .unwrap();
    // Symlinks carry xattrs too (trusted.*: root only).
    rustix::fs::lsetxattr(
        src.join("shadow").as_path(),
        "trusted.link",
        b"on the link itself",
        XattrFlags::empty(),
    )
    .unwrap();
    set_all_times(&src);
    let before = walk(&src);
    assert_eq!(before[b"shadow".as_slice()].xattrs.len(), 1);
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(&src).unwrap());
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let options = CopyOptions::for_this_user(false);
    assert!(options.owner && options.xattrs && options.devices);
    let (s, _) = run(&job(Arc::clone(&fs), &["/"], &dest, options));
    assert!(s.is_clean(), "{s:#?}");
    assert_eq!(s.specials, 3);
    compare(
        &before,
        &walk(&dest),
        Check {
            owners: true,
            xattrs: true,
            atime: true,
        },
    );

    // --no-owner: everything belongs to the copier, xattrs are left out.
    let dest2 = tmp.path().join("dest2");
    std::fs::create_dir(&dest2).unwrap();
    let (s, _) = run(&job(
        Arc::clone(&fs),
        &["/a"],
        &dest2,
        CopyOptions::for_this_user(true),
    ));
    assert!(s.is_clean(), "{s:#?}");
    let copied = walk(&dest2);
    assert!(copied.values().all(|n| n.uid == 0 && n.gid == 0));
    assert!(copied[b"a/b/random.bin".as_slice()].xattrs.is_empty());

    // Without the right to make devices, they are skipped with a reason.
    let dest3 = tmp.path().join("dest3");
    std::fs::create_dir(&dest3).unwrap();
    let options = CopyOptions {
        devices: false,
        ..CopyOptions::for_this_user(false)
    };
    let (s, _) = run(&job(
        Arc::clone(&fs),
        &["/null", "/loop0", "/fifo"],
        &dest3,
        options,
    ));
    assert_eq!(s.skipped_count, 2, "{s:#?}");
    assert!(s.skipped.iter().all(|i| i.reason.contains("device")));
    assert_eq!(s.specials, 1);
    assert_eq!(listing(&dest3), vec!["".to_string(), "fifo".to_string()]);
}

/// A destination with a default ACL gives new files other modes than the
/// ones asked for at creation (the ACL, not the umask, masks them), and so
/// do the folders the copy makes in it: the copies still get the guest's
/// modes (and owners, as root).
#[test]
fn modes_are_kept_under_a_default_acl() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    for (n, mode) in [
        ("top", 0o644),
        ("d/rw", 0o644),
        ("d/x", 0o755),
        ("d/own", 0o600),
        ("d/none", 0o000),
        ("d/e/all", 0o777),
        ("d/e/suid", 0o4755),
    ] {
        std::fs::write(src.join(n), n).unwrap();
        std::fs::set_permissions(src.join(n), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    set_all_times(&src);
    let before = walk(&src);
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    // user::rwx, group::---, other::---: new files get at most mode 0700.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 0), (0x20, 0)] {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(u32::MAX.to_le_bytes());
    }
    rustix::fs::setxattr(
        dest.as_path(),
        "system.posix_acl_default",
        &acl,
        XattrFlags::empty(),
    )
    .unwrap();
    // The ACL works here: a new file asked to be 0644 is 0600.
    let probe = tmp.path().join("dest/probe");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&probe)
        .unwrap();
    let mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "the default ACL masks new files");
    std::fs::remove_file(&probe).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(&src).unwrap());
    let options = CopyOptions::for_this_user(false);
    let (summary, _) = run(&job(fs, &["/"], &dest, options));
    assert!(summary.is_clean(), "{summary:#?}");
    let root = rustix::process::geteuid().is_root();
    compare(
        &before,
        &walk(&dest),
        Check {
            owners: root,
            xattrs: false,
            atime: true,
        },
    );
}

/// The check the browser makes before Enter starts a copy: can files be
/// created in the destination (or, for one still to be made, its parent)?
#[test]
fn check_destination_before_the_first_byte() {
    let tmp = tempfile::tempdir().unwrap();
    check_destination(tmp.path()).unwrap();
    check_destination(&tmp.path().join("new")).unwrap();
    // It leaves nothing behind.
    assert_eq!(listing(tmp.path()), [""]);
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = check_destination(&file).unwrap_err().to_string();
    assert_eq!(e, format!("{}: not a directory", file.display()));
    let e = check_destination(&tmp.path().join("no/such"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the parent of"), "{e}");
    // sysfs refuses new files, even to root.
    let e = check_destination(Path::new("/sys"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/sys: cannot create files there: "), "{e}");
}

#[test]
fn big_files_are_read_ahead_by_one_reader_thread_in_order() {
    // Files of several chunks, read (not moved by the kernel): the job's
    // reader thread reads the chunks after the one being written. Two
    // data ranges of 2.5 MiB around a hole, a file ending in a hole, and
    // small files between them, all must come out exactly.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let a = noise(5 << 19, 11);
    let b = noise((5 << 19) + 7, 12);
    let f = std::fs::File::create(src.join("holey")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &a, 0).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &b, 8 << 20).unwrap();
    drop(f);
    let tail = std::fs::File::create(src.join("tail-hole")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&tail, &a, 0).unwrap();
    tail.set_len(16 << 20).unwrap();
    drop(tail);
    for i in 0..5 {
        std::fs::write(src.join(format!("small{i}")), noise(100 + i, i as u64)).unwrap();
    }
    std::fs::write(src.join("three"), noise((3 << 20) + 1, 13)).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let fs: Arc<dyn FsView> = Arc::new(HostFs::open(&src).unwrap());
    let options = CopyOptions {
        kernel_copy: false,
        ..user_options()
    };
    let (summary, _) = run(&job(fs, &["/."], &dest, options));
    assert!(summary.is_clean(), "{summary:#?}");
    assert_eq!(summary.files, 8);
    assert_eq!(summary.kernel_bytes, 0);
    let holey = std::fs::read(dest.join("holey")).unwrap();
    assert_eq!(holey.len(), (8 << 20) + b.len());
    assert_eq!(&holey[..a.len()], &a[..]);
    assert!(holey[a.len()..8 << 20].iter().all(|&x| x == 0));
    assert_eq!(&holey[8 << 20..], &b[..]);
    assert_eq!(data_ranges(&dest.join("holey")).len(), 2);
    let t = std::fs::read(dest.join("tail-hole")).unwrap();
    assert_eq!(t.len(), 16 << 20);
    assert_eq!(&t[..a.len()], &a[..]);
    assert_eq!(
        std::fs::read(dest.join("three")).unwrap(),
        std::fs::read(src.join("three")).unwrap()
    );
    for i in 0..5 {
        assert_eq!(
            std::fs::read(dest.join(format!("small{i}"))).unwrap(),
            noise(100 + i, i as u64)
        );
    }
}

/// Many small files in a directory: the job's writer thread makes them
/// while the walk goes on, and their directory gets its mtime and mode
/// only after the last one is made (creating a file changes a
/// directory's mtime). Small sparse files and empty files too.
#[test]
fn many_small_files_keep_their_directory_times() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..4 {
        let dir = src.join(format!("d{d}"));
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        for i in 0..300 {
            std::fs::write(dir.join(format!("f{i:03}")), noise(i * 37 % 5000, i as u64)).unwrap();
        }
        std::fs::write(dir.join("inner/last"), b"deepest").unwrap();
        // A hole first, then data; a file that ends in a hole.
        let f = std::fs::File::create(dir.join("holey")).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &noise(4096, 3), 64 << 10).unwrap();
        drop(f);
        let f = std::fs::File::create(dir.join("tail")).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &noise(4096, 4), 0).unwrap();
        f.set_len(512 << 10).unwrap();
        drop(f);
    }
    // A read-only directory full of files: its mode comes after them.
    std::fs::set_permissions(src.join("d1"), std::fs::Permissions::from_mode(0o555)).unwrap();
    set_all_times(&src);
    let before = walk(&src);
    for kernel_copy in [true, false] {
        let dest = tmp.path().join(format!("dest-{kernel_copy}"));
        let (summary, events) = copy_host(&src, &["/."], &dest, kernel_copy);
        assert!(summary.is_clean(), "{summary:#?}");
        assert_eq!(summary.files, 4 * 303);
        assert_eq!(summary.dirs, 1 + 8);
        compare(&before, &walk(&dest), EVERYTHING);
        for d in 0..4 {
            assert_eq!(data_ranges(&dest.join(format!("d{d}/holey"))).len(), 1);
        }
        let Some(CopyEvent::Progress(last)) = events.last() else {
            panic!("last event: {:?}", events.last());
        };
        assert_eq!(last.files_done, last.files_total);
        assert_eq!(last.bytes_done, summary.bytes);
        let _ = std::fs::set_permissions(dest.join("d1"), std::fs::Permissions::from_mode(0o755));
    }
}

/// Hard links among small files, in the directory of their first name and
/// in others: each is made after its first name exists, and the copy has
/// the source's link groups.
#[test]
fn hard_links_among_small_files_follow_their_first_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in ["a", "b", "c/d"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        for i in 0..200 {
            std::fs::write(src.join(format!("{d}/s{i:03}")), noise(i * 11, i as u64)).unwrap();
        }
    }
    std::fs::write(src.join("a/first"), b"one inode, four names").unwrap();
    std::fs::hard_link(src.join("a/first"), src.join("a/second")).unwrap();
    std::fs::hard_link(src.join("a/first"), src.join("b/third")).unwrap();
    std::fs::hard_link(src.join("a/first"), src.join("c/d/fourth")).unwrap();
    // A pair whose names sort apart, in one directory.
    std::fs::write(src.join("b/aa"), b"pair").unwrap();
    std::fs::hard_link(src.join("b/aa"), src.join("b/zz")).unwrap();
    set_all_times(&src);
    let before = walk(&src);
    let dest = tmp.path().join("dest");
    let (summary, _) = copy_host(&src, &["/"], &dest, true);
    assert!(summary.is_clean(), "{summary:#?}");
    assert_eq!(summary.hard_links, 4);
    assert_eq!(summary.files, 600 + 2);
    compare(&before, &walk(&dest), EVERYTHING);
}

/// A destination that fills up while small files are being written by the
/// writer thread: each file that did not fit is reported against its own
/// guest path, with the write that failed and the temporary name it had;
/// nothing is left under a temporary or a half-written real name; the
/// files that fit are whole, and the directory keeps its times.
#[test]
fn a_full_destination_fails_the_files_that_do_not_fit() {
    common::require_root("mounting a small tmpfs as the destination");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..60 {
        std::fs::write(src.join(format!("d/f{i:02}")), noise(3000, i)).unwrap();
    }
    set_all_times(&src);
    let before = walk(&src);
    for kernel_copy in [true, false] {
        let dest = tmp.path().join(format!("dest-{kernel_copy}"));
        let _mount = crate::loop_support::Tmpfs::mount(&dest, "64k");
        let (summary, events) = copy_host(&src, &["/d"], &dest, kernel_copy);
        assert!(summary.files > 0, "{summary:#?}");
        assert!(summary.failed_count > 0, "{summary:#?}");
        assert_eq!(summary.files + summary.failed_count, 60, "{summary:#?}");
        assert_eq!(summary.failed.len() as u64, summary.failed_count);
        let d = dest.join("d");
        for issue in &summary.failed {
            let path = String::from_utf8_lossy(&issue.path).into_owned();
            let name = path.strip_prefix("/d/").expect("a file of /d");
            // Small files are written unnamed (O_TMPFILE) and named once
            // complete: the message names the copy they were to become.
            let unnamed = format!(
                "(writing {}/{name}, which is named only once complete)",
                d.display()
            );
            assert!(
                issue
                    .reason
                    .starts_with("writing at byte 0: No space left on device")
                    && issue.reason.ends_with(&unnamed),
                "{path}: {}",
                issue.reason
            );
            assert!(!d.join(name).exists(), "{path} was reported but exists");
        }
        // Only whole files under their real names, with their times.
        let after = walk(&d);
        for (k, node) in &after {
            if k.is_empty() {
                assert_eq!(node.mtime, before[b"d".as_slice()].mtime, "d's mtime");
                continue;
            }
            let key = [b"d/".as_slice(), k].concat();
            let want = before
                .get(&key)
                .unwrap_or_else(|| panic!("{} is not a source file", String::from_utf8_lossy(k)));
            assert_eq!(node.content, want.content, "{}", String::from_utf8_lossy(k));
            assert_eq!(node.mtime, want.mtime, "{}", String::from_utf8_lossy(k));
        }
        assert_eq!(
            after.len() as u64,
            summary.files + 1,
            "the files and d itself"
        );
        let Some(CopyEvent::Progress(last)) = events.last() else {
            panic!("last event: {:?}", events.last());
        };
        assert_eq!(last.files_done, 60);
        assert_eq!(last.bytes_done, summary.bytes);
    }
}
