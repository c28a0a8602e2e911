//! Synthetic PVs built byte by byte from the on-disk format, for the cases
//! the real fixtures cannot show cheaply (labels in other sectors, metadata
//! areas disagreeing, hostile lists).

use super::*;
use crate::io::{DiskId, Target};

const UUID_A: &str = "AAAAAAbbbbccccddddeeeeffffGGGGGG";
const UUID_B: &str = "BBBBBBbbbbccccddddeeeeffffGGGGGG";

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Write a label in `sector` listing one data area at `data` and `mdas`.
fn write_label(
    b: &mut [u8],
    sector: usize,
    uuid: &str,
    dev_size: u64,
    data: u64,
    mdas: &[(u64, u64)],
) {
    let s = sector * 512;
    b[s..s + 512].fill(0);
    b[s..s + 8].copy_from_slice(b"LABELONE");
    put_u64(b, s + 8, sector as u64);
    put_u32(b, s + 20, 32);
    b[s + 24..s + 32].copy_from_slice(b"LVM2 001");
    b[s + 32..s + 64].copy_from_slice(uuid.as_bytes());
    put_u64(b, s + 64, dev_size);
    let mut p = s + 72;
    put_u64(b, p, data);
    p += 32; // the data area, then its terminator
    for &(o, z) in mdas {
        put_u64(b, p, o);
        put_u64(b, p + 8, z);
        p += 16;
    }
    p += 16; // terminator
    put_u32(b, p, 2); // pv_header_extension version 2
    put_u32(b, p + 4, 1); // PV_EXT_USED
    fix_label_crc(b, sector);
}

fn fix_label_crc(b: &mut [u8], sector: usize) {
    let s = sector * 512;
    let crc = calc_crc(INITIAL_CRC, &b[s + 20..s + 512]);
    put_u32(b, s + 16, crc);
}

/// Write a metadata area at `at` of `size` bytes whose committed text is
/// `text` (a NUL is appended) at `text_off` from the area's start, wrapping.
fn write_mda(b: &mut [u8], at: usize, size: usize, text: &str, text_off: usize) {
    let mut t = text.as_bytes().to_vec();
    t.push(0);
    let h = &mut b[at..at + 512];
    h.fill(0);
    h[4..20].copy_from_slice(FMTT_MAGIC);
    put_u32(h, 20, 1);
    put_u64(h, 24, at as u64);
    put_u64(h, 32, size as u64);
    put_u64(h, 40, text_off as u64);
    put_u64(h, 48, t.len() as u64);
    put_u32(h, 56, calc_crc(INITIAL_CRC, &t));
    fix_mda_crc(b, at);
    let first = t.len().min(size - text_off);
    b[at + text_off..at + text_off + first].copy_from_slice(&t[..first]);
    let rest = &t[first..];
    b[at + 512..at + 512 + rest.len()].copy_from_slice(rest);
}

fn fix_mda_crc(b: &mut [u8], at: usize) {
    let crc = calc_crc(INITIAL_CRC, &b[at + 4..at + 512]);
    put_u32(b, at, crc);
}

/// VG metadata text: `pvs` are (key, uuid, pe_count), `lvs` raw LV sections.
fn vg_text(seqno: u64, pvs: &[(&str, &str, u64)], lvs: &str) -> String {
    let mut s = format!(
        "vg1 {{\nid = \"VGVGVG-vgvg-vgvg-vgvg-vgvg-vgvg-VGVGVG\"\nseqno = {seqno}\nformat = \"lvm2\"\n\
         status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\nflags = []\nextent_size = 8\nmax_lv = 0\nmax_pv = 0\n\
         physical_volumes {{\n"
    );
    for (key, uuid, pe_count) in pvs {
        s.push_str(&format!(
            "{key} {{\nid = \"{}\"\ndevice = \"/dev/vd{key}\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\n\
             dev_size = 2048\npe_start = 16\npe_count = {pe_count}\n}}\n",
            crate::layers::probe::lvm_uuid(uuid.as_bytes())
        ));
    }
    s.push_str("}\nlogical_volumes {\n");
    s.push_str(lvs);
    s.push_str("}\n}\ncontents = \"Text Format Volume Group\"\nversion = 1\ncreation_host = \"h\"\ncreation_time = 5\n");
    s
}

fn linear_lv(name: &str, segs: &[(u64, u64, &str, u64)]) -> String {
    let mut s = format!(
        "{name} {{\nid = \"LVLVLV-lvlv-lvlv-lvlv-lvlv-lvlv-LVLVLV\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
         flags = []\ncreation_time = 1700000000\ncreation_host = \"builder\"\nsegment_count = {}\n",
        segs.len()
    );
    for (i, (start, count, pv, pe)) in segs.iter().enumerate() {
        s.push_str(&format!(
            "segment{} {{\nstart_extent = {start}\nextent_count = {count}\ntype = \"striped\"\n\
             stripe_count = 1\nstripes = [\n\"{pv}\", {pe}\n]\n}}\n",
            i + 1
        ));
    }
    s.push_str("}\n");
    s
}

