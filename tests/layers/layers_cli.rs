//! `vmrescue layers`: the text tree and its JSON form, on the partition
//! fixtures, checked against sfdisk's and blkid's reports.

use crate::common;
use crate::partition_support;

use partition_support::{blkid, sfdisk};
use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = common::vmrescue(args);
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn json(name: &str) -> Value {
    let img = common::fixture(name);
    let (code, out, err) = run(&["layers", "--json", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{name}: {err}");
    serde_json::from_str(&out).expect("layers --json output")
}

/// The partition nodes under the first disk, by name.
fn children(doc: &Value) -> Vec<Value> {
    doc["disks"][0]["children"]
        .as_array()
        .expect("children")
        .clone()
}

#[test]
fn text_tree_lists_partitions_with_offsets_types_and_labels() {
    let img = common::fixture("part-mbr");
    let (code, out, err) = run(&["layers", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SIZE",
            "START",
            "TYPE",
            "FSTYPE",
            "LABEL",
            "MOUNTPOINT"
        ]
    );
    assert!(lines[1].starts_with("part-mbr.img "), "{}", lines[1]);
    assert!(lines[1].contains("dos partition table"));
    let want = sfdisk("part-mbr");
    let tags = blkid("part-mbr");
    for p in &want.partitions {
        let row = lines
            .iter()
            .find(|l| l.contains(&format!("─p{} ", p.number)))
            .unwrap_or_else(|| panic!("no row for p{}:\n{out}", p.number));
        let start = (p.start * 512).to_string();
        assert!(
            row.split_whitespace().any(|w| w == start),
            "p{}: {row}",
            p.number
        );
        let t = &tags
            .iter()
            .find(|(v, _)| *v == format!("p{}", p.number))
            .expect("blkid block")
            .1;
        if let Some(label) = t.get("LABEL") {
            assert!(row.contains(label.as_str()), "p{}: {row}", p.number);
        }
        if let Some(ty) = t.get("TYPE") {
            assert!(row.contains(ty.as_str()), "p{}: {row}", p.number);
        }
    }
    // The extended partition says what it is; its logicals are listed too.
    let p2 = lines.iter().find(|l| l.contains("─p2 ")).unwrap();
    assert!(p2.contains("Extended") && p2.contains("container"), "{p2}");
}

#[test]
fn json_tree_matches_sfdisk_and_blkid() {
    for name in ["part-gpt", "part-gpt-4k", "part-mbr-0f", "part-mbr-4k"] {
        let doc = json(name);
        assert_eq!(doc["problems"].as_array().unwrap().len(), 0, "{name}");
        let disk = &doc["disks"][0];
        assert_eq!(disk["kind"], "disk");
        assert_eq!(disk["name"], format!("{name}.img"));
        let want = sfdisk(name);
        if want.sector_size == 4096 {
            assert!(
                disk["description"]
                    .as_str()
                    .unwrap()
                    .contains("4096-byte sectors"),
                "{}",
                disk["description"]
            );
        }
        let kids = children(&doc);
        assert_eq!(kids.len(), want.partitions.len(), "{name}");
        let tags = blkid(name);
        for (node, p) in kids.iter().zip(&want.partitions) {
            let vol = format!("p{}", p.number);
            assert_eq!(node["name"], vol.as_str());
            assert_eq!(
                node["volume"].as_str(),
                (!is_extended(&p.part_type)).then_some(vol.as_str())
            );
            assert_eq!(node["kind"], "partition");
            assert_eq!(
                node["start"].as_u64(),
                Some(p.start * want.sector_size),
                "{name} {vol}"
            );
            assert_eq!(
                node["size"].as_u64(),
                Some(p.size * want.sector_size),
                "{name} {vol}"
            );
            if let Some(n) = &p.name {
                assert!(node["description"].as_str().unwrap().contains(n.as_str()));
            }
            let t = &tags.iter().find(|(v, _)| *v == vol).expect("blkid block").1;
            // lsblk's FSTYPE and FSVER: blkid's TYPE and VERSION.
            let fstype = node["fstype"].as_str();
            if let Some(v) = t.get("VERSION") {
                assert_eq!(node["fsver"].as_str(), Some(v.as_str()), "{name} {vol}");
            }
            match t.get("TYPE") {
                Some(ty) => assert_eq!(fstype, Some(ty.as_str()), "{name} {vol}"),
                None if is_extended(&p.part_type) => assert!(node["fstype"].is_null()),
                None => assert_eq!(fstype, Some("empty"), "{name} {vol}"),
            }
            assert_eq!(node["label"].as_str(), t.get("LABEL").map(String::as_str));
            assert_eq!(node["uuid"].as_str(), t.get("UUID").map(String::as_str));
            assert_eq!(
                node["browsable"].as_bool(),
                Some(matches!(
                    t.get("TYPE").map(String::as_str),
                    Some("ext2" | "ext3" | "ext4" | "xfs" | "vfat")
                )),
                "{name} {vol}"
            );
        }
    }
}

fn is_extended(code: &str) -> bool {
    matches!(code, "5" | "f" | "85")
}

#[test]
fn whole_disk_filesystems_show_on_the_disk_row() {
    for name in [
        "bare-ext4",
        "bare-xfs",
        "bare-vfat",
        "bare-fat32",
        "bare-btrfs",
    ] {
        let doc = json(name);
        let disk = &doc["disks"][0];
        let t = &blkid(name)[0].1;
        assert_eq!(disk["fstype"].as_str(), Some(t["TYPE"].as_str()), "{name}");
        assert_eq!(
            disk["fsver"].as_str(),
            t.get("VERSION").map(String::as_str),
            "{name}"
        );
        assert_eq!(disk["label"].as_str(), t.get("LABEL").map(String::as_str));
        assert_eq!(disk["uuid"].as_str(), t.get("UUID").map(String::as_str));
        assert_eq!(disk["volume"], "disk0");
        assert_eq!(disk["browsable"], true);
        assert!(children(&doc).is_empty());
    }
}

#[test]
fn several_disks_number_their_partitions_apart() {
    let a = common::fixture("part-mbr");
    let b = common::fixture("part-gpt");
    let (code, out, err) = run(&[
        "layers",
        "--json",
        a.to_str().unwrap(),
        "--disk",
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let disks = doc["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    let second: Vec<&str> = disks[1]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["volume"].as_str().unwrap())
        .collect();
    assert_eq!(
        second,
        ["disk1p1", "disk1p2", "disk1p3", "disk1p4", "disk1p6"]
    );
}

#[test]
fn damaged_primary_gpt_is_one_line_on_stderr_and_the_tree_is_still_printed() {
    let img = common::fixture("part-gpt-damaged");
    let path = img.to_str().unwrap();
    let (code, out, err) = run(&["layers", path]);
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with(&format!("vmrescue: {path}: ")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("GPT") && lines[0].contains("byte 512"),
        "{}",
        lines[0]
    );
    for p in ["p1", "p2", "p3", "p4", "p6"] {
        assert!(out.contains(&format!("─{p} ")), "{p} missing:\n{out}");
    }
    assert!(out.lines().nth(1).unwrap().contains("[1 problem]"));
}

#[test]
fn labels_from_the_image_cannot_drive_the_terminal() {
    // A copy of bare-ext4 whose label holds an escape sequence.
    let dir = tempfile::tempdir().unwrap();
    let img = common::fixture_copy("bare-ext4", dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"\x1b[2J\x1b]0;pwn\x07", 1024 + 0x78).unwrap();
    drop(f);
    for args in [vec!["layers"], vec!["layers", "--json"]] {
        let mut args = args;
        args.push(img.to_str().unwrap());
        // The label was written without updating the superblock checksum:
        // that is reported (exit code 1), escaped like everything else.
        let (code, out, err) = run(&args);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("checksum mismatch"), "{err}");
        for text in [&out, &err] {
            assert!(
                !text.contains('\x1b') && !text.contains('\x07'),
                "raw control bytes in {text:?}"
            );
        }
        if args.len() == 2 {
            assert!(out.contains("\\x1b[2J"), "{out}");
        }
    }
}

#[test]
fn wide_characters_in_partition_names_keep_the_columns_aligned() {
    // A GPT partition named in Chinese (two terminal columns per character):
    // every row's FSTYPE starts in the same terminal column as the header's.
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("wide.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    partition_support::write_table(
        &img,
        "label: gpt\nstart=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, \
         name=\"数据盘\"\nsize=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"data\"\n",
    );
    let (code, out, err) = run(&["layers", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("数据盘"), "{out}");
    let column = |line: &str, what: &str| {
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {line}"));
        vmrescue::text::columns(&line[..at])
    };
    let lines: Vec<&str> = out.lines().take(4).collect();
    let header = column(lines[0], "FSTYPE");
    for l in &lines[2..4] {
        assert_eq!(column(l, "empty"), header, "{out}");
    }
}
