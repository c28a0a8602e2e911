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
use support::{CHUNK, bench_size, make_raw, race, race_heading, sh};

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
    let Some(size) = bench_size(1024) else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vmdk-bench");
    let imgs = images(&dir, size);
    println!(
        "VMDK sequential read, {} MiB virtual, {CHUNK}-byte reads (best of 3)",
        size >> 20
    );
    println!("{}", race_heading());
    for (label, path) in imgs {
        let r = race(&path, "vmdk", size);
        println!("{}", r.row(label, &path, size));
    }
}
