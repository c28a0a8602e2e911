//! Proxmox VE discovery: which VMs and containers a host has, where their
//! disks are, and whether they are running.
//!
//! Guests are read from `<pve-root>/qemu-server/<vmid>.conf` (VMs) and
//! `<pve-root>/lxc/<vmid>.conf` (containers); `<pve-root>` is `/etc/pve` on
//! a Proxmox host, and tests point it at a fake tree. Volume IDs
//! (`local-lvm:vm-108-disk-0`) are resolved with `pvesm path` on a real host
//! (`/etc/pve`, with `pvesm` installed), else from `<pve-root>/storage.cfg`.
//!
//! A guest counts as running when Proxmox says so (`qm status`/`pct status`
//! on a real host), when its QEMU pid file names a live QEMU process, when
//! QEMU holds one of its disks (QEMU's image locks, a QEMU process with it
//! open), or when another client has one of its Ceph RBD disks open (a
//! watch or a lock on the image, [`crate::image::rbd::holders`]). A disk held by anything else (a process writing to it, a
//! loop device, a host mount: [`image_holders`]) makes the guest "in use",
//! not running: it is read, and repaired only once that is released.

pub mod config;
pub mod hostdb;
mod inuse;
pub mod sqlite;
pub mod storage;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};
use crate::text::escape_str;

pub use config::{DiskLine, GuestConfig};
pub use inuse::{
    Holders, QEMU_LOCK_PERM_BASE, QEMU_LOCK_SHARED_BASE, image_holders, is_image_in_use,
};
pub use storage::Storage;

/// The default configuration root on a Proxmox VE host.
pub const DEFAULT_ROOT: &str = "/etc/pve";
/// Where Proxmox keeps QEMU pid files.
pub const DEFAULT_RUN_DIR: &str = "/var/run/qemu-server";

/// Largest configuration file read (Proxmox's own limit is far below).
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Most guests listed from one directory.
const MAX_GUESTS: usize = 100_000;

/// A Proxmox host's configuration, as seen from its pve root.
#[derive(Debug, Clone)]
pub struct Host {
    /// `/etc/pve`, or a fake tree.
    pub root: PathBuf,
    /// Directory of QEMU pid files (`<vmid>.pid`).
    pub run_dir: PathBuf,
    /// Whether to ask the Proxmox tools (`pvesm`, `qm`, `pct`). Only for the
    /// real `/etc/pve`: the tools know nothing of a fake tree.
    pub use_tools: bool,
}

impl Host {
    /// The host whose configuration lives in `root`.
    pub fn new(root: &Path) -> Host {
        Host {
            root: root.to_path_buf(),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            use_tools: root == Path::new(DEFAULT_ROOT),
        }
    }

    /// Whether `root` looks like a Proxmox configuration tree.
    pub fn exists(&self) -> bool {
        self.root.join("qemu-server").is_dir()
            || self.root.join("lxc").is_dir()
            || self.root.join("storage.cfg").is_file()
    }

    fn storages(&self) -> Result<Vec<Storage>> {
        let p = self.root.join("storage.cfg");
        if !p.exists() {
            return Ok(Vec::new());
        }
        Ok(storage::parse(&read_text(&p)?))
    }

    /// The host path of a volume: `pvesm path` on a real host, else storage.cfg.
    pub fn resolve_volume(&self, storages: &[Storage], volume: &str) -> Result<PathBuf, String> {
        if volume.starts_with('/') {
            return Ok(PathBuf::from(volume));
        }
        if self.use_tools
            && let Some(out) = tool("pvesm", &["path", volume])
        {
            let p = out.trim();
            // Ceph RBD: QEMU's `rbd:POOL/IMAGE:mon_host=...:keyring=...`,
            // which vmrescue opens as it is.
            if p.starts_with('/') || p.starts_with("rbd:") {
                return Ok(PathBuf::from(p));
            }
        }
        storage::resolve(&self.root, storages, volume)
    }
}

/// VM or container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// A QEMU/KVM virtual machine (`qemu-server`).
    Vm,
    /// An LXC container.
    Container,
}

impl GuestKind {
    /// `VM` or `CT`, as Proxmox abbreviates them.
    pub fn short(self) -> &'static str {
        match self {
            GuestKind::Vm => "VM",
            GuestKind::Container => "CT",
        }
    }
}

