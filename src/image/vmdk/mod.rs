//! VMDK images (VMware), read-only.
//!
//! Our own reader, following VMware's "Virtual Disk Format 1.1": descriptor
//! files naming flat, sparse and zero extents (`monolithicFlat`,
//! `twoGbMaxExtentFlat`/`Sparse`, `vmfs`, `vmfsThin`), hosted sparse files
//! with their embedded descriptor (`monolithicSparse`), stream-optimized
//! files (compressed grains with markers, the grain directory in the
//! footer), and snapshot chains (`parentFileNameHint`, relative to the
//! child's folder, the parent's `CID` checked against the child's
//! `parentCID`).
//!
//! Everything in the files is treated as hostile: sizes and counts are
//! capped (descriptor text, extents, grain tables), offsets are checked
//! against the file's size, chains are checked for loops and depth, and
//! errors name the file, the structure and its byte position. Extent kinds
//! vmrescue does not read (`VMFSSPARSE`, `SESPARSE`, raw device mappings)
//! are refused by name.
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]

pub mod descriptor;
pub mod sparse;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use humansize::{BINARY, format_size};

use crate::error::{Error, IoContext, Result};
use crate::image::qcow2::BackingFiles;
use crate::io::{HostExtent, ReadAt, past_end, read_vec};
pub use descriptor::{Descriptor, ExtentKind};
pub use sparse::SparseExtent;

/// How deep a snapshot chain may be (the disk itself not counted).
pub const MAX_CHAIN_DEPTH: usize = 32;

/// Whether `head` (the first bytes of a file) is a VMDK: a sparse extent's
/// `KDMV` magic or descriptor text.
pub fn has_magic(head: &[u8]) -> bool {
    head.starts_with(&sparse::MAGIC) || descriptor::looks_like_descriptor(head)
}

/// What backs one extent.
enum Backing {
    Flat { file: Arc<dyn ReadAt>, offset: u64 },
    Sparse(Box<SparseExtent>),
    Zero,
}

/// One extent of the virtual disk.
struct Extent {
    /// First virtual byte.
    start: u64,
    /// Virtual bytes.
    len: u64,
    /// The extent line's type word (`FLAT`, `SPARSE`, ...).
    type_name: String,
    /// File name as the descriptor writes it.
    file: Option<String>,
    backing: Backing,
}

/// A parent disk in the chain, for details.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainLink {
    /// The name as the child's `parentFileNameHint` writes it.
    pub name: String,
    /// The file opened for it.
    pub path: PathBuf,
    /// Its createType.
    pub create_type: String,
    /// Its virtual size in bytes.
    pub size: u64,
}

/// One extent's facts, for `vmrescue info`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExtentFacts {
    /// The file name as the descriptor writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `FLAT`, `SPARSE`, `ZERO`, `VMFS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Virtual bytes.
    pub virtual_size: u64,
    /// Grain size in bytes (sparse extents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<u64>,
    /// Grains are compressed (stream-optimized).
    pub compressed: bool,
}

/// A VMDK disk opened for reading.
pub struct Vmdk {
    name: String,
    size: u64,
    descriptor: Descriptor,
    extents: Vec<Extent>,
    parent: Option<Arc<dyn ReadAt>>,
    chain: Vec<ChainLink>,
    problems: Vec<String>,
}

impl std::fmt::Debug for Vmdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vmdk")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("create_type", &self.descriptor.create_type)
            .field("extents", &self.extents.len())
            .finish_non_exhaustive()
    }
}

impl Vmdk {
    /// Open the VMDK at `path` (a descriptor or a sparse file) with its
    /// extents and parents, all found in `files`.
    pub fn open_in(files: &dyn BackingFiles, path: &Path) -> Result<Vmdk> {
        let mut seen = Vec::new();
        open_chain(files, path, 0, &mut seen)
    }

    /// Open the VMDK at `path` in the host's directories.
    pub fn open(path: &Path) -> Result<Vmdk> {
        Vmdk::open_in(&crate::image::qcow2::HostFiles, path)
    }

