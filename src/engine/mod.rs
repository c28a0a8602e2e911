//! Engines: how a volume's filesystem is read.
//!
//! The userspace engine parses the filesystem itself from the volume's bytes
//! (no root, nothing mounted). The kernel engine (root) maps the same
//! [`crate::io::Mapping`] with device-mapper over a read-only loop device and
//! mounts it read-only.
//!
//! [`Engines`] is what commands use: it holds the operator's choice
//! (`--engine userspace|kernel|auto`), says which engine serves a volume
//! and why ([`Engines::decide`]), opens filesystems through it, and owns
//! the userspace engine's open filesystems and the kernel session (torn
//! down when the `Engines` is dropped).
//!
//! [`VolumeOpener`] is the one seam the commands and the TUI open volumes
//! through: [`Engines`] and [`userspace::Userspace`] implement it (tests add
//! an in-memory one).

pub mod kernel;
pub mod userspace;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::fs::{FsOptions, FsView};
use crate::layers::{Layout, VolumeId, VolumeKind};

/// Opens the filesystem of a volume: the engines, the userspace engine
/// alone, or an in-memory filesystem in tests.
pub trait VolumeOpener: Send + Sync {
    /// The engine's name for the status bar.
    fn engine(&self) -> String;
    /// The engine that serves volume `id` (`userspace`, `kernel`).
    fn engine_for(&self, _layout: &Layout, _id: VolumeId) -> String {
        self.engine()
    }
    /// Open volume `id` of `layout`.
    fn open(&self, layout: &Layout, id: VolumeId) -> std::result::Result<Arc<dyn FsView>, String>;
    /// The kernel engine's session when it serves volume `id` (a repair is
    /// then planned on its read-only mount and written through a read-write
    /// one, [`crate::repair::relink::Writer::for_volume`]), or why it could
    /// not be started; `None` when vmrescue reads the volume itself (a
    /// repair is written in place).
    fn kernel_session(
        &self,
        _layout: &Layout,
        _id: VolumeId,
    ) -> Option<std::result::Result<Arc<kernel::Session>, String>> {
        None
    }
    /// Forget what was opened of volume `id` (its bytes changed, or it is
    /// to be read afresh), so the next [`VolumeOpener::open`] reads it again.
    fn forget(&self, _id: VolumeId) {}
}

/// What a command works on: one volume on its own, or a guest as it boots
/// (its root, with the volumes its fstab mounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// The volume: the guest's root when `guest`.
    pub volume: VolumeId,
    /// Whether the whole guest is meant (its namespace), not the volume alone.
    pub guest: bool,
    /// The btrfs subvolume named (`--volume p2@home`), by id: the volume
    /// alone, shown from that subvolume.
    pub subvolume: Option<u64>,
}

