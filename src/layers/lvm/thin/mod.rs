//! Thin LVs in userspace: each thin LV (`type = "thin"`, `thin_pool`,
//! `device_id`) is mapped onto its pool's data LV (`<pool>_tdata`) from the
//! pool's dm-thin metadata (`<pool>_tmeta`, read through its own mapping by
//! [`format`]).
//!
//! Runs of virtual blocks mapped to consecutive data blocks become linear
//! segments through the data LV's mapping ([`Mapping::ranges`]); blocks
//! without a mapping read as zeros ([`Target::Zero`]), as dm-thin returns
//! them; blocks whose btree nodes are damaged are
//! [`Target::Unreadable`] naming the metadata block. Thin snapshots are
//! other device ids of the same pool.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

pub mod format;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::LogicalVolume;
use super::assemble::unreadable_whole as unreadable;
use super::meta::{LvMeta, VgMeta};
use crate::io::{MappedView, Mapping, ReadAt, Segment, Target, Unmapped};
use crate::problem::Problem;
use crate::text::escape_str;
use format::{DeviceMap, Metadata, Superblock};

/// Most runs of mapped blocks kept per thin LV; the blocks past them read
/// as unreadable, with that reason.
const MAX_RUNS: usize = 1 << 20;

/// One thin pool's metadata, read once for all its thin LVs.
struct Pool {
    sb: Superblock,
    roots: BTreeMap<u64, u64>,
    /// Why device ids missing from `roots` may still have had mappings.
    top_damage: Option<String>,
    meta: Arc<dyn ReadAt>,
    data: Mapping,
}

fn field<'a>(lv: &'a LvMeta, name: &str) -> Option<&'a str> {
    lv.segments
        .first()
        .and_then(|s| s.refs.iter().find(|(k, _)| k == name))
        .map(|(_, v)| v.as_str())
}

/// Map every thin LV of `vg` (in `lvs`, already assembled) onto its pool's
/// data LV, reading the pool's metadata LV over `disks`. Without disks
/// (assembly from metadata alone) thin LVs stay unreadable.
pub(super) fn map_thin_lvs(
    vg: &VgMeta,
    lvs: &mut [LogicalVolume],
    disks: &[Arc<dyn ReadAt>],
    problems: &mut Vec<Problem>,
) {
    if disks.is_empty() {
        return;
    }
    let mut pools: BTreeMap<String, Result<Pool, String>> = BTreeMap::new();
    for lv in &vg.lvs {
        let [seg] = lv.segments.as_slice() else {
            continue;
        };
        if seg.segtype != "thin" {
            continue;
        }
        let Some(pool_name) = field(lv, "thin_pool") else {
            continue;
        };
        let pool = pools
            .entry(pool_name.to_string())
            .or_insert_with(|| open_pool(vg, pool_name, lvs, disks, problems));
        let Some(out) = lvs.iter_mut().find(|l| l.name == lv.name) else {
            continue;
        };
        let mapping = match (pool, seg.device_id) {
            (Err(reason), _) => unreadable(out.size, reason.clone()),
            (Ok(_), None) => unreadable(out.size, "thin LV without a device_id".to_string()),
            (Ok(pool), Some(id)) => match pool.roots.get(&id) {
                None => {
                    let mut reason = format!(
                        "thin device {id} is not in the metadata of pool {}",
                        escape_str(pool_name)
                    );
                    if let Some(d) = &pool.top_damage {
                        reason.push_str(&format!(" (damaged: {d})"));
                    }
                    unreadable(out.size, reason)
                }
                Some(&root) => {
                    let md = Metadata::new(&*pool.meta);
                    let map = md.device_map(id, root, MAX_RUNS);
                    for d in &map.damage {
                        problems.push(Problem::of(
                            format!("thin LV {}", escape_str(&lv.name)),
                            d.reason.clone(),
                        ));
                    }
                    thin_mapping(out.size, &pool.sb, &map, &pool.data)
                }
            },
        };
        out.mapping = mapping;
    }
}

