//! `vmrescue cp`: destination rules, existing files, summary and exit codes.

use crate::common;
use crate::copy_support;
use crate::image_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::vmrescue;
use copy_support::{listing, name};
use expectrl::{Eof, Expect, Session};

fn guest(root: &Path) {
    std::fs::create_dir_all(root.join("var/lib/mysql/db")).unwrap();
    std::fs::write(root.join("var/lib/mysql/ibdata1"), b"database pages").unwrap();
    std::fs::write(root.join("var/lib/mysql/db/t.frm"), b"table").unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(root.join(name(b"etc/\x1b[2Jclear")), b"escape").unwrap();
}

fn cp(args: &[&str]) -> (i32, String) {
    let mut all = vec!["cp"];
    all.extend_from_slice(args);
    let out = vmrescue(&all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains('\x1b'), "raw escape on stderr: {err:?}");
    assert!(!err.contains('\r'), "a progress bar on a pipe: {err:?}");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn copies_into_a_directory_then_applies_the_existing_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("guest");
    guest(&g);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (g, o) = (g.to_str().unwrap(), out.to_str().unwrap());
    let (code, err) = cp(&[g, "/var/lib/mysql", "etc/passwd", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("copied 3 files, 2 directories"), "{err}");
    assert_eq!(
        listing(&out),
        [
            "",
            "mysql",
            "mysql/db",
            "mysql/db/t.frm",
            "mysql/ibdata1",
            "passwd"
        ]
    );
    std::fs::write(out.join("mysql/ibdata1"), b"newer").unwrap();

    let (code, err) = cp(&[g, "/var/lib/mysql", o]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("failed 2:"), "{err}");
    assert!(
        err.contains("/var/lib/mysql/ibdata1: already exists"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("mysql/ibdata1")).unwrap(), b"newer");

    // --skip-existing keeps what is the same and reports what differs.
    let (code, err) = cp(&["--skip-existing", g, "/var/lib/mysql", o]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("copied 0 of 2 files, 2 directories; 1 file was already there"),
        "{err}"
    );
    assert!(err.contains("failed 1:"), "{err}");
    assert!(
        err.contains(
            "/var/lib/mysql/ibdata1: already exists and differs (5 bytes there, 14 in the guest)"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("mysql/ibdata1")).unwrap(), b"newer");

    let (code, err) = cp(&["--overwrite", "--no-owner", g, "/var/lib/mysql", o]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(out.join("mysql/ibdata1")).unwrap(),
        b"database pages"
    );

    let (code, err) = cp(&["--overwrite", "--skip-existing", g, "/etc", o]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn dest_names_like_cp() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("guest");
    guest(&g);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let g = g.to_str().unwrap();
    let at = |p: &str| out.join(p).to_str().unwrap().to_string();
    // One source to a new name.
    let (code, err) = cp(&[g, "/etc/passwd", &at("pw")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(out.join("pw")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    let (code, err) = cp(&[g, "/var/lib/mysql", &at("db-copy")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("db-copy/db/t.frm").is_file());
    // `dir/.`: the contents into a new directory.
    let (code, err) = cp(&[g, "/var/lib/mysql/.", &at("contents")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("contents/ibdata1").is_file());
    // Several sources need an existing directory.
    let (code, err) = cp(&[g, "/etc", "/var", &at("nope")]);
    assert_eq!(code, 2);
    assert!(err.contains("several sources"), "{err}");
    // A missing source is reported; the others are still copied.
    let (code, err) = cp(&[g, "/missing", "/etc/passwd", &at("")]);
    assert_eq!(code, 1);
    assert!(err.contains("/missing: not found"), "{err}");
    assert!(out.join("passwd").is_file());
    // A guest directory cannot receive its own copy.
    let inside = Path::new(g).join("etc/sub");
    let (code, err) = cp(&[g, "/etc", inside.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("inside the guest directory"), "{err}");
    assert!(!inside.exists());
    // Names in messages are escaped.
    let (code, err) = cp(&[g, "/etc", &at("")]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = cp(&[g, "/etc", &at("")]);
    assert_eq!(code, 1);
    assert!(err.contains("/etc/\\x1b[2Jclear: already exists"), "{err}");
}

#[test]
fn progress_bar_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("guest");
    guest(&g);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmrescue"));
    cmd.args(["cp", g.to_str().unwrap(), "/var", out.to_str().unwrap()]);
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let seen = session.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(seen.as_bytes()).into_owned();
    assert!(text.contains("100% [####################]"), "{text:?}");
    assert!(text.contains("2/2 files"), "{text:?}");
    assert!(text.contains("\r\x1b[K"), "the bar is cleared: {text:?}");
    assert!(text.contains("copied 2 files"), "{text:?}");
    assert!(out.join("var/lib/mysql/db/t.frm").is_file());
}

/// The story's job through the command line, on the demo disk: copy the
/// database out of `vg_ta/lv_root` (named as the guest's fstab names it) and
/// compare it with what `debugfs rdump` takes out of the same filesystem.
#[test]
fn copies_the_demo_database_like_debugfs_rdump() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture("demo");
    let dest = dir.path().join("rescued");
    std::fs::create_dir(&dest).unwrap();
    let (code, err) = cp(&[
        image.to_str().unwrap(),
        "--volume",
        "/dev/mapper/vg_ta-lv_root",
        "/var/lib/mysql",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lv = image_support::volume_file(&image, "vg_ta/lv_root", dir.path());
    let reference = image_support::rdump(&lv, "/var/lib/mysql", &dir.path().join("reference"));
    assert_eq!(
        image_support::tree_digest(&dest.join("mysql")),
        image_support::tree_digest(&reference)
    );
    // The 256 MiB ibdata1 holds little data: it stays sparse.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dest.join("mysql/ibdata1")).unwrap();
    assert_eq!(m.len(), 256 << 20);
    assert!(
        m.blocks() * 512 < 8 << 20,
        "holes lost: {} blocks",
        m.blocks()
    );
    // A second copy to the same place refuses to overwrite, and says so.
    let (code, err) = cp(&[
        image.to_str().unwrap(),
        "/var/lib/mysql",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists"), "{err}");
}

/// Preallocated (fallocate'd, never written) ranges read as zeros and are
/// copied as holes, even when the whole file is allocated.
#[test]
fn preallocated_ranges_are_copied_as_holes() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture("ext-ext4-4k");
    let (code, err) = cp(&[
        image.to_str().unwrap(),
        "/prealloc",
        "/keepsize",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // fallocate -l 1M, then 8 KiB written at 256 KiB: only those are data.
    let prealloc = dir.path().join("prealloc");
    assert_eq!(std::fs::metadata(&prealloc).unwrap().len(), 1 << 20);
    assert_eq!(
        copy_support::data_ranges(&prealloc),
        vec![(256 << 10, 264 << 10)]
    );
    let data = std::fs::read(&prealloc).unwrap();
    assert!(data[..256 << 10].iter().all(|&b| b == 0));
    assert!(data[264 << 10..].iter().all(|&b| b == 0));
    assert!(data[256 << 10..264 << 10].starts_with(b"vmrescue ext fixture"));
    // fallocate -n: allocated past an empty file's end.
    assert_eq!(
        std::fs::metadata(dir.path().join("keepsize"))
            .unwrap()
            .len(),
        0
    );
}

/// Run `vmrescue cp ARGS` without root's powers: as `nobody` when the
/// tests run as root (root writes into any directory), else as is.
fn cp_unprivileged(args: &[&str]) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmrescue"));
    cmd.arg("cp").args(args);
    if rustix::process::geteuid().is_root() {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A destination that cannot be written is found before anything is
/// copied, and every error names the host path that failed (not only the
/// guest path); a directory that cannot be made says what inside it is
/// therefore not copied, so the summary accounts for all the plan counted.
#[test]
fn unwritable_destinations_are_named_by_their_host_path() {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let g = tmp.path().join("guest");
    guest(&g);
    let g = g.to_str().unwrap();

    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    chmod(&ro, 0o555);
    let (code, err) = cp_unprivileged(&[g, "/etc", ro.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        format!(
            "vmrescue: {}: cannot create files there: Permission denied (os error 13)\n",
            ro.display()
        )
    );
    assert_eq!(listing(&ro), [""]);
    // A new DEST in a directory that cannot be written: the same.
    let (code, err) = cp_unprivileged(&[g, "/etc", ro.join("new").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}: cannot create files there", ro.display())));

    // DEST is writable, but the directories merged into are not.
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("etc")).unwrap();
    std::fs::create_dir_all(out.join("var")).unwrap();
    chmod(&out, 0o777);
    chmod(&out.join("etc"), 0o555);
    chmod(&out.join("var"), 0o555);
    let o = out.to_str().unwrap();
    let (code, err) = cp_unprivileged(&[g, "/etc", "/var", o]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "  /etc/passwd: creating a file in {o}/etc: Permission denied"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  /var/lib: creating directory {o}/var/lib: Permission denied (os error 13) \
             (so not copied either: 2 files and 2 directories inside)"
        )),
        "{err}"
    );
    // The plan's 4 files: none copied, each accounted for above.
    assert!(err.contains("copied 0 of 4 files, 2 directories"), "{err}");
    // The directories merged into cannot take the guest's mode and times.
    assert!(
        err.contains(&format!(
            "  /etc: {o}/etc: mode 755: Operation not permitted"
        )),
        "{err}"
    );
    assert!(err.contains("failed 5:"), "{err}");
    assert_eq!(listing(&out), ["", "etc", "var"]);
}

/// The summary counts what the plan counts: every non-directory entry is a
/// file, copied as its kind or listed as skipped or failed with the reason.
#[test]
fn the_summary_counts_what_the_plan_counts() {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let g = tmp.path().join("guest");
    std::fs::create_dir_all(g.join("run")).unwrap();
    std::fs::write(g.join("run/pid"), b"42\n").unwrap();
    std::os::unix::fs::symlink("pid", g.join("run/pid.link")).unwrap();
    nix::unistd::mkfifo(&g.join("run/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chmod(&out, 0o777);
    let (g, o) = (g.to_str().unwrap(), out.to_str().unwrap());
    let (code, err) = cp_unprivileged(&[g, "/run", o]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("copied 3 files (1 regular, 1 symlink, 1 special file), 1 directory"),
        "{err}"
    );
    assert_eq!(
        listing(&out),
        ["", "run", "run/fifo", "run/pid", "run/pid.link"]
    );
}

/// `/home` on the demo guest is another volume (vg_ta/lv_home), mounted
/// by the guest's fstab: the commands see it where the guest does; `-x`
/// stays on one volume; `--volume` pins one volume and its own paths.
#[test]
fn the_guest_is_one_tree_across_its_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x");
    let (code, err) = cp(&["--demo", "/home", x.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(x.join("ta/.bashrc").is_file(), "{err}");
    assert!(x.join("ta/shop/config.php").is_file(), "{err}");
    // The same bytes as the volume read alone.
    let alone = tmp.path().join("alone");
    let (code, err) = cp(&[
        "--demo",
        "--volume",
        "vg_ta/lv_home",
        "/",
        alone.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(listing(&x), listing(&alone));
    assert_eq!(
        std::fs::read(x.join("ta/shop/config.php")).unwrap(),
        std::fs::read(alone.join("ta/shop/config.php")).unwrap()
    );
    // Copying the root copies every mounted volume; -x only the root's.
    let all = tmp.path().join("all");
    let (code, err) = cp(&["--demo", "/.", all.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(all.join("home/ta/.bashrc").is_file());
    assert!(all.join("boot/grub/grub.conf").is_file());
    assert!(all.join("etc/fstab").is_file());
    let one = tmp.path().join("one");
    let (code, err) = cp(&["--demo", "-x", "/.", one.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(one.join("etc/fstab").is_file());
    assert!(one.join("home").is_dir(), "the mountpoint is made");
    assert_eq!(std::fs::read_dir(one.join("home")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(one.join("boot")).unwrap().count(), 0);
    // cat and ls read across the mount.
    let o = vmrescue(&["cat", "--demo", "/home/ta/.bashrc"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, std::fs::read(x.join("ta/.bashrc")).unwrap());
    let o = vmrescue(&["ls", "--demo", "/home"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "lost+found\nta\n");
    // --volume on the root: its own /home, and the hint to the volume.
    let o = vmrescue(&["ls", "--demo", "--volume", "vg_ta/lv_root", "/home"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "vmrescue: /home is where vg_ta/lv_home is mounted; use --volume vg_ta/lv_home, \
         or no --volume for the whole guest\n"
    );
    let (code, err) = cp(&[
        "--demo",
        "--volume",
        "vg_ta/lv_root",
        "/home/ta/",
        "/etc/fstab",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/home is where vg_ta/lv_home is mounted; use --volume vg_ta/lv_home /ta,"),
        "{err}"
    );
    assert!(tmp.path().join("fstab").is_file());
}

/// `--dry-run` lists exactly the host paths a copy then writes, writes
/// nothing, and says whether it fits; `--json` reports the plan and the
/// outcome; `-a` and `-r` are accepted.
#[test]
fn dry_run_lists_what_the_copy_writes_and_json_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("guest");
    guest(&g);
    let out = tmp.path().join("out");
    let (gs, os) = (g.to_str().unwrap(), out.to_str().unwrap());
    let dry = vmrescue(&["cp", "--dry-run", gs, "/var/lib/mysql", os]);
    assert_eq!(dry.status.code(), Some(0));
    assert!(!out.exists(), "a dry run creates nothing");
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(err.contains("would copy 2 files, 2 directories"), "{err}");
    let mut planned: Vec<String> = String::from_utf8_lossy(&dry.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    planned.sort();
    let json = vmrescue(&["cp", "-a", "-r", "--json", gs, "/var/lib/mysql", os]);
    assert_eq!(json.status.code(), Some(0));
    let mut written: Vec<String> = listing(&out)
        .into_iter()
        .map(|p| {
            if p.is_empty() {
                os.to_string()
            } else {
                format!("{os}/{p}")
            }
        })
        .collect();
    written.sort();
    assert_eq!(planned, written);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["dest"], os);
    assert_eq!(v["copied"]["files"], 2);
    assert_eq!(v["copied"]["dirs"], 2);
    assert_eq!(v["planned"]["bytes"], v["copied"]["bytes"]);
    assert_eq!(v["failed_count"], 0);
    // Again, with the files there: refused, and the report says why.
    let again = vmrescue(&["cp", "--json", gs, "/var/lib/mysql/ibdata1", os]);
    assert_eq!(again.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let failed = &v["failed"][0];
    assert_eq!(failed["path"], "/var/lib/mysql/ibdata1");
    assert!(failed["reason"].as_str().unwrap().contains("exists"), "{v}");
    // The dry run as JSON: the same paths, and the free space.
    let dry = vmrescue(&[
        "cp",
        "--dry-run",
        "--json",
        gs,
        "/etc",
        &format!("{os}/etc2"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["fits"], true);
    assert!(v["free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["paths"][0], format!("{os}/etc2"));
    assert_eq!(v["planned"]["files"], 2);
}

/// A copy bigger than the destination's free space: the dry run says so,
/// with exit code 1 (a 64 KiB tmpfs; the test runs as root, as CI does).
/// A sparse file is weighed by its data, not its size: 1 GiB holding
/// 4 KiB fits, says how much of it is data, and the copy then does fit.
#[test]
fn dry_run_says_when_the_copy_does_not_fit() {
    crate::common::require_root("mounting a small tmpfs as the destination");
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("guest");
    guest(&g);
    let small = tmp.path().join("small");
    let _mount = crate::loop_support::Tmpfs::mount(&small, "64k");
    let dry = |src: &str, dest: &Path| {
        vmrescue(&[
            "cp",
            "--dry-run",
            g.to_str().unwrap(),
            src,
            dest.to_str().unwrap(),
        ])
    };
    std::fs::create_dir(g.join("srv")).unwrap();
    let f = std::fs::File::create(g.join("srv/sparse")).unwrap();
    f.set_len(1 << 30).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[7u8; 4096], 1 << 29).unwrap();
    drop(f);
    let sparse = dry("/srv", &small);
    let err = String::from_utf8_lossy(&sparse.stderr);
    assert_eq!(sparse.status.code(), Some(0), "{err}");
    assert!(
        err.contains("1 GiB (4 KiB of it data, holes take none) into"),
        "{err}"
    );
    let copied = vmrescue(&["cp", g.to_str().unwrap(), "/srv", small.to_str().unwrap()]);
    assert_eq!(
        copied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    std::fs::write(g.join("var/lib/mysql/big"), vec![7u8; 1 << 20]).unwrap();
    let big = dry("/var", &small.join("var"));
    assert_eq!(big.status.code(), Some(1));
    let err = String::from_utf8_lossy(&big.stderr);
    assert!(err.contains("free, the copy needs up to 1.00 MiB"), "{err}");
}
