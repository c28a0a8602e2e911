//! The internal snapshot table.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::error::{Error, IoContext, Result};
use crate::io::{ReadAt, be, read_vec};

/// QEMU's limit on the number of internal snapshots.
pub const MAX_SNAPSHOTS: u32 = 65536;
/// QEMU's limit on the extra data of one snapshot table entry.
const MAX_EXTRA_DATA: u32 = 1024;
/// QEMU's limit on the size of the whole snapshot table.
const MAX_TABLE_BYTES: u64 = 64 << 20;

/// An internal snapshot, as listed in the snapshot table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// The unique ID string (`1`, `2`...).
    pub id: String,
    /// The name given when it was taken.
    pub name: String,
    /// Where its L1 table is.
    pub l1_table_offset: u64,
    /// Entries in that L1 table.
    pub l1_size: u32,
    /// When it was taken (seconds since the epoch).
    pub date_sec: u32,
    /// Sub-second part of that time.
    pub date_nsec: u32,
    /// How long the guest had run, in nanoseconds.
    pub vm_clock_nsec: u64,
    /// Size of the saved VM state (RAM, devices), 0 for a disk-only snapshot.
    pub vm_state_size: u64,
    /// The virtual disk size when it was taken (from the extra data), if recorded.
    pub disk_size: Option<u64>,
    /// Where its entry starts in the image file.
    pub entry_offset: u64,
}

impl Snapshot {
    /// `1 "before-upgrade"` for messages.
    pub fn label(&self) -> String {
        format!(
            "{} \"{}\"",
            crate::text::escape_str(&self.id),
            crate::text::escape_str(&self.name)
        )
    }

    /// The time it was taken, `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn date(&self) -> String {
        format_utc(u64::from(self.date_sec))
    }
}

/// Read the snapshot table of an image whose file is `file`.
pub fn read_table(
    file: &dyn ReadAt,
    offset: u64,
    count: u32,
    cluster_size: u64,
    name: &str,
) -> Result<Vec<Snapshot>> {
    let structure = || format!("{name}: qcow2 snapshot table");
    if count == 0 {
        return Ok(Vec::new());
    }
    if count > MAX_SNAPSHOTS {
        return Err(Error::corrupt(
            format!("{name}: qcow2 header"),
            60,
            format!("nb_snapshots {count} (QEMU allows at most {MAX_SNAPSHOTS})"),
        ));
    }
    if offset == 0 || !offset.is_multiple_of(cluster_size) {
        return Err(Error::corrupt(
            format!("{name}: qcow2 header"),
            64,
            format!(
                "snapshots_offset {offset} is not a cluster boundary after the header (cluster size {cluster_size})"
            ),
        ));
    }
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    let mut pos = offset;
    for _ in 0..count {
        if pos.saturating_sub(offset) > MAX_TABLE_BYTES {
            return Err(Error::corrupt(
                structure(),
                offset,
                format!("larger than QEMU's limit of {MAX_TABLE_BYTES} bytes"),
            ));
        }
        let fixed = read_vec(file, pos, 40, 40).context(|| {
            format!("{name}: qcow2 snapshot table entry at byte {pos} (past the end of the file?)")
        })?;
        let field = |off: usize| be::u64(&fixed, off).unwrap_or(0);
        let field32 = |off: usize| be::u32(&fixed, off).unwrap_or(0);
        let field16 = |off: usize| be::u16(&fixed, off).unwrap_or(0);
        let id_size = field16(12);
        let name_size = field16(14);
        let extra_size = field32(36);
        if extra_size > MAX_EXTRA_DATA {
            return Err(Error::corrupt(
                structure(),
                pos.saturating_add(36),
                format!("extra_data_size {extra_size} (QEMU allows at most {MAX_EXTRA_DATA})"),
            ));
        }
        // A u32 and two u16: the sum fits a u64.
        let var_len = u64::from(extra_size)
            .saturating_add(u64::from(id_size))
            .saturating_add(u64::from(name_size));
        let var = read_vec(file, pos.saturating_add(40), var_len, var_len).context(|| {
            format!("{name}: qcow2 snapshot table entry at byte {pos} (past the end of the file?)")
        })?;
        // `var` is exactly extra, id and name long: both splits succeed.
        let (extra, rest) = var
            .split_at_checked(extra_size as usize)
            .unwrap_or_default();
        let (id_bytes, name_bytes) = rest
            .split_at_checked(usize::from(id_size))
            .unwrap_or_default();
        let mut vm_state_size = u64::from(field32(32));
        if let Some(v) = be::u64(extra, 0) {
            vm_state_size = v;
        }
        let disk_size = be::u64(extra, 8);
        out.push(Snapshot {
            id: String::from_utf8_lossy(id_bytes).into_owned(),
            name: String::from_utf8_lossy(name_bytes).into_owned(),
            l1_table_offset: field(0),
            l1_size: field32(8),
            date_sec: field32(16),
            date_nsec: field32(20),
            vm_clock_nsec: field(24),
            vm_state_size,
            disk_size,
            entry_offset: pos,
        });
        let len = var_len.saturating_add(40).next_multiple_of(8);
        pos = pos.checked_add(len).ok_or_else(|| {
            Error::corrupt(structure(), pos, "entry runs past the largest offset")
        })?;
    }
    Ok(out)
}

