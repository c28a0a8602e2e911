//! LUKS volumes made in memory ([`super::make`]): unlock, read, and the
//! corruption suite on headers, JSON areas and keyslots.

use std::sync::Arc;

use super::make::{self, Spec};
use super::*;
use crate::io::ReadAt;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i / 512) as u8 ^ (i as u8)).collect()
}

fn pass(p: &'static [u8]) -> impl Fn(&UnlockRequest<'_>) -> Option<Secret> {
    move |r: &UnlockRequest<'_>| (r.attempt == 0).then(|| Secret::new(p.to_vec()))
}

fn open_img(img: Vec<u8>, p: &'static [u8]) -> (Opened, Vec<crate::problem::Problem>) {
    let src: Arc<dyn ReadAt> = Arc::new(img);
    let mut problems = Vec::new();
    let f = pass(p);
    let o = open(&src, "p3", Some(&f), &mut problems);
    (o, problems)
}

fn read_all(o: &Opened) -> Vec<u8> {
    let Opened::Unlocked(r, _, _) = o else {
        panic!("not unlocked");
    };
    let mut buf = vec![0u8; r.size() as usize];
    r.read_exact_at(0, &mut buf).unwrap();
    buf
}

fn locked_why(o: &Opened) -> String {
    match o {
        Opened::Locked { why, .. } => why.clone(),
        Opened::Unlocked(..) => panic!("unlocked"),
    }
}

#[test]
fn luks1_xts_and_essiv_unlock_and_read() {
    let plain = payload(64 << 10);
    for (cipher, key) in [
        ("aes-xts-plain64", 64),
        ("aes-cbc-essiv:sha256", 32),
        ("aes-xts-plain64", 32),
    ] {
        let img = make::make(&Spec {
            version: 1,
            cipher,
            key_bytes: key,
            payload: &plain,
            ..Spec::default()
        });
        let (o, problems) = open_img(img, b"secret");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(read_all(&o), plain, "{cipher}");
        let Opened::Unlocked(_, s, _) = &o else {
            unreachable!()
        };
        assert_eq!(s.version, 1);
        assert_eq!(s.cipher, cipher);
        assert_eq!(s.key_bits, key as u32 * 8);
        assert_eq!(s.unlocked_by, Some(0));
        assert_eq!(s.keyslots.len(), 8);
        assert_eq!(s.keyslots[1].state, "inactive");
    }
}

#[test]
fn luks2_pbkdf2_argon2_sector_sizes() {
    let plain = payload(1 << 20);
    for (kdf, sector) in [("pbkdf2", 512), ("argon2id", 4096), ("pbkdf2", 4096)] {
        let img = make::make(&Spec {
            kdf,
            sector_size: sector,
            payload: &plain,
            ..Spec::default()
        });
        let (o, problems) = open_img(img, b"secret");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(read_all(&o), plain, "{kdf} {sector}");
        let Opened::Unlocked(r, s, _) = &o else {
            unreachable!()
        };
        assert_eq!(s.label.as_deref(), Some("tests"));
        assert_eq!(s.sector_size, sector as u32);
        assert_eq!(s.keyslots[0].kdf, kdf);
        // Unaligned reads across sectors.
        let mut b = vec![0u8; 5000];
        r.read_exact_at(4000, &mut b).unwrap();
        assert_eq!(b, plain[4000..9000]);
        assert!(r.read_exact_at(plain.len() as u64 - 10, &mut b).is_err());
    }
}

#[test]
fn wrong_passphrase_names_the_slots() {
    let img = make::make(&Spec {
        payload: &payload(8192),
        ..Spec::default()
    });
    let (o, _) = open_img(img, b"nope");
    let why = locked_why(&o);
    assert!(
        why.contains("no keyslot opens with this passphrase (tried keyslot 0)"),
        "{why}"
    );
}

#[test]
fn no_key_is_locked_not_damaged() {
    let src: Arc<dyn ReadAt> = Arc::new(make::make(&Spec {
        payload: &payload(8192),
        ..Spec::default()
    }));
    let mut problems = Vec::new();
    match open(&src, "p3", None, &mut problems) {
        Opened::Locked {
            why,
            damage,
            summary,
        } => {
            assert!(!damage);
            assert!(
                why.contains("give --key-file or run on a terminal"),
                "{why}"
            );
            assert_eq!(summary.unwrap().version, 2);
        }
        Opened::Unlocked(..) => panic!("unlocked without a key"),
    }
}

