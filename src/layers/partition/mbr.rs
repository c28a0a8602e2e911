//! The MBR ("dos") partition table and the chain of EBRs behind an extended partition.

use std::collections::HashSet;

use super::{PartType, Partition, Scheme, Table};
use crate::error::{Error, Result};
use crate::io::{ReadAt, le};
use crate::problem::Problem;

/// The MBR itself is always in the first 512 bytes of the disk.
const SECTOR: u64 = 512;
/// The sector size of 4Kn disks, the other one a dos label's LBAs may count in.
const SECTOR_4KN: u64 = 4096;
/// How much of a partition's start is read to recognise its content.
const PROBE_BYTES: u64 = 0x11000;
/// Linux stops at 256 partitions per disk (DISK_MAX_PARTS); so do we.
const MAX_PARTITIONS: u32 = 256;
/// Linux (and blkid) follow at most 100 EBR links in a row that hold no
/// logical partition; so do we, which bounds the walk on hostile chains.
const MAX_EMPTY_LINKS: u32 = 100;

/// Byte positions of the four 16-byte entries in the sector.
const ENTRY_AT: [usize; 4] = [446, 462, 478, 494];

/// One 16-byte partition entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    status: u8,
    sys_ind: u8,
    start_sect: u32,
    nr_sects: u32,
}

impl Entry {
    fn parse(b: &[u8; 16]) -> Entry {
        let [
            status,
            _,
            _,
            _,
            sys_ind,
            _,
            _,
            _,
            s0,
            s1,
            s2,
            s3,
            n0,
            n1,
            n2,
            n3,
        ] = *b;
        Entry {
            status,
            sys_ind,
            start_sect: u32::from_le_bytes([s0, s1, s2, s3]),
            nr_sects: u32::from_le_bytes([n0, n1, n2, n3]),
        }
    }

    fn is_empty(&self) -> bool {
        self.sys_ind == 0 || self.nr_sects == 0
    }
}

/// Extended partition types, as the kernel's `is_extended_partition`.
fn is_extended(sys_ind: u8) -> bool {
    matches!(sys_ind, 0x05 | 0x0f | 0x85)
}

/// The four entries of a sector that ends in 0x55AA.
fn entries(sector: &[u8; 512]) -> [Entry; 4] {
    ENTRY_AT.map(|at| {
        let raw = sector
            .get(at..)
            .and_then(|b| b.first_chunk::<16>())
            .copied()
            .unwrap_or([0; 16]);
        Entry::parse(&raw)
    })
}

/// Sector 0 of a disk, if it holds an MBR.
#[derive(Debug, Clone)]
pub(super) struct Mbr {
    entries: [Entry; 4],
    disk_signature: u32,
}

/// Whether a boot sector is a filesystem's (FAT, NTFS, exFAT) rather than an MBR:
/// they also end in 0x55AA.
fn is_filesystem_boot_sector(s: &[u8; 512]) -> bool {
    let jump = s[0] == 0xeb || s[0] == 0xe9;
    jump && (&s[3..11] == b"NTFS    "
        || &s[3..11] == b"EXFAT   "
        || &s[54..59] == b"FAT12"
        || &s[54..59] == b"FAT16"
        || &s[82..87] == b"FAT32"
        || &s[54..57] == b"FAT")
}

/// Read sector 0 and decide whether it is an MBR.
pub(super) fn read_sector0(src: &dyn ReadAt) -> Result<Option<Mbr>> {
    if src.size() < SECTOR {
        return Ok(None);
    }
    let mut s = [0u8; 512];
    src.read_exact_at(0, &mut s)
        .map_err(|e| Error::io("MBR (sector 0)", e))?;
    if s[510..512] != [0x55, 0xaa] {
        return Ok(None);
    }
    let entries = entries(&s);
    let protective = entries.iter().any(|e| e.sys_ind == 0xee);
    if is_filesystem_boot_sector(&s) && !protective {
        return Ok(None);
    }
    // As the kernel: a boot indicator other than 0x00/0x80 means this is not a partition table.
    if entries.iter().any(|e| e.status != 0 && e.status != 0x80) {
        return Ok(None);
    }
    Ok(Some(Mbr {
        entries,
        disk_signature: le::u32(&s, 440).unwrap_or(0),
    }))
}

impl Mbr {
    /// Whether a slot holds a GPT protective entry (type 0xEE).
    pub(super) fn has_protective_entry(&self) -> bool {
        self.entries.iter().any(|e| e.sys_ind == 0xee)
    }

