//! `vmrescue … | head`: a reader that goes away ends the output quietly
//! (no panic, no "failed printing" message, the command's own exit code).

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};

/// Run `args` with stdout a pipe whose reader is closed at once (before
/// the program writes: every write fails with EPIPE); the exit code and
/// standard error.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vmrescue");
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    (status.code(), err)
}

#[test]
fn commands_end_quietly_when_the_reader_goes_away() {
    let pve = common::root().join("tests/fixtures/pve/host1");
    let pve = pve.to_str().expect("utf-8 path");
    let cases: [(&[&str], i32); 6] = [
        (&["layers", "--demo"], 0),
        (&["layers", "--demo", "--json"], 0),
        (&["doctor", "--demo"], 1),
        (&["ls", "-lR", "--demo", "/"], 0),
        (&["relink", "--demo", "/lib64/libc.so.6", "--dry-run"], 0),
        (&["--pve-root", pve], 0),
    ];
    for (args, code) in cases {
        let (got, err) = with_closed_stdout(args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("failed printing"), "{args:?}: {err}");
        assert_eq!(got, Some(code), "{args:?}: {err}");
    }
}

/// Output that cannot be written for another reason than a closed pipe
/// (here a full disk: `/dev/full`) is said on stderr and exits 2.
#[test]
fn a_failed_write_to_stdout_exits_2() {
    let cases: [&[&str]; 6] = [
        &["layers", "--demo"],
        &["layers", "--demo", "--json"],
        &["doctor", "--demo"],
        &["ls", "-lR", "--demo", "/"],
        &["ls", "--demo", "/etc/fstab"],
        &["cat", "--demo", "/etc/fstab"],
    ];
    for args in cases {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full");
        let out = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(full)
            .output()
            .expect("run vmrescue");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("writing to standard output: No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `cp` whose summary cannot be written (standard error on a full disk)
/// exits 2 instead of claiming success, and does not panic.
#[test]
fn cp_exits_2_when_its_summary_cannot_be_written() {
    let dest = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let status = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .args(["cp", "--demo", "/etc/fstab"])
        .arg(dest.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(full)
        .status()
        .expect("run vmrescue");
    assert_eq!(status.code(), Some(2));
    // The copy itself was made.
    assert!(dest.path().join("fstab").is_file());
}
