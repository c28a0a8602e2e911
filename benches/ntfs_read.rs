//! NTFS reader benchmark (issue #15): copying out one 1 GiB file and a tree
//! of 30,000 small files (0 to 8 KiB, in 300 directories; the smallest are
//! resident in their MFT records) from an NTFS image, with `vmrescue cp`'s
//! own copy job (`ops::copy` over `fs::ntfs`), against `cp -a` from a
//! read-only ntfs-3g (FUSE) mount and 7-Zip extracting the same paths from
//! the same image (`7zz x -tntfs`), in the same run, with a warm and a cold
//! page cache. Prints times, rates, ratios and vmrescue's peak RSS (`VmHWM`
//! of the child process that runs it); asserts nothing about time.
//!
//! Run as root (ntfs-3g's FUSE mount, `drop_caches`):
//! `cargo bench --bench ntfs_read`. The image (mkntfs, filled through
//! ntfs-3g) is built once under `$VMRESCUE_BENCH_DIR` (default
//! `target/bench-ntfs`). `cargo test --all-targets` runs this program
//! without `--bench`: then a small image (16 MiB file, 300 small files) is
//! built and every row run once, as a smoke run. `VMRESCUE_BENCH_ONLY=big`
//! (or `tree`) runs one group of rows.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;
use support::{median_of_runs, median_wall, peak_rss_kib, reps, run_child, sh};

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use vmrescue::fs::FsView;
use vmrescue::fs::ntfs::NtfsVolume;
use vmrescue::io::{FileSource, ReadAt};
use vmrescue::ops::copy::{CopyJob, CopyOptions, CopySource};

const PER_DIR: usize = 100;

/// What the image holds: the big file's size and the number of small files.
#[derive(Clone, Copy)]
struct Size {
    big: u64,
    files: usize,
    image: u64,
}

const FULL: Size = Size {
    big: 1 << 30,
    files: 30_000,
    image: 2 << 30,
};
const SMOKE: Size = Size {
    big: 16 << 20,
    files: 300,
    image: 64 << 20,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    // `cargo test --all-targets` runs bench programs too (without
    // `--bench`): then a small image, as a smoke run.
    let bench = args.iter().any(|a| a == "--bench");
    let size = if bench { FULL } else { SMOKE };
    if !nix::unistd::Uid::effective().is_root() {
        println!("ntfs_read: needs root (ntfs-3g's FUSE mount, drop_caches): not run");
        return;
    }
    for tool in ["mkntfs", "ntfs-3g", "7zz"] {
        if !has(tool) {
            println!("ntfs_read: needs {tool} (packages ntfs-3g, 7zip): not run");
            return;
        }
    }
    let dir = std::env::var_os("VMRESCUE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(if bench {
                "target/bench-ntfs"
            } else {
                "target/bench-ntfs-smoke"
            })
        });
    std::fs::create_dir_all(&dir).expect("bench directory");
    let image = dir.join("ntfs-bench.img");
    build_image(&dir, &image, size);
    let mnt = Mount::new(&image);
    let only = std::env::var("VMRESCUE_BENCH_ONLY").ok();
    let want = |g: &str| only.as_deref().is_none_or(|o| o == g);
    let mut rows: Vec<Row> = Vec::new();
    for cold in [false, true] {
        let c = if cold { "cold" } else { "warm" };
        let mut tasks: Vec<(&str, &str, u64)> = Vec::new();
        if want("big") {
            tasks.push(("big", "big.bin", size.big));
        }
        if want("tree") {
            tasks.push(("tree", "tree", tree_bytes(size.files)));
        }
        for (task, path, bytes) in tasks {
            rows.push(ours(&dir, task, path, bytes, &image, cold, c));
            let from = mnt.dir.join(path);
            let cp = |out: &Path| sh(Command::new("cp").arg("-a").arg(&from).arg(out));
            rows.push(tool(&dir, task, CP, bytes, cold, c, &cp));
            let x = |out: &Path| {
                sh(Command::new("7zz")
                    .args(["x", "-y", "-tntfs"])
                    .arg(&image)
                    .arg(format!("-o{}", out.display()))
                    .arg(path))
            };
            rows.push(tool(&dir, task, SEVEN, bytes, cold, c, &x));
        }
    }
    drop(mnt);
    report(&rows, bench);
}

const CP: &str = "ntfs-3g cp -a";
const SEVEN: &str = "7zz x";

struct Row {
    task: &'static str,
    tool: &'static str,
    cache: &'static str,
    secs: f64,
    bytes: u64,
    rss_kib: Option<u64>,
}

