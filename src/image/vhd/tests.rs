//! Unit tests of the VHD reader: the footer's checksum and QEMU's size rule.

#![allow(clippy::indexing_slicing)]

use super::*;

fn footer(creator: &[u8; 4], current: u64, chs: (u16, u8, u8)) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[..8].copy_from_slice(COOKIE);
    b[16..24].fill(0xff);
    b[28..32].copy_from_slice(creator);
    b[48..56].copy_from_slice(&current.to_be_bytes());
    b[56..58].copy_from_slice(&chs.0.to_be_bytes());
    b[58] = chs.1;
    b[59] = chs.2;
    b[60..64].copy_from_slice(&2u32.to_be_bytes());
    let c = checksum(&b, 64);
    b[64..68].copy_from_slice(&c.to_be_bytes());
    b
}

#[test]
fn size_follows_qemus_rule() {
    let chs = (964, 4, 17);
    let chs_bytes = 964 * 4 * 17 * 512;
    for (creator, want) in [
        (b"qemu", chs_bytes),
        (b"vpc ", chs_bytes),
        (b"win ", 40 << 20),
        (b"qem2", 40 << 20),
        (b"d2v ", 40 << 20),
        (b"CTXS", 40 << 20),
        (b"tap\0", 40 << 20),
    ] {
        let f = Footer::decode(&footer(creator, 40 << 20, chs), 0, "t").unwrap();
        assert!(f.checksum_ok);
        assert_eq!(f.virtual_size(), want, "{creator:?}");
    }
    // The largest geometry means the current size, whoever made it.
    let f = Footer::decode(&footer(b"vpc ", 3 << 40, (65535, 16, 255)), 0, "t").unwrap();
    assert_eq!(f.virtual_size(), 3 << 40);
}

#[test]
fn a_fixed_disk_reads_its_data_and_a_bad_checksum_is_a_problem() {
    let mut file: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let mut f = footer(b"win ", 8192, (1, 1, 1));
    file.extend_from_slice(&f);
    let v = Vhd::from_source(Arc::new(file.clone()), "t").unwrap();
    assert!(v.problems().is_empty());
    let mut buf = vec![0u8; 8192];
    v.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(buf[..], file[..8192]);
    // Past the end: an error, not footer bytes.
    assert!(v.read_exact_at(8000, &mut buf[..1000]).is_err());
    f[64] ^= 1;
    let n = file.len();
    file[n - 512..].copy_from_slice(&f);
    let v = Vhd::from_source(Arc::new(file), "t").unwrap();
    assert!(
        v.problems()[0].contains("VHD footer at byte 8192: checksum mismatch"),
        "{:?}",
        v.problems()
    );
}

#[test]
fn no_footer_is_an_error_with_its_position() {
    let e = Vhd::from_source(Arc::new(vec![0u8; 4096]), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("VHD footer at byte 3584"), "{e}");
    let e = Vhd::from_source(Arc::new(vec![0u8; 100]), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("fewer than a footer's 512"), "{e}");
}