/// What a command works on: with `--volume`, that volume alone, or, when it
/// names a volume holding a whole disk (a VM disk in a host LV,
/// `pve/vm-100-disk-0`), the guest on that disk as it boots; without, the
/// guest root as [`select_volume`] chooses it.
pub fn select(layout: &Layout, spec: Option<&str>) -> Result<Selection> {
    let Some(spec) = spec else {
        let volume = select_volume(layout, None)?;
        let guest = layout.volume(volume).guest.os.is_some();
        return Ok(Selection {
            volume,
            guest,
            subvolume: None,
        });
    };
    let (id, subvolume) = layout.find_volume_or_subvolume(spec)?;
    if subvolume.is_some() || layout.volume(id).is_filesystem() {
        return Ok(Selection {
            volume: id,
            guest: false,
            subvolume,
        });
    }
    // The guest roots on the disk this volume holds (directly, or through
    // further nested disks: the nearest win).
    let mut inside: Vec<(usize, VolumeId)> = layout
        .guest_roots()
        .into_iter()
        .filter(|&r| layout.volume(r).is_filesystem())
        .filter_map(|r| {
            let mut at = r;
            for depth in 0..=crate::layers::MAX_NESTED_DEPTH {
                at = layout.holder(at)?;
                if at == id {
                    return Some((depth, r));
                }
            }
            None
        })
        .collect();
    inside.sort();
    match inside.as_slice() {
        // No guest there: its only filesystem, if it has one.
        [] => {
            let fss: Vec<VolumeId> = layout
                .filesystems()
                .filter(|v| layout.holder(v.id) == Some(id))
                .map(|v| v.id)
                .collect();
            Ok(Selection {
                volume: match fss.as_slice() {
                    [one] => *one,
                    _ => id,
                },
                guest: false,
                subvolume: None,
            })
        }
        [(_, one)] => Ok(Selection {
            volume: *one,
            guest: true,
            subvolume: None,
        }),
        [(d0, one), (d1, _), ..] if d0 < d1 => Ok(Selection {
            volume: *one,
            guest: true,
            subvolume: None,
        }),
        many => Err(Error::Invalid(format!(
            "{spec:?} holds more than one guest root: choose one with --volume ({})",
            many.iter()
                .map(|(_, r)| layout.volume(*r).name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The volume a command works on: the one named with `--volume` (or the
/// guest root on the disk it holds, see [`select`]), else the guest root,
/// else the only filesystem; otherwise an error listing the choices.
pub fn select_volume(layout: &Layout, spec: Option<&str>) -> Result<VolumeId> {
    if let Some(spec) = spec {
        return select(layout, Some(spec)).map(|s| s.volume);
    }
    let roots: Vec<VolumeId> = layout
        .volumes
        .iter()
        .filter(|v| v.guest.os.is_some() && v.is_filesystem() && !another_member(layout, v))
        .map(|v| v.id)
        .collect();
    if let [one] = roots.as_slice() {
        return Ok(*one);
    }
    // A host's own root before the guests' on its nested disks.
    let top: Vec<VolumeId> = roots
        .iter()
        .copied()
        .filter(|id| layout.holder(*id).is_none())
        .collect();
    if let [one] = top.as_slice() {
        return Ok(*one);
    }
    let fss: Vec<VolumeId> = layout
        .filesystems()
        .filter(|v| !another_member(layout, v))
        .map(|v| v.id)
        .collect();
    if let [one] = fss.as_slice() {
        return Ok(*one);
    }
    let choices: Vec<String> = layout
        .filesystems()
        .filter(|v| !another_member(layout, v))
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
        let locked: Vec<&str> = layout
            .luks
            .iter()
            .filter(|(_, l)| l.unlocked_by.is_none())
            .map(|(id, _)| layout.volume(*id).name.as_str())
            .collect();
        if !locked.is_empty() {
            return Err(Error::Invalid(format!(
                "no filesystem vmrescue can browse: {} encrypted (LUKS) and locked; unlock with \
                 --key-file FILE, the passphrase prompt on a terminal, or Enter on it in the \
                 browser (the volumes are: {})",
                locked.join(", ") + if locked.len() == 1 { " is" } else { " are" },
                layout.volume_choices()
            )));
        }
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

/// Whether `v` is a device of a btrfs filesystem whose earlier device in
/// the layout stands for it (one filesystem over several volumes opens
/// from any of them: the first is the one chosen).
fn another_member(layout: &Layout, v: &crate::layers::Volume) -> bool {
    v.content.kind == crate::layers::ContentKind::Btrfs
        && v.content.uuid.is_some()
        && layout.volumes.iter().take(v.id.0).any(|o| {
            o.content.kind == crate::layers::ContentKind::Btrfs
                && o.content.uuid == v.content.uuid
                && o.is_filesystem()
        })
}

/// The engine the operator asked for (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// Only vmrescue's own readers; no root, nothing mounted.
    Userspace,
    /// Only loop + device-mapper + a read-only mount (root).
    Kernel,
    /// Userspace where vmrescue reads the filesystem, kernel where it
    /// cannot and the kernel engine is available.
    #[default]
    Auto,
}

impl FromStr for EngineChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "userspace" => Ok(EngineChoice::Userspace),
            "kernel" => Ok(EngineChoice::Kernel),
            "auto" => Ok(EngineChoice::Auto),
            other => Err(format!(
                "unknown engine {other:?} (choose userspace, kernel or auto)"
            )),
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineChoice::Userspace => "userspace",
            EngineChoice::Kernel => "kernel",
            EngineChoice::Auto => "auto",
        })
    }
}

/// An engine that reads a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// vmrescue's own filesystem readers.
    Userspace,
    /// Loop + device-mapper + read-only mount.
    Kernel,
}

impl Engine {
    /// `userspace` or `kernel`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Userspace => "userspace",
            Engine::Kernel => "kernel",
        }
    }
}

/// Which engine serves a volume, and why (for `layers` and the status bar).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// The engine, or `None` when neither can read the volume.
    pub engine: Option<Engine>,
    /// Why, in words.
    pub reason: String,
}

