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

#[path = "shared/read_all.rs"]
mod read_all;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(v) = Vmdk::from_source(Arc::clone(&src), "fuzz") {
        let _ = v.details();
        let _ = v.problems();
        let _ = v.extents();
        read_all::exercise(&v, &mut |pos, n| {
            let _ = v.host_extent(pos, n);
        });
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
