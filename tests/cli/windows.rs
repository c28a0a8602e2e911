//! Windows guests (issue #15): `tests/fixtures/make/windows.sh` makes an
//! MBR and a GPT disk with an NTFS system volume (hives written by hivex's
//! `hivexregedit`) and an NTFS data volume, through ntfs-3g. vmrescue must
//! name the guest from its hives as `hivexregedit --export` reads them,
//! give the volumes their drive letters from `MountedDevices`, and read
//! `C:\...` paths with the bytes ntfs-3g reads (`windows-c.sha256`,
//! `windows-d.sha256`).

use crate::common;

use common::{fixture, fixture_file, vmrescue};
use sha2::{Digest, Sha256};
use vmrescue::repair::undo::hex;

fn stdout(args: &[&str]) -> (String, String, i32) {
    let out = vmrescue(args);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// `PATH -> SHA-256` of one volume as ntfs-3g read it.
fn sums(file: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(fixture_file(file))
        .unwrap()
        .lines()
        .map(|l| {
            let (sum, path) = l.split_once("  ").unwrap();
            (path.to_string(), sum.to_string())
        })
        .collect()
}

/// A `"name"=hex(1):…` string of `hivexregedit --export`, decoded.
fn exported(name: &str) -> String {
    let text = std::fs::read_to_string(fixture_file("windows.hive-export")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("\"{name}\"=hex(1):")))
        .unwrap_or_else(|| panic!("{name} not in windows.hive-export"));
    let bytes: Vec<u8> = line
        .split_once(':')
        .unwrap()
        .1
        .split(',')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).unwrap()
}

#[test]
fn layers_names_the_windows_guest_and_its_drive_letters() {
    for image in ["windows", "windows-gpt"] {
        let img = fixture(image);
        let (out, err, code) = stdout(&["layers", img.to_str().unwrap()]);
        let line = |start: &str| {
            out.lines()
                .find(|l| l.contains(start))
                .unwrap_or_else(|| panic!("{image}: no {start:?} line in\n{out}"))
                .to_string()
        };
        let p1 = line("─p1 ");
        assert!(
            p1.contains("C:\\  guest root: Windows Server 2019 Standard (17763) — WIN-DB01"),
            "{image}: {p1}"
        );
        assert!(line("─p2 ").contains("D:\\"), "{image}\n{out}");
        // The mount table: the letters, what each names, and the two that
        // name nothing here.
        assert!(line("/C: ").contains(" p1 "), "{image}\n{out}");
        assert!(line("/D: ").contains(" p2 "), "{image}\n{out}");
        assert!(line("/E: ").contains("CdRom"), "{image}\n{out}");
        assert!(
            line("/E: ").contains("missing: a device of the running guest"),
            "{image}\n{out}"
        );
        assert!(
            line("/F: ").contains("missing: this partition is not on these disks"),
            "{image}\n{out}"
        );
        // F: points at nothing: a problem, with the exit code that says so.
        assert_eq!(code, 1, "{image}: {err}");
        assert!(
            err.contains(
                "p1: SYSTEM hive: MountedDevices: drive F: names MBR disk 0x5eed1e55, \
                 partition at byte 943718400, which is not on these disks"
            ),
            "{image}: {err}"
        );
        assert_eq!(err.matches("MountedDevices").count(), 1, "{image}: {err}");
    }
}

/// The guest's root lists its letters; one that shows no volume here (E:,
/// a CD-ROM; F:, a partition not on these disks) is an empty folder with
/// the system drive's times, not a made-up date.
#[test]
fn letters_without_a_volume_are_folders_dated_as_the_system_drive() {
    let img = fixture("windows");
    let (out, err, _) = stdout(&["ls", "-l", img.to_str().unwrap(), "/"]);
    let date = |name: &str| {
        let line = out
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no {name} in\n{out}\n{err}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols[cols.len() - 3..cols.len() - 1].join(" ")
    };
    let c = date("C:");
    assert!(!c.starts_with("2013-"), "{out}");
    assert_eq!(date("E:"), c, "{out}");
    assert_eq!(date("F:"), c, "{out}");
}

