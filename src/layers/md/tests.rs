//! The superblock parser on made superblocks (every version, both byte
//! orders for 0.90), a corruption suite, and assembly over in-memory disks.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use super::superblock::{Found, Role, Version, build, parse_090, parse_v1, read};
use super::{MdArray, MemberState};
use crate::image::ImageFormat;
use crate::io::ReadAt;
use crate::layers::{DiskOrigin, DiskSource, Layout, ScanOptions, VolumeKind, scan_sources};

const UUID: [u8; 16] = [
    0x25, 0x2b, 0xfa, 0x22, 0xf6, 0x91, 0x46, 0x95, 0xdf, 0x71, 0xfa, 0x22, 0xe6, 0x14, 0x66, 0x0e,
];
const MIB: u64 = 1 << 20;

fn v1(minor: u8, at: u64, level: i32, raid_disks: u32, dev_number: u32) -> build::V1 {
    build::V1 {
        minor,
        at,
        uuid: UUID,
        name: "guest:root".into(),
        level,
        layout: 2,
        chunk_sectors: 128,
        raid_disks,
        // 2 MiB of data on each device, from 1 MiB.
        size: 4096,
        data_offset: 2048,
        data_size: 4096,
        dev_number,
        roles: (0..raid_disks).map(|r| r as u16).collect(),
        events: 57,
        feature_map: 0,
    }
}

fn sb_of(f: Found) -> super::Superblock {
    match f {
        Found::Superblock(sb) => *sb,
        other => panic!("no superblock: {other:?}"),
    }
}

#[test]
fn v1_fields_and_checksum() {
    let b = v1(2, 4096, 5, 3, 1).bytes();
    let sb = sb_of(parse_v1(&b, 4096, 2));
    assert!(sb.csum_ok());
    assert_eq!(sb.version, Version::V1 { minor: 2 });
    assert_eq!(sb.name.as_deref(), Some("guest:root"));
    assert_eq!(sb.level_name(), "raid5");
    assert_eq!(sb.raid_disks, 3);
    assert_eq!(sb.chunk_size, 64 * 1024);
    assert_eq!(sb.data_offset, MIB);
    assert_eq!(sb.size, 2 * MIB);
    assert_eq!(sb.role, Role::Active(1));
    assert_eq!(sb.events, 57);
    assert_eq!(sb.uuid_mdadm(), "252bfa22:f6914695:df71fa22:e614660e");
    assert_eq!(sb.uuid_blkid(), "252bfa22-f691-4695-df71-fa22e614660e");
    // The probe agrees with the parser on what is valid.
    assert!(crate::layers::labels::md1_valid(&b, 4096));
}

#[test]
fn v1_bad_checksum_is_seen() {
    let mut b = v1(2, 4096, 1, 2, 0).bytes();
    b[200] ^= 1; // events
    let sb = sb_of(parse_v1(&b, 4096, 2));
    assert!(!sb.csum_ok());
}

#[test]
fn v1_bad_magic_is_nothing() {
    let mut b = v1(2, 4096, 1, 2, 0).bytes();
    b[0] ^= 0xff;
    assert_eq!(parse_v1(&b, 4096, 2), Found::None);
}

#[test]
fn v1_superblock_of_another_place_is_not_taken() {
    let b = v1(2, 4096, 1, 2, 0).bytes();
    assert_eq!(parse_v1(&b, 0, 1), Found::None);
}

#[test]
fn v1_absurd_role_count_is_damage() {
    let mut b = v1(2, 4096, 1, 2, 0).bytes();
    b[220..224].copy_from_slice(&60000u32.to_le_bytes());
    assert!(matches!(parse_v1(&b, 4096, 2), Found::Damaged { .. }));
    let b = v1(2, 4096, 1, 70000, 0).bytes();
    assert!(matches!(parse_v1(&b, 4096, 2), Found::Damaged { .. }));
    let mut b = v1(2, 4096, 1, 2, 0).bytes();
    b[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(parse_v1(&b, 4096, 2), Found::Damaged { .. }));
}

