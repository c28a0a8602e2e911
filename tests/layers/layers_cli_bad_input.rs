//! Bad input to `vmrescue layers`: not an image, an empty file, a directory,
//! paths that cannot be opened, truncated and damaged tables. The exit code
//! is non-zero, each problem is one line naming the file (and, for damaged
//! structures, the structure and byte offset), and whatever could be read is
//! still printed.

use crate::common;

use std::path::Path;

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn layers(args: &[&str]) -> Run {
    let mut all = vec!["layers"];
    all.extend_from_slice(args);
    let o = common::vmrescue(&all);
    Run {
        code: o.status.code().expect("exit code"),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Every stderr line is one `vmrescue: ` message and one of them names `path`.
fn assert_names(r: &Run, path: &Path, words: &[&str]) {
    let p = path.display().to_string();
    assert!(!r.err.is_empty(), "nothing on stderr");
    for line in r.err.lines() {
        assert!(
            line.starts_with("vmrescue: "),
            "not a message line: {line:?}"
        );
    }
    let prefix = format!("vmrescue: {p}");
    let named: Vec<&str> = r.err.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert!(!named.is_empty(), "no line names {p}: {}", r.err);
    assert!(
        named.iter().any(|l| words.iter().all(|w| l.contains(w))),
        "no line naming {p} says all of {words:?}: {}",
        r.err
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.raw", b"");
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(
        &r,
        &p,
        &["no partition table, volume group or filesystem found"],
    );
    assert_names(&r, &p, &["empty (0 bytes)", "not a disk image"]);
}

#[test]
fn a_small_text_file_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "notes.txt", b"this is not a disk image\n");
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(
        &r,
        &p,
        &["no partition table, volume group or filesystem found"],
    );
    assert_names(&r, &p, &["not a disk image", "25 bytes"]);
}

#[test]
fn a_large_file_with_nothing_recognisable_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let text: Vec<u8> = b"log line: nothing to see here\n".repeat(40_000);
    let p = write(dir.path(), "big.log", &text);
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(
        &r,
        &p,
        &["no partition table, volume group or filesystem found"],
    );
    assert_names(&r, &p, &["not a disk image", "first bytes 6c 6f 67"]);
    // The disk row is still printed.
    assert!(
        r.out.lines().nth(1).unwrap().starts_with("big.log"),
        "{}",
        r.out
    );
}

#[test]
fn a_blank_disk_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("blank.raw");
    std::fs::File::create(&p).unwrap().set_len(1 << 30).unwrap();
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(
        &r,
        &p,
        &["no partition table, volume group or filesystem found"],
    );
    assert_names(&r, &p, &["not a disk image", "zeros"]);
}

