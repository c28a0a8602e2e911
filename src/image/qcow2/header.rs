//! The qcow2 header (version 2 and 3) and its header extensions.
//!
//! Field names follow QEMU's specification (`docs/interop/qcow2.txt`). All
//! numbers are big-endian. The header and its extensions live in the first
//! cluster; everything is checked against that cluster and the file's size
//! before it is used.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::error::{Error, Result};
use crate::io::be;

/// `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";

/// Smallest and largest cluster sizes we read (QEMU's limits: 512 B – 2 MiB).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// See [`MIN_CLUSTER_BITS`].
pub const MAX_CLUSTER_BITS: u32 = 21;

/// QEMU's limit on the size of an L1 table, in bytes.
pub const MAX_L1_BYTES: u64 = 32 << 20;

/// Longest backing file name the specification allows.
pub const MAX_BACKING_NAME: u32 = 1023;

/// Incompatible feature bits.
pub mod incompatible {
    /// Refcounts may be inconsistent (harmless when only reading).
    pub const DIRTY: u64 = 1 << 0;
    /// QEMU found corruption and marked the image.
    pub const CORRUPT: u64 = 1 << 1;
    /// Guest data lives in an external data file.
    pub const EXTERNAL_DATA_FILE: u64 = 1 << 2;
    /// `compression_type` is not zlib.
    pub const COMPRESSION_TYPE: u64 = 1 << 3;
    /// 128-bit L2 entries with subcluster bitmaps.
    pub const EXTENDED_L2: u64 = 1 << 4;
    /// Every bit this reader understands.
    pub const KNOWN: u64 = DIRTY | CORRUPT | EXTERNAL_DATA_FILE | COMPRESSION_TYPE | EXTENDED_L2;
}

/// Compatible feature bits.
pub mod compatible {
    /// Lazy refcounts (harmless when only reading).
    pub const LAZY_REFCOUNTS: u64 = 1 << 0;
}

/// Autoclear feature bits.
pub mod autoclear {
    /// The bitmaps extension is consistent.
    pub const BITMAPS: u64 = 1 << 0;
    /// The external data file is a consistent raw image.
    pub const RAW_EXTERNAL_DATA: u64 = 1 << 1;
}

/// Header extension types.
mod ext {
    pub(super) const END: u32 = 0x0000_0000;
    pub(super) const BACKING_FORMAT: u32 = 0xe279_2aca;
    pub(super) const FEATURE_NAME_TABLE: u32 = 0x6803_f857;
    pub(super) const BITMAPS: u32 = 0x2385_2875;
    pub(super) const FULL_DISK_ENCRYPTION: u32 = 0x0537_be77;
    pub(super) const EXTERNAL_DATA_FILE: u32 = 0x4441_5441;
}

/// How compressed clusters are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Raw deflate (zlib without its header), the default.
    Zlib,
    /// Zstandard frames.
    Zstd,
}

impl CompressionType {
    /// The name QEMU uses.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Zlib => "zlib",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// One entry of the feature name table extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureName {
    /// 0 incompatible, 1 compatible, 2 autoclear.
    pub feature_type: u8,
    /// Bit number within that bitmap.
    pub bit: u8,
    /// The name, as stored (lossy UTF-8, NULs stripped).
    pub name: String,
}

