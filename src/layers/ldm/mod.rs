//! Windows dynamic disks (LDM, the Logical Disk Manager).
//!
//! A dynamic disk is marked by an MBR partition of type 0x42 or, on GPT, by
//! the "LDM metadata" and "LDM data" partitions. Every member disk of a
//! disk group holds a copy of the group's database ([`db`]); the newest
//! copy (highest committed sequence) describes the volumes. Each volume
//! becomes a volume of the layout named as `ldmtool` names its
//! device-mapper device (`ldm_vol_<group>_<volume>`), with a `Mapping` of
//! linear segments (simple and spanned volumes), a striped segment
//! (striped volumes) or the first complete copy (mirrored volumes).
//! RAID-5 volumes are listed as unreadable.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

pub mod db;

use crate::io::{Area, DiskId, Mapping, Segment, Target};
use crate::layers::partition::{PartType, Table};
use crate::problem::Problem;

pub use db::{Anchor, Database, LdmDisk};

/// The GPT type of the LDM metadata partition.
pub const GPT_LDM_METADATA: &str = "5808c8aa-7e8f-42e0-85d2-e1e90434cfb3";
/// The GPT type of the LDM data partition.
pub const GPT_LDM_DATA: &str = "af9b60a0-1431-4f62-bc68-3311714a69ad";
/// The MBR type of a dynamic disk's partition.
pub const MBR_LDM: u8 = 0x42;

/// Whether a partition table marks a dynamic disk, and where its first
/// PRIVHEAD is.
pub fn anchor(table: &Table) -> Option<Anchor> {
    if let Some(p) = table.partitions.iter().find(
        |p| matches!(&p.part_type, PartType::Gpt(g) if g.eq_ignore_ascii_case(GPT_LDM_METADATA)),
    ) {
        let last = p.end().checked_div(table.sector_size)?.checked_sub(1)?;
        return Some(Anchor::Gpt { last_lba: last });
    }
    table
        .partitions
        .iter()
        .any(|p| p.part_type == PartType::Mbr(MBR_LDM))
        .then_some(Anchor::Mbr)
}

/// Whether a partition belongs to a dynamic disk's own areas.
pub fn is_ldm_partition(t: &PartType) -> bool {
    match t {
        PartType::Mbr(b) => *b == MBR_LDM,
        PartType::Gpt(g) => {
            g.eq_ignore_ascii_case(GPT_LDM_METADATA) || g.eq_ignore_ascii_case(GPT_LDM_DATA)
        }
        PartType::Recovered(_) => false,
    }
}

/// A member disk found in the layout.
#[derive(Debug, Clone)]
pub struct Member {
    /// The layout's disk.
    pub disk: DiskId,
    /// Its name in messages (`disk0`).
    pub name: String,
    /// Sector size.
    pub sector_size: u64,
    /// Size in bytes.
    pub size: u64,
    /// What was read.
    pub ldm: LdmDisk,
}

/// A volume of a disk group, ready for the layout.
#[derive(Debug, Clone)]
pub struct LdmVolume {
    /// The disk group's name.
    pub group: String,
    /// The volume's name (`Volume1`).
    pub name: String,
    /// `simple`, `spanned`, `striped`, `mirrored` or `raid5`, as ldmtool says.
    pub layout: &'static str,
    /// Its drive letter hint.
    pub hint: Option<String>,
    /// Where its bytes are.
    pub mapping: Mapping,
    /// Damage found in its records.
    pub problems: Vec<Problem>,
    /// Facts worth knowing.
    pub notes: Vec<String>,
}

/// A disk group assembled from its members.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its GUID.
    pub guid: String,
    /// The member disk whose database was used.
    pub from: DiskId,
    /// Its volumes.
    pub volumes: Vec<LdmVolume>,
    /// Damage and disagreement between members.
    pub problems: Vec<Problem>,
}

