//! Walk a filesystem reader through everything it offers (metadata,
//! directories, lookups, links, xattrs, file data, extents, the space
//! counters), within a
//! budget: shared by the filesystem fuzz targets.

use vmrescue::fs::{FileType, FsView};

/// Visit up to 2000 nodes of `fs`, ignoring errors (only panics, hangs and
/// runaway allocations count).
pub fn walk(fs: &dyn FsView) {
    // The free-space counters (group descriptors, AG headers).
    let _ = fs.space(fs.root());
    let mut stack = vec![fs.root()];
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut budget = 2000;
    while let Some(n) = stack.pop() {
        budget -= 1;
        if budget == 0 {
            return;
        }
        let Ok(m) = fs.metadata(n) else { continue };
        let _ = fs.xattrs(n);
        match m.file_type {
            FileType::Directory if seen.insert(n) => {
                if let Ok(entries) = fs.read_dir(n) {
                    for e in entries.into_iter().take(200) {
                        let _ = fs.lookup(n, &e.name);
                        stack.push(e.node);
                    }
                }
                let _ = fs.lookup(n, b"missing");
            }
            FileType::Regular => {
                let _ = fs.read_at(n, 0, &mut buf);
                let _ = fs.read_at(n, m.size.saturating_sub(100), &mut buf[..200]);
                let _ = fs.extents(n);
                let _ = fs.host_extent(n, 0, 4096);
            }
            FileType::Symlink => {
                let _ = fs.read_link(n);
            }
            _ => {}
        }
    }
}
