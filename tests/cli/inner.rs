//! Disk images stored as files inside the image's filesystem (issue #13,
//! "images inside filesystems"): `--open PATH` opens the qcow2 or raw file
//! as the disk to work on, without copying it out.
//!
//! The fixture (`tests/fixtures/make/inner.sh`) is a host disk whose ext4
//! holds Proxmox's `/var/lib/vz/images/`: a base qcow2, a linked clone of
//! it with a relative backing name and one block written through it by
//! `qemu-io`, a raw copy, and qcow2 files whose backing is missing,
//! absolute, or a loop. Every file read is compared by SHA-256 with the
//! digest the script took of what it wrote (`inner-host.digests`).

use crate::common;

use sha2::{Digest, Sha256};
use std::collections::HashMap;

const CLONE: &str = "/var/lib/vz/images/100/vm-100-disk-0.qcow2";
const BASE: &str = "/var/lib/vz/images/9000/base-9000-disk-0.qcow2";
const RAW: &str = "/var/lib/vz/images/101/vm-101-disk-0.raw";

fn image() -> String {
    common::fixture("inner-host").display().to_string()
}

/// `PATH SHA256` lines of the fixture script.
fn digests() -> HashMap<String, String> {
    std::fs::read_to_string(common::fixture_file("inner-host.digests"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, d)| (p.to_string(), d.to_string()))
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = common::vmrescue(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cat(open: &str, path: &str) -> Vec<u8> {
    let img = image();
    let out = common::vmrescue(&["cat", &img, "--open", open, path]);
    assert!(
        out.status.success(),
        "cat {open} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn layers_of_a_linked_clone_show_its_relative_backing() {
    let img = image();
    let (code, out, err) = run(&["layers", &img, "--open", CLONE]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vm-100-disk-0.qcow2"), "{out}");
    assert!(
        out.contains("backing ../9000/base-9000-disk-0.qcow2 (qcow2, 16 MiB)"),
        "{out}"
    );
    // The guest's own partition, named as if the clone were IMAGE.
    let p1 = out.lines().find(|l| l.contains("└─p1")).unwrap_or_default();
    assert!(p1.contains("ext4") && p1.contains("g9000"), "{out}");
    // --json: the same disk, its partition.
    let (code, json, err) = run(&["layers", &img, "--open", CLONE, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(json.contains("\"g9000\""), "{json}");
}

#[test]
fn cat_reads_through_the_clone_and_its_backing_file() {
    let d = digests();
    // Written through the clone: its own cluster.
    assert_eq!(
        sha256(&cat(CLONE, "/data/changed.bin")),
        d["/data/changed.bin@vm-100"]
    );
    // Unchanged: read from the base image, found relative to the clone.
    for f in ["/data/hello.txt", "/etc/hostname"] {
        assert_eq!(sha256(&cat(CLONE, f)), d[f], "{f}");
    }
    // Symlinks are followed inside the inner guest.
    assert_eq!(
        sha256(&cat(CLONE, "/data/hello.link")),
        d["/data/hello.txt"]
    );
    // The base image, named in a volume (VOLUME:PATH), is as written.
    let base = format!("p1:{BASE}");
    assert_eq!(
        sha256(&cat(&base, "/data/changed.bin")),
        d["/data/changed.bin"]
    );
}

#[test]
fn a_raw_image_file_opens_too() {
    let d = digests();
    for f in ["/data/hello.txt", "/data/changed.bin", "/etc/hostname"] {
        assert_eq!(sha256(&cat(RAW, f)), d[f], "{f}");
    }
}

#[test]
fn an_absolute_backing_name_resolves_in_the_same_filesystem() {
    let img = image();
    let open = "/var/lib/vz/images/103/vm-103-disk-0.qcow2";
    let (code, out, err) = run(&["layers", &img, "--open", open]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("backing {BASE} (qcow2")), "{out}");
    assert_eq!(
        sha256(&cat(open, "/data/hello.txt")),
        digests()["/data/hello.txt"]
    );
}

#[test]
fn ls_and_cp_work_on_the_opened_image() {
    let img = image();
    let (code, out, err) = run(&["ls", &img, "--open", CLONE, "/data"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "changed.bin\nhello.link\nhello.txt\n");
    let dest = tempfile::tempdir().unwrap();
    let to = dest.path().display().to_string();
    let (code, _, err) = run(&["cp", &img, "--open", CLONE, "/data", &to]);
    assert_eq!(code, 0, "{err}");
    let d = digests();
    let read = |n: &str| std::fs::read(dest.path().join("data").join(n)).unwrap();
    assert_eq!(sha256(&read("changed.bin")), d["/data/changed.bin@vm-100"]);
    assert_eq!(sha256(&read("hello.txt")), d["/data/hello.txt"]);
    let link = std::fs::read_link(dest.path().join("data/hello.link")).unwrap();
    assert_eq!(link.to_str(), Some("hello.txt"));
}

#[test]
fn a_missing_backing_file_is_named_with_where_it_was_looked_for() {
    let img = image();
    let open = "/var/lib/vz/images/102/vm-102-disk-0.qcow2";
    let (code, out, err) = run(&["layers", &img, "--open", open]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{open}: backing file \"../9999/base-9999-disk-0.qcow2\" (looked for at \
             /var/lib/vz/images/102/../9999/base-9999-disk-0.qcow2 in the same filesystem): not found"
        )),
        "{err}"
    );
}

#[test]
fn a_backing_loop_inside_the_filesystem_is_refused() {
    let img = image();
    let (code, _, err) = run(&["layers", &img, "--open", "/var/lib/vz/images/104/a.qcow2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("qcow2 backing chain loops"), "{err}");
    assert!(err.contains("/var/lib/vz/images/104/b.qcow2"), "{err}");
}

#[test]
fn files_that_are_no_disk_image_are_refused_with_what_they_hold() {
    let img = image();
    let cases = [
        (
            "/etc/passwd",
            "/etc/passwd is not a disk image: it holds text",
        ),
        (
            "/etc/hostname",
            "/etc/hostname is not a disk image: it holds only 10 bytes",
        ),
        (
            "/var/lib/vz",
            "/var/lib/vz is not a regular file (it is a directory)",
        ),
        (
            "/var/lib/vz/nothing.qcow2",
            "/var/lib/vz/nothing.qcow2: not found",
        ),
        (
            "nothing",
            "--open nothing: give a path from the guest's root",
        ),
    ];
    for (open, want) in cases {
        let (code, out, err) = run(&["ls", &img, "--open", open, "/"]);
        assert_eq!(code, 2, "{open}: {out}{err}");
        assert!(err.contains(want), "{open}: {err}");
    }
}

#[test]
fn the_kernel_engine_falls_back_to_userspace_and_says_why() {
    let img = image();
    let (code, out, err) = run(&["layers", &img, "--open", CLONE, "--engine", "kernel"]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("p1 "))
        .unwrap_or_default()
        .to_string();
    assert!(row.contains("userspace"), "{out}");
    assert!(row.contains("the kernel cannot loop-mount"), "{out}");
}

#[test]
fn a_repair_inside_an_opened_image_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("host.img");
    std::fs::copy(common::fixture("inner-host"), &copy).unwrap();
    let before = sha256(&std::fs::read(&copy).unwrap());
    let copy_s = copy.display().to_string();
    let undo = dir.path().join("undo").display().to_string();
    let (code, _, err) = run(&[
        "relink",
        &copy_s,
        "--open",
        RAW,
        "/data/hello.link",
        "--to",
        "changed.bin",
        "--yes",
        "--undo-dir",
        &undo,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is a disk image stored inside a filesystem that vmrescue reads itself"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(sha256(&std::fs::read(&copy).unwrap()), before);
}
