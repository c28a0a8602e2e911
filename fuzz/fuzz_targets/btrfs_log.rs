//! The btrfs log replay on arbitrary items: the input is a list of items,
//! each for the subvolume or for its log tree (objects 256..512, item types
//! from the ones the replay handles, short offsets so names, ranges and
//! extents meet), replayed in memory. Never a panic; the overlay holds only
//! items of the objects it replaces.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vmrescue::fs::btrfs::item::{id, ty};
use vmrescue::fs::btrfs::log::{DIR_LOG_INDEX, Obj, replay_items};
use vmrescue::fs::btrfs::sb::Key;

const TYPES: [u8; 9] = [
    ty::INODE_ITEM,
    ty::INODE_REF,
    ty::INODE_EXTREF,
    ty::XATTR_ITEM,
    ty::DIR_ITEM,
    ty::DIR_INDEX,
    ty::EXTENT_DATA,
    DIR_LOG_INDEX,
    ty::EXTENT_CSUM,
];

fuzz_target!(|data: &[u8]| {
    let mut fs: BTreeMap<Key, Vec<u8>> = BTreeMap::new();
    let mut log: BTreeMap<Key, Vec<u8>> = BTreeMap::new();
    let mut rest = data;
    while let Some((head, tail)) = rest.split_first_chunk::<6>() {
        let t = TYPES[usize::from(head[2]) % TYPES.len()];
        let objectid = if t == ty::EXTENT_CSUM {
            id::EXTENT_CSUM
        } else {
            256 + u64::from(head[1])
        };
        let offset = u64::from(u16::from_le_bytes([head[3], head[4]])) * 512;
        let len = (usize::from(head[5]) * 2).min(tail.len());
        let (d, tail) = tail.split_at(len);
        let key = Key::new(objectid, t, offset);
        if head[0] & 1 == 0 {
            fs.insert(key, d.to_vec());
        } else {
            log.insert(key, d.to_vec());
        }
        rest = tail;
    }
    let source = |ino: u64, cap: usize| -> vmrescue::Result<Obj> {
        let m: Obj = fs
            .range(Key::new(ino, 0, 0)..=Key::new(ino, u8::MAX, u64::MAX))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        if m.len() > cap {
            return Err(vmrescue::Error::Invalid("too many items".into()));
        }
        Ok(m)
    };
    let items: Vec<(Key, Vec<u8>)> = log.into_iter().collect();
    let mut csums = Vec::new();
    if let Ok(ov) = replay_items(&source, &items, 4096, &mut csums) {
        for k in ov.items.keys() {
            assert!(ov.ids.contains(&k.objectid));
        }
    }
});
