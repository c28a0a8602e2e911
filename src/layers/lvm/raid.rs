//! LVM raid and mirror LVs, read through the one RAID reader
//! ([`crate::io::Raid`]), and what the cache, writecache, VDO and
//! integrity segment types would need.
//!
//! A raid LV's segment names its images (`lv_rimage_N`) and their
//! metadata sub-LVs (`lv_rmeta_N`); each image is a leg whose mapping is
//! the image LV's own (already on the disks). dm-raid keeps a superblock
//! ([`DmRaidSuperblock`], "DmRd") at the start of every rmeta: the one
//! with the most `events` is the freshest, and its `failed_devices`
//! bitmap, each leg's `disk_recovery_offset` and events say which legs
//! are stale. The old `mirror` segment type reads its images as raid1.
//!
//! lvm2 type names map to MD levels and layouts as dm-raid's `raid_types`
//! table does: `raid4` is level 5 with parity on the first leg
//! (`ALGORITHM_PARITY_0`), `raid5` is `raid5_ls`, `raid6` is `raid6_zr`,
//! `raid10` is near copies (`data_copies`, default 2).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;

use super::LogicalVolume;
use super::meta::{LvMeta, SegMeta, VgMeta};
use crate::io::{Leg, MappedView, Mapping, ParityLayout, Raid, RaidLevel, ReadAt, Segment, Target};
use crate::problem::Problem;
use crate::text::escape_str;

/// dm-raid's superblock magic, "DmRd" read as a little-endian `u32`.
pub const DM_RAID_MAGIC: u32 = 0x6452_6D44;
/// `compat_features` bit: the v1.9.0 fields (reshape, data offsets) are there.
pub const FEATURE_FLAG_SUPPORTS_V190: u32 = 0x1;
/// `flags` bit: a reshape was under way.
pub const SB_FLAG_RESHAPE_ACTIVE: u32 = 0x1;
/// MD's "no offset" (`MaxSector`): in sync, nothing to resume.
const MAX_SECTOR: u64 = u64::MAX;
/// Bytes of the superblock read (one logical block).
pub const SUPERBLOCK_BYTES: usize = 512;

/// The dm-raid superblock at the start of an rmeta sub-LV (`struct
/// dm_raid_superblock`, `drivers/md/dm-raid.c`), little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmRaidSuperblock {
    /// `compat_features`.
    pub compat_features: u32,
    /// `num_devices`.
    pub num_devices: u32,
    /// `array_position`: this leg's place in the array.
    pub array_position: u32,
    /// `events`: bumped by MD on every superblock update.
    pub events: u64,
    /// `failed_devices` and, with v1.9.0, `extended_failed_devices`: bit
    /// *i* set when leg *i* failed.
    pub failed_devices: [u64; 4],
    /// `disk_recovery_offset`, in sectors: how far this leg was rebuilt
    /// (`u64::MAX`: in sync).
    pub disk_recovery_offset: u64,
    /// `array_resync_offset`, in sectors: how far the initial sync got
    /// (`u64::MAX`: done).
    pub array_resync_offset: u64,
    /// `level` (MD level: 0, 1, 5, 6, 10).
    pub level: u32,
    /// `layout` (MD layout number).
    pub layout: u32,
    /// `stripe_sectors`: the chunk size in sectors.
    pub stripe_sectors: u32,
    /// The v1.9.0 fields, when `compat_features` says they are there.
    pub v190: Option<DmRaidV190>,
    /// `incompat_features` (v1.9.0).
    pub incompat_features: u32,
}

/// The v1.9.0 extension of [`DmRaidSuperblock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmRaidV190 {
    /// `flags` ([`SB_FLAG_RESHAPE_ACTIVE`]).
    pub flags: u32,
    /// `reshape_position`, in sectors.
    pub reshape_position: u64,
    /// `new_level`.
    pub new_level: u32,
    /// `new_layout`.
    pub new_layout: u32,
    /// `new_stripe_sectors`.
    pub new_stripe_sectors: u32,
    /// `delta_disks`.
    pub delta_disks: u32,
    /// `array_sectors`: the array's size.
    pub array_sectors: u64,
    /// `data_offset`, in sectors: where data starts on the leg.
    pub data_offset: u64,
    /// `new_data_offset`, in sectors.
    pub new_data_offset: u64,
    /// `sectors`: the used size of the leg.
    pub sectors: u64,
}