/// Read a pool's superblock and top-level tree, or say why its thin LVs
/// cannot be read.
fn open_pool(
    vg: &VgMeta,
    name: &str,
    lvs: &[LogicalVolume],
    disks: &[Arc<dyn ReadAt>],
    problems: &mut Vec<Problem>,
) -> Result<Pool, String> {
    let pool_words = format!("thin pool {}", escape_str(name));
    let meta_lv = vg
        .lvs
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| format!("{pool_words} is not in the VG"))?;
    let seg = match meta_lv.segments.as_slice() {
        [s] if s.segtype == "thin-pool" => s,
        _ => return Err(format!("{pool_words} is not a single thin-pool segment")),
    };
    let tmeta =
        field(meta_lv, "metadata").ok_or_else(|| format!("{pool_words} has no metadata LV"))?;
    let tdata = seg
        .areas
        .first()
        .map(|a| a.name.as_str())
        .ok_or_else(|| format!("{pool_words} has no data LV"))?;
    let find = |n: &str| {
        lvs.iter()
            .find(|l| l.name == n)
            .ok_or_else(|| format!("{pool_words}: its LV {} is not in the VG", escape_str(n)))
    };
    let (tmeta_lv, tdata_lv) = (find(tmeta)?, find(tdata)?);
    if let Some(r) = tmeta_lv.mapping.unreadable().first() {
        return Err(format!(
            "{pool_words}: its metadata LV {} is unreadable: {r}",
            escape_str(tmeta)
        ));
    }
    let meta: Arc<dyn ReadAt> = Arc::new(MappedView::new(tmeta_lv.mapping.clone(), disks.to_vec()));
    let md = Metadata::new(&*meta);
    let sb = match md.superblock() {
        Ok(sb) => sb,
        Err(e) => {
            if blank(&*meta) {
                return Err(format!(
                    "{pool_words}: its metadata LV {} is blank (the pool was never activated)",
                    escape_str(tmeta)
                ));
            }
            let reason = format!("{pool_words}: metadata LV {}: {e}", escape_str(tmeta));
            problems.push(Problem::text(reason.clone()));
            return Err(reason);
        }
    };
    if sb.needs_check() {
        problems.push(Problem::text(format!(
            "{pool_words}: the kernel flagged its metadata as needing thin_check"
        )));
    }
    if let Some(c) = seg.chunk_size
        && c != u64::from(sb.data_block_size)
    {
        problems.push(Problem::text(format!(
            "{pool_words}: chunk_size is {c} sectors in the LVM metadata but {} in the thin metadata; using the thin metadata's",
            sb.data_block_size
        )));
    }
    let (roots, damage) = md.device_roots(&sb);
    for d in &damage {
        problems.push(Problem::text(format!("{pool_words}: {}", d.reason)));
    }
    Ok(Pool {
        sb,
        roots,
        top_damage: damage.first().map(|d| d.reason.clone()),
        meta,
        data: tdata_lv.mapping.clone(),
    })
}

/// Whether the superblock block reads as zeros.
fn blank(src: &dyn ReadAt) -> bool {
    let mut b = vec![0u8; 4096];
    src.read_exact_at(0, &mut b).is_ok() && b.iter().all(|&x| x == 0)
}

/// Segments being built, merged where they continue each other.
struct Builder {
    segs: Vec<Segment>,
    at: u64,
}

impl Builder {
    fn push(&mut self, len: u64, target: Target) {
        if len == 0 {
            return;
        }
        if let Some(last) = self.segs.last_mut() {
            let joins = match (&last.target, &target) {
                (Target::Zero, Target::Zero) => true,
                (Target::Unreadable { reason: a }, Target::Unreadable { reason: b }) => a == b,
                (Target::Linear(a), Target::Linear(b)) => {
                    a.disk == b.disk && a.offset.checked_add(last.len) == Some(b.offset)
                }
                _ => false,
            };
            if joins {
                last.len = last.len.saturating_add(len);
                self.at = self.at.saturating_add(len);
                return;
            }
        }
        self.segs.push(Segment {
            start: self.at,
            len,
            target,
        });
        self.at = self.at.saturating_add(len);
    }
}

/// What a piece of the thin LV is, in virtual blocks.
enum Piece<'a> {
    Data(u64),
    Bad(&'a str),
}

/// The thin LV's mapping: `size` bytes, its runs through the data LV's
/// mapping `data`, zeros between them, damage unreadable.
fn thin_mapping(size: u64, sb: &Superblock, map: &DeviceMap, data: &Mapping) -> Mapping {
    let bs = sb.data_block_bytes();
    // (first block, blocks, piece), sorted by first block.
    let mut pieces: Vec<(u64, u64, Piece)> = map
        .runs
        .iter()
        .map(|r| (r.virt, r.len, Piece::Data(r.data)))
        .chain(map.damage.iter().map(|d| {
            (
                d.from,
                d.to.saturating_sub(d.from),
                Piece::Bad(d.reason.as_str()),
            )
        }))
        .collect();
    pieces.sort_by_key(|p| p.0);
    let mut b = Builder {
        segs: Vec::new(),
        at: 0,
    };
    for (first, count, piece) in pieces {
        let start = first.saturating_mul(bs).min(size);
        let end = first.saturating_add(count).saturating_mul(bs).min(size);
        // Overlaps (hostile metadata) are cut: what came first stays.
        let start = start.max(b.at);
        if start >= end {
            continue;
        }
        b.push(start.saturating_sub(b.at), Target::Zero);
        let len = end.saturating_sub(start);
        match piece {
            Piece::Bad(reason) => b.push(
                len,
                Target::Unreadable {
                    reason: format!("thin metadata damaged: {reason}"),
                },
            ),
            Piece::Data(d) => {
                // Block d of the run maps virtual block `first`.
                let skip = start.saturating_sub(first.saturating_mul(bs));
                through_data(&mut b, d, skip, len, bs, sb, data);
            }
        }
    }
    b.push(size.saturating_sub(b.at), Target::Zero);
    Mapping::new(b.segs).unwrap_or_else(|e| unreadable(size, format!("thin mapping: {e}")))
}