/// Assemble the disk groups of `members` (their databases compared, the
/// newest used) into volumes with mappings onto the member disks.
pub fn assemble(members: &[Member]) -> Vec<Group> {
    let mut guids: Vec<&str> = Vec::new();
    for m in members {
        let g = m.ldm.privhead.disk_group_guid.as_str();
        if !guids.contains(&g) {
            guids.push(g);
        }
    }
    guids
        .into_iter()
        .filter_map(|guid| assemble_group(guid, members))
        .collect()
}

fn assemble_group(guid: &str, all: &[Member]) -> Option<Group> {
    let members: Vec<&Member> = all
        .iter()
        .filter(|m| m.ldm.privhead.disk_group_guid == guid)
        .collect();
    let newest = members
        .iter()
        .filter_map(|m| m.ldm.db.as_ref().map(|d| (*m, d)))
        .max_by_key(|(m, d)| (d.committed_seq, std::cmp::Reverse(m.disk)))?;
    let (from, database) = newest;
    let mut problems = Vec::new();
    for m in &members {
        if let Some(d) = &m.ldm.db
            && d.committed_seq != database.committed_seq
        {
            problems.push(Problem::of(
                format!("LDM database on {}", m.name),
                format!(
                    "committed sequence {} differs from {}'s {}: {}'s (the newest) is used",
                    d.committed_seq, from.name, database.committed_seq, from.name
                ),
            ));
        }
    }
    let name = database
        .group_name
        .clone()
        .unwrap_or_else(|| from.ldm.privhead.disk_group_name.clone());
    let volumes = database
        .volumes
        .iter()
        .map(|v| map_volume(v, database, &members, &name))
        .collect();
    Some(Group {
        name,
        guid: guid.to_string(),
        from: from.disk,
        volumes,
        problems,
    })
}

/// Where a partition record's bytes are: its disk and byte offset, or why not.
fn place(p: &db::PartRec, d: &Database, members: &[&Member]) -> Result<(Area, u64), String> {
    let disk = d.disks.iter().find(|r| r.id == p.disk).ok_or_else(|| {
        format!(
            "partition {} names disk record {}, which does not exist",
            p.name, p.disk
        )
    })?;
    let m = members
        .iter()
        .find(|m| m.ldm.privhead.disk_guid == disk.guid)
        .ok_or_else(|| {
            format!(
                "disk {} ({}) holding partition {} is missing: open it too (--disk)",
                disk.name, disk.guid, p.name
            )
        })?;
    let ph = &m.ldm.privhead;
    let ss = m.sector_size;
    let out_of_range = || {
        format!(
            "partition {} (LDM VBLK at byte {}) lies at sectors {}+{} of {}'s data area, which holds {} sectors",
            p.name, p.at, p.start, p.size, m.name, ph.logical_disk_size
        )
    };
    let end = p.start.checked_add(p.size).ok_or_else(out_of_range)?;
    if end > ph.logical_disk_size {
        return Err(out_of_range());
    }
    let offset = ph
        .logical_disk_start
        .checked_add(p.start)
        .and_then(|s| s.checked_mul(ss))
        .ok_or_else(out_of_range)?;
    let len = p.size.checked_mul(ss).ok_or_else(out_of_range)?;
    if offset.checked_add(len).is_none_or(|e| e > m.size) {
        return Err(format!(
            "partition {} (LDM VBLK at byte {}) ends past the end of {} ({} bytes)",
            p.name, p.at, m.name, m.size
        ));
    }
    Ok((
        Area {
            disk: m.disk,
            offset,
        },
        len,
    ))
}