/// The filesystem table's row for `kind` ([`crate::fs::kinds`]), if it is
/// a filesystem.
pub fn fs_kind(kind: crate::layers::ContentKind) -> Option<&'static crate::fs::kinds::FsKind> {
    crate::fs::kinds::by_probe_name(kind.name())
}

/// Whether vmrescue's own readers read `kind` filesystems (ext2/3/4, XFS).
pub fn userspace_reads(kind: crate::layers::ContentKind) -> bool {
    fs_kind(kind).is_some_and(|k| k.reader.is_some())
}

/// Why the kernel engine cannot run on this machine (checked once), or `Ok`.
pub fn kernel_available() -> std::result::Result<(), String> {
    static AVAILABLE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    AVAILABLE.get_or_init(kernel::available).clone()
}

/// The reasons a mapping cannot be read, each once.
fn unreadable_reasons(m: &crate::io::Mapping) -> String {
    let mut v: Vec<&str> = Vec::new();
    for r in m.unreadable() {
        if !v.contains(&r) {
            v.push(r);
        }
    }
    v.join("; ")
}

/// Why the kernel engine cannot serve volume `id`, or `Ok`.
fn kernel_serves(layout: &Layout, id: VolumeId) -> std::result::Result<(), String> {
    if let Some(why) = in_image_file(layout, id) {
        return Err(why);
    }
    kernel_available()?;
    let v = layout.volume(id);
    if !kernel::mountable(v.content.kind) {
        return Err(format!(
            "the kernel engine does not mount {}",
            v.content.kind.name()
        ));
    }
    if !v.mapping.unreadable().is_empty() {
        return Err(unreadable_reasons(&v.mapping));
    }
    if let Some(why) = raid_in(&v.mapping) {
        return Err(why);
    }
    for d in v.mapping.disks() {
        if let Some(disk) = layout.disks.get(d.0) {
            kernel::exposable(disk.format)?;
        }
        // An unlocked LUKS volume's plain bytes: a dm-crypt device over
        // the disks the LUKS volume lies on.
        if let Some((holder, _)) = kernel::crypt_of(layout, d) {
            if let Err(dm_why) = kernel::dm_available() {
                return Err(format!(
                    "it lies on LUKS volume {}, which needs device-mapper (dm-crypt), and {dm_why}",
                    layout.volume(holder).name
                ));
            }
            for o in layout.volume(holder).mapping.disks() {
                if let Some(disk) = layout.disks.get(o.0) {
                    kernel::exposable(disk.format)?;
                }
            }
        }
    }
    if let Err(dm_why) = kernel::dm_available()
        && let Some(why) = kernel::needs_dm(layout, id)
    {
        return Err(format!(
            "{why}: mapping it needs device-mapper, and {dm_why}"
        ));
    }
    Ok(())
}

/// The MD array volume `id` is, or lies on (a VG on an array, its
/// partitions): its name. The kernel engine maps no MD array.
fn on_md_array(layout: &Layout, id: VolumeId) -> Option<String> {
    let mut at = id;
    for _ in 0..=crate::layers::MAX_NESTING {
        let v = layout.volumes.get(at.0)?;
        if let VolumeKind::MdArray { .. } = v.kind {
            return Some(v.name.clone());
        }
        let holder = v
            .mapping
            .disks()
            .iter()
            .filter_map(|d| layout.disks.get(d.0))
            .find_map(|d| d.parent)?;
        at = holder;
    }
    None
}

/// Why the kernel engine does not map `mapping`, when part of it is a RAID
/// array (the kernel would need dm-raid, which writes superblocks and may
/// resync or rebuild legs).
fn raid_in(mapping: &crate::io::Mapping) -> Option<String> {
    mapping.segments().iter().find_map(|s| match &s.target {
        crate::io::Target::Raid(r) => Some(kernel::dm::raid_refusal(r)),
        _ => None,
    })
}

/// Whether volume `v` holds a filesystem that can be opened when it is
/// named: [`crate::layers::Volume::is_filesystem`], hidden sub-LVs included
/// (lists leave them out; `--volume vg/lv_corig` opens one).
pub(crate) fn openable(v: &crate::layers::Volume) -> bool {
    v.content.kind.is_filesystem() && v.mapping.unreadable().is_empty()
}