#[test]
fn damaged_primary_luks2_header_uses_the_secondary() {
    let plain = payload(8192);
    let mut img = make::make(&Spec {
        payload: &plain,
        ..Spec::default()
    });
    img[4200] ^= 0xff; // in the primary JSON area
    let (o, problems) = open_img(img.clone(), b"secret");
    assert_eq!(read_all(&o), plain);
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(
            |t| t.contains("LUKS2 primary header at byte 448: checksum mismatch")
                && t.contains("secondary header at byte 16384 is used")
        ),
        "{text:?}"
    );
    // The magic gone too.
    img[0] = 0;
    let (o, _) = open_img(img, b"secret");
    assert_eq!(read_all(&o), plain);
}

#[test]
fn both_luks2_headers_damaged() {
    let mut img = make::make(&Spec {
        payload: &payload(8192),
        ..Spec::default()
    });
    img[4200] ^= 1;
    img[16384 + 4200] ^= 1;
    let (o, _) = open_img(img, b"secret");
    assert!(locked_why(&o).contains("both copies are damaged"));
}

/// Change the JSON of both copies and reseal them.
fn edit_json(img: &mut [u8], f: impl Fn(&mut serde_json::Value)) {
    for at in [0usize, 16384] {
        let area = &img[at + 4096..at + 16384];
        let end = area.iter().position(|&c| c == 0).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&area[..end]).unwrap();
        f(&mut v);
        let t = v.to_string();
        img[at + 4096..at + 16384].fill(0);
        img[at + 4096..at + 4096 + t.len()].copy_from_slice(t.as_bytes());
        make::reseal(img, at);
    }
}

fn luks2_with(f: impl Fn(&mut serde_json::Value)) -> (Opened, Vec<String>) {
    let mut img = make::make(&Spec {
        payload: &payload(8192),
        ..Spec::default()
    });
    edit_json(&mut img, f);
    let (o, p) = open_img(img, b"secret");
    (o, p.iter().map(ToString::to_string).collect())
}

#[test]
fn unknown_cipher_is_named() {
    let (o, _) = luks2_with(|v| v["segments"]["0"]["encryption"] = "twofish-xts-plain64".into());
    let why = locked_why(&o);
    assert!(
        why.contains("cipher twofish-xts-plain64 not supported"),
        "{why}"
    );
    let (o, p) =
        luks2_with(|v| v["keyslots"]["0"]["area"]["encryption"] = "serpent-cbc-plain".into());
    assert!(locked_why(&o).contains("no usable keyslot"));
    assert!(
        p.iter()
            .any(|t| t.contains("LUKS2 keyslot 0: cipher serpent-cbc-plain not supported")),
        "{p:?}"
    );
}

#[test]
fn corrupt_keyslot_is_named() {
    for (edit, words) in [
        (
            Box::new(|v: &mut serde_json::Value| v["keyslots"]["0"]["af"]["stripes"] = 0.into())
                as Box<dyn Fn(&mut serde_json::Value)>,
            "0 AF stripes",
        ),
        (
            Box::new(|v: &mut serde_json::Value| {
                v["keyslots"]["0"]["af"]["stripes"] = 4_000_000_000u64.into()
            }),
            "AF stripes (expected 1 to 65536)",
        ),
        (
            Box::new(|v: &mut serde_json::Value| {
                v["keyslots"]["0"]["area"]["offset"] = "18446744073709551615".into()
            }),
            "past the volume's end",
        ),
        (
            Box::new(|v: &mut serde_json::Value| {
                v["keyslots"]["0"]["kdf"]["type"] = "scrypt".into()
            }),
            "KDF scrypt not supported",
        ),
        (
            Box::new(|v: &mut serde_json::Value| {
                v["keyslots"]["0"]["kdf"]["memory"] = 1_000_000_000u64.into();
                v["keyslots"]["0"]["kdf"]["type"] = "argon2id".into();
                v["keyslots"]["0"]["kdf"]["time"] = 1.into();
                v["keyslots"]["0"]["kdf"]["cpus"] = 1.into();
            }),
            "argon2 memory 1000000000 KiB",
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["keyslots"]["0"]["key_size"] = 100000.into()),
            "key size 100000",
        ),
    ] {
        let (o, p) = luks2_with(edit);
        assert!(
            p.iter()
                .any(|t| t.starts_with("LUKS2 keyslot 0: ") && t.contains(words)),
            "{words}: {p:?}"
        );
        let why = locked_why(&o);
        assert!(
            why.contains("no usable keyslot") || why.contains("bit key is not supported"),
            "{why}"
        );
    }
}

#[test]
fn corrupt_segments_and_json() {
    let (o, _) = luks2_with(|v| v["segments"]["0"]["offset"] = "99999999999999".into());
    assert!(locked_why(&o).contains("segment 0: offset 99999999999999 is past the volume's end"));
    let (o, _) = luks2_with(|v| v["segments"]["0"]["sector_size"] = 3000.into());
    assert!(locked_why(&o).contains("sector size 3000"));
    let (o, _) = luks2_with(|v| v["segments"] = serde_json::json!({}));
    assert!(locked_why(&o).contains("no segment of type crypt"));
    let (o, _) = luks2_with(|v| *v = serde_json::json!([1, 2]));
    assert!(locked_why(&o).contains("LUKS2 JSON area at byte 4096: no `segments` object"));
}

