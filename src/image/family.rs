//! Opening VHD, VHDX and VDI images, with the parents of differencing disks.
//!
//! A parent is looked for where the child says (VHD parent locators, VHDX
//! `relative_path`/`absolute_win32_path`; Windows paths have their `\`
//! turned into `/`, and an absolute Windows path is also tried as a bare
//! file name beside the child), in the same namespace as the child
//! ([`BackingFiles`]: the host's directories, or a filesystem vmrescue
//! reads itself). A VDI names its parent by UUID only: its siblings are
//! searched. The parent's identity is checked (VHD: the parent's footer
//! UUID; VHDX: its data write GUID; VDI: its creation UUID) and chains are
//! bounded in depth and checked for loops.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ImageFormat;
use super::extents::{guid_text, uuid_text};
use super::qcow2::{BackingFiles, ChainLink, MAX_BACKING_DEPTH};
use super::{vdi, vhd, vhdx};
use crate::error::{Error, Result};
use crate::io::ReadAt;

/// Which of the three formats the first and last 512 bytes of a file show.
pub fn detect(head: &[u8], tail: &[u8]) -> Option<ImageFormat> {
    if vhdx::has_magic(head) {
        Some(ImageFormat::Vhdx)
    } else if vhd::has_magic(head, tail) {
        Some(ImageFormat::Vhd)
    } else if vdi::has_magic(head) {
        Some(ImageFormat::Vdi)
    } else {
        None
    }
}

/// An opened image of one of the three formats.
pub struct Opened {
    /// The virtual disk.
    pub source: Arc<dyn ReadAt>,
    /// Its format.
    pub format: ImageFormat,
    /// Facts for display.
    pub details: Vec<String>,
    /// Damage found (the parents' included).
    pub problems: Vec<String>,
    /// The parents below, nearest first.
    pub chain: Vec<ChainLink>,
    /// The ID a child names this image by.
    id: String,
}

/// Open the image at `path` in `files` with its parents.
pub fn open_in(files: &dyn BackingFiles, path: &Path) -> Result<Opened> {
    open_chain(files, path, 0, &mut Vec::new())
}

type Seen = Vec<((u64, u64), PathBuf)>;

fn open_chain(
    files: &dyn BackingFiles,
    path: &Path,
    depth: usize,
    seen: &mut Seen,
) -> Result<Opened> {
    let ident = files.identity(path)?;
    if let Some((_, first)) = seen.iter().find(|(i, _)| *i == ident) {
        let names: Vec<String> = seen.iter().map(|(_, p)| p.display().to_string()).collect();
        return Err(Error::Invalid(format!(
            "parent chain loops: {} is {} again ({} → {})",
            path.display(),
            first.display(),
            names.join(" → "),
            path.display()
        )));
    }
    seen.push((ident, path.to_path_buf()));
    let file = files.open(path)?;
    let name = path.display().to_string();
    let size = file.size();
    let mut head = vec![0u8; size.min(512) as usize];
    let mut tail = vec![0u8; size.min(512) as usize];
    file.read_exact_at(0, &mut head)
        .and_then(|()| file.read_exact_at(size - tail.len() as u64, &mut tail))
        .map_err(|e| Error::io(name.clone(), e))?;
    let hop = Hop {
        files,
        path,
        depth,
        seen,
    };
    match detect(&head, &tail) {
        Some(ImageFormat::Vhd) => hop.finish(vhd::Vhd::from_source(file, &name)?, ImageFormat::Vhd),
        Some(ImageFormat::Vhdx) => {
            hop.finish(vhdx::Vhdx::from_source(file, &name)?, ImageFormat::Vhdx)
        }
        Some(ImageFormat::Vdi) => hop.finish(vdi::Vdi::from_source(file, &name)?, ImageFormat::Vdi),
        _ => Err(Error::Invalid(format!(
            "{name}: not a VHD, VHDX or VDI image"
        ))),
    }
}

