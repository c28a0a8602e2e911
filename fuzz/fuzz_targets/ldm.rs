//! Windows dynamic disks (LDM) on arbitrary bytes: the VMDB/VBLK parser
//! on the input as it is, then two MBR dynamic disks (partition type 0x42)
//! whose PRIVHEADs point at a configuration area filled from the input
//! (TOCBLOCKs, VMDB and VBLKs as the fuzzer makes them; with the first
//! byte's low bit set the PRIVHEAD at sector 6 is taken from the input
//! too), scanned together: assembly, mappings, the tree and a read of
//! each volume's first bytes.
#![no_main]

#[path = "shared/disks.rs"]
mod disks;

use libfuzzer_sys::fuzz_target;
use vmrescue::layers::ldm::db;
use vmrescue::layers::{DiskSource, VolumeKind};

const SECTORS: u64 = 2048 + 2048 + 64;
const CONFIG_START: u64 = SECTORS - 2048;

fn privhead(disk: u8) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..8].copy_from_slice(b"PRIVHEAD");
    b[0x0c..0x0e].copy_from_slice(&2u16.to_be_bytes());
    b[0x0e..0x10].copy_from_slice(&12u16.to_be_bytes());
    let guid = format!("00000000-0000-0000-0000-0000000000{disk:02x}");
    b[0x30..0x30 + guid.len()].copy_from_slice(guid.as_bytes());
    let group = b"11111111-1111-1111-1111-111111111111";
    b[0xb0..0xb0 + group.len()].copy_from_slice(group);
    b[0xf0..0xf4].copy_from_slice(b"Dg0\0");
    for (at, v) in [
        (0x11b, 64u64),
        (0x123, CONFIG_START - 64),
        (0x12b, CONFIG_START),
        (0x133, 2048),
    ] {
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
    b
}

fuzz_target!(|data: &[u8]| {
    let _ = db::parse_vmdb(data, 0);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let disks: Vec<DiskSource> = (0..2u8)
        .map(|i| {
            let mut d = vec![0u8; (SECTORS * 512) as usize];
            d[446 + 4] = 0x42;
            d[446 + 8..446 + 12].copy_from_slice(&64u32.to_le_bytes());
            d[446 + 12..446 + 16].copy_from_slice(&((SECTORS - 64) as u32).to_le_bytes());
            d[510] = 0x55;
            d[511] = 0xaa;
            let mut rest = rest;
            if mode & 1 != 0 {
                let n = rest.len().min(512);
                d[6 * 512..6 * 512 + n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
            } else {
                d[6 * 512..7 * 512].copy_from_slice(&privhead(i));
            }
            // The configuration area from its second sector on.
            let at = ((CONFIG_START + 1) * 512) as usize;
            let n = rest.len().min(d.len() - at);
            d[at..at + n].copy_from_slice(&rest[..n]);
            disks::raw_disk(usize::from(i), d)
        })
        .collect();
    disks::scan_and_read(disks, |k| matches!(k, VolumeKind::LdmVolume { .. }));
});
