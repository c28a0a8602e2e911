//! Volume groups from the PVs found on all disks: pick the newest metadata
//! of each VG, find its PVs by UUID, and map every LV segment onto the disks
//! exactly as lvm2 tells device-mapper to.
//!
//! A PV area starts at `PV start + pe_start × 512 + start_extent ×
//! extent_size × 512` (`pe_start` and `extent_size` are in sectors). A
//! `striped` segment of N stripes gives each stripe `extent_count / N`
//! extents and interleaves them in chunks of `stripe_size` sectors (the
//! device-mapper `striped` target); with one stripe it is `linear`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::meta::{self, LvMeta, PvMeta, SegMeta, VgMeta};
use super::{LogicalVolume, LvSegment, PvOnDisk, SegmentArea, VgPv, VolumeGroup, text};
use crate::io::{Area, Mapping, ReadAt, Segment, Target};
use crate::problem::Problem;
use crate::text::escape_str;

/// Most missing PVs listed for one LV.
const MAX_LISTED: usize = 32;

/// A UUID without its dashes, for comparing label and metadata spellings.
fn uuid_key(u: &str) -> String {
    u.chars().filter(|&c| c != '-').collect()
}

/// How a PV of the metadata is named in messages: `pv1 (uuid ..., last seen as /dev/sdb2)`.
fn pv_words(pm: &PvMeta) -> String {
    let mut s = format!("{} (uuid {}", escape_str(&pm.key), escape_str(&pm.id));
    if let Some(d) = &pm.device {
        s.push_str(&format!(", last seen as {}", escape_str(d)));
    }
    s.push(')');
    s
}

struct Candidate {
    pv: usize,
    vg: VgMeta,
    text: String,
}

/// Assemble volume groups from the PVs found on all disks (`disks`, by
/// [`crate::io::DiskId`], to read thin pool metadata; empty: thin LVs stay
/// unreadable).
pub(super) fn assemble(pvs: &[PvOnDisk], disks: &[Arc<dyn ReadAt>]) -> Vec<VolumeGroup> {
    // Group the readable metadata copies by VG UUID, in order of first sight.
    let mut groups: Vec<(String, Vec<Candidate>)> = Vec::new();
    for (i, pv) in pvs.iter().enumerate() {
        let Some(t) = &pv.scan.metadata else { continue };
        let Ok(vg) = text::parse(t.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|root| meta::decode(&root))
        else {
            // read_pv only keeps text that decodes; nothing to add here.
            continue;
        };
        let key = uuid_key(&vg.id);
        let cand = Candidate {
            pv: i,
            vg,
            text: t.clone(),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(cand),
            None => groups.push((key, vec![cand])),
        }
    }
    let mut out: Vec<VolumeGroup> = groups
        .iter()
        .map(|(_, cands)| build_vg(cands, pvs, disks))
        .collect();
    // Two VGs with one name (two guests' `pve`, a cloned disk): say so.
    for i in 0..out.len() {
        let clashes: Vec<String> = out
            .iter()
            .enumerate()
            .filter(|(j, g)| *j != i && g.name == out[i].name)
            .map(|(_, g)| escape_str(&g.uuid))
            .collect();
        if !clashes.is_empty() {
            let msg = format!(
                "another VG has the same name (uuid {}); volume names like {}/LV are ambiguous",
                clashes.join(", "),
                out[i].name
            );
            out[i].problems.push(msg.into());
        }
    }
    out
}

