//! The kernel engine: loop devices + device-mapper + a read-only mount.
//!
//! What kpartx and `vgchange -ay` did in the story, from vmrescue's own
//! [`Mapping`] and without touching the host's LVM:
//!
//! 1. each disk the volume lives on becomes a read-only, autoclear loop
//!    device ([`loopdev`]); a whole-disk PV is exposed from its data area
//!    on, so no device ever starts with a `LABELONE` label;
//! 2. the volume's mapping becomes a read-only dm device ([`dm`]) named
//!    `vmrescue-<session>-<volume>`, resumed with udev's other rules off;
//!    on a kernel without device-mapper, a volume that is one contiguous
//!    range of one disk (a partition, a whole-disk filesystem, a one-segment
//!    linear LV) gets a read-only loop device over exactly its bytes instead;
//! 3. the dm device is mounted read-only under
//!    `/run/vmrescue/<session>/<volume>` ([`mount`]) and browsed through
//!    an [`FsView`] over the mounted directory. A btrfs over several
//!    devices has each other member mapped the same way and named to the
//!    kernel with `device=` (it scans no devices by itself here); they are
//!    part of the volume's mapping and torn down after its device.
//!
//! Every object is written to the session's state file ([`state`]) before
//! it is created. A [`Session`] tears everything down in reverse order
//! (unmount → dm remove → loop detach) when dropped, on SIGINT/SIGTERM/
//! SIGHUP and on panic, first closing the descriptors of every view still
//! open on a mount (so the interface or a job holding one never makes the
//! unmount busy); `vmrescue cleanup` ([`state::cleanup`]) removes
//! what a killed session left.

pub mod dm;
#[path = "loop.rs"]
pub mod loopdev;
pub mod mount;
mod mounted;
pub mod nbd;
pub mod repair;
pub mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Once, Weak};

use crate::error::{Error, Result};
use crate::fs::{FsStatus, FsView};
use crate::image::ImageFormat;
use crate::io::{DiskId, ReadAt, Target};
use crate::layers::{ContentKind, Layout, VolumeId, VolumeKind};

use dm::{DmDevice, Exposure};
use state::{Object, StateFile};

/// Why the kernel engine cannot run here, or `Ok` when it can. Device-mapper
/// is not required: without it, volumes that are one contiguous range get
/// a loop device of their own ([`needs_dm`]).
pub fn available() -> std::result::Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("the kernel engine needs root (loop devices, device-mapper, mount)".into());
    }
    if !Path::new(loopdev::CONTROL).exists() {
        return Err(format!(
            "{} is missing: this kernel has no loop devices (try `modprobe loop`)",
            loopdev::CONTROL
        ));
    }
    Ok(())
}

/// Set (non-empty) to make the kernel engine work as on a kernel without
/// device-mapper: loop devices over single-range volumes only.
pub const NO_DM_ENV: &str = "VMRESCUE_NO_DM";

/// The option that mounts a btrfs volume's top level (subvolume 5).
const TOP_LEVEL: &str = "subvolid=5";

/// Why device-mapper cannot be used here (checked once), or `Ok`.
pub fn dm_available() -> std::result::Result<(), String> {
    static DM: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DM.get_or_init(|| {
        if std::env::var_os(NO_DM_ENV).is_some_and(|v| !v.is_empty()) {
            return Err(format!("device-mapper is not used ({NO_DM_ENV} is set)"));
        }
        dm::available().map(|_| ())
    })
    .clone()
}

/// The one disk range volume `id` occupies, when its mapping is a single
/// linear segment: (disk, byte offset, length).
fn single_range(layout: &Layout, id: VolumeId) -> Option<(DiskId, u64, u64)> {
    match layout.volume(id).mapping.segments() {
        [seg] if seg.start == 0 => match &seg.target {
            Target::Linear(area) => Some((area.disk, area.offset, seg.len)),
            _ => None,
        },
        _ => None,
    }
}

/// Why volume `id` can only be exposed through device-mapper, or `None`
/// when a loop device over its bytes serves it (one contiguous range).
pub fn needs_dm(layout: &Layout, id: VolumeId) -> Option<String> {
    if single_range(layout, id).is_some() {
        return None;
    }
    let v = layout.volume(id);
    let segs = v.mapping.segments();
    let striped = segs
        .iter()
        .any(|s| matches!(s.target, Target::Striped { .. }));
    Some(if striped {
        format!("{} is striped", v.name)
    } else {
        format!("{} is made of {} separate segments", v.name, segs.len())
    })
}

/// The other devices of the multi-device btrfs on volume `id`: its
/// siblings ([`crate::engine::userspace::btrfs_siblings`], same-disk ones
/// first), one per btrfs device id (a copy of a device, a cloned disk, is
/// left out: the kernel must see each device once), none with `id`'s own
/// device id and none whose superblock cannot be read.
fn btrfs_members(layout: &Layout, id: VolumeId) -> Vec<VolumeId> {
    let devid = |v: VolumeId| {
        crate::fs::btrfs::sb::read(&*layout.open_volume(v))
            .ok()
            .map(|(sb, _)| sb.devid)
    };
    let Some(own) = devid(id) else {
        return Vec::new();
    };
    let mut seen = vec![own];
    let mut out = Vec::new();
    for sib in crate::engine::userspace::btrfs_siblings(layout, id) {
        if let Some(d) = devid(sib)
            && !seen.contains(&d)
        {
            seen.push(d);
            out.push(sib);
        }
    }
    out
}

/// Refuse a volume that starts with an LVM label (a PV nested inside it):
/// a device over it would show that PV to the host's LVM.
fn check_no_pv_label(layout: &Layout, id: VolumeId) -> Result<()> {
    let src = layout.open_volume(id);
    if pv_label_at(&*src, 0)? {
        return Err(Error::Refused(format!(
            "{} starts with an LVM label (a PV inside it): mapping it would show that PV \
             to the host's LVM",
            layout.volume(id).name
        )));
    }
    Ok(())
}

/// The block device a volume is mounted from.
#[derive(Debug, Clone)]
pub enum VolumeDevice {
    /// A device-mapper device over the disks' devices.
    Dm(DmDevice),
    /// A loop device over exactly the volume's bytes (no device-mapper here).
    Loop {
        /// `/dev/loopN`.
        number: u32,
    },
}

