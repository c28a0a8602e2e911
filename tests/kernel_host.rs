//! The kernel engine's pieces that work on this host without
//! device-mapper (loop devices, mounts, the state file and `cleanup`), its
//! messages when it cannot run, and its refusal without root. The whole
//! engine (device-mapper included) is tested in a VM by `tests/vm/run.sh`.

// Test helpers unwrap too: a failure there is a failed test (`clippy.toml`
// allows unwrap only inside test functions).
#![allow(clippy::unwrap_used)]

mod common;
mod pty_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vmrescue::engine::kernel::loopdev::{self, Bind, LoopSpec};
use vmrescue::engine::kernel::{NO_DM_ENV, mount, state};
use vmrescue::layers::ContentKind;

/// `cleanup` looks at every loop device with our tag: tests here must not
/// overlap (nor decompress the same fixture at once).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bind a free loop device to `spec` (retrying when another process takes it).
fn attach(spec: &LoopSpec) -> loopdev::LoopDevice {
    attach_with(spec, true)
}

fn attach_with(spec: &LoopSpec, configure: bool) -> loopdev::LoopDevice {
    for _ in 0..32 {
        let n = loopdev::get_free().expect("free loop device");
        let (file, _) = loopdev::open_node(n, spec.writable).expect("open loop node");
        match loopdev::bind_with(&file, spec, configure).expect("bind loop device") {
            Bind::Done => return loopdev::LoopDevice { number: n, file },
            Bind::Taken => continue,
        }
    }
    panic!("no loop device could be bound");
}

fn sys(n: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/block/loop{n}/{file}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_unbound(n: u32, tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match loopdev::status(n).expect("loop status") {
            Some(st) if st.tag == tag => std::thread::sleep(Duration::from_millis(50)),
            _ => return,
        }
    }
    panic!("/dev/loop{n} is still bound to {tag}");
}

fn mkfs_ext4(path: &Path, size_mib: u64) {
    mkfs_ext4_from(path, size_mib, None);
}

/// An ext4 image of `size_mib` MiB, filled from folder `root` if given.
fn mkfs_ext4_from(path: &Path, size_mib: u64, root: Option<&Path>) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size_mib << 20).unwrap();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .args(
            root.map(|r| [std::ffi::OsStr::new("-d"), r.as_os_str()])
                .into_iter()
                .flatten(),
        )
        .arg(path)
        .status()
        .expect("run mke2fs (e2fsprogs)");
    assert!(st.success());
}

#[test]
fn loop_devices_are_read_only_autoclear_tagged_and_never_scan_partitions() {
    common::require_root("binds loop devices");
    let _g = serial();
    // LOOP_CONFIGURE, and the older LOOP_SET_FD + LOOP_SET_STATUS64.
    for configure in [true, false] {
        check_loop_device(configure);
    }
}

fn check_loop_device(configure: bool) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("pattern.img");
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i / 512 % 251) as u8).collect();
    std::fs::write(&img, &data).unwrap();
    let tag = "vmrescue-0badc0de:pattern.img".to_string();
    let dev = attach_with(
        &LoopSpec {
            backing: img.clone(),
            offset: 1 << 20,
            size_limit: 2 << 20,
            writable: false,
            tag: tag.clone(),
        },
        configure,
    );
    let n = dev.number;
    assert_eq!(sys(n, "ro"), "1");
    assert_eq!(sys(n, "loop/autoclear"), "1");
    assert_eq!(sys(n, "loop/partscan"), "0");
    assert_eq!(sys(n, "loop/offset"), (1u64 << 20).to_string());
    assert_eq!(sys(n, "size"), (4096u64).to_string());
    let st = loopdev::status(n).unwrap().expect("bound");
    assert_eq!(st.tag, tag);
    assert_eq!(st.flags & loopdev::LO_FLAGS_PARTSCAN, 0);
    assert_eq!(Some(st.backing), loopdev::file_id(&img));
    let shown = std::fs::read(dev.path()).unwrap();
    assert_eq!(shown, data[1 << 20..3 << 20]);
    // Writing through it is refused (by open or by the write).
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(dev.path()) {
        use std::os::unix::fs::FileExt;
        let written = f.write_at(&[0xff; 512], 0).and_then(|_| f.sync_all());
        assert!(written.is_err(), "a write through the loop device worked");
    }
    assert_eq!(std::fs::read(&img).unwrap(), data);
    // Closing the last descriptor detaches it (autoclear).
    drop(dev);
    wait_unbound(n, &tag);
}