    /// Parse a single-file VMDK (sparse or stream-optimized) from any byte
    /// source, without opening other files: unallocated grains read as
    /// zeros, a descriptor's extents are refused. This is what the fuzz
    /// target drives.
    pub fn from_source(file: Arc<dyn ReadAt>, name: &str) -> Result<Vmdk> {
        struct NoFiles;
        impl BackingFiles for NoFiles {
            fn locate(&self, _: &Path, name: &str) -> std::result::Result<PathBuf, String> {
                Err(format!("{name} (no other files are opened here)"))
            }
            fn identity(&self, _: &Path) -> Result<(u64, u64)> {
                Ok((0, 0))
            }
            fn open(&self, path: &Path) -> Result<Arc<dyn ReadAt>> {
                Err(Error::NotFound(path.display().to_string()))
            }
        }
        let mut v = open_file(&NoFiles, Path::new(name), file, name)?;
        if v.descriptor.has_parent() {
            v.problems.push(format!(
                "{name}: the parent disk was not opened; its bytes read as zeros"
            ));
        }
        Ok(v)
    }

    /// The descriptor (embedded, or the file itself).
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The extents, as `qemu-img info` lists them.
    pub fn extents(&self) -> Vec<ExtentFacts> {
        self.extents
            .iter()
            .map(|e| {
                let (grain, compressed) = match &e.backing {
                    Backing::Sparse(sp) => (Some(sp.header.grain_bytes()), sp.header.compressed()),
                    _ => (None, false),
                };
                ExtentFacts {
                    filename: e.file.clone(),
                    kind: e.type_name.clone(),
                    virtual_size: e.len,
                    cluster_size: grain,
                    compressed,
                }
            })
            .collect()
    }

    /// The parents below this disk, nearest first.
    pub fn chain(&self) -> &[ChainLink] {
        &self.chain
    }

    /// Facts for display: subformat, extents, grains, parents.
    pub fn details(&self) -> Vec<String> {
        let d = &self.descriptor;
        let mut out = Vec::new();
        let mut first = if d.create_type.is_empty() {
            "no createType".to_string()
        } else {
            d.create_type.clone()
        };
        if let Some(cid) = d.cid {
            first.push_str(&format!(", CID {cid:08x}"));
        }
        if let Some(hw) = &d.hw_version {
            first.push_str(&format!(", virtual hardware {hw}"));
        }
        out.push(first);
        let shown = self.extents.len().min(4);
        for e in self.extents.iter().take(shown) {
            let mut s = format!("extent {} {}", e.type_name, format_size(e.len, BINARY));
            if let Some(f) = &e.file {
                s.push_str(&format!(" {}", crate::text::escape_str(f)));
            }
            if let Backing::Sparse(sp) = &e.backing {
                s.push_str(&format!(
                    ", {} grains",
                    format_size(sp.header.grain_bytes(), BINARY)
                ));
                if sp.header.compressed() {
                    s.push_str(", compressed (deflate)");
                }
            }
            out.push(s);
        }
        if self.extents.len() > shown {
            out.push(format!(
                "{} more extents",
                self.extents.len().saturating_sub(shown)
            ));
        }
        if !self.chain.is_empty() {
            out.push(format!(
                "parent {}",
                super::chain_text(self.chain.iter().map(|l| (
                    l.name.as_str(),
                    l.create_type.as_str(),
                    l.size
                )))
            ));
        }
        out
    }

    /// Damage found while opening (a damaged grain directory, a CID mismatch...).
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.problems.clone();
        for e in &self.extents {
            if let Backing::Sparse(sp) = &e.backing {
                out.extend(sp.problems().iter().cloned());
            }
        }
        out
    }

    /// The index of the extent holding virtual byte `pos`.
    fn extent_at(&self, pos: u64) -> Option<&Extent> {
        let i = self
            .extents
            .partition_point(|e| e.start.saturating_add(e.len) <= pos);
        self.extents.get(i).filter(|e| e.start <= pos)
    }

    fn read_parent(&self, pos: u64, dst: &mut [u8]) -> std::io::Result<()> {
        let Some(p) = &self.parent else {
            dst.fill(0);
            return Ok(());
        };
        let psize = p.size();
        let avail = usize::try_from(psize.saturating_sub(pos).min(dst.len() as u64)).unwrap_or(0);
        let (inside, beyond) = dst.split_at_mut(avail);
        if !inside.is_empty() {
            p.read_exact_at(pos, inside)?;
        }
        beyond.fill(0);
        Ok(())
    }
}