/// `len` bytes from byte `skip` of data block `d` onwards, through the data LV.
fn through_data(
    b: &mut Builder,
    d: u64,
    skip: u64,
    len: u64,
    bs: u64,
    sb: &Superblock,
    data: &Mapping,
) {
    let last_block = skip
        .saturating_add(len)
        .div_ceil(bs.max(1))
        .saturating_add(d);
    if last_block > sb.nr_data_blocks {
        b.push(
            len,
            Target::Unreadable {
                reason: format!(
                    "thin metadata maps data blocks up to {last_block}, past the pool's {} blocks",
                    sb.nr_data_blocks
                ),
            },
        );
        return;
    }
    let Some(off) = d.checked_mul(bs).and_then(|o| o.checked_add(skip)) else {
        b.push(
            len,
            Target::Unreadable {
                reason: format!("data block {d} lies past 2^64 bytes"),
            },
        );
        return;
    };
    // Linear runs, or windows of the data LV's array when it is raid.
    match data.pieces(off, len) {
        Ok(pieces) => {
            for (n, target) in pieces {
                b.push(n, target);
            }
        }
        // A range of the data LV that is not on a disk: go piece by piece
        // is not worth it; say why the whole run cannot be read.
        Err(Unmapped::Zero { .. }) => b.push(len, Target::Zero),
        Err(Unmapped::Unreadable { at, reason }) => b.push(
            len,
            Target::Unreadable {
                reason: format!("pool data LV byte {at}: {reason}"),
            },
        ),
    }
}

