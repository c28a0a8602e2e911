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
use vmrescue::engine::{Engines, FsOptions, select_volume};
use vmrescue::fs::FsView;
use vmrescue::fs::host::HostFs;
use vmrescue::layers::Layout;
use vmrescue::text::escape_str;

use super::{SourceArgs, Target, open_layout, report};

/// Options naming the disks and the volume.
#[derive(Args, Debug, Clone)]
pub struct GuestArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The volume to read (`p1`, `vg/lv`, `/dev/vg/lv`, `UUID=...`); default:
    /// the guest root, else the only filesystem.
    #[arg(long, value_name = "V")]
    pub volume: Option<String>,
    /// Show the on-disk state: do not replay the filesystem journal in memory.
    #[arg(long)]
    pub no_journal: bool,
}

/// An open guest filesystem.
pub struct Guest {
    /// The filesystem.
    pub fs: Arc<dyn FsView>,
    /// The filesystem reported problems (damaged structures, bad
    /// checksums): the command's exit code is at least 1.
    pub damaged: bool,
    /// The volume's name and the problems already reported, to report
    /// those found later (while reading) at the end.
    reported: (String, Vec<String>),
    /// Kept open for the filesystem's lifetime.
    _layout: Option<Layout>,
}

impl Guest {
    /// Report the problems the filesystem found after it was opened (while
    /// reading directories and files); whether it found any at all, which
    /// makes the command's exit code at least 1.
    pub fn finish(&self) -> bool {
        let status = self.fs.status();
        let (name, before) = &self.reported;
        for p in status.problems.iter().filter(|p| !before.contains(p)) {
            report(&format!("{name}: {}", escape_str(p)));
        }
        !status.problems.is_empty()
    }
}

impl GuestArgs {
    /// Split the positionals into the target (IMAGE unless `--demo`) and the rest.
    pub fn split(&self, mut positionals: Vec<OsString>) -> Result<(Target, Vec<OsString>), String> {
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
    pub fn open(&self, target: &Target, notes: bool) -> Result<Guest, vmrescue::Error> {
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
                reported: Default::default(),
                _layout: None,
            });
        }
        let layout = open_layout(target)?;
        let id = select_volume(&layout, self.volume.as_deref())?;
        let opts = FsOptions {
            no_journal: self.no_journal,
        };
        // The kernel session (if the kernel engine serves the volume) lives
        // as long as the filesystem view holds it.
        let fs = Engines::new(target.source.engine).open_fs(&layout, id, &opts)?;
        let status = fs.status();
        let name = escape_str(&layout.volume(id).name);
        if notes {
            for n in &status.notes {
                eprintln!("vmrescue: {name}: {}", escape_str(n));
            }
        }
        for p in &status.problems {
            report(&format!("{name}: {}", escape_str(p)));
        }
        Ok(Guest {
            fs,
            damaged: !status.problems.is_empty(),
            reported: (name, status.problems),
            _layout: Some(layout),
        })
    }
}
