//! Loop devices through the kernel's ioctls (`linux/loop.h`), without losetup.
//!
//! A device is found with `LOOP_CTL_GET_FREE` and bound with
//! `LOOP_CONFIGURE` (read-only and autoclear, with offset and size limit),
//! or on kernels older than 5.8 with `LOOP_SET_FD` + `LOOP_SET_STATUS64`.
//! When another process takes the same free device first (`EBUSY`), the
//! next free one is tried. Partition scanning is never asked for, so the
//! host kernel never creates partition devices for the guest's disks.
//!
//! The device's `lo_file_name` carries a tag (`vmrescue-<session>:<file>`)
//! so `vmrescue cleanup` can tell our devices from everyone else's.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where loop devices are allocated.
pub const CONTROL: &str = "/dev/loop-control";
/// Loop devices' block major number.
pub const LOOP_MAJOR: u32 = 7;

const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;
/// `LO_FLAGS_READ_ONLY`.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`: detach when the last user closes the device.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_PARTSCAN`: never set by vmrescue.
pub const LO_FLAGS_PARTSCAN: u32 = 8;

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

impl Default for LoopInfo64 {
    fn default() -> Self {
        LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: 0,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; LO_KEY_SIZE],
            lo_init: [0; 2],
        }
    }
}

/// `struct loop_config`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

#[allow(unsafe_code)]
mod sys {
    //! The raw ioctls. Every wrapper passes a pointer to a live, correctly
    //! laid out `#[repr(C)]` value (or an integer) to a descriptor that stays
    //! open for the call; the kernel only reads or writes that value.
    use std::os::fd::RawFd;

    use super::{LoopConfig, LoopInfo64};

    nix::ioctl_none_bad!(loop_ctl_get_free, 0x4C82);
    nix::ioctl_write_int_bad!(loop_set_fd, 0x4C00);
    nix::ioctl_none_bad!(loop_clr_fd, 0x4C01);
    nix::ioctl_write_ptr_bad!(loop_set_status64, 0x4C04, LoopInfo64);
    nix::ioctl_read_bad!(loop_get_status64, 0x4C05, LoopInfo64);
    nix::ioctl_write_ptr_bad!(loop_configure, 0x4C0A, LoopConfig);

    pub(super) fn get_free(control: RawFd) -> nix::Result<i32> {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        unsafe { loop_ctl_get_free(control) }
    }
    pub(super) fn set_fd(dev: RawFd, file: RawFd) -> nix::Result<i32> {
        // SAFETY: LOOP_SET_FD takes the backing descriptor by value.
        unsafe { loop_set_fd(dev, file) }
    }
    pub(super) fn clr_fd(dev: RawFd) -> nix::Result<i32> {
        // SAFETY: LOOP_CLR_FD takes no argument.
        unsafe { loop_clr_fd(dev) }
    }
    pub(super) fn set_status64(dev: RawFd, info: &LoopInfo64) -> nix::Result<i32> {
        // SAFETY: `info` is a live loop_info64 the kernel only reads.
        unsafe { loop_set_status64(dev, info) }
    }
    pub(super) fn get_status64(dev: RawFd, info: &mut LoopInfo64) -> nix::Result<i32> {
        // SAFETY: `info` is a live, writable loop_info64 the kernel fills.
        unsafe { loop_get_status64(dev, info) }
    }
    pub(super) fn configure(dev: RawFd, config: &LoopConfig) -> nix::Result<i32> {
        // SAFETY: `config` is a live loop_config the kernel only reads.
        unsafe { loop_configure(dev, config) }
    }
}

/// What to bind a loop device to.
#[derive(Debug, Clone)]
pub struct LoopSpec {
    /// The image file or block device.
    pub backing: PathBuf,
    /// First byte of the backing file the device shows.
    pub offset: u64,
    /// Bytes the device shows (0: to the end of the file).
    pub size_limit: u64,
    /// Read-write (only for explicit repairs).
    pub writable: bool,
    /// The tag put in `lo_file_name` (`vmrescue-<session>:<file>`).
    pub tag: String,
}