#[test]
fn a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = layers(&[dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(&r, dir.path(), &["directory"]);
    assert!(r.out.is_empty());
}

#[test]
fn paths_that_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("vm-999-disk-0.raw");
    let r = layers(&[missing.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(&r, &missing, &["No such file"]);

    let file = write(dir.path(), "file", b"x");
    let under_file = file.join("disk.raw");
    let r = layers(&[under_file.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(&r, &under_file, &["Not a directory"]);

    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let r = layers(&[fifo.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(&r, &fifo, &["not a regular file or block device"]);

    // A bad --disk is as bad as a bad IMAGE.
    let good = common::fixture("part-mbr");
    let r = layers(&[good.to_str().unwrap(), "--disk", missing.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_names(&r, &missing, &["No such file"]);
}

/// A copy of fixture `name` cut to `len` bytes.
fn truncated(name: &str, dir: &Path, len: u64) -> std::path::PathBuf {
    let p = common::fixture_copy(name, dir);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len)
        .unwrap();
    p
}

#[test]
fn truncated_gpt_disk_names_the_missing_backup_and_still_lists_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let p = truncated("part-gpt", dir.path(), 30 << 20);
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert_names(&r, &p, &["backup GPT header", "byte 67108352"]);
    assert_names(
        &r,
        &p,
        &[
            "GPT entry 3 at byte 1280",
            "ends at LBA 67583",
            "past the end",
        ],
    );
    for v in ["p1", "p2", "p3", "p4"] {
        assert!(r.out.contains(&format!("─{v} ")), "{v} missing:\n{}", r.out);
    }
}

#[test]
fn truncated_mbr_disk_names_the_partition_that_no_longer_fits() {
    let dir = tempfile::tempdir().unwrap();
    let p = truncated("demo", dir.path(), 300 << 20);
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert_names(
        &r,
        &p,
        &[
            "MBR partition entry 2 at byte 462",
            "partition 2 ends at byte 2147483648",
            "truncated",
        ],
    );
    assert!(
        r.out.contains("─p1 ") && r.out.contains("─p2 "),
        "{}",
        r.out
    );
}

#[test]
fn truncated_whole_disk_filesystem_says_its_superblock_wants_more() {
    let dir = tempfile::tempdir().unwrap();
    let p = truncated("bare-ext4", dir.path(), 5 << 20);
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert_names(
        &r,
        &p,
        &[
            "ext4 superblock at byte 1024",
            "16777216 bytes",
            "5242880",
            "truncated",
        ],
    );
}

#[test]
fn loop_in_an_ebr_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = common::fixture_copy("part-mbr", dir.path());
    // The second EBR of part-mbr (p6's) links on to the third; point it at the first.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    use std::os::unix::fs::FileExt;
    let mut mbr = [0u8; 512];
    f.read_exact_at(&mut mbr, 0).unwrap();
    let ext = u64::from(u32::from_le_bytes(
        mbr[462 + 8..462 + 12].try_into().unwrap(),
    ));
    let mut ebr = [0u8; 512];
    f.read_exact_at(&mut ebr, ext * 512).unwrap();
    let second = ext
        + u64::from(u32::from_le_bytes(
            ebr[462 + 8..462 + 12].try_into().unwrap(),
        ));
    f.write_all_at(&0u32.to_le_bytes(), second * 512 + 462 + 8)
        .unwrap();
    drop(f);
    let r = layers(&[p.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert_names(
        &r,
        &p,
        &["EBR chain loops back", &format!("byte {}", ext * 512)],
    );
    assert!(
        r.out.contains("─p5 ") && r.out.contains("─p6 "),
        "{}",
        r.out
    );
}

/// `ls`, `cat` and `cp` on a file that holds nothing vmrescue knows say so,
/// naming the file and its size, and exit 2.
#[test]
fn guest_commands_on_a_file_that_is_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest = dest.to_str().unwrap();
    for (name, bytes, size) in [
        ("empty.raw", &b""[..], "0 bytes"),
        ("one.raw", &b"x"[..], "1 byte"),
        ("notes.txt", &b"this is not a disk image\n"[..], "25 bytes"),
    ] {
        let p = write(dir.path(), name, bytes);
        let img = p.to_str().unwrap();
        let runs: [&[&str]; 3] = [
            &["ls", img, "/"],
            &["cat", img, "/etc/fstab"],
            &["cp", img, "/", dest],
        ];
        for args in runs {
            let o = common::vmrescue(args);
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            let want = format!(
                "vmrescue: {img}: no partition table, volume group or filesystem found ({size})\n"
            );
            assert_eq!(err, want, "{args:?}");
        }
    }
    assert!(!Path::new(dest).exists());
}

/// `layers --json` gives each problem as an object: the structure, its byte
/// offset as a number, what is wrong, and the sentence the error stream shows.
#[test]
fn json_problems_carry_numeric_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let p = truncated("part-gpt", dir.path(), 30 << 20);
    let r = layers(&["--json", p.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    let doc: serde_json::Value = serde_json::from_str(&r.out).expect("layers --json output");
    // On the disk's node: the entry of partition 3, which ends past the end.
    let node = doc["disks"][0]["problems"]
        .as_array()
        .expect("disk problems");
    let entry = node
        .iter()
        .find(|q| q["structure"] == "GPT entry 3")
        .unwrap_or_else(|| panic!("no GPT entry 3 problem: {node:?}"));
    assert_eq!(entry["offset"].as_u64(), Some(1280), "{entry}");
    let detail = entry["detail"].as_str().expect("detail");
    assert!(detail.contains("ends at LBA 67583"), "{entry}");
    assert_eq!(
        entry["text"].as_str(),
        Some(format!("GPT entry 3 at byte 1280: {detail}").as_str())
    );
    // The list of all problems: the same, named from the file, each text the
    // line the error stream shows.
    let all = doc["problems"].as_array().expect("problems");
    let q = all
        .iter()
        .find(|q| q["offset"] == 1280)
        .unwrap_or_else(|| panic!("no problem at byte 1280: {all:?}"));
    let text = q["text"].as_str().expect("text");
    assert!(text.starts_with(&p.display().to_string()), "{q}");
    assert!(
        r.err.contains(&format!("vmrescue: {text}")),
        "{text}\n{}",
        r.err
    );
    for q in all {
        assert!(q["text"].is_string() && q["detail"].is_string(), "{q}");
        assert!(q["offset"].is_u64() || q["offset"].is_null(), "{q}");
    }
}
