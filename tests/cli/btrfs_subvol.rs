//! btrfs subvolumes as the commands see them (userspace engine, no root):
//! children of the volume in `layers`, `--volume VOLUME@SUBVOLUME`, and a
//! guest whose root is the subvolume its boot loader's `rootflags=` names
//! (`tests/fixtures/make/btrfs-guest.sh`), compared with the kernel's reads.

use crate::common;

use common::vmrescue;
use sha2::{Digest, Sha256};

fn main_image() -> String {
    common::fixture("btrfs-main").to_str().unwrap().to_string()
}

fn guest_image() -> String {
    common::fixture("btrfs-guest").to_str().unwrap().to_string()
}

fn hex_sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn ok_stdout(args: &[&str]) -> String {
    let out = vmrescue(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The kernel's sums of the guest's files, by guest path.
fn guest_sums() -> Vec<(String, String)> {
    common::report("btrfs-guest.sums")
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(s, p)| (p.to_string(), s.to_string()))
        .collect()
}

#[test]
fn layers_json_lists_subvolumes_and_snapshots_under_the_volume() {
    let img = main_image();
    let text = ok_stdout(&["layers", "--json", "--engine", "userspace", &img]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let disk = &v["disks"][0];
    let subs: Vec<&serde_json::Value> = disk["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "subvolume")
        .collect();
    let by_path = |p: &str| {
        subs.iter()
            .find(|s| s["subvolume"]["path"] == p)
            .unwrap_or_else(|| panic!("{p} not among {subs:?}"))
    };
    // btrfs.sh: @ (the default), @home, @snap (a snapshot of @), @/nested,
    // and the top level, which is not the default here.
    let at = by_path("@");
    assert_eq!(at["subvolume"]["default"], true);
    assert_eq!(at["subvolume"]["parent"], 5);
    assert_eq!(at["volume"], "disk0@/@");
    let snap = by_path("@snap");
    assert_eq!(snap["subvolume"]["snapshot_of"], at["subvolume"]["id"]);
    assert_eq!(by_path("@home")["subvolume"]["default"], false);
    assert!(by_path("@home")["subvolume"].get("snapshot_of").is_none());
    assert_eq!(
        by_path("@/nested")["subvolume"]["parent"],
        at["subvolume"]["id"]
    );
    assert_eq!(by_path("")["subvolume"]["id"], 5);
    assert_eq!(by_path("")["volume"], "disk0@/");
    assert_eq!(subs.len(), 5, "{subs:?}");
    // The text tree shows them too.
    let text = ok_stdout(&["layers", "--engine", "userspace", &img]);
    assert!(
        text.lines()
            .any(|l| l.contains("@snap") && l.contains("snapshot of @")),
        "{text}"
    );
}

#[test]
fn volume_at_subvolume_names_each_spelling() {
    let img = main_image();
    // What the kernel shows of @home (`mount -o subvol=@home`).
    let walk = common::report("btrfs-main.home.walk");
    let want: Vec<&str> = walk
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter_map(|p| p.strip_prefix('/'))
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .collect();
    let id = {
        let text = ok_stdout(&["layers", "--json", "--engine", "userspace", &img]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["disks"][0]["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["subvolume"]["path"] == "@home")
            .map(|c| c["subvolume"]["id"].as_u64().unwrap())
            .unwrap()
    };
    for spec in [
        "disk0@home".to_string(),
        "disk0@@home".to_string(),
        "disk0@/@home".to_string(),
        format!("disk0@id={id}"),
    ] {
        let text = ok_stdout(&["ls", "--engine", "userspace", "--volume", &spec, &img, "/"]);
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got, want, "{spec}");
    }
    // A file of @home, byte for byte as the kernel reads it.
    let line = walk
        .lines()
        .find(|l| l.starts_with("/user/data\t"))
        .unwrap();
    let sum = line.split('\t').nth(9).unwrap();
    let out = vmrescue(&[
        "cat",
        "--engine",
        "userspace",
        "--volume",
        "disk0@home",
        &img,
        "/user/data",
    ]);
    assert!(out.status.success());
    assert_eq!(hex_sha(&out.stdout), sum);
    // The top level shows the subvolumes as folders.
    let text = ok_stdout(&[
        "ls",
        "--engine",
        "userspace",
        "--volume",
        "disk0@/",
        &img,
        "/",
    ]);
    for name in ["@", "@home", "@snap"] {
        assert!(text.lines().any(|l| l == name), "{name}: {text}");
    }
}

#[test]
fn volume_at_subvolume_errors_name_the_choices() {
    let img = main_image();
    let out = vmrescue(&[
        "ls",
        "--engine",
        "userspace",
        "--volume",
        "disk0@nope",
        &img,
        "/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("subvolume \"nope\" of disk0") && err.contains("disk0@/@home"),
        "{err}"
    );
    let out = vmrescue(&[
        "ls",
        "--engine",
        "userspace",
        "--volume",
        "disk0@id=x",
        &img,
        "/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("id= takes a subvolume number"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_guest_root_is_the_subvolume_its_kernel_command_line_names() {
    let img = guest_image();
    // The default subvolume is the top level; @old's fstab names @old for
    // /, but the boot loader boots rootflags=subvol=@.
    let text = ok_stdout(&["layers", "--json", "--engine", "userspace", &img]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["disks"][0]["os"], "openSUSE Tumbleweed", "{text}");
    // The subvolumes carry where the guest mounts them.
    let subs = v["disks"][0]["children"].as_array().unwrap();
    let at = |name: &str| {
        subs.iter()
            .find(|c| c["name"] == name)
            .map(|c| c["mountpoint"].clone())
            .unwrap()
    };
    assert_eq!(at("@"), "/");
    assert_eq!(at("@home"), "/home");
    assert!(at("@old").is_null());
    let text = ok_stdout(&["ls", "--engine", "userspace", &img, "/", "/home/user"]);
    assert!(text.contains("/:\nboot\netc\nhome\n"), "{text}");
    assert!(text.contains("/home/user:\nbig.log\nnotes.txt\n"), "{text}");
    let out = vmrescue(&["cat", "--engine", "userspace", &img, "/etc/os-release"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Tumbleweed"));
}

#[test]
fn cp_of_compressed_files_through_the_guest_namespace_gives_the_kernels_bytes() {
    let img = guest_image();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let d = dest.to_str().unwrap();
    ok_stdout(&["cp", "--engine", "userspace", &img, "/home/user", "/etc", d]);
    let sums = guest_sums();
    assert_eq!(sums.len(), 4);
    for (path, sum) in sums {
        // /home/user/x → user/x; /etc/x → etc/x.
        let local = path.strip_prefix("/home/").unwrap_or(&path[1..]);
        let bytes = std::fs::read(dest.join(local)).unwrap_or_else(|e| panic!("{local}: {e}"));
        assert_eq!(hex_sha(&bytes), sum, "{path}");
    }
}