#[test]
fn layers_json_carries_what_the_hives_say_as_hivex_reads_them() {
    let img = fixture("windows");
    let (out, _, _) = stdout(&["layers", "--json", img.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p1 = v["disks"][0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["volume"] == "p1")
        .unwrap_or_else(|| panic!("no p1 in {out}"));
    let w = &p1["windows"];
    assert_eq!(w["product_name"], exported("ProductName"));
    assert_eq!(w["current_build"], exported("CurrentBuild"));
    assert_eq!(w["edition_id"], exported("EditionID"));
    assert_eq!(w["display_version"], exported("ReleaseId"));
    assert_eq!(w["computer_name"], "WIN-DB01");
    // Select\Current is 2: not ControlSet001's stale name.
    assert_eq!(w["control_set"], "ControlSet002");
    assert_eq!(p1["os"], "Windows Server 2019 Standard (17763)");
    assert_eq!(p1["mountpoint"], "C:\\");
    let drives: Vec<(String, serde_json::Value, bool)> = w["drives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["letter"].as_str().unwrap().to_string(),
                d["volume"].clone(),
                d["missing"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        drives,
        vec![
            ("C".to_string(), "p1".into(), false),
            ("D".to_string(), "p2".into(), false),
            ("E".to_string(), serde_json::Value::Null, false),
            ("F".to_string(), serde_json::Value::Null, true),
        ]
    );
}

/// `C:\...` in Windows' spelling, from a path of the sums file.
fn windows_path(letter: char, path: &str) -> String {
    format!("{letter}:{}", path.replace('/', "\\"))
}

#[test]
fn cat_of_drive_paths_gives_the_bytes_ntfs3g_reads() {
    for image in ["windows", "windows-gpt"] {
        let img = fixture(image);
        let img = img.to_str().unwrap();
        for letter in ['C', 'D'] {
            let file = format!("{image}-{}.sha256", letter.to_ascii_lowercase());
            let files = sums(&file);
            assert!(files.len() >= 2, "{file}");
            for (path, sum) in files {
                let p = windows_path(letter, &path);
                let out = vmrescue(&["cat", img, &p]);
                assert!(
                    out.status.success(),
                    "{image} {p}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(hex(&Sha256::digest(&out.stdout)), sum, "{image} {p}");
            }
        }
    }
}

#[test]
fn drive_paths_take_either_slash_and_any_case() {
    let img = fixture("windows");
    let img = img.to_str().unwrap();
    let want = sums("windows-c.sha256")
        .into_iter()
        .find(|(p, _)| p == "/Users/Administrator/Documents/notes.txt")
        .unwrap()
        .1;
    for p in [
        r"C:\Users\Administrator\Documents\notes.txt",
        "c:/users/ADMINISTRATOR/documents/NOTES.TXT",
        r"c:\Users/Administrator\\Documents/notes.txt",
    ] {
        let out = vmrescue(&["cat", img, p]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hex(&Sha256::digest(&out.stdout)), want, "{p}");
    }
    // The top: the drive letters.
    let (out, _, _) = stdout(&["ls", img]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["C:", "D:", "E:", "F:"]);
    let (out, err, code) = stdout(&["ls", img, r"C:\Users"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["Administrator", "Public"]);
    // A copy is named as the folder stores the name.
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().to_str().unwrap();
    let out = vmrescue(&["cp", img, r"c:\users\administrator\desktop\GRößE.TXT", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["Größe.txt"]);
    let (out, err, code) = stdout(&["ls", img, "d:"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["Backups", "Shares"]);
}

#[test]
fn cp_of_a_drive_folder_gives_the_bytes_ntfs3g_reads() {
    let img = fixture("windows");
    let dest = tempfile::tempdir().unwrap();
    let out = vmrescue(&[
        "cp",
        img.to_str().unwrap(),
        r"C:\Users\Administrator",
        dest.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut copied = 0;
    for (path, sum) in sums("windows-c.sha256") {
        let Some(rest) = path.strip_prefix("/Users/") else {
            continue;
        };
        if !rest.starts_with("Administrator/") {
            continue;
        }
        let got = std::fs::read(dest.path().join(rest)).unwrap();
        assert_eq!(hex(&Sha256::digest(&got)), sum, "{path}");
        copied += 1;
    }
    assert_eq!(copied, 3);
}

#[test]
fn a_damaged_system_hive_is_a_problem_and_the_rest_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("w.img");
    let mut bytes = std::fs::read(fixture("windows")).unwrap();
    // The key node named MountedDevices (a compressed name at byte 76 of
    // its nk cell's data): its signature spoiled.
    let name = b"MountedDevices";
    let at = (76..bytes.len() - name.len())
        .find(|&i| &bytes[i..i + name.len()] == name && &bytes[i - 76..i - 74] == b"nk")
        .expect("the MountedDevices key in the image");
    bytes[at - 76..at - 74].copy_from_slice(b"xx");
    std::fs::write(&img, &bytes).unwrap();
    let (out, err, code) = stdout(&["layers", img.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("p1: SYSTEM hive: nk cell at byte ") && err.contains("not a key node"),
        "{err}"
    );
    // SOFTWARE still names the guest; without drive letters, the system
    // volume is C:.
    assert!(
        out.contains("C:\\  guest root: Windows Server 2019 Standard (17763) — WIN-DB01"),
        "{out}"
    );
    let (out, err, _) = stdout(&["ls", img.to_str().unwrap()]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["C:"], "{err}");
}

#[test]
fn doctor_lists_what_was_written_or_installed_last_under_system32() {
    let img = fixture("windows");
    let (out, err, code) = stdout(&["doctor", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // None of the Linux checks' findings (fstab, boot loader, accounts).
    assert!(out.starts_with("No reason found why"), "{out}");
    assert!(!out.contains("fstab"), "{out}");
    assert!(
        out.contains("windows   a Windows guest: the Linux checks do not apply"),
        "{out}"
    );
    let listed: Vec<&str> = out
        .lines()
        .skip_while(|l| {
            !l.starts_with("Files under C:\\Windows\\System32 written or installed last")
        })
        .skip(1)
        .map(|l| l.rsplit_once("  - ").unwrap().1)
        .collect();
    // Newest first: the two changed a day ago, the hives, then netkvm.sys,
    // whose modification time is 2018 but which was installed 3 days ago
    // (its creation time), before what has not changed since 2019.
    assert_eq!(listed.len(), 8, "{out}");
    let mut first_two = listed[..2].to_vec();
    first_two.sort();
    assert_eq!(
        first_two,
        [
            r"C:\Windows\System32\drivers\viostor.sys",
            r"C:\Windows\System32\vioscsi.dll"
        ]
    );
    assert_eq!(
        listed[4], r"C:\Windows\System32\drivers\netkvm.sys",
        "{out}"
    );
    let mut old = listed[5..].to_vec();
    old.sort();
    assert_eq!(
        old,
        [
            r"C:\Windows\System32\drivers\disk.sys",
            r"C:\Windows\System32\kernel32.dll",
            r"C:\Windows\System32\ntoskrnl.exe"
        ]
    );
    assert!(
        out.contains("2019-01-10 10:00  - C:\\Windows\\System32\\kernel32.dll"),
        "{out}"
    );
}
