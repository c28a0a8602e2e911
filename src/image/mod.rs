//! Container formats: what turns a file on the host into the bytes of a virtual disk.
//!
//! Raw images and block devices are read as they are; qcow2 images through
//! our own reader ([`qcow2`]), backing chains and internal snapshots included;
//! VMDK disks through [`vmdk`] (descriptors, sparse and stream-optimized
//! extents, snapshot chains); VHD, VHDX and VDI images through [`vhd`],
//! [`vhdx`] and [`vdi`], with the parents of differencing disks ([`family`]).
//! Formats vmrescue recognises but cannot read yet (QED)
//! are named clearly instead of being misread as raw disks.
//!
//! To tell whether an image is qcow2 (the kernel engine cannot loop-mount
//! it and needs `qemu-nbd`), check [`Image::format`] against
//! [`ImageFormat::Qcow2`]; [`Image::path`] is the file and [`Image::snapshot`]
//! the snapshot shown.

pub mod extents;
pub mod family;
pub mod info;
pub mod inner;
pub mod nbd;
pub mod ova;
pub(crate) mod parallel;
pub mod qcow2;
pub mod rbd;
mod reopen;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

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
    /// VMware virtual disk (descriptor, sparse, stream-optimized).
    Vmdk,
    /// Virtual PC / Hyper-V VHD (fixed, dynamic, differencing).
    Vhd,
    /// Hyper-V VHDX.
    Vhdx,
    /// VirtualBox VDI.
    Vdi,
    /// A Ceph RBD image (`rbd:POOL/IMAGE`), read through librbd.
    Rbd,
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
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Vhdx => "vhdx",
            ImageFormat::Vdi => "vdi",
            ImageFormat::Rbd => "rbd",
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

