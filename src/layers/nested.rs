//! Nested disks: a volume whose content is a partition table, or an LV whose
//! content is an LVM PV (a VM's disk stored in a host LV or partition), is
//! scanned again as a disk of the same layout, to a bounded depth.
//!
//! The nested disk's volumes are named after the volume that holds it:
//! `<parent>/<local name>`, where the local name is the one the volume would
//! have if the parent's bytes were opened alone (`pve/vm-100-disk-0/p1`,
//! `pve/vm-100-disk-0/vg_ta/lv_root`). Each nested disk is its own LVM level:
//! its VGs assemble from its own PVs only, so a guest VG named like a host
//! VG (or a cloned guest's VG with the same UUID) never merges with another —
//! except the PVs of one VG found on sibling nested disks of the same
//! machine (a VM's `vm-100-disk-0` and `vm-100-disk-1`), which assemble
//! together as the guest's own LVM would ([`assembly_sets`]); their LVs are
//! named after the first of those disks.

use super::luks::Unlocker;
use super::{
    ContentKind, Layout, ScanOptions, VolumeId, VolumeKind, add_disk, assemble_level, scan_disks,
};
use crate::io::{DiskId, Target};

/// How many disks deep nesting goes (a host LV holding a guest disk is 1).
pub const MAX_DEPTH: usize = 8;

/// How many nested disks one scan reads at most.
pub(super) const MAX_NESTED: usize = 256;

/// Scan every volume of `layout` that holds a disk, and the volumes found
/// in those, breadth first.
pub(super) fn scan_nested(layout: &mut Layout, unlock: Option<Unlocker<'_>>) {
    scan_nested_from(layout, 0, unlock);
}

/// [`scan_nested`] for the volumes from index `first` on (those of a disk
/// added later: a disk image stored in a filesystem).
pub(super) fn scan_nested_from(layout: &mut Layout, first: usize, unlock: Option<Unlocker<'_>>) {
    // (disk, offset, length) on a disk given to the scan, of each volume
    // scanned as a disk: the same bytes are never scanned twice.
    let mut scanned: Vec<(DiskId, u64, u64)> = Vec::new();
    let mut nested = 0usize;
    let mut next = first;
    // MD arrays are assembled once every volume found so far was scanned
    // (their members may be on nested disks), and their volumes scanned in
    // turn: a bounded number of rounds.
    for _round in 0..=MAX_DEPTH {
        scan_from(layout, &mut next, &mut nested, &mut scanned, unlock);
        if !super::md::assemble(layout) {
            break;
        }
    }
}

/// [`scan_nested`]'s walk over the volumes from `next` on.
fn scan_from(
    layout: &mut Layout,
    next: &mut usize,
    nested: &mut usize,
    scanned: &mut Vec<(DiskId, u64, u64)>,
    unlock: Option<Unlocker<'_>>,
) {
    // In waves: every volume found so far is read as a disk (partitions,
    // PVs), then the PVs of the wave assemble, so a VG over two of a
    // guest's disks is whole.
    while *next < layout.volumes.len() {
        let end = layout.volumes.len();
        let mut wave: Vec<Held> = Vec::new();
        scan_wave(layout, next, end, nested, scanned, &mut wave, unlock);
        ldm_sets(layout, &wave);
        for set in assembly_sets(layout, &wave) {
            let Some(held) = wave.get(set.holder) else {
                continue;
            };
            let first = layout.volumes.len();
            let first_group = layout.groups.len();
            assemble_level(layout, &set.pvs, &held.prefix);
            explain_missing(layout, &wave, held.holder, first_group);
            if held.md {
                // A VG on an MD array belongs to the machine the array
                // does: its LVs are named as at the array's own level
                // (`vg_md/root`).
                let outer = scope_of(layout, held.holder)
                    .and_then(|s| layout.volumes.get(s.0))
                    .map(|v| format!("{}/", v.name))
                    .unwrap_or_default();
                for v in layout.volumes.iter_mut().skip(first) {
                    if let VolumeKind::LogicalVolume { .. } = v.kind
                        && let Some(rest) = v.name.strip_prefix(&held.prefix)
                    {
                        v.name = format!("{outer}{rest}");
                    }
                }
            }
        }
    }
}

