//! The layer tree: disks → partitions → LVM volume groups → logical volumes → content.
//!
//! [`scan`] walks every disk given, reads partition tables, probes every
//! volume, reads LVM2 physical volumes wherever they are and assembles
//! their volume groups (a VG may span several disks), and returns one
//! [`Layout`]. A disk is any byte source ([`DiskSource`]): a host image
//! file or device, or a volume of another layout read again as a disk
//! ([`scan_sources`]). Nothing is written; damage found on the way is listed in the
//! `problems` of the disk, volume or group concerned and the rest is still read.

pub mod fstab;
pub mod inner;
pub mod inspect;
pub(crate) mod labels;
pub mod ldm;
pub mod luks;
pub mod lvm;
pub mod md;
mod names;
mod nested;
pub mod partition;
pub mod probe;
pub mod recover;
pub mod tree;
pub mod windows;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::image::{Image, ImageFormat};
use crate::io::{Area, DiskId, MappedView, Mapping, ReadAt, Target};
use crate::problem::Problem;

pub use names::dm_name;
pub use nested::MAX_DEPTH as MAX_NESTED_DEPTH;
pub use probe::{Content, ContentKind};

/// How many disks deep volumes read again as disks nest at most.
pub const MAX_NESTING: usize = nested::MAX_DEPTH;

/// Index of a volume in [`Layout::volumes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct VolumeId(pub usize);

/// Where a disk's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskOrigin {
    /// A host image file or block device, at the path given.
    Host(PathBuf),
    /// The bytes of a volume of another layout (a disk image inside an LV
    /// or a partition), read again as a disk.
    Volume {
        /// The volume's name in that layout (`vg_ta/lv_root`, `p2`).
        volume: String,
        /// Where the disks its bytes are on came from, in mapping order.
        on: Vec<DiskOrigin>,
    },
    /// A disk image stored as a file in a filesystem vmrescue reads itself
    /// (a qcow2 under a Proxmox host's `/var/lib/vz/images/`), opened
    /// without copying it out ([`inner`]).
    File {
        /// The file's path in that filesystem, escaped for display.
        path: String,
        /// The volume whose filesystem holds the file (`p1`, `pve/root`).
        volume: String,
        /// Where that volume's disks came from, in mapping order.
        on: Vec<DiskOrigin>,
    },
}

impl DiskOrigin {
    /// The host file or device, when the disk is one.
    pub fn host_path(&self) -> Option<&Path> {
        match self {
            DiskOrigin::Host(p) if crate::image::nbd::is_uri_path(p) => None,
            DiskOrigin::Host(p) => Some(p),
            DiskOrigin::Volume { .. } | DiskOrigin::File { .. } => None,
        }
    }

    /// Whether the bytes come, at any depth, from a file inside a
    /// filesystem that vmrescue reads itself (the kernel cannot loop-mount
    /// such a file: it is not a file on the host).
    pub fn in_file(&self) -> bool {
        match self {
            DiskOrigin::Host(_) => false,
            DiskOrigin::File { .. } => true,
            DiskOrigin::Volume { on, .. } => on.iter().any(DiskOrigin::in_file),
        }
    }

    /// A short name: the host file's name, or the volume's name.
    pub fn short_name(&self) -> String {
        match self {
            DiskOrigin::Host(p) if crate::image::nbd::is_uri_path(p) => p.display().to_string(),
            DiskOrigin::Host(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            DiskOrigin::Volume { volume, .. } => volume.clone(),
            DiskOrigin::File { path, .. } => path
                .rsplit('/')
                .find(|n| !n.is_empty())
                .unwrap_or(path)
                .to_string(),
        }
    }
}

impl fmt::Display for DiskOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskOrigin::Host(p) => write!(f, "{}", p.display()),
            DiskOrigin::Volume { volume, on } => {
                write!(f, "{volume}")?;
                for (i, o) in on.iter().enumerate() {
                    write!(f, "{}{o}", if i == 0 { " on " } else { " + " })?;
                }
                Ok(())
            }
            DiskOrigin::File { path, volume, on } => {
                write!(f, "{path} in {volume}")?;
                for (i, o) in on.iter().enumerate() {
                    write!(f, "{}{o}", if i == 0 { " on " } else { " + " })?;
                }
                Ok(())
            }
        }
    }
}

