//! Helpers for the copy-out tests: build host trees, walk them, compare walks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, SeekFrom, Timespec, Timestamps};
use sha2::{Digest, Sha256};

/// What the walk records of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub atime: (i64, i64),
    pub rdev: u64,
    pub nlink: u64,
    /// Symlink target.
    pub target: Option<Vec<u8>>,
    /// SHA-256 over the data ranges (SEEK_DATA/SEEK_HOLE) and their bytes:
    /// equal only when the contents and the holes are equal.
    pub content: Option<Vec<u8>>,
    /// Extended attributes (name → value).
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Not compared: inode number (for hard-link groups) and allocation.
    pub ino: u64,
    pub blocks: u64,
}

/// Walk `root` without following symlinks: relative path → node (the root is `""`).
pub fn walk(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let node = read_node(&full);
        let is_dir = node.mode & 0o170000 == 0o040000;
        out.insert(rel.as_os_str().as_bytes().to_vec(), node);
        if is_dir {
            for e in std::fs::read_dir(&full).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
    }
    out
}

pub fn read_node(p: &Path) -> Node {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let ft = m.file_type();
    Node {
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        atime: (m.atime(), m.atime_nsec()),
        rdev: m.rdev(),
        nlink: m.nlink(),
        target: ft.is_symlink().then(|| {
            std::fs::read_link(p)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        }),
        content: ft.is_file().then(|| content_sig(p)),
        xattrs: xattrs(p),
        ino: m.ino(),
        blocks: m.blocks(),
    }
}

/// The data ranges of a file (SEEK_DATA/SEEK_HOLE).
pub fn data_ranges(p: &Path) -> Vec<(u64, u64)> {
    let f = File::open(p).unwrap();
    let size = f.metadata().unwrap().len();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let Ok(d) = rustix::fs::seek(&f, SeekFrom::Data(pos)) else {
            break;
        };
        let h = rustix::fs::seek(&f, SeekFrom::Hole(d)).unwrap().min(size);
        out.push((d, h));
        pos = h;
    }
    out
}

fn content_sig(p: &Path) -> Vec<u8> {
    let f = File::open(p).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (start, end) in data_ranges(p) {
        h.update(start.to_le_bytes());
        h.update(end.to_le_bytes());
        let mut off = start;
        while off < end {
            let n = ((end - off) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], off).unwrap();
            h.update(&buf[..n]);
            off += n as u64;
        }
    }
    h.finalize().to_vec()
}

pub fn xattrs(p: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 1 << 16];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names[..]) else {
        return out;
    };
    let mut value = vec![0u8; 1 << 16];
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        // SELinux labels come from the host policy, not from the copy.
        if name.starts_with(b"security.selinux") {
            continue;
        }
        let len = rustix::fs::lgetxattr(p, name, &mut value[..]).unwrap();
        out.insert(name.to_vec(), value[..len].to_vec());
    }
    out
}

/// What [`compare`] checks besides types, modes, sizes, times, targets and contents.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub owners: bool,
    pub xattrs: bool,
    pub atime: bool,
}

/// Assert that `dst` is a faithful copy of `src` (both walks), hard-link
/// groups included. `root_meta` also compares the top directory's own
/// metadata (when the copy merged into an existing directory it is not).
pub fn compare(src: &BTreeMap<Vec<u8>, Node>, dst: &BTreeMap<Vec<u8>, Node>, check: Check) {
    let sk: Vec<_> = src.keys().collect();
    let dk: Vec<_> = dst.keys().collect();
    assert_eq!(
        sk.iter()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>(),
        dk.iter()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>(),
        "the copy has other entries than the source"
    );
    for (k, s) in src {
        let d = &dst[k];
        let what = String::from_utf8_lossy(k);
        assert_eq!(s.mode, d.mode, "{what}: mode {:o} vs {:o}", s.mode, d.mode);
        assert_eq!(s.target, d.target, "{what}: symlink target");
        let is_dir = s.mode & 0o170000 == 0o040000;
        if !is_dir {
            assert_eq!(s.size, d.size, "{what}: size");
        }
        assert_eq!(s.content, d.content, "{what}: contents or holes differ");
        assert_eq!(s.rdev, d.rdev, "{what}: device number");
        assert_eq!(s.mtime, d.mtime, "{what}: mtime");
        if check.atime {
            assert_eq!(s.atime, d.atime, "{what}: atime");
        }
        if check.owners {
            assert_eq!((s.uid, s.gid), (d.uid, d.gid), "{what}: owner");
        }
        if check.xattrs {
            assert_eq!(s.xattrs, d.xattrs, "{what}: xattrs");
        }
        if s.content.is_some() {
            assert!(
                d.blocks <= s.blocks + 16,
                "{what}: the copy allocates {} blocks, the source {}",
                d.blocks,
                s.blocks
            );
        }
    }
    // Hard links: names sharing an inode in the source share one in the copy.
    let groups = |w: &BTreeMap<Vec<u8>, Node>| {
        let mut by_ino: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        for (k, n) in w {
            if n.mode & 0o170000 != 0o040000 {
                by_ino.entry(n.ino).or_default().push(k.clone());
            }
        }
        let mut g: Vec<Vec<Vec<u8>>> = by_ino.into_values().filter(|v| v.len() > 1).collect();
        g.sort();
        g
    };
    assert_eq!(groups(src), groups(dst), "hard-link groups differ");
}

/// Set mtime and atime of `p` (not following a symlink).
pub fn set_times(p: &Path, mtime: (i64, i64), atime: (i64, i64)) {
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        last_modification: Timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    };
    rustix::fs::utimensat(rustix::fs::CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

/// Set distinct times on everything under `root` (children before their directory).
/// atime is in the future, later than mtime and ctime, so `relatime` reads
/// (of the source or of the copy) leave it alone.
pub fn set_all_times(root: &Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut entries: Vec<PathBuf> = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        entries.push(p.clone());
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    // Deepest first, so setting a child's times does not touch a parent set later.
    entries.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in entries.iter().enumerate() {
        let i = i as i64;
        set_times(
            p,
            (1_360_000_000 + i * 1000, 123_456_789),
            (now + 400 * 86_400 - i, 987_654_321),
        );
    }
}

/// A name from bytes.
pub fn name(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// Every path under `dir` (not following symlinks), relative, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir)
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    v.sort();
    v
}