/// A bound loop device. Dropping it closes our descriptor; with autoclear
/// the kernel detaches the device once nobody else (dm) holds it.
#[derive(Debug)]
pub struct LoopDevice {
    /// Its number (`/dev/loopN`).
    pub number: u32,
    /// The open device: keeps it bound until the dm device holds it.
    pub file: File,
}

impl LoopDevice {
    /// `/dev/loopN`.
    pub fn path(&self) -> PathBuf {
        node(self.number)
    }
    /// (7, N).
    pub fn dev(&self) -> (u32, u32) {
        (LOOP_MAJOR, self.number)
    }
}

/// `/dev/loopN`.
pub fn node(number: u32) -> PathBuf {
    PathBuf::from(format!("/dev/loop{number}"))
}

/// `text` cut to what a loop device's `lo_file_name` keeps (63 bytes, at a
/// character boundary), so that the tag read back equals the one recorded.
pub fn fit_tag(text: &str) -> String {
    let mut end = text.len().min(LO_NAME_SIZE - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn tag_bytes(tag: &str) -> [u8; LO_NAME_SIZE] {
    let mut b = [0u8; LO_NAME_SIZE];
    let src = tag.as_bytes();
    let n = src.len().min(LO_NAME_SIZE - 1);
    b[..n].copy_from_slice(&src[..n]);
    b
}

/// The tag of a loop device's `lo_file_name` as text.
fn tag_of(info: &LoopInfo64) -> String {
    let end = info
        .lo_file_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(LO_NAME_SIZE);
    String::from_utf8_lossy(&info.lo_file_name[..end]).into_owned()
}

/// Ask the kernel for a free loop device number.
pub fn get_free() -> Result<u32> {
    let control = File::open(CONTROL).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Unsupported(format!(
                "{CONTROL} is missing: this kernel has no loop devices (try `modprobe loop`)"
            ))
        } else {
            Error::io_path(Path::new(CONTROL), e)
        }
    })?;
    match sys::get_free(control.as_raw_fd()) {
        Ok(n) => u32::try_from(n).map_err(|_| Error::Invalid(format!("{CONTROL} returned {n}"))),
        Err(nix::errno::Errno::ENOSPC) | Err(nix::errno::Errno::ENODEV) => Err(Error::Refused(
            "no free loop device is left (all are in use; see `losetup -l`, \
             or raise the limit with `modprobe loop max_loop=N`)"
                .into(),
        )),
        Err(e) => Err(Error::io(format!("{CONTROL}: LOOP_CTL_GET_FREE"), e.into())),
    }
}