impl ReadAt for Vmdk {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        let mut pos = offset;
        let mut done = 0usize;
        // Each turn covers the rest of one extent: at most extents + 1 turns.
        while pos < end {
            let Some(e) = self.extent_at(pos) else {
                return Err(past_end(pos, buf.len().saturating_sub(done), self.size));
            };
            let in_ext = pos.saturating_sub(e.start);
            let n = usize::try_from(e.len.saturating_sub(in_ext).min(end.saturating_sub(pos)))
                .unwrap_or(0);
            if n == 0 {
                return Err(past_end(pos, buf.len().saturating_sub(done), self.size));
            }
            let Some(dst) = done.checked_add(n).and_then(|stop| buf.get_mut(done..stop)) else {
                return Err(past_end(pos, n, self.size));
            };
            match &e.backing {
                Backing::Zero => dst.fill(0),
                Backing::Flat { file, offset } => {
                    let at = offset.saturating_add(in_ext);
                    file.read_exact_at(at, dst).map_err(|err| {
                        std::io::Error::new(
                            err.kind(),
                            format!(
                                "{}: VMDK flat extent {}: {err}",
                                self.name,
                                e.file.as_deref().unwrap_or("?")
                            ),
                        )
                    })?;
                }
                Backing::Sparse(sp) => {
                    let start = e.start;
                    sp.read(in_ext, dst, &mut |off, d| {
                        self.read_parent(start.saturating_add(off), d)
                    })?;
                }
            }
            pos = pos.saturating_add(n as u64);
            done = done.saturating_add(n);
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        let e = self.extent_at(offset)?;
        let in_ext = offset.checked_sub(e.start)?;
        let len = len.min(e.len.checked_sub(in_ext)?);
        match &e.backing {
            Backing::Flat { file, offset } => file.host_extent(offset.checked_add(in_ext)?, len),
            Backing::Sparse(sp) => sp.host_extent(in_ext, len),
            Backing::Zero => None,
        }
    }
}

/// Open one disk of a chain and, below it, its parents.
fn open_chain(
    files: &dyn BackingFiles,
    path: &Path,
    depth: usize,
    seen: &mut Vec<(u64, u64)>,
) -> Result<Vmdk> {
    let id = files.identity(path)?;
    if seen.contains(&id) {
        return Err(Error::corrupt(
            format!("{}: VMDK parentFileNameHint", path.display()),
            0,
            "the snapshot chain loops back to this file",
        ));
    }
    seen.push(id);
    let file = files.open(path)?;
    let name = path.display().to_string();
    let mut v = open_file(files, path, file, &name)?;
    let d = v.descriptor.clone();
    if !d.has_parent() {
        return Ok(v);
    }
    let Some(hint) = d.parent_hint.clone() else {
        v.problems.push(format!(
            "{name}: VMDK descriptor: parentCID {:08x} but no parentFileNameHint; the parent's bytes read as zeros",
            d.parent_cid.unwrap_or(0)
        ));
        return Ok(v);
    };
    if depth >= MAX_CHAIN_DEPTH {
        return Err(Error::Unsupported(format!(
            "{name}: VMDK snapshot chain deeper than {MAX_CHAIN_DEPTH} disks"
        )));
    }
    let ppath = files.locate(path, &hint).map_err(|looked| {
        Error::NotFound(format!(
            "{name}: VMDK parent disk {} (parentFileNameHint; looked for {looked})",
            crate::text::escape_str(&hint)
        ))
    })?;
    let parent = open_chain(files, &ppath, depth.saturating_add(1), seen)?;
    let pcid = parent.descriptor.cid;
    if let (Some(want), Some(have)) = (d.parent_cid, pcid)
        && want != have
    {
        v.problems.push(format!(
            "{name}: VMDK descriptor: parentCID {want:08x} but the parent {} has CID {have:08x}: the parent was changed after this snapshot was taken, so bytes this disk does not hold may be newer than the snapshot",
            ppath.display()
        ));
    }
    let mut chain = vec![ChainLink {
        name: hint,
        path: ppath,
        create_type: parent.descriptor.create_type.clone(),
        size: parent.size,
    }];
    chain.extend(parent.chain.iter().cloned());
    v.problems.extend(parent.problems());
    v.chain = chain;
    v.parent = Some(Arc::new(parent));
    Ok(v)
}