/// A volume read as a disk in one wave: its name prefix, whether it is an
/// MD array, and the PVs found on it (indices into `layout.pvs`).
struct Held {
    holder: VolumeId,
    disk: DiskId,
    prefix: String,
    md: bool,
    pvs: std::ops::Range<usize>,
}

/// The volumes `next..end` that hold a disk, each added as a disk and its
/// partitions and PVs read ([`scan_disks`]); VGs are not assembled yet.
fn scan_wave(
    layout: &mut Layout,
    next: &mut usize,
    end: usize,
    nested: &mut usize,
    scanned: &mut Vec<(DiskId, u64, u64)>,
    wave: &mut Vec<Held>,
    unlock: Option<Unlocker<'_>>,
) {
    while *next < end {
        let vid = VolumeId(*next);
        *next += 1;
        if !holds_disk(layout, vid) {
            continue;
        }
        let depth = depth(layout, vid);
        if depth >= MAX_DEPTH {
            layout.volumes[vid.0].problems.push(
                format!(
                    "holds a partition table or PV nested {} disks deep: not scanned (the bound is {MAX_DEPTH})",
                    depth + 1
                )
                .into(),
            );
            continue;
        }
        if *nested >= MAX_NESTED {
            layout.volumes[vid.0].problems.push(
                format!("holds a partition table or PV: not scanned, {MAX_NESTED} nested disks were read already (the bound)").into(),
            );
            continue;
        }
        if let Some(extent) = host_extent(layout, vid) {
            if scanned.contains(&extent) {
                let what = format!(
                    "holds a partition table or PV on the same bytes as a volume scanned already (byte {} of {}, {} bytes): not scanned again",
                    extent.1,
                    layout
                        .disks
                        .get(extent.0.0)
                        .map_or_else(String::new, |d| d.origin.short_name()),
                    extent.2
                );
                layout.volumes[vid.0].problems.push(what.into());
                continue;
            }
            scanned.push(extent);
        }
        *nested += 1;
        let v = layout.volume(vid);
        let prefix = format!("{}/", v.name);
        let md = matches!(v.kind, VolumeKind::MdArray { .. });
        let image = image_format(v.content.kind);
        let luks = v.content.kind == ContentKind::Luks;
        let table = v.content.kind == ContentKind::PartitionTable;
        let mut src = layout.volume_as_disk(vid);
        if luks && !open_luks(layout, vid, &mut src, unlock) {
            continue;
        }
        // A fixed VHD written into a volume of its size: the guest's own
        // first sector at byte 0 (a partition table), the VHD footer in
        // the volume's last 512 bytes.
        let image = image.or_else(|| {
            (table && fixed_vhd_at_end(&*src.source, &layout.volume(vid).name))
                .then_some(crate::image::ImageFormat::Vhd)
        });
        if let Some(format) = image {
            // A disk image written straight into the volume: its virtual
            // disk is the nested disk.
            match image_in_volume(&src.source, &layout.volume(vid).name, format) {
                Ok((image, details, problems)) => {
                    src.source = image;
                    src.format = format;
                    src.format_details = details;
                    layout.volumes[vid.0]
                        .problems
                        .extend(problems.into_iter().map(Into::into));
                }
                Err(why) => {
                    layout.volumes[vid.0].problems.push(why.into());
                    continue;
                }
            }
        }
        let d = add_disk(layout, src, Some(vid));
        let first_pv = layout.pvs.len();
        scan_disks(layout, &[d], &prefix, ScanOptions::default());
        wave.push(Held {
            holder: vid,
            disk: d,
            prefix,
            md,
            pvs: first_pv..layout.pvs.len(),
        });
    }
}

