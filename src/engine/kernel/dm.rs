//! Device-mapper: tables computed from a [`Mapping`], devices created through
//! the `devicemapper` crate.
//!
//! A volume's mapping becomes one table line per segment, in 512-byte
//! sectors: `linear` for linear segments, `striped` for striped ones (raw
//! lines: the crate has no striped helper), `zero` for zero segments.
//! Unreadable segments refuse the whole volume. Targets are the disks'
//! loop (or nbd) devices; a disk's device may start part-way into the disk
//! (a whole-disk PV is exposed from its data area on, so that no device
//! shows a `LABELONE` label), and that start is subtracted here.
//!
//! Devices are created read-only (`DM_READONLY` on create and on load),
//! named `vmrescue-<session>-<volume>` with a dm UUID `VMRESCUE-...`, and
//! resumed with the udev flags that keep other udev rules (blkid, LVM
//! autoactivation) away from them.

use std::fmt;
use std::path::PathBuf;

use devicemapper::{
    DM, DevId, DmError, DmFlags, DmName, DmOptions, DmUdevFlags, DmUuid,
    errors::Error as DmCoreError,
};

use crate::error::{Error, Result};
use crate::io::{Mapping, Target};

/// Bytes per device-mapper sector.
const SECTOR: u64 = 512;

/// Prefix of every dm device name vmrescue creates.
pub const NAME_PREFIX: &str = "vmrescue-";
/// Prefix of every dm UUID vmrescue creates (never `LVM-`, so lvm2 leaves them alone).
pub const UUID_PREFIX: &str = "VMRESCUE-";

/// How a disk of the image is exposed to the kernel: a block device that
/// shows the disk's bytes from `start` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    /// Device number (major, minor) of the loop or nbd device.
    pub dev: (u32, u32),
    /// Byte offset on the disk where the device's first byte is.
    pub start: u64,
    /// Bytes the device shows.
    pub size: u64,
}

/// One line of a device-mapper table, in 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLine {
    /// First sector of the line in the dm device.
    pub start: u64,
    /// Number of sectors.
    pub len: u64,
    /// Target type: `linear`, `striped` or `zero`.
    pub target: &'static str,
    /// The target's parameters as `dmsetup table` prints them.
    pub params: String,
}

impl fmt::Display for TableLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.start, self.len, self.target)?;
        if !self.params.is_empty() {
            write!(f, " {}", self.params)?;
        }
        Ok(())
    }
}

fn sectors(bytes: u64, what: &str) -> std::result::Result<u64, String> {
    if !bytes.is_multiple_of(SECTOR) {
        return Err(format!(
            "{what} ({bytes} bytes) is not a whole number of 512-byte sectors"
        ));
    }
    Ok(bytes / SECTOR)
}

/// The position of disk byte `offset` on the disk's device, in sectors,
/// checking that `len` bytes from there fit on the device.
fn device_sector(
    exposures: &[Option<Exposure>],
    disk: usize,
    offset: u64,
    len: u64,
) -> std::result::Result<((u32, u32), u64), String> {
    let e = exposures
        .get(disk)
        .copied()
        .flatten()
        .ok_or_else(|| format!("disk {disk} has no device"))?;
    let rel = offset.checked_sub(e.start).ok_or_else(|| {
        format!(
            "byte {offset} of disk {disk} lies before the start of its device (byte {})",
            e.start
        )
    })?;
    let end = rel
        .checked_add(len)
        .ok_or_else(|| "mapped range overflows".to_string())?;
    if end > e.size {
        return Err(format!(
            "bytes {offset}..{} of disk {disk} lie past the end of its device ({} bytes from byte {})",
            offset.saturating_add(len),
            e.size,
            e.start
        ));
    }
    Ok((e.dev, sectors(rel, "a device offset")?))
}