fn build_vg(cands: &[Candidate], pvs: &[PvOnDisk], disks: &[Arc<dyn ReadAt>]) -> VolumeGroup {
    let mut problems = Vec::new();
    // The newest copy; ties go to the first PV.
    let mut best = &cands[0];
    for c in cands {
        if c.vg.seqno > best.vg.seqno {
            best = c;
        }
    }
    for c in cands {
        if c.vg.seqno < best.vg.seqno {
            problems.push(
                format!(
                    "PV {} holds older metadata (seqno {}) than PV {} (seqno {}); using seqno {}",
                    pvs[c.pv].volume, c.vg.seqno, pvs[best.pv].volume, best.vg.seqno, best.vg.seqno
                )
                .into(),
            );
        } else if c.vg.seqno == best.vg.seqno && c.text != best.text && c.vg != best.vg {
            problems.push(
                format!(
                    "PV {} and PV {} hold different metadata with the same seqno {}; using PV {}'s",
                    pvs[c.pv].volume, pvs[best.pv].volume, best.vg.seqno, pvs[best.pv].volume
                )
                .into(),
            );
        }
    }
    let vg = &best.vg;
    let mut group = VolumeGroup {
        name: vg.name.clone(),
        uuid: vg.id.clone(),
        seqno: vg.seqno,
        extent_size: 0,
        extent_count: 0,
        free_count: 0,
        pvs: Vec::new(),
        lvs: Vec::new(),
        problems: Vec::new(),
    };
    let Some(extent_bytes) = vg.extent_size.checked_mul(512) else {
        problems.push(format!("extent_size {} sectors is too large", vg.extent_size).into());
        group.problems = problems;
        return group;
    };
    group.extent_size = extent_bytes;

    // The VG's PVs, found by UUID on any disk.
    let mut pv_bytes: Vec<Option<u64>> = Vec::new();
    for pm in &vg.pvs {
        let key = uuid_key(&pm.id);
        let hits: Vec<usize> = pvs
            .iter()
            .enumerate()
            .filter(|(_, p)| uuid_key(&p.scan.pv_uuid) == key)
            .map(|(i, _)| i)
            .collect();
        if hits.len() > 1 {
            let names: Vec<&str> = hits.iter().map(|&i| pvs[i].volume.as_str()).collect();
            problems.push(
                format!(
                    "PV {} was found {} times ({}); using {}",
                    pv_words(pm),
                    hits.len(),
                    names.join(", "),
                    names[0]
                )
                .into(),
            );
        }
        let found = hits.first().copied();
        let pe_start = pm.pe_start.checked_mul(512);
        if pe_start.is_none() {
            problems
                .push(format!("PV {}: pe_start {} is too large", pv_words(pm), pm.pe_start).into());
        }
        match found {
            Some(f) => {
                let need = pe_start.and_then(|s| {
                    pm.pe_count
                        .checked_mul(extent_bytes)
                        .and_then(|d| d.checked_add(s))
                });
                match need {
                    Some(n) if n <= pvs[f].size => {}
                    Some(n) => problems.push(format!(
                        "PV {} on {} is {} bytes but its metadata needs {n} (pe_start + {} extents): the image may be truncated",
                        escape_str(&pm.key),
                        pvs[f].volume,
                        pvs[f].size,
                        pm.pe_count
                    ).into()),
                    None => problems.push(Problem::of(format!("PV {}", escape_str(&pm.key)), format!("pe_count {} does not fit in 64 bits of bytes", pm.pe_count))),
                }
            }
            None => problems.push(format!("PV {} is missing", pv_words(pm)).into()),
        }
        pv_bytes.push(pe_start);
        group.pvs.push(VgPv {
            key: pm.key.clone(),
            uuid: pm.id.clone(),
            device_hint: pm.device.clone(),
            found,
            pe_start: pe_start.unwrap_or(0),
            pe_count: pm.pe_count,
        });
    }
    // PVs that carry this VG's metadata but are not in its newest copy.
    for c in cands {
        let uuid = uuid_key(&pvs[c.pv].scan.pv_uuid);
        if !vg.pvs.iter().any(|p| uuid_key(&p.id) == uuid) {
            problems.push(format!(
                "PV {} holds metadata of this VG (seqno {}) but the newest metadata (seqno {}) does not list it",
                pvs[c.pv].volume, c.vg.seqno, vg.seqno
            ).into());
        }
    }
    group.extent_count = vg
        .pvs
        .iter()
        .fold(0u64, |a, p| a.saturating_add(p.pe_count));

    let ctx = Ctx {
        vg,
        pvs,
        group_pvs: &group.pvs,
        pv_bytes: &pv_bytes,
        extent_bytes,
        pv_keys: vg
            .pvs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.as_str(), i))
            .collect(),
        lv_index: vg
            .lvs
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect(),
    };

    // Old-style snapshots: a hidden `snapshotN` LV of type snapshot ties an
    // origin to its copy-on-write store. lvm2 shows the store as the snapshot.
    let mut cow_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut merging_into: BTreeSet<&str> = BTreeSet::new();
    let mut snapshot_objects: BTreeSet<&str> = BTreeSet::new();
    for lv in &vg.lvs {
        for s in lv.segments.iter().filter(|s| s.segtype == "snapshot") {
            snapshot_objects.insert(lv.name.as_str());
            let field = |f: &str| s.refs.iter().find(|(k, _)| k == f).map(|(_, v)| v.as_str());
            if let Some(origin) = field("origin") {
                if let Some(cow) = field("cow_store") {
                    cow_of.insert(cow, origin);
                }
                if let Some(cow) = field("merging_store") {
                    cow_of.insert(cow, origin);
                    merging_into.insert(origin);
                }
            }
        }
    }

    let missing = ctx.missing_per_lv();
    let mut used = 0u64;
    for (li, lv) in vg.lvs.iter().enumerate() {
        used = used.saturating_add(ctx.pv_extents_used(lv));
        if snapshot_objects.contains(lv.name.as_str()) && !lv.status.iter().any(|s| s == "VISIBLE")
        {
            continue;
        }
        let mut out = ctx.logical_volume(lv, &missing[li], &mut problems);
        if let Some(origin) = cow_of.get(lv.name.as_str()) {
            let origin_visible = ctx
                .lv_index
                .get(origin)
                .is_some_and(|&i| vg.lvs[i].status.iter().any(|s| s == "VISIBLE"));
            out.visible = out.visible || origin_visible;
            out.snapshot_of = Some(origin.to_string());
            out.mapping = unreadable_whole(
                out.size,
                format!(
                    "snapshot of {}: reading a snapshot (origin + copy-on-write store) is not supported yet",
                    escape_str(origin)
                ),
            );
        }
        if merging_into.contains(lv.name.as_str()) {
            out.mapping = unreadable_whole(
                out.size,
                "a snapshot merge into this LV is pending: not readable yet".to_string(),
            );
        }
        group.lvs.push(out);
    }
    // Raid and mirror LVs: their images as legs of one array.
    super::raid::map_raid_lvs(vg, &mut group.lvs, extent_bytes, disks);
    // Thin LVs: mapped onto their pool's data LV from the pool's metadata.
    super::thin::map_thin_lvs(vg, &mut group.lvs, disks, &mut problems);
    group.free_count = group.extent_count.saturating_sub(used);
    group.problems = problems;
    group
}

