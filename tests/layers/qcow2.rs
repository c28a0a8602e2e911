//! The qcow2 reader against QEMU's own tools: every virtual byte of every
//! fixture (made by `tests/fixtures/make/qcow2.sh` with qemu-img/qemu-io)
//! equals what `qemu-img convert -O raw` produced, snapshots included; the
//! layer tree of a qcow2 copy equals the raw disk's; damaged images give
//! errors, never panics.

use crate::common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::image::qcow2::{OpenOptions, Qcow2};
use vmrescue::image::{self, ImageFormat};
use vmrescue::io::ReadAt;

/// Every qcow2 fixture with a digest report.
const QCOW2: &[&str] = &[
    "qcow2-v2",
    "qcow2-v3-4k",
    "qcow2-v3-2m",
    "qcow2-v3-512",
    "qcow2-zlib",
    "qcow2-zstd",
    "qcow2-zlib-4k",
    "qcow2-zlib-512",
    "qcow2-zstd-2m",
    "qcow2-xl2",
    "qcow2-xl2-zstd",
    "qcow2-chain-mid",
    "qcow2-chain-top",
    "qcow2-snap",
    "qcow2-snap-v2",
    "qcow2-tiny",
    "qcow2-part",
];

/// The files an image needs beside it (its backing chain).
fn needs(name: &str) -> &'static [&'static str] {
    match name {
        "qcow2-xl2" => &["qcow2-xl2-base"],
        "qcow2-chain-mid" => &["qcow2-chain-base"],
        "qcow2-chain-top" => &["qcow2-chain-base", "qcow2-chain-mid"],
        _ => &[],
    }
}

/// Path of a fixture, with its backing files decompressed beside it.
fn fixture(name: &str) -> PathBuf {
    for n in needs(name) {
        common::fixture(n);
    }
    common::fixture(name)
}

#[derive(Debug)]
struct View {
    kind: String,
    id: Option<String>,
    len: u64,
    sha256: String,
}

/// The `.digests` report of a fixture.
fn digests(name: &str) -> Vec<View> {
    common::report(&format!("{name}.digests"))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["current", len, sha] => View {
                    kind: "current".into(),
                    id: None,
                    len: len.parse().unwrap(),
                    sha256: sha.to_string(),
                },
                [kind, id, len, sha] => View {
                    kind: kind.to_string(),
                    id: Some(id.to_string()),
                    len: len.parse().unwrap(),
                    sha256: sha.to_string(),
                },
                _ => panic!("bad digest line {l:?}"),
            }
        })
        .collect()
}

