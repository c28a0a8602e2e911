//! GPT behind a protective MBR: the input is the primary header and entry
//! array (from LBA 1 on); the first byte picks the sector size and whether
//! the same bytes are also the backup at the disk's end, so the fuzzer
//! reaches header/entry parsing and the backup fallback quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::io::ReadAt;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ss: usize = if mode & 1 == 0 { 512 } else { 4096 };
    let sectors = 64 + (usize::from(mode >> 2) & 0x3f);
    let mut disk = vec![0u8; ss * sectors];
    // Protective MBR.
    disk[446 + 4] = 0xee;
    disk[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    disk[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    let n = rest.len().min(disk.len() - ss);
    disk[ss..ss + n].copy_from_slice(&rest[..n]);
    if mode & 2 != 0 {
        // The same header again in the last sector (a backup candidate).
        let last = disk.len() - ss;
        let m = rest.len().min(ss);
        disk[last..last + m].copy_from_slice(&rest[..m]);
    }
    let src: &dyn ReadAt = &disk;
    if let Ok(Some(t)) = vmrescue::layers::partition::read(src) {
        for p in &t.partitions {
            let _ = p.part_type.name();
        }
    }
});
