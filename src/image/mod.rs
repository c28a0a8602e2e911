//! Container formats: what turns a file on the host into the bytes of a virtual disk.
//!
//! Raw images and block devices are read as they are. Formats vmrescue
//! recognises but cannot read yet are named clearly instead of being
//! misread as raw disks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
}

impl ImageFormat {
    /// The name shown to the operator.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::BlockDevice => "block device",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

/// Formats recognised by their magic but not readable (yet).
fn unsupported_format(head: &[u8], tail: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"KDMV") || head.starts_with(b"# Disk DescriptorFile") {
        return Some("VMDK");
    }
    if head.starts_with(b"vhdxfile") {
        return Some("VHDX");
    }
    if head.starts_with(b"conectix") || tail.starts_with(b"conectix") {
        return Some("VHD");
    }
    if head.len() >= 0x44 && head[0x40..0x44] == [0x7f, 0x10, 0xda, 0xbe] {
        return Some("VDI");
    }
    None
}

/// Open `path` read-only and recognise its container format.
pub fn open(path: &Path) -> Result<Image> {
    let file = FileSource::open(path)?;
    let size = file.size();
    let mut head = vec![0u8; size.min(512) as usize];
    file.read_exact_at(0, &mut head).with_path(path)?;
    let mut tail = vec![0u8; size.min(512) as usize];
    file.read_exact_at(size - tail.len() as u64, &mut tail)
        .with_path(path)?;
    // A VHD footer sits in the last 512 bytes.
    if let Some(name) = unsupported_format(&head, &tail) {
        return Err(Error::Unsupported(format!(
            "{}: {name} images are not supported yet (convert with `qemu-img convert -O raw`)",
            path.display()
        )));
    }
    if head.starts_with(b"QFI\xfb") {
        return Err(Error::Unsupported(format!(
            "{}: qcow2 images are not supported yet (convert with `qemu-img convert -O raw`)",
            path.display()
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
    })
}
