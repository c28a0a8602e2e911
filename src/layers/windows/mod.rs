//! Windows guests: a filesystem holding `Windows/System32/config/SOFTWARE`
//! and `SYSTEM` is a Windows system volume. Its hives ([`hive`]) give the
//! product name, build, edition and display version
//! (`SOFTWARE\Microsoft\Windows NT\CurrentVersion`), the computer name
//! (`SYSTEM\ControlSetNNN\Control\ComputerName\ComputerName`, NNN from
//! `SYSTEM\Select\Current`), and the drive letters (`SYSTEM\MountedDevices`:
//! `\DosDevices\C:` holds either 12 bytes, the MBR disk signature and the
//! partition's byte offset, or `DMIO:ID:` and the GPT partition's unique
//! GUID), matched here to the layout's partitions.

pub mod hive;

use hive::{Hive, Value};

use super::{Layout, VolumeId, VolumeKind, partition};
use crate::fs::FsView;
use crate::problem::Problem;

/// Largest hive file read (a SOFTWARE hive is tens of MiB).
pub const MAX_HIVE: usize = 256 << 20;

/// Where the hives are, from the volume's root (looked up without case, as
/// Windows does on NTFS).
const SOFTWARE: &[u8] = b"/Windows/System32/config/SOFTWARE";
const SYSTEM: &[u8] = b"/Windows/System32/config/SYSTEM";

/// What the hives of a Windows system volume say (`layers --json`:
/// `"windows": {...}` on the guest root).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowsGuest {
    /// `ProductName` ("Windows Server 2019 Standard").
    pub product_name: Option<String>,
    /// `CurrentBuild` (or `CurrentBuildNumber`): "17763".
    pub current_build: Option<String>,
    /// `EditionID` ("ServerStandard").
    pub edition_id: Option<String>,
    /// `DisplayVersion` ("22H2"), else `ReleaseId` ("1809").
    pub display_version: Option<String>,
    /// The computer name ("WIN-DB01").
    pub computer_name: Option<String>,
    /// The control set the computer name was read from (`ControlSet001`).
    pub control_set: Option<String>,
    /// The drive letters `MountedDevices` names, in letter order.
    pub drives: Vec<Drive>,
}

/// One drive letter of `MountedDevices`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drive {
    /// `C`, `D`…
    pub letter: char,
    /// What the value names: `MBR disk 0x1234abcd, partition at byte
    /// 1048576`, `GPT partition 8c3f…`, or the device path Windows
    /// stored (a CD-ROM: `\??\IDE#CdRomQEMU…`).
    pub target: String,
    /// The volume it names here, if found.
    #[serde(skip)]
    pub volume: Option<VolumeId>,
    /// That volume's name (`p1`).
    #[serde(rename = "volume")]
    pub volume_name: Option<String>,
    /// The value names a partition and none of these disks has it.
    pub missing: bool,
}

impl WindowsGuest {
    /// The OS name shown for the guest root: `Windows Server 2019 Standard
    /// (17763)`, the product and the build (the display version is among
    /// the facts). Windows 11 keeps "Windows 10" in `ProductName`: a build
    /// of 22000 or later is shown as Windows 11.
    pub fn os_name(&self) -> String {
        let mut name = self
            .product_name
            .clone()
            .unwrap_or_else(|| "Windows".to_string());
        let build: Option<u32> = self.current_build.as_deref().and_then(|b| b.parse().ok());
        if build.is_some_and(|b| b >= 22000)
            && let Some(rest) = name.strip_prefix("Windows 10")
        {
            name = format!("Windows 11{rest}");
        }
        if let Some(b) = &self.current_build {
            name.push_str(&format!(" ({b})"));
        }
        name
    }

    /// The letter of `volume`, if a drive names it.
    pub fn letter_of(&self, volume: VolumeId) -> Option<char> {
        self.drives
            .iter()
            .find(|d| d.volume == Some(volume))
            .map(|d| d.letter)
    }
}

/// Whether `fs` looks like a Windows system volume: one of the two hives
/// is there (the other one missing is a problem [`inspect`] reports).
pub fn is_system_volume(fs: &dyn FsView) -> bool {
    let is_file = |p: &[u8]| {
        crate::fs::path::resolve(fs, p, true)
            .and_then(|r| fs.metadata(r.node))
            .is_ok_and(|m| m.file_type == crate::fs::FileType::Regular)
    };
    is_file(SOFTWARE) || is_file(SYSTEM)
}