/// The decoded header and extensions.
#[derive(Debug, Clone)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// Where the backing file name is stored (0: none).
    pub backing_file_offset: u64,
    /// Its length.
    pub backing_file_size: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// 0 none, 1 AES, 2 LUKS.
    pub crypt_method: u32,
    /// Entries in the active L1 table.
    pub l1_size: u32,
    /// Where the active L1 table is.
    pub l1_table_offset: u64,
    /// Where the refcount table is.
    pub refcount_table_offset: u64,
    /// Its length in clusters.
    pub refcount_table_clusters: u32,
    /// Number of internal snapshots.
    pub nb_snapshots: u32,
    /// Where the snapshot table is.
    pub snapshots_offset: u64,
    /// Incompatible feature bits (v3; 0 for v2).
    pub incompatible_features: u64,
    /// Compatible feature bits.
    pub compatible_features: u64,
    /// Autoclear feature bits.
    pub autoclear_features: u64,
    /// log2 of the refcount width in bits (4 for v2).
    pub refcount_order: u32,
    /// Length of the header proper (72 for v2).
    pub header_length: u32,
    /// Compression of compressed clusters.
    pub compression_type: CompressionType,
    /// The backing file name, as stored.
    pub backing_file: Option<String>,
    /// The backing format header extension.
    pub backing_format: Option<String>,
    /// The external data file name extension.
    pub external_data_file: Option<String>,
    /// The feature name table extension.
    pub feature_names: Vec<FeatureName>,
    /// Whether a bitmaps extension is present.
    pub has_bitmaps: bool,
}

impl Header {
    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// Whether L2 entries are 128 bits with subcluster bitmaps.
    pub fn extended_l2(&self) -> bool {
        self.incompatible_features & incompatible::EXTENDED_L2 != 0
    }

    /// The name of feature bit `bit` of type `feature_type` from the feature name table.
    pub fn feature_name(&self, feature_type: u8, bit: u32) -> Option<&str> {
        self.feature_names
            .iter()
            .find(|f| f.feature_type == feature_type && u32::from(f.bit) == bit)
            .map(|f| f.name.as_str())
    }

    /// Decode the header from `first` (the file's first cluster, or all of a
    /// shorter file) and refuse, by name, what vmrescue cannot read (see
    /// [`Header::check_supported`]). `file_size` is the size of the whole
    /// file. `name` is put in front of every error (the image's path).
    pub fn parse(first: &[u8], file_size: u64, name: &str) -> Result<Header> {
        let h = Header::decode(first, file_size, name)?;
        h.check_supported(name)?;
        Ok(h)
    }

