//! Linux MD arrays, assembled in userspace from their members' superblocks.
//!
//! Members are looked for among every volume of the layout whose probe says
//! `linux_raid_member`: partitions (type `fd`, GPT Linux RAID), whole disks,
//! LVs, volumes of nested disks. They are grouped by array UUID; the member
//! with the most `events` is the freshest and its superblock describes the
//! array (level, layout, chunk, slots). A member more than one event behind
//! it is stale (mdadm and the kernel accept one event of difference), and
//! is not read; a slot no in-sync member holds is missing. Each array
//! becomes a volume of the layout ([`super::VolumeKind::MdArray`]), named as
//! mdadm names its device: `md/<name>` for a 1.x array with a name (the
//! part after `host:`), `md<minor>` for 0.90, `md127`, `md126`… for a 1.x
//! array without one; a volume of a nested disk is prefixed with its
//! holder's name. The array's content is probed and scanned again like
//! any volume: a PV on it gives its VG, a partition table its partitions.

pub mod superblock;

use std::collections::BTreeSet;

use super::{ContentKind, Layout, VolumeId, VolumeKind, probe, push_volume};
use std::sync::Arc;

use crate::io::raid::{Leg, ParityLayout, Raid, RaidLevel};
use crate::io::{Mapping, Segment, Target};
use crate::problem::Problem;
pub use superblock::{Found, Role, Superblock, Version, level_name};

/// How many arrays one scan assembles at most.
pub const MAX_ARRAYS: usize = 256;

/// A member's state in its array.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MemberState {
    /// In sync: its data is read.
    InSync,
    /// In sync, but its slot is read from another member.
    Spare,
    /// More than one event behind the freshest member: not read.
    Stale {
        /// Its events.
        events: u64,
        /// The freshest member's.
        newest: u64,
    },
    /// The freshest superblock says this device is faulty or was removed.
    Faulty,
    /// Being rebuilt: in sync up to byte `upto` of its data only; not read.
    Rebuilding {
        /// How far it was rebuilt.
        upto: u64,
    },
    /// Not read, for the reason given (bad checksum, duplicate slot...).
    Unused {
        /// Why.
        why: String,
    },
}

impl MemberState {
    /// In words: `stale (events 41 < 57)`.
    pub fn words(&self) -> String {
        match self {
            MemberState::InSync => "in sync".into(),
            MemberState::Spare => "in sync, its slot read elsewhere".into(),
            MemberState::Stale { events, newest } => format!("stale (events {events} < {newest})"),
            MemberState::Faulty => "marked faulty or removed by the newer superblocks".into(),
            MemberState::Rebuilding { upto } => {
                format!("being rebuilt (in sync up to byte {upto})")
            }
            MemberState::Unused { why } => format!("not read ({why})"),
        }
    }
}

/// One member of an array.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// The volume holding it.
    pub volume: VolumeId,
    /// That volume's name.
    pub name: String,
    /// Its role, as its own superblock says.
    pub role: Role,
    /// Its update counter.
    pub events: u64,
    /// Whether it is read.
    pub state: MemberState,
    /// Its superblock's version and place (`1.2 at byte 4096`).
    pub superblock: String,
}

impl Member {
    /// `member 1 of md/root (stale: events 41 < 57)`, as `layers` shows it.
    pub fn describe(&self, array: &str) -> String {
        let what = match self.role {
            Role::Active(n) => format!("member {n} of {array}"),
            Role::Spare => format!("spare of {array}"),
            Role::Faulty => format!("faulty member of {array}"),
            Role::Journal => format!("journal of {array}"),
        };
        match &self.state {
            MemberState::InSync => what,
            MemberState::Spare => format!("{what} (in sync, not read: its slot is read elsewhere)"),
            MemberState::Stale { events, newest } => {
                format!("{what} (stale: events {events} < {newest}; not read)")
            }
            MemberState::Faulty => {
                format!("{what} (marked faulty or removed by the newer superblocks; not read)")
            }
            MemberState::Rebuilding { upto } => {
                format!("{what} (being rebuilt, in sync up to byte {upto}; not read)")
            }
            MemberState::Unused { why } => format!("{what} (not read: {why})"),
        }
    }
}

