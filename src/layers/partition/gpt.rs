//! The GUID partition table: primary header at LBA 1, backup at the disk's last LBA.

use super::{PartType, Partition, Scheme, Table, guid_to_string};
use crate::error::{Error, Result};
use crate::io::{ReadAt, le, read_vec};
use crate::problem::Problem;

/// The header's signature.
const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The smallest header the specification allows.
const MIN_HEADER_SIZE: u32 = 92;
/// Limits on the entry array: far beyond real tables, small enough to allocate.
const MAX_ENTRIES: u32 = 65536;
const MAX_ARRAY_BYTES: u64 = 4 << 20;

/// A GPT header, fields named as in the UEFI specification.
#[derive(Debug, Clone)]
struct Header {
    /// Byte position of this header (for messages).
    at: u64,
    my_lba: u64,
    alternate_lba: u64,
    first_usable_lba: u64,
    last_usable_lba: u64,
    disk_guid: [u8; 16],
    partition_entry_lba: u64,
    number_of_partition_entries: u32,
    size_of_partition_entry: u32,
    partition_entry_array_crc32: u32,
}

/// The 16 bytes of a GUID at `off` in `b` (zeros when `b` is too short).
fn guid_at(b: &[u8], off: usize) -> [u8; 16] {
    b.get(off..)
        .and_then(|b| b.get(..16))
        .and_then(|g| g.try_into().ok())
        .unwrap_or([0; 16])
}

/// The disk's last LBA with `ss`-byte sectors (callers checked the disk
/// holds at least three sectors).
fn last_lba(src: &dyn ReadAt, ss: u64) -> u64 {
    src.size().checked_div(ss).unwrap_or(0).saturating_sub(1)
}

/// Read the header at `lba`, checking signature, size, CRC and `MyLBA`.
fn read_header(src: &dyn ReadAt, ss: u64, lba: u64) -> std::result::Result<Header, String> {
    let at = lba.checked_mul(ss).ok_or("header position overflows")?;
    let len = usize::try_from(ss).map_err(|_| "sector size overflows")?;
    let mut b = vec![0u8; len];
    src.read_exact_at(at, &mut b)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if b.get(0..8) != Some(&SIGNATURE[..]) {
        return Err("no \"EFI PART\" signature".into());
    }
    let header_size = le::u32(&b, 12).unwrap_or(0);
    if header_size < MIN_HEADER_SIZE || u64::from(header_size) > ss {
        return Err(format!(
            "HeaderSize is {header_size} (expected {MIN_HEADER_SIZE} to {ss})"
        ));
    }
    let stored_crc = le::u32(&b, 16).unwrap_or(0);
    // header_size <= ss = b.len(), checked above.
    let mut copy = b.get(..header_size as usize).unwrap_or_default().to_vec();
    if let Some(field) = copy.get_mut(16..20) {
        field.fill(0);
    }
    let crc = crc32fast::hash(&copy);
    if crc != stored_crc {
        return Err(format!(
            "HeaderCRC32 mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
        ));
    }
    let h = Header {
        at,
        my_lba: le::u64(&b, 24).unwrap_or(0),
        alternate_lba: le::u64(&b, 32).unwrap_or(0),
        first_usable_lba: le::u64(&b, 40).unwrap_or(0),
        last_usable_lba: le::u64(&b, 48).unwrap_or(0),
        disk_guid: guid_at(&b, 56),
        partition_entry_lba: le::u64(&b, 72).unwrap_or(0),
        number_of_partition_entries: le::u32(&b, 80).unwrap_or(0),
        size_of_partition_entry: le::u32(&b, 84).unwrap_or(0),
        partition_entry_array_crc32: le::u32(&b, 88).unwrap_or(0),
    };
    if h.my_lba != lba {
        return Err(format!(
            "MyLBA is {} but the header is at LBA {lba}",
            h.my_lba
        ));
    }
    if h.size_of_partition_entry < 128 || !h.size_of_partition_entry.is_multiple_of(8) {
        return Err(format!(
            "SizeOfPartitionEntry is {} (expected a multiple of 8, at least 128)",
            h.size_of_partition_entry
        ));
    }
    if h.number_of_partition_entries > MAX_ENTRIES {
        return Err(format!(
            "NumberOfPartitionEntries is {} (more than {MAX_ENTRIES})",
            h.number_of_partition_entries
        ));
    }
    Ok(h)
}