fn le32(b: &[u8], at: usize) -> Result<u32, String> {
    crate::io::le::u32(b, at).ok_or_else(|| format!("dm-raid superblock cut short at byte {at}"))
}

fn le64(b: &[u8], at: usize) -> Result<u64, String> {
    crate::io::le::u64(b, at).ok_or_else(|| format!("dm-raid superblock cut short at byte {at}"))
}

impl DmRaidSuperblock {
    /// Decode the superblock from the first bytes of an rmeta sub-LV.
    /// `Ok(None)` when the magic is not there (a new or wiped leg).
    pub fn parse(b: &[u8]) -> Result<Option<DmRaidSuperblock>, String> {
        if le32(b, 0)? != DM_RAID_MAGIC {
            return Ok(None);
        }
        let compat_features = le32(b, 4)?;
        let v190 = compat_features & FEATURE_FLAG_SUPPORTS_V190 != 0;
        let mut failed_devices = [le64(b, 24)?, 0, 0, 0];
        let mut ext = None;
        let mut incompat_features = 0;
        if v190 {
            for (i, f) in failed_devices.iter_mut().enumerate().skip(1) {
                // extended_failed_devices[i - 1] at byte 120.
                *f = le64(b, 112usize.saturating_add(i.saturating_mul(8)))?;
            }
            incompat_features = le32(b, 144)?;
            ext = Some(DmRaidV190 {
                flags: le32(b, 60)?,
                reshape_position: le64(b, 64)?,
                new_level: le32(b, 72)?,
                new_layout: le32(b, 76)?,
                new_stripe_sectors: le32(b, 80)?,
                delta_disks: le32(b, 84)?,
                array_sectors: le64(b, 88)?,
                data_offset: le64(b, 96)?,
                new_data_offset: le64(b, 104)?,
                sectors: le64(b, 112)?,
            });
        }
        Ok(Some(DmRaidSuperblock {
            compat_features,
            num_devices: le32(b, 8)?,
            array_position: le32(b, 12)?,
            events: le64(b, 16)?,
            failed_devices,
            disk_recovery_offset: le64(b, 32)?,
            array_resync_offset: le64(b, 40)?,
            level: le32(b, 48)?,
            layout: le32(b, 52)?,
            stripe_sectors: le32(b, 56)?,
            v190: ext,
            incompat_features,
        }))
    }

    /// Whether this superblock records leg `pos` as failed.
    pub fn failed(&self, pos: usize) -> bool {
        let word = pos / 64;
        let bit = pos % 64;
        self.failed_devices
            .get(word)
            .is_some_and(|w| (w >> bit) & 1 == 1)
    }

    /// Whether a reshape was interrupted.
    pub fn reshaping(&self) -> bool {
        self.v190
            .as_ref()
            .is_some_and(|v| v.flags & SB_FLAG_RESHAPE_ACTIVE != 0)
    }
}

/// Parse a superblock from arbitrary bytes as the fuzz target does;
/// returns how many legs it marks failed.
#[doc(hidden)]
pub fn fuzz_superblock(bytes: &[u8]) -> usize {
    match DmRaidSuperblock::parse(bytes) {
        Ok(Some(sb)) => (0..256).filter(|&i| sb.failed(i)).count(),
        _ => 0,
    }
}

/// The MD level and layout of an lvm2 raid segment type, as dm-raid's
/// `raid_types` table gives them. `None` for types that are not raid.
pub fn md_level_layout(segtype: &str, data_copies: u32) -> Option<(u32, u32)> {
    let near = |n: u32| n | (1 << 8);
    Some(match segtype {
        "raid0" | "raid0_meta" => (0, 0),
        "raid1" | "mirror" => (1, 0),
        "raid10" | "raid10_near" => (10, near(data_copies)),
        "raid10_far" => (10, 1 | (data_copies << 8)),
        "raid10_offset" => (10, 1 | (data_copies << 8) | (1 << 16)),
        "raid4" | "raid5_0" => (5, 4),
        "raid5_n" => (5, 5),
        "raid5_la" => (5, 0),
        "raid5_ra" => (5, 1),
        "raid5" | "raid5_ls" => (5, 2),
        "raid5_rs" => (5, 3),
        "raid6" | "raid6_zr" => (6, 8),
        "raid6_nr" => (6, 9),
        "raid6_nc" => (6, 10),
        "raid6_n_6" => (6, 5),
        "raid6_la_6" => (6, 16),
        "raid6_ra_6" => (6, 17),
        "raid6_ls_6" => (6, 18),
        "raid6_rs_6" => (6, 19),
        "raid6_0_6" => (6, 20),
        _ => return None,
    })
}