/// An assembled MD array.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MdArray {
    /// The array UUID as mdadm shows it (`xxxxxxxx:xxxxxxxx:…`).
    pub uuid: String,
    /// `host:name` from a 1.x superblock.
    pub name: Option<String>,
    /// Metadata version of the freshest member: `1.2`, `0.90`.
    pub metadata: String,
    /// `raid5`, `raid1`...
    pub level: String,
    /// The raw level number.
    pub level_number: i32,
    /// Level-specific layout number.
    pub layout: u32,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Slots in the complete array.
    pub raid_disks: u32,
    /// The freshest member's events.
    pub events: u64,
    /// Every member found, in the order found.
    pub members: Vec<Member>,
    /// Slots no member in sync holds.
    pub missing: Vec<u32>,
    /// The volume whose nested disk the array belongs to, like its members
    /// (`None`: the disks given to the scan).
    pub scope: Option<VolumeId>,
    /// Which members are read and which are not, one sentence each
    /// (`raid1 reads leg p1 (then disk1p1 if a read fails)`), then facts
    /// about the array that change nothing for reading (a bitmap).
    pub reads: Vec<String>,
}

impl MdArray {
    /// `raid5, 3 devices, 64 KiB chunks, metadata 1.2`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "MD {}, {} device{}",
            self.level,
            self.raid_disks,
            if self.raid_disks == 1 { "" } else { "s" }
        );
        if self.chunk_size > 0 && self.level_number != 1 {
            s.push_str(&format!(", {} KiB chunks", self.chunk_size / 1024));
        }
        s.push_str(&format!(", metadata {}", self.metadata));
        if !self.missing.is_empty() {
            s.push_str(&format!(", {} missing", self.missing.len()));
        }
        s
    }
}

impl Layout {
    /// The MD array volume `member` is a member of, when it was assembled.
    pub fn md_array_of(&self, member: VolumeId) -> Option<VolumeId> {
        self.volumes.iter().find_map(|v| match &v.kind {
            VolumeKind::MdArray { array } if array.members.iter().any(|m| m.volume == member) => {
                Some(v.id)
            }
            _ => None,
        })
    }
}

/// A member read from a volume, before grouping.
struct Candidate {
    volume: VolumeId,
    sb: Superblock,
}

/// The volumes already members of an assembled array.
fn members_taken(layout: &Layout) -> BTreeSet<VolumeId> {
    let mut out = BTreeSet::new();
    for v in &layout.volumes {
        if let VolumeKind::MdArray { array } = &v.kind {
            out.extend(array.members.iter().map(|m| m.volume));
        }
    }
    out
}

/// Assemble the arrays whose members are volumes of `layout` not yet in an
/// array, add each as a volume and probe it. Returns whether any was added.
pub(super) fn assemble(layout: &mut Layout) -> bool {
    let taken = members_taken(layout);
    let already = layout
        .volumes
        .iter()
        .filter(|v| matches!(v.kind, VolumeKind::MdArray { .. }))
        .count();
    let mut candidates: Vec<Candidate> = Vec::new();
    for vi in 0..layout.volumes.len() {
        let vid = VolumeId(vi);
        let v = layout.volume(vid);
        if v.content.kind != ContentKind::MdRaid
            || taken.contains(&vid)
            || !v.mapping.unreadable().is_empty()
        {
            continue;
        }
        let src = layout.open_volume(vid);
        match superblock::read(&*src) {
            Found::None => {}
            Found::Damaged { at, detail } => {
                // Said once, though assembly runs again after each round of
                // nested disks.
                let p = Problem::at("MD superblock", at, detail);
                if !layout.volumes[vi].problems.contains(&p) {
                    layout.volumes[vi].problems.push(p);
                }
            }
            Found::Superblock(sb) => candidates.push(Candidate {
                volume: vid,
                sb: *sb,
            }),
        }
    }
    // Group by array UUID, in the order first found.
    let mut groups: Vec<Vec<Candidate>> = Vec::new();
    for c in candidates {
        match groups
            .iter_mut()
            .find(|g| g.first().is_some_and(|f| f.sb.uuid == c.sb.uuid))
        {
            Some(g) => g.push(c),
            None => groups.push(vec![c]),
        }
    }
    let mut added = false;
    for (i, g) in groups.into_iter().enumerate() {
        if already + i >= MAX_ARRAYS {
            if let Some(c) = g.first() {
                layout.volumes[c.volume.0].problems.push(
                    format!("MD member: not assembled, {MAX_ARRAYS} arrays were read already (the bound)")
                        .into(),
                );
            }
            continue;
        }
        if add_array(layout, g) {
            added = true;
        }
    }
    added
}

