//! What `qemu-img info` says of an image, read by vmrescue: format, sizes,
//! qcow2 header facts, backing chain, internal snapshots, and who holds it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::image::qcow2::{self, ChainLink, Snapshot, header::incompatible};
use crate::image::{ImageFormat, family, open, vdi, vhd, vhdx};
use crate::io::{FileSource, ReadAt};
use crate::pve::{Holders, image_holders};
use std::sync::Arc;

/// The facts of one image file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Info {
    /// The path given.
    pub filename: String,
    /// `raw`, `block-device` or `qcow2`.
    pub format: ImageFormat,
    /// The virtual disk's size in bytes.
    pub virtual_size: u64,
    /// Bytes the file takes on the host (allocated blocks; a block device's size).
    pub actual_size: u64,
    /// qcow2 only: the header's facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qcow2: Option<Qcow2Facts>,
    /// VMDK only: the descriptor's facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmdk: Option<VmdkFacts>,
    /// The backing chain below the image, nearest first (qcow2; a VMDK's parents).
    pub backing_chain: Vec<ChainLink>,
    /// A backing file the header names that could not be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_missing: Option<String>,
    /// Internal snapshots (qcow2).
    pub snapshots: Vec<Snapshot>,
    /// Who holds the image now: QEMU's locks and processes, other writers,
    /// this host's loop devices, maps and mounts.
    pub holders: HolderFacts,
    /// Damage to the container (a file cut short, an unreadable snapshot table).
    pub problems: Vec<String>,
    /// VHD (dynamic), VHDX and VDI: the block size, as `qemu-img info`'s `cluster_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<u64>,
    /// VHD, VHDX and VDI: the container's facts as the layer tree shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// NBD only: what the server said of the export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbd: Option<NbdFacts>,
}

/// What an NBD server says of an export at the end of the handshake.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NbdFacts {
    /// The export's name (empty: the server's default export).
    pub export: String,
    /// The transmission flags as a number.
    pub flags: u16,
    /// The flags by name (`read-only`, `multi-conn`...).
    pub flag_names: Vec<&'static str>,
    /// Whether structured replies were negotiated.
    pub structured_replies: bool,
    /// Minimum, preferred and maximum block sizes, when the server says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<[u32; 3]>,
    /// The export's description, when the server gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The qcow2 header's facts, as `qemu-img info` prints them under "Format
/// specific information".
#[derive(Debug, Clone, serde::Serialize)]
pub struct Qcow2Facts {
    /// 2 or 3.
    pub version: u32,
    /// `0.10` (version 2) or `1.1` (version 3), as qemu-img names them.
    pub compat: &'static str,
    /// Bytes per cluster.
    pub cluster_size: u64,
    /// `zlib` or `zstd`.
    pub compression_type: &'static str,
    /// Refcount width in bits.
    pub refcount_bits: u64,
    /// Lazy refcounts (compatible feature bit 0).
    pub lazy_refcounts: bool,
    /// QEMU marked the image corrupt.
    pub corrupt: bool,
    /// 128-bit L2 entries with subclusters.
    pub extended_l2: bool,
    /// An external data file holds the guest data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_file: Option<String>,
    /// The backing format the header names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_format: Option<String>,
    /// Persistent dirty bitmaps are stored.
    pub bitmaps: bool,
}

/// A VMDK descriptor's facts, as `qemu-img info` prints them under "Format
/// specific information".
#[derive(Debug, Clone, serde::Serialize)]
pub struct VmdkFacts {
    /// `createType` (`monolithicSparse`, `streamOptimized`, ...).
    pub create_type: String,
    /// The content ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<u32>,
    /// The parent's content ID when this disk was made (`ffffffff`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_cid: Option<u32>,
    /// `parentFileNameHint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_hint: Option<String>,
    /// The extents in order.
    pub extents: Vec<crate::image::vmdk::ExtentFacts>,
}

/// [`Holders`] for JSON.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HolderFacts {
    /// QEMU's image locks and QEMU/KVM processes.
    pub qemu: Vec<String>,
    /// Other processes writing to it.
    pub writers: Vec<String>,
    /// Loop devices, device-mapper maps and mounts reaching its bytes.
    pub kernel: Vec<String>,
}

impl From<Holders> for HolderFacts {
    fn from(h: Holders) -> HolderFacts {
        HolderFacts {
            qemu: h.qemu,
            writers: h.writers,
            kernel: h.kernel,
        }
    }
}