fn map_volume(v: &db::VolRec, d: &Database, members: &[&Member], group: &str) -> LdmVolume {
    let ss = members.first().map_or(512, |m| m.sector_size);
    let mut out = LdmVolume {
        group: group.to_string(),
        name: v.name.clone(),
        layout: "simple",
        hint: v.hint.clone(),
        mapping: Mapping::default(),
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let size = v.size.saturating_mul(ss);
    let unreadable = |reason: String| {
        Mapping::new(vec![Segment {
            start: 0,
            len: size.max(1),
            target: Target::Unreadable { reason },
        }])
        .unwrap_or_default()
    };
    let comps: Vec<&db::CompRec> = d.comps.iter().filter(|c| c.parent == v.id).collect();
    if v.kind == 4 || comps.iter().any(|c| c.kind == 3) {
        out.layout = "raid5";
        out.mapping = unreadable("LDM RAID-5 volumes are not supported yet".into());
        return out;
    }
    if comps.len() as u64 != v.n_comps {
        out.problems.push(Problem::of(
            format!("LDM volume {}", v.name),
            format!("says {} components, {} found", v.n_comps, comps.len()),
        ));
    }
    if comps.len() > 1 {
        out.layout = "mirrored";
    }
    let mut reasons = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        let mut parts: Vec<&db::PartRec> = d.parts.iter().filter(|p| p.parent == c.id).collect();
        if parts.len() as u64 != c.n_parts {
            out.problems.push(Problem::of(
                format!("LDM volume {}", v.name),
                format!(
                    "component {} says {} partitions, {} found",
                    c.id,
                    c.n_parts,
                    parts.len()
                ),
            ));
        }
        let built = if c.kind == 1 {
            if comps.len() == 1 {
                out.layout = "striped";
            }
            parts.sort_by_key(|p| p.index);
            striped(c, &parts, d, members, ss)
        } else {
            if comps.len() == 1 && parts.len() > 1 {
                out.layout = "spanned";
            }
            parts.sort_by_key(|p| p.vol_offset);
            spanned(&parts, d, members, ss)
        };
        match built {
            Ok(m) => {
                if m.size() != size {
                    out.problems.push(Problem::of(
                        format!("LDM volume {}", v.name),
                        format!(
                            "its partitions hold {} bytes, the volume record says {size}",
                            m.size()
                        ),
                    ));
                }
                if comps.len() > 1 {
                    out.notes.push(format!(
                        "mirrored volume: read from copy {} of {} (the copies are not compared)",
                        i.saturating_add(1),
                        comps.len()
                    ));
                }
                out.mapping = m;
                return out;
            }
            Err(e) => reasons.push(e),
        }
    }
    if reasons.is_empty() {
        reasons.push("it has no component".into());
    }
    for r in &reasons {
        out.problems
            .push(Problem::of(format!("LDM volume {}", v.name), r.clone()));
    }
    out.mapping = unreadable(reasons.join("; "));
    out
}

fn spanned(
    parts: &[&db::PartRec],
    d: &Database,
    members: &[&Member],
    ss: u64,
) -> Result<Mapping, String> {
    let mut segments = Vec::new();
    let mut next = 0u64;
    for p in parts {
        let (area, len) = place(p, d, members)?;
        let start = p
            .vol_offset
            .checked_mul(ss)
            .ok_or("volume offset overflows")?;
        if start != next {
            return Err(format!(
                "partition {} (LDM VBLK at byte {}) starts at volume byte {start}, the previous ones end at {next}",
                p.name, p.at
            ));
        }
        segments.push(Segment {
            start,
            len,
            target: Target::Linear(area),
        });
        next = start.checked_add(len).ok_or("volume size overflows")?;
    }
    Mapping::new(segments)
}

fn striped(
    c: &db::CompRec,
    parts: &[&db::PartRec],
    d: &Database,
    members: &[&Member],
    ss: u64,
) -> Result<Mapping, String> {
    let chunk_size = c
        .chunk_size
        .checked_mul(ss)
        .ok_or("stripe size overflows")?;
    let mut stripes = Vec::new();
    let mut each = None;
    for p in parts {
        let (area, len) = place(p, d, members)?;
        if each.is_some_and(|e| e != len) {
            return Err(format!(
                "striped partition {} (LDM VBLK at byte {}) differs in size from the others",
                p.name, p.at
            ));
        }
        each = Some(len);
        stripes.push(area);
    }
    let len = each
        .unwrap_or(0)
        .checked_mul(stripes.len() as u64)
        .ok_or("volume size overflows")?;
    Mapping::new(vec![Segment {
        start: 0,
        len,
        target: Target::Striped {
            chunk_size,
            stripes,
        },
    }])
}

