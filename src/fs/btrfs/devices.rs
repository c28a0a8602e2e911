//! The devices of a btrfs filesystem that spans several volumes: the
//! other devices are matched to the first by the superblock's `fsid`,
//! told apart by `dev_item.devid` and device UUID, checked against the
//! chunk tree's device items, and those that are missing are named with
//! what their absence costs.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::ops::ControlFlow;
use std::sync::Arc;

use super::item::ty;
use super::sb::{self, Key, uuid_string};
use super::tree::Trees;
use crate::io::{ReadAt, le};
use crate::problem::Problem;

/// Most other devices looked at.
pub const MAX_DEVICES: usize = 256;
/// `BTRFS_DEV_ITEMS_OBJECTID`: the key objectid of device items.
const DEV_ITEMS: u64 = 1;
/// Bytes of a device item.
const DEV_ITEM_LEN: usize = 98;

/// An opened device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its `devid`.
    pub devid: u64,
    /// Its device UUID.
    pub dev_uuid: [u8; 16],
    /// Its superblock generation.
    pub generation: u64,
}

/// A device item of the chunk tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevItem {
    /// `devid`.
    pub devid: u64,
    /// Device UUID.
    pub uuid: [u8; 16],
    /// The filesystem UUID it names.
    pub fsid: [u8; 16],
    /// Its size.
    pub total_bytes: u64,
}

/// Decode a device item (the item's bytes).
pub fn parse_dev_item(d: &[u8]) -> Option<DevItem> {
    if d.len() < DEV_ITEM_LEN {
        return None;
    }
    let uuid = |o: usize| {
        let mut u = [0u8; 16];
        if let Some(s) = d.get(o..o.checked_add(16)?) {
            u.copy_from_slice(s);
        }
        Some(u)
    };
    Some(DevItem {
        devid: le::u64(d, 0)?,
        total_bytes: le::u64(d, 8)?,
        uuid: uuid(66)?,
        fsid: uuid(82)?,
    })
}

/// What [`newest_first`] gives: the device to read from, the others, and
/// the given volume's (devid, generation) when it is not the first.
pub type Reordered = (Arc<dyn ReadAt>, Vec<Arc<dyn ReadAt>>, Option<(u64, u64)>);

/// `src` and `others` reordered so that the device with the newest
/// superblock (highest generation) of `src`'s filesystem comes first, as the
/// kernel reads the filesystem from its newest device: a device that missed
/// the last transactions (it was away) is not the one the trees are read
/// from. Unreadable volumes and other filesystems keep their place. The
/// third value is `src`'s (devid, generation) when another device comes
/// first.
pub fn newest_first(src: Arc<dyn ReadAt>, others: &[Arc<dyn ReadAt>]) -> Reordered {
    let Ok((first, _)) = sb::read(src.as_ref()) else {
        return (src, others.to_vec(), None);
    };
    let mut best: Option<(usize, u64)> = None;
    for (i, o) in others.iter().enumerate().take(MAX_DEVICES) {
        if let Ok((osb, _)) = sb::read(o.as_ref())
            && osb.fsid == first.fsid
            && osb.generation > best.map_or(first.generation, |b| b.1)
        {
            best = Some((i, osb.generation));
        }
    }
    match best.and_then(|(i, _)| others.get(i).map(|o| (i, Arc::clone(o)))) {
        Some((i, newest)) => {
            let mut rest = others.to_vec();
            if let Some(slot) = rest.get_mut(i) {
                *slot = src;
            }
            (newest, rest, Some((first.devid, first.generation)))
        }
        None => (src, others.to_vec(), None),
    }
}

/// Open the devices among `others` that belong to the filesystem of
/// `t` (same `fsid`, a `devid` not yet opened) into `t`. The opened
/// devices come back (the first one first) with notes about those left
/// out. A copy of an opened device (the same `devid` again, a cloned
/// disk) is not mixed in: the first one given is used, so callers list
/// the likeliest siblings first.
pub fn attach(t: &mut Trees, others: &[Arc<dyn ReadAt>]) -> (Vec<Member>, Vec<String>) {
    let mut members = vec![Member {
        devid: t.sb.devid,
        dev_uuid: t.sb.dev_uuid,
        generation: t.sb.generation,
    }];
    let mut notes = Vec::new();
    for src in others.iter().take(MAX_DEVICES) {
        let (osb, _) = match sb::read(src.as_ref()) {
            Ok(x) => x,
            Err(e) => {
                t.problems.record(Problem::of(
                    "btrfs device",
                    format!("another volume given as a device of this filesystem: {e}"),
                ));
                continue;
            }
        };
        if osb.fsid != t.sb.fsid {
            continue;
        }
        if let Some(m) = members.iter().find(|m| m.devid == osb.devid) {
            notes.push(format!(
                "btrfs devid {} appears twice (device UUIDs {} and {}, generations {} and {}): a copy of the same disk? only the first found is used (the one on the same disk, when there is one)",
                osb.devid,
                uuid_string(&m.dev_uuid),
                uuid_string(&osb.dev_uuid),
                m.generation,
                osb.generation
            ));
            continue;
        }
        if osb.generation != t.sb.generation {
            notes.push(format!(
                "btrfs devid {} has generation {}, devid {} (read from) {}: the devices were apart for some transactions; the older one's bytes are used only where their checksums match",
                osb.devid, osb.generation, t.sb.devid, t.sb.generation
            ));
        }
        members.push(Member {
            devid: osb.devid,
            dev_uuid: osb.dev_uuid,
            generation: osb.generation,
        });
        t.add_device(osb.devid, Arc::clone(src));
    }
    (members, notes)
}

