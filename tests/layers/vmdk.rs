//! The VMDK reader against QEMU's own tools: every virtual byte of every
//! subformat (made by `tests/fixtures/make/vmdk.sh` with qemu-img/qemu-io)
//! equals what `qemu-img convert -O raw` produced; snapshot chains read the
//! child's bytes; the layer tree and the files copied out equal the raw
//! disk's; an OVA's disks are the tree's top nodes; damaged files give
//! errors or problems with positions, never panics.

use crate::common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::image::vmdk::Vmdk;
use vmrescue::image::{self, ImageFormat};
use vmrescue::io::ReadAt;

/// Every VMDK fixture with a digest report, and its createType.
const VMDK: &[(&str, &str)] = &[
    ("vmdk-monolithicSparse", "monolithicSparse"),
    ("vmdk-monolithicFlat", "monolithicFlat"),
    ("vmdk-twoGbMaxExtentSparse", "twoGbMaxExtentSparse"),
    ("vmdk-twoGbMaxExtentFlat", "twoGbMaxExtentFlat"),
    ("vmdk-streamOptimized", "streamOptimized"),
    ("vmdk-chain-base", "monolithicSparse"),
    ("vmdk-chain-child", "monolithicSparse"),
];

fn vmdk(name: &str) -> PathBuf {
    common::fixture_file(&format!("{name}.vmdk"))
}

/// `(length, sha256)` from a `.digests` report.
fn digest(name: &str) -> (u64, String) {
    let text = common::report(&format!("{name}.digests"));
    let mut f = text.split_whitespace();
    let len = f.next().unwrap().parse().unwrap();
    (len, f.next().unwrap().to_string())
}

fn info(name: &str) -> serde_json::Value {
    serde_json::from_str(&common::report(&format!("{name}.qemu-img-info.json"))).unwrap()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Read all of `src` with reads of varying sizes (crossing grains at odd places).
fn read_all(src: &dyn ReadAt) -> std::io::Result<Vec<u8>> {
    let size = src.size() as usize;
    let mut out = vec![0u8; size];
    let sizes = [1usize, 511, 4096, 65537, 1 << 20, 3 << 20, 777];
    let mut pos = 0usize;
    let mut i = 0;
    while pos < size {
        let n = sizes[i % sizes.len()].min(size - pos);
        src.read_exact_at(pos as u64, &mut out[pos..pos + n])?;
        pos += n;
        i += 1;
    }
    Ok(out)
}

#[test]
fn every_subformat_equals_qemu_img_convert() {
    for (name, create_type) in VMDK {
        let img = image::open(&vmdk(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.format, ImageFormat::Vmdk, "{name}");
        assert!(img.problems.is_empty(), "{name}: {:?}", img.problems);
        let (len, want) = digest(name);
        let qi = info(name);
        assert_eq!(img.source.size(), len, "{name}: virtual size");
        assert_eq!(img.source.size(), qi["virtual-size"].as_u64().unwrap());
        let bytes = read_all(&*img.source).unwrap();
        assert_eq!(sha(&bytes), want, "{name}: bytes differ from qemu-img's");
        let mut whole = vec![0u8; bytes.len()];
        img.source.read_exact_at(0, &mut whole).unwrap();
        assert!(whole == bytes, "{name}: a single read differs");
        let mut b = [0u8; 2];
        assert!(img.source.read_exact_at(len - 1, &mut b).is_err());
        // The facts qemu-img info gives.
        let data = &qi["format-specific"]["data"];
        assert_eq!(data["create-type"], *create_type);
        let v = Vmdk::open(&vmdk(name)).unwrap();
        let d = v.descriptor();
        assert_eq!(d.create_type, *create_type);
        assert_eq!(u64::from(d.cid.unwrap()), data["cid"].as_u64().unwrap());
        assert_eq!(
            u64::from(d.parent_cid.unwrap()),
            data["parent-cid"].as_u64().unwrap()
        );
        let ext = v.extents();
        let theirs = data["extents"].as_array().unwrap();
        assert_eq!(ext.len(), theirs.len(), "{name}");
        for (o, t) in ext.iter().zip(theirs) {
            assert_eq!(o.virtual_size, t["virtual-size"].as_u64().unwrap());
            if let Some(c) = t.get("cluster-size").and_then(|c| c.as_u64()) {
                assert_eq!(o.cluster_size, Some(c), "{name}");
            }
            assert_eq!(o.compressed, t["compressed"].as_bool().unwrap_or(false));
        }
        assert!(img.details[0].starts_with(create_type), "{:?}", img.details);
    }
}

#[test]
fn chain_reads_the_childs_bytes_over_the_base() {
    let child = image::open(&vmdk("vmdk-chain-child")).unwrap();
    assert_ne!(digest("vmdk-chain-child").1, digest("vmdk-chain-base").1);
    let mut b = vec![0u8; 64 << 10];
    child.source.read_exact_at(1 << 20, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0x5a));
    // Across a grain boundary, not grain-aligned (3000 KiB, 100 KiB long).
    let mut b = vec![0u8; 100 << 10];
    child.source.read_exact_at(3000 << 10, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0x33));
    // What the child does not hold comes from the base.
    let base = image::open(&vmdk("vmdk-chain-base")).unwrap();
    let (mut x, mut y) = (vec![0u8; 4096], vec![0u8; 4096]);
    child.source.read_exact_at(1 << 23, &mut x).unwrap();
    base.source.read_exact_at(1 << 23, &mut y).unwrap();
    assert_eq!(x, y);
    let details = child.details.join(", ");
    assert!(
        details.contains("parent vmdk-chain-base.vmdk (monolithicSparse, 16 MiB)"),
        "{details}"
    );
    assert_eq!(
        info("vmdk-chain-child")["backing-filename"],
        "vmdk-chain-base.vmdk"
    );
}