/// Read the hives of the Windows system volume `fs` (volume `id` of
/// `layout`): what they say, and the problems met (a missing or damaged
/// hive, a drive letter naming a partition that is not here).
pub fn inspect(layout: &Layout, id: VolumeId, fs: &dyn FsView) -> (WindowsGuest, Vec<Problem>) {
    let mut w = WindowsGuest::default();
    let mut problems = Vec::new();
    // One hive in memory at a time (each may be up to MAX_HIVE bytes).
    let read = |path: &[u8], name: &str| -> Result<Vec<u8>, Problem> {
        let structure = format!("{name} hive");
        let size = crate::fs::path::resolve(fs, path, true)
            .and_then(|r| fs.metadata(r.node))
            .map(|m| m.size)
            .map_err(|e| Problem::of(&structure, format!("not found: {e}")))?;
        if size > MAX_HIVE as u64 {
            return Err(Problem::of(
                structure,
                format!("{size} bytes, more than the {MAX_HIVE} read: not read"),
            ));
        }
        crate::fs::read_small(fs, path, MAX_HIVE)
            .ok_or_else(|| Problem::of(structure, "cannot be read"))
    };
    let located = |name: &str, e: hive::HiveError| {
        Problem::at(format!("{name} hive: {}", e.structure), e.offset, e.detail)
    };
    match read(SOFTWARE, "SOFTWARE") {
        Ok(b) => {
            if let Err(e) = software_facts(&b, &mut w) {
                problems.push(located("SOFTWARE", e));
            }
        }
        Err(p) => problems.push(p),
    }
    match read(SYSTEM, "SYSTEM").map(|b| system_facts(&b, &mut w)) {
        Ok(Ok(devices)) => match_drives(layout, id, &devices, &mut w, &mut problems),
        Ok(Err(e)) => problems.push(located("SYSTEM", e)),
        Err(p) => problems.push(p),
    }
    (w, problems)
}