/// The freshest superblock's view of device `dev_number`, when it has one.
fn role_in(sb: &Superblock, dev_number: u32) -> Option<Role> {
    sb.roles.get(usize::try_from(dev_number).ok()?).copied()
}

/// Build one array from its members; returns whether a volume was added.
fn add_array(layout: &mut Layout, group: Vec<Candidate>) -> bool {
    // Bad checksums first: such a member is shown but never read.
    // The freshest: the most events, the first found among equals.
    let newest = group
        .iter()
        .filter(|c| c.sb.csum_ok())
        .rev()
        .max_by_key(|c| c.sb.events);
    let Some(fresh) = newest.map(|c| c.sb.clone()) else {
        for c in &group {
            layout.volumes[c.volume.0].problems.push(Problem::at(
                format!("MD superblock {}", c.sb.version.name()),
                c.sb.at,
                format!(
                    "bad checksum (stored {:#010x}, computed {:#010x}): the array is not assembled",
                    c.sb.csum_stored, c.sb.csum_computed
                ),
            ));
        }
        return false;
    };
    let raid_disks = fresh.raid_disks;
    let scope = newest.and_then(|c| super::nested::scope_of(layout, c.volume));
    let mut members: Vec<Member> = Vec::new();
    // Slot → index in `members` of the member read for it.
    let mut slots: Vec<Option<usize>> = vec![None; raid_disks as usize];
    let mut problems: Vec<Problem> = Vec::new();
    let mut bad_csum: Vec<(VolumeId, Problem)> = Vec::new();
    for c in &group {
        let sb = &c.sb;
        let name = layout.volume(c.volume).name.clone();
        let mut state = MemberState::InSync;
        if !sb.csum_ok() {
            state = MemberState::Unused {
                why: "bad superblock checksum".into(),
            };
            bad_csum.push((
                c.volume,
                Problem::at(
                    format!("MD superblock {}", sb.version.name()),
                    sb.at,
                    format!(
                        "bad checksum (stored {:#010x}, computed {:#010x}): this member is not read",
                        sb.csum_stored, sb.csum_computed
                    ),
                ),
            ));
        } else if sb.events.saturating_add(1) < fresh.events {
            state = MemberState::Stale {
                events: sb.events,
                newest: fresh.events,
            };
        } else if !matches!(sb.role, Role::Active(_)) {
            state = match sb.role {
                Role::Faulty => MemberState::Faulty,
                _ => MemberState::Spare,
            };
        } else if matches!(fresh.version, Version::V1 { .. })
            && role_in(&fresh, sb.dev_number) != Some(sb.role)
        {
            state = MemberState::Faulty;
        } else if let Some(upto) = sb.recovery_offset {
            state = MemberState::Rebuilding { upto };
        } else if sb.level != fresh.level
            || sb.raid_disks != fresh.raid_disks
            || sb.layout != fresh.layout
            || sb.chunk_size != fresh.chunk_size
        {
            state = MemberState::Unused {
                why: format!(
                    "its superblock describes another geometry ({} of {} devices) than the freshest one",
                    sb.level_name(),
                    sb.raid_disks
                ),
            };
        }
        if state == MemberState::InSync
            && let Role::Active(slot) = sb.role
        {
            match slots.get(slot as usize) {
                None => {
                    state = MemberState::Unused {
                        why: format!("role {slot} is past the array's {raid_disks} devices"),
                    };
                }
                Some(Some(other)) => {
                    let other = members
                        .get(*other)
                        .map(|m| m.name.clone())
                        .unwrap_or_default();
                    state = if overlaps(layout, c.volume, &members, &slots, slot) {
                        MemberState::Unused {
                            why: format!("the same bytes as {other}"),
                        }
                    } else {
                        MemberState::Unused {
                            why: format!("{other} holds role {slot} too"),
                        }
                    };
                }
                Some(None) => {}
            }
        }
        if state == MemberState::InSync
            && let Role::Active(slot) = sb.role
            && let Some(s) = slots.get_mut(slot as usize)
        {
            *s = Some(members.len());
        }
        members.push(Member {
            volume: c.volume,
            name,
            role: sb.role,
            events: sb.events,
            state,
            superblock: format!("{} at byte {}", sb.version.name(), sb.at),
        });
    }
    let level_name = fresh.level_name();
    // Legs: each slot's member (its volume's mapping, where its data
    // starts, how much), or why the slot has none.
    let mut legs: Vec<Result<LegSource, String>> = Vec::new();
    for (slot, entry) in slots.iter().enumerate() {
        let Some(m) = entry.and_then(|mi| members.get(mi)) else {
            let slot = u32::try_from(slot).unwrap_or(u32::MAX);
            let why = members
                .iter()
                .find(|m| m.role == Role::Active(slot))
                .map_or_else(
                    || "no member found".to_string(),
                    |m| format!("{} is {}", m.name, m.state.words()),
                );
            legs.push(Err(why));
            continue;
        };
        let sb = group
            .iter()
            .find(|c| c.volume == m.volume)
            .map(|c| &c.sb)
            .unwrap_or(&fresh);
        legs.push(Ok(LegSource {
            name: m.name.clone(),
            mapping: layout.volume(m.volume).mapping.clone(),
            offset: sb.data_offset,
            len: leg_len(&fresh, sb),
        }));
    }
    let mut array = MdArray {
        uuid: fresh.uuid_mdadm(),
        name: fresh.name.clone(),
        metadata: fresh.version.name(),
        level: level_name.clone(),
        level_number: fresh.level,
        layout: fresh.layout,
        chunk_size: fresh.chunk_size,
        raid_disks,
        events: fresh.events,
        members,
        missing: Vec::new(),
        scope,
        reads: Vec::new(),
    };
    for u in fresh.unsupported() {
        problems.push(u.into());
    }
    let mut reads = Vec::new();
    let (built, missing_why) = build_mapping(&fresh, &array, legs, &mut reads, &mut problems);
    array.missing = missing_why.iter().map(|(slot, _)| *slot).collect();
    reads.extend(fresh.facts());
    array.reads = reads;
    let name = array_name(layout, &fresh, scope);
    // Say what each member is, on the member.
    for m in &array.members {
        let v = &mut layout.volumes[m.volume.0];
        let mine = m.describe(&name);
        // The probe's guess that a filesystem at byte 0 makes a raid1
        // member holds only for raid1.
        let theirs = v.content.detail.take().filter(|_| array.level_number == 1);
        v.content.detail = Some(match theirs {
            Some(d) => format!("{mine}; {d}"),
            None => mine,
        });
        if let Some(p) = bad_csum.iter().find(|(id, _)| *id == m.volume) {
            v.problems.push(p.1.clone());
        }
    }
    for m in &array.members {
        match &m.state {
            MemberState::Stale { events, newest } => problems.push(
                format!(
                    "member {} ({}) is stale: events {events} < {newest}; its data is not read",
                    m.name,
                    m.role.describe()
                )
                .into(),
            ),
            MemberState::Faulty if matches!(m.role, Role::Active(_)) => problems.push(
                format!(
                    "member {} ({}) is marked faulty or removed by the newer superblocks: not read",
                    m.name,
                    m.role.describe()
                )
                .into(),
            ),
            MemberState::Rebuilding { upto } => problems.push(
                format!(
                    "member {} ({}) was being rebuilt (in sync up to byte {upto}): not read",
                    m.name,
                    m.role.describe()
                )
                .into(),
            ),
            MemberState::Unused { why } => problems
                .push(format!("member {} ({}): not read: {why}", m.name, m.role.describe()).into()),
            _ => {}
        }
    }
    // One line per slot not read, up to a few; then a count.
    const SHOWN: usize = 8;
    for (slot, why) in missing_why.iter().take(SHOWN) {
        problems.push(
            format!(
                "role {slot} of {raid_disks} is not read: {why}{}",
                missing_consequence(&array)
            )
            .into(),
        );
    }
    if missing_why.len() > SHOWN {
        problems.push(
            format!(
                "{} more roles of {raid_disks} are not read{}",
                missing_why.len() - SHOWN,
                missing_consequence(&array)
            )
            .into(),
        );
    }
    let kind = VolumeKind::MdArray {
        array: Box::new(array),
    };
    let vid = push_volume(layout, name, kind, built);
    let v = &mut layout.volumes[vid.0];
    v.problems.extend(problems);
    let unreadable: Vec<String> = v
        .mapping
        .unreadable()
        .iter()
        .map(|s| s.to_string())
        .collect();
    if unreadable.is_empty() && v.size() > 0 {
        let src = layout.open_volume(vid);
        layout.volumes[vid.0].content = probe::probe(&*src);
    } else if !unreadable.is_empty() {
        let mut r: Vec<String> = Vec::new();
        for u in unreadable {
            if !r.contains(&u) {
                r.push(u);
            }
        }
        let c = &mut layout.volumes[vid.0].content;
        c.kind = ContentKind::Unreadable;
        c.detail = Some(r.join("; "));
    }
    true
}