/// The reader's level for an MD level and layout.
pub fn raid_level(level: u32, layout: u32) -> Option<RaidLevel> {
    Some(match level {
        0 => RaidLevel::Raid0,
        1 => RaidLevel::Raid1,
        4 => RaidLevel::Raid4,
        5 => RaidLevel::Raid5(ParityLayout::from_md(layout)?),
        6 => RaidLevel::Raid6(ParityLayout::from_md(layout)?),
        10 => {
            // MD raid10 layout: near copies in bits 0-7, far in 8-15,
            // offset in bit 16; bit 17 (far sets) is not read.
            if layout >> 17 != 0 {
                return None;
            }
            RaidLevel::Raid10 {
                near: layout & 0xff,
                far: (layout >> 8) & 0xff,
                offset: layout & (1 << 16) != 0,
            }
        }
        _ => return None,
    })
}

/// Whether the segment type is read by [`map_raid_lvs`].
pub(super) fn is_raid(segtype: &str) -> bool {
    md_level_layout(segtype, 2).is_some()
}

/// What a segment type that is neither striped nor raid would need, when
/// vmrescue knows: cache, writecache, VDO, integrity.
pub(super) fn unsupported(vg: &VgMeta, s: &SegMeta) -> Option<String> {
    let vgn = escape_str(&vg.name);
    let area = |i: usize| s.areas.get(i).map(|a| escape_str(&a.name));
    let field = |f: &str| {
        s.refs
            .iter()
            .find(|(k, _)| k == f)
            .map(|(_, v)| escape_str(v))
    };
    let origin = area(0).unwrap_or_else(|| "?".into());
    Some(match s.segtype.as_str() {
        "cache" => {
            let pool = field("cache_pool").unwrap_or_else(|| "?".into());
            format!(
                "cache LV ({} mode): blocks not yet written back live only in its cache {pool} (dm-cache metadata and cache blocks are not read); its origin {vgn}/{origin} holds the data as of the last writeback — open it with --volume {vgn}/{origin} (it may lack the newest writes)",
                cache_mode(vg, s).unwrap_or_else(|| "unknown".into())
            )
        }
        "writecache" => {
            let cache = field("writecache").unwrap_or_else(|| "?".into());
            format!(
                "writecache LV: writes not yet flushed from its cache volume {cache} are missing from its origin (dm-writecache's format is not read); the origin {vgn}/{origin} holds the data as of the last flush — open it with --volume {vgn}/{origin} (it may lack the newest writes)"
            )
        }
        "cache-pool" => format!(
            "cache pool: holds dm-cache metadata and cached blocks (data {origin}); it is read only through the cache LV that uses it"
        ),
        "vdo" => format!(
            "VDO LV: its blocks are deduplicated and compressed inside VDO pool {origin}; vmrescue does not read the VDO format — attach a copy of the disks to a host with dm-vdo and activate it read-only"
        ),
        "vdo-pool" => format!(
            "VDO pool: holds a VDO volume's data ({origin}) in the VDO format, which vmrescue does not read"
        ),
        "integrity" => {
            let meta = field("meta_dev").unwrap_or_else(|| "?".into());
            format!(
                "dm-integrity layer (checksums in {meta}) is not read; its data sub-LV {vgn}/{origin} holds the data without checksum verification — open it with --volume {vgn}/{origin}"
            )
        }
        _ => return None,
    })
}

