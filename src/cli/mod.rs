//! Command-line grammar shared by every command.
//!
//! Every command takes one `IMAGE` (or `--demo` in its place), further disks
//! of the same VM with `--disk FILE`, `--volume V` where a volume is needed
//! and `--json` where the output is data.

/// `print!` to standard output, quiet when the reader went away ([`out`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write_out(format_args!($($arg)*))
    };
}

/// `println!` to standard output, quiet when the reader went away ([`out`]).
macro_rules! outln {
    () => {
        $crate::cli::out::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod cat;
mod cp;
mod doctor;
mod find;
mod guest;
mod info;
mod kernel;
mod layers;
mod ls;
mod manual;
mod out;
mod relink;
mod tui;
mod undo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vmrescue::engine::{EngineChoice, Engines};
use vmrescue::layers::Layout;

/// Rescue files from virtual-machine disk images, without root and without mounting.
///
/// With an IMAGE and no command, opens the full-screen browser. Volumes are
/// named `p1`, `p5` (partitions), `vg/lv` (logical volumes), or as the guest
/// names them: `/dev/vg/lv`, `/dev/mapper/vg-lv`, `/dev/sda1`, `UUID=...`,
/// `LABEL=...`, or a Windows guest's drive letter (`C:`).
///
/// On a Proxmox VE host, `vmrescue 108` opens the disks of VM (or container)
/// 108, and `vmrescue` alone shows the guests to pick from. A guest that is
/// running (or a disk that a QEMU process holds locked) is only read, with a
/// warning that what is shown may be inconsistent.
#[derive(Parser, Debug)]
#[command(name = "vmrescue", version, about, long_about)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    target: Target,
    /// The volume (or btrfs subvolume, `p2@/@home`) to open first in the
    /// browser (default: the guest root).
    #[arg(long, value_name = "V")]
    volume: Option<String>,
}

/// The disks to open: IMAGE (or `--demo`, or a Proxmox guest) and the options
/// every command shares.
#[derive(Args, Debug, Clone)]
pub(crate) struct Target {
    /// Disk image: a raw or qcow2 file, a block device, a Ceph RBD image
    /// (`rbd:POOL/IMAGE[@SNAP]`), or the ID of a Proxmox VM or container
    /// (all its disks; a file of that name wins).
    /// Without one, on a Proxmox host, shows the guests to choose from.
    #[arg(value_name = "IMAGE", conflicts_with_all = ["demo", "vmid"])]
    pub image: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Where the disks come from, besides IMAGE: shared by every command.
///
/// Commands with further positionals (`ls`, `cat`, `cp`, `relink`) take IMAGE
/// themselves, so that with `--demo` every positional is a guest path.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct SourceArgs {
    /// Use the bundled demo image (a CentOS-6-like guest with a broken libc
    /// link) instead of IMAGE.
    #[arg(long)]
    pub demo: bool,
    /// Open the disks of this Proxmox VM or container: the boot disk as
    /// IMAGE, the others as --disk.
    #[arg(long, value_name = "ID", conflicts_with = "demo")]
    pub vmid: Option<u32>,
    /// Where the Proxmox configuration lives (qemu-server/, lxc/, storage.cfg).
    /// Outside the default, volumes are resolved from storage.cfg alone.
    #[arg(long, value_name = "DIR", default_value = vmrescue::pve::DEFAULT_ROOT)]
    pub pve_root: PathBuf,
    /// Another disk of the same VM (repeatable), for volume groups that span disks.
    #[arg(long = "disk", value_name = "FILE")]
    pub disks: Vec<PathBuf>,
    /// Show qcow2 images as of an internal snapshot (its ID or name, as
    /// `qemu-img snapshot -l` lists them), or an `rbd:` image as of an RBD
    /// snapshot (its name), instead of their current state.
    #[arg(long, value_name = "NAME|ID")]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub ceph: CephArgs,
    /// How filesystems are read: `userspace` (vmrescue's own readers, no
    /// root), `kernel` (loop + device-mapper + read-only mount, as root) or
    /// `auto` (userspace where vmrescue reads the filesystem, else kernel).
    #[arg(long, value_name = "ENGINE", default_value = "auto", value_parser = parse_engine)]
    pub engine: EngineChoice,
    /// Open the disk image (qcow2 or raw) stored at PATH inside IMAGE and
    /// work on it as if it had been given as IMAGE: a guest path
    /// (`/var/lib/vz/images/100/vm-100-disk-0.qcow2`, in the guest as it
    /// boots; `C:\VMs\disk.qcow2` on a Windows guest) or `VOLUME:PATH` (a path in that volume alone, `p1:/images/a.raw`).
    /// A qcow2's backing files are looked for in the same filesystem,
    /// relative to the image's own directory. `--volume` then names a volume
    /// of the opened image (`p1`, `vg/lv`); `--disk` and `--snapshot` still
    /// apply to IMAGE. Repeat it to open an image stored inside that one.
    /// Nothing in it can be repaired in place.
    #[arg(long = "open", value_name = "PATH")]
    pub open: Vec<String>,
    /// Unlock LUKS volumes with the passphrase in FILE: the whole file, a
    /// trailing newline included (as `cryptsetup --key-file`). Without it,
    /// on a terminal the passphrase of each LUKS volume is asked without
    /// echo; elsewhere LUKS volumes stay locked. A passphrase is never taken
    /// from the command line or the environment.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// How to reach a Ceph cluster for `rbd:POOL/IMAGE[@SNAP]` images.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CephArgs {
    /// For `rbd:` images: the Ceph configuration file (default: librados'
    /// search, /etc/ceph/ceph.conf).
    #[arg(long, value_name = "FILE")]
    pub ceph_conf: Option<PathBuf>,
    /// For `rbd:` images: the Ceph client ID, without `client.` (default `admin`).
    #[arg(long, value_name = "ID")]
    pub ceph_id: Option<String>,
    /// For `rbd:` images: the keyring holding that client's key.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
}

impl CephArgs {
    /// The options for [`vmrescue::image::open_with`].
    pub(crate) fn options(&self) -> vmrescue::image::rbd::CephOptions {
        vmrescue::image::rbd::CephOptions {
            conf: self.ceph_conf.clone(),
            id: self.ceph_id.clone(),
            keyring: self.keyring.clone(),
        }
    }
}

/// The version of the JSON documents the commands print (the top-level
/// `"version"` of `layers`, `doctor`, `cp` and `info`; docs/json.md). It
/// changes only when a field changes meaning or goes away.
pub(crate) const JSON_VERSION: u32 = 1;

/// Print `doc` as pretty JSON on stdout; false (after saying why) when it
/// cannot be made.
pub(crate) fn print_json(doc: &impl serde::Serialize) -> bool {
    match serde_json::to_string_pretty(doc) {
        Ok(s) => {
            outln!("{s}");
            true
        }
        Err(e) => {
            report(&e);
            false
        }
    }
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
    /// so, the mountpoint. Then the guest's mount table: each line of its
    /// /etc/fstab, the volume it names (`guessed` for kernel names such as
    /// /dev/sda1) and what became of it. Problems found on the way are
    /// printed on stderr and make the exit code 1; what could be read is
    /// still shown.
    Layers(layers::LayersArgs),
    /// List a guest directory, like `ls` (`-l`, `-a`, `-R`, `-h`).
    ///
    /// Paths are the guest's as it boots: the volumes its /etc/fstab mounts
    /// are at their mountpoints (as for cat, cp, doctor and relink);
    /// `--volume V` reads one volume alone, with its own paths. A mount
    /// whose volume is missing or unreadable is an empty folder, and
    /// listing it says why (exit code 1). Names with control characters or invalid UTF-8 are shown escaped
    /// (`\x1b`, `\xe9`), never raw. Times are UTC. IMAGE may also be a
    /// directory holding a guest tree.
    Ls(ls::LsArgs),
    /// Write guest files to standard output, byte for byte (symlinks
    /// followed inside the guest, across its volumes).
    Cat(cat::CatArgs),
    /// Find files in the guest, like GNU find (-name, -iname, -type, -size,
    /// -mmin, -mtime, -newer, -xdev, -maxdepth, -mindepth, -ls, --json).
    ///
    /// Tests are joined by an implicit AND, with find's rounding (`-size
    /// -1M` is empty files only, `-mtime` counts whole 24-hour periods).
    /// Paths print as given, then the names below them, escaped as `ls`
    /// escapes them. A damaged directory is reported and the walk goes on
    /// (exit code 1); a directory met twice is not entered again.
    Find(find::FindArgs),
    /// Copy guest files and directories out to a host directory.
    ///
    /// Recursive; keeps modes, times, symlinks (never followed), holes and
    /// hard links, and as root owners, xattrs and device nodes. Each file is
    /// written under a hidden temporary name (`.NAME.vmrescue-XXXXXX`) and
    /// renamed when complete, so an interrupted copy never leaves a
    /// truncated file under its real name. Names that could escape DEST are
    /// skipped. Crosses the guest's mountpoints (`-x` stays on one volume);
    /// a mountpoint whose volume is missing or unreadable is listed as
    /// skipped. Ends with a summary; the exit code is 1 when anything failed
    /// or was skipped, 130 after Ctrl-C and 143 after SIGTERM.
    Cp(cp::CpArgs),
    /// Why won't the guest boot? Check what it needs to start, on the guest
    /// as it boots (every volume its fstab mounts).
    ///
    /// Checks: the dynamic-linking closure of init, the shells, login, the
    /// gettys, sshd and the default target's services, resolved as the
    /// guest's ld.so would (missing or wrong libraries, symbol versions, libc
    /// and ld.so of one glibc); suspicious library links; the fstab entries
    /// the boot needs; the boot loader's default entry (GRUB 2, BLS,
    /// systemd-boot, GRUB legacy: kernel, initramfs, root=, modules); full
    /// filesystems; passwd/shadow/group and NSS modules; SELinux notes. Each
    /// finding says what it breaks, the evidence, and the repair: a
    /// `vmrescue relink` command with the proposed target, or the file and
    /// line to look at. Then the package manager's last transactions and
    /// the newest changes. Exit code 1 when something above a note was
    /// found.
    Doctor(doctor::DoctorArgs),
    /// Restore a symlink in place: the target vmrescue proposes (or --to),
    /// written into the link's own inode on ext2/ext3/ext4 or XFS (a link
    /// whose target lives in the inode).
    ///
    /// Shows the plan (old and new target, the current target's problems,
    /// the candidate's reasons, the bytes to write and where the undo file
    /// goes) and asks before writing unless --yes. Refuses, writing nothing,
    /// while the image is in use (QEMU's locks, a running Proxmox guest, a
    /// loop device, device-mapper map or mount on this host, even
    /// read-only), when the journal needs recovery or the XFS log is dirty,
    /// when the filesystem's error flag is set, on btrfs (copy-on-write: use
    /// --engine kernel),
    /// for qcow2 images, and for targets that do not fit the link's storage
    /// or would not resolve inside the guest (unless --force). `vmrescue undo
    /// FILE` puts the old bytes back.
    Relink(relink::RelinkArgs),
    /// Undo a repair: put back the bytes saved in its undo file, after
    /// checking that the image still holds what vmrescue wrote and that
    /// nothing uses it (the same checks as `relink`).
    Undo(undo::UndoArgs),
    /// Show an image's format, sizes, backing chain, snapshots and who holds
    /// it, like `qemu-img info` (`--output json` for scripts).
    ///
    /// Reads the container only: a raw file, a block device or a qcow2
    /// image (version, cluster size, compression, features, the backing
    /// files as they are found, internal snapshots). `in use` lines name
    /// QEMU's locks, other writers and this host's loop devices, maps and
    /// mounts, as the repair checks see them. Exit code 1 when the container
    /// is damaged (a file cut short, a missing backing file).
    Info(info::InfoArgs),
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// `source <(vmrescue completions bash)` in a shell, or save it where
    /// the shell looks (the package installs bash, zsh and fish scripts).
    Completions(manual::CompletionsArgs),
    /// Write the man pages into a directory (used by scripts/release).
    #[command(hide = true)]
    Man(manual::ManArgs),
    /// List every file of a volume with its SHA-256 (engine parity checks).
    #[command(hide = true)]
    Walk(kernel::WalkArgs),
    /// Pack a disk image into the demo container (used by assets/make-demo.sh).
    #[command(hide = true)]
    PackDemo {
        /// The disk image built by assets/make-demo.sh.
        image: PathBuf,
        /// Where to write the container.
        output: PathBuf,
    },
}

/// Exit codes.
pub(crate) mod exit {
    /// Everything worked.
    pub(crate) const OK: u8 = 0;
    /// The job was done but problems were found (damaged structures, failed files).
    pub(crate) const PROBLEMS: u8 = 1;
    /// The job could not be done.
    pub(crate) const ERROR: u8 = 2;
}

/// Print an error the way every command does.
pub(crate) fn report(err: &dyn std::fmt::Display) {
    use std::io::Write;
    // Not eprintln!: a standard error that cannot be written is no reason to panic.
    let _ = writeln!(std::io::stderr(), "vmrescue: {err}");
}

/// Open the target's disks and read their layers; inspection opens the
/// filesystems with `engines`' userspace engine, which keeps them for the
/// command.
pub(crate) fn open_layout(target: &Target, engines: &Engines) -> Result<Layout, vmrescue::Error> {
    open_layout_with(target, engines, false)
}

/// [`open_layout`]; `search` searches every disk for lost volumes.
pub(crate) fn open_layout_with(
    target: &Target,
    engines: &Engines,
    search: bool,
) -> Result<Layout, vmrescue::Error> {
    open_layout_asking(target, engines, search, true)
}

/// [`open_layout_with`]; `ask`: a LUKS volume's passphrase is asked on the
/// terminal when no `--key-file` is given (the commands); without it the
/// volume stays locked (the full-screen browser asks in a dialog when the
/// volume is opened).
pub(crate) fn open_layout_asking(
    target: &Target,
    engines: &Engines,
    search: bool,
    ask: bool,
) -> Result<Layout, vmrescue::Error> {
    let opts = vmrescue::image::OpenOptions {
        snapshot: target.source.snapshot.clone(),
        ceph: target.source.ceph.options(),
    };
    let mut images = Vec::new();
    for path in target_paths(target)? {
        // An NBD URI is no host file: whoever serves it decides who else writes.
        if !vmrescue::image::nbd::is_uri_path(&path)
            && let Ok(Some(why)) = vmrescue::pve::is_image_in_use(&path)
        {
            report(&format!(
                "warning: {} is in use ({why}); reading it anyway, but what is shown may be \
                 inconsistent and nothing will be written to it",
                path.display()
            ));
        }
        let found = vmrescue::image::open_all(&path, &opts)?;
        for image in &found {
            if let Some(why) = vmrescue::image::rbd::in_use(image) {
                report(&format!(
                    "warning: {} is in use ({why}); reading it anyway, but what is shown may be \
                     inconsistent and nothing will be written to it",
                    path.display()
                ));
            }
        }
        images.extend(found);
    }
    let progress = vmrescue::layers::recover::stderr_progress();
    let key = match &target.source.key_file {
        Some(path) => Some(read_key_file(path)?),
        None => None,
    };
    let unlocker = |req: &vmrescue::layers::luks::UnlockRequest<'_>| match &key {
        // A key file is tried once: asking it again gives the same bytes.
        Some(k) => (req.attempt == 0).then(|| k.clone()),
        None if ask => ask_passphrase(req),
        None => None,
    };
    let scan = vmrescue::layers::ScanOptions {
        search,
        progress: Some(&progress),
        unlock: Some(&unlocker),
    };
    let mut layout = vmrescue::layers::scan_with(images, scan);
    inspect(&mut layout, engines);
    for spec in &target.source.open {
        let src = open_image_file(&layout, spec, engines)?;
        // The engine keeps filesystems by volume id, for one layout: the
        // file's reader holds its own.
        for v in &layout.volumes {
            engines.userspace().forget(v.id);
        }
        layout = vmrescue::layers::scan_sources(vec![src], scan);
        inspect(&mut layout, engines);
    }
    Ok(layout)
}

