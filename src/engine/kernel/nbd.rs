//! qcow2 (and other QEMU formats) through `qemu-nbd`: a loop device can
//! only show a file's bytes as they are, so a qcow2 image is served by
//! `qemu-nbd --read-only` on a free `/dev/nbdN` instead, when the nbd
//! module and qemu-nbd exist.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A connected nbd device.
#[derive(Debug)]
pub struct NbdDevice {
    /// `/dev/nbdN`.
    pub path: PathBuf,
    /// Its device number.
    pub dev: (u32, u32),
}

fn qemu_nbd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("qemu-nbd"))
        .find(|p| p.is_file())
}

/// Whether qcow2 images can be exposed through nbd, as `Err(reason)` when not.
pub fn available() -> std::result::Result<(), String> {
    if !Path::new("/sys/block/nbd0").exists() {
        return Err("the nbd module is not loaded (`modprobe nbd`)".into());
    }
    if qemu_nbd().is_none() {
        return Err("qemu-nbd is not installed (Debian package qemu-utils)".into());
    }
    Ok(())
}

fn sys(name: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/block/{name}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A free `/dev/nbdN`: no server process attached and size 0.
pub fn free_device() -> Result<PathBuf> {
    for n in 0..256u32 {
        let name = format!("nbd{n}");
        if !Path::new(&format!("/sys/block/{name}")).exists() {
            break;
        }
        if sys(&name, "pid").is_none() && sys(&name, "size").as_deref() == Some("0") {
            return Ok(PathBuf::from(format!("/dev/{name}")));
        }
    }
    Err(Error::Refused("no free nbd device is left".into()))
}

fn kernel_name(device: &Path) -> String {
    device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Serve `image` on `device` with `qemu-nbd` (read-only unless `writable`),
/// as of internal snapshot `snapshot` (by ID) when given.
pub fn connect(
    device: &Path,
    image: &Path,
    writable: bool,
    snapshot: Option<&str>,
) -> Result<NbdDevice> {
    let bin = qemu_nbd().ok_or_else(|| Error::Unsupported("qemu-nbd is not installed".into()))?;
    let mut cmd = Command::new(bin);
    if !writable {
        cmd.arg("--read-only");
    }
    if let Some(id) = snapshot {
        if writable {
            return Err(Error::Refused(format!(
                "{}: an internal snapshot is shown read-only; repairs go to the current state",
                image.display()
            )));
        }
        cmd.arg(format!("--load-snapshot=snapshot.id={id}"));
    }
    cmd.arg("--format=qcow2")
        .arg(format!("--connect={}", device.display()))
        .arg(image);
    let out = cmd.output().map_err(|e| Error::io("running qemu-nbd", e))?;
    if !out.status.success() {
        return Err(Error::Refused(format!(
            "qemu-nbd --connect={} {} failed: {}",
            device.display(),
            image.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let name = kernel_name(device);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sys(&name, "size").is_some_and(|s| s != "0") {
            let dev = sys(&name, "dev")
                .and_then(|d| {
                    let (a, b) = d.split_once(':')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .ok_or_else(|| Error::Invalid(format!("/sys/block/{name}/dev unreadable")))?;
            return Ok(NbdDevice {
                path: device.to_path_buf(),
                dev,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = disconnect_path(device);
    Err(Error::Refused(format!(
        "{} did not come up after qemu-nbd connected it",
        device.display()
    )))
}

/// Disconnect a device we connected.
pub fn disconnect(dev: &NbdDevice) -> Result<()> {
    disconnect_path(&dev.path)
}

/// Disconnect `/dev/nbdN` (`qemu-nbd --disconnect`).
pub fn disconnect_path(device: &Path) -> Result<()> {
    let bin = qemu_nbd().ok_or_else(|| Error::Unsupported("qemu-nbd is not installed".into()))?;
    let out = Command::new(bin)
        .arg("--disconnect")
        .arg(device)
        .output()
        .map_err(|e| Error::io("running qemu-nbd --disconnect", e))?;
    if !out.status.success() {
        return Err(Error::Refused(format!(
            "qemu-nbd --disconnect {} failed: {}",
            device.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Whether `device` is served by a qemu-nbd process serving `image`.
pub fn serves(device: &Path, image: &Path) -> bool {
    let name = kernel_name(device);
    let Some(pid) = sys(&name, "pid") else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let want = image.as_os_str().as_encoded_bytes();
    cmdline.split(|&b| b == 0).any(|a| a == want)
}
