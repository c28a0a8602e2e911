//! Sequential read of VMDK disks through vmrescue's reader (monolithicSparse
//! and streamOptimized), against `qemu-img convert` of the same file to
//! QEMU's null block driver (reads and inflates everything, writes
//! nothing), in the same run.
//!
//! `cargo bench --bench vmdk_read` (needs qemu-img). The images are made
//! once under the target directory from 1 GiB of generated data (70%
//! text-like, 30% random; `VMRESCUE_BENCH_MIB` sets another size) and kept
//! for later runs. Prints wall-clock MiB/s (best of three), the ratio (above
//! 1: vmrescue is faster) and the CPU seconds each used per pass; asserts
//! nothing about time.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/mod.rs"]
mod support;
use support::{CHUNK, Race, make_raw, mib_s, race, sh};

fn images(dir: &Path, size: u64) -> Vec<(&'static str, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap();
    let raw = dir.join(format!("source-{size}.raw"));
    if !raw.exists() {
        eprintln!("generating {} MiB of data in {}", size >> 20, raw.display());
        make_raw(&raw, size);
    }
    let mut out = Vec::new();
    for sub in ["monolithicSparse", "streamOptimized"] {
        let img = dir.join(format!("{sub}-{size}.vmdk"));
        if !img.exists() {
            eprintln!("qemu-img convert {sub} → {}", img.display());
            let tmp = img.with_extension("tmp.vmdk");
            sh(Command::new("qemu-img")
                .args(["convert", "-O", "vmdk", "-o"])
                .arg(format!("subformat={sub}"))
                .arg(&raw)
                .arg(&tmp));
            std::fs::rename(&tmp, &img).unwrap();
        }
        out.push((sub, img));
    }
    out
}

fn main() {
    // `cargo test --benches` runs bench programs with no arguments too; only
    // `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mib: u64 = std::env::var("VMRESCUE_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let size = mib << 20;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vmdk-bench");
    let imgs = images(&dir, size);
    println!(
        "VMDK sequential read, {} MiB virtual, {CHUNK}-byte reads (best of 3)",
        size >> 20
    );
    println!(
        "{:<17} {:>9} {:>15} {:>15} {:>7} {:>9} {:>9}",
        "image", "file MiB", "vmrescue MiB/s", "qemu-img MiB/s", "ratio", "our CPU s", "qemu CPU s"
    );
    for (label, path) in imgs {
        let file_mib = std::fs::metadata(&path).unwrap().len() >> 20;
        let Race {
            ours: best_ours,
            qemu: best_qemu,
            cpu_ours,
            cpu_qemu,
        } = race(&path, "vmdk", size);
        let (a, b) = (mib_s(size, best_ours), mib_s(size, best_qemu));
        println!(
            "{label:<17} {file_mib:>9} {a:>15.0} {b:>15.0} {:>7.2} {:>9.2} {:>9.2}",
            a / b,
            cpu_ours.as_secs_f64() / 3.0,
            cpu_qemu.as_secs_f64() / 3.0,
        );
    }
}
