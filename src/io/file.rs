//! Image files and block devices, opened read-only and read with pread.

use std::fs::File;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{HostExtent, ReadAt, past_end};
use crate::error::{Error, IoContext, Result};

/// A host file or block device, read by offset.
#[derive(Debug, Clone)]
pub struct FileSource {
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    block_device: bool,
    logical_sector_size: Option<u64>,
}

impl FileSource {
    /// Open `path` read-only. Directories and other non-files are refused.
    pub fn open(path: &Path) -> Result<FileSource> {
        let meta = std::fs::metadata(path).with_path(path)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: is a directory, not a disk image",
                path.display()
            )));
        }
        if !(ft.is_file() || ft.is_block_device()) {
            return Err(Error::Invalid(format!(
                "{}: not a regular file or block device",
                path.display()
            )));
        }
        let file = File::open(path).with_path(path)?;
        let size = if ft.is_block_device() {
            blkdev::size(&file).with_path(path)?
        } else {
            meta.len()
        };
        // Only a hint (for partition tables that do not record it): a
        // device that does not answer is read as if it did not say.
        let logical_sector_size = if ft.is_block_device() {
            blkdev::logical_sector_size(&file).ok()
        } else {
            None
        };
        Ok(FileSource {
            file: Arc::new(file),
            path: path.to_path_buf(),
            size,
            block_device: ft.is_block_device(),
            logical_sector_size,
        })
    }

    /// The path this source was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a block device (rather than a regular file).
    pub fn is_block_device(&self) -> bool {
        self.block_device
    }

    /// The open file.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
}

impl ReadAt for FileSource {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        if end > self.size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: read of {} bytes at byte {offset} goes past the end of the file ({} bytes): the image is truncated, or what points there is wrong",
                    self.path.display(),
                    buf.len(),
                    self.size
                ),
            ));
        }
        self.file.read_exact_at(buf, offset)
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn logical_sector_size(&self) -> Option<u64> {
        self.logical_sector_size
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        if offset >= self.size || len == 0 {
            return None;
        }
        Some(HostExtent {
            file: Arc::clone(&self.file),
            offset,
            len: len.min(self.size - offset),
        })
    }
}

#[allow(unsafe_code)]
mod blkdev {
    //! The ioctls we need on block devices.
    use std::ffi::c_int;
    use std::fs::File;
    use std::os::fd::AsRawFd;

    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), c_int);

    /// Size in bytes of the block device open as `file` (BLKGETSIZE64).
    pub(super) fn size(file: &File) -> std::io::Result<u64> {
        let mut size: u64 = 0;
        // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points
        // at a live, properly aligned u64; the fd is open for the call's duration.
        unsafe { blkgetsize64(file.as_raw_fd(), &mut size) }.map_err(std::io::Error::from)?;
        Ok(size)
    }

    /// Logical sector size in bytes of the block device open as `file` (BLKSSZGET).
    pub(super) fn logical_sector_size(file: &File) -> std::io::Result<u64> {
        let mut size: c_int = 0;
        // SAFETY: BLKSSZGET writes one int through the pointer, which points
        // at a live, properly aligned c_int; the fd is open for the call's duration.
        unsafe { blksszget(file.as_raw_fd(), &mut size) }.map_err(std::io::Error::from)?;
        u64::try_from(size).map_err(|_| std::io::Error::other("negative sector size"))
    }
}
