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
use vmrescue::engine::{EngineChoice, Engines, FsOptions, select_volume};
use vmrescue::fs::FsView;
use vmrescue::fs::host::HostFs;
use vmrescue::layers::Layout;
use vmrescue::text::escape_str;

use super::{Target, open_layout, report};

/// Options naming the disks and the volume.
#[derive(Args, Debug, Clone)]
pub struct GuestArgs {
    /// Use the bundled demo image (a CentOS-6-like guest); then no IMAGE is given.
    #[arg(long)]
    pub demo: bool,
    /// Another disk of the same VM (repeatable), for volume groups that span disks.
    #[arg(long = "disk", value_name = "FILE")]
    pub disks: Vec<PathBuf>,
    /// The volume to read (`p1`, `vg/lv`, `/dev/vg/lv`, `UUID=...`); default:
    /// the guest root, else the only filesystem.
    #[arg(long, value_name = "V")]
    pub volume: Option<String>,
    /// Show the on-disk state: do not replay the filesystem journal in memory.
    #[arg(long)]
    pub no_journal: bool,
    /// How filesystems are read: `userspace` (vmrescue's own readers, no
    /// root), `kernel` (loop + device-mapper + read-only mount, as root) or
    /// `auto` (userspace where vmrescue reads the filesystem, else kernel).
    #[arg(long, value_name = "ENGINE", default_value = "auto", value_parser = super::parse_engine)]
    pub engine: EngineChoice,
}

/// An open guest filesystem.
pub struct Guest {
    /// The filesystem.
    pub fs: Arc<dyn FsView>,
    /// Kept open for the filesystem's lifetime.
    _layout: Option<Layout>,
}

impl GuestArgs {
    /// Split the positionals into the target (IMAGE unless `--demo`) and the rest.
    pub fn split(&self, mut positionals: Vec<OsString>) -> Result<(Target, Vec<OsString>), String> {
        let image = if self.demo {
            None
        } else if positionals.is_empty() {
            return Err("IMAGE is missing (or use --demo)".into());
        } else {
            Some(PathBuf::from(positionals.remove(0)))
        };
        Ok((
            Target {
                image,
                demo: self.demo,
                disks: self.disks.clone(),
                engine: self.engine,
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
            if !target.disks.is_empty() || self.volume.is_some() {
                return Err(vmrescue::Error::Invalid(format!(
                    "{} is a directory: --disk and --volume do not apply",
                    dir.display()
                )));
            }
            return Ok(Guest {
                fs: Arc::new(HostFs::open(dir)?),
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
        let fs = Engines::new(target.engine).open_fs(&layout, id, &opts)?;
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
            _layout: Some(layout),
        })
    }
}