/// A backing or parent chain for details: `NAME (FORMAT, SIZE) → …`,
/// nearest first.
pub(crate) fn chain_text<'a>(links: impl Iterator<Item = (&'a str, &'a str, u64)>) -> String {
    links
        .map(|(name, format, size)| {
            format!(
                "{} ({format}, {})",
                crate::text::escape_str(name),
                humansize::format_size(size, humansize::BINARY)
            )
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The layer tree's line listing an image's snapshots (qcow2, RBD):
/// `2 snapshots: A; B`.
pub(crate) fn snapshots_detail(list: &[String]) -> String {
    format!(
        "{} snapshot{}: {}",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        list.join("; ")
    )
}

/// Formats recognised by their magic but not readable (yet): their name and what makes them.
pub(crate) fn unsupported_format(head: &[u8]) -> Option<&'static str> {
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
    /// For `rbd:` images: the Ceph configuration, client and keyring.
    pub ceph: rbd::CephOptions,
}

/// Open `path` read-only and recognise its container format.
pub fn open(path: &Path) -> Result<Image> {
    open_with(path, &OpenOptions::default())
}

/// An NBD URI or an `rbd:` name opened, or `None` for a host path.
fn open_network(path: &Path, opts: &OpenOptions) -> Result<Option<Image>> {
    if rbd::is_rbd(path) {
        return rbd::open(path, opts).map(Some);
    }
    if let Some(uri) = path.to_str().filter(|s| nbd::is_uri(s)) {
        return open_nbd(uri, opts).map(Some);
    }
    Ok(None)
}

/// The disk an undo record names by `key` opened for writing: an NBD
/// URI (one connection, for the reads and the writes; refused when the
/// export is read-only), an
/// `rbd:` name (refused while another client holds the image), else a host
/// file or device (`O_RDWR`).
pub fn open_writer(key: &Path) -> Result<Box<dyn crate::io::WriteAt>> {
    if rbd::is_rbd(key) {
        return rbd::open_writer(key);
    }
    if let Some(uri) = key.to_str().filter(|s| nbd::is_uri(s)) {
        let parsed = nbd::parse_uri(uri)?;
        return Ok(Box::new(nbd::NbdWriter::open(&parsed)?));
    }
    Ok(Box::new(crate::io::HostWriter::open(key)?))
}

/// A host file opened, with its first bytes (up to 512).
fn open_head(path: &Path) -> Result<(FileSource, Vec<u8>)> {
    let file = FileSource::open(path)?;
    let mut head = vec![0u8; file.size().min(512) as usize];
    file.read_exact_at(0, &mut head).with_path(path)?;
    Ok((file, head))
}

/// Open `path` read-only: the disks it holds, usually one; an OVA archive
/// gives each disk its OVF names, in the OVF's order.
pub fn open_all(path: &Path, opts: &OpenOptions) -> Result<Vec<Image>> {
    if let Some(image) = open_network(path, opts)? {
        return Ok(vec![image]);
    }
    let (file, head) = open_head(path)?;
    if ova::has_magic(&head) {
        return ova_images(path, Arc::new(file));
    }
    Ok(vec![open_file(path, file, &head, opts)?])
}

/// The disks of the OVA archive `file` (opened from `path`).
fn ova_images(path: &Path, file: Arc<FileSource>) -> Result<Vec<Image>> {
    let name = path.display().to_string();
    let mut out = Vec::new();
    for disk in ova::disks(file, &name)? {
        let shown = ova::disk_path(path, &disk.name);
        let shown_name = shown.display().to_string();
        let mut first = vec![0u8; disk.source.size().min(512) as usize];
        disk.source.read_exact_at(0, &mut first).with_path(&shown)?;
        let at = format!(
            "in OVA {}, member {} at byte {}",
            crate::text::escape_str(&name),
            crate::text::escape_str(&disk.member.name),
            disk.member.offset
        );
        let image = if vmdk::has_magic(&first) {
            let v = vmdk::Vmdk::from_source(Arc::clone(&disk.source), &shown_name)?;
            let mut details = v.details();
            details.push(at);
            let problems = v.problems();
            Image {
                path: shown,
                source: Arc::new(v),
                format: ImageFormat::Vmdk,
                details,
                snapshot: None,
                problems,
            }
        } else if qcow2::has_magic(&first) {
            let q = qcow2::Qcow2::from_source(Arc::clone(&disk.source), &shown_name, None)?;
            let mut details = q.details();
            details.push(at);
            let problems = q.problems();
            Image {
                path: shown,
                source: Arc::new(q),
                format: ImageFormat::Qcow2,
                details,
                snapshot: None,
                problems,
            }
        } else {
            let mut image = Image::from_source(shown, disk.source, ImageFormat::Raw);
            image.details.push(at);
            image
        };
        out.push(image);
    }
    Ok(out)
}

/// Open `path` read-only with options (a qcow2 snapshot to show).
pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Image> {
    if let Some(image) = open_network(path, opts)? {
        return Ok(image);
    }
    let (file, head) = open_head(path)?;
    if ova::has_magic(&head) && opts.snapshot.is_none() {
        // One image asked for: the OVA's first disk ([`open_all`] gives all).
        let mut disks = ova_images(path, Arc::new(file))?.into_iter();
        let more = disks.len().saturating_sub(1);
        let Some(mut first) = disks.next() else {
            return Err(Error::NotFound(format!("{}: no disks", path.display())));
        };
        if more > 0 {
            first.problems.push(format!(
                "{}: the OVA holds {} disks; this view shows the first only (`vmrescue layers` shows all)",
                path.display(),
                more + 1
            ));
        }
        return Ok(first);
    }
    open_file(path, file, &head, opts)
}

/// The host file `file` opened from `path`, whose first bytes are `head`,
/// read as the container format they announce (an OVA is not looked for).
fn open_file(path: &Path, file: FileSource, head: &[u8], opts: &OpenOptions) -> Result<Image> {
    let size = file.size();
    // A VHD footer sits in the last 512 bytes.
    let mut tail = vec![0u8; size.min(512) as usize];
    file.read_exact_at(size - tail.len() as u64, &mut tail)
        .with_path(path)?;
    if let Some(name) = unsupported_format(head) {
        return Err(Error::Unsupported(format!(
            "{}: {name} images are not supported yet; convert a copy to raw with \
             `qemu-img convert -O raw {} COPY.raw` and open that",
            path.display(),
            path.display()
        )));
    }
    if qcow2::has_magic(head) {
        return open_qcow2_in(Arc::new(qcow2::HostFiles), path, opts);
    }
    if vmdk::has_magic(head) {
        if let Some(s) = &opts.snapshot {
            return Err(Error::Invalid(format!(
                "{}: --snapshot {} needs a qcow2 image; a VMDK keeps no internal snapshots (a VMware snapshot is a child VMDK: open that file instead)",
                path.display(),
                crate::text::escape_str(s)
            )));
        }
        return open_vmdk(path);
    }
    if family::detect(head, &tail).is_some() {
        return open_family_in(Arc::new(qcow2::HostFiles), path, opts);
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

/// Open the VMDK at `path` (descriptor or sparse file) with its extents
/// and parents, found in the host's directories.
fn open_vmdk(path: &Path) -> Result<Image> {
    let v = vmdk::Vmdk::open(path)?;
    let details = v.details();
    let problems = v.problems();
    // Opened again, extents and parents too, on refresh.
    let again = path.to_path_buf();
    let source = reopen::Reopen::new(Arc::new(v), move || {
        Ok(Arc::new(vmdk::Vmdk::open(&again)?) as Arc<dyn ReadAt>)
    });
    Ok(Image {
        path: path.to_path_buf(),
        source: Arc::new(source),
        format: ImageFormat::Vmdk,
        details,
        snapshot: None,
        problems,
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

/// Open the VHD, VHDX or VDI image at `path` in `files`, the parents of a
/// differencing disk resolved there too.
fn open_family_in(
    files: Arc<dyn qcow2::BackingFiles>,
    path: &Path,
    opts: &OpenOptions,
) -> Result<Image> {
    if let Some(s) = &opts.snapshot {
        return Err(Error::Invalid(format!(
            "{}: --snapshot {} needs a qcow2 image (VHD, VHDX and VDI images have no \
             internal snapshots vmrescue reads)",
            path.display(),
            crate::text::escape_str(s)
        )));
    }
    let o = family::open_in(&*files, path)?;
    // Opened again, parents too, on refresh.
    let again = path.to_path_buf();
    let source = reopen::Reopen::new(o.source, move || {
        Ok(family::open_in(&*files, &again)?.source)
    });
    Ok(Image {
        path: path.to_path_buf(),
        source: Arc::new(source),
        format: o.format,
        details: o.details,
        snapshot: None,
        problems: o.problems,
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