    /// The last LBA the protective entry covers: the disk's last LBA when the
    /// GPT was written, where its backup header went (it stays there when
    /// the disk image is grown afterwards).
    pub(super) fn protective_last_lba(&self) -> Option<u64> {
        let e = self.entries.iter().find(|e| e.sys_ind == 0xee)?;
        (u64::from(e.start_sect).saturating_add(u64::from(e.nr_sects))).checked_sub(1)
    }

    /// The sector size the table's LBAs count in. The MBR does not record
    /// it: the kernel and fdisk take the disk's logical block size, and so
    /// do we when the source is a block device that says. An image file
    /// does not keep it, so there it is inferred from what the entries
    /// point at: 512 unless no primary partition nor the first EBR makes
    /// sense with 512-byte sectors and some do with 4096-byte sectors (a
    /// dos label written on a 4Kn disk).
    fn sector_size(&self, src: &dyn ReadAt) -> u64 {
        if let Some(ss) = src
            .logical_sector_size()
            .filter(|&ss| ss == SECTOR || ss == SECTOR_4KN)
        {
            return ss;
        }
        let score = |ss: u64| -> usize {
            self.entries
                .iter()
                .filter(|e| !e.is_empty())
                .filter(|e| {
                    let start = u64::from(e.start_sect).saturating_mul(ss);
                    if is_extended(e.sys_ind) {
                        has_ebr_signature(src, start)
                    } else {
                        holds_known_content(src, start, u64::from(e.nr_sects).saturating_mul(ss))
                    }
                })
                .count()
        };
        if score(SECTOR) > 0 {
            return SECTOR;
        }
        let big = SECTOR_4KN;
        let fits = self
            .entries
            .iter()
            .filter(|e| !e.is_empty())
            .all(|e| u64::from(e.start_sect).saturating_mul(big) < src.size());
        if fits && score(big) > 0 { big } else { SECTOR }
    }

    /// The partitions, with logicals read from the EBR chain.
    pub(super) fn to_table(&self, src: &dyn ReadAt) -> Result<Table> {
        let disk_size = src.size();
        let ss = self.sector_size(src);
        let mut table = Table {
            scheme: Scheme::Dos,
            sector_size: ss,
            id: Some(format!("0x{:08x}", self.disk_signature)),
            partitions: Vec::new(),
            problems: Vec::new(),
        };
        for ((e, number), entry_at) in self.entries.iter().zip(1u32..).zip(ENTRY_AT) {
            if e.is_empty() {
                continue;
            }
            let entry_at = entry_at as u64;
            let p = Partition {
                number,
                start: u64::from(e.start_sect).saturating_mul(ss),
                size: u64::from(e.nr_sects).saturating_mul(ss),
                part_type: PartType::Mbr(e.sys_ind),
                name: None,
                uuid: None,
                bootable: e.status == 0x80,
                extended: is_extended(e.sys_ind),
            };
            if e.start_sect == 0 {
                table.problems.push(Problem::at(
                    format!("MBR partition entry {number}"),
                    entry_at,
                    format!("partition {number} starts at sector 0, on top of the MBR itself"),
                ));
            }
            check_bounds(
                &p,
                disk_size,
                &format!("MBR partition entry {number}"),
                Some(entry_at),
                &mut table.problems,
            );
            table.partitions.push(p);
        }
        let mut next = 5u32;
        for &e in &self.entries {
            if !e.is_empty() && is_extended(e.sys_ind) {
                read_chain(src, e, ss, &mut next, &mut table);
            }
        }
        table.partitions.sort_by_key(|p| p.number);
        super::check_overlaps(&table.partitions, &mut table.problems);
        Ok(table)
    }
}

/// Report a partition that does not fit the disk; `entry` says which table
/// entry holds it, `at` where that entry is when it is not in `entry`'s words.
fn check_bounds(
    p: &Partition,
    disk_size: u64,
    entry: &str,
    at: Option<u64>,
    problems: &mut Vec<Problem>,
) {
    let detail = if p.start >= disk_size {
        format!(
            "partition {} starts at byte {}, past the end of the disk ({disk_size} bytes): the image may be truncated",
            p.number, p.start
        )
    } else if p.end() > disk_size {
        format!(
            "partition {} ends at byte {}, past the end of the disk ({disk_size} bytes); it is read as shorter: the image may be truncated",
            p.number,
            p.end()
        )
    } else {
        return;
    };
    problems.push(match at {
        Some(at) => Problem::at(entry, at, detail),
        None => Problem::of(entry, detail),
    });
}