#[test]
fn damaged_key_material_fails_the_digest() {
    let mut img = make::make(&Spec {
        payload: &payload(8192),
        ..Spec::default()
    });
    for b in &mut img[make::LUKS2_AREA..make::LUKS2_AREA + 512] {
        *b ^= 0x55;
    }
    let (o, _) = open_img(img, b"secret");
    assert!(locked_why(&o).contains("wrong passphrase, or the keyslot's key material is damaged"));
}

#[test]
fn corrupt_luks1_header() {
    let base = make::make(&Spec {
        version: 1,
        payload: &payload(8192),
        ..Spec::default()
    });
    let mut img = base.clone();
    img[104..108].copy_from_slice(&u32::MAX.to_be_bytes());
    let (o, _) = open_img(img, b"secret");
    assert!(locked_why(&o).contains("LUKS1 header at byte 104: payload offset"));
    let mut img = base.clone();
    img[208 + 44..208 + 48].copy_from_slice(&0u32.to_be_bytes());
    let (o, p) = open_img(img, b"secret");
    assert!(
        p.iter().any(|t| t
            .to_string()
            .starts_with("LUKS1 keyslot 0 at byte 208: 0 AF stripes")),
        "{p:?}"
    );
    assert!(locked_why(&o).contains("no usable keyslot"));
    let mut img = base.clone();
    img[8..40].fill(0);
    img[8..15].copy_from_slice(b"serpent");
    let (o, _) = open_img(img, b"secret");
    assert!(locked_why(&o).contains("cipher serpent-xts-plain64 not supported"));
    let mut img = base;
    img[72..104].fill(0);
    img[72..81].copy_from_slice(b"whirlpool");
    let (o, _) = open_img(img, b"secret");
    assert!(locked_why(&o).contains("hash whirlpool not supported"));
}

#[test]
fn summary_describes() {
    let img = make::make(&Spec {
        kdf: "argon2id",
        payload: &payload(8192),
        ..Spec::default()
    });
    let h = header::read(&img).unwrap();
    let d = LuksSummary::of(&h).describe();
    assert_eq!(
        d,
        "aes-xts-plain64 512-bit, sector 512, keyslots 0 argon2id; locked"
    );
}

/// LUKS2 header copies of every size from 16 KiB to 4 MiB, the primary
/// wiped: the probe finds the secondary and the volume opens through it.
#[test]
fn wiped_primary_with_any_header_size_opens_by_the_secondary() {
    let plain = payload(8192);
    for hdr in [16usize << 10, 64 << 10, 128 << 10, 1 << 20, 4 << 20] {
        let mut img = make::make(&Spec {
            hdr_size: hdr,
            payload: &plain,
            ..Spec::default()
        });
        img[..hdr].fill(0);
        let c = crate::layers::probe::probe(&img);
        assert_eq!(c.kind, crate::layers::ContentKind::Luks, "{hdr}");
        assert_eq!(
            c.detail,
            Some(format!(
                "no primary LUKS2 header; the secondary header is at byte {hdr}"
            ))
        );
        let (o, _) = open_img(img, b"secret");
        assert_eq!(read_all(&o), plain, "{hdr}");
        let Opened::Unlocked(_, s, _) = &o else {
            panic!("not unlocked");
        };
        assert_eq!(s.header, format!("secondary at byte {hdr}"));
    }
}

/// IVs count 512-byte sectors whatever the sector size (dm-crypt without
/// `iv_large_sectors`, as cryptsetup opens LUKS2): the second 4096-byte
/// sector from IV 0 has IV 8.
#[test]
fn iv_steps_count_512_byte_sectors() {
    let key = [7u8; 64];
    let plain: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let mut stepped = plain.clone();
    super::crypto::SectorCipher::new("aes-xts-plain64", &key)
        .unwrap()
        .with_iv_step(8)
        .encrypt_sectors(&mut stepped, 4096, 0);
    let mut second = plain[4096..].to_vec();
    super::crypto::SectorCipher::new("aes-xts-plain64", &key)
        .unwrap()
        .encrypt_sectors(&mut second, 4096, 8);
    assert_eq!(&stepped[4096..], &second[..]);
    let mut back = stepped.clone();
    super::crypto::SectorCipher::new("aes-xts-plain64", &key)
        .unwrap()
        .with_iv_step(8)
        .decrypt_sectors(&mut back, 4096, 0);
    assert_eq!(back, plain);
}