/// [`info`], with the options an `rbd:` image needs (a Ceph RBD image's
/// facts: its size and snapshots; `holders.qemu` names its watchers and
/// lock holders).
pub fn info_with(path: &Path, opts: &crate::image::OpenOptions) -> Result<Info> {
    if !crate::image::rbd::is_rbd(path) {
        return info(path);
    }
    let text = path.to_str().unwrap_or_default();
    let spec = crate::image::rbd::parse(text).map_err(crate::Error::Invalid)?;
    let rbd = crate::image::rbd::Rbd::open(&spec, &opts.ceph, opts.snapshot.as_deref())?;
    Ok(Info {
        filename: text.to_string(),
        format: ImageFormat::Rbd,
        virtual_size: rbd.size(),
        actual_size: rbd.size(),
        qcow2: None,
        vmdk: None,
        cluster_size: None,
        details: Vec::new(),
        nbd: None,
        backing_chain: Vec::new(),
        backing_missing: None,
        snapshots: rbd
            .snapshots
            .iter()
            .map(|s| Snapshot {
                id: s.id.to_string(),
                name: s.name.clone(),
                l1_table_offset: 0,
                l1_size: 0,
                date_sec: s.taken.unwrap_or(0),
                date_nsec: 0,
                vm_clock_nsec: 0,
                vm_state_size: 0,
                disk_size: Some(s.size),
                entry_offset: 0,
            })
            .collect(),
        holders: HolderFacts {
            qemu: rbd
                .holders
                .iter()
                .map(|w| format!("Ceph RBD {w}"))
                .collect(),
            ..HolderFacts::default()
        },
        problems: Vec::new(),
    })
}

/// Read the facts of the image at `path` (read-only; nothing is locked).
pub fn info(path: &Path) -> Result<Info> {
    if let Some(uri) = path.to_str().filter(|s| crate::image::nbd::is_uri(s)) {
        return nbd_info(uri);
    }
    let meta = std::fs::metadata(path).with_path(path)?;
    let file = FileSource::open(path)?;
    let mut head = vec![0u8; file.size().min(512) as usize];
    file.read_exact_at(0, &mut head).with_path(path)?;
    let mut out = Info {
        filename: path.display().to_string(),
        format: ImageFormat::Raw,
        virtual_size: 0,
        actual_size: meta.blocks().saturating_mul(512),
        qcow2: None,
        vmdk: None,
        backing_chain: Vec::new(),
        backing_missing: None,
        snapshots: Vec::new(),
        holders: image_holders(path)?.into(),
        problems: Vec::new(),
        cluster_size: None,
        details: Vec::new(),
        nbd: None,
    };
    if crate::image::vmdk::has_magic(&head) {
        let v = crate::image::vmdk::Vmdk::open(path)?;
        let d = v.descriptor();
        out.format = ImageFormat::Vmdk;
        out.virtual_size = v.size();
        out.vmdk = Some(VmdkFacts {
            create_type: d.create_type.clone(),
            cid: d.cid,
            parent_cid: d.parent_cid,
            parent_hint: d.parent_hint.clone(),
            extents: v.extents(),
        });
        out.backing_chain = v
            .chain()
            .iter()
            .map(|l| ChainLink {
                name: l.name.clone(),
                path: l.path.clone(),
                format: "vmdk",
                size: l.size,
            })
            .collect();
        out.problems = v.problems();
        return Ok(out);
    }
    let mut tail = vec![0u8; head.len()];
    file.read_exact_at(file.size() - tail.len() as u64, &mut tail)
        .with_path(path)?;
    if family::detect(&head, &tail).is_some() {
        family_facts(path, Arc::new(file), &mut out)?;
        return Ok(out);
    }
    if !qcow2::has_magic(&head) {
        let image = open(path)?;
        out.format = image.format;
        out.virtual_size = image.source.size();
        if image.format == ImageFormat::BlockDevice {
            out.actual_size = out.virtual_size;
        }
        out.problems = image.problems;
        return Ok(out);
    }
    // A backing file that cannot be opened, or a feature vmrescue does not
    // read (an external data file), does not hide the image's own facts:
    // read the image alone, or its header alone, and say what is missing.
    let name = path.display().to_string();
    let file: Arc<dyn ReadAt> = Arc::new(file);
    let q = match qcow2::Qcow2::open(path, &qcow2::OpenOptions::default()) {
        Ok(q) => q,
        Err(e) => match qcow2::Qcow2::from_source(Arc::clone(&file), &name, None) {
            Ok(alone) if alone.backing_file().is_some() => {
                out.problems.push(e.to_string());
                alone
            }
            _ => {
                let mut first = vec![0u8; file.size().min(MAX_CLUSTER) as usize];
                file.read_exact_at(0, &mut first).with_path(path)?;
                let h = qcow2::Header::decode(&first, file.size(), &name)?;
                out.problems.push(e.to_string());
                out.format = ImageFormat::Qcow2;
                out.virtual_size = h.size;
                out.qcow2 = Some(qcow2_facts(&h));
                out.backing_missing = h.backing_file.clone();
                return Ok(out);
            }
        },
    };
    let h = q.header();
    out.format = ImageFormat::Qcow2;
    out.virtual_size = q.size();
    out.qcow2 = Some(qcow2_facts(h));
    out.backing_chain = q.backing_chain().to_vec();
    if out.backing_chain.is_empty() {
        out.backing_missing = q.backing_file().map(str::to_owned);
    }
    out.snapshots = q.snapshots().to_vec();
    if let Some(e) = q.snapshot_table_error() {
        out.problems.push(format!("snapshot table: {e}"));
    }
    out.problems.extend(q.problems());
    Ok(out)
}