/// A 1 MiB PV: label in sector 1, mda 0 at byte 4096 (12 KiB), optionally
/// mda 1 at byte 16384 (12 KiB). Only the metadata matters here, so the data
/// area (`pe_start` 16 sectors) is allowed to overlap the metadata areas.
fn pv(uuid: &str, mda0: Option<&str>, mda1: Option<&str>) -> Vec<u8> {
    let mut b = vec![0u8; 1 << 20];
    let mut mdas = vec![(4096u64, 12288u64)];
    if mda1.is_some() {
        mdas.push((16384, 12288));
    }
    write_label(&mut b, 1, uuid, 1 << 20, 8192, &mdas);
    if let Some(t) = mda0 {
        write_mda(&mut b, 4096, 12288, t, 512);
    } else {
        write_mda(&mut b, 4096, 12288, "", 512);
        // An orphan: raw_locn[0] empty.
        b[4096 + 40..4096 + 64].fill(0);
        fix_mda_crc(&mut b, 4096);
    }
    if let Some(t) = mda1 {
        write_mda(&mut b, 16384, 12288, t, 512);
    }
    b
}

fn scan(b: &[u8]) -> PvScan {
    read_pv(&b.to_vec()).unwrap().unwrap()
}

fn simple_text(seqno: u64) -> String {
    vg_text(
        seqno,
        &[("pv0", UUID_A, 100)],
        &linear_lv("root", &[(0, 10, "pv0", 0)]),
    )
}

#[test]
fn reads_label_and_metadata() {
    let b = pv(UUID_A, Some(&simple_text(3)), None);
    let s = scan(&b);
    assert_eq!(s.label_sector, 1);
    assert_eq!(s.pv_uuid, "AAAAAA-bbbb-cccc-dddd-eeee-ffff-GGGGGG");
    assert_eq!(s.device_size, 1 << 20);
    assert_eq!(s.seqno, Some(3));
    assert_eq!(s.vg_name.as_deref(), Some("vg1"));
    assert_eq!(s.data_offset, Some(8192));
    assert_eq!(s.metadata_areas, vec![(4096, 12288)]);
    assert_eq!(s.in_use, Some(true));
    assert!(s.metadata.as_deref().unwrap().starts_with("vg1 {"));
    assert!(
        s.metadata_origin
            .as_deref()
            .unwrap()
            .starts_with("mda 0 at byte 4096")
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
}

#[test]
fn label_in_any_of_the_first_four_sectors() {
    for sector in 0..4 {
        let mut b = pv(UUID_A, Some(&simple_text(1)), None);
        b[512..1024].fill(0);
        write_label(&mut b, sector, UUID_A, 1 << 20, 8192, &[(4096, 12288)]);
        assert_eq!(scan(&b).label_sector, sector as u64);
    }
    let mut b = pv(UUID_A, Some(&simple_text(1)), None);
    b[512..1024].fill(0);
    write_label(&mut b, 4, UUID_A, 1 << 20, 8192, &[(4096, 12288)]);
    assert!(read_pv(&b).unwrap().is_none(), "sector 4 is not scanned");
}

#[test]
fn damaged_labels_are_errors() {
    let good = pv(UUID_A, Some(&simple_text(1)), None);
    // Bad CRC.
    let mut b = good.clone();
    b[512 + 100] ^= 1;
    let e = read_pv(&b).unwrap_err().to_string();
    assert!(
        e.contains("label_header at byte 528") && e.contains("crc_xl"),
        "{e}"
    );
    // Wrong sector number.
    let mut b = good.clone();
    put_u64(&mut b, 512 + 8, 2);
    fix_label_crc(&mut b, 1);
    assert!(read_pv(&b).unwrap_err().to_string().contains("sector_xl"));
    // Wrong type.
    let mut b = good.clone();
    b[512 + 24..512 + 32].copy_from_slice(b"LVM1 001");
    fix_label_crc(&mut b, 1);
    assert!(read_pv(&b).unwrap_err().to_string().contains("type"));
    // offset_xl pointing out of the sector.
    let mut b = good.clone();
    put_u32(&mut b, 512 + 20, 500);
    fix_label_crc(&mut b, 1);
    assert!(read_pv(&b).unwrap_err().to_string().contains("offset_xl"));
    // A metadata area list without terminator.
    let mut b = good.clone();
    for p in (512 + 104..1024 - 15).step_by(16) {
        put_u64(&mut b, p, 4096);
        put_u64(&mut b, p + 8, 12288);
    }
    fix_label_crc(&mut b, 1);
    assert!(
        read_pv(&b)
            .unwrap_err()
            .to_string()
            .contains("runs past the end")
    );
    // Bad UUID characters.
    let mut b = good.clone();
    b[512 + 32] = b'\n';
    fix_label_crc(&mut b, 1);
    assert!(read_pv(&b).unwrap_err().to_string().contains("pv_uuid"));
    // A label cut short.
    assert!(read_pv(&good[..700].to_vec()).is_err());
    // No label at all.
    assert!(read_pv(&vec![0u8; 4096]).unwrap().is_none());
    assert!(read_pv(&Vec::new()).unwrap().is_none());
}

#[test]
fn a_damaged_label_beside_a_good_one_is_reported() {
    let mut b = pv(UUID_A, Some(&simple_text(1)), None);
    b[0..8].copy_from_slice(b"LABELONE"); // sector 0: a stray, invalid label
    let s = scan(&b);
    assert_eq!(s.label_sector, 1);
    assert!(
        s.problems[0]
            .to_string()
            .contains("ignored a damaged label"),
        "{:?}",
        s.problems
    );
}

#[test]
fn wrapped_metadata_is_reassembled() {
    let text = simple_text(9);
    let mut b = pv(UUID_A, None, None);
    // Start 100 bytes before the end of the 12 KiB area.
    write_mda(&mut b, 4096, 12288, &text, 12288 - 100);
    let s = scan(&b);
    assert_eq!(s.metadata.as_deref(), Some(text.as_str()));
    assert!(s.metadata_origin.unwrap().contains("wrapping"));
    // A wrap that would overlap the text's own start is refused.
    let mut b = pv(UUID_A, None, None);
    let big = format!("{text}{}", "#".repeat(12288 - 512 - text.len() - 10));
    write_mda(&mut b, 4096, 12288, &big, 600);
    put_u64(&mut b, 4096 + 40, 600);
    fix_mda_crc(&mut b, 4096);
    let s = scan(&b);
    assert!(s.metadata.is_some());
    put_u64(&mut b, 4096 + 48, 12288 - 512 + 1);
    fix_mda_crc(&mut b, 4096);
    let s = scan(&b);
    assert!(s.metadata.is_none());
    assert!(
        s.problems[0]
            .to_string()
            .contains("larger than the text area"),
        "{:?}",
        s.problems
    );
}

#[test]
fn falls_back_to_the_other_metadata_area() {
    let text = simple_text(4);
    let good = pv(UUID_A, Some(&text), Some(&text));
    assert!(scan(&good).problems.is_empty());
    type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "checksum_xl",
            Box::new(|b: &mut Vec<u8>| b[4096 + 30] ^= 0x40),
        ),
        (
            "bad magic",
            Box::new(|b: &mut Vec<u8>| {
                b[4096 + 5] = b'X';
                fix_mda_crc(b, 4096);
            }),
        ),
        (
            "version",
            Box::new(|b: &mut Vec<u8>| {
                put_u32(b, 4096 + 20, 2);
                fix_mda_crc(b, 4096);
            }),
        ),
        (
            "start is",
            Box::new(|b: &mut Vec<u8>| {
                put_u64(b, 4096 + 24, 0);
                fix_mda_crc(b, 4096);
            }),
        ),
        (
            "metadata text at byte 4608: checksum",
            Box::new(|b: &mut Vec<u8>| b[4096 + 520] ^= 1),
        ),
        (
            "cannot be parsed",
            Box::new(|b: &mut Vec<u8>| {
                // Valid checksum, broken grammar.
                let t = text.replacen('{', "=", 1);
                write_mda(b, 4096, 12288, &t, 512);
            }),
        ),
        (
            "not valid VG metadata",
            Box::new(|b: &mut Vec<u8>| {
                let t = text.replacen("seqno", "sequence", 1);
                write_mda(b, 4096, 12288, &t, 512);
            }),
        ),
    ];
    for (what, damage) in cases {
        let mut b = good.clone();
        damage(&mut b);
        let s = scan(&b);
        assert_eq!(s.metadata.as_deref(), Some(text.as_str()), "{what}");
        assert!(
            s.metadata_origin
                .as_deref()
                .unwrap()
                .starts_with("mda 1 at byte 16384")
        );
        assert_eq!(s.problems.len(), 1, "{what}: {:?}", s.problems);
        let p = &s.problems[0].to_string();
        assert!(
            p.starts_with("mda 0 at byte 4096 is unusable")
                && p.contains(what)
                && p.ends_with("using mda 1 at byte 16384"),
            "{what}: {p}"
        );
    }
    // Both areas bad: no metadata, and the PV says why.
    let mut b = good.clone();
    b[4096 + 30] ^= 1;
    b[16384 + 30] ^= 1;
    let s = scan(&b);
    assert!(s.metadata.is_none());
    assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
    assert!(s.problems[2].to_string().contains("no metadata area"));
}