#[test]
fn v1_special_roles() {
    let mut s = v1(2, 4096, 1, 2, 2);
    s.roles = vec![0, 1, 0xffff, 0xfffe, 0xfffd];
    let sb = sb_of(parse_v1(&s.bytes(), 4096, 2));
    assert_eq!(sb.role, Role::Spare);
    assert_eq!(
        &sb.roles[2..],
        &[Role::Spare, Role::Faulty, Role::Journal][..]
    );
    // A device number past the table is no member.
    let mut s = v1(2, 4096, 1, 2, 9);
    s.roles = vec![0, 1];
    assert_eq!(sb_of(parse_v1(&s.bytes(), 4096, 2)).role, Role::Spare);
}

#[test]
fn v1_unsupported_features_are_named() {
    let mut s = v1(2, 4096, 5, 3, 0);
    s.feature_map = super::superblock::feature::RESHAPE_ACTIVE
        | super::superblock::feature::JOURNAL
        | super::superblock::feature::BITMAP;
    let sb = sb_of(parse_v1(&s.bytes(), 4096, 2));
    let u = sb.unsupported().join("; ");
    assert!(u.contains("reshape"), "{u}");
    assert!(u.contains("journal"), "{u}");
    assert!(sb.facts().join("; ").contains("bitmap"));
}

#[test]
fn v090_both_byte_orders() {
    for be in [false, true] {
        let b = build::v090(be, [0x11223344, 5, 6, 7], 1, 2, 1024, 3, 1, 0x1_0000_0029);
        let sb = sb_of(parse_090(&b, 0x10000));
        assert!(sb.csum_ok(), "big endian {be}");
        assert_eq!(sb.version, Version::V090 { big_endian: be });
        assert_eq!(sb.md_minor, Some(3));
        assert_eq!(sb.events, 0x1_0000_0029);
        assert_eq!(sb.role, Role::Active(1));
        assert_eq!(sb.size, MIB);
        assert_eq!(sb.uuid_mdadm(), "11223344:00000005:00000006:00000007");
    }
}

#[test]
fn v090_bad_checksum_and_absurd_disk_count() {
    let mut b = build::v090(false, [1, 2, 3, 4], 1, 2, 1024, 0, 0, 5);
    b[100] ^= 1;
    assert!(!sb_of(parse_090(&b, 0x10000)).csum_ok());
    let b = build::v090(false, [1, 2, 3, 4], 1, 4000, 1024, 0, 0, 5);
    assert!(matches!(parse_090(&b, 0x10000), Found::Damaged { .. }));
}

#[test]
fn read_finds_each_version_where_it_lives() {
    let size = 4 * MIB;
    for (minor, at) in [(0u8, size - 8192), (1, 0), (2, 4096)] {
        let mut dev = vec![0u8; size as usize];
        let b = v1(minor, at, 1, 2, 0).bytes();
        dev[at as usize..at as usize + 4096].copy_from_slice(&b);
        let sb = sb_of(read(&dev));
        assert_eq!(sb.version, Version::V1 { minor });
        assert_eq!(sb.at, at);
    }
    let mut dev = vec![0u8; size as usize + 12345];
    let at = (dev.len() as u64 & !0xffff) - 0x10000;
    let b = build::v090(false, [1, 2, 3, 4], 1, 2, 1024, 0, 0, 5);
    dev[at as usize..at as usize + 4096].copy_from_slice(&b);
    assert_eq!(
        sb_of(read(&dev)).version,
        Version::V090 { big_endian: false }
    );
    assert_eq!(read(&vec![0u8; 100]), Found::None);
}

// ----- assembly over in-memory disks -----

