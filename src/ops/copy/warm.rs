//! Reading ahead of a copy's walk, directory by directory.
//!
//! The walk copies a directory's files before it enters the next one, and
//! on a cold cache it would wait, in every directory, first for the
//! listing, then for the inodes, then for the files' data, while the
//! writer threads have nothing to do. A [`Warmer`] thread walks the same
//! tree in the same order (names sorted, files before subdirectories,
//! depth first) a few directories ahead ([`AHEAD`]): it reads each
//! listing and its entries' metadata, so that they are in the page cache
//! (and the reader's caches) when the walk comes, and tells the
//! filesystem which small files' data will be read next
//! ([`FsView::prefetch`]). It is only a hint: it writes nothing, reports
//! nothing (the walk meets and reports every error itself), and stops when
//! the walk ends or is cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::fs::path::is_safe_name;
use crate::fs::{FileType, FsView, NodeId};

/// Directories the warmer reads at most ahead of the one the walk is in.
pub(super) const AHEAD: u64 = 6;

/// Entries of one directory whose data the warmer announces, at most (the
/// walk announces the rest of a big directory batch by batch).
const DATA_ENTRIES: usize = 256;

/// What the walk and the warmer share.
struct Shared {
    /// Directories the walk has entered (its [`super::Frame::id`] count
    /// since it started).
    entered: AtomicU64,
    /// Set when the walk is done or cancelled.
    stop: AtomicBool,
}

/// The warmer thread of one walk; stopped and joined when dropped.
pub(super) struct Warmer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Warmer {
    /// Start reading ahead of a walk of directory `root` (with `one_dev`:
    /// not into directories of another device, as `cp -x`), the walk
    /// being in `root` already. `None` when no thread could be started.
    pub(super) fn start(
        fs: Arc<dyn FsView>,
        root: NodeId,
        one_dev: Option<u64>,
        max_depth: usize,
    ) -> Option<Warmer> {
        let shared = Arc::new(Shared {
            entered: AtomicU64::new(1),
            stop: AtomicBool::new(false),
        });
        let mine = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vmrescue-ahead".into())
            .spawn(move || warm(&*fs, root, one_dev, max_depth, &mine))
            .ok()?;
        Some(Warmer {
            shared,
            thread: Some(thread),
        })
    }

    /// The walk entered one more directory.
    pub(super) fn entered(&self) {
        self.shared.entered.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Warmer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// A directory the warmer is in: its node and its subdirectories not yet
/// entered (last first).
struct Level {
    node: NodeId,
    subdirs: Vec<NodeId>,
}

/// The warmer's walk: the walk's order, each directory read once the walk
/// is at most [`AHEAD`] directories behind.
fn warm(fs: &dyn FsView, root: NodeId, one_dev: Option<u64>, max_depth: usize, s: &Shared) {
    // The root is listed by the walk already; its subdirectories are next.
    let Some(root_level) = read_level(fs, root, one_dev) else {
        return;
    };
    let mut stack = vec![root_level];
    // Directories entered by this walk, the root being the first.
    let mut seq = 1u64;
    loop {
        let Some(top) = stack.last_mut() else {
            return;
        };
        let Some(node) = top.subdirs.pop() else {
            stack.pop();
            continue;
        };
        // What the walk leaves out, it does not count either.
        if stack.len() >= max_depth || stack.iter().any(|l| l.node == node) {
            continue;
        }
        seq += 1;
        while seq > s.entered.load(Ordering::Relaxed).saturating_add(AHEAD) {
            if s.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        match read_level(fs, node, one_dev) {
            Some(level) => stack.push(level),
            // Unreadable or on another device: entered, and empty.
            None => stack.push(Level {
                node,
                subdirs: Vec::new(),
            }),
        }
    }
}

/// Read directory `node`'s listing and its entries' metadata, and announce
/// the data of its first files: its subdirectories in the walk's order.
fn read_level(fs: &dyn FsView, node: NodeId, one_dev: Option<u64>) -> Option<Level> {
    if one_dev.is_some_and(|d| fs.dev(node) != d) {
        return None;
    }
    let mut entries = fs.read_dir(node).ok()?;
    // Names the walk skips (they could leave the destination) it skips too.
    entries.retain(|e| is_safe_name(&e.name));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let nodes: Vec<NodeId> = entries.iter().map(|e| e.node).collect();
    // The inodes, read in the order they lie on disk.
    fs.prefetch(&nodes, false);
    let mut subdirs = Vec::new();
    for e in &entries {
        if let Ok(m) = fs.metadata(e.node)
            && m.file_type == FileType::Directory
        {
            subdirs.push(e.node);
        }
    }
    fs.prefetch(nodes.get(..DATA_ENTRIES).unwrap_or(&nodes), true);
    subdirs.reverse();
    Some(Level { node, subdirs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::fs::mem::MemFs;
    use crate::fs::{DirEntry, FileExtent, FsStatus, Metadata, Xattr};
    use std::sync::Mutex;
    use std::time::Instant;

    /// A filesystem that notes which directories are listed, in order.
    struct Noted {
        fs: MemFs,
        listed: Mutex<Vec<NodeId>>,
    }

    impl FsView for Noted {
        fn status(&self) -> FsStatus {
            self.fs.status()
        }
        fn root(&self) -> NodeId {
            self.fs.root()
        }
        fn metadata(&self, node: NodeId) -> Result<Metadata> {
            self.fs.metadata(node)
        }
        fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
            self.listed.lock().expect("not poisoned").push(dir);
            self.fs.read_dir(dir)
        }
        fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
            self.fs.read_link(node)
        }
        fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
            self.fs.read_at(node, offset, buf)
        }
        fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
            self.fs.extents(node)
        }
        fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
            self.fs.xattrs(node)
        }
    }