/// Find a snapshot by ID, else by name (as QEMU does).
pub fn find<'a>(snapshots: &'a [Snapshot], wanted: &str) -> Result<&'a Snapshot> {
    if let Some(s) = snapshots.iter().find(|s| s.id == wanted) {
        return Ok(s);
    }
    let by_name: Vec<&Snapshot> = snapshots.iter().filter(|s| s.name == wanted).collect();
    match by_name.as_slice() {
        [one] => Ok(one),
        [] => {
            let list: Vec<String> = snapshots.iter().map(Snapshot::label).collect();
            Err(Error::NotFound(format!(
                "snapshot \"{}\" (the image has {})",
                crate::text::escape_str(wanted),
                if list.is_empty() {
                    "no internal snapshots".to_string()
                } else {
                    list.join(", ")
                }
            )))
        }
        many => Err(Error::Invalid(format!(
            "more than one snapshot is named \"{}\" (IDs {}): choose one by ID",
            crate::text::escape_str(wanted),
            many.iter()
                .map(|s| crate::text::escape_str(&s.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch.
// Days since 1970 stay below 2^48 for any u64 of seconds: nothing in the
// calendar arithmetic below can overflow an i64.
#[allow(clippy::arithmetic_side_effects)]
pub fn format_utc(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_utc(u64::from(u32::MAX)), "2106-02-07 06:28:15 UTC");
    }

    fn snap(id: &str, name: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            name: name.into(),
            l1_table_offset: 0,
            l1_size: 0,
            date_sec: 0,
            date_nsec: 0,
            vm_clock_nsec: 0,
            vm_state_size: 0,
            disk_size: None,
            entry_offset: 0,
        }
    }

    #[test]
    fn find_by_id_then_name() {
        let list = vec![snap("1", "2"), snap("2", "b"), snap("3", "b")];
        assert_eq!(find(&list, "2").unwrap().id, "2");
        assert_eq!(find(&list, "1").unwrap().name, "2");
        assert!(
            find(&list, "b")
                .unwrap_err()
                .to_string()
                .contains("IDs 2, 3")
        );
        assert!(
            find(&list, "zz")
                .unwrap_err()
                .to_string()
                .contains("1 \"2\"")
        );
    }

    #[test]
    fn hostile_table() {
        // A table that claims entries past the end of a tiny file.
        let file = vec![0u8; 600];
        let e = read_table(&file, 512, 3, 512, "t").unwrap_err().to_string();
        assert!(e.contains("snapshot table entry at byte"), "{e}");
        assert!(read_table(&file, 512, 100_000, 512, "t").is_err());
        // An entry whose id/name/extra sizes run past the end.
        let mut file = vec![0u8; 600];
        file[512 + 12..512 + 14].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(read_table(&file, 512, 1, 512, "t").is_err());
        file[512 + 12..512 + 14].copy_from_slice(&[0, 0]);
        file[512 + 36..512 + 40].copy_from_slice(&5000u32.to_be_bytes());
        let e = read_table(&file, 512, 1, 512, "t").unwrap_err().to_string();
        assert!(e.contains("extra_data_size 5000"), "{e}");
        assert!(read_table(&file, 0, 1, 512, "t").is_err());
    }
}
