//! Disk images stored as files inside a filesystem vmrescue reads itself
//! (a Proxmox host's `/var/lib/vz/images/100/vm-100-disk-0.qcow2` on the
//! host disk being rescued): opened without copying them out.
//!
//! The file is read through [`FileReader`]; a qcow2's backing files are
//! resolved inside the same filesystem ([`FsFiles`]): a relative name from
//! the image's own directory, an absolute one from that filesystem's root,
//! with the usual depth bound and loop check.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::qcow2::BackingFiles;
use crate::error::{Error, Result};
use crate::fs::{FileReader, FileType, FsView, path};
use crate::io::ReadAt;
use crate::text::escape;

/// The files of a filesystem as a qcow2's backing files: paths are the
/// filesystem's own (symlinks followed inside it, `..` stopping at its root).
pub struct FsFiles {
    fs: Arc<dyn FsView>,
}

impl FsFiles {
    /// Backing files looked up in `fs`.
    pub fn new(fs: Arc<dyn FsView>) -> FsFiles {
        FsFiles { fs }
    }

    fn resolve(&self, p: &Path) -> Result<path::Resolved> {
        path::resolve(&*self.fs, p.as_os_str().as_bytes(), true)
    }
}

/// A filesystem path (bytes) as a `Path`, for the chain's records.
fn as_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

impl BackingFiles for FsFiles {
    fn locate(&self, image: &Path, name: &str) -> std::result::Result<PathBuf, String> {
        let p = Path::new(name);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            image.parent().unwrap_or(Path::new("/")).join(p)
        };
        let shown = escape(joined.as_os_str().as_bytes());
        match self.resolve(&joined) {
            Ok(r) => match self.fs.metadata(r.node) {
                Ok(m) if m.file_type == FileType::Regular => Ok(as_path(&r.path)),
                Ok(_) => Err(format!("{shown}, which is not a regular file")),
                Err(e) => Err(format!("{shown}: {e}")),
            },
            Err(Error::NotFound(_)) => Err(format!("looked for at {shown} in the same filesystem")),
            Err(e) => Err(format!("{shown}: {e}")),
        }
    }

    fn identity(&self, p: &Path) -> Result<(u64, u64)> {
        let r = self.resolve(p)?;
        let m = self.fs.metadata(r.node)?;
        Ok((self.fs.dev(r.node), m.ino))
    }

    fn open(&self, p: &Path) -> Result<Arc<dyn ReadAt>> {
        let r = self.resolve(p)?;
        Ok(Arc::new(FileReader::new(
            Arc::clone(&self.fs),
            r.node,
            &r.path,
        )?))
    }
}

/// Open the disk image stored at `file` in `fs` (symlinks followed inside
/// it): a qcow2 with its backing chain resolved in the same filesystem,
/// else the file's bytes as a raw disk. [`super::Image::path`] is the
/// file's canonical path in `fs`. Whether a raw file holds a disk at all is
/// for the caller to judge (a text file opens as "raw" here).
pub fn open_in_fs(
    fs: Arc<dyn FsView>,
    file: &[u8],
    opts: &super::OpenOptions,
) -> Result<super::Image> {
    let r = path::resolve(&*fs, file, true)?;
    let shown = escape(&r.path);
    let reader = FileReader::new(Arc::clone(&fs), r.node, &r.path)?;
    let size = reader.size();
    let mut head = vec![0u8; size.min(512) as usize];
    reader
        .read_exact_at(0, &mut head)
        .map_err(|e| Error::io(shown.clone(), e))?;
    let mut tail = vec![0u8; size.min(512) as usize];
    reader
        .read_exact_at(size - tail.len() as u64, &mut tail)
        .map_err(|e| Error::io(shown.clone(), e))?;
    if let Some(name) = super::unsupported_format(&head) {
        return Err(Error::Unsupported(format!(
            "{shown}: {name} images are not supported yet; copy it out (`vmrescue cp`), \
             convert the copy to raw with `qemu-img convert -O raw` and open that"
        )));
    }
    let canonical = as_path(&r.path);
    if super::qcow2::has_magic(&head) {
        let files: Arc<dyn BackingFiles> = Arc::new(FsFiles::new(fs));
        return super::open_qcow2_in(files, &canonical, opts);
    }
    if super::family::detect(&head, &tail).is_some() {
        return super::open_family_in(Arc::new(FsFiles::new(fs)), &canonical, opts);
    }
    if let Some(s) = &opts.snapshot {
        return Err(Error::Invalid(format!(
            "{shown}: --snapshot {} needs a qcow2 image; this is a raw file (it has no internal snapshots)",
            crate::text::escape_str(s)
        )));
    }
    Ok(super::Image::from_source(
        canonical,
        Arc::new(reader),
        super::ImageFormat::Raw,
    ))
}
