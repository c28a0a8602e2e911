//! `doctor`: suspicious symlinks in library and binary directories, and the
//! most recently changed files of the guest, each with the repair proposed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use super::candidates::{Analysis, Guest, is_glibc_soname};
use crate::fs::{FileType, FsView, NodeId, Timestamp, path};

/// Directories with programs, looked at besides the library directories.
const BIN_DIRS: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin"];
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

/// A suspicious symlink.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What was found.
    pub analysis: Analysis,
    /// Higher is more urgent: 3 = a glibc library, 2 = another library, 1 = a program link.
    pub severity: u8,
}

/// A recently changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    /// Its path.
    pub path: Vec<u8>,
    /// When its inode last changed.
    pub ctime: Timestamp,
    /// What it is.
    pub file_type: FileType,
}

/// What `doctor` found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Suspicious links, most urgent first.
    pub findings: Vec<Finding>,
    /// Most recently changed files, newest first.
    pub recent: Vec<RecentChange>,
}

/// Look for broken links and recent changes in a guest filesystem.
pub fn examine(fs: &dyn FsView) -> Report {
    let guest = Guest::new(fs);
    let mut dirs: Vec<Vec<u8>> = guest.lib_dirs.clone();
    for d in BIN_DIRS {
        if let Ok(r) = path::resolve(fs, d.as_bytes(), true)
            && !dirs.contains(&r.path)
        {
            dirs.push(r.path);
        }
    }
    let mut findings = Vec::new();
    for dir in &dirs {
        let Ok(r) = path::resolve(fs, dir, true) else {
            continue;
        };
        let Ok(entries) = fs.read_dir(r.node) else {
            continue;
        };
        for e in entries {
            let Ok(m) = fs.metadata(e.node) else { continue };
            if m.file_type != FileType::Symlink {
                continue;
            }
            let Ok(a) = guest.analyze(&path::join(dir, &e.name)) else {
                continue;
            };
            if a.problems.is_empty() {
                continue;
            }
            let (_, name) = path::split_last(&a.link);
            let severity = match name {
                Some(n) if a.library && is_glibc_soname(&n) => 3,
                _ if a.library => 2,
                _ => 1,
            };
            findings.push(Finding {
                analysis: a,
                severity,
            });
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.analysis.problems.len().cmp(&a.analysis.problems.len()))
            .then_with(|| b.analysis.meta.ctime.cmp(&a.analysis.meta.ctime))
    });
    Report {
        findings,
        recent: recent_changes(fs, RECENT_COUNT),
    }
}

/// The `count` most recently changed nodes (by ctime) under the usual system trees.
pub fn recent_changes(fs: &dyn FsView, count: usize) -> Vec<RecentChange> {
    let mut heap: BinaryHeap<Reverse<(Timestamp, Vec<u8>, u8)>> = BinaryHeap::new();
    let mut seen_dirs: HashSet<NodeId> = HashSet::new();
    let mut visited = 0usize;
    let mut stack: Vec<(Vec<u8>, NodeId, usize)> = Vec::new();
    for t in RECENT_TREES {
        if let Ok(r) = path::resolve(fs, t.as_bytes(), true)
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
            let kind = kinds.iter().position(|k| *k == m.file_type).unwrap_or(7) as u8;
            heap.push(Reverse((m.ctime, p, kind)));
            if heap.len() > count {
                heap.pop();
            }
        }
    }
    let mut out: Vec<RecentChange> = heap
        .into_iter()
        .map(|Reverse((ctime, path, kind))| RecentChange {
            path,
            ctime,
            file_type: kinds[kind as usize],
        })
        .collect();
    out.sort_by(|a, b| b.ctime.cmp(&a.ctime).then_with(|| a.path.cmp(&b.path)));
    out
}
