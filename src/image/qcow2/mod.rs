//! qcow2 images (QEMU copy-on-write, versions 2 and 3), read-only.
//!
//! Our own reader, following QEMU's specification (`docs/interop/qcow2.txt`):
//! L1/L2 tables (standard and extended L2 entries with subclusters), zero
//! clusters, compressed clusters (deflate and zstd), backing files (raw or
//! qcow2, relative to the image's directory, chains with a depth limit) and
//! internal snapshots (read the image as of a snapshot through its L1 table).
//!
//! Everything in the file is treated as hostile: offsets are checked against
//! the file's size before they are read, table sizes are capped at QEMU's own
//! limits, backing chains are checked for loops, and every error names the
//! file, the structure and its byte position. Encrypted images and images
//! with an external data file are recognised and refused by name.
//!
//! [`Qcow2`] implements [`ReadAt`] with `&self` (pread), so it can be shared
//! between threads; L2 tables are kept in a bounded cache.

mod compress;
pub mod header;
mod map;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use humansize::{BINARY, format_size};

pub use header::{CompressionType, Header};
pub use snapshot::Snapshot;

use crate::error::{Error, IoContext, Result};
use crate::io::{FileSource, HostExtent, ReadAt, past_end, read_vec};
use map::{Granule, L2Cache};

/// How deep a backing chain may be (the image itself not counted).
pub const MAX_BACKING_DEPTH: usize = 32;

/// Options for opening a qcow2 image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Show the image as of this internal snapshot (its ID, else its name).
    pub snapshot: Option<String>,
}

/// One image in a backing chain, below the image that was opened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainLink {
    /// The backing file name as the image above stores it.
    pub name: String,
    /// The file opened for it.
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    /// Its virtual size in bytes.
    pub size: u64,
}

/// The backing file beneath an image.
struct Backing {
    source: Arc<dyn ReadAt>,
    size: u64,
}

/// A qcow2 image opened for reading.
pub struct Qcow2 {
    /// The image's path, for messages.
    name: String,
    file: Arc<dyn ReadAt>,
    file_size: u64,
    header: Header,
    /// The L1 table in use (the active one, or the snapshot's), only the
    /// entries needed to cover `size`.
    l1: Vec<u64>,
    /// Whether the file's end cut the L1 table short: guest bytes mapped by
    /// the missing entries are lost (a truncated image).
    l1_cut: bool,
    l1_table_offset: u64,
    /// The virtual size shown.
    size: u64,
    snapshots: Vec<Snapshot>,
    snapshot_table_error: Option<String>,
    shown_snapshot: Option<Snapshot>,
    backing: Option<Backing>,
    chain: Vec<ChainLink>,
    l2_cache: L2Cache,
    clusters: Mutex<Vec<(u64, Arc<[u8]>)>>,
    /// Set when the file is shorter than its tables say
    /// ([`Qcow2::problems`] tells what is lost): a data cluster the file's
    /// end cuts short then reads as an error past the end, not as zeros.
    truncated: Option<String>,
}

impl std::fmt::Debug for Qcow2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("version", &self.header.version)
            .field("cluster_bits", &self.header.cluster_bits)
            .finish_non_exhaustive()
    }
}

/// Whether `head` (the first bytes of a file) starts with the qcow2 magic.
pub fn has_magic(head: &[u8]) -> bool {
    head.starts_with(&header::MAGIC)
}

/// A whole compressed cluster to decompress: its L2 entry and where it goes.
type ClusterJob<'a> = (u64, &'a mut [u8]);

/// Decompressed clusters kept for reads smaller than a cluster.
const CLUSTER_CACHE: usize = 8;

