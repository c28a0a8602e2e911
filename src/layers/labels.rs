//! Labels and signatures that live beyond a volume's first bytes, read the
//! way `blkid` reads them: the FAT and exFAT volume-label entries in the
//! root directory, NTFS's `$VOLUME_NAME` in MFT record 3 (`$Volume`), the
//! Joliet volume name of an ISO 9660 image, and MD RAID superblocks at the
//! end of a device (metadata 0.90 and 1.0). Every read is bounded; damage
//! means "no label", never an error.

use crate::io::{ReadAt, le, read_vec};

/// A 16-byte UUID in the usual 8-4-4-4-12 form; `None` if all zeros.
pub(super) fn uuid(b: &[u8], off: usize) -> Option<String> {
    let u: [u8; 16] = b.get(off..off + 16)?.try_into().ok()?;
    if u.iter().all(|&x| x == 0) {
        return None;
    }
    Some(crate::image::extents::uuid_text(&u))
}

/// Root directory entries looked at, at most.
const MAX_DIR_ENTRIES: u64 = 8192;
/// Clusters of a root directory followed, at most (blkid stops at 100).
const MAX_CLUSTERS: u32 = 100;
/// The largest cluster read whole.
const MAX_CLUSTER_BYTES: u64 = 1 << 20;

/// The label of a FAT volume as blkid gives it: the volume-label entry of
/// the root directory, or `None` when there is none. The boot sector's copy
/// is not the label (blkid calls it `LABEL_FATBOOT`). `b` is the boot sector.
pub(super) fn fat_root_label(src: &dyn ReadAt, b: &[u8]) -> Option<String> {
    let sector_size = u64::from(le::u16(b, 11)?);
    let reserved = u64::from(le::u16(b, 14)?);
    let fats = u64::from(*b.get(16)?);
    let fat16_length = u64::from(le::u16(b, 22)?);
    if sector_size == 0 {
        return None;
    }
    if fat16_length != 0 {
        let start = (reserved + fat16_length * fats) * sector_size;
        let entries = u64::from(le::u16(b, 17)?).min(MAX_DIR_ENTRIES);
        let dir = read_vec(src, start, entries * 32, MAX_DIR_ENTRIES * 32).ok()?;
        return match fat_label_in(&dir) {
            Search::Found(l) => Some(l),
            _ => None,
        };
    }
    // FAT32: the root directory is a cluster chain.
    let fat32_length = u64::from(le::u32(b, 36)?);
    let spc = u64::from(*b.get(13)?);
    let cluster_bytes = spc * sector_size;
    if cluster_bytes == 0 || cluster_bytes > MAX_CLUSTER_BYTES {
        return None;
    }
    let data_start = reserved + fat32_length * fats;
    let fat_entries = fat32_length * sector_size / 4;
    let mut next = u64::from(le::u32(b, 44)?);
    for _ in 0..MAX_CLUSTERS {
        if next < 2 || next >= fat_entries {
            break;
        }
        let at = (data_start + (next - 2) * spc).checked_mul(sector_size)?;
        let dir = read_vec(src, at, cluster_bytes, MAX_CLUSTER_BYTES).ok()?;
        match fat_label_in(&dir) {
            Search::Found(l) => return Some(l),
            Search::End => return None,
            Search::More => {}
        }
        let mut e = [0u8; 4];
        src.read_exact_at(reserved * sector_size + next * 4, &mut e)
            .ok()?;
        next = u64::from(u32::from_le_bytes(e) & 0x0fff_ffff);
    }
    None
}

enum Search {
    Found(String),
    End,
    More,
}

/// The volume-label entry among 32-byte FAT directory entries.
fn fat_label_in(dir: &[u8]) -> Search {
    for e in dir.chunks_exact(32) {
        let attr = e[11];
        if e[0] == 0 {
            return Search::End;
        }
        let cluster = le::u16(e, 20).unwrap_or(0) | le::u16(e, 26).unwrap_or(0);
        if e[0] == 0xe5 || cluster != 0 || attr & 0x3f == 0x0f {
            continue;
        }
        if attr & (0x08 | 0x10) == 0x08 {
            let mut name = [0u8; 11];
            name.copy_from_slice(&e[..11]);
            if name[0] == 0x05 {
                name[0] = 0xe5;
            }
            let s = String::from_utf8_lossy(&name).trim_end().to_string();
            return if s.is_empty() {
                Search::End
            } else {
                Search::Found(s)
            };
        }
    }
    Search::More
}