/// The device-mapper table for `mapping` over the disks' devices
/// (`exposures[disk]`). Refuses mappings with unreadable segments or
/// offsets that are not whole sectors, with the reason.
pub fn table(
    mapping: &Mapping,
    exposures: &[Option<Exposure>],
) -> std::result::Result<Vec<TableLine>, String> {
    let mut unreadable: Vec<&str> = Vec::new();
    for r in mapping.unreadable() {
        if !unreadable.contains(&r) {
            unreadable.push(r);
        }
    }
    if !unreadable.is_empty() {
        return Err(unreadable.join("; "));
    }
    if mapping.segments().is_empty() {
        return Err("the volume is empty".into());
    }
    let mut lines = Vec::with_capacity(mapping.segments().len());
    for seg in mapping.segments() {
        let start = sectors(seg.start, "a segment start")?;
        let len = sectors(seg.len, "a segment length")?;
        let (target, params) = match &seg.target {
            Target::Linear(area) => {
                let ((maj, min), off) =
                    device_sector(exposures, area.disk.0, area.offset, seg.len)?;
                ("linear", format!("{maj}:{min} {off}"))
            }
            Target::Striped {
                chunk_size,
                stripes,
            } => {
                let n = stripes.len() as u64;
                if n == 0 || seg.len % n != 0 {
                    return Err(format!(
                        "a striped segment of {} bytes does not divide over {n} stripes",
                        seg.len
                    ));
                }
                let per_stripe = seg.len / n;
                let chunk = sectors(*chunk_size, "the stripe size")?;
                let mut p = format!("{n} {chunk}");
                for a in stripes {
                    let ((maj, min), off) =
                        device_sector(exposures, a.disk.0, a.offset, per_stripe)?;
                    p.push_str(&format!(" {maj}:{min} {off}"));
                }
                ("striped", p)
            }
            Target::Zero => ("zero", String::new()),
            Target::Unreadable { reason } => return Err(reason.clone()),
            Target::Raid(r) => return Err(raid_refusal(r)),
        };
        lines.push(TableLine {
            start,
            len,
            target,
            params,
        });
    }
    Ok(lines)
}

/// A name safe for a dm device, a directory or a state-file key: letters,
/// digits and `_.+-` stay, `/` becomes `-`, anything else `_`; never starts with `.`.
pub fn sanitise(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '+' | '-' => c,
            '/' => '-',
            _ => '_',
        })
        .collect();
    if s.starts_with('.') || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// The dm name and UUID of volume `volume` in session `session`.
/// Names are kept under the kernel's 127-byte limit.
pub fn names(session: &str, volume: &str) -> (String, String) {
    let mut name = format!("{NAME_PREFIX}{session}-{}", sanitise(volume));
    name.truncate(120);
    let mut uuid = format!("{UUID_PREFIX}{session}-{}", sanitise(volume));
    uuid.truncate(120);
    (name, uuid)
}

/// Whether this kernel has device-mapper, as `Err(reason)` when not.
pub fn available() -> std::result::Result<(u32, u32, u32), String> {
    let control = "/dev/mapper/control";
    let dm = DM::new().map_err(|e| {
        let detail = dm_detail(&e);
        if detail.contains("No such device") || detail.contains("No such file") {
            format!(
                "this kernel has no device-mapper ({control}: {detail}); \
                 load it with `modprobe dm-mod` or use the userspace engine"
            )
        } else {
            format!("cannot open {control}: {detail}")
        }
    })?;
    dm.version().map_err(|e| {
        format!(
            "this kernel has no working device-mapper ({control}: {}); \
             load it with `modprobe dm-mod` or use the userspace engine",
            dm_detail(&e)
        )
    })
}

/// The useful part of a devicemapper error, without the ioctl header dumps.
pub fn dm_detail(e: &DmError) -> String {
    match e {
        DmError::Core(DmCoreError::Ioctl(_, _, _, errno)) => errno.desc().to_string(),
        DmError::Core(DmCoreError::ContextInit(s)) => s.clone(),
        other => other.to_string(),
    }
}

fn dm_err(what: String, e: &DmError) -> Error {
    Error::Io {
        what,
        source: std::io::Error::other(dm_detail(e)),
    }
}

/// The errno of a devicemapper ioctl error (the crate uses its own nix version).
fn dm_errno(e: &DmError) -> Option<i32> {
    match e {
        DmError::Core(DmCoreError::Ioctl(_, _, _, errno)) => Some(**errno as i32),
        _ => None,
    }
}

/// A dm device vmrescue created.
#[derive(Debug, Clone)]
pub struct DmDevice {
    /// Its name (`vmrescue-<session>-<volume>`).
    pub name: String,
    /// Its dm UUID.
    pub uuid: String,
    /// Its device number.
    pub dev: (u32, u32),
}

impl DmDevice {
    /// The `/dev/dm-N` node.
    pub fn node(&self) -> PathBuf {
        PathBuf::from(format!("/dev/dm-{}", self.dev.1))
    }

