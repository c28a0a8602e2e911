//! The doctor's mounts, space and accounts checks (issue #20) on Debian 12
//! guests each broken in one way by `tests/fixtures/make/doctor-system.sh`,
//! and on the healthy guests, which must give none of their findings. The
//! space counters are compared with the kernel's `statfs` of a read-only
//! loop mount of the same bytes (`stat -f`, as `df` reads it).

use crate::common;
use crate::loop_support;

use std::path::Path;
use std::process::Command;

use vmrescue::doctor::{self, Check, Finding, Impact, Repair, Severity};
use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::{FsOptions, Space};
use vmrescue::guest::Namespace;

/// p1 of the Debian images (lib/debian.sh): sectors 2048..2820095.
const ROOT_OFFSET: u64 = 2048 * 512;
const ROOT_SIZE: u64 = 2_818_048 * 512;

/// What `doctor` reports on the whole guest of the fixture images
/// `images`, rooted at `root` (by default the one guest root), with the
/// context built as the CLI builds it.
fn report(images: &[&str], root: Option<&str>) -> doctor::Report {
    let layout = vmrescue::layers::scan(
        images
            .iter()
            .map(|i| vmrescue::image::open(&common::fixture(i)).unwrap())
            .collect(),
    );
    let root = vmrescue::engine::select_volume(&layout, root).unwrap();
    let opts = FsOptions::default();
    let engine = Userspace::new(opts.clone());
    let ns = Namespace::build(&layout, root, &|v| engine.open_fs(&layout, v, &opts));
    let fs = ns.fs();
    let ctx = doctor::Context::new(&*fs, Some(&ns), Some(&layout));
    doctor::examine(&ctx)
}

/// The findings of the mounts, space and accounts checks.
fn ours(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| matches!(f.check, Check::Mounts | Check::Space | Check::Accounts))
        .collect()
}

/// The one finding of these checks on fixture `name` (and all findings,
/// to see how it ranks), with its check, severity and impact checked.
fn the_finding(
    name: &str,
    check: Check,
    severity: Severity,
    impact: Impact,
) -> (Finding, Vec<Finding>) {
    let found = report(&[name], None).findings;
    let mine = ours(&found);
    assert_eq!(mine.len(), 1, "{name}: {mine:#?}");
    let f = mine[0].clone();
    assert_eq!(
        (f.check, f.severity, &f.impact),
        (check, severity, &impact),
        "{name}"
    );
    (f, found)
}

fn view_of(f: &Finding) -> (Vec<u8>, Option<u32>) {
    match &f.repair {
        Some(Repair::View { path, line, .. }) => (path.clone(), *line),
        other => panic!("not a view repair: {other:?}"),
    }
}

#[test]
fn fstab_uuid_that_no_volume_has() {
    let (f, found) = the_finding(
        "doctor-system-fstab",
        Check::Mounts,
        Severity::Critical,
        Impact::Mount(b"/srv/data".to_vec()),
    );
    let f = &f;
    assert_eq!(
        f.summary,
        "/srv/data cannot be mounted: no volume of this guest has UUID 0b5e55ed-dead-4bad-8bad-0123456789ab"
    );
    assert_eq!(
        f.evidence,
        vec![
            "fstab line 5: UUID=0b5e55ed-dead-4bad-8bad-0123456789ab /srv/data ext4 defaults"
                .to_string(),
            "no volume of this guest has UUID 0b5e55ed-dead-4bad-8bad-0123456789ab".into(),
            "without nofail, a failed mount makes systemd stop the boot in emergency mode".into(),
        ]
    );
    assert_eq!(view_of(f), (b"/etc/fstab".to_vec(), Some(5)));
    // Ranked above anything that is not critical.
    let first_non_critical = found
        .iter()
        .position(|f| f.severity < Severity::Critical)
        .unwrap_or(found.len());
    assert!(found.iter().position(|g| g == f).unwrap() < first_non_critical);
}

#[test]
fn fstab_mount_of_the_swap_partition() {
    let (f, _) = the_finding(
        "doctor-system-fstype",
        Check::Mounts,
        Severity::Critical,
        Impact::Mount(b"/mnt/scratch".to_vec()),
    );
    let f = &f;
    assert!(
        f.summary.starts_with(
            "/mnt/scratch cannot be mounted: UUID=5e1f0c3a-9d2b-4c7e-8a61-2b3c4d5e6f02 holds swap"
        ),
        "{}",
        f.summary
    );
    assert_eq!(
        f.evidence[0],
        "fstab line 5: UUID=5e1f0c3a-9d2b-4c7e-8a61-2b3c4d5e6f02 /mnt/scratch ext4 defaults"
    );
    assert_eq!(view_of(f), (b"/etc/fstab".to_vec(), Some(5)));
}

