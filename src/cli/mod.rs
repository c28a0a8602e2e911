//! Command-line grammar shared by every command.
//!
//! Every command takes one `IMAGE` (or `--demo` in its place), further disks
//! of the same VM with `--disk FILE`, `--volume V` where a volume is needed
//! and `--json` where the output is data.

mod cat;
mod cp;
mod doctor;
mod guest;
mod kernel;
mod layers;
mod ls;
mod tui;
mod undo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vmrescue::engine::EngineChoice;
use vmrescue::layers::Layout;

/// Rescue files from virtual-machine disk images, without root and without mounting.
///
/// With an IMAGE and no command, opens the full-screen browser. Volumes are
/// named `p1`, `p5` (partitions), `vg/lv` (logical volumes), or as the guest
/// names them: `/dev/vg/lv`, `/dev/mapper/vg-lv`, `/dev/sda1`, `UUID=...`,
/// `LABEL=...`.
#[derive(Parser, Debug)]
#[command(name = "vmrescue", version, about, long_about)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    target: Target,
    /// The volume to open first in the browser (default: the guest root).
    #[arg(long, value_name = "V")]
    volume: Option<String>,
}

/// The disks to open.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Disk image: a raw file or a block device.
    #[arg(value_name = "IMAGE", required_unless_present = "demo")]
    pub image: Option<PathBuf>,
    /// Use the bundled demo image (a CentOS-6-like guest with a broken libc link).
    #[arg(long, conflicts_with = "image")]
    pub demo: bool,
    /// Another disk of the same VM (repeatable), for volume groups that span disks.
    #[arg(long = "disk", value_name = "FILE")]
    pub disks: Vec<PathBuf>,
    /// How filesystems are read: `userspace` (vmrescue's own readers, no
    /// root), `kernel` (loop + device-mapper + read-only mount, as root) or
    /// `auto` (userspace where vmrescue reads the filesystem, else kernel).
    #[arg(long, value_name = "ENGINE", default_value = "auto", value_parser = parse_engine)]
    pub engine: EngineChoice,
}

pub(crate) fn parse_engine(s: &str) -> Result<EngineChoice, String> {
    s.parse()
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the layers of an image: partitions, volume groups, logical volumes, filesystems.
    ///
    /// Prints an indented tree like `lsblk`: name, size, start offset (bytes
    /// on the disk), type, filesystem type, label and, where the guest says
    /// so, the mountpoint. Problems found on the way are printed on stderr
    /// and make the exit code 1; what could be read is still shown.
    Layers(layers::LayersArgs),
    /// List a guest directory, like `ls` (`-l`, `-a`, `-R`).
    ///
    /// Names with control characters or invalid UTF-8 are shown escaped
    /// (`\x1b`, `\xe9`), never raw. Times are UTC. IMAGE may also be a
    /// directory holding a guest tree.
    Ls(ls::LsArgs),
    /// Write guest files to standard output, byte for byte.
    Cat(cat::CatArgs),
    /// Copy guest files and directories out to a host directory.
    ///
    /// Recursive; keeps modes, times, symlinks (never followed), holes and
    /// hard links, and as root owners, xattrs and device nodes. Names that
    /// could escape DEST are skipped. Ends with a summary; the exit code is 1
    /// when anything failed or was skipped.
    Cp(cp::CpArgs),
    /// Find broken or suspicious symlinks in the guest's library and program
    /// directories, and list the most recently changed files.
    ///
    /// Each finding lists what is wrong with the link's current target and
    /// the repair vmrescue proposes (for `libc.so.6`: the library in the same
    /// directory whose ELF SONAME is `libc.so.6`). Exit code 1 when something
    /// was found.
    Doctor(doctor::DoctorArgs),
    /// Undo a repair: put back the bytes saved in its undo file, after
    /// checking that the image still holds what vmrescue wrote.
    Undo(undo::UndoArgs),
    /// Mount a volume read-only through the kernel engine (root) until interrupted.
    ///
    /// Maps the volume with loop + device-mapper from vmrescue's own reading
    /// of the layers (the host's LVM never sees the guest's volume groups),
    /// mounts it read-only under /run/vmrescue/, prints the mountpoint and
    /// waits; Ctrl-C, SIGTERM or SIGHUP unmount and remove everything.
    Mount(kernel::MountArgs),
    /// Map a volume as a read-only block device through the kernel engine (root) until interrupted.
    ///
    /// Like `mount` without the mount: prints the device (`/dev/dm-N`) for
    /// tools that read block devices (`fsck -n`, `photorec`, `dd`); Ctrl-C,
    /// SIGTERM or SIGHUP remove it again.
    Map(kernel::MountArgs),
    /// Remove what a killed vmrescue session left: mounts, device-mapper and loop devices.
    ///
    /// Only objects with vmrescue's own prefixes whose session's process is
    /// gone are touched; each one removed is printed.
    Cleanup(kernel::CleanupArgs),
    /// List every file of a volume with its SHA-256 (engine parity checks).
    #[command(hide = true)]
    Walk(kernel::WalkArgs),
    /// Replace a symlink through the kernel engine (until `relink --engine kernel`).
    #[command(hide = true)]
    KernelRelink(kernel::KernelRelinkArgs),
}

/// Exit codes.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// The job was done but problems were found (damaged structures, failed files).
    pub const PROBLEMS: u8 = 1;
    /// The job could not be done.
    pub const ERROR: u8 = 2;
}

/// Print an error the way every command does.
pub fn report(err: &dyn std::fmt::Display) {
    eprintln!("vmrescue: {err}");
}

/// Open the target's disks and read their layers.
pub fn open_layout(target: &Target) -> Result<Layout, vmrescue::Error> {
    let mut images = Vec::new();
    let Some(path) = &target.image else {
        return Err(vmrescue::Error::Invalid(
            "the demo image is not bundled in this build yet".into(),
        ));
    };
    images.push(vmrescue::image::open(path)?);
    for d in &target.disks {
        images.push(vmrescue::image::open(d)?);
    }
    let mut layout = vmrescue::layers::scan(images);
    let options = vmrescue::engine::FsOptions::default();
    let found = vmrescue::layers::inspect::inspect(&layout, &|id| {
        vmrescue::engine::open_fs(&layout, id, &options)
    });
    layout.apply_inspection(&found);
    Ok(layout)
}

/// Parse the command line and run.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Layers(args)) => layers::run(&args),
        Some(Command::Mount(args)) => kernel::mount(&args, true),
        Some(Command::Map(args)) => kernel::mount(&args, false),
        Some(Command::Cleanup(args)) => kernel::cleanup(&args),
        Some(Command::Walk(args)) => kernel::walk(&args),
        Some(Command::KernelRelink(args)) => kernel::relink(&args),
        Some(Command::Ls(args)) => ls::run(&args),
        Some(Command::Cat(args)) => cat::run(&args),
        Some(Command::Cp(args)) => cp::run(&args),
        Some(Command::Doctor(args)) => doctor::run(&args),
        Some(Command::Undo(args)) => undo::run(&args),
        None => tui::run(&tui::TuiArgs {
            target: cli.target,
            volume: cli.volume,
        }),
    };
    ExitCode::from(code)
}
