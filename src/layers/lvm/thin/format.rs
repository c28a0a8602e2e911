//! dm-thin pool metadata, read-only: the superblock, the two-level data
//! mapping btree and the device details btree, as the kernel's
//! `dm-thin-metadata.c` and `persistent-data/dm-btree*.c` write them.
//!
//! Metadata blocks are 4 KiB. Every block read is checked: its checksum
//! (crc32c of bytes 4.. of the block, xor a per-structure constant), the
//! block number a btree node records for itself, its flags, entry counts
//! and value size, and that its keys are in order and inside the range its
//! parent gives it. A damaged node makes its key range *damaged* (a
//! [`Damage`]), and the rest of the tree is still read. Walks are bounded:
//! a block appearing twice in one tree is damage (a loop), depth and node
//! counts are capped.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::{BTreeMap, BTreeSet};

use crate::io::ReadAt;

/// Size of a metadata block (`THIN_METADATA_BLOCK_SIZE`).
pub const BLOCK_SIZE: u64 = 4096;
/// [`BLOCK_SIZE`] for buffers.
const BLOCK_BYTES: usize = 4096;
/// `THIN_SUPERBLOCK_MAGIC`.
pub const MAGIC: u64 = 27_022_010;
/// Xor'd into the superblock checksum (`SUPERBLOCK_CSUM_XOR`).
const SUPERBLOCK_CSUM_XOR: u32 = 160_774;
/// Xor'd into btree node checksums (`BTREE_CSUM_XOR`).
const BTREE_CSUM_XOR: u32 = 121_107;
/// `INTERNAL_NODE` in a node header's flags.
const INTERNAL_NODE: u32 = 1;
/// `LEAF_NODE` in a node header's flags.
const LEAF_NODE: u32 = 2;
/// Size of a btree node header.
const NODE_HEADER: usize = 32;
/// Size of `struct disk_device_details`.
pub const DEVICE_DETAILS_SIZE: usize = 24;
/// Deepest btree walked. A btree of 4 KiB nodes holding 2^64 keys is
/// less than 20 levels deep.
const MAX_DEPTH: usize = 32;
/// Most nodes read in one walk.
const MAX_NODES: usize = 1 << 22;
/// Largest data block the kernel accepts (`DATA_DEV_BLOCK_SIZE_MAX_SECTORS`, 1 GiB).
const MAX_DATA_BLOCK_SECTORS: u32 = 2_097_152;
/// `THIN_METADATA_NEEDS_CHECK_FLAG`.
const NEEDS_CHECK: u32 = 1;

/// The pool's superblock (`struct thin_disk_superblock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// `flags` (bit 0: `needs_check`).
    pub flags: u32,
    /// `uuid`.
    pub uuid: [u8; 16],
    /// `version` (1 or 2).
    pub version: u32,
    /// `time`: the pool's snapshot clock.
    pub time: u32,
    /// `trans_id`.
    pub trans_id: u64,
    /// `held_root` (a metadata snapshot), 0 when none.
    pub held_root: u64,
    /// `nr_blocks` of the data space map root: data blocks in the pool.
    pub nr_data_blocks: u64,
    /// `data_mapping_root`: the top-level mapping tree.
    pub data_mapping_root: u64,
    /// `device_details_root`.
    pub device_details_root: u64,
    /// `data_block_size`, in 512-byte sectors.
    pub data_block_size: u32,
    /// `metadata_block_size`, in sectors (8).
    pub metadata_block_size: u32,
    /// `metadata_nr_blocks`.
    pub metadata_nr_blocks: u64,
}

impl Superblock {
    /// Whether the kernel marked the metadata as needing `thin_check`.
    pub fn needs_check(&self) -> bool {
        self.flags & NEEDS_CHECK != 0
    }

    /// A data block's size in bytes.
    pub fn data_block_bytes(&self) -> u64 {
        u64::from(self.data_block_size).saturating_mul(512)
    }
}

/// A thin device's entry in the device details tree (`struct disk_device_details`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceDetails {
    /// The thin device id (the LV's `device_id`).
    pub dev_id: u64,
    /// `mapped_blocks`.
    pub mapped_blocks: u64,
    /// `transaction_id`.
    pub transaction_id: u64,
    /// `creation_time`.
    pub creation_time: u32,
    /// `snapshotted_time`.
    pub snapshotted_time: u32,
}

