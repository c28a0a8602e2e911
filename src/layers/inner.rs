//! Disk images stored as files in a filesystem of the layout (a Proxmox
//! host's `/var/lib/vz/images/100/vm-100-disk-0.qcow2`), opened as disks
//! without copying them out.
//!
//! [`open_image_file`] reads the file through the filesystem reader
//! ([`crate::image::inner`]: qcow2 backing files resolve inside the same
//! filesystem) and refuses a file that holds no disk, saying what it holds.
//! The disk it gives is scanned alone (`--open`: its volumes get the names
//! they would have if the image were opened as IMAGE), or added under the
//! volume holding the filesystem ([`Layout::add_image_file`], the TUI): its
//! volumes are then named `<holder>:<file name>/<local name>`
//! (`p1:vm-100-disk-0.qcow2/p1`; the whole path when two images of one
//! name are opened from the same volume).

use std::sync::Arc;

use super::{
    ContentKind, DiskOrigin, DiskSource, Layout, ScanOptions, VolumeId, add_disk, nested,
    partition, probe, scan_level,
};
use crate::error::{Error, Result};
use crate::fs::FsView;
use crate::image::{self, ImageFormat};
use crate::io::ReadAt;
use crate::text::escape;

/// What a file that holds no disk holds, in words ("text", "an ELF
/// object"), or `None` when its bytes start like a disk: a partition table,
/// an LVM PV, a filesystem or another content the probe knows.
pub fn not_a_disk(src: &dyn ReadAt) -> Option<String> {
    let size = src.size();
    if size == 0 {
        return Some("nothing (it is empty)".into());
    }
    if size < 512 {
        return Some(format!(
            "only {} bytes, too few for a partition table or a filesystem",
            size
        ));
    }
    if matches!(partition::read(src), Ok(Some(_))) {
        return None;
    }
    let content = probe::probe(src);
    if !matches!(
        content.kind,
        ContentKind::Unknown | ContentKind::Zeros | ContentKind::Unreadable
    ) {
        return None;
    }
    let mut head = vec![0u8; size.min(4096) as usize];
    if let Err(e) = src.read_exact_at(0, &mut head) {
        return Some(format!("bytes that cannot be read ({e})"));
    }
    Some(describe_head(&head, content.kind))
}

/// Whether `src` (a file's bytes) holds a disk image: a qcow2, or a raw
/// disk starting with a partition table, an LVM PV or a filesystem.
pub fn is_disk_image(src: &dyn ReadAt) -> bool {
    let mut head = [0u8; 8];
    if src.size() >= 8 && src.read_exact_at(0, &mut head).is_ok() && image::qcow2::has_magic(&head)
    {
        return true;
    }
    not_a_disk(src).is_none()
}