/// One disk to scan: a byte source, where it comes from, and what its
/// container said about it.
#[derive(Clone)]
pub struct DiskSource {
    /// Where its bytes come from.
    pub origin: DiskOrigin,
    /// The virtual disk's bytes.
    pub source: Arc<dyn ReadAt>,
    /// Container format (a volume read as a disk is raw bytes).
    pub format: ImageFormat,
    /// Facts about the container (backing chain, snapshots).
    pub format_details: Vec<String>,
    /// For qcow2: the ID of the internal snapshot shown.
    pub snapshot: Option<String>,
    /// Damage to the container.
    pub problems: Vec<Problem>,
}

impl From<Image> for DiskSource {
    fn from(img: Image) -> DiskSource {
        DiskSource {
            origin: DiskOrigin::Host(img.path),
            source: img.source,
            format: img.format,
            format_details: img.details,
            snapshot: img.snapshot,
            problems: img.problems.into_iter().map(Problem::text).collect(),
        }
    }
}

/// One disk of the VM (an image file or block device, or a volume read as a disk).
#[derive(Clone)]
pub struct Disk {
    /// Its index.
    pub id: DiskId,
    /// `disk0`, `disk1`...
    pub name: String,
    /// Where its bytes come from: ask it ([`Disk::host_path`]) before
    /// handing the disk to anything that needs a host file.
    pub origin: DiskOrigin,
    /// The volume of this same layout whose bytes this disk is (a guest
    /// disk in a host LV, scanned again as a disk), or none for a disk
    /// given to the scan.
    pub parent: Option<VolumeId>,
    /// Container format.
    pub format: ImageFormat,
    /// Facts about the container (backing chain, snapshots).
    pub format_details: Vec<String>,
    /// For qcow2: the ID of the internal snapshot shown (the kernel engine
    /// has qemu-nbd show the same one).
    pub snapshot: Option<String>,
    /// The virtual disk's bytes.
    pub source: Arc<dyn ReadAt>,
    /// Its partition table, if any.
    pub table: Option<partition::Table>,
    /// Problems with this disk (unreadable table...).
    pub problems: Vec<Problem>,
}

impl Disk {
    /// Size of the virtual disk in bytes.
    pub fn size(&self) -> u64 {
        self.source.size()
    }

    /// This disk as a source to scan again: the same bytes, origin and
    /// container facts.
    pub fn source_again(&self) -> DiskSource {
        DiskSource {
            origin: self.origin.clone(),
            source: Arc::clone(&self.source),
            format: self.format,
            format_details: self.format_details.clone(),
            snapshot: self.snapshot.clone(),
            problems: self.problems.clone(),
        }
    }

    /// The host file or device holding this disk, for `what` needs one
    /// (a loop device, an in-use check, a write in place, an undo record);
    /// an error naming the disk when it is not a host file.
    pub fn host_path(&self, what: &str) -> crate::Result<&Path> {
        self.origin.host_path().ok_or_else(|| {
            if let DiskOrigin::Host(uri) = &self.origin {
                return crate::Error::Unsupported(format!(
                    "{} ({}) is a disk served over NBD, not a host file: {what} needs a host \
                     file or device (copy what you need out with `vmrescue cp`, or copy the \
                     whole disk with `qemu-img convert -O raw URI COPY.raw` and open the copy)",
                    self.name,
                    uri.display()
                ));
            }
            if self.origin.in_file() {
                return crate::Error::Unsupported(format!(
                    "{} ({}) is a disk image stored inside a filesystem that vmrescue reads itself, \
                     not a host file: {what} needs a host file (copy the image out with `vmrescue cp` \
                     and open the copy)",
                    self.name, self.origin
                ));
            }
            crate::Error::Unsupported(format!(
                "{} ({}) is not a host file or device but a volume read as a disk: {what} needs a host file",
                self.name, self.origin
            ))
        })
    }
}

/// What a volume is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeKind {
    /// A whole disk without a partition table.
    WholeDisk {
        /// The disk.
        disk: DiskId,
    },
    /// A partition.
    Partition {
        /// The disk.
        disk: DiskId,
        /// The kernel's number.
        number: u32,
        /// Its table entry.
        entry: partition::Partition,
    },
    /// An LVM logical volume.
    LogicalVolume {
        /// VG name.
        vg: String,
        /// LV name.
        lv: String,
        /// Hidden sub-LV (raid image, pool metadata...).
        hidden: bool,
        /// Segment types, in order, without repeats.
        segtypes: Vec<String>,
    },
    /// A volume of a Windows dynamic disk group ([`ldm`]).
    LdmVolume {
        /// The disk group's name.
        group: String,
        /// The volume's name (`Volume1`).
        volume: String,
        /// `simple`, `spanned`, `striped`, `mirrored` or `raid5`.
        layout: String,
        /// The drive letter Windows last gave it (`E:`), when stored.
        hint: Option<String>,
    },
    /// A Linux MD array assembled from its members ([`md`]).
    MdArray {
        /// The array: its geometry, members and what is missing.
        array: Box<md::MdArray>,
    },
}