/// The exFAT volume label: entry type 0x83 in the root directory, up to 11
/// UTF-16 characters. `b` is the boot sector.
pub(super) fn exfat_label(src: &dyn ReadAt, b: &[u8]) -> Option<String> {
    let fat_offset = u64::from(le::u32(b, 80)?);
    let heap = u64::from(le::u32(b, 88)?);
    let mut cluster = u64::from(le::u32(b, 96)?);
    let ss_shift = u32::from(*b.get(108)?);
    let spc_shift = u32::from(*b.get(109)?);
    if !(9..=12).contains(&ss_shift) || ss_shift + spc_shift > 25 {
        return None;
    }
    let cluster_bytes = 1u64 << (ss_shift + spc_shift);
    if cluster_bytes > MAX_CLUSTER_BYTES {
        return None;
    }
    let mut seen = 0u64;
    for _ in 0..MAX_CLUSTERS {
        if !(2..0x0fff_fff7).contains(&cluster) {
            break;
        }
        // At most (2^32 + 2^44) << 12: no overflow.
        let at = (heap + ((cluster - 2) << spc_shift)) << ss_shift;
        let dir = read_vec(src, at, cluster_bytes, MAX_CLUSTER_BYTES).ok()?;
        for e in dir.chunks_exact(32) {
            seen += 1;
            if e[0] == 0 || seen > MAX_DIR_ENTRIES {
                return None;
            }
            if e[0] == 0x83 {
                let n = usize::from(e[1]).min(11);
                return utf16le(&e[2..2 + 2 * n]);
            }
        }
        let mut next = [0u8; 4];
        src.read_exact_at((fat_offset << ss_shift) + cluster * 4, &mut next)
            .ok()?;
        cluster = u64::from(u32::from_le_bytes(next));
    }
    None
}

/// The NTFS volume name: the `$VOLUME_NAME` attribute (0x60) of MFT record
/// 3, `$Volume`. `b` is the boot sector.
pub(super) fn ntfs_label(src: &dyn ReadAt, b: &[u8]) -> Option<String> {
    let sector_size = u64::from(le::u16(b, 11)?);
    let spc_raw = *b.get(13)?;
    let spc = if spc_raw > 0x80 {
        1u64.checked_shl(256 - u32::from(spc_raw))?
    } else {
        u64::from(spc_raw)
    };
    let cluster = sector_size.checked_mul(spc).filter(|&c| c > 0)?;
    let per_record = *b.get(0x40)? as i8;
    let record = if per_record > 0 {
        u64::from(per_record as u8).checked_mul(cluster)?
    } else {
        1u64.checked_shl(u32::from(per_record.unsigned_abs()))?
    };
    if !(256..=65536).contains(&record) {
        return None;
    }
    let mft = le::u64(b, 0x30)?.checked_mul(cluster)?;
    let at = mft.checked_add(3 * record)?;
    let r = read_vec(src, at, record, 65536).ok()?;
    if r.get(..4) != Some(b"FILE") {
        return None;
    }
    let allocated = u64::from(le::u32(&r, 28)?);
    let mut off = u64::from(le::u16(&r, 20)?);
    // Each attribute is at least 16 bytes long: the loop ends.
    while off + 24 <= record && off <= allocated {
        let o = off as usize;
        let kind = le::u32(&r, o)?;
        let len = u64::from(le::u32(&r, o + 4)?);
        if kind == 0xffff_ffff || len < 16 {
            break;
        }
        if kind == 0x60 {
            let value_len = u64::from(le::u32(&r, o + 16)?);
            let value_off = u64::from(le::u16(&r, o + 20)?);
            let start = off + value_off;
            let end = start.checked_add(value_len)?;
            if end > record {
                return None;
            }
            return utf16le(&r[start as usize..end as usize]);
        }
        off += len;
    }
    None
}

