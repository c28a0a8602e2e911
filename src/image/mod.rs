//! Container formats: what turns a file on the host into the bytes of a virtual disk.
//!
//! Raw images and block devices are read as they are; qcow2 images through
//! our own reader ([`qcow2`]), backing chains and internal snapshots included.
//! Formats vmrescue recognises but cannot read yet (VMDK, VHD, VHDX, VDI, QED)
//! are named clearly instead of being misread as raw disks.
//!
//! To tell whether an image is qcow2 (the kernel engine cannot loop-mount
//! it and needs `qemu-nbd`), check [`Image::format`] against
//! [`ImageFormat::Qcow2`]; [`Image::path`] is the file and [`Image::snapshot`]
//! the snapshot shown.

pub mod info;
pub mod inner;
pub mod nbd;
pub mod qcow2;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::error::{Error, IoContext, Result};
use crate::io::{FileSource, ReadAt};

/// A disk image opened for reading: the virtual disk's bytes and what they came from.
#[derive(Clone)]
pub struct Image {
    /// The path given by the operator.
    pub path: PathBuf,
    /// The virtual disk, byte for byte.
    pub source: Arc<dyn ReadAt>,
    /// What kind of container it is, for display.
    pub format: ImageFormat,
    /// Facts about the container (backing chain, snapshots...), for display.
    pub details: Vec<String>,
    /// For qcow2: the ID of the internal snapshot shown (`None`: the current
    /// state). Engines that hand the image to QEMU tools pass it on
    /// (`qemu-nbd --read-only -l snapshot.id=ID`).
    pub snapshot: Option<String>,
    /// Damage to the container (a qcow2 file cut short), for the problems list.
    pub problems: Vec<String>,
}

impl Image {
    /// An image of bytes that are already there (a test buffer, a damaged
    /// copy, a view): no container details, no snapshot.
    pub fn from_source(
        path: impl Into<PathBuf>,
        source: Arc<dyn ReadAt>,
        format: ImageFormat,
    ) -> Image {
        Image {
            path: path.into(),
            source,
            format,
            details: Vec::new(),
            snapshot: None,
            problems: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.path)
            .field("size", &self.source.size())
            .field("format", &self.format)
            .field("details", &self.details)
            .field("snapshot", &self.snapshot)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

/// The container format of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageFormat {
    /// A raw image file.
    Raw,
    /// A block device (an LVM volume or zvol on the host, a disk).
    BlockDevice,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// An export of an NBD server (`nbd://`, `nbd+unix://`), raw bytes.
    Nbd,
}

impl ImageFormat {
    /// The name shown to the operator.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::BlockDevice => "block device",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Nbd => "nbd",
        }
    }
}

/// A qcow2 image file as [`open_with`] gives it: its reader, replaced by
/// a new one (header, L1 table, L2 and cluster caches, backing chain read
/// again) on [`ReadAt::refresh`].
struct Qcow2File {
    files: Arc<dyn qcow2::BackingFiles>,
    path: PathBuf,
    snapshot: Option<String>,
    current: RwLock<Arc<qcow2::Qcow2>>,
}

impl Qcow2File {
    fn reader(&self) -> std::sync::RwLockReadGuard<'_, Arc<qcow2::Qcow2>> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl ReadAt for Qcow2File {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.reader().read_exact_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.reader().size()
    }
    fn host_extent(&self, offset: u64, len: u64) -> Option<crate::io::HostExtent> {
        self.reader().host_extent(offset, len)
    }
    fn refresh(&self) -> std::io::Result<()> {
        let opts = qcow2::OpenOptions {
            snapshot: self.snapshot.clone(),
        };
        let fresh = qcow2::Qcow2::open_in(&*self.files, &self.path, &opts)
            .map_err(std::io::Error::other)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }
}

/// Formats recognised by their magic but not readable (yet): their name and what makes them.
pub(crate) fn unsupported_format(head: &[u8], tail: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"KDMV") || head.starts_with(b"# Disk DescriptorFile") {
        return Some("VMDK (VMware)");
    }
    if head.starts_with(b"vhdxfile") {
        return Some("VHDX (Hyper-V)");
    }
    if head.starts_with(b"conectix") || tail.starts_with(b"conectix") {
        return Some("VHD (Virtual PC / Hyper-V)");
    }
    if head.len() >= 0x44 && head[0x40..0x44] == [0x7f, 0x10, 0xda, 0xbe] {
        return Some("VDI (VirtualBox)");
    }
    if head.starts_with(b"QED\0") {
        return Some("QED (QEMU enhanced disk)");
    }
    None
}

/// How to open an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// For qcow2 images: show the image as of this internal snapshot (ID or name).
    pub snapshot: Option<String>,
}

