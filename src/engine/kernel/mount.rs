//! Mounting a mapped volume, read-only, and unmounting it again.
//!
//! Read-only mounts always carry `ro,nosuid,nodev,noexec`; ext3/ext4 add
//! `noload` (the journal is neither replayed nor written) and XFS
//! `norecovery,nouuid` (a guest cloned from the same template as another
//! mounted filesystem shares its UUID, which XFS otherwise refuses); btrfs
//! adds `rescue=nologreplay`; other types plain `ro`.
//! When the kernel refuses a mount, its own message (read from
//! `/dev/kmsg`) is part of the error.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use nix::mount::{MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::layers::ContentKind;

/// The filesystem type and options to mount `kind` with (from the
/// filesystem table, [`crate::fs::kinds`]).
pub fn options(kind: ContentKind, writable: bool) -> Result<(&'static str, MsFlags, &'static str)> {
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let ro = base | MsFlags::MS_RDONLY;
    let Some(m) = crate::fs::kinds::by_probe_name(kind.name()).and_then(|k| k.mount) else {
        return Err(Error::Invalid(format!(
            "{} is not a filesystem the kernel engine mounts",
            kind.name()
        )));
    };
    if writable {
        // A repair: the kernel replays the journal, as it would at boot.
        return Ok((m.fstype, base, m.rw_data));
    }
    Ok((m.fstype, ro, m.ro_data))
}

/// New messages in the kernel log since it was opened.
pub struct KernelLog {
    file: Option<File>,
}

impl KernelLog {
    /// Start watching the kernel log (from its current end).
    pub fn open() -> KernelLog {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()
            .and_then(|mut f| f.seek(SeekFrom::End(0)).ok().map(|_| f));
        KernelLog { file }
    }

    /// The messages logged since, one per line (at most 20), preferring
    /// those that mention `device` (`dm-3`).
    pub fn since(&mut self, device: &str) -> Vec<String> {
        let Some(f) = &mut self.file else {
            return Vec::new();
        };
        let mut all = Vec::new();
        let mut buf = vec![0u8; 8192];
        // Each read returns one record; EAGAIN when there are no more.
        for _ in 0..1000 {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let first = rec.lines().next().unwrap_or("");
                    if let Some((_, msg)) = first.split_once(';') {
                        all.push(msg.trim_end().to_string());
                    }
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        let needle = format!("({device})");
        let mine: Vec<String> = all
            .iter()
            .filter(|m| m.contains(&needle))
            .cloned()
            .collect();
        let mut out = if mine.is_empty() { all } else { mine };
        out.truncate(20);
        out
    }
}

/// Mount `source` (kernel name `kname`, e.g. `dm-3`) holding `kind` on `target`.
pub fn mount(
    source: &Path,
    kname: &str,
    target: &Path,
    kind: ContentKind,
    writable: bool,
) -> Result<()> {
    mount_with(source, kname, target, kind, writable, "")
}

/// [`mount`] with `extra` options after the table's (`subvolid=5`: a
/// btrfs volume's top level, whatever its default subvolume).
pub fn mount_with(
    source: &Path,
    kname: &str,
    target: &Path,
    kind: ContentKind,
    writable: bool,
    extra: &str,
) -> Result<()> {
    let (fstype, flags, data) = options(kind, writable)?;
    let data = match (data.is_empty(), extra.is_empty()) {
        (_, true) => data.to_string(),
        (true, false) => extra.to_string(),
        (false, false) => format!("{data},{extra}"),
    };
    let data = data.as_str();
    let mut log = KernelLog::open();
    let attempt = |fstype: &str, data: &str| {
        nix::mount::mount(
            Some(source),
            target,
            Some(fstype),
            flags,
            if data.is_empty() { None } else { Some(data) },
        )
    };
    let mut result = attempt(fstype, data);
    // ext2/ext3 may only be served by the ext4 driver.
    if result == Err(nix::errno::Errno::ENODEV) && kind.is_ext() {
        result = attempt("ext4", data);
    }
    // Kernels before 5.9 spell btrfs's option without the `rescue=`.
    if result == Err(nix::errno::Errno::EINVAL) && kind == ContentKind::Btrfs && !writable {
        let old = if extra.is_empty() {
            "nologreplay".to_string()
        } else {
            format!("nologreplay,{extra}")
        };
        result = attempt(fstype, &old);
    }
    match result {
        Ok(()) => Ok(()),
        Err(errno) => {
            let msgs = log.since(kname);
            let opts = describe_options(flags, data);
            let mut detail = format!(
                "mount -t {fstype} -o {opts} {} {} failed: {}",
                source.display(),
                target.display(),
                errno.desc()
            );
            if errno == nix::errno::Errno::ENODEV {
                detail.push_str(&format!(
                    " (this kernel has no {fstype} driver: try `modprobe {fstype}`)"
                ));
            }
            if !msgs.is_empty() {
                detail.push_str(&format!("; the kernel said: {}", msgs.join(" / ")));
            }
            Err(Error::Refused(detail))
        }
    }
}

fn describe_options(flags: MsFlags, data: &str) -> String {
    let mut v = Vec::new();
    v.push(if flags.contains(MsFlags::MS_RDONLY) {
        "ro"
    } else {
        "rw"
    });
    for (f, n) in [
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
    ] {
        if flags.contains(f) {
            v.push(n);
        }
    }
    if !data.is_empty() {
        v.push(data);
    }
    v.join(",")
}

/// How an unmount went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmounted {
    /// Gone.
    Now,
    /// Busy after the retries: detached lazily; the kernel finishes it
    /// when the last open file on it is closed.
    Lazily,
    /// Nothing was mounted there.
    Absent,
}