impl Qcow2 {
    /// Open the qcow2 image at `path` with its backing chain.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Qcow2> {
        Qcow2::open_in(&HostFiles, path, opts)
    }

    /// Open the qcow2 image at `path` in `files` (the host's directories,
    /// or a filesystem vmrescue reads itself) with its backing chain, whose
    /// names are resolved and opened in `files` too.
    pub fn open_in(files: &dyn BackingFiles, path: &Path, opts: &OpenOptions) -> Result<Qcow2> {
        let mut seen = Vec::new();
        open_chain(files, path, opts.snapshot.as_deref(), 0, &mut seen)
    }

    /// Parse a qcow2 image from any byte source, without opening backing
    /// files: unallocated clusters read as zeros. `name` is used in messages.
    /// This is what the fuzz target drives.
    pub fn from_source(file: Arc<dyn ReadAt>, name: &str, snapshot: Option<&str>) -> Result<Qcow2> {
        let file_size = file.size();
        let mut head = vec![0u8; file_size.min(104) as usize];
        file.read_exact_at(0, &mut head)
            .context(|| format!("{name}: reading the qcow2 header"))?;
        let cluster_bits = crate::io::be::u32(&head, 20).unwrap_or(16);
        let first_len =
            if (header::MIN_CLUSTER_BITS..=header::MAX_CLUSTER_BITS).contains(&cluster_bits) {
                file_size.min(1u64 << cluster_bits)
            } else {
                head.len() as u64
            };
        let first = read_vec(&*file, 0, first_len, 1 << header::MAX_CLUSTER_BITS)
            .context(|| format!("{name}: reading the qcow2 header"))?;
        let header = Header::parse(&first, file_size, name)?;
        let cluster_size = header.cluster_size();
        // A damaged snapshot table stops only the reading of snapshots: the
        // current state is still shown, with the damage listed in the details.
        let (snapshots, snapshot_table_error) = match snapshot::read_table(
            &*file,
            header.snapshots_offset,
            header.nb_snapshots,
            cluster_size,
            name,
        ) {
            Ok(s) => (s, None),
            Err(e) if snapshot.is_none() => (Vec::new(), Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let (l1_offset, l1_size, size, shown, field) = match snapshot {
            None => (
                header.l1_table_offset,
                header.l1_size,
                header.size,
                None,
                "active L1 table".to_string(),
            ),
            Some(wanted) => {
                let s = snapshot::find(&snapshots, wanted)
                    .map_err(|e| prefix_error(e, name))?
                    .clone();
                let size = s.disk_size.unwrap_or(header.size);
                let field = format!("L1 table of snapshot {}", s.label());
                (s.l1_table_offset, s.l1_size, size, Some(s), field)
            }
        };
        // A snapshot that does not record its disk size is shown at the
        // current size; entries its L1 table lacks read as unallocated, as QEMU
        // reads them. Everywhere else a short L1 table is corruption.
        let pad = shown.as_ref().is_some_and(|s| s.disk_size.is_none());
        let mut l1 = read_l1(
            &*file,
            name,
            &header,
            &field,
            l1_offset,
            l1_size,
            if pad {
                size.min(l1_coverage(&header, l1_size))
            } else {
                size
            },
            file_size,
        )?;
        if pad {
            let needed = size.div_ceil(l1_coverage(&header, 1));
            if needed > header::MAX_L1_BYTES / 8 {
                return Err(Error::corrupt(
                    format!("{name}: qcow2 header"),
                    24,
                    format!("virtual size {size} needs more L1 entries than QEMU allows"),
                ));
            }
            l1.resize(needed as usize, 0);
        }
        // Entries the file's end cut off (`read_l1` reads what is there).
        let l1_cut = (l1.len() as u64) < size.div_ceil(l1_coverage(&header, 1));
        let l2_cache = L2Cache::new(cluster_size);
        Ok(Qcow2 {
            name: name.to_string(),
            file,
            file_size,
            header,
            l1,
            l1_cut,
            l1_table_offset: l1_offset,
            size,
            snapshots,
            snapshot_table_error,
            shown_snapshot: shown,
            backing: None,
            chain: Vec::new(),
            l2_cache,
            clusters: Mutex::new(Vec::new()),
            truncated: None,
        }
        .check_truncation())
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Every internal snapshot in the image.
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    /// Why the snapshot table could not be read, when it could not (the
    /// current state is read all the same).
    pub fn snapshot_table_error(&self) -> Option<&str> {
        self.snapshot_table_error.as_deref()
    }

    /// The snapshot shown, when one was asked for.
    pub fn shown_snapshot(&self) -> Option<&Snapshot> {
        self.shown_snapshot.as_ref()
    }

    /// The backing chain below this image, nearest first.
    pub fn backing_chain(&self) -> &[ChainLink] {
        &self.chain
    }

    /// The backing file name stored in the header, even when it was not opened.
    pub fn backing_file(&self) -> Option<&str> {
        self.header.backing_file.as_deref()
    }

    /// Facts for the layer tree: version, cluster size, features, backing chain, snapshots.
    pub fn details(&self) -> Vec<String> {
        let h = &self.header;
        let mut out = vec![format!(
            "v{} (compat {}), {} clusters",
            h.version,
            if h.version == 2 { "0.10" } else { "1.1" },
            format_size(h.cluster_size(), BINARY)
        )];
        if h.extended_l2() {
            out.push("extended L2 (subclusters)".into());
        }
        if h.compression_type != CompressionType::Zlib {
            out.push(format!("{} compression", h.compression_type.name()));
        }
        if h.incompatible_features & header::incompatible::CORRUPT != 0 {
            out.push("marked corrupt by QEMU".into());
        }
        if !self.chain.is_empty() {
            out.push(format!(
                "backing {}",
                super::chain_text(
                    self.chain
                        .iter()
                        .map(|l| (l.name.as_str(), l.format, l.size))
                )
            ));
        } else if let Some(b) = &h.backing_file {
            out.push(format!(
                "backing {} (not opened)",
                crate::text::escape_str(b)
            ));
        }
        if !self.snapshots.is_empty() {
            let list: Vec<String> = self
                .snapshots
                .iter()
                .map(|s| {
                    format!(
                        "{} {} {}",
                        s.label(),
                        s.date(),
                        format_size(s.disk_size.unwrap_or(h.size), BINARY)
                    )
                })
                .collect();
            out.push(crate::image::snapshots_detail(&list));
        }
        if let Some(e) = &self.snapshot_table_error {
            out.push(format!("snapshots unreadable ({e})"));
        }
        if let Some(s) = &self.shown_snapshot {
            out.push(format!("showing snapshot {} of {}", s.label(), s.date()));
        }
        out
    }

    /// Problems with the container itself: a file cut short (the L2
    /// tables and clusters past its end are named; the rest reads).
    pub fn problems(&self) -> Vec<String> {
        self.truncated.iter().cloned().collect()
    }

    fn check_truncation(mut self) -> Qcow2 {
        self.truncated = self.truncation();
        self
    }

    fn attach_backing(&mut self, backing: Backing, chain: Vec<ChainLink>) {
        self.backing = Some(backing);
        self.chain = chain;
    }

    fn corrupt_io(&self, structure: &str, offset: u64, detail: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: qcow2 {structure} at byte {offset}: {detail}",
                self.name
            ),
        )
    }

    /// Read host bytes at `host` (for guest byte `guest`) into `dst`. Bytes
    /// past the end of the file read as zeros (as QEMU reads them), unless
    /// the file is known to be cut short: then they are an error.
    fn read_host(&self, host: u64, guest: u64, dst: &mut [u8]) -> std::io::Result<()> {
        let avail = self.file_size.saturating_sub(host).min(dst.len() as u64) as usize;
        if avail < dst.len() && self.truncated.is_some() {
            let missing = host.saturating_add(avail as u64);
            return Err(self.corrupt_io(
                "data",
                missing,
                format!(
                    "(guest byte {}) is past the end of the file ({} bytes): the image is truncated",
                    guest.saturating_add(avail as u64),
                    self.file_size
                ),
            ));
        }
        if avail > 0 {
            self.file.read_exact_at(host, &mut dst[..avail])?;
        }
        dst[avail..].fill(0);
        Ok(())
    }

    fn read_backing(&self, pos: u64, dst: &mut [u8]) -> std::io::Result<()> {
        let Some(b) = &self.backing else {
            dst.fill(0);
            return Ok(());
        };
        let avail = b.size.saturating_sub(pos).min(dst.len() as u64) as usize;
        if avail > 0 {
            b.source.read_exact_at(pos, &mut dst[..avail])?;
        }
        dst[avail..].fill(0);
        Ok(())
    }

    /// Read the compressed cluster described by `entry` into `cluster` (a whole cluster).
    fn decompress_cluster(&self, entry: u64, cluster: &mut [u8]) -> std::io::Result<()> {
        let (coffset, csize) = map::compressed_extent(entry, self.header.cluster_bits);
        if coffset == 0 || coffset >= self.file_size {
            return Err(self.corrupt_io(
                "compressed cluster",
                coffset,
                format!(
                    "is outside the file ({} bytes; L2 entry {entry:#018x})",
                    self.file_size
                ),
            ));
        }
        let len = csize.min(self.file_size - coffset);
        let input = read_vec(
            &*self.file,
            coffset,
            len,
            2 * self.header.cluster_size() + 512,
        )?;
        compress::decompress(self.header.compression_type, &input, cluster).map_err(|detail| {
            self.corrupt_io(
                &format!("{} compressed cluster", self.header.compression_type.name()),
                coffset,
                detail,
            )
        })
    }

    /// Decompress whole clusters into their buffers, spread over the CPUs
    /// when there is more than one cluster ([`crate::image::parallel`]).
    fn decompress_all(&self, jobs: Vec<ClusterJob<'_>>) -> std::io::Result<()> {
        crate::image::parallel::for_each(jobs, |(entry, dst)| self.decompress_cluster(entry, dst))
    }

    /// Copy part of a compressed cluster, keeping recently decompressed clusters.
    fn read_compressed(&self, entry: u64, within: usize, dst: &mut [u8]) -> std::io::Result<()> {
        let cs = self.header.cluster_size() as usize;
        if within == 0 && dst.len() == cs {
            return self.decompress_cluster(entry, dst);
        }
        let key = entry;
        let cached = {
            let c = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
            c.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, d)| Arc::clone(d))
        };
        let data = match cached {
            Some(d) => d,
            None => {
                let mut buf = vec![0u8; cs];
                self.decompress_cluster(entry, &mut buf)?;
                let d: Arc<[u8]> = buf.into();
                let mut c = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
                if c.len() >= CLUSTER_CACHE {
                    c.remove(0);
                }
                c.push((key, Arc::clone(&d)));
                d
            }
        };
        let src = data
            .get(within..within + dst.len())
            .ok_or_else(|| past_end(within as u64, dst.len(), cs as u64))?;
        dst.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for Qcow2 {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        if end > self.size {
            return Err(past_end(offset, buf.len(), self.size));
        }
        let cs = self.header.cluster_size() as usize;
        // Whole compressed clusters are gathered and decompressed at the end,
        // in parallel when there are several.
        let mut whole_compressed: Vec<ClusterJob<'_>> = Vec::new();
        let mut rest: &mut [u8] = buf;
        let mut pos = offset;
        while !rest.is_empty() {
            let (granule, len) = self.map(pos, rest.len() as u64)?;
            let (dst, tail) = std::mem::take(&mut rest).split_at_mut(len as usize);
            rest = tail;
            match granule {
                Granule::Zero => dst.fill(0),
                Granule::Unallocated => self.read_backing(pos, dst)?,
                Granule::Data(host) => self.read_host(host, pos, dst)?,
                Granule::Compressed { entry, within: 0 } if dst.len() == cs => {
                    whole_compressed.push((entry, dst))
                }
                Granule::Compressed { entry, within } => {
                    self.read_compressed(entry, within as usize, dst)?
                }
            }
            pos += len;
        }
        self.decompress_all(whole_compressed)
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        if offset >= self.size || len == 0 {
            return None;
        }
        let len = len.min(self.size - offset);
        let (granule, run) = self.map(offset, len).ok()?;
        match granule {
            Granule::Data(host) if host < self.file_size => {
                let run = run.min(self.file_size - host);
                self.file.host_extent(host, run)
            }
            Granule::Unallocated => {
                let b = self.backing.as_ref()?;
                if offset >= b.size {
                    return None;
                }
                b.source.host_extent(offset, run.min(b.size - offset))
            }
            _ => None,
        }
    }
}

