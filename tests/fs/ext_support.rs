//! Shared by the ext reader's tests: the walk manifest (the same format
//! `tests/fixtures/make/ext.sh --walk` prints from a kernel mount), opening
//! fixtures, and loop-mounting them as root.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::fs::FsOptions;
use vmrescue::fs::ext::Ext;
use vmrescue::fs::{FileType, FsView, NodeId, Timestamp};
use vmrescue::io::{FileSource, ReadAt};

use crate::common;

/// Every ext fixture with a kernel walk manifest.
pub const FIXTURES: &[&str] = &[
    "ext-ext2-1k",
    "ext-ext2-rev0",
    "ext-ext3-2k",
    "ext-ext4-4k",
    "ext-ext4-1k",
    "ext-ext4-noextent",
    "ext-ext4-bigalloc",
    "ext-ext4-eainode",
    "ext-inline",
    "ext-ext4-64k",
];

/// Escape bytes the way the manifest does.
pub fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (0x21..=0x7e).contains(&c) && c != b'\\' {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

fn ts(t: Timestamp) -> String {
    format!("{}.{:09}", t.sec, t.nsec)
}

fn kind(t: FileType) -> char {
    match t {
        FileType::Regular => 'f',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        FileType::Unknown => '?',
    }
}

/// SHA-256 of a file read through `fs` in 1 MiB pieces.
pub fn sha256(fs: &dyn FsView, node: NodeId, size: u64) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < size {
        let n = fs.read_at(node, off, &mut buf).expect("read_at");
        assert!(n > 0, "short read at {off} of {size}");
        h.update(&buf[..n]);
        off += n as u64;
    }
    assert_eq!(fs.read_at(node, size, &mut buf).unwrap(), 0);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The walk manifest of `fs`, lines sorted by path bytes.
pub fn walk(fs: &dyn FsView) -> Vec<String> {
    let mut lines: Vec<(Vec<u8>, String)> = Vec::new();
    let mut seen = HashSet::new();
    visit(fs, fs.root(), Vec::new(), &mut lines, &mut seen);
    lines.sort();
    lines.into_iter().map(|(_, l)| l).collect()
}

fn visit(
    fs: &dyn FsView,
    node: NodeId,
    path: Vec<u8>,
    out: &mut Vec<(Vec<u8>, String)>,
    seen: &mut HashSet<NodeId>,
) {
    let m = fs
        .metadata(node)
        .unwrap_or_else(|e| panic!("metadata of {}: {e}", esc(&path)));
    let content = match m.file_type {
        FileType::Regular => sha256(fs, node, m.size),
        FileType::Symlink => esc(&fs.read_link(node).expect("read_link")),
        FileType::CharDevice | FileType::BlockDevice => format!("{}:{}", m.rdev.0, m.rdev.1),
        _ => "-".into(),
    };
    let mut xs = fs.xattrs(node).expect("xattrs");
    xs.sort_by(|a, b| a.name.cmp(&b.name));
    let xattrs = if xs.is_empty() {
        "-".to_string()
    } else {
        xs.iter()
            .map(|x| {
                let hex: String = x.value.iter().map(|b| format!("{b:02x}")).collect();
                format!("{}={hex}", esc(&x.name))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let shown = if path.is_empty() {
        "/".to_string()
    } else {
        esc(&path)
    };
    let line = [
        shown,
        kind(m.file_type).to_string(),
        format!("{:04o}", m.perm),
        m.uid.to_string(),
        m.gid.to_string(),
        m.size.to_string(),
        ts(m.mtime),
        ts(m.ctime),
        m.nlink.to_string(),
        content,
        xattrs,
    ]
    .join("\t");
    let key = if path.is_empty() {
        b"/".to_vec()
    } else {
        path.clone()
    };
    out.push((key, line));
    if m.file_type == FileType::Directory {
        assert!(seen.insert(node), "directory loop at {}", esc(&path));
        for e in fs.read_dir(node).expect("read_dir") {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&e.name);
            visit(fs, e.node, p, out, seen);
        }
    }
}

/// Open fixture image `path` with our reader.
pub fn open_path(path: &Path, no_journal: bool) -> Ext {
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(path).expect("open image"));
    Ext::open(src, &FsOptions { no_journal }).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Open committed/built fixture `name`.
pub fn open(name: &str) -> Ext {
    open_path(&common::fixture(name), false)
}

/// The committed manifest `file` (e.g. `ext-ext4-4k.walk`) as lines.
pub fn manifest(file: &str) -> Vec<String> {
    common::report(file).lines().map(str::to_string).collect()
}

/// Assert two manifests are equal, showing the first differences.
pub fn assert_same(what: &str, ours: &[String], theirs: &[String]) {
    if ours == theirs {
        return;
    }
    let a: HashSet<&String> = ours.iter().collect();
    let b: HashSet<&String> = theirs.iter().collect();
    let only_ours: Vec<&String> = ours.iter().filter(|l| !b.contains(l)).take(8).collect();
    let only_theirs: Vec<&String> = theirs.iter().filter(|l| !a.contains(l)).take(8).collect();
    panic!(
        "{what}: walks differ ({} vs {} lines)\nonly ours:\n{}\nonly theirs:\n{}",
        ours.len(),
        theirs.len(),
        only_ours
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        only_theirs
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// Run `tests/fixtures/make/ext.sh --walk DIR`.
pub fn kernel_walk(dir: &Path) -> Vec<String> {
    let out = Command::new("sh")
        .arg(common::root().join("tests/fixtures/make/ext.sh"))
        .arg("--walk")
        .arg(dir)
        .output()
        .expect("run ext.sh --walk");
    assert!(
        out.status.success(),
        "ext.sh --walk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("manifest is ASCII")
        .lines()
        .map(str::to_string)
        .collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A kernel mount of an image (loop device + mount), removed on drop.
pub struct KernelMount {
    pub dir: tempfile::TempDir,
    loopdev: String,
    mounted: bool,
}

impl KernelMount {
    /// Mount `image` with `options` (`ro,noload` on a read-only loop, or `ro`
    /// on a read-write loop so the kernel replays the journal into it).
    pub fn new(image: &Path, options: &str, read_only_loop: bool) -> KernelMount {
        let mut args = vec!["-f", "--show"];
        if read_only_loop {
            args.push("-r");
        }
        let loopdev = run(Command::new("losetup").args(&args).arg(image));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = KernelMount {
            dir,
            loopdev,
            mounted: false,
        };
        run(Command::new("mount")
            .args(["-t", "ext4", "-o", options])
            .arg(&m.loopdev)
            .arg(m.dir.path()));
        m.mounted = true;
        m
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        }
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .status();
    }
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// File `node` of `fs` read whole (its size from its metadata), stopping
/// early only where `read_at` says the file ends; an error as the reader
/// gives it.
pub fn read_all(fs: &dyn FsView, node: NodeId) -> vmrescue::Result<Vec<u8>> {
    let size = fs.metadata(node)?.size;
    let mut out = vec![0u8; usize::try_from(size).expect("a file that fits in memory")];
    let mut done = 0;
    while done < out.len() {
        let n = fs.read_at(node, done as u64, &mut out[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    out.truncate(done);
    Ok(out)
}

/// Walk everything, tolerating errors, visiting at most `limit` nodes and
/// reading at most 1 MiB of each file; the number of errors met.
pub fn tolerant_walk(fs: &dyn FsView, limit: usize) -> usize {
    let mut errors = 0;
    let mut stack = vec![fs.root()];
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 1 << 20];
    while let Some(n) = stack.pop() {
        if seen.len() >= limit || !seen.insert(n) {
            continue;
        }
        let Ok(m) = fs.metadata(n) else {
            errors += 1;
            continue;
        };
        errors += usize::from(fs.xattrs(n).is_err());
        match m.file_type {
            FileType::Directory => match fs.read_dir(n) {
                Ok(es) => stack.extend(es.into_iter().map(|e| e.node)),
                Err(_) => errors += 1,
            },
            FileType::Regular => {
                errors += usize::from(fs.read_at(n, 0, &mut buf).is_err());
                errors += usize::from(fs.extents(n).is_err());
            }
            FileType::Symlink => errors += usize::from(fs.read_link(n).is_err()),
            _ => {}
        }
    }
    errors
}
