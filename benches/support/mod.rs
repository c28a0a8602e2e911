//! What the benchmarks that race a kernel path share: a scratch folder
//! removed at the end, a read-only loop mount, dropping the page cache.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Drop the page cache (root): the next read comes from the disk.
pub fn drop_caches() {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").expect("drop caches (root)");
}

/// Removes the scratch directory (image included) when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A read-only loop mount (`ro,noload`), undone when dropped.
pub struct Mount {
    /// The mount point.
    pub dir: PathBuf,
}

impl Mount {
    /// Mount `img` read-only on `dir` (made if missing).
    pub fn new(img: &Path, dir: &Path) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let st = Command::new("mount")
            .args(["-o", "loop,ro,noload"])
            .arg(img)
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -o loop,ro,noload");
        Mount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // The loop device goes with the mount (mount -o loop sets autoclear).
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
