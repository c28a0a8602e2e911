//! The LVM2 PV reader (label, pv_header, mda_header, circular metadata
//! buffer) on arbitrary bytes: once as is, once with checksums ignored so
//! the parsers behind them are reached, then VG assembly from what was read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::io::{Area, DiskId, ReadAt};
use vmrescue::layers::lvm::{self, PvOnDisk};

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    let src: &dyn ReadAt = &bytes;
    let _ = lvm::read_pv(src);
    let _ = lvm::damaged_label_hint(src);
    if let Ok(Some(scan)) = lvm::read_pv_ignoring_checksums(src) {
        let pv = PvOnDisk {
            volume: "disk0".into(),
            area: Area {
                disk: DiskId(0),
                offset: 0,
            },
            size: bytes.len() as u64,
            scan,
        };
        let _ = lvm::assemble(&[pv]);
    }
});