/// What the three readers tell the chain opener.
trait Child: ReadAt + Sized + 'static {
    /// Details and problems for display.
    fn facts(&self) -> (Vec<String>, Vec<String>);
    /// For a differencing disk: where its parent may be (names relative to
    /// the child's folder) and the parent's expected ID.
    fn wants(&self, files: &dyn BackingFiles, path: &Path) -> Option<(Vec<String>, String)>;
    /// Read absent blocks from `parent`.
    fn attach(&mut self, parent: Arc<dyn ReadAt>);
    /// The ID a child names this image by.
    fn id(&self) -> String;
}

impl Child for vhd::Vhd {
    fn facts(&self) -> (Vec<String>, Vec<String>) {
        (self.details(), self.problems())
    }
    fn wants(&self, _: &dyn BackingFiles, _: &Path) -> Option<(Vec<String>, String)> {
        let h = self.dynamic_header()?;
        (self.footer().disk_type == vhd::DiskType::Differencing)
            .then(|| (self.parent_names(), uuid_text(&h.parent_uuid)))
    }
    fn attach(&mut self, parent: Arc<dyn ReadAt>) {
        self.set_parent(parent);
    }
    fn id(&self) -> String {
        uuid_text(&self.footer().uuid)
    }
}

impl Child for vhdx::Vhdx {
    fn facts(&self) -> (Vec<String>, Vec<String>) {
        (self.details(), self.problems())
    }
    fn wants(&self, _: &dyn BackingFiles, _: &Path) -> Option<(Vec<String>, String)> {
        self.metadata().has_parent.then(|| {
            (
                self.parent_names(),
                self.parent_linkage().unwrap_or_default(),
            )
        })
    }
    fn attach(&mut self, parent: Arc<dyn ReadAt>) {
        self.set_parent(parent);
    }
    fn id(&self) -> String {
        guid_text(&self.header().data_write_guid)
    }
}

impl Child for vdi::Vdi {
    fn facts(&self) -> (Vec<String>, Vec<String>) {
        (self.details(), self.problems())
    }
    fn wants(&self, files: &dyn BackingFiles, path: &Path) -> Option<(Vec<String>, String)> {
        if self.header().kind != vdi::VdiType::Differencing {
            return None;
        }
        let names = files
            .siblings(path)
            .into_iter()
            .filter(|p| p.as_path() != path)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        Some((names, guid_text(&self.header().parent_uuid)))
    }
    fn attach(&mut self, parent: Arc<dyn ReadAt>) {
        self.set_parent(parent);
    }
    fn id(&self) -> String {
        guid_text(&self.header().uuid)
    }
}

/// Where the chain opener is: the namespace, the image, its depth and the
/// images above it.
struct Hop<'a> {
    files: &'a dyn BackingFiles,
    path: &'a Path,
    depth: usize,
    seen: &'a mut Seen,
}

impl Hop<'_> {
    /// Open the parent of `v` (if it has one) and give the result.
    fn finish<C: Child>(self, mut v: C, format: ImageFormat) -> Result<Opened> {
        let (mut details, mut problems) = v.facts();
        let mut chain = Vec::new();
        if let Some((names, want)) = v.wants(self.files, self.path) {
            if self.depth + 1 > MAX_BACKING_DEPTH {
                return Err(Error::Unsupported(format!(
                    "{}: {} parent chain deeper than {MAX_BACKING_DEPTH} images",
                    self.path.display(),
                    format.name()
                )));
            }
            let kind = match format {
                ImageFormat::Vhdx => "VHDX",
                ImageFormat::Vdi => "VDI",
                _ => "VHD",
            };
            let p = open_parent(
                self.files, self.path, &names, &want, self.depth, self.seen, kind,
            )?;
            v.attach(Arc::clone(&p.1.source));
            merge(&mut details, &mut problems, &mut chain, p);
        }
        let id = v.id();
        Ok(Opened {
            source: Arc::new(v),
            format,
            details,
            problems,
            chain,
            id,
        })
    }
}