/// Whether a guest runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "why", rename_all = "lowercase")]
pub enum Status {
    /// Running, and how we know.
    Running(String),
    /// Not running, but one of its disks is held by something else on this
    /// host (a loop device, a mount, a process writing to it), and by what.
    #[serde(rename = "in-use")]
    InUse(String),
    /// No sign of it running.
    Stopped,
}

impl Status {
    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        matches!(self, Status::Running(_))
    }
}

/// A disk of a guest, resolved to a host path where possible.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GuestDisk {
    /// The configuration line.
    pub line: DiskLine,
    /// Where its bytes are on the host, or why that is not known.
    pub path: Result<PathBuf, String>,
}

/// A VM or container.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Guest {
    /// Its ID.
    pub vmid: u32,
    /// VM or container.
    pub kind: GuestKind,
    /// Its configuration file.
    pub config_path: PathBuf,
    /// Its configuration.
    #[serde(skip)]
    pub config: GuestConfig,
    /// Its disks, in the order to open them (boot disk first, EFI vars last).
    pub disks: Vec<GuestDisk>,
    /// Running or not.
    pub status: Status,
}

/// Whether a disk's path can be opened from here: a host file or device
/// that exists, or a Ceph RBD image (`rbd:`), reached over the network.
fn reachable(p: &Path) -> bool {
    crate::image::rbd::is_rbd(p) || p.exists()
}

impl Guest {
    /// The name given in the configuration.
    pub fn name(&self) -> Option<&str> {
        self.config.name.as_deref()
    }

    /// The disks that resolved to existing paths, and messages for the others.
    pub fn openable_disks(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut ok = Vec::new();
        let mut skipped = Vec::new();
        for d in &self.disks {
            match &d.path {
                Ok(p) if reachable(p) => ok.push(p.clone()),
                Ok(p) => skipped.push(format!(
                    "{} ({}): {} does not exist on this host ({})",
                    d.line.key,
                    escape_str(&d.line.volume),
                    p.display(),
                    missing_hint(p)
                )),
                Err(e) => skipped.push(format!(
                    "{} ({}): {}",
                    d.line.key,
                    escape_str(&d.line.volume),
                    escape_str(e)
                )),
            }
        }
        (ok, skipped)
    }
}

/// Why a volume's path may be missing, and what brings it back.
fn missing_hint(p: &Path) -> String {
    if p.starts_with("/dev/zvol") {
        "is its ZFS pool imported? `zpool import`".into()
    } else if let Ok(lv) = p.strip_prefix("/dev") {
        format!(
            "its logical volume is not active: `lvchange -ay {}` activates it, as Proxmox does \
             when it starts the guest",
            lv.display()
        )
    } else {
        "is its storage mounted?".into()
    }
}

