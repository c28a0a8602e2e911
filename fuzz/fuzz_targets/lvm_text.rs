//! The LVM2 metadata text parser, its decoding into VG fields, and volume
//! group assembly from that text, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::io::{Area, DiskId};
use vmrescue::layers::lvm::{self, PvOnDisk, PvScan};

fuzz_target!(|data: &[u8]| {
    let Ok(root) = lvm::text::parse(data) else {
        return;
    };
    let _ = lvm::meta::decode(&root);
    // Assemble a VG from the text as if one PV carried it.
    let scan = PvScan {
        label_sector: 1,
        pv_uuid: "AAAAAA-bbbb-cccc-dddd-eeee-ffff-GGGGGG".into(),
        device_size: 1 << 30,
        metadata: Some(String::from_utf8_lossy(data).into_owned()),
        metadata_origin: None,
        problems: Vec::new(),
        vg_name: None,
        vg_uuid: None,
        seqno: None,
        data_offset: Some(1 << 20),
        metadata_areas: vec![(4096, 1 << 20)],
        in_use: Some(true),
    };
    let pv = PvOnDisk {
        volume: "p1".into(),
        area: Area {
            disk: DiskId(0),
            offset: 1 << 20,
        },
        size: 1 << 30,
        scan,
    };
    for g in lvm::assemble(&[pv]) {
        for lv in &g.lvs {
            for off in [0, lv.size / 2, lv.size.saturating_sub(1)] {
                let _ = lv.mapping.locate(off);
            }
        }
    }
});