/// Read and check the entry array a header points at.
fn read_entries(
    src: &dyn ReadAt,
    ss: u64,
    h: &Header,
) -> std::result::Result<(Vec<Partition>, Vec<Problem>), String> {
    // Both are u32: the product fits a u64.
    let len = u64::from(h.number_of_partition_entries)
        .saturating_mul(u64::from(h.size_of_partition_entry));
    let at = h
        .partition_entry_lba
        .checked_mul(ss)
        .ok_or("PartitionEntryLBA overflows")?;
    let array = read_vec(src, at, len, MAX_ARRAY_BYTES)
        .map_err(|e| format!("partition entry array at byte {at}: {e}"))?;
    let crc = crc32fast::hash(&array);
    if crc != h.partition_entry_array_crc32 {
        return Err(format!(
            "partition entry array at byte {at}: CRC32 mismatch (stored {:#010x}, computed {crc:#010x})",
            h.partition_entry_array_crc32
        ));
    }
    let disk_sectors = src.size().checked_div(ss).unwrap_or(0);
    let mut parts = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in array
        .chunks_exact(h.size_of_partition_entry as usize)
        .enumerate()
    {
        let type_guid = guid_at(e, 0);
        if type_guid == [0; 16] {
            continue;
        }
        // i < number_of_partition_entries <= MAX_ENTRIES, and the array was
        // read, so the entry's position fits too.
        let number = u32::try_from(i).map_or(u32::MAX, |i| i.saturating_add(1));
        let first = le::u64(e, 32).unwrap_or(0);
        let last = le::u64(e, 40).unwrap_or(0);
        let entry_at =
            at.saturating_add((i as u64).saturating_mul(u64::from(h.size_of_partition_entry)));
        if last < first {
            problems.push(Problem::at(
                format!("GPT entry {number}"),
                entry_at,
                format!("EndingLBA {last} is before StartingLBA {first}; skipped"),
            ));
            continue;
        }
        let sectors = last.checked_sub(first).and_then(|n| n.checked_add(1));
        let (Some(start), Some(size)) = (
            first.checked_mul(ss),
            sectors.and_then(|n| n.checked_mul(ss)),
        ) else {
            problems.push(Problem::at(
                format!("GPT entry {number}"),
                entry_at,
                "LBAs overflow; skipped",
            ));
            continue;
        };
        if last >= disk_sectors {
            problems.push(Problem::at(format!("GPT entry {number}"), entry_at, format!("partition {number} ends at LBA {last}, past the end of the disk ({disk_sectors} sectors); it is read as shorter: the image may be truncated")));
        } else if first < h.first_usable_lba || last > h.last_usable_lba {
            problems.push(Problem::at(format!("GPT entry {number}"), entry_at, format!("LBAs {first}..={last} lie outside the usable LBAs {}..={} of the header at byte {}", h.first_usable_lba, h.last_usable_lba, h.at)));
        }
        let unique = guid_at(e, 16);
        let name_units: Vec<u16> = e
            .get(56..128)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| le::u16(c, 0).unwrap_or(0))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&name_units);
        parts.push(Partition {
            number,
            start,
            size,
            part_type: PartType::Gpt(guid_to_string(&type_guid)),
            name: (!name.is_empty()).then_some(name),
            uuid: Some(guid_to_string(&unique)),
            bootable: le::u64(e, 48).unwrap_or(0) & 4 != 0,
            extended: false,
        });
    }
    super::check_overlaps(&parts, &mut problems);
    Ok((parts, problems))
}

fn table_from(
    h: &Header,
    ss: u64,
    parts: Vec<Partition>,
    mut problems: Vec<Problem>,
    src: &dyn ReadAt,
) -> Table {
    let disk_sectors = src.size().checked_div(ss).unwrap_or(0);
    if h.last_usable_lba >= disk_sectors || h.first_usable_lba > h.last_usable_lba {
        problems.push(Problem::at("GPT header", h.at, format!("usable LBAs {}..={} do not fit the disk ({disk_sectors} sectors): the image may be truncated", h.first_usable_lba, h.last_usable_lba)));
    }
    Table {
        scheme: Scheme::Gpt,
        sector_size: ss,
        id: Some(guid_to_string(&h.disk_guid)),
        partitions: parts,
        problems,
    }
}