    fn listed(fs: &Noted) -> Vec<NodeId> {
        fs.listed.lock().expect("not poisoned").clone()
    }

    /// Wait (a few seconds at most) until `n` directories are listed.
    fn until_listed(fs: &Noted, n: usize) {
        let t = Instant::now();
        while listed(fs).len() < n && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The warmer lists directories in the walk's order (names sorted,
    /// depth first), never more than `AHEAD` beyond the one the walk is
    /// in, goes on as the walk does, and stops when dropped.
    #[test]
    fn reads_in_the_walks_order_and_stays_a_few_directories_ahead() {
        let mut m = MemFs::new();
        let root = m.root_id();
        // Made out of order: the walk (and the warmer) sort names.
        let mut walk_order = vec![root];
        let mut made = Vec::new();
        for i in (0..12u32).rev() {
            let d = m.add_dir(root, format!("d{i:02}").as_bytes(), 0o755);
            m.add_file(d, b"f", 0o644, b"data");
            let sub = (i % 3 == 0).then(|| m.add_dir(d, b"sub", 0o755));
            made.push((i, d, sub));
        }
        // Escaping names are not entered by the walk, nor by the warmer.
        m.add_dir(root, b"..", 0o755);
        made.sort_by_key(|&(i, ..)| i);
        for (_, d, sub) in made {
            walk_order.push(d);
            walk_order.extend(sub);
        }
        let fs = Arc::new(Noted {
            fs: m,
            listed: Mutex::new(Vec::new()),
        });
        let view: Arc<dyn FsView> = fs.clone();
        let w = Warmer::start(view, root, None, 100).expect("a thread");
        // The walk is in the root: the root and AHEAD directories.
        let first = 1 + AHEAD as usize;
        until_listed(&fs, first);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(listed(&fs), walk_order[..first]);
        for _ in 0..3 {
            w.entered();
        }
        until_listed(&fs, first + 3);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(listed(&fs), walk_order[..first + 3]);
        for _ in 0..walk_order.len() {
            w.entered();
        }
        until_listed(&fs, walk_order.len());
        assert_eq!(listed(&fs), walk_order);
        drop(w);
        // Stopped in the middle of a walk: dropping it ends the thread.
        let view: Arc<dyn FsView> = fs.clone();
        let t = Instant::now();
        drop(Warmer::start(view, root, None, 100));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