fn disk(name: &str, bytes: Vec<u8>) -> DiskSource {
    DiskSource {
        origin: DiskOrigin::Host(name.into()),
        source: Arc::new(bytes),
        format: ImageFormat::Raw,
        format_details: Vec::new(),
        snapshot: None,
        problems: Vec::new(),
    }
}

/// A member disk of 4 MiB: superblock `s` at its place, data from
/// `s.data_offset` filled by `fill(byte of the member's data)`.
fn member(s: &build::V1, fill: &dyn Fn(u64) -> u8) -> Vec<u8> {
    let mut dev = vec![0u8; 4 * MIB as usize];
    let off = (s.data_offset * 512) as usize;
    for i in 0..(s.data_size * 512) as usize {
        if off + i < dev.len() {
            dev[off + i] = fill(i as u64);
        }
    }
    dev[s.at as usize..s.at as usize + 4096].copy_from_slice(&s.bytes());
    dev
}

fn scan(disks: Vec<DiskSource>) -> Layout {
    scan_sources(disks, ScanOptions::default())
}

fn array(layout: &Layout) -> (&crate::layers::Volume, &MdArray) {
    layout
        .volumes
        .iter()
        .find_map(|v| match &v.kind {
            VolumeKind::MdArray { array } => Some((v, &**array)),
            _ => None,
        })
        .expect("an MD array")
}

fn read_volume(layout: &Layout, v: &crate::layers::Volume, at: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    layout
        .open_volume(v.id)
        .read_exact_at(at, &mut buf)
        .unwrap();
    buf
}

#[test]
fn raid1_reads_the_first_member_and_names_the_array() {
    let a = v1(2, 4096, 1, 2, 0);
    let b = v1(2, 4096, 1, 2, 1);
    let pattern = |i: u64| (i % 251) as u8;
    let layout = scan(vec![
        disk("a.img", member(&a, &pattern)),
        disk("b.img", member(&b, &pattern)),
    ]);
    let (v, arr) = array(&layout);
    assert_eq!(v.name, "md/root");
    assert_eq!(arr.level, "raid1");
    assert!(arr.missing.is_empty());
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.size(), 2 * MIB);
    assert_eq!(
        read_volume(&layout, v, 1000, 4),
        vec![pattern(1000), pattern(1001), pattern(1002), pattern(1003)]
    );
    let m0 = &layout.volumes[arr.members[0].volume.0];
    assert_eq!(
        m0.content.detail.as_deref(),
        Some("member 0 of md/root"),
        "{:?}",
        m0.content
    );
    assert!(
        arr.reads
            .iter()
            .any(|n| n.contains("raid1 reads leg disk0")),
        "{:?}",
        arr.reads
    );
    // Every spelling of it.
    for spec in ["md/root", "/dev/md/root", "/dev/md/guest:root"] {
        assert_eq!(layout.find_volume(spec).unwrap(), v.id, "{spec}");
    }
    assert!(matches!(
        layout.resolve_spec("/dev/md/root"),
        crate::layers::fstab::SpecMatch::Found { volume, .. } if volume == v.id
    ));
    // The kernel engine maps no md: even asked for, vmrescue reads it (the
    // in-memory array holds no filesystem, so only the reason is checked
    // through a volume that claims one).
    let mut l2 = layout.clone();
    l2.volumes[v.id.0].content.kind = crate::layers::ContentKind::Ext4;
    let d = crate::engine::decide(&l2, v.id, crate::engine::EngineChoice::Kernel);
    assert_eq!(
        d.engine,
        Some(crate::engine::Engine::Userspace),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("on MD array md/root"), "{}", d.reason);
    // The tree shows it under its first member.
    let tree = crate::layers::tree::build(&layout);
    assert_eq!(tree[0].children[0].kind, "md");
    assert_eq!(tree[0].children[0].name, "md/root");
    assert!(
        tree[1].children[0]
            .description
            .contains("shown under its first member")
    );
}

