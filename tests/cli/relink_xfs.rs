//! `vmrescue relink` and `vmrescue undo` in place on XFS (the fixtures of
//! `tests/fixtures/make/xfs-relink.sh`, v5 and v4): after a repair
//! `xfs_repair -n` finds the filesystem clean, our reader and (as root) the
//! kernel read the new target, and `undo` puts the image back byte for
//! byte; every refusal (a remote symlink, a target too long for the inode,
//! a dirty log) leaves the image as it was and writes no undo file.

use crate::common;
use crate::image_support;

use std::path::{Path, PathBuf};

use common::{fixture_copy, vmrescue};
use image_support::{files_in, sha256_file, tool};

/// Inode size less the core: the data fork of the fixtures' links.
const V5_ROOM: usize = 512 - 176;
const V4_ROOM: usize = 256 - 100;

struct Case {
    dir: tempfile::TempDir,
    image: PathBuf,
    before: String,
}

impl Case {
    fn new(fixture: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let image = fixture_copy(fixture, dir.path());
        let before = sha256_file(&image);
        Case { dir, image, before }
    }

    fn undo_dir(&self) -> PathBuf {
        self.dir.path().join("undo")
    }

    fn relink(&self, args: &[&str]) -> std::process::Output {
        let undo = self.undo_dir();
        let mut all = vec!["relink", self.image.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--undo-dir", undo.to_str().unwrap()]);
        vmrescue(&all)
    }

    /// Relink and expect success; the plan's text and the undo file.
    fn relink_ok(&self, args: &[&str]) -> (String, PathBuf) {
        let o = self.relink(args);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "relink {args:?} failed:\n{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let undo = common::undo_record(&out);
        (out, undo)
    }

    /// Relink and expect a refusal (exit 2) naming `why`; nothing written.
    fn refused(&self, args: &[&str], why: &str) {
        let o = self.relink(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "relink {args:?}: {err}");
        assert!(
            err.contains(why),
            "relink {args:?}: expected {why:?} in:\n{err}"
        );
        assert_eq!(sha256_file(&self.image), self.before, "image changed");
        assert!(
            files_in(&self.undo_dir()).is_empty(),
            "an undo file was written"
        );
    }

    /// The link's target as our `ls -l` shows it.
    fn ls_target(&self, link: &str) -> String {
        let o = vmrescue(&["ls", "-l", self.image.to_str().unwrap(), link]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        out.split(" -> ")
            .nth(1)
            .unwrap_or("")
            .trim_end()
            .to_string()
    }

    fn undo(&self, file: &Path) {
        let o = vmrescue(&["undo", file.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "undo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            sha256_file(&self.image),
            self.before,
            "undo restores every byte"
        );
    }
}

/// `xfs_repair -n` (no modify) exits 0 on the image.
fn assert_xfs_repair_clean(image: &Path) {
    let o = tool(
        "xfs_repair",
        &["-n", "-f", image.to_str().unwrap()],
        "xfsprogs",
    );
    assert!(
        o.status.success(),
        "xfs_repair -n {}:\n{}{}",
        image.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The link's target as the kernel reads it: a copy of the image, loop
/// mounted read-only without log recovery.
fn kernel_readlink_xfs(image: &Path, link: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.img");
    std::fs::copy(image, &copy).unwrap();
    let o = tool(
        "losetup",
        &["-f", "--show", "-r", copy.to_str().unwrap()],
        "util-linux",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = tool(
        "mount",
        &[
            "-t",
            "xfs",
            "-o",
            "ro,norecovery,nouuid",
            &dev,
            mnt.to_str().unwrap(),
        ],
        "mount",
    );
    let r = m
        .status
        .success()
        .then(|| std::fs::read_link(mnt.join(link.trim_start_matches('/'))));
    if r.is_some() {
        let _ = tool("umount", &[mnt.to_str().unwrap()], "mount");
    }
    let _ = tool("losetup", &["-d", &dev], "util-linux");
    use std::os::unix::ffi::OsStrExt;
    r.unwrap_or_else(|| panic!("mount {dev}: {}", String::from_utf8_lossy(&m.stderr)))
        .unwrap_or_else(|e| panic!("readlink {link}: {e}"))
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// The broken libc link gets the candidate vmrescue proposes (by SONAME),
/// then a target that fills the inode, each checked by xfs_repair and our
/// reader; undo restores the image byte for byte.
fn relink_and_undo(fixture: &str, room: usize, v5: bool) {
    let c = Case::new(fixture);
    let (plan, undo) = c.relink_ok(&["/lib64/libc.so.6", "--yes"]);
    assert!(plan.contains("inline (local-format) XFS symlink"), "{plan}");
    assert!(plan.contains("the target, di_size, di_ctime"), "{plan}");
    assert_eq!(
        plan.contains("di_changecount, di_crc"),
        v5,
        "v5 updates the change count and the CRC:\n{plan}"
    );
    assert_eq!(c.ls_target("/lib64/libc.so.6"), "libc-2.17.so");
    assert_xfs_repair_clean(&c.image);
    c.undo(&undo);
    assert_eq!(c.ls_target("/lib64/libc.so.6"), "libc-2.12.so");

    // The longest target the inode holds: every byte of the data fork.
    let full = format!("{}libc-2.17.so", "./".repeat((room - 12) / 2));
    assert_eq!(full.len(), room);
    let (_, undo) = c.relink_ok(&["/lib64/libc.so.6", "--to", &full, "--yes"]);
    assert_eq!(c.ls_target("/lib64/libc.so.6"), full);
    assert_xfs_repair_clean(&c.image);
    // And back to a short one: the rest of the long one is zeroed.
    let (_, undo2) = c.relink_ok(&["/lib64/libc.so.6", "--to", "libc-2.17.so", "--yes"]);
    assert_eq!(c.ls_target("/lib64/libc.so.6"), "libc-2.17.so");
    assert_xfs_repair_clean(&c.image);
    let o = vmrescue(&["undo", undo2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    c.undo(&undo);
}

#[test]
fn v5_inline_link_is_rewritten_checked_and_undone() {
    relink_and_undo("xfs-relink-v5", V5_ROOM, true);
}

#[test]
fn v4_inline_link_is_rewritten_checked_and_undone() {
    relink_and_undo("xfs-relink-v4", V4_ROOM, false);
}

#[test]
fn the_dry_run_names_the_inode_and_its_bytes() {
    let c = Case::new("xfs-relink-v5");
    let o = c.relink(&["/lib64/libc.so.6", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("(xfs), inode "), "{out}");
    assert!(out.contains("xfs inode "), "{out}");
    assert!(out.contains("512 bytes at volume byte "), "{out}");
    assert!(out.contains("dry run: nothing was written"), "{out}");
    assert_eq!(sha256_file(&c.image), c.before);
}

#[test]
fn remote_links_long_targets_and_dirty_logs_are_refused() {
    for (fixture, room) in [("xfs-relink-v5", V5_ROOM), ("xfs-relink-v4", V4_ROOM)] {
        let c = Case::new(fixture);
        c.refused(
            &["/lib64/long-link", "--to", "libc-2.17.so", "--yes"],
            "the target is in a data block: XFS in place handles inline targets only",
        );
        let long = format!("{}libc-2.17.so.", "./".repeat((room - 12) / 2));
        assert_eq!(long.len(), room + 1);
        c.refused(
            &["/lib64/libc.so.6", "--to", &long, "--yes"],
            &format!("holds at most {room} bytes"),
        );
        c.refused(
            &["/lib64/libc.so.6", "--to", &long, "--yes"],
            "--engine kernel",
        );
    }
    let d = Case::new("xfs-relink-dirty");
    d.refused(
        &["/lib64/libc.so.6", "--yes"],
        "the log is dirty: mount the guest once or run xfs_repair first, or repair as root with the kernel engine",
    );
}

#[test]
fn the_kernel_reads_the_new_target() {
    common::require_root("loop-mounts the repaired filesystem");
    let c = Case::new("xfs-relink-v5");
    c.relink_ok(&["/lib64/libc.so.6", "--yes"]);
    assert_eq!(
        kernel_readlink_xfs(&c.image, "/lib64/libc.so.6"),
        b"libc-2.17.so"
    );
    let full = format!("{}libc-2.17.so", "./".repeat((V5_ROOM - 12) / 2));
    c.relink_ok(&["/lib64/libc.so.6", "--to", &full, "--yes"]);
    assert_eq!(
        kernel_readlink_xfs(&c.image, "/lib64/libc.so.6"),
        full.as_bytes()
    );
}

/// The plan the CLI and the TUI's restore dialog make in place (the
/// userspace engine, as without root) refuses btrfs before reading it:
/// copy-on-write, and the kernel engine named.
#[test]
fn btrfs_is_refused_in_place_as_copy_on_write() {
    let image = common::fixture("bare-btrfs");
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
    let id = layout.find_volume("disk0").unwrap();
    let e = vmrescue::repair::relink::plan(
        &layout,
        id,
        b"/lib64/libc.so.6",
        Some(b"libc-2.17.so"),
        &vmrescue::repair::relink::Options::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, vmrescue::Error::Refused(_)), "{msg}");
    assert!(msg.contains("btrfs is copy-on-write"), "{msg}");
    assert!(msg.contains("--engine kernel"), "{msg}");
}
