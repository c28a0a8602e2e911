//! The FAT boot sector (BIOS parameter block) and the volume's geometry,
//! as Microsoft's FAT specification (fatgen103) defines them: the FAT type
//! follows from the count of data clusters alone.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::error::{Error, Result};
use crate::io::le;

/// FAT12, FAT16 or FAT32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// Fewer than 4085 clusters: 12-bit entries.
    Fat12,
    /// Fewer than 65525 clusters: 16-bit entries.
    Fat16,
    /// 28-bit entries in 32-bit words.
    Fat32,
}

impl FatType {
    /// `FAT12`, `FAT16`, `FAT32`, as blkid's VERSION says.
    pub fn name(self) -> &'static str {
        match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        }
    }

    /// The smallest entry value that ends a chain.
    pub fn end_of_chain(self) -> u32 {
        match self {
            FatType::Fat12 => 0x0FF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }

    /// The entry value that marks a bad cluster.
    pub fn bad(self) -> u32 {
        match self {
            FatType::Fat12 => 0x0FF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        }
    }
}

/// The geometry a FAT volume's boot sector gives, checked.
#[derive(Debug, Clone)]
pub struct Bpb {
    /// `BPB_BytsPerSec`: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
    /// Bytes per cluster (`BPB_SecPerClus` × sector size).
    pub cluster_size: u32,
    /// `BPB_NumFATs`.
    pub fats: u32,
    /// Byte offset of the first FAT.
    pub fat_offset: u64,
    /// Bytes of one FAT.
    pub fat_bytes: u64,
    /// Byte offset of the FAT12/16 root directory region (none on FAT32).
    pub root_offset: u64,
    /// Bytes of the FAT12/16 root directory region.
    pub root_bytes: u64,
    /// Byte offset of cluster 2.
    pub data_offset: u64,
    /// Number of data clusters (cluster numbers 2..count+2).
    pub clusters: u32,
    /// FAT12/16/32, from the cluster count.
    pub fat_type: FatType,
    /// FAT32 `BPB_RootClus`.
    pub root_cluster: u32,
    /// FAT32 `BPB_ExtFlags`: `Some(n)` when mirroring is off and FAT n is the active one.
    pub active_fat: Option<u32>,
    /// `BS_VolID`, when the extended boot signature says it is there.
    pub serial: Option<u32>,
    /// `BS_VolLab`, trimmed, when present and not `NO NAME`.
    pub label: Option<Vec<u8>>,
    /// `BPB_Media`.
    pub media: u8,
    /// FAT32 `BPB_FSInfo` sector.
    pub fsinfo_sector: Option<u32>,
}

/// The largest volume read: 2^32 sectors of 4 KiB.
const MAX_BYTES: u64 = 1 << 44;