/// What a missing slot means for reading.
fn missing_consequence(a: &MdArray) -> &'static str {
    let n = a.missing.len();
    match a.level_number {
        1 | -4 if (n as u64) < u64::from(a.raid_disks) => " (the other mirrors are read)",
        4 | 5 if n == 1 => " (degraded: its data is rebuilt from parity)",
        6 if n <= 2 => " (degraded: its data is rebuilt from P and Q parity)",
        10 => " (its copies on the other members are read, if any)",
        _ => " (too many devices missing: the array is not readable)",
    }
}

/// Whether member volume `vid` lies on the same bytes as the member read
/// for `slot` (a partition and the disk it is on, seen twice).
fn overlaps(
    layout: &Layout,
    vid: VolumeId,
    members: &[Member],
    slots: &[Option<usize>],
    slot: u32,
) -> bool {
    let other = slots
        .get(slot as usize)
        .copied()
        .flatten()
        .and_then(|i| members.get(i))
        .map(|m| m.volume);
    let Some(other) = other else { return false };
    let first = |id: VolumeId| -> Option<(crate::io::DiskId, u64, u64)> {
        let v = layout.volumes.get(id.0)?;
        match v.mapping.segments().first().map(|s| &s.target) {
            Some(Target::Linear(a)) => Some((a.disk, a.offset, v.size())),
            _ => None,
        }
    };
    match (first(vid), first(other)) {
        (Some((d1, o1, l1)), Some((d2, o2, l2))) => {
            d1 == d2 && o1 < o2.saturating_add(l2) && o2 < o1.saturating_add(l1)
        }
        _ => false,
    }
}

