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
    let deeper = |what: &str| -> Result<()> {
        if depth + 1 > MAX_BACKING_DEPTH {
            return Err(Error::Unsupported(format!(
                "{name}: {what} chain deeper than {MAX_BACKING_DEPTH} images"
            )));
        }
        Ok(())
    };
    match detect(&head, &tail) {
        Some(ImageFormat::Vhd) => {
            let mut v = vhd::Vhd::from_source(file, &name)?;
            let mut details = v.details();
            let mut problems = v.problems();
            let mut chain = Vec::new();
            if v.footer().disk_type == vhd::DiskType::Differencing {
                deeper("VHD parent")?;
                let want = v
                    .dynamic_header()
                    .map(|h| uuid_text(&h.parent_uuid))
                    .unwrap_or_default();
                let names = v.parent_names();
                let p = open_parent(files, path, &names, &want, depth, seen, "VHD")?;
                v.set_parent(Arc::clone(&p.1.source));
                merge(&mut details, &mut problems, &mut chain, p);
            }
            let id = uuid_text(&v.footer().uuid);
            Ok(Opened {
                source: Arc::new(v),
                format: ImageFormat::Vhd,
                details,
                problems,
                chain,
                id,
            })
        }
        Some(ImageFormat::Vhdx) => {
            let mut v = vhdx::Vhdx::from_source(file, &name)?;
            let mut details = v.details();
            let mut problems = v.problems();
            let mut chain = Vec::new();
            if v.metadata().has_parent {
                deeper("VHDX parent")?;
                let want = v.parent_linkage().unwrap_or_default();
                let names = v.parent_names();
                let p = open_parent(files, path, &names, &want, depth, seen, "VHDX")?;
                v.set_parent(Arc::clone(&p.1.source));
                merge(&mut details, &mut problems, &mut chain, p);
            }
            let id = guid_text(&v.header().data_write_guid);
            Ok(Opened {
                source: Arc::new(v),
                format: ImageFormat::Vhdx,
                details,
                problems,
                chain,
                id,
            })
        }
        Some(ImageFormat::Vdi) => {
            let mut v = vdi::Vdi::from_source(file, &name)?;
            let mut details = v.details();
            let mut problems = v.problems();
            let mut chain = Vec::new();
            if v.header().kind == vdi::VdiType::Differencing {
                deeper("VDI parent")?;
                let want = guid_text(&v.header().parent_uuid);
                let names: Vec<String> = files
                    .siblings(path)
                    .into_iter()
                    .filter(|p| p.as_path() != path)
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                let p = open_parent(files, path, &names, &want, depth, seen, "VDI")?;
                v.set_parent(Arc::clone(&p.1.source));
                merge(&mut details, &mut problems, &mut chain, p);
            }
            let id = guid_text(&v.header().uuid);
            Ok(Opened {
                source: Arc::new(v),
                format: ImageFormat::Vdi,
                details,
                problems,
                chain,
                id,
            })
        }
        _ => Err(Error::Invalid(format!(
            "{name}: not a VHD, VHDX or VDI image"
        ))),
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