#[test]
fn a_stale_member_is_said_and_not_read() {
    let a = v1(2, 4096, 1, 2, 0);
    let mut b = v1(2, 4096, 1, 2, 1);
    b.events = 41;
    let layout = scan(vec![
        disk("a.img", member(&a, &|_| 0xaa)),
        disk("b.img", member(&b, &|_| 0xbb)),
    ]);
    let (v, arr) = array(&layout);
    assert_eq!(
        arr.members[1].state,
        MemberState::Stale {
            events: 41,
            newest: 57
        }
    );
    assert_eq!(arr.missing, vec![1]);
    let detail = layout.volumes[arr.members[1].volume.0]
        .content
        .detail
        .clone()
        .unwrap();
    assert_eq!(
        detail,
        "member 1 of md/root (stale: events 41 < 57; not read)"
    );
    assert!(
        v.problems
            .iter()
            .any(|p| p.to_string().contains("stale: events 41 < 57")),
        "{:?}",
        v.problems
    );
    assert_eq!(read_volume(&layout, v, 0, 2), vec![0xaa, 0xaa]);
}

#[test]
fn one_event_behind_is_still_in_sync_as_the_kernel_takes_it() {
    let a = v1(2, 4096, 1, 2, 0);
    let mut b = v1(2, 4096, 1, 2, 1);
    b.events = 56;
    let layout = scan(vec![
        disk("a.img", member(&a, &|_| 1)),
        disk("b.img", member(&b, &|_| 1)),
    ]);
    let (_, arr) = array(&layout);
    assert_eq!(arr.members[1].state, MemberState::InSync);
}

#[test]
fn raid0_stripes_chunks_over_its_members() {
    let a = v1(0, 4 * MIB - 8192, 0, 2, 0);
    let b = v1(0, 4 * MIB - 8192, 0, 2, 1);
    let (mut a, mut b) = (a, b);
    a.data_offset = 0;
    b.data_offset = 0;
    let layout = scan(vec![
        disk("a.img", member(&a, &|i| (i / 65536) as u8 * 2)),
        disk("b.img", member(&b, &|i| (i / 65536) as u8 * 2 + 1)),
    ]);
    let (v, _) = array(&layout);
    assert_eq!(v.size(), 4 * MIB);
    // Chunk k of the array is chunk k/2 of member k%2.
    for k in 0..6u64 {
        assert_eq!(
            read_volume(&layout, v, k * 65536 + 7, 1),
            vec![k as u8],
            "chunk {k}"
        );
    }
}

#[test]
fn raid0_with_a_member_missing_is_unreadable_with_the_reason() {
    let mut a = v1(1, 0, 0, 2, 0);
    a.data_offset = 16;
    let layout = scan(vec![disk("a.img", member(&a, &|_| 0))]);
    let (v, arr) = array(&layout);
    assert_eq!(arr.missing, vec![1]);
    assert!(!v.mapping.unreadable().is_empty());
    assert!(v.problems.iter().any(|p| {
        p.to_string()
            .contains("role 1 of 2 is not read: no member found")
    }));
}

#[test]
fn data_past_the_end_of_its_volume_makes_a_member_missing() {
    let a = v1(2, 4096, 1, 2, 0);
    let mut b = v1(2, 4096, 1, 2, 1);
    b.data_offset = 8000; // 4 MB: past the 4 MiB disk with 2 MiB of data
    let layout = scan(vec![
        disk("a.img", member(&a, &|_| 3)),
        disk("b.img", member(&b, &|_| 3)),
    ]);
    let (v, arr) = array(&layout);
    assert_eq!(arr.missing, vec![1]);
    assert!(
        v.problems.iter().any(|p| p
            .to_string()
            .contains("role 1 of 2 is not read: disk1: it holds")),
        "{:?}",
        v.problems
    );
    assert_eq!(read_volume(&layout, v, 0, 1), vec![3]);
}