/// The Windows dynamic disks of one wave: the disks held by the same
/// machine (the same scope, and the same Proxmox guest where the holders
/// name one) are read together, so a disk group whose members are two of
/// a guest's disks (`vm-100-disk-0`, `vm-100-disk-1`) assembles as
/// Windows' own LDM would; its volumes are named after its first member's
/// holder. Disks of different machines, or of clones told apart by guest,
/// never mix.
fn ldm_sets(layout: &mut Layout, wave: &[Held]) {
    /// The machine a disk is held by: its scope, and its Proxmox guest.
    type Machine = (Option<VolumeId>, Option<GuestKey>);
    let mut sets: Vec<(Machine, Vec<DiskId>)> = Vec::new();
    for held in wave {
        let key = (
            scope_of(layout, held.holder),
            guest_key(layout, held.holder),
        );
        match sets.iter_mut().find(|(k, _)| *k == key) {
            Some((_, disks)) => disks.push(held.disk),
            None => sets.push((key, vec![held.disk])),
        }
    }
    let prefix = |d: DiskId| {
        wave.iter()
            .find(|h| h.disk == d)
            .map(|h| h.prefix.clone())
            .unwrap_or_default()
    };
    for (_, disks) in sets {
        super::ldm::scan(layout, &disks, &prefix);
    }
}

/// Read the LUKS header of volume `vid` and unlock it with `unlock`'s
/// passphrase: `src` becomes its plain bytes. What the header says goes to
/// `layout.luks` and the volume's content detail; a volume left locked
/// gets a note (no key given) or a problem (wrong key, damage), and false.
fn open_luks(
    layout: &mut Layout,
    vid: VolumeId,
    src: &mut super::DiskSource,
    unlock: Option<Unlocker<'_>>,
) -> bool {
    let name = layout.volume(vid).name.clone();
    let mut problems = Vec::new();
    let opened = super::luks::open(&src.source, &name, unlock, &mut problems);
    let v = &mut layout.volumes[vid.0];
    v.problems.extend(problems);
    let mut crypt = None;
    let (summary, ok) = match opened {
        super::luks::Opened::Unlocked(plain, summary, dm) => {
            src.source = plain;
            crypt = Some(dm);
            src.format_details.push(format!(
                "LUKS{} volume {} decrypted in userspace ({}, unlocked with keyslot {})",
                summary.version,
                name,
                summary.cipher,
                summary.unlocked_by.unwrap_or(0)
            ));
            (Some(summary), true)
        }
        super::luks::Opened::Locked {
            summary,
            why,
            damage,
        } => {
            if damage {
                v.problems
                    .push(crate::problem::Problem::of("LUKS volume", why));
            } else {
                v.notes.push(why);
            }
            (summary, false)
        }
    };
    if let Some(s) = summary {
        v.content.detail = Some(s.describe());
        if v.content.label.is_none() {
            v.content.label = s.label.clone();
        }
        layout.luks.push((vid, s));
    }
    if let Some(dm) = crypt {
        layout.crypt.push((vid, dm));
    }
    ok
}

/// PVs that assemble together, named after the wave's disk `holder`.
struct AssemblySet {
    holder: usize,
    pvs: Vec<usize>,
}

