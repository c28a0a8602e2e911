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
//! * **The kernel.** Anything on this host's kernel that reaches the
//!   image's bytes: a loop device backed by it (read-only or not, at any
//!   offset; matched by device and inode through `LOOP_GET_STATUS64`, not
//!   by the path sysfs shows), for a block device the device itself or a
//!   partition of it; with whatever is stacked on those (device-mapper
//!   maps, found through `/sys/class/block/*/holders`, recursively) and
//!   wherever any of them is mounted (`/proc/self/mountinfo`). Writing
//!   under a read-only mount is as bad as under a read-write one: the
//!   kernel keeps serving (and may write back) what it cached. The message
//!   names each holder and the commands that release it. The loop devices
//!   of this process's own kernel-engine sessions are left out.

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

/// Who holds an image, by kind: QEMU (a running VM, or qemu-img, qemu-nbd)
/// or something else (a process writing to it, the host's kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    /// QEMU's image locks and QEMU/KVM processes holding it open.
    pub qemu: Vec<String>,
    /// Other processes holding it open for writing.
    pub writers: Vec<String>,
    /// Loop devices, device-mapper maps and mounts of this host that reach
    /// its bytes, each with the commands that release it.
    pub kernel: Vec<String>,
}

impl Holders {
    /// Every reason in one sentence, QEMU first; `None` when nothing holds it.
    pub fn why(&self) -> Option<String> {
        let all: Vec<&str> = self
            .qemu
            .iter()
            .chain(&self.writers)
            .chain(&self.kernel)
            .map(String::as_str)
            .collect();
        (!all.is_empty()).then(|| all.join("; "))
    }
}

/// Why `path` must be treated as in use by a running VM or another writer,
/// or `None` when nothing shows it is ([`image_holders`] in one sentence).
///
/// The repair code refuses to write when this says `Some`; the layer view
/// shows the reason in a banner.
pub fn is_image_in_use(path: &Path) -> Result<Option<String>> {
    Ok(image_holders(path)?.why())
}

/// Who holds the image at `path`: QEMU's locks and processes, other
/// writers, the host's kernel (loop devices, maps, mounts).
pub fn image_holders(path: &Path) -> Result<Holders> {
    // Only files and block devices can be images; opening anything else (a
    // FIFO, a socket) could block or have side effects.
    let kind = std::fs::metadata(path).with_path(path)?.file_type();
    if !(kind.is_file() || kind.is_block_device()) {
        return Ok(Holders::default());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_path(path)?;
    let meta = file.metadata().with_path(path)?;
    let mut h = Holders::default();
    if let Some(w) = qemu_locks(&file) {
        h.qemu.push(w);
    }
    for (is_qemu, why) in processes_using(&meta) {
        if is_qemu {
            h.qemu.push(why);
        } else {
            h.writers.push(why);
        }
    }
    h.kernel = kernel_holders(&meta);
    Ok(h)
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
/// that hold it open at all (those marked `true`).
fn processes_using(image: &std::fs::Metadata) -> Vec<(bool, String)> {
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
                out.push((
                    is_qemu,
                    format!(
                        "process {pid} ({}) has it open{}",
                        crate::text::escape_str(&comm),
                        if writable { " for writing" } else { "" }
                    ),
                ));
                break;
            }
        }
    }
    out
}

/// Most block devices followed through `holders/` from one device.
const MAX_HOLDERS: usize = 256;
/// Deepest stack of holders followed (dm over dm over loop...).
const MAX_HOLDER_DEPTH: usize = 16;

/// A block device of this host that shows the image's bytes: a loop
/// device backed by it, the image device itself or one of its partitions.
struct Root {
    /// Kernel name (`loop3`, `sdb1`).
    name: String,
    /// What it is, for the message.
    what: String,
    /// Whether it is a loop device (detached with `losetup -d`).
    is_loop: bool,
    /// Whether it counts even when nothing holds or mounts it.
    always: bool,
}

