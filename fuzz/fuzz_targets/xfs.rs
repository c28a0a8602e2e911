//! The XFS reader on arbitrary bytes: open, then walk everything
//! (metadata, directories, lookups, links, xattrs, file data, extents).
#![no_main]

#[path = "shared/walk.rs"]
mod walk;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::FsView;
use vmrescue::fs::xfs::Xfs;
use vmrescue::io::ReadAt;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(fs) = Xfs::open(src) {
        let _ = fs.status();
        walk::walk(&fs);
    }
});