/// The name mdadm gives the array's device, prefixed with its scope's
/// holder and made unique among the volumes (`_1`, `_2`...).
fn array_name(layout: &Layout, sb: &Superblock, scope: Option<VolumeId>) -> String {
    let prefix = scope
        .and_then(|s| layout.volumes.get(s.0))
        .map(|v| format!("{}/", v.name))
        .unwrap_or_default();
    let base = match (sb.version, &sb.name) {
        (Version::V090 { .. }, _) => format!("md{}", sb.md_minor.unwrap_or(0)),
        (Version::V1 { .. }, Some(n)) => {
            let short = n.rsplit_once(':').map_or(n.as_str(), |(_, s)| s);
            let clean: String = short
                .chars()
                .map(|c| if c == '/' || c.is_control() { '_' } else { c })
                .collect();
            if clean.is_empty() {
                unnamed(layout)
            } else {
                format!("md/{clean}")
            }
        }
        (Version::V1 { .. }, None) => unnamed(layout),
    };
    let taken = |n: &str| layout.volumes.iter().any(|v| v.name == n);
    let first = format!("{prefix}{base}");
    if !taken(&first) {
        return first;
    }
    (1..=MAX_ARRAYS)
        .map(|i| format!("{prefix}{base}_{i}"))
        .find(|n| !taken(n))
        .unwrap_or(first)
}

/// `md127`, `md126`… for arrays without a name, as mdadm numbers them.
fn unnamed(layout: &Layout) -> String {
    let n = layout
        .volumes
        .iter()
        .filter(|v| matches!(v.kind, VolumeKind::MdArray { .. }))
        .count();
    format!("md{}", 127usize.saturating_sub(n))
}

