//! Sequential read of the other disk containers (VMDK monolithicSparse and
//! streamOptimized, VHD dynamic and fixed, VHDX, VDI) through vmrescue's
//! readers, against `qemu-img convert` of the same file to QEMU's null
//! block driver (reads, inflates and discards everything, as a copy to
//! `/dev/null` does), in the same run, warm and cold.
//!
//! `cargo bench --bench container_read` (needs qemu-img; root for the cold
//! rows, which drop the page cache before each pass). The images are made
//! once under the target directory by `qemu-img convert` from 1 GiB of
//! generated data (70% text-like, 30% random, one 4 MiB run of zeros in
//! every 32 MiB, which the converted images keep as holes;
//! `VMRESCUE_BENCH_MIB` sets another size, `VMRESCUE_BENCH_ONLY` a
//! comma-separated list of labels) and kept for later runs. Prints
//! wall-clock MiB/s (warm: best of three; cold: best of two), the ratio
//! (above 1: vmrescue is faster) and the CPU seconds each used per pass;
//! asserts nothing about time.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[path = "support/mod.rs"]
mod support;
use support::{
    CHUNK, UsageWho, bench_size, cpu, make_raw, qemu_null, race, race_heading, read_through,
    settle, sh,
};

/// Label, qemu-img output format, its `-o` options, file extension.
const KINDS: &[(&str, &str, &str, &str)] = &[
    ("vmdk-sparse", "vmdk", "subformat=monolithicSparse", "vmdk"),
    ("vmdk-stream", "vmdk", "subformat=streamOptimized", "vmdk"),
    (
        "vhd-dynamic",
        "vpc",
        "subformat=dynamic,force_size=on",
        "vhd",
    ),
    ("vhd-fixed", "vpc", "subformat=fixed,force_size=on", "vhd"),
    ("vhdx", "vhdx", "subformat=dynamic", "vhdx"),
    ("vdi", "vdi", "static=off", "vdi"),
];

/// The generated data with a 4 MiB run of zeros in every 32 MiB.
fn source(dir: &Path, size: u64) -> PathBuf {
    let raw = dir.join(format!("source-holes-{size}.raw"));
    if !raw.exists() {
        eprintln!("generating {} MiB of data in {}", size >> 20, raw.display());
        let tmp = raw.with_extension("tmp");
        make_raw(&tmp, size);
        let f = std::fs::OpenOptions::new().write(true).open(&tmp).unwrap();
        let zeros = vec![0u8; 4 << 20];
        let mut at = 16 << 20;
        while at + zeros.len() as u64 <= size {
            f.write_all_at(&zeros, at).unwrap();
            at += 32 << 20;
        }
        drop(f);
        std::fs::rename(&tmp, &raw).unwrap();
    }
    raw
}

fn images(dir: &Path, size: u64) -> Vec<(&'static str, &'static str, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap();
    let raw = source(dir, size);
    let only = std::env::var("VMRESCUE_BENCH_ONLY").unwrap_or_default();
    let mut out = Vec::new();
    for &(label, format, opts, ext) in KINDS {
        if !only.is_empty() && !only.split(',').any(|o| o == label) {
            continue;
        }
        let img = dir.join(format!("{label}-{size}.{ext}"));
        if !img.exists() {
            eprintln!("qemu-img convert -O {format} -o {opts} → {}", img.display());
            let tmp = img.with_extension(format!("tmp.{ext}"));
            sh(Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", format, "-o", opts])
                .arg(&raw)
                .arg(&tmp));
            std::fs::rename(&tmp, &img).unwrap();
        }
        out.push((label, format, img));
    }
    out
}

/// Two passes each with the page cache dropped before every pass: the
/// best times and the CPU time summed over the passes (reported as a
/// per-pass figure by [`support::Race::row`], which divides by three: the
/// sums are scaled to three passes here).
fn race_cold(path: &Path, format: &str, size: u64) -> support::Race {
    let mut r = support::Race {
        ours: Duration::MAX,
        qemu: Duration::MAX,
        cpu_ours: Duration::ZERO,
        cpu_qemu: Duration::ZERO,
    };
    for _ in 0..2 {
        settle(true);
        let c = cpu(UsageWho::Myself);
        let (d, n) = read_through(path);
        r.cpu_ours += cpu(UsageWho::Myself) - c;
        assert_eq!(n, size);
        r.ours = r.ours.min(d);
        settle(true);
        let c = cpu(UsageWho::Children);
        r.qemu = r.qemu.min(qemu_null(path, format, size));
        r.cpu_qemu += cpu(UsageWho::Children) - c;
    }
    r.cpu_ours = r.cpu_ours * 3 / 2;
    r.cpu_qemu = r.cpu_qemu * 3 / 2;
    r
}

fn main() {
    let Some(size) = bench_size(1024) else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("container-bench");
    let imgs = images(&dir, size);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "VMDK/VHD/VHDX/VDI sequential read, {} MiB virtual, {CHUNK}-byte reads, {threads} CPUs",
        size >> 20
    );
    println!("warm (page cache filled first; best of 3)");
    println!("{}", race_heading());
    for (label, format, path) in &imgs {
        let r = race(path, format, size);
        println!("{}", r.row(label, path, size));
    }
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok();
    if !cold {
        println!("cold rows skipped: dropping the page cache needs root");
        return;
    }
    println!("cold (page cache dropped before each pass; best of 2)");
    println!("{}", race_heading());
    for (label, format, path) in &imgs {
        let r = race_cold(path, format, size);
        println!("{}", r.row(label, path, size));
    }
}