/// What inspection of the guest found for a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GuestRole {
    /// Where the guest mounts it (from its fstab), or `swap`.
    pub mountpoint: Option<String>,
    /// The OS name when this is a guest root ("CentOS release 6.4 (Final)").
    pub os: Option<String>,
    /// The guest's host name, on a guest root (`/etc/hostname`, or
    /// `HOSTNAME=` in `/etc/sysconfig/network` on older Red Hat guests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The Proxmox guest this volume is a disk of (`vm-100-disk-0` on a
    /// host whose configuration was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pve: Option<crate::pve::hostdb::GuestLabel>,
    /// On a Windows guest's system volume: what its registry hives say
    /// (product, build, computer name, drive letters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<windows::WindowsGuest>,
}

/// A volume: a byte range that holds content.
#[derive(Clone, serde::Serialize)]
pub struct Volume {
    /// Its index.
    pub id: VolumeId,
    /// The name commands accept: `p1`, `disk1p2`, `vg_ta/lv_root`, `disk0`.
    pub name: String,
    /// What it is.
    pub kind: VolumeKind,
    /// Where its bytes are.
    pub mapping: Mapping,
    /// What it holds.
    pub content: Content,
    /// What the guest does with it.
    pub guest: GuestRole,
    /// Problems (unreadable segments, missing PVs, damage in its filesystem...).
    pub problems: Vec<Problem>,
    /// Facts about its filesystem worth knowing ("journal replayed in memory: ...").
    pub notes: Vec<String>,
}

impl Volume {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.mapping.size()
    }

    /// Whether this volume holds a filesystem that can be browsed.
    pub fn is_filesystem(&self) -> bool {
        self.content.kind.is_filesystem()
            && self.mapping.unreadable().is_empty()
            && !matches!(self.kind, VolumeKind::LogicalVolume { hidden: true, .. })
    }
}

/// Everything found on a set of disks.
#[derive(Clone)]
pub struct Layout {
    /// The disks, in the order given.
    pub disks: Vec<Disk>,
    /// Every volume: whole disks, partitions, LVs.
    pub volumes: Vec<Volume>,
    /// LVM volume groups.
    pub groups: Vec<lvm::VolumeGroup>,
    /// The PVs found, as given to assembly.
    pub pvs: Vec<lvm::PvOnDisk>,
    /// Facts found by inspection that belong to no one volume.
    pub notes: Vec<String>,
    /// The subvolumes inspection found on each btrfs volume (top level
    /// first): children of the volume in the tree, `VOLUME@SUBVOLUME` names.
    pub subvolumes: Vec<(VolumeId, Vec<crate::fs::btrfs::SubvolInfo>)>,
    /// Where the guests mount btrfs subvolumes (volume, `subvol=` or
    /// `subvolid=`, mountpoint), from their fstabs and boot entries.
    pub subvolume_mounts: Vec<(VolumeId, crate::fs::SubvolSpec, String)>,
    /// The LUKS volumes found, with what their headers say ([`luks`]).
    pub luks: Vec<(VolumeId, luks::LuksSummary)>,
    /// The LUKS volumes unlocked, with what dm-crypt needs to show their
    /// plain bytes (the kernel engine; the key is wiped when dropped).
    pub crypt: Vec<(VolumeId, Arc<luks::DmCrypt>)>,
}

impl Layout {
    /// A layout of no disks, before a scan adds them.
    pub fn empty() -> Layout {
        Layout {
            disks: Vec::new(),
            volumes: Vec::new(),
            groups: Vec::new(),
            pvs: Vec::new(),
            notes: Vec::new(),
            subvolumes: Vec::new(),
            subvolume_mounts: Vec::new(),
            luks: Vec::new(),
            crypt: Vec::new(),
        }
    }

    /// Read every disk's container tables again ([`ReadAt::refresh`]: a
    /// qcow2 written since it was opened maps other clusters now), so no
    /// stale L1/L2 table is used. The layers found are kept. Returns the
    /// disks that could not be read again (they read as before).
    pub fn refresh_disks(&self) -> Vec<String> {
        self.disks
            .iter()
            .filter_map(|d| {
                d.source
                    .refresh()
                    .err()
                    .map(|e| format!("{}: reading it again: {e}", d.origin))
            })
            .collect()
    }

