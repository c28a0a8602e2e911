//! The VHD, VHDX and VDI readers on arbitrary bytes: footers and their
//! copy, dynamic headers, BATs and sector bitmaps (VHD); headers, region
//! tables, metadata, BAT and log replay (VHDX); header and block map (VDI).
//! Parents are not opened (the bytes come from memory): absent blocks of a
//! differencing disk read as zeros.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::image::{vdi::Vdi, vhd::Vhd, vhdx::Vhdx};
use vmrescue::io::ReadAt;

#[path = "shared/read_all.rs"]
mod read_all;

fn exercise(v: &dyn ReadAt) {
    read_all::exercise(v, &mut |_, _| {});
}

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(v) = Vhd::from_source(Arc::clone(&src), "fuzz") {
        let _ = (v.details(), v.problems(), v.parent_names());
        exercise(&v);
    }
    if let Ok(v) = Vhdx::from_source(Arc::clone(&src), "fuzz") {
        let _ = (v.details(), v.problems(), v.parent_names(), v.parent_linkage());
        exercise(&v);
    }
    if let Ok(v) = Vdi::from_source(src, "fuzz") {
        let _ = (v.details(), v.problems());
        exercise(&v);
    }
});