#[test]
fn swap_device_missing_is_a_warning() {
    let (f, _) = the_finding(
        "doctor-system-swap",
        Check::Mounts,
        Severity::Warning,
        Impact::Other,
    );
    let f = &f;
    assert_eq!(
        f.summary,
        "the swap device UUID=0b5e55ed-dead-4bad-8bad-0123456789ab is not on this guest's disks"
    );
    assert_eq!(
        f.evidence,
        vec![
            "fstab line 4: UUID=0b5e55ed-dead-4bad-8bad-0123456789ab none swap sw".to_string(),
            "no volume of this guest has UUID 0b5e55ed-dead-4bad-8bad-0123456789ab".into(),
            "systemd waits 90 s for the device, then boots without swap".into(),
        ]
    );
    assert_eq!(view_of(f), (b"/etc/fstab".to_vec(), Some(4)));
}

/// With one volume examined (`--volume p1`), its fstab is resolved
/// through the layout without mounting: the same finding.
#[test]
fn fstab_checked_on_one_volume() {
    let found = volume_report("doctor-system-fstab", "p1").findings;
    let mine = ours(&found);
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0].impact, Impact::Mount(b"/srv/data".to_vec()));
    assert_eq!(mine[0].severity, Severity::Critical);
    assert_eq!(view_of(mine[0]), (b"/etc/fstab".to_vec(), Some(5)));
}

/// What `doctor --volume VOLUME` reports on fixture `name`: the volume
/// alone, no namespace.
fn volume_report(name: &str, volume: &str) -> doctor::Report {
    let image = common::fixture(name);
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
    let id = layout.find_volume(volume).unwrap();
    let opts = FsOptions::default();
    let fs = Userspace::new(opts.clone())
        .open_fs(&layout, id, &opts)
        .unwrap();
    let ctx = doctor::Context::new(&*fs, None, Some(&layout));
    doctor::examine(&ctx)
}