/// How the PVs of one wave assemble. Each nested disk alone, as its own
/// LVM level — except a VG whose PVs are on several disks of the wave held
/// by the same machine (the same scope): those assemble together, as the
/// guest's LVM sees all of the guest's disks. When the same PV UUID shows
/// on two of those disks (a cloned VM, a thin snapshot of the disk), the
/// disks are told apart by the Proxmox guest their holders name
/// (`vm-100-disk-1`, `snap_vm-100-disk-1_before`), and disks that still
/// cannot be told apart stay alone. A PV without VG metadata of its own
/// (`--metadatacopies 0`) goes with the set whose metadata names its UUID.
fn assembly_sets(layout: &Layout, wave: &[Held]) -> Vec<AssemblySet> {
    let pv = |i: usize| layout.pvs.get(i).map(|p| &p.scan);
    // (wave index, VG UUID) of each PV with metadata.
    let mut keyed: Vec<(usize, usize, &str)> = Vec::new();
    for (h, held) in wave.iter().enumerate() {
        for i in held.pvs.clone() {
            if let Some(uuid) = pv(i).and_then(|s| s.vg_uuid.as_deref()) {
                keyed.push((h, i, uuid));
            }
        }
    }
    // Merged sets: lists of (wave index, pv index).
    let mut merged: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut seen_uuid: Vec<(Option<VolumeId>, &str)> = Vec::new();
    for &(h, _, uuid) in &keyed {
        let scope = wave.get(h).and_then(|w| scope_of(layout, w.holder));
        if seen_uuid.contains(&(scope, uuid)) {
            continue;
        }
        seen_uuid.push((scope, uuid));
        let members: Vec<(usize, usize)> = keyed
            .iter()
            .filter(|&&(h2, _, u2)| {
                u2 == uuid && wave.get(h2).and_then(|w| scope_of(layout, w.holder)) == scope
            })
            .map(|&(h2, i, _)| (h2, i))
            .collect();
        let holders = distinct(members.iter().map(|&(h2, _)| h2));
        if holders.len() < 2 {
            continue;
        }
        if !duplicated(layout, &members) {
            merged.push(members);
            continue;
        }
        // Told apart by guest (VM ID and snapshot name) where the holders
        // say; disks without such a name stay alone.
        let mut by_guest: Vec<(GuestKey, Vec<(usize, usize)>)> = Vec::new();
        for &(h2, i) in &members {
            let Some(key) = wave.get(h2).and_then(|w| guest_key(layout, w.holder)) else {
                continue;
            };
            match by_guest.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push((h2, i)),
                None => by_guest.push((key, vec![(h2, i)])),
            }
        }
        for (_, list) in by_guest {
            if distinct(list.iter().map(|&(h2, _)| h2)).len() >= 2 && !duplicated(layout, &list) {
                merged.push(list);
            }
        }
    }
    // PVs without metadata join the merged set whose metadata names them.
    for (h, held) in wave.iter().enumerate() {
        let scope = scope_of(layout, held.holder);
        for i in held.pvs.clone() {
            let Some(scan) = pv(i) else { continue };
            if scan.vg_uuid.is_some() {
                continue;
            }
            let named = |set: &Vec<(usize, usize)>| {
                set.iter().any(|&(h2, j)| {
                    wave.get(h2).and_then(|w| scope_of(layout, w.holder)) == scope
                        && pv(j)
                            .and_then(|s| s.metadata.as_deref())
                            .is_some_and(|m| m.contains(scan.pv_uuid.as_str()))
                })
            };
            if let Some(set) = merged.iter_mut().find(|s| named(s)) {
                set.push((h, i));
            }
        }
    }
    // Each disk's own PVs that joined no merged set assemble alone, in
    // the wave's order, a merged set at its first disk's turn.
    let in_merged = |i: usize| merged.iter().any(|s| s.iter().any(|&(_, j)| j == i));
    let mut sets = Vec::new();
    for (h, held) in wave.iter().enumerate() {
        let own: Vec<usize> = held.pvs.clone().filter(|&i| !in_merged(i)).collect();
        if !own.is_empty() {
            sets.push(AssemblySet {
                holder: h,
                pvs: own,
            });
        }
        for set in &merged {
            if set.iter().map(|&(h2, _)| h2).min() == Some(h) {
                let mut pvs: Vec<usize> = set.iter().map(|&(_, i)| i).collect();
                pvs.sort_unstable();
                sets.push(AssemblySet { holder: h, pvs });
            }
        }
    }
    sets
}

/// A VG assembled from the groups `first_group..` that misses a PV found
/// on another disk of the same machine in `wave` (a copy of the disk that
/// could not be told apart): say where it is and why it was not joined.
fn explain_missing(layout: &mut Layout, wave: &[Held], holder: VolumeId, first_group: usize) {
    let scope = scope_of(layout, holder);
    let mut hints: Vec<(usize, String)> = Vec::new();
    for (gi, g) in layout.groups.iter().enumerate().skip(first_group) {
        for p in g.pvs.iter().filter(|p| p.found.is_none()) {
            let places: Vec<String> = wave
                .iter()
                .filter(|w| w.holder != holder && scope_of(layout, w.holder) == scope)
                .filter(|w| {
                    w.pvs.clone().any(|i| {
                        layout
                            .pvs
                            .get(i)
                            .is_some_and(|pv| pv.scan.pv_uuid == p.uuid)
                    })
                })
                .filter_map(|w| layout.volumes.get(w.holder.0).map(|v| v.name.clone()))
                .collect();
            if !places.is_empty() {
                hints.push((gi, format!(
                    "PV {} ({}) is on {}, which hold copies of the same PV: which one belongs with {} cannot be told from their names, so none was joined",
                    p.key,
                    p.uuid,
                    places.join(", "),
                    layout.volumes.get(holder.0).map_or("", |v| v.name.as_str()),
                )));
            }
        }
    }
    for (gi, hint) in hints {
        if let Some(g) = layout.groups.get_mut(gi) {
            g.problems.push(hint.into());
        }
    }
}

