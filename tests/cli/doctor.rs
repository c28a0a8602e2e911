//! `vmrescue doctor`: on the demo the repointed `libc.so.6` is the first
//! finding, with `libc-2.12.so` proposed; after the repair (and on the ext
//! fixtures) no broken library link is found.

use crate::common;

use common::{fixture_copy, vmrescue};

fn doctor_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let o = vmrescue(&all);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json output is not JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

#[test]
fn demo_finds_libc_first_with_libc_2_12() {
    let (code, v) = doctor_json(&["--demo"]);
    assert_eq!(code, 1, "findings make the exit code 1");
    let first = &v["findings"][0];
    assert_eq!(first["path"], "/lib64/libc.so.6");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["impact"]["kind"], "boot");
    let repair = &first["repair"];
    assert_eq!(repair["kind"], "relink");
    assert_eq!(repair["target"], "/opt/glibc-2.14/lib/libc.so.6");
    assert_eq!(repair["candidates"][0]["target"], "libc-2.12.so");
    assert_eq!(repair["candidates"][0]["guess"], false);
    assert_eq!(repair["command"], "vmrescue relink --demo /lib64/libc.so.6");
    let problems: Vec<&str> = repair["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("glibc 2.14 but ld.so is ld-2.12.so")),
        "{problems:?}"
    );
    // The most recent change of the guest is that link.
    assert_eq!(v["recent"][0]["path"], "/lib64/libc.so.6");
    // The text form names the repair command.
    let o = vmrescue(&["doctor", "--demo"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("\nThe guest cannot start\n  1. [critical] "),
        "{out}"
    );
    assert!(out.contains("proposed: libc-2.12.so"), "{out}");
    // In the whole guest, relink finds the volume itself.
    assert!(
        out.contains("repair:   vmrescue relink --demo /lib64/libc.so.6\n"),
        "{out}"
    );
    assert!(
        out.contains("in the guest (root vg_ta/lv_root, with the volumes it mounts)"),
        "{out}"
    );
    // With --volume, the repair names it too.
    let o = vmrescue(&["doctor", "--demo", "--volume", "vg_ta/lv_root"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("vmrescue relink --demo --volume vg_ta/lv_root /lib64/libc.so.6"),
        "{out}"
    );
}

#[test]
fn after_the_repair_no_broken_library_link_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let image = fixture_copy("demo", dir.path());
    let img = image.to_str().unwrap();
    let undo = dir.path().join("undo");
    let o = vmrescue(&[
        "relink",
        img,
        "/lib64/libc.so.6",
        "--yes",
        "--undo-dir",
        undo.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, v) = doctor_json(&[img]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v}");
    // The repair is the newest change, and says so.
    assert_eq!(v["recent"][0]["path"], "/lib64/libc.so.6");
    let o = vmrescue(&["doctor", img]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("No reason found why the guest"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn healthy_ext_fixtures_have_no_broken_library_link() {
    for fixture in ["ext-ext4-4k", "ext-ext2-1k"] {
        let path = common::fixture(fixture);
        let (code, v) = doctor_json(&[path.to_str().unwrap()]);
        assert_eq!(code, 0, "{fixture}: {v}");
        assert!(
            v["findings"].as_array().unwrap().is_empty(),
            "{fixture}: {v}"
        );
    }
}

/// The repair doctor prints is a command that can be pasted: an image path
/// with a space and a quote is one shell word, and running it (here through
/// `sh -c`) reaches the image and shows the plan.
#[test]
fn the_suggested_command_survives_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let image = fixture_copy("demo", dir.path());
    let odd = dir.path().join("VM disk's copy.img");
    std::fs::rename(&image, &odd).unwrap();
    let (_, v) = doctor_json(&[odd.to_str().unwrap()]);
    let cmd = v["findings"][0]["repair"]["command"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(cmd.contains("'"), "{cmd}");
    let bin = env!("CARGO_BIN_EXE_vmrescue");
    let line = format!("{}{} --dry-run", bin, cmd.strip_prefix("vmrescue").unwrap());
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(&line)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("/lib64/libc.so.6"), "{out}");
}
