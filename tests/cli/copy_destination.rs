//! `ops::copy::check_destination` decides without writing: the destination's
//! mtime does not move, and a read-only filesystem is named as such.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use vmrescue::ops::copy::check_destination;

fn mtime_ns(p: &Path) -> i128 {
    let m = std::fs::metadata(p).unwrap();
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

/// Creating and removing a probe file would move the directory's mtime.
#[test]
fn checking_a_destination_writes_nothing_into_it() {
    let tmp = tempfile::tempdir().unwrap();
    let old = std::fs::File::open(tmp.path()).unwrap();
    let then = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    old.set_modified(then).unwrap();
    let before = mtime_ns(tmp.path());
    check_destination(tmp.path()).unwrap();
    check_destination(&tmp.path().join("not-yet")).unwrap();
    assert_eq!(mtime_ns(tmp.path()), before, "the directory was written");
}

/// A read-only mount (root: a tmpfs mounted `ro`) is refused with its reason.
#[test]
fn a_read_only_destination_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "vmrescue-ro"])
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(ok.success(), "mounting a read-only tmpfs needs root");
    let e = check_destination(tmp.path()).map_err(|e| e.to_string());
    let e2 = check_destination(&tmp.path().join("new")).map_err(|e| e.to_string());
    let _ = Command::new("umount").arg(tmp.path()).status();
    let want = format!(
        "{}: on a read-only filesystem; choose another destination",
        tmp.path().display()
    );
    assert_eq!(e, Err(want.clone()));
    assert_eq!(e2, Err(want));
}

/// sysfs takes no files, though root may write its directories.
#[test]
fn a_pseudo_filesystem_is_refused_by_its_kind() {
    let e = check_destination(Path::new("/sys"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/sys: cannot create files there: "), "{e}");
}