/// The Joliet volume name of an ISO 9660 image, when a Joliet descriptor
/// has one that differs from the primary descriptor's (blkid then prefers
/// it); `pvd_label` is the primary's 32 raw bytes.
pub(super) fn joliet_label(src: &dyn ReadAt, pvd_label: &[u8]) -> Option<String> {
    for i in 0..16u64 {
        let at = 0x8000 + i * 0x800;
        let d = read_vec(src, at, 0x100, 0x100).ok()?;
        match d[0] {
            0xff => return None,
            2 if matches!(&d[88..91], b"%/@" | b"%/C" | b"%/E") => {
                let id = &d[40..72];
                let same = pvd_label
                    .iter()
                    .zip(id.chunks_exact(2))
                    .all(|(&a, u)| u[0] == 0 && u[1] == a);
                if same {
                    return None;
                }
                let s = utf16be(id)?;
                return Some(s);
            }
            _ => {}
        }
    }
    None
}

/// An MD RAID superblock kept at the end of the device: metadata 0.90 (in
/// the last 64 KiB-aligned 64 KiB) or 1.0 (8 KiB before the 4 KiB-aligned
/// end). Returns (version, UUID, name).
pub(super) fn md_at_end(src: &dyn ReadAt) -> Option<(String, Option<String>, Option<String>)> {
    let size = src.size();
    const RESERVED: u64 = 0x10000;
    if size <= RESERVED {
        return None;
    }
    let at = (size & !(RESERVED - 1)) - RESERVED;
    let mut b = [0u8; 64];
    if src.read_exact_at(at, &mut b).is_ok() {
        let le_magic = le::u32(&b, 0) == Some(0xa92b_4efc);
        let be_magic = crate::io::be::u32(&b, 0) == Some(0xa92b_4efc);
        if le_magic || be_magic {
            let word = |i: usize| -> [u8; 4] {
                let w: [u8; 4] = b[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]);
                if le_magic {
                    [w[3], w[2], w[1], w[0]]
                } else {
                    w
                }
            };
            let num = |i: usize| -> u32 {
                let w: [u8; 4] = b[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]);
                if le_magic {
                    u32::from_le_bytes(w)
                } else {
                    u32::from_be_bytes(w)
                }
            };
            let mut set_uuid = [0u8; 16];
            set_uuid[..4].copy_from_slice(&word(5));
            if num(2) >= 90 {
                set_uuid[4..8].copy_from_slice(&word(13));
                set_uuid[8..12].copy_from_slice(&word(14));
                set_uuid[12..16].copy_from_slice(&word(15));
            }
            // The array's size (KiB) must fit before the superblock.
            let array = u64::from(num(8)) << 10;
            if size >= array.saturating_add(RESERVED) && at >= array {
                let version = format!("{}.{}.{}", num(1), num(2), num(3));
                return Some((version, uuid(&set_uuid, 0), None));
            }
        }
    }
    let at = (size & !0xfff).checked_sub(0x2000)?;
    let b = read_vec(src, at, 1024, 1024).ok()?;
    if !md1_valid(&b, at) {
        return None;
    }
    let end = b[32..64].iter().position(|&x| x == 0).unwrap_or(32);
    let name = String::from_utf8_lossy(&b[32..32 + end]).to_string();
    Some((
        "1.0".into(),
        uuid(&b, 16),
        (!name.is_empty()).then_some(name),
    ))
}