    /// The bytes of a volume.
    pub fn open_volume(&self, id: VolumeId) -> Arc<dyn ReadAt> {
        let disks = self.disks.iter().map(|d| Arc::clone(&d.source)).collect();
        Arc::new(MappedView::new(self.volumes[id.0].mapping.clone(), disks))
    }

    /// Volume `id` as a disk to scan again ([`scan_sources`]): a disk
    /// image stored in an LV or a partition.
    pub fn volume_as_disk(&self, id: VolumeId) -> DiskSource {
        DiskSource {
            origin: DiskOrigin::Volume {
                volume: self.volume(id).name.clone(),
                on: self.origins_of(id),
            },
            source: self.open_volume(id),
            format: ImageFormat::Raw,
            format_details: Vec::new(),
            snapshot: None,
            problems: Vec::new(),
        }
    }

    /// Where the disks volume `id`'s bytes are on came from, in mapping order.
    fn origins_of(&self, id: VolumeId) -> Vec<DiskOrigin> {
        self.volume(id)
            .mapping
            .disks()
            .iter()
            .filter_map(|d| self.disks.get(d.0))
            .map(|d| d.origin.clone())
            .collect()
    }

    /// The volume with this id.
    pub fn volume(&self, id: VolumeId) -> &Volume {
        &self.volumes[id.0]
    }

    /// Every problem found, each with where it was found, for the error stream.
    pub fn all_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for d in &self.disks {
            for p in &d.problems {
                out.push(p.clone().within(d.origin.to_string()));
            }
            if let Some(t) = &d.table {
                for p in &t.problems {
                    out.push(p.clone().within(format!(
                        "{}: {} partition table",
                        d.origin,
                        t.scheme.name()
                    )));
                }
            }
        }
        for pv in &self.pvs {
            for p in &pv.scan.problems {
                out.push(p.clone().within(format!(
                    "{}: PV {}",
                    self.disks[pv.area.disk.0].origin, pv.volume
                )));
            }
        }
        for g in &self.groups {
            for p in &g.problems {
                out.push(p.clone().within(format!("VG {}", g.name)));
            }
        }
        for v in &self.volumes {
            // Name the file the volume's first byte is on, then the volume.
            let disk = v.mapping.segments().first().and_then(|s| match &s.target {
                Target::Linear(a) => Some(a.disk),
                Target::Striped { stripes, .. } => stripes.first().map(|a| a.disk),
                _ => None,
            });
            let file = match &v.kind {
                VolumeKind::WholeDisk { disk } | VolumeKind::Partition { disk, .. } => Some(*disk),
                VolumeKind::LogicalVolume { .. }
                | VolumeKind::MdArray { .. }
                | VolumeKind::LdmVolume { .. } => disk,
            }
            .and_then(|d| self.disks.get(d.0))
            .map(|d| format!("{}: ", d.origin))
            .unwrap_or_default();
            for p in &v.problems {
                out.push(p.clone().within(format!("{file}{}", v.name)));
            }
        }
        out
    }

    /// The volumes that hold browsable filesystems.
    pub fn filesystems(&self) -> impl Iterator<Item = &Volume> {
        self.volumes.iter().filter(|v| v.is_filesystem())
    }
}

/// The name of partition `number` on disk `disk`: `p2` on the first disk, `disk1p2` on others.
pub fn partition_name(disk: DiskId, number: u32) -> String {
    if disk.0 == 0 {
        format!("p{number}")
    } else {
        format!("disk{}p{number}", disk.0)
    }
}

/// The name of volume `index` (from 1) that a search of disk `disk` found:
/// `r1` on the first disk, `disk1r1` on others.
pub fn recovered_name(disk: DiskId, index: u32) -> String {
    if disk.0 == 0 {
        format!("r{index}")
    } else {
        format!("disk{}r{index}", disk.0)
    }
}

/// How [`scan_with`] reads the disks.
#[derive(Default, Clone, Copy)]
pub struct ScanOptions<'a> {
    /// Search every disk for lost volumes ([`recover::search`]) even when
    /// it has a partition table or content at its start. Without it a
    /// disk is searched only when nothing at all is found at its start.
    pub search: bool,
    /// Told the progress of a search (bytes covered, disk size).
    pub progress: Option<recover::Progress<'a>>,
    /// Gives the passphrase of each LUKS volume met; without it LUKS
    /// volumes stay locked ([`luks::open`]).
    pub unlock: Option<luks::Unlocker<'a>>,
}