impl VolumeDevice {
    /// Its `/dev` node.
    pub fn node(&self) -> PathBuf {
        match self {
            VolumeDevice::Dm(d) => d.node(),
            VolumeDevice::Loop { number } => loopdev::node(*number),
        }
    }

    /// The kernel's name for it (`dm-3`, `loop7`), as kernel messages say it.
    pub fn kernel_name(&self) -> String {
        match self {
            VolumeDevice::Dm(d) => d.kernel_name(),
            VolumeDevice::Loop { number } => format!("loop{number}"),
        }
    }
}

/// Whether the kernel engine can expose `format` images, as `Err(reason)` when not.
pub fn exposable(format: ImageFormat) -> std::result::Result<(), String> {
    match format {
        ImageFormat::Raw | ImageFormat::BlockDevice => Ok(()),
        ImageFormat::Qcow2 => nbd::available().map_err(|why| {
            format!(
                "a loop device cannot expose a qcow2 image and qemu-nbd cannot be used ({why}); \
                 use the userspace engine (--engine userspace)"
            )
        }),
        ImageFormat::Vmdk | ImageFormat::Vhd | ImageFormat::Vhdx | ImageFormat::Vdi => {
            Err(format!(
                "a loop device cannot expose a {} image; use the userspace engine \
             (--engine userspace)",
                format.name()
            ))
        }
        ImageFormat::Rbd => Err(
            "the kernel engine cannot expose a Ceph RBD image without `rbd map`, which vmrescue \
             does not do; use the userspace engine (--engine userspace)"
                .into(),
        ),
        ImageFormat::Nbd => Err("a disk served over NBD is no host file a loop device can \
             expose; use the userspace engine (--engine userspace)"
            .to_string()),
    }
}

/// Whether the kernel can mount `kind`.
pub fn mountable(kind: ContentKind) -> bool {
    mount::options(kind, false).is_ok()
}

/// `LABELONE` in any of the first four sectors of `head`.
fn has_pv_label(head: &[u8]) -> bool {
    (0..4).any(|i| head.get(i * 512..i * 512 + 8) == Some(b"LABELONE".as_slice()))
}

/// Whether the 2 KiB at `offset` of `src` hold an LVM label.
fn pv_label_at(src: &dyn ReadAt, offset: u64) -> Result<bool> {
    let len = 2048u64.min(src.size().saturating_sub(offset));
    let mut head = vec![0u8; len as usize];
    src.read_exact_at(offset, &mut head)
        .map_err(|e| Error::io(format!("reading byte {offset}"), e))?;
    Ok(has_pv_label(&head))
}

/// Where the device for `disk` must start so that it shows no PV label:
/// 0, or for a whole-disk PV its data area (`pe_start`).
pub fn exposure_start(layout: &Layout, disk: DiskId) -> Result<u64> {
    let d = &layout.disks[disk.0];
    if !pv_label_at(&*d.source, 0)? {
        return Ok(0);
    }
    let pe_start = layout
        .pvs
        .iter()
        .position(|p| p.area.disk == disk && p.area.offset == 0)
        .and_then(|i| {
            layout
                .groups
                .iter()
                .flat_map(|g| g.pvs.iter())
                .find(|p| p.found == Some(i))
                .map(|p| p.pe_start)
        })
        .ok_or_else(|| {
            Error::Refused(format!(
                "{} is a whole-disk LVM PV whose data area is unknown: the kernel engine \
                 exposes such a disk only from its data area on (so the host never sees the PV)",
                d.origin
            ))
        })?;
    if pv_label_at(&*d.source, pe_start)? {
        return Err(Error::Refused(format!(
            "{}: the data area at byte {pe_start} starts with another LVM label; \
             exposing it would show a PV to the host",
            d.origin
        )));
    }
    Ok(pe_start)
}

/// Make a block device node (when there is no devtmpfs or udev).
pub fn make_block_node(path: &Path, dev: (u32, u32)) -> Result<()> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(
        path,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(u64::from(dev.0), u64::from(dev.1)),
    )
    .map_err(|e| Error::io(format!("mknod {}", path.display()), e.into()))
}

/// Refuse volumes the kernel engine never maps: LVM PVs (their LVs are
/// mapped instead, so the host never sees the PV) and extended partitions.
pub fn check_mappable(layout: &Layout, id: VolumeId) -> Result<()> {
    let v = layout.volume(id);
    if v.content.kind == ContentKind::LvmPv {
        return Err(Error::Refused(format!(
            "{} is an LVM physical volume: the kernel engine maps its logical volumes, \
             never the PV itself",
            v.name
        )));
    }
    if let VolumeKind::Partition { entry, .. } = &v.kind
        && entry.extended
    {
        return Err(Error::Invalid(format!(
            "{} is an extended partition (a container)",
            v.name
        )));
    }
    Ok(())
}

/// The dm table for volume `id` over the disks' devices (`exposures[disk]`),
/// after the host-safety checks: not a PV, not an extended partition, no
/// unreadable segment, and no LVM label at its start (a PV nested in an LV).
pub fn plan(
    layout: &Layout,
    id: VolumeId,
    exposures: &[Option<Exposure>],
) -> Result<Vec<dm::TableLine>> {
    check_mappable(layout, id)?;
    let v = layout.volume(id);
    let lines = dm::table(&v.mapping, exposures)
        .map_err(|why| Error::Refused(format!("{}: cannot map it: {why}", v.name)))?;
    check_no_pv_label(layout, id)?;
    Ok(lines)
}

/// Disk `disk` of the layout, when the kernel engine can expose its format.
fn exposable_disk(layout: &Layout, disk: DiskId) -> Result<&crate::layers::Disk> {
    let d = layout
        .disks
        .get(disk.0)
        .ok_or_else(|| Error::Invalid(format!("disk {} is not open", disk.0)))?;
    d.host_path("the kernel engine")?;
    exposable(d.format).map_err(|why| Error::Unsupported(format!("{}: {why}", d.origin)))?;
    Ok(d)
}

