//! Unit tests of the VHDX reader: checksums and GUIDs as stored.

#![allow(clippy::indexing_slicing)]

use super::*;

#[test]
fn crc_without_counts_the_field_as_zeros() {
    let mut b: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let got = crc_without(&b, 4);
    b[4..8].fill(0);
    assert_eq!(got, crc32c::crc32c(&b));
}

#[test]
fn guids_are_stored_mixed_endian() {
    assert_eq!(
        BAT_GUID,
        [
            0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd,
            0x4a, 0x08
        ]
    );
    assert_eq!(
        crate::image::extents::guid_text(&METADATA_GUID),
        "8b7ca206-4790-4b9a-b8fe-575f050f886e"
    );
}

#[test]
fn a_file_without_valid_headers_is_an_error() {
    let mut f = vec![0u8; 1 << 20];
    f[..8].copy_from_slice(SIGNATURE);
    let e = Vhdx::from_source(Arc::new(f), "t").unwrap_err().to_string();
    assert!(
        e.contains("VHDX headers at byte 65536: neither header is valid"),
        "{e}"
    );
}