fn text(v: Option<Value>) -> Option<String> {
    v.and_then(|v| v.text())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The facts of `SOFTWARE\Microsoft\Windows NT\CurrentVersion`.
fn software_facts(bytes: &[u8], w: &mut WindowsGuest) -> Result<(), hive::HiveError> {
    let h = Hive::new(bytes)?;
    let Some(k) = h.key(r"Microsoft\Windows NT\CurrentVersion")? else {
        return Ok(());
    };
    w.product_name = text(h.value(k, "ProductName")?);
    w.current_build = text(h.value(k, "CurrentBuild")?).or(text(h.value(k, "CurrentBuildNumber")?));
    w.edition_id = text(h.value(k, "EditionID")?);
    w.display_version = text(h.value(k, "DisplayVersion")?).or(text(h.value(k, "ReleaseId")?));
    Ok(())
}

/// The computer name, and the `\DosDevices\X:` values of `MountedDevices`.
fn system_facts(
    bytes: &[u8],
    w: &mut WindowsGuest,
) -> Result<Vec<(char, Vec<u8>)>, hive::HiveError> {
    let h = Hive::new(bytes)?;
    let current = match h.key("Select")? {
        Some(k) => h.value(k, "Current")?.and_then(|v| v.dword()),
        None => None,
    };
    let set = format!("ControlSet{:03}", current.unwrap_or(1));
    if let Some(k) = h.key(&format!(r"{set}\Control\ComputerName\ComputerName"))? {
        w.computer_name = text(h.value(k, "ComputerName")?);
        w.control_set = Some(set);
    }
    let mut devices = Vec::new();
    if let Some(k) = h.key("MountedDevices")? {
        for v in h.values(k)? {
            let letter = v
                .name
                .strip_prefix(r"\DosDevices\")
                .and_then(|r| r.strip_suffix(':'))
                .filter(|l| l.len() == 1)
                .and_then(|l| l.chars().next())
                .filter(char::is_ascii_alphabetic);
            if let Some(l) = letter {
                devices.push((l.to_ascii_uppercase(), v.data));
            }
        }
    }
    devices.sort_by_key(|(l, _)| *l);
    Ok(devices)
}

/// What one `MountedDevices` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceId {
    /// An MBR disk's signature and the partition's byte offset.
    Mbr {
        /// The disk signature (byte 440 of the MBR).
        signature: u32,
        /// The partition's first byte.
        offset: u64,
    },
    /// A GPT partition's unique GUID, as text.
    Gpt(String),
    /// Anything else (a device path in UTF-16: CD-ROMs, removable media).
    Other(String),
}

/// Decode a `MountedDevices` value.
pub fn device_id(data: &[u8]) -> DeviceId {
    if data.len() == 12
        && let (Some(signature), Some(offset)) =
            (crate::io::le::u32(data, 0), crate::io::le::u64(data, 4))
    {
        return DeviceId::Mbr { signature, offset };
    }
    if let Some(g) = data
        .strip_prefix(b"DMIO:ID:")
        .and_then(|g| <[u8; 16]>::try_from(g).ok())
    {
        return DeviceId::Gpt(partition::guid_to_string(&g));
    }
    DeviceId::Other(hive::utf16(data))
}

/// Match the drive letters to partitions of the disks of volume `id`'s
/// guest (its scope: the same nested disk level).
fn match_drives(
    layout: &Layout,
    id: VolumeId,
    devices: &[(char, Vec<u8>)],
    w: &mut WindowsGuest,
    problems: &mut Vec<Problem>,
) {
    let scope = super::nested::scope_of(layout, id);
    let find = |dev: &DeviceId| -> Option<VolumeId> {
        layout
            .volumes
            .iter()
            .filter(|v| super::nested::scope_of(layout, v.id) == scope)
            .find(|v| {
                let VolumeKind::Partition { disk, entry, .. } = &v.kind else {
                    return false;
                };
                let table = layout.disks.get(disk.0).and_then(|d| d.table.as_ref());
                match (dev, table) {
                    (DeviceId::Mbr { signature, offset }, Some(t)) => {
                        t.scheme == partition::Scheme::Dos
                            && t.id.as_deref() == Some(format!("0x{signature:08x}").as_str())
                            && entry.start == *offset
                    }
                    (DeviceId::Gpt(g), Some(t)) => {
                        t.scheme == partition::Scheme::Gpt
                            && entry
                                .uuid
                                .as_deref()
                                .is_some_and(|u| u.eq_ignore_ascii_case(g))
                    }
                    _ => false,
                }
            })
            .map(|v| v.id)
    };
    for (letter, data) in devices {
        let dev = device_id(data);
        let (target, volume, missing) = match &dev {
            DeviceId::Mbr { signature, offset } => (
                format!("MBR disk 0x{signature:08x}, partition at byte {offset}"),
                find(&dev),
                true,
            ),
            DeviceId::Gpt(g) => (format!("GPT partition {g}"), find(&dev), true),
            DeviceId::Other(path) => (path.clone(), None, false),
        };
        let missing = missing && volume.is_none();
        if missing {
            problems.push(Problem::of(
                "SYSTEM hive: MountedDevices",
                format!(r"drive {letter}: names {target}, which is not on these disks"),
            ));
        }
        w.drives.push(Drive {
            letter: *letter,
            target,
            volume,
            volume_name: volume
                .and_then(|v| layout.volumes.get(v.0))
                .map(|v| v.name.clone()),
            missing,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounted_devices_values() {
        let mut mbr = 0x1234_abcd_u32.to_le_bytes().to_vec();
        mbr.extend_from_slice(&1_048_576_u64.to_le_bytes());
        assert_eq!(
            device_id(&mbr),
            DeviceId::Mbr {
                signature: 0x1234_abcd,
                offset: 1_048_576
            }
        );
        let mut gpt = b"DMIO:ID:".to_vec();
        gpt.extend_from_slice(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        assert_eq!(
            device_id(&gpt),
            DeviceId::Gpt("00112233-4455-6677-8899-aabbccddeeff".into())
        );
        let cd: Vec<u8> = r"\??\IDE#CdRom"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(device_id(&cd), DeviceId::Other(r"\??\IDE#CdRom".into()));
    }

    /// A volume with `Windows/System32/config/` holding `files`.
    fn system_volume(files: &[(&[u8], &[u8])]) -> crate::fs::mem::MemFs {
        let mut fs = crate::fs::mem::MemFs::new();
        let mut dir = fs.root_id();
        for name in [&b"Windows"[..], b"System32", b"config"] {
            dir = fs.add_dir(dir, name, 0o755);
        }
        for (name, data) in files {
            fs.add_file(dir, name, 0o644, data);
        }
        fs
    }

    #[test]
    fn a_missing_or_damaged_hive_is_a_problem() {
        let empty = hive::empty_hive();
        let minimal: &[u8] = &empty;
        let fs = system_volume(&[(b"SYSTEM", minimal)]);
        assert!(is_system_volume(&fs));
        let (w, problems) = inspect(&Layout::empty(), VolumeId(0), &fs);
        assert_eq!(w.os_name(), "Windows");
        assert!(w.drives.is_empty());
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(
            texts[0].starts_with("SOFTWARE hive: not found"),
            "{texts:?}"
        );
        // A SOFTWARE hive that is not one.
        let fs = system_volume(&[(b"SYSTEM", minimal), (b"SOFTWARE", &[0u8; 5000])]);
        let (_, problems) = inspect(&Layout::empty(), VolumeId(0), &fs);
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            ["SOFTWARE hive: base block at byte 0: no \"regf\" signature: not a registry hive"]
        );
        // Neither hive: not a Windows system volume.
        assert!(!is_system_volume(&system_volume(&[])));
    }

    #[test]
    fn os_names() {
        let w = WindowsGuest {
            product_name: Some("Windows Server 2019 Standard".into()),
            current_build: Some("17763".into()),
            ..Default::default()
        };
        assert_eq!(w.os_name(), "Windows Server 2019 Standard (17763)");
        let w = WindowsGuest {
            product_name: Some("Windows 10 Pro".into()),
            current_build: Some("22631".into()),
            display_version: Some("23H2".into()),
            ..Default::default()
        };
        assert_eq!(w.os_name(), "Windows 11 Pro (22631)");
    }
}
