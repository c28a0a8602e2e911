//! LVM2: physical volume labels, metadata areas, the metadata text, and
//! volume groups assembled from the PVs found on all the disks given.
//!
//! The result of assembly is a [`VolumeGroup`] per VG whose logical volumes
//! carry a [`Mapping`] straight onto the disks (partition start + `pe_start`
//! + extent offset), exactly as lvm2 would lay them out with device-mapper.
//!
//! * [`label`](read_pv): the PV label, `pv_header`, metadata area headers
//!   and the circular metadata buffer (checksums verified; a bad copy falls
//!   back to the PV's other metadata area, and says so);
//! * [`text`]: the metadata text grammar;
//! * [`meta`]: the text decoded into typed VG/PV/LV/segment fields;
//! * [`assemble`]: PVs grouped into VGs across disks, newest `seqno` used,
//!   LV segments mapped (linear and striped exactly as device-mapper does;
//!   every other segment type listed but marked unreadable);
//! * [`thin`]: thin LVs and thin snapshots mapped onto their pool's data LV
//!   from the pool's dm-thin metadata (linear runs and zeros), when the
//!   disks are given ([`assemble_with_disks`]).

mod assemble;
mod crc;
mod label;
pub mod meta;
pub mod raid;
#[cfg(test)]
mod tests;
pub mod text;
pub mod thin;

use std::sync::Arc;

use crate::error::Result;
use crate::io::{Area, Mapping, ReadAt};
use crate::problem::Problem;

pub use crc::{INITIAL_CRC, calc_crc};
pub use label::{FMTT_MAGIC, MAX_METADATA_TEXT, damaged_label_hint};

/// What the label and metadata areas of one PV say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvScan {
    /// Sector (0–3) holding the `LABELONE` label.
    pub label_sector: u64,
    /// The PV's UUID as lvm2 prints it (`abcdef-ghij-...`).
    pub pv_uuid: String,
    /// `device_size_xl` from the pv_header, in bytes.
    pub device_size: u64,
    /// The newest committed VG metadata text found in the PV's metadata
    /// areas, if any (a PV with `--metadatacopies 0` has none).
    pub metadata: Option<String>,
    /// Where that text was read from, for messages: `mda 0 at byte 4608`.
    pub metadata_origin: Option<String>,
    /// Problems found (bad CRC in one area, fallback to the other...).
    pub problems: Vec<Problem>,
    /// Name of the VG in that metadata.
    pub vg_name: Option<String>,
    /// UUID of the VG in that metadata.
    pub vg_uuid: Option<String>,
    /// `seqno` of that metadata.
    pub seqno: Option<u64>,
    /// Offset of the first data area the label lists (lvm2 writes `pe_start` there), in bytes.
    pub data_offset: Option<u64>,
    /// The metadata areas the label lists: (offset, size) in bytes from the PV's start.
    pub metadata_areas: Vec<(u64, u64)>,
    /// The `pv_header_extension`'s "used by a VG" flag, when the label has an extension.
    pub in_use: Option<bool>,
}

/// A PV found on a disk, ready for assembly.
#[derive(Debug, Clone)]
pub struct PvOnDisk {
    /// Name of the volume holding the PV (`p2`, `disk1`), for messages.
    pub volume: String,
    /// Where the PV's first byte is on the disks.
    pub area: Area,
    /// The PV's size in bytes (the partition or disk size).
    pub size: u64,
    /// What its label and metadata say.
    pub scan: PvScan,
}

/// A physical volume as the VG metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VgPv {
    /// Its key in the metadata (`pv0`).
    pub key: String,
    /// Its UUID.
    pub uuid: String,
    /// The `device` hint recorded by lvm2 (`/dev/sda2`).
    pub device_hint: Option<String>,
    /// Index into the `pvs` slice given to [`assemble`], when the PV was found.
    pub found: Option<usize>,
    /// Start of the data area (`pe_start`) in bytes from the PV's start.
    pub pe_start: u64,
    /// Number of physical extents.
    pub pe_count: u64,
}

/// What one area of a segment points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SegmentArea {
    /// Extents of a PV.
    Pv {
        /// The PV's key (`pv0`).
        key: String,
        /// First extent on the PV.
        start_extent: u64,
    },
    /// Extents of another LV (mirror images, raid images, pools).
    Lv {
        /// The LV's name.
        name: String,
        /// First extent in that LV.
        start_extent: u64,
    },
}