#[test]
fn a_parent_changed_after_the_snapshot_is_a_problem() {
    let img = image::open(&vmdk("vmdk-cid-child")).unwrap();
    let p = img.problems.join("\n");
    assert!(
        p.contains("parentCID") && p.contains("vmdk-cid-base.vmdk has CID"),
        "{p}"
    );
    let mut b = vec![0u8; 4096];
    img.source.read_exact_at(1 << 20, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0x5a));
    // The base's later write shows through (QEMU refuses to read at all).
    img.source.read_exact_at(4 << 20, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0x77));
}

fn layers_json(p: &Path) -> serde_json::Value {
    layers_json_exit(p, 0)
}

/// `layers --json` of `p`, which must exit with `code` (1: problems found).
fn layers_json_exit(p: &Path, code: i32) -> serde_json::Value {
    let out = common::vmrescue(&["layers", "--json", p.to_str().unwrap()]);
    assert!(
        out.status.code() == Some(code),
        "{}: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_subformat_has_the_raw_disks_layers() {
    let raw = layers_json(&common::fixture("vmdk-raw"));
    let want = &raw["disks"][0];
    assert!(
        !want["children"].as_array().unwrap().is_empty(),
        "the raw disk shows no partitions: {raw}"
    );
    for (name, create_type) in VMDK.iter().filter(|(n, _)| !n.contains("chain-child")) {
        let got = layers_json(&vmdk(name));
        let disk = &got["disks"][0];
        assert_eq!(disk["size"], want["size"], "{name}");
        assert_eq!(disk["children"], want["children"], "{name}");
        let desc = disk["description"].as_str().unwrap();
        assert!(desc.starts_with("vmdk"), "{name}: {desc}");
        let text =
            String::from_utf8(common::vmrescue(&["layers", vmdk(name).to_str().unwrap()]).stdout)
                .unwrap();
        assert!(text.contains(create_type), "{name}: {text}");
    }
}

#[test]
fn files_copied_out_of_every_subformat_equal_the_originals() {
    let want = common::report("vmdk-raw.files");
    for (name, _) in VMDK.iter().filter(|(n, _)| !n.contains("chain")) {
        let dest = tempfile::tempdir().unwrap();
        let img = vmdk(name);
        let out = common::vmrescue(&[
            "cp",
            "--engine",
            "userspace",
            img.to_str().unwrap(),
            "/etc",
            "/srv",
            dest.path().to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in want.lines() {
            let (hash, path) = line.split_once("  ").unwrap();
            let got = std::fs::read(dest.path().join(path.trim_start_matches('/'))).unwrap();
            assert_eq!(sha(&got), hash, "{name}: {path}");
        }
    }
}

#[test]
fn ova_disks_are_top_nodes_and_read_like_qemu() {
    let ova = common::fixture_file("vmdk-ova.ova");
    let disks = image::open_all(&ova, &image::OpenOptions::default()).unwrap();
    assert_eq!(disks.len(), 2);
    for (img, n) in disks.iter().zip(["disk1", "disk2"]) {
        assert_eq!(img.path, ova.join(format!("{n}.vmdk")));
        assert_eq!(img.format, ImageFormat::Vmdk);
        let (len, want) = digest(&format!("vmdk-ova-{n}"));
        assert_eq!(img.source.size(), len);
        assert_eq!(sha(&read_all(&*img.source).unwrap()), want, "{n}");
        let details = img.details.join(", ");
        assert!(details.starts_with("streamOptimized"), "{details}");
        assert!(details.contains("in OVA"), "{details}");
    }
    // One image asked for: the first disk, with a word about the others.
    let one = image::open(&ova).unwrap();
    assert_eq!(one.path, ova.join("disk1.vmdk"));
    assert!(
        one.problems[0].contains("holds 2 disks"),
        "{:?}",
        one.problems
    );
    // `layers` shows both, the first with the raw disk's partitions; the
    // second (no partition table) is a problem.
    let got = layers_json_exit(&ova, 1);
    let probs = got["problems"].to_string();
    assert!(probs.contains("disk2.vmdk"), "{probs}");
    let raw = layers_json(&common::fixture("vmdk-raw"));
    assert_eq!(got["disks"].as_array().unwrap().len(), 2, "{got}");
    assert_eq!(got["disks"][0]["children"], raw["disks"][0]["children"]);
}

/// A private copy of the fixture `file` (and the files it names) in `dir`.
fn copy(dir: &Path, files: &[&str]) -> PathBuf {
    for f in files {
        std::fs::copy(common::fixture_file(f), dir.join(f)).unwrap();
    }
    dir.join(files[0])
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn header_u64(path: &Path, at: u64) -> u64 {
    let f = std::fs::File::open(path).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn a_zeroed_primary_grain_directory_falls_back_to_the_redundant_one() {
    let tmp = tempfile::tempdir().unwrap();
    let p = copy(tmp.path(), &["vmdk-monolithicSparse.vmdk"]);
    let gd = header_u64(&p, 56) * 512;
    assert_ne!(header_u64(&p, 48), 0, "qemu-img writes a redundant GD");
    patch(&p, gd, &[0u8; 512]);
    let img = image::open(&p).unwrap();
    let probs = img.problems.join("\n");
    assert!(
        probs.contains(&format!("grain directory at byte {gd}")) && probs.contains("redundant"),
        "{probs}"
    );
    assert_eq!(
        sha(&read_all(&*img.source).unwrap()),
        digest("vmdk-monolithicSparse").1
    );
    // A primary GD past the file's end: the redundant one is used whole.
    patch(&p, 56, &(1u64 << 40).to_le_bytes());
    let img = image::open(&p).unwrap();
    assert!(
        img.problems
            .join("\n")
            .contains("redundant grain directory at byte"),
        "{:?}",
        img.problems
    );
    assert_eq!(
        sha(&read_all(&*img.source).unwrap()),
        digest("vmdk-monolithicSparse").1
    );
    // Both gone: an error naming the grain directory and its position.
    patch(&p, 48, &(1u64 << 40).to_le_bytes());
    let e = Vmdk::open(&p).unwrap_err().to_string();
    assert!(e.contains("grain directory at byte"), "{e}");
}

#[test]
fn damaged_headers_are_errors_with_positions() {
    let tmp = tempfile::tempdir().unwrap();
    let p = copy(tmp.path(), &["vmdk-monolithicSparse.vmdk"]);
    let orig = std::fs::read(&p).unwrap();
    let cases: &[(u64, &[u8], &str)] = &[
        (
            0,
            b"KDMX",
            "VMDK file at byte 0: neither a sparse extent (magic KDMV)",
        ),
        (4, &9u32.to_le_bytes(), "at byte 4: version 9"),
        (20, &3u64.to_le_bytes(), "at byte 20: grain size 3 sectors"),
        (
            44,
            &u32::MAX.to_le_bytes(),
            "at byte 44: 4294967295 entries per grain table",
        ),
        (12, &u64::MAX.to_le_bytes(), "at byte 12: capacity"),
    ];
    for (at, bytes, want) in cases {
        std::fs::write(&p, &orig).unwrap();
        patch(&p, *at, bytes);
        let e = Vmdk::open(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{at}: {e}");
    }
    // A huge capacity that passes the cap: the GD is too large to read.
    std::fs::write(&p, &orig).unwrap();
    patch(&p, 12, &(1u64 << 36).to_le_bytes());
    patch(&p, 48, &0u64.to_le_bytes());
    let e = Vmdk::open(&p).unwrap_err().to_string();
    assert!(e.contains("grain directory at byte"), "{e}");
}

#[test]
fn a_truncated_file_reads_what_is_there_and_errs_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = copy(tmp.path(), &["vmdk-monolithicSparse.vmdk"]);
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let img = image::open(&p).unwrap();
    let e = read_all(&*img.source).unwrap_err().to_string();
    assert!(
        e.contains("VMDK grain at byte") && e.contains("truncated"),
        "{e}"
    );
    // The layer tree still opens (the partition table is at the start).
    let out = common::vmrescue(&["layers", p.to_str().unwrap()]);
    assert!(out.status.code().is_some());
    // Stream-optimized, cut in half: the compressed grains past the end are errors.
    let s = copy(tmp.path(), &["vmdk-streamOptimized.vmdk"]);
    let len = std::fs::metadata(&s).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&s).unwrap();
    f.set_len(len / 2).unwrap();
    let img = image::open(&s).unwrap();
    let e = read_all(&*img.source).unwrap_err().to_string();
    assert!(e.contains("VMDK compressed grain at byte"), "{e}");
}

#[test]
fn a_grain_directory_at_the_end_is_found_through_the_footer() {
    // QEMU writes the GD after the header; VMware's exports put it at the
    // end (gdOffset all ones) and the footer says where: make one of those.
    let tmp = tempfile::tempdir().unwrap();
    let s = copy(tmp.path(), &["vmdk-streamOptimized.vmdk"]);
    let mut b = std::fs::read(&s).unwrap();
    let header = b[..512].to_vec();
    let mut footer_marker = vec![0u8; 512];
    footer_marker[..8].copy_from_slice(&1u64.to_le_bytes()); // 1 sector of metadata
    footer_marker[12..16].copy_from_slice(&3u32.to_le_bytes()); // footer
    b.extend_from_slice(&footer_marker);
    b.extend_from_slice(&header);
    b.extend_from_slice(&[0u8; 512]); // end of stream
    b[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&s, &b).unwrap();
    let img = image::open(&s).unwrap();
    assert_eq!(
        sha(&read_all(&*img.source).unwrap()),
        digest("vmdk-streamOptimized").1
    );
    // Without the footer: an error naming it.
    let f = std::fs::OpenOptions::new().write(true).open(&s).unwrap();
    f.set_len(b.len() as u64 - 1536).unwrap();
    let e = Vmdk::open(&s).unwrap_err().to_string();
    assert!(e.contains("footer"), "{e}");
}

#[test]
fn a_damaged_compressed_grain_is_an_error_at_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let s = copy(tmp.path(), &["vmdk-streamOptimized.vmdk"]);
    // The first grain follows the header area (overHead sectors).
    let first = header_u64(&s, 64) * 512;
    patch(&s, first + 12, &[0xff; 64]);
    let img = image::open(&s).unwrap();
    let e = read_all(&*img.source).unwrap_err().to_string();
    assert!(
        e.contains(&format!("VMDK compressed grain at byte {first}")),
        "{e}"
    );
}

#[test]
fn descriptors_name_missing_extents_and_loops() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("missing.vmdk");
    std::fs::write(
        &d,
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"gone-flat.vmdk\" 0\n",
    )
    .unwrap();
    let e = image::open(&d).unwrap_err().to_string();
    assert!(
        e.contains("VMDK extent gone-flat.vmdk") && e.contains("at byte 92"),
        "{e}"
    );
    // a → b → a.
    let desc = |cid: &str, parent: &str| {
        format!(
            "# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID=00000001\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"{parent}\"\nRW 2048 ZERO\n"
        )
    };
    std::fs::write(tmp.path().join("a.vmdk"), desc("00000001", "b.vmdk")).unwrap();
    std::fs::write(tmp.path().join("b.vmdk"), desc("00000001", "a.vmdk")).unwrap();
    let e = image::open(&tmp.path().join("a.vmdk"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("loops back"), "{e}");
    // A missing parent is named.
    std::fs::write(tmp.path().join("c.vmdk"), desc("00000002", "nope.vmdk")).unwrap();
    let e = image::open(&tmp.path().join("c.vmdk"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("parent disk nope.vmdk"), "{e}");
    // Extent kinds we do not read are refused by name.
    std::fs::write(
        tmp.path().join("se.vmdk"),
        "# Disk DescriptorFile\ncreateType=\"seSparse\"\nRW 2048 SESPARSE \"x.vmdk\"\n",
    )
    .unwrap();
    let e = image::open(&tmp.path().join("se.vmdk"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("SESPARSE extents are not supported"), "{e}");
}

#[test]
fn a_hand_written_descriptor_joins_flat_zero_and_sparse_extents() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = std::fs::read(common::fixture("vmdk-raw")).unwrap();
    let half = raw.len() / 2;
    // First half: a flat file with 1 MiB before the extent (offset 2048 sectors).
    let mut a = vec![0x11u8; 1 << 20];
    a.extend_from_slice(&raw[..half]);
    std::fs::write(tmp.path().join("my disk-1.bin"), &a).unwrap();
    std::fs::copy(
        common::fixture_file("vmdk-monolithicSparse.vmdk"),
        tmp.path().join("sp.vmdk"),
    )
    .unwrap();
    let sectors = half / 512;
    std::fs::write(
        tmp.path().join("d.vmdk"),
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=0000abcd\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\
             RW {sectors} VMFS \"my disk-1.bin\" 2048\nRDONLY 16 ZERO\nRW {} SPARSE \"sp.vmdk\"\n",
            raw.len() / 512
        ),
    )
    .unwrap();
    let img = image::open(&tmp.path().join("d.vmdk")).unwrap();
    assert_eq!(img.source.size(), (half + 16 * 512 + raw.len()) as u64);
    let bytes = read_all(&*img.source).unwrap();
    assert!(bytes[..half] == raw[..half]);
    assert!(bytes[half..half + 8192].iter().all(|&b| b == 0));
    assert!(bytes[half + 8192..] == raw[..]);
    let details = img.details.join(", ");
    assert!(
        details.contains("extent VMFS 8 MiB my disk-1.bin") && details.contains("64 KiB grains"),
        "{details}"
    );
}

#[test]
fn mutated_sparse_files_never_panic() {
    let orig = std::fs::read(vmdk("vmdk-streamOptimized")).unwrap();
    let sparse = std::fs::read(vmdk("vmdk-monolithicSparse")).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut b = if round % 2 == 0 {
            orig.clone()
        } else {
            sparse.clone()
        };
        for _ in 0..1 + next() % 6 {
            // Mostly the header, the GD area and the first grains.
            let at = (next() % (b.len().min(1 << 17) as u64)) as usize;
            b[at] = next() as u8;
        }
        let src: Arc<dyn ReadAt> = Arc::new(b);
        if let Ok(v) = Vmdk::from_source(src, "mutated.vmdk") {
            let _ = v.details();
            let mut buf = vec![0u8; 1 << 16];
            let mut pos = 0u64;
            while pos + buf.len() as u64 <= v.size().min(4 << 20) {
                let _ = v.read_exact_at(pos, &mut buf);
                pos += 1 << 16;
            }
        }
    }
}

#[test]
fn a_snapshot_option_on_a_vmdk_says_what_a_vmware_snapshot_is() {
    let e = image::open_with(
        &vmdk("vmdk-chain-child"),
        &image::OpenOptions {
            snapshot: Some("1".into()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("a VMDK keeps no internal snapshots"), "{e}");
}