/// Read the layers of `images` (the first is the one named on the command
/// line, the others came with `--disk`).
pub fn scan(images: Vec<Image>) -> Layout {
    scan_with(images, ScanOptions::default())
}

/// [`scan`], with options.
pub fn scan_with(images: Vec<Image>, options: ScanOptions<'_>) -> Layout {
    scan_sources(images.into_iter().map(DiskSource::from).collect(), options)
}

/// Read the layers of any byte sources taken as disks, in order: host
/// images ([`scan_with`]) or volumes of another layout
/// ([`Layout::volume_as_disk`]).
pub fn scan_sources(sources: Vec<DiskSource>, options: ScanOptions<'_>) -> Layout {
    let mut layout = Layout::empty();
    let ids: Vec<DiskId> = sources
        .into_iter()
        .map(|src| add_disk(&mut layout, src, None))
        .collect();
    scan_level(&mut layout, &ids, "", options);
    nested::scan_nested(&mut layout, options.unlock);
    explain_pvs_without_a_vg(&mut layout);
    check_volumes(&mut layout);
    layout
}

/// Read the layers of `layout`'s disks again (the disks given to the scan,
/// not those found inside them), with `options`: the TUI's unlock of a
/// LUKS volume with the passphrase typed in its dialog. What the first
/// scan said of a disk's container is kept once.
pub fn rescan(layout: &Layout, options: ScanOptions<'_>) -> Layout {
    let sources = layout
        .disks
        .iter()
        .filter(|d| d.parent.is_none())
        .map(Disk::source_again)
        .collect();
    let mut again = scan_sources(sources, options);
    for d in &mut again.disks {
        // The table's problems were in the first scan's list too.
        let mut seen = std::collections::HashSet::new();
        d.problems.retain(|p| seen.insert(p.clone()));
    }
    again
}

/// Add a disk to the layout and read its partition table. `parent` is the
/// volume of this layout whose bytes it is, for a nested disk.
fn add_disk(layout: &mut Layout, src: DiskSource, parent: Option<VolumeId>) -> DiskId {
    let i = layout.disks.len();
    let id = DiskId(i);
    let mut disk = Disk {
        id,
        name: format!("disk{i}"),
        origin: src.origin,
        parent,
        format: src.format,
        format_details: src.format_details,
        snapshot: src.snapshot,
        source: src.source,
        table: None,
        problems: src.problems,
    };
    if disk.size() == 0 {
        disk.problems
            .push("empty (0 bytes): not a disk image".into());
    } else if disk.size() < 512 {
        disk.problems.push(format!(
            "only {} bytes: too small to hold a partition table or a filesystem; not a disk image",
            disk.size()
        ).into());
    } else {
        match partition::read(&*disk.source) {
            Ok(t) => disk.table = t,
            Err(e) => disk.problems.push(Problem::from(&e)),
        }
    }
    layout.disks.push(disk);
    id
}

/// Scan `disks` (already added) as one level: their partitions, the PVs on
/// them, the volume groups those PVs assemble (from these PVs only) and
/// their LVs. Volume names start with `prefix` (empty at the top level,
/// `<parent volume>/` for a nested disk); a disk's local names count the
/// disks of this level from 0 (`p1`, `disk1p2`, `disk0`).
fn scan_level(layout: &mut Layout, disks: &[DiskId], prefix: &str, options: ScanOptions<'_>) {
    let first_pv = layout.pvs.len();
    scan_disks(layout, disks, prefix, options);
    ldm::scan(layout, disks, &|_| prefix.to_string());
    let pvs: Vec<usize> = (first_pv..layout.pvs.len()).collect();
    assemble_level(layout, &pvs, prefix);
}