/// The most bytes a key file may hold (cryptsetup's default bound, 8 MiB).
const MAX_KEY_FILE: u64 = 8 << 20;

/// The passphrase in `path` (`--key-file`): every byte, a trailing newline included.
fn read_key_file(
    path: &std::path::Path,
) -> Result<vmrescue::layers::luks::Secret, vmrescue::Error> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| vmrescue::Error::io_path(path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| vmrescue::Error::io_path(path, e))?;
    let key = vmrescue::layers::luks::Secret::new(buf);
    if key.len() as u64 > MAX_KEY_FILE {
        return Err(vmrescue::Error::Invalid(format!(
            "--key-file {}: larger than {MAX_KEY_FILE} bytes",
            path.display()
        )));
    }
    if key.is_empty() {
        return Err(vmrescue::Error::Invalid(format!(
            "--key-file {}: empty",
            path.display()
        )));
    }
    Ok(key)
}

/// Ask for a LUKS volume's passphrase on the terminal, without echo, when
/// standard input is one; `None` otherwise, or when the answer is empty
/// (the volume stays locked).
fn ask_passphrase(
    req: &vmrescue::layers::luks::UnlockRequest<'_>,
) -> Option<vmrescue::layers::luks::Secret> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let again = if req.attempt > 0 {
        "Wrong passphrase. "
    } else {
        ""
    };
    let saved = rustix::termios::tcgetattr(&tty).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes -= rustix::termios::LocalModes::ECHO;
        let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &quiet);
    }
    // Asked once echo is off: nothing typed after the prompt shows.
    let _ = write!(
        &tty,
        "{again}Passphrase for {} (LUKS{} UUID {}; empty to leave it locked): ",
        vmrescue::text::escape_str(req.volume),
        req.luks.version,
        vmrescue::text::escape_str(&req.luks.uuid)
    );
    // Room for a long passphrase: growing the buffer would leave copies behind.
    let mut line = vmrescue::layers::luks::Secret::new(Vec::with_capacity(1024));
    let read = std::io::BufReader::new(&tty).read_until(b'\n', &mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, t);
    }
    let _ = writeln!(&tty);
    read.ok()?;
    // A typed passphrase ends at the newline (as cryptsetup reads one).
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    (!line.is_empty()).then_some(line)
}