#[test]
fn two_members_claiming_one_role_use_the_first() {
    let a = v1(2, 4096, 1, 2, 0);
    let bytes = member(&a, &|_| 9);
    let layout = scan(vec![
        disk("a.img", bytes.clone()),
        disk("a-copy.img", bytes),
    ]);
    let (v, arr) = array(&layout);
    assert_eq!(arr.members[0].state, MemberState::InSync);
    assert!(
        matches!(&arr.members[1].state, MemberState::Unused { why } if why.contains("holds role 0 too"))
    );
    assert_eq!(arr.missing, vec![1]);
    assert_eq!(read_volume(&layout, v, 0, 1), vec![9]);
}

#[test]
fn a_member_with_a_bad_checksum_is_not_read() {
    let a = v1(2, 4096, 1, 2, 0);
    let b = v1(2, 4096, 1, 2, 1);
    let mut bad = member(&b, &|_| 7);
    // The probe still takes it for a member (blkid checks the sum too:
    // damage the field after the probe's look, in the role table).
    bad[4096 + 200] ^= 1;
    let layout = scan(vec![disk("a.img", member(&a, &|_| 7)), disk("b.img", bad)]);
    // The probe refuses the bad sum as blkid does: only one member.
    let (_, arr) = array(&layout);
    assert_eq!(arr.members.len(), 1);
    assert_eq!(arr.missing, vec![1]);
}

#[test]
fn v090_arrays_are_md_minor_and_fstab_names_them() {
    let size = 4 * MIB as usize;
    let at = (size & !0xffff) - 0x10000;
    let mk = |this: u32| {
        let mut dev = vec![5u8; size];
        let b = build::v090(false, [1, 2, 3, 4], 1, 2, 1024, 0, this, 10);
        dev[at..at + 4096].copy_from_slice(&b);
        dev
    };
    let layout = scan(vec![disk("a.img", mk(0)), disk("b.img", mk(1))]);
    let (v, arr) = array(&layout);
    assert_eq!(v.name, "md0");
    assert_eq!(arr.metadata, "0.90");
    assert_eq!(v.size(), MIB);
    assert!(matches!(
        layout.resolve_spec("/dev/md0"),
        crate::layers::fstab::SpecMatch::Found { volume, .. } if volume == v.id
    ));
    assert_eq!(layout.aliases(v.id), vec!["/dev/md0".to_string()]);
}

#[test]
fn hostile_member_sets_stay_bounded() {
    // raid_disks at the 1.x maximum with one member: every other slot
    // missing, and no panic.
    let mut a = v1(2, 4096, 6, 1920, 0);
    a.roles = vec![0];
    let layout = scan(vec![disk("a.img", member(&a, &|_| 0))]);
    let (v, arr) = array(&layout);
    assert_eq!(arr.missing.len(), 1920);
    assert!(!v.mapping.unreadable().is_empty());
    assert!(v.problems.len() < 20, "{:?}", v.problems);
}

/// Three raid5 members, left-symmetric, 64 KiB chunks: the array's data
/// byte `i` is `data(i)`; parity is the XOR of each stripe's data.
fn raid5_members(data: &dyn Fn(u64) -> u8) -> Vec<Vec<u8>> {
    let chunk = 65536u64;
    let n = 3u64;
    let sbs: Vec<build::V1> = (0..3).map(|d| v1(2, 4096, 5, 3, d)).collect();
    let mut devs: Vec<Vec<u8>> = sbs.iter().map(|s| member(s, &|_| 0)).collect();
    let off = MIB as usize;
    let stripes = 2 * MIB / chunk;
    for s in 0..stripes {
        let pd = (n - 1) - (s % n);
        let mut parity = vec![0u8; chunk as usize];
        for i in 0..n - 1 {
            let d = (pd + 1 + i) % n;
            let base = (s * (n - 1) + i) * chunk;
            for j in 0..chunk {
                let b = data(base + j);
                devs[d as usize][off + (s * chunk + j) as usize] = b;
                parity[j as usize] ^= b;
            }
        }
        devs[pd as usize][off + (s * chunk) as usize..off + ((s + 1) * chunk) as usize]
            .copy_from_slice(&parity);
    }
    devs
}