/// The first half of [`scan_level`]: the partitions of `disks` (or the
/// whole disks), each probed, and the PVs on them added to `layout.pvs`.
fn scan_disks(layout: &mut Layout, disks: &[DiskId], prefix: &str, options: ScanOptions<'_>) {
    let first_volume = layout.volumes.len();
    for d in disks {
        if let Some(disk) = layout.disks.get_mut(d.0) {
            short_of_table(disk);
        }
    }
    // Partitions, or the whole disk when there is no usable table.
    for (local, &id) in disks.iter().enumerate() {
        let local = DiskId(local);
        let Some(disk) = layout.disks.get(id.0) else {
            continue;
        };
        let size = disk.size();
        let parts: Vec<partition::Partition> = disk
            .table
            .as_ref()
            .map(|t| t.partitions.clone())
            .unwrap_or_default();
        let found = search_disk(&mut layout.disks[id.0], local, &parts, options);
        for (i, f) in found.into_iter().enumerate() {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let entry = partition::Partition {
                number,
                start: f.start,
                size: f.size,
                part_type: partition::PartType::Recovered(f.describe()),
                name: None,
                uuid: None,
                bootable: false,
                extended: false,
            };
            push_volume(
                layout,
                format!("{prefix}{}", recovered_name(local, number)),
                VolumeKind::Partition {
                    disk: id,
                    number,
                    entry,
                },
                Mapping::linear(
                    Area {
                        disk: id,
                        offset: f.start,
                    },
                    f.size,
                ),
            );
        }
        if layout.volumes.iter().any(|v| is_recovered_on(v, id)) && parts.is_empty() {
            continue;
        }
        if parts.is_empty() {
            if size > 0 {
                push_volume(
                    layout,
                    format!("{prefix}disk{}", local.0),
                    VolumeKind::WholeDisk { disk: id },
                    Mapping::linear(
                        Area {
                            disk: id,
                            offset: 0,
                        },
                        size,
                    ),
                );
            }
            continue;
        }
        for p in parts {
            let start = p.start.min(size);
            let len = p.size.min(size - start);
            let mapping = Mapping::linear(
                Area {
                    disk: id,
                    offset: start,
                },
                len,
            );
            push_volume(
                layout,
                format!("{prefix}{}", partition_name(local, p.number)),
                VolumeKind::Partition {
                    disk: id,
                    number: p.number,
                    entry: p,
                },
                mapping,
            );
        }
    }
    // What the probes below read, asked for all at once (a network disk
    // answers them in parallel; local sources ignore it).
    for vi in first_volume..layout.volumes.len() {
        if layout.volumes[vi].size() > 0 {
            probe::prefetch(&*layout.open_volume(VolumeId(vi)));
        }
    }
    // Probe every volume so far; read PVs.
    for vi in first_volume..layout.volumes.len() {
        let v = &layout.volumes[vi];
        if let VolumeKind::Partition { entry, .. } = &v.kind
            && entry.extended
        {
            continue;
        }
        if v.size() == 0 {
            continue;
        }
        let src = layout.open_volume(VolumeId(vi));
        let content = probe::probe(&*src);
        let kind = content.kind;
        layout.volumes[vi].content = content;
        if matches!(kind, ContentKind::Unknown | ContentKind::Zeros)
            && let Some(hint) = lvm::damaged_label_hint(&*src)
        {
            layout.volumes[vi].problems.push(hint.into());
        }
        if kind == ContentKind::LvmPv {
            let v = &layout.volumes[vi];
            let area = match v.mapping.segments() {
                [seg] => match &seg.target {
                    Target::Linear(a) => Some(*a),
                    _ => None,
                },
                _ => None,
            };
            let Some(area) = area else { continue };
            match lvm::read_pv(&*src) {
                Ok(Some(scan)) => layout.pvs.push(lvm::PvOnDisk {
                    volume: v.name.clone(),
                    area,
                    size: v.size(),
                    scan,
                }),
                Ok(None) => {}
                Err(e) => layout.volumes[vi]
                    .problems
                    .push(Problem::from(&e).within("LVM2 PV")),
            }
        }
    }
}

