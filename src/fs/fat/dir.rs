//! FAT directory entries: 8.3 short entries, VFAT long-name entries
//! (UCS-2, matched to their short entry by checksum), deleted entries and
//! the end marker, read the way Linux's vfat driver reads them.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::bpb::trim_name;
use crate::fs::Timestamp;
use crate::io::le;

/// `ATTR_READ_ONLY`.
pub const ATTR_RO: u8 = 0x01;
/// `ATTR_VOLUME_ID`.
pub const ATTR_VOLUME: u8 = 0x08;
/// `ATTR_DIRECTORY`.
pub const ATTR_DIR: u8 = 0x10;
/// The attribute value of a long-name entry.
const ATTR_LONG_NAME: u8 = 0x0F;
/// Bytes of one directory entry.
pub const ENTRY: usize = 32;

/// One entry of a directory, its long name joined.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Byte position of its short entry on the volume (its identity).
    pub pos: u64,
    /// The name shown: the long name when one matches, else the short name
    /// with the case the NT flags ask for.
    pub name: Vec<u8>,
    /// The 8.3 name (`README.TXT`), for lookups.
    pub short: Vec<u8>,
    /// `DIR_Attr`.
    pub attr: u8,
    /// First cluster (0: none).
    pub cluster: u32,
    /// `DIR_FileSize`.
    pub size: u32,
    /// Last write (`DIR_WrtDate`/`DIR_WrtTime`), 2-second resolution.
    pub mtime: Timestamp,
    /// Creation (`DIR_CrtDate`/`DIR_CrtTime`/`DIR_CrtTimeTenth`).
    pub crtime: Option<Timestamp>,
    /// Last access date (`DIR_LstAccDate`), at midnight.
    pub atime: Timestamp,
}

impl Entry {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIR != 0
    }
}

/// What a directory's bytes hold.
#[derive(Debug, Default)]
pub struct Listing {
    /// The entries, `.` and `..` left out.
    pub entries: Vec<Entry>,
    /// The volume label entry, if there is one (the root directory's).
    pub label: Option<Vec<u8>>,
    /// How many subdirectories, for the link count.
    pub subdirs: u64,
}

