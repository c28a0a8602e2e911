//! Host loop devices for the write-refusal tests: a read-only loop device
//! over part of an image (as `losetup -r -o OFFSET --sizelimit SIZE` makes
//! it), maybe mounted `ro,noload`; detached (and unmounted) when dropped,
//! even when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A read-only loop device (and its mount, if any).
pub struct Attached {
    /// `/dev/loopN`.
    pub dev: String,
    /// Where it is mounted.
    pub mount: Option<PathBuf>,
}

impl Attached {
    /// `losetup -r -f --show -o OFFSET [--sizelimit SIZE] IMAGE`.
    pub fn read_only(image: &Path, offset: u64, size: Option<u64>) -> Attached {
        Attached::attach(image, true, offset, size)
    }

    /// `losetup -f --show IMAGE`: the image as a writable block device.
    pub fn read_write(image: &Path) -> Attached {
        Attached::attach(image, false, 0, None)
    }

    fn attach(image: &Path, read_only: bool, offset: u64, size: Option<u64>) -> Attached {
        let mut cmd = Command::new("losetup");
        if read_only {
            cmd.arg("-r");
        }
        cmd.args(["-f", "--show", "-o", &offset.to_string()]);
        if let Some(s) = size {
            cmd.args(["--sizelimit", &s.to_string()]);
        }
        let o = cmd.arg(image).output().expect("run losetup (util-linux)");
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Attached {
            dev: String::from_utf8_lossy(&o.stdout).trim().to_string(),
            mount: None,
        }
    }

    /// Mount it `ro,noload` on `dir` (created).
    pub fn mount_ro(mut self, dir: &Path) -> Attached {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-o", "ro,noload", &self.dev])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            o.status.success(),
            "mount {}: {}",
            self.dev,
            String::from_utf8_lossy(&o.stderr)
        );
        self.mount = Some(dir.to_path_buf());
        self
    }
}

impl Attached {
    /// Unmount it again.
    pub fn unmount(&mut self) {
        if let Some(m) = self.mount.take() {
            let st = Command::new("umount").arg(&m).status().expect("run umount");
            assert!(st.success(), "umount {}", m.display());
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A tmpfs of `size` (`64k`, `1m`) mounted for a test on a folder it
/// creates, unmounted when dropped (root, as the test command runs).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "vmrescue-test",
            ])
            .arg(at)
            .status()
            .expect("mount (root, as the test command runs)");
        assert!(st.success(), "mounting a tmpfs needs root");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
