//! Opening a guest filesystem for `ls`, `cat` and `cp`.
//!
//! These commands take `IMAGE` and then guest paths (and `cp` a host
//! destination). With `--demo` there is no `IMAGE`: every positional
//! argument is a path. That is why they read their positionals themselves
//! instead of flattening [`Target`], whose `IMAGE` conflicts with `--demo`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use vmrescue::engine::{Engines, select};
use vmrescue::fs::FsOptions;
use vmrescue::fs::FsView;
use vmrescue::fs::host::HostFs;
use vmrescue::guest::{MountState, Namespace};
use vmrescue::layers::{Layout, VolumeId};
use vmrescue::text::{escape, escape_str};

use super::{SourceArgs, Target, open_found_layout, report};

/// Options naming the disks and the volume.
#[derive(Args, Debug, Clone)]
pub(super) struct GuestArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Read this volume alone, with its own paths (`p1`, `vg/lv`,
    /// `/dev/vg/lv`, `UUID=...`, a Windows guest's drive `C:`, where
    /// `C:\...` paths then start), or one btrfs subvolume of it
    /// (`p2@/@home`, `p2@home`, `p2@id=257`). Default: the guest as it boots
    /// (its root with the volumes its /etc/fstab mounts), else the only
    /// filesystem.
    #[arg(long, value_name = "V")]
    pub volume: Option<String>,
    /// Show the on-disk state: do not replay the filesystem journal (ext3/4
    /// journal, XFS log, btrfs log tree) in memory.
    #[arg(long)]
    pub no_journal: bool,
}

/// An open guest filesystem.
pub(super) struct Guest {
    /// The filesystem.
    pub fs: Arc<dyn FsView>,
    /// The filesystem reported problems (damaged structures, bad
    /// checksums): the command's exit code is at least 1.
    pub damaged: bool,
    /// With `--volume` naming the guest root: the other volumes the guest
    /// mounts in it (mountpoint, volume name), from its fstab.
    pub mounts: Vec<(Vec<u8>, String)>,
    /// Without `--volume`, on a guest: its mount table and merged tree
    /// (`fs` is that tree).
    pub namespace: Option<Namespace>,
    /// With `--volume` naming a volume a Windows guest gives a drive
    /// letter: that letter's root (`C:\`), where `C:\...` paths start.
    drive: Option<String>,
    /// The prefix of problems (the volume's name; none for the merged tree,
    /// whose problems name their volume) and the problems already reported,
    /// to report those found later (while reading) at the end.
    reported: (Option<String>, Vec<vmrescue::problem::Problem>),
    /// Kept open for the filesystem's lifetime.
    _layout: Option<Layout>,
}

impl Guest {
    /// A guest path as the user wrote it, in the tree's spelling: on a
    /// Windows guest, `C:\Users` is `/C:/Users`; in its volume C: opened
    /// alone, `/Users` ([`vmrescue::guest::operator_path`]).
    pub(super) fn guest_path(&self, p: &std::ffi::OsStr) -> OsString {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        OsString::from_vec(vmrescue::guest::operator_path(
            &*self.fs,
            self.namespace.as_ref(),
            self.drive.as_deref(),
            p.as_bytes(),
        ))
    }

    /// Report the problems the filesystem found after it was opened (while
    /// reading directories and files); whether it found any at all, which
    /// makes the command's exit code at least 1.
    pub(super) fn finish(&self) -> bool {
        let status = self.fs.status();
        let (name, before) = &self.reported;
        for p in status.problems.iter().filter(|p| !before.contains(p)) {
            report(&prefixed(name.as_deref(), &p.to_string()));
        }
        !status.problems.is_empty()
    }
}