/// Bytes of slot data on a member: the array's per-device size (rounded
/// down to the chunk where the level stripes), or for raid0 and linear the
/// member's own data size rounded down to the chunk.
fn leg_len(fresh: &Superblock, sb: &Superblock) -> u64 {
    let round = |n: u64| {
        if fresh.chunk_size > 0 {
            n - n % fresh.chunk_size
        } else {
            n
        }
    };
    match fresh.level {
        0 | -1 => {
            let own = if sb.data_size > 0 {
                sb.data_size
            } else {
                sb.size
            };
            round(own)
        }
        4 | 5 | 6 | 10 => round(fresh.size),
        _ => fresh.size,
    }
}

/// The part `off..off + len` of mapping `m`, as a mapping of its own.
fn slice(m: &Mapping, off: u64, len: u64) -> Result<Mapping, String> {
    let end = off
        .checked_add(len)
        .ok_or_else(|| "data offset and size overflow".to_string())?;
    if len == 0 {
        return Err("no data on it (size 0)".into());
    }
    if end > m.size() {
        return Err(format!(
            "its data ends at byte {end} (data_offset {off} + {len} bytes), past the end of the volume ({} bytes)",
            m.size()
        ));
    }
    let mut out = Vec::new();
    for s in m.segments() {
        let (a, b) = (s.start.max(off), s.end().min(end));
        if a >= b {
            continue;
        }
        let rel = a - s.start;
        let target = match &s.target {
            Target::Linear(area) => Target::Linear(crate::io::Area {
                disk: area.disk,
                offset: area
                    .offset
                    .checked_add(rel)
                    .ok_or_else(|| "offset overflows".to_string())?,
            }),
            Target::Zero => Target::Zero,
            Target::Unreadable { reason } => Target::Unreadable {
                reason: reason.clone(),
            },
            other if rel == 0 && b == s.end() => other.clone(),
            _ => {
                return Err(
                    "its data starts or ends inside a striped or RAID segment of its volume: not supported"
                        .into(),
                );
            }
        };
        out.push(Segment {
            start: a - off,
            len: b - a,
            target,
        });
    }
    Mapping::new(out)
}

/// One unreadable segment of `len` bytes.
fn unreadable(len: u64, reason: String) -> Mapping {
    Mapping::new(vec![Segment {
        start: 0,
        len: len.max(1),
        target: Target::Unreadable { reason },
    }])
    .unwrap_or_default()
}

/// Where a slot's data is: its member's volume mapping, from `offset`,
/// `len` bytes.
struct LegSource {
    name: String,
    mapping: Mapping,
    offset: u64,
    len: u64,
}

/// The RAID core's level for an MD level and layout number.
fn raid_level(level: i32, layout: u32) -> Result<RaidLevel, String> {
    Ok(match level {
        0 => RaidLevel::Raid0,
        1 | -4 => RaidLevel::Raid1,
        4 => RaidLevel::Raid4,
        5 | 6 => {
            let l = ParityLayout::from_md(layout)
                .ok_or_else(|| format!("raid{level} layout {layout} is not one MD knows"))?;
            if level == 5 {
                RaidLevel::Raid5(l)
            } else {
                RaidLevel::Raid6(l)
            }
        }
        10 => RaidLevel::Raid10 {
            near: layout & 0xff,
            far: (layout >> 8) & 0xff,
            offset: layout & 0x1_0000 != 0,
        },
        n => return Err(format!("{} is not a level vmrescue reads", level_name(n))),
    })
}

