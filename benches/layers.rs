//! How fast `vmrescue layers` reads a big disk, and how many bytes it reads.
//!
//! Builds (once, with real tools, as root) a 1 TiB sparse raw image with a
//! full MBR + LVM2 layout — see `benches/layers-image.sh` — into
//! `target/bench/`, then runs the layers scan through a byte-counting
//! source and prints wall time, bytes and reads. Targets: under 20 ms and
//! under 1 MiB read. Also prints how long the bundled demo takes to unpack.
//! Prints numbers; asserts nothing about time.
//!
//!     cargo bench --bench layers
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it makes a
//! smoke run on the bundled demo disk instead.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::Counting;
use vmrescue::io::ReadAt;

fn image_path() -> PathBuf {
    support::bench_image("layers-1t.img", "layers-image.sh")
}

/// One `layers` run: open, scan, build the tree and its text. Returns the
/// time, bytes read, reads made, and the text.
fn run_once(path: &Path) -> (Duration, u64, u64, String, usize) {
    let started = Instant::now();
    let mut image = vmrescue::image::open(path).expect("open image");
    let counting = Arc::new(Counting::new(Arc::clone(&image.source)));
    image.source = Arc::clone(&counting) as Arc<dyn ReadAt>;
    let layout = vmrescue::layers::scan(vec![image]);
    let roots = vmrescue::layers::tree::build(&layout);
    let text = vmrescue::layers::tree::render_text(&roots);
    let took = started.elapsed();
    let problems = layout.all_problems().len();
    (
        took,
        counting.bytes.load(Ordering::Relaxed),
        counting.reads.load(Ordering::Relaxed),
        text,
        problems,
    )
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a smoke run on
    // the bundled demo disk (no root needed, nothing to build).
    let smoke = !std::env::args().any(|a| a == "--bench");
    let scratch = tempfile::tempdir().expect("tempdir");
    let (img, what, runs) = if smoke {
        println!("smoke run on the demo disk (`cargo bench --bench layers` runs the 1 TiB image)");
        let p = vmrescue::demo::unpack_into(scratch.path()).expect("unpack demo");
        (p, "the 2 GiB demo disk", 3)
    } else {
        (image_path(), "a 1 TiB MBR+LVM2 image", 30)
    };
    let (first, bytes, reads, text, problems) = run_once(&img);
    print!("{text}");
    let mut times = vec![first];
    for _ in 0..runs {
        times.push(run_once(&img).0);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!();
    println!(
        "layers on {what} ({} rows under the disk, {problems} problems)",
        text.lines().count() - 2
    );
    println!(
        "  wall time: first {first:?}, median {median:?}, best {:?} (target < 20 ms)",
        times[0]
    );
    println!(
        "  bytes read: {bytes} ({:.1} KiB) in {reads} reads (target < 1 MiB)",
        bytes as f64 / 1024.0
    );
    if bytes >= 1 << 20 {
        println!("  OVER the 1 MiB target");
    }
    if median >= Duration::from_millis(20) {
        println!("  OVER the 20 ms target");
    }

    let mut unpack = Vec::new();
    for i in 0..5 {
        let sub = scratch.path().join(i.to_string());
        std::fs::create_dir(&sub).expect("mkdir");
        let started = Instant::now();
        vmrescue::demo::unpack_into(&sub).expect("unpack demo");
        unpack.push(started.elapsed());
    }
    unpack.sort();
    println!(
        "demo: {} bytes packed, unpacked in {:?} (median of 5)",
        vmrescue::demo::asset().len(),
        unpack[2]
    );
}