/// Open one VMDK file (descriptor or sparse) and its extents, no parents.
fn open_file(
    files: &dyn BackingFiles,
    path: &Path,
    file: Arc<dyn ReadAt>,
    name: &str,
) -> Result<Vmdk> {
    let size = file.size();
    let head = read_vec(&*file, 0, size.min(512), 512).with_path(path)?;
    if head.starts_with(&sparse::MAGIC) {
        return open_sparse_file(file, name);
    }
    if head.starts_with(b"COWD") {
        return Err(Error::Unsupported(format!(
            "{name}: VMFS sparse (COWD) extents are not supported; convert a copy with `qemu-img convert -O raw`"
        )));
    }
    if !descriptor::looks_like_descriptor(&head) {
        return Err(Error::corrupt(
            format!("{name}: VMDK file"),
            0,
            "neither a sparse extent (magic KDMV) nor descriptor text (# Disk DescriptorFile)",
        ));
    }
    let text = read_vec(&*file, 0, size, descriptor::MAX_DESCRIPTOR)
        .map_err(|e| Error::corrupt(format!("{name}: VMDK descriptor"), 0, e.to_string()))?;
    let d = descriptor::parse(&text, name, 0)?;
    let mut extents = Vec::with_capacity(d.extents.len());
    let mut start = 0u64;
    for line in &d.extents {
        let len = line.sectors.saturating_mul(512);
        let ext_name = line.file.clone();
        let backing = match line.kind {
            ExtentKind::Zero => Backing::Zero,
            ExtentKind::Other => {
                return Err(Error::Unsupported(format!(
                    "{name}: VMDK descriptor at byte {}: {} extents are not supported",
                    line.at, line.type_name
                )));
            }
            ExtentKind::Flat | ExtentKind::Sparse => {
                let fname = ext_name.as_deref().unwrap_or_default();
                let epath = files.locate(path, fname).map_err(|looked| {
                    Error::NotFound(format!(
                        "{name}: VMDK extent {} (descriptor line at byte {}; looked for {looked})",
                        crate::text::escape_str(fname),
                        line.at
                    ))
                })?;
                let ef = files.open(&epath)?;
                if line.kind == ExtentKind::Flat {
                    let offset = line.offset.saturating_mul(512);
                    let need = offset.saturating_add(len);
                    if need > ef.size() {
                        return Err(Error::corrupt(
                            format!("{name}: VMDK flat extent {}", epath.display()),
                            line.at,
                            format!(
                                "the descriptor line asks for {need} bytes, the file has {}: it is truncated",
                                ef.size()
                            ),
                        ));
                    }
                    Backing::Flat { file: ef, offset }
                } else {
                    Backing::Sparse(Box::new(SparseExtent::open(
                        ef,
                        &epath.display().to_string(),
                    )?))
                }
            }
        };
        extents.push(Extent {
            start,
            len,
            type_name: line.type_name.clone(),
            file: ext_name,
            backing,
        });
        start = start.checked_add(len).ok_or_else(|| {
            Error::corrupt(
                format!("{name}: VMDK descriptor"),
                line.at,
                "the extents add up past 2^64 bytes",
            )
        })?;
    }
    Ok(Vmdk {
        name: name.to_string(),
        size: start,
        descriptor: d,
        extents,
        parent: None,
        chain: Vec::new(),
        problems: Vec::new(),
    })
}

/// A monolithic sparse or stream-optimized file: one sparse extent, the
/// descriptor embedded in it.
fn open_sparse_file(file: Arc<dyn ReadAt>, name: &str) -> Result<Vmdk> {
    let sp = SparseExtent::open(file, name)?;
    let capacity = sp.capacity_bytes();
    let mut problems = Vec::new();
    let d = match sp.embedded_descriptor()? {
        Some((at, text)) => match descriptor::parse(&text, name, at) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!(
                    "{e}; the disk is read from the sparse header alone (no parent)"
                ));
                Descriptor::default()
            }
        },
        None => Descriptor::default(),
    };
    // The extent is this file, whatever name its descriptor line gives.
    let (type_name, fname) = match d.extents.first() {
        Some(l) => (l.type_name.clone(), l.file.clone()),
        None => ("SPARSE".to_string(), None),
    };
    if d.extents.len() > 1 {
        return Err(Error::Unsupported(format!(
            "{name}: VMDK embedded descriptor lists {} extents; a sparse file holds one",
            d.extents.len()
        )));
    }
    if let Some(dsize) = d.size().filter(|&s| s != capacity && !d.extents.is_empty()) {
        problems.push(format!(
            "{name}: VMDK embedded descriptor gives {dsize} bytes, the sparse header's capacity {capacity}; the header is followed"
        ));
    }
    Ok(Vmdk {
        name: name.to_string(),
        size: capacity,
        descriptor: d,
        extents: vec![Extent {
            start: 0,
            len: capacity,
            type_name,
            file: fname,
            backing: Backing::Sparse(Box::new(sp)),
        }],
        parent: None,
        chain: Vec::new(),
        problems,
    })
}
