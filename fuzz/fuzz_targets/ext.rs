//! The ext2/3/4 reader on arbitrary bytes: open, then walk everything
//! (metadata, directories, lookups, links, xattrs, file data, extents),
//! with and without the journal.
#![no_main]

#[path = "shared/walk.rs"]
mod walk;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::FsOptions;
use vmrescue::fs::FsView;
use vmrescue::fs::ext::Ext;
use vmrescue::io::ReadAt;

fuzz_target!(|data: &[u8]| {
    for no_journal in [false, true] {
        let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
        if let Ok(fs) = Ext::open(src, &FsOptions { no_journal }) {
            let _ = fs.status();
            walk::walk(&fs);
        }
    }
});
