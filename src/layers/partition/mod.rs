//! Partition tables: MBR (with the extended/logical chain) and GPT.
//!
//! Numbering follows the Linux kernel, so names match what `kpartx`, `lsblk`
//! and the guest's `/dev/sdaN` use: MBR primaries are 1–4 by slot, logicals
//! start at 5 in chain order; GPT partitions are numbered by entry slot.
//!
//! Every number here comes from the image: no indexing that can panic, no
//! unchecked arithmetic, no truncating casts (the lints below keep it so).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

mod gpt;
mod mbr;
mod types;

use crate::error::Result;
use crate::io::ReadAt;
use crate::layers::probe::ContentKind;
use crate::problem::Problem;

pub use types::{gpt_type_name, mbr_type_name};

/// Which kind of table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// MBR / "dos" partition table.
    Dos,
    /// GUID partition table.
    Gpt,
}

impl Scheme {
    /// The name `sfdisk` and `blkid` use (`dos`, `gpt`).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dos => "dos",
            Scheme::Gpt => "gpt",
        }
    }
}

/// A partition table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Table {
    /// MBR or GPT.
    pub scheme: Scheme,
    /// Logical sector size the table is written for (512 or 4096).
    pub sector_size: u64,
    /// Disk identifier: MBR disk signature `0x1234abcd` or GPT disk GUID.
    pub id: Option<String>,
    /// Partitions in number order.
    pub partitions: Vec<Partition>,
    /// Problems found while reading; the table is still usable.
    pub problems: Vec<Problem>,
}

/// The type of a partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartType {
    /// MBR system id byte.
    Mbr(u8),
    /// GPT partition type GUID.
    Gpt(String),
    /// No table entry: a volume found by searching the disk, described
    /// (`recovered: ext4 at 1 MiB, 255.97 MiB (from superblock)`).
    Recovered(String),
}

impl PartType {
    /// The type in words ("Linux LVM", "EFI System").
    pub fn name(&self) -> String {
        match self {
            PartType::Mbr(t) => mbr_type_name(*t).to_string(),
            PartType::Gpt(g) => gpt_type_name(g).to_string(),
            PartType::Recovered(d) => d.clone(),
        }
    }

    /// The type as `sfdisk` prints it (`8e`, or the GUID in upper case).
    pub fn code(&self) -> String {
        match self {
            PartType::Mbr(t) => format!("{t:x}"),
            PartType::Gpt(g) => g.to_uppercase(),
            PartType::Recovered(_) => "recovered".into(),
        }
    }
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partition {
    /// Number as the kernel gives it (`p1`, `p5`).
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// Type.
    #[serde(rename = "type")]
    pub part_type: PartType,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT unique partition GUID.
    pub uuid: Option<String>,
    /// MBR boot flag.
    pub bootable: bool,
    /// An MBR extended partition (a container for logicals, not a volume).
    pub extended: bool,
}

impl Partition {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }

    /// Whether this is a volume found by searching the disk, not a table entry.
    pub fn is_recovered(&self) -> bool {
        matches!(self.part_type, PartType::Recovered(_))
    }
}

/// Read the partition table of a disk, if it has one.
///
/// `Ok(None)` means no table: the disk's first bytes are something else (a
/// filesystem, a PV, nothing). A table that is there but damaged is either
/// returned with its problems listed (GPT read from the backup header, an
/// EBR chain that loops) or, if nothing usable is left, an error naming the
/// structure and byte position.
pub fn read(src: &dyn ReadAt) -> Result<Option<Table>> {
    let mbr = mbr::read_sector0(src)?;
    let protective = mbr.as_ref().is_some_and(|m| m.has_protective_entry());
    let protective_end = mbr.as_ref().and_then(|m| m.protective_last_lba());
    // GPT: behind a protective MBR, or (with a warning) even without one.
    match gpt::read(src, protective, protective_end) {
        Ok(Some(table)) => return Ok(Some(table)),
        Ok(None) => {}
        Err(e) => {
            let Some(m) = &mbr else { return Err(e) };
            let mut table = m.to_table(src)?;
            if protective {
                table.problems.insert(
                    0,
                    format!("{e}; showing the protective MBR's entries instead").into(),
                );
            } else {
                table
                    .problems
                    .push(format!("ignored a damaged GPT: {e}").into());
            }
            return Ok(Some(table));
        }
    }
    match mbr {
        Some(m) => Ok(Some(m.to_table(src)?)),
        // Sector 0 and the primary GPT zeroed: the backup GPT at the disk's
        // end still describes the partitions, unless the disk's start holds
        // something else now (a filesystem made over the whole disk).
        None if matches!(
            crate::layers::probe::probe(src).kind,
            ContentKind::Zeros | ContentKind::Unknown
        ) =>
        {
            gpt::read_backup_only(src)
        }
        None => Ok(None),
    }
}