/// Whether an EBR (a sector ending in 0x55AA) is at byte `at`.
fn has_ebr_signature(src: &dyn ReadAt, at: u64) -> bool {
    let mut sig = [0u8; 2];
    at.checked_add(510)
        .is_some_and(|o| src.read_exact_at(o, &mut sig).is_ok())
        && sig == [0x55, 0xaa]
}

/// Whether the `size` bytes at `start` begin with content `blkid` would
/// recognise (a filesystem, an LVM PV, swap...).
fn holds_known_content(src: &dyn ReadAt, start: u64, size: u64) -> bool {
    use crate::layers::probe::{ContentKind, probe_bytes};
    if start >= src.size() || size == 0 {
        return false;
    }
    let len = PROBE_BYTES.min(size).min(src.size().saturating_sub(start));
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    if src.read_exact_at(start, &mut buf).is_err() {
        return false;
    }
    !matches!(
        probe_bytes(&buf).kind,
        ContentKind::Unknown | ContentKind::Zeros | ContentKind::Unreadable
    )
}

/// Follow the EBR chain of extended partition `ext`, as the kernel's
/// `parse_extended`; LBAs count in sectors of `ss` bytes.
fn read_chain(src: &dyn ReadAt, ext: Entry, ss: u64, next: &mut u32, table: &mut Table) {
    let first_sector = u64::from(ext.start_sect);
    let first_size = u64::from(ext.nr_sects);
    let mut this_sector = first_sector;
    let mut this_size = first_size;
    let mut seen = HashSet::new();
    let mut empty_links = 0u32;
    loop {
        // Sector numbers are sums of two u32 and ss is at most 4096: the
        // byte positions below fit a u64 (saturating only says so).
        let offset = this_sector.saturating_mul(ss);
        empty_links = empty_links.saturating_add(1);
        if empty_links > MAX_EMPTY_LINKS {
            table.problems.push(format!(
                "EBR chain longer than {MAX_EMPTY_LINKS} links without a logical partition; stopped at the EBR at byte {offset}, as the kernel does"
            ).into());
            return;
        }
        if !seen.insert(this_sector) {
            table.problems.push(
                format!("EBR chain loops back to the EBR at byte {offset}; stopped there").into(),
            );
            return;
        }
        if *next > MAX_PARTITIONS {
            table.problems.push(
                format!("more than {MAX_PARTITIONS} partitions; the rest are ignored").into(),
            );
            return;
        }
        let mut s = [0u8; 512];
        if let Err(e) = src.read_exact_at(offset, &mut s) {
            table
                .problems
                .push(Problem::at("EBR", offset, format!("cannot be read: {e}")));
            return;
        }
        let [.., sig0, sig1] = s;
        if [sig0, sig1] != [0x55, 0xaa] {
            table.problems.push(Problem::at("EBR", offset, format!("no 0x55AA signature (found {sig0:02x}{sig1:02x}); the logical partitions after it are lost")));
            return;
        }
        let entries = entries(&s);
        for (e, slot) in entries.iter().zip(1u32..) {
            if e.is_empty() || is_extended(e.sys_ind) {
                continue;
            }
            let offs = u64::from(e.start_sect);
            let size = u64::from(e.nr_sects);
            let start = this_sector.saturating_add(offs);
            // The third and fourth entries sometimes hold garbage: accept them only
            // when they lie inside this EBR's area and the extended partition.
            if slot >= 3
                && (offs.saturating_add(size) > this_size
                    || start < first_sector
                    || start.saturating_add(size) > first_sector.saturating_add(first_size))
            {
                continue;
            }
            let p = Partition {
                number: *next,
                start: start.saturating_mul(ss),
                size: size.saturating_mul(ss),
                part_type: PartType::Mbr(e.sys_ind),
                name: None,
                uuid: None,
                bootable: e.status == 0x80,
                extended: false,
            };
            check_bounds(
                &p,
                src.size(),
                &format!("EBR at byte {offset}, entry {slot}"),
                None,
                &mut table.problems,
            );
            table.partitions.push(p);
            empty_links = 0;
            *next = next.saturating_add(1);
            if *next > MAX_PARTITIONS {
                break;
            }
        }
        let Some(link) = entries
            .iter()
            .find(|e| !e.is_empty() && is_extended(e.sys_ind))
        else {
            return;
        };
        this_sector = first_sector.saturating_add(u64::from(link.start_sect));
        this_size = u64::from(link.nr_sects);
        let link_at = this_sector.saturating_mul(ss);
        if link_at >= src.size() {
            table.problems.push(Problem::at(
                "EBR",
                offset,
                format!("links to byte {link_at} past the end of the disk"),
            ));
            return;
        }
    }
}
