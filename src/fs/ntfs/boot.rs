//! The NTFS boot sector: checked here before the `ntfs` crate reads the
//! volume, so that a damaged field is an error naming its byte, a BitLocker
//! volume is refused with the reason, and `$MFTMirr` can stand in for `$MFT`.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::error::{Error, Result};

/// What the boot sector says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    /// Bytes per sector.
    pub sector_size: u32,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Bytes per MFT record.
    pub record_size: u32,
    /// Byte where `$MFT` starts.
    pub mft_offset: u64,
    /// Byte where `$MFTMirr` starts.
    pub mirr_offset: u64,
    /// Volume size in bytes.
    pub size: u64,
    /// Volume serial number.
    pub serial: u64,
}

fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o.saturating_add(2))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .unwrap_or(0)
}

fn le64(b: &[u8], o: usize) -> u64 {
    b.get(o..o.saturating_add(8))
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// A size given as a cluster count (positive) or as 2^-n bytes (negative).
fn clusters_or_shift(v: u8, cluster: u32) -> Option<u32> {
    let v = v as i8;
    if v > 0 {
        u32::try_from(v).ok()?.checked_mul(cluster)
    } else {
        let shift = u32::from(v.unsigned_abs());
        if shift > 31 {
            None
        } else {
            Some(1u32 << shift)
        }
    }
}

impl Boot {
    /// Parse the first sector of a volume of `volume_size` bytes.
    pub fn parse(b: &[u8], volume_size: u64) -> Result<Boot> {
        let bad = |at: u64, what: String| Error::corrupt("NTFS boot sector", at, what);
        if b.get(3..11) == Some(b"-FVE-FS-") {
            return Err(Error::Refused(
                "this is a BitLocker-encrypted volume (OEM id \"-FVE-FS-\"): its files cannot be read without unlocking it on Windows or with dislocker".into(),
            ));
        }
        if b.get(3..11) != Some(b"NTFS    ") {
            return Err(bad(3, "no \"NTFS    \" OEM id".into()));
        }
        let sector_size = u32::from(le16(b, 11));
        if !(256..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(bad(11, format!("bytes per sector {sector_size}")));
        }
        let spc = b.get(13).copied().unwrap_or(0);
        // Values 0xF4..=0xFF mean 2^(256-v) sectors (large clusters).
        let spc = if spc > 0x80 {
            let shift = 256u32.saturating_sub(u32::from(spc));
            if shift > 12 {
                return Err(bad(13, format!("sectors per cluster code {spc:#x}")));
            }
            1u32 << shift
        } else {
            u32::from(spc)
        };
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad(13, format!("sectors per cluster {spc}")));
        }
        let cluster_size = sector_size
            .checked_mul(spc)
            .filter(|c| *c <= 2 << 20)
            .ok_or_else(|| bad(13, "cluster larger than 2 MiB".into()))?;
        let sectors = le64(b, 40);
        let size = sectors
            .checked_mul(u64::from(sector_size))
            .ok_or_else(|| bad(40, format!("total sectors {sectors} overflow")))?;
        let record_size = clusters_or_shift(b.get(64).copied().unwrap_or(0), cluster_size)
            .filter(|r| (256..=65536).contains(r) && r.is_power_of_two())
            .ok_or_else(|| bad(64, "bad MFT record size".into()))?;
        let cluster = u64::from(cluster_size);
        let mft_offset = le64(b, 48)
            .checked_mul(cluster)
            .filter(|o| *o > 0 && *o < size.max(volume_size))
            .ok_or_else(|| {
                bad(
                    48,
                    format!("$MFT cluster {} outside the volume", le64(b, 48)),
                )
            })?;
        let mirr_offset = le64(b, 56)
            .checked_mul(cluster)
            .filter(|o| *o > 0 && *o < size.max(volume_size))
            .ok_or_else(|| {
                bad(
                    56,
                    format!("$MFTMirr cluster {} outside the volume", le64(b, 56)),
                )
            })?;
        Ok(Boot {
            sector_size,
            cluster_size,
            record_size,
            mft_offset,
            mirr_offset,
            size,
            serial: le64(b, 72),
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    fn sector() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 8;
        b[40..48].copy_from_slice(&131071u64.to_le_bytes());
        b[48..56].copy_from_slice(&4u64.to_le_bytes());
        b[56..64].copy_from_slice(&8191u64.to_le_bytes());
        b[64] = 0xF6; // 2^10 bytes
        b[72..80].copy_from_slice(&0x0123_4567_89AB_CDEFu64.to_le_bytes());
        b
    }

    #[test]
    fn fields() {
        let b = Boot::parse(&sector(), 64 << 20).unwrap();
        assert_eq!(b.cluster_size, 4096);
        assert_eq!(b.record_size, 1024);
        assert_eq!(b.mft_offset, 16384);
        assert_eq!(b.serial, 0x0123_4567_89AB_CDEF);
    }

    #[test]
    fn bad_fields_name_their_byte() {
        let cases: [(usize, u8, &str); 4] = [
            (11, 3, "at byte 11"),
            (13, 3, "at byte 13"),
            (64, 0, "at byte 64"),
            (4, b'X', "at byte 3"),
        ];
        for (at, v, want) in cases {
            let mut s = sector();
            s[at] = v;
            let e = Boot::parse(&s, 64 << 20).unwrap_err().to_string();
            assert!(e.contains(want), "{at}: {e}");
        }
        let mut s = sector();
        s[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = Boot::parse(&s, 64 << 20).unwrap_err().to_string();
        assert!(e.contains("at byte 48"), "{e}");
    }

    #[test]
    fn bitlocker_is_refused() {
        let mut s = sector();
        s[3..11].copy_from_slice(b"-FVE-FS-");
        let e = Boot::parse(&s, 64 << 20).unwrap_err().to_string();
        assert!(e.contains("BitLocker"), "{e}");
    }
}
