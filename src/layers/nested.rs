//! Nested disks: a volume whose content is a partition table, or an LV whose
//! content is an LVM PV (a VM's disk stored in a host LV or partition), is
//! scanned again as a disk of the same layout, to a bounded depth.
//!
//! The nested disk's volumes are named after the volume that holds it:
//! `<parent>/<local name>`, where the local name is the one the volume would
//! have if the parent's bytes were opened alone (`pve/vm-100-disk-0/p1`,
//! `pve/vm-100-disk-0/vg_ta/lv_root`). Each nested disk is its own LVM level:
//! its VGs assemble from its own PVs only, so a guest VG named like a host
//! VG (or a cloned guest's VG with the same UUID) never merges with another.

use super::{ContentKind, Layout, ScanOptions, VolumeId, VolumeKind, add_disk, scan_level};
use crate::io::{DiskId, Target};

/// How many disks deep nesting goes (a host LV holding a guest disk is 1).
pub const MAX_DEPTH: usize = 8;

/// How many nested disks one scan reads at most.
pub(super) const MAX_NESTED: usize = 256;

/// Scan every volume of `layout` that holds a disk, and the volumes found
/// in those, breadth first.
pub(super) fn scan_nested(layout: &mut Layout) {
    scan_nested_from(layout, 0);
}

/// [`scan_nested`] for the volumes from index `first` on (those of a disk
/// added later: a disk image stored in a filesystem).
pub(super) fn scan_nested_from(layout: &mut Layout, first: usize) {
    // (disk, offset, length) on a disk given to the scan, of each volume
    // scanned as a disk: the same bytes are never scanned twice.
    let mut scanned: Vec<(DiskId, u64, u64)> = Vec::new();
    let mut nested = 0usize;
    let mut next = first;
    // MD arrays are assembled once every volume found so far was scanned
    // (their members may be on nested disks), and their volumes scanned in
    // turn: a bounded number of rounds.
    for _round in 0..=MAX_DEPTH {
        scan_from(layout, &mut next, &mut nested, &mut scanned);
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
) {
    while *next < layout.volumes.len() {
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
        let qcow2 = v.content.kind == ContentKind::Qcow2;
        let mut src = layout.volume_as_disk(vid);
        if qcow2 {
            // A qcow2 image written straight into the volume: its virtual
            // disk is the nested disk.
            match qcow2_in_volume(&src.source, &v.name) {
                Ok((image, details)) => {
                    src.source = image;
                    src.format = crate::image::ImageFormat::Qcow2;
                    src.format_details = details;
                }
                Err(why) => {
                    layout.volumes[vid.0].problems.push(why.into());
                    continue;
                }
            }
        }
        let d = add_disk(layout, src, Some(vid));
        let first = layout.volumes.len();
        scan_level(layout, &[d], &prefix, ScanOptions::default());
        if md {
            // A VG on an MD array belongs to the machine the array does:
            // its LVs are named as at the array's own level (`vg_md/root`).
            let outer = scope_of(layout, vid)
                .and_then(|s| layout.volumes.get(s.0))
                .map(|v| format!("{}/", v.name))
                .unwrap_or_default();
            for v in layout.volumes.iter_mut().skip(first) {
                if let VolumeKind::LogicalVolume { .. } = v.kind
                    && let Some(rest) = v.name.strip_prefix(&prefix)
                {
                    v.name = format!("{outer}{rest}");
                }
            }
        }
    }
}

/// The virtual disk of a qcow2 image stored in a volume's bytes (`name`
/// for messages), with its facts; refused when it has a backing file
/// (nothing says where that would be, and its unallocated clusters would
/// read as zeros instead of the backing file's bytes).
fn qcow2_in_volume(
    bytes: &std::sync::Arc<dyn crate::io::ReadAt>,
    name: &str,
) -> Result<(std::sync::Arc<dyn crate::io::ReadAt>, Vec<String>), String> {
    let q = crate::image::qcow2::Qcow2::from_source(std::sync::Arc::clone(bytes), name, None)
        .map_err(|e| format!("holds a qcow2 image that cannot be opened: {e}"))?;
    if let Some(b) = q.backing_file() {
        return Err(format!(
            "holds a qcow2 image with the backing file {}, which a volume cannot name: not opened (copy both files out and open them with qemu-img or vmrescue)",
            crate::text::escape_str(b)
        ));
    }
    let details = q.details();
    Ok((std::sync::Arc::new(q), details))
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
        (VolumeKind::WholeDisk { .. }, _) => false,
        (VolumeKind::Partition { entry, .. }, ContentKind::PartitionTable) => !entry.extended,
        (VolumeKind::LogicalVolume { hidden, .. }, ContentKind::PartitionTable)
        | (VolumeKind::LogicalVolume { hidden, .. }, ContentKind::LvmPv) => !hidden,
        (VolumeKind::MdArray { .. }, ContentKind::PartitionTable | ContentKind::LvmPv) => true,
        (VolumeKind::Partition { entry, .. }, ContentKind::Qcow2) => !entry.extended,
        (VolumeKind::LogicalVolume { hidden, .. }, ContentKind::Qcow2) => !hidden,
        (VolumeKind::MdArray { .. }, ContentKind::Qcow2) => true,
        _ => false,
    }
}

/// The disk a volume's first byte is on.
pub(super) fn disk_of(layout: &Layout, vid: VolumeId) -> Option<DiskId> {
    let v = layout.volumes.get(vid.0)?;
    match &v.kind {
        VolumeKind::WholeDisk { disk } | VolumeKind::Partition { disk, .. } => Some(*disk),
        VolumeKind::LogicalVolume { .. } | VolumeKind::MdArray { .. } => {
            v.mapping.disks().first().copied()
        }
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
        // qcow2 image's virtual disk.
        if matches!(d.origin, super::DiskOrigin::File { .. })
            || d.format == crate::image::ImageFormat::Qcow2
        {
            return None;
        }
        let (d, o, _) = linear(parent)?;
        disk = d;
        offset = offset.checked_add(o)?;
    }
    None
}
