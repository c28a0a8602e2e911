//! btrfs reader benchmark: copying out one 1 GiB zstd-compressed file (and
//! 256 MiB zlib and lzo ones) and a tree of 30,000 small files (inline and
//! a few KiB, in 300 directories) from a btrfs image, with `vmrescue cp`'s
//! own copy job (`ops::copy` over `fs::btrfs`), against `cp -a` from a
//! read-only kernel loop mount of the same image, in the same run, with a
//! warm and a cold page cache. Prints times, rates, ratios and vmrescue's
//! peak RSS (`VmHWM` of the child process that runs it); asserts nothing.
//! Warm has two kernel rows: the mount's page cache holding the files
//! (`cp -a` copies decompressed pages), and a new mount of the cached
//! image (the kernel reads and decompresses as vmrescue does).
//!
//! Run as root (mkfs.btrfs, loop mounts, `drop_caches`):
//! `cargo bench --bench btrfs_read`. The image is built once (through a
//! kernel mount, `compress-force=zstd` for the big file, `compress=zstd` as
//! Fedora installs for the tree) under `$VMRESCUE_BENCH_DIR` (default
//! `target/bench-btrfs`). `VMRESCUE_BENCH_ONLY=zstd` (or zlib, lzo, tree)
//! runs one group of rows.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;
use support::{out_dir, peak_rss_kib, run_child, settle, sh};

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use vmrescue::fs::btrfs::Btrfs;
use vmrescue::fs::path::resolve;
use vmrescue::fs::{FileType, FsView};
use vmrescue::io::{FileSource, ReadAt};
use vmrescue::ops::copy::{CopyJob, CopyOptions, CopySource};

const STAMP: &str = "btrfs-bench v1: 1 GiB zstd, 256 MiB zlib and lzo, 30,000 small files";
const IMAGE_BYTES: u64 = 3 << 30;
const BIG_BYTES: u64 = 1 << 30;
const SMALL_BIG_BYTES: u64 = 256 << 20;
const TREE_FILES: usize = 30_000;
const PER_DIR: usize = 100;

/// (task, path in the image, bytes, compression it was written with).
const BIG: &[(&str, &str, u64, &str)] = &[
    ("zstd", "big-zstd.bin", BIG_BYTES, "zstd"),
    ("zlib", "big-zlib.bin", SMALL_BIG_BYTES, "zlib"),
    ("lzo", "big-lzo.bin", SMALL_BIG_BYTES, "lzo"),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    // `cargo test --all-targets` runs bench programs too (without `--bench`).
    if !args.iter().any(|a| a == "--bench") {
        println!("btrfs_read: a benchmark; run it with `cargo bench --bench btrfs_read`");
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        println!("btrfs_read: needs root (mkfs.btrfs, loop mounts, drop_caches): not run");
        return;
    }
    let dir = std::env::var_os("VMRESCUE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-btrfs"));
    std::fs::create_dir_all(&dir).expect("bench directory");
    let image = dir.join("btrfs-bench.img");
    build_image(&dir, &image);
    let mnt = Mount::new(&image);
    let only = std::env::var("VMRESCUE_BENCH_ONLY").ok();
    let want = |g: &str| only.as_deref().is_none_or(|o| o == g);
    let mut rows: Vec<Row> = Vec::new();
    for cold in [false, true] {
        let c = if cold { "cold" } else { "warm" };
        let mut tasks: Vec<(String, String, u64)> = BIG
            .iter()
            .filter(|b| want(b.0))
            .map(|b| (b.0.to_string(), b.1.to_string(), b.2))
            .collect();
        if want("tree") {
            tasks.push(("tree".into(), "tree".into(), tree_bytes()));
        }
        for (task, path, bytes) in tasks {
            rows.push(ours(
                &dir,
                &format!("read-{task}"),
                &path,
                bytes,
                &image,
                cold,
                c,
            ));
            rows.push(ours(
                &dir,
                &format!("copy-{task}"),
                &path,
                bytes,
                &image,
                cold,
                c,
            ));
            let from = mnt.dir.join(&path);
            let cp = |out: &Path| sh(Command::new("cp").arg("-a").arg(&from).arg(out));
            let copy_task = format!("copy-{task}");
            rows.push(tool(&dir, &copy_task, KERNEL, bytes, cold, c, &|| {}, &cp));
            if !cold {
                // The image warm but the kernel's own caches of this
                // filesystem (decompressed pages, inodes) gone: what
                // vmrescue starts from when warm.
                rows.push(tool(
                    &dir,
                    &copy_task,
                    KERNEL_FRESH,
                    bytes,
                    cold,
                    c,
                    &|| mnt.remount(),
                    &cp,
                ));
            }
        }
    }
    drop(mnt);
    report(&rows);
}

/// The kernel rows: a mount whose page cache holds the files (warm), and
/// one mounted afresh before the timed run (the image's bytes cached, the
/// files not).
const KERNEL: &str = "kernel cp -a";
const KERNEL_FRESH: &str = "kernel, new mount";

struct Row {
    task: String,
    tool: String,
    cache: &'static str,
    secs: f64,
    bytes: u64,
    rss_kib: Option<u64>,
}