/// The checksum a long-name entry carries of its short name.
pub fn short_checksum(name11: &[u8]) -> u8 {
    name11
        .iter()
        .fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

/// A long name being gathered: its parts by order number.
struct Long {
    checksum: u8,
    next: u8,
    units: Vec<u16>,
}

/// Parse the directory bytes `data`; `pos_of(i)` is the volume position
/// of byte `i` of `data`; `fat32` says whether `DIR_FstClusHI` counts.
pub fn parse(data: &[u8], pos_of: &dyn Fn(usize) -> u64, fat32: bool) -> Listing {
    let mut out = Listing::default();
    let mut long: Option<Long> = None;
    for (i, e) in data.chunks_exact(ENTRY).enumerate() {
        let off = i.saturating_mul(ENTRY);
        let first = e.first().copied().unwrap_or(0);
        if first == 0x00 {
            break;
        }
        if first == 0xE5 {
            long = None;
            continue;
        }
        let attr = e.get(11).copied().unwrap_or(0);
        if attr & 0x3F == ATTR_LONG_NAME {
            let ord = first & 0x3F;
            let checksum = e.get(13).copied().unwrap_or(0);
            let mut units: Vec<u16> = [1usize, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                .iter()
                .filter_map(|&o| le::u16(e, o))
                .collect();
            if first & 0x40 != 0 {
                if ord == 0 {
                    long = None;
                    continue;
                }
                // The last part first: its units end the name.
                if let Some(end) = units.iter().position(|&u| u == 0) {
                    units.truncate(end);
                }
                long = Some(Long {
                    checksum,
                    next: ord.saturating_sub(1),
                    units,
                });
            } else if let Some(l) = long.as_mut() {
                if ord == 0 || ord != l.next || checksum != l.checksum {
                    long = None;
                } else {
                    units.extend_from_slice(&l.units);
                    l.units = units;
                    l.next = ord.saturating_sub(1);
                }
            }
            continue;
        }
        let name11 = e.get(..11).unwrap_or_default();
        let joined = long.take().and_then(|l| {
            (l.next == 0 && l.checksum == short_checksum(name11) && !l.units.is_empty())
                .then_some(l.units)
        });
        if attr & ATTR_VOLUME != 0 {
            if attr & ATTR_DIR == 0 && out.label.is_none() {
                let label = trim_name(name11).to_vec();
                if !label.is_empty() {
                    out.label = Some(label);
                }
            }
            continue;
        }
        if name11.first() == Some(&b'.') && matches!(trim_name(name11), b"." | b"..") {
            continue;
        }
        let short = short_name(e, false);
        let name = match joined {
            Some(units) => utf16_to_utf8(&units),
            None => short_name(e, true),
        };
        let hi = if fat32 {
            u32::from(le::u16(e, 20).unwrap_or(0))
        } else {
            0
        };
        let lo = u32::from(le::u16(e, 26).unwrap_or(0));
        let entry = Entry {
            pos: pos_of(off),
            name,
            short,
            attr,
            cluster: (hi << 16) | lo,
            size: le::u32(e, 28).unwrap_or(0),
            mtime: fat_time(le::u16(e, 24).unwrap_or(0), le::u16(e, 22).unwrap_or(0), 0),
            crtime: match le::u16(e, 16).unwrap_or(0) {
                0 => None,
                date => Some(fat_time(
                    date,
                    le::u16(e, 14).unwrap_or(0),
                    e.get(13).copied().unwrap_or(0),
                )),
            },
            atime: fat_time(le::u16(e, 18).unwrap_or(0), 0, 0),
        };
        if entry.is_dir() {
            out.subdirs = out.subdirs.saturating_add(1);
        }
        out.entries.push(entry);
    }
    out
}

/// The 8.3 name of short entry `e`: `BASE.EXT`, a leading 0x05 read as
/// 0xE5; with `nt_case`, the base and extension lowercased where the NT
/// flags (`DIR_NTRes` bits 3 and 4) say, as Windows and Linux show them.
fn short_name(e: &[u8], nt_case: bool) -> Vec<u8> {
    let flags = e.get(12).copied().unwrap_or(0);
    let mut base = trim_name(e.get(..8).unwrap_or_default()).to_vec();
    if let Some(b) = base.first_mut()
        && *b == 0x05
    {
        *b = 0xE5;
    }
    let mut ext = trim_name(e.get(8..11).unwrap_or_default()).to_vec();
    if nt_case && flags & 0x08 != 0 {
        base.make_ascii_lowercase();
    }
    if nt_case && flags & 0x10 != 0 {
        ext.make_ascii_lowercase();
    }
    if !ext.is_empty() {
        base.push(b'.');
        base.extend_from_slice(&ext);
    }
    base
}

/// UCS-2/UTF-16 units as UTF-8 (an unpaired surrogate becomes U+FFFD).
fn utf16_to_utf8(units: &[u16]) -> Vec<u8> {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect::<String>()
        .into_bytes()
}

/// A FAT date and time (local time in the guest, taken as UTC) and
/// hundredths of a second (0..199) as a timestamp.
pub fn fat_time(date: u16, time: u16, hundredths: u8) -> Timestamp {
    let year = 1980i64.saturating_add(i64::from(date >> 9));
    let month = i64::from((date >> 5) & 0x0F).clamp(1, 12);
    let day = i64::from(date & 0x1F).max(1);
    let hour = i64::from(time >> 11);
    let minute = i64::from((time >> 5) & 0x3F);
    let second = i64::from(time & 0x1F).saturating_mul(2);
    let extra = i64::from(hundredths.min(199));
    let days = days_from_civil(year, month, day);
    let sec = days
        .saturating_mul(86_400)
        .saturating_add(hour.saturating_mul(3600))
        .saturating_add(minute.saturating_mul(60))
        .saturating_add(second)
        .saturating_add(extra / 100);
    let nsec = u32::try_from((extra % 100).saturating_mul(10_000_000)).unwrap_or(0);
    Timestamp { sec, nsec }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// civil-from-days inverse; inputs are small, so nothing overflows).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y.saturating_sub(1) } else { y };
    let era = y.div_euclid(400);
    let yoe = y.saturating_sub(era.saturating_mul(400));
    let mp = if m > 2 {
        m.saturating_sub(3)
    } else {
        m.saturating_add(9)
    };
    let doy = (153i64.saturating_mul(mp).saturating_add(2))
        .div_euclid(5)
        .saturating_add(d)
        .saturating_sub(1);
    let doe = yoe
        .saturating_mul(365)
        .saturating_add(yoe.div_euclid(4))
        .saturating_sub(yoe.div_euclid(100))
        .saturating_add(doy);
    era.saturating_mul(146_097)
        .saturating_add(doe)
        .saturating_sub(719_468)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn short(name: &[u8; 11], attr: u8, cluster: u16, size: u32) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(name);
        e[11] = attr;
        e[26..28].copy_from_slice(&cluster.to_le_bytes());
        e[28..32].copy_from_slice(&size.to_le_bytes());
        e
    }

    fn long_part(ord: u8, checksum: u8, chars: &[u16]) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[0] = ord;
        e[11] = ATTR_LONG_NAME;
        e[13] = checksum;
        let slots = [1usize, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (k, o) in slots.iter().enumerate() {
            let u = chars
                .get(k)
                .copied()
                .unwrap_or(if k == chars.len() { 0 } else { 0xFFFF });
            e[*o..*o + 2].copy_from_slice(&u.to_le_bytes());
        }
        e
    }

    #[test]
    fn long_names_join_when_the_checksum_matches() {
        let name = *b"LONGFI~1TXT";
        let sum = short_checksum(&name);
        let text: Vec<u16> = "a long file name.txt".encode_utf16().collect();
        let (a, b) = text.split_at(13);
        let mut dir = Vec::new();
        dir.extend_from_slice(&long_part(0x42, sum, b));
        dir.extend_from_slice(&long_part(0x01, sum, a));
        dir.extend_from_slice(&short(&name, 0x20, 5, 10));
        // A long name whose checksum does not match: the short name shows.
        dir.extend_from_slice(&long_part(
            0x41,
            sum ^ 1,
            &"other".encode_utf16().collect::<Vec<_>>(),
        ));
        dir.extend_from_slice(&short(b"SHORT   TXT", 0x20, 6, 1));
        // Deleted, then the end: nothing after it counts.
        dir.extend_from_slice(&short(b"\xE5ONE    TXT", 0x20, 7, 1));
        dir.extend_from_slice(&[0u8; 32]);
        dir.extend_from_slice(&short(b"AFTER   TXT", 0x20, 8, 1));
        let l = parse(&dir, &|i| 1000 + i as u64, false);
        let names: Vec<&[u8]> = l.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"a long file name.txt"[..], b"SHORT.TXT"]);
        assert_eq!(l.entries[0].pos, 1064);
        assert_eq!(l.entries[0].cluster, 5);
    }

    #[test]
    fn nt_case_flags_lowercase_the_short_name() {
        let mut e = short(b"README  TXT", 0x20, 3, 1);
        e[12] = 0x08 | 0x10;
        let l = parse(&e, &|i| i as u64, false);
        assert_eq!(l.entries[0].name, b"readme.txt");
        assert_eq!(l.entries[0].short, b"README.TXT");
    }

    #[test]
    fn fat_times_are_utc_seconds() {
        // 2024-02-29 13:37:58.50
        let date = ((2024 - 1980) << 9) | (2 << 5) | 29;
        let time = (13 << 11) | (37 << 5) | 29;
        let t = fat_time(date, time, 50);
        assert_eq!(t.sec, 1_709_213_878);
        assert_eq!(t.nsec, 500_000_000);
    }
}