/// Words for what a file starting with `head` holds, when it is no disk.
fn describe_head(head: &[u8], kind: ContentKind) -> String {
    let magic: [(&[u8], &str); 6] = [
        (b"\x7fELF", "an ELF object"),
        (b"\x1f\x8b", "gzip-compressed data"),
        (b"\xfd7zXZ\0", "xz-compressed data"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
        (b"PK\x03\x04", "a zip archive"),
        (b"LPKSHHRH", "a systemd journal"),
    ];
    if let Some((_, what)) = magic.iter().find(|(m, _)| head.starts_with(m)) {
        return (*what).to_string();
    }
    if kind == ContentKind::Zeros || head.iter().all(|&b| b == 0) {
        return "only zeros where a partition table or filesystem would start".into();
    }
    // Text: valid UTF-8 (a character cut at the end of the sample is
    // fine) without control characters other than tab, newline, CR, FF.
    let text = match std::str::from_utf8(head) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    if text.is_some_and(|t| {
        t.chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
    }) {
        return "text".into();
    }
    "data with no partition table, LVM PV or filesystem at its start".into()
}

/// Open the disk image stored at `path` in `fs`, the filesystem of volume
/// `holder` of `layout` (for a guest path, the volume the path lies on),
/// as a disk to scan. Errors: the file is missing or no regular file, a
/// backing file is missing (named, with where it was looked for), or the
/// file holds no disk (`/etc/passwd is not a disk image: it holds text`).
pub fn open_image_file(
    layout: &Layout,
    holder: VolumeId,
    fs: Arc<dyn FsView>,
    path: &[u8],
    opts: &image::OpenOptions,
) -> Result<DiskSource> {
    let img = image::inner::open_in_fs(fs, path, opts)?;
    let shown = escape(img.path.as_os_str().as_encoded_bytes());
    if img.format == ImageFormat::Raw
        && let Some(what) = not_a_disk(&*img.source)
    {
        return Err(Error::Invalid(format!(
            "{shown} is not a disk image: it holds {what}"
        )));
    }
    Ok(DiskSource {
        origin: DiskOrigin::File {
            path: shown,
            volume: layout.volume(holder).name.clone(),
            on: layout.origins_of(holder),
        },
        source: img.source,
        format: img.format,
        format_details: img.details,
        snapshot: img.snapshot,
        problems: img.problems.into_iter().map(Into::into).collect(),
    })
}

impl Layout {
    /// Add `src` (from [`open_image_file`] on volume `holder`'s
    /// filesystem) as a disk of this layout under `holder`, and scan it:
    /// its volumes are named `<holder>:<file name>/<local name>` and nest under
    /// `holder` in the tree. Returns the new volumes' ids (none when the
    /// bound on nested disks is reached: the reason goes into the holder's
    /// problems).
    pub fn add_image_file(&mut self, holder: VolumeId, src: DiskSource) -> Vec<VolumeId> {
        let depth = nested::depth(self, holder);
        if depth >= nested::MAX_DEPTH {
            if let Some(v) = self.volumes.get_mut(holder.0) {
                v.problems.push(
                    format!(
                        "holds a disk image nested {} disks deep: not opened (the bound is {})",
                        depth + 1,
                        nested::MAX_DEPTH
                    )
                    .into(),
                );
            }
            return Vec::new();
        }
        // `<holder>:<file name>/`, or the whole path when another image
        // of that name was opened from the same volume already.
        let holder_name = &self.volume(holder).name;
        let short = format!("{holder_name}:{}/", src.origin.short_name());
        let prefix = if self.volumes.iter().any(|v| v.name.starts_with(&short)) {
            match &src.origin {
                DiskOrigin::File { path, .. } => format!("{holder_name}:{path}/"),
                other => format!("{holder_name}:{other}/"),
            }
        } else {
            short
        };
        let first = self.volumes.len();
        let d = add_disk(self, src, Some(holder));
        scan_level(self, &[d], &prefix, ScanOptions::default());
        nested::scan_nested_from(self, first, None);
        super::check_volumes_from(self, first);
        (first..self.volumes.len()).map(VolumeId).collect()
    }
}

impl Layout {
    /// Open again, in this layout, the disk images stored as files that
    /// `before` had opened ([`Layout::add_image_file`]): `self` is a new
    /// scan of the same disks ([`super::rescan`], the browser's unlock of
    /// a LUKS volume), which finds only what the disks themselves hold.
    /// Each goes under the volume of the same name, in the order they were
    /// opened (an image inside another image's filesystem after it), over
    /// the same byte source. Returns the files whose volume is gone.
    pub fn keep_image_files(&mut self, before: &Layout) -> Vec<String> {
        let mut gone = Vec::new();
        for d in &before.disks {
            let DiskOrigin::File { volume, .. } = &d.origin else {
                continue;
            };
            if d.parent.is_none() || self.disks.iter().any(|x| x.origin == d.origin) {
                continue;
            }
            let Some(holder) = self
                .volumes
                .iter()
                .find(|v| v.name == *volume)
                .map(|v| v.id)
            else {
                gone.push(d.origin.to_string());
                continue;
            };
            let first_disk = self.disks.len();
            self.add_image_file(holder, d.source_again());
            // The table's problems were in the first scan's list too.
            if let Some(again) = self.disks.get_mut(first_disk) {
                let mut seen = std::collections::HashSet::new();
                again.problems.retain(|p| seen.insert(p.clone()));
            }
        }
        gone
    }

    /// The volumes read from disk `disk`: on it, or on disks nested in
    /// its volumes (an image file's partitions, its VG's LVs, and so on).
    pub fn volumes_from_disk(&self, disk: crate::io::DiskId) -> Vec<VolumeId> {
        self.volumes
            .iter()
            .filter(|v| {
                let mut at = nested::disk_of(self, v.id);
                for _ in 0..=nested::MAX_DEPTH {
                    let Some(d) = at else { return false };
                    if d == disk {
                        return true;
                    }
                    at = self
                        .disks
                        .get(d.0)
                        .and_then(|d| d.parent)
                        .and_then(|p| nested::disk_of(self, p));
                }
                false
            })
            .map(|v| v.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_a_file_holds() {
        let text = b"root:x:0:0:root:/root:/bin/bash\n".repeat(40);
        assert_eq!(not_a_disk(&text).as_deref(), Some("text"));
        let mut elf = vec![0u8; 1024];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[100] = 3;
        assert_eq!(not_a_disk(&elf).as_deref(), Some("an ELF object"));
        assert!(not_a_disk(&vec![0u8; 0]).unwrap().contains("empty"));
        assert!(not_a_disk(&vec![0u8; 4096]).unwrap().contains("zeros"));
        assert!(not_a_disk(&vec![7u8; 100]).unwrap().contains("100 bytes"));
    }
}
