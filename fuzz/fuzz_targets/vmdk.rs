//! The VMDK reader on arbitrary bytes: sparse header, footer, embedded
//! descriptor, grain directories (primary and redundant), grain tables,
//! compressed grains with markers; the descriptor parser on the same bytes
//! as text; and the OVA (tar) walk and OVF scan. Other files (extents,
//! parents) are not opened: the bytes come from memory.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::image::ova;
use vmrescue::image::vmdk::{Vmdk, descriptor};
use vmrescue::io::ReadAt;

/// Read at most this much of the virtual disk per input (sizes may be huge).
const READ_LIMIT: u64 = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(v) = Vmdk::from_source(Arc::clone(&src), "fuzz") {
        let _ = v.details();
        let _ = v.problems();
        let _ = v.extents();
        let size = v.size();
        let mut buf = vec![0u8; 65536];
        let mut pos = 0;
        while pos < size.min(READ_LIMIT) {
            let n = (size - pos).min(buf.len() as u64) as usize;
            if v.read_exact_at(pos, &mut buf[..n]).is_err() {
                break;
            }
            let _ = v.host_extent(pos, n as u64);
            pos += n as u64;
        }
        for off in [size / 2, size.saturating_sub(4097), size.saturating_sub(1)] {
            let n = (size - off).min(4097) as usize;
            let _ = v.read_exact_at(off, &mut buf[..n]);
        }
    }
    let _ = descriptor::parse(data, "fuzz", 0);
    let _ = ova::members(&*src, "fuzz");
    if let Ok(disks) = ova::disks(Arc::clone(&src), "fuzz") {
        for d in disks {
            let _ = Vmdk::from_source(d.source, &d.name);
        }
    }
    let _ = ova::disk_files(&String::from_utf8_lossy(data));
});