/// Open `/dev/loopN`, creating the node when there is no devtmpfs/udev
/// (`created` tells the caller to remove it later).
pub fn open_node(number: u32, writable: bool) -> Result<(File, bool)> {
    let path = node(number);
    let mut created = false;
    if !path.exists() {
        super::make_block_node(&path, (LOOP_MAJOR, number))?;
        created = true;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(&path)
        .map_err(|e| Error::io_path(&path, e))?;
    Ok((file, created))
}

/// The outcome of one attempt to bind a given device.
pub enum Bind {
    /// Bound.
    Done,
    /// Another process took the device first: try another.
    Taken,
}

/// Bind the open device `dev` to `spec`.
pub fn bind(dev: &File, spec: &LoopSpec) -> Result<Bind> {
    bind_with(dev, spec, true)
}

/// [`bind`], with `LOOP_CONFIGURE` tried first only when `configure` (the
/// older `LOOP_SET_FD` + `LOOP_SET_STATUS64` otherwise, as on kernels
/// before 5.8).
pub fn bind_with(dev: &File, spec: &LoopSpec, configure: bool) -> Result<Bind> {
    let backing = OpenOptions::new()
        .read(true)
        .write(spec.writable)
        .open(&spec.backing)
        .map_err(|e| Error::io_path(&spec.backing, e))?;
    let meta = backing
        .metadata()
        .map_err(|e| Error::io_path(&spec.backing, e))?;
    if !(meta.file_type().is_file() || meta.file_type().is_block_device()) {
        return Err(Error::Invalid(format!(
            "{}: not a file or block device",
            spec.backing.display()
        )));
    }
    let mut flags = LO_FLAGS_AUTOCLEAR;
    if !spec.writable {
        flags |= LO_FLAGS_READ_ONLY;
    }
    let info = LoopInfo64 {
        lo_offset: spec.offset,
        lo_sizelimit: spec.size_limit,
        lo_flags: flags,
        lo_file_name: tag_bytes(&spec.tag),
        ..LoopInfo64::default()
    };
    let fd = u32::try_from(backing.as_raw_fd())
        .map_err(|_| Error::Invalid("negative file descriptor".into()))?;
    let config = LoopConfig {
        fd,
        block_size: 0,
        info,
        reserved: [0; 8],
    };
    let configured = if configure {
        sys::configure(dev.as_raw_fd(), &config)
    } else {
        Err(nix::errno::Errno::EINVAL)
    };
    match configured {
        Ok(_) => return Ok(Bind::Done),
        Err(nix::errno::Errno::EBUSY) => return Ok(Bind::Taken),
        // Kernels before 5.8 do not know LOOP_CONFIGURE.
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOTTY) => {}
        Err(e) => {
            return Err(Error::io(
                format!("LOOP_CONFIGURE of {}", spec.backing.display()),
                e.into(),
            ));
        }
    }
    match sys::set_fd(dev.as_raw_fd(), backing.as_raw_fd()) {
        Ok(_) => {}
        Err(nix::errno::Errno::EBUSY) => return Ok(Bind::Taken),
        Err(e) => {
            return Err(Error::io(
                format!("LOOP_SET_FD of {}", spec.backing.display()),
                e.into(),
            ));
        }
    }
    // Read-only follows from the backing descriptor's mode here; the
    // status call sets offset, size limit, autoclear and the tag.
    let mut info = info;
    info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if let Err(e) = sys::set_status64(dev.as_raw_fd(), &info) {
        let _ = sys::clr_fd(dev.as_raw_fd());
        return Err(Error::io(
            format!("LOOP_SET_STATUS64 of {}", spec.backing.display()),
            e.into(),
        ));
    }
    Ok(Bind::Done)
}

/// What a loop device is bound to, as the kernel says.
#[derive(Debug, Clone)]
pub struct LoopStatus {
    /// The `lo_file_name` tag.
    pub tag: String,
    /// Offset into the backing file.
    pub offset: u64,
    /// `lo_flags`.
    pub flags: u32,
    /// Backing file's device and inode.
    pub backing: (u64, u64),
    /// The backing file's own device number, when it is a block device.
    pub backing_rdev: u64,
}

/// The status of `/dev/loopN`, or `None` when it is not bound.
pub fn status(number: u32) -> Result<Option<LoopStatus>> {
    let path = node(number);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io_path(&path, e)),
    };
    let mut info = LoopInfo64::default();
    match sys::get_status64(f.as_raw_fd(), &mut info) {
        Ok(_) => Ok(Some(LoopStatus {
            tag: tag_of(&info),
            offset: info.lo_offset,
            flags: info.lo_flags,
            backing: (info.lo_device, info.lo_inode),
            backing_rdev: info.lo_rdevice,
        })),
        Err(nix::errno::Errno::ENXIO) => Ok(None),
        Err(e) => Err(Error::io(
            format!("{}: LOOP_GET_STATUS64", path.display()),
            e.into(),
        )),
    }
}

/// Detach `/dev/loopN`. When someone still holds it the kernel only sets
/// autoclear (it detaches on the last close); `Ok(false)` when it was not bound.
pub fn detach(number: u32) -> Result<bool> {
    let path = node(number);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io_path(&path, e)),
    };
    match sys::clr_fd(f.as_raw_fd()) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::ENXIO) => Ok(false),
        Err(e) => Err(Error::io(
            format!("{}: LOOP_CLR_FD", path.display()),
            e.into(),
        )),
    }
}

/// The (device, inode) of a path, to compare with [`LoopStatus::backing`].
pub fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn tags_are_truncated_and_terminated() {
        let long = "x".repeat(100);
        let b = tag_bytes(&long);
        assert_eq!(b[63], 0);
        let info = LoopInfo64 {
            lo_file_name: tag_bytes("vmrescue-ab:disk.img"),
            ..LoopInfo64::default()
        };
        assert_eq!(tag_of(&info), "vmrescue-ab:disk.img");
    }
}