/// Consecutive virtual blocks mapped to consecutive data blocks with one
/// time stamp (what `thin_dump` prints as a `range_mapping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First virtual block.
    pub virt: u64,
    /// Its data block.
    pub data: u64,
    /// Number of blocks.
    pub len: u64,
    /// The time stamp of each mapping.
    pub time: u32,
}

/// Virtual blocks whose mapping could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// First block concerned.
    pub from: u64,
    /// One past the last block concerned (`u64::MAX`: to the end).
    pub to: u64,
    /// What is wrong, naming the metadata block.
    pub reason: String,
}

/// One thin device's mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMap {
    /// The mapped runs, by virtual block.
    pub runs: Vec<Run>,
    /// Key ranges whose btree nodes are damaged, in the order met.
    pub damage: Vec<Damage>,
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = at.checked_add(4).and_then(|e| b.get(at..e)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = at.checked_add(8).and_then(|e| b.get(at..e)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// `dm_bm_checksum`: crc32c seeded with all ones, not inverted at the
/// end, xor `xor`, over bytes 4.. of the block.
fn checksum(block: &[u8], xor: u32) -> u32 {
    !crc32c::crc32c(block.get(4..).unwrap_or_default()) ^ xor
}

/// The metadata device: 4 KiB blocks of a byte source, checksummed.
pub struct Metadata<'a> {
    src: &'a dyn ReadAt,
    nr_blocks: u64,
    /// Whether checksums are verified (off only for fuzzing).
    checksums: bool,
}

impl<'a> Metadata<'a> {
    /// The metadata in `src` (the pool's `_tmeta` LV).
    pub fn new(src: &'a dyn ReadAt) -> Metadata<'a> {
        Metadata {
            src,
            nr_blocks: src.size() / BLOCK_SIZE,
            checksums: true,
        }
    }

    /// The same without checksum checks, so fuzzing reaches the parsers.
    /// Never use it on real images.
    pub fn ignoring_checksums(src: &'a dyn ReadAt) -> Metadata<'a> {
        Metadata {
            checksums: false,
            ..Metadata::new(src)
        }
    }

    fn block(&self, nr: u64, xor: u32, what: &str) -> Result<Vec<u8>, String> {
        if nr >= self.nr_blocks {
            return Err(format!(
                "{what}: block {nr} is past the end of the metadata ({} blocks)",
                self.nr_blocks
            ));
        }
        let mut buf = vec![0u8; BLOCK_BYTES];
        let at = nr.saturating_mul(BLOCK_SIZE);
        self.src
            .read_exact_at(at, &mut buf)
            .map_err(|e| format!("{what} at block {nr}: {e}"))?;
        if self.checksums {
            let stored = le32(&buf, 0);
            let want = checksum(&buf, xor);
            if stored != want {
                return Err(format!(
                    "{what} at block {nr} (byte {at}): bad checksum {stored:#010x}, expected {want:#010x}"
                ));
            }
        }
        Ok(buf)
    }

    /// The superblock at block 0, checked.
    pub fn superblock(&self) -> Result<Superblock, String> {
        let b = self.block(0, SUPERBLOCK_CSUM_XOR, "thin superblock")?;
        let magic = le64(&b, 32);
        if magic != MAGIC {
            return Err(format!(
                "thin superblock at block 0: magic is {magic}, expected {MAGIC}"
            ));
        }
        let mut uuid = [0u8; 16];
        if let Some(s) = b.get(16..32) {
            uuid.copy_from_slice(s);
        }
        let sb = Superblock {
            flags: le32(&b, 4),
            uuid,
            version: le32(&b, 40),
            time: le32(&b, 44),
            trans_id: le64(&b, 48),
            held_root: le64(&b, 56),
            nr_data_blocks: le64(&b, 64),
            data_mapping_root: le64(&b, 320),
            device_details_root: le64(&b, 328),
            data_block_size: le32(&b, 336),
            metadata_block_size: le32(&b, 340),
            metadata_nr_blocks: le64(&b, 344),
        };
        let blocknr = le64(&b, 8);
        if blocknr != 0 {
            return Err(format!(
                "thin superblock at block 0: it says it is block {blocknr}"
            ));
        }
        if !(1..=2).contains(&sb.version) {
            return Err(format!(
                "thin superblock: version {} is not supported (1 or 2)",
                sb.version
            ));
        }
        let incompat = le32(&b, 360);
        if incompat != 0 {
            return Err(format!(
                "thin superblock: unknown incompatible features {incompat:#x}"
            ));
        }
        if sb.data_block_size == 0 || sb.data_block_size > MAX_DATA_BLOCK_SECTORS {
            return Err(format!(
                "thin superblock: data block size of {} sectors",
                sb.data_block_size
            ));
        }
        if sb.metadata_block_size != 8 {
            return Err(format!(
                "thin superblock: metadata block size of {} sectors (expected 8)",
                sb.metadata_block_size
            ));
        }
        Ok(sb)
    }

    /// Walk the btree at `root`, giving each leaf entry (key, value bytes)
    /// in key order to `visit`, for keys in `lo..hi`. Damaged subtrees are
    /// returned as key ranges.
    fn walk(
        &self,
        root: u64,
        value_size: usize,
        what: &str,
        visit: &mut dyn FnMut(u64, &[u8]),
    ) -> Vec<Damage> {
        let mut damage = Vec::new();
        let mut seen: BTreeSet<u64> = BTreeSet::new();
        // (block, depth, lo, hi): keys of the subtree lie in lo..hi.
        let mut stack: Vec<(u64, usize, u64, u64)> = vec![(root, 0, 0, u64::MAX)];
        let mut nodes = 0usize;
        while let Some((nr, depth, lo, hi)) = stack.pop() {
            let mut hurt = |reason: String| {
                damage.push(Damage {
                    from: lo,
                    to: hi,
                    reason,
                })
            };
            nodes = nodes.saturating_add(1);
            if nodes > MAX_NODES {
                hurt(format!("{what}: more than {MAX_NODES} nodes"));
                // Everything still pending is unread.
                for (_, _, lo, hi) in stack.drain(..) {
                    damage.push(Damage {
                        from: lo,
                        to: hi,
                        reason: format!("{what}: more than {MAX_NODES} nodes"),
                    });
                }
                break;
            }
            if !seen.insert(nr) {
                hurt(format!(
                    "{what}: block {nr} appears twice in the tree (a loop)"
                ));
                continue;
            }
            let b = match self.block(nr, BTREE_CSUM_XOR, what) {
                Ok(b) => b,
                Err(e) => {
                    hurt(e);
                    continue;
                }
            };
            let node = match Node::parse(&b, nr, value_size) {
                Ok(n) => n,
                Err(e) => {
                    hurt(format!("{what} node at block {nr}: {e}"));
                    continue;
                }
            };
            // Keys strictly increasing, inside lo..hi.
            let mut prev: Option<u64> = None;
            let mut bad = None;
            for i in 0..node.nr_entries {
                let k = node.key(&b, i);
                if k < lo || k >= hi || prev.is_some_and(|p| k <= p) {
                    bad = Some((i, k));
                    break;
                }
                prev = Some(k);
            }
            if let Some((i, k)) = bad {
                hurt(format!(
                    "{what} node at block {nr}: key {i} ({k}) is out of order or outside {lo}..{hi}"
                ));
                continue;
            }
            if node.internal {
                if depth >= MAX_DEPTH {
                    hurt(format!(
                        "{what} node at block {nr}: deeper than {MAX_DEPTH} levels"
                    ));
                    continue;
                }
                // Children pushed last-first so they pop in key order.
                for i in (0..node.nr_entries).rev() {
                    let child_lo = node.key(&b, i);
                    let child_hi = match i.checked_add(1) {
                        Some(j) if j < node.nr_entries => node.key(&b, j),
                        _ => hi,
                    };
                    let child = le64(node.value(&b, i), 0);
                    // The first child also covers lo..key[0] for lookups;
                    // its keys start at key[0] all the same.
                    let child_lo = if i == 0 { lo.min(child_lo) } else { child_lo };
                    stack.push((child, depth.saturating_add(1), child_lo, child_hi));
                }
            } else {
                for i in 0..node.nr_entries {
                    visit(node.key(&b, i), node.value(&b, i));
                }
            }
        }
        damage
    }

    /// The top-level mapping tree: thin device id → root of its tree.
    pub fn device_roots(&self, sb: &Superblock) -> (BTreeMap<u64, u64>, Vec<Damage>) {
        let mut roots = BTreeMap::new();
        let damage = self.walk(
            sb.data_mapping_root,
            8,
            "thin mapping tree (top level)",
            &mut |k, v| {
                roots.insert(k, le64(v, 0));
            },
        );
        (roots, damage)
    }

    /// The device details tree.
    pub fn devices(&self, sb: &Superblock) -> (Vec<DeviceDetails>, Vec<Damage>) {
        let mut out = Vec::new();
        let damage = self.walk(
            sb.device_details_root,
            DEVICE_DETAILS_SIZE,
            "thin device details tree",
            &mut |k, v| {
                out.push(DeviceDetails {
                    dev_id: k,
                    mapped_blocks: le64(v, 0),
                    transaction_id: le64(v, 8),
                    creation_time: le32(v, 16),
                    snapshotted_time: le32(v, 20),
                })
            },
        );
        (out, damage)
    }

    /// The mappings of one thin device whose bottom-level tree is at `root`.
    /// At most `max_runs` runs are kept; the blocks past them are damage.
    pub fn device_map(&self, dev_id: u64, root: u64, max_runs: usize) -> DeviceMap {
        let mut runs: Vec<Run> = Vec::new();
        let mut overflow: Option<u64> = None;
        let what = format!("thin mapping tree of device {dev_id}");
        let damage = self.walk(root, 8, &what, &mut |k, v| {
            if overflow.is_some() {
                return;
            }
            let raw = le64(v, 0);
            let data = raw >> 24;
            let time = u32::try_from(raw & 0xff_ffff).unwrap_or_default();
            if let Some(last) = runs.last_mut()
                && last.time == time
                && last.virt.checked_add(last.len) == Some(k)
                && last.data.checked_add(last.len) == Some(data)
            {
                last.len = last.len.saturating_add(1);
                return;
            }
            if runs.len() >= max_runs {
                overflow = Some(k);
                return;
            }
            runs.push(Run {
                virt: k,
                data,
                len: 1,
                time,
            });
        });
        let mut map = DeviceMap { runs, damage };
        if let Some(k) = overflow {
            map.damage.push(Damage {
                from: k,
                to: u64::MAX,
                reason: format!("{what}: more than {max_runs} runs of mapped blocks"),
            });
        }
        map
    }
}

/// A btree node header, checked against its block.
struct Node {
    internal: bool,
    nr_entries: usize,
    max_entries: usize,
    value_size: usize,
}

impl Node {
    fn parse(b: &[u8], nr: u64, leaf_value_size: usize) -> Result<Node, String> {
        let flags = le32(b, 4);
        let blocknr = le64(b, 8);
        let nr_entries = le32(b, 16);
        let max_entries = le32(b, 20);
        let value_size = le32(b, 24);
        if blocknr != nr {
            return Err(format!("it says it is block {blocknr}"));
        }
        let internal = match flags {
            INTERNAL_NODE => true,
            LEAF_NODE => false,
            f => return Err(format!("flags {f:#x} are neither internal nor leaf")),
        };
        let want = if internal { 8 } else { leaf_value_size };
        let value_size = usize::try_from(value_size).unwrap_or(usize::MAX);
        if value_size != want {
            return Err(format!("value size {value_size}, expected {want}"));
        }
        let max_entries = usize::try_from(max_entries).unwrap_or(usize::MAX);
        let nr_entries = usize::try_from(nr_entries).unwrap_or(usize::MAX);
        let fits = max_entries
            .checked_mul(value_size.saturating_add(8))
            .and_then(|n| n.checked_add(NODE_HEADER))
            .is_some_and(|n| n <= b.len());
        if !fits {
            return Err(format!(
                "{max_entries} entries of {value_size} bytes do not fit in a block"
            ));
        }
        if nr_entries > max_entries {
            return Err(format!("{nr_entries} entries but room for {max_entries}"));
        }
        if internal && nr_entries == 0 {
            return Err("internal node without entries".into());
        }
        Ok(Node {
            internal,
            nr_entries,
            max_entries,
            value_size,
        })
    }

    // Offsets below are within the block: checked in `parse` (i < nr_entries ≤ max_entries).
    fn key(&self, b: &[u8], i: usize) -> u64 {
        le64(b, NODE_HEADER.saturating_add(i.saturating_mul(8)))
    }

    fn value<'b>(&self, b: &'b [u8], i: usize) -> &'b [u8] {
        let start = NODE_HEADER
            .saturating_add(self.max_entries.saturating_mul(8))
            .saturating_add(i.saturating_mul(self.value_size));
        b.get(start..start.saturating_add(self.value_size))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    /// A metadata device built in memory, with valid checksums.
    struct Builder {
        blocks: Vec<Vec<u8>>,
    }

    impl Builder {
        fn new(n: usize) -> Builder {
            Builder {
                blocks: vec![vec![0u8; BLOCK_BYTES]; n],
            }
        }

        fn seal(&mut self, nr: usize, xor: u32) {
            let c = checksum(&self.blocks[nr], xor);
            self.blocks[nr][..4].copy_from_slice(&c.to_le_bytes());
        }

        fn superblock(&mut self, mapping_root: u64, details_root: u64) {
            let b = &mut self.blocks[0];
            b[32..40].copy_from_slice(&MAGIC.to_le_bytes());
            b[40..44].copy_from_slice(&2u32.to_le_bytes());
            b[64..72].copy_from_slice(&1000u64.to_le_bytes());
            b[320..328].copy_from_slice(&mapping_root.to_le_bytes());
            b[328..336].copy_from_slice(&details_root.to_le_bytes());
            b[336..340].copy_from_slice(&128u32.to_le_bytes());
            b[340..344].copy_from_slice(&8u32.to_le_bytes());
            self.seal(0, SUPERBLOCK_CSUM_XOR);
        }

        fn node(&mut self, nr: usize, internal: bool, vs: usize, entries: &[(u64, Vec<u8>)]) {
            let max = (4096 - 32) / (8 + vs);
            let b = &mut self.blocks[nr];
            b[4..8].copy_from_slice(&(if internal { 1u32 } else { 2 }).to_le_bytes());
            b[8..16].copy_from_slice(&(nr as u64).to_le_bytes());
            b[16..20].copy_from_slice(&(entries.len() as u32).to_le_bytes());
            b[20..24].copy_from_slice(&(max as u32).to_le_bytes());
            b[24..28].copy_from_slice(&(vs as u32).to_le_bytes());
            for (i, (k, v)) in entries.iter().enumerate() {
                b[32 + 8 * i..40 + 8 * i].copy_from_slice(&k.to_le_bytes());
                let at = 32 + 8 * max + vs * i;
                b[at..at + vs].copy_from_slice(v);
            }
            self.seal(nr, BTREE_CSUM_XOR);
        }

        fn bytes(&self) -> Vec<u8> {
            self.blocks.concat()
        }
    }

    fn v64(x: u64) -> Vec<u8> {
        x.to_le_bytes().to_vec()
    }

    fn map(data: u64, time: u64) -> Vec<u8> {
        v64(data << 24 | time)
    }

    /// Superblock; top tree (leaf) at 1: dev 1 → 2, dev 2 → 3; dev 1's
    /// tree: internal 2 over leaves 4, 5; dev 2: leaf 3; details at 6.
    fn sample() -> Builder {
        let mut m = Builder::new(8);
        m.superblock(1, 6);
        m.node(1, false, 8, &[(1, v64(2)), (2, v64(3))]);
        m.node(2, true, 8, &[(0, v64(4)), (100, v64(5))]);
        m.node(
            4,
            false,
            8,
            &[
                (0, map(10, 0)),
                (1, map(11, 0)),
                (2, map(12, 0)),
                (5, map(20, 1)),
            ],
        );
        m.node(5, false, 8, &[(100, map(13, 1)), (101, map(14, 1))]);
        m.node(3, false, 8, &[(7, map(99, 0))]);
        let mut d = vec![0u8; 24];
        d[0..8].copy_from_slice(&6u64.to_le_bytes());
        d[16..20].copy_from_slice(&3u32.to_le_bytes());
        m.node(6, false, 24, &[(1, d.clone()), (2, d)]);
        m
    }

    #[test]
    fn reads_the_two_level_tree() {
        let bytes = sample().bytes();
        let md = Metadata::new(&bytes);
        let sb = md.superblock().unwrap();
        assert_eq!(sb.data_block_size, 128);
        assert_eq!(sb.nr_data_blocks, 1000);
        let (roots, dmg) = md.device_roots(&sb);
        assert!(dmg.is_empty());
        assert_eq!(roots.into_iter().collect::<Vec<_>>(), vec![(1, 2), (2, 3)]);
        let m = md.device_map(1, 2, 100);
        assert!(m.damage.is_empty(), "{:?}", m.damage);
        let r = |virt, data, len, time| Run {
            virt,
            data,
            len,
            time,
        };
        assert_eq!(
            m.runs,
            vec![r(0, 10, 3, 0), r(5, 20, 1, 1), r(100, 13, 2, 1)]
        );
        let (devs, dmg) = md.devices(&sb);
        assert!(dmg.is_empty());
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[0].mapped_blocks, 6);
        assert_eq!(devs[0].creation_time, 3);
        // Capped runs: the rest is damage.
        let m = md.device_map(1, 2, 1);
        assert_eq!(m.runs.len(), 1);
        assert_eq!(m.damage[0].from, 5);
    }

    #[test]
    fn damage_names_the_block_and_key_range() {
        let mut m = sample();
        m.blocks[5][100] ^= 1;
        let bytes = m.bytes();
        let md = Metadata::new(&bytes);
        let d = md.device_map(1, 2, 100);
        assert_eq!(d.runs.len(), 2);
        assert_eq!(d.damage.len(), 1);
        assert_eq!((d.damage[0].from, d.damage[0].to), (100, u64::MAX));
        assert!(
            d.damage[0].reason.contains("block 5"),
            "{}",
            d.damage[0].reason
        );
        assert!(d.damage[0].reason.contains("bad checksum"));
        // A bad superblock is an error.
        let mut m = sample();
        m.blocks[0][200] ^= 1;
        let bytes = m.bytes();
        assert!(
            Metadata::new(&bytes)
                .superblock()
                .unwrap_err()
                .contains("checksum")
        );
    }

    #[test]
    fn loops_and_wrong_block_numbers_end() {
        let mut m = sample();
        // Leaf 4 replaced by an internal node pointing back to 2.
        m.node(4, true, 8, &[(0, v64(2))]);
        // Node 5 claims to be another block.
        m.blocks[5][8] = 9;
        m.seal(5, BTREE_CSUM_XOR);
        let bytes = m.bytes();
        let md = Metadata::new(&bytes);
        let d = md.device_map(1, 2, 100);
        assert!(d.runs.is_empty());
        let reasons: Vec<&str> = d.damage.iter().map(|d| d.reason.as_str()).collect();
        assert!(reasons.iter().any(|r| r.contains("twice")), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("says it is block 9")),
            "{reasons:?}"
        );
        // A root past the end.
        assert!(
            md.device_map(1, 1 << 40, 10).damage[0]
                .reason
                .contains("past the end")
        );
    }

    #[test]
    fn fuzz_like_garbage_does_not_panic() {
        let mut bytes = sample().bytes();
        for i in (0..bytes.len()).step_by(37) {
            bytes[i] = bytes[i].wrapping_mul(31).wrapping_add(7);
        }
        let md = Metadata::ignoring_checksums(&bytes);
        if let Ok(sb) = md.superblock() {
            let (roots, _) = md.device_roots(&sb);
            for (id, root) in roots {
                md.device_map(id, root, 1000);
            }
            md.devices(&sb);
        }
    }
}