/// Why the kernel cannot map volume `id` when its bytes come from a disk
/// image stored as a file inside a filesystem that vmrescue reads itself
/// (`--open`): a loop device needs a file on the host.
fn in_image_file(layout: &Layout, id: VolumeId) -> Option<String> {
    let v = layout.volume(id);
    let disk = v
        .mapping
        .disks()
        .iter()
        .filter_map(|d| layout.disks.get(d.0))
        .find(|d| d.origin.in_file())?;
    Some(format!(
        "its disk ({}) is a disk image stored inside a filesystem that vmrescue reads itself, \
         which the kernel cannot loop-mount",
        disk.origin
    ))
}

/// Which engine serves volume `id` under `choice`, and why.
pub fn decide(layout: &Layout, id: VolumeId, choice: EngineChoice) -> Decision {
    let v = layout.volume(id);
    let kind = v.content.kind;
    let none = |reason: String| Decision {
        engine: None,
        reason,
    };
    // A hidden sub-LV (a cache's origin, a raid image) opens when named.
    if !openable(v) {
        if !v.mapping.unreadable().is_empty() {
            return none(format!("unreadable: {}", unreadable_reasons(&v.mapping)));
        }
        return none(format!("holds {}, not a filesystem", v.content.describe()));
    }
    let fs = kind.name();
    let ours = userspace_reads(kind);
    if let Some(md) = on_md_array(layout, id) {
        return if ours {
            Decision {
                engine: Some(Engine::Userspace),
                reason: format!(
                    "{fs}: on MD array {md}, which the kernel engine does not map (no md here): read by vmrescue itself"
                ),
            }
        } else {
            none(format!(
                "{fs}: on MD array {md}: vmrescue cannot read {fs} itself, and the kernel engine does not map MD arrays"
            ))
        };
    }
    match choice {
        EngineChoice::Userspace if ours => Decision {
            engine: Some(Engine::Userspace),
            reason: format!("{fs}: read by vmrescue itself (--engine userspace)"),
        },
        EngineChoice::Userspace => none(format!(
            "{fs}: vmrescue cannot read it itself; the kernel engine can (--engine kernel, as root)"
        )),
        EngineChoice::Kernel => match kernel_serves(layout, id) {
            Ok(()) => Decision {
                engine: Some(Engine::Kernel),
                reason: format!("{fs}: mounted read-only by the kernel (--engine kernel)"),
            },
            Err(why) if ours && in_image_file(layout, id).is_some() => Decision {
                engine: Some(Engine::Userspace),
                reason: format!(
                    "{fs}: read by vmrescue itself: the kernel engine (--engine kernel) cannot serve it: {why}"
                ),
            },
            Err(why) => none(format!("{fs}: the kernel engine cannot serve it: {why}")),
        },
        EngineChoice::Auto if ours => Decision {
            engine: Some(Engine::Userspace),
            reason: match raid_in(&v.mapping) {
                Some(why) => format!("{fs}: read by vmrescue itself ({why})"),
                None => format!("{fs}: read by vmrescue itself"),
            },
        },
        EngineChoice::Auto => match kernel_serves(layout, id) {
            Ok(()) => Decision {
                engine: Some(Engine::Kernel),
                reason: format!(
                    "{fs}: vmrescue cannot read it itself, so the kernel mounts it read-only"
                ),
            },
            Err(why) => none(format!(
                "{fs}: vmrescue cannot read it itself, and the kernel engine is unavailable: {why}"
            )),
        },
    }
}

/// The engines of one command run: the operator's choice and, once
/// needed, the kernel session (torn down when this is dropped).
pub struct Engines {
    choice: EngineChoice,
    userspace: userspace::Userspace,
    session: Mutex<Option<Arc<kernel::Session>>>,
}

impl Engines {
    /// Engines for `choice`.
    pub fn new(choice: EngineChoice) -> Engines {
        Engines {
            choice,
            userspace: userspace::Userspace::default(),
            session: Mutex::new(None),
        }
    }

    /// The operator's choice.
    pub fn choice(&self) -> EngineChoice {
        self.choice
    }

    /// Which engine serves volume `id`, and why.
    pub fn decide(&self, layout: &Layout, id: VolumeId) -> Decision {
        decide(layout, id, self.choice)
    }

    /// The userspace engine (and the filesystems it has opened).
    pub fn userspace(&self) -> &userspace::Userspace {
        &self.userspace
    }