/// Read a text file with a size cap.
fn read_text(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).with_path(path)?;
    let len = f.metadata().with_path(path)?.len();
    if len > MAX_CONFIG_BYTES {
        return Err(Error::Invalid(format!(
            "{}: {len} bytes is too large for a Proxmox configuration file",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).with_path(path)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Run a Proxmox tool if it is installed; its stdout on success.
fn tool(name: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(name).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The guest configuration files in `dir`: (vmid, path), sorted.
fn config_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io_path(dir, e)),
    };
    for entry in rd.take(MAX_GUESTS) {
        let entry = entry.with_path(dir)?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".conf")) else {
            continue;
        };
        if let Ok(vmid) = stem.parse::<u32>() {
            out.push((vmid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Every VM and container of the host, by VMID.
pub fn list(host: &Host) -> Result<Vec<Guest>> {
    let storages = host.storages()?;
    let mut out = Vec::new();
    let running = Running::ask(host);
    for (kind, dir) in [
        (GuestKind::Vm, "qemu-server"),
        (GuestKind::Container, "lxc"),
    ] {
        for (vmid, path) in config_files(&host.root.join(dir))? {
            out.push(load(host, &storages, &running, kind, vmid, &path)?);
        }
    }
    out.sort_by_key(|g| g.vmid);
    Ok(out)
}

/// The guest with this VMID.
pub fn find(host: &Host, vmid: u32) -> Result<Guest> {
    let storages = host.storages()?;
    for (kind, dir) in [
        (GuestKind::Vm, "qemu-server"),
        (GuestKind::Container, "lxc"),
    ] {
        let path = host.root.join(dir).join(format!("{vmid}.conf"));
        if path.is_file() {
            let running = Running::ask_one(host, kind, vmid);
            return load(host, &storages, &running, kind, vmid, &path);
        }
    }
    let known: Vec<String> = list(host)
        .map(|l| l.iter().map(|g| g.vmid.to_string()).collect())
        .unwrap_or_default();
    Err(Error::NotFound(format!(
        "VM or container {vmid} in {} ({})",
        host.root.display(),
        if known.is_empty() {
            "no guests are configured there".to_string()
        } else {
            format!("the guests are {}", known.join(", "))
        }
    )))
}

/// What the Proxmox tools say runs (on a real host only).
#[derive(Default)]
struct Running {
    vms: Option<Vec<u32>>,
    containers: Option<Vec<u32>>,
}

impl Running {
    /// `qm list` and `pct list` once for the whole host.
    fn ask(host: &Host) -> Running {
        if !host.use_tools {
            return Running::default();
        }
        // `qm list`: VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID
        let vms = tool("qm", &["list"]).map(|out| {
            out.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let vmid = f.first()?.parse().ok()?;
                    f.contains(&"running").then_some(vmid)
                })
                .collect()
        });
        // `pct list`: VMID Status Lock Name
        let containers = tool("pct", &["list"]).map(|out| {
            out.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let vmid = f.first()?.parse().ok()?;
                    (f.get(1) == Some(&"running")).then_some(vmid)
                })
                .collect()
        });
        Running { vms, containers }
    }

    /// `qm status VMID` or `pct status VMID`.
    fn ask_one(host: &Host, kind: GuestKind, vmid: u32) -> Running {
        if !host.use_tools {
            return Running::default();
        }
        let id = vmid.to_string();
        let cmd = match kind {
            GuestKind::Vm => "qm",
            GuestKind::Container => "pct",
        };
        let running = tool(cmd, &["status", &id]).map(|out| {
            out.split_whitespace()
                .any(|w| w == "running")
                .then_some(vmid)
        });
        let list = running.map(|r| r.into_iter().collect());
        match kind {
            GuestKind::Vm => Running {
                vms: list,
                containers: None,
            },
            GuestKind::Container => Running {
                vms: None,
                containers: list,
            },
        }
    }
}

fn load(
    host: &Host,
    storages: &[Storage],
    running: &Running,
    kind: GuestKind,
    vmid: u32,
    path: &Path,
) -> Result<Guest> {
    let config = config::parse(&read_text(path)?);
    let mut lines = config.disks.clone();
    // Boot disk first, the EFI variables disk last, the rest in file order.
    let rank = |d: &DiskLine| -> (usize, usize) {
        if d.key == "efidisk0" {
            return (2, 0);
        }
        match config.boot_order.iter().position(|k| *k == d.key) {
            Some(i) => (0, i),
            None if d.key == "rootfs" => (0, 0),
            None => (1, 0),
        }
    };
    lines.sort_by_key(|d| rank(d));
    let disks: Vec<GuestDisk> = lines
        .into_iter()
        .map(|line| {
            let path = if kind == GuestKind::Container
                && line.volume.starts_with('/')
                && !line.volume.starts_with("/dev/")
            {
                // A container mount point with a host path is a bind mount.
                Err(format!(
                    "a host directory bind-mounted into the container, not a disk: browse {} on the host",
                    line.volume
                ))
            } else {
                host.resolve_volume(storages, &line.volume)
            };
            GuestDisk { path, line }
        })
        .collect();
    let status = status(host, running, kind, vmid, &disks);
    Ok(Guest {
        vmid,
        kind,
        config_path: path.to_path_buf(),
        config,
        disks,
        status,
    })
}

