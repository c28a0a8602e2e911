//! The FAT12/16/32 reader on arbitrary bytes: open (boot sector, FAT
//! copies compared, root directory), then walk everything (metadata,
//! directories, case-insensitive lookups, file data through cluster chains,
//! free-space count).
#![no_main]

#[path = "shared/walk.rs"]
mod walk;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::FsView;
use vmrescue::fs::fat::Fat;
use vmrescue::io::ReadAt;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(fs) = Fat::open(src) {
        let _ = fs.status();
        let _ = fs.space(fs.root());
        walk::walk(&fs);
    }
});