/// Add a parent's facts below its child's.
fn merge(
    details: &mut Vec<String>,
    problems: &mut Vec<String>,
    chain: &mut Vec<ChainLink>,
    (link, p): (ChainLink, Opened),
) {
    details.push(format!(
        "parent {} ({}, {} bytes)",
        link.path.display(),
        link.format,
        link.size
    ));
    problems.extend(p.problems);
    chain.push(link);
    chain.extend(p.chain);
}

/// A Windows or Mac path as stored, in the forms worth trying: as it is
/// (with `\` as `/`), and, for an absolute or drive path, its file name alone.
fn candidates(stored: &str) -> Vec<String> {
    let s = stored.trim_end_matches('\0').replace('\\', "/");
    let s = s.strip_prefix("./").unwrap_or(&s).to_string();
    let mut out = Vec::new();
    let drive = s.as_bytes().get(1) == Some(&b':');
    if !drive && !s.is_empty() {
        out.push(s.clone());
    }
    let base = s.rsplit('/').next().filter(|b| !b.is_empty() && *b != s);
    let after_drive = s.get(2..).filter(|r| drive && !r.is_empty());
    if let Some(name) = base.or(after_drive) {
        out.push(name.trim_start_matches('/').to_string());
    }
    out
}

/// The creation UUID of the VDI at `path`, if it is one.
fn vdi_uuid(files: &dyn BackingFiles, path: &Path) -> Option<String> {
    let f = files.open(path).ok()?;
    let mut head = vec![0u8; 0x200];
    f.read_exact_at(0, &mut head).ok()?;
    let h = vdi::Header::decode(&head, "").ok()?;
    Some(guid_text(&h.uuid))
}

/// Open the first of `names` that exists and whose ID is `want`.
fn open_parent(
    files: &dyn BackingFiles,
    child: &Path,
    names: &[String],
    want: &str,
    depth: usize,
    seen: &Seen,
    kind: &str,
) -> Result<(ChainLink, Opened)> {
    let mut tried: Vec<String> = Vec::new();
    let mut opened: Vec<(u64, u64)> = Vec::new();
    for stored in names {
        for name in candidates(stored) {
            let path = match files.locate(child, &name) {
                Ok(p) => p,
                Err(where_) => {
                    tried.push(format!("{name}: not found ({where_})"));
                    continue;
                }
            };
            let Ok(ident) = files.identity(&path) else {
                continue;
            };
            if opened.contains(&ident) {
                continue;
            }
            opened.push(ident);
            // A VDI's siblings are candidates by the dozen: look at each
            // one's UUID before opening it (and its own parents).
            if kind == "VDI" && vdi_uuid(files, &path).as_deref() != Some(want) {
                continue;
            }
            let mut seen = seen.clone();
            match open_chain(files, &path, depth + 1, &mut seen) {
                Ok(p) if want.is_empty() || p.id.eq_ignore_ascii_case(want) => {
                    let link = ChainLink {
                        name: stored.clone(),
                        path,
                        format: p.format.name(),
                        size: p.source.size(),
                    };
                    return Ok((link, p));
                }
                Ok(p) => tried.push(format!(
                    "{}: its ID is {}, not {want}",
                    path.display(),
                    p.id
                )),
                Err(e @ Error::Invalid(_)) if e.to_string().contains("loops") => return Err(e),
                Err(e) => tried.push(format!("{}: {e}", path.display())),
            }
        }
    }
    Err(Error::NotFound(format!(
        "{}: the parent of this differencing {kind} image (ID {want}){}",
        child.display(),
        if tried.is_empty() {
            " is named nowhere".to_string()
        } else {
            format!("; tried {}", tried.join("; "))
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_become_candidates() {
        assert_eq!(candidates(".\\base.vhd"), ["base.vhd"]);
        assert_eq!(
            candidates("..\\vms\\base.vhd"),
            ["../vms/base.vhd", "base.vhd"]
        );
        assert_eq!(candidates("C:\\vms\\base.vhdx"), ["base.vhdx"]);
        assert_eq!(
            candidates("/Users/a/base.vhd"),
            ["/Users/a/base.vhd", "base.vhd"]
        );
        assert_eq!(candidates("base.vhd\0\0"), ["base.vhd"]);
    }
}