/// The distinct values, in first-seen order.
fn distinct(items: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Whether a PV UUID shows twice among `members` (pv indices).
fn duplicated(layout: &Layout, members: &[(usize, usize)]) -> bool {
    let uuids: Vec<&str> = members
        .iter()
        .filter_map(|&(_, i)| layout.pvs.get(i).map(|p| p.scan.pv_uuid.as_str()))
        .collect();
    uuids
        .iter()
        .enumerate()
        .any(|(k, u)| uuids.iter().skip(k + 1).any(|v| v == u))
}

/// A Proxmox guest a volume's LV name belongs to: VM ID and snapshot.
type GuestKey = (u32, Option<String>);

/// The guest of an LV named like a Proxmox volume (`vm-100-disk-1`,
/// `base-100-disk-0`, `snap_vm-100-disk-1_before`).
fn guest_key(layout: &Layout, vid: VolumeId) -> Option<GuestKey> {
    let VolumeKind::LogicalVolume { lv, .. } = &layout.volumes.get(vid.0)?.kind else {
        return None;
    };
    let (volume, snapshot) = crate::pve::hostdb::split_snapshot(lv);
    let id = crate::pve::hostdb::id_from_name(volume)?;
    Some((id, snapshot.map(str::to_string)))
}

/// The container format of a disk image a volume's content shows.
fn image_format(kind: ContentKind) -> Option<crate::image::ImageFormat> {
    use crate::image::ImageFormat;
    match kind {
        ContentKind::Qcow2 => Some(ImageFormat::Qcow2),
        ContentKind::Vmdk => Some(ImageFormat::Vmdk),
        ContentKind::Vhd => Some(ImageFormat::Vhd),
        ContentKind::Vhdx => Some(ImageFormat::Vhdx),
        ContentKind::Vdi => Some(ImageFormat::Vdi),
        _ => None,
    }
}

/// Whether the last 512 bytes of `src` (volume `name`) are the footer of
/// a fixed VHD whose data is every byte before it: cookie `conectix`,
/// disk type 2 (fixed), a good checksum, and a current size of the
/// volume's size less the footer.
fn fixed_vhd_at_end(src: &dyn crate::io::ReadAt, name: &str) -> bool {
    use crate::image::vhd;
    let Some(at) = src.size().checked_sub(512).filter(|a| *a > 0) else {
        return false;
    };
    let mut b = [0u8; 512];
    if src.read_exact_at(at, &mut b).is_err() || !b.starts_with(vhd::COOKIE) {
        return false;
    }
    vhd::Footer::decode(&b, at, name)
        .is_ok_and(|f| f.disk_type == vhd::DiskType::Fixed && f.checksum_ok && f.current_size == at)
}

/// What [`image_in_volume`] gives: the virtual disk, its facts, its damage.
type InVolume = (
    std::sync::Arc<dyn crate::io::ReadAt>,
    Vec<String>,
    Vec<String>,
);

/// The virtual disk of a qcow2, VMDK, VHD, VHDX or VDI image stored in a
/// volume's bytes (`name` for messages), with its facts and damage;
/// refused when it has a backing or parent file (nothing says where that
/// would be, and its unallocated clusters would read as zeros instead of
/// the backing file's bytes).
fn image_in_volume(
    bytes: &std::sync::Arc<dyn crate::io::ReadAt>,
    name: &str,
    format: crate::image::ImageFormat,
) -> Result<InVolume, String> {
    use crate::image::{ImageFormat, vdi, vhd, vhdx, vmdk};
    use std::sync::Arc;
    let file = Arc::clone(bytes);
    let cannot = |e: crate::error::Error| {
        format!("holds a {} image that cannot be opened: {e}", format.name())
    };
    // (virtual disk, details, problems, the backing file it names)
    let (source, details, problems, backing): (Arc<dyn crate::io::ReadAt>, _, _, _) = match format {
        ImageFormat::Qcow2 => {
            let q = crate::image::qcow2::Qcow2::from_source(file, name, None).map_err(cannot)?;
            let b = q.backing_file().map(str::to_string);
            let facts = (q.details(), q.problems());
            (Arc::new(q), facts.0, facts.1, b)
        }
        ImageFormat::Vmdk => {
            let v = vmdk::Vmdk::from_source(file, name).map_err(cannot)?;
            let d = v.descriptor();
            let b = d.has_parent().then(|| {
                d.parent_hint
                    .clone()
                    .unwrap_or_else(|| format!("(parentCID {:08x})", d.parent_cid.unwrap_or(0)))
            });
            // from_source's note that the parent was not opened: the
            // refusal below says more.
            let p = v
                .problems()
                .into_iter()
                .filter(|p| !p.contains("the parent disk was not opened"))
                .collect();
            let details = v.details();
            (Arc::new(v), details, p, b)
        }
        ImageFormat::Vhd => {
            let v = vhd::Vhd::from_source(file, name).map_err(cannot)?;
            let b = (v.footer().disk_type == vhd::DiskType::Differencing).then(|| {
                v.parent_names()
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "(no name)".into())
            });
            // The volume ends where the volume does, not where the
            // image does: the footer at its end is not expected there,
            // and the copy at byte 0 is the one to use.
            let p = v
                .problems()
                .into_iter()
                .filter(|p| !p.contains("the copy at byte 0 is used"))
                .collect();
            let details = v.details();
            (Arc::new(v), details, p, b)
        }
        ImageFormat::Vhdx => {
            let v = vhdx::Vhdx::from_source(file, name).map_err(cannot)?;
            let b = v.metadata().has_parent.then(|| {
                v.parent_names()
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "(no name)".into())
            });
            let facts = (v.details(), v.problems());
            (Arc::new(v), facts.0, facts.1, b)
        }
        ImageFormat::Vdi => {
            let v = vdi::Vdi::from_source(file, name).map_err(cannot)?;
            let b = (v.header().kind == vdi::VdiType::Differencing).then(|| {
                format!(
                    "(the VDI with UUID {})",
                    vdi::vbox_uuid_text(&v.header().parent_uuid)
                )
            });
            let facts = (v.details(), v.problems());
            (Arc::new(v), facts.0, facts.1, b)
        }
        other => {
            return Err(format!(
                "holds a {} image, which is not read here",
                other.name()
            ));
        }
    };
    if let Some(b) = backing {
        return Err(format!(
            "holds a {} image with the backing file {}, which a volume cannot name: not opened (copy both files out and open them with qemu-img or vmrescue)",
            format.name(),
            crate::text::escape_str(&b)
        ));
    }
    Ok((source, details, problems))
}

