//! `vmrescue ls`, `cat` and `cp` on a btrfs image with the userspace
//! engine (no root needed): what they show and copy equals the kernel's
//! walk recorded by `tests/fixtures/make/btrfs.sh`.

use crate::common;

use std::os::unix::fs::MetadataExt;

use common::vmrescue;
use sha2::{Digest, Sha256};

fn image() -> String {
    common::fixture("btrfs-main").to_str().unwrap().to_string()
}

/// The kernel's walk line of `path` in the default subvolume, as fields.
fn kernel_line(path: &str) -> Vec<String> {
    let walk = common::report("btrfs-main.walk");
    walk.lines()
        .find(|l| l.split('\t').next() == Some(path))
        .unwrap_or_else(|| panic!("{path} not in the kernel's walk"))
        .split('\t')
        .map(str::to_string)
        .collect()
}

fn hex_sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn ls_shows_the_default_subvolume_and_its_nested_subvolume() {
    let img = image();
    let out = vmrescue(&["ls", "--engine", "userspace", &img, "/"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    for name in ["big-64m", "dir5000", "nested", "only-in-live", "comp-zstd"] {
        assert!(s.lines().any(|l| l == name), "{name} missing:\n{s}");
    }
    // Deleted after the snapshot was taken: only in @snap.
    assert!(!s.lines().any(|l| l == "inline-100"), "{s}");
    let out = vmrescue(&["ls", "-l", "--engine", "userspace", &img, "/dir"]);
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.lines()
            .any(|l| l.starts_with("-rw-r--r-- 3 ") && l.ends_with(" hardlink")),
        "{s}"
    );
}

#[test]
fn cat_gives_the_kernels_bytes() {
    let img = image();
    for path in [
        "/hello.txt",
        "/big-64m",
        "/reflinked",
        "/sparse",
        "/nested/file",
    ] {
        let out = vmrescue(&["cat", "--engine", "userspace", &img, path]);
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hex_sha(&out.stdout), kernel_line(path)[9], "{path}");
    }
}

#[test]
fn cp_copies_files_sparse_with_hard_links() {
    let img = image();
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().to_str().unwrap();
    let out = vmrescue(&[
        "cp",
        "--engine",
        "userspace",
        &img,
        "/dir",
        "/sparse",
        "/hello.txt",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sparse = dest.path().join("sparse");
    let bytes = std::fs::read(&sparse).unwrap();
    assert_eq!(hex_sha(&bytes), kernel_line("/sparse")[9]);
    let m = std::fs::metadata(&sparse).unwrap();
    assert!(
        m.blocks() * 512 < 1 << 20,
        "the 30 MiB sparse file takes {} bytes",
        m.blocks() * 512
    );
    let f = std::fs::read(dest.path().join("dir/f4097")).unwrap();
    assert_eq!(hex_sha(&f), kernel_line("/dir/f4097")[9]);
    let a = std::fs::metadata(dest.path().join("hello.txt")).unwrap();
    let b = std::fs::metadata(dest.path().join("dir/hardlink")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links stay linked");
}