    /// Decode the header as [`Header::parse`] does, without refusing the
    /// features vmrescue cannot read: for `vmrescue info`, which reports
    /// such an image without reading its data.
    pub fn decode(first: &[u8], file_size: u64, name: &str) -> Result<Header> {
        let structure = || format!("{name}: qcow2 header");
        let corrupt = |off: u64, detail: String| Error::corrupt(structure(), off, detail);
        let short = |off: usize| {
            corrupt(
                off as u64,
                format!(
                    "the file ends after {} bytes, inside the header",
                    first.len()
                ),
            )
        };
        let u32_at = |off: usize| be::u32(first, off).ok_or_else(|| short(off));
        let u64_at = |off: usize| be::u64(first, off).ok_or_else(|| short(off));

        let magic = first.get(0..4).ok_or_else(|| short(0))?;
        if magic != MAGIC {
            return Err(corrupt(
                0,
                format!("bad magic {magic:02x?} (expected \"QFI\\xfb\")"),
            ));
        }
        let version = u32_at(4)?;
        if version != 2 && version != 3 {
            return Err(Error::Unsupported(format!(
                "{name}: qcow2 version {version} (vmrescue reads versions 2 and 3)"
            )));
        }
        let cluster_bits = u32_at(20)?;
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(corrupt(
                20,
                format!(
                    "cluster_bits {cluster_bits} out of range (expected {MIN_CLUSTER_BITS} to {MAX_CLUSTER_BITS}: 512 bytes to 2 MiB)"
                ),
            ));
        }
        let cluster_size = 1u64 << cluster_bits;
        let mut h = Header {
            version,
            backing_file_offset: u64_at(8)?,
            backing_file_size: u32_at(16)?,
            cluster_bits,
            size: u64_at(24)?,
            crypt_method: u32_at(32)?,
            l1_size: u32_at(36)?,
            l1_table_offset: u64_at(40)?,
            refcount_table_offset: u64_at(48)?,
            refcount_table_clusters: u32_at(56)?,
            nb_snapshots: u32_at(60)?,
            snapshots_offset: u64_at(64)?,
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: 72,
            compression_type: CompressionType::Zlib,
            backing_file: None,
            backing_format: None,
            external_data_file: None,
            feature_names: Vec::new(),
            has_bitmaps: false,
        };
        if version == 3 {
            h.incompatible_features = u64_at(72)?;
            h.compatible_features = u64_at(80)?;
            h.autoclear_features = u64_at(88)?;
            h.refcount_order = u32_at(96)?;
            h.header_length = u32_at(100)?;
            if h.header_length < 104 || !h.header_length.is_multiple_of(8) {
                return Err(corrupt(
                    100,
                    format!(
                        "header_length {} (expected at least 104 and a multiple of 8)",
                        h.header_length
                    ),
                ));
            }
            if u64::from(h.header_length) > cluster_size {
                return Err(corrupt(
                    100,
                    format!(
                        "header_length {} is larger than a cluster ({cluster_size} bytes)",
                        h.header_length
                    ),
                ));
            }
            if h.refcount_order > 6 {
                return Err(corrupt(
                    96,
                    format!("refcount_order {} (expected at most 6)", h.refcount_order),
                ));
            }
        }
        if h.header_length > 104 {
            let raw = *first.get(104).ok_or_else(|| short(104))?;
            h.compression_type = match raw {
                0 => CompressionType::Zlib,
                1 => CompressionType::Zstd,
                other => {
                    return Err(Error::Unsupported(format!(
                        "{name}: qcow2 compression_type {other} (vmrescue knows 0 zlib and 1 zstd)"
                    )));
                }
            };
        }
        let has_ct_bit = h.incompatible_features & incompatible::COMPRESSION_TYPE != 0;
        if has_ct_bit != (h.compression_type != CompressionType::Zlib) {
            return Err(corrupt(
                104,
                format!(
                    "compression_type is {} but the compression type feature bit is {}",
                    h.compression_type.name(),
                    if has_ct_bit { "set" } else { "clear" }
                ),
            ));
        }

        // Header extensions: from the end of the header to the end of the first
        // cluster (or to the backing file name, which follows them).
        let mut ext_end = first.len() as u64;
        if h.backing_file_offset != 0 {
            ext_end = ext_end.min(h.backing_file_offset);
        }
        h.parse_extensions(first, ext_end, name)?;

        if h.extended_l2() && cluster_bits < 14 {
            return Err(corrupt(
                72,
                format!(
                    "extended L2 entries with {cluster_size}-byte clusters (they need at least 16 KiB)"
                ),
            ));
        }