/// Read a GPT. `Ok(None)` when there is none; an error when one is clearly
/// there (signature or protective MBR) but neither header is usable.
/// `protective_end` is the last LBA the protective MBR entry covers: when the
/// primary header is unusable, the backup is looked for at the disk's last
/// LBA (as the kernel does) and then there, where it stays when a disk image
/// is grown after partitioning.
pub(super) fn read(
    src: &dyn ReadAt,
    protective: bool,
    protective_end: Option<u64>,
) -> Result<Option<Table>> {
    let mut primary_failure: Option<(u64, String)> = None;
    let mut signature_seen = false;
    for ss in [512u64, 4096] {
        if src.size() < ss.saturating_mul(3) {
            continue;
        }
        let primary = read_header(src, ss, 1);
        let has_sig = match &primary {
            Ok(_) => true,
            Err(e) => !e.starts_with("no \"EFI PART\"") && !e.starts_with("cannot be read"),
        };
        signature_seen |= has_sig;
        let mut problems = Vec::new();
        match primary {
            Ok(h) => {
                match read_entries(src, ss, &h) {
                    Ok((parts, mut entry_problems)) => {
                        problems.append(&mut entry_problems);
                        if !protective {
                            problems.push(
                                "GPT found without a protective MBR (the kernel would not read it without the `gpt` option)"
                                    .into(),
                            );
                        }
                        let backup = read_header(src, ss, h.alternate_lba)
                            .and_then(|b| read_entries(src, ss, &b).map(|_| ()));
                        if let Err(e) = backup {
                            problems.push(
                                format!(
                                    "backup GPT header at LBA {} (byte {}): {e}",
                                    h.alternate_lba,
                                    h.alternate_lba.saturating_mul(ss)
                                )
                                .into(),
                            );
                        }
                        return Ok(Some(table_from(&h, ss, parts, problems, src)));
                    }
                    Err(e) => {
                        // Header fine, entries damaged: the backup has its own array.
                        let last = last_lba(src, ss);
                        if let Some(t) = from_backup(src, ss, &[h.alternate_lba, last], &e, h.at)? {
                            return Ok(Some(t));
                        }
                        primary_failure.get_or_insert((h.at, e));
                    }
                }
            }
            Err(e) => {
                if has_sig || protective {
                    let last = last_lba(src, ss);
                    let mut lbas = vec![last];
                    lbas.extend(protective_end.filter(|&l| l < last));
                    if let Some(t) = from_backup(src, ss, &lbas, &e, ss)? {
                        return Ok(Some(t));
                    }
                    if has_sig {
                        primary_failure.get_or_insert((ss, e));
                    }
                }
            }
        }
    }
    match primary_failure {
        Some((at, e)) if signature_seen || protective => Err(Error::corrupt(
            "GPT header",
            at,
            format!("{e}; the backup header is not usable either"),
        )),
        _ if protective => Err(Error::corrupt(
            "GPT header",
            512,
            "protective MBR found but no \"EFI PART\" header at LBA 1 (512 or 4096-byte sectors) nor at the disk's end",
        )),
        _ => Ok(None),
    }
}

/// A GPT known only by its backup header at the disk's last LBA: the
/// protective MBR and the primary header are both gone (zeroed). The caller
/// checks first that nothing else (a filesystem, a PV) starts the disk.
pub(super) fn read_backup_only(src: &dyn ReadAt) -> Result<Option<Table>> {
    for ss in [512u64, 4096] {
        if src.size() < ss.saturating_mul(3) {
            continue;
        }
        let last = last_lba(src, ss);
        let why = "no \"EFI PART\" signature, and no protective MBR in sector 0";
        if let Some(mut t) = from_backup(src, ss, &[last], why, ss)? {
            t.problems.push(
                "the protective MBR is missing too: tools that need it (the kernel, fdisk) will not see this table until it is restored (`sgdisk -e`/`gdisk` recovery)"
                    .into(),
            );
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Try backup headers at `lbas`; on success the table says the primary was damaged.
fn from_backup(
    src: &dyn ReadAt,
    ss: u64,
    lbas: &[u64],
    primary_error: &str,
    primary_at: u64,
) -> Result<Option<Table>> {
    for &lba in lbas {
        let Ok(h) = read_header(src, ss, lba) else {
            continue;
        };
        if let Ok((parts, mut problems)) = read_entries(src, ss, &h) {
            problems.insert(
                0,
                format!(
                    "primary GPT at byte {primary_at} is damaged ({primary_error}); using the backup header at LBA {lba} (byte {})",
                    h.at
                )
                .into(),
            );
            let last = last_lba(src, ss);
            if lba < last {
                problems.insert(
                    1,
                    format!(
                        "the backup GPT header is at LBA {lba}, not at the disk's last LBA {last}: the disk was probably grown after it was partitioned"
                    )
                    .into(),
                );
            }
            return Ok(Some(table_from(&h, ss, parts, problems, src)));
        }
    }
    Ok(None)
}
