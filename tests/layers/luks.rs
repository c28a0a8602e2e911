//! LUKS volumes made by real tools (tests/fixtures/make/luks.sh): LUKS1 by
//! `qemu-img convert -O luks` (aes-xts-plain64, aes-cbc-essiv:sha256),
//! LUKS2 headers by `cryptsetup luksFormat` (pbkdf2 with 512-byte sectors,
//! argon2id with 4096-byte sectors) over a payload encrypted with the
//! volume key cryptsetup dumps. Each holds the same plain disk (an LVM2 PV
//! whose LV holds an ext4): unlocked, its bytes, its VG and every file's
//! SHA-256 are the plain disk's; without a key it stays locked and the
//! rest reads; a wrong key or damage is a problem naming the header part.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::{FileType, FsOptions, FsView, NodeId};
use vmrescue::io::ReadAt;
use vmrescue::layers::luks::{Secret, UnlockRequest};
use vmrescue::layers::{self, Layout, ScanOptions};

use crate::common::{fixture, fixture_file, vmrescue};

const IMAGES: [&str; 4] = [
    "luks1-xts",
    "luks1-essiv",
    "luks2-pbkdf2",
    "luks2-argon2id-4k",
];

fn passphrase() -> Vec<u8> {
    std::fs::read(fixture_file("luks.pass")).unwrap()
}

fn scan_with_key(path: &std::path::Path, key: Option<Vec<u8>>) -> Layout {
    let unlock =
        move |r: &UnlockRequest<'_>| key.clone().filter(|_| r.attempt == 0).map(Secret::new);
    let img = vmrescue::image::open(path).unwrap();
    layers::scan_with(
        vec![img],
        ScanOptions {
            unlock: Some(&unlock),
            ..ScanOptions::default()
        },
    )
}