fn report(rows: &[Row], bench: bool) {
    println!();
    println!(
        "each time is the median of {} runs (VMRESCUE_BENCH_REPS)",
        reps()
    );
    println!(
        "{:<5} {:<5} {:<14} {:>9} {:>10} {:>10}",
        "task", "cache", "tool", "seconds", "MB/s", "peak RSS"
    );
    for r in rows {
        let rss = r
            .rss_kib
            .map_or("-".into(), |k| format!("{} MiB", k / 1024));
        println!(
            "{:<5} {:<5} {:<14} {:>9.3} {:>10.0} {:>10}",
            r.task,
            r.cache,
            r.tool,
            r.secs,
            r.bytes as f64 / r.secs / 1e6,
            rss
        );
    }
    println!();
    println!(
        "ratios (vmrescue time / other tool's time; <= 1.00 means vmrescue is as fast or faster):"
    );
    for r in rows.iter().filter(|r| r.tool == "vmrescue") {
        for o in rows
            .iter()
            .filter(|o| o.tool != "vmrescue" && o.cache == r.cache && o.task == r.task)
        {
            println!(
                "  {:<5} {:<5} vs {:<14} {:.2}",
                r.task,
                r.cache,
                o.tool,
                r.secs / o.secs
            );
        }
    }
    let rss = rows.iter().filter_map(|r| r.rss_kib).max().unwrap_or(0);
    println!("peak RSS of vmrescue over all tasks: {} MiB", rss / 1024);
    if !bench {
        println!("(smoke run on a small image: run `cargo bench --bench ntfs_read` for figures)");
    }
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The median time of `f` ([`median_wall`]).
fn tool(
    dir: &Path,
    task: &'static str,
    name: &'static str,
    bytes: u64,
    cold: bool,
    cache: &'static str,
    f: &dyn Fn(&Path),
) -> Row {
    let secs = median_wall(dir, "vmrescue-bench-ntfs-out", cold, f);
    Row {
        task,
        tool: name,
        cache,
        secs,
        bytes,
        rss_kib: None,
    }
}

/// Time our copy-out in a child process (so its peak RSS is its own).
fn ours(
    dir: &Path,
    task: &'static str,
    path: &str,
    bytes: u64,
    image: &Path,
    cold: bool,
    cache: &'static str,
) -> Row {
    let run = |out: &Path| run_child(&[path.as_ref(), image.as_os_str(), out.as_os_str()]);
    let (secs, runs) = median_of_runs(dir, "vmrescue-bench-ntfs-out", cold, |out| {
        let (secs, got, peak) = run(out);
        assert_eq!(got, bytes, "{task}: bytes copied");
        (secs, peak)
    });
    let rss = runs.into_iter().max().unwrap_or(0);
    Row {
        task,
        tool: "vmrescue",
        cache,
        secs,
        bytes,
        rss_kib: Some(rss),
    }
}

/// The child: open the image, copy one path out, print "seconds bytes peak_rss_kib".
fn child(args: &[String]) {
    let path = format!("/{}", args[0]);
    let image = Path::new(&args[1]);
    let out = Path::new(&args[2]);
    let t = Instant::now();
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(image).expect("open image"));
    let fs: Arc<dyn FsView> = Arc::new(NtfsVolume::open(src).expect("open ntfs"));
    let source = CopySource::resolve(&*fs, path.as_bytes()).expect("resolve");
    let job = CopyJob {
        fs,
        sources: vec![source],
        dest: out.to_path_buf(),
        options: CopyOptions::for_this_user(false),
    };
    let summary = job.run(&AtomicBool::new(false), &mut |_| {});
    assert!(summary.is_clean(), "copy-out problems: {summary:?}");
    println!(
        "{} {} {}",
        t.elapsed().as_secs_f64(),
        summary.bytes,
        peak_rss_kib()
    );
}

/// A read-only ntfs-3g mount of the image, undone when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn new(image: &Path) -> Mount {
        let dir = image.with_extension("mnt");
        std::fs::create_dir_all(&dir).expect("mount point");
        sh(Command::new("ntfs-3g")
            .args(["-o", "ro"])
            .arg(image)
            .arg(&dir));
        Mount { dir }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Sizes of the small files: 0 to 8 KiB; the smallest stay resident in
/// their MFT records.
fn small_size(i: usize) -> usize {
    (i * 7919) % 8192
}

fn tree_bytes(files: usize) -> u64 {
    (0..files).map(|i| small_size(i) as u64).sum()
}

/// Bytes that do not repeat (xorshift): NTFS does not compress unless
/// asked, so their content does not matter to the readers, only to a
/// check by eye.
fn fill(state: &mut u64, buf: &mut [u8]) {
    for c in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let b = state.to_le_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
}

/// Build the image once (mkntfs, then files written through ntfs-3g).
fn build_image(dir: &Path, image: &Path, size: Size) {
    let stamp = dir.join("stamp");
    let want = format!(
        "ntfs-bench v1: {} bytes, {} small files",
        size.big, size.files
    );
    if image.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return;
    }
    println!("building the benchmark image {} (once)...", image.display());
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_file(image);
    File::create(image)
        .and_then(|f| f.set_len(size.image))
        .expect("image file");
    sh(Command::new("mkntfs")
        .args(["-F", "-Q", "-q", "-L", "BENCH"])
        .arg(image));
    let mnt = dir.join("build-mnt");
    std::fs::create_dir_all(&mnt).expect("mount point");
    sh(Command::new("ntfs-3g").arg(image).arg(&mnt));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    {
        let mut f = File::create(mnt.join("big.bin")).expect("big file");
        let mut left = size.big;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            fill(&mut state, &mut chunk[..n]);
            f.write_all(&chunk[..n]).expect("write big file");
            left -= n as u64;
        }
        f.sync_all().expect("sync big file");
    }
    let tree = mnt.join("tree");
    for i in 0..size.files {
        let d = tree.join(format!("d{:03}", i / PER_DIR));
        if i.is_multiple_of(PER_DIR) {
            std::fs::create_dir_all(&d).expect("mkdir");
        }
        let n = small_size(i);
        fill(&mut state, &mut chunk[..n]);
        std::fs::write(d.join(format!("f{i:05}")), &chunk[..n]).expect("small file");
    }
    sh(Command::new("umount").arg(&mnt));
    std::fs::write(&stamp, want).expect("stamp");
}