#[test]
fn the_newest_area_wins() {
    let b = pv(UUID_A, Some(&simple_text(4)), Some(&simple_text(5)));
    let s = scan(&b);
    assert_eq!(s.seqno, Some(5));
    assert!(s.metadata_origin.unwrap().starts_with("mda 1"));
    assert!(
        s.problems[0]
            .to_string()
            .contains("older metadata (seqno 4)"),
        "{:?}",
        s.problems
    );
}

#[test]
fn ignored_and_empty_areas() {
    let mut b = pv(UUID_A, Some(&simple_text(4)), None);
    put_u32(&mut b, 4096 + 60, 1); // RAW_LOCN_IGNORED
    fix_mda_crc(&mut b, 4096);
    let s = scan(&b);
    assert!(s.metadata.is_none() && s.problems.is_empty());
    let s = scan(&pv(UUID_A, None, None));
    assert!(s.metadata.is_none() && s.problems.is_empty() && s.vg_name.is_none());
}

#[test]
fn truncated_pv_is_reported() {
    let b = pv(UUID_A, Some(&simple_text(4)), None);
    let s = scan(&b[..20000]);
    assert!(
        s.problems[0].to_string().contains("truncated"),
        "{:?}",
        s.problems
    );
    assert!(s.metadata.is_some());
    // Cut inside the metadata text: the area is unusable.
    let s = scan(&b[..4700]);
    assert!(s.metadata.is_none());
    assert!(
        s.problems
            .iter()
            .any(|p| p.to_string().contains("mda 0 at byte 4096 is unusable"))
    );
}

fn on_disk(disk: usize, offset: u64, bytes: &[u8], volume: &str) -> PvOnDisk {
    PvOnDisk {
        volume: volume.into(),
        area: Area {
            disk: DiskId(disk),
            offset,
        },
        size: bytes.len() as u64,
        scan: scan(bytes),
    }
}

