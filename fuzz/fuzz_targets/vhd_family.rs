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

/// Read at most this much of the virtual disk per input (sizes may be huge).
const READ_LIMIT: u64 = 4 << 20;

fn exercise(v: &dyn ReadAt) {
    let size = v.size();
    let mut buf = vec![0u8; 65536];
    let mut pos = 0;
    while pos < size.min(READ_LIMIT) {
        let n = (size - pos).min(buf.len() as u64) as usize;
        if v.read_exact_at(pos, &mut buf[..n]).is_err() {
            break;
        }
        pos += n as u64;
    }
    for off in [size / 2, size.saturating_sub(4097), size.saturating_sub(1)] {
        let n = (size - off).min(4097) as usize;
        let _ = v.read_exact_at(off, &mut buf[..n]);
    }
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