fn status(
    host: &Host,
    running: &Running,
    kind: GuestKind,
    vmid: u32,
    disks: &[GuestDisk],
) -> Status {
    let (said, tool_name) = match kind {
        GuestKind::Vm => (&running.vms, "qm"),
        GuestKind::Container => (&running.containers, "pct"),
    };
    if let Some(list) = said
        && list.contains(&vmid)
    {
        return Status::Running(format!("`{tool_name}` says it is running"));
    }
    if kind == GuestKind::Vm
        && let Some(why) = pid_file_alive(&host.run_dir, vmid)
    {
        return Status::Running(why);
    }
    if kind == GuestKind::Container && host.use_tools {
        let cg = Path::new("/sys/fs/cgroup/lxc").join(vmid.to_string());
        if cg.is_dir() {
            return Status::Running(format!("its cgroup {} exists", cg.display()));
        }
    }
    let mut in_use = None;
    for d in disks {
        let Ok(p) = &d.path else { continue };
        if crate::image::rbd::is_rbd(p) {
            // Another client with the image open (its watch, its lock): the
            // VM's librbd on this node or another. A cluster out of reach
            // says nothing here; opening the disk says why.
            if let Ok(h) = crate::image::rbd::holders(p)
                && !h.is_empty()
            {
                return Status::Running(format!(
                    "{}: Ceph RBD image in use by {}",
                    d.line.key,
                    h.join(", ")
                ));
            }
            continue;
        }
        if !p.exists() {
            continue;
        }
        let Ok(h) = image_holders(p) else { continue };
        if !h.qemu.is_empty() {
            return Status::Running(format!("{}: {}", d.line.key, h.qemu.join("; ")));
        }
        if in_use.is_none()
            && let Some(why) = h.why()
        {
            in_use = Some(format!("{}: {why}", d.line.key));
        }
    }
    in_use.map_or(Status::Stopped, Status::InUse)
}

/// Whether `<run_dir>/<vmid>.pid` names a live QEMU/KVM process.
fn pid_file_alive(run_dir: &Path, vmid: u32) -> Option<String> {
    let pidfile = run_dir.join(format!("{vmid}.pid"));
    let text = std::fs::read_to_string(&pidfile).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    let base = argv0.rsplit('/').next().unwrap_or_default();
    (base == "kvm" || base.contains("qemu")).then(|| {
        format!(
            "its pid file {} names the live process {pid} ({})",
            pidfile.display(),
            escape_str(base)
        )
    })
}

/// One guest in words: (VMID, type, name, status) and the lines about it
/// (its disks and where they are, why it counts as running, its snapshots).
pub fn describe(g: &Guest) -> ([String; 4], Vec<String>) {
    let mut name = g.name().map(escape_str).unwrap_or_default();
    if g.config.template {
        name.push_str(" (template)");
    }
    let status = match &g.status {
        Status::Running(_) => "running",
        Status::InUse(_) => "in use",
        Status::Stopped => "stopped",
    };
    let mut lines: Vec<String> = g
        .disks
        .iter()
        .map(|d| {
            let size = d
                .line
                .size
                .as_deref()
                .map(|s| format!(" {}", escape_str(s)))
                .unwrap_or_default();
            let place = match &d.path {
                Ok(p) => format!(
                    "{}{}",
                    p.display(),
                    if reachable(p) { "" } else { " (missing)" }
                ),
                Err(e) => format!("cannot open: {}", escape_str(e)),
            };
            format!(
                "{} {}{size} → {place}",
                d.line.key,
                escape_str(&d.line.volume)
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("(no disks)".into());
    }
    match &g.status {
        Status::Running(why) => lines.push(format!("running: {}", escape_str(why))),
        Status::InUse(why) => lines.push(format!("in use: {}", escape_str(why))),
        Status::Stopped => {}
    }
    if !g.config.snapshots.is_empty() {
        let s: Vec<String> = g.config.snapshots.iter().map(|s| escape_str(s)).collect();
        lines.push(format!("snapshots: {}", s.join(", ")));
    }
    (
        [
            g.vmid.to_string(),
            g.kind.short().into(),
            name,
            status.into(),
        ],
        lines,
    )
}

/// The guest list as a table, for a person to pick from.
pub fn render_list(guests: &[Guest]) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "VMID".into(),
        "TYPE".into(),
        "NAME".into(),
        "STATUS".into(),
        "DISKS".into(),
    ]];
    let mut extra: Vec<Vec<String>> = vec![Vec::new()];
    for g in guests {
        let ([id, kind, name, status], mut lines) = describe(g);
        let first = lines.remove(0);
        rows.push([id, kind, name, status, first]);
        extra.push(lines);
    }
    let mut widths = [0usize; 4];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(crate::text::columns(c));
        }
    }
    let indent: usize = widths.iter().map(|w| w + 2).sum();
    let mut out = String::new();
    for (r, more) in rows.iter().zip(&extra) {
        for (i, c) in r.iter().enumerate().take(4) {
            out.push_str(&crate::text::pad(c, widths[i], false));
            out.push_str("  ");
        }
        out.push_str(&r[4]);
        out.push('\n');
        for m in more {
            out.push_str(&" ".repeat(indent));
            out.push_str(m);
            out.push('\n');
        }
    }
    out
}
