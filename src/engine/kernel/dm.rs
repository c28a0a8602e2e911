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
use std::sync::Arc;

use devicemapper::{
    DM, DevId, DmError, DmFlags, DmName, DmOptions, DmUdevFlags, DmUuid,
    errors::Error as DmCoreError,
};

use crate::error::{Error, Result};
use crate::io::{Mapping, Target};
use crate::layers::luks::DmCrypt;
use zeroize::Zeroize;

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
    /// Target type: `linear`, `striped`, `zero` or `crypt`.
    pub target: &'static str,
    /// The target's parameters as `dmsetup table` prints them; a `crypt`
    /// line has [`KEY_PLACEHOLDER`] where the key goes.
    pub params: String,
    /// A `crypt` line's key, put in place of [`KEY_PLACEHOLDER`] only in
    /// the buffer handed to the kernel ([`create`]).
    pub key: Option<LineKey>,
}

/// What stands for the key in a `crypt` line's parameters (and in every
/// message that shows the table).
pub const KEY_PLACEHOLDER: &str = "<key>";

/// A `crypt` line's key: the unlocked LUKS volume's dm-crypt parameters.
/// Never printed; equal when it is the same volume's.
#[derive(Clone)]
pub struct LineKey(pub Arc<DmCrypt>);

impl fmt::Debug for LineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LineKey(<hidden>)")
    }
}

impl PartialEq for LineKey {
    fn eq(&self, other: &LineKey) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LineKey {}

/// The most `crypt` lines one LUKS volume's table may have (a striped
/// volume has one per stripe chunk).
pub const MAX_CRYPT_LINES: usize = 65536;

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
            key: None,
        });
    }
    Ok(lines)
}

/// The device-mapper table that decrypts an unlocked LUKS volume (mapped
/// by `mapping` over the disks' devices, `exposures[disk]`) as dm-crypt
/// would for cryptsetup: its plain bytes `start..start + len` (`start`
/// past a PV label the host must not see), one read-only `crypt` line per
/// run of the volume on a disk, each with the IV sector number of its
/// first byte, `sector_size:` for sectors above 512 bytes, and no
/// `allow_discards`. The key stays out of the lines' text.
pub fn crypt_table(
    mapping: &Mapping,
    crypt: &Arc<DmCrypt>,
    start: u64,
    len: u64,
    exposures: &[Option<Exposure>],
) -> std::result::Result<Vec<TableLine>, String> {
    let unit = u64::from(crypt.sector_size.max(512));
    if !start.is_multiple_of(unit) || !len.is_multiple_of(unit) || len == 0 {
        return Err(format!(
            "plain bytes {start}+{len} are not whole {unit}-byte encryption sectors"
        ));
    }
    if start.checked_add(len).is_none_or(|e| e > crypt.size) {
        return Err(format!(
            "plain bytes {start}+{len} lie past the data ({} bytes)",
            crypt.size
        ));
    }
    let first = crypt
        .offset
        .checked_add(start)
        .ok_or_else(|| "the data offset overflows".to_string())?;
    let runs = mapping.ranges(first, len).map_err(|e| match e {
        crate::io::Unmapped::Zero { at } => {
            format!("byte {at} of the LUKS volume lies in a zero segment")
        }
        crate::io::Unmapped::Unreadable { at, reason } => {
            format!("byte {at} of the LUKS volume is unreadable: {reason}")
        }
    })?;
    if runs.len() > MAX_CRYPT_LINES {
        return Err(format!(
            "the LUKS volume lies in {} pieces (at most {MAX_CRYPT_LINES} crypt lines are made)",
            runs.len()
        ));
    }
    let options = if unit > SECTOR {
        format!(" 1 sector_size:{unit}")
    } else {
        String::new()
    };
    let mut lines = Vec::with_capacity(runs.len());
    let mut at = 0u64;
    for r in runs {
        if !r.len.is_multiple_of(unit) {
            return Err(format!(
                "a piece of {} bytes at plain byte {} is not whole {unit}-byte encryption sectors",
                r.len,
                start + at
            ));
        }
        let ((maj, min), off) = device_sector(exposures, r.area.disk.0, r.area.offset, r.len)?;
        let iv = crypt
            .iv_offset
            .checked_add((start + at) / SECTOR)
            .ok_or_else(|| "the IV offset overflows".to_string())?;
        lines.push(TableLine {
            start: at / SECTOR,
            len: sectors(r.len, "a crypt run")?,
            target: "crypt",
            params: format!(
                "{} {KEY_PLACEHOLDER} {iv} {maj}:{min} {off}{options}",
                crypt.cipher
            ),
            key: Some(LineKey(Arc::clone(crypt))),
        });
        at += r.len;
    }
    Ok(lines)
}

