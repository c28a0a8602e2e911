//! Copying out of a mostly empty 1 TiB volume: the time follows the data,
//! not the volume's or the files' sizes, and the copy is as sparse as the
//! source.
//!
//! `cargo bench --bench sparse_copy` (needs mke2fs). Builds once, under
//! `target/bench`, a 1 TiB sparse raw image holding an ext4 (made by
//! `mke2fs -d` from a generated tree) with three folders: `/one` (1 GiB of
//! data in 64 MiB files), `/two` (2 GiB, the same way) and `/holes` (one
//! 256 GiB file with 64 MiB of data at each of four places). Times
//! `vmrescue cp` of each folder (best of three, warm; then once with the
//! page cache dropped when run as root) and prints:
//! - seconds per GiB of data for `/one` and `/two`, and their ratio (1.0:
//!   the time is proportional to the data);
//! - the sparse file's copy time against `/one`'s per GiB of data;
//! - the bytes the copies allocate against the bytes their sources allocate
//!   in the image (1.0: as sparse as the source).
//!
//! Under `cargo test` (no `--bench`) a small smoke run with MiB instead of
//! GiB, warm only. Asserts nothing about time.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

/// Sizes of one run: the unit of data (a GiB, or a MiB for the smoke run).
struct Sizes {
    unit: u64,
    name: &'static str,
}

fn noise(f: &std::fs::File, at: u64, len: u64, seed: u64) {
    let mut x = seed | 1;
    let mut block = vec![0u8; (1 << 20).min(len) as usize];
    let mut done = 0;
    while done < len {
        for c in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = (len - done).min(block.len() as u64) as usize;
        f.write_all_at(&block[..n], at + done).unwrap();
        done += n as u64;
    }
}

/// The tree given to `mke2fs -d`.
fn make_tree(tree: &Path, s: &Sizes) {
    let _ = std::fs::remove_dir_all(tree);
    let piece = s.unit / 16;
    for (dir, pieces) in [("one", 16u64), ("two", 32)] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
        for i in 0..pieces {
            let f = std::fs::File::create(tree.join(dir).join(format!("f{i:02}.bin"))).unwrap();
            noise(&f, 0, piece, i + 1);
        }
    }
    std::fs::create_dir_all(tree.join("holes")).unwrap();
    let f = std::fs::File::create(tree.join("holes/big.bin")).unwrap();
    let apparent = 256 * s.unit;
    f.set_len(apparent).unwrap();
    for k in 0..4u64 {
        noise(&f, apparent / 4 * k + s.unit, s.unit / 16, 100 + k);
    }
}

/// The image, built once.
fn image(dir: &Path, s: &Sizes) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let img = dir.join(format!("sparse-1t-{}.img", s.name));
    if img.exists() {
        return img;
    }
    let tree = dir.join(format!("sparse-1t-{}.d", s.name));
    make_tree(&tree, s);
    support::mke2fs_from(&tree, &img, "1T", &["-E", "lazy_itable_init=1,nodiscard"]);
    img
}

/// Bytes allocated under `p` (files only), as `du -B1` counts them.
fn allocated(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            allocated(&e.path())
        } else {
            m.blocks() * 512
        };
    }
    n
}

/// `vmrescue cp IMG /FOLDER OUT/`: the time, and the bytes the copy allocates.
fn cp(img: &Path, folder: &str, out: &Path, cold: bool) -> (Duration, u64) {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    support::settle(cold);
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .arg("cp")
        .arg(img)
        .arg(folder)
        .arg(out)
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = allocated(out);
    let _ = std::fs::remove_dir_all(out);
    (took, bytes)
}

/// The data bytes written into `folder` when the tree was made: what its
/// files allocate in the image (whole blocks), and what a copy as sparse as
/// the source allocates.
fn source_bytes(folder: &str, s: &Sizes) -> u64 {
    match folder {
        "/one" => s.unit,
        "/two" => 2 * s.unit,
        _ => 4 * (s.unit / 16),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let s = if full {
        Sizes {
            unit: 1 << 30,
            name: "gib",
        }
    } else {
        Sizes {
            unit: 1 << 20,
            name: "mib",
        }
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let t = Instant::now();
    let img = image(&dir, &s);
    let meta = std::fs::metadata(&img).unwrap();
    println!(
        "image {} ({:.0} GiB apparent, {} MiB allocated; ready in {:.1} s)",
        img.display(),
        meta.len() as f64 / (1u64 << 30) as f64,
        (meta.blocks() * 512) >> 20,
        t.elapsed().as_secs_f64()
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = support::out_dir(tmp.path(), "vmrescue-sparse-bench");
    let root = nix_is_root();
    let unit = s.unit as f64;
    for cold in [false, true] {
        if cold && !full {
            break;
        }
        if cold && !root {
            println!("cold: not run (dropping the page cache needs root)");
            break;
        }
        let runs = if cold || !full { 1 } else { 3 };
        let best = |folder: &str| {
            if !cold {
                // Warm the page cache.
                let _ = cp(&img, folder, &out, false);
            }
            (0..runs)
                .map(|_| cp(&img, folder, &out, cold))
                .min_by_key(|r| r.0)
                .unwrap()
        };
        let one = best("/one");
        let two = best("/two");
        let holes = best("/holes");
        let per = |d: Duration, bytes: u64| d.as_secs_f64() / (bytes as f64 / unit);
        let label = if cold { "cold" } else { "warm" };
        let u = if s.name == "gib" { "G" } else { "M" };
        println!(
            "{label}: /one {:.3} s ({:.3} s per {u}iB), /two {:.3} s ({:.3} s per {u}iB): \
             time(/two) / (2 × time(/one)) = {:.2} (1.00: proportional to the data)",
            one.0.as_secs_f64(),
            per(one.0, source_bytes("/one", &s)),
            two.0.as_secs_f64(),
            per(two.0, source_bytes("/two", &s)),
            two.0.as_secs_f64() / (2.0 * one.0.as_secs_f64())
        );
        println!(
            "{label}: /holes (256 {u}iB apparent, {} MiB of data) {:.3} s = {:.3} s per {u}iB of data, \
             {:.2}× /one's per {u}iB (1.00: the holes cost nothing)",
            source_bytes("/holes", &s) >> 20,
            holes.0.as_secs_f64(),
            per(holes.0, source_bytes("/holes", &s)),
            per(holes.0, source_bytes("/holes", &s)) / per(one.0, source_bytes("/one", &s))
        );
        for (folder, r) in [("/one", one), ("/two", two), ("/holes", holes)] {
            println!(
                "{label}: {folder} copy allocates {} MiB for {} MiB of source data: {:.3} \
                 (1.000: as sparse as the source)",
                r.1 >> 20,
                source_bytes(folder, &s) >> 20,
                r.1 as f64 / source_bytes(folder, &s) as f64
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::io::stdout().flush();
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}