/// The second half of [`scan_level`]: the volume groups that the PVs
/// `pvs` (indices into `layout.pvs`) assemble, from these PVs only, and
/// their LVs named `<prefix><vg>/<lv>`. A guest's VG never merges with a
/// host VG of the same name (or UUID, for a cloned guest).
fn assemble_level(layout: &mut Layout, pvs: &[usize], prefix: &str) {
    let first_group = layout.groups.len();
    // The disks, for thin pool metadata read through its LV's mapping.
    let sources: Vec<Arc<dyn ReadAt>> =
        layout.disks.iter().map(|d| Arc::clone(&d.source)).collect();
    let chosen: Vec<lvm::PvOnDisk> = pvs
        .iter()
        .filter_map(|&i| layout.pvs.get(i).cloned())
        .collect();
    let mut groups = lvm::assemble_with_disks(&chosen, &sources);
    for g in &mut groups {
        for p in &mut g.pvs {
            p.found = p.found.and_then(|f| pvs.get(f).copied());
        }
    }
    layout.groups.extend(groups);
    // Logical volumes.
    for gi in first_group..layout.groups.len() {
        for li in 0..layout.groups[gi].lvs.len() {
            let g = &layout.groups[gi];
            let lv = &g.lvs[li];
            let mut segtypes: Vec<String> = Vec::new();
            for s in &lv.segments {
                if !segtypes.contains(&s.segtype) {
                    segtypes.push(s.segtype.clone());
                }
            }
            let kind = VolumeKind::LogicalVolume {
                vg: g.name.clone(),
                lv: lv.name.clone(),
                hidden: !lv.visible,
                segtypes,
            };
            let name = format!("{prefix}{}/{}", g.name, lv.name);
            let mapping = lv.mapping.clone();
            let missing: Vec<String> = lv.missing_pvs.clone();
            let (lv_notes, lv_problems) = (lv.notes.clone(), lv.problems.clone());
            let vid = push_volume(layout, name, kind, mapping);
            layout.volumes[vid.0].notes.extend(lv_notes);
            layout.volumes[vid.0].problems.extend(lv_problems);
            let mut unreadable: Vec<String> = Vec::new();
            for reason in layout.volumes[vid.0].mapping.unreadable() {
                if !unreadable.iter().any(|r| r == reason) {
                    unreadable.push(reason.to_string());
                }
            }
            if !missing.is_empty() {
                layout.volumes[vid.0]
                    .problems
                    .push(format!("incomplete: missing PV {}", missing.join(", ")).into());
            }
            if unreadable.is_empty() && layout.volumes[vid.0].size() > 0 {
                let src = layout.open_volume(vid);
                layout.volumes[vid.0].content = probe::probe(&*src);
            } else if !unreadable.is_empty() {
                layout.volumes[vid.0].content = Content {
                    detail: Some(unreadable.join("; ")),
                    ..Content::new(ContentKind::Unreadable)
                };
            }
        }
    }
}

/// A PV that joined no VG and whose own metadata areas hold no VG metadata
/// (`--metadatacopies 0`, areas marked ignored) belongs to a VG described
/// only on its other PVs: say so, or the operator sees a bare
/// `LVM2_member` and no reason. A PV in no VG at all gets a note.
fn explain_pvs_without_a_vg(layout: &mut Layout) {
    for (i, pv) in layout.pvs.iter().enumerate() {
        let in_a_group = layout
            .groups
            .iter()
            .any(|g| g.pvs.iter().any(|p| p.found == Some(i)));
        if in_a_group || pv.scan.metadata.is_some() || !pv.scan.problems.is_empty() {
            continue;
        }
        let Some(v) = layout.volumes.iter_mut().find(|v| v.name == pv.volume) else {
            continue;
        };
        let uuid = &pv.scan.pv_uuid;
        let others = "its volume group is described only on the VG's other PVs: open their disks too (--disk)";
        if pv.scan.metadata_areas.is_empty() {
            v.problems.push(
                format!(
                    "LVM2 PV {uuid} has no metadata area (made with --metadatacopies 0): {others}"
                )
                .into(),
            );
        } else if pv.scan.in_use == Some(true) {
            v.problems.push(format!(
                "LVM2 PV {uuid} is used by a volume group but its metadata areas hold no copy of the VG's metadata (marked ignored): {others}"
            ).into());
        } else {
            v.notes.push(format!(
                "LVM2 PV {uuid} belongs to no volume group (its metadata areas are empty)"
            ));
        }
    }
}

/// Problems a probe reveals: content that claims more bytes than its volume
/// holds (a truncated image), and a disk that holds nothing recognisable.
fn check_volumes(layout: &mut Layout) {
    check_volumes_from(layout, 0);
}

/// [`check_volumes`] for the volumes from index `first` on.
fn check_volumes_from(layout: &mut Layout, first: usize) {
    for v in layout.volumes.iter_mut().skip(first) {
        let c = &v.content;
        // Unreadable for a reason of its own (a read error, a corrupt
        // container table), not because the volume lacks parts (listed already).
        if c.kind == ContentKind::Unreadable && v.mapping.unreadable().is_empty() {
            v.problems.push(
                format!(
                    "cannot read its first bytes: {}",
                    c.detail.as_deref().unwrap_or("read error")
                )
                .into(),
            );
        }
        // A hidden sub-LV (a raid image) holds a part of its LV's content.
        if let Some(claimed) = c.size
            && claimed > v.mapping.size()
            && !matches!(v.kind, VolumeKind::LogicalVolume { hidden: true, .. })
        {
            v.problems.push(format!(
                "{} {} says it is {claimed} bytes, but the volume holds only {}: the image may be truncated, or the volume shrunk under its content",
                c.kind.name(),
                c.size_source(),
                v.mapping.size()
            ).into());
        }
        if matches!(v.kind, VolumeKind::WholeDisk { .. })
            && v.mapping.size() >= 512
            && matches!(c.kind, ContentKind::Unknown | ContentKind::Zeros)
        {
            v.problems.push(
                format!(
                    "not a disk image: no partition table, filesystem or LVM PV at its start ({})",
                    c.describe()
                )
                .into(),
            );
        }
    }
}