/// Open `path` read-only and recognise its container format.
pub fn open(path: &Path) -> Result<Image> {
    open_with(path, &OpenOptions::default())
}

/// Open `path` read-only with options (a qcow2 snapshot to show).
pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Image> {
    if let Some(uri) = path.to_str().filter(|s| nbd::is_uri(s)) {
        return open_nbd(uri, opts);
    }
    let file = FileSource::open(path)?;
    let size = file.size();
    let mut head = vec![0u8; size.min(512) as usize];
    file.read_exact_at(0, &mut head).with_path(path)?;
    // A VHD footer sits in the last 512 bytes.
    let mut tail = vec![0u8; size.min(512) as usize];
    file.read_exact_at(size - tail.len() as u64, &mut tail)
        .with_path(path)?;
    if let Some(name) = unsupported_format(&head, &tail) {
        return Err(Error::Unsupported(format!(
            "{}: {name} images are not supported yet; convert a copy to raw with \
             `qemu-img convert -O raw {} COPY.raw` and open that",
            path.display(),
            path.display()
        )));
    }
    if qcow2::has_magic(&head) {
        return open_qcow2_in(Arc::new(qcow2::HostFiles), path, opts);
    }
    if let Some(s) = &opts.snapshot {
        return Err(Error::Invalid(format!(
            "{}: --snapshot {} needs a qcow2 image; this is a {} {}",
            path.display(),
            crate::text::escape_str(s),
            if file.is_block_device() {
                "block device"
            } else {
                "raw file"
            },
            "(it has no internal snapshots)"
        )));
    }
    let format = if file.is_block_device() {
        ImageFormat::BlockDevice
    } else {
        ImageFormat::Raw
    };
    Ok(Image {
        path: path.to_path_buf(),
        source: Arc::new(file),
        format,
        details: Vec::new(),
        snapshot: None,
        problems: Vec::new(),
    })
}

/// Open the qcow2 image at `path` in `files` (host directories, or a
/// filesystem read by vmrescue), its backing chain resolved there too.
fn open_qcow2_in(
    files: Arc<dyn qcow2::BackingFiles>,
    path: &Path,
    opts: &OpenOptions,
) -> Result<Image> {
    let q = qcow2::Qcow2::open_in(
        &*files,
        path,
        &qcow2::OpenOptions {
            snapshot: opts.snapshot.clone(),
        },
    )?;
    let details = q.details();
    let snapshot = q.shown_snapshot().map(|s| s.id.clone());
    let problems = q.problems();
    Ok(Image {
        path: path.to_path_buf(),
        source: Arc::new(Qcow2File {
            files,
            path: path.to_path_buf(),
            snapshot: opts.snapshot.clone(),
            current: RwLock::new(Arc::new(q)),
        }),
        format: ImageFormat::Qcow2,
        details,
        snapshot,
        problems,
    })
}

/// Open the export an NBD URI names. Its bytes are the disk, unless they
/// start with qcow2's magic (a qcow2 file served as it is, `qemu-nbd -f
/// raw`): then they are read as qcow2, without a backing chain (backing
/// files are host paths on the server's side).
fn open_nbd(uri: &str, opts: &OpenOptions) -> Result<Image> {
    let parsed = nbd::parse_uri(uri)?;
    let client = nbd::Nbd::open(&parsed)?;
    let mut details = nbd::details(&client);
    let source: Arc<dyn ReadAt> = Arc::new(client);
    let mut head = vec![0u8; source.size().min(512) as usize];
    source
        .read_exact_at(0, &mut head)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    if qcow2::has_magic(&head) {
        let q = qcow2::Qcow2::from_source(Arc::clone(&source), uri, opts.snapshot.as_deref())?;
        details.extend(q.details());
        let mut problems = q.problems();
        if let Some(b) = q.backing_file() {
            problems.push(format!(
                "{uri}: the qcow2 image names the backing file {}, which is not opened (it is a \
                 path on the NBD server's side): clusters it holds read as zeros; serve the \
                 image through qemu-nbd with its format (`-f qcow2`) instead",
                crate::text::escape_str(b)
            ));
        }
        return Ok(Image {
            path: PathBuf::from(uri),
            snapshot: q.shown_snapshot().map(|s| s.id.clone()),
            problems,
            source: Arc::new(q),
            format: ImageFormat::Qcow2,
            details,
        });
    }
    if let Some(s) = &opts.snapshot {
        return Err(Error::Invalid(format!(
            "{uri}: --snapshot {} needs a qcow2 image; this NBD export is raw bytes",
            crate::text::escape_str(s)
        )));
    }
    Ok(Image {
        path: PathBuf::from(uri),
        source,
        format: ImageFormat::Nbd,
        details,
        snapshot: None,
        problems: Vec::new(),
    })
}