#[test]
fn full_root() {
    let (f, _) = the_finding(
        "doctor-system-full",
        Check::Space,
        Severity::Critical,
        Impact::Space(b"/".to_vec()),
    );
    let f = &f;
    assert_eq!(
        f.summary,
        "/ is full: no space left for users other than root"
    );
    assert!(
        f.evidence[0].contains("(0 bytes available to users), 100% used"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn passwd_line_cut_short() {
    let (f, _) = the_finding(
        "doctor-system-passwd",
        Check::Accounts,
        Severity::Error,
        Impact::Login,
    );
    let f = &f;
    assert_eq!(
        f.summary,
        "/etc/passwd line 6 does not parse (5 fields, not 7): glibc skips it, so \"games\" cannot log in"
    );
    assert_eq!(
        f.evidence,
        vec![
            "/etc/passwd line 6: games:x:5:60:games".to_string(),
            "5 fields, not 7".into()
        ]
    );
    assert_eq!(view_of(f), (b"/etc/passwd".to_vec(), Some(6)));
}

#[test]
fn root_shell_missing() {
    let (f, _) = the_finding(
        "doctor-system-shell",
        Check::Accounts,
        Severity::Error,
        Impact::Login,
    );
    let f = &f;
    assert!(
        f.summary
            .starts_with("root's shell /usr/bin/zsh cannot run: /usr/bin/zsh cannot be found"),
        "{}",
        f.summary
    );
    assert_eq!(
        f.evidence[0],
        "/etc/passwd line 1: root's shell is /usr/bin/zsh"
    );
    assert_eq!(view_of(f), (b"/etc/passwd".to_vec(), Some(1)));
}

#[test]
fn healthy_guests_give_none_of_these_findings() {
    for (name, root) in [("debian12", None), ("demo", Some("vg_ta/lv_root"))] {
        let found = report(&[name], root).findings;
        let mine = ours(&found);
        assert!(mine.is_empty(), "{name}: {mine:#?}");
    }
    // The root volume alone (`--volume`): its fstab resolved through the layout.
    for (name, root) in [("debian12", "p1"), ("demo", "vg_ta/lv_root")] {
        let found = volume_report(name, root).findings;
        let mine = ours(&found);
        assert!(mine.is_empty(), "{name} --volume {root}: {mine:#?}");
    }
}

/// `stat -f` of a mounted directory: (block size, blocks, free, available, inodes, free inodes).
fn statfs(dir: &Path) -> Space {
    let o = Command::new("stat")
        .args(["-f", "-c", "%S %b %f %a %c %d"])
        .arg(dir)
        .output()
        .expect("run stat (coreutils)");
    assert!(o.status.success());
    let n: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    Space {
        block_size: n[0],
        blocks: n[1],
        free_blocks: n[2],
        avail_blocks: n[3],
        inodes: n[4],
        free_inodes: n[5],
    }
}

/// The ext fixtures of every shape (ext2 with 1 KiB blocks, ext3, ext4
/// without extents, bigalloc, journals) against the kernel's statfs.
#[test]
fn ext_space_of_every_shape_matches_the_kernel() {
    common::require_root("loop mounts");
    for name in [
        "ext-ext2-1k",
        "ext-ext2-rev0",
        "ext-ext3-2k",
        "ext-ext4-1k",
        "ext-ext4-4k",
        "ext-ext4-bigalloc",
        "ext-ext4-noextent",
        "ext-ext4-eainode",
        "ext-inline",
        "ext-journal-ext3",
        "ext-journal-ext4",
    ] {
        let image = common::fixture(name);
        let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
        let id = vmrescue::engine::select_volume(&layout, None).unwrap();
        let opts = FsOptions { no_journal: true };
        let fs = Userspace::new(opts.clone())
            .open_fs(&layout, id, &opts)
            .unwrap();
        let ours = fs.space(fs.root()).unwrap();
        let held = loop_support::Attached::read_only(&image, 0, None);
        let kernel = mounted_statfs(&held.dev, "ext4", "ro,noload");
        drop(held);
        assert_eq!(ours, kernel, "{name}");
    }
}

/// `stat -f` of block device `dev` mounted `-t fstype -o options` in a
/// temporary directory, unmounted again.
fn mounted_statfs(dev: &str, fstype: &str, options: &str) -> Space {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("mount")
        .args(["-t", fstype, "-o", options, dev])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mount {dev}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = statfs(dir.path());
    assert!(
        Command::new("umount")
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    s
}

/// The ext4 root's counters as the kernel's statfs gives them after a
/// read-only mount of the same bytes.
#[test]
fn ext_space_matches_the_kernel() {
    common::require_root("loop mounts");
    for name in ["doctor-system-full", "debian12"] {
        let image = common::fixture(name);
        let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
        let root = vmrescue::engine::select_volume(&layout, None).unwrap();
        let opts = FsOptions::default();
        let fs = Userspace::new(opts.clone())
            .open_fs(&layout, root, &opts)
            .unwrap();
        let ours = fs.space(fs.root()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The kernel mounts raw bytes: an overlay fixture is flattened first.
        let raw = common::fixture_copy(name, dir.path());
        let held = loop_support::Attached::read_only(&raw, ROOT_OFFSET, Some(ROOT_SIZE))
            .mount_ro(&dir.path().join("m"));
        let kernel = statfs(held.mount.as_deref().unwrap());
        drop(held);
        assert_eq!(ours, kernel, "{name}");
    }
}

/// The two-disk guest of `guest.sh`: every form of fstab source; only
/// `/dev/vdb1` (a kernel name, resolved by disk order) is worth a note.
/// `/boot/efi` (vfat) is read in userspace and mounted like the rest.
#[test]
fn guest_fixture_kernel_name_is_a_note() {
    let r = report(&["guest-a", "guest-b"], Some("vg-sys/root"));
    let mounts: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.check == Check::Mounts)
        .collect();
    assert_eq!(mounts.len(), 1, "{mounts:#?}");
    assert_eq!(mounts[0].severity, Severity::Note);
    assert_eq!(
        mounts[0].summary,
        "/srv/data: /dev/vdb1 is a kernel name, taken as disk1p1 by disk order"
    );
    assert_eq!(view_of(mounts[0]), (b"/etc/fstab".to_vec(), Some(12)));
    let checked = r.checked.iter().find(|c| c.check == Check::Mounts).unwrap();
    assert!(
        !checked.summary.contains("/boot/efi not checked"),
        "{}",
        checked.summary
    );
    assert!(!r.findings.iter().any(|f| f.check == Check::Space));
}

/// XFS (`/var` of the guest fixture) against the kernel's statfs of a
/// read-only mount, which takes no reserve pool: ours is less by exactly
/// that pool.
#[test]
fn xfs_space_matches_the_kernel() {
    common::require_root("loop mounts");
    const OFFSET: u64 = 56_623_104;
    const SIZE: u64 = 16_777_216;
    let image = common::fixture("guest-a");
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&image).unwrap()]);
    let var = layout.find_volume("vg-sys/var").unwrap();
    let opts = FsOptions::default();
    let fs = Userspace::new(opts.clone())
        .open_fs(&layout, var, &opts)
        .unwrap();
    assert_eq!(fs.status().fs_type, "xfs");
    let ours = fs.space(fs.root()).unwrap();
    let held = loop_support::Attached::read_only(&image, OFFSET, Some(SIZE));
    let kernel = mounted_statfs(&held.dev, "xfs", "ro,norecovery");
    drop(held);
    let pool = vmrescue::fs::xfs::space::default_resblks(SIZE / 4096);
    assert_eq!(
        Space {
            free_blocks: ours.free_blocks + pool,
            avail_blocks: ours.avail_blocks + pool,
            ..ours
        },
        kernel
    );
}

/// `doctor --json` carries each finding of these checks: its check,
/// severity, what it breaks, summary, evidence and the file to view with
/// the line at fault.
#[test]
fn each_finding_in_doctor_json() {
    // (fixture, check, severity, impact kind, mountpoint, summary start, view path, line)
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
        &'a str,
        Option<u64>,
    );
    let rows: [Row; 6] = [
        (
            "doctor-system-fstab",
            "mounts",
            "critical",
            "mount",
            Some("/srv/data"),
            "/srv/data cannot be mounted: no volume of this guest has UUID 0b5e55ed-",
            "/etc/fstab",
            Some(5),
        ),
        (
            "doctor-system-fstype",
            "mounts",
            "critical",
            "mount",
            Some("/mnt/scratch"),
            "/mnt/scratch cannot be mounted: UUID=5e1f0c3a-9d2b-4c7e-8a61-2b3c4d5e6f02 holds swap",
            "/etc/fstab",
            Some(5),
        ),
        (
            "doctor-system-swap",
            "mounts",
            "warning",
            "other",
            None,
            "the swap device UUID=0b5e55ed-",
            "/etc/fstab",
            Some(4),
        ),
        (
            "doctor-system-full",
            "space",
            "critical",
            "space",
            Some("/"),
            "/ is full: no space left for users other than root",
            "/",
            None,
        ),
        (
            "doctor-system-passwd",
            "accounts",
            "error",
            "login",
            None,
            "/etc/passwd line 6 does not parse (5 fields, not 7)",
            "/etc/passwd",
            Some(6),
        ),
        (
            "doctor-system-shell",
            "accounts",
            "error",
            "login",
            None,
            "root's shell /usr/bin/zsh cannot run",
            "/etc/passwd",
            Some(1),
        ),
    ];
    for (name, check, severity, kind, mountpoint, summary, view, line) in rows {
        let image = common::fixture(name);
        let out = common::vmrescue(&["doctor", image.to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mine: Vec<&serde_json::Value> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| ["mounts", "space", "accounts"].contains(&f["check"].as_str().unwrap()))
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {mine:#?}");
        let f = mine[0];
        assert_eq!(f["check"], check, "{name}");
        assert_eq!(f["severity"], severity, "{name}");
        assert_eq!(f["impact"]["kind"], kind, "{name}");
        assert_eq!(f["impact"]["mountpoint"].as_str(), mountpoint, "{name}");
        assert!(
            f["summary"].as_str().unwrap().starts_with(summary),
            "{name}: {}",
            f["summary"]
        );
        assert!(!f["evidence"].as_array().unwrap().is_empty(), "{name}");
        assert_eq!(f["path"], view, "{name}");
        if check == "space" {
            // The mountpoint to browse; what to delete is the operator's call.
            assert!(f["repair"].is_null(), "{name}");
            continue;
        }
        assert_eq!(f["repair"]["kind"], "view", "{name}");
        assert_eq!(f["repair"]["path"], view, "{name}");
        assert_eq!(f["repair"]["line"].as_u64(), line, "{name}");
    }
}
