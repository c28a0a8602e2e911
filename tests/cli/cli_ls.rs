//! `vmrescue ls` and `vmrescue cat` on a guest tree given as a directory.

use crate::common;
use crate::copy_support;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::vmrescue;
use copy_support::{name, set_times};

/// 2013-02-21 14:03:00 UTC.
const T: i64 = 1_361_455_380;

fn guest(root: &Path) {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    for d in ["etc", "lib64", "opt/glibc-2.14/lib", "var/lib/mysql"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        format!("rescuer:x:{uid}:{gid}::/:/bin/false\nroot:x:0:0::/root:/bin/sh\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        format!("rescuers:x:{gid}:\nroot:x:0:\n"),
    )
    .unwrap();
    let lib: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(root.join("opt/glibc-2.14/lib/libc.so.6"), &lib).unwrap();
    symlink(
        "/opt/glibc-2.14/lib/libc.so.6",
        root.join("lib64/libc.so.6"),
    )
    .unwrap();
    symlink("lib64", root.join("lib")).unwrap();
    std::fs::write(root.join("var/lib/mysql/ibdata1"), b"database").unwrap();
    std::fs::write(root.join(".hidden"), b"").unwrap();
    std::fs::write(root.join(name(b"\x1b[31mred")), b"").unwrap();
    std::fs::write(root.join(name(b"caf\xe9")), b"").unwrap();
    for p in [
        "lib64/libc.so.6",
        "lib",
        "etc/passwd",
        "opt/glibc-2.14/lib/libc.so.6",
    ] {
        set_times(&root.join(p), (T, 0), (T, 0));
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = vmrescue(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("stdout is UTF-8: names are escaped"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lists_sorted_with_escapes_never_raw() {
    let tmp = tempfile::tempdir().unwrap();
    guest(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = run(&["ls", dir]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "\\x1b[31mred\ncaf\\xe9\netc\nlib\nlib64\nopt\nvar\n",
        "sorted bytewise, hidden names left out"
    );
    assert!(!out.contains('\x1b'));
    let (_, out, _) = run(&["ls", "-a", dir, "/"]);
    assert!(out.starts_with(".\n..\n\\x1b[31mred\n.hidden\n"), "{out}");
}

#[test]
fn long_listing_shows_owner_names_from_the_guest_and_link_targets() {
    let tmp = tempfile::tempdir().unwrap();
    guest(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = run(&["ls", "-l", dir, "/lib64"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "total 0");
    assert_eq!(
        lines[1],
        "lrwxrwxrwx 1 rescuer rescuers 29 2013-02-21 14:03 libc.so.6 -> /opt/glibc-2.14/lib/libc.so.6"
    );
    // `-n`: numbers.
    let uid = rustix::process::getuid().as_raw();
    let (_, out, _) = run(&["ls", "-ln", dir, "/lib64"]);
    assert!(out.contains(&format!(" 1 {uid} ")), "{out}");
    // A symlink named with -l is shown itself; without -l (or with `/`) followed.
    let (_, out, _) = run(&["ls", "-l", dir, "lib"]);
    assert!(
        out.starts_with("lrwxrwxrwx ") && out.trim_end().ends_with("lib -> lib64"),
        "{out}"
    );
    let (_, out, _) = run(&["ls", dir, "/lib"]);
    assert_eq!(out, "libc.so.6\n");
    // A file: shown as named.
    let (_, out, _) = run(&["ls", "-l", dir, "/etc/passwd"]);
    assert!(out.contains(" 2013-02-21 14:03 /etc/passwd\n"), "{out}");
}

#[test]
fn recursive_listing_has_headers() {
    let tmp = tempfile::tempdir().unwrap();
    guest(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = run(&["ls", "-R", dir, "/var"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "/var:\nlib\n\n/var/lib:\nmysql\n\n/var/lib/mysql:\nibdata1\n"
    );
}

#[test]
fn missing_paths_and_options_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    guest(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let (code, _, err) = run(&["ls", dir, "/nonexistent"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent: not found"), "{err}");
    // --demo takes the place of IMAGE: the first positional is a path.
    let (code, out, err) = run(&["ls", "--demo", "/lib64"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("libc.so.6\n"), "{out}");
    let (code, _, err) = run(&["ls"]);
    assert_eq!(code, 2);
    assert!(err.contains("IMAGE"), "{err}");
}

#[test]
fn cat_writes_exact_bytes_following_links_inside_the_guest() {
    let tmp = tempfile::tempdir().unwrap();
    guest(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let out = vmrescue(&["cat", dir, "/lib64/libc.so.6"]);
    assert_eq!(out.status.code(), Some(0));
    let want: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    assert_eq!(out.stdout, want);
    let out = vmrescue(&["cat", dir, "/etc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
    // An absolute link resolves in the guest: the host's /etc/hostname is not read.
    symlink("/etc/hostname", tmp.path().join("host")).unwrap();
    let out = vmrescue(&["cat", dir, "/host"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/etc/hostname: not found"));
}

/// `ls -lh` is GNU's human-readable sizes, not the help; `--help` still is.
#[test]
fn dash_h_is_human_sizes() {
    let out = vmrescue(&["ls", "-lh", "--demo", "/var/lib/mysql"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("Usage"), "{text}");
    assert!(text.starts_with("total "), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no {name}: {text}"))
            .to_string()
    };
    assert!(line("ibdata1").contains(" 256M "), "{text}");
    assert!(line("ib_logfile0").contains(" 5.0M "), "{text}");
    assert!(line("mysql").contains(" 4.0K "), "{text}");
    // Without -h, bytes.
    let out = vmrescue(&["ls", "-l", "--demo", "/var/lib/mysql"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 268435456 "));
    let out = vmrescue(&["ls", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
}

/// `ls --json` and `--csv` print one record per entry listed (with -R,
/// everything below), under its guest path, with the fields of `find --json`;
/// the CSV rows are the JSON objects' fields in the header's order.
#[test]
fn json_and_csv_listings_carry_the_same_records() {
    let tmp = tempfile::tempdir().unwrap();
    guest(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = run(&["ls", "-R", "--json", dir, "/opt", "/lib64/libc.so.6"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/lib64/libc.so.6",
            "/opt/glibc-2.14",
            "/opt/glibc-2.14/lib",
            "/opt/glibc-2.14/lib/libc.so.6"
        ],
        "files named first, then each directory's entries, depth first"
    );
    let link = &v[0];
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "/opt/glibc-2.14/lib/libc.so.6");
    assert_eq!(link["user"], "rescuer");
    assert_eq!(link["mtime"], T);
    assert_eq!(v[3]["size"], 70_000, "bytes, whatever -h says");
    // The same records as CSV, and as find prints them.
    let (code, csv, err) = run(&["ls", "-R", "--csv", dir, "/opt", "/lib64/libc.so.6"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5);
    let header: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(header[0], "path");
    for (row, rec) in rows[1..].iter().zip(v.as_array().unwrap()) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{row}");
        for (h, c) in header.iter().zip(&cells) {
            let want = match &rec[*h] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(*c, want, "{h} of {row}");
        }
    }
    let (_, found, _) = run(&["find", dir, "/opt", "-type", "f", "--json"]);
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found[0], v[3], "ls and find print one record shape");
    // Hidden names stay hidden without -a; `.` and `..` are never records.
    let (_, out, _) = run(&["ls", "-a", "--json", dir, "/"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"/.hidden"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with("/.") || n.ends_with("/.."))
    );
    assert!(names.contains(&"/\\x1b[31mred"), "escaped as ls shows it");
}
