//! `vmrescue layers`, `ls` and `cat` on btrfs filesystems spanning several
//! images (`--disk`) or two partitions of one disk, with the userspace
//! engine: every member opens the whole filesystem, the bytes equal the
//! kernel's (`sha256sum` recorded by `tests/fixtures/make/btrfs-multi.sh`),
//! and a missing device is named.

use crate::common;

use common::vmrescue;
use sha2::{Digest, Sha256};

fn img(name: &str) -> String {
    common::fixture(name).to_str().unwrap().to_string()
}

/// (path from the top level, SHA-256) of every file, as the kernel read them.
fn kernel_hashes(case: &str) -> Vec<(String, String)> {
    common::report(&format!("btrfs-{case}.sha256"))
        .lines()
        .map(|l| {
            let (h, p) = l.split_once("  ").expect("sha256sum line");
            (p.trim_start_matches('.').to_string(), h.to_string())
        })
        .collect()
}

fn hex_sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn layers_shows_each_device_and_that_it_opens_the_filesystem() {
    let out = vmrescue(&[
        "layers",
        "--engine",
        "userspace",
        &img("btrfs-raid5-1"),
        "--disk",
        &img("btrfs-raid5-2"),
        "--disk",
        &img("btrfs-raid5-3"),
    ]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    for i in 1..=3 {
        assert!(s.contains(&format!("btrfs (device {i} of 3)")), "{s}");
    }
    assert!(
        s.contains("btrfs-raid5-2.img: btrfs filesystem ")
            && s.contains(" of 3 devices: this volume is devid 2; devid 1, 3 opened with it"),
        "{s}"
    );
    let out = vmrescue(&["layers", &img("btrfs-parts")]);
    let s = text(&out.stdout);
    assert!(
        s.contains("btrfs (device 1 of 2)") && s.contains("btrfs (device 2 of 2)"),
        "{s}"
    );
    assert!(
        s.contains("this volume is devid 2; devid 1 opened with it"),
        "{s}"
    );
}

#[test]
fn ls_and_cat_through_any_member_give_the_kernels_bytes() {
    for (case, n) in [("raid1", 2), ("raid10", 4), ("raid6", 4)] {
        let mut args: Vec<String> = vec!["cat".into(), img(&format!("btrfs-{case}-1"))];
        for i in 2..=n {
            args.push("--disk".into());
            args.push(img(&format!("btrfs-{case}-{i}")));
        }
        args.push("--volume".into());
        args.push(format!("disk{}", n - 1));
        let mut ls = args.clone();
        ls[0] = "ls".into();
        ls.push("/dir".into());
        let ls: Vec<&str> = ls.iter().map(String::as_str).collect();
        let out = vmrescue(&ls);
        assert!(out.status.success(), "{case}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).lines().collect::<Vec<_>>(),
            ["f4097", "hardlink", "noise-200k", "sub"],
            "{case}"
        );
        for (path, want) in kernel_hashes(case) {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.push(&path);
            let out = vmrescue(&a);
            assert!(out.status.success(), "{case} {path}: {}", text(&out.stderr));
            assert_eq!(hex_sha(&out.stdout), want, "{case} {path}");
        }
    }
    // Two partitions of one disk: either partition.
    for vol in ["p1", "p2"] {
        for (path, want) in kernel_hashes("parts") {
            let out = vmrescue(&["cat", &img("btrfs-parts"), "--volume", vol, &path]);
            assert!(out.status.success(), "{vol} {path}: {}", text(&out.stderr));
            assert_eq!(hex_sha(&out.stdout), want, "{vol} {path}");
        }
    }
}

#[test]
fn raid5_with_a_device_missing_is_rebuilt_from_parity() {
    for (path, want) in kernel_hashes("raid5") {
        let out = vmrescue(&[
            "cat",
            &img("btrfs-raid5-1"),
            "--disk",
            &img("btrfs-raid5-3"),
            "--volume",
            "disk0",
            &path,
        ]);
        assert!(out.status.success(), "{path}: {}", text(&out.stderr));
        assert_eq!(hex_sha(&out.stdout), want, "{path}");
    }
    // `ls` says what is missing and how it is read.
    let out = vmrescue(&[
        "ls",
        &img("btrfs-raid5-1"),
        "--disk",
        &img("btrfs-raid5-3"),
        "--volume",
        "disk0",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(
        e.contains("btrfs device devid 2 (UUID ")
            && e.contains("RAID5 data: rebuilt from the parity"),
        "{e}"
    );
}

#[test]
fn raid0_data_on_a_missing_device_is_an_error_naming_it() {
    let image = img("btrfs-raid0-1");
    let out = vmrescue(&["cat", &image, "/big-noise"]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("/big-noise")
            && e.contains("RAID0 data chunk")
            && e.contains("devid 2 (UUID ")
            && e.contains("not found"),
        "{e}"
    );
    // What lies in the (RAID1) metadata still reads.
    let out = vmrescue(&["cat", &image, "/hello.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"hello, world\n");
    let out = vmrescue(&["ls", &image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(e.contains("RAID0 data: cannot be read"), "{e}");
}

#[test]
fn a_cloned_disk_is_not_mixed_with_its_original() {
    // The same two-partition disk twice (a copy taken of a VM's disk): each
    // partition opens with the other partition of its own disk, and says a
    // second copy of that device was seen.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("clone.img");
    let st = std::process::Command::new("cp")
        .args(["--sparse=always", &img("btrfs-parts")])
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let copy = copy.to_str().unwrap();
    let out = vmrescue(&["layers", &img("btrfs-parts"), "--disk", copy]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    for vol in ["p1", "p2", "disk1p1", "disk1p2"] {
        assert!(
            s.lines()
                .any(|l| l.starts_with(&format!("{vol}: btrfs devid "))
                    && l.contains("appears twice")),
            "{vol}: {s}"
        );
    }
    for (path, want) in kernel_hashes("parts") {
        let out = vmrescue(&[
            "cat",
            &img("btrfs-parts"),
            "--disk",
            copy,
            "--volume",
            "disk1p2",
            &path,
        ]);
        assert!(out.status.success(), "{path}: {}", text(&out.stderr));
        assert_eq!(hex_sha(&out.stdout), want, "{path}");
    }
}

/// The devices of one filesystem are one choice: without `--volume`, the
/// commands open it (through its first device) instead of asking which.
#[test]
fn one_filesystem_over_several_images_needs_no_volume() {
    let (a, b) = (img("btrfs-raid1-1"), img("btrfs-raid1-2"));
    let out = vmrescue(&["ls", &a, "--disk", &b, "/"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("hello.txt"),
        "{}",
        text(&out.stdout)
    );
    for (path, sha) in kernel_hashes("raid1").into_iter().take(3) {
        let out = vmrescue(&["cat", &a, "--disk", &b, &path]);
        assert_eq!(out.status.code(), Some(0), "{path}: {}", text(&out.stderr));
        assert_eq!(hex_sha(&out.stdout), sha, "{path}");
    }
}