#[test]
fn mount_errors_carry_the_kernel_message() {
    common::require_root("loop mounts");
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("broken.img");
    mkfs_ext4(&img, 8);
    // An unknown incompatible feature (s_feature_incompat, byte 0x60 of the superblock).
    let mut b = std::fs::read(&img).unwrap();
    b[1024 + 0x63] |= 0x80;
    std::fs::write(&img, &b).unwrap();
    let tag = "vmrescue-0badc0de:broken.img".to_string();
    let dev = attach(&LoopSpec {
        backing: img,
        offset: 0,
        size_limit: 0,
        writable: false,
        tag: tag.clone(),
    });
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    let kname = format!("loop{}", dev.number);
    let err = mount::mount(&dev.path(), &kname, &target, ContentKind::Ext4, false)
        .expect_err("the kernel refuses this filesystem")
        .to_string();
    assert!(err.contains("ro,nosuid,nodev,noexec,noload"), "{err}");
    assert!(
        err.contains(&format!("the kernel said: EXT4-fs ({kname})")),
        "{err}"
    );
    let n = dev.number;
    drop(dev);
    wait_unbound(n, &tag);
}

fn write_state(run: &Path, sid: &str, pid_start_delta: u64, objects: Vec<state::Object>) {
    let dir = run.join(sid);
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id();
    let st = state::State {
        version: 1,
        session: sid.to_string(),
        pid,
        pid_start: state::process_start(pid).unwrap() + pid_start_delta,
        objects,
    };
    state::write_atomic(&dir.join(state::STATE_FILE), &st).unwrap();
}

#[test]
fn cleanup_removes_what_a_killed_session_left_and_nothing_else() {
    common::require_root("loop mounts");
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let img = dir.path().join("guest.img");
    mkfs_ext4(&img, 8);
    // A killed session: a loop device, held by a mount under its directory.
    let sid = "0badf00d";
    let tag = format!("vmrescue-{sid}:guest.img");
    let mnt = run.join(sid).join("p1");
    let objects = vec![
        state::Object::Loop {
            number: 0, // replaced below
            backing: img.clone(),
            tag: tag.clone(),
        },
        state::Object::Dir { path: mnt.clone() },
        state::Object::Mount { path: mnt.clone() },
    ];
    std::fs::create_dir_all(&mnt).unwrap();
    let dev = attach(&LoopSpec {
        backing: img.clone(),
        offset: 0,
        size_limit: 0,
        writable: false,
        tag: tag.clone(),
    });
    let n = dev.number;
    let mut objects = objects;
    objects[0] = state::Object::Loop {
        number: n,
        backing: img.clone(),
        tag: tag.clone(),
    };
    // Its process is gone: same pid, another start time.
    write_state(&run, sid, 1, objects);
    mount::mount(
        &dev.path(),
        &format!("loop{n}"),
        &mnt,
        ContentKind::Ext4,
        false,
    )
    .unwrap();
    drop(dev);
    assert!(mount::is_mountpoint(&mnt));
    // A live session (this process) next to it, with a directory of its own.
    let live = "0badf00e";
    let live_dir = run.join(live).join("p1");
    std::fs::create_dir_all(&live_dir).unwrap();
    write_state(
        &run,
        live,
        0,
        vec![state::Object::Dir {
            path: live_dir.clone(),
        }],
    );

    let dry = state::cleanup(&run, true);
    assert!(
        dry.removed
            .contains(&format!("would remove mount {}", mnt.display())),
        "{dry:?}"
    );
    assert!(mount::is_mountpoint(&mnt), "a dry run unmounted");
    assert_eq!(dry.skipped.len(), 1, "{dry:?}");

    let r = state::cleanup(&run, false);
    assert!(r.problems.is_empty(), "{r:?}");
    assert!(
        r.removed
            .contains(&format!("removed mount {}", mnt.display())),
        "{r:?}"
    );
    assert!(
        r.removed.contains(&format!(
            "removed session state {}",
            run.join(sid).display()
        )),
        "{r:?}"
    );
    assert!(r.skipped[0].contains("still running"), "{r:?}");
    assert!(!mount::is_mountpoint(&mnt));
    assert!(!run.join(sid).exists());
    wait_unbound(n, &tag);
    // The live session is untouched.
    assert!(live_dir.is_dir());
    assert!(run.join(live).join(state::STATE_FILE).is_file());
    // And a second run finds nothing of the dead one.
    let again = state::cleanup(&run, false);
    assert!(again.removed.is_empty(), "{again:?}");
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vmrescue"))
}