impl Bpb {
    /// Parse and check the boot sector `b` (at least 512 bytes).
    pub fn parse(b: &[u8]) -> Result<Bpb> {
        let bad = |off: u64, what: String| Error::corrupt("FAT boot sector", off, what);
        let u8_at = |off: usize| b.get(off).copied().unwrap_or(0);
        let u16_at = |off: usize| le::u16(b, off).unwrap_or(0);
        let u32_at = |off: usize| le::u32(b, off).unwrap_or(0);
        if b.len() < 512 {
            return Err(bad(0, "shorter than 512 bytes".into()));
        }
        let sector_size = u32::from(u16_at(11));
        if !matches!(sector_size, 512 | 1024 | 2048 | 4096) {
            return Err(bad(
                11,
                format!("BPB_BytsPerSec is {sector_size}, not 512, 1024, 2048 or 4096"),
            ));
        }
        let spc = u32::from(u8_at(13));
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad(
                13,
                format!("BPB_SecPerClus is {spc}, not a power of two"),
            ));
        }
        let cluster_size = spc
            .checked_mul(sector_size)
            .filter(|&c| c <= 256 * 1024)
            .ok_or_else(|| bad(13, format!("clusters of {spc} sectors are too large")))?;
        let reserved = u32::from(u16_at(14));
        if reserved == 0 {
            return Err(bad(14, "BPB_RsvdSecCnt is 0".into()));
        }
        let fats = u32::from(u8_at(16));
        if fats == 0 || fats > 4 {
            return Err(bad(16, format!("BPB_NumFATs is {fats}")));
        }
        let root_entries = u32::from(u16_at(17));
        let total16 = u32::from(u16_at(19));
        let media = u8_at(21);
        let fat16_size = u32::from(u16_at(22));
        let total32 = u32_at(32);
        let total = if total16 != 0 { total16 } else { total32 };
        let fat_sectors = if fat16_size != 0 {
            fat16_size
        } else {
            u32_at(36)
        };
        if fat_sectors == 0 {
            return Err(bad(22, "the FAT size is 0".into()));
        }
        let ss = u64::from(sector_size);
        let root_bytes = u64::from(root_entries).saturating_mul(32);
        let root_sectors = root_bytes.div_ceil(ss);
        let fat_bytes = u64::from(fat_sectors).saturating_mul(ss);
        let fat_offset = u64::from(reserved).saturating_mul(ss);
        let root_offset = fat_offset
            .checked_add(fat_bytes.saturating_mul(u64::from(fats)))
            .ok_or_else(|| bad(22, "the FATs end past 2^64".into()))?;
        let data_offset = root_offset
            .checked_add(root_sectors.saturating_mul(ss))
            .ok_or_else(|| bad(17, "the root directory ends past 2^64".into()))?;
        let total_bytes = u64::from(total).saturating_mul(ss);
        if total_bytes > MAX_BYTES {
            return Err(bad(
                32,
                format!("{total_bytes} bytes is beyond FAT's limits"),
            ));
        }
        if data_offset >= total_bytes {
            return Err(bad(
                19,
                format!(
                    "the data region starts at byte {data_offset}, past the volume's {total_bytes} bytes"
                ),
            ));
        }
        let data_sectors = total_bytes
            .saturating_sub(data_offset)
            .checked_div(ss)
            .unwrap_or(0);
        let count = data_sectors.checked_div(u64::from(spc)).unwrap_or(0);
        let clusters = u32::try_from(count)
            .ok()
            .filter(|&c| c <= 0x0FFF_FFF5)
            .ok_or_else(|| bad(32, format!("{count} clusters is more than FAT32 can count")))?;
        if clusters == 0 {
            return Err(bad(19, "the volume has no data clusters".into()));
        }
        let fat_type = if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        // The FAT must hold an entry for every cluster.
        let need_bits = u64::from(clusters)
            .saturating_add(2)
            .saturating_mul(match fat_type {
                FatType::Fat12 => 12,
                FatType::Fat16 => 16,
                FatType::Fat32 => 32,
            });
        if fat_bytes.saturating_mul(8) < need_bits {
            return Err(bad(
                22,
                format!(
                    "one FAT of {fat_bytes} bytes cannot hold {} entries of {}",
                    u64::from(clusters).saturating_add(2),
                    fat_type.name()
                ),
            ));
        }
        let (ext_sig_off, root_cluster, active_fat, fsinfo_sector) = if fat_type == FatType::Fat32 {
            if root_entries != 0 || fat16_size != 0 {
                return Err(bad(
                    17,
                    "a FAT32 volume (by its cluster count) with a FAT12/16 root directory or FAT size"
                        .into(),
                ));
            }
            let flags = u16_at(40);
            let active = (flags & 0x80 != 0).then_some(u32::from(flags & 0x0F));
            if let Some(n) = active
                && n >= fats
            {
                return Err(bad(
                    40,
                    format!("BPB_ExtFlags names FAT {n} as the active one, of {fats}"),
                ));
            }
            let root = u32_at(44);
            let fsinfo = u32::from(u16_at(48));
            (
                66usize,
                root,
                active,
                (fsinfo != 0 && fsinfo != 0xFFFF).then_some(fsinfo),
            )
        } else {
            if root_entries == 0 {
                return Err(bad(
                    17,
                    "a FAT12/16 volume without root directory entries".into(),
                ));
            }
            (38usize, 0, None, None)
        };
        let has_ext = matches!(u8_at(ext_sig_off), 0x28 | 0x29);
        let serial = has_ext.then(|| u32_at(ext_sig_off.saturating_add(1)));
        let label = (u8_at(ext_sig_off) == 0x29)
            .then(|| b.get(ext_sig_off.saturating_add(5)..ext_sig_off.saturating_add(16)))
            .flatten()
            .map(|l| trim_name(l).to_vec())
            .filter(|l| !l.is_empty() && l.as_slice() != b"NO NAME");
        Ok(Bpb {
            sector_size,
            cluster_size,
            fats,
            fat_offset,
            fat_bytes,
            root_offset,
            root_bytes,
            data_offset,
            clusters,
            fat_type,
            root_cluster,
            active_fat,
            serial,
            label,
            media,
            fsinfo_sector,
        })
        .and_then(|bpb| {
            if bpb.fat_type == FatType::Fat32 && !bpb.is_cluster(bpb.root_cluster) {
                return Err(bad(
                    44,
                    format!("BPB_RootClus is {}, not a data cluster", bpb.root_cluster),
                ));
            }
            Ok(bpb)
        })
    }

    /// Whether `c` numbers a data cluster.
    pub fn is_cluster(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) < u64::from(self.clusters).saturating_add(2)
    }

    /// Byte offset of data cluster `c` (checked by [`Bpb::is_cluster`]).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset.saturating_add(
            u64::from(c.saturating_sub(2)).saturating_mul(u64::from(self.cluster_size)),
        )
    }

    /// Byte offset of FAT number `n`.
    pub fn fat_start(&self, n: u32) -> u64 {
        self.fat_offset
            .saturating_add(u64::from(n).saturating_mul(self.fat_bytes))
    }

    /// The bytes the FAT entries of every cluster take (what is compared
    /// between the copies), at most one FAT.
    pub fn fat_used_bytes(&self) -> u64 {
        let entries = u64::from(self.clusters).saturating_add(2);
        let bytes = match self.fat_type {
            FatType::Fat12 => entries.saturating_mul(3).div_ceil(2),
            FatType::Fat16 => entries.saturating_mul(2),
            FatType::Fat32 => entries.saturating_mul(4),
        };
        bytes.min(self.fat_bytes)
    }

    /// The end of the volume as the boot sector gives it.
    pub fn end(&self) -> u64 {
        self.cluster_offset(self.clusters.saturating_add(2))
    }
}

/// A space-padded name field without its padding.
pub fn trim_name(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|&c| c != b' ')
        .map_or(0, |i| i.saturating_add(1));
    b.get(..end).unwrap_or_default()
}
