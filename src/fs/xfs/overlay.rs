//! The bytes of a volume with some 512-byte sectors replaced in memory (the
//! result of a log replay): reads come from the source, then the replaced
//! sectors are laid over them. Nothing is ever written to the source.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::io::{HostExtent, ReadAt};

/// Sector size of the overlay.
const SECTOR: u64 = 512;

/// A [`ReadAt`] over `inner` with replaced sectors.
pub struct Overlay {
    inner: Arc<dyn ReadAt>,
    sectors: BTreeMap<u64, Box<[u8]>>,
}

impl Overlay {
    /// `inner` with the 512-byte `sectors` (by sector number) replaced.
    pub fn new(inner: Arc<dyn ReadAt>, sectors: BTreeMap<u64, Box<[u8]>>) -> Overlay {
        Overlay { inner, sectors }
    }

    /// How many sectors are replaced.
    pub fn len(&self) -> usize {
        self.sectors.len()
    }

    /// Whether nothing is replaced.
    pub fn is_empty(&self) -> bool {
        self.sectors.is_empty()
    }

    fn touched(&self, offset: u64, len: u64) -> bool {
        let first = offset / SECTOR;
        let end = offset.saturating_add(len).div_ceil(SECTOR);
        self.sectors.range(first..end).next().is_some()
    }
}

impl ReadAt for Overlay {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact_at(offset, buf)?;
        let len = buf.len() as u64;
        let first = offset / SECTOR;
        let end = offset.saturating_add(len).div_ceil(SECTOR);
        for (s, data) in self.sectors.range(first..end) {
            let s_start = s.saturating_mul(SECTOR);
            // The overlap of the sector with [offset, offset + len).
            let from = s_start.max(offset);
            let to = s_start
                .saturating_add(SECTOR)
                .min(offset.saturating_add(len));
            if from >= to {
                continue;
            }
            let (Ok(d0), Ok(d1), Ok(s0)) = (
                usize::try_from(from.saturating_sub(offset)),
                usize::try_from(to.saturating_sub(offset)),
                usize::try_from(from.saturating_sub(s_start)),
            ) else {
                continue;
            };
            let n = d1.saturating_sub(d0);
            if let (Some(dst), Some(src)) =
                (buf.get_mut(d0..d1), data.get(s0..s0.saturating_add(n)))
            {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn logical_sector_size(&self) -> Option<u64> {
        self.inner.logical_sector_size()
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        if self.touched(offset, len) {
            return None;
        }
        self.inner.host_extent(offset, len)
    }

    fn refresh(&self) -> std::io::Result<()> {
        self.inner.refresh()
    }
}
