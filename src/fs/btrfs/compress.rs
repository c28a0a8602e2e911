//! btrfs extent compression. Stand-in: no decompressor yet.

use crate::error::{Error, Result};

/// How an extent is compressed (`compression` of a file extent item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored plainly.
    None,
    /// zlib.
    Zlib,
    /// LZO, in per-sector segments.
    Lzo,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// From the file extent item's byte.
    pub fn from_disk(v: u8) -> Option<Compression> {
        match v {
            0 => Some(Compression::None),
            1 => Some(Compression::Zlib),
            2 => Some(Compression::Lzo),
            3 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Decompress one extent's on-disk bytes into exactly `out_len` bytes.
pub fn decompress(
    kind: Compression,
    input: &[u8],
    out_len: usize,
    _sector_size: u32,
) -> Result<Vec<u8>> {
    match kind {
        Compression::None => {
            let mut v = input
                .get(..out_len.min(input.len()))
                .unwrap_or(&[])
                .to_vec();
            v.resize(out_len, 0);
            Ok(v)
        }
        _ => Err(Error::Unsupported(format!(
            "btrfs {kind:?} compression not supported yet"
        ))),
    }
}