    /// The kernel session, started on first use.
    pub fn kernel(&self) -> Result<Arc<kernel::Session>> {
        let mut s = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = s.as_ref() {
            return Ok(Arc::clone(s));
        }
        let new = kernel::Session::start()?;
        *s = Some(Arc::clone(&new));
        Ok(new)
    }

    /// Open volume `id`'s filesystem with the engine [`Engines::decide`] picks.
    pub fn open_fs(
        &self,
        layout: &Layout,
        id: VolumeId,
        opts: &FsOptions,
    ) -> Result<Arc<dyn FsView>> {
        let d = self.decide(layout, id);
        let name = &layout.volume(id).name;
        match d.engine {
            Some(Engine::Userspace) => self.userspace.open_fs(layout, id, opts),
            Some(Engine::Kernel) => self.kernel()?.open_fs(layout, id),
            None => {
                // Say the precise reason (not root, no device-mapper...).
                if self.choice == EngineChoice::Kernel
                    && let Err(why) = kernel_available()
                {
                    return Err(Error::Unsupported(format!("{name}: {why}")));
                }
                Err(Error::Unsupported(format!("{name}: {}", d.reason)))
            }
        }
    }

    /// Tear the kernel session down now; returns the problems (busy devices).
    pub fn close(&self) -> Vec<String> {
        let s = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        s.map(|s| s.teardown()).unwrap_or_default()
    }
}

impl VolumeOpener for Engines {
    fn engine(&self) -> String {
        self.choice.to_string()
    }
    fn open(&self, layout: &Layout, id: VolumeId) -> std::result::Result<Arc<dyn FsView>, String> {
        self.open_fs(layout, id, &FsOptions::default())
            .map_err(|e| e.to_string())
    }
    fn engine_for(&self, layout: &Layout, id: VolumeId) -> String {
        match self.decide(layout, id).engine {
            Some(e) => e.name().to_string(),
            None => self.engine(),
        }
    }
    fn kernel_session(
        &self,
        layout: &Layout,
        id: VolumeId,
    ) -> Option<std::result::Result<Arc<kernel::Session>, String>> {
        (self.decide(layout, id).engine == Some(Engine::Kernel))
            .then(|| self.kernel().map_err(|e| e.to_string()))
    }
    fn forget(&self, id: VolumeId) {
        self.userspace.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use crate::fs::kinds::KINDS;
    use crate::layers::ContentKind;

    const ALL: &[ContentKind] = &[
        ContentKind::Ext2,
        ContentKind::Ext3,
        ContentKind::Ext4,
        ContentKind::Jbd,
        ContentKind::Xfs,
        ContentKind::Btrfs,
        ContentKind::Vfat,
        ContentKind::Exfat,
        ContentKind::Ntfs,
        ContentKind::Swap,
        ContentKind::LvmPv,
        ContentKind::Luks,
        ContentKind::Iso9660,
        ContentKind::Squashfs,
        ContentKind::MdRaid,
        ContentKind::Qcow2,
        ContentKind::Vmdk,
        ContentKind::Vhd,
        ContentKind::Vhdx,
        ContentKind::Vdi,
        ContentKind::PartitionTable,
        ContentKind::Zeros,
        ContentKind::Unknown,
        ContentKind::Unreadable,
    ];

    #[test]
    fn the_filesystem_table_has_a_row_for_every_filesystem_the_probe_finds() {
        for &kind in ALL {
            assert_eq!(
                super::fs_kind(kind).is_some(),
                kind.is_filesystem(),
                "{}",
                kind.name()
            );
        }
        for row in KINDS {
            assert!(
                ALL.iter().any(|k| k.name() == row.name),
                "{}: no probe kind of that name",
                row.name
            );
        }
    }

    #[test]
    fn the_engines_read_what_the_table_says() {
        assert!(super::userspace_reads(ContentKind::Ext3));
        assert!(super::userspace_reads(ContentKind::Xfs));
        assert!(super::userspace_reads(ContentKind::Btrfs));
        assert!(super::userspace_reads(ContentKind::Vfat));
        assert!(super::userspace_reads(ContentKind::Ntfs));
        assert!(!super::userspace_reads(ContentKind::Exfat));
        assert!(!super::userspace_reads(ContentKind::Jbd));
        assert!(super::kernel::mountable(ContentKind::Ntfs));
        assert!(!super::kernel::mountable(ContentKind::Swap));
    }
}