/// Fill `out` with the facts of the VHD, VHDX or VDI image at `path`; a
/// parent that cannot be opened does not hide the image's own facts.
fn family_facts(path: &Path, file: Arc<dyn ReadAt>, out: &mut Info) -> Result<()> {
    let name = path.display().to_string();
    match family::open_in(&qcow2::HostFiles, path) {
        Ok(o) => {
            out.format = o.format;
            out.virtual_size = o.source.size();
            out.details = o.details;
            out.problems = o.problems;
            out.backing_chain = o.chain;
        }
        Err(e) => {
            out.problems.push(e.to_string());
            let mut head = vec![0u8; file.size().min(512) as usize];
            let mut tail = vec![0u8; head.len()];
            file.read_exact_at(0, &mut head).with_path(path)?;
            file.read_exact_at(file.size() - tail.len() as u64, &mut tail)
                .with_path(path)?;
            let (format, size, details, problems) = match family::detect(&head, &tail) {
                Some(ImageFormat::Vhdx) => {
                    let v = vhdx::Vhdx::from_source(file, &name)?;
                    (ImageFormat::Vhdx, v.size(), v.details(), v.problems())
                }
                Some(ImageFormat::Vdi) => {
                    let v = vdi::Vdi::from_source(file, &name)?;
                    (ImageFormat::Vdi, v.size(), v.details(), v.problems())
                }
                _ => {
                    let v = vhd::Vhd::from_source(file, &name)?;
                    (ImageFormat::Vhd, v.size(), v.details(), v.problems())
                }
            };
            out.format = format;
            out.virtual_size = size;
            out.details = details;
            out.problems.extend(problems);
        }
    }
    out.cluster_size = block_size(path)?;
    Ok(())
}

/// The block size `qemu-img info` shows as `cluster_size` (not for a fixed VHD).
fn block_size(path: &Path) -> Result<Option<u64>> {
    let name = path.display().to_string();
    let file: Arc<dyn ReadAt> = Arc::new(FileSource::open(path)?);
    let mut head = vec![0u8; file.size().min(512) as usize];
    let mut tail = vec![0u8; head.len()];
    file.read_exact_at(0, &mut head).with_path(path)?;
    file.read_exact_at(file.size() - tail.len() as u64, &mut tail)
        .with_path(path)?;
    Ok(match family::detect(&head, &tail) {
        Some(ImageFormat::Vhdx) => vhdx::Vhdx::from_source(file, &name)
            .ok()
            .map(|v| u64::from(v.metadata().block_size)),
        Some(ImageFormat::Vdi) => vdi::Vdi::from_source(file, &name)
            .ok()
            .map(|v| u64::from(v.header().block_size)),
        _ => vhd::Vhd::from_source(file, &name)
            .ok()
            .and_then(|v| v.dynamic_header().map(|h| u64::from(h.block_size))),
    })
}

/// The facts of an NBD export: its size, name and flags (the bytes are
/// not read: `layers` reads them).
fn nbd_info(uri: &str) -> Result<Info> {
    use crate::image::nbd;
    let parsed = nbd::parse_uri(uri)?;
    let client = nbd::Nbd::open(&parsed)?;
    let e = client.export();
    Ok(Info {
        filename: uri.to_string(),
        format: ImageFormat::Nbd,
        virtual_size: e.size,
        actual_size: e.size,
        qcow2: None,
        vmdk: None,
        cluster_size: None,
        details: Vec::new(),
        backing_chain: Vec::new(),
        backing_missing: None,
        snapshots: Vec::new(),
        holders: HolderFacts::default(),
        problems: Vec::new(),
        nbd: Some(NbdFacts {
            export: parsed.export.clone(),
            flags: e.flags,
            flag_names: nbd::flag_names(e.flags),
            structured_replies: e.structured,
            block_size: e.block_size.map(|(a, b, c)| [a, b, c]),
            description: e.description.clone(),
        }),
    })
}

/// The largest qcow2 cluster (2 MiB): the header and its extensions lie
/// within the first cluster.
const MAX_CLUSTER: u64 = 2 << 20;

fn qcow2_facts(h: &qcow2::Header) -> Qcow2Facts {
    Qcow2Facts {
        version: h.version,
        compat: if h.version == 2 { "0.10" } else { "1.1" },
        cluster_size: h.cluster_size(),
        compression_type: h.compression_type.name(),
        refcount_bits: 1u64.checked_shl(h.refcount_order).unwrap_or(0),
        lazy_refcounts: h.compatible_features & 1 != 0,
        corrupt: h.incompatible_features & incompatible::CORRUPT != 0,
        extended_l2: h.extended_l2(),
        data_file: h.external_data_file.clone(),
        backing_format: h.backing_format.clone(),
        bitmaps: h.has_bitmaps,
    }
}