/// Whether volume `vid` is scanned again as a disk: a partition or LV
/// holding a partition table, or an LV holding a PV (a partition holding a
/// PV is read as a PV where it is, and a whole disk's bytes are its disk's),
/// or a partition or LV holding a qcow2 image (its virtual disk).
fn holds_disk(layout: &Layout, vid: VolumeId) -> bool {
    let v = layout.volume(vid);
    if v.size() < 512 || !v.mapping.unreadable().is_empty() {
        return false;
    }
    match (&v.kind, v.content.kind) {
        (VolumeKind::WholeDisk { .. }, ContentKind::Luks) => true,
        (VolumeKind::WholeDisk { .. }, _) => false,
        (VolumeKind::Partition { entry, .. }, ContentKind::PartitionTable) => !entry.extended,
        (VolumeKind::LogicalVolume { hidden, .. }, ContentKind::PartitionTable)
        | (VolumeKind::LogicalVolume { hidden, .. }, ContentKind::LvmPv) => !hidden,
        (VolumeKind::MdArray { .. }, ContentKind::PartitionTable | ContentKind::LvmPv) => true,
        // A disk image (qcow2, VMDK, VHD, VHDX, VDI) written into the volume.
        (VolumeKind::Partition { entry, .. }, k) if image_format(k).is_some() => !entry.extended,
        (VolumeKind::LogicalVolume { hidden, .. }, k) if image_format(k).is_some() => !hidden,
        (VolumeKind::MdArray { .. }, k) if image_format(k).is_some() => true,
        // A LUKS volume anywhere: its plain bytes, once unlocked, are a disk.
        (VolumeKind::LogicalVolume { hidden, .. }, ContentKind::Luks) => !hidden,
        (VolumeKind::Partition { entry, .. }, ContentKind::Luks) => !entry.extended,
        (VolumeKind::MdArray { .. }, ContentKind::Luks) => true,
        _ => false,
    }
}