    /// The kernel's name for it (`dm-N`), as kernel messages say it.
    pub fn kernel_name(&self) -> String {
        format!("dm-{}", self.dev.1)
    }
}

fn dm_name(name: &str) -> Result<&DmName> {
    DmName::new(name).map_err(|e| Error::Invalid(format!("dm name {name:?}: {}", dm_detail(&e))))
}

/// The udev flags vmrescue resumes with: no udev rule other than the
/// node-creating dm rules looks at our devices (no blkid, no LVM scans).
fn udev_flags() -> DmUdevFlags {
    DmUdevFlags::DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG
        | DmUdevFlags::DM_UDEV_DISABLE_DISK_RULES_FLAG
        | DmUdevFlags::DM_UDEV_DISABLE_OTHER_RULES_FLAG
        | DmUdevFlags::DM_UDEV_LOW_PRIORITY_FLAG
}

/// Create dm device `name` with `lines`, read-only unless `writable`, and
/// resume it. On failure the half-made device is removed again.
pub fn create(name: &str, uuid: &str, lines: &[TableLine], writable: bool) -> Result<DmDevice> {
    let dm = DM::new().map_err(|e| dm_err("/dev/mapper/control".into(), &e))?;
    let dname = dm_name(name)?;
    let duuid = DmUuid::new(uuid)
        .map_err(|e| Error::Invalid(format!("dm uuid {uuid:?}: {}", dm_detail(&e))))?;
    let ro = if writable {
        DmFlags::empty()
    } else {
        DmFlags::DM_READONLY
    };
    let info = dm
        .device_create(dname, Some(duuid), DmOptions::default().set_flags(ro))
        .map_err(|e| dm_err(format!("creating device-mapper device {name}"), &e))?;
    let id = DevId::Name(dname);
    let targets: Vec<(u64, u64, String, String)> = lines
        .iter()
        .map(|l| (l.start, l.len, l.target.to_string(), l.params.clone()))
        .collect();
    let loaded = dm
        .table_load(&id, &targets, DmOptions::default().set_flags(ro))
        .and_then(|_| dm.device_suspend(&id, DmOptions::default().set_udev_flags(udev_flags())));
    if let Err(e) = loaded {
        let _ = dm.device_remove(&id, DmOptions::default().set_udev_flags(udev_flags()));
        let table: Vec<String> = lines.iter().map(ToString::to_string).collect();
        return Err(dm_err(
            format!(
                "loading the table of {name} ({}): the kernel refused it",
                table.join(", ")
            ),
            &e,
        ));
    }
    let dev = info.device();
    Ok(DmDevice {
        name: name.to_string(),
        uuid: uuid.to_string(),
        dev: (dev.major, dev.minor),
    })
}

/// How a removal went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// The device is gone.
    Now,
    /// It was busy; the kernel removes it when its last user closes it.
    Deferred,
    /// It did not exist.
    Absent,
}

/// Remove dm device `name`: retried while busy, then (when `defer`) a
/// deferred removal the kernel completes once the last user closes it.
pub fn remove(name: &str, defer: bool) -> Result<Removed> {
    let dm = DM::new().map_err(|e| dm_err("/dev/mapper/control".into(), &e))?;
    let dname = dm_name(name)?;
    let id = DevId::Name(dname);
    let opts = DmOptions::default().set_udev_flags(udev_flags());
    // The crate itself retries EBUSY a few times.
    match dm.device_remove(&id, opts) {
        Ok(_) => Ok(Removed::Now),
        Err(e) if dm_errno(&e) == Some(nix::libc::ENXIO) => Ok(Removed::Absent),
        Err(e) if dm_errno(&e) == Some(nix::libc::EBUSY) && defer => {
            match dm.device_remove(&id, opts.set_flags(DmFlags::DM_DEFERRED_REMOVE)) {
                Ok(_) => Ok(Removed::Deferred),
                Err(e) => Err(dm_err(format!("removing {name} (busy)"), &e)),
            }
        }
        Err(e) => Err(dm_err(format!("removing {name}"), &e)),
    }
}

