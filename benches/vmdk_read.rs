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
use std::time::{Duration, Instant};

use vmrescue::image;
use vmrescue::io::ReadAt;

#[path = "support/mod.rs"]
mod support;
use support::{UsageWho, cpu, make_raw, mib_s, sh};

const CHUNK: usize = 4 << 20;

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

fn ours(path: &Path) -> (Duration, u64) {
    let img = image::open(path).unwrap();
    let src = &img.source;
    let size = src.size();
    let mut buf = vec![0u8; CHUNK];
    let mut fold = 0u64;
    let t = Instant::now();
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(CHUNK as u64) as usize;
        src.read_exact_at(pos, &mut buf[..n]).unwrap();
        fold = fold.wrapping_add(u64::from(buf[0]) ^ u64::from(buf[n - 1]));
        pos += n as u64;
    }
    let d = t.elapsed();
    std::hint::black_box(fold);
    (d, size)
}

fn qemu(path: &Path, size: u64) -> Duration {
    let t = Instant::now();
    sh(Command::new("qemu-img")
        .args(["convert", "-n", "-f", "vmdk"])
        .arg(path)
        .arg("--target-image-opts")
        .arg(format!("driver=null-co,size={size}")));
    t.elapsed()
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
        let _ = ours(&path);
        let mut best_ours = Duration::MAX;
        let mut best_qemu = Duration::MAX;
        let (mut cpu_ours, mut cpu_qemu) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..3 {
            let c = cpu(UsageWho::Myself);
            let (d, n) = ours(&path);
            cpu_ours += cpu(UsageWho::Myself) - c;
            assert_eq!(n, size);
            best_ours = best_ours.min(d);
            let c = cpu(UsageWho::Children);
            best_qemu = best_qemu.min(qemu(&path, size));
            cpu_qemu += cpu(UsageWho::Children) - c;
        }
        let (a, b) = (mib_s(size, best_ours), mib_s(size, best_qemu));
        println!(
            "{label:<17} {file_mib:>9} {a:>15.0} {b:>15.0} {:>7.2} {:>9.2} {:>9.2}",
            a / b,
            cpu_ours.as_secs_f64() / 3.0,
            cpu_qemu.as_secs_f64() / 3.0,
        );
    }
}