/// The cache mode of a cache segment, from it or from its cache pool.
fn cache_mode(vg: &VgMeta, s: &SegMeta) -> Option<String> {
    if let Some(m) = &s.cache_mode {
        return Some(m.clone());
    }
    let pool = s.refs.iter().find(|(k, _)| k == "cache_pool")?;
    vg.lvs
        .iter()
        .find(|l| l.name == pool.1)?
        .segments
        .iter()
        .find_map(|p| p.cache_mode.clone())
}

/// Map every raid and mirror segment of `vg`'s LVs (already assembled in
/// `lvs`, their images mapped onto the disks) to a [`Target::Raid`],
/// reading the rmeta superblocks over `disks` (none: legs are judged by
/// their PVs alone). A cache LV in writethrough or passthrough mode reads
/// as its origin, which holds every write.
pub(super) fn map_raid_lvs(
    vg: &VgMeta,
    lvs: &mut [LogicalVolume],
    extent_bytes: u64,
    disks: &[Arc<dyn ReadAt>],
) {
    for lv in &vg.lvs {
        let raid_segs = lv.segments.iter().any(|s| is_raid(&s.segtype));
        let cache = match lv.segments.as_slice() {
            [s] if s.segtype == "cache" => Some(s),
            _ => None,
        };
        if !raid_segs && cache.is_none() {
            continue;
        }
        let Some(out_i) = lvs.iter().position(|l| l.name == lv.name) else {
            continue;
        };
        if let Some(s) = cache {
            map_cache(vg, s, lvs, out_i);
            continue;
        }
        let Some(out) = lvs.get(out_i) else { continue };
        let mut segs: Vec<Segment> = out.mapping.segments().to_vec();
        let mut notes = Vec::new();
        let mut problems = Vec::new();
        for s in lv.segments.iter().filter(|s| is_raid(&s.segtype)) {
            let Some(start) = s.start_extent.checked_mul(extent_bytes) else {
                continue;
            };
            let Some(seg) = segs.iter_mut().find(|m| m.start == start) else {
                continue;
            };
            let ctx = Build {
                lv,
                s,
                lvs,
                extent_bytes,
                disks,
            };
            seg.target = match ctx.raid(seg.len) {
                Ok((raid, n, p)) => {
                    notes.extend(n);
                    problems.extend(p);
                    Target::Raid(Arc::new(raid))
                }
                Err(reason) => Target::Unreadable { reason },
            };
        }
        let size = out.size;
        let mapping = Mapping::new(segs).unwrap_or_else(|e| {
            super::assemble::unreadable_whole(size, format!("raid mapping: {e}"))
        });
        if let Some(out) = lvs.get_mut(out_i) {
            out.mapping = mapping;
            out.notes.extend(notes);
            out.problems.extend(problems);
        }
    }
}

/// A cache LV whose cache never holds the only copy of a block reads as its origin.
fn map_cache(vg: &VgMeta, s: &SegMeta, lvs: &mut [LogicalVolume], out_i: usize) {
    let mode = cache_mode(vg, s);
    if !matches!(mode.as_deref(), Some("writethrough" | "passthrough")) {
        return;
    }
    let Some(origin) = s.areas.first() else {
        return;
    };
    let Some(o) = lvs.iter().find(|l| l.name == origin.name) else {
        return;
    };
    let (mapping, osize) = (o.mapping.clone(), o.size);
    if let Some(out) = lvs.get_mut(out_i)
        && osize == out.size
        && mapping.unreadable().is_empty()
    {
        out.mapping = mapping;
        out.notes.push(format!(
            "cache LV in {} mode: read from its origin {}, which holds every write (the cache is not read)",
            mode.unwrap_or_default(),
            escape_str(&origin.name)
        ));
    }
}

/// What one rmeta says about its leg.
enum Sb {
    /// No rmeta (raid0, mirror, "-").
    None,
    /// Could not be read.
    Unreadable(String),
    /// Read, no magic.
    Blank,
    Found(DmRaidSuperblock),
}

struct Build<'a> {
    lv: &'a LvMeta,
    s: &'a SegMeta,
    lvs: &'a [LogicalVolume],
    extent_bytes: u64,
    disks: &'a [Arc<dyn ReadAt>],
}

type Built = (Raid, Vec<String>, Vec<Problem>);

