//! The writer seam of a repair: a disk opened for writing by offset.
//!
//! The in-place applier and `vmrescue undo` write a disk's runs through a
//! [`WriteAt`]: a host file or block device ([`HostWriter`], opened
//! `O_RDWR`, synced with `fsync`), an NBD export (`image::nbd::NbdWriter`,
//! on the reader's connection) or a Ceph RBD image (`image::rbd::RbdWriter`,
//! an image handle opened read-write). Each reads back through the same
//! handle it wrote with. A disk read over the network says how a repair
//! reaches it with [`NetworkDisk`] ([`super::ReadAt::network`]).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// A disk opened for a repair: read, write and sync by offset. Errors name
/// the disk and the byte range.
pub trait WriteAt: Send + Sync {
    /// What undo records and messages name it by: the host path, the NBD
    /// URI, `rbd:POOL/IMAGE` (with the options that reach the cluster).
    fn key(&self) -> PathBuf;

    /// Its size in bytes, as undo records keep it (a host file's length;
    /// 0 for a block device, as `fstat` says).
    fn size(&self) -> u64;

    /// Fill `buf` with the bytes at `offset`, read through this handle.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;

    /// Write all of `data` at `offset`.
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()>;

    /// Make what was written durable (fsync, NBD_CMD_FLUSH, `rbd_flush`).
    fn sync(&self) -> std::io::Result<()>;
}

/// A host image file or block device opened read-write.
#[derive(Debug)]
pub struct HostWriter {
    file: File,
    path: PathBuf,
    size: u64,
}

impl HostWriter {
    /// Open `path` read-write (`O_RDWR`, no create).
    pub fn open(path: &Path) -> Result<HostWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_path(path)?;
        let size = file.metadata().with_path(path)?.len();
        Ok(HostWriter {
            file,
            path: path.to_path_buf(),
            size,
        })
    }
}

impl WriteAt for HostWriter {
    fn key(&self) -> PathBuf {
        std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(data, offset)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

/// How a repair reaches a disk read over the network (NBD, RBD).
pub trait NetworkDisk: Send + Sync {
    /// The key its undo records carry ([`WriteAt::key`] of its writer).
    fn key(&self) -> PathBuf;

    /// Why it cannot be written at all (a read-only export, a snapshot),
    /// or `None`.
    fn read_only(&self) -> Option<String>;

    /// Who else has it open (`Ok`, empty when nobody), or why that cannot
    /// be known (`Err`: the NBD protocol has no list of clients).
    fn holders(&self) -> std::result::Result<Vec<String>, String>;

    /// A handle opened for writing, for one repair (NBD: on the reader's
    /// connection; RBD: an image handle of its own); refused (nothing
    /// written) when the disk is read-only or another client holds it.
    fn open_writer(&self) -> Result<Box<dyn WriteAt>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_writer_writes_syncs_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::write(&img, vec![5u8; 4096]).unwrap();
        let w = HostWriter::open(&img).unwrap();
        assert_eq!(w.size(), 4096);
        assert_eq!(w.key(), std::fs::canonicalize(&img).unwrap());
        w.write_all_at(b"xyz", 100).unwrap();
        w.sync().unwrap();
        let mut back = [0u8; 5];
        w.read_exact_at(99, &mut back).unwrap();
        assert_eq!(&back, b"\x05xyz\x05");
        assert!(w.read_exact_at(4095, &mut back).is_err());
        let on_disk = std::fs::read(&img).unwrap();
        assert_eq!(&on_disk[100..103], b"xyz");
        assert_eq!(on_disk.len(), 4096);
    }

    #[test]
    fn host_writer_refuses_a_missing_file_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.img");
        let e = HostWriter::open(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.img"), "{e}");
        assert!(!missing.exists(), "opening must not create the file");
    }
}
