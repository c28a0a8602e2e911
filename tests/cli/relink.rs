//! `vmrescue relink` and `vmrescue undo` on copies of the demo image and the
//! ext fixtures: after a repair e2fsck finds the filesystem clean and
//! debugfs (and, as root, the kernel) reads the new target; `undo` puts the
//! image back byte for byte; every refusal leaves the image's SHA-256 as it
//! was and writes no undo file.

use crate::common;
use crate::image_support;
use crate::loop_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_copy, vmrescue};
use image_support::{
    assert_e2fsck_clean, debugfs_target, files_in, has_feature, kernel_readlink, sha256_file,
    volume_file,
};

/// A fixture copy in a fresh directory, with its hash and an undo directory.
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

    fn img(&self) -> &str {
        self.image.to_str().unwrap()
    }

    /// `vmrescue relink IMAGE ARGS... --undo-dir DIR`.
    fn relink(&self, args: &[&str]) -> std::process::Output {
        let undo = self.undo_dir();
        let mut all = vec!["relink", self.img()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--undo-dir", undo.to_str().unwrap()]);
        vmrescue(&all)
    }

    /// Relink and expect success; returns the undo file it printed.
    fn relink_ok(&self, args: &[&str]) -> PathBuf {
        let o = self.relink(args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "relink {args:?} failed:\n{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        common::undo_record(&out)
    }

    /// Relink and expect a refusal (exit 2) whose message contains `why`;
    /// the image is unchanged and no undo file was written.
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

    /// The link as our own `ls -l` shows it.
    fn ls_target(&self, volume: &str, link: &str) -> String {
        let o = vmrescue(&["ls", "-l", "--volume", volume, self.img(), link]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        out.split(" -> ")
            .nth(1)
            .unwrap_or("")
            .trim_end()
            .to_string()
    }
}

const DOTS30_HELLO: &str = "././././././././././././././././././././././././././././././hello.txt";

fn dots(n: usize, tail: &str) -> String {
    format!("{}{tail}", "./".repeat(n))
}

// ----- the demo -----

#[test]
fn demo_libc_link_is_restored_checked_and_undone() {
    let c = Case::new("demo");
    // Without --to: the best candidate.
    let undo = c.relink_ok(&["/lib64/libc.so.6", "--yes"]);
    assert!(undo.starts_with(c.undo_dir()));
    let fs = volume_file(&c.image, "vg_ta/lv_root", c.dir.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    assert_eq!(
        c.ls_target("vg_ta/lv_root", "/lib64/libc.so.6"),
        "libc-2.12.so"
    );
    // Nothing else changed in the filesystem: e2fsck is clean and the other volumes are intact.
    for v in ["p1", "vg_ta/lv_home"] {
        assert_e2fsck_clean(&volume_file(&c.image, v, c.dir.path()));
    }
    // Doing it again has nothing to do.
    let o = c.relink(&["/lib64/libc.so.6", "--to", "libc-2.12.so", "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already points at libc-2.12.so"));
    c.undo(&undo);
    // A second undo is refused and changes nothing.
    let o = vmrescue(&["undo", undo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(sha256_file(&c.image), c.before);
}

/// Without --volume the link's path is a path of the whole guest: a link on
/// /boot (p1) is written on p1, and a target is judged where the guest
/// sees it (an absolute target on the root LV resolves; on p1 alone it
/// would not).
#[test]
fn a_link_on_another_volume_is_found_by_its_guest_path() {
    let c = Case::new("demo");
    // On p1 alone, /etc/grub.conf does not exist.
    c.refused(
        &[
            "--volume",
            "p1",
            "/grub/menu.lst",
            "--to",
            "/etc/grub.conf",
            "--dry-run",
        ],
        "/etc/grub.conf would not resolve inside the guest",
    );
    let o = c.relink(&["/boot/grub/menu.lst", "--to", "/etc/grub.conf", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("/grub/menu.lst on p1 (ext4)"), "{out}");
    assert_eq!(sha256_file(&c.image), c.before, "a dry run writes nothing");
    let undo = c.relink_ok(&["/boot/grub/menu.lst", "--to", "/etc/grub.conf", "--yes"]);
    let fs = volume_file(&c.image, "p1", c.dir.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/grub/menu.lst"), b"/etc/grub.conf");
    assert_eq!(c.ls_target("p1", "/grub/menu.lst"), "/etc/grub.conf");
    // Through the guest, the link leads across two volumes to the same file.
    let o = vmrescue(&["cat", c.img(), "/boot/grub/menu.lst"]);
    let o2 = vmrescue(&["cat", c.img(), "--volume", "p1", "/grub/grub.conf"]);
    assert!(o.status.success() && o2.status.success());
    assert!(!o.stdout.is_empty());
    assert_eq!(o.stdout, o2.stdout);
    c.undo(&undo);
}

#[test]
fn the_plan_is_shown_and_dry_run_writes_nothing() {
    let c = Case::new("demo");
    let o = c.relink(&["/lib64/libc.so.6", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "/lib64/libc.so.6 on vg_ta/lv_root (ext4)",
        "a fast symlink",
        "now: /opt/glibc-2.14/lib/libc.so.6",
        "- points outside the library directories (/opt/glibc-2.14/lib)",
        "- the target is glibc 2.14 but ld.so is ld-2.12.so (glibc 2.12)",
        "new: libc-2.12.so",
        "+ SONAME libc.so.6 matches",
        "+ same directory",
        "+ matches ld-2.12.so",
        "i_size, i_block, ctime",
        "256 bytes of",
        "undo: the old bytes are saved under",
        "dry run: nothing was written",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    assert_eq!(sha256_file(&c.image), c.before);
    assert!(files_in(&c.undo_dir()).is_empty());
    // Without --yes and without a terminal to ask on: refused.
    c.refused(&["/lib64/libc.so.6"], "add --yes");
}

#[test]
fn demo_flag_says_it_repairs_a_temporary_copy_and_demo_keep_keeps_one() {
    let dir = tempfile::tempdir().unwrap();
    let undo = dir.path().join("undo");
    let o = vmrescue(&[
        "relink",
        "--demo",
        "/lib64/libc.so.6",
        "--yes",
        "--undo-dir",
        undo.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("relinked /lib64/libc.so.6 -> libc-2.12.so"),
        "{out}"
    );
    assert!(out.contains("temporary copy of the demo image"), "{out}");
    let kept = dir.path().join("kept.raw");
    let o = vmrescue(&[
        "relink",
        "--demo",
        "--demo-keep",
        kept.to_str().unwrap(),
        "/lib64/libc.so.6",
        "--yes",
        "--undo-dir",
        undo.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = vmrescue(&["ls", "-l", kept.to_str().unwrap(), "/lib64/libc.so.6"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("-> libc-2.12.so"));
    // The kept copy is a new file: an existing one is never overwritten.
    let o = vmrescue(&[
        "relink",
        "--demo",
        "--demo-keep",
        kept.to_str().unwrap(),
        "/lib64/libc.so.6",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
}

// ----- the ext fixtures: fast and slow, with and without metadata_csum -----

/// fast → fast, slow → slow (longer and shorter), each checked by e2fsck,
/// debugfs and our reader, then undone byte for byte.
fn fast_and_slow(fixture: &str, metadata_csum: bool) {
    let c = Case::new(fixture);
    assert_eq!(
        has_feature(&c.image, "metadata_csum"),
        metadata_csum,
        "{fixture}: metadata_csum"
    );
    let slow_short = dots(30, "hello.txt");
    let slow_long = dots(40, "dir/f4097");
    let steps: [(&str, &str); 3] = [
        ("/fast-link", "dir/f4097"),
        ("/link60", &slow_short),
        ("/slow-link", &slow_long),
    ];
    let mut undos = Vec::new();
    for (link, to) in steps {
        undos.push(c.relink_ok(&[link, "--to", to, "--yes"]));
        assert_e2fsck_clean(&c.image);
        assert_eq!(
            debugfs_target(&c.image, link),
            to.as_bytes(),
            "{fixture}{link}"
        );
        assert_eq!(c.ls_target("disk0", link), to);
    }
    // Undo in reverse order: the image is as it was.
    for u in undos.iter().rev() {
        let o = vmrescue(&["undo", u.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(sha256_file(&c.image), c.before);
    assert_e2fsck_clean(&c.image);
}

#[test]
fn ext4_4k_with_metadata_csum() {
    fast_and_slow("ext-ext4-4k", true);
}

#[test]
fn ext4_128_byte_inodes_with_metadata_csum_and_block_maps() {
    fast_and_slow("ext-ext4-noextent", true);
}

#[test]
fn ext4_1k_without_metadata_csum() {
    fast_and_slow("ext-ext4-1k", false);
}

#[test]
fn ext2_1k() {
    fast_and_slow("ext-ext2-1k", false);
}

#[test]
fn ext3_2k() {
    fast_and_slow("ext-ext3-2k", false);
}

#[test]
fn targets_that_do_not_fit_are_refused() {
    let c = Case::new("ext-ext4-4k");
    // fast → too long for the inode.
    c.refused(
        &["/link59", "--to", DOTS30_HELLO, "--yes"],
        "at most 59 bytes",
    );
    c.refused(&["/link59", "--to", DOTS30_HELLO, "--yes"], "kernel engine");
    // slow → under 60 bytes would be read as a fast symlink.
    c.refused(
        &["/link60", "--to", "hello.txt", "--yes"],
        "would be read as a fast one",
    );
    // Longer than a symlink can be at all.
    let huge = dots(2100, "hello.txt");
    c.refused(&["/link60", "--to", &huge, "--yes"], "longer than 4095");
    // Not a symlink; not there.
    c.refused(&["/hello.txt", "--to", "x", "--yes"], "not a symbolic link");
    c.refused(&["/no-such-link", "--to", "x", "--yes"], "not found");
    // A target that dangles inside the guest needs --force.
    c.refused(&["/fast-link", "--to", "nowhere", "--yes"], "--force");
    c.relink_ok(&["/fast-link", "--to", "nowhere", "--yes", "--force"]);
    assert_e2fsck_clean(&c.image);
    assert_eq!(debugfs_target(&c.image, "/fast-link"), b"nowhere");
}

#[test]
fn a_slow_target_longer_than_its_block_is_refused() {
    let c = Case::new("ext-ext2-1k");
    let long = dots(540, "hello.txt");
    c.refused(
        &["/link60", "--to", &long, "--yes"],
        "does not fit its data block (1024 bytes",
    );
}

#[test]
fn inline_data_symlinks_only_keep_their_length() {
    let c = Case::new("ext-inline");
    assert!(has_feature(&c.image, "inline_data"));
    // inline-link holds 108 bytes: a 108-byte target that resolves.
    let same = dots(46, "dir/../hello.txt");
    assert_eq!(same.len(), 108);
    c.refused(
        &["/inline-link", "--to", "hello.txt", "--yes"],
        "same length",
    );
    let undo = c.relink_ok(&["/inline-link", "--to", &same, "--yes"]);
    assert_e2fsck_clean(&c.image);
    assert_eq!(c.ls_target("disk0", "/inline-link"), same);
    c.undo(&undo);
}

// ----- refusals -----

#[test]
fn a_journal_that_needs_recovery_is_refused() {
    for fixture in ["ext-journal-ext4", "ext-journal-ext3"] {
        let c = Case::new(fixture);
        c.refused(&["/link", "--to", "d/f", "--yes"], "journal needs recovery");
        c.refused(&["/link", "--to", "d/f", "--yes"], "e2fsck -E journal_only");
        c.refused(&["/link", "--to", "d/f", "--yes"], "--engine kernel");
    }
}

#[test]
fn an_error_flagged_filesystem_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = fixture_copy("ext-ext4-4k", dir.path());
    let o = image_support::tool(
        "debugfs",
        &["-w", "-R", "ssv state 2", image.to_str().unwrap()],
        "e2fsprogs",
    );
    assert!(o.status.success());
    let c = Case {
        before: sha256_file(&image),
        image,
        dir,
    };
    c.refused(
        &["/fast-link", "--to", "dir/f4097", "--yes"],
        "error flag is set",
    );
}

#[test]
fn an_image_locked_by_qemu_io_is_refused() {
    let c = Case::new("ext-ext4-4k");
    // qemu-io holds QEMU's image locks while it waits for commands on stdin.
    let mut child = Command::new("qemu-io")
        .args(["-f", "raw", c.img()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run qemu-io (Debian package qemu-utils)");
    let start = Instant::now();
    while vmrescue::pve::is_image_in_use(&c.image).unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "qemu-io never locked the image"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.refused(&["/fast-link", "--to", "dir/f4097", "--yes"], "is in use");
    c.refused(&["/fast-link", "--to", "dir/f4097", "--yes"], "QEMU");
    let _ = child.kill();
    let _ = child.wait();
    // Once it is gone, the same repair goes through.
    c.relink_ok(&["/fast-link", "--to", "dir/f4097", "--yes"]);
}

/// The demo's `vg_ta/lv_root`: its bytes in the image.
const DEMO_ROOT_OFFSET: u64 = 269_484_032;
const DEMO_ROOT_SIZE: u64 = 1 << 30;

#[test]
fn a_read_only_loop_mount_of_the_image_refuses_relink_and_undo() {
    common::require_root("attaches loop devices and mounts");
    let c = Case::new("demo");
    let args = ["/lib64/libc.so.6", "--to", "libc-2.12.so", "--yes"];
    // The volume mounted read-only, the way the story's operator looks first.
    let mnt = c.dir.path().join("mnt");
    let held = loop_support::Attached::read_only(&c.image, DEMO_ROOT_OFFSET, Some(DEMO_ROOT_SIZE))
        .mount_ro(&mnt);
    let want = format!(
        "{} (read-only, offset {DEMO_ROOT_OFFSET}, {DEMO_ROOT_SIZE} bytes) has the image \
         attached, mounted on {m}: umount {m} && losetup -d {}",
        held.dev,
        held.dev,
        m = mnt.display()
    );
    c.refused(&args, &want);
    // Without its mount, the loop device alone still refuses the write.
    drop(held);
    let bare = loop_support::Attached::read_only(&c.image, 0, None);
    c.refused(&args, &format!("losetup -d {}", bare.dev));
    drop(bare);

    let undo = c.relink_ok(&args);
    let relinked = sha256_file(&c.image);
    // A loop device attached through another name of the same file, that name
    // since deleted (sysfs says "(deleted)"): found by device and inode.
    let other = c.dir.path().join("other-name.img");
    std::fs::hard_link(&c.image, &other).unwrap();
    let held = loop_support::Attached::read_only(&other, 32256, None);
    std::fs::remove_file(&other).unwrap();
    let o = vmrescue(&["undo", undo.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is in use")
            && err.contains(&format!(
                "{} (read-only, offset 32256) has the image attached: losetup -d {}",
                held.dev, held.dev
            )),
        "{err}"
    );
    assert_eq!(sha256_file(&c.image), relinked, "the refused undo wrote");
    drop(held);
    c.undo(&undo);
}

#[test]
fn a_block_device_image_is_refused_while_mounted_or_looped() {
    common::require_root("attaches loop devices and mounts");
    let c = Case::new("ext-ext4-4k");
    // The image as a block device (as an LV or a disk is on a host), mounted.
    let mnt = c.dir.path().join("mnt");
    let mut disk = loop_support::Attached::read_write(&c.image).mount_ro(&mnt);
    let dev = disk.dev.clone();
    let undo = c.undo_dir();
    let relink = || {
        vmrescue(&[
            "relink",
            &dev,
            "/fast-link",
            "--to",
            "dir/f4097",
            "--yes",
            "--undo-dir",
            undo.to_str().unwrap(),
        ])
    };
    let refused = |why: &str| {
        let o = relink();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(why), "expected {why:?} in:\n{err}");
        assert_eq!(sha256_file(&c.image), c.before, "image changed");
    };
    let m = mnt.display();
    refused(&format!(
        "the image device {dev}, mounted on {m}: umount {m}"
    ));
    disk.unmount();
    // A read-only loop device over the block device, at an offset.
    let over = loop_support::Attached::read_only(Path::new(&dev), 4096, None);
    refused(&format!(
        "{} (read-only, offset 4096) has the image attached: losetup -d {}",
        over.dev, over.dev
    ));
    drop(over);
    let o = relink();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_image_with_qemu_style_ofd_locks_is_refused() {
    use std::os::fd::AsFd;
    let c = Case::new("ext-ext4-4k");
    let holder = std::fs::File::open(&c.image).unwrap();
    // Consistent read and write held, write not shared: a running VM.
    for byte in [100, 101, 201] {
        let fl = nix::libc::flock {
            l_type: nix::libc::F_RDLCK as nix::libc::c_short,
            l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
            l_start: byte,
            l_len: 1,
            l_pid: 0,
        };
        nix::fcntl::fcntl(holder.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&fl)).unwrap();
    }
    c.refused(&["/fast-link", "--to", "dir/f4097", "--yes"], "image lock");
    drop(holder);
}

#[test]
fn qcow2_and_non_ext_volumes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raw = fixture_copy("ext-ext4-4k", dir.path());
    let qcow = dir.path().join("ext4.qcow2");
    let o = image_support::tool(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            qcow.to_str().unwrap(),
        ],
        "qemu-utils",
    );
    assert!(o.status.success());
    let c = Case {
        before: sha256_file(&qcow),
        image: qcow,
        dir,
    };
    c.refused(&["/fast-link", "--to", "dir/f4097", "--yes"], "qcow2");
    c.refused(&["/fast-link", "--to", "dir/f4097", "--yes"], "qemu-nbd");
    let v = Case::new("bare-vfat");
    v.refused(
        &["/anything", "--to", "x", "--yes", "--engine", "userspace"],
        "FAT has no symbolic links",
    );
    // btrfs: copy-on-write; the kernel engine is the way.
    let b = Case::new("bare-btrfs");
    for why in ["copy-on-write", "--engine kernel"] {
        b.refused(
            &["/anything", "--to", "x", "--yes", "--engine", "userspace"],
            why,
        );
    }
}

// ----- as root: the kernel reads the new target -----

#[test]
fn kernel_mount_shows_the_new_targets() {
    common::require_root("loop-mounts the repaired filesystems");
    let c = Case::new("demo");
    c.relink_ok(&["/lib64/libc.so.6", "--yes"]);
    let fs = volume_file(&c.image, "vg_ta/lv_root", c.dir.path());
    assert_eq!(kernel_readlink(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    for fixture in [
        "ext-ext4-4k",
        "ext-ext4-noextent",
        "ext-ext2-1k",
        "ext-inline",
    ] {
        let c = Case::new(fixture);
        if fixture == "ext-inline" {
            let same = dots(46, "dir/../hello.txt");
            c.relink_ok(&["/inline-link", "--to", &same, "--yes"]);
            assert_eq!(kernel_readlink(&c.image, "/inline-link"), same.as_bytes());
            continue;
        }
        let slow = dots(30, "hello.txt");
        c.relink_ok(&["/fast-link", "--to", "dir/f4097", "--yes"]);
        c.relink_ok(&["/link60", "--to", &slow, "--yes"]);
        assert_eq!(
            kernel_readlink(&c.image, "/fast-link"),
            b"dir/f4097",
            "{fixture}"
        );
        assert_eq!(
            kernel_readlink(&c.image, "/link60"),
            slow.as_bytes(),
            "{fixture}"
        );
    }
}

// ----- a volume striped over two images -----

/// Split `vol` into two images striped in chunks of `chunk` bytes, each
/// stripe area starting at `start` in its image.
fn stripe(vol: &[u8], chunk: usize, start: usize, a: &Path, b: &Path) {
    let half = vol.len() / 2;
    let mut disks = [vec![0u8; start + half], vec![0u8; start + half]];
    for (k, c) in vol.chunks(chunk).enumerate() {
        let at = start + (k / 2) * chunk;
        disks[k % 2][at..at + c.len()].copy_from_slice(c);
    }
    std::fs::write(a, &disks[0]).unwrap();
    std::fs::write(b, &disks[1]).unwrap();
}

fn unstripe(chunk: usize, start: usize, a: &Path, b: &Path, out: &Path) {
    let disks = [std::fs::read(a).unwrap(), std::fs::read(b).unwrap()];
    let half = disks[0].len() - start;
    let mut vol = vec![0u8; 2 * half];
    for (k, c) in vol.chunks_mut(chunk).enumerate() {
        let at = start + (k / 2) * chunk;
        c.copy_from_slice(&disks[k % 2][at..at + c.len()]);
    }
    std::fs::write(out, vol).unwrap();
}

#[test]
fn a_striped_volume_is_written_through_its_mapping_on_both_images() {
    use vmrescue::io::{Area, DiskId, Mapping, Segment, Target};
    use vmrescue::layers::{Content, ContentKind, GuestRole, Volume, VolumeId, VolumeKind};
    use vmrescue::repair::relink;

    const CHUNK: usize = 512;
    const START: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let vol = std::fs::read(common::fixture("ext-ext4-4k")).unwrap();
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    stripe(&vol, CHUNK, START, &a, &b);
    let before = (sha256_file(&a), sha256_file(&b));
    let images = vec![
        vmrescue::image::open(&a).unwrap(),
        vmrescue::image::open(&b).unwrap(),
    ];
    let mut layout = vmrescue::layers::scan(images);
    let id = VolumeId(layout.volumes.len());
    layout.volumes.push(Volume {
        id,
        name: "vg/striped".into(),
        kind: VolumeKind::LogicalVolume {
            vg: "vg".into(),
            lv: "striped".into(),
            hidden: false,
            segtypes: vec!["striped".into()],
        },
        mapping: Mapping::new(vec![Segment {
            start: 0,
            len: vol.len() as u64,
            target: Target::Striped {
                chunk_size: CHUNK as u64,
                stripes: vec![
                    Area {
                        disk: DiskId(0),
                        offset: START as u64,
                    },
                    Area {
                        disk: DiskId(1),
                        offset: START as u64,
                    },
                ],
            },
        }])
        .unwrap(),
        content: Content::new(ContentKind::Ext4),
        guest: GuestRole::default(),
        problems: Vec::new(),
        notes: Vec::new(),
    });
    let opts = relink::Options {
        pve_root: Some(dir.path().join("no-pve")),
        ..relink::Options::default()
    };
    // 609 bytes: the data block's new bytes cross two 512-byte chunks.
    let target = dots(300, "dir/f4097");
    let plan = relink::plan(&layout, id, b"/slow-link", Some(target.as_bytes()), &opts).unwrap();
    assert!(plan.can_apply(), "{:?}", plan.blockers);
    assert_eq!(plan.writes.len(), 2, "both images are written");
    let ranges: usize = plan.writes.iter().map(|w| w.writes.len()).sum();
    assert!(
        ranges >= 3,
        "the data block's range is split at the chunk boundary"
    );
    let undo_dir = dir.path().join("undo");
    let undos = relink::apply(&layout, id, &plan, &undo_dir, &opts).unwrap();
    assert_eq!(undos.len(), 2);
    let out = dir.path().join("vol.img");
    unstripe(CHUNK, START, &a, &b, &out);
    assert_e2fsck_clean(&out);
    assert_eq!(debugfs_target(&out, "/slow-link"), target.as_bytes());
    for u in &undos {
        let o = vmrescue(&["undo", u.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!((sha256_file(&a), sha256_file(&b)), before);
}
