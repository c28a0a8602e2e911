//! The content probe against `blkid -p -o export` of the same volumes
//! (saved by the fixture scripts as `<name>.blkid`): TYPE, LABEL, UUID.

mod common;
mod partition_support;

use partition_support::{BARE_FIXTURES, TABLE_FIXTURES, blkid, layout_of};
use vmrescue::layers::{ContentKind, VolumeKind};

/// Compare every volume listed in `<name>.blkid` whose name passes `which`.
fn compare(name: &str, which: &dyn Fn(&str) -> bool) -> usize {
    let layout = layout_of(&common::fixture(name));
    let mut checked = 0;
    for (vol, tags) in blkid(name) {
        if !which(&vol) {
            continue;
        }
        let v = layout
            .volumes
            .iter()
            .find(|v| v.name == vol)
            .unwrap_or_else(|| {
                panic!(
                    "{name}: blkid probed {vol} but vmrescue has no such volume ({})",
                    layout.volume_choices()
                )
            });
        let c = &v.content;
        match tags.get("TYPE") {
            Some(t) => assert_eq!(c.kind.name(), t, "{name} {vol}: type ({c:?})"),
            None if tags.contains_key("PTTYPE") => {
                // blkid sees the EBR of an extended partition as a nested table.
                assert!(
                    matches!(&v.kind, VolumeKind::Partition { entry, .. } if entry.extended),
                    "{name} {vol}: blkid found a nested table, we found {c:?}"
                );
            }
            None => assert!(
                matches!(c.kind, ContentKind::Zeros | ContentKind::Unknown),
                "{name} {vol}: blkid found nothing, vmrescue found {c:?}"
            ),
        }
        assert_eq!(
            c.label.as_deref(),
            tags.get("LABEL").map(String::as_str),
            "{name} {vol}: label"
        );
        assert_eq!(
            c.uuid.as_deref(),
            tags.get("UUID").map(String::as_str),
            "{name} {vol}: uuid"
        );
        if matches!(c.kind, ContentKind::Vfat | ContentKind::LvmPv) {
            assert_eq!(
                c.version.as_deref(),
                tags.get("VERSION").map(String::as_str),
                "{name} {vol}: version"
            );
        }
        checked += 1;
    }
    checked
}

fn is_lv(vol: &str) -> bool {
    vol.contains('/')
}

#[test]
fn probe_matches_blkid_on_partitions_and_whole_disks() {
    let mut checked = 0;
    for name in TABLE_FIXTURES.iter().chain(BARE_FIXTURES) {
        checked += compare(name, &|v| !is_lv(v));
    }
    // 7 + 8 + 5 + 5 + 3 + 5 + 2 partitions, 6 whole disks.
    assert_eq!(checked, 41);
}

#[test]
fn probe_matches_blkid_on_logical_volumes() {
    let mut checked = 0;
    for name in ["demo", "bare-pv"] {
        checked += compare(name, &is_lv);
    }
    assert_eq!(checked, 5, "vg_ta: root, home, swap; vg_bare: data, more");
}

#[test]
fn ext2_ext3_ext4_are_told_apart_as_blkid_does() {
    let layout = layout_of(&common::fixture("part-mbr-0f"));
    let kind = |n: &str| layout.volume(layout.find_volume(n).expect(n)).content.kind;
    assert_eq!(kind("p5"), ContentKind::Ext2);
    assert_eq!(kind("p6"), ContentKind::Ext3);
    assert_eq!(kind("p7"), ContentKind::Ext4);
}