        // Backing file name. A size of 0 with an offset is an empty name,
        // which QEMU reads as "no backing file".
        if h.backing_file_offset != 0 {
            let off = h.backing_file_offset;
            let len = h.backing_file_size;
            if len > MAX_BACKING_NAME {
                return Err(corrupt(
                    16,
                    format!("backing_file_size {len} (expected at most {MAX_BACKING_NAME})"),
                ));
            }
            let end = off.saturating_add(u64::from(len));
            if end > cluster_size || (len > 0 && (end > file_size || end > first.len() as u64)) {
                return Err(corrupt(
                    8,
                    format!(
                        "backing file name at byte {off} ({len} bytes) is outside the first cluster or the file"
                    ),
                ));
            }
            // A non-empty name lies inside `first` (checked above); an empty
            // one may point anywhere.
            let bytes = range(first, off, end).unwrap_or_default();
            h.backing_file = (!bytes.is_empty())
                .then_some(bytes)
                .map(|bytes| String::from_utf8(bytes.to_vec()))
                .transpose()
                .map_err(|_| {
                    corrupt(
                        off,
                        format!(
                            "backing file name is not UTF-8: \"{}\"",
                            crate::text::escape(bytes)
                        ),
                    )
                })?;
        }
        Ok(h)
    }

    /// Refuse, by name, what vmrescue cannot read: incompatible features it
    /// does not know, encryption, an external data file.
    pub fn check_supported(&self, name: &str) -> Result<()> {
        // Features: refuse what we cannot read, by name.
        let unknown = self.incompatible_features & !incompatible::KNOWN;
        if unknown != 0 {
            let names: Vec<String> = (0..64)
                .filter(|b| unknown & (1u64 << b) != 0)
                .map(|b| match self.feature_name(0, b) {
                    Some(n) => format!("bit {b} \"{}\"", crate::text::escape_str(n)),
                    None => format!("bit {b} (not named in the image)"),
                })
                .collect();
            return Err(Error::Unsupported(format!(
                "{name}: qcow2 incompatible feature {} unknown to vmrescue",
                names.join(", ")
            )));
        }
        if self.crypt_method != 0 {
            let method = match self.crypt_method {
                1 => "AES".to_string(),
                2 => "LUKS".to_string(),
                m => format!("method {m}"),
            };
            return Err(Error::Unsupported(format!(
                "{name}: encrypted qcow2 ({method}); vmrescue does not decrypt images \
             (decrypt a copy with `qemu-img convert --object secret,... --image-opts ... -O raw`)"
            )));
        }
        if self.incompatible_features & incompatible::EXTERNAL_DATA_FILE != 0 {
            let file = self
                .external_data_file
                .as_deref()
                .map(|f| format!(" \"{}\"", crate::text::escape_str(f)))
                .unwrap_or_default();
            return Err(Error::Unsupported(format!(
                "{name}: qcow2 with an external data file{file}; vmrescue reads only \
             self-contained images (convert with `qemu-img convert -O raw`)"
            )));
        }
        Ok(())
    }

    fn parse_extensions(&mut self, first: &[u8], ext_end: u64, name: &str) -> Result<()> {
        let structure = || format!("{name}: qcow2 header extension");
        let mut pos = u64::from(self.header_length);
        let mut seen: Vec<u32> = Vec::new();
        // Every extension takes at least 8 bytes, so this loop ends by itself;
        // the bound is only a second guard.
        for _ in 0..=(first.len() / 8) {
            let Some(data_start) = pos.checked_add(8).filter(|&e| e <= ext_end) else {
                break;
            };
            let (Some(kind), Some(len)) = (
                usize::try_from(pos).ok().and_then(|p| be::u32(first, p)),
                range(first, pos, data_start).and_then(|b| be::u32(b, 4)),
            ) else {
                break;
            };
            if kind == ext::END {
                break;
            }
            // data_start <= ext_end, a u64 cluster offset; len is a u32.
            let data_end = data_start.saturating_add(u64::from(len));
            if data_end > ext_end {
                return Err(Error::corrupt(
                    structure(),
                    pos,
                    format!(
                        "type {kind:#010x} claims {len} bytes, past the end of the header area (byte {ext_end})"
                    ),
                ));
            }
            if kind != ext::FEATURE_NAME_TABLE && seen.contains(&kind) && kind != 0 {
                return Err(Error::corrupt(
                    structure(),
                    pos,
                    format!("type {kind:#010x} appears twice"),
                ));
            }
            seen.push(kind);
            let Some(data) = range(first, data_start, data_end) else {
                return Err(Error::corrupt(
                    structure(),
                    pos,
                    format!(
                        "type {kind:#010x} claims {len} bytes, past the end of the first cluster"
                    ),
                ));
            };
            let text = |what: &str| -> Result<String> {
                String::from_utf8(data.to_vec()).map_err(|_| {
                    Error::corrupt(
                        structure(),
                        pos,
                        format!("{what} is not UTF-8: \"{}\"", crate::text::escape(data)),
                    )
                })
            };
            match kind {
                ext::BACKING_FORMAT => self.backing_format = Some(text("backing format")?),
                ext::EXTERNAL_DATA_FILE => {
                    self.external_data_file = Some(text("external data file name")?)
                }
                ext::FEATURE_NAME_TABLE => {
                    for entry in data.chunks_exact(48) {
                        let [feature_type, bit, raw @ ..] = entry else {
                            continue;
                        };
                        let name = raw.split(|&b| b == 0).next().unwrap_or_default();
                        self.feature_names.push(FeatureName {
                            feature_type: *feature_type,
                            bit: *bit,
                            name: String::from_utf8_lossy(name).into_owned(),
                        });
                    }
                }
                ext::BITMAPS => self.has_bitmaps = true,
                ext::FULL_DISK_ENCRYPTION => {}
                _ => {} // unknown extensions may be ignored
            }
            pos = data_end.checked_next_multiple_of(8).unwrap_or(u64::MAX);
        }
        Ok(())
    }
}