/// Every dm device whose name starts with [`NAME_PREFIX`], with its UUID.
pub fn list_ours() -> Result<Vec<(String, Option<String>)>> {
    let dm = DM::new().map_err(|e| dm_err("/dev/mapper/control".into(), &e))?;
    let devs = dm
        .list_devices()
        .map_err(|e| dm_err("listing device-mapper devices".into(), &e))?;
    let mut out = Vec::new();
    for (name, _, _) in devs {
        let name = name.to_string();
        if !name.starts_with(NAME_PREFIX) {
            continue;
        }
        let uuid = dm_name(&name)
            .ok()
            .and_then(|n| dm.device_info(&DevId::Name(n)).ok())
            .and_then(|i| i.uuid().map(|u| u.to_string()));
        out.push((name, uuid));
    }
    Ok(out)
}

/// Why the kernel engine does not map a RAID segment.
pub fn raid_refusal(r: &crate::io::Raid) -> String {
    format!(
        "it is a {} array: the kernel engine would need dm-raid, which could resync or rebuild legs; the userspace engine reads it",
        r.level().words()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Area, DiskId, Segment};

    fn area(disk: usize, offset: u64) -> Area {
        Area {
            disk: DiskId(disk),
            offset,
        }
    }

    fn whole(dev: (u32, u32), size: u64) -> Option<Exposure> {
        Some(Exposure {
            dev,
            start: 0,
            size,
        })
    }

    #[test]
    fn partition_is_one_linear_line() {
        // kpartx for p2 at sector 7727328 of 7:0.
        let m = Mapping::linear(area(0, 7727328 * 512), 1 << 30);
        let t = table(&m, &[whole((7, 0), 8 << 30)]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].to_string(), "0 2097152 linear 7:0 7727328");
    }

    #[test]
    fn segments_become_lines_and_stripes_raw_lines() {
        let m = Mapping::new(vec![
            Segment {
                start: 0,
                len: 8 << 20,
                target: Target::Linear(area(0, 1 << 20)),
            },
            Segment {
                start: 8 << 20,
                len: 16 << 20,
                target: Target::Striped {
                    chunk_size: 64 << 10,
                    stripes: vec![area(0, 20 << 20), area(1, 3 << 20)],
                },
            },
            Segment {
                start: 24 << 20,
                len: 1 << 20,
                target: Target::Zero,
            },
        ])
        .unwrap();
        // Disk 1 is a whole-disk PV exposed from its data area (1 MiB) on.
        let ex = [
            whole((7, 0), 64 << 20),
            Some(Exposure {
                dev: (7, 1),
                start: 1 << 20,
                size: 63 << 20,
            }),
        ];
        let lines: Vec<String> = table(&m, &ex)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "0 16384 linear 7:0 2048",
                "16384 32768 striped 2 128 7:0 40960 7:1 4096",
                "49152 2048 zero",
            ]
        );
    }

    #[test]
    fn refuses_unreadable_unaligned_and_out_of_range() {
        let m = Mapping::new(vec![Segment {
            start: 0,
            len: 4096,
            target: Target::Unreadable {
                reason: "segment type thin is not readable yet".into(),
            },
        }])
        .unwrap();
        assert_eq!(
            table(&m, &[whole((7, 0), 1 << 20)]).unwrap_err(),
            "segment type thin is not readable yet"
        );
        let m = Mapping::linear(area(0, 100), 4096);
        assert!(
            table(&m, &[whole((7, 0), 1 << 20)])
                .unwrap_err()
                .contains("512-byte")
        );
        let m = Mapping::linear(area(0, 0), 2 << 20);
        assert!(
            table(&m, &[whole((7, 0), 1 << 20)])
                .unwrap_err()
                .contains("past the end")
        );
        // Before the start of a device that begins at the PV's data area.
        let ex = [Some(Exposure {
            dev: (7, 0),
            start: 1 << 20,
            size: 1 << 20,
        })];
        let m = Mapping::linear(area(0, 4096), 4096);
        assert!(table(&m, &ex).unwrap_err().contains("before the start"));
        assert!(table(&m, &[None]).unwrap_err().contains("no device"));
    }

    #[test]
    fn names_are_sanitised_and_prefixed() {
        assert_eq!(
            names("ab12cd34", "vg_ta/lv_root"),
            (
                "vmrescue-ab12cd34-vg_ta-lv_root".to_string(),
                "VMRESCUE-ab12cd34-vg_ta-lv_root".to_string()
            )
        );
        assert_eq!(sanitise("../x y"), "_..-x_y");
        assert_eq!(sanitise(""), "_");
        let long = "a".repeat(300);
        assert!(names("s", &long).0.len() <= 120);
    }
}