/// Put the image's name in front of a message that lacks it.
fn prefix_error(e: Error, name: &str) -> Error {
    match e {
        Error::NotFound(m) => Error::NotFound(format!("{name}: {m}")),
        Error::Invalid(m) => Error::Invalid(format!("{name}: {m}")),
        other => other,
    }
}

/// How many guest bytes `entries` L1 entries map.
fn l1_coverage(header: &Header, entries: u32) -> u64 {
    u64::from(entries).saturating_mul(1u64 << (header.cluster_bits + map::l2_bits(header)))
}

/// Read the L1 table entries needed to cover `size` bytes.
#[allow(clippy::too_many_arguments)]
fn read_l1(
    file: &dyn ReadAt,
    name: &str,
    header: &Header,
    what: &str,
    offset: u64,
    l1_size: u32,
    size: u64,
    file_size: u64,
) -> Result<Vec<u64>> {
    let structure = format!("{name}: qcow2 {what}");
    let cluster_bits = header.cluster_bits;
    let l2_bits = map::l2_bits(header);
    let per_entry = 1u64 << (cluster_bits + l2_bits);
    let needed = size.div_ceil(per_entry);
    if u64::from(l1_size) * 8 > header::MAX_L1_BYTES {
        return Err(Error::corrupt(
            structure,
            offset,
            format!(
                "l1_size {l1_size} entries is larger than QEMU's limit of {} MiB",
                header::MAX_L1_BYTES >> 20
            ),
        ));
    }
    if needed > u64::from(l1_size) {
        return Err(Error::corrupt(
            structure,
            offset,
            format!(
                "{l1_size} entries cannot map a virtual size of {size} bytes ({needed} needed)"
            ),
        ));
    }
    if needed == 0 {
        return Ok(Vec::new());
    }
    if offset == 0 || !offset.is_multiple_of(header.cluster_size()) {
        return Err(Error::corrupt(
            structure,
            offset,
            format!(
                "offset {offset} is not a cluster boundary after the header (cluster size {})",
                header.cluster_size()
            ),
        ));
    }
    let mut bytes = needed * 8;
    if offset.checked_add(bytes).is_none_or(|e| e > file_size) {
        // A table that starts in the file and is cut by its end: a copy cut
        // short. The entries still there are read; the guest bytes the
        // others map read as errors (see `Qcow2::l1_cut`).
        if offset >= file_size {
            return Err(Error::corrupt(
                structure,
                offset,
                format!("{needed} entries run past the end of the file ({file_size} bytes)"),
            ));
        }
        bytes = (file_size - offset) / 8 * 8;
    }
    let raw = read_vec(file, offset, bytes, header::MAX_L1_BYTES)
        .context(|| format!("{name}: reading the qcow2 {what} at byte {offset}"))?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// Where the files of a backing chain are found and opened: the host's
/// directories ([`HostFiles`]), or a filesystem vmrescue reads itself (a
/// disk image stored in a guest's or a host's filesystem).
pub trait BackingFiles: Send + Sync {
    /// The file backing file name `name` (`file:` taken off) of the image
    /// at `image` leads to: a relative name is relative to the image's
    /// directory, an absolute one starts at this namespace's root. When
    /// nothing is there, `Err` says where it looked.
    fn locate(&self, image: &Path, name: &str) -> std::result::Result<PathBuf, String>;
    /// The file's identity (device, inode), for loop detection.
    fn identity(&self, path: &Path) -> Result<(u64, u64)>;
    /// Open the file for reading.
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadAt>>;
    /// The other files in `image`'s directory (a differencing VDI's parent
    /// is found by UUID among them); none where listing is not offered.
    fn siblings(&self, _image: &Path) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Backing files in the host's directories.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFiles;

impl BackingFiles for HostFiles {
    fn locate(&self, image: &Path, name: &str) -> std::result::Result<PathBuf, String> {
        let p = Path::new(name);
        let resolved = if p.is_absolute() {
            p.to_path_buf()
        } else {
            image.parent().unwrap_or(Path::new(".")).join(p)
        };
        if resolved.exists() {
            Ok(resolved)
        } else {
            Err(resolved.display().to_string())
        }
    }
    fn identity(&self, path: &Path) -> Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).with_path(path)?;
        Ok((m.dev(), m.ino()))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadAt>> {
        Ok(Arc::new(FileSource::open(path)?))
    }
    fn siblings(&self, image: &Path) -> Vec<PathBuf> {
        let dir = image.parent().filter(|d| !d.as_os_str().is_empty());
        let Ok(rd) = std::fs::read_dir(dir.unwrap_or(Path::new("."))) else {
            return Vec::new();
        };
        // Bounded: a folder of disk images, not a whole filesystem.
        let mut out: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .take(4096)
            .collect();
        out.sort();
        out
    }
}

/// Open a qcow2 file and, recursively, its backing chain.
fn open_chain(
    files: &dyn BackingFiles,
    path: &Path,
    snapshot: Option<&str>,
    depth: usize,
    seen: &mut Vec<((u64, u64), PathBuf)>,
) -> Result<Qcow2> {
    let id = files.identity(path)?;
    if let Some((_, first)) = seen.iter().find(|(i, _)| *i == id) {
        let names: Vec<String> = seen.iter().map(|(_, p)| p.display().to_string()).collect();
        return Err(Error::Invalid(format!(
            "qcow2 backing chain loops: {} is {} again ({} → {})",
            path.display(),
            first.display(),
            names.join(" → "),
            path.display()
        )));
    }
    seen.push((id, path.to_path_buf()));
    let file = files.open(path)?;
    let name = path.display().to_string();
    let mut img = Qcow2::from_source(file, &name, snapshot)?;
    let Some(backing_name) = img.header.backing_file.clone() else {
        return Ok(img);
    };
    if depth + 1 > MAX_BACKING_DEPTH {
        return Err(Error::Unsupported(format!(
            "{name}: backing chain deeper than {MAX_BACKING_DEPTH} images"
        )));
    }
    let backing_path = resolve_backing(files, path, &backing_name)?;
    let format = img.header.backing_format.clone();
    let (source, link_format, mut below): (Arc<dyn ReadAt>, &'static str, Vec<ChainLink>) =
        match open_backing(files, &backing_path, format.as_deref(), &name, depth, seen)? {
            Opened::Raw(f) => (f, "raw", Vec::new()),
            Opened::Qcow2(q) => {
                let chain = q.chain.clone();
                (Arc::new(*q), "qcow2", chain)
            }
        };
    let size = source.size();
    let mut chain = vec![ChainLink {
        name: backing_name,
        path: backing_path,
        format: link_format,
        size,
    }];
    chain.append(&mut below);
    img.attach_backing(Backing { source, size }, chain);
    Ok(img)
}

enum Opened {
    Raw(Arc<dyn ReadAt>),
    Qcow2(Box<Qcow2>),
}

/// Where a backing file name points: relative names are relative to the
/// directory of the image that names them.
fn resolve_backing(files: &dyn BackingFiles, image: &Path, backing: &str) -> Result<PathBuf> {
    let unsupported = |why: &str| {
        Error::Unsupported(format!(
            "{}: backing file \"{}\" {why}",
            image.display(),
            crate::text::escape_str(backing)
        ))
    };
    if backing.starts_with("json:") {
        return Err(unsupported("is a QEMU json: specification, not a file"));
    }
    let plain = backing.strip_prefix("file:").unwrap_or(backing);
    let looked = match files.locate(image, plain) {
        Ok(found) => return Ok(found),
        Err(looked) => looked,
    };
    // `nbd:`, `rbd:`, `iscsi:`, `http:`... name network protocols.
    if let Some((proto, _)) = plain.split_once(':')
        && !proto.is_empty()
        && !proto.contains('/')
        && proto
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    {
        return Err(unsupported(&format!(
            "uses the QEMU protocol \"{proto}:\", which vmrescue cannot open"
        )));
    }
    Err(Error::NotFound(format!(
        "{}: backing file \"{}\" ({})",
        image.display(),
        crate::text::escape_str(backing),
        looked
    )))
}

fn open_backing(
    files: &dyn BackingFiles,
    path: &Path,
    format: Option<&str>,
    above: &str,
    depth: usize,
    seen: &mut Vec<((u64, u64), PathBuf)>,
) -> Result<Opened> {
    let qcow2 = |seen: &mut Vec<((u64, u64), PathBuf)>| -> Result<Opened> {
        Ok(Opened::Qcow2(Box::new(open_chain(
            files,
            path,
            None,
            depth + 1,
            seen,
        )?)))
    };
    match format {
        Some("qcow2") => {
            let head = read_head(files, path)?;
            if !has_magic(&head) {
                return Err(Error::Invalid(format!(
                    "{above}: backing file {} should be qcow2 (backing format extension) but has no qcow2 magic",
                    path.display()
                )));
            }
            qcow2(seen)
        }
        Some("raw") | Some("file") | Some("host_device") => {
            let id = files.identity(path)?;
            if seen.iter().any(|(i, _)| *i == id) {
                return Err(Error::Invalid(format!(
                    "qcow2 backing chain loops: {} is used twice",
                    path.display()
                )));
            }
            Ok(Opened::Raw(files.open(path)?))
        }
        Some(other) => Err(Error::Unsupported(format!(
            "{above}: backing file {} is in format \"{}\"; vmrescue reads raw and qcow2 backing files",
            path.display(),
            crate::text::escape_str(other)
        ))),
        None => {
            // No format recorded: recognise it, as QEMU does.
            let head = read_head(files, path)?;
            if has_magic(&head) {
                return qcow2(seen);
            }
            if let Some(kind) = super::unsupported_format(&head) {
                return Err(Error::Unsupported(format!(
                    "{above}: backing file {} is a {kind} image; vmrescue reads raw and qcow2 backing files",
                    path.display()
                )));
            }
            Ok(Opened::Raw(files.open(path)?))
        }
    }
}

fn read_head(files: &dyn BackingFiles, path: &Path) -> Result<Vec<u8>> {
    let f = files.open(path)?;
    let len = f.size().min(512);
    read_vec(&*f, 0, len, 512).with_path(path)
}