impl GuestArgs {
    /// Split the positionals into the target (IMAGE unless `--demo`) and the rest.
    pub(super) fn split(
        &self,
        mut positionals: Vec<OsString>,
    ) -> Result<(Target, Vec<OsString>), String> {
        let image = if self.source.demo || self.source.vmid.is_some() {
            None
        } else if positionals.is_empty() {
            return Err("IMAGE is missing (or use --demo or --vmid)".into());
        } else {
            Some(PathBuf::from(positionals.remove(0)))
        };
        Ok((
            Target {
                image,
                source: self.source.clone(),
            },
            positionals,
        ))
    }

    /// Open the guest filesystem: the selected volume of the image, or, when
    /// IMAGE is a directory (a guest tree mounted or unpacked elsewhere),
    /// that directory. Notes and problems of the filesystem go to stderr
    /// when `notes`.
    pub(super) fn open(&self, target: &Target, notes: bool) -> Result<Guest, vmrescue::Error> {
        if let Some(dir) = target.image.as_ref().filter(|p| p.is_dir()) {
            if !target.source.disks.is_empty() || self.volume.is_some() {
                return Err(vmrescue::Error::Invalid(format!(
                    "{} is a directory: --disk and --volume do not apply",
                    dir.display()
                )));
            }
            return Ok(Guest {
                fs: Arc::new(HostFs::open(dir)?),
                damaged: false,
                mounts: Vec::new(),
                namespace: None,
                drive: None,
                reported: Default::default(),
                _layout: None,
            });
        }
        let engines = Engines::new(target.source.engine);
        let layout = open_found_layout(target, &engines)?;
        let sel = select(&layout, self.volume.as_deref())?;
        let id = sel.volume;
        let opts = FsOptions {
            no_journal: self.no_journal,
        };
        let is_root = layout.volume(id).guest.os.is_some();
        let (fs, namespace) =
            open_guest_or_volume(&layout, id, !sel.guest, sel.subvolume, &engines, &opts)?;
        let name = namespace
            .is_none()
            .then(|| escape_str(&layout.volume(id).name));
        let status = fs.status();
        if notes {
            // The mount table's own notes are said where they matter: for
            // the paths asked about (`not_here`), and in `layers`.
            let table = namespace.as_ref().map_or(&[][..], |ns| ns.notes());
            for n in status.notes.iter().filter(|n| !table.contains(n)) {
                report(&prefixed(name.as_deref(), n));
            }
        }
        for p in &status.problems {
            report(&prefixed(name.as_deref(), &p.to_string()));
        }
        let mounts = if namespace.is_none() && is_root && sel.subvolume.is_none() {
            layout
                .volumes
                .iter()
                .filter(|v| v.id != id)
                // The same guest's volumes: those on the same nested disk level.
                .filter(|v| layout.holder(v.id) == layout.holder(id))
                .filter_map(|v| {
                    let at = v.guest.mountpoint.as_ref()?;
                    (at.starts_with('/') && at != "/")
                        .then(|| (at.as_bytes().to_vec(), v.name.clone()))
                })
                .collect()
        } else {
            Vec::new()
        };
        // A Windows guest's volume opened alone: its drive letter.
        let drive =
            drive_letter(&layout, id).filter(|_| namespace.is_none() && sel.subvolume.is_none());
        Ok(Guest {
            fs,
            damaged: !status.problems.is_empty(),
            mounts,
            namespace,
            drive,
            reported: (name, status.problems),
            _layout: Some(layout),
        })
    }
}

/// The drive (`C:\`) a Windows guest gives volume `id`, whose own paths
/// then start at that drive's root; `None` for any other volume.
pub(super) fn drive_letter(layout: &Layout, id: VolumeId) -> Option<String> {
    layout
        .volume(id)
        .guest
        .mountpoint
        .clone()
        .filter(|m| !m.starts_with('/'))
}