/// Report partitions that overlap each other. Logical partitions lie inside
/// their extended partition, which is not an overlap; extended partitions
/// are only compared with the primaries. O(n log n): GPT tables may list
/// thousands of entries.
fn check_overlaps(parts: &[Partition], problems: &mut Vec<Problem>) {
    const MAX_LINES: usize = 8;
    let mut lines = 0usize;
    let mut report = |a: &Partition, b: &Partition, problems: &mut Vec<Problem>| {
        lines = lines.saturating_add(1);
        if lines <= MAX_LINES {
            problems.push(
                format!(
                    "partitions {} (bytes {}..{}) and {} (bytes {}..{}) overlap",
                    a.number,
                    a.start,
                    a.end(),
                    b.number,
                    b.start,
                    b.end()
                )
                .into(),
            );
        } else if lines == MAX_LINES + 1 {
            problems.push("more overlapping partitions are not listed".into());
        }
    };
    let mut data: Vec<&Partition> = parts.iter().filter(|p| !p.extended && p.size > 0).collect();
    data.sort_by_key(|p| (p.start, p.number));
    let mut widest: Option<&Partition> = None;
    for p in data {
        if let Some(w) = widest {
            if p.start < w.end() {
                report(w, p, problems);
            }
            if p.end() > w.end() {
                widest = Some(p);
            }
        } else {
            widest = Some(p);
        }
    }
    for e in parts.iter().filter(|p| p.extended && p.size > 0) {
        for p in parts
            .iter()
            .filter(|p| p.number < 5 && p.number != e.number && p.size > 0)
        {
            if p.start < e.end() && e.start < p.end() {
                report(e, p, problems);
            }
        }
    }
}

/// Format 16 GUID bytes in mixed-endian order as GPT stores them.
pub fn guid_to_string(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, start: u64, size: u64, extended: bool) -> Partition {
        Partition {
            number,
            start,
            size,
            part_type: PartType::Mbr(if extended { 5 } else { 0x83 }),
            name: None,
            uuid: None,
            bootable: false,
            extended,
        }
    }

    #[test]
    fn overlaps_are_reported_but_logicals_inside_their_extended_are_not() {
        let mut problems = Vec::new();
        let parts = [
            part(1, 0, 100, false),
            part(2, 100, 1000, true),
            part(5, 200, 100, false),
            part(6, 300, 100, false),
        ];
        check_overlaps(&parts, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let parts = [
            part(1, 0, 150, false),
            part(2, 100, 1000, true),
            part(5, 250, 100, false),
            part(6, 300, 100, false),
        ];
        check_overlaps(&parts, &mut problems);
        assert_eq!(
            problems,
            [
                "partitions 5 (bytes 250..350) and 6 (bytes 300..400) overlap",
                "partitions 2 (bytes 100..1100) and 1 (bytes 0..150) overlap",
            ]
        );
    }

    #[test]
    fn many_overlapping_entries_are_summed_up_quickly() {
        let parts: Vec<Partition> = (1..=65536).map(|n| part(n, 4096, 4096, false)).collect();
        let mut problems = Vec::new();
        check_overlaps(&parts, &mut problems);
        assert_eq!(problems.len(), 9);
        assert_eq!(
            problems.last().unwrap(),
            &"more overlapping partitions are not listed"
        );
    }
}