#[test]
fn assembles_across_disks_with_exact_offsets() {
    let striped = "data {\nid = \"DDDDDD-dddd-dddd-dddd-dddd-dddd-DDDDDD\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
        segment_count = 2\n\
        segment2 {\nstart_extent = 6\nextent_count = 2\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv1\", 9]\n}\n\
        segment1 {\nstart_extent = 0\nextent_count = 6\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 2\n\
        stripes = [\"pv1\", 3, \"pv0\", 5]\n}\n}\n";
    let lvs = format!(
        "{}{striped}",
        linear_lv("root", &[(0, 2, "pv0", 0), (2, 1, "pv1", 0)])
    );
    let text = vg_text(7, &[("pv0", UUID_A, 100), ("pv1", UUID_B, 100)], &lvs);
    let a = pv(UUID_A, Some(&text), None);
    let b = pv(
        UUID_B,
        Some(&vg_text(
            6,
            &[("pv0", UUID_A, 100), ("pv1", UUID_B, 100)],
            "",
        )),
        None,
    );
    let pvs = vec![on_disk(0, 1 << 20, &a, "p2"), on_disk(1, 0, &b, "disk1")];
    let vgs = assemble(&pvs);
    assert_eq!(vgs.len(), 1);
    let g = &vgs[0];
    assert_eq!((g.name.as_str(), g.seqno, g.extent_size), ("vg1", 7, 4096));
    assert_eq!(g.pvs[0].found, Some(0));
    assert_eq!(g.pvs[1].found, Some(1));
    assert_eq!(g.pvs[0].pe_start, 8192);
    assert_eq!(g.extent_count, 200);
    assert_eq!(g.free_count, 200 - 3 - 8);
    assert_eq!(g.problems.len(), 1, "{:?}", g.problems);
    assert!(
        g.problems[0]
            .to_string()
            .contains("PV disk1 holds older metadata (seqno 6)")
    );
    let root = &g.lvs[0];
    assert_eq!(root.size, 3 * 4096);
    assert_eq!(root.creation_time, Some(1_700_000_000));
    assert_eq!(root.creation_host.as_deref(), Some("builder"));
    let segs = root.mapping.segments();
    // pv0 is at byte 1 MiB of disk 0; pe_start 8192; extent 4096.
    assert_eq!(
        segs[0].target,
        Target::Linear(Area {
            disk: DiskId(0),
            offset: (1 << 20) + 8192
        })
    );
    assert_eq!(
        segs[1].target,
        Target::Linear(Area {
            disk: DiskId(1),
            offset: 8192
        })
    );
    assert_eq!(segs[1].start, 8192);
    let data = &g.lvs[1];
    assert_eq!(data.segments[0].segtype, "striped");
    assert_eq!(data.segments[0].stripe_size, Some(1024));
    assert_eq!(data.segments[1].segtype, "linear");
    assert_eq!(
        data.segments[0].areas,
        vec![
            SegmentArea::Pv {
                key: "pv1".into(),
                start_extent: 3
            },
            SegmentArea::Pv {
                key: "pv0".into(),
                start_extent: 5
            }
        ]
    );
    let segs = data.mapping.segments();
    assert_eq!(
        segs[0].target,
        Target::Striped {
            chunk_size: 1024,
            stripes: vec![
                Area {
                    disk: DiskId(1),
                    offset: 8192 + 3 * 4096
                },
                Area {
                    disk: DiskId(0),
                    offset: (1 << 20) + 8192 + 5 * 4096
                },
            ]
        }
    );
    assert_eq!((segs[1].start, segs[1].len), (6 * 4096, 2 * 4096));
    assert_eq!(
        segs[1].target,
        Target::Linear(Area {
            disk: DiskId(1),
            offset: 8192 + 9 * 4096
        })
    );
}

#[test]
fn missing_pvs_make_lvs_incomplete() {
    let lvs = format!(
        "{}{}",
        linear_lv("root", &[(0, 2, "pv0", 0), (2, 1, "pv1", 0)]),
        linear_lv("home", &[(0, 2, "pv0", 2)])
    );
    let text = vg_text(7, &[("pv0", UUID_A, 100), ("pv1", UUID_B, 100)], &lvs);
    let a = pv(UUID_A, Some(&text), None);
    let g = &assemble(&[on_disk(0, 0, &a, "p2")])[0];
    assert_eq!(g.pvs[1].found, None);
    assert!(g.problems[0].to_string().contains(
        "PV pv1 (uuid BBBBBB-bbbb-cccc-dddd-eeee-ffff-GGGGGG, last seen as /dev/vdpv1) is missing"
    ));
    let root = &g.lvs[0];
    assert_eq!(
        root.missing_pvs,
        vec!["pv1 (uuid BBBBBB-bbbb-cccc-dddd-eeee-ffff-GGGGGG, last seen as /dev/vdpv1)"]
    );
    assert!(matches!(
        root.mapping.segments()[0].target,
        Target::Linear(_)
    ));
    assert_eq!(
        root.mapping.unreadable(),
        vec![
            "PV pv1 (uuid BBBBBB-bbbb-cccc-dddd-eeee-ffff-GGGGGG, last seen as /dev/vdpv1) is missing"
        ]
    );
    assert!(g.lvs[1].missing_pvs.is_empty());
    assert!(g.lvs[1].mapping.unreadable().is_empty());
}

#[test]
fn sub_lvs_carry_their_missing_pvs_up() {
    let lvs = format!(
        "{}{}r {{\nid = \"RRRRRR-rrrr-rrrr-rrrr-rrrr-rrrr-RRRRRR\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
         segment1 {{\nstart_extent = 0\nextent_count = 2\ntype = \"raid1\"\nraids = [\"-\", \"r_rimage_0\", \"-\", \"r_rimage_1\"]\n}}\n}}\n",
        linear_lv("r_rimage_0", &[(0, 2, "pv0", 0)]).replace(", \"VISIBLE\"", ""),
        linear_lv("r_rimage_1", &[(0, 2, "pv1", 0)]).replace(", \"VISIBLE\"", ""),
    );
    let text = vg_text(1, &[("pv0", UUID_A, 100), ("pv1", UUID_B, 100)], &lvs);
    let a = pv(UUID_A, Some(&text), None);
    let g = &assemble(&[on_disk(0, 0, &a, "p2")])[0];
    let r = g.lvs.iter().find(|l| l.name == "r").unwrap();
    assert!(r.visible);
    assert_eq!(r.missing_pvs.len(), 1);
    // Read from the image that is there.
    assert!(r.mapping.unreadable().is_empty());
    let Target::Raid(raid) = &r.mapping.segments()[0].target else {
        panic!("{:?}", r.mapping)
    };
    assert!(raid.legs()[0].usable() && !raid.legs()[1].usable());
    assert!(
        r.notes[0].contains("raid1 reads leg r_rimage_0"),
        "{:?}",
        r.notes
    );
    assert!(
        r.problems[0]
            .to_string()
            .contains("leg r_rimage_1 is not used: PV pv1"),
        "{:?}",
        r.problems
    );
    assert_eq!(r.segments[0].areas.len(), 2);
    let img0 = g.lvs.iter().find(|l| l.name == "r_rimage_0").unwrap();
    assert!(!img0.visible && img0.missing_pvs.is_empty());
}

#[test]
fn inconsistent_segments_are_unreadable_not_wrong() {
    let bad = |seg: &str| {
        let lv = format!(
            "x {{\nid = \"XXXXXX-xxxx-xxxx-xxxx-xxxx-xxxx-XXXXXX\"\nstatus = [\"VISIBLE\"]\nsegment1 {{\n{seg}\n}}\n}}\n"
        );
        let text = vg_text(1, &[("pv0", UUID_A, 100)], &lv);
        let a = pv(UUID_A, Some(&text), None);
        assemble(&[on_disk(0, 0, &a, "p2")]).remove(0)
    };
    for (seg, why) in [
        (
            "start_extent = 0\nextent_count = 3\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 8\nstripes = [\"pv0\", 0, \"pv0\", 50]",
            "do not divide",
        ),
        (
            "start_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripe_count = 3\nstripe_size = 8\nstripes = [\"pv0\", 0, \"pv0\", 50]",
            "stripe_count is 3",
        ),
        (
            "start_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripes = [\"pv0\", 0, \"pv0\", 50]",
            "without a stripe_size",
        ),
        (
            "start_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripes = [\"pv0\", 99]",
            "past its last extent",
        ),
        (
            "start_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripes = [\"other\", 0]",
            "stripes on LV other",
        ),
        (
            "start_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripes = []",
            "without stripes",
        ),
        (
            "start_extent = 0\nextent_count = 2\ntype = \"vdo\"",
            "VDO LV: its blocks are deduplicated and compressed",
        ),
    ] {
        let g = bad(seg);
        let u = g.lvs[0].mapping.unreadable();
        assert!(u.len() == 1 && u[0].contains(why), "{why}: {u:?}");
    }
    // A `zero` segment reads as zeros, like the dm target lvm2 maps it to.
    let g = bad("start_extent = 0\nextent_count = 2\ntype = \"zero\"");
    assert!(g.lvs[0].mapping.unreadable().is_empty());
    assert!(matches!(
        g.lvs[0].mapping.segments()[0].target,
        crate::io::Target::Zero
    ));
    // Segments that leave a gap: the whole LV is unreadable, with a problem.
    let g = bad("start_extent = 1\nextent_count = 2\ntype = \"striped\"\nstripes = [\"pv0\", 0]");
    assert!(g.lvs[0].mapping.unreadable()[0].contains("do not fit together"));
    assert!(
        g.problems
            .iter()
            .any(|p| p.to_string().contains("segments do not fit together"))
    );
    // A PV too small for its extents.
    let text = vg_text(1, &[("pv0", UUID_A, 1000)], "");
    let a = pv(UUID_A, Some(&text), None);
    let g = &assemble(&[on_disk(0, 0, &a, "p2")])[0];
    assert!(
        g.problems[0].to_string().contains("truncated"),
        "{:?}",
        g.problems
    );
}

#[test]
fn old_snapshots_read_as_unreadable_stores() {
    let lvs = format!(
        "{}{}snapshot0 {{\nid = \"SSSSSS-ssss-ssss-ssss-ssss-ssss-SSSSSS\"\nstatus = [\"READ\"]\n\
         segment1 {{\nstart_extent = 0\nextent_count = 2\ntype = \"snapshot\"\nchunk_size = 8\norigin = \"orig\"\ncow_store = \"snap\"\n}}\n}}\n",
        linear_lv("orig", &[(0, 2, "pv0", 0)]),
        linear_lv("snap", &[(0, 1, "pv0", 2)]).replace(", \"VISIBLE\"", ""),
    );
    let text = vg_text(1, &[("pv0", UUID_A, 100)], &lvs);
    let a = pv(UUID_A, Some(&text), None);
    let g = &assemble(&[on_disk(0, 0, &a, "p2")])[0];
    let names: Vec<&str> = g.lvs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["orig", "snap"]);
    let snap = &g.lvs[1];
    assert!(snap.visible);
    assert_eq!(snap.snapshot_of.as_deref(), Some("orig"));
    assert!(snap.mapping.unreadable()[0].contains("snapshot of orig"));
    assert!(g.lvs[0].mapping.unreadable().is_empty());
    assert_eq!(g.free_count, 97);
}

#[test]
fn duplicate_and_stale_pvs_are_reported() {
    let text = simple_text(5);
    let a = pv(UUID_A, Some(&text), None);
    // Another PV carrying this VG's metadata but not listed in it.
    let b = pv(UUID_B, Some(&simple_text(2)), None);
    let g = &assemble(&[
        on_disk(0, 0, &a, "p2"),
        on_disk(1, 0, &a, "disk1"),
        on_disk(2, 0, &b, "disk2"),
    ])[0];
    assert_eq!(g.pvs[0].found, Some(0));
    let all = crate::problem::texts(&g.problems).join("\n");
    assert!(
        all.contains("was found 2 times (p2, disk1); using p2"),
        "{all}"
    );
    assert!(all.contains("PV disk2 holds metadata of this VG (seqno 2) but the newest metadata (seqno 5) does not list it"), "{all}");
}

#[test]
fn same_name_vgs_are_kept_apart() {
    let a = pv(UUID_A, Some(&simple_text(1)), None);
    let other = vg_text(1, &[("pv0", UUID_B, 100)], "").replace("VGVGVG-vgvg", "OTHERV-vgvg");
    let b = pv(UUID_B, Some(&other), None);
    let vgs = assemble(&[on_disk(0, 0, &a, "p2"), on_disk(1, 0, &b, "disk1")]);
    assert_eq!(vgs.len(), 2);
    assert!(vgs.iter().all(|g| {
        g.problems
            .iter()
            .any(|p| p.to_string().contains("same name"))
    }));
}

#[test]
fn hint_for_damaged_labels() {
    let mut b = pv(UUID_A, Some(&simple_text(1)), None);
    assert!(damaged_label_hint(&b).is_some());
    b[512..1024].fill(0);
    assert!(
        damaged_label_hint(&b)
            .unwrap()
            .contains("metadata area header at byte 4096")
    );
    assert!(damaged_label_hint(&vec![0u8; 70000]).is_none());
}

#[test]
fn long_chains_and_cycles_of_lvs_stay_cheap() {
    // l0 -> l1 -> ... -> lN (on the missing pv1), and a cycle a <-> b that
    // also leads into the chain: every one of them needs pv1.
    let n = 20_000;
    let mut lvs = String::new();
    for i in 0..n {
        lvs.push_str(&format!(
            "l{i} {{\nid = \"x\"\nstatus = [\"VISIBLE\"]\nsegment1 {{\nstart_extent = 0\nextent_count = 1\n\
             type = \"thin\"\nthin_pool = \"l{}\"\n}}\n}}\n",
            i + 1
        ));
    }
    lvs.push_str(&format!(
        "l{n} {{\nid = \"x\"\nsegment1 {{\nstart_extent = 0\nextent_count = 1\ntype = \"striped\"\nstripes = [\"pv1\", 0]\n}}\n}}\n"
    ));
    lvs.push_str(
        "a {\nid = \"x\"\nsegment1 {\nstart_extent = 0\nextent_count = 1\ntype = \"thin\"\nthin_pool = \"b\"\n}\n}\n\
         b {\nid = \"x\"\nsegment1 {\nstart_extent = 0\nextent_count = 1\ntype = \"cache\"\ncache_pool = \"a\"\norigin = \"l0\"\n}\n}\n",
    );
    let text = vg_text(1, &[("pv0", UUID_A, 100), ("pv1", UUID_B, 100)], &lvs);
    let mut pv = on_disk(0, 0, &pv(UUID_A, Some(&simple_text(1)), None), "p2");
    pv.scan.metadata = Some(text);
    let started = std::time::Instant::now();
    let g = assemble(&[pv]).remove(0);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    assert_eq!(g.lvs.len(), n + 3);
    for lv in &g.lvs {
        assert_eq!(lv.missing_pvs.len(), 1, "{}", lv.name);
        assert!(lv.missing_pvs[0].starts_with("pv1 "));
    }
}

/// Three PVs of 1 MiB, VG `vg1` (4 KiB extents from byte 8192): raid5
/// (left symmetric, 4 KiB chunks) `r5` over images at extent 10 and rmeta
/// at extent 20 of each PV, raid1 `r1` over images at extent 30 and rmeta
/// at extent 40 of pv0 and pv1. Returns the PVs' bytes and the data.
fn raid_pvs(sb: impl Fn(&str, usize) -> Option<Vec<u8>>) -> (Vec<Vec<u8>>, Vec<u8>, Vec<u8>) {
    let ext = 4096usize;
    let at = |e: usize| 8192 + e * ext;
    let hidden = |name: &str, pv: &str, pe: u64, n: u64| {
        linear_lv(name, &[(0, n, pv, pe)]).replace(", \"VISIBLE\"", "")
    };
    let mut lvs = String::new();
    for i in 0..3 {
        lvs.push_str(&hidden(&format!("r5_rimage_{i}"), &format!("pv{i}"), 10, 2));
        lvs.push_str(&hidden(&format!("r5_rmeta_{i}"), &format!("pv{i}"), 20, 1));
    }
    for i in 0..2 {
        lvs.push_str(&hidden(&format!("r1_rimage_{i}"), &format!("pv{i}"), 30, 2));
        lvs.push_str(&hidden(&format!("r1_rmeta_{i}"), &format!("pv{i}"), 40, 1));
    }
    lvs.push_str(
        "r5 {\nid = \"R5R5R5-rrrr-rrrr-rrrr-rrrr-rrrr-R5R5R5\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 1\n\
         segment1 {\nstart_extent = 0\nextent_count = 4\ntype = \"raid5\"\ndevice_count = 3\nstripe_size = 8\nregion_size = 1024\n\
         raids = [\"r5_rmeta_0\", \"r5_rimage_0\", \"r5_rmeta_1\", \"r5_rimage_1\", \"r5_rmeta_2\", \"r5_rimage_2\"]\n}\n}\n\
         r1 {\nid = \"R1R1R1-rrrr-rrrr-rrrr-rrrr-rrrr-R1R1R1\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 1\n\
         segment1 {\nstart_extent = 0\nextent_count = 2\ntype = \"raid1\"\ndevice_count = 2\nregion_size = 1024\n\
         raids = [\"r1_rmeta_0\", \"r1_rimage_0\", \"r1_rmeta_1\", \"r1_rimage_1\"]\n}\n}\n",
    );
    let uuids = [UUID_A, UUID_B, "CCCCCCbbbbccccddddeeeeffffGGGGGG"];
    let text = vg_text(
        1,
        &[
            ("pv0", uuids[0], 200),
            ("pv1", uuids[1], 200),
            ("pv2", uuids[2], 200),
        ],
        &lvs,
    );
    let mut pvs: Vec<Vec<u8>> = uuids.iter().map(|u| pv(u, Some(&text), None)).collect();
    // raid5 left symmetric over 3 legs: row 0 = D0 D1 P, row 1 = D3 P D2.
    let data: Vec<u8> = (0..4 * ext).map(|i| (i * 7 % 251) as u8).collect();
    let d = |c: usize| &data[c * ext..(c + 1) * ext];
    let xor = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(x, y)| x ^ y).collect::<Vec<u8>>();
    let rows = [
        [d(0).to_vec(), d(1).to_vec(), xor(d(0), d(1))],
        [d(3).to_vec(), xor(d(2), d(3)), d(2).to_vec()],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (leg, chunk) in row.iter().enumerate() {
            pvs[leg][at(10) + r * ext..at(10) + (r + 1) * ext].copy_from_slice(chunk);
        }
    }
    let mirror: Vec<u8> = (0..2 * ext).map(|i| (i * 13 % 241) as u8).collect();
    for (leg, pv) in pvs.iter_mut().enumerate() {
        if let Some(b) = sb("r5", leg) {
            pv[at(20)..at(20) + 512].copy_from_slice(&b);
        }
        if leg < 2 {
            // The second image is stale in some tests: give it other bytes.
            let bytes = if leg == 0 {
                mirror.clone()
            } else {
                vec![0xee; 2 * ext]
            };
            pv[at(30)..at(32)].copy_from_slice(&bytes);
            if let Some(b) = sb("r1", leg) {
                pv[at(40)..at(40) + 512].copy_from_slice(&b);
            }
        }
    }
    (pvs, data, mirror)
}

fn read_lv(g: &VolumeGroup, disks: &[Arc<dyn ReadAt>], name: &str) -> std::io::Result<Vec<u8>> {
    let lv = g.lvs.iter().find(|l| l.name == name).unwrap();
    let v = crate::io::MappedView::new(lv.mapping.clone(), disks.to_vec());
    let mut b = vec![0u8; lv.size as usize];
    v.read_exact_at(0, &mut b)?;
    Ok(b)
}

fn raid_vg(pvs: &[Vec<u8>], present: &[usize]) -> (VolumeGroup, Vec<Arc<dyn ReadAt>>) {
    let disks: Vec<Arc<dyn ReadAt>> = pvs
        .iter()
        .map(|p| Arc::new(p.clone()) as Arc<dyn ReadAt>)
        .collect();
    let on: Vec<PvOnDisk> = present
        .iter()
        .map(|&i| on_disk(i, 0, &pvs[i], &format!("disk{i}")))
        .collect();
    (assemble_with_disks(&on, &disks).remove(0), disks)
}

#[test]
fn raid_lvs_read_through_their_images_and_rebuild_a_missing_one() {
    use crate::layers::lvm::raid::tests::superblock;
    // Healthy superblocks: raid5 level 5 layout 2, raid1 level 1.
    let healthy = |lv: &str, leg: usize| {
        Some(if lv == "r5" {
            superblock(leg as u32, 9, 0, 5, 2)
        } else {
            superblock(leg as u32, 9, 0, 1, 0)
        })
    };
    let (pvs, data, _) = raid_pvs(healthy);
    let (g, disks) = raid_vg(&pvs, &[0, 1, 2]);
    assert_eq!(read_lv(&g, &disks, "r5").unwrap(), data);
    let r5 = g.lvs.iter().find(|l| l.name == "r5").unwrap();
    assert!(r5.problems.is_empty(), "{:?}", r5.problems);
    assert_eq!(
        r5.notes,
        ["raid5 (left symmetric) reads legs r5_rimage_0, r5_rimage_1, r5_rimage_2"]
    );
    // Disk 1 gone: its leg is rebuilt from parity.
    let (g, disks) = raid_vg(&pvs, &[0, 2]);
    assert_eq!(read_lv(&g, &disks, "r5").unwrap(), data);
    let r5 = g.lvs.iter().find(|l| l.name == "r5").unwrap();
    let p = crate::problem::texts(&r5.problems).join("\n");
    assert!(p.contains("leg r5_rimage_1 is not used: PV pv1"), "{p}");
    assert!(
        p.contains("data of r5_rimage_1 is rebuilt from parity"),
        "{p}"
    );
    // Two legs gone: what needs them cannot be read, and it says why.
    let (g, disks) = raid_vg(&pvs, &[0]);
    let e = read_lv(&g, &disks, "r5").unwrap_err().to_string();
    assert!(e.contains("cannot be rebuilt"), "{e}");
}

#[test]
fn stale_raid_legs_are_not_read() {
    use crate::layers::lvm::raid::tests::superblock;
    // r1's second image missed writes: older events, and the first
    // superblock marks it failed. r5's leg 2 is being rebuilt.
    let sbs = |lv: &str, leg: usize| {
        Some(match (lv, leg) {
            ("r1", 0) => superblock(0, 12, 0b10, 1, 0),
            ("r1", _) => superblock(1, 7, 0, 1, 0),
            ("r5", 2) => {
                let mut b = superblock(2, 9, 0, 5, 2);
                b[32..40].copy_from_slice(&8u64.to_le_bytes());
                b
            }
            (_, l) => superblock(l as u32, 9, 0, 5, 2),
        })
    };
    let (pvs, data, mirror) = raid_pvs(sbs);
    let (g, disks) = raid_vg(&pvs, &[0, 1, 2]);
    assert_eq!(read_lv(&g, &disks, "r1").unwrap(), mirror);
    let r1 = g.lvs.iter().find(|l| l.name == "r1").unwrap();
    let p = crate::problem::texts(&r1.problems).join("\n");
    assert!(
        p.contains("leg r1_rimage_1 is not used: the freshest dm-raid superblock (r1_rimage_0's, events 12) marks it failed"),
        "{p}"
    );
    assert_eq!(r1.notes, ["raid1 reads leg r1_rimage_0"]);
    assert_eq!(read_lv(&g, &disks, "r5").unwrap(), data);
    let r5 = g.lvs.iter().find(|l| l.name == "r5").unwrap();
    let p = crate::problem::texts(&r5.problems).join("\n");
    assert!(
        p.contains("r5_rimage_2 is not used: it was being rebuilt"),
        "{p}"
    );
    // Without disks (metadata alone) nothing is judged stale.
    let on: Vec<PvOnDisk> = (0..3).map(|i| on_disk(i, 0, &pvs[i], "d")).collect();
    let g = assemble(&on).remove(0);
    let r1 = g.lvs.iter().find(|l| l.name == "r1").unwrap();
    assert!(r1.problems.is_empty());
}

#[test]
fn cache_writecache_and_vdo_say_what_is_missing() {
    let lvs = format!(
        "{}{}c {{\nid = \"CCCCCC-cccc-cccc-cccc-cccc-cccc-CCCCCC\"\nstatus = [\"READ\", \"VISIBLE\"]\n\
         segment1 {{\nstart_extent = 0\nextent_count = 2\ntype = \"cache\"\ncache_pool = \"c_cpool\"\norigin = \"c_corig\"\n}}\n}}\n\
         c_cpool {{\nid = \"PPPPPP-cccc-cccc-cccc-cccc-cccc-CCCCCC\"\nstatus = [\"READ\"]\n\
         segment1 {{\nstart_extent = 0\nextent_count = 1\ntype = \"cache-pool\"\ndata = \"c_cpool_cdata\"\nmetadata = \"c_cpool_cmeta\"\ncache_mode = \"MODE\"\n}}\n}}\n\
         w {{\nid = \"WWWWWW-cccc-cccc-cccc-cccc-cccc-CCCCCC\"\nstatus = [\"READ\", \"VISIBLE\"]\n\
         segment1 {{\nstart_extent = 0\nextent_count = 2\ntype = \"writecache\"\nwritecache = \"w_cvol\"\norigin = \"w_wcorig\"\n}}\n}}\n",
        linear_lv("c_corig", &[(0, 2, "pv0", 0)]).replace(", \"VISIBLE\"", ""),
        linear_lv("w_wcorig", &[(0, 2, "pv0", 2)]).replace(", \"VISIBLE\"", ""),
    );
    for (mode, readable) in [("writeback", false), ("writethrough", true)] {
        let text = vg_text(1, &[("pv0", UUID_A, 100)], &lvs.replace("MODE", mode));
        let a = pv(UUID_A, Some(&text), None);
        let disks: Vec<Arc<dyn ReadAt>> = vec![Arc::new(a.clone())];
        let g = assemble_with_disks(&[on_disk(0, 0, &a, "p2")], &disks).remove(0);
        let c = g.lvs.iter().find(|l| l.name == "c").unwrap();
        let origin = g.lvs.iter().find(|l| l.name == "c_corig").unwrap();
        if readable {
            assert_eq!(c.mapping, origin.mapping);
            assert!(c.notes[0].contains("writethrough mode: read from its origin c_corig"));
        } else {
            let u = c.mapping.unreadable().join("");
            assert!(
                u.contains("cache LV (writeback mode)")
                    && u.contains("open it with --volume vg1/c_corig"),
                "{u}"
            );
        }
        let w = g.lvs.iter().find(|l| l.name == "w").unwrap();
        let u = w.mapping.unreadable().join("");
        assert!(
            u.contains("writecache LV") && u.contains("--volume vg1/w_wcorig"),
            "{u}"
        );
    }
}
