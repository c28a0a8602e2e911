//! The checksums btrfs stores for metadata blocks, the superblock and data
//! sectors: the kind the superblock's `csum_type` names, computed as the
//! kernel stores it in the 32-byte checksum field (the first
//! [`CsumType::size`] bytes; the rest are zero).
//!
//! - crc32c: CRC-32C (Castagnoli) with the usual initial value `~0` and final
//!   inversion, stored little-endian (4 bytes);
//! - xxhash: XXH64 with seed 0, stored little-endian (8 bytes);
//! - sha256: SHA-256 (32 bytes);
//! - blake2: BLAKE2b with a 256-bit digest, no key (32 bytes).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use blake2::Digest as _;

/// A checksum algorithm of btrfs (`csum_type` in the superblock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumType {
    /// `BTRFS_CSUM_TYPE_CRC32` (0): CRC-32C.
    Crc32c,
    /// `BTRFS_CSUM_TYPE_XXHASH` (1): XXH64.
    Xxhash64,
    /// `BTRFS_CSUM_TYPE_SHA256` (2).
    Sha256,
    /// `BTRFS_CSUM_TYPE_BLAKE2` (3): BLAKE2b-256.
    Blake2b,
}

impl CsumType {
    /// The kind for the on-disk number; `None` for one btrfs does not define.
    pub fn from_disk(v: u16) -> Option<CsumType> {
        match v {
            0 => Some(CsumType::Crc32c),
            1 => Some(CsumType::Xxhash64),
            2 => Some(CsumType::Sha256),
            3 => Some(CsumType::Blake2b),
            _ => None,
        }
    }

    /// Bytes of the checksum (the rest of the 32-byte field is zero).
    pub fn size(self) -> usize {
        match self {
            CsumType::Crc32c => 4,
            CsumType::Xxhash64 => 8,
            CsumType::Sha256 | CsumType::Blake2b => 32,
        }
    }

    /// The name `btrfs inspect-internal dump-super` and `mkfs.btrfs --csum` use.
    pub fn name(self) -> &'static str {
        match self {
            CsumType::Crc32c => "crc32c",
            CsumType::Xxhash64 => "xxhash64",
            CsumType::Sha256 => "sha256",
            CsumType::Blake2b => "blake2b",
        }
    }
}

/// The checksum of `data` as btrfs stores it (first `size()` bytes of the 32-byte csum field).
pub fn checksum(kind: CsumType, data: &[u8]) -> Vec<u8> {
    match kind {
        CsumType::Crc32c => crc32c::crc32c(data).to_le_bytes().to_vec(),
        CsumType::Xxhash64 => xxhash_rust::xxh64::xxh64(data, 0).to_le_bytes().to_vec(),
        CsumType::Sha256 => {
            use sha2::Digest as _;
            sha2::Sha256::digest(data).to_vec()
        }
        CsumType::Blake2b => blake2::Blake2b256::digest(data).to_vec(),
    }
}

/// Whether the checksum of `data` is `want` (as [`checksum`] gives it);
/// CRC-32C and XXH64 are compared without allocating.
pub fn matches(kind: CsumType, data: &[u8], want: &[u8]) -> bool {
    match kind {
        CsumType::Crc32c => crc32c::crc32c(data).to_le_bytes() == want,
        CsumType::Xxhash64 => xxhash_rust::xxh64::xxh64(data, 0).to_le_bytes() == want,
        CsumType::Sha256 | CsumType::Blake2b => checksum(kind, data) == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_vectors() {
        // CRC-32C check value of "123456789" is 0xE3069283, stored little-endian.
        assert_eq!(
            checksum(CsumType::Crc32c, b"123456789"),
            vec![0x83, 0x92, 0x06, 0xe3]
        );
        // XXH64 of the empty input with seed 0 is 0xEF46DB3751D8E999.
        assert_eq!(
            checksum(CsumType::Xxhash64, b""),
            0xEF46_DB37_51D8_E999u64.to_le_bytes().to_vec()
        );
        assert_eq!(
            hex(&checksum(CsumType::Sha256, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&checksum(CsumType::Blake2b, b"abc")),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
    }

    #[test]
    fn kinds_and_sizes() {
        for (v, kind, size) in [
            (0, CsumType::Crc32c, 4),
            (1, CsumType::Xxhash64, 8),
            (2, CsumType::Sha256, 32),
            (3, CsumType::Blake2b, 32),
        ] {
            assert_eq!(CsumType::from_disk(v), Some(kind));
            assert_eq!(kind.size(), size);
            assert_eq!(checksum(kind, b"x").len(), size);
        }
        for kind in [
            CsumType::Crc32c,
            CsumType::Xxhash64,
            CsumType::Sha256,
            CsumType::Blake2b,
        ] {
            let c = checksum(kind, b"data");
            assert!(matches(kind, b"data", &c));
            assert!(!matches(kind, b"date", &c));
            assert!(!matches(kind, b"data", c.get(1..).unwrap_or_default()));
        }
        assert_eq!(CsumType::from_disk(4), None);
        assert_eq!(CsumType::from_disk(u16::MAX), None);
    }
}