impl Build<'_> {
    fn find(&self, name: &str) -> Option<&LogicalVolume> {
        self.lvs.iter().find(|l| l.name == name)
    }

    fn superblock(&self, meta: Option<&String>) -> Sb {
        let Some(name) = meta else { return Sb::None };
        if self.disks.is_empty() {
            return Sb::None;
        }
        let Some(m) = self.find(name) else {
            return Sb::Unreadable(format!(
                "its metadata LV {} is not in the VG",
                escape_str(name)
            ));
        };
        if let Some(r) = m.mapping.unreadable().first() {
            return Sb::Unreadable(format!("its metadata LV {}: {r}", escape_str(name)));
        }
        let view = MappedView::new(m.mapping.clone(), self.disks.to_vec());
        let mut b = [0u8; SUPERBLOCK_BYTES];
        if let Err(e) = view.read_exact_at(0, &mut b) {
            return Sb::Unreadable(format!("its metadata LV {}: {e}", escape_str(name)));
        }
        match DmRaidSuperblock::parse(&b) {
            Ok(Some(sb)) => Sb::Found(sb),
            Ok(None) => Sb::Blank,
            Err(e) => Sb::Unreadable(format!("its metadata LV {}: {e}", escape_str(name))),
        }
    }

    /// The array of this segment, `len` bytes, with notes and problems.
    fn raid(&self, len: u64) -> Result<Built, String> {
        let s = self.s;
        let what = format!("{} segment", escape_str(&s.segtype));
        let n = s.areas.len();
        if n == 0 {
            return Err(format!("{what} without images"));
        }
        let mut problems: Vec<Problem> = Vec::new();
        let lvw = format!("LV {}", escape_str(&self.lv.name));
        let mut problem = |p: String| problems.push(Problem::of(lvw.clone(), p));
        if let Some(c) = s.raid.device_count.or(s.stripe_count)
            && c != n as u64
        {
            problem(format!(
                "{what}: device_count is {c} but {n} images are listed"
            ));
        }
        let copies = match s.raid.data_copies {
            Some(c) if c >= 2 => u32::try_from(c).unwrap_or(u32::MAX),
            _ => 2,
        };
        let (mut md_level, mut md_layout) =
            md_level_layout(&s.segtype, copies).ok_or_else(|| format!("{what} is not raid"))?;
        let sbs: Vec<Sb> = (0..n)
            .map(|i| self.superblock(s.raid_meta.get(i).and_then(Option::as_ref)))
            .collect();
        let freshest = sbs
            .iter()
            .enumerate()
            .filter_map(|(i, sb)| match sb {
                Sb::Found(sb) => Some((i, sb)),
                _ => None,
            })
            .max_by_key(|(i, sb)| (sb.events, std::cmp::Reverse(*i)));
        if let Some((_, f)) = freshest {
            if f.reshaping() {
                return Err(format!(
                    "{what}: dm-raid's superblock says a reshape was interrupted (at sector {}): the legs hold two layouts, which vmrescue does not read",
                    f.v190.as_ref().map_or(0, |v| v.reshape_position)
                ));
            }
            if md_level != 1 && (f.level, f.layout) != (md_level, md_layout) {
                if raid_level(f.level, f.layout).is_some() {
                    problem(format!(
                        "{what}: the dm-raid superblock says MD level {} layout {} (lvm2's type means level {md_level} layout {md_layout}); using the superblock's",
                        f.level, f.layout
                    ));
                    (md_level, md_layout) = (f.level, f.layout);
                } else {
                    problem(format!(
                        "{what}: the dm-raid superblock says MD level {} layout {}, which is not read; using lvm2's type",
                        f.level, f.layout
                    ));
                }
            }
        }
        let level = raid_level(md_level, md_layout)
            .ok_or_else(|| format!("{what}: MD level {md_level} layout {md_layout} is not read"))?;
        let mirror = s.segtype == "mirror";
        let chunk = if level == RaidLevel::Raid1 {
            0
        } else {
            let sectors = s
                .stripe_size
                .or_else(|| freshest.map(|(_, f)| u64::from(f.stripe_sectors)))
                .filter(|&z| z > 0)
                .ok_or_else(|| format!("{what} without a stripe_size"))?;
            if let Some((_, f)) = freshest
                && u64::from(f.stripe_sectors) != sectors
            {
                problem(format!(
                    "{what}: stripe_size is {sectors} sectors but the dm-raid superblock says {}",
                    f.stripe_sectors
                ));
            }
            sectors
                .checked_mul(512)
                .ok_or_else(|| format!("{what}: stripe_size {sectors} is too large"))?
        };
        // The legs, and why a leg is not read.
        let mut legs = Vec::with_capacity(n);
        let mut stale: Vec<(usize, String)> = Vec::new();
        for (i, (area, sb)) in s.areas.iter().zip(&sbs).enumerate() {
            let name = area.name.as_str();
            let Some(img) = self.find(name) else {
                legs.push(Leg::missing(
                    name,
                    format!("LV {} is not in the VG", escape_str(name)),
                ));
                continue;
            };
            let bad = img.mapping.unreadable();
            if !bad.is_empty() {
                legs.push(Leg::missing(name, bad.join("; ")));
                continue;
            }
            let base = if mirror {
                area.start.checked_mul(self.extent_bytes)
            } else {
                let sectors = match sb {
                    Sb::Found(DmRaidSuperblock { v190: Some(v), .. }) => v.data_offset,
                    _ => s.raid.data_offset.unwrap_or(0),
                };
                sectors.checked_mul(512)
            };
            let Some(base) = base else {
                legs.push(Leg::missing(name, "its data offset lies past 2^64 bytes"));
                continue;
            };
            legs.push(Leg::new(name, img.mapping.clone(), base));
            if level == RaidLevel::Raid0 {
                continue;
            }
            let why = match (sb, freshest) {
                (Sb::Blank, Some((fi, _))) => Some(format!(
                    "its dm-raid superblock is blank while {}'s is not: it was added or is to be rebuilt",
                    escape_str(s.areas.get(fi).map_or("", |a| a.name.as_str()))
                )),
                (Sb::Found(me), Some((fi, f))) => {
                    let other = escape_str(s.areas.get(fi).map_or("", |a| a.name.as_str()));
                    if f.failed(i) {
                        Some(format!(
                            "the freshest dm-raid superblock ({other}'s, events {}) marks it failed",
                            f.events
                        ))
                    } else if me.disk_recovery_offset != MAX_SECTOR {
                        Some(format!(
                            "it was being rebuilt and only its first {} sectors are in sync",
                            me.disk_recovery_offset
                        ))
                    } else if me.events < f.events {
                        Some(format!(
                            "its dm-raid superblock is older than {other}'s (events {} < {})",
                            me.events, f.events
                        ))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            let why = why.or_else(|| {
                img.status
                    .iter()
                    .any(|st| st == "REBUILD")
                    .then(|| "lvm2 marked it for rebuild (status REBUILD)".to_string())
            });
            if let Sb::Found(me) = sb
                && me.array_position as usize != i
            {
                problem(format!(
                    "leg {} says it is at position {} of the array, not {i}",
                    escape_str(name),
                    me.array_position
                ));
            }
            if let Sb::Unreadable(e) = sb {
                problem(format!(
                    "leg {}: the dm-raid superblock is unreadable: {e}",
                    escape_str(name)
                ));
            }
            if let Some(w) = why {
                stale.push((i, w));
            }
        }
        // Each leg holds the array's data from its offset to the end of its LV.
        let leg_len = legs
            .iter()
            .filter(|l| l.usable())
            .map(|l| {
                if mirror {
                    len
                } else {
                    l.mapping.size().saturating_sub(l.offset)
                }
            })
            .min()
            .unwrap_or(len);
        let build = |skip_stale: bool| -> Result<Raid, String> {
            let legs: Vec<Leg> = legs
                .iter()
                .enumerate()
                .map(|(i, l)| match stale.iter().find(|(j, _)| *j == i) {
                    Some((_, w)) if skip_stale => l.clone().unusable(w.clone()),
                    _ => l.clone(),
                })
                .collect();
            Raid::new(level, chunk, legs, leg_len)?.with_size(len)
        };
        let mut raid = build(true).map_err(|e| format!("{what}: {e}"))?;
        if raid.readable().is_err() && !stale.is_empty() {
            let with_stale = build(false).map_err(|e| format!("{what}: {e}"))?;
            if with_stale.readable().is_ok() {
                problem(format!(
                    "too few in-sync legs: reading stale legs too ({}): some data may be old",
                    stale
                        .iter()
                        .filter_map(|(i, _)| s.areas.get(*i).map(|a| escape_str(&a.name)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                raid = with_stale;
            }
        }
        let lines = raid.which_legs_used();
        let degraded = raid.legs().iter().any(|l| !l.usable());
        let mut notes = Vec::new();
        let mut rest = lines.into_iter();
        if let Some(first) = rest.next() {
            notes.push(first);
        }
        if degraded {
            for l in rest {
                problem(l);
            }
            if let Some((_, f)) = freshest
                && f.array_resync_offset != MAX_SECTOR
                && matches!(
                    level,
                    RaidLevel::Raid4 | RaidLevel::Raid5(_) | RaidLevel::Raid6(_)
                )
            {
                problem(format!(
                    "the array's initial sync had reached sector {} only: data rebuilt from parity past it may be wrong",
                    f.array_resync_offset
                ));
            }
        } else {
            notes.extend(rest);
        }
        if mirror && let Some((_, log)) = s.refs.iter().find(|(k, _)| k == "mirror_log") {
            notes.push(format!(
                "mirror log {} is not read: the first image is read first (regions a crash left out of sync may differ between images)",
                escape_str(log)
            ));
        }
        Ok((raid, notes, problems))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub(crate) mod tests {
    use super::*;

    /// A superblock as dm-raid's `super_sync` writes it.
    pub(crate) fn superblock(
        pos: u32,
        events: u64,
        failed: u64,
        level: u32,
        layout: u32,
    ) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(&DM_RAID_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&FEATURE_FLAG_SUPPORTS_V190.to_le_bytes());
        b[8..12].copy_from_slice(&3u32.to_le_bytes());
        b[12..16].copy_from_slice(&pos.to_le_bytes());
        b[16..24].copy_from_slice(&events.to_le_bytes());
        b[24..32].copy_from_slice(&failed.to_le_bytes());
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        b[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        b[48..52].copy_from_slice(&level.to_le_bytes());
        b[52..56].copy_from_slice(&layout.to_le_bytes());
        b[56..60].copy_from_slice(&8u32.to_le_bytes());
        b[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
        b[96..104].copy_from_slice(&0u64.to_le_bytes());
        b
    }

    #[test]
    fn superblock_fields() {
        let mut b = superblock(2, 17, 0b10, 5, 2);
        b[128..136].copy_from_slice(&1u64.to_le_bytes()); // extended_failed_devices[1]: legs 128..192
        let sb = DmRaidSuperblock::parse(&b).unwrap().unwrap();
        assert_eq!(sb.array_position, 2);
        assert_eq!(sb.events, 17);
        assert!(sb.failed(1) && !sb.failed(0) && !sb.failed(2));
        assert!(sb.failed(128));
        assert_eq!((sb.level, sb.layout, sb.stripe_sectors), (5, 2, 8));
        assert!(!sb.reshaping());
        assert_eq!(b"DmRd", &b[0..4]);
        assert_eq!(DmRaidSuperblock::parse(&[0u8; 512]).unwrap(), None);
        assert!(DmRaidSuperblock::parse(&b[..100]).is_err());
        assert_eq!(fuzz_superblock(&b), 2);
    }

    #[test]
    fn lvm_types_are_dm_raids_md_layouts() {
        assert_eq!(
            raid_level(5, md_level_layout("raid4", 2).unwrap().1),
            Some(RaidLevel::Raid5(ParityLayout::ParityFirst))
        );
        assert_eq!(
            raid_level(6, md_level_layout("raid6", 2).unwrap().1),
            Some(RaidLevel::Raid6(ParityLayout::RotatingZeroRestart))
        );
        assert_eq!(
            raid_level(10, md_level_layout("raid10", 3).unwrap().1),
            Some(RaidLevel::Raid10 {
                near: 3,
                far: 1,
                offset: false
            })
        );
        assert_eq!(raid_level(10, 1 << 17), None);
        assert!(!is_raid("thin") && is_raid("mirror") && is_raid("raid0_meta"));
    }
}
