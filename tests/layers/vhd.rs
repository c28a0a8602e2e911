//! The VHD, VHDX and VDI readers against QEMU's own tools: every virtual
//! byte of every fixture (made by `tests/fixtures/make/vhd.sh` with
//! qemu-img/qemu-io) equals what `qemu-img convert -O raw` produced; the
//! layer tree equals the raw disk's; files copied out equal the originals;
//! differencing chains (built here: QEMU cannot create them), a dirty VHDX
//! log (built here from MS-VHDX) and damaged images give the right bytes,
//! problems or errors, never panics.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmrescue::image::vdi::Vdi;
use vmrescue::image::vhd::Vhd;
use vmrescue::image::vhdx::Vhdx;
use vmrescue::image::{self, ImageFormat};
use vmrescue::io::ReadAt;

/// Every fixture, with its format.
const IMAGES: &[(&str, ImageFormat)] = &[
    ("vhd-fixed", ImageFormat::Vhd),
    ("vhd-dynamic", ImageFormat::Vhd),
    ("vhd-dynamic-sz", ImageFormat::Vhd),
    ("vhdx-fixed", ImageFormat::Vhdx),
    ("vhdx-dynamic", ImageFormat::Vhdx),
    ("vhdx-dynamic-8m", ImageFormat::Vhdx),
    ("vdi-static", ImageFormat::Vdi),
    ("vdi-dynamic", ImageFormat::Vdi),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every virtual byte of `src`, read in uneven pieces.
fn read_all(src: &dyn ReadAt) -> Vec<u8> {
    let mut out = vec![0u8; src.size() as usize];
    let mut pos = 0usize;
    let mut step = 1usize << 20;
    while pos < out.len() {
        let n = step.min(out.len() - pos);
        src.read_exact_at(pos as u64, &mut out[pos..pos + n])
            .unwrap();
        pos += n;
        step = if step == 1 << 20 { 777_777 } else { 1 << 20 };
    }
    out
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `current LENGTH SHA256` from the fixture's `.digests`.
fn digest(name: &str) -> (u64, String) {
    let text = common::report(&format!("{name}.digests"));
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f[0], "current", "{text}");
    (f[1].parse().unwrap(), f[2].to_string())
}

fn qemu_info(name: &str) -> serde_json::Value {
    serde_json::from_str(&common::report(&format!("{name}.qemu-img-info.json"))).unwrap()
}

#[test]
fn every_virtual_byte_equals_qemu_img_convert() {
    for &(name, format) in IMAGES {
        let img = image::open(&common::fixture(name)).unwrap();
        assert_eq!(img.format, format, "{name}");
        assert!(img.problems.is_empty(), "{name}: {:?}", img.problems);
        let (len, want) = digest(name);
        assert_eq!(img.source.size(), len, "{name}: virtual size");
        assert_eq!(
            qemu_info(name)["virtual-size"].as_u64(),
            Some(len),
            "{name}: qemu-img info's virtual size"
        );
        assert_eq!(sha(&read_all(&*img.source)), want, "{name}: virtual bytes");
    }
}

#[test]
fn info_agrees_with_qemu_img() {
    for &(name, format) in IMAGES {
        let p = common::fixture(name);
        let out = common::vmrescue(&["info", "--output", "json", p.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let q = qemu_info(name);
        assert_eq!(ours["format"], format.name(), "{name}");
        assert_eq!(ours["virtual_size"], q["virtual-size"], "{name}");
        assert_eq!(
            ours.get("cluster_size").cloned().unwrap_or_default(),
            q.get("cluster-size").cloned().unwrap_or_default(),
            "{name}: cluster size"
        );
        assert!(!ours["details"].as_array().unwrap().is_empty(), "{name}");
    }
}

/// `layers --json` of `p`.
fn layers(p: &Path) -> serde_json::Value {
    let out = common::vmrescue(&["layers", "--json", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn layers_equal_the_raw_disks() {
    let raw = layers(&common::fixture("vhd-raw"));
    let want = &raw["disks"][0]["children"];
    assert!(!want.as_array().unwrap().is_empty(), "{raw}");
    for &(name, format) in IMAGES {
        let got = layers(&common::fixture(name));
        let disk = &got["disks"][0];
        assert_eq!(&disk["children"], want, "{name}");
        let desc = disk["description"].as_str().unwrap();
        assert!(desc.starts_with(format.name()), "{name}: {desc}");
    }
}

#[test]
fn copied_files_equal_the_originals() {
    let sums = common::report("vhd-raw.sha256");
    for name in ["vhd-fixed", "vhd-dynamic", "vhdx-dynamic-8m", "vdi-dynamic"] {
        let dir = tempfile::tempdir().unwrap();
        let img = common::fixture(name);
        let out = common::vmrescue(&[
            "cp",
            img.to_str().unwrap(),
            "/srv/data",
            dir.path().to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut n = 0;
        for line in sums.lines().filter(|l| l.contains("srv/data/")) {
            let (sum, path) = line.split_once("  ").unwrap();
            let got = std::fs::read(dir.path().join(path.trim_start_matches("srv/"))).unwrap();
            assert_eq!(sha(&got), sum, "{name}: {path}");
            n += 1;
        }
        assert_eq!(n, 2, "{name}");
    }
}

// ---- differencing chains, built by hand (QEMU cannot create them) ----

/// The VHD checksum: ones' complement of the byte sum, field counted as zero.
fn vhd_checksum(b: &mut [u8], field: usize) {
    b[field..field + 4].fill(0);
    let sum = b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
    b[field..field + 4].copy_from_slice(&(!sum).to_be_bytes());
}

/// A differencing VHD over a parent footer `parent_footer` (its UUID and
/// geometry), naming the parent `locator` (W2ru) and `parent_uuid`; block 0
/// has sectors 8..16 of its own (0xc3), everything else is the parent's.
pub(crate) fn vhd_child(
    parent_footer: &[u8],
    parent_uuid: &[u8],
    locator: &str,
    uuid: u8,
) -> Vec<u8> {
    let size = u64::from_be_bytes(parent_footer[48..56].try_into().unwrap());
    let block = 2u64 << 20;
    let entries = size.div_ceil(block) as usize;
    let mut footer = vec![0u8; 512];
    footer[..8].copy_from_slice(b"conectix");
    footer[8..12].copy_from_slice(&2u32.to_be_bytes());
    footer[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    footer[16..24].copy_from_slice(&512u64.to_be_bytes());
    footer[28..32].copy_from_slice(b"win ");
    footer[36..40].copy_from_slice(b"Wi2k");
    footer[40..48].copy_from_slice(&size.to_be_bytes());
    footer[48..56].copy_from_slice(&size.to_be_bytes());
    footer[56..60].copy_from_slice(&parent_footer[56..60]);
    footer[60..64].copy_from_slice(&4u32.to_be_bytes());
    footer[68..84].fill(uuid);
    vhd_checksum(&mut footer, 64);
    let mut dynh = vec![0u8; 1024];
    dynh[..8].copy_from_slice(b"cxsparse");
    dynh[8..16].fill(0xff);
    dynh[16..24].copy_from_slice(&1536u64.to_be_bytes());
    dynh[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    dynh[28..32].copy_from_slice(&(entries as u32).to_be_bytes());
    dynh[32..36].copy_from_slice(&(block as u32).to_be_bytes());
    dynh[40..56].copy_from_slice(parent_uuid);
    let loc: Vec<u8> = locator.encode_utf16().flat_map(u16::to_le_bytes).collect();
    dynh[576..580].copy_from_slice(b"W2ru");
    dynh[580..584].copy_from_slice(&1u32.to_be_bytes());
    dynh[584..588].copy_from_slice(&(loc.len() as u32).to_be_bytes());
    dynh[592..600].copy_from_slice(&4096u64.to_be_bytes());
    vhd_checksum(&mut dynh, 36);
    let mut f = Vec::new();
    f.extend_from_slice(&footer);
    f.extend_from_slice(&dynh);
    // BAT at 1536: block 0 at sector 10 (byte 5120), the others absent.
    let mut bat = vec![0xffu8; entries * 4];
    bat[..4].copy_from_slice(&10u32.to_be_bytes());
    f.extend_from_slice(&bat);
    f.resize(4096, 0);
    f.extend_from_slice(&loc);
    f.resize(5120, 0);
    // Block 0: its bitmap (sectors 8..16 present), then its data.
    let mut bitmap = vec![0u8; 512];
    bitmap[1] = 0xff;
    f.extend_from_slice(&bitmap);
    let mut data = vec![0u8; block as usize];
    data[4096..8192].fill(0xc3);
    f.extend_from_slice(&data);
    f.extend_from_slice(&footer);
    f
}

fn footer_of(p: &Path) -> Vec<u8> {
    let b = std::fs::read(p).unwrap();
    b[b.len() - 512..].to_vec()
}

#[test]
fn vhd_differencing_reads_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let parent = common::fixture_copy("vhd-dynamic", dir.path());
    let pf = footer_of(&parent);
    let child = dir.path().join("child.vhd");
    std::fs::write(&child, vhd_child(&pf, &pf[68..84], ".\\vhd-dynamic.img", 7)).unwrap();
    let img = image::open(&child).unwrap();
    assert_eq!(img.format, ImageFormat::Vhd);
    assert!(img.problems.is_empty(), "{:?}", img.problems);
    assert!(
        img.details.iter().any(|d| d.contains("differencing")),
        "{:?}",
        img.details
    );
    assert!(
        img.details
            .iter()
            .any(|d| d.starts_with("parent ") && d.contains("vhd-dynamic.img")),
        "{:?}",
        img.details
    );
    let mut want = read_all(&*image::open(&parent).unwrap().source);
    want[4096..8192].fill(0xc3);
    assert_eq!(sha(&read_all(&*img.source)), sha(&want));
    // `layers` sees the parent's partitions through the child.
    let got = layers(&child);
    assert_eq!(
        got["disks"][0]["children"],
        layers(&parent)["disks"][0]["children"]
    );
}

#[test]
fn vhd_differencing_refuses_a_wrong_or_missing_parent_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let parent = common::fixture_copy("vhd-dynamic", dir.path());
    let pf = footer_of(&parent);
    // The parent's UUID does not match.
    let child = dir.path().join("wrong.vhd");
    std::fs::write(&child, vhd_child(&pf, &[9u8; 16], "vhd-dynamic.img", 7)).unwrap();
    let e = image::open(&child).unwrap_err().to_string();
    assert!(e.contains("its ID is") && e.contains("09090909"), "{e}");
    // Nothing where the locator points.
    let child = dir.path().join("orphan.vhd");
    std::fs::write(&child, vhd_child(&pf, &pf[68..84], "C:\\vms\\gone.vhd", 7)).unwrap();
    let e = image::open(&child).unwrap_err().to_string();
    assert!(e.contains("gone.vhd") && e.contains("not found"), "{e}");
    // A child that names itself as its parent.
    let child = dir.path().join("self.vhd");
    std::fs::write(&child, vhd_child(&pf, &[7u8; 16], "self.vhd", 7)).unwrap();
    let e = image::open(&child).unwrap_err().to_string();
    assert!(e.contains("loops"), "{e}");
    // Without a parent (fuzz-style `from_source`), absent sectors are zeros.
    let bytes = vhd_child(&pf, &pf[68..84], "x.vhd", 7);
    let v = Vhd::from_source(Arc::new(bytes), "child").unwrap();
    let mut buf = vec![1u8; 8192];
    v.read_exact_at(0, &mut buf).unwrap();
    assert!(buf[..4096].iter().all(|&b| b == 0));
    assert!(buf[4096..].iter().all(|&b| b == 0xc3));
}

#[test]
fn vdi_differencing_finds_its_parent_by_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let parent = common::fixture_copy("vdi-dynamic", dir.path());
    // A decoy sibling that is no VDI, and one with another UUID.
    std::fs::write(dir.path().join("notes.txt"), b"not an image").unwrap();
    let p = std::fs::read(&parent).unwrap();
    let mut h = p[..0x200].to_vec();
    h[0x4c..0x50].copy_from_slice(&4u32.to_le_bytes());
    let parent_uuid = p[0x188..0x198].to_vec();
    h[0x1a8..0x1b8].copy_from_slice(&parent_uuid);
    h[0x188..0x198].fill(0x42);
    let blocks = u32::from_le_bytes(h[0x180..0x184].try_into().unwrap()) as usize;
    let bs = u32::from_le_bytes(h[0x178..0x17c].try_into().unwrap()) as usize;
    h[0x154..0x158].copy_from_slice(&0x200u32.to_le_bytes());
    let data = (0x200 + blocks * 4).div_ceil(512) * 512;
    h[0x158..0x15c].copy_from_slice(&(data as u32).to_le_bytes());
    h[0x184..0x188].copy_from_slice(&1u32.to_le_bytes());
    let mut f = h.clone();
    let mut map = vec![0xffu8; blocks * 4];
    map[4..8].copy_from_slice(&0u32.to_le_bytes()); // block 1 stored
    map[8..12].copy_from_slice(&0xfffffffeu32.to_le_bytes()); // block 2 zero
    f.extend_from_slice(&map);
    f.resize(data, 0);
    f.extend(std::iter::repeat_n(0x77u8, bs));
    let child = dir.path().join("child.vdi");
    std::fs::write(&child, &f).unwrap();
    let mut other = f.clone();
    other[0x188..0x198].fill(0x43);
    other[0x1a8..0x1b8].fill(0x55);
    std::fs::write(dir.path().join("other.vdi"), &other).unwrap();
    let img = image::open(&child).unwrap();
    assert_eq!(img.format, ImageFormat::Vdi);
    let mut want = read_all(&*image::open(&parent).unwrap().source);
    want[bs..2 * bs].fill(0x77);
    want[2 * bs..3 * bs].fill(0);
    assert_eq!(sha(&read_all(&*img.source)), sha(&want));
    assert!(
        img.details.iter().any(|d| d.contains("vdi-dynamic.img")),
        "{:?}",
        img.details
    );
    // The image whose parent UUID nobody has.
    let e = image::open(&dir.path().join("other.vdi"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("parent of this differencing VDI"), "{e}");
}

// ---- VHDX: differencing and log replay, built from qemu-img's VHDX ----

const KIB: usize = 1024;

/// The region table's (BAT, metadata) (offset, length) of a VHDX file.
fn vhdx_regions(f: &[u8]) -> ((usize, usize), (usize, usize)) {
    let r = &f[192 * KIB..256 * KIB];
    let n = u32::from_le_bytes(r[8..12].try_into().unwrap()) as usize;
    let (mut bat, mut meta) = ((0, 0), (0, 0));
    for i in 0..n {
        let e = &r[16 + 32 * i..48 + 32 * i];
        let off = u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(e[24..28].try_into().unwrap()) as usize;
        if e[..4] == [0x66, 0x77, 0xc2, 0x2d] {
            bat = (off, len);
        } else {
            meta = (off, len);
        }
    }
    (bat, meta)
}

fn crc_fix(b: &mut [u8], field: usize) {
    b[field..field + 4].fill(0);
    let c = crc32c::crc32c(b);
    b[field..field + 4].copy_from_slice(&c.to_le_bytes());
}

/// The current header's position (the higher sequence number).
fn vhdx_current_header(f: &[u8]) -> usize {
    let seq = |at: usize| u64::from_le_bytes(f[at + 8..at + 16].try_into().unwrap());
    if seq(128 * KIB) > seq(64 * KIB) {
        128 * KIB
    } else {
        64 * KIB
    }
}

#[test]
fn vhdx_header_with_a_bad_crc_uses_the_other() {
    let f = std::fs::read(common::fixture("vhdx-dynamic")).unwrap();
    let (len, want) = digest("vhdx-dynamic");
    let cur = vhdx_current_header(&f);
    let mut bad = f.clone();
    bad[cur + 100] ^= 0xff;
    let v = Vhdx::from_source(Arc::new(bad.clone()), "bad").unwrap();
    let problems = v.problems().join("\n");
    assert!(
        problems.contains(&format!("VHDX header at byte {cur}: CRC-32C mismatch")),
        "{problems}"
    );
    assert_eq!(v.size(), len);
    assert_eq!(sha(&read_all(&v)), want);
    // Both headers bad: an error naming them.
    let other = if cur == 64 * KIB { 128 * KIB } else { 64 * KIB };
    bad[other + 100] ^= 0xff;
    let e = Vhdx::from_source(Arc::new(bad), "bad")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("neither header is valid") && e.contains("65536"),
        "{e}"
    );
}

#[test]
fn vhdx_differencing_reads_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let parent = common::fixture_copy("vhdx-dynamic", dir.path());
    let p = std::fs::read(&parent).unwrap();
    let mut f = p.clone();
    let ((bat_off, _), (meta_off, meta_len)) = vhdx_regions(&f);
    // The parent's data write GUID, as text.
    let ph = vhdx_current_header(&p);
    let g = &p[ph + 32..ph + 48];
    let linkage = format!(
        "{{{:08x}-{:04x}-{:04x}-{}-{}}}",
        u32::from_le_bytes(g[0..4].try_into().unwrap()),
        u16::from_le_bytes(g[4..6].try_into().unwrap()),
        u16::from_le_bytes(g[6..8].try_into().unwrap()),
        hex(&g[8..10]),
        hex(&g[10..16])
    );
    // Metadata: set "has parent", add a parent locator item.
    let m = &mut f[meta_off..meta_off + meta_len];
    let count = u16::from_le_bytes(m[10..12].try_into().unwrap()) as usize;
    let mut block_size = 0usize;
    let mut item_end = 0usize;
    for i in 0..count {
        let e = 32 + 32 * i;
        let off = u32::from_le_bytes(m[e + 16..e + 20].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(m[e + 20..e + 24].try_into().unwrap()) as usize;
        item_end = item_end.max(off + len);
        if m[e..e + 4] == [0x37, 0x67, 0xa1, 0xca] {
            block_size = u32::from_le_bytes(m[off..off + 4].try_into().unwrap()) as usize;
            m[off + 4] |= 2;
        }
    }
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let pairs = [
        ("parent_linkage", linkage.as_str()),
        ("relative_path", ".\\vhdx-dynamic.img"),
    ];
    let mut item = vec![0u8; 20 + 12 * pairs.len()];
    // Locator type GUID {B04AEFB7-D19E-4A81-B789-25B8E9445913}.
    item[..16].copy_from_slice(&[
        0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59,
        0x13,
    ]);
    item[18..20].copy_from_slice(&(pairs.len() as u16).to_le_bytes());
    for (i, (k, v)) in pairs.iter().enumerate() {
        let (k, v) = (utf16(k), utf16(v));
        let ko = item.len();
        item.extend_from_slice(&k);
        let vo = item.len();
        item.extend_from_slice(&v);
        let e = 20 + 12 * i;
        item[e..e + 4].copy_from_slice(&(ko as u32).to_le_bytes());
        item[e + 4..e + 8].copy_from_slice(&(vo as u32).to_le_bytes());
        item[e + 8..e + 10].copy_from_slice(&(k.len() as u16).to_le_bytes());
        item[e + 10..e + 12].copy_from_slice(&(v.len() as u16).to_le_bytes());
    }
    let item_off = item_end.div_ceil(4096) * 4096;
    m[item_off..item_off + item.len()].copy_from_slice(&item);
    let e = 32 + 32 * count;
    m[e..e + 4].copy_from_slice(&[0x2d, 0x5f, 0xd3, 0xa8]);
    m[e + 4..e + 16].copy_from_slice(&[
        0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c,
    ]);
    m[e + 16..e + 20].copy_from_slice(&(item_off as u32).to_le_bytes());
    m[e + 20..e + 24].copy_from_slice(&(item.len() as u32).to_le_bytes());
    m[e + 24..e + 28].copy_from_slice(&4u32.to_le_bytes());
    m[10..12].copy_from_slice(&(count as u16 + 1).to_le_bytes());
    // BAT: block 0 partially present (its sector bitmap says sectors 8..16
    // are here, holding 0xc3), block 1 not present (the parent's), the
    // others as they are. The chunk's sector bitmap block is appended.
    let cr = (1usize << 23) * 512 / block_size;
    let entry =
        |i: usize| u64::from_le_bytes(f[bat_off + 8 * i..bat_off + 8 * i + 8].try_into().unwrap());
    let b0 = entry(0) & !0xfffff;
    assert_ne!(b0, 0, "block 0 of the fixture is allocated");
    let set = |f: &mut Vec<u8>, i: usize, v: u64| {
        f[bat_off + 8 * i..bat_off + 8 * i + 8].copy_from_slice(&v.to_le_bytes())
    };
    set(&mut f, 0, b0 | 7);
    set(&mut f, 1, 0);
    let sb = f.len().div_ceil(1 << 20) * (1 << 20);
    f.resize(sb + (1 << 20), 0);
    f[sb + 1] = 0xff;
    set(&mut f, cr, sb as u64 | 6);
    f[b0 as usize + 4096..b0 as usize + 8192].fill(0xc3);
    let child = dir.path().join("child.vhdx");
    std::fs::write(&child, &f).unwrap();
    let img = image::open(&child).unwrap();
    assert!(img.problems.is_empty(), "{:?}", img.problems);
    let mut want = read_all(&*image::open(&parent).unwrap().source);
    want[4096..8192].fill(0xc3);
    assert_eq!(sha(&read_all(&*img.source)), sha(&want));
    assert!(
        img.details.iter().any(|d| d.contains("VHDX differencing")),
        "{:?}",
        img.details
    );
}

/// Write a log entry into a copy of `vhdx-dynamic` by hand (MS-VHDX 2.3):
/// one data descriptor putting 4 KiB of 0xa5 over the first 4 KiB of
/// payload block 0, one zero descriptor over the next 4 KiB; the header
/// gets the log GUID. Returns the file and where block 0 lives.
fn dirty_vhdx() -> (Vec<u8>, u64) {
    let mut f = std::fs::read(common::fixture("vhdx-dynamic")).unwrap();
    let ((bat_off, _), _) = vhdx_regions(&f);
    let b0 = u64::from_le_bytes(f[bat_off..bat_off + 8].try_into().unwrap()) & !0xfffff;
    let h = vhdx_current_header(&f);
    let log_len = u32::from_le_bytes(f[h + 68..h + 72].try_into().unwrap()) as usize;
    let log_off = u64::from_le_bytes(f[h + 72..h + 80].try_into().unwrap()) as usize;
    assert!(log_len >= 3 * 4096);
    let guid = [0x5au8; 16];
    let seq: u64 = 0x1_0000_0007;
    let mut e = vec![0u8; 2 * 4096];
    e[..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&(2 * 4096u32).to_le_bytes());
    e[12..16].copy_from_slice(&0u32.to_le_bytes()); // tail: this entry
    e[16..24].copy_from_slice(&seq.to_le_bytes());
    e[24..28].copy_from_slice(&2u32.to_le_bytes());
    e[32..48].copy_from_slice(&guid);
    e[48..56].copy_from_slice(&(f.len() as u64).to_le_bytes());
    e[56..64].copy_from_slice(&(f.len() as u64).to_le_bytes());
    let sector = vec![0xa5u8; 4096];
    // Data descriptor.
    let d = 64;
    e[d..d + 4].copy_from_slice(b"desc");
    e[d + 4..d + 8].copy_from_slice(&sector[4092..]);
    e[d + 8..d + 16].copy_from_slice(&sector[..8]);
    e[d + 16..d + 24].copy_from_slice(&b0.to_le_bytes());
    e[d + 24..d + 32].copy_from_slice(&seq.to_le_bytes());
    // Zero descriptor.
    let z = 96;
    e[z..z + 4].copy_from_slice(b"zero");
    e[z + 8..z + 16].copy_from_slice(&4096u64.to_le_bytes());
    e[z + 16..z + 24].copy_from_slice(&(b0 + 4096).to_le_bytes());
    e[z + 24..z + 32].copy_from_slice(&seq.to_le_bytes());
    // The data sector.
    let s = 4096;
    e[s..s + 4].copy_from_slice(b"data");
    e[s + 4..s + 8].copy_from_slice(&((seq >> 32) as u32).to_le_bytes());
    e[s + 8..s + 4092].copy_from_slice(&sector[8..4092]);
    e[s + 4092..s + 4096].copy_from_slice(&(seq as u32).to_le_bytes());
    crc_fix(&mut e, 4);
    f[log_off..log_off + e.len()].copy_from_slice(&e);
    f[h + 48..h + 64].copy_from_slice(&guid);
    crc_fix(&mut f[h..h + 4096], 4);
    (f, b0)
}

#[test]
fn dirty_vhdx_log_is_replayed_in_memory() {
    let (f, _) = dirty_vhdx();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dirty.vhdx");
    std::fs::write(&p, &f).unwrap();
    let img = image::open(&p).unwrap();
    assert!(
        img.details
            .iter()
            .any(|d| d == "log replayed in memory: 1 entries"),
        "{:?}",
        img.details
    );
    let mut want = read_all(
        &*image::open(&common::fixture("vhdx-dynamic"))
            .unwrap()
            .source,
    );
    want[..4096].fill(0xa5);
    want[4096..8192].fill(0);
    assert_eq!(sha(&read_all(&*img.source)), sha(&want));
    // The file is not written.
    assert_eq!(std::fs::read(&p).unwrap(), f);
    // A damaged entry (bad CRC): no sequence to replay, an error naming the log.
    let mut bad = f.clone();
    let h = vhdx_current_header(&f);
    let log_off = u64::from_le_bytes(f[h + 72..h + 80].try_into().unwrap()) as usize;
    bad[log_off + 5000] ^= 1;
    let e = Vhdx::from_source(Arc::new(bad), "bad")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("VHDX log at byte") && e.contains("needs log replay"),
        "{e}"
    );
}

// ---- damage ----

#[test]
fn vhd_footer_damage_uses_the_copy() {
    let f = std::fs::read(common::fixture("vhd-dynamic")).unwrap();
    let (len, want) = digest("vhd-dynamic");
    let end = f.len() - 512;
    // A bad checksum at the end: the copy at byte 0 is used.
    let mut bad = f.clone();
    bad[end + 40] ^= 0x10;
    let v = Vhd::from_source(Arc::new(bad), "v").unwrap();
    let p = v.problems().join("\n");
    assert!(
        p.contains(&format!(
            "VHD footer at byte {end}: checksum mismatch; the copy at byte 0 is used"
        )),
        "{p}"
    );
    assert_eq!(sha(&read_all(&v)), want);
    // No footer at the end at all (the file cut short by a sector).
    let cut = f[..end].to_vec();
    let v = Vhd::from_source(Arc::new(cut), "v").unwrap();
    assert!(
        v.problems()
            .join("\n")
            .contains("the copy at byte 0 is used")
    );
    assert_eq!(v.size(), len);
}

#[test]
fn damaged_images_give_errors_with_positions() {
    // VHD: a BAT past the file's end, a huge block size, a short file.
    let f = std::fs::read(common::fixture("vhd-dynamic")).unwrap();
    let dyn_at = u64::from_be_bytes(f[16..24].try_into().unwrap()) as usize;
    let mut bad = f.clone();
    bad[dyn_at + 16..dyn_at + 24].copy_from_slice(&(1u64 << 40).to_be_bytes());
    let e = Vhd::from_source(Arc::new(bad), "v")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("VHD block allocation table at byte 1099511627776"),
        "{e}"
    );
    let mut bad = f.clone();
    bad[dyn_at + 32..dyn_at + 36].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = Vhd::from_source(Arc::new(bad), "v")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("at byte {}", dyn_at + 32)) && e.contains("block size"),
        "{e}"
    );
    // Truncated dynamic VHD: blocks past the end fail to read, naming positions.
    let mut cut = f[..f.len() / 2].to_vec();
    cut.extend_from_slice(&f[f.len() - 512..]);
    let v = Vhd::from_source(Arc::new(cut), "v").unwrap();
    let mut buf = vec![0u8; v.size() as usize];
    let e = v.read_exact_at(0, &mut buf).unwrap_err().to_string();
    assert!(
        e.contains("past the file's end") || e.contains("byte"),
        "{e}"
    );
    // A fixed VHD cut short: a problem, reads past the data fail.
    let f = std::fs::read(common::fixture("vhd-fixed")).unwrap();
    let mut cut = f[..1 << 20].to_vec();
    cut.extend_from_slice(&f[f.len() - 512..]);
    let v = Vhd::from_source(Arc::new(cut), "v").unwrap();
    assert!(
        v.problems().join("").contains("cut short"),
        "{:?}",
        v.problems()
    );
    let mut buf = vec![0u8; 4096];
    assert!(v.read_exact_at(2 << 20, &mut buf).is_err());
    // VHDX: a huge virtual size is refused with the item's position.
    let f = std::fs::read(common::fixture("vhdx-dynamic")).unwrap();
    let (_, (meta_off, _)) = vhdx_regions(&f);
    let count = u16::from_le_bytes(f[meta_off + 10..meta_off + 12].try_into().unwrap()) as usize;
    let mut bad = f.clone();
    for i in 0..count {
        let e = meta_off + 32 + 32 * i;
        if f[e..e + 4] == [0x24, 0x42, 0xa5, 0x2f] {
            let off = meta_off + u32::from_le_bytes(f[e + 16..e + 20].try_into().unwrap()) as usize;
            bad[off..off + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        }
    }
    let e = Vhdx::from_source(Arc::new(bad), "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("VHDX virtual disk size at byte"), "{e}");
    // VDI: block map past the end, too many blocks.
    let f = std::fs::read(common::fixture("vdi-dynamic")).unwrap();
    let mut bad = f.clone();
    bad[0x180..0x184].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = Vdi::from_source(Arc::new(bad), "d")
        .unwrap_err()
        .to_string();
    assert!(e.contains("VDI header at byte 384"), "{e}");
    let mut bad = f.clone();
    bad[0x154..0x158].copy_from_slice(&u32::MAX.to_le_bytes());
    let v = Vdi::from_source(Arc::new(bad), "d").unwrap();
    assert!(
        v.problems()
            .join("")
            .contains("VDI block map at byte 4294967295")
    );
}

/// Flip bytes all over each image's metadata: opening and reading (the
/// first 4 MiB) returns errors or problems, never panics (nor hangs).
#[test]
fn damage_anywhere_in_the_metadata_never_panics() {
    for &(name, _) in IMAGES {
        let f = std::fs::read(common::fixture(name)).unwrap();
        let spots: Vec<usize> = (0..32)
            .map(|i| match name {
                n if n.starts_with("vhdx") => 64 * KIB + i * 9973 % (2 << 20),
                n if n.starts_with("vdi") => i * 37 % 0x400,
                _ => {
                    if i % 2 == 0 {
                        i * 29 % 2048
                    } else {
                        f.len() - 512 + i * 7 % 512
                    }
                }
            })
            .collect();
        for (k, &at) in spots.iter().enumerate() {
            let mut bad = f.clone();
            if at >= bad.len() {
                continue;
            }
            bad[at] ^= 0x5a ^ k as u8;
            let src: Arc<dyn ReadAt> = Arc::new(bad);
            let opened: Option<Box<dyn ReadAt>> = match name {
                n if n.starts_with("vhdx") => {
                    Vhdx::from_source(src, "x").ok().map(|v| Box::new(v) as _)
                }
                n if n.starts_with("vdi") => {
                    Vdi::from_source(src, "x").ok().map(|v| Box::new(v) as _)
                }
                _ => Vhd::from_source(src, "x").ok().map(|v| Box::new(v) as _),
            };
            if let Some(v) = opened {
                let mut buf = vec![0u8; 1 << 20];
                let mut pos = 0;
                while pos < v.size().min(4 << 20) {
                    let n = (v.size() - pos).min(buf.len() as u64) as usize;
                    let _ = v.read_exact_at(pos, &mut buf[..n]);
                    pos += n as u64;
                }
            }
        }
    }
}

// ---- refresh: the tables are read again after the file changed ----

/// A VMDK, VHD, VHDX and VDI image opened, then written by qemu-io (a
/// grain or block allocated that was absent): after `refresh` the new
/// bytes read (the grain tables and block maps are read again); before,
/// the image reads as it did when opened, never a mix that fails.
#[test]
fn refresh_reads_what_was_written_since_opening() {
    let dir = tempfile::tempdir().unwrap();
    for (format, shown) in [
        ("vmdk", ImageFormat::Vmdk),
        ("vpc", ImageFormat::Vhd),
        ("vhdx", ImageFormat::Vhdx),
        ("vdi", ImageFormat::Vdi),
    ] {
        let path = dir.path().join(format!("grow.{format}"));
        let tool = |args: &[&str]| {
            let out = std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let p = path.to_str().unwrap();
        tool(&["qemu-img", "create", "-q", "-f", format, p, "16M"]);
        tool(&["qemu-io", "-f", format, "-c", "write -P 0x11 0 64k", p]);
        let img = image::open(&path).unwrap();
        assert_eq!(img.format, shown);
        let at = 5u64 << 20;
        let mut buf = vec![0xeeu8; 65536];
        img.source.read_exact_at(at, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "{format}: not allocated yet");
        tool(&["qemu-io", "-f", format, "-c", "write -P 0x5a 5M 64k", p]);
        img.source.refresh().unwrap();
        img.source.read_exact_at(at, &mut buf).unwrap();
        assert!(
            buf.iter().all(|&b| b == 0x5a),
            "{format}: the block written since opening reads after refresh"
        );
        img.source.read_exact_at(0, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0x11), "{format}: the first write");
        // A refresh of a file that became damaged keeps the old reader.
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        assert!(img.source.refresh().is_err(), "{format}: damaged now");
        std::fs::write(&path, &good).unwrap();
    }
}

// ---- VHDX log: several entries, and one wrapping round the buffer ----

/// What one log entry writes: 4 KiB of `Some(byte)` or zeros (`None`) at a
/// file offset.
type LogWrite = (u64, Option<u8>);

/// A log entry (MS-VHDX 2.3.1) with log GUID `guid`, sequence number
/// `seq`, tail `tail` (the byte in the log where the active sequence
/// begins) and one descriptor per write, CRC-32C set.
fn log_entry(guid: &[u8; 16], seq: u64, tail: u32, file_len: u64, writes: &[LogWrite]) -> Vec<u8> {
    let data: Vec<&LogWrite> = writes.iter().filter(|w| w.1.is_some()).collect();
    let desc_area = (64 + 32 * writes.len()).div_ceil(4096) * 4096;
    let len = desc_area + 4096 * data.len();
    let mut e = vec![0u8; len];
    e[..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    e[12..16].copy_from_slice(&tail.to_le_bytes());
    e[16..24].copy_from_slice(&seq.to_le_bytes());
    e[24..28].copy_from_slice(&(writes.len() as u32).to_le_bytes());
    e[32..48].copy_from_slice(guid);
    e[48..56].copy_from_slice(&file_len.to_le_bytes());
    e[56..64].copy_from_slice(&file_len.to_le_bytes());
    let mut s = desc_area;
    for (i, &(at, fill)) in writes.iter().enumerate() {
        let d = 64 + 32 * i;
        match fill {
            Some(b) => {
                e[d..d + 4].copy_from_slice(b"desc");
                e[d + 4..d + 8].fill(b);
                e[d + 8..d + 16].fill(b);
                e[s..s + 4].copy_from_slice(b"data");
                e[s + 4..s + 8].copy_from_slice(&((seq >> 32) as u32).to_le_bytes());
                e[s + 8..s + 4092].fill(b);
                e[s + 4092..s + 4096].copy_from_slice(&(seq as u32).to_le_bytes());
                s += 4096;
            }
            None => {
                e[d..d + 4].copy_from_slice(b"zero");
                e[d + 8..d + 16].copy_from_slice(&4096u64.to_le_bytes());
            }
        }
        e[d + 16..d + 24].copy_from_slice(&at.to_le_bytes());
        e[d + 24..d + 32].copy_from_slice(&seq.to_le_bytes());
    }
    crc_fix(&mut e, 4);
    e
}

/// A copy of `vhdx-dynamic` whose log holds `entries` (log byte, entry
/// bytes; an entry running past the log's end continues at its start)
/// and whose current header names the log GUID. Returns the file, the
/// log's length and where payload block 0 lives.
fn vhdx_with_log(guid: &[u8; 16], entries: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut f = std::fs::read(common::fixture("vhdx-dynamic")).unwrap();
    let h = vhdx_current_header(&f);
    let log_len = u32::from_le_bytes(f[h + 68..h + 72].try_into().unwrap()) as usize;
    let log_off = u64::from_le_bytes(f[h + 72..h + 80].try_into().unwrap()) as usize;
    for (at, e) in entries {
        for (i, &b) in e.iter().enumerate() {
            f[log_off + (at + i) % log_len] = b;
        }
    }
    f[h + 48..h + 64].copy_from_slice(guid);
    crc_fix(&mut f[h..h + 4096], 4);
    f
}

/// The log's length and payload block 0's file offset in `vhdx-dynamic`.
fn vhdx_log_facts() -> (usize, u64, u64) {
    let f = std::fs::read(common::fixture("vhdx-dynamic")).unwrap();
    let ((bat_off, _), _) = vhdx_regions(&f);
    let b0 = u64::from_le_bytes(f[bat_off..bat_off + 8].try_into().unwrap()) & !0xfffff;
    let h = vhdx_current_header(&f);
    let log_len = u32::from_le_bytes(f[h + 68..h + 72].try_into().unwrap()) as usize;
    (log_len, b0, f.len() as u64)
}

/// What `vhdx-dynamic` reads with the first 16 KiB of block 0 (virtual
/// bytes 0..16 KiB) as given.
fn vhdx_expected(first: &[Option<u8>; 4]) -> String {
    let mut want = read_all(
        &*image::open(&common::fixture("vhdx-dynamic"))
            .unwrap()
            .source,
    );
    for (i, b) in first.iter().enumerate() {
        if let Some(b) = b {
            want[i * 4096..(i + 1) * 4096].fill(*b);
        }
    }
    sha(&want)
}

/// Three entries with consecutive sequence numbers, the later ones
/// writing over the earlier ones' sectors, after a stale entry of an
/// older sequence: replayed in sequence order (the last write wins), the
/// stale entry ignored.
#[test]
fn vhdx_log_with_several_entries_replays_them_in_order() {
    let (_, b0, flen) = vhdx_log_facts();
    let guid = [0x61u8; 16];
    let seq = 0x2_0000_0010u64;
    let tail = 8192u32;
    let entries = vec![
        // Stale: an older sequence, before the active one's tail.
        (
            0,
            log_entry(&guid, seq - 5, 0, flen, &[(b0 + 8192, Some(0xee))]),
        ),
        (
            8192,
            log_entry(
                &guid,
                seq,
                tail,
                flen,
                &[(b0, Some(0xa1)), (b0 + 4096, Some(0xa2))],
            ),
        ),
        (
            8192 + 3 * 4096,
            log_entry(
                &guid,
                seq + 1,
                tail,
                flen,
                &[(b0 + 4096, Some(0xb2)), (b0, None)],
            ),
        ),
        (
            8192 + 3 * 4096 + 2 * 4096,
            log_entry(&guid, seq + 2, tail, flen, &[(b0 + 12288, Some(0xc4))]),
        ),
    ];
    let f = vhdx_with_log(&guid, &entries);
    let v = Vhdx::from_source(Arc::new(f), "multi").unwrap();
    assert_eq!(v.log_replayed(), Some(3));
    let want = vhdx_expected(&[Some(0), Some(0xb2), None, Some(0xc4)]);
    assert_eq!(sha(&read_all(&v)), want);
}

/// An active sequence that runs past the end of the circular log and
/// continues at its start (one entry split across the end), with a stale
/// entry of an older sequence elsewhere: replayed whole, in order. With
/// the split entry damaged, only the entry before it is replayed (the
/// head after the damage no longer follows a complete sequence).
#[test]
fn vhdx_log_that_wraps_round_the_buffer_is_replayed() {
    let (log_len, b0, flen) = vhdx_log_facts();
    let guid = [0x62u8; 16];
    let seq = 0x3_0000_0100u64;
    // The first entry (two sectors) ends 4 KiB before the log's end; the
    // second (two sectors) starts there and ends in the log's first
    // sector; the third (three sectors) follows at byte 4096.
    let first = log_len - 12288;
    let tail = first as u32;
    let entries = vec![
        (
            65536,
            log_entry(&guid, seq - 40, 65536, flen, &[(b0, Some(0xee))]),
        ),
        (
            first,
            log_entry(&guid, seq, tail, flen, &[(b0, Some(0x11))]),
        ),
        (
            log_len - 4096,
            log_entry(&guid, seq + 1, tail, flen, &[(b0 + 4096, Some(0x22))]),
        ),
        (
            4096,
            log_entry(
                &guid,
                seq + 2,
                tail,
                flen,
                &[(b0, Some(0x33)), (b0 + 8192, Some(0x44))],
            ),
        ),
    ];
    // The wrapping entry really is split: 4 KiB before the end, 4 KiB after.
    assert_eq!(entries[2].1.len(), 8192);
    let f = vhdx_with_log(&guid, &entries);
    let v = Vhdx::from_source(Arc::new(f.clone()), "wrapped").unwrap();
    assert_eq!(v.log_replayed(), Some(3));
    let want = vhdx_expected(&[Some(0x33), Some(0x22), Some(0x44), None]);
    assert_eq!(sha(&read_all(&v)), want);
    // The split entry's second half damaged (its CRC fails).
    let mut bad = f;
    let h = vhdx_current_header(&bad);
    let log_off = u64::from_le_bytes(bad[h + 72..h + 80].try_into().unwrap()) as usize;
    bad[log_off + 100] ^= 1;
    let v = Vhdx::from_source(Arc::new(bad), "broken").unwrap();
    assert_eq!(v.log_replayed(), Some(1));
    assert_eq!(
        sha(&read_all(&v)),
        vhdx_expected(&[Some(0x11), None, None, None])
    );
}