/// Everything on this host's kernel that reaches the image's bytes: loop
/// devices backed by it (read-only or not, at any offset), and for a block
/// device the device itself and its partitions; each with the
/// device-mapper (or other) devices stacked on it and where any of them is
/// mounted, and the commands that release it. The loop devices of this
/// process's own kernel-engine sessions are left out.
fn kernel_holders(image: &std::fs::Metadata) -> Vec<String> {
    let mounts = Mounts::read();
    let mut roots = loop_roots(image);
    if image.file_type().is_block_device() {
        roots.extend(device_roots(image.rdev()));
    }
    roots
        .iter()
        .filter_map(|r| describe_root(r, &mounts))
        .collect()
}

/// Loop devices whose backing file is the image (by device and inode,
/// or for a block device by its device number).
fn loop_roots(image: &std::fs::Metadata) -> Vec<Root> {
    let mut out = Vec::new();
    let Ok(devs) = std::fs::read_dir("/sys/block") else {
        return out;
    };
    for d in devs.flatten() {
        let name = d.file_name().to_string_lossy().to_string();
        let Some(number) = name
            .strip_prefix("loop")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let sys = d.path();
        let backing_name = read_sys(&sys.join("loop/backing_file"));
        let Some(backing_name) = backing_name else {
            continue; // not bound
        };
        // The ioctl gives the backing file's identity whatever its path
        // (sysfs truncates long paths and marks deleted files).
        let (matches, tag) = match crate::engine::kernel::loopdev::status(number) {
            Ok(Some(st)) => {
                let m = if image.file_type().is_block_device() {
                    st.backing_rdev != 0 && st.backing_rdev == image.rdev()
                } else {
                    st.backing == (image.dev(), image.ino())
                };
                (m, st.tag)
            }
            // No node to ask (no devtmpfs), or it cannot be opened: the
            // path sysfs shows.
            Ok(None) | Err(_) => {
                let path = backing_name.trim_end_matches(" (deleted)");
                let m = std::fs::metadata(path).is_ok_and(|m| same_object(image, &m));
                (m, String::new())
            }
        };
        if !matches || crate::engine::kernel::is_own_loop_tag(&tag) {
            continue;
        }
        let ro = read_sys(&sys.join("ro")).is_some_and(|s| s == "1");
        let offset = read_sys(&sys.join("loop/offset")).unwrap_or_else(|| "0".into());
        let mut what = format!(
            "/dev/{name} ({}, offset {offset}",
            if ro { "read-only" } else { "read-write" }
        );
        if let Some(limit) = read_sys(&sys.join("loop/sizelimit")).filter(|l| l != "0") {
            what.push_str(&format!(", {limit} bytes"));
        }
        what.push_str(") has the image attached");
        out.push(Root {
            name,
            what,
            is_loop: true,
            always: true,
        });
    }
    out
}

/// The image block device itself and its partitions.
fn device_roots(rdev: u64) -> Vec<Root> {
    let major = nix::sys::stat::major(rdev);
    let minor = nix::sys::stat::minor(rdev);
    let sys = Path::new("/sys/dev/block").join(format!("{major}:{minor}"));
    let Ok(real) = std::fs::canonicalize(&sys) else {
        return Vec::new();
    };
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut out = vec![Root {
        what: format!("the image device /dev/{name}"),
        name,
        is_loop: false,
        always: false,
    }];
    if let Ok(entries) = std::fs::read_dir(&real) {
        for e in entries.flatten() {
            if e.path().join("partition").is_file() {
                let part = e.file_name().to_string_lossy().to_string();
                out.push(Root {
                    what: format!("its partition /dev/{part}"),
                    name: part,
                    is_loop: false,
                    always: false,
                });
            }
        }
    }
    out
}

/// A sysfs attribute, trimmed; `None` when absent or empty.
fn read_sys(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
        .filter(|s| !s.is_empty())
}

/// The host's mounts by device number (`/proc/self/mountinfo`).
struct Mounts(Vec<(String, String)>);