/// Find the guest roots and mountpoints of `layout` (filesystems opened
/// with `engines`' userspace engine, which keeps them).
fn inspect(layout: &mut Layout, engines: &Engines) {
    let options = vmrescue::fs::FsOptions::default();
    let found = vmrescue::layers::inspect::inspect(layout, &|id| {
        engines.userspace().open_fs(layout, id, &options)
    });
    layout.apply_inspection(&found);
}

/// The disk image that `--open SPEC` names in `layout`: a guest path
/// (resolved in the guest as it boots, else in the only filesystem) or
/// `VOLUME:PATH`.
fn open_image_file(
    layout: &Layout,
    spec: &str,
    engines: &Engines,
) -> Result<vmrescue::layers::DiskSource, vmrescue::Error> {
    // A Windows drive path (`C:\VMs\disk.vhd`) is a guest path too.
    let drive = vmrescue::guest::drive_path(spec.as_bytes()).is_some();
    let (volume, path) = if spec.starts_with('/') || drive {
        (None, spec)
    } else {
        match spec.split_once(':') {
            Some((v, p)) if !v.is_empty() && !p.is_empty() => (Some(v), p),
            _ => {
                return Err(vmrescue::Error::Invalid(format!(
                    "--open {}: give a path from the guest's root (`/var/lib/vz/images/...`) \
                     or VOLUME:PATH (`p1:/images/disk.qcow2`)",
                    vmrescue::text::escape_str(spec)
                )));
            }
        }
    };
    let id = vmrescue::engine::select_volume(layout, volume)?;
    let (fs, namespace) = guest::open_guest_or_volume(
        layout,
        id,
        volume.is_some(),
        None,
        engines,
        &vmrescue::fs::FsOptions::default(),
    )?;
    let path = vmrescue::guest::operator_path(&*fs, namespace.as_ref(), None, path.as_bytes());
    // The volume the file lies on, in the guest as it boots.
    let holder = namespace
        .as_ref()
        .and_then(|ns| ns.locate(&path).ok())
        .map_or(id, |(v, _)| v);
    vmrescue::layers::inner::open_image_file(
        layout,
        holder,
        fs,
        &path,
        &vmrescue::image::OpenOptions::default(),
    )
}

