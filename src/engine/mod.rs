//! Engines: how a volume's filesystem is read.
//!
//! The userspace engine parses the filesystem itself from the volume's bytes
//! (no root, nothing mounted). The kernel engine (root) maps the same
//! [`crate::io::Mapping`] with device-mapper over a read-only loop device and
//! mounts it read-only.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::FsView;
use crate::layers::{Layout, VolumeId, VolumeKind};

/// Options for opening a filesystem.
#[derive(Debug, Clone, Default)]
pub struct FsOptions {
    /// Show the on-disk state: do not replay the journal in memory.
    pub no_journal: bool,
}

/// Open the filesystem of volume `id` with the userspace engine.
pub fn open_fs(layout: &Layout, id: VolumeId, opts: &FsOptions) -> Result<Arc<dyn FsView>> {
    let v = layout.volume(id);
    if !v.is_filesystem() {
        return Err(Error::Invalid(format!(
            "{} holds {}, not a filesystem vmrescue can browse",
            v.name,
            v.content.describe()
        )));
    }
    if v.content.kind.is_ext() {
        let fs = crate::fs::ext::Ext::open(layout.open_volume(id), opts)?;
        return Ok(Arc::new(fs));
    }
    Err(Error::Unsupported(format!(
        "{}: reading {} filesystems in userspace",
        v.name,
        v.content.kind.name()
    )))
}

/// The volume a command works on: the one named with `--volume`, else the
/// guest root, else the only filesystem; otherwise an error listing the choices.
pub fn select_volume(layout: &Layout, spec: Option<&str>) -> Result<VolumeId> {
    if let Some(spec) = spec {
        return layout.find_volume(spec);
    }
    let roots: Vec<VolumeId> = layout
        .volumes
        .iter()
        .filter(|v| v.guest.os.is_some() && v.is_filesystem())
        .map(|v| v.id)
        .collect();
    if let [one] = roots.as_slice() {
        return Ok(*one);
    }
    let fss: Vec<VolumeId> = layout.filesystems().map(|v| v.id).collect();
    if let [one] = fss.as_slice() {
        return Ok(*one);
    }
    let choices: Vec<String> = layout
        .filesystems()
        .map(|v| {
            let mut s = v.name.clone();
            if let Some(m) = &v.guest.mountpoint {
                s.push_str(&format!(" ({m})"));
            }
            if let VolumeKind::LogicalVolume { .. } = v.kind {
                s.push_str(&format!(" [{}]", v.content.kind.name()));
            }
            s
        })
        .collect();
    if choices.is_empty() {
        return Err(Error::NotFound(format!(
            "a filesystem vmrescue can browse; the volumes are: {}",
            layout.volume_choices()
        )));
    }
    Err(Error::Invalid(format!(
        "more than one filesystem: choose one with --volume ({})",
        choices.join(", ")
    )))
}