/// A disk that ends before its last partition does (an image copied
/// short, a raw file cut): say by how much. Partitions are read up to the
/// disk's end; what lies past it reads as an error.
fn short_of_table(disk: &mut Disk) {
    let Some(t) = &disk.table else { return };
    let size = disk.size();
    let Some(end) = t.partitions.iter().map(partition::Partition::end).max() else {
        return;
    };
    if end > size {
        disk.problems.push(format!(
            "image is {} bytes shorter than the partition table says (its partitions end at byte {end}, the image at byte {size}): it was probably truncated; what lies in the missing part reads as an error, the rest reads normally",
            end - size
        ).into());
    }
}

/// Whether `v` is a volume a search found on disk `disk`.
fn is_recovered_on(v: &Volume, disk: DiskId) -> bool {
    matches!(&v.kind, VolumeKind::Partition { disk: d, entry, .. }
        if *d == disk && entry.is_recovered())
}

/// Search a disk for lost volumes when asked to, or when nothing is found
/// at its start (no table, no filesystem, no PV). Returns the volumes to add
/// (those a table already lists at the same start are left out) and records
/// on the disk what the search did.
fn search_disk(
    disk: &mut Disk,
    local: DiskId,
    parts: &[partition::Partition],
    options: ScanOptions<'_>,
) -> Vec<recover::Found> {
    let size = disk.size();
    if size < 512 {
        return Vec::new();
    }
    let empty = parts.is_empty()
        && matches!(
            probe::probe(&*disk.source).kind,
            ContentKind::Unknown | ContentKind::Zeros
        );
    // A protective MBR whose GPT is gone (both headers) lists nothing real.
    let only_protective = !parts.is_empty()
        && parts
            .iter()
            .all(|p| p.part_type == partition::PartType::Mbr(0xee));
    if !(options.search || empty || only_protective) {
        return Vec::new();
    }
    let s = recover::search(&disk.source, options.progress);
    let found: Vec<recover::Found> = s
        .found
        .into_iter()
        .filter(|f| !parts.iter().any(|p| p.start == f.start && !p.extended))
        .collect();
    let mut what = format!("searched {} places on the disk for lost volumes", s.probes);
    if let Some(at) = s.stopped_at {
        what.push_str(&format!(
            " (stopped at byte {at}: the search is bounded to {} places)",
            recover::MAX_PROBES
        ));
    }
    for e in &s.errors {
        disk.problems
            .push(format!("search for lost volumes: read failed at {e}").into());
    }
    if found.is_empty() {
        let none = if parts.is_empty() {
            "none found"
        } else {
            "none found besides the partition table's"
        };
        disk.format_details.push(format!("{what}: {none}"));
        return found;
    }
    let names: Vec<String> = (1..=found.len())
        .map(|i| recovered_name(local, u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let msg = format!(
        "{what}: found {} ({}), shown as {}; their bounds come from their own superblocks or labels, not from a partition table",
        found.len(),
        found
            .iter()
            .map(|f| format!("{} at byte {}", f.content.kind.name(), f.start))
            .collect::<Vec<_>>()
            .join(", "),
        names.join(", ")
    );
    if empty {
        disk.problems
            .push(format!("no partition table (zeroed or overwritten?): {msg}").into());
    } else if only_protective {
        disk.problems.push(
            format!("only the protective MBR is left of the GPT (both headers are gone): {msg}")
                .into(),
        );
    } else {
        disk.format_details.push(msg);
    }
    found
}

fn push_volume(layout: &mut Layout, name: String, kind: VolumeKind, mapping: Mapping) -> VolumeId {
    let id = VolumeId(layout.volumes.len());
    let mut content = Content::new(ContentKind::Unknown);
    if let VolumeKind::Partition { entry, .. } = &kind
        && entry.extended
    {
        content.detail = Some("extended partition (holds the logical partitions)".into());
    }
    layout.volumes.push(Volume {
        id,
        name,
        kind,
        mapping,
        content,
        guest: GuestRole::default(),
        problems: Vec::new(),
        notes: Vec::new(),
    });
    id
}