/// SHA-256 of every regular file, `sha256sum`'s way: `HASH  path`.
fn sums(fs: &dyn FsView) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo: Vec<(String, NodeId)> = vec![(String::new(), fs.root())];
    while let Some((path, node)) = todo.pop() {
        assert!(out.len() < 10_000, "tree too large");
        let m = fs.metadata(node).unwrap();
        match m.file_type {
            FileType::Directory => {
                for e in fs.read_dir(node).unwrap() {
                    let name = String::from_utf8(e.name.clone()).unwrap();
                    if name == "." || name == ".." || name == "lost+found" {
                        continue;
                    }
                    let p = if path.is_empty() {
                        name
                    } else {
                        format!("{path}/{name}")
                    };
                    todo.push((p, e.node));
                }
            }
            FileType::Regular => {
                let mut h = Sha256::new();
                let mut at = 0u64;
                let mut buf = vec![0u8; 1 << 16];
                while at < m.size {
                    let n = fs.read_at(node, at, &mut buf).unwrap();
                    assert!(n > 0, "{path}: short read at {at}");
                    h.update(&buf[..n]);
                    at += n as u64;
                }
                let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                out.push(format!("{hex}  {path}"));
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a[66..].cmp(&b[66..]));
    out
}

fn expected_sums() -> Vec<String> {
    let text = std::fs::read_to_string(fixture_file("luks.sums")).unwrap();
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort_by(|a, b| a[66..].cmp(&b[66..]));
    v
}

#[test]
fn unlocked_volumes_read_as_the_plain_disk() {
    let plain = std::fs::read(fixture("luks-plain")).unwrap();
    let want = expected_sums();
    assert!(want.len() >= 5, "luks.sums lists the files");
    for name in IMAGES {
        let layout = scan_with_key(&fixture(name), Some(passphrase()));
        let luks = &layout.luks;
        assert_eq!(luks.len(), 1, "{name}: one LUKS volume");
        let s = &luks[0].1;
        assert_eq!(s.unlocked_by, Some(0), "{name}");
        assert_eq!(s.version, if name.starts_with("luks1") { 1 } else { 2 });
        // The decrypted disk: every byte the plain disk's.
        let d = layout
            .disks
            .iter()
            .find(|d| d.parent == Some(luks[0].0))
            .unwrap_or_else(|| panic!("{name}: no decrypted disk"));
        assert_eq!(d.size(), plain.len() as u64, "{name}");
        let mut got = vec![0u8; plain.len()];
        d.source.read_exact_at(0, &mut got).unwrap();
        assert!(
            Sha256::digest(&got) == Sha256::digest(&plain),
            "{name}: decrypted bytes differ from luks-plain.img"
        );
        // The VG inside and its ext4: every file's SHA-256.
        let lv = layout
            .volumes
            .iter()
            .find(|v| v.name == "disk0/vg_bare/lv_data")
            .unwrap_or_else(|| panic!("{name}: no vg_bare/lv_data"));
        assert_eq!(lv.content.label.as_deref(), Some("luks-data"));
        let us = Userspace::new(FsOptions::default());
        let fs = us.open_fs(&layout, lv.id, &FsOptions::default()).unwrap();
        assert_eq!(sums(&*fs), want, "{name}");
    }
}

#[test]
fn headers_as_layers_shows_them() {
    let layout = scan_with_key(&fixture("luks2-argon2id-4k"), None);
    let (_, s) = &layout.luks[0];
    assert_eq!(s.uuid, "44444444-0000-4000-8000-00000000c0de");
    assert_eq!(s.label.as_deref(), Some("vmr-luks2-argon"));
    assert_eq!(s.cipher, "aes-xts-plain64");
    assert_eq!(s.key_bits, 512);
    assert_eq!(s.sector_size, 4096);
    assert_eq!(s.keyslots.len(), 1);
    assert_eq!(
        (
            s.keyslots[0].index,
            s.keyslots[0].kdf.as_str(),
            s.keyslots[0].state.as_str()
        ),
        (0, "argon2id", "active")
    );
    let layout = scan_with_key(&fixture("luks1-essiv"), None);
    let (_, s) = &layout.luks[0];
    assert_eq!(
        (s.version, s.cipher.as_str(), s.key_bits),
        (1, "aes-cbc-essiv:sha256", 256)
    );
    assert_eq!(s.keyslots.len(), 8);
    assert_eq!(s.keyslots.iter().filter(|k| k.state == "active").count(), 1);
}

#[test]
fn layers_cli_with_key_file_and_without() {
    let key = fixture_file("luks.pass");
    let img = fixture("luks2-pbkdf2");
    let out = vmrescue(&[
        "layers",
        "--key-file",
        key.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("lv_data") && text.contains("luks-data"),
        "{text}"
    );
    assert!(
        text.contains(
            "aes-xts-plain64 512-bit, sector 512, keyslots 0 pbkdf2; unlocked with keyslot 0"
        ),
        "{text}"
    );
    // Without a key (standard input is no terminal): locked, said how to unlock.
    let out = vmrescue(&["layers", img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("locked: give --key-file or run on a terminal"),
        "{text}"
    );
    assert!(!text.contains("lv_data"), "{text}");
    // A command that needs a filesystem says the disk is locked and how to unlock it.
    let out = vmrescue(&["ls", img.to_str().unwrap(), "/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("disk0 is encrypted (LUKS) and locked; unlock with --key-file FILE"),
        "{err}"
    );
    // JSON: the luks object.
    let out = vmrescue(&["layers", "--json", img.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let luks = &doc["disks"][0]["luks"];
    assert_eq!(luks["version"], 2);
    assert_eq!(luks["uuid"], "22222222-0000-4000-8000-00000000c0de");
    assert_eq!(luks["label"], "vmr-luks2-pbkdf2");
    assert_eq!(luks["keyslots"][0]["kdf"], "pbkdf2");
    assert_eq!(luks["unlocked_by"], serde_json::Value::Null);
}

#[test]
fn wrong_passphrase_is_a_problem_and_the_volume_stays_locked() {
    let layout = scan_with_key(
        &fixture("luks2-pbkdf2"),
        Some(b"not the passphrase".to_vec()),
    );
    assert_eq!(layout.luks[0].1.unlocked_by, None);
    let problems: Vec<String> = layout
        .all_problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.iter().any(|p| p.contains(
            "LUKS volume: no keyslot opens with this passphrase (tried keyslot 0): wrong passphrase"
        )),
        "{problems:?}"
    );
    assert!(!layout.volumes.iter().any(|v| v.name.contains("vg_bare")));
    // A trailing newline is part of a key file's passphrase (as cryptsetup).
    let dir = tempfile::tempdir().unwrap();
    let with_newline = dir.path().join("pass-nl");
    let mut k = passphrase();
    k.push(b'\n');
    std::fs::write(&with_newline, k).unwrap();
    let img = fixture("luks2-pbkdf2");
    let out = vmrescue(&[
        "layers",
        "--key-file",
        with_newline.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no keyslot opens with this passphrase"));
}

/// A copy of fixture `name` with `f` applied to its bytes, scanned with the passphrase.
fn damaged(name: &str, f: impl Fn(&mut Vec<u8>)) -> Layout {
    let mut bytes = std::fs::read(fixture(name)).unwrap();
    f(&mut bytes);
    let src: Arc<dyn ReadAt> = Arc::new(bytes);
    let key = passphrase();
    let unlock = move |r: &UnlockRequest<'_>| (r.attempt == 0).then(|| Secret::new(key.clone()));
    layers::scan_sources(
        vec![layers::DiskSource {
            origin: layers::DiskOrigin::Host(fixture(name)),
            source: src,
            format: vmrescue::image::ImageFormat::Raw,
            format_details: Vec::new(),
            snapshot: None,
            problems: Vec::new(),
        }],
        ScanOptions {
            unlock: Some(&unlock),
            ..ScanOptions::default()
        },
    )
}

fn problems(layout: &Layout) -> Vec<String> {
    layout
        .all_problems()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn damaged_primary_luks2_header_uses_the_secondary() {
    let layout = damaged("luks2-pbkdf2", |b| b[5000] ^= 0x20);
    assert_eq!(layout.luks[0].1.unlocked_by, Some(0));
    assert_eq!(layout.luks[0].1.header, "secondary at byte 16384");
    let p = problems(&layout);
    assert!(
        p.iter().any(
            |t| t.contains("LUKS2 primary header at byte 448: checksum mismatch")
                && t.contains("the secondary header at byte 16384 is used")
        ),
        "{p:?}"
    );
    assert!(
        layout
            .volumes
            .iter()
            .any(|v| v.name == "disk0/vg_bare/lv_data")
    );
}

/// The primary header's magic wiped (as `wipefs` on the first bytes
/// does): the volume is still recognised by its secondary header and
/// unlocks through it.
#[test]
fn a_wiped_primary_luks2_magic_is_found_by_the_secondary_header() {
    let layout = damaged("luks2-pbkdf2", |b| b[..6].fill(0));
    assert_eq!(layout.luks[0].1.unlocked_by, Some(0));
    assert_eq!(layout.luks[0].1.header, "secondary at byte 16384");
    assert!(
        layout
            .volumes
            .iter()
            .any(|v| v.name == "disk0/vg_bare/lv_data")
    );
}

/// cryptsetup's `--luks2-metadata-size 256k`: both header copies are 256
/// KiB, the secondary at byte 262144, past the bytes the probe reads
/// first. With the whole primary copy wiped the probe still says LUKS2 (it
/// looks at the secondary offsets up to 4 MiB) and the volume unlocks
/// through the secondary copy.
#[test]
fn a_wiped_256k_primary_luks2_header_is_found_at_byte_262144() {
    let whole = scan_with_key(&fixture("luks2-meta256k"), Some(passphrase()));
    assert_eq!(whole.luks[0].1.header, "primary");
    let layout = damaged("luks2-meta256k", |b| b[..262_144].fill(0));
    let v = &layout.volumes[0];
    assert_eq!(v.content.kind, layers::ContentKind::Luks);
    assert_eq!(
        v.content.uuid.as_deref(),
        Some("55555555-0000-4000-8000-00000000c0de")
    );
    let (_, luks) = &layout.luks[0];
    assert_eq!(luks.header, "secondary at byte 262144");
    assert_eq!(luks.label.as_deref(), Some("vmr-luks2-meta256k"));
    assert_eq!(luks.unlocked_by, Some(0));
    assert!(
        layout
            .volumes
            .iter()
            .any(|v| v.name == "disk0/vg_bare/lv_data")
    );
    // Without a key: still recognised, locked, by its secondary header.
    let bytes = {
        let mut b = std::fs::read(fixture("luks2-meta256k")).unwrap();
        b[..262_144].fill(0);
        b
    };
    let c = layers::probe::probe(&bytes);
    assert_eq!(c.kind, layers::ContentKind::Luks);
    assert_eq!(
        c.detail.as_deref(),
        Some("no primary LUKS2 header; the secondary header is at byte 262144")
    );
}

#[test]
fn corrupted_keyslot_material_names_the_keyslot() {
    // The key material of keyslot 0 (LUKS2: at byte 32768).
    let layout = damaged("luks2-argon2id-4k", |b| {
        for x in &mut b[32768..32768 + 4096] {
            *x = !*x;
        }
    });
    let p = problems(&layout);
    assert!(
        p.iter().any(|t| t.contains("tried keyslot 0")
            && t.contains("the keyslot's key material is damaged")),
        "{p:?}"
    );
    // A LUKS1 keyslot with an impossible stripe count (qemu: slot 0 at byte 208).
    let layout = damaged("luks1-xts", |b| {
        b[208 + 44..208 + 48].copy_from_slice(&0u32.to_be_bytes())
    });
    let p = problems(&layout);
    assert!(
        p.iter()
            .any(|t| t.contains("LUKS1 keyslot 0 at byte 208: 0 AF stripes")),
        "{p:?}"
    );
    assert!(p.iter().any(|t| t.contains("no usable keyslot")), "{p:?}");
}

#[test]
fn unsupported_cipher_is_named() {
    // LUKS1 cipher name at byte 8.
    let layout = damaged("luks1-xts", |b| {
        b[8..40].fill(0);
        b[8..15].copy_from_slice(b"serpent");
    });
    let p = problems(&layout);
    assert!(
        p.iter()
            .any(|t| t.contains("cipher serpent-xts-plain64 not supported")),
        "{p:?}"
    );
}

/// On a terminal the passphrase is asked, without echo; a wrong one is
/// asked again, an empty one leaves the volume locked.
#[test]
fn passphrase_asked_on_a_terminal_without_echo() {
    use expectrl::{Eof, Expect, Session};
    let img = fixture("luks2-pbkdf2");
    let pass = String::from_utf8(passphrase()).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vmrescue"));
    cmd.args(["layers", img.to_str().unwrap()]);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(std::time::Duration::from_secs(120)));
    s.expect("Passphrase for disk0 (LUKS2 UUID 22222222-0000-4000-8000-00000000c0de; empty to leave it locked): ")
        .unwrap();
    s.send_line("wrong one").unwrap();
    s.expect("Wrong passphrase. Passphrase for disk0").unwrap();
    s.send_line(&pass).unwrap();
    let seen = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(seen.as_bytes()).into_owned();
    assert!(text.contains("lv_data"), "{text:?}");
    assert!(
        !text.contains(&pass) && !text.contains("wrong one"),
        "echoed: {text:?}"
    );
    // An empty answer: locked, the rest shown.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vmrescue"));
    cmd.args(["layers", img.to_str().unwrap()]);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(std::time::Duration::from_secs(120)));
    s.expect("Passphrase for disk0").unwrap();
    s.send_line("").unwrap();
    let seen = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(seen.as_bytes()).into_owned();
    assert!(
        text.contains("locked: give --key-file or run on a terminal"),
        "{text:?}"
    );
}