/// When the disks hold nothing vmrescue recognises (no partition table, no
/// volume group, no filesystem or other known content: an empty file, a
/// text file, a blank disk), the sentence that says so for each disk.
pub(crate) fn nothing_found(layout: &Layout) -> Option<String> {
    use vmrescue::layers::probe::ContentKind;
    let nothing = !layout.disks.is_empty()
        && layout.disks.iter().all(|d| d.table.is_none())
        && layout.groups.is_empty()
        && layout.pvs.is_empty()
        && layout
            .volumes
            .iter()
            .all(|v| matches!(v.content.kind, ContentKind::Zeros | ContentKind::Unknown));
    nothing.then(|| {
        layout
            .disks
            .iter()
            .map(|d| {
                format!(
                    "{}: no partition table, volume group or filesystem found ({})",
                    d.origin,
                    vmrescue::text::count(d.size(), "byte", "bytes")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// [`open_layout`] for commands that need something on the disks: an
/// error when [`nothing_found`].
pub(crate) fn open_found_layout(
    target: &Target,
    engines: &Engines,
) -> Result<Layout, vmrescue::Error> {
    let layout = open_layout(target, engines)?;
    match nothing_found(&layout) {
        Some(why) => Err(vmrescue::Error::Invalid(why)),
        None => Ok(layout),
    }
}

/// Open the target's layers and pick the volume (`--volume`, else the
/// guest root, else the only filesystem).
pub(crate) fn open_volume(
    target: &Target,
    volume: Option<&str>,
    engines: &Engines,
) -> Result<(Layout, vmrescue::layers::VolumeId), vmrescue::Error> {
    let (layout, sel) = open_selection(target, volume, engines)?;
    if sel.subvolume.is_some() {
        return Err(vmrescue::Error::Invalid(format!(
            "--volume {}: this command works on a whole volume, not a btrfs subvolume",
            volume.unwrap_or_default()
        )));
    }
    Ok((layout, sel.volume))
}

/// Open the target's layers and pick what the command works on: a volume
/// alone, or a guest as it boots ([`vmrescue::engine::select`]).
pub(crate) fn open_selection(
    target: &Target,
    volume: Option<&str>,
    engines: &Engines,
) -> Result<(Layout, vmrescue::engine::Selection), vmrescue::Error> {
    let layout = open_found_layout(target, engines)?;
    let sel = vmrescue::engine::select(&layout, volume)?;
    Ok((layout, sel))
}

/// The disks a target names: IMAGE (or the disks of a Proxmox guest) and --disk.
pub(crate) fn target_paths(target: &Target) -> Result<Vec<PathBuf>, vmrescue::Error> {
    let vmid = target.source.vmid.or_else(|| {
        let image = target.image.as_ref()?;
        let s = image.to_str()?;
        (!image.exists() && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    });
    let mut paths = Vec::new();
    if let Some(vmid) = vmid {
        let host = vmrescue::pve::Host::new(&target.source.pve_root);
        let guest = vmrescue::pve::find(&host, vmid)?;
        let (disks, skipped) = guest.openable_disks();
        for s in &skipped {
            report(&format!(
                "warning: {} {vmid}: skipping {s}",
                guest.kind.short()
            ));
        }
        if disks.is_empty() {
            return Err(vmrescue::Error::NotFound(format!(
                "a disk of {} {vmid} that can be opened",
                guest.kind.short()
            )));
        }
        match &guest.status {
            vmrescue::pve::Status::Running(why) => report(&format!(
                "warning: {} {vmid} is running ({why}): reading its disks anyway, but what is \
                 shown may be inconsistent and no repair will be made",
                guest.kind.short()
            )),
            vmrescue::pve::Status::InUse(why) => report(&format!(
                "warning: {} {vmid} is not running, but a disk of it is in use ({why}): \
                 reading its disks anyway; no repair will be made until that is released",
                guest.kind.short()
            )),
            vmrescue::pve::Status::Stopped => {}
        }
        paths.extend(disks);
    } else if let Some(path) = &target.image {
        paths.push(path.clone());
    } else if target.source.demo {
        paths.push(vmrescue::demo::path()?);
    } else {
        let host = vmrescue::pve::Host::new(&target.source.pve_root);
        if host.exists() {
            let list = vmrescue::pve::list(&host)?;
            return Err(vmrescue::Error::Invalid(format!(
                "no IMAGE given; open a guest of this Proxmox host with `vmrescue ID`:\n{}",
                vmrescue::pve::render_list(&list).trim_end()
            )));
        }
        return Err(vmrescue::Error::Invalid(
            "no IMAGE given: name a disk image, a block device or a Proxmox VM ID".into(),
        ));
    }
    paths.extend(target.source.disks.iter().cloned());
    Ok(paths)
}

/// `vmrescue` with nothing to open: on a Proxmox host, the guests to pick from.
/// When IMAGE is no file but a word one or two letters away from a command
/// (`vmrescue lyers disk.img`), what the operator probably meant.
fn mistyped_command(image: &std::path::Path) -> Option<String> {
    if image.exists() {
        return None;
    }
    let word = image.to_str()?;
    if word.contains('/') || word.contains('.') || word.parse::<u32>().is_ok() {
        return None;
    }
    let cmd = <Cli as clap::CommandFactory>::command();
    let best = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| (edit_distance(word, c.get_name()), c.get_name().to_string()))
        .min()?;
    (best.0 <= 2).then(|| {
        format!(
            "{word}: no such image file; did you mean the command `vmrescue {}`?",
            best.1
        )
    })
}

/// Levenshtein distance between two short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn list_guests(target: &Target) -> u8 {
    let host = vmrescue::pve::Host::new(&target.source.pve_root);
    if !host.exists() {
        report(
            &"no IMAGE given: name a disk image, a block device or a Proxmox VM ID (see --help)",
        );
        return exit::ERROR;
    }
    match vmrescue::pve::list(&host) {
        Ok(list) if !list.is_empty() && tui::interactive() => tui::pick_guest(target, &list),
        Ok(list) => {
            out!("{}", vmrescue::pve::render_list(&list));
            outln!("\nOpen one with `vmrescue ID` (or `vmrescue layers ID`).");
            exit::OK
        }
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}

/// Parse the command line and run.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse_from(find::translate(std::env::args_os().collect()));
    // A signal or a panic ending a kernel-engine session or the TUI ends
    // the process through the teardown: the unpacked demo disk goes then too.
    vmrescue::teardown::register(|_| vmrescue::demo::cleanup());
    // `vmrescue lyers disk.img`: no such file, but a command's name nearly.
    let typo = match cli.command {
        None => cli.target.image.as_deref().and_then(mistyped_command),
        Some(_) => None,
    };
    let code = match cli.command {
        Some(Command::Layers(args)) => layers::run(&args),
        Some(Command::PackDemo { image, output }) => pack_demo(&image, &output),
        Some(Command::Ls(args)) => ls::run(&args),
        Some(Command::Cat(args)) => cat::run(&args),
        Some(Command::Find(args)) => find::run(&args),
        Some(Command::Cp(args)) => cp::run(&args),
        Some(Command::Doctor(args)) => doctor::run(&args),
        Some(Command::Relink(args)) => relink::run(&args),
        Some(Command::Undo(args)) => undo::run(&args),
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Mount(args)) => kernel::mount(&args, true),
        Some(Command::Map(args)) => kernel::mount(&args, false),
        Some(Command::Cleanup(args)) => kernel::cleanup(&args),
        Some(Command::Walk(args)) => kernel::walk(&args),
        Some(Command::Completions(args)) => manual::completions(&args),
        Some(Command::Man(args)) => manual::man(&args),
        None if cli.target.image.is_none()
            && cli.target.source.vmid.is_none()
            && !cli.target.source.demo =>
        {
            list_guests(&cli.target)
        }
        None if typo.is_some() => {
            if let Some(hint) = &typo {
                report(hint);
            }
            exit::ERROR
        }
        None => tui::run(&tui::TuiArgs {
            target: cli.target,
            volume: cli.volume,
        }),
    };
    vmrescue::demo::cleanup();
    // Output that could not be written (a full disk, an I/O error) means
    // the job was not done, whatever the command thought.
    let code = if out::failed() { exit::ERROR } else { code };
    ExitCode::from(code)
}

/// `vmrescue pack-demo IMAGE OUTPUT` (hidden).
fn pack_demo(image: &std::path::Path, output: &std::path::Path) -> u8 {
    let packed = match vmrescue::demo::pack(image) {
        Ok(p) => p,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if let Err(e) = std::fs::write(output, packed) {
        report(&format!("{}: {e}", output.display()));
        return exit::ERROR;
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_command_is_named() {
        assert_eq!(edit_distance("lyers", "layers"), 1);
        assert_eq!(edit_distance("doctro", "doctor"), 2);
        assert_eq!(edit_distance("", "ls"), 2);
        let hint = mistyped_command(std::path::Path::new("lyers")).unwrap();
        assert!(hint.contains("`vmrescue layers`"), "{hint}");
        assert!(mistyped_command(std::path::Path::new("disk.qcow2")).is_none());
        assert!(mistyped_command(std::path::Path::new("108")).is_none());
        assert!(mistyped_command(std::path::Path::new("nothing-like-it")).is_none());
    }
}
