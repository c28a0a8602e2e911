//! The dm-raid superblock of an LVM raid image's rmeta on arbitrary bytes,
//! then the RAID reader with the geometry it names (level, layout, chunk
//! size) over legs cut from the same bytes, one of them missing: reads of
//! hostile geometry end with bytes or an error, never a panic.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::io::{Area, DiskId, Leg, Mapping, Raid, ReadAt};
use vmrescue::layers::lvm::raid::{DmRaidSuperblock, fuzz_superblock, raid_level};

fuzz_target!(|data: &[u8]| {
    let _ = fuzz_superblock(data);
    let Ok(Some(sb)) = DmRaidSuperblock::parse(data) else {
        return;
    };
    let Some(level) = raid_level(sb.level, sb.layout) else {
        return;
    };
    let n = (sb.num_devices % 8) as usize + 1;
    let leg_len = (data.len() / n) as u64;
    let disk: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    let legs = (0..n)
        .map(|i| {
            if i as u32 == sb.array_position % 8 {
                Leg::missing(format!("leg{i}"), "fuzz")
            } else {
                let area = Area {
                    disk: DiskId(0),
                    offset: i as u64 * leg_len,
                };
                Leg::new(format!("leg{i}"), Mapping::linear(area, leg_len), 0)
            }
        })
        .collect();
    let chunk = u64::from(sb.stripe_sectors % 16) * 512;
    if let Ok(raid) = Raid::new(level, chunk, legs, leg_len) {
        let _ = raid.which_legs_used();
        let mut buf = vec![0u8; (raid.size().min(4096)) as usize];
        let _ = raid.read(&[disk], 0, &mut buf);
    }
});