impl Mounts {
    fn read() -> Mounts {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Mounts(
            info.lines()
                .filter_map(|l| {
                    let mut f = l.split(' ');
                    let dev = f.nth(2)?;
                    let point = f.nth(1)?;
                    let point = crate::text::unescape_octal(point);
                    Some((
                        dev.to_string(),
                        String::from_utf8_lossy(&point).into_owned(),
                    ))
                })
                .collect(),
        )
    }

    /// Where the device `major:minor` is mounted.
    fn of(&self, dev: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(d, _)| d == dev)
            .map(|(_, p)| p.as_str())
    }
}

/// A block device stacked on a root (through `holders/`).
struct Stacked {
    name: String,
    /// The device-mapper name, for a dm device.
    dm_name: Option<String>,
}

/// The devices stacked on `name`, nearest first (bounded).
fn holders_of(name: &str) -> Vec<Stacked> {
    let mut out: Vec<Stacked> = Vec::new();
    let mut frontier = vec![name.to_string()];
    for _ in 0..MAX_HOLDER_DEPTH {
        let mut next = Vec::new();
        for dev in &frontier {
            let dir = Path::new("/sys/class/block").join(dev).join("holders");
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let h = e.file_name().to_string_lossy().to_string();
                if h == name || out.iter().any(|s| s.name == h) || out.len() >= MAX_HOLDERS {
                    continue;
                }
                let dm_name = read_sys(&Path::new("/sys/class/block").join(&h).join("dm/name"));
                out.push(Stacked {
                    name: h.clone(),
                    dm_name,
                });
                next.push(h);
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    out
}

/// `/sys/class/block/NAME/dev` (`major:minor`).
fn dev_of(name: &str) -> Option<String> {
    read_sys(&Path::new("/sys/class/block").join(name).join("dev"))
}

/// A path as one shell word.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,=".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The message for one root: what it is, what is stacked on it, where it
/// is mounted, and the commands that release it; `None` when nothing on
/// the host uses it.
fn describe_root(root: &Root, mounts: &Mounts) -> Option<String> {
    let stacked = holders_of(&root.name);
    let mut points: Vec<String> = Vec::new();
    // Mounts of the topmost devices first: they are released first.
    let devices: Vec<&str> = stacked
        .iter()
        .rev()
        .map(|s| s.name.as_str())
        .chain(std::iter::once(root.name.as_str()))
        .collect();
    for d in &devices {
        if let Some(dev) = dev_of(d) {
            for p in mounts.of(&dev) {
                if !points.iter().any(|q| q == p) {
                    points.push(p.to_string());
                }
            }
        }
    }
    if !root.always && stacked.is_empty() && points.is_empty() {
        return None;
    }
    let mut msg = root.what.clone();
    if !stacked.is_empty() {
        let names: Vec<String> = stacked
            .iter()
            .map(|s| match &s.dm_name {
                Some(n) => format!("device-mapper device {n} (/dev/{})", s.name),
                None => format!("/dev/{}", s.name),
            })
            .collect();
        msg.push_str(&format!(", under {}", names.join(", ")));
    }
    if !points.is_empty() {
        msg.push_str(&format!(", mounted on {}", points.join(", ")));
    }
    let mut release: Vec<String> = points
        .iter()
        .map(|p| format!("umount {}", shell_word(p)))
        .collect();
    for s in stacked.iter().rev() {
        release.push(match &s.dm_name {
            Some(n) => format!("dmsetup remove {}", shell_word(n)),
            None if s.name.starts_with("md") => format!("mdadm --stop /dev/{}", s.name),
            None => format!("release /dev/{}", s.name),
        });
    }
    if root.is_loop {
        release.push(format!("losetup -d /dev/{}", root.name));
    }
    if !release.is_empty() {
        msg.push_str(&format!(": {}", release.join(" && ")));
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_commands_quote_what_the_shell_would_split() {
        assert_eq!(shell_word("/mnt/x"), "/mnt/x");
        assert_eq!(shell_word("/mnt/my disk"), "'/mnt/my disk'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

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
