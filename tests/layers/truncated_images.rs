//! Images cut short (a copy that stopped, a full disk): what is still in the
//! file must read, what is gone must fail for its own range only and say
//! so, and `layers` must list the truncation as a problem. The qcow2 images
//! are made from the demo fixture by `qemu-img convert` at test time.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("truncate");
}

fn qcow2_of_demo(dir: &Path) -> PathBuf {
    let out = dir.join("demo.qcow2");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(common::fixture("demo"))
        .arg(&out)
        .status()
        .expect("run qemu-img (package qemu-utils)");
    assert!(st.success());
    out
}

/// Copy `/.` of `volume` to a new directory; returns it with the exit code
/// and stderr.
fn copy_out(image: &Path, volume: &str, dest: &Path) -> (i32, String) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let out = common::vmrescue(&[
        "cp",
        image.to_str().expect("utf-8"),
        "--volume",
        volume,
        "/.",
        dest.to_str().expect("utf-8"),
    ]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every regular file under `got` equals the one under `want`; returns how many.
fn same_files(want: &Path, got: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(got.join(&rel)).expect("read_dir") {
            let e = e.expect("entry");
            let rel = rel.join(e.file_name());
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                stack.push(rel);
            } else if t.is_file() {
                let a = std::fs::read(want.join(&rel)).expect("original file");
                let b = std::fs::read(got.join(&rel)).expect("copied file");
                assert!(a == b, "{} copied with different bytes", rel.display());
                n += 1;
            }
        }
    }
    n
}

fn layers(image: &Path) -> (i32, String) {
    let out = common::vmrescue(&["layers", image.to_str().expect("utf-8")]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The demo disk as qcow2, its root LV's files copied out whole (into
/// `want`), then the qcow2 file cut to `percent` of its length.
fn cut_qcow2_of_demo(dir: &Path, percent: u64) -> (PathBuf, PathBuf) {
    let full = qcow2_of_demo(dir);
    let want = dir.join("want");
    let (code, err) = copy_out(&full, "vg_ta/lv_root", &want);
    assert_eq!(code, 0, "{err}");
    let len = std::fs::metadata(&full).expect("stat").len();
    truncate(&full, len / 100 * percent);
    (full, want)
}

#[test]
fn qcow2_cut_by_five_percent_keeps_everything_still_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (full, want) = cut_qcow2_of_demo(dir.path(), 95);
    let (code, err) = layers(&full);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the image is truncated"), "{err}");
    assert!(err.contains("the first at guest byte"), "{err}");
    // The root LV lies before the cut: every file copies, byte for byte.
    let got = dir.path().join("got");
    let (code, err) = copy_out(&full, "vg_ta/lv_root", &got);
    assert_eq!(code, 0, "{err}");
    assert_eq!(same_files(&want, &got), same_files(&want, &want));
}

#[test]
fn qcow2_cut_in_half_fails_only_the_files_past_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (full, want) = cut_qcow2_of_demo(dir.path(), 55);
    let got = dir.path().join("got");
    let (code, err) = copy_out(&full, "vg_ta/lv_root", &got);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the image is truncated"), "{err}");
    assert!(err.contains("(guest byte "), "{err}");
    // What was copied is right (no zeros in place of the lost bytes).
    let copied = same_files(&want, &got);
    let all = same_files(&want, &want);
    assert!(copied > 0 && copied < all, "{copied} of {all}");
}

#[test]
fn raw_image_cut_short_says_by_how_much_and_reads_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = common::fixture_copy("demo", dir.path());
    let want = dir.path().join("want");
    let (code, err) = copy_out(&img, "vg_ta/lv_root", &want);
    assert_eq!(code, 0, "{err}");
    let home = dir.path().join("home");
    let (code, err) = copy_out(&img, "vg_ta/lv_home", &home);
    assert_eq!(code, 0, "{err}");
    // Inside lv_home (bytes 1343225856..1611661312 of the disk), after lv_root.
    truncate(&img, 1290 << 20);
    let (code, err) = layers(&img);
    assert_eq!(code, 1, "{err}");
    let short = (2u64 << 30) - (1290 << 20);
    assert!(
        err.contains(&format!(
            "image is {short} bytes shorter than the partition table says"
        )),
        "{err}"
    );
    // lv_root is whole and copies; lv_home is cut (its root directory is
    // past the end): it fails saying where the file ends.
    let got = dir.path().join("got");
    let (code, err) = copy_out(&img, "vg_ta/lv_root", &got);
    assert_eq!(code, 0, "{err}");
    assert_eq!(same_files(&want, &got), same_files(&want, &want));
    let got = dir.path().join("got-home");
    let (code, err) = copy_out(&img, "vg_ta/lv_home", &got);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("goes past the end of the file"), "{err}");
    assert!(same_files(&home, &home) > 0);
}

/// A qcow2 image grown after it was written keeps its L1 table at the end
/// of the file: a cut through that table keeps the entries before the cut,
/// and the guest bytes they map still read.
#[test]
fn qcow2_cut_through_its_l1_table_keeps_the_entries_before_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = qcow2_of_demo(dir.path());
    let st = Command::new("qemu-img")
        .args(["resize", "-q"])
        .arg(&img)
        .arg("+3G")
        .status()
        .expect("run qemu-img resize");
    assert!(st.success());
    let want = common::vmrescue(&[
        "cat",
        img.to_str().expect("utf-8"),
        "--volume",
        "p1",
        "/grub/grub.conf",
    ]);
    assert_eq!(want.status.code(), Some(0));
    let head = std::fs::read(&img).expect("read");
    let l1 = u64::from_be_bytes(head[40..48].try_into().expect("8 bytes"));
    assert!(
        l1 + 80 >= head.len() as u64,
        "the grown L1 table is the file's last cluster"
    );
    // Keep two entries: guest bytes 0..1 GiB (64 KiB clusters).
    truncate(&img, l1 + 16);
    let (code, err) = layers(&img);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the end of the L1 table"), "{err}");
    assert!(err.contains("the first at guest byte 1073741824"), "{err}");
    let got = common::vmrescue(&[
        "cat",
        img.to_str().expect("utf-8"),
        "--volume",
        "p1",
        "/grub/grub.conf",
    ]);
    assert_eq!(got.stdout, want.stdout);
}