/// Lowercase hex of `bytes`, in a string wiped when dropped.
fn hex(bytes: &[u8]) -> zeroize::Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = zeroize::Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
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

/// Table lines shown in an error: a thin LV's table can have a line per
/// mapped run, so only the first few are named.
const SHOWN_LINES: usize = 8;

/// The table as an error shows it: its first lines, then how many in all.
fn table_summary(lines: &[TableLine]) -> String {
    let mut shown: Vec<String> = lines
        .iter()
        .take(SHOWN_LINES)
        .map(ToString::to_string)
        .collect();
    if lines.len() > SHOWN_LINES {
        shown.push(format!("... {} lines in all", lines.len()));
    }
    shown.join(", ")
}

/// The target types of `lines` that the kernel does not have (`known`: the
/// targets it lists; `None` when it could not be asked), as a sentence
/// naming the module that provides each, or nothing.
fn missing_targets(lines: &[TableLine], known: Option<&[String]>) -> String {
    let Some(known) = known else {
        return String::new();
    };
    let mut missing: Vec<&str> = Vec::new();
    for l in lines {
        if !known.iter().any(|k| k == l.target) && !missing.contains(&l.target) {
            missing.push(l.target);
        }
    }
    if missing.is_empty() {
        return String::new();
    }
    let named: Vec<String> = missing
        .iter()
        .map(|t| format!("`{t}` (module dm-{t})"))
        .collect();
    format!(
        "; the kernel has no device-mapper target {}: load it with modprobe",
        named.join(", ")
    )
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
    let mut targets: Vec<(u64, u64, String, String)> = lines
        .iter()
        .map(|l| {
            let params = match &l.key {
                Some(k) => l.params.replacen(KEY_PLACEHOLDER, &hex(k.0.key()), 1),
                None => l.params.clone(),
            };
            (l.start, l.len, l.target.to_string(), params)
        })
        .collect();
    let loaded = dm.table_load(&id, &targets, DmOptions::default().set_flags(ro));
    // The key's text is wiped as soon as the kernel has the table (the
    // devicemapper crate's own ioctl buffer is not ours to wipe).
    for t in &mut targets {
        t.3.zeroize();
    }
    drop(targets);
    let loaded = loaded
        .and_then(|_| dm.device_suspend(&id, DmOptions::default().set_udev_flags(udev_flags())));
    if let Err(e) = loaded {
        let _ = dm.device_remove(&id, DmOptions::default().set_udev_flags(udev_flags()));
        let known: Option<Vec<String>> = dm
            .list_versions()
            .ok()
            .map(|v| v.into_iter().map(|(t, ..)| t).collect());
        return Err(dm_err(
            format!(
                "loading the table of {name} ({}): the kernel refused it{}",
                table_summary(lines),
                missing_targets(lines, known.as_deref())
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

    fn crypt(sector: u32, iv_offset: u64) -> Arc<DmCrypt> {
        Arc::new(DmCrypt::new(
            "aes-xts-plain64",
            &[0xab; 64],
            iv_offset,
            sector,
            2 << 20,
            60 << 20,
        ))
    }

    #[test]
    fn a_luks_volume_is_crypt_lines_without_its_key() {
        // The LUKS volume in two pieces: 40 MiB at disk byte 1 MiB, then
        // 22 MiB at 100 MiB; its data from byte 2 MiB on, shown from the
        // PV's data area (1 MiB into the data).
        let m = Mapping::new(vec![
            Segment {
                start: 0,
                len: 40 << 20,
                target: Target::Linear(area(0, 1 << 20)),
            },
            Segment {
                start: 40 << 20,
                len: 22 << 20,
                target: Target::Linear(area(0, 100 << 20)),
            },
        ])
        .unwrap();
        let c = crypt(512, 0);
        let t = crypt_table(&m, &c, 1 << 20, 59 << 20, &[whole((7, 0), 200 << 20)]).unwrap();
        let shown: Vec<String> = t.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "0 75776 crypt aes-xts-plain64 <key> 2048 7:0 8192",
                "75776 45056 crypt aes-xts-plain64 <key> 77824 7:0 204800",
            ]
        );
        let key = hex(&[0xab; 64]);
        assert!(t.iter().all(|l| !format!("{l:?}").contains(key.as_str())));
        assert!(!table_summary(&t).contains(key.as_str()));
        // 4096-byte sectors: the option, and IVs still in 512-byte sectors.
        let c = crypt(4096, 16);
        let t = crypt_table(&m, &c, 1 << 20, 59 << 20, &[whole((7, 0), 200 << 20)]).unwrap();
        assert_eq!(
            t[1].to_string(),
            "75776 45056 crypt aes-xts-plain64 <key> 77840 7:0 204800 1 sector_size:4096"
        );
        // A start inside a sector, a piece of part of a sector, past the data.
        assert!(
            crypt_table(&m, &c, 512, 4096, &[whole((7, 0), 200 << 20)])
                .unwrap_err()
                .contains("encryption sectors")
        );
        let odd = Mapping::new(vec![
            Segment {
                start: 0,
                len: (3 << 20) + 512,
                target: Target::Linear(area(0, 1 << 20)),
            },
            Segment {
                start: (3 << 20) + 512,
                len: 60 << 20,
                target: Target::Linear(area(0, 100 << 20)),
            },
        ])
        .unwrap();
        assert!(
            crypt_table(&odd, &c, 0, 8 << 20, &[whole((7, 0), 200 << 20)])
                .unwrap_err()
                .contains("not whole 4096-byte")
        );
        assert!(
            crypt_table(&m, &c, 0, 64 << 20, &[whole((7, 0), 200 << 20)])
                .unwrap_err()
                .contains("past the data")
        );
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

    fn line(start: u64, target: &'static str) -> TableLine {
        TableLine {
            start,
            len: 8,
            target,
            params: if target == "zero" {
                String::new()
            } else {
                "7:0 0".into()
            },
            key: None,
        }
    }

    #[test]
    fn a_refused_table_names_the_missing_target_and_its_module() {
        let lines = [line(0, "linear"), line(8, "zero"), line(16, "zero")];
        let known = ["linear".to_string(), "striped".to_string()];
        assert_eq!(
            missing_targets(&lines, Some(&known)),
            "; the kernel has no device-mapper target `zero` (module dm-zero): load it with modprobe"
        );
        let all = ["linear".to_string(), "zero".to_string()];
        assert_eq!(missing_targets(&lines, Some(&all)), "");
        assert_eq!(missing_targets(&lines, None), "");
    }

    #[test]
    fn a_refused_table_of_many_lines_is_shown_in_part() {
        let short: Vec<TableLine> = (0..3).map(|i| line(i * 8, "zero")).collect();
        assert_eq!(table_summary(&short), "0 8 zero, 8 8 zero, 16 8 zero");
        let long: Vec<TableLine> = (0..10_000).map(|i| line(i * 8, "linear")).collect();
        let s = table_summary(&long);
        assert!(s.starts_with("0 8 linear 7:0 0, 8 8 linear 7:0 0"), "{s}");
        assert!(s.ends_with("... 10000 lines in all"), "{s}");
        assert_eq!(s.matches("linear").count(), SHOWN_LINES);
    }
}
