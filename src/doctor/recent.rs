//! The newest changes under the system trees: what the operator did last
//! before the guest stopped booting, the files the findings point at first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use crate::fs::{FileType, FsView, NodeId, Timestamp, path};

/// Trees whose recent changes are listed.
const RECENT_TREES: &[&str] = &[
    "/etc",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/boot",
];
/// How many recently changed files are listed.
pub const RECENT_COUNT: usize = 20;
/// Most nodes visited while looking for recent changes.
const MAX_WALK: usize = 500_000;
/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 32;

/// A recently changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    /// Its path.
    pub path: Vec<u8>,
    /// When its inode last changed (on a Windows guest, the newer of its
    /// modification and creation times: [`windows_changes`]).
    pub ctime: Timestamp,
    /// What it is.
    pub file_type: FileType,
    /// A finding points at it: listed first.
    pub pointed: bool,
}

/// The `count` most recently changed nodes (by ctime) under the usual system
/// trees; those among them that a finding points at (`pointed`) come first.
pub fn recent_changes(fs: &dyn FsView, count: usize, pointed: &[Vec<u8>]) -> Vec<RecentChange> {
    let trees: Vec<&[u8]> = RECENT_TREES.iter().map(|t| t.as_bytes()).collect();
    newest_under(fs, &trees, count, pointed, &|m| Some(m.ctime))
}

/// On a Windows guest: the `count` files under `system32` (the guest path
/// of `Windows\System32`: drivers, DLLs) written or installed last, by the
/// newer of their modification and creation times (Windows keeps a file's
/// modification time when it installs it, and gives it a new creation
/// time). Listed in [`RecentChange::ctime`].
pub fn windows_changes(fs: &dyn FsView, system32: &[u8], count: usize) -> Vec<RecentChange> {
    newest_under(fs, &[system32], count, &[], &|m| {
        (m.file_type == FileType::Regular).then(|| m.crtime.map_or(m.mtime, |c| c.max(m.mtime)))
    })
}

/// The `count` newest nodes under `trees` by `time` (none: not listed);
/// those among them that a finding points at (`pointed`) come first.
fn newest_under(
    fs: &dyn FsView,
    trees: &[&[u8]],
    count: usize,
    pointed: &[Vec<u8>],
    time: &dyn Fn(&crate::fs::Metadata) -> Option<Timestamp>,
) -> Vec<RecentChange> {
    let mut heap: BinaryHeap<Reverse<(Timestamp, Vec<u8>, u8)>> = BinaryHeap::new();
    let mut seen_dirs: HashSet<NodeId> = HashSet::new();
    let mut visited = 0usize;
    let mut stack: Vec<(Vec<u8>, NodeId, usize)> = Vec::new();
    for t in trees {
        if let Ok(r) = path::resolve(fs, t, true)
            && seen_dirs.insert(r.node)
        {
            stack.push((r.path, r.node, 0));
        }
    }
    let kinds = [
        FileType::Regular,
        FileType::Directory,
        FileType::Symlink,
        FileType::CharDevice,
        FileType::BlockDevice,
        FileType::Fifo,
        FileType::Socket,
        FileType::Unknown,
    ];
    while let Some((dir, node, depth)) = stack.pop() {
        let Ok(entries) = fs.read_dir(node) else {
            continue;
        };
        for e in entries {
            visited += 1;
            if visited > MAX_WALK {
                break;
            }
            let Ok(m) = fs.metadata(e.node) else { continue };
            let p = path::join(&dir, &e.name);
            if m.file_type == FileType::Directory {
                if depth < MAX_DEPTH && seen_dirs.insert(e.node) {
                    stack.push((p.clone(), e.node, depth + 1));
                }
                continue;
            }
            let Some(t) = time(&m) else { continue };
            let kind = kinds.iter().position(|k| *k == m.file_type).unwrap_or(7) as u8;
            heap.push(Reverse((t, p, kind)));
            if heap.len() > count {
                heap.pop();
            }
        }
    }
    let mut out: Vec<RecentChange> = heap
        .into_iter()
        .map(|Reverse((ctime, path, kind))| RecentChange {
            pointed: pointed.contains(&path),
            path,
            ctime,
            file_type: kinds[kind as usize],
        })
        .collect();
    // The files the findings point at, even when older than the newest.
    for p in pointed.iter().take(count) {
        if out.iter().any(|c| &c.path == p) {
            continue;
        }
        if let Ok(r) = path::resolve(fs, p, false)
            && let Ok(m) = fs.metadata(r.node)
        {
            out.push(RecentChange {
                path: p.clone(),
                ctime: m.ctime,
                file_type: m.file_type,
                pointed: true,
            });
        }
    }
    out.sort_by(|a, b| {
        b.pointed
            .cmp(&a.pointed)
            .then_with(|| b.ctime.cmp(&a.ctime))
            .then_with(|| a.path.cmp(&b.path))
    });
    out
}
