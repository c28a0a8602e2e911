//! Is an image in use by a running VM (or anything else that may write to it)?
//!
//! Three independent signs, any of which counts:
//!
//! * **QEMU's image locks.** QEMU (and qemu-img, qemu-io, qemu-nbd) takes
//!   open-file-description (OFD) byte-range locks on every image it opens:
//!   a shared lock on byte `100 + n` for each permission *n* it holds and on
//!   byte `200 + n` for each permission it does not let others have
//!   (permission bits: 0 consistent read, 1 write, 2 write unchanged,
//!   3 resize; see QEMU's `block/file-posix.c`, `RAW_LOCK_PERM_BASE` and
//!   `RAW_LOCK_SHARED_BASE`). We ask the kernel with `F_OFD_GETLK` whether
//!   an exclusive lock on those bytes would conflict; it would whenever QEMU
//!   holds any of them. Nothing is locked by asking.
//! * **Processes.** Another process holding the file (or block device)
//!   open for writing, or any QEMU/KVM process holding it open at all
//!   (found through `/proc/PID/fd`).
//! * **The kernel.** A loop device attached read-write to the file, or the
//!   block device mounted on the host (a running container's root).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

use crate::error::{IoContext, Result};

/// QEMU's lock byte offsets (`block/file-posix.c`).
pub const QEMU_LOCK_PERM_BASE: i64 = 100;
/// See [`QEMU_LOCK_PERM_BASE`].
pub const QEMU_LOCK_SHARED_BASE: i64 = 200;
/// QEMU's permission bits, in lock-byte order.
const QEMU_PERMS: [&str; 5] = [
    "consistent read",
    "write",
    "write unchanged",
    "resize",
    "graph change",
];

/// Why `path` must be treated as in use by a running VM or another writer,
/// or `None` when nothing shows it is.
///
/// The repair code refuses to write when this says `Some`; the layer view
/// shows the reason in a banner.
pub fn is_image_in_use(path: &Path) -> Result<Option<String>> {
    // Only files and block devices can be images; opening anything else (a
    // FIFO, a socket) could block or have side effects.
    let kind = std::fs::metadata(path).with_path(path)?.file_type();
    if !(kind.is_file() || kind.is_block_device()) {
        return Ok(None);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_path(path)?;
    let meta = file.metadata().with_path(path)?;
    let mut why = Vec::new();
    if let Some(w) = qemu_locks(&file) {
        why.push(w);
    }
    why.extend(processes_using(&meta));
    if meta.file_type().is_block_device() {
        why.extend(mounted(meta.rdev()));
    } else {
        why.extend(loop_devices(&meta));
    }
    Ok(if why.is_empty() {
        None
    } else {
        Some(why.join("; "))
    })
}

/// Whether another open file description holds a lock on `start` (1 byte).
fn locked(file: &File, start: i64, len: i64) -> bool {
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    match fcntl(file.as_fd(), FcntlArg::F_OFD_GETLK(&mut fl)) {
        Ok(_) => fl.l_type != libc::F_UNLCK as libc::c_short,
        Err(_) => false,
    }
}

/// A description of QEMU's locks on `file`, if any are held.
fn qemu_locks(file: &File) -> Option<String> {
    let n = QEMU_PERMS.len() as i64;
    let any = locked(file, QEMU_LOCK_PERM_BASE, 100) || locked(file, QEMU_LOCK_SHARED_BASE, 100);
    if !any {
        return None;
    }
    let names = |base: i64| -> Vec<&'static str> {
        (0..n)
            .filter(|i| locked(file, base + i, 1))
            .map(|i| QEMU_PERMS[i as usize])
            .collect()
    };
    let held = names(QEMU_LOCK_PERM_BASE);
    let unshared = names(QEMU_LOCK_SHARED_BASE);
    let mut s = "a QEMU process (VM, qemu-img, qemu-nbd) holds its image lock".to_string();
    if !held.is_empty() {
        s.push_str(&format!(": open for {}", held.join(", ")));
    }
    if !unshared.is_empty() {
        s.push_str(&format!(
            "{} others may not {}",
            if held.is_empty() { ":" } else { ";" },
            unshared.join(", ")
        ));
    }
    Some(s)
}

/// Whether `meta` (of an fd's target) is the same file or device as `image`.
fn same_object(image: &std::fs::Metadata, other: &std::fs::Metadata) -> bool {
    if image.file_type().is_block_device() {
        other.file_type().is_block_device() && other.rdev() == image.rdev()
    } else {
        other.dev() == image.dev() && other.ino() == image.ino()
    }
}

/// Other processes that hold the image open for writing, and QEMU processes
/// that hold it open at all.
fn processes_using(image: &std::fs::Metadata) -> Vec<String> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    // Bounded: one pass over the process table, each fd table read once.
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue; // gone, or not ours to look at
        };
        let comm = std::fs::read_to_string(p.path().join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let is_qemu = comm.contains("qemu") || comm == "kvm";
        for fd in fds.flatten() {
            let Ok(m) = std::fs::metadata(fd.path()) else {
                continue;
            };
            if !same_object(image, &m) {
                continue;
            }
            let writable = std::fs::read_to_string(p.path().join("fdinfo").join(fd.file_name()))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                })
                .is_some_and(|flags| flags & 0o3 != 0);
            if writable || is_qemu {
                out.push(format!(
                    "process {pid} ({}) has it open{}",
                    crate::text::escape_str(&comm),
                    if writable { " for writing" } else { "" }
                ));
                break;
            }
        }
    }
    out
}

/// Loop devices attached read-write to the image file.
fn loop_devices(image: &std::fs::Metadata) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(devs) = std::fs::read_dir("/sys/block") else {
        return out;
    };
    for d in devs.flatten() {
        let name = d.file_name().to_string_lossy().to_string();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(d.path().join("loop/backing_file")) else {
            continue;
        };
        let Ok(m) = std::fs::metadata(backing.trim_end_matches('\n')) else {
            continue;
        };
        if !same_object(image, &m) {
            continue;
        }
        let ro = std::fs::read_to_string(d.path().join("ro"))
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        if !ro {
            out.push(format!("attached read-write to /dev/{name}"));
        }
    }
    out
}

/// Where a block device (by device number) is mounted on the host.
fn mounted(rdev: u64) -> Vec<String> {
    let major = nix::sys::stat::major(rdev);
    let minor = nix::sys::stat::minor(rdev);
    let want = format!("{major}:{minor}");
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(2) == Some(&want.as_str())).then(|| {
                format!(
                    "mounted on the host at {}",
                    f.get(4).copied().unwrap_or("?")
                )
            })
        })
        .take(1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unused_file_is_not_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.img");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        assert_eq!(is_image_in_use(&p).unwrap(), None);
    }

    #[test]
    fn qemu_style_locks_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.img");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        // Take QEMU's locks from another open file description: consistent
        // read and write held, write not shared.
        let holder = File::open(&p).unwrap();
        for byte in [100, 101, 201] {
            let fl = libc::flock {
                l_type: libc::F_RDLCK as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                l_start: byte,
                l_len: 1,
                l_pid: 0,
            };
            fcntl(holder.as_fd(), FcntlArg::F_OFD_SETLK(&fl)).unwrap();
        }
        let why = is_image_in_use(&p).unwrap().expect("locks should be seen");
        assert!(
            why.contains("open for consistent read, write") && why.contains("may not write"),
            "{why}"
        );
        drop(holder);
        assert_eq!(is_image_in_use(&p).unwrap(), None);
    }
}