/// A disk exposed as a block device.
#[derive(Debug)]
enum Exposed {
    Loop {
        dev: loopdev::LoopDevice,
        object: Object,
    },
    Nbd {
        dev: nbd::NbdDevice,
        object: Object,
    },
    /// An unlocked LUKS volume's plain bytes: a read-only dm-crypt device
    /// over the devices of the disks the LUKS volume lies on (`deps`,
    /// exposed before it and released after it).
    Crypt {
        dev: DmDevice,
        object: Object,
        deps: Vec<(DiskId, bool)>,
    },
}

impl Exposed {
    fn dev(&self) -> (u32, u32) {
        match self {
            Exposed::Loop { dev, .. } => dev.dev(),
            Exposed::Nbd { dev, .. } => dev.dev,
            Exposed::Crypt { dev, .. } => dev.dev,
        }
    }

    /// The disks this exposure uses (a dm-crypt device's).
    fn deps(&self) -> &[(DiskId, bool)] {
        match self {
            Exposed::Crypt { deps, .. } => deps,
            _ => &[],
        }
    }
}

/// Whether volume `id` lies on an unlocked LUKS volume's plain bytes:
/// `on LUKS volume NAME`, or `None`.
pub fn on_luks(layout: &Layout, id: VolumeId) -> Option<String> {
    layout
        .volume(id)
        .mapping
        .disks()
        .iter()
        .find_map(|d| crypt_of(layout, *d))
        .map(|(holder, _)| format!("on LUKS volume {}", layout.volume(holder).name))
}

/// The LUKS volume whose plain bytes disk `disk` is, with the dm-crypt
/// parameters of its unlock, when it is one.
pub fn crypt_of(
    layout: &Layout,
    disk: DiskId,
) -> Option<(VolumeId, &Arc<crate::layers::luks::DmCrypt>)> {
    let parent = layout.disks.get(disk.0)?.parent?;
    layout
        .crypt
        .iter()
        .find(|(v, _)| *v == parent)
        .map(|(v, c)| (*v, c))
}

/// A volume mapped (and maybe mounted) in a session.
#[derive(Debug)]
struct Mapped {
    volume: String,
    writable: bool,
    device: VolumeDevice,
    /// The dm device's state object (for a loop device: in `own`).
    object: Object,
    /// The loop device that is the volume's device (no device-mapper here).
    own: Option<Exposed>,
    mount: Option<(PathBuf, Object, Object)>,
    /// The views opened on the mount: closed before it is unmounted.
    views: Vec<Weak<mounted::MountedFs>>,
    /// The disks (and modes) this mapping holds (its members' too).
    disks: Vec<(DiskId, bool)>,
    /// The other devices of a multi-device btrfs, mapped for the mount
    /// (`device=`) and torn down after it, newest first.
    members: Vec<Mapped>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Option<StateFile>,
    exposed: HashMap<(DiskId, bool), (Exposed, Exposure)>,
    mapped: Vec<Mapped>,
    nodes: Vec<Object>,
}

/// A kernel-engine session: what it created, and the teardown of it all.
#[derive(Debug)]
pub struct Session {
    id: String,
    dir: PathBuf,
    inner: Mutex<Inner>,
}

static REGISTRY: Mutex<Vec<Weak<Session>>> = Mutex::new(Vec::new());
static HANDLERS: Once = Once::new();

fn registry() -> MutexGuard<'static, Vec<Weak<Session>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether loop-device tag `tag` (`lo_file_name`) is one of this process's
/// live sessions' own devices (`vmrescue-<session>:<file>` or
/// `vmrescue-<session>-<volume>`).
pub fn is_own_loop_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix(dm::NAME_PREFIX) else {
        return false;
    };
    registry().iter().filter_map(Weak::upgrade).any(|s| {
        rest.strip_prefix(s.id.as_str())
            .is_some_and(|after| after.starts_with(':') || after.starts_with('-'))
    })
}

/// Tear down every live session (signals, panics). Returns the problems.
pub fn teardown_all(blocking: bool) -> Vec<String> {
    let sessions: Vec<Arc<Session>> = registry().iter().filter_map(Weak::upgrade).collect();
    let mut problems = Vec::new();
    for s in sessions {
        problems.extend(s.teardown_inner(blocking));
    }
    problems
}

/// Arrange, once, that a signal (SIGINT, SIGTERM, SIGHUP) or a panic tears
/// every live session down ([`crate::teardown`]).
fn install_handlers() {
    HANDLERS.call_once(|| {
        crate::teardown::register(|end| {
            for p in teardown_all(end != crate::teardown::End::Panic) {
                eprintln!("vmrescue: {p}");
            }
        });
        if let Err(e) = crate::teardown::watch_signals() {
            eprintln!("vmrescue: cannot watch for signals: {e}");
        }
        crate::teardown::install_panic_hook();
    });
}

impl Session {
    /// Start a session: check the kernel can do it, create the state file,
    /// and arrange teardown on signals and panics.
    pub fn start() -> Result<Arc<Session>> {
        Self::start_in(Path::new(state::RUN_DIR))
    }