fn report(rows: &[Row]) {
    println!();
    println!(
        "{:<11} {:<5} {:<16} {:>9} {:>10} {:>10}",
        "task", "cache", "tool", "seconds", "MB/s", "peak RSS"
    );
    for r in rows {
        let rss = r
            .rss_kib
            .map_or("-".into(), |k| format!("{} MiB", k / 1024));
        println!(
            "{:<11} {:<5} {:<16} {:>9.3} {:>10.0} {:>10}",
            r.task,
            r.cache,
            r.tool,
            r.secs,
            r.bytes as f64 / r.secs / 1e6,
            rss
        );
    }
    println!();
    println!("ratios (vmrescue time / kernel time; <= 1.00 means vmrescue is as fast or faster;");
    println!("  \"{KERNEL_FRESH}\": the image is cached for both, the kernel decompresses too):");
    for r in rows.iter().filter(|r| r.tool == "vmrescue") {
        let copy_task = r.task.replace("read-", "copy-");
        for o in rows
            .iter()
            .filter(|o| o.tool != "vmrescue" && o.cache == r.cache && o.task == copy_task)
        {
            println!(
                "  {:<11} {:<5} vs {:<16} {:.2}",
                r.task,
                r.cache,
                o.tool,
                r.secs / o.secs
            );
        }
    }
    let rss = rows.iter().filter_map(|r| r.rss_kib).max().unwrap_or(0);
    println!(
        "peak RSS of vmrescue over all tasks: {} MiB (target < 64 MiB)",
        rss / 1024
    );
}

/// Time one run of `f` (after a priming run when warm, then `prepare`).
#[allow(clippy::too_many_arguments)]
fn tool(
    dir: &Path,
    task: &str,
    name: &str,
    bytes: u64,
    cold: bool,
    cache: &'static str,
    prepare: &dyn Fn(),
    f: &dyn Fn(&Path),
) -> Row {
    if !cold {
        f(&out_dir(dir, "vmrescue-bench-btrfs-out"));
    }
    let out = out_dir(dir, "vmrescue-bench-btrfs-out");
    prepare();
    settle(cold);
    let t = Instant::now();
    f(&out);
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    Row {
        task: task.into(),
        tool: name.into(),
        cache,
        secs,
        bytes,
        rss_kib: None,
    }
}

/// Time our reader in a child process (so its peak RSS is its own).
fn ours(
    dir: &Path,
    task: &str,
    path: &str,
    bytes: u64,
    image: &Path,
    cold: bool,
    cache: &'static str,
) -> Row {
    let run = |out: &Path| {
        run_child(&[
            task.as_ref(),
            path.as_ref(),
            image.as_os_str(),
            out.as_os_str(),
        ])
    };
    if !cold {
        run(&out_dir(dir, "vmrescue-bench-btrfs-out"));
    }
    let out = out_dir(dir, "vmrescue-bench-btrfs-out");
    settle(cold);
    let (secs, got, rss) = run(&out);
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(got, bytes, "{task}: bytes read");
    Row {
        task: task.into(),
        tool: "vmrescue".into(),
        cache,
        secs,
        bytes,
        rss_kib: Some(rss),
    }
}

/// The child: open the image, run one task, print "seconds bytes peak_rss_kib".
fn child(args: &[String]) {
    let task = args[0].as_str();
    let path = format!("/{}", args[1]);
    let image = Path::new(&args[2]);
    let out = Path::new(&args[3]);
    let t = Instant::now();
    let src: Arc<dyn ReadAt> = Arc::new(FileSource::open(image).expect("open image"));
    let fs: Arc<dyn FsView> = Arc::new(Btrfs::open(src).expect("open btrfs"));
    let bytes = if task.starts_with("read-") {
        read_tree(&*fs, path.as_bytes())
    } else {
        copy_out(Arc::clone(&fs), path.as_bytes(), out)
    };
    assert_eq!(
        fs.problem_count(),
        0,
        "problems: {:?}",
        fs.status().problems
    );
    println!("{} {bytes} {}", t.elapsed().as_secs_f64(), peak_rss_kib());
}

/// Read every file under `path` into a sink; returns the bytes read.
fn read_tree(fs: &dyn FsView, path: &[u8]) -> u64 {
    let start = resolve(fs, path, false).expect("resolve").node;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        let m = fs.metadata(n).expect("metadata");
        match m.file_type {
            FileType::Directory => stack.extend(
                fs.read_dir(n)
                    .expect("read_dir")
                    .into_iter()
                    .rev()
                    .map(|e| e.node),
            ),
            FileType::Regular => {
                let mut off = 0;
                while off < m.size {
                    let k = fs.read_at(n, off, &mut buf).expect("read_at");
                    assert!(k > 0, "short read");
                    std::hint::black_box(&buf[..k]);
                    off += k as u64;
                }
                total += m.size;
            }
            FileType::Symlink => {
                std::hint::black_box(fs.read_link(n).expect("read_link"));
            }
            _ => {}
        }
    }
    total
}