/// `b[start..end]` for byte positions given as `u64`; `None` when outside `b`.
fn range(b: &[u8], start: u64, end: u64) -> Option<&[u8]> {
    b.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn v3(cluster_bits: u32) -> Vec<u8> {
        let mut h = vec![0u8; 1 << cluster_bits];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[20..24].copy_from_slice(&cluster_bits.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes());
        h[96..100].copy_from_slice(&4u32.to_be_bytes());
        h[100..104].copy_from_slice(&112u32.to_be_bytes());
        h
    }

    #[test]
    fn minimal_v3_header() {
        let h = Header::parse(&v3(16), 1 << 16, "t").unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.cluster_size(), 65536);
        assert_eq!(h.size, 1 << 20);
        assert_eq!(h.compression_type, CompressionType::Zlib);
    }

    #[test]
    fn unknown_incompatible_bit_refused_by_name() {
        let mut b = v3(16);
        b[72..80].copy_from_slice(&(1u64 << 9).to_be_bytes());
        // Feature name table naming bit 9.
        b[112..116].copy_from_slice(&0x6803_f857u32.to_be_bytes());
        b[116..120].copy_from_slice(&48u32.to_be_bytes());
        b[120] = 0;
        b[121] = 9;
        b[122..127].copy_from_slice(b"fancy");
        let e = Header::parse(&b, 1 << 16, "t").unwrap_err().to_string();
        assert!(e.contains("bit 9 \"fancy\""), "{e}");
        b[121] = 8;
        let e = Header::parse(&b, 1 << 16, "t").unwrap_err().to_string();
        assert!(e.contains("bit 9 (not named"), "{e}");
    }

    #[test]
    fn bad_fields() {
        let mut b = v3(16);
        b[0] = b'X';
        assert!(
            Header::parse(&b, 1 << 16, "t")
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
        let mut b = v3(16);
        b[7] = 4;
        assert!(
            Header::parse(&b, 1 << 16, "t")
                .unwrap_err()
                .to_string()
                .contains("version 4")
        );
        let mut b = v3(16);
        b[23] = 22;
        assert!(
            Header::parse(&b, 1 << 16, "t")
                .unwrap_err()
                .to_string()
                .contains("cluster_bits 22")
        );
        let mut b = v3(16);
        b[35] = 1;
        assert!(
            Header::parse(&b, 1 << 16, "t")
                .unwrap_err()
                .to_string()
                .contains("AES")
        );
        // Truncated header.
        assert!(Header::parse(&v3(16)[..50], 50, "t").is_err());
        // Extension running past the cluster.
        let mut b = v3(9);
        b[100..104].copy_from_slice(&104u32.to_be_bytes());
        b[104..108].copy_from_slice(&0xe279_2acau32.to_be_bytes());
        b[108..112].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = Header::parse(&b, 512, "t").unwrap_err().to_string();
        assert!(e.contains("at byte 104"), "{e}");
    }
}
