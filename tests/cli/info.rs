//! `vmrescue info` against `qemu-img info` on the same images.

use std::path::Path;
use std::process::Command;

use crate::common::vmrescue;

fn qemu_img(args: &[&str]) -> serde_json::Value {
    let o = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img (qemu-utils, installed by scripts/test)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if o.stdout.starts_with(b"{") {
        serde_json::from_slice(&o.stdout).unwrap()
    } else {
        serde_json::Value::Null
    }
}

/// `qemu-img create -f qcow2 -o OPTS PATH [SIZE]`.
fn create(path: &Path, opts: &str, size: Option<&str>) {
    let mut args = vec![
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        opts,
        path.to_str().unwrap(),
    ];
    args.extend(size);
    qemu_img(&args);
}

fn ours(image: &Path) -> (i32, serde_json::Value, String) {
    let o = vmrescue(&["info", "--output", "json", image.to_str().unwrap()]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every fact both tools print agrees: format, virtual size, cluster size,
/// compat, compression, refcount bits, lazy refcounts, the backing chain and
/// the snapshot table.
#[test]
fn info_agrees_with_qemu_img() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.qcow2");
    let top = tmp.path().join("top.qcow2");
    let zstd = tmp.path().join("z.qcow2");
    let old = tmp.path().join("v2.qcow2");
    let raw = tmp.path().join("disk.raw");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    create(&base, "cluster_size=4096", Some("80M"));
    create(
        &top,
        "backing_file=base.qcow2,backing_fmt=qcow2,lazy_refcounts=on,refcount_bits=4",
        None,
    );
    qemu_img(&["snapshot", "-c", "before upgrade", &s(&top)]);
    qemu_img(&["snapshot", "-c", "after", &s(&top)]);
    create(&zstd, "compression_type=zstd", Some("1G"));
    create(&old, "compat=0.10", Some("5G"));
    qemu_img(&["create", "-q", "-f", "raw", &s(&raw), "3M"]);
    for img in [&base, &top, &zstd, &old, &raw] {
        let want = qemu_img(&["info", "--output=json", "--force-share", &s(img)]);
        let (code, got, err) = ours(img);
        assert_eq!(code, 0, "{}: {err}", img.display());
        assert_eq!(got["version"], 1);
        assert_eq!(got["format"], want["format"], "{}", img.display());
        assert_eq!(got["virtual_size"], want["virtual-size"]);
        assert_eq!(got["actual_size"], want["actual-size"]);
        if want["format"] != "qcow2" {
            assert!(got.get("qcow2").is_none());
            continue;
        }
        let q = &got["qcow2"];
        let spec = &want["format-specific"]["data"];
        assert_eq!(q["cluster_size"], want["cluster-size"]);
        assert_eq!(q["compat"], spec["compat"]);
        assert_eq!(q["refcount_bits"], spec["refcount-bits"]);
        assert_eq!(q["compression_type"], spec["compression-type"]);
        // Version 2 has no feature bits: qemu-img leaves them out.
        if spec["compat"] == "1.1" {
            assert_eq!(q["corrupt"], spec["corrupt"]);
            assert_eq!(q["lazy_refcounts"], spec["lazy-refcounts"]);
            assert_eq!(q["extended_l2"], spec["extended-l2"]);
        }
        let chain = got["backing_chain"].as_array().unwrap();
        match want["backing-filename"].as_str() {
            Some(b) => assert_eq!(chain[0]["name"], b),
            None => assert!(chain.is_empty()),
        }
        let snaps = want["snapshots"].as_array().cloned().unwrap_or_default();
        let ours = got["snapshots"].as_array().unwrap();
        assert_eq!(ours.len(), snaps.len());
        for (a, b) in ours.iter().zip(&snaps) {
            assert_eq!(a["id"], b["id"]);
            assert_eq!(a["name"], b["name"]);
            assert_eq!(a["date_sec"], b["date-sec"]);
            assert_eq!(a["vm_state_size"], b["vm-state-size"]);
        }
    }
    // The human form has qemu-img's labels.
    let o = vmrescue(&["info", top.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    for line in [
        "file format: qcow2",
        "virtual size: 80 MiB (83886080 bytes)",
        "backing file: base.qcow2",
        "before upgrade",
        "    lazy refcounts: true",
        "    refcount bits: 4",
        "in use: no",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // A backing file gone: the image's own facts still, the missing file
    // named, exit code 1.
    std::fs::remove_file(&base).unwrap();
    let (code, got, err) = ours(&top);
    assert_eq!(code, 1, "{err}");
    assert_eq!(got["backing_missing"], "base.qcow2");
    assert_eq!(got["snapshots"].as_array().unwrap().len(), 2);
    assert!(err.contains("base.qcow2"), "{err}");
}

/// A QEMU process holding the image is named, as the repair checks name it.
#[test]
fn info_names_who_holds_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("held.qcow2");
    create(&img, "cluster_size=65536", Some("16M"));
    // qemu-io keeps the image open (with QEMU's write locks) while it waits
    // on its standard input.
    let mut holder = Command::new("qemu-io")
        .args(["-f", "qcow2", img.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("qemu-io (qemu-utils)");
    let mut held = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, got, _) = ours(&img);
        if !got["holders"]["qemu"].as_array().is_none_or(Vec::is_empty) {
            held = got;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = holder.kill();
    let _ = holder.wait();
    let qemu = held["holders"]["qemu"]
        .as_array()
        .expect("a QEMU holder named");
    assert!(
        qemu.iter().any(|h| h.as_str().unwrap().contains("qemu-io")),
        "{qemu:?}"
    );
}

/// A VMDK snapshot chain: CID, parent CID, createType, extents and the
/// parent as `qemu-img info` gives them.
#[test]
fn vmdk_info_agrees_with_qemu_img() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("disk.raw");
    std::fs::write(&raw, vec![0x42u8; 3 << 20]).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let base = tmp.path().join("base.vmdk");
    let child = tmp.path().join("child.vmdk");
    let stream = tmp.path().join("stream.vmdk");
    qemu_img(&["convert", "-O", "vmdk", &s(&raw), &s(&base)]);
    qemu_img(&[
        "convert",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        &s(&raw),
        &s(&stream),
    ]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vmdk",
        "-b",
        "base.vmdk",
        "-F",
        "vmdk",
        &s(&child),
    ]);
    for img in [&child, &stream] {
        let theirs = qemu_img(&["info", "--output=json", &s(img)]);
        let (code, v, err) = ours(img);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["format"], "vmdk");
        assert_eq!(v["virtual_size"], theirs["virtual-size"]);
        let (o, t) = (&v["vmdk"], &theirs["format-specific"]["data"]);
        assert_eq!(o["cid"], t["cid"]);
        assert_eq!(o["parent_cid"], t["parent-cid"]);
        assert_eq!(o["create_type"], t["create-type"]);
        let (oe, te) = (
            o["extents"].as_array().unwrap(),
            t["extents"].as_array().unwrap(),
        );
        assert_eq!(oe.len(), te.len());
        for (a, b) in oe.iter().zip(te) {
            assert_eq!(a["virtual_size"], b["virtual-size"]);
            assert_eq!(a["cluster_size"], b["cluster-size"]);
            assert_eq!(a["compressed"], b["compressed"].as_bool().unwrap_or(false));
        }
    }
    let (_, v, _) = ours(&child);
    assert_eq!(v["backing_chain"][0]["name"], "base.vmdk");
    assert_eq!(v["backing_chain"][0]["format"], "vmdk");
    // The text form, with qemu-img's labels.
    let o = vmrescue(&["info", &s(&stream)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("file format: vmdk"), "{text}");
    assert!(text.contains("create type: streamOptimized"), "{text}");
    assert!(text.contains("compressed: true"), "{text}");
}