/// `vmrescue cp`'s own job (`ops::copy`): `path` of the guest into `dest`.
fn copy_out(fs: Arc<dyn FsView>, path: &[u8], dest: &Path) -> u64 {
    let source = CopySource::resolve(&*fs, path).expect("resolve");
    let job = CopyJob {
        fs,
        sources: vec![source],
        dest: dest.to_path_buf(),
        options: CopyOptions::for_this_user(false),
    };
    let summary = job.run(&AtomicBool::new(false), &mut |_| {});
    assert!(summary.is_clean(), "copy-out problems: {summary:?}");
    summary.bytes
}

/// A read-only loop mount of the image, undone when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn new(image: &Path) -> Mount {
        let dir = image.with_extension("mnt");
        std::fs::create_dir_all(&dir).expect("mount point");
        sh(Command::new("mount")
            .args(["-t", "btrfs", "-o", "loop,ro"])
            .arg(image)
            .arg(&dir));
        Mount { dir }
    }
}

impl Mount {
    /// Unmount and mount again: the kernel forgets the files' pages and
    /// inodes (the loop device goes too); the image file stays cached.
    fn remount(&self) {
        sh(Command::new("umount").arg(&self.dir));
        sh(Command::new("mount")
            .args(["-t", "btrfs", "-o", "loop,ro"])
            .arg(self.dir.with_extension("img"))
            .arg(&self.dir));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Sizes of the small files: 0 to 8 KiB, about a quarter at most 2 KiB
/// (inline in the tree), the rest in data extents.
fn small_size(i: usize) -> usize {
    (i * 7919) % 8192
}

fn tree_bytes() -> u64 {
    (0..TREE_FILES)
        .filter(|i| i % 50 != 49)
        .map(|i| small_size(i) as u64)
        .sum()
}

/// Text-like bytes that compress about 3:1: words from a small list picked
/// by a xorshift generator, with numbers.
struct Words(u64);

impl Words {
    fn fill(&mut self, buf: &mut [u8]) {
        const WORDS: &[&str] = &[
            "the ",
            "rescue ",
            "disk ",
            "image ",
            "guest ",
            "kernel ",
            "block ",
            "extent ",
            "tree ",
            "node ",
            "leaf ",
            "inode ",
            "file ",
            "data ",
            "root ",
            "log ",
            "\n",
            "checksum ",
            "of ",
            "and ",
            "a ",
            "to ",
            "is ",
            "in ",
            "subvolume ",
            "snapshot ",
        ];
        let mut k = 0;
        while k < buf.len() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let w = if self.0.is_multiple_of(5) {
                format!("{} ", self.0 >> 40)
            } else {
                WORDS[(self.0 >> 20) as usize % WORDS.len()].to_string()
            };
            let n = w.len().min(buf.len() - k);
            buf[k..k + n].copy_from_slice(&w.as_bytes()[..n]);
            k += n;
        }
    }
}

/// Build the image once, through a kernel mount.
fn build_image(dir: &Path, image: &Path) {
    let stamp = dir.join("stamp");
    if image.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(STAMP) {
        return;
    }
    println!("building the benchmark image {} (once)...", image.display());
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_file(image);
    File::create(image)
        .and_then(|f| f.set_len(IMAGE_BYTES))
        .expect("image file");
    sh(Command::new("mkfs.btrfs").args(["-q", "-f"]).arg(image));
    let mnt = dir.join("build-mnt");
    std::fs::create_dir_all(&mnt).expect("mount point");
    sh(Command::new("mount")
        .args(["-t", "btrfs", "-o", "loop,compress-force=zstd"])
        .arg(image)
        .arg(&mnt));
    let mut words = Words(0x9e37_79b9_7f4a_7c15);
    let mut chunk = vec![0u8; 1 << 20];
    for (_, name, bytes, comp) in BIG {
        sh(Command::new("mount")
            .args(["-o", &format!("remount,compress-force={comp}")])
            .arg(&mnt));
        let mut f = File::create(mnt.join(name)).expect("big file");
        for _ in 0..bytes / chunk.len() as u64 {
            words.fill(&mut chunk);
            f.write_all(&chunk).expect("write big file");
        }
        f.sync_all().expect("sync big file");
    }
    // The small files as a Fedora install writes them (compress=zstd:1).
    sh(Command::new("mount")
        .args(["-o", "remount,compress=zstd:1"])
        .arg(&mnt));
    let tree = mnt.join("tree");
    for i in 0..TREE_FILES {
        let d = tree.join(format!("d{:03}", i / PER_DIR));
        if i.is_multiple_of(PER_DIR) {
            std::fs::create_dir_all(&d).expect("mkdir");
        }
        if i % 50 == 49 {
            symlink(format!("f{:05}", i - 1), d.join(format!("l{i:05}"))).expect("symlink");
            continue;
        }
        let n = small_size(i);
        words.fill(&mut chunk[..n]);
        std::fs::write(d.join(format!("f{i:05}")), &chunk[..n]).expect("small file");
    }
    sh(Command::new("umount").arg(&mnt));
    std::fs::write(&stamp, STAMP).expect("stamp");
}