/// The guest as it boots (its namespace, and the merged tree) when `id` is
/// a guest root and no volume was `named`; else volume `id` alone. The
/// kernel session (if the kernel engine serves a volume) lives as long as
/// the filesystem views hold it.
pub(super) fn open_guest_or_volume(
    layout: &Layout,
    id: VolumeId,
    named: bool,
    subvolume: Option<u64>,
    engines: &Engines,
    opts: &FsOptions,
) -> Result<(Arc<dyn FsView>, Option<Namespace>), vmrescue::Error> {
    if let Some(sub) = subvolume {
        let fs = engines.open_fs(layout, id, opts)?;
        return Ok((vmrescue::fs::rooted::subvolume_view(fs, sub)?, None));
    }
    if named || layout.volume(id).guest.os.is_none() {
        return Ok((engines.open_fs(layout, id, opts)?, None));
    }
    let ns = Namespace::build(layout, id, &|v| engines.open_fs(layout, v, opts));
    if let Some(MountState::Unreadable(why)) = ns.mounts().first().map(|m| &m.state) {
        return Err(vmrescue::Error::Unsupported(why.clone()));
    }
    Ok((ns.fs(), Some(ns)))
}

/// `text` escaped, after `name: ` when there is a name.
fn prefixed(name: Option<&str>, text: &str) -> String {
    match name {
        Some(n) => format!("{n}: {}", escape_str(text)),
        None => escape_str(text),
    }
}

impl Guest {
    /// With `--volume` naming the guest root: when guest path `path` is (or
    /// lies below) where the guest mounts another volume, the sentence that
    /// says which and how to read it: `/home is where vg_ta/lv_home is
    /// mounted; use --volume vg_ta/lv_home` (or no `--volume`).
    pub(super) fn mounted_elsewhere(&self, path: &[u8]) -> Option<String> {
        let parts = lexical(path);
        self.mounts
            .iter()
            .filter_map(|(at, volume)| {
                let at_parts = lexical(at);
                let rest = parts.strip_prefix(at_parts.as_slice())?;
                Some((at_parts.len(), at, volume, rest))
            })
            .max_by_key(|(n, ..)| *n)
            .map(|(_, at, volume, rest)| {
                let inside = if rest.is_empty() {
                    String::new()
                } else {
                    format!(
                        " {}",
                        escape(&[b"/".as_slice(), &rest.join(&b'/')].concat())
                    )
                };
                format!(
                    "{} is where {} is mounted; use --volume {}{inside}, or no --volume for the whole guest",
                    escape(at),
                    escape_str(volume),
                    escape_str(volume)
                )
            })
    }

    /// The mountpoints of other volumes that lie inside guest directory
    /// `path` (whose files a copy of `path` does not hold), with their volumes.
    pub(super) fn mounts_inside(&self, path: &[u8]) -> Vec<(String, String)> {
        let parts = lexical(path);
        self.mounts
            .iter()
            .filter(|(at, _)| {
                let at = lexical(at);
                at.len() > parts.len() && at.starts_with(&parts)
            })
            .map(|(at, volume)| (escape(at), escape_str(volume)))
            .collect()
    }
}

impl Guest {
    /// The guest's mount entries whose files are not here (device missing
    /// or unreadable) that guest path `path` lies on, and with `below` also
    /// those inside it: (mountpoint, why), for `ls -R`, `cat` and `cp`.
    pub(super) fn not_here(&self, path: &[u8], below: bool) -> Vec<(Vec<u8>, String)> {
        let Some(ns) = &self.namespace else {
            return Vec::new();
        };
        // Where the path leads in the guest (symlinks followed), else as written.
        let canonical = vmrescue::fs::path::resolve(&*self.fs, path, true)
            .map(|r| r.path)
            .unwrap_or_else(|_| path.to_vec());
        ns.unavailable(&canonical, below)
            .into_iter()
            .map(|m| {
                (
                    m.mountpoint.clone(),
                    format!(
                        "{} ({}) is not mounted here: {}",
                        escape(&m.mountpoint),
                        escape_str(&m.spec),
                        escape_str(&m.state.reason().unwrap_or_default())
                    ),
                )
            })
            .collect()
    }
}

/// The components of guest path `path` read without the filesystem (`.`
/// dropped, `..` taking one back), from the root.
fn lexical(path: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}
