//! Sequential read of a qcow2 image through vmrescue's reader, against
//! `qemu-img convert` of the same image to QEMU's null block driver (reads
//! and decompresses everything, writes nothing), in the same run.
//!
//! `cargo bench --bench qcow2_read` (needs qemu-img). The images are built
//! once under the target directory from 2 GiB of generated data (70% text-like,
//! 30% random) as plain, zlib-compressed and zstd-compressed qcow2, and kept
//! for later runs. `VMRESCUE_BENCH_MIB` sets another size. Prints wall-clock
//! MiB/s (best of three), the ratio (above 1: vmrescue is faster) and the CPU
//! seconds each used per pass (a fairer comparison on a busy machine);
//! asserts nothing about time.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/mod.rs"]
mod support;
use support::{CHUNK, bench_size, make_raw, race, race_heading};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn images(dir: &Path, size: u64) -> Vec<(&'static str, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap();
    let raw = dir.join(format!("source-{size}.raw"));
    let fresh = |p: &Path| p.exists();
    if !fresh(&raw) {
        eprintln!("generating {} MiB of data in {}", size >> 20, raw.display());
        make_raw(&raw, size);
    }
    let mut out = Vec::new();
    for (label, opts) in [
        ("uncompressed", &[][..]),
        ("zlib", &["-c"][..]),
        ("zstd", &["-c", "-o", "compression_type=zstd"][..]),
    ] {
        let img = dir.join(format!("{label}-{size}.qcow2"));
        if !fresh(&img) {
            eprintln!("qemu-img convert {label} → {}", img.display());
            let tmp = img.with_extension("tmp");
            run(Command::new("qemu-img")
                .args(["convert", "-O", "qcow2"])
                .args(opts)
                .arg(&raw)
                .arg(&tmp));
            std::fs::rename(&tmp, &img).unwrap();
        }
        out.push((label, img));
    }
    out
}

fn main() {
    let Some(size) = bench_size(2048) else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("qcow2-bench");
    let imgs = images(&dir, size);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "qcow2 sequential read, {} MiB virtual, {CHUNK}-byte reads, {threads} CPUs (best of 3)",
        size >> 20
    );
    println!("{}", race_heading());
    for (label, path) in imgs {
        let r = race(&path, "qcow2", size);
        println!("{}", r.row(label, &path, size));
    }
}