/// Parse pool metadata from arbitrary bytes as the fuzz target does: the
/// superblock, device details, and every device's mapping, without
/// checksums. Returns how many runs were found.
#[doc(hidden)]
pub fn fuzz_metadata(bytes: &[u8], checksums: bool) -> usize {
    let bytes = bytes.to_vec();
    let md = if checksums {
        Metadata::new(&bytes)
    } else {
        Metadata::ignoring_checksums(&bytes)
    };
    let Ok(sb) = md.superblock() else { return 0 };
    let _ = md.devices(&sb);
    let (roots, _) = md.device_roots(&sb);
    let mut n = 0usize;
    for (id, root) in roots.into_iter().take(64) {
        let map = md.device_map(id, root, 4096);
        let data = Mapping::new(vec![Segment {
            start: 0,
            len: sb
                .nr_data_blocks
                .saturating_mul(sb.data_block_bytes())
                .max(1),
            target: Target::Zero,
        }])
        .unwrap_or_default();
        let m = thin_mapping(1 << 30, &sb, &map, &data);
        n = n
            .saturating_add(map.runs.len())
            .saturating_add(m.segments().len());
    }
    n
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::format::{Damage, Run};
    use super::*;
    use crate::io::{Area, DiskId};

    const BS: u64 = 65536;

    fn sb(nr_data_blocks: u64) -> Superblock {
        Superblock {
            flags: 0,
            uuid: [0; 16],
            version: 2,
            time: 0,
            trans_id: 0,
            held_root: 0,
            nr_data_blocks,
            data_mapping_root: 1,
            device_details_root: 2,
            data_block_size: 128,
            metadata_block_size: 8,
            metadata_nr_blocks: 10,
        }
    }

    fn lin(offset: u64) -> Target {
        Target::Linear(Area {
            disk: DiskId(0),
            offset,
        })
    }

    /// Data LV: blocks 0–1 at byte 1 MiB of the disk, blocks 2–7 at 8 MiB.
    fn data() -> Mapping {
        Mapping::new(vec![
            Segment {
                start: 0,
                len: 2 * BS,
                target: lin(1 << 20),
            },
            Segment {
                start: 2 * BS,
                len: 6 * BS,
                target: lin(8 << 20),
            },
        ])
        .unwrap()
    }

    fn run(virt: u64, data: u64, len: u64) -> Run {
        Run {
            virt,
            data,
            len,
            time: 0,
        }
    }

    fn parts(m: &Mapping) -> Vec<(u64, u64, Target)> {
        m.segments()
            .iter()
            .map(|s| (s.start / BS, s.len, s.target.clone()))
            .collect()
    }

    #[test]
    fn runs_follow_the_data_lv_and_gaps_are_zeros() {
        let map = DeviceMap {
            runs: vec![run(1, 1, 2), run(3, 3, 1), run(6, 7, 1)],
            damage: vec![],
        };
        let m = thin_mapping(8 * BS, &sb(8), &map, &data());
        assert_eq!(
            parts(&m),
            vec![
                (0, BS, Target::Zero),
                // Data block 1, then blocks 2–3 in the data LV's next segment.
                (1, BS, lin((1 << 20) + BS)),
                (2, 2 * BS, lin(8 << 20)),
                (4, 2 * BS, Target::Zero),
                (6, BS, lin((8 << 20) + 5 * BS)),
                (7, BS, Target::Zero),
            ]
        );
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn a_pool_on_raid_reads_through_windows_of_the_array() {
        use crate::io::{Leg, Raid, RaidLevel};
        // Data LV: a raid1 of 8 blocks; leg 0 missing, leg 1 at byte 0 of disk 0.
        let disk: Vec<u8> = (0..8 * BS).map(|i| (i / BS * 16 + i % 7) as u8).collect();
        let legs = vec![
            Leg::missing("d_rimage_0", "its PV is missing"),
            Leg::new(
                "d_rimage_1",
                Mapping::linear(
                    Area {
                        disk: DiskId(0),
                        offset: 0,
                    },
                    8 * BS,
                ),
                0,
            ),
        ];
        let raid = Raid::new(RaidLevel::Raid1, 0, legs, 8 * BS).unwrap();
        let data = Mapping::new(vec![Segment {
            start: 0,
            len: 8 * BS,
            target: Target::Raid(Arc::new(raid)),
        }])
        .unwrap();
        let map = DeviceMap {
            runs: vec![run(0, 5, 2), run(3, 1, 1)],
            damage: vec![],
        };
        let m = thin_mapping(4 * BS, &sb(8), &map, &data);
        assert!(m.unreadable().is_empty(), "{m:?}");
        let v = MappedView::new(m, vec![Arc::new(disk.clone()) as Arc<dyn ReadAt>]);
        let mut got = vec![0u8; (4 * BS) as usize];
        v.read_exact_at(0, &mut got).unwrap();
        let blk = |b: u64| &disk[(b * BS) as usize..((b + 1) * BS) as usize];
        assert_eq!(&got[..(2 * BS) as usize], [blk(5), blk(6)].concat());
        assert!(
            got[(2 * BS) as usize..(3 * BS) as usize]
                .iter()
                .all(|&x| x == 0)
        );
        assert_eq!(&got[(3 * BS) as usize..], blk(1));
    }

    #[test]
    fn damage_overlaps_and_bad_blocks_are_unreadable() {
        let map = DeviceMap {
            // A run inside the damaged range and one past the pool's end.
            runs: vec![run(0, 0, 1), run(2, 0, 1), run(4, 7, 2)],
            damage: vec![Damage {
                from: 1,
                to: 3,
                reason: "node at block 9: bad checksum".into(),
            }],
        };
        // The LV ends halfway through block 5.
        let m = thin_mapping(5 * BS + 4096, &sb(8), &map, &data());
        let p = parts(&m);
        assert_eq!(p[0], (0, BS, lin(1 << 20)));
        assert!(
            matches!(&p[1], (1, l, Target::Unreadable { reason }) if *l == 2 * BS && reason.contains("block 9"))
        );
        assert_eq!(p[2], (3, BS, Target::Zero));
        assert!(
            matches!(&p[3], (4, l, Target::Unreadable { reason }) if *l == BS + 4096 && reason.contains("past the pool's 8 blocks")),
            "{p:?}"
        );
        assert_eq!(m.size(), 5 * BS + 4096);
        // Runs far past the LV's end and huge block numbers: still the LV's size.
        let map = DeviceMap {
            runs: vec![run(u64::MAX / 2, u64::MAX >> 24, u64::MAX)],
            damage: vec![],
        };
        let m = thin_mapping(3 * BS, &sb(8), &map, &data());
        assert_eq!(parts(&m), vec![(0, 3 * BS, Target::Zero)]);
    }
}