/// A mapping that is one unreadable segment of `size` bytes.
pub(super) fn unreadable_whole(size: u64, reason: String) -> Mapping {
    if size == 0 {
        return Mapping::default();
    }
    Mapping::new(vec![Segment {
        start: 0,
        len: size,
        target: Target::Unreadable { reason },
    }])
    .unwrap_or_default()
}

struct Ctx<'a> {
    vg: &'a VgMeta,
    pvs: &'a [PvOnDisk],
    group_pvs: &'a [VgPv],
    pv_bytes: &'a [Option<u64>],
    extent_bytes: u64,
    pv_keys: BTreeMap<&'a str, usize>,
    lv_index: BTreeMap<&'a str, usize>,
}

impl Ctx<'_> {
    /// PV extents the LV's own segments take.
    fn pv_extents_used(&self, lv: &LvMeta) -> u64 {
        let mut used = 0u64;
        for s in &lv.segments {
            let on_pvs = s
                .areas
                .iter()
                .filter(|a| self.pv_keys.contains_key(a.name.as_str()))
                .count() as u64;
            let per_area = if is_striped(s) && !s.areas.is_empty() {
                s.extent_count / s.areas.len() as u64
            } else {
                s.extent_count
            };
            used = used.saturating_add(per_area.saturating_mul(on_pvs));
        }
        used
    }

    /// For every LV (by index), the missing PVs (indices into the VG's PVs)
    /// it needs, directly or through the LVs it is built on (pool data,
    /// raid images, snapshot origins...). At most [`MAX_LISTED`] per LV.
    ///
    /// One depth-first pass over the LV graph with each LV's answer kept,
    /// so hostile metadata (long chains, cycles) costs linear time.
    fn missing_per_lv(&self) -> Vec<BTreeSet<usize>> {
        let n = self.vg.lvs.len();
        let mut result: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, lv) in self.vg.lvs.iter().enumerate() {
            for s in &lv.segments {
                let names = s
                    .areas
                    .iter()
                    .map(|a| a.name.as_str())
                    .chain(s.refs.iter().map(|(_, n)| n.as_str()));
                for name in names {
                    if let Some(&p) = self.pv_keys.get(name) {
                        if self.group_pvs[p].found.is_none() && result[i].len() < MAX_LISTED {
                            result[i].insert(p);
                        }
                    } else if let Some(&j) = self.lv_index.get(name) {
                        children[i].push(j);
                    }
                }
            }
        }
        // 0: not seen, 1: on the stack, 2: done.
        let mut state = vec![0u8; n];
        for root in 0..n {
            if state[root] != 0 {
                continue;
            }
            state[root] = 1;
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(top) = stack.last_mut() {
                let (v, next) = *top;
                if let Some(&c) = children[v].get(next) {
                    top.1 += 1;
                    if state[c] == 0 {
                        state[c] = 1;
                        stack.push((c, 0));
                    }
                    continue;
                }
                stack.pop();
                for &c in &children[v] {
                    // A child still on the stack is a cycle: nothing to add.
                    if state[c] == 2 && c != v {
                        let add: Vec<usize> = result[c].iter().copied().collect();
                        for p in add {
                            if result[v].len() >= MAX_LISTED {
                                break;
                            }
                            result[v].insert(p);
                        }
                    }
                }
                state[v] = 2;
            }
        }
        result
    }

    fn logical_volume(
        &self,
        lv: &LvMeta,
        missing: &BTreeSet<usize>,
        problems: &mut Vec<Problem>,
    ) -> LogicalVolume {
        let mut segs: Vec<&SegMeta> = lv.segments.iter().collect();
        segs.sort_by_key(|s| s.start_extent);
        if let Some(n) = lv.segment_count
            && n != segs.len() as u64
        {
            problems.push(Problem::of(
                format!("LV {}", lv.name),
                format!(
                    "segment_count is {n} but {} segments are listed",
                    segs.len()
                ),
            ));
        }
        let mut segments = Vec::new();
        let mut mapped = Vec::new();
        let mut size = 0u64;
        let mut size_ok = true;
        for s in &segs {
            segments.push(self.describe(s));
            let (Some(start), Some(len)) = (
                s.start_extent.checked_mul(self.extent_bytes),
                s.extent_count.checked_mul(self.extent_bytes),
            ) else {
                size_ok = false;
                continue;
            };
            match size.checked_add(len) {
                Some(n) => size = n,
                None => size_ok = false,
            }
            mapped.push(Segment {
                start,
                len,
                target: self.target(s),
            });
        }
        let mapping = if !size_ok {
            problems.push(Problem::of(
                format!("LV {}", lv.name),
                "its size does not fit in 64 bits",
            ));
            Mapping::default()
        } else {
            match Mapping::new(mapped) {
                Ok(m) => m,
                Err(e) => {
                    problems
                        .push(format!("LV {}: segments do not fit together: {e}", lv.name).into());
                    unreadable_whole(size, format!("the LV's segments do not fit together: {e}"))
                }
            }
        };
        let missing_pvs = missing.iter().map(|&p| pv_words(&self.vg.pvs[p])).collect();
        LogicalVolume {
            name: lv.name.clone(),
            uuid: lv.id.clone(),
            visible: lv.status.iter().any(|s| s == "VISIBLE"),
            status: lv.status.clone(),
            size,
            segments,
            mapping,
            missing_pvs,
            creation_time: lv.creation_time,
            creation_host: lv.creation_host.clone(),
            snapshot_of: None,
            notes: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The segment as `lvs --segments` describes it.
    fn describe(&self, s: &SegMeta) -> LvSegment {
        let striped = is_striped(s);
        let segtype = if striped && s.areas.len() == 1 {
            "linear".to_string()
        } else {
            s.segtype.clone()
        };
        LvSegment {
            start_extent: s.start_extent,
            extent_count: s.extent_count,
            segtype,
            stripe_size: if striped && s.areas.len() > 1 {
                s.stripe_size.and_then(|z| z.checked_mul(512))
            } else {
                None
            },
            areas: s
                .areas
                .iter()
                .map(|a| {
                    if self.pv_keys.contains_key(a.name.as_str()) {
                        SegmentArea::Pv {
                            key: a.name.clone(),
                            start_extent: a.start,
                        }
                    } else {
                        SegmentArea::Lv {
                            name: a.name.clone(),
                            start_extent: a.start,
                        }
                    }
                })
                .collect(),
        }
    }

    /// Where a segment's bytes are.
    fn target(&self, s: &SegMeta) -> Target {
        let unreadable = |reason: String| Target::Unreadable { reason };
        if s.segtype == "zero" {
            // `lvcreate --type zero`: reads as zeros (the dm `zero` target).
            return Target::Zero;
        }
        if !is_striped(s) {
            if super::raid::is_raid(&s.segtype) {
                // Replaced by super::raid::map_raid_lvs once every image is mapped.
                return unreadable(format!(
                    "segment type {}: its images could not be mapped",
                    escape_str(&s.segtype)
                ));
            }
            if let Some(why) = super::raid::unsupported(self.vg, s) {
                return unreadable(why);
            }
            return unreadable(format!(
                "segment type {} is not readable yet",
                escape_str(&s.segtype)
            ));
        }
        let n = s.areas.len() as u64;
        if n == 0 {
            return unreadable("striped segment without stripes".into());
        }
        if let Some(c) = s.stripe_count
            && c != n
        {
            return unreadable(format!("stripe_count is {c} but {n} stripes are listed"));
        }
        if !s.extent_count.is_multiple_of(n) {
            return unreadable(format!(
                "{} extents do not divide over {n} stripes",
                s.extent_count
            ));
        }
        let area_len = s.extent_count / n;
        let mut stripes = Vec::new();
        let mut missing = Vec::new();
        for a in &s.areas {
            let Some(&p) = self.pv_keys.get(a.name.as_str()) else {
                return unreadable(format!(
                    "stripes on LV {} are not readable yet",
                    escape_str(&a.name)
                ));
            };
            let pm = &self.vg.pvs[p];
            let Some(found) = self.group_pvs[p].found else {
                missing.push(format!("PV {} is missing", pv_words(pm)));
                continue;
            };
            if a.start
                .checked_add(area_len)
                .is_none_or(|e| e > pm.pe_count)
            {
                return unreadable(format!(
                    "extents {}..+{area_len} of PV {} are past its last extent ({})",
                    a.start,
                    escape_str(&pm.key),
                    pm.pe_count
                ));
            }
            let pv = &self.pvs[found];
            let offset = self.pv_bytes[p]
                .and_then(|pe| pv.area.offset.checked_add(pe))
                .and_then(|o| {
                    a.start
                        .checked_mul(self.extent_bytes)
                        .and_then(|x| o.checked_add(x))
                });
            let Some(offset) = offset else {
                return unreadable(format!(
                    "extent {} of PV {} lies past 2^64 bytes",
                    a.start,
                    escape_str(&pm.key)
                ));
            };
            stripes.push(Area {
                disk: pv.area.disk,
                offset,
            });
        }
        if !missing.is_empty() {
            return unreadable(missing.join("; "));
        }
        if let [only] = stripes[..] {
            return Target::Linear(only);
        }
        match s
            .stripe_size
            .filter(|&z| z > 0)
            .and_then(|z| z.checked_mul(512))
        {
            Some(chunk_size) => Target::Striped {
                chunk_size,
                stripes,
            },
            None => unreadable(format!("striped over {n} stripes without a stripe_size")),
        }
    }
}

fn is_striped(s: &SegMeta) -> bool {
    s.segtype == "striped" || s.segtype == "linear"
}
