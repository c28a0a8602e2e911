//! Shared test helpers: fixtures and running the binary.
//!
//! Fixtures are disk images built by the scripts in `tests/fixtures/make/`
//! with real tools (sfdisk, lvm2, mke2fs, qemu-img...). Compressed copies and
//! the tools' own reports (`sfdisk --json`, `lvs --reportformat json`...) are
//! committed in `tests/fixtures/data/`, so plain `cargo test` needs no root.
//! The README's test command rebuilds them first and points
//! `VMRESCUE_FIXTURES` at the fresh copies.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where committed fixture data lives.
pub fn data_dir() -> PathBuf {
    root().join("tests/fixtures/data")
}

/// Directory holding uncompressed fixtures: `$VMRESCUE_FIXTURES` when set
/// (freshly built by the test command), else a cache under `target/`.
fn fixture_dir() -> PathBuf {
    match std::env::var_os("VMRESCUE_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => root().join("target/fixtures-cache"),
    }
}

/// Path of fixture image `name` (`<name>.img`), decompressing the committed
/// copy on first use; or `<name>.qcow2` among the built fixtures, an overlay
/// on another of them (the doctor's broken guests over `debian12.img`).
/// Panics with the reason when it cannot be had.
pub fn fixture(name: &str) -> PathBuf {
    let overlay = fixture_dir().join(format!("{name}.qcow2"));
    if overlay.exists() {
        return overlay;
    }
    fixture_file(&format!("{name}.img"))
}

/// Path of a fixture file (image or report) by its file name.
pub fn fixture_file(file: &str) -> PathBuf {
    let dir = fixture_dir();
    let path = dir.join(file);
    if std::env::var_os("VMRESCUE_FIXTURES").is_some() {
        assert!(
            path.exists(),
            "{} missing: VMRESCUE_FIXTURES is set, so the fixture scripts should have built it",
            path.display()
        );
        return path;
    }
    // Tests run in parallel threads: one decompresses, the others wait for it.
    static DECOMPRESSING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = DECOMPRESSING.lock().unwrap_or_else(|e| e.into_inner());
    let zst = data_dir().join(format!("{file}.zst"));
    let plain = data_dir().join(file);
    let committed = if zst.exists() { &zst } else { &plain };
    if is_fresh(&path, committed) {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("create fixture cache");
    // Unique per call: tests of one binary run in threads of one process and
    // may ask for the same fixture at the same time.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file}.{}.{n}", std::process::id()));
    if zst.exists() {
        decompress_sparse(&zst, &tmp);
    } else if plain.exists() {
        std::fs::copy(&plain, &tmp).expect("copy fixture");
    } else {
        panic!(
            "fixture {file} is neither in {} nor built: run tests/fixtures/build-all.sh",
            data_dir().display()
        );
    }
    std::fs::rename(&tmp, &path).expect("rename fixture into place");
    path
}

/// Whether the cached copy at `cached` is newer than the committed `source`.
fn is_fresh(cached: &Path, source: &Path) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(cached), mtime(source)) {
        (Some(c), Some(s)) => c >= s,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Read a fixture report (JSON or text) as a string.
pub fn report(file: &str) -> String {
    std::fs::read_to_string(fixture_file(file)).expect("read fixture report")
}

/// Decompress a zstd file, leaving runs of zero blocks as holes.
pub fn decompress_sparse(src: &Path, dst: &Path) {
    let input = File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut dec = zstd::Decoder::new(input).expect("zstd decoder");
    let mut out = File::create(dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = dec.read(&mut buf[filled..]).expect("zstd read");
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        if buf[..filled].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(filled as i64)).expect("seek");
        } else {
            out.write_all(&buf[..filled]).expect("write");
        }
        len += filled as u64;
    }
    out.set_len(len).expect("set_len");
}

/// A private copy of a fixture (for tests that write to the image), always
/// a raw `<name>.img`: an overlay fixture is flattened with its backing
/// file by `qemu-img convert`.
pub fn fixture_copy(name: &str, dir: &Path) -> PathBuf {
    let src = fixture(name);
    let dst = dir.join(format!("{name}.img"));
    let status = if src.extension().is_some_and(|e| e == "qcow2") {
        Command::new("qemu-img")
            .args(["convert", "-q", "-O", "raw"])
            .arg(&src)
            .arg(&dst)
            .status()
            .expect("run qemu-img (qemu-utils)")
    } else {
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&src)
            .arg(&dst)
            .status()
            .expect("run cp")
    };
    assert!(status.success(), "copying {} failed", src.display());
    dst
}

/// How long one run of the binary may take before a test calls it hung.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Run the `vmrescue` binary with `args`; fails the test (killing the
/// process) if it runs longer than [`RUN_LIMIT`]: vmrescue must never hang.
pub fn vmrescue(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vmrescue");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for vmrescue") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmrescue {args:?} hung: still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Whether this process runs as root (for tests that loop-mount).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Fail (never skip) when a test that needs root (loop devices, mounts) runs
/// without it, saying how to run it.
pub fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test needs root ({why}); run it through the README's test command (scripts/test)"
    );
}

/// The undo record a repair's output names (`undo: vmrescue undo FILE`).
#[allow(dead_code)] // not every test binary repairs
pub fn undo_record(out: &str) -> PathBuf {
    out.lines()
        .find_map(|l| l.strip_prefix("undo: vmrescue undo "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no undo line in:\n{out}"))
}