#[test]
fn raid5_reads_through_the_raid_core_and_rebuilds_a_missing_member() {
    let data = |i: u64| (i.wrapping_mul(2654435761) >> 13) as u8;
    let devs = raid5_members(&data);
    let expected: Vec<u8> = (0..4 * MIB).map(data).collect();
    let full = scan(
        devs.iter()
            .enumerate()
            .map(|(i, d)| disk(&format!("d{i}.img"), d.clone()))
            .collect(),
    );
    let (v, arr) = array(&full);
    assert_eq!(arr.level, "raid5");
    assert_eq!(v.size(), 4 * MIB);
    assert_eq!(read_volume(&full, v, 0, 4 * MIB as usize), expected);
    // The same with disk 1 gone.
    let degraded = scan(vec![
        disk("d0.img", devs[0].clone()),
        disk("d2.img", devs[2].clone()),
    ]);
    let (v, arr) = array(&degraded);
    assert_eq!(arr.missing, vec![1]);
    assert!(
        v.problems
            .iter()
            .any(|p| p.to_string().contains("rebuilt from parity")),
        "{:?}",
        v.problems
    );
    assert_eq!(read_volume(&degraded, v, 0, 4 * MIB as usize), expected);
}

#[test]
fn a_v090_member_with_a_bad_checksum_is_shown_and_not_read() {
    let size = 4 * MIB as usize;
    let at = (size & !0xffff) - 0x10000;
    let mk = |this: u32, damage: bool| {
        let mut dev = vec![5u8; size];
        let mut b = build::v090(false, [1, 2, 3, 4], 1, 2, 1024, 0, this, 10);
        if damage {
            b[2000] ^= 0x40;
        }
        dev[at..at + 4096].copy_from_slice(&b);
        dev
    };
    let layout = scan(vec![
        disk("a.img", mk(0, false)),
        disk("b.img", mk(1, true)),
    ]);
    let (v, arr) = array(&layout);
    assert!(
        matches!(&arr.members[1].state, MemberState::Unused { why } if why.contains("checksum"))
    );
    assert_eq!(arr.missing, vec![1]);
    let member = &layout.volumes[arr.members[1].volume.0];
    assert!(
        member
            .problems
            .iter()
            .any(|p| p.to_string().contains("bad checksum")),
        "{:?}",
        member.problems
    );
    assert_eq!(read_volume(&layout, v, 0, 1), vec![5]);
}

#[test]
fn overlapping_partitions_holding_one_member_count_it_once() {
    // An MBR whose two entries start at the same sector: both partitions
    // see the same member.
    let a = v1(2, 4096, 1, 2, 0);
    let m = member(&a, &|_| 4);
    let start = MIB as usize;
    let mut dev = vec![0u8; start];
    for i in 0..2 {
        let e = 446 + 16 * i;
        dev[e + 4] = 0xfd;
        dev[e + 8..e + 12].copy_from_slice(&((start / 512) as u32).to_le_bytes());
        dev[e + 12..e + 16].copy_from_slice(&((m.len() / 512) as u32).to_le_bytes());
    }
    dev[510] = 0x55;
    dev[511] = 0xaa;
    dev.extend_from_slice(&m);
    let layout = scan(vec![disk("a.img", dev)]);
    let (v, arr) = array(&layout);
    assert_eq!(arr.members.len(), 2);
    assert!(
        matches!(&arr.members[1].state, MemberState::Unused { why } if why == "the same bytes as p1"),
        "{:?}",
        arr.members[1].state
    );
    assert_eq!(arr.missing, vec![1]);
    assert_eq!(read_volume(&layout, v, 0, 1), vec![4]);
}