#[test]
fn the_kernel_engine_uses_loop_devices_without_dm_and_says_why_it_cannot_run() {
    common::require_root("drops privileges to test the message for non-root users");
    // It looks for any loop device with our tag at the end: alone.
    let _g = serial();
    let (image, b) = (common::fixture("kernel-a"), common::fixture("kernel-b"));
    // Loop devices over exactly the volume's bytes when device-mapper is
    // not used (this host has none; VMRESCUE_NO_DM makes it so elsewhere):
    // the ext4 and XFS partitions read as the fixture's manifests say.
    let walk = |volume: &str| {
        Command::new(bin())
            .env(NO_DM_ENV, "1")
            .args(["walk", "--volume", volume, "--engine", "kernel"])
            .arg(&image)
            .arg("--disk")
            .arg(&b)
            .output()
            .unwrap()
    };
    for (volume, manifest) in [
        ("p1", "kernel-a.p1.manifest"),
        ("p2", "kernel-a.p2.manifest"),
    ] {
        let out = walk(volume);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{volume}: {err}");
        assert!(err.contains("kernel engine"), "{err}");
        let got: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("/lost+found"))
            .map(|l| format!("{l}\n"))
            .collect();
        let want = std::fs::read_to_string(common::fixture_file(manifest)).unwrap();
        assert_eq!(got, want, "{volume}");
    }
    // An LV in three pieces cannot be one loop device: it says why.
    let out = walk("vmrk/lv_data");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("made of 3 separate segments: mapping it needs device-mapper"),
        "{err}"
    );
    // Nothing of ours is left: no loop device with our tag, no session.
    let leftover: Vec<String> = (0..256)
        .filter_map(|n| loopdev::status(n).ok().flatten().map(|st| st.tag))
        .filter(|t| t.starts_with("vmrescue-"))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    let has_dm = std::fs::read_to_string("/proc/misc")
        .unwrap_or_default()
        .contains("device-mapper");
    if !has_dm {
        // Without the knob, the host's own reason is given.
        let out = Command::new(bin())
            .args(["walk", "--volume", "vmrk/lv_data", "--engine", "kernel"])
            .arg(&image)
            .arg("--disk")
            .arg(&b)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2));
        assert!(err.contains("this kernel has no device-mapper"), "{err}");
        assert!(err.contains("modprobe dm-mod"), "{err}");
    }
    // Without root: a clear refusal, from the engine and from cleanup.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("disk.img");
    std::fs::copy(&image, &copy).unwrap();
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(copy_dir.path(), perms).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin())
            .args(args)
            .output()
            .expect("run setpriv (util-linux)")
    };
    let out = as_nobody(&[
        "walk",
        copy.to_str().unwrap(),
        "--volume",
        "p1",
        "--engine",
        "kernel",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the kernel engine needs root"), "{err}");
    let out = as_nobody(&["layers", copy.to_str().unwrap(), "--engine", "kernel"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("p1 ") && l.contains("none") && l.contains("needs root")),
        "{text}"
    );
    let out = as_nobody(&["cleanup"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run it as root"));
}

// ----- the browser on the kernel engine: nothing left when it ends -----

/// How the browser is ended.
#[derive(Debug, Clone, Copy)]
enum End {
    /// A key (`q`, Ctrl-C).
    Key(&'static str),
    /// A signal by name and number.
    Signal(&'static str, i32),
}

/// Loop devices backed by `image` (`losetup -j`).
fn loops_of(image: &Path) -> String {
    let o = Command::new("losetup")
        .arg("-j")
        .arg(image)
        .output()
        .expect("run losetup (util-linux)");
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Open `image` in the browser with `--engine kernel`, browse into `dir`
/// (if any), end it as `end` says, then: the exit status, no loop device
/// on the image, nothing mounted under the session's directory, no session
/// state, and no word about objects left behind.
fn browse_and_end(image: &Path, status: &str, dir: Option<&str>, end: End) {
    use expectrl::process::unix::WaitStatus;
    use pty_support::{ENTER, Pty};
    let work = tempfile::tempdir().unwrap();
    let state_home = work.path().join("state");
    let mut pty = Pty::spawn(
        &bin(),
        &["--engine", "kernel", image.to_str().unwrap()],
        &[("XDG_STATE_HOME", state_home.to_str().unwrap())],
        work.path(),
    );
    pty.wait_listed(status);
    // The session's directory: where the image's loop device is mounted, one up.
    let attached = loops_of(image);
    let dev = attached
        .split(':')
        .next()
        .filter(|d| d.starts_with("/dev/loop"))
        .unwrap_or_else(|| panic!("no loop device while browsing: {attached:?}"))
        .to_string();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let session_dir = mounts
        .lines()
        .find_map(|l| {
            let mut f = l.split(' ');
            (f.next() == Some(dev.as_str())).then(|| f.next()).flatten()
        })
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| panic!("{dev} is not mounted:\n{mounts}"));
    assert!(
        session_dir.starts_with(state::RUN_DIR),
        "{}",
        session_dir.display()
    );
    if let Some(d) = dir {
        pty.send("/");
        for c in d.chars() {
            pty.send(&c.to_string());
        }
        pty.send(ENTER);
        pty.send(ENTER);
        pty.wait_listed(&format!(":/{d} "));
        // A file's details: its metadata read through the mount.
        pty.send(pty_support::DOWN);
        pty.send("i");
        std::thread::sleep(Duration::from_millis(300));
        pty.send(pty_support::ESC);
    }
    let want = match end {
        End::Key(k) => {
            pty.send(k);
            0
        }
        End::Signal(name, number) => {
            let pid = pty.session.get_process().pid().as_raw();
            let st = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status()
                .unwrap();
            assert!(st.success(), "kill -{name} {pid}");
            128 + number
        }
    };
    let started = Instant::now();
    let st = pty.wait_exit();
    let took = started.elapsed();
    let screen = pty.screen();
    assert!(
        matches!(st, WaitStatus::Exited(_, code) if code == want),
        "{end:?}: {st:?}, expected exit status {want}; screen:\n{screen}"
    );
    pty.assert_restored();
    for word in ["left", "busy", "still in use", "cleanup"] {
        assert!(
            !screen.contains(word),
            "{end:?}: {word:?} said at the end:\n{screen}"
        );
    }
    // Autoclear detaches the loop device once its last user closed it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !loops_of(image).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(loops_of(image), "", "{end:?}: a loop device is left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = format!("{}/", session_dir.display());
    assert!(
        !mounts.lines().any(|l| l.contains(&prefix)),
        "{end:?}: a mount under {} is left",
        session_dir.display()
    );
    assert!(
        !session_dir.exists(),
        "{end:?}: {} is left",
        session_dir.display()
    );
    assert!(
        took < Duration::from_millis(1500),
        "{end:?}: ending took {took:?} (a busy unmount retried?)"
    );
}

fn ends_clean(fixture: &str, status: &str, dir: Option<&str>) {
    // Other tests here look for any loop device with our tag: not at once.
    let _g = serial();
    let work = tempfile::tempdir().unwrap();
    let image = common::fixture_copy(fixture, work.path());
    for end in [
        End::Key("q"),
        End::Key("\x03"),
        End::Signal("INT", 2),
        End::Signal("TERM", 15),
        End::Signal("HUP", 1),
    ] {
        browse_and_end(&image, status, dir, end);
    }
}

#[test]
fn the_browser_on_the_kernel_engine_leaves_nothing_on_q_ctrl_c_and_signals() {
    common::require_root("the kernel engine attaches loop devices and mounts");
    // The demo's root LV (ext4), through a loop device over its bytes.
    ends_clean("demo", "guest:/ ", Some("etc"));
    // A whole-disk btrfs (a filesystem only the kernel engine reads).
    ends_clean("bare-btrfs", "disk0:/ ", None);
}

/// `relink --engine kernel` through a read-write loop mount (no device-mapper
/// needed for a whole-disk filesystem): the plan, the link replaced, an undo
/// record that puts it back once, a clean filesystem, and a refusal while
/// another process holds the image for writing.
#[test]
fn relink_through_the_kernel_engine_and_undo() {
    common::require_root("mounts a loop device read-write");
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("grub")).unwrap();
    std::fs::write(root.join("grub/grub.conf"), "default=0\n").unwrap();
    std::os::unix::fs::symlink("grub.conf", root.join("grub/menu.lst")).unwrap();
    let image = dir.path().join("fs.img");
    mkfs_ext4_from(&image, 16, Some(&root));
    let undo_dir = dir.path().join("undo");
    let relink = || {
        Command::new(bin())
            .env(NO_DM_ENV, "1")
            .args(["relink", "--engine", "kernel", "--to", "../grub/grub.conf"])
            .arg("--undo-dir")
            .arg(&undo_dir)
            .arg("--yes")
            .arg(&image)
            .arg("/grub/menu.lst")
            .output()
            .unwrap()
    };
    // Refused, before anything is mounted, while the image is held for writing.
    let holder = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    let out = relink();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is in use") && err.contains("nothing was written"),
        "{err}"
    );
    drop(holder);
    assert!(!undo_dir.exists(), "no undo record for a refused relink");

    let out = relink();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(
        text.contains("relink /grub/menu.lst on disk0 (kernel engine)"),
        "{text}"
    );
    assert!(text.contains("  how:  read-write mount"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "/grub/menu.lst: grub.conf -> ../grub/grub.conf"),
        "{text}"
    );
    let undo_file = text
        .lines()
        .find_map(|l| l.strip_prefix("undo: vmrescue undo "))
        .expect("an undo line");
    let record = vmrescue::repair::undo::load_record(Path::new(undo_file)).unwrap();
    assert!(
        matches!(record, vmrescue::repair::undo::UndoRecord::Symlink { .. }),
        "{record:?}"
    );
    let fsck = |what: &str| {
        let st = Command::new("e2fsck")
            .args(["-fn"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "e2fsck after {what}: {}",
            String::from_utf8_lossy(&st.stdout)
        );
    };
    fsck("the relink");
    let undo = || {
        Command::new(bin())
            .env(NO_DM_ENV, "1")
            .args(["undo", undo_file])
            .output()
            .unwrap()
    };
    let out = undo();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("(put back)"), "{text}");
    fsck("the undo");
    let out = undo();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second undo worked");
    assert!(err.contains("changed since"), "{err}");
    // Nothing of ours is left.
    assert_eq!(loops_of(&image), "");
}

/// The target of `link` on the btrfs image as the kernel reads it (a
/// read-only loop mount of the default subvolume, the top level here).
fn btrfs_readlink(image: &Path, link: &str) -> PathBuf {
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "btrfs", "-o", "ro,loop"])
        .arg(image)
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount {}", image.display());
    let r = std::fs::read_link(mnt.path().join(link.trim_start_matches('/')));
    let st = Command::new("umount").arg(mnt.path()).status().unwrap();
    assert!(st.success(), "umount");
    r.unwrap()
}

/// btrfs (`tests/fixtures/make/btrfs-relink.sh`, Fedora's layout: the
/// guest's / is subvolume `root`, the default subvolume the top level): the
/// link is named by its guest path, which the namespace locates in the
/// volume as `/root/lib64/libc.so.6`; the userspace engine refuses to patch
/// it (copy-on-write) and names the kernel engine; the kernel engine
/// replaces the link inside the subvolume (a device number of its own, the
/// same mount), `btrfs check` finds the filesystem clean, and undo puts it
/// back.
#[test]
fn relink_on_btrfs_goes_through_the_kernel_engine_into_a_subvolume() {
    common::require_root("mounts a btrfs loop device read-write");
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("btrfs-relink", dir.path());
    let undo_dir = dir.path().join("undo");
    let relink = |engine: &str| {
        Command::new(bin())
            .env(NO_DM_ENV, "1")
            .args(["relink", "--engine", engine, "--yes", "--undo-dir"])
            .arg(&undo_dir)
            .arg(&image)
            .arg("/lib64/libc.so.6")
            .output()
            .unwrap()
    };
    let out = relink("userspace");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("copy-on-write") && err.contains("--engine kernel"),
        "{err}"
    );
    assert!(!undo_dir.exists(), "no undo record for a refused relink");

    let out = relink("kernel");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(
        text.lines()
            .any(|l| l == "/root/lib64/libc.so.6: libc-2.12.so -> libc-2.17.so"),
        "{text}"
    );
    assert_eq!(
        btrfs_readlink(&image, "/root/lib64/libc.so.6"),
        Path::new("libc-2.17.so")
    );
    let check = |what: &str| {
        let o = Command::new("btrfs")
            .args(["check", "--readonly"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "btrfs check after {what}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    check("the relink");
    let undo_file = text
        .lines()
        .find_map(|l| l.strip_prefix("undo: vmrescue undo "))
        .expect("an undo line");
    let out = Command::new(bin())
        .env(NO_DM_ENV, "1")
        .args(["undo", undo_file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        btrfs_readlink(&image, "/root/lib64/libc.so.6"),
        Path::new("libc-2.12.so")
    );
    check("the undo");
    assert_eq!(loops_of(&image), "");
}

/// The kernel engine on btrfs guests (no device-mapper: whole-disk images):
/// the top level is mounted and shown from the default subvolume, so the
/// guest's fstab `subvol=@home` and the root its boot loader's
/// `rootflags=subvol=@` names are the kernel's own reads of those
/// subvolumes (`tests/fixtures/make/btrfs-guest.sh`, sums by the kernel);
/// `--volume VOLUME@SUBVOLUME` opens one; nothing is left mounted.
#[test]
fn the_kernel_engine_mounts_btrfs_subvolumes() {
    common::require_root("mounts btrfs loop devices");
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("btrfs-guest", dir.path());
    let cmd = |args: &[&str]| {
        let (verb, rest) = args.split_first().unwrap();
        let out = Command::new(bin())
            .env(NO_DM_ENV, "1")
            .arg(verb)
            .args(["--engine", "kernel"])
            .args(rest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let img = image.to_str().unwrap();
    let text = String::from_utf8(cmd(&["ls", img, "/", "/home/user"])).unwrap();
    assert!(text.contains("/:\nboot\netc\nhome\n"), "{text}");
    assert!(text.contains("/home/user:\nbig.log\nnotes.txt\n"), "{text}");
    let sums = common::report("btrfs-guest.sums");
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let got = cmd(&["cat", img, path]);
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(&got)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(hex, sum, "{path}");
    }
    let text = String::from_utf8(cmd(&["ls", "--volume", "disk0@home", img, "/user"])).unwrap();
    assert_eq!(text, "big.log\nnotes.txt\n");
    let text = String::from_utf8(cmd(&["ls", "--volume", "disk0@/", img, "/"])).unwrap();
    assert_eq!(text, "@\n@home\n@old\n");
    assert_eq!(loops_of(&image), "");
}

/// Run `sh -c script` with `$1` the image, as root, and check it worked.
fn sh_on(image: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-euc", script, "sh"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `btrfs check --readonly` finds `image` clean.
fn btrfs_check(image: &Path, what: &str) {
    let o = Command::new("btrfs")
        .args(["check", "--readonly"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "btrfs check after {what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The target of `link` in subvolume `subvol` of the btrfs image, as the
/// kernel reads it (a read-only loop mount of that subvolume).
fn btrfs_readlink_in(image: &Path, subvol: &str, link: &str) -> PathBuf {
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "btrfs", "-o"])
        .arg(format!("ro,loop,subvol={subvol}"))
        .arg(image)
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount {}", image.display());
    let r = std::fs::read_link(mnt.path().join(link.trim_start_matches('/')));
    let st = Command::new("umount").arg(mnt.path()).status().unwrap();
    assert!(st.success(), "umount");
    r.unwrap()
}

/// A link in a btrfs subvolume outside the default one (openSUSE's layout:
/// the default subvolume is the root's, `/home` is a sibling of it, so the
/// volume's own paths cannot name it): the `btrfs-relink` fixture with its
/// default set to `root` by `btrfs subvolume set-default`, a dangling link
/// added in `home`. Relinked by its guest path and by `--volume disk0@home`
/// through the kernel engine's read-write mount of that subvolume; the
/// kernel reads the new target, `btrfs check` finds the filesystem clean,
/// and `vmrescue undo` puts the old one back through the same mount.
#[test]
fn relink_in_a_btrfs_subvolume_outside_the_default_one_and_undo() {
    common::require_root("mounts a btrfs loop device read-write");
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("btrfs-relink", dir.path());
    sh_on(
        &image,
        "m=$(mktemp -d); mount -t btrfs -o loop \"$1\" \"$m\"; \
         mkdir -p \"$m/home/user/lib\"; \
         printf 'two\\n' >\"$m/home/user/lib/libfoo.so.2.0\"; \
         ln -s libfoo.so.1.0 \"$m/home/user/lib/libfoo.so\"; \
         id=$(btrfs inspect-internal rootid \"$m/root\"); \
         btrfs subvolume set-default \"$id\" \"$m\"; \
         umount \"$m\"; rmdir \"$m\"",
    );
    btrfs_check(&image, "the set-up");
    let undo_dir = dir.path().join("undo");
    let relink = |volume: Option<&str>, link: &str, to: &str| {
        let mut c = Command::new(bin());
        c.env(NO_DM_ENV, "1")
            .args([
                "relink", "--engine", "kernel", "--yes", "--force", "--to", to,
            ])
            .arg("--undo-dir")
            .arg(&undo_dir);
        if let Some(v) = volume {
            c.args(["--volume", v]);
        }
        c.arg(&image).arg(link).output().unwrap()
    };
    let undo = |file: &str| {
        let out = Command::new(bin())
            .env(NO_DM_ENV, "1")
            .args(["undo", file])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("(put back)"), "{text}");
    };
    let read = || btrfs_readlink_in(&image, "home", "/user/lib/libfoo.so");

    // By its guest path.
    let out = relink(None, "/home/user/lib/libfoo.so", "libfoo.so.2.0");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(
        text.contains("relink /user/lib/libfoo.so on disk0@/home (kernel engine)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "/user/lib/libfoo.so: libfoo.so.1.0 -> libfoo.so.2.0"),
        "{text}"
    );
    assert_eq!(read(), Path::new("libfoo.so.2.0"));
    btrfs_check(&image, "the relink by guest path");
    let undo_file = text
        .lines()
        .find_map(|l| l.strip_prefix("undo: vmrescue undo "))
        .expect("an undo line")
        .to_string();
    let record = vmrescue::repair::undo::load_record(Path::new(&undo_file)).unwrap();
    assert!(
        matches!(
            record,
            vmrescue::repair::undo::UndoRecord::Symlink {
                subvolume: Some(_),
                ..
            }
        ),
        "{record:?}"
    );
    undo(&undo_file);
    assert_eq!(read(), Path::new("libfoo.so.1.0"));
    btrfs_check(&image, "the undo");

    // By VOLUME@SUBVOLUME.
    let out = relink(Some("disk0@home"), "/user/lib/libfoo.so", "libfoo.so.2.0");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(
        text.lines()
            .any(|l| l == "/user/lib/libfoo.so: libfoo.so.1.0 -> libfoo.so.2.0"),
        "{text}"
    );
    assert_eq!(read(), Path::new("libfoo.so.2.0"));
    btrfs_check(&image, "the relink by subvolume");
    let undo_file = text
        .lines()
        .find_map(|l| l.strip_prefix("undo: vmrescue undo "))
        .expect("an undo line")
        .to_string();
    undo(&undo_file);
    assert_eq!(read(), Path::new("libfoo.so.1.0"));
    btrfs_check(&image, "the second undo");
    // The root's link, in the default subvolume, keeps its paths.
    assert_eq!(
        btrfs_readlink_in(&image, "root", "/lib64/libc.so.6"),
        Path::new("libc-2.12.so")
    );
    assert_eq!(loops_of(&image), "");
}

/// The kernel engine on a multi-device btrfs
/// (`tests/fixtures/make/btrfs-multi.sh`: raid1 over two images, raid5
/// over three): each other member gets its own read-only loop device,
/// named to the kernel with `device=`; every file copied out through the
/// kernel's mount has the SHA-256 the kernel gave when the fixture was
/// made, as through the userspace engine; no loop device is left. On
/// raid1, a relink goes through a read-write mount of both devices, reads
/// back, is undone, and `btrfs check` finds the filesystem clean.
#[test]
fn the_kernel_engine_mounts_a_multi_device_btrfs() {
    common::require_root("mounts btrfs loop devices");
    let _g = serial();
    for (case, n) in [("raid1", 2), ("raid5", 3)] {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<PathBuf> = (1..=n)
            .map(|i| common::fixture_copy(&format!("btrfs-{case}-{i}"), dir.path()))
            .collect();
        let sums = common::report(&format!("btrfs-{case}.sha256"));
        assert!(sums.lines().count() > 3, "{case}: {sums}");
        for engine in ["kernel", "userspace"] {
            let dest = dir.path().join(engine);
            std::fs::create_dir(&dest).unwrap();
            let mut c = Command::new(bin());
            c.env(NO_DM_ENV, "1")
                .args(["cp", "--engine", engine, "--volume", "disk0"]);
            for other in &images[1..] {
                c.arg("--disk").arg(other);
            }
            let out = c.arg(&images[0]).arg("/.").arg(&dest).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{case} {engine}: {}{err}",
                String::from_utf8_lossy(&out.stdout),
            );
            if engine == "kernel" {
                let others: Vec<String> = (1..n).map(|i| format!("disk{i}")).collect();
                assert!(
                    err.contains(&format!(
                        "btrfs over several devices: disk0 mounted with {} (device=)",
                        others.join(", ")
                    )),
                    "{case}: {err}"
                );
            }
            for line in sums.lines() {
                let (sum, path) = line.split_once("  ").unwrap();
                let got = std::fs::read(dest.join(path.trim_start_matches("./"))).unwrap();
                use sha2::Digest;
                let hex: String = sha2::Sha256::digest(&got)
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect();
                assert_eq!(hex, sum, "{case} {engine} {path}");
            }
        }
        for image in &images {
            assert_eq!(loops_of(image), "", "{case}");
        }
        if case != "raid1" {
            continue;
        }
        // A repair: every member mounted read-write with it, the link
        // read back through a new read-only mount, undone.
        let undo_dir = dir.path().join("undo");
        // `args` then, but for `undo`, the image and `path`.
        let vm = |args: &[&str], path: &str| {
            let mut c = Command::new(bin());
            c.env(NO_DM_ENV, "1").args(args);
            if args.first() != Some(&"undo") {
                c.args(["--engine", "kernel", "--volume", "disk0"]);
                for other in &images[1..] {
                    c.arg("--disk").arg(other);
                }
                c.arg(&images[0]);
            }
            let out = c.arg(path).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{args:?}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text
        };
        let undo = undo_dir.to_str().unwrap();
        let relink = &[
            "relink",
            "--yes",
            "--force",
            "--to",
            "inline-100",
            "--undo-dir",
            undo,
        ];
        let text = vm(relink, "/link");
        assert!(
            text.lines().any(|l| l == "/link: hello.txt -> inline-100"),
            "{text}"
        );
        assert_eq!(
            vm(&["ls", "-l"], "/link").trim_end().rsplit(' ').next(),
            Some("inline-100")
        );
        let undo_file = text
            .lines()
            .find_map(|l| l.strip_prefix("undo: vmrescue undo "))
            .expect("an undo line")
            .to_string();
        assert!(vm(&["undo"], &undo_file).contains("(put back)"));
        assert_eq!(
            vm(&["ls", "-l"], "/link").trim_end().rsplit(' ').next(),
            Some("hello.txt")
        );
        btrfs_check(&images[0], "the relink and its undo on raid1");
        for image in &images {
            assert_eq!(loops_of(image), "", "{case}");
        }
    }
}
