//! btrfs checksums. Minimal stand-in: CRC32C and SHA-256 only; the other
//! kinds give an empty checksum (not verified).

/// The checksum algorithms btrfs knows (`csum_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumType {
    /// CRC-32C (the default).
    Crc32c,
    /// xxHash64.
    Xxhash64,
    /// SHA-256.
    Sha256,
    /// BLAKE2b-256.
    Blake2b,
}

impl CsumType {
    /// From the superblock's `csum_type`.
    pub fn from_disk(v: u16) -> Option<CsumType> {
        match v {
            0 => Some(CsumType::Crc32c),
            1 => Some(CsumType::Xxhash64),
            2 => Some(CsumType::Sha256),
            3 => Some(CsumType::Blake2b),
            _ => None,
        }
    }

    /// Bytes of one checksum.
    pub fn size(self) -> usize {
        match self {
            CsumType::Crc32c => 4,
            CsumType::Xxhash64 => 8,
            CsumType::Sha256 | CsumType::Blake2b => 32,
        }
    }

    /// The name `btrfs inspect-internal dump-super` gives it.
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
        CsumType::Sha256 => {
            use sha2::Digest;
            sha2::Sha256::digest(data).to_vec()
        }
        CsumType::Xxhash64 | CsumType::Blake2b => Vec::new(),
    }
}