/// The array's mapping onto the disks, from its legs (by slot), and the
/// slots that are not read. Says in `notes` which members are read.
fn build_mapping(
    fresh: &Superblock,
    array: &MdArray,
    legs: Vec<Result<LegSource, String>>,
    notes: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) -> (Mapping, Vec<(u32, String)>) {
    let all_missing = |legs: &[Result<LegSource, String>]| -> Vec<(u32, String)> {
        legs.iter()
            .enumerate()
            .filter_map(|(i, l)| Some((u32::try_from(i).ok()?, l.as_ref().err()?.clone())))
            .collect()
    };
    let guess = fresh.size.max(1);
    if fresh.feature_map
        & (superblock::feature::RESHAPE_ACTIVE
            | superblock::feature::RESHAPE_BACKWARDS
            | superblock::feature::NEW_OFFSET)
        != 0
    {
        let m = all_missing(&legs);
        return (
            unreadable(
                guess,
                format!("MD {} is being reshaped: not readable", array.level),
            ),
            m,
        );
    }
    if fresh.chunk_size > superblock::MAX_CHUNK {
        let m = all_missing(&legs);
        return (
            unreadable(
                guess,
                format!(
                    "MD {}: a chunk of {} bytes is larger than vmrescue reads ({} at most)",
                    array.level,
                    fresh.chunk_size,
                    superblock::MAX_CHUNK
                ),
            ),
            m,
        );
    }
    if fresh.level == -1 {
        return linear(array, legs, notes, problems);
    }
    let level = match raid_level(fresh.level, fresh.layout) {
        Ok(l) => l,
        Err(why) => {
            let m = all_missing(&legs);
            return (unreadable(guess, format!("MD {}: {why}", array.level)), m);
        }
    };
    // raid0 over members of different sizes: the first zone, striped
    // over all of them, is what every member holds.
    let len = legs
        .iter()
        .filter_map(|l| l.as_ref().ok().map(|l| l.len))
        .min()
        .unwrap_or(0);
    if fresh.level == 0
        && legs
            .iter()
            .filter_map(|l| l.as_ref().ok())
            .any(|l| l.len != len)
    {
        problems.push(
            format!(
                "raid0 members differ in size: only the first zone ({len} bytes on each) is read; the rest is in zones vmrescue does not follow"
            )
            .into(),
        );
    }
    let raid_legs: Vec<Leg> = legs
        .into_iter()
        .enumerate()
        .map(|(slot, l)| match l {
            Ok(l) => Leg::new(l.name, l.mapping, l.offset),
            Err(why) => Leg::missing(format!("role {slot}"), why),
        })
        .collect();
    let raid = match Raid::new(level, fresh.chunk_size, raid_legs, len) {
        Ok(r) => r,
        Err(why) => {
            let m = (0..array.raid_disks)
                .map(|i| (i, "the array cannot be read".to_string()))
                .collect();
            return (unreadable(guess, format!("MD {}: {why}", array.level)), m);
        }
    };
    let missing: Vec<(u32, String)> = raid
        .legs()
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let why = l.unusable.as_ref()?;
            let why = if l.name.starts_with("role ") {
                why.clone()
            } else {
                format!("{}: {why}", l.name)
            };
            Some((u32::try_from(i).ok()?, why))
        })
        .collect();
    notes.extend(raid.which_legs_used());
    let size = raid.size();
    if let Err(why) = raid.readable() {
        return (unreadable(size, format!("MD {why}")), missing);
    }
    if size == 0 {
        return (Mapping::default(), missing);
    }
    let m = Mapping::new(vec![Segment {
        start: 0,
        len: size,
        target: Target::Raid(Arc::new(raid)),
    }])
    .unwrap_or_else(|e| unreadable(size, format!("MD {}: {e}", array.level)));
    (m, missing)
}

/// A linear array: the members one after the other, in role order, up to
/// the first missing one.
fn linear(
    array: &MdArray,
    legs: Vec<Result<LegSource, String>>,
    notes: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) -> (Mapping, Vec<(u32, String)>) {
    let mut segs: Vec<Segment> = Vec::new();
    let mut missing = Vec::new();
    let mut at = 0u64;
    let mut read = Vec::new();
    for (slot, leg) in legs.iter().enumerate() {
        let slot32 = u32::try_from(slot).unwrap_or(u32::MAX);
        let piece = match leg {
            Ok(l) => slice(&l.mapping, l.offset, l.len).map(|m| (l.name.clone(), m)),
            Err(why) => Err(why.clone()),
        };
        match piece {
            Ok((name, m)) if missing.is_empty() => {
                read.push(name);
                for p in m.segments() {
                    segs.push(Segment {
                        start: at,
                        len: p.len,
                        target: p.target.clone(),
                    });
                    at = at.saturating_add(p.len);
                }
            }
            Ok(_) => {}
            Err(why) => {
                if missing.is_empty() {
                    problems.push(
                        format!(
                            "{}: the array is read up to the start of role {slot} only",
                            array.level
                        )
                        .into(),
                    );
                }
                missing.push((slot32, why));
            }
        }
    }
    notes.push(format!(
        "linear reads {} one after the other",
        read.join(", ")
    ));
    (Mapping::new(segs).unwrap_or_default(), missing)
}

#[cfg(test)]
mod tests;
