//! `C:\...` paths wherever a guest path enters a command (issue #15): every
//! command reads them through `vmrescue::guest::operator_path`, so `find`'s
//! start and `-newer`, `relink`'s link, `--open`, and a volume chosen by its
//! drive letter (`--volume C:`, whose own paths then start at `C:\`) take
//! them as `ls`, `cat` and `cp` do. Over `tests/fixtures/make/windows.sh`'s
//! MBR disk; the bytes are those ntfs-3g read (`windows-c.sha256`).

use crate::common;

use common::{fixture, fixture_file, vmrescue};
use sha2::{Digest, Sha256};
use vmrescue::repair::undo::hex;

fn run(args: &[&str]) -> (String, String, i32) {
    let out = vmrescue(args);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn image() -> String {
    fixture("windows").to_str().unwrap().to_string()
}

/// The SHA-256 ntfs-3g read for C:'s file `path` (from the volume's root).
fn ntfs3g_sum(path: &str) -> String {
    std::fs::read_to_string(fixture_file("windows-c.sha256"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let (sum, p) = l.split_once("  ")?;
            (p == path).then(|| sum.to_string())
        })
        .unwrap_or_else(|| panic!("{path} not in windows-c.sha256"))
}

#[test]
fn find_starts_from_drive_paths_and_takes_them_for_newer() {
    let img = image();
    let (out, err, code) = run(&["find", &img, r"C:\Users", "-name", "*.txt"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/C:/Users/Administrator/Desktop/Größe.txt",
            "/C:/Users/Administrator/Documents/notes.txt"
        ]
    );
    // Another case, the other slash; -newer a drive path too: written
    // after kernel32.dll (2019), by modification time as find compares.
    let (out, err, code) = run(&[
        "find",
        &img,
        "c:/windows/SYSTEM32",
        "-type",
        "f",
        "-newer",
        r"C:\Windows\System32\kernel32.dll",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut found: Vec<&str> = out.lines().collect();
    found.sort();
    assert_eq!(
        found,
        [
            "/C:/Windows/System32/config/SOFTWARE",
            "/C:/Windows/System32/config/SYSTEM",
            "/C:/Windows/System32/drivers/viostor.sys",
            "/C:/Windows/System32/vioscsi.dll"
        ]
    );
    // A drive path that is not there: said, as for any path.
    let (_, err, code) = run(&["find", &img, r"C:\Users\Nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("/C:/Users/Nobody"), "{err}");
}

#[test]
fn volume_by_drive_letter_reads_its_paths_from_that_drive() {
    let img = image();
    for spec in ["C:", "c:", r"C:\", "C:/"] {
        let (out, err, code) = run(&["ls", "--volume", spec, &img]);
        assert_eq!(code, 0, "{spec}: {err}");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["Program Files", "Users", "Windows"],
            "{spec}"
        );
    }
    let (out, err, code) = run(&["ls", "--volume", "d:", &img, r"D:\Backups"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["db"]);
    // The volume's own paths still work; a drive path is read from its root.
    let want = ntfs3g_sum("/Users/Administrator/Documents/notes.txt");
    for p in [
        "/Users/Administrator/Documents/notes.txt",
        r"C:\Users\Administrator\Documents\notes.txt",
        "c:/users/administrator/DOCUMENTS/notes.TXT",
    ] {
        let out = vmrescue(&["cat", "--volume", "C:", &img, p]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hex(&Sha256::digest(&out.stdout)), want, "{p}");
    }
    // A copy out of C: alone by a drive path.
    let dest = tempfile::tempdir().unwrap();
    let (_, err, code) = run(&[
        "cp",
        "--volume",
        "C:",
        &img,
        r"C:\Users\Administrator\Desktop",
        dest.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(dest.path().join("Desktop/Größe.txt").is_file());
    // Another drive's path is not on this volume.
    let (_, _, code) = run(&["ls", "--volume", "C:", &img, r"D:\Backups"]);
    assert_ne!(code, 0);
    // A letter no volume has: the volumes are named.
    let (_, err, code) = run(&["ls", "--volume", "E:", &img]);
    assert_eq!(code, 2);
    assert!(
        err.contains("volume \"E:\"") && err.contains("p1 (ntfs)"),
        "{err}"
    );
}

#[test]
fn doctor_on_the_system_drive_alone_is_the_windows_doctor() {
    let (out, err, code) = run(&["doctor", "--volume", "C:", &image()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("windows   a Windows guest: the Linux checks do not apply"),
        "{out}"
    );
    assert!(!out.contains("/etc/fstab"), "{out}");
    // The volume's paths as the operator knows them: from C:\.
    assert!(
        out.contains(r"written or installed last under C:\Windows\System32 are listed"),
        "{out}"
    );
    assert!(
        out.contains(r"Files under C:\Windows\System32 written or installed last"),
        "{out}"
    );
    assert!(
        out.contains(r"  - C:\Windows\System32\drivers\viostor.sys"),
        "{out}"
    );
    assert!(!out.contains("/Windows/System32"), "{out}");
    // Its filesystem by drive, not `/`.
    assert!(
        out.contains("  space     1 filesystem (C:\\ 6% used): 0 full or nearly\n"),
        "{out}"
    );
    // The whole guest says the same, each filesystem by its drive.
    let (out, err, code) = run(&["doctor", &image()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(r"written or installed last under C:\Windows\System32 are listed"),
        "{out}"
    );
    assert!(
        out.contains("  space     2 filesystems (C:\\ 6% used, D:\\ 14% used): 0 full or nearly\n"),
        "{out}"
    );
    assert!(!out.contains("/C:"), "{out}");
    // Another drive alone is a Windows guest's drive too: no Linux checks.
    let (out, err, code) = run(&["doctor", "--volume", "D:", &image()]);
    assert_eq!(code, 0, "{out}{err}");
    let checked: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        checked,
        [
            r"  windows   D:\ of a Windows guest: the Linux checks do not apply; no Windows\System32 folder on it",
            r"  space     1 filesystem (D:\ 14% used): 0 full or nearly",
        ],
        "{out}"
    );
}

/// `doctor --json` on a Windows guest keeps its guest paths (`path`,
/// `windows_system32`) and adds each as Windows writes it, the same from
/// the whole guest (`/C:/Windows/...`) and from C: alone (`/Windows/...`);
/// null on a Linux guest. The files are those ntfs-3g wrote
/// (`windows-c.sha256`).
#[test]
fn doctor_json_adds_windows_paths_beside_guest_paths() {
    // Exit code 1: the demo's findings.
    let json = |args: &[&str]| -> serde_json::Value {
        let (out, err, code) = run(args);
        assert!(code == 0 || code == 1, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let img = image();
    for (args, prefix) in [
        (vec!["doctor", "--json", &img], "/C:"),
        (vec!["doctor", "--json", "--volume", "C:", &img], ""),
    ] {
        let d = json(&args);
        assert_eq!(
            d["windows_system32"],
            format!("{prefix}/Windows/System32"),
            "{args:?}"
        );
        assert_eq!(
            d["system32_windows_path"], r"C:\Windows\System32",
            "{args:?}"
        );
        let recent = d["recent"].as_array().unwrap();
        assert_eq!(recent.len(), 8, "{args:?}");
        for r in recent {
            let path = r["path"].as_str().unwrap();
            let inner = path.strip_prefix(prefix).unwrap();
            // A file ntfs-3g wrote, at that path of C:.
            ntfs3g_sum(inner);
            assert_eq!(
                r["windows_path"],
                format!("C:{}", inner.replace('/', "\\")),
                "{args:?}"
            );
        }
        assert_eq!(
            recent[0]["windows_path"],
            r"C:\Windows\System32\drivers\viostor.sys"
        );
    }
    // A Linux guest: null.
    let d = json(&["doctor", "--json", "--demo"]);
    assert!(d["system32_windows_path"].is_null());
    assert!(!d["recent"].as_array().unwrap().is_empty());
    for r in d["recent"].as_array().unwrap() {
        assert!(r["windows_path"].is_null(), "{r}");
    }
    for f in d["findings"].as_array().unwrap() {
        assert!(f["windows_path"].is_null(), "{f}");
    }
}

#[test]
fn relink_and_open_take_drive_paths() {
    let img = image();
    // relink finds the file by its drive path (and refuses: it is not a
    // link), rather than not finding it.
    let (_, err, code) = run(&[
        "relink",
        "--dry-run",
        &img,
        r"c:\users\administrator\desktop\größe.txt",
    ]);
    assert_eq!(code, 2);
    assert!(!err.contains("not found"), "{err}");
    assert!(err.contains("not a symbolic link"), "{err}");
    let (_, err, code) = run(&["relink", "--dry-run", &img, r"C:\Users\Nobody"]);
    assert_eq!(code, 2);
    assert!(err.contains("/C:/Users/Nobody: not found"), "{err}");
    // The same on the volume C: alone, whose own paths start at C:\.
    let (_, err, code) = run(&[
        "relink",
        "--dry-run",
        "--volume",
        "C:",
        &img,
        r"c:\users\administrator\desktop\größe.txt",
    ]);
    assert_eq!(code, 2);
    assert!(!err.contains("not found"), "{err}");
    assert!(err.contains("not a symbolic link"), "{err}");
    let (_, err, code) = run(&[
        "relink",
        "--dry-run",
        "--volume",
        "C:",
        &img,
        r"C:\Users\Nobody",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/Users/Nobody") && err.contains("not found"),
        "{err}"
    );
    assert!(!err.contains(r"C:\Users"), "{err}");
    // --open with a drive path: the file is found (it holds text, not a disk).
    let (_, err, code) = run(&[
        "ls",
        "--open",
        r"C:\Users\Administrator\Documents\notes.txt",
        &img,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/C:/Users/Administrator/Documents/notes.txt is not a disk image"),
        "{err}"
    );
}

/// relink reads a drive path before anything is refused, and says what
/// stops it in the operator's words: a file that is not a link is named
/// as such (before the filesystem's refusal, which would not help), and a
/// real link (`D:\Shares\Public\latest.txt`, made by ntfs-3g) is refused
/// with its drive path, its volume and drive, why (NTFS is not written in
/// place) and the way that can write it (the kernel engine). Nothing is
/// written: the image's bytes are unchanged.
#[test]
fn relink_refusals_name_the_drive_path() {
    let img = image();
    let before = hex(&Sha256::digest(std::fs::read(&img).unwrap()));
    // `relink --dry-run [--volume V] [--to T] IMAGE PATH`.
    let relink = |volume: Option<&str>, to: Option<&str>, path: &str| {
        let mut args = vec!["relink", "--dry-run"];
        args.extend(volume.iter().flat_map(|v| ["--volume", *v]));
        args.extend(to.iter().flat_map(|t| ["--to", *t]));
        args.extend([img.as_str(), path]);
        run(&args)
    };
    for volume in [None, Some("C:"), Some("p1")] {
        let (out, err, code) = relink(volume, None, r"c:\users\administrator\desktop\größe.txt");
        assert_eq!(code, 2, "{volume:?}: {out}{err}");
        assert_eq!(
            err.trim_end(),
            r"vmrescue: C:\Users\Administrator\Desktop\Größe.txt: not a symbolic link (it is a regular file); relink repairs symbolic links only",
            "{volume:?}"
        );
    }
    let (_, err, code) = relink(None, None, r"C:\Users");
    assert_eq!(code, 2);
    assert!(
        err.contains(r"C:\Users: not a symbolic link (it is a directory)"),
        "{err}"
    );
    // The link is one: ls shows it as ntfs-3g wrote it.
    let (out, err, code) = run(&["ls", "-l", &img, r"D:\Shares\Public"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("latest.txt -> readme.txt"), "{out}");
    for volume in [None, Some("D:"), Some("p2")] {
        for to in [None, Some("readme.txt")] {
            let (out, err, code) = relink(volume, to, r"d:\shares\PUBLIC\Latest.txt");
            assert_eq!(code, 2, "{volume:?} {to:?}: {out}{err}");
            assert_eq!(
                err.trim_end(),
                "vmrescue: refused: D:\\Shares\\Public\\latest.txt is on p2 (D:), which holds ntfs: \
                 vmrescue reads NTFS but has no NTFS writer (a link there is a reparse point, or an \
                 Interix link file as ntfs-3g makes it); use the kernel engine (`--engine kernel`, \
                 as root), which replaces the link through a mounted filesystem",
                "{volume:?} {to:?}"
            );
        }
    }
    assert_eq!(hex(&Sha256::digest(std::fs::read(&img).unwrap())), before);
}