    /// [`Session::start`] with another run directory (for tests).
    pub fn start_in(run_dir: &Path) -> Result<Arc<Session>> {
        available().map_err(Error::Unsupported)?;
        let mut id = state::new_session_id();
        let mut file = None;
        for _ in 0..8 {
            match StateFile::create(run_dir, &id) {
                Ok(f) => {
                    file = Some(f);
                    break;
                }
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    id = state::new_session_id();
                }
                Err(e) => return Err(e),
            }
        }
        let file = file.ok_or_else(|| Error::Invalid("no free session id".into()))?;
        let dir = file.dir().to_path_buf();
        install_handlers();
        let s = Arc::new(Session {
            id,
            dir,
            inner: Mutex::new(Inner {
                state: Some(file),
                ..Inner::default()
            }),
        });
        let mut reg = registry();
        reg.retain(|w| w.strong_count() > 0);
        reg.push(Arc::downgrade(&s));
        Ok(s)
    }

    /// The short session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session directory (`/run/vmrescue/<id>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The block device for volume `id`, creating loop and dm devices as needed.
    pub fn map(&self, layout: &Layout, id: VolumeId, writable: bool) -> Result<VolumeDevice> {
        let mut inner = self.lock();
        self.map_locked(&mut inner, layout, id, writable)
    }

    fn record(inner: &mut Inner, obj: Object) -> Result<()> {
        match inner.state.as_mut() {
            Some(s) => s.add(obj),
            None => Err(Error::Refused(
                "the kernel session has been torn down".into(),
            )),
        }
    }

    fn forget(inner: &mut Inner, obj: &Object) -> Result<()> {
        match inner.state.as_mut() {
            Some(s) => s.remove(obj),
            None => Ok(()),
        }
    }

    /// A `/dev` node for `dev`, made (and recorded) when missing.
    fn ensure_node(inner: &mut Inner, path: &Path, dev: (u32, u32)) -> Result<()> {
        if path.exists() {
            return Ok(());
        }
        let obj = Object::Node {
            path: path.to_path_buf(),
        };
        Self::record(inner, obj.clone())?;
        make_block_node(path, dev)?;
        inner.nodes.push(obj);
        Ok(())
    }

    fn expose_disk(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        disk: DiskId,
        writable: bool,
    ) -> Result<Exposure> {
        if let Some((_, e)) = inner.exposed.get(&(disk, writable)) {
            return Ok(*e);
        }
        if let Some((holder, crypt)) = crypt_of(layout, disk) {
            return self.expose_crypt(inner, layout, disk, holder, crypt, writable);
        }
        let d = exposable_disk(layout, disk)?;
        let start = exposure_start(layout, disk)?;
        let size = d.size().saturating_sub(start);
        if size < 512 {
            return Err(Error::Invalid(format!(
                "{}: nothing to expose from byte {start}",
                d.origin
            )));
        }
        let path = d.host_path("a loop or nbd device")?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tag = loopdev::fit_tag(&format!("{}{}:{file_name}", dm::NAME_PREFIX, self.id));
        let backing = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let exposed = if d.format == ImageFormat::Qcow2 {
            let device = nbd::free_device()?;
            let object = Object::Nbd {
                device: device.clone(),
                image: backing.clone(),
            };
            Self::record(inner, object.clone())?;
            match nbd::connect(&device, &backing, writable, d.snapshot.as_deref()) {
                Ok(dev) => Exposed::Nbd { dev, object },
                Err(e) => {
                    let _ = Self::forget(inner, &object);
                    return Err(e);
                }
            }
        } else {
            let (dev, object) = self.attach_loop(inner, &backing, start, size, writable, &tag)?;
            Exposed::Loop { dev, object }
        };
        let dev = exposed.dev();
        // An nbd device shows the whole virtual disk: start must be 0 there.
        if matches!(exposed, Exposed::Nbd { .. }) && start != 0 {
            let e = Exposure {
                dev,
                start: 0,
                size: d.size(),
            };
            inner.exposed.insert((disk, writable), (exposed, e));
            return Err(Error::Unsupported(format!(
                "{}: a whole-disk PV in a qcow2 image through nbd would show its label to the host",
                d.origin
            )));
        }
        let e = Exposure { dev, start, size };
        inner.exposed.insert((disk, writable), (exposed, e));
        Ok(e)
    }

    /// Disk `disk`, the plain bytes of the unlocked LUKS volume `holder`,
    /// as a read-only dm-crypt device over the devices of the disks
    /// `holder` lies on, with the key vmrescue's unlock found. Like any
    /// disk it starts past a PV label (LVM on LUKS: the PV's data area).
    fn expose_crypt(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        disk: DiskId,
        holder: VolumeId,
        crypt: &Arc<crate::layers::luks::DmCrypt>,
        writable: bool,
    ) -> Result<Exposure> {
        let v = layout.volume(holder);
        if writable {
            return Err(Error::Refused(format!(
                "{} is a LUKS volume: the kernel engine opens what it holds read-only \
                 (dm-crypt), never for writing",
                v.name
            )));
        }
        dm_available().map_err(|why| {
            Error::Unsupported(format!(
                "{} is a LUKS volume: the kernel engine needs device-mapper (dm-crypt) for it, \
                 and {why}",
                v.name
            ))
        })?;
        check_mappable(layout, holder)?;
        let start = exposure_start(layout, disk)?;
        let len = crypt.size.saturating_sub(start);
        let deps = v.mapping.disks();
        let exposures = self.expose_all(inner, layout, &deps, false)?;
        let lines = match dm::crypt_table(&v.mapping, crypt, start, len, &exposures) {
            Ok(l) => l,
            Err(why) => {
                Self::release_unused(inner, &mut Vec::new());
                return Err(Error::Refused(format!(
                    "{}: cannot map it with dm-crypt: {why}",
                    v.name
                )));
            }
        };
        let (dev, object) = self.create_dm(inner, &format!("{}-crypt", v.name), &lines, false)?;
        let node = dev.node();
        let e = Exposure {
            dev: dev.dev,
            start,
            size: len,
        };
        let exposed = Exposed::Crypt {
            dev: dev.clone(),
            object,
            deps: deps.iter().map(|d| (*d, false)).collect(),
        };
        inner.exposed.insert((disk, writable), (exposed, e));
        Self::ensure_node(inner, &node, dev.dev)?;
        Ok(e)
    }

    /// Expose each of `disks` (read-only unless `writable`): their
    /// exposures by disk index, for [`dm::table`]. On failure the disks no
    /// mapping uses are released again.
    fn expose_all(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        disks: &[DiskId],
        writable: bool,
    ) -> Result<Vec<Option<Exposure>>> {
        let mut exposures: Vec<Option<Exposure>> = vec![None; layout.disks.len()];
        for d in disks {
            match self.expose_disk(inner, layout, *d, writable) {
                Ok(e) => {
                    if let Some(slot) = exposures.get_mut(d.0) {
                        *slot = Some(e);
                    }
                }
                Err(e) => {
                    Self::release_unused(inner, &mut Vec::new());
                    return Err(e);
                }
            }
        }
        Ok(exposures)
    }

    /// Create dm device `what` (named after the session) with `lines`,
    /// recorded in the state file first; on failure forgotten again and
    /// the disks no mapping uses released.
    fn create_dm(
        &self,
        inner: &mut Inner,
        what: &str,
        lines: &[dm::TableLine],
        writable: bool,
    ) -> Result<(DmDevice, Object)> {
        let (name, uuid) = dm::names(&self.id, what);
        let object = Object::Dm {
            name: name.clone(),
            uuid: uuid.clone(),
        };
        Self::record(inner, object.clone())?;
        match dm::create(&name, &uuid, lines, writable) {
            Ok(d) => Ok((d, object)),
            Err(e) => {
                let _ = Self::forget(inner, &object);
                Self::release_unused(inner, &mut Vec::new());
                Err(e)
            }
        }
    }

    fn attach_loop(
        &self,
        inner: &mut Inner,
        backing: &Path,
        offset: u64,
        size: u64,
        writable: bool,
        tag: &str,
    ) -> Result<(loopdev::LoopDevice, Object)> {
        let spec = loopdev::LoopSpec {
            backing: backing.to_path_buf(),
            offset,
            size_limit: size,
            writable,
            tag: tag.to_string(),
        };
        // Another process may take the free device between our asking and binding.
        for _ in 0..32 {
            let number = loopdev::get_free()?;
            let node = loopdev::node(number);
            Self::ensure_node(inner, &node, (loopdev::LOOP_MAJOR, number))?;
            let object = Object::Loop {
                number,
                backing: backing.to_path_buf(),
                tag: tag.to_string(),
            };
            Self::record(inner, object.clone())?;
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(writable)
                .open(&node)
            {
                Ok(f) => f,
                Err(e) => {
                    let _ = Self::forget(inner, &object);
                    return Err(Error::io_path(&node, e));
                }
            };
            match loopdev::bind(&file, &spec) {
                Ok(loopdev::Bind::Done) => {
                    return Ok((loopdev::LoopDevice { number, file }, object));
                }
                Ok(loopdev::Bind::Taken) => {
                    Self::forget(inner, &object)?;
                }
                Err(e) => {
                    let _ = Self::forget(inner, &object);
                    return Err(e);
                }
            }
        }
        Err(Error::Refused(
            "could not get a loop device: other processes kept taking the free ones".into(),
        ))
    }

    fn map_locked(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        id: VolumeId,
        writable: bool,
    ) -> Result<VolumeDevice> {
        let v = layout.volume(id);
        if let Some(m) = inner
            .mapped
            .iter()
            .find(|m| m.volume == v.name && m.writable == writable)
        {
            return Ok(m.device.clone());
        }
        if inner.mapped.iter().any(|m| m.volume == v.name) {
            return Err(Error::Refused(format!(
                "{} is already mapped {} in this session",
                v.name,
                if writable { "read-only" } else { "read-write" }
            )));
        }
        check_mappable(layout, id)?;
        if let Err(dm_why) = dm_available() {
            return self.map_loop(inner, layout, id, writable, &dm_why);
        }
        let disks = v.mapping.disks();
        let exposures = self.expose_all(inner, layout, &disks, writable)?;
        let lines = match plan(layout, id, &exposures) {
            Ok(l) => l,
            Err(e) => {
                Self::release_unused(inner, &mut Vec::new());
                return Err(e);
            }
        };
        let suffix = if writable { "-rw" } else { "" };
        let (device, object) =
            self.create_dm(inner, &format!("{}{suffix}", v.name), &lines, writable)?;
        let node = device.node();
        let m = Mapped {
            volume: v.name.clone(),
            writable,
            device: VolumeDevice::Dm(device.clone()),
            object,
            own: None,
            mount: None,
            views: Vec::new(),
            disks: disks.iter().map(|d| (*d, writable)).collect(),
            members: Vec::new(),
        };
        inner.mapped.push(m);
        Self::ensure_node(inner, &node, device.dev)?;
        Ok(VolumeDevice::Dm(device))
    }

    /// Without device-mapper: a read-only (unless `writable`) loop device
    /// over exactly the bytes of volume `id`, when they are one contiguous
    /// range of one disk. A qcow2 disk is first exposed through qemu-nbd.
    fn map_loop(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        id: VolumeId,
        writable: bool,
        dm_why: &str,
    ) -> Result<VolumeDevice> {
        let v = layout.volume(id);
        let unreadable = v.mapping.unreadable();
        if !unreadable.is_empty() {
            return Err(Error::Refused(format!(
                "{}: cannot map it: {}",
                v.name,
                unreadable.join("; ")
            )));
        }
        if let Some(why) = on_luks(layout, id) {
            return Err(Error::Unsupported(format!(
                "{}: {why}: mapping it needs device-mapper (dm-crypt), and {dm_why}",
                v.name
            )));
        }
        let Some((disk, offset, len)) = single_range(layout, id) else {
            let why = needs_dm(layout, id).unwrap_or_default();
            return Err(Error::Unsupported(format!(
                "{why}: mapping it needs device-mapper, and {dm_why}"
            )));
        };
        if !offset.is_multiple_of(512) || !len.is_multiple_of(512) || len == 0 {
            return Err(Error::Refused(format!(
                "{}: bytes {offset}+{len} are not whole 512-byte sectors",
                v.name
            )));
        }
        check_no_pv_label(layout, id)?;
        let d = exposable_disk(layout, disk)?;
        let (backing, start, disks) = if d.format == ImageFormat::Qcow2 {
            let e = self.expose_disk(inner, layout, disk, writable)?;
            let node = match inner.exposed.get(&(disk, writable)) {
                Some((Exposed::Nbd { dev, .. }, _)) => dev.path.clone(),
                _ => return Err(Error::Invalid(format!("{}: no nbd device", v.name))),
            };
            (node, offset.saturating_sub(e.start), vec![(disk, writable)])
        } else {
            let path = d.host_path("a loop device")?;
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            (path, offset, Vec::new())
        };
        let suffix = if writable { "-rw" } else { "" };
        let tag = loopdev::fit_tag(&format!(
            "{}{}-{}{suffix}",
            dm::NAME_PREFIX,
            self.id,
            dm::sanitise(&v.name)
        ));
        let (dev, object) = match self.attach_loop(inner, &backing, start, len, writable, &tag) {
            Ok(d) => d,
            Err(e) => {
                Self::release_unused(inner, &mut Vec::new());
                return Err(e);
            }
        };
        let device = VolumeDevice::Loop { number: dev.number };
        inner.mapped.push(Mapped {
            volume: v.name.clone(),
            writable,
            device: device.clone(),
            object: object.clone(),
            own: Some(Exposed::Loop { dev, object }),
            mount: None,
            views: Vec::new(),
            disks,
            members: Vec::new(),
        });
        Ok(device)
    }

    /// Map and mount volume `id` (read-only unless `writable`) and return the mountpoint.
    pub fn mount(&self, layout: &Layout, id: VolumeId, writable: bool) -> Result<PathBuf> {
        self.mount_with(layout, id, writable, "")
    }

    /// [`Session::mount`] with `extra` mount options (the first mount of
    /// the volume in that mode decides them).
    fn mount_with(
        &self,
        layout: &Layout,
        id: VolumeId,
        writable: bool,
        extra: &str,
    ) -> Result<PathBuf> {
        let mut inner = self.lock();
        let v = layout.volume(id);
        if let Some((p, _, _)) = inner
            .mapped
            .iter()
            .find(|m| m.volume == v.name && m.writable == writable)
            .and_then(|m| m.mount.as_ref())
        {
            return Ok(p.clone());
        }
        if !mountable(v.content.kind) {
            return Err(Error::Invalid(format!(
                "{} holds {}, not a filesystem the kernel engine can mount",
                v.name,
                v.content.describe()
            )));
        }
        let device = self.map_locked(&mut inner, layout, id, writable)?;
        // A multi-device btrfs: each other member its own device, named
        // to the kernel with `device=` (it scans no devices by itself here).
        let members = match self.map_members(&mut inner, layout, id, writable) {
            Ok(m) => m,
            Err(e) => {
                self.unmap_failed(&mut inner, &v.name, writable);
                return Err(e);
            }
        };
        let extra = if members.is_empty() {
            extra.to_string()
        } else {
            let devices = std::iter::once(device.node())
                .chain(members)
                .map(|n| format!("device={}", n.display()))
                .collect::<Vec<_>>()
                .join(",");
            if extra.is_empty() {
                devices
            } else {
                format!("{extra},{devices}")
            }
        };
        let extra = extra.as_str();
        let suffix = if writable { "-rw" } else { "" };
        let dir = self.dir.join(format!("{}{suffix}", dm::sanitise(&v.name)));
        let dir_obj = Object::Dir { path: dir.clone() };
        Self::record(&mut inner, dir_obj.clone())?;
        std::fs::create_dir(&dir).map_err(|e| Error::io_path(&dir, e))?;
        let mount_obj = Object::Mount { path: dir.clone() };
        Self::record(&mut inner, mount_obj.clone())?;
        if let Err(e) = mount::mount_with(
            &device.node(),
            &device.kernel_name(),
            &dir,
            v.content.kind,
            writable,
            extra,
        ) {
            let _ = Self::forget(&mut inner, &mount_obj);
            let _ = std::fs::remove_dir(&dir);
            let _ = Self::forget(&mut inner, &dir_obj);
            // Nothing stays mapped for a volume the kernel would not mount.
            self.unmap_failed(&mut inner, &v.name, writable);
            return Err(match e {
                Error::Refused(d) => Error::Refused(format!("{}: {d}", v.name)),
                other => other,
            });
        }
        if let Some(m) = inner
            .mapped
            .iter_mut()
            .find(|m| m.volume == v.name && m.writable == writable)
        {
            m.mount = Some((dir.clone(), mount_obj, dir_obj));
        }
        Ok(dir)
    }

    /// Unmap volume `name` (mode `writable`) and its members after a failed mount.
    fn unmap_failed(&self, inner: &mut Inner, name: &str, writable: bool) {
        if let Some(i) = inner
            .mapped
            .iter()
            .position(|m| m.volume == name && m.writable == writable)
        {
            let m = inner.mapped.remove(i);
            let mut problems = Vec::new();
            if let Some(m) = Self::undo_mapped(inner, m, &mut problems) {
                inner.mapped.push(m);
            }
            Self::release_unused(inner, &mut problems);
        }
    }

    /// The other member volumes of the multi-device btrfs on volume `id`
    /// ([`crate::engine::userspace::btrfs_siblings`], one per device id as
    /// our reader matched them), each mapped (read-only unless `writable`)
    /// and kept with `id`'s mapping, which tears them down after its own
    /// device. Returns their `/dev` nodes.
    fn map_members(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        id: VolumeId,
        writable: bool,
    ) -> Result<Vec<PathBuf>> {
        let v = layout.volume(id);
        if v.content.kind != ContentKind::Btrfs {
            return Ok(Vec::new());
        }
        let members = btrfs_members(layout, id);
        let mut nodes = Vec::new();
        for sib in members {
            let name = layout.volume(sib).name.clone();
            // Mapped already by itself (opened on its own): shared, not owned.
            if let Some(m) = inner
                .mapped
                .iter()
                .find(|m| m.volume == name && m.writable == writable)
            {
                nodes.push(m.device.node());
                continue;
            }
            let device = self.map_locked(inner, layout, sib, writable)?;
            nodes.push(device.node());
            let Some(i) = inner
                .mapped
                .iter()
                .position(|m| m.volume == name && m.writable == writable)
            else {
                continue;
            };
            let member = inner.mapped.remove(i);
            match inner
                .mapped
                .iter_mut()
                .find(|m| m.volume == v.name && m.writable == writable)
            {
                Some(main) => {
                    main.disks.extend(member.disks.iter().copied());
                    main.members.push(member);
                }
                None => inner.mapped.push(member),
            }
        }
        Ok(nodes)
    }

    /// Open volume `id`'s filesystem through a read-only kernel mount.
    pub fn open_fs(self: &Arc<Self>, layout: &Layout, id: VolumeId) -> Result<Arc<dyn FsView>> {
        let v = layout.volume(id);
        // A btrfs volume's subvolumes, from our reader's root tree (when it
        // reads the volume): then its top level is mounted, shown from the
        // default subvolume, and `subvol=` finds the others in it.
        let subvols = (v.content.kind == ContentKind::Btrfs)
            .then(|| {
                let others: Vec<_> = crate::engine::userspace::btrfs_siblings(layout, id)
                    .into_iter()
                    .map(|s| layout.open_volume(s))
                    .collect();
                crate::fs::btrfs::Btrfs::open_devices(
                    layout.open_volume(id),
                    &others,
                    &crate::fs::FsOptions::default(),
                )
                .ok()
            })
            .flatten()
            .map(|b| b.subvolumes());
        let extra = if subvols.is_some() { TOP_LEVEL } else { "" };
        let dir = self.mount_with(layout, id, false, extra)?;
        let (_, flags, data) = mount::options(v.content.kind, false)?;
        let _ = flags;
        let data = match (data.is_empty(), extra.is_empty()) {
            (_, true) => data.to_string(),
            (true, false) => extra.to_string(),
            (false, false) => format!("{data},{extra}"),
        };
        let mut notes = vec![format!(
            "mounted by the kernel engine at {} (read-only{}{})",
            dir.display(),
            if data.is_empty() { "" } else { ", " },
            data
        )];
        if v.content.kind == ContentKind::Btrfs {
            let members: Vec<String> = btrfs_members(layout, id)
                .into_iter()
                .map(|m| layout.volume(m).name.clone())
                .collect();
            if !members.is_empty() {
                notes.push(format!(
                    "btrfs over several devices: {} mounted with {} (device=)",
                    v.name,
                    members.join(", ")
                ));
            }
        }
        if v.content.kind == ContentKind::Xfs
            && data.contains("norecovery")
            && crate::fs::xfs::has_dirty_log(layout.open_volume(id))
        {
            notes.push(crate::fs::xfs::KERNEL_NOT_REPLAYED_NOTE.to_string());
        }
        if v.content.kind == ContentKind::Btrfs
            && data.contains("nologreplay")
            && crate::fs::btrfs::log::has_log_tree(layout.open_volume(id).as_ref())
        {
            notes.push(crate::fs::btrfs::KERNEL_NOT_REPLAYED_NOTE.to_string());
        }
        let status = FsStatus {
            fs_type: v.content.kind.name().to_string(),
            label: v.content.label.clone(),
            uuid: v.content.uuid.clone(),
            notes,
            problems: Vec::new(),
        };
        let view = Arc::new(mounted::MountedFs::new(
            &dir,
            status,
            Arc::clone(self),
            subvols,
        )?);
        let mut inner = self.lock();
        match inner
            .mapped
            .iter_mut()
            .find(|m| m.volume == v.name && !m.writable && m.mount.is_some())
        {
            Some(m) => {
                m.views.retain(|w| w.strong_count() > 0);
                m.views.push(Arc::downgrade(&view));
            }
            // Torn down meanwhile (a signal): the view must not hold it.
            None => view.close(),
        }
        drop(inner);
        Ok(view)
    }

    /// Unmount and unmap volume `name` (mode `writable`), releasing the disks
    /// only it used. Problems (busy) are returned.
    pub fn release(&self, name: &str, writable: bool) -> Vec<String> {
        let mut inner = self.lock();
        let Some(i) = inner
            .mapped
            .iter()
            .position(|m| m.volume == name && m.writable == writable)
        else {
            return Vec::new();
        };
        let m = inner.mapped.remove(i);
        let mut problems = Vec::new();
        let keep = Self::undo_mapped(&mut inner, m, &mut problems);
        if let Some(m) = keep {
            inner.mapped.push(m);
            return problems;
        }
        Self::release_unused(&mut inner, &mut problems);
        problems
    }

    /// Detach the disks no mapping uses (nor a used dm-crypt device's),
    /// newest disk first: a LUKS volume's plain disk goes before the
    /// disks it lies on.
    fn release_unused(inner: &mut Inner, problems: &mut Vec<String>) {
        let mut used: Vec<(DiskId, bool)> =
            inner.mapped.iter().flat_map(|m| m.disks.clone()).collect();
        // A disk's dependencies have lower ids: one pass from the top.
        for k in Self::exposed_newest_first(inner) {
            if used.contains(&k)
                && let Some((e, _)) = inner.exposed.get(&k)
            {
                used.extend(e.deps().iter().copied());
            }
        }
        let unused: Vec<(DiskId, bool)> = Self::exposed_newest_first(inner)
            .into_iter()
            .filter(|k| !used.contains(k))
            .collect();
        for k in unused {
            if let Some((e, _)) = inner.exposed.remove(&k) {
                Self::undo_exposed(inner, e, problems);
            }
        }
    }

    /// The exposed disks, highest disk id first (a nested disk's id is
    /// above those of the disks it lies on).
    fn exposed_newest_first(inner: &Inner) -> Vec<(DiskId, bool)> {
        let mut keys: Vec<(DiskId, bool)> = inner.exposed.keys().copied().collect();
        keys.sort_by(|a, b| b.0.0.cmp(&a.0.0).then(a.1.cmp(&b.1)));
        keys
    }

    /// Unmount and remove one mapping; returns it back when it could not be removed.
    /// Its members (a multi-device btrfs) go after it, newest first.
    fn undo_mapped(inner: &mut Inner, mut m: Mapped, problems: &mut Vec<String>) -> Option<Mapped> {
        let mut members = std::mem::take(&mut m.members);
        if let Some(mut left) = Self::undo_mapped_one(inner, m, problems) {
            left.members = members;
            return Some(left);
        }
        let mut kept = Vec::new();
        while let Some(member) = members.pop() {
            if let Some(k) = Self::undo_mapped(inner, member, problems) {
                kept.push(k);
            }
        }
        // What could not be removed stays on the session's list.
        inner.mapped.extend(kept);
        None
    }

    fn undo_mapped_one(
        inner: &mut Inner,
        mut m: Mapped,
        problems: &mut Vec<String>,
    ) -> Option<Mapped> {
        // Views still held (by the interface, a job, a command's variables)
        // would keep the mount busy: their descriptors go first.
        for view in m.views.drain(..).filter_map(|w| w.upgrade()) {
            view.close();
        }
        if let Some((path, mount_obj, dir_obj)) = m.mount.take() {
            match mount::unmount(&path, 20, true) {
                Ok(mount::Unmounted::Lazily) => problems.push(format!(
                    "{} was busy: detached lazily; the kernel finishes the unmount when the \
                     last file on it is closed",
                    path.display()
                )),
                Ok(_) => {}
                Err(e) => {
                    problems.push(format!(
                        "{e} (run `vmrescue cleanup` when it is no longer busy)"
                    ));
                    m.mount = Some((path, mount_obj, dir_obj));
                    return Some(m);
                }
            }
            let _ = Self::forget(inner, &mount_obj);
            match std::fs::remove_dir(&path) {
                Ok(()) => {
                    let _ = Self::forget(inner, &dir_obj);
                }
                Err(e) => problems.push(format!("removing {}: {e}", path.display())),
            }
        }
        if let Some(own) = m.own.take() {
            Self::undo_exposed(inner, own, problems);
            return None;
        }
        let VolumeDevice::Dm(device) = &m.device else {
            return None;
        };
        match dm::remove(&device.name, true) {
            Ok(dm::Removed::Deferred) => problems.push(format!(
                "device-mapper device {} was busy: the kernel removes it when its last user \
                 closes it",
                device.name
            )),
            Ok(_) => {
                let _ = Self::forget(inner, &m.object);
            }
            Err(e) => {
                problems.push(format!(
                    "{e} (run `vmrescue cleanup` when it is no longer busy)"
                ));
                return Some(m);
            }
        }
        None
    }

    fn undo_exposed(inner: &mut Inner, e: Exposed, problems: &mut Vec<String>) {
        match e {
            Exposed::Loop { dev, object } => {
                let number = dev.number;
                let tag = match &object {
                    Object::Loop { tag, .. } => tag.clone(),
                    _ => String::new(),
                };
                // Closing our descriptor lets autoclear detach it.
                drop(dev);
                match loopdev::status(number) {
                    Ok(Some(st)) if st.tag == tag => {
                        // Still held (a deferred dm removal): make sure it goes when released.
                        let _ = loopdev::detach(number);
                        if matches!(loopdev::status(number), Ok(Some(st)) if st.tag == tag) {
                            problems.push(format!(
                                "/dev/loop{number} is still in use: it detaches itself when released"
                            ));
                            return;
                        }
                        let _ = Self::forget(inner, &object);
                    }
                    Ok(_) => {
                        let _ = Self::forget(inner, &object);
                    }
                    Err(err) => problems.push(err.to_string()),
                }
            }
            Exposed::Nbd { dev, object } => match nbd::disconnect(&dev) {
                Ok(()) => {
                    let _ = Self::forget(inner, &object);
                }
                Err(err) => problems.push(err.to_string()),
            },
            Exposed::Crypt { dev, object, .. } => match dm::remove(&dev.name, true) {
                Ok(dm::Removed::Deferred) => problems.push(format!(
                    "device-mapper device {} was busy: the kernel removes it when its last user \
                     closes it",
                    dev.name
                )),
                Ok(_) => {
                    let _ = Self::forget(inner, &object);
                }
                Err(e) => problems.push(format!(
                    "{e} (run `vmrescue cleanup` when it is no longer busy)"
                )),
            },
        }
    }

    /// Tear everything down now (it is also done on drop). Returns the problems.
    pub fn teardown(&self) -> Vec<String> {
        self.teardown_inner(true)
    }

    fn teardown_inner(&self, blocking: bool) -> Vec<String> {
        let mut inner = if blocking {
            self.lock()
        } else {
            // From a panic hook: the panicking thread may hold the lock.
            let mut got = None;
            for _ in 0..20 {
                match self.inner.try_lock() {
                    Ok(g) => {
                        got = Some(g);
                        break;
                    }
                    Err(std::sync::TryLockError::Poisoned(p)) => {
                        got = Some(p.into_inner());
                        break;
                    }
                    Err(std::sync::TryLockError::WouldBlock) => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
            }
            match got {
                Some(g) => g,
                None => {
                    return vec![format!(
                        "session {}: busy, left to its own teardown",
                        self.id
                    )];
                }
            }
        };
        let mut problems = Vec::new();
        let mut left = Vec::new();
        while let Some(m) = inner.mapped.pop() {
            if let Some(m) = Self::undo_mapped(&mut inner, m, &mut problems) {
                left.push(m);
            }
        }
        inner.mapped = left;
        for k in Self::exposed_newest_first(&inner) {
            if let Some((e, _)) = inner.exposed.remove(&k) {
                Self::undo_exposed(&mut inner, e, &mut problems);
            }
        }
        let nodes = std::mem::take(&mut inner.nodes);
        for n in nodes.into_iter().rev() {
            if let Object::Node { path } = &n {
                match std::fs::remove_file(path) {
                    Ok(()) => {
                        let _ = Self::forget(&mut inner, &n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let _ = Self::forget(&mut inner, &n);
                    }
                    Err(e) => problems.push(format!("removing {}: {e}", path.display())),
                }
            }
        }
        if let Some(st) = inner.state.take() {
            if st.state.objects.is_empty() && inner.mapped.is_empty() {
                if let Err(e) = st.delete() {
                    problems.push(format!("removing the session state: {e}"));
                }
            } else {
                problems.push(format!(
                    "session {}: some objects are left (see {}); `vmrescue cleanup` removes them",
                    self.id,
                    self.dir.join(state::STATE_FILE).display()
                ));
            }
        }
        problems
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for p in self.teardown_inner(true) {
            eprintln!("vmrescue: {p}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pv_labels_are_seen_in_the_first_four_sectors() {
        let mut head = vec![0u8; 2048];
        assert!(!has_pv_label(&head));
        head[512..520].copy_from_slice(b"LABELONE");
        assert!(has_pv_label(&head));
        let mut late = vec![0u8; 4096];
        late[2048..2056].copy_from_slice(b"LABELONE");
        assert!(!has_pv_label(&late));
    }
}
