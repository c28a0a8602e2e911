//! Byte sources read by offset.
//!
//! Everything vmrescue reads goes through [`ReadAt`]: a source that fills a
//! buffer from an absolute offset with `&self` (pread), so a copy thread and
//! the UI can share one source without locking. Sources compose: a
//! [`Window`] is a byte range of a parent, a [`MappedView`] follows a
//! [`Mapping`] (linear and striped segments over the disks), exactly the
//! mapping the kernel engine turns into device-mapper tables.

mod cache;
mod file;
mod mapped;
pub mod raid;
mod window;
pub mod write;

use std::fs::File;
use std::sync::Arc;

pub use cache::CachedSource;
pub use file::FileSource;
pub use mapped::{Area, DiskId, Located, MappedView, Mapping, Segment, Target, Unmapped};
pub use raid::{Leg, ParityLayout, Raid, RaidLevel};
pub use window::Window;
pub use write::{HostWriter, NetworkDisk, WriteAt};

/// Where a byte range of a source is stored, uncompressed and contiguous, in a host file.
///
/// Lets a copy move bytes with `copy_file_range` without passing them through user space.
#[derive(Debug, Clone)]
pub struct HostExtent {
    /// The host file holding the bytes.
    pub file: Arc<File>,
    /// Offset of the first byte in `file`.
    pub offset: u64,
    /// How many of the requested bytes are contiguous from there (at least 1).
    pub len: u64,
}

/// A byte source read by absolute offset.
pub trait ReadAt: Send + Sync {
    /// Fill all of `buf` with the bytes at `offset`.
    ///
    /// Reading past [`ReadAt::size`] fails with [`std::io::ErrorKind::UnexpectedEof`].
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;

    /// The source's size in bytes.
    fn size(&self) -> u64;

    /// The logical sector size of the device underneath, when it says
    /// (block devices); image files and composed views do not know it.
    fn logical_sector_size(&self) -> Option<u64> {
        None
    }

    /// Where the bytes at `offset` live in a host file, if they are stored there plainly.
    fn host_extent(&self, _offset: u64, _len: u64) -> Option<HostExtent> {
        None
    }

    /// Read the container's tables again from the file, dropping every
    /// table and cluster kept from before (the file was written since it was
    /// opened: a qcow2's L1/L2 tables may map other clusters now). Sources
    /// that keep nothing of the kind do nothing. On error the source reads
    /// as before.
    fn refresh(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// Say that the bytes at `offset..offset + len` will be read soon:
    /// a network source requests them now, in parallel with other
    /// prefetched ranges, so that the reads that follow find them. Local
    /// sources ignore it.
    fn prefetch(&self, _offset: u64, _len: u64) {}

    /// For a disk read over the network (an NBD export, an RBD image): how
    /// a repair reaches it ([`NetworkDisk`]). `None` for host files and
    /// for anything composed over a source.
    fn network(&self) -> Option<&dyn NetworkDisk> {
        None
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn logical_sector_size(&self) -> Option<u64> {
        (**self).logical_sector_size()
    }
    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        (**self).host_extent(offset, len)
    }
    fn refresh(&self) -> std::io::Result<()> {
        (**self).refresh()
    }
    fn prefetch(&self, offset: u64, len: u64) {
        (**self).prefetch(offset, len)
    }
    fn network(&self) -> Option<&dyn NetworkDisk> {
        (**self).network()
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start =
            usize::try_from(offset).map_err(|_| past_end(offset, buf.len(), self.len() as u64))?;
        let end = start
            .checked_add(buf.len())
            .filter(|&e| e <= self.len())
            .ok_or_else(|| past_end(offset, buf.len(), self.len() as u64))?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

thread_local! {
    static NO_FAN_OUT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Mark this thread as one of several that already share a job's reads (a
/// copy job's reader threads): reads made on it do not spread their own work
/// (decompression) over more threads ([`parallelism`] is 1 here).
pub fn no_fan_out_on_this_thread() {
    NO_FAN_OUT.with(|c| c.set(true));
}

/// How many threads one large read may spread its work over: the CPUs (at
/// most 16), or 1 on a thread marked by [`no_fan_out_on_this_thread`].
pub fn parallelism() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if NO_FAN_OUT.with(std::cell::Cell::get) {
        return 1;
    }
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(16)))
}

/// The error for a read that would go past the end of a source.
pub fn past_end(offset: u64, len: usize, size: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("read of {len} bytes at offset {offset} goes past the end ({size} bytes)"),
    )
}

/// Read `len` bytes at `offset` into a new buffer, refusing lengths above `cap`.
///
/// Parsers use this for sizes that come from the image, so a hostile size
/// cannot make vmrescue allocate without bound.
pub fn read_vec(src: &dyn ReadAt, offset: u64, len: u64, cap: u64) -> std::io::Result<Vec<u8>> {
    if len > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("refusing to read {len} bytes at offset {offset} (limit {cap})"),
        ));
    }
    let end = offset
        .checked_add(len)
        .ok_or_else(|| past_end(offset, len as usize, src.size()))?;
    if end > src.size() {
        return Err(past_end(offset, len as usize, src.size()));
    }
    let mut buf = vec![0u8; len as usize];
    src.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

/// Little-endian field readers over a byte slice; `None` when out of range.
pub mod le {
    /// `u16` at `off`.
    pub fn u16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            b.get(off..off.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    /// `u32` at `off`.
    pub fn u32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            b.get(off..off.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    /// `u64` at `off`.
    pub fn u64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            b.get(off..off.checked_add(8)?)?.try_into().ok()?,
        ))
    }
}

/// Big-endian field readers over a byte slice; `None` when out of range.
pub mod be {
    /// `u16` at `off`.
    pub fn u16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_be_bytes(
            b.get(off..off.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    /// `u32` at `off`.
    pub fn u32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_be_bytes(
            b.get(off..off.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    /// `u64` at `off`.
    pub fn u64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_be_bytes(
            b.get(off..off.checked_add(8)?)?.try_into().ok()?,
        ))
    }
}