/// Whether `b` (at least 1 KiB read at byte `at` of the device) starts
/// with a valid MD 1.x superblock, checked as blkid checks it: magic, major
/// version 1, `super_offset` naming this very sector, and the checksum.
pub(crate) fn md1_valid(b: &[u8], at: u64) -> bool {
    let ok = || -> Option<bool> {
        if le::u32(b, 0)? != 0xa92b_4efc || le::u32(b, 4)? != 1 {
            return Some(false);
        }
        if le::u64(b, 144)? != at >> 9 {
            return Some(false);
        }
        let max_dev = le::u32(b, 220)? as usize;
        // sb_csum covers the 256-byte header and max_dev 2-byte roles.
        let len = 256usize.checked_add(max_dev.checked_mul(2)?)?;
        let Some(covered) = b.get(..len) else {
            // More roles than were read: blkid counts this as verified.
            return Some(true);
        };
        let mut sum: u64 = 0;
        let mut words = covered.chunks_exact(4);
        for (i, w) in words.by_ref().enumerate() {
            if i != 216 / 4 {
                sum += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            }
        }
        if let [a, b2] = words.remainder() {
            sum += u64::from(u16::from_le_bytes([*a, *b2]));
        }
        let csum = (sum >> 32) + (sum & 0xffff_ffff);
        Some(csum & 0xffff_ffff == u64::from(le::u32(b, 216)?))
    };
    ok().unwrap_or(false)
}

fn utf16le(b: &[u8]) -> Option<String> {
    utf16(b, u16::from_le_bytes)
}

fn utf16be(b: &[u8]) -> Option<String> {
    utf16(b, u16::from_be_bytes)
}

/// UTF-16 up to the first NUL, trailing spaces removed; `None` if empty.
fn utf16(b: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| unit([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let s = String::from_utf16_lossy(&units).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_label_entry_rules() {
        let mut dir = vec![0u8; 32 * 4];
        // A long-name entry, a deleted label, then the label.
        dir[..11].copy_from_slice(b"ALONGNAME  ");
        dir[11] = 0x0f;
        dir[32..43].copy_from_slice(b"\xe5LDLABEL   ");
        dir[43] = 0x08;
        dir[64..75].copy_from_slice(b"\x05ABEL      ");
        dir[75] = 0x08;
        match fat_label_in(&dir) {
            Search::Found(l) => assert_eq!(l, "\u{fffd}ABEL"),
            _ => panic!("no label"),
        }
        // A directory (attr 0x18) is not a label.
        dir[75] = 0x18;
        assert!(matches!(fat_label_in(&dir), Search::End));
    }

    #[test]
    fn damaged_structures_give_no_label() {
        let zeros = vec![0u8; 1 << 20];
        let mut boot = vec![0u8; 512];
        assert_eq!(fat_root_label(&zeros, &boot), None);
        assert_eq!(exfat_label(&zeros, &boot), None);
        assert_eq!(ntfs_label(&zeros, &boot), None);
        // Hostile NTFS geometry: huge shifts, an MFT past the end.
        boot[11] = 0;
        boot[12] = 2;
        boot[13] = 0xff;
        boot[0x40] = 0x80;
        boot[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(ntfs_label(&zeros, &boot), None);
        // Hostile exFAT geometry.
        boot[108] = 12;
        boot[109] = 25;
        assert_eq!(exfat_label(&zeros, &boot), None);
        boot[109] = 0;
        boot[88..92].copy_from_slice(&u32::MAX.to_le_bytes());
        boot[96..100].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(exfat_label(&zeros, &boot), None);
        assert_eq!(md_at_end(&zeros), None);
    }

    #[test]
    fn md_090_superblock_at_the_end() {
        let size = (1 << 20) + 5000;
        let mut disk = vec![0u8; size];
        let at = (size & !0xffff) - 0x10000;
        let put = |d: &mut Vec<u8>, word: usize, v: u32| {
            d[at + word * 4..at + word * 4 + 4].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut disk, 0, 0xa92b_4efc);
        put(&mut disk, 2, 90);
        put(&mut disk, 5, 0x0102_0304);
        put(&mut disk, 13, 0x0506_0708);
        put(&mut disk, 14, 0x090a_0b0c);
        put(&mut disk, 15, 0x0d0e_0f10);
        let (version, uuid, name) = md_at_end(&disk).expect("md");
        assert_eq!(version, "0.90.0");
        assert_eq!(
            uuid.as_deref(),
            Some("01020304-0506-0708-090a-0b0c0d0e0f10")
        );
        assert_eq!(name, None);
    }
}