/// The name of a volume, as ldmtool names its device-mapper device.
pub fn volume_name(group: &str, volume: &str) -> String {
    format!("ldm_vol_{group}_{volume}")
}

/// Read the LDM databases on `disks` (one level of the layout, or the
/// nested disks of one machine), assemble their disk groups and add the
/// volumes, named `<prefix>ldm_vol_…` where the prefix is `prefix` of the
/// group's first member disk in `disks`. The partitions that hold a dynamic
/// disk's areas are described as such and lose a filesystem the probe saw
/// at their start (it belongs to a volume that may go on elsewhere).
pub(super) fn scan(
    layout: &mut super::Layout,
    disks: &[DiskId],
    prefix: &dyn Fn(DiskId) -> String,
) {
    let mut members = Vec::new();
    for &id in disks {
        let Some(disk) = layout.disks.get_mut(id.0) else {
            continue;
        };
        let Some(table) = &disk.table else { continue };
        let Some(anchor) = anchor(table) else {
            continue;
        };
        let ss = table.sector_size;
        match db::read(&*disk.source, ss, anchor) {
            Ok(ldm) => {
                disk.problems
                    .extend(ldm.problems.iter().cloned().map(|p| p.within("LDM")));
                disk.format_details.push(format!(
                    "Windows dynamic disk (LDM {}.{}) of disk group {} ({})",
                    ldm.privhead.version.0,
                    ldm.privhead.version.1,
                    ldm.privhead.disk_group_name,
                    ldm.privhead.disk_group_guid
                ));
                members.push(Member {
                    disk: id,
                    name: disk.name.clone(),
                    sector_size: ss,
                    size: disk.size(),
                    ldm,
                });
            }
            Err(p) => disk.problems.push(p.within("LDM")),
        }
    }
    if members.is_empty() {
        return;
    }
    for g in assemble(&members) {
        if let Some(d) = layout.disks.get_mut(g.from.0) {
            d.problems.extend(g.problems.iter().cloned());
        }
        let first = members
            .iter()
            .find(|m| m.ldm.privhead.disk_group_guid == g.guid)
            .map_or(g.from, |m| m.disk);
        let prefix = prefix(first);
        for v in g.volumes {
            let name = format!("{prefix}{}", volume_name(&v.group, &v.name));
            let kind = super::VolumeKind::LdmVolume {
                group: v.group,
                volume: v.name,
                layout: v.layout.to_string(),
                hint: v.hint,
            };
            let id = super::push_volume(layout, name, kind, v.mapping);
            let src = layout.open_volume(id);
            let Some(vol) = layout.volumes.get_mut(id.0) else {
                continue;
            };
            let unreadable = vol.mapping.unreadable().join("; ");
            vol.content = if !unreadable.is_empty() {
                super::Content {
                    detail: Some(unreadable),
                    ..super::Content::new(super::ContentKind::Unreadable)
                }
            } else if vol.size() > 0 {
                super::probe::probe(&*src)
            } else {
                vol.content.clone()
            };
            vol.problems.extend(v.problems);
            vol.notes.extend(v.notes);
        }
    }
    for v in &mut layout.volumes {
        let super::VolumeKind::Partition { disk, entry, .. } = &v.kind else {
            continue;
        };
        if !disks.contains(disk) || !is_ldm_partition(&entry.part_type) {
            continue;
        }
        if !members.iter().any(|m| m.disk == *disk) {
            continue;
        }
        v.content = super::Content {
            detail: Some("Windows dynamic disk (LDM) area: its volumes are listed under it".into()),
            ..super::Content::new(super::ContentKind::Unknown)
        };
    }
}