fn info(name: &str) -> serde_json::Value {
    serde_json::from_str(&common::report(&format!("{name}.qemu-img-info.json"))).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read all of `src` with reads of varying sizes (crossing clusters at odd
/// places), returning the bytes.
fn read_all(src: &dyn ReadAt) -> Vec<u8> {
    let size = src.size() as usize;
    let mut out = vec![0u8; size];
    let sizes = [1usize, 511, 4096, 65537, 1 << 20, 3 << 20, 777];
    let mut pos = 0usize;
    let mut i = 0;
    while pos < size {
        let n = sizes[i % sizes.len()].min(size - pos);
        src.read_exact_at(pos as u64, &mut out[pos..pos + n])
            .unwrap_or_else(|e| panic!("read of {n} bytes at {pos}: {e}"));
        pos += n;
        i += 1;
    }
    out
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[test]
fn every_virtual_byte_equals_qemu_img_convert() {
    for name in QCOW2 {
        let path = fixture(name);
        let img = image::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.format, ImageFormat::Qcow2, "{name}");
        let want = digests(name);
        let current = want.iter().find(|v| v.kind == "current").unwrap();
        assert_eq!(img.source.size(), current.len, "{name}: virtual size");
        assert_eq!(
            img.source.size(),
            info(name)["virtual-size"].as_u64().unwrap(),
            "{name}"
        );
        let bytes = read_all(&*img.source);
        assert_eq!(
            sha(&bytes),
            current.sha256,
            "{name}: bytes differ from qemu-img's"
        );
        // One big read gives the same bytes.
        let mut whole = vec![0u8; bytes.len()];
        img.source.read_exact_at(0, &mut whole).unwrap();
        assert!(whole == bytes, "{name}: a single read differs");
        // Reading past the end fails.
        let mut b = [0u8; 2];
        assert!(
            img.source
                .read_exact_at(img.source.size() - 1, &mut b)
                .is_err()
        );
    }
}

#[test]
fn snapshots_equal_qemu_img() {
    for name in ["qcow2-snap", "qcow2-snap-v2", "qcow2-tiny"] {
        let path = fixture(name);
        let want = digests(name);
        let snaps = info(name)["snapshots"].as_array().unwrap().clone();
        assert!(!snaps.is_empty(), "{name}: no snapshots in the report");
        for s in &snaps {
            let id = s["id"].as_str().unwrap();
            let sname = s["name"].as_str().unwrap();
            let reverted = want
                .iter()
                .find(|v| v.kind == "snapshot" && v.id.as_deref() == Some(id))
                .unwrap();
            let dash_l = want
                .iter()
                .find(|v| v.kind == "snapshot-l" && v.id.as_deref() == Some(id))
                .unwrap();
            for wanted in [id, sname] {
                let img = image::open_with(
                    &path,
                    &image::OpenOptions {
                        snapshot: Some(wanted.to_string()),
                        ..Default::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{name} snapshot {wanted}: {e}"));
                assert_eq!(img.snapshot.as_deref(), Some(id));
                assert_eq!(img.source.size(), reverted.len, "{name} snapshot {wanted}");
                let mut bytes = read_all(&*img.source);
                assert_eq!(
                    sha(&bytes),
                    reverted.sha256,
                    "{name} snapshot {wanted}: differs from `qemu-img snapshot -a`"
                );
                // qemu-img convert -l shows it at the current size, zero-filled.
                bytes.resize(dash_l.len as usize, 0);
                assert_eq!(
                    sha(&bytes),
                    dash_l.sha256,
                    "{name} snapshot {wanted}: differs from `qemu-img convert -l`"
                );
                assert!(
                    img.details
                        .iter()
                        .any(|d| d.starts_with(&format!("showing snapshot {id} \"{sname}\""))),
                    "{:?}",
                    img.details
                );
            }
        }
        // The current state differs from every snapshot in these fixtures.
        let img = image::open(&path).unwrap();
        assert_eq!(img.snapshot, None);
        let cur = sha(&read_all(&*img.source));
        assert!(
            want.iter()
                .filter(|v| v.kind == "snapshot")
                .all(|v| v.sha256 != cur)
        );
    }
}

#[test]
fn snapshot_list_matches_qemu_img_info() {
    for name in ["qcow2-snap", "qcow2-snap-v2", "qcow2-tiny"] {
        let q = Qcow2::open(&fixture(name), &OpenOptions::default()).unwrap();
        let snaps = info(name)["snapshots"].as_array().unwrap().clone();
        assert_eq!(q.snapshots().len(), snaps.len(), "{name}");
        for (ours, theirs) in q.snapshots().iter().zip(&snaps) {
            assert_eq!(ours.id, theirs["id"].as_str().unwrap());
            assert_eq!(ours.name, theirs["name"].as_str().unwrap());
            assert_eq!(
                u64::from(ours.date_sec),
                theirs["date-sec"].as_u64().unwrap()
            );
            assert_eq!(
                u64::from(ours.date_nsec),
                theirs["date-nsec"].as_u64().unwrap()
            );
            assert_eq!(
                ours.vm_state_size,
                theirs["vm-state-size"].as_u64().unwrap()
            );
        }
        let details = q.details().join(", ");
        for s in &snaps {
            let label = format!(
                "{} \"{}\"",
                s["id"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            );
            assert!(details.contains(&label), "{name}: {details}");
        }
        assert!(
            details.contains(&format!("{} snapshot", snaps.len())),
            "{details}"
        );
    }
    // The snapshot taken before the resize keeps its own size.
    let q = Qcow2::open(&fixture("qcow2-snap"), &OpenOptions::default()).unwrap();
    assert_eq!(q.snapshots()[0].disk_size, Some(16 << 20));
    assert_eq!(q.size(), 20 << 20);
    // Unknown snapshots are named with the list of those that exist.
    let e = image::open_with(
        &fixture("qcow2-snap"),
        &image::OpenOptions {
            snapshot: Some("nope".into()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("\"nope\"") && e.contains("1 \"before\"") && e.contains("2 \"after\""),
        "{e}"
    );
}

#[test]
fn details_show_version_chain_and_features() {
    let d = |name: &str| image::open(&fixture(name)).unwrap().details.join(", ");
    let top = d("qcow2-chain-top");
    assert!(
        top.contains(
            "backing qcow2-chain-mid.img (qcow2, 12 MiB) → qcow2-chain-base.img (raw, 8 MiB)"
        ),
        "{top}"
    );
    assert!(top.contains("v3 (compat 1.1), 64 KiB clusters"), "{top}");
    assert!(d("qcow2-v2").contains("v2 (compat 0.10)"));
    assert!(d("qcow2-v3-2m").contains("2 MiB clusters"));
    assert!(d("qcow2-v3-512").contains("512 B clusters"));
    assert!(d("qcow2-zstd").contains("zstd compression"));
    assert!(!d("qcow2-zlib").contains("compression"));
    let xl2 = d("qcow2-xl2");
    assert!(xl2.contains("extended L2"), "{xl2}");
    assert!(
        xl2.contains("backing qcow2-xl2-base.img (raw, 16 MiB)"),
        "{xl2}"
    );
    // The chain as data.
    let q = Qcow2::open(&fixture("qcow2-chain-top"), &OpenOptions::default()).unwrap();
    let chain = q.backing_chain();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].format, "qcow2");
    assert_eq!(chain[1].format, "raw");
    assert_eq!(chain[1].size, 8 << 20);
}

#[test]
fn host_extents_hold_the_same_bytes() {
    for name in [
        "qcow2-v3-4k",
        "qcow2-v2",
        "qcow2-chain-top",
        "qcow2-xl2",
        "qcow2-zlib-4k",
    ] {
        let img = image::open(&fixture(name)).unwrap();
        let src = &img.source;
        let size = src.size();
        let mut pos = 0;
        let mut found = 0u64;
        while pos < size {
            let want = (size - pos).min(300_000);
            if let Some(e) = src.host_extent(pos, want) {
                assert!(e.len >= 1 && e.len <= want, "{name} at {pos}: {e:?}");
                let mut theirs = vec![0u8; e.len as usize];
                e.file.read_exact_at(&mut theirs, e.offset).unwrap();
                let mut ours = vec![0u8; e.len as usize];
                src.read_exact_at(pos, &mut ours).unwrap();
                assert!(
                    theirs == ours,
                    "{name}: host extent at {pos} holds other bytes"
                );
                found += e.len;
                pos += e.len;
            } else {
                pos += 4096.min(size - pos);
            }
        }
        assert!(found > 0, "{name}: no host extent found");
    }
}

#[test]
fn concurrent_readers_see_the_same_bytes() {
    let img = image::open(&fixture("qcow2-zstd")).unwrap();
    let src: Arc<dyn ReadAt> = Arc::clone(&img.source);
    let whole = read_all(&*src);
    let whole = Arc::new(whole);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let src = Arc::clone(&src);
            let whole = Arc::clone(&whole);
            std::thread::spawn(move || {
                let mut pos = t * 3001;
                let mut buf = vec![0u8; 40_000];
                while pos + buf.len() < whole.len() {
                    src.read_exact_at(pos as u64, &mut buf).unwrap();
                    assert!(
                        buf[..] == whole[pos..pos + buf.len()],
                        "thread {t} at {pos}"
                    );
                    pos += 97_003;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn qcow2_copy_of_a_disk_has_the_same_layers() {
    let raw = common::fixture("qcow2-part-raw");
    let q = fixture("qcow2-part");
    let json = |p: &Path| {
        let out = common::vmrescue(&["layers", "--json", p.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (a, b) = (json(&raw), json(&q));
    let disk_a = &a["disks"][0];
    let disk_b = &b["disks"][0];
    assert_eq!(disk_a["size"], disk_b["size"]);
    assert!(
        !disk_a["children"].as_array().unwrap().is_empty(),
        "the raw disk shows no partitions: {a}"
    );
    assert_eq!(disk_a["children"], disk_b["children"]);
    let desc = disk_b["description"].as_str().unwrap();
    assert!(desc.starts_with("qcow2, dos partition table"), "{desc}");
    // The text tree too, apart from the disk's own line.
    let text = |p: &Path| {
        let out = common::vmrescue(&["layers", p.to_str().unwrap()]);
        String::from_utf8(out.stdout).unwrap()
    };
    let (ta, tb) = (text(&raw), text(&q));
    // Column widths follow the disk's (longer) description: compare words.
    // A description too long for the TYPE column is printed whole under the
    // table, named by the disk (`qcow2-part.img: qcow2, …`): the disk's own
    // line, left out as the table's is.
    let rows = |t: &str| {
        t.lines()
            .skip(2)
            .filter(|l| !l.trim().is_empty())
            .filter(|l| {
                !l.starts_with("qcow2-part.img: ") && !l.starts_with("qcow2-part-raw.img: ")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert!(!rows(&ta).is_empty());
    assert_eq!(rows(&ta), rows(&tb));
}

#[test]
fn layers_shows_a_snapshot() {
    let p = fixture("qcow2-snap");
    let out = common::vmrescue(&["layers", "--snapshot", "before", p.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("showing snapshot 1 \"before\""),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("16 MiB"), "{stdout}");
    let out = common::vmrescue(&["layers", "--snapshot", "zzz", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("snapshot \"zzz\""), "{err}");
    // --snapshot on a raw image says why not.
    let raw = common::fixture("qcow2-part-raw");
    let out = common::vmrescue(&["layers", "--snapshot", "1", raw.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a qcow2 image"), "{err}");
}

#[test]
fn other_formats_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a.vmdk", b"KDMV\x01\x00\x00\x00".to_vec(), "VMDK"),
        (
            "b.vmdk",
            b"# Disk DescriptorFile\nversion=1\n".to_vec(),
            "VMDK",
        ),
        ("c.vhdx", b"vhdxfile".to_vec(), "VHDX"),
        ("d.vhd", b"conectix".to_vec(), "VHD"),
        (
            "e.vdi",
            {
                let mut v = vec![0u8; 0x48];
                v[0x40..0x44].copy_from_slice(&[0x7f, 0x10, 0xda, 0xbe]);
                v
            },
            "VDI",
        ),
        ("f.qed", b"QED\0".to_vec(), "QED"),
        (
            "g.qcow",
            b"QFI\xfb\x00\x00\x00\x01".to_vec(),
            "qcow2 version 1",
        ),
    ];
    for (file, head, want) in cases {
        let p = dir.path().join(file);
        let mut bytes = head.clone();
        bytes.resize(4096, 0);
        std::fs::write(&p, &bytes).unwrap();
        let e = image::open(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{file}: {e}");
    }
    // Encrypted and external-data-file images made by qemu-img are refused by name.
    let e = image::open(&common::fixture("qcow2-aes")).unwrap_err();
    assert!(
        matches!(e, vmrescue::Error::Unsupported(_))
            && e.to_string().contains("encrypted qcow2 (AES)"),
        "{e}"
    );
    common::fixture("qcow2-datafile-data");
    let e = image::open(&common::fixture("qcow2-datafile")).unwrap_err();
    assert!(
        e.to_string()
            .contains("external data file \"qcow2-datafile-data.img\""),
        "{e}"
    );
    // A VHD (fixed) is recognised by its footer alone (and read: this
    // footer names no disk type, so it is refused by position).
    let p = dir.path().join("fixed.vhd");
    let mut bytes = vec![0u8; 8192];
    bytes[8192 - 512..8192 - 504].copy_from_slice(b"conectix");
    std::fs::write(&p, &bytes).unwrap();
    let e = image::open(&p).unwrap_err().to_string();
    assert!(e.contains("VHD footer at byte 7740: disk type 0"), "{e}");
}