/// Whether something is mounted exactly at `path` (per `/proc/self/mountinfo`).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    text.lines().any(|l| {
        l.split_whitespace()
            .nth(4)
            .is_some_and(|m| unescape_mount(m) == want)
    })
}

/// `/proc` escapes spaces and such as `\040`.
fn unescape_mount(s: &str) -> String {
    String::from_utf8_lossy(&crate::text::unescape_octal(s)).to_string()
}

/// Unmount `target`: retried while busy (`tries` times, 100 ms apart),
/// then detached lazily when `lazy` is set.
pub fn unmount(target: &Path, tries: u32, lazy: bool) -> Result<Unmounted> {
    if !is_mountpoint(target) {
        return Ok(Unmounted::Absent);
    }
    let mut last = nix::errno::Errno::EBUSY;
    for i in 0..tries.max(1) {
        match nix::mount::umount2(target, MntFlags::empty()) {
            Ok(()) => return Ok(Unmounted::Now),
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {
                return Ok(Unmounted::Absent);
            }
            Err(nix::errno::Errno::EBUSY) => {
                last = nix::errno::Errno::EBUSY;
                if i + 1 < tries {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    if lazy && last == nix::errno::Errno::EBUSY {
        nix::mount::umount2(target, MntFlags::MNT_DETACH)
            .map_err(|e| Error::io(format!("unmounting {} lazily", target.display()), e.into()))?;
        return Ok(Unmounted::Lazily);
    }
    Err(Error::io(
        format!("unmounting {}", target.display()),
        last.into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_the_design() {
        let (t, f, d) = options(ContentKind::Ext4, false).unwrap();
        assert_eq!((t, d), ("ext4", "noload"));
        assert_eq!(describe_options(f, d), "ro,nosuid,nodev,noexec,noload");
        let (t, f, d) = options(ContentKind::Xfs, false).unwrap();
        assert_eq!(
            describe_options(f, d),
            "ro,nosuid,nodev,noexec,norecovery,nouuid"
        );
        assert_eq!(t, "xfs");
        let (_, f, d) = options(ContentKind::Vfat, false).unwrap();
        assert_eq!(describe_options(f, d), "ro,nosuid,nodev,noexec");
        let (_, f, d) = options(ContentKind::Ext4, true).unwrap();
        assert_eq!(describe_options(f, d), "rw,nosuid,nodev,noexec");
        assert!(options(ContentKind::Swap, false).is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount("/run/a\\040b"), "/run/a b");
        assert_eq!(unescape_mount("/x\\"), "/x\\");
    }
}
