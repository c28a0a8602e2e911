//! The qcow2 reader on arbitrary bytes: header, extensions, snapshot table,
//! L1/L2 tables, compressed clusters. Backing files are not opened (the
//! bytes come from memory), so unallocated clusters read as zeros.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::image::qcow2::Qcow2;
use vmrescue::io::ReadAt;

/// Read at most this much of the virtual disk per input (sizes may be huge).
const READ_LIMIT: u64 = 4 << 20;

fn exercise(q: &Qcow2) {
    let _ = q.details();
    let size = q.size();
    let mut buf = vec![0u8; 65536];
    let mut pos = 0;
    while pos < size.min(READ_LIMIT) {
        let n = (size - pos).min(buf.len() as u64) as usize;
        if q.read_exact_at(pos, &mut buf[..n]).is_err() {
            break;
        }
        let _ = q.host_extent(pos, n as u64);
        pos += n as u64;
    }
    // A few reads far out, and an odd-sized one across clusters.
    for off in [size / 2, size.saturating_sub(4097), size.saturating_sub(1)] {
        let n = (size - off).min(4097) as usize;
        let _ = q.read_exact_at(off, &mut buf[..n]);
    }
}

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(q) = Qcow2::from_source(Arc::clone(&src), "fuzz", None) {
        exercise(&q);
        let ids: Vec<String> = q.snapshots().iter().map(|s| s.id.clone()).collect();
        for id in ids.iter().take(4) {
            if let Ok(s) = Qcow2::from_source(Arc::clone(&src), "fuzz", Some(id)) {
                exercise(&s);
            }
        }
    }
});