/// The disk a volume's first byte is on.
pub(super) fn disk_of(layout: &Layout, vid: VolumeId) -> Option<DiskId> {
    let v = layout.volumes.get(vid.0)?;
    match &v.kind {
        VolumeKind::WholeDisk { disk } | VolumeKind::Partition { disk, .. } => Some(*disk),
        VolumeKind::LogicalVolume { .. }
        | VolumeKind::MdArray { .. }
        | VolumeKind::LdmVolume { .. } => v.mapping.disks().first().copied(),
    }
}

/// The volume whose nested disk holds volume `vid`, if any. An MD array,
/// and what its bytes hold (a VG on it, its partitions), belong to the
/// machine its members do: their scope is the array's.
pub(super) fn scope_of(layout: &Layout, vid: VolumeId) -> Option<VolumeId> {
    if let Some(VolumeKind::MdArray { array }) = layout.volumes.get(vid.0).map(|v| &v.kind) {
        return array.scope;
    }
    let holder = disk_of(layout, vid)
        .and_then(|d| layout.disks.get(d.0))
        .and_then(|d| d.parent)?;
    match layout.volumes.get(holder.0).map(|v| &v.kind) {
        Some(VolumeKind::MdArray { array }) => array.scope,
        _ => Some(holder),
    }
}

/// How many nested disks lie between volume `vid` and the disks given to
/// the scan (0 for a volume of those disks).
pub(super) fn depth(layout: &Layout, vid: VolumeId) -> usize {
    let mut n = 0;
    let mut at = vid;
    while let Some(p) = scope_of(layout, at) {
        n += 1;
        if n > MAX_DEPTH + 1 {
            break;
        }
        at = p;
    }
    n
}

/// Where volume `vid`'s bytes are on a disk given to the scan, when every
/// volume on the way is one linear run: (disk, offset, length).
fn host_extent(layout: &Layout, vid: VolumeId) -> Option<(DiskId, u64, u64)> {
    let linear = |vid: VolumeId| -> Option<(DiskId, u64, u64)> {
        let v = layout.volumes.get(vid.0)?;
        match v.mapping.segments() {
            [seg] => match &seg.target {
                Target::Linear(a) => Some((a.disk, a.offset, v.size())),
                _ => None,
            },
            _ => None,
        }
    };
    let (mut disk, mut offset, len) = linear(vid)?;
    for _ in 0..=MAX_DEPTH {
        let d = layout.disks.get(disk.0)?;
        let Some(parent) = d.parent else {
            return Some((disk, offset, len));
        };
        // A disk image file's bytes are not its holder's bytes, nor is a
        // disk image's virtual disk (qcow2, VMDK, VHD, VHDX, VDI).
        if matches!(d.origin, super::DiskOrigin::File { .. }) || image_format_is_container(d.format)
        {
            return None;
        }
        let (d, o, _) = linear(parent)?;
        disk = d;
        offset = offset.checked_add(o)?;
    }
    None
}

/// Whether a nested disk of this format is a container's virtual disk
/// (its bytes are not the holder's bytes where they lie).
fn image_format_is_container(f: crate::image::ImageFormat) -> bool {
    !matches!(
        f,
        crate::image::ImageFormat::Raw | crate::image::ImageFormat::BlockDevice
    )
}