/// One segment as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LvSegment {
    /// First logical extent.
    pub start_extent: u64,
    /// Number of extents.
    pub extent_count: u64,
    /// `striped`, `linear`, `thin`, `raid1`...
    pub segtype: String,
    /// Stripe size in bytes, for striped segments with more than one stripe.
    pub stripe_size: Option<u64>,
    /// The stripes/areas, in order.
    pub areas: Vec<SegmentArea>,
}

/// A logical volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogicalVolume {
    /// Its name (`lv_root`).
    pub name: String,
    /// Its UUID.
    pub uuid: String,
    /// Whether it is a user-visible LV (status `VISIBLE`); hidden ones are
    /// sub-LVs (`lv_rimage_0`, pool metadata) and are never offered as filesystems.
    pub visible: bool,
    /// The status flags (`READ`, `WRITE`, `VISIBLE`).
    pub status: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Segments as the metadata lists them.
    pub segments: Vec<LvSegment>,
    /// Where its bytes are; segments that cannot be read are
    /// [`crate::io::Target::Unreadable`] with the reason.
    pub mapping: Mapping,
    /// Keys and UUIDs of PVs this LV needs that were not found.
    pub missing_pvs: Vec<String>,
    /// `creation_time` (seconds since the epoch), if recorded.
    pub creation_time: Option<i64>,
    /// `creation_host`, if recorded.
    pub creation_host: Option<String>,
    /// For an old-style snapshot (its copy-on-write store, shown as the
    /// snapshot as `lvs` does): the origin LV's name.
    pub snapshot_of: Option<String>,
    /// Facts about how it is read (a raid LV: which legs are read).
    pub notes: Vec<String>,
    /// What is wrong with it beyond missing PVs (a raid leg that is stale
    /// or missing, parity in use).
    pub problems: Vec<Problem>,
}

/// A volume group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeGroup {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
    /// Metadata sequence number used.
    pub seqno: u64,
    /// Extent size in bytes.
    pub extent_size: u64,
    /// Total extents over all its PVs.
    pub extent_count: u64,
    /// Extents not used by any LV.
    pub free_count: u64,
    /// Its PVs, found or not.
    pub pvs: Vec<VgPv>,
    /// Its LVs, in metadata order.
    pub lvs: Vec<LogicalVolume>,
    /// Problems (missing PVs, PVs disagreeing on the metadata...).
    pub problems: Vec<Problem>,
}

/// Read the LVM2 label and newest metadata of a PV (`src` is the PV's bytes,
/// from its first sector). `Ok(None)` when none of sectors 0–3 starts with
/// `LABELONE`; an error when a label is there but damaged beyond use.
/// Problems with single metadata areas are listed in [`PvScan::problems`].
pub fn read_pv(src: &dyn ReadAt) -> Result<Option<PvScan>> {
    label::read_pv(src, label::Checks { checksums: true })
}

/// [`read_pv`] without checksum verification, so fuzzing reaches the parsers
/// behind the checksums. Never use it on real images.
#[doc(hidden)]
pub fn read_pv_ignoring_checksums(src: &dyn ReadAt) -> Result<Option<PvScan>> {
    label::read_pv(src, label::Checks { checksums: false })
}

/// Assemble volume groups from the PVs found on all disks.
///
/// PVs are grouped by VG UUID; each VG uses the highest `seqno` among its
/// PVs' readable metadata. PVs the metadata names but that were not found
/// make the VG's `problems` and the `missing_pvs` of every LV that needs
/// them; their segments map to [`crate::io::Target::Unreadable`].
pub fn assemble(pvs: &[PvOnDisk]) -> Vec<VolumeGroup> {
    assemble::assemble(pvs, &[])
}

/// [`assemble`], reading thin pool metadata over `disks` (indexed by
/// [`crate::io::DiskId`]) so thin LVs map onto their pool's data LV
/// ([`thin`]).
pub fn assemble_with_disks(pvs: &[PvOnDisk], disks: &[Arc<dyn ReadAt>]) -> Vec<VolumeGroup> {
    assemble::assemble(pvs, disks)
}