/// Check the opened devices against the chunk tree's device items and name
/// the missing ones: notes for the status, problems for lies.
/// `given` is what [`newest_first`] said of the volume opened, when the
/// filesystem is read from another device.
pub fn report(
    t: &Trees,
    members: &[Member],
    chunk_root: (u64, u8),
    given: Option<(u64, u64)>,
) -> Vec<String> {
    let mut items: Vec<DevItem> = Vec::new();
    let got = t.range(
        chunk_root.0,
        chunk_root.1,
        Key::new(DEV_ITEMS, ty::DEV_ITEM, 0),
        Key::new(DEV_ITEMS, ty::DEV_ITEM, u64::MAX),
        &mut |k, d| {
            match parse_dev_item(d) {
                Some(di) if di.devid == k.offset => items.push(di),
                Some(di) => t.problems.record(Problem::of(
                    "btrfs device item",
                    format!(
                        "the item of devid {} says devid {}: it is not trusted",
                        k.offset, di.devid
                    ),
                )),
                None => t.problems.record(Problem::of(
                    "btrfs device item",
                    format!("the item of devid {} is truncated", k.offset),
                )),
            }
            if items.len() >= MAX_DEVICES.saturating_mul(16) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    if let Err(e) = got {
        t.problems
            .record(Problem::of("btrfs device items", e.to_string()));
    }
    for m in members {
        match items.iter().find(|d| d.devid == m.devid) {
            Some(d) if d.uuid != m.dev_uuid => t.problems.record(Problem::of(
                "btrfs device item",
                format!(
                    "devid {}: the chunk tree says device UUID {}, the device's superblock {}",
                    m.devid,
                    uuid_string(&d.uuid),
                    uuid_string(&m.dev_uuid)
                ),
            )),
            Some(_) => {}
            None if !items.is_empty() => t.problems.record(Problem::of(
                "btrfs device item",
                format!(
                    "devid {} (device UUID {}) has no device item in the chunk tree",
                    m.devid,
                    uuid_string(&m.dev_uuid)
                ),
            )),
            None => {}
        }
    }
    let mut notes = Vec::new();
    let expected = t.sb.num_devices;
    let this = given.map_or(t.sb.devid, |g| g.0);
    if expected > 1 || members.len() > 1 {
        let others: Vec<String> = members
            .iter()
            .filter(|m| m.devid != this)
            .map(|m| m.devid.to_string())
            .collect();
        notes.push(format!(
            "btrfs filesystem {} of {expected} devices: this volume is devid {this}; {}",
            uuid_string(&t.sb.fsid),
            if others.is_empty() {
                "no other device was found".to_string()
            } else {
                format!("devid {} opened with it", others.join(", "))
            }
        ));
    }
    if let Some((_, generation)) = given {
        notes.push(format!(
            "btrfs devid {} has the newest superblock (generation {}; this volume's is {generation}): the filesystem is read from it",
            t.sb.devid, t.sb.generation
        ));
    }
    let uuid_of = |devid: u64| items.iter().find(|d| d.devid == devid).map(|d| d.uuid);
    notes.extend(t.map.missing_report(&uuid_of));
    // Devices with no chunk on them that are missing cost nothing, but say so.
    for d in &items {
        let named = t
            .map
            .chunks()
            .iter()
            .any(|c| c.stripes.iter().any(|s| s.devid == d.devid));
        if !named && !t.map.has_device(d.devid) {
            notes.push(format!(
                "btrfs device devid {} (UUID {}) was not found; no chunk is stored on it",
                d.devid,
                uuid_string(&d.uuid)
            ));
        }
    }
    notes
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn dev_item_fields_and_truncation() {
        let mut d = vec![0u8; DEV_ITEM_LEN];
        d[0] = 2;
        d[8] = 1;
        d[66] = 0xaa;
        d[82] = 0xbb;
        let di = parse_dev_item(&d).unwrap();
        assert_eq!(di.devid, 2);
        assert_eq!(di.total_bytes, 1);
        assert_eq!(di.uuid[0], 0xaa);
        assert_eq!(di.fsid[0], 0xbb);
        assert!(parse_dev_item(&d[..97]).is_none());
    }
}
